//! Binding of the TopK SAE encode (latentatlas_core::sae).

use latentatlas_core as core;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use crate::convert::{by_dtype, mat, opt_vec1, run, vec1, Matrix, Vector};
use crate::topk::TopkArrays;

/// `(indptr, indices, data)` of a CSR matrix; data is float32 or float64 like the input.
type CsrArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyAny>,
);

/// TopK encode with ReLU: (values N×k, indices int64 N×k) of TopK(W_enc (x - b_dec) + b_enc).
#[pyfunction]
#[pyo3(signature = (x, w_enc, b_enc, /, k, *, b_dec = None, threads = None))]
pub(crate) fn sae_encode<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    w_enc: Matrix<'py>,
    b_enc: Vector<'py>,
    k: usize,
    b_dec: Option<Vector<'py>>,
    threads: Option<usize>,
) -> PyResult<TopkArrays<'py>> {
    const WHAT: &str = "X, W_enc, b_enc and b_dec";
    by_dtype!(x.dtype(), T => {
        let (xv, wv) = (mat::<T>(&x, WHAT)?, mat::<T>(&w_enc, WHAT)?);
        let (be, bd) = (vec1::<T>(&b_enc, WHAT)?, opt_vec1::<T>(&b_dec, WHAT)?);
        let (v, i) = run(py, threads, || core::sae_encode(xv, wv, be, bd, k))?;
        Ok((v.into_pyarray(py).into_any(), i.into_pyarray(py)))
    })
}

/// Threshold encode (ReLU / JumpReLU) to CSR: (indptr int64 N+1, indices int64, data) of the
/// active latents, pre_j > max(threshold_j, 0), of W_enc (x - b_dec) + b_enc.
#[pyfunction]
#[pyo3(signature = (x, w_enc, b_enc, threshold, /, *, b_dec = None, threads = None))]
pub(crate) fn sae_encode_threshold<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    w_enc: Matrix<'py>,
    b_enc: Vector<'py>,
    threshold: Vector<'py>,
    b_dec: Option<Vector<'py>>,
    threads: Option<usize>,
) -> PyResult<CsrArrays<'py>> {
    const WHAT: &str = "X, W_enc, b_enc, threshold and b_dec";
    by_dtype!(x.dtype(), T => {
        let (xv, wv) = (mat::<T>(&x, WHAT)?, mat::<T>(&w_enc, WHAT)?);
        let (be, th, bd) = (vec1::<T>(&b_enc, WHAT)?, vec1::<T>(&threshold, WHAT)?, opt_vec1::<T>(&b_dec, WHAT)?);
        let c = run(py, threads, || core::sae_encode_threshold(xv, wv, be, bd, th))?;
        Ok((
            c.indptr.into_pyarray(py),
            c.indices.into_pyarray(py),
            c.data.into_pyarray(py).into_any(),
        ))
    })
}
