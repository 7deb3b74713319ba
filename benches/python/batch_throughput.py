"""Batch mask fills: throughput on 1 vs 2 threads, and whether the GIL is released.

Run: python benches/python/batch_throughput.py [--matchers 64] [--steps 120] [--rounds 5]
                                               [--accept batch|each] [--json OUT]

Sixty-four matchers over mixed grammars on the Qwen2.5 vocabulary (a quarter
each: MaskBench JSON Schemas from the compare sample, the builtin any-JSON
grammar over MaskBench documents, the compare GBNF grammars, the compare
regexes), each teacher-forced along a valid text (restarting it when done).
Every step fills all rows with one `batch_fill_next_token_bitmask` call and
then accepts each row's token, with one `batch_accept_token` call on the
step's thread count (`--accept batch`, the default: what the adapters and a
batch engine do) or one `accept_token` call per row from Python (`--accept
each`); only the fill calls are timed. The accepts matter to the fills that
follow: with Python's accepts every matcher was last written on the calling
thread, and the helper's rows start by fetching it from the other core.

- cold: one pass on freshly compiled grammars (the fills also classify the
  vocabulary for every state they meet), per thread count;
- warm: `--rounds` passes per thread count after a warm-up pass, interleaved
  so that machine load hits both alike; masks/s of the median and best round;
- default: the same warm step refilled back to back with `num_threads=None`
  (one thread per core) and with that count named: median call times;
- spaced: calls far apart, as a server's once per decoding step (every 2 and
  20 ms; the same warm step refilled, 1 and 2 threads alternated), where the
  helpers have parked between calls: median call time per thread count;
- GIL: a Python thread counts in a loop; its rate while the main thread is
  inside batch fills, relative to its rate while the main thread sleeps
  (1.0: the fills do not slow Python threads at all; near 0: GIL held).

`--json OUT` also writes the figures (masks/s, ratios, GIL rates) as JSON,
for the comparative benchmark's check of issue 5's targets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _workloads as wl

from conftest import make_qwen
from corral import (
    GrammarCompiler,
    GrammarMatcher,
    TokenizerInfo,
    allocate_token_bitmask,
    batch_accept_token,
    batch_fill_next_token_bitmask,
)

KINDS = ("schema", "json", "gbnf", "regex")


def pick(info: TokenizerInfo, n: int, seed: int) -> list[wl.Case]:
    """`n` cases, a quarter of each kind (cycling through a kind's texts)."""
    compiler = GrammarCompiler(info)
    out: list[wl.Case] = []
    for k, kind in enumerate(KINDS):
        want = n // len(KINDS) + (1 if k < n % len(KINDS) else 0)
        ok = [c for c, _ in wl.compilable(compiler, wl.cases(kind, n=max(want, 50), seed=seed))]
        out += [ok[i % len(ok)] for i in range(want)]
    return out


class Rows:
    """The matchers of one run, each following its text and restarting it."""

    def __init__(self, info: TokenizerInfo, picked: list[wl.Case], batch_accept: bool) -> None:
        compiler = GrammarCompiler(info)  # fresh: cold caches
        self.cases = picked
        self.matchers = [GrammarMatcher(wl.compile_spec(compiler, c.spec)) for c in picked]
        self.pos = [0] * len(picked)
        self.bitmask = allocate_token_bitmask(len(picked), info.vocab_size)
        self.batch_accept = batch_accept

    def restart(self) -> None:
        for m in self.matchers:
            m.reset()
        self.pos = [0] * len(self.cases)

    def advance(self, threads: int = 1) -> None:
        for i, (m, c) in enumerate(zip(self.matchers, self.cases, strict=True)):
            if self.pos[i] == len(c.ids):
                m.reset()
                self.pos[i] = 0
        tokens = [c.ids[p] for c, p in zip(self.cases, self.pos, strict=True)]
        if self.batch_accept:
            ok = batch_accept_token(self.matchers, tokens, num_threads=threads)
        else:
            ok = [m.accept_token(t) for m, t in zip(self.matchers, tokens, strict=True)]
        for i, c in enumerate(self.cases):
            assert ok[i], (c.kind, c.name, self.pos[i])
            self.pos[i] += 1

    def run(self, steps: int, threads: int) -> tuple[float, float]:
        """Wall and process CPU seconds spent inside the fill calls over `steps` steps."""
        wall = cpu = 0.0
        for _ in range(steps):
            c0, t0 = time.process_time(), time.perf_counter()
            batch_fill_next_token_bitmask(self.matchers, self.bitmask, num_threads=threads)
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            self.advance(threads)
        return wall, cpu


class Counter(threading.Thread):
    """A Python thread that counts as fast as it can until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.n = 0
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            self.n += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--matchers", type=int, default=64)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--accept", choices=("batch", "each"), default="batch")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"cpus {os.cpu_count()}, load {load:.2f} (1 min)")

    qwen = make_qwen()
    picked = pick(qwen.info, args.matchers, args.seed)
    kinds = {k: sum(c.kind == k for c in picked) for k in KINDS}
    print(f"{len(picked)} matchers: {kinds}; {args.steps} steps; accept {args.accept}")
    batch_accept = args.accept == "batch"
    masks = len(picked) * args.steps

    cold = {}
    for threads in (1, 2):
        cold[threads] = masks / Rows(qwen.info, picked, batch_accept).run(args.steps, threads)[0]
    rows = Rows(qwen.info, picked, batch_accept)
    rows.run(args.steps, 1)  # warm-up: fill the cache for every state on the path
    warm: dict[int, list[float]] = {1: [], 2: []}
    util: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for threads in (1, 2):
            rows.restart()
            wall, cpu = rows.run(args.steps, threads)
            warm[threads].append(masks / wall)
            util[threads].append(cpu / wall)

    # CPU/wall: how many cores the fills actually got (2 threads on a busy
    # 2-core machine may get far less than 2). A helper that polls without
    # system calls is charged its CPU at scheduler ticks, mostly outside
    # these 20 us windows, so the 2-thread figure reads low since the crew.
    head = ("", "cold masks/s", "warm median", "warm best", "CPU/wall", "masks/CPU-s")
    print("{:6} {:>13} {:>12} {:>10} {:>9} {:>12}".format(*head))
    for threads in (1, 2):
        med, best = statistics.median(warm[threads]), max(warm[threads])
        u = statistics.median(util[threads])
        print(
            f"{threads} thr  {cold[threads]:>13,.0f} {med:>12,.0f} {best:>10,.0f} "
            f"{u:>9.2f} {med / u:>12,.0f}"
        )
    figures: dict[str, object] = {
        "load": load,
        "matchers": len(picked),
        "steps": args.steps,
        "rounds": args.rounds,
        "cold": cold,
        "warm_median": {t: statistics.median(warm[t]) for t in warm},
        "warm_best": {t: max(warm[t]) for t in warm},
    }
    print(
        f"ratio 2/1: cold {cold[2] / cold[1]:.2f}, warm median "
        f"{statistics.median(warm[2]) / statistics.median(warm[1]):.2f}, "
        f"warm best {max(warm[2]) / max(warm[1]):.2f}"
    )

    # The default thread count (`num_threads=None`, what the adapters pass)
    # must cost no more than naming it: the same warm step refilled.
    named = os.cpu_count() or 1
    calls: dict[int | None, list[float]] = {None: [], named: []}
    for _ in range(5):
        for asked in calls:
            for _ in range(40):
                t0 = time.perf_counter()
                batch_fill_next_token_bitmask(rows.matchers, rows.bitmask, num_threads=asked)
                calls[asked].append(time.perf_counter() - t0)
    dflt, named_s = (statistics.median(calls[t]) * 1e6 for t in (None, named))
    print(f"num_threads=None: median call {dflt:.1f} us; num_threads={named}: {named_s:.1f} us")

    # Spaced calls: the helpers park between them (past the 0.5 ms linger),
    # and waking one blocks the caller for the wake's system call.
    for gap_ms in (2, 20):
        spaced: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(3):
            for threads in (1, 2):
                for _ in range(30):
                    time.sleep(gap_ms / 1000)
                    t0 = time.perf_counter()
                    batch_fill_next_token_bitmask(rows.matchers, rows.bitmask, num_threads=threads)
                    spaced[threads].append(time.perf_counter() - t0)
        one, two = (statistics.median(spaced[t]) * 1e6 for t in (1, 2))
        print(f"spaced {gap_ms:>2} ms: median call {one:.1f} us on 1 thread, {two:.1f} us on 2")

    # GIL: the counter's rate inside fill calls vs while the main thread
    # sleeps, and vs inside a CPU-bound call known to release the GIL (hashing
    # a large buffer), which separates GIL effects from competition for cores.
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # hand the GIL back quickly after each call
    counter = Counter()
    counter.start()
    fills: dict[int, float] = {}
    try:
        n0 = counter.n
        time.sleep(1.0)
        idle = (counter.n - n0) / 1.0
        blob = b"x" * 20_000_000
        ticks, secs = 0, 0.0
        while secs < 1.0:
            n0, t0 = counter.n, time.perf_counter()
            hashlib.sha256(blob).digest()
            secs += time.perf_counter() - t0
            ticks += counter.n - n0
        busy = ticks / secs
        print(f"GIL: counter {idle / 1e6:.2f} M/s idle, {busy / 1e6:.2f} M/s inside sha256")
        for threads in (1, 2):
            rows.restart()
            ticks, secs = 0, 0.0
            for _ in range(args.steps):
                n0, t0 = counter.n, time.perf_counter()
                batch_fill_next_token_bitmask(rows.matchers, rows.bitmask, num_threads=threads)
                secs += time.perf_counter() - t0
                ticks += counter.n - n0
                rows.advance(threads)
            rate = ticks / secs
            fills[threads] = rate
            print(
                f"GIL, {threads} thr: counter {rate / 1e6:.2f} M/s inside fills "
                f"({rate / idle:.2f} of idle, {rate / busy:.2f} of sha256); "
                f"{masks / secs:,.0f} masks/s meanwhile"
            )
    finally:
        counter.stop = True
        counter.join()
        sys.setswitchinterval(old)
    figures["gil"] = {"idle": idle, "sha256": busy, "fills": fills}
    if args.json is not None:
        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
