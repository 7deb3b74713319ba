//! The packed token bitmask: `u32` words, bit `i % 32` of word `i / 32` set
//! means token `i` is allowed (the layout xgrammar and llguidance use).

/// Number of `u32` words needed for `vocab_size` tokens.
pub fn words_for(vocab_size: usize) -> usize {
    vocab_size.div_ceil(32)
}

/// Set bit `id` in `mask`.
#[inline]
pub fn set_bit(mask: &mut [u32], id: u32) {
    if let Some(w) = mask.get_mut((id / 32) as usize) {
        *w |= 1 << (id % 32);
    }
}

/// Is bit `id` set in `mask`?
#[inline]
pub fn get_bit(mask: &[u32], id: u32) -> bool {
    mask.get((id / 32) as usize)
        .is_some_and(|w| w & (1 << (id % 32)) != 0)
}

/// OR `src` into `dst` word by word (written so the compiler vectorises it).
#[inline]
pub fn or_into(dst: &mut [u32], src: &[u32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d |= *s;
    }
}

/// OR sorted ids into `mask`, a word at a time: ids of one word are gathered
/// in a register and stored once (a mid-size list of ~1,000 ids was a
/// third of some warm fills as one read-modify-write per id).
fn or_sorted_ids(mask: &mut [u32], ids: &[u32]) {
    let Some(&first) = ids.first() else { return };
    let mut word = (first >> 5) as usize;
    let mut acc = 0u32;
    for &id in ids {
        let w = (id >> 5) as usize;
        if w != word {
            mask[word] |= acc;
            word = w;
            acc = 0;
        }
        acc |= 1 << (id & 31);
    }
    mask[word] |= acc;
}

/// A set of token ids, stored as a bitset or a sorted id list, whichever is smaller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSet {
    /// A dense bitset over the vocabulary (same layout as the output mask).
    Bits(Vec<u32>),
    /// Sorted token ids.
    List(Vec<u32>),
}

impl TokenSet {
    /// Build from sorted, deduplicated ids over a vocabulary of `vocab_size` tokens.
    pub fn from_sorted_ids(ids: Vec<u32>, vocab_size: usize) -> Self {
        let words = words_for(vocab_size);
        if ids.len() >= words {
            let mut bits = vec![0u32; words];
            for &id in &ids {
                set_bit(&mut bits, id);
            }
            TokenSet::Bits(bits)
        } else {
            TokenSet::List(ids)
        }
    }

    /// Build from a bitset over the vocabulary (kept as is when dense).
    pub fn from_bits(bits: Vec<u32>) -> Self {
        // Ids are collected until they number as many as the words (the
        // set is then kept as bits): no count first, since a portable build
        // has no popcount instruction and counting 4,700 words cost more
        // than a walk's result is worth.
        let mut ids = Vec::new();
        for (c, chunk) in bits.chunks(16).enumerate() {
            // Most words of a small set are empty: skip them 16 at a time.
            if chunk.iter().fold(0, |a, &w| a | w) == 0 {
                continue;
            }
            for (k, &word) in chunk.iter().enumerate() {
                let mut x = word;
                while x != 0 {
                    ids.push((c * 16 + k) as u32 * 32 + x.trailing_zeros());
                    x &= x - 1;
                }
            }
            if ids.len() >= bits.len() {
                return TokenSet::Bits(bits);
            }
        }
        TokenSet::List(ids)
    }

    /// OR this set into `mask`.
    pub fn or_into(&self, mask: &mut [u32]) {
        match self {
            TokenSet::Bits(bits) => or_into(mask, bits),
            TokenSet::List(ids) => or_sorted_ids(mask, ids),
        }
    }

    /// Write the set into `mask` (every word: bits outside the set cleared).
    pub fn copy_into(&self, mask: &mut [u32]) {
        match self {
            TokenSet::Bits(bits) => {
                let n = bits.len().min(mask.len());
                mask[..n].copy_from_slice(&bits[..n]);
                mask[n..].fill(0);
            }
            TokenSet::List(_) => {
                mask.fill(0);
                self.or_into(mask);
            }
        }
    }

    /// Is `id` in the set?
    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        match self {
            TokenSet::Bits(bits) => get_bit(bits, id),
            TokenSet::List(ids) => ids.binary_search(&id).is_ok(),
        }
    }

    /// Number of tokens in the set.
    pub fn len(&self) -> usize {
        match self {
            TokenSet::Bits(bits) => bits.iter().map(|w| w.count_ones() as usize).sum(),
            TokenSet::List(ids) => ids.len(),
        }
    }

    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes used.
    pub fn heap_bytes(&self) -> usize {
        match self {
            TokenSet::Bits(v) | TokenSet::List(v) => v.len() * 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_bitsets_write_the_same_masks() {
        let mut next = crate::xorshift(0x2545_F491_4F6C_DD1D);
        for vocab in [1usize, 31, 32, 33, 1000, 151_936] {
            let words = words_for(vocab);
            for density in [0u64, 1, 5, 50, 500] {
                let ids: Vec<u32> = (0..vocab as u32)
                    .filter(|_| next() % 1000 < density)
                    .collect();
                let mut want = vec![0u32; words];
                for &id in &ids {
                    set_bit(&mut want, id);
                }
                let list = TokenSet::List(ids.clone());
                let bits = TokenSet::Bits(want.clone());
                for set in [&list, &bits, &TokenSet::from_sorted_ids(ids.clone(), vocab)] {
                    let mut got = vec![u32::MAX; words];
                    set.copy_into(&mut got);
                    assert_eq!(got, want, "{vocab} {density}");
                    let base: Vec<u32> = (0..words).map(|_| next() as u32).collect();
                    let mut or = base.clone();
                    set.or_into(&mut or);
                    let expect: Vec<u32> = base.iter().zip(&want).map(|(a, b)| a | b).collect();
                    assert_eq!(or, expect, "{vocab} {density}");
                    assert_eq!(set.len(), ids.len());
                }
            }
        }
    }
}
