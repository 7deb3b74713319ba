//! `TokenizerInfo`: a vocabulary shared by every grammar compiled for it.

use crate::errors::to_py;
use corral_core::Vocabulary;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;

/// See `_core.pyi`.
#[pyclass(name = "TokenizerInfo", module = "corral", frozen)]
pub(crate) struct PyTokenizerInfo {
    pub(crate) inner: Arc<Vocabulary>,
}

#[pymethods]
impl PyTokenizerInfo {
    #[staticmethod]
    #[pyo3(signature = (tokens, *, eos_token_ids, vocab_size=None, special_token_ids=Vec::new()))]
    fn from_vocab(
        py: Python<'_>,
        tokens: Vec<Vec<u8>>,
        eos_token_ids: Vec<u32>,
        vocab_size: Option<usize>,
        special_token_ids: Vec<u32>,
    ) -> PyResult<Self> {
        let v = py.detach(|| Vocabulary::new(tokens, vocab_size, eos_token_ids, special_token_ids));
        v.map(|v| PyTokenizerInfo { inner: Arc::new(v) })
            .map_err(|e| to_py(py, &e))
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    #[getter]
    fn tokenizer_size(&self) -> usize {
        self.inner.tokenizer_size()
    }

    #[getter]
    fn stop_token_ids(&self) -> Vec<u32> {
        self.inner.stop_ids().to_vec()
    }

    #[getter]
    fn special_token_ids(&self) -> Vec<u32> {
        self.inner.special_ids().to_vec()
    }

    #[getter]
    fn decoded_vocab<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        (0..self.inner.tokenizer_size() as u32)
            .map(|i| PyBytes::new(py, self.inner.token_bytes(i)))
            .collect()
    }

    fn token_bytes<'py>(&self, py: Python<'py>, token_id: usize) -> PyResult<Bound<'py, PyBytes>> {
        if token_id >= self.inner.tokenizer_size() {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "token id {token_id} is out of range (the tokenizer has {} tokens)",
                self.inner.tokenizer_size()
            )));
        }
        Ok(PyBytes::new(py, self.inner.token_bytes(token_id as u32)))
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenizerInfo(vocab_size={}, tokenizer_size={}, stop_token_ids={:?})",
            self.inner.vocab_size(),
            self.inner.tokenizer_size(),
            self.inner.stop_ids()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenizerInfo>()
}
