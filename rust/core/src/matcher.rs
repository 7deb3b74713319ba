//! The per-generation state: accept tokens, fill the next-token mask, roll
//! back, fork.
//!
//! The mask for the current parser set is the OR of the cached *accepted*
//! sets of its kernel items, plus the *uncertain* tokens that survive a
//! walk with the full parser (in trie order, so shared prefixes are parsed
//! once), plus tokens named by token elements, plus the stop tokens when the
//! grammar can end here.

use crate::automaton::earley::{Item, Parser, DROPPED};
use crate::compiler::{CacheEntry, CompiledGrammar, HandedLocal};
use crate::error::{Error, ErrorKind, Result};
use crate::mask::{get_bit, set_bit};
use crate::vocab::TokenId;
use std::sync::Arc;

/// The state of one constrained generation. `Clone` is `fork()`.
#[derive(Clone, Debug)]
pub struct Matcher {
    grammar: Arc<CompiledGrammar>,
    parser: Parser,
    /// Number of parser sets before each accepted token that can still be
    /// rolled back.
    history: Vec<u32>,
    /// Accepted tokens whose history is gone: past the rollback window, their
    /// sets were compacted (see [`Matcher::compact`]).
    forgotten: usize,
    /// Items the parser held after its last compaction (the next waits for
    /// twice as many, so compaction is amortised O(1) per item).
    compacted_items: usize,
    terminated: bool,
    stop_ids: Vec<TokenId>,
    max_rollback: Option<usize>,
    error: Option<String>,
    scratch_items: Vec<Item>,
    /// Kernel items whose entries leave tokens uncertain, with the entry of
    /// a register-rule item (looked up once; mask-time scratch).
    scratch_handover: Vec<(Item, Option<Arc<CacheEntry>>)>,
    /// Context id per parser set, computed on demand (see
    /// [`CompiledGrammar::context_of`]); cut whenever sets are dropped.
    contexts: Vec<u32>,
    /// The hand-over answers this matcher has used (context ids are the
    /// grammar's, so they stay valid across rollback and reset).
    handed: HandedLocal,
}

impl Matcher {
    /// A matcher at the start of `grammar`.
    pub fn new(grammar: Arc<CompiledGrammar>) -> Matcher {
        let parser = Parser::new(grammar.automaton());
        let stop_ids = grammar.vocab().stop_ids().to_vec();
        Matcher {
            grammar,
            parser,
            history: Vec::new(),
            forgotten: 0,
            compacted_items: 0,
            terminated: false,
            stop_ids,
            max_rollback: None,
            error: None,
            scratch_items: Vec::new(),
            scratch_handover: Vec::new(),
            contexts: Vec::new(),
            handed: HandedLocal::default(),
        }
    }

    /// How many hand-over answers this matcher keeps (tests).
    #[cfg(test)]
    pub(crate) fn handed_answers(&self) -> usize {
        self.handed.len()
    }

    /// Use these stop tokens instead of the vocabulary's.
    pub fn set_stop_tokens(&mut self, mut ids: Vec<TokenId>) -> Result<()> {
        let n = self.grammar.vocab().vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= n) {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("stop token id {bad} is out of range (vocab_size {n})"),
            ));
        }
        ids.sort_unstable();
        ids.dedup();
        self.stop_ids = ids;
        Ok(())
    }

    /// Keep at most `n` tokens of rollback history (`None`: unlimited).
    pub fn set_max_rollback(&mut self, n: Option<usize>) {
        self.max_rollback = n;
    }

    /// The compiled grammar.
    pub fn grammar(&self) -> &Arc<CompiledGrammar> {
        &self.grammar
    }

    /// The stop tokens in effect.
    pub fn stop_ids(&self) -> &[TokenId] {
        &self.stop_ids
    }

    /// Number of tokens accepted since the start (or last reset).
    pub fn num_accepted_tokens(&self) -> usize {
        self.forgotten + self.history.len()
    }

    /// Has a stop token been accepted?
    pub fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// Would a stop token be accepted now? True when the grammar can end
    /// here, or when it names a stop token here and can end right after it.
    pub fn can_terminate(&self) -> bool {
        if self.terminated || self.error.is_some() {
            return false;
        }
        let (a, vocab) = (self.grammar.automaton(), self.grammar.vocab());
        if self.parser.can_accept(a) {
            return true;
        }
        let named = |s: TokenId| {
            self.parser.current().iter().any(|it| {
                a.token_edges(it.state)
                    .iter()
                    .any(|&(k, _)| a.token_elems[k as usize].matches(s, vocab))
            })
        };
        // Rare (a grammar that names a stop token): probe on a copy.
        self.stop_ids
            .iter()
            .any(|&s| named(s) && self.clone().ends_after_element(s))
    }

    /// The sticky internal error, if one happened.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Put the matcher into the sticky error state.
    pub fn set_error(&mut self, msg: String) {
        self.error = Some(msg);
    }

    /// Back to the start of the grammar.
    pub fn reset(&mut self) {
        if self.forgotten > 0 {
            // Compaction kept only set 0's waiting items.
            self.parser = Parser::new(self.grammar.automaton());
            self.compacted_items = 0;
        } else {
            self.parser.truncate(1);
        }
        self.contexts.truncate(1);
        self.history.clear();
        self.forgotten = 0;
        self.terminated = false;
        self.error = None;
    }

    fn is_stop(&self, id: TokenId) -> bool {
        self.stop_ids.binary_search(&id).is_ok()
    }

    /// Accept one token. Returns false, leaving the state unchanged, if the
    /// grammar does not allow it here (or the id is out of range).
    pub fn accept_token(&mut self, id: TokenId) -> bool {
        if self.terminated || self.error.is_some() {
            return false;
        }
        let g = Arc::clone(&self.grammar);
        let (a, vocab) = (g.automaton(), g.vocab());
        if id as usize >= vocab.vocab_size() {
            return false;
        }
        let before = self.parser.num_sets();
        let seeds = self.element_seeds(id);
        let mut ok = false;
        let stop = self.is_stop(id);
        if stop {
            // A stop token always ends generation: it is allowed when the grammar
            // can end now, or when a token element names it and the grammar can
            // end right after it.
            if self.parser.can_accept(a) {
                ok = true;
            } else if self.parser.push_items(a, &seeds) {
                ok = self.parser.can_accept(a);
                if !ok {
                    self.parser.truncate(before);
                }
            }
            self.terminated = ok;
        } else if !vocab.is_special(id) && (id as usize) < vocab.tokenizer_size() {
            let bytes = vocab.token_bytes(id);
            ok = !bytes.is_empty() && bytes.iter().all(|&b| self.parser.push_byte(a, b));
            if ok {
                self.parser.extend_current(a, &seeds);
            } else {
                self.parser.truncate(before);
            }
        }
        if !ok && !stop {
            ok = self.parser.push_items(a, &seeds);
        }
        self.scratch_items = seeds;
        if ok {
            self.history.push(before as u32);
            self.compact();
        }
        ok
    }

    /// Accept raw bytes (not tokens) as one step of history; all or nothing.
    pub fn accept_bytes(&mut self, data: &[u8]) -> bool {
        if self.terminated || self.error.is_some() {
            return false;
        }
        let g = &*self.grammar;
        let before = self.parser.num_sets();
        if data
            .iter()
            .all(|&b| self.parser.push_byte(g.automaton(), b))
        {
            self.history.push(before as u32);
            self.compact();
            true
        } else {
            self.parser.truncate(before);
            false
        }
    }

    /// With a rollback window, drop what the chart holds before it that no
    /// completion can reach (see [`Parser::compact`]) once the chart has
    /// doubled since the last compaction, and the history of tokens past
    /// the window. Without a window every set may come back, so all stay.
    fn compact(&mut self) {
        const SLACK_ITEMS: usize = 256;
        let Some(w) = self.max_rollback else { return };
        let len = self.history.len();
        if len <= w || self.parser.num_items() < 2 * self.compacted_items + SLACK_ITEMS {
            return;
        }
        // Rolling back the oldest token of the window makes the set before
        // it current again, so that set stays whole.
        let oldest = self
            .history
            .get(len - w)
            .map_or(self.parser.num_sets(), |&h| h as usize);
        let map = self.parser.compact(self.grammar.automaton(), oldest - 1);
        let frozen = map.len();
        let kept = map.iter().filter(|&&m| m != DROPPED).count();
        let shift = (frozen - kept) as u32;
        self.forgotten += len - w;
        self.history.drain(..len - w);
        for h in &mut self.history {
            *h -= shift;
        }
        // Context ids move with their sets.
        let mut c = 0;
        for q in 0..self.contexts.len() {
            let to = map.get(q).copied().unwrap_or_else(|| q as u32 - shift);
            if to != DROPPED {
                self.contexts[to as usize] = self.contexts[q];
                c = to as usize + 1;
            }
        }
        self.contexts.truncate(c);
        self.contexts.shrink_to(self.parser.num_sets());
        self.history.shrink_to(2 * w.max(8));
        self.compacted_items = self.parser.num_items();
    }

    /// Undo the last `n` accepted tokens (or `accept_bytes` calls).
    pub fn rollback(&mut self, n: usize) -> Result<()> {
        let limit = self
            .max_rollback
            .unwrap_or(usize::MAX)
            .min(self.history.len());
        if n > limit {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("cannot roll back {n} tokens: only {limit} can be rolled back"),
            ));
        }
        if n == 0 {
            return Ok(());
        }
        let keep = self.history.len() - n;
        let sets = self.history[keep] as usize;
        self.history.truncate(keep);
        self.parser.truncate(sets);
        self.contexts.truncate(sets);
        self.terminated = false;
        Ok(())
    }

    /// Would [`Matcher::fill_mask`] only copy sets already computed (no trie
    /// walk, no uncertain token to hand over)? Bindings then keep their lock
    /// (the GIL) instead of paying to release it around a sub-microsecond copy.
    pub fn mask_is_cached(&self) -> bool {
        if self.terminated || self.error.is_some() {
            return true;
        }
        let a = self.grammar.automaton();
        self.parser.current().iter().all(|it| {
            let s = it.state as usize;
            !(it.kernel && (a.has_bytes[s] || !a.rule_edges(it.state).is_empty()))
                || self
                    .grammar
                    .entry_settled(it.state, a.aux_state[s].then_some(it.aux))
        })
    }

    /// Write the allowed-token mask into `mask` (at least
    /// `ceil(vocab_size / 32)` words; extra words are zeroed). Returns true
    /// when some token of the vocabulary is disallowed.
    pub fn fill_mask(&mut self, mask: &mut [u32]) -> bool {
        if self.terminated || self.error.is_some() {
            mask.fill(0);
            return true;
        }
        let g = &*self.grammar;
        let (a, vocab) = (g.automaton(), g.vocab());
        let mut pending = std::mem::take(&mut self.scratch_handover);
        pending.clear();
        // The first dense set is copied in, not ORed into a zeroed mask.
        let mut blank = true;
        // Bits set from lists (entries, elements, hand-overs, stops) at most:
        // with no dense set, fewer than the vocabulary means some are off.
        let (mut dense, mut listed) = (false, 0usize);
        for &it in self.parser.current() {
            if it.kernel && (a.has_bytes[it.state as usize] || !a.rule_edges(it.state).is_empty()) {
                let mut take = |e: &CacheEntry| {
                    match &*e.accepted {
                        crate::mask::TokenSet::Bits(_) => dense = true,
                        crate::mask::TokenSet::List(ids) => listed += ids.len(),
                    }
                    if std::mem::take(&mut blank) {
                        e.accepted.copy_into(mask);
                    } else {
                        e.accepted.or_into(mask);
                    }
                    !e.uncertain.is_empty()
                };
                if a.aux_state[it.state as usize] {
                    let e = g.entry_aux(it.state, it.aux);
                    if take(&e) {
                        pending.push((it, Some(e)));
                    }
                } else if take(g.entry(it.state)) {
                    pending.push((it, None));
                }
            }
            for &(k, _) in a.token_edges(it.state) {
                if std::mem::take(&mut blank) {
                    mask.fill(0);
                }
                dense = true; // an element may name many tokens
                a.token_elems[k as usize].or_into(mask, vocab);
            }
        }
        if blank {
            mask.fill(0);
        }
        // Uncertain tokens item by item: each item's are decided by its
        // parents alone (the union over items is the parser's answer).
        for (it, aux_entry) in pending.drain(..) {
            let ctx = g.context_of(&self.parser, it.origin as usize, &mut self.contexts);
            let entry = match &aux_entry {
                Some(e) => e,
                None => g.entry(it.state),
            };
            let valid = g.handed_over(&mut self.parser, it, entry, ctx, &mut self.handed);
            match &*valid {
                crate::mask::TokenSet::Bits(_) => dense = true,
                crate::mask::TokenSet::List(ids) => listed += ids.len(),
            }
            valid.or_into(mask);
        }
        self.scratch_handover = pending;
        let n = vocab.vocab_size();
        if self.parser.can_accept(a) {
            for &s in &self.stop_ids {
                set_bit(mask, s);
            }
        } else {
            // Stop bits set by token elements stand only if the grammar can end after them.
            for i in 0..self.stop_ids.len() {
                let s = self.stop_ids[i];
                if get_bit(mask, s) && !self.ends_after_element(s) {
                    mask[(s / 32) as usize] &= !(1 << (s % 32));
                }
            }
        }
        if !dense && listed + self.stop_ids.len() < n {
            return true;
        }
        let full = n / 32;
        mask[..full].iter().any(|&w| w != u32::MAX)
            || (n % 32 != 0 && mask.get(full).is_some_and(|&w| w != (1u32 << (n % 32)) - 1))
    }

    /// The items that token elements of the current set advance to on token
    /// `id` (elements consume a token whole, whatever its bytes). The vector
    /// is the reusable scratch buffer; hand it back via `scratch_items`.
    fn element_seeds(&mut self, id: TokenId) -> Vec<Item> {
        let g = &*self.grammar;
        let (a, vocab) = (g.automaton(), g.vocab());
        let mut seeds = std::mem::take(&mut self.scratch_items);
        seeds.clear();
        for it in self.parser.current() {
            for &(k, t) in a.token_edges(it.state) {
                if a.token_elems[k as usize].matches(id, vocab) {
                    seeds.push(Item {
                        state: t,
                        origin: it.origin,
                        aux: it.aux,
                        kernel: true,
                    });
                }
            }
        }
        seeds
    }

    /// Would consuming token `id` through the token elements of the current
    /// set leave a parser that can end?
    fn ends_after_element(&mut self, id: TokenId) -> bool {
        let g = Arc::clone(&self.grammar);
        let a = g.automaton();
        let seeds = self.element_seeds(id);
        let before = self.parser.num_sets();
        let ends = self.parser.push_items(a, &seeds) && self.parser.can_accept(a);
        self.parser.truncate(before);
        self.scratch_items = seeds;
        ends
    }

    /// Bytes this matcher owns: the struct itself, the Earley chart (all
    /// sets since the start, kept for rollback and for completions that
    /// reach back to old origins), the rollback history, the stop list and
    /// the mask-time scratch buffers. The shared compiled grammar is not
    /// counted (see [`CompiledGrammar::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        size_of::<Matcher>()
            + self.parser.heap_bytes()
            + (self.history.capacity() + self.stop_ids.capacity() + self.contexts.capacity())
                * size_of::<u32>()
            + self.scratch_items.capacity() * size_of::<Item>()
            + self.scratch_handover.capacity() * size_of::<(Item, Option<Arc<CacheEntry>>)>()
            + self.error.as_ref().map_or(0, String::capacity)
            + self.handed.heap_bytes()
    }
}
