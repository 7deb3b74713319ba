//! `GrammarMatcher`: one generation's state.

use crate::buffers::MaskRow;
use crate::compiler::{PyCompiledGrammar, Text};
use crate::errors::{panic_text, to_py};
use corral_core::mask::words_for;
use corral_core::Matcher;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The token id `obj` stands for: a Python `int` or any integer with
/// `__index__` (a numpy integer, a one-element integer torch tensor), as
/// samplers hand them out; `None` for an int that is no token id (negative,
/// huge), which no matcher accepts. `bool` and non-integers are a
/// `TypeError` naming `what()`.
pub(crate) fn token_id_of(
    obj: &Bound<'_, PyAny>,
    what: impl FnOnce() -> String,
) -> PyResult<Option<u32>> {
    if let Ok(int) = obj.cast::<PyInt>() {
        if !obj.is_instance_of::<PyBool>() {
            return Ok(int.extract::<u32>().ok());
        }
    } else if obj.hasattr(pyo3::intern!(obj.py(), "__index__"))? {
        let int = obj.call_method0(pyo3::intern!(obj.py(), "__index__"))?;
        if let Ok(int) = int.cast::<PyInt>() {
            return Ok(int.extract::<u32>().ok());
        }
    }
    let ty = obj.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "{} must be an int, not {ty}",
        what()
    )))
}

/// See `_core.pyi`.
#[pyclass(name = "GrammarMatcher", module = "corral")]
pub(crate) struct PyGrammarMatcher {
    inner: Matcher,
    /// `words_for` the vocabulary, kept here: a batch call checks every
    /// row's width before filling, and reaching the vocabulary through the
    /// grammar was a third of that serial set-up.
    words: usize,
}

impl PyGrammarMatcher {
    /// Run a hot-path call; a panic puts the matcher into its sticky error state.
    fn hot<T>(&mut self, fallback: T, f: impl FnOnce(&mut Matcher) -> T) -> T {
        match catch_unwind(AssertUnwindSafe(|| f(&mut self.inner))) {
            Ok(v) => v,
            Err(p) => {
                self.inner
                    .set_error(format!("internal error: {}", panic_text(&p)));
                fallback
            }
        }
    }

    /// The number of int32 words a mask row needs for this matcher's vocabulary.
    pub(crate) fn mask_words(&self) -> usize {
        self.words
    }

    /// Accept token `id` (`None`: an int that is no token id, refused); call
    /// without the GIL.
    pub(crate) fn accept_id(&mut self, id: Option<u32>) -> bool {
        id.is_some_and(|id| self.hot(false, |m| m.accept_token(id)))
    }

    /// Fill `row`, releasing the GIL unless the mask is copy work only (a
    /// sub-microsecond fill, where releasing would cost a third of it).
    pub(crate) fn fill_row(&mut self, py: Python<'_>, row: &mut MaskRow) -> bool {
        if self.inner.mask_is_cached() {
            return self.fill_into(row.as_mut_slice());
        }
        py.detach(|| self.fill_into(row.as_mut_slice()))
    }

    /// Fill `slice` with the next-token mask (call without the GIL); a panic
    /// zeroes the row and puts the matcher into its sticky error state.
    pub(crate) fn fill_into(&mut self, slice: &mut [u32]) -> bool {
        match catch_unwind(AssertUnwindSafe(|| self.inner.fill_mask(slice))) {
            Ok(v) => v,
            Err(p) => {
                slice.fill(0);
                self.inner
                    .set_error(format!("internal error: {}", panic_text(&p)));
                true
            }
        }
    }
}

#[pymethods]
impl PyGrammarMatcher {
    #[new]
    #[pyo3(
        signature = (compiled_grammar, *, override_stop_tokens=None, max_rollback_tokens=-1),
        text_signature = "(compiled_grammar, *, override_stop_tokens=None, max_rollback_tokens=-1)"
    )]
    fn new(
        py: Python<'_>,
        compiled_grammar: &PyCompiledGrammar,
        override_stop_tokens: Option<Vec<u32>>,
        max_rollback_tokens: i64,
    ) -> PyResult<Self> {
        let mut m = Matcher::new(compiled_grammar.inner.clone());
        if let Some(ids) = override_stop_tokens {
            m.set_stop_tokens(ids).map_err(|e| to_py(py, &e))?;
        }
        m.set_max_rollback(usize::try_from(max_rollback_tokens).ok());
        let words = words_for(m.grammar().vocab().vocab_size());
        Ok(PyGrammarMatcher { inner: m, words })
    }

    fn accept_token(&mut self, token_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = token_id_of(token_id, || "token_id".to_owned())?;
        Ok(self.accept_id(id))
    }

    fn accept_string(&mut self, data: Text) -> bool {
        let bytes = data.into_bytes();
        self.hot(false, |m| m.accept_bytes(&bytes))
    }

    #[pyo3(signature = (bitmask, index=0))]
    fn fill_next_token_bitmask(
        &mut self,
        py: Python<'_>,
        bitmask: &Bound<'_, PyAny>,
        index: usize,
    ) -> PyResult<bool> {
        let mut row = MaskRow::new(bitmask, index, self.mask_words())?;
        Ok(self.fill_row(py, &mut row))
    }

    /// `fill_next_token_bitmask` into `num_words` int32 words at `address`
    /// (e.g. `tensor.data_ptr()` of a contiguous CPU int32 row). No buffer
    /// checks: the caller vouches for the memory (a wrong address is undefined
    /// behaviour); for inference loops that keep one pinned mask buffer.
    fn unsafe_fill_next_token_bitmask_ptr(
        &mut self,
        py: Python<'_>,
        address: usize,
        num_words: usize,
    ) -> PyResult<bool> {
        let mut row = MaskRow::from_address(address, num_words, self.mask_words())?;
        Ok(self.fill_row(py, &mut row))
    }

    fn rollback(&mut self, num_tokens: i64) -> PyResult<()> {
        let n = usize::try_from(num_tokens)
            .map_err(|_| PyValueError::new_err(format!("cannot roll back {num_tokens} tokens")))?;
        self.inner
            .rollback(n)
            .map_err(|e| PyValueError::new_err(e.message().to_owned()))
    }

    fn fork(&self) -> Self {
        PyGrammarMatcher {
            inner: self.inner.clone(),
            words: self.words,
        }
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }

    fn can_terminate(&self) -> bool {
        self.inner.can_terminate()
    }

    fn error(&self) -> Option<String> {
        self.inner.error().map(str::to_owned)
    }

    #[getter]
    fn compiled_grammar(&self) -> PyCompiledGrammar {
        PyCompiledGrammar {
            inner: self.inner.grammar().clone(),
        }
    }

    #[getter]
    fn num_accepted_tokens(&self) -> usize {
        self.inner.num_accepted_tokens()
    }

    /// Testing hook: panic inside the guarded hot path, to show the panic is
    /// caught and the matcher enters its sticky error state.
    fn _debug_panic(&mut self) -> bool {
        self.hot(false, |_| -> bool {
            panic!("deliberate panic for testing")
        })
    }

    #[getter]
    fn stop_token_ids(&self) -> Vec<u32> {
        self.inner.stop_ids().to_vec()
    }

    fn memory_usage(&self) -> usize {
        self.inner.heap_bytes()
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGrammarMatcher>()
}
