//! Input checks shared by every kernel (the ground floor, beside `error.rs`).
//!
//! Each check names the argument it rejects, so the Python layer can raise an exception that says
//! which input was wrong. They run before any kernel touches the data, so no index that comes from
//! the user is ever used unchecked.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::{argument, shape, CoreError, Result};
use crate::real::Real;

/// First row (smallest index) of `x` holding a NaN or infinity, plus `offset`, if any.
pub(crate) fn first_nonfinite_row<T: Real>(x: &ArrayView2<T>, offset: usize) -> Option<usize> {
    (0..x.nrows())
        .into_par_iter()
        .find_first(|&r| !x.row(r).iter().all(|v| v.is_finite()))
        .map(|r| r + offset)
}

/// Every element of the matrix `x` is finite, or [`CoreError::NonFinite`] naming `arg` and the row.
pub(crate) fn check_finite<T: Real>(x: &ArrayView2<T>, arg: &'static str) -> Result<()> {
    match first_nonfinite_row(x, 0) {
        Some(row) => Err(CoreError::NonFinite { arg, row }),
        None => Ok(()),
    }
}

/// Every element of the vector `v` is finite (the "row" of the error is the element's position).
pub(crate) fn check_finite_slice<T: Real>(v: &[T], arg: &'static str) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(row) => Err(CoreError::NonFinite { arg, row }),
        None => Ok(()),
    }
}

/// `v` has exactly `len` elements.
pub(crate) fn check_len<T>(v: &[T], len: usize, arg: &'static str) -> Result<()> {
    if v.len() != len {
        return Err(shape(
            arg,
            format!("expected length {len}, got {}", v.len()),
        ));
    }
    Ok(())
}

/// A private copy of a sparse code's latent indices, every one checked to lie in `[0, n_latents)`.
///
/// The kernels run with the GIL released, so another Python thread may rewrite the caller's index
/// array while they work. The check and every later use read this copy, never the caller's array,
/// so a racing write can change which latents a call sees but can never send an index out of
/// bounds (a panic) or past the check. The copy costs `rows × k` integers, far less than any
/// kernel that uses it.
pub(crate) fn checked_indices(
    idx: &ArrayView2<i64>,
    n_latents: usize,
    arg: &'static str,
) -> Result<Array2<i64>> {
    let own = idx.to_owned();
    let bad = (0..own.nrows()).into_par_iter().find_first(|&r| {
        own.row(r)
            .iter()
            .any(|&j| j < 0 || j as u64 >= n_latents as u64)
    });
    match bad {
        Some(r) => Err(argument(
            arg,
            format!("row {r} holds a latent index outside [0, {n_latents})"),
        )),
        None => Ok(own),
    }
}

/// The values of a sparse code: the shape of its indices, every value finite.
pub(crate) fn check_values<T: Real>(
    vals: &ArrayView2<T>,
    idx: &ArrayView2<i64>,
    vals_name: &'static str,
    idx_name: &'static str,
) -> Result<()> {
    if vals.dim() != idx.dim() {
        return Err(shape(
            idx_name,
            format!(
                "expected the shape of {vals_name} {:?}, got {:?}",
                vals.dim(),
                idx.dim()
            ),
        ));
    }
    check_finite(vals, vals_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn finite_checks_name_argument_and_row() {
        let mut x = Array2::<f32>::zeros((9, 3));
        assert!(check_finite(&x.view(), "X").is_ok());
        x[[7, 1]] = f32::INFINITY;
        x[[8, 0]] = f32::NAN;
        assert_eq!(
            check_finite(&x.view(), "X"),
            Err(CoreError::NonFinite { arg: "X", row: 7 })
        );
        assert_eq!(first_nonfinite_row(&x.view(), 100), Some(107));
        assert_eq!(
            check_finite_slice(&[0.0, f64::NAN], "bias"),
            Err(CoreError::NonFinite {
                arg: "bias",
                row: 1
            })
        );
        assert!(matches!(
            check_len(&[1, 2], 3, "b"),
            Err(CoreError::Shape { arg: "b", .. })
        ));
    }

    #[test]
    fn index_and_value_checks() {
        let idx = array![[0i64, 3], [2, 1]];
        assert_eq!(checked_indices(&idx.view(), 4, "indices").unwrap(), idx);
        let e = checked_indices(&idx.view(), 3, "indices").unwrap_err();
        assert_eq!(
            e.to_string(),
            "indices: row 0 holds a latent index outside [0, 3)"
        );
        let neg = array![[0i64, -1]];
        assert!(checked_indices(&neg.view(), 3, "indices").is_err());
        let vals = array![[1.0f64, 2.0]];
        assert!(matches!(
            check_values(&vals.view(), &idx.view(), "values", "indices"),
            Err(CoreError::Shape { arg: "indices", .. })
        ));
    }
}
