"""`corral bench`: mask-time percentiles for your own grammar, tokenizer and text.

The text is tokenised by the tokenizer itself, then teacher-forced through a
matcher: at each step one full-vocabulary `fill_next_token_bitmask` and one
`accept_token` are timed, the mask is checked to allow the next token, and a
stop token ends the text. The first pass starts from a freshly compiled
grammar (cold caches); `--repeat N` adds passes over the same compiled grammar
(warm). Only corral is measured; `benches/compare/run.py` compares engines.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corral._core import CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo
from corral.bitmask import allocate_token_bitmask

KINDS = ("auto", "gbnf", "regex", "schema")


def add_parser(sub: Any) -> None:
    """Register the `bench` subcommand on the `corral` argument parser."""
    p = sub.add_parser(
        "bench",
        help="time token masks for a grammar, a tokenizer and a sample text",
        description=(
            "Compile GRAMMAR (GBNF, a regular expression or a JSON Schema) for a "
            "tokenizer's vocabulary, tokenise each --text with that tokenizer and "
            "teacher-force it: every step times one full-vocabulary bitmask and one "
            "accept. Prints the compile time (grammar to first mask) and the p50 / "
            "p90 / p99 / max of mask and accept times, for the first (cold) pass and "
            "for the --repeat passes after it (warm). Exit status 1 if the grammar "
            "does not compile or rejects a text."
        ),
    )
    p.add_argument("grammar", metavar="GRAMMAR_OR_SCHEMA")
    p.add_argument(
        "--text",
        action="append",
        required=True,
        metavar="FILE",
        help="a text the grammar accepts (UTF-8); repeat for several texts",
    )
    p.add_argument(
        "--tokenizer",
        default="byte",
        metavar="HF_DIR_OR_GGUF",
        help=(
            "a local Hugging Face tokenizer folder, a .gguf file (both need "
            "`transformers`), or 'byte' for one token per byte (default)"
        ),
    )
    p.add_argument(
        "--kind",
        choices=KINDS,
        default="auto",
        help="grammar kind; auto: .json is a schema, .regex/.re a regex, else GBNF",
    )
    p.add_argument("--root", default="root", help="GBNF start rule (default: root)")
    p.add_argument("--vocab-size", type=int, default=None, help="model vocabulary size if padded")
    p.add_argument("--repeat", type=int, default=3, help="warm passes after the first (default: 3)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


@dataclass
class _Pass:
    mask_ns: list[int] = field(default_factory=list)
    accept_ns: list[int] = field(default_factory=list)


class _Rejected(Exception):
    pass


def _usage(msg: str) -> Exception:
    from corral.cli import _UsageError

    return _UsageError(msg)


def _load_tokenizer(spec: str, vocab_size: int | None) -> tuple[TokenizerInfo, Any, str]:
    """(vocabulary, encode function, description) for --tokenizer."""
    if spec == "byte":
        from corral.cli import byte_vocab

        info = byte_vocab()

        def encode_bytes(text: str) -> list[int]:
            return list(text.encode("utf-8"))

        return info, encode_bytes, "byte vocabulary (one token per byte)"
    path = Path(spec)
    if not path.exists():
        raise _usage(f"tokenizer {spec!r}: no such file or folder (HF folder, .gguf or 'byte')")
    try:
        auto_tokenizer: Any = importlib.import_module("transformers").AutoTokenizer
    except ImportError:
        msg = "loading a tokenizer needs `transformers` (pip install transformers)"
        raise _usage(msg) from None
    if path.suffix == ".gguf":
        tok = auto_tokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        info = TokenizerInfo.from_gguf(path, vocab_size=vocab_size)
    else:
        tok = auto_tokenizer.from_pretrained(str(path), local_files_only=True)
        info = TokenizerInfo.from_huggingface(tok, vocab_size=vocab_size)

    def encode_hf(text: str) -> list[int]:
        return list(tok.encode(text, add_special_tokens=False))

    return info, encode_hf, f"{spec} ({info.tokenizer_size} tokens, {info.vocab_type})"


def _kind(args: argparse.Namespace) -> str:
    if args.kind != "auto":
        return str(args.kind)
    suffix = Path(args.grammar).suffix.lower()
    if suffix == ".json":
        return "schema"
    if suffix in (".regex", ".re"):
        return "regex"
    return "gbnf"


def _compile(compiler: GrammarCompiler, kind: str, source: str, root: str) -> CompiledGrammar:
    if kind == "regex":
        return compiler.compile_regex(source.strip("\n"))
    if kind == "schema":
        return compiler.compile_json_schema(source)
    return compiler.compile_grammar(source, root)


def _teacher_force(
    matcher: GrammarMatcher, ids: list[int], stop: int, bitmask: Any, out: _Pass, skip_first: bool
) -> None:
    pc = time.perf_counter_ns
    words = bitmask[0]
    seq = [*ids, stop]
    for step, tok in enumerate(seq):
        if skip_first and step == 0:
            pass  # this mask was filled (and timed) as part of the compile
        else:
            t = pc()
            matcher.fill_next_token_bitmask(bitmask)
            out.mask_ns.append(pc() - t)
        if not (int(words[tok >> 5]) >> (tok & 31)) & 1:
            raise _Rejected(f"the mask forbids token {tok} at step {step} of {len(seq)}")
        t = pc()
        ok = matcher.accept_token(tok)
        if step < len(ids):
            out.accept_ns.append(pc() - t)
        if not ok:
            raise _Rejected(f"accept_token refused token {tok} at step {step} of {len(seq)}")


def _stats(values: list[int], scale: float) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    a = np.asarray(values, dtype=np.float64) / scale
    return {
        "n": len(values),
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
    }


def run(args: argparse.Namespace) -> int:
    """Run `corral bench`; returns the exit status."""
    if args.repeat < 0:
        raise _usage("--repeat must not be negative")
    try:
        source = Path(args.grammar).read_text(encoding="utf-8")
        texts = [Path(p).read_text(encoding="utf-8") for p in args.text]
    except (OSError, UnicodeDecodeError) as e:
        raise _usage(f"cannot read {getattr(e, 'filename', '') or 'input'}: {e}") from None
    kind = _kind(args)
    info, encode, described = _load_tokenizer(args.tokenizer, args.vocab_size)
    token_ids = [encode(t) for t in texts]
    stop = info.stop_token_ids[0]
    bitmask = allocate_token_bitmask(1, info.vocab_size)

    t0 = time.perf_counter_ns()
    compiled = _compile(GrammarCompiler(info), kind, source, args.root)
    first = GrammarMatcher(compiled)
    t1 = time.perf_counter_ns()
    first.fill_next_token_bitmask(bitmask)
    t2 = time.perf_counter_ns()
    compile_ns = t2 - t0

    cold, warm = _Pass(), _Pass()
    cold.mask_ns.append(t2 - t1)  # the first mask counts in both
    error = None
    try:
        for n, ids in enumerate(token_ids):
            m = first if n == 0 else GrammarMatcher(compiled)
            _teacher_force(m, ids, stop, bitmask, cold, skip_first=n == 0)
        for _ in range(args.repeat):
            for ids in token_ids:
                _teacher_force(GrammarMatcher(compiled), ids, stop, bitmask, warm, False)
    except _Rejected as e:
        error = str(e)

    result = {
        "grammar": args.grammar,
        "kind": kind,
        "tokenizer": described,
        "vocab_size": info.vocab_size,
        "texts": len(texts),
        "tokens": [len(ids) for ids in token_ids],
        "compile_ms": compile_ns / 1e6,
        "cold": {"mask_us": _stats(cold.mask_ns, 1e3), "accept_us": _stats(cold.accept_ns, 1e3)},
        "warm": {"mask_us": _stats(warm.mask_ns, 1e3), "accept_us": _stats(warm.accept_ns, 1e3)},
        "error": error,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result, args.repeat)
    if error is not None:
        print(f"{args.grammar}: text rejected: {error}", file=sys.stderr)
        return 1
    return 0


def _print_table(r: dict[str, Any], repeat: int) -> None:
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:,.1f}"

    total = sum(r["tokens"])
    print(f"grammar:   {r['grammar']} ({r['kind']})")
    print(f"tokenizer: {r['tokenizer']}, bitmask of {r['vocab_size']} tokens")
    print(f"texts:     {r['texts']} ({total} tokens + a stop token each)")
    print(f"compile:   {r['compile_ms']:.2f} ms (grammar to first mask)")
    print(f"{'':<26}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}  steps")
    rows = [("cold", "first pass"), ("warm", f"{repeat} more passes")]
    for key, label in rows:
        for what in ("mask_us", "accept_us"):
            s = r[key][what]
            if not s["n"]:
                continue
            name = f"{'mask' if what == 'mask_us' else 'accept'} µs, {label}"
            cells = "".join(f"{f(s[q]):>10}" for q in ("p50", "p90", "p99", "max"))
            print(f"{name:<26}{cells}  {s['n']}")
