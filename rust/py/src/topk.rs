//! Bindings of the GEMM + top-k primitive and the exact kNN built on it.

use latentatlas_core as core;
use numpy::{IntoPyArray, PyArray2};
use pyo3::prelude::*;

use crate::convert::{by_dtype, mat, opt_vec1, run, F64Topk, Matrix, Vector};

/// (values, int64 indices) of a per-row top-k; values keep the input dtype.
pub(crate) type TopkArrays<'py> = (Bound<'py, PyAny>, Bound<'py, PyArray2<i64>>);

/// Top-k of A·Bᵀ (+ bias) per row of A, via blocked GEMM: (values M×k, indices int64 M×k).
#[pyfunction]
#[pyo3(signature = (a, b, /, k, *, bias = None, exclude_self = false, threads = None))]
pub(crate) fn gemm_topk<'py>(
    py: Python<'py>,
    a: Matrix<'py>,
    b: Matrix<'py>,
    k: usize,
    bias: Option<Vector<'py>>,
    exclude_self: bool,
    threads: Option<usize>,
) -> PyResult<TopkArrays<'py>> {
    const WHAT: &str = "A, B and bias";
    by_dtype!(a.dtype(), T => {
        let (av, bv) = (mat::<T>(&a, WHAT)?, mat::<T>(&b, WHAT)?);
        let bias = opt_vec1::<T>(&bias, WHAT)?;
        let opts = core::GemmTopkOptions { bias, exclude_self, ..core::GemmTopkOptions::new(k) };
        let (v, i) = run(py, threads, || core::gemm_topk(av, bv, opts))?;
        Ok((v.into_pyarray(py).into_any(), i.into_pyarray(py)))
    })
}

/// Exact kNN by squared L2, self excluded: (d2 float64 N×k ascending, indices int64 N×k).
#[pyfunction]
#[pyo3(signature = (x, /, *, k, threads = None))]
pub(crate) fn knn_sqdist<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    k: usize,
    threads: Option<usize>,
) -> PyResult<F64Topk<'py>> {
    let (d2, idx) = by_dtype!(x.dtype(), T => {
        let v = mat::<T>(&x, "X")?;
        run(py, threads, || core::knn_sqdist(v, k))?
    });
    Ok((d2.into_pyarray(py), idx.into_pyarray(py)))
}
