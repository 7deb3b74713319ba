"""The `corral` command line (run as `python -m corral` in a subprocess) and the
example grammars it ships with."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import EXPONENTIAL_GBNF, run_corral
from corral import CompiledGrammar, GrammarCompiler, GrammarMatcher
from corral.cli import byte_vocab

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
JSON_GBNF = EXAMPLES / "json.gbnf"
ARITH_GBNF = EXAMPLES / "arithmetic.gbnf"


corral = run_corral


def compile_file(path: Path) -> CompiledGrammar:
    return GrammarCompiler(byte_vocab()).compile_grammar(path.read_bytes())


def accepts(grammar: CompiledGrammar, text: bytes, *, complete: bool = True) -> bool:
    m = GrammarMatcher(grammar)
    if text and not m.accept_string(text):
        return False
    return m.can_terminate() or not complete


@pytest.mark.parametrize("path", [JSON_GBNF, ARITH_GBNF])
def test_check_ok(path: Path) -> None:
    r = corral("check", path)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout
    assert "rules" in r.stdout
    assert "states" in r.stdout
    assert r.stderr == ""


def test_check_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gbnf"
    bad.write_text('root ::= "a" | [z-a]\n', encoding="utf-8")
    r = corral("check", bad)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:1:17: error: ")
    assert "reversed" in lines[0]
    assert lines[1] == '  root ::= "a" | [z-a]'
    assert lines[2] == " " * (2 + 16) + "^^^"


def test_check_undefined_rule_and_missing_root(tmp_path: Path) -> None:
    g = tmp_path / "g.gbnf"
    g.write_text("root ::= value\n", encoding="utf-8")
    r = corral("check", g)
    assert r.returncode == 1
    assert "undefined rule `value`" in r.stderr
    assert "^^^^^" in r.stderr
    g.write_text('root ::= "a"\n', encoding="utf-8")
    r = corral("check", g, "--root", "start")
    assert r.returncode == 1
    assert r.stderr.startswith(f"{g}: error: ")
    assert "`start`" in r.stderr


def test_check_other_root(tmp_path: Path) -> None:
    g = tmp_path / "g.gbnf"
    g.write_text('start ::= "x"\n', encoding="utf-8")
    r = corral("check", g, "--root", "start")
    assert r.returncode == 0, r.stderr
    assert "'start'" in r.stdout


def test_check_limit_exceeded(tmp_path: Path) -> None:
    g = tmp_path / "g.gbnf"
    # an exponential subset construction exceeds Limits.max_dfa_states
    g.write_text(EXPONENTIAL_GBNF, encoding="utf-8")
    r = corral("check", g)
    assert r.returncode == 1
    assert "Limits" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("check",),
        ("frobnicate",),
        ("check", "does/not/exist.gbnf"),
        ("sample", str(JSON_GBNF), "-n", "-1"),
        ("sample", str(JSON_GBNF), "--max-bytes", "0"),
        ("sample", str(JSON_GBNF), "--eos-prob", "2"),
        ("sample", str(JSON_GBNF), "--seed", "x"),
    ],
)
def test_usage_errors(args: tuple[str, ...]) -> None:
    r = corral(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr != ""


def test_help_states_output_format() -> None:
    r = corral("sample", "--help")
    assert r.returncode == 0
    assert "JSON string" in r.stdout
    assert "--raw" in r.stdout


def test_console_script() -> None:
    script = Path(sysconfig.get_path("scripts")) / "corral"
    r = subprocess.run(
        [str(script), "check", str(ARITH_GBNF)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr


def sample_lines(path: Path, *args: str) -> tuple[list[bytes], str]:
    r = corral("sample", path, *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")  # not splitlines(): samples may contain U+2028 and friends
    assert lines.pop() == ""
    return [json.loads(line).encode("utf-8") for line in lines], r.stderr


@pytest.mark.parametrize("path", [JSON_GBNF, ARITH_GBNF])
@pytest.mark.parametrize("eos_prob", ["0.5", "0.05"])
def test_samples_are_accepted(path: Path, eos_prob: str) -> None:
    samples, err = sample_lines(
        path, "-n", "40", "--seed", "7", "--max-bytes", "100000", "--eos-prob", eos_prob
    )
    assert len(samples) == 40
    assert err == ""  # nothing was truncated
    g = compile_file(path)
    for s in samples:
        assert accepts(g, s), s
    assert len(set(samples)) > 10


def test_json_samples_are_json() -> None:
    samples, _ = sample_lines(JSON_GBNF, "-n", "60", "--seed", "11", "--max-bytes", "100000")
    kinds = set()
    for s in samples:
        kinds.add(type(json.loads(s)).__name__)
    assert len(kinds) >= 3


def test_samples_are_reproducible() -> None:
    a = corral("sample", ARITH_GBNF, "-n", "5", "--seed", "3")
    b = corral("sample", ARITH_GBNF, "-n", "5", "--seed", "3")
    assert a.returncode == 0
    assert a.stdout == b.stdout


def test_truncated_samples_are_prefixes() -> None:
    samples, err = sample_lines(
        ARITH_GBNF, "-n", "5", "--seed", "1", "--max-bytes", "8", "--eos-prob", "0"
    )
    assert err.count("truncated at 8 bytes") == 5
    g = compile_file(ARITH_GBNF)
    for s in samples:
        assert len(s) == 8
        assert accepts(g, s, complete=False), s


def test_raw_output(tmp_path: Path) -> None:
    g = tmp_path / "g.gbnf"
    g.write_text('root ::= "yes" | "no" | "\\"é\\""\n', encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "corral", "sample", str(g), "-n", "30", "--seed", "0", "--raw"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0
    assert set(r.stdout.splitlines()) == {b"yes", b"no", '"é"'.encode()}


def test_dead_end_grammar_is_an_error(tmp_path: Path) -> None:
    g = tmp_path / "g.gbnf"
    g.write_text('root ::= "a" x\nx ::= "b" x\n', encoding="utf-8")
    r = corral("sample", g)
    assert r.returncode == 1
    assert "error" in r.stderr


# The example grammars themselves.

JSON_ACCEPTED = [
    "0",
    "-12.5e+3",
    "true",
    "null",
    '""',
    '"a\\"b\\\\c\\u00e9\\n"',
    '"é✓😀"',
    "[]",
    "{}",
    '{"a": [1, 2.5, null, true, "x"]}',
    json.dumps({"k": [{"n": 1}, "v"]}, indent=2),
    "[ 1 ,2 ]",
]
JSON_REJECTED = ["01", "1.", ".5", "tru", "'a'", '"\t"', '"\\x"', "[1,]", '{"a"}', "[1 2]", "+1"]


@pytest.mark.parametrize("text", JSON_ACCEPTED)
def test_json_grammar_accepts(text: str) -> None:
    assert accepts(compile_file(JSON_GBNF), text.encode("utf-8"))


@pytest.mark.parametrize("text", JSON_REJECTED)
def test_json_grammar_rejects(text: str) -> None:
    assert not accepts(compile_file(JSON_GBNF), text.encode("utf-8"))


@pytest.mark.parametrize("text", ["1", "1+2*3", "(1 - 2) - 3", "-2^-3^4", "1.5 % (2/3)", "--1"])
def test_arithmetic_grammar_accepts(text: str) -> None:
    assert accepts(compile_file(ARITH_GBNF), text.encode())


@pytest.mark.parametrize("text", ["", "1+", "(1", "1 2", "1..2", "+1", "1  + 2", "()"])
def test_arithmetic_grammar_rejects(text: str) -> None:
    assert not accepts(compile_file(ARITH_GBNF), text.encode())


def test_closed_pipe_stops_quietly() -> None:
    # `corral sample ... | head -1`: the reader goes away after one line.
    p = subprocess.Popen(
        [sys.executable, "-m", "corral", "sample", str(ARITH_GBNF), "-n", "1000000", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None
    assert p.stdout.readline()
    p.stdout.close()
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0
    assert err == b""
