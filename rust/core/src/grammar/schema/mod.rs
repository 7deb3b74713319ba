//! JSON Schema front-end: leaf modules for exact numeric ranges and string formats.
pub mod formats;
pub mod numbers;
