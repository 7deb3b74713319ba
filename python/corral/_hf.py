"""Reading the vocabulary of a Hugging Face or llama.cpp tokenizer.

`TokenizerInfo.from_huggingface` and `TokenizerInfo.from_llama_cpp` are
implemented in Rust as thin shims over the two functions here:

- `tokenizer_info_args(tokenizer, vocab_size, eos_token_ids)` returns the
  keyword arguments of `TokenizerInfo.from_pieces` for a `transformers`
  tokenizer (fast or slow) or a `tokenizers.Tokenizer`;
- `llama_cpp_args(llama, vocab_size)` returns the keyword arguments of
  `TokenizerInfo.from_gguf` for a `llama_cpp.Llama`.

Neither module is imported here: the objects are inspected through the
attributes those libraries have had for years, so any recent version works.

How a tokenizer's pieces become bytes
-------------------------------------
The family is read from the tokenizer's *decoder*, the component that
`tokenizer.decode` runs, so the bytes agree with the tokenizer's own decoding:

- ``byte_level`` (GPT-2, Llama 3, Qwen, SmolLM): a ``ByteLevel`` decoder; each
  character of a piece stands for one byte (GPT-2's byte-to-unicode table,
  ``Ġ`` = space). As in the ``tokenizers`` library, a piece with a character
  outside that table (an added token such as ``"€€"``) stands for its own
  UTF-8 text as a whole.
- ``sentencepiece`` (Llama 2, Mistral, Gemma): a ``Metaspace`` decoder, or a
  ``Sequence`` of ``Replace("▁", " ")`` / ``ByteFallback`` / ``Fuse`` /
  ``Strip``; ``▁`` is a space and ``<0xNN>`` the byte ``NN``. Slow
  (``sentencepiece``-backed) tokenizers are read through their ``sp_model``.
- ``raw``: ByT5-style byte vocabularies (one id per byte).

Any other decoder (WordPiece, CTC, ...) is refused with a `VocabError`:
its tokens do not stand for fixed bytes, so no exact mask exists.

Decoding artefacts that depend on a token's position are not part of a
token's bytes: the leading space that SentencePiece decoders strip from the
first token of a text, and the spaces slow tokenizers put between special
tokens. A grammar constrains what the model generates after the prompt,
where ``▁Hello`` stands for ``" Hello"``.

Special tokens (added tokens flagged special, the tokenizer's
``all_special_ids``, and SentencePiece control/unknown/unused pieces) keep
their text as bytes but never match grammar text; only token elements such
as ``<|im_end|>`` or ``<[123]>`` allow them. Non-special added tokens are
ordinary text tokens. Ids that no token has (holes in the id range) decode
to nothing and are never allowed.

Stop tokens, unless `eos_token_ids` overrides them: the tokenizer's
``eos_token_id`` plus every special token whose text is one of
`END_OF_GENERATION_TOKENS` (so a chat model stops at ``<|im_end|>``,
``<|eot_id|>`` or ``<end_of_turn>`` as well as at its EOS). The list is the
one `TokenizerInfo.from_gguf` applies to a GGUF file's control tokens, so a
model read either way gets the same stop ids.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from corral._core import VocabError

__all__ = [
    "END_OF_GENERATION_TOKENS",
    "llama_cpp_args",
    "tokenizer_info_args",
]

END_OF_GENERATION_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",  # GPT-2, Qwen, SmolLM, Phi
    "<|im_end|>",  # ChatML (Qwen, SmolLM, ...)
    "<|eot_id|>",  # Llama 3 end of turn
    "<|eom_id|>",  # Llama 3 end of message (tool calls)
    "<|end|>",  # Phi-3
    "<end_of_turn>",  # Gemma
    "<|end_of_text|>",  # Llama 3 base
    "<EOT>",  # Code Llama infilling
    "<|return|>",  # gpt-oss
    "<|call|>",  # gpt-oss
    "<\uff5cend\u2581of\u2581sentence\uff5c>",  # DeepSeek
)
"""Texts of special tokens that end generation when the tokenizer has them."""

# GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for themselves,
# the other 68 bytes (in increasing order) for U+0100, U+0101, ...
_DIRECT = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
_BYTE_TO_CHAR: dict[int, str] = {b: chr(b) for b in _DIRECT}
_BYTE_TO_CHAR.update(
    {b: chr(0x100 + k) for k, b in enumerate(b for b in range(256) if b not in _BYTE_TO_CHAR)}
)
_CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in _BYTE_TO_CHAR.items()}
_OUTSIDE_BYTE_LEVEL = re.compile("[^" + "".join(re.escape(c) for c in sorted(_CHAR_TO_BYTE)) + "]")
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")

_SP_DECODERS = {"Metaspace", "ByteFallback", "Fuse", "Strip", "Replace"}
_SPACE_MARK = "\u2581"


def _byte_level_text(data: bytes) -> str:
    """The byte-level piece that stands for `data`."""
    return "".join(_BYTE_TO_CHAR[b] for b in data)


def _ids(value: Any) -> list[int]:
    """An id, a list of ids or None, as a list of ints."""
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


# ---------------------------------------------------------------------------
# decoder families
# ---------------------------------------------------------------------------


def _flatten_decoder(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if spec.get("type") == "Sequence":
        out: list[Mapping[str, Any]] = []
        for d in spec.get("decoders") or []:
            out.extend(_flatten_decoder(d))
        return out
    return [spec]


def _family_from_decoder(spec: Mapping[str, Any] | None, byte_fallback: bool) -> tuple[str, bool]:
    """`byte_level` or `sentencepiece` from a `tokenizers` decoder's JSON, and
    whether the pieces must be checked to contain no sentencepiece markers
    (ByteLevel behind sentencepiece steps, which some transformers versions
    build for GGUF byte-level vocabularies)."""
    if spec is None:
        raise VocabError(
            "the tokenizer has no decoder, so the bytes of its tokens are unknown; "
            "build the vocabulary with TokenizerInfo.from_vocab from each token's bytes"
        )
    parts = _flatten_decoder(spec)
    types = [str(p.get("type")) for p in parts]
    for p in parts:
        if p.get("type") == "Replace":
            pattern = p.get("pattern") or {}
            if pattern.get("String") != _SPACE_MARK or p.get("content") != " ":
                shown = json.dumps(p, ensure_ascii=False)
                raise VocabError(f"unsupported decoder: Replace {shown}")
    if "ByteLevel" in types:
        others = sorted({t for t in types if t != "ByteLevel"})
        # ByteFallback, Fuse and Replace('▁', ' ') change nothing in a piece
        # without `▁` that is not a `<0xXX>` byte token: checked per piece.
        if set(others) - {"ByteFallback", "Fuse", "Replace"}:
            raise VocabError(f"unsupported decoder: ByteLevel combined with {', '.join(others)}")
        return "byte_level", bool(others)
    unknown = sorted({t for t in types if t not in _SP_DECODERS})
    if unknown:
        raise VocabError(
            f"unsupported decoder {', '.join(unknown)}: its tokens do not stand for fixed bytes "
            "(supported: ByteLevel, Metaspace, ByteFallback with Replace('\u2581', ' '))"
        )
    if {"Metaspace", "ByteFallback", "Replace"} & set(types) or byte_fallback:
        return "sentencepiece", False
    listed = " + ".join(types) or "an empty Sequence"
    raise VocabError(f"unsupported decoder {listed}: cannot tell how tokens map to bytes")


def _check_plain_byte_level(pieces: list[str | None]) -> None:
    """Raise unless no piece is touched by the sentencepiece steps of a
    ByteLevel decoder (see `_family_from_decoder`)."""
    for i, p in enumerate(pieces):
        if p is not None and (_SPACE_MARK in p or _BYTE_PIECE.fullmatch(p)):
            raise VocabError(
                f"unsupported decoder: ByteLevel combined with sentencepiece steps, and token "
                f"{i} ({p!r}) is one they rewrite"
            )


# ---------------------------------------------------------------------------
# collecting the arguments
# ---------------------------------------------------------------------------


class _Collected:
    """Pieces, special ids and single-byte tokens of a vocabulary."""

    def __init__(self, vocab_type: str, pieces: list[str | None]) -> None:
        self.vocab_type = vocab_type
        self.pieces = pieces
        self.special: set[int] = set()
        self.byte_tokens: dict[int, int] = {}
        self.added_text: dict[int, str] = {}  # id -> an added token's own text

    def grow(self, n: int) -> None:
        if n > len(self.pieces):
            self.pieces.extend([None] * (n - len(self.pieces)))

    def set_added(self, added: Mapping[int, Any], literal: bool) -> None:
        """Added tokens (`id -> AddedToken`). Special ones keep their text; a
        `literal` non-special one stands for its own UTF-8 text."""
        if added:
            self.grow(max(int(i) for i in added) + 1)
        for i, tok in added.items():
            i = int(i)
            content = str(getattr(tok, "content", tok))
            self.added_text[i] = content
            self.byte_tokens.pop(i, None)
            if getattr(tok, "special", False):
                self.special.add(i)
                self.pieces[i] = content
            elif literal:
                self.special.discard(i)
                self.pieces[i] = self.literal_piece(content)
            else:
                self.special.discard(i)
                self.pieces[i] = content

    def literal_piece(self, text: str) -> str:
        """A piece that `decode_piece` turns back into `text`'s UTF-8 bytes."""
        if self.vocab_type == "byte_level":
            return _byte_level_text(text.encode("utf-8"))
        return text

    def args(
        self,
        tokenizer: Any,
        vocab_size: int | None,
        eos_token_ids: Iterable[int] | None,
    ) -> dict[str, Any]:
        n = len(self.pieces)
        for i in _ids(getattr(tokenizer, "all_special_ids", None)):
            if 0 <= i < n:
                self.special.add(i)
                self.byte_tokens.pop(i, None)
                if i in self.added_text:  # special tokens keep their own text
                    self.pieces[i] = self.added_text[i]
        if self.vocab_type == "byte_level":
            self._fix_byte_level()
        if eos_token_ids is not None:
            eos = [int(i) for i in eos_token_ids]
        else:
            eos = self._default_eos(tokenizer)
        return {
            "pieces": self.pieces,
            "vocab_type": self.vocab_type,
            "eos_token_ids": eos,
            "special_token_ids": sorted(self.special),
            "vocab_size": vocab_size,
            "byte_tokens": self.byte_tokens or None,
        }

    def _fix_byte_level(self) -> None:
        # The `tokenizers` ByteLevel decoder maps a piece back byte by byte only
        # when every character is in GPT-2's table; otherwise the piece is its
        # own UTF-8 text. Re-encode such pieces so the engine's per-character
        # decoding gives the same bytes.
        search = _OUTSIDE_BYTE_LEVEL.search
        for i, p in enumerate(self.pieces):
            if p and i not in self.special and search(p):
                self.pieces[i] = _byte_level_text(p.encode("utf-8"))

    def _default_eos(self, tokenizer: Any) -> list[int]:
        eos = _ids(getattr(tokenizer, "eos_token_id", None))
        by_text: dict[str, int] = {}
        for i in sorted(self.special):
            p = self.pieces[i]
            if p is not None:
                by_text.setdefault(p, i)
        eos.extend(by_text[t] for t in END_OF_GENERATION_TOKENS if t in by_text)
        return sorted(set(eos))


def _backend_of(tokenizer: Any) -> Any | None:
    """The `tokenizers.Tokenizer` behind `tokenizer` (itself, for one), or None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend
    cls = type(tokenizer)
    if cls.__module__.split(".")[0] == "tokenizers" and cls.__name__ == "Tokenizer":
        return tokenizer
    return None


def _from_backend(backend: Any, tokenizer: Any) -> _Collected:
    decoder = backend.decoder
    spec = None if decoder is None else json.loads(decoder.__getstate__())
    byte_fallback = bool(getattr(backend.model, "byte_fallback", False))
    vocab_type, check_pieces = _family_from_decoder(spec, byte_fallback)
    vocab: dict[str, int] = backend.get_vocab(with_added_tokens=True)
    added: dict[int, Any] = backend.get_added_tokens_decoder()
    n = max([*vocab.values(), *added, -1]) + 1
    if tokenizer is not backend:
        n = max(n, len(tokenizer))
    pieces: list[str | None] = [None] * n
    for piece, i in vocab.items():
        pieces[i] = piece
    for i in range(n):  # pieces shared by several ids appear once in `vocab`
        if pieces[i] is None:
            pieces[i] = backend.id_to_token(i)
    if check_pieces:
        _check_plain_byte_level(pieces)
    out = _Collected(vocab_type, pieces)
    # `tokenizers` runs added tokens through the decoder like any other piece.
    out.set_added(added, literal=False)
    return out


def _from_sentencepiece(tokenizer: Any) -> _Collected:
    """A slow tokenizer backed by a `sentencepiece.SentencePieceProcessor`."""
    sp = tokenizer.sp_model
    sp_size = int(sp.get_piece_size())
    n = len(tokenizer)
    pieces: list[str | None] = list(tokenizer.convert_ids_to_tokens(list(range(n))))
    out = _Collected("sentencepiece", pieces)
    for i, p in enumerate(pieces):
        if p is None:
            continue
        sid = int(sp.piece_to_id(p))
        if not (0 <= sid < sp_size) or sp.id_to_piece(sid) != p:
            continue
        if sp.is_control(sid) or sp.is_unknown(sid) or sp.is_unused(sid):
            out.special.add(i)
        elif sp.is_byte(sid):
            m = _BYTE_PIECE.fullmatch(p)
            if m is not None:
                out.byte_tokens[i] = int(m.group(1), 16)
    # Slow tokenizers emit added tokens as their text, outside the decoder.
    out.set_added(getattr(tokenizer, "added_tokens_decoder", {}), literal=True)
    return out


def _from_byte_encoder(tokenizer: Any) -> _Collected:
    """A slow byte-level BPE tokenizer (`byte_encoder` maps byte -> character)."""
    table = {int(b): str(c) for b, c in tokenizer.byte_encoder.items()}
    if table != _BYTE_TO_CHAR:
        raise VocabError(
            f"{type(tokenizer).__name__}.byte_encoder is not GPT-2's byte-to-unicode table"
        )
    n = len(tokenizer)
    pieces: list[str | None] = list(tokenizer.convert_ids_to_tokens(list(range(n))))
    out = _Collected("byte_level", pieces)
    # transformers 4 emits added tokens as their text; transformers 5 runs them
    # through `convert_tokens_to_string` (the byte decoder) like the others.
    out.set_added(getattr(tokenizer, "added_tokens_decoder", {}), literal=_transformers_major() < 5)
    return out


def _transformers_major() -> int:
    version = str(getattr(sys.modules.get("transformers"), "__version__", "5"))
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 5


def _from_byte_offsets(tokenizer: Any) -> _Collected:
    """ByT5-style: ids `offset .. offset+255` are the bytes 0..255."""
    offset = int(tokenizer.offset)
    n = len(tokenizer)
    added: Mapping[int, Any] = getattr(tokenizer, "added_tokens_decoder", {})
    out = _Collected("raw", [None] * n)
    for b in range(256):
        i = offset + b
        if i < n and i not in added:
            out.pieces[i] = chr(b)
            out.byte_tokens[i] = b
    out.set_added(added, literal=True)
    return out


def tokenizer_info_args(
    tokenizer: Any,
    vocab_size: int | None = None,
    eos_token_ids: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of `TokenizerInfo.from_pieces` for a tokenizer.

    Args:
        tokenizer: A `transformers` tokenizer (fast or slow) or a
            `tokenizers.Tokenizer`.
        vocab_size: The model's vocabulary size (logits width), when larger
            than the tokenizer's; `None` keeps the tokenizer's size.
        eos_token_ids: Stop token ids; `None` derives them (see the module
            docstring).

    Returns:
        A dict with `pieces`, `vocab_type`, `eos_token_ids`,
        `special_token_ids`, `vocab_size` and `byte_tokens`.

    Raises:
        VocabError: The tokenizer's decoder is not one whose tokens stand for
            fixed bytes, or the object is not a tokenizer.
    """
    backend = _backend_of(tokenizer)
    if backend is not None:
        collected = _from_backend(backend, tokenizer)
    elif getattr(tokenizer, "sp_model", None) is not None:
        collected = _from_sentencepiece(tokenizer)
    elif getattr(tokenizer, "byte_encoder", None) is not None:
        collected = _from_byte_encoder(tokenizer)
    elif getattr(tokenizer, "_utf_vocab_size", None) == 256 and hasattr(tokenizer, "offset"):
        collected = _from_byte_offsets(tokenizer)
    else:
        raise VocabError(
            f"cannot read the vocabulary of a {type(tokenizer).__module__}."
            f"{type(tokenizer).__qualname__}: expected a transformers tokenizer or a "
            "tokenizers.Tokenizer with a byte-level or SentencePiece decoder"
        )
    return collected.args(tokenizer, vocab_size, eos_token_ids)


def llama_cpp_args(llama: Any, vocab_size: int | None = None) -> dict[str, Any]:
    """Keyword arguments of `TokenizerInfo.from_gguf` for a `llama_cpp.Llama`.

    The vocabulary is read from the GGUF file the model was loaded from
    (`llama.model_path`), so the token types and end-of-generation ids are
    the file's own.

    Raises:
        VocabError: `llama` has no `model_path` naming a file.
    """
    path = getattr(llama, "model_path", None)
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise VocabError(
            f"cannot find the GGUF file of {type(llama).__qualname__}: "
            f"model_path is {path!r}; use TokenizerInfo.from_gguf(path) instead"
        )
    args: dict[str, Any] = {"path": os.fspath(path), "vocab_size": vocab_size}
    # Stop where llama.cpp itself stops: its end-of-generation set also holds
    # tokens the file does not declare (FIM padding and repository markers).
    eog = _llama_cpp_eog_ids(llama)
    if eog:
        args["eos_token_ids"] = eog
    return args


def _llama_cpp_eog_ids(llama: Any) -> list[int]:
    """llama.cpp's end-of-generation ids for a loaded model, or [] if unknown."""
    try:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(llama._model.model)
        n = int(llama.n_vocab())
        return [t for t in range(n) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    except (ImportError, AttributeError):
        return []
