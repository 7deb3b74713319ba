//! Resource limits, so hostile or accidental inputs fail with a clear error
//! instead of exhausting memory or time.

/// Limits applied while compiling a grammar. The defaults suit interactive use;
/// every error that a limit causes names the limit and the number that hit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of grammar text in bytes.
    pub max_grammar_bytes: usize,
    /// Maximum number of NFA states over all rules (bounded repetitions are unrolled).
    pub max_nfa_states: usize,
    /// Maximum number of DFA states over all rules.
    pub max_dfa_states: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_grammar_bytes: 4 << 20,
            max_nfa_states: 2_000_000,
            max_dfa_states: 500_000,
        }
    }
}
