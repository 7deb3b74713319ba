"""Conformance with llama.cpp's GBNF grammars and grammar test tables
(../shared/corpora/gbnf and ../shared/corpora/llamacpp-cases; see the
corpora README for formats and sources).

Vocabulary for the llama.cpp cases: the cases name special tokens by small ids
(``<[10]>`` ... ``<[21]>``, ``<[1000]>``), so ids 0..1099 are special tokens
``<|tN|>``, the 256 single bytes follow at 1100..1355 and 1356 is EOS. Text is
fed one byte token at a time (llama.cpp feeds code points; the cases with
token elements only use ASCII text, where the two coincide).

Every verdict is also checked against the independent reference recogniser.
"""

from __future__ import annotations

import itertools
import json
import random
import re

import pytest

from conftest import CORPORA, feed_checked, finish_checked
from corral import (
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
    TokenizerInfo,
)
from reference import Grammar, ReferenceGrammarError

N_SPECIAL = 1100
BYTE0 = N_SPECIAL
EOS = N_SPECIAL + 256
VOCAB_SIZE = EOS + 1

GBNF_FILES = sorted(p.name for p in (CORPORA / "gbnf").glob("*.gbnf"))


def _load(name: str) -> dict:
    return json.loads((CORPORA / "llamacpp-cases" / name).read_text(encoding="utf-8"))


INTEGRATION = _load("grammar-integration.json")
PARSER = _load("grammar-parser.json")
# Only the GBNF cases belong here: the json_schema cases need a JSON-Schema
# front-end, which is a later issue (they will be run by its own tests).
GBNF_CASES = [c for c in INTEGRATION["cases"] if c["kind"] == "gbnf"]


@pytest.fixture(scope="module")
def llama_compiler() -> GrammarCompiler:
    tokens = [f"<|t{i}|>".encode() for i in range(N_SPECIAL)]
    tokens += [bytes([b]) for b in range(256)] + [b"<eos>"]
    info = TokenizerInfo.from_vocab(
        tokens, eos_token_ids=[EOS], special_token_ids=[*range(N_SPECIAL), EOS]
    )
    assert info.vocab_size == VOCAB_SIZE
    return GrammarCompiler(info)


def to_ids(inp) -> list[int]:
    parts = [inp] if isinstance(inp, str) else inp
    out: list[int] = []
    for p in parts:
        if isinstance(p, str):
            out.extend(BYTE0 + b for b in p.encode("utf-8"))
        else:
            out.append(int(p["token"]))
    return out


def to_units(ids: list[int]) -> list:
    return [("text", i, bytes([i - BYTE0])) if BYTE0 <= i < EOS else ("tok", i) for i in ids]


def engine_accepts(compiled, ids: list[int]) -> bool:
    m = GrammarMatcher(compiled)
    return feed_checked(m, ids, VOCAB_SIZE) and finish_checked(m, EOS, VOCAB_SIZE)


def engine_accepts_whole(compiled, text: str) -> bool:
    """A plain string fed whole through accept_string. (Not for inputs with
    token segments: raw bytes are not tokens, so they never match `!<...>`.)"""
    m = GrammarMatcher(compiled)
    return m.accept_string(text) and m.can_terminate()


# ---------------------------------------------------------------------------
# the example grammars
# ---------------------------------------------------------------------------


def test_corpus_has_the_example_grammars():
    assert len(GBNF_FILES) >= 8


@pytest.mark.parametrize("name", GBNF_FILES)
def test_example_grammar_compiles_and_agrees(name, llama_compiler):
    text = (CORPORA / "gbnf" / name).read_text(encoding="utf-8")
    compiled = llama_compiler.compile_grammar(text)
    assert compiled.num_rules > 0
    ref = Grammar.parse(text)
    assert not ref.is_empty_language
    rng = random.Random(name)
    for _ in range(8):
        units = ref.generate(rng, max_len=120)
        s = "".join(chr(u) for u in units)
        assert engine_accepts(compiled, to_ids(s)), f"engine rejects generated {s!r}"
        # a one-character mutation: engine and reference must agree
        if s:
            k = rng.randrange(len(s))
            t = s[:k] + rng.choice('a0 \n{"-.é') + s[k + 1 :]
            assert engine_accepts(compiled, to_ids(t)) == ref.accepts([t]), repr(t)


# ---------------------------------------------------------------------------
# grammar-parser.json: parse ok / parse error
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", PARSER["cases"], ids=lambda c: c["name"])
def test_parser_case(case, llama_compiler):
    text = case["grammar"]
    if "{0,99}){0,99}" in text:
        # llama.cpp refuses this (it unrolls to ~10^12 states); corral keeps the
        # repetitions as counters, so it compiles and means what it says.
        assert case["expect"] == "parse_error"
        compiled = llama_compiler.compile_grammar(text)
        m = GrammarMatcher(compiled)
        assert m.accept_string("abc " * 50)
        assert not m.accept_string("x")
        return
    if case["expect"] == "ok":
        compiled = llama_compiler.compile_grammar(text)
        assert compiled.num_rules >= 1
        Grammar.parse(text)  # the reference parses it too
        return
    assert case["expect"] == "parse_error"
    with pytest.raises(GrammarError):
        llama_compiler.compile_grammar(text)
    with pytest.raises(ReferenceGrammarError):
        Grammar.parse(text)


def test_parser_cases_present():
    kinds = [c["expect"] for c in PARSER["cases"]]
    assert kinds.count("ok") >= 10
    assert kinds.count("parse_error") >= 3


# ---------------------------------------------------------------------------
# grammar-integration.json: passes / fails
# ---------------------------------------------------------------------------


def test_integration_has_gbnf_cases():
    assert len(GBNF_CASES) > 0
    assert len(GBNF_CASES) == 14  # as counted in corpora/llamacpp-cases/SUMMARY.json


@pytest.mark.parametrize("case", GBNF_CASES, ids=lambda c: c["name"])
def test_integration_case(case, llama_compiler):
    compiled = llama_compiler.compile_grammar(case["grammar"])
    ref = Grammar.parse(case["grammar"])
    assert case["passes"]
    assert case["fails"]
    for want, key in [(True, "passes"), (False, "fails")]:
        for inp in case[key]:
            ids = to_ids(inp)
            assert engine_accepts(compiled, ids) == want, f"{key}: {inp!r} (token by token)"
            if isinstance(inp, str):
                assert engine_accepts_whole(compiled, inp) == want, (
                    f"{key}: {inp!r} (accept_string)"
                )
            assert ref.accepts(to_units(ids), stop_ids=[EOS]) == want, f"reference {key}: {inp!r}"


# ---------------------------------------------------------------------------
# build_cases: grammars llama.cpp refuses to build
# ---------------------------------------------------------------------------

BUILD_CASES = INTEGRATION["build_cases"]


def test_build_cases_present():
    assert len(BUILD_CASES) == 9


@pytest.mark.parametrize("case", BUILD_CASES, ids=lambda c: c["name"])
def test_build_case(case, llama_compiler):
    text, root = case["grammar"], case["root"]
    expect = case["expect"]
    if expect == "ok":
        llama_compiler.compile_grammar(text, root=root)
        return
    if expect == "build_error" and "left recursion" in case["name"]:
        # llama.cpp rejects left recursion; an Earley engine handles it.
        compiled = llama_compiler.compile_grammar(text, root=root)
        ref = Grammar.parse(text, root=root)
        assert not ref.is_empty_language
        rng = random.Random(case["name"])
        seen = set()
        for _ in range(30):
            s = "".join(chr(u) for u in ref.generate(rng, max_len=12))
            seen.add(s)
            assert engine_accepts(compiled, to_ids(s)), s
        assert len(seen) > 3
        # exhaustive agreement on short strings over the grammar's letters
        letters = sorted(set("".join(re.findall(r'"([^"]*)"', text))))
        assert letters
        strings = ["".join(t) for n in range(5) for t in itertools.product(letters, repeat=n)]
        for s in strings:
            assert engine_accepts(compiled, to_ids(s)) == ref.accepts([s]), repr(s)
        return
    # missing root / undefined rule: a compile error in both
    with pytest.raises(GrammarError):
        llama_compiler.compile_grammar(text, root=root)
    with pytest.raises(ReferenceGrammarError):
        Grammar.parse(text, root=root)
