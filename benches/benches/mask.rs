//! `fill_mask` along a JSON document under llama.cpp's json.gbnf with the
//! Qwen2.5 vocabulary (151,643 tokens), plus compile time.
//!
//! Run: `cargo bench -p corral-benches --bench mask`. Besides criterion's
//! summary it prints median / p99 / max per mask over one teacher-forced pass
//! with a cold cache (first visit of each state included) and one warm pass.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use corral_benches::{corpus, greedy_tokenize, qwen_vocab, JSON_DOC};
use corral_core::mask::words_for;
use corral_core::{Compiler, Matcher};
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::Instant;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

fn pass(compiler: &Compiler, src: &[u8], tokens: &[u32], mask: &mut [u32]) -> Vec<f64> {
    let g = compiler
        .compile_gbnf(src, "root")
        .expect("json.gbnf compiles");
    let mut m = Matcher::new(g);
    let mut times = Vec::with_capacity(tokens.len() + 1);
    for &t in tokens {
        let t0 = Instant::now();
        m.fill_mask(mask);
        times.push(t0.elapsed().as_secs_f64() * 1e6);
        assert!(corral_core::mask::get_bit(mask, t), "token {t} not allowed");
        assert!(m.accept_token(t));
    }
    times.sort_by(f64::total_cmp);
    times
}

fn bench(c: &mut Criterion) {
    let t0 = Instant::now();
    let vocab = Arc::new(qwen_vocab());
    eprintln!(
        "qwen vocabulary + trie: {:.1} ms, {} trie nodes, {:.1} MB",
        t0.elapsed().as_secs_f64() * 1e3,
        vocab.trie().num_nodes(),
        vocab.heap_bytes() as f64 / 1e6
    );
    let src = std::fs::read(corpus("gbnf/json.gbnf")).expect("read json.gbnf");
    let tokens = greedy_tokenize(&vocab, JSON_DOC.as_bytes());
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];

    // Cold: a fresh compiler, so every cache entry is filled on first visit.
    let t0 = Instant::now();
    let cold = pass(&Compiler::new(vocab.clone()), &src, &tokens, &mut mask);
    let cold_total = t0.elapsed().as_secs_f64() * 1e3;
    let compiler = Compiler::new(vocab.clone());
    // Warm: the same compiled grammar (cached by text) after one pass filled its cache.
    pass(&compiler, &src, &tokens, &mut mask);
    let warm = pass(&compiler, &src, &tokens, &mut mask);
    for (name, t) in [("cold", &cold), ("warm", &warm)] {
        eprintln!(
            "{name}: {} masks, median {:.1} us, p99 {:.1} us, max {:.1} us",
            t.len(),
            percentile(t, 0.5),
            percentile(t, 0.99),
            t[t.len() - 1]
        );
    }
    eprintln!("cold pass total (compile + all masks): {cold_total:.1} ms");

    c.bench_function("compile json.gbnf (qwen2.5)", |b| {
        b.iter(|| {
            Compiler::new(vocab.clone())
                .compile_gbnf(&src, "root")
                .expect("compiles")
        });
    });
    let g = compiler.compile_gbnf(&src, "root").expect("compiles");
    c.bench_function(
        "fill_mask along a JSON document (qwen2.5, warm cache)",
        |b| {
            b.iter(|| {
                let mut m = Matcher::new(g.clone());
                for &t in &tokens {
                    m.fill_mask(&mut mask);
                    m.accept_token(t);
                }
            });
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
