//! Cold classification walks on the Qwen2.5 vocabulary: the first mask inside
//! a JSON string (json.gbnf, so a fresh grammar each round) and inside the key
//! of a schema object with unnamed keys allowed. For profiling the walk.
//!
//! Run: `cargo run --release -p corral-benches --example cold_walk`

#![allow(missing_docs)]
#![allow(clippy::print_stdout)]

use corral_benches::{greedy_tokenize, qwen_vocab};
use corral_core::grammar::schema::SchemaOptions;
use corral_core::mask::words_for;
use corral_core::{Compiler, Matcher};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let vocab = Arc::new(qwen_vocab());
    let gbnf = std::fs::read(format!(
        "{}/../../shared/corpora/gbnf/json.gbnf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("json.gbnf");
    let schema =
        r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}}}"#;
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];
    for (what, prefix) in [
        ("json.gbnf string", "{\"a\": \"x"),
        ("schema other key", "{\"ab"),
    ] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let compiler = Compiler::new(vocab.clone());
            let g = if what.starts_with("json") {
                compiler.compile_gbnf(&gbnf, "root").expect("compiles")
            } else {
                compiler
                    .compile_json_schema(schema, &opts)
                    .expect("compiles")
                    .0
            };
            let mut m = Matcher::new(g);
            for t in greedy_tokenize(&vocab, prefix.as_bytes()) {
                assert!(m.accept_token(t));
            }
            let t0 = Instant::now();
            m.fill_mask(&mut mask);
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{what}: cold first mask median {:.2} ms, min {:.2} ms",
            times[10], times[0]
        );
    }
}
