//! Where JSON Schema compile time goes: front-end (schema -> grammar IR),
//! automaton build, and the first mask on the Qwen2.5 vocabulary, per
//! MaskBench split. For profiling (`perf record`), not a criterion bench.
//!
//! Run: `cargo run --release -p corral-benches --example schema_compile -- [SPLIT | FILE.jsonl ...]`
//! (`SHOW=1` prints each schema's rule and state counts, `SHOW=rules` per rule).

#![allow(missing_docs)]
#![allow(clippy::print_stdout)]

use corral_benches::{corpus, qwen_vocab};
use corral_core::compiler::CompiledGrammar;
use corral_core::grammar::schema::{schema_to_grammar, SchemaOptions};
use corral_core::mask::words_for;
use corral_core::{Limits, Matcher};
use std::sync::Arc;
use std::time::Instant;

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let mut splits: Vec<String> = std::env::args().skip(1).collect();
    if splits.is_empty() {
        splits = vec!["JME".into(), "Glaiveai2K".into(), "Github_easy".into()];
    }
    let vocab = Arc::new(qwen_vocab());
    let limits = Limits::default();
    let opts = SchemaOptions {
        strict_mode: false,
        ..SchemaOptions::default()
    };
    let mut mask = vec![0u32; words_for(vocab.vocab_size())];
    for split in splits {
        let path = if split.ends_with(".jsonl") {
            std::path::PathBuf::from(&split)
        } else {
            corpus(&format!("maskbench-dev/{split}.jsonl"))
        };
        let text = std::fs::read_to_string(&path).expect("read split");
        let (mut fe, mut au, mut fm, mut tot) = (vec![], vec![], vec![], vec![]);
        let mut worst = (0.0, 0usize);
        for (i, line) in text.lines().enumerate() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let schema = &v["schema"];
            let t0 = Instant::now();
            let Ok(sg) = schema_to_grammar(schema, &opts) else {
                continue;
            };
            let t1 = Instant::now();
            let Ok(g) = CompiledGrammar::from_grammar(&sg.grammar, vocab.clone(), &limits, None)
            else {
                continue;
            };
            let t2 = Instant::now();
            if std::env::var_os("SHOW").is_some() {
                println!(
                    "line {i}: {} rules {} states {:.2} ms",
                    g.num_rules(),
                    g.num_states(),
                    (t2 - t1).as_secs_f64() * 1e3
                );
                let a = g.automaton();
                if std::env::var("SHOW").as_deref() == Ok("rules") {
                    for (r, name) in a.rule_names.iter().enumerate() {
                        println!("    {name}: {}", a.rule_states(r).len());
                    }
                }
            }
            let mut m = Matcher::new(Arc::new(g));
            m.fill_mask(&mut mask);
            let t3 = Instant::now();
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            fe.push(ms(t0, t1));
            au.push(ms(t1, t2));
            fm.push(ms(t2, t3));
            tot.push(ms(t0, t3));
            if ms(t0, t3) > worst.0 {
                worst = (ms(t0, t3), i);
            }
        }
        for v in [&mut fe, &mut au, &mut fm, &mut tot] {
            v.sort_by(f64::total_cmp);
        }
        println!("{split}: {} compiled (worst line {})", tot.len(), worst.1);
        for (name, v) in [
            ("front-end", &fe),
            ("automaton", &au),
            ("first mask", &fm),
            ("total", &tot),
        ] {
            println!(
                "  {name:10} p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} ms  sum {:.0} ms",
                pct(v, 0.5),
                pct(v, 0.9),
                pct(v, 0.99),
                v[v.len() - 1],
                v.iter().sum::<f64>()
            );
        }
    }
}
