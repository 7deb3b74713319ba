"""`corral bench`: mask-time percentiles for a grammar, a tokenizer and a text
(run as `python -m corral` in a subprocess, on the byte vocabulary and on a
small byte-level BPE tokenizer written to a temporary Hugging Face folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_corral

ROOT = Path(__file__).resolve().parents[2]
JSON_GBNF = ROOT / "examples" / "json.gbnf"
DOC = '{"name": "corral", "tags": ["rust", "grammar"], "stars": 12, "ok": true}'


corral = run_corral


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def check_stats(s: dict[str, float | int | None], n: int) -> None:
    assert s["n"] == n
    p50, p90, p99, top = (s[k] for k in ("p50", "p90", "p99", "max"))
    assert isinstance(p50, float)
    assert isinstance(p90, float)
    assert isinstance(p99, float)
    assert isinstance(top, float)
    assert 0 < p50 <= p90 <= p99 <= top


def test_bench_json_output_counts_every_step(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", DOC)
    b = write(tmp_path / "b.json", "[1, 2.5, null]")
    r = corral("bench", JSON_GBNF, "--text", a, "--text", b, "--repeat", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    tokens = len(DOC.encode()) + len(b"[1, 2.5, null]")  # one token per byte
    assert out["tokens"] == [len(DOC.encode()), 14]
    assert out["kind"] == "gbnf"
    assert out["vocab_size"] == 259
    assert out["error"] is None
    assert out["compile_ms"] > 0
    # a mask per token plus one for the stop token; accepts for the text tokens
    check_stats(out["cold"]["mask_us"], tokens + 2)
    check_stats(out["cold"]["accept_us"], tokens)
    check_stats(out["warm"]["mask_us"], 2 * (tokens + 2))
    check_stats(out["warm"]["accept_us"], 2 * tokens)


def test_bench_table_for_a_regex(tmp_path: Path) -> None:
    g = write(tmp_path / "email.regex", "[a-z]+@[a-z]+\\.com\n")
    t = write(tmp_path / "t.txt", "bob@example.com")
    r = corral("bench", g, "--text", t, "--repeat", "1")
    assert r.returncode == 0, r.stderr
    assert "(regex)" in r.stdout
    assert "compile:" in r.stdout
    lines = r.stdout.splitlines()
    assert any(line.split()[:2] == ["p50", "p90"] for line in lines)
    assert any(line.startswith("mask µs, first pass") for line in lines)
    assert any(line.startswith("accept µs, 1 more passes") for line in lines)


def test_bench_rejected_text(tmp_path: Path) -> None:
    g = write(tmp_path / "email.regex", "[a-z]+@[a-z]+\\.com")
    t = write(tmp_path / "t.txt", "bob@example.org")
    r = corral("bench", g, "--text", t, "--json")
    assert r.returncode == 1
    assert "text rejected: the mask forbids token" in r.stderr
    assert json.loads(r.stdout)["error"].startswith("the mask forbids token 111")


def test_bench_grammar_error(tmp_path: Path) -> None:
    g = write(tmp_path / "bad.gbnf", "root ::= value\n")
    t = write(tmp_path / "t.txt", "x")
    r = corral("bench", g, "--text", t)
    assert r.returncode == 1
    assert r.stderr.startswith(f"{g}:1:")
    assert "undefined rule `value`" in r.stderr


@pytest.mark.parametrize(
    "extra",
    [
        (),  # --text is required
        ("--text", "does/not/exist.txt"),
        ("--text", "{text}", "--tokenizer", "does/not/exist"),
        ("--text", "{text}", "--repeat", "-1"),
        ("--text", "{text}", "--kind", "lark"),
    ],
)
def test_bench_usage_errors(tmp_path: Path, extra: tuple[str, ...]) -> None:
    t = write(tmp_path / "t.txt", "{}")
    r = corral("bench", JSON_GBNF, *(str(t) if a == "{text}" else a for a in extra))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr != ""


def test_bench_schema(tmp_path: Path) -> None:
    s = write(tmp_path / "s.json", '{"type": "object", "properties": {"a": {"type": "integer"}}}')
    t = write(tmp_path / "t.txt", '{"a": 5}')
    r = corral("bench", s, "--text", t, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["kind"] == "schema"
    assert out["error"] is None
    # a keyword corral cannot enforce exactly is a compile error (exit status 1)
    bad = write(tmp_path / "bad.json", '{"type": "array", "uniqueItems": true}')
    r = corral("bench", bad, "--text", t)
    assert r.returncode == 1
    assert r.stderr.startswith(f"{bad}: ")
    assert "unsupported keyword" in r.stderr
    assert "text rejected" not in r.stderr


def test_bench_hugging_face_folder(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
    )
    tok.train_from_iterator([DOC, '{"name": "x", "tags": []}'] * 20, trainer)
    folder = tmp_path / "tok"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>"}
    write(folder / "tokenizer_config.json", json.dumps(config))
    text = write(tmp_path / "doc.json", DOC)
    r = corral("bench", JSON_GBNF, "--text", text, "--tokenizer", folder, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "byte_level" in out["tokenizer"]
    assert out["vocab_size"] == tok.get_vocab_size()
    n = out["tokens"][0]
    assert 0 < n < len(DOC.encode())  # merges were used
    check_stats(out["cold"]["mask_us"], n + 1)
