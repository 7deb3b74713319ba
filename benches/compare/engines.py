"""One adapter per engine: build the shared vocabulary, compile a grammar, make a matcher.

Every adapter gets the same vocabulary (`qwen.py`) and the same grammar spec, a
dict with a `kind`:

- `{"kind": "json", "gbnf": TEXT}`: any JSON value with the engine's builtin
  JSON grammar (`TEXT` is the GBNF used where an engine has none built in);
- `{"kind": "schema", "schema": OBJECT}`: a JSON Schema, validation semantics
  (additional properties allowed unless the schema forbids them);
- `{"kind": "gbnf", "grammar": TEXT}`: a llama.cpp-dialect GBNF grammar;
- `{"kind": "regex", "pattern": TEXT}`: a regular expression, matched whole.

A matcher is driven through two zero-argument / one-argument callables so the
timed loop in `worker.py` makes exactly one call per step for every engine:
`fill()` writes the full-vocabulary bitmask (int32, LSB first, 1 = allowed)
into `adapter.mask` through the engine's own bitmask entry point, and
`accept(token)` advances by one token (False, None-or-True, or an exception).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import qwen


class Unsupported(Exception):
    """The engine has no front-end for this kind of grammar."""


class CompileError(Exception):
    """The engine refused the grammar."""


Fill = Callable[[], Any]
Accept = Callable[[int], Any]


class Adapter:
    """Base class: the bitmask buffer and the bit test shared by all engines."""

    name = ""

    def __init__(self) -> None:
        words = (qwen.VOCAB_SIZE + 31) // 32
        self.mask = np.zeros((1, words), dtype=np.int32)
        self.mask_row = self.mask[0]

    def version(self) -> str:
        raise NotImplementedError

    def compile(self, spec: dict[str, Any]) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> tuple[Fill, Accept]:
        raise NotImplementedError

    def allowed(self, token: int) -> bool:
        return bool((int(self.mask_row[token >> 5]) >> (token & 31)) & 1)

    def accept_means_ok(self, result: Any) -> bool:
        return result is not False

    def finished(self, accept: Accept, eos: int) -> Any:
        """Take the final stop token (the last matcher made)."""
        return accept(eos)


class CorralAdapter(Adapter):
    name = "corral"

    def __init__(self) -> None:
        super().__init__()
        import corral

        self.corral = corral
        self.info = corral.TokenizerInfo.from_vocab(
            qwen.all_tokens(),
            eos_token_ids=qwen.STOP_IDS,
            vocab_size=qwen.VOCAB_SIZE,
            special_token_ids=qwen.SPECIAL_IDS,
        )
        self.compiler = corral.GrammarCompiler(self.info)

    def version(self) -> str:
        return str(self.corral.__version__)

    def compile(self, spec: dict[str, Any]) -> Any:
        kind = spec["kind"]
        c = self.compiler
        try:
            if kind == "json":
                builtin = getattr(c, "compile_builtin_json_grammar", None)
                if builtin is not None:
                    return builtin()
                return c.compile_grammar(spec["gbnf"])
            if kind == "schema":
                compile_schema = getattr(c, "compile_json_schema", None)
                if compile_schema is None:
                    raise Unsupported("unsupported (no compile_json_schema)")
                text = json.dumps(spec["schema"])
                try:
                    return compile_schema(text, strict_mode=False, property_order="schema")
                except TypeError:
                    return compile_schema(text, strict_mode=False)
            if kind == "gbnf":
                return c.compile_grammar(spec["grammar"])
            if kind == "regex":
                return c.compile_regex(spec["pattern"])
        except self.corral.GrammarError as e:
            raise CompileError(str(e)) from None
        raise Unsupported(kind)

    def matcher(self, compiled: Any) -> tuple[Fill, Accept]:
        m = self.corral.GrammarMatcher(compiled)
        # The pointer entry point, as llguidance and outlines-core are driven.
        fill = functools.partial(
            m.unsafe_fill_next_token_bitmask_ptr, self.mask.ctypes.data, self.mask.shape[1]
        )
        return fill, m.accept_token


class XGrammarAdapter(Adapter):
    name = "xgrammar"

    def __init__(self) -> None:
        super().__init__()
        import xgrammar as xgr

        self.xgr = xgr
        # Added tokens other than the stop tokens are given as empty strings:
        # xgrammar then treats them as special (never text), as the others do.
        tokens = qwen.all_tokens()
        stops = set(qwen.STOP_IDS)
        for i in qwen.SPECIAL_IDS:
            if i not in stops:
                tokens[i] = b""
        self.info = xgr.TokenizerInfo(
            tokens, xgr.VocabType.RAW, vocab_size=qwen.VOCAB_SIZE, stop_token_ids=qwen.STOP_IDS
        )
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        # xgrammar's native bitmask is a torch tensor (it also takes DLPack arrays).
        self.tmask = xgr.allocate_token_bitmask(1, qwen.VOCAB_SIZE)
        self.mask = self.tmask.numpy()  # shares memory with the tensor
        self.mask_row = self.mask[0]

    def version(self) -> str:
        return str(self.xgr.__version__) if hasattr(self.xgr, "__version__") else _dist("xgrammar")

    def compile(self, spec: dict[str, Any]) -> Any:
        kind = spec["kind"]
        c = self.compiler
        try:
            if kind == "json":
                return c.compile_builtin_json_grammar()
            if kind == "schema":
                return c.compile_json_schema(
                    json.dumps(spec["schema"]), any_whitespace=True, strict_mode=False
                )
            if kind == "gbnf":
                return c.compile_grammar(spec["grammar"])
            if kind == "regex":
                return c.compile_regex(spec["pattern"])
        except (RuntimeError, ValueError) as e:
            raise CompileError(str(e)) from None
        raise Unsupported(kind)

    def matcher(self, compiled: Any) -> tuple[Fill, Accept]:
        m = self.xgr.GrammarMatcher(compiled)
        return functools.partial(m.fill_next_token_bitmask, self.tmask), m.accept_token


class LLGuidanceAdapter(Adapter):
    name = "llguidance"

    def __init__(self) -> None:
        super().__init__()
        import llguidance
        from llguidance.tiktoken import lltokenizer_from_encoding

        self.llg = llguidance
        self.tok = lltokenizer_from_encoding(
            qwen.encoding(), n_vocab=qwen.VOCAB_SIZE, eos_token=qwen.STOP_IDS
        )
        self.ptr = self.mask.ctypes.data
        self.nbytes = self.mask.nbytes

    def version(self) -> str:
        return str(self.llg.__version__)

    def compile(self, spec: dict[str, Any]) -> Any:
        kind = spec["kind"]
        from llguidance import LLMatcher, grammar_from

        try:
            if kind == "json":
                grammar = LLMatcher.grammar_from_json_schema("{}")
            elif kind == "schema":
                grammar = LLMatcher.grammar_from_json_schema(json.dumps(spec["schema"]))
            elif kind == "gbnf":
                grammar = grammar_from("gbnf", spec["grammar"])  # GBNF -> Lark conversion
            elif kind == "regex":
                grammar = LLMatcher.grammar_from_regex(spec["pattern"])
            else:
                raise Unsupported(kind)
        except ValueError as e:
            raise CompileError(str(e)) from None
        m = LLMatcher(self.tok, grammar, log_level=0)
        if m.is_error():
            raise CompileError(m.get_error())
        return m

    def matcher(self, compiled: Any) -> tuple[Fill, Accept]:
        m = compiled.deep_copy()
        return functools.partial(m.unsafe_compute_mask_ptr, self.ptr, self.nbytes), m.consume_token


class OutlinesAdapter(Adapter):
    name = "outlines"

    def __init__(self) -> None:
        super().__init__()
        import outlines_core

        self.oc = outlines_core
        by_bytes: dict[bytes, list[int]] = {}
        for i, b in enumerate(qwen.ranked_tokens()):
            by_bytes.setdefault(b, []).append(i)
        # Added tokens are left out (never text); the EOS id is the vocabulary's own.
        self.vocab = outlines_core.Vocabulary(qwen.EOS_ID, by_bytes)
        self.ptr = self.mask.ctypes.data
        self.numel = self.mask.size

    def version(self) -> str:
        return _dist("outlines-core")

    def compile(self, spec: dict[str, Any]) -> Any:
        kind = spec["kind"]
        from outlines_core.json_schema import build_regex_from_schema

        try:
            if kind == "json":
                pattern = build_regex_from_schema("{}")
            elif kind == "schema":
                pattern = build_regex_from_schema(json.dumps(spec["schema"]))
            elif kind == "regex":
                pattern = spec["pattern"]
            else:
                raise Unsupported("unsupported (no CFG support)")
            return self.oc.Index(pattern, self.vocab)
        except (ValueError, TypeError) as e:
            raise CompileError(str(e)) from None

    def matcher(self, compiled: Any) -> tuple[Fill, Accept]:
        g = self.oc.Guide(compiled)
        self.guide = g
        # advance() returns None and raises ValueError on a token with no transition.
        return (
            functools.partial(g.write_mask_into, self.ptr, self.numel, 4),
            functools.partial(g.advance, return_tokens=False),
        )

    def finished(self, accept: Accept, eos: int) -> Any:
        # The mask allows EOS in a final state, but advance() never takes it.
        return self.guide.is_finished()


def _dist(name: str) -> str:
    from importlib.metadata import version

    return version(name)


ADAPTERS: dict[str, type[Adapter]] = {
    "corral": CorralAdapter,
    "xgrammar": XGrammarAdapter,
    "llguidance": LLGuidanceAdapter,
    "outlines": OutlinesAdapter,
}
