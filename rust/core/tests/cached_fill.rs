//! `Matcher::mask_is_cached`: true only where a fill copies computed sets,
//! and such fills write what a fresh computation writes.

use corral_core::grammar::schema::SchemaOptions;
use corral_core::mask::words_for;
use corral_core::{Compiler, Matcher, Vocabulary};
use std::sync::Arc;

fn vocab() -> Arc<Vocabulary> {
    let toks: Vec<Vec<u8>> = ["a", "b", "c", "ab", "ba", "abc", "cab", "bb", "cb", "<eos>"]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
    Arc::new(Vocabulary::new(toks, None, vec![9], vec![9]).expect("vocab"))
}

#[test]
fn cached_fills_are_settled_entries_only() {
    let v = vocab();
    let words = words_for(v.vocab_size());
    let compiler = Compiler::new(v.clone());
    let regex = compiler.compile_regex("(ab|c)+").expect("regex");
    let gbnf = compiler
        .compile_gbnf(b"root ::= \"a\" root \"b\" | \"c\"\n", "root")
        .expect("gbnf");
    let mut kept_uncached = 0;
    for g in [regex, gbnf] {
        for text in ["", "ab", "abc", "c", "aab", "abcab", "ac", "aac", "aacb"] {
            let mut m = Matcher::new(g.clone());
            if !m.accept_bytes(text.as_bytes()) {
                continue;
            }
            let mut first = vec![0u32; words];
            m.fill_mask(&mut first);
            if !m.mask_is_cached() {
                // Uncertain tokens: each fill hands them over again.
                kept_uncached += 1;
                continue;
            }
            let mut again = vec![u32::MAX; words];
            m.fill_mask(&mut again);
            assert_eq!(first, again, "{text:?}");
        }
    }
    // After `ac` or `aac` the token `bb` is right at one depth only: the
    // parser's context decides it (a hand-over), on every fill.
    assert!(kept_uncached > 0);
    // Nothing is computed before the first fill of the builtin JSON grammar;
    // regexes and GBNF grammars build their states' masks at compile, and
    // so does a schema's precompute given the time (its compile spends a
    // small budget on it, which a slow build may not fit).
    let fresh = compiler
        .compile_builtin_json(&SchemaOptions::default())
        .expect("json");
    assert!(!Matcher::new(fresh).mask_is_cached());
    let schema = compiler
        .compile_json_schema(r#"{"enum": ["ab", "c"]}"#, &SchemaOptions::default())
        .expect("schema")
        .0;
    schema.precompute(std::time::Duration::from_secs(60));
    let regex = compiler.compile_regex("[ab]{2}c").expect("regex");
    let gbnf = compiler
        .compile_gbnf(b"root ::= [ab] [ab] \"c\"\n", "root")
        .expect("gbnf");
    let mut m = Matcher::new(schema);
    for b in *b"\"ab\"" {
        assert!(m.mask_is_cached());
        assert!(m.accept_bytes(&[b]));
    }
    for g in [regex, gbnf] {
        let mut m = Matcher::new(g);
        for b in [b'a', b'b', b'c'] {
            assert!(m.mask_is_cached());
            assert!(m.accept_bytes(&[b]));
        }
    }
}
