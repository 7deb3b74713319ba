//! `GrammarCompiler` and `CompiledGrammar`.

use crate::errors::{guard, to_py};
use crate::vocab::PyTokenizerInfo;
use corral_core::grammar::schema::{schema_text_to_grammar, PropertyOrder, SchemaOptions};
use corral_core::{CompiledGrammar, Compiler};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
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

    #[pyo3(signature = (schema, *, any_whitespace=true, indent=None, separators=None,
        strict_mode=true, property_order="schema", max_whitespace=64, lenient=false))]
    #[allow(clippy::too_many_arguments)]
    fn compile_json_schema(
        &self,
        py: Python<'_>,
        schema: &Bound<'_, PyAny>,
        any_whitespace: bool,
        indent: Option<u32>,
        separators: Option<(String, String)>,
        strict_mode: bool,
        property_order: &str,
        max_whitespace: u32,
        lenient: bool,
    ) -> PyResult<PyCompiledGrammar> {
        let text = schema_text(schema)?;
        let opts = schema_options(
            any_whitespace,
            indent,
            separators,
            strict_mode,
            property_order,
            max_whitespace,
            lenient,
        )?;
        let result = py.detach(|| {
            guard("compile_json_schema", || {
                self.inner.compile_json_schema(&text, &opts)
            })
        })?;
        let (g, report) = result.map_err(|e| to_py(py, &e))?;
        if !report.ignored.is_empty() {
            let list: Vec<String> = report
                .ignored
                .iter()
                .map(|(p, k)| format!("{k} at {}", if p.is_empty() { "/" } else { p }))
                .collect();
            let msg = format!(
                "schema keywords not enforced (lenient=True): {}",
                list.join(", ")
            );
            let cat = py.import("corral")?.getattr("SchemaCoverageWarning")?;
            PyErr::warn(py, &cat, &std::ffi::CString::new(msg)?, 1)?;
        }
        Ok(PyCompiledGrammar { inner: g })
    }

    #[pyo3(signature = (*, any_whitespace=true, indent=None, separators=None, max_whitespace=64))]
    fn compile_builtin_json_grammar(
        &self,
        py: Python<'_>,
        any_whitespace: bool,
        indent: Option<u32>,
        separators: Option<(String, String)>,
        max_whitespace: u32,
    ) -> PyResult<PyCompiledGrammar> {
        let opts = schema_options(
            any_whitespace,
            indent,
            separators,
            true,
            "schema",
            max_whitespace,
            false,
        )?;
        let result = py.detach(|| {
            guard("compile_builtin_json_grammar", || {
                self.inner.compile_builtin_json(&opts)
            })
        })?;
        result
            .map(|g| PyCompiledGrammar { inner: g })
            .map_err(|e| to_py(py, &e))
    }

    #[pyo3(signature = (schema, *, strict_mode=true, property_order="schema"))]
    #[allow(clippy::type_complexity)]
    fn json_schema_coverage(
        &self,
        py: Python<'_>,
        schema: &Bound<'_, PyAny>,
        strict_mode: bool,
        property_order: &str,
    ) -> PyResult<(Vec<(String, String)>, Vec<(String, String)>)> {
        let text = schema_text(schema)?;
        let opts = schema_options(true, None, None, strict_mode, property_order, 64, true)?;
        let result = py.detach(|| {
            guard("json_schema_coverage", || {
                schema_text_to_grammar(&text, &opts)
            })
        })?;
        let g = result.map_err(|e| to_py(py, &e))?;
        Ok((g.enforced, g.ignored))
    }
}

/// JSON text of a schema given as `str`, `dict` (or other JSON-serialisable
/// value), or a pydantic model class (`model_json_schema()`).
fn schema_text(schema: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = schema.extract::<String>() {
        return Ok(s);
    }
    let py = schema.py();
    let value = if schema.is_instance_of::<PyType>() && schema.hasattr("model_json_schema")? {
        schema.call_method0("model_json_schema")?
    } else if schema.is_instance_of::<PyDict>() || schema.extract::<bool>().is_ok() {
        schema.clone()
    } else {
        return Err(PyTypeError::new_err(
            "schema must be a dict, a JSON string, or a pydantic model class",
        ));
    };
    py.import("json")?
        .call_method1("dumps", (value,))?
        .extract()
}

fn schema_options(
    any_whitespace: bool,
    indent: Option<u32>,
    separators: Option<(String, String)>,
    strict_mode: bool,
    property_order: &str,
    max_whitespace: u32,
    lenient: bool,
) -> PyResult<SchemaOptions> {
    let property_order = match property_order {
        "schema" => PropertyOrder::Schema,
        "any" => PropertyOrder::Any,
        other => {
            return Err(PyValueError::new_err(format!(
                "property_order must be \"schema\" or \"any\", not {other:?}"
            )))
        }
    };
    Ok(SchemaOptions {
        any_whitespace,
        indent,
        separators,
        strict_mode,
        property_order,
        max_whitespace,
        lenient,
    })
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

    fn memory_usage(&self) -> usize {
        self.inner.heap_bytes()
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
