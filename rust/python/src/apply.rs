//! `_apply_bitmask_rows`: the CPU side of `apply_token_bitmask_inplace`
//! for numpy arrays (and CPU tensors, through their numpy view). One pass
//! over each row's words, writing -inf under cleared bits, rows shared out
//! as for batch fills. numpy's unpack-and-select makes five passes over the
//! row: 23.5 us for one Qwen2.5 row, 13.1 ms for 64, where this takes 6.7 us
//! and 0.8 ms (benchmarks.md, `benches/python/apply_cpu.py`).

use crate::batch::{crew_for, each_row};
use crate::buffers::{masked_rows, LogitsBuffer, MaskBuffer};
use pyo3::buffer::Element;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// Set `logits[r, t]` to -inf for every row `r` of `rows` (all rows if
/// None) and every column `t` whose bit in row `r` of `bitmask` is clear or
/// that is at or past `vocab_size`. `logits`: 2-D float32, float64, or
/// float16 viewed as uint16, rows contiguous; `bitmask`: int32, C-contiguous.
/// The Python wrapper checks shapes and indices first; these checks keep
/// memory safe for any call.
#[pyfunction]
#[pyo3(signature = (logits, bitmask, rows, vocab_size, num_threads=None))]
fn _apply_bitmask_rows(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    bitmask: &Bound<'_, PyAny>,
    rows: Option<Vec<usize>>,
    vocab_size: usize,
    num_threads: Option<usize>,
) -> PyResult<()> {
    let words = MaskBuffer::read(bitmask)?;
    let call = Call {
        words: &words,
        rows: rows.as_deref(),
        vocab_size,
        num_threads,
    };
    if call.apply::<f32>(py, logits)?
        || call.apply::<f64>(py, logits)?
        || call.apply::<u16>(py, logits)?
    {
        return Ok(());
    }
    Err(PyTypeError::new_err(
        "logits must be float32, float64, or float16 viewed as uint16",
    ))
}

/// A logit type the kernel writes, with its -inf.
trait Logit: Element + Copy + Send + Sync {
    const NEG_INF: Self;
}

impl Logit for f32 {
    const NEG_INF: f32 = f32::NEG_INFINITY;
}

impl Logit for f64 {
    const NEG_INF: f64 = f64::NEG_INFINITY;
}

/// IEEE binary16 as its bits: sign, all-ones exponent, zero mantissa.
impl Logit for u16 {
    const NEG_INF: u16 = 0xFC00;
}

/// The arguments of one call, whatever the logits' type.
struct Call<'a> {
    words: &'a MaskBuffer,
    rows: Option<&'a [usize]>,
    vocab_size: usize,
    num_threads: Option<usize>,
}

impl Call<'_> {
    /// Mask `logits` if its elements are `T`s (true), else leave it (false).
    fn apply<T: Logit>(&self, py: Python<'_>, logits: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Some(logits) = LogitsBuffer::<T>::new(logits)? else {
            return Ok(false);
        };
        let (n, words) = (self.vocab_size, self.words);
        if n > logits.width() || n.div_ceil(32) > words.width() {
            return Err(PyValueError::new_err(format!(
                "vocab_size {n} exceeds the logits width {} or the bitmask's {} words",
                logits.width(),
                words.width()
            )));
        }
        let mut rows = self
            .rows
            .map_or_else(|| logits.all_rows(), <[usize]>::to_vec);
        // Masking a row twice changes nothing; once keeps each row one thread's.
        rows.sort_unstable();
        rows.dedup();
        let mut work = masked_rows(&logits, words, &rows)?;
        let crew = crew_for(self.num_threads, work.len())?;
        py.detach(|| {
            each_row(crew.as_deref(), &mut work, |row| {
                let (logits, words) = row.parts();
                mask_row(logits, words, n, T::NEG_INF);
                true
            })
        });
        Ok(true)
    }
}

/// -inf over `logits[t]` where bit `t` of `words` is clear or `t >= n`.
fn mask_row<T: Copy>(logits: &mut [T], words: &[u32], n: usize, neg: T) {
    let (masked, past) = logits.split_at_mut(n);
    past.fill(neg);
    for (chunk, &w) in masked.chunks_mut(32).zip(words) {
        match w {
            u32::MAX => {}
            0 => chunk.fill(neg),
            // A select, not a branch: in a mixed word the bits are as good
            // as random, and a branch per logit mispredicted half the time
            // (a half-allowed Qwen2.5 row took ~0.4 ms).
            _ => {
                for (j, x) in chunk.iter_mut().enumerate() {
                    *x = if w >> j & 1 == 0 { neg } else { *x };
                }
            }
        }
    }
}

/// Registered without entering `__all__`: `corral.apply_token_bitmask_inplace`
/// is the public entry point.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.setattr(
        "_apply_bitmask_rows",
        wrap_pyfunction!(_apply_bitmask_rows, m)?,
    )
}
