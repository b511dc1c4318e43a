//! λ-aware search (arrowspace's score) as an epilogue of the GEMM + top-k primitive.
//!
//! For a query q and an item x with spectral values λ_q and λ_x the score is
//! `τ·cos(q, x) + (1 − τ)·(1 − min(|λ_q − λ_x|, 1))`. The cosine comes from the primitive's dot
//! product times both inverse norms, so neither side is normalised (nor copied) beforehand, and
//! the λ term is added per candidate inside the blocked walk (the [`Epilogue`] `LambdaScore`): no
//! score vector of length N exists.

use ndarray::{Array2, ArrayView2};

use crate::check::{check_finite, check_finite_slice, check_len};
use crate::error::{argument, shape, Result};
use crate::gemm_topk::{blocked_topk, tops, Epilogue};
use crate::real::Real;
use crate::topk::TopK;

/// Options of [`lambda_topk`]: the per-row and per-item terms of the score.
#[derive(Debug, Clone, Copy)]
pub struct LambdaTopkOptions<'a> {
    /// How many best items to keep per query.
    pub k: usize,
    /// Weight of the cosine, in [0, 1]; `1` is exact cosine search.
    pub tau: f64,
    /// `1/|q|` per query (0 for a zero query: its cosine with everything is 0).
    pub query_inv_norm: &'a [f64],
    /// λ per query.
    pub query_lambda: &'a [f64],
    /// `1/|x|` per item (0 for a zero item).
    pub item_inv_norm: &'a [f64],
    /// λ per item.
    pub item_lambda: &'a [f64],
    /// Only items with `lo <= λ <= hi` are candidates.
    pub band: Option<(f64, f64)>,
}

/// Top-k items per query by arrowspace's λ-aware score: `(scores f64, item indices)`, each
/// `(queries) × k`, best first, ties to the lower index.
pub fn lambda_topk<T: Real>(
    q: ArrayView2<T>,
    items: ArrayView2<T>,
    opts: LambdaTopkOptions<'_>,
) -> Result<(Array2<f64>, Array2<i64>)> {
    let (m, d) = q.dim();
    let (n, d2) = items.dim();
    if d != d2 {
        return Err(shape(
            "items",
            format!("expected {d} columns to match the queries, got {d2}"),
        ));
    }
    if !(0.0..=1.0).contains(&opts.tau) {
        return Err(argument(
            "tau",
            format!("expected 0 <= tau <= 1, got {}", opts.tau),
        ));
    }
    check_len(opts.query_inv_norm, m, "query_inv_norm")?;
    check_len(opts.query_lambda, m, "query_lambda")?;
    check_len(opts.item_inv_norm, n, "item_inv_norm")?;
    check_len(opts.item_lambda, n, "item_lambda")?;
    for (v, name) in [
        (opts.query_inv_norm, "query_inv_norm"),
        (opts.query_lambda, "query_lambda"),
        (opts.item_inv_norm, "item_inv_norm"),
        (opts.item_lambda, "item_lambda"),
    ] {
        check_finite_slice(v, name)?;
    }
    let (lo, hi) = opts.band.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
    if lo.is_nan() || hi.is_nan() || lo > hi {
        return Err(argument(
            "band",
            format!("expected lo <= hi, got ({lo}, {hi})"),
        ));
    }
    let in_band = |l: f64| lo <= l && l <= hi;
    let available = match opts.band {
        Some(_) => opts.item_lambda.iter().filter(|&&l| in_band(l)).count(),
        None => n,
    };
    if opts.k < 1 || opts.k > available {
        return Err(argument(
            "k",
            format!(
                "expected 1 <= k <= {available} (items{}), got k = {}",
                if opts.band.is_some() {
                    " in the band"
                } else {
                    ""
                },
                opts.k
            ),
        ));
    }
    check_finite(&items, "items")?;
    check_finite(&q, "Q")?;

    let ep = LambdaScore {
        k: opts.k,
        tau: opts.tau,
        rest: 1.0 - opts.tau,
        query_inv_norm: opts.query_inv_norm,
        query_lambda: opts.query_lambda,
        item_inv_norm: opts.item_inv_norm,
        item_lambda: opts.item_lambda,
        band: opts.band,
    };
    let (vals, idx) = blocked_topk(q, items, opts.k, &ep, |v| v)?;
    let vals = Array2::from_shape_vec((m, opts.k), vals).expect("m*k buffer");
    Ok((vals, idx))
}

/// The λ-aware epilogue: each query's k best `τ·cos + (1 − τ)·(1 − min(|λ_q − λ_x|, 1))` over
/// the items in the band.
struct LambdaScore<'a> {
    k: usize,
    tau: f64,
    /// `1 − τ`.
    rest: f64,
    query_inv_norm: &'a [f64],
    query_lambda: &'a [f64],
    item_inv_norm: &'a [f64],
    item_lambda: &'a [f64],
    band: Option<(f64, f64)>,
}

impl<T: Real> Epilogue<T> for LambdaScore<'_> {
    type State = Vec<TopK>;
    const PACK_B: bool = false;

    fn state(&self, rows: usize) -> Vec<TopK> {
        tops(rows, self.k)
    }

    #[inline(always)]
    fn scan(&self, best: &mut Vec<TopK>, r0: usize, c0: usize, cols: usize, tile: &[T]) {
        let (qin, ql) = (self.query_inv_norm, self.query_lambda);
        let (xin, xl) = (self.item_inv_norm, self.item_lambda);
        for (r, top) in best.iter_mut().enumerate() {
            let i = r0 + r;
            for (c, &dot) in tile[r * cols..(r + 1) * cols].iter().enumerate() {
                let j = c0 + c;
                let lj = xl[j];
                if let Some((lo, hi)) = self.band {
                    if !(lo <= lj && lj <= hi) {
                        continue;
                    }
                }
                let cos = dot.to_f64() * qin[i] * xin[j];
                top.push(
                    self.tau * cos + self.rest * (1.0 - (ql[i] - lj).abs().min(1.0)),
                    j,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::testutil::pseudo;

    fn inv_norms(x: &Array2<f64>) -> Vec<f64> {
        x.rows()
            .into_iter()
            .map(|r| {
                let s = r.dot(&r).sqrt();
                if s > 0.0 {
                    1.0 / s
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn matches_full_sort_with_band() {
        let q = pseudo(40, 11, 1);
        let mut x = pseudo(4500, 11, 2);
        x.row_mut(17).fill(0.0); // a zero item: cosine 0
        let ql: Vec<f64> = (0..40).map(|i| (i % 7) as f64 / 7.0).collect();
        let xl: Vec<f64> = (0..4500).map(|j| ((j * 13) % 101) as f64 / 100.0).collect();
        let (qin, xin) = (inv_norms(&q), inv_norms(&x));
        for band in [None, Some((0.2, 0.55))] {
            let opts = LambdaTopkOptions {
                k: 9,
                tau: 0.7,
                query_inv_norm: &qin,
                query_lambda: &ql,
                item_inv_norm: &xin,
                item_lambda: &xl,
                band,
            };
            let (v, ix) = lambda_topk(q.view(), x.view(), opts).unwrap();
            let dots = q.dot(&x.t());
            for i in 0..40 {
                let sc: Vec<f64> = (0..4500)
                    .map(|j| {
                        0.7 * dots[[i, j]] * qin[i] * xin[j]
                            + 0.3 * (1.0 - (ql[i] - xl[j]).abs().min(1.0))
                    })
                    .collect();
                let mut order: Vec<usize> = (0..4500)
                    .filter(|&j| band.is_none_or(|(lo, hi)| lo <= xl[j] && xl[j] <= hi))
                    .collect();
                order.sort_by(|&a, &b| sc[b].partial_cmp(&sc[a]).unwrap().then(a.cmp(&b)));
                for t in 0..9 {
                    assert_eq!(ix[[i, t]] as usize, order[t]);
                    assert!((v[[i, t]] - sc[order[t]]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn validates_arguments() {
        let q = pseudo(3, 4, 1);
        let x = pseudo(5, 4, 2);
        let (qn, xn) = (vec![1.0; 3], vec![1.0; 5]);
        let xl = vec![0.0, 0.1, 0.2, 0.3, 0.9];
        let opts = LambdaTopkOptions {
            k: 2,
            tau: 0.5,
            query_inv_norm: &qn,
            query_lambda: &qn,
            item_inv_norm: &xn,
            item_lambda: &xl,
            band: None,
        };
        assert!(lambda_topk(q.view(), x.view(), opts).is_ok());
        let bad = |o: LambdaTopkOptions<'_>| lambda_topk(q.view(), x.view(), o).unwrap_err();
        let arg = |e: CoreError| match e {
            CoreError::Argument { arg, .. } | CoreError::Shape { arg, .. } => arg,
            CoreError::NonFinite { arg, .. } => arg,
            CoreError::Threads(_) => "threads",
        };
        assert_eq!(arg(bad(LambdaTopkOptions { tau: 1.5, ..opts })), "tau");
        assert_eq!(arg(bad(LambdaTopkOptions { k: 6, ..opts })), "k");
        let band = Some((0.05, 0.25));
        assert_eq!(arg(bad(LambdaTopkOptions { k: 3, band, ..opts })), "k");
        assert!(lambda_topk(q.view(), x.view(), LambdaTopkOptions { band, ..opts }).is_ok());
        let band = Some((0.5, 0.1));
        assert_eq!(arg(bad(LambdaTopkOptions { band, ..opts })), "band");
        assert_eq!(
            arg(bad(LambdaTopkOptions {
                item_lambda: &qn,
                ..opts
            })),
            "item_lambda"
        );
        let x3 = pseudo(5, 3, 2);
        assert_eq!(
            arg(lambda_topk(q.view(), x3.view(), opts).unwrap_err()),
            "items"
        );
        let mut qnan = q.clone();
        qnan[[1, 2]] = f64::NAN;
        assert_eq!(
            lambda_topk(qnan.view(), x.view(), opts).unwrap_err(),
            CoreError::NonFinite { arg: "Q", row: 1 }
        );
    }
}
