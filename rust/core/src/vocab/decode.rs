//! Token pieces (the strings a tokenizer stores) to the bytes they stand for.
//!
//! Three families cover the tokenizers in use:
//!
//! - [`VocabType::ByteLevel`] (GPT-2, Llama 3, Qwen, SmolLM): every byte is
//!   stored as one printable character (`Ġ` for a space, `Ċ` for a newline),
//!   using GPT-2's byte-to-unicode table; decoding inverts that table.
//! - [`VocabType::SentencePiece`] (Llama 2, Mistral, Gemma): `▁` (U+2581)
//!   stands for a space and `<0xNN>` pieces are single bytes (byte fallback).
//! - [`VocabType::Raw`]: the piece is the text itself.

use crate::error::{Error, ErrorKind};
use std::fmt;
use std::str::FromStr;

/// How a vocabulary's pieces map to bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VocabType {
    /// Pieces are the token text itself (UTF-8).
    #[default]
    Raw,
    /// GPT-2 style byte-level BPE: one character per byte (`Ġ` = space).
    ByteLevel,
    /// SentencePiece style: `▁` = space, `<0xNN>` = the byte `NN`.
    SentencePiece,
}

impl VocabType {
    /// The name used in the Python API: `"raw"`, `"byte_level"` or `"sentencepiece"`.
    pub fn as_str(self) -> &'static str {
        match self {
            VocabType::Raw => "raw",
            VocabType::ByteLevel => "byte_level",
            VocabType::SentencePiece => "sentencepiece",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            VocabType::Raw => 0,
            VocabType::ByteLevel => 1,
            VocabType::SentencePiece => 2,
        }
    }

    pub(crate) fn from_u8(b: u8) -> Option<VocabType> {
        match b {
            0 => Some(VocabType::Raw),
            1 => Some(VocabType::ByteLevel),
            2 => Some(VocabType::SentencePiece),
            _ => None,
        }
    }
}

impl fmt::Display for VocabType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VocabType {
    type Err = Error;

    /// Parse `"raw"`, `"byte_level"` or `"sentencepiece"`.
    fn from_str(s: &str) -> Result<VocabType, Error> {
        match s {
            "raw" => Ok(VocabType::Raw),
            "byte_level" => Ok(VocabType::ByteLevel),
            "sentencepiece" => Ok(VocabType::SentencePiece),
            _ => Err(Error::new(
                ErrorKind::Vocab,
                format!(
                    "unknown vocabulary type {s:?} (expected \"raw\", \"byte_level\" or \"sentencepiece\")"
                ),
            )),
        }
    }
}

/// The SentencePiece word-boundary mark `▁` (U+2581), which stands for a space.
pub const SPACE_MARK: char = '\u{2581}';

/// Is `b` one of the bytes GPT-2's table keeps as the character with the same
/// code point (the printable Latin-1 characters)?
fn byte_level_is_direct(b: u32) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// Inverse of GPT-2's byte-to-unicode table. Printable Latin-1 bytes stand for
/// themselves; the other 68 bytes, in increasing order, are stored as U+0100,
/// U+0101, ... U+0143.
pub fn byte_level_char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    if byte_level_is_direct(cp) {
        return u8::try_from(cp).ok();
    }
    let k = cp.checked_sub(0x100)?;
    // The k-th byte (0-based) that is not stored directly.
    (0u32..=255)
        .filter(|&b| !byte_level_is_direct(b))
        .nth(k as usize)
        .and_then(|b| u8::try_from(b).ok())
}

/// GPT-2's byte-to-unicode table: the character byte `b` is stored as.
pub fn byte_level_byte_to_char(b: u8) -> char {
    let b32 = u32::from(b);
    if byte_level_is_direct(b32) {
        return char::from(b);
    }
    let k = (0..b32).filter(|&x| !byte_level_is_direct(x)).count() as u32;
    char::from_u32(0x100 + k).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Table from code point `0..0x144` to byte (`None` for code points outside the map).
fn byte_level_table() -> &'static [Option<u8>; 0x144] {
    static TABLE: std::sync::OnceLock<[Option<u8>; 0x144]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [None; 0x144];
        for b in 0..=255u8 {
            t[byte_level_byte_to_char(b) as usize] = Some(b);
        }
        t
    })
}

/// If `piece` is exactly `<0xNN>` (two hex digits, either case), the byte `NN`.
pub fn parse_byte_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// The bytes a token piece stands for.
///
/// - `ByteLevel`: each character maps back through GPT-2's byte-to-unicode
///   table; a character outside the table (as in some added tokens) stands
///   for its own UTF-8 bytes.
/// - `SentencePiece`: `<0xNN>` is the byte `NN`; otherwise `▁` becomes a space
///   and the result is UTF-8 encoded.
/// - `Raw`: the piece's UTF-8 bytes.
pub fn decode_piece(vocab_type: VocabType, piece: &str) -> Vec<u8> {
    match vocab_type {
        VocabType::Raw => piece.as_bytes().to_vec(),
        VocabType::ByteLevel => {
            let table = byte_level_table();
            let mut out = Vec::with_capacity(piece.len());
            let mut buf = [0u8; 4];
            for c in piece.chars() {
                match table.get(c as usize).copied().flatten() {
                    Some(b) => out.push(b),
                    None => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
                }
            }
            out
        }
        VocabType::SentencePiece => match parse_byte_piece(piece) {
            Some(b) => vec![b],
            None => replace_space_mark(piece),
        },
    }
}

/// `piece` with every `▁` replaced by a space, as UTF-8 bytes.
pub(crate) fn replace_space_mark(piece: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(piece.len());
    let mut buf = [0u8; 4];
    for c in piece.chars() {
        if c == SPACE_MARK {
            out.push(b' ');
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_table_is_a_bijection() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = byte_level_byte_to_char(b);
            assert!(seen.insert(c), "{c:?} used twice");
            assert_eq!(byte_level_char_to_byte(c), Some(b));
            assert_eq!(decode_piece(VocabType::ByteLevel, &c.to_string()), vec![b]);
        }
        assert_eq!(seen.len(), 256);
        // The known landmarks of GPT-2's table.
        assert_eq!(byte_level_byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_level_byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_level_byte_to_char(b'\t'), 'ĉ');
        assert_eq!(byte_level_byte_to_char(0), '\u{100}');
        assert_eq!(byte_level_byte_to_char(0xAD), '\u{143}');
        assert_eq!(byte_level_byte_to_char(b'A'), 'A');
        assert_eq!(byte_level_byte_to_char(0xE9), 'é');
        assert_eq!(byte_level_char_to_byte('\u{144}'), None);
        assert_eq!(byte_level_char_to_byte(' '), None);
    }

    #[test]
    fn byte_level_pieces() {
        let bl = |p: &str| decode_piece(VocabType::ByteLevel, p);
        assert_eq!(bl("Ġhello"), b" hello");
        assert_eq!(bl("ĊĊ"), b"\n\n");
        assert_eq!(bl("ĉdef"), b"\tdef");
        // "é" as UTF-8 is C3 A9, stored as "Ã©".
        assert_eq!(bl("Ã©"), "é".as_bytes());
        // Half of a multi-byte character: not valid UTF-8 on its own.
        assert_eq!(bl("ð"), vec![0xF0]);
        assert_eq!(bl("ðŁĺ"), vec![0xF0, 0x9F, 0x98]);
        // Added tokens in plain ASCII are unchanged.
        assert_eq!(bl("<|im_end|>"), b"<|im_end|>");
        // A character outside the table stands for its UTF-8 bytes.
        assert_eq!(bl("a▁b"), "a▁b".as_bytes());
        assert_eq!(bl("日本"), "日本".as_bytes());
        assert_eq!(bl(""), b"");
    }

    #[test]
    fn sentencepiece_pieces() {
        let sp = |p: &str| decode_piece(VocabType::SentencePiece, p);
        assert_eq!(sp("▁hello"), b" hello");
        assert_eq!(sp("▁▁"), b"  ");
        assert_eq!(sp("a▁b▁"), b"a b ");
        assert_eq!(sp("<0x0A>"), b"\n");
        assert_eq!(sp("<0xff>"), vec![0xFF]);
        assert_eq!(sp("<0xF0>"), vec![0xF0]);
        assert_eq!(sp("<0x00>"), vec![0]);
        // Not byte pieces: taken as text.
        assert_eq!(sp("<0x0>"), b"<0x0>");
        assert_eq!(sp("<0x0G>"), b"<0x0G>");
        assert_eq!(sp("<0x0A0>"), b"<0x0A0>");
        assert_eq!(sp("<0x+A>"), b"<0x+A>");
        assert_eq!(sp("<0X0A>"), b"<0X0A>");
        assert_eq!(sp("▁<0x0A>"), b" <0x0A>");
        assert_eq!(sp("Ġ"), "Ġ".as_bytes());
        assert_eq!(sp("日本語"), "日本語".as_bytes());
        assert_eq!(sp("<start_of_turn>"), b"<start_of_turn>");
        assert_eq!(sp(""), b"");
    }

    #[test]
    fn raw_pieces() {
        let raw = |p: &str| decode_piece(VocabType::Raw, p);
        assert_eq!(raw("▁a"), "▁a".as_bytes());
        assert_eq!(raw("Ġa"), "Ġa".as_bytes());
        assert_eq!(raw("<0x0A>"), b"<0x0A>");
        assert_eq!(raw("😀"), "😀".as_bytes());
    }

    #[test]
    fn vocab_type_names_round_trip() {
        for vt in [
            VocabType::Raw,
            VocabType::ByteLevel,
            VocabType::SentencePiece,
        ] {
            assert_eq!(vt.as_str().parse::<VocabType>().unwrap(), vt);
            assert_eq!(vt.to_string(), vt.as_str());
            assert_eq!(VocabType::from_u8(vt.to_u8()), Some(vt));
        }
        let e = "bpe".parse::<VocabType>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Vocab);
        assert!(e.message().contains("\"bpe\""), "{e}");
        assert_eq!(VocabType::from_u8(9), None);
    }
}
