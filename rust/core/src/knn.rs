//! Exact k-nearest neighbours by squared Euclidean distance, on the GEMM + top-k primitive.

use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::check::check_finite;
use crate::error::{argument, Result};
use crate::gemm_topk::{gemm_topk, ArgNames, GemmTopkOptions};
use crate::real::Real;

/// Rows per parallel task of the distance pass (fixed, so results never depend on threads).
const ROWS_PER_TASK: usize = 256;

/// Squared distance of two rows, summed in f64 in index order.
#[inline]
fn sqdist<T: Real>(a: ArrayView1<T>, b: ArrayView1<T>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| {
            let d = x.to_f64() - y.to_f64();
            d * d
        })
        .sum()
}

/// Squared norm of a row, summed in f64 in index order.
#[inline]
fn sqnorm<T: Real>(a: ArrayView1<T>) -> f64 {
    a.iter()
        .map(|x| {
            let v = x.to_f64();
            v * v
        })
        .sum()
}

/// Exact kNN of every row of `x` among the other rows, by squared L2 distance, self excluded.
///
/// Candidates come from [`gemm_topk`] with bias `-|x_j|²/2` in the input's precision (so an f32
/// input gets f32 GEMM speed); the squared distances of the chosen pairs are then recomputed in
/// f64 from the input rows, so they carry no cancellation error from `|a|² + |b|² - 2a·b`.
/// Each row is ordered by ascending distance, ties to the lower index.
///
/// Returns `(d2, idx)`, both `n × k`. `k` must satisfy `1 <= k < n`.
pub fn knn_sqdist<T: Real>(x: ArrayView2<T>, k: usize) -> Result<(Array2<f64>, Array2<i64>)> {
    let n = x.nrows();
    if k < 1 || k >= n {
        return Err(argument(
            "k",
            format!("expected 1 <= k < n_rows = {n}, got k = {k}"),
        ));
    }
    check_finite(&x, "X")?;
    let bias: Vec<T> = (0..n)
        .into_par_iter()
        .map(|j| T::from_f64(-0.5 * sqnorm(x.row(j))))
        .collect();
    if let Some(j) = bias.iter().position(|b| !b.is_finite()) {
        return Err(argument(
            "X",
            format!("row {j}: the squared norm overflows the input's precision"),
        ));
    }
    let opts = GemmTopkOptions {
        k,
        bias: Some(&bias),
        exclude_self: true,
        names: ArgNames {
            a: "X",
            b: "X",
            bias: "X",
            candidates: "other rows",
        },
    };
    let (_, mut idx) = gemm_topk(x, x, opts)?;
    let mut d2 = Array2::<f64>::zeros((n, k));
    d2.as_slice_mut()
        .expect("fresh standard-layout array")
        .par_chunks_mut(ROWS_PER_TASK * k)
        .zip(
            idx.as_slice_mut()
                .expect("fresh standard-layout array")
                .par_chunks_mut(ROWS_PER_TASK * k),
        )
        .enumerate()
        .for_each(|(blk, (dout, iout))| {
            let mut pairs: Vec<(f64, i64)> = Vec::with_capacity(k);
            for (r, (drow, irow)) in dout.chunks_mut(k).zip(iout.chunks_mut(k)).enumerate() {
                let i = blk * ROWS_PER_TASK + r;
                pairs.clear();
                pairs.extend(
                    irow.iter()
                        .map(|&j| (sqdist(x.row(i), x.row(j as usize)), j)),
                );
                pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                for (t, &(dd, j)) in pairs.iter().enumerate() {
                    drow[t] = dd;
                    irow[t] = j;
                }
            }
        });
    Ok((d2, idx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::testutil::pseudo;

    fn brute(x: &Array2<f64>, k: usize) -> (Array2<f64>, Array2<i64>) {
        let n = x.nrows();
        let (mut d, mut ix) = (Array2::zeros((n, k)), Array2::zeros((n, k)));
        for i in 0..n {
            let mut all: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| ((&x.row(i) - &x.row(j)).mapv(|v| v * v).sum(), j))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for t in 0..k {
                d[[i, t]] = all[t].0;
                ix[[i, t]] = all[t].1 as i64;
            }
        }
        (d, ix)
    }

    #[test]
    fn matches_brute_force_in_f64_and_f32() {
        let x = pseudo(600, 9, 11);
        let (d, ix) = knn_sqdist(x.view(), 7).unwrap();
        let (dw, iw) = brute(&x, 7);
        assert_eq!(ix, iw);
        assert!((&d - &dw).mapv(f64::abs).iter().all(|&e| e < 1e-12));
        // f32 candidates; distances in f64 from the f32 rows
        let x32 = x.mapv(|v| v as f32);
        let (d, ix) = knn_sqdist(x32.view(), 7).unwrap();
        let (dw, iw) = brute(&x32.mapv(|v| v as f64), 7);
        let agree = ix.iter().zip(&iw).filter(|(a, b)| a == b).count();
        assert!(agree as f64 >= 0.99 * ix.len() as f64, "{agree}");
        for i in 0..600 {
            for t in 0..7 {
                assert!(ix[[i, t]] as usize != i);
                if t > 0 {
                    assert!(d[[i, t]] >= d[[i, t - 1]]);
                }
            }
        }
        assert!((&d - &dw).iter().map(|e| e.abs()).fold(0.0, f64::max) < 1e-5);
    }

    #[test]
    fn duplicates_tie_to_the_lower_index() {
        let mut x = pseudo(10, 3, 2);
        let r = x.row(4).to_owned();
        x.row_mut(7).assign(&r);
        x.row_mut(2).assign(&r);
        let (d, ix) = knn_sqdist(x.view(), 2).unwrap();
        assert_eq!(ix.row(4).to_vec(), vec![2, 7]);
        assert_eq!(ix.row(7).to_vec(), vec![2, 4]);
        assert_eq!(d.row(4).to_vec(), vec![0.0, 0.0]);
    }

    #[test]
    fn validates_k_and_input() {
        let x = pseudo(5, 2, 3);
        for k in [0, 5, 6] {
            let e = knn_sqdist(x.view(), k).unwrap_err();
            assert!(matches!(e, CoreError::Argument { arg: "k", .. }), "{e}");
        }
        let mut y = x.clone();
        y[[3, 1]] = f64::NAN;
        assert_eq!(
            knn_sqdist(y.view(), 2).unwrap_err(),
            CoreError::NonFinite { arg: "X", row: 3 }
        );
        let big = Array2::from_elem((3, 2), 3e38f32);
        assert!(matches!(
            knn_sqdist(big.view(), 1),
            Err(CoreError::Argument { arg: "X", .. })
        ));
    }
}
