"""Grammar-constrained decoding on raw numpy logits.

For a model that hands you logits as numpy arrays (ONNX Runtime, JAX via
`np.asarray`, a hand-written sampler). `LogitsProcessor(grammars)(input_ids,
logits)` has the same semantics as the transformers adapter: `input_ids` is
`(rows, length)` (prompt plus generated tokens), `logits` is `(rows, V)` and
is masked in place. Rows may be reordered between calls (beam search).

Example::

    import numpy as np
    import corral
    from corral.adapters.numpy import LogitsProcessor

    proc = LogitsProcessor(compiled)
    ids = np.array([prompt_ids])
    while True:
        logits = my_model(ids)[:, -1, :]          # (1, V) float32
        proc(ids, logits)
        nxt = int(logits[0].argmax())
        ids = np.concatenate([ids, [[nxt]]], axis=1)
        if nxt in info.stop_token_ids:
            break
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from corral.adapters.rows import GrammarSpec, RowMatchers
from corral.bitmask import apply_token_bitmask_inplace

__all__ = ["LogitsProcessor"]


class LogitsProcessor:
    """Masks numpy logits with one grammar matcher per row.

    Args:
        grammars: As for `corral.adapters.transformers.LogitsProcessor`: a
            grammar or matcher for every row, or one spec (or None) per prompt.
        num_threads: Threads for filling the masks; None for all cores.
    """

    def __init__(
        self, grammars: Sequence[GrammarSpec] | GrammarSpec, *, num_threads: int | None = None
    ) -> None:
        self.rows = RowMatchers(grammars, num_threads=num_threads)
        self._bitmask: npt.NDArray[np.int32] | None = None

    def reset(self) -> None:
        """Forget the batch, to start over with new prompts."""
        self.rows.reset()
        self._bitmask = None

    def __call__(self, input_ids: Any, logits: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Advance the matchers by the rows' last tokens and mask `logits` in place.

        Args:
            input_ids: Integer array-like `(rows, length)`, or `(length,)` for one row.
            logits: Writable float array `(rows, V)`, or `(V,)` for one row.

        Returns:
            `logits`, masked.
        """
        ids = np.asarray(input_ids)
        self.rows.update(ids[None] if ids.ndim == 1 else ids)
        shape = self.rows.bitmask_shape()
        if self._bitmask is None or self._bitmask.shape != shape:
            self._bitmask = np.full(shape, -1, dtype=np.int32)
        masked = self.rows.fill(self._bitmask)
        if masked:
            every = len(masked) == self.rows.num_rows
            bitmask = self._bitmask[0] if logits.ndim == 1 else self._bitmask
            apply_token_bitmask_inplace(
                logits,
                bitmask,
                indices=None if every or logits.ndim == 1 else masked,
                vocab_size=self.rows.vocab_size,
            )
        return logits
