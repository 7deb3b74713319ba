//! JSON Schema `format` as exact regular languages.
