//! GBNF front-end (being written).
use super::Grammar;
use crate::error::Result;

/// Parse GBNF text.
pub fn parse_gbnf(_src: &[u8], _root: &str) -> Result<Grammar> {
    todo!()
}
