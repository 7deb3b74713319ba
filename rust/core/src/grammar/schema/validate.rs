//! Validation of one concrete JSON value against schema locations.
//!
//! Used where a conjunction has a finite set of candidates (`enum`/`const`):
//! every keyword can then be decided value by value, so keywords that have no
//! grammar of their own (`not` of anything, `if`/`then`/`else`, `contains`,
//! `uniqueItems`, dependencies) are exact there. The answer is three-valued:
//! `None` means "cannot decide here" (unevaluated*, dynamic references, a
//! pattern or format with no grammar), and the caller then falls back to the
//! grammar path, which refuses what it cannot enforce.

use super::*;

/// Deepest nesting of schema applications while validating one value (a `$ref` cycle on the
/// same value would otherwise not end).
const MAX_VALIDATE_DEPTH: u32 = 64;

/// Kleene conjunction.
fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// `text` of a JSON number as (digits, scale): value = digits * 10^-scale (`None` if too big).
fn scaled(text: &str) -> Option<(bool, u128, u32)> {
    let d = Decimal::parse(text).ok()?.to_string();
    let neg = d.starts_with('-');
    let d = d.trim_start_matches('-');
    let (i, f) = d.split_once('.').unwrap_or((d, ""));
    let digits: u128 = format!("{i}{f}").parse().ok()?;
    Some((neg, digits, u32::try_from(f.len()).ok()?))
}

/// Is the number `x` a multiple of `m` (both JSON number texts)? `None` past `u128`.
fn is_multiple(x: &str, m: &str) -> Option<bool> {
    let (_, a, p) = scaled(x)?;
    let (_, b, q) = scaled(m)?;
    if b == 0 {
        return None;
    }
    // x / m = (a * 10^q) / (b * 10^p)
    let num = a.checked_mul(10u128.checked_pow(q)?)?;
    let den = b.checked_mul(10u128.checked_pow(p)?)?;
    Some(num % den == 0)
}

impl<'a> Ctx<'a> {
    /// Does `v` satisfy the conjunction `items`? Every keyword consulted is recorded in `seen`.
    /// (`done` flags are ignored: a chosen branch implies its anyOf, and re-checking a oneOf
    /// only makes the answer exact.)
    pub(super) fn validate_items(
        &self,
        items: &[Item],
        v: &Value,
        seen: &mut Vec<(String, String)>,
    ) -> Result<Option<bool>> {
        let mut r = Some(true);
        for it in items {
            r = and(r, self.validate_item(&it.ptr, v, seen)?);
            if r == Some(false) {
                break;
            }
        }
        Ok(r)
    }

    /// One item, synthetic ones included (see `NEG`, `LIT`, `KEY`).
    fn validate_item(
        &self,
        item: &str,
        v: &Value,
        seen: &mut Vec<(String, String)>,
    ) -> Result<Option<bool>> {
        if let Some(p) = item.strip_prefix(NEG) {
            return Ok(self.validate(p, v, 0, seen)?.map(|b| !b));
        }
        let key_lit = item.strip_prefix(KEY);
        let Some(rest) = key_lit.or_else(|| item.strip_prefix(LIT)) else {
            return self.validate(item, v, 0, seen);
        };
        let mut parts = rest.splitn(if key_lit.is_some() { 4 } else { 3 }, SEP);
        let ptr = parts.next().unwrap_or("");
        let kw = parts.next().unwrap_or("");
        if key_lit.is_some() {
            parts.next();
        }
        let arg = parts.next().unwrap_or("");
        let obj = v.as_object();
        if key_lit.is_some() {
            let has = obj.map(|o| o.contains_key(arg));
            return Ok(Some(match kw {
                "absent" => has != Some(true),
                _ => has != Some(false),
            }));
        }
        let Some(Value::Object(m)) = self.get(ptr) else {
            return Err(invalid(ptr, "no schema at this pointer"));
        };
        Ok(match kw {
            "required" => Some(obj.is_some_and(|o| !o.contains_key(arg))),
            "properties" => match obj.and_then(|o| o.get(arg)) {
                Some(x) => {
                    let at = format!("{ptr}/properties/{}", escape_token(arg));
                    self.validate(&at, x, 1, seen)?.map(|b| !b)
                }
                None => Some(false),
            },
            _ => self.keyword(ptr, m, kw, &m[kw], v, 1, seen)?.map(|b| !b),
        })
    }

    fn validate(
        &self,
        ptr: &str,
        v: &Value,
        depth: u32,
        seen: &mut Vec<(String, String)>,
    ) -> Result<Option<bool>> {
        if depth > MAX_VALIDATE_DEPTH {
            return Ok(None);
        }
        let schema = self
            .get(ptr)
            .ok_or_else(|| invalid(ptr, "no schema at this pointer"))?;
        let m = match schema {
            Value::Bool(b) => return Ok(Some(*b)),
            Value::Object(m) => m,
            _ => return Err(invalid(ptr, "a schema must be an object or a boolean")),
        };
        let mut r = Some(true);
        for (kw, kv) in m {
            if r == Some(false) {
                break;
            }
            let kw = kw.as_str();
            if kw == "$schema" {
                let known = kv.as_str().is_some_and(|u| {
                    u.starts_with("http://json-schema.org/")
                        || u.starts_with("https://json-schema.org/")
                });
                if !known {
                    return Ok(None);
                }
                continue;
            }
            if ANNOTATIONS.contains(&kw) || !self.is_keyword(kw) {
                continue;
            }
            let one = self.keyword(ptr, m, kw, kv, v, depth, seen)?;
            if one.is_some() {
                seen.push((ptr.to_owned(), kw.to_owned()));
            }
            r = and(r, one);
        }
        Ok(r)
    }

    fn sub(
        &self,
        ptr: String,
        v: &Value,
        depth: u32,
        seen: &mut Vec<(String, String)>,
    ) -> Result<Option<bool>> {
        self.validate(&ptr, v, depth + 1, seen)
    }

    #[allow(clippy::too_many_arguments)]
    fn keyword(
        &self,
        ptr: &str,
        m: &Map<String, Value>,
        kw: &str,
        kv: &Value,
        v: &Value,
        depth: u32,
        seen: &mut Vec<(String, String)>,
    ) -> Result<Option<bool>> {
        let count = |kv: &Value| -> Result<u64> {
            kv.as_u64()
                .or_else(|| {
                    kv.as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| invalid(ptr, &format!("{kw} must be a non-negative integer")))
        };
        let num = |x: &Value| Decimal::parse(&x.to_string()).ok();
        let p = |s: &str| format!("{ptr}/{s}");
        Ok(match kw {
            "$ref" => {
                let r = kv
                    .as_str()
                    .ok_or_else(|| invalid(ptr, "$ref must be a string"))?;
                self.sub(self.resolve(ptr, r)?, v, depth, seen)?
            }
            "type" => {
                let mut bits = 0;
                match kv {
                    Value::String(s) => {
                        bits = type_bits(s)
                            .ok_or_else(|| invalid(ptr, &format!("unknown type {s:?}")))?
                    }
                    Value::Array(a) => {
                        for t in a {
                            bits |= t
                                .as_str()
                                .and_then(type_bits)
                                .ok_or_else(|| invalid(ptr, "type must name JSON types"))?;
                        }
                    }
                    _ => return Err(invalid(ptr, "type must be a string or an array of strings")),
                }
                let t = value_type(v);
                if self.draft4 && t == T_INT && (bits & T_INT != 0) != (bits & T_FRAC != 0) {
                    // Draft-04 tells `1` from `1.0`, and the grammar spells both.
                    return Ok(None);
                }
                Some(bits & t != 0)
            }
            "enum" => Some(
                kv.as_array()
                    .ok_or_else(|| invalid(ptr, "enum must be an array"))?
                    .iter()
                    .any(|x| json_eq(x, v)),
            ),
            "const" => Some(json_eq(kv, v)),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                if !v.is_number() {
                    return Ok(Some(true));
                }
                if kv.is_boolean() {
                    // Draft-04 modifier, read with minimum/maximum.
                    return Ok(Some(true));
                }
                let (Some(x), Some(b)) = (num(v), num(kv)) else {
                    return Err(invalid(ptr, &format!("{kw} must be a number")));
                };
                let excl = |other: &str| m.get(other) == Some(&Value::Bool(true));
                Some(match kw {
                    "minimum" if excl("exclusiveMinimum") => x > b,
                    "minimum" => x >= b,
                    "maximum" if excl("exclusiveMaximum") => x < b,
                    "maximum" => x <= b,
                    "exclusiveMinimum" => x > b,
                    _ => x < b,
                })
            }
            "multipleOf" => match v {
                Value::Number(_) => is_multiple(&v.to_string(), &kv.to_string()),
                _ => Some(true),
            },
            "minLength" | "maxLength" => match v {
                Value::String(s) => {
                    let n = s.chars().count() as u64;
                    let c = count(kv)?;
                    Some(if kw == "minLength" { n >= c } else { n <= c })
                }
                _ => Some(true),
            },
            "pattern" => match v {
                Value::String(s) => {
                    let pat = kv
                        .as_str()
                        .ok_or_else(|| invalid(ptr, "pattern must be a string"))?;
                    match strings::pattern_expr(pat) {
                        Ok(e) => Some(strings::matches(&e, s)?),
                        Err(PatternError::Unsupported(_)) => None,
                        Err(PatternError::Invalid(why)) => {
                            return Err(invalid(ptr, &format!("pattern: {why}")))
                        }
                    }
                }
                _ => Some(true),
            },
            "format" => match v {
                Value::String(s) => {
                    let f = kv
                        .as_str()
                        .ok_or_else(|| invalid(ptr, "format must be a string"))?;
                    match format_grammar_for_schema(f) {
                        Some(e) => Some(strings::matches(&e, s)?),
                        None if !KNOWN_FORMATS.contains(&f) => Some(true),
                        None => None,
                    }
                }
                _ => Some(true),
            },
            "items" | "prefixItems" | "additionalItems" => {
                let Value::Array(a) = v else {
                    return Ok(Some(true));
                };
                // Positions covered by a prefix keyword of this schema.
                let prefix_kw = if m.contains_key("prefixItems") {
                    Some("prefixItems")
                } else if m.get("items").is_some_and(Value::is_array) {
                    Some("items")
                } else {
                    None
                };
                let plen = prefix_kw
                    .and_then(|k| m.get(k))
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let mut r = Some(true);
                if Some(kw) == prefix_kw {
                    for (i, x) in a.iter().enumerate().take(plen) {
                        r = and(r, self.sub(p(&format!("{kw}/{i}")), x, depth, seen)?);
                    }
                } else if kw == "additionalItems" && prefix_kw != Some("items") {
                    // Without an `items` array, additionalItems has no effect.
                } else if kw != "prefixItems" {
                    if kv.is_array() {
                        return Ok(None);
                    }
                    for x in a.iter().skip(plen) {
                        r = and(r, self.sub(p(kw), x, depth, seen)?);
                    }
                }
                r
            }
            "contains" | "minContains" | "maxContains" => {
                let Value::Array(a) = v else {
                    return Ok(Some(true));
                };
                if kw != "contains" {
                    // Read together with `contains`.
                    count(kv)?;
                    return Ok(Some(true));
                }
                let mut hits = 0u64;
                let mut unknown = false;
                for x in a {
                    match self.sub(p("contains"), x, depth, seen)? {
                        Some(true) => hits += 1,
                        Some(false) => {}
                        None => unknown = true,
                    }
                }
                if unknown {
                    return Ok(None);
                }
                let lo = match m.get("minContains") {
                    Some(c) => count(c)?,
                    None => 1,
                };
                let hi = m.get("maxContains").map(count).transpose()?;
                Some(hits >= lo && hi.map_or(true, |h| hits <= h))
            }
            "minItems" | "maxItems" => match v {
                Value::Array(a) => {
                    let c = count(kv)?;
                    let n = a.len() as u64;
                    Some(if kw == "minItems" { n >= c } else { n <= c })
                }
                _ => Some(true),
            },
            "uniqueItems" => match v {
                Value::Array(a) if kv.as_bool() == Some(true) => {
                    Some((0..a.len()).all(|i| (i + 1..a.len()).all(|j| !json_eq(&a[i], &a[j]))))
                }
                _ => Some(true),
            },
            "properties" | "patternProperties" | "additionalProperties" => {
                let Value::Object(o) = v else {
                    return Ok(Some(true));
                };
                let props = m.get("properties").and_then(Value::as_object);
                let mut pats = Vec::new();
                if let Some(pp) = m.get("patternProperties").and_then(Value::as_object) {
                    for k in pp.keys() {
                        match strings::pattern_expr(k) {
                            Ok(e) => pats.push((k, e)),
                            Err(PatternError::Unsupported(_)) => return Ok(None),
                            Err(PatternError::Invalid(why)) => {
                                return Err(invalid(ptr, &format!("patternProperties: {why}")))
                            }
                        }
                    }
                }
                let mut r = Some(true);
                for (k, x) in o {
                    let named = props.is_some_and(|pr| pr.contains_key(k));
                    match kw {
                        "properties" if named => {
                            r = and(
                                r,
                                self.sub(
                                    p(&format!("properties/{}", escape_token(k))),
                                    x,
                                    depth,
                                    seen,
                                )?,
                            );
                        }
                        "patternProperties" => {
                            for (pk, e) in &pats {
                                if strings::matches(e, k)? {
                                    let at = p(&format!("patternProperties/{}", escape_token(pk)));
                                    r = and(r, self.sub(at, x, depth, seen)?);
                                }
                            }
                        }
                        "additionalProperties" if !named => {
                            let mut hit = false;
                            for (_, e) in &pats {
                                hit |= strings::matches(e, k)?;
                            }
                            if !hit {
                                r = and(r, self.sub(p(kw), x, depth, seen)?);
                            }
                        }
                        _ => {}
                    }
                }
                r
            }
            "required" => match v {
                Value::Object(o) => Some(
                    kv.as_array()
                        .ok_or_else(|| invalid(ptr, "required must be an array"))?
                        .iter()
                        .all(|k| k.as_str().is_some_and(|k| o.contains_key(k))),
                ),
                _ => Some(true),
            },
            "minProperties" | "maxProperties" => match v {
                Value::Object(o) => {
                    let c = count(kv)?;
                    let n = o.len() as u64;
                    Some(if kw == "minProperties" {
                        n >= c
                    } else {
                        n <= c
                    })
                }
                _ => Some(true),
            },
            "propertyNames" => match v {
                Value::Object(o) => {
                    let mut r = Some(true);
                    for k in o.keys() {
                        r = and(r, self.sub(p(kw), &Value::String(k.clone()), depth, seen)?);
                    }
                    r
                }
                _ => Some(true),
            },
            "dependentRequired" | "dependentSchemas" | "dependencies" => {
                let Value::Object(o) = v else {
                    return Ok(Some(true));
                };
                let deps = kv
                    .as_object()
                    .ok_or_else(|| invalid(ptr, &format!("{kw} must be an object")))?;
                let mut r = Some(true);
                for (k, d) in deps {
                    if !o.contains_key(k) {
                        continue;
                    }
                    r = and(
                        r,
                        match d {
                            Value::Array(names) => Some(
                                names
                                    .iter()
                                    .all(|n| n.as_str().is_some_and(|n| o.contains_key(n))),
                            ),
                            _ => {
                                self.sub(p(&format!("{kw}/{}", escape_token(k))), v, depth, seen)?
                            }
                        },
                    );
                }
                r
            }
            "allOf" | "anyOf" | "oneOf" => {
                let a = kv
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| invalid(ptr, &format!("{kw} must be a non-empty array")))?;
                let mut rs = Vec::new();
                for i in 0..a.len() {
                    rs.push(self.sub(p(&format!("{kw}/{i}")), v, depth, seen)?);
                }
                let yes = rs.iter().filter(|r| **r == Some(true)).count();
                let unknown = rs.iter().any(Option::is_none);
                match kw {
                    "allOf" => rs.into_iter().fold(Some(true), and),
                    "anyOf" if yes > 0 => Some(true),
                    "anyOf" if unknown => None,
                    "anyOf" => Some(false),
                    _ if yes > 1 => Some(false),
                    _ if unknown => None,
                    _ => Some(yes == 1),
                }
            }
            "not" => self.sub(p(kw), v, depth, seen)?.map(|b| !b),
            "if" => {
                let c = self.sub(p("if"), v, depth, seen)?;
                let branch = match c {
                    Some(true) => "then",
                    Some(false) => "else",
                    None => return Ok(None),
                };
                if m.contains_key(branch) {
                    self.sub(p(branch), v, depth, seen)?
                } else {
                    Some(true)
                }
            }
            // Read together with `if`.
            "then" | "else" => Some(true),
            // Annotation-dependent or dynamic: not decided here.
            _ => None,
        })
    }
}
