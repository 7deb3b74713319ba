//! Memory accounting: compiled grammars count their cache as it fills, and
//! matchers count their chart as it grows.

use corral_core::grammar::schema::SchemaOptions;
use corral_core::mask::words_for;
use corral_core::{Compiler, Matcher, Vocabulary};
use std::sync::Arc;

#[test]
fn compiled_grammar_bytes_grow_as_masks_fill_the_cache() {
    let vocab = Arc::new(Vocabulary::byte_level());
    let compiler = Compiler::new(vocab.clone());
    // A counted repetition, so register-class entries are counted too.
    let g = compiler
        .compile_gbnf(br#"root ::= "[" [a-z]{0,100} "]" [0-9]*"#, "root")
        .unwrap();
    let tables = g.automaton().heap_bytes();
    assert!(tables > 0);
    let cold = g.heap_bytes();
    assert_eq!(g.cache_heap_bytes(), cold - tables);
    let mut m = Matcher::new(g.clone());
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];
    let cold_matcher = m.heap_bytes();
    for &b in b"[abc]12" {
        m.fill_mask(&mut mask);
        assert!(m.accept_token(u32::from(b)));
    }
    m.fill_mask(&mut mask);
    let warm = g.heap_bytes();
    // At least one 256-token bitset per visited state.
    assert!(
        warm >= cold + 4 * words_for(vocab.vocab_size()),
        "{cold} -> {warm}"
    );
    assert!(m.heap_bytes() > cold_matcher);
    assert!(vocab.heap_bytes() > vocab.trie().heap_bytes());
}

#[test]
fn a_rollback_window_bounds_the_chart() {
    let vocab = Arc::new(Vocabulary::byte_level());
    let compiler = Compiler::new(vocab.clone());
    let g = compiler
        .compile_builtin_json(&SchemaOptions::default())
        .unwrap();
    // ~40 KB of nested JSON: the chart's sets before the window are reached
    // only through the few open containers.
    let mut text = String::from("[");
    for i in 0..400 {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(&format!(
            r#"{{"id": {i}, "tags": ["a", "b\n"], "v": {{"x": -1.5e3, "ok": true}}}}"#
        ));
    }
    text.push(']');
    let (mut full, mut win) = (Matcher::new(g.clone()), Matcher::new(g.clone()));
    win.set_max_rollback(Some(4));
    let words = words_for(vocab.vocab_size());
    let (mut a, mut b) = (vec![0u32; words], vec![0u32; words]);
    let bytes = text.as_bytes();
    let (mut i, mut rolled) = (0, 0);
    while i < bytes.len() {
        full.fill_mask(&mut a);
        win.fill_mask(&mut b);
        assert_eq!(a, b, "masks differ after {:?}", &text[..i]);
        assert!(full.accept_token(u32::from(bytes[i])));
        assert!(win.accept_token(u32::from(bytes[i])));
        i += 1;
        if i % 97 == 0 && i > rolled {
            // Roll back inside the window, then take the same bytes again.
            rolled = i;
            full.rollback(4).unwrap();
            win.rollback(4).unwrap();
            i -= 4;
        }
    }
    assert!(win.rollback(5).is_err());
    assert_eq!(win.num_accepted_tokens(), full.num_accepted_tokens());
    let (whole, windowed) = (full.heap_bytes(), win.heap_bytes());
    assert!(
        windowed < 16 << 10,
        "{windowed} bytes with a 4-token window"
    );
    assert!(whole > 40 * windowed, "{whole} bytes without a window");
    // Reset after compaction: the start again.
    win.reset();
    let mut fresh = Matcher::new(g.clone());
    win.fill_mask(&mut a);
    fresh.fill_mask(&mut b);
    assert_eq!(a, b);
}
