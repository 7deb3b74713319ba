"""corral: grammar-constrained decoding.

Compile a GBNF grammar (or a JSON Schema, or a regex) against a tokenizer
vocabulary, then at each decoding step ask a `GrammarMatcher` which tokens
may come next, as a packed bitmask::

    info = TokenizerInfo.from_vocab(tokens, eos_token_ids=[eos_id])
    compiled = GrammarCompiler(info).compile_grammar(grammar_text)
    matcher = GrammarMatcher(compiled)
    bitmask = allocate_token_bitmask(1, info.vocab_size)
    matcher.fill_next_token_bitmask(bitmask)
    apply_token_bitmask_inplace(logits, bitmask)
"""

from importlib.metadata import PackageNotFoundError, version

from corral._core import (
    CompiledGrammar,
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
    GrammarSyntaxError,
    LimitExceededError,
    TokenizerInfo,
    UnsupportedSchemaError,
    VocabError,
    batch_accept_token,
    batch_fill_next_token_bitmask,
)
from corral.bitmask import (
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    bitmask_to_bool,
    get_bitmask_shape,
)


class SchemaCoverageWarning(UserWarning):
    """Warned by ``compile_json_schema(..., lenient=True)``, listing the schema
    keywords (with their JSON pointers) that were skipped instead of enforced."""


try:
    __version__ = version("corral")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    from corral._core import __version__

__all__ = [
    "CompiledGrammar",
    "GrammarCompiler",
    "GrammarError",
    "GrammarMatcher",
    "GrammarSyntaxError",
    "LimitExceededError",
    "SchemaCoverageWarning",
    "TokenizerInfo",
    "UnsupportedSchemaError",
    "VocabError",
    "__version__",
    "allocate_token_bitmask",
    "apply_token_bitmask_inplace",
    "batch_accept_token",
    "batch_fill_next_token_bitmask",
    "bitmask_to_bool",
    "get_bitmask_shape",
]
