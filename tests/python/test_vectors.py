"""The shared vectors in tests/vectors/*.toml, through the Python package.

Same semantics as rust/core/tests/vectors.rs: every input is fed token by
token on the byte vocabulary with the mask checked against ``accept_token`` at
every step, then EOS (unless the input already ended with a stop token the
grammar names); plain-string inputs are also fed whole with ``accept_string``.
Every accept/reject verdict is also checked against the independent
reference recogniser (tests/python/reference.py).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from conftest import (
    BYTE_EOS,
    BYTE_TOKEN_NAMES,
    byte_ids_to_units,
    byte_input_ids,
    feed_checked,
    finish_checked,
    reference_verdict,
)
from corral import GrammarError, GrammarMatcher, GrammarSyntaxError, LimitExceededError
from reference import Grammar, ReferenceGrammarError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
BYTE_VOCAB_SIZE = 259


def _cases():
    files = sorted(VECTORS.glob("*.toml"))
    assert files, f"no vector files in {VECTORS}"
    out = []
    for f in files:
        doc = tomllib.loads(f.read_text(encoding="utf-8"))
        for case in doc["test"]:
            out.append(pytest.param(case, id=f"{f.stem}::{case['name']}"))
    return out


CASES = _cases()


def test_every_vector_file_has_cases():
    names = {p.id.split("::")[0] for p in CASES}
    assert {"ebnf", "errors", "tokens"} <= names


def _reference(case) -> Grammar | None:
    """The reference's grammar, or None if it refuses it (an error verdict)."""
    try:
        g = Grammar.parse(
            case["grammar"], root=case.get("root", "root"), token_names=BYTE_TOKEN_NAMES
        )
    except ReferenceGrammarError:
        return None
    if g.is_empty_language:
        return None
    ids = {i for t in g.terminals if hasattr(t, "ids") for i in t.ids}
    if any(i >= BYTE_VOCAB_SIZE for i in ids):
        return None
    return g


KIND_CLASS = {"syntax": GrammarSyntaxError, "grammar": GrammarError, "limit": LimitExceededError}


@pytest.mark.parametrize("case", CASES)
def test_vector(case, byte_compiler):
    root = case.get("root", "root")
    ref = _reference(case)
    if "error" in case:
        err = case["error"]
        kind = err["kind"]
        with pytest.raises(GrammarError) as info:
            byte_compiler.compile_grammar(case["grammar"], root=root)
        e = info.value
        assert isinstance(e, KIND_CLASS[kind]), f"{type(e).__name__}: {e}"
        if kind == "grammar":
            assert not isinstance(e, GrammarSyntaxError | LimitExceededError), (
                f"{type(e).__name__}: {e}"
            )
        if "line" in err:
            assert e.line == err["line"], str(e)
        if "column" in err:
            assert e.column == err["column"], str(e)
        if "contains" in err:
            assert err["contains"] in str(e), str(e)
        if kind != "limit":
            # the reference refuses the same grammars (limits are the engine's own business)
            assert ref is None, "reference accepts a grammar the engine rejects"
        return

    g = byte_compiler.compile_grammar(case["grammar"], root=root)
    assert ref is not None, "reference rejects a grammar the engine compiles"
    n = 0
    for want, key in [(True, "accept"), (False, "reject")]:
        for inp in case.get(key, []):
            ids = byte_input_ids(inp)
            m = GrammarMatcher(g)
            got = feed_checked(m, ids, BYTE_VOCAB_SIZE) and finish_checked(
                m, BYTE_EOS, BYTE_VOCAB_SIZE
            )
            assert got == want, f"{key} {inp!r}: engine says {got}"
            verdict = reference_verdict(ref, byte_ids_to_units, ids, [BYTE_EOS], BYTE_EOS)
            assert verdict == want, f"reference: {key} {inp!r}"
            if isinstance(inp, str):
                m = GrammarMatcher(g)
                whole = m.accept_string(inp) and m.can_terminate()
                assert whole == want, f"accept_string {key} {inp!r}"
            n += 1
    assert n > 0
