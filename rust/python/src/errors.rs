//! The exception hierarchy and the one mapping from `corral_core::Error`.

use corral_core::{Error, ErrorKind};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    corral,
    GrammarError,
    PyValueError,
    "A grammar cannot be compiled."
);
pyo3::create_exception!(
    corral,
    GrammarSyntaxError,
    GrammarError,
    "Grammar text is malformed; has `.line`, `.column` and `.snippet`."
);
pyo3::create_exception!(
    corral,
    LimitExceededError,
    GrammarError,
    "A resource limit would be exceeded."
);
pyo3::create_exception!(
    corral,
    UnsupportedSchemaError,
    GrammarError,
    "A JSON Schema uses a keyword corral cannot enforce exactly; has `.pointer` and `.keyword`."
);
pyo3::create_exception!(
    corral,
    VocabError,
    PyValueError,
    "A vocabulary description is invalid."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("GrammarError", py.get_type::<GrammarError>())?;
    m.add("GrammarSyntaxError", py.get_type::<GrammarSyntaxError>())?;
    m.add("LimitExceededError", py.get_type::<LimitExceededError>())?;
    m.add("VocabError", py.get_type::<VocabError>())?;
    m.add(
        "UnsupportedSchemaError",
        py.get_type::<UnsupportedSchemaError>(),
    )?;
    Ok(())
}

/// Convert a core error into the matching Python exception.
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let msg = e.to_string();
    let err = match e.kind() {
        ErrorKind::Syntax => GrammarSyntaxError::new_err(msg),
        ErrorKind::Grammar => GrammarError::new_err(msg),
        ErrorKind::Limit => LimitExceededError::new_err(msg),
        ErrorKind::Vocab => VocabError::new_err(msg),
        ErrorKind::Unsupported => UnsupportedSchemaError::new_err(msg),
        ErrorKind::Invalid => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    };
    let value = err.value(py);
    let (line, column) = e
        .span()
        .map_or((None, None), |s| (Some(s.line), Some(s.column)));
    // Attributes are best effort: the message already carries everything.
    let _ = value.setattr("line", line);
    let _ = value.setattr("column", column);
    let _ = value.setattr("snippet", e.snippet());
    let _ = value.setattr("message", e.message());
    if let Some((pointer, keyword)) = e.schema_keyword() {
        let _ = value.setattr("pointer", pointer);
        let _ = value.setattr("keyword", keyword);
    }
    err
}

/// Run `f`, turning a panic into a Python `RuntimeError` instead of letting it unwind.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> T) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        PyRuntimeError::new_err(format!("internal error in {what}: {}", panic_text(&p)))
    })
}

/// The message of a caught panic payload.
pub(crate) fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
