"""Compile time of the comparative benchmark's schema sample, warm and cold.

Run: python benches/python/compile_cold.py [--schemas N] [--seed S]

Compiles the sample of ``benches/compare`` (same seed and size: 300 MaskBench
schemas) on one compiler for the Qwen2.5 vocabulary, as its worker does
(``strict_mode=False``; compile + new matcher + first mask through the
pointer entry point), twice: ``warm`` compiles one schema after another;
``gc`` calls ``gc.collect()`` before each compile, as the benchmark's worker
does before each job, which leaves the caches cold. Prints p50 / p90 / p99 /
max / sum in ms for each, over the schemas that compile. For comparing
builds on a noisy machine: run each build twice, alternating.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compare"))

import qwen
import workloads

import corral


def percentile(xs: list[float], p: float) -> float:
    return xs[int((len(xs) - 1) * p)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schemas", type=int, default=300)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    groups = workloads.build(
        "schemas", quick=False, full=False, seed=args.seed, schemas=args.schemas
    )
    texts = [json.dumps(g.spec["schema"]) for g in groups]
    info = corral.TokenizerInfo.from_vocab(
        qwen.all_tokens(),
        eos_token_ids=qwen.STOP_IDS,
        vocab_size=qwen.VOCAB_SIZE,
        special_token_ids=qwen.SPECIAL_IDS,
    )
    mask = np.zeros((1, (qwen.VOCAB_SIZE + 31) // 32), dtype=np.int32)
    for mode in ("warm", "gc"):
        # A fresh compiler per mode: its cache would answer the second pass.
        compiler = corral.GrammarCompiler(info)
        times: list[float] = []
        for text in texts:
            if mode == "gc":
                gc.collect()
            gc.disable()
            t0 = time.perf_counter_ns()
            try:
                compiled = compiler.compile_json_schema(text, strict_mode=False)
            except corral.GrammarError:
                gc.enable()
                continue
            m = corral.GrammarMatcher(compiled)
            m.unsafe_fill_next_token_bitmask_ptr(mask.ctypes.data, mask.shape[1])
            times.append((time.perf_counter_ns() - t0) / 1e6)
            gc.enable()
        times.sort()
        print(
            f"{mode}: {len(times)} compiled, p50 {percentile(times, 0.5):.2f} "
            f"p90 {percentile(times, 0.9):.2f} p99 {percentile(times, 0.99):.1f} "
            f"max {times[-1]:.1f} sum {sum(times):.0f} ms"
        )


if __name__ == "__main__":
    main()
