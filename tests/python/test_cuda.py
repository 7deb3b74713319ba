"""CUDA checks: bitmasks applied to logits on a GPU, and constrained generation
with a model on a GPU.

These need a CUDA device, which CI does not have: they carry the `cuda` marker,
which pytest's default options deselect. Run them on a GPU machine with
`python -m pytest -m cuda tests/python/test_cuda.py` (see README.md). They
fail, not skip, when selected without a device.
"""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pytest
import torch

from adapter_grammars import RECORD_SCHEMA
from corral import GrammarCompiler, GrammarMatcher, TokenizerInfo
from corral.adapters.transformers import LogitsProcessor
from corral.adapters.vllm import CorralBackend
from corral.bitmask import apply_token_bitmask_inplace, get_bitmask_shape

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def cuda() -> torch.device:
    assert torch.cuda.is_available(), "the cuda tests need a CUDA device"
    return torch.device("cuda")


def random_bitmask(rows: int, vocab: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = get_bitmask_shape(rows, vocab)
    return rng.integers(-(2**31), 2**31, size=shape, dtype=np.int64).astype(np.int32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("indices", [None, [2, 0]])
@pytest.mark.parametrize("pinned", [False, True])
def test_apply_on_cuda_equals_cpu(cuda, dtype, indices, pinned):
    # Logits wider than the vocabulary (padded embedding rows) and a vocabulary
    # that does not fill the last bitmask word.
    vocab, width = 1000, 1056
    bitmask = random_bitmask(3, vocab, seed=7)
    source = torch.from_numpy(bitmask)
    if pinned:
        source = source.pin_memory()
    logits = torch.randn(3, width, generator=torch.Generator().manual_seed(3)).to(dtype)
    want = logits.clone()
    apply_token_bitmask_inplace(want, bitmask, indices=indices, vocab_size=vocab)
    got = logits.to(cuda)
    apply_token_bitmask_inplace(got, source, indices=indices, vocab_size=vocab)
    torch.cuda.synchronize()
    assert got.device.type == "cuda"
    assert torch.equal(got.cpu(), want)
    # Masked entries are -inf, kept ones unchanged.
    masked = torch.isinf(want)
    assert masked.any()
    assert torch.equal(want[~masked], logits[~masked])


def test_bitmask_already_on_device(cuda):
    vocab = 70
    bitmask = random_bitmask(2, vocab, seed=1)
    logits = torch.zeros(2, vocab, device=cuda)
    apply_token_bitmask_inplace(logits, torch.from_numpy(bitmask).to(cuda), vocab_size=vocab)
    bits = np.unpackbits(bitmask.view(np.uint8), bitorder="little").reshape(2, -1)[:, :vocab]
    assert np.array_equal(torch.isfinite(logits).cpu().numpy(), bits.astype(bool))


@pytest.fixture(scope="module")
def smol_cuda(cuda, smollm2_hf, smollm2_gguf):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name
    ).to(cuda)
    model.eval()
    smollm2_hf.padding_side = "left"
    if smollm2_hf.pad_token is None:  # older transformers set none for this GGUF
        smollm2_hf.pad_token = smollm2_hf.eos_token
    info = TokenizerInfo.from_huggingface(smollm2_hf, vocab_size=model.config.vocab_size)
    return smollm2_hf, model, info


def encode(tok, prompts: list[str], device: torch.device):
    texts = [
        tok.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
        )
        for p in prompts
    ]
    return tok(texts, return_tensors="pt", padding=True).to(device)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_transformers_generation_on_cuda_validates(smol_cuda, cuda, dtype):
    tok, model, info = smol_cuda
    model = model.to(dtype)
    grammar = GrammarCompiler(info).compile_json_schema(RECORD_SCHEMA)
    prompts = ["Give me a JSON object with the name and age of a person."] * 4
    enc = encode(tok, prompts, cuda)
    torch.manual_seed(0)
    out = model.generate(
        **enc,
        max_new_tokens=64,
        do_sample=True,
        temperature=1.0,
        logits_processor=[LogitsProcessor(grammar)],
        eos_token_id=info.stop_token_ids,
        pad_token_id=tok.pad_token_id,
    )
    for row in out[:, enc["input_ids"].shape[1] :].tolist():
        cut = next(i for i, t in enumerate(row) if t in info.stop_token_ids)
        text = b"".join(info.token_bytes(t) for t in row[:cut]).decode("utf-8")
        jsonschema.validate(json.loads(text), RECORD_SCHEMA)


def test_vllm_style_batch_on_cuda(smol_cuda, cuda):
    tok, model, info = smol_cuda
    model = model.to(torch.float32)
    backend = CorralBackend(info)
    requests = [
        backend.compile_grammar("JSON", RECORD_SCHEMA),
        backend.compile_grammar("REGEX", r"[a-z]{2,6}@example\.com"),
    ]
    bitmask = backend.allocate_token_bitmask(len(requests)).pin_memory()
    enc = encode(tok, ["A JSON person.", "An email address."], cuda)
    ids = enc["input_ids"]
    attention = enc["attention_mask"]
    outputs: list[list[int]] = [[], []]
    with torch.no_grad():
        for _ in range(48):
            live = [i for i, r in enumerate(requests) if not r.is_terminated()]
            if not live:
                break
            logits = model(input_ids=ids, attention_mask=attention).logits[:, -1, :]
            backend.fill_bitmasks(requests, bitmask)
            apply_token_bitmask_inplace(logits, bitmask, vocab_size=backend.vocab_size)
            nxt = logits.argmax(dim=-1).tolist()
            for i in live:
                assert requests[i].accept_tokens(str(i), [nxt[i]])
                outputs[i].append(nxt[i])
            ids = torch.cat([ids, torch.tensor(nxt, device=cuda)[:, None]], dim=1)
            attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
    assert all(r.is_terminated() for r in requests)
    texts = [
        b"".join(info.token_bytes(t) for t in out if t not in info.stop_token_ids).decode()
        for out in outputs
    ]
    jsonschema.validate(json.loads(texts[0]), RECORD_SCHEMA)
    assert re.fullmatch(r"[a-z]{2,6}@example\.com", texts[1]), texts[1]
    # The matchers stepped from the GPU's choices are the same ones a fresh
    # matcher accepts.
    check = GrammarMatcher(backend.compile("REGEX", r"[a-z]{2,6}@example\.com"))
    assert all(check.accept_token(t) for t in outputs[1])
