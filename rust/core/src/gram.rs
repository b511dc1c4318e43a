//! Streaming Gram matrix `XᵀX` and the top-k cosine neighbours of each feature column.

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

use crate::check::first_nonfinite_row;
use crate::error::{argument, shape, CoreError, Result};
use crate::real::Real;
use crate::tile::gemm_nt;
use crate::topk::TopK;

/// Rows per streamed chunk. Fixed (never derived from the thread count) so results are
/// bit-identical for any number of threads; anonymous memory is one chunk's tiles, not N rows.
/// Small enough that a chunk stays in cache while every strip reads it (2,048 × 384 × 8 B = 6 MB).
pub const GRAM_CHUNK_ROWS: usize = 2048;
/// Output rows per strip: small enough to balance the triangular work over threads, large
/// enough that each GEMM call amortises its packing.
const STRIP: usize = 64;

/// One strip `C[:, a0..a1]ᵀ · C[:, a0..f]` of a row chunk (the strip's diagonal block and
/// everything right of it), as a row-major `(a1-a0) × (f-a0)` buffer.
fn gram_strip<T: Real>(c: &ArrayView2<T>, a0: usize, a1: usize) -> Vec<T> {
    let lhs = c.slice(s![.., a0..a1]).reversed_axes();
    let rhs = c.slice(s![.., a0..]).reversed_axes();
    let mut dst = vec![T::ZERO; lhs.nrows() * rhs.nrows()];
    gemm_nt(&mut dst, &lhs, &rhs);
    dst
}

/// `XᵀX` (F×F, accumulated in f64) streamed over chunks of `chunk_rows` rows.
///
/// Each chunk is split into strips of `STRIP` output rows; a strip computes only its part on or
/// right of the diagonal (about half the flops of a full product, like BLAS `syrk`), strips run in
/// parallel, and the f64 accumulation order is fixed, so results are identical for any thread
/// count. Tiles are computed in the input precision and added into f64, so an f32 input keeps f32
/// GEMM speed while the rounding error grows with the chunk length, not with N.
/// Fails on the first chunk holding NaN/inf, naming the row.
pub fn gram<T: Real>(x: ArrayView2<T>, chunk_rows: usize) -> Result<Array2<f64>> {
    gram_scaled(x, chunk_rows, None)
}

/// [`gram`] of `X · diag(scale)` (each chunk scaled as it streams by, when `scale` is given).
fn gram_scaled<T: Real>(
    x: ArrayView2<T>,
    chunk_rows: usize,
    scale: Option<&[f64]>,
) -> Result<Array2<f64>> {
    let (n, f) = x.dim();
    if chunk_rows == 0 {
        return Err(argument("chunk_rows", "expected a positive number of rows"));
    }
    let strips: Vec<(usize, usize)> = (0..f)
        .step_by(STRIP)
        .map(|a| (a, (a + STRIP).min(f)))
        .collect();
    let mut g = Array2::<f64>::zeros((f, f));
    for start in (0..n).step_by(chunk_rows) {
        let c = x.slice(s![start..(start + chunk_rows).min(n), ..]);
        if let Some(row) = first_nonfinite_row(&c, start) {
            return Err(CoreError::NonFinite { arg: "X", row });
        }
        let scaled;
        let c = match scale {
            Some(sc) => {
                scaled = Array2::from_shape_fn(c.dim(), |(i, j)| {
                    T::from_f64(c[[i, j]].to_f64() * sc[j])
                });
                scaled.view()
            }
            None => c,
        };
        let parts: Vec<Vec<T>> = strips
            .par_iter()
            .map(|&(a0, a1)| gram_strip(&c, a0, a1))
            .collect();
        for (&(a0, a1), part) in strips.iter().zip(&parts) {
            let w = f - a0;
            for a in a0..a1 {
                let src = &part[(a - a0) * w..(a - a0 + 1) * w];
                let dst = g.slice_mut(s![a, a..]);
                for (d, v) in dst.into_iter().zip(&src[a - a0..]) {
                    *d += v.to_f64();
                }
            }
        }
    }
    // Mirror the upper triangle (nothing below the diagonal was computed).
    for a in 0..f {
        for b in 0..a {
            g[[a, b]] = g[[b, a]];
        }
    }
    Ok(g)
}

/// Per column of `x`, the power of two `2^-e` with `max |x[:, j]| · 2^-e` in `[0.5, 1)` (1 for a
/// column whose values are all below 1 in magnitude).
fn column_scales<T: Real>(x: &ArrayView2<T>) -> Vec<f64> {
    let mut top = vec![0.0f64; x.ncols()];
    for row in x.rows() {
        for (t, v) in top.iter_mut().zip(row) {
            *t = t.max(v.to_f64().abs());
        }
    }
    top.iter()
        .map(|&m| {
            if m < 1.0 {
                1.0
            } else {
                // m = mant · 2^e with mant in [0.5, 1): 2^-e brings m into [0.5, 1).
                // Capped at 2^-1022 (the smallest normal power; still leaves max |x| < 4).
                let e = (m.log2().floor() as i32 + 1).min(1022);
                2f64.powi(-e)
            }
        })
        .collect()
}

/// Cosine similarity between feature columns and each feature's top-k neighbours (self excluded).
///
/// Returns `(values, indices)`, both F×k, best first with ties broken by the lower index (the
/// order every top-k kernel uses). A column of zeros has cosine 0 with every column (as
/// scikit-learn's `cosine_similarity` defines it).
pub fn feature_topk<T: Real>(
    x: ArrayView2<T>,
    k: usize,
    chunk_rows: usize,
) -> Result<(Array2<f64>, Array2<i64>)> {
    let (n, f) = x.dim();
    if n == 0 {
        return Err(shape("X", "expected at least one row (item), got 0"));
    }
    if f < 2 {
        return Err(shape(
            "X",
            format!("expected at least 2 feature columns, got {f}"),
        ));
    }
    if k < 1 || k >= f {
        return Err(argument(
            "k",
            format!("expected 1 <= k < n_features = {f}, got k = {k}"),
        ));
    }
    let mut g = gram(x, chunk_rows)?;
    if g.iter().any(|v| !v.is_finite()) {
        // Squares of huge values overflowed (f64 near 1e154, or f32 near 1e19 in the f32 tiles).
        // Cosines do not change when a column is scaled, so scale each column by a power of two
        // (exact) that brings its largest value below 1, and build the Gram again.
        g = gram_scaled(x, chunk_rows, Some(&column_scales(&x)))?;
        if g.iter().any(|v| !v.is_finite()) {
            return Err(argument(
                "X",
                "its Gram matrix overflows even after scaling each column",
            ));
        }
    }
    let norms: Vec<f64> = (0..f).map(|i| g[[i, i]].sqrt()).collect();
    let mut idx = vec![0i64; f * k];
    let mut vals = vec![0.0f64; f * k];
    idx.par_chunks_mut(k)
        .zip(vals.par_chunks_mut(k))
        .enumerate()
        .for_each(|(i, (irow, vrow))| {
            let mut best = TopK::new(k);
            for j in 0..f {
                if j != i {
                    let d = norms[i] * norms[j];
                    best.push(if d > 0.0 { g[[i, j]] / d } else { 0.0 }, j);
                }
            }
            let mut ix = vec![0usize; k];
            best.write_sorted(vrow, &mut ix);
            for (o, &j) in irow.iter_mut().zip(&ix) {
                *o = j as i64;
            }
        });
    let idx = Array2::from_shape_vec((f, k), idx).expect("f*k buffer");
    let vals = Array2::from_shape_vec((f, k), vals).expect("f*k buffer");
    Ok((vals, idx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive_gram(x: &Array2<f64>) -> Array2<f64> {
        x.t().dot(x)
    }

    use crate::testutil::pseudo;

    #[test]
    fn gram_matches_naive_for_any_chunking_and_layout() {
        let x = pseudo(1000, 200, 1);
        let want = naive_gram(&x);
        for chunk in [1, 7, 333, 5000] {
            let got = gram(x.view(), chunk).unwrap();
            let err = (&got - &want).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
            assert!(err < 1e-10, "chunk {chunk}: {err}");
        }
        let xf = x.t().to_owned().reversed_axes(); // Fortran order, same values
        let got = gram(xf.view(), 64).unwrap();
        assert!((&got - &want).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b)) < 1e-10);
        let strided = x.slice(s![..;3, ..;2]).to_owned();
        let got = gram(x.slice(s![..;3, ..;2]), 50).unwrap();
        let want = naive_gram(&strided);
        assert!((&got - &want).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b)) < 1e-10);
    }

    #[test]
    fn feature_topk_survives_overflowing_squares() {
        let x = pseudo(300, 5, 4);
        let want = feature_topk(x.view(), 3, 64).unwrap();
        // Columns scaled to the edge of the float range: same cosines, never NaN/inf.
        let scales = [1e160, f64::MAX / 4.0, 1.0, 3e155, 1e-3];
        let big = Array2::from_shape_fn(x.dim(), |(i, j)| x[[i, j]] * scales[j]);
        let got = feature_topk(big.view(), 3, 64).unwrap();
        assert_eq!(got.1, want.1);
        let err = (&got.0 - &want.0)
            .mapv(f64::abs)
            .fold(0.0f64, |a, &b| a.max(b));
        assert!(err < 1e-12, "{err}");
        let big32 = Array2::from_shape_fn(x.dim(), |(i, j)| {
            (x[[i, j]] * [1e20, 1.0, 3e37, 1.0, 1.0][j]) as f32
        });
        let got32 = feature_topk(big32.view(), 3, 64).unwrap();
        assert!(got32.0.iter().all(|v| v.is_finite()));
        let x32 = x.mapv(|v| v as f32);
        assert_eq!(got32.1, feature_topk(x32.view(), 3, 64).unwrap().1);
    }

    #[test]
    fn gram_rejects_nonfinite_with_row() {
        let mut x = pseudo(50, 4, 2);
        x[[37, 2]] = f64::NAN;
        assert_eq!(
            gram(x.view(), 16).unwrap_err(),
            CoreError::NonFinite { arg: "X", row: 37 }
        );
    }

    #[test]
    fn feature_topk_excludes_self_and_handles_zero_columns() {
        let mut x = pseudo(100, 6, 3);
        x.column_mut(4).fill(0.0);
        let (vals, idx) = feature_topk(x.view(), 5, 32).unwrap();
        for i in 0..6 {
            assert!(idx.row(i).iter().all(|&j| j as usize != i));
            assert!(vals.row(i).iter().all(|v| v.is_finite()));
        }
        assert!(vals.row(4).iter().all(|&v| v == 0.0));
        assert_eq!(idx.row(4).to_vec(), vec![0, 1, 2, 3, 5]);
    }

    #[test]
    fn feature_topk_validates_k() {
        let x = pseudo(10, 4, 4);
        assert!(matches!(
            feature_topk(x.view(), 4, 8),
            Err(CoreError::Argument { arg: "k", .. })
        ));
        assert!(matches!(
            feature_topk(x.view(), 0, 8),
            Err(CoreError::Argument { arg: "k", .. })
        ));
    }
}
