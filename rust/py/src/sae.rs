//! Binding of the TopK SAE encode (latentatlas_core::sae).

use latentatlas_core as core;
use numpy::IntoPyArray;
use pyo3::prelude::*;

use crate::convert::{by_dtype, mat, opt_vec1, run, vec1, Matrix, Vector};
use crate::topk::TopkArrays;

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
