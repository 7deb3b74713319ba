"""corral behind the structured-output interface of batch engines (vLLM v1 style).

A batch engine keeps one grammar object per request and, at every scheduler
step, asks each for its row of a shared token bitmask; after the model step it
feeds back the tokens each request produced. With speculative decoding it also
asks how much of a draft the grammar allows, and rolls back what the target
model rejected. This module speaks exactly that protocol, without importing
vLLM:

- `CorralBackend(tokenizer_info)`: `compile_grammar(request_type, grammar_spec)`
  returns a `CorralGrammar`; `allocate_token_bitmask(max_num_seqs)`;
  `fill_bitmasks(grammars, bitmask, indices)` fills many rows in one
  parallel, GIL-free call; `destroy()`.
- `CorralGrammar`: `accept_tokens(request_id, tokens)`, `validate_tokens(tokens)`,
  `rollback(num_tokens)`, `fill_bitmask(bitmask, batch_index)`,
  `is_terminated()`, `reset()`, `num_processed_tokens`.

`request_type` is vLLM's `StructuredOutputOptions` member or its name as a
string: `"JSON"` (a JSON Schema, as text or a dict; needs
`GrammarCompiler.compile_json_schema`), `"JSON_OBJECT"` (any JSON object),
`"REGEX"`, `"GRAMMAR"` (GBNF), `"CHOICE"` (a JSON list of strings, one of
which is produced).

Example (a scheduler step, as an engine runs it)::

    backend = CorralBackend(info)
    bitmask = backend.allocate_token_bitmask(max_num_seqs)
    g = backend.compile_grammar("REGEX", r"\\d{3}-\\d{4}")
    g.fill_bitmask(bitmask, 0)                 # before sampling row 0
    ...apply bitmask to logits, sample token t...
    g.accept_tokens("req-0", [t])
    if g.is_terminated(): ...finish the request...
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from corral._core import (
    CompiledGrammar,
    GrammarCompiler,
    GrammarMatcher,
    TokenizerInfo,
    batch_fill_next_token_bitmask,
)
from corral.bitmask import allocate_token_bitmask

__all__ = ["JSON_OBJECT_GBNF", "CorralBackend", "CorralGrammar"]

JSON_OBJECT_GBNF = r"""
root    ::= object
value   ::= object | array | string | number | "true" | "false" | "null"
object  ::= "{" ws ( member ( ws "," ws member )* ws )? "}"
member  ::= string ws ":" ws value
array   ::= "[" ws ( value ( ws "," ws value )* ws )? "]"
string  ::= "\"" ( [^"\\\x00-\x1f] | "\\" escape )* "\""
escape  ::= ["\\/bfnrt] | "u" [0-9a-fA-F]{4}
number  ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
ws      ::= [ \t\n]{0,8}
"""
"""Any JSON object (whitespace between tokens bounded, so a model cannot
stall on it); the grammar of `"JSON_OBJECT"` requests."""


class CorralGrammar:
    """The grammar state of one request.

    Args:
        matcher: The request's matcher.
    """

    def __init__(self, matcher: GrammarMatcher) -> None:
        self.matcher = matcher

    @property
    def num_processed_tokens(self) -> int:
        """Tokens accepted so far (and not rolled back)."""
        return self.matcher.num_accepted_tokens

    def accept_tokens(self, request_id: str, tokens: Sequence[int]) -> bool:
        """Accept the tokens the request produced, all or nothing.

        Returns:
            True if the grammar allowed every token; otherwise False and the
            state is as before the call. `request_id` is only for the engine's
            logs.
        """
        for n, t in enumerate(tokens):
            if not self.matcher.accept_token(int(t)):
                if n:
                    self.matcher.rollback(n)
                return False
        return True

    def validate_tokens(self, tokens: Sequence[int]) -> list[int]:
        """The longest prefix of `tokens` (a speculative draft) the grammar
        allows from here; the state is left unchanged."""
        n = 0
        for t in tokens:
            if not self.matcher.accept_token(int(t)):
                break
            n += 1
        if n:
            self.matcher.rollback(n)
        return [int(t) for t in tokens[:n]]

    def rollback(self, num_tokens: int) -> None:
        """Undo the last `num_tokens` accepted tokens (rejected draft tokens).

        Raises:
            ValueError: If fewer tokens than that were accepted.
        """
        if num_tokens:
            self.matcher.rollback(num_tokens)

    def fill_bitmask(self, bitmask: Any, batch_index: int) -> None:
        """Write this request's allowed tokens into row `batch_index` of
        `bitmask` (an int32 CPU tensor or array from `allocate_token_bitmask`)."""
        self.matcher.fill_next_token_bitmask(bitmask, batch_index)

    def is_terminated(self) -> bool:
        """Whether the request accepted a stop token (the engine finishes it)."""
        return self.matcher.is_terminated()

    def reset(self) -> None:
        """Back to the start of the grammar (a preempted request that is recomputed)."""
        self.matcher.reset()


class CorralBackend:
    """Compiles requests' grammars for one model vocabulary.

    Args:
        tokenizer_info: The model's vocabulary (`TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=model_config.vocab_size)` for a vLLM model).
        max_rollback_tokens: How far each request's matcher can roll back
            (the speculative window); -1 for no limit. A limit also bounds
            each matcher's memory (its chart before the window is compacted).
    """

    def __init__(self, tokenizer_info: TokenizerInfo, *, max_rollback_tokens: int = -1) -> None:
        self.tokenizer_info = tokenizer_info
        self.compiler = GrammarCompiler(tokenizer_info)
        self.vocab_size = tokenizer_info.vocab_size
        self.max_rollback_tokens = max_rollback_tokens

    def compile(self, request_type: Any, grammar_spec: str | dict[str, Any]) -> CompiledGrammar:
        """Compile a request's grammar (cached by the compiler); see the module doc."""
        kind = str(getattr(request_type, "name", request_type)).upper()
        c = self.compiler
        if kind == "GRAMMAR":
            return c.compile_grammar(_text(grammar_spec))
        if kind == "REGEX":
            return c.compile_regex(_text(grammar_spec))
        if kind == "JSON_OBJECT":
            return c.compile_grammar(JSON_OBJECT_GBNF)
        if kind == "CHOICE":
            spec = json.loads(grammar_spec) if isinstance(grammar_spec, str) else grammar_spec
            if not isinstance(spec, list) or not spec or not all(isinstance(s, str) for s in spec):
                raise ValueError("a CHOICE spec is a non-empty JSON list of strings")
            return c.compile_grammar("root ::= " + " | ".join(_gbnf_literal(s) for s in spec))
        if kind == "JSON":
            compile_json_schema = getattr(c, "compile_json_schema", None)
            if compile_json_schema is None:
                raise NotImplementedError("this corral build has no JSON Schema front-end")
            schema = json.loads(grammar_spec) if isinstance(grammar_spec, str) else grammar_spec
            compiled: CompiledGrammar = compile_json_schema(schema)
            return compiled
        raise NotImplementedError(f"structured output type {kind} is not supported by corral")

    def compile_grammar(
        self, request_type: Any, grammar_spec: str | dict[str, Any]
    ) -> CorralGrammar:
        """A new request state for `grammar_spec`.

        Raises:
            GrammarError: The spec does not compile.
            NotImplementedError: An unsupported `request_type`.
        """
        compiled = self.compile(request_type, grammar_spec)
        return CorralGrammar(GrammarMatcher(compiled, max_rollback_tokens=self.max_rollback_tokens))

    def allocate_token_bitmask(self, max_num_seqs: int) -> Any:
        """An int32 bitmask `(max_num_seqs, ceil(vocab_size / 32))`, all allowed:
        a torch tensor when torch is installed, else a numpy array."""
        bitmask = allocate_token_bitmask(max_num_seqs, self.vocab_size)
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a test dependency
            return bitmask
        return torch.from_numpy(bitmask)

    def fill_bitmasks(
        self,
        grammars: Sequence[CorralGrammar],
        bitmask: Any,
        indices: Sequence[int] | None = None,
        num_threads: int | None = None,
    ) -> None:
        """Fill the rows of many requests at once (parallel, GIL released):
        row `indices[i]` (default `i`) for `grammars[i]`."""
        batch_fill_next_token_bitmask(
            [g.matcher for g in grammars], bitmask, indices=indices, num_threads=num_threads
        )

    def destroy(self) -> None:
        """Nothing to release (the engine's protocol asks for it)."""


def _text(spec: str | dict[str, Any]) -> str:
    if not isinstance(spec, str):
        raise TypeError(f"expected the grammar as text, got {type(spec).__name__}")
    return spec


def _gbnf_literal(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch in "[]":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x20 else "\\" + ch)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
