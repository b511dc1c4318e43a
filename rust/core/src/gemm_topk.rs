//! THE primitive: score every row of A against every row of B with a blocked GEMM and keep the k
//! best per row, never materialising the full score matrix.
//!
//! Used for exact inner-product retrieval, exact kNN ([`crate::knn_sqdist`], through
//! `bias_j = -|b_j|²/2`, since `argmin |a-b|² = argmax a·b - |b|²/2`) and TopK SAE encoding
//! (`bias = b_enc - W_enc b_dec`); the threshold SAE encode and the λ-aware search are the other two
//! [`Epilogue`]s of the same blocked [`walk`].

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

use crate::check::{check_finite, check_finite_slice, check_len};
use crate::error::{argument, buffer, shape, Result};
use crate::real::Real;
use crate::simd::{simd_dispatch, simd_path, SimdPath};
use crate::tile::Prepared;
use crate::topk::TopK;

/// Rows of A per task and rows of B per GEMM tile. Fixed, so results never depend on threads.
pub(crate) const ROW_BLOCK: usize = 256;
pub(crate) const COL_BLOCK: usize = 2048;
const _: () = assert!(
    COL_BLOCK.is_multiple_of(32),
    "packed tiles start on 32-column panels"
);

/// The caller's names for the primitive's arguments, used in error messages (a kernel built on
/// the primitive passes its own, e.g. `X`, `W_enc`, `b_enc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgNames {
    pub a: &'static str,
    pub b: &'static str,
    pub bias: &'static str,
    /// What the rows of B are, in the message of a bad `k` ("expected 1 <= k <= n (…)").
    pub candidates: &'static str,
}

impl Default for ArgNames {
    fn default() -> Self {
        Self {
            a: "A",
            b: "B",
            bias: "bias",
            candidates: "candidates per row",
        }
    }
}

/// Options of [`gemm_topk`].
#[derive(Debug, Clone, Copy)]
pub struct GemmTopkOptions<'a, T> {
    /// How many best columns to keep per row.
    pub k: usize,
    /// Added to every score of column j (length = rows of B).
    pub bias: Option<&'a [T]>,
    /// Skip column j == i (A and B are the same matrix, as in a kNN graph).
    pub exclude_self: bool,
    /// Argument names for error messages.
    pub names: ArgNames,
}

impl<'a, T> GemmTopkOptions<'a, T> {
    /// Keep `k` per row, no bias, self included, default names.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            bias: None,
            exclude_self: false,
            names: ArgNames::default(),
        }
    }
}

/// Top-k of `A Bᵀ (+ bias)` per row of A: `(values, indices)`, each `(rows of A) × k`,
/// best first; ties go to the lower column index.
pub fn gemm_topk<T: Real>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    opts: GemmTopkOptions<'_, T>,
) -> Result<(Array2<T>, Array2<i64>)> {
    let names = opts.names;
    let (m, d) = a.dim();
    let (n, d2) = b.dim();
    let k = opts.k;
    if d != d2 {
        return Err(shape(
            names.b,
            format!("expected {d} columns to match {}, got {d2}", names.a),
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
            format!(
                "expected 1 <= k <= {available} ({}), got k = {k}",
                names.candidates
            ),
        ));
    }
    check_finite(&b, names.b)?;
    if let Some(bias) = opts.bias {
        check_len(bias, n, names.bias)?;
        check_finite_slice(bias, names.bias)?;
    }
    check_finite(&a, names.a)?;

    let zeros;
    let floor_bias = match opts.bias {
        Some(bias) => bias,
        None => {
            zeros = vec![T::ZERO; n];
            &zeros[..]
        }
    };
    let ep = BiasTopK {
        k,
        floor_bias,
        bias: opts.bias,
        exclude_self: opts.exclude_self,
    };
    // scores are `dot + bias` in T, so the kept values are stored back in T without loss
    let (vals, idx) = blocked_topk(a, b, k, &ep, T::from_f64)?;
    let vals = Array2::from_shape_vec((m, k), vals).expect("m*k buffer");
    Ok((vals, idx))
}

/// One fused epilogue of the blocked GEMM: what [`walk`] does with each tile of `A Bᵀ`.
///
/// Three implement it: the top-k with bias (and the SAE encode's ReLU after it) of
/// [`gemm_topk`], under the TopK SAE encode, the kNN and dense search ([`BiasTopK`]); the
/// threshold SAE encode (`sae::threshold`); arrowspace's λ-aware score (`lambda_topk`).
pub(crate) trait Epilogue<T: Real>: Sync {
    /// What a task keeps for its block of rows of A: their top-k, or their sparse lists.
    type State: Send;
    /// Whether B is packed once for the faster f32 AVX-512 tile (extra memory: the size of B;
    /// see [`Prepared`]).
    const PACK_B: bool;
    /// The empty state of a block of `rows` rows of A.
    fn state(&self, rows: usize) -> Self::State;
    /// Offer the row-major `rows × cols` tile of rows `r0..` of A against rows `c0..c0 + cols` of
    /// B to `state`. [`walk`] calls it through [`simd_dispatch!`], so an implementation is
    /// `#[inline(always)]` and calls only `#[inline(always)]` code: it is compiled once per path.
    fn scan(&self, state: &mut Self::State, r0: usize, c0: usize, cols: usize, tile: &[T]);
}

/// THE blocked walk under every epilogue: blocks of `ROW_BLOCK` rows of A run in parallel, each
/// scored against `COL_BLOCK` rows of B at a time into one tile, so the `m × n` products are never
/// held; `ep.scan` consumes each tile on the process's SIMD path. `outs` yields one slot per row
/// block, in row order, and `finish(state, slot)` hands it each block's final state: the tasks
/// write their rows of the answer directly, so the only O(m) memory is the answer.
///
/// The caller has validated shapes and finiteness; this only computes.
pub(crate) fn walk<T, E, O, F>(a: ArrayView2<T>, b: ArrayView2<T>, ep: &E, outs: O, finish: F)
where
    T: Real,
    E: Epilogue<T>,
    O: IndexedParallelIterator,
    F: Fn(E::State, O::Item) + Sync,
{
    let m = a.nrows();
    debug_assert_eq!(outs.len(), m.div_ceil(ROW_BLOCK), "one slot per row block");
    let b = Prepared::new(b, E::PACK_B);
    let path = simd_path();
    outs.enumerate().for_each(|(blk, out)| {
        let mut state = ep.state(ROW_BLOCK.min(m - blk * ROW_BLOCK));
        scan_block(a, &b, blk, &mut state, ep, path);
        finish(state, out);
    });
}

/// One task of [`walk`]: row block `blk` of A against B, one `COL_BLOCK` tile at a time.
fn scan_block<T: Real, E: Epilogue<T>>(
    a: ArrayView2<T>,
    b: &Prepared<T>,
    blk: usize,
    state: &mut E::State,
    ep: &E,
    path: SimdPath,
) {
    let (m, n) = (a.nrows(), b.nrows());
    let r0 = blk * ROW_BLOCK;
    let rows = ROW_BLOCK.min(m - r0);
    let ablk = a.slice(s![r0..r0 + rows, ..]);
    let mut tile = vec![T::ZERO; rows * COL_BLOCK.min(n.max(1))];
    for c0 in (0..n).step_by(COL_BLOCK) {
        let cols = COL_BLOCK.min(n - c0);
        b.product(&mut tile, &ablk, c0, cols);
        let tile = &tile[..rows * cols];
        simd_dispatch!(path, ep.scan(state, r0, c0, cols, tile));
    }
}

/// [`walk`] for the epilogues that keep each row's top-k (`State = Vec<TopK>`, one per row):
/// the row-major `m × k` (values through `out`, the caller's output type; indices), best first,
/// ties to the lower index; a row with fewer than k scored candidates keeps `-inf` / `-1` in its
/// tail.
pub(crate) fn blocked_topk<T, E, U>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    k: usize,
    ep: &E,
    out: fn(f64) -> U,
) -> Result<(Vec<U>, Array2<i64>)>
where
    T: Real,
    E: Epilogue<T, State = Vec<TopK>>,
    U: Copy + Send,
{
    let m = a.nrows();
    let mut vals = buffer(&[m, k], out(f64::NEG_INFINITY), "k")?;
    let mut idx = buffer(&[m, k], -1i64, "k")?;
    if k == 0 {
        return Ok((vals, Array2::from_shape_vec((m, 0), idx).expect("empty")));
    }
    let slots = vals
        .par_chunks_mut(ROW_BLOCK * k)
        .zip(idx.par_chunks_mut(ROW_BLOCK * k));
    walk(a, b, ep, slots, |tops, (vout, iout)| {
        let (mut v, mut ix) = (vec![0.0; k], vec![0usize; k]);
        for (r, top) in tops.iter().enumerate() {
            let kept = top.write_sorted(&mut v, &mut ix);
            for t in 0..kept {
                vout[r * k + t] = out(v[t]);
                iout[r * k + t] = ix[t] as i64;
            }
        }
    });
    Ok((
        vals,
        Array2::from_shape_vec((m, k), idx).expect("m*k buffer"),
    ))
}

/// A top-k per row for a block of `rows` rows (the state of the top-k epilogues).
pub(crate) fn tops(rows: usize, k: usize) -> Vec<TopK> {
    (0..rows).map(|_| TopK::new(k)).collect()
}

/// Width of the column chunks the epilogues' vector prefilters test at once (the top-k's here,
/// the threshold encode's in `sae/threshold.rs`).
pub(crate) const SCAN: usize = 32;

/// Whether any `dot + bias` of the chunk reaches its floor (`floors`: the same value for every
/// column, as a top-k's k-th best, or one per column, as the threshold encode's cuts): a
/// branch-free reduction that compiles to a few vector compares, so chunks that cannot enter a
/// row's top-k, or hold no active latent, cost almost nothing.
#[inline(always)]
pub(crate) fn any_at_least<T: Real>(
    dots: &[T],
    bias: &[T],
    floors: impl Iterator<Item = T>,
) -> bool {
    let mut hit = false;
    for ((&d, &b), f) in dots.iter().zip(bias).zip(floors) {
        hit |= d + b >= f;
    }
    hit
}

/// The epilogue of [`gemm_topk`]: each row's k best `dot + bias_j` (bias 0 without one), column
/// `j == i` skipped on request.
struct BiasTopK<'a, T> {
    k: usize,
    /// The bias, or zeros: what the prefilter adds.
    floor_bias: &'a [T],
    bias: Option<&'a [T]>,
    exclude_self: bool,
}

impl<T: Real> Epilogue<T> for BiasTopK<'_, T> {
    type State = Vec<TopK>;
    // a packed copy of B (its size) would break the encode's memory bound
    const PACK_B: bool = false;

    fn state(&self, rows: usize) -> Vec<TopK> {
        tops(rows, self.k)
    }

    /// Once a row holds k candidates, a chunk of [`SCAN`] columns is offered to its top-k only if
    /// one of its scores reaches the current k-th best (`>=`, so ties still meet the index
    /// tie-break): the kept set is exactly the one the plain loop would keep. Scores are
    /// `dot + bias` in the input's precision, so the k-th best converts back to `T` exactly.
    #[inline(always)]
    fn scan(&self, best: &mut Vec<TopK>, r0: usize, c0: usize, cols: usize, tile: &[T]) {
        let fb = &self.floor_bias[c0..c0 + cols];
        for (r, top) in best.iter_mut().enumerate() {
            let row = &tile[r * cols..(r + 1) * cols];
            let mut c = 0;
            while c < cols {
                let e = (c + SCAN).min(cols);
                let skip = top.floor().is_some_and(|f| {
                    !any_at_least(&row[c..e], &fb[c..e], std::iter::repeat(T::from_f64(f)))
                });
                if !skip {
                    for (cc, &dot) in row.iter().enumerate().take(e).skip(c) {
                        let j = c0 + cc;
                        if self.exclude_self && r0 + r == j {
                            continue;
                        }
                        let v = match self.bias {
                            Some(bias) => (dot + bias[j]).to_f64(),
                            None => dot.to_f64(),
                        };
                        top.push(v, j);
                    }
                }
                c = e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::testutil::pseudo;

    #[test]
    fn matches_full_sort() {
        let a = pseudo(150, 17, 1);
        let b = pseudo(4100, 17, 2);
        let bias: Vec<f64> = (0..4100).map(|j| (j % 5) as f64 * 0.01).collect();
        let opts = GemmTopkOptions {
            bias: Some(&bias),
            ..GemmTopkOptions::new(9)
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
            exclude_self: true,
            ..GemmTopkOptions::new(69)
        };
        let (_, ix) = gemm_topk(a.view(), a.view(), opts).unwrap();
        for i in 0..70 {
            assert!(ix.row(i).iter().all(|&j| j as usize != i));
        }
        let opts = GemmTopkOptions {
            exclude_self: true,
            ..GemmTopkOptions::new(70)
        };
        assert!(gemm_topk(a.view(), a.view(), opts).is_err());
        let b = pseudo(10, 4, 1);
        assert!(matches!(
            gemm_topk(a.view(), b.view(), GemmTopkOptions::new(2)),
            Err(CoreError::Shape { arg: "B", .. })
        ));
    }

    #[test]
    fn prefilter_keeps_exact_ties_in_f32() {
        // small integer entries: scores are exact in f32 and tie everywhere, across chunk and tile
        // borders (3 tiles of columns), with and without bias and self-exclusion
        let a = ndarray::Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 5) as f32);
        let b = ndarray::Array2::from_shape_fn((4500, 3), |(i, j)| ((i * 11 + j * 5) % 4) as f32);
        let bias: Vec<f32> = (0..4500).map(|j| (j % 3) as f32).collect();
        for (with_bias, exclude_self, k) in [(false, false, 37), (true, false, 5), (true, true, 64)]
        {
            let opts = GemmTopkOptions {
                bias: with_bias.then_some(&bias[..]),
                exclude_self,
                ..GemmTopkOptions::new(k)
            };
            let (v, ix) = gemm_topk(a.view(), b.view(), opts).unwrap();
            for i in 0..40 {
                let mut want: Vec<(f32, usize)> = (0..4500)
                    .filter(|&j| !(exclude_self && j == i))
                    .map(|j| {
                        let dot: f32 = (0..3).map(|p| a[[i, p]] * b[[j, p]]).sum();
                        (dot + if with_bias { bias[j] } else { 0.0 }, j)
                    })
                    .collect();
                want.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap().then(x.1.cmp(&y.1)));
                for t in 0..k {
                    assert_eq!(
                        (v[[i, t]], ix[[i, t]] as usize),
                        want[t],
                        "row {i}, rank {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn errors_carry_the_callers_names() {
        let names = ArgNames {
            a: "X",
            b: "W_enc",
            bias: "b_enc",
            candidates: "n_latents",
        };
        let mut x = pseudo(6, 3, 1);
        let mut w = pseudo(5, 3, 2);
        let bias = vec![0.0, 1.0, f64::NAN, 0.0, 0.0];
        let opts = GemmTopkOptions {
            names,
            ..GemmTopkOptions::new(6)
        };
        let e = gemm_topk(x.view(), w.view(), opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "k: expected 1 <= k <= 5 (n_latents), got k = 6"
        );
        let opts = GemmTopkOptions {
            bias: Some(&bias),
            names,
            ..GemmTopkOptions::new(2)
        };
        assert_eq!(
            gemm_topk(x.view(), w.view(), opts).unwrap_err(),
            CoreError::NonFinite {
                arg: "b_enc",
                row: 2
            }
        );
        w[[3, 1]] = f64::INFINITY;
        assert_eq!(
            gemm_topk(x.view(), w.view(), opts).unwrap_err(),
            CoreError::NonFinite {
                arg: "W_enc",
                row: 3
            }
        );
        w[[3, 1]] = 0.0;
        x[[4, 0]] = f64::NAN;
        let opts = GemmTopkOptions {
            names,
            ..GemmTopkOptions::new(2)
        };
        assert_eq!(
            gemm_topk(x.view(), w.view(), opts).unwrap_err(),
            CoreError::NonFinite { arg: "X", row: 4 }
        );
    }
}
