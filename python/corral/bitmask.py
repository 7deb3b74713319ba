"""Token bitmasks: allocation, conversion, and applying a mask to logits.

A bitmask is an int32 array of shape `(batch, ceil(vocab_size / 32))`; bit
`i % 32` of word `i // 32` set means token `i` is allowed. The matcher writes
it with `GrammarMatcher.fill_next_token_bitmask`.

Everything here works on numpy arrays; `apply_token_bitmask_inplace` also
accepts torch tensors (torch is imported only when a tensor is passed).
"""

from __future__ import annotations

import operator
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from corral._core import _apply_bitmask_rows

__all__ = [
    "allocate_token_bitmask",
    "apply_token_bitmask_inplace",
    "bitmask_to_bool",
    "get_bitmask_shape",
]

#: A numpy array or a torch tensor.
Tensor = Any

_BITS = 32

#: Logit dtypes the native kernel masks in place (numpy's path takes the rest).
_NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))


def _positive(name: str, value: int) -> int:
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if n < 1:
        raise ValueError(f"{name} must be positive, got {n}")
    return n


def get_bitmask_shape(batch_size: int, vocab_size: int) -> tuple[int, int]:
    """The shape of a bitmask for `batch_size` rows over `vocab_size` tokens.

    Returns:
        `(batch_size, ceil(vocab_size / 32))`.
    """
    batch = _positive("batch_size", batch_size)
    vocab = _positive("vocab_size", vocab_size)
    return batch, -(-vocab // _BITS)


def allocate_token_bitmask(batch_size: int, vocab_size: int) -> npt.NDArray[np.int32]:
    """A new int32 bitmask with every token allowed (all bits set).

    Fill its rows with `GrammarMatcher.fill_next_token_bitmask`. To use it with
    torch, wrap it with `torch.from_numpy` (shares memory) and move the tensor
    to the logits' device after filling.
    """
    return np.full(get_bitmask_shape(batch_size, vocab_size), -1, dtype=np.int32)


def _is_torch(x: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _unpack_numpy(words: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
    """(rows, n) int32 words -> (rows, n * 32) bools, token order."""
    little = np.ascontiguousarray(words, dtype="<i4")
    bits = np.unpackbits(little.view(np.uint8), axis=-1, bitorder="little")
    return bits.astype(np.bool_)


def bitmask_to_bool(bitmask: Tensor, vocab_size: int | None = None) -> npt.NDArray[np.bool_]:
    """Unpack a bitmask into a boolean array, True where the token is allowed.

    Args:
        bitmask: An int32 numpy array (or CPU torch tensor) of shape
            `(batch, words)` or `(words,)`.
        vocab_size: How many tokens to unpack; at most `words * 32`. Defaults to
            `words * 32`.

    Returns:
        A bool array of shape `(batch, vocab_size)`, or `(vocab_size,)` for a
        1-D bitmask.
    """
    if _is_torch(bitmask):
        bitmask = bitmask.detach().cpu().numpy()
    if not isinstance(bitmask, np.ndarray):
        raise TypeError(f"bitmask must be a numpy array, got {type(bitmask).__name__}")
    if bitmask.dtype != np.int32:
        raise _not_int32(bitmask.dtype)
    if bitmask.ndim not in (1, 2):
        raise ValueError(f"bitmask must be 1-D or 2-D, got {bitmask.ndim} dimensions")
    width = bitmask.shape[-1] * _BITS
    n = width if vocab_size is None else _positive("vocab_size", vocab_size)
    if n > width:
        raise ValueError(
            f"vocab_size {n} needs {-(-n // _BITS)} words per row, "
            f"the bitmask has {bitmask.shape[-1]}"
        )
    rows = bitmask.reshape(-1, bitmask.shape[-1])
    out = _unpack_numpy(rows)[:, :n]
    return out[0] if bitmask.ndim == 1 else out


def _not_int32(dtype: object) -> TypeError:
    return TypeError(f"bitmask must have dtype int32, got {dtype}")


def apply_token_bitmask_inplace(
    logits: Tensor,
    bitmask: Tensor,
    *,
    indices: Any = None,
    vocab_size: int | None = None,
) -> None:
    """Set the logits of disallowed tokens to -inf, in place.

    numpy arrays and CPU tensors of float16, float32 or float64 (rows
    contiguous) are masked by a native kernel in one pass, with the GIL
    released and rows shared out among the threads of
    `batch_fill_next_token_bitmask`; other CPU logits by numpy, tensors on
    other devices by torch on their device.

    Args:
        logits: Floating-point logits of shape `(batch, V)` or `(V,)`: a writable
            numpy array or a torch tensor on any device.
        bitmask: An int32 bitmask of shape `(batch, words)` or `(words,)`: a numpy
            array or a torch tensor (moved to the logits' device if needed).
        indices: Which rows to mask: row `indices[i]` of `logits` is masked with
            row `indices[i]` of `bitmask`; other rows are left alone (as in
            xgrammar). A sequence of ints, a numpy array or a tensor. By default
            every row is masked, and `logits` and `bitmask` must have the same
            number of rows.
        vocab_size: How many tokens the bitmask describes. Defaults to
            `min(V, words * 32)`. Columns of `logits` at or past it are not
            tokens the mask allows (padding, or past the end of the bitmask) and
            are set to -inf too.

    Raises:
        TypeError: For a wrong dtype or array type.
        ValueError: For mismatched shapes or out-of-range indices or `vocab_size`.
    """
    if _is_torch(logits):
        _apply_torch(logits, bitmask, indices, vocab_size)
        return
    if not isinstance(logits, np.ndarray):
        raise TypeError(
            f"logits must be a numpy array or a torch tensor, got {type(logits).__name__}"
        )
    if _is_torch(bitmask):
        bitmask = bitmask.detach().cpu().numpy()
    if not isinstance(bitmask, np.ndarray):
        raise TypeError(
            f"bitmask must be a numpy array or a torch tensor, got {type(bitmask).__name__}"
        )
    if not np.issubdtype(logits.dtype, np.floating):
        raise TypeError(f"logits must have a floating-point dtype, got {logits.dtype}")
    if not logits.flags.writeable:
        raise ValueError("logits must be writable")
    if bitmask.dtype != np.int32:
        raise _not_int32(bitmask.dtype)
    logits2, bitmask2, n = _shapes(logits.ndim, bitmask.ndim, logits, bitmask, vocab_size)
    rows = _rows(indices, logits2.shape[0], bitmask2.shape[0])
    native = _native_view(logits2)
    if native is not None and not np.may_share_memory(logits2, bitmask2):
        rows_list = None if rows is None else rows.tolist()
        _apply_bitmask_rows(native, np.ascontiguousarray(bitmask2), rows_list, n)
        return
    # Other float types (longdouble), rows with gaps between elements, or
    # logits in the bitmask's memory: numpy unpacks the bits before writing.
    if rows is None:
        allowed = _unpack_numpy(bitmask2)[:, :n]
        np.copyto(logits2[:, :n], -np.inf, where=~allowed)
        logits2[:, n:] = -np.inf
    else:
        allowed = _unpack_numpy(bitmask2[rows])[:, :n]
        logits2[rows, :n] = np.where(allowed, logits2[rows, :n], -np.inf)
        logits2[rows, n:] = -np.inf


def _native_view(logits2: npt.NDArray[Any]) -> npt.NDArray[Any] | None:
    """`logits2` as the native kernel takes it (float16 viewed as uint16),
    or None if its dtype or layout needs the numpy path."""
    dt = logits2.dtype
    if dt not in _NATIVE_FLOATS or not dt.isnative:
        return None
    rows, width = logits2.shape
    s0, s1 = logits2.strides
    if width > 1 and s1 != dt.itemsize:
        return None
    if rows > 1 and (s0 % dt.itemsize or s0 < width * dt.itemsize):
        return None
    return logits2.view(np.uint16) if dt == np.float16 else logits2


def _shapes(
    logits_ndim: int, bitmask_ndim: int, logits: Tensor, bitmask: Tensor, vocab_size: int | None
) -> tuple[Tensor, Tensor, int]:
    """2-D views of both arrays and the number of columns the mask covers."""
    if logits_ndim not in (1, 2):
        raise ValueError(f"logits must be 1-D or 2-D, got {logits_ndim} dimensions")
    if bitmask_ndim not in (1, 2):
        raise ValueError(f"bitmask must be 1-D or 2-D, got {bitmask_ndim} dimensions")
    logits2 = logits[None] if logits_ndim == 1 else logits
    bitmask2 = bitmask[None] if bitmask_ndim == 1 else bitmask
    width = int(logits2.shape[1])
    mask_width = int(bitmask2.shape[1]) * _BITS
    if vocab_size is None:
        n = min(width, mask_width)
    else:
        n = _positive("vocab_size", vocab_size)
        if n > mask_width:
            raise ValueError(
                f"vocab_size {n} needs {-(-n // _BITS)} words per bitmask row, "
                f"the bitmask has {bitmask2.shape[1]}"
            )
        if n > width:
            raise ValueError(f"vocab_size {n} is larger than the logits width {width}")
    return logits2, bitmask2, n


def _rows(indices: Any, logits_rows: int, bitmask_rows: int) -> npt.NDArray[np.intp] | None:
    """The row indices to mask, checked; None means all rows."""
    if indices is None:
        if logits_rows != bitmask_rows:
            raise ValueError(
                f"logits have {logits_rows} rows but the bitmask has {bitmask_rows}; "
                "pass indices= to mask a subset of rows"
            )
        return None
    if _is_torch(indices):
        indices = indices.detach().cpu().numpy()
    idx = np.asarray(indices)
    if idx.size == 0:
        return np.zeros(0, dtype=np.intp)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError("indices must be a 1-D sequence of ints")
    limit = min(logits_rows, bitmask_rows)
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= limit:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"index {bad} is out of range: logits have {logits_rows} rows, "
            f"the bitmask has {bitmask_rows}"
        )
    return idx.astype(np.intp, copy=False)


def _apply_torch(logits: Tensor, bitmask: Tensor, indices: Any, vocab_size: int | None) -> None:
    import torch

    if not logits.dtype.is_floating_point:
        raise TypeError(f"logits must have a floating-point dtype, got {logits.dtype}")
    if logits.device.type == "cpu" and logits.dtype in (
        torch.float32,
        torch.float64,
        torch.float16,
    ):
        # The numpy view shares the tensor's memory: the native kernel masks
        # it in place (torch's bit ops built a 32-times-wider temporary).
        if isinstance(bitmask, torch.Tensor):
            bitmask = bitmask.detach().cpu().numpy()
        apply_token_bitmask_inplace(
            logits.detach().numpy(), bitmask, indices=indices, vocab_size=vocab_size
        )
        return
    if isinstance(bitmask, np.ndarray):
        if bitmask.dtype != np.int32:
            raise _not_int32(bitmask.dtype)
        bitmask = torch.from_numpy(bitmask)
    if not isinstance(bitmask, torch.Tensor):
        raise TypeError(
            f"bitmask must be a numpy array or a torch tensor, got {type(bitmask).__name__}"
        )
    if bitmask.dtype != torch.int32:
        raise _not_int32(bitmask.dtype)
    logits2, bitmask2, n = _shapes(logits.dim(), bitmask.dim(), logits, bitmask, vocab_size)
    rows = _rows(indices, int(logits2.shape[0]), int(bitmask2.shape[0]))
    device = logits.device
    if rows is not None:
        row_t = torch.from_numpy(rows).to(device)
        bitmask2 = bitmask2.to(device, non_blocking=True)[row_t]
    else:
        bitmask2 = bitmask2.to(device, non_blocking=True)
    shifts = torch.arange(_BITS, dtype=torch.int32, device=device)
    bits = (bitmask2.unsqueeze(-1) >> shifts) & 1
    disallowed = (bits == 0).reshape(bits.shape[0], -1)[:, :n]
    if rows is None:
        logits2[:, :n].masked_fill_(disallowed, float("-inf"))
        logits2[:, n:] = float("-inf")
    else:
        logits2[row_t, :n] = logits2[row_t, :n].masked_fill(disallowed, float("-inf"))
        logits2[row_t, n:] = float("-inf")
