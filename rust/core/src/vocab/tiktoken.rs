//! Reading a tiktoken ranks file: one token per line, `<base64 bytes> <rank>`,
//! the rank being the token id.
//!
//! - Blank lines are skipped; a line ending in `\r\n` is fine.
//! - Any other malformed line (not two fields, bad base64, a rank that is not
//!   a decimal number) is an error naming the line.
//! - A rank given twice, or a special token on an id a rank already has, is
//!   an error.
//! - Ids may leave gaps (no line and no special token for them): such ids
//!   become empty tokens, which text rules never produce. The highest id must
//!   be below [`MAX_TOKENS`], so a stray huge rank cannot allocate gigabytes.
//! - Special tokens sit at their ids, with their text as bytes, and are never
//!   produced by text rules. Stop ids need not be special tokens but are made
//!   special.

use super::{TokenId, VocabType, Vocabulary};
use crate::error::{Error, ErrorKind, Result};
use rustc_hash::FxHashMap;

/// Ids must be below this (4,194,304; the largest real vocabularies have
/// about 260,000 tokens).
pub const MAX_TOKENS: usize = 1 << 22;

fn vocab_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Vocab, msg)
}

/// Value of a standard base64 character (`A-Z a-z 0-9 + /`).
fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decode standard base64 with `=` padding (padding may be left off); `None`
/// if the text is not base64 or has stray bits set in its last character.
pub fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let body_len = text.len() - text.iter().rev().take_while(|&&c| c == b'=').count();
    let (body, pad) = text.split_at(body_len);
    if pad.len() > 2 || (!pad.is_empty() && (body.len() + pad.len()) % 4 != 0) {
        return None;
    }
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in body {
        acc = (acc << 6) | u32::from(b64_value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero in canonical base64.
    (acc == 0).then_some(out)
}

/// Parse the ranks file into `(bytes, rank)` pairs, in file order.
pub fn parse_ranks(data: &[u8]) -> Result<Vec<(Vec<u8>, TokenId)>> {
    let mut out = Vec::new();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let lineno = i + 1;
        let shown = String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned();
        let bad = |why: &str| {
            vocab_err(format!(
                "tiktoken file, line {lineno}: {why} (expected \"<base64> <rank>\", got {shown:?})"
            ))
        };
        let mut fields = line
            .split(u8::is_ascii_whitespace)
            .filter(|f| !f.is_empty());
        let (Some(b64), Some(rank), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad("not two fields"));
        };
        let bytes = decode_base64(b64).ok_or_else(|| bad("invalid base64"))?;
        let rank = std::str::from_utf8(rank)
            .ok()
            .filter(|r| r.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|r| r.parse::<TokenId>().ok())
            .ok_or_else(|| bad("the rank is not a token id"))?;
        out.push((bytes, rank));
    }
    Ok(out)
}

/// See [`Vocabulary::from_tiktoken`] and the module docs.
pub(super) fn build(
    data: &[u8],
    special_tokens: &[(String, TokenId)],
    stop_ids: Vec<TokenId>,
    vocab_size: Option<usize>,
) -> Result<Vocabulary> {
    let ranks = parse_ranks(data)?;
    let too_big = |id: TokenId, what: &str| {
        vocab_err(format!(
            "{what} {id} is too large (ids must be below {MAX_TOKENS})"
        ))
    };
    let mut size = 0usize;
    for &(_, r) in &ranks {
        if r as usize >= MAX_TOKENS {
            return Err(too_big(r, "tiktoken rank"));
        }
        size = size.max(r as usize + 1);
    }
    for (text, id) in special_tokens {
        if *id as usize >= MAX_TOKENS {
            return Err(too_big(*id, &format!("special token {text:?} id")));
        }
        size = size.max(*id as usize + 1);
    }
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; size];
    let mut line_of: FxHashMap<TokenId, usize> = FxHashMap::default();
    for (k, (bytes, r)) in ranks.into_iter().enumerate() {
        let slot = &mut tokens[r as usize];
        if slot.is_some() {
            return Err(vocab_err(format!(
                "tiktoken file: rank {r} appears twice (entries {} and {})",
                line_of.get(&r).map_or(0, |l| l + 1),
                k + 1
            )));
        }
        *slot = Some(bytes);
        line_of.insert(r, k);
    }
    let mut special_ids = Vec::with_capacity(special_tokens.len());
    for (text, id) in special_tokens {
        let slot = &mut tokens[*id as usize];
        if slot.is_some() {
            return Err(vocab_err(format!(
                "special token {text:?} has id {id}, which another token already has"
            )));
        }
        *slot = Some(text.as_bytes().to_vec());
        special_ids.push(*id);
    }
    let tokens = tokens.into_iter().map(Option::unwrap_or_default).collect();
    Ok(Vocabulary::new(tokens, vocab_size, stop_ids, special_ids)?.with_vocab_type(VocabType::Raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_and_rejects() {
        assert_eq!(decode_base64(b"IQ==").unwrap(), b"!");
        assert_eq!(decode_base64(b"IQ").unwrap(), b"!");
        assert_eq!(decode_base64(b"aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64(b"8J+YgA==").unwrap(), "😀".as_bytes());
        assert_eq!(decode_base64(b"/w==").unwrap(), vec![0xFF]);
        assert_eq!(decode_base64(b"").unwrap(), b"");
        for bad in [
            &b"I"[..],
            b"IQ=",
            b"IQ===",
            b"I=Q=",
            b"IR==",
            b"a-b_",
            b"====",
            b"\xff\xfe",
        ] {
            assert_eq!(decode_base64(bad), None, "{bad:?}");
        }
    }
}
