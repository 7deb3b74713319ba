//! `batch_fill_next_token_bitmask`: one call fills the mask rows of many
//! matchers, in parallel on a rayon pool, with the GIL released.

use crate::buffers::MaskRow;
use crate::matcher::PyGrammarMatcher;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Pools built for an explicit `num_threads`, kept for reuse (building one
/// costs far more than a mask fill): `num_threads - 1` workers, since the
/// calling thread fills rows too.
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
        .num_threads(num_threads - 1)
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
            return work.iter_mut().map(fill).collect();
        }
        // The calling thread fills rows too, and every thread takes the
        // next row left: a warm fill is a copy of about a microsecond, so
        // 64 rows are ~50 us, and a worker woken on this call may start
        // late (handing the whole call to the pool, with the caller
        // waiting, made two threads slower than one).
        let rows: Vec<Mutex<(&mut (&mut PyGrammarMatcher, MaskRow), bool)>> =
            work.iter_mut().map(|w| Mutex::new((w, false))).collect();
        let next = AtomicUsize::new(0);
        let drain = || {
            while let Some(cell) = rows.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut cell = cell
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                cell.1 = fill(cell.0);
            }
        };
        let helpers = rows.len() - 1;
        match pool {
            Some(p) => p.in_place_scope(|s| spread(s, p.current_num_threads(), helpers, &drain)),
            None => rayon::in_place_scope(|s| {
                spread(s, rayon::current_num_threads() - 1, helpers, &drain);
            }),
        }
        rows.into_iter()
            .map(|c| {
                c.into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .1
            })
            .collect()
    }))
}

/// Run `drain` on the current thread and on up to `workers` of the scope's
/// pool (at most `helpers`).
fn spread<'a>(s: &rayon::Scope<'a>, workers: usize, helpers: usize, drain: &'a (dyn Fn() + Sync)) {
    for _ in 0..workers.min(helpers) {
        s.spawn(move |_| drain());
    }
    drain();
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch_fill_next_token_bitmask, m)?)
}
