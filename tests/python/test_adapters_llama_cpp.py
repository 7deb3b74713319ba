"""The llama-cpp-python adapter on the same SmolLM2-135M-Instruct GGUF file:
completions and chat completions constrained by GBNF and regex grammars, with
sampling at temperature 1.0, validate with independent checkers."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from adapter_grammars import ARITH, EMAIL, RECORD, RECORD_SCHEMA
from corral import GrammarMatcher
from corral.adapters import llama_cpp as corral_llama
from reference import Grammar


@pytest.fixture(scope="module")
def llama(smollm2_gguf):
    from llama_cpp import Llama

    return Llama(model_path=str(smollm2_gguf), n_ctx=512, n_threads=2, verbose=False, seed=0)


@pytest.fixture(scope="module")
def compiler(llama):
    return corral_llama.compiler_for(llama)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chat_completion_json_record(llama, compiler, seed):
    out = corral_llama.create_chat_completion(
        llama,
        compiler.compile_grammar(RECORD),
        messages=[{"role": "user", "content": "Describe a fictional person as JSON."}],
        max_tokens=48,
        temperature=1.0,
        seed=seed,
    )
    choice = out["choices"][0]
    assert choice["finish_reason"] == "stop"
    jsonschema.validate(json.loads(choice["message"]["content"]), RECORD_SCHEMA)


@pytest.mark.parametrize("seed", [0, 1])
def test_completion_gbnf_and_regex(llama, compiler, seed):
    ref = Grammar.parse(ARITH)
    out = corral_llama.create_completion(
        llama,
        compiler.compile_grammar(ARITH),
        "An arithmetic expression: ",
        max_tokens=48,
        temperature=1.0,
        seed=seed,
    )
    assert out["choices"][0]["finish_reason"] == "stop"
    assert ref.accepts_text(out["choices"][0]["text"]), out["choices"][0]["text"]
    out = corral_llama.create_completion(
        llama,
        compiler.compile_regex(EMAIL),
        "Contact: ",
        max_tokens=48,
        temperature=1.0,
        seed=seed,
    )
    assert re.fullmatch(EMAIL, out["choices"][0]["text"]), out["choices"][0]["text"]


def test_processor_in_a_logits_processor_list(llama, compiler):
    """The plain llama-cpp-python way, streaming; the processor's matcher ends terminated."""
    from llama_cpp import LogitsProcessorList

    proc = corral_llama.LogitsProcessor(compiler.compile_regex(EMAIL))
    chunks = llama.create_completion(
        "Email: ",
        max_tokens=48,
        temperature=0.0,
        stream=True,
        logits_processor=LogitsProcessorList([proc]),
    )
    text = "".join(c["choices"][0]["text"] for c in chunks)
    assert re.fullmatch(EMAIL, text), text
    assert isinstance(proc.matcher, GrammarMatcher)
    assert proc.matcher.can_terminate()


def test_without_corral_fails(llama):
    out = llama.create_chat_completion(
        messages=[{"role": "user", "content": "Describe a fictional person as JSON."}],
        max_tokens=24,
        temperature=1.0,
        seed=0,
    )
    text = out["choices"][0]["message"]["content"]
    try:
        jsonschema.validate(json.loads(text), RECORD_SCHEMA)
        ok = True
    except (ValueError, jsonschema.ValidationError):
        ok = False
    assert not ok, text
