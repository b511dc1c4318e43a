//! Binding of ToMATo's merge forest (persistence-based clustering on a graph).

use latentatlas_core as core;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::convert::{run, Vector};

/// (raw_cluster, peaks, merges, birth, death) as NumPy arrays.
type Forest<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// ToMATo's merge forest of a density (n) on a CSR graph: (raw_cluster n, peaks r, merges m×2, birth m, death m).
#[pyfunction]
#[pyo3(signature = (density, indptr, indices, /, *, threads = None))]
pub(crate) fn tomato_forest<'py>(
    py: Python<'py>,
    density: Vector<'py>,
    indptr: PyReadonlyArray1<'py, i64>,
    indices: PyReadonlyArray1<'py, i64>,
    threads: Option<usize>,
) -> PyResult<Forest<'py>> {
    // float32 densities are widened once; float64 ones are borrowed.
    let widened: Vec<f64>;
    let d: &[f64] = match &density {
        Vector::F64(a) => a.as_slice()?,
        Vector::F32(a) => {
            widened = a.as_slice()?.iter().map(|&v| f64::from(v)).collect();
            &widened
        }
    };
    let (ip, ix) = (indptr.as_slice()?, indices.as_slice()?);
    let f = run(py, threads, || core::tomato_forest(d, ip, ix))?;
    let m = f.merges.len();
    let merges = ndarray::Array2::from_shape_vec((m, 2), f.merges.concat())
        .expect("m pairs fill an m×2 array");
    Ok((
        f.raw_cluster.into_pyarray(py),
        f.peaks.into_pyarray(py),
        merges.into_pyarray(py),
        f.birth.into_pyarray(py),
        f.death.into_pyarray(py),
    ))
}
