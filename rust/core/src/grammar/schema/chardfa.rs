//! Regular languages over decoded characters as small DFAs, for what the
//! grammar IR cannot say directly: the keys a `patternProperties` pattern
//! does not match (a complement), keys under two patterns (an intersection),
//! and a pattern's keys other than the named ones (a difference).
//!
//! A [`CharDfa`] is built from an expression over decoded characters (the
//! front-end's pattern and format expressions: literals, classes, sequences,
//! alternatives, repetitions), by a Thompson NFA and subset construction over
//! code-point ranges. Operations build new DFAs; none mutates. Every result is
//! trimmed (states that cannot reach acceptance are dropped), so
//! [`CharDfa::is_empty`] is exact, and small ones are minimised.
//!
//! Back to the IR: [`CharDfa::to_expr`] writes an expression when every cycle
//! is a self-loop (`[a-z]+`, `.*`, complements of such, products of such;
//! most key patterns), which the automaton turns back into one lexical DFA;
//! otherwise [`CharDfa::to_rules`] writes one right-linear rule per state
//! (exact, but parsed by Earley items rather than one DFA).
//!
//! Sizes are capped ([`MAX_STATES`]); a construction over the cap answers
//! `None` and the caller refuses the keyword (fails closed).

use super::strings;
use crate::error::Result;
use crate::grammar::Expr;
use rustc_hash::FxHashMap as HashMap;

/// Most DFA (and NFA) states one construction may build.
pub(crate) const MAX_STATES: usize = 4096;

/// Most states [`CharDfa::minimised`] merges (above, DFAs stay as built).
const MAX_MINIMISED: usize = 64;

/// Largest Unicode scalar value.
const MAX_CHAR: u32 = 0x10_FFFF;

/// `(lo, hi, target)`: the characters `lo..=hi` lead to `target`.
type Edge = (u32, u32, u32);

/// Inclusive code-point ranges.
type Ranges = Vec<(u32, u32)>;

/// A DFA over Unicode scalar values; state 0 is the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CharDfa {
    /// Per state: sorted, disjoint `(lo, hi, target)` ranges; no edge means
    /// no continuation.
    edges: Vec<Vec<Edge>>,
    accept: Vec<bool>,
}

/// Thompson NFA: epsilon moves and character-range moves per state.
#[derive(Default)]
struct Nfa {
    eps: Vec<Vec<u32>>,
    moves: Vec<Vec<Edge>>,
}

impl Nfa {
    fn state(&mut self) -> Option<u32> {
        if self.eps.len() >= MAX_STATES * 4 {
            return None;
        }
        self.eps.push(Vec::new());
        self.moves.push(Vec::new());
        Some(self.eps.len() as u32 - 1)
    }

    /// A fragment `(start, end)` for `e`; `None` for expressions that are not
    /// over decoded characters, or when the NFA grows past its cap.
    fn frag(&mut self, e: &Expr) -> Option<(u32, u32)> {
        let s = self.state()?;
        match e {
            Expr::Empty => Some((s, s)),
            Expr::Literal(bytes) => {
                let mut at = s;
                for c in std::str::from_utf8(bytes).ok()?.chars() {
                    let t = self.state()?;
                    self.moves[at as usize].push((c as u32, c as u32, t));
                    at = t;
                }
                Some((s, at))
            }
            Expr::Class { negated, ranges } => {
                let t = self.state()?;
                for (lo, hi) in strings::normalise(*negated, ranges) {
                    self.moves[s as usize].push((lo, hi, t));
                }
                Some((s, t))
            }
            Expr::Seq(v) => {
                let mut at = s;
                for x in v {
                    let (a, b) = self.frag(x)?;
                    self.eps[at as usize].push(a);
                    at = b;
                }
                Some((s, at))
            }
            Expr::Alt(v) => {
                let t = self.state()?;
                for x in v {
                    let (a, b) = self.frag(x)?;
                    self.eps[s as usize].push(a);
                    self.eps[b as usize].push(t);
                }
                Some((s, t))
            }
            Expr::Repeat { expr, min, max } => {
                let mut at = s;
                for _ in 0..*min {
                    let (a, b) = self.frag(expr)?;
                    self.eps[at as usize].push(a);
                    at = b;
                }
                match max {
                    None => {
                        let (a, b) = self.frag(expr)?;
                        let t = self.state()?;
                        self.eps[at as usize].extend([a, t]);
                        self.eps[b as usize].extend([a, t]);
                        at = t;
                    }
                    Some(m) => {
                        let t = self.state()?;
                        for _ in *min..*m {
                            let (a, b) = self.frag(expr)?;
                            self.eps[at as usize].extend([a, t]);
                            at = b;
                        }
                        self.eps[at as usize].push(t);
                        at = t;
                    }
                }
                Some((s, at))
            }
            _ => None,
        }
    }

    fn close(&self, set: &mut Vec<u32>) {
        let mut i = 0;
        while i < set.len() {
            for &t in &self.eps[set[i] as usize] {
                if !set.contains(&t) {
                    set.push(t);
                }
            }
            i += 1;
        }
        set.sort_unstable();
    }
}

/// Splits overlapping `(lo, hi, x)` ranges at every boundary and calls
/// `segment(lo, hi, xs)` with the sorted, deduplicated `x`s covering each
/// piece (pieces no range covers are skipped).
fn sweep(ranges: &[Edge], mut segment: impl FnMut(u32, u32, &[u32])) {
    let mut events: Vec<(u32, bool, u32)> = Vec::with_capacity(ranges.len() * 2);
    for &(lo, hi, x) in ranges {
        events.push((lo, true, x));
        if hi < MAX_CHAR {
            events.push((hi + 1, false, x));
        }
    }
    events.sort_unstable();
    let mut active: Vec<u32> = Vec::new();
    let mut covered: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let pos = events[i].0;
        while i < events.len() && events[i].0 == pos {
            let (_, open, x) = events[i];
            if open {
                active.push(x);
            } else if let Some(k) = active.iter().position(|&y| y == x) {
                active.swap_remove(k);
            }
            i += 1;
        }
        if active.is_empty() {
            continue;
        }
        let end = events.get(i).map_or(MAX_CHAR, |e| e.0 - 1);
        covered.clear();
        covered.extend_from_slice(&active);
        covered.sort_unstable();
        covered.dedup();
        segment(pos, end, &covered);
    }
}

/// Appends `(lo, hi, t)`, merging with the previous range where adjacent.
fn push_range(out: &mut Vec<Edge>, lo: u32, hi: u32, t: u32) {
    match out.last_mut() {
        Some(last) if last.2 == t && last.1 + 1 == lo => last.1 = hi,
        _ => out.push((lo, hi, t)),
    }
}

impl CharDfa {
    /// The DFA of an expression over decoded characters; `None` for other
    /// expressions or past [`MAX_STATES`].
    pub(crate) fn from_expr(e: &Expr) -> Option<CharDfa> {
        let mut nfa = Nfa::default();
        let (start, end) = nfa.frag(e)?;
        let mut first = vec![start];
        nfa.close(&mut first);
        let mut ids: HashMap<Vec<u32>, u32> = HashMap::default();
        ids.insert(first.clone(), 0);
        let mut sets = vec![first];
        let mut edges = Vec::new();
        let mut accept = Vec::new();
        let mut moves: Vec<Edge> = Vec::new();
        let mut i = 0;
        while i < sets.len() {
            accept.push(sets[i].binary_search(&end).is_ok());
            moves.clear();
            for &q in &sets[i] {
                moves.extend_from_slice(&nfa.moves[q as usize]);
            }
            let mut out: Vec<Edge> = Vec::new();
            let mut over = false;
            sweep(&moves, |lo, hi, targets| {
                let mut set = targets.to_vec();
                nfa.close(&mut set);
                let id = match ids.get(&set) {
                    Some(&id) => id,
                    None => {
                        over |= sets.len() >= MAX_STATES;
                        let id = sets.len() as u32;
                        ids.insert(set.clone(), id);
                        sets.push(set);
                        id
                    }
                };
                push_range(&mut out, lo, hi, id);
            });
            if over {
                return None;
            }
            edges.push(out);
            i += 1;
        }
        Some(CharDfa { edges, accept }.trimmed())
    }

    /// Number of states.
    pub(crate) fn len(&self) -> usize {
        self.accept.len()
    }

    /// Number of edges (character ranges) over all states: the size the
    /// language takes once spelled.
    pub(crate) fn ranges(&self) -> usize {
        self.edges.iter().map(Vec::len).sum()
    }

    /// Does the language contain no string?
    pub(crate) fn is_empty(&self) -> bool {
        !self.accept[0] && self.edges[0].is_empty()
    }

    /// Does the language contain `s`?
    pub(crate) fn matches(&self, s: &str) -> bool {
        let mut q = 0u32;
        for c in s.chars() {
            let c = c as u32;
            match self.edges[q as usize]
                .iter()
                .find(|&&(lo, hi, _)| lo <= c && c <= hi)
            {
                Some(&(_, _, t)) => q = t,
                None => return false,
            }
        }
        self.accept[q as usize]
    }

    /// Every string over Unicode scalar values that this DFA rejects.
    pub(crate) fn complement(&self) -> CharDfa {
        let n = self.len() as u32;
        let mut edges = Vec::with_capacity(self.len() + 1);
        let mut sink_used = false;
        for row in &self.edges {
            let mut out = Vec::new();
            let mut next = 0u32;
            let mut gap = |out: &mut Vec<Edge>, lo: u32, hi: u32| {
                // Surrogates are no characters.
                for (a, b) in [(lo, hi.min(0xD7FF)), (lo.max(0xE000), hi)] {
                    if a <= b {
                        push_range(out, a, b, n);
                        sink_used = true;
                    }
                }
            };
            for &(lo, hi, t) in row {
                if lo > next {
                    gap(&mut out, next, lo - 1);
                }
                push_range(&mut out, lo, hi, t);
                next = hi.saturating_add(1);
            }
            if next <= MAX_CHAR {
                gap(&mut out, next, MAX_CHAR);
            }
            edges.push(out);
        }
        let mut accept: Vec<bool> = self.accept.iter().map(|a| !a).collect();
        if sink_used {
            edges.push(vec![(0, 0xD7FF, n), (0xE000, MAX_CHAR, n)]);
            accept.push(true);
        }
        CharDfa { edges, accept }.trimmed()
    }

    /// The strings both DFAs accept; `None` past [`MAX_STATES`].
    pub(crate) fn intersect(&self, other: &CharDfa) -> Option<CharDfa> {
        let mut ids: HashMap<(u32, u32), u32> = HashMap::default();
        ids.insert((0, 0), 0);
        let mut pairs = vec![(0u32, 0u32)];
        let mut edges = Vec::new();
        let mut accept = Vec::new();
        let mut i = 0;
        while i < pairs.len() {
            let (a, b) = pairs[i];
            accept.push(self.accept[a as usize] && other.accept[b as usize]);
            let (ra, rb) = (&self.edges[a as usize], &other.edges[b as usize]);
            let mut out = Vec::new();
            let (mut x, mut y) = (0, 0);
            while x < ra.len() && y < rb.len() {
                let (alo, ahi, at) = ra[x];
                let (blo, bhi, bt) = rb[y];
                let (lo, hi) = (alo.max(blo), ahi.min(bhi));
                if lo <= hi {
                    let id = match ids.get(&(at, bt)) {
                        Some(&id) => id,
                        None => {
                            if pairs.len() >= MAX_STATES {
                                return None;
                            }
                            let id = pairs.len() as u32;
                            ids.insert((at, bt), id);
                            pairs.push((at, bt));
                            id
                        }
                    };
                    push_range(&mut out, lo, hi, id);
                }
                if ahi < bhi {
                    x += 1;
                } else {
                    y += 1;
                }
            }
            edges.push(out);
            i += 1;
        }
        Some(CharDfa { edges, accept }.trimmed())
    }

    /// Drops states that cannot reach acceptance (and unreachable ones),
    /// then merges equivalent states (Moore's partition refinement).
    fn trimmed(self) -> CharDfa {
        let n = self.len();
        // Live: can reach an accepting state.
        let mut rev: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (q, row) in self.edges.iter().enumerate() {
            for &(_, _, t) in row {
                rev[t as usize].push(q as u32);
            }
        }
        let mut live = self.accept.clone();
        let mut stack: Vec<u32> = (0..n as u32).filter(|&q| live[q as usize]).collect();
        while let Some(q) = stack.pop() {
            for &p in &rev[q as usize] {
                if !live[p as usize] {
                    live[p as usize] = true;
                    stack.push(p);
                }
            }
        }
        // Reachable from the start through live states.
        let mut new_id = vec![u32::MAX; n];
        let mut order = vec![0u32];
        new_id[0] = 0;
        let mut i = 0;
        while i < order.len() {
            let q = order[i] as usize;
            for &(_, _, t) in &self.edges[q] {
                if live[t as usize] && new_id[t as usize] == u32::MAX {
                    new_id[t as usize] = order.len() as u32;
                    order.push(t);
                }
            }
            i += 1;
        }
        let mut edges = Vec::with_capacity(order.len());
        let mut accept = Vec::with_capacity(order.len());
        for &q in &order {
            let mut out = Vec::new();
            for &(lo, hi, t) in &self.edges[q as usize] {
                if live[t as usize] {
                    push_range(&mut out, lo, hi, new_id[t as usize]);
                }
            }
            edges.push(out);
            accept.push(self.accept[q as usize]);
        }
        CharDfa { edges, accept }.minimised()
    }

    fn minimised(self) -> CharDfa {
        let n = self.len();
        // Moore's refinement takes a round per state of a chain (`x{1,255}`):
        // quadratic, so big DFAs stay as built (still exact, only larger).
        if n > MAX_MINIMISED {
            return self;
        }
        let mut class: Vec<u32> = self.accept.iter().map(|&a| u32::from(a)).collect();
        let mut count = 0;
        loop {
            let mut ids: HashMap<(u32, Vec<Edge>), u32> = HashMap::default();
            let mut next = vec![0u32; n];
            for q in 0..n {
                let mut sig = Vec::new();
                for &(lo, hi, t) in &self.edges[q] {
                    push_range(&mut sig, lo, hi, class[t as usize]);
                }
                let k = ids.len() as u32;
                next[q] = *ids.entry((class[q], sig)).or_insert(k);
            }
            let m = ids.len();
            class = next;
            if m == count {
                break;
            }
            count = m;
        }
        // Renumber so that the start stays 0, in order of first appearance.
        let mut new_id = vec![u32::MAX; count];
        let mut reps = Vec::new();
        for (q, &c) in class.iter().enumerate() {
            let c = c as usize;
            if new_id[c] == u32::MAX {
                new_id[c] = reps.len() as u32;
                reps.push(q);
            }
        }
        let edges = reps
            .iter()
            .map(|&q| {
                let mut out = Vec::new();
                for &(lo, hi, t) in &self.edges[q] {
                    push_range(&mut out, lo, hi, new_id[class[t as usize] as usize]);
                }
                out
            })
            .collect();
        let accept = reps.iter().map(|&q| self.accept[q]).collect();
        CharDfa { edges, accept }
    }

    /// Per state, its edges grouped by target (ranges of one target
    /// together), self-loop first.
    fn by_target(&self, q: usize) -> (Ranges, Vec<(u32, Ranges)>) {
        let mut own = Vec::new();
        let mut out: Vec<(u32, Vec<(u32, u32)>)> = Vec::new();
        for &(lo, hi, t) in &self.edges[q] {
            if t as usize == q {
                own.push((lo, hi));
            } else if let Some(g) = out.iter_mut().find(|g| g.0 == t) {
                g.1.push((lo, hi));
            } else {
                out.push((t, vec![(lo, hi)]));
            }
        }
        (own, out)
    }

    /// The language as one expression, where every cycle is a self-loop and
    /// the expression stays within `budget` nodes; else `None`.
    pub(crate) fn to_expr(&self, budget: usize) -> Option<Expr> {
        // Depth-first, children before parents; a cycle through other states
        // shows as a state met again while on the stack.
        let n = self.len();
        let mut done: Vec<Option<(Expr, usize)>> = vec![None; n];
        let mut on_stack = vec![false; n];
        fn class(ranges: Vec<(u32, u32)>) -> Expr {
            Expr::Class {
                negated: false,
                ranges,
            }
        }
        fn visit(
            d: &CharDfa,
            q: usize,
            done: &mut Vec<Option<(Expr, usize)>>,
            on_stack: &mut Vec<bool>,
            budget: usize,
        ) -> Option<()> {
            if done[q].is_some() {
                return Some(());
            }
            if on_stack[q] {
                return None;
            }
            on_stack[q] = true;
            let (own, out) = d.by_target(q);
            let mut alts = Vec::new();
            let mut size = 1;
            if d.accept[q] {
                alts.push(Expr::Empty);
            }
            for (t, ranges) in out {
                visit(d, t as usize, done, on_stack, budget)?;
                let (rest, s) = done[t as usize].clone()?;
                size += s + 2;
                if size > budget {
                    return None;
                }
                alts.push(match rest {
                    Expr::Empty => class(ranges),
                    rest => Expr::Seq(vec![class(ranges), rest]),
                });
            }
            let body = if alts.len() == 1 {
                alts.pop()?
            } else {
                Expr::Alt(alts)
            };
            let e = if own.is_empty() {
                body
            } else {
                size += 2;
                let star = Expr::Repeat {
                    expr: Box::new(class(own)),
                    min: 0,
                    max: None,
                };
                match body {
                    Expr::Empty => star,
                    body => Expr::Seq(vec![star, body]),
                }
            };
            on_stack[q] = false;
            done[q] = Some((e, size));
            Some(())
        }
        visit(self, 0, &mut done, &mut on_stack, budget)?;
        done[0].take().map(|(e, _)| e)
    }

    /// One right-linear rule body per state, for rules numbered from `base`
    /// (state `q` is rule `base + q`; the start is `base`). Each character
    /// class is passed through `spell` (to its JSON spellings).
    pub(crate) fn to_rules(
        &self,
        base: u32,
        spell: impl Fn(&Expr) -> Result<Expr>,
    ) -> Result<Vec<Expr>> {
        (0..self.len())
            .map(|q| {
                let (own, mut out) = self.by_target(q);
                if !own.is_empty() {
                    out.push((q as u32, own));
                }
                let mut alts = Vec::new();
                if self.accept[q] {
                    alts.push(Expr::Empty);
                }
                for (t, ranges) in out {
                    let c = spell(&Expr::Class {
                        negated: false,
                        ranges,
                    })?;
                    alts.push(Expr::Seq(vec![c, Expr::Rule(base + t)]));
                }
                Ok(Expr::Alt(alts))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::schema::strings::pattern_expr;

    fn dfa(p: &str) -> CharDfa {
        CharDfa::from_expr(&pattern_expr(p).ok().expect("pattern")).expect("dfa")
    }

    /// Every string over `a b c` and a newline up to length 5.
    fn texts() -> Vec<String> {
        strings::all_strings(&["a", "b", "c", "\n"], 5)
    }

    const PATTERNS: &[&str] = &[
        "^a*$",
        "a",
        "^[ab]+$",
        "^(ab)+$",
        "c$",
        "^a|b$",
        ".*",
        "^.*$",
        ".+",
        "",
        "^$",
        "^[^a]{1,3}$",
        "(a|bc)*c",
        "^a?b?c?$",
        "^(a|b)*c(a|b)*$",
        "b{2}",
        "^\\w+$",
    ];

    #[test]
    fn operations_agree_with_the_patterns() {
        let texts = texts();
        for p in PATTERNS {
            let d = dfa(p);
            let e = strings::recogniser(&pattern_expr(p).ok().expect("pattern"));
            let c = d.complement();
            for t in &texts {
                let want = e(t);
                assert_eq!(d.matches(t), want, "{p:?} on {t:?}");
                assert_eq!(c.matches(t), !want, "not {p:?} on {t:?}");
            }
            assert_eq!(c.complement(), d, "double complement of {p:?}");
            for q in PATTERNS {
                let both = d.intersect(&dfa(q)).expect("small");
                let dq = dfa(q);
                for t in &texts {
                    assert_eq!(
                        both.matches(t),
                        d.matches(t) && dq.matches(t),
                        "{p:?} & {q:?} on {t:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn expressions_and_rules_round_trip() {
        let texts = texts();
        let mut as_expr = 0;
        for p in PATTERNS {
            for d in [dfa(p), dfa(p).complement()] {
                if let Some(e) = d.to_expr(10_000) {
                    as_expr += 1;
                    let e = strings::recogniser(&e);
                    for t in &texts {
                        assert_eq!(e(t), d.matches(t), "{p:?} on {t:?}");
                    }
                }
                // Rules: checked through the IR recogniser with the bodies as rules.
                let bodies = d.to_rules(0, |e| Ok(e.clone())).expect("rules");
                let rules: Vec<crate::grammar::Rule> = bodies
                    .into_iter()
                    .enumerate()
                    .map(|(i, body)| crate::grammar::Rule {
                        name: format!("s{i}"),
                        body,
                        span: None,
                    })
                    .collect();
                for t in &texts {
                    let got = crate::grammar::schema::numbers::testing::matches(
                        &rules,
                        &Expr::Rule(0),
                        t.as_bytes(),
                    );
                    assert_eq!(got, d.matches(t), "rules of {p:?} on {t:?}");
                }
            }
        }
        // Cycles through several states (`(ab)+`) have no expression here.
        assert!(dfa("^(ab)+$").to_expr(10_000).is_none());
        assert!(as_expr > 20, "{as_expr}");
    }

    #[test]
    fn emptiness_and_caps() {
        assert!(dfa("^a$").intersect(&dfa("^b$")).expect("small").is_empty());
        assert!(dfa(".*").complement().is_empty());
        assert!(!dfa("^$").is_empty());
        assert_eq!(dfa("^(a|b)*$").len(), 1);
        // `x{5000}` builds past the cap.
        assert!(CharDfa::from_expr(&pattern_expr("^a{5000}$").ok().expect("p")).is_none());
    }
}
