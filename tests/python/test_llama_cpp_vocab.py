"""`TokenizerInfo.from_llama_cpp` against llama.cpp's own view of the vocabulary.

llama-cpp-python loads the SmolLM2 (byte-level BPE) and Gemma 3
(SentencePiece with byte fallback) GGUFs, vocabulary only; every token's bytes
must equal llama.cpp's `llama_token_to_piece`, and the stop tokens must be
exactly llama.cpp's end-of-generation tokens.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp
import pytest

import corral

FAMILIES = {"smollm2_gguf": (49_152, "byte_level"), "gemma_gguf": (262_144, "sentencepiece")}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def model(request: pytest.FixtureRequest) -> tuple[llama_cpp.Llama, int, str]:
    path: Path = request.getfixturevalue(request.param)
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    return (llm, *FAMILIES[request.param])


def piece(vocab: object, token: int, special: bool) -> bytes:
    # llama-cpp-python's `detokenize` truncates pieces longer than 32 bytes,
    # so read each piece with a buffer that fits it.
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, special)
    assert 0 <= n <= len(buf), f"token {token}: piece of {n} bytes"
    return buf.raw[:n]


def test_bytes_and_stops_match_llama_cpp(model: tuple[llama_cpp.Llama, int, str]) -> None:
    llama, size, family = model
    info = corral.TokenizerInfo.from_llama_cpp(llama)
    vocab = llama_cpp.llama_model_get_vocab(llama._model.model)
    n = llama.n_vocab()
    assert info.vocab_size == n == size
    assert info.vocab_type == family
    eog = [t for t in range(n) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    assert info.stop_token_ids == eog
    control = {t for t in range(n) if llama_cpp.llama_vocab_is_control(vocab, t)}
    assert control <= set(info.special_token_ids)
    mismatched = [
        t for t in range(n) if info.token_bytes(t) != piece(vocab, t, special=t in control)
    ]
    assert mismatched == [], f"{len(mismatched)} tokens differ, first {mismatched[:5]}"


def test_padded_vocab_size(model: tuple[llama_cpp.Llama, int, str]) -> None:
    llama, size, _ = model
    info = corral.TokenizerInfo.from_llama_cpp(llama, vocab_size=size + 64)
    assert (info.vocab_size, info.tokenizer_size) == (size + 64, size)


def test_object_without_a_model_file() -> None:
    class NotALlama:
        model_path = "/nonexistent/model.gguf"

    with pytest.raises(corral.VocabError, match="model_path"):
        corral.TokenizerInfo.from_llama_cpp(NotALlama())
