//! `batch_fill_next_token_bitmask` and `batch_accept_token`: one call
//! fills the mask rows of (or accepts a token in) many matchers, on the
//! calling thread and a crew of helper threads, with the GIL released.

use crate::buffers::MaskBuffer;
use crate::matcher::{token_id_of, PyGrammarMatcher};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// See `_core.pyi`.
#[pyfunction]
#[pyo3(signature = (matchers, bitmask, indices=None, num_threads=None))]
fn batch_fill_next_token_bitmask(
    py: Python<'_>,
    matchers: &Bound<'_, PyAny>,
    bitmask: &Bound<'_, PyAny>,
    indices: Option<Vec<usize>>,
    num_threads: Option<usize>,
) -> PyResult<Vec<bool>> {
    let mut refs = borrow_all(matchers)?;
    let rows_of = indices.unwrap_or_else(|| (0..refs.len()).collect());
    if rows_of.len() != refs.len() {
        return Err(PyValueError::new_err(format!(
            "got {} matchers but {} indices",
            refs.len(),
            rows_of.len()
        )));
    }
    // One buffer for every row: acquiring it per row was a third of a warm call.
    let buffer = MaskBuffer::new(bitmask)?;
    let rows = buffer.rows(rows_of.iter().zip(&refs).map(|(&r, m)| (r, m.mask_words())))?;
    let mut work: Vec<_> = refs.iter_mut().map(|m| &mut **m).zip(rows).collect();
    let crew = crew_for(num_threads, work.len())?;
    Ok(py.detach(|| {
        each_row(crew.as_deref(), &mut work, |(m, row)| {
            m.fill_into(row.as_mut_slice())
        })
    }))
}

/// See `_core.pyi`.
#[pyfunction]
#[pyo3(signature = (matchers, token_ids, num_threads=None))]
fn batch_accept_token(
    py: Python<'_>,
    matchers: &Bound<'_, PyAny>,
    token_ids: &Bound<'_, PyAny>,
    num_threads: Option<usize>,
) -> PyResult<Vec<bool>> {
    let mut refs = borrow_all(matchers)?;
    let ids = token_ids_of(token_ids)?;
    if ids.len() != refs.len() {
        return Err(PyValueError::new_err(format!(
            "got {} matchers but {} token ids",
            refs.len(),
            ids.len()
        )));
    }
    let mut work: Vec<_> = refs.iter_mut().map(|m| &mut **m).zip(ids).collect();
    let crew = crew_for(num_threads, work.len())?;
    Ok(py.detach(|| each_row(crew.as_deref(), &mut work, |(m, id)| m.accept_id(*id))))
}

/// The ids of `token_ids` (any iterable of ints but `str`: a list, a numpy
/// array), each read as `GrammarMatcher.accept_token` reads one.
fn token_ids_of(token_ids: &Bound<'_, PyAny>) -> PyResult<Vec<Option<u32>>> {
    if token_ids.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "token_ids must be a sequence of int, not str",
        ));
    }
    let mut ids = Vec::with_capacity(token_ids.len().unwrap_or(0));
    for (i, t) in token_ids.try_iter()?.enumerate() {
        ids.push(token_id_of(&t?, || format!("token_ids[{i}]"))?);
    }
    Ok(ids)
}

/// The crew for a call of `rows` rows on `num_threads` threads (`None`:
/// one per core), or `None` to work on the calling thread alone.
pub(crate) fn crew_for(
    num_threads: Option<usize>,
    rows: usize,
) -> PyResult<Option<Arc<crew::Crew>>> {
    let threads = match num_threads {
        Some(0) => return Err(PyValueError::new_err("num_threads must be positive")),
        Some(n) => n,
        None => crew::default_threads(),
    };
    if threads > 1 && rows > 1 {
        crew::get(threads - 1).map(Some)
    } else {
        Ok(None)
    }
}

/// `f` applied to every row of `work`, in order of rows; the rows are
/// shared out between the calling thread and the crew's helpers.
pub(crate) fn each_row<W: Send>(
    crew: Option<&crew::Crew>,
    work: &mut [W],
    f: impl Fn(&mut W) -> bool + Sync,
) -> Vec<bool> {
    let Some(crew) = crew else {
        return work.iter_mut().map(f).collect();
    };
    // The calling thread takes rows too (from the front; helpers from the
    // back, see `Ends`): a warm fill is a copy of about half a microsecond,
    // so 64 rows are ~35 us, and a helper woken by this call may start late
    // (handing the whole call to a pool, with the caller waiting, made two
    // threads slower than one).
    let rows: Vec<Mutex<(&mut W, bool)>> =
        work.iter_mut().map(|w| Mutex::new((w, false))).collect();
    let left = Ends::new(rows.len(), crew.helpers().min(rows.len() - 1) + 1);
    let drain = |wake: Option<&crew::Wake<'_>>| {
        while let Some(taken) = left.take(wake.is_some()) {
            for cell in &rows[taken] {
                let mut cell = cell
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                cell.1 = f(cell.0);
                if let Some(w) = wake {
                    w.row_done(|| left.remaining());
                }
            }
        }
    };
    crew.run(&|| drain(None), |wake| drain(Some(wake)));
    rows.into_iter()
        .map(|c| {
            c.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .1
        })
        .collect()
}

/// Each matcher of `matchers` (any sequence but `str`), borrowed mutably
/// in one pass: each task owns its matcher, and a matcher listed twice
/// fails its second borrow (so no separate check for repeats, which cost
/// as much as the borrows).
fn borrow_all<'py>(matchers: &Bound<'py, PyAny>) -> PyResult<Vec<PyRefMut<'py, PyGrammarMatcher>>> {
    if matchers.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "matchers must be a sequence of GrammarMatcher, not str",
        ));
    }
    let borrow = |i: usize, m: Bound<'py, PyAny>, refs: &[PyRefMut<'py, PyGrammarMatcher>]| {
        let m = m
            .cast_into::<PyGrammarMatcher>()
            .map_err(|e| PyTypeError::new_err(format!("matcher {i}: {e}")))?;
        m.try_borrow_mut().map_err(|e| {
            if refs.iter().any(|r| r.as_ptr() == m.as_ptr()) {
                PyValueError::new_err(format!(
                    "matcher {i} appears twice; fork() it to fill two rows"
                ))
            } else {
                PyErr::from(e)
            }
        })
    };
    let mut refs = Vec::with_capacity(matchers.len().unwrap_or(0));
    for (i, m) in matchers.try_iter()?.enumerate() {
        let r = borrow(i, m?, &refs)?;
        refs.push(r);
    }
    Ok(refs)
}

/// The rows not yet taken, `lo..hi` in one word. The caller takes them
/// from the front and helpers from the back, so from call to call each
/// thread writes mostly the same rows (a row the other core wrote last is
/// first fetched from that core's cache, line by line). A take is a quarter
/// of an even share of what is left (guided scheduling: runs first, single
/// rows at the end), since every take moves the word between cores (~0.1 us;
/// a warm row is ~0.6); half a share balanced cold calls worse.
#[repr(align(128))]
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

    /// How many rows no thread has taken yet.
    fn remaining(&self) -> usize {
        let cur = self.left.load(Ordering::Relaxed);
        ((cur >> 32).saturating_sub(cur & 0xffff_ffff)) as usize
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

/// Helper threads that fill rows beside the calling thread, one crew per
/// helper count, started on first use and kept for the process.
///
/// Not a rayon pool: a pool's scope makes the caller wait for every task
/// it spawned, including one whose worker wakes after the caller has
/// filled every row, and ends with a lock and a futex wake; together about
/// 2 us of a 20 us warm 64-row call on two threads. Here a helper joins a
/// call only while the call is open, the caller closes it when it runs out
/// of rows, and then waits (spinning) only for the helpers that joined.
///
/// Waking a parked helper blocks the caller for the wake's system call,
/// which on this machine (a VM: an interrupt to a halted virtual CPU) took
/// 20-180 us, more than a whole warm 64-row call: a call that finds the
/// helpers parked wakes them only once the rows left look like long work
/// (see [`Wake`]).
mod crew {
    use pyo3::exceptions::PyRuntimeError;
    use pyo3::PyResult;
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::thread::Thread;
    use std::time::{Duration, Instant};

    /// How long a helper waits, spinning, for the next call, when calls
    /// come closer together than this (a decoding loop on a small model, a
    /// batch benchmark): waking a parked thread on this machine (a VM) takes
    /// longer than a warm 64-row call. A server calling every 10-30 ms sees
    /// no spinning.
    pub const LINGER: Duration = Duration::from_micros(500);

    /// The least work left (at the call's pace so far) for which a call
    /// wakes parked helpers. Waking costs more than its system call: on
    /// this machine a warm 64-row call that woke the helper after 2 ms
    /// idle took 70-150 us where the caller alone took 46 (the helper's
    /// virtual CPU had to be scheduled, at times beside the caller's).
    pub const WAKE_WORTH: Duration = Duration::from_micros(250);

    /// How long a call runs before it may wake parked helpers: the first
    /// rows after an idle spell are slow (cold caches), and judged by them
    /// a warm 64-row call (~45 us after 2 ms idle here) looked long.
    pub const WAKE_AFTER: Duration = Duration::from_micros(50);

    /// `state` bit: the call may still be joined.
    const OPEN: u64 = 1 << 31;
    /// `state` bits: how many helpers joined the call.
    const JOINED: u64 = OPEN - 1;

    /// A call's work for the helpers.
    type Job<'a> = &'a (dyn Fn() + Sync + 'a);

    #[derive(Debug)]
    #[repr(align(128))]
    struct Shared {
        /// `epoch << 32 | OPEN | joined`: the current (or last) call, whether
        /// it is open, and how many helpers joined it.
        state: AtomicU64,
        /// Helpers that finished the current call's job.
        finished: AtomicUsize,
        /// The current call's `Job`, on the caller's stack (see `run`).
        job: AtomicPtr<()>,
        /// A call holds the crew (one call at a time).
        in_use: AtomicBool,
        /// Whether helpers wait spinning after this call (see [`LINGER`]).
        linger: AtomicBool,
        /// When the last call ended, in nanoseconds since `epoch()`.
        last_end: AtomicU64,
        /// Helpers parked, or about to park.
        parked: AtomicUsize,
        /// What waking parked helpers cost the caller, in nanoseconds (a
        /// running average; 0 until first measured).
        wake_ns: AtomicU64,
    }

    /// Helper threads, and what they share with callers.
    #[derive(Debug)]
    pub struct Crew {
        shared: Arc<Shared>,
        threads: Vec<Thread>,
        /// [`forks`] when the threads started: a child forked after that
        /// has none of them, and starts its own crew.
        forks: u64,
    }

    /// One thread per core (`available_parallelism`, which counts the
    /// process's CPU affinity and cgroup quota), the caller included; read
    /// once per process, as it reads cgroup files (~23 us a call here, more
    /// than a warm 64-row fill on two threads).
    pub fn default_threads() -> usize {
        static THREADS: OnceLock<usize> = OnceLock::new();
        *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// How many times this process is a fork's child, counted from the
    /// first crew on: checked in place of `getpid`, a system call on every
    /// call (glibc no longer caches it).
    fn forks() -> u64 {
        FORKS.load(Ordering::Relaxed)
    }

    static FORKS: AtomicU64 = AtomicU64::new(0);

    #[cfg(unix)]
    extern "C" fn forked_child() {
        FORKS.fetch_add(1, Ordering::Relaxed);
    }

    /// The crew of `helpers` threads, started on first use.
    pub fn get(helpers: usize) -> PyResult<Arc<Crew>> {
        static CREWS: OnceLock<Mutex<HashMap<usize, Arc<Crew>>>> = OnceLock::new();
        let mut crews = CREWS
            .get_or_init(|| {
                // SAFETY: registers a function without arguments that adds
                // to one atomic, as async-signal-safe as a fork handler
                // must be; before any crew exists, so every fork that could
                // leave one behind is counted. (Without `fork`, nothing to
                // count.)
                #[cfg(unix)]
                #[allow(unsafe_code)]
                unsafe {
                    libc::pthread_atfork(None, None, Some(forked_child));
                }
                Mutex::new(HashMap::new())
            })
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let forks = forks();
        if let Some(c) = crews.get(&helpers).filter(|c| c.forks == forks) {
            return Ok(Arc::clone(c));
        }
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            in_use: AtomicBool::new(false),
            linger: AtomicBool::new(false),
            last_end: AtomicU64::new(u64::MAX),
            parked: AtomicUsize::new(0),
            wake_ns: AtomicU64::new(0),
        });
        let threads = (0..helpers)
            .map(|i| {
                let sh = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("corral-fill-{i}"))
                    .spawn(move || help(&sh))
                    .map(|h| h.thread().clone())
                    .map_err(|e| {
                        PyRuntimeError::new_err(format!("cannot start a helper thread: {e}"))
                    })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let crew = Arc::new(Crew {
            shared,
            threads,
            forks,
        });
        crews.insert(helpers, Arc::clone(&crew));
        Ok(crew)
    }

    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    fn now_ns() -> u64 {
        u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    impl Crew {
        /// How many helper threads the crew has.
        pub fn helpers(&self) -> usize {
            self.threads.len()
        }

        /// Run `own` on this thread while free helpers run `job`; return once
        /// `own` has returned and every helper that started `job` has
        /// finished it. A helper that has not started by then never does, so
        /// `job` must leave nothing undone that `own` would not do (both
        /// drain one queue of rows). While another thread's call holds the
        /// crew, `own` runs alone. `own` reports each of its rows to the
        /// [`Wake`] it is given.
        pub fn run(&self, job: Job<'_>, own: impl FnOnce(&Wake<'_>)) {
            let sh = &*self.shared;
            let mut wake = Wake {
                crew: self,
                pending: Cell::new(false),
                start: None,
                done: Cell::new(0),
            };
            if sh.in_use.swap(true, Ordering::Acquire) {
                own(&wake);
                return;
            }
            let last = sh.last_end.load(Ordering::Relaxed);
            let close =
                last == u64::MAX || now_ns().saturating_sub(last) < LINGER.as_nanos() as u64;
            sh.linger.store(close, Ordering::Relaxed);
            sh.job.store(
                std::ptr::from_ref(&job).cast_mut().cast(),
                Ordering::Relaxed,
            );
            sh.finished.store(0, Ordering::Relaxed);
            let next = ((sh.state.load(Ordering::Relaxed) >> 32) + 1) & 0xffff_ffff;
            // Release: a helper that joins (acquiring `state`) sees `job`.
            sh.state.store(next << 32 | OPEN, Ordering::Release);
            // Calls coming close together pay one wake for a run of calls;
            // a call on its own wakes parked helpers only if worth it.
            if close || sh.parked.load(Ordering::Acquire) == 0 {
                wake.now();
            } else {
                wake = Wake {
                    pending: Cell::new(true),
                    start: Some(Instant::now()),
                    ..wake
                };
            }
            // Closes the call and waits for the helpers that joined, also
            // if `own` unwinds: `job` lives on this frame.
            let _close = Close(sh);
            own(&wake);
        }

        /// Wake every helper (an atomic swap for one that is not parked).
        fn wake_all(&self) {
            let sh = &*self.shared;
            let timed = (sh.parked.load(Ordering::Acquire) > 0).then(Instant::now);
            for t in &self.threads {
                t.unpark();
            }
            if let Some(t) = timed {
                let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let old = sh.wake_ns.load(Ordering::Relaxed);
                let avg = if old == 0 { ns } else { old - old / 4 + ns / 4 };
                sh.wake_ns.store(avg.max(1), Ordering::Relaxed);
            }
        }
    }

    /// A call's decision to wake parked helpers, on the calling thread.
    pub struct Wake<'a> {
        crew: &'a Crew,
        /// The helpers are parked and not yet woken for this call.
        pending: Cell<bool>,
        /// When the call started, if pending.
        start: Option<Instant>,
        /// Rows the caller has done, while pending.
        done: Cell<u64>,
    }

    impl Wake<'_> {
        /// Wake the helpers now.
        fn now(&self) {
            self.pending.set(false);
            self.crew.wake_all();
        }

        /// After each of the caller's rows: with `left()` rows not yet
        /// taken, wake the parked helpers if those rows, at this call's
        /// pace so far, come to more than [`WAKE_WORTH`] and more than
        /// twice what a wake was measured to cost (the caller is blocked
        /// for the wake, then shares the rest).
        pub fn row_done(&self, left: impl FnOnce() -> usize) {
            if !self.pending.get() {
                return;
            }
            let done = self.done.get() + 1;
            self.done.set(done);
            let Some(start) = self.start else { return };
            let spent = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if spent < WAKE_AFTER.as_nanos() as u64 {
                return;
            }
            let ahead = (left() as u64).saturating_mul(spent / done);
            let cost = 2 * self.crew.shared.wake_ns.load(Ordering::Relaxed);
            if ahead > cost.max(WAKE_WORTH.as_nanos() as u64) {
                self.now();
            }
        }
    }

    /// Closes a call when dropped (see [`Crew::run`]).
    struct Close<'a>(&'a Shared);

    impl Drop for Close<'_> {
        fn drop(&mut self) {
            let sh = self.0;
            // No helper joins after this; those that did are counted.
            let joined = (sh.state.fetch_and(!OPEN, Ordering::AcqRel) & JOINED) as usize;
            let mut spins = 0u32;
            while sh.finished.load(Ordering::Acquire) < joined {
                spins += 1;
                if spins.is_multiple_of(64) {
                    std::thread::yield_now(); // a helper preempted on this CPU
                } else {
                    std::hint::spin_loop();
                }
            }
            sh.last_end.store(now_ns(), Ordering::Relaxed);
            sh.in_use.store(false, Ordering::Release);
        }
    }

    /// A helper thread: join each open call, run its job, then wait for
    /// the next (spinning a while if calls come close, else parked).
    #[allow(unsafe_code)]
    fn help(sh: &Shared) {
        let mut seen = 0u64;
        let mut idle_since = Instant::now();
        loop {
            let mut s = sh.state.load(Ordering::Acquire);
            if s >> 32 == seen {
                if sh.linger.load(Ordering::Relaxed) && idle_since.elapsed() < LINGER {
                    // Poll often (a call's start seen within ~0.1 us, not
                    // after a yield: joining 1.2 us late was 6% of a call),
                    // then give way to a thread the OS put on this CPU (the
                    // caller's Python thread, between its calls).
                    let called = (0..256).any(|_| {
                        std::hint::spin_loop();
                        sh.state.load(Ordering::Relaxed) >> 32 != seen
                    });
                    if !called {
                        std::thread::yield_now();
                    }
                } else {
                    sh.parked.fetch_add(1, Ordering::AcqRel);
                    std::thread::park(); // `run` unparks
                    sh.parked.fetch_sub(1, Ordering::AcqRel);
                }
                continue;
            }
            seen = s >> 32;
            let joined = loop {
                if s >> 32 != seen || s & OPEN == 0 {
                    break false;
                }
                match sh
                    .state
                    .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => break true,
                    Err(now) => s = now,
                }
            };
            if joined {
                // SAFETY: `job` points at the `Job` of the call this helper
                // joined, on the frame of `Crew::run`, which does not return
                // (see `Close`) until `finished` counts this helper, after its
                // last use of the job; joining needed the call open, and the
                // Acquire of the join sees the caller's store of `job`.
                let job = unsafe { *sh.job.load(Ordering::Relaxed).cast::<Job<'_>>() };
                // A fill catches its own panics; anything else must still
                // count this helper finished, or the caller waits forever.
                let _ = catch_unwind(AssertUnwindSafe(job));
                sh.finished.fetch_add(1, Ordering::Release);
            }
            idle_since = Instant::now();
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch_fill_next_token_bitmask, m)?)?;
    m.add_function(wrap_pyfunction!(batch_accept_token, m)?)
}
