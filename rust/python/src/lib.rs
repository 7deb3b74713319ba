//! Python bindings for corral-core: the native module `corral._core`.
//!
//! Each method converts its arguments, makes one call into corral-core, and
//! converts the result; no algorithm lives here.

mod apply;
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

/// Option numbers in the `mimalloc.h` that libmimalloc-sys 0.1.49 builds
/// (pinned in Cargo.toml; its Rust bindings lack these two constants).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Commit arena memory as it is used, not all at once on the first
/// allocation (that made the first compile of a process 244 ms instead of
/// 110), and keep freed pages instead of returning them to the OS 10 ms
/// later (each big compile re-faulted and zeroed its pages: the slowest
/// compiles of a run doubled). glibc's malloc behaves so too.
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: sets two integer options of the allocator; takes no pointers.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tune_allocator();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    vocab::register(m)?;
    compiler::register(m)?;
    matcher::register(m)?;
    batch::register(m)?;
    apply::register(m)?;
    Ok(())
}
