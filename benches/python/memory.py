"""Memory of compiled grammars with a warm cache, the vocabulary and matchers.

Run: python benches/python/memory.py [--schemas 300] [--seed 5] [--window 8] [--json OUT]

The comparative benchmark's MaskBench sample (benches/compare: `--schemas`
schemas that have a valid instance, fixed seed) compiled on Qwen2.5, each
warmed by teacher-forcing its valid instance (a mask before every token, so
the cache holds an entry for every state on the path). Reports, from the
`memory_usage()` accounting: grammar tables + cache bytes cold and warm
(p50 / p90 / max), the vocabulary (token trie included; the trie alone:
`cargo run --release -p corral-benches --example vocab_memory`), and each
matcher fresh and at the end of its instance: with no rollback limit its
chart keeps every byte's Earley set, so it grows with the text; with a
rollback window of `--window` tokens the chart before the window keeps only
what completions can reach (see `Parser::compact`). Also the process RSS growth over the
whole run, with every grammar and matcher kept alive. `--json OUT` also
writes the figures as JSON (for the comparative benchmark's target check).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _workloads as wl

from conftest import make_qwen
from corral import GrammarCompiler, GrammarMatcher, allocate_token_bitmask


def rss() -> int:
    """Resident set size of this process, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def pcts(xs: list[float]) -> str:
    s = sorted(xs)
    return (
        f"p50 {statistics.median(s) / 1e3:8.1f} KB  "
        f"p90 {s[int(0.9 * (len(s) - 1))] / 1e3:8.1f} KB  max {s[-1] / 1e3:8.1f} KB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--schemas", type=int, default=300)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--window", type=int, default=8, help="rollback window (tokens)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = ap.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f} (1 min)")

    qwen = make_qwen()
    info = qwen.info
    print(
        f"vocabulary (Qwen2.5, {info.tokenizer_size:,} tokens): {info.memory_usage() / 1e6:.2f} MB"
    )
    picked = wl.cases("schema", n=args.schemas, seed=args.seed)
    bitmask = allocate_token_bitmask(1, info.vocab_size)
    compiler = GrammarCompiler(info)
    rss0 = rss()
    t0 = time.perf_counter()
    kept = []
    cold, warm, fresh, end, per_byte, tokens, windowed = [], [], [], [], [], [], []
    worst = ("", 0)
    refused = 0
    for case in picked:
        try:
            compiled = wl.compile_spec(compiler, case.spec)
        except wl.GrammarError:
            refused += 1
            continue
        cold.append(compiled.memory_usage())
        matcher = GrammarMatcher(compiled)
        fresh.append(matcher.memory_usage())
        wl.teacher_force(matcher, case.ids, bitmask)
        w = compiled.memory_usage()
        warm.append(w)
        if w > worst[1]:
            worst = (case.name, w)
        end.append(matcher.memory_usage())
        n = len(case.text.encode())
        per_byte.append((end[-1] - fresh[-1]) / n)
        tokens.append(len(case.ids))
        w_matcher = GrammarMatcher(compiled, max_rollback_tokens=args.window)
        wl.teacher_force(w_matcher, case.ids, bitmask)
        windowed.append(w_matcher.memory_usage())
        kept.append((compiled, matcher, w_matcher))
    rss1 = rss()
    secs = time.perf_counter() - t0
    print(
        f"{len(kept)} schemas compiled and warmed ({refused} refused), "
        f"{statistics.median(tokens):.0f} tokens p50 / {max(tokens)} max per instance, {secs:.1f} s"
    )
    print(f"grammar + cache, cold: {pcts(cold)}")
    print(f"grammar + cache, warm: {pcts(warm)}  ({worst[0]})")
    entries = [w - c for w, c in zip(warm, cold, strict=True)]
    print(f"  cache entries alone (warm - cold): {pcts(entries)}")
    over = sum(w > 5_000_000 for w in warm)
    print(f"  over 5 MB: {over}; total warm {sum(warm) / 1e6:.1f} MB")
    print(f"matcher, fresh:        {pcts(fresh)}")
    print(f"matcher, end of text:  {pcts(end)}")
    print(f"  with a {args.window}-token rollback window: {pcts(windowed)}")
    print(
        f"  chart growth: p50 {statistics.median(per_byte):.0f} B per text byte, "
        f"max {max(per_byte):.0f}"
    )
    print(
        f"process RSS growth over the run: {(rss1 - rss0) / 1e6:.1f} MB "
        f"(accounted: {(sum(warm) + sum(end) + sum(windowed)) / 1e6:.1f} MB)"
    )
    if args.json is not None:
        figures = {
            "vocabulary": info.memory_usage(),
            "grammars": len(kept),
            "refused": refused,
            "warm_max": worst[1],
            "warm_max_schema": worst[0],
            "warm_over_5mb": over,
            "matcher_fresh_max": max(fresh),
            "matcher_end_max": max(end),
            "window": args.window,
            "matcher_windowed_max": max(windowed),
        }
        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
