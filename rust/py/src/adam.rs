//! Binding of the fused Adam step (in place on NumPy arrays).

use latentatlas_core as core;
use numpy::{PyArrayDyn, PyArrayMethods, PyReadwriteArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{by_dtype, dtype_mismatch, run, Float, Mutable};

const WHAT: &str = "param, grad, m and v";

/// A writable array of precision `T`, or a TypeError.
fn typed<T: Float>(a: Mutable<'_>) -> PyResult<PyReadwriteArrayDyn<'_, T>> {
    T::mutable(a).ok_or_else(|| dtype_mismatch(WHAT))
}

/// In-place, bias-corrected Adam step on one parameter array (C-contiguous, one dtype for all four).
#[pyfunction]
#[pyo3(signature = (param, grad, m, v, /, *, lr, step, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, threads = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam_step(
    py: Python<'_>,
    param: Mutable<'_>,
    grad: Bound<'_, PyAny>,
    m: Mutable<'_>,
    v: Mutable<'_>,
    lr: f64,
    step: u64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    threads: Option<usize>,
) -> PyResult<()> {
    let o = core::AdamOptions {
        lr,
        beta1,
        beta2,
        eps,
        step,
    };
    by_dtype!(param.dtype(), T => adam_t(py, typed::<T>(param)?, &grad, typed(m)?, typed(v)?, o, threads))
}

/// [`adam_step`] for one precision: `grad` must share the parameter's dtype.
fn adam_t<T: Float>(
    py: Python<'_>,
    mut p: PyReadwriteArrayDyn<'_, T>,
    grad: &Bound<'_, PyAny>,
    mut m: PyReadwriteArrayDyn<'_, T>,
    mut v: PyReadwriteArrayDyn<'_, T>,
    o: core::AdamOptions,
    threads: Option<usize>,
) -> PyResult<()> {
    let contiguous = |_| PyValueError::new_err("param, grad, m and v must be C-contiguous arrays");
    let g = grad
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| dtype_mismatch(WHAT))?
        .readonly();
    let gs = g.as_slice().map_err(contiguous)?;
    let ps = p.as_slice_mut().map_err(contiguous)?;
    let (ms, vs) = (
        m.as_slice_mut().map_err(contiguous)?,
        v.as_slice_mut().map_err(contiguous)?,
    );
    run(py, threads, || core::adam_step(ps, gs, ms, vs, o))
}
