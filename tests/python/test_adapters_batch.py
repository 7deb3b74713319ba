"""`batch_fill_next_token_bitmask`: one call fills many rows, in parallel,
with the GIL released, and writes exactly what the per-matcher fills write."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from conftest import REPO
from corral import (
    GrammarCompiler,
    GrammarMatcher,
    allocate_token_bitmask,
    batch_fill_next_token_bitmask,
)

JSON_GBNF = (REPO / "examples" / "json.gbnf").read_text(encoding="utf-8")
# Prefixes that put the JSON matcher into different kinds of states.
PREFIXES = [
    "",
    "{",
    '{"a',
    '{"a": ',
    '{"a": [1',
    '{"a": "x\\',
    "[",
    '{"a": tr',
    '"\\u00',
    "[1.5e",
    '{"k": {"j": [',
]


def _matchers(compiled, n: int) -> list[GrammarMatcher]:
    out = []
    for i in range(n):
        m = GrammarMatcher(compiled)
        assert m.accept_string(PREFIXES[i % len(PREFIXES)])
        out.append(m)
    return out


@pytest.mark.parametrize("num_threads", [None, 1, 3])
def test_batch_equals_per_matcher_fills(qwen_compiler, num_threads):
    compiled = qwen_compiler.compile_grammar(JSON_GBNF)
    matchers = _matchers(compiled, 23)
    vocab = qwen_compiler.tokenizer_info.vocab_size
    want = allocate_token_bitmask(len(matchers), vocab)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(want, i)
    got = np.zeros_like(want)
    needs = batch_fill_next_token_bitmask(matchers, got, num_threads=num_threads)
    assert np.array_equal(got, want)
    assert needs == [True] * len(matchers)


def test_batch_indices_and_torch_bitmask(qwen_compiler):
    compiled = qwen_compiler.compile_grammar(JSON_GBNF)
    matchers = _matchers(compiled, 5)
    vocab = qwen_compiler.tokenizer_info.vocab_size
    want = allocate_token_bitmask(8, vocab)
    rows = [7, 0, 3, 5, 1]
    for m, r in zip(matchers, rows, strict=True):
        m.fill_next_token_bitmask(want, r)
    got = torch.full(want.shape, -1, dtype=torch.int32)
    batch_fill_next_token_bitmask(matchers, got, indices=rows)
    assert np.array_equal(got.numpy(), want)  # untouched rows stay all-allowed


def test_batch_mixed_grammars(qwen_compiler):
    grammars = [
        qwen_compiler.compile_grammar(JSON_GBNF),
        qwen_compiler.compile_regex(r"[a-z]{2,5}@example\.(com|org)"),
        qwen_compiler.compile_grammar((REPO / "examples" / "arithmetic.gbnf").read_text()),
    ]
    matchers = [GrammarMatcher(g) for g in grammars for _ in range(3)]
    assert matchers[4].accept_string("ab")
    vocab = qwen_compiler.tokenizer_info.vocab_size
    want = allocate_token_bitmask(len(matchers), vocab)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(want, i)
    got = allocate_token_bitmask(len(matchers), vocab)
    batch_fill_next_token_bitmask(matchers, got)
    assert np.array_equal(got, want)


def test_batch_errors(byte_compiler):
    g = byte_compiler.compile_grammar('root ::= "a"')
    m1, m2 = GrammarMatcher(g), GrammarMatcher(g)
    bm = allocate_token_bitmask(2, g.tokenizer_info.vocab_size)
    with pytest.raises(ValueError, match="appears twice"):
        batch_fill_next_token_bitmask([m1, m1], bm)
    with pytest.raises(ValueError, match="appears twice"):
        batch_fill_next_token_bitmask([m1, m2], bm, indices=[1, 1])
    with pytest.raises(ValueError, match="indices"):
        batch_fill_next_token_bitmask([m1, m2], bm, indices=[0])
    with pytest.raises(ValueError, match="out of range"):
        batch_fill_next_token_bitmask([m1, m2], bm, indices=[0, 2])
    with pytest.raises(ValueError, match="num_threads"):
        batch_fill_next_token_bitmask([m1], bm, num_threads=0)
    with pytest.raises(TypeError):
        batch_fill_next_token_bitmask([m1], bm.astype(np.int64))
    with pytest.raises(TypeError):
        batch_fill_next_token_bitmask(["not a matcher"], bm)  # type: ignore[list-item]
    assert batch_fill_next_token_bitmask([], bm) == []
    # a terminated matcher fills an all-zero row; its neighbour is untouched
    assert m1.accept_string("a")
    assert m1.accept_token(m1.stop_token_ids[0])
    batch_fill_next_token_bitmask([m1], bm, indices=[1])
    assert not bm[1].any()
    assert (bm[0] == -1).all()


@pytest.mark.parametrize("num_threads", [None, 1])
def test_batch_fill_releases_the_gil(qwen, num_threads):
    """A Python thread keeps running while a long batch fill is in progress.

    Cold grammars (fresh compilers, so no cached token classes) make the call
    take tens of milliseconds; the counter thread stamps the time of each
    tick, and ticks must land well inside the call (not just at its edges,
    where the switch interval could let one through)."""
    compilers = [GrammarCompiler(qwen.info) for _ in range(4)]
    matchers = [m for c in compilers for m in _matchers(c.compile_grammar(JSON_GBNF), 16)]
    bitmask = allocate_token_bitmask(len(matchers), qwen.info.vocab_size)
    ticks: list[float] = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            for _ in range(200):
                pass

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.05)
        start = time.perf_counter()
        batch_fill_next_token_bitmask(matchers, bitmask, num_threads=num_threads)
        end = time.perf_counter()
    finally:
        stop.set()
        t.join()
    span = end - start
    assert span > 0.02, f"the fill took only {span * 1e3:.1f} ms; the test needs a longer one"
    inside = [x for x in ticks if start + 0.25 * span < x < end - 0.25 * span]
    assert len(inside) >= 10, (len(inside), span)
