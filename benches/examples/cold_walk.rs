//! Cold classification walks on the Qwen2.5 vocabulary: the first mask inside
//! a JSON string (json.gbnf, so a fresh grammar each round), inside the key
//! of a schema object with unnamed keys allowed, and before the keys of an
//! object whose keys are all named (after `{`, which the compile's
//! precompute usually covers, and after a member). For
//! profiling the walk: `CASE=text` runs only the cases whose name holds it,
//! `ROUNDS=n` sets the rounds (20), each on a fresh compiler.
//!
//! Run: `cargo run --release -p corral-benches --example cold_walk`

#![allow(missing_docs)]
#![allow(clippy::print_stdout)]

use corral_benches::{corpus, greedy_tokenize, qwen_vocab};
use corral_core::grammar::schema::SchemaOptions;
use corral_core::mask::words_for;
use corral_core::{Compiler, Matcher};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let vocab = Arc::new(qwen_vocab());
    let gbnf = std::fs::read(corpus("gbnf/json.gbnf")).expect("json.gbnf");
    let schema =
        r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}}}"#;
    // Keys a strict schema names: the walk after `{` follows whitespace,
    // then each key's letters.
    let keyed = r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"address":{"type":"string"},"email":{"type":"string","format":"email"},"phone":{"type":"string"},"created_at":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},"active":{"type":"boolean"}},"required":["name"],"additionalProperties":false}"#;
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    let rounds: usize = std::env::var("ROUNDS").map_or(20, |r| r.parse().expect("ROUNDS"));
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];
    for (what, prefix) in [
        ("json.gbnf string", "{\"a\": \"x"),
        ("schema other key", "{\"ab"),
        ("schema named keys after {", "{"),
        ("schema named keys after ,", "{\"name\": \"x\", "),
    ] {
        // `CASE=text`: only the cases whose name holds it (for profiling).
        if std::env::var("CASE").is_ok_and(|c| !what.contains(&c)) {
            continue;
        }
        let tokens = greedy_tokenize(&vocab, prefix.as_bytes());
        let mut times = Vec::new();
        for _ in 0..rounds {
            let compiler = Compiler::new(vocab.clone());
            let g = if what.starts_with("json") {
                compiler.compile_gbnf(&gbnf, "root").expect("compiles")
            } else {
                let text = if what.contains("named") {
                    keyed
                } else {
                    schema
                };
                compiler
                    .compile_json_schema(text, &opts)
                    .expect("compiles")
                    .0
            };
            let mut m = Matcher::new(g);
            for &t in &tokens {
                assert!(m.accept_token(t));
            }
            let t0 = Instant::now();
            m.fill_mask(&mut mask);
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{what}: cold first mask median {:.1} µs, min {:.1} µs",
            times[times.len() / 2] * 1e3,
            times[0] * 1e3
        );
    }
}
