//! Unit tests of the JSON Schema front-end: schemas compiled against the byte
//! vocabulary and fed whole texts.

use super::*;
use crate::{Compiler, Matcher, Vocabulary};
use serde_json::json;
use std::sync::Arc;

fn compile(schema: &Value, opts: &SchemaOptions) -> Result<Arc<crate::CompiledGrammar>> {
    let g = schema_to_grammar(schema, opts)?;
    let vocab = Arc::new(Vocabulary::byte_level());
    crate::CompiledGrammar::from_grammar(&g.grammar, vocab, &crate::Limits::default(), None)
        .map(Arc::new)
}

fn accepts(g: &Arc<crate::CompiledGrammar>, text: &str) -> bool {
    let mut m = Matcher::new(g.clone());
    m.accept_bytes(text.as_bytes()) && m.can_terminate()
}

fn check(schema: Value, accept: &[&str], reject: &[&str]) {
    let g = compile(&schema, &SchemaOptions::default()).expect("compiles");
    for t in accept {
        assert!(accepts(&g, t), "{schema} should accept {t}");
    }
    for t in reject {
        assert!(!accepts(&g, t), "{schema} should reject {t}");
    }
}

fn err(schema: Value) -> Error {
    schema_to_grammar(&schema, &SchemaOptions::default()).expect_err("should fail")
}

#[test]
fn scalars_and_types() {
    check(
        json!({"type": "integer"}),
        &["0", "-12", "3.0"],
        &["1.5", "01", "\"1\"", "1e3"],
    );
    check(
        json!({"type": ["string", "null"]}),
        &["null", "\"a\\n\\u00e9\""],
        &["1", "\"\\ud800\""],
    );
    check(
        json!({"type": "number"}),
        &["1.5e-3", "-0", "10"],
        &["1.", ".5", "+1"],
    );
    check(
        json!({"type": "number", "not": {"type": "integer"}}),
        &["1.5"],
        &["1", "1.0"],
    );
    check(
        json!(true),
        &["[1, {\"a\": null}]", "\"x\""],
        &["[1,]", "{\"a\"}"],
    );
}

#[test]
fn strings_lengths_count_code_points() {
    // Length-constrained strings use raw characters (escapes only where JSON needs them).
    check(
        json!({"type": "string", "minLength": 2, "maxLength": 3}),
        &[
            "\"ab\"",
            "\"\\n\\t\"",
            "\"😀😀\"",
            "\"😀x\"",
            "\"abc\"",
            "\"\\u0001\\u001f\"",
        ],
        &["\"a\"", "\"abcd\"", "\"😀\"", "\"\\u0061b\""],
    );
    // Unconstrained strings take every spelling.
    check(
        json!({"type": "string"}),
        &["\"\\ud83d\\ude00\\u00E9\""],
        &["\"\\ud83d\""],
    );
}

#[test]
fn enum_const_and_pattern() {
    check(
        json!({"enum": ["a\"b", 1, null, [1, 2]]}),
        &["\"a\\\"b\"", "\"a\\u0022b\"", "1", "1.0", "null", "[1, 2]"],
        &["\"ab\"", "2", "[2, 1]"],
    );
    check(
        json!({"type": "string", "pattern": "^a+$"}),
        &["\"aaa\""],
        &["\"\"", "\"ab\""],
    );
    check(
        json!({"type": "string", "pattern": "b"}),
        &["\"abc\"", "\"\\nb\"", "\"\\u0001b\""],
        &["\"ac\"", "\"\\u0062\""],
    );
    check(
        json!({"enum": ["ab", "abc"], "maxLength": 2}),
        &["\"ab\""],
        &["\"abc\""],
    );
}

#[test]
fn objects_in_schema_order() {
    let s = json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["b"]});
    check(
        s,
        &[
            "{\"b\": \"x\"}",
            "{\"a\": 1, \"b\": \"x\"}",
            "{ \"a\" :1 ,\"b\":\"\"}",
        ],
        &[
            "{}",
            "{\"a\": 1}",
            "{\"b\": \"x\", \"a\": 1}",
            "{\"b\": \"x\", \"c\": 1}",
        ],
    );
    let s = json!({"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "boolean"}});
    check(
        s,
        &[
            "{\"a\": 1, \"x\": true}",
            "{\"x\": true, \"y\": false}",
            "1",
        ],
        &[
            "{\"x\": 1}",
            "{\"a\": true}",
            "{\"a\": 1, \"\\u0061\": true}",
        ],
    );
}

#[test]
fn strict_mode_off_allows_additional_properties() {
    let s = json!({"properties": {"a": {"type": "integer"}}});
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    let g = compile(&s, &opts).expect("compiles");
    assert!(accepts(&g, "{\"a\": 1, \"b\": [1, {}]}"));
    assert!(!accepts(&g, "{\"a\": \"x\"}"));
    let g = compile(&s, &SchemaOptions::default()).expect("compiles");
    assert!(!accepts(&g, "{\"a\": 1, \"b\": 2}"));
}

#[test]
fn arrays_prefix_and_bounds() {
    check(
        json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}),
        &["[1]", "[1, 2, 3]"],
        &["[]", "[1, 2, 3, 4]", "[\"a\"]"],
    );
    check(
        json!({"prefixItems": [{"type": "integer"}, {"type": "string"}], "type": "array"}),
        &["[]", "[1]", "[1, \"a\"]"],
        &["[1, \"a\", 2]", "[\"a\"]"],
    );
    check(
        json!({"prefixItems": [{"type": "integer"}], "items": {"type": "string"}, "minItems": 2}),
        &["[1, \"a\"]", "[1, \"a\", \"b\"]"],
        &["[1]", "[1, 2]"],
    );
}

#[test]
fn layout_compact_and_indent() {
    let s = json!({"type": "object", "properties": {"a": {"type": "array"}}, "required": ["a"]});
    let compact = SchemaOptions {
        any_whitespace: false,
        ..SchemaOptions::default()
    };
    let g = compile(&s, &compact).expect("compiles");
    assert!(accepts(&g, "{\"a\": [1, 2]}"));
    assert!(!accepts(&g, "{\"a\":[1,2]}"));
    let indent = SchemaOptions {
        any_whitespace: false,
        indent: Some(2),
        ..SchemaOptions::default()
    };
    let g = compile(&s, &indent).expect("compiles");
    assert!(accepts(
        &g,
        "{\n  \"a\": [\n    1,\n    [],\n    {\n      \"b\": 2\n    }\n  ]\n}"
    ));
    assert!(!accepts(&g, "{\n  \"a\": [1, 2]\n}"));
    let seps = SchemaOptions {
        any_whitespace: false,
        separators: Some((",".into(), ":".into())),
        ..SchemaOptions::default()
    };
    assert!(accepts(
        &compile(&s, &seps).expect("compiles"),
        "{\"a\":[1,2]}"
    ));
}

#[test]
fn whitespace_is_bounded() {
    let opts = SchemaOptions {
        max_whitespace: 2,
        ..SchemaOptions::default()
    };
    let g = compile(&json!({"type": "array"}), &opts).expect("compiles");
    assert!(accepts(&g, "[\n  1,\r\n\t2 ]"));
    assert!(!accepts(&g, "[   1]"));
    assert!(!accepts(&g, "[\n\n1]"));
    assert!(!accepts(&g, " [1]"));
    assert!(!accepts(&g, "[1] "));
}

#[test]
fn refs_and_recursion() {
    let s = json!({
        "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}, "required": ["v"]}},
        "$ref": "#/$defs/node"
    });
    check(
        s.clone(),
        &["{\"v\": 1, \"next\": {\"v\": 2, \"next\": {\"v\": 3}}}"],
        &["{\"v\": 1, \"next\": {}}"],
    );
    // The recursion is a rule reference: `next` (a bare `$ref`) and the root share one rule.
    let g = schema_to_grammar(&s, &SchemaOptions::default()).expect("compiles");
    let names: Vec<&String> = g.grammar.rules.iter().map(|r| &r.name).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("properties/next") || *n == "$defs/node"),
        "{names:?}"
    );
    assert_eq!(g.grammar.rules[g.grammar.root as usize].name, "root");
    check(
        json!({"$defs": {"a~b/c": {"type": "null"}}, "$ref": "#/$defs/a~0b~1c"}),
        &["null"],
        &["1"],
    );
    check(
        json!({"$defs": {"x y": {"type": "null"}}, "$ref": "#/$defs/x%20y"}),
        &["null"],
        &["1"],
    );
    check(
        json!({"$defs": {"a": {"$anchor": "here", "type": "boolean"}}, "$ref": "#here"}),
        &["true"],
        &["1"],
    );
    check(
        json!({"$id": "http://x.test/root.json", "$defs": {"b": {"$id": "b.json", "type": "integer"}}, "$ref": "b.json"}),
        &["1"],
        &["true"],
    );
}

#[test]
fn any_of_one_of_all_of() {
    check(
        json!({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 1}]}),
        &["1", "\"a\""],
        &["\"ab\"", "null"],
    );
    check(
        json!({"oneOf": [{"type": "integer"}, {"type": "null"}]}),
        &["1", "null"],
        &["\"a\""],
    );
    check(
        json!({"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": {"type": "boolean"}}}]}),
        &["{\"a\": 1}", "{\"a\": 1, \"b\": true}"],
        &["{\"b\": true}", "{\"a\": 1, \"c\": 2}"],
    );
    // Overlapping branches: exactly one must hold (integers match both here).
    check(
        json!({"oneOf": [{"type": "integer"}, {"type": "number"}]}),
        &["1.5", "-0.25"],
        &["1", "1.0", "null"],
    );
}

#[test]
fn errors_name_keyword_and_pointer() {
    let e = err(json!({"properties": {"tags": {"type": "array", "uniqueItems": true}}}));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.message(), "unsupported keyword \"uniqueItems\" at /properties/tags: items not drawn from a finite set of values");
    let e = err(json!({"properties": {"a": {"type": 5}}}));
    assert_eq!(e.kind(), ErrorKind::Grammar);
    assert!(e.message().contains("/properties/a"), "{e}");
    let e = err(json!({"$ref": "#/$defs/missing"}));
    assert_eq!(e.kind(), ErrorKind::Grammar);
    let e = err(json!(false));
    assert_eq!(e.message(), "schema at / accepts no value");
    // Unknown keywords are annotations.
    check(
        json!({"type": "null", "x-whatever": {"type": "string"}}),
        &["null"],
        &["\"a\""],
    );
}

#[test]
fn lenient_lists_what_it_ignored() {
    let s = json!({"type": "array", "uniqueItems": true});
    let opts = SchemaOptions {
        lenient: true,
        ..SchemaOptions::default()
    };
    let g = schema_to_grammar(&s, &opts).expect("lenient compiles");
    assert_eq!(g.ignored, vec![(String::new(), "uniqueItems".to_owned())]);
    assert!(g.enforced.contains(&(String::new(), "type".to_owned())));
}

#[test]
fn builtin_json_and_compiler_cache() {
    let g = builtin_json_grammar(&SchemaOptions::default()).expect("builtin");
    let vocab = Arc::new(Vocabulary::byte_level());
    let c =
        crate::CompiledGrammar::from_grammar(&g, vocab.clone(), &crate::Limits::default(), None)
            .map(Arc::new)
            .expect("compiles");
    assert!(accepts(&c, "{\"a\": [1, 2.5e3, \"x\", null, true, {}]}"));
    assert!(!accepts(&c, "{\"a\": [1, 2.5e3,]}"));
    let compiler = Compiler::new(vocab);
    let a = compiler
        .compile_json_schema("{\"type\": \"integer\"}", &SchemaOptions::default())
        .expect("compiles");
    let b = compiler
        .compile_json_schema("{ \"type\":\"integer\" }", &SchemaOptions::default())
        .expect("compiles");
    assert!(Arc::ptr_eq(&a.0, &b.0));
}

#[test]
fn numeric_ranges_exact() {
    check(
        json!({"type": "number", "minimum": -0.5, "maximum": 10}),
        &["-0.5", "0", "-0", "10", "9.999", "10.000", "-0.25"],
        &["-0.51", "10.01", "11", "-1", "1e1"],
    );
    check(
        json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3}),
        &["1", "2", "2.0"],
        &["0", "3", "-1"],
    );
    // Draft-04 boolean exclusive bounds.
    check(
        json!({"type": "integer", "minimum": 5, "exclusiveMinimum": true}),
        &["6"],
        &["5"],
    );
    check(
        json!({"type": "integer", "multipleOf": 3, "minimum": 0, "maximum": 10}),
        &["0", "9"],
        &["4", "12"],
    );
    check(
        json!({"type": "number", "multipleOf": 0.01}),
        &["1.25", "3"],
        &["1.255"],
    );
    // An empty numeric range leaves the other types.
    check(
        json!({"type": ["integer", "null"], "minimum": 5, "maximum": 1}),
        &["null"],
        &["3"],
    );
    check(
        json!({"enum": [1, 5, 20], "maximum": 10}),
        &["1", "5"],
        &["20"],
    );
    let e = err(json!({"type": "number", "multipleOf": 0.3}));
    assert_eq!(e.schema_keyword(), Some(("", "multipleOf")));
}

#[test]
fn formats_are_exact() {
    check(
        json!({"type": "string", "format": "date"}),
        &["\"2024-02-29\""],
        &["\"2023-02-29\"", "\"2023-1-01\"", "\"2023\\u002d01-31\""],
    );
    check(
        json!({"format": "ipv4"}),
        &["\"1.2.3.4\"", "12"],
        &["\"256.1.1.1\""],
    );
    // Unknown formats are annotations; known but inexact ones are refused.
    check(
        json!({"type": "string", "format": "currency"}),
        &["\"x\""],
        &[],
    );
    assert_eq!(
        err(json!({"format": "regex"})).kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn unevaluated_properties_scope() {
    check(
        json!({"properties": {"a": {}}, "unevaluatedProperties": false}),
        &["{\"a\": 1}"],
        &["{\"b\": 1}"],
    );
    // A referenced schema's unevaluatedProperties does not see the referrer's properties.
    let e = err(
        json!({"$defs": {"A": {"unevaluatedProperties": false}}, "properties": {"p": {}}, "$ref": "#/$defs/A"}),
    );
    assert_eq!(
        e.schema_keyword(),
        Some(("/$defs/A", "unevaluatedProperties"))
    );
}

#[test]
fn pattern_properties_split_the_other_keys() {
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    let cases: &[(Value, &[&str], &[&str])] = &[
        // Keys outside the pattern meet additionalProperties (a complement).
        (
            json!({"patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": {"type": "string"}}),
            &[
                "{\"x-a\": 1, \"b\": \"s\"}",
                "{}",
                "{\"b\": \"s\", \"x-\": 2}",
            ],
            &["{\"x-a\": \"s\"}", "{\"b\": 1}", "{\"x-a\": 1.5}"],
        ),
        // A named key the pattern matches meets both; it is not repeated.
        (
            json!({"properties": {"x-id": {"minimum": 5}}, "patternProperties": {"^x-": {"type": "integer"}}}),
            &[
                "{\"x-id\": 7, \"x-b\": 1, \"c\": null}",
                "{\"x-id\": 5, \"c\": 1}",
            ],
            &[
                "{\"x-id\": 3}",
                "{\"x-id\": 7.5}",
                "{\"x-b\": \"s\"}",
                "{\"x-id\": 7, \"x-id\": 8}",
            ],
        ),
        // Overlapping patterns: a key matching both meets both.
        (
            json!({"patternProperties": {"^a": {"type": "integer"}, "b$": {"minimum": 10}}, "additionalProperties": false}),
            &["{\"ab\": 12, \"a\": 1, \"b\": 50, \"xb\": 10.5}"],
            &["{\"ab\": 5}", "{\"ab\": 12.5}", "{\"c\": 1}", "{\"b\": 5}"],
        ),
        // A class run without the named keys keeps its counter.
        (
            json!({"properties": {"id": {"type": "string"}}, "patternProperties": {"^[a-z]{1,3}$": {"type": "integer"}}, "additionalProperties": false}),
            &["{\"abc\": 1}", "{\"ab\": 1, \"i\": 2}"],
            &[
                "{\"id\": \"s\"}",
                "{\"abcd\": 1}",
                "{\"ab\": \"s\"}",
                "{\"ab\": 1, \"ab\": 1, \"id\": 1}",
            ],
        ),
        // The complement of a class run, written with counters.
        (
            json!({"patternProperties": {"^[a-z]+$": {"type": "integer"}}, "additionalProperties": {"type": "string"}}),
            &["{\"ab\": 1, \"A1\": \"s\", \"\": \"e\"}"],
            &["{\"ab\": \"s\"}", "{\"A1\": 1}", "{\"\": 1}"],
        ),
    ];
    for (schema, good, bad) in cases {
        let g = compile(schema, &opts).expect("compiles");
        for t in *good {
            assert!(accepts(&g, t), "{schema} should accept {t}");
        }
        for t in *bad {
            assert!(!accepts(&g, t), "{schema} should reject {t}");
        }
    }
}

#[test]
fn one_of_branches_told_apart_by_a_required_key() {
    // Disjoint by `kind`: no branch is negated (`items` has no expressible negation).
    let s = json!({
        "type": "object",
        "required": ["kind"],
        "oneOf": [
            {"properties": {"kind": {"const": "a"}, "l": {"items": {"type": "string"}}}},
            {"properties": {"kind": {"enum": ["b", "c"]}, "l": {"items": {"type": "integer"}}}}
        ]
    });
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    let g = compile(&s, &opts).expect("compiles");
    for t in [
        "{\"kind\": \"a\", \"l\": [\"x\"]}",
        "{\"kind\": \"c\", \"l\": [1]}",
    ] {
        assert!(accepts(&g, t), "{t}");
    }
    for t in [
        "{\"kind\": \"a\", \"l\": [1]}",
        "{\"kind\": \"d\"}",
        "{\"l\": []}",
    ] {
        assert!(!accepts(&g, t), "{t}");
    }
    // One branch requires a key the other forbids.
    check(
        json!({"oneOf": [
            {"type": "object", "required": ["$ref"], "properties": {"$ref": {"type": "string"}}, "additionalProperties": false},
            {"type": "object", "properties": {"l": {"items": {"type": "string"}}}, "additionalProperties": false}
        ]}),
        &["{\"$ref\": \"x\"}", "{\"l\": [\"s\"]}", "{}"],
        &[
            "{\"$ref\": 1}",
            "{\"l\": [1]}",
            "{\"$ref\": \"x\", \"l\": []}",
        ],
    );
    // Without `required` both branches hold for an object without `kind`.
    let mut s = s;
    s["required"] = json!([]);
    let e = err(s);
    assert_eq!(e.schema_keyword().map(|k| k.1), Some("items"), "{e}");
}

#[test]
fn two_string_languages_intersect() {
    // Two intersections sharing a constraint are two languages (one rule each).
    check(
        json!({"properties": {
            "a": {"type": "string", "allOf": [{"pattern": "^a"}, {"pattern": "^[a-z]+$"}]},
            "b": {"type": "string", "allOf": [{"pattern": "^c"}, {"pattern": "^[a-z]+$"}]}
        }}),
        &["{\"a\": \"ax\", \"b\": \"cx\"}"],
        &["{\"b\": \"ax\"}", "{\"a\": \"cx\"}", "{\"a\": \"aX\"}"],
    );
    check(
        json!({"type": "string", "pattern": "^[a-z]+$", "allOf": [{"pattern": "x"}]}),
        &["\"axb\"", "\"x\""],
        &["\"ab\"", "\"aXb\"", "\"\""],
    );
    check(
        json!({"type": "string", "format": "date", "pattern": "^2024-"}),
        &["\"2024-02-29\""],
        &["\"2023-02-01\"", "\"2024-02-30\"", "\"2024-\""],
    );
    check(
        json!({"type": "string", "not": {"pattern": "^a"}, "maxLength": 2}),
        &["\"\"", "\"ba\""],
        &["\"a\"", "\"bab\""],
    );
}

#[test]
fn lengths_with_a_pattern_or_format() {
    check(
        json!({"type": "string", "pattern": "^[0-9a-z-]*$", "minLength": 4, "maxLength": 6}),
        &["\"abcd\"", "\"ab-d12\""],
        &["\"abc\"", "\"abcdefg\"", "\"ABCD\""],
    );
    // Unanchored: `.*[0-9]{3}.*` in exactly three characters.
    check(
        json!({"type": "string", "pattern": "[0-9]{3}", "minLength": 3, "maxLength": 3}),
        &["\"123\""],
        &["\"12a\"", "\"1234\"", "\"a123\""],
    );
    // Lengths counted in characters, not escapes or UTF-8 bytes.
    check(
        json!({"type": "string", "pattern": "^[^,]+$", "maxLength": 2}),
        &["\"é\\n\"", "\"éx\""],
        &["\"éxy\"", "\",\""],
    );
    check(
        json!({"type": "string", "format": "uuid", "minLength": 1}),
        &["\"01234567-89ab-cdef-0123-456789abcdef\""],
        &["\"\""],
    );
    // Two varying parts under a maximum: refused, naming the pattern.
    let e = err(json!({"type": "string", "pattern": "^[a-z]+(-[a-z]+)*$", "maxLength": 50}));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.schema_keyword(), Some(("", "pattern")));
}

#[test]
fn patterns_and_formats_use_raw_characters() {
    check(
        json!({"type": "string", "pattern": "^[é\"]+$"}),
        &["\"é\\\"\""],
        &["\"\\u00e9\"", "\"e\""],
    );
    check(
        json!({"type": "string", "format": "date-time"}),
        &["\"2024-01-01T00:00:00Z\""],
        &["\"2024-01-01\""],
    );
}

#[test]
fn draft04_integers_and_plain_name_ids() {
    let s = json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"});
    check(s, &["12"], &["12.0"]);
    // Bounds, multiples and excluded values keep `N.0` out too; numbers keep it.
    let d4 = "http://json-schema.org/draft-04/schema#";
    check(
        json!({"$schema": d4, "type": "integer", "minimum": 0, "maximum": 10}),
        &["0", "-0", "10", "7"],
        &["10.0", "0.0", "-0.0", "7.0", "11", "-1"],
    );
    check(
        json!({"$schema": d4, "type": "integer", "multipleOf": 5, "minimum": 0}),
        &["0", "15"],
        &["15.0", "0.0", "3"],
    );
    check(
        json!({"$schema": d4, "type": "integer", "minimum": 1, "not": {"enum": [3]}}),
        &["1", "2", "4"],
        &["3", "2.0", "0"],
    );
    // An integer enum member under an integer type: `1`, not `1.0` (a walk
    // on a MaskBench schema wrote `1.0`); without the type, both.
    check(
        json!({"$schema": d4, "type": "integer", "enum": [1, 2.0, "a"]}),
        &["1", "2"],
        &["1.0", "2.0", "1.00", "\"a\""],
    );
    check(json!({"$schema": d4, "enum": [1]}), &["1", "1.0"], &["2"]);
    check(
        json!({"type": "integer", "enum": [1]}),
        &["1", "1.0"],
        &["2"],
    );
    check(
        json!({"$schema": d4, "type": "number", "minimum": 0, "maximum": 10}),
        &["10.0", "7", "7.5"],
        &["10.5"],
    );
    check(
        json!({"definitions": {"a": {"$id": "#thing", "type": "null"}}, "$ref": "#thing"}),
        &["null"],
        &["1"],
    );
}

#[test]
fn contains_counts_matching_items() {
    check(
        json!({"type": "array", "items": {"type": "integer"}, "contains": {"const": 3}}),
        &["[3]", "[1, 3, 3.0]", "[3, 2]"],
        &["[]", "[1, 2]", "[1.5, 3]"],
    );
    check(
        json!({"contains": {"type": "string"}, "minContains": 2, "maxContains": 3}),
        &["[\"a\", 1, \"b\"]", "[\"a\", \"b\", \"c\", null]", "7"],
        &["[\"a\"]", "[\"a\", \"b\", \"c\", \"d\"]"],
    );
    // Every item matches: counts merge with minItems/maxItems.
    check(
        json!({"type": "array", "items": {"const": 1}, "contains": {"const": 1}, "maxItems": 2}),
        &["[1]", "[1, 1]"],
        &["[]", "[1, 1, 1]"],
    );
    // contains with minItems beyond minContains: not exact as a counted sequence.
    let e = err(json!({"type": "array", "contains": {"type": "null"}, "minItems": 3}));
    assert_eq!(
        e.message(),
        "unsupported keyword \"contains\" at /: together with minItems/maxItems"
    );
    // A pattern's complement counts the items that do not match.
    check(
        json!({"type": "array", "contains": {"type": "string", "pattern": "^a"}}),
        &["[\"ab\", 1]", "[\"b\", \"a\"]"],
        &["[\"b\"]", "[]", "[1, \"ba\"]"],
    );
    // A contains schema without an expressible complement.
    let e = err(json!({"type": "array", "contains": {"items": {"type": "string"}}}));
    assert!(
        e.message()
            .starts_with("unsupported keyword \"items\" at /contains: its negation"),
        "{e}"
    );
}

#[test]
fn unique_items_over_finite_values() {
    check(
        json!({"type": "array", "items": {"enum": ["x", 1, null]}, "uniqueItems": true}),
        &["[]", "[1, \"x\", null]", "[null, 1.0]"],
        &["[1, 1]", "[1, 1.0]", "[\"x\", \"x\"]", "[2]"],
    );
    // A closed tuple of disjoint positions is always unique.
    check(
        json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false, "uniqueItems": true}),
        &["[\"a\", 1]", "[\"a\"]"],
        &["[\"a\", \"a\"]"],
    );
    // No separator once every value is used (it would be a dead end).
    let g = compile(
        &json!({"type": "array", "items": {"type": "boolean"}, "uniqueItems": true}),
        &SchemaOptions::default(),
    )
    .expect("compiles");
    let mut m = Matcher::new(g);
    assert!(m.accept_bytes(b"[true, false"));
    assert!(!m.accept_bytes(b","));
    let e = err(json!({"type": "array", "items": {"type": "integer"}, "uniqueItems": true}));
    assert_eq!(e.schema_keyword(), Some(("", "uniqueItems")));
}

#[test]
fn negations_and_conditionals() {
    check(
        json!({"type": "string", "not": {"enum": ["", "none"]}}),
        &["\"a\"", "\"nonee\""],
        &["\"\"", "\"none\"", "\"n\\u006fne\""],
    );
    check(
        json!({"type": "integer", "minimum": 0, "maximum": 9, "not": {"enum": [0, 5]}}),
        &["1", "4", "6", "9"],
        &["0", "5", "5.0", "10"],
    );
    check(
        json!({"type": "object", "not": {"required": ["id"]}}),
        &["{}", "{\"a\": 1}"],
        &["{\"id\": 1}", "{\"a\": 1, \"id\": 1}"],
    );
    check(
        json!({"not": {"minimum": 3}}),
        &["2", "2.5", "-1000000000"],
        &["3", "4", "\"x\"", "null"],
    );
    check(
        json!({
            "type": "object",
            "properties": {"m": {"type": "boolean"}, "id": {"type": "string"}},
            "required": ["m"],
            "if": {"properties": {"m": {"const": true}}},
            "then": {"required": ["id"]},
            "else": {"not": {"required": ["id"]}}
        }),
        &["{\"m\": true, \"id\": \"7\"}", "{\"m\": false}"],
        &["{\"m\": true}", "{\"m\": false, \"id\": \"7\"}"],
    );
    // enum/const conjunctions decide anything value by value.
    check(
        json!({"allOf": [{"enum": [1, "a", [1, 1]]}, {"not": {"uniqueItems": true}}]}),
        &["[1, 1]"],
        &["1", "\"a\""],
    );
}

#[test]
fn property_dependencies() {
    check(
        json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "dependentRequired": {"a": ["b"]}
        }),
        &["{}", "{\"b\": 1}", "{\"a\": 1, \"b\": 2}"],
        &["{\"a\": 1}"],
    );
    check(
        json!({
            "type": "object",
            "properties": {"card": {"type": "string"}, "cvc": {"type": "integer"}},
            "dependentSchemas": {"card": {"required": ["cvc"], "properties": {"cvc": {"minimum": 100}}}}
        }),
        &["{}", "{\"cvc\": 5}", "{\"card\": \"x\", \"cvc\": 123}"],
        &["{\"card\": \"x\"}", "{\"card\": \"x\", \"cvc\": 5}"],
    );
    // Keys that no `properties` names take any order.
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    let g = compile(&json!({"dependencies": {"q": ["f", "b"]}}), &opts).expect("compiles");
    for t in [
        "{\"q\": 1, \"f\": 2, \"b\": 3}",
        "{\"b\": 1, \"q\": 2, \"f\": 3}",
        "{\"x\": 1}",
    ] {
        assert!(accepts(&g, t), "{t}");
    }
    assert!(!accepts(&g, "{\"q\": 1, \"f\": 2}"));
}

#[test]
fn overlapping_one_of_negates_the_other_branches() {
    check(
        json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}]
        }),
        &["{\"a\": 1}", "{\"b\": 2}"],
        &["{}", "{\"a\": 1, \"b\": 2}"],
    );
    check(
        json!({"oneOf": [{"type": "string"}, {"minLength": 2}]}),
        &["\"a\"", "\"\"", "5", "null"],
        &["\"ab\"", "\"abc\""],
    );
    check(
        json!({"oneOf": [{"type": "string"}, {"pattern": "^a"}]}),
        &["\"b\"", "\"\"", "5", "null"],
        &["\"ab\"", "\"a\""],
    );
    check(
        json!({"type": "string", "not": {"format": "uuid"}, "pattern": "^[0-9a-f-]{36}$"}),
        &["\"0123456789abcdef0123456789abcdef0123\""],
        &["\"01234567-89ab-cdef-0123-456789abcdef\"", "\"x\""],
    );
    let e = err(json!({"oneOf": [{"type": "array"}, {"items": {"type": "string"}}]}));
    assert_eq!(e.schema_keyword(), Some(("/oneOf/1", "items")));
}

#[test]
fn finite_candidates_are_validated() {
    // multipleOf under enum was refused; each candidate is now checked.
    check(
        json!({"enum": [1, 2, 3, 4.0, "6"], "multipleOf": 2}),
        &["2", "4", "4.0", "\"6\""],
        &["1", "3"],
    );
    check(
        json!({
            "enum": [{"a": 1}, {"a": 2, "b": 0}, {"a": 2}],
            "if": {"properties": {"a": {"const": 2}}},
            "then": {"required": ["b"]}
        }),
        &["{\"a\": 1}", "{\"a\": 2, \"b\": 0}"],
        &["{\"a\": 2}"],
    );
    // Undecidable here (unevaluatedProperties): the grammar path decides, and refuses.
    let e = err(json!({"enum": [{"a": 1}], "not": {"unevaluatedProperties": false}}));
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[test]
fn negation_through_references() {
    // A value whose `c` is not of the same schema.
    check(
        json!({"$defs": {"t": {"type": "object", "properties": {"c": {"not": {"$ref": "#/$defs/t"}}}}}, "$ref": "#/$defs/t"}),
        &["{}", "{\"c\": 1}"],
        &["{\"c\": {}}", "1"],
    );
    // A schema that is its own negation accepts nothing.
    let e = err(json!({"$ref": "#/$defs/a", "$defs": {"a": {"not": {"$ref": "#/$defs/a"}}}}));
    assert_eq!(e.message(), "schema at / accepts no value");
}

#[test]
fn property_names_decided_per_key() {
    check(
        json!({
            "type": "object",
            "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
            "propertyNames": {"not": {"const": "x"}}
        }),
        &["{}", "{\"y\": 1}"],
        &["{\"x\": 1}", "{\"x\": 1, \"y\": 2}"],
    );
}

#[test]
fn bare_refs_share_one_rule_and_key_complements_stay_small() {
    // One definition with 30 long property names, used from 40 places (each a
    // `$ref` with a description, as Kubernetes schemas do). Each use used to
    // get its own copy of the object, with the trie of other keys spelled out
    // several times: far past `Limits::max_nfa_states`.
    let mut props = serde_json::Map::new();
    for i in 0..30 {
        props.insert(
            format!("someLongPropertyName{i:02}"),
            json!({"type": "integer"}),
        );
    }
    let mut uses = serde_json::Map::new();
    for i in 0..40 {
        uses.insert(
            format!("use{i:02}"),
            json!({"$ref": "#/definitions/meta", "description": format!("use {i}")}),
        );
    }
    let s = json!({
        "definitions": {"meta": {"type": "object", "properties": props}},
        "type": "object",
        "properties": uses,
    });
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    let g = schema_to_grammar(&s, &opts).expect("compiles");
    let copies = g
        .grammar
        .rules
        .iter()
        .filter(|r| r.name.ends_with("definitions/meta") || r.name.contains("/use"))
        .count();
    assert_eq!(copies, 1, "one rule for the definition");
    let c = compile(&s, &opts).expect("within the default limits");
    for ok in [
        r#"{"use00": {"someLongPropertyName00": 1}, "use39": {"someLongPropertyName29": 2}}"#,
        // Other keys: a prefix and an extension of named ones.
        r#"{"use01": {"someLongPropertyName": "x", "someLongPropertyName000": []}}"#,
    ] {
        assert!(accepts(&c, ok), "{ok}");
    }
    for bad in [
        r#"{"use00": {"someLongPropertyName00": "x"}}"#,
        r#"{"use00": {"someLongPropertyName05": 1, "someLongPropertyName05": 2}}"#,
        r#"{"use00": []}"#,
    ] {
        assert!(!accepts(&c, bad), "{bad}");
    }
}

#[test]
fn bare_refs_to_any_of_keep_their_branches() {
    // A bare `$ref` (a branch here) is replaced by its target, whose own
    // `anyOf` is still expanded.
    let s = json!({
        "$defs": {"u": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]}},
        "anyOf": [{"$ref": "#/$defs/u", "title": "u"}, {"type": "null"}],
        "properties": {"a": {"$ref": "#/$defs/u", "description": "d"}}
    });
    check(
        s,
        &["1", "\"ab\"", "null"],
        &["true", "\"abc\"", "{\"a\": 1}", "1.5"],
    );
    let s = json!({
        "$defs": {"u": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]}},
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/u", "description": "d"}, "b": {"$ref": "#/$defs/u"}}
    });
    check(
        s,
        &["{\"a\": 1, \"b\": \"x\"}", "{\"a\": \"ab\"}"],
        &["{\"a\": true}", "{\"b\": \"abc\"}"],
    );
}

#[test]
fn ref_siblings_ignored_before_2019_09() {
    let defs = json!({"o": {"type": "object", "properties": {"a": {"type": "integer"}}}});
    let old = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": defs,
        "properties": {"x": {"type": "string", "$ref": "#/definitions/o"}},
    });
    check(
        old,
        &[r#"{"x": {"a": 1}}"#],
        &[r#"{"x": "s"}"#, r#"{"x": {"a": "s"}}"#],
    );
    // From 2019-09 on, the siblings apply: a string and an object at once is nothing.
    let new = json!({
        "definitions": defs,
        "properties": {"x": {"type": "string", "$ref": "#/definitions/o"}},
    });
    check(new, &["{}"], &[r#"{"x": "s"}"#, r#"{"x": {"a": 1}}"#]);
}

#[test]
fn conditionals_are_annotations_before_draft_07() {
    let cond = |schema_uri: Option<&str>| {
        let mut s = json!({"type": "integer", "if": {"const": 1}, "then": {"const": 2}});
        if let Some(u) = schema_uri {
            s["$schema"] = json!(u);
        }
        s
    };
    check(cond(None), &["2", "3"], &["1"]);
    check(
        cond(Some("http://json-schema.org/draft-07/schema#")),
        &["2", "3"],
        &["1"],
    );
    for old in ["draft-04", "draft-06"] {
        let u = format!("http://json-schema.org/{old}/schema#");
        check(cond(Some(&u)), &["1", "2", "3"], &["1.5"]);
    }
}

#[test]
fn many_required_keys_without_properties_keep_their_order() {
    // More keys than one any-order member can hold: they follow `required`.
    let names: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
    let s = json!({"type": "object", "required": names});
    let obj = |ks: &[&String]| {
        let body: Vec<String> = ks.iter().map(|k| format!("\"{k}\":1")).collect();
        format!("{{{}}}", body.join(","))
    };
    let all: Vec<&String> = names.iter().collect();
    let mut swapped = all.clone();
    swapped.swap(0, 1);
    let text = obj(&all);
    let (missing, out_of_order) = (obj(&all[1..]), obj(&swapped));
    check(s, &[&text], &[&missing, &out_of_order, "{}"]);
}

#[test]
fn rule_count_limit_names_itself() {
    // Every property has its own string language, so a rule each.
    let mut props = serde_json::Map::new();
    for i in 0..=MAX_SCHEMA_RULES {
        props.insert(
            format!("p{i}"),
            json!({"type": "string", "maxLength": i + 1}),
        );
    }
    let opts = SchemaOptions::default();
    let e = schema_to_grammar(&json!({"type": "object", "properties": props}), &opts)
        .expect_err("over the rule limit");
    assert_eq!(e.kind(), ErrorKind::Limit);
    assert!(e.to_string().contains("MAX_SCHEMA_RULES"), "{e}");
    assert!(e.to_string().contains("20000"), "{e}");
}

/// Keys of no name (free keys, `patternProperties` keys) are rules of their
/// own that reach no other rule, so the compiler classifies them by their
/// DFA alone and shares the entries between grammars (inlined into an
/// object's rule, a free key cost a parser walk of the whole vocabulary).
#[test]
fn unnamed_keys_are_rules_of_their_own() {
    fn refs(e: &Expr, out: &mut Vec<RuleId>) {
        match e {
            Expr::Rule(r) => out.push(*r),
            Expr::Seq(v) | Expr::Alt(v) => v.iter().for_each(|x| refs(x, out)),
            Expr::Repeat { expr, .. } => refs(expr, out),
            Expr::Permutation { members, .. } => members.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    for (schema, key_rule) in [
        (
            json!({"type": "object", "patternProperties": {"^[a-z]{1,40}$": {"type": "integer"}}}),
            "pattern_key",
        ),
        (
            json!({"type": "object", "additionalProperties": {"type": "integer"}}),
            "json_string",
        ),
    ] {
        let g = schema_to_grammar(&schema, &opts).expect("schema").grammar;
        let keys: Vec<RuleId> = (0..g.rules.len() as RuleId)
            .filter(|&r| g.rules[r as usize].name.starts_with(key_rule))
            .collect();
        assert!(!keys.is_empty(), "{schema}: no {key_rule} rule");
        for &k in &keys {
            let mut inner = Vec::new();
            refs(&g.rules[k as usize].body, &mut inner);
            assert!(inner.is_empty(), "{schema}: {key_rule} refers to {inner:?}");
        }
        let referenced = g.rules.iter().any(|r| {
            let mut out = Vec::new();
            refs(&r.body, &mut out);
            out.iter().any(|x| keys.contains(x))
        });
        assert!(
            referenced,
            "{schema}: the object does not refer to {key_rule}"
        );
    }
}
