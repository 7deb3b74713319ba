//! Exact numeric ranges for JSON Schema `minimum`/`maximum`/`exclusiveMinimum`/
//! `exclusiveMaximum`/`multipleOf`, as grammar IR.
//!
//! # Overview
//!
//! Bounds are arbitrary-precision decimals ([`Decimal`]) parsed from the
//! number's JSON text, never through `f64`, so `9007199254740993`, `1e308` and
//! `0.1` are exact. The builders produce an [`Expr`] matching exactly the JSON
//! number texts whose *value* is in range:
//!
//! - [`integer_expr`]: integers `-?(0|[1-9][0-9]*)` followed by an optional
//!   fraction of zeros `(\.0+)?` (draft-06 and later count `1.0` as an
//!   integer; [`IntForm::Plain`] leaves it out for draft-04);
//!   `-0` (and `-0.0`) only where 0 is in range. No exponent forms.
//! - [`number_expr`]: without bounds, or with a single bound that is 0
//!   (`minimum: 0` and the like, where the sign decides), the full JSON number
//!   syntax; with any other bound, plain decimal notation only,
//!   `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with any number of fraction digits
//!   (trailing zeros included). The texts with an exponent whose value lies in
//!   a general range are not a regular language, so exponents are then never
//!   emitted: a sound subset of the valid texts.
//! - [`integer_multiple_of`]: integers divisible by `m` within the bounds, as
//!   right-linear helper rules (the product of the range automaton and the
//!   `m`-state remainder automaton); refused above [`MAX_PRODUCT_STATES`].
//! - [`number_multiple_of`]: `multipleOf` for numbers: a positive integer `m`
//!   is [`integer_multiple_of`]; `10^-k` means "at most `k` significant fraction
//!   digits" (later fraction digits must be `0`); anything else is refused.
//!
//! The construction is the classic digit-by-digit one: for each integer-part
//! length the value is compared position by position with the bounds, and
//! only the positions where the text still equals a bound's prefix branch, so
//! the expression is linear in the number of digits of the bounds.
//!
//! Cost (release build, this crate's automaton, no DFA minimisation):
//! `[-1e308, 1e308]` for numbers builds about 1,300 DFA states in 2 ms, the
//! `i64` range for integers about 550; `multipleOf: 97` on `[0, 1e12]` about
//! 17,000 states in 27 ms (the product automaton is the expensive part).
//!
//! Bounds: pass the number's JSON text. `serde_json` without the
//! `arbitrary_precision` feature stores non-integers as `f64`; its printed
//! form is the shortest text that round-trips, which equals the schema's text
//! for ordinary literals but not for ones with more than 17 significant digits.
//!
//! Errors: an empty range and a refused `multipleOf` are [`ErrorKind::Grammar`]
//! errors; a product automaton that is too large is an [`ErrorKind::Limit`]
//! error. The caller reports them (as `UnsupportedSchemaError` where it fails
//! closed).
//!
//! # Example: `{"type": "integer", "minimum": 0.5, "exclusiveMaximum": 10}`
//!
//! ```
//! use corral_core::grammar::schema::numbers::{integer_expr, Bound, IntForm};
//! let lo = Bound::inclusive("0.5")?;
//! let hi = Bound::exclusive("10")?;
//! let e = integer_expr(Some(&lo), Some(&hi), IntForm::ZeroFraction)?; // 1..=9, also "3.0"
//! let none = integer_expr(Some(&Bound::exclusive("1")?), Some(&Bound::exclusive("2")?), IntForm::Plain);
//! assert!(none.is_err());
//! # let _ = e;
//! # Ok::<(), corral_core::Error>(())
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::grammar::{Expr, Rule};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Most decimal digits a bound may expand to (`1e4000` is too long).
pub const MAX_BOUND_DIGITS: usize = 4096;

/// Most `(range state, remainder)` pairs [`integer_multiple_of`] builds.
pub const MAX_PRODUCT_STATES: usize = 10_000;

/// An exact decimal number: sign, integer digits and fraction digits.
///
/// Normalised: no leading zeros in `int` (zero has an empty `int`), no
/// trailing zeros in `frac`, and zero is never negative, so equal values are
/// equal structs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    neg: bool,
    /// Integer-part digits (0..=9), most significant first, no leading zeros.
    int: Vec<u8>,
    /// Fraction digits (0..=9), no trailing zeros.
    frac: Vec<u8>,
}

impl Decimal {
    /// Parse a JSON number text (`-?digits(.digits)?([eE][+-]?digits)?`; a
    /// leading `+` and leading zeros are also accepted, as Python's `Decimal`
    /// would). The exponent is applied exactly.
    ///
    /// ```
    /// use corral_core::grammar::schema::numbers::Decimal;
    /// assert_eq!(Decimal::parse("1.50e1")?, Decimal::parse("15")?);
    /// assert_eq!(Decimal::parse("-0.0")?.to_string(), "0");
    /// assert_eq!(Decimal::parse("-12.5e-3")?.to_string(), "-0.0125");
    /// # Ok::<(), corral_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Decimal> {
        let bad = || {
            Error::new(
                ErrorKind::Invalid,
                format!("`{text}` is not a decimal number"),
            )
        };
        let b = text.trim().as_bytes();
        let mut i = 0;
        let mut neg = false;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            neg = b[i] == b'-';
            i += 1;
        }
        let mut mant = Vec::new();
        let mut point: Option<usize> = None;
        while i < b.len() && (b[i].is_ascii_digit() || (b[i] == b'.' && point.is_none())) {
            if b[i] == b'.' {
                point = Some(mant.len());
            } else {
                mant.push(b[i] - b'0');
            }
            i += 1;
        }
        if mant.is_empty() {
            return Err(bad());
        }
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
                eneg = b[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = exp
                    .saturating_mul(10)
                    .saturating_add(i64::from(b[i] - b'0'));
                i += 1;
            }
            if start == i {
                return Err(bad());
            }
            if eneg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return Err(bad());
        }
        // Value = mant * 10^(exp - digits after the point).
        let int_len = point.unwrap_or(mant.len()) as i64;
        // Drop leading zeros and trailing zeros of the mantissa, tracking the position.
        let first = mant.iter().position(|&d| d != 0);
        let Some(first) = first else {
            return Ok(Decimal::zero());
        };
        let last = mant.iter().rposition(|&d| d != 0).unwrap_or(first);
        let sig = &mant[first..=last];
        // Position of the decimal point relative to sig[0]: digits before it.
        let point_pos = int_len.saturating_sub(first as i64).saturating_add(exp);
        let span = point_pos.max(sig.len() as i64) - point_pos.min(0);
        if span > MAX_BOUND_DIGITS as i64 {
            return Err(Error::new(
                ErrorKind::Limit,
                format!("`{text}` needs {span} digits, exceeds {MAX_BOUND_DIGITS}"),
            ));
        }
        let (int, frac) = if point_pos <= 0 {
            let mut f = vec![0u8; (-point_pos) as usize];
            f.extend_from_slice(sig);
            (Vec::new(), f)
        } else if point_pos as usize >= sig.len() {
            let mut v = sig.to_vec();
            v.resize(point_pos as usize, 0);
            (v, Vec::new())
        } else {
            let p = point_pos as usize;
            (sig[..p].to_vec(), sig[p..].to_vec())
        };
        Ok(Decimal { neg, int, frac })
    }

    fn zero() -> Decimal {
        Decimal {
            neg: false,
            int: Vec::new(),
            frac: Vec::new(),
        }
    }

    fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.is_empty()
    }

    fn is_integer(&self) -> bool {
        self.frac.is_empty()
    }

    fn negated(&self) -> Decimal {
        let mut d = self.clone();
        d.neg = !d.neg && !d.is_zero();
        d
    }

    fn from_mag(neg: bool, int: Vec<u8>) -> Decimal {
        let mut d = Decimal {
            neg,
            int,
            frac: Vec::new(),
        };
        let lead = d.int.iter().take_while(|&&x| x == 0).count();
        d.int.drain(..lead);
        d.neg &= !d.is_zero();
        d
    }

    /// The smallest integer ≥ self.
    fn ceil(&self) -> Decimal {
        if self.is_integer() {
            self.clone()
        } else if self.neg {
            Decimal::from_mag(true, self.int.clone())
        } else {
            Decimal::from_mag(false, mag_inc(&self.int))
        }
    }

    /// The largest integer ≤ self.
    fn floor(&self) -> Decimal {
        if self.is_integer() {
            self.clone()
        } else if self.neg {
            Decimal::from_mag(true, mag_inc(&self.int))
        } else {
            Decimal::from_mag(false, self.int.clone())
        }
    }

    /// self + 1 for an integer.
    fn succ(&self) -> Decimal {
        if self.neg {
            Decimal::from_mag(true, mag_dec(&self.int))
        } else {
            Decimal::from_mag(false, mag_inc(&self.int))
        }
    }

    /// self - 1 for an integer.
    fn pred(&self) -> Decimal {
        if self.neg || self.is_zero() {
            Decimal::from_mag(true, mag_inc(&self.int))
        } else {
            Decimal::from_mag(false, mag_dec(&self.int))
        }
    }

    /// The value as a `u64`, if it is a non-negative integer that fits.
    fn to_u64(&self) -> Option<u64> {
        if self.neg || !self.is_integer() || self.int.len() > 20 {
            return None;
        }
        self.int.iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d))
        })
    }

    /// `Some(k)` if the value is exactly `10^-k` with `k ≥ 1`.
    fn neg_power_of_ten(&self) -> Option<u32> {
        let (last, zeros) = self.frac.split_last()?;
        (!self.neg && self.int.is_empty() && *last == 1 && zeros.iter().all(|&d| d == 0))
            .then(|| u32::try_from(self.frac.len()).ok())
            .flatten()
    }

    fn cmp_mag(&self, other: &Decimal) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(&other.int))
            .then_with(|| self.frac.cmp(&other.frac))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.neg, other.neg) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_mag(other),
            (true, true) => other.cmp_mag(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = |v: &[u8]| v.iter().map(|d| char::from(b'0' + d)).collect::<String>();
        if self.neg {
            f.write_str("-")?;
        }
        if self.int.is_empty() {
            f.write_str("0")?;
        } else {
            f.write_str(&digits(&self.int))?;
        }
        if !self.frac.is_empty() {
            write!(f, ".{}", digits(&self.frac))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Decimal {
    type Err = Error;
    fn from_str(s: &str) -> Result<Decimal> {
        Decimal::parse(s)
    }
}

/// Magnitude + 1.
fn mag_inc(d: &[u8]) -> Vec<u8> {
    let mut v = d.to_vec();
    for x in v.iter_mut().rev() {
        if *x == 9 {
            *x = 0;
        } else {
            *x += 1;
            return v;
        }
    }
    v.insert(0, 1);
    v
}

/// Magnitude - 1 (of a magnitude ≥ 1).
fn mag_dec(d: &[u8]) -> Vec<u8> {
    let mut v = d.to_vec();
    for x in v.iter_mut().rev() {
        if *x == 0 {
            *x = 9;
        } else {
            *x -= 1;
            break;
        }
    }
    v
}

/// One end of a range: a value and whether the value itself is excluded
/// (`exclusiveMinimum`/`exclusiveMaximum` in draft 6+ spelling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The bound's value.
    pub value: Decimal,
    /// True if the value itself is outside the range.
    pub exclusive: bool,
}

impl Bound {
    /// An inclusive bound from number text (`minimum`/`maximum`).
    pub fn inclusive(text: &str) -> Result<Bound> {
        Ok(Bound {
            value: Decimal::parse(text)?,
            exclusive: false,
        })
    }

    /// An exclusive bound from number text (`exclusiveMinimum`/`exclusiveMaximum`).
    pub fn exclusive(text: &str) -> Result<Bound> {
        Ok(Bound {
            value: Decimal::parse(text)?,
            exclusive: true,
        })
    }
}

fn empty_range(lo: Option<&Bound>, hi: Option<&Bound>) -> Error {
    let show = |b: Option<&Bound>, open: &str, close: &str| match b {
        None => "unbounded".to_owned(),
        Some(b) if b.exclusive => format!("{open}{}", b.value),
        Some(b) => format!("{close}{}", b.value),
    };
    Error::new(
        ErrorKind::Grammar,
        format!(
            "the numeric range is empty (lower: {}, upper: {})",
            show(lo, "> ", ">= "),
            show(hi, "< ", "<= ")
        ),
    )
}

// ---------------------------------------------------------------------------
// Small Expr helpers.

fn lit(s: &str) -> Expr {
    if s.is_empty() {
        Expr::Empty
    } else {
        Expr::Literal(s.as_bytes().to_vec())
    }
}

fn digits(lo: u8, hi: u8) -> Expr {
    Expr::Bytes(vec![(b'0' + lo, b'0' + hi)])
}

fn rep(e: Expr, min: u32, max: Option<u32>) -> Expr {
    if max == Some(min) && min == 1 {
        return e;
    }
    if max == Some(0) {
        return Expr::Empty;
    }
    Expr::Repeat {
        expr: Box::new(e),
        min,
        max,
    }
}

fn seq(mut v: Vec<Expr>) -> Expr {
    v.retain(|e| *e != Expr::Empty);
    match v.len() {
        0 => Expr::Empty,
        1 => v.pop().unwrap_or(Expr::Empty),
        _ => Expr::Seq(v),
    }
}

fn alt(mut v: Vec<Expr>) -> Option<Expr> {
    match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(Expr::Alt(v)),
    }
}

fn opt(e: Expr) -> Expr {
    rep(e, 0, Some(1))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `-?(0|[1-9][0-9]*)`
fn json_int() -> Expr {
    seq(vec![
        opt(lit("-")),
        Expr::Alt(vec![
            lit("0"),
            seq(vec![digits(1, 9), rep(digits(0, 9), 0, None)]),
        ]),
    ])
}

/// The full JSON number syntax.
fn json_number() -> Expr {
    seq(vec![
        json_int(),
        opt(seq(vec![lit("."), rep(digits(0, 9), 1, None)])),
        opt(seq(vec![
            Expr::Bytes(vec![(b'e', b'e'), (b'E', b'E')]),
            opt(Expr::Bytes(vec![(b'+', b'+'), (b'-', b'-')])),
            rep(digits(0, 9), 1, None),
        ])),
    ])
}

/// `(\.0+)?`
fn zero_fraction() -> Expr {
    opt(seq(vec![lit("."), rep(lit("0"), 1, None)]))
}

// ---------------------------------------------------------------------------
// Positive magnitudes in a range, digit by digit.

/// How an integer may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntForm {
    /// `-?(0|[1-9][0-9]*)(\.0+)?`: draft-06 and later count `1.0` as an integer.
    ZeroFraction,
    /// `-?(0|[1-9][0-9]*)`: draft-04 does not (nor does Python's `json`,
    /// which reads `1.0` as a float).
    Plain,
}

impl IntForm {
    /// What may follow an integer's digits: `(\.0+)?` or nothing.
    pub(crate) fn tail(self) -> Expr {
        match self {
            IntForm::ZeroFraction => zero_fraction(),
            IntForm::Plain => Expr::Empty,
        }
    }
}

/// What follows the integer part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Bounds are integers; only the form's tail follows the digits.
    Int(IntForm),
    /// Any fraction; with `Some(k)`, fraction digits after the `k`th are `0`.
    Num(Option<u32>),
}

/// A bound of a positive range, as an aligned digit sequence.
#[derive(Clone, Debug)]
struct Side {
    /// Integer digits (`[0]` for a zero integer part) then fraction digits.
    digits: Vec<u8>,
    int_len: usize,
    exclusive: bool,
}

impl Mode {
    /// What may follow digits that already fix the value: zeros only.
    fn zeros(self) -> Expr {
        match self {
            Mode::Int(form) => form.tail(),
            Mode::Num(_) => zero_fraction(),
        }
    }
}

impl Side {
    fn new(b: &Bound) -> Side {
        let mut digits = if b.value.int.is_empty() {
            vec![0]
        } else {
            b.value.int.clone()
        };
        let int_len = digits.len();
        digits.extend_from_slice(&b.value.frac);
        Side {
            digits,
            int_len,
            exclusive: b.exclusive,
        }
    }
    fn at(&self, p: usize) -> u8 {
        self.digits.get(p).copied().unwrap_or(0)
    }
}

struct Builder<'a> {
    lo: &'a Side,
    hi: Option<&'a Side>,
    mode: Mode,
}

impl Builder<'_> {
    /// The fraction part after an integer part that is already free:
    /// `(\.[0-9]+)?`, `(\.0+)?` or `(\.[0-9]{1,k}0*)?`.
    fn free_fraction(&self) -> Expr {
        match self.mode {
            Mode::Int(_) | Mode::Num(Some(0)) => self.mode.zeros(),
            Mode::Num(None) => opt(seq(vec![lit("."), rep(digits(0, 9), 1, None)])),
            Mode::Num(Some(k)) => opt(seq(vec![
                lit("."),
                rep(digits(0, 9), 1, Some(k)),
                rep(lit("0"), 0, None),
            ])),
        }
    }

    /// Free continuation at aligned position `p` for integer length `l`.
    fn free(&self, l: usize, p: usize) -> Expr {
        if p <= l {
            return seq(vec![
                rep(digits(0, 9), count(l - p), Some(count(l - p))),
                self.free_fraction(),
            ]);
        }
        let j = p - l; // fraction digits already written (≥ 1)
        match self.mode {
            Mode::Int(_) => rep(lit("0"), 0, None),
            Mode::Num(None) => rep(digits(0, 9), 0, None),
            Mode::Num(Some(k)) => {
                let k = k as usize;
                if j >= k {
                    rep(lit("0"), 0, None)
                } else {
                    seq(vec![
                        rep(digits(0, 9), 0, Some(count(k - j))),
                        rep(lit("0"), 0, None),
                    ])
                }
            }
        }
    }

    /// The language from aligned position `p` (integer length `l`), given
    /// whether the text so far equals the lower / upper bound's prefix.
    fn gen(&self, l: usize, p: usize, tl: bool, th: bool) -> Option<Expr> {
        if !tl && !th {
            return Some(self.free(l, p));
        }
        let lo_len = self.lo.digits.len();
        let hi_len = self.hi.map_or(0, |h| h.digits.len());
        let places_done = match self.mode {
            Mode::Num(Some(k)) => p >= l + k as usize,
            _ => true,
        };
        let end_ok = p >= l
            && (!tl || (p >= lo_len && !self.lo.exclusive))
            && (!th || p < hi_len || !self.hi.is_some_and(|h| h.exclusive));
        let past = p >= l && (!tl || p >= lo_len) && (!th || p >= hi_len) && places_done;
        if past {
            return self.tail(l, p, tl, th, end_ok);
        }
        if matches!(self.mode, Mode::Int(_)) && p >= l {
            return end_ok.then(|| self.mode.zeros());
        }
        // One more digit.
        let (dmin, dmax) = if p == 0 && l > 1 {
            (1, 9)
        } else if p >= l && places_done && self.mode != Mode::Num(None) {
            (0, 0)
        } else {
            (0, 9)
        };
        let mut groups: Vec<(u8, u8, bool, bool)> = Vec::new();
        for d in dmin..=dmax {
            let (mut ntl, mut nth) = (false, false);
            if tl {
                match d.cmp(&self.lo.at(p)) {
                    Ordering::Less => continue,
                    Ordering::Equal => ntl = true,
                    Ordering::Greater => {}
                }
            }
            if th {
                match d.cmp(&self.hi.map_or(9, |h| h.at(p))) {
                    Ordering::Greater => continue,
                    Ordering::Equal => nth = true,
                    Ordering::Less => {}
                }
            }
            match groups.last_mut() {
                Some(g) if g.1 + 1 == d && g.2 == ntl && g.3 == nth => g.1 = d,
                _ => groups.push((d, d, ntl, nth)),
            }
        }
        let steps: Vec<Expr> = groups
            .into_iter()
            .filter_map(|(a, b, ntl, nth)| {
                self.gen(l, p + 1, ntl, nth)
                    .map(|rest| seq(vec![digits(a, b), rest]))
            })
            .collect();
        let step = alt(steps);
        let step = if p == l {
            step.map(|s| seq(vec![lit("."), s]))
        } else {
            step
        };
        let mut v = Vec::new();
        if end_ok {
            v.push(Expr::Empty);
        }
        v.extend(step);
        alt(v)
    }

    /// Past every bound digit (and past the `k` significant fraction places).
    fn tail(&self, l: usize, p: usize, tl: bool, th: bool, end_ok: bool) -> Option<Expr> {
        let zeros_only = !matches!(self.mode, Mode::Num(None));
        let in_frac = p > l;
        let zeros = || {
            if in_frac {
                rep(lit("0"), 0, None)
            } else {
                self.mode.zeros()
            }
        };
        if zeros_only || th {
            // Only zeros keep the value ≤ hi (or are allowed at all): the value stays put.
            return end_ok.then(zeros);
        }
        debug_assert!(tl);
        if !self.lo.exclusive {
            return Some(self.free(l, p));
        }
        // Equal to an exclusive lower bound so far: a nonzero digit must follow.
        let rest = seq(vec![
            rep(lit("0"), 0, None),
            digits(1, 9),
            rep(digits(0, 9), 0, None),
        ]);
        Some(if in_frac {
            rest
        } else {
            seq(vec![lit("."), rest])
        })
    }

    /// Every canonical unsigned text with a value in the range.
    fn build(&self) -> Option<Expr> {
        let a = self.lo.int_len;
        let b = self.hi.map(|h| h.int_len);
        let mut v = Vec::new();
        match b {
            Some(b) if b < a => return None,
            Some(b) if b == a => v.extend(self.gen(a, 0, true, true)),
            _ => {
                v.extend(self.gen(a, 0, true, false));
                // Free lengths a+1 ..= b-1 (or unbounded).
                let max_extra = b.map(|b| b.saturating_sub(1));
                if max_extra.map_or(true, |m| m > a) {
                    v.push(seq(vec![
                        digits(1, 9),
                        rep(digits(0, 9), count(a), max_extra.map(|m| count(m - 1))),
                        self.free_fraction(),
                    ]));
                }
                if let Some(b) = b {
                    v.extend(self.gen(b, 0, false, true));
                }
            }
        }
        alt(v)
    }
}

/// The positive part, the zero part and the negative part's bounds.
struct Split {
    /// Bounds on the magnitude of positive values (lower always present).
    pos: Option<(Bound, Option<Bound>)>,
    /// Bounds on the magnitude of negative values.
    neg: Option<(Bound, Option<Bound>)>,
    zero: bool,
}

fn contains(lo: Option<&Bound>, hi: Option<&Bound>, x: &Decimal) -> bool {
    lo.map_or(true, |b| match x.cmp(&b.value) {
        Ordering::Greater => true,
        Ordering::Equal => !b.exclusive,
        Ordering::Less => false,
    }) && hi.map_or(true, |b| match x.cmp(&b.value) {
        Ordering::Less => true,
        Ordering::Equal => !b.exclusive,
        Ordering::Greater => false,
    })
}

fn split(lo: Option<&Bound>, hi: Option<&Bound>) -> Split {
    let zero = Decimal::zero();
    let zero_excl = Bound {
        value: Decimal::zero(),
        exclusive: true,
    };
    let pos = if hi.is_some_and(|h| h.value <= zero) {
        None
    } else {
        let plo = match lo {
            Some(l) if l.value > zero => l.clone(),
            _ => zero_excl.clone(),
        };
        Some((plo, hi.cloned()))
    };
    let neg = if lo.is_some_and(|l| l.value >= zero) {
        None
    } else {
        let nlo = match hi {
            Some(h) if h.value < zero => Bound {
                value: h.value.negated(),
                exclusive: h.exclusive,
            },
            _ => zero_excl,
        };
        let nhi = lo.map(|l| Bound {
            value: l.value.negated(),
            exclusive: l.exclusive,
        });
        Some((nlo, nhi))
    };
    Split {
        pos,
        neg,
        zero: contains(lo, hi, &zero),
    }
}

fn magnitudes(lo: &Bound, hi: Option<&Bound>, mode: Mode) -> Option<Expr> {
    if let Some(h) = hi {
        match lo.value.cmp(&h.value) {
            Ordering::Greater => return None,
            Ordering::Equal if lo.exclusive || h.exclusive => return None,
            _ => {}
        }
    }
    let lo = Side::new(lo);
    let hi = hi.map(Side::new);
    Builder {
        lo: &lo,
        hi: hi.as_ref(),
        mode,
    }
    .build()
}

fn signed(lo: Option<&Bound>, hi: Option<&Bound>, mode: Mode) -> Option<Expr> {
    let s = split(lo, hi);
    let mut v = Vec::new();
    if s.zero {
        v.push(seq(vec![opt(lit("-")), lit("0"), mode.zeros()]));
    }
    if let Some((l, h)) = &s.pos {
        v.extend(magnitudes(l, h.as_ref(), mode));
    }
    if let Some((l, h)) = &s.neg {
        v.extend(magnitudes(l, h.as_ref(), mode).map(|e| seq(vec![lit("-"), e])));
    }
    alt(v)
}

/// Integer bounds as inclusive integers: `ceil`/`floor`, stepping past an
/// excluded integer. `None` for an empty range.
fn integer_bounds(
    lo: Option<&Bound>,
    hi: Option<&Bound>,
) -> Option<(Option<Bound>, Option<Bound>)> {
    let ilo = lo.map(|b| {
        let v = if b.exclusive && b.value.is_integer() {
            b.value.succ()
        } else {
            b.value.ceil()
        };
        Bound {
            value: v,
            exclusive: false,
        }
    });
    let ihi = hi.map(|b| {
        let v = if b.exclusive && b.value.is_integer() {
            b.value.pred()
        } else {
            b.value.floor()
        };
        Bound {
            value: v,
            exclusive: false,
        }
    });
    if let (Some(l), Some(h)) = (&ilo, &ihi) {
        if l.value > h.value {
            return None;
        }
    }
    Some((ilo, ihi))
}

/// The JSON texts of the integers `n` with `lo ≤ n ≤ hi` (each bound
/// inclusive or exclusive, possibly fractional).
///
/// Accepted texts: `-?(0|[1-9][0-9]*)` followed by the `form`'s tail
/// (`(\.0+)?` or nothing) with the value in range, where `-0` and `-0.0…`
/// count as 0. Exponent forms (`1e2`) are not produced.
/// Errors: an empty range ([`ErrorKind::Grammar`]).
pub fn integer_expr(lo: Option<&Bound>, hi: Option<&Bound>, form: IntForm) -> Result<Expr> {
    if lo.is_none() && hi.is_none() {
        return Ok(seq(vec![json_int(), form.tail()]));
    }
    let (ilo, ihi) = integer_bounds(lo, hi).ok_or_else(|| empty_range(lo, hi))?;
    signed(ilo.as_ref(), ihi.as_ref(), Mode::Int(form)).ok_or_else(|| empty_range(lo, hi))
}

/// The JSON number texts whose value is in range.
///
/// Without bounds: the whole JSON number syntax (exponents included). With
/// only one bound and that bound 0 (`minimum: 0`, `exclusiveMinimum: 0`,
/// `maximum: 0`, `exclusiveMaximum: 0`): the whole syntax too, exponents
/// included, since the sign and whether the mantissa is zero decide. Any
/// other bound: `-?(0|[1-9][0-9]*)(\.[0-9]+)?` only (no exponent; any number
/// of fraction digits, trailing zeros allowed), exactly those whose value is
/// in range. Errors: an empty range ([`ErrorKind::Grammar`]).
pub fn number_expr(lo: Option<&Bound>, hi: Option<&Bound>) -> Result<Expr> {
    match (lo, hi) {
        (None, None) => return Ok(json_number()),
        (Some(b), None) | (None, Some(b)) if b.value.is_zero() => {
            return Ok(sign_range(lo.is_some(), b.exclusive));
        }
        _ => {}
    }
    signed(lo, hi, Mode::Num(None)).ok_or_else(|| empty_range(lo, hi))
}

/// Every JSON number text `≥ 0` / `> 0` (`lower`) or `≤ 0` / `< 0`, exponents included.
fn sign_range(lower: bool, exclusive: bool) -> Expr {
    let frac = || opt(seq(vec![lit("."), rep(digits(0, 9), 1, None)]));
    let zero = seq(vec![lit("0"), zero_fraction()]);
    let nonzero = Expr::Alt(vec![
        seq(vec![
            lit("0."),
            rep(lit("0"), 0, None),
            digits(1, 9),
            rep(digits(0, 9), 0, None),
        ]),
        seq(vec![digits(1, 9), rep(digits(0, 9), 0, None), frac()]),
    ]);
    let exp = opt(seq(vec![
        Expr::Bytes(vec![(b'e', b'e'), (b'E', b'E')]),
        opt(Expr::Bytes(vec![(b'+', b'+'), (b'-', b'-')])),
        rep(digits(0, 9), 1, None),
    ]));
    let same = if lower { "" } else { "-" };
    let mut alts = vec![seq(vec![lit(same), nonzero])];
    if !exclusive {
        alts.push(seq(vec![opt(lit("-")), zero]));
    }
    seq(vec![Expr::Alt(alts), exp])
}

/// `multipleOf: m` for `type: number` with optional bounds.
///
/// - `m` a positive integer that fits `u64`: [`integer_multiple_of`].
/// - `m = 10^-k` (`0.1`, `0.01`, …): plain decimals in range whose fraction
///   digits after the `k`th are all `0` (`1.5`, `1.50`, `1.500` for `k = 2`).
/// - anything else (`0.3`, `2.5`, `0.05`): refused with [`ErrorKind::Grammar`].
pub fn number_multiple_of(
    m: &Decimal,
    lo: Option<&Bound>,
    hi: Option<&Bound>,
    rules: &mut Vec<Rule>,
) -> Result<Expr> {
    if let Some(k) = m.neg_power_of_ten() {
        return signed(lo, hi, Mode::Num(Some(k))).ok_or_else(|| empty_range(lo, hi));
    }
    if let Some(n) = m.to_u64().filter(|&n| n > 0) {
        return integer_multiple_of(n, lo, hi, IntForm::ZeroFraction, rules);
    }
    Err(Error::new(
        ErrorKind::Grammar,
        format!("multipleOf {m} for numbers is supported only for positive integers and 10^-k"),
    ))
}

// ---------------------------------------------------------------------------
// multipleOf for integers: range automaton × remainder automaton.

/// A state of the automaton of canonical naturals (≥ 1) in `[a, b]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum NatState {
    Start,
    /// Integer length `l`, `p` digits read, still equal to lo's / hi's prefix.
    Tight {
        l: usize,
        p: usize,
        tl: bool,
        th: bool,
    },
    /// Exactly `k` more digits, any.
    Exactly(usize),
    /// At least `k` more digits, any.
    AtLeast(usize),
}

struct NatRange<'a> {
    lo: &'a [u8],
    hi: Option<&'a [u8]>,
}

impl NatRange<'_> {
    fn accepting(&self, s: NatState) -> bool {
        match s {
            NatState::Start => false,
            NatState::Tight { l, p, .. } => p == l,
            NatState::Exactly(k) | NatState::AtLeast(k) => k == 0,
        }
    }

    fn next(&self, s: NatState, d: u8, out: &mut Vec<NatState>) {
        let lo_len = self.lo.len();
        match s {
            NatState::Start => {
                if d == 0 {
                    return;
                }
                let hi_len = self.hi.map(<[u8]>::len);
                // Length lo_len, tight on lo (and hi when equal length).
                let th = hi_len == Some(lo_len);
                let first = NatState::Tight {
                    l: lo_len,
                    p: 0,
                    tl: true,
                    th,
                };
                self.next(first, d, out);
                // Middle lengths.
                match hi_len {
                    None => out.push(NatState::AtLeast(lo_len)),
                    Some(hl) => {
                        for l in lo_len + 1..hl {
                            out.push(NatState::Exactly(l - 1));
                        }
                        if hl > lo_len {
                            let last = NatState::Tight {
                                l: hl,
                                p: 0,
                                tl: false,
                                th: true,
                            };
                            self.next(last, d, out);
                        }
                    }
                }
            }
            NatState::Tight { l, p, tl, th } => {
                if p >= l {
                    return;
                }
                let (mut ntl, mut nth) = (false, false);
                if tl {
                    match d.cmp(&self.lo[p]) {
                        Ordering::Less => return,
                        Ordering::Equal => ntl = true,
                        Ordering::Greater => {}
                    }
                }
                if th {
                    match d.cmp(&self.hi.map_or(9, |h| h[p])) {
                        Ordering::Greater => return,
                        Ordering::Equal => nth = true,
                        Ordering::Less => {}
                    }
                }
                out.push(if ntl || nth {
                    NatState::Tight {
                        l,
                        p: p + 1,
                        tl: ntl,
                        th: nth,
                    }
                } else {
                    NatState::Exactly(l - p - 1)
                });
            }
            NatState::Exactly(k) => {
                if k > 0 {
                    out.push(NatState::Exactly(k - 1));
                }
            }
            NatState::AtLeast(k) => out.push(NatState::AtLeast(k.saturating_sub(1))),
        }
    }
}

/// Build right-linear rules for naturals in `[lo, hi]` divisible by `m`;
/// returns the start rule, or `None` if there is no such natural.
fn multiple_rules(
    m: u64,
    lo: &[u8],
    hi: Option<&[u8]>,
    form: IntForm,
    rules: &mut Vec<Rule>,
    budget: &mut usize,
) -> Result<Option<u32>> {
    let nat = NatRange { lo, hi };
    type Key = (NatState, u64);
    let mut ids: HashMap<Key, usize> = HashMap::new();
    let mut states: Vec<Key> = vec![(NatState::Start, 0)];
    ids.insert((NatState::Start, 0), 0);
    let mut edges: Vec<Vec<(u8, usize)>> = Vec::new();
    let mut i = 0;
    let mut buf = Vec::new();
    while i < states.len() {
        let (s, r) = states[i];
        let mut out = Vec::new();
        for d in 0..=9u8 {
            buf.clear();
            nat.next(s, d, &mut buf);
            for &t in &buf {
                let key = (t, (r * 10 + u64::from(d)) % m);
                let id = if let Some(&id) = ids.get(&key) {
                    id
                } else {
                    if states.len() >= *budget {
                        return Err(Error::limit(format!(
                            "multipleOf {m} with these bounds needs more than \
                             {MAX_PRODUCT_STATES} automaton states, exceeds the limit"
                        )));
                    }
                    ids.insert(key, states.len());
                    states.push(key);
                    states.len() - 1
                };
                out.push((d, id));
            }
        }
        edges.push(out);
        i += 1;
    }
    *budget -= states.len();
    // Liveness: states that can reach acceptance.
    let n = states.len();
    let mut live: Vec<bool> = states
        .iter()
        .map(|&(s, r)| nat.accepting(s) && r == 0)
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for q in 0..n {
            if !live[q] && edges[q].iter().any(|&(_, t)| live[t]) {
                live[q] = true;
                changed = true;
            }
        }
    }
    if !live[0] {
        return Ok(None);
    }
    let base = rules.len();
    let mut rid = vec![usize::MAX; n];
    let mut k = 0;
    for q in 0..n {
        if live[q] {
            rid[q] = base + k;
            k += 1;
        }
    }
    for q in 0..n {
        if !live[q] {
            continue;
        }
        let (s, r) = states[q];
        let mut by_target: Vec<(usize, Vec<(u8, u8)>)> = Vec::new();
        for &(d, t) in &edges[q] {
            if !live[t] {
                continue;
            }
            let c = b'0' + d;
            match by_target.iter_mut().find(|(x, _)| *x == t) {
                Some((_, ranges)) => match ranges.last_mut() {
                    Some(last) if last.1 + 1 == c => last.1 = c,
                    _ => ranges.push((c, c)),
                },
                None => by_target.push((t, vec![(c, c)])),
            }
        }
        let mut alts = Vec::new();
        if nat.accepting(s) && r == 0 {
            alts.push(form.tail());
        }
        for (t, ranges) in by_target {
            alts.push(Expr::Seq(vec![
                Expr::Bytes(ranges),
                Expr::Rule(count(rid[t])),
            ]));
        }
        rules.push(Rule {
            name: format!("multiple_of_{m}_{}", rid[q]),
            body: alt(alts).unwrap_or(Expr::Empty),
            span: None,
        });
    }
    Ok(Some(count(rid[0])))
}

/// The JSON texts of integers divisible by `m` (`m ≥ 1`) within the bounds.
///
/// The texts are those of [`integer_expr`] in the same `form`
/// (`-?(0|[1-9][0-9]*)(\.0+)?` or without the zeros, `-0` only where 0 is in
/// range). For `m > 1` the result is an
/// [`Expr::Rule`] into helper rules appended to `rules` (right-linear, one per
/// live pair of range-automaton state and remainder mod `m`; rule ids are
/// indices into `rules`). Errors: `m == 0` or an empty range
/// ([`ErrorKind::Grammar`]); more than [`MAX_PRODUCT_STATES`] pairs
/// ([`ErrorKind::Limit`]).
pub fn integer_multiple_of(
    m: u64,
    lo: Option<&Bound>,
    hi: Option<&Bound>,
    form: IntForm,
    rules: &mut Vec<Rule>,
) -> Result<Expr> {
    if m == 0 {
        return Err(Error::new(
            ErrorKind::Grammar,
            "multipleOf must be positive",
        ));
    }
    if m == 1 {
        return integer_expr(lo, hi, form);
    }
    let (ilo, ihi) = integer_bounds(lo, hi).ok_or_else(|| empty_range(lo, hi))?;
    let s = split(ilo.as_ref(), ihi.as_ref());
    let one = Decimal::from_mag(false, vec![1]);
    // Inclusive integer magnitude bounds, lower ≥ 1.
    let mag = |b: &Bound, is_lo: bool| -> Decimal {
        if b.value.is_zero() && b.exclusive {
            one.clone()
        } else if b.exclusive {
            if is_lo {
                b.value.succ()
            } else {
                b.value.pred()
            }
        } else {
            b.value.clone()
        }
    };
    let mut budget = MAX_PRODUCT_STATES;
    let mut v = Vec::new();
    if s.zero {
        v.push(seq(vec![opt(lit("-")), lit("0"), form.tail()]));
    }
    for (part, sign) in [(&s.pos, ""), (&s.neg, "-")] {
        let Some((l, h)) = part else { continue };
        let l = mag(l, true);
        let h = h.as_ref().map(|h| mag(h, false));
        if h.as_ref().is_some_and(|h| *h < l) {
            continue;
        }
        if let Some(id) = multiple_rules(
            m,
            &l.int,
            h.as_ref().map(|h| &h.int[..]),
            form,
            rules,
            &mut budget,
        )? {
            v.push(seq(vec![lit(sign), Expr::Rule(id)]));
        }
    }
    alt(v).ok_or_else(|| {
        Error::new(
            ErrorKind::Grammar,
            format!("no multiple of {m} lies in the numeric range"),
        )
    })
}

/// A tiny reference matcher over the IR, for tests of this module and of
/// `formats` (independent of the automaton; Token and Permutation unsupported).
#[cfg(test)]
pub(crate) mod testing {
    use crate::grammar::{Expr, Rule};
    use std::collections::HashMap;

    /// True if `e` (with helper `rules`) matches all of `s`.
    pub(crate) fn matches(rules: &[Rule], e: &Expr, s: &[u8]) -> bool {
        let mut m = M {
            rules,
            s,
            memo: HashMap::new(),
        };
        let mut start = vec![false; s.len() + 1];
        start[0] = true;
        m.ends(e, &start)[s.len()]
    }

    struct M<'a> {
        rules: &'a [Rule],
        s: &'a [u8],
        memo: HashMap<(u32, usize), Vec<bool>>,
    }

    impl M<'_> {
        fn ends(&mut self, e: &Expr, start: &[bool]) -> Vec<bool> {
            let n = self.s.len();
            let mut out = vec![false; n + 1];
            if !start.iter().any(|&b| b) {
                return out;
            }
            match e {
                Expr::Empty => out.copy_from_slice(start),
                Expr::Literal(b) => {
                    for i in (0..=n).filter(|&i| start[i]) {
                        if self.s[i..].starts_with(b) {
                            out[i + b.len()] = true;
                        }
                    }
                }
                Expr::Bytes(r) => {
                    for i in (0..n).filter(|&i| start[i]) {
                        if r.iter().any(|&(a, b)| a <= self.s[i] && self.s[i] <= b) {
                            out[i + 1] = true;
                        }
                    }
                }
                Expr::Class { negated, ranges } => {
                    for i in (0..n).filter(|&i| start[i]) {
                        let rest = &self.s[i..];
                        let len = match rest[0] {
                            0..=0x7f => 1,
                            0xc0..=0xdf => 2,
                            0xe0..=0xef => 3,
                            _ => 4,
                        };
                        let Some(c) = rest
                            .get(..len)
                            .and_then(|b| std::str::from_utf8(b).ok())
                            .and_then(|t| t.chars().next())
                        else {
                            continue;
                        };
                        let c = c as u32;
                        let inside = ranges.iter().any(|&(a, b)| a <= c && c <= b);
                        if inside != *negated {
                            out[i + len] = true;
                        }
                    }
                }
                Expr::Rule(id) => {
                    for i in (0..=n).filter(|&i| start[i]) {
                        let r = if let Some(r) = self.memo.get(&(*id, i)) {
                            r.clone()
                        } else {
                            let mut st = vec![false; n + 1];
                            st[i] = true;
                            let body = &self.rules[*id as usize].body;
                            let r = self.ends(body, &st);
                            self.memo.insert((*id, i), r.clone());
                            r
                        };
                        for (o, x) in out.iter_mut().zip(r) {
                            *o |= x;
                        }
                    }
                }
                Expr::Seq(v) => {
                    let mut cur = start.to_vec();
                    for x in v {
                        cur = self.ends(x, &cur);
                    }
                    out = cur;
                }
                Expr::Alt(v) => {
                    for x in v {
                        let r = self.ends(x, start);
                        for (o, x) in out.iter_mut().zip(r) {
                            *o |= x;
                        }
                    }
                }
                Expr::Repeat { expr, min, max } => {
                    let mut cur = start.to_vec();
                    if *min == 0 {
                        out.copy_from_slice(start);
                    }
                    let mut i = 0u32;
                    loop {
                        if max.is_some_and(|m| i >= m) {
                            break;
                        }
                        i += 1;
                        let next = self.ends(expr, &cur);
                        if !next.iter().any(|&b| b) {
                            break;
                        }
                        let mut grew = false;
                        if i >= *min {
                            for (o, &x) in out.iter_mut().zip(&next) {
                                grew |= x && !*o;
                                *o |= x;
                            }
                            if !grew && next == cur {
                                break;
                            }
                        }
                        cur = next;
                        if i > *min + n as u32 + 2 && !grew {
                            break;
                        }
                    }
                }
                Expr::Token { .. } | Expr::Permutation { .. } => {
                    unimplemented!("not used by the schema leaf modules")
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::matches;
    use super::*;

    /// A small fixed-seed PRNG (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn b(text: &str, exclusive: bool) -> Bound {
        Bound {
            value: Decimal::parse(text).unwrap(),
            exclusive,
        }
    }

    fn in_range(lo: Option<&Bound>, hi: Option<&Bound>, x: &Decimal) -> bool {
        contains(lo, hi, x)
    }

    /// Scaled exact value of a small decimal text: value * 10^20 as i128.
    fn scaled(text: &str) -> Option<i128> {
        let (neg, t) = text.strip_prefix('-').map_or((false, text), |t| (true, t));
        let (i, f) = t.split_once('.').unwrap_or((t, ""));
        if i.len() > 15 || f.len() > 20 {
            return None;
        }
        let mut f = f.to_owned();
        while f.len() < 20 {
            f.push('0');
        }
        let v: i128 = i.parse::<i128>().ok()? * 10i128.pow(20) + f.parse::<i128>().ok()?;
        Some(if neg { -v } else { v })
    }

    /// The oracle for a text in plain JSON syntax: independent i128 arithmetic
    /// where the numbers are small, exact `Decimal` comparison otherwise.
    fn oracle(lo: Option<&Bound>, hi: Option<&Bound>, text: &str) -> bool {
        let v = Decimal::parse(text).unwrap();
        let by_decimal = in_range(lo, hi, &v);
        // None: no bound; Some(None): a bound too big for i128.
        let small = |bd: Option<&Bound>| bd.map(|x| scaled(&x.value.to_string()));
        let (l, h) = (small(lo), small(hi));
        if let Some(x) = scaled(text) {
            if l.map_or(true, |l| l.is_some()) && h.map_or(true, |h| h.is_some()) {
                let ok_lo = match (lo, l.flatten()) {
                    (Some(b), Some(l)) => x > l || (x == l && !b.exclusive),
                    _ => true,
                };
                let ok_hi = match (hi, h.flatten()) {
                    (Some(b), Some(h)) => x < h || (x == h && !b.exclusive),
                    _ => true,
                };
                assert_eq!(ok_lo && ok_hi, by_decimal, "oracles disagree on {text}");
            }
        }
        by_decimal
    }

    const BOUNDS: &[&str] = &[
        "0",
        "-0",
        "1",
        "-1",
        "0.5",
        "-0.5",
        "7",
        "9",
        "10",
        "-10",
        "99",
        "100",
        "101",
        "-100",
        "123",
        "-123",
        "999",
        "1000",
        "0.1",
        "0.01",
        "-0.01",
        "1.25",
        "-1.25",
        "12.75",
        "19.5",
        "1e2",
        "2.5e1",
        "-3.05",
        "1234.5678",
        "-999.999",
        "0.0001",
    ];

    fn int_text_variants(n: i128) -> Vec<String> {
        let mut v = vec![n.to_string(), format!("{n}.0"), format!("{n}.000")];
        if n == 0 {
            v.extend(["-0".to_owned(), "-0.0".to_owned()]);
        }
        v
    }

    fn check_integers(
        lo: Option<&Bound>,
        hi: Option<&Bound>,
        form: IntForm,
        e: &Expr,
        rules: &[Rule],
        m: u64,
    ) {
        let centre: Vec<i128> = [lo, hi]
            .iter()
            .flatten()
            .filter_map(|x| scaled(&x.value.to_string()).map(|v| v / 10i128.pow(20)))
            .collect();
        let centre = if centre.is_empty() { vec![0] } else { centre };
        for c in centre {
            for n in c - 40..=c + 40 {
                for t in int_text_variants(n) {
                    let spelled = form == IntForm::ZeroFraction || !t.contains('.');
                    let want = spelled && oracle(lo, hi, &t) && n % i128::from(m) == 0;
                    assert_eq!(
                        matches(rules, e, t.as_bytes()),
                        want,
                        "{t} in {lo:?}..{hi:?} %{m} {form:?}"
                    );
                }
            }
        }
        for bad in [
            "", "-", "01", "+1", "1.", ".5", "1e2", "00", "-01", "1.5", "0.10", "1 ",
        ] {
            assert!(!matches(rules, e, bad.as_bytes()), "{bad}");
        }
    }

    fn pairs() -> Vec<(Option<Bound>, Option<Bound>)> {
        let mut v = Vec::new();
        let all: Vec<Bound> = BOUNDS
            .iter()
            .flat_map(|t| [b(t, false), b(t, true)])
            .collect();
        for x in &all {
            v.push((Some(x.clone()), None));
            v.push((None, Some(x.clone())));
            for y in &all {
                if x.value <= y.value {
                    v.push((Some(x.clone()), Some(y.clone())));
                }
            }
        }
        v.push((None, None));
        v
    }

    #[test]
    fn decimal_parse_and_order() {
        let d = |t: &str| Decimal::parse(t).unwrap();
        assert_eq!(d("1e308").to_string().len(), 309);
        assert_eq!(d("9007199254740993").to_string(), "9007199254740993");
        assert_eq!(d("0.1").to_string(), "0.1");
        assert_eq!(d("-0.5").to_string(), "-0.5");
        assert_eq!(d("1.0e-3").to_string(), "0.001");
        assert_eq!(d("1.2345e2").to_string(), "123.45");
        assert_eq!(d("-0"), d("0"));
        assert!(d("-2") < d("-1.5") && d("-1.5") < d("0") && d("0.09") < d("0.1"));
        assert!(d("9007199254740993") > d("9007199254740992"));
        for bad in ["", "-", "1.2.3", "e5", "1e", "0x10", "1 2"] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Decimal::parse("1e99999").unwrap_err().kind(),
            ErrorKind::Limit
        );
        assert_eq!(d("2.5").ceil().to_string(), "3");
        assert_eq!(d("-2.5").ceil().to_string(), "-2");
        assert_eq!(d("-2.5").floor().to_string(), "-3");
        assert_eq!(d("0").pred().to_string(), "-1");
        assert_eq!(d("-1").succ().to_string(), "0");
    }

    #[test]
    fn integer_ranges_match_arithmetic() {
        let mut n = 0;
        for ((lo, hi), form) in pairs()
            .into_iter()
            .flat_map(|p| [(p.clone(), IntForm::ZeroFraction), (p, IntForm::Plain)])
        {
            match integer_expr(lo.as_ref(), hi.as_ref(), form) {
                Ok(e) => check_integers(lo.as_ref(), hi.as_ref(), form, &e, &[], 1),
                Err(err) => {
                    // Only when no integer lies in range.
                    let l = lo.as_ref().unwrap();
                    let il = if l.exclusive && l.value.is_integer() {
                        l.value.succ()
                    } else {
                        l.value.ceil()
                    };
                    assert!(!in_range(lo.as_ref(), hi.as_ref(), &il), "{err}");
                    assert_eq!(err.kind(), ErrorKind::Grammar);
                }
            }
            n += 1;
        }
        assert!(n > 2000);
    }

    fn random_decimal(r: &mut Rng, near: &[String]) -> String {
        if !near.is_empty() && r.below(3) == 0 {
            // Perturb a bound's text: change or append digits.
            let mut t = near[r.below(near.len() as u64) as usize]
                .clone()
                .into_bytes();
            match r.below(4) {
                0 => t.extend_from_slice(if t.contains(&b'.') { b"0" } else { b".0" }),
                1 => {
                    if !t.contains(&b'.') {
                        t.push(b'.');
                    }
                    t.push(b'0' + r.below(10) as u8);
                }
                2 => {
                    let i = r.below(t.len() as u64) as usize;
                    if t[i].is_ascii_digit() && !(i == 0 || t[i - 1] == b'-') {
                        t[i] = b'0' + r.below(10) as u8;
                    }
                }
                _ => {
                    if t[0] == b'-' {
                        t.remove(0);
                    } else {
                        t.insert(0, b'-');
                    }
                }
            }
            let s = String::from_utf8(t).unwrap();
            if s != "-" && Decimal::parse(&s).is_ok() && !s.contains("-.") {
                return s;
            }
        }
        let mut s = String::new();
        if r.below(2) == 0 {
            s.push('-');
        }
        let il = r.below(5);
        if il == 0 {
            s.push('0');
        } else {
            s.push(char::from(b'1' + r.below(9) as u8));
            for _ in 1..il {
                s.push(char::from(b'0' + r.below(10) as u8));
            }
        }
        if r.below(3) != 0 {
            s.push('.');
            for _ in 0..=r.below(6) {
                s.push(char::from(b'0' + r.below(10) as u8));
            }
        }
        s
    }

    fn canonical_json(t: &str) -> bool {
        let u = t.strip_prefix('-').unwrap_or(t);
        let (i, f) = u.split_once('.').map_or((u, None), |(a, b)| (a, Some(b)));
        !i.is_empty()
            && i.bytes().all(|c| c.is_ascii_digit())
            && (i == "0" || !i.starts_with('0'))
            && f.map_or(true, |f| {
                !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit())
            })
    }

    #[test]
    fn number_ranges_match_arithmetic() {
        let mut r = Rng(0x5eed_1234);
        let mut checked = 0;
        for (lo, hi) in pairs() {
            let (lo, hi) = (lo.as_ref(), hi.as_ref());
            let e = match number_expr(lo, hi) {
                Ok(e) => e,
                Err(err) => {
                    let (l, h) = (lo.unwrap(), hi.unwrap());
                    assert!(l.value == h.value && (l.exclusive || h.exclusive), "{err}");
                    continue;
                }
            };
            let near: Vec<String> = [lo, hi]
                .iter()
                .flatten()
                .map(|x| x.value.to_string())
                .collect();
            for _ in 0..60 {
                let t = random_decimal(&mut r, &near);
                if !canonical_json(&t) {
                    continue;
                }
                let want = oracle(lo, hi, &t);
                assert_eq!(
                    matches(&[], &e, t.as_bytes()),
                    want,
                    "{t} in {lo:?}..{hi:?}"
                );
                checked += 1;
            }
            // Exact bound values, with trailing zeros.
            for x in &near {
                for t in [x.clone(), format!("{x}0"), format!("{x}.000")] {
                    if canonical_json(&t) {
                        assert_eq!(matches(&[], &e, t.as_bytes()), oracle(lo, hi, &t), "{t}");
                    }
                }
            }
            for bad in ["01", "1.", ".5", "+1", "", "-", "--1", "1e", "1e+"] {
                assert!(!matches(&[], &e, bad.as_bytes()), "{bad}");
            }
            // Exponents only where the one bound is 0 (or there is none).
            let sign_only = match (lo, hi) {
                (Some(x), None) | (None, Some(x)) => x.value.is_zero(),
                (None, None) => true,
                _ => false,
            };
            for t in ["1e2", "0.5e0", "-2E-3", "0e7"] {
                let want = sign_only && in_range(lo, hi, &Decimal::parse(t).unwrap());
                assert_eq!(matches(&[], &e, t.as_bytes()), want, "{t} {lo:?} {hi:?}");
            }
        }
        assert!(checked > 20_000, "{checked}");
    }

    #[test]
    fn unbounded_is_full_json_syntax() {
        let e = number_expr(None, None).unwrap();
        for t in ["0", "-0", "1e5", "1E+5", "-1.5e-3", "0.0", "123.456E7"] {
            assert!(matches(&[], &e, t.as_bytes()), "{t}");
        }
        for t in ["01", "1.", ".1", "+1", "1e", "e1", "--1", "1.e3"] {
            assert!(!matches(&[], &e, t.as_bytes()), "{t}");
        }
        let i = integer_expr(None, None, IntForm::ZeroFraction).unwrap();
        assert!(matches(&[], &i, b"-12.00") && !matches(&[], &i, b"1.5"));
        let i = integer_expr(None, None, IntForm::Plain).unwrap();
        assert!(matches(&[], &i, b"-12") && !matches(&[], &i, b"-12.00"));
    }

    #[test]
    fn zero_bounds_keep_exponents() {
        let mut r = Rng(4242);
        for (is_lo, excl) in [(true, false), (true, true), (false, false), (false, true)] {
            let bd = b("0", excl);
            let (lo, hi) = if is_lo {
                (Some(&bd), None)
            } else {
                (None, Some(&bd))
            };
            let e = number_expr(lo, hi).unwrap();
            let full = json_number();
            for _ in 0..4000 {
                let mut t = random_decimal(&mut r, &["0".to_owned(), "-0.0".to_owned()]);
                if r.below(2) == 0 {
                    let sign = ["", "+", "-"][r.below(3) as usize];
                    t = format!(
                        "{t}{}{sign}{}",
                        ["e", "E"][r.below(2) as usize],
                        r.below(40)
                    );
                }
                let valid_syntax = matches(&[], &full, t.as_bytes());
                let want = valid_syntax && in_range(lo, hi, &Decimal::parse(&t).unwrap());
                assert_eq!(matches(&[], &e, t.as_bytes()), want, "{t} {lo:?} {hi:?}");
            }
        }
    }

    #[test]
    fn big_bounds() {
        let lo = b("-1e308", false);
        let hi = b("1e308", false);
        let e = number_expr(Some(&lo), Some(&hi)).unwrap();
        let big = format!("1{}", "0".repeat(308));
        assert!(matches(&[], &e, big.as_bytes()));
        assert!(matches(&[], &e, format!("{big}.000").as_bytes()));
        assert!(!matches(&[], &e, format!("{big}.001").as_bytes()));
        assert!(matches(&[], &e, format!("-{big}").as_bytes()));
        assert!(!matches(&[], &e, format!("{big}0").as_bytes()));
        assert!(matches(&[], &e, format!("9{}", "9".repeat(307)).as_bytes()));
        let lo = b("9007199254740993", true);
        let i = integer_expr(Some(&lo), None, IntForm::ZeroFraction).unwrap();
        assert!(!matches(&[], &i, b"9007199254740993"));
        assert!(matches(&[], &i, b"9007199254740994"));
        assert!(matches(&[], &i, b"90071992547409930"));
        let hi = b("9007199254740993", false);
        let i = integer_expr(None, Some(&hi), IntForm::ZeroFraction).unwrap();
        assert!(matches(&[], &i, b"9007199254740993") && !matches(&[], &i, b"9007199254740994"));
        assert!(matches(&[], &i, b"-99999999999999999999"));
        // The expression is linear in the digits of the bounds.
        fn size(e: &Expr) -> usize {
            match e {
                Expr::Seq(v) | Expr::Alt(v) => 1 + v.iter().map(size).sum::<usize>(),
                Expr::Repeat { expr, .. } => 1 + size(expr),
                _ => 1,
            }
        }
        let e = number_expr(
            Some(&b("-1.2345678901234567e300", false)),
            Some(&b("9.87e301", true)),
        );
        assert!(size(&e.unwrap()) < 40 * 310);
    }

    #[test]
    fn multiple_of_integers() {
        let mut r = Rng(77);
        let mut cases = 0;
        for (lo, hi) in pairs() {
            if r.below(8) != 0 {
                continue;
            }
            for m in [2u64, 3, 7, 10, 25] {
                let form = [IntForm::ZeroFraction, IntForm::Plain][cases % 2];
                let mut rules = Vec::new();
                match integer_multiple_of(m, lo.as_ref(), hi.as_ref(), form, &mut rules) {
                    Ok(e) => check_integers(lo.as_ref(), hi.as_ref(), form, &e, &rules, m),
                    Err(err) => assert_eq!(err.kind(), ErrorKind::Grammar, "{err}"),
                }
                cases += 1;
            }
        }
        assert!(cases > 300, "{cases}");
        let mut rules = Vec::new();
        let e = integer_multiple_of(7, None, None, IntForm::ZeroFraction, &mut rules).unwrap();
        for n in -500i64..500 {
            assert_eq!(
                matches(&rules, &e, n.to_string().as_bytes()),
                n % 7 == 0,
                "{n}"
            );
        }
        assert!(matches(&rules, &e, b"700000000000000000000000007"));
        assert!(!matches(&rules, &e, b"700000000000000000000000008"));
        // Too large a product is refused with a limit error.
        let mut rules = Vec::new();
        let err = integer_multiple_of(
            9973,
            Some(&b("0", false)),
            Some(&b("1e40", false)),
            IntForm::ZeroFraction,
            &mut rules,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit);
        assert!(integer_multiple_of(0, None, None, IntForm::Plain, &mut rules).is_err());
        let err = integer_multiple_of(
            10,
            Some(&b("11", false)),
            Some(&b("19", false)),
            IntForm::Plain,
            &mut rules,
        );
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Grammar);
    }

    #[test]
    fn multiple_of_numbers() {
        let mut rules = Vec::new();
        let m = Decimal::parse("0.01").unwrap();
        let (lo, hi) = (b("-1.5", false), b("2.005", true));
        let e = number_multiple_of(&m, Some(&lo), Some(&hi), &mut rules).unwrap();
        let mut r = Rng(99);
        for _ in 0..20_000 {
            let t = random_decimal(&mut r, &["-1.5".to_owned(), "2.005".to_owned()]);
            if !canonical_json(&t) {
                continue;
            }
            let v = Decimal::parse(&t).unwrap();
            let want = in_range(Some(&lo), Some(&hi), &v) && v.frac.len() <= 2;
            assert_eq!(matches(&rules, &e, t.as_bytes()), want, "{t}");
        }
        for t in [
            "2", "2.00", "2.000000", "-1.50", "0.01", "1.99", "-0", "0.00",
        ] {
            assert!(matches(&rules, &e, t.as_bytes()), "{t}");
        }
        for t in ["2.01", "2.005", "-1.51", "0.001", "1.995"] {
            assert!(!matches(&rules, &e, t.as_bytes()), "{t}");
        }
        let e =
            number_multiple_of(&Decimal::parse("0.1").unwrap(), None, None, &mut rules).unwrap();
        assert!(matches(&rules, &e, b"-12345.6000") && !matches(&rules, &e, b"0.05"));
        let e = number_multiple_of(&Decimal::parse("5").unwrap(), None, None, &mut rules).unwrap();
        assert!(matches(&rules, &e, b"-15.0") && !matches(&rules, &e, b"12"));
        for m in ["0.3", "2.5", "0.05", "-1", "0"] {
            let err = number_multiple_of(&Decimal::parse(m).unwrap(), None, None, &mut rules);
            assert_eq!(err.unwrap_err().kind(), ErrorKind::Grammar, "{m}");
        }
    }
}
