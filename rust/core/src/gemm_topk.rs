//! The shared primitive: score every row of A against every row of B with a blocked GEMM and keep
//! the k best per row, never materialising the full score matrix.
//!
//! Used for exact inner-product retrieval, exact kNN (through `bias_j = -|b_j|²/2`, since
//! `argmin |a-b|² = argmax a·b - |b|²/2`) and TopK SAE encoding (`bias = b_enc - W_enc b_dec`).

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::{argument, shape, CoreError, Result};
use crate::gram::first_nonfinite_row;
use crate::real::Real;
use crate::topk::TopK;

/// Rows of A per task and rows of B per GEMM tile. Fixed, so results never depend on threads.
const ROW_BLOCK: usize = 256;
const COL_BLOCK: usize = 2048;

/// Options of [`gemm_topk`].
#[derive(Debug, Clone, Copy)]
pub struct GemmTopkOptions<'a, T> {
    /// How many best columns to keep per row.
    pub k: usize,
    /// Added to every score of column j (length = rows of B).
    pub bias: Option<&'a [T]>,
    /// Skip column j == i (A and B are the same matrix, as in a kNN graph).
    pub exclude_self: bool,
}

/// Top-k of `A Bᵀ (+ bias)` per row of A: `(values, indices)`, each `(rows of A) × k`,
/// best first; ties go to the lower column index.
pub fn gemm_topk<T: Real>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    opts: GemmTopkOptions<'_, T>,
) -> Result<(Array2<T>, Array2<i64>)> {
    let (m, d) = a.dim();
    let (n, d2) = b.dim();
    let k = opts.k;
    if d != d2 {
        return Err(shape(
            "B",
            format!("expected {d} columns to match A, got {d2}"),
        ));
    }
    let available = if opts.exclude_self {
        n.saturating_sub(1)
    } else {
        n
    };
    if k < 1 || k > available {
        return Err(argument(
            "k",
            format!("expected 1 <= k <= {available} (candidates per row), got k = {k}"),
        ));
    }
    if let Some(bias) = opts.bias {
        if bias.len() != n {
            return Err(shape(
                "bias",
                format!("expected length {n}, got {}", bias.len()),
            ));
        }
        if let Some(j) = bias.iter().position(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                arg: "bias",
                row: j,
            });
        }
    }
    if let Some(row) = first_nonfinite_row(&b, 0) {
        return Err(CoreError::NonFinite { arg: "B", row });
    }
    if let Some(row) = first_nonfinite_row(&a, 0) {
        return Err(CoreError::NonFinite { arg: "A", row });
    }

    let mut vals = vec![T::ZERO; m * k];
    let mut idx = vec![0i64; m * k];
    let (sa, sb) = (a.strides().to_vec(), b.strides().to_vec());
    vals.par_chunks_mut(ROW_BLOCK * k)
        .zip(idx.par_chunks_mut(ROW_BLOCK * k))
        .enumerate()
        .for_each(|(blk, (vout, iout))| {
            let r0 = blk * ROW_BLOCK;
            let rows = vout.len() / k;
            let ablk = a.slice(s![r0..r0 + rows, ..]);
            let mut tile = vec![T::ZERO; rows * COL_BLOCK];
            let mut best: Vec<TopK> = (0..rows).map(|_| TopK::new(k)).collect();
            for c0 in (0..n).step_by(COL_BLOCK) {
                let cols = COL_BLOCK.min(n - c0);
                let bblk = b.slice(s![c0..c0 + cols, ..]);
                // SAFETY: lhs is the rows×d view `ablk`, rhs the d×cols transpose of `bblk`
                // (addressed through their own strides), dst the rows×cols prefix of `tile`.
                unsafe {
                    gemm::gemm(
                        rows,
                        cols,
                        d,
                        tile.as_mut_ptr(),
                        1,
                        cols as isize,
                        false,
                        ablk.as_ptr(),
                        sa[1],
                        sa[0],
                        bblk.as_ptr(),
                        sb[0],
                        sb[1],
                        T::ZERO,
                        T::ONE,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                for (r, top) in best.iter_mut().enumerate() {
                    let scores = &tile[r * cols..(r + 1) * cols];
                    for (c, &score) in scores.iter().enumerate() {
                        let j = c0 + c;
                        if opts.exclude_self && j == r0 + r {
                            continue;
                        }
                        let score = match opts.bias {
                            Some(bias) => score + bias[j],
                            None => score,
                        };
                        top.push(score.to_f64(), j);
                    }
                }
            }
            let (mut v, mut ix) = (vec![0.0; k], vec![0usize; k]);
            for (r, top) in best.iter().enumerate() {
                top.write_sorted(&mut v, &mut ix);
                for t in 0..k {
                    vout[r * k + t] = T::from_f64(v[t]);
                    iout[r * k + t] = ix[t] as i64;
                }
            }
        });
    let vals = Array2::from_shape_vec((m, k), vals).expect("m*k buffer");
    let idx = Array2::from_shape_vec((m, k), idx).expect("m*k buffer");
    Ok((vals, idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::pseudo;

    #[test]
    fn matches_full_sort() {
        let a = pseudo(150, 17, 1);
        let b = pseudo(4100, 17, 2);
        let bias: Vec<f64> = (0..4100).map(|j| (j % 5) as f64 * 0.01).collect();
        let opts = GemmTopkOptions {
            k: 9,
            bias: Some(&bias),
            exclude_self: false,
        };
        let (v, ix) = gemm_topk(a.view(), b.view(), opts).unwrap();
        let full = a.dot(&b.t());
        for i in 0..150 {
            let mut order: Vec<usize> = (0..4100).collect();
            let sc: Vec<f64> = (0..4100).map(|j| full[[i, j]] + bias[j]).collect();
            order.sort_by(|&x, &y| sc[y].partial_cmp(&sc[x]).unwrap().then(x.cmp(&y)));
            for t in 0..9 {
                assert_eq!(ix[[i, t]] as usize, order[t]);
                assert!((v[[i, t]] - sc[order[t]]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn exclude_self_and_errors() {
        let a = pseudo(70, 5, 3);
        let opts = GemmTopkOptions {
            k: 69,
            bias: None,
            exclude_self: true,
        };
        let (_, ix) = gemm_topk(a.view(), a.view(), opts).unwrap();
        for i in 0..70 {
            assert!(ix.row(i).iter().all(|&j| j as usize != i));
        }
        let opts = GemmTopkOptions {
            k: 70,
            bias: None,
            exclude_self: true,
        };
        assert!(gemm_topk(a.view(), a.view(), opts).is_err());
        let b = pseudo(10, 4, 1);
        let opts = GemmTopkOptions {
            k: 2,
            bias: None,
            exclude_self: false,
        };
        assert!(matches!(
            gemm_topk(a.view(), b.view(), opts),
            Err(CoreError::Shape { arg: "B", .. })
        ));
    }
}
