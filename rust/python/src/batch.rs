//! `batch_fill_next_token_bitmask`: one call fills the mask rows of many
//! matchers, in parallel on a rayon pool, with the GIL released.

use crate::buffers::{BufferRow, MaskBuffer};
use crate::matcher::PyGrammarMatcher;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    // Distinct matchers (and distinct rows, checked by `MaskBuffer::rows`):
    // each task owns its row and matcher.
    let mut by_ptr: Vec<(*mut pyo3::ffi::PyObject, usize)> = matchers
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_ptr(), i))
        .collect();
    by_ptr.sort_unstable();
    if let Some(w) = by_ptr.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(PyValueError::new_err(format!(
            "matcher {} appears twice; fork() it to fill two rows",
            w[1].1
        )));
    }
    let mut refs = matchers
        .iter()
        .map(Bound::try_borrow_mut)
        .collect::<Result<Vec<_>, _>>()?;
    // One buffer for every row: acquiring it per row was a third of a warm call.
    let buffer = MaskBuffer::new(bitmask)?;
    let rows = buffer.rows(rows_of.iter().zip(&refs).map(|(&r, m)| (r, m.mask_words())))?;
    let mut work: Vec<_> = refs.iter_mut().map(|m| &mut **m).zip(rows).collect();
    let pool = match num_threads {
        Some(0) => return Err(PyValueError::new_err("num_threads must be positive")),
        Some(n) if n > 1 => Some(pool(n)?),
        _ => None,
    };
    let sequential = num_threads == Some(1) || work.len() < 2;
    Ok(py.detach(|| {
        let fill =
            |(m, row): &mut (&mut PyGrammarMatcher, BufferRow<'_>)| m.fill_into(row.as_mut_slice());
        if sequential {
            return work.iter_mut().map(fill).collect();
        }
        // The calling thread fills rows too (from the front; helpers from
        // the back, see `Ends`): a warm fill is a copy of about a
        // microsecond, so 64 rows are ~40 us, and a worker woken on this
        // call may start late (handing the whole call to the pool, with the
        // caller waiting, made two threads slower than one).
        let rows: Vec<Mutex<(&mut (&mut PyGrammarMatcher, BufferRow<'_>), bool)>> =
            work.iter_mut().map(|w| Mutex::new((w, false))).collect();
        let helpers = rows.len() - 1;
        let workers = match &pool {
            Some(p) => p.current_num_threads(),
            None => rayon::current_num_threads() - 1,
        };
        let left = Ends::new(rows.len(), workers.min(helpers) + 1);
        let drain = |front: bool| {
            while let Some(taken) = left.take(front) {
                for cell in &rows[taken] {
                    let mut cell = cell
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    cell.1 = fill(cell.0);
                }
            }
        };
        let busy = AtomicUsize::new(0);
        let linger = linger::begin();
        let help = || {
            busy.fetch_add(1, Ordering::AcqRel);
            drain(false);
            busy.fetch_sub(1, Ordering::AcqRel);
            // Queued on this worker's own deque: no cost to the caller.
            if let Some(seen) = linger {
                rayon::spawn(move || linger::wait(seen));
            }
        };
        let drain = || drain(true);
        match &pool {
            Some(p) => p.in_place_scope(|s| spread(s, workers, helpers, &help, &drain, &busy)),
            None => rayon::in_place_scope(|s| spread(s, workers, helpers, &help, &drain, &busy)),
        }
        linger::end();
        rows.into_iter()
            .map(|c| {
                c.into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .1
            })
            .collect()
    }))
}

/// The rows not yet taken, `lo..hi` in one word. The caller takes them
/// from the front and helpers from the back, so from call to call each
/// thread writes mostly the same rows (a row the other core wrote last is
/// first fetched from that core's cache, line by line). A take is a quarter
/// of an even share of what is left (guided scheduling: runs first, single
/// rows at the end), since every take moves the word between cores (~0.1 us;
/// a warm row is ~0.6); half a share balanced cold calls worse.
struct Ends {
    left: AtomicU64,
    threads: u64,
}

impl Ends {
    fn new(n: usize, threads: usize) -> Ends {
        Ends {
            left: AtomicU64::new((n as u64) << 32),
            threads: threads as u64,
        }
    }

    fn take(&self, front: bool) -> Option<std::ops::Range<usize>> {
        let mut cur = self.left.load(Ordering::Relaxed);
        loop {
            let (lo, hi) = (cur & 0xffff_ffff, cur >> 32);
            if lo >= hi {
                return None;
            }
            let k = ((hi - lo) / (4 * self.threads)).max(1);
            let (next, taken) = if front {
                (cur + k, lo..lo + k)
            } else {
                (cur - (k << 32), hi - k..hi)
            };
            match self
                .left
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(taken.start as usize..taken.end as usize),
                Err(c) => cur = c,
            }
        }
    }
}

/// Run `help` on up to `workers` of the scope's pool (at most `helpers`)
/// and `drain` on the current thread. Then, while a helper is on its last
/// row (`busy`), spin rather than leave the scope: the scope's wait blocks
/// the caller on a condition variable, a sleep and a wake that cost tens of
/// microseconds on this machine, as much as a whole warm call. A helper
/// that has not started (its worker was asleep) is left to the scope.
fn spread<'a>(
    s: &rayon::Scope<'a>,
    workers: usize,
    helpers: usize,
    help: &'a (dyn Fn() + Sync),
    drain: &dyn Fn(),
    busy: &AtomicUsize,
) {
    for _ in 0..workers.min(helpers) {
        s.spawn(move |_| help());
    }
    drain();
    let t0 = std::time::Instant::now();
    while busy.load(Ordering::Acquire) > 0 && t0.elapsed() < std::time::Duration::from_micros(200) {
        std::hint::spin_loop();
    }
}

/// Keeping the pool's workers awake between calls. A worker that went to
/// sleep after one call is woken by the next, which on this machine (a VM)
/// takes longer than a 64-row warm call (~40 us): such calls ran slower on
/// two threads than on one. So after helping with a call, each worker spins
/// (yielding often) for up to [`LINGER`] waiting for the next, but only when
/// calls have been coming closer together than that (a decoding loop on a
/// small model, a batch benchmark): a server calling every 10-30 ms sees no
/// spinning.
mod linger {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// How long a worker waits, spinning, for the next call.
    pub const LINGER: Duration = Duration::from_micros(500);

    /// Parallel calls begun so far (a lingering worker stops when it changes).
    static CALLS: AtomicU64 = AtomicU64::new(0);
    /// When the last parallel call ended (nanoseconds since [`epoch`]).
    static LAST_END: AtomicU64 = AtomicU64::new(u64::MAX);

    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    fn now_ns() -> u64 {
        epoch().elapsed().as_nanos() as u64
    }

    /// A parallel call begins: stop lingering workers. Returns what a
    /// helper waits on for the next call when calls come close together
    /// (within [`LINGER`] of the last one's end, or this is the first).
    pub fn begin() -> Option<u64> {
        let seen = CALLS.fetch_add(1, Ordering::AcqRel) + 1;
        let last = LAST_END.load(Ordering::Relaxed);
        let close = last == u64::MAX || now_ns().saturating_sub(last) < LINGER.as_nanos() as u64;
        close.then_some(seen)
    }

    /// A parallel call ended.
    pub fn end() {
        LAST_END.store(now_ns(), Ordering::Relaxed);
    }

    /// Spin, yielding often, until a call after `seen` begins or [`LINGER`] passes.
    pub fn wait(seen: u64) {
        let t0 = Instant::now();
        loop {
            for _ in 0..64 {
                if CALLS.load(Ordering::Acquire) != seen {
                    return;
                }
                std::hint::spin_loop();
            }
            if t0.elapsed() >= LINGER {
                return;
            }
            // Give way to a thread the OS put on this CPU (the caller's
            // Python thread, between its calls).
            std::thread::yield_now();
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch_fill_next_token_bitmask, m)?)
}
