//! Binding of the fused Adam step (in place on NumPy arrays).

use latentatlas_core as core;
use numpy::{PyArrayDyn, PyArrayMethods, PyReadwriteArrayDyn, PyUntypedArrayMethods};
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
    let g = grad
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| dtype_mismatch(WHAT))?
        .readonly();
    // The update walks the four arrays as flat buffers, so they must agree element by element:
    // one shape and C order each (a Fortran-ordered param with a C-ordered grad would pair the
    // wrong elements without any error).
    let shape = p.shape().to_vec();
    for (name, s, c) in [
        ("grad", g.shape(), g.is_c_contiguous()),
        ("m", m.shape(), m.is_c_contiguous()),
        ("v", v.shape(), v.is_c_contiguous()),
        ("param", &shape[..], p.is_c_contiguous()),
    ] {
        if s != &shape[..] {
            return Err(PyValueError::new_err(format!(
                "{name}: expected the shape of param {shape:?}, got {s:?}"
            )));
        }
        if !c {
            return Err(PyValueError::new_err(format!(
                "{name}: expected a C-contiguous array ({WHAT} must all be C-contiguous)"
            )));
        }
    }
    let contiguous = |_| PyValueError::new_err("param, grad, m and v must be C-contiguous arrays");
    let gs = g.as_slice().map_err(contiguous)?;
    let ps = p.as_slice_mut().map_err(contiguous)?;
    let (ms, vs) = (
        m.as_slice_mut().map_err(contiguous)?,
        v.as_slice_mut().map_err(contiguous)?,
    );
    run(py, threads, || core::adam_step(ps, gs, ms, vs, o))
}
