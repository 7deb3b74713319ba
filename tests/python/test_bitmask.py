"""Bitmask helpers: shapes, allocation, unpacking, applying to numpy and torch logits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corral
from corral import (
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    bitmask_to_bool,
    get_bitmask_shape,
)

NEG = -np.inf


def pack(allowed: np.ndarray) -> np.ndarray:
    """Reference packer, written the slow obvious way: bool (rows, V) -> int32 words."""
    rows, v = allowed.shape
    words = np.zeros((rows, -(-v // 32)), dtype=np.uint32)
    for r in range(rows):
        for t in range(v):
            if allowed[r, t]:
                words[r, t // 32] |= np.uint32(1 << (t % 32))
    return words.view(np.int32)


def random_allowed(rng: np.random.Generator, rows: int, v: int) -> np.ndarray:
    return rng.random((rows, v)) < 0.3


@pytest.mark.parametrize(
    ("batch", "vocab", "words"),
    [(1, 1, 1), (1, 32, 1), (1, 33, 2), (4, 64, 2), (2, 151_936, 4748), (3, 259, 9)],
)
def test_shape_and_allocate(batch: int, vocab: int, words: int) -> None:
    assert get_bitmask_shape(batch, vocab) == (batch, words)
    bm = allocate_token_bitmask(batch, vocab)
    assert bm.shape == (batch, words)
    assert bm.dtype == np.int32
    assert (bm == -1).all()
    assert bm.flags.c_contiguous


@pytest.mark.parametrize(("batch", "vocab"), [(0, 10), (1, 0), (-1, 5), (2, -3)])
def test_shape_rejects_nonpositive(batch: int, vocab: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        get_bitmask_shape(batch, vocab)
    with pytest.raises(ValueError, match="must be positive"):
        allocate_token_bitmask(batch, vocab)


def test_shape_rejects_non_int() -> None:
    with pytest.raises(TypeError, match="must be an int"):
        get_bitmask_shape(1.5, 10)  # type: ignore[arg-type]


def test_bitmask_to_bool_roundtrip() -> None:
    rng = np.random.default_rng(0)
    allowed = random_allowed(rng, 3, 100)
    bm = pack(allowed)
    assert np.array_equal(bitmask_to_bool(bm, 100), allowed)
    full = bitmask_to_bool(bm)
    assert full.shape == (3, 128)
    assert not full[:, 100:].any()
    one = bitmask_to_bool(bm[1], 100)
    assert one.shape == (100,)
    assert np.array_equal(one, allowed[1])
    assert bitmask_to_bool(allocate_token_bitmask(1, 40), 40).all()


def test_bitmask_to_bool_high_bit() -> None:
    bm = np.array([[np.int32(-(2**31)), 1]], dtype=np.int32)
    out = bitmask_to_bool(bm, 64)
    assert list(np.flatnonzero(out[0])) == [31, 32]


def test_bitmask_to_bool_torch() -> None:
    bm = torch.tensor([[5]], dtype=torch.int32)
    assert list(np.flatnonzero(bitmask_to_bool(bm, 8)[0])) == [0, 2]


def test_bitmask_to_bool_errors() -> None:
    with pytest.raises(TypeError, match="int32"):
        bitmask_to_bool(np.zeros((1, 2), dtype=np.int64), 10)
    with pytest.raises(ValueError, match="words per row"):
        bitmask_to_bool(np.zeros((1, 2), dtype=np.int32), 65)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        bitmask_to_bool(np.zeros((1, 1, 2), dtype=np.int32), 10)
    with pytest.raises(TypeError, match="numpy array"):
        bitmask_to_bool([[1, 2]], 10)


def expected(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    out = logits.copy()
    out[~allowed] = NEG
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_apply_numpy(dtype: type) -> None:
    rng = np.random.default_rng(1)
    allowed = random_allowed(rng, 4, 77)
    logits = rng.standard_normal((4, 77)).astype(dtype)
    want = expected(logits, allowed)
    apply_token_bitmask_inplace(logits, pack(allowed))
    assert np.array_equal(logits, want)
    assert logits.dtype == dtype


def test_apply_numpy_1d() -> None:
    rng = np.random.default_rng(2)
    allowed = random_allowed(rng, 1, 50)
    logits = rng.standard_normal(50).astype(np.float32)
    want = expected(logits[None], allowed)[0]
    apply_token_bitmask_inplace(logits, pack(allowed)[0])
    assert np.array_equal(logits, want)


def test_apply_all_allowed_is_noop() -> None:
    logits = np.arange(70, dtype=np.float32).reshape(2, 35)
    before = logits.copy()
    apply_token_bitmask_inplace(logits, allocate_token_bitmask(2, 35))
    assert np.array_equal(logits, before)


def test_apply_indices_numpy() -> None:
    rng = np.random.default_rng(3)
    allowed = random_allowed(rng, 4, 40)
    logits = rng.standard_normal((4, 40)).astype(np.float32)
    want = logits.copy()
    for r in (0, 2):
        want[r] = expected(logits[r : r + 1], allowed[r : r + 1])[0]
    for indices in ([2, 0], np.array([0, 2]), torch.tensor([0, 2])):
        got = logits.copy()
        apply_token_bitmask_inplace(got, pack(allowed), indices=indices)
        assert np.array_equal(got, want)
    untouched = logits.copy()
    apply_token_bitmask_inplace(untouched, pack(allowed), indices=[])
    assert np.array_equal(untouched, logits)


def test_apply_padded_logits_are_masked() -> None:
    # Logits wider than the bitmask: tokens past the bitmask are disallowed.
    bm = allocate_token_bitmask(1, 32)
    logits = np.zeros((1, 40), dtype=np.float32)
    apply_token_bitmask_inplace(logits, bm)
    assert (logits[0, :32] == 0).all()
    assert (logits[0, 32:] == NEG).all()


def test_apply_narrow_logits() -> None:
    # Logits narrower than bitmask * 32: only the logits' columns are used.
    allowed = np.zeros((1, 64), dtype=bool)
    allowed[0, [1, 3, 40]] = True
    logits = np.zeros((1, 10), dtype=np.float32)
    apply_token_bitmask_inplace(logits, pack(allowed))
    assert list(np.flatnonzero(logits[0] == 0)) == [1, 3]


def test_apply_explicit_vocab_size() -> None:
    bm = allocate_token_bitmask(1, 64)
    logits = np.zeros((1, 64), dtype=np.float32)
    apply_token_bitmask_inplace(logits, bm, vocab_size=50)
    assert (logits[0, :50] == 0).all()
    assert (logits[0, 50:] == NEG).all()


def test_apply_numpy_errors() -> None:
    bm = allocate_token_bitmask(2, 64)
    with pytest.raises(TypeError, match="floating-point"):
        apply_token_bitmask_inplace(np.zeros((2, 64), dtype=np.int32), bm)
    with pytest.raises(TypeError, match="int32"):
        apply_token_bitmask_inplace(np.zeros((2, 64)), bm.astype(np.int64))
    with pytest.raises(ValueError, match="rows"):
        apply_token_bitmask_inplace(np.zeros((3, 64)), bm)
    with pytest.raises(ValueError, match="out of range"):
        apply_token_bitmask_inplace(np.zeros((2, 64)), bm, indices=[2])
    with pytest.raises(ValueError, match="out of range"):
        apply_token_bitmask_inplace(np.zeros((2, 64)), bm, indices=[-1])
    with pytest.raises(TypeError, match="ints"):
        apply_token_bitmask_inplace(np.zeros((2, 64)), bm, indices=[0.5])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        apply_token_bitmask_inplace(np.zeros((1, 2, 64)), bm)
    with pytest.raises(ValueError, match="words per bitmask row"):
        apply_token_bitmask_inplace(np.zeros((2, 100)), bm, vocab_size=65)
    with pytest.raises(ValueError, match="logits width"):
        apply_token_bitmask_inplace(np.zeros((2, 40)), bm, vocab_size=50)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        apply_token_bitmask_inplace([[0.0] * 64] * 2, bm)
    readonly = np.zeros((2, 64))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        apply_token_bitmask_inplace(readonly, bm)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_apply_torch(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(4)
    allowed = random_allowed(rng, 3, 100)
    base = rng.standard_normal((3, 100)).astype(np.float32)
    logits = torch.from_numpy(base).to(dtype)
    want = torch.from_numpy(expected(base, allowed)).to(dtype)
    apply_token_bitmask_inplace(logits, torch.from_numpy(pack(allowed)))
    assert torch.equal(logits, want)
    # A numpy bitmask works with torch logits too.
    logits = torch.from_numpy(base).to(dtype)
    apply_token_bitmask_inplace(logits, pack(allowed))
    assert torch.equal(logits, want)


def test_apply_torch_1d_indices_and_padding() -> None:
    allowed = np.zeros((2, 40), dtype=bool)
    allowed[0, [0, 39]] = True
    allowed[1, [5]] = True
    bm = torch.from_numpy(pack(allowed))
    logits = torch.zeros(2, 70)
    apply_token_bitmask_inplace(logits, bm, indices=torch.tensor([1]))
    assert torch.equal(logits[0], torch.zeros(70))
    assert torch.nonzero(logits[1] == 0).flatten().tolist() == [5]
    one = torch.zeros(70)
    apply_token_bitmask_inplace(one, bm[0])
    assert torch.nonzero(one == 0).flatten().tolist() == [0, 39]


def test_apply_torch_bitmask_numpy_logits() -> None:
    allowed = np.zeros((1, 32), dtype=bool)
    allowed[0, 7] = True
    logits = np.zeros((1, 32), dtype=np.float32)
    apply_token_bitmask_inplace(logits, torch.from_numpy(pack(allowed)))
    assert list(np.flatnonzero(logits[0] == 0)) == [7]


def test_apply_torch_errors() -> None:
    bm = torch.from_numpy(allocate_token_bitmask(1, 32))
    with pytest.raises(TypeError, match="floating-point"):
        apply_token_bitmask_inplace(torch.zeros(1, 32, dtype=torch.int64), bm)
    with pytest.raises(TypeError, match="int32"):
        apply_token_bitmask_inplace(torch.zeros(1, 32), bm.to(torch.int64))
    with pytest.raises(ValueError, match="rows"):
        apply_token_bitmask_inplace(torch.zeros(2, 32), bm)


def test_matcher_mask_roundtrip() -> None:
    """A mask filled by the matcher, applied to logits, leaves exactly the allowed tokens."""
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>"]
    info = corral.TokenizerInfo.from_vocab(tokens, eos_token_ids=[256], vocab_size=300)
    g = corral.GrammarCompiler(info).compile_grammar('root ::= "ab" | "c"')
    m = corral.GrammarMatcher(g)
    bm = allocate_token_bitmask(1, info.vocab_size)
    assert m.fill_next_token_bitmask(bm)
    logits = torch.zeros(1, info.vocab_size)
    apply_token_bitmask_inplace(logits, torch.from_numpy(bm))
    assert torch.nonzero(logits[0] == 0).flatten().tolist() == [ord("a"), ord("c")]
    assert list(np.flatnonzero(bitmask_to_bool(bm, info.vocab_size)[0])) == [97, 99]


def test_pointer_fill_matches_buffer_fill() -> None:
    """The pointer entry point writes what the buffer one does, row by row, warm or not."""
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>", b"ab", b"abc"]
    info = corral.TokenizerInfo.from_vocab(tokens, eos_token_ids=[256], vocab_size=300)
    g = corral.GrammarCompiler(info).compile_regex("(ab|c)+d?")
    by_buffer, by_ptr = corral.GrammarMatcher(g), corral.GrammarMatcher(g)
    words = get_bitmask_shape(1, info.vocab_size)[1]
    for text in [b"", b"ab", b"abc", b"abcab", b"abcabd"]:
        for m in (by_buffer, by_ptr):
            m.reset()
            assert m.accept_string(text)
        for _ in range(2):  # a first visit, then from the cache
            want = np.full((2, words), -1, dtype=np.int32)
            got = np.full((2, words), -1, dtype=np.int32)
            r1 = by_buffer.fill_next_token_bitmask(want, 1)
            r2 = by_ptr.unsafe_fill_next_token_bitmask_ptr(got[1].ctypes.data, words)
            assert r1 == r2
            np.testing.assert_array_equal(got, want)


def test_pointer_fill_rejects_what_it_can_check() -> None:
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>"]
    info = corral.TokenizerInfo.from_vocab(tokens, eos_token_ids=[256])
    m = corral.GrammarMatcher(corral.GrammarCompiler(info).compile_regex("a"))
    buf = np.zeros(16, dtype=np.int32)
    with pytest.raises(ValueError, match="null or not aligned"):
        m.unsafe_fill_next_token_bitmask_ptr(0, 9)
    with pytest.raises(ValueError, match="null or not aligned"):
        m.unsafe_fill_next_token_bitmask_ptr(buf.ctypes.data + 2, 9)
    with pytest.raises(ValueError, match="need at least 9"):
        m.unsafe_fill_next_token_bitmask_ptr(buf.ctypes.data, 8)


# The native kernel (`_apply_bitmask_rows`, taken for numpy float16/32/64
# arrays and CPU tensors of those types) against the slow reference above.

_DTYPES = [np.float32, np.float64, np.float16]


@st.composite
def _apply_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, Any, int | None, str]:
    rows = draw(st.integers(1, 5))
    width = draw(st.integers(1, 200))
    words = draw(st.integers(-(-width // 32), -(-width // 32) + 2))
    # Per word: all clear, all set, or random bits at a drawn density.
    kinds = draw(st.lists(st.sampled_from("01r"), min_size=rows * words, max_size=rows * words))
    density = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    allowed = rng.random((rows, words * 32)) < density
    for k, kind in enumerate(kinds):
        r, w = divmod(k, words)
        if kind != "r":
            allowed[r, w * 32 : (w + 1) * 32] = kind == "1"
    bits = pack(allowed)
    cap = min(width, words * 32)
    vocab = draw(st.one_of(st.none(), st.integers(1, cap)))
    indices = draw(st.one_of(st.none(), st.lists(st.integers(0, rows - 1), max_size=2 * rows)))
    layout = draw(st.sampled_from(["contiguous", "column slice", "every other row", "1-D"]))
    return allowed, bits, indices, vocab, layout


def _reference(
    logits: np.ndarray, allowed: np.ndarray, indices: Any, vocab: int | None
) -> np.ndarray:
    out = logits.copy()
    n = min(out.shape[1], allowed.shape[1]) if vocab is None else vocab
    for r in range(out.shape[0]) if indices is None else sorted(set(indices)):
        keep = np.zeros(out.shape[1], dtype=bool)
        keep[:n] = allowed[r, :n]
        out[r, ~keep] = NEG
    return out


@settings(max_examples=300, deadline=None)
@given(case=_apply_case(), dtype=st.sampled_from(_DTYPES), torch_logits=st.booleans())
def test_apply_native_equals_reference(case, dtype, torch_logits) -> None:  # type: ignore[no-untyped-def]
    """Every dtype, layout (contiguous, a column slice of wider rows, every
    other row, 1-D), vocab_size and indices (repeats included): exactly the
    reference's -inf, other logits bit for bit unchanged."""
    allowed, bits, indices, vocab, layout = case
    rows, width = allowed.shape[0], min(allowed.shape[1], 200)
    rng = np.random.default_rng(7)
    if layout == "1-D":
        if indices is not None:
            indices = [0] * min(len(indices), 1)
        allowed, bits = allowed[:1], bits[:1]
        rows = 1
    base = rng.standard_normal((2 * rows, width + 5)).astype(dtype)
    if layout == "column slice":
        logits = base[:rows, 3 : 3 + width]
    elif layout == "every other row":
        logits = base[::2, :width]
    else:
        logits = np.ascontiguousarray(base[:rows, :width])
    want = _reference(logits, allowed, indices, vocab)
    target = logits[0] if layout == "1-D" else logits
    bm = bits[0] if layout == "1-D" else bits
    if torch_logits:
        tensor = torch.from_numpy(target)  # shares memory with `logits`
        apply_token_bitmask_inplace(tensor, torch.from_numpy(bm), indices=indices, vocab_size=vocab)
    else:
        apply_token_bitmask_inplace(target, bm, indices=indices, vocab_size=vocab)
    assert logits.view(np.uint8).tobytes() == want.view(np.uint8).tobytes()


@pytest.mark.parametrize("num_threads", [None, 1, 2, 3])
def test_apply_native_real_vocab(num_threads: int | None) -> None:
    """Qwen2.5's padded width: 9 rows of every kind of word, on 1-3 threads."""
    from corral._core import _apply_bitmask_rows

    rng = np.random.default_rng(11)
    v, width = 151_643, 151_936
    allowed = rng.random((9, v)) < np.linspace(0.0, 1.0, 9)[:, None]
    allowed[4, :50_000] = True
    bits = pack_fast(allowed)
    logits = rng.standard_normal((9, width)).astype(np.float32)
    want = _reference(logits, allowed, None, v)
    got = logits.copy()
    _apply_bitmask_rows(got, bits, None, v, num_threads=num_threads)
    assert np.array_equal(got, want)
    got = logits.copy()
    _apply_bitmask_rows(got, bits, [8, 2, 2], v, num_threads=num_threads)
    assert np.array_equal(got[[2, 8]], want[[2, 8]])
    assert np.array_equal(np.delete(got, [2, 8], axis=0), np.delete(logits, [2, 8], axis=0))


def pack_fast(allowed: np.ndarray) -> np.ndarray:
    """`pack` through numpy, for real vocabulary sizes (checked against it)."""
    rows, v = allowed.shape
    padded = np.zeros((rows, -(-v // 32) * 32), dtype=bool)
    padded[:, :v] = allowed
    out = np.packbits(padded, axis=1, bitorder="little").view("<i4").astype(np.int32)
    return np.ascontiguousarray(out)


def test_pack_fast_equals_pack() -> None:
    allowed = random_allowed(np.random.default_rng(12), 3, 100)
    assert np.array_equal(pack_fast(allowed), pack(allowed))


def test_apply_native_errors() -> None:
    """The kernel keeps memory safe whatever it is passed."""
    from corral._core import _apply_bitmask_rows

    bm = allocate_token_bitmask(2, 64)
    logits = np.zeros((2, 64), dtype=np.float32)
    with pytest.raises(ValueError, match="out of range"):
        _apply_bitmask_rows(logits, bm, [2], 64)
    with pytest.raises(ValueError, match="exceeds"):
        _apply_bitmask_rows(logits, bm, None, 65)
    with pytest.raises(ValueError, match="exceeds"):
        _apply_bitmask_rows(np.zeros((2, 64), dtype=np.float32), bm[:, :1].copy(), None, 64)
    with pytest.raises(TypeError, match="float32, float64"):
        _apply_bitmask_rows(logits.astype(np.int64), bm, None, 64)
    with pytest.raises(ValueError, match="2-D"):
        _apply_bitmask_rows(logits[0], bm, None, 64)
    readonly = logits.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        _apply_bitmask_rows(readonly, bm, None, 64)
    with pytest.raises(ValueError, match="contiguous"):
        _apply_bitmask_rows(np.zeros((2, 128), dtype=np.float32)[:, ::2], bm, None, 64)
    with pytest.raises(ValueError, match="overlap or run backwards"):
        _apply_bitmask_rows(logits[::-1], bm, None, 64)
    shared = np.zeros((2, 64), dtype=np.int32)
    with pytest.raises(ValueError, match="share memory"):
        _apply_bitmask_rows(shared.view(np.float32), shared, None, 64)


def test_apply_logits_sharing_the_bitmask_memory() -> None:
    """Through the public function, logits that alias the bitmask take the
    numpy path and still mask by the bits as they were."""
    buf = pack(random_allowed(np.random.default_rng(13), 2, 64 * 32))
    allowed = bitmask_to_bool(buf)[:, :64]
    logits = buf.view(np.float32)  # (2, 64): the first 64 words as floats
    want = expected(logits, allowed)
    apply_token_bitmask_inplace(logits, buf)
    assert logits.view(np.uint8).tobytes() == want.view(np.uint8).tobytes()


def test_apply_readonly_bitmask() -> None:
    words = pack(random_allowed(np.random.default_rng(14), 2, 64))
    words.flags.writeable = False
    logits = np.ones((2, 64), dtype=np.float32)
    apply_token_bitmask_inplace(logits, words)
    assert np.array_equal(
        logits, expected(np.ones((2, 64), dtype=np.float32), bitmask_to_bool(words))
    )
