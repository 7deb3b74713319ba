"""Issue 5's targets, checked against one comparative run.

`check(report)` reads the report that `run.py` writes (per-workload summaries
of every engine, plus the figures of the corral-only scripts it runs after
the engines: batch throughput, memory, vocabulary scaling) and returns one
`Check` per target: the figure, the line it must meet and whether it does.
A target whose figures are not in the report (an engine or script left out
of the run) is "not measured", never met.

Kept free of the harness's imports so that tests can check the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# No single mask over this many µs, per workload (none for the regexes).
MASK_MAX_US = {"json": 2_000.0, "schemas": 2_000.0, "gbnf": 5_000.0}
COMPILE_P50_MS, COMPILE_P99_MS, COMPILE_MAX_MS = 1.5, 15.0, 100.0
ACCEPT_P50_US = 2.0
BATCH_RATIO = 1.7
# A Python thread counting beside the fills keeps at least this share of its
# rate inside a call known to release the GIL (a held GIL gives about 0).
GIL_SHARE = 0.5
GRAMMAR_MAX_BYTES = 5_000_000
VOCAB_MAX_BYTES = 30_000_000  # the target is the trie's; this is the whole vocabulary
MATCHER_MAX_BYTES = 64 * 1024
WRONG = ("valid text rejected", "mask forbids valid token", "crash")


@dataclass(frozen=True)
class Check:
    target: str
    figure: str
    line: str
    met: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]


def fmt(x: float | None) -> str:
    """A figure in the report's tables (3 significant digits; "-" if absent)."""
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _mb(b: float) -> str:
    return f"{b / 1e6:.2f} MB"


def _kb(b: float) -> str:
    return f"{b / 1024:.1f} KB"


def _best(per_engine: Mapping[str, Any], key: str, q: str) -> tuple[str, float] | None:
    """The other engines' lowest value of `key`/`q`, with the engine's name."""
    vals = [
        (s[key][q], eng)
        for eng, s in per_engine.items()
        if eng != "corral" and s[key].get(q) is not None
    ]
    if not vals:
        return None
    v, eng = min(vals)
    return eng, v


def _at_most(name: str, value: float | None, limit: float, unit: str, line: str = "") -> Check:
    """`value` ≤ `limit`; not measured where `value` is absent."""
    shown = str(value) if isinstance(value, int) else fmt(value)
    return Check(
        name,
        "-" if value is None else f"{shown} {unit}".strip(),
        line or f"≤ {limit:,g} {unit}",
        None if value is None else value <= limit,
    )


def _workload_checks(wl: str, title: str, per_engine: Mapping[str, Any]) -> list[Check]:
    c = per_engine.get("corral")
    if c is None:
        return []
    counts = c["counts"]
    wrong = sum(counts.get(s, 0) for s in WRONG)
    out = [
        _at_most(
            f"{title}: no valid text rejected, no valid token forbidden, no crash",
            wrong,
            0,
            "",
            "0",
        )
    ]
    mask = c["mask_us"]
    for q, share, what in (("p50", 1.0, "≤ the best engine's"), ("p99", 0.5, "≤ ½ the best's")):
        name = f"{title}: mask {q} {what}"
        best = _best(per_engine, "mask_us", q)
        if best is None:
            out.append(Check(name, "-", "-", None))
            continue
        eng, v = best
        line = f"≤ {fmt(v * share)} µs ({eng} {fmt(v)})"
        out.append(_at_most(name, mask.get(q), v * share, "µs", line))
    if wl in MASK_MAX_US:
        lim = MASK_MAX_US[wl]
        out.append(_at_most(f"{title}: no mask over {lim / 1000:g} ms", mask.get("max"), lim, "µs"))
    acc = c["accept_us"].get("p50")
    out.append(_at_most(f"{title}: accept p50", acc, ACCEPT_P50_US, "µs"))
    if wl == "schemas":
        co = c["compile_ms"]
        for q, lim in (("p50", COMPILE_P50_MS), ("p99", COMPILE_P99_MS), ("max", COMPILE_MAX_MS)):
            out.append(_at_most(f"{title}: compile {q}", co.get(q), lim, "ms"))
        out.append(_at_most(f"{title}: compile time-outs", counts.get("time-out", 0), 0, "", "0"))
    return out


def _batch_checks(b: Mapping[str, Any] | None) -> list[Check]:
    name = "Batch: 64 matchers, 2 threads ÷ 1 (warm median masks/s)"
    gil_name = "Batch: GIL released (counting thread's rate inside 2-thread fills ÷ inside SHA-256)"
    if b is None:
        return [
            Check(name, "-", f"≥ {BATCH_RATIO:g}", None),
            Check(gil_name, "-", f"≥ {GIL_SHARE:g}", None),
        ]
    med = b["warm_median"]
    one, two = med["1"], med["2"]
    ratio = two / one
    best = b["warm_best"]["2"] / b["warm_best"]["1"]
    gil = b["gil"]["fills"]["2"] / b["gil"]["sha256"]
    return [
        Check(
            name,
            f"{ratio:.2f} ({one / 1e6:.2f} → {two / 1e6:.2f} M/s; "
            f"best rounds {best:.2f}; load {b['load']:.2f})",
            f"≥ {BATCH_RATIO:g}",
            ratio >= BATCH_RATIO,
        ),
        Check(gil_name, f"{gil:.2f}", f"≥ {GIL_SHARE:g}", gil >= GIL_SHARE),
    ]


def _memory_checks(m: Mapping[str, Any] | None) -> list[Check]:
    names = (
        "Memory: compiled grammar + warm cache, largest in the schema sample",
        "Memory: vocabulary with its token trie (Qwen2.5)",
        "Memory: matcher, fresh",
        "Memory: matcher with a rollback window, end of its text",
    )
    lines = (
        f"≤ {GRAMMAR_MAX_BYTES / 1e6:g} MB",
        f"≤ {VOCAB_MAX_BYTES / 1e6:g} MB (the trie's target)",
        f"≤ {MATCHER_MAX_BYTES // 1024} KB",
        f"≤ {MATCHER_MAX_BYTES // 1024} KB, window included",
    )
    if m is None:
        return [Check(n, "-", line, None) for n, line in zip(names, lines, strict=True)]
    return [
        Check(
            names[0],
            f"{_mb(m['warm_max'])} ({m['warm_max_schema']}; "
            f"{m['warm_over_5mb']} of {m['grammars']} over)",
            lines[0],
            m["warm_max"] <= GRAMMAR_MAX_BYTES,
        ),
        Check(names[1], _mb(m["vocabulary"]), lines[1], m["vocabulary"] <= VOCAB_MAX_BYTES),
        Check(
            names[2],
            _kb(m["matcher_fresh_max"]),
            lines[2],
            m["matcher_fresh_max"] <= MATCHER_MAX_BYTES,
        ),
        Check(
            names[3],
            f"{_kb(m['matcher_windowed_max'])} ({m['window']}-token window)",
            lines[3],
            m["matcher_windowed_max"] <= MATCHER_MAX_BYTES,
        ),
    ]


def _vocab_checks(rows: list[Mapping[str, Any]] | None) -> list[Check]:
    if not rows:
        return [Check("Large vocabularies: mask time no worse than linear in size", "-", "-", None)]
    base = rows[0]
    out = []
    for r in rows[1:]:
        size = r["size"] / base["size"]
        ratios = {k: r[k] / base[k] for k in ("warm_p50", "warm_p99", "cold_mean", "cold_p99")}
        worst = max(ratios, key=lambda k: ratios[k])
        out.append(
            Check(
                f"Large vocabularies: {r['vocabulary']} ({r['size']:,}) "
                f"against {base['vocabulary']}",
                ", ".join(f"{k.replace('_', ' ')} x{v:.2f}" for k, v in ratios.items()),
                f"each ≤ size x{size:.2f}",
                ratios[worst] <= size,
            )
        )
    return out


def check(report: Mapping[str, Any], titles: Mapping[str, str] | None = None) -> list[Check]:
    """Every target of issue 5 against `report` (run.py's JSON), in the issue's order."""
    titles = titles or {}
    out: list[Check] = []
    for wl, per_engine in report.get("summary", {}).items():
        out += _workload_checks(wl, titles.get(wl, wl), per_engine)
    extra = report.get("corral_only", {})
    out += _batch_checks(extra.get("batch"))
    out += _memory_checks(extra.get("memory"))
    out += _vocab_checks(extra.get("vocab_scaling"))
    return out


def markdown(checks: list[Check]) -> list[str]:
    met = sum(c.met is True for c in checks)
    lines = [
        f"Targets of issue 5 in this run: {met} of {len(checks)} met.",
        "",
        "| target | corral | line | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.target} | {c.figure} | {c.line} | {c.verdict} |" for c in checks]
    return lines
