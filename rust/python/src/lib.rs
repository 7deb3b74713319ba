//! Python bindings for corral-core: the native module `corral._core`.
//!
//! Each method converts its arguments, makes one call into corral-core, and
//! converts the result; no algorithm lives here.

mod batch;
mod buffers;
mod compiler;
mod errors;
mod matcher;
mod vocab;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    vocab::register(m)?;
    compiler::register(m)?;
    matcher::register(m)?;
    batch::register(m)?;
    Ok(())
}
