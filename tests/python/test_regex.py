"""The regex front-end (``GrammarCompiler.compile_regex``) against Python's ``re``.

The grammar of a pattern must accept exactly the strings ``re.fullmatch``
accepts. Checked on:

- random patterns (a hypothesis strategy over small regex trees: literals incl.
  non-ASCII and escaped metacharacters, escapes, classes with ranges and
  negation, ``\\d \\w \\s`` and negations, ``.``, groups, alternation, every
  quantifier form incl. lazy ones, anchors at the ends) with strings drawn
  from the pattern's alphabet plus noise, strings ``hypothesis.from_regex``
  generates (and one-character mutations of them), and random walks under the
  mask on the byte vocabulary (at every step where the text so far is valid
  UTF-8, ``can_terminate()`` must equal ``re.fullmatch``);
- every code point for ``\\w \\d \\s . \\W`` (the class tables);
- JSON-Schema-style patterns (dates, emails, UUIDs, ...), also on Qwen2.5's
  real vocabulary;
- errors: lookarounds, backreferences, unbalanced parentheses, ... raise with
  a line and column, never silently change the language.

Character tables come from the ``regex-syntax`` crate, whose Unicode version
may be newer than this Python's ``unicodedata``: comparisons skip strings with
characters unassigned in Python's Unicode version (category ``Cn``), the only
place the two may disagree (``test_unicode_classes_on_every_code_point``
checks that).
"""

from __future__ import annotations

import random
import re
import unicodedata

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from conftest import BYTE_EOS, mask_bits, new_mask
from corral import GrammarError, GrammarMatcher, GrammarSyntaxError, LimitExceededError
from test_properties import SETTINGS as PROPERTY_SETTINGS

BYTE_VOCAB_SIZE = 259

# One home for the hypothesis profile (derandomized, no database).
SETTINGS = settings(PROPERTY_SETTINGS, max_examples=300)


def comparable(s: str) -> bool:
    """No character unassigned in Python's Unicode version (see module doc)."""
    return all(unicodedata.category(c) != "Cn" for c in s)


def engine_fullmatch(compiled, s: str) -> bool:
    m = GrammarMatcher(compiled)
    return m.accept_string(s) and m.can_terminate()


def python_fullmatch(pattern: str, s: str) -> bool:
    return re.fullmatch(pattern, s) is not None


# ---------------------------------------------------------------------------
# random patterns
# ---------------------------------------------------------------------------

META = set(".^$*+?{}[]()|\\")
CHARS = [
    "a",
    "b",
    "c",
    "Z",
    "0",
    "7",
    "_",
    "-",
    " ",
    "\n",
    "\t",
    "\x1c",
    "é",
    "ß",
    "Ω",
    "中",
    "٣",  # Arabic-Indic digit three (Nd)
    "①",  # circled digit one (No: \w but not \d)
    "Ⅻ",  # Roman numeral twelve (Nl)
    "\u00a0",
    "\u3000",
    "\u0301",  # combining acute (Mn: not \w in Python)
    "😀",
    ".",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "*",
    "+",
    "?",
    "|",
    "\\",
    "^",
    "$",
    "/",
    "&",
    "~",
]
PERL = ["\\d", "\\w", "\\s", "\\D", "\\W", "\\S"]


def render_literal(c: str, style: int) -> str:
    cp = ord(c)
    if style == 1 and cp <= 0xFF:
        return f"\\x{cp:02x}"
    if style == 2 and cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    if style == 3:
        return f"\\U{cp:08X}"
    if c in META:
        return "\\" + c
    if c == "\n":
        return "\\n"
    if c == "\t":
        return "\\t"
    if cp < 0x20:
        return f"\\x{cp:02x}"
    return c


def render_class_char(c: str, style: int) -> str:
    # `[ & ~ |` are escaped so Python's "possible set operation" warnings never fire.
    if c in "]\\^-[&~|":
        return "\\" + c
    return render_literal(c, style)


@st.composite
def class_texts(draw) -> str:
    items = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 3))
        style = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))
        if kind == 0:
            items.append(draw(st.sampled_from(PERL)))
        elif kind == 1:
            a, b = sorted(draw(st.lists(st.sampled_from(CHARS), min_size=2, max_size=2)), key=ord)
            items.append(render_class_char(a, style) + "-" + render_class_char(b, style))
        else:
            items.append(render_class_char(draw(st.sampled_from(CHARS)), style))
    neg = "^" if draw(st.integers(0, 2)) == 0 else ""
    return "[" + neg + "".join(items) + "]"


# A pattern fragment: (text, whether a quantifier may follow it directly).
Frag = tuple[str, bool]

ATOMS: st.SearchStrategy[Frag] = st.one_of(
    st.builds(
        lambda c, style: (render_literal(c, style), True),
        st.sampled_from(CHARS),
        st.sampled_from([0, 0, 0, 0, 1, 2, 3]),
    ),
    st.sampled_from(PERL).map(lambda t: (t, True)),
    st.just((".", True)),
    class_texts().map(lambda t: (t, True)),
)

QUANTIFIERS = ["*", "+", "?", "{2}", "{0}", "{1,3}", "{2,}", "{,2}", "{0,1}"]


def concat(parts: list[Frag]) -> Frag:
    if len(parts) == 1:
        return parts[0]
    return "".join(p[0] for p in parts), False


def alternation(parts: list[Frag], capture: bool) -> Frag:
    return ("(" if capture else "(?:") + "|".join(p[0] for p in parts) + ")", True


def repeat(part: Frag, quant: str, lazy: bool) -> Frag:
    base = part[0] if part[1] else "(?:" + part[0] + ")"
    return base + quant + ("?" if lazy else ""), False


def extend(children: st.SearchStrategy[Frag]) -> st.SearchStrategy[Frag]:
    quantified = st.builds(repeat, children, st.sampled_from(QUANTIFIERS), st.booleans())
    return st.one_of(
        st.lists(children, min_size=2, max_size=4).map(concat),
        st.lists(st.one_of(children, quantified), min_size=2, max_size=4).map(concat),
        st.builds(alternation, st.lists(children, min_size=2, max_size=3), st.booleans()),
        quantified,
        quantified,
        st.sampled_from(["(", "(?:"]).flatmap(
            lambda o: children.map(lambda f: (o + f[0] + ")", True))
        ),
        st.just(("()", True)),
    )


@st.composite
def patterns(draw) -> str:
    body = draw(st.recursive(ATOMS, extend, max_leaves=8))[0]
    if draw(st.integers(0, 3)) == 0:
        body += "|" + draw(st.recursive(ATOMS, extend, max_leaves=3))[0]
        return body
    start = draw(st.sampled_from(["", "", "^", "\\A"]))
    end = draw(st.sampled_from(["", "", "$", "\\Z"]))
    return start + body + end


def mask_walk(compiled, pattern: str, rng: random.Random, max_bytes: int = 24) -> list[str]:
    """Walk the mask on the byte vocabulary; at every step the EOS bit must equal
    can_terminate and, where the bytes so far are valid UTF-8, Python's verdict.
    Returns the complete strings seen along the way."""
    m = GrammarMatcher(compiled)
    mask = new_mask(BYTE_VOCAB_SIZE)
    out: list[str] = []
    data = b""
    while True:
        m.fill_next_token_bitmask(mask)
        bits = mask_bits(mask)[:BYTE_VOCAB_SIZE]
        assert bool(bits[BYTE_EOS]) == m.can_terminate()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and comparable(text):
            assert m.can_terminate() == python_fullmatch(pattern, text), (pattern, text)
            if m.can_terminate():
                out.append(text)
        allowed = np.flatnonzero(bits[:256])
        if len(allowed) == 0 or len(data) >= max_bytes or (bits[BYTE_EOS] and rng.random() < 0.25):
            return out
        tok = int(rng.choice(allowed))
        assert m.accept_token(tok)
        data += bytes([tok])


def compile_or_error(compiler, pattern: str):
    """(compiled grammar, None) or (None, error message)."""
    try:
        return compiler.compile_regex(pattern), None
    except GrammarError as e:
        return None, str(e)


def mutations(s: str, rng: random.Random, alphabet: list[str]) -> list[str]:
    out = []
    for _ in range(3):
        k = rng.randrange(len(s) + 1)
        op = rng.randrange(3)
        c = rng.choice(alphabet)
        if op == 0:
            out.append(s[:k] + c + s[k:])
        elif op == 1 and k < len(s):
            out.append(s[:k] + s[k + 1 :])
        elif k < len(s):
            out.append(s[:k] + c + s[k + 1 :])
    return out


@SETTINGS
@given(pattern=patterns(), data=st.data())
def test_random_patterns_agree_with_re(byte_compiler, pattern, data):
    note(f"pattern: {pattern!r}")
    compiled_re = re.compile(pattern)  # the strategy writes only valid patterns
    compiled, error = compile_or_error(byte_compiler, pattern)
    # The only refusal the strategy can trigger: a pattern that matches nothing.
    assert error is None or "matches no string" in error, (pattern, error)
    empty = compiled is None
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    alphabet = sorted(set(CHARS) | set(pattern))
    strings = data.draw(
        st.lists(st.text(alphabet=alphabet, max_size=8), max_size=12), label="random strings"
    )
    try:
        generated = data.draw(
            st.lists(st.from_regex(compiled_re, fullmatch=True), max_size=4), label="matches"
        )
    except Exception:  # from_regex cannot generate for some patterns
        generated = []
    for s in generated:
        strings.append(s)
        strings.extend(mutations(s, rng, alphabet))
    if not empty:
        strings.extend(mask_walk(compiled, pattern, rng) if rng.random() < 0.9 else [])
    for s in strings:
        if not comparable(s):
            continue
        want = compiled_re.fullmatch(s) is not None
        got = False if empty else engine_fullmatch(compiled, s)
        assert got == want, f"pattern {pattern!r} on {s!r}: engine {got}, re {want}"


def test_unicode_classes_on_every_code_point(byte_compiler):
    """\\w \\d \\s . and their negations agree with Python on every code point
    assigned in Python's Unicode version, and accept none that Python rejects
    (a character a newer Unicode made a digit or letter is matched by neither
    the class nor its negation)."""
    for pat in [r"\w", r"\d", r"\s", ".", r"\W", r"\D", r"[^\d]", r"[^\W]"]:
        m = GrammarMatcher(byte_compiler.compile_regex(pat))
        rx = re.compile(pat)
        bad = []
        for cp in range(0x110000):
            if 0xD800 <= cp < 0xE000:
                continue
            c = chr(cp)
            m.reset()
            got = m.accept_string(c) and m.can_terminate()
            want = rx.fullmatch(c) is not None
            if (got and not want) or (got != want and unicodedata.category(c) != "Cn"):
                bad.append(hex(cp))
        assert not bad, (pat, bad[:20])


# ---------------------------------------------------------------------------
# fixed patterns
# ---------------------------------------------------------------------------

SCHEMA_PATTERNS = {
    r"^[a-z]+$": ["abc", "", "abC", "a1", "z", "é"],
    r"^\d{4}-\d{2}-\d{2}$": [
        "2024-01-31",
        "2024-1-31",
        "2024-01-311",
        "\uff12\uff10\uff12\uff14-01-31",
        "abcd-01-31",
    ],
    r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$": [
        "john.doe@example.com",
        "a@b.co",
        "a@b.c",
        "@example.com",
        "a b@example.com",
        "x+y%z@sub.domain.org",
    ],
    r"^(\([0-9]{3}\))?[0-9]{3}-[0-9]{4}$": ["555-1212", "(888)555-1212", "(888)555-1212 ext. 532"],
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$": [
        "123e4567-e89b-12d3-a456-426614174000",
        "123e4567-e89b-12d3-a456-42661417400",
        "123e4567e89b12d3a456426614174000",
    ],
    r"^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$": [
        "192.168.0.1",
        "255.255.255.255",
        "256.1.1.1",
        "1.2.3",
        "01.2.3.4",
    ],
    r"^https?://[^\s/$.?#].[^\s]*$": [
        "https://example.com/x?y=1",
        "http://a",
        "ftp://x",
        "http:// x",
    ],
    r"^\S+$": ["abc", "a b", "", "a\u00a0b", "a\x1cb"],
    r"^[A-Z]{2,3}$": ["US", "USA", "USAA", "us"],
    r"^(?:\+?1[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]?\d{4}$": ["+1 (555) 123-4567", "5551234567"],
    r"^[\w.-]+$": ["héllo.wörld-1", "a b", "中文_名"],
    r"^#?([a-f0-9]{6}|[a-f0-9]{3})$": ["#a3c113", "fff", "#ffff"],
    r"^.{3,5}$": ["abc", "ab", "abcdef", "a\nb", "中文字"],
    r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$": ["-0.5e10", "01", "1.", "3.14"],
    r"\d+(?P<unit>px|em)": ["12px", "3em", "px"],
    r"a{,3}b{2,}?c??": ["aaabb", "bbc", "aaaabb", "b"],
    r"[\]\-^]+": ["]-^", "a"],
    r"x{1": ["x{1", "x"],
    r"\141\x62\u0063\U00000064": ["abcd"],
}


@pytest.mark.parametrize("pattern", list(SCHEMA_PATTERNS))
def test_schema_patterns(byte_compiler, pattern):
    compiled = byte_compiler.compile_regex(pattern)
    for s in SCHEMA_PATTERNS[pattern]:
        assert engine_fullmatch(compiled, s) == python_fullmatch(pattern, s), (pattern, s)
    rng = random.Random(pattern)
    for _ in range(20):
        mask_walk(compiled, pattern, rng, max_bytes=48)


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        # ECMAScript spellings that Python's re lacks.
        (r"\u{1F600}+", ["😀😀"], ["", "x"]),
        (r"\uD83D\uDE00", ["😀"], ["x"]),
        (r"\p{Lu}\p{Ll}+", ["Ωmega", "Ab"], ["ab", "A"]),
        (r"\P{L}", ["1", " "], ["a"]),
        (r"(?<year>\d{4})-(?<month>\d\d)", ["2024-05"], ["2024-5"]),
        (r"[\p{Greek}\d]+", ["\u03b1\u03b2\u0031\u0032"], ["ab"]),
    ],
)
def test_ecmascript_extensions(byte_compiler, pattern, yes, no):
    compiled = byte_compiler.compile_regex(pattern)
    for s in yes:
        assert engine_fullmatch(compiled, s), (pattern, s)
    for s in no:
        assert not engine_fullmatch(compiled, s), (pattern, s)


QWEN_PATTERNS = {
    r"^\d{4}-\d{2}-\d{2}$": ["2024-01-31", "2024-01-3"],
    r"^[a-z]+( [a-z]+)*$": ["hello world", "hello  world", "hello"],
    r"^[\w.+-]+@[\w-]+\.[\w.]+$": ["john.doe@example.com", "a@b"],
    r"^(中文|日本語)+$": ["中文日本語", "中日"],
}


def test_qwen_vocabulary(qwen, qwen_compiler):
    """Multi-byte tokens: canonical tokenizations are accepted exactly when the
    string matches; random walks under the full mask produce matching strings."""
    for pattern, strings in QWEN_PATTERNS.items():
        compiled = qwen_compiler.compile_regex(pattern)
        for s in strings:
            m = GrammarMatcher(compiled)
            ids = qwen.enc.encode_ordinary(s)
            ok = all(m.accept_token(t) for t in ids) and m.can_terminate()
            assert ok == python_fullmatch(pattern, s), (pattern, s)
        rng = random.Random(pattern)
        for _ in range(5):
            m = GrammarMatcher(compiled)
            mask = new_mask(qwen.vocab_size)
            data = b""
            for _ in range(12):
                m.fill_next_token_bitmask(mask)
                allowed = np.flatnonzero(mask_bits(mask)[: qwen.vocab_size])
                stops = [t for t in allowed if t in qwen.stop_ids]
                text_ids = [t for t in allowed if t not in qwen.stop_ids]
                if stops and (not text_ids or rng.random() < 0.3):
                    break
                tok = int(rng.choice(text_ids))
                assert m.accept_token(tok)
                data += qwen.tokens[tok]
            if m.can_terminate():
                assert python_fullmatch(pattern, data.decode("utf-8")), (pattern, data)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "kind", "column", "words"),
    [
        ("ab(?=c)", GrammarError, 3, "lookahead"),
        ("ab(?!c)", GrammarError, 3, "lookahead"),
        ("(?<=a)b", GrammarError, 1, "lookbehind"),
        ("(?<!a)b", GrammarError, 1, "lookbehind"),
        (r"(a)\1", GrammarError, 4, "backreference"),
        (r"(?P<x>a)(?P=x)", GrammarError, 9, "backreference"),
        (r"(?<x>a)\k<x>", GrammarError, 8, "backreference"),
        (r"\bword\b", GrammarError, 1, "word boundar"),
        ("(?i)abc", GrammarError, 1, "flags"),
        ("(?>a+)b", GrammarError, 1, "atomic"),
        ("a++", GrammarError, 2, "possessive"),
        ("a^b", GrammarError, 2, "start"),
        ("a$b", GrammarError, 2, "end"),
        (r"\N{DIGIT ONE}", GrammarError, 1, "named character"),
        ("(ab", GrammarSyntaxError, 1, "missing )"),
        ("ab)", GrammarSyntaxError, 3, "unbalanced parenthesis"),
        ("a(b))c", GrammarSyntaxError, 5, "unbalanced parenthesis"),
        ("[abc", GrammarSyntaxError, 1, "unterminated character set"),
        ("*a", GrammarSyntaxError, 1, "nothing to repeat"),
        ("a**", GrammarSyntaxError, 3, "multiple repeat"),
        ("a{3,2}", GrammarSyntaxError, 2, "min repeat greater than max"),
        ("[z-a]", GrammarSyntaxError, 2, "bad character range"),
        (r"a\q", GrammarSyntaxError, 2, "bad escape"),
        (r"\x4g", GrammarSyntaxError, 1, "incomplete escape"),
        ("日本(", GrammarSyntaxError, 3, "missing )"),
    ],
)
def test_errors(byte_compiler, pattern, kind, column, words):
    with pytest.raises(kind) as info:
        byte_compiler.compile_regex(pattern)
    e = info.value
    if kind is GrammarError:
        assert not isinstance(e, GrammarSyntaxError)
    assert (e.line, e.column) == (1, column), str(e)
    assert words in e.message, str(e)
    assert e.snippet is not None
    assert "^" in e.snippet
    # Python's re agrees that malformed patterns are malformed.
    if kind is GrammarSyntaxError:
        with pytest.raises(re.error):
            re.compile(pattern)


def test_limits(byte_compiler):
    with pytest.raises(LimitExceededError):
        byte_compiler.compile_regex("(" * 1000 + "a" + ")" * 1000)
    # 2^17 subsets of the last 17 positions; three such searches exceed Limits.max_dfa_states.
    with pytest.raises(LimitExceededError, match="max_dfa_states"):
        byte_compiler.compile_regex("[a-d]*a[a-d]{16}b[a-d]*b[a-d]{16}c[a-d]*c[a-d]{16}d[a-d]{16}")
    assert byte_compiler.compile_regex("[a-z]{1000000}").num_states < 16
    # Nested small repetitions whose copies would be big are counted, not unrolled.
    assert byte_compiler.compile_regex("(((([a-z]{16}){16}){16}){16}){16}").num_states < 200
    with pytest.raises(GrammarError, match="matches no string"):
        byte_compiler.compile_regex(r"[^\s\S]")
