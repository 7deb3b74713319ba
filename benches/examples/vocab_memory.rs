//! Heap bytes of the Qwen2.5 vocabulary, split into the token trie and the
//! rest (token bytes, offsets, id lists, the text-to-id map). Python's
//! `TokenizerInfo.memory_usage()` reports the total.
//!
//! Run: `cargo run --release -p corral-benches --example vocab_memory`

#![allow(missing_docs)]
#![allow(clippy::print_stdout)]

use corral_benches::qwen_vocab;

fn main() {
    let vocab = qwen_vocab();
    let trie = vocab.trie();
    let mb = |b: usize| b as f64 / 1e6;
    println!(
        "Qwen2.5: {} tokens, vocabulary {:.2} MB, of which trie {:.2} MB ({} nodes, {:.1} bytes/token)",
        vocab.tokenizer_size(),
        mb(vocab.heap_bytes()),
        mb(trie.heap_bytes()),
        trie.num_nodes(),
        trie.heap_bytes() as f64 / vocab.tokenizer_size() as f64,
    );
}
