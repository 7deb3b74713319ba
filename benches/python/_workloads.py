"""Grammars and valid texts shared by batch_throughput.py, memory.py and
vocab_scaling.py: the comparative benchmark's workloads (benches/compare/
workloads.py: MaskBench schemas sampled with a fixed seed, each with its
first valid instance; any-JSON documents; the GBNF and regex texts), compiled
the way benches/compare/engines.py compiles them for corral.

Texts come with their Qwen2.5 token ids (tiktoken over the same ranks, so no
engine tokenises them). Needs the test extras and ../shared/corpora.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "compare"))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "python"))

import workloads  # noqa: E402  (benches/compare/workloads.py)

from corral import (  # noqa: E402
    CompiledGrammar,
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
)


@dataclass
class Case:
    """One grammar and one valid text for it."""

    kind: str  # "schema", "json", "gbnf" or "regex"
    name: str
    spec: dict[str, Any]
    text: str
    ids: list[int]  # Qwen2.5 token ids of `text`


def compile_spec(compiler: GrammarCompiler, spec: dict[str, Any]) -> CompiledGrammar:
    """Compile a workload spec with the compare harness's options for corral."""
    kind = spec["kind"]
    if kind == "json":
        return compiler.compile_builtin_json_grammar()
    if kind == "schema":
        return compiler.compile_json_schema(
            json.dumps(spec["schema"]), strict_mode=False, property_order="schema"
        )
    if kind == "gbnf":
        return compiler.compile_grammar(spec["grammar"])
    if kind == "regex":
        return compiler.compile_regex(spec["pattern"])
    raise ValueError(kind)


def cases(kind: str, *, n: int, seed: int) -> list[Case]:
    """Up to `n` cases of one workload kind (the schema sample is the compare
    harness's: `n` schemas with a valid instance, seed `seed`)."""
    if kind == "schema":
        groups = workloads.schema_workload(n, seed)
    elif kind == "json":
        groups = workloads.json_workload(n, seed)
    elif kind == "gbnf":
        groups = workloads.gbnf_workload(quick=False)
    elif kind == "regex":
        groups = workloads.regex_workload(quick=False)
    else:
        raise ValueError(kind)
    out = [Case(kind, t.id, g.spec, t.text, t.ids) for g in groups for t in g.texts]
    return out[:n]


def compilable(compiler: GrammarCompiler, items: list[Case]) -> list[tuple[Case, CompiledGrammar]]:
    """The cases whose grammar compiles (schemas corral refuses are skipped)."""
    out = []
    for c in items:
        try:
            out.append((c, compile_spec(compiler, c.spec)))
        except GrammarError:
            continue
    return out


def teacher_force(matcher: GrammarMatcher, ids: list[int], bitmask: Any) -> None:
    """Fill a mask before each token and accept it; every token must be allowed."""
    for tok in ids:
        matcher.fill_next_token_bitmask(bitmask)
        if not matcher.accept_token(tok):
            raise AssertionError(f"token {tok} refused after {matcher.num_accepted_tokens}")
