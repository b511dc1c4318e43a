//! Binding of the inverted-index latent search.

use latentatlas_core as core;
use numpy::{IntoPyArray, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::convert::{by_dtype, mat, run, Matrix};
use crate::topk::TopkArrays;

/// Inverted-index retrieval over sparse codes: (scores Q×k, doc ids int64 Q×k), best first.
#[pyfunction]
#[pyo3(signature = (query_values, query_indices, doc_values, doc_indices, /, n_latents, k, *, threads = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn latent_search<'py>(
    py: Python<'py>,
    query_values: Matrix<'py>,
    query_indices: PyReadonlyArray2<'py, i64>,
    doc_values: Matrix<'py>,
    doc_indices: PyReadonlyArray2<'py, i64>,
    n_latents: usize,
    k: usize,
    threads: Option<usize>,
) -> PyResult<TopkArrays<'py>> {
    const WHAT: &str = "query_values and doc_values";
    let (qi, di) = (query_indices.as_array(), doc_indices.as_array());
    by_dtype!(query_values.dtype(), T => {
        let (qv, dv) = (mat::<T>(&query_values, WHAT)?, mat::<T>(&doc_values, WHAT)?);
        let (s, ids) = run(py, threads, || core::latent_search(qv, qi, dv, di, n_latents, k))?;
        Ok((s.into_pyarray(py).into_any(), ids.into_pyarray(py)))
    })
}
