//! The one error type of corral-core.
//!
//! Every failure carries a message and, where it comes from grammar text, a
//! [`Span`] (1-based line and column, columns counted in characters) plus the
//! offending source line, so that `Display` can print a caret under it:
//!
//! ```text
//! 2:9: error: expected `::=` after rule name
//!   expr := term
//!        ^
//! ```

use std::fmt;

/// A position in grammar text: 1-based line, 1-based column (in characters),
/// and the width in characters to underline (at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in Unicode characters.
    pub column: u32,
    /// How many characters to underline with `^` (at least 1).
    pub width: u32,
}

/// What kind of failure an [`Error`] is; maps onto the Python exception types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Grammar text is malformed (reported with line and column).
    Syntax,
    /// The grammar is well-formed but cannot be built (undefined rule, missing root, ...).
    Grammar,
    /// A configured resource limit would be exceeded.
    Limit,
    /// A vocabulary / tokenizer description is invalid.
    Vocab,
    /// An invalid argument to the API (bad token id, rollback too far, ...).
    Invalid,
    /// A JSON Schema keyword that cannot be enforced exactly (the message
    /// names the keyword and the JSON pointer of its schema).
    Unsupported,
    /// An internal failure (a caught panic); the object that hit it is unusable.
    Internal,
}

/// The error type of corral-core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    span: Option<Span>,
    source_line: Option<String>,
    /// `(JSON pointer, keyword)` of an unsupported JSON Schema keyword.
    schema_keyword: Option<Box<(String, String)>>,
}

impl Error {
    /// An error without a source position.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            span: None,
            source_line: None,
            schema_keyword: None,
        }
    }

    /// An error located in `source` (the whole grammar text) at `span`.
    pub fn at(kind: ErrorKind, message: impl Into<String>, span: Span, source: &str) -> Self {
        let line = source
            .lines()
            .nth(span.line.saturating_sub(1) as usize)
            .map(str::to_owned);
        Error {
            kind,
            message: message.into(),
            span: Some(span),
            source_line: line,
            schema_keyword: None,
        }
    }

    /// A syntax error at `span` of `source`.
    pub fn syntax(message: impl Into<String>, span: Span, source: &str) -> Self {
        Self::at(ErrorKind::Syntax, message, span, source)
    }

    /// A resource-limit error; the message should name the limit and the number.
    pub fn limit(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Limit, message)
    }

    /// An [`ErrorKind::Unsupported`] error for `keyword` in the schema at `pointer`.
    pub fn unsupported(pointer: &str, keyword: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Unsupported, message);
        e.schema_keyword = Some(Box::new((pointer.to_owned(), keyword.to_owned())));
        e
    }

    /// For an unsupported JSON Schema keyword: the JSON pointer of its schema
    /// (`""` is the root) and the keyword.
    pub fn schema_keyword(&self) -> Option<(&str, &str)> {
        self.schema_keyword
            .as_deref()
            .map(|(p, k)| (p.as_str(), k.as_str()))
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The bare message, without position or snippet.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where in the grammar text the error is, if it comes from grammar text.
    pub fn span(&self) -> Option<Span> {
        self.span
    }

    /// The source line the span points into, if any.
    pub fn source_line(&self) -> Option<&str> {
        self.source_line.as_deref()
    }

    /// The source line with a caret line under the span (two lines, no trailing newline).
    pub fn snippet(&self) -> Option<String> {
        let (span, line) = (self.span?, self.source_line.as_ref()?);
        let pad: String = line
            .chars()
            .take(span.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let carets = "^".repeat(span.width.max(1) as usize);
        Some(format!("  {line}\n  {pad}{carets}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.span {
            Some(s) => write!(f, "{}:{}: error: {}", s.line, s.column, self.message)?,
            None => write!(f, "error: {}", self.message)?,
        }
        if let Some(snippet) = self.snippet() {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// `Result` with corral's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
