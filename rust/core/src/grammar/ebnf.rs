//! GBNF front-end: the grammar dialect of llama.cpp.
//!
//! ```text
//! root   ::= object              # a comment
//! object ::= "{" ws ( pair ( "," ws pair )* )? "}"
//! pair   ::= [a-z]+ ":" ws ( "\u00e9" | . | <think> | !<[42]> )
//! ws     ::= [ \t\n]{0,20}
//! ```
//!
//! The layout rules follow llama.cpp so that grammars behave the same in both:
//! a rule ends at the end of its line, except that newlines are whitespace
//! inside parentheses and right after `::=` or `|`. Terminals are Unicode code
//! points; escapes (`\xHH`, `\uHHHH`, `\UHHHHHHHH`) name code points, not bytes.
//!
//! Every error carries the line and column of the offending text; the parser
//! never panics on any input (the `fuzz/` target checks this).

use super::{Expr, Grammar, Rule, RuleId, TokenRef};
use crate::error::{Error, ErrorKind, Result, Span};
use rustc_hash::FxHashMap;

/// Deepest nesting of groups and repetition operators accepted. Later stages
/// recurse over the expression tree, so depth is bounded here, up front.
pub const MAX_NESTING: u32 = 200;

/// Parse GBNF text into the grammar IR, with `root` as the start rule.
///
/// ```
/// let g = corral_core::grammar::ebnf::parse_gbnf(b"root ::= \"a\" root | \"b\"", "root")?;
/// assert_eq!(g.rules.len(), 1);
/// # Ok::<(), corral_core::Error>(())
/// ```
pub fn parse_gbnf(src: &[u8], root: &str) -> Result<Grammar> {
    let text = match std::str::from_utf8(src) {
        Ok(t) => t,
        Err(e) => return Err(not_utf8(src, e.valid_up_to())),
    };
    let mut p = Parser {
        src: text,
        pos: 0,
        names: FxHashMap::default(),
        rules: Vec::new(),
    };
    if p.src.starts_with('\u{feff}') {
        p.pos = '\u{feff}'.len_utf8();
    }
    p.parse_rules()?;
    p.finish(root)
}

/// A rule slot: created on first mention, filled by its definition.
struct Slot {
    name: String,
    body: Option<Expr>,
    defined_at: Option<Span>,
    first_use: Option<Span>,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    names: FxHashMap<String, RuleId>,
    rules: Vec<Slot>,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// Describe a character for a message: printable ones quoted, others by name.
fn describe(c: Option<char>) -> String {
    match c {
        None => "end of input".to_owned(),
        Some('\n') | Some('\r') => "end of line".to_owned(),
        Some(c) if c.is_control() => format!("character U+{:04X}", c as u32),
        Some(c) => format!("`{c}`"),
    }
}

fn not_utf8(src: &[u8], valid: usize) -> Error {
    // Position from the valid prefix; the column counts characters.
    let prefix = std::str::from_utf8(&src[..valid]).unwrap_or_default();
    let line = prefix.matches('\n').count() as u32 + 1;
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let column = prefix[line_start..].chars().count() as u32 + 1;
    let shown = String::from_utf8_lossy(&src[line_start..]);
    let shown = shown.lines().next().unwrap_or_default().to_owned();
    Error::at(
        ErrorKind::Syntax,
        format!(
            "grammar text is not valid UTF-8 (byte 0x{:02X})",
            src[valid]
        ),
        Span {
            line,
            column,
            width: 1,
        },
        &format!("{}{shown}", "\n".repeat(line as usize - 1)),
    )
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn span_from(&self, start: usize, end: usize) -> Span {
        let before = &self.src[..start];
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() as u32 + 1;
        let width = self.src[start..end.max(start)]
            .chars()
            .take_while(|&c| c != '\n')
            .count();
        Span {
            line,
            column,
            width: width.max(1) as u32,
        }
    }

    fn err_at(&self, kind: ErrorKind, msg: impl Into<String>, start: usize, end: usize) -> Error {
        Error::at(kind, msg, self.span_from(start, end), self.src)
    }

    fn syntax_here(&self, msg: impl Into<String>) -> Error {
        let end = self.pos + self.peek().map_or(0, char::len_utf8);
        self.err_at(ErrorKind::Syntax, msg, self.pos, end)
    }

    /// Skip blanks and comments; newlines too when `newline_ok`.
    fn skip_space(&mut self, newline_ok: bool) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' => self.pos += 1,
                '\r' | '\n' if newline_ok => self.pos += 1,
                '#' => {
                    while !matches!(self.peek(), None | Some('\n') | Some('\r')) {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
    }

    fn parse_rules(&mut self) -> Result<()> {
        self.skip_space(true);
        while self.peek().is_some() {
            self.parse_rule()?;
            self.skip_space(true);
        }
        Ok(())
    }

    fn parse_name(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_word_char) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.src[start..self.pos])
    }

    fn rule_id(&mut self, name: &str) -> RuleId {
        if let Some(&id) = self.names.get(name) {
            return id;
        }
        let id = self.rules.len() as RuleId;
        self.names.insert(name.to_owned(), id);
        self.rules.push(Slot {
            name: name.to_owned(),
            body: None,
            defined_at: None,
            first_use: None,
        });
        id
    }

    fn parse_rule(&mut self) -> Result<()> {
        let start = self.pos;
        let Some(name) = self.parse_name() else {
            let hint = if self.peek() == Some('|') {
                "; a rule ends at the end of its line, so wrap alternatives that span \
                 several lines in parentheses"
            } else {
                ""
            };
            return Err(self.syntax_here(format!(
                "expected a rule name, found {}{hint}",
                describe(self.peek())
            )));
        };
        let name_span = self.span_from(start, self.pos);
        self.skip_space(false);
        if !self.src[self.pos..].starts_with("::=") {
            return Err(self.syntax_here(format!(
                "expected `::=` after rule name `{name}`, found {}",
                describe(self.peek())
            )));
        }
        self.pos += 3;
        let id = self.rule_id(name);
        if let Some(prev) = self.rules[id as usize].defined_at {
            return Err(Error::at(
                ErrorKind::Grammar,
                format!("rule `{name}` is already defined on line {}", prev.line),
                name_span,
                self.src,
            ));
        }
        self.rules[id as usize].defined_at = Some(name_span);
        self.skip_space(true);
        let (body, _) = self.parse_alternates(None, 0)?;
        match self.peek() {
            None => {}
            Some('\n') => self.pos += 1,
            Some('\r') => {
                self.pos += 1;
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
            }
            Some(')') => return Err(self.syntax_here("unmatched `)`")),
            Some(c) => {
                return Err(self.syntax_here(format!(
                    "unexpected {} in rule `{name}`; expected a grammar element, `|`, or the \
                     end of the line",
                    describe(Some(c))
                )))
            }
        }
        self.rules[id as usize].body = Some(body);
        Ok(())
    }

    /// `seq ("|" seq)*`. `open` is the byte offset of the enclosing `(`, if
    /// any; returns the expression and its nesting depth.
    fn parse_alternates(&mut self, open: Option<usize>, depth: u32) -> Result<(Expr, u32)> {
        let mut alts = Vec::new();
        let mut max_depth = 0;
        loop {
            let (seq, d) = self.parse_sequence(open.is_some(), depth)?;
            alts.push(seq);
            max_depth = max_depth.max(d);
            if self.peek() != Some('|') {
                break;
            }
            self.pos += 1;
            self.skip_space(true);
        }
        let expr = if alts.len() == 1 {
            alts.pop().unwrap_or(Expr::Empty)
        } else {
            Expr::Alt(alts)
        };
        Ok((expr, max_depth))
    }

    fn check_depth(&self, depth: u32, start: usize) -> Result<()> {
        if depth > MAX_NESTING {
            return Err(self.err_at(
                ErrorKind::Limit,
                format!(
                    "groups and repetitions are nested {depth} deep, more than the limit of \
                     {MAX_NESTING}"
                ),
                start,
                start + 1,
            ));
        }
        Ok(())
    }

    fn parse_sequence(&mut self, nested: bool, depth: u32) -> Result<(Expr, u32)> {
        // Each item: (expr, nesting depth, byte offset where it starts).
        let mut items: Vec<(Expr, u32, usize)> = Vec::new();
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                '"' => {
                    let lit = self.parse_literal()?;
                    items.push((Expr::Literal(lit), 0, start));
                }
                '[' => {
                    let class = self.parse_class()?;
                    items.push((class, 0, start));
                }
                '.' => {
                    self.pos += 1;
                    items.push((
                        Expr::Class {
                            negated: true,
                            ranges: Vec::new(),
                        },
                        0,
                        start,
                    ));
                }
                '<' | '!' => {
                    let tok = self.parse_token()?;
                    items.push((tok, 0, start));
                }
                '(' => {
                    self.pos += 1;
                    self.skip_space(true);
                    self.check_depth(depth + 1, start)?;
                    let (inner, d) = self.parse_alternates(Some(start), depth + 1)?;
                    match self.peek() {
                        Some(')') => self.pos += 1,
                        None => {
                            return Err(self.err_at(
                                ErrorKind::Syntax,
                                "unclosed `(`: the grammar ends before its `)`",
                                start,
                                start + 1,
                            ))
                        }
                        Some(c) => {
                            return Err(self.syntax_here(format!(
                                "unexpected {} inside parentheses; expected a grammar element, \
                                 `|`, or `)`",
                                describe(Some(c))
                            )))
                        }
                    }
                    items.push((inner, d + 1, start));
                }
                '*' | '+' | '?' | '{' => {
                    let (min, max) = self.parse_repetition()?;
                    let Some((expr, d, item_start)) = items.pop() else {
                        return Err(self.err_at(
                            ErrorKind::Syntax,
                            format!("`{c}` has nothing before it to repeat"),
                            start,
                            start + 1,
                        ));
                    };
                    self.check_depth(depth + d + 1, item_start)?;
                    let expr = match (min, max) {
                        (0, Some(0)) => Expr::Empty,
                        (1, Some(1)) => expr,
                        _ => Expr::Repeat {
                            expr: Box::new(expr),
                            min,
                            max,
                        },
                    };
                    items.push((expr, d + 1, item_start));
                }
                c if is_word_char(c) => {
                    let name = self.parse_name().unwrap_or_default();
                    let id = self.rule_id(name);
                    if self.rules[id as usize].first_use.is_none() {
                        let span = self.span_from(start, self.pos);
                        self.rules[id as usize].first_use = Some(span);
                    }
                    items.push((Expr::Rule(id), 0, start));
                }
                _ => break,
            }
            self.skip_space(nested);
        }
        let depth = items.iter().map(|i| i.1).max().unwrap_or(0);
        let mut exprs: Vec<Expr> = items.into_iter().map(|i| i.0).collect();
        let expr = match exprs.len() {
            0 => Expr::Empty,
            1 => exprs.pop().unwrap_or(Expr::Empty),
            _ => Expr::Seq(exprs),
        };
        Ok((expr, depth))
    }

    /// `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}` or `{,n}`; returns (min, max).
    fn parse_repetition(&mut self) -> Result<(u32, Option<u32>)> {
        let start = self.pos;
        match self.bump() {
            Some('*') => return Ok((0, None)),
            Some('+') => return Ok((1, None)),
            Some('?') => return Ok((0, Some(1))),
            _ => {}
        }
        // `{` was consumed.
        self.skip_space(false);
        let leading_comma = self.peek() == Some(',');
        let min = if leading_comma {
            Some(0)
        } else {
            self.parse_count()?
        };
        let Some(min) = min else {
            return Err(self.syntax_here(format!(
                "expected a number after `{{`, found {}",
                describe(self.peek())
            )));
        };
        self.skip_space(false);
        let max = match self.peek() {
            Some('}') => Some(min),
            Some(',') => {
                self.pos += 1;
                self.skip_space(false);
                let max = self.parse_count()?;
                if leading_comma && max.is_none() {
                    return Err(self.syntax_here(format!(
                        "expected a maximum after `{{,`, found {}",
                        describe(self.peek())
                    )));
                }
                self.skip_space(false);
                max
            }
            c => {
                return Err(self.syntax_here(format!(
                    "expected `,` or `}}` in repetition, found {}",
                    describe(c)
                )))
            }
        };
        if self.peek() != Some('}') {
            return Err(self.syntax_here(format!(
                "expected `}}` to close the repetition, found {}",
                describe(self.peek())
            )));
        }
        self.pos += 1;
        if let Some(max) = max {
            if max < min {
                return Err(self.err_at(
                    ErrorKind::Syntax,
                    format!("repetition `{{{min},{max}}}` has its maximum below its minimum"),
                    start,
                    self.pos,
                ));
            }
        }
        Ok((min, max))
    }

    /// A decimal count, or `None` if there are no digits here.
    fn parse_count(&mut self) -> Result<Option<u32>> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        let digits = &self.src[start..self.pos];
        match digits.parse::<u32>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(self.err_at(
                ErrorKind::Limit,
                format!(
                    "repetition count {digits} is larger than the limit of {}",
                    u32::MAX
                ),
                start,
                self.pos,
            )),
        }
    }

    fn parse_literal(&mut self) -> Result<Vec<u8>> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.err_at(
                        ErrorKind::Syntax,
                        "unterminated string literal: the grammar ends before its closing `\"`",
                        open,
                        open + 1,
                    ))
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out.into_bytes());
                }
                Some(_) => out.push(self.parse_char()?),
            }
        }
    }

    /// One character of a literal or class, with escapes resolved.
    fn parse_char(&mut self) -> Result<char> {
        let start = self.pos;
        let c = self.bump().unwrap_or('\0');
        if c != '\\' {
            return Ok(c);
        }
        let esc = self.bump();
        let digits = match esc {
            Some('n') => return Ok('\n'),
            Some('t') => return Ok('\t'),
            Some('r') => return Ok('\r'),
            Some(c @ ('\\' | '"' | '[' | ']')) => return Ok(c),
            Some('x') => 2,
            Some('u') => 4,
            Some('U') => 8,
            other => {
                let end = self.pos;
                let what = other.map_or("at the end of the grammar".to_owned(), |c| {
                    format!("`\\{}`", c.escape_default())
                });
                return Err(self.err_at(
                    ErrorKind::Syntax,
                    format!(
                        "unknown escape {what}; the escapes are \\n \\t \\r \\\\ \\\" \\[ \\] \
                         \\xHH \\uHHHH \\UHHHHHHHH"
                    ),
                    start,
                    end,
                ));
            }
        };
        let mut value: u32 = 0;
        for _ in 0..digits {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    value = value * 16 + d;
                    self.pos += 1;
                }
                None => {
                    let end = self.pos;
                    return Err(self.err_at(
                        ErrorKind::Syntax,
                        format!(
                            "escape `\\{}` needs exactly {digits} hex digits",
                            esc.unwrap_or('x')
                        ),
                        start,
                        end,
                    ));
                }
            }
        }
        char::from_u32(value).ok_or_else(|| {
            self.err_at(
                ErrorKind::Syntax,
                format!("escape names U+{value:04X}, which is not a Unicode scalar value"),
                start,
                self.pos,
            )
        })
    }

    fn parse_class(&mut self) -> Result<Expr> {
        let open = self.pos;
        self.pos += 1;
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.err_at(
                        ErrorKind::Syntax,
                        "unterminated character class: the grammar ends before its closing `]`",
                        open,
                        open + 1,
                    ))
                }
                Some(']') => {
                    self.pos += 1;
                    return Ok(Expr::Class { negated, ranges });
                }
                Some(_) => {
                    let start = self.pos;
                    let lo = self.parse_char()?;
                    let mut hi = lo;
                    if self.peek() == Some('-') && !matches!(self.peek_at(1), Some(']') | None) {
                        self.pos += 1;
                        hi = self.parse_char()?;
                        if hi < lo {
                            return Err(self.err_at(
                                ErrorKind::Syntax,
                                format!(
                                    "character range `{}-{}` is reversed (U+{:04X} > U+{:04X})",
                                    lo.escape_default(),
                                    hi.escape_default(),
                                    lo as u32,
                                    hi as u32
                                ),
                                start,
                                self.pos,
                            ));
                        }
                    }
                    ranges.push((lo as u32, hi as u32));
                }
            }
        }
    }

    /// `<[123]>`, `<|name|>`, `<name>`, each optionally negated with `!`.
    fn parse_token(&mut self) -> Result<Expr> {
        let start = self.pos;
        let negated = self.peek() == Some('!');
        if negated {
            self.pos += 1;
            if self.peek() != Some('<') {
                return Err(self.syntax_here(format!(
                    "expected `<` after `!` (a negated token such as `!<[42]>`), found {}",
                    describe(self.peek())
                )));
            }
        }
        let open = self.pos;
        self.pos += 1;
        let token = if self.peek() == Some('[') {
            self.pos += 1;
            let id = self.parse_count()?;
            let Some(id) = id else {
                return Err(self.syntax_here(format!(
                    "expected a token id after `<[`, found {}",
                    describe(self.peek())
                )));
            };
            if !self.src[self.pos..].starts_with("]>") {
                return Err(self.syntax_here(format!(
                    "expected `]>` to close the token id, found {}",
                    describe(self.peek())
                )));
            }
            self.pos += 2;
            TokenRef::Id(id)
        } else {
            while let Some(c) = self.peek() {
                if c == '>' || c.is_whitespace() || c == '<' {
                    break;
                }
                self.pos += c.len_utf8();
            }
            if self.peek() != Some('>') || self.pos == open + 1 {
                return Err(self.err_at(
                    ErrorKind::Syntax,
                    "malformed token: expected `<[id]>` or a special token's text such as \
                     `<|im_end|>` (no spaces)",
                    open,
                    self.pos.max(open + 1),
                ));
            }
            self.pos += 1;
            TokenRef::Text(self.src[open..self.pos].to_owned())
        };
        let span = self.span_from(start, self.pos);
        Ok(Expr::Token {
            negated,
            tokens: vec![token],
            span: Some(span),
        })
    }

    fn finish(self, root: &str) -> Result<Grammar> {
        if self.rules.is_empty() {
            return Err(Error::new(
                ErrorKind::Grammar,
                "the grammar is empty: it defines no rules",
            ));
        }
        let defined: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| r.body.is_some())
            .map(|r| r.name.as_str())
            .collect();
        for slot in &self.rules {
            if slot.body.is_none() {
                let mut msg = format!("undefined rule `{}`", slot.name);
                if let Some(near) = closest(&slot.name, &defined) {
                    msg.push_str(&format!("; did you mean `{near}`?"));
                }
                return Err(match slot.first_use {
                    Some(span) => Error::at(ErrorKind::Grammar, msg, span, self.src),
                    None => Error::new(ErrorKind::Grammar, msg),
                });
            }
        }
        let Some(&root_id) = self.names.get(root) else {
            let mut msg = format!("the grammar has no rule named `{root}` to start from");
            if let Some(near) = closest(root, &defined) {
                msg.push_str(&format!("; did you mean `{near}`?"));
            }
            return Err(Error::new(ErrorKind::Grammar, msg));
        };
        let rules = self
            .rules
            .into_iter()
            .map(|s| Rule {
                name: s.name,
                body: s.body.unwrap_or(Expr::Empty),
                span: s.defined_at,
            })
            .collect();
        Ok(Grammar {
            rules,
            root: root_id,
        })
    }
}

/// The defined name nearest to `name` by edit distance, if it is close.
fn closest<'n>(name: &str, names: &[&'n str]) -> Option<&'n str> {
    let a: Vec<char> = name.chars().collect();
    names
        .iter()
        .map(|n| (edit_distance(&a, &n.chars().collect::<Vec<_>>()), *n))
        .filter(|&(d, n)| d > 0 && d <= (a.len().max(n.len()) / 3).max(1))
        .min()
        .map(|(_, n)| n)
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Grammar> {
        parse_gbnf(src.as_bytes(), "root")
    }

    fn err(src: &str) -> Error {
        parse(src).expect_err("expected an error")
    }

    #[test]
    fn rules_in_any_order_with_comments() {
        let g = parse("# header\nroot ::= a b # tail\na ::= \"x\"\nb ::= [0-9]+\n").unwrap();
        assert_eq!(g.rules.len(), 3);
        assert_eq!(g.rules[g.root as usize].name, "root");
        assert_eq!(g.rules[1].body, Expr::Literal(b"x".to_vec()));
    }

    #[test]
    fn escapes_are_code_points() {
        let g = parse(r#"root ::= "\x41\u00e9\U0001F600\n\t\r\\\"\[\]""#).unwrap();
        let want = "A\u{e9}\u{1F600}\n\t\r\\\"[]".as_bytes().to_vec();
        assert_eq!(g.rules[0].body, Expr::Literal(want));
    }

    #[test]
    fn classes_dot_and_ranges() {
        let g = parse("root ::= [^a-c\\]x-] .").unwrap();
        let Expr::Seq(items) = &g.rules[0].body else {
            panic!()
        };
        assert_eq!(
            items[0],
            Expr::Class {
                negated: true,
                ranges: vec![(97, 99), (93, 93), (120, 120), (45, 45)]
            }
        );
        assert_eq!(
            items[1],
            Expr::Class {
                negated: true,
                ranges: vec![]
            }
        );
    }

    #[test]
    fn repetitions() {
        let g =
            parse("root ::= \"a\"{2} \"b\"{2,} \"c\"{ 1 , 3 } \"d\"{,4} \"e\"? \"f\"{0}").unwrap();
        let Expr::Seq(items) = &g.rules[0].body else {
            panic!()
        };
        let bounds: Vec<_> = items
            .iter()
            .map(|e| match e {
                Expr::Repeat { min, max, .. } => Some((*min, *max)),
                _ => None,
            })
            .collect();
        assert_eq!(
            bounds,
            [
                Some((2, Some(2))),
                Some((2, None)),
                Some((1, Some(3))),
                Some((0, Some(4))),
                Some((0, Some(1))),
                None
            ]
        );
        assert_eq!(items[5], Expr::Empty);
    }

    #[test]
    fn newlines_end_rules_except_in_groups_and_after_bar() {
        assert!(parse("root ::= (\n  \"a\"\n  | \"b\"\n)\n").is_ok());
        assert!(parse("root ::= \"a\" |\n  \"b\"\n").is_ok());
        let e = err("root ::= \"a\"\n  | \"b\"\n");
        assert_eq!((e.span().unwrap().line, e.span().unwrap().column), (2, 3));
        assert!(e.message().contains("parentheses"), "{e}");
    }

    #[test]
    fn tokens() {
        let g = parse("root ::= <[12]> !<[13]> <|im_end|> !<think>").unwrap();
        let Expr::Seq(items) = &g.rules[0].body else {
            panic!()
        };
        let toks: Vec<_> = items
            .iter()
            .map(|e| match e {
                Expr::Token {
                    negated, tokens, ..
                } => (*negated, tokens[0].clone()),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            toks,
            [
                (false, TokenRef::Id(12)),
                (true, TokenRef::Id(13)),
                (false, TokenRef::Text("<|im_end|>".into())),
                (true, TokenRef::Text("<think>".into())),
            ]
        );
    }

    #[test]
    fn errors_have_positions() {
        let cases = [
            ("root ::= \"a\" )", 1, 14, "unmatched"),
            ("root := \"a\"", 1, 6, "expected `::=`"),
            ("root ::= [z-a]", 1, 11, "reversed"),
            ("root ::= \"a\"{5,2}", 1, 13, "below its minimum"),
            ("root ::= \"\\q\"", 1, 11, "unknown escape"),
            ("root ::= \"\\x4\"", 1, 11, "2 hex digits"),
            ("root ::= \"\\uD800\"", 1, 11, "not a Unicode scalar"),
            ("\nroot ::= (\"a\"", 2, 10, "unclosed `(`"),
            ("root ::= \"abc", 1, 10, "unterminated string"),
            ("root ::= [abc", 1, 10, "unterminated character class"),
            ("root ::= * \"a\"", 1, 10, "nothing before it"),
            ("root ::= \"a\"{}", 1, 14, "expected a number"),
            (
                "root ::= \"a\"{99999999999}",
                1,
                14,
                "larger than the limit",
            ),
            (
                "root ::= x\nx ::= \"a\"\nx ::= \"b\"",
                3,
                1,
                "already defined on line 2",
            ),
            (
                "root ::= numbr\nnumber ::= [0-9]",
                1,
                10,
                "did you mean `number`",
            ),
            ("root ::= !x", 1, 11, "expected `<` after `!`"),
            ("root ::= <[12>", 1, 14, "expected `]>`"),
        ];
        for (src, line, column, text) in cases {
            let e = err(src);
            let span = e.span().unwrap_or_else(|| panic!("{src:?}: no span: {e}"));
            assert_eq!((span.line, span.column), (line, column), "{src:?}: {e}");
            assert!(e.to_string().contains(text), "{src:?}: {e}");
        }
    }

    #[test]
    fn grammar_level_errors() {
        assert!(err("").message().contains("empty"));
        assert!(err("  # only a comment\n").message().contains("empty"));
        assert!(err("rot ::= \"a\"")
            .message()
            .contains("no rule named `root`"));
        let e = parse_gbnf(b"root ::= \"\xff\"", "root").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!((e.span().unwrap().line, e.span().unwrap().column), (1, 11));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("root ::= {}\"a\"{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(err(&deep).kind(), ErrorKind::Limit);
        let stars = format!("root ::= \"a\"{}", "*".repeat(500));
        assert_eq!(err(&stars).kind(), ErrorKind::Limit);
        let ok = format!("root ::= {}\"a\"{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn crlf_and_bom() {
        assert!(parse("\u{feff}root ::= a\r\na ::= \"x\"\r\n").is_ok());
    }
}
