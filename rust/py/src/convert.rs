//! What every binding shares: NumPy arrays of either precision, the dtype dispatch, the error map
//! and [`run`] (release the GIL, pick the thread pool, map the error).

use latentatlas_core as core;
use ndarray::ArrayView2;
use numpy::{Element, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArrayDyn};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A 2-D float array of either precision, borrowed from NumPy.
#[derive(FromPyObject)]
pub(crate) enum Matrix<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

/// A 1-D float array of either precision.
#[derive(FromPyObject)]
pub(crate) enum Vector<'py> {
    F32(PyReadonlyArray1<'py, f32>),
    F64(PyReadonlyArray1<'py, f64>),
}

/// A float array of either precision, borrowed writable from NumPy (any number of dimensions).
#[derive(FromPyObject)]
pub(crate) enum Mutable<'py> {
    F32(PyReadwriteArrayDyn<'py, f32>),
    F64(PyReadwriteArrayDyn<'py, f64>),
}

/// (float64 values, int64 indices) of a per-row top-k.
pub(crate) type F64Topk<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<i64>>);

/// The precision of the first array of a call; the others must match it.
pub(crate) enum Dtype {
    F32,
    F64,
}

impl Matrix<'_> {
    pub(crate) fn dtype(&self) -> Dtype {
        match self {
            Matrix::F32(_) => Dtype::F32,
            Matrix::F64(_) => Dtype::F64,
        }
    }
}

impl Mutable<'_> {
    pub(crate) fn dtype(&self) -> Dtype {
        match self {
            Mutable::F32(_) => Dtype::F32,
            Mutable::F64(_) => Dtype::F64,
        }
    }
}

/// `by_dtype!(first.dtype(), T => body)`: evaluate `body` with the type alias `T` set to `f32` or
/// `f64`, so one generic body serves both precisions.
macro_rules! by_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::convert::Dtype::F32 => {
                type $t = f32;
                $body
            }
            $crate::convert::Dtype::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}
pub(crate) use by_dtype;

/// The element types of the bindings: a core `Real` NumPy knows, with typed access to the
/// precision-erased arrays.
pub(crate) trait Float: core::Accum + Element {
    fn matrix<'a>(m: &'a Matrix<'_>) -> Option<ArrayView2<'a, Self>>;
    fn vector<'a>(v: &'a Vector<'_>) -> Option<PyResult<&'a [Self]>>;
    fn mutable<'py>(m: Mutable<'py>) -> Option<PyReadwriteArrayDyn<'py, Self>>;
}

macro_rules! impl_float {
    ($t:ty, $variant:ident) => {
        impl Float for $t {
            fn matrix<'a>(m: &'a Matrix<'_>) -> Option<ArrayView2<'a, Self>> {
                match m {
                    Matrix::$variant(a) => Some(a.as_array()),
                    _ => None,
                }
            }
            fn vector<'a>(v: &'a Vector<'_>) -> Option<PyResult<&'a [Self]>> {
                match v {
                    Vector::$variant(a) => Some(a.as_slice().map_err(PyErr::from)),
                    _ => None,
                }
            }
            fn mutable<'py>(m: Mutable<'py>) -> Option<PyReadwriteArrayDyn<'py, Self>> {
                match m {
                    Mutable::$variant(a) => Some(a),
                    _ => None,
                }
            }
        }
    };
}
impl_float!(f32, F32);
impl_float!(f64, F64);

/// TypeError: the arrays named in `what` do not share one dtype.
pub(crate) fn dtype_mismatch(what: &str) -> PyErr {
    PyTypeError::new_err(format!("{what} must share one dtype (float32 or float64)"))
}

/// `m` as a view of precision `T`, or a TypeError naming the arrays `what` that must match.
pub(crate) fn mat<'a, T: Float>(m: &'a Matrix<'_>, what: &str) -> PyResult<ArrayView2<'a, T>> {
    T::matrix(m).ok_or_else(|| dtype_mismatch(what))
}

/// `v` as a contiguous slice of precision `T` (TypeError on another dtype).
pub(crate) fn vec1<'a, T: Float>(v: &'a Vector<'_>, what: &str) -> PyResult<&'a [T]> {
    T::vector(v).ok_or_else(|| dtype_mismatch(what))?
}

/// An optional [`vec1`].
pub(crate) fn opt_vec1<'a, T: Float>(
    v: &'a Option<Vector<'_>>,
    what: &str,
) -> PyResult<Option<&'a [T]>> {
    v.as_ref().map(|v| vec1(v, what)).transpose()
}

/// A core error as a Python exception, by variant: bad shape, argument or values → ValueError,
/// a thread pool that could not be built → RuntimeError.
pub(crate) fn err(e: core::CoreError) -> PyErr {
    match e {
        core::CoreError::Threads(_) => PyRuntimeError::new_err(e.to_string()),
        core::CoreError::Shape { .. }
        | core::CoreError::Argument { .. }
        | core::CoreError::NonFinite { .. } => PyValueError::new_err(e.to_string()),
    }
}

/// Run a core kernel: release the GIL, run `f` on `threads` workers (None: rayon's global pool)
/// and map its error to a Python exception.
///
/// The kernels report every bad input as a `CoreError`; a panic would be a bug. Should one happen
/// anyway, it is caught here and raised as a RuntimeError that says so, never as pyo3's
/// `PanicException` (which derives from BaseException and escapes `except Exception`).
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> core::Result<T> + Send,
) -> PyResult<T> {
    let caught = py.detach(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            core::with_threads(threads, f)
        }))
    });
    match caught {
        Ok(result) => result.map_err(err),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "internal error in latentatlas._core (a bug; please report it): {msg}"
            )))
        }
    }
}
