//! Runs the shared vectors in `tests/vectors/*.toml` (also run by pytest).
//!
//! Vocabulary: ids 0..=255 are single bytes, 256 is EOS (special, stop),
//! 257 `<think>` and 258 `</think>` are special tokens.

use corral_core::mask::{get_bit, words_for};
use corral_core::{Compiler, ErrorKind, Matcher, Vocabulary};
use std::sync::Arc;
use toml::Value;

const EOS: u32 = 256;

fn vocab() -> Arc<Vocabulary> {
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    tokens.push(b"<eos>".to_vec());
    tokens.push(b"<think>".to_vec());
    tokens.push(b"</think>".to_vec());
    Arc::new(Vocabulary::new(tokens, None, vec![EOS], vec![EOS, 257, 258]).unwrap())
}

/// A vector input as a token sequence: a string is its bytes, `{ token = N }` is token N.
fn units(v: &Value) -> Vec<u32> {
    match v {
        Value::String(s) => s.bytes().map(u32::from).collect(),
        Value::Array(parts) => parts.iter().flat_map(units).collect(),
        Value::Table(t) => vec![t["token"].as_integer().unwrap() as u32],
        other => panic!("bad input {other:?}"),
    }
}

/// Feed tokens one by one, checking each is in the mask first; true if all
/// are accepted and EOS then terminates.
fn run(m: &mut Matcher, toks: &[u32], n_words: usize) -> bool {
    let mut mask = vec![0u32; n_words];
    for &t in toks {
        m.fill_mask(&mut mask);
        let in_mask = get_bit(&mask, t);
        let ok = m.accept_token(t);
        assert_eq!(in_mask, ok, "mask and accept_token disagree on token {t}");
        if !ok {
            return false;
        }
    }
    if m.is_terminated() {
        return true; // the input ended with a stop token
    }
    m.fill_mask(&mut mask);
    assert_eq!(get_bit(&mask, EOS), m.can_terminate());
    m.accept_token(EOS) && m.is_terminated()
}

fn run_file(name: &str, text: &str) -> usize {
    let doc: Value = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let vocab = vocab();
    let words = words_for(vocab.vocab_size());
    let compiler = Compiler::new(vocab);
    let mut n = 0;
    for case in doc["test"].as_array().unwrap() {
        let id = format!("{name}::{}", case["name"].as_str().unwrap());
        let grammar = case["grammar"].as_str().unwrap();
        let root = case.get("root").and_then(Value::as_str).unwrap_or("root");
        let result = compiler.compile_gbnf(grammar.as_bytes(), root);
        if let Some(err) = case.get("error") {
            let e = result
                .err()
                .unwrap_or_else(|| panic!("{id}: compiled, expected an error"));
            let kind = match err["kind"].as_str().unwrap() {
                "syntax" => ErrorKind::Syntax,
                "grammar" => ErrorKind::Grammar,
                "limit" => ErrorKind::Limit,
                k => panic!("{id}: unknown kind {k}"),
            };
            assert_eq!(e.kind(), kind, "{id}: {e}");
            if let Some(line) = err.get("line").and_then(Value::as_integer) {
                assert_eq!(e.span().map(|s| i64::from(s.line)), Some(line), "{id}: {e}");
            }
            if let Some(col) = err.get("column").and_then(Value::as_integer) {
                assert_eq!(
                    e.span().map(|s| i64::from(s.column)),
                    Some(col),
                    "{id}: {e}"
                );
            }
            if let Some(c) = err.get("contains").and_then(Value::as_str) {
                assert!(e.to_string().contains(c), "{id}: {e:?} lacks {c:?}");
            }
            n += 1;
            continue;
        }
        let g = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        for (want, key) in [(true, "accept"), (false, "reject")] {
            for input in case
                .get(key)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
            {
                let toks = units(input);
                let mut m = Matcher::new(g.clone());
                assert_eq!(run(&mut m, &toks, words), want, "{id}: {key} {input}");
                if let Value::String(s) = input {
                    let mut m = Matcher::new(g.clone());
                    let whole = m.accept_bytes(s.as_bytes()) && m.can_terminate();
                    assert_eq!(whole, want, "{id}: accept_bytes {key} {s:?}");
                }
                n += 1;
            }
        }
    }
    n
}

macro_rules! vector_file {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            let n = run_file(
                $file,
                include_str!(concat!("../../../tests/vectors/", $file)),
            );
            assert!(n > 0, "no cases in {}", $file);
        }
    };
}

vector_file!(ebnf_vectors, "ebnf.toml");
vector_file!(error_vectors, "errors.toml");
vector_file!(token_vectors, "tokens.toml");
