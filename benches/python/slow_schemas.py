"""Compile time of the slowest MaskBench schemas, first and best of three.

Run: python benches/python/slow_schemas.py

The 29 slowest Kubernetes schemas and 5 slow Github_medium ones (by index in
their ``../shared/corpora/maskbench-dev`` split), each compiled three times
with a fresh compiler (``compile_json_schema(strict_mode=False)``, byte
vocabulary). Prints the four slowest first compiles (first / best ms and the
position in the list) and the sums: the first compile of the process pays
one-time costs (allocator arenas, page faults), the best of three is the work.
For comparing builds (e.g. allocators) on a noisy machine: run each twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from corral import GrammarCompiler, TokenizerInfo

BENCH = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "maskbench-dev"
KUBERNETES = [5, 530, 533, 526, 201, 525, 296, 849, 6, 794, 848, 856, 857, 1060, 859]
KUBERNETES += [858, 1061, 870, 200, 759, 315, 537, 539, 314, 207, 865, 536, 306, 786]
GITHUB_MEDIUM = [1655, 25, 103, 171, 1501]


def schemas(split: str, picks: list[int]) -> list[object]:
    lines = [x for x in (BENCH / f"{split}.jsonl").read_text(encoding="utf-8").split("\n") if x]
    return [json.loads(lines[i])["schema"] for i in picks]


def main() -> None:
    info = TokenizerInfo.from_vocab(
        [bytes([i]) for i in range(256)] + [b"<eos>"], eos_token_ids=[256]
    )
    chosen = schemas("Kubernetes", KUBERNETES) + schemas("Github_medium", GITHUB_MEDIUM)
    firsts: list[float] = []
    bests: list[float] = []
    for s in chosen:
        text = json.dumps(s)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            GrammarCompiler(info).compile_json_schema(text, strict_mode=False)
            runs.append((time.perf_counter() - t) * 1e3)
        firsts.append(runs[0])
        bests.append(min(runs))
    worst = sorted(zip(firsts, bests, range(len(chosen)), strict=True), reverse=True)[:4]
    shown = [f"{f:.0f}/{b:.0f} #{i}" for f, b, i in worst]
    print("slowest first compiles (first / best ms, #):", shown)
    print(
        f"sum of bests {sum(bests):.0f} ms, max best {max(bests):.0f}; "
        f"sum of firsts {sum(firsts):.0f} ms, max first {max(firsts):.0f}"
    )


if __name__ == "__main__":
    main()
