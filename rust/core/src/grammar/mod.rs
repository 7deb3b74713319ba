//! The grammar IR shared by every front-end.
//!
//! A [`Grammar`] is a list of rules; each rule body is a regular expression
//! ([`Expr`]) over three kinds of terminals — byte strings, Unicode code-point
//! classes (matched as UTF-8), and whole tokenizer tokens — and references to
//! other rules. Front-ends (`ebnf`, `schema` for JSON Schema, `regex`) produce this
//! IR; `automaton` compiles it.

pub mod ebnf;
pub mod regex;
pub mod schema;

use crate::error::Span;

/// Index of a rule in [`Grammar::rules`].
pub type RuleId = u32;

/// A whole grammar: rules plus the start rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grammar {
    /// All rules; references index into this list.
    pub rules: Vec<Rule>,
    /// The start rule.
    pub root: RuleId,
}

/// One named rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The rule's name as written (generated helper rules get a derived name).
    pub name: String,
    /// The rule body.
    pub body: Expr,
    /// Where the rule's name is defined (for messages).
    pub span: Option<Span>,
}

/// A reference to one tokenizer token inside a grammar.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TokenRef {
    /// `<[123]>`: a token id.
    Id(u32),
    /// `<|name|>` / `<think>`: a token whose decoded text is exactly this string.
    Text(String),
}

/// A regular expression over terminals and rule references.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// Matches the empty string.
    Empty,
    /// Matches exactly these bytes (a string literal, UTF-8 encoded).
    Literal(Vec<u8>),
    /// Matches one Unicode scalar value, encoded as UTF-8, in (or, if
    /// `negated`, not in) the inclusive code-point ranges.
    Class {
        /// True for `[^...]`.
        negated: bool,
        /// Inclusive code-point ranges, as written (unsorted, may overlap).
        ranges: Vec<(u32, u32)>,
    },
    /// Matches one byte in one of the inclusive byte ranges (used by
    /// front-ends that work below the character level).
    Bytes(Vec<(u8, u8)>),
    /// A reference to another rule.
    Rule(RuleId),
    /// Matches one whole token from the list (or, if `negated`, any one
    /// non-stop token not in the list), independent of its bytes.
    Token {
        /// True for `!<...>`.
        negated: bool,
        /// The tokens named.
        tokens: Vec<TokenRef>,
        /// Where the element is written (for "unknown token" messages).
        span: Option<Span>,
    },
    /// Concatenation.
    Seq(Vec<Expr>),
    /// Alternation.
    Alt(Vec<Expr>),
    /// `e{min,max}`; `max == None` is unbounded.
    Repeat {
        /// The repeated expression.
        expr: Box<Expr>,
        /// Minimum number of repetitions.
        min: u32,
        /// Maximum number of repetitions, `None` for no bound.
        max: Option<u32>,
    },
    /// The members in any order, each at most once, with `sep` between two
    /// consecutive members; every member whose `required` flag is set must
    /// appear, and the number of members is within `min..=max`. (JSON objects
    /// with `property_order="any"`; linear in the number of members, not a
    /// union of permutations.)
    Permutation {
        /// The members; at most [`MAX_PERMUTATION_MEMBERS`].
        members: Vec<Expr>,
        /// `required[i]`: member `i` must appear.
        required: Vec<bool>,
        /// Matched between two consecutive members.
        sep: Box<Expr>,
        /// Minimum number of members present.
        min: u32,
        /// Maximum number of members present, `None` for no bound beyond the member count.
        max: Option<u32>,
    },
}

/// Most members an [`Expr::Permutation`] may have (one bit of parser state each).
pub const MAX_PERMUTATION_MEMBERS: usize = 32;

impl Grammar {
    /// The id of the rule called `name`, if any.
    pub fn rule_id(&self, name: &str) -> Option<RuleId> {
        self.rules
            .iter()
            .position(|r| r.name == name)
            .map(|i| i as RuleId)
    }
}

/// The code points of an [`Expr::Class`] as sorted, merged, non-overlapping
/// ranges within `0..=0x10FFFF` (complemented if `negated`; surrogates are
/// not removed here).
pub fn class_ranges(negated: bool, ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = ranges
        .iter()
        .filter(|r| r.0 <= r.1 && r.0 <= 0x10FFFF)
        .map(|&(a, b)| (a, b.min(0x10FFFF)))
        .collect();
    v.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (a, b) in v {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    if !negated {
        return merged;
    }
    let mut out = Vec::new();
    let mut next = 0u32;
    for (a, b) in merged {
        if a > next {
            out.push((next, a - 1));
        }
        next = b + 1;
    }
    if next <= 0x10FFFF {
        out.push((next, 0x10FFFF));
    }
    out
}
