//! Bindings of the sparse-code kernels: decode and the sparse backward (gather-dot, scatter-rows).

use latentatlas_core as core;
use ndarray::Array1;
use numpy::{IntoPyArray, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::convert::{by_dtype, mat, opt_vec1, run, Matrix, Vector};

/// Sparse decode: bias + Σ_t values[i,t]·W[indices[i,t]] per row (N×d).
#[pyfunction]
#[pyo3(signature = (values, indices, w, /, *, bias = None, threads = None))]
pub(crate) fn sparse_decode<'py>(
    py: Python<'py>,
    values: Matrix<'py>,
    indices: PyReadonlyArray2<'py, i64>,
    w: Matrix<'py>,
    bias: Option<Vector<'py>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    const WHAT: &str = "values, W and bias";
    let iv = indices.as_array();
    by_dtype!(values.dtype(), T => {
        let (vv, wv) = (mat::<T>(&values, WHAT)?, mat::<T>(&w, WHAT)?);
        let bias = opt_vec1::<T>(&bias, WHAT)?;
        let out = run(py, threads, || core::sparse_decode(vv, iv, wv, bias))?;
        Ok(out.into_pyarray(py).into_any())
    })
}

/// out[i,t] = G[i] · W[indices[i,t]] (N×k).
#[pyfunction]
#[pyo3(signature = (g, indices, w, /, *, threads = None))]
pub(crate) fn sparse_gather_dot<'py>(
    py: Python<'py>,
    g: Matrix<'py>,
    indices: PyReadonlyArray2<'py, i64>,
    w: Matrix<'py>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let iv = indices.as_array();
    by_dtype!(g.dtype(), T => {
        let (gv, wv) = (mat::<T>(&g, "G and W")?, mat::<T>(&w, "G and W")?);
        let out = run(py, threads, || core::sparse_gather_dot(gv, iv, wv))?;
        Ok(out.into_pyarray(py).into_any())
    })
}

/// Scatter-add: (out n_latents×d with out[j] = Σ_{idx[i,t]=j} coef[i,t]·X[i], sums[j] = Σ coef[i,t]).
#[pyfunction]
#[pyo3(signature = (coef, indices, x, /, n_latents, *, threads = None))]
pub(crate) fn sparse_scatter_rows<'py>(
    py: Python<'py>,
    coef: Matrix<'py>,
    indices: PyReadonlyArray2<'py, i64>,
    x: Matrix<'py>,
    n_latents: usize,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let iv = indices.as_array();
    by_dtype!(coef.dtype(), T => {
        let (cv, xv) = (mat::<T>(&coef, "coef and X")?, mat::<T>(&x, "coef and X")?);
        let (out, sums) = run(py, threads, || core::sparse_scatter_rows(cv, iv, xv, n_latents))?;
        Ok((out.into_pyarray(py).into_any(), Array1::from(sums).into_pyarray(py).into_any()))
    })
}
