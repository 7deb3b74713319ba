//! From grammar IR to the byte-level recogniser.
//!
//! Each rule body becomes a Thompson NFA over an alphabet of byte ranges,
//! rule references and token elements, then a DFA by subset construction.
//! All rules' DFA states share one global numbering, so a parser item is just
//! `(state, origin)`. After construction the automaton is trimmed: edges on
//! rules that can never complete, and edges into states from which the rule
//! can never finish, are removed. That makes every live parser state
//! completable, which is what lets a mask be exact: a token is allowed iff
//! the parser survives its bytes.
//!
//! The Earley parser that runs these DFAs is in [`earley`].

pub mod earley;

use crate::error::{Error, ErrorKind, Result};
use crate::grammar::{Expr, Grammar, RuleId, TokenRef};
use crate::limits::Limits;
use crate::vocab::{TokenId, Vocabulary};
use regex_syntax::utf8::Utf8Sequences;
use rustc_hash::FxHashMap;
use std::rc::Rc;

/// "No transition".
pub const DEAD: u32 = u32::MAX;

/// A token element after resolution against the vocabulary.
#[derive(Clone, Debug)]
pub struct TokenElem {
    /// True for `!<...>`: any non-stop token not listed.
    pub negated: bool,
    /// Sorted, deduplicated ids named by the element.
    pub ids: Vec<TokenId>,
}

impl TokenElem {
    /// Does this element match token `id`?
    pub fn matches(&self, id: TokenId, vocab: &Vocabulary) -> bool {
        let listed = self.ids.binary_search(&id).is_ok();
        if self.negated {
            !listed && (id as usize) < vocab.tokenizer_size() && !vocab.is_stop(id)
        } else {
            listed
        }
    }

    /// OR the ids this element matches into `mask`.
    pub fn or_into(&self, mask: &mut [u32], vocab: &Vocabulary) {
        if self.negated {
            // Only ever set bits: other elements and cache entries share `mask`.
            let n = vocab.tokenizer_size();
            let mut excluded: Vec<u32> = self.ids.iter().chain(vocab.stop_ids()).copied().collect();
            excluded.sort_unstable();
            let mut next = excluded.iter().peekable();
            for (wi, w) in mask.iter_mut().enumerate() {
                let lo = wi * 32;
                if lo >= n {
                    break;
                }
                let mut ours = if n - lo >= 32 {
                    u32::MAX
                } else {
                    (1u32 << (n - lo)) - 1
                };
                while let Some(&&id) = next.peek() {
                    if id as usize >= lo + 32 {
                        break;
                    }
                    ours &= !(1 << (id % 32));
                    next.next();
                }
                *w |= ours;
            }
        } else {
            for &id in &self.ids {
                crate::mask::set_bit(mask, id);
            }
        }
    }
}

/// How a rule's items use their `aux` register (see [`earley::Item::aux`]).
///
/// Counted repetition and any-order member lists are not regular at a
/// reasonable size (`x{0,65535}` would be 65,536 DFA states; `n` members in
/// any order is a union of `n!` sequences), so such rules get a tiny fixed DFA
/// and keep their progress in the item: a count, or a bitset of the members
/// seen. Every other rule is `Plain` and its items carry `aux == 0`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// An ordinary rule.
    Plain,
    /// `item{min,max}`: one state looping on `item`; `aux` counts the
    /// completed iterations. `item` never matches the empty string here (an
    /// empty iteration is not counted, so `min` is 0 when `item` is nullable).
    Counter {
        /// The repeated rule.
        item: RuleId,
        /// Fewest iterations.
        min: u32,
        /// Most iterations (`u32::MAX`: unbounded).
        max: u32,
    },
    /// Members in any order, each at most once, separated by `sep`; `aux`
    /// has bit `i` set once member `i` was matched.
    Permutation {
        /// Member rules; the position is the bit.
        members: Vec<RuleId>,
        /// The separator rule.
        sep: RuleId,
        /// Bits of the members that must appear.
        required: u32,
        /// Fewest members.
        min: u32,
        /// Most members.
        max: u32,
    },
}

/// Byte transitions, a row of targets by byte class per state. Up to
/// [`DENSE_ROWS_MAX_BYTES`] the table is dense (one load per lookup: a
/// classification walk steps a DFA state at every node of the trie, ~400,000
/// times, so an extra dependent load costs up to a millisecond per walk).
/// Above that, each row is stored only from its first to its last class with
/// a live target (its band): most states of big schema grammars take one
/// class (the next letter of a key) or none (they only reference rules), so
/// a 22,770-state Kubernetes grammar's 8.3 MB dense table takes 1.4 MB.
#[derive(Clone, Debug, Default)]
pub struct ByteRows {
    /// The dense table (`state * num_classes + class`), or empty when banded.
    dense: Vec<u32>,
    bands: Vec<Band>,
    cells: Vec<u32>,
    num_classes: usize,
}

/// Dense byte tables up to this size; bands above (see [`ByteRows`]).
pub const DENSE_ROWS_MAX_BYTES: usize = 2 << 20;

#[derive(Clone, Copy, Debug, Default)]
struct Band {
    off: u32,
    lo: u16,
    len: u16,
}

impl ByteRows {
    /// From a dense table, `num_classes` targets per state (kept as it is
    /// when small enough).
    pub fn from_dense(dense: Vec<u32>, num_classes: usize) -> ByteRows {
        if std::mem::size_of_val(dense.as_slice()) <= DENSE_ROWS_MAX_BYTES {
            return ByteRows {
                dense,
                num_classes,
                ..ByteRows::default()
            };
        }
        Self::banded(&dense, num_classes)
    }

    fn banded(dense: &[u32], num_classes: usize) -> ByteRows {
        let mut rows = ByteRows {
            bands: Vec::with_capacity(dense.len() / num_classes.max(1)),
            num_classes,
            ..ByteRows::default()
        };
        for row in dense.chunks(num_classes.max(1)) {
            rows.push_row(row);
        }
        rows.cells.shrink_to_fit();
        rows
    }

    fn push_row(&mut self, row: &[u32]) {
        let lo = row.iter().position(|&t| t != DEAD).unwrap_or(0);
        let hi = row.iter().rposition(|&t| t != DEAD).map_or(lo, |h| h + 1);
        self.bands.push(Band {
            off: self.cells.len() as u32,
            lo: lo as u16,
            len: (hi - lo) as u16,
        });
        self.cells.extend_from_slice(&row[lo..hi]);
    }

    /// Target of `state` on byte class `class`.
    #[inline]
    pub fn get(&self, state: u32, class: usize) -> u32 {
        if !self.dense.is_empty() {
            return self.dense[state as usize * self.num_classes + class];
        }
        let b = self.bands[state as usize];
        let d = class.wrapping_sub(b.lo as usize);
        if d < b.len as usize {
            self.cells[b.off as usize + d]
        } else {
            DEAD
        }
    }

    /// The row of `state`.
    #[inline]
    pub fn row(&self, state: u32) -> Row<'_> {
        if !self.dense.is_empty() {
            let nc = self.num_classes;
            return Row {
                lo: 0,
                cells: &self.dense[state as usize * nc..][..nc],
                width: nc,
            };
        }
        let b = self.bands[state as usize];
        Row {
            lo: b.lo as usize,
            cells: &self.cells[b.off as usize..][..b.len as usize],
            width: self.num_classes,
        }
    }

    /// Every target replaced by `f(target)` (DEAD cells are not passed).
    pub fn retarget(&mut self, f: impl Fn(u32) -> u32) {
        let n = if self.dense.is_empty() {
            self.bands.len()
        } else {
            self.dense.len() / self.num_classes.max(1)
        };
        let mut dense = vec![DEAD; n * self.num_classes];
        for (s, row) in dense.chunks_mut(self.num_classes.max(1)).enumerate() {
            for (c, t) in self.row(s as u32).iter().enumerate() {
                if t != DEAD {
                    row[c] = f(t);
                }
            }
        }
        *self = ByteRows::from_dense(dense, self.num_classes);
    }

    /// Heap bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        (self.dense.capacity() + self.cells.capacity()) * std::mem::size_of::<u32>()
            + self.bands.capacity() * std::mem::size_of::<Band>()
    }
}

/// One state's row of [`ByteRows`].
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    lo: usize,
    cells: &'a [u32],
    width: usize,
}

impl<'a> Row<'a> {
    /// Target on byte class `class`.
    #[inline]
    pub fn get(&self, class: usize) -> u32 {
        let d = class.wrapping_sub(self.lo);
        if d < self.cells.len() {
            self.cells[d]
        } else {
            DEAD
        }
    }

    /// Targets of every class in order, [`DEAD`] included.
    pub fn iter(self) -> impl Iterator<Item = u32> + 'a {
        (0..self.width).map(move |c| self.get(c))
    }

    /// The classes outside which the row is all [`DEAD`].
    #[inline]
    pub fn span(&self) -> std::ops::Range<usize> {
        self.lo..self.lo + self.cells.len()
    }

    /// The whole row as a slice, when stored whole (a dense table's rows):
    /// hot loops over two rows compare slices without a bounds check per class.
    #[inline]
    pub fn as_slice(&self) -> Option<&'a [u32]> {
        (self.lo == 0 && self.cells.len() == self.width).then_some(self.cells)
    }

    /// Does some class lead somewhere?
    pub fn is_live(&self) -> bool {
        self.cells.iter().any(|&t| t != DEAD)
    }
}

/// The compiled recogniser tables for a whole grammar.
#[derive(Debug)]
pub struct Automaton {
    /// Byte -> equivalence class.
    pub class_of: [u8; 256],
    /// Number of byte classes.
    pub num_classes: usize,
    /// Byte transitions by state and class: target state or [`DEAD`].
    pub byte_next: ByteRows,
    /// Rule-reference transitions of state `s`: `rule_trans[rule_trans_start[s]..rule_trans_start[s+1]]`.
    pub rule_trans: Vec<(RuleId, u32)>,
    /// Offsets into `rule_trans`.
    pub rule_trans_start: Vec<u32>,
    /// Token-element transitions `(element index, target)`, indexed like `rule_trans`.
    pub token_trans: Vec<(u32, u32)>,
    /// Offsets into `token_trans`.
    pub token_trans_start: Vec<u32>,
    /// Is the state accepting (its rule may end here)?
    pub accepting: Vec<bool>,
    /// Does the state have any byte transition?
    pub has_bytes: Vec<bool>,
    /// The rule each state belongs to.
    pub state_rule: Vec<RuleId>,
    /// Start state of each rule.
    pub rule_start: Vec<u32>,
    /// Can the rule derive the empty string?
    pub nullable: Vec<bool>,
    /// Bytes that can come right after each rule in some context (static
    /// FOLLOW sets, a 256-bit set per rule); prunes uncertain tokens.
    pub follow: Vec<ByteSet>,
    /// How each rule uses the item `aux` register.
    pub rule_kind: Vec<RuleKind>,
    /// `aux_state[s]`: the state's rule is not [`RuleKind::Plain`].
    pub aux_state: Vec<bool>,
    /// Resolved token elements.
    pub token_elems: Vec<TokenElem>,
    /// Rule names, for diagnostics.
    pub rule_names: Vec<String>,
    /// The start rule.
    pub root: RuleId,
    /// Per rule, its *relaxed twin*: a plain rule, never referenced, with
    /// every counter the rule refers to written as an unbounded repetition
    /// of the counter's item (for a counter, its item repeated), where the
    /// result reaches no rule, token element or register. Its states are
    /// lexical, so a walk with counter bounds ignored can be answered from
    /// the shared lexical entries of the twin's states (see
    /// `CompiledGrammar::relaxed_entry`): a string under `maxLength: 255`
    /// is then an unbounded JSON string.
    pub relaxed: Vec<Option<RuleId>>,
}

impl Automaton {
    /// Number of DFA states over all rules.
    pub fn num_states(&self) -> usize {
        self.accepting.len()
    }

    /// Byte transition of `state` on `byte`.
    #[inline]
    pub fn next_byte(&self, state: u32, byte: u8) -> u32 {
        self.byte_next
            .get(state, self.class_of[byte as usize] as usize)
    }

    /// The DFA states of rule `rule` (each rule's are contiguous; byte
    /// transitions stay among them).
    pub fn rule_states(&self, rule: usize) -> std::ops::Range<u32> {
        let end = self.rule_start.get(rule + 1).copied();
        self.rule_start[rule]..end.unwrap_or(self.num_states() as u32)
    }

    /// Rule-reference transitions of `state`.
    #[inline]
    pub fn rule_edges(&self, state: u32) -> &[(RuleId, u32)] {
        let s = state as usize;
        &self.rule_trans[self.rule_trans_start[s] as usize..self.rule_trans_start[s + 1] as usize]
    }

    /// Token-element transitions of `state`.
    #[inline]
    pub fn token_edges(&self, state: u32) -> &[(u32, u32)] {
        let s = state as usize;
        &self.token_trans
            [self.token_trans_start[s] as usize..self.token_trans_start[s + 1] as usize]
    }

    /// Target of `state` on rule `rule`, if any.
    #[inline]
    pub fn next_rule(&self, state: u32, rule: RuleId) -> Option<u32> {
        self.rule_edges(state)
            .iter()
            .find(|e| e.0 == rule)
            .map(|e| e.1)
    }

    /// Can an item at `state` with register `aux` end its rule here?
    #[inline]
    pub fn accepts(&self, state: u32, aux: u32) -> bool {
        self.accepts_with(state, aux, true)
    }

    /// [`Automaton::accepts`]; with `keep_min == false` a counter's minimum
    /// is ignored.
    #[inline]
    pub fn accepts_with(&self, state: u32, aux: u32, keep_min: bool) -> bool {
        self.accepting[state as usize]
            && (!self.aux_state[state as usize]
                || match &self.rule_kind[self.state_rule[state as usize] as usize] {
                    RuleKind::Plain => true,
                    RuleKind::Counter { min, .. } => aux >= *min || !keep_min,
                    RuleKind::Permutation { required, min, .. } => {
                        aux & required == *required && aux.count_ones() >= *min
                    }
                })
    }

    /// The register after an item at `state` (register `aux`) moves over a
    /// completed instance of `child`, or `None` if its rule forbids that
    /// (too many iterations, a member seen twice). Also decides whether the
    /// item may predict `child` at all.
    #[inline]
    pub fn advance_aux(&self, state: u32, child: RuleId, aux: u32) -> Option<u32> {
        self.advance_aux_with(state, child, aux, true)
    }

    /// [`Automaton::advance_aux`]; with `bounded == false` a counter's
    /// maximum is ignored.
    #[inline]
    pub fn advance_aux_with(
        &self,
        state: u32,
        child: RuleId,
        aux: u32,
        bounded: bool,
    ) -> Option<u32> {
        if !self.aux_state[state as usize] {
            return Some(aux);
        }
        match &self.rule_kind[self.state_rule[state as usize] as usize] {
            RuleKind::Plain => Some(aux),
            RuleKind::Counter { item, max, .. } => {
                if child != *item {
                    Some(aux)
                } else if aux < *max || !bounded {
                    Some(aux.saturating_add(1))
                } else {
                    None
                }
            }
            RuleKind::Permutation {
                members, max, sep, ..
            } => {
                match members.iter().position(|&m| m == child) {
                    // A separator only where another member may follow (else a dead end).
                    None if child == *sep => {
                        let cap = (*max).min(members.len() as u32);
                        (aux.count_ones() < cap).then_some(aux)
                    }
                    None => Some(aux),
                    Some(i) => {
                        let bit = 1u32 << i;
                        (aux & bit == 0 && aux.count_ones() < *max).then_some(aux | bit)
                    }
                }
            }
        }
    }

    /// Does a counter item at `state` with count `have` accept every
    /// continuation that one with count `new` does? With no minimum a lower
    /// count does (it has more iterations left); with no maximum a higher one
    /// does (it is nearer the minimum). False for other rules.
    #[inline]
    pub fn count_dominates(&self, state: u32, have: u32, new: u32) -> bool {
        match &self.rule_kind[self.state_rule[state as usize] as usize] {
            RuleKind::Counter { min, max, .. } => {
                (*min == 0 && have <= new) || (*max == u32::MAX && have >= new)
            }
            _ => false,
        }
    }

    /// Heap bytes used by the tables (vector lengths; the automaton is built
    /// once, so capacity slack is small).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let per_rule = size_of::<RuleId>()
            + size_of::<u32>()
            + size_of::<bool>()
            + size_of::<ByteSet>()
            + size_of::<RuleKind>()
            + size_of::<String>()
            + size_of::<Option<RuleId>>();
        let kinds: usize = self
            .rule_kind
            .iter()
            .map(|k| match k {
                RuleKind::Permutation { members, .. } => members.len() * size_of::<RuleId>(),
                _ => 0,
            })
            .sum();
        let names: usize = self.rule_names.iter().map(String::len).sum();
        let elems: usize = self
            .token_elems
            .iter()
            .map(|e| size_of::<TokenElem>() + e.ids.len() * size_of::<TokenId>())
            .sum();
        self.byte_next.heap_bytes()
            + self.rule_trans.len() * 8
            + self.token_trans.len() * 8
            + self.accepting.len() * 14
            + 8
            + self.aux_state.len()
            + self.rule_start.len() * per_rule
            + kinds
            + names
            + elems
    }

    /// Build the automaton for `grammar`, resolving token elements against `vocab`.
    /// `source` is the grammar text, used to point at token elements in errors.
    pub fn build(
        grammar: &Grammar,
        vocab: &Vocabulary,
        limits: &Limits,
        source: Option<&str>,
    ) -> Result<Automaton> {
        Self::build_owned(grammar.clone(), vocab, limits, source)
    }

    /// [`Self::build`], taking the grammar: its rule bodies are lowered in
    /// place instead of copied.
    pub fn build_owned(
        grammar: Grammar,
        vocab: &Vocabulary,
        limits: &Limits,
        source: Option<&str>,
    ) -> Result<Automaton> {
        Builder::new(vocab, limits, source).build(grammar)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Edge {
    Eps,
    Bytes(u8, u8),
    Rule(RuleId),
    Token(u32),
}

/// One rule's NFA. Edges are collected flat while building and grouped by
/// source state in [`Nfa::finish`]: a vector per state made a typical
/// schema's compile allocate once per NFA state.
#[derive(Default)]
struct Nfa {
    states: u32,
    /// `(from, (edge, to))` in the order added.
    raw: Vec<(u32, (Edge, u32))>,
    /// After `finish`: the edges of state `s` are `out[start[s]..start[s + 1]]`,
    /// in the order added.
    start: Vec<u32>,
    out: Vec<(Edge, u32)>,
}

impl Nfa {
    fn state(&mut self) -> u32 {
        self.states += 1;
        self.states - 1
    }
    fn edge(&mut self, from: u32, e: Edge, to: u32) {
        self.raw.push((from, (e, to)));
    }
    fn num_states(&self) -> usize {
        self.states as usize
    }
    /// Group the edges by source state.
    fn finish(&mut self) {
        (self.start, self.out) = group_by_key(self.states as usize, &self.raw, (Edge::Eps, 0));
        self.raw = Vec::new();
    }
    /// The edges out of `s` (after `finish`).
    fn edges(&self, s: u32) -> &[(Edge, u32)] {
        &self.out[self.start[s as usize] as usize..self.start[s as usize + 1] as usize]
    }
}

/// `(key, value)` pairs grouped by key below `n`, each group in the order
/// given (a stable counting sort): the values of key `k` are
/// `values[starts[k]..starts[k + 1]]`. One flat vector instead of one per key.
fn group_by_key<T: Copy>(n: usize, pairs: &[(u32, T)], fill: T) -> (Vec<u32>, Vec<T>) {
    let mut starts = vec![0u32; n + 1];
    for &(k, _) in pairs {
        starts[k as usize + 1] += 1;
    }
    for i in 0..n {
        starts[i + 1] += starts[i];
    }
    let mut at = starts.clone();
    let mut values = vec![fill; pairs.len()];
    for &(k, v) in pairs {
        values[at[k as usize] as usize] = v;
        at[k as usize] += 1;
    }
    (starts, values)
}

struct Builder<'a> {
    vocab: &'a Vocabulary,
    limits: &'a Limits,
    source: Option<&'a str>,
    token_elems: Vec<TokenElem>,
    token_elem_ids: FxHashMap<(bool, Vec<TokenId>), u32>,
    /// NFA states of the rules built so far (for `Limits::max_nfa_states`).
    nfa_states_done: usize,
}

/// Repetitions whose bound exceeds this become [`RuleKind::Counter`] rules
/// instead of unrolled copies (small ones unroll into faster plain DFAs).
pub const COUNTER_THRESHOLD: u32 = 16;

/// Smaller repetitions also become counters when the unrolled copies would
/// take more than about this many automaton states ([`estimate`]).
pub const UNROLL_BUDGET: u64 = 512;

/// A rule after lowering: an IR body, or one of the register rules.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Lowered {
    Body(Expr),
    Special(RuleKind),
}

/// The grammar with large repetitions and permutations moved into register
/// rules of their own. Original rules keep their ids; new ones are appended.
struct Lowering {
    names: Vec<String>,
    bodies: Vec<Lowered>,
    /// Counters of a lexical item, with that item repeated without bound.
    stars: FxHashMap<RuleId, Expr>,
    /// (rule, its relaxed twin): see [`Automaton::relaxed`].
    twins: Vec<(RuleId, RuleId)>,
}

/// Relaxed twins (see [`Automaton::relaxed`]) are built up to this size
/// ([`estimate`]): they are copies, and the rules that need one are strings
/// and patterns of a few states.
const TWIN_BUDGET: u64 = 4096;

impl Lowering {
    fn run(g: Grammar) -> Result<Lowering> {
        let mut l = Lowering {
            names: g.rules.iter().map(|r| r.name.clone()).collect(),
            bodies: (0..g.rules.len())
                .map(|_| Lowered::Body(Expr::Empty))
                .collect(),
            stars: FxHashMap::default(),
            twins: Vec::new(),
        };
        for (i, r) in g.rules.into_iter().enumerate() {
            let body = l.expr(r.body, &r.name)?;
            l.bodies[i] = Lowered::Body(body);
            l.add_twin(i as RuleId);
        }
        Ok(l)
    }

    /// Give `rule` a relaxed twin if its body refers to counters of lexical
    /// items and to nothing else that is not lexical.
    fn add_twin(&mut self, rule: RuleId) {
        let Lowered::Body(body) = &self.bodies[rule as usize] else {
            return;
        };
        // Checked before anything is copied: most rules refer to no counter.
        if relaxable(body, &self.stars) != Some(true) {
            return;
        }
        let twin = relaxed_body(body, &self.stars);
        if estimate(&twin) <= TWIN_BUDGET {
            let name = format!("{}/relaxed", self.names[rule as usize]);
            let t = self.rule(name, Lowered::Body(twin));
            self.twins.push((rule, t));
        }
    }

    /// Merge rules whose bodies are identical once their references are
    /// merged (front-ends emit many: the same sub-schema under several
    /// properties or branches), so each is determinised and classified once.
    /// Rounds until nothing changes; returns the root's representative.
    /// Rules merged away keep an empty body and are never referenced.
    fn merge_identical(&mut self, root: RuleId) -> RuleId {
        let n = self.bodies.len();
        let mut rep: Vec<RuleId> = (0..n as RuleId).collect();
        // A body's hash changes only when a rule it refers to gets a new
        // representative: rounds rehash just those (a merge climbs one level
        // of references per round, and big schemas have thousands of rules).
        let mut children: Vec<Vec<RuleId>> = vec![Vec::new(); n];
        let mut hashes = vec![0u64; n];
        let mut stale = vec![true; n];
        let mut first_round = true;
        loop {
            // Bodies hashed and compared through `rep`, without rewriting them.
            let mut first: FxHashMap<u64, Vec<RuleId>> = FxHashMap::default();
            let mut changed = false;
            let before = rep.clone();
            // The root first, so that it stays its own representative (its name is reported).
            let order =
                std::iter::once(root as usize).chain((0..n).filter(|&r| r != root as usize));
            for r in order {
                if rep[r] != r as RuleId {
                    continue;
                }
                if stale[r] {
                    let mut h = rustc_hash::FxHasher::default();
                    // The first round also lists each body's references.
                    let kids = first_round.then(|| &mut children[r]);
                    hash_lowered(&self.bodies[r], &rep, &mut h, kids);
                    hashes[r] = std::hash::Hasher::finish(&h);
                }
                let bucket = first.entry(hashes[r]).or_default();
                let same = bucket
                    .iter()
                    .copied()
                    .find(|&f| eq_lowered(&self.bodies[f as usize], &self.bodies[r], &rep));
                match same {
                    Some(f) => {
                        rep[r] = f;
                        changed = true;
                    }
                    None => bucket.push(r as RuleId),
                }
            }
            // Representatives of representatives (a rule merged this round
            // may have been chosen as one earlier).
            for r in 0..n {
                let mut x = rep[r];
                while rep[x as usize] != x {
                    x = rep[x as usize];
                }
                rep[r] = x;
            }
            if !changed {
                break;
            }
            for r in 0..n {
                stale[r] = children[r]
                    .iter()
                    .any(|&c| rep[c as usize] != before[c as usize]);
            }
            first_round = false;
        }
        for r in 0..n {
            if rep[r] == r as RuleId {
                relabel(&mut self.bodies[r], &rep);
            } else {
                self.bodies[r] = Lowered::Body(Expr::Empty);
            }
        }
        for (rule, twin) in &mut self.twins {
            (*rule, *twin) = (rep[*rule as usize], rep[*twin as usize]);
        }
        rep[root as usize]
    }

    fn rule(&mut self, name: String, body: Lowered) -> RuleId {
        self.names.push(name);
        self.bodies.push(body);
        (self.bodies.len() - 1) as RuleId
    }

    /// A fresh rule for `e` (lowered), named after its owner.
    fn sub_rule(&mut self, e: Expr, owner: &str, what: &str) -> Result<RuleId> {
        let name = format!("{owner}/{what}");
        let body = self.expr(e, &name)?;
        let r = self.rule(name, Lowered::Body(body));
        self.add_twin(r);
        Ok(r)
    }

    /// A counter rule repeating `inner` (with its relaxed twin where
    /// `inner` is lexical), in place of the repetition. Apart from
    /// [`Self::expr`], whose frame every level of nesting pays (a debug
    /// build's stack overflowed on the written-out formats).
    #[inline(never)]
    fn counter(&mut self, inner: Expr, min: u32, max: Option<u32>, owner: &str) -> Expr {
        // A lexical item: no rule reference at all.
        let star = (relaxable(&inner, &FxHashMap::default()) == Some(false)
            && estimate(&inner) <= TWIN_BUDGET)
            .then(|| Expr::Repeat {
                expr: Box::new(inner.clone()),
                min: 0,
                max: None,
            });
        let item = self.rule(format!("{owner}/item"), Lowered::Body(inner));
        let kind = RuleKind::Counter {
            item,
            min,
            max: max.unwrap_or(u32::MAX),
        };
        let counter = self.rule(format!("{owner}/repeat"), Lowered::Special(kind));
        if let Some(star) = star {
            let t = self.rule(
                format!("{owner}/repeat/relaxed"),
                Lowered::Body(star.clone()),
            );
            self.twins.push((counter, t));
            self.stars.insert(counter, star);
        }
        Expr::Rule(counter)
    }

    /// [`Self::expr`] of each of `v`: a loop, not an iterator chain, whose
    /// adapters were a dozen frames per level of nesting in a debug build.
    fn exprs(&mut self, v: Vec<Expr>, owner: &str) -> Result<Vec<Expr>> {
        let mut out = Vec::with_capacity(v.len());
        for x in v {
            out.push(self.expr(x, owner)?);
        }
        Ok(out)
    }

    fn expr(&mut self, e: Expr, owner: &str) -> Result<Expr> {
        Ok(match e {
            Expr::Seq(v) => Expr::Seq(self.exprs(v, owner)?),
            Expr::Alt(v) => Expr::Alt(self.exprs(v, owner)?),
            Expr::Repeat {
                expr,
                mut min,
                mut max,
            } => {
                let mut inner = self.expr(*expr, owner)?;
                // Repeating a star or plus is a star or plus again: `(y*){m,n}` is
                // `y*` and `(y+){m,n}` is `y{m,}` (n ≥ 1). Folding it avoids counting
                // iterations of a hugely ambiguous item.
                if let Expr::Repeat {
                    expr: y,
                    min: ymin @ (0 | 1),
                    max: None,
                } = peel(&inner)
                {
                    if max != Some(0) {
                        min = if *ymin == 0 { 0 } else { min };
                        max = None;
                        inner = (**y).clone();
                    }
                }
                let bound = max.unwrap_or(min);
                // Copies of a big item (a Unicode class such as `\w` is hundreds
                // of UTF-8 states) multiply the DFA: count those too.
                let big =
                    bound >= 2 && estimate(&inner).saturating_mul(u64::from(bound)) > UNROLL_BUDGET;
                if bound <= COUNTER_THRESHOLD && !big {
                    Expr::Repeat {
                        expr: Box::new(inner),
                        min,
                        max,
                    }
                } else {
                    self.counter(inner, min, max, owner)
                }
            }
            Expr::Permutation {
                members,
                required,
                sep,
                min,
                max,
            } => {
                if members.len() > crate::grammar::MAX_PERMUTATION_MEMBERS {
                    return Err(Error::limit(format!(
                        "an any-order list has {} members, exceeds the maximum of {}",
                        members.len(),
                        crate::grammar::MAX_PERMUTATION_MEMBERS
                    )));
                }
                if required.len() != members.len() {
                    return Err(Error::new(
                        ErrorKind::Grammar,
                        "any-order list: `required` and `members` differ in length",
                    ));
                }
                let mut ids = Vec::with_capacity(members.len());
                for (i, m) in members.into_iter().enumerate() {
                    ids.push(self.sub_rule(m, owner, &format!("member{i}"))?);
                }
                let sep = self.sub_rule(*sep, owner, "sep")?;
                let req = required
                    .iter()
                    .enumerate()
                    .filter(|(_, &r)| r)
                    .fold(0u32, |acc, (i, _)| acc | 1 << i);
                let kind = RuleKind::Permutation {
                    members: ids,
                    sep,
                    required: req,
                    min,
                    max: max.unwrap_or(u32::MAX),
                };
                Expr::Rule(self.rule(format!("{owner}/any-order"), Lowered::Special(kind)))
            }
            other => other,
        })
    }
}

/// Can `e` have a relaxed twin: Some(whether it refers to a counter of
/// `stars`) if every rule reference in it is to such a counter and it holds
/// no token element or permutation, else None.
fn relaxable(e: &Expr, stars: &FxHashMap<RuleId, Expr>) -> Option<bool> {
    match e {
        Expr::Rule(r) => stars.contains_key(r).then_some(true),
        Expr::Token { .. } | Expr::Permutation { .. } => None,
        Expr::Seq(v) | Expr::Alt(v) => v
            .iter()
            .try_fold(false, |any, x| relaxable(x, stars).map(|c| any | c)),
        Expr::Repeat { expr, .. } => relaxable(expr, stars),
        Expr::Empty | Expr::Literal(_) | Expr::Class { .. } | Expr::Bytes(_) => Some(false),
    }
}

/// `e` (which [`relaxable`] accepts) with every reference to a counter of
/// `stars` replaced by its unbounded repetition.
fn relaxed_body(e: &Expr, stars: &FxHashMap<RuleId, Expr>) -> Expr {
    match e {
        Expr::Rule(r) => stars[r].clone(),
        Expr::Seq(v) => Expr::Seq(v.iter().map(|x| relaxed_body(x, stars)).collect()),
        Expr::Alt(v) => Expr::Alt(v.iter().map(|x| relaxed_body(x, stars)).collect()),
        Expr::Repeat { expr, min, max } => Expr::Repeat {
            expr: Box::new(relaxed_body(expr, stars)),
            min: *min,
            max: *max,
        },
        other => other.clone(),
    }
}

/// `e` without single-element sequence / alternation wrappers (groups).
fn peel(mut e: &Expr) -> &Expr {
    while let Expr::Seq(v) | Expr::Alt(v) = e {
        match v.as_slice() {
            [one] => e = one,
            _ => break,
        }
    }
    e
}

/// Hash a body with every rule reference `r` read as `rep[r]`; with `kids`,
/// also list the rules it refers to.
fn hash_lowered(
    body: &Lowered,
    rep: &[RuleId],
    h: &mut rustc_hash::FxHasher,
    mut kids: Option<&mut Vec<RuleId>>,
) {
    use std::hash::Hash;
    fn expr(
        e: &Expr,
        rep: &[RuleId],
        h: &mut rustc_hash::FxHasher,
        kids: &mut Option<&mut Vec<RuleId>>,
    ) {
        std::mem::discriminant(e).hash(h);
        match e {
            Expr::Rule(r) => {
                rep[*r as usize].hash(h);
                if let Some(k) = kids {
                    k.push(*r);
                }
            }
            Expr::Seq(v) | Expr::Alt(v) => {
                v.len().hash(h);
                v.iter().for_each(|x| expr(x, rep, h, kids));
            }
            Expr::Repeat { expr: x, min, max } => {
                (min, max).hash(h);
                expr(x, rep, h, kids);
            }
            other => other.hash(h),
        }
    }
    match body {
        Lowered::Body(e) => expr(e, rep, h, &mut kids),
        Lowered::Special(k) => {
            if let Some(out) = kids {
                match k {
                    RuleKind::Plain => {}
                    RuleKind::Counter { item, .. } => out.push(*item),
                    RuleKind::Permutation { members, sep, .. } => {
                        out.extend(members);
                        out.push(*sep);
                    }
                }
            }
            let mut k = Lowered::Special(k.clone());
            relabel(&mut k, rep);
            k.hash(h)
        }
    }
}

/// Are `a` and `b` equal with every rule reference `r` read as `rep[r]`?
fn eq_lowered(a: &Lowered, b: &Lowered, rep: &[RuleId]) -> bool {
    fn expr(a: &Expr, b: &Expr, rep: &[RuleId]) -> bool {
        match (a, b) {
            (Expr::Rule(x), Expr::Rule(y)) => rep[*x as usize] == rep[*y as usize],
            (Expr::Seq(x), Expr::Seq(y)) | (Expr::Alt(x), Expr::Alt(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| expr(p, q, rep))
            }
            (
                Expr::Repeat {
                    expr: x,
                    min: m1,
                    max: n1,
                },
                Expr::Repeat {
                    expr: y,
                    min: m2,
                    max: n2,
                },
            ) => m1 == m2 && n1 == n2 && expr(x, y, rep),
            (Expr::Rule(_) | Expr::Seq(_) | Expr::Alt(_) | Expr::Repeat { .. }, _) => false,
            _ => a == b,
        }
    }
    match (a, b) {
        (Lowered::Body(x), Lowered::Body(y)) => expr(x, y, rep),
        (Lowered::Special(_), Lowered::Special(_)) => {
            let (mut a, mut b) = (a.clone(), b.clone());
            relabel(&mut a, rep);
            relabel(&mut b, rep);
            a == b
        }
        _ => false,
    }
}

/// Replace every rule reference `r` in `body` by `rep[r]`, in place.
fn relabel(body: &mut Lowered, rep: &[RuleId]) {
    fn expr(e: &mut Expr, rep: &[RuleId]) {
        match e {
            Expr::Rule(r) => *r = rep[*r as usize],
            Expr::Seq(v) | Expr::Alt(v) => v.iter_mut().for_each(|x| expr(x, rep)),
            Expr::Repeat { expr: x, .. } => expr(x, rep),
            Expr::Permutation { .. } => unreachable!("permutations are lowered to rules"),
            _ => {}
        }
    }
    match body {
        Lowered::Body(e) => expr(e, rep),
        Lowered::Special(RuleKind::Plain) => {}
        Lowered::Special(RuleKind::Counter { item, .. }) => *item = rep[*item as usize],
        Lowered::Special(RuleKind::Permutation { members, sep, .. }) => {
            members.iter_mut().for_each(|m| *m = rep[*m as usize]);
            *sep = rep[*sep as usize];
        }
    }
}

/// A size weight for the unroll choice ([`UNROLL_BUDGET`]), rough: the
/// states the build makes are counted as it makes them.
fn estimate(e: &Expr) -> u64 {
    match e {
        Expr::Empty | Expr::Rule(_) | Expr::Token { .. } | Expr::Bytes(_) => 2,
        Expr::Literal(b) => b.len() as u64 + 1,
        Expr::Class { ranges, .. } => 8 + 4 * ranges.len() as u64,
        Expr::Seq(v) | Expr::Alt(v) => v.iter().map(estimate).fold(2u64, u64::saturating_add),
        Expr::Repeat { expr, min, max } => {
            let copies = u64::from(max.unwrap_or(*min)).max(1) + 1;
            estimate(expr).saturating_add(2).saturating_mul(copies)
        }
        Expr::Permutation { members, sep, .. } => members
            .iter()
            .map(estimate)
            .fold(estimate(sep).saturating_add(4), u64::saturating_add),
    }
}

/// Split a code-point range into ranges that avoid the surrogate block.
fn to_chars(a: u32, b: u32) -> Vec<(char, char)> {
    let mut out = Vec::new();
    let mut push = |x: u32, y: u32| {
        if let (Some(cx), Some(cy)) = (char::from_u32(x), char::from_u32(y)) {
            if x <= y {
                out.push((cx, cy));
            }
        }
    };
    if b < 0xD800 || a > 0xDFFF {
        push(a, b);
    } else {
        if a < 0xD800 {
            push(a, 0xD7FF);
        }
        if b > 0xDFFF {
            push(0xE000, b);
        }
    }
    out
}

impl<'a> Builder<'a> {
    fn new(vocab: &'a Vocabulary, limits: &'a Limits, source: Option<&'a str>) -> Self {
        Builder {
            vocab,
            limits,
            source,
            token_elems: Vec::new(),
            token_elem_ids: FxHashMap::default(),
            nfa_states_done: 0,
        }
    }

    /// Fail once the rules built so far and `nfa` hold more NFA states than
    /// the limit: checked after each rule and before each copy of a
    /// repetition (the one place a rule grows faster than its expression),
    /// so a grammar over the limit fails before it allocates much more.
    fn check_nfa_states(&self, nfa: &Nfa) -> Result<()> {
        let n = self.nfa_states_done + nfa.num_states();
        if n > self.limits.max_nfa_states {
            return Err(Error::limit(format!(
                "grammar needs at least {n} automaton states, exceeds Limits.max_nfa_states={}",
                self.limits.max_nfa_states
            )));
        }
        Ok(())
    }

    fn located(&self, kind: ErrorKind, msg: String, span: Option<crate::error::Span>) -> Error {
        match (span, self.source) {
            (Some(sp), Some(src)) => Error::at(kind, msg, sp, src),
            _ => Error::new(kind, msg),
        }
    }

    fn token_elem(
        &mut self,
        negated: bool,
        tokens: &[TokenRef],
        span: Option<crate::error::Span>,
    ) -> Result<u32> {
        let mut ids = Vec::new();
        for t in tokens {
            match t {
                TokenRef::Id(id) => {
                    if *id as usize >= self.vocab.tokenizer_size() {
                        return Err(self.located(
                            ErrorKind::Grammar,
                            format!(
                                "token id {id} is out of range (the tokenizer has {} tokens)",
                                self.vocab.tokenizer_size()
                            ),
                            span,
                        ));
                    }
                    ids.push(*id);
                }
                TokenRef::Text(text) => {
                    let found = self.vocab.ids_for_text(text.as_bytes());
                    if found.is_empty() {
                        return Err(self.located(
                            ErrorKind::Grammar,
                            format!("no token in the vocabulary has the text `{text}`"),
                            span,
                        ));
                    }
                    ids.extend_from_slice(found);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let key = (negated, ids);
        if let Some(&i) = self.token_elem_ids.get(&key) {
            return Ok(i);
        }
        let i = self.token_elems.len() as u32;
        self.token_elems.push(TokenElem {
            negated: key.0,
            ids: key.1.clone(),
        });
        self.token_elem_ids.insert(key, i);
        Ok(i)
    }

    /// Thompson construction: returns (start, end) of the fragment for `e`.
    fn frag(&mut self, nfa: &mut Nfa, e: &Expr) -> Result<(u32, u32)> {
        Ok(match e {
            Expr::Empty => {
                let s = nfa.state();
                (s, s)
            }
            Expr::Literal(bytes) => {
                let s = nfa.state();
                let mut cur = s;
                for &b in bytes {
                    let n = nfa.state();
                    nfa.edge(cur, Edge::Bytes(b, b), n);
                    cur = n;
                }
                (s, cur)
            }
            Expr::Bytes(ranges) => {
                let (s, t) = (nfa.state(), nfa.state());
                for &(a, b) in ranges {
                    if a <= b {
                        nfa.edge(s, Edge::Bytes(a, b), t);
                    }
                }
                (s, t)
            }
            Expr::Class { negated, ranges } => {
                let (s, t) = (nfa.state(), nfa.state());
                for (a, b) in crate::grammar::class_ranges(*negated, ranges) {
                    for (ca, cb) in to_chars(a, b) {
                        for seq in Utf8Sequences::new(ca, cb) {
                            let rs = seq.as_slice();
                            let mut cur = s;
                            for (k, r) in rs.iter().enumerate() {
                                let n = if k + 1 == rs.len() { t } else { nfa.state() };
                                nfa.edge(cur, Edge::Bytes(r.start, r.end), n);
                                cur = n;
                            }
                        }
                    }
                }
                (s, t)
            }
            Expr::Rule(r) => {
                let (s, t) = (nfa.state(), nfa.state());
                nfa.edge(s, Edge::Rule(*r), t);
                (s, t)
            }
            Expr::Token {
                negated,
                tokens,
                span,
            } => {
                let id = self.token_elem(*negated, tokens, *span)?;
                let (s, t) = (nfa.state(), nfa.state());
                nfa.edge(s, Edge::Token(id), t);
                (s, t)
            }
            Expr::Seq(items) => {
                let s = nfa.state();
                let mut cur = s;
                for it in items {
                    let (a, b) = self.frag(nfa, it)?;
                    nfa.edge(cur, Edge::Eps, a);
                    cur = b;
                }
                (s, cur)
            }
            Expr::Alt(alts) => {
                let (s, t) = (nfa.state(), nfa.state());
                for it in alts {
                    let (a, b) = self.frag(nfa, it)?;
                    nfa.edge(s, Edge::Eps, a);
                    nfa.edge(b, Edge::Eps, t);
                }
                (s, t)
            }
            Expr::Repeat { expr, min, max } => {
                let s = nfa.state();
                let mut cur = s;
                for _ in 0..*min {
                    self.check_nfa_states(nfa)?;
                    let (a, b) = self.frag(nfa, expr)?;
                    nfa.edge(cur, Edge::Eps, a);
                    cur = b;
                }
                match max {
                    None => {
                        // Kleene star on a fresh copy: hub -> e -> hub.
                        let hub = nfa.state();
                        nfa.edge(cur, Edge::Eps, hub);
                        let (a, b) = self.frag(nfa, expr)?;
                        nfa.edge(hub, Edge::Eps, a);
                        nfa.edge(b, Edge::Eps, hub);
                        (s, hub)
                    }
                    Some(mx) => {
                        let end = nfa.state();
                        nfa.edge(cur, Edge::Eps, end);
                        for _ in *min..*mx {
                            self.check_nfa_states(nfa)?;
                            let (a, b) = self.frag(nfa, expr)?;
                            nfa.edge(cur, Edge::Eps, a);
                            nfa.edge(b, Edge::Eps, end);
                            cur = b;
                        }
                        (s, end)
                    }
                }
            }
            Expr::Permutation { .. } => return Err(Error::new(
                ErrorKind::Grammar,
                "any-order member lists (Expr::Permutation) are not supported by the automaton yet",
            )),
        })
    }

    fn build(mut self, g: Grammar) -> Result<Automaton> {
        if g.rules.is_empty() {
            return Err(Error::new(
                ErrorKind::Grammar,
                "grammar is empty: no rules defined",
            ));
        }
        if g.root as usize >= g.rules.len() {
            return Err(Error::new(
                ErrorKind::Grammar,
                "root rule id is out of range",
            ));
        }
        let (num_rules, g_root) = (g.rules.len(), g.root);
        let mut low = Lowering::run(g)?;
        let root = low.merge_identical(g_root);
        let mut relaxed = vec![None; low.bodies.len()];
        for &(rule, twin) in &low.twins {
            relaxed[rule as usize].get_or_insert(twin);
        }
        let mut nfas = Vec::with_capacity(low.bodies.len());
        let mut rule_kind = Vec::with_capacity(low.bodies.len());
        for body in &low.bodies {
            let mut nfa = Nfa::default();
            let (s, t) = match body {
                Lowered::Body(e) => {
                    rule_kind.push(RuleKind::Plain);
                    self.frag(&mut nfa, e)?
                }
                Lowered::Special(kind) => {
                    rule_kind.push(kind.clone());
                    special_nfa(&mut nfa, kind)
                }
            };
            self.check_nfa_states(&nfa)?;
            self.nfa_states_done += nfa.num_states();
            nfa.finish();
            nfas.push((nfa, s, t));
        }
        // Byte classes: bytes that no range boundary separates behave alike.
        let mut boundary = [false; 257];
        for (nfa, _, _) in &nfas {
            for (e, _) in &nfa.out {
                if let Edge::Bytes(a, b) = *e {
                    boundary[a as usize] = true;
                    boundary[b as usize + 1] = true;
                }
            }
        }
        let mut class_of = [0u8; 256];
        let mut c: usize = 0;
        for b in 0..256 {
            if b > 0 && boundary[b] {
                c += 1;
            }
            class_of[b] = c as u8;
        }
        let num_classes = c + 1;

        let mut out = Tables {
            num_classes,
            ..Tables::default()
        };
        let mut rule_start = Vec::with_capacity(num_rules);
        for (rid, (nfa, s, t)) in nfas.iter().enumerate() {
            rule_start.push(out.accepting.len() as u32);
            determinise(nfa, *s, *t, rid as RuleId, &class_of, &mut out, self.limits)?;
        }
        let mut a = Automaton {
            class_of,
            num_classes,
            byte_next: ByteRows::from_dense(out.byte_next, num_classes),
            rule_trans: Vec::new(),
            rule_trans_start: Vec::new(),
            token_trans: Vec::new(),
            token_trans_start: Vec::new(),
            has_bytes: Vec::new(),
            accepting: out.accepting,
            state_rule: out.state_rule,
            rule_start,
            nullable: vec![false; nfas.len()],
            follow: Vec::new(),
            aux_state: Vec::new(),
            rule_kind,
            token_elems: std::mem::take(&mut self.token_elems),
            rule_names: low.names,
            root,
            relaxed,
        };
        trim(&mut a, out.rule_edges, out.token_edges)?;
        a.follow = follow_sets(&a);
        Ok(a)
    }
}

/// The fixed NFA of a register rule; returns (start, end).
fn special_nfa(nfa: &mut Nfa, kind: &RuleKind) -> (u32, u32) {
    match kind {
        RuleKind::Plain => {
            let s = nfa.state();
            (s, s)
        }
        // One state looping on the item; the count lives in the item.
        RuleKind::Counter { item, .. } => {
            let s = nfa.state();
            nfa.edge(s, Edge::Rule(*item), s);
            (s, s)
        }
        // first --member--> after --sep--> next --member--> after; first and after may end.
        RuleKind::Permutation { members, sep, .. } => {
            let (first, after, next, end) = (nfa.state(), nfa.state(), nfa.state(), nfa.state());
            for &m in members {
                nfa.edge(first, Edge::Rule(m), after);
                nfa.edge(next, Edge::Rule(m), after);
            }
            nfa.edge(after, Edge::Rule(*sep), next);
            nfa.edge(first, Edge::Eps, end);
            nfa.edge(after, Edge::Eps, end);
            (first, end)
        }
    }
}

/// A set of bytes.
pub type ByteSet = [u64; 4];

/// Is `b` in `set`?
#[inline]
pub fn byte_in(set: &ByteSet, b: u8) -> bool {
    set[(b >> 6) as usize] >> (b & 63) & 1 == 1
}

fn union_into(dst: &mut ByteSet, src: &ByteSet) -> bool {
    let mut changed = false;
    for (d, s) in dst.iter_mut().zip(src) {
        changed |= *s & !*d != 0;
        *d |= *s;
    }
    changed
}

/// Static FOLLOW sets: for every reference `s --R--> t`, the bytes that can
/// start what follows from `t` (through nullable rules), plus FOLLOW of the
/// enclosing rule when `t` can end it without consuming a byte.
fn follow_sets(a: &Automaton) -> Vec<ByteSet> {
    let n = a.num_states();
    // Bytes each state can consume next, and whether it can end its rule with no bytes.
    let mut first = vec![[0u64; 4]; n];
    let mut ends: Vec<bool> = a.accepting.clone();
    // The bytes of each byte class: a state's row is read per class, not per byte.
    let mut class_bytes = vec![[0u64; 4]; a.num_classes];
    for b in 0..=255u8 {
        class_bytes[a.class_of[b as usize] as usize][(b >> 6) as usize] |= 1 << (b & 63);
    }
    for (s, f) in first.iter_mut().enumerate() {
        for (c, t) in a.byte_next.row(s as u32).iter().enumerate() {
            if t != DEAD {
                union_into(f, &class_bytes[c]);
            }
        }
    }
    loop {
        let mut changed = false;
        for s in 0..n {
            for &(r, t) in a.rule_edges(s as u32) {
                let start = a.rule_start[r as usize] as usize;
                let fr = first[start];
                changed |= union_into(&mut first[s], &fr);
                if a.nullable[r as usize] {
                    let ft = first[t as usize];
                    changed |= union_into(&mut first[s], &ft);
                    if ends[t as usize] && !ends[s] {
                        ends[s] = true;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut follow = vec![[0u64; 4]; a.nullable.len()];
    loop {
        let mut changed = false;
        for s in 0..n {
            let parent = a.state_rule[s] as usize;
            for &(r, t) in a.rule_edges(s as u32) {
                let mut add = first[t as usize];
                if ends[t as usize] {
                    let fp = follow[parent];
                    union_into(&mut add, &fp);
                }
                changed |= union_into(&mut follow[r as usize], &add);
            }
        }
        if !changed {
            break;
        }
    }
    follow
}

#[derive(Default)]
struct Tables {
    num_classes: usize,
    byte_next: Vec<u32>,
    rule_edges: Vec<Vec<(RuleId, u32)>>,
    token_edges: Vec<Vec<(u32, u32)>>,
    accepting: Vec<bool>,
    state_rule: Vec<RuleId>,
}

/// Epsilon closures for subset construction, with scratch space reused
/// across calls (a fresh `seen` vector per call made large rules quadratic).
struct Closure {
    /// `mark[s] == stamp` when `s` was reached in the current call.
    mark: Vec<u32>,
    stamp: u32,
    /// States with a consuming edge, or the end state: the only ones that
    /// tell two subsets apart, so subsets keep just these (smaller keys).
    important: Vec<bool>,
    /// Epsilon successors in one flat array (`eps_to[eps_at[s]..eps_at[s + 1]]`),
    /// so closures skip the byte edges that dominate big states.
    eps_at: Vec<u32>,
    eps_to: Vec<u32>,
    stack: Vec<u32>,
}

impl Closure {
    fn new(nfa: &Nfa, end: u32) -> Closure {
        let n = nfa.num_states() as u32;
        let important = (0..n)
            .map(|s| s == end || nfa.edges(s).iter().any(|&(e, _)| e != Edge::Eps))
            .collect();
        let mut eps_at = Vec::with_capacity(n as usize + 1);
        let mut eps_to = Vec::new();
        for s in 0..n {
            eps_at.push(eps_to.len() as u32);
            let es = nfa.edges(s);
            eps_to.extend(es.iter().filter(|&&(e, _)| e == Edge::Eps).map(|&(_, t)| t));
        }
        eps_at.push(eps_to.len() as u32);
        Closure {
            mark: vec![0; n as usize],
            stamp: 0,
            important,
            eps_at,
            eps_to,
            stack: Vec::new(),
        }
    }

    /// Replace `set` by the sorted important states of its epsilon closure.
    fn close(&mut self, set: &mut Vec<u32>) {
        self.stamp += 1;
        let stamp = self.stamp;
        self.stack.clear();
        for &s in set.iter() {
            if self.mark[s as usize] != stamp {
                self.mark[s as usize] = stamp;
                self.stack.push(s);
            }
        }
        set.clear();
        while let Some(s) = self.stack.pop() {
            if self.important[s as usize] {
                set.push(s);
            }
            let (a, b) = (self.eps_at[s as usize], self.eps_at[s as usize + 1]);
            for &t in &self.eps_to[a as usize..b as usize] {
                if self.mark[t as usize] != stamp {
                    self.mark[t as usize] = stamp;
                    self.stack.push(t);
                }
            }
        }
        set.sort_unstable();
    }
}

/// Subset construction for one rule, appending its states to `out`.
fn determinise(
    nfa: &Nfa,
    start: u32,
    end: u32,
    rule: RuleId,
    class_of: &[u8; 256],
    out: &mut Tables,
    limits: &Limits,
) -> Result<()> {
    let base = out.accepting.len() as u32;
    let nc = out.num_classes;
    let mut closure = Closure::new(nfa, end);
    // One shared copy of each state's NFA set for the map and the list.
    let mut ids: FxHashMap<Rc<[u32]>, u32> = FxHashMap::default();
    let mut sets: Vec<Rc<[u32]>> = Vec::new();
    let mut first = vec![start];
    closure.close(&mut first);
    let first: Rc<[u32]> = Rc::from(first);
    ids.insert(first.clone(), 0);
    sets.push(first);
    // Scratch reused for every DFA state.
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); nc];
    let mut other: Vec<(Edge, u32)> = Vec::new();
    let mut set: Vec<u32> = Vec::new();
    let mut group: Vec<u32> = Vec::new();
    let mut raw_ids: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
    let mut touched: Vec<u8> = Vec::new();
    // Classes of UTF-8 continuation bytes only (classes are byte ranges).
    let mut cont = vec![true; nc];
    for b in 0..256usize {
        if !(0x80..=0xbf).contains(&b) {
            cont[class_of[b] as usize] = false;
        }
    }
    // States inside a character: no other edge, not accepting, and only
    // continuation bytes taken (merged below where they agree).
    let mut mids: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < sets.len() {
        if base as usize + sets.len() > limits.max_dfa_states {
            return Err(Error::limit(format!(
                "grammar needs more than {} DFA states, exceeds Limits.max_dfa_states={}",
                base as usize + sets.len(),
                limits.max_dfa_states
            )));
        }
        set.clear();
        set.extend_from_slice(&sets[i]);
        other.clear();
        for &s in &set {
            for &(e, t) in nfa.edges(s) {
                match e {
                    Edge::Eps => {}
                    Edge::Bytes(a, b) => {
                        for c in class_of[a as usize]..=class_of[b as usize] {
                            let targets = &mut by_class[c as usize];
                            if targets.is_empty() {
                                touched.push(c);
                            }
                            targets.push(t);
                        }
                    }
                    Edge::Rule(_) | Edge::Token(_) => other.push((e, t)),
                }
            }
        }
        let mut intern_closed = |targets: &mut Vec<u32>, sets: &mut Vec<Rc<[u32]>>| -> u32 {
            closure.close(targets);
            if let Some(&id) = ids.get(targets.as_slice()) {
                return base + id;
            }
            let id = sets.len() as u32;
            let key: Rc<[u32]> = Rc::from(targets.as_slice());
            ids.insert(key.clone(), id);
            sets.push(key);
            base + id
        };
        let mut intern = |targets: &mut Vec<u32>, sets: &mut Vec<Rc<[u32]>>| -> u32 {
            // Many byte classes (split apart by other rules' bytes) reach the
            // same NFA states here: close each distinct target list once.
            targets.sort_unstable();
            targets.dedup();
            if let Some(&id) = raw_ids.get(targets.as_slice()) {
                return id;
            }
            let raw = targets.clone();
            let id = intern_closed(targets, sets);
            raw_ids.insert(raw, id);
            id
        };
        let row_at = out.byte_next.len();
        out.byte_next.resize(row_at + nc, DEAD);
        let mid = other.is_empty()
            && set.binary_search(&end).is_err()
            && touched.iter().all(|&c| cont[c as usize]);
        if mid && i > 0 {
            mids.push(i as u32);
        }
        // Only the classes some edge covers (rules see few of a big grammar's classes).
        touched.sort_unstable();
        for &c in &touched {
            let targets = &mut by_class[c as usize];
            out.byte_next[row_at + c as usize] = intern(targets, &mut sets);
            targets.clear();
        }
        touched.clear();
        // Rule and token edges, grouped by label in label order.
        other.sort_unstable();
        let mut rules: Vec<(RuleId, u32)> = Vec::new();
        let mut tokens: Vec<(u32, u32)> = Vec::new();
        let mut k = 0;
        while k < other.len() {
            let label = other[k].0;
            group.clear();
            while k < other.len() && other[k].0 == label {
                group.push(other[k].1);
                k += 1;
            }
            let to = intern(&mut group, &mut sets);
            match label {
                Edge::Rule(r) => rules.push((r, to)),
                Edge::Token(t) => tokens.push((t, to)),
                Edge::Eps | Edge::Bytes(..) => unreachable!("only rule and token edges here"),
            }
        }
        out.rule_edges.push(rules);
        out.token_edges.push(tokens);
        out.accepting.push(set.binary_search(&end).is_ok());
        out.state_rule.push(rule);
        i += 1;
    }
    merge_mids(out, base, &mids, &cont);
    Ok(())
}

/// Merge the states inside a UTF-8 character (`mids`, local ids of the
/// rule starting at state `base`) that take the same continuation bytes to
/// the same states: each class of code points makes its own copies of them
/// (a key complement leaves its known keys by any other character from
/// every prefix, each through states of its own), so equal continuations
/// stay apart, and walks must tell them apart byte by byte. Rounds merge
/// the last byte's states, then those leading to them; a merged state's
/// row is cleared, so [`trim`] drops it. The first (lowest) state of a
/// group is kept, so a rule's start state is never dropped.
fn merge_mids(out: &mut Tables, base: u32, mids: &[u32], cont: &[bool]) {
    if mids.len() < 2 {
        return;
    }
    let nc = out.num_classes;
    let cont_classes: Vec<usize> = (0..nc).filter(|&c| cont[c]).collect();
    let n = out.accepting.len() - base as usize;
    // `rep[s]`: the state local state `s` is merged into (itself if none).
    let mut rep: Vec<u32> = (base..base + n as u32).collect();
    // Groups merge again in later rounds: follow the chain.
    let find = |rep: &[u32], mut t: u32| -> u32 {
        while t != DEAD && t >= base && rep[(t - base) as usize] != t {
            t = rep[(t - base) as usize];
        }
        t
    };
    let mut merged_any = false;
    let mut seen: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
    loop {
        seen.clear();
        let mut merged = false;
        for &m in mids {
            let s = base + m;
            if find(&rep, s) != s {
                continue;
            }
            let row = &out.byte_next[s as usize * nc..][..nc];
            let sig: Vec<u32> = cont_classes.iter().map(|&c| find(&rep, row[c])).collect();
            match seen.get(&sig) {
                Some(&r) => {
                    rep[m as usize] = r;
                    merged = true;
                }
                None => {
                    seen.insert(sig, s);
                }
            }
        }
        if !merged {
            break;
        }
        merged_any = true;
    }
    if !merged_any {
        return;
    }
    for k in 0..n {
        let s = base as usize + k;
        if rep[k] != s as u32 {
            out.byte_next[s * nc..(s + 1) * nc].fill(DEAD);
            continue;
        }
        for t in &mut out.byte_next[s * nc..(s + 1) * nc] {
            *t = find(&rep, *t);
        }
        for (_, t) in &mut out.rule_edges[s] {
            *t = find(&rep, *t);
        }
        for (_, t) in &mut out.token_edges[s] {
            *t = find(&rep, *t);
        }
    }
}

/// The worklist of [`trim`]'s liveness pass.
struct Marking {
    /// States that reach acceptance.
    live: Vec<bool>,
    /// Rules that can complete.
    productive: Vec<bool>,
    /// Per rule, states waiting for it to become productive.
    pending: Vec<Vec<u32>>,
    /// Live states whose predecessors are still to visit.
    work: Vec<u32>,
    stack: Vec<u32>,
}

impl Marking {
    /// Mark `s` live, and what becomes live with it: a rule's start state
    /// makes the rule productive, which frees the states waiting for it.
    fn mark(&mut self, s: u32, start_of_rule: &FxHashMap<u32, RuleId>) {
        self.stack.push(s);
        while let Some(s) = self.stack.pop() {
            if self.live[s as usize] {
                continue;
            }
            self.live[s as usize] = true;
            self.work.push(s);
            if let Some(&r) = start_of_rule.get(&s) {
                self.productive[r as usize] = true;
                let waiting = std::mem::take(&mut self.pending[r as usize]);
                self.stack.extend(waiting);
            }
        }
    }
}

/// Remove edges on rules that can never complete and edges into states that
/// cannot reach an accepting state; compute nullability; flatten edge lists.
fn trim(
    a: &mut Automaton,
    mut rule_edges: Vec<Vec<(RuleId, u32)>>,
    token_edges: Vec<Vec<(u32, u32)>>,
) -> Result<()> {
    let n = a.num_states();
    let nr = a.rule_start.len();
    let rule_states: Vec<(u32, u32)> = (0..nr)
        .map(|r| a.rule_states(r))
        .map(|r| (r.start, r.end))
        .collect();
    // Which states can reach acceptance, and which rules can complete? One
    // worklist pass over reversed edges; an edge on rule `r` counts once `r`
    // is known to complete (its start state is live).
    let mut start_of_rule: FxHashMap<u32, RuleId> = FxHashMap::default();
    for (r, &s) in a.rule_start.iter().enumerate() {
        start_of_rule.insert(s, r as RuleId);
    }
    // Reversed edges (target, (source, rule or DEAD)), grouped by target
    // below: flat, as a vector per state cost an allocation per DFA state.
    let mut rev_raw: Vec<(u32, (u32, u32))> = Vec::new();
    let mut targets: Vec<u32> = Vec::new();
    for s in 0..n {
        targets.clear();
        targets.extend(a.byte_next.row(s as u32).iter().filter(|&t| t != DEAD));
        targets.extend(token_edges[s].iter().map(|&(_, t)| t));
        targets.sort_unstable();
        targets.dedup();
        rev_raw.extend(targets.iter().map(|&t| (t, (s as u32, DEAD))));
        rev_raw.extend(rule_edges[s].iter().map(|&(r, t)| (t, (s as u32, r))));
    }
    let (rev_at, rev) = group_by_key(n, &rev_raw, (0, 0));
    drop(rev_raw);
    let mut m = Marking {
        live: vec![false; n],
        productive: vec![false; nr],
        pending: vec![Vec::new(); nr],
        work: Vec::new(),
        stack: Vec::new(),
    };
    // A register rule whose zero state may not end (a counter with `min > 0`,
    // a permutation with required members) becomes productive only once the
    // rules it must go through are.
    let guarded = |r: usize| match &a.rule_kind[r] {
        RuleKind::Plain => false,
        RuleKind::Counter { min, .. } => *min > 0,
        RuleKind::Permutation { required, min, .. } => *required != 0 || *min > 0,
    };
    for s in 0..n {
        if a.accepting[s] && !guarded(a.state_rule[s] as usize) {
            m.mark(s as u32, &start_of_rule);
        }
    }
    loop {
        while let Some(t) = m.work.pop() {
            for &(s, r) in &rev[rev_at[t as usize] as usize..rev_at[t as usize + 1] as usize] {
                if m.live[s as usize] {
                    continue;
                }
                if r == DEAD || m.productive[r as usize] {
                    m.mark(s, &start_of_rule);
                } else {
                    m.pending[r as usize].push(s);
                }
            }
        }
        let mut more = false;
        for (r, &(lo, hi)) in rule_states.iter().enumerate() {
            if m.productive[r] || !guarded(r) {
                continue;
            }
            let productive = &m.productive;
            let ready = match &a.rule_kind[r] {
                RuleKind::Plain => false,
                RuleKind::Counter { item, .. } => productive[*item as usize],
                RuleKind::Permutation {
                    members,
                    required,
                    min,
                    ..
                } => {
                    let ok = |i: usize| productive[members[i] as usize];
                    (0..members.len()).all(|i| required >> i & 1 == 0 || ok(i))
                        && (0..members.len()).filter(|&i| ok(i)).count() >= *min as usize
                }
            };
            if ready {
                for s in lo..hi {
                    if a.accepting[s as usize] {
                        m.mark(s, &start_of_rule);
                    }
                }
                more = true;
            }
        }
        if !more {
            break;
        }
    }
    let Marking {
        live, productive, ..
    } = m;
    if !productive[a.root as usize] {
        return Err(Error::new(
            ErrorKind::Grammar,
            format!(
                "the grammar matches no string: rule `{}` can never complete",
                a.rule_names[a.root as usize]
            ),
        ));
    }
    a.byte_next
        .retarget(|t| if live[t as usize] { t } else { DEAD });
    for edges in rule_edges.iter_mut() {
        edges.retain(|&(r, t)| productive[r as usize] && live[t as usize]);
    }
    // Nullable: an accepting state is reachable from the start through nullable
    // rule edges (register rules: their zero state may end).
    let mut nullable = vec![false; nr];
    loop {
        let mut changed = false;
        for r in 0..nr {
            if nullable[r] {
                continue;
            }
            let found = match &a.rule_kind[r] {
                RuleKind::Counter { item, min, .. } => *min == 0 || nullable[*item as usize],
                RuleKind::Permutation { required, min, .. } => *required == 0 && *min == 0,
                RuleKind::Plain => {
                    let (lo, hi) = rule_states[r];
                    let mut seen = vec![false; (hi - lo) as usize];
                    let mut stack = vec![a.rule_start[r]];
                    let mut found = false;
                    while let Some(s) = stack.pop() {
                        let k = (s - lo) as usize;
                        if seen[k] {
                            continue;
                        }
                        seen[k] = true;
                        if a.accepting[s as usize] {
                            found = true;
                            break;
                        }
                        for &(q, t) in &rule_edges[s as usize] {
                            if nullable[q as usize] {
                                stack.push(t);
                            }
                        }
                    }
                    found
                }
            };
            if found {
                nullable[r] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Empty iterations and members are never counted (the parser does not
    // advance a register over a nullable child), so a nullable counter item
    // makes any count reachable: `min` drops to 0. An empty member could never
    // be marked present, so it is refused.
    for r in 0..nr {
        match &mut a.rule_kind[r] {
            RuleKind::Counter { item, min, .. } if nullable[*item as usize] => *min = 0,
            RuleKind::Permutation { members, .. } => {
                if let Some(&m) = members.iter().find(|&&m| nullable[m as usize]) {
                    return Err(Error::new(
                        ErrorKind::Grammar,
                        format!(
                            "any-order list member `{}` can match the empty string",
                            a.rule_names[m as usize]
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    a.aux_state = (0..n)
        .map(|s| a.rule_kind[a.state_rule[s] as usize] != RuleKind::Plain)
        .collect();
    a.nullable = nullable;
    a.has_bytes = (0..n)
        .map(|s| a.byte_next.row(s as u32).is_live())
        .collect();
    a.rule_trans_start.push(0);
    a.token_trans_start.push(0);
    for s in 0..n {
        a.rule_trans.extend_from_slice(&rule_edges[s]);
        a.rule_trans_start.push(a.rule_trans.len() as u32);
        a.token_trans.extend(
            token_edges[s]
                .iter()
                .filter(|&&(_, t)| live[t as usize])
                .copied(),
        );
        a.token_trans_start.push(a.token_trans.len() as u32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn banded_rows_read_as_the_dense_table() {
        use super::{ByteRows, DEAD};
        let nc = 7;
        // Rows: all dead, one class, a band with a dead hole, full, dead ends.
        let dense: Vec<u32> = [
            [DEAD; 7],
            [DEAD, DEAD, 3, DEAD, DEAD, DEAD, DEAD],
            [DEAD, 1, DEAD, 2, DEAD, DEAD, DEAD],
            [0, 1, 2, 3, 4, 5, 6],
            [5, DEAD, DEAD, DEAD, DEAD, DEAD, 4],
        ]
        .concat();
        let (d, mut b) = (
            ByteRows::from_dense(dense.clone(), nc),
            ByteRows::banded(&dense, nc),
        );
        assert!(!d.dense.is_empty() && b.dense.is_empty());
        assert!(b.heap_bytes() < d.heap_bytes() + 5 * 8);
        for s in 0..5u32 {
            let row: Vec<u32> = d.row(s).iter().collect();
            assert_eq!(row, &dense[s as usize * nc..][..nc]);
            assert_eq!(b.row(s).iter().collect::<Vec<_>>(), row);
            assert_eq!(b.row(s).is_live(), s != 0);
            for c in 0..nc {
                assert_eq!(b.get(s, c), d.get(s, c));
                let sp = b.row(s).span();
                assert!(sp.contains(&c) || b.get(s, c) == DEAD);
            }
        }
        // Retargeting keeps the representation's reading.
        b.retarget(|t| if t == 3 { DEAD } else { t + 10 });
        assert_eq!(b.get(1, 2), DEAD);
        assert_eq!(b.get(3, 6), 16);
        assert!(!b.row(1).is_live());
    }

    use super::*;

    fn class(negated: bool, ranges: &[(u32, u32)]) -> Expr {
        Expr::Class {
            negated,
            ranges: ranges.to_vec(),
        }
    }

    /// The limit counts the states the build makes: a 938 KB Kubernetes
    /// schema was refused on a pre-count 3.7 times its states. A grammar of
    /// exactly the limit builds; one state fewer allowed fails, naming it.
    #[test]
    fn nfa_state_limit_counts_built_states() {
        let word = Expr::Literal(b"name".to_vec());
        let body = Expr::Alt(vec![
            Expr::Seq(vec![
                Expr::Repeat {
                    expr: Box::new(Expr::Seq(vec![
                        word.clone(),
                        class(false, &[(0x4E00, 0x9FFF)]),
                    ])),
                    min: 3,
                    max: Some(5),
                },
                class(true, &[(0x30, 0x39)]),
            ]),
            Expr::Repeat {
                expr: Box::new(word),
                min: 2,
                max: None,
            },
        ]);
        let g = Grammar {
            rules: vec![crate::grammar::Rule {
                name: "root".to_owned(),
                body,
                span: None,
            }],
            root: 0,
        };
        let vocab = Vocabulary::byte_level();
        let unlimited = Limits::default();
        let mut b = Builder::new(&vocab, &unlimited, None);
        let mut nfa = Nfa::default();
        b.frag(&mut nfa, &g.rules[0].body).expect("frag");
        let n = nfa.num_states();
        let at = |max_nfa_states| Limits {
            max_nfa_states,
            ..Limits::default()
        };
        assert!(Automaton::build(&g, &vocab, &at(n), None).is_ok());
        let e = Automaton::build(&g, &vocab, &at(n - 1), None).expect_err("over the limit");
        assert_eq!(e.kind(), ErrorKind::Limit);
        assert!(
            e.to_string().contains(&format!("max_nfa_states={}", n - 1)),
            "{e}"
        );
    }

    /// Each class of code points makes its own states inside a character (a
    /// key complement leaves every prefix by any other character): the
    /// build merges those that take the same continuations to the same
    /// states, and the language stays the same (checked against a direct
    /// simulation of the NFA on strings with whole, cut and stray UTF-8).
    #[test]
    fn states_inside_a_character_are_merged_exactly() {
        let other = |c: char| class(true, &[(c as u32, c as u32)]);
        let lit = |s: &str| Expr::Literal(s.as_bytes().to_vec());
        let body = Expr::Seq(vec![
            Expr::Alt(vec![
                Expr::Seq(vec![lit("a"), other('b')]),
                Expr::Seq(vec![lit("b"), other('a')]),
                Expr::Seq(vec![lit("ab"), other('\u{e9}')]),
                Expr::Seq(vec![lit("\u{20ac}"), other('\u{1f600}'), other('x')]),
                other('x'),
            ]),
            lit("c"),
        ]);
        let g = Grammar {
            rules: vec![crate::grammar::Rule {
                name: "root".to_owned(),
                body: body.clone(),
                span: None,
            }],
            root: 0,
        };
        let vocab = Vocabulary::byte_level();
        let limits = Limits::default();
        let a = Automaton::build(&g, &vocab, &limits, None).expect("build");
        // No two states inside a character agree.
        let row = |s: usize| a.byte_next.row(s as u32).iter().collect::<Vec<u32>>();
        let mut mids: Vec<Vec<u32>> = (0..a.num_states())
            .filter(|&s| {
                !a.accepting[s]
                    && a.rule_edges(s as u32).is_empty()
                    && (0..=255u8)
                        .all(|b| (0x80..=0xbf).contains(&b) || a.next_byte(s as u32, b) == DEAD)
                    && a.byte_next.row(s as u32).is_live()
            })
            .map(row)
            .collect();
        let n_mids = mids.len();
        mids.sort_unstable();
        mids.dedup();
        assert!(n_mids > 3, "only {n_mids} states inside a character");
        assert_eq!(mids.len(), n_mids, "states inside a character left apart");
        // The language, against the NFA.
        let mut b = Builder::new(&vocab, &limits, None);
        let mut nfa = Nfa::default();
        let (start, end) = b.frag(&mut nfa, &body).expect("frag");
        nfa.finish();
        let close = |set: &mut Vec<u32>| {
            let mut k = 0;
            while k < set.len() {
                for &(e, t) in nfa.edges(set[k]) {
                    if e == Edge::Eps && !set.contains(&t) {
                        set.push(t);
                    }
                }
                k += 1;
            }
        };
        let nfa_accepts = |text: &[u8]| {
            let mut set = vec![start];
            close(&mut set);
            for &byte in text {
                let mut next: Vec<u32> = Vec::new();
                for &s in &set {
                    for &(e, t) in nfa.edges(s) {
                        if matches!(e, Edge::Bytes(lo, hi) if (lo..=hi).contains(&byte))
                            && !next.contains(&t)
                        {
                            next.push(t);
                        }
                    }
                }
                close(&mut next);
                set = next;
            }
            set.contains(&end)
        };
        let dfa_accepts = |text: &[u8]| {
            let mut q = a.rule_start[a.root as usize];
            for &byte in text {
                q = a.next_byte(q, byte);
                if q == DEAD {
                    return false;
                }
            }
            a.accepting[q as usize]
        };
        let pieces: [&[u8]; 12] = [
            b"a",
            b"b",
            b"c",
            b"x",
            "\u{e9}".as_bytes(),
            "\u{20ac}".as_bytes(),
            "\u{1f600}".as_bytes(),
            "\u{7ff}".as_bytes(),
            "\u{10ffff}".as_bytes(),
            b"\xc3",
            b"\xa9",
            b"\xf0\x9f",
        ];
        let mut rng = crate::xorshift(0x5eed_0fc0de);
        let mut accepted = 0;
        for _ in 0..4000 {
            let len = rng() % 5;
            let mut text: Vec<u8> = (0..len)
                .flat_map(|_| pieces[(rng() % pieces.len() as u64) as usize].to_vec())
                .collect();
            if rng() % 2 == 0 {
                text.push(b'c'); // most accepted strings end so
            }
            let want = nfa_accepts(&text);
            assert_eq!(dfa_accepts(&text), want, "{text:?}");
            accepted += usize::from(want);
        }
        assert!(accepted > 100, "only {accepted} accepted strings");
    }
}
