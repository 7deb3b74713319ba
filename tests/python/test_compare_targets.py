"""The comparative benchmark's verdicts on issue 5's targets (benches/compare/targets.py).

The benchmark itself needs the other engines and is not run here; its
verdicts are code that decides whether a run meets the targets, so they are
checked on made-up reports: every line at its boundary, engines without a
figure left out of "the best engine", missing figures never counted as met.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compare_targets", ROOT / "benches" / "compare" / "targets.py"
    )
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


targets = _load()


def engine(
    mask: tuple[float | None, float | None, float | None],
    accept: float | None = 0.5,
    compile_ms: tuple[float, float, float] | None = (1.0, 10.0, 50.0),
    **counts: int,
) -> dict[str, Any]:
    p50, p99, top = mask
    return {
        "items": 10,
        "counts": {"passed": 10, **{k.replace("_", " "): v for k, v in counts.items()}},
        "mask_us": {"n": 5, "p50": p50, "p90": p50, "p99": p99, "max": top},
        "accept_us": {"n": 5, "p50": accept, "p90": accept, "p99": accept, "max": accept},
        "compile_ms": dict(
            zip(("p50", "p99", "max"), compile_ms or (None, None, None), strict=True)
        ),
    }


def passing_report() -> dict[str, Any]:
    """Figures shaped like a real run in which corral meets every target."""
    return {
        "summary": {
            "json": {
                "corral": engine((0.45, 6.8, 893)),
                "llguidance": engine((0.91, 23.4, 114)),
                "outlines": engine((159, 201, 267)),
            },
            "schemas": {
                "corral": engine((0.61, 96.4, 1527), compile_ms=(1.39, 10.8, 50.7)),
                "outlines": engine((0.99, 212, 446), time_out=23),
                "llguidance": engine((5.19, 287, 1476)),
            },
            "gbnf": {
                "corral": engine((2.08, 259, 290)),
                "xgrammar": engine((204, 22106, 29085)),
                "llguidance": engine((220, 612, 1108)),
                "outlines": engine((None, None, None), accept=None, compile_ms=None, unsupported=6),
            },
            "regex": {
                "corral": engine((0.27, 4.66, 5.79)),
                "outlines": engine((0.29, 164, 180)),
            },
        },
        "corral_only": {
            "batch": {
                "load": 0.5,
                "warm_median": {"1": 1.7e6, "2": 3.0e6},
                "warm_best": {"1": 1.71e6, "2": 3.05e6},
                "gil": {"idle": 24e6, "sha256": 23.9e6, "fills": {"1": 22e6, "2": 22.4e6}},
            },
            "memory": {
                "vocabulary": 14.68e6,
                "grammars": 295,
                "refused": 5,
                "warm_max": 4.755e6,
                "warm_max_schema": "kb_621",
                "warm_over_5mb": 0,
                "matcher_fresh_max": 1_400,
                "matcher_end_max": 337_700,
                "window": 8,
                "matcher_windowed_max": 41_400,
            },
            "vocab_scaling": [
                {
                    "vocabulary": "Qwen2.5",
                    "size": 151_936,
                    "warm_p50": 0.48,
                    "warm_p99": 1.13,
                    "cold_mean": 4.71,
                    "cold_p99": 57.9,
                },
                {
                    "vocabulary": "Gemma 3",
                    "size": 262_144,
                    "warm_p50": 0.53,
                    "warm_p99": 1.36,
                    "cold_mean": 4.51,
                    "cold_p99": 40.5,
                },
            ],
        },
    }


def by_target(report: dict[str, Any]) -> dict[str, Any]:
    return {c.target: c for c in targets.check(report)}


def test_a_run_meeting_every_target_is_all_met() -> None:
    checks = targets.check(passing_report())
    assert [c.target for c in checks if c.met is not True] == []
    # one per workload: correctness, p50, p99, accept; max for three; compile for schemas
    assert len(checks) == 4 * 4 + 3 + 4 + 2 + 4 + 1
    md = "\n".join(targets.markdown(checks))
    assert f"{len(checks)} of {len(checks)} met" in md
    assert "missed" not in md


def test_lines_come_from_the_best_other_engine() -> None:
    c = by_target(passing_report())
    p99 = c["schemas: mask p99 ≤ ½ the best's"]
    assert p99.line == "≤ 106 µs (outlines 212)"
    p50 = c["gbnf: mask p50 ≤ the best engine's"]
    assert p50.line.endswith("(xgrammar 204)")  # outlines has no GBNF figure


@pytest.mark.parametrize(
    ("path", "value", "target"),
    [
        (
            ("summary", "schemas", "corral", "mask_us", "p99"),
            106.01,
            "schemas: mask p99 ≤ ½ the best's",
        ),
        (
            ("summary", "regex", "corral", "mask_us", "p50"),
            0.30,
            "regex: mask p50 ≤ the best engine's",
        ),
        (("summary", "json", "corral", "mask_us", "max"), 2000.5, "json: no mask over 2 ms"),
        (("summary", "gbnf", "corral", "mask_us", "max"), 5001, "gbnf: no mask over 5 ms"),
        (("summary", "gbnf", "corral", "accept_us", "p50"), 2.01, "gbnf: accept p50"),
        (("summary", "schemas", "corral", "compile_ms", "p50"), 1.51, "schemas: compile p50"),
        (("summary", "schemas", "corral", "compile_ms", "p99"), 15.1, "schemas: compile p99"),
        (("summary", "schemas", "corral", "compile_ms", "max"), 100.1, "schemas: compile max"),
        (("summary", "schemas", "corral", "counts", "time-out"), 1, "schemas: compile time-outs"),
        (
            ("summary", "json", "corral", "counts", "valid text rejected"),
            1,
            "json: no valid text rejected, no valid token forbidden, no crash",
        ),
        (
            ("summary", "regex", "corral", "counts", "mask forbids valid token"),
            1,
            "regex: no valid text rejected, no valid token forbidden, no crash",
        ),
        (
            ("corral_only", "batch", "warm_median", "2"),
            1.69 * 1.7e6,
            "Batch: 64 matchers, 2 threads ÷ 1 (warm median masks/s)",
        ),
        (
            ("corral_only", "batch", "gil", "fills", "2"),
            0.1e6,
            "Batch: GIL released (counting thread's rate inside 2-thread fills ÷ inside SHA-256)",
        ),
        (
            ("corral_only", "memory", "warm_max"),
            5_000_001,
            "Memory: compiled grammar + warm cache, largest in the schema sample",
        ),
        (
            ("corral_only", "memory", "vocabulary"),
            30_000_001,
            "Memory: vocabulary with its token trie (Qwen2.5)",
        ),
        (("corral_only", "memory", "matcher_fresh_max"), 65_537, "Memory: matcher, fresh"),
        (
            ("corral_only", "memory", "matcher_windowed_max"),
            65_537,
            "Memory: matcher with a rollback window, end of its text",
        ),
        (
            ("corral_only", "vocab_scaling", 1, "cold_p99"),
            57.9 * 1.726,
            "Large vocabularies: Gemma 3 (262,144) against Qwen2.5",
        ),
    ],
)
def test_each_line_is_missed_just_past_it(path: tuple[Any, ...], value: float, target: str) -> None:
    report = passing_report()
    node = report
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    c = by_target(report)[target]
    assert c.met is False, c
    assert "missed" in c.verdict
    others = [x.target for x in targets.check(report) if x.met is not True]
    assert others == [target]


def test_a_figure_at_its_line_meets_it() -> None:
    report = passing_report()
    report["summary"]["schemas"]["corral"]["mask_us"]["p99"] = 106.0
    report["summary"]["schemas"]["corral"]["compile_ms"]["p50"] = 1.5
    report["corral_only"]["batch"]["warm_median"]["2"] = 1.7 * 1.7e6
    assert all(c.met for c in targets.check(report))


def test_missing_figures_are_not_measured_never_met() -> None:
    report = passing_report()
    del report["corral_only"]
    report["summary"]["regex"] = {"corral": engine((0.27, 4.66, 5.79))}  # no other engine
    checks = targets.check(report)
    unmeasured = [c for c in checks if c.met is None]
    assert len(unmeasured) == 2 + 2 + 4 + 1
    assert all(c.verdict == "not measured" for c in unmeasured)
    md = "\n".join(targets.markdown(checks))
    assert f"{len(checks) - len(unmeasured)} of {len(checks)} met" in md


def test_corral_absent_from_a_workload_gives_no_workload_checks() -> None:
    report = copy.deepcopy(passing_report())
    del report["summary"]["gbnf"]["corral"]
    assert not [c for c in targets.check(report) if c.target.startswith("gbnf")]
