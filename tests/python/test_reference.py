"""Unit tests of the reference recogniser (tests/python/reference.py) itself.

The reference is what the engine is checked against, so it gets its own
tests against brute force (regular expressions, counters, enumerations of
small languages) where possible.
"""

from __future__ import annotations

import itertools
import random
import re
import time

import pytest

from reference import CharClass, Grammar, ReferenceGrammarError, _utf8_prefix_ranges


def acc(grammar: str, text: str, **kw) -> bool:
    return Grammar.parse(grammar, **kw).accepts([text])


# ---------------------------------------------------------------------------
# syntax
# ---------------------------------------------------------------------------


def test_literals_alternation_comments_and_rule_order():
    g = Grammar.parse(
        """
# greeting
root ::= greeting " " name   # trailing comment
name ::= [A-Z] [a-z]*
greeting ::= "hi" | "hello"
"""
    )
    assert g.accepts(["hi Bob"])
    assert g.accepts(["hello A"])
    assert not g.accepts(["hi bob"])
    assert not g.accepts(["hello"])
    assert not g.accepts(["hi  Bob"])


def test_escapes():
    g = Grammar.parse(r'root ::= "\x41\u00e9\t\n\r\\\"\[\]\'" [\x30-\x39] "\U0001F600"')
    assert g.accepts(["A\u00e9\t\n\r\\\"[]'5\U0001f600"])
    assert not g.accepts(["A\u00e9\t\n\r\\\"[]'x\U0001f600"])


def test_newlines_end_rules_except_inside_groups_and_after_bar():
    assert acc('root ::= "a" |\n   "b"', "b")
    assert acc('root ::= (\n "a"\n | "b"\n) "!"', "b!")
    with pytest.raises(ReferenceGrammarError):
        Grammar.parse('root ::= "a"\n | "b"')
    assert acc('root ::= "a" b\r\nb ::= "b"\r\n', "ab")
    # ::= may be followed by a newline; empty bodies are allowed
    assert acc('root ::=\n  "a" nothing "b"\nnothing ::=\n', "ab")


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('root ::= "abc', 1, 14),
        ("root ::= [abc", 1, 14),
        ('root ::= x\nx = "a"', 2, 3),
        ('root ::= "a\\qb"', 1, 12),
        ('root ::= "\\u12"', 1, 13),
        ('root ::= "\\uDC00"', 1, 13),
        ("root ::= [z-a]", 1, 12),
        ('root ::= "a"{5,2}', 1, 13),
        ('root ::= "a"{,}', 1, 15),
        ('root ::= +"a"', 1, 10),
        ('root ::= ("a"', 1, 14),
        ('root ::= "a")', 1, 13),
        ("root ::= numero", 1, 10),
        ('root ::= "a"\nroot ::= "b"', 2, 1),
        ("root ::= <|x|>", 1, 10),
    ],
)
def test_syntax_errors_have_positions(text, line, column):
    with pytest.raises(ReferenceGrammarError) as e:
        Grammar.parse(text)
    assert (e.value.line, e.value.column) == (line, column), str(e.value)


def test_missing_root_and_custom_root():
    with pytest.raises(ReferenceGrammarError):
        Grammar.parse('rot ::= "a"')
    with pytest.raises(ReferenceGrammarError):
        Grammar.parse("")
    g = Grammar.parse('root ::= "r"\nother ::= "o"+', root="other")
    assert g.accepts(["ooo"])
    assert not g.accepts(["r"])


def test_unproductive_rules_are_reported_and_match_nothing():
    g = Grammar.parse('root ::= a\na ::= "x" a')
    assert g.is_empty_language
    assert set(g.unproductive) >= {"root", "a"}
    assert not g.accepts(["x"])
    assert not g.is_prefix([""])
    assert g.generate(random.Random(0)) is None
    # an unproductive alternative is just dropped
    g = Grammar.parse('root ::= "y" | a\na ::= "x" a')
    assert g.accepts(["y"])
    assert not g.is_prefix(["x"])


# ---------------------------------------------------------------------------
# recursion, nullable rules, ambiguity
# ---------------------------------------------------------------------------


def test_left_recursion():
    g = Grammar.parse(
        """
root ::= expr
expr ::= expr "+" term | expr "-" term | term
term ::= term "*" num | num
num  ::= [0-9]+
"""
    )
    for s in ["1", "1+2", "1+2*3-45", "10*2*3"]:
        assert g.accepts([s]), s
    for s in ["", "+1", "1+", "1**2", "1 + 2"]:
        assert not g.accepts([s]), s
    assert g.is_prefix(["1+"])
    assert not g.is_prefix(["1**"])


def test_indirect_left_recursion():
    g = Grammar.parse('root ::= a\na ::= b "x" | "y"\nb ::= a "z"')
    assert [g.accepts([s]) for s in ["y", "yzx", "yzxzx", "yz", "x", "yzxz"]] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_nullable_and_ambiguous():
    g = Grammar.parse('root ::= opt opt "x" opt\nopt ::= "a" | "" | opt opt')
    for s in ["x", "ax", "aax", "aaaxa", "xaa"]:
        assert g.accepts([s]), s
    for s in ["", "b", "xb"]:
        assert not g.accepts([s]), s


def test_nested_stars_segfault_case():
    g = Grammar.parse("root ::= ( [x]* )*")
    assert all(g.accepts([s]) for s in ["", "x", "xx", "xxxxxxx"])
    assert not g.accepts(["y"])


def _balanced(s: str) -> bool:
    depth = 0
    for c in s:
        depth += 1 if c == "(" else -1
        if depth < 0:
            return False
    return depth == 0


def _could_balance(s: str) -> bool:
    depth = 0
    for c in s:
        depth += 1 if c == "(" else -1
        if depth < 0:
            return False
    return True


@pytest.mark.parametrize(
    "grammar",
    [
        'root ::= "" | "(" root ")" root',  # right recursive
        'root ::= "" | root "(" root ")"',  # left recursive
        'root ::= ("(" root ")")*',
        'root ::= x\nx ::= | x x | "(" x ")"',  # highly ambiguous
    ],
)
def test_dyck_language_by_enumeration(grammar):
    g = Grammar.parse(grammar)
    for n in range(9):
        for t in itertools.product("()", repeat=n):
            s = "".join(t)
            assert g.accepts([s]) == _balanced(s), s
            assert g.is_prefix([s]) == _could_balance(s), s


@pytest.mark.parametrize(
    ("grammar", "regex"),
    [
        ('root ::= "a"{1,3} ("b" | "ab")* "a"?', r"a{1,3}(b|ab)*a?"),
        ("root ::= [ab]{2} [ab]{0,2} c{2,}\nc ::= [c]", r"[ab]{2}[ab]{0,2}c{2,}"),
        ('root ::= ("ab"+ | "b"?){,2} "c"', r"((ab)+|b?){0,2}c"),
        ('root ::= [^b]+ "b" | "c"{3}', r"[^b]+b|c{3}"),
        ('root ::= "a"{0} "b"', r"b"),
    ],
)
def test_regular_languages_against_re(grammar, regex):
    g = Grammar.parse(grammar)
    rx = re.compile(regex)
    lang = set()
    for n in range(8):
        for t in itertools.product("abc", repeat=n):
            s = "".join(t)
            ok = rx.fullmatch(s) is not None
            assert g.accepts([s]) == ok, s
            if ok:
                lang.add(s)
    for n in range(4):
        for t in itertools.product("abc", repeat=n):
            s = "".join(t)
            assert g.is_prefix([s]) == any(w.startswith(s) for w in lang), s


# ---------------------------------------------------------------------------
# classes and UTF-8
# ---------------------------------------------------------------------------


def test_classes():
    g = Grammar.parse(r"root ::= [a-cx] [^0-9] [\]-]")
    for s in ["ax]", "c-]", "b!-", "xé]"]:
        assert g.accepts([s]), s
    for s in ["dx]", "a5]", "ax", "aa^"]:
        assert not g.accepts([s]), s
    assert acc("root ::= [a-]+", "a-a-")
    assert not acc("root ::= [a-]+", "b")
    assert acc("root ::= [-a]+", "-a")
    assert acc("root ::= [] | [^]", "x")  # `[^]` is every character; `[]` matches nothing


def test_dot_and_negation_cover_all_scalar_values():
    g = Grammar.parse('root ::= "<" . ">"')
    for c in ["a", "\n", "é", "日", "😀", ">", "\x00", "\U0010ffff"]:
        assert g.accepts([f"<{c}>"]), c
    g = Grammar.parse("root ::= [^a]")
    assert g.accepts(["😀"])
    assert not g.accepts(["a"])


def test_invalid_utf8_is_rejected():
    g = Grammar.parse("root ::= .*")
    assert g.accepts([b"ok \xc3\xa9"])
    for bad in [
        b"\xc0\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\x80",
        b"\xff",
        b"\xe0\x80\x80",
    ]:
        assert not g.accepts([bad]), bad
        assert not g.is_byte_prefix(bad), bad


def test_utf8_prefix_ranges():
    assert _utf8_prefix_ranges(b"\xc3") == [(0xC0, 0xFF)]
    assert _utf8_prefix_ranges(b"\xe4\xb8") == [(0x4E00, 0x4E3F)]
    assert _utf8_prefix_ranges(b"\xe0\x80") == []  # overlong
    assert _utf8_prefix_ranges(b"\xed\xa0") == []  # surrogates
    assert _utf8_prefix_ranges(b"\xed") == [(0xD000, 0xD7FF)]
    assert _utf8_prefix_ranges(b"\xf4\x90") == []  # past U+10FFFF
    assert _utf8_prefix_ranges(b"\xc1") == []
    assert _utf8_prefix_ranges(b"\xf0") == [(0x10000, 0x3FFFF)]


@pytest.mark.parametrize(
    "cls",
    ["[à-ÿ]", "[一-龥]", "[^a]", "[ぁ-ゟ、-〾]", "[\\u00ff-\\u0101\\U0001F600]", "."],
)
def test_byte_prefix_against_brute_force(cls):
    """is_byte_prefix on every 1- and 2-byte string (and 3-byte ones starting
    with a few lead bytes) equals: some member of the class is encoded with
    these leading bytes (brute force over all scalar values)."""
    g = Grammar.parse(f'root ::= "x" {cls}')
    (term,) = [t for t in g.terminals if isinstance(t, CharClass) and t.ranges != ((120, 120),)]
    members = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and cp in term]
    assert g.accepts([f"x{chr(members[0])}"])
    assert g.accepts([f"x{chr(members[-1])}"])
    prefixes = set()
    for cp in members:
        enc = chr(cp).encode()
        for k in range(1, len(enc) + 1):
            prefixes.add(enc[:k])
    cands = [bytes([a]) for a in range(256)]
    cands += [bytes([a, b]) for a in range(0xC0, 0x100) for b in range(0x70, 0xC8)]
    cands += [
        bytes([a, b, c])
        for a in (0xE3, 0xE4, 0xED, 0xF0, 0xF4)
        for b in (0x80, 0x8F, 0x9F, 0xA0, 0xBF)
        for c in (0x7F, 0x80, 0xBF)
    ]
    for p in cands:
        assert g.is_byte_prefix(b"x" + p) == (p in prefixes), p


# ---------------------------------------------------------------------------
# repetitions
# ---------------------------------------------------------------------------


def test_bounded_repetitions():
    g = Grammar.parse('root ::= "a"{2} "b"{1,3} "c"{2,} "d"{,2}')
    for s in ["aabcc", "aabbbccccdd", "aabccd"]:
        assert g.accepts([s]), s
    for s in ["abcc", "aabbbbcc", "aabc", "aabccddd"]:
        assert not g.accepts([s]), s
    g = Grammar.parse('root ::= ("0x" [A-F0-9]{2} " "?){3,5}')
    assert g.accepts(["0xFF 0x12 0xAB 0x00 0x00"])
    assert not g.accepts(["0xFF 0x12 0xAB 0x00 0x00 0x00"])
    assert acc('root ::= "ab"*', "ababab")  # a repetition applies to the whole literal
    assert not acc('root ::= "ab"*', "abb")
    assert acc('root ::= "a"{ 2 , 3 }', "aaa")


def test_large_nested_repetition_is_fine_for_the_reference():
    g = Grammar.parse("root ::= (((([^x]*){0,9}){0,9}){0,9}){0,9}")
    assert g.accepts(["abc"])
    assert not g.accepts(["axc"])


# ---------------------------------------------------------------------------
# token elements
# ---------------------------------------------------------------------------


def T(i):
    return ("tok", i)


def txt(s: str, ids=None):
    return [("text", b, bytes([b])) for b in s.encode()]


def test_token_elements():
    g = Grammar.parse(
        """
root ::= reasoning+ content
reasoning ::= <[10]> (!<[11]>)* <[11]>
content ::= <think> (!<[21]>)* <[21]>
""",
        token_names={"<think>": 20},
    )
    ok = [T(10), *txt("hm"), T(12), T(11), T(20), *txt("x"), T(21)]
    assert g.accepts(ok)
    assert not g.accepts(ok[:-1])
    assert g.is_prefix(ok[:-1])
    assert not g.accepts([T(10), T(11), *txt("x"), T(21)])
    # bytes are not tokens: the text "<think>" does not match the element
    assert not g.accepts([T(10), T(11), "<think>", T(21)])
    # a stop token never matches a negated element
    assert g.accepts([T(10), T(99), T(11), T(20), T(21)])
    assert not g.accepts([T(10), T(99), T(11), T(20), T(21)], stop_ids=[99])
    # a positive element may name any id
    assert Grammar.parse("root ::= <[99]>").accepts([T(99)], stop_ids=[99])


def test_negated_token_consumes_one_whole_token():
    g = Grammar.parse('root ::= !<[5]> "b"')
    assert g.accepts([("text", 7, "é".encode()), "b"])
    assert g.accepts([("text", 7, b"\xc3"), "b"])  # a token may hold part of a character
    assert g.accepts([("text", 7, b"ab"), "b"])  # a multi-character token is still one token
    assert not g.accepts(["a", "b"])  # plain bytes are not a token
    assert not g.accepts([("text", 5, b"a"), "b"])


def test_text_tokens_split_characters():
    g = Grammar.parse('root ::= "é日"')
    data = "é日".encode()
    units = [("text", i, data[i : i + 1]) for i in range(len(data))]
    assert g.accepts(units)
    for k in range(len(units)):
        assert g.is_prefix(units[:k])
        assert not g.accepts(units[:k])


def test_unknown_token_name():
    with pytest.raises(ReferenceGrammarError):
        Grammar.parse("root ::= <think>")
    with pytest.raises(ReferenceGrammarError):
        Grammar.parse("root ::= <think>", token_names={"<other>": 3})


# ---------------------------------------------------------------------------
# generation and speed
# ---------------------------------------------------------------------------


GEN_GRAMMARS = [
    'root ::= "" | root "(" root ")"',
    'root ::= opt opt "x" opt\nopt ::= "a" | "" | opt opt',
    "root ::= [à-ÿ]+ [一-龥] .{0,3}",
    "root ::= <[10]> (!<[11]>)* <[11]>",
    'root ::= ("0x" [A-F0-9]{2} " "?){3,5}',
]


@pytest.mark.parametrize("grammar", GEN_GRAMMARS)
def test_generated_strings_are_accepted(grammar):
    g = Grammar.parse(grammar)
    rng = random.Random(1234)
    lengths = set()
    for _ in range(40):
        units = g.generate(rng, max_len=30)
        assert units is not None
        assert g.accepts(units), units
        for k in range(len(units)):
            assert g.is_prefix(units[:k])
        lengths.add(len(units))
    assert len(lengths) > 1, "generation should vary"


@pytest.mark.parametrize(
    "name", ["json", "json_arr", "c", "chess", "arithmetic", "japanese", "list", "english"]
)
def test_corpus_grammars_parse_generate_and_are_fast(corpora, name):
    g = Grammar.parse((corpora / "gbnf" / f"{name}.gbnf").read_text(encoding="utf-8"))
    rng = random.Random(name)
    worst = 0.0
    for _ in range(10):
        units = g.generate(rng, max_len=300)
        assert units is not None
        t0 = time.perf_counter()
        ok, pre = g.check(units)
        worst = max(worst, time.perf_counter() - t0)
        assert ok
        assert pre
    assert worst < 1.0, f"reference too slow on {name}: {worst:.2f}s"


def test_json_examples(corpora):
    g = Grammar.parse((corpora / "gbnf" / "json.gbnf").read_text(encoding="utf-8"))
    good = '{"a": [1, -2.5, "x\\u00e9y", true, null, {"b": []}], "c": 1e5}'
    assert g.accepts([good])
    for k in range(len(good)):
        assert g.is_prefix([good[:k]])
    assert not g.accepts(['{"a": 01}'])
    assert not g.is_prefix(['{"a": 01'])
    assert not g.is_prefix(["[1]"])  # json.gbnf's root is an object
    assert g.is_byte_prefix('{"é'.encode()[:-1])
