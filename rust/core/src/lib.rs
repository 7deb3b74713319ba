//! corral-core: grammar-constrained decoding.
//!
//! Compile a grammar against a tokenizer vocabulary, then at each decoding
//! step ask a [`Matcher`] which tokens may come next, as a packed bitmask.
//!
//! ```
//! use std::sync::Arc;
//! use corral_core::{Compiler, Matcher, Vocabulary, mask::words_for};
//!
//! let vocab = Arc::new(Vocabulary::byte_level());
//! let compiler = Compiler::new(vocab.clone());
//! let grammar = compiler.compile_gbnf(br#"root ::= "yes" | "no""#, "root")?;
//! let mut m = Matcher::new(grammar);
//! let mut mask = vec![0u32; words_for(vocab.vocab_size())];
//! m.fill_mask(&mut mask);
//! assert!(mask::get_bit(&mask, b'y' as u32) && !mask::get_bit(&mask, b'x' as u32));
//! assert!(m.accept_token(b'n' as u32) && m.accept_token(b'o' as u32));
//! assert!(m.can_terminate() && m.accept_token(256)); // 256 is EOS in the byte vocabulary
//! # use corral_core::mask;
//! # Ok::<(), corral_core::Error>(())
//! ```

pub mod automaton;
pub mod compiler;
pub mod error;
pub mod grammar;
pub mod limits;
pub mod mask;
pub mod matcher;
pub mod trie;
pub mod vocab;

pub use compiler::{CompiledGrammar, Compiler, SchemaReport};

/// A xorshift generator for the unit tests' random cases (fixed seeds, no
/// dependency).
#[cfg(test)]
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
pub use error::{Error, ErrorKind, Result, Span};
pub use limits::Limits;
pub use matcher::Matcher;
pub use vocab::{TokenId, Vocabulary};
