//! JSON Schema (draft 2020-12, plus the draft-04/06/07 spellings) → grammar IR.
//!
//! # Overview
//!
//! A schema location is compiled into one rule; a location reached by `$ref`
//! is just another rule reference, so recursive schemas need no unrolling.
//! Where several schemas apply to the same value (`allOf`, `$ref` next to
//! other keywords, the chosen branch of `anyOf`), their keywords are merged
//! into one set of constraints: types are intersected, bounds tightened,
//! properties merged. A rule is therefore keyed by the *set* of schema
//! locations that apply (its name joins their pointers with ` & `).
//!
//! The front-end fails closed: a keyword it cannot enforce exactly is an
//! [`ErrorKind::Unsupported`] error naming the keyword and the JSON pointer of
//! the schema that holds it, unless [`SchemaOptions::lenient`] is set, in
//! which case it is skipped and listed in [`SchemaGrammar::ignored`].
//! Keywords that belong to no draft are annotations and are ignored.
//!
//! Keywords with no grammar of their own become alternatives too: a
//! negation (`not`, the else side of `if`, the items outside `contains`, the
//! other branches of an overlapping `oneOf`) is a disjunction of per-keyword
//! literals, carried as synthetic items in the rule key (`!P`, `~P…`, `+P…`);
//! dependencies split on whether the key is present. Where `enum`/`const`
//! leave finitely many values, each is validated instead (`validate`), so
//! every keyword is exact there.
//!
//! What is exact and what is refused is listed in the README's JSON Schema
//! section; the short version: strings are produced in escaped JSON form and
//! every constraint on them is lifted to every JSON spelling of the decoded
//! characters (see [`strings`]); intersections of two string languages
//! (e.g. `pattern` together with `maxLength`) are refused because the IR has
//! no intersection.
//!
//! # Example: a schema to a grammar
//!
//! ```
//! use corral_core::grammar::schema::{schema_to_grammar, SchemaOptions};
//! let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "boolean"}}});
//! let g = schema_to_grammar(&schema, &SchemaOptions::default())?;
//! assert_eq!(g.grammar.rules[g.grammar.root as usize].name, "root");
//! # Ok::<(), corral_core::Error>(())
//! ```

mod chardfa;
pub mod formats;
pub mod numbers;
pub mod strings;
mod validate;

use crate::error::{Error, ErrorKind, Result};
use crate::grammar::{Expr, Grammar, Rule, RuleId, MAX_PERMUTATION_MEMBERS};
use chardfa::CharDfa;
use formats::format_grammar;
use numbers::{Bound, Decimal, IntForm};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::{BTreeSet, VecDeque};
use strings::{any_string, nothing, spell, PatternError};

/// How object keys may be ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PropertyOrder {
    /// Named properties in `properties` order, then keys only `required` or
    /// a dependency names (any order), then additional ones.
    #[default]
    Schema,
    /// Named properties in any order (each at most once), then additional ones.
    Any,
}

/// Options of the JSON Schema front-end (mirrors the Python keyword arguments).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SchemaOptions {
    /// Allow a bounded gap between tokens: an optional newline then at most
    /// `max_whitespace` spaces or tabs. Otherwise the layout is exactly
    /// `json.dumps` with `indent` and `separators`.
    pub any_whitespace: bool,
    /// `json.dumps(indent=k)` layout (only without `any_whitespace`).
    pub indent: Option<u32>,
    /// `(item separator, key separator)`; defaults as `json.dumps`.
    pub separators: Option<(String, String)>,
    /// Unspecified `additionalProperties` (for objects with `properties`)
    /// and `items` after `prefixItems` are `false`.
    pub strict_mode: bool,
    /// Key order of objects.
    pub property_order: PropertyOrder,
    /// Most spaces/tabs in one gap with `any_whitespace`.
    pub max_whitespace: u32,
    /// Skip (and list) keywords that cannot be enforced instead of failing.
    pub lenient: bool,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions {
            any_whitespace: true,
            indent: None,
            separators: None,
            strict_mode: true,
            property_order: PropertyOrder::Schema,
            max_whitespace: 64,
            lenient: false,
        }
    }
}

/// A compiled schema: the grammar plus a coverage report.
#[derive(Clone, Debug)]
pub struct SchemaGrammar {
    /// The grammar; its root rule is `root`.
    pub grammar: Grammar,
    /// `(pointer, keyword)` of every keyword that is enforced.
    pub enforced: Vec<(String, String)>,
    /// `(pointer, keyword)` of keywords skipped because of `lenient`.
    pub ignored: Vec<(String, String)>,
}

/// Deepest nesting for which the `indent` layout gets its own rules; deeper
/// containers are not produced (the indentation of unbounded nesting is not
/// context-free).
pub const MAX_INDENT_DEPTH: u32 = 24;
/// Most rules one schema may generate.
pub const MAX_SCHEMA_RULES: usize = 20_000;
/// Most type/value-domain computations per schema (oneOf disjointness, pruning).
const MAX_DOMAIN_CALLS: usize = 20_000;
/// Most alternatives an `anyOf`/`oneOf` expansion (product over groups) may have.
const MAX_BRANCHES: usize = 256;

/// Most classes of other keys overlapping `patternProperties` split an
/// object's keys into (each is one alternative of the layout).
const MAX_KEY_CLASSES: usize = 8;

/// Most nodes of a key language written as one expression (else rules).
const KEY_EXPR_BUDGET: usize = 10_000;

/// Most character ranges (over all states) of a key language's DFA: a
/// Unicode class such as Python's `\w` is ~700 ranges, spelled in UTF-8
/// byte sequences per state.
const MAX_KEY_RANGES: usize = 20_000;

/// The strings outside a language over decoded characters, as an expression:
/// a class run's complement keeps its counter; else a small DFA's, where it
/// has an expression within the size limits.
fn outside_of(decoded: &Expr) -> Option<Expr> {
    strings::complement_expr(decoded).or_else(|| {
        let d = CharDfa::from_expr(decoded)?.complement();
        (d.ranges() <= MAX_KEY_RANGES)
            .then(|| d.to_expr(KEY_EXPR_BUDGET))
            .flatten()
    })
}

/// The strings in both languages, as an expression, within the size limits.
fn both_of(a: &Expr, b: &Expr) -> Option<Expr> {
    let d = CharDfa::from_expr(a)?.intersect(&CharDfa::from_expr(b)?)?;
    (d.ranges() <= MAX_KEY_RANGES)
        .then(|| d.to_expr(KEY_EXPR_BUDGET))
        .flatten()
}

/// The language of keys in one class of other keys.
enum KeyLang {
    /// Every key the object does not name.
    Others,
    /// A pattern's language or its complement, holding no named key.
    Pattern(Expr),
    /// Anything else (complements, intersections, named keys taken out).
    Dfa(CharDfa),
}

/// Compile `schema` into a grammar.
pub fn schema_to_grammar(schema: &Value, opts: &SchemaOptions) -> Result<SchemaGrammar> {
    let mut cx = Ctx::new(schema, opts)?;
    let root_key = Key {
        items: vec![Item {
            ptr: String::new(),
            done: false,
        }],
        depth: 0,
    };
    cx.check_satisfiable(&root_key)?;
    let root = cx.rule_for(root_key);
    // A root that is a bare `$ref` shares its target's rule; it is still `root`.
    cx.rules[root as usize].name = "root".to_owned();
    cx.run()?;
    Ok(SchemaGrammar {
        grammar: Grammar {
            rules: cx.rules,
            root,
        },
        enforced: cx.enforced.into_iter().collect(),
        ignored: cx.ignored.into_iter().collect(),
    })
}

/// Compile a schema given as JSON text.
pub fn schema_text_to_grammar(text: &str, opts: &SchemaOptions) -> Result<SchemaGrammar> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::new(ErrorKind::Grammar, format!("schema is not valid JSON: {e}")))?;
    schema_to_grammar(&value, opts)
}

/// A grammar for any JSON value in the layout of `opts`.
pub fn builtin_json_grammar(opts: &SchemaOptions) -> Result<Grammar> {
    let g = schema_to_grammar(&Value::Bool(true), opts)?;
    Ok(g.grammar)
}

fn unsupported(ptr: &str, kw: &str, why: &str) -> Error {
    let at = if ptr.is_empty() { "/" } else { ptr };
    let mut msg = format!("unsupported keyword \"{kw}\" at {at}");
    if !why.is_empty() {
        msg.push_str(": ");
        msg.push_str(why);
    }
    Error::unsupported(ptr, kw, msg)
}

fn invalid(ptr: &str, what: &str) -> Error {
    let at = if ptr.is_empty() { "/" } else { ptr };
    Error::new(
        ErrorKind::Grammar,
        format!("invalid schema at {at}: {what}"),
    )
}

fn escape_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// One schema location in a conjunction; `done` means its `anyOf`/`oneOf`
/// were already expanded (the chosen branch is another item).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Item {
    ptr: String,
    done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    items: Vec<Item>,
    depth: u32,
}

// Type bits.
const T_NULL: u8 = 1;
const T_BOOL: u8 = 2;
const T_INT: u8 = 4;
/// Numbers that are not integers.
const T_FRAC: u8 = 8;
const T_STR: u8 = 16;
const T_ARR: u8 = 32;
const T_OBJ: u8 = 64;
const T_ALL: u8 = 127;

fn type_bits(name: &str) -> Option<u8> {
    Some(match name {
        "null" => T_NULL,
        "boolean" => T_BOOL,
        "integer" => T_INT,
        "number" => T_INT | T_FRAC,
        "string" => T_STR,
        "array" => T_ARR,
        "object" => T_OBJ,
        _ => return None,
    })
}

fn value_type(v: &Value) -> u8 {
    match v {
        Value::Null => T_NULL,
        Value::Bool(_) => T_BOOL,
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                T_INT
            } else {
                T_FRAC
            }
        }
        Value::String(_) => T_STR,
        Value::Array(_) => T_ARR,
        Value::Object(_) => T_OBJ,
    }
}

/// JSON equality as JSON Schema defines it (1 == 1.0, objects unordered).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Keywords of some draft. Anything else is an annotation.
const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$dynamicRef",
    "$recursiveRef",
    "$recursiveAnchor",
    "$vocabulary",
    "$comment",
    "$defs",
    "definitions",
    "$ref",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "items",
    "prefixItems",
    "additionalItems",
    "contains",
    "minContains",
    "maxContains",
    "maxItems",
    "minItems",
    "uniqueItems",
    "unevaluatedItems",
    "properties",
    "patternProperties",
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// Keywords with no effect on validation.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$recursiveAnchor",
    "$vocabulary",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// Formats of some draft that have no exact grammar here (refused, not ignored).
const KNOWN_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Constraints of one merged conjunction, for values of one type each.
#[derive(Default)]
struct Norm<'a> {
    types: u8,
    empty: bool,
    enums: Option<Vec<&'a Value>>,
    /// Where the (first) enum/const is.
    enum_ptr: String,
    // strings
    min_len: u64,
    max_len: Option<u64>,
    /// `(pointer, keyword, helper rule name, decoded language)`.
    str_exprs: Vec<(String, &'static str, String, Expr)>,
    // numbers: (pointer, keyword) of each numeric bound/multipleOf; enforced by `numeric`
    numeric: Vec<(String, &'static str, &'a Value)>,
    // arrays
    arr_sources: Vec<ArrSource>,
    min_items: u64,
    max_items: Option<u64>,
    // objects
    obj_sources: Vec<ObjSource<'a>>,
    unevaluated: Option<Vec<Item>>,
    required: Vec<String>,
    min_props: u64,
    max_props: Option<u64>,
    /// Where minProperties/maxProperties are (enforced or refused at emission).
    count_kws: Vec<(String, &'static str)>,
    prop_names: Vec<String>,
    /// Values excluded by a negated `const`/`enum`: `(pointer, value)`.
    excluded: Vec<(String, &'a Value)>,
    /// Keys objects must not have (negated `required`, dependencies).
    absent: Vec<String>,
    /// `(pointer, minContains, maxContains)` of each `contains`.
    contains: Vec<(String, u64, Option<u64>)>,
}

struct ArrSource {
    prefix: Vec<String>,
    /// Strict mode: no items after the longest prefix.
    closed: bool,
    /// `None`: any item; `Some(ptr)`: the items schema.
    rest: Option<String>,
}

struct ObjSource<'a> {
    ptr: String,
    props: Vec<(&'a str, String)>,
    patterns: Vec<(&'a str, String)>,
    /// `None`: any value; `Some(ptr)`: schema for other keys.
    additional: Option<String>,
}

/// An `anyOf` / `oneOf` to expand.
struct Group {
    ptr: String,
    /// The keyword that makes the alternatives (for messages).
    kw: &'static str,
    one_of: bool,
    /// Each branch is a conjunction of items.
    branches: Vec<Vec<String>>,
}

struct Expanded<'a> {
    sources: Vec<(String, &'a Map<String, Value>)>,
    groups: Vec<Group>,
    is_false: bool,
    /// Synthetic items (negations and literals, see [`NEG`]) carried into every branch.
    extra: Vec<Item>,
    /// Negations with an inexpressible keyword, `(schema pointer, keyword, "!P")`: dropped
    /// here; refused (or ignored when lenient) by [`Ctx::settle_negs`] unless the value
    /// is decided by [`Ctx::emit_finite`].
    bad_negs: Vec<(String, String, String)>,
}

// Synthetic items: a pointer with one of these prefixes is not a schema location.
/// `!P`: the negation of the schema at `P` (expanded into a disjunction of literals).
const NEG: char = '!';
/// `~P\u{1}kw[\u{1}arg]`: the values of kw's type that violate keyword `kw` of `P`
/// (for `required`/`properties`: the one key `arg`).
const LIT: char = '~';
/// `+P\u{1}absent|present\u{1}order\u{1}key`: objects lack / have `key` (dependencies).
const KEY: char = '+';
const SEP: char = '\u{1}';

struct Ctx<'a> {
    root: &'a Value,
    opts: &'a SchemaOptions,
    rules: Vec<Rule>,
    memo: FxHashMap<Key, RuleId>,
    names: FxHashMap<String, u32>,
    queue: VecDeque<(Key, RuleId)>,
    enforced: BTreeSet<(String, String)>,
    ignored: BTreeSet<(String, String)>,
    helpers: FxHashMap<String, RuleId>,
    /// Calls of `domain` so far (bounded by `MAX_DOMAIN_CALLS`).
    domain_calls: std::cell::Cell<usize>,
    /// `format` languages by name.
    formats: FxHashMap<String, Option<Expr>>,
    /// Absolute URI (no fragment) of each `$id` → pointer.
    ids: FxHashMap<String, String>,
    /// `(base URI, anchor)` → pointer.
    anchors: FxHashMap<(String, String), String>,
    /// Pointer of each schema object → its base URI.
    bases: FxHashMap<String, String>,
    item_sep: String,
    key_sep: String,
    /// Draft-04 (`$schema` says so): `1.0` is not an integer, `id` is `$id`.
    draft4: bool,
    /// `if`/`then`/`else` are keywords (draft-07 on; earlier drafts, as the
    /// document's `$schema` names them, read them as annotations).
    conditionals: bool,
    /// Negations dropped because of `lenient` (`!P` pointers).
    neg_dropped: BTreeSet<String>,
}

impl<'a> Ctx<'a> {
    fn new(root: &'a Value, opts: &'a SchemaOptions) -> Result<Self> {
        let (item_sep, key_sep) = match &opts.separators {
            Some((i, k)) => (i.clone(), k.clone()),
            None if opts.indent.is_some() => (",".to_owned(), ": ".to_owned()),
            None => (", ".to_owned(), ": ".to_owned()),
        };
        let mut cx = Ctx {
            root,
            opts,
            rules: Vec::new(),
            memo: FxHashMap::default(),
            names: FxHashMap::default(),
            queue: VecDeque::new(),
            enforced: BTreeSet::new(),
            ignored: BTreeSet::new(),
            helpers: FxHashMap::default(),
            formats: FxHashMap::default(),
            domain_calls: std::cell::Cell::new(0),
            ids: FxHashMap::default(),
            anchors: FxHashMap::default(),
            bases: FxHashMap::default(),
            item_sep,
            key_sep,
            neg_dropped: BTreeSet::new(),
            draft4: root
                .get("$schema")
                .and_then(Value::as_str)
                .is_some_and(|u| u.contains("draft-04") || u.contains("draft-03")),
            conditionals: !root
                .get("$schema")
                .and_then(Value::as_str)
                .is_some_and(|u| {
                    ["draft-03", "draft-04", "draft-06"]
                        .iter()
                        .any(|d| u.contains(d))
                }),
        };
        cx.index(root, String::new(), "urn:corral:root".to_owned())?;
        Ok(cx)
    }

    // ------------------------------------------------------------------
    // document index and references

    fn index(&mut self, v: &'a Value, ptr: String, base: String) -> Result<()> {
        let Value::Object(m) = v else { return Ok(()) };
        let mut base = base;
        // Draft-04 spells `$id` as `id`; an id that is only `#name` is an anchor (draft-04..07).
        let id_kw = if self.draft4 { "id" } else { "$id" };
        if let Some(id) = m.get(id_kw).and_then(Value::as_str) {
            if let Some(name) = id.strip_prefix('#') {
                self.anchors
                    .entry((base.clone(), name.to_owned()))
                    .or_insert_with(|| ptr.clone());
            } else {
                let joined = join_uri(&base, id);
                base = split_fragment(&joined).0.to_owned();
                self.ids.entry(base.clone()).or_insert_with(|| ptr.clone());
            }
        }
        for kw in ["$anchor", "$dynamicAnchor"] {
            if let Some(a) = m.get(kw).and_then(Value::as_str) {
                self.anchors
                    .entry((base.clone(), a.to_owned()))
                    .or_insert_with(|| ptr.clone());
            }
        }
        self.bases.insert(ptr.clone(), base.clone());
        for (k, sub) in m {
            let p = format!("{ptr}/{}", escape_token(k));
            match k.as_str() {
                "additionalProperties"
                | "additionalItems"
                | "contains"
                | "not"
                | "if"
                | "then"
                | "else"
                | "propertyNames"
                | "unevaluatedItems"
                | "unevaluatedProperties"
                | "contentSchema" => {
                    self.index(sub, p, base.clone())?;
                }
                "items" | "prefixItems" | "allOf" | "anyOf" | "oneOf" => match sub {
                    Value::Array(a) => {
                        for (i, s) in a.iter().enumerate() {
                            self.index(s, format!("{p}/{i}"), base.clone())?;
                        }
                    }
                    _ => self.index(sub, p, base.clone())?,
                },
                "properties" | "patternProperties" | "$defs" | "definitions"
                | "dependentSchemas" | "dependencies" => {
                    if let Value::Object(mm) = sub {
                        for (kk, s) in mm {
                            self.index(s, format!("{p}/{}", escape_token(kk)), base.clone())?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn get(&self, ptr: &str) -> Option<&'a Value> {
        self.root.pointer(ptr)
    }

    /// The pointer a `$ref` at `ptr` refers to.
    fn resolve(&self, ptr: &str, reference: &str) -> Result<String> {
        let base = self.bases.get(ptr).cloned().unwrap_or_default();
        let target = join_uri(&base, reference);
        let (uri, frag) = split_fragment(&target);
        let doc = if uri.is_empty() || uri == "urn:corral:root" {
            String::new()
        } else if let Some(p) = self.ids.get(uri) {
            p.clone()
        } else {
            // Another document: corral never fetches schemas.
            return Err(unsupported(
                ptr,
                "$ref",
                &format!("remote reference {reference:?}"),
            ));
        };
        let frag = percent_decode(frag);
        let out = if frag.is_empty() {
            doc
        } else if frag.starts_with('/') {
            format!("{doc}{frag}")
        } else {
            let res_base = self.bases.get(&doc).cloned().unwrap_or_default();
            self.anchors
                .get(&(res_base, frag.clone()))
                .cloned()
                .ok_or_else(|| invalid(ptr, &format!("$ref {reference:?}: no anchor {frag:?}")))?
        };
        if self.get(&out).is_none() {
            return Err(invalid(
                ptr,
                &format!("$ref {reference:?} does not resolve inside the document"),
            ));
        }
        Ok(out)
    }

    // ------------------------------------------------------------------
    // coverage bookkeeping

    /// Is `kw` a keyword of the document's draft (else an annotation)?
    fn is_keyword(&self, kw: &str) -> bool {
        KNOWN.contains(&kw) && (self.conditionals || !matches!(kw, "if" | "then" | "else"))
    }

    fn ok(&mut self, ptr: &str, kw: &str) {
        self.enforced.insert((ptr.to_owned(), kw.to_owned()));
    }

    /// Refuse `kw` at `ptr`, or record it when lenient (then `Ok(())`: the caller skips it).
    fn refuse(&mut self, ptr: &str, kw: &str, why: &str) -> Result<()> {
        if self.opts.lenient {
            self.ignored.insert((ptr.to_owned(), kw.to_owned()));
            Ok(())
        } else {
            Err(unsupported(ptr, kw, why))
        }
    }

    // ------------------------------------------------------------------
    // rules

    fn rule_name(&mut self, key: &Key) -> String {
        let parts: Vec<String> = key
            .items
            .iter()
            .map(|it| {
                let p = &it.ptr.replace(SEP, ":");
                if p.is_empty() {
                    "root".to_owned()
                } else if p.starts_with("/$defs/") || p.starts_with("/definitions/") {
                    p[1..].to_owned()
                } else {
                    format!("root{p}")
                }
            })
            .collect();
        let mut name = parts.join(" & ");
        if self.opts.indent.is_some() && !self.opts.any_whitespace && key.depth > 0 {
            name = format!("{name}@{}", key.depth);
        }
        self.unique(name)
    }

    fn unique(&mut self, name: String) -> String {
        let n = self.names.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            name
        } else {
            format!("{name}#{n}")
        }
    }

    fn add_rule(&mut self, name: String, body: Expr) -> RuleId {
        self.rules.push(Rule {
            name,
            body,
            span: None,
        });
        (self.rules.len() - 1) as RuleId
    }

    fn rule_for(&mut self, mut key: Key) -> RuleId {
        if !self.indent_layout() {
            key.depth = 0;
        }
        key.items = self.canonical_items(std::mem::take(&mut key.items));
        if let Some(&r) = self.memo.get(&key) {
            return r;
        }
        let name = self.rule_name(&key);
        let id = self.add_rule(name, nothing());
        self.memo.insert(key.clone(), id);
        self.queue.push_back((key, id));
        id
    }

    /// `items` sorted, with every bare reference (`$ref` plus annotations) replaced
    /// by its target and duplicate pointers merged. Every use site of a definition
    /// then shares one rule instead of getting its own copy (Kubernetes schemas
    /// reach `ObjectMeta` from dozens of `properties`); the language is the same,
    /// as a bare reference contributes nothing but its target.
    fn canonical_items(&mut self, items: Vec<Item>) -> Vec<Item> {
        let mut out: Vec<Item> = Vec::with_capacity(items.len());
        for mut it in items {
            // A bounded walk: reference cycles stop where they started.
            for _ in 0..32 {
                let Some(Value::Object(m)) = self.get(&it.ptr) else {
                    break;
                };
                let Some(Value::String(r)) = m.get("$ref") else {
                    break;
                };
                let bare = ref_overrides_siblings(self.root)
                    || m.keys().all(|k| {
                        let k = k.as_str();
                        k == "$ref"
                            || (ANNOTATIONS.contains(&k) || !self.is_keyword(k))
                            // These change the base URI or the vocabulary.
                            && !matches!(k, "$schema" | "$id" | "id")
                    });
                if !bare {
                    break;
                }
                let Ok(target) = self.resolve(&it.ptr, r) else {
                    break;
                };
                self.ok(&it.ptr, "$ref");
                // The target's own anyOf/oneOf are still to be expanded, unless
                // the key lists it as done too (then the merge below keeps that).
                it = Item {
                    ptr: target,
                    done: false,
                };
            }
            out.push(it);
        }
        out.sort();
        // Sorted by (ptr, done): a pointer listed twice keeps `done`.
        let mut merged: Vec<Item> = Vec::with_capacity(out.len());
        for it in out {
            match merged.last_mut() {
                Some(last) if last.ptr == it.ptr => last.done |= it.done,
                _ => merged.push(it),
            }
        }
        merged
    }

    fn run(&mut self) -> Result<()> {
        while let Some((key, id)) = self.queue.pop_front() {
            if self.rules.len() > MAX_SCHEMA_RULES {
                return Err(Error::limit(format!(
                    "schema needs more than {MAX_SCHEMA_RULES} rules (MAX_SCHEMA_RULES)"
                )));
            }
            let body = if self.indent_layout() && key.depth > MAX_INDENT_DEPTH {
                nothing()
            } else {
                self.emit(&key)?
            };
            self.rules[id as usize].body = body;
        }
        Ok(())
    }

    fn helper(&mut self, name: &str, make: impl FnOnce(&mut Self) -> Expr) -> Expr {
        if let Some(&r) = self.helpers.get(name) {
            return Expr::Rule(r);
        }
        let id = self.add_rule(name.to_owned(), nothing());
        self.helpers.insert(name.to_owned(), id);
        let body = make(self);
        self.rules[id as usize].body = body;
        Expr::Rule(id)
    }

    // ------------------------------------------------------------------
    // layout

    fn indent_layout(&self) -> bool {
        !self.opts.any_whitespace && self.opts.indent.is_some()
    }

    fn ws(&mut self) -> Expr {
        let max = self.opts.max_whitespace;
        self.helper("ws", |_| {
            Expr::Seq(vec![
                Expr::Alt(vec![
                    Expr::Empty,
                    Expr::Literal(b"\n".to_vec()),
                    Expr::Literal(b"\r\n".to_vec()),
                ]),
                Expr::Repeat {
                    expr: Box::new(Expr::Bytes(vec![(b' ', b' '), (b'\t', b'\t')])),
                    min: 0,
                    max: Some(max),
                },
            ])
        })
    }

    fn newline_indent(&self, depth: u32) -> Expr {
        let k = self.opts.indent.unwrap_or(0) as usize;
        let mut s = b"\n".to_vec();
        s.extend(std::iter::repeat(b' ').take(k * depth as usize));
        Expr::Literal(s)
    }

    /// After `[` / `{` of a non-empty container at `depth`.
    fn open(&mut self, depth: u32) -> Expr {
        if self.opts.any_whitespace {
            self.ws()
        } else if self.opts.indent.is_some() {
            self.newline_indent(depth + 1)
        } else {
            Expr::Empty
        }
    }

    /// Before `]` / `}` of a non-empty container at `depth`.
    fn close(&mut self, depth: u32) -> Expr {
        if self.opts.any_whitespace {
            self.ws()
        } else if self.opts.indent.is_some() {
            self.newline_indent(depth)
        } else {
            Expr::Empty
        }
    }

    fn item_sep(&mut self, depth: u32) -> Expr {
        if self.opts.any_whitespace {
            let ws = self.ws();
            Expr::Seq(vec![ws.clone(), Expr::Literal(b",".to_vec()), ws])
        } else if self.opts.indent.is_some() {
            Expr::Seq(vec![
                Expr::Literal(self.item_sep.as_bytes().to_vec()),
                self.newline_indent(depth + 1),
            ])
        } else {
            Expr::Literal(self.item_sep.as_bytes().to_vec())
        }
    }

    fn key_sep(&mut self) -> Expr {
        if self.opts.any_whitespace {
            let ws = self.ws();
            Expr::Seq(vec![ws.clone(), Expr::Literal(b":".to_vec()), ws])
        } else {
            Expr::Literal(self.key_sep.as_bytes().to_vec())
        }
    }

    fn empty_container(&mut self, open: u8, close: u8) -> Expr {
        if self.opts.any_whitespace {
            let ws = self.ws();
            Expr::Seq(vec![
                Expr::Literal(vec![open]),
                ws,
                Expr::Literal(vec![close]),
            ])
        } else {
            Expr::Literal(vec![open, close])
        }
    }

    // ------------------------------------------------------------------
    // expansion and merging

    fn expand(&self, items: &[Item]) -> Result<Expanded<'a>> {
        let mut out = Expanded {
            sources: Vec::new(),
            groups: Vec::new(),
            is_false: false,
            extra: Vec::new(),
            bad_negs: Vec::new(),
        };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut work: Vec<Item> = items.iter().rev().cloned().collect();
        let done_ptrs: BTreeSet<&str> = items
            .iter()
            .filter(|i| i.done)
            .map(|i| i.ptr.as_str())
            .collect();
        while let Some(it) = work.pop() {
            if !seen.insert(it.ptr.clone()) {
                continue;
            }
            let done = it.done || done_ptrs.contains(it.ptr.as_str());
            if it.ptr.starts_with(LIT) || it.ptr.starts_with(KEY) {
                out.extra.push(it);
                continue;
            }
            if let Some(p) = it.ptr.strip_prefix(NEG) {
                out.extra.push(Item {
                    ptr: it.ptr.clone(),
                    done,
                });
                if done {
                    continue;
                }
                match self.neg_branches(p)? {
                    Err((q, kw)) => out.bad_negs.push((q, kw, it.ptr.clone())),
                    Ok(b) if b.is_empty() => out.is_false = true,
                    Ok(mut b) if b.len() == 1 => {
                        let items = b.pop().unwrap_or_default();
                        work.extend(items.into_iter().rev().map(|ptr| Item { ptr, done: false }));
                    }
                    Ok(b) => out.groups.push(Group {
                        ptr: p.to_owned(),
                        kw: "not",
                        one_of: false,
                        branches: b,
                    }),
                }
                continue;
            }
            let v = self
                .get(&it.ptr)
                .ok_or_else(|| invalid(&it.ptr, "no schema at this pointer"))?;
            let m = match v {
                Value::Bool(true) => continue,
                Value::Bool(false) => {
                    out.is_false = true;
                    continue;
                }
                Value::Object(m) => m,
                _ => return Err(invalid(&it.ptr, "a schema must be an object or a boolean")),
            };
            let mut next = Vec::new();
            let ptr = &it.ptr;
            if m.get("not").is_some_and(|n| n != &Value::Bool(false)) {
                // Conjunctive: `!P/not` becomes a disjunction of literals (a group).
                next.push(Item {
                    ptr: format!("{NEG}{ptr}/not"),
                    done: false,
                });
            }
            if let Some(r) = m.get("$ref") {
                let r = r
                    .as_str()
                    .ok_or_else(|| invalid(&it.ptr, "$ref must be a string"))?;
                let target = Item {
                    ptr: self.resolve(&it.ptr, r)?,
                    done: false,
                };
                if ref_overrides_siblings(self.root) {
                    // Drafts 3-7: the keywords beside `$ref` are not applied.
                    work.push(target);
                    continue;
                }
                next.push(target);
            }
            if let Some(all) = m.get("allOf") {
                let a = all
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| invalid(&it.ptr, "allOf must be a non-empty array"))?;
                for i in 0..a.len() {
                    next.push(Item {
                        ptr: format!("{}/allOf/{i}", it.ptr),
                        done: false,
                    });
                }
            }
            if !done {
                for (kw, one_of) in [("anyOf", false), ("oneOf", true)] {
                    if let Some(g) = m.get(kw) {
                        let a = g.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                            invalid(&it.ptr, &format!("{kw} must be a non-empty array"))
                        })?;
                        out.groups.push(Group {
                            ptr: it.ptr.clone(),
                            kw,
                            one_of,
                            branches: (0..a.len())
                                .map(|i| vec![format!("{}/{kw}/{i}", it.ptr)])
                                .collect(),
                        });
                    }
                }
                if self.conditionals
                    && m.contains_key("if")
                    && (m.contains_key("then") || m.contains_key("else"))
                {
                    // (if ∧ then) ∨ (¬if ∧ else)
                    let branch = |pos: bool, kw: &str| {
                        let mut b = vec![if pos {
                            format!("{ptr}/if")
                        } else {
                            format!("{NEG}{ptr}/if")
                        }];
                        if m.contains_key(kw) {
                            b.push(format!("{ptr}/{kw}"));
                        }
                        b
                    };
                    out.groups.push(Group {
                        ptr: ptr.clone(),
                        kw: "if",
                        one_of: false,
                        branches: vec![branch(true, "then"), branch(false, "else")],
                    });
                }
                for kw in ["dependentRequired", "dependentSchemas", "dependencies"] {
                    let Some(deps) = m.get(kw) else { continue };
                    let deps = deps
                        .as_object()
                        .ok_or_else(|| invalid(ptr, &format!("{kw} must be an object")))?;
                    for (ti, (k, d)) in deps.iter().enumerate() {
                        // Items are sorted: the order field keeps the layout order.
                        let key = |what: &str, i: usize, name: &str| {
                            format!("{KEY}{ptr}{SEP}{what}{SEP}{ti:06}{i:06}{SEP}{name}")
                        };
                        // (key absent) ∨ (key present ∧ dependency). Keys that no
                        // `properties` names are laid out dependents first, then the trigger.
                        let mut present = Vec::new();
                        match d {
                            Value::Array(a) => {
                                for x in a {
                                    let x = x.as_str().ok_or_else(|| {
                                        invalid(ptr, &format!("{kw} must list strings"))
                                    })?;
                                    present.push(key("present", present.len(), x));
                                }
                            }
                            _ if kw == "dependentRequired" => {
                                return Err(invalid(ptr, "dependentRequired must list strings"))
                            }
                            _ => present.push(format!("{ptr}/{kw}/{}", escape_token(k))),
                        }
                        present.push(key("present", present.len(), k));
                        out.groups.push(Group {
                            ptr: ptr.clone(),
                            kw,
                            one_of: false,
                            branches: vec![vec![key("absent", 0, k)], present],
                        });
                    }
                }
            }
            out.sources.push((it.ptr.clone(), m));
            work.extend(next.into_iter().rev());
        }
        // A schema and its own negation in one conjunction (also what a `$ref`
        // cycle through `not` comes to): nothing.
        if seen
            .iter()
            .any(|p| p.strip_prefix(NEG).is_some_and(|q| seen.contains(q)))
        {
            out.is_false = true;
        }
        Ok(out)
    }

    /// The negation of the schema at `ptr` as a disjunction (branches) of
    /// conjunctions of items: one branch per keyword (¬(a ∧ b) = ¬a ∨ ¬b).
    /// An empty list is "nothing"; `Err((pointer, keyword))`: that keyword has
    /// no expressible negation.
    #[allow(clippy::type_complexity)]
    fn neg_branches(
        &self,
        ptr: &str,
    ) -> Result<std::result::Result<Vec<Vec<String>>, (String, String)>> {
        let v = self
            .get(ptr)
            .ok_or_else(|| invalid(ptr, "no schema at this pointer"))?;
        let m = match v {
            Value::Bool(true) => return Ok(Ok(vec![])),
            Value::Bool(false) => return Ok(Ok(vec![vec![]])),
            Value::Object(m) => m,
            _ => return Err(invalid(ptr, "a schema must be an object or a boolean")),
        };
        let lit = |kw: &str| format!("{LIT}{ptr}{SEP}{kw}");
        let mut out = Vec::new();
        for (kw, kv) in m {
            let kw = kw.as_str();
            if ANNOTATIONS.contains(&kw) && kw != "$schema" || !self.is_keyword(kw) {
                continue;
            }
            match kw {
                "type" | "const" | "enum" | "minLength" | "maxLength" | "minItems" | "maxItems"
                | "minProperties" | "maxProperties" => out.push(vec![lit(kw)]),
                "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                    // A draft-04 boolean modifies its sibling bound.
                    if !kv.is_boolean() {
                        out.push(vec![lit(kw)]);
                    }
                }
                "required" => {
                    let a = kv
                        .as_array()
                        .ok_or_else(|| invalid(ptr, "required must be an array"))?;
                    for k in a {
                        let k = k
                            .as_str()
                            .ok_or_else(|| invalid(ptr, "required must list strings"))?;
                        out.push(vec![format!("{}{SEP}{k}", lit(kw))]);
                    }
                }
                "properties" => {
                    let o = kv
                        .as_object()
                        .ok_or_else(|| invalid(ptr, "properties must be an object"))?;
                    for k in o.keys() {
                        out.push(vec![format!("{}{SEP}{k}", lit(kw))]);
                    }
                }
                "$ref" => {
                    let r = kv
                        .as_str()
                        .ok_or_else(|| invalid(ptr, "$ref must be a string"))?;
                    out.push(vec![format!("{NEG}{}", self.resolve(ptr, r)?)]);
                }
                "not" => out.push(vec![format!("{ptr}/not")]),
                "allOf" | "anyOf" => {
                    let n = kv
                        .as_array()
                        .filter(|a| !a.is_empty())
                        .ok_or_else(|| invalid(ptr, &format!("{kw} must be a non-empty array")))?
                        .len();
                    let negs = (0..n).map(|i| format!("{NEG}{ptr}/{kw}/{i}"));
                    if kw == "allOf" {
                        out.extend(negs.map(|x| vec![x]));
                    } else {
                        out.push(negs.collect());
                    }
                }
                "if" => {
                    for (pos, branch) in [(true, "then"), (false, "else")] {
                        if m.contains_key(branch) {
                            let cond = if pos {
                                format!("{ptr}/if")
                            } else {
                                format!("{NEG}{ptr}/if")
                            };
                            out.push(vec![cond, format!("{NEG}{ptr}/{branch}")]);
                        }
                    }
                }
                // Without `if` these do nothing; with it they are read there.
                "then" | "else" => {}
                "minContains" | "maxContains" if !m.contains_key("contains") => {}
                "uniqueItems" if kv == &Value::Bool(false) => {}
                // Unknown formats are annotations.
                "format"
                    if kv.as_str().is_some_and(|f| {
                        !KNOWN_FORMATS.contains(&f) && format_grammar_for_schema(f).is_none()
                    }) => {}
                "dependentRequired" | "dependentSchemas" | "dependencies"
                    if kv.as_object().is_some_and(Map::is_empty) => {}
                // A string outside the language (complemented where it is built).
                "pattern" => out.push(vec![lit(kw)]),
                "format"
                    if kv
                        .as_str()
                        .is_some_and(|f| format_grammar_for_schema(f).is_some()) =>
                {
                    out.push(vec![lit(kw)])
                }
                _ => {
                    let known_schema = kw != "$schema"
                        || kv.as_str().is_some_and(|u| {
                            u.starts_with("http://json-schema.org/")
                                || u.starts_with("https://json-schema.org/")
                        });
                    if kw == "$schema" && known_schema {
                        continue;
                    }
                    return Ok(Err((ptr.to_owned(), kw.to_owned())));
                }
            }
        }
        Ok(Ok(out))
    }

    /// Refuse the negations `expand` could not express (lenient: drop them).
    fn settle_negs(&mut self, ex: &Expanded<'a>) -> Result<()> {
        for (p, kw, neg) in &ex.bad_negs {
            self.refuse(
                p,
                kw,
                "its negation (under not, if/else, oneOf or contains) is not expressible",
            )?;
            self.neg_dropped.insert(neg.clone());
        }
        Ok(())
    }

    /// Merge the keywords of `sources` (the combinators are handled by the caller).
    fn merge(&mut self, ex: &Expanded<'a>) -> Result<Norm<'a>> {
        let mut n = Norm {
            types: T_ALL,
            empty: ex.is_false,
            ..Norm::default()
        };
        let mut any_props = false;
        let mut any_prefix = false;
        let mut any_items = false;
        for (ptr, m) in &ex.sources {
            let ptr = ptr.as_str();
            for (kw, v) in m.iter() {
                let kw = kw.as_str();
                if kw == "$schema" {
                    // A custom meta-schema may switch vocabularies off.
                    let known = v.as_str().is_some_and(|u| {
                        u.starts_with("http://json-schema.org/")
                            || u.starts_with("https://json-schema.org/")
                    });
                    if !known {
                        self.refuse(
                            ptr,
                            kw,
                            "a custom meta-schema (its vocabularies are unknown)",
                        )?;
                    }
                    continue;
                }
                if ANNOTATIONS.contains(&kw) || !self.is_keyword(kw) {
                    continue;
                }
                match kw {
                    "$ref" | "allOf" | "anyOf" | "oneOf" => self.ok(ptr, kw),
                    "type" => {
                        let bits = match v {
                            Value::String(s) => type_bits(s)
                                .ok_or_else(|| invalid(ptr, &format!("unknown type {s:?}")))?,
                            Value::Array(a) => {
                                let mut b = 0;
                                for t in a {
                                    b |= t
                                        .as_str()
                                        .and_then(type_bits)
                                        .ok_or_else(|| invalid(ptr, "type must name JSON types"))?;
                                }
                                b
                            }
                            _ => {
                                return Err(invalid(
                                    ptr,
                                    "type must be a string or an array of strings",
                                ))
                            }
                        };
                        n.types &= bits;
                        self.ok(ptr, kw);
                    }
                    "enum" | "const" => {
                        let vals: Vec<&Value> = if kw == "const" {
                            vec![v]
                        } else {
                            v.as_array()
                                .ok_or_else(|| invalid(ptr, "enum must be an array"))?
                                .iter()
                                .collect()
                        };
                        if n.enums.is_none() {
                            n.enum_ptr = ptr.to_owned();
                        }
                        n.enums = Some(match n.enums.take() {
                            None => vals,
                            Some(prev) => prev
                                .into_iter()
                                .filter(|a| vals.iter().any(|b| json_eq(a, b)))
                                .collect(),
                        });
                        self.ok(ptr, kw);
                    }
                    "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
                    | "maxProperties" | "minContains" | "maxContains" => {
                        let x = v
                            .as_u64()
                            .or_else(|| {
                                v.as_f64()
                                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                                    .map(|f| f as u64)
                            })
                            .ok_or_else(|| {
                                invalid(ptr, &format!("{kw} must be a non-negative integer"))
                            })?;
                        match kw {
                            "minLength" => n.min_len = n.min_len.max(x),
                            "maxLength" => n.max_len = Some(n.max_len.map_or(x, |y| y.min(x))),
                            "minItems" => n.min_items = n.min_items.max(x),
                            "maxItems" => n.max_items = Some(n.max_items.map_or(x, |y| y.min(x))),
                            "minProperties" => n.min_props = n.min_props.max(x),
                            "maxProperties" => {
                                n.max_props = Some(n.max_props.map_or(x, |y| y.min(x)))
                            }
                            // Without `contains` these have no effect.
                            _ if !m.contains_key("contains") => {}
                            _ => continue,
                        }
                        if kw.ends_with("Properties") {
                            n.count_kws.push((
                                ptr.to_owned(),
                                if kw == "minProperties" {
                                    "minProperties"
                                } else {
                                    "maxProperties"
                                },
                            ));
                        } else {
                            self.ok(ptr, kw);
                        }
                    }
                    "pattern" => {
                        let p = v
                            .as_str()
                            .ok_or_else(|| invalid(ptr, "pattern must be a string"))?;
                        match strings::pattern_expr(p) {
                            Ok(e) => {
                                n.str_exprs.push((
                                    ptr.to_owned(),
                                    "pattern",
                                    format!("pattern:{p}"),
                                    e,
                                ));
                                self.ok(ptr, kw);
                            }
                            Err(PatternError::Unsupported(why)) => self.refuse(ptr, kw, &why)?,
                            Err(PatternError::Invalid(why)) => {
                                return Err(invalid(ptr, &format!("pattern: {why}")))
                            }
                        }
                    }
                    "format" => {
                        let f = v
                            .as_str()
                            .ok_or_else(|| invalid(ptr, "format must be a string"))?;
                        let cached = self
                            .formats
                            .entry(f.to_owned())
                            .or_insert_with(|| format_grammar_for_schema(f))
                            .clone();
                        match cached {
                            Some(e) => {
                                n.str_exprs.push((
                                    ptr.to_owned(),
                                    "format",
                                    format!("format:{f}"),
                                    e,
                                ));
                                self.ok(ptr, kw);
                            }
                            // Unknown formats are annotations.
                            None if !KNOWN_FORMATS.contains(&f) => {}
                            None => {
                                self.refuse(ptr, kw, &format!("format {f:?} has no exact grammar"))?
                            }
                        }
                    }
                    "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum"
                    | "multipleOf" => {
                        let kw: &'static str = match kw {
                            "minimum" => "minimum",
                            "maximum" => "maximum",
                            "exclusiveMinimum" => "exclusiveMinimum",
                            "exclusiveMaximum" => "exclusiveMaximum",
                            _ => "multipleOf",
                        };
                        if !(v.is_number() || v.is_boolean() && kw.starts_with("exclusive")) {
                            return Err(invalid(ptr, &format!("{kw} must be a number")));
                        }
                        n.numeric.push((ptr.to_owned(), kw, v));
                    }
                    "items" | "prefixItems" | "additionalItems" | "unevaluatedItems" => {}
                    "properties" | "patternProperties" | "additionalProperties" => {}
                    "unevaluatedProperties" => {
                        // Exact only when every merged schema is evaluated in place
                        // from this one, and no anyOf/if could evaluate more.
                        let (reach, open) = self.in_place_closure(ptr)?;
                        if open || ex.sources.iter().any(|(p, _)| !reach.contains(p)) {
                            self.refuse(
                                ptr,
                                kw,
                                "annotations from sibling, parent, anyOf or if schemas",
                            )?;
                            continue;
                        }
                        let p = format!("{ptr}/unevaluatedProperties");
                        let items = n.unevaluated.get_or_insert_with(Vec::new);
                        items.push(Item {
                            ptr: p,
                            done: false,
                        });
                        self.ok(ptr, kw);
                    }
                    "required" => {
                        let a = v
                            .as_array()
                            .ok_or_else(|| invalid(ptr, "required must be an array"))?;
                        for r in a {
                            let r = r
                                .as_str()
                                .ok_or_else(|| invalid(ptr, "required must list strings"))?;
                            if !n.required.iter().any(|x| x == r) {
                                n.required.push(r.to_owned());
                            }
                        }
                        self.ok(ptr, kw);
                    }
                    "propertyNames" => {
                        n.prop_names.push(format!("{ptr}/propertyNames"));
                    }
                    "uniqueItems" => {
                        if v.as_bool() == Some(true) {
                            // Exact only when no two items can occur; checked at emission.
                            n.numeric.push((ptr.to_owned(), "uniqueItems", v));
                        } else {
                            self.ok(ptr, kw);
                        }
                    }
                    // Expanded into items and groups by `expand`.
                    "not" | "if" | "then" | "else" => {
                        let neg = match kw {
                            "not" => format!("{NEG}{ptr}/not"),
                            _ => format!("{NEG}{ptr}/if"),
                        };
                        if !self.neg_dropped.contains(&neg) {
                            self.ok(ptr, kw);
                        }
                    }
                    "dependentRequired" | "dependentSchemas" | "dependencies" => self.ok(ptr, kw),
                    "contains" => {
                        let cnt = |k: &str| -> Result<Option<u64>> {
                            m.get(k)
                                .map(|c| {
                                    c.as_u64()
                                        .or_else(|| {
                                            c.as_f64()
                                                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                                                .map(|f| f as u64)
                                        })
                                        .ok_or_else(|| {
                                            invalid(
                                                ptr,
                                                &format!("{k} must be a non-negative integer"),
                                            )
                                        })
                                })
                                .transpose()
                        };
                        let lo = cnt("minContains")?.unwrap_or(1);
                        let hi = cnt("maxContains")?;
                        n.contains.push((ptr.to_owned(), lo, hi));
                    }
                    "$dynamicRef" | "$recursiveRef" => {
                        self.refuse(ptr, kw, "dynamic references")?
                    }
                    _ => self.refuse(ptr, kw, "")?,
                }
            }
            any_props |= m.contains_key("properties") || m.contains_key("patternProperties");
            any_prefix |=
                m.contains_key("prefixItems") || m.get("items").is_some_and(Value::is_array);
            any_items |= m.get("items").is_some_and(|v| !v.is_array())
                || m.contains_key("additionalItems")
                || m.contains_key("unevaluatedItems");
            // Arrays: this source's view of item positions.
            let prefix_kw = if m.get("prefixItems").is_some() {
                Some("prefixItems")
            } else if m.get("items").is_some_and(Value::is_array) {
                Some("items")
            } else {
                None
            };
            let rest_kw = if prefix_kw == Some("items") {
                Some("additionalItems")
            } else if m.contains_key("items") {
                Some("items")
            } else {
                None
            };
            if prefix_kw.is_some() || rest_kw.is_some() {
                let mut src = ArrSource {
                    prefix: Vec::new(),
                    rest: None,
                    closed: false,
                };
                if let Some(pk) = prefix_kw {
                    let a = m
                        .get(pk)
                        .and_then(Value::as_array)
                        .ok_or_else(|| invalid(ptr, &format!("{pk} must be an array")))?;
                    src.prefix = (0..a.len()).map(|i| format!("{ptr}/{pk}/{i}")).collect();
                    self.ok(ptr, pk);
                }
                if let Some(rk) = rest_kw {
                    if m.contains_key(rk) {
                        src.rest = Some(format!("{ptr}/{rk}"));
                        self.ok(ptr, rk);
                    }
                }
                n.arr_sources.push(src);
            }
            if m.contains_key("unevaluatedItems") {
                // Equals `items` for the positions no sibling covers only without
                // subschema applicators; refuse otherwise.
                let ui = format!("{ptr}/unevaluatedItems");
                if ex.sources.len() == 1
                    && ex.groups.is_empty()
                    && !m.contains_key("if")
                    && !m.contains_key("contains")
                    && !m.contains_key("items")
                    && !m.contains_key("additionalItems")
                {
                    if let Some(last) = n.arr_sources.last_mut().filter(|_| prefix_kw.is_some()) {
                        last.rest = Some(ui);
                    } else {
                        n.arr_sources.push(ArrSource {
                            prefix: Vec::new(),
                            rest: Some(ui),
                            closed: false,
                        });
                    }
                    self.ok(ptr, "unevaluatedItems");
                } else {
                    self.refuse(
                        ptr,
                        "unevaluatedItems",
                        "together with other item applicators",
                    )?;
                }
            }
            // Objects.
            if m.contains_key("properties")
                || m.contains_key("patternProperties")
                || m.contains_key("additionalProperties")
            {
                let mut src = ObjSource {
                    ptr: ptr.to_owned(),
                    props: Vec::new(),
                    patterns: Vec::new(),
                    additional: None,
                };
                if let Some(p) = m.get("properties") {
                    let p = p
                        .as_object()
                        .ok_or_else(|| invalid(ptr, "properties must be an object"))?;
                    src.props = p
                        .keys()
                        .map(|k| (k.as_str(), format!("{ptr}/properties/{}", escape_token(k))))
                        .collect();
                    self.ok(ptr, "properties");
                }
                if let Some(p) = m.get("patternProperties") {
                    let p = p
                        .as_object()
                        .ok_or_else(|| invalid(ptr, "patternProperties must be an object"))?;
                    src.patterns = p
                        .keys()
                        .map(|k| {
                            (
                                k.as_str(),
                                format!("{ptr}/patternProperties/{}", escape_token(k)),
                            )
                        })
                        .collect();
                }
                if m.contains_key("additionalProperties") {
                    src.additional = Some(format!("{ptr}/additionalProperties"));
                    self.ok(ptr, "additionalProperties");
                }
                n.obj_sources.push(src);
            }
        }
        for it in &ex.extra {
            self.apply_literal(&mut n, &it.ptr)?;
        }
        if self.opts.strict_mode {
            // Strict: objects with named properties forbid others unless a
            // schema says what others may be; same for items after a prefix.
            let has_addl = ex.sources.iter().any(|(_, m)| {
                m.contains_key("additionalProperties")
                    || m.contains_key("patternProperties")
                    || m.contains_key("unevaluatedProperties")
            });
            if any_props && !has_addl {
                n.unevaluated = Some(vec![]);
            }
            if any_prefix && !any_items {
                n.arr_sources.push(ArrSource {
                    prefix: Vec::new(),
                    rest: None,
                    closed: true,
                });
            }
        }
        Ok(n)
    }

    /// Pointers of the schemas evaluated in place from `ptr` ($ref, allOf,
    /// anyOf/oneOf branches), and whether an anyOf or if/then/else is among them.
    fn in_place_closure(&self, ptr: &str) -> Result<(BTreeSet<String>, bool)> {
        let mut seen = BTreeSet::new();
        let mut open = false;
        let mut work = vec![ptr.to_owned()];
        while let Some(p) = work.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            let Some(Value::Object(m)) = self.get(&p) else {
                continue;
            };
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                work.push(self.resolve(&p, r)?);
            }
            open |= m.contains_key("anyOf")
                || m.contains_key("if")
                || m.contains_key("dependentSchemas");
            for kw in ["allOf", "anyOf", "oneOf"] {
                if let Some(a) = m.get(kw).and_then(Value::as_array) {
                    work.extend((0..a.len()).map(|i| format!("{p}/{kw}/{i}")));
                }
            }
        }
        Ok((seen, open))
    }

    /// Apply one synthetic literal item (see [`LIT`], [`KEY`]) to `n`;
    /// `!P` items were expanded already.
    fn apply_literal(&mut self, n: &mut Norm<'a>, item: &str) -> Result<()> {
        if let Some(rest) = item.strip_prefix(KEY) {
            let mut parts = rest.splitn(4, SEP);
            let (_, what, _, key) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next().unwrap_or(""),
            );
            if what == Some("absent") {
                n.absent.push(key.to_owned());
            } else if !n.required.iter().any(|x| x == key) {
                n.required.push(key.to_owned());
            }
            return Ok(());
        }
        let Some(rest) = item.strip_prefix(LIT) else {
            return Ok(());
        };
        let mut parts = rest.splitn(3, SEP);
        let ptr = parts.next().unwrap_or("");
        let kw = parts.next().unwrap_or("");
        let arg = parts.next();
        let root = self.root;
        let Some(Value::Object(m)) = root.pointer(ptr) else {
            return Err(invalid(ptr, "no schema at this pointer"));
        };
        let v = &m[kw];
        const NUM: u8 = T_INT | T_FRAC;
        let count = |v: &Value| -> Result<u64> {
            v.as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| invalid(ptr, &format!("{kw} must be a non-negative integer")))
        };
        match kw {
            "type" => {
                let mut bits = 0;
                match v {
                    Value::String(s) => {
                        bits = type_bits(s).ok_or_else(|| invalid(ptr, "unknown type"))?
                    }
                    Value::Array(a) => {
                        for t in a {
                            bits |= t
                                .as_str()
                                .and_then(type_bits)
                                .ok_or_else(|| invalid(ptr, "unknown type"))?;
                        }
                    }
                    _ => return Err(invalid(ptr, "type must be a string or an array")),
                }
                n.types &= !bits;
            }
            "const" => n.excluded.push((ptr.to_owned(), v)),
            "enum" => {
                let a = v
                    .as_array()
                    .ok_or_else(|| invalid(ptr, "enum must be an array"))?;
                n.excluded.extend(a.iter().map(|x| (ptr.to_owned(), x)));
            }
            "required" => {
                n.types &= T_OBJ;
                n.absent.push(arg.unwrap_or("").to_owned());
            }
            "properties" => {
                // An object with the key, whose value fails the key's schema.
                let k = arg.unwrap_or("");
                let (key, _) = v
                    .as_object()
                    .and_then(|o| o.get_key_value(k))
                    .ok_or_else(|| invalid(ptr, "properties must be an object"))?;
                n.types &= T_OBJ;
                if !n.required.iter().any(|x| x == k) {
                    n.required.push(k.to_owned());
                }
                n.obj_sources.push(ObjSource {
                    ptr: format!("{LIT}{ptr}"),
                    props: vec![(
                        key.as_str(),
                        format!("{NEG}{ptr}/properties/{}", escape_token(k)),
                    )],
                    patterns: Vec::new(),
                    additional: None,
                });
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
            | "maxProperties" => {
                let c = count(v)?;
                let (t, lo, hi) = match kw {
                    "minLength" | "maxLength" => (T_STR, &mut n.min_len, &mut n.max_len),
                    "minItems" | "maxItems" => (T_ARR, &mut n.min_items, &mut n.max_items),
                    _ => (T_OBJ, &mut n.min_props, &mut n.max_props),
                };
                n.types &= t;
                if kw.starts_with("min") {
                    // fewer than c
                    match c.checked_sub(1) {
                        Some(h) => *hi = Some(hi.map_or(h, |x| x.min(h))),
                        None => n.empty = true,
                    }
                } else {
                    *lo = (*lo).max(c.saturating_add(1));
                }
                if t == T_OBJ {
                    let k = if kw == "minProperties" {
                        "maxProperties"
                    } else {
                        "minProperties"
                    };
                    n.count_kws.push((ptr.to_owned(), k));
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                if !v.is_number() {
                    return Err(invalid(ptr, &format!("{kw} must be a number")));
                }
                let excl = |k: &str| m.get(k) == Some(&Value::Bool(true));
                let flipped: &'static str = match kw {
                    "minimum" if excl("exclusiveMinimum") => "maximum",
                    "minimum" => "exclusiveMaximum",
                    "maximum" if excl("exclusiveMaximum") => "minimum",
                    "maximum" => "exclusiveMinimum",
                    "exclusiveMinimum" => "maximum",
                    _ => "minimum",
                };
                n.types &= NUM;
                n.numeric.push((format!("{LIT}{ptr}"), flipped, v));
            }
            "pattern" | "format" => {
                n.types &= T_STR;
                let text = v
                    .as_str()
                    .ok_or_else(|| invalid(ptr, &format!("{kw} must be a string")))?;
                let (kw, decoded) = if kw == "pattern" {
                    match strings::pattern_expr(text) {
                        Ok(e) => ("pattern", e),
                        Err(PatternError::Invalid(why)) => {
                            return Err(invalid(ptr, &format!("pattern: {why}")))
                        }
                        Err(PatternError::Unsupported(why)) => {
                            self.refuse(ptr, "pattern", &why)?;
                            return Ok(());
                        }
                    }
                } else {
                    match format_grammar_for_schema(text) {
                        Some(e) => ("format", e),
                        None => {
                            self.refuse(
                                ptr,
                                "format",
                                &format!("format {text:?} has no exact grammar"),
                            )?;
                            return Ok(());
                        }
                    }
                };
                match outside_of(&decoded) {
                    Some(e) => {
                        n.str_exprs
                            .push((ptr.to_owned(), kw, format!("not-{kw}:{text}"), e))
                    }
                    None => {
                        self.refuse(
                            ptr,
                            kw,
                            "its negation (under not, if/else, oneOf or contains) needs a larger automaton",
                        )?;
                        return Ok(());
                    }
                }
            }
            _ => return Err(invalid(ptr, &format!("no literal for {kw}"))),
        }
        self.ok(ptr, kw);
        Ok(())
    }

    // ------------------------------------------------------------------
    // emission

    /// Refuse an empty root up front, with a clear message.
    fn check_satisfiable(&mut self, key: &Key) -> Result<()> {
        let ex = self.expand(&key.items)?;
        if ex.is_false {
            let p = key.items.first().map_or("", |i| i.ptr.as_str());
            return Err(Error::new(
                ErrorKind::Grammar,
                format!(
                    "schema at {} accepts no value",
                    if p.is_empty() { "/" } else { p }
                ),
            ));
        }
        Ok(())
    }

    fn emit(&mut self, key: &Key) -> Result<Expr> {
        let mut ex = self.expand(&key.items)?;
        if ex.is_false {
            return Ok(nothing());
        }
        if let Some(e) = self.emit_finite(key, &ex)? {
            return Ok(e);
        }
        self.settle_negs(&ex)?;
        if ex.groups.is_empty() {
            let n = self.merge(&ex)?;
            return self.emit_norm(&n, key.depth);
        }
        // Expand anyOf/oneOf: every combination of branches, each merged with the rest.
        let mut base: Vec<Item> = ex
            .sources
            .iter()
            .map(|(p, _)| Item {
                ptr: p.clone(),
                done: true,
            })
            .collect();
        // Negations are expanded by this very call (the groups below).
        base.extend(ex.extra.iter().map(|it| Item {
            ptr: it.ptr.clone(),
            done: true,
        }));
        base.sort();
        for g in &mut ex.groups {
            if g.one_of && !self.disjoint(&base, &g.branches)? {
                // Overlapping branches: branch i also negates every other branch
                // (refused where a negation is not expressible).
                let all: Vec<String> = g.branches.iter().flatten().cloned().collect();
                for (i, b) in g.branches.iter_mut().enumerate() {
                    b.extend(
                        all.iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .map(|(_, p)| format!("{NEG}{p}")),
                    );
                }
            }
        }
        let mut combos: Vec<Vec<String>> = vec![vec![]];
        for g in &ex.groups {
            let mut next = Vec::new();
            for c in &combos {
                for b in &g.branches {
                    let mut c2 = c.clone();
                    c2.extend(b.iter().cloned());
                    next.push(c2);
                }
            }
            if next.len() > MAX_BRANCHES {
                return Err(unsupported(
                    &g.ptr,
                    g.kw,
                    &format!("more than {MAX_BRANCHES} combinations of branches"),
                ));
            }
            combos = next;
        }
        let mut alts = Vec::new();
        for c in combos {
            let mut items = base.clone();
            items.extend(c.into_iter().map(|ptr| Item { ptr, done: false }));
            let sub = Key {
                items,
                depth: key.depth,
            };
            if self.is_empty_conj(&sub.items)? {
                continue;
            }
            alts.push(Expr::Rule(self.rule_for(sub)));
        }
        Ok(Expr::Alt(alts))
    }

    /// A conjunction with `enum`/`const` has finitely many candidates: keep
    /// those that validate against every keyword (exact for keywords with no
    /// grammar of their own). `None` when some candidate cannot be decided.
    fn emit_finite(&mut self, key: &Key, ex: &Expanded<'a>) -> Result<Option<Expr>> {
        let mut cands: Option<Vec<&'a Value>> = None;
        for (ptr, m) in &ex.sources {
            let own: Vec<&'a Value> = if let Some(c) = m.get("const") {
                vec![c]
            } else if let Some(e) = m.get("enum") {
                e.as_array()
                    .ok_or_else(|| invalid(ptr, "enum must be an array"))?
                    .iter()
                    .collect()
            } else {
                continue;
            };
            cands = Some(match cands {
                None => own,
                Some(prev) => prev
                    .into_iter()
                    .filter(|a| own.iter().any(|b| json_eq(a, b)))
                    .collect(),
            });
        }
        let Some(cands) = cands else { return Ok(None) };
        let mut seen = Vec::new();
        let mut keep = Vec::new();
        for v in cands {
            match self.validate_items(&key.items, v, &mut seen)? {
                Some(true) => keep.push(v),
                Some(false) => {}
                None => return Ok(None),
            }
        }
        self.enforced.extend(seen);
        let mut alts = Vec::new();
        for v in keep {
            alts.push(self.const_expr(v, key.depth)?);
        }
        Ok(Some(Expr::Alt(alts)))
    }

    /// Trivially empty (false schema or no common type) — prunes branch combinations.
    fn is_empty_conj(&mut self, items: &[Item]) -> Result<bool> {
        Ok(self.domain(items, 0)?.0 == 0)
    }

    /// Possible types and, if finite, values of a conjunction (over-approximation).
    fn domain(&self, items: &[Item], depth: u32) -> Result<(u8, Option<Vec<&'a Value>>)> {
        // A budget keeps nested anyOf/oneOf from exploding; past it, "anything".
        let used = self.domain_calls.get();
        if used > MAX_DOMAIN_CALLS {
            return Ok((T_ALL, None));
        }
        self.domain_calls.set(used + 1);
        let ex = self.expand(items)?;
        if ex.is_false {
            return Ok((0, Some(vec![])));
        }
        let mut types = T_ALL;
        let mut vals: Option<Vec<&'a Value>> = None;
        for (ptr, m) in &ex.sources {
            if let Some(t) = m.get("type") {
                let mut b = 0;
                match t {
                    Value::String(s) => b = type_bits(s).unwrap_or(T_ALL),
                    Value::Array(a) => a
                        .iter()
                        .for_each(|t| b |= t.as_str().and_then(type_bits).unwrap_or(T_ALL)),
                    _ => b = T_ALL,
                }
                types &= b;
            }
            if let Some(Value::Object(nm)) = m.get("not") {
                if nm.len() == 1 {
                    if let Some(Value::String(s)) = nm.get("type") {
                        types &= !type_bits(s).unwrap_or(0);
                    }
                }
            }
            let own: Option<Vec<&'a Value>> = if let Some(c) = m.get("const") {
                Some(vec![c])
            } else {
                m.get("enum")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
            };
            if let Some(own) = own {
                vals = Some(match vals {
                    None => own,
                    Some(prev) => prev
                        .into_iter()
                        .filter(|a| own.iter().any(|b| json_eq(a, b)))
                        .collect(),
                });
            }
            let _ = ptr;
        }
        if depth < 8 {
            let base: Vec<Item> = ex
                .sources
                .iter()
                .map(|(p, _)| Item {
                    ptr: p.clone(),
                    done: true,
                })
                .collect();
            for g in &ex.groups {
                let mut t = 0;
                let mut union: Option<Vec<&'a Value>> = Some(vec![]);
                for b in &g.branches {
                    let mut items = base.clone();
                    items.extend(b.iter().map(|ptr| Item {
                        ptr: ptr.clone(),
                        done: false,
                    }));
                    let (bt, bv) = self.domain(&items, depth + 1)?;
                    t |= bt;
                    union = match (union, bv) {
                        (Some(mut u), Some(v)) => {
                            u.extend(v);
                            Some(u)
                        }
                        _ => None,
                    };
                }
                types &= t;
                if let Some(u) = union {
                    vals = Some(match vals {
                        None => u,
                        Some(prev) => prev
                            .into_iter()
                            .filter(|a| u.iter().any(|b| json_eq(a, b)))
                            .collect(),
                    });
                }
            }
        }
        if let Some(v) = &mut vals {
            v.retain(|x| value_type(x) & types != 0);
            types = v.iter().fold(0, |acc, x| acc | value_type(x));
        }
        Ok((types, vals))
    }

    /// Are the branches pairwise disjoint under `base`? (different types,
    /// distinct finite values, or objects told apart by a key both require)
    fn disjoint(&self, base: &[Item], branches: &[Vec<String>]) -> Result<bool> {
        let mut doms = Vec::new();
        let mut sides = Vec::new();
        for b in branches {
            let mut items = base.to_vec();
            items.extend(b.iter().map(|ptr| Item {
                ptr: ptr.clone(),
                done: false,
            }));
            doms.push(self.domain(&items, 0)?);
            sides.push(items);
        }
        for i in 0..doms.len() {
            for j in i + 1..doms.len() {
                let (ti, vi) = &doms[i];
                let (tj, vj) = &doms[j];
                if ti & tj == 0 {
                    continue;
                }
                match (vi, vj) {
                    (Some(a), Some(b)) if !a.iter().any(|x| b.iter().any(|y| json_eq(x, y))) => {}
                    (Some(a), None) | (None, Some(a)) if a.is_empty() => {}
                    _ if ti & tj == T_OBJ && self.discriminated(&sides[i], &sides[j])? => {}
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    /// Do both sides require a key whose values they keep apart (a
    /// discriminator: `{"kind": {"const": "a"}}` against `"b"`), or does one
    /// require a key the other forbids (`additionalProperties: false` without
    /// it, or its schema `false`)? Only the merged schemas' own `required`,
    /// `properties` and `additionalProperties` count (what `anyOf` branches
    /// add is left out: fewer disjoint pairs, never a wrong one).
    fn discriminated(&self, a: &[Item], b: &[Item]) -> Result<bool> {
        let (ea, eb) = (self.expand(a)?, self.expand(b)?);
        let required = |ex: &Expanded<'a>| -> BTreeSet<&'a str> {
            ex.sources
                .iter()
                .filter_map(|(_, m)| m.get("required")?.as_array())
                .flatten()
                .filter_map(Value::as_str)
                .collect()
        };
        let value_schemas = |ex: &Expanded<'a>, k: &str| -> Vec<Item> {
            ex.sources
                .iter()
                .filter(|(_, m)| m.get("properties").and_then(|p| p.get(k)).is_some())
                .map(|(ptr, _)| Item {
                    ptr: format!("{ptr}/properties/{}", escape_token(k)),
                    done: false,
                })
                .collect()
        };
        let forbids = |ex: &Expanded<'a>, k: &str| {
            ex.sources.iter().any(|(_, m)| {
                let named = m.get("properties").and_then(|p| p.get(k));
                named == Some(&Value::Bool(false))
                    || named.is_none()
                        && m.get("additionalProperties") == Some(&Value::Bool(false))
                        && m.get("patternProperties").is_none()
            })
        };
        let (ra, rb) = (required(&ea), required(&eb));
        if ra.iter().any(|k| forbids(&eb, k)) || rb.iter().any(|k| forbids(&ea, k)) {
            return Ok(true);
        }
        for k in ra.intersection(&rb) {
            let (ta, va) = self.domain(&value_schemas(&ea, k), 0)?;
            let (tb, vb) = self.domain(&value_schemas(&eb, k), 0)?;
            let apart = ta & tb == 0
                || match (&va, &vb) {
                    (Some(x), Some(y)) => !x.iter().any(|p| y.iter().any(|q| json_eq(p, q))),
                    (Some(x), None) | (None, Some(x)) => x.is_empty(),
                    (None, None) => false,
                };
            if apart {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn emit_norm(&mut self, n: &Norm<'a>, depth: u32) -> Result<Expr> {
        if n.empty || n.types == 0 {
            return Ok(nothing());
        }
        if let Some(vals) = &n.enums {
            return self.emit_enum(n, vals, depth);
        }
        let mut alts = Vec::new();
        let excluded = |v: &Value| n.excluded.iter().any(|(_, x)| json_eq(x, v));
        if n.types & T_NULL != 0 && !excluded(&Value::Null) {
            alts.push(Expr::Literal(b"null".to_vec()));
        }
        if n.types & T_BOOL != 0 {
            for b in [true, false] {
                if !excluded(&Value::Bool(b)) {
                    alts.push(Expr::Literal(if b {
                        b"true".to_vec()
                    } else {
                        b"false".to_vec()
                    }));
                }
            }
        }
        for (p, x) in &n.excluded {
            // Excluding one number, array or object is not expressible (several spellings or
            // no complement); strings are excluded in `emit_string`.
            let t = value_type(x);
            if t & n.types != 0 && t & (T_ARR | T_OBJ) != 0 {
                let p = p.clone();
                self.refuse(&p, "not", "excluding an array or object value")?;
            }
        }
        if n.types & (T_INT | T_FRAC) != 0 {
            if let Some(e) = self.emit_number(n)? {
                alts.push(e);
            }
        } else {
            self.numeric_ignored(n);
        }
        if n.types & T_STR != 0 {
            if let Some(e) = self.emit_string(n)? {
                alts.push(e);
            }
        }
        if n.types & T_ARR != 0 {
            if let Some(e) = self.emit_array(n, depth)? {
                alts.push(e);
            }
        } else {
            for (p, kw, _) in &n.numeric {
                if *kw == "uniqueItems" {
                    self.ok(p, kw);
                }
            }
            for (p, _, _) in &n.contains {
                self.ok(p, "contains");
                for kw in ["minContains", "maxContains"] {
                    if self.get(&format!("{p}/{kw}")).is_some() {
                        self.ok(p, kw);
                    }
                }
            }
        }
        if n.types & T_OBJ != 0 {
            if let Some(e) = self.emit_object(n, depth)? {
                alts.push(e);
            }
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or_else(nothing)
        } else {
            Expr::Alt(alts)
        })
    }

    /// Numeric keywords are vacuous when numbers are excluded.
    fn numeric_ignored(&mut self, n: &Norm<'a>) {
        for (p, kw, _) in &n.numeric {
            if *kw != "uniqueItems" {
                self.ok(p, kw);
            }
        }
    }

    fn emit_enum(&mut self, n: &Norm<'a>, vals: &[&'a Value], depth: u32) -> Result<Expr> {
        let mut alts = Vec::new();
        for v in vals {
            if value_type(v) & n.types == 0 || n.excluded.iter().any(|(_, x)| json_eq(x, v)) {
                continue;
            }
            if !self.value_ok(n, v)? {
                continue;
            }
            match v {
                // Draft-04 counts `1` but not `1.0` as an integer.
                Value::Number(x) if self.draft4 && n.types & T_FRAC == 0 => {
                    alts.push(number_literal(x, IntForm::Plain));
                }
                _ => alts.push(self.const_expr(v, depth)?),
            }
        }
        Ok(Expr::Alt(alts))
    }

    /// Does an enum value satisfy the other constraints of `n`? Refuses what it cannot check.
    fn value_ok(&mut self, n: &Norm<'a>, v: &Value) -> Result<bool> {
        match v {
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if len < n.min_len || n.max_len.is_some_and(|m| len > m) {
                    return Ok(false);
                }
                for (_, _, _, e) in &n.str_exprs {
                    if !strings::matches(e, s)? {
                        return Ok(false);
                    }
                }
            }
            Value::Number(_) => {
                let (lo, hi, mult) = self.numeric_bounds(n)?;
                let x = Decimal::parse(&v.to_string())?;
                if lo.is_some_and(|b| x < b.value || b.exclusive && x == b.value)
                    || hi.is_some_and(|b| x > b.value || b.exclusive && x == b.value)
                {
                    return Ok(false);
                }
                if let Some((p, _, _)) = mult {
                    self.refuse(&p, "multipleOf", "together with enum/const")?;
                }
            }
            Value::Array(_)
                if !n.arr_sources.is_empty()
                    || n.min_items > 0
                    || n.max_items.is_some()
                    || !n.contains.is_empty() =>
            {
                let p = n.enum_ptr.clone();
                self.refuse(&p, "enum", "array keywords together with enum/const")?;
            }
            Value::Object(_)
                if !n.obj_sources.is_empty()
                    || !n.required.is_empty()
                    || n.unevaluated.as_ref().is_some_and(|u| !u.is_empty())
                    || n.min_props > 0
                    || n.max_props.is_some()
                    || !n.prop_names.is_empty()
                    || !n.absent.is_empty() =>
            {
                let p = n.enum_ptr.clone();
                self.refuse(&p, "enum", "object keywords together with enum/const")?;
            }
            _ => {}
        }
        Ok(true)
    }

    /// Every layout of one JSON value.
    fn const_expr(&mut self, v: &Value, depth: u32) -> Result<Expr> {
        Ok(match v {
            Value::Null => Expr::Literal(b"null".to_vec()),
            Value::Bool(b) => Expr::Literal(if *b {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            }),
            Value::Number(x) => number_literal(x, IntForm::ZeroFraction),
            Value::String(s) => quoted(strings::spell_literal(s)),
            Value::Array(a) => {
                if a.is_empty() {
                    return Ok(self.empty_container(b'[', b']'));
                }
                let mut seq = vec![Expr::Literal(b"[".to_vec()), self.open(depth)];
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        seq.push(self.item_sep(depth));
                    }
                    seq.push(self.const_expr(x, depth + 1)?);
                }
                seq.push(self.close(depth));
                seq.push(Expr::Literal(b"]".to_vec()));
                Expr::Seq(seq)
            }
            Value::Object(m) => {
                if m.is_empty() {
                    return Ok(self.empty_container(b'{', b'}'));
                }
                let mut members = Vec::new();
                for (k, x) in m {
                    let ks = self.key_sep();
                    members.push(Expr::Seq(vec![
                        quoted(strings::spell_literal(k)),
                        ks,
                        self.const_expr(x, depth + 1)?,
                    ]));
                }
                let body = if self.opts.property_order == PropertyOrder::Any
                    && members.len() > 1
                    && members.len() <= MAX_PERMUTATION_MEMBERS
                {
                    let len = members.len() as u32;
                    Expr::Permutation {
                        required: vec![true; members.len()],
                        members,
                        sep: Box::new(self.item_sep(depth)),
                        min: len,
                        max: Some(len),
                    }
                } else {
                    let mut seq = Vec::new();
                    for (i, mb) in members.into_iter().enumerate() {
                        if i > 0 {
                            seq.push(self.item_sep(depth));
                        }
                        seq.push(mb);
                    }
                    Expr::Seq(seq)
                };
                Expr::Seq(vec![
                    Expr::Literal(b"{".to_vec()),
                    self.open(depth),
                    body,
                    self.close(depth),
                    Expr::Literal(b"}".to_vec()),
                ])
            }
        })
    }

    /// The tightest bounds and the `multipleOf` of `n` (refusing a second,
    /// different `multipleOf`).
    #[allow(clippy::type_complexity)]
    fn numeric_bounds(
        &mut self,
        n: &Norm<'a>,
    ) -> Result<(
        Option<Bound>,
        Option<Bound>,
        Option<(String, Decimal, Multiple)>,
    )> {
        let mut lo: Option<Bound> = None;
        let mut hi: Option<Bound> = None;
        let mut mult: Option<(String, Decimal, Multiple)> = None;
        let dec = |p: &str, v: &Value| {
            Decimal::parse(&v.to_string()).map_err(|_| invalid(p, &format!("{v} is not a number")))
        };
        for (p, kw, v) in &n.numeric {
            let (p, kw) = (p.as_str(), *kw);
            let (is_lo, exclusive) = match kw {
                "minimum" => (true, false),
                "maximum" => (false, false),
                "exclusiveMinimum" | "exclusiveMaximum" if v.is_boolean() => {
                    // Draft-04: modifies `minimum`/`maximum` of the same schema.
                    self.ok(p, kw);
                    continue;
                }
                "exclusiveMinimum" => (true, true),
                "exclusiveMaximum" => (false, true),
                "multipleOf" => {
                    let m = dec(p, v)?;
                    let text = m.to_string();
                    if text.starts_with('-') || text == "0" {
                        return Err(invalid(p, "multipleOf must be positive"));
                    }
                    let kind = if v.as_u64().is_some()
                        || v.as_f64().is_some_and(|f| f.fract() == 0.0)
                    {
                        Multiple::Integer(v.as_u64().unwrap_or(0))
                    } else if text.starts_with("0.") && text[2..].trim_start_matches('0') == "1" {
                        Multiple::TenPow
                    } else {
                        Multiple::Other
                    };
                    match &mult {
                        Some((_, prev, _)) if *prev != m => {
                            self.refuse(p, kw, "two different multipleOf values")?;
                        }
                        _ => mult = Some((p.to_owned(), m, kind)),
                    }
                    continue;
                }
                _ => continue,
            };
            let draft4 = if is_lo {
                "exclusiveMinimum"
            } else {
                "exclusiveMaximum"
            };
            let exclusive = exclusive
                || n.numeric
                    .iter()
                    .any(|(q, k, w)| q == p && *k == draft4 && w.as_bool() == Some(true));
            let b = Bound {
                value: dec(p, v)?,
                exclusive,
            };
            let slot = if is_lo { &mut lo } else { &mut hi };
            let tighter = match slot {
                None => true,
                Some(old) => {
                    let ord = b.value.cmp(&old.value);
                    ord == if is_lo {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    } || ord == Ordering::Equal && b.exclusive
                }
            };
            if tighter {
                *slot = Some(b);
            }
            self.ok(p, kw);
        }
        Ok((lo, hi, mult))
    }

    fn emit_number(&mut self, n: &Norm<'a>) -> Result<Option<Expr>> {
        let int = n.types & T_INT != 0;
        let frac = n.types & T_FRAC != 0;
        let (mut lo, mut hi, mult) = self.numeric_bounds(n)?;
        // Draft-04 counts `1` but not `1.0` as an integer; a number type takes both.
        let form = if self.draft4 && !frac {
            IntForm::Plain
        } else {
            IntForm::ZeroFraction
        };
        // Excluded values (negated const/enum) cut the range into intervals.
        let mut cuts: Vec<Decimal> = Vec::new();
        let mut cut_ptr = String::new();
        for (p, x) in &n.excluded {
            if value_type(x) & n.types & (T_INT | T_FRAC) == 0 {
                continue;
            }
            let c = Decimal::parse(&x.to_string())?;
            if lo.as_ref().is_some_and(|b| c < b.value) || hi.as_ref().is_some_and(|b| c > b.value)
            {
                continue;
            }
            cut_ptr.clone_from(p);
            match (&mut lo, &mut hi) {
                (Some(b), _) if b.value == c => b.exclusive = true,
                (_, Some(b)) if b.value == c => b.exclusive = true,
                _ => cuts.push(c),
            }
        }
        if !cuts.is_empty() {
            if mult.is_some() || !int {
                self.refuse(
                    &cut_ptr,
                    "not",
                    "excluding a number together with multipleOf",
                )?;
            } else {
                cuts.sort();
                cuts.dedup();
                let mut alts = Vec::new();
                let mut from = lo.clone();
                for c in cuts {
                    let to = Some(Bound {
                        value: c.clone(),
                        exclusive: true,
                    });
                    alts.push((from.take(), to));
                    from = Some(Bound {
                        value: c,
                        exclusive: true,
                    });
                }
                alts.push((from, hi.clone()));
                let mut out = Vec::new();
                for (a, b) in alts {
                    let built = if frac {
                        numbers::number_expr(a.as_ref(), b.as_ref())
                    } else {
                        numbers::integer_expr(a.as_ref(), b.as_ref(), form)
                    };
                    match built {
                        Ok(e) => out.push(e),
                        Err(e) if e.kind() == ErrorKind::Grammar => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(if out.is_empty() {
                    None
                } else {
                    Some(Expr::Alt(out))
                });
            }
        }
        if lo.is_none() && hi.is_none() && mult.is_none() {
            return Ok(Some(match (int, frac) {
                (true, true) => self.helper("json_number", |_| number_syntax()),
                (true, false) if self.draft4 => self.helper("json_integer", |_| int_part()),
                (true, false) => self.helper("json_integer", |_| integer_syntax()),
                (false, true) => self.helper("json_fraction", |_| fraction_syntax()),
                (false, false) => return Ok(None),
            }));
        }
        if !int {
            // Non-integers only (e.g. `not: {type: integer}`) with bounds.
            let p = n
                .numeric
                .first()
                .map(|x| (x.0.clone(), x.1))
                .unwrap_or_default();
            self.refuse(&p.0, p.1, "bounds on non-integer numbers only")?;
            return Ok(Some(self.helper("json_fraction", |_| fraction_syntax())));
        }
        let (lo, hi) = (lo.as_ref(), hi.as_ref());
        let built = match &mult {
            None if frac => numbers::number_expr(lo, hi),
            None => numbers::integer_expr(lo, hi, form),
            Some((p, m, kind)) => match kind {
                Multiple::Integer(k) if *k > 0 => {
                    numbers::integer_multiple_of(*k, lo, hi, form, &mut self.rules)
                }
                // Every integer is a multiple of 10^-k.
                Multiple::TenPow if !frac => numbers::integer_expr(lo, hi, form),
                Multiple::TenPow => numbers::number_multiple_of(m, lo, hi, &mut self.rules),
                _ => {
                    let p = p.clone();
                    self.refuse(&p, "multipleOf", "only integers and 10^-k are exact")?;
                    if frac {
                        numbers::number_expr(lo, hi)
                    } else {
                        numbers::integer_expr(lo, hi, form)
                    }
                }
            },
        };
        match built {
            Ok(e) => {
                if let Some((p, _, _)) = &mult {
                    let p = p.clone();
                    self.ok(&p, "multipleOf");
                }
                Ok(Some(e))
            }
            // An empty range: no number is valid (other types may be).
            Err(e) if e.kind() == ErrorKind::Grammar => Ok(None),
            Err(e) if e.kind() == ErrorKind::Limit => {
                let p = mult.map(|m| m.0).unwrap_or_default();
                self.refuse(&p, "multipleOf", e.message())?;
                Ok(Some(if frac {
                    numbers::number_expr(lo, hi)?
                } else {
                    numbers::integer_expr(lo, hi, form)?
                }))
            }
            Err(e) => Err(e),
        }
    }

    fn emit_string(&mut self, n: &Norm<'a>) -> Result<Option<Expr>> {
        if n.max_len.is_some_and(|m| m < n.min_len) {
            return Ok(None);
        }
        let has_len = n.min_len > 0 || n.max_len.is_some();
        // Excluded strings that the other constraints admit.
        let mut words: Vec<&str> = Vec::new();
        for (p, x) in &n.excluded {
            if let Value::String(w) = x {
                if self.value_ok(n, x)? && !words.contains(&w.as_str()) {
                    if has_len || !n.str_exprs.is_empty() {
                        let p = p.clone();
                        self.refuse(
                            &p,
                            "not",
                            "excluding a string under other string constraints",
                        )?;
                        continue;
                    }
                    words.push(w);
                }
            }
        }
        if !words.is_empty() {
            words.sort_unstable();
            let name = format!("string-not{words:?}");
            if let Some(&r) = self.helpers.get(&name) {
                return Ok(Some(Expr::Rule(r)));
            }
            let body = quoted(spell(&strings::complement(&words))?);
            let id = self.add_rule(name.clone(), body);
            self.helpers.insert(name, id);
            return Ok(Some(Expr::Rule(id)));
        }
        if !has_len && n.str_exprs.is_empty() {
            return Ok(Some(self.helper("json_string", |_| {
                quoted(spell(&any_string()).unwrap_or_else(|_| nothing()))
            })));
        }
        let mut decoded: Option<Expr> = None;
        // Identical string languages share one rule (a `date-time` DFA is large),
        // named by every constraint the language keeps.
        let mut name = String::new();
        let mut kept: Vec<&str> = Vec::new();
        let lengths = format!(
            "{{{},{}}}",
            n.min_len,
            n.max_len.map_or(String::new(), |m| m.to_string())
        );
        for (p, kw, key, e) in &n.str_exprs {
            let e = if has_len {
                let Some(e) = strings::with_length(e, n.min_len, n.max_len) else {
                    let (p, kw) = (p.clone(), *kw);
                    self.refuse(
                        &p,
                        kw,
                        "two constraints on one string (its intersection with \
                         minLength/maxLength is not expressible)",
                    )?;
                    // Lenient: the length stays.
                    if kw == "pattern" || kw == "format" {
                        self.enforced.remove(&(p, kw.to_owned()));
                    }
                    continue;
                };
                e
            } else {
                e.clone()
            };
            decoded = match decoded.take() {
                None => {
                    kept.push(key);
                    Some(e)
                }
                Some(first) => match both_of(&first, &e) {
                    Some(x) => {
                        kept.push(key);
                        Some(x)
                    }
                    None => {
                        let (p, kw) = (p.clone(), *kw);
                        self.refuse(
                            &p,
                            kw,
                            "two constraints on one string (their intersection is not expressible)",
                        )?;
                        // Lenient: the first constraint stays.
                        if kw == "pattern" || kw == "format" {
                            self.enforced.remove(&(p, kw.to_owned()));
                        }
                        Some(first)
                    }
                },
            };
        }
        if !kept.is_empty() {
            name = kept.join("&");
            if has_len {
                name.push_str(&lengths);
            }
        }
        if has_len && decoded.is_none() {
            name = format!("string{lengths}");
            let min = u32::try_from(n.min_len).map_err(|_| {
                Error::limit(format!("minLength {} exceeds {}", n.min_len, u32::MAX))
            })?;
            let max = n.max_len.map(|m| u32::try_from(m).unwrap_or(u32::MAX));
            decoded = Some(Expr::Repeat {
                expr: Box::new(strings::any_char()),
                min,
                max,
            });
        }
        if let Some(&r) = self.helpers.get(&name) {
            return Ok(Some(Expr::Rule(r)));
        }
        let decoded = decoded.unwrap_or_else(any_string);
        // Constrained strings use raw characters: every `\uXXXX` spelling would
        // multiply the automaton of each counted character.
        let spelled = strings::spell_raw(&decoded)?;
        let id = self.add_rule(name.clone(), quoted(spelled));
        self.helpers.insert(name, id);
        Ok(Some(Expr::Rule(id)))
    }

    fn emit_array(&mut self, n: &Norm<'a>, depth: u32) -> Result<Option<Expr>> {
        let plen = n
            .arr_sources
            .iter()
            .map(|s| s.prefix.len())
            .max()
            .unwrap_or(0);
        let min = n.min_items;
        let mut max = n.max_items;
        if let Some(u) = n.numeric.iter().find(|(_, kw, _)| *kw == "uniqueItems") {
            // Arrays of at most one item are always unique.
            let p = u.0.clone();
            if max.is_some_and(|m| m <= 1) {
                self.ok(&p, "uniqueItems");
            } else if n.contains.is_empty() {
                match self.unique_arrays(n, depth, plen)? {
                    Unique::Emitted(e) => {
                        self.ok(&p, "uniqueItems");
                        return Ok(e);
                    }
                    Unique::Implied => self.ok(&p, "uniqueItems"),
                    Unique::No(why) => self.refuse(&p, "uniqueItems", why)?,
                }
            } else {
                self.refuse(&p, "uniqueItems", "together with contains")?;
            }
        }
        if max.is_some_and(|m| m < min) {
            return Ok(None);
        }
        if !n.contains.is_empty() {
            return self.emit_contains(n, depth, plen);
        }
        // The schemas of position i (i < plen) and of the rest.
        let pos_items = |i: usize| -> Vec<Item> {
            n.arr_sources
                .iter()
                .filter_map(|s| {
                    if i < s.prefix.len() {
                        Some(s.prefix[i].clone())
                    } else {
                        s.rest.clone()
                    }
                })
                .map(|ptr| Item { ptr, done: false })
                .collect()
        };
        let mut elem = Vec::new();
        for i in 0..plen {
            let items = pos_items(i);
            elem.push(self.value_ref(items, depth + 1)?);
        }
        let rest_items: Vec<Item> = n
            .arr_sources
            .iter()
            .filter_map(|s| s.rest.clone())
            .map(|ptr| Item { ptr, done: false })
            .collect();
        // A strict-mode closing source has no prefix and no rest: nothing after the prefix.
        let rest_closed = n.arr_sources.iter().any(|s| s.closed);
        let rest = if rest_closed {
            None
        } else {
            Some(self.value_ref(rest_items, depth + 1)?)
        };
        let rest = match rest {
            Some(e) if !is_nothing(&e) => Some(e),
            _ => None,
        };
        if rest.is_none() {
            let cap = plen as u64;
            max = Some(max.map_or(cap, |m| m.min(cap)));
        }
        if max.is_some_and(|m| m < min) {
            return Ok(None);
        }
        let sep = self.item_sep(depth);
        // elems(i): positions i.. given that i items are present (i >= 1), with leading separators.
        let max_u = max.map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        let tail = |i: usize| -> Expr {
            // Items after the prefix, positions i.. (i >= plen).
            let rmin = min.saturating_sub(i as u64);
            let rmax = max_u.map(|m| m.saturating_sub(i));
            match &rest {
                Some(r) if rmax != Some(0) => Expr::Repeat {
                    expr: Box::new(Expr::Seq(vec![sep.clone(), r.clone()])),
                    min: u32::try_from(rmin).unwrap_or(u32::MAX),
                    max: rmax.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
                },
                _ => {
                    if rmin > 0 {
                        nothing()
                    } else {
                        Expr::Empty
                    }
                }
            }
        };
        // Build from the end: after[i] = what may follow once positions 0..i are present.
        let mut after = if plen >= 1 { tail(plen) } else { Expr::Empty };
        for i in (1..plen).rev() {
            let present = Expr::Seq(vec![sep.clone(), elem[i].clone(), after]);
            after = if (i as u64) >= min && max_u.map_or(true, |m| i < m) {
                Expr::Alt(vec![Expr::Empty, present])
            } else if max_u.is_some_and(|m| i >= m) {
                Expr::Empty
            } else {
                present
            };
        }
        let first = if plen >= 1 {
            Expr::Seq(vec![elem[0].clone(), after])
        } else {
            match &rest {
                Some(r) => {
                    let rmin = min.max(1) - 1;
                    Expr::Seq(vec![
                        r.clone(),
                        Expr::Repeat {
                            expr: Box::new(Expr::Seq(vec![sep.clone(), r.clone()])),
                            min: u32::try_from(rmin).unwrap_or(u32::MAX),
                            max: max_u
                                .map(|m| u32::try_from(m.saturating_sub(1)).unwrap_or(u32::MAX)),
                        },
                    ])
                }
                None => nothing(),
            }
        };
        let mut alts = Vec::new();
        if min == 0 {
            alts.push(self.empty_container(b'[', b']'));
        }
        if max != Some(0) && !is_nothing(&first) {
            let (o, c) = (self.open(depth), self.close(depth));
            alts.push(Expr::Seq(vec![
                Expr::Literal(b"[".to_vec()),
                o,
                first,
                c,
                Expr::Literal(b"]".to_vec()),
            ]));
        }
        Ok(Some(Expr::Alt(alts)))
    }

    /// `uniqueItems: true` where it is expressible: items drawn from a finite
    /// set of values (a Permutation of those values, each optional: any
    /// order, each at most once; distinct JSON values never share a spelling,
    /// so `1` and `1.0` are one member), or a closed tuple whose positions are
    /// pairwise disjoint (then every array is unique).
    fn unique_arrays(&mut self, n: &Norm<'a>, depth: u32, plen: usize) -> Result<Unique> {
        let closed = n.arr_sources.iter().any(|s| s.closed);
        let rest: Vec<Item> = n
            .arr_sources
            .iter()
            .filter_map(|s| s.rest.clone())
            .map(|ptr| Item { ptr, done: false })
            .collect();
        let pos = |i: usize| -> Vec<String> {
            n.arr_sources
                .iter()
                .filter_map(|s| {
                    if i < s.prefix.len() {
                        Some(s.prefix[i].clone())
                    } else {
                        s.rest.clone()
                    }
                })
                .collect()
        };
        if plen > 0 {
            let rest_open = !closed
                && n.max_items.map_or(true, |m| m > plen as u64)
                && (rest.is_empty() || !self.is_empty_conj(&rest)?);
            if rest_open {
                return Ok(Unique::No("items after a prefixItems tuple"));
            }
            let branches: Vec<Vec<String>> = (0..plen).map(pos).collect();
            if branches.iter().any(Vec::is_empty) || !self.disjoint(&[], &branches)? {
                return Ok(Unique::No("tuple positions that may hold equal values"));
            }
            return Ok(Unique::Implied);
        }
        if closed || rest.is_empty() {
            return Ok(Unique::No("items not drawn from a finite set of values"));
        }
        let Some(vals) = self.finite_values(&rest)? else {
            return Ok(Unique::No(
                "items that are not drawn from a finite set of values",
            ));
        };
        if vals.len() > MAX_PERMUTATION_MEMBERS {
            return Ok(Unique::No(
                "more than MAX_PERMUTATION_MEMBERS possible item values",
            ));
        }
        let k = vals.len() as u64;
        let min = n.min_items;
        let max = n.max_items.map_or(k, |m| m.min(k));
        let mut alts = Vec::new();
        if min == 0 {
            alts.push(self.empty_container(b'[', b']'));
        }
        if max >= min.max(1) {
            let mut members = Vec::new();
            for v in &vals {
                members.push(self.const_expr(v, depth + 1)?);
            }
            let (o, c) = (self.open(depth), self.close(depth));
            alts.push(Expr::Seq(vec![
                Expr::Literal(b"[".to_vec()),
                o,
                Expr::Permutation {
                    required: vec![false; members.len()],
                    members,
                    sep: Box::new(self.item_sep(depth)),
                    min: u32::try_from(min.max(1)).unwrap_or(u32::MAX),
                    max: Some(u32::try_from(max).unwrap_or(u32::MAX)),
                },
                c,
                Expr::Literal(b"]".to_vec()),
            ]));
        }
        Ok(Unique::Emitted(if alts.is_empty() {
            None
        } else {
            Some(Expr::Alt(alts))
        }))
    }

    /// The values of the conjunction `items` when they are finitely many and
    /// each is decided by the validator (distinct under JSON equality).
    fn finite_values(&mut self, items: &[Item]) -> Result<Option<Vec<Value>>> {
        let (t, vals) = self.domain(items, 0)?;
        let cands: Vec<Value> = match vals {
            Some(v) => v.into_iter().cloned().collect(),
            None if t & !(T_NULL | T_BOOL) == 0 => {
                vec![Value::Null, Value::Bool(true), Value::Bool(false)]
            }
            None => return Ok(None),
        };
        let mut seen = Vec::new();
        let mut out: Vec<Value> = Vec::new();
        for v in cands {
            match self.validate_items(items, &v, &mut seen)? {
                Some(true) if !out.iter().any(|x| json_eq(x, &v)) => out.push(v),
                Some(_) => {}
                None => return Ok(None),
            }
        }
        self.enforced.extend(seen);
        Ok(Some(out))
    }

    /// Arrays under `contains`: each item either matches the contains schema
    /// (M = items ∧ contains) or not (N = items ∧ ¬contains), and the number
    /// of M items is counted: `(N sep)* M (sep N)* (sep M (sep N)*){lo-1,hi-1}`.
    /// Exact when ¬contains is expressible (else its emission refuses) and the
    /// item counts do not interact with the M count.
    fn emit_contains(&mut self, n: &Norm<'a>, depth: u32, plen: usize) -> Result<Option<Expr>> {
        let (cp, mut lo, mut hi) = n.contains[0].clone();
        for (p, l, h) in &n.contains[1..] {
            if (l, h) != (&lo, &hi)
                || self.get(&format!("{p}/contains")) != self.get(&format!("{cp}/contains"))
            {
                let p = p.clone();
                self.refuse(&p, "contains", "two different contains schemas")?;
            }
        }
        if plen > 0 {
            self.refuse(&cp, "contains", "together with prefixItems")?;
        }
        let mark = |cx: &mut Self| {
            for (p, _, _) in &n.contains {
                cx.ok(p, "contains");
                for kw in ["minContains", "maxContains"] {
                    if cx.get(&format!("{p}/{kw}")).is_some() {
                        cx.ok(p, kw);
                    }
                }
            }
        };
        let (mi, ma) = (n.min_items, n.max_items);
        let rest: Vec<Item> = n
            .arr_sources
            .iter()
            .filter_map(|s| s.rest.clone())
            .map(|ptr| Item { ptr, done: false })
            .collect();
        let closed = n.arr_sources.iter().any(|s| s.closed);
        let with = |extra: String| {
            let mut v = rest.clone();
            v.push(Item {
                ptr: extra,
                done: false,
            });
            v
        };
        let no_n = match self.finite_values(&with(format!("{NEG}{cp}/contains")))? {
            Some(v) => v.is_empty(),
            None => false,
        };
        let (m_expr, n_expr) = if closed {
            (nothing(), nothing())
        } else if no_n {
            (
                self.value_ref(with(format!("{cp}/contains")), depth + 1)?,
                nothing(),
            )
        } else {
            (
                self.value_ref(with(format!("{cp}/contains")), depth + 1)?,
                self.value_ref(with(format!("{NEG}{cp}/contains")), depth + 1)?,
            )
        };
        let sep = self.item_sep(depth);
        let seq = |x: &Expr, cmin: u64, cmax: Option<u64>| -> Expr {
            // x (sep x){cmin-1, cmax-1}, cmin >= 1
            Expr::Seq(vec![
                x.clone(),
                Expr::Repeat {
                    expr: Box::new(Expr::Seq(vec![sep.clone(), x.clone()])),
                    min: u32::try_from(cmin - 1).unwrap_or(u32::MAX),
                    max: cmax.map(|m| u32::try_from(m - 1).unwrap_or(u32::MAX)),
                },
            ])
        };
        let mut empty_ok = false;
        let mut bodies = Vec::new();
        if is_nothing(&n_expr) || is_nothing(&m_expr) {
            // One kind of item: plain counts.
            let x = if is_nothing(&n_expr) {
                &m_expr
            } else {
                lo = 0;
                hi = None;
                &n_expr
            };
            let cmin = lo.max(mi);
            let cmax = match (hi, ma) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if is_nothing(x) || cmax.is_some_and(|m| m < cmin) {
                empty_ok = cmin == 0;
            } else {
                empty_ok = cmin == 0;
                if cmax != Some(0) {
                    bodies.push(seq(x, cmin.max(1), cmax));
                }
            }
            if is_nothing(&m_expr) && n.contains[0].1 > 0 {
                mark(self);
                return Ok(None);
            }
        } else {
            if ma.is_some() || mi > lo {
                self.refuse(&cp, "contains", "together with minItems/maxItems")?;
            }
            if hi.is_some_and(|h| h < lo) {
                mark(self);
                return Ok(None);
            }
            let lead = Expr::Repeat {
                expr: Box::new(Expr::Seq(vec![n_expr.clone(), sep.clone()])),
                min: 0,
                max: None,
            };
            let tail = Expr::Repeat {
                expr: Box::new(Expr::Seq(vec![sep.clone(), n_expr.clone()])),
                min: 0,
                max: None,
            };
            if lo == 0 {
                empty_ok = true;
                bodies.push(Expr::Seq(vec![n_expr.clone(), tail.clone()]));
            }
            if hi != Some(0) {
                let group = Expr::Seq(vec![sep.clone(), m_expr.clone(), tail.clone()]);
                bodies.push(Expr::Seq(vec![
                    lead,
                    m_expr.clone(),
                    tail,
                    Expr::Repeat {
                        expr: Box::new(group),
                        min: u32::try_from(lo.max(1) - 1).unwrap_or(u32::MAX),
                        max: hi.map(|h| u32::try_from(h - 1).unwrap_or(u32::MAX)),
                    },
                ]));
            }
        }
        mark(self);
        let mut alts = Vec::new();
        if empty_ok {
            alts.push(self.empty_container(b'[', b']'));
        }
        if !bodies.is_empty() {
            let (o, c) = (self.open(depth), self.close(depth));
            alts.push(Expr::Seq(vec![
                Expr::Literal(b"[".to_vec()),
                o,
                Expr::Alt(bodies),
                c,
                Expr::Literal(b"]".to_vec()),
            ]));
        }
        Ok(if alts.is_empty() {
            None
        } else {
            Some(Expr::Alt(alts))
        })
    }

    /// A reference to the rule for `items` (any value when empty) at `depth`.
    fn value_ref(&mut self, items: Vec<Item>, depth: u32) -> Result<Expr> {
        let items = if items.is_empty() {
            vec![Item {
                ptr: String::new(),
                done: true,
            }]
        } else {
            items
        };
        let items = if items.len() == 1 && items[0].done && items[0].ptr.is_empty() {
            return Ok(self.any_value(depth));
        } else {
            items
        };
        if self.is_empty_conj(&items)? {
            return Ok(nothing());
        }
        Ok(Expr::Rule(self.rule_for(Key { items, depth })))
    }

    /// Any JSON value at `depth`.
    fn any_value(&mut self, depth: u32) -> Expr {
        let d = if self.indent_layout() { depth } else { 0 };
        let name = if d == 0 {
            "json_value".to_owned()
        } else {
            format!("json_value@{d}")
        };
        if let Some(&r) = self.helpers.get(&name) {
            return Expr::Rule(r);
        }
        let id = self.add_rule(name.clone(), nothing());
        self.helpers.insert(name, id);
        let body = if self.indent_layout() && d > MAX_INDENT_DEPTH {
            nothing()
        } else {
            let inner = self.any_value(d + 1);
            let sep = self.item_sep(d);
            let ks = self.key_sep();
            let s = self.helper("json_string", |_| {
                quoted(spell(&any_string()).unwrap_or_else(|_| nothing()))
            });
            let num = self.helper("json_number", |_| number_syntax());
            let (o, c) = (self.open(d), self.close(d));
            let member = Expr::Seq(vec![s.clone(), ks, inner.clone()]);
            let arr = Expr::Alt(vec![
                self.empty_container(b'[', b']'),
                Expr::Seq(vec![
                    Expr::Literal(b"[".to_vec()),
                    o.clone(),
                    inner.clone(),
                    Expr::Repeat {
                        expr: Box::new(Expr::Seq(vec![sep.clone(), inner])),
                        min: 0,
                        max: None,
                    },
                    c.clone(),
                    Expr::Literal(b"]".to_vec()),
                ]),
            ]);
            let obj = Expr::Alt(vec![
                self.empty_container(b'{', b'}'),
                Expr::Seq(vec![
                    Expr::Literal(b"{".to_vec()),
                    o,
                    member.clone(),
                    Expr::Repeat {
                        expr: Box::new(Expr::Seq(vec![sep, member])),
                        min: 0,
                        max: None,
                    },
                    c,
                    Expr::Literal(b"}".to_vec()),
                ]),
            ]);
            Expr::Alt(vec![
                Expr::Literal(b"null".to_vec()),
                Expr::Literal(b"true".to_vec()),
                Expr::Literal(b"false".to_vec()),
                num,
                s,
                arr,
                obj,
            ])
        };
        self.rules[id as usize].body = body;
        Expr::Rule(id)
    }

    fn emit_object(&mut self, n: &Norm<'a>, depth: u32) -> Result<Option<Expr>> {
        // Named keys: every `properties` name and every required name, first-seen order.
        let mut names: Vec<String> = Vec::new();
        for s in &n.obj_sources {
            for (k, _) in &s.props {
                if !names.iter().any(|x| x == k) {
                    names.push((*k).to_owned());
                }
            }
        }
        for r in n.required.iter().chain(&n.absent) {
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
        // Pattern properties: (source pointer, value schema pointer, key language).
        let mut patterns: Vec<(String, String, CharDfa, Expr)> = Vec::new();
        for src in &n.obj_sources {
            for (p, q) in &src.patterns {
                match strings::pattern_expr(p) {
                    Ok(e) => match CharDfa::from_expr(&e) {
                        Some(d) => patterns.push((src.ptr.clone(), q.clone(), d, e)),
                        None => self.refuse(
                            &src.ptr,
                            "patternProperties",
                            &format!(
                                "pattern {p:?} needs more than {} automaton states as a key language",
                                chardfa::MAX_STATES
                            ),
                        )?,
                    },
                    Err(PatternError::Unsupported(why)) => {
                        self.refuse(&src.ptr, "patternProperties", &why)?
                    }
                    Err(PatternError::Invalid(why)) => {
                        return Err(invalid(&src.ptr, &format!("patternProperties: {why}")))
                    }
                }
            }
        }
        let closed = n.unevaluated.as_ref().is_some_and(Vec::is_empty);
        // Value schemas of each named key.
        let mut slots = Vec::new();
        for k in &names {
            let mut items = Vec::new();
            let mut forbidden = false;
            let mut evaluated = false;
            for s in &n.obj_sources {
                let mut covered = false;
                if let Some((_, p)) = s.props.iter().find(|(x, _)| x == k) {
                    items.push(p.clone());
                    covered = true;
                }
                for (sp, pp, d, _) in &patterns {
                    if *sp == s.ptr && d.matches(k) {
                        items.push(pp.clone());
                        covered = true;
                    }
                }
                if !covered {
                    if let Some(a) = &s.additional {
                        items.push(a.clone());
                        covered = true;
                    }
                }
                evaluated |= covered;
            }
            if !evaluated {
                if let Some(u) = &n.unevaluated {
                    if u.is_empty() {
                        forbidden = true;
                    }
                    items.extend(u.iter().map(|i| i.ptr.clone()));
                }
            }
            for pn in &n.prop_names {
                if !self.key_ok(pn, k)? {
                    forbidden = true;
                }
            }
            forbidden |= n.absent.contains(k);
            let required = n.required.contains(k);
            let val = if forbidden {
                nothing()
            } else {
                let items = items
                    .into_iter()
                    .map(|ptr| Item { ptr, done: false })
                    .collect();
                self.value_ref(items, depth + 1)?
            };
            if is_nothing(&val) {
                if required {
                    return Ok(None);
                }
                continue;
            }
            // Keys no `properties` names (only `required` or a dependency) take any order.
            let free = !n
                .obj_sources
                .iter()
                .any(|s| s.props.iter().any(|(x, _)| x == k));
            slots.push((k.clone(), val, required, free));
        }
        // Other keys: classes of keys (all keys not named, or a key language
        // cut out by the patterns) with the schemas their values meet.
        let classes = if patterns.is_empty() {
            self.other_keys(n, closed)
        } else {
            self.pattern_key_classes(n, &patterns, &names)?
        };
        let mut addl = Vec::new();
        for (lang, items) in classes {
            let items = items
                .into_iter()
                .map(|ptr| Item { ptr, done: false })
                .collect();
            let v = self.value_ref(items, depth + 1)?;
            let names_forbidden = n
                .prop_names
                .iter()
                .any(|p| self.get(p) == Some(&Value::Bool(false)));
            if is_nothing(&v) || names_forbidden {
                continue;
            }
            for pn in &n.prop_names {
                if !self.get(pn).is_some_and(is_trivially_true) {
                    let at = pn.trim_end_matches("/propertyNames").to_owned();
                    self.refuse(&at, "propertyNames", "on keys the schema does not name")?;
                }
            }
            let words: Vec<&str> = names.iter().map(String::as_str).collect();
            // Every key language is a rule of its own: a rule that reaches
            // no other is classified by its DFA alone, and its entries are
            // shared by every grammar of the compiler (inlined into the
            // object's rule, a free key cost a parser walk of the whole
            // vocabulary in every schema).
            let key = match lang {
                KeyLang::Dfa(d) => self.key_language(&d)?,
                KeyLang::Pattern(e) => {
                    let body = quoted(strings::spell_raw(&e)?);
                    let name = self.unique("pattern_key".to_owned());
                    Expr::Rule(self.add_rule(name, body))
                }
                KeyLang::Others if words.is_empty() => self.helper("json_string", |_| {
                    quoted(spell(&any_string()).unwrap_or_else(|_| nothing()))
                }),
                KeyLang::Others => self.key_complement(&words)?,
            };
            addl.push((key, v));
        }
        for pn in &n.prop_names {
            let at = pn.trim_end_matches("/propertyNames").to_owned();
            self.ok(&at, "propertyNames");
        }
        self.object_layout(n, slots, addl, depth)
    }

    /// Without patterns: the schemas every key not named meets (`None` when
    /// such keys are forbidden).
    fn other_keys(&self, n: &Norm<'a>, closed: bool) -> Vec<(KeyLang, Vec<String>)> {
        if closed {
            return Vec::new();
        }
        let mut items: Vec<String> = n
            .obj_sources
            .iter()
            .filter_map(|s| s.additional.clone())
            .collect();
        if items.is_empty() {
            if let Some(u) = &n.unevaluated {
                items.extend(u.iter().map(|i| i.ptr.clone()));
            }
        }
        vec![(KeyLang::Others, items)]
    }

    /// With patterns: the keys not named, split by the languages of the
    /// patterns of each source (a key matching a pattern meets its schema,
    /// one matching none its source's `additionalProperties`), each class with
    /// its key language and the schemas its values meet. Keys no source
    /// evaluates meet `unevaluatedProperties`.
    fn pattern_key_classes(
        &mut self,
        n: &Norm<'a>,
        patterns: &[(String, String, CharDfa, Expr)],
        names: &[String],
    ) -> Result<Vec<(KeyLang, Vec<String>)>> {
        let too_big = |what: &str| {
            format!(
                "{what} needs more than {} automaton states as a key language",
                chardfa::MAX_STATES
            )
        };
        let any = CharDfa::from_expr(&any_string())
            .ok_or_else(|| Error::new(ErrorKind::Internal, "any key"))?;
        // (language, an expression of that language, schemas, evaluated by some source)
        type Class = (CharDfa, Option<Expr>, Vec<String>, bool);
        let mut classes: Vec<Class> = vec![(any, Some(any_string()), Vec::new(), false)];
        for src in &n.obj_sources {
            let mine: Vec<&(String, String, CharDfa, Expr)> =
                patterns.iter().filter(|p| p.0 == src.ptr).collect();
            if mine.is_empty() && src.additional.is_none() {
                continue;
            }
            let mut next = Vec::new();
            for (lang, whole, items, ev) in classes {
                // (language, whole pattern, schemas, evaluated, matched a pattern of this source)
                let mut parts = vec![(lang, whole, items, ev, false)];
                for (_, pp, d, e) in &mine {
                    let not_d = d.complement();
                    let mut split = Vec::new();
                    for (l, whole, it, ev, matched) in parts {
                        let (Some(yes), Some(no)) = (l.intersect(d), l.intersect(&not_d)) else {
                            self.refuse(&src.ptr, "patternProperties", &too_big("a pattern"))?;
                            return Ok(Vec::new());
                        };
                        // All keys cut by one pattern: that pattern's language.
                        let all = whole.as_ref().is_some_and(|w| *w == any_string());
                        if !yes.is_empty() {
                            let mut it2 = it.clone();
                            it2.push(pp.clone());
                            split.push((yes, all.then(|| e.clone()), it2, true, true));
                        }
                        if !no.is_empty() {
                            let outside = if all {
                                strings::complement_expr(e)
                            } else {
                                None
                            };
                            split.push((no, outside, it, ev, matched));
                        }
                    }
                    parts = split;
                    if parts.len() > MAX_KEY_CLASSES {
                        self.refuse(
                            &src.ptr,
                            "patternProperties",
                            &format!("overlapping patterns make more than {MAX_KEY_CLASSES} classes of keys"),
                        )?;
                        return Ok(Vec::new());
                    }
                }
                for (l, whole, mut it, mut ev, matched) in parts {
                    if let (false, Some(a)) = (matched, &src.additional) {
                        it.push(a.clone());
                        ev = true;
                    }
                    next.push((l, whole, it, ev));
                }
            }
            classes = next;
            self.ok(&src.ptr, "patternProperties");
        }
        let not_named = if names.is_empty() {
            None
        } else {
            let words = Expr::Alt(
                names
                    .iter()
                    .map(|k| Expr::Literal(k.as_bytes().to_vec()))
                    .collect(),
            );
            Some(
                CharDfa::from_expr(&words)
                    .ok_or_else(|| Error::new(ErrorKind::Internal, "named keys"))?
                    .complement(),
            )
        };
        let at = patterns.first().map(|p| p.0.clone()).unwrap_or_default();
        let mut out = Vec::new();
        for (lang, whole, mut items, ev) in classes {
            if !ev {
                match &n.unevaluated {
                    Some(u) if u.is_empty() => continue,
                    Some(u) => items.extend(u.iter().map(|i| i.ptr.clone())),
                    None => {}
                }
            }
            // A language with an expression (a pattern's, or its complement's)
            // that holds no named key keeps it (and its counters).
            if let Some(e) = whole {
                let inside: Vec<&str> = names
                    .iter()
                    .filter(|k| lang.matches(k))
                    .map(String::as_str)
                    .collect();
                if inside.is_empty() {
                    out.push((KeyLang::Pattern(e), items));
                    continue;
                }
                if let Some(e) = strings::run_without(&e, &inside) {
                    out.push((KeyLang::Pattern(e), items));
                    continue;
                }
            }
            let lang = match &not_named {
                None => lang,
                Some(nn) => match lang.intersect(nn) {
                    Some(l) => l,
                    None => {
                        self.refuse(
                            &at,
                            "patternProperties",
                            &too_big("a pattern without the named keys"),
                        )?;
                        continue;
                    }
                },
            };
            if lang.is_empty() {
                continue;
            }
            let w = lang.ranges();
            if w > MAX_KEY_RANGES {
                self.refuse(
                    &at,
                    "patternProperties",
                    &format!(
                        "the keys left by the patterns need an automaton of {w} character \
                         ranges, over the limit of {MAX_KEY_RANGES}"
                    ),
                )?;
                continue;
            }
            out.push((KeyLang::Dfa(lang), items));
        }
        Ok(out)
    }

    /// A quoted key language: one expression where the DFA has one (cycles
    /// only as self-loops), else right-linear rules, one per state; behind
    /// one rule either way (the layout refers to it several times).
    fn key_language(&mut self, d: &CharDfa) -> Result<Expr> {
        let body = match d.to_expr(KEY_EXPR_BUDGET) {
            Some(e) => strings::spell_raw(&e)?,
            None => {
                let base = self.rules.len() as RuleId;
                let name = self.unique("key_state".to_owned());
                for (i, b) in d
                    .to_rules(base, strings::spell_raw)?
                    .into_iter()
                    .enumerate()
                {
                    self.add_rule(format!("{name}/{i}"), b);
                }
                Expr::Rule(base)
            }
        };
        let name = self.unique("pattern_key".to_owned());
        Ok(Expr::Rule(self.add_rule(name, quoted(body))))
    }

    /// The quoted keys other than `words`, as a rule shared by every object
    /// with the same named keys (the layout refers to the key language several
    /// times; Kubernetes objects name 30 keys and are used from many places).
    fn key_complement(&mut self, words: &[&str]) -> Result<Expr> {
        let name = format!("key-not{words:?}");
        if let Some(&r) = self.helpers.get(&name) {
            return Ok(Expr::Rule(r));
        }
        // Raw spelling keeps the complement small (and still exact).
        let decoded = strings::complement(words);
        let body = quoted(strings::spell_raw(&decoded)?);
        let rule_name = self.unique("other_key".to_owned());
        let id = self.add_rule(rule_name, body);
        self.helpers.insert(name, id);
        Ok(Expr::Rule(id))
    }

    /// Is `key` valid under the propertyNames schema at `ptr`? Checks string keywords only.
    fn key_ok(&mut self, ptr: &str, key: &str) -> Result<bool> {
        let items = [Item {
            ptr: ptr.to_owned(),
            done: false,
        }];
        // One concrete string: the validator decides every keyword it knows.
        let mut seen = Vec::new();
        if let Some(ok) = self.validate_items(&items, &Value::String(key.to_owned()), &mut seen)? {
            self.enforced.extend(seen);
            return Ok(ok);
        }
        let ex = self.expand(&items)?;
        if ex.is_false {
            return Ok(false);
        }
        if !ex.groups.is_empty() {
            self.refuse(ptr, "anyOf", "inside propertyNames")?;
            return Ok(true);
        }
        self.settle_negs(&ex)?;
        let n = self.merge(&ex)?;
        if n.types & T_STR == 0 || n.empty {
            return Ok(false);
        }
        if let Some(e) = &n.enums {
            if !e.iter().any(|v| v.as_str() == Some(key)) {
                return Ok(false);
            }
        }
        if n.excluded.iter().any(|(_, v)| v.as_str() == Some(key)) {
            return Ok(false);
        }
        self.value_ok(&n, &Value::String(key.to_owned()))
    }

    fn object_layout(
        &mut self,
        n: &Norm<'a>,
        slots: Vec<(String, Expr, bool, bool)>,
        addl: Vec<(Expr, Expr)>,
        depth: u32,
    ) -> Result<Option<Expr>> {
        let nreq = slots.iter().filter(|s| s.2).count() as u64;
        let total = if !addl.is_empty() {
            None
        } else {
            Some(slots.len() as u64)
        };
        let min_p = n.min_props;
        let max_p = n.max_props;
        if max_p.is_some_and(|m| m < nreq) || total.is_some_and(|t| t < min_p) {
            return Ok(None);
        }
        let ks = self.key_sep();
        let member = |k: &str, v: &Expr, ks: &Expr| -> Result<Expr> {
            Ok(Expr::Seq(vec![
                quoted(strings::spell_literal(k)),
                ks.clone(),
                v.clone(),
            ]))
        };
        let mut members: Vec<(Expr, bool)> = Vec::new();
        let mut free: Vec<(Expr, bool)> = Vec::new();
        for (k, v, r, f) in &slots {
            let m = (member(k, v, &ks)?, *r);
            if *f && self.opts.property_order == PropertyOrder::Schema {
                free.push(m);
            } else {
                members.push(m);
            }
        }
        let mut addl_alts: Vec<Expr> = addl
            .iter()
            .map(|(k, v)| Expr::Seq(vec![k.clone(), ks.clone(), v.clone()]))
            .collect();
        let addl_member = match addl_alts.len() {
            0 => None,
            1 => addl_alts.pop(),
            _ => Some(Expr::Alt(addl_alts)),
        };
        let sep = self.item_sep(depth);
        match free.len() {
            0 => {}
            1 => members.extend(free),
            // Too many for one any-order member: they keep the order the schema
            // lists them in (a narrowing like the `properties` order itself).
            k if k > MAX_PERMUTATION_MEMBERS => members.extend(free),
            _ => {
                // One member: the free keys in any order, at least one of them.
                let required: Vec<bool> = free.iter().map(|m| m.1).collect();
                let any_req = required.iter().any(|r| *r);
                members.push((
                    Expr::Permutation {
                        members: free.into_iter().map(|m| m.0).collect(),
                        required,
                        sep: Box::new(sep.clone()),
                        min: 1,
                        max: None,
                    },
                    any_req,
                ));
            }
        }
        // Property counts: exact only when the count is fixed by the slots, or via Permutation.
        let perm = self.opts.property_order == PropertyOrder::Any && members.len() > 1;
        let mut min_nonempty = false;
        let mut count_ok = true;
        if min_p > nreq {
            if min_p == 1 {
                min_nonempty = true;
            } else if !(perm && addl.is_empty()) {
                count_ok = false;
            }
        }
        if let Some(m) = max_p {
            let reachable = total.unwrap_or(u64::MAX);
            if m == 0 {
                // Only the empty object.
                for (p, kw) in &n.count_kws {
                    self.ok(p, kw);
                }
                return Ok(if nreq == 0 {
                    Some(self.empty_container(b'{', b'}'))
                } else {
                    None
                });
            }
            if m < reachable && !(perm && addl.is_empty()) {
                count_ok = false;
            }
        }
        if count_ok {
            for (p, kw) in &n.count_kws {
                self.ok(p, kw);
            }
        } else if let Some((p, kw)) = n.count_kws.first() {
            let (p, kw) = (p.clone(), *kw);
            self.refuse(&p, kw, "property counts over optional properties")?;
        }
        let mut alts = Vec::new();
        if nreq == 0 && !min_nonempty {
            alts.push(self.empty_container(b'{', b'}'));
        }
        let addl_tail = addl_member.as_ref().map_or(Expr::Empty, |m| Expr::Repeat {
            expr: Box::new(Expr::Seq(vec![sep.clone(), m.clone()])),
            min: 0,
            max: None,
        });
        let mut bodies = Vec::new();
        if perm {
            if members.len() > MAX_PERMUTATION_MEMBERS {
                return Err(Error::limit(format!("property_order=\"any\" with {} properties exceeds MAX_PERMUTATION_MEMBERS={MAX_PERMUTATION_MEMBERS}", members.len())));
            }
            let required: Vec<bool> = members.iter().map(|m| m.1).collect();
            let pmin = u32::try_from(min_p.max(1)).unwrap_or(u32::MAX);
            let pmax = max_p.map(|m| u32::try_from(m).unwrap_or(u32::MAX));
            bodies.push(Expr::Seq(vec![
                Expr::Permutation {
                    members: members.into_iter().map(|m| m.0).collect(),
                    required,
                    sep: Box::new(sep.clone()),
                    min: pmin,
                    max: pmax,
                },
                addl_tail.clone(),
            ]));
        } else {
            // tail(i): optional/required `sep member_i` for i.., then the additional ones.
            let base_name = format!("object{}", self.rules.len());
            let mut tail = addl_tail.clone();
            let mut tails = vec![Expr::Empty; members.len() + 1];
            tails[members.len()] = tail.clone();
            for i in (0..members.len()).rev() {
                let (m, req) = &members[i];
                let present = Expr::Seq(vec![sep.clone(), m.clone()]);
                let body = Expr::Seq(vec![
                    if *req {
                        present
                    } else {
                        Expr::Alt(vec![Expr::Empty, present])
                    },
                    tail,
                ]);
                let name = self.unique(format!("{base_name}/tail{i}"));
                let id = self.add_rule(name, body);
                tail = Expr::Rule(id);
                tails[i] = tail.clone();
            }
            // The first present member j: all before it are optional.
            for (j, (m, req)) in members.iter().enumerate() {
                bodies.push(Expr::Seq(vec![m.clone(), tails[j + 1].clone()]));
                if *req {
                    break;
                }
            }
            if nreq == 0 {
                if let Some(am) = &addl_member {
                    bodies.push(Expr::Seq(vec![am.clone(), addl_tail.clone()]));
                }
            }
        }
        if perm && nreq == 0 && addl_member.is_some() {
            if let Some(am) = &addl_member {
                bodies.push(Expr::Seq(vec![am.clone(), addl_tail]));
            }
        }
        if !bodies.is_empty() {
            let (o, c) = (self.open(depth), self.close(depth));
            alts.push(Expr::Seq(vec![
                Expr::Literal(b"{".to_vec()),
                o,
                Expr::Alt(bodies),
                c,
                Expr::Literal(b"}".to_vec()),
            ]));
        }
        if alts.is_empty() {
            return Ok(None);
        }
        Ok(Some(Expr::Alt(alts)))
    }
}

fn is_trivially_true(v: &Value) -> bool {
    v == &Value::Bool(true)
        || v.as_object().is_some_and(|m| {
            m.keys()
                .all(|k| ANNOTATIONS.contains(&k.as_str()) || !KNOWN.contains(&k.as_str()))
        })
}

/// Before draft 2019-09, `$ref` replaced its schema object: the keywords beside
/// it are ignored.
fn ref_overrides_siblings(root: &Value) -> bool {
    root.get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|u| {
            ["draft-03", "draft-04", "draft-06", "draft-07"]
                .iter()
                .any(|d| u.contains(d))
        })
}

fn is_nothing(e: &Expr) -> bool {
    matches!(e, Expr::Alt(v) if v.is_empty())
}

fn quoted(content: Expr) -> Expr {
    Expr::Seq(vec![
        Expr::Literal(b"\"".to_vec()),
        content,
        Expr::Literal(b"\"".to_vec()),
    ])
}

fn digits(min: u32) -> Expr {
    Expr::Repeat {
        expr: Box::new(Expr::Bytes(vec![(b'0', b'9')])),
        min,
        max: None,
    }
}

fn int_part() -> Expr {
    Expr::Seq(vec![
        Expr::Alt(vec![Expr::Empty, Expr::Literal(b"-".to_vec())]),
        Expr::Alt(vec![
            Expr::Literal(b"0".to_vec()),
            Expr::Seq(vec![Expr::Bytes(vec![(b'1', b'9')]), digits(0)]),
        ]),
    ])
}

/// Integers, also written with a zero fraction (`1.0` is an integer in JSON Schema).
fn integer_syntax() -> Expr {
    Expr::Seq(vec![int_part(), IntForm::ZeroFraction.tail()])
}

/// Any JSON number.
fn number_syntax() -> Expr {
    Expr::Seq(vec![
        int_part(),
        Expr::Alt(vec![
            Expr::Empty,
            Expr::Seq(vec![Expr::Literal(b".".to_vec()), digits(1)]),
        ]),
        Expr::Alt(vec![
            Expr::Empty,
            Expr::Seq(vec![
                Expr::Bytes(vec![(b'e', b'e'), (b'E', b'E')]),
                Expr::Alt(vec![
                    Expr::Empty,
                    Expr::Bytes(vec![(b'+', b'+'), (b'-', b'-')]),
                ]),
                digits(1),
            ]),
        ]),
    ])
}

/// Numbers that are not integers (plain notation with a non-zero fraction digit).
fn fraction_syntax() -> Expr {
    Expr::Seq(vec![
        int_part(),
        Expr::Literal(b".".to_vec()),
        digits(0),
        Expr::Bytes(vec![(b'1', b'9')]),
        digits(0),
    ])
}

/// The spellings of a number constant: its own text, and for integral values
/// the integer in `form` (with an optional zero fraction or without; and
/// `-0` for zero).
fn number_literal(x: &serde_json::Number, form: IntForm) -> Expr {
    let int_text = if let Some(i) = x.as_i64() {
        Some(i.to_string())
    } else if let Some(u) = x.as_u64() {
        Some(u.to_string())
    } else {
        x.as_f64()
            .filter(|f| f.fract() == 0.0 && f.is_finite())
            .map(|f| format!("{f:.0}"))
    };
    match int_text {
        Some(t) => {
            let zero_frac = form.tail();
            let t = t.trim_start_matches('-').to_owned();
            let negative = x.as_f64().is_some_and(|f| f < 0.0) || x.as_i64().is_some_and(|i| i < 0);
            let sign = if t == "0" {
                Expr::Alt(vec![Expr::Empty, Expr::Literal(b"-".to_vec())])
            } else if negative {
                Expr::Literal(b"-".to_vec())
            } else {
                Expr::Empty
            };
            Expr::Seq(vec![sign, Expr::Literal(t.into_bytes()), zero_frac])
        }
        None => Expr::Literal(x.to_string().into_bytes()),
    }
}

/// What `uniqueItems` needs of an array grammar.
enum Unique {
    /// The whole array grammar (`None`: no array).
    Emitted(Option<Expr>),
    /// Every array the other keywords allow is unique.
    Implied,
    /// Not expressible, and why.
    No(&'static str),
}

/// How a `multipleOf` value can be enforced.
enum Multiple {
    /// A positive integer (0 if it does not fit `u64`).
    Integer(u64),
    /// `10^-k`.
    TenPow,
    /// Anything else: refused.
    Other,
}

fn split_fragment(uri: &str) -> (&str, &str) {
    match uri.find('#') {
        Some(i) => (&uri[..i], &uri[i + 1..]),
        None => (uri, ""),
    }
}

/// Resolve `reference` against `base` (enough of RFC 3986 for in-document `$id`s).
fn join_uri(base: &str, reference: &str) -> String {
    if reference.contains("://") || reference.starts_with("urn:") {
        return reference.to_owned();
    }
    let (base, _) = split_fragment(base);
    if reference.is_empty() || reference.starts_with('#') {
        return format!("{base}{reference}");
    }
    if reference.starts_with('/') {
        // Keep scheme and authority.
        if let Some(i) = base.find("://") {
            let rest = &base[i + 3..];
            let end = rest.find('/').map_or(base.len(), |j| i + 3 + j);
            return format!("{}{reference}", &base[..end]);
        }
        return reference.to_owned();
    }
    match base.rfind('/') {
        Some(i) if base.contains("://") => format!("{}{reference}", &base[..=i]),
        _ => match base.rfind(':') {
            Some(i) if base.starts_with("urn:") => format!("{}{reference}", &base[..=i]),
            _ => reference.to_owned(),
        },
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;

/// The grammar a schema's `format` gets: exact languages, plus the sound
/// subsets of `time`/`date-time` (a leap second is accepted as `23:59:60` in
/// UTC only; an RFC 3339 leap second written with another offset is refused)
/// and `hostname` (no IDNA A-labels `xn--…`, whose validity needs Punycode and
/// IDNA tables; the 253-character total through label-length tiers, see
/// [`formats::HOSTNAME_RESTRICTION`]). Everything accepted is valid; the
/// restrictions are listed in the README.
fn format_grammar_for_schema(name: &str) -> Option<Expr> {
    format_grammar(name)
        .filter(|g| g.restriction.is_none() || matches!(name, "time" | "date-time" | "hostname"))
        .map(|g| g.expr)
}
