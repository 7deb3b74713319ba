"""Errors: the exception hierarchy, positions and carets, limits, and the matcher's
refusals and sticky error state."""

from __future__ import annotations

import numpy as np
import pytest

import corral
from conftest import EXPONENTIAL_GBNF
from corral import (
    GrammarCompiler,
    GrammarError,
    GrammarMatcher,
    GrammarSyntaxError,
    LimitExceededError,
    TokenizerInfo,
    VocabError,
)

EOS = 256


@pytest.fixture(scope="module")
def vocab() -> TokenizerInfo:
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>", b"<think>", b"</think>"]
    return TokenizerInfo.from_vocab(tokens, eos_token_ids=[EOS], special_token_ids=[EOS, 257, 258])


@pytest.fixture(scope="module")
def compiler(vocab: TokenizerInfo) -> GrammarCompiler:
    return GrammarCompiler(vocab)


def test_hierarchy() -> None:
    assert issubclass(GrammarError, ValueError)
    assert issubclass(GrammarSyntaxError, GrammarError)
    assert issubclass(LimitExceededError, GrammarError)
    assert issubclass(VocabError, ValueError)
    assert not issubclass(VocabError, GrammarError)


# (grammar, line, column, words in the message, caret width)
SYNTAX_ERRORS = [
    ('root ::= "abc', 1, 10, "unterminated", 1),
    ("root ::= [z-a]", 1, 11, "reversed", 3),
    ('root ::= "a"{5,2}', 1, 13, "maximum below its minimum", 5),
    ('root ::= "a"\n  | "b"', 2, 3, "rule name", 1),
    ('root ::= "\\q"', 1, 11, "unknown escape", 2),
    ('# comment\nroot ::= ( "a" ', 2, 10, "", 1),
    ("root := x", 1, 6, "::=", 1),
]


@pytest.mark.parametrize(("text", "line", "column", "words", "width"), SYNTAX_ERRORS)
def test_syntax_error_position_and_caret(
    compiler: GrammarCompiler, text: str, line: int, column: int, words: str, width: int
) -> None:
    with pytest.raises(GrammarSyntaxError) as info:
        compiler.compile_grammar(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.line, err.column) == (line, column)
    assert words in err.message
    shown = str(err).split("\n")
    assert shown[0] == f"{line}:{column}: error: {err.message}"
    # The offending source line, then a caret under the error's column.
    source_line = text.split("\n")[line - 1]
    assert shown[1] == "  " + source_line
    caret = shown[2]
    assert caret.strip().startswith("^")
    assert len(caret) - len(caret.lstrip()) == 2 + column - 1
    assert set(caret.strip()) == {"^"}
    if width > 1:
        assert len(caret.strip()) == width
    assert err.snippet is not None
    assert source_line in err.snippet


def test_syntax_error_columns_count_characters(compiler: GrammarCompiler) -> None:
    # Columns are in characters, not bytes: the two-byte "é" counts once.
    with pytest.raises(GrammarSyntaxError) as info:
        compiler.compile_grammar('root ::= "é" [z-a]')
    assert info.value.column == 15  # `z`; it is byte 16


def test_invalid_utf8_is_a_syntax_error(compiler: GrammarCompiler) -> None:
    with pytest.raises(GrammarSyntaxError, match="UTF-8") as info:
        compiler.compile_grammar(b'root ::= "\xff"')
    assert info.value.line == 1


def test_undefined_rule(compiler: GrammarCompiler) -> None:
    with pytest.raises(GrammarError, match="undefined rule `foo`") as info:
        compiler.compile_grammar("root ::= foo")
    assert not isinstance(info.value, GrammarSyntaxError)
    assert (info.value.line, info.value.column) == (1, 10)
    assert "^^^" in str(info.value)


def test_missing_root(compiler: GrammarCompiler) -> None:
    with pytest.raises(GrammarError, match="root") as info:
        compiler.compile_grammar('x ::= "a"')
    assert info.value.line is None
    assert info.value.column is None
    with pytest.raises(GrammarError, match="`start`"):
        compiler.compile_grammar('x ::= "a"', root="start")


def test_duplicate_rule(compiler: GrammarCompiler) -> None:
    with pytest.raises(GrammarError, match="already defined") as info:
        compiler.compile_grammar('root ::= "a"\nroot ::= "b"')
    assert info.value.line == 2


def test_unknown_token(compiler: GrammarCompiler) -> None:
    with pytest.raises(GrammarError, match="out of range"):
        compiler.compile_grammar("root ::= <[999]>")
    with pytest.raises(GrammarError, match="<nope>"):
        compiler.compile_grammar("root ::= <nope>")


def test_limit_exceeded(compiler: GrammarCompiler) -> None:
    with pytest.raises(LimitExceededError, match="max_dfa_states") as info:
        compiler.compile_grammar(EXPONENTIAL_GBNF)
    assert isinstance(info.value, GrammarError)
    assert isinstance(info.value, ValueError)


def test_large_repetitions_are_counters(compiler: GrammarCompiler) -> None:
    # bounds above 16 are not unrolled: these compile at once and stay exact
    for text in ['root ::= "a"{1000000}', 'root ::= ("a"{2000}){2000}', "root ::= [a-z]{3000000}"]:
        compiled = compiler.compile_grammar(text)
        assert compiled.num_states < 16
    # Small bounds unroll, unless the copies would be big: then they count too.
    nested = [
        'root ::= (((("a"{16}){16}){16}){16}){16}',
        "root ::= ((((([a-z]{9}){9}){9}){9}){9}){9}",
    ]
    for text in nested:
        assert compiler.compile_grammar(text).num_states < 200
    # A Unicode class is hundreds of UTF-8 states: three copies are counted.
    word = compiler.compile_regex(r"((\w{3}){5}){4}")
    assert word.num_states < 2000
    m = GrammarMatcher(word)
    assert m.accept_string("é" * 59)
    assert not m.can_terminate()
    assert m.accept_string("٣")  # an Arabic-Indic digit is a word character
    assert m.can_terminate()
    assert not m.accept_string("a")
    m = GrammarMatcher(compiler.compile_grammar('root ::= "ab"{0,70000} "."'))
    assert m.accept_string("ab" * 70000)
    assert not m.accept_string("ab")
    assert m.accept_string(".")


def test_nesting_limit(compiler: GrammarCompiler) -> None:
    deep = "root ::= " + "(" * 300 + '"a"' + ")" * 300
    with pytest.raises(GrammarError, match="nested"):
        compiler.compile_grammar(deep)
    ok = "root ::= " + "(" * 50 + '"a"' + ")" * 50
    assert compiler.compile_grammar(ok).num_rules >= 1


def test_vocab_errors() -> None:
    with pytest.raises(VocabError):
        TokenizerInfo.from_vocab([b"a", b"b"], eos_token_ids=[5])
    with pytest.raises(VocabError):
        TokenizerInfo.from_vocab([b"a", b"b"], eos_token_ids=[0], vocab_size=1)


@pytest.fixture
def matcher(compiler: GrammarCompiler) -> GrammarMatcher:
    return GrammarMatcher(compiler.compile_grammar('root ::= "ab"'))


@pytest.mark.parametrize("token", [-1, -(2**40), 259, 100_000, 2**40, 10**30, -(10**30)])
def test_out_of_range_token_is_refused(matcher: GrammarMatcher, token: int) -> None:
    assert matcher.accept_token(token) is False
    assert matcher.num_accepted_tokens == 0
    assert matcher.error() is None
    assert matcher.accept_token(ord("a"))


def test_token_ids_from_samplers(matcher: GrammarMatcher) -> None:
    """Ids as samplers hand them out (numpy integers, one-element integer
    tensors) are ints; bools, floats and other tensors are not."""
    import torch

    assert matcher.accept_token(np.int64(ord("a")))
    assert matcher.accept_token(torch.tensor(ord("b"), dtype=torch.int32))
    assert not matcher.accept_token(np.uint16(ord("a")))  # an int, refused here
    assert matcher.accept_token(np.int32(EOS))
    assert matcher.num_accepted_tokens == 3
    fresh = GrammarMatcher(matcher.compiled_grammar)
    for bad in (True, np.float64(97.0), 97.0, "a", None, torch.tensor([97, 98])):
        with pytest.raises(TypeError):
            fresh.accept_token(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token_id must be an int, not bool"):
        fresh.accept_token(True)
    with pytest.raises(TypeError, match="token_id must be an int, not float"):
        fresh.accept_token(97.0)  # type: ignore[arg-type]
    assert fresh.num_accepted_tokens == 0


def test_refused_token_leaves_state(matcher: GrammarMatcher) -> None:
    assert not matcher.accept_token(ord("b"))
    assert not matcher.accept_token(EOS)
    assert matcher.accept_token(ord("a"))
    assert matcher.accept_token(ord("b"))
    assert matcher.accept_token(EOS)
    assert matcher.is_terminated()
    assert not matcher.accept_token(ord("a"))


def test_debug_panic_enters_sticky_error_state(
    matcher: GrammarMatcher, vocab: TokenizerInfo
) -> None:
    assert matcher.accept_token(ord("a"))
    assert matcher.error() is None
    assert matcher._debug_panic() is False
    message = matcher.error()
    assert message is not None
    assert "internal error" in message
    assert "panic" in message
    assert not matcher.accept_token(ord("b"))
    assert not matcher.accept_string("b")
    bitmask = corral.allocate_token_bitmask(1, vocab.vocab_size)
    assert matcher.fill_next_token_bitmask(bitmask) is True
    assert not bitmask.any()
    # A fork shares the error; reset clears it.
    assert matcher.fork().error() == message
    matcher.reset()
    assert matcher.error() is None
    assert matcher.accept_string("ab")


def test_rollback_too_far(matcher: GrammarMatcher) -> None:
    with pytest.raises(ValueError, match="roll back"):
        matcher.rollback(1)
    assert matcher.accept_token(ord("a"))
    with pytest.raises(ValueError, match="roll back 2"):
        matcher.rollback(2)
    with pytest.raises(ValueError, match="roll back -1"):
        matcher.rollback(-1)
    matcher.rollback(1)
    assert matcher.num_accepted_tokens == 0


def test_rollback_limit(compiler: GrammarCompiler) -> None:
    m = GrammarMatcher(compiler.compile_grammar('root ::= "abc"'), max_rollback_tokens=1)
    assert m.accept_string("a")
    assert m.accept_string("b")
    with pytest.raises(ValueError, match="only 1"):
        m.rollback(2)
    m.rollback(1)
    assert m.accept_string("bc")
    assert m.can_terminate()


def test_bad_bitmask_buffers(matcher: GrammarMatcher) -> None:
    with pytest.raises(ValueError, match="words"):
        matcher.fill_next_token_bitmask(np.zeros((1, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="out of range"):
        matcher.fill_next_token_bitmask(np.zeros((1, 9), dtype=np.int32), index=1)
    with pytest.raises(TypeError, match=r"int32"):
        matcher.fill_next_token_bitmask(np.zeros((1, 9), dtype=np.int64))
    with pytest.raises(TypeError):
        matcher.fill_next_token_bitmask([0] * 9)
    readonly = np.zeros((1, 9), dtype=np.int32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        matcher.fill_next_token_bitmask(readonly)
    with pytest.raises(ValueError, match="contiguous"):
        matcher.fill_next_token_bitmask(np.zeros((2, 18), dtype=np.int32)[:, ::2])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        matcher.fill_next_token_bitmask(np.zeros((1, 1, 9), dtype=np.int32))


def test_override_stop_tokens_out_of_range(compiler: GrammarCompiler) -> None:
    with pytest.raises(ValueError, match="out of range"):
        GrammarMatcher(compiler.compile_grammar('root ::= "a"'), override_stop_tokens=[10_000])
