//! Replays a comparative-benchmark workload in Rust, without Python, for
//! profiling the per-step mask: every group is compiled on one compiler,
//! every text teacher-forced through a fresh matcher, every `fill_mask` timed.
//! Prints mask p50 / p90 / p99 / max and the slowest steps.
//!
//! The workload file is written by the comparative benchmark
//! (`python benches/compare/run.py --dump FILE`, same sampling options):
//! `{"json": [{"id", "spec", "texts": [[ids…]…]}…], "schemas": …}`.
//!
//! Run: `cargo run --release -p corral-benches --example replay -- FILE json`
//! (`PASSES=2` runs every text twice and reports the second, warm pass only;
//! `GROUP=substring` replays only the matching groups; `REPEAT=n` replays
//! the workload n times, each on a fresh compiler with cold caches, for
//! profiling first visits; `FLUSH=1` writes 256 MB before each compile, so
//! compiles start with cold caches, as after the benchmark worker's
//! `gc.collect()`; `SLEEP=ms` idles before each compile, as the benchmark
//! worker waits for its next job (after 20 ms the caches are cold: mask p99
//! 103 -> 140 µs, compile p50 0.47 -> 0.90 ms, as in the benchmark);
//! `TRACE=1` prints every step with the token that follows;
//! `PRECOMPUTE=ms` runs `CompiledGrammar::precompute` after each compile;
//! `DIGEST=1` prints a hash of all masks, to check two builds agree;
//! `ROLLBACK=n` gives every matcher a rollback window of n tokens, so its
//! chart is compacted: the digest must not change).

#![allow(missing_docs)]
#![allow(clippy::print_stdout)]

use corral_benches::qwen_vocab;
use corral_core::grammar::schema::SchemaOptions;
use corral_core::mask::words_for;
use corral_core::{Compiler, Matcher};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

// The allocator and options of the Python module (rust/python/src/lib.rs),
// so first visits allocate here as they do behind the benchmark's binding.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: sets two integer options of the allocator; takes no pointers.
    // 4 and 15: MI_OPTION_ARENA_EAGER_COMMIT and MI_OPTION_PURGE_DELAY.
    unsafe {
        libmimalloc_sys::mi_option_set(4, 0);
        libmimalloc_sys::mi_option_set(15, -1);
    }
}

fn main() {
    tune_allocator();
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("workload file");
    let name = args.next().unwrap_or_else(|| "json".to_owned());
    let passes: usize = std::env::var("PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let all: Value = serde_json::from_slice(&std::fs::read(&path).expect("read workload file"))
        .expect("workload JSON");
    let groups = all[name.as_str()].as_array().expect("workload name");
    let vocab = Arc::new(qwen_vocab());
    let eos = vocab.stop_ids()[0];
    let repeat: usize = std::env::var("REPEAT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];
    let mut times: Vec<(f64, String, usize)> = Vec::new();
    let mut compile_ms = Vec::new();
    // `GROUP=id` replays only the groups whose id contains `id`.
    let only = std::env::var("GROUP").unwrap_or_default();
    let flush = std::env::var("FLUSH").is_ok();
    let sleep: Option<u64> = std::env::var("SLEEP").ok().and_then(|v| v.parse().ok());
    // `TRACE=1` prints every step's time and the token that follows it.
    let trace = std::env::var("TRACE").is_ok();
    // `DIGEST=1` prints a hash of every mask (FNV-1a over the words), so
    // two builds can be checked to give the same masks.
    let digest = std::env::var("DIGEST").is_ok();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    // `PRECOMPUTE=ms` builds the plain entries ahead, within that budget.
    let precompute = std::env::var("PRECOMPUTE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok());
    // `ROLLBACK=n` sets every matcher's rollback window.
    let rollback: Option<usize> = std::env::var("ROLLBACK").ok().and_then(|v| v.parse().ok());
    let mut flush_buf = vec![0u8; if flush { 256 << 20 } else { 0 }];
    for g in (0..repeat).flat_map(|_| {
        let compiler = Arc::new(Compiler::new(vocab.clone()));
        groups.iter().map(move |g| (g, compiler.clone()))
    }) {
        let (g, compiler) = g;
        if !g["id"].as_str().unwrap_or_default().contains(&only) {
            continue;
        }
        let spec = &g["spec"];
        if let Some(ms) = sleep {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if flush {
            // Evict the caches, as a Python caller's gc.collect() does.
            for (i, x) in flush_buf.iter_mut().enumerate().step_by(64) {
                *x = x.wrapping_add(i as u8);
            }
        }
        let t0 = Instant::now();
        let compiled = match spec["kind"].as_str().unwrap_or_default() {
            "json" => compiler.compile_builtin_json(&SchemaOptions::default()),
            "schema" => {
                let opts = SchemaOptions {
                    strict_mode: false,
                    ..SchemaOptions::default()
                };
                compiler
                    .compile_json_schema_value(&spec["schema"], &opts)
                    .map(|r| r.0)
            }
            "gbnf" => compiler.compile_gbnf(
                spec["grammar"].as_str().unwrap_or_default().as_bytes(),
                "root",
            ),
            "regex" => compiler.compile_regex(spec["pattern"].as_str().unwrap_or_default()),
            k => panic!("unknown kind {k}"),
        };
        let Ok(compiled) = compiled else { continue };
        if let Some(ms) = precompute {
            let t = Instant::now();
            compiled.precompute(std::time::Duration::from_secs_f64(ms / 1e3));
            if trace {
                let ms = t.elapsed().as_secs_f64() * 1e3;
                println!(
                    "{}: precompute {ms:.1} ms, {} states",
                    g["id"],
                    compiled.num_states()
                );
            }
        }
        let mut first = Matcher::new(compiled.clone());
        first.fill_mask(&mut mask);
        compile_ms.push((t0.elapsed().as_secs_f64() * 1e3, g["id"].to_string()));
        let id = g["id"].as_str().unwrap_or_default();
        for (n, text) in g["texts"].as_array().into_iter().flatten().enumerate() {
            for pass in 0..passes {
                let mut m = Matcher::new(compiled.clone());
                m.set_max_rollback(rollback);
                let ids: Vec<u32> = text
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_u64().map(|v| v as u32))
                    .chain([eos])
                    .collect();
                for (step, &tok) in ids.iter().enumerate() {
                    let t = Instant::now();
                    m.fill_mask(&mut mask);
                    let us = t.elapsed().as_secs_f64() * 1e6;
                    if digest {
                        for &w in &mask {
                            hash = (hash ^ u64::from(w)).wrapping_mul(0x100_0000_01b3);
                        }
                    }
                    if pass + 1 == passes {
                        times.push((us, format!("{id}#{n}"), step));
                        if trace {
                            let b = compiled.vocab().token_bytes(tok);
                            let b = String::from_utf8_lossy(b);
                            println!("{id}#{n} step {step} {us:9.1} µs, then {b:?}");
                        }
                    }
                    if step + 1 < ids.len() && !m.accept_token(tok) {
                        println!("{id}#{n}: token {tok} rejected at step {step}");
                        break;
                    }
                }
            }
        }
    }
    if digest {
        println!("mask digest {hash:016x}");
    }
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize].0;
    compile_ms.sort_by(|a, b| a.0.total_cmp(&b.0));
    let cq = |p: f64| compile_ms[((compile_ms.len() - 1) as f64 * p) as usize].0;
    println!(
        "{name}: {} masks p50 {:.2} p90 {:.2} p99 {:.1} max {:.0} µs; sum {:.1} ms; \
         {} compiles p50 {:.2} p99 {:.1} max {:.1} ms",
        times.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0),
        times.iter().map(|t| t.0).sum::<f64>() / 1e3,
        compile_ms.len(),
        cq(0.5),
        cq(0.99),
        cq(1.0),
    );
    for (us, id, step) in times.iter().rev().take(12) {
        println!("  {us:9.1} µs  {id} step {step}");
    }
    for (ms, id) in compile_ms.iter().rev().take(3) {
        println!("  compile {ms:7.1} ms  {id}");
    }
}
