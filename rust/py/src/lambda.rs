//! Bindings of the λ-aware search (arrowspace's score, fused into the primitive) and taumode λ.

use latentatlas_core as core;
use ndarray::Array1;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::convert::{by_dtype, mat, run, F64Topk, Matrix};

/// Top-k items per query by τ·cos + (1−τ)·(1 − min(|λq − λx|, 1)): (scores float64, int64 ids).
#[pyfunction]
#[pyo3(signature = (
    q, items, query_inv_norm, query_lambda, item_inv_norm, item_lambda, /, k, *,
    tau, band = None, threads = None
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn lambda_topk<'py>(
    py: Python<'py>,
    q: Matrix<'py>,
    items: Matrix<'py>,
    query_inv_norm: PyReadonlyArray1<'py, f64>,
    query_lambda: PyReadonlyArray1<'py, f64>,
    item_inv_norm: PyReadonlyArray1<'py, f64>,
    item_lambda: PyReadonlyArray1<'py, f64>,
    k: usize,
    tau: f64,
    band: Option<(f64, f64)>,
    threads: Option<usize>,
) -> PyResult<F64Topk<'py>> {
    let opts = core::LambdaTopkOptions {
        k,
        tau,
        query_inv_norm: query_inv_norm.as_slice()?,
        query_lambda: query_lambda.as_slice()?,
        item_inv_norm: item_inv_norm.as_slice()?,
        item_lambda: item_lambda.as_slice()?,
        band,
    };
    let (v, i) = by_dtype!(q.dtype(), T => {
        let (qv, xv) = (mat::<T>(&q, "Q and items")?, mat::<T>(&items, "Q and items")?);
        run(py, threads, || core::lambda_topk(qv, xv, opts))?
    });
    Ok((v.into_pyarray(py), i.into_pyarray(py)))
}

/// arrowspace's taumode λ of every row before its min-max (float64, length N); L in CSR form.
#[pyfunction]
#[pyo3(signature = (x, indptr, indices, data, /, *, tau = None, threads = None))]
pub(crate) fn taumode_raw<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f64>,
    tau: Option<f64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (ip, ix, dv) = (indptr.as_slice()?, indices.as_slice()?, data.as_slice()?);
    let n = ip.len().saturating_sub(1);
    let e = by_dtype!(x.dtype(), T => {
        let v = mat::<T>(&x, "X")?;
        run(py, threads, || core::taumode_raw(v, &core::EdgeList::from_csr(n, ip, ix, dv)?, tau))?
    });
    Ok(Array1::from(e).into_pyarray(py))
}
