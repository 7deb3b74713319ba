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

// Compiles allocate per NFA state, subset and rule (a quarter of a big
// schema's compile in `perf`); mimalloc serves those small blocks faster
// than glibc's malloc. Only this extension's Rust allocations use it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
