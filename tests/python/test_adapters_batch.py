"""`batch_fill_next_token_bitmask`: one call fills many rows, in parallel,
with the GIL released, and writes exactly what the per-matcher fills write;
`batch_accept_token` advances many matchers as their own accepts would."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from corral import (
    GrammarCompiler,
    GrammarMatcher,
    allocate_token_bitmask,
    batch_accept_token,
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
    with pytest.raises(ValueError, match="need at least"):
        batch_fill_next_token_bitmask([m1, m2], np.ascontiguousarray(bm[:, :1]))
    with pytest.raises(ValueError, match="need at least"):  # the width is checked first
        batch_fill_next_token_bitmask([m1, m2], np.ascontiguousarray(bm[:, :1]), indices=[0, 5])
    with pytest.raises(ValueError, match="num_threads"):
        batch_fill_next_token_bitmask([m1], bm, num_threads=0)
    with pytest.raises(TypeError):
        batch_fill_next_token_bitmask([m1], bm.astype(np.int64))
    with pytest.raises(TypeError, match="matcher 1"):
        batch_fill_next_token_bitmask([m1, "not a matcher"], bm)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not str"):
        batch_fill_next_token_bitmask("ab", bm)  # type: ignore[arg-type]
    assert batch_fill_next_token_bitmask([], bm) == []
    # any iterable of matchers, not only a list; a failed call leaves no
    # matcher borrowed
    scratch = allocate_token_bitmask(2, g.tokenizer_info.vocab_size)
    assert batch_fill_next_token_bitmask((m1, m2), scratch) == [True, True]
    assert batch_fill_next_token_bitmask(iter([m2, m1]), scratch, num_threads=2) == [True, True]
    # a terminated matcher fills an all-zero row; its neighbour is untouched
    assert m1.accept_string("a")
    assert m1.accept_token(m1.stop_token_ids[0])
    batch_fill_next_token_bitmask([m1], bm, indices=[1])
    assert not bm[1].any()
    assert (bm[0] == -1).all()


@pytest.mark.parametrize("num_threads", [None, 1, 2, 3])
def test_batch_accept_equals_per_matcher_accepts(qwen, qwen_compiler, num_threads):
    """Each matcher steps along its own text, some tokens refused on the way:
    the batch call's results, and the masks after it, are those of twin
    matchers advanced one `accept_token` at a time."""
    compiled = qwen_compiler.compile_grammar(JSON_GBNF)
    texts = ['{"a": [1, 2.5e3, "x\\u00e9"]}', '[true, {"k": null}]', '"plain"', "-0.25"]
    ids = [qwen.enc.encode(t) for t in texts]  # type: ignore[attr-defined]
    n = 24
    batch, each = _matchers(compiled, n), _matchers(compiled, n)
    # row i follows text i % 4 from its start; prefixes other than "" make
    # most of its tokens refused, which must leave the matcher unchanged
    vocab = qwen_compiler.tokenizer_info.vocab_size
    steps = max(len(t) for t in ids) + 1
    bogus = [-1, vocab + 5, 2**40]
    for step in range(steps):
        toks = []
        for i in range(n):
            seq = ids[i % len(ids)]
            toks.append(seq[step] if step < len(seq) else bogus[(i + step) % len(bogus)])
        got = batch_accept_token(batch, toks, num_threads=num_threads)
        want = [m.accept_token(t) for m, t in zip(each, toks, strict=True)]
        assert got == want, step
        a = allocate_token_bitmask(n, vocab)
        b = allocate_token_bitmask(n, vocab)
        batch_fill_next_token_bitmask(batch, a, num_threads=num_threads)
        for i, m in enumerate(each):
            m.fill_next_token_bitmask(b, i)
        assert np.array_equal(a, b), step
    assert [m.num_accepted_tokens for m in batch] == [m.num_accepted_tokens for m in each]
    assert any(m.num_accepted_tokens > 5 for m in batch)  # the texts were followed


def test_batch_accept_errors(byte_compiler):
    g = byte_compiler.compile_grammar('root ::= "ab"')
    m1, m2 = GrammarMatcher(g), GrammarMatcher(g)
    a, b = byte_compiler.tokenizer_info.decoded_vocab.index(b"a"), None
    with pytest.raises(ValueError, match="appears twice"):
        batch_accept_token([m1, m1], [a, a])
    with pytest.raises(ValueError, match="token ids"):
        batch_accept_token([m1, m2], [a])
    with pytest.raises(ValueError, match="num_threads"):
        batch_accept_token([m1], [a], num_threads=0)
    with pytest.raises(TypeError, match=r"token_ids\[1\] must be an int, not float"):
        batch_accept_token([m1, m2], [a, 1.0])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"token_ids\[0\] must be an int, not bool"):
        batch_accept_token([m1], [True])
    with pytest.raises(TypeError, match="not str"):
        batch_accept_token([m1], "a")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="matcher 0"):
        batch_accept_token([b], [a])  # type: ignore[list-item]
    # nothing was accepted by the failed calls; a later call works
    assert m1.num_accepted_tokens == m2.num_accepted_tokens == 0
    assert batch_accept_token([], []) == []
    assert batch_accept_token((m1, m2), iter([a, -3]), num_threads=2) == [True, False]
    assert (m1.num_accepted_tokens, m2.num_accepted_tokens) == (1, 0)
    # what samplers hand out: a numpy array, a tensor's elements
    bb = byte_compiler.tokenizer_info.decoded_vocab.index(b"b")
    assert batch_accept_token([m1, m2], np.array([bb, a], dtype=np.int64)) == [True, True]
    m3 = GrammarMatcher(g)
    assert batch_accept_token([m2, m3], torch.tensor([bb, a])) == [True, True]
    assert (m1.num_accepted_tokens, m2.num_accepted_tokens, m3.num_accepted_tokens) == (2, 2, 1)


def test_batch_concurrent_callers(qwen_compiler):
    """Python threads calling at once share the helper threads (a call that
    finds them busy fills its rows alone), and calls further apart than the
    helpers linger find them parked: every call writes the per-matcher masks."""
    compiled = qwen_compiler.compile_grammar(JSON_GBNF)
    vocab = qwen_compiler.tokenizer_info.vocab_size
    groups = [_matchers(compiled, 11 + k) for k in range(4)]
    wants = []
    for ms in groups:
        want = allocate_token_bitmask(len(ms), vocab)
        for i, m in enumerate(ms):
            m.fill_next_token_bitmask(want, i)
        wants.append(want)
    wrong: list[tuple[int, int]] = []

    def call(k: int) -> None:
        got = np.zeros_like(wants[k])
        for i in range(40):
            got[:] = 0
            batch_fill_next_token_bitmask(groups[k], got, num_threads=2)
            if not np.array_equal(got, wants[k]):
                wrong.append((k, i))
            if i % 8 == 0:
                time.sleep(0.002)  # past the 0.5 ms linger: helpers park

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(groups))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def _helper_run_ns() -> int:
    """Nanoseconds the fill helper threads have run, all crews together (the
    first field of each one's schedstat); 0 before any started."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().startswith("corral-fill"):
                total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return total


def test_batch_long_call_wakes_parked_helper(qwen):
    """A call that finds the helper parked (calls far apart) fills alone
    until its rows look like more work than a wake costs; a call of cold rows
    (fresh grammars: milliseconds) then wakes the helper, which fills rows.
    Up to 4 tries, each a fresh cold call after the helper has parked: a
    wake that never comes fails them all."""
    tries = []
    for _ in range(4):
        compilers = [GrammarCompiler(qwen.info) for _ in range(2)]
        matchers = [m for c in compilers for m in _matchers(c.compile_builtin_json_grammar(), 16)]
        bitmask = allocate_token_bitmask(len(matchers), qwen.info.vocab_size)
        batch_fill_next_token_bitmask(matchers[:2], bitmask, num_threads=2)  # the helper exists
        time.sleep(0.02)  # far past the 0.5 ms linger: the helper is parked
        before = _helper_run_ns()
        batch_fill_next_token_bitmask(matchers, bitmask, num_threads=2)
        ran = _helper_run_ns() - before
        tries.append(ran)
        if ran > 200_000:  # 0.2 ms of filling: a wake, not a stray tick
            break
    assert tries[-1] > 200_000, f"the helper ran {tries} ns during long parked calls"
    want = allocate_token_bitmask(len(matchers), qwen.info.vocab_size)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(want, i)
    got = np.zeros_like(want)
    time.sleep(0.02)
    batch_fill_next_token_bitmask(matchers, got, num_threads=2)  # warm, parked: alone
    assert np.array_equal(got, want)


def _read_syscalls() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("syscr:"):
            return int(line.split()[1])
    raise AssertionError("no syscr in /proc/self/io")


def test_default_thread_count_read_once(byte_compiler):
    """`num_threads=None` (every adapter's default) counts the cores once
    per process: counting reads cgroup files, ~7 reads and ~23 us a call,
    which was more than a warm 64-row fill on two threads."""
    compiled = byte_compiler.compile_regex("[ab]+")
    matchers = [GrammarMatcher(compiled) for _ in range(4)]
    bitmask = allocate_token_bitmask(len(matchers), byte_compiler.tokenizer_info.vocab_size)
    batch_fill_next_token_bitmask(matchers, bitmask)
    batch_accept_token(matchers, [ord("a")] * len(matchers))
    before = _read_syscalls()
    for _ in range(50):
        batch_fill_next_token_bitmask(matchers, bitmask)
        batch_accept_token(matchers, [ord("b")] * len(matchers))
    reads = _read_syscalls() - before - 1  # the first read of /proc/self/io
    assert reads < 10, f"{reads} read system calls in 100 batch calls"


def _fill_in_child(conn, matchers, want) -> None:  # type: ignore[no-untyped-def]
    """In a forked child: fill with 2 threads, report (rows right, a helper
    thread started). The child begins with the forking thread alone; a
    thread's name is set by the thread itself, later, so threads are counted."""

    def threads() -> int:
        return len(list(Path("/proc/self/task").iterdir()))

    before = threads()
    got = np.zeros_like(want)
    batch_fill_next_token_bitmask(matchers, got, num_threads=2)
    conn.send((bool(np.array_equal(got, want)), threads() > before))


def test_batch_after_fork(qwen_compiler):
    """A child forked after the helper threads started (which it does not
    inherit) starts its own and fills right."""
    compiled = qwen_compiler.compile_grammar(JSON_GBNF)
    matchers = _matchers(compiled, 16)
    want = allocate_token_bitmask(len(matchers), qwen_compiler.tokenizer_info.vocab_size)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(want, i)
    got = np.zeros_like(want)
    batch_fill_next_token_bitmask(matchers, got, num_threads=2)  # the parent's helpers
    assert np.array_equal(got, want)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_fill_in_child, args=(child, matchers, want))
    p.start()
    assert parent.poll(60), "the forked child did not answer"
    right, helper = parent.recv()
    p.join(10)
    assert p.exitcode == 0
    assert right
    assert helper, "the child filled without a helper thread of its own"


def _other_thread_ran_during_fill(qwen, num_threads) -> bool:
    """One try: whether a helper thread ran Python code while a fill of 64
    cold rows was in progress.

    The switch interval is raised far above the test's length, so the
    interpreter never forces a thread switch: the helper thread can only run
    while the main thread is inside a call that releases the GIL. It must see
    the `in_call` flag, which is true only from just before the fill to just
    after it. Cold grammars (fresh compilers, so no cached token classes; the
    built-in JSON grammar, whose masks are not built at compile as a GBNF
    grammar's are) keep the fill a few milliseconds long."""
    compilers = [GrammarCompiler(qwen.info) for _ in range(4)]
    matchers = [m for c in compilers for m in _matchers(c.compile_builtin_json_grammar(), 16)]
    bitmask = allocate_token_bitmask(len(matchers), qwen.info.vocab_size)
    go, seen, done = threading.Event(), threading.Event(), threading.Event()
    in_call = False

    def watch() -> None:
        go.wait()
        while not done.is_set():
            if in_call:
                seen.set()
                return
            time.sleep(0.0002)

    t = threading.Thread(target=watch)
    t.start()
    old = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        go.set()
        in_call = True
        if num_threads == "single":
            for i, m in enumerate(matchers):
                m.fill_next_token_bitmask(bitmask, i)
        else:
            batch_fill_next_token_bitmask(matchers, bitmask, num_threads=num_threads)
        in_call = False
    finally:
        sys.setswitchinterval(old)
        done.set()
        t.join()
    return seen.is_set()


@pytest.mark.parametrize("num_threads", [None, 1, 2, "single"])
def test_fill_releases_the_gil(qwen, num_threads):
    """Another Python thread runs while a mask fill is in progress.

    With 2 threads the caller and a worker fill rows on both cores for ~3 ms,
    and the OS may not schedule the helper thread inside so short a window on
    a loaded machine, so the test makes up to 8 tries. A fill that held the
    GIL would fail every one of them: the helper cannot run Python code while
    the flag is set."""
    tries = 8
    assert any(_other_thread_ran_during_fill(qwen, num_threads) for _ in range(tries)), (
        f"no other Python thread ran during the fill in {tries} tries"
    )
