//! Rayleigh energies `xᵀLx / xᵀx` of every row of X for a sparse F×F operator L.

use std::sync::OnceLock;

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::error::{argument, shape, CoreError, Result};
use crate::real::Real;
use crate::simd::{simd_dispatch, simd_path, SimdPath};

/// Rows per block. A block is transposed into a feature-major f64 buffer so that every edge of
/// L becomes one contiguous, vectorisable pass over the block's rows.
pub(crate) const BLOCK: usize = 32;

/// L folded into its quadratic form: `xᵀLx = Σ_i d_i x_i² + Σ_{i<j} u_ij x_i x_j` with
/// `d_i = L_ii` and `u_ij = L_ij + L_ji`, which is exact for any (even non-symmetric) L and
/// visits each undirected edge once.
#[derive(Debug, Clone)]
pub struct EdgeList {
    pub(crate) n: usize,
    pub(crate) diag: Vec<f64>,
    pub(crate) starts: Vec<usize>,
    pub(crate) nbr: Vec<u32>,
    pub(crate) weight: Vec<f64>,
    /// The stored operator is `L · scale` (a power of two; 1 unless L's sums overflow f64).
    pub(crate) scale: f64,
}

impl EdgeList {
    /// Build from a CSR matrix (`indptr` of length n+1, column `indices`, `data`).
    ///
    /// Where a sum `L_ij + L_ji` (or of duplicate entries) overflows f64, the operator is stored
    /// times a power of two that brings its largest entry below 1 (`scale` says which).
    pub fn from_csr(n: usize, indptr: &[i64], indices: &[i64], data: &[f64]) -> Result<Self> {
        if indptr.len() != n + 1 {
            return Err(shape(
                "L",
                format!("indptr must have length {}, got {}", n + 1, indptr.len()),
            ));
        }
        if indices.len() != data.len() {
            return Err(shape("L", "indices and data lengths differ"));
        }
        if n > u32::MAX as usize {
            return Err(shape("L", "too many features"));
        }
        let plain = Self::fold(n, indptr, indices, data, 1.0)?;
        if plain
            .diag
            .iter()
            .chain(&plain.weight)
            .all(|v| v.is_finite())
        {
            return Ok(plain);
        }
        let m = data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        Self::fold(n, indptr, indices, data, unit_scale(m))
    }

    /// [`EdgeList::from_csr`] of the operator times `scale` (a power of two).
    fn fold(n: usize, indptr: &[i64], indices: &[i64], data: &[f64], scale: f64) -> Result<Self> {
        let mut diag = vec![0.0; n];
        let mut upper: Vec<(u32, u32, f64)> = Vec::new();
        for i in 0..n {
            let (lo, hi) = (indptr[i], indptr[i + 1]);
            if lo < 0 || hi < lo || hi as usize > indices.len() {
                return Err(shape("L", "indptr is not a valid CSR row pointer"));
            }
            for e in lo as usize..hi as usize {
                let j = indices[e];
                let v = data[e];
                if j < 0 || j as usize >= n {
                    return Err(shape("L", format!("column index {j} outside 0..{n}")));
                }
                if !v.is_finite() {
                    return Err(CoreError::NonFinite { arg: "L", row: i });
                }
                let (j, v) = (j as usize, v * scale);
                if i == j {
                    diag[i] += v;
                } else {
                    upper.push((i.min(j) as u32, i.max(j) as u32, v));
                }
            }
        }
        // Stable sort keeps duplicates in input order, so their sum is deterministic.
        upper.sort_by_key(|&(a, b, _)| (a, b));
        let mut starts = vec![0usize; n + 1];
        let (mut nbr, mut weight) = (Vec::new(), Vec::<f64>::new());
        let mut last: Option<(u32, u32)> = None;
        for (a, b, v) in upper {
            if last == Some((a, b)) {
                *weight.last_mut().expect("an edge was pushed before") += v;
            } else {
                nbr.push(b);
                weight.push(v);
                starts[a as usize + 1] += 1;
                last = Some((a, b));
            }
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        Ok(Self {
            n,
            diag,
            starts,
            nbr,
            weight,
            scale,
        })
    }

    /// Number of features (rows of L).
    pub fn n_features(&self) -> usize {
        self.n
    }

    /// Number of distinct off-diagonal pairs.
    pub fn n_edges(&self) -> usize {
        self.nbr.len()
    }

    /// The stored operator times a power of two that brings its largest entry (diagonal or
    /// `L_ij + L_ji`) into [0.5, 1): the L of the passes over rows whose sums left f64's range.
    pub(crate) fn unit(&self) -> EdgeList {
        let m = self
            .diag
            .iter()
            .chain(&self.weight)
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let b = unit_scale(m);
        let mut unit = self.clone();
        unit.diag
            .iter_mut()
            .chain(&mut unit.weight)
            .for_each(|v| *v *= b);
        unit.scale = self.scale * b;
        unit
    }
}

/// The per-row sums of one block: `xᵀLx`, `xᵀx` and the [`EdgeTerms`] `extra`.
pub(crate) struct Sums<A> {
    pub(crate) num: [f64; BLOCK],
    pub(crate) den: [f64; BLOCK],
    pub(crate) extra: A,
}

impl<A> Sums<A> {
    pub(crate) fn new(extra: A) -> Self {
        Self {
            num: [0.0; BLOCK],
            den: [0.0; BLOCK],
            extra,
        }
    }
}

/// What an edge pass accumulates per row besides `xᵀLx` and `xᵀx` ([`edge_pass`] calls it on every
/// undirected edge, inside its one loop over the block's rows, so it vectorises with that loop):
/// nothing for the energies, `Σ t` and `Σ t²` for taumode (and, for the rows taumode computes
/// again scaled, the largest `t` and the scaled sums).
pub(crate) trait EdgeTerms: Copy {
    /// What [`EdgeTerms::lane`] needs of an edge's `u = L_ij + L_ji`, computed once per edge.
    type Weight: Copy;
    fn weight(u: f64) -> Self::Weight;
    /// Row (lane) `r` of the block on an edge whose ends hold `xi` and `xj`.
    fn lane(&mut self, r: usize, w: Self::Weight, xi: f64, xj: f64);
}

/// Nothing more: the Rayleigh energies' pass, where the extra terms compile away.
impl EdgeTerms for () {
    type Weight = ();
    #[inline(always)]
    fn weight(_: f64) {}
    #[inline(always)]
    fn lane(&mut self, _: usize, _: (), _: f64, _: f64) {}
}

/// THE edge pass over one feature-major block `xt` (F × BLOCK): adds `xᵣᵀLxᵣ` to `s.num[r]`,
/// `xᵣᵀxᵣ` to `s.den[r]` and `s.extra`'s terms of every undirected edge (taumode's Σt, Σt²).
#[inline(always)]
pub(crate) fn edge_pass<A: EdgeTerms>(l: &EdgeList, xt: &[f64], s: &mut Sums<A>) {
    // the extra sums live in a local for the pass: nothing the loop reads can alias them, so
    // they and the block's Lx stay in registers (through `s.extra` LLVM versions the loop on a
    // run-time alias check and spills Lx: taumode ran 1.5x slower)
    let mut extra = s.extra;
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
            let w = A::weight(u);
            let xj: &[f64; BLOCK] = xt[j * BLOCK..(j + 1) * BLOCK]
                .try_into()
                .expect("block row");
            for r in 0..BLOCK {
                lx[r] += u * xj[r];
                extra.lane(r, w, xi[r], xj[r]);
            }
        }
        for r in 0..BLOCK {
            s.num[r] += xi[r] * lx[r];
            s.den[r] += xi[r] * xi[r];
        }
    }
    s.extra = extra;
}

/// Transpose rows `r0..r0 + rows` of X into `xt` and run [`edge_pass`] on them.
#[inline(always)]
pub(crate) fn pass_block<T: Real, A: EdgeTerms>(
    x: &ArrayView2<T>,
    l: &EdgeList,
    (r0, rows): (usize, usize),
    xt: &mut [f64],
    s: &mut Sums<A>,
) {
    transpose_block(x, r0, rows, xt);
    edge_pass(l, xt, s);
}

/// `2^k` for an integer `k`, clamped to `-1074 <= k <= 1023` (exact; subnormal below -1022).
pub(crate) fn pow2(k: f64) -> f64 {
    let k = k.clamp(-1074.0, 1023.0) as i32;
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

/// A power of two `s` with `m · s` in [0.5, 1) for a finite `m > 0` (as far as `s` stays finite:
/// below 2^-1023 the product is smaller); 1 for `m == 0`. Multiplying by it is exact.
pub(crate) fn unit_scale(m: f64) -> f64 {
    if m <= 0.0 || !m.is_finite() {
        return 1.0;
    }
    let bits = m.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    // m in [2^e, 2^(e+1))
    let e = if biased > 0 {
        biased - 1023
    } else {
        -1011 - (bits & ((1u64 << 52) - 1)).leading_zeros() as i32
    };
    pow2(-(e + 1) as f64)
}

/// The power of two that brings row `row` of X to a largest `|x|` in [0.5, 1) (see [`unit_scale`]).
pub(crate) fn row_scale<T: Real>(x: &ArrayView2<T>, row: usize) -> f64 {
    unit_scale(
        x.row(row)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.to_f64().abs())),
    )
}

/// [`pass_block`] on rows scaled by powers of two: after the transpose, lane r of the block is
/// multiplied by `scale[r]` (exact, as long as nothing turns subnormal). The passes over rows
/// whose sums left f64's range run here, on `l` scaled too ([`EdgeList::unit`]).
#[inline(always)]
pub(crate) fn pass_scaled<T: Real, A: EdgeTerms>(
    x: &ArrayView2<T>,
    l: &EdgeList,
    (r0, rows): (usize, usize),
    xt: &mut [f64],
    scale: &[f64; BLOCK],
    s: &mut Sums<A>,
) {
    transpose_block(x, r0, rows, xt);
    for feature in xt.chunks_exact_mut(BLOCK) {
        for r in 0..BLOCK {
            feature[r] *= scale[r];
        }
    }
    edge_pass(l, xt, s);
}

/// Copy rows `r0..r0+rows` of X into the feature-major f64 block `xt` (F × BLOCK).
///
/// Contiguous rows go eight at a time, so each feature's eight values land in one cache line
/// instead of eight scattered stores.
#[inline(always)]
pub(crate) fn transpose_block<T: Real>(x: &ArrayView2<T>, r0: usize, rows: usize, xt: &mut [f64]) {
    const LANES: usize = 8;
    let f = x.ncols();
    let mut r = 0;
    'rows: while r + LANES <= rows {
        let mut s: [&[T]; LANES] = [&[]; LANES];
        for (q, slot) in s.iter_mut().enumerate() {
            match x.row(r0 + r + q).to_slice() {
                Some(row) => *slot = row,
                None => break 'rows,
            }
        }
        for i in 0..f {
            let dst = &mut xt[i * BLOCK + r..i * BLOCK + r + LANES];
            for q in 0..LANES {
                dst[q] = s[q][i].to_f64();
            }
        }
        r += LANES;
    }
    for r in r..rows {
        for (i, &v) in x.row(r0 + r).iter().enumerate() {
            xt[i * BLOCK + r] = v.to_f64();
        }
    }
    if rows < BLOCK {
        // The last block is short: zero the padding so it cannot produce NaN.
        for i in 0..f {
            xt[i * BLOCK + rows..(i + 1) * BLOCK].fill(0.0);
        }
    }
}

/// X (n × `f`) and L fit together: L is `f × f`, and X has at least one feature.
pub(crate) fn check_operator(f: usize, l: &EdgeList) -> Result<()> {
    if f != l.n {
        return Err(shape(
            "L",
            format!(
                "expected shape ({f}, {f}) to match X's {f} features, got ({0}, {0})",
                l.n
            ),
        ));
    }
    if f == 0 {
        return Err(argument("X", "expected at least one feature column"));
    }
    Ok(())
}

/// The error for a row of X that holds NaN or ±inf, if it does. The kernels test the sums of a
/// row (non-finite iff the row is, or they overflowed) instead of every element on the way in.
pub(crate) fn check_row<T: Real>(x: &ArrayView2<T>, row: usize) -> Result<()> {
    match x.row(row).iter().all(|v| v.is_finite()) {
        true => Ok(()),
        false => Err(CoreError::NonFinite { arg: "X", row }),
    }
}

/// Whether the sums of a row may have left f64's range: xᵀLx or xᵀx overflowed (inf or NaN), or
/// a nonzero xᵀLx came out subnormal (where it keeps fewer bits) for a row whose energy counts.
#[inline(always)]
pub(crate) fn out_of_range(num: f64, den: f64) -> bool {
    !(num.is_finite() && den.is_finite()) || (num != 0.0 && !num.is_normal() && den > 1e-9)
}

/// Rayleigh energy of every row: `xᵀLx / xᵀx`, and 0 where `xᵀx <= 1e-9` (as the seed defines it).
///
/// Cost O(N · (F + edges)); memory one F×32 block per worker. The output is f64 for either input
/// precision (f32 rows are widened inside the block, so no cancellation happens in f32).
///
/// Finite input gives the right energy: a row whose sums overflow f64 (`|x|` beyond ~1e154, or a
/// huge L) is computed again on the row and L scaled by powers of two (E is invariant under the
/// first, linear in the second; the scalings are exact, so the bits are those an unbounded
/// exponent would give). Only an energy beyond f64 itself is an error, naming `L`.
pub fn rayleigh_energy<T: Real>(x: ArrayView2<T>, l: &EdgeList) -> Result<Vec<f64>> {
    rayleigh_energy_on(x, l, simd_path())
}

/// [`rayleigh_energy`] on a given SIMD path (every path gives the same bits).
pub(crate) fn rayleigh_energy_on<T: Real>(
    x: ArrayView2<T>,
    l: &EdgeList,
    path: SimdPath,
) -> Result<Vec<f64>> {
    let (n, f) = x.dim();
    check_operator(f, l)?;
    let unit = OnceLock::new();
    let mut out = vec![0.0f64; n];
    out.par_chunks_mut(BLOCK)
        .enumerate()
        // One reusable block buffer per worker: allocating per block costs page faults.
        .try_for_each_init(
            || vec![0.0f64; f * BLOCK],
            |xt, (blk, chunk)| -> Result<()> {
                let (r0, rows) = (blk * BLOCK, chunk.len());
                let mut q = Sums::new(());
                simd_dispatch!(path, pass_block(&x, l, (r0, rows), xt, &mut q));
                // rows whose sums left f64's range are computed again, scaled (0: not this row)
                let mut again = [0.0f64; BLOCK];
                for (r, o) in chunk.iter_mut().enumerate() {
                    if out_of_range(q.num[r], q.den[r]) {
                        check_row(&x, r0 + r)?;
                        again[r] = row_scale(&x, r0 + r);
                    } else {
                        *o = energy(&q, &q, r, l.scale).ok_or_else(|| overflow(r0 + r))?;
                    }
                }
                if again.iter().any(|&s| s != 0.0) {
                    let lu = unit.get_or_init(|| l.unit());
                    let mut qs = Sums::new(());
                    pass_scaled(&x, lu, (r0, rows), xt, &again, &mut qs);
                    for (r, o) in chunk.iter_mut().enumerate() {
                        if again[r] != 0.0 {
                            *o = energy(&q, &qs, r, lu.scale).ok_or_else(|| overflow(r0 + r))?;
                        }
                    }
                }
                Ok(())
            },
        )?;
    Ok(out)
}

/// E = xᵀLx / xᵀx of lane r from the sums `qs` of a pass on the row times a power of two and L
/// stored times `scale` (`qs` = `q`, the plain pass, when the row was not scaled): the row's
/// scale cancels, L's divides out (`/ 1.0` for an ordinary L: the same bits). 0 where the plain
/// `q.den` (inf if it overflowed) is at most 1e-9, as the seed defines it; `None` if E itself
/// exceeds f64.
#[inline(always)]
pub(crate) fn energy<A, B>(q: &Sums<A>, qs: &Sums<B>, r: usize, scale: f64) -> Option<f64> {
    if q.den[r] <= 1e-9 {
        return Some(0.0);
    }
    let e = qs.num[r] / qs.den[r] / scale;
    e.is_finite().then_some(e)
}

/// The error for a row whose energy exceeds f64 even from scaled sums (only a huge L does that).
fn overflow(row: usize) -> CoreError {
    argument(
        "L",
        format!("row {row}: xᵀLx / xᵀx exceeds the float64 range (scale L down)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn matches_dense_quadratic_form_for_nonsymmetric_l() {
        let f = 7;
        let lmat = Array2::from_shape_fn((f, f), |(i, j)| {
            if (i * 3 + j) % 4 == 0 {
                (i as f64) - 0.7 * j as f64
            } else {
                0.0
            }
        });
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
        let x = Array2::from_shape_fn((75, f), |(r, c)| ((r * 7 + c * 13) % 11) as f64 - 5.0);
        let e = rayleigh_energy(x.view(), &el).unwrap();
        for r in 0..75 {
            let xr = x.row(r);
            let num = xr.dot(&lmat.dot(&xr));
            let den = xr.dot(&xr);
            let want = if den > 1e-9 { num / den } else { 0.0 };
            assert!(
                (e[r] - want).abs() <= 1e-12 * want.abs().max(1.0),
                "row {r}"
            );
        }
    }

    #[test]
    fn every_simd_path_gives_the_same_bits() {
        let f = 150;
        let (mut indptr, mut indices, mut data) = (vec![0i64], vec![], vec![]);
        for i in 0..f {
            for j in [(i + 1) % f, (i * 7 + 3) % f, (i * 13 + 5) % f] {
                indices.push(j as i64);
                data.push(0.25 + (i % 5) as f64 * 0.1 - (j % 3) as f64 * 0.2);
            }
            indices.push(i as i64);
            data.push(1.5);
            indptr.push(indices.len() as i64);
        }
        let el = EdgeList::from_csr(f, &indptr, &indices, &data).unwrap();
        let x = crate::testutil::pseudo(203, f, 9);
        let x32 = x.mapv(|v| v as f32);
        let want = rayleigh_energy_on(x.view(), &el, SimdPath::Scalar).unwrap();
        let want32 = rayleigh_energy_on(x32.view(), &el, SimdPath::Scalar).unwrap();
        for p in SimdPath::ALL.into_iter().filter(|p| p.supported()) {
            assert_eq!(rayleigh_energy_on(x.view(), &el, p).unwrap(), want, "{p:?}");
            assert_eq!(
                rayleigh_energy_on(x32.view(), &el, p).unwrap(),
                want32,
                "{p:?}"
            );
        }
    }

    #[test]
    fn zero_rows_and_bad_input() {
        let el = EdgeList::from_csr(2, &[0, 2, 4], &[0, 1, 0, 1], &[1.0, -1.0, -1.0, 1.0]).unwrap();
        let x = Array2::<f32>::zeros((3, 2));
        assert_eq!(rayleigh_energy(x.view(), &el).unwrap(), vec![0.0; 3]);
        let x3 = Array2::<f64>::zeros((3, 3));
        assert!(matches!(
            rayleigh_energy(x3.view(), &el),
            Err(CoreError::Shape { arg: "L", .. })
        ));
        assert!(EdgeList::from_csr(2, &[0, 1, 1], &[5], &[1.0]).is_err());
        assert!(EdgeList::from_csr(2, &[0, 1, 1], &[0], &[f64::NAN]).is_err());
    }

    #[test]
    fn rows_and_operators_beyond_f64_give_the_energy_or_an_error_naming_l() {
        let f = 9;
        let (mut indptr, mut indices, mut data) = (vec![0i64], vec![], vec![]);
        for i in 0..f {
            for (j, v) in [((i + 1) % f, -1.0), ((i + f - 1) % f, -1.0), (i, 2.5)] {
                indices.push(j as i64);
                data.push(v);
            }
            indptr.push(indices.len() as i64);
        }
        let el = EdgeList::from_csr(f, &indptr, &indices, &data).unwrap();
        let x = crate::testutil::pseudo(70, f, 3);
        let want = rayleigh_energy(x.view(), &el).unwrap();
        // rows times 2^600 (xᵀx overflows): E is scale-invariant and the scaling exact
        let mut xs = x.clone();
        for r in [0, 33, 69] {
            xs.row_mut(r).mapv_inplace(|v| v * 2f64.powi(600));
        }
        assert_eq!(rayleigh_energy(xs.view(), &el).unwrap(), want);
        // rows times 2^100 on L times 2^1000 (xᵀLx overflows): E times 2^1000, exactly
        let big: Vec<f64> = data.iter().map(|v| v * 2f64.powi(1000)).collect();
        let el_big = EdgeList::from_csr(f, &indptr, &indices, &big).unwrap();
        let xs = x.mapv(|v| v * 2f64.powi(100));
        let want_big: Vec<f64> = want.iter().map(|e| e * 2f64.powi(1000)).collect();
        assert_eq!(rayleigh_energy(xs.view(), &el_big).unwrap(), want_big);
        // L_01 + L_10 overflows while folding L: it is stored halved and E still comes out right,
        // or, where E itself exceeds f64, an error names L
        let el = EdgeList::from_csr(
            2,
            &[0, 2, 4],
            &[0, 1, 0, 1],
            &[1e308, -1e308, -1e308, 1e308],
        )
        .unwrap();
        assert!(el.scale < 1.0);
        let x = Array2::from_shape_vec((3, 2), vec![1.0, 0.0, 1.0, 1.0, 2.0, 1.0]).unwrap();
        let e = rayleigh_energy(x.view(), &el).unwrap();
        assert_eq!(e[..2], [1e308, 0.0]);
        assert!((e[2] - 2e307).abs() <= 1e-15 * 2e307);
        let x = Array2::from_shape_vec((2, 2), vec![1.0, 0.0, 1.0, -1.0]).unwrap();
        assert!(matches!(
            rayleigh_energy(x.view(), &el),
            Err(CoreError::Argument { arg: "L", .. })
        ));
        let x = Array2::from_shape_vec((1, 2), vec![f64::NAN, 1e300]).unwrap();
        assert_eq!(
            rayleigh_energy(x.view(), &el).unwrap_err(),
            CoreError::NonFinite { arg: "X", row: 0 }
        );
    }

    #[test]
    fn unit_scale_is_a_power_of_two_into_half_open_unit() {
        for m in [
            1.0,
            0.75,
            3.0,
            1e308,
            f64::MAX,
            2.2250738585072014e-308,
            1e-310,
            5e-324,
        ] {
            let s = unit_scale(m);
            assert_eq!(s.log2().fract(), 0.0, "{m}: {s}"); // a power of two
            let y = m * s;
            if m >= 2f64.powi(-1022) {
                assert!((0.5..1.0).contains(&y), "{m}: {y}");
            } else {
                assert!(y > 0.0 && y < 1.0, "{m}: {y}");
            }
        }
        assert_eq!(unit_scale(0.0), 1.0);
    }
}
