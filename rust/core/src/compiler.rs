//! Compiling grammar text into a [`CompiledGrammar`]: the automaton plus the
//! lazily filled token-classification cache that every matcher of the
//! grammar shares.
//!
//! The cache maps a DFA state `s` (an item's position inside its rule) to a
//! split of the vocabulary computed by a parser that starts from `s` alone:
//! *accepted* tokens are consumed without leaving the rule instance (so any
//! full parser holding an item at `s` accepts them); *uncertain* tokens make
//! the rule complete part-way through, so what follows depends on the
//! parent and is checked at mask time with the full parser; every other
//! token is rejected by that item.
//!
//! States of register rules (counters, permutations; see
//! [`crate::automaton::RuleKind`]) are classified per register class: a
//! token of at most `L` bytes moves a counter by at most `L`, so counts
//! further than `L` from both bounds behave alike and share one entry.

use crate::automaton::earley::{Item, Parser, Unbounded};
use crate::automaton::RuleKind;
use crate::automaton::{byte_in, Automaton, ByteSet};

/// Every byte: the FOLLOW set of shared lexical entries.
const ANY_BYTE: ByteSet = [u64::MAX; 4];
use crate::error::{Error, ErrorKind, Result};
use crate::grammar::ebnf::parse_gbnf;
use crate::grammar::regex::parse_regex;
use crate::grammar::schema::{builtin_json_grammar, schema_to_grammar, SchemaOptions};
use crate::grammar::Grammar;
use crate::limits::Limits;
use crate::mask::TokenSet;
use crate::trie::QUOTED;
use crate::trie::{ByteStepper, Groups};
use crate::vocab::{TokenId, Vocabulary};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// The classification of the vocabulary for one DFA state.
#[derive(Debug)]
pub struct CacheEntry {
    /// Tokens accepted whatever the rest of the parse stack is (shared by a
    /// shared entry and its FOLLOW-filtered copies, and by a walk's entry
    /// with its reference's where they accept alike).
    pub accepted: Arc<TokenSet>,
    /// Trie ranks (pre-order positions) of tokens the parent context decides, ascending.
    pub uncertain: Vec<u32>,
    /// `accepted` by trie rank, kept once the entry serves as a reference
    /// walk's (see [`CompiledGrammar::classify_lexical`]): copied subtrees
    /// are rank ranges.
    ranks: OnceLock<crate::trie::RankBits>,
    /// For a shared entry walked against a reference: the reference's entry
    /// and the ranges copied from it where nothing was handed over (see
    /// [`CompiledGrammar::classify_lexical_copies`]), so a FOLLOW filter
    /// takes the reference's filtered tokens there.
    via: Option<(Arc<CacheEntry>, Vec<RankRange>)>,
    /// The uncertain tokens split at their completion points, built on the
    /// first hand-over. It depends on what the entry does (the state's
    /// strings and its rule's FOLLOW set), so an entry shared by grammars
    /// shares it: a string value's closing-quote tokens are split once per
    /// compiler, not once per schema (60-90 us each, twice that cold).
    handover: OnceLock<Arc<Handover>>,
}

/// A lexical walk's DFA state with its hand-over flag (see
/// [`CompiledGrammar::classify_lexical_copies`]), in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Side(u64);

impl Side {
    #[inline]
    fn new(state: u32, flag: bool) -> Side {
        Side(u64::from(state) | u64::from(flag) << 32)
    }
    #[inline]
    fn state(self) -> u32 {
        self.0 as u32
    }
    #[inline]
    fn flag(self) -> bool {
        self.0 >> 32 & 1 != 0
    }
    /// This side, reached from the walk's root by bytes of the groups
    /// whose tokens the trie listed for it alone (see `short_run`).
    #[inline]
    fn in_run(self) -> Side {
        Side(self.0 | 1 << 33)
    }
    #[inline]
    fn is_in_run(self) -> bool {
        self.0 >> 33 != 0
    }
}

/// Trie ranks `first..first + len`, as `(first, len)`.
type RankRange = (u32, u32);

/// A grammar compiled against a vocabulary. Immutable apart from its
/// internally synchronised cache; share it across threads with `Arc`.
#[derive(Debug)]
pub struct CompiledGrammar {
    automaton: Automaton,
    vocab: Arc<Vocabulary>,
    cache: Vec<OnceLock<Arc<CacheEntry>>>,
    /// Entries of purely lexical states, shared with the compiler's other grammars.
    lexical: Option<Arc<LexicalCache>>,
    /// Entries of register-rule states, keyed by (state, register class).
    aux_cache: RwLock<FxHashMap<(u32, u64), Arc<CacheEntry>>>,
    /// Parse contexts (see [`CompiledGrammar::context_of`]) and the uncertain
    /// tokens found valid in them.
    contexts: Mutex<Contexts>,
    /// Per lexical reference state (see [`CompiledGrammar::lexical_reference`]),
    /// its shared entry: a reference serves many states (a key complement's
    /// prefixes, a pattern's steps) and its key was computed twice per state
    /// (30 us each for a thousand-state pattern).
    references: Mutex<FxHashMap<u32, Option<Arc<CacheEntry>>>>,
    handed: RwLock<HandedMemo>,
    /// See [`CompiledGrammar::counter_reach`].
    counter_reach: OnceLock<Vec<CounterReach>>,
    /// See [`CompiledGrammar::item_runs`].
    item_runs: OnceLock<Vec<Option<ItemRun>>>,
    /// Byte groups each DFA state reads without dying (subtree absorption).
    closed: ClosedGroups,
    /// Entries with more uncertain tokens hand them over by a walk
    /// ([`WALKED_HANDOVER`]; tests set it to compare both ways).
    walked_handover: usize,
}

/// (state, register class, origin context) to the uncertain tokens found valid.
type HandedMemo = FxHashMap<(u32, u64, u32), Arc<TokenSet>>;

/// A matcher's own copy of the hand-over answers it has used (see
/// [`CompiledGrammar::handed_over`]): a warm mask then reads them without
/// touching the grammar's memo, whose lock word and reference counts every
/// thread filling rows of the grammar would otherwise write (a cache line
/// moved between cores per uncertain item).
#[derive(Clone, Debug, Default)]
pub struct HandedLocal {
    map: HandedMemo,
}

/// Entries a [`HandedLocal`] keeps before it starts over.
const HANDED_LOCAL_MAX: usize = 128;

impl HandedLocal {
    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No answer kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Heap bytes held (the answers themselves are the grammar's).
    pub fn heap_bytes(&self) -> usize {
        self.map.capacity() * (std::mem::size_of::<((u32, u64, u32), Arc<TokenSet>)>() + 1)
    }
}

/// The uncertain tokens of one entry with their completion points: a token
/// is valid through the item iff, at one of them, the rest of the token (its
/// *suffix*) parses after the completion.
#[derive(Debug, Default)]
pub struct Handover {
    /// (token id, bytes before the completion), sorted by suffix when there
    /// are few, else in trie order; a token that stays inside the rule
    /// instance has its whole length.
    tokens: Vec<(TokenId, u32)>,
    /// Per pair, the bytes its suffix shares with the previous pair's (at
    /// most `u16::MAX`): the walk keeps that much of its path.
    shared: Vec<u16>,
}

impl Handover {
    fn heap_bytes(&self) -> usize {
        self.tokens.capacity() * 8 + self.shared.capacity() * 2
    }
}

/// What the bounds of the counters a rule reaches can change in a walk
/// (see [`CompiledGrammar::classify_plain`]).
#[derive(Clone, Debug)]
struct CounterReach {
    /// The smallest maximum (`u32::MAX`: none).
    floor: u32,
    /// The bytes that may follow a counter with a minimum.
    follow: ByteSet,
}

/// A counter whose item is one character-like piece (a DFA with no rule
/// reference, token element or register, ending where it accepts): how
/// many iterations one token can start from the start of an instance
/// (see [`CompiledGrammar::item_runs`]).
#[derive(Clone, Copy, Debug)]
struct ItemRun {
    /// The item rule's start state.
    start: u32,
    /// One more than the most iterations a token starts; counts further
    /// than this from a bound behave alike.
    cap: u32,
}

/// Trie nodes an [`ItemRun`] walk may visit before it gives up (a piece
/// that most words are made of gains nothing, and would walk them all).
const ITEM_RUN_BUDGET: usize = 20_000;

impl CounterReach {
    /// Nothing for bounds to change: no counter reached.
    fn is_none(&self) -> bool {
        self.floor == u32::MAX && self.follow == [0; 4]
    }
}

/// Hand-overs up to this many (token, completion) pairs are parsed directly.
const DIRECT_HANDOVER: usize = 48;

/// Hand-overs up to this many (token, completion) pairs are sorted by suffix.
const SORTED_HANDOVER: usize = 4096;

/// Entries with more uncertain tokens than this hand them over by a walk of
/// the trie in context (see [`CompiledGrammar::handed_over_by_walk`]).
const WALKED_HANDOVER: usize = 4096;

/// Interned parse contexts of one grammar: a context is the kernel items of
/// an Earley set that wait for a rule, with each origin replaced by its own
/// context, so equal contexts parse every continuation alike whatever the
/// positions. Contexts are of origins, which are read only when a rule
/// instance begun there completes, and so only through the items waiting for
/// a rule (the rest are all a matcher's compacted chart keeps of an old set;
/// see [`crate::automaton::earley::Parser::compact`]).
#[derive(Debug, Default)]
struct Contexts {
    ids: FxHashMap<Box<[u32]>, u32>,
    bytes: usize,
}

/// Stop interning contexts and memoising hand-overs past this many bytes per grammar.
pub const CONTEXT_MEMO_BYTES: usize = 8 << 20;

/// Time [`Compiler::compile_regex`] and [`Compiler::compile_gbnf`] spend
/// building state masks ahead (see [`CompiledGrammar::precompute`]).
pub const PRECOMPUTE_BUDGET: std::time::Duration = std::time::Duration::from_millis(20);

/// The bytes a compactly written JSON object starts with (one token in
/// common vocabularies): [`Compiler::compile_json_schema_value`] builds the
/// mask after them, with its hand-overs in the root object's context, since
/// the precompute's state order does not reach a big schema's first key
/// (the step after `{"` was 90-120 µs for a tenth of the comparative
/// benchmark's schemas, a ninth of its masks over 100 µs).
const COMPACT_OBJECT_START: &[u8] = b"{\"";

/// Build the mask after `prefix`, if `g` takes it: the entries, contexts
/// and hand-overs a generation that starts so meets at its next step.
fn warm_after(g: &Arc<CompiledGrammar>, prefix: &[u8]) {
    let mut m = crate::matcher::Matcher::new(Arc::clone(g));
    if m.accept_bytes(prefix) {
        let mut mask = vec![0u32; crate::mask::words_for(g.vocab().vocab_size())];
        m.fill_mask(&mut mask);
    }
}

/// Time [`Compiler::compile_json_schema`] spends building state masks
/// ahead. A schema's states are hundreds to thousands, mostly visited by
/// no generation, and its compile is about a millisecond, so the budget is
/// small: in state order it covers the root rule's first states, which
/// every generation's first steps visit, after idle time with cold caches
/// (their first visits were a third of the benchmark's slow masks). 0.45 ms
/// against 0.3: cold replay p99 103-124 -> 100-102 µs, compile p50 +0.1-0.2 ms.
pub const SCHEMA_PRECOMPUTE_BUDGET: std::time::Duration = std::time::Duration::from_micros(450);

/// The context id of an origin that is its own set (the root item of set 0).
const SELF_CONTEXT: u32 = u32::MAX;
/// Not yet computed, in a matcher's context vector.
pub const UNKNOWN_CONTEXT: u32 = u32::MAX - 1;
/// Not memoisable (the memo is full).
const NO_CONTEXT: u32 = u32::MAX - 2;

impl CompiledGrammar {
    /// Compile an already-built grammar IR.
    pub fn from_grammar(
        grammar: &Grammar,
        vocab: Arc<Vocabulary>,
        limits: &Limits,
        source: Option<&str>,
    ) -> Result<CompiledGrammar> {
        let automaton = Automaton::build(grammar, &vocab, limits, source)?;
        Ok(Self::from_automaton(automaton, vocab))
    }

    fn from_automaton(automaton: Automaton, vocab: Arc<Vocabulary>) -> CompiledGrammar {
        let cache = (0..automaton.num_states())
            .map(|_| OnceLock::new())
            .collect();
        CompiledGrammar {
            automaton,
            vocab,
            cache,
            lexical: None,
            aux_cache: RwLock::default(),
            contexts: Mutex::default(),
            references: Mutex::default(),
            handed: RwLock::default(),
            counter_reach: OnceLock::new(),
            item_runs: OnceLock::new(),
            closed: ClosedGroups::new(),
            walked_handover: WALKED_HANDOVER,
        }
    }

    /// Like [`Self::from_grammar`], taking the grammar (lowered in place, not
    /// copied) and sharing the entries of purely lexical states (see
    /// [`LexicalCache`]) with other grammars of the same vocabulary.
    pub fn from_grammar_shared(
        grammar: Grammar,
        vocab: Arc<Vocabulary>,
        limits: &Limits,
        source: Option<&str>,
        lexical: Arc<LexicalCache>,
    ) -> Result<CompiledGrammar> {
        let automaton = Automaton::build_owned(grammar, &vocab, limits, source)?;
        let mut g = Self::from_automaton(automaton, vocab);
        g.lexical = Some(lexical);
        Ok(g)
    }

    /// The recogniser tables.
    pub fn automaton(&self) -> &Automaton {
        &self.automaton
    }

    /// The vocabulary this grammar was compiled for.
    pub fn vocab(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    /// Number of rules.
    pub fn num_rules(&self) -> usize {
        self.automaton.rule_start.len()
    }

    /// Number of DFA states over all rules.
    pub fn num_states(&self) -> usize {
        self.automaton.num_states()
    }

    /// Name of the root rule.
    pub fn root_name(&self) -> &str {
        &self.automaton.rule_names[self.automaton.root as usize]
    }

    /// Number of filled cache entries and their heap bytes.
    pub fn cache_stats(&self) -> (usize, usize) {
        let size = |e: &CacheEntry| e.accepted.heap_bytes() + e.uncertain.len() * 4;
        let plain = self
            .cache
            .iter()
            .filter_map(OnceLock::get)
            .fold((0, 0), |(n, b), e| (n + 1, b + size(e)));
        let aux = self.aux_cache.read().unwrap_or_else(|p| p.into_inner());
        aux.values()
            .fold(plain, |(n, b), e| (n + 1, b + size(e) + 32))
    }

    /// The cache entry of `state` (a plain-rule state), computing it on first use.
    pub fn entry(&self, state: u32) -> &CacheEntry {
        self.cache[state as usize].get_or_init(|| {
            let a = &self.automaton;
            let follow = &a.follow[a.state_rule[state as usize] as usize];
            self.lexical_entry(state, follow)
                .unwrap_or_else(|| self.classify_plain(state))
        })
    }

    /// The entry of lexical `state` (see [`lexical_key`]) with `follow` as
    /// its rule's FOLLOW set; None if the state is not lexical.
    fn lexical_entry(&self, state: u32, follow: &ByteSet) -> Option<Arc<CacheEntry>> {
        let key = lexical_key(&self.automaton, state)?;
        Some(match &self.lexical {
            Some(shared) => {
                // Shared entries leave every token uncertain that a
                // completion could hand over (FOLLOW = any byte), so they
                // fit any grammar; this grammar's FOLLOW then filters them.
                let e = shared.get_or_insert(key, || {
                    let r = self.reference(state, shared);
                    let (mut ce, clean) = self.classify_lexical_copies(
                        state,
                        &ANY_BYTE,
                        r.as_ref().map(|(r, e)| (*r, &**e)),
                        false,
                    );
                    ce.via = r.map(|(_, e)| (e, clean));
                    ce
                });
                if *follow == ANY_BYTE {
                    return Some(e);
                }
                shared.filtered(&e, follow, || {
                    CacheEntry::sharing(
                        e.accepted.clone(),
                        self.filter_shared(state, follow, &e, shared),
                    )
                })
            }
            None => {
                let r = self
                    .lexical_reference(state)
                    .map(|r| (r, self.classify_lexical(r, follow, None, true)));
                let r = r.as_ref().map(|(r, e)| (*r, e));
                Arc::new(self.classify_lexical(state, follow, r, false))
            }
        })
    }

    /// The entry `state` has with every counter bound ignored
    /// ([`Unbounded::All`]), from the lexical entry of the state of its
    /// rule's relaxed twin ([`Automaton::relaxed`]) that reads the same
    /// language: shared by every grammar of the compiler, where the walk in
    /// Earley mode was 0.4-0.5 ms per state (a string under `maxLength`:
    /// its opening state, and its counter). None without such a state.
    fn relaxed_entry(&self, state: u32) -> Option<Arc<CacheEntry>> {
        let a = &self.automaton;
        let rule = a.state_rule[state as usize] as usize;
        let twin = relaxed_twin_state(a, state)?;
        self.lexical_entry(twin, &a.follow[rule])
    }

    /// The cache entry of a register-rule state with register `aux`.
    pub fn entry_aux(&self, state: u32, aux: u32) -> Arc<CacheEntry> {
        let class = self.aux_class(state, aux);
        if let Some(e) = self.cached_aux(state, class) {
            return e;
        }
        let a = &self.automaton;
        let e = match &a.rule_kind[a.state_rule[state as usize] as usize] {
            RuleKind::Counter { min, item, .. } => {
                let (left, need) = ((class >> 32) as u32, class as u32);
                let cap = self.rule_cap(state);
                // The unbounded entry with the same distance to the minimum.
                let base_class = u64::from(cap) << 32 | u64::from(need);
                let base = match self.cached_aux(state, base_class) {
                    Some(b) => b,
                    None => {
                        let e = self.classify_counter_base(state, *item, min - need, need > 0);
                        self.insert_aux_shared(state, base_class, e)
                    }
                };
                if left >= cap {
                    return base;
                }
                self.narrow(&base, state, aux, left)
            }
            _ => self.classify(state, aux),
        };
        self.insert_aux(state, class, e)
    }

    /// Build the entries of states without a register, in state order, until
    /// `budget` has passed (each entry is built whole; the rest stay lazy).
    pub fn precompute(&self, budget: std::time::Duration) {
        let start = std::time::Instant::now();
        let a = &self.automaton;
        // Relaxed twins are no matcher's states (their entries are built
        // when a walk with bounds ignored asks), unless merged with a rule
        // that is referenced.
        let mut twin = vec![false; a.rule_start.len()];
        for &t in a.relaxed.iter().flatten() {
            twin[t as usize] = t != a.root;
        }
        for &(r, _) in &a.rule_trans {
            twin[r as usize] = false;
        }
        for s in 0..a.num_states() {
            if start.elapsed() > budget {
                break;
            }
            // The states whose entries masks read (see `Matcher::fill_mask`).
            if is_live(a, s as u32) && !a.aux_state[s] && !twin[a.state_rule[s] as usize] {
                let _ = self.entry(s as u32);
            }
        }
    }

    /// Is the entry of `state` (with register `aux`, where the state keeps
    /// one) computed, leaving no token uncertain? A mask from it is then copy
    /// work only.
    pub fn entry_settled(&self, state: u32, aux: Option<u32>) -> bool {
        match aux {
            Some(aux) => self
                .cached_aux(state, self.aux_class(state, aux))
                .is_some_and(|e| e.uncertain.is_empty()),
            None => self.cache[state as usize]
                .get()
                .is_some_and(|e| e.uncertain.is_empty()),
        }
    }

    fn cached_aux(&self, state: u32, class: u64) -> Option<Arc<CacheEntry>> {
        let r = self.aux_cache.read().unwrap_or_else(|p| p.into_inner());
        r.get(&(state, class)).cloned()
    }

    fn insert_aux(&self, state: u32, class: u64, e: CacheEntry) -> Arc<CacheEntry> {
        self.insert_aux_shared(state, class, Arc::new(e))
    }

    fn insert_aux_shared(&self, state: u32, class: u64, e: Arc<CacheEntry>) -> Arc<CacheEntry> {
        let mut w = self.aux_cache.write().unwrap_or_else(|p| p.into_inner());
        w.entry((state, class)).or_insert(e).clone()
    }

    /// Counts further than this from a counter's bounds behave alike.
    fn count_cap(&self) -> u32 {
        (self.vocab.trie().max_depth() as u32).saturating_add(1)
    }

    /// Registers in one class get the same classification (see the module doc).
    fn aux_class(&self, state: u32, aux: u32) -> u64 {
        register_class(
            &self.automaton,
            state,
            aux,
            self.rule_cap(state),
            (true, true),
        )
    }

    /// Counts further than this from the bounds of `state`'s counter behave
    /// alike in its entries: the longest token's length, or for a counter of
    /// a character-like item the most iterations a token can start.
    fn rule_cap(&self, state: u32) -> u32 {
        let rule = self.automaton.state_rule[state as usize] as usize;
        match self.item_runs().get(rule) {
            Some(Some(run)) => run.cap,
            _ => self.count_cap(),
        }
    }

    /// Per rule, for counters of a character-like item (`[0-9a-f]{40}`,
    /// `\d{5}` with its hundreds of UTF-8 states per copy), the
    /// [`ItemRun`]: iterations run from the start of a token, so a token
    /// starts at most as many as its longest leading run of items, and
    /// hex digits or digits make short runs where the longest token is
    /// hundreds of bytes. None where the item is not such a piece, or takes
    /// every lower-case letter, or the walk outgrows [`ITEM_RUN_BUDGET`].
    fn item_runs(&self) -> &[Option<ItemRun>] {
        self.item_runs.get_or_init(|| {
            let a = &self.automaton;
            (0..a.rule_start.len())
                .map(|r| match a.rule_kind[r] {
                    RuleKind::Counter { item, .. } => {
                        let start = a.rule_start[item as usize];
                        if !single_piece(a, start)
                            || (b'a'..=b'z')
                                .all(|b| a.next_byte(start, b) != crate::automaton::DEAD)
                        {
                            return None;
                        }
                        let most = self.item_run_walk(start, None)?;
                        Some(ItemRun {
                            start,
                            cap: (most + 1).min(self.count_cap()),
                        })
                    }
                    _ => None,
                })
                .collect()
        })
    }

    /// A trie walk repeating the piece that starts at `start`: the most
    /// iterations a token starts (None past [`ITEM_RUN_BUDGET`] nodes);
    /// with `mark = (n, ranks)`, it adds the ranks of the tokens that start
    /// iteration `n + 1` instead.
    fn item_run_walk(
        &self,
        start: u32,
        mut mark: Option<(u32, &mut crate::trie::RankBits)>,
    ) -> Option<u32> {
        use crate::automaton::DEAD;
        use crate::trie::Step;
        let a = &self.automaton;
        let n = mark.as_ref().map_or(u32::MAX, |m| m.0);
        let (mut most, mut visited) = (0u32, 0usize);
        self.vocab.trie().walk_states(
            (start, 0u32),
            |&(q, k), byte, _, _| {
                visited += 1;
                if visited > ITEM_RUN_BUDGET {
                    return Step::Dead;
                }
                let k = k + u32::from(q == start);
                let t = a.next_byte(q, byte);
                if t == DEAD {
                    return Step::Dead;
                }
                most = most.max(k);
                if k > n {
                    return Step::Copy;
                }
                Step::Live((if a.accepting[t as usize] { start } else { t }, k))
            },
            |_, _| None,
            |_, _| {},
            |_, _, _, _, _| {},
            |_, toks, first| {
                if let Some((_, ranks)) = mark.as_mut() {
                    ranks.set_range(first, first + toks.len() as u32);
                }
            },
        );
        (visited <= ITEM_RUN_BUDGET).then_some(most)
    }

    /// The entry of a counter state with only `left` iterations left, from
    /// its unbounded entry: a token of at most `left` bytes starts at most
    /// `left` iterations, so only longer tokens can change; they are
    /// classified again.
    fn narrow(&self, base: &CacheEntry, state: u32, aux: u32, left: u32) -> CacheEntry {
        let rule = self.automaton.state_rule[state as usize] as usize;
        let again = match self.item_runs().get(rule) {
            // Only tokens that start iteration `left + 1` can change.
            Some(Some(run)) => {
                let mut again = crate::trie::RankBits::new(self.vocab.trie());
                // It stops below iteration `left + 1`, so it visits fewer
                // nodes than the walk that found the run (within budget).
                let within = self.item_run_walk(run.start, Some((left, &mut again)));
                debug_assert!(within.is_some(), "marking walk past its budget");
                again
            }
            _ => self.recheck_set(&CounterReach {
                floor: left,
                follow: [0; 4],
            }),
        };
        self.reclassify(base, state, aux, &again, Unbounded::None)
    }

    /// `base` with the tokens whose ranks are in `again` classified again by
    /// the parser from `state` (with register `aux`) with the bounds `mode`
    /// keeps. Only tokens `base` accepts or leaves uncertain are walked:
    /// `base` comes from a parser that accepts at least as much.
    fn reclassify(
        &self,
        base: &CacheEntry,
        state: u32,
        aux: u32,
        again: &crate::trie::RankBits,
        mode: Unbounded,
    ) -> CacheEntry {
        let trie = self.vocab.trie();
        let order = trie.tokens_in_order();
        let words = crate::mask::words_for(self.vocab.vocab_size());
        let mut recheck: Vec<u32> = Vec::new();
        // The accepted tokens kept, as the base holds them: a short list
        // is filtered token by token, bits by the ranks of `again`.
        let mut accepted = match &*base.accepted {
            TokenSet::List(ids) => {
                let mut kept = Vec::with_capacity(ids.len());
                for &id in ids {
                    match trie.rank(id) {
                        Some(r) if again.contains(r) => recheck.push(r),
                        _ => kept.push(id),
                    }
                }
                TokenSet::List(kept)
            }
            TokenSet::Bits(b) => {
                let mut bits = b.clone();
                for r in again.iter() {
                    let id = order[r as usize];
                    if crate::mask::get_bit(&bits, id) {
                        bits[(id / 32) as usize] &= !(1 << (id % 32));
                        recheck.push(r);
                    }
                }
                TokenSet::Bits(bits)
            }
        };
        let mut uncertain: Vec<u32> = Vec::with_capacity(base.uncertain.len());
        for &r in &base.uncertain {
            if again.contains(r) {
                recheck.push(r);
            } else {
                uncertain.push(r);
            }
        }
        recheck.sort_unstable();
        let a = &self.automaton;
        let mut st = LocalStepper::new(
            a,
            Parser::starting_at_unbounded(a, state, aux, mode),
            state,
            self.count_cap(),
        );
        // A few tokens share little but their prefixes, which the parser's
        // sets keep anyway: interning each set would cost more than the
        // memo saves (the longest whitespace tokens, rechecked against a
        // 64-space limit, made 65 sets of one walk).
        st.memo_off = recheck.len() <= DIRECT_RECHECK;
        let mut pushed: &[u8] = &[];
        for &r in &recheck {
            let t = self.vocab.token_bytes(order[r as usize]);
            let depth = st.retarget(pushed, t);
            if depth == t.len() {
                match &mut accepted {
                    TokenSet::List(ids) => ids.push(order[r as usize]),
                    TokenSet::Bits(bits) => crate::mask::set_bit(bits, order[r as usize]),
                }
            } else if st.num_completed > 0 && st.may_continue_in_parent(depth + 1) {
                uncertain.push(r);
            }
            pushed = &t[..depth];
        }
        uncertain.sort_unstable();
        let accepted = match accepted {
            TokenSet::List(mut ids) if ids.len() < words => {
                ids.sort_unstable();
                TokenSet::List(ids)
            }
            TokenSet::List(ids) => {
                let mut bits = vec![0u32; words];
                ids.iter()
                    .for_each(|&id| crate::mask::set_bit(&mut bits, id));
                TokenSet::Bits(bits)
            }
            TokenSet::Bits(bits) => TokenSet::from_bits(bits),
        };
        CacheEntry::new(accepted, uncertain)
    }

    /// [`Self::classify`] for a plain state. Where the state's rule reaches
    /// counters (strings under `maxLength` or `minLength`), bounded counts
    /// make every trie node up to the bound a new parse context, so the walk
    /// visits the whole trie to that depth. It runs instead with every
    /// counter's bounds ignored ([`Unbounded::All`]): contexts repeat from
    /// character to character and subtrees are skipped. That classifies a
    /// token alike unless it is longer than the smallest maximum reached or
    /// holds a byte that may follow a counter with a minimum (an instance
    /// ended early acts only through such a byte); those few are classified
    /// again with the bounds.
    fn classify_plain(&self, state: u32) -> Arc<CacheEntry> {
        self.classify_plain_by(state, true)
    }

    /// [`Self::classify_plain`], the walk with bounds ignored answered from
    /// a relaxed twin where there is one if `twins` (else walked: the
    /// tests' reference).
    fn classify_plain_by(&self, state: u32, twins: bool) -> Arc<CacheEntry> {
        let a = &self.automaton;
        let reach = &self.counter_reach()[a.state_rule[state as usize] as usize];
        if reach.is_none() || !self.relaxed_pays(reach) {
            return Arc::new(self.classify(state, 0));
        }
        let again = self.recheck_set(reach);
        match twins.then(|| self.relaxed_entry(state)).flatten() {
            Some(base) => self.reclassify_shared(base, state, 0, &again, Unbounded::None),
            None => Arc::new(self.classify_relaxed(state, &again)),
        }
    }

    /// [`Self::reclassify`], sharing `base` when nothing is to be classified again.
    fn reclassify_shared(
        &self,
        base: Arc<CacheEntry>,
        state: u32,
        aux: u32,
        again: &crate::trie::RankBits,
        mode: Unbounded,
    ) -> Arc<CacheEntry> {
        if again.is_empty() {
            return base;
        }
        Arc::new(self.reclassify(&base, state, aux, again, mode))
    }

    /// Would a walk with counter bounds ignored leave few tokens to classify
    /// again (at most an eighth of the vocabulary, by an upper bound)?
    fn relaxed_pays(&self, reach: &CounterReach) -> bool {
        let trie = self.vocab.trie();
        let mut bound = trie.count_with_byte_bound(|b| byte_in(&reach.follow, b));
        if reach.floor < self.count_cap() {
            bound += trie.ranks_longer_than(reach.floor as usize).len();
        }
        bound * 8 <= trie.tokens_in_order().len()
    }

    /// The tokens a walk with counter bounds ignored may classify wrongly
    /// for a state whose rule reaches `reach` (see [`Self::classify_plain`]):
    /// those longer than its floor (below the count cap) and those with a
    /// byte of its FOLLOW set.
    fn recheck_set(&self, reach: &CounterReach) -> crate::trie::RankBits {
        let trie = self.vocab.trie();
        let mut again = if reach.follow == [0; 4] {
            crate::trie::RankBits::new(trie)
        } else {
            (*trie.ranks_with_bytes(reach.follow)).clone()
        };
        if reach.floor < self.count_cap() {
            for &r in trie.ranks_longer_than(reach.floor as usize) {
                again.set(r);
            }
        }
        again
    }

    /// [`Self::classify_plain`]'s walk with counter bounds ignored, then the
    /// tokens of `again` classified again with them.
    fn classify_relaxed(&self, state: u32, again: &crate::trie::RankBits) -> CacheEntry {
        let p = Parser::starting_at_unbounded(&self.automaton, state, 0, Unbounded::All);
        let base = self.classify_with(p, state);
        self.reclassify(&base, state, 0, again, Unbounded::None)
    }

    /// The entry of counter `state` (repeating `item`) at count `aux` with
    /// its own maximum ignored ([`Unbounded::Seed`]): the base that
    /// [`Self::narrow`] narrows. Counters inside the items would make every
    /// node a new context, so, as in [`Self::classify_plain`], the walk
    /// ignores every bound and the tokens that may differ are classified
    /// again; the instance's own minimum (`has_min`: not reached yet) only
    /// decides where it may end, which matters through a byte of its FOLLOW set.
    fn classify_counter_base(
        &self,
        state: u32,
        item: u32,
        aux: u32,
        has_min: bool,
    ) -> Arc<CacheEntry> {
        // What a walk with every bound ignored can get wrong: the tokens
        // the bounds inside the items can change, and, below the minimum,
        // those holding a byte that may follow the instance.
        let reach = self.counter_base_reach(state, item, has_min);
        let relaxed_reach = match (&reach, has_min) {
            (None, true) => Some(CounterReach {
                floor: u32::MAX,
                follow: self.automaton.follow[self.automaton.state_rule[state as usize] as usize],
            }),
            _ => reach.clone(),
        };
        if relaxed_reach
            .as_ref()
            .map_or(true, |r| self.relaxed_pays(r))
        {
            if let Some(base) = self.relaxed_entry(state) {
                return match relaxed_reach {
                    Some(r) => {
                        let again = self.recheck_set(&r);
                        self.reclassify_shared(base, state, aux, &again, Unbounded::Seed)
                    }
                    None => base,
                };
            }
        }
        Arc::new(self.counter_base_walked(state, item, aux, has_min))
    }

    /// [`Self::classify_counter_base`] without relaxed twins: the walks.
    fn counter_base_walked(&self, state: u32, item: u32, aux: u32, has_min: bool) -> CacheEntry {
        match self.counter_base_reach(state, item, has_min) {
            Some(reach) if self.relaxed_pays(&reach) => {
                self.relaxed_counter_base(state, aux, &self.recheck_set(&reach))
            }
            _ => {
                let p = Parser::starting_at_unbounded(&self.automaton, state, aux, Unbounded::Seed);
                self.classify_with(p, state)
            }
        }
    }

    /// What the bounds [`Self::relaxed_counter_base`] ignores can change
    /// (see [`Self::recheck_set`]); None when no bound inside the items
    /// can change a walk.
    fn counter_base_reach(&self, state: u32, item: u32, has_min: bool) -> Option<CounterReach> {
        let a = &self.automaton;
        let mut reach = self.counter_reach()[item as usize].clone();
        if reach.is_none() {
            return None;
        }
        if has_min {
            let own = a.follow[a.state_rule[state as usize] as usize];
            for (w, x) in reach.follow.iter_mut().zip(own) {
                *w |= x;
            }
        }
        Some(reach)
    }

    /// [`Self::classify_counter_base`]'s walk with every bound ignored, then
    /// the tokens of `again` classified again with all but the instance's
    /// own maximum.
    fn relaxed_counter_base(
        &self,
        state: u32,
        aux: u32,
        again: &crate::trie::RankBits,
    ) -> CacheEntry {
        let p = Parser::starting_at_unbounded(&self.automaton, state, aux, Unbounded::All);
        let base = self.classify_with(p, state);
        self.reclassify(&base, state, aux, again, Unbounded::Seed)
    }

    /// Per rule, what its counters' bounds can change (see [`CounterReach`]),
    /// over the rules it reaches through rule references, itself included.
    fn counter_reach(&self) -> &[CounterReach] {
        self.counter_reach.get_or_init(|| {
            let a = &self.automaton;
            let mut reach: Vec<CounterReach> = (0..a.rule_start.len())
                .map(|r| match a.rule_kind[r] {
                    RuleKind::Counter { min, max, .. } => CounterReach {
                        floor: max,
                        follow: if min > 0 { a.follow[r] } else { [0; 4] },
                    },
                    _ => CounterReach {
                        floor: u32::MAX,
                        follow: [0; 4],
                    },
                })
                .collect();
            let edges: Vec<(u32, u32)> = (0..a.num_states() as u32)
                .flat_map(|s| {
                    a.rule_edges(s)
                        .iter()
                        .map(move |&(r, _)| (a.state_rule[s as usize], r))
                })
                .collect();
            // Relax to the fixpoint (rule graphs are shallow).
            let mut changed = true;
            while changed {
                changed = false;
                for &(from, to) in &edges {
                    let (f, t) = (from as usize, to as usize);
                    let floor = reach[t].floor.min(reach[f].floor);
                    let mut follow = reach[f].follow;
                    for (w, x) in follow.iter_mut().zip(reach[t].follow) {
                        *w |= x;
                    }
                    if floor != reach[f].floor || follow != reach[f].follow {
                        reach[f] = CounterReach { floor, follow };
                        changed = true;
                    }
                }
            }
            reach
        })
    }

    fn classify(&self, state: u32, aux: u32) -> CacheEntry {
        self.classify_with(Parser::starting_at(&self.automaton, state, aux), state)
    }

    /// [`Self::classify`] for a state whose rule reaches no rule reference,
    /// token element or register from it: the rule's DFA alone decides, so
    /// the walk needs no parser. Per prefix it keeps the DFA state and
    /// whether the rule could already have ended with the next byte in its
    /// FOLLOW set (what makes a refused token uncertain, as in
    /// [`LocalStepper::may_continue_in_parent`]).
    ///
    /// With a `reference` (another lexical state of this automaton and its
    /// entry, computed with the same FOLLOW set) the walk follows both
    /// states; below a node where they reach the same DFA state with the same
    /// hand-over flag, every token is classified alike, so the subtree is
    /// copied from the reference entry instead of walked. A key complement's
    /// first state goes to the shared `.*` tail on every byte that starts no
    /// known key, so only the known keys' subtrees are walked.
    fn classify_lexical(
        &self,
        state: u32,
        follow: &ByteSet,
        reference: Option<(u32, &CacheEntry)>,
        keep_ranks: bool,
    ) -> CacheEntry {
        self.classify_lexical_copies(state, follow, reference, keep_ranks)
            .0
    }

    /// [`Self::classify_lexical`], and the rank ranges copied from the
    /// reference below a node the rule could not have ended before (no
    /// hand-over flag there, nor at its parent): there a FOLLOW filter
    /// keeps what it keeps of the reference's, since both walks are in one
    /// DFA state with nothing handed over.
    fn classify_lexical_copies(
        &self,
        state: u32,
        follow: &ByteSet,
        reference: Option<(u32, &CacheEntry)>,
        keep_ranks: bool,
    ) -> (CacheEntry, Vec<RankRange>) {
        use crate::automaton::DEAD;
        use crate::trie::Step;
        let a = &self.automaton;
        let trie = self.vocab.trie();
        // Bits where ranges are copied from a reference or kept for one;
        // else ranges (a small walk's result then costs its own size).
        // A state inside a short string: the trie lists what it accepts of
        // the tokens without escapes or quotes, and the walk visits only
        // the subtrees that hold one. Likewise a count of letters and
        // digits (`[0-9A-Za-z]{8}`) and the words.
        let (run_groups, short) = match reference {
            None => {
                let high = self.closed.high.get_or_init(|| high_bytes(a));
                let (groups, invalid) = self
                    .closed
                    .short
                    .get_or_init(|| (class_groups(a), invalid_bytes(a)));
                let unquoted = crate::trie::ALL_GROUPS & !QUOTED;
                short_run(a, groups, high, invalid, state, unquoted)
                    .map(|n| (unquoted, n))
                    .or_else(|| {
                        let words = word_groups(a, groups, state)?;
                        short_run(a, groups, high, invalid, state, words).map(|n| (words, n))
                    })
                    .and_then(|(g, n)| Some((g, Some(trie.within(g, n)?))))
                    .unwrap_or((0, None))
            }
            Some(_) => (0, None),
        };
        let mut accepted = if reference.is_some() || keep_ranks || short.is_some() {
            crate::trie::RankSet::Bits(crate::trie::RankBits::new(trie))
        } else {
            crate::trie::RankSet::Ranges(Vec::new())
        };
        let mut uncertain: Vec<u32> = Vec::new();
        // Could the parent take over before this byte's successor?
        let could_hand_over = |q: u32, flag: bool, byte: u8, depth: usize| {
            flag || depth >= 2 && a.accepting[q as usize] && byte_in(follow, byte)
        };
        let mut copies: Vec<RankRange> = Vec::new();
        let mut clean: Vec<RankRange> = Vec::new();
        let mut loop_cache = LoopCache::new(Some(&self.closed));
        // (DFA state, its hand-over flag) and the reference's, each packed
        // in a word (see `Side`): a walk copies the pair at every node, and
        // a tuple of two u32 and two bools stored field by field, then
        // loaded whole, stalled store forwarding (8% of a full walk).
        let root = (
            if short.is_some() {
                Side::new(state, false).in_run()
            } else {
                Side::new(state, false)
            },
            Side::new(reference.map_or(DEAD, |r| r.0), false),
        );
        // The bytes of each byte class.
        let mut class_bytes: Vec<ByteSet> = vec![[0; 4]; a.num_classes];
        for b in 0..=255u8 {
            let c = a.class_of[b as usize] as usize;
            class_bytes[c][(b >> 6) as usize] |= 1 << (b & 63);
        }
        // Below a node where the walk and the reference are apart, the
        // children that can differ are those of bytes leading the two to
        // different states or hand-over flags (a key's next letters); the
        // others are copies, skipped unvisited.
        let sparse = |&(p, r): &(Side, Side), depth: usize| {
            if r.state() == DEAD {
                return None;
            }
            let (rq, rr) = (a.byte_next.row(p.state()), a.byte_next.row(r.state()));
            let mut d: ByteSet = [0; 4];
            let mut differ = |bytes: &ByteSet| {
                for w in 0..4 {
                    d[w] |= bytes[w];
                }
            };
            if let (Some(q), Some(r)) = (rq.as_slice(), rr.as_slice()) {
                for ((q, r), bytes) in q.iter().zip(r).zip(&class_bytes) {
                    if q != r {
                        differ(bytes);
                    }
                }
            } else {
                // Banded rows: outside both bands both are dead.
                let (sq, sr) = (rq.span(), rr.span());
                let (lo, hi) = (sq.start.min(sr.start), sq.end.max(sr.end));
                for (c, bytes) in class_bytes.iter().enumerate().take(hi).skip(lo) {
                    if rq.get(c) != rr.get(c) {
                        differ(bytes);
                    }
                }
            }
            // The children's hand-over flags (see `could_hand_over`).
            let flags = |q: u32, flag: bool| {
                if flag {
                    ANY_BYTE
                } else if depth >= 1 && a.accepting[q as usize] {
                    *follow
                } else {
                    [0; 4]
                }
            };
            let (fq, fr) = (flags(p.state(), p.flag()), flags(r.state(), r.flag()));
            for w in 0..4 {
                d[w] |= fq[w] ^ fr[w];
            }
            (d.iter().map(|w| w.count_ones()).sum::<u32>() < 128).then_some(d)
        };
        trie.walk_states(
            root,
            |&(p, r), byte, depth, below| {
                let t = a.next_byte(p.state(), byte);
                if t == DEAD {
                    return Step::Dead;
                }
                let in_run = p.is_in_run() && crate::trie::byte_group(byte) & !run_groups == 0;
                if in_run && below & crate::trie::ALL_GROUPS & !run_groups == 0 {
                    // `short` holds this subtree's outcome; the skip hands
                    // nothing over (no state on the way accepts).
                    return Step::Dead;
                }
                // The state takes every byte found below back to itself:
                // every token of the subtree stays inside (words in a string).
                // Not asked beside a live reference: there the walk visits
                // only the children where the two differ (a key's next
                // letters), cheaper than the searches an answer may need.
                if below & crate::trie::ALL_GROUPS != 0
                    && r.state() == DEAD
                    && loop_cache.absorbs(a, t, below)
                {
                    return Step::Accept;
                }
                let mut next = Side::new(t, could_hand_over(p.state(), p.flag(), byte, depth));
                if in_run {
                    next = next.in_run();
                }
                let rnext = if r.state() == DEAD {
                    r
                } else {
                    let rt = a.next_byte(r.state(), byte);
                    Side::new(rt, could_hand_over(r.state(), r.flag(), byte, depth))
                };
                if rnext == next {
                    Step::Copy
                } else {
                    Step::Live((next, rnext))
                }
            },
            sparse,
            |toks, first| {
                if !toks.is_empty() {
                    accepted.push(trie, first, toks.len() as u32);
                }
            },
            |(p, _), byte, depth, toks, first| {
                if could_hand_over(p.state(), p.flag(), byte, depth) {
                    uncertain.extend(first..first + toks.len() as u32);
                }
            },
            |(p, _), toks, first| {
                // Pre-order: sibling subtrees copied one after another are
                // one range of ranks.
                let len = toks.len() as u32;
                match copies.last_mut() {
                    Some(last) if last.0 + last.1 == first => last.1 += len,
                    _ => copies.push((first, len)),
                }
                if !p.flag() && !a.accepting[p.state() as usize] {
                    match clean.last_mut() {
                        Some(last) if last.0 + last.1 == first => last.1 += len,
                        _ => clean.push((first, len)),
                    }
                }
            },
        );
        if let (Some(short), crate::trie::RankSet::Bits(accepted)) = (short, &mut accepted) {
            accepted.union_with(&short);
        }
        if let (Some((_, e)), crate::trie::RankSet::Bits(accepted)) = (reference, &mut accepted) {
            let from = e.ranks(trie);
            for &(first, len) in &copies {
                accepted.copy_range(from, first, first + len);
                let a = e.uncertain.partition_point(|&r| r < first);
                let b = e.uncertain.partition_point(|&r| r < first + len);
                uncertain.extend_from_slice(&e.uncertain[a..b]);
            }
            uncertain.sort_unstable();
        }
        let e = match accepted {
            crate::trie::RankSet::Bits(bits) => {
                let words = crate::mask::words_for(self.vocab.vocab_size());
                // Accepting what the reference accepts (a key complement's
                // first states, whose known keys differ only in what follows
                // them): its set, not a scatter of ranks into a new one.
                let e = match reference {
                    Some((_, r)) if *r.ranks(trie) == bits => {
                        CacheEntry::sharing(r.accepted.clone(), uncertain)
                    }
                    _ => CacheEntry::new(trie.token_set_of_bits(&bits, words), uncertain),
                };
                if keep_ranks {
                    let _ = e.ranks.set(bits);
                }
                e
            }
            ranges => {
                let words = crate::mask::words_for(self.vocab.vocab_size());
                CacheEntry::new(ranges.into_token_set(trie, words), uncertain)
            }
        };
        (e, clean)
    }

    /// The reference of lexical `state` (see [`Self::lexical_reference`])
    /// with its shared entry.
    fn reference(&self, state: u32, shared: &LexicalCache) -> Option<(u32, Arc<CacheEntry>)> {
        let r = self.lexical_reference(state)?;
        Some((r, self.reference_entry(r, shared)?))
    }

    /// The shared entry of reference state `r`, computed as if any byte
    /// could follow (None where `r` is not lexical); memoised per grammar.
    fn reference_entry(&self, r: u32, shared: &LexicalCache) -> Option<Arc<CacheEntry>> {
        let known = |m: &FxHashMap<u32, Option<Arc<CacheEntry>>>| m.get(&r).cloned();
        if let Some(e) = self.references.lock().ok().and_then(|m| known(&m)) {
            return e;
        }
        let e = lexical_key(&self.automaton, r).map(|key| {
            shared.get_or_insert(key, || self.classify_lexical(r, &ANY_BYTE, None, true))
        });
        if let Ok(mut m) = self.references.lock() {
            return m.entry(r).or_insert(e).clone();
        }
        e
    }

    /// A reference for [`Self::classify_lexical`] of lexical `state`: the
    /// state most bytes lead to, when it loops on at least 32 of those bytes
    /// itself (so both walks meet after one byte) and has no reference of
    /// its own (no chains).
    fn lexical_reference(&self, state: u32) -> Option<u32> {
        let a = &self.automaton;
        // (run length, class) over the byte class runs.
        let runs = class_runs(a);
        let runs: Vec<(usize, usize)> = runs
            .iter()
            .enumerate()
            .map(|(k, &(b, c))| {
                let end = runs.get(k + 1).map_or(256, |r| r.0);
                ((end - b) as usize, c as usize)
            })
            .collect();
        let next = |q: u32, c: usize| a.byte_next.get(q, c);
        let agreeing = |q: u32, r: u32| {
            runs.iter()
                .filter(|&&(_, c)| next(q, c) == r && next(r, c) == r)
                .map(|&(n, _)| n)
                .sum::<usize>()
        };
        let best = |q: u32| {
            let mut count: FxHashMap<u32, usize> = FxHashMap::default();
            for &(n, c) in &runs {
                let t = next(q, c);
                if t != crate::automaton::DEAD && t != q {
                    *count.entry(t).or_default() += n;
                }
            }
            let r = count
                .into_iter()
                .max_by_key(|&(t, n)| (n, std::cmp::Reverse(t)))?
                .0;
            (agreeing(q, r) >= 32).then_some(r)
        };
        best(state).filter(|&r| best(r).is_none())
    }

    /// The uncertain tokens of shared entry `e` of lexical `state` that
    /// this grammar's FOLLOW set keeps ([`Self::hand_over`]). Where `e` was
    /// walked against a reference (this grammar's reference of `state` has
    /// that entry), the ranges copied with nothing handed over keep what
    /// the reference's filtered entry keeps (memoised in `shared`): a key
    /// complement's 1,151 tokens that go on past a closing quote are then
    /// filtered once per compiler, not once per schema.
    fn filter_shared(
        &self,
        state: u32,
        follow: &ByteSet,
        e: &CacheEntry,
        shared: &LexicalCache,
    ) -> Vec<u32> {
        let via = e.via.as_ref().and_then(|(re, clean)| {
            let (r, x) = self.reference(state, shared)?;
            Arc::ptr_eq(&x, re).then_some((r, re, clean))
        });
        let Some((r, re, clean)) = via else {
            return self.hand_over(state, follow, &e.uncertain);
        };
        let rf = shared.filtered(re, follow, || {
            CacheEntry::sharing(
                re.accepted.clone(),
                self.hand_over(r, follow, &re.uncertain),
            )
        });
        let inside = |x: u32| {
            let k = clean.partition_point(|&(first, _)| first <= x);
            k > 0 && x < clean[k - 1].0 + clean[k - 1].1
        };
        let outside: Vec<u32> = e
            .uncertain
            .iter()
            .copied()
            .filter(|&x| !inside(x))
            .collect();
        let walked = self.hand_over(state, follow, &outside);
        let mut kept: Vec<u32> = rf
            .uncertain
            .iter()
            .copied()
            .filter(|&x| inside(x))
            .collect();
        kept.extend(walked);
        kept.sort_unstable();
        kept
    }

    /// The tokens (trie ranks) of `uncertain` that the rule of lexical
    /// `state` could hand over to a parent whose next byte is in `follow`:
    /// the walk of [`Self::classify_lexical`] for these tokens alone.
    fn hand_over(&self, state: u32, follow: &ByteSet, uncertain: &[u32]) -> Vec<u32> {
        let trie = self.vocab.trie();
        let mut st = FollowFilter {
            a: &self.automaton,
            follow,
            path: vec![(state, false)],
        };
        let mut kept = crate::trie::RankBits::new(trie);
        trie.walk_within(&mut st, uncertain, |st, _, toks, first| {
            if st.path[st.path.len() - 1].1 {
                kept.set_range(first, first + toks.len() as u32);
            }
        });
        uncertain
            .iter()
            .copied()
            .filter(|&r| kept.contains(r))
            .collect()
    }

    /// Classify the vocabulary with `parser`, seeded at `state`.
    fn classify_with(&self, parser: Parser, state: u32) -> CacheEntry {
        let mut stepper = LocalStepper::new(&self.automaton, parser, state, self.count_cap());
        stepper.dfa_loops.closed = Some(&self.closed);
        let trie = self.vocab.trie();
        // Ranks, not ids: accepted subtrees are ranges of ranks, met in order.
        let mut accepted = crate::trie::RankSet::Ranges(Vec::new());
        let mut uncertain: Vec<u32> = Vec::new();
        let order = trie.tokens_in_order();
        trie.walk(
            &mut stepper,
            |_, _, toks, first| {
                if !toks.is_empty() {
                    accepted.push(trie, first, toks.len() as u32);
                }
            },
            |st, depth, toks, first| {
                // The rule could end strictly inside the token: the parent decides,
                // unless no byte after any completion point can follow the rule.
                if st.num_completed > 0 && st.may_continue_in_parent(depth) {
                    uncertain.extend(first..first + toks.len() as u32);
                }
            },
        );
        debug_assert!(uncertain.iter().all(|&r| (r as usize) < order.len()));
        let words = crate::mask::words_for(self.vocab.vocab_size());
        CacheEntry::new(accepted.into_token_set(trie, words), uncertain)
    }

    /// The context id of set `p` of `parser` (see [`Contexts`]), memoised
    /// per set in `ids` (the caller's; it must drop the ids of sets the
    /// parser truncates). None once the grammar's memo is full.
    pub fn context_of(&self, parser: &Parser, p: usize, ids: &mut Vec<u32>) -> Option<u32> {
        if ids.len() < parser.num_sets() {
            ids.resize(parser.num_sets(), UNKNOWN_CONTEXT);
        }
        // Known already: the mask-time path, which must not allocate.
        match ids[p] {
            NO_CONTEXT => return None,
            UNKNOWN_CONTEXT => {}
            c => return Some(c),
        }
        let mut stack = vec![p];
        let mut rows: Vec<[u32; 4]> = Vec::new();
        while let Some(&q) = stack.last() {
            if ids[q] != UNKNOWN_CONTEXT {
                stack.pop();
                continue;
            }
            let a = &self.automaton;
            let kernel = || {
                parser
                    .set(q)
                    .iter()
                    .filter(|it| it.kernel && !a.rule_edges(it.state).is_empty())
            };
            // Origins first (they are earlier sets, so this ends).
            if let Some(it) = kernel()
                .find(|it| it.origin as usize != q && ids[it.origin as usize] == UNKNOWN_CONTEXT)
            {
                stack.push(it.origin as usize);
                continue;
            }
            rows.clear();
            let mut full = false;
            for it in kernel() {
                let o = it.origin as usize;
                let c = if o == q { SELF_CONTEXT } else { ids[o] };
                full |= c == NO_CONTEXT;
                // Registers by class: continuations of at most `L` bytes
                // cannot tell counts of one class apart.
                let class = self.aux_class(it.state, it.aux);
                rows.push([it.state, (class >> 32) as u32, class as u32, c]);
            }
            ids[q] = if full {
                NO_CONTEXT
            } else {
                self.intern(&mut rows)
            };
            stack.pop();
        }
        (ids[p] != NO_CONTEXT).then_some(ids[p])
    }

    fn intern(&self, rows: &mut [[u32; 4]]) -> u32 {
        rows.sort_unstable();
        let key: &[u32] = rows.as_flattened();
        let Ok(mut c) = self.contexts.lock() else {
            return NO_CONTEXT;
        };
        if let Some(&id) = c.ids.get(key) {
            return id;
        }
        let size = key.len() * 4 + 32;
        if c.bytes + size > CONTEXT_MEMO_BYTES || c.ids.len() >= NO_CONTEXT as usize {
            return NO_CONTEXT;
        }
        let id = c.ids.len() as u32;
        c.ids.insert(key.into(), id);
        c.bytes += size;
        id
    }

    /// The uncertain tokens of kernel item `it` (whose entry lists
    /// `uncertain`) that the current parse accepts, with `ctx` the context of
    /// the item's origin set. The parser is left as it was. Answers with a
    /// context come from (and go to) `local` first, then the grammar's memo.
    ///
    /// A token is valid through the item iff it stays inside the rule
    /// instance (then it would be accepted, not uncertain) or, at one of its
    /// completion points, its suffix parses from the set the completion
    /// makes: the item's parents in the origin set, advanced. That set
    /// depends only on the origin's context, so the answer is memoised by
    /// (state, register class, context).
    pub fn handed_over<'l>(
        &self,
        parser: &mut Parser,
        it: Item,
        entry: &CacheEntry,
        ctx: Option<u32>,
        local: &'l mut HandedLocal,
    ) -> std::borrow::Cow<'l, TokenSet> {
        use std::borrow::Cow;
        let class = self.aux_class(it.state, it.aux);
        let Some(c) = ctx else {
            return Cow::Owned(Arc::unwrap_or_clone(
                self.handed_over_shared(parser, it, entry, class, None),
            ));
        };
        let key = (it.state, class, c);
        if local.map.len() >= HANDED_LOCAL_MAX && !local.map.contains_key(&key) {
            local.map.clear();
        }
        // One hash lookup when the matcher has the answer (a warm mask).
        Cow::Borrowed(local.map.entry(key).or_insert_with(|| {
            let known = {
                let memo = self.handed.read().unwrap_or_else(|p| p.into_inner());
                memo.get(&key).cloned()
            };
            known.unwrap_or_else(|| self.handed_over_shared(parser, it, entry, class, ctx))
        }))
    }

    /// A walk for [`Self::handed_over`] (`class`: the item's register
    /// class), kept in the grammar's memo when `ctx` is known.
    fn handed_over_shared(
        &self,
        parser: &mut Parser,
        it: Item,
        entry: &CacheEntry,
        class: u64,
        ctx: Option<u32>,
    ) -> Arc<TokenSet> {
        let uncertain = &entry.uncertain;
        let valid = if uncertain.len() > self.walked_handover {
            self.handed_over_by_walk(parser, it, uncertain)
        } else {
            self.handed_over_by_suffix(parser, it, entry)
        };
        let valid = Arc::new(valid);
        if let Some(c) = ctx {
            let size = valid.heap_bytes() + 48;
            if let Ok(mut counted) = self.contexts.lock() {
                if counted.bytes + size <= CONTEXT_MEMO_BYTES {
                    counted.bytes += size;
                    drop(counted);
                    let mut memo = self.handed.write().unwrap_or_else(|p| p.into_inner());
                    memo.insert((it.state, class, c), Arc::clone(&valid));
                }
            }
        }
        valid
    }

    /// [`Self::handed_over`] for many uncertain tokens: one walk of the
    /// trie from a set holding `it` alone, on top of the real parse, into
    /// the subtrees that hold an uncertain token. Every token that walk
    /// accepts is valid through `it` (it may add tokens the entry accepts
    /// already); subtrees of words are absorbed whole, as in
    /// classification walks, where the suffix-by-suffix check takes every
    /// token.
    fn handed_over_by_walk(&self, parser: &mut Parser, it: Item, uncertain: &[u32]) -> TokenSet {
        let a = &self.automaton;
        let trie = self.vocab.trie();
        let base = parser.num_sets();
        let seed = Item { kernel: true, ..it };
        if !parser.push_items(a, &[seed]) {
            return TokenSet::List(Vec::new());
        }
        let mut st = LocalStepper::in_context(a, std::mem::take(parser), self.count_cap());
        let mut valid = crate::trie::RankSet::Ranges(Vec::new());
        trie.walk_within(&mut st, uncertain, |_, _, toks, first| {
            if !toks.is_empty() {
                valid.push(trie, first, toks.len() as u32);
            }
        });
        *parser = st.parser;
        parser.truncate(base);
        valid.into_token_set(trie, crate::mask::words_for(self.vocab.vocab_size()))
    }

    /// [`Self::handed_over`] suffix by suffix (see [`Handover`]).
    fn handed_over_by_suffix(&self, parser: &mut Parser, it: Item, entry: &CacheEntry) -> TokenSet {
        let a = &self.automaton;
        let h = entry
            .handover
            .get_or_init(|| self.handover(it, &entry.uncertain));
        let mut valid: Vec<TokenId> = Vec::new();
        let base = parser.num_sets();
        if parser.push_completion(a, a.state_rule[it.state as usize], it.origin) {
            // Each suffix runs over interned sets (see [`SetMemo`]): after a
            // few hundred parser steps, a byte is a table lookup, so the
            // thousands of suffixes of `ws` (every word after a space) are cheap.
            let mut memo = SetMemo::new(a, base, self.count_cap(), parser.unbounded());
            let first = if h.tokens.len() <= DIRECT_HANDOVER {
                0
            } else {
                memo.intern(a, parser, &[], |_| false)
            };
            let mut ctx: Vec<u32> = vec![first];
            // A few sorted suffixes are cheaper to parse than to intern.
            let mut direct = h.tokens.len() <= DIRECT_HANDOVER;
            // The bytes past the completion set the parser has taken (a
            // prefix of the previous suffix, which often shares one with the next).
            let (mut prev, mut synced): (&[u8], usize) = (&[], 0);
            // Was the previous pair walked (so `shared` measures against `prev`)?
            let mut chained = false;
            for (i, &(id, k)) in h.tokens.iter().enumerate() {
                if valid.last() == Some(&id) {
                    chained = false;
                    continue;
                }
                let t = &self.vocab.token_bytes(id)[k as usize..];
                let lcp = match h.shared.get(i) {
                    Some(&n) if chained && n < u16::MAX => usize::from(n).min(prev.len()),
                    _ => prev.iter().zip(t).take_while(|(x, y)| x == y).count(),
                };
                chained = true;
                ctx.truncate(lcp + 1);
                if synced > lcp {
                    parser.truncate(base + 1 + lcp);
                    synced = lcp;
                }
                let mut j = ctx.len() - 1;
                while j < t.len() {
                    let slot = (!direct).then(|| memo.slot(a, ctx[j], t[j]));
                    let next = slot.map_or(NEXT_UNKNOWN, |s| memo.next[s]);
                    if next == NEXT_DEAD {
                        break;
                    }
                    if next != NEXT_UNKNOWN {
                        ctx.push(next);
                        j += 1;
                        continue;
                    }
                    while synced < j {
                        parser.push_byte(a, t[synced]);
                        synced += 1;
                    }
                    let next = if parser.push_byte(a, t[j]) {
                        synced += 1;
                        // Past the memo's size the parser alone decides.
                        direct |= memo.is_full();
                        if direct {
                            0
                        } else {
                            memo.intern(a, parser, &ctx, |_| false)
                        }
                    } else {
                        NEXT_DEAD
                    };
                    if let (Some(s), false) = (slot, direct) {
                        memo.next[s] = next;
                    }
                    if next == NEXT_DEAD {
                        break;
                    }
                    ctx.push(next);
                    j += 1;
                }
                prev = &t[..j];
                if j == t.len() {
                    valid.push(id);
                }
            }
            parser.truncate(base);
        } else {
            // No parent waits: only tokens that stay inside (the empty suffix).
            valid.extend(
                h.tokens
                    .iter()
                    .filter(|&&(id, k)| k as usize == self.vocab.token_bytes(id).len())
                    .map(|&(id, _)| id),
            );
        }
        valid.sort_unstable();
        valid.dedup();
        TokenSet::from_sorted_ids(valid, self.vocab.vocab_size())
    }

    /// The [`Handover`] of `it`'s entry (uncertain tokens `uncertain`),
    /// kept in the entry: each uncertain token is walked from the item's
    /// state alone, as in its classification.
    fn handover(&self, it: Item, uncertain: &[u32]) -> Arc<Handover> {
        let a = &self.automaton;
        let order = self.vocab.trie().tokens_in_order();
        let follow = &a.follow[a.state_rule[it.state as usize] as usize];
        let mut st = LocalStepper::new(
            a,
            Parser::starting_at(a, it.state, it.aux),
            it.state,
            self.count_cap(),
        );
        let mut h = Handover::default();
        let mut pushed: &[u8] = &[];
        for &r in uncertain {
            let id = order[r as usize];
            let t = self.vocab.token_bytes(id);
            let depth = st.retarget(pushed, t);
            if depth == t.len() {
                h.tokens.push((id, t.len() as u32));
            } else {
                // Completion after `i + 1` bytes, handing byte `i + 1` on.
                for i in 0..depth {
                    if st.completed[i] && byte_in(follow, t[i + 1]) {
                        h.tokens.push((id, i as u32 + 1));
                    }
                }
            }
            pushed = &t[..depth];
        }
        // Sorted by suffix, consecutive suffixes share the most prefix (the
        // walk then replays least); past a few thousand the sort costs more
        // than it saves, and trie order already groups equal prefixes.
        let suffix = |&(id, k): &(TokenId, u32)| &self.vocab.token_bytes(id)[k as usize..];
        if h.tokens.len() <= SORTED_HANDOVER {
            h.tokens
                .sort_unstable_by(|x, y| suffix(x).cmp(suffix(y)).then(x.0.cmp(&y.0)));
        }
        h.shared = std::iter::once(0)
            .chain(h.tokens.windows(2).map(|w| {
                let (x, y) = (suffix(&w[0]), suffix(&w[1]));
                let n = x.iter().zip(y).take_while(|(a, b)| a == b).count();
                n.min(usize::from(u16::MAX)) as u16
            }))
            .collect();
        Arc::new(h)
    }

    /// Heap bytes of the automaton tables and the classification cache as
    /// filled so far (plain entries, register-class entries and the slots
    /// that hold them). The shared vocabulary is not counted: see
    /// [`Vocabulary::heap_bytes`]. Grows as masks fill the cache. Entries
    /// shared with other grammars (see [`LexicalCache`]) count in full here.
    pub fn heap_bytes(&self) -> usize {
        self.automaton.heap_bytes() + self.cache_heap_bytes()
    }

    /// Heap bytes of the classification cache alone (see [`Self::heap_bytes`]).
    pub fn cache_heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let slots = self.cache.capacity() * size_of::<OnceLock<Arc<CacheEntry>>>();
        // Each entry's Arc allocation: two counters and the entry.
        let arc =
            |e: &CacheEntry| 2 * size_of::<usize>() + size_of::<CacheEntry>() + e.heap_bytes();
        let plain: usize = self
            .cache
            .iter()
            .filter_map(OnceLock::get)
            .map(|e| arc(e))
            .sum();
        let aux = self.aux_cache.read().unwrap_or_else(|p| p.into_inner());
        // hashbrown: one control byte per bucket plus the (key, value) slot.
        let buckets = aux.capacity() * (1 + size_of::<((u32, u64), Arc<CacheEntry>)>());
        let entries: usize = aux.values().map(|e| arc(e)).sum();
        // Interned contexts and memoised hand-overs, as counted against their cap.
        let contexts = self.contexts.lock().map_or(0, |c| c.bytes);
        slots + plain + buckets + entries + contexts
    }
}

/// Classification entries of purely lexical states, shared by every grammar
/// a [`Compiler`] builds. A state whose rule reaches no rule reference,
/// token element or register from it is classified by its rule's DFA alone
/// (bytes and acceptance; uncertain tokens are listed as if any byte could
/// follow the rule, and each grammar filters them by its FOLLOW set), so
/// equal sub-automata give equal entries whatever grammar they are in. JSON
/// strings, numbers and whitespace recur in nearly every schema: their entries,
/// the costliest cold walks (most of the vocabulary fits inside a string),
/// are computed once per compiler. Keyed by the sub-automaton itself, never
/// by a hash alone.
#[derive(Debug, Default)]
pub struct LexicalCache {
    map: Mutex<FxHashMap<Vec<u32>, Arc<CacheEntry>>>,
    /// Shared entries filtered by a FOLLOW set, per (entry, FOLLOW): the
    /// grammars of one compiler mostly repeat their FOLLOW sets (a string
    /// value before `,` or `}`), and the filter walks every uncertain
    /// token's path. The value keeps the entry alive, so its address is
    /// not reused while the key stands.
    filtered: Mutex<FilteredMemo>,
    bytes: std::sync::atomic::AtomicUsize,
}

/// (shared entry's address, FOLLOW set) to (that entry, its filtered form).
type FilteredMemo = FxHashMap<(usize, ByteSet), (Arc<CacheEntry>, Arc<CacheEntry>)>;

/// Stop adding entries to a [`LexicalCache`] past this many bytes.
pub const LEXICAL_CACHE_BYTES: usize = 64 << 20;

impl LexicalCache {
    fn get_or_insert(&self, key: Vec<u32>, make: impl FnOnce() -> CacheEntry) -> Arc<CacheEntry> {
        use std::sync::atomic::Ordering;
        if let Some(e) = self.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return e;
        }
        // Classified outside the lock; a racing thread's equal entry may win.
        let e = Arc::new(make());
        let size = e.heap_bytes() + key.len() * 4;
        if self.bytes.load(Ordering::Relaxed) + size > LEXICAL_CACHE_BYTES {
            return e;
        }
        let Ok(mut m) = self.map.lock() else {
            return e;
        };
        let kept = m.entry(key).or_insert_with(|| e.clone()).clone();
        if Arc::ptr_eq(&kept, &e) {
            self.bytes.fetch_add(size, Ordering::Relaxed);
        }
        kept
    }

    /// Shared entry `e` filtered by `follow` (`make` builds it), memoised.
    fn filtered(
        &self,
        e: &Arc<CacheEntry>,
        follow: &ByteSet,
        make: impl FnOnce() -> CacheEntry,
    ) -> Arc<CacheEntry> {
        use std::sync::atomic::Ordering;
        let key = (Arc::as_ptr(e) as usize, *follow);
        if let Some(f) = self
            .filtered
            .lock()
            .ok()
            .and_then(|m| m.get(&key).map(|v| v.1.clone()))
        {
            return f;
        }
        let f = Arc::new(make());
        let size = f.heap_bytes() + 96;
        if self.bytes.load(Ordering::Relaxed) + size > LEXICAL_CACHE_BYTES {
            return f;
        }
        let Ok(mut m) = self.filtered.lock() else {
            return f;
        };
        let kept = m
            .entry(key)
            .or_insert_with(|| (e.clone(), f.clone()))
            .1
            .clone();
        if Arc::ptr_eq(&kept, &f) {
            self.bytes.fetch_add(size, Ordering::Relaxed);
        }
        kept
    }

    /// Number of entries and the bytes they hold.
    pub fn stats(&self) -> (usize, usize) {
        let n = self.map.lock().map_or(0, |m| m.len());
        (n, self.bytes.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Largest sub-automaton [`lexical_key`] describes (bigger ones are not
/// shared). A key costs its states times the grammar's byte runs: at a
/// thousand states with Unicode classes (`\w` patterns) 100-300 µs, more
/// than sharing saves on states that seldom recur (schema replay p99
/// 109-110 -> 103-106 µs from 2,048).
const MAX_LEXICAL_STATES: usize = 1024;

/// The sub-automaton reachable from `state` in canonical form (states
/// numbered in breadth-first order; per state its acceptance, then its byte
/// transitions as runs); None if it reaches a rule reference, a token element
/// or a register rule.
fn lexical_key(a: &Automaton, state: u32) -> Option<Vec<u32>> {
    // A state the parser needs (a rule reference, token element or register).
    let parsed = |s: u32| {
        a.aux_state[s as usize] || !a.rule_edges(s).is_empty() || !a.token_edges(s).is_empty()
    };
    if parsed(state) {
        return None;
    }
    let runs = class_runs(a);
    debug_assert_eq!(runs.len(), a.num_classes, "a byte class is one run");
    let mut key: Vec<u32> = Vec::new();
    // Byte transitions stay inside the rule, whose states are numbered from
    // `lo`: the BFS numbers them in a table, not a hash map (a lookup per
    // state and byte run was most of a key's cost), unless the rule is big.
    let std::ops::Range { start: lo, end: hi } =
        a.rule_states(a.state_rule[state as usize] as usize);
    let tabled = if hi - lo <= TABLED_RULE_STATES {
        (hi - lo) as usize
    } else {
        0
    };
    let mut ids = StateIds {
        lo,
        table: vec![u32::MAX; tabled],
        map: FxHashMap::default(),
    };
    ids.set(state, 0);
    let mut order = vec![state];
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        i += 1;
        if parsed(s) {
            return None;
        }
        key.push(u32::from(a.accepting[s as usize]));
        let row = a.byte_next.row(s);
        // Maximal runs of bytes with one target, over the class runs (a
        // class is one run of bytes, in byte order): outside the row's
        // span every class is dead, so only the span is read.
        let span = row.span();
        let mut run_start = 0u32;
        let mut run_to = u32::MAX;
        let mut at = |b: u32, to: u32, key: &mut Vec<u32>| {
            if to != run_to {
                if b > 0 {
                    key.extend([run_start, run_to]);
                }
                run_start = b;
                run_to = to;
            }
        };
        for &(b, class) in &runs[span.clone()] {
            let to = match row.get(class as usize) {
                crate::automaton::DEAD => u32::MAX,
                t => {
                    let known = ids.get(t);
                    if known == u32::MAX {
                        if order.len() >= MAX_LEXICAL_STATES {
                            return None;
                        }
                        let id = order.len() as u32;
                        ids.set(t, id);
                        order.push(t);
                        id
                    } else {
                        known
                    }
                }
            };
            at(b, to, &mut key);
        }
        if let Some(&(b, _)) = runs.get(span.end) {
            at(b, u32::MAX, &mut key);
        }
        key.extend([run_start, run_to]);
    }
    Some(key)
}

/// Rules of up to this many states get a table in [`lexical_key`] (16 KiB).
const TABLED_RULE_STATES: u32 = 4096;

/// [`lexical_key`]'s numbers of DFA states: a table over a rule's states
/// from `lo` (the map past a table's size).
struct StateIds {
    lo: u32,
    table: Vec<u32>,
    map: FxHashMap<u32, u32>,
}

impl StateIds {
    /// The number of `t`, or `u32::MAX`.
    #[inline]
    fn get(&self, t: u32) -> u32 {
        match self.table.get(t.wrapping_sub(self.lo) as usize) {
            Some(&id) => id,
            None => self.map.get(&t).copied().unwrap_or(u32::MAX),
        }
    }

    #[inline]
    fn set(&mut self, t: u32, id: u32) {
        match self.table.get_mut(t.wrapping_sub(self.lo) as usize) {
            Some(slot) => *slot = id,
            None => {
                self.map.insert(t, id);
            }
        }
    }
}

/// The bytes as runs of one byte class: (first byte, class), ascending.
/// Grammars have a few dozen, so per-state work over them beats 256 bytes.
fn class_runs(a: &Automaton) -> Vec<(u32, u8)> {
    let mut runs: Vec<(u32, u8)> = Vec::with_capacity(64);
    for b in 0..256u32 {
        let c = a.class_of[b as usize];
        if runs.last().map_or(true, |r| r.1 != c) {
            runs.push((b, c));
        }
    }
    runs
}

impl CacheEntry {
    fn new(accepted: TokenSet, uncertain: Vec<u32>) -> Self {
        Self::sharing(Arc::new(accepted), uncertain)
    }

    fn sharing(accepted: Arc<TokenSet>, uncertain: Vec<u32>) -> Self {
        CacheEntry {
            accepted,
            uncertain,
            ranks: OnceLock::new(),
            via: None,
            handover: OnceLock::new(),
        }
    }

    /// `accepted` by trie rank, computed on first need.
    fn ranks(&self, trie: &crate::trie::TokenTrie) -> &crate::trie::RankBits {
        self.ranks.get_or_init(|| {
            let mut r = crate::trie::RankBits::new(trie);
            for (k, &t) in (0..).zip(trie.tokens_in_order()) {
                if self.accepted.contains(t) {
                    r.set(k);
                }
            }
            r
        })
    }

    /// Heap bytes of the entry's token set and uncertain list (capacities).
    pub fn heap_bytes(&self) -> usize {
        let set = match &*self.accepted {
            TokenSet::Bits(v) | TokenSet::List(v) => v.capacity(),
        };
        (set + self.uncertain.capacity()) * std::mem::size_of::<u32>()
            + self
                .ranks
                .get()
                .map_or(0, crate::trie::RankBits::heap_bytes)
            + self.via.as_ref().map_or(0, |v| v.1.capacity() * 8)
            + self.handover.get().map_or(0, |h| h.heap_bytes() + 64)
    }
}

/// Can an item at `state` still act: scan a byte, or wait for a child? An
/// item that cannot (a rule instance at its end) was completed when its set
/// was closed, and no later step looks at it, so contexts leave it out.
fn is_live(a: &Automaton, state: u32) -> bool {
    a.has_bytes[state as usize] || !a.rule_edges(state).is_empty()
}

/// The class of register `aux` at `state` (see the module doc): counts
/// further than `cap` from both of a counter's bounds are one class. A
/// bound the parser ignores (see [`Unbounded`]) counts as far.
fn register_class(a: &Automaton, state: u32, aux: u32, cap: u32, keep: (bool, bool)) -> u64 {
    match &a.rule_kind[a.state_rule[state as usize] as usize] {
        RuleKind::Plain => 0,
        RuleKind::Counter { min, max, .. } => {
            let (keep_max, keep_min) = keep;
            let left = if keep_max {
                max.saturating_sub(aux).min(cap)
            } else {
                cap
            };
            let need = if keep_min {
                min.saturating_sub(aux).min(cap)
            } else {
                0
            };
            u64::from(left) << 32 | u64::from(need)
        }
        RuleKind::Permutation { .. } => u64::from(aux),
    }
}

/// Is the rule part from `start` one piece: no rule reference, token
/// element or register, not empty, and over once it accepts (accepting
/// states take no byte), so iterations of it split a string one way?
fn single_piece(a: &Automaton, start: u32) -> bool {
    let mut seen = vec![start];
    let mut known: rustc_hash::FxHashSet<u32> = [start].into_iter().collect();
    let mut k = 0;
    while let Some(&q) = seen.get(k) {
        k += 1;
        if a.aux_state[q as usize] || !a.rule_edges(q).is_empty() || !a.token_edges(q).is_empty() {
            return false;
        }
        let row = a.byte_next.row(q);
        let live = row.is_live();
        if a.accepting[q as usize] == (live || q == start) {
            return false;
        }
        for t in row.iter() {
            if t != crate::automaton::DEAD && known.insert(t) {
                seen.push(t);
            }
        }
    }
    true
}

/// The byte groups (see [`crate::trie::byte_group`]) that DFA states take
/// back to themselves, for the walks' subtree skipping: a small
/// direct-mapped cache, since a walk asks at every node and meets few states.
/// Past those, the grammar's [`ClosedGroups`], whose value a slot keeps too.
struct LoopCache<'a> {
    /// Empty until first asked: walks that start in Earley mode and
    /// stay there (small ones, most) never ask.
    slots: Vec<LoopSlot>,
    /// The byte groups of each byte class's bytes: a state's loop groups
    /// come from its row of classes, not from 256 bytes.
    class_groups: Vec<Groups>,
    closed: Option<&'a ClosedGroups>,
}

/// A [`LoopCache`] slot: the state, the groups it loops over, the groups
/// it refuses a byte of, whether it loops over every non-ASCII character
/// and over every non-ASCII `\w` character (0 unknown, 1 no, 2 yes), and
/// its [`ClosedGroups`] value (without [`CLOSED_KNOWN`]: not searched yet).
#[derive(Clone, Copy)]
struct LoopSlot {
    state: u32,
    loops: Groups,
    refused: Groups,
    chars: u8,
    words: u8,
    closed: Groups,
    /// [`lives_through`] for these groups: yes up to `lives.1` characters,
    /// no from `lives.2` on.
    lives: (Groups, u8, u8),
}

/// Slots of a [`LoopCache`]: schema grammars have thousands of states, and
/// a walk through a counter or a format meets hundreds of them.
const LOOP_SLOTS: usize = 1024;

impl<'a> LoopCache<'a> {
    fn new(closed: Option<&'a ClosedGroups>) -> Self {
        LoopCache {
            slots: Vec::new(),
            class_groups: Vec::new(),
            closed,
        }
    }

    /// The slot of `q`, filled on first need.
    #[inline]
    fn slot(&mut self, a: &Automaton, q: u32) -> &mut LoopSlot {
        if self.slots.is_empty() {
            let empty = LoopSlot {
                state: u32::MAX,
                loops: 0,
                refused: 0,
                chars: 0,
                words: 0,
                closed: 0,
                lives: (0, 0, u8::MAX),
            };
            self.slots = vec![empty; LOOP_SLOTS];
            self.class_groups = class_groups(a);
        }
        let slot = &mut self.slots[q as usize % LOOP_SLOTS];
        if slot.state != q {
            let row = a.byte_next.row(q);
            let (mut leave, mut refused) = (0, 0);
            for (t, &cg) in row.iter().zip(&self.class_groups) {
                if t != q {
                    leave |= cg;
                }
                if t == crate::automaton::DEAD {
                    refused |= cg;
                }
            }
            *slot = LoopSlot {
                state: q,
                loops: crate::trie::ALL_GROUPS & !leave,
                refused,
                chars: 0,
                words: 0,
                closed: self.closed.map_or(CLOSED_KNOWN, |c| c.get(q)),
                lives: (0, 0, u8::MAX),
            };
        }
        slot
    }

    /// Does `q` keep every token of a subtree summarised by `below` alive
    /// inside the rule: by taking each byte back to itself, by staying
    /// inside a character, or among the states of its [`ClosedGroups`]?
    #[inline]
    fn absorbs(&mut self, a: &Automaton, q: u32, below: Groups) -> bool {
        use crate::trie::{ALL_GROUPS, BIG, GROUPS_HIGH, UTF8_WHOLE};
        let slot = *self.slot(a, q);
        let groups = below & ALL_GROUPS;
        if groups & !slot.loops == 0 {
            return true;
        }
        if below & UTF8_WHOLE != 0 && groups & !(slot.loops | GROUPS_HIGH) == 0 {
            if slot.chars == 0 {
                let yes = crate::trie::loops_over_non_ascii(q, None, |s, _, b| {
                    Some(a.next_byte(s, b)).filter(|&t| t != crate::automaton::DEAD)
                });
                self.slots[q as usize % LOOP_SLOTS].chars = if yes { 2 } else { 1 };
                if yes {
                    return true;
                }
            } else if slot.chars == 2 {
                return true;
            }
            // Not every character: every word character, below a node of
            // word tokens (a `[\w.-]+` pattern's loop).
            if below & crate::trie::WORDS != 0 {
                if let Some(shared) = self.closed {
                    let slot = &mut self.slots[q as usize % LOOP_SLOTS];
                    if slot.words == 0 {
                        slot.words = if shared.loops_over_words(a, q) { 2 } else { 1 };
                    }
                    if slot.words == 2 {
                        return true;
                    }
                }
            }
        }
        // A byte below that `q` itself refuses: no search can help this
        // subtree (a `hostname` state refuses most of what it meets).
        if below & slot.refused & ALL_GROUPS & !GROUPS_HIGH != 0 {
            return false;
        }
        let Some(shared) = self.closed else {
            return false;
        };
        let mut closed = slot.closed;
        if closed & CLOSED_KNOWN == 0 && below & BIG != 0 {
            closed = shared.search(a, &self.class_groups, q);
            self.slots[q as usize % LOOP_SLOTS].closed = closed;
        }
        let whole = groups & GROUPS_HIGH == 0 || below & UTF8_WHOLE != 0;
        if closed & CLOSED_KNOWN != 0
            && (groups & GROUPS_HIGH == 0 || below & closed & UTF8_WHOLE != 0)
            && groups & !GROUPS_HIGH & !closed == 0
        {
            return true;
        }
        // Not closed, but alive for as many characters as the subtree's
        // tokens have: the first letters of a short string or of a label.
        // (Below big nodes, or for one or two characters: a longer search
        // costs more than a small subtree's walk.)
        let n = crate::trie::chars_below(below);
        if !whole || n >= crate::trie::CHARS_CAP || below & BIG == 0 && n > 2 {
            return false;
        }
        // Fewer groups or characters live where more do, and more die
        // where fewer do.
        let n8 = n as u8;
        let (g, ok, bad) = self.slots[q as usize % LOOP_SLOTS].lives;
        if groups & !g == 0 && n8 <= ok {
            return true;
        }
        if g & !groups == 0 && n8 >= bad {
            return false;
        }
        let high = shared.high.get_or_init(|| high_bytes(a));
        let yes = lives_through(a, &self.class_groups, high, q, groups, n);
        let lives = &mut self.slots[q as usize % LOOP_SLOTS].lives;
        if lives.0 != groups {
            *lives = (groups, 0, u8::MAX);
        }
        if yes {
            lives.1 = lives.1.max(n8);
        } else {
            lives.2 = lives.2.min(n8);
        }
        yes
    }
}

/// The state of the relaxed twin of `state`'s rule ([`Automaton::relaxed`])
/// that reads what `state` reads with every counter bound ignored: the
/// twin's state after the bytes that lead from the rule's start to
/// `state`, checked to read the same language (a twin state after those
/// bytes may also stand for readings inside a repetition). None if there
/// is no twin, no such path, or the check fails or outgrows its budget.
fn relaxed_twin_state(a: &Automaton, state: u32) -> Option<u32> {
    use crate::automaton::DEAD;
    let rule = a.state_rule[state as usize] as usize;
    let twin = a.relaxed[rule]?;
    // The twin's state along every byte path from the rule's start (DEAD:
    // two paths disagree).
    let mut along: FxHashMap<u32, u32> = FxHashMap::default();
    let start = (a.rule_start[rule], a.rule_start[twin as usize]);
    along.insert(start.0, start.1);
    let mut queue = vec![start];
    while let Some((q, t)) = queue.pop() {
        if along.len() > RELAXED_CHECK_BUDGET {
            return None;
        }
        for (c, q2) in a.byte_next.row(q).iter().enumerate() {
            let t2 = a.byte_next.get(t, c);
            if q2 == DEAD || t2 == DEAD {
                continue;
            }
            match along.get(&q2) {
                None => {
                    along.insert(q2, t2);
                    queue.push((q2, t2));
                }
                Some(&seen) if seen != t2 && seen != DEAD => {
                    along.insert(q2, DEAD);
                }
                _ => {}
            }
        }
    }
    let t = *along.get(&state).filter(|&&t| t != DEAD)?;
    relaxed_reads_alike(a, state, t).then_some(t)
}

/// Most state pairs [`relaxed_twin_state`] and [`relaxed_reads_alike`] look at.
const RELAXED_CHECK_BUDGET: usize = 512;

/// Does `state`, with every counter bound ignored, read the language twin
/// state `t` reads? Positions are `(state, return, loop)`: a state of
/// `state`'s rule (return `DEAD`), or a state of a referenced rule's item
/// with the state to return to when it ends and, for a counter's item, its
/// start to loop to. Sets of positions (the subset construction) are
/// walked beside `t` per byte class: both accept alike and die alike.
fn relaxed_reads_alike(a: &Automaton, state: u32, t: u32) -> bool {
    use crate::automaton::DEAD;
    type Pos = (u32, u32, u32);
    // The closure of `set` over the references and item ends; false where a
    // position needs a register, a token element or a nested reference.
    let close = |set: &mut Vec<Pos>| -> bool {
        let mut k = 0;
        while let Some(&(q, ret, lp)) = set.get(k) {
            k += 1;
            if !a.token_edges(q).is_empty() || a.aux_state[q as usize] && ret != DEAD {
                return false;
            }
            let add = |p: Pos, set: &mut Vec<Pos>| {
                if !set.contains(&p) {
                    set.push(p);
                }
            };
            if ret == DEAD {
                for &(r, q2) in a.rule_edges(q) {
                    let start = a.rule_start[r as usize];
                    match a.rule_kind[r as usize] {
                        RuleKind::Plain => add((start, q2, DEAD), set),
                        RuleKind::Counter { item, .. } => {
                            let s = a.rule_start[item as usize];
                            add((s, q2, s), set);
                            add((q2, DEAD, DEAD), set);
                        }
                        RuleKind::Permutation { .. } => return false,
                    }
                }
            } else {
                if !a.rule_edges(q).is_empty() {
                    return false;
                }
                if a.accepting[q as usize] {
                    add((ret, DEAD, DEAD), set);
                    if lp != DEAD {
                        add((lp, ret, lp), set);
                    }
                }
            }
        }
        set.sort_unstable();
        true
    };
    let accepts = |set: &[Pos]| {
        set.iter()
            .any(|&(q, ret, _)| ret == DEAD && a.accepting[q as usize])
    };
    let mut first = vec![(state, DEAD, DEAD)];
    if !close(&mut first) {
        return false;
    }
    let mut seen: FxHashMap<(Vec<Pos>, u32), ()> = FxHashMap::default();
    let mut queue = vec![(first, t)];
    while let Some((set, t)) = queue.pop() {
        if seen.contains_key(&(set.clone(), t)) {
            continue;
        }
        if seen.len() >= RELAXED_CHECK_BUDGET || accepts(&set) != a.accepting[t as usize] {
            return false;
        }
        for c in 0..a.num_classes {
            let mut next: Vec<Pos> = Vec::new();
            for &(q, ret, lp) in &set {
                let q2 = a.byte_next.get(q, c);
                if q2 != DEAD && !next.contains(&(q2, ret, lp)) {
                    next.push((q2, ret, lp));
                }
            }
            let t2 = a.byte_next.get(t, c);
            if next.is_empty() != (t2 == DEAD) {
                return false;
            }
            if !next.is_empty() {
                if !close(&mut next) {
                    return false;
                }
                queue.push((next, t2));
            }
        }
        seen.insert((set, t), ());
    }
    true
}

/// Is `s` alive with no rule reference, token element or register: a state
/// whose strings its DFA alone decides (the closed-group, short-subtree and
/// short-string searches stay among such states)?
fn plain_state(a: &Automaton, s: u32) -> bool {
    s != crate::automaton::DEAD
        && !a.aux_state[s as usize]
        && a.rule_edges(s).is_empty()
        && a.token_edges(s).is_empty()
}

/// The ASCII byte groups whose every byte `q` takes, if the letters of
/// one case are among them: a count of `[0-9A-Za-z]` reads words, most
/// of a vocabulary's tokens, which [`short_run`] may list instead of a walk.
fn word_groups(a: &Automaton, class_groups: &[Groups], q: u32) -> Option<Groups> {
    use crate::trie::{byte_group, ALL_GROUPS, GROUPS_HIGH};
    let refused = a
        .byte_next
        .row(q)
        .iter()
        .zip(class_groups)
        .filter(|&(t, _)| t == crate::automaton::DEAD)
        .fold(0, |g, (_, &cg)| g | cg);
    let groups = ALL_GROUPS & !GROUPS_HIGH & !refused;
    (groups & (byte_group(b'a') | byte_group(b'A')) != 0).then_some(groups)
}

/// The number of characters `q` reads at most, if it reads any string of
/// at most that many (up to [`crate::trie::SHORT_CHARS`]) and none longer
/// over the bytes of `groups` (with [`crate::trie::GROUPS_HIGH`] among
/// them, every valid non-ASCII character, and invalid UTF-8 refused),
/// meeting no accepting state or rule reference on the way: the inside of
/// a `maxLength: 3` string (every group but [`QUOTED`]) or a count of
/// `[0-9A-Za-z]{8}` (letters and digits), whose tokens of those groups the
/// trie lists by length (see `TokenTrie::within`).
fn short_run(
    a: &Automaton,
    class_groups: &[Groups],
    high: &HighBytes,
    invalid: &[Vec<u8>; 8],
    q: u32,
    groups: Groups,
) -> Option<u32> {
    use crate::automaton::DEAD;
    use crate::trie::GROUPS_HIGH;
    let inner = |s: u32| plain_state(a, s) && !a.accepting[s as usize];
    if !inner(q) {
        return None;
    }
    let (ascii, chars) = (groups & !GROUPS_HIGH, groups & GROUPS_HIGH != 0);
    let mut layer = vec![q];
    for n in 0..=crate::trie::SHORT_CHARS {
        // Every character refused at its first byte, or read whole, and
        // every byte that makes the sequence invalid refused.
        let (mut alive, mut dead) = (false, false);
        let next = next_characters(
            a,
            class_groups,
            high,
            &layer,
            ascii,
            chars,
            |s, u| {
                !chars
                    || invalid[u as usize]
                        .iter()
                        .all(|&b| a.next_byte(s, b) == DEAD)
            },
            |t, first| {
                if t == DEAD && first {
                    dead = true;
                    Some(false)
                } else if inner(t) {
                    alive |= first;
                    Some(true)
                } else {
                    None
                }
            },
        )?;
        match (alive, dead) {
            (false, true) => return Some(n),
            (true, false) => {}
            _ => return None,
        }
        // The same states again: no bound.
        if next.len() == layer.len() && next.iter().all(|t| layer.contains(t)) {
            return None;
        }
        layer = next;
    }
    None
}

/// The states one more character leads the states of `layer` to: the
/// bytes of the `ascii` groups and, with `chars`, every valid character
/// of two to four bytes (a byte per class and decoder state). `at(state,
/// decoder state)` is asked at every state a character starts or goes on
/// from (false: stop); `take(state, first)` at every byte's target
/// (`first`: the byte starts the character): go on from it, leave it
/// (`Some(false)`), or stop (None). None if stopped, or past
/// [`LIVES_STATES`] states.
#[allow(clippy::too_many_arguments)]
fn next_characters(
    a: &Automaton,
    class_groups: &[Groups],
    high: &HighBytes,
    layer: &[u32],
    ascii: Groups,
    chars: bool,
    mut at: impl FnMut(u32, u8) -> bool,
    mut take: impl FnMut(u32, bool) -> Option<bool>,
) -> Option<Vec<u32>> {
    use crate::trie::U_START;
    let mut next: Vec<u32> = Vec::new();
    let mut mid: Vec<(u32, u8)> = Vec::new();
    for &s in layer {
        if !at(s, U_START) {
            return None;
        }
        for (t, &cg) in a.byte_next.row(s).iter().zip(class_groups) {
            if cg & ascii != 0 && take(t, true)? && !next.contains(&t) {
                next.push(t);
            }
        }
        if !chars {
            continue;
        }
        mid.clear();
        mid.push((s, U_START));
        let mut k = 0;
        while let Some(&(m, u)) = mid.get(k) {
            k += 1;
            if u != U_START && !at(m, u) {
                return None;
            }
            for &(b, u2) in &high[u as usize] {
                let t = a.next_byte(m, b);
                if !take(t, u == U_START)? {
                    continue;
                }
                if u2 == U_START {
                    if !next.contains(&t) {
                        next.push(t);
                    }
                } else if !mid.contains(&(t, u2)) {
                    mid.push((t, u2));
                }
            }
        }
    }
    (next.len() <= LIVES_STATES).then_some(next)
}

/// Does `q` keep every string of at most `n` characters alive among plain
/// states (no rule reference, token element or register), the characters
/// being the bytes of `groups` and, with [`crate::trie::GROUPS_HIGH`] in
/// them, every valid non-ASCII character (a character cut short too)? One
/// set of states per character read ([`next_characters`]).
fn lives_through(
    a: &Automaton,
    class_groups: &[Groups],
    high: &HighBytes,
    q: u32,
    groups: Groups,
    n: u32,
) -> bool {
    use crate::trie::GROUPS_HIGH;
    let mut layer = vec![q];
    for _ in 0..n {
        let Some(next) = next_characters(
            a,
            class_groups,
            high,
            &layer,
            groups & !GROUPS_HIGH,
            groups & GROUPS_HIGH != 0,
            |_, _| true,
            |t, _| plain_state(a, t).then_some(true),
        ) else {
            return false;
        };
        // The same states again: alive for any number of characters.
        if next.len() == layer.len() && next.iter().all(|t| layer.contains(t)) {
            return true;
        }
        layer = next;
    }
    true
}

/// The most states a layer of [`next_characters`] holds.
const LIVES_STATES: usize = 64;

/// The byte groups of each byte class's bytes.
fn class_groups(a: &Automaton) -> Vec<Groups> {
    let mut groups = vec![0; a.num_classes];
    for b in 0..=255u8 {
        groups[a.class_of[b as usize] as usize] |= crate::trie::byte_group(b);
    }
    groups
}

/// Per DFA state, the byte groups (with [`crate::trie::UTF8_WHOLE`]: every
/// valid non-ASCII character) whose strings it reads without dying or
/// reaching a state with rule references: the states those bytes reach
/// are closed under them. A search pattern's states (`.*[0-9]{5}` inside a
/// string) move on every digit and return on every other byte, so no state
/// loops on the digits, yet every token without a quote stays alive: such
/// subtrees are accepted whole instead of walked. With it, per state,
/// whether it loops over every word character (see [`crate::trie::WORDS`]).
/// Filled lazily and shared by the grammar's walks (the races only compute
/// a value twice).
#[derive(Debug)]
struct ClosedGroups {
    states: OnceLock<Box<[std::sync::atomic::AtomicU32]>>,
    high: OnceLock<HighBytes>,
    /// For `short_run`, asked at every lexical walk: the byte groups of
    /// each class, and per UTF-8 decoder state a byte per class of those
    /// that make the sequence invalid there.
    short: OnceLock<(Vec<Groups>, [Vec<u8>; 8])>,
    /// Per state: does it loop over every non-ASCII `\w` character (0
    /// unknown, 1 no, 2 yes; see [`loops_over_words`]).
    words: OnceLock<Box<[std::sync::atomic::AtomicU8]>>,
}

/// [`ClosedGroups`]: the value is known.
const CLOSED_KNOWN: Groups = 1 << 30;

/// Rules of up to this many states mark a search's pairs in a table.
const MARK_TABLE: usize = 4096;

/// A search stops after looking at this many transitions, over all its
/// restarts; the rule's states then absorb only what they loop on. (A
/// `hostname` state's search drops group after group through chains of
/// label states, and a walk meets hundreds of such states.)
const CLOSED_WORK: usize = 8192;

impl ClosedGroups {
    fn new() -> Self {
        ClosedGroups {
            states: OnceLock::new(),
            high: OnceLock::new(),
            short: OnceLock::new(),
            words: OnceLock::new(),
        }
    }

    /// [`loops_over_words`] for `q`, memoised.
    fn loops_over_words(&self, a: &Automaton, q: u32) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let table = self.words.get_or_init(|| {
            (0..a.num_states())
                .map(|_| std::sync::atomic::AtomicU8::new(0))
                .collect()
        });
        let known = table[q as usize].load(Relaxed);
        if known != 0 {
            return known == 2;
        }
        let yes = loops_over_words(a, q);
        table[q as usize].store(if yes { 2 } else { 1 }, Relaxed);
        yes
    }

    fn states(&self, a: &Automaton) -> &[std::sync::atomic::AtomicU32] {
        self.states.get_or_init(|| {
            (0..a.num_states())
                .map(|_| std::sync::atomic::AtomicU32::new(0))
                .collect()
        })
    }

    /// The value of `q` if known (no table yet: nothing is).
    fn get(&self, q: u32) -> Groups {
        self.states.get().map_or(0, |t| {
            t[q as usize].load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// The value of `q`, searched now if not known yet.
    fn search(&self, a: &Automaton, class_groups: &[Groups], q: u32) -> Groups {
        use std::sync::atomic::Ordering::Relaxed;
        let states = self.states(a);
        let known = states[q as usize].load(Relaxed);
        if known & CLOSED_KNOWN != 0 {
            return known;
        }
        let high = self.high.get_or_init(|| high_bytes(a));
        let Some((groups, members)) = closed_groups(a, class_groups, high, q, MARK_TABLE) else {
            // Past the budget: the rule counts or is large (`hostname`);
            // its other states, not searched yet, would cost as much for
            // nothing.
            for m in a.rule_states(a.state_rule[q as usize] as usize) {
                let _ = states[m as usize].compare_exchange(0, CLOSED_KNOWN, Relaxed, Relaxed);
            }
            return CLOSED_KNOWN;
        };
        let value = groups | CLOSED_KNOWN;
        states[q as usize].store(value, Relaxed);
        // Each member's closure under these groups lies inside this one.
        for m in members {
            let _ = states[m as usize].compare_exchange(0, value, Relaxed, Relaxed);
        }
        value
    }
}

/// Does `q` take every non-ASCII character `\w` accepts back to itself,
/// keeping every prefix of one alive? Over the UTF-8 byte-range sequences
/// of those characters (about a thousand), a byte per byte class of each
/// range, with the set of states the prefixes reach.
fn loops_over_words(a: &Automaton, q: u32) -> bool {
    use crate::automaton::DEAD;
    static SEQUENCES: OnceLock<Vec<Vec<(u8, u8)>>> = OnceLock::new();
    let sequences = SEQUENCES.get_or_init(|| {
        let mut out = Vec::new();
        for r in crate::grammar::regex::word_chars().ranges() {
            let (lo, hi) = (r.start().max('\u{80}'), r.end());
            if lo <= hi {
                for seq in regex_syntax::utf8::Utf8Sequences::new(lo, hi) {
                    out.push(seq.as_slice().iter().map(|x| (x.start, x.end)).collect());
                }
            }
        }
        out
    });
    let mut reps: FxHashMap<(u8, u8), Vec<u8>> = FxHashMap::default();
    let (mut states, mut next): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for seq in sequences {
        states.clear();
        states.push(q);
        for &(lo, hi) in seq {
            let bytes = reps
                .entry((lo, hi))
                .or_insert_with(|| one_per_class(a, lo..=hi));
            next.clear();
            for &s in &states {
                for &b in bytes.iter() {
                    let t = a.next_byte(s, b);
                    if t == DEAD {
                        return false;
                    }
                    if !next.contains(&t) {
                        next.push(t);
                    }
                }
            }
            std::mem::swap(&mut states, &mut next);
        }
        if states.iter().any(|&s| s != q) {
            return false;
        }
    }
    true
}

/// Per UTF-8 decoder state, one non-ASCII byte per (byte class, next
/// decoder state): the bytes of a class lead alike.
type HighBytes = [Vec<(u8, u8)>; 8];

fn high_bytes(a: &Automaton) -> HighBytes {
    use crate::trie::{utf8_step, U_INVALID};
    let mut high: HighBytes = Default::default();
    for (u, reps) in high.iter_mut().enumerate() {
        for u2 in 0..U_INVALID {
            let bytes = (0x80..=0xffu8).filter(|&b| utf8_step(u as u8, b) == u2);
            reps.extend(one_per_class(a, bytes).into_iter().map(|b| (b, u2)));
        }
    }
    high
}

/// Per UTF-8 decoder state, one byte per class of those that make the
/// sequence invalid there.
fn invalid_bytes(a: &Automaton) -> [Vec<u8>; 8] {
    use crate::trie::{utf8_step, U_INVALID};
    std::array::from_fn(|u| {
        one_per_class(
            a,
            (0x80..=0xffu8).filter(|&b| utf8_step(u as u8, b) == U_INVALID),
        )
    })
}

/// The first of `bytes` in each byte class among them (a class's bytes
/// lead every state alike).
fn one_per_class(a: &Automaton, bytes: impl IntoIterator<Item = u8>) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for b in bytes {
        let c = a.class_of[b as usize];
        if !out.iter().any(|&x| a.class_of[x as usize] == c) {
            out.push(b);
        }
    }
    out
}

/// The value of [`ClosedGroups`] for `q`, and the other states of its
/// closure. Starting from every ASCII group and every character, the
/// closure is searched breadth first; at the first state some of them kill,
/// those are dropped (a group that only leads to the killed state goes with
/// it: the escape state after `\\` refuses most letters, but `\\` itself goes
/// first, with `"`) and the search starts over. None past [`CLOSED_WORK`].
/// Rules of up to `table_up_to` states mark pairs in a table.
fn closed_groups(
    a: &Automaton,
    class_groups: &[Groups],
    high: &HighBytes,
    q: u32,
    table_up_to: usize,
) -> Option<(Groups, Vec<u32>)> {
    use crate::trie::{ALL_GROUPS, GROUPS_HIGH, UTF8_WHOLE, U_START};
    let plain = |s: u32| plain_state(a, s);
    let nc = a.num_classes;
    // Byte transitions stay among the rule's states: pairs are marked in a
    // table over them (a map for a big rule), stamped with the round.
    let states = a.rule_states(a.state_rule[q as usize] as usize);
    let at = |s: u32, u: u8| (s - states.start) as usize * 8 + u as usize;
    let mut table = vec![
        0u32;
        if states.len() <= table_up_to {
            states.len() * 8
        } else {
            0
        }
    ];
    let mut map: FxHashMap<usize, u32> = FxHashMap::default();
    let mut mark = |i: usize, round: u32| -> bool {
        match table.get_mut(i) {
            Some(m) => std::mem::replace(m, round) != round,
            None => map.insert(i, round) != Some(round),
        }
    };
    let mut groups = ALL_GROUPS & !GROUPS_HIGH;
    let mut chars = true;
    let mut work = 0;
    for round in 1.. {
        // (DFA state, UTF-8 decoder state) pairs, in breadth-first order.
        let mut seen: Vec<(u32, u8)> = vec![(q, U_START)];
        mark(at(q, U_START), round);
        let mut k = 0;
        let (mut bad, mut chars_bad) = (0 as Groups, false);
        while let Some(&(s, u)) = seen.get(k) {
            k += 1;
            work +=
                if u == U_START { nc } else { 0 } + if chars { high[u as usize].len() } else { 0 };
            if work > CLOSED_WORK {
                return None;
            }
            let mut add = |t: u32, u2: u8| {
                if mark(at(t, u2), round) {
                    seen.push((t, u2));
                }
            };
            if u == U_START {
                for (c, t) in a.byte_next.row(s).iter().enumerate() {
                    let g = class_groups[c] & groups;
                    if g != 0 {
                        if plain(t) {
                            add(t, U_START);
                        } else {
                            bad |= g;
                        }
                    }
                }
            }
            if chars {
                for &(b, u2) in &high[u as usize] {
                    let t = a.next_byte(s, b);
                    if plain(t) {
                        add(t, u2);
                    } else {
                        chars_bad = true;
                    }
                }
            }
            if bad != 0 || chars_bad {
                break;
            }
        }
        if bad == 0 && !chars_bad {
            let members = seen
                .iter()
                .filter(|&&(s, u)| u == U_START && s != q)
                .map(|&(s, _)| s)
                .collect();
            return Some((groups | if chars { UTF8_WHOLE } else { 0 }, members));
        }
        groups &= !bad;
        chars &= !chars_bad;
        if groups == 0 && !chars {
            return Some((0, Vec::new()));
        }
    }
    None
}

/// The walk of [`CompiledGrammar::hand_over`]: the rule's DFA state per
/// byte, and whether the rule could already have ended before a byte its
/// FOLLOW set holds (then every token below is handed over).
struct FollowFilter<'a> {
    a: &'a Automaton,
    follow: &'a ByteSet,
    /// (DFA state, handed over) per byte taken, the start first.
    path: Vec<(u32, bool)>,
}

impl ByteStepper for FollowFilter<'_> {
    fn push(&mut self, byte: u8) -> bool {
        let (q, handed) = self.path[self.path.len() - 1];
        if handed
            || (self.path.len() > 1 && self.a.accepting[q as usize] && byte_in(self.follow, byte))
        {
            self.path.push((q, true));
            return true;
        }
        let t = self.a.next_byte(q, byte);
        if t == crate::automaton::DEAD {
            return false;
        }
        self.path.push((t, false));
        true
    }

    fn pop(&mut self) {
        self.path.pop();
    }

    fn absorbs(&mut self, _below: Groups) -> bool {
        self.path[self.path.len() - 1].1
    }
}

/// The parser of a classification walk. While the rule instance only moves
/// through states without rule references, a DFA state per byte is all it
/// needs (most of the vocabulary inside strings and free text); at the first
/// state with a rule reference it switches to an Earley parser seeded there,
/// which behaves the same because the seed is the same rule instance.
///
/// In Earley mode the walk runs over a lazily built automaton of parse
/// contexts: an Earley set is interned as its kernel items with each origin
/// replaced by its own context (registers by class), so equal contexts take
/// every continuation alike, and the transition (context, byte) is computed
/// with the real parser once per walk. Inside a string under a counter the
/// walk then costs a table lookup per trie node instead of an Earley step.
/// The real parser lags behind the walk and replays the path's bytes when a
/// transition is missing.
struct LocalStepper<'a> {
    parser: Parser,
    a: &'a Automaton,
    rule: u32,
    /// The parser's set the walk starts from: 1 in a walk from a state alone
    /// (set 0 stands for the unknown context), the last set of a real parse
    /// in a walk in context (see [`LocalStepper::in_context`]).
    seed: usize,
    /// Walking in a real context: no flag per context is needed.
    in_context: bool,
    /// Context per byte consumed in Earley mode (the seed's set first).
    ctx: Vec<u32>,
    /// Bytes of the Earley part the real parser has consumed (<= the walk's).
    synced: usize,
    /// The contexts met so far; their flag: does the seed's rule instance end there?
    memo: SetMemo,
    /// Past [`LOCAL_CONTEXTS`] contexts, or for a recheck of a few tokens
    /// (see [`DIRECT_RECHECK`]), the walk drives the parser directly.
    memo_off: bool,
    /// Byte groups a DFA state takes back to itself; per context (by id), the
    /// groups known to loop and the groups already tried.
    dfa_loops: LoopCache<'a>,
    ctx_loops: Vec<(Groups, Groups)>,
    /// Per DFA state the walk went from DFA mode into Earley mode at, the
    /// context of the parser seeded there; and the state whose seeded
    /// parser `parser` stands for but is not built yet. A search state's
    /// walk enters Earley mode after each of 19,000 first characters, and
    /// building a parser and interning its set each time was most of it.
    seeds: FxHashMap<u32, u32>,
    unbuilt: Option<u32>,
    /// DFA states of the instance, one per byte consumed in DFA mode (the seed first).
    dfa: Vec<u32>,
    /// Byte depth at which the Earley parser took over, if it has.
    earley_from: Option<usize>,
    /// `completed[i]`: the rule instance can end after `i + 1` bytes.
    completed: Vec<bool>,
    /// The bytes pushed so far, plus the last byte tried (for `on_dead`).
    path: Vec<u8>,
    num_completed: usize,
}

impl<'a> LocalStepper<'a> {
    fn new(a: &'a Automaton, parser: Parser, state: u32, cap: u32) -> Self {
        let dfa_mode = !a.aux_state[state as usize] && a.rule_edges(state).is_empty();
        Self::seeded(a, parser, state, cap, dfa_mode, false)
    }

    /// A walk from the last set of `parser`, a real parse (whose earlier
    /// sets are the context): tokens are taken as far as that parse takes
    /// them, through the completion of any rule, so every token it accepts
    /// is valid there.
    fn in_context(a: &'a Automaton, parser: Parser, cap: u32) -> Self {
        Self::seeded(a, parser, 0, cap, false, true)
    }

    fn seeded(
        a: &'a Automaton,
        parser: Parser,
        state: u32,
        cap: u32,
        dfa_mode: bool,
        in_context: bool,
    ) -> Self {
        let unbounded = parser.unbounded();
        let seed = if in_context { parser.num_sets() - 1 } else { 1 };
        let mut st = LocalStepper {
            parser,
            a,
            rule: a.state_rule[state as usize],
            seed,
            in_context,
            ctx: Vec::with_capacity(64),
            synced: 0,
            memo: SetMemo::new(a, seed, cap, unbounded),
            memo_off: false,
            dfa_loops: LoopCache::new(None),
            ctx_loops: Vec::new(),
            seeds: FxHashMap::default(),
            unbuilt: None,
            dfa: vec![state],
            earley_from: if dfa_mode { None } else { Some(0) },
            completed: Vec::with_capacity(64),
            path: Vec::with_capacity(64),
            num_completed: 0,
        };
        if !dfa_mode {
            st.enter_earley();
        }
        st
    }

    /// The parser was just seeded: its seed set is the first context.
    fn enter_earley(&mut self) {
        self.ctx.clear();
        self.synced = 0;
        let c = self.intern_current();
        self.ctx.push(c);
    }

    /// The context of the real parser's last set (`synced` bytes in).
    fn intern_current(&mut self) -> u32 {
        let (a, rule, local) = (self.a, self.rule, !self.in_context);
        self.memo.intern(a, &self.parser, &self.ctx, |p| {
            local && p.completes_at_origin0(a, rule)
        })
    }

    /// Move the walk from path `from` to as much of `t` as it takes (popping
    /// back to their common prefix first); returns the bytes of `t` taken.
    fn retarget(&mut self, from: &[u8], t: &[u8]) -> usize {
        let lcp = from.iter().zip(t).take_while(|(x, y)| x == y).count();
        for _ in lcp..from.len() {
            self.pop();
        }
        let mut depth = lcp;
        while depth < t.len() && self.push(t[depth]) {
            depth += 1;
        }
        depth
    }

    /// After the byte at `depth` was refused: could some completion point of
    /// the rule hand the rest of the token to a parent? The byte right after
    /// the completion must be in the rule's static FOLLOW set.
    fn may_continue_in_parent(&self, depth: usize) -> bool {
        let follow = &self.a.follow[self.rule as usize];
        (0..depth.min(self.completed.len()))
            .any(|i| self.completed[i] && self.path.get(i + 1).is_some_and(|&b| byte_in(follow, b)))
    }
}

impl LocalStepper<'_> {
    /// Replay the walk's path into the real parser up to relative Earley depth `r`.
    fn sync_to(&mut self, r: usize) {
        if let Some(t) = self.unbuilt.take() {
            let mode = self.parser.unbounded();
            self.parser = Parser::starting_at_unbounded(self.a, t, 0, mode);
        }
        let d = self.earley_from.unwrap_or(0);
        while self.synced < r {
            let ok = self.parser.push_byte(self.a, self.path[d + self.synced]);
            debug_assert!(ok, "a replayed byte was refused");
            self.synced += 1;
        }
    }

    /// The context after `path` then `byte` from context `c` at the walk's
    /// current node (relative Earley depth `r`), each missing transition
    /// computed with the real parser; None if refused or the memo is full.
    /// The parser is left at depth `r`.
    fn probe_path(&mut self, r: usize, c: u32, path: &[u8], byte: u8) -> Option<u32> {
        let mut cur = c;
        for (i, &b) in path.iter().chain([&byte]).enumerate() {
            let slot = self.memo.slot(self.a, cur, b);
            let known = self.memo.next[slot];
            if known != NEXT_UNKNOWN {
                cur = known;
            } else {
                if self.memo.is_full() {
                    return None;
                }
                // Bring the parser to the node, then down the bytes before
                // `b`, keeping their contexts for the origins of new items.
                self.sync_to(r);
                let mut q = c;
                for &p in &path[..i] {
                    let ok = self.parser.push_byte(self.a, p);
                    debug_assert!(ok, "a known transition was refused");
                    q = self.memo.next[self.memo.slot(self.a, q, p)];
                    self.ctx.push(q);
                }
                cur = if self.parser.push_byte(self.a, b) {
                    self.synced = r + i + 1;
                    self.intern_current()
                } else {
                    NEXT_DEAD
                };
                self.ctx.truncate(r + 1);
                self.parser.truncate(self.seed + 1 + r);
                self.synced = r;
                self.memo.next[slot] = cur;
            }
            if cur == NEXT_DEAD {
                return None;
            }
        }
        Some(cur)
    }

    /// Does context `c` (at relative Earley depth `r`) take every byte of
    /// the subtree (or every non-ASCII character) back to itself?
    fn context_loops(&mut self, r: usize, c: u32, below: Groups) -> bool {
        use crate::trie::{ALL_GROUPS, GROUPS_HIGH, NO_DIGITS, UTF8_WHOLE};
        if self.ctx_loops.len() <= c as usize {
            self.ctx_loops.resize(c as usize + 1, (0, 0));
        }
        // Per context: the groups (and, as UTF8_WHOLE, every non-ASCII
        // character) known to loop back to it, and those tried.
        let (loops, tried) = self.ctx_loops[c as usize];
        let mut groups = below & ALL_GROUPS;
        if groups & tried & !loops != 0 {
            return false;
        }
        // A valid UTF-8 subtree may loop through whole characters
        // instead of byte group by byte group.
        let by_char = below & UTF8_WHOLE != 0 && groups & GROUPS_HIGH != 0;
        if by_char {
            groups &= !GROUPS_HIGH;
        }
        // Equal contexts: the same items and flag after every such byte.
        let mut untried = groups & !tried;
        while untried != 0 {
            let g = untried & untried.wrapping_neg();
            untried &= untried - 1;
            let ok = crate::trie::group_bytes(g).all(|b| self.probe_path(r, c, &[], b) == Some(c));
            let e = &mut self.ctx_loops[c as usize];
            *e = (e.0 | if ok { g } else { 0 }, e.1 | g);
            if !ok {
                return false;
            }
        }
        if !by_char {
            return true;
        }
        // Every character, or, below a node without digits, every other
        // one: behind `.*` each Unicode digit of a `\d{5}` search starts a
        // count of its own, every other character leads back.
        for (bit, except) in [
            (UTF8_WHOLE, None),
            (NO_DIGITS, Some(crate::grammar::regex::digit_chars())),
        ] {
            if bit != UTF8_WHOLE && below & bit == 0 {
                break;
            }
            let (loops, tried) = self.ctx_loops[c as usize];
            let ok = if tried & bit == 0 {
                let ok = crate::trie::loops_over_non_ascii(c, except, |_, path, b| {
                    self.probe_path(r, c, path, b)
                });
                let e = &mut self.ctx_loops[c as usize];
                *e = (e.0 | if ok { bit } else { 0 }, e.1 | bit);
                ok
            } else {
                loops & bit != 0
            };
            if ok {
                return true;
            }
        }
        false
    }
}

impl ByteStepper for LocalStepper<'_> {
    fn absorbs(&mut self, below: Groups) -> bool {
        let a = self.a;
        match self.earley_from {
            None => {
                let q = self.dfa[self.dfa.len() - 1];
                self.dfa_loops.absorbs(a, q, below)
            }
            Some(_) if self.memo_off => false,
            Some(d) => {
                let r = self.completed.len() - d;
                let c = self.ctx[r];
                self.context_loops(r, c, below)
            }
        }
    }

    #[inline]
    fn push(&mut self, byte: u8) -> bool {
        self.path.truncate(self.completed.len());
        self.path.push(byte);
        let a = self.a;
        let c = if let Some(d) = self.earley_from {
            let r = self.completed.len() - d;
            if self.memo_off {
                self.sync_to(r);
                if !self.parser.push_byte(a, byte) {
                    return false;
                }
                self.synced += 1;
                self.ctx.push(NEXT_DEAD);
                let c = !self.in_context && self.parser.completes_at_origin0(a, self.rule);
                self.completed.push(c);
                self.num_completed += usize::from(c);
                return true;
            }
            let slot = self.memo.slot(a, self.ctx[r], byte);
            let mut t = self.memo.next[slot];
            if t == NEXT_UNKNOWN {
                // Bring the real parser to this node, then take the byte.
                self.sync_to(r);
                t = if self.parser.push_byte(a, byte) {
                    self.synced += 1;
                    if self.memo.is_full() {
                        self.memo_off = true;
                        self.ctx.push(NEXT_DEAD);
                        let c = !self.in_context && self.parser.completes_at_origin0(a, self.rule);
                        self.completed.push(c);
                        self.num_completed += usize::from(c);
                        return true;
                    }
                    self.intern_current()
                } else {
                    NEXT_DEAD
                };
                self.memo.next[slot] = t;
            }
            if t == NEXT_DEAD {
                return false;
            }
            self.ctx.push(t);
            self.memo.flags[t as usize]
        } else {
            let cur = self.dfa[self.dfa.len() - 1];
            let t = a.next_byte(cur, byte);
            if t == crate::automaton::DEAD {
                return false;
            }
            self.dfa.push(t);
            if a.rule_edges(t).is_empty() {
                a.accepting[t as usize]
            } else {
                self.earley_from = Some(self.completed.len() + 1);
                self.ctx.clear();
                self.synced = 0;
                let c = match self.seeds.get(&t) {
                    // The parser is built when a transition needs it.
                    Some(&c) => {
                        self.unbuilt = Some(t);
                        c
                    }
                    None => {
                        let mode = self.parser.unbounded();
                        self.parser = Parser::starting_at_unbounded(a, t, 0, mode);
                        self.unbuilt = None;
                        let c = self.intern_current();
                        self.seeds.insert(t, c);
                        c
                    }
                };
                self.ctx.push(c);
                self.memo.flags[c as usize]
            }
        };
        self.completed.push(c);
        self.num_completed += usize::from(c);
        true
    }
    #[inline]
    fn pop(&mut self) {
        let depth = self.completed.len();
        match self.earley_from {
            Some(d) if depth > d => {
                self.ctx.pop();
                let r = depth - 1 - d;
                if self.synced > r {
                    self.parser.truncate(self.seed + 1 + r);
                    self.synced = r;
                }
            }
            Some(d) if d > 0 => {
                // Back out of the byte that entered Earley mode.
                self.earley_from = None;
                self.unbuilt = None;
                self.dfa.pop();
            }
            Some(_) => {}
            None => {
                self.dfa.pop();
            }
        }
        if self.completed.pop() == Some(true) {
            self.num_completed -= 1;
        }
    }
}

/// A lazily built automaton over the Earley sets one walk reaches. A set is
/// interned as its kernel items with each origin replaced by the context of
/// that set when the walk made it (sets from `base` on), or by the set's
/// index when it is older (fixed for the whole walk); registers by class.
/// Equal contexts take every continuation of at most `L` bytes alike, so the
/// transition (context, byte class) is computed with the real parser once:
/// the parser reads a byte only through its class, and a schema's string
/// content is a few dozen classes where a walk meets hundreds of bytes.
#[derive(Debug)]
struct SetMemo {
    base: usize,
    cap: u32,
    /// Byte classes of the automaton: a context's row of transitions.
    width: usize,
    /// The walk's parser's counter maxima (registers by class accordingly,
    /// see [`register_class`]).
    unbounded: Unbounded,
    ids: FxHashMap<Box<[u32]>, u32>,
    /// `next[c * width + class]`: the context after a byte of `class`, or
    /// UNKNOWN / DEAD.
    next: Vec<u32>,
    /// A caller's flag per context.
    flags: Vec<bool>,
    rows: Vec<[u32; 4]>,
}

impl SetMemo {
    fn new(a: &Automaton, base: usize, cap: u32, unbounded: Unbounded) -> SetMemo {
        SetMemo {
            base,
            cap,
            width: a.num_classes,
            unbounded,
            ids: FxHashMap::default(),
            next: Vec::new(),
            flags: Vec::new(),
            rows: Vec::new(),
        }
    }

    #[inline]
    fn slot(&self, a: &Automaton, c: u32, byte: u8) -> usize {
        c as usize * self.width + a.class_of[byte as usize] as usize
    }

    fn is_full(&self) -> bool {
        self.flags.len() >= LOCAL_CONTEXTS
    }

    /// The context of `parser`'s last set; `ctx[d]` is the context of set
    /// `base + d`. `flag` is computed for a new context.
    fn intern(
        &mut self,
        a: &Automaton,
        parser: &Parser,
        ctx: &[u32],
        flag: impl FnOnce(&Parser) -> bool,
    ) -> u32 {
        const OLD: u32 = 1 << 31;
        self.rows.clear();
        // The flag is part of the key: items left out below may decide it.
        let flag = flag(parser);
        self.rows.push([u32::MAX, u32::from(flag), 0, 0]);
        for it in parser
            .current()
            .iter()
            .filter(|it| it.kernel && is_live(a, it.state))
        {
            let o = it.origin as usize;
            let o = if o < self.base {
                OLD | it.origin
            } else {
                ctx[o - self.base]
            };
            let keep = (
                self.unbounded.keeps_maximum(it.origin),
                self.unbounded.keeps_minimum(),
            );
            let class = register_class(a, it.state, it.aux, self.cap, keep);
            self.rows
                .push([it.state, (class >> 32) as u32, class as u32, o]);
        }
        self.rows.sort_unstable();
        let key = self.rows.as_flattened();
        if let Some(&c) = self.ids.get(key) {
            return c;
        }
        let c = self.flags.len() as u32;
        self.ids.insert(key.into(), c);
        self.flags.push(flag);
        self.next.resize(self.next.len() + self.width, NEXT_UNKNOWN);
        c
    }
}

/// [`SetMemo::next`]: transition not computed yet / byte refused.
const NEXT_UNKNOWN: u32 = u32::MAX;
const NEXT_DEAD: u32 = u32::MAX - 1;
/// [`CompiledGrammar::reclassify`] drives the parser directly for at most
/// this many tokens.
const DIRECT_RECHECK: usize = 64;

/// Contexts one classification walk memoises (a transition row is a u32
/// per byte class, 1 KiB at most).
const LOCAL_CONTEXTS: usize = 4096;

/// Compiles grammars against one vocabulary; caches results by grammar text.
#[derive(Debug)]
pub struct Compiler {
    vocab: Arc<Vocabulary>,
    limits: Limits,
    cache: Mutex<FxHashMap<CacheKey, Arc<CompiledGrammar>>>,
    lexical: Arc<LexicalCache>,
}

/// What a compiled grammar was compiled from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum CacheKey {
    /// GBNF text and start rule.
    Gbnf(Vec<u8>, String),
    /// A regular expression.
    Regex(String),
    /// A JSON Schema (compact re-serialisation, key order kept) and its options;
    /// `None` is the builtin any-JSON grammar.
    JsonSchema(Option<String>, SchemaOptions),
}

/// What a JSON Schema compile enforced and what it skipped (`lenient`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaReport {
    /// `(JSON pointer, keyword)` of every enforced keyword.
    pub enforced: Vec<(String, String)>,
    /// `(JSON pointer, keyword)` of keywords skipped because of `lenient`.
    pub ignored: Vec<(String, String)>,
}

impl Compiler {
    /// A compiler for `vocab` with default limits.
    pub fn new(vocab: Arc<Vocabulary>) -> Compiler {
        Self::with_limits(vocab, Limits::default())
    }

    /// A compiler with explicit limits.
    pub fn with_limits(vocab: Arc<Vocabulary>, limits: Limits) -> Compiler {
        Compiler {
            vocab,
            limits,
            cache: Mutex::new(FxHashMap::default()),
            lexical: Arc::default(),
        }
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    /// Compile GBNF text (llama.cpp dialect) with start rule `root`.
    ///
    /// The masks of the grammar's states are built here, within
    /// [`PRECOMPUTE_BUDGET`] (3.5 ms for the comparative benchmark's
    /// arithmetic grammar, 15 ms for its C-like one): a state's first
    /// mask walks the whole trie with a parser (0.1-0.5 ms with a 150,000
    /// token vocabulary), which would otherwise fall on a generation's steps.
    pub fn compile_gbnf(&self, src: &[u8], root: &str) -> Result<Arc<CompiledGrammar>> {
        let key = CacheKey::Gbnf(src.to_vec(), root.to_owned());
        let text = std::str::from_utf8(src).ok();
        let g = self.cached(key, "grammar", src.len(), text, || parse_gbnf(src, root))?;
        g.precompute(PRECOMPUTE_BUDGET);
        Ok(g)
    }

    /// Compile a regular expression (Python `re` / ECMAScript syntax, see
    /// [`crate::grammar::regex`]) into a grammar that matches exactly the
    /// strings the pattern fully matches.
    ///
    /// A regex is one DFA of a few dozen states: the masks of its states are
    /// built here, within [`PRECOMPUTE_BUDGET`] (0.3-3.5 ms for the
    /// comparative benchmark's regexes), so that no step of a generation walks
    /// the trie; states left over (and counter states) stay lazy.
    pub fn compile_regex(&self, pattern: &str) -> Result<Arc<CompiledGrammar>> {
        let key = CacheKey::Regex(pattern.to_owned());
        let g = self.cached(key, "pattern", pattern.len(), Some(pattern), || {
            parse_regex(pattern)
        })?;
        g.precompute(PRECOMPUTE_BUDGET);
        Ok(g)
    }

    /// Compile a JSON Schema given as text (see [`crate::grammar::schema`]).
    /// Invalid JSON is an [`ErrorKind::Grammar`] error.
    pub fn compile_json_schema(
        &self,
        schema: &str,
        opts: &SchemaOptions,
    ) -> Result<(Arc<CompiledGrammar>, SchemaReport)> {
        let value: serde_json::Value = serde_json::from_str(schema).map_err(|e| {
            Error::new(ErrorKind::Grammar, format!("schema is not valid JSON: {e}"))
        })?;
        self.compile_json_schema_value(&value, opts)
    }

    /// Compile a JSON Schema value. The front-end runs on every call (it is
    /// cheap, and its coverage report is returned); the automaton is cached by
    /// the schema's compact text and the options. The masks of the first
    /// states are built here, within [`SCHEMA_PRECOMPUTE_BUDGET`].
    pub fn compile_json_schema_value(
        &self,
        schema: &serde_json::Value,
        opts: &SchemaOptions,
    ) -> Result<(Arc<CompiledGrammar>, SchemaReport)> {
        let text = schema.to_string();
        let sg = schema_to_grammar(schema, opts)?;
        let report = SchemaReport {
            enforced: sg.enforced,
            ignored: sg.ignored,
        };
        let key = CacheKey::JsonSchema(Some(text.clone()), opts.clone());
        let g = self
            .cached(key, "schema", text.len(), None, || Ok(sg.grammar))
            .map_err(|e| {
                // The automaton's wording for an empty language, in schema terms.
                if e.kind() == ErrorKind::Grammar
                    && e.message().starts_with("the grammar matches no string")
                {
                    Error::new(ErrorKind::Grammar, "schema at / accepts no value")
                } else {
                    e
                }
            })?;
        g.precompute(SCHEMA_PRECOMPUTE_BUDGET);
        warm_after(&g, COMPACT_OBJECT_START);
        Ok((g, report))
    }

    /// Compile the builtin grammar of any JSON value in the layout of `opts`.
    pub fn compile_builtin_json(&self, opts: &SchemaOptions) -> Result<Arc<CompiledGrammar>> {
        let key = CacheKey::JsonSchema(None, opts.clone());
        self.cached(key, "schema", 0, None, || builtin_json_grammar(opts))
    }

    /// The compiled grammar for `key`, from the cache or built by `parse`
    /// (after checking the source size limit) and then cached.
    fn cached(
        &self,
        key: CacheKey,
        what: &str,
        len: usize,
        source: Option<&str>,
        parse: impl FnOnce() -> Result<Grammar>,
    ) -> Result<Arc<CompiledGrammar>> {
        if let Some(g) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(g);
        }
        if len > self.limits.max_grammar_bytes {
            return Err(Error::new(
                ErrorKind::Limit,
                format!(
                    "{what} is {len} bytes, exceeds Limits.max_grammar_bytes={}",
                    self.limits.max_grammar_bytes
                ),
            ));
        }
        let grammar = parse()?;
        let compiled = Arc::new(CompiledGrammar::from_grammar_shared(
            grammar,
            self.vocab.clone(),
            &self.limits,
            source,
            self.lexical.clone(),
        )?);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, compiled.clone());
        }
        Ok(compiled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string of 1 to `n` bytes over `alphabet`, shortest first.
    fn strings_up_to(alphabet: &[u8], n: usize) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut layer: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..n {
            layer = layer
                .iter()
                .flat_map(|p| alphabet.iter().map(move |&b| [p.as_slice(), &[b]].concat()))
                .collect();
            out.extend(layer.iter().cloned());
        }
        out
    }

    /// Every string of 1 to 3 bytes over a small alphabet that JSON strings,
    /// keys and numbers use: tokens that end strings, span keys and values.
    fn vocab() -> Arc<Vocabulary> {
        let mut tokens = strings_up_to(b"ab\"\\:, 1", 3);
        tokens.push(b"<eos>".to_vec());
        let eos = (tokens.len() - 1) as u32;
        Arc::new(Vocabulary::new(tokens, None, vec![eos], vec![eos]).expect("vocabulary"))
    }

    /// Equal sub-automata get equal keys across grammars whose byte classes
    /// and state numbers differ; one byte more or less makes another key.
    #[test]
    fn lexical_keys_are_canonical() {
        let compiler = Compiler::new(vocab());
        let key = |src: &str| {
            let g = compiler.compile_gbnf(src.as_bytes(), "root").expect("gbnf");
            let a = g.automaton();
            let rule = a.rule_names.iter().position(|n| n == "str").expect("rule");
            lexical_key(a, a.rule_start[rule]).expect("lexical")
        };
        let plain = key(r#"root ::= "x" str
str ::= "\"" [a-z]* "\"""#);
        let other_classes = key(r#"root ::= "yy" [0-9m] other str other
other ::= "q" | "-"
str ::= "\"" [a-z]* "\"""#);
        let one_byte_less = key(r#"root ::= "x" str
str ::= "\"" [a-y]* "\"""#);
        assert_eq!(plain, other_classes);
        assert_ne!(plain, one_byte_less);
    }

    /// Lexical state `s` walked against reference `r` (whose entry keeps
    /// its ranks or gathers them later, as `keep` says) classifies as `s`
    /// walked alone, with FOLLOW set `f`.
    fn assert_copies_exact(g: &CompiledGrammar, s: u32, r: u32, f: &ByteSet, keep: bool) {
        let n = g.vocab().vocab_size();
        let e = g.classify_lexical(r, f, None, keep);
        let (plain, copied) = (
            g.classify_lexical(s, f, None, false),
            g.classify_lexical(s, f, Some((r, &e)), false),
        );
        assert_eq!(bits(&plain, n), bits(&copied, n), "referenced, state {s}");
        assert_eq!(plain.uncertain, copied.uncertain, "referenced, state {s}");
    }

    /// Schema options that let additional properties through (validation
    /// semantics), so objects get key complements.
    fn lenient() -> SchemaOptions {
        SchemaOptions {
            strict_mode: false,
            ..SchemaOptions::default()
        }
    }

    fn bits(e: &CacheEntry, n: usize) -> Vec<u32> {
        let mut m = vec![0u32; crate::mask::words_for(n)];
        e.accepted.or_into(&mut m);
        m
    }

    /// Grammars whose masks hand uncertain tokens over (the last two with
    /// few contexts).
    const HANDOVER_GRAMMARS: [&str; 4] = [
        "root ::= item (\",\" ws item)*\nitem ::= \"a\" | \"b\" ws | \"\\\"\" [ab ]* \"\\\"\"\nws ::= \" \"*",
        "root ::= expr\nexpr ::= term (ws \":\" ws term)*\n\
         term ::= \"a\"+ ws | \"1\" | \"b\" ws expr ws \"b\"\nws ::= [ ]*",
        "root ::= \"a\" | root root [ab] | \"aa\"",
        "root ::= (\"a\" ws)+ \"1\"\nws ::= ([ ,]+)",
    ];

    /// A token `mask` allows, other than a stop token, picked by `next`.
    fn random_allowed(
        mask: &[u32],
        vocab: &Vocabulary,
        next: &mut impl FnMut() -> u64,
    ) -> Option<u32> {
        let allowed: Vec<u32> = (0..vocab.vocab_size() as u32)
            .filter(|&t| mask[(t / 32) as usize] >> (t % 32) & 1 == 1)
            .filter(|t| !vocab.stop_ids().contains(t))
            .collect();
        allowed.get(next() as usize % allowed.len().max(1)).copied()
    }

    /// Masks along random walks are the same whether hand-overs are
    /// decided suffix by suffix or by a walk in context.
    #[test]
    fn handover_by_walk_equals_by_suffix() {
        let vocab = vocab();
        let words = crate::mask::words_for(vocab.vocab_size());
        let mut next = crate::xorshift(0x9E37_79B9_7F4A_7C15);
        let mut steps = 0;
        for src in HANDOVER_GRAMMARS {
            let ir = parse_gbnf(src.as_bytes(), "root").expect("grammar");
            let compiled = |walked| {
                let mut g =
                    CompiledGrammar::from_grammar(&ir, vocab.clone(), &Limits::default(), None)
                        .expect("compiles");
                g.walked_handover = walked;
                Arc::new(g)
            };
            let (by_walk, by_suffix) = (compiled(0), compiled(usize::MAX));
            for _ in 0..30 {
                let mut w = crate::Matcher::new(by_walk.clone());
                let mut s = crate::Matcher::new(by_suffix.clone());
                let mut path = Vec::new();
                for _ in 0..12 {
                    let (mut mw, mut ms) = (vec![0u32; words], vec![0u32; words]);
                    w.fill_mask(&mut mw);
                    s.fill_mask(&mut ms);
                    assert_eq!(mw, ms, "{src}: masks differ after {path:?}");
                    steps += 1;
                    let Some(t) = random_allowed(&ms, &vocab, &mut next) else {
                        break;
                    };
                    assert!(w.accept_token(t) && s.accept_token(t));
                    path.push(t);
                }
            }
        }
        assert!(steps > 400, "{steps} steps");
    }

    /// A matcher that has handed many uncertain items over (its own copy
    /// of the answers filled along the way, and started over at
    /// `HANDED_LOCAL_MAX`) masks as a fresh matcher brought to the same
    /// point does, whose copy is empty.
    #[test]
    fn kept_hand_over_answers_mask_as_fresh_ones() {
        let vocab = vocab();
        let words = crate::mask::words_for(vocab.vocab_size());
        let mut next = crate::xorshift(0x2545_F491_4F6C_DD1D);
        let (mut steps, mut most) = (0, 0);
        for src in &HANDOVER_GRAMMARS[..2] {
            let ir = parse_gbnf(src.as_bytes(), "root").expect("grammar");
            let g = Arc::new(
                CompiledGrammar::from_grammar(&ir, vocab.clone(), &Limits::default(), None)
                    .expect("compiles"),
            );
            for _ in 0..4 {
                let mut long = crate::Matcher::new(g.clone());
                let mut path = Vec::new();
                for _ in 0..150 {
                    let mut fresh = crate::Matcher::new(g.clone());
                    assert!(path.iter().all(|&t| fresh.accept_token(t)));
                    let (mut ml, mut mf) = (vec![0u32; words], vec![0u32; words]);
                    long.fill_mask(&mut ml);
                    fresh.fill_mask(&mut mf);
                    assert_eq!(ml, mf, "{src}: masks differ after {path:?}");
                    most = most.max(long.handed_answers());
                    assert!(long.handed_answers() <= HANDED_LOCAL_MAX);
                    steps += 1;
                    let Some(t) = random_allowed(&ml, &vocab, &mut next) else {
                        break;
                    };
                    assert!(long.accept_token(t));
                    path.push(t);
                }
            }
        }
        assert!(
            steps > 400 && most > 0,
            "{steps} steps, at most {most} answers kept"
        );
    }

    #[test]
    fn lexical_walk_equals_the_parser_walk() {
        let vocab = vocab();
        let n = vocab.vocab_size();
        let compiler = Compiler::new(vocab);
        let opts = lenient();
        let grammars = [
            compiler
                .compile_json_schema(
                    r#"{"type":"object","properties":{"ab":{"type":"string"},"a":{"type":"integer"},"b\"":{"enum":["a:b","1"]}}}"#,
                    &opts,
                )
                .expect("schema")
                .0,
            compiler.compile_regex(r#"(a|b)*"1?|"a\\"#).expect("regex"),
            compiler
                .compile_gbnf(br#"root ::= "\"" [ab:, ]* "\"" ("," root)?"#, "root")
                .expect("gbnf"),
        ];
        let (mut checked, mut narrowed, mut referenced) = (0, 0, 0);
        for g in &grammars {
            for s in 0..g.num_states() as u32 {
                if lexical_key(g.automaton(), s).is_none() {
                    continue;
                }
                let a = g.automaton();
                let follow = &a.follow[a.state_rule[s as usize] as usize];
                let (slow, fast) = (g.classify(s, 0), g.classify_lexical(s, follow, None, false));
                assert_eq!(bits(&slow, n), bits(&fast, n), "accepted, state {s}");
                assert_eq!(slow.uncertain, fast.uncertain, "uncertain, state {s}");
                // The shared form (any byte may follow), filtered by this FOLLOW.
                let shared = g.classify_lexical(s, &ANY_BYTE, None, false);
                assert_eq!(
                    bits(&slow, n),
                    bits(&shared, n),
                    "shared accepted, state {s}"
                );
                let filtered = g.hand_over(s, follow, &shared.uncertain);
                assert_eq!(slow.uncertain, filtered, "filtered uncertain, state {s}");
                narrowed += usize::from(filtered.len() < shared.uncertain.len());
                // Copying subtrees from a reference state changes nothing.
                if let Some(r) = g.lexical_reference(s) {
                    // Ranks kept by the walk, and gathered from the ids later.
                    for (f, keep) in [(follow, true), (&ANY_BYTE, false)] {
                        assert_copies_exact(g, s, r, f, keep);
                    }
                    referenced += 1;
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} lexical states");
        assert!(narrowed > 0, "FOLLOW never narrowed a shared entry");
        assert!(referenced > 0, "no key complement walked against its tail");
    }

    /// A walk against a reference steps only the children of bytes that
    /// lead the two apart and copies the rest: on a vocabulary with wide
    /// nodes (every printable byte, many words) and UTF-8 tokens, whole and
    /// cut, the entries of key complements walked against their tails are
    /// those walked alone.
    #[test]
    fn referenced_walks_step_only_children_apart() {
        let pieces: [&[u8]; 16] = [
            b"a",
            b"b",
            b"n",
            b"e",
            b"m",
            b"x",
            b"1",
            b"\"",
            b":",
            b",",
            b" ",
            b"\\",
            "\u{e9}".as_bytes(),
            "\u{65e5}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b"\xc3",
        ];
        let mut rng = crate::xorshift(0x0dd_ba11);
        let mut tokens: Vec<Vec<u8>> = (0x20..0x7f).map(|b| vec![b]).collect();
        for _ in 0..6000 {
            let len = 1 + rng() % 4;
            tokens.push(
                (0..len)
                    .flat_map(|_| pieces[(rng() % pieces.len() as u64) as usize].to_vec())
                    .collect(),
            );
        }
        let vocab = test_vocab(tokens);
        let n = vocab.vocab_size();
        let compiler = Compiler::new(vocab);
        let opts = lenient();
        let schemas = [
            r#"{"type":"object","properties":{"name":{},"nab":{},"n\u00e9":{},"\u65e5\u672c":{},"a\"b":{},"e1":{}}}"#,
            r#"{"type":"object","properties":{"a":{"type":"integer"},"ab":{},"\u00e9x":{}},"additionalProperties":{"type":"string"}}"#,
        ];
        let mut grammars: Vec<Arc<CompiledGrammar>> = schemas
            .iter()
            .map(|s| compiler.compile_json_schema(s, &opts).expect("schema").0)
            .collect();
        // After `a` the rule may end (a hand-over) where its tail may not.
        grammars.push(compiler.compile_regex(r#"[^"]*"|a"#).expect("regex"));
        let (mut referenced, mut filtered_via) = (0, 0);
        for g in &grammars {
            let a = g.automaton();
            for s in 0..g.num_states() as u32 {
                let Some(r) = lexical_key(a, s).and_then(|_| g.lexical_reference(s)) else {
                    continue;
                };
                let follow = &a.follow[a.state_rule[s as usize] as usize];
                for f in [follow, &ANY_BYTE] {
                    assert_copies_exact(g, s, r, f, true);
                }
                // The grammar's entry: the shared one (walked against the
                // reference) filtered by FOLLOW, partly through the
                // reference's filtered entry.
                let (e, direct) = (g.entry(s), g.classify_lexical(s, follow, None, false));
                assert_eq!(bits(e, n), bits(&direct, n), "entry, state {s}");
                assert_eq!(e.uncertain, direct.uncertain, "entry, state {s}");
                filtered_via += usize::from(*follow != ANY_BYTE && !e.uncertain.is_empty());
                referenced += 1;
            }
        }
        assert!(
            referenced >= 2,
            "{referenced} states walked against a reference"
        );
        assert!(
            filtered_via >= 2,
            "{filtered_via} entries filtered through a reference"
        );
    }

    /// Shared entries filtered by a FOLLOW set are memoised per (entry,
    /// FOLLOW) across the grammars of a compiler: the same string rule
    /// before `:` in two grammars shares one filtered entry, before `,` it
    /// gets its own, and each equals the direct classification.
    #[test]
    fn filtered_shared_entries_are_memoised_by_follow() {
        let vocab = vocab();
        let n = vocab.vocab_size();
        let compiler = Compiler::new(vocab);
        let str_rule = "\nstr ::= \"\\\"\" [ab]* \"\\\"\"";
        let grammars: Vec<Arc<CompiledGrammar>> = [
            format!("root ::= str \":\"{str_rule}"),
            format!("root ::= str \",\"{str_rule}"),
            format!("root ::= str \":\" \"1\"{str_rule}"),
        ]
        .iter()
        .map(|src| compiler.compile_gbnf(src.as_bytes(), "root").expect("gbnf"))
        .collect();
        // Per grammar, the entries of the string rule's states by key.
        let mut by_key: Vec<FxHashMap<Vec<u32>, *const CacheEntry>> = Vec::new();
        for g in &grammars {
            let a = g.automaton();
            let mut m = FxHashMap::default();
            for s in 0..g.num_states() as u32 {
                let follow = &a.follow[a.state_rule[s as usize] as usize];
                let Some(key) = lexical_key(a, s).filter(|_| *follow != ANY_BYTE) else {
                    continue;
                };
                let (e, direct) = (g.entry(s), g.classify_lexical(s, follow, None, false));
                assert_eq!(bits(e, n), bits(&direct, n), "state {s}");
                assert_eq!(e.uncertain, direct.uncertain, "state {s}");
                m.insert(key, e as *const CacheEntry);
            }
            by_key.push(m);
        }
        let shared = |i: usize, j: usize| {
            by_key[i]
                .iter()
                .filter(|(k, e)| by_key[j].get(*k) == Some(*e))
                .count()
        };
        assert!(
            shared(0, 2) >= 2,
            "same FOLLOW, {} entries shared",
            shared(0, 2)
        );
        assert_eq!(shared(0, 1), 0, "different FOLLOW, entries shared");
    }

    /// A vocabulary of `tokens` (first occurrences, in the order given: ids
    /// then differ from trie ranks) plus `<eos>`, its stop token.
    fn test_vocab(tokens: Vec<Vec<u8>>) -> Arc<Vocabulary> {
        let mut seen = std::collections::HashSet::new();
        let mut tokens: Vec<Vec<u8>> = tokens
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .collect();
        tokens.push(b"<eos>".to_vec());
        let eos = (tokens.len() - 1) as u32;
        Arc::new(Vocabulary::new(tokens, None, vec![eos], vec![eos]).expect("vocab"))
    }

    /// `e` accepts a non-special token exactly when the parser from state
    /// `s` (register `aux`) takes every byte of it.
    fn assert_exact(g: &CompiledGrammar, s: u32, aux: u32, e: &CacheEntry, what: &str) {
        let (a, vocab) = (g.automaton(), g.vocab());
        for id in 0..vocab.tokenizer_size() as u32 {
            if vocab.is_special(id) {
                continue;
            }
            let t = vocab.token_bytes(id);
            let mut p = crate::automaton::earley::Parser::starting_at(a, s, aux);
            let live = t.iter().all(|&b| p.push_byte(a, b));
            assert_eq!(
                e.accepted.contains(id),
                live,
                "{what}: state {s}/{aux}, token {t:?}"
            );
        }
    }

    /// Subtrees of non-ASCII tokens are skipped where the state loops over
    /// every character (inside strings); token by token through the DFA,
    /// with cut characters, stray continuation bytes and surrogates, must agree.
    #[test]
    fn walks_skip_utf8_subtrees_exactly() {
        let pieces: [&[u8]; 12] = [
            "é".as_bytes(),
            b"\xc3",
            b"\xa9",
            "日本".as_bytes(),
            b"\xe6\x97",
            b"\xed\xa0\x80",
            b"\xff",
            b"a",
            b"\"",
            b" ",
            b"\xf0\x9f\x98",
            "😀".as_bytes(),
        ];
        let mut tokens: Vec<Vec<u8>> = Vec::new();
        for x in &pieces {
            for y in &pieces {
                tokens.push([*x, *y].concat());
                for z in &pieces[..4] {
                    tokens.push([*x, *y, *z].concat());
                }
            }
            tokens.push(x.to_vec());
        }
        // Below "q", word characters only (and a space).
        let words: [&str; 4] = ["é", "日本", "a", " "];
        for y in words {
            tokens.push(format!("q{y}").into_bytes());
            for z in words {
                tokens.push(format!("q{y}{z}").into_bytes());
            }
        }
        let vocab = test_vocab(tokens);
        let compiler = Compiler::new(vocab.clone());
        for g in [
            compiler.compile_regex(r#"[^"]*"x"#).expect("regex"),
            compiler.compile_regex(r#"[^é]*é"#).expect("regex"),
            // Loops over the word characters (`é`, `日本`, the completions of
            // `\xe6\x97`), not over `😀`, `\xc3`'s `×`, or all characters.
            compiler.compile_regex(r#"[\w ]*""#).expect("regex"),
            compiler.compile_regex(r#"[a-zé ]*""#).expect("regex"),
            compiler
                .compile_gbnf(br#"root ::= "\"" [^"]* "\"" ("," root)?"#, "root")
                .expect("gbnf"),
            // Strings whose characters are rule references (the walk runs
            // over parse contexts): under a counter past the longest token,
            // a bounded one, a minimum, a plain repetition, and characters
            // that loop over some non-ASCII but not all.
            compiler
                .compile_gbnf(
                    br#"root ::= "\"" ch{0,300} "\"" ("," root)?
ch ::= [^"\\] | "\\" ["\\n]"#,
                    "root",
                )
                .expect("gbnf"),
            compiler
                .compile_gbnf(
                    br#"root ::= "\"" ch{2,5} "\""
ch ::= [^"]"#,
                    "root",
                )
                .expect("gbnf"),
            compiler
                .compile_gbnf(
                    br#"root ::= "\"" ch{3,} "\""
ch ::= [^"]"#,
                    "root",
                )
                .expect("gbnf"),
            compiler
                .compile_gbnf(
                    br#"root ::= "\"" ch* "\""
ch ::= [^"] | "ab""#,
                    "root",
                )
                .expect("gbnf"),
            compiler
                .compile_gbnf(
                    r#"root ::= "\"" ch* "\""
ch ::= [a-zé-ÿ] | [日本]"#
                        .as_bytes(),
                    "root",
                )
                .expect("gbnf"),
        ] {
            let a = g.automaton();
            for s in 0..g.num_states() as u32 {
                let entries = [
                    lexical_key(a, s).map(|_| g.classify_lexical(s, &ANY_BYTE, None, false)),
                    (!a.aux_state[s as usize]).then(|| g.classify(s, 0)),
                ];
                for e in entries.into_iter().flatten() {
                    assert_exact(&g, s, 0, &e, "utf-8 walk");
                }
            }
        }
    }

    /// A search for Unicode digits behind a repetition (`.*\d{5}` of a
    /// pattern): each digit starts a count of its own, so the walk runs over
    /// parse contexts that never take a digit back to themselves, yet take
    /// every other character back; subtrees without digits (`NO_DIGITS`)
    /// are skipped whole where a context takes every character but the
    /// digits back to itself, and a letter the digits share a lead byte
    /// with is checked, not skipped with them.
    #[test]
    fn walks_skip_digit_free_subtrees_exactly() {
        let pieces = ["٣", "ـ", "ؠ", "é", "a", "1", " ", "\""];
        let mut tokens: Vec<Vec<u8>> = vec![b"\xd9".to_vec()];
        for x in pieces {
            tokens.push(x.into());
            for y in pieces {
                tokens.push(format!("{x}{y}").into());
                for z in pieces {
                    tokens.push(format!("{x}{y}{z}").into());
                }
            }
        }
        // Below "r" and "ؠ", no digit and no quote: letters, one the digits
        // share a lead byte with (ـ) and two they do not (ؠ, ڠ).
        let letters = ["ـ", "ؠ", "ڠ", "é", "a", " "];
        for p in ["r", "ؠ"] {
            for x in letters {
                for y in letters {
                    tokens.push(format!("{p}{x}{y}").into());
                }
            }
        }
        let vocab = test_vocab(tokens);
        let compiler = Compiler::new(vocab.clone());
        // The third refuses ڠ (DA A0) as it does ٠ (D9 A0), so a context
        // meets both lead bytes alike, and ڠ must be tried though ٠ is not.
        for src in [
            r#"[^"]*\d{17}[^"]*""#,
            r#"[^"ـ]*\d{17}[^"ـ]*""#,
            r#"[^"٠ڠ]*[0-9]{17}[^"٠ڠ]*""#,
        ] {
            let g = compiler.compile_regex(src).expect("regex");
            let a = g.automaton();
            for s in 0..g.num_states() as u32 {
                if !a.aux_state[s as usize] {
                    let e = g.classify(s, 0);
                    assert_exact(&g, s, 0, &e, "digit-free walk");
                }
            }
        }
    }

    /// Walks that ignore counter bounds and classify the tokens they may get
    /// wrong again (longer than a maximum, or with a byte that may follow a
    /// counter with a minimum) agree with the bounded walk and with the
    /// parser, token by token; so do counter states at every count.
    #[test]
    fn walks_below_counter_maxima_exactly() {
        // Short tokens and runs longer than the counters' maxima (counters
        // start at 17 iterations; smaller repetitions are unrolled).
        let pieces = ["a", "b", "é", "\"", ",", ":", "\\", "n", "0", "1", "[", "]"];
        let mut tokens: Vec<Vec<u8>> = Vec::new();
        for x in pieces {
            tokens.push(x.into());
            for y in pieces {
                tokens.push(format!("{x}{y}").into());
            }
        }
        for k in [5, 16, 17, 18, 19, 20, 21, 24, 30] {
            for run in ["a", "ab", "1", "é"] {
                let r = run.repeat(k);
                tokens.extend(
                    [
                        r.clone(),
                        format!("\"{r}"),
                        format!("{r}\""),
                        format!("{r}\","),
                    ]
                    .map(String::into_bytes),
                );
                tokens.push(format!("{r}\\n").into());
            }
        }
        // Tokens that end an item and go on past the counter.
        tokens.extend(["\"\":", "\"ab\":", "\"\",:", "a,]", ",]"].map(|t| t.as_bytes().to_vec()));
        let vocab = test_vocab(tokens);
        let compiler = Compiler::new(vocab.clone());
        let (mut checked, mut relaxed_bases, mut runs) = (0, 0, 0);
        for src in [
            r#"root ::= "\"" ch{0,20} "\"" ("," root)?
ch ::= [^"\\] | "\\" ["\\n]"#,
            r#"root ::= "[" (item ("," item){0,20})? "]"
item ::= "\"" [a-z]{1,18} "\"" | [0-9]{2,19}"#,
            r#"root ::= "\"" ch{18,21} "\"" | ch{1,30} ":" root
ch ::= [^"]"#,
            // A counter whose items hold a counter that long tokens reach.
            r#"root ::= ("\"" [a-z]{1,17} "\""){0,19} "."
"#,
            // Minima: strings of at least 17 characters, a range, and a
            // minimum whose FOLLOW set is wide.
            r#"root ::= "\"" ch{17,} "\"" ("," root)?
ch ::= [^"\\] | "\\" ["\\n]"#,
            r#"root ::= "[" "\"" [^"]{18,24} "\"" "]" | [a-z1]{17,} [,:]? root?"#,
            // Counters with minima whose items hold counters.
            r#"root ::= ("a" [a-z1]{17,20} ","){17,19} "]"
"#,
            r#"root ::= ("\"" [a-z]{0,17} "\"" ","?){18,} ":"
"#,
            // Counters of one character each, digits and `é` (a UTF-8
            // piece), whose runs in tokens are shorter or longer than the
            // bounds: entries by item run (see `item_runs`).
            r#"root ::= "\"" [0-9]{18,40} "\"" ("," root)?"#,
            r#"root ::= ([0-9\u00e9]{17,25} ",")* "]""#,
            r#"root ::= [01]{17,19} ":" | "[" [0-9]{20,} "]""#,
            r#"root ::= "\"" [0-9]{35,40} "\"" ("," root)?"#,
        ] {
            let g = compiler.compile_gbnf(src.as_bytes(), "root").expect("gbnf");
            let a = g.automaton();
            let n = vocab.vocab_size();
            let bits = |e: &CacheEntry| {
                (0..n as u32)
                    .map(|t| e.accepted.contains(t))
                    .collect::<Vec<_>>()
            };
            for s in 0..g.num_states() as u32 {
                if a.aux_state[s as usize] {
                    // Counter states at every count: the walk with the
                    // instance's maximum ignored, narrowed to what is left.
                    if !matches!(
                        a.rule_kind[a.state_rule[s as usize] as usize],
                        RuleKind::Counter { .. }
                    ) {
                        continue;
                    }
                    let RuleKind::Counter { item, min, .. } =
                        a.rule_kind[a.state_rule[s as usize] as usize]
                    else {
                        continue;
                    };
                    runs += usize::from(g.item_runs()[a.state_rule[s as usize] as usize].is_some());
                    for aux in 0..32 {
                        // The relaxed walk, whatever the share it reclassifies.
                        if let Some(reach) = g.counter_base_reach(s, item, aux < min) {
                            let again = g.recheck_set(&reach);
                            let seed = crate::automaton::earley::Parser::starting_at_unbounded(
                                a,
                                s,
                                aux,
                                Unbounded::Seed,
                            );
                            let (plain, relaxed) = (
                                g.classify_with(seed, s),
                                g.relaxed_counter_base(s, aux, &again),
                            );
                            assert_eq!(bits(&plain), bits(&relaxed), "{src}: base {s}/{aux}");
                            assert_eq!(plain.uncertain, relaxed.uncertain, "{src}: base {s}/{aux}");
                            relaxed_bases += 1;
                        }
                        let e = g.entry_aux(s, aux);
                        let direct = g.classify(s, aux);
                        assert_eq!(bits(&direct), bits(&e), "{src}: state {s}/{aux}");
                        assert_eq!(direct.uncertain, e.uncertain, "{src}: state {s}/{aux}");
                        assert_exact(&g, s, aux, &e, src);
                    }
                    checked += 1;
                    continue;
                }
                let reach = &g.counter_reach()[a.state_rule[s as usize] as usize];
                if reach.floor == u32::MAX && reach.follow == [0; 4] {
                    continue;
                }
                let again = g.recheck_set(reach);
                let (plain, capped) = (g.classify(s, 0), g.classify_relaxed(s, &again));
                assert_eq!(bits(&plain), bits(&capped), "{src}: state {s}");
                assert_eq!(plain.uncertain, capped.uncertain, "{src}: state {s}");
                assert_exact(&g, s, 0, &capped, src);
                checked += 1;
            }
        }
        assert!(checked >= 5, "only {checked} states under counters");
        assert!(runs >= 3, "only {runs} counters of one-character items");
        assert!(
            relaxed_bases >= 32,
            "only {relaxed_bases} relaxed counter bases"
        );
    }

    /// States that keep every string of a few characters alive, but not of
    /// more (a short string's first characters, a label's letters), absorb
    /// the subtrees whose tokens are no longer, counted in characters (a
    /// cut one too), and walk the others: against the parser, token by token.
    #[test]
    fn walks_skip_short_subtrees_exactly() {
        // 本 shares its first byte with 日, not its second; `\n` and `\`
        // are an escape of a JSON string and its start.
        let pieces = ["a", "b", "é", "日", "本", ".", "\"", " ", "\\n", "\\"];
        let mut tokens: Vec<Vec<u8>> = vec![
            b"\xe6".to_vec(),
            b"a\xe6\x97".to_vec(),
            b"\xa9".to_vec(),
            b"a\xff".to_vec(),
            b"\x7f".to_vec(),
            b"a\t".to_vec(),
            b"a\n".to_vec(),
            "日\n".as_bytes().to_vec(),
            // Below "z", a newline is the only byte to escape.
            b"z".to_vec(),
            b"zz".to_vec(),
            b"zz\n".to_vec(),
            "zé".as_bytes().to_vec(),
        ];
        let mut words = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| pieces.iter().map(move |p| format!("{w}{p}")))
                .collect();
            tokens.extend(longer.iter().map(|w| w.clone().into_bytes()));
            words = longer;
        }
        // And tokens of four and five pieces without quotes or escapes.
        let plain = ["a", "é", "日", " "];
        for w in &words {
            if !w.contains(['"', '\\']) {
                for p in plain {
                    tokens.push(format!("{w}{p}").into_bytes());
                    tokens.push(format!("{w}{p}{p}").into_bytes());
                }
            }
        }
        let vocab = test_vocab(tokens);
        let compiler = Compiler::new(vocab.clone());
        let opts = lenient();
        let schema = |s: &str| compiler.compile_json_schema(s, &opts).expect("schema").0;
        let (mut short, mut words, mut lexical) = (0, 0, 0);
        for g in [
            // Strings of a few characters: what their states accept of the
            // tokens without quotes or escapes is listed by the trie.
            schema(r#"{"type":"string","maxLength":3}"#),
            schema(r#"{"type":"string","minLength":2,"maxLength":5}"#),
            schema(r#"{"type":["string","null"],"maxLength":1}"#),
            compiler.compile_regex(r#"[^"]{0,3}""#).expect("regex"),
            compiler.compile_regex(r#"[^"]{2,4}b?""#).expect("regex"),
            compiler
                .compile_regex(r"[a-zé日]{1,5}(\.[a-zé日]{1,5})*")
                .expect("regex"),
            compiler
                .compile_gbnf(
                    r#"root ::= "\"" [^"]{0,3} "\"" ("." root)?"#.as_bytes(),
                    "root",
                )
                .expect("gbnf"),
            // Counts of letters and digits: the words are listed too.
            compiler
                .compile_regex(r"[0-9A-Za-z]{3}-[a-z]{2}\.[a-zA-Z]{4}")
                .expect("regex"),
            schema(r#"{"type":"string","pattern":"^[a-z]{2}[a-z.]{3}$"}"#),
        ] {
            let a = g.automaton();
            let high = high_bytes(a);
            let invalid = invalid_bytes(a);
            for s in 0..g.num_states() as u32 {
                if lexical_key(a, s).is_some() {
                    lexical += 1;
                    let unquoted = crate::trie::ALL_GROUPS & !QUOTED;
                    let groups = class_groups(a);
                    let n = short_run(a, &groups, &high, &invalid, s, unquoted);
                    short += usize::from(n.is_some());
                    let run = word_groups(a, &groups, s)
                        .and_then(|w| short_run(a, &groups, &high, &invalid, s, w));
                    words += usize::from(n.is_none() && run.is_some());
                }
                let entries = [
                    lexical_key(a, s).map(|_| g.classify_lexical(s, &ANY_BYTE, None, false)),
                    (!a.aux_state[s as usize]).then(|| g.classify(s, 0)),
                ];
                for e in entries.into_iter().flatten() {
                    assert_exact(&g, s, 0, &e, "short subtrees");
                }
            }
        }
        assert!(
            short >= 8 && words >= 6,
            "{short} of {lexical} lexical states in short strings, {words} in counts of letters"
        );
    }

    /// Subtrees are skipped by byte group (separators, brackets, newline each
    /// their own): a state that loops over some groups but not others, walked
    /// lexically and with the parser, must agree with the DFA token by token;
    /// states accepting most of the vocabulary and few of it both occur.
    #[test]
    fn walks_skip_by_byte_group_exactly() {
        let pieces: [&[u8]; 14] = [
            b"a", b"Z", b"7", b" ", b"\n", b"\t", b",", b".", b"-", b"_", b":", b"/", b"(", b"%",
        ];
        // Third bytes from two sets, so subtrees differ in their groups.
        let thirds: [[&[u8]; 4]; 2] = [[b"a", b"7", b",", b"/"], [b"Z", b" ", b"\n", b":"]];
        let mut tokens: Vec<Vec<u8>> = Vec::new();
        for x in &pieces {
            tokens.push(x.to_vec());
            for (i, y) in pieces.iter().enumerate() {
                tokens.push([*x, *y].concat());
                for z in thirds[i % 2] {
                    tokens.push([*x, *y, z].concat());
                }
            }
        }
        let vocab = test_vocab(tokens);
        let compiler = Compiler::new(vocab.clone());
        let (mut most, mut few) = (0, 0);
        for pattern in [
            r#"[^,"\n]*(,[^,"\n]*)*"#,
            r#"[^,"\n]*"#,
            r"[a-zA-Z0-9._-]+@[a-z]+",
            r"[a-zA-Z0-9._-]+",
            r"[^/:]*(://?[^/]*)*",
            r"[^/\n]*",
            r"(\([0-9 ]*\)|[a-z\t]+)*%",
        ] {
            let g = compiler.compile_regex(pattern).expect("regex");
            let a = g.automaton();
            for s in 0..g.num_states() as u32 {
                let entries = [
                    lexical_key(a, s).map(|_| g.classify_lexical(s, &ANY_BYTE, None, false)),
                    Some(g.classify(s, 0)),
                ];
                for e in entries.into_iter().flatten() {
                    let n = e.accepted.len();
                    most += usize::from(n * 2 > vocab.vocab_size());
                    few += usize::from(n > 0 && n * 2 < vocab.vocab_size());
                    assert_exact(&g, s, 0, &e, pattern);
                }
            }
        }
        assert!(most > 0 && few > 0, "{most} dense and {few} sparse entries");
    }

    /// States of a search (`1a` somewhere in a run, then a quote) loop on
    /// no digit, yet read every quote-free token alive: their closed groups
    /// absorb such subtrees. Token by token through the parser must agree.
    #[test]
    fn closed_groups_absorb_search_states_exactly() {
        // Every string of "a1b " up to 4 bytes (each first byte's subtree
        // is big enough to be searched), and some that end the run.
        let mut tokens = strings_up_to(b"a1b ", 4);
        for t in ["\"", "a\"", "1a\"", "b1a\"x", "\\", "1\\"] {
            tokens.push(t.as_bytes().to_vec());
        }
        let vocab = test_vocab(tokens);
        let g = Compiler::new(vocab)
            .compile_regex(r#"[a-z0-9 ]*1a[a-z0-9 ]*""#)
            .expect("regex");
        let a = g.automaton();
        for s in 0..g.num_states() as u32 {
            if lexical_key(a, s).is_some() {
                let e = g.classify_lexical(s, &ANY_BYTE, None, false);
                assert_exact(&g, s, 0, &e, "lexical");
            }
            assert_exact(&g, s, 0, &g.classify(s, 0), "parser");
        }
        let searched = (0..g.num_states() as u32)
            .filter(|&s| g.closed.get(s) & crate::trie::ALL_GROUPS != 0)
            .count();
        assert!(searched >= 2, "{searched} states with closed groups");
        // Pairs marked in a table or in a map: the same search.
        let (cg, high) = (class_groups(a), high_bytes(a));
        for s in 0..g.num_states() as u32 {
            assert_eq!(
                closed_groups(a, &cg, &high, s, MARK_TABLE),
                closed_groups(a, &cg, &high, s, 0),
                "state {s}"
            );
        }
    }

    /// The lexical walk skips subtrees its state loops over and copies
    /// others from a reference; token by token through the DFA must agree.
    #[test]
    fn lexical_walk_equals_token_by_token() {
        let vocab = vocab();
        let compiler = Compiler::new(vocab.clone());
        let g = compiler
            .compile_regex(r#"[ab 1]*(:[^,]*|"b)"#)
            .expect("regex");
        let a = g.automaton();
        for s in 0..g.num_states() as u32 {
            if lexical_key(a, s).is_none() {
                continue;
            }
            let e = g.classify_lexical(s, &ANY_BYTE, None, false);
            for id in 0..vocab.tokenizer_size() as u32 {
                if vocab.is_special(id) {
                    continue;
                }
                let t = vocab.token_bytes(id);
                let live = !t.is_empty()
                    && t.iter()
                        .try_fold(s, |q, &b| {
                            let n = a.next_byte(q, b);
                            (n != crate::automaton::DEAD).then_some(n)
                        })
                        .is_some();
                assert_eq!(e.accepted.contains(id), live, "state {s}, token {t:?}");
            }
        }
    }

    #[test]
    fn schema_compile_hands_over_after_a_compact_object_start() {
        // `name":{"` ends the key and starts the (recursive) value inside one
        // token: from the key's state the root object's context decides it
        // (a hand-over, memoised by context).
        let tokens: Vec<Vec<u8>> = [
            "{\"",
            "name",
            "name\":",
            "name\":{\"",
            "\":{\"",
            "\":",
            "\"",
            "1",
            "}",
            "[",
            "]",
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
        let compiler = Compiler::new(test_vocab(tokens));
        let opts = lenient();
        let handed = |s: &str| {
            let g = compiler.compile_json_schema(s, &opts).expect("schema").0;
            let n = g.handed.read().map(|m| m.len()).unwrap_or_default();
            n
        };
        let object = r##"{"type":"object","properties":{"name":{"$ref":"#"}}}"##;
        assert!(
            handed(object) > 0,
            "the mask after a compact object start was not built"
        );
        // A root that is not an object does not start so: nothing to build.
        assert_eq!(handed(r#"{"type":"array","items":{"type":"integer"}}"#), 0);
    }

    /// A state whose rule has a relaxed twin gets from the twin's lexical
    /// entry what the walks give it (with counter bounds ignored, then the
    /// tokens they may change classified again); a twin state after the
    /// same bytes that reads more (a reading inside the repetition) is
    /// refused.
    #[test]
    fn relaxed_twins_classify_as_the_walks() {
        let mut tokens = strings_up_to(b"ab1\"\\ -", 3);
        tokens.extend(
            [
                "aaaaaaaaaaaaaaaaaaaaaa",
                "ab-ab-ab-ab-ab-ab-ab-ab",
                "\"aaaaaaaaaaaaaaaaaaaaaaaa\"",
            ]
            .iter()
            .map(|t| t.as_bytes().to_vec()),
        );
        let compiler = Compiler::new(test_vocab(tokens));
        let opts = lenient();
        let mut grammars = Vec::new();
        for schema in [
            r#"{"type":"string","maxLength":20}"#,
            r#"{"type":"string","minLength":18}"#,
            r#"{"type":"string","minLength":2,"maxLength":40}"#,
            r#"{"type":"object","properties":{"a":{"type":"string","maxLength":255},"b":{"type":"string","minLength":17}}}"#,
            r#"{"type":"string","pattern":"^[ab]{0,30}$"}"#,
            r#"{"type":"string","pattern":"^(ab){17,}$"}"#,
        ] {
            grammars.push(
                compiler
                    .compile_json_schema(schema, &opts)
                    .expect("schema")
                    .0,
            );
        }
        for pattern in [
            "[ab1]{0,50}",
            "(a|b1){3,40}-",
            "\"[^\"]{2,99}\"",
            "ab{0,100}c|abbd",
        ] {
            grammars.push(compiler.compile_regex(pattern).expect("regex"));
        }
        let (mut plain, mut counters, mut refused) = (0, 0, 0);
        for g in &grammars {
            let a = &g.automaton;
            let n = g.vocab.vocab_size();
            for s in 0..a.num_states() as u32 {
                let rule = a.state_rule[s as usize] as usize;
                if a.relaxed[rule].is_none() || !is_live(a, s) {
                    continue;
                }
                if relaxed_twin_state(a, s).is_none() {
                    refused += 1;
                    continue;
                }
                let name = &a.rule_names[rule];
                match a.rule_kind[rule] {
                    RuleKind::Plain => {
                        let (twin, walk) = (g.classify_plain(s), g.classify_plain_by(s, false));
                        assert_eq!(bits(&twin, n), bits(&walk, n), "accepted, {name} state {s}");
                        assert_eq!(
                            twin.uncertain, walk.uncertain,
                            "uncertain, {name} state {s}"
                        );
                        plain += 1;
                    }
                    RuleKind::Counter { item, min, .. } => {
                        for aux in [0, 1, min.saturating_sub(1), min, min + 1] {
                            let need = min.saturating_sub(aux);
                            let twin = g.classify_counter_base(s, item, aux, need > 0);
                            let walk = g.counter_base_walked(s, item, aux, need > 0);
                            assert_eq!(bits(&twin, n), bits(&walk, n), "accepted, {name} at {aux}");
                            assert_eq!(
                                twin.uncertain, walk.uncertain,
                                "uncertain, {name} at {aux}"
                            );
                        }
                        counters += 1;
                    }
                    RuleKind::Permutation { .. } => unreachable!("no twin for an any-order list"),
                }
            }
        }
        // Each string's and counted pattern's opening states and counter.
        assert!(
            plain >= 10 && counters >= 10,
            "{plain} plain states and {counters} counters had a twin"
        );
        // `abbd`'s `b` after `ab` is no reading of `b{0,100}`.
        assert!(refused >= 1, "no twin state refused");
    }
}
