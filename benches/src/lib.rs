//! Benchmarks for corral-core; see `benches/`.
