"""Compile time of MaskBench JSON Schemas, one fresh compiler per schema.

Run: python benches/python/schema_compile.py [--seconds S] [SPLIT ...]

For each split of ``../shared/corpora/maskbench-dev`` (default: JME,
Glaiveai2K, Github_easy), compiles schemas in file order with
``compile_json_schema(strict_mode=False)`` on the byte vocabulary for at most
S seconds (default 50) and prints p50 / p90 / p99 / max over the schemas that
compiled (refused ones are skipped, not timed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from corral import GrammarCompiler, LimitExceededError, TokenizerInfo, UnsupportedSchemaError

BENCH = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "maskbench-dev"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("splits", nargs="*", default=["JME", "Glaiveai2K", "Github_easy"])
    ap.add_argument("--seconds", type=float, default=50.0)
    args = ap.parse_args()
    info = TokenizerInfo.from_vocab(
        [bytes([i]) for i in range(256)] + [b"<eos>"], eos_token_ids=[256]
    )
    for split in args.splits:
        times: list[float] = []
        deadline = time.monotonic() + args.seconds
        for line in (BENCH / f"{split}.jsonl").read_text(encoding="utf-8").split("\n"):
            if not line.strip() or time.monotonic() > deadline:
                continue
            text = json.dumps(json.loads(line)["schema"])
            t = time.perf_counter()
            try:
                GrammarCompiler(info).compile_json_schema(text, strict_mode=False)
            except (UnsupportedSchemaError, LimitExceededError):
                continue
            times.append((time.perf_counter() - t) * 1e3)
        times.sort()
        if not times:
            print(f"{split}: nothing compiled")
            continue

        def pct(q: float, ts: list[float] = times) -> float:
            return ts[min(len(ts) - 1, int(q * len(ts)))]

        print(
            f"{split}: {len(times)} compiled; p50 {pct(0.5):.1f} p90 {pct(0.9):.1f} "
            f"p99 {pct(0.99):.1f} max {times[-1]:.1f} ms"
        )


if __name__ == "__main__":
    main()
