//! `latentatlas._core`: thin PyO3 glue over latentatlas-core (registration only).
//!
//! Each function borrows the NumPy arrays without copying, runs one generic core call through
//! [`convert::run`] (GIL released, thread pool, error mapping) and hands the result back as NumPy
//! arrays. Arrays are positional-only, options keyword-only. Validation that needs Python types
//! (dtype conversion, sparse formats, messages naming the user's arguments) lives in the package.
//! One file per core area: `spectral` (gram, energy), `topk` (the primitive, kNN), `sae`,
//! `sparse`, `search`, `lambda` (λ-aware search, taumode λ), `adam`, `tomato`, `simd`; shared conversions in `convert`.

use latentatlas_core as core;
use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;

/// Rust allocations of the extension (not Python's, not NumPy's) reuse freed memory (see Cargo.toml).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod adam;
mod convert;
mod lambda;
mod sae;
mod search;
mod simd;
mod sparse;
mod spectral;
mod tomato;
mod topk;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("GRAM_CHUNK_ROWS", core::GRAM_CHUNK_ROWS)?;
    m.add("SIMD_ENV", core::simd::SIMD_ENV)?;
    m.add("MAX_THREADS", core::max_threads())?;
    m.add_function(wrap_pyfunction!(spectral::gram, m)?)?;
    m.add_function(wrap_pyfunction!(spectral::feature_topk, m)?)?;
    m.add_function(wrap_pyfunction!(spectral::rayleigh_energy, m)?)?;
    m.add_function(wrap_pyfunction!(topk::gemm_topk, m)?)?;
    m.add_function(wrap_pyfunction!(topk::knn_sqdist, m)?)?;
    m.add_function(wrap_pyfunction!(tomato::tomato_forest, m)?)?;
    m.add_function(wrap_pyfunction!(sae::sae_encode, m)?)?;
    m.add_function(wrap_pyfunction!(sae::sae_encode_threshold, m)?)?;
    m.add_function(wrap_pyfunction!(sparse::sparse_decode, m)?)?;
    m.add_function(wrap_pyfunction!(sparse::sparse_gather_dot, m)?)?;
    m.add_function(wrap_pyfunction!(sparse::sparse_scatter_rows, m)?)?;
    m.add_function(wrap_pyfunction!(search::latent_search, m)?)?;
    m.add_function(wrap_pyfunction!(lambda::lambda_topk, m)?)?;
    m.add_function(wrap_pyfunction!(lambda::taumode_raw, m)?)?;
    m.add_function(wrap_pyfunction!(adam::adam_step, m)?)?;
    m.add_function(wrap_pyfunction!(simd::simd_path, m)?)?;
    m.add_function(wrap_pyfunction!(simd::simd_warning, m)?)?;
    m.add_function(wrap_pyfunction!(simd::build_profile, m)?)?;
    m.add_function(wrap_pyfunction!(simd::rayon_threads, m)?)?;
    // A bad LATENTATLAS_SIMD never fails: the kernels fall back to auto, and the import says so.
    if let Some(w) = core::simd_warning() {
        let py = m.py();
        let msg = std::ffi::CString::new(w).unwrap_or_default();
        // If warnings are errors, the warning is still readable through simd_warning().
        let _ = PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &msg, 1);
    }
    Ok(())
}
