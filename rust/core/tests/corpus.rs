//! Every llama.cpp example grammar in `../shared/corpora/gbnf/` compiles, and
//! the empty prefix's mask agrees with `accept_token` on every byte.

use corral_core::mask::{get_bit, words_for};
use corral_core::{Compiler, Matcher, Vocabulary};
use std::path::PathBuf;
use std::sync::Arc;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/gbnf")
}

#[test]
fn corpus_grammars_compile() {
    let vocab = Arc::new(Vocabulary::byte_level());
    let compiler = Compiler::new(vocab.clone());
    let mut n = 0;
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "gbnf") {
            continue;
        }
        let src = std::fs::read(&path).unwrap();
        let g = compiler
            .compile_gbnf(&src, "root")
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut m = Matcher::new(g);
        let mut mask = vec![0u32; words_for(vocab.vocab_size())];
        m.fill_mask(&mut mask);
        for t in 0..vocab.vocab_size() as u32 {
            let mut f = m.clone();
            assert_eq!(
                get_bit(&mask, t),
                f.accept_token(t),
                "{}: token {t}",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n >= 8, "only {n} grammars found in {}", dir.display());
}
