//! Threshold SAE encode (ReLU, JumpReLU, BatchTopK saved as JumpReLU) to CSR, on the blocked walk
//! of the GEMM + top-k primitive (`walk`) with a threshold [`Epilogue`] instead of the top-k.
//!
//! `pre = W_enc (x - b_dec) + b_enc`; latent j is active where `pre_j > max(threshold_j, 0)` and
//! keeps `pre_j` (JumpReLU as Gemma Scope and SAELens define it; a zero threshold is plain ReLU).
//! Each task scores `ROW_BLOCK` rows against `COL_BLOCK` latents at a time, so the dense
//! `rows × n_latents` pre-activations are never held; the active pairs go straight into the rows'
//! CSR lists, columns ascending.

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::check::{check_finite, check_finite_slice, check_len};
use crate::error::{shape, Result};
use crate::gemm_topk::{any_at_least, walk, Epilogue, ROW_BLOCK, SCAN};
use crate::real::Real;

/// The threshold epilogue: appends each row's active `(latent, value)` pairs to its list, columns
/// ascending.
struct Threshold<'a, T> {
    bias: &'a [T],
    /// `max(threshold, 0)` per latent.
    cut: &'a [T],
}

impl<T: Real> Epilogue<T> for Threshold<'_, T> {
    type State = Vec<Vec<(i64, T)>>;
    // the packed f32 AVX-512 tile: the threshold encode's speed target
    const PACK_B: bool = true;

    fn state(&self, rows: usize) -> Self::State {
        vec![Vec::new(); rows]
    }

    /// One tile of pre-activations (columns `c0..c0 + cols`). Active latents are rare, so the
    /// branch-free vector test of [`any_at_least`] on each chunk of [`SCAN`] columns decides
    /// whether to look inside (`>=`: a chunk whose best equals its cut is looked into, and the
    /// loop keeps only `> cut`).
    #[inline(always)]
    fn scan(&self, lists: &mut Self::State, _r0: usize, c0: usize, cols: usize, tile: &[T]) {
        let (bias, cut) = (&self.bias[c0..c0 + cols], &self.cut[c0..c0 + cols]);
        for (r, list) in lists.iter_mut().enumerate() {
            let row = &tile[r * cols..(r + 1) * cols];
            for c in (0..cols).step_by(SCAN) {
                let e = (c + SCAN).min(cols);
                if !any_at_least(&row[c..e], &bias[c..e], cut[c..e].iter().copied()) {
                    continue;
                }
                for cc in c..e {
                    let v = row[cc] + bias[cc];
                    if v > cut[cc] {
                        list.push(((c0 + cc) as i64, v));
                    }
                }
            }
        }
    }
}

/// A CSR matrix: `indptr` (rows + 1), `indices` and `data` (nnz each), columns ascending per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr<T> {
    pub indptr: Vec<i64>,
    pub indices: Vec<i64>,
    pub data: Vec<T>,
}

/// `b_enc - W_enc b_dec` (or `b_enc`): the per-latent bias that folds the input centring into the GEMM.
pub(crate) fn folded_bias<T: Real>(
    w_enc: &ArrayView2<T>,
    b_enc: &[T],
    b_dec: Option<&[T]>,
) -> Result<Vec<T>> {
    let (n, d) = w_enc.dim();
    check_len(b_enc, n, "b_enc")?;
    check_finite_slice(b_enc, "b_enc")?;
    Ok(match b_dec {
        None => b_enc.to_vec(),
        Some(bd) => {
            check_len(bd, d, "b_dec")?;
            check_finite_slice(bd, "b_dec")?;
            (0..n)
                .into_par_iter()
                .map(|j| {
                    let dot: f64 = w_enc
                        .row(j)
                        .iter()
                        .zip(bd)
                        .map(|(w, b)| w.to_f64() * b.to_f64())
                        .sum();
                    T::from_f64(b_enc[j].to_f64() - dot)
                })
                .collect()
        }
    })
}

/// Threshold encode of the rows of `x` into CSR (`rows × n_latents`).
pub fn sae_encode_threshold<T: Real>(
    x: ArrayView2<T>,
    w_enc: ArrayView2<T>,
    b_enc: &[T],
    b_dec: Option<&[T]>,
    threshold: &[T],
) -> Result<Csr<T>> {
    let (n, d) = w_enc.dim();
    if x.ncols() != d {
        return Err(shape(
            "X",
            format!(
                "expected {d} columns (d_in of the model), got {}",
                x.ncols()
            ),
        ));
    }
    check_len(threshold, n, "threshold")?;
    check_finite_slice(threshold, "threshold")?;
    check_finite(&w_enc, "W_enc")?;
    let bias = folded_bias(&w_enc, b_enc, b_dec)?;
    check_finite(&x, "X")?;
    // a latent fires above max(threshold, 0): JumpReLU's mask times the ReLU
    let cut: Vec<T> = threshold
        .iter()
        .map(|&t| if t > T::ZERO { t } else { T::ZERO })
        .collect();
    let ep = Threshold {
        bias: &bias,
        cut: &cut,
    };
    let mut lists: Vec<Vec<Vec<(i64, T)>>> = vec![Vec::new(); x.nrows().div_ceil(ROW_BLOCK)];
    walk(x, w_enc, &ep, lists.par_iter_mut(), |state, slot| {
        *slot = state
    });
    let m = x.nrows();
    let blocks: Vec<(Vec<i64>, Vec<i64>, Vec<T>)> = lists
        .into_par_iter()
        .map(|lists| {
            let rows = lists.len();
            let mut counts = Vec::with_capacity(rows);
            let nnz: usize = lists.iter().map(Vec::len).sum();
            let (mut ix, mut dv) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
            for list in lists {
                counts.push(list.len() as i64);
                for (j, v) in list {
                    ix.push(j);
                    dv.push(v);
                }
            }
            (counts, ix, dv)
        })
        .collect();
    let nnz: usize = blocks.iter().map(|b| b.1.len()).sum();
    let mut indptr = Vec::with_capacity(m + 1);
    indptr.push(0i64);
    let (mut indices, mut data) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    for (counts, ix, dv) in blocks {
        for c in counts {
            indptr.push(indptr.last().copied().unwrap_or(0) + c);
        }
        indices.extend(ix);
        data.extend(dv);
    }
    Ok(Csr {
        indptr,
        indices,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::testutil::pseudo;

    #[test]
    fn matches_dense_pre_activations() {
        // n > COL_BLOCK and rows > ROW_BLOCK: several tiles and tasks
        let x = pseudo(300, 9, 1);
        let w = pseudo(2100, 9, 2);
        let be: Vec<f64> = (0..2100).map(|j| (j % 7) as f64 * 0.01 - 0.03).collect();
        let bd: Vec<f64> = (0..9).map(|j| j as f64 * 0.02).collect();
        let th: Vec<f64> = (0..2100).map(|j| (j % 3) as f64 * 0.05 - 0.05).collect();
        let csr = sae_encode_threshold(x.view(), w.view(), &be, Some(&bd), &th).unwrap();
        assert_eq!(csr.indptr.len(), 301);
        for i in 0..300 {
            let mut want = Vec::new();
            for j in 0..2100 {
                let s: f64 = (0..9).map(|c| w[[j, c]] * (x[[i, c]] - bd[c])).sum::<f64>() + be[j];
                if s > th[j].max(0.0) {
                    want.push((j as i64, s));
                }
            }
            let (a, b) = (csr.indptr[i] as usize, csr.indptr[i + 1] as usize);
            assert_eq!(b - a, want.len(), "row {i}");
            for (p, (j, s)) in (a..b).zip(want) {
                assert_eq!(csr.indices[p], j);
                assert!((csr.data[p] - s).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn errors_name_the_arguments() {
        let x = pseudo(4, 3, 1);
        let mut w = pseudo(5, 3, 2);
        let be = vec![0.0; 5];
        let e = sae_encode_threshold(x.view(), w.view(), &be, None, &[0.0; 4]).unwrap_err();
        assert!(matches!(
            e,
            CoreError::Shape {
                arg: "threshold",
                ..
            }
        ));
        let e = sae_encode_threshold(
            x.view(),
            w.view(),
            &be,
            None,
            &[0.0, 0.0, f64::NAN, 0.0, 0.0],
        );
        assert_eq!(
            e.unwrap_err(),
            CoreError::NonFinite {
                arg: "threshold",
                row: 2
            }
        );
        w[[1, 0]] = f64::INFINITY;
        let e = sae_encode_threshold(x.view(), w.view(), &be, None, &[0.0; 5]);
        assert_eq!(
            e.unwrap_err(),
            CoreError::NonFinite {
                arg: "W_enc",
                row: 1
            }
        );
        let x2 = pseudo(4, 2, 1);
        let e = sae_encode_threshold(x2.view(), w.view(), &be, None, &[0.0; 5]);
        assert!(matches!(e.unwrap_err(), CoreError::Shape { arg: "X", .. }));
        let empty = pseudo(0, 3, 1);
        w[[1, 0]] = 0.0;
        let csr = sae_encode_threshold(empty.view(), w.view(), &be, None, &[0.0; 5]).unwrap();
        assert_eq!(csr.indptr, vec![0]);
    }
}
