//! The token trie: every text token's bytes in one prefix tree, stored as a
//! flat array of nodes in depth-first pre-order. Each node records where its
//! subtree ends, so a walk that finds a dead prefix jumps over the whole
//! subtree, and a full walk is a linear scan of the array.

use crate::mask::TokenSet;
use crate::vocab::TokenId;

/// One trie node: the byte on the edge into it, its depth (1 for the
/// children of the root) and the index one past its subtree.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    /// Index one past the last node of this node's subtree.
    pub subtree_end: u32,
    /// Depth of the node = length of the prefix it stands for.
    pub depth: u32,
    /// The byte on the edge into this node.
    pub byte: u8,
}

/// The token trie (see the module docs).
#[derive(Debug, Default)]
pub struct TokenTrie {
    nodes: Vec<Node>,
    /// Tokens ending at node `i` are `token_ids[token_start[i]..token_start[i + 1]]`.
    token_start: Vec<u32>,
    token_ids: Vec<TokenId>,
    /// Rank of each token in pre-order (`u32::MAX` for tokens not in the trie).
    rank: Vec<u32>,
    max_depth: usize,
    /// Ranks ordered by token length, longest first.
    by_length: Vec<u32>,
    /// `longer[n]`: how many tokens are longer than `n` bytes.
    longer: Vec<u32>,
    /// Per node, the [`byte_group`]s of the bytes below it (its subtree's
    /// edges, not its own byte), plus [`UTF8_WHOLE`].
    below: Vec<Groups>,
    /// Bitset over token ids (mask layout) of the tokens in the trie.
    in_trie: Vec<u32>,
    /// Per byte value, how many tokens hold it.
    with_byte: Vec<u32>,
    /// The children of the root (entry 0) and of node `i` (entry `i + 1`):
    /// `child_nodes[child_start[k]..child_start[k + 1]]`, in byte order,
    /// with their bytes alongside, so a walk finds the child of a byte
    /// without scanning its siblings.
    child_start: Vec<u32>,
    child_nodes: Vec<u32>,
    child_bytes: Vec<u8>,
    /// Per rank: the groups of the token's bytes, with [`INVALID_UTF8`]
    /// unless it is valid UTF-8 (its last character may be cut short).
    rank_groups: Vec<Groups>,
    /// Per rank: the token's characters (a cut last one counts), up to 255.
    rank_chars: Vec<u8>,
    /// [`Self::within`]'s sets by groups, one per count of characters up
    /// to [`SHORT_CHARS`].
    within: std::sync::Mutex<rustc_hash::FxHashMap<Groups, std::sync::Arc<[RankBits]>>>,
    /// [`Self::ranks_with_bytes`]'s sets.
    with_bytes: std::sync::Mutex<rustc_hash::FxHashMap<[u64; 4], std::sync::Arc<RankBits>>>,
}

/// Most group sets [`TokenTrie::within`] keeps lists for (each a list per
/// count: 17 bit sets over the tokens, 0.3 MB with Qwen2.5).
pub const WITHIN_GROUP_SETS: usize = 16;

/// Most byte sets [`TokenTrie::ranks_with_bytes`] keeps (19 KB each with
/// Qwen2.5).
pub const WITH_BYTES_SETS: usize = 64;

/// One of [`TokenTrie::within`]'s sets (shared, kept by the trie).
#[derive(Clone, Debug)]
pub struct WithinSet(std::sync::Arc<[RankBits]>, usize);

impl std::ops::Deref for WithinSet {
    type Target = RankBits;
    fn deref(&self) -> &RankBits {
        &self.0[self.1]
    }
}

/// In [`TokenTrie`]'s per-rank groups: the token is not valid UTF-8.
const INVALID_UTF8: Groups = 1 << 27;

/// The byte groups a JSON string spells only escaped: `"` and `\`,
/// controls, newline (see [`TokenTrie::within`]).
pub const QUOTED: Groups = 16 | 32 | 1 << 8;

/// The most characters [`TokenTrie::within`] is asked for by walks.
pub const SHORT_CHARS: u32 = 16;

/// A set of byte groups (see [`byte_group`]), one bit each, plus
/// [`UTF8_WHOLE`] in a node's summary.
pub type Groups = u32;

/// A byte's group, for [`TokenTrie`]'s per-node summaries (one bit each).
/// A state that takes every byte of a group back to itself absorbs subtrees
/// made of that group, so the groups follow the lines grammars draw: lower
/// and upper case letters (identifiers of `[a-z]` alone are common), digits,
/// space, newline, other controls, `"` and `\` (string ends and escapes), the
/// usual separators `,` `.` `-` `_` `:` `/`, brackets and `'` apart from the
/// rest of printable ASCII, UTF-8 continuation bytes, other high bytes.
#[inline]
pub fn byte_group(b: u8) -> Groups {
    GROUP_OF[b as usize]
}

const GROUP_OF: [Groups; 256] = {
    let mut t = [0; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = group_of(b as u8);
        b += 1;
    }
    t
};

const fn group_of(b: u8) -> Groups {
    match b {
        b'a'..=b'z' => 1,
        b'A'..=b'Z' => 1 << 15,
        b'0'..=b'9' => 2,
        b' ' => 4,
        b'"' | b'\\' => 16,
        b',' => 1 << 9,
        b'.' => 1 << 10,
        b'-' => 1 << 11,
        b'_' => 1 << 16,
        b'\'' => 1 << 17,
        b':' => 1 << 12,
        b'/' => 1 << 13,
        b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>' => 1 << 14,
        0x21..=0x7e => 8,
        b'\n' => 1 << 8,
        0x00..=0x1f | 0x7f => 32,
        0x80..=0xbf => 64,
        _ => 128,
    }
}

/// Number of byte groups (see [`byte_group`]).
pub const NUM_GROUPS: u32 = 18;

/// Every group bit of a node's summary.
pub const ALL_GROUPS: Groups = (1 << NUM_GROUPS) - 1;

/// In a node's summary: the node ends a whole UTF-8 character and every
/// token of its subtree is valid UTF-8 (its last character may be cut short).
pub const UTF8_WHOLE: Groups = 1 << 31;

/// In a node's summary: every non-ASCII character below is one `\w`
/// accepts (`grammar::regex::word_chars`), and so is every character a token
/// that ends inside one could become. A state that takes each of those back
/// to itself absorbs such subtrees: the words of every script inside a
/// `[\w.-]+` pattern, which no state loops over all characters for.
pub const WORDS: Groups = 1 << 28;

/// In a node's summary: no non-ASCII character below is a decimal digit
/// (`grammar::regex::digit_chars`, the wide table), nor could any character
/// a token that ends inside one become one. A context that takes every other
/// non-ASCII character back to itself absorbs such subtrees: the text of
/// every script behind `.*` before a Unicode `\d{5}`, where each digit
/// starts a count of its own.
pub const NO_DIGITS: Groups = 1 << 29;

/// In a node's summary, from this bit up ([`chars_below`]): the most
/// characters any token of the subtree has past the node (one cut short
/// counts), up to [`CHARS_CAP`]. A state that
/// keeps every string of that many characters alive (the first letters of
/// a `maxLength: 3` string, of a `hostname` label) absorbs the subtree.
const CHARS_SHIFT: u32 = 18;

/// See [`CHARS_SHIFT`]: the count saturates here (this many or more).
pub const CHARS_CAP: u32 = 31;

/// The character count of a node's summary (see [`CHARS_SHIFT`]).
#[inline]
pub fn chars_below(below: Groups) -> u32 {
    below >> CHARS_SHIFT & CHARS_CAP
}

/// In a node's summary: its subtree has at least [`BIG_SUBTREE`] nodes, so
/// an absorption test that costs more than a few nodes' walk may pay.
pub const BIG: Groups = 1 << 30;

/// See [`BIG`].
pub const BIG_SUBTREE: usize = 64;

/// The groups of UTF-8 continuation and lead bytes.
pub const GROUPS_HIGH: Groups = 64 | 128;

/// UTF-8 decoding states ([`utf8_step`]): a character boundary (this),
/// 1 to 3 continuation bytes due (with the second byte's narrower ranges
/// after E0, ED, F0, F4), invalid ([`U_INVALID`]).
pub const U_START: u8 = 0;
/// See [`U_START`].
pub const U_INVALID: u8 = 8;

/// One byte of UTF-8 validation (surrogates and overlong forms are invalid).
pub fn utf8_step(state: u8, b: u8) -> u8 {
    let cont = (0x80..=0xbf).contains(&b);
    match state {
        U_START => match b {
            0x00..=0x7f => U_START,
            0xc2..=0xdf => 1,
            0xe0 => 4,
            0xed => 5,
            0xe1..=0xef => 2,
            0xf0 => 6,
            0xf1..=0xf3 => 3,
            0xf4 => 7,
            _ => U_INVALID,
        },
        1 if cont => U_START,
        2 if cont => 1,
        3 if cont => 2,
        4 if (0xa0..=0xbf).contains(&b) => 1,
        5 if (0x80..=0x9f).contains(&b) => 1,
        6 if (0x90..=0xbf).contains(&b) => 2,
        7 if (0x80..=0x8f).contains(&b) => 2,
        _ => U_INVALID,
    }
}

/// Does a recogniser take every valid UTF-8 character of two to four bytes
/// from `state` back to `state`, staying alive inside it? `next(q, path, b)`
/// is the state after byte `b` from `q`, where `path` (the character's bytes
/// so far) led from `state` to `q`; None if `b` is refused. The characters
/// of `except` need not: neither they nor prefixes that only they complete
/// are tried (for a subtree that holds none of them, see [`NO_DIGITS`]).
pub fn loops_over_non_ascii(
    state: u32,
    except: Option<&regex_syntax::hir::ClassUnicode>,
    mut next: impl FnMut(u32, &[u8], u8) -> Option<u32>,
) -> bool {
    // (state, decoder state, the character's bytes so far and their count,
    // whether those bytes may still become a character of `except`: then
    // the entry is not merged with another of the same states, whose
    // completions it would skip)
    let mut seen: Vec<(u32, u8, [u8; 3], usize, bool)> = vec![(state, U_START, [0; 3], 0, false)];
    let mut k = 0;
    while let Some(&(q, u, path, len, _)) = seen.get(k) {
        k += 1;
        for b in if u == U_START {
            0x80..=0xff
        } else {
            0x80..=0xbf
        } {
            let u2 = utf8_step(u, b);
            if u2 == U_INVALID {
                continue;
            }
            let mut bytes = [0; 4];
            bytes[..len].copy_from_slice(&path[..len]);
            bytes[len] = b;
            let (lo, hi) = completions(&bytes[..=len]);
            let excepted = except.is_some_and(|e| all_in(e, lo, hi));
            if excepted {
                continue;
            }
            let Some(q2) = next(q, &path[..len], b) else {
                return false;
            };
            if u2 == U_START {
                if q2 != state {
                    return false;
                }
                continue;
            }
            let open = except.is_some_and(|e| any_in(e, lo, hi));
            if open || !seen.iter().any(|s| s.0 == q2 && s.1 == u2 && !s.4) {
                if seen.len() > 256 || len >= 3 {
                    return false;
                }
                let mut p = path;
                p[len] = b;
                seen.push((q2, u2, p, len + 1, open));
            }
        }
    }
    true
}

/// The code points a valid UTF-8 prefix (a lead byte and continuation
/// bytes) may become: a superset where the lead byte narrows the second.
fn completions(prefix: &[u8]) -> (u32, u32) {
    let lead = prefix[0];
    let (width, mut code) = match lead {
        0xc0..=0xdf => (2, u32::from(lead & 0x1f)),
        0xe0..=0xef => (3, u32::from(lead & 0x0f)),
        _ => (4, u32::from(lead & 0x07)),
    };
    for &b in &prefix[1..] {
        code = code << 6 | u32::from(b & 0x3f);
    }
    code_range(code, (width - prefix.len()) as u32)
}

/// The code points whose leading bits are `code`, with `due` continuation
/// bytes still to come.
fn code_range(code: u32, due: u32) -> (u32, u32) {
    let lo = code << (6 * due);
    (lo, lo + (1 << (6 * due)) - 1)
}

/// Does byte `b` start a character (or stand alone): anything but a
/// continuation byte?
fn starts_char(b: u8) -> bool {
    !(0x80..=0xbf).contains(&b)
}

/// Does `class` hold every character from `lo` to `hi`?
fn all_in(class: &regex_syntax::hir::ClassUnicode, lo: u32, hi: u32) -> bool {
    let r = class.ranges();
    let k = r.partition_point(|x| (x.end() as u32) < lo);
    r.get(k)
        .is_some_and(|x| x.start() as u32 <= lo && hi <= x.end() as u32)
}

/// Does `class` hold any character from `lo` to `hi`?
fn any_in(class: &regex_syntax::hir::ClassUnicode, lo: u32, hi: u32) -> bool {
    let r = class.ranges();
    let k = r.partition_point(|x| (x.end() as u32) < lo);
    r.get(k).is_some_and(|x| x.start() as u32 <= hi)
}

/// The bytes of the groups in `groups` (see [`byte_group`]).
pub fn group_bytes(groups: Groups) -> impl Iterator<Item = u8> {
    (0..=255u8).filter(move |&b| byte_group(b) & groups != 0)
}

/// Callbacks for [`TokenTrie::walk`]: a byte-level recogniser that can push a
/// byte (returning false, without changing state, if the byte is rejected)
/// and pop the last pushed byte.
pub trait ByteStepper {
    /// Try to consume `byte`; on `false` the state must be unchanged.
    fn push(&mut self, byte: u8) -> bool;
    /// Undo the last successful `push`.
    fn pop(&mut self);
    /// After a successful `push`: is every string of bytes from the groups
    /// in `below` (see [`byte_group`]; with [`UTF8_WHOLE`], the subtree is
    /// valid UTF-8 from a character boundary) taken from here, so that every
    /// token of the node's subtree is accepted without walking it?
    fn absorbs(&mut self, _below: Groups) -> bool {
        false
    }
}

/// A set of trie ranks (pre-order positions): what a walk collects before
/// [`TokenTrie::ids_of_ranks`] turns it into a bitset over ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankBits(Vec<u64>);

impl RankBits {
    /// The empty set for `trie`.
    pub fn new(trie: &TokenTrie) -> Self {
        RankBits(vec![0; trie.token_ids.len().div_ceil(64)])
    }

    /// The words of ranks `lo..hi` (clipped to the set), each with the mask
    /// of the range's bits in it.
    fn range_words(&self, lo: u32, hi: u32) -> impl Iterator<Item = (usize, u64)> {
        let (lo, hi) = (lo as usize, (hi as usize).min(self.0.len() * 64));
        let words = if lo < hi {
            lo / 64..(hi - 1) / 64 + 1
        } else {
            0..0
        };
        words.map(move |w| {
            let mut m = u64::MAX;
            if w == lo / 64 {
                m &= u64::MAX << (lo % 64);
            }
            if w == (hi - 1) / 64 {
                m &= u64::MAX >> (63 - (hi - 1) % 64);
            }
            (w, m)
        })
    }

    /// Add ranks `lo..hi`.
    #[inline]
    pub fn set_range(&mut self, lo: u32, hi: u32) {
        for (w, m) in self.range_words(lo, hi) {
            self.0[w] |= m;
        }
    }

    /// Add every rank of `other` (a set of the same trie).
    pub fn union_with(&mut self, other: &RankBits) {
        for (w, &o) in self.0.iter_mut().zip(&other.0) {
            *w |= o;
        }
    }

    /// Add the ranks of `from` in `lo..hi`.
    pub fn copy_range(&mut self, from: &RankBits, lo: u32, hi: u32) {
        for (w, m) in self.range_words(lo, hi) {
            self.0[w] |= from.0.get(w).copied().unwrap_or(0) & m;
        }
    }

    /// Heap bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * 8
    }

    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// Is rank `r` in the set?
    #[inline]
    pub fn contains(&self, r: u32) -> bool {
        self.0
            .get(r as usize / 64)
            .is_some_and(|w| w & (1 << (r % 64)) != 0)
    }

    /// The ranks in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut x = word;
            std::iter::from_fn(move || {
                (x != 0).then(|| {
                    let r = w as u32 * 64 + x.trailing_zeros();
                    x &= x - 1;
                    r
                })
            })
        })
    }

    /// Add rank `r`.
    #[inline]
    pub fn set(&mut self, r: u32) {
        if let Some(w) = self.0.get_mut(r as usize / 64) {
            *w |= 1 << (r % 64);
        }
    }
}

/// The ranks a walk accepts, met in ascending order: ranges while they are
/// few (a small walk's result costs its own size), a [`RankBits`] past
/// [`RankSet::MAX_RANGES`] (a dense walk's list would grow to megabytes,
/// and fresh pages cost more than the walk).
#[derive(Debug)]
pub enum RankSet {
    /// `(first, len)` ranges, ascending, adjacent ones merged.
    Ranges(Vec<(u32, u32)>),
    /// Every rank, one bit each.
    Bits(RankBits),
}

impl RankSet {
    /// Ranges kept before switching to bits (as many bytes as the bits of
    /// a 150k-token trie).
    pub const MAX_RANGES: usize = 2048;

    /// Add ranks `first..first + len` (above every rank added so far).
    #[inline]
    pub fn push(&mut self, trie: &TokenTrie, first: u32, len: u32) {
        match self {
            RankSet::Ranges(v) => {
                let n = v.len();
                match v.last_mut() {
                    Some(last) if last.0 + last.1 == first => last.1 += len,
                    _ if n < Self::MAX_RANGES => v.push((first, len)),
                    _ => {
                        let mut bits = RankBits::new(trie);
                        for &(lo, n) in v.iter().chain([&(first, len)]) {
                            bits.set_range(lo, lo + n);
                        }
                        *self = RankSet::Bits(bits);
                    }
                }
            }
            RankSet::Bits(b) => b.set_range(first, first + len),
        }
    }

    /// The tokens of the set as a set over ids of `words` words.
    pub fn into_token_set(self, trie: &TokenTrie, words: usize) -> TokenSet {
        match self {
            RankSet::Ranges(v) => trie.token_set_of_ranges(&v, words),
            RankSet::Bits(b) => trie.token_set_of_bits(&b, words),
        }
    }
}

/// What [`TokenTrie::walk_states`] does at a node.
#[derive(Clone, Copy, Debug)]
pub enum Step<T> {
    /// The byte is taken; go on below with this state.
    Live(T),
    /// The byte is taken, and so is every token below: accept the subtree.
    Accept,
    /// The byte is refused: skip the subtree.
    Dead,
    /// The subtree's outcome is known elsewhere: hand it over whole and skip it.
    Copy,
}

impl TokenTrie {
    /// Build the trie over `ids`, whose bytes `bytes_of` returns (all non-empty).
    pub fn build<'a>(ids: &[TokenId], bytes_of: impl Fn(TokenId) -> &'a [u8]) -> TokenTrie {
        let mut sorted: Vec<TokenId> = ids.to_vec();
        sorted.sort_by(|&a, &b| bytes_of(a).cmp(bytes_of(b)).then(a.cmp(&b)));
        let max_id = ids.iter().copied().max().map_or(0, |m| m as usize + 1);
        let mut trie = TokenTrie {
            rank: vec![u32::MAX; max_id],
            ..TokenTrie::default()
        };
        // `open[d]` = index of the node at depth d+1 on the current path.
        let mut open: Vec<usize> = Vec::new();
        let mut prev: &[u8] = &[];
        for (rank, &id) in sorted.iter().enumerate() {
            let cur = bytes_of(id);
            let lcp = prev.iter().zip(cur).take_while(|(a, b)| a == b).count();
            while open.len() > lcp {
                if let Some(n) = open.pop() {
                    trie.nodes[n].subtree_end = trie.nodes.len() as u32;
                }
            }
            for (d, &b) in cur.iter().enumerate().skip(lcp) {
                open.push(trie.nodes.len());
                trie.nodes.push(Node {
                    subtree_end: 0,
                    depth: d as u32 + 1,
                    byte: b,
                });
                trie.token_start.push(trie.token_ids.len() as u32);
            }
            // Tokens are attached in rank order, so `token_ids` is the pre-order.
            trie.token_ids.push(id);
            trie.rank[id as usize] = rank as u32;
            trie.max_depth = trie.max_depth.max(cur.len());
            prev = cur;
        }
        while let Some(n) = open.pop() {
            trie.nodes[n].subtree_end = trie.nodes.len() as u32;
        }
        trie.token_start.push(trie.token_ids.len() as u32);
        // UTF-8 state after each node's prefix (forward: parents come first).
        let mut utf8 = vec![U_START; trie.nodes.len()];
        let mut at_depth: Vec<u8> = vec![U_START; trie.max_depth + 1];
        for (i, n) in trie.nodes.iter().enumerate() {
            let d = n.depth as usize;
            utf8[i] = utf8_step(at_depth[d - 1], n.byte);
            at_depth[d] = utf8[i];
        }
        // `valid[i]`: every token in node i's subtree is a valid UTF-8 prefix.
        let mut valid = vec![false; trie.nodes.len()];
        for i in (0..trie.nodes.len()).rev() {
            let end = trie.nodes[i].subtree_end as usize;
            let mut ok = utf8[i] != U_INVALID;
            let mut c = i + 1;
            while ok && c < end {
                ok = valid[c];
                c = trie.nodes[c].subtree_end as usize;
            }
            valid[i] = ok;
        }
        // `other[i]`: node i completes a non-ASCII character `\w` refuses,
        // or ends a token inside one that may become such a character;
        // `digit[i]`: the same for the digits.
        let words = crate::grammar::regex::word_chars();
        let digits = crate::grammar::regex::digit_chars();
        let mut other = vec![false; trie.nodes.len()];
        let mut digit = vec![false; trie.nodes.len()];
        let mut code: Vec<u32> = vec![0; trie.max_depth + 1];
        for (i, n) in trie.nodes.iter().enumerate() {
            let d = n.depth as usize;
            let b = u32::from(n.byte);
            code[d] = match b {
                0xc0..=0xdf => b & 0x1f,
                0xe0..=0xef => b & 0x0f,
                0xf0..=0xff => b & 0x07,
                0x80..=0xbf => code[d - 1] << 6 | (b & 0x3f),
                _ => b,
            };
            let (u, ends) = (utf8[i], trie.token_start[i] < trie.token_start[i + 1]);
            // The characters the node's could be: the one it completes, or
            // those the token's last one could become when it ends inside
            // it (a superset: the lead byte's narrower second-byte ranges
            // are not applied).
            let chars = match u {
                U_INVALID => None,
                U_START if b >= 0x80 => Some((code[d], code[d])),
                U_START => Some((1, 0)),
                _ if ends => {
                    let due = match u {
                        1 => 1,
                        2 | 4 | 5 => 2,
                        _ => 3,
                    };
                    Some(code_range(code[d], due))
                }
                _ => Some((1, 0)),
            };
            (other[i], digit[i]) = match chars {
                None => (true, true),
                Some((lo, hi)) if lo > hi => (false, false),
                Some((lo, hi)) => (!all_in(words, lo, hi), any_in(digits, lo, hi)),
            };
        }
        // Children come after their parent, so a reverse pass sees them first.
        trie.below = vec![0; trie.nodes.len()];
        // `words_ok[i]`: no node below i is `other`; `digits_ok[i]`: none
        // is `digit`.
        let mut words_ok = vec![true; trie.nodes.len()];
        let mut digits_ok = vec![true; trie.nodes.len()];
        for i in (0..trie.nodes.len()).rev() {
            let (end, mut groups) = (trie.nodes[i].subtree_end as usize, 0 as Groups);
            let mut whole = utf8[i] == U_START;
            let (mut only_words, mut no_digits) = (true, true);
            let mut chars = 0;
            let mut c = i + 1;
            while c < end {
                let cb = trie.below[c];
                let starts = starts_char(trie.nodes[c].byte);
                chars = chars.max(chars_below(cb) + u32::from(starts));
                groups |= byte_group(trie.nodes[c].byte) | cb & ALL_GROUPS;
                // A child is fine if its subtree is valid from its own state.
                whole &= valid[c];
                only_words &= !other[c] && words_ok[c];
                no_digits &= !digit[c] && digits_ok[c];
                c = trie.nodes[c].subtree_end as usize;
            }
            (words_ok[i], digits_ok[i]) = (only_words, no_digits);
            let big = end - i >= BIG_SUBTREE;
            trie.below[i] = groups
                | if whole { UTF8_WHOLE } else { 0 }
                | if whole && only_words { WORDS } else { 0 }
                | if whole && no_digits { NO_DIGITS } else { 0 }
                | chars.min(CHARS_CAP) << CHARS_SHIFT
                | if big { BIG } else { 0 };
        }
        trie.index_children();
        trie.with_byte = vec![0; 256];
        for &id in &trie.token_ids {
            let mut seen = [false; 256];
            for &b in bytes_of(id) {
                if !std::mem::replace(&mut seen[b as usize], true) {
                    trie.with_byte[b as usize] += 1;
                }
            }
        }
        trie.rank_groups = Vec::with_capacity(sorted.len());
        trie.rank_chars = Vec::with_capacity(sorted.len());
        for &id in &sorted {
            let (mut u, mut chars, mut groups) = (U_START, 0u32, 0);
            for &b in bytes_of(id) {
                u = utf8_step(u, b);
                chars += u32::from(starts_char(b));
                groups |= byte_group(b);
                if u == U_INVALID {
                    groups |= INVALID_UTF8;
                }
            }
            trie.rank_groups.push(groups);
            trie.rank_chars.push(chars.min(255) as u8);
        }
        // Every string state's, and the counts of `[0-9A-Za-z]` (ids and
        // keys of patterns), at build: a pass over the tokens each.
        let _ = trie.within(ALL_GROUPS & !QUOTED, 0);
        let _ = trie.within(byte_group(b'a') | byte_group(b'A') | byte_group(b'0'), 0);
        trie.in_trie = vec![0; crate::mask::words_for(trie.rank.len())];
        for &id in &trie.token_ids {
            crate::mask::set_bit(&mut trie.in_trie, id);
        }
        // Counting sort of ranks by length, longest first.
        let lens: Vec<usize> = sorted.iter().map(|&id| bytes_of(id).len()).collect();
        let mut count = vec![0u32; trie.max_depth + 2];
        for &l in &lens {
            count[l] += 1;
        }
        trie.longer = vec![0; trie.max_depth + 1];
        for n in (0..trie.max_depth).rev() {
            trie.longer[n] = trie.longer[n + 1] + count[n + 1];
        }
        let mut next: Vec<u32> = (0..=trie.max_depth)
            .map(|l| trie.longer.get(l).copied().unwrap_or(0))
            .collect();
        trie.by_length = vec![0; lens.len()];
        for (r, &l) in lens.iter().enumerate() {
            trie.by_length[next[l] as usize] = r as u32;
            next[l] += 1;
        }
        trie
    }

    /// Fill the child index (`child_start`, `child_nodes`, `child_bytes`).
    fn index_children(&mut self) {
        let n = self.nodes.len();
        self.child_start = Vec::with_capacity(n + 2);
        self.child_nodes = Vec::with_capacity(n);
        // Parent k's children: from its first child (the next node) along
        // the subtree ends, up to the end of its own subtree.
        for k in 0..=n {
            self.child_start.push(self.child_nodes.len() as u32);
            let (mut c, end) = match k {
                0 => (0, n),
                _ => (k, self.nodes[k - 1].subtree_end as usize),
            };
            while c < end {
                self.child_nodes.push(c as u32);
                c = self.nodes[c].subtree_end as usize;
            }
        }
        self.child_start.push(self.child_nodes.len() as u32);
        self.child_bytes = self
            .child_nodes
            .iter()
            .map(|&c| self.nodes[c as usize].byte)
            .collect();
    }

    /// The children of the root (`parent` 0) or of node `parent - 1` whose
    /// bytes are in `bytes`, in byte order, appended to `out`.
    fn children_in(&self, parent: usize, bytes: &[u64; 4], out: &mut Vec<u32>) {
        let (lo, hi) = (
            self.child_start[parent] as usize,
            self.child_start[parent + 1] as usize,
        );
        let kids = &self.child_bytes[lo..hi];
        // A scan of the children's bytes, or a search per byte of a few.
        let few = bytes.iter().map(|w| w.count_ones() as usize).sum::<usize>() * 8;
        if kids.len() <= few.max(16) {
            for (k, &b) in kids.iter().enumerate() {
                if bytes[(b >> 6) as usize] >> (b & 63) & 1 != 0 {
                    out.push(self.child_nodes[lo + k]);
                }
            }
            return;
        }
        for (w, &word) in bytes.iter().enumerate() {
            let mut x = word;
            while x != 0 {
                let b = (w * 64) as u8 + x.trailing_zeros() as u8;
                x &= x - 1;
                if let Ok(k) = kids.binary_search(&b) {
                    out.push(self.child_nodes[lo + k]);
                }
            }
        }
    }

    /// The ranks of the tokens of at most `chars` characters (a cut last
    /// one counts) whose bytes are all in `groups`, valid UTF-8: what a
    /// state that reads every such string of up to `chars` characters and
    /// none longer accepts of them (inside a `maxLength: 3` string: the
    /// tokens without quotes or escapes; a `[0-9A-Za-z]{8}` count: the
    /// words), without a walk. Built on first use by a pass over the
    /// tokens, then kept.
    ///
    /// `chars` is at most [`SHORT_CHARS`]; the sets of every count for
    /// `groups` are built together, by one pass.
    ///
    /// None once [`WITHIN_GROUP_SETS`] other group sets are kept (the
    /// caller walks instead): a server compiling patterns for weeks must
    /// not grow without bound.
    pub fn within(&self, groups: Groups, chars: u32) -> Option<WithinSet> {
        let mut memo = self.within.lock().unwrap_or_else(|p| p.into_inner());
        if memo.len() >= WITHIN_GROUP_SETS && !memo.contains_key(&groups) {
            return None;
        }
        let sets = memo.entry(groups).or_insert_with(|| {
            // Each token in the set of its own count, then each set
            // joined with the one below.
            let mut sets = vec![RankBits::new(self); SHORT_CHARS as usize + 1];
            for (r, (&g, &c)) in self.rank_groups.iter().zip(&self.rank_chars).enumerate() {
                if g & !groups == 0 && u32::from(c) <= SHORT_CHARS {
                    sets[c as usize].set(r as u32);
                }
            }
            for c in 1..sets.len() {
                let (below, above) = sets.split_at_mut(c);
                above[0].union_with(&below[c - 1]);
            }
            sets.into()
        });
        debug_assert!(chars <= SHORT_CHARS, "within {chars} characters");
        Some(WithinSet(sets.clone(), chars.min(SHORT_CHARS) as usize))
    }

    /// Ranks of the tokens longer than `n` bytes (in no particular order).
    pub fn ranks_longer_than(&self, n: usize) -> &[u32] {
        let k = self.longer.get(n).copied().unwrap_or(0);
        &self.by_length[..k as usize]
    }

    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Length of the longest token.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Tokens in pre-order (sorted by bytes).
    pub fn tokens_in_order(&self) -> &[TokenId] {
        &self.token_ids
    }

    /// Pre-order rank of token `id`, if it is in the trie.
    pub fn rank(&self, id: TokenId) -> Option<u32> {
        self.rank
            .get(id as usize)
            .copied()
            .filter(|&r| r != u32::MAX)
    }

    /// The tokens whose ranks are set in `ranks` (see [`RankBits`]), as a
    /// bitset over ids of `words` words. Ranks are sorted by bytes, so a walk
    /// sets whole subtrees as ranges there cheaply; the scatter to ids then
    /// touches only the smaller side: the set ranks, or the clear ones
    /// taken out of every trie token.
    pub fn ids_of_ranks(&self, ranks: &RankBits, words: usize) -> Vec<u32> {
        self.scatter_ranks(ranks, words).0
    }

    /// [`Self::ids_of_ranks`], and a lower bound on the ids set: the full
    /// words' bits when the clear side was scattered, else 0.
    fn scatter_ranks(&self, ranks: &RankBits, words: usize) -> (Vec<u32>, usize) {
        // Which side is smaller, judged by whole words (a walk sets ranges,
        // so most words are full or empty; an exact count would cost a
        // software popcount of every word): the choice only sets the cost.
        let (full, empty) = ranks.0.iter().fold((0usize, 0usize), |(f, e), &w| {
            (f + usize::from(w == u64::MAX), e + usize::from(w == 0))
        });
        let dense = full > empty;
        let mut bits = if dense {
            let mut b = self.in_trie.clone();
            b.resize(words, 0);
            b
        } else {
            vec![0u32; words]
        };
        for (w, &word) in ranks.0.iter().enumerate() {
            let mut x = if dense { !word } else { word };
            while x != 0 {
                let r = w * 64 + x.trailing_zeros() as usize;
                x &= x - 1;
                let Some(&id) = self.token_ids.get(r) else {
                    break;
                };
                if let Some(m) = bits.get_mut((id / 32) as usize) {
                    if dense {
                        *m &= !(1 << (id % 32));
                    } else {
                        *m |= 1 << (id % 32);
                    }
                }
            }
        }
        // (The last word may run past the trie's tokens.)
        (
            bits,
            if dense {
                (full * 64).saturating_sub(63)
            } else {
                0
            },
        )
    }

    /// The tokens whose ranks are set in `ranks`, as a set over ids of
    /// `words` words.
    pub fn token_set_of_bits(&self, ranks: &RankBits, words: usize) -> TokenSet {
        let (bits, at_least) = self.scatter_ranks(ranks, words);
        // As many ids as words: bits, the choice `from_bits` makes after
        // listing ids until it knows (thousands of them in a string state).
        if at_least >= bits.len() {
            TokenSet::Bits(bits)
        } else {
            TokenSet::from_bits(bits)
        }
    }

    /// The tokens of rank ranges `(first, len)` (ascending, disjoint: a
    /// walk's accepted nodes and subtrees in order) as a set over ids of
    /// `words` words: a sorted list while it has fewer ids than `words`
    /// (the choice [`TokenSet::from_bits`] makes), else bits scattered from
    /// the smaller side. A small walk's result then costs its own size, not
    /// scans of vocabulary-sized sets.
    pub fn token_set_of_ranges(&self, ranges: &[(u32, u32)], words: usize) -> TokenSet {
        debug_assert!(ranges.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
        let count: usize = ranges.iter().map(|r| r.1 as usize).sum();
        let ids = |lo: u32, len: u32| &self.token_ids[lo as usize..(lo + len) as usize];
        if count < words {
            let mut list: Vec<u32> = ranges
                .iter()
                .flat_map(|&(lo, len)| ids(lo, len))
                .copied()
                .collect();
            list.sort_unstable();
            return TokenSet::List(list);
        }
        let bits = if count * 2 > self.token_ids.len() {
            // Most tokens: all of the trie's, less the gaps between ranges.
            let mut bits = self.in_trie.clone();
            bits.resize(words, 0);
            let mut clear = |lo: u32, hi: u32| {
                for &id in &self.token_ids[lo as usize..hi as usize] {
                    bits[(id / 32) as usize] &= !(1 << (id % 32));
                }
            };
            let mut next = 0u32;
            for &(lo, len) in ranges {
                clear(next, lo);
                next = lo + len;
            }
            clear(next, self.token_ids.len() as u32);
            bits
        } else {
            let mut bits = vec![0u32; words];
            for &(lo, len) in ranges {
                for &id in ids(lo, len) {
                    bits[(id / 32) as usize] |= 1 << (id % 32);
                }
            }
            bits
        };
        TokenSet::Bits(bits)
    }

    /// How many tokens hold a byte that `wanted` picks, at most (a token
    /// with two such bytes counts twice).
    pub fn count_with_byte_bound(&self, wanted: impl Fn(u8) -> bool) -> usize {
        (0..=255u8)
            .filter(|&b| wanted(b))
            .map(|b| self.with_byte.get(b as usize).copied().unwrap_or(0) as usize)
            .sum()
    }

    /// The ranks of the tokens with a byte of `bytes` (a 256-bit set),
    /// found by a walk that skips the subtrees whose byte groups hold none,
    /// then kept: grammars ask for few sets (a string's closing quote, for
    /// the counters under `minLength`), and the walk visits much of the
    /// trie (25 µs with Qwen2.5 for `"`).
    /// Past [`WITH_BYTES_SETS`] kept sets, a new one is found and not kept.
    pub fn ranks_with_bytes(&self, bytes: [u64; 4]) -> std::sync::Arc<RankBits> {
        let find = || {
            let wanted = |b: u8| bytes[(b >> 6) as usize] >> (b & 63) & 1 == 1;
            let groups = (0..=255u8)
                .filter(|&b| wanted(b))
                .fold(0, |g, b| g | byte_group(b));
            let mut ranks = RankBits::new(self);
            let mut i = 0usize;
            while let Some(node) = self.nodes.get(i) {
                let end = node.subtree_end as usize;
                if wanted(node.byte) {
                    ranks.set_range(self.token_start[i], self.token_start[end]);
                    i = end;
                } else if self.below[i] & groups == 0 {
                    i = end;
                } else {
                    i += 1;
                }
            }
            std::sync::Arc::new(ranks)
        };
        let mut memo = self.with_bytes.lock().unwrap_or_else(|p| p.into_inner());
        if memo.len() >= WITH_BYTES_SETS && !memo.contains_key(&bytes) {
            return find();
        }
        memo.entry(bytes).or_insert_with(find).clone()
    }

    /// Approximate heap bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<Node>()
            + (self.token_start.len()
                + self.token_ids.len()
                + self.rank.len()
                + self.by_length.len()
                + self.longer.len())
                * 4
            + self.below.len() * std::mem::size_of::<Groups>()
            + self.in_trie.len() * 4
            + self.with_byte.len() * 4
            + (self.child_start.len() + self.child_nodes.len()) * 4
            + self.child_bytes.len()
            + self.rank_groups.len() * std::mem::size_of::<Groups>()
            + self.rank_chars.len()
            + self.within.lock().map_or(0, |m| {
                m.values()
                    .flat_map(|sets| sets.iter())
                    .map(|s| s.heap_bytes() + 24)
                    .sum()
            })
            + self
                .with_bytes
                .lock()
                .map_or(0, |m| m.values().map(|s| s.heap_bytes() + 64).sum())
    }

    /// Walk the whole trie with a recogniser whose state after a byte is a
    /// function of the state before it (a DFA plus whatever the caller tracks
    /// per prefix), so there is nothing to undo: states live in a stack
    /// indexed by depth. `step(parent, byte, depth, groups_below)` decides
    /// each node: go on with a state (`on_node(tokens_ending_here, first_rank)`
    /// is called), accept the whole subtree (`on_node(tokens_in_subtree, first_rank)`),
    /// skip a dead subtree (`on_dead(parent, byte, depth, tokens_in_subtree,
    /// first_rank)`), or take the whole subtree as it is
    /// (`on_copy(parent, tokens_in_subtree, first_rank)`, with the state of
    /// the copied subtree's parent; the caller knows the outcome from
    /// elsewhere). `sparse(state, depth)`, asked at the root
    /// and at every live node, may name the only bytes whose children need
    /// `step`: every other child is taken as a copy without a visit (runs
    /// of them as one call), where a scan would visit them all. The tight
    /// loop behind the cold masks of lexical states (inside strings most of
    /// the vocabulary is live).
    pub fn walk_states<T: Copy>(
        &self,
        root: T,
        mut step: impl FnMut(&T, u8, usize, Groups) -> Step<T>,
        mut sparse: impl FnMut(&T, usize) -> Option<[u64; 4]>,
        mut on_node: impl FnMut(&[TokenId], u32),
        mut on_dead: impl FnMut(&T, u8, usize, &[TokenId], u32),
        mut on_copy: impl FnMut(&T, &[TokenId], u32),
    ) {
        /// The picked children of a sparse node still to walk.
        struct Jump {
            /// Where the child being walked ends (the next gap starts).
            resume: usize,
            /// `picked[start..until]`: its picked children;
            /// `picked[next..until]`: those after the one being walked.
            start: usize,
            next: usize,
            until: usize,
            /// Where the sparse node's subtree ends.
            end: usize,
            /// The sparse node's depth (its state is `stack[depth]`).
            depth: usize,
        }
        let mut stack: Vec<T> = vec![root; self.max_depth + 1];
        let mut picked: Vec<u32> = Vec::new();
        let mut jumps: Vec<Jump> = Vec::new();
        // Copy the subtrees of nodes `from..to` (children of a node in
        // state `parent`, or nothing).
        let mut copy = |parent: &T, from: usize, to: usize| {
            let (a, b) = (
                self.token_start[from] as usize,
                self.token_start[to] as usize,
            );
            if a < b {
                on_copy(parent, &self.token_ids[a..b], a as u32);
            }
        };
        // Where the walk goes after entering parent `k` (0 the root, else
        // node k - 1) whose children are nodes `first..end`: its first
        // child, or a picked child (the gap before it copied), or past it.
        let mut enter = |k: usize,
                         first: usize,
                         end: usize,
                         state: &T,
                         depth: usize,
                         picked: &mut Vec<u32>,
                         jumps: &mut Vec<Jump>,
                         copy: &mut dyn FnMut(&T, usize, usize)| {
            let Some(bytes) = sparse(state, depth) else {
                return first;
            };
            let start = picked.len();
            self.children_in(k, &bytes, picked);
            match picked.get(start) {
                None => {
                    copy(state, first, end);
                    end
                }
                Some(&c) => {
                    let c = c as usize;
                    copy(state, first, c);
                    jumps.push(Jump {
                        resume: self.nodes[c].subtree_end as usize,
                        start,
                        next: start + 1,
                        until: picked.len(),
                        end,
                        depth,
                    });
                    c
                }
            }
        };
        let n = self.nodes.len();
        let mut i = enter(0, 0, n, &root, 0, &mut picked, &mut jumps, &mut copy);
        loop {
            // A picked child's subtree is done: the gap, then the next one.
            while let Some(j) = jumps.last_mut() {
                if i != j.resume {
                    break;
                }
                if j.next < j.until {
                    let c = picked[j.next] as usize;
                    j.next += 1;
                    copy(&stack[j.depth], j.resume, c);
                    j.resume = self.nodes[c].subtree_end as usize;
                    i = c;
                    break;
                }
                copy(&stack[j.depth], j.resume, j.end);
                i = j.end;
                let start = j.start;
                jumps.pop();
                picked.truncate(start);
            }
            let Some(node) = self.nodes.get(i) else {
                break;
            };
            let d = node.depth as usize;
            let parent = stack[d - 1];
            let end = node.subtree_end as usize;
            match step(&parent, node.byte, d, self.below[i]) {
                Step::Live(t) => {
                    stack[d] = t;
                    let (a, b) = (
                        self.token_start[i] as usize,
                        self.token_start[i + 1] as usize,
                    );
                    on_node(&self.token_ids[a..b], a as u32);
                    i = enter(i + 1, i + 1, end, &t, d, &mut picked, &mut jumps, &mut copy);
                }
                Step::Accept => {
                    let (a, b) = (self.token_start[i] as usize, self.token_start[end] as usize);
                    on_node(&self.token_ids[a..b], a as u32);
                    i = end;
                }
                Step::Dead => {
                    let (a, b) = (self.token_start[i] as usize, self.token_start[end] as usize);
                    on_dead(&parent, node.byte, d, &self.token_ids[a..b], a as u32);
                    i = end;
                }
                Step::Copy => {
                    copy(&parent, i, end);
                    i = end;
                }
            }
        }
    }

    /// Walk the whole trie with `stepper`. For every node whose byte is
    /// accepted, `on_node(stepper, depth, tokens_ending_here)` is called (with
    /// the whole subtree's tokens when the stepper absorbs it); for
    /// a rejected node, `on_dead(stepper, depth, tokens_in_subtree)` is called
    /// and the subtree is skipped.
    pub fn walk<S: ByteStepper>(
        &self,
        stepper: &mut S,
        on_node: impl FnMut(&mut S, usize, &[TokenId], u32),
        on_dead: impl FnMut(&mut S, usize, &[TokenId], u32),
    ) {
        self.walk_pruned(stepper, |_, _| true, on_node, on_dead);
    }

    /// [`Self::walk`] over the subtrees that hold a rank of `within`
    /// (sorted): the others are skipped without a call.
    pub fn walk_within<S: ByteStepper>(
        &self,
        stepper: &mut S,
        within: &[u32],
        on_node: impl FnMut(&mut S, usize, &[TokenId], u32),
    ) {
        debug_assert!(within.windows(2).all(|w| w[0] < w[1]));
        // Subtrees come in rank order, so the first rank not below a
        // subtree's start only moves forward.
        let mut k = 0usize;
        self.walk_pruned(
            stepper,
            |lo, hi| {
                while within.get(k).is_some_and(|&r| r < lo) {
                    k += 1;
                }
                within.get(k).is_some_and(|&r| r < hi)
            },
            on_node,
            |_, _, _, _| {},
        );
    }

    /// The walk, entering only subtrees whose rank range `lo..hi` `keep` picks.
    #[inline]
    fn walk_pruned<S: ByteStepper>(
        &self,
        stepper: &mut S,
        mut keep: impl FnMut(u32, u32) -> bool,
        mut on_node: impl FnMut(&mut S, usize, &[TokenId], u32),
        mut on_dead: impl FnMut(&mut S, usize, &[TokenId], u32),
    ) {
        let mut depth = 0usize;
        let mut i = 0usize;
        while let Some(node) = self.nodes.get(i) {
            let d = node.depth as usize;
            while depth >= d {
                stepper.pop();
                depth -= 1;
            }
            let end = node.subtree_end as usize;
            if !keep(self.token_start[i], self.token_start[end]) {
                i = end;
                continue;
            }
            if stepper.push(node.byte) {
                depth += 1;
                let below = self.below[i];
                if below != 0 && stepper.absorbs(below) {
                    let (a, b) = (self.token_start[i] as usize, self.token_start[end] as usize);
                    on_node(stepper, d, &self.token_ids[a..b], a as u32);
                    i = end;
                    continue;
                }
                let (a, b) = (
                    self.token_start[i] as usize,
                    self.token_start[i + 1] as usize,
                );
                on_node(stepper, d, &self.token_ids[a..b], a as u32);
                i += 1;
            } else {
                let (a, b) = (self.token_start[i] as usize, self.token_start[end] as usize);
                on_dead(stepper, d, &self.token_ids[a..b], a as u32);
                i = end;
            }
        }
        while depth > 0 {
            stepper.pop();
            depth -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Prefixes<'a> {
        allowed: &'a [&'a [u8]],
        path: Vec<u8>,
    }
    impl ByteStepper for Prefixes<'_> {
        fn push(&mut self, b: u8) -> bool {
            self.path.push(b);
            if self.allowed.iter().any(|a| a.starts_with(&self.path)) {
                true
            } else {
                self.path.pop();
                false
            }
        }
        fn pop(&mut self) {
            self.path.pop();
        }
    }

    #[test]
    fn walk_within_visits_the_subtrees_of_the_ranks_given() {
        let toks: Vec<&[u8]> = vec![b"a", b"ab", b"abc", b"b", b"ba", b"c", b"cab", b"ca"];
        let ids: Vec<u32> = (0..toks.len() as u32).collect();
        let trie = TokenTrie::build(&ids, |i| toks[i as usize]);
        let allowed: Vec<&[u8]> = vec![b"abx", b"ba", b"cab"];
        let all_ranks: Vec<u32> = (0..toks.len() as u32).collect();
        for pick in 0u32..1 << toks.len() {
            let within: Vec<u32> = all_ranks
                .iter()
                .copied()
                .filter(|r| pick >> r & 1 == 1)
                .collect();
            let mut s = Prefixes {
                allowed: &allowed,
                path: vec![],
            };
            let mut seen: Vec<u32> = vec![];
            trie.walk_within(&mut s, &within, |_, _, toks, first| {
                seen.extend(first..first + toks.len() as u32)
            });
            assert!(s.path.is_empty(), "the walk pops what it pushed");
            // Every live token the ranks name is visited, and only tokens
            // of subtrees that hold one of the ranks.
            let mut full: Vec<u32> = vec![];
            let mut s = Prefixes {
                allowed: &allowed,
                path: vec![],
            };
            trie.walk(
                &mut s,
                |_, _, toks, first| full.extend(first..first + toks.len() as u32),
                |_, _, _, _| {},
            );
            for r in &within {
                assert_eq!(
                    full.contains(r),
                    seen.contains(r),
                    "rank {r}, within {within:?}"
                );
            }
            assert!(seen.iter().all(|r| full.contains(r)));
        }
    }

    #[test]
    fn walk_visits_live_tokens_and_skips_dead_subtrees() {
        let toks: Vec<&[u8]> = vec![b"a", b"ab", b"abc", b"b", b"ba", b"c", b"ab"];
        let ids: Vec<u32> = (0..toks.len() as u32).collect();
        let trie = TokenTrie::build(&ids, |i| toks[i as usize]);
        assert_eq!(trie.max_depth(), 3);
        let allowed: Vec<&[u8]> = vec![b"abx", b"c"];
        let mut s = Prefixes {
            allowed: &allowed,
            path: vec![],
        };
        let mut live = vec![];
        let mut dead = vec![];
        trie.walk(
            &mut s,
            |_, _, t, _| live.extend_from_slice(t),
            |_, _, t, _| dead.extend_from_slice(t),
        );
        live.sort_unstable();
        dead.sort_unstable();
        assert_eq!(live, vec![0, 1, 5, 6]);
        // Groups below each node: "a" has "b" and "c" (letters) below it,
        // no character `\w` refuses, no digit beyond ASCII, and tokens of
        // at most two characters past it ("abc").
        let a =
            (0..trie.num_nodes()).find(|&i| trie.nodes[i].depth == 1 && trie.nodes[i].byte == b'a');
        assert_eq!(
            a.map(|i| trie.below[i]),
            Some(byte_group(b'b') | UTF8_WHOLE | WORDS | NO_DIGITS | 2 << CHARS_SHIFT)
        );
        assert_eq!(a.map(|i| chars_below(trie.below[i])), Some(2));
        assert_eq!(dead, vec![2, 3, 4]);
        assert!(s.path.is_empty());
    }

    /// Rank ranges across word boundaries, against a plain boolean model.
    #[test]
    fn rank_ranges_match_a_model() {
        let bytes: Vec<Vec<u8>> = (0..200u32)
            .map(|i| format!("t{i:03}").into_bytes())
            .collect();
        let ids: Vec<TokenId> = (0..200).collect();
        let trie = TokenTrie::build(&ids, |id| &bytes[id as usize]);
        let ranges = [
            (0, 1),
            (3, 64),
            (63, 65),
            (64, 128),
            (100, 199),
            (5, 5),
            (190, 200),
        ];
        let mut from = RankBits::new(&trie);
        let mut model_from = [false; 200];
        for r in (0..200).step_by(3) {
            from.set(r);
            model_from[r as usize] = true;
        }
        for &(lo, hi) in &ranges {
            let (mut a, mut b) = (RankBits::new(&trie), RankBits::new(&trie));
            let (mut ma, mut mb) = (vec![false; 200], vec![false; 200]);
            a.set_range(lo, hi);
            b.copy_range(&from, lo, hi);
            for r in lo..hi {
                ma[r as usize] = true;
                mb[r as usize] = model_from[r as usize];
            }
            for (set, model) in [(&a, &ma), (&b, &mb)] {
                let bits = trie.ids_of_ranks(set, crate::mask::words_for(200));
                for (r, &id) in trie.tokens_in_order().iter().enumerate() {
                    assert_eq!(
                        crate::mask::get_bit(&bits, id),
                        model[r],
                        "range {lo}..{hi}, rank {r}"
                    );
                }
            }
        }
    }

    /// `n` tokens `t00000`.. whose ids run in another order than their
    /// ranks (id `i` is token number `i * step % n`; `step` prime to `n`).
    fn numbered_trie(n: u32, step: u32) -> TokenTrie {
        let bytes: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("t{:05}", (i * step) % n).into_bytes())
            .collect();
        let ids: Vec<TokenId> = (0..n).collect();
        TokenTrie::build(&ids, |id| &bytes[id as usize])
    }

    /// Token sets of rank ranges: a sorted list below `words` ids, else
    /// bits from either side, against the ranks set one by one.
    #[test]
    fn token_sets_of_rank_ranges_match_a_model() {
        // Ids in another order than ranks, and an id not in the trie.
        let trie = numbered_trie(200, 37);
        let words = crate::mask::words_for(201);
        let mut r = 0x2545_f491_u64;
        let mut next = |n: u32| {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            u32::try_from(r % u64::from(n)).unwrap()
        };
        for round in 0..300 {
            // Ranges of up to 1, 40 or 200 ranks (list, sparse, dense sets).
            let span = [2, 40, 200][round % 3];
            let (mut ranges, mut at) = (Vec::new(), next(8));
            while at < 200 {
                let len = (1 + next(span)).min(200 - at);
                ranges.push((at, len));
                at += len + next(span.min(20));
            }
            let mut model = RankBits::new(&trie);
            ranges
                .iter()
                .for_each(|&(lo, len)| model.set_range(lo, lo + len));
            let bits = trie.ids_of_ranks(&model, words);
            let count: u32 = ranges.iter().map(|r| r.1).sum();
            match trie.token_set_of_ranges(&ranges, words) {
                TokenSet::List(list) => {
                    assert!((count as usize) < words, "{ranges:?}");
                    let expected: Vec<u32> = (0..201)
                        .filter(|&id| crate::mask::get_bit(&bits, id))
                        .collect();
                    assert_eq!(list, expected, "{ranges:?}");
                }
                TokenSet::Bits(b) => {
                    assert!(count as usize >= words, "{ranges:?}");
                    assert_eq!(b, bits, "{ranges:?}");
                }
            }
        }
    }

    /// A walk's rank set merges adjacent ranges and turns to bits past
    /// its range budget, with the same tokens either way.
    #[test]
    fn rank_sets_merge_ranges_then_switch_to_bits() {
        let trie = numbered_trie(5000, 7919);
        let words = crate::mask::words_for(5000);
        let mut merged = RankSet::Ranges(Vec::new());
        for r in 0..10 {
            merged.push(&trie, r, 1);
        }
        assert!(matches!(&merged, RankSet::Ranges(v) if v == &[(0, 10)]));
        // Every other rank: one range each, more than the budget holds.
        let mut set = RankSet::Ranges(Vec::new());
        let mut model = RankBits::new(&trie);
        for r in (0..5000).step_by(2) {
            set.push(&trie, r, 1);
            model.set(r);
            let ranges = r / 2 + 1;
            let bits = matches!(set, RankSet::Bits(_));
            assert_eq!(
                bits,
                ranges as usize > RankSet::MAX_RANGES,
                "{ranges} ranges"
            );
        }
        let expected = TokenSet::from_bits(trie.ids_of_ranks(&model, words));
        let (TokenSet::Bits(got), TokenSet::Bits(want)) =
            (set.into_token_set(&trie, words), expected)
        else {
            panic!("2,500 of 5,000 tokens are a bit set");
        };
        assert_eq!(got, want);
    }
    /// `WORDS` marks the nodes whose subtrees hold only `\w` characters
    /// beyond ASCII, counting what a token cut inside a character could
    /// become.
    #[test]
    fn word_subtrees_are_marked() {
        let tokens: Vec<&[u8]> = vec![
            "é".as_bytes(),
            "éa".as_bytes(),
            "é日本".as_bytes(),
            "w".as_bytes(),
            b"w\xe6\x97",
            "x".as_bytes(),
            "x×".as_bytes(),
            "y".as_bytes(),
            b"y\xc3",
            "z".as_bytes(),
            "z😀".as_bytes(),
        ];
        let ids: Vec<u32> = (0..tokens.len() as u32).collect();
        let trie = TokenTrie::build(&ids, |i| tokens[i as usize]);
        let node = |b: u8| {
            (0..trie.num_nodes())
                .find(|&i| trie.nodes[i].depth == 1 && trie.nodes[i].byte == b)
                .expect("node")
        };
        let words = |b: u8| trie.below[node(b)] & WORDS != 0;
        // "é"'s first byte cuts it: no whole character ends there.
        assert!(!words(0xc3));
        assert!(words(b'w'), "the completions of e6 97 are all ideographs");
        assert!(!words(b'x'), "× is no word character");
        assert!(!words(b'y'), "c3 may become ×");
        assert!(!words(b'z'), "😀 is no word character");
        let e = (0..trie.num_nodes())
            .find(|&i| trie.nodes[i].depth == 2 && trie.nodes[i].byte == 0xa9)
            .expect("é");
        assert!(trie.below[e] & WORDS != 0, "a, 日本 below é");
    }

    /// A node's summary counts the characters of its subtree's longest
    /// token past it: a character cut short counts, the rest of the node's
    /// own character does not, and the count saturates.
    #[test]
    fn characters_below_are_counted() {
        let long = format!("b{}", "x".repeat(40));
        let tokens: Vec<&[u8]> = vec![
            "a".as_bytes(),
            "abc".as_bytes(),
            "a日本".as_bytes(),
            b"a\xe6\x97",
            long.as_bytes(),
        ];
        let ids: Vec<u32> = (0..tokens.len() as u32).collect();
        let trie = TokenTrie::build(&ids, |i| tokens[i as usize]);
        // Each (depth, byte) below is one node.
        let at = |path: &[u8]| {
            let (d, b) = (path.len() as u32, path[path.len() - 1]);
            let i = (0..trie.num_nodes())
                .find(|&i| trie.nodes[i].depth == d && trie.nodes[i].byte == b)
                .expect("node");
            chars_below(trie.below[i])
        };
        assert_eq!(at(b"a"), 2, "bc, 日本");
        assert_eq!(at(b"a\xe6"), 1, "the rest of 日, then 本");
        assert_eq!(at(b"a\xe6\x97"), 1, "本");
        assert_eq!(at(b"b"), CHARS_CAP);
    }

    /// The lists by group set and the ranks by byte set are kept up to a
    /// number of sets; past it, `within` declines a new group set (the
    /// caller walks) and `ranks_with_bytes` answers without keeping.
    #[test]
    fn kept_sets_are_bounded() {
        let tokens: Vec<&[u8]> = vec![b"a", b"b,", b"c.", b"1-2", b"x_y"];
        let ids: Vec<u32> = (0..tokens.len() as u32).collect();
        let trie = TokenTrie::build(&ids, |i| tokens[i as usize]);
        let letters = byte_group(b'a');
        let kept = trie.within.lock().map(|m| m.len()).unwrap_or(0);
        let mut asked = 0;
        for extra in 0..NUM_GROUPS {
            if trie.within(letters | 1 << extra, 3).is_some() {
                asked += 1;
            }
        }
        assert_eq!(
            kept + asked,
            WITHIN_GROUP_SETS.min(kept + NUM_GROUPS as usize)
        );
        assert!(trie
            .within(letters, 3)
            .is_some_and(|s| s.contains(trie.rank[0])));
        for b in 0..=255u8 {
            let mut set = [0u64; 4];
            set[(b >> 6) as usize] |= 1 << (b & 63);
            let ranks = trie.ranks_with_bytes(set);
            for (id, t) in tokens.iter().enumerate() {
                assert_eq!(
                    ranks.contains(trie.rank[id]),
                    t.contains(&b),
                    "{b} in {t:?}"
                );
            }
        }
        assert_eq!(
            trie.with_bytes.lock().map(|m| m.len()).unwrap_or(0),
            WITH_BYTES_SETS
        );
    }

    /// `within(groups, c)` lists the tokens of at most `c` characters (a
    /// cut one counts) of those groups, valid UTF-8: here without quotes,
    /// backslashes or controls, and of letters alone.
    #[test]
    fn short_tokens_are_listed_by_characters() {
        let long = "x".repeat(SHORT_CHARS as usize + 1);
        let tokens: Vec<&[u8]> = vec![
            b"ab",
            "日本".as_bytes(),
            b"a\xc3",
            b"a\"",
            b"a\\",
            b"a\n",
            b"\xa9",
            b"a\xff",
            long.as_bytes(),
        ];
        let ids: Vec<u32> = (0..tokens.len() as u32).collect();
        let trie = TokenTrie::build(&ids, |i| tokens[i as usize]);
        let most = |groups: Groups, id: u32| {
            (0..=SHORT_CHARS).find(|&c| {
                trie.within(groups, c)
                    .expect("few group sets")
                    .contains(trie.rank[id as usize])
            })
        };
        let unquoted = ALL_GROUPS & !QUOTED;
        assert_eq!(most(unquoted, 0), Some(2));
        assert_eq!(most(unquoted, 1), Some(2));
        assert_eq!(most(unquoted, 2), Some(2), "a, then é cut short");
        for id in 3..tokens.len() as u32 {
            assert_eq!(most(unquoted, id), None, "{:?}", tokens[id as usize]);
        }
        let letters = byte_group(b'a') | byte_group(b'A');
        assert_eq!(most(letters, 0), Some(2));
        for id in 1..tokens.len() as u32 {
            assert_eq!(most(letters, id), None, "{:?}", tokens[id as usize]);
        }
    }

    /// `NO_DIGITS` marks the nodes whose subtrees hold no decimal digit
    /// beyond ASCII, counting what a token cut inside a character could
    /// become.
    #[test]
    fn digit_free_subtrees_are_marked() {
        let tokens: Vec<&[u8]> = vec![
            "aـ日".as_bytes(),
            "b٣".as_bytes(),
            b"c\xd9",
            b"d\xdb",
            "e1".as_bytes(),
            b"f\xc3",
        ];
        let ids: Vec<u32> = (0..tokens.len() as u32).collect();
        let trie = TokenTrie::build(&ids, |i| tokens[i as usize]);
        let free = |b: u8| {
            let i = (0..trie.num_nodes())
                .find(|&i| trie.nodes[i].depth == 1 && trie.nodes[i].byte == b)
                .expect("node");
            trie.below[i] & NO_DIGITS != 0
        };
        assert!(free(b'a'), "ـ shares its lead byte with the digits");
        assert!(!free(b'b'), "٣ is a digit");
        assert!(!free(b'c'), "d9 may become ٣");
        assert!(!free(b'd'), "db may become ۳");
        assert!(free(b'e'), "ASCII digits are the byte groups' business");
        assert!(free(b'f'), "c3 becomes no digit");
    }
}
