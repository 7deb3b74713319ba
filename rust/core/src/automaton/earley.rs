//! A byte-level Earley parser whose items are `(DFA state, origin set)`.
//!
//! Sets are stored back to back in one vector and only ever appended to or
//! truncated, so undoing bytes (for a trie walk or `rollback`) is a truncation
//! and a copy of the parser is a plain clone. Nullable rules are handled the
//! Aycock–Horspool way: predicting a nullable rule also advances over it.
//!
//! Items are marked *kernel* when they were scanned or completed into their
//! set, and *derived* when prediction added them. Every derived item is
//! reachable from a kernel item of the same set by prediction alone, so the
//! token-classification cache only needs the kernel items' entries.

use super::{Automaton, DEAD};
use rustc_hash::FxHashMap;

/// One parser item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// Global DFA state (identifies the rule too).
    pub state: u32,
    /// Index of the set where this rule instance started.
    pub origin: u32,
    /// The rule instance's register: the iteration count of a counter rule,
    /// the members seen by a permutation rule, 0 for plain rules (see
    /// [`super::RuleKind`]). Part of the item's identity.
    pub aux: u32,
    /// Scanned or completed into its set (as opposed to predicted).
    pub kernel: bool,
}

/// The parser: a stack of Earley sets.
#[derive(Clone, Debug, Default)]
pub struct Parser {
    items: Vec<Item>,
    set_start: Vec<u32>,
    /// Which counter instances have their maximum ignored (see [`Unbounded`]).
    unbounded: Unbounded,
    /// Lookup of the last set's items by (state, origin) once it is large
    /// (sets of wide unions predict hundreds of items; a linear scan per
    /// added item made closing them quadratic). See [`SetIndex`].
    index: SetIndex,
}

/// Index of one set's items: (state, origin) to the latest item with that
/// key, items with the same key chained through `next`. Valid for the items
/// `lo..len` of the set starting at `lo`; rebuilt when that no longer holds.
#[derive(Clone, Debug, Default)]
struct SetIndex {
    lo: usize,
    len: usize,
    head: FxHashMap<(u32, u32), u32>,
    next: Vec<u32>,
}

/// The counter bounds a classification parser ignores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unbounded {
    /// None: the grammar as written.
    #[default]
    None,
    /// The seed's own instance (a counter state "with any number of
    /// iterations left").
    Seed,
    /// Every instance, and every minimum too: a token of `n` bytes makes at
    /// most `n` iterations of an instance begun inside it, and an instance
    /// ended early changes the parse only through a byte of its FOLLOW set,
    /// so tokens no longer than every maximum and without such bytes are
    /// classified alike (see `CompiledGrammar::classify_plain`).
    All,
}

impl Unbounded {
    /// Is the maximum of a counter instance begun in set `origin` kept?
    #[inline]
    pub fn keeps_maximum(self, origin: u32) -> bool {
        match self {
            Unbounded::None => true,
            Unbounded::Seed => origin != 0,
            Unbounded::All => false,
        }
    }

    /// Are counter minima kept?
    #[inline]
    pub fn keeps_minimum(self) -> bool {
        self != Unbounded::All
    }
}

/// [`Parser::compact`]'s index for a set it dropped.
pub const DROPPED: u32 = u32::MAX;

/// Sets smaller than this are scanned, not indexed.
const INDEX_FROM: usize = 32;

impl Parser {
    /// A parser at the start of `a`'s root rule.
    pub fn new(a: &Automaton) -> Parser {
        Self::seeded(
            a,
            a.rule_start[a.root as usize],
            0,
            vec![0],
            Unbounded::None,
        )
    }

    /// A parser whose only initial item is `state`, part-way through a rule
    /// instance that began in an unknown context (used to classify tokens
    /// for that item independently of the rest of the stack).
    ///
    /// Set 0 stands for that context and stays empty: the item's own
    /// instance has origin 0, so completing it advances nothing here (the
    /// caller sees it with [`Parser::completes_at_origin0`]), while rule
    /// instances predicted from the item start at set 1 and are distinct from
    /// it even when they are the same rule.
    pub fn starting_at(a: &Automaton, state: u32, aux: u32) -> Parser {
        Self::seeded(a, state, aux, vec![0, 0], Unbounded::None)
    }

    /// [`Parser::starting_at`] with counter bounds ignored as `unbounded` says.
    pub fn starting_at_unbounded(
        a: &Automaton,
        state: u32,
        aux: u32,
        unbounded: Unbounded,
    ) -> Parser {
        Self::seeded(a, state, aux, vec![0, 0], unbounded)
    }

    /// Which counter bounds this parser ignores.
    pub fn unbounded(&self) -> Unbounded {
        self.unbounded
    }

    #[inline]
    fn bounded(&self, origin: u32) -> bool {
        self.unbounded.keeps_maximum(origin)
    }

    fn seeded(
        a: &Automaton,
        state: u32,
        aux: u32,
        set_start: Vec<u32>,
        unbounded: Unbounded,
    ) -> Parser {
        let mut p = Parser {
            items: Vec::with_capacity(64),
            set_start,
            unbounded,
            index: SetIndex::default(),
        };
        p.items.push(Item {
            state,
            origin: 0,
            aux,
            kernel: true,
        });
        p.close(a, 0);
        p
    }

    /// Number of sets (1 + bytes/tokens consumed).
    #[inline]
    pub fn num_sets(&self) -> usize {
        self.set_start.len()
    }

    /// Heap bytes held by the item and set-start vectors (capacity, not
    /// length: truncation keeps the allocation for the next bytes).
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Item>()
            + self.set_start.capacity() * std::mem::size_of::<u32>()
            + self.index.next.capacity() * std::mem::size_of::<u32>()
            + self.index.head.capacity() * (1 + std::mem::size_of::<((u32, u32), u32)>())
    }

    /// Drop sets so that `n` remain (`n >= 1`).
    #[inline]
    pub fn truncate(&mut self, n: usize) {
        if n < self.set_start.len() && n >= 1 {
            self.items.truncate(self.set_start[n] as usize);
            self.set_start.truncate(n);
            self.index.len = usize::MAX; // stale
        }
    }

    /// Forget what the sets before `frozen` hold beyond what completions can
    /// still reach, and renumber the sets. The caller promises never to
    /// truncate below `frozen + 1` sets again (its rollback window ends
    /// there), so those sets are only ever read as origins, by
    /// [`Parser::advance_parents`]: a set no later item reaches through
    /// origins is dropped, and a reached one keeps only the items that wait
    /// for a rule. Set 0 stays (origin 0 means the root's instance).
    ///
    /// Returns the new index of each set before `frozen` ([`DROPPED`] for a
    /// dropped one); a set from `frozen` on moves down by
    /// `frozen - kept`, where `kept` is how many sets before it remain.
    /// Linear in the items.
    pub fn compact(&mut self, a: &Automaton, frozen: usize) -> Vec<u32> {
        let n = self.set_start.len();
        let frozen = frozen.min(n.saturating_sub(1));
        let mut map = vec![DROPPED; frozen];
        if frozen <= 1 {
            map.iter_mut().enumerate().for_each(|(i, m)| *m = i as u32);
            return map;
        }
        let waits = |it: &Item| !a.rule_edges(it.state).is_empty();
        // Reached: origins of the window's items, then (origins point back)
        // those of each reached set's waiting items, latest set first.
        let mut reached = vec![false; frozen];
        reached[0] = true;
        for it in &self.items[self.set_start[frozen] as usize..] {
            if (it.origin as usize) < frozen {
                reached[it.origin as usize] = true;
            }
        }
        for q in (1..frozen).rev() {
            if reached[q] {
                for it in self.set(q).iter().filter(|it| waits(it)) {
                    reached[it.origin as usize] = true;
                }
            }
        }
        let mut kept = 0u32;
        for (q, m) in map.iter_mut().enumerate() {
            if reached[q] {
                *m = kept;
                kept += 1;
            }
        }
        let shift = (frozen as u32) - kept;
        let renumber = |o: u32| {
            if (o as usize) < frozen {
                map[o as usize]
            } else {
                o - shift
            }
        };
        // In place: items only move down.
        let mut w = 0usize;
        let mut starts = Vec::with_capacity(kept as usize + n - frozen);
        for q in 0..n {
            let (lo, hi) = (
                self.set_start[q] as usize,
                self.set_start
                    .get(q + 1)
                    .map_or(self.items.len(), |&h| h as usize),
            );
            if reached.get(q) == Some(&false) {
                continue;
            }
            starts.push(w as u32);
            for k in lo..hi {
                let it = self.items[k];
                if q >= frozen || waits(&it) {
                    self.items[w] = Item {
                        origin: renumber(it.origin),
                        ..it
                    };
                    w += 1;
                }
            }
        }
        self.items.truncate(w);
        self.items.shrink_to(w + w / 2 + 64);
        self.set_start = starts;
        self.index = SetIndex::default();
        map
    }

    /// Number of items in all sets.
    #[inline]
    pub fn num_items(&self) -> usize {
        self.items.len()
    }

    /// Items of set `i`.
    #[inline]
    pub fn set(&self, i: usize) -> &[Item] {
        let a = self.set_start[i] as usize;
        let b = self
            .set_start
            .get(i + 1)
            .map_or(self.items.len(), |&b| b as usize);
        &self.items[a..b]
    }

    /// Items of the last set.
    #[inline]
    pub fn current(&self) -> &[Item] {
        self.set(self.set_start.len() - 1)
    }

    /// Can the root rule (started in set 0) end here?
    pub fn can_accept(&self, a: &Automaton) -> bool {
        self.current().iter().any(|it| {
            it.origin == 0
                && a.state_rule[it.state as usize] == a.root
                && a.accepts_with(it.state, it.aux, self.unbounded.keeps_minimum())
        })
    }

    /// Does the last set complete `rule` started in set 0?
    pub fn completes_at_origin0(&self, a: &Automaton, rule: u32) -> bool {
        self.current().iter().any(|it| {
            it.origin == 0
                && a.state_rule[it.state as usize] == rule
                && a.accepts_with(it.state, it.aux, self.unbounded.keeps_minimum())
        })
    }

    /// Scan `byte` from the last set into a new set. Returns false (and
    /// leaves the parser unchanged) if no item can take the byte.
    pub fn push_byte(&mut self, a: &Automaton, byte: u8) -> bool {
        let cur = self.set_start.len() - 1;
        let (lo, hi) = (self.set_start[cur] as usize, self.items.len());
        let new_start = hi;
        let class = a.class_of[byte as usize] as usize;
        for k in lo..hi {
            let it = self.items[k];
            let t = a.byte_next.get(it.state, class);
            if t != DEAD {
                let item = Item {
                    state: t,
                    origin: it.origin,
                    aux: it.aux,
                    kernel: true,
                };
                if !self.items[new_start..]
                    .iter()
                    .any(|x| x.state == t && x.origin == it.origin && x.aux == it.aux)
                {
                    self.items.push(item);
                }
            }
        }
        if self.items.len() == new_start {
            return false;
        }
        self.set_start.push(new_start as u32);
        self.close(a, new_start);
        true
    }

    /// Start a new set from `seeds` (items advanced over a whole token).
    /// Returns false (parser unchanged) if `seeds` is empty.
    pub fn push_items(&mut self, a: &Automaton, seeds: &[Item]) -> bool {
        if seeds.is_empty() {
            return false;
        }
        let start = self.items.len();
        self.set_start.push(start as u32);
        for &s in seeds {
            self.add(a, s);
        }
        self.close(a, start);
        true
    }

    /// Start a new set as if an instance of `rule` begun in set `origin`
    /// had just completed: the items of set `origin` that wait for `rule`,
    /// advanced, then closed. No byte is consumed; the set stands for the
    /// position right after the completion, with only the parents'
    /// derivations in it. Returns false (parser unchanged) if no item waits.
    pub fn push_completion(&mut self, a: &Automaton, rule: u32, origin: u32) -> bool {
        let start = self.items.len();
        self.set_start.push(start as u32);
        self.advance_parents(a, rule, origin as usize);
        if self.items.len() == start {
            self.set_start.pop();
            return false;
        }
        self.close(a, start);
        true
    }

    /// Add `seeds` to the last set and close over them.
    pub fn extend_current(&mut self, a: &Automaton, seeds: &[Item]) {
        let from = self.items.len();
        for &s in seeds {
            self.add(a, s);
        }
        self.close(a, from);
    }

    /// Add an item to the last set unless present (upgrading it to kernel).
    /// A counter item is also dropped when one with the same state and origin
    /// and a dominating count is present (see [`Automaton::count_dominates`]):
    /// without that, an ambiguous repeated item would multiply items by count.
    #[inline]
    fn add(&mut self, a: &Automaton, item: Item) {
        let lo = self.set_start[self.set_start.len() - 1] as usize;
        let counter = a.aux_state[item.state as usize];
        // With no bounds kept, a counter's count changes nothing.
        let any_count = counter
            && self.unbounded == Unbounded::All
            && matches!(
                a.rule_kind[a.state_rule[item.state as usize] as usize],
                super::RuleKind::Counter { .. }
            );
        let same = |x: &Item| {
            x.state == item.state
                && x.origin == item.origin
                && (x.aux == item.aux
                    || any_count
                    || counter && a.count_dominates(item.state, x.aux, item.aux))
        };
        if self.items.len() - lo < INDEX_FROM {
            for x in &mut self.items[lo..] {
                if same(x) {
                    x.kernel |= item.kernel;
                    return;
                }
            }
            self.items.push(item);
            return;
        }
        self.sync_index(lo);
        let mut k = self
            .index
            .head
            .get(&(item.state, item.origin))
            .copied()
            .unwrap_or(u32::MAX);
        while k != u32::MAX {
            let x = &mut self.items[k as usize];
            if same(x) {
                x.kernel |= item.kernel;
                return;
            }
            k = self.index.next[k as usize - lo];
        }
        self.items.push(item);
        self.sync_index(lo);
    }

    /// Bring the index up to date with the last set (starting at `lo`).
    fn sync_index(&mut self, lo: usize) {
        let ix = &mut self.index;
        if ix.lo != lo || ix.len > self.items.len() {
            ix.lo = lo;
            ix.len = lo;
            ix.head.clear();
            ix.next.clear();
        }
        for k in ix.len..self.items.len() {
            let it = &self.items[k];
            let prev = ix.head.insert((it.state, it.origin), k as u32);
            ix.next.push(prev.unwrap_or(u32::MAX));
        }
        ix.len = self.items.len();
    }

    /// Add to the last set the items of (earlier) set `o` that wait for
    /// `rule`, advanced over it: the completion of an instance begun in `o`.
    fn advance_parents(&mut self, a: &Automaton, rule: u32, o: usize) {
        let (lo, hi) = (
            self.set_start[o] as usize,
            self.set_start
                .get(o + 1)
                .map_or(self.items.len(), |&h| h as usize),
        );
        for j in lo..hi {
            let parent = self.items[j];
            if let Some(t) = a.next_rule(parent.state, rule) {
                let bounded = self.bounded(parent.origin);
                if let Some(aux) = a.advance_aux_with(parent.state, rule, parent.aux, bounded) {
                    self.add(
                        a,
                        Item {
                            state: t,
                            origin: parent.origin,
                            aux,
                            kernel: true,
                        },
                    );
                }
            }
        }
    }

    /// Predict and complete over the last set, starting at item index `from`.
    fn close(&mut self, a: &Automaton, from: usize) {
        let cur = (self.set_start.len() - 1) as u32;
        let mut k = from;
        while k < self.items.len() {
            let it = self.items[k];
            k += 1;
            let special = a.aux_state[it.state as usize];
            for &(q, t) in a.rule_edges(it.state) {
                // A register rule predicts a child only if it may still take it.
                let next_aux = if special {
                    let bounded = self.bounded(it.origin);
                    match a.advance_aux_with(it.state, q, it.aux, bounded) {
                        Some(x) => x,
                        None => continue,
                    }
                } else {
                    it.aux
                };
                self.add(
                    a,
                    Item {
                        state: a.rule_start[q as usize],
                        origin: cur,
                        aux: 0,
                        kernel: false,
                    },
                );
                // Empty iterations / members do not count: registers only move on real input.
                if a.nullable[q as usize] && next_aux == it.aux {
                    self.add(
                        a,
                        Item {
                            state: t,
                            origin: it.origin,
                            aux: it.aux,
                            kernel: false,
                        },
                    );
                }
            }
            // Completion into the same set is covered by the nullable advance above.
            if it.origin != cur && a.accepts_with(it.state, it.aux, self.unbounded.keeps_minimum())
            {
                self.advance_parents(a, a.state_rule[it.state as usize], it.origin as usize);
            }
        }
    }
}
