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

use crate::automaton::earley::Parser;
use crate::automaton::{byte_in, Automaton};
use crate::error::{Error, ErrorKind, Result};
use crate::grammar::ebnf::parse_gbnf;
use crate::grammar::regex::parse_regex;
use crate::grammar::schema::{builtin_json_grammar, schema_to_grammar, SchemaOptions};
use crate::grammar::Grammar;
use crate::limits::Limits;
use crate::mask::TokenSet;
use crate::trie::ByteStepper;
use crate::vocab::{TokenId, Vocabulary};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The classification of the vocabulary for one DFA state.
#[derive(Debug)]
pub struct CacheEntry {
    /// Tokens accepted whatever the rest of the parse stack is.
    pub accepted: TokenSet,
    /// Trie ranks (pre-order positions) of tokens the parent context decides, ascending.
    pub uncertain: Vec<u32>,
}

/// A grammar compiled against a vocabulary. Immutable apart from its
/// internally synchronised cache; share it across threads with `Arc`.
#[derive(Debug)]
pub struct CompiledGrammar {
    automaton: Automaton,
    vocab: Arc<Vocabulary>,
    cache: Vec<OnceLock<CacheEntry>>,
}

impl CompiledGrammar {
    /// Compile an already-built grammar IR.
    pub fn from_grammar(
        grammar: &Grammar,
        vocab: Arc<Vocabulary>,
        limits: &Limits,
        source: Option<&str>,
    ) -> Result<CompiledGrammar> {
        let automaton = Automaton::build(grammar, &vocab, limits, source)?;
        let cache = (0..automaton.num_states())
            .map(|_| OnceLock::new())
            .collect();
        Ok(CompiledGrammar {
            automaton,
            vocab,
            cache,
        })
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
        self.cache
            .iter()
            .filter_map(OnceLock::get)
            .fold((0, 0), |(n, b), e| {
                (n + 1, b + e.accepted.heap_bytes() + e.uncertain.len() * 4)
            })
    }

    /// The cache entry of `state`, computing it on first use.
    pub fn entry(&self, state: u32) -> &CacheEntry {
        self.cache[state as usize].get_or_init(|| self.classify(state))
    }

    /// Fill every cache entry now (otherwise entries fill on first use).
    pub fn warm_up(&self) {
        for s in 0..self.num_states() as u32 {
            let _ = self.entry(s);
        }
    }

    fn classify(&self, state: u32) -> CacheEntry {
        let a = &self.automaton;
        let rule = a.state_rule[state as usize];
        let mut stepper = LocalStepper {
            parser: Parser::starting_at(a, state),
            a,
            rule,
            completed: Vec::with_capacity(64),
            path: Vec::with_capacity(64),
            num_completed: 0,
        };
        let trie = self.vocab.trie();
        let mut accepted: Vec<TokenId> = Vec::new();
        let mut uncertain: Vec<u32> = Vec::new();
        let order = trie.tokens_in_order();
        trie.walk(
            &mut stepper,
            |_, _, toks| accepted.extend_from_slice(toks),
            |st, depth, toks| {
                // The rule could end strictly inside the token: the parent decides,
                // unless no byte after any completion point can follow the rule.
                if st.num_completed > 0 && st.may_continue_in_parent(depth) {
                    if let Some(&first) = toks.first() {
                        let r = trie.rank(first).unwrap_or(0);
                        uncertain.extend(r..r + toks.len() as u32);
                    }
                }
            },
        );
        debug_assert!(uncertain.iter().all(|&r| (r as usize) < order.len()));
        accepted.sort_unstable();
        CacheEntry {
            accepted: TokenSet::from_sorted_ids(accepted, self.vocab.vocab_size()),
            uncertain,
        }
    }
}

struct LocalStepper<'a> {
    parser: Parser,
    a: &'a Automaton,
    rule: u32,
    /// `completed[i]`: the rule instance can end after `i + 1` bytes.
    completed: Vec<bool>,
    /// The bytes pushed so far, plus the last byte tried (for `on_dead`).
    path: Vec<u8>,
    num_completed: usize,
}

impl LocalStepper<'_> {
    /// After the byte at `depth` was refused: could some completion point of
    /// the rule hand the rest of the token to a parent? The byte right after
    /// the completion must be in the rule's static FOLLOW set.
    fn may_continue_in_parent(&self, depth: usize) -> bool {
        let follow = &self.a.follow[self.rule as usize];
        (0..depth.min(self.completed.len()))
            .any(|i| self.completed[i] && self.path.get(i + 1).is_some_and(|&b| byte_in(follow, b)))
    }
}

impl ByteStepper for LocalStepper<'_> {
    #[inline]
    fn push(&mut self, byte: u8) -> bool {
        self.path.truncate(self.completed.len());
        self.path.push(byte);
        if !self.parser.push_byte(self.a, byte) {
            return false;
        }
        let c = self.parser.completes_at_origin0(self.a, self.rule);
        self.completed.push(c);
        self.num_completed += usize::from(c);
        true
    }
    #[inline]
    fn pop(&mut self) {
        let n = self.parser.num_sets();
        self.parser.truncate(n - 1);
        if self.completed.pop() == Some(true) {
            self.num_completed -= 1;
        }
    }
}

/// Compiles grammars against one vocabulary; caches results by grammar text.
#[derive(Debug)]
pub struct Compiler {
    vocab: Arc<Vocabulary>,
    limits: Limits,
    cache: Mutex<FxHashMap<CacheKey, Arc<CompiledGrammar>>>,
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
        }
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    /// Compile GBNF text (llama.cpp dialect) with start rule `root`.
    pub fn compile_gbnf(&self, src: &[u8], root: &str) -> Result<Arc<CompiledGrammar>> {
        let key = CacheKey::Gbnf(src.to_vec(), root.to_owned());
        let text = std::str::from_utf8(src).ok();
        self.cached(key, "grammar", src.len(), text, || parse_gbnf(src, root))
    }

    /// Compile a regular expression (Python `re` / ECMAScript syntax, see
    /// [`crate::grammar::regex`]) into a grammar that matches exactly the
    /// strings the pattern fully matches.
    pub fn compile_regex(&self, pattern: &str) -> Result<Arc<CompiledGrammar>> {
        let key = CacheKey::Regex(pattern.to_owned());
        self.cached(key, "pattern", pattern.len(), Some(pattern), || {
            parse_regex(pattern)
        })
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
    /// the schema's compact text and the options.
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
        let compiled = Arc::new(CompiledGrammar::from_grammar(
            &grammar,
            self.vocab.clone(),
            &self.limits,
            source,
        )?);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, compiled.clone());
        }
        Ok(compiled)
    }
}
