"""JSON Schemas through the adapters on the real SmolLM2-135M-Instruct model:
sampling at temperature 1.0, several seeds and batch sizes; every output is
checked with `jsonschema`. Also `corral generate --schema examples/person.json`
(the README's main command). Needs `GrammarCompiler.compile_json_schema`.

The schemas are bounded (compact layout, short strings, few items), so a
constrained reply always ends within 128 new tokens: the schema grammars allow
every JSON spelling of a string, `\u006e` escapes in keys included, and a
small model does wander into them (about 112 bytes at most here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

from adapter_grammars import RECORD_SCHEMA
from corral import GrammarCompiler, TokenizerInfo
from corral.adapters import llama_cpp as corral_llama
from corral.adapters.transformers import LogitsProcessor

ROOT = Path(__file__).resolve().parents[2]
MAX_NEW = 128

SCHEMAS = {
    "person": RECORD_SCHEMA,
    "scores": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 99},
        "minItems": 1,
        "maxItems": 4,
    },
    "flags": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "color": {"enum": ["red", "green", "blue"]},
        },
        "required": ["ok", "color"],
        "additionalProperties": False,
    },
    "date": {"type": "string", "format": "date"},
}
PROMPTS = {
    "person": "Describe a fictional person as JSON with name and age.",
    "scores": "Give a JSON list of test scores.",
    "flags": "Is the sky blue? Answer as JSON with ok and color.",
    "date": "When was the first moon landing? Answer with a JSON date string.",
}


def compile_schema(compiler: GrammarCompiler, name: str):
    return compiler.compile_json_schema(SCHEMAS[name], any_whitespace=False)


def check(name: str, text: str) -> None:
    value = json.loads(text)
    jsonschema.validate(
        value, SCHEMAS[name], format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def hf(smollm2_hf, smollm2_gguf):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name
    )
    model.eval()
    smollm2_hf.padding_side = "left"
    info = TokenizerInfo.from_huggingface(smollm2_hf, vocab_size=model.config.vocab_size)
    return smollm2_hf, model, info, GrammarCompiler(info)


def test_transformers_schema_batch(hf):
    seed, names = 0, ["person", "scores", "flags", "date"]
    tok, model, info, compiler = hf
    texts = [
        tok.apply_chat_template(
            [{"role": "user", "content": PROMPTS[n]}], add_generation_prompt=True, tokenize=False
        )
        for n in names
    ]
    enc = tok(texts, return_tensors="pt", padding=True)
    proc = LogitsProcessor([compile_schema(compiler, n) for n in names])
    torch.manual_seed(seed)
    out = model.generate(
        **enc,
        max_new_tokens=MAX_NEW,
        do_sample=True,
        temperature=1.0,
        num_return_sequences=2,
        logits_processor=[proc],
        eos_token_id=info.stop_token_ids,
        pad_token_id=tok.pad_token_id,
    )
    rows = out[:, enc["input_ids"].shape[1] :].tolist()
    for k, row in enumerate(rows):
        name = names[k // 2]
        cut = next(i for i, t in enumerate(row) if t in info.stop_token_ids)
        check(name, b"".join(info.token_bytes(t) for t in row[:cut]).decode())


@pytest.fixture(scope="module")
def llama(smollm2_gguf):
    from llama_cpp import Llama

    return Llama(model_path=str(smollm2_gguf), n_ctx=512, n_threads=2, verbose=False, seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", ["person", "flags"])
def test_llama_cpp_schema(llama, name, seed):
    compiled = compile_schema(corral_llama.compiler_for(llama), name)
    out = corral_llama.create_chat_completion(
        llama,
        compiled,
        messages=[{"role": "user", "content": PROMPTS[name]}],
        max_tokens=MAX_NEW,
        temperature=1.0,
        seed=seed,
    )
    assert out["choices"][0]["finish_reason"] == "stop"
    check(name, out["choices"][0]["message"]["content"])


def test_cli_generate_schema_person():
    schema_path = ROOT / "examples" / "person.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "generate",
            "--schema",
            str(schema_path),
            "Describe a fictional person",
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    jsonschema.validate(json.loads(r.stdout), json.loads(schema_path.read_text()))
