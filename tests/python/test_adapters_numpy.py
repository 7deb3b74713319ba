"""`RowMatchers` and the numpy adapter on the byte vocabulary: rows follow their
token sequences (reordering, beams splitting), terminated rows may only stop,
unconstrained rows are left alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BYTE_EOS, bit
from corral import GrammarMatcher, bitmask_to_bool
from corral.adapters.numpy import LogitsProcessor
from corral.adapters.rows import RowMatchers

V = 259


def ids(text: str) -> list[int]:
    return list(text.encode())


def allowed(logits: np.ndarray) -> set[int]:
    return {int(i) for i in np.flatnonzero(np.isfinite(logits))}


@pytest.fixture
def digits(byte_compiler):
    return byte_compiler.compile_grammar('root ::= [0-9]{1,3} "!"')


def test_greedy_loop_on_numpy_logits(digits):
    rng = np.random.default_rng(0)
    proc = LogitsProcessor(digits)
    seq = np.array([ids("prompt: ")])
    for _ in range(10):
        logits = rng.standard_normal((1, V)).astype(np.float32)
        proc(seq, logits)
        nxt = int(logits[0].argmax())
        seq = np.concatenate([seq, [[nxt]]], axis=1)
        if nxt == BYTE_EOS:
            break
    text = bytes(seq[0, len("prompt: ") : -1].tolist())
    assert seq[0, -1] == BYTE_EOS
    assert text[-1:] == b"!"
    assert text[:-1].isdigit()
    assert 1 <= len(text) - 1 <= 3


def test_one_dimensional_inputs(digits):
    proc = LogitsProcessor(digits)
    logits = np.zeros(V, dtype=np.float32)
    proc(np.array(ids("x")), logits)
    assert allowed(logits) == set(ids("0123456789"))


def test_rows_follow_reordering_and_forks(digits):
    rows = RowMatchers(digits)
    bm = np.zeros((3, 9), dtype=np.int32)
    p = ids("P")
    rows.update([p, p, p])
    rows.update([[*p, ord("1")], [*p, ord("2")], [*p, ord("3")]])
    # beam step: row 0 continues old row 2 twice; rows reorder
    rows.update([[*p, ord("3"), ord("4")], [*p, ord("3"), ord("!")], [*p, ord("1"), ord("5")]])
    rows.fill(bm)
    ms = rows.matchers()
    assert len({id(m) for m in ms}) == 3, "a beam that splits gets a fork"
    assert [m.num_accepted_tokens for m in ms if m is not None] == [2, 2, 2]
    # row 1 ended the grammar with "!": only EOS may follow
    assert allowed_row(bm[1]) == {BYTE_EOS}
    assert allowed_row(bm[0]) == set(ids("0123456789!"))
    # row 0 after "34": one more digit or "!"
    rows.update(
        [[*p, ord("3"), ord("4"), ord("9")], [*p, ord("3"), ord("!"), BYTE_EOS], [*p, 49, 53, 33]]
    )
    rows.fill(bm)
    assert allowed_row(bm[0]) == {ord("!")}
    assert allowed_row(bm[1]) == {BYTE_EOS}  # terminated: stop only (pad)
    assert rows.matchers()[1].is_terminated()  # type: ignore[union-attr]
    # padding after termination is ignored
    rows.update(
        [[*p, 51, 52, 57, 33], [*p, 51, 33, BYTE_EOS, BYTE_EOS], [*p, 49, 53, 33, BYTE_EOS]]
    )
    rows.fill(bm)
    assert rows.refused() == [False, False, False]


def allowed_row(row: np.ndarray) -> set[int]:
    return {int(i) for i in np.flatnonzero(bitmask_to_bool(row, V))}


def test_refused_token_row_may_only_stop(digits):
    rows = RowMatchers(digits)
    bm = np.zeros((1, 9), dtype=np.int32)
    rows.update([ids("P")])
    rows.update([ids("Px")])  # "x" is not allowed (a -inf beam in beam search)
    rows.fill(bm)
    assert rows.refused() == [True]
    assert allowed_row(bm[0]) == {BYTE_EOS}


def test_mixed_rows_and_unconstrained(byte_compiler, digits):
    letters = byte_compiler.compile_grammar("root ::= [a-z]+")
    proc = LogitsProcessor([digits, None, letters])
    logits = np.zeros((3, V), dtype=np.float32)
    proc([ids("a"), ids("b"), ids("c")], logits)
    assert allowed(logits[0]) == set(ids("0123456789"))
    assert allowed(logits[1]) == set(range(V))
    assert allowed(logits[2]) == set(range(ord("a"), ord("z") + 1))


def test_spec_per_prompt_covers_its_rows(byte_compiler, digits):
    letters = byte_compiler.compile_grammar("root ::= [a-z]+")
    proc = LogitsProcessor([digits, letters])
    logits = np.zeros((4, V), dtype=np.float32)
    proc([ids("a")] * 4, logits)
    assert allowed(logits[1]) == set(ids("0123456789"))
    assert allowed(logits[2]) == set(range(ord("a"), ord("z") + 1))
    with pytest.raises(ValueError, match="split evenly"):
        LogitsProcessor([digits, letters])([ids("a")] * 3, np.zeros((3, V), np.float32))


def test_matcher_spec_continues_from_its_state(byte_compiler):
    g = byte_compiler.compile_grammar('root ::= "ab" [0-9]')
    m = GrammarMatcher(g)
    assert m.accept_string("ab")
    proc = LogitsProcessor(m)
    logits = np.zeros((1, V), dtype=np.float32)
    proc([ids("x")], logits)
    assert allowed(logits[0]) == set(ids("0123456789"))
    mask = np.zeros(9, dtype=np.int32)
    m.fill_next_token_bitmask(mask)
    assert bit(mask, ord("5"))


def test_errors(byte_compiler, digits):
    with pytest.raises(ValueError, match="no grammar"):
        RowMatchers([None])
    rows = RowMatchers(digits)
    with pytest.raises(ValueError, match="before update"):
        rows.fill(np.zeros((1, 9), dtype=np.int32))
    rows.update([ids("a")])
    with pytest.raises(ValueError, match="one processor per generate"):
        rows.update([ids("a1"), ids("a1")])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_transformers_processor_without_a_model(digits, dtype):
    """The transformers processor on CPU tensors of each dtype (float32 and
    float16 are masked through a numpy view, bfloat16 through torch ops)."""
    import torch

    from corral.adapters.transformers import LogitsProcessor as HFProcessor

    proc = HFProcessor([digits, None])
    scores = torch.zeros((2, V), dtype=getattr(torch, dtype))
    out = proc(torch.tensor([ids("ab"), ids("cd")]), scores)
    assert out is scores
    finite = torch.isfinite(scores.float()).numpy()
    assert {int(i) for i in np.flatnonzero(finite[0])} == set(ids("0123456789"))
    assert finite[1].all()
    scores = torch.zeros((2, V), dtype=getattr(torch, dtype))
    proc(torch.tensor([ids("ab7"), ids("cd7")]), scores)
    finite = torch.isfinite(scores.float()).numpy()
    assert {int(i) for i in np.flatnonzero(finite[0])} == set(ids("0123456789!"))


def _replayed_mask(compiled, tokens: list[int]) -> set[int]:
    """What a row's mask must allow, from a fresh matcher fed the row's
    tokens: stop only once it terminated or refused a token."""
    m = GrammarMatcher(compiled)
    for t in tokens:
        if m.is_terminated():
            break
        if not m.accept_token(t):
            return set(m.stop_token_ids)
    if m.is_terminated():
        return set(m.stop_token_ids)
    mask = np.zeros(9, dtype=np.int32)
    m.fill_next_token_bitmask(mask)
    return {int(i) for i in np.flatnonzero(bitmask_to_bool(mask, V))}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_rows_equal_replay_under_any_reordering(byte_compiler, data):  # type: ignore[no-untyped-def]
    """Whatever each step does to the rows (a row continues any row of its
    group by one token, repeats a row, or is new), each row's mask equals
    that of a fresh matcher replaying its tokens (two grammars, two rows
    each; tokens mostly allowed ones, sometimes anything)."""
    grammars = [
        byte_compiler.compile_grammar('root ::= [0-9]{1,3} "!"'),
        byte_compiler.compile_grammar("root ::= ([a-c] | [0-9])+"),
    ]
    rows = RowMatchers(grammars, num_threads=data.draw(st.sampled_from([None, 1, 2])))
    prompt = ids("P")
    seqs: list[list[int]] = [[] for _ in range(4)]
    alphabet = [*ids("0123456789abc!x"), BYTE_EOS]
    rows.update([prompt] * 4)
    bm = np.zeros((4, 9), dtype=np.int32)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["extend", "extend", "extend", "repeat"]))
        if kind == "repeat":  # called again at the same length
            new = [list(s) for s in seqs]
        else:
            new = []
            for r in range(4):
                group = r // 2
                src = data.draw(st.sampled_from([2 * group, 2 * group + 1]))
                new.append([*seqs[src], data.draw(st.sampled_from(alphabet))])
            if data.draw(st.booleans()):  # a row nobody can be traced to
                r = data.draw(st.integers(0, 3))
                new[r] = [data.draw(st.sampled_from(alphabet)) for _ in range(len(new[r]))]
        seqs = new
        rows.update([prompt + s for s in seqs])
        rows.fill(bm)
        for r in range(4):
            want = _replayed_mask(grammars[r // 2], seqs[r])
            got = {int(i) for i in np.flatnonzero(bitmask_to_bool(bm[r], V))}
            assert got == want, (r, seqs)
        assert rows.generated() == [tuple(s) for s in seqs]
