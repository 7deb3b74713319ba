//! A tokenizer's vocabulary as raw bytes: what each token id stands for,
//! which ids are special (never produced by text rules) and which stop
//! generation. The token trie is built once here and shared by every grammar.
//!
//! Loaders for real tokenizers turn their stored pieces into exact bytes:
//! [`Vocabulary::from_pieces`] (any piece list, see [`decode_piece`]),
//! [`Vocabulary::from_gguf`] (a llama.cpp GGUF file's metadata, see [`gguf`])
//! and [`Vocabulary::from_tiktoken`] (a tiktoken ranks file, see [`tiktoken`]).

mod decode;
pub mod gguf;
mod serial;
pub mod tiktoken;

pub use decode::{
    byte_level_byte_to_char, byte_level_char_to_byte, decode_piece, parse_byte_piece, VocabType,
    SPACE_MARK,
};

use crate::error::{Error, ErrorKind, Result};
use crate::trie::TokenTrie;
use rustc_hash::FxHashMap;
use std::path::Path;

/// Token id type.
pub type TokenId = u32;

/// An immutable vocabulary: token bytes, special and stop ids, the model's
/// (possibly padded) vocabulary size, and the token trie over text tokens.
#[derive(Debug)]
pub struct Vocabulary {
    bytes: Vec<u8>,
    offsets: Vec<u32>,
    vocab_size: usize,
    stop_ids: Vec<TokenId>,
    special_ids: Vec<TokenId>,
    is_special: Vec<bool>,
    trie: TokenTrie,
    by_text: FxHashMap<Vec<u8>, Vec<TokenId>>,
    vocab_type: VocabType,
}

impl Vocabulary {
    /// Build a vocabulary.
    ///
    /// `tokens[i]` are the bytes of token `i`. `vocab_size` is the model's
    /// vocabulary size (logit rows may be padded past the tokenizer; those ids
    /// are never allowed); `None` means `tokens.len()`. Stop ids end
    /// generation; special ids are never produced by text rules (stop ids are
    /// always special).
    pub fn new(
        tokens: Vec<Vec<u8>>,
        vocab_size: Option<usize>,
        stop_ids: Vec<TokenId>,
        special_ids: Vec<TokenId>,
    ) -> Result<Vocabulary> {
        let n = tokens.len();
        if n == 0 {
            return Err(Error::new(ErrorKind::Vocab, "vocabulary is empty"));
        }
        if n >= u32::MAX as usize {
            return Err(Error::new(
                ErrorKind::Vocab,
                format!("vocabulary has {n} tokens, too many"),
            ));
        }
        let vocab_size = vocab_size.unwrap_or(n);
        if vocab_size < n {
            return Err(Error::new(
                ErrorKind::Vocab,
                format!("vocab_size {vocab_size} is smaller than the tokenizer's {n} tokens"),
            ));
        }
        for (what, ids) in [("stop", &stop_ids), ("special", &special_ids)] {
            if let Some(&bad) = ids.iter().find(|&&id| id as usize >= n) {
                return Err(Error::new(
                    ErrorKind::Vocab,
                    format!("{what} token id {bad} is out of range (the tokenizer has {n} tokens)"),
                ));
            }
        }
        let mut is_special = vec![false; n];
        for &id in stop_ids.iter().chain(&special_ids) {
            is_special[id as usize] = true;
        }
        let mut stop_ids = stop_ids;
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let mut special_ids: Vec<TokenId> =
            (0..n as u32).filter(|&i| is_special[i as usize]).collect();
        special_ids.dedup();

        let total: usize = tokens.iter().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(total);
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u32);
        let mut by_text: FxHashMap<Vec<u8>, Vec<TokenId>> = FxHashMap::default();
        for (i, t) in tokens.iter().enumerate() {
            bytes.extend_from_slice(t);
            offsets.push(bytes.len() as u32);
            if is_special[i] {
                by_text.entry(t.clone()).or_default().push(i as TokenId);
            }
        }
        // Text tokens become trie entries; special and empty tokens never match bytes.
        let text_ids: Vec<TokenId> = (0..n as u32)
            .filter(|&i| !is_special[i as usize] && !tokens[i as usize].is_empty())
            .collect();
        let trie = TokenTrie::build(&text_ids, |id| &tokens[id as usize]);
        for &id in &text_ids {
            let t = &tokens[id as usize];
            // Only short tokens can be named by text in a grammar; skip the map for the rest.
            if t.first() == Some(&b'<') {
                by_text.entry(t.clone()).or_default().push(id);
            }
        }
        Ok(Vocabulary {
            bytes,
            offsets,
            vocab_size,
            stop_ids,
            special_ids,
            is_special,
            trie,
            by_text,
            vocab_type: VocabType::Raw,
        })
    }

    /// Record how the vocabulary's pieces were decoded (informational: the
    /// token bytes are already exact). [`Vocabulary::new`] records
    /// [`VocabType::Raw`].
    pub fn with_vocab_type(mut self, vocab_type: VocabType) -> Vocabulary {
        self.vocab_type = vocab_type;
        self
    }

    /// Build a vocabulary from a tokenizer's stored pieces.
    ///
    /// `pieces[i]` is the piece of token `i` (`None`: no token has this id;
    /// it decodes to nothing and is never allowed by text). Special and stop
    /// ids keep their piece text as bytes (`"<|im_end|>"`); ids listed in
    /// `byte_tokens` stand for the given byte; every other piece goes through
    /// [`decode_piece`] with `vocab_type`. The other arguments are as for
    /// [`Vocabulary::new`].
    pub fn from_pieces<S: AsRef<str>>(
        pieces: &[Option<S>],
        vocab_type: VocabType,
        byte_tokens: &[(TokenId, u8)],
        vocab_size: Option<usize>,
        stop_ids: Vec<TokenId>,
        special_ids: Vec<TokenId>,
    ) -> Result<Vocabulary> {
        let n = pieces.len();
        let mut byte_of: FxHashMap<TokenId, u8> = FxHashMap::default();
        for &(id, b) in byte_tokens {
            if id as usize >= n {
                return Err(Error::new(
                    ErrorKind::Vocab,
                    format!("byte token id {id} is out of range (the tokenizer has {n} tokens)"),
                ));
            }
            byte_of.insert(id, b);
        }
        let mut keep_text = vec![false; n];
        for &id in stop_ids.iter().chain(&special_ids) {
            if let Some(k) = keep_text.get_mut(id as usize) {
                *k = true;
            }
        }
        let tokens: Vec<Vec<u8>> = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let Some(p) = p else { return Vec::new() };
                let p = p.as_ref();
                if keep_text[i] {
                    p.as_bytes().to_vec()
                } else if let Some(&b) = byte_of.get(&(i as TokenId)) {
                    vec![b]
                } else {
                    decode_piece(vocab_type, p)
                }
            })
            .collect();
        Ok(Self::new(tokens, vocab_size, stop_ids, special_ids)?.with_vocab_type(vocab_type))
    }

    /// Read the vocabulary, token types and end-of-generation ids from a
    /// GGUF file's metadata (llama.cpp's model format). Only the metadata is
    /// read, never the tensors. See [`gguf`] for the rules; use
    /// [`gguf::GgufTokenizer`] to override the vocabulary size or stop ids.
    pub fn from_gguf(path: impl AsRef<Path>) -> Result<Vocabulary> {
        gguf::GgufTokenizer::from_path(path.as_ref())?.into_vocabulary(None, None)
    }

    /// Build a vocabulary from a tiktoken ranks file (`<base64 bytes> <rank>`
    /// per line) plus special tokens at their ids. See [`tiktoken`] for the
    /// rules (gaps between ids, errors).
    pub fn from_tiktoken(
        data: &[u8],
        special_tokens: &[(String, TokenId)],
        stop_ids: Vec<TokenId>,
        vocab_size: Option<usize>,
    ) -> Result<Vocabulary> {
        tiktoken::build(data, special_tokens, stop_ids, vocab_size)
    }

    /// A compact binary form of the vocabulary (token bytes, ids, sizes,
    /// type), for pickling; [`Vocabulary::from_bytes`] reads it back and
    /// rebuilds the trie.
    pub fn to_bytes(&self) -> Vec<u8> {
        serial::to_bytes(self)
    }

    /// Read the form written by [`Vocabulary::to_bytes`].
    pub fn from_bytes(data: &[u8]) -> Result<Vocabulary> {
        serial::from_bytes(data)
    }

    /// How the pieces were decoded into bytes.
    pub fn vocab_type(&self) -> VocabType {
        self.vocab_type
    }

    /// The byte-level test vocabulary: ids 0..=255 are the single bytes, id 256 is EOS.
    pub fn byte_level() -> Vocabulary {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        tokens.push(b"<eos>".to_vec());
        // Cannot fail: ids are in range and the vocabulary is non-empty.
        Self::new(tokens, None, vec![256], vec![256]).unwrap_or_else(|_| unreachable!())
    }

    /// The model's vocabulary size (bitmask width in bits, rounded up to 32).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Number of tokens the tokenizer defines (ids past this are padding).
    pub fn tokenizer_size(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Bytes of token `id` (empty for ids out of range).
    pub fn token_bytes(&self, id: TokenId) -> &[u8] {
        let i = id as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.bytes[a as usize..b as usize],
            _ => &[],
        }
    }

    /// Stop ids, sorted.
    pub fn stop_ids(&self) -> &[TokenId] {
        &self.stop_ids
    }

    /// Special ids (including stop ids), sorted.
    pub fn special_ids(&self) -> &[TokenId] {
        &self.special_ids
    }

    /// Is `id` a special token (matched only by token elements or as a stop token)?
    pub fn is_special(&self, id: TokenId) -> bool {
        self.is_special.get(id as usize).copied().unwrap_or(false)
    }

    /// Is `id` a stop token?
    pub fn is_stop(&self, id: TokenId) -> bool {
        self.stop_ids.binary_search(&id).is_ok()
    }

    /// The token trie over text (non-special, non-empty) tokens.
    pub fn trie(&self) -> &TokenTrie {
        &self.trie
    }

    /// Ids whose text is exactly `text` (special tokens, and text tokens starting with `<`).
    pub fn ids_for_text(&self, text: &[u8]) -> &[TokenId] {
        self.by_text.get(text).map_or(&[], Vec::as_slice)
    }

    /// Approximate heap bytes used (token bytes, offsets, id lists, the
    /// text-to-id map and the trie).
    pub fn heap_bytes(&self) -> usize {
        let ids = (self.stop_ids.len() + self.special_ids.len()) * 4;
        // Per map entry: the key and value vectors' headers and contents, plus a slot.
        let map: usize = self
            .by_text
            .iter()
            .map(|(k, v)| 2 * 24 + 8 + k.len() + v.len() * 4)
            .sum();
        self.bytes.len()
            + self.offsets.len() * 4
            + self.is_special.len()
            + ids
            + map
            + self.trie.heap_bytes()
    }
}
