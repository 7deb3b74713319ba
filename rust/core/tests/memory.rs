//! Memory accounting: compiled grammars count their cache as it fills, and
//! matchers count their chart as it grows.

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
