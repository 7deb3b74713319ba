"""Masks inside a counted string vs a starred one, on Qwen2.5.

Run: python benches/python/counter_masks.py

Compiles `"He said \\"" X "\\" ok"` for string bodies X (`[^"]*`, `[^"]{0,100}`,
...) and teacher-forces one 24-token text: a *cold* pass on the fresh grammar
(every cache entry filled on first visit) and a *warm* pass. Prints compile
time and the median / maximum mask time of each pass. Needs the test extras
(the Qwen2.5 tokenizer comes from tests/python/conftest.py's loader).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))

from conftest import make_qwen
from corral import GrammarCompiler, GrammarMatcher, allocate_token_bitmask

TEXT = (
    'He said "the quick brown fox jumps over the lazy dog, again and again,'
    ' until the sun went down" ok'
)
BODIES = ['[^"]*', '[^"]{0,100}', '[^"]{0,16} [^"]*', '[^"]{20,400}']


def main() -> None:
    qwen = make_qwen()
    compiler = GrammarCompiler(qwen.info)
    ids = qwen.enc.encode(TEXT)
    bitmask = allocate_token_bitmask(1, qwen.info.vocab_size)
    for body in BODIES:
        grammar = f'root ::= "He said \\"" {body} "\\" ok"'
        t = time.perf_counter()
        compiled = compiler.compile_grammar(grammar)
        compile_ms = (time.perf_counter() - t) * 1e3
        passes = []
        for _ in ("cold", "warm"):
            matcher = GrammarMatcher(compiled)
            times = []
            for tok in ids:
                t = time.perf_counter()
                matcher.fill_next_token_bitmask(bitmask)
                times.append((time.perf_counter() - t) * 1e6)
                assert matcher.accept_token(tok), (body, tok)
            passes.append(f"p50 {statistics.median(times):,.0f} max {max(times):,.0f} us")
        print(f"{body:22} compile {compile_ms:.2f} ms | cold {passes[0]} | warm {passes[1]}")


if __name__ == "__main__":
    main()
