//! JSON Schema `format` as regular languages over the string's characters.
//!
//! # Overview
//!
//! [`format_expr`] gives, for a format name, an [`Expr`] matching exactly the
//! *decoded* string values (the characters between the quotes after JSON
//! unescaping) that are valid for the format, or `None` where corral cannot
//! give an exact regular language (the caller then fails closed).
//! [`format_grammar`] also returns the formats corral enforces as a documented
//! *sound subset* (every accepted string is valid, some valid strings are not
//! produced), with the restriction spelled out; today those are
//! `hostname`, `time` and `date-time`.
//!
//! Three formats can contain characters JSON must escape (`email` in a quoted
//! local part, `json-pointer` and `relative-json-pointer` anywhere); wrap
//! their expression in [`json_escaped`] to get the text between the quotes.
//!
//! | format | language | reference |
//! |---|---|---|
//! | `date` | `YYYY-MM-DD`, year 0001–9999, real day of month incl. Feb 29 in Gregorian leap years | python-jsonschema (`date.fromisoformat` after an ASCII regex) |
//! | `time` | sound subset (see [`TIME_RESTRICTION`]) of RFC 3339 `full-time`: `HH:MM:SS(.f+)?` + `Z`/`z`/`±HH:MM`; second 60 only as `23:59:60(.f+)?` with offset `Z`, `z`, `+00:00` or `-00:00` | RFC 3339 and the JSON-Schema-Test-Suite (python-jsonschema's `rfc3339_validator` has no leap seconds) |
//! | `date-time` | sound subset: `date` `T`/`t` `time` (leap second as for `time`; the date is not checked against the leap-second table) | as above |
//! | `duration` | RFC 3339 appendix A `duration` (ISO 8601): `P` with Y/M/D, optional `T` H/M/S, or W alone; integers only | JSON Schema 2020-12 appendix |
//! | `email` | RFC 5321 `Mailbox`: dot-atom or quoted-string local part, domain of LDH labels or `[IPv4]`/`[IPv6:…]` literal; no length limits | RFC 5321 (python-jsonschema only checks for `@`) |
//! | `hostname` | sound subset (see [`format_grammar`]) | RFC 1123 |
//! | `ipv4` | dotted quad, 0–255, no leading zeros | Python `ipaddress` |
//! | `ipv6` | RFC 4291 text forms incl. `::` and embedded IPv4; no zone id | Python `ipaddress` / RFC 3986 `IPv6address` |
//! | `uuid` | `8-4-4-4-12` hex digits, any case | RFC 4122 and the test suite (python-jsonschema also takes extra `-` elsewhere, e.g. a trailing one) |
//! | `uri`, `uri-reference` | RFC 3986 `URI` / `URI-reference` | RFC 3986 (`rfc3987` is not installed) |
//! | `uri-template` | RFC 6570 level 4 syntax (apostrophe allowed in literals, per the test suite) | RFC 6570 |
//! | `json-pointer`, `relative-json-pointer` | RFC 6901 / draft-handrews-relative-json-pointer | `jsonpointer` for `json-pointer`; for the relative form the draft and the test suite (python-jsonschema wrongly rejects a `0` after another digit, as in `100`) |
//!
//! Outside leap seconds and the two notes above, the formats were
//! cross-checked against python-jsonschema 4.26's draft 2020-12 checker on
//! about 31,000 mutated strings (`date`, `date-time`, `time`, `ipv4`,
//! `ipv6`, `uuid`, `json-pointer`, `relative-json-pointer`; `time` and
//! `date-time` then still had the exact leap-second rule, the non-leap part
//! is unchanged) with no other difference.
//!
//! Cost: the exact leap-second rule (second 60 wherever the time converted to
//! UTC is 23:59) pairs each local `HH:MM` with its offset across the
//! unbounded fraction, so a DFA for it must keep the 1,440 local minutes
//! apart before, inside and after the fraction (at least 4,320 states even
//! when minimised); built here it took about 22,000 DFA states and 0.2–0.3 s
//! to compile in a release build, far over the compile budget. `time` and `date-time` are therefore the subset
//! above (40 and 136 states, under a millisecond to compile); the other
//! formats build at most about 2,200 (`hostname`, written out without
//! counters, about 2.5 ms).
//!
//! Refused (`None`): `regex` (not regular), `idn-email`, `idn-hostname`, `iri`,
//! `iri-reference` (need IDNA/Unicode tables), and unknown names.
//!
//! # Example
//!
//! ```
//! use corral_core::grammar::schema::formats::{format_expr, format_grammar};
//! assert!(format_expr("date").is_some());
//! assert!(format_expr("regex").is_none());
//! assert!(format_expr("hostname").is_none()); // not exact ...
//! let h = format_grammar("hostname").unwrap(); // ... but a sound subset is offered
//! assert!(h.restriction.is_some());
//! ```

use super::super::regex::parse_regex;
use crate::grammar::Expr;

/// A format's language with a note on what it leaves out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatGrammar {
    /// Matches the decoded string values (see the module docs).
    pub expr: Expr,
    /// `None` if `expr` is exactly the valid strings; otherwise what valid
    /// strings it does not accept (it never accepts an invalid one).
    pub restriction: Option<&'static str>,
}

/// Restriction of the `hostname` subset.
pub const HOSTNAME_RESTRICTION: &str =
    "hostname: labels whose 3rd and 4th characters are both `-` \
     (IDNA A-labels `xn--…`, whose validity needs Punycode and IDNA tables) are not produced, \
     and the 253-character total is enforced by allowing at most 3 labels of up to 63 \
     characters, 4 of up to 62, 8 of up to 30, 16 of up to 14, 42 of up to 5 or 127 of 1";

/// Restriction of the `time` subset (and of the time part of `date-time`).
pub const TIME_RESTRICTION: &str =
    "time: a leap second (second 60) is produced only as `23:59:60` (with optional fraction) \
     in UTC, i.e. with offset `Z`, `z`, `+00:00` or `-00:00`; leap seconds with any other \
     offset (valid where the time converted to UTC is 23:59, e.g. `15:59:60-08:00`) are not \
     produced";

/// Restriction of the `date-time` subset.
pub const DATE_TIME_RESTRICTION: &str =
    "date-time: a leap second (second 60) is produced only as `T23:59:60` (with optional \
     fraction) in UTC, i.e. with offset `Z`, `z`, `+00:00` or `-00:00`; leap seconds with any \
     other offset (valid where the time converted to UTC is 23:59, e.g. \
     `1998-12-31T15:59:60.123-08:00`) are not produced";

/// The exact language of `format: name` over decoded string content, or
/// `None` if corral cannot enforce it exactly (see the module docs).
pub fn format_expr(name: &str) -> Option<Expr> {
    format_grammar(name)
        .filter(|f| f.restriction.is_none())
        .map(|f| f.expr)
}

/// Like [`format_expr`], but also returns sound subsets, with their restriction.
pub fn format_grammar(name: &str) -> Option<FormatGrammar> {
    let exact = |expr| {
        Some(FormatGrammar {
            expr,
            restriction: None,
        })
    };
    let subset = |expr, restriction| {
        Some(FormatGrammar {
            expr,
            restriction: Some(restriction),
        })
    };
    match name {
        "date" => exact(re(&date())),
        "time" => subset(re(&time()), TIME_RESTRICTION),
        "date-time" => subset(
            re(&format!("{}[Tt]{}", date(), time())),
            DATE_TIME_RESTRICTION,
        ),
        "duration" => exact(re(&duration())),
        "email" => exact(re(&email())),
        "hostname" => subset(
            super::strings::unrolled(re(&hostname())),
            HOSTNAME_RESTRICTION,
        ),
        "ipv4" => exact(re(&ipv4())),
        "ipv6" => exact(re(&ipv6())),
        "uuid" => exact(re(&format!(
            "{H}{{8}}-{H}{{4}}-{H}{{4}}-{H}{{4}}-{H}{{12}}"
        ))),
        "uri" => exact(re(&uri())),
        "uri-reference" => exact(re(&format!("(?:{}|{})", uri(), relative_ref()))),
        "uri-template" => exact(re(&uri_template())),
        "json-pointer" => exact(re(JSON_POINTER)),
        "relative-json-pointer" => exact(re(&format!("(?:0|[1-9][0-9]*)(?:#|{JSON_POINTER})"))),
        _ => None,
    }
}

/// Compile one of this module's fixed patterns (a bug here is a programming
/// error, caught by the tests).
fn re(pattern: &str) -> Expr {
    match parse_regex(pattern) {
        Ok(mut g) => g.rules.swap_remove(0).body,
        Err(e) => panic!("internal format pattern does not compile: {}", e.message()),
    }
}

const H: &str = "[0-9A-Fa-f]";
const DIGIT: &str = "[0-9]";

// --- date and time ----------------------------------------------------------

fn date() -> String {
    // Years 0001..=9999 (python's date has no year 0).
    let year = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})";
    let leap = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)";
    let md = "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])\
              |(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)\
              |02-(?:0[1-9]|1[0-9]|2[0-8]))";
    format!("(?:{year}-{md}|{leap}-02-29)")
}

/// RFC 3339 `full-time`, with second 60 only at 23:59 in UTC (the sound
/// subset of [`TIME_RESTRICTION`]).
fn time() -> String {
    let frac = r"(?:\.[0-9]+)?";
    let plain = format!(
        "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]{frac}(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
    );
    let leap = format!("23:59:60{frac}(?:[Zz]|[+-]00:00)");
    format!("(?:{plain}|{leap})")
}

fn duration() -> String {
    let n = "[0-9]+";
    let second = format!("{n}S");
    let minute = format!("{n}M(?:{second})?");
    let hour = format!("{n}H(?:{minute})?");
    let time = format!("T(?:{hour}|{minute}|{second})");
    let day = format!("{n}D");
    let month = format!("{n}M(?:{day})?");
    let year = format!("{n}Y(?:{month})?");
    let date = format!("(?:{day}|{month}|{year})(?:{time})?");
    format!("P(?:{date}|{time}|{n}W)")
}

// --- addresses and names ----------------------------------------------------

fn dec_octet() -> &'static str {
    "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
}

fn ipv4() -> String {
    let o = dec_octet();
    format!(r"{o}\.{o}\.{o}\.{o}")
}

/// RFC 3986 `IPv6address` (the RFC 4291 text forms).
fn ipv6() -> String {
    let h16 = format!("{H}{{1,4}}");
    let ls32 = format!("(?:{h16}:{h16}|{})", ipv4());
    let g = |n: u32| format!("(?:{h16}:){{{n}}}");
    let pre = |n: u32| {
        if n == 0 {
            String::new()
        } else {
            format!("(?:(?:{h16}:){{0,{}}}{h16})?", n - 1)
        }
    };
    let alts = [
        format!("{}{ls32}", g(6)),
        format!("::{}{ls32}", g(5)),
        format!("(?:{h16})?::{}{ls32}", g(4)),
        format!("{}::{}{ls32}", pre(2), g(3)),
        format!("{}::{}{ls32}", pre(3), g(2)),
        format!("{}::{h16}:{ls32}", pre(4)),
        format!("{}::{ls32}", pre(5)),
        format!("{}::{h16}", pre(6)),
        format!("{}::", pre(7)),
    ];
    format!("(?:{})", alts.join("|"))
}

/// An LDH label of 1..=max characters whose 3rd and 4th characters are not
/// both `-`.
fn label(max: u32) -> String {
    let a = "[A-Za-z0-9]";
    let l = "[A-Za-z0-9-]";
    if max <= 1 {
        return a.to_owned();
    }
    let short = format!("{a}(?:{l}{{0,{}}}{a})?", max.min(4) - 2);
    if max <= 4 {
        return short;
    }
    let long = format!("{a}{l}(?:{a}{l}|-{a}){l}{{0,{}}}{a}", max - 5);
    format!("(?:{short}|{long})")
}

fn hostname() -> String {
    let tiers: [(u32, u32); 6] = [(3, 63), (4, 62), (8, 30), (16, 14), (42, 5), (127, 1)];
    let alts: Vec<String> = tiers
        .iter()
        .map(|&(k, max)| {
            let lab = label(max);
            format!(r"{lab}(?:\.{lab}){{0,{}}}", k - 1)
        })
        .collect();
    format!("(?:{})", alts.join("|"))
}

fn email() -> String {
    let atext = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
    let dot_string = format!(r"{atext}+(?:\.{atext}+)*");
    let quoted = r#""(?:[\x20\x21\x23-\x5B\x5D-\x7E]|\\[\x20-\x7E])*""#;
    let sub = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
    let domain = format!(r"{sub}(?:\.{sub})*");
    let literal = format!(r"\[(?:{}|IPv6:{})\]", ipv4(), ipv6());
    format!("(?:{dot_string}|{quoted})@(?:{domain}|{literal})")
}

// --- URIs -------------------------------------------------------------------

const UNRESERVED: &str = r"A-Za-z0-9._~\-";
const SUB_DELIMS: &str = "!$&'()*+,;=";

fn pct() -> String {
    format!("%{H}{H}")
}

fn pchar() -> String {
    format!("(?:[{UNRESERVED}{SUB_DELIMS}:@]|{})", pct())
}

fn authority() -> String {
    let userinfo = format!("(?:[{UNRESERVED}{SUB_DELIMS}:]|{})*", pct());
    let ipvfuture = format!(r"[vV]{H}+\.[{UNRESERVED}{SUB_DELIMS}:]+");
    let ip_literal = format!(r"\[(?:{}|{ipvfuture})\]", ipv6());
    let reg_name = format!("(?:[{UNRESERVED}{SUB_DELIMS}]|{})*", pct());
    let host = format!("(?:{ip_literal}|{}|{reg_name})", ipv4());
    format!("(?:{userinfo}@)?{host}(?::{DIGIT}*)?")
}

fn query_fragment() -> String {
    let qf = format!("(?:{}|[/?])*", pchar());
    format!(r"(?:\?{qf})?(?:#{qf})?")
}

fn uri() -> String {
    let p = pchar();
    let segment = format!("{p}*");
    let segment_nz = format!("{p}+");
    let path_abempty = format!("(?:/{segment})*");
    let path_absolute = format!("/(?:{segment_nz}(?:/{segment})*)?");
    let path_rootless = format!("{segment_nz}(?:/{segment})*");
    let hier = format!(
        "(?://{}{path_abempty}|{path_absolute}|{path_rootless}|)",
        authority()
    );
    format!("[A-Za-z][A-Za-z0-9+.-]*:{hier}{}", query_fragment())
}

fn relative_ref() -> String {
    let p = pchar();
    let segment = format!("{p}*");
    let segment_nz = format!("{p}+");
    let segment_nz_nc = format!("(?:[{UNRESERVED}{SUB_DELIMS}@]|{})+", pct());
    let path_abempty = format!("(?:/{segment})*");
    let path_absolute = format!("/(?:{segment_nz}(?:/{segment})*)?");
    let path_noscheme = format!("{segment_nz_nc}(?:/{segment})*");
    let part = format!(
        "(?://{}{path_abempty}|{path_absolute}|{path_noscheme}|)",
        authority()
    );
    format!("{part}{}", query_fragment())
}

fn uri_template() -> String {
    let ucschar = r"\u00A0-\uD7FF\uF900-\uFDCF\uFDF0-\uFFEF\U00010000-\U0001FFFD\U00020000-\U0002FFFD\U00030000-\U0003FFFD\U00040000-\U0004FFFD\U00050000-\U0005FFFD\U00060000-\U0006FFFD\U00070000-\U0007FFFD\U00080000-\U0008FFFD\U00090000-\U0009FFFD\U000A0000-\U000AFFFD\U000B0000-\U000BFFFD\U000C0000-\U000CFFFD\U000D0000-\U000DFFFD\U000E1000-\U000EFFFD";
    let iprivate = r"\uE000-\uF8FF\U000F0000-\U000FFFFD\U00100000-\U0010FFFD";
    let literals = format!(
        r"(?:[\x21\x23\x24\x26-\x3B\x3D\x3F-\x5B\x5D\x5F\x61-\x7A\x7E{ucschar}{iprivate}]|{})",
        pct()
    );
    let varchar = format!("(?:[A-Za-z0-9_]|{})", pct());
    let varname = format!(r"{varchar}(?:\.?{varchar})*");
    let modifier = format!(r"(?::[1-9]{DIGIT}{{0,3}}|\*)?");
    let varspec = format!("{varname}{modifier}");
    let expression = format!(r"\{{[+#./;?&=,!@|]?{varspec}(?:,{varspec})*\}}");
    format!("(?:{literals}|{expression})*")
}

const JSON_POINTER: &str = r"(?:/(?:[^/~]|~[01])*)*";

// --- JSON escaping -------------------------------------------------------------

/// The characters JSON requires escaped, with their shortest escape.
fn escape_of(c: u32) -> Option<String> {
    Some(match c {
        0x22 => "\\\"".to_owned(),
        0x5C => "\\\\".to_owned(),
        0x08 => "\\b".to_owned(),
        0x0C => "\\f".to_owned(),
        0x0A => "\\n".to_owned(),
        0x0D => "\\r".to_owned(),
        0x09 => "\\t".to_owned(),
        0..=0x1F => format!("\\u{c:04x}"),
        _ => return None,
    })
}

/// Rewrite an expression over decoded characters into one over JSON string
/// content: `"`, `\` and U+0000..U+001F appear in the escaped spelling
/// `serde_json` and Python's `json.dumps` write (`\"`, `\\`, `\b \f \n \r \t`,
/// otherwise `\u00xx` in lower case); every other character stays literal.
/// Other escape spellings (`\/`, `\u0041`) are not produced: a sound subset of
/// the JSON texts with those values.
pub fn json_escaped(e: &Expr) -> Expr {
    match e {
        Expr::Literal(b) => {
            let Ok(s) = std::str::from_utf8(b) else {
                return e.clone();
            };
            let mut out = String::new();
            for c in s.chars() {
                match escape_of(c as u32) {
                    Some(x) => out.push_str(&x),
                    None => out.push(c),
                }
            }
            Expr::Literal(out.into_bytes())
        }
        Expr::Class { negated, ranges } => {
            // Positive ranges, then split off the escaped characters.
            let mut pos: Vec<(u32, u32)> = Vec::new();
            let mut sorted: Vec<(u32, u32)> =
                ranges.iter().copied().filter(|r| r.0 <= r.1).collect();
            sorted.sort_unstable();
            if *negated {
                let mut next = 0u32;
                for (a, b) in sorted {
                    if a > next {
                        pos.push((next, a - 1));
                    }
                    next = next.max(b.saturating_add(1));
                }
                if next <= 0x10FFFF {
                    pos.push((next, 0x10FFFF));
                }
            } else {
                pos = sorted;
            }
            let special = |c: u32| escape_of(c).is_some();
            let mut plain = Vec::new();
            let mut escaped = Vec::new();
            for (a, b) in pos {
                let mut start = a;
                // Specials are below 0x60; walk only that part.
                let mut c = a;
                while c <= b && c < 0x60 {
                    if special(c) {
                        if start < c {
                            plain.push((start, c - 1));
                        }
                        if !escaped.contains(&c) {
                            escaped.push(c);
                        }
                        start = c + 1;
                    }
                    c += 1;
                }
                if start <= b {
                    plain.push((start, b));
                }
            }
            if escaped.is_empty() {
                return e.clone();
            }
            let mut alts = vec![];
            if !plain.is_empty() {
                alts.push(Expr::Class {
                    negated: false,
                    ranges: plain,
                });
            }
            for c in escaped {
                if let Some(x) = escape_of(c) {
                    alts.push(Expr::Literal(x.into_bytes()));
                }
            }
            Expr::Alt(alts)
        }
        Expr::Bytes(_) | Expr::Empty | Expr::Rule(_) | Expr::Token { .. } => e.clone(),
        Expr::Seq(v) => Expr::Seq(v.iter().map(json_escaped).collect()),
        Expr::Alt(v) => Expr::Alt(v.iter().map(json_escaped).collect()),
        Expr::Repeat { expr, min, max } => Expr::Repeat {
            expr: Box::new(json_escaped(expr)),
            min: *min,
            max: *max,
        },
        Expr::Permutation {
            members,
            required,
            sep,
            min,
            max,
        } => Expr::Permutation {
            members: members.iter().map(json_escaped).collect(),
            required: required.clone(),
            sep: Box::new(json_escaped(sep)),
            min: *min,
            max: *max,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::numbers::testing::matches;
    use super::*;
    use std::path::PathBuf;

    fn accepts(name: &str, s: &str) -> bool {
        let f = format_grammar(name).unwrap_or_else(|| panic!("no grammar for {name}"));
        matches(&[], &f.expr, s.as_bytes())
    }

    /// Valid strings a sound subset deliberately leaves out (never the reverse).
    fn known_subset_gap(name: &str, s: &str) -> bool {
        match name {
            "hostname" => s.split('.').any(|l| l.len() >= 4 && &l[2..4] == "--"),
            // Leap seconds with a non-zero offset (TIME_RESTRICTION), listed
            // one by one so that a new suite case is looked at, not waved through.
            "time" => matches!(
                s,
                "01:29:60+01:30" | "23:29:60+23:30" | "15:59:60-08:00" | "00:29:60-23:30"
            ),
            "date-time" => s == "1998-12-31T15:59:60.123-08:00",
            _ => false,
        }
    }

    fn suite_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
            "../../../shared/corpora/json-schema-test-suite/tests/draft2020-12/optional/format",
        )
    }

    #[test]
    fn json_schema_test_suite_formats() {
        let dir = suite_dir();
        let mut checked = 0;
        let mut gaps = 0;
        let mut leap_gaps = 0;
        let mut formats_seen = 0;
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let groups: serde_json::Value = serde_json::from_str(&text).unwrap();
            if format_grammar(&name).is_none() {
                assert!(
                    matches!(
                        name.as_str(),
                        "regex"
                            | "ecmascript-regex"
                            | "unknown"
                            | "idn-email"
                            | "idn-hostname"
                            | "iri"
                            | "iri-reference"
                    ),
                    "no grammar for {name}"
                );
                continue;
            }
            formats_seen += 1;
            for g in groups.as_array().unwrap() {
                for t in g["tests"].as_array().unwrap() {
                    let Some(s) = t["data"].as_str() else {
                        continue;
                    };
                    let valid = t["valid"].as_bool().unwrap();
                    let got = accepts(&name, s);
                    if valid && !got && known_subset_gap(&name, s) {
                        gaps += 1;
                        if name != "hostname" {
                            leap_gaps += 1;
                        }
                        continue;
                    }
                    assert_eq!(got, valid, "format {name}: {s:?} ({})", t["description"]);
                    checked += 1;
                }
            }
        }
        assert_eq!(formats_seen, 14);
        assert!(checked > 400, "{checked}");
        assert!(gaps < 25, "{gaps}");
        // Each listed leap-second exception is in the suite and left out.
        assert_eq!(leap_gaps, 5);
    }

    fn table(name: &str, good: &[&str], bad: &[&str]) {
        for s in good {
            assert!(accepts(name, s), "{name} should accept {s:?}");
        }
        for s in bad {
            assert!(!accepts(name, s), "{name} should reject {s:?}");
        }
    }

    #[test]
    fn dates_and_times() {
        table(
            "date",
            &[
                "2000-02-29",
                "2400-02-29",
                "1600-02-29",
                "0004-02-29",
                "9999-12-31",
                "2023-11-30",
            ],
            &[
                "1900-02-29",
                "2023-02-29",
                "0000-01-01",
                "2023-11-31",
                "2023-1-01",
                "2023-01-01T",
            ],
        );
        table(
            "time",
            &[
                "00:00:00Z",
                "23:59:60z",
                "23:59:60Z",
                "23:59:60+00:00",
                "23:59:60.5-00:00",
                "12:00:00.000+14:00",
                "23:59:59+00:01",
            ],
            &[
                // Valid leap seconds outside the subset (TIME_RESTRICTION).
                "00:59:60+01:00",
                "00:00:60+00:01",
                "22:59:60-01:00",
                "15:59:60.5-08:00",
                // Invalid.
                "23:59:60+00:01",
                "23:59:60-00:01",
                "23:59:60+01:00",
                "23:58:60Z",
                "22:59:60+00:00",
                "23:59:60",
                "23:59:60.Z",
                "23:59:61Z",
                "24:00:00Z",
                "12:00:00",
                "12:00:00+1:00",
                "12:00:00.Z",
                "12:00:60Z",
                "12:00:00+24:00",
            ],
        );
        table(
            "date-time",
            &[
                "2020-02-29T23:59:60Z",
                "2016-12-31t23:59:60.25+00:00",
                "2021-01-01t00:00:00.1+05:30",
            ],
            &[
                "1998-12-31T15:59:60.123-08:00", // valid, outside the subset
                "1998-12-31T23:59:60+01:00",
                "1998-12-31T22:59:60Z",
                "2021-02-29T00:00:00Z",
                "2021-01-01 00:00:00Z",
                "2021-01-01T00:00:00",
            ],
        );
        table(
            "duration",
            &[
                "P1W",
                "PT1S",
                "P1Y",
                "P1Y2M3DT4H5M6S",
                "P0D",
                "PT1H1S".replace("1H1S", "1M1S").as_str(),
            ],
            &["P", "PT", "P1W1D", "P1.5D", "P1H", "PT1Y", "1D", "P1Y1D"],
        );
    }

    #[test]
    fn addresses() {
        table(
            "ipv4",
            &["0.0.0.0", "255.255.255.255", "10.0.0.1", "199.250.249.9"],
            &[
                "256.0.0.1",
                "01.0.0.0",
                "1.2.3",
                "1.2.3.4.5",
                "1.2.3.04",
                " 1.2.3.4",
                "1.2.3.-1",
            ],
        );
        table(
            "ipv6",
            &[
                "::",
                "::1",
                "1::",
                "1:2:3:4:5:6:7::",
                "::2:3:4:5:6:7:8",
                "1:2:3:4:5:6:7:8",
                "ffff::1.2.3.4",
                "1:2:3:4:5:6:1.2.3.4",
                "1::6:1.2.3.4",
                "FE80::0202:B3FF:FE1E:8329",
            ],
            &[
                ":::",
                "1:2:3:4:5:6:7:8:9",
                "1::2::3",
                "12345::",
                "1:2:3:4:5:6:7:1.2.3.4",
                "::1.2.3",
                "1:2:3:4:5:6:7",
                ":1::",
                "1::2:",
                "g::",
            ],
        );
        table(
            "hostname",
            &[
                "a",
                "a.b",
                "a-b.c-d",
                "A1.B2",
                &["a"; 127].join("."),
                &"x".repeat(63),
            ],
            &[
                "a..b",
                "-a",
                "a-",
                "a_b",
                &"x".repeat(64),
                &["a"; 128].join("."),
                "ab--c",
                "xn--abc",
                "a.",
                "",
            ],
        );
        table(
            "email",
            &[
                "a@b",
                "a.b+c@d-e.f",
                "\"a\\\"b\"@c",
                "\"\"@c",
                "x@[1.2.3.4]",
                "x@[IPv6:1::2]",
            ],
            &[
                "a@",
                "@b",
                "a@b.",
                "a@-b",
                "a..b@c",
                "\"a\"b\"@c",
                "a@[1.2.3]",
                "a@[::1]",
                "a b@c",
                "a@b@c",
            ],
        );
        table(
            "uuid",
            &["123e4567-e89b-12d3-a456-426614174000"],
            &[
                "123e4567e89b12d3a456426614174000",
                "{123e4567-e89b-12d3-a456-426614174000}",
            ],
        );
    }

    #[test]
    fn uris_and_pointers() {
        table(
            "uri",
            &[
                "a:",
                "a:b",
                "a://b:/c",
                "a://u:p@[v1.x]:80/p?q#f",
                "a://[::1]",
                "a:/?/#?",
            ],
            &[
                "a", ":b", "a:%", "a:%1", "a:#a#b", "a://[::1", "a:b c", "a:<",
            ],
        );
        table(
            "uri-reference",
            &["", "a", "./a:b", "/a:b", "?q", "#f", "//h", "a/b:c"],
            &["a:b c", "a%2", "[", ":a", "#a#"],
        );
        table(
            "uri-template",
            &["{a}", "{+a,b.c:10,d*}x{#e}", "%20", "{a%20}", "\u{E000}"],
            &[
                "{",
                "}",
                "{a.}",
                "{+}",
                "{a:0}",
                "{a:12345}",
                "%2",
                "{a b}",
                "<",
            ],
        );
        table(
            "json-pointer",
            &["", "/", "/~0~1", "/\"\\"],
            &["~", "/~", "/~2", "a"],
        );
        table(
            "relative-json-pointer",
            &["0", "10#", "3/a/b", "0/"],
            &["", "-1", "00", "0#/", "#", "/a"],
        );
    }

    #[test]
    fn hostname_is_written_out() {
        use super::super::strings::tests::counts;
        // Its tiers as counters made every mask inside a name a parser walk.
        let h = format_grammar("hostname").unwrap().expr;
        assert!(!counts(&h));
        assert!(counts(&re(&hostname())));
    }

    #[test]
    fn hostname_lengths() {
        let host = |lens: &[usize]| {
            lens.iter()
                .map(|&n| "x".repeat(n))
                .collect::<Vec<_>>()
                .join(".")
        };
        for (k, max) in [(3, 63), (4, 62), (8, 30), (16, 14), (42, 5), (127, 1)] {
            let h = host(&vec![max; k]);
            assert!(h.len() <= 253 && accepts("hostname", &h), "{k} x {max}");
        }
        for lens in [vec![63, 63, 63, 63], vec![2; 127], vec![1; 128], vec![64]] {
            assert!(!accepts("hostname", &host(&lens)), "{lens:?}");
        }
        // Soundness on random label-length sequences: accepted ⇒ valid.
        let mut r = 0x9e37_79b9_u64;
        let mut next = |n: u64| {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            usize::try_from(r % n).unwrap()
        };
        for _ in 0..400 {
            let k = 1 + next(60);
            let cap = 1 + next(64);
            let lens: Vec<usize> = (0..k).map(|_| 1 + next(cap as u64)).collect();
            let h = host(&lens);
            if accepts("hostname", &h) {
                assert!(h.len() <= 253 && lens.iter().all(|&n| n <= 63), "{lens:?}");
            }
        }
    }

    #[test]
    fn refused_formats() {
        for name in [
            "regex",
            "idn-email",
            "idn-hostname",
            "iri",
            "iri-reference",
            "color",
            "",
        ] {
            assert!(
                format_expr(name).is_none() && format_grammar(name).is_none(),
                "{name}"
            );
        }
        for (name, restriction) in [
            ("hostname", HOSTNAME_RESTRICTION),
            ("time", TIME_RESTRICTION),
            ("date-time", DATE_TIME_RESTRICTION),
        ] {
            assert!(format_expr(name).is_none(), "{name}");
            assert_eq!(format_grammar(name).unwrap().restriction, Some(restriction));
        }
        for name in [
            "date",
            "duration",
            "email",
            "ipv4",
            "ipv6",
            "uuid",
            "uri",
            "uri-reference",
            "uri-template",
            "json-pointer",
            "relative-json-pointer",
        ] {
            assert!(format_expr(name).is_some(), "{name}");
        }
    }

    #[test]
    fn json_escaping() {
        let e = json_escaped(&re(JSON_POINTER));
        for (s, ok) in [
            (r#"/a\"b"#, true),
            (r"/a\\b", true),
            (r"/\n\t\u0001", true),
            ("/a\"b", false),
            ("/a\\q", false),
            ("/a\nb", false),
            (r"/\u000a", false),
            ("/é~0", true),
        ] {
            assert_eq!(matches(&[], &e, s.as_bytes()), ok, "{s:?}");
        }
        let email = json_escaped(&format_expr("email").unwrap());
        assert!(matches(&[], &email, br#"\"a\\\"b\"@c"#));
        assert!(!matches(&[], &email, br#""a"@c"#));
    }
}

/// The expressions also compile with the project's own automaton and agree
/// with the reference matcher there.
#[cfg(test)]
mod automaton_tests {
    use super::*;
    use crate::grammar::schema::numbers::{integer_multiple_of, number_expr, Bound, IntForm};
    use crate::grammar::{Grammar, Rule};
    use crate::{CompiledGrammar, Limits, Matcher, Vocabulary};
    use std::sync::Arc;

    fn compile(body: Expr, mut helpers: Vec<Rule>) -> (Matcher, Vec<Rule>) {
        let rules_for_ref = helpers.clone();
        let root = u32::try_from(helpers.len()).unwrap();
        helpers.push(Rule {
            name: "root".to_owned(),
            body,
            span: None,
        });
        let g = Grammar {
            rules: helpers,
            root,
        };
        let vocab = Arc::new(Vocabulary::byte_level());
        let cg = CompiledGrammar::from_grammar(&g, vocab, &Limits::default(), None).unwrap();
        (Matcher::new(Arc::new(cg)), rules_for_ref)
    }

    fn agree(m: &mut Matcher, rules: &[Rule], e: &Expr, s: &str) {
        m.reset();
        let full = m.accept_bytes(s.as_bytes()) && m.can_terminate();
        let want = super::super::numbers::testing::matches(rules, e, s.as_bytes());
        assert_eq!(full, want, "{s:?}");
    }

    #[test]
    fn formats_compile_with_the_automaton() {
        let samples = [
            "2020-02-29",
            "2021-02-29",
            "23:59:60Z",
            "12:00:00+01:00",
            "2020-01-01T00:00:00Z",
            "P1D",
            "a@b.c",
            "1.2.3.4",
            "::1",
            "1::2:3.4.5.6",
            "a.b-c",
            "x://y/z?q#f",
            "",
            "{a}",
            "/a~0",
            "0#",
            "123e4567-e89b-12d3-a456-426614174000",
        ];
        for name in [
            "date",
            "time",
            "date-time",
            "duration",
            "email",
            "hostname",
            "ipv4",
            "ipv6",
            "uuid",
            "uri",
            "uri-reference",
            "uri-template",
            "json-pointer",
            "relative-json-pointer",
        ] {
            let e = format_grammar(name).unwrap().expr;
            let (mut m, rules) = compile(e.clone(), vec![]);
            for s in samples {
                agree(&mut m, &rules, &e, s);
            }
        }
    }

    #[test]
    fn numbers_compile_with_the_automaton() {
        let lo = Bound::exclusive("-12.5").unwrap();
        let hi = Bound::inclusive("1e3").unwrap();
        let e = number_expr(Some(&lo), Some(&hi)).unwrap();
        let (mut m, rules) = compile(e.clone(), vec![]);
        for s in [
            "-12.5", "-12.49", "1000", "1000.0", "1000.01", "-0", "0.0", "999.999", "1e3",
        ] {
            agree(&mut m, &rules, &e, s);
        }
        let mut helpers = Vec::new();
        let e = integer_multiple_of(7, Some(&lo), Some(&hi), IntForm::ZeroFraction, &mut helpers)
            .unwrap();
        let (mut m, rules) = compile(e.clone(), helpers);
        for n in -20..=1010 {
            agree(&mut m, &rules, &e, &n.to_string());
        }
        agree(&mut m, &rules, &e, "994.00");
    }

    #[test]
    fn leap_seconds_by_arithmetic() {
        // Soundness of the leap-second subset over all 1,440 local times: a
        // leap second is accepted only where the time converted to UTC is
        // 23:59, and (the subset) only as 23:59:60 with a zero offset.
        let time = format_grammar("time").unwrap().expr;
        let (mut m, _) = compile(time, vec![]);
        let date_time = format_grammar("date-time").unwrap().expr;
        let (mut dt, _) = compile(date_time, vec![]);
        let accepts = |m: &mut Matcher, s: &str| {
            m.reset();
            m.accept_bytes(s.as_bytes()) && m.can_terminate()
        };
        let mut r = 0x1234_5678_u64;
        for local in 0..1440u32 {
            let t = format!("{:02}:{:02}:60", local / 60, local % 60);
            let mut offsets = vec![0, 1, 1439, (local + 1) % 1440, 1439 - local];
            for _ in 0..6 {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                offsets.push(u32::try_from(r % 1440).unwrap());
            }
            for o in offsets {
                let valid_plus = (local + 1440 - o) % 1440 == 1439;
                let valid_minus = (local + o) % 1440 == 1439;
                let subset = local == 1439 && o == 0;
                let (oh, om) = (o / 60, o % 60);
                for (sign, valid) in [('+', valid_plus), ('-', valid_minus)] {
                    for frac in ["", ".5"] {
                        let s = format!("{t}{frac}{sign}{oh:02}:{om:02}");
                        let got = accepts(&mut m, &s);
                        assert!(!got || valid, "invalid {s} accepted");
                        assert_eq!(got, subset, "{s}");
                        let d = format!("2016-12-31T{s}");
                        assert_eq!(accepts(&mut dt, &d), subset, "{d}");
                    }
                }
            }
            for z in ["Z", "z"] {
                assert_eq!(accepts(&mut m, &format!("{t}{z}")), local == 1439);
                assert_eq!(accepts(&mut m, &format!("{t}.123{z}")), local == 1439);
            }
        }
    }
}
