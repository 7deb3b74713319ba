//! `TokenizerInfo`: a vocabulary shared by every grammar compiled for it.

use crate::errors::{guard, to_py};
use corral_core::vocab::gguf::{with_path, GgufTokenizer};
use corral_core::vocab::VocabType;
use corral_core::{Error, ErrorKind, Vocabulary};
use pyo3::exceptions::{PyIsADirectoryError, PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyType};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// See `_core.pyi`.
#[pyclass(name = "TokenizerInfo", module = "corral", frozen)]
pub(crate) struct PyTokenizerInfo {
    pub(crate) inner: Arc<Vocabulary>,
}

/// An `OSError` (of the subclass matching the errno) that names `path`.
fn os_error(e: &std::io::Error, path: &Path) -> PyErr {
    let name = path.display().to_string();
    match e.raw_os_error() {
        // OSError(errno, strerror, filename) picks the subclass (FileNotFoundError, ...).
        Some(code) => {
            let text = e.to_string();
            let suffix = format!(" (os error {code})");
            let text = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
            PyOSError::new_err((code, text, name))
        }
        None => PyOSError::new_err(format!("{name}: {e}")),
    }
}

/// Open `path` for reading; a directory is an `IsADirectoryError`.
fn open(path: &Path) -> PyResult<(File, u64)> {
    let file = File::open(path).map_err(|e| os_error(&e, path))?;
    let meta = file.metadata().map_err(|e| os_error(&e, path))?;
    if meta.is_dir() {
        return Err(PyIsADirectoryError::new_err((
            21,
            "Is a directory",
            path.display().to_string(),
        )));
    }
    Ok((file, meta.len()))
}

fn wrap(py: Python<'_>, v: Result<Vocabulary, Error>) -> PyResult<PyTokenizerInfo> {
    v.map(|v| PyTokenizerInfo { inner: Arc::new(v) })
        .map_err(|e| to_py(py, &e))
}

/// Build a `TokenizerInfo` from what a `corral._hf` helper returned: a
/// `TokenizerInfo`, or keyword arguments for `from_pieces` (key `pieces`),
/// `from_vocab` (key `tokens`) or `from_gguf` (key `path`).
fn from_helper_result(py: Python<'_>, what: &str, result: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    if result.is_instance_of::<PyTokenizerInfo>() {
        return Ok(result.unbind());
    }
    let kwargs = result.cast_into::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "corral._hf.{what} must return a dict or a TokenizerInfo"
        ))
    })?;
    let ctor = if kwargs.contains("pieces")? {
        "from_pieces"
    } else if kwargs.contains("tokens")? {
        "from_vocab"
    } else if kwargs.contains("path")? {
        "from_gguf"
    } else {
        return Err(PyTypeError::new_err(format!(
            "corral._hf.{what} returned a dict without `pieces`, `tokens` or `path`"
        )));
    };
    let cls = py.get_type::<PyTokenizerInfo>();
    Ok(cls.getattr(ctor)?.call((), Some(&kwargs))?.unbind())
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
        wrap(py, v)
    }

    #[staticmethod]
    #[pyo3(signature = (pieces, *, vocab_type, eos_token_ids, special_token_ids=Vec::new(), vocab_size=None, byte_tokens=None))]
    fn from_pieces(
        py: Python<'_>,
        pieces: Vec<Option<String>>,
        vocab_type: &str,
        eos_token_ids: Vec<u32>,
        special_token_ids: Vec<u32>,
        vocab_size: Option<usize>,
        byte_tokens: Option<HashMap<u32, i64>>,
    ) -> PyResult<Self> {
        let vt: VocabType = vocab_type.parse().map_err(|e| to_py(py, &e))?;
        let mut bytes = Vec::new();
        for (id, b) in byte_tokens.unwrap_or_default() {
            let b = u8::try_from(b).map_err(|_| {
                let msg = format!("byte token {id} has value {b}, which is not a byte (0..=255)");
                to_py(py, &Error::new(ErrorKind::Vocab, msg))
            })?;
            bytes.push((id, b));
        }
        bytes.sort_unstable();
        let v = py.detach(|| {
            Vocabulary::from_pieces(
                &pieces,
                vt,
                &bytes,
                vocab_size,
                eos_token_ids,
                special_token_ids,
            )
        });
        wrap(py, v)
    }

    #[staticmethod]
    #[pyo3(signature = (path, *, vocab_size=None, eos_token_ids=None))]
    fn from_gguf(
        py: Python<'_>,
        path: PathBuf,
        vocab_size: Option<usize>,
        eos_token_ids: Option<Vec<u32>>,
    ) -> PyResult<Self> {
        let (file, len) = open(&path)?;
        let v = py.detach(|| {
            guard("from_gguf", || {
                GgufTokenizer::from_reader(BufReader::with_capacity(1 << 20, file), len)
                    .map_err(|e| with_path(&e, &path))
                    .and_then(|t| t.into_vocabulary(vocab_size, eos_token_ids))
            })
        })?;
        wrap(py, v)
    }

    #[staticmethod]
    #[pyo3(signature = (path_or_bytes, *, special_tokens, eos_token_ids, vocab_size=None))]
    fn from_tiktoken(
        py: Python<'_>,
        path_or_bytes: &Bound<'_, PyAny>,
        special_tokens: HashMap<String, u32>,
        eos_token_ids: Vec<u32>,
        vocab_size: Option<usize>,
    ) -> PyResult<Self> {
        let data: Vec<u8> = if let Ok(b) = path_or_bytes.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else {
            let path: PathBuf = path_or_bytes.extract().map_err(|_| {
                PyTypeError::new_err("path_or_bytes must be a path (str or os.PathLike) or bytes")
            })?;
            let (_, _) = open(&path)?;
            std::fs::read(&path).map_err(|e| os_error(&e, &path))?
        };
        let mut specials: Vec<(String, u32)> = special_tokens.into_iter().collect();
        specials.sort_by_key(|(_, id)| *id);
        let v =
            py.detach(|| Vocabulary::from_tiktoken(&data, &specials, eos_token_ids, vocab_size));
        wrap(py, v)
    }

    #[staticmethod]
    #[pyo3(signature = (tokenizer, *, vocab_size=None, eos_token_ids=None))]
    fn from_huggingface(
        py: Python<'_>,
        tokenizer: &Bound<'_, PyAny>,
        vocab_size: Option<usize>,
        eos_token_ids: Option<Vec<u32>>,
    ) -> PyResult<Py<PyAny>> {
        let args = py.import("corral._hf")?.call_method1(
            "tokenizer_info_args",
            (tokenizer, vocab_size, eos_token_ids),
        )?;
        from_helper_result(py, "tokenizer_info_args", args)
    }

    #[staticmethod]
    #[pyo3(signature = (llama, *, vocab_size=None))]
    fn from_llama_cpp(
        py: Python<'_>,
        llama: &Bound<'_, PyAny>,
        vocab_size: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let args = py
            .import("corral._hf")?
            .call_method1("llama_cpp_args", (llama, vocab_size))?;
        from_helper_result(py, "llama_cpp_args", args)
    }

    #[classmethod]
    fn _from_state(cls: &Bound<'_, PyType>, state: &[u8]) -> PyResult<Self> {
        let py = cls.py();
        let v = py.detach(|| Vocabulary::from_bytes(state));
        wrap(py, v)
    }

    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let ctor = py.get_type::<PyTokenizerInfo>().getattr("_from_state")?;
        Ok((ctor, (PyBytes::new(py, &self.inner.to_bytes()),)))
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
    fn vocab_type(&self) -> &'static str {
        self.inner.vocab_type().as_str()
    }

    #[getter]
    fn memory_bytes(&self) -> usize {
        self.inner.heap_bytes()
    }

    fn memory_usage(&self) -> usize {
        self.inner.heap_bytes()
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
            "TokenizerInfo(vocab_type={:?}, vocab_size={}, tokenizer_size={}, stop_token_ids={:?})",
            self.inner.vocab_type().as_str(),
            self.inner.vocab_size(),
            self.inner.tokenizer_size(),
            self.inner.stop_ids()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenizerInfo>()
}
