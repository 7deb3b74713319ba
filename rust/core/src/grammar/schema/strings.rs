//! String contents for the JSON Schema front-end.
//!
//! Constraints (`pattern`, `format`, `enum`, property names) describe the
//! *decoded* string, but the grammar produces the *escaped* JSON text between
//! the quotes. [`spell`] maps an expression over decoded characters to the
//! expression over every JSON spelling of those characters: the raw character
//! where JSON allows it, its short escape (`\n`, `\"`, `\/`, ...), and `\uXXXX`
//! in either hex case (a surrogate pair for characters above U+FFFF). Each
//! decoded character becomes exactly one spelled unit, so repetition counts
//! (`minLength`/`maxLength`) still count code points. Lone surrogate escapes
//! are never produced: they decode to no Unicode scalar value.

use crate::automaton::earley::Parser;
use crate::automaton::Automaton;
use crate::error::{Error, ErrorKind, Result};
use crate::grammar::{Expr, Grammar, Rule};
use crate::limits::Limits;
use crate::vocab::Vocabulary;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

const MAX_CHAR: u32 = 0x10_FFFF;

/// Any Unicode scalar value.
pub(crate) fn any_char() -> Expr {
    Expr::Class {
        negated: true,
        ranges: vec![],
    }
}

/// `e` with every bounded repetition written out (`x{0,2}` as
/// `(?:x(?:x)?)?`), so the automaton builds no counter for it: for short
/// unanchored patterns (see [`SEARCH_UNROLL`]) and for `hostname`, whose six
/// tiers of label counters ran side by side, so that every character of a
/// name was a parser walk of the vocabulary (2-6 ms per mask); written out
/// they are one DFA (2,182 states, built in about 2 ms) that a walk steps a
/// byte at a time (about 1.2 ms per state met; too big for a key of the
/// lexical cache, so not shared).
pub(crate) fn unrolled(e: Expr) -> Expr {
    match e {
        Expr::Repeat {
            expr,
            min,
            max: Some(max),
        } => {
            let x = unrolled(*expr);
            let optional = (min..max).fold(Expr::Empty, |rest, _| {
                Expr::Alt(vec![Expr::Empty, Expr::Seq(vec![x.clone(), rest])])
            });
            let mut seq = vec![x; min as usize];
            seq.push(optional);
            Expr::Seq(seq)
        }
        Expr::Repeat { expr, min, max } => Expr::Repeat {
            expr: Box::new(unrolled(*expr)),
            min,
            max,
        },
        Expr::Seq(v) => Expr::Seq(v.into_iter().map(unrolled).collect()),
        Expr::Alt(v) => Expr::Alt(v.into_iter().map(unrolled).collect()),
        other => other,
    }
}

/// Characters `e` spells with its bounded repetitions written out (one per
/// class or literal character; alternatives add up), for [`SEARCH_UNROLL`];
/// None if `e` holds a non-ASCII character or class.
fn written_width(e: &Expr) -> Option<u64> {
    Some(match e {
        Expr::Repeat { expr, min, max } => {
            written_width(expr)?.saturating_mul(u64::from(max.unwrap_or(*min).max(1)))
        }
        Expr::Seq(v) | Expr::Alt(v) => v
            .iter()
            .map(written_width)
            .try_fold(0u64, |n, w| w.map(|w| n.saturating_add(w)))?,
        Expr::Literal(b) if b.is_ascii() => b.len() as u64,
        Expr::Class {
            negated: false,
            ranges,
        } if ranges.iter().all(|&(_, hi)| hi < 0x80) => 1,
        Expr::Empty => 0,
        _ => return None,
    })
}

/// Unanchored patterns of ASCII classes and literals whose written-out
/// width (see [`written_width`]) is at most this are written out. Behind a
/// `.*` a counter starts at every character, and the parse contexts that
/// tell the overlapping runs apart never repeat (`.*[0-9a-f]{40}` after 41
/// hex digits is in a context it was not in after 40), so a walk of the
/// vocabulary stepped an Earley parser at most nodes (3 ms a mask); written
/// out, the search is a small DFA whose states read every quote-free token
/// alive (the walks' closed groups absorb those subtrees). Unicode classes
/// stay counted: their characters' partial states multiply the DFA, and
/// each count state became a walk of its own.
const SEARCH_UNROLL: u64 = 64;

/// Any decoded string.
pub(crate) fn any_string() -> Expr {
    Expr::Repeat {
        expr: Box::new(any_char()),
        min: 0,
        max: None,
    }
}

/// An expression that matches nothing.
pub(crate) fn nothing() -> Expr {
    Expr::Alt(vec![])
}

/// The escaped-JSON form of `decoded` (an expression over decoded characters),
/// in every spelling.
pub(crate) fn spell(decoded: &Expr) -> Result<Expr> {
    spell_with(decoded, true)
}

/// Like [`spell`], but characters are written raw wherever JSON allows it; only
/// `"`, `\` and control characters are escaped (short escapes, or `\u00XX`).
/// Used for `pattern` and `format`, whose many small classes would grow
/// several-fold with every `\uXXXX` spelling; still sound, as every accepted
/// text decodes to a string of the language.
pub(crate) fn spell_raw(decoded: &Expr) -> Result<Expr> {
    spell_with(decoded, false)
}

fn spell_with(decoded: &Expr, full: bool) -> Result<Expr> {
    let spell = |e: &Expr| spell_with(e, full);
    Ok(match decoded {
        Expr::Empty => Expr::Empty,
        Expr::Literal(bytes) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Error::new(ErrorKind::Internal, "non-UTF-8 literal in a string"))?;
            let mut items: Vec<Expr> = text
                .chars()
                .map(|c| spell_ranges(&[(c as u32, c as u32)], full))
                .collect();
            match items.len() {
                0 => Expr::Empty,
                1 => items.pop().unwrap_or(Expr::Empty),
                _ => Expr::Seq(items),
            }
        }
        Expr::Class { negated, ranges } => spell_ranges(&normalise(*negated, ranges), full),
        Expr::Seq(v) => Expr::Seq(v.iter().map(spell).collect::<Result<_>>()?),
        Expr::Alt(v) => Expr::Alt(v.iter().map(spell).collect::<Result<_>>()?),
        Expr::Repeat { expr, min, max } => Expr::Repeat {
            expr: Box::new(spell(expr)?),
            min: *min,
            max: *max,
        },
        Expr::Bytes(_) | Expr::Rule(_) | Expr::Token { .. } | Expr::Permutation { .. } => {
            return Err(Error::new(
                ErrorKind::Internal,
                "string constraint is not a plain character expression",
            ))
        }
    })
}

/// A known string (property name, `const`/`enum` value) in the spellings
/// JSON serialisers produce, not every spelling: printable ASCII raw, `"`
/// and `\` and control characters as their short escape or `\u00XX`, other
/// characters raw or as `\uXXXX` (a surrogate pair above U+FFFF; either hex
/// case), as `json.dumps` writes them with or without `ensure_ascii`.
/// Escaping a plain ASCII letter (`\u0061`) is valid JSON but no serialiser
/// does it; leaving it out keeps keys one token path wide for the model and
/// their automata the size of the text.
pub(crate) fn spell_literal(text: &str) -> Expr {
    let mut items = Vec::new();
    let mut run = Vec::new();
    for c in text.chars() {
        let cp = c as u32;
        if (0x20..0x7F).contains(&cp) && c != '"' && c != '\\' {
            run.push(cp as u8);
            continue;
        }
        if !run.is_empty() {
            items.push(Expr::Literal(std::mem::take(&mut run)));
        }
        items.push(spell_ranges(&[(cp, cp)], true));
    }
    if !run.is_empty() {
        items.push(Expr::Literal(run));
    }
    Expr::Seq(items)
}

/// Sorted, merged scalar-value ranges (surrogates removed) of a class.
pub(crate) fn normalise(negated: bool, ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    subtract(
        &crate::grammar::class_ranges(negated, ranges),
        0xD800,
        0xDFFF,
    )
}

fn subtract(ranges: &[(u32, u32)], lo: u32, hi: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for &(a, b) in ranges {
        if b < lo || a > hi {
            out.push((a, b));
            continue;
        }
        if a < lo {
            out.push((a, lo - 1));
        }
        if b > hi {
            out.push((hi + 1, b));
        }
    }
    out
}

fn intersect(ranges: &[(u32, u32)], lo: u32, hi: u32) -> Vec<(u32, u32)> {
    ranges
        .iter()
        .filter(|&&(a, b)| b >= lo && a <= hi)
        .map(|&(a, b)| (a.max(lo), b.min(hi)))
        .collect()
}

/// Every JSON spelling of one character from the (normalised) ranges; with
/// `full == false`, only the raw character or, where JSON needs one, an escape.
fn spell_ranges(ranges: &[(u32, u32)], full: bool) -> Expr {
    let mut alts = Vec::new();
    // Raw: anything but controls, `"` and `\`.
    let raw = subtract(
        &subtract(&subtract(ranges, 0, 0x1F), 0x22, 0x22),
        0x5C,
        0x5C,
    );
    if !raw.is_empty() {
        alts.push(Expr::Class {
            negated: false,
            ranges: raw,
        });
    }
    for (c, esc) in [
        (0x22, "\\\""),
        (0x5C, "\\\\"),
        (0x2F, "\\/"),
        (0x08, "\\b"),
        (0x0C, "\\f"),
        (0x0A, "\\n"),
        (0x0D, "\\r"),
        (0x09, "\\t"),
    ] {
        if ranges.iter().any(|&(a, b)| a <= c && c <= b) {
            alts.push(Expr::Literal(esc.as_bytes().to_vec()));
        }
    }
    let u = || Expr::Literal(b"\\u".to_vec());
    if !full {
        // Controls without a short escape.
        for (a, b) in intersect(ranges, 0, 0x1F) {
            alts.push(Expr::Seq(vec![u(), hex_range(a, b, 4)]));
        }
        return if alts.len() == 1 {
            alts.pop().unwrap_or_else(nothing)
        } else {
            Expr::Alt(alts)
        };
    }
    for (a, b) in intersect(ranges, 0, 0xFFFF) {
        alts.push(Expr::Seq(vec![u(), hex_range(a, b, 4)]));
    }
    for (a, b) in intersect(ranges, 0x1_0000, MAX_CHAR) {
        let (ha, la) = pair(a);
        let (hb, lb) = pair(b);
        let mut block = |h0: u32, h1: u32, l0: u32, l1: u32| {
            alts.push(Expr::Seq(vec![
                u(),
                hex_range(h0, h1, 4),
                u(),
                hex_range(l0, l1, 4),
            ]));
        };
        if ha == hb {
            block(ha, ha, la, lb);
        } else {
            block(ha, ha, la, 0xDFFF);
            if ha + 1 < hb {
                block(ha + 1, hb - 1, 0xDC00, 0xDFFF);
            }
            block(hb, hb, 0xDC00, lb);
        }
    }
    if alts.len() == 1 {
        alts.pop().unwrap_or_else(nothing)
    } else {
        Expr::Alt(alts)
    }
}

fn pair(cp: u32) -> (u32, u32) {
    let v = cp - 0x1_0000;
    (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
}

/// One hex digit with a value in `lo..=hi`, either letter case.
fn hex_digit(lo: u32, hi: u32) -> Expr {
    let mut ranges = Vec::new();
    if lo <= 9 {
        ranges.push((u32::from(b'0') + lo, u32::from(b'0') + hi.min(9)));
    }
    if hi >= 10 {
        let (a, b) = (lo.max(10) - 10, hi - 10);
        ranges.push((u32::from(b'a') + a, u32::from(b'a') + b));
        ranges.push((u32::from(b'A') + a, u32::from(b'A') + b));
    }
    Expr::Class {
        negated: false,
        ranges,
    }
}

/// Fixed-width (`n` digits) hex numbers in `lo..=hi`.
fn hex_range(lo: u32, hi: u32, n: u32) -> Expr {
    if n == 0 {
        return Expr::Empty;
    }
    let unit = 16u32.pow(n - 1);
    let (a, b) = (lo / unit, hi / unit);
    let (lr, hr) = (lo % unit, hi % unit);
    let any_rest = || Expr::Repeat {
        expr: Box::new(hex_digit(0, 15)),
        min: n - 1,
        max: Some(n - 1),
    };
    if a == b {
        return Expr::Seq(vec![hex_digit(a, a), hex_range(lr, hr, n - 1)]);
    }
    if lr == 0 && hr == unit - 1 {
        return Expr::Seq(vec![hex_digit(a, b), any_rest()]);
    }
    let mut alts = vec![Expr::Seq(vec![
        hex_digit(a, a),
        hex_range(lr, unit - 1, n - 1),
    ])];
    if a + 1 < b {
        alts.push(Expr::Seq(vec![hex_digit(a + 1, b - 1), any_rest()]));
    }
    alts.push(Expr::Seq(vec![hex_digit(b, b), hex_range(0, hr, n - 1)]));
    Expr::Alt(alts)
}

/// Decoded strings that are not in `words`: the trie's prefixes that are not
/// words, or a trie path that leaves the trie followed by anything. A path
/// leaves either with a character that labels no trie edge at all (one shared
/// class after the set of all paths) or with a label that is not a child of
/// that node (a small explicit set per node). Building it this way keeps one
/// copy of the big classes and of the "anything" tail, so the automaton stays
/// about the size of the trie instead of the trie times the UTF-8 class size.
pub(crate) fn complement(words: &[&str]) -> Expr {
    #[derive(Default)]
    struct Node {
        end: bool,
        next: BTreeMap<char, Node>,
    }
    fn lit(c: char) -> Expr {
        let mut buf = [0u8; 4];
        Expr::Literal(c.encode_utf8(&mut buf).as_bytes().to_vec())
    }
    fn class(negated: bool, chars: impl Iterator<Item = char>) -> Expr {
        Expr::Class {
            negated,
            ranges: chars.map(|c| (c as u32, c as u32)).collect(),
        }
    }
    // Trie nodes (as strings) below `n`: all of them, or only the non-words.
    fn nodes(n: &Node, non_words: bool) -> Expr {
        let mut alts = Vec::new();
        if !(non_words && n.end) {
            alts.push(Expr::Empty);
        }
        for (&c, child) in &n.next {
            alts.push(Expr::Seq(vec![lit(c), nodes(child, non_words)]));
        }
        Expr::Alt(alts)
    }
    // A trie path from `n`, then a label of the trie that does not continue it.
    fn local_exits(n: &Node, labels: &BTreeSet<char>) -> Expr {
        let mut alts = Vec::new();
        let others: Vec<char> = labels
            .iter()
            .copied()
            .filter(|c| !n.next.contains_key(c))
            .collect();
        if !others.is_empty() {
            alts.push(class(false, others.into_iter()));
        }
        for (&c, child) in &n.next {
            alts.push(Expr::Seq(vec![lit(c), local_exits(child, labels)]));
        }
        Expr::Alt(alts)
    }
    let mut root = Node::default();
    let mut labels = BTreeSet::new();
    for w in words {
        let mut n = &mut root;
        for c in w.chars() {
            labels.insert(c);
            n = n.next.entry(c).or_default();
        }
        n.end = true;
    }
    let leave = Expr::Alt(vec![
        Expr::Seq(vec![
            nodes(&root, false),
            class(true, labels.iter().copied()),
        ]),
        local_exits(&root, &labels),
    ]);
    Expr::Alt(vec![
        nodes(&root, true),
        Expr::Seq(vec![leave, any_string()]),
    ])
}

/// Why a `pattern` cannot be used.
pub(crate) enum PatternError {
    /// The pattern is valid but uses something not enforced exactly.
    Unsupported(String),
    /// The pattern is malformed.
    Invalid(String),
}

/// The decoded strings in which `pattern` finds a match (`re.search`
/// semantics: unanchored unless the alternative starts with `^` / ends with `$`).
/// A `$` never admits a trailing newline here (ECMA-262 semantics; Python's
/// `$` would also match before a final `\n`), so both readings agree on what
/// is accepted.
pub(crate) fn pattern_expr(pattern: &str) -> Result<Expr, PatternError> {
    // Alternatives grouped by their anchors, so that one `.*` prefix/suffix
    // serves a whole group (a copy per alternative makes the DFA track which
    // alternatives have matched so far: exponential in their number).
    let mut groups: [Vec<Expr>; 4] = Default::default();
    for alt in split_top_level(pattern)? {
        let mut core = alt.as_str();
        let start = core.starts_with('^');
        if start {
            core = &core[1..];
        }
        let end = ends_with_anchor(core);
        if end {
            core = &core[..core.len() - 1];
        }
        if has_anchor(core) {
            return Err(PatternError::Unsupported(
                "an anchor that is not at the start or end of the pattern".to_owned(),
            ));
        }
        let g = super::super::regex::parse_regex(core).map_err(|e| match e.kind() {
            ErrorKind::Syntax => PatternError::Invalid(e.to_string()),
            _ => PatternError::Unsupported(e.message().to_owned()),
        })?;
        let body = g.rules.into_iter().next().map_or(Expr::Empty, |r| r.body);
        groups[usize::from(start) * 2 + usize::from(end)].push(body);
    }
    let mut alts = Vec::new();
    for (i, bodies) in groups.into_iter().enumerate() {
        if bodies.is_empty() {
            continue;
        }
        let (start, end) = (i >= 2, i % 2 == 1);
        let mut seq = Vec::new();
        let mut body = Expr::Alt(bodies);
        if !start {
            seq.push(any_string());
            if written_width(&body).is_some_and(|w| w <= SEARCH_UNROLL) {
                body = unrolled(body);
            }
        }
        seq.push(body);
        if !end {
            seq.push(any_string());
        }
        alts.push(Expr::Seq(seq));
    }
    Ok(Expr::Alt(alts))
}

/// The lengths, in characters, of the strings an expression over decoded
/// characters matches; `min > max` for a language with no string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lengths {
    min: u64,
    /// `None`: unbounded.
    max: Option<u64>,
}

impl Lengths {
    const NONE: Lengths = Lengths {
        min: u64::MAX,
        max: Some(0),
    };
    fn exactly(n: u64) -> Lengths {
        Lengths {
            min: n,
            max: Some(n),
        }
    }
    fn is_empty(self) -> bool {
        self.max.is_some_and(|m| self.min > m)
    }
    fn fixed(self) -> bool {
        self.max == Some(self.min)
    }
    fn within(self, lo: u64, hi: Option<u64>) -> bool {
        self.min >= lo && hi.map_or(true, |h| self.max.is_some_and(|m| m <= h))
    }
    fn disjoint(self, lo: u64, hi: Option<u64>) -> bool {
        self.max.is_some_and(|m| m < lo) || hi.is_some_and(|h| self.min > h)
    }
}

/// `None` for anything but characters, literals, sequences, alternatives and
/// repetitions (formats built from rules or bytes).
fn char_lengths(e: &Expr) -> Option<Lengths> {
    Some(match e {
        Expr::Empty => Lengths::exactly(0),
        Expr::Literal(b) => Lengths::exactly(std::str::from_utf8(b).ok()?.chars().count() as u64),
        Expr::Class { .. } => Lengths::exactly(1),
        Expr::Seq(v) => {
            let mut out = Lengths::exactly(0);
            for x in v {
                let l = char_lengths(x)?;
                if l.is_empty() {
                    return Some(Lengths::NONE);
                }
                out.min = out.min.saturating_add(l.min);
                out.max = out.max.zip(l.max).map(|(a, b)| a.saturating_add(b));
            }
            out
        }
        Expr::Alt(v) => {
            let mut out = Lengths::NONE;
            for x in v {
                let l = char_lengths(x)?;
                if l.is_empty() {
                    continue;
                }
                out.max = if out.is_empty() {
                    l.max
                } else {
                    out.max.zip(l.max).map(|(a, b)| a.max(b))
                };
                out.min = out.min.min(l.min);
            }
            out
        }
        Expr::Repeat { expr, min, max } => {
            let l = char_lengths(expr)?;
            if l.is_empty() || l.max == Some(0) {
                return Some(if *min == 0 || !l.is_empty() {
                    Lengths::exactly(0)
                } else {
                    Lengths::NONE
                });
            }
            Lengths {
                min: l.min.saturating_mul(u64::from(*min)),
                max: max.zip(l.max).map(|(n, m)| m.saturating_mul(u64::from(n))),
            }
        }
        _ => return None,
    })
}

fn is_any_string(e: &Expr) -> bool {
    matches!(e, Expr::Repeat { expr, min: 0, max: None } if **expr == any_char())
}

/// The same language, with sequences flattened and `x{m,n}` next to `.*`
/// cut to `x{m}` (`x{m,n}.* = x{m}.*`: a longer run is part of the `.*`).
/// That leaves one variable part in most unanchored patterns' sequences.
fn absorb(e: &Expr) -> Expr {
    match e {
        Expr::Alt(v) if v.len() == 1 => absorb(&v[0]),
        Expr::Alt(v) => Expr::Alt(v.iter().map(absorb).collect()),
        Expr::Seq(v) => {
            let mut flat = Vec::new();
            for x in v.iter().map(absorb) {
                match x {
                    Expr::Seq(inner) => flat.extend(inner),
                    Expr::Empty => {}
                    x => flat.push(x),
                }
            }
            flat.dedup_by(|b, a| is_any_string(a) && is_any_string(b));
            for i in 0..flat.len() {
                // `.*` itself stays: it is what absorbs.
                let beside = !is_any_string(&flat[i])
                    && ((i > 0 && is_any_string(&flat[i - 1]))
                        || flat.get(i + 1).is_some_and(is_any_string));
                if let Expr::Repeat { min, max, .. } = &mut flat[i] {
                    if beside {
                        *max = Some(*min);
                    }
                }
            }
            flat.retain(|x| !matches!(x, Expr::Repeat { max: Some(0), .. }));
            match flat.len() {
                0 => Expr::Empty,
                1 => flat.pop().unwrap_or(Expr::Empty),
                _ => Expr::Seq(flat),
            }
        }
        Expr::Repeat { expr, min, max } => Expr::Repeat {
            expr: Box::new(absorb(expr)),
            min: *min,
            max: *max,
        },
        x => x.clone(),
    }
}

/// A class's normalised ranges and its repetition bounds.
type ClassRun = (Vec<(u32, u32)>, u32, Option<u32>);

/// `C{m,n}` (or a lone class; a one-character literal is a class): the
/// class's normalised ranges and the bounds.
fn class_run(decoded: &Expr) -> Option<ClassRun> {
    let (item, min, max) = match absorb(decoded) {
        Expr::Repeat { expr, min, max } => (*expr, min, max),
        one => (one, 1, Some(1)),
    };
    match item {
        Expr::Class { negated, ranges } => Some((normalise(negated, &ranges), min, max)),
        Expr::Literal(b) => {
            let mut chars = std::str::from_utf8(&b).ok()?.chars();
            let c = chars.next()? as u32;
            chars.next().is_none().then(|| vec![(c, c)])
        }
        .map(|r| (r, min, max)),
        _ => None,
    }
}

/// A run of one class, `C{m,n}` (see [`complement_expr`]), without the
/// strings in `words`, keeping its counter: the trie of the words that are
/// runs, left at any node by a class character that is not a child, into a
/// free run of the remaining length. `None` for other shapes.
pub(crate) fn run_without(decoded: &Expr, words: &[&str]) -> Option<Expr> {
    #[derive(Default)]
    struct Node {
        end: bool,
        next: BTreeMap<char, Node>,
    }
    let (class, min, max) = class_run(decoded)?;
    let in_class = |c: char| {
        class
            .iter()
            .any(|&(lo, hi)| lo <= c as u32 && c as u32 <= hi)
    };
    let mut root = Node::default();
    for w in words {
        let n = w.chars().count();
        let fits = n >= min as usize && max.map_or(true, |m| n <= m as usize);
        if fits && w.chars().all(in_class) {
            let mut at = &mut root;
            for c in w.chars() {
                at = at.next.entry(c).or_default();
            }
            at.end = true;
        }
    }
    fn node(t: &Node, depth: u32, class: &[(u32, u32)], min: u32, max: Option<u32>) -> Expr {
        let mut alts = Vec::new();
        if depth >= min && !t.end {
            alts.push(Expr::Empty);
        }
        if max.map_or(true, |m| depth < m) {
            let mut rest = class.to_vec();
            for (&c, child) in &t.next {
                rest = subtract(&rest, c as u32, c as u32);
                let mut buf = [0u8; 4];
                alts.push(Expr::Seq(vec![
                    Expr::Literal(c.encode_utf8(&mut buf).as_bytes().to_vec()),
                    node(child, depth + 1, class, min, max),
                ]));
            }
            if !rest.is_empty() {
                alts.push(Expr::Seq(vec![
                    Expr::Class {
                        negated: false,
                        ranges: rest,
                    },
                    Expr::Repeat {
                        expr: Box::new(Expr::Class {
                            negated: false,
                            ranges: class.to_vec(),
                        }),
                        min: min.saturating_sub(depth + 1),
                        max: max.map(|m| m - depth - 1),
                    },
                ]));
            }
        }
        Expr::Alt(alts)
    }
    Some(node(&root, 0, &class, min, max))
}

/// The complement of `decoded` as an expression, for the one shape where it
/// is short and keeps its counter: a run of one class, `C{m,n}` (a key
/// pattern like `^[0-9a-zA-Z_-]{1,255}$`). A string is outside it iff it
/// holds a character outside `C` or is a run of `C` of another length:
/// `.*[^C].*|C{0,m-1}|C{n+1,}`. `None` for other shapes (a DFA complements
/// those, see `chardfa`).
pub(crate) fn complement_expr(decoded: &Expr) -> Option<Expr> {
    let (class, min, max) = class_run(decoded)?;
    let other = Expr::Class {
        negated: true,
        ranges: class.clone(),
    };
    let class = Expr::Class {
        negated: false,
        ranges: class,
    };
    let run = |min: u32, max: Option<u32>| Expr::Repeat {
        expr: Box::new(class.clone()),
        min,
        max,
    };
    let mut alts = vec![Expr::Seq(vec![any_string(), other, any_string()])];
    if min > 0 {
        alts.push(run(0, Some(min - 1)));
    }
    if let Some(m) = max {
        alts.push(run(m.checked_add(1)?, None));
    }
    Some(Expr::Alt(alts))
}

/// `decoded` restricted to strings of `lo..=hi` characters (`minLength` /
/// `maxLength` together with a `pattern` or `format`), as an expression of
/// the same kind, or `None` where this takes more than splitting the bounds
/// over the expression's parts. Exact where it answers: the bounds are
/// pushed into alternatives, into the one part of a sequence whose length
/// varies (or into every part, where the bounds leave each a single length),
/// and into the count of a repetition whose item has a single length.
pub(crate) fn with_length(decoded: &Expr, lo: u64, hi: Option<u64>) -> Option<Expr> {
    restrict(&absorb(decoded), lo, hi)
}

fn restrict(e: &Expr, lo: u64, hi: Option<u64>) -> Option<Expr> {
    let l = char_lengths(e)?;
    if l.is_empty() || l.within(lo, hi) {
        return Some(e.clone());
    }
    if l.disjoint(lo, hi) {
        return Some(nothing());
    }
    match e {
        Expr::Alt(v) => Some(Expr::Alt(
            v.iter()
                .map(|x| restrict(x, lo, hi))
                .collect::<Option<_>>()?,
        )),
        Expr::Seq(v) => {
            let ls: Vec<Lengths> = v.iter().map(char_lengths).collect::<Option<_>>()?;
            let varying: Vec<usize> = (0..v.len()).filter(|&i| !ls[i].fixed()).collect();
            let fixed: u64 = ls.iter().filter(|x| x.fixed()).map(|x| x.min).sum();
            let mut out = v.clone();
            if let [i] = varying[..] {
                // `hi >= l.min >= fixed`, or the range would be disjoint.
                out[i] = restrict(&v[i], lo.saturating_sub(fixed), hi.map(|h| h - fixed))?;
            } else if hi == Some(l.min) {
                for &i in &varying {
                    out[i] = restrict(&v[i], ls[i].min, Some(ls[i].min))?;
                }
            } else if l.max == Some(lo) {
                for &i in &varying {
                    let m = ls[i].max?;
                    out[i] = restrict(&v[i], m, Some(m))?;
                }
            } else {
                return None;
            }
            Some(Expr::Seq(out))
        }
        Expr::Repeat { expr, min, max } => {
            let item = char_lengths(expr)?;
            if item.fixed() && item.min > 0 {
                let k = item.min;
                let from = u64::from(*min).max(lo.div_ceil(k));
                let to = match (max, hi) {
                    (Some(m), Some(h)) => Some(u64::from(*m).min(h / k)),
                    (Some(m), None) => Some(u64::from(*m)),
                    (None, Some(h)) => Some(h / k),
                    (None, None) => None,
                };
                if to.is_some_and(|t| from > t) {
                    return Some(nothing());
                }
                return Some(Expr::Repeat {
                    expr: expr.clone(),
                    min: u32::try_from(from).ok()?,
                    max: match to {
                        Some(t) => Some(u32::try_from(t).ok()?),
                        None => None,
                    },
                });
            }
            if *max == Some(1) {
                let mut alts = vec![(**expr).clone()];
                if *min == 0 {
                    alts.insert(0, Expr::Empty);
                }
                return restrict(&Expr::Alt(alts), lo, hi);
            }
            None
        }
        _ => None,
    }
}

/// Splits at `|` outside groups and classes.
fn split_top_level(p: &str) -> Result<Vec<String>, PatternError> {
    let mut out = vec![String::new()];
    let mut depth = 0i32;
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let cur = out
                    .last_mut()
                    .ok_or_else(|| PatternError::Invalid(p.to_owned()))?;
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '[' => {
                let cur = out
                    .last_mut()
                    .ok_or_else(|| PatternError::Invalid(p.to_owned()))?;
                cur.push(c);
                // `]` right after `[` or `[^` is a literal.
                let mut first = true;
                if chars.peek() == Some(&'^') {
                    cur.push('^');
                    chars.next();
                }
                while let Some(n) = chars.next() {
                    cur.push(n);
                    if n == '\\' {
                        if let Some(m) = chars.next() {
                            cur.push(m);
                        }
                    } else if n == ']' && !first {
                        break;
                    }
                    first = false;
                }
                continue;
            }
            '(' => depth += 1,
            ')' => depth -= 1,
            '|' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(cur) = out.last_mut() {
            cur.push(c);
        }
    }
    Ok(out)
}

fn ends_with_anchor(s: &str) -> bool {
    if !s.ends_with('$') {
        return false;
    }
    let backslashes = s[..s.len() - 1]
        .chars()
        .rev()
        .take_while(|&c| c == '\\')
        .count();
    backslashes % 2 == 0
}

/// `^`, `$`, `\A`, `\Z`, `\z` outside a class.
fn has_anchor(s: &str) -> bool {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if matches!(chars.next(), Some('A' | 'Z' | 'z')) {
                    return true;
                }
            }
            '[' => {
                let mut first = true;
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                while let Some(n) = chars.next() {
                    if n == '\\' {
                        chars.next();
                    } else if n == ']' && !first {
                        break;
                    }
                    first = false;
                }
            }
            '^' | '$' => return true,
            _ => {}
        }
    }
    false
}

/// A grammar of one rule, `expr`.
fn one_rule(expr: &Expr) -> Grammar {
    Grammar {
        rules: vec![Rule {
            name: "root".to_owned(),
            body: expr.clone(),
            span: None,
        }],
        root: 0,
    }
}

/// Does `expr` (over decoded characters or bytes) match all of `text`?
pub(crate) fn matches(expr: &Expr, text: &str) -> Result<bool> {
    static VOCAB: OnceLock<Vocabulary> = OnceLock::new();
    let vocab = VOCAB.get_or_init(Vocabulary::byte_level);
    let a = match Automaton::build_owned(one_rule(expr), vocab, &Limits::default(), None) {
        Ok(a) => a,
        // A language with no string at all matches nothing.
        Err(e) if e.kind() == ErrorKind::Grammar => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut p = Parser::new(&a);
    for &b in text.as_bytes() {
        if !p.push_byte(&a, b) {
            return Ok(false);
        }
    }
    Ok(p.can_accept(&a))
}

/// Every string over `alphabet` of at most `max_len` letters, shortest first.
#[cfg(test)]
pub(crate) fn all_strings(alphabet: &[&str], max_len: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut layer = vec![String::new()];
    for _ in 0..max_len {
        layer = layer
            .iter()
            .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
            .collect();
        all.extend(layer.iter().cloned());
    }
    all
}

/// A recogniser for `expr` (as [`matches`]), built once for many texts.
#[cfg(test)]
pub(crate) fn recogniser(expr: &Expr) -> impl Fn(&str) -> bool {
    let vocab = Vocabulary::byte_level();
    let a = Automaton::build_owned(one_rule(expr), &vocab, &Limits::default(), None).ok();
    move |text: &str| {
        let Some(a) = &a else { return false };
        let mut p = Parser::new(a);
        text.bytes().all(|b| p.push_byte(a, b)) && p.can_accept(a)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn spelled_matches(decoded: &Expr, json_content: &str) -> bool {
        matches(&spell(decoded).expect("spell"), json_content).expect("match")
    }

    #[test]
    fn spelling_covers_escapes_and_pairs() {
        let any = any_char();
        for s in [
            "a",
            "\\\"",
            "\\/",
            "\\u00e9",
            "\\u00E9",
            "é",
            "\\ud83d\\ude00",
            "😀",
            "\\n",
        ] {
            assert!(spelled_matches(&any, s), "{s}");
        }
        for s in ["\"", "\\", "\\ud83d", "\\ude00", "\n", "\\x", "\\u12"] {
            assert!(!spelled_matches(&any, s), "{s}");
        }
    }

    #[test]
    fn spelled_class_is_exact_on_hex_ranges() {
        let class = Expr::Class {
            negated: false,
            ranges: vec![(0x41, 0x5A), (0x1F600, 0x1F64F)],
        };
        for cp in 0u32..0x200 {
            let want = (0x41..=0x5A).contains(&cp);
            assert_eq!(
                spelled_matches(&class, &format!("\\u{cp:04x}")),
                want,
                "{cp:x}"
            );
            assert_eq!(
                spelled_matches(&class, &format!("\\u{cp:04X}")),
                want,
                "{cp:X}"
            );
        }
        for cp in [0x1F5FF, 0x1F600, 0x1F620, 0x1F64F, 0x1F650] {
            let (h, l) = pair(cp);
            let want = (0x1F600..=0x1F64F).contains(&cp);
            assert_eq!(
                spelled_matches(&class, &format!("\\u{h:04x}\\u{l:04x}")),
                want
            );
        }
    }

    #[test]
    fn complement_excludes_exactly_the_words() {
        let c = spell(&complement(&["ab", "a", "b\"c"])).expect("spell");
        for (s, want) in [
            ("", true),
            ("a", false),
            ("\\u0061", false),
            ("ab", false),
            ("abc", true),
            ("b", true),
            ("b\\\"c", false),
            ("b\\u0022c", false),
            ("x", true),
        ] {
            assert_eq!(matches(&c, s).expect("match"), want, "{s}");
        }
    }

    #[test]
    fn complement_handles_labels_shared_across_nodes() {
        // `a` labels an edge at the root and below `é`; `é` labels one at the root.
        let words = ["é", "éa", "ab", "b"];
        let c = spell(&complement(&words)).expect("spell");
        for s in [
            "", "a", "aa", "aé", "ébb", "éaa", "ê", "ba", "bé", "abc", "x", "\\\\",
        ] {
            assert!(matches(&c, s).expect("match"), "{s} is not a word");
        }
        for s in ["é", "\\u00e9", "éa", "ab", "b", "\\u0062"] {
            assert!(!matches(&c, s).expect("match"), "{s} is a word");
        }
    }

    #[test]
    fn literals_take_serialiser_spellings_only() {
        let e = spell_literal("aé\"\n😀");
        for s in [
            "aé\\\"\\n😀",
            "a\\u00e9\\\"\\n\\ud83d\\ude00",
            "a\\u00E9\\u0022\\u000a😀",
        ] {
            assert!(matches(&e, s).expect("match"), "{s}");
        }
        for s in ["\\u0061é\\\"\\n😀", "aé\"\\n😀", "aé\\\"\n😀"] {
            assert!(!matches(&e, s).expect("match"), "{s}");
        }
    }

    #[test]
    fn complement_has_one_star_and_is_exact() {
        let words = ["ab", "a", "b\"c", "abd", "xy"];
        let one = complement(&words);
        let count = |e: &Expr| format!("{e:?}").matches("max: None").count();
        assert_eq!(count(&one), 1, "{one:?}");
        let mut texts = all_strings(&["a", "b", "c", "d", "x", "y", "\""], 3);
        texts.extend(["abdd", "abda", "xyz", "b\"cd", "aaaaa"].map(str::to_owned));
        for t in &texts {
            let want = !words.contains(&t.as_str());
            assert_eq!(matches(&one, t).expect("match"), want, "{t:?}");
        }
        let none = complement(&[]);
        assert!(matches(&none, "").expect("match") && matches(&none, "ab").expect("match"));
        let empty = complement(&[""]);
        assert!(matches(&empty, "a").expect("match") && !matches(&empty, "").expect("match"));
    }

    /// Does `e` hold a bounded repetition (a counter, unless written out)?
    pub(crate) fn counts(e: &Expr) -> bool {
        match e {
            Expr::Repeat { max: Some(_), .. } => true,
            Expr::Repeat { expr, .. } => counts(expr),
            Expr::Seq(v) | Expr::Alt(v) => v.iter().any(counts),
            _ => false,
        }
    }

    /// Unanchored ASCII patterns are written out (no counter behind `.*`);
    /// anchored and non-ASCII ones keep their counters; all match alike.
    #[test]
    fn searches_are_written_out() {
        let p = |s: &str| pattern_expr(s).ok().expect("pattern");
        let e = p("[0-9a-f]{40}");
        assert!(!counts(&e));
        assert!(counts(&p("^[0-9a-f]{40}$")));
        assert!(counts(&p(r"\d{5}")));
        assert!(counts(&p(&format!("[0-9a-f]{{{}}}", SEARCH_UNROLL + 1))));
        let hex = "0123456789abcdef0123456789abcdef01234567";
        assert!(matches(&e, &format!("x{hex}y")).expect("match"));
        assert!(!matches(&e, &format!("x{}y", &hex[1..])).expect("match"));
        assert!(!matches(&e, &format!("{}g{}", &hex[..20], &hex[20..])).expect("match"));
    }

    #[test]
    fn patterns_search_unless_anchored() {
        let check = |p: &str, s: &str| {
            let e = pattern_expr(p).ok().expect("pattern");
            matches(&e, s).expect("match")
        };
        assert!(check("b", "abc"));
        assert!(!check("^b", "abc"));
        assert!(check("^a", "abc"));
        assert!(!check("c$", "abcd"));
        assert!(check("x|c$", "abc"));
        assert!(check("^x|c", "zcz"));
        assert!(check("[$^]", "a$"));
        assert!(check("a\\$", "za$z"));
        assert!(pattern_expr("a(?:^b)").is_err());
        assert!(pattern_expr("(?=a)").is_err());
    }

    #[test]
    fn lengths_split_over_patterns_exactly() {
        let mut next = crate::xorshift(0x9E37_79B9_7F4A_7C15);
        let mut below = |n: u64| next() % n;
        // Random patterns over `a`, `b`, `c`.
        fn pattern(below: &mut dyn FnMut(u64) -> u64, depth: u32) -> String {
            let atom = |below: &mut dyn FnMut(u64) -> u64| -> String {
                ["a", "b", "[ab]", "[^a]", "c", "ab", "(ab)", "(cab)"][below(8) as usize].to_owned()
            };
            let mut out = String::new();
            for _ in 0..=below(3) {
                let x = if depth > 0 && below(3) == 0 {
                    format!(
                        "({}|{})",
                        pattern(below, depth - 1),
                        pattern(below, depth - 1)
                    )
                } else {
                    atom(below)
                };
                let q = ["", "", "*", "+", "?", "{2}", "{1,3}", "{0,2}", "{2,}"][below(9) as usize];
                out.push_str(&x);
                out.push_str(q);
            }
            out
        }
        let texts = all_strings(&["a", "b", "c"], 6);
        let (mut answered, mut refused) = (0, 0);
        for _ in 0..400 {
            let mut p = pattern(&mut below, 2);
            if below(2) == 0 {
                p = format!("^{p}");
            }
            if below(2) == 0 {
                p.push('$');
            }
            let lo = below(5);
            let hi = (below(3) > 0).then(|| lo + below(4));
            let e = pattern_expr(&p).ok().expect("pattern");
            let Some(r) = with_length(&e, lo, hi) else {
                refused += 1;
                continue;
            };
            answered += 1;
            let (want, got) = (recogniser(&e), recogniser(&r));
            for t in &texts {
                let n = t.chars().count() as u64;
                let fits = n >= lo && hi.map_or(true, |h| n <= h);
                assert_eq!(got(t), fits && want(t), "{p} {{{lo},{hi:?}}} on {t:?}");
            }
        }
        assert!(
            answered > 200 && refused > 10,
            "{answered} answered, {refused} refused"
        );
    }

    #[test]
    fn class_runs_complemented_and_without_words() {
        let texts = all_strings(&["a", "b", "c", "é"], 5);
        let words = ["ab", "a", "", "bbb", "abcab", "ca", "é"];
        let mut shaped = 0;
        for p in [
            "^[ab]{1,3}$",
            "^[^a]$",
            "^c*$",
            "^[ab]+$",
            "^[abé]{2,}$",
            "^[a-c]{0,4}$",
            "^(ab)+$",
            "^a|b$",
        ] {
            let e = pattern_expr(p).ok().expect("pattern");
            let want = recogniser(&e);
            let (Some(not), Some(without)) = (complement_expr(&e), run_without(&e, &words)) else {
                assert!(p.contains('(') || p.contains('|'), "{p} is a class run");
                continue;
            };
            shaped += 1;
            let (not, without) = (recogniser(&not), recogniser(&without));
            for t in &texts {
                assert_eq!(not(t), !want(t), "not {p} on {t:?}");
                assert_eq!(
                    without(t),
                    want(t) && !words.contains(&t.as_str()),
                    "{p} without words on {t:?}"
                );
            }
        }
        assert_eq!(shaped, 6);
    }
}
