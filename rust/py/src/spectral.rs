//! Bindings of the feature-graph kernels: streaming Gram, feature top-k, Rayleigh energies.

use latentatlas_core as core;
use ndarray::Array1;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::convert::{by_dtype, mat, run, F64Topk, Matrix};

/// Streaming Gram matrix XᵀX (F×F, float64) over row chunks.
#[pyfunction]
#[pyo3(signature = (x, /, *, chunk_rows = core::GRAM_CHUNK_ROWS, threads = None))]
pub(crate) fn gram<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    chunk_rows: usize,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let g = by_dtype!(x.dtype(), T => {
        let v = mat::<T>(&x, "X")?;
        run(py, threads, || core::gram(v, chunk_rows))?
    });
    Ok(g.into_pyarray(py))
}

/// Top-k cosine neighbours of every feature column: (values float64 F×k, indices int64 F×k).
#[pyfunction]
#[pyo3(signature = (x, /, k, *, chunk_rows = core::GRAM_CHUNK_ROWS, threads = None))]
pub(crate) fn feature_topk<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    k: usize,
    chunk_rows: usize,
    threads: Option<usize>,
) -> PyResult<F64Topk<'py>> {
    let (vals, idx) = by_dtype!(x.dtype(), T => {
        let v = mat::<T>(&x, "X")?;
        run(py, threads, || core::feature_topk(v, k, chunk_rows))?
    });
    Ok((vals.into_pyarray(py), idx.into_pyarray(py)))
}

/// Rayleigh energies xᵀLx/xᵀx of every row for L given in CSR form (float64, length N).
#[pyfunction]
#[pyo3(signature = (x, indptr, indices, data, /, *, threads = None))]
pub(crate) fn rayleigh_energy<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, f64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (ip, ix, dv) = (indptr.as_slice()?, indices.as_slice()?, data.as_slice()?);
    let n = ip.len().saturating_sub(1);
    let e = by_dtype!(x.dtype(), T => {
        let v = mat::<T>(&x, "X")?;
        run(py, threads, || core::rayleigh_energy(v, &core::EdgeList::from_csr(n, ip, ix, dv)?))?
    });
    Ok(Array1::from(e).into_pyarray(py))
}
