//! arrowspace's taumode λ (before its min-max over items), in the same streaming pass over the
//! edges of L as the Rayleigh energies.
//!
//! Per item x (REFERENCE.md §2), with `w_ab = -(L_ab + L_ba)/2` on every undirected edge:
//! `E = max(xᵀLx / xᵀx, 0)`, `t_ab = w_ab (x_a − x_b)²`,
//! `G = Σ_ordered (t_ab / Σ_ordered t)² = 2 Σ t² / (2 Σ t)²` (each undirected edge counted twice),
//! `τ = max(median(x), 1e-10)` or a fixed τ, and
//! `λ_raw = min(τ, 1)·E/(E + τ) + (1 − min(τ, 1))·G`.
//! The edge loop that builds `xᵀLx` also accumulates `Σ t` and `Σ t²` ([`Concentration`], the
//! [`EdgeTerms`] of the energies' one edge pass), so λ costs one pass.

use std::sync::OnceLock;

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::energy::{
    check_operator, check_row, edge_pass, energy, out_of_range, pass_block, pass_scaled, pow2,
    row_scale, EdgeList, EdgeTerms, Sums, BLOCK,
};
use crate::error::{argument, Result};
use crate::real::Real;
use crate::simd::{simd_dispatch, simd_path, SimdPath};

/// taumode's terms of the edge pass: per row `Σ t` and `Σ t²`, `t = w (x_a − x_b)²` with
/// `w = −(L_ab + L_ba)/2` on each undirected edge.
#[derive(Clone, Copy)]
struct Concentration {
    s1: [f64; BLOCK],
    s2: [f64; BLOCK],
}

impl Concentration {
    fn new() -> Self {
        Self {
            s1: [0.0; BLOCK],
            s2: [0.0; BLOCK],
        }
    }

    /// `G = 2 Σ t² / (2 Σ t)²` of lane r (0 without edge energy).
    #[inline(always)]
    fn g(&self, r: usize) -> f64 {
        if self.s1[r] != 0.0 {
            self.s2[r] / (2.0 * self.s1[r] * self.s1[r])
        } else {
            0.0
        }
    }

    /// Whether lane r's G came from sums inside f64's range: finite, and `Σ t²` and `(Σ t)²`
    /// normal numbers wherever `Σ t != 0` (a subnormal or zero one has lost its bits).
    #[inline(always)]
    fn in_range(&self, r: usize) -> bool {
        let (s1, s2) = (self.s1[r], self.s2[r]);
        s1.is_finite()
            && s2.is_finite()
            && (s1 == 0.0 || ((2.0 * s1 * s1).is_normal() && s2.is_normal()))
    }
}

impl EdgeTerms for Concentration {
    type Weight = f64;
    #[inline(always)]
    fn weight(u: f64) -> f64 {
        -0.5 * u
    }
    #[inline(always)]
    fn lane(&mut self, r: usize, w: f64, xi: f64, xj: f64) {
        let d = xi - xj;
        let t = w * (d * d);
        self.s1[r] += t;
        self.s2[r] += t * t;
    }
}

/// Rows with `xᵀx` below this (every `|x|` under ~1e-60) are computed again scaled: the squares
/// of their differences may have underflowed while `Σ t` looks normal.
const TINY_ROW: f64 = 1e-120;

/// Per row, the largest `t` over the weighted edges, as `log2 |t| = log2 |w| + 2·log2 |x_a − x_b|`
/// (no product is formed, so nothing over- or underflows), and the `log2 |x_a − x_b|` of its
/// edge: where a rescued row's `t` are scaled from.
#[derive(Clone, Copy)]
struct Peak {
    lt: [f64; BLOCK],
    ld: [f64; BLOCK],
}

impl Peak {
    fn new() -> Self {
        Self {
            lt: [f64::NEG_INFINITY; BLOCK],
            ld: [0.0; BLOCK],
        }
    }

    /// The powers of two `(c, s)` of lane r for [`Rescaled`]: the peak edge's difference times
    /// `c` lies in [1, 2) and its `w` times `s` near 1, so the largest `t` comes out near 1.
    fn scales(&self, r: usize) -> (f64, f64) {
        if !self.lt[r].is_finite() {
            return (1.0, 1.0); // no weighted edge with a difference: every t is 0
        }
        let (j, k) = (self.ld[r].floor(), self.lt[r].floor());
        (pow2(-j), pow2(2.0 * j - k))
    }
}

impl EdgeTerms for Peak {
    type Weight = f64; // log2 |w|: -inf for an unweighted edge, which never peaks
    #[inline(always)]
    fn weight(u: f64) -> f64 {
        (0.5 * u).abs().log2()
    }
    #[inline(always)]
    fn lane(&mut self, r: usize, lw: f64, xi: f64, xj: f64) {
        let ld = (xi - xj).abs().log2();
        let lt = lw + 2.0 * ld;
        if lt > self.lt[r] {
            self.lt[r] = lt;
            self.ld[r] = ld;
        }
    }
}

/// [`Concentration`] of a rescued row: `t = (w·s)·((x_a − x_b)·c)²` with the row's powers of two
/// from [`Peak::scales`], i.e. `t·s·c²` exactly (G is invariant under it), and unweighted edges
/// skipped (their scaled difference could overflow, and their t is 0).
#[derive(Clone, Copy)]
struct Rescaled {
    c: [f64; BLOCK],
    s: [f64; BLOCK],
    sums: Concentration,
}

impl EdgeTerms for Rescaled {
    type Weight = f64;
    #[inline(always)]
    fn weight(u: f64) -> f64 {
        -0.5 * u
    }
    #[inline(always)]
    fn lane(&mut self, r: usize, w: f64, xi: f64, xj: f64) {
        if w == 0.0 {
            return;
        }
        let d = (xi - xj) * self.c[r];
        let t = (w * self.s[r]) * (d * d);
        self.sums.s1[r] += t;
        self.sums.s2[r] += t * t;
    }
}

/// Median of the values in `buf` (reordered in place), as NumPy defines it: the mean of the two
/// middle values for an even count (halved first where their sum would overflow).
fn median(buf: &mut [f64]) -> f64 {
    let (len, h) = (buf.len(), buf.len() / 2);
    let (left, mid, _) = buf.select_nth_unstable_by(h, f64::total_cmp);
    let mid = *mid;
    if len % 2 == 1 {
        return mid;
    }
    let below = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = (below + mid) / 2.0;
    if m.is_finite() {
        m
    } else {
        below / 2.0 + mid / 2.0
    }
}

/// `min(τ, 1)·E/(E + τ) + (1 − min(τ, 1))·G`; where `E + τ` overflows, `E/(E + τ)` is taken
/// as `1/(1 + τ/E)`.
#[inline(always)]
fn lambda(e: f64, g: f64, t: f64) -> f64 {
    let tw = t.min(1.0);
    let sum = e + t;
    let ratio = if !sum.is_finite() {
        1.0 / (1.0 + t / e)
    } else if sum > 0.0 {
        e / sum
    } else {
        0.0
    };
    tw * ratio + (1.0 - tw) * g
}

/// Unscaled taumode λ of every row of `x` on `l`; `tau = None` uses each row's median.
///
/// Cost: the Rayleigh pass plus one multiply-add per edge and row, and an O(F) selection per row
/// for the median. Blocks have a fixed size, so results do not depend on the thread count.
///
/// Finite input gives a finite λ: a row whose sums leave f64's range (`x` beyond ~1e154 or L
/// beyond ~1e150 overflow `Σ t²`; tiny ones underflow it) is computed again on the row and L
/// scaled by powers of two, and its `t` by two more that bring its largest `t` near 1. E is
/// invariant under the row's scale and linear in L's, G invariant under all of them, and such
/// scalings are exact, so a row that did not overflow would give the same bits. τ = median(x)
/// comes from the unscaled row. A row whose G still cannot be formed (its `t` spanning more than
/// f64's range) is an error naming `X`.
pub fn taumode_raw<T: Real>(x: ArrayView2<T>, l: &EdgeList, tau: Option<f64>) -> Result<Vec<f64>> {
    taumode_raw_on(x, l, tau, simd_path())
}

/// [`taumode_raw`] on a given SIMD path (every path gives the same bits).
pub(crate) fn taumode_raw_on<T: Real>(
    x: ArrayView2<T>,
    l: &EdgeList,
    tau: Option<f64>,
    path: SimdPath,
) -> Result<Vec<f64>> {
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
    // without a weighted edge every t is 0: Σ t = 0 says nothing about underflow
    let weighted = l.weight.iter().any(|&u| u != 0.0);
    let unit = OnceLock::new();
    let mut out = vec![0.0f64; n];
    out.par_chunks_mut(BLOCK).enumerate().try_for_each_init(
        || (vec![0.0f64; f * BLOCK], vec![0.0f64; f]),
        |(xt, row), (blk, chunk)| -> Result<()> {
            let (r0, rows) = (blk * BLOCK, chunk.len());
            let mut q = Sums::new(Concentration::new());
            simd_dispatch!(path, pass_block(&x, l, (r0, rows), xt, &mut q));
            let c = &q.extra;
            let mut tau_of = |r: usize| match tau {
                Some(t) => t,
                None => {
                    for (dst, v) in row.iter_mut().zip(x.row(r0 + r).iter()) {
                        *dst = v.to_f64();
                    }
                    median(row).max(1e-10)
                }
            };
            // rows whose sums left f64's range are computed again, scaled (0: not this row)
            let mut again = [0.0f64; BLOCK];
            for (r, o) in chunk.iter_mut().enumerate() {
                // Σ t = 0, or a row so small that its (x_a − x_b)² may have underflowed (but
                // not a zero row, whose λ is exact)
                let underflow = ((c.s1[r] == 0.0 && weighted) || q.den[r] < TINY_ROW)
                    && !(q.den[r] == 0.0 && x.row(r0 + r).iter().all(|&v| v == T::ZERO));
                if out_of_range(q.num[r], q.den[r]) || !c.in_range(r) || underflow {
                    check_row(&x, r0 + r)?;
                    again[r] = row_scale(&x, r0 + r);
                    continue;
                }
                // E beyond f64 (only from a huge L) counts as inf: E/(E + τ) = 1
                let e = energy(&q, &q, r, l.scale).map_or(f64::INFINITY, |e| e.max(0.0));
                *o = lambda(e, c.g(r), tau_of(r));
            }
            if again.iter().all(|&s| s == 0.0) {
                return Ok(());
            }
            // pass 1 on the row times `again` and L times a power of two: E, and each row's
            // largest t; pass 2 on the same block: Σ t, Σ t² with that t brought near 1
            let lu = unit.get_or_init(|| l.unit());
            let mut q1 = Sums::new(Peak::new());
            pass_scaled(&x, lu, (r0, rows), xt, &again, &mut q1);
            let mut rescaled = Rescaled {
                c: [1.0; BLOCK],
                s: [1.0; BLOCK],
                sums: Concentration::new(),
            };
            for r in (0..rows).filter(|&r| again[r] != 0.0) {
                (rescaled.c[r], rescaled.s[r]) = q1.extra.scales(r);
            }
            let mut q2 = Sums::new(rescaled);
            edge_pass(lu, xt, &mut q2);
            let c2 = &q2.extra.sums;
            for (r, o) in chunk.iter_mut().enumerate() {
                if again[r] == 0.0 {
                    continue;
                }
                if !c2.in_range(r) {
                    return Err(argument(
                        "X",
                        format!(
                            "row {}: taumode λ cannot be computed in float64 (its terms \
                             w (x_a − x_b)² on the edges of L span more than its range)",
                            r0 + r
                        ),
                    ));
                }
                let e = energy(&q, &q1, r, lu.scale).map_or(f64::INFINITY, |e| e.max(0.0));
                *o = lambda(e, c2.g(r), tau_of(r));
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
            let (lmat, el) = laplacian(f, 1.0);
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

    /// A Laplacian of `f` features (two neighbours each) as a dense matrix and its EdgeList.
    fn laplacian(f: usize, scale: f64) -> (Array2<f64>, EdgeList) {
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
        lmat.mapv_inplace(|v| v * scale);
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
        (lmat, el)
    }

    #[test]
    fn every_simd_path_gives_the_same_bits() {
        // L times 2^1000 rescues every row (Σ t² overflows); row 40 times 2^700 too on plain L
        let (_, el) = laplacian(150, 1.0);
        let (_, el_big) = laplacian(150, 2f64.powi(1000));
        let mut x = pseudo(203, 150, 9);
        x.row_mut(7).fill(0.0);
        let x32 = x.mapv(|v| v as f32);
        x.row_mut(40).mapv_inplace(|v| v * 2f64.powi(700));
        for (l, tau) in [(&el, None), (&el, Some(0.3)), (&el_big, None)] {
            let want = taumode_raw_on(x.view(), l, tau, SimdPath::Scalar).unwrap();
            let want32 = taumode_raw_on(x32.view(), l, tau, SimdPath::Scalar).unwrap();
            for p in SimdPath::ALL.into_iter().filter(|p| p.supported()) {
                assert_eq!(taumode_raw_on(x.view(), l, tau, p).unwrap(), want);
                assert_eq!(taumode_raw_on(x32.view(), l, tau, p).unwrap(), want32);
            }
        }
    }

    #[test]
    fn rows_and_operators_beyond_f64_keep_the_bits_of_the_formula() {
        let (lmat, el) = laplacian(10, 1.0);
        let x = pseudo(70, 10, 5);
        // a fixed τ: E and G are invariant under a power-of-two row scale (x² and t² overflow)
        let want = taumode_raw(x.view(), &el, Some(0.4)).unwrap();
        for k in [100, 300, 600, 1000] {
            let xs = x.mapv(|v| v * 2f64.powi(k));
            assert_eq!(
                taumode_raw(xs.view(), &el, Some(0.4)).unwrap(),
                want,
                "2^{k}"
            );
        }
        // L and τ times 2^±1000 with τ >= 1: λ = E/(E + τ) keeps its bits (G's sums overflow)
        let want = taumode_raw(x.view(), &el, Some(1.5)).unwrap();
        for k in [1000, -1000] {
            let (_, els) = laplacian(10, 2f64.powi(k));
            let got = taumode_raw(x.view(), &els, Some(1.5 * 2f64.powi(k))).unwrap();
            if k > 0 {
                assert_eq!(got, want, "L x 2^{k}");
            } else {
                assert!(got.iter().all(|v| v.is_finite()), "L x 2^{k}: {got:?}");
            }
        }
        // tiny rows (xᵀx <= 1e-9: E = 0 by definition) and a tiny L: λ = (1 - 0.4)·G, G unchanged
        let g: Vec<f64> = dense_raw(&x, &lmat, Some(1e-300)); // τ ≈ 0: λ = G
        let (_, tiny_l) = laplacian(10, 1e-300);
        for (xs, l) in [(x.mapv(|v| v * 1e-170), &el), (x.clone(), &tiny_l)] {
            let got = taumode_raw(xs.view(), l, Some(0.4)).unwrap();
            for (r, (a, b)) in got.iter().zip(&g).enumerate() {
                // E/(E + τ) is 0 (tiny rows) or about 1e-300 (tiny L): nothing next to 0.6·G
                assert!((a - 0.6 * b).abs() <= 1e-12 * b, "row {r}: {a} {b}");
            }
        }
    }

    #[test]
    fn weights_far_apart_and_the_median_and_ratio_beyond_f64() {
        // a path 0 - 1 - 2 with weights 1 and 1e-300: on x = (0, 0, 1) only the light edge has
        // t = 1e-300 (t² underflows), so G = 2t² / (2t)² = 0.5 once t is rescaled
        let el = EdgeList::from_csr(
            3,
            &[0, 2, 5, 7],
            &[0, 1, 0, 1, 2, 1, 2],
            &[1.0, -1.0, -1.0, 1.0 + 1e-300, -1e-300, -1e-300, 1e-300],
        )
        .unwrap();
        let x = Array2::from_shape_vec((1, 3), vec![0.0, 0.0, 1.0]).unwrap();
        let got = taumode_raw(x.view(), &el, Some(1e-300)).unwrap()[0];
        assert!((got - 0.5).abs() < 1e-15, "{got}");

        let mut v = [1.5e308, -1.0, 1.7e308, 1.6e308];
        assert!((median(&mut v) - 1.55e308).abs() < 1e293);
        assert_eq!(median(&mut [1.0, 3.0, -2.0, 8.0]), 2.0);
        // E + τ overflows: E/(E + τ) = 1/(1 + τ/E)
        assert!((lambda(1e308, 0.25, 1.7e308) - 1.0 / 2.7).abs() < 1e-15);
        assert_eq!(lambda(f64::INFINITY, 0.25, 0.5), 0.5 + 0.5 * 0.25);
    }
}
