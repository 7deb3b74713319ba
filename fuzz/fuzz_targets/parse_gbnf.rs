//! Arbitrary bytes as GBNF text: compiling must return `Ok` or `Err`, never
//! panic or hang, and error messages must render. When the grammar compiles,
//! walk it a few steps, taking only tokens that the mask allows: each of them
//! must be accepted.

#![no_main]

use corral_core::mask::{get_bit, words_for};
use corral_core::{Compiler, Limits, Matcher, Vocabulary};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

static VOCAB: OnceLock<Arc<Vocabulary>> = OnceLock::new();

/// Small limits keep each input fast; hitting one is an ordinary `Err`.
fn limits() -> Limits {
    Limits {
        max_grammar_bytes: 4096,
        max_nfa_states: 20_000,
        max_dfa_states: 5_000,
        ..Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let vocab = VOCAB
        .get_or_init(|| Arc::new(Vocabulary::byte_level()))
        .clone();
    // A fresh compiler per input: the compiler caches every grammar it compiles.
    let compiler = Compiler::with_limits(vocab.clone(), limits());
    let grammar = match compiler.compile_gbnf(data, "root") {
        Ok(g) => g,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let mut matcher = Matcher::new(grammar);
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];
    let mut allowed = Vec::new();
    for step in 0..16 {
        matcher.fill_mask(&mut mask);
        allowed.clear();
        allowed.extend((0..vocab.vocab_size() as u32).filter(|&t| get_bit(&mask, t)));
        let Some(&first) = allowed.first() else { break };
        // Let the input steer the walk, so the fuzzer can reach deeper states.
        let pick = data
            .get(data.len().saturating_sub(1 + step))
            .map_or(first, |&b| allowed[b as usize % allowed.len()]);
        assert!(
            matcher.accept_token(pick),
            "the mask allowed token {pick} but accept_token refused it"
        );
        if matcher.is_terminated() {
            break;
        }
    }
});
