//! Kernels on sparse codes: decode, and the sparse parts of a TopK layer's backward pass
//! (gather-dot and scatter-rows over postings grouped by latent).
//!
//! A sparse code is a pair `(values, indices)`, both `rows × k`: row i holds `k` active latents
//! `indices[i, t]` with activations `values[i, t]`. Every kernel here costs O(rows · k · d) (never
//! O(rows · n_latents · d)), splits work into fixed blocks and sums in a fixed order, so results do
//! not depend on the thread count.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::check::{check_len, check_values, checked_indices};
use crate::error::{argument, buffer, shape, Result};
use crate::real::Real;
use crate::simd::{simd_dispatch, simd_path, SimdPath};

/// Element arithmetic for the decode axpy: accumulating in the element type keeps float32 rows
/// float32 (twice the SIMD width of widening to f64; ~k terms per output, as a BLAS would).
pub trait Accum: Real + std::ops::Mul<Output = Self> + std::ops::AddAssign {}
impl Accum for f32 {}
impl Accum for f64 {}

/// Rows per parallel task of the decode, and the bytes of W_dec it keeps hot per latent block.
const DECODE_ROWS: usize = 256;
const DECODE_CACHE_BYTES: usize = 512 * 1024;

/// Rows per parallel task (fixed so results never depend on the pool size).
pub(crate) const ROWS_PER_TASK: usize = 64;
/// Latents per parallel task in the scatter (gradient) kernel.
const LATENTS_PER_TASK: usize = 256;

/// `o += v · w`, elementwise (each element's sum keeps its order on every SIMD path).
#[inline(always)]
fn axpy<T: Accum>(o: &mut [T], v: T, w: &[T]) {
    for (o, &x) in o.iter_mut().zip(w) {
        *o += v * x;
    }
}

/// What every block of one decode call shares.
struct Decode<'a, T> {
    vals: &'a ArrayView2<'a, T>,
    idx: &'a ArrayView2<'a, i64>,
    /// W_dec, row-major n × d.
    w: &'a [T],
    bias: Option<&'a [T]>,
    n: usize,
    d: usize,
    lat_block: usize,
}

/// Decode rows `r0..r0 + chunk.len() / d` into `chunk` (which holds zeros).
///
/// The block's active (latent, value) pairs are visited latent block by latent block, so the slice
/// of W_dec being gathered stays in cache across the block's rows (W_dec is usually far larger than
/// the cache; the row-by-row order is memory-bound).
#[inline(always)]
fn decode_block<T: Accum>(job: &Decode<'_, T>, r0: usize, chunk: &mut [T]) {
    let (d, k) = (job.d, job.vals.ncols());
    let nr = chunk.len() / d;
    // (latent, slot) of every active pair of the block, sorted per row by latent
    let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(nr * k);
    let mut start = Vec::with_capacity(nr + 1);
    for r in 0..nr {
        start.push(pairs.len());
        let row0 = pairs.len();
        for t in 0..k {
            if job.vals[[r0 + r, t]] != T::ZERO {
                pairs.push((job.idx[[r0 + r, t]] as u32, t as u32));
            }
        }
        pairs[row0..].sort_unstable();
    }
    start.push(pairs.len());
    let mut cursor: Vec<usize> = start[..nr].to_vec();
    if let Some(b) = job.bias {
        chunk.chunks_mut(d).for_each(|o| o.copy_from_slice(b));
    }
    for lb in (0..job.n).step_by(job.lat_block) {
        let hi = (lb + job.lat_block) as u32;
        for (r, orow) in chunk.chunks_mut(d).enumerate() {
            let end = start[r + 1];
            let mut p = cursor[r];
            while p < end && pairs[p].0 < hi {
                let (j, t) = (pairs[p].0 as usize, pairs[p].1 as usize);
                axpy(orow, job.vals[[r0 + r, t]], &job.w[j * d..(j + 1) * d]);
                p += 1;
            }
            cursor[r] = p;
        }
    }
}

/// Sparse decode: `out[i] = bias + Σ_t values[i,t] · W[indices[i,t]]`, `rows × d`.
pub fn sparse_decode<T: Accum>(
    vals: ArrayView2<T>,
    idx: ArrayView2<i64>,
    w: ArrayView2<T>,
    bias: Option<&[T]>,
) -> Result<Array2<T>> {
    sparse_decode_on(vals, idx, w, bias, simd_path())
}

/// [`sparse_decode`] on a given SIMD path (every path gives the same bits).
pub(crate) fn sparse_decode_on<T: Accum>(
    vals: ArrayView2<T>,
    idx: ArrayView2<i64>,
    w: ArrayView2<T>,
    bias: Option<&[T]>,
    path: SimdPath,
) -> Result<Array2<T>> {
    let (n, d) = w.dim();
    check_values(&vals, &idx, "values", "indices")?;
    let idx = checked_indices(&idx, n, "indices")?;
    let idx = idx.view();
    if let Some(b) = bias {
        check_len(b, d, "bias")?;
    }
    if n > u32::MAX as usize || vals.ncols() > u32::MAX as usize {
        return Err(argument("W", "more than 2^32 latents are not supported"));
    }
    let rows = vals.nrows();
    let mut out = buffer(&[rows, d], T::ZERO, "values")?;
    if d == 0 {
        return Ok(Array2::from_shape_vec((rows, d), out).expect("empty"));
    }
    let w = w.as_standard_layout();
    let job = Decode {
        vals: &vals,
        idx: &idx,
        w: w.as_slice().expect("standard layout is contiguous"),
        bias,
        n,
        d,
        lat_block: (DECODE_CACHE_BYTES / (d * std::mem::size_of::<T>())).max(1),
    };
    out.par_chunks_mut(DECODE_ROWS * d)
        .enumerate()
        .for_each(|(blk, chunk)| {
            simd_dispatch!(path, decode_block(&job, blk * DECODE_ROWS, chunk))
        });
    Ok(Array2::from_shape_vec((rows, d), out).expect("rows*d buffer"))
}

/// Dot product in f64 with 8 independent partial sums (fixed order, so deterministic), which
/// lets the compiler vectorise it.
#[inline]
fn dot_f64<T: Real>(a: &[T], b: &[T]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l].to_f64() * y[l].to_f64();
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x.to_f64() * y.to_f64();
    }
    acc.iter().sum::<f64>() + tail
}

/// `out[i, t] = g[i] · W[indices[i, t]]`, `rows × k` (the gradient flowing back to the codes).
pub fn sparse_gather_dot<T: Real>(
    g: ArrayView2<T>,
    idx: ArrayView2<i64>,
    w: ArrayView2<T>,
) -> Result<Array2<T>> {
    let (n, d) = w.dim();
    if g.ncols() != d {
        return Err(shape(
            "G",
            format!("expected {d} columns, got {}", g.ncols()),
        ));
    }
    if g.nrows() != idx.nrows() {
        return Err(shape(
            "indices",
            format!(
                "expected {} rows to match G, got {}",
                g.nrows(),
                idx.nrows()
            ),
        ));
    }
    let idx = checked_indices(&idx, n, "indices")?;
    let (rows, k) = idx.dim();
    let mut out = buffer(&[rows, k], T::ZERO, "indices")?;
    if k == 0 {
        return Ok(Array2::from_shape_vec((rows, k), out).expect("empty"));
    }
    let (w, g) = (w.as_standard_layout(), g.as_standard_layout());
    let ws = w.as_slice().expect("standard layout is contiguous");
    let gs = g.as_slice().expect("standard layout is contiguous");
    out.par_chunks_mut(ROWS_PER_TASK * k)
        .enumerate()
        .for_each(|(blk, chunk)| {
            for (r, orow) in chunk.chunks_mut(k).enumerate() {
                let i = blk * ROWS_PER_TASK + r;
                let gr = &gs[i * d..(i + 1) * d];
                for (t, o) in orow.iter_mut().enumerate() {
                    let j = idx[[i, t]] as usize;
                    *o = T::from_f64(dot_f64(gr, &ws[j * d..(j + 1) * d]));
                }
            }
        });
    Ok(Array2::from_shape_vec((rows, k), out).expect("rows*k buffer"))
}

/// Postings of a sparse code grouped by latent: for latent j, `entries[range(j)]` are the
/// `(row, slot)` pairs with `indices[row, slot] == j`, in row-major order (a counting sort, so the
/// order is fixed and the summation order of every consumer is too).
pub(crate) struct Postings {
    /// Offsets for the latents `0..ptr.len() - 1`: those up to the largest one used (so the
    /// index costs memory for the latents that occur, never for a huge `n_latents`).
    ptr: Vec<usize>,
    pub rows: Vec<u32>,
    pub slots: Vec<u32>,
}

impl Postings {
    /// Positions of latent `j`'s pairs in `rows` / `slots` (empty for a latent that never occurs).
    pub fn range(&self, j: usize) -> std::ops::Range<usize> {
        if j + 1 < self.ptr.len() {
            self.ptr[j]..self.ptr[j + 1]
        } else {
            0..0
        }
    }
}

/// Build [`Postings`] of the pairs `keep(row, slot)` accepts. `idx` must come from
/// [`checked_indices`] (a private, checked copy) and have fewer than 2^32 rows and slots; `keep`
/// is asked once per pair, so a caller's array changing meanwhile cannot unbalance the counts.
pub(crate) fn postings(
    idx: &ArrayView2<i64>,
    keep: impl Fn(usize, usize) -> bool,
) -> Result<Postings> {
    let (rows, k) = idx.dim();
    let kept: Vec<bool> = (0..rows * k).map(|p| keep(p / k, p % k)).collect();
    let used = idx
        .iter()
        .zip(&kept)
        .filter(|(_, &kp)| kp)
        .map(|(&j, _)| j as usize + 1)
        .max()
        .unwrap_or(0);
    let mut ptr = buffer(&[used + 1], 0usize, "indices")?;
    for (&j, _) in idx.iter().zip(&kept).filter(|(_, &kp)| kp) {
        ptr[j as usize + 1] += 1;
    }
    for j in 0..used {
        ptr[j + 1] += ptr[j];
    }
    let total = ptr[used];
    let mut fill = ptr.clone();
    let (mut prow, mut pslot) = (vec![0u32; total], vec![0u32; total]);
    for (p, (&j, _)) in idx.iter().zip(&kept).enumerate().filter(|(_, (_, &kp))| kp) {
        let j = j as usize;
        prow[fill[j]] = (p / k) as u32;
        pslot[fill[j]] = (p % k) as u32;
        fill[j] += 1;
    }
    Ok(Postings {
        ptr,
        rows: prow,
        slots: pslot,
    })
}

/// Scatter-add of rows: `out[j] = Σ_{(i,t): indices[i,t]=j} coef[i,t] · X[i]` (`n_latents × d`)
/// and `sums[j] = Σ coef[i,t]` over the same pairs (length `n_latents`).
///
/// This is the sparse backward of a TopK layer: with `coef = values` and `X = ∂L/∂x̂` it is the
/// decoder gradient, with `coef = ∂L/∂pre` and `X = x - b_dec` the encoder gradient and `sums` the
/// encoder-bias gradient. Each latent's row is summed in a fixed order by one task.
pub fn sparse_scatter_rows<T: Real>(
    coef: ArrayView2<T>,
    idx: ArrayView2<i64>,
    x: ArrayView2<T>,
    n_latents: usize,
) -> Result<(Array2<T>, Vec<T>)> {
    check_values(&coef, &idx, "coef", "indices")?;
    let idx = checked_indices(&idx, n_latents, "indices")?;
    if x.nrows() != coef.nrows() {
        return Err(shape(
            "X",
            format!(
                "expected {} rows to match coef, got {}",
                coef.nrows(),
                x.nrows()
            ),
        ));
    }
    if coef.nrows() > u32::MAX as usize || coef.ncols() > u32::MAX as usize {
        return Err(argument("coef", "too many rows for one call (split it)"));
    }
    let d = x.ncols();
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout is contiguous");
    let post = postings(&idx.view(), |i, t| coef[[i, t]] != T::ZERO)?;
    let mut out = buffer(&[n_latents, d], T::ZERO, "n_latents")?;
    let mut sums = buffer(&[n_latents], T::ZERO, "n_latents")?;
    if d > 0 {
        out.par_chunks_mut(LATENTS_PER_TASK * d)
            .zip(sums.par_chunks_mut(LATENTS_PER_TASK))
            .enumerate()
            .for_each(|(blk, (chunk, schunk))| {
                let mut acc = vec![0.0f64; d];
                for (r, orow) in chunk.chunks_mut(d).enumerate() {
                    let j = blk * LATENTS_PER_TASK + r;
                    let span = post.range(j);
                    if span.is_empty() {
                        continue;
                    }
                    acc.iter_mut().for_each(|v| *v = 0.0);
                    let mut s = 0.0f64;
                    for p in span {
                        let (i, t) = (post.rows[p] as usize, post.slots[p] as usize);
                        let c = coef[[i, t]].to_f64();
                        s += c;
                        let xr = &xs[i * d..(i + 1) * d];
                        acc.iter_mut()
                            .zip(xr)
                            .for_each(|(v, x)| *v += c * x.to_f64());
                    }
                    orow.iter_mut()
                        .zip(&acc)
                        .for_each(|(o, v)| *o = T::from_f64(*v));
                    schunk[r] = T::from_f64(s);
                }
            });
    } else {
        for j in 0..n_latents {
            let s: f64 = post
                .range(j)
                .map(|p| coef[[post.rows[p] as usize, post.slots[p] as usize]].to_f64())
                .sum();
            sums[j] = T::from_f64(s);
        }
    }
    let out = Array2::from_shape_vec((n_latents, d), out).expect("n*d buffer");
    Ok((out, sums))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::testutil::{dense_codes, pseudo};

    /// A code of `rows × k` distinct latents out of `n`, a quarter of the values zero.
    fn code(rows: usize, k: usize, n: usize, seed: u64) -> (Array2<f64>, Array2<i64>) {
        let v = pseudo(rows, k, seed).mapv(|x| if x < -0.25 { 0.0 } else { x });
        let idx = Array2::from_shape_fn((rows, k), |(i, t)| ((i * 131 + t * 977) % n) as i64);
        (v, idx)
    }

    #[test]
    fn decode_gather_scatter_match_dense() {
        let (v, ix) = code(90, 5, 300, 1);
        let wd = pseudo(300, 12, 3);
        let bd: Vec<f64> = (0..12).map(|j| j as f64 * 0.02).collect();
        let out = sparse_decode(v.view(), ix.view(), wd.view(), Some(&bd)).unwrap();
        let h = dense_codes(&v, &ix, 300);
        let dense = h.dot(&wd);
        for i in 0..90 {
            for c in 0..12 {
                assert!((out[[i, c]] - dense[[i, c]] - bd[c]).abs() < 1e-12);
            }
        }
        let g = pseudo(90, 12, 4);
        let gd = sparse_gather_dot(g.view(), ix.view(), wd.view()).unwrap();
        let (sc, sums) = sparse_scatter_rows(v.view(), ix.view(), g.view(), 300).unwrap();
        let want = h.t().dot(&g);
        for j in 0..300 {
            for c in 0..12 {
                assert!((sc[[j, c]] - want[[j, c]]).abs() < 1e-12);
            }
            assert!((sums[j] - h.column(j).sum()).abs() < 1e-12);
        }
        for i in 0..90 {
            for t in 0..5 {
                let j = ix[[i, t]] as usize;
                let s: f64 = (0..12).map(|c| g[[i, c]] * wd[[j, c]]).sum();
                assert!((gd[[i, t]] - s).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn every_simd_path_gives_the_same_bits() {
        // Several row blocks and latent blocks, d not a multiple of any vector width.
        let (v, ix) = code(700, 9, 3000, 5);
        let w = pseudo(3000, 173, 6);
        let bias: Vec<f64> = (0..173).map(|c| c as f64 * 1e-3).collect();
        let (v32, w32) = (v.mapv(|x| x as f32), w.mapv(|x| x as f32));
        let b32: Vec<f32> = bias.iter().map(|&b| b as f32).collect();
        let want =
            sparse_decode_on(v.view(), ix.view(), w.view(), Some(&bias), SimdPath::Scalar).unwrap();
        let want32 = sparse_decode_on(
            v32.view(),
            ix.view(),
            w32.view(),
            Some(&b32),
            SimdPath::Scalar,
        )
        .unwrap();
        for p in SimdPath::ALL.into_iter().filter(|p| p.supported()) {
            let got = sparse_decode_on(v.view(), ix.view(), w.view(), Some(&bias), p).unwrap();
            assert_eq!(got, want, "{p:?}");
            let got = sparse_decode_on(v32.view(), ix.view(), w32.view(), Some(&b32), p).unwrap();
            assert_eq!(got, want32, "{p:?}");
        }
    }

    #[test]
    fn bad_codes_are_rejected() {
        let v0 = Array2::<f64>::zeros((2, 2));
        let bad = Array2::<i64>::from_elem((2, 2), 9);
        let w = pseudo(4, 3, 1);
        assert!(matches!(
            sparse_decode(v0.view(), bad.view(), w.view(), None),
            Err(CoreError::Argument { arg: "indices", .. })
        ));
        let g = pseudo(2, 3, 2);
        assert!(matches!(
            sparse_gather_dot(g.view(), bad.view(), w.view()),
            Err(CoreError::Argument { arg: "indices", .. })
        ));
        // Absurd latent counts: a clear error (scatter's output cannot exist) or no cost at all
        // (the index only spans the latents that occur), never an abort or a panic.
        let ok = Array2::<i64>::zeros((2, 2));
        for n in [1usize << 40, 1 << 62, usize::MAX] {
            assert!(matches!(
                sparse_scatter_rows(v0.view(), ok.view(), g.view(), n),
                Err(CoreError::Argument {
                    arg: "n_latents",
                    ..
                })
            ));
            let (s, ids) =
                crate::latent_search(v0.view(), ok.view(), v0.view(), ok.view(), n, 2).unwrap();
            assert_eq!((s.dim(), ids.dim()), ((2, 2), (2, 2)));
        }
        let mut vn = v0.clone();
        vn[[1, 0]] = f64::NAN;
        assert_eq!(
            sparse_scatter_rows(vn.view(), ok.view(), g.view(), 4).unwrap_err(),
            CoreError::NonFinite {
                arg: "coef",
                row: 1
            }
        );
    }
}
