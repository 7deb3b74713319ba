"""Applying bitmasks to CPU logits: the native kernel against numpy.

Run: python benches/python/apply_cpu.py [--repeat 200]

For vocabularies of 49,152 (SmolLM2) and 151,936 (Qwen2.5's padded logits)
and batches of 1, 4 and 64 rows, rows cycling through four kinds met while
decoding: everything allowed, half allowed at random, 1% allowed, one token
allowed. Times one `apply_token_bitmask_inplace` call on float32 logits as a
numpy array and as a CPU torch tensor (both take the native kernel), and
numpy's unpack-and-select (`np.unpackbits` then `np.copyto(..., where=)`,
the package's path for other float types and strided rows, and what it did
for every CPU array before the kernel); medians and p99 in microseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from corral import apply_token_bitmask_inplace


def rows_of_kinds(rng: np.random.Generator, batch: int, vocab: int) -> np.ndarray:
    words = -(-vocab // 32)
    allowed = np.zeros((batch, words * 32), dtype=bool)
    for r in range(batch):
        kind = r % 4
        if kind == 0:
            allowed[r] = True
        elif kind == 1:
            allowed[r] = rng.random(words * 32) < 0.5
        elif kind == 2:
            allowed[r] = rng.random(words * 32) < 0.01
        else:
            allowed[r, 123] = True
    return np.packbits(allowed, axis=1, bitorder="little").view("<i4").astype(np.int32)


def numpy_select(logits: np.ndarray, bitmask: np.ndarray) -> None:
    bits = np.unpackbits(bitmask.view(np.uint8), axis=-1, bitorder="little")
    allowed = bits[:, : logits.shape[1]].astype(np.bool_)
    np.copyto(logits, -np.inf, where=~allowed)


def percentiles(times: list[float]) -> str:
    times = sorted(times)
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return f"{statistics.median(times):,.1f} / {p99:,.1f}"


def measure(rng: np.random.Generator, vocab: int, batch: int, repeat: int) -> list[str]:
    """Median / p99 µs of each way, each call on freshly copied logits."""
    bitmask = rows_of_kinds(rng, batch, vocab)
    base = rng.standard_normal((batch, vocab)).astype(np.float32)
    work = base.copy()
    tensor = torch.from_numpy(work)  # shares `work`'s memory
    ways: list[Callable[[], None]] = [
        lambda: apply_token_bitmask_inplace(work, bitmask),
        lambda: apply_token_bitmask_inplace(tensor, bitmask),
        lambda: numpy_select(work, bitmask),
    ]
    out = []
    for way in ways:
        times = []
        for _ in range(repeat):
            np.copyto(work, base)
            t0 = time.perf_counter_ns()
            way()
            times.append((time.perf_counter_ns() - t0) / 1e3)
        out.append(percentiles(times))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f} (1 min)")
    print("| vocab | rows | native, numpy array | native, torch CPU tensor | numpy select |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for vocab in (49_152, 151_936):
        for batch in (1, 4, 64):
            repeat = max(20, args.repeat // (1 + batch // 8))
            cells = measure(rng, vocab, batch, repeat)
            print(f"| {vocab:,} | {batch} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
