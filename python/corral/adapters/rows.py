"""One grammar matcher per batch row, kept in step with the rows' token sequences.

Samplers hand a logits processor the token sequences of the batch (prompt plus
what has been generated) and the next-token scores. `RowMatchers` turns those
sequences into matcher states and the matcher states into one bitmask:

- On the first call the sequences are the prompts: their (common, padded)
  length is recorded, and each row gets a fresh matcher.
- On each later call, row `r`'s generated tokens minus the last one name the
  row it came from (its parent, at the previous call); the parent's matcher is
  taken over, or forked when several rows continue the same parent (beam
  search), and advanced by the last token. A row that nobody can be traced to
  is replayed from the start of its grammar.
- A row whose matcher has terminated (it accepted a stop token), or that
  carries a token its grammar refused (a beam with score -inf), may only
  produce a stop token: its row of the bitmask allows exactly those, so
  sampling never sees a row of all -inf.
- Rows without a grammar (`None`) are left alone.

Matchers made here never roll back, so they keep no rollback window (their
chart stays small however long the generation). The rows' masks are filled
with one `batch_fill_next_token_bitmask` call, and the rows' new tokens
accepted with one `batch_accept_token` call (in parallel, without the GIL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from corral._core import (
    CompiledGrammar,
    GrammarMatcher,
    batch_accept_token,
    batch_fill_next_token_bitmask,
)
from corral.bitmask import get_bitmask_shape

__all__ = ["GrammarSpec", "RowMatchers"]

GrammarSpec: TypeAlias = CompiledGrammar | GrammarMatcher | None
"""What constrains a row: a compiled grammar (a fresh matcher per row), a
matcher (used from its current state; forked for extra rows), or None (no
constraint)."""


@dataclass
class _Row:
    group: int  # index into the specs
    matcher: GrammarMatcher | None
    refused: bool = False  # a token was refused: only stop tokens from here on

    def done(self) -> bool:
        return self.matcher is None or self.refused or self.matcher.is_terminated()


class RowMatchers:
    """Matchers for the rows of a batch, following the rows' token sequences.

    Args:
        grammars: One spec per prompt (or one spec for all). If the sampler
            has `k` rows per prompt (beam search, `num_return_sequences`),
            each spec covers `k` consecutive rows.
        num_threads: Passed to `batch_fill_next_token_bitmask` and
            `batch_accept_token`.

    Raises:
        ValueError: If no spec has a grammar, or the grammars' vocabularies
            differ in size.
    """

    def __init__(
        self, grammars: Sequence[GrammarSpec] | GrammarSpec, *, num_threads: int | None = None
    ) -> None:
        if isinstance(grammars, (CompiledGrammar, GrammarMatcher)) or grammars is None:
            grammars = [grammars]
        self._specs: list[GrammarSpec] = list(grammars)
        compiled = [_compiled(s) for s in self._specs if s is not None]
        if not compiled:
            raise ValueError("no grammar given: pass a CompiledGrammar or a GrammarMatcher")
        sizes = {g.tokenizer_info.vocab_size for g in compiled}
        if len(sizes) != 1:
            raise ValueError(f"the grammars' vocabularies differ in size: {sorted(sizes)}")
        self.vocab_size: int = sizes.pop()
        """The vocabulary size the bitmask describes (columns past it are masked)."""
        self.num_threads = num_threads
        self._rows: list[_Row] | None = None
        self._prompt_len = 0
        # The rows' generated tokens (after the prompt) at the last update,
        # int64: rows are told apart by comparing these in numpy, not tuples
        # in Python (which made every step cost the length generated so far:
        # 0.8 ms a step for 4 rows at 4,096 tokens).
        self._gen: npt.NDArray[np.int64] = np.zeros((0, 0), dtype=np.int64)
        self._stop_rows: dict[tuple[int, ...], npt.NDArray[np.int32]] = {}

    @property
    def started(self) -> bool:
        """Whether `update` has seen the prompts."""
        return self._rows is not None

    @property
    def num_rows(self) -> int:
        """The number of rows (0 before the first `update`)."""
        return 0 if self._rows is None else len(self._rows)

    def matchers(self) -> list[GrammarMatcher | None]:
        """The current matcher of each row (None for an unconstrained row)."""
        return [r.matcher for r in self._rows or []]

    def refused(self) -> list[bool]:
        """For each row, whether it carries a token its grammar refused."""
        return [r.refused for r in self._rows or []]

    def generated(self) -> list[tuple[int, ...]]:
        """The tokens each row generated after the prompt, as last seen."""
        if self._rows is None:
            return []
        return [tuple(g) for g in self._gen.tolist()]

    def reset(self) -> None:
        """Forget all rows: the next `update` is a new batch of prompts."""
        self._rows = None
        self._prompt_len = 0

    def bitmask_shape(self) -> tuple[int, int]:
        """The shape of the bitmask `fill` writes: `(rows, ceil(vocab_size / 32))`."""
        return get_bitmask_shape(max(self.num_rows, 1), self.vocab_size)

    def update(self, sequences: Any) -> None:
        """Bring the matchers in step with the rows' token sequences.

        Args:
            sequences: Integer array-like of shape `(rows, length)`: prompt
                followed by the generated tokens, one row per sequence.

        Raises:
            ValueError: If the shape does not fit the grammars or the prompt.
        """
        seqs = np.asarray(sequences)
        if seqs.ndim != 2:
            raise ValueError(f"sequences must be 2-D (rows, length), got shape {seqs.shape}")
        n_rows, length = int(seqs.shape[0]), int(seqs.shape[1])
        if self._rows is None:
            self._start(n_rows, length)
            return
        if n_rows != len(self._rows):
            raise ValueError(
                f"the batch had {len(self._rows)} rows and now has {n_rows}; "
                "use one processor per generate() call (or reset() it)"
            )
        if length < self._prompt_len:
            raise ValueError(
                f"sequences of length {length} are shorter than the prompt ({self._prompt_len})"
            )
        self._advance(np.ascontiguousarray(seqs[:, self._prompt_len :], dtype=np.int64))

    def _start(self, n_rows: int, length: int) -> None:
        if n_rows % len(self._specs):
            raise ValueError(
                f"{n_rows} rows cannot be split evenly among {len(self._specs)} grammars"
            )
        per = n_rows // len(self._specs)
        rows: list[_Row] = []
        for g, spec in enumerate(self._specs):
            for k in range(per):
                rows.append(_Row(g, _new_matcher(spec, first=k == 0)))
        self._rows = rows
        self._prompt_len = length
        self._gen = np.zeros((n_rows, 0), dtype=np.int64)

    def _advance(self, gen: npt.NDArray[np.int64]) -> None:
        old, prev = self._rows, self._gen
        assert old is not None
        n_rows, length = gen.shape
        per = len(old) // len(self._specs)
        # Row r usually continues row r: checked for all rows at once.
        extends = np.zeros(n_rows, dtype=bool)
        unchanged = np.zeros(n_rows, dtype=bool)
        if length >= 1 and prev.shape[1] == length - 1:
            extends = (gen[:, :-1] == prev).all(axis=1)
        elif prev.shape[1] == length:
            unchanged = (gen == prev).all(axis=1)
        # Otherwise a parent is the first old row of the group with the
        # tokens (bytes of int64s: hashed and compared in C).
        by_tokens: dict[tuple[int, bytes], int] | None = None
        # Pass 1: find each row's parent and hand out matchers (before any advance).
        claimed: set[int] = set()
        new: list[_Row] = []
        pending: list[list[int]] = []  # tokens each new row still has to accept
        for r in range(n_rows):
            group = r // per
            parent: int | None = r if extends[r] or unchanged[r] else None
            todo = [int(gen[r, -1])] if extends[r] else []
            if parent is None:
                if by_tokens is None:
                    by_tokens = {}
                    for i, row in enumerate(old):
                        by_tokens.setdefault((row.group, prev[i].tobytes()), i)
                key = gen[r].tobytes()
                if length >= 1:
                    parent = by_tokens.get((group, key[: -gen.itemsize]))
                    todo = [int(gen[r, -1])]
                if parent is None:  # called again at the same length
                    parent = by_tokens.get((group, key))
                    todo = []
            if parent is None:  # untraceable: replay from the start
                spec = self._specs[group]
                m = None if spec is None else GrammarMatcher(_compiled(spec), max_rollback_tokens=0)
                new.append(_Row(group, m))
                pending.append(gen[r].tolist())
                continue
            p = old[parent]
            m = p.matcher
            if m is not None and parent in claimed:
                m = m.fork()
            claimed.add(parent)
            new.append(_Row(group, m, p.refused))
            pending.append(todo)
        # Pass 2: advance. Rows with one token to accept (every row, in a
        # steady decoding step) take it in one parallel call.
        single = [
            (row.matcher, todo[0], row)
            for row, todo in zip(new, pending, strict=True)
            if len(todo) == 1 and row.matcher is not None and not row.done()
        ]
        if single:
            matchers, tokens, single_rows = zip(*single, strict=True)
            accepted = batch_accept_token(matchers, tokens, num_threads=self.num_threads)
            for row, ok in zip(single_rows, accepted, strict=True):
                row.refused = not ok
        for row, todo in zip(new, pending, strict=True):
            if len(todo) == 1:
                continue
            for t in todo:
                if row.done():
                    break
                assert row.matcher is not None
                if not row.matcher.accept_token(t):
                    row.refused = True
        self._rows = new
        self._gen = gen

    def fill(self, bitmask: npt.NDArray[np.int32]) -> list[int]:
        """Write the mask of every constrained row into `bitmask`.

        Args:
            bitmask: An int32 array of at least `bitmask_shape()`, CPU memory.

        Returns:
            The rows to mask (every row with a grammar), in order.
        """
        rows = self._rows
        if rows is None:
            raise ValueError("fill() before update(): no rows yet")
        live = [i for i, r in enumerate(rows) if not r.done()]
        live_matchers = [m for i in live if (m := rows[i].matcher) is not None]
        if live:
            batch_fill_next_token_bitmask(
                live_matchers, bitmask, indices=live, num_threads=self.num_threads
            )
        masked: list[int] = []
        for i, r in enumerate(rows):
            if r.matcher is None:
                continue
            masked.append(i)
            if r.done():
                bitmask[i] = self._stop_row(r.matcher, bitmask.shape[1])
        return masked

    def _stop_row(self, matcher: GrammarMatcher, words: int) -> npt.NDArray[np.int32]:
        stops = tuple(matcher.stop_token_ids)
        row = self._stop_rows.get(stops)
        if row is None or row.shape[0] != words:
            bits = np.zeros(words * 32, dtype=np.uint8)
            bits[list(stops)] = 1
            row = np.packbits(bits, bitorder="little").view("<i4").astype(np.int32)
            self._stop_rows[stops] = row
        return row


def _compiled(spec: CompiledGrammar | GrammarMatcher) -> CompiledGrammar:
    return spec if isinstance(spec, CompiledGrammar) else spec.compiled_grammar


def _new_matcher(spec: GrammarSpec, *, first: bool) -> GrammarMatcher | None:
    if spec is None:
        return None
    if isinstance(spec, GrammarMatcher):
        return spec if first else spec.fork()
    # Rows never roll back: a window of 0 lets the matcher compact its chart.
    return GrammarMatcher(spec, max_rollback_tokens=0)
