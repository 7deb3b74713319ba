"""Grammar-constrained generation with llama-cpp-python (`llama_cpp.Llama`).

Build the vocabulary from the `Llama` object itself (`TokenizerInfo.from_llama_cpp`,
or `compiler_for(llama)`), compile a grammar, and pass a `LogitsProcessor` in
`logits_processor=LogitsProcessorList([...])` of `create_completion`,
`create_chat_completion`, `__call__` or `generate`; or use the two helpers
here, which make a fresh processor per call. Any GGUF model works: the
vocabulary and stop tokens are read from its own metadata.

Example::

    from llama_cpp import Llama
    from corral.adapters import llama_cpp as corral_llama

    llama = Llama(model_path="model.gguf", verbose=False)
    compiled = corral_llama.compiler_for(llama).compile_grammar('root ::= "yes" | "no"')
    out = corral_llama.create_chat_completion(
        llama, compiled, messages=[{"role": "user", "content": "Is water wet?"}]
    )
    print(out["choices"][0]["message"]["content"])

A processor follows one generation (it records the prompt on its first call);
use a new one per completion.
"""

from __future__ import annotations

from typing import Any

import llama_cpp

from corral._core import CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo
from corral.adapters import numpy as _numpy

__all__ = [
    "LogitsProcessor",
    "compiler_for",
    "create_chat_completion",
    "create_completion",
]


class LogitsProcessor(_numpy.LogitsProcessor):
    """A llama-cpp-python logits processor for one generation.

    llama-cpp-python calls it with the context's token ids (prompt plus the
    tokens generated so far) and the next token's logits, which it masks in
    place. Once the grammar has ended only the stop tokens stay allowed.

    Args:
        grammar: A `CompiledGrammar` (compiled for this model's vocabulary),
            or a `GrammarMatcher` to continue from its current state.
    """

    def __init__(self, grammar: CompiledGrammar | GrammarMatcher) -> None:
        super().__init__([grammar], num_threads=1)

    @property
    def matcher(self) -> GrammarMatcher:
        """The matcher of the generation (after the first call)."""
        (m,) = self.rows.matchers()
        assert m is not None
        return m


def compiler_for(llama: Any) -> GrammarCompiler:
    """A `GrammarCompiler` for the vocabulary of a `llama_cpp.Llama` model."""
    return GrammarCompiler(TokenizerInfo.from_llama_cpp(llama))


def _with_processor(
    grammar: CompiledGrammar | GrammarMatcher, kwargs: dict[str, Any]
) -> dict[str, Any]:
    extra = kwargs.pop("logits_processor", None)
    procs = llama_cpp.LogitsProcessorList([LogitsProcessor(grammar)])
    if extra is not None:
        procs.extend(extra)
    return {**kwargs, "logits_processor": procs}


def create_completion(
    llama: Any, grammar: CompiledGrammar | GrammarMatcher, prompt: str, **kwargs: Any
) -> Any:
    """`llama.create_completion(prompt, **kwargs)` constrained by `grammar`.

    Other `logits_processor`s in `kwargs` run after corral's mask.
    """
    return llama.create_completion(prompt, **_with_processor(grammar, kwargs))


def create_chat_completion(
    llama: Any, grammar: CompiledGrammar | GrammarMatcher, **kwargs: Any
) -> Any:
    """`llama.create_chat_completion(**kwargs)` with the reply constrained by `grammar`.

    The chat template's stop token (`<|im_end|>`, `<|eot_id|>`, ...) is one
    of the model's stop tokens, so the reply ends where the grammar does.
    """
    return llama.create_chat_completion(**_with_processor(grammar, kwargs))
