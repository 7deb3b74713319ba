//! The compact binary form of a [`Vocabulary`] (used for pickling).
//!
//! Little-endian: the magic `CORRALV1`, the vocabulary type (u8), the model
//! vocabulary size (u64), the token count `n` (u32), `n` token lengths (u32),
//! the token bytes, then the stop ids and the special ids, each a u32 count
//! followed by u32 ids. The trie is rebuilt on load.

use super::{TokenId, VocabType, Vocabulary};
use crate::error::{Error, ErrorKind, Result};

const MAGIC: &[u8; 8] = b"CORRALV1";

pub(super) fn to_bytes(v: &Vocabulary) -> Vec<u8> {
    let n = v.tokenizer_size();
    let mut out = Vec::with_capacity(32 + n * 4 + v.bytes.len());
    out.extend_from_slice(MAGIC);
    out.push(v.vocab_type.to_u8());
    out.extend_from_slice(&(v.vocab_size as u64).to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    for w in v.offsets.windows(2) {
        out.extend_from_slice(&(w[1] - w[0]).to_le_bytes());
    }
    out.extend_from_slice(&v.bytes);
    for ids in [&v.stop_ids, &v.special_ids] {
        out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
        for id in ids.iter() {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    out
}

struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.data.len() {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let lo = u64::from(self.u32()?);
        let hi = u64::from(self.u32()?);
        Ok(lo | (hi << 32))
    }

    fn ids(&mut self) -> Result<Vec<TokenId>> {
        let count = self.u32()? as usize;
        if count > self.data.len() / 4 {
            return Err(bad("truncated"));
        }
        (0..count).map(|_| self.u32()).collect()
    }
}

fn bad(what: &str) -> Error {
    Error::new(
        ErrorKind::Vocab,
        format!("invalid serialized vocabulary: {what}"),
    )
}

pub(super) fn from_bytes(data: &[u8]) -> Result<Vocabulary> {
    let mut c = Cursor { data };
    if c.take(MAGIC.len()).ok() != Some(MAGIC.as_slice()) {
        return Err(bad("bad magic"));
    }
    let vocab_type = VocabType::from_u8(c.take(1)?[0]).ok_or_else(|| bad("unknown type"))?;
    let vocab_size = usize::try_from(c.u64()?).map_err(|_| bad("vocab_size too large"))?;
    let n = c.u32()? as usize;
    if n > c.data.len() / 4 {
        return Err(bad("truncated"));
    }
    let lens: Vec<usize> = (0..n)
        .map(|_| c.u32().map(|l| l as usize))
        .collect::<Result<_>>()?;
    let mut tokens = Vec::with_capacity(n);
    for len in lens {
        tokens.push(c.take(len)?.to_vec());
    }
    let stop_ids = c.ids()?;
    let special_ids = c.ids()?;
    if !c.data.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(
        Vocabulary::new(tokens, Some(vocab_size), stop_ids, special_ids)?
            .with_vocab_type(vocab_type),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_everything() {
        let toks = vec![
            b"a".to_vec(),
            vec![0xF0, 0x9F],
            Vec::new(),
            b"<eos>".to_vec(),
            b"<x>".to_vec(),
        ];
        let v = Vocabulary::new(toks, Some(40), vec![3], vec![4])
            .unwrap()
            .with_vocab_type(VocabType::SentencePiece);
        let blob = v.to_bytes();
        let w = Vocabulary::from_bytes(&blob).unwrap();
        assert_eq!(w.vocab_type(), VocabType::SentencePiece);
        assert_eq!((w.vocab_size(), w.tokenizer_size()), (40, 5));
        assert_eq!(w.stop_ids(), v.stop_ids());
        assert_eq!(w.special_ids(), v.special_ids());
        for i in 0..5 {
            assert_eq!(w.token_bytes(i), v.token_bytes(i));
        }
        assert_eq!(w.trie().num_nodes(), v.trie().num_nodes());
        assert_eq!(w.to_bytes(), blob);
        // Every truncation and a trailing byte are errors, never panics.
        for cut in 0..blob.len() {
            assert_eq!(
                Vocabulary::from_bytes(&blob[..cut]).unwrap_err().kind(),
                ErrorKind::Vocab
            );
        }
        let mut long = blob.clone();
        long.push(0);
        assert!(Vocabulary::from_bytes(&long).is_err());
        let mut bad_type = blob;
        bad_type[8] = 7;
        assert!(Vocabulary::from_bytes(&bad_type).is_err());
    }
}
