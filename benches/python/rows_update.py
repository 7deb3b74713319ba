"""The adapters' per-step bookkeeping against the length generated so far.

Run: python benches/python/rows_update.py [--length 4096]

`RowMatchers.update` (what the transformers, numpy and llama-cpp-python
processors call each step with the rows' whole sequences) on the byte
vocabulary and the grammar `[a-z]*`, for 1 and 4 rows, each step one token
longer; prints the median time of 50 steps around each length (µs). It
should not grow with the length: rows are told apart by comparing arrays,
not by hashing Python tuples of every token so far.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))

from conftest import make_byte_vocab
from corral import GrammarCompiler
from corral.adapters.rows import RowMatchers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--length", type=int, default=4096)
    args = ap.parse_args()
    marks = [m for m in (32, 512, 2048, 4096, 16384) if m <= args.length]
    grammar = GrammarCompiler(make_byte_vocab()).compile_grammar("root ::= [a-z]*")
    print("| rows | " + " | ".join(f"{m:,} tokens" for m in marks) + " |")
    print("|---|" + "---|" * len(marks))
    for batch in (1, 4):
        rows = RowMatchers([grammar] * batch, num_threads=1)
        seqs = np.full((batch, 20 + args.length), ord("b"), dtype=np.int64)
        rows.update(seqs[:, :20])
        bitmask = np.zeros(rows.bitmask_shape(), dtype=np.int32)
        times: dict[int, list[float]] = {m: [] for m in marks}
        for n in range(1, args.length + 1):
            t0 = time.perf_counter_ns()
            rows.update(seqs[:, : 20 + n])
            dt = (time.perf_counter_ns() - t0) / 1e3
            for m in marks:
                if m - 50 < n <= m:
                    times[m].append(dt)
            rows.fill(bitmask)
        cells = [f"{statistics.median(times[m]):.1f}" for m in marks]
        print(f"| {batch} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
