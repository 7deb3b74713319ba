//! Regular expressions (the syntax of Python's `re`, plus the ECMAScript
//! spellings JSON Schema `pattern`s use) compiled into the grammar IR.
//!
//! The grammar has one rule, `root`, that matches exactly the strings
//! `re.fullmatch(pattern, s)` accepts for a `str` pattern without flags:
//!
//! - literals, `.` (any character except `\n`), classes `[...]` / `[^...]`
//!   with ranges and escapes, groups `(...)`, `(?:...)`, `(?P<n>...)`,
//!   `(?<n>...)`, comments `(?#...)`, alternation, and the quantifiers
//!   `* + ? {m} {m,} {,n} {m,n}` with their lazy forms (same language);
//!   a `{` that does not start a valid quantifier is a literal, as in Python;
//! - escapes `\n \t \r \f \v \a \0 \ooo \xHH \uHHHH \UHHHHHHHH`, the ECMAScript
//!   `\u{H...}` and surrogate pairs `\uD83D\uDE00`, `\p{...}` / `\P{...}`
//!   (Unicode properties, ECMAScript), and any escaped non-alphanumeric
//!   character;
//! - `\d \w \s` with Python's Unicode meaning for `str` patterns: `\d` is
//!   general category Nd, `\w` is categories L* and N* plus `_` (Python's
//!   `str.isalnum()` or `_`), `\s` is Python's `str.isspace()` set (which,
//!   unlike Unicode `White_Space`, includes U+001C..U+001F). Tables are those
//!   of the `regex-syntax` crate (its Unicode version may be newer than a given
//!   Python's, which matters only for characters assigned in between);
//! - anchors `^ \A` where nothing can precede them and `$ \Z \z` where nothing
//!   can follow them (elsewhere they are an error, not silently dropped).
//!
//! Lookarounds, backreferences, word boundaries, atomic groups, possessive
//! quantifiers, conditionals, inline flags and `\N{...}` raise an error
//! ([`ErrorKind::Grammar`]) that points at them; malformed patterns raise
//! [`ErrorKind::Syntax`]. Columns count characters of the pattern.

use super::ebnf::MAX_NESTING;
use super::{Expr, Grammar, Rule};
use crate::error::{Error, ErrorKind, Result, Span};
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, HirKind};
use std::sync::OnceLock;

/// Python's `MAXREPEAT`: repetition counts must be below it.
const MAX_REPEAT: u64 = u32::MAX as u64;

/// Compile a regular expression into a one-rule grammar (rule `root`) that
/// matches exactly the strings the pattern fully matches.
///
/// ```
/// let g = corral_core::grammar::regex::parse_regex(r"^[a-z]+\d{2,4}$")?;
/// assert_eq!(g.rules[0].name, "root");
/// assert!(corral_core::grammar::regex::parse_regex(r"a(?=b)").is_err());
/// # Ok::<(), corral_core::Error>(())
/// ```
pub fn parse_regex(pattern: &str) -> Result<Grammar> {
    let mut p = Parser {
        src: pattern,
        chars: pattern.chars().collect(),
        pos: 0,
    };
    let node = p.parse_alt(0)?;
    if p.pos < p.chars.len() {
        // Only an unmatched `)` stops the top-level alternation early.
        return Err(p.syntax("unbalanced parenthesis", p.pos, 1));
    }
    let body = p.lower(&node, true, true)?;
    Ok(Grammar {
        rules: vec![Rule {
            name: "root".to_owned(),
            body,
            span: None,
        }],
        root: 0,
    })
}

/// The parsed pattern, before anchors are checked and literals merged.
#[derive(Clone, Debug)]
enum Node {
    Empty,
    Char(char),
    Class(ClassUnicode),
    /// `^` / `\A` at this character index.
    Start(usize),
    /// `$` / `\Z` / `\z` at this character index.
    End(usize),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

impl Node {
    /// Matches only the empty string (anchors, empty groups, ...).
    fn only_empty(&self) -> bool {
        match self {
            Node::Empty | Node::Start(_) | Node::End(_) => true,
            Node::Char(_) | Node::Class(_) => false,
            Node::Concat(v) | Node::Alt(v) => v.iter().all(Node::only_empty),
            Node::Repeat { node, .. } => node.only_empty(),
        }
    }

    fn is_anchor(&self) -> bool {
        matches!(self, Node::Start(_) | Node::End(_))
    }
}

/// One element of a character class: a single character (may be a range
/// endpoint) or a set such as `\d`.
enum ClassItem {
    Char(char),
    Set(ClassUnicode),
}

struct Parser<'a> {
    src: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl Parser<'_> {
    // ------------------------------------------------------------------
    // errors
    // ------------------------------------------------------------------

    fn span(&self, at: usize, width: usize) -> Span {
        let at = at.min(self.chars.len());
        let line_start = self.chars[..at]
            .iter()
            .rposition(|&c| c == '\n')
            .map_or(0, |i| i + 1);
        let line = 1 + self.chars[..at].iter().filter(|&&c| c == '\n').count();
        Span {
            line: line as u32,
            column: (at - line_start + 1) as u32,
            width: width.max(1) as u32,
        }
    }

    /// A malformed pattern.
    fn syntax(&self, msg: impl Into<String>, at: usize, width: usize) -> Error {
        Error::at(ErrorKind::Syntax, msg, self.span(at, width), self.src)
    }

    /// A well-formed construct corral cannot enforce.
    fn unsupported(&self, msg: impl Into<String>, at: usize, width: usize) -> Error {
        Error::at(ErrorKind::Grammar, msg, self.span(at, width), self.src)
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars[from..to.min(self.chars.len())].iter().collect()
    }

    // ------------------------------------------------------------------
    // structure
    // ------------------------------------------------------------------

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `concat ("|" concat)*`, stopping before `)` or the end.
    fn parse_alt(&mut self, depth: u32) -> Result<Node> {
        let mut alts = vec![self.parse_concat(depth)?];
        while self.eat('|') {
            alts.push(self.parse_concat(depth)?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn parse_concat(&mut self, depth: u32) -> Result<Node> {
        let mut items: Vec<Node> = Vec::new();
        // Whether the last item is a repetition (another quantifier is an error).
        let mut repeated = false;
        while let Some(c) = self.peek() {
            let start = self.pos;
            let quant = match c {
                '|' | ')' => break,
                '*' => Some((0, None)),
                '+' => Some((1, None)),
                '?' => Some((0, Some(1))),
                '{' => self.brace_quantifier()?,
                _ => None,
            };
            let Some((min, max)) = quant else {
                if c == '{' {
                    // Not a quantifier: a literal brace, as in Python.
                    self.pos += 1;
                    items.push(Node::Char('{'));
                } else if let Some(item) = self.parse_atom(depth)? {
                    items.push(item);
                } else {
                    continue; // a comment: leaves the previous item in place
                }
                repeated = false;
                continue;
            };
            if c != '{' {
                self.pos += 1;
            }
            let width = self.pos - start;
            match items.last() {
                None => return Err(self.syntax("nothing to repeat", start, width)),
                Some(n) if n.is_anchor() => {
                    return Err(self.syntax("nothing to repeat (an anchor)", start, width))
                }
                Some(_) if repeated => return Err(self.syntax("multiple repeat", start, width)),
                Some(_) => {}
            }
            if self.peek() == Some('+') {
                return Err(self.unsupported(
                    "possessive quantifiers are not supported",
                    start,
                    self.pos + 1 - start,
                ));
            }
            self.eat('?'); // lazy: the same language
            let node = items.pop().unwrap_or(Node::Empty);
            items.push(Node::Repeat {
                node: Box::new(node),
                min,
                max,
            });
            repeated = true;
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Node::Empty)
        } else if items.is_empty() {
            Node::Empty
        } else {
            Node::Concat(items)
        })
    }

    /// At `{`: a quantifier `{m}`, `{m,}`, `{,n}`, `{m,n}` or `{,}` (consumed),
    /// or `None` (nothing consumed) if the text is not one.
    fn brace_quantifier(&mut self) -> Result<Option<(u32, Option<u32>)>> {
        let start = self.pos;
        let mut i = start + 1;
        let digits = |i: &mut usize, chars: &[char]| {
            let from = *i;
            while chars.get(*i).is_some_and(char::is_ascii_digit) {
                *i += 1;
            }
            (from, *i)
        };
        let lo = digits(&mut i, &self.chars);
        let hi = if self.chars.get(i) == Some(&',') {
            i += 1;
            Some(digits(&mut i, &self.chars))
        } else {
            None
        };
        if self.chars.get(i) != Some(&'}') || i == start + 1 {
            return Ok(None);
        }
        let number = |(a, b): (usize, usize)| -> Result<Option<u32>> {
            if a == b {
                return Ok(None);
            }
            let mut v: u64 = 0;
            for &d in &self.chars[a..b] {
                v = v
                    .saturating_mul(10)
                    .saturating_add(u64::from(d as u8 - b'0'));
            }
            if v >= MAX_REPEAT {
                return Err(self.syntax("the repetition number is too large", a, b - a));
            }
            Ok(Some(v as u32))
        };
        let min = number(lo)?;
        let max = match hi {
            None => min,
            Some(h) => number(h)?,
        };
        let min = min.unwrap_or(0);
        if max.is_some_and(|m| m < min) {
            return Err(self.syntax("min repeat greater than max repeat", start, i + 1 - start));
        }
        self.pos = i + 1;
        Ok(Some((min, max)))
    }

    /// One atom; `None` for a comment `(?#...)`.
    fn parse_atom(&mut self, depth: u32) -> Result<Option<Node>> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Some(Node::Empty));
        };
        self.pos += 1;
        Ok(Some(match c {
            '(' => return self.parse_group(start, depth),
            '[' => Node::Class(self.parse_class(start)?),
            '.' => Node::Class(dot_class()),
            '^' => Node::Start(start),
            '$' => Node::End(start),
            '\\' => self.parse_escape(start)?,
            c => Node::Char(c),
        }))
    }

    /// After `(` at `start`.
    fn parse_group(&mut self, start: usize, depth: u32) -> Result<Option<Node>> {
        if self.eat('?') {
            let ext = self.peek();
            match ext {
                Some(':') => self.pos += 1,
                Some('#') => {
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == ')' {
                            return Ok(None);
                        }
                    }
                    return Err(self.syntax("missing ), unterminated comment", start, 2));
                }
                Some('=') | Some('!') => {
                    return Err(self.unsupported(
                        "lookahead assertions are not supported",
                        start,
                        3,
                    ))
                }
                Some('<') if matches!(self.peek_at(1), Some('=') | Some('!')) => {
                    return Err(self.unsupported(
                        "lookbehind assertions are not supported",
                        start,
                        4,
                    ))
                }
                Some('<') => {
                    self.pos += 1;
                    self.group_name(start, '>')?;
                }
                Some('P') => match self.peek_at(1) {
                    Some('<') => {
                        self.pos += 2;
                        self.group_name(start, '>')?;
                    }
                    Some('=') => {
                        self.pos += 2;
                        self.group_name(start, ')')?;
                        return Err(self.unsupported(
                            "backreferences are not supported",
                            start,
                            self.pos - start,
                        ));
                    }
                    _ => {
                        return Err(self.syntax(
                            format!("unknown extension {}", self.text(start + 1, start + 4)),
                            start,
                            3,
                        ))
                    }
                },
                Some('>') => {
                    return Err(self.unsupported("atomic groups are not supported", start, 3))
                }
                Some('(') => {
                    return Err(self.unsupported("conditional groups are not supported", start, 3))
                }
                Some(c) if "aiLmsux-".contains(c) => {
                    return Err(self.unsupported(
                        "inline flags such as (?i) are not supported",
                        start,
                        3,
                    ))
                }
                _ => {
                    return Err(self.syntax(
                        format!("unknown extension {}", self.text(start + 1, start + 3)),
                        start,
                        3,
                    ))
                }
            }
        }
        let depth = depth + 2; // a group plus the repetition that may wrap it
        if depth > MAX_NESTING {
            return Err(Error::at(
                ErrorKind::Limit,
                format!(
                    "groups are nested {} deep, more than the limit of {}",
                    depth / 2,
                    MAX_NESTING / 2
                ),
                self.span(start, 1),
                self.src,
            ));
        }
        let inner = self.parse_alt(depth)?;
        if !self.eat(')') {
            return Err(self.syntax("missing ), unterminated subpattern", start, 1));
        }
        Ok(Some(inner))
    }

    /// A group name up to `close` (consumed); must be an identifier.
    fn group_name(&mut self, start: usize, close: char) -> Result<()> {
        let from = self.pos;
        while self.peek().is_some_and(|c| c != close) {
            self.pos += 1;
        }
        if self.peek() != Some(close) {
            return Err(self.syntax(format!("missing {close}, unterminated name"), start, 1));
        }
        let name = self.text(from, self.pos);
        let mut cs = name.chars();
        let ok = cs.next().is_some_and(|c| c == '_' || c.is_alphabetic())
            && cs.all(|c| c == '_' || c.is_alphanumeric());
        if !ok {
            return Err(self.syntax(
                format!("bad character in group name {name:?}"),
                from,
                self.pos - from,
            ));
        }
        self.pos += 1;
        Ok(())
    }

    // ------------------------------------------------------------------
    // escapes and classes
    // ------------------------------------------------------------------

    /// `n` hex digits (exactly), as a code point.
    fn hex(&mut self, start: usize, n: usize) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    self.pos += 1;
                }
                None => {
                    return Err(self.syntax(
                        format!("incomplete escape {}", self.text(start, self.pos)),
                        start,
                        self.pos - start,
                    ))
                }
            }
        }
        Ok(v)
    }

    /// Escapes that mean one code point, shared by classes and the top level.
    /// `c` (already consumed) is the character after the backslash at `start`.
    /// Returns `None` if `c` is not such an escape.
    fn code_point_escape(&mut self, start: usize, c: char) -> Result<Option<u32>> {
        Ok(Some(match c {
            'n' => 0x0A,
            't' => 0x09,
            'r' => 0x0D,
            'f' => 0x0C,
            'v' => 0x0B,
            'a' => 0x07,
            'x' => self.hex(start, 2)?,
            'u' if self.peek() == Some('{') => {
                self.pos += 1;
                let from = self.pos;
                let mut v: u32 = 0;
                while let Some(d) = self.peek().and_then(|c| c.to_digit(16)) {
                    v = v.saturating_mul(16).saturating_add(d);
                    self.pos += 1;
                }
                if self.pos == from || !self.eat('}') || v > 0x10FFFF {
                    return Err(self.syntax(
                        "bad escape \\u{...}: expected 1 to 6 hex digits up to 10FFFF",
                        start,
                        self.pos - start,
                    ));
                }
                v
            }
            'u' => {
                let v = self.hex(start, 4)?;
                // A surrogate pair spelled as two escapes (ECMAScript) is one character.
                if (0xD800..0xDC00).contains(&v)
                    && self.peek() == Some('\\')
                    && self.peek_at(1) == Some('u')
                {
                    let save = self.pos;
                    self.pos += 2;
                    match self.hex(start, 4) {
                        Ok(lo) if (0xDC00..0xE000).contains(&lo) => {
                            return Ok(Some(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)));
                        }
                        _ => self.pos = save,
                    }
                }
                v
            }
            'U' => {
                let v = self.hex(start, 8)?;
                if v > 0x10FFFF {
                    return Err(self.syntax(
                        format!("bad escape {}", self.text(start, self.pos)),
                        start,
                        self.pos - start,
                    ));
                }
                v
            }
            'N' => {
                return Err(self.unsupported(
                    "named character escapes \\N{...} are not supported",
                    start,
                    2,
                ))
            }
            _ => return Ok(None),
        }))
    }

    /// Up to `n` more octal digits after a first digit `first`.
    fn octal(&mut self, start: usize, first: u32, n: usize) -> Result<u32> {
        let mut v = first;
        for _ in 0..n {
            match self.peek().and_then(|c| c.to_digit(8)) {
                Some(d) => {
                    v = v * 8 + d;
                    self.pos += 1;
                }
                None => break,
            }
        }
        if v > 0o377 {
            return Err(self.syntax(
                format!(
                    "octal escape value {} outside of range 0-0o377",
                    self.text(start, self.pos)
                ),
                start,
                self.pos - start,
            ));
        }
        Ok(v)
    }

    /// `\p{...}` / `\P{...}` after the `p`/`P` at `self.pos - 1`.
    fn property(&mut self, start: usize, negated: bool) -> Result<ClassUnicode> {
        if !self.eat('{') {
            return Err(self.syntax("bad escape: expected \\p{...}", start, 2));
        }
        let from = self.pos;
        while self.peek().is_some_and(|c| c != '}') {
            self.pos += 1;
        }
        if !self.eat('}') {
            return Err(self.syntax("missing }, unterminated \\p{...}", start, 2));
        }
        let name = self.text(from, self.pos - 1);
        let class = if name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_=- .".contains(c))
        {
            unicode_class(&format!("\\p{{{name}}}"))
        } else {
            None
        };
        let Some(mut class) = class else {
            return Err(self.syntax(
                format!("unknown Unicode property {name:?}"),
                start,
                self.pos - start,
            ));
        };
        if negated {
            class.negate();
        }
        Ok(class)
    }

    /// An escape outside a class; the backslash is at `start`.
    fn parse_escape(&mut self, start: usize) -> Result<Node> {
        let Some(c) = self.peek() else {
            return Err(self.syntax("bad escape (end of pattern)", start, 1));
        };
        self.pos += 1;
        if let Some(cp) = self.code_point_escape(start, c)? {
            return Ok(code_point(cp));
        }
        Ok(match c {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => Node::Class(perl_class(c, false)),
            'p' | 'P' => Node::Class(self.property(start, c == 'P')?),
            'A' => Node::Start(start),
            'Z' | 'z' => Node::End(start),
            'b' | 'B' => {
                return Err(self.unsupported(
                    "word boundaries (\\b, \\B) are not supported",
                    start,
                    2,
                ))
            }
            'k' if self.peek() == Some('<') => {
                return Err(self.unsupported("backreferences are not supported", start, 2))
            }
            '0' => code_point(self.octal(start, 0, 2)?),
            '1'..='9' => {
                let d = c as u32 - '0' as u32;
                let three_octal = d < 8
                    && self.peek().is_some_and(|x| x.is_digit(8))
                    && self.peek_at(1).is_some_and(|x| x.is_digit(8));
                if three_octal {
                    code_point(self.octal(start, d, 2)?)
                } else {
                    if self.peek().is_some_and(|x| x.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    return Err(self.unsupported(
                        "backreferences are not supported",
                        start,
                        self.pos - start,
                    ));
                }
            }
            c if c.is_ascii_alphanumeric() => {
                return Err(self.syntax(format!("bad escape \\{c}"), start, 2))
            }
            c => Node::Char(c),
        })
    }

    /// An escape inside a class; the backslash is at `start`.
    fn class_escape(&mut self, start: usize, in_negated_set: bool) -> Result<ClassItem> {
        let Some(c) = self.peek() else {
            return Err(self.syntax("unterminated character set", start, 1));
        };
        self.pos += 1;
        if let Some(cp) = self.code_point_escape(start, c)? {
            return Ok(match char::from_u32(cp) {
                Some(ch) => ClassItem::Char(ch),
                None => ClassItem::Set(ClassUnicode::empty()), // a lone surrogate
            });
        }
        Ok(match c {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => ClassItem::Set(perl_class(c, in_negated_set)),
            'p' | 'P' => ClassItem::Set(self.property(start, c == 'P')?),
            'b' => ClassItem::Char('\u{8}'),
            '0'..='7' => {
                let cp = self.octal(start, c as u32 - '0' as u32, 2)?;
                ClassItem::Char(char::from_u32(cp).unwrap_or('\0'))
            }
            c if c.is_ascii_alphanumeric() => {
                return Err(self.syntax(format!("bad escape \\{c}"), start, 2))
            }
            c => ClassItem::Char(c),
        })
    }

    /// After `[` at `start`.
    fn parse_class(&mut self, start: usize) -> Result<ClassUnicode> {
        let negated = self.eat('^');
        let body = self.pos;
        let mut set = ClassUnicode::empty();
        let unterminated = |p: &Self| p.syntax("unterminated character set", start, 1);
        loop {
            let item_start = self.pos;
            let Some(c) = self.peek() else {
                return Err(unterminated(self));
            };
            self.pos += 1;
            if c == ']' && item_start != body {
                break;
            }
            let lo = if c == '\\' {
                self.class_escape(item_start, negated)?
            } else {
                ClassItem::Char(c)
            };
            if self.peek() != Some('-') {
                add_item(&mut set, lo);
                continue;
            }
            self.pos += 1;
            let Some(c2) = self.peek() else {
                return Err(unterminated(self));
            };
            self.pos += 1;
            if c2 == ']' {
                add_item(&mut set, lo);
                add_item(&mut set, ClassItem::Char('-'));
                break;
            }
            let hi = if c2 == '\\' {
                self.class_escape(self.pos - 1, negated)?
            } else {
                ClassItem::Char(c2)
            };
            let bad = |p: &Self| {
                p.syntax(
                    format!("bad character range {}", p.text(item_start, p.pos)),
                    item_start,
                    p.pos - item_start,
                )
            };
            match (lo, hi) {
                (ClassItem::Char(a), ClassItem::Char(b)) if a <= b => {
                    set.push(ClassUnicodeRange::new(a, b));
                }
                _ => return Err(bad(self)),
            }
        }
        if negated {
            set.negate();
        }
        Ok(set)
    }

    // ------------------------------------------------------------------
    // lowering to the IR
    // ------------------------------------------------------------------

    /// `at_start` / `at_end`: nothing non-empty can precede / follow `n` in
    /// any match, so `^` / `$` inside it (in the same position) always hold.
    fn lower(&self, n: &Node, at_start: bool, at_end: bool) -> Result<Expr> {
        Ok(match n {
            Node::Empty => Expr::Empty,
            Node::Char(c) => Expr::Literal(c.to_string().into_bytes()),
            Node::Class(c) => Expr::Class {
                negated: false,
                ranges: c
                    .iter()
                    .map(|r| (r.start() as u32, r.end() as u32))
                    .collect(),
            },
            Node::Start(at) => {
                if !at_start {
                    let what = self.text(*at, *at + 2);
                    let what = if what.starts_with('\\') {
                        what
                    } else {
                        "^".to_owned()
                    };
                    return Err(self.unsupported(
                        format!("anchor {what} is only supported at the start of the pattern"),
                        *at,
                        what.chars().count(),
                    ));
                }
                Expr::Empty
            }
            Node::End(at) => {
                if !at_end {
                    let what = self.text(*at, *at + 2);
                    let what = if what.starts_with('\\') {
                        what
                    } else {
                        "$".to_owned()
                    };
                    return Err(self.unsupported(
                        format!("anchor {what} is only supported at the end of the pattern"),
                        *at,
                        what.chars().count(),
                    ));
                }
                Expr::Empty
            }
            Node::Concat(items) => {
                // empty_before[i]: items[..i] match only the empty string.
                let mut empty_before = vec![true; items.len() + 1];
                for (i, it) in items.iter().enumerate() {
                    empty_before[i + 1] = empty_before[i] && it.only_empty();
                }
                let mut empty_after = vec![true; items.len() + 1];
                for (i, it) in items.iter().enumerate().rev() {
                    empty_after[i] = empty_after[i + 1] && it.only_empty();
                }
                let mut out: Vec<Expr> = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let e = self.lower(
                        it,
                        at_start && empty_before[i],
                        at_end && empty_after[i + 1],
                    )?;
                    match (out.last_mut(), e) {
                        (_, Expr::Empty) => {}
                        (Some(Expr::Literal(prev)), Expr::Literal(b)) => prev.extend(b),
                        (_, e) => out.push(e),
                    }
                }
                match out.len() {
                    0 => Expr::Empty,
                    1 => out.pop().unwrap_or(Expr::Empty),
                    _ => Expr::Seq(out),
                }
            }
            Node::Alt(alts) => Expr::Alt(
                alts.iter()
                    .map(|a| self.lower(a, at_start, at_end))
                    .collect::<Result<_>>()?,
            ),
            Node::Repeat { node, min, max } => {
                let once = max.is_some_and(|m| m <= 1);
                let inner = self.lower(node, at_start && once, at_end && once)?;
                if node.only_empty() || *max == Some(0) {
                    Expr::Empty
                } else if *min == 1 && *max == Some(1) {
                    inner
                } else {
                    Expr::Repeat {
                        expr: Box::new(inner),
                        min: *min,
                        max: *max,
                    }
                }
            }
        })
    }
}

/// A code point from an escape: a character, or (a lone surrogate, which no
/// UTF-8 text contains) a class matching nothing.
fn code_point(cp: u32) -> Node {
    match char::from_u32(cp) {
        Some(c) => Node::Char(c),
        None => Node::Class(ClassUnicode::empty()),
    }
}

fn add_item(set: &mut ClassUnicode, item: ClassItem) {
    match item {
        ClassItem::Char(c) => set.push(ClassUnicodeRange::new(c, c)),
        ClassItem::Set(s) => set.union(&s),
    }
}

/// `.`: any character except `\n`.
fn dot_class() -> ClassUnicode {
    ClassUnicode::new([
        ClassUnicodeRange::new('\0', '\u{9}'),
        ClassUnicodeRange::new('\u{B}', char::MAX),
    ])
}

/// A Unicode class from `regex-syntax` (e.g. `\p{Nd}`), or `None` if it
/// does not parse.
fn unicode_class(expr: &str) -> Option<ClassUnicode> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(true)
        .utf8(true)
        .build()
        .parse(expr)
        .ok()?;
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => Some(c.clone()),
        HirKind::Class(Class::Bytes(b)) if b.ranges().is_empty() => Some(ClassUnicode::empty()),
        HirKind::Literal(lit) => {
            let c = std::str::from_utf8(&lit.0).ok()?.chars().next()?;
            Some(ClassUnicode::new([ClassUnicodeRange::new(c, c)]))
        }
        _ => None,
    }
}

/// The Unicode version of the `\d \w` tables that every supported Python
/// agrees on: Python 3.11's `unicodedata` is 14.0, later ones are newer.
const PYTHON_UNICODE_AGE: &str = "14.0";

/// `\d \w \s` and their negations, with Python's `str`-pattern meaning, in
/// the reading every Python from 3.11 up shares: a class matches a character
/// only where all of them do (`\d` is a decimal digit of Unicode 14.0, not one
/// added since; `\D` is no digit of the newer tables either). Inside a negated
/// set (`[^\d]`) the readings swap, so the set stays on the safe side too.
fn perl_class(c: char, in_negated_set: bool) -> ClassUnicode {
    let [d_old, w_old, d_new, w_new, s] = perl_tables();
    // Where the class's characters are accepted, the narrow table; where
    // they are excluded (`\D`, or `\d` in `[^...]`), the wide one.
    let negate = c.is_ascii_uppercase();
    let narrow = negate == in_negated_set;
    let mut class = match (c.to_ascii_lowercase(), narrow) {
        ('d', true) => d_old.clone(),
        ('d', false) => d_new.clone(),
        ('w', true) => w_old.clone(),
        ('w', false) => w_new.clone(),
        _ => s.clone(),
    };
    if negate {
        class.negate();
    }
    class
}

/// The characters `\w` accepts (the narrow table of [`perl_class`]): the
/// trie marks subtrees of word tokens with them (`crate::trie::WORDS`).
pub(crate) fn word_chars() -> &'static ClassUnicode {
    &perl_tables()[1]
}

/// Every character `\d` may accept (the wide table of [`perl_class`]): the
/// trie marks subtrees free of them (`crate::trie::NO_DIGITS`).
pub(crate) fn digit_chars() -> &'static ClassUnicode {
    &perl_tables()[2]
}

/// [d, w] as of PYTHON_UNICODE_AGE, [d, w] as of the crate's tables, s.
fn perl_tables() -> &'static [ClassUnicode; 5] {
    static TABLES: OnceLock<[ClassUnicode; 5]> = OnceLock::new();
    TABLES.get_or_init(|| {
        let class = |e: &str| unicode_class(e).unwrap_or_else(ClassUnicode::empty);
        let age = PYTHON_UNICODE_AGE;
        let d_old = class(&format!(r"[\p{{Nd}}&&\p{{Age={age}}}]"));
        let w_old = class(&format!(r"[[\p{{L}}\p{{N}}_]&&\p{{Age={age}}}]"));
        let d_new = class(r"\p{Nd}");
        let w_new = class(r"[\p{L}\p{N}_]");
        // Python's str.isspace(): bidirectional class WS, B or S, or category Zs.
        let s = ClassUnicode::new(
            [
                ('\u{9}', '\u{D}'),
                ('\u{1C}', '\u{20}'),
                ('\u{85}', '\u{85}'),
                ('\u{A0}', '\u{A0}'),
                ('\u{1680}', '\u{1680}'),
                ('\u{2000}', '\u{200A}'),
                ('\u{2028}', '\u{2029}'),
                ('\u{202F}', '\u{202F}'),
                ('\u{205F}', '\u{205F}'),
                ('\u{3000}', '\u{3000}'),
            ]
            .map(|(a, b)| ClassUnicodeRange::new(a, b)),
        );
        [d_old, w_old, d_new, w_new, s]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(p: &str) -> Expr {
        parse_regex(p).unwrap().rules.remove(0).body
    }

    fn err(p: &str) -> Error {
        parse_regex(p).expect_err(p)
    }

    fn col(p: &str) -> (ErrorKind, u32) {
        let e = err(p);
        (e.kind(), e.span().expect("span").column)
    }

    fn class(ranges: &[(u32, u32)]) -> Expr {
        Expr::Class {
            negated: false,
            ranges: ranges.to_vec(),
        }
    }

    #[test]
    fn literals_merge_and_anchors_vanish() {
        assert_eq!(root("^abc$"), Expr::Literal(b"abc".to_vec()));
        assert_eq!(root(r"\Aé\n\x41\u00e9\U0001F600\u{1F600}\Z"), {
            Expr::Literal("é\nAé😀😀".as_bytes().to_vec())
        });
        assert_eq!(
            root(r"\uD83D\uDE00"),
            Expr::Literal("😀".as_bytes().to_vec())
        );
        assert_eq!(root(""), Expr::Empty);
        assert_eq!(root("()"), Expr::Empty);
        assert_eq!(root(r"\141\0\012"), Expr::Literal(b"a\0\n".to_vec()));
        assert_eq!(root(r"\.\*\/\-"), Expr::Literal(b".*/-".to_vec()));
    }

    #[test]
    fn classes() {
        assert_eq!(root("[a-cx]"), class(&[(0x61, 0x63), (0x78, 0x78)]));
        assert_eq!(root("[]a]"), class(&[(0x5D, 0x5D), (0x61, 0x61)]));
        assert_eq!(root("[a-]"), class(&[(0x2D, 0x2D), (0x61, 0x61)]));
        assert_eq!(root(r"[\b]"), class(&[(8, 8)]));
        // regex-syntax treats D7FF and E000 as adjacent (no surrogates in between).
        assert_eq!(root("[^a]"), class(&[(0, 0x60), (0x62, 0x10FFFF)]));
        assert_eq!(root("."), class(&[(0, 9), (0xB, 0x10FFFF)]));
        assert_eq!(root(r"[^\s\S]"), class(&[]));
        let Expr::Class { ranges, .. } = root(r"\d") else {
            panic!()
        };
        assert!(ranges.contains(&(0x30, 0x39)) && ranges.contains(&(0x660, 0x669)));
        let Expr::Class { ranges, .. } = root(r"\s") else {
            panic!()
        };
        assert_eq!(ranges[0], (9, 0xD));
        assert_eq!(ranges[1], (0x1C, 0x20));
        let Expr::Class { ranges, .. } = root(r"[\w-]") else {
            panic!()
        };
        assert!(ranges.contains(&(0x2D, 0x2D)) && ranges.contains(&(0x5F, 0x5F)));
        assert!(matches!(root(r"\p{Greek}"), Expr::Class { .. }));
    }

    #[test]
    fn quantifiers() {
        let rep = |min, max| Expr::Repeat {
            expr: Box::new(Expr::Literal(b"a".to_vec())),
            min,
            max,
        };
        assert_eq!(root("a*"), rep(0, None));
        assert_eq!(root("a+?"), rep(1, None));
        assert_eq!(root("a??"), rep(0, Some(1)));
        assert_eq!(root("a{3}"), rep(3, Some(3)));
        assert_eq!(root("a{2,}"), rep(2, None));
        assert_eq!(root("a{,4}"), rep(0, Some(4)));
        assert_eq!(root("a{,}"), rep(0, None));
        assert_eq!(root("a{1,5}?"), rep(1, Some(5)));
        assert_eq!(root("a{1}"), Expr::Literal(b"a".to_vec()));
        // Not quantifiers: literal braces.
        assert_eq!(root("a{x}"), Expr::Literal(b"a{x}".to_vec()));
        assert_eq!(root("a{}"), Expr::Literal(b"a{}".to_vec()));
        assert_eq!(root("{"), Expr::Literal(b"{".to_vec()));
        assert_eq!(root("a{1"), Expr::Literal(b"a{1".to_vec()));
    }

    #[test]
    fn groups_and_alternation() {
        assert_eq!(
            root("(?:a|b)(?P<x>c)(?<y>d)(?#note)"),
            Expr::Seq(vec![
                Expr::Alt(vec![
                    Expr::Literal(b"a".to_vec()),
                    Expr::Literal(b"b".to_vec())
                ]),
                Expr::Literal(b"cd".to_vec()),
            ])
        );
        assert_eq!(
            root("^a$|^b$"),
            Expr::Alt(vec![
                Expr::Literal(b"a".to_vec()),
                Expr::Literal(b"b".to_vec())
            ])
        );
        assert!(parse_regex("(^a)?b").is_ok());
        assert!(parse_regex("$^").is_ok());
    }

    #[test]
    fn unsupported_constructs_point_at_themselves() {
        assert_eq!(col("ab(?=c)"), (ErrorKind::Grammar, 3));
        assert_eq!(col("a(?!c)"), (ErrorKind::Grammar, 2));
        assert_eq!(col("(?<=c)a"), (ErrorKind::Grammar, 1));
        assert_eq!(col("(?<!c)a"), (ErrorKind::Grammar, 1));
        assert_eq!(col(r"(a)\1"), (ErrorKind::Grammar, 4));
        assert_eq!(col(r"(?P<n>a)(?P=n)"), (ErrorKind::Grammar, 9));
        assert_eq!(col(r"(?<n>a)\k<n>"), (ErrorKind::Grammar, 8));
        assert_eq!(col(r"a\bc"), (ErrorKind::Grammar, 2));
        assert_eq!(col("(?i)a"), (ErrorKind::Grammar, 1));
        assert_eq!(col("(?>a)"), (ErrorKind::Grammar, 1));
        assert_eq!(col("a*+"), (ErrorKind::Grammar, 2));
        assert_eq!(col("a^b"), (ErrorKind::Grammar, 2));
        assert_eq!(col("a$b"), (ErrorKind::Grammar, 2));
        assert_eq!(col("(^a)*"), (ErrorKind::Grammar, 2));
        assert_eq!(col(r"a\Ab"), (ErrorKind::Grammar, 2));
        assert_eq!(col(r"\N{DIGIT ONE}"), (ErrorKind::Grammar, 1));
        let e = err("ab(?=c)");
        assert!(e.message().contains("lookahead"));
        assert_eq!(
            e.to_string(),
            "1:3: error: lookahead assertions are not supported\n  ab(?=c)\n    ^^^"
        );
    }

    #[test]
    fn syntax_errors_have_columns() {
        assert_eq!(col("(ab"), (ErrorKind::Syntax, 1));
        assert_eq!(col("ab)"), (ErrorKind::Syntax, 3));
        assert_eq!(col("a[bc"), (ErrorKind::Syntax, 2));
        assert_eq!(col("*a"), (ErrorKind::Syntax, 1));
        assert_eq!(col("a|*"), (ErrorKind::Syntax, 3));
        assert_eq!(col("a**"), (ErrorKind::Syntax, 3));
        assert_eq!(col("a{2}{3}"), (ErrorKind::Syntax, 5));
        assert_eq!(col("^*"), (ErrorKind::Syntax, 2));
        assert_eq!(col("a{3,2}"), (ErrorKind::Syntax, 2));
        assert_eq!(col("a{4294967295}"), (ErrorKind::Syntax, 3));
        assert_eq!(col("[z-a]"), (ErrorKind::Syntax, 2));
        assert_eq!(col(r"[\d-z]"), (ErrorKind::Syntax, 2));
        assert_eq!(col(r"ab\q"), (ErrorKind::Syntax, 3));
        assert_eq!(col(r"\x4"), (ErrorKind::Syntax, 1));
        assert_eq!(col(r"\u{110000}"), (ErrorKind::Syntax, 1));
        assert_eq!(col(r"\p{NoSuchProperty}"), (ErrorKind::Syntax, 1));
        assert_eq!(col(r"ab\"), (ErrorKind::Syntax, 3));
        assert_eq!(col(r"\777"), (ErrorKind::Syntax, 1));
        assert_eq!(col("(?Px)"), (ErrorKind::Syntax, 1));
        assert_eq!(col("(?P<1>a)"), (ErrorKind::Syntax, 5));
        // Columns count characters, and lines count newlines in the pattern.
        assert_eq!(col("éé)"), (ErrorKind::Syntax, 3));
        let e = err("a\nb)");
        assert_eq!(e.span().map(|s| (s.line, s.column)), Some((2, 2)));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(err(&deep).kind(), ErrorKind::Limit);
        let ok = format!("{}a{}", "(".repeat(90), ")".repeat(90));
        assert!(parse_regex(&ok).is_ok());
    }

    #[test]
    fn compiled_regex_full_matches() {
        use crate::{Compiler, Matcher, Vocabulary};
        use std::sync::Arc;
        let compiler = Compiler::new(Arc::new(Vocabulary::byte_level()));
        let full = |p: &str, s: &str| {
            let mut m = Matcher::new(compiler.compile_regex(p).unwrap());
            m.accept_bytes(s.as_bytes()) && m.can_terminate()
        };
        assert!(full(r"^\d{4}-\d{2}-\d{2}$", "2024-01-31"));
        assert!(!full(r"^\d{4}-\d{2}-\d{2}$", "2024-01-3"));
        assert!(full(r"\d+", "١٢٣"));
        assert!(full(r"\w+", "héllo_中文"));
        // Characters a newer Unicode made digits or letters (U+1CCF4 in 16.0,
        // U+11F04 in 15.0) are matched by neither the class nor its negation:
        // Python 3.11's `re` says no to the one, a newer Python to the other.
        for p in [r"\d", r"\D", r"[^\d]", r"[^\D]", r"[\d]", r"[\D]"] {
            assert!(!full(p, "\u{1CCF4}"), "{p}");
            assert!(
                full(p, "\u{665}") == matches!(p, r"\d" | r"[^\D]" | r"[\d]"),
                "{p}"
            );
        }
        for p in [r"\w", r"\W", r"[^\w]", r"[^\W]"] {
            assert!(!full(p, "\u{11F04}"), "{p}");
        }
        assert!(!full(r"\w+", "a-b"));
        assert!(full(r"[^a]", "é"));
        assert!(!full(".", "\n"));
        assert!(full(r"(ab|c)*", "abcab"));
        assert!(full(r"a|[^\s\S]", "a"));
        // A pattern that matches nothing is refused by the automaton.
        assert!(compiler.compile_regex(r"[^\s\S]").is_err());
        let g1 = compiler.compile_regex("a+").unwrap();
        let g2 = compiler.compile_regex("a+").unwrap();
        assert!(Arc::ptr_eq(&g1, &g2));
    }
}
