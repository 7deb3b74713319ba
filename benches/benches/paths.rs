//! The hot paths one at a time, on the Qwen2.5 vocabulary (151,643 tokens),
//! so that a regression in one shows without Python or the others around it:
//!
//! - trie walk: a fresh json.gbnf automaton classifies every live state
//!   (each state's first mask walks the token trie);
//! - cache hit: one warm mask that only copies cached sets;
//! - uncertain tokens: one warm mask whose state leaves tokens to its
//!   parents (each is checked against the matcher's parse stack);
//! - Earley step: accepting every token of a JSON document, no masks;
//! - compile: a MaskBench JSON Schema, first states' masks included.
//!
//! Run: `cargo bench -p corral-benches --bench paths` (the mask bench,
//! `--bench mask`, times whole teacher-forced passes).

#![allow(missing_docs)] // criterion's macros generate undocumented items

use corral_benches::{corpus, greedy_tokenize, qwen_vocab, JSON_DOC};
use corral_core::grammar::ebnf::parse_gbnf;
use corral_core::grammar::schema::SchemaOptions;
use corral_core::mask::words_for;
use corral_core::{CompiledGrammar, Compiler, Limits, Matcher};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A 2 KB schema with `additionalProperties`, `items` and `patternProperties`.
const SCHEMA_FILE: &str = "Github_medium.jsonl";
const SCHEMA_NAME: &str = "sample Github_medium/o10297.json";

fn schema_text() -> String {
    let lines = std::fs::read_to_string(corpus(&format!("maskbench-dev/{SCHEMA_FILE}")))
        .expect("read the MaskBench file");
    lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .find(|v| v["description"] == SCHEMA_NAME)
        .map(|v| v["schema"].to_string())
        .expect("the schema is in the file")
}

/// A matcher along `tokens` at the position (from token `from` on) whose
/// warm mask does (`cached`) or does not need more than cached sets; of the
/// positions that do not, the one with the slowest mask (the heaviest check
/// of uncertain tokens on the path).
fn matcher_at(g: &Arc<CompiledGrammar>, tokens: &[u32], from: usize, cached: bool) -> Matcher {
    let mut mask = vec![0u32; words_for(g.vocab().vocab_size())];
    let mut m = Matcher::new(g.clone());
    let mut best: Option<(Duration, usize, Matcher)> = None;
    for (i, &t) in tokens.iter().enumerate() {
        m.fill_mask(&mut mask);
        if i >= from && m.mask_is_cached() == cached {
            if cached {
                best = Some((Duration::ZERO, i, m.clone()));
                break;
            }
            let mut times: Vec<Duration> = (0..9)
                .map(|_| {
                    let t0 = Instant::now();
                    m.fill_mask(&mut mask);
                    t0.elapsed()
                })
                .collect();
            times.sort();
            if best.as_ref().is_none_or(|b| times[4] > b.0) {
                best = Some((times[4], i, m.clone()));
            }
        }
        assert!(m.accept_token(t), "token {i} accepted");
    }
    let (_, i, m) = best.unwrap_or_else(|| panic!("no position with mask_is_cached() == {cached}"));
    let before: Vec<u8> = tokens[..i]
        .iter()
        .flat_map(|&t| g.vocab().token_bytes(t).to_vec())
        .collect();
    eprintln!(
        "mask_is_cached() == {cached}: token {i}, after {:?}",
        String::from_utf8_lossy(&before)
    );
    m
}

fn bench(c: &mut Criterion) {
    let vocab = Arc::new(qwen_vocab());
    let src = std::fs::read(corpus("gbnf/json.gbnf")).expect("read json.gbnf");
    let ir = parse_gbnf(&src, "root").expect("json.gbnf parses");
    let tokens = greedy_tokenize(&vocab, JSON_DOC.as_bytes());
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];

    let fresh = || CompiledGrammar::from_grammar(&ir, vocab.clone(), &Limits::default(), None);
    eprintln!(
        "json.gbnf: {} states, {} trie nodes; the document: {} tokens",
        fresh().expect("json.gbnf compiles").num_states(),
        vocab.trie().num_nodes(),
        tokens.len()
    );
    c.bench_function("trie walk: classify every state of json.gbnf", |b| {
        b.iter_batched(
            || fresh().expect("json.gbnf compiles"),
            |g| g.precompute(Duration::MAX),
            BatchSize::PerIteration,
        );
    });

    let compiler = Compiler::new(vocab.clone());
    let g = compiler.compile_gbnf(&src, "root").expect("compiles");
    // `matcher_at` fills each position's mask before judging it: warm.
    let mut hit = matcher_at(&g, &tokens, 1, true);
    c.bench_function("cache hit: one warm mask", |b| {
        b.iter(|| hit.fill_mask(&mut mask));
    });
    let mut unsure = matcher_at(&g, &tokens, 0, false);
    c.bench_function("uncertain tokens: one warm mask", |b| {
        b.iter(|| unsure.fill_mask(&mut mask));
    });

    c.bench_function("Earley step: accept a JSON document's tokens", |b| {
        b.iter_batched(
            || Matcher::new(g.clone()),
            |mut m| {
                for &t in &tokens {
                    assert!(m.accept_token(t));
                }
                m
            },
            BatchSize::SmallInput,
        );
    });

    let schema = schema_text();
    let opts = SchemaOptions::default();
    c.bench_function("compile a MaskBench JSON Schema (2 KB)", |b| {
        b.iter(|| {
            Compiler::new(vocab.clone())
                .compile_json_schema(&schema, &opts)
                .expect("compiles")
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
