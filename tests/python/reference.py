"""An independent reference recogniser for the llama.cpp GBNF dialect.

This module shares no code with the engine (``corral._core``): it has its own
GBNF parser and a textbook Earley recogniser, written for clarity rather than
speed, so the tests can check the engine's verdicts against it.

Model
-----
A grammar is parsed into BNF: every rule body becomes a list of alternatives,
each a tuple of symbols. A symbol is a non-terminal (``int >= 0``) or a
terminal (``int < 0`` indexing ``Grammar.terminals``). Terminals are:

* ``CharClass``: one Unicode scalar value in a set of code-point ranges
  (literals become sequences of one-code-point classes, ``.`` is every scalar
  value, ``[^...]`` is the complement);
* ``TokenTerm``: one whole tokenizer token, ``<[N]>``/``<name>`` (the listed
  ids) or ``!<...>`` (any non-stop token except the listed ids).

Repetitions are expanded into helper rules: ``x*`` is ``R ::= | R x`` (left
recursive), ``x+`` is ``x x*``, ``x?`` is ``R ::= | x`` and ``x{m,n}`` is
``m`` copies of ``x`` followed by a chain of ``n - m`` nested optional rules.

Inputs are sequences of *units*:

* an ``int``: a code point (its UTF-8 bytes, not a token);
* ``("tok", id)``: a special token (no bytes; only token elements match it);
* ``("text", id, data)``: a text token ``id`` whose bytes are ``data`` (the
  bytes are matched by the grammar's characters, which may span several
  tokens, and the whole token by token elements);
* ``bytes``: raw bytes that are not a token (e.g. ``accept_string`` input).

Earley's algorithm handles left recursion, ambiguity and (with the
Aycock-Horspool treatment of nullable non-terminals) empty rules. Positions
in the chart are byte offsets in the flattened input; a special token
occupies one position of its own. Non-productive alternatives are removed at
build time, so a non-empty Earley set always means "some continuation is
accepted".
"""

from __future__ import annotations

import bisect
import random as _random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_CP = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
MAX_REPEAT = 100_000  # the reference's own limit on {m,n} counts (it unrolls them)


class ReferenceGrammarError(ValueError):
    """The grammar is not valid GBNF (or names an unknown token / rule)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(f"{line}:{column}: {message}" if line is not None else message)
        self.message = message
        self.line = line
        self.column = column


# ---------------------------------------------------------------------------
# Character classes as sorted disjoint inclusive ranges
# ---------------------------------------------------------------------------


def normalize_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort and merge ranges; drop empty (lo > hi) ones and surrogates."""
    rs = sorted((lo, hi) for lo, hi in ranges if lo <= hi)
    out: list[list[int]] = []
    for lo, hi in rs:
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    # remove surrogates: they are not scalar values and never appear in UTF-8
    res: list[tuple[int, int]] = []
    for lo, hi in out:
        hi = min(hi, MAX_CP)
        if lo > hi:
            continue
        if hi < SURROGATES[0] or lo > SURROGATES[1]:
            res.append((lo, hi))
            continue
        if lo < SURROGATES[0]:
            res.append((lo, SURROGATES[0] - 1))
        if hi > SURROGATES[1]:
            res.append((SURROGATES[1] + 1, hi))
    return tuple(res)


def complement_ranges(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    out = []
    nxt = 0
    for lo, hi in normalize_ranges(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CP:
        out.append((nxt, MAX_CP))
    return normalize_ranges(out)


@dataclass(frozen=True)
class CharClass:
    ranges: tuple[tuple[int, int], ...]
    starts: tuple[int, ...] = field(default=(), compare=False, hash=False)

    @staticmethod
    def of(ranges: Iterable[tuple[int, int]]) -> CharClass:
        rs = normalize_ranges(ranges)
        return CharClass(rs, tuple(lo for lo, _ in rs))

    def __contains__(self, cp: int) -> bool:
        i = bisect.bisect_right(self.starts, cp) - 1
        return i >= 0 and cp <= self.ranges[i][1]

    def intersects(self, lo: int, hi: int) -> bool:
        """Does the class contain some code point in [lo, hi]?"""
        i = bisect.bisect_right(self.starts, hi) - 1
        return i >= 0 and self.ranges[i][1] >= lo

    def is_empty(self) -> bool:
        return not self.ranges

    def sample(self, rng: _random.Random) -> int:
        ascii_part = [
            (lo, min(hi, 0x7E))
            for lo, hi in self.ranges
            if lo <= 0x7E and max(lo, 0x20) <= min(hi, 0x7E)
        ]
        if ascii_part and rng.random() < 0.6:
            lo, hi = rng.choice(ascii_part)
            return rng.randint(max(lo, 0x20), hi)
        lo, hi = rng.choice(self.ranges)
        # favour the edges of a range a little: they are where bugs hide
        r = rng.random()
        if r < 0.2:
            return lo
        if r < 0.4:
            return hi
        return rng.randint(lo, hi)


@dataclass(frozen=True)
class TokenTerm:
    negated: bool
    ids: frozenset

    def matches(self, tid: int | None, is_stop: bool) -> bool:
        if self.negated:
            return not is_stop and tid not in self.ids
        return tid is not None and tid in self.ids


# ---------------------------------------------------------------------------
# GBNF parser (llama.cpp dialect) -> expression trees
# ---------------------------------------------------------------------------
# Expression trees: ("seq", [e...]), ("alt", [e...]), ("cls", CharClass),
# ("tok", TokenTerm), ("ref", name, offset), ("rep", e, min, max|None)


def _is_word_char(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c == "-"


class _Parser:
    def __init__(self, src: str, token_names: dict | None):
        self.src = src
        self.n = len(src)
        self.token_names = token_names
        self.rules: dict[str, object] = {}
        self.rule_order: list[str] = []
        self.refs: list[tuple[str, int]] = []

    # positions -> line/column (1-based, columns in code points)
    def loc(self, pos: int) -> tuple[int, int]:
        line = self.src.count("\n", 0, pos) + 1
        col = pos - (self.src.rfind("\n", 0, pos) + 1) + 1
        return line, col

    def err(self, msg: str, pos: int):
        line, col = self.loc(min(pos, self.n))
        raise ReferenceGrammarError(msg, line, col)

    def peek(self, pos: int) -> str:
        return self.src[pos] if pos < self.n else ""

    def space(self, pos: int, newline_ok: bool) -> int:
        s = self.src
        while pos < self.n:
            c = s[pos]
            if c in " \t" or (newline_ok and c in "\r\n"):
                pos += 1
            elif c == "#":
                while pos < self.n and s[pos] not in "\r\n":
                    pos += 1
            else:
                break
        return pos

    def name_end(self, pos: int) -> int:
        end = pos
        while end < self.n and _is_word_char(self.src[end]):
            end += 1
        if end == pos:
            self.err("expecting a rule name", pos)
        return end

    def parse(self):
        pos = self.space(0, True)
        while pos < self.n:
            pos = self.rule(pos)
        for name, at in self.refs:
            if name not in self.rules:
                self.err(f"undefined rule `{name}`", at)

    def rule(self, pos: int) -> int:
        end = self.name_end(pos)
        name = self.src[pos:end]
        name_at = pos
        pos = self.space(end, False)
        if self.src[pos : pos + 3] != "::=":
            self.err("expecting ::=", pos)
        pos = self.space(pos + 3, True)
        body, pos = self.alternates(pos, False)
        if name in self.rules:
            self.err(f"rule `{name}` is defined twice", name_at)
        self.rule_order.append(name)
        self.rules[name] = body
        c = self.peek(pos)
        if c == "\r":
            pos += 2 if self.peek(pos + 1) == "\n" else 1
        elif c == "\n":
            pos += 1
        elif c:
            self.err("expecting newline or end of input", pos)
        return self.space(pos, True)

    def alternates(self, pos: int, nested: bool):
        alts = []
        seq, pos = self.sequence(pos, nested)
        alts.append(seq)
        while self.peek(pos) == "|":
            pos = self.space(pos + 1, True)
            seq, pos = self.sequence(pos, nested)
            alts.append(seq)
        return (alts[0] if len(alts) == 1 else ("alt", alts)), pos

    def hexnum(self, pos: int, size: int) -> tuple[int, int]:
        digits = self.src[pos : pos + size]
        if len(digits) != size or any(c not in "0123456789abcdefABCDEF" for c in digits):
            self.err(f"expecting {size} hex digits", pos)
        cp = int(digits, 16)
        if cp > MAX_CP or SURROGATES[0] <= cp <= SURROGATES[1]:
            self.err("escape is not a Unicode scalar value", pos)
        return cp, pos + size

    def char(self, pos: int) -> tuple[int, int]:
        s = self.src
        if pos >= self.n:
            self.err("unexpected end of input", pos)
        c = s[pos]
        if c != "\\":
            return ord(c), pos + 1
        e = self.peek(pos + 1)
        if e == "x":
            return self.hexnum(pos + 2, 2)
        if e == "u":
            return self.hexnum(pos + 2, 4)
        if e == "U":
            return self.hexnum(pos + 2, 8)
        simple = {"t": 9, "r": 13, "n": 10, "\\": 92, '"': 34, "'": 39, "[": 91, "]": 93}
        if e in simple:
            return simple[e], pos + 2
        self.err(f"unknown escape `\\{e}`", pos)
        raise AssertionError  # unreachable

    def integer(self, pos: int) -> tuple[int, int]:
        end = pos
        while end < self.n and self.src[end].isdigit() and self.src[end].isascii():
            end += 1
        return int(self.src[pos:end]), end

    def token(self, pos: int) -> tuple[TokenTerm, int]:
        negated = False
        start = pos
        if self.peek(pos) == "!":
            negated = True
            pos += 1
        if self.peek(pos) != "<":
            self.err("expecting `<`", pos)
        if self.peek(pos + 1) == "[":
            p = pos + 2
            if not self.peek(p).isdigit():
                self.err("expecting a token id", p)
            tid, p = self.integer(p)
            if self.src[p : p + 2] != "]>":
                self.err("expecting `]>`", p)
            return TokenTerm(negated, frozenset([tid])), p + 2
        end = self.src.find(">", pos)
        if end < 0:
            self.err("unterminated token", pos)
        text = self.src[pos : end + 1]
        if self.token_names is None or text not in self.token_names:
            self.err(f"unknown token `{text}`", start)
        ids = self.token_names[text]
        ids = [ids] if isinstance(ids, int) else list(ids)
        return TokenTerm(negated, frozenset(ids)), end + 1

    def sequence(self, pos: int, nested: bool):
        items: list = []
        s = self.src
        while pos < self.n:
            c = s[pos]
            if c == '"':
                pos += 1
                chars = []
                while pos < self.n and s[pos] != '"':
                    cp, pos = self.char(pos)
                    chars.append(("cls", CharClass.of([(cp, cp)])))
                if pos >= self.n:
                    self.err("unexpected end of input (unterminated string)", pos)
                items.append(("seq", chars))
                pos = self.space(pos + 1, nested)
            elif c == "[":
                pos += 1
                neg = False
                if self.peek(pos) == "^":
                    neg = True
                    pos += 1
                ranges = []
                while pos < self.n and s[pos] != "]":
                    lo, pos = self.char(pos)
                    if self.peek(pos) == "-" and pos + 1 < self.n and s[pos + 1] != "]":
                        at = pos
                        hi, pos = self.char(pos + 1)
                        if hi < lo:
                            self.err("reversed range in character class", at)
                        ranges.append((lo, hi))
                    else:
                        ranges.append((lo, lo))
                if pos >= self.n:
                    self.err("unexpected end of input (unterminated class)", pos)
                rs = tuple(ranges)
                items.append(("cls", CharClass.of(complement_ranges(rs) if neg else rs)))
                pos = self.space(pos + 1, nested)
            elif _is_word_char(c):
                end = self.name_end(pos)
                name = s[pos:end]
                self.refs.append((name, pos))
                items.append(("ref", name))
                pos = self.space(end, nested)
            elif c == "(":
                pos = self.space(pos + 1, True)
                body, pos = self.alternates(pos, True)
                if self.peek(pos) != ")":
                    self.err("expecting `)`", pos)
                items.append(body)
                pos = self.space(pos + 1, nested)
            elif c == ".":
                items.append(("cls", CharClass.of([(0, MAX_CP)])))
                pos = self.space(pos + 1, nested)
            elif c in "*+?":
                if not items:
                    self.err(f"expecting an item before `{c}`", pos)
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
                items[-1] = ("rep", items[-1], lo, hi)
                pos = self.space(pos + 1, nested)
            elif c == "{":
                if not items:
                    self.err("expecting an item before `{`", pos)
                at = pos
                pos = self.space(pos + 1, nested)
                lo, hi = 0, None
                have_min = False
                if self.peek(pos).isdigit():
                    lo, pos = self.integer(pos)
                    have_min = True
                    pos = self.space(pos, nested)
                if self.peek(pos) == ",":
                    pos = self.space(pos + 1, nested)
                    if self.peek(pos).isdigit():
                        hi, pos = self.integer(pos)
                        pos = self.space(pos, nested)
                    elif not have_min:
                        self.err("expecting a maximum in `{,}`", pos)
                elif have_min:
                    hi = lo
                else:
                    self.err("expecting a number or `,`", pos)
                if self.peek(pos) != "}":
                    self.err("expecting `}`", pos)
                if hi is not None and hi < lo:
                    self.err("repetition maximum is less than its minimum", at)
                items[-1] = ("rep", items[-1], lo, hi)
                pos = self.space(pos + 1, nested)
            elif c == "<" or (c == "!" and self.peek(pos + 1) == "<"):
                term, pos = self.token(pos)
                items.append(("tok", term))
                pos = self.space(pos, nested)
            else:
                break
        return ("seq", items), pos


# ---------------------------------------------------------------------------
# Grammar: BNF + Earley recogniser
# ---------------------------------------------------------------------------


def _utf8_prefix_ranges(prefix: bytes) -> list[tuple[int, int]]:
    """Code points whose UTF-8 encoding starts with ``prefix`` (a proper,
    non-empty prefix of a multi-byte sequence), as inclusive ranges; [] if none."""
    b0 = prefix[0]
    if 0xC0 <= b0 <= 0xDF:
        n, lo_all, hi_all = 2, 0x80, 0x7FF
    elif 0xE0 <= b0 <= 0xEF:
        n, lo_all, hi_all = 3, 0x800, 0xFFFF
    elif 0xF0 <= b0 <= 0xF7:
        n, lo_all, hi_all = 4, 0x10000, MAX_CP
    else:
        return []
    if len(prefix) >= n or any(not 0x80 <= b <= 0xBF for b in prefix[1:]):
        return []
    lo_b = bytes(prefix) + b"\x80" * (n - len(prefix))
    hi_b = bytes(prefix) + b"\xbf" * (n - len(prefix))

    def val(bs: bytes) -> int:
        v = bs[0] & (0x7F >> n)
        for b in bs[1:]:
            v = (v << 6) | (b & 0x3F)
        return v

    lo, hi = max(val(lo_b), lo_all), min(val(hi_b), hi_all)
    if lo > hi:
        return []
    return list(normalize_ranges([(lo, hi)]))


def _decode_at(data: Sequence, p: int, end: int):
    """Decode one UTF-8 scalar at ``data[p:end]`` (ints, or None for a special
    marker). Returns (cp, length), ("partial", k) if data ends inside a valid
    prefix, or None if invalid."""
    b0 = data[p]
    if b0 is None:
        return None
    if b0 < 0x80:
        return b0, 1
    if 0xC2 <= b0 <= 0xDF:
        n, cp, lo = 2, b0 & 0x1F, 0x80
    elif 0xE0 <= b0 <= 0xEF:
        n, cp, lo = 3, b0 & 0x0F, 0x800
    elif 0xF0 <= b0 <= 0xF4:
        n, cp, lo = 4, b0 & 0x07, 0x10000
    else:
        return None
    for k in range(1, n):
        if p + k >= end:
            # only a *valid* prefix counts as partial
            return ("partial", k) if _utf8_prefix_ranges(bytes(data[p : p + k])) else None
        b = data[p + k]
        if b is None or not 0x80 <= b <= 0xBF:
            return None
        cp = (cp << 6) | (b & 0x3F)
    if cp < lo or cp > MAX_CP or SURROGATES[0] <= cp <= SURROGATES[1]:
        return None
    return cp, n


class Grammar:
    """A GBNF grammar in BNF form with an Earley recogniser."""

    def __init__(self):
        self.names: list[str] = []
        self.alts: list[list[tuple[int, ...]]] = []
        self.terminals: list[object] = []
        self.root = 0

    # ----- construction ------------------------------------------------------

    @classmethod
    def parse(
        cls, text: str | bytes, root: str = "root", token_names: dict | None = None
    ) -> Grammar:
        """Parse GBNF. ``token_names`` maps token texts such as ``"<think>"`` to an
        id (or list of ids); ``<[N]>`` needs no mapping."""
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        p = _Parser(text, token_names)
        p.parse()
        if root not in p.rules:
            raise ReferenceGrammarError(f"no rule named `{root}`")
        g = cls()
        g._lower(p.rule_order, p.rules, root)
        return g

    def _term(self, t) -> int:
        key = t
        idx = self._term_ids.get(key)
        if idx is None:
            idx = len(self.terminals)
            self.terminals.append(t)
            self._term_ids[key] = idx
        return -1 - idx

    def _new_rule(self, name: str) -> int:
        self.names.append(name)
        self.alts.append([])
        return len(self.names) - 1

    def _lower(self, order: list[str], rules: dict, root: str):
        self._term_ids: dict = {}
        ids = {}
        for name in order:
            ids[name] = self._new_rule(name)
        self._ids = ids
        for name in order:
            self.alts[ids[name]] = self._alts(rules[name], name)
        # super start rule: S' ::= root
        start = self._new_rule("<start>")
        self.alts[start] = [(ids[root],)]
        self.root = start
        self._finish()

    def _sym(self, e, ctx: str) -> int:
        kind = e[0]
        if kind == "cls":
            return self._term(e[1])
        if kind == "tok":
            return self._term(e[1])
        if kind == "ref":
            return self._ids[e[1]]
        if kind == "seq" and len(e[1]) == 1:
            return self._sym(e[1][0], ctx)
        r = self._new_rule(f"{ctx}_{len(self.names)}")
        self.alts[r] = self._alts(e, ctx)
        return r

    def _alts(self, e, ctx: str) -> list[tuple[int, ...]]:
        if e[0] == "alt":
            return [tuple(self._seq(x, ctx)) for x in e[1]]
        return [tuple(self._seq(e, ctx))]

    def _seq(self, e, ctx: str) -> list[int]:
        kind = e[0]
        if kind == "seq":
            out: list[int] = []
            for x in e[1]:
                out.extend(self._seq(x, ctx))
            return out
        if kind == "rep":
            _, x, lo, hi = e
            if max(lo, hi or 0) > MAX_REPEAT:
                raise ReferenceGrammarError(
                    f"repetition count above the reference's limit {MAX_REPEAT}"
                )
            s = self._sym(x, ctx)
            out = [s] * lo
            if hi is None:
                r = self._new_rule(f"{ctx}_star{len(self.names)}")
                self.alts[r] = [(), (r, s)]
                out.append(r)
            elif hi > lo:
                prev = None
                for _ in range(hi - lo):
                    r = self._new_rule(f"{ctx}_opt{len(self.names)}")
                    self.alts[r] = [(), (s,) if prev is None else (s, prev)]
                    prev = r
                out.append(prev)
            return out
        return [self._sym(e, ctx)]

    def _finish(self):
        n = len(self.names)

        def term_ok(t) -> bool:
            return not (isinstance(t, CharClass) and t.is_empty())

        # productive non-terminals; drop alternatives that can never finish
        productive = [False] * n
        changed = True
        while changed:
            changed = False
            for a in range(n):
                if productive[a]:
                    continue
                for alt in self.alts[a]:
                    if all(
                        (productive[s] if s >= 0 else term_ok(self.terminals[-1 - s])) for s in alt
                    ):
                        productive[a] = True
                        changed = True
                        break
        self.productive = productive
        self.unproductive = [self.names[a] for a in range(n) if not productive[a]]
        for a in range(n):
            self.alts[a] = [
                alt
                for alt in self.alts[a]
                if all((productive[s] if s >= 0 else term_ok(self.terminals[-1 - s])) for s in alt)
            ]
        # nullable
        nullable = [False] * n
        changed = True
        while changed:
            changed = False
            for a in range(n):
                if not nullable[a] and any(
                    all(s >= 0 and nullable[s] for s in alt) for alt in self.alts[a]
                ):
                    nullable[a] = True
                    changed = True
        self.nullable = nullable
        # minimal derivations: (length in units, height), for generation
        INF = (10**9, 10**9)
        best = [INF] * n
        best_alt: list[int] = [-1] * n
        changed = True
        while changed:
            changed = False
            for a in range(n):
                for k, alt in enumerate(self.alts[a]):
                    ln, ht = 0, 0
                    ok = True
                    for s in alt:
                        if s >= 0:
                            if best[s] == INF:
                                ok = False
                                break
                            ln += best[s][0]
                            ht = max(ht, best[s][1])
                        else:
                            ln += 1
                    if ok and (ln, ht + 1) < best[a]:
                        best[a] = (ln, ht + 1)
                        best_alt[a] = k
                        changed = True
        self.min_len = [b[0] for b in best]
        self.min_alt = best_alt
        # flat dotted positions: position id -> next symbol (None at the end) and lhs
        self.pos_sym: list = []
        self.pos_lhs: list[int] = []
        self.alt_start: list[list[int]] = []
        for a in range(n):
            starts = []
            for alt in self.alts[a]:
                starts.append(len(self.pos_sym))
                for s in alt:
                    self.pos_sym.append(s)
                    self.pos_lhs.append(a)
                self.pos_sym.append(None)
                self.pos_lhs.append(a)
            self.alt_start.append(starts)
        self.start_ends = {
            st + len(alt)
            for st, alt in zip(self.alt_start[self.root], self.alts[self.root], strict=True)
        }
        self.is_empty_language = not productive[self.root]

    # ----- input normalisation ------------------------------------------------

    @staticmethod
    def _flatten(units: Iterable, stop_ids: frozenset):
        """-> (data, seg_at): data[p] is a byte (int) or None for a special
        token; seg_at[p] = (id, end, is_stop) for each token starting at p."""
        data: list = []
        seg_at: dict[int, tuple] = {}
        for u in units:
            if isinstance(u, int):
                data.extend(chr(u).encode("utf-8", "surrogatepass"))
            elif isinstance(u, (bytes, bytearray)):
                data.extend(u)
            elif isinstance(u, str):
                data.extend(u.encode("utf-8"))
            elif u[0] == "tok":
                seg_at[len(data)] = (u[1], len(data) + 1, u[1] in stop_ids)
                data.append(None)
            elif u[0] == "text":
                start = len(data)
                data.extend(u[2])
                if len(data) > start:
                    seg_at[start] = (u[1], len(data), u[1] in stop_ids)
            else:
                raise TypeError(f"bad unit {u!r}")
        return data, seg_at

    # ----- Earley -----------------------------------------------------------------

    def _chart(self, data: list, seg_at: dict):
        """Run Earley over the flattened input. Returns (sets, scanners)
        where sets[p] is the set of items (dotpos, origin) at position p (or
        None if no item reached p) and scanners[p] the items before a terminal."""
        N = len(data)
        sets: list = [None] * (N + 1)
        scanners: list = [None] * (N + 1)
        if self.is_empty_language:
            return sets, scanners
        pos_sym, pos_lhs, alt_start, nullable, terms = (
            self.pos_sym,
            self.pos_lhs,
            self.alt_start,
            self.nullable,
            self.terminals,
        )
        waiting_at: list = [None] * (N + 1)
        sets[0] = {(st, 0) for st in alt_start[self.root]}
        for p in range(N + 1):
            cur = sets[p]
            if cur is None:
                continue
            waiting: dict[int, list] = {}
            waiting_at[p] = waiting
            predicted = set()
            scan = []
            agenda = list(cur)
            while agenda:
                item = agenda.pop()
                dp, org = item
                sym = pos_sym[dp]
                if sym is None:
                    lhs = pos_lhs[dp]
                    src = waiting_at[org].get(lhs) if org != p else waiting.get(lhs)
                    if src:
                        for d2, o2 in list(src):
                            ni = (d2 + 1, o2)
                            if ni not in cur:
                                cur.add(ni)
                                agenda.append(ni)
                elif sym >= 0:
                    lst = waiting.get(sym)
                    if lst is None:
                        waiting[sym] = lst = []
                    lst.append(item)
                    if sym not in predicted:
                        predicted.add(sym)
                        for st in alt_start[sym]:
                            ni = (st, p)
                            if ni not in cur:
                                cur.add(ni)
                                agenda.append(ni)
                    if nullable[sym]:
                        ni = (dp + 1, org)
                        if ni not in cur:
                            cur.add(ni)
                            agenda.append(ni)
                else:
                    scan.append(item)
            scanners[p] = scan
            if not scan:
                continue
            # scan one code point
            dec = _decode_at(data, p, N) if p < N else None
            if dec is not None and dec[0] != "partial":
                cp, ln = dec
                tgt = p + ln
                for dp, org in scan:
                    t = terms[-1 - pos_sym[dp]]
                    if type(t) is CharClass and cp in t:
                        s = sets[tgt]
                        if s is None:
                            sets[tgt] = s = set()
                        s.add((dp + 1, org))
            # scan one whole token
            seg = seg_at.get(p)
            if seg is not None:
                tid, end, is_stop = seg
                for dp, org in scan:
                    t = terms[-1 - pos_sym[dp]]
                    if type(t) is TokenTerm and t.matches(tid, is_stop):
                        s = sets[end]
                        if s is None:
                            sets[end] = s = set()
                        s.add((dp + 1, org))
        return sets, scanners

    def _accepted(self, sets) -> bool:
        last = sets[-1]
        return bool(last) and any(dp in self.start_ends and org == 0 for dp, org in last)

    def _prefix(self, data, sets, scanners) -> bool:
        N = len(data)
        if sets[N]:
            return True
        # the input may end inside a code point: look at the last few positions
        for q in range(max(0, N - 3), N):
            if not scanners[q]:
                continue
            dec = _decode_at(data, q, N)
            if dec is None or dec[0] != "partial" or q + dec[1] != N:
                continue
            cands = _utf8_prefix_ranges(bytes(data[q:N]))
            for dp, _ in scanners[q]:
                t = self.terminals[-1 - self.pos_sym[dp]]
                if type(t) is CharClass and any(t.intersects(lo, hi) for lo, hi in cands):
                    return True
        return False

    # ----- public API ----------------------------------------------------------

    def accepts(self, units: Iterable, stop_ids: Iterable[int] = ()) -> bool:
        """Is the whole input in the language?"""
        data, seg_at = self._flatten(units, frozenset(stop_ids))
        sets, _ = self._chart(data, seg_at)
        return self._accepted(sets)

    def is_prefix(self, units: Iterable, stop_ids: Iterable[int] = ()) -> bool:
        """Is the input a prefix of some accepted input? The input may end in
        the middle of a UTF-8 character."""
        data, seg_at = self._flatten(units, frozenset(stop_ids))
        sets, scanners = self._chart(data, seg_at)
        return self._prefix(data, sets, scanners)

    def check(self, units: Iterable, stop_ids: Iterable[int] = ()) -> tuple[bool, bool]:
        """(accepted, is_prefix) in one pass."""
        data, seg_at = self._flatten(units, frozenset(stop_ids))
        sets, scanners = self._chart(data, seg_at)
        return self._accepted(sets), self._prefix(data, sets, scanners)

    def accepts_text(self, text: str) -> bool:
        return self.accepts([text])

    def is_byte_prefix(self, data: bytes) -> bool:
        """Can these bytes (maybe ending inside a character) be continued to an accepted input?"""
        return self.is_prefix([bytes(data)])

    # ----- generation ------------------------------------------------------------

    def generate(
        self,
        rng: _random.Random,
        max_len: int = 60,
        neg_token_choices: Sequence | None = None,
    ) -> list | None:
        """A random accepted input as a list of units (ints for code points,
        ``("tok", id)`` for positive token elements, an entry of
        ``neg_token_choices`` (default: one-byte text tokens of printable
        ASCII, id = byte) for negated ones). Once ``max_len`` units are
        produced (or too many steps were taken) only shortest derivations are
        chosen, so the result is usually about ``max_len`` units long at most.
        Returns None if the language is empty or no allowed token fits a
        negated token element."""
        if self.is_empty_language:
            return None
        if neg_token_choices is None:
            neg_token_choices = [("text", b, bytes([b])) for b in range(0x20, 0x7F)]
        out: list = []
        stack = [self.root]
        pending = self.min_len[self.root]
        steps = 0
        step_cap = 20 * max_len + 200
        while stack:
            s = stack.pop()
            steps += 1
            if s < 0:
                t = self.terminals[-1 - s]
                pending -= 1
                if isinstance(t, CharClass):
                    out.append(t.sample(rng))
                elif t.negated:
                    ok = [u for u in neg_token_choices if u[1] not in t.ids]
                    if not ok:
                        return None
                    out.append(rng.choice(ok))
                else:
                    out.append(("tok", rng.choice(sorted(t.ids))))
                continue
            pending -= self.min_len[s]
            alts = self.alts[s]
            finishing = steps > step_cap or len(out) + pending >= max_len
            if finishing:
                k = self.min_alt[s]
            else:
                cands = [
                    k
                    for k, alt in enumerate(alts)
                    if len(out) + pending + self._alt_min(alt) <= max_len
                ]
                k = rng.choice(cands) if cands else self.min_alt[s]
            alt = alts[k]
            pending += self._alt_min(alt)
            stack.extend(reversed(alt))
        return out

    def _alt_min(self, alt) -> int:
        return sum(self.min_len[s] if s >= 0 else 1 for s in alt)


def units_to_text(units: Sequence) -> str | None:
    """The string of a unit list made only of code points (None otherwise)."""
    if all(isinstance(u, int) for u in units):
        return "".join(chr(u) for u in units)
    return None
