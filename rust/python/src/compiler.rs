//! `GrammarCompiler` and `CompiledGrammar`.

use crate::errors::{guard, to_py};
use crate::vocab::PyTokenizerInfo;
use corral_core::{CompiledGrammar, Compiler};
use pyo3::prelude::*;
use std::sync::Arc;

/// See `_core.pyi`.
#[pyclass(name = "GrammarCompiler", module = "corral", frozen)]
pub(crate) struct PyGrammarCompiler {
    inner: Compiler,
}

/// Grammar text as given: `str` or `bytes`.
#[derive(FromPyObject)]
pub(crate) enum Text {
    Str(String),
    Bytes(Vec<u8>),
}

impl Text {
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        match self {
            Text::Str(s) => s.into_bytes(),
            Text::Bytes(b) => b,
        }
    }
}

#[pymethods]
impl PyGrammarCompiler {
    #[new]
    fn new(tokenizer_info: &PyTokenizerInfo) -> Self {
        PyGrammarCompiler {
            inner: Compiler::new(tokenizer_info.inner.clone()),
        }
    }

    #[getter]
    fn tokenizer_info(&self) -> PyTokenizerInfo {
        PyTokenizerInfo {
            inner: self.inner.vocab().clone(),
        }
    }

    #[pyo3(signature = (grammar, root="root"))]
    fn compile_grammar(
        &self,
        py: Python<'_>,
        grammar: Text,
        root: &str,
    ) -> PyResult<PyCompiledGrammar> {
        let src = grammar.into_bytes();
        let result =
            py.detach(|| guard("compile_grammar", || self.inner.compile_gbnf(&src, root)))?;
        result
            .map(|g| PyCompiledGrammar { inner: g })
            .map_err(|e| to_py(py, &e))
    }

    fn compile_regex(&self, py: Python<'_>, pattern: &str) -> PyResult<PyCompiledGrammar> {
        let result = py.detach(|| guard("compile_regex", || self.inner.compile_regex(pattern)))?;
        result
            .map(|g| PyCompiledGrammar { inner: g })
            .map_err(|e| to_py(py, &e))
    }
}

/// See `_core.pyi`.
#[pyclass(name = "CompiledGrammar", module = "corral", frozen)]
pub(crate) struct PyCompiledGrammar {
    pub(crate) inner: Arc<CompiledGrammar>,
}

#[pymethods]
impl PyCompiledGrammar {
    #[getter]
    fn tokenizer_info(&self) -> PyTokenizerInfo {
        PyTokenizerInfo {
            inner: self.inner.vocab().clone(),
        }
    }

    #[getter]
    fn num_rules(&self) -> usize {
        self.inner.num_rules()
    }

    #[getter]
    fn num_states(&self) -> usize {
        self.inner.num_states()
    }

    #[getter]
    fn root(&self) -> &str {
        self.inner.root_name()
    }

    fn __repr__(&self) -> String {
        format!(
            "CompiledGrammar(root={:?}, num_rules={}, num_states={})",
            self.inner.root_name(),
            self.inner.num_rules(),
            self.inner.num_states()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGrammarCompiler>()?;
    m.add_class::<PyCompiledGrammar>()
}
