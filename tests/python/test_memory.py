"""`memory_usage()`: the vocabulary, a compiled grammar with its cache, and a
matcher each report their own bytes; the grammar's grows as masks fill its
cache and the matcher's as its chart grows."""

from __future__ import annotations

from corral import GrammarCompiler, GrammarMatcher, allocate_token_bitmask


def test_memory_usage_grows_with_cache_and_chart(qwen):
    vocab_bytes = qwen.info.memory_usage()
    assert vocab_bytes == qwen.info.memory_bytes
    # Qwen2.5's 151k tokens: bytes, offsets and trie take megabytes.
    assert vocab_bytes > 4 * qwen.tokenizer_size
    compiled = GrammarCompiler(qwen.info).compile_json_schema(
        {"type": "object", "properties": {"name": {"type": "string", "maxLength": 40}}}
    )
    cold = compiled.memory_usage()
    assert cold > 0
    matcher = GrammarMatcher(compiled)
    fresh = matcher.memory_usage()
    assert fresh > 0
    bitmask = allocate_token_bitmask(1, qwen.info.vocab_size)
    for tok in qwen.enc.encode('{"name": "a counted string body"}'):
        matcher.fill_next_token_bitmask(bitmask)
        assert matcher.accept_token(tok)
    warm = compiled.memory_usage()
    # Every visited state's entry holds at least a token list; most hold a
    # bitset over the vocabulary (151,936 bits = 18,992 bytes).
    assert warm >= cold + qwen.vocab_size // 8, (cold, warm)
    assert matcher.memory_usage() > fresh
    # The vocabulary is shared, not counted by the grammar or the matcher.
    assert qwen.info.memory_usage() == vocab_bytes
    assert compiled.memory_usage() < vocab_bytes


def test_matcher_memory_counts_the_chart(byte_compiler):
    matcher = GrammarMatcher(byte_compiler.compile_grammar('root ::= "a"* "b"'))
    fresh = matcher.memory_usage()
    assert matcher.accept_string("a" * 500)
    # One Earley set per byte: at least a set start and an item each.
    assert matcher.memory_usage() >= 500 * (4 + 16) > fresh
    assert matcher.fork().memory_usage() > fresh
