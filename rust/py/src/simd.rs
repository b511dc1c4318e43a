//! Which vector instruction set the dispatched kernels use (chosen once per process).

use latentatlas_core as core;
use pyo3::prelude::*;

/// The SIMD path in use: "scalar", "avx2" or "avx512" (set by LATENTATLAS_SIMD, else the widest
/// this CPU supports).
#[pyfunction]
pub(crate) fn simd_path() -> &'static str {
    core::simd_path().name()
}

/// Why LATENTATLAS_SIMD was not honoured (an unknown value or a path this CPU lacks), or None.
#[pyfunction]
pub(crate) fn simd_warning() -> Option<&'static str> {
    core::simd_warning()
}

/// "release" or "debug": how this extension was compiled (debug builds are ~10x slower).
#[pyfunction]
pub(crate) fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Worker threads of the global pool that `threads=None` runs on.
#[pyfunction]
pub(crate) fn rayon_threads() -> usize {
    core::global_threads()
}
