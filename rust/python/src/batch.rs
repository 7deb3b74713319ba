//! `batch_fill_next_token_bitmask`: one call fills the mask rows of many
//! matchers, in parallel on a rayon pool, with the GIL released.

use crate::buffers::MaskRow;
use crate::matcher::PyGrammarMatcher;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

/// Pools built for an explicit `num_threads`, kept for reuse (building one
/// costs far more than a mask fill).
fn pool(num_threads: usize) -> PyResult<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = pools.get(&num_threads) {
        return Ok(Arc::clone(p));
    }
    let p = ThreadPoolBuilder::new()
        .num_threads(num_threads)
        .thread_name(|i| format!("corral-fill-{i}"))
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a thread pool: {e}")))?;
    let p = Arc::new(p);
    pools.insert(num_threads, Arc::clone(&p));
    Ok(p)
}

/// See `_core.pyi`.
#[pyfunction]
#[pyo3(signature = (matchers, bitmask, indices=None, num_threads=None))]
fn batch_fill_next_token_bitmask(
    py: Python<'_>,
    matchers: Vec<Bound<'_, PyGrammarMatcher>>,
    bitmask: &Bound<'_, PyAny>,
    indices: Option<Vec<usize>>,
    num_threads: Option<usize>,
) -> PyResult<Vec<bool>> {
    let rows_of = indices.unwrap_or_else(|| (0..matchers.len()).collect());
    if rows_of.len() != matchers.len() {
        return Err(PyValueError::new_err(format!(
            "got {} matchers but {} indices",
            matchers.len(),
            rows_of.len()
        )));
    }
    // Distinct rows and distinct matchers: each task owns its row and matcher.
    let mut seen = HashSet::new();
    if let Some(r) = rows_of.iter().find(|r| !seen.insert(**r)) {
        return Err(PyValueError::new_err(format!(
            "row {r} appears twice in indices"
        )));
    }
    let mut seen = HashSet::new();
    if let Some(i) = matchers.iter().position(|m| !seen.insert(m.as_ptr())) {
        return Err(PyValueError::new_err(format!(
            "matcher {i} appears twice; fork() it to fill two rows"
        )));
    }
    let mut refs = matchers
        .iter()
        .map(Bound::try_borrow_mut)
        .collect::<Result<Vec<_>, _>>()?;
    let rows = refs
        .iter()
        .zip(&rows_of)
        .map(|(m, &r)| MaskRow::new(bitmask, r, m.mask_words()))
        .collect::<PyResult<Vec<_>>>()?;
    let mut work: Vec<_> = refs.iter_mut().map(|m| &mut **m).zip(rows).collect();
    let pool = match num_threads {
        Some(0) => return Err(PyValueError::new_err("num_threads must be positive")),
        Some(n) if n > 1 => Some(pool(n)?),
        _ => None,
    };
    let sequential = num_threads == Some(1) || work.len() < 2;
    Ok(py.detach(|| {
        let fill =
            |(m, row): &mut (&mut PyGrammarMatcher, MaskRow)| m.fill_into(row.as_mut_slice());
        if sequential {
            work.iter_mut().map(fill).collect()
        } else if let Some(p) = pool {
            p.install(|| work.par_iter_mut().map(fill).collect())
        } else {
            work.par_iter_mut().map(fill).collect()
        }
    }))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch_fill_next_token_bitmask, m)?)
}
