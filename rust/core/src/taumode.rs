//! arrowspace's taumode λ (before its min-max over items), in the same streaming pass over the
//! edges of L as the Rayleigh energies.
//!
//! Per item x (REFERENCE.md §2), with `w_ab = -(L_ab + L_ba)/2` on every undirected edge:
//! `E = max(xᵀLx / xᵀx, 0)`, `t_ab = w_ab (x_a − x_b)²`,
//! `G = Σ_ordered (t_ab / Σ_ordered t)² = 2 Σ t² / (2 Σ t)²` (each undirected edge counted twice),
//! `τ = max(median(x), 1e-10)` or a fixed τ, and
//! `λ_raw = min(τ, 1)·E/(E + τ) + (1 − min(τ, 1))·G`.
//! The edge loop that builds `xᵀLx` also accumulates `Σ t` and `Σ t²`, so λ costs one pass.

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::energy::{bad_row, check_operator, transpose_block, EdgeList, BLOCK};
use crate::error::{argument, Result};
use crate::real::Real;
use crate::simd::{simd_dispatch, simd_path};

/// Per-row sums of one block: `xᵀLx`, `xᵀx`, `Σ t`, `Σ t²`.
struct Sums {
    num: [f64; BLOCK],
    den: [f64; BLOCK],
    s1: [f64; BLOCK],
    s2: [f64; BLOCK],
}

/// The edge pass over one feature-major block `xt` (F × BLOCK).
#[inline(always)]
fn block_kernel(l: &EdgeList, xt: &[f64], s: &mut Sums) {
    for i in 0..l.n {
        let xi: &[f64; BLOCK] = xt[i * BLOCK..(i + 1) * BLOCK]
            .try_into()
            .expect("block row");
        let di = l.diag[i];
        let mut lx = [0.0f64; BLOCK];
        for r in 0..BLOCK {
            lx[r] = di * xi[r];
        }
        for e in l.starts[i]..l.starts[i + 1] {
            let j = l.nbr[e] as usize;
            let u = l.weight[e]; // L_ij + L_ji
            let w = -0.5 * u;
            let xj: &[f64; BLOCK] = xt[j * BLOCK..(j + 1) * BLOCK]
                .try_into()
                .expect("block row");
            for r in 0..BLOCK {
                lx[r] += u * xj[r];
                let d = xi[r] - xj[r];
                let t = w * (d * d);
                s.s1[r] += t;
                s.s2[r] += t * t;
            }
        }
        for r in 0..BLOCK {
            s.num[r] += xi[r] * lx[r];
            s.den[r] += xi[r] * xi[r];
        }
    }
}

#[inline(always)]
fn process_block<T: Real>(
    x: &ArrayView2<T>,
    l: &EdgeList,
    r0: usize,
    rows: usize,
    xt: &mut [f64],
    s: &mut Sums,
) {
    transpose_block(x, r0, rows, xt);
    block_kernel(l, xt, s);
}

/// Median of the values in `buf` (reordered in place), as NumPy defines it: the mean of the two
/// middle values for an even count.
fn median(buf: &mut [f64]) -> f64 {
    let (len, h) = (buf.len(), buf.len() / 2);
    let (left, mid, _) = buf.select_nth_unstable_by(h, f64::total_cmp);
    let mid = *mid;
    if len % 2 == 1 {
        return mid;
    }
    let below = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (below + mid) / 2.0
}

/// Unscaled taumode λ of every row of `x` on `l`; `tau = None` uses each row's median.
///
/// Cost: the Rayleigh pass plus one multiply-add per edge and row, and an O(F) selection per row
/// for the median. Blocks have a fixed size, so results do not depend on the thread count.
pub fn taumode_raw<T: Real>(x: ArrayView2<T>, l: &EdgeList, tau: Option<f64>) -> Result<Vec<f64>> {
    let (n, f) = x.dim();
    check_operator(f, l)?;
    if let Some(t) = tau {
        if !(t.is_finite() && t > 0.0) {
            return Err(argument(
                "tau",
                format!("expected a positive number, got {t}"),
            ));
        }
    }
    let path = simd_path();
    let mut out = vec![0.0f64; n];
    out.par_chunks_mut(BLOCK).enumerate().try_for_each_init(
        || (vec![0.0f64; f * BLOCK], vec![0.0f64; f]),
        |(xt, row), (blk, chunk)| -> Result<()> {
            let r0 = blk * BLOCK;
            let mut s = Sums {
                num: [0.0; BLOCK],
                den: [0.0; BLOCK],
                s1: [0.0; BLOCK],
                s2: [0.0; BLOCK],
            };
            simd_dispatch!(path, process_block(&x, l, r0, chunk.len(), xt, &mut s));
            for (r, o) in chunk.iter_mut().enumerate() {
                if !s.den[r].is_finite() {
                    return Err(bad_row(&x, r0 + r));
                }
                let e = if s.den[r] > 1e-9 {
                    (s.num[r] / s.den[r]).max(0.0)
                } else {
                    0.0
                };
                let g = if s.s1[r] != 0.0 {
                    s.s2[r] / (2.0 * s.s1[r] * s.s1[r])
                } else {
                    0.0
                };
                let t = match tau {
                    Some(t) => t,
                    None => {
                        for (dst, v) in row.iter_mut().zip(x.row(r0 + r).iter()) {
                            *dst = v.to_f64();
                        }
                        median(row).max(1e-10)
                    }
                };
                let tw = t.min(1.0);
                let ratio = if e + t > 0.0 { e / (e + t) } else { 0.0 };
                *o = tw * ratio + (1.0 - tw) * g;
            }
            Ok(())
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pseudo;
    use ndarray::Array2;

    /// The formula over ordered pairs, straight from a dense L.
    fn dense_raw(x: &Array2<f64>, lmat: &Array2<f64>, tau: Option<f64>) -> Vec<f64> {
        let f = lmat.nrows();
        x.rows()
            .into_iter()
            .map(|xr| {
                let den = xr.dot(&xr);
                let e = if den > 1e-9 {
                    (xr.dot(&lmat.dot(&xr)) / den).max(0.0)
                } else {
                    0.0
                };
                let mut terms = vec![];
                for a in 0..f {
                    for b in 0..f {
                        if a != b && lmat[[a, b]] != 0.0 {
                            let w = -(lmat[[a, b]] + lmat[[b, a]]) / 2.0;
                            terms.push(w * (xr[a] - xr[b]).powi(2));
                        }
                    }
                }
                let total: f64 = terms.iter().sum();
                let g = if total != 0.0 {
                    terms.iter().map(|t| (t / total).powi(2)).sum()
                } else {
                    0.0
                };
                let mut v = xr.to_vec();
                v.sort_by(f64::total_cmp);
                let med = if f % 2 == 1 {
                    v[f / 2]
                } else {
                    (v[f / 2 - 1] + v[f / 2]) / 2.0
                };
                let t = tau.unwrap_or(med.max(1e-10));
                let tw = t.min(1.0);
                tw * e / (e + t) + (1.0 - tw) * g
            })
            .collect()
    }

    #[test]
    fn matches_the_dense_formula() {
        for f in [9usize, 10] {
            let mut lmat = Array2::<f64>::zeros((f, f));
            for i in 0..f {
                for j in [(i + 1) % f, (i * 3 + 2) % f] {
                    if j != i {
                        let w = 0.3 + ((i + j) % 4) as f64 * 0.2;
                        lmat[[i, j]] = -w;
                        lmat[[j, i]] = -w;
                    }
                }
            }
            for i in 0..f {
                lmat[[i, i]] = -lmat.row(i).sum();
            }
            let (mut indptr, mut indices, mut data) = (vec![0i64], vec![], vec![]);
            for i in 0..f {
                for j in 0..f {
                    if lmat[[i, j]] != 0.0 {
                        indices.push(j as i64);
                        data.push(lmat[[i, j]]);
                    }
                }
                indptr.push(indices.len() as i64);
            }
            let el = EdgeList::from_csr(f, &indptr, &indices, &data).unwrap();
            let mut x = pseudo(77, f, 5);
            x.row_mut(3).fill(0.0);
            for tau in [None, Some(0.4), Some(2.0)] {
                let got = taumode_raw(x.view(), &el, tau).unwrap();
                let want = dense_raw(&x, &lmat, tau);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-12, "{g} {w}");
                }
            }
            assert!(taumode_raw(x.view(), &el, Some(0.0)).is_err());
            let x3 = pseudo(4, f + 1, 1);
            assert!(taumode_raw(x3.view(), &el, None).is_err());
        }
    }
}
