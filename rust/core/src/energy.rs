//! Rayleigh energies `xᵀLx / xᵀx` of every row of X for a sparse F×F operator L.

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
}

impl EdgeList {
    /// Build from a CSR matrix (`indptr` of length n+1, column `indices`, `data`).
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
                let j = j as usize;
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
}

/// `num[r] = xᵣᵀLxᵣ`, `den[r] = xᵣᵀxᵣ` for one feature-major block `xt` (F × BLOCK).
#[inline(always)]
fn block_kernel(l: &EdgeList, xt: &[f64], num: &mut [f64; BLOCK], den: &mut [f64; BLOCK]) {
    for i in 0..l.n {
        let xi: &[f64; BLOCK] = xt[i * BLOCK..(i + 1) * BLOCK]
            .try_into()
            .expect("block row");
        let di = l.diag[i];
        let mut t = [0.0f64; BLOCK];
        for r in 0..BLOCK {
            t[r] = di * xi[r];
        }
        for e in l.starts[i]..l.starts[i + 1] {
            let j = l.nbr[e] as usize;
            let w = l.weight[e];
            let xj: &[f64; BLOCK] = xt[j * BLOCK..(j + 1) * BLOCK]
                .try_into()
                .expect("block row");
            for r in 0..BLOCK {
                t[r] += w * xj[r];
            }
        }
        for r in 0..BLOCK {
            num[r] += xi[r] * t[r];
            den[r] += xi[r] * xi[r];
        }
    }
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

/// One block of rows to process: rows `r0..r0+rows` of `x` on the operator `l`.
struct Block<'a, 'x, T> {
    x: &'a ArrayView2<'x, T>,
    l: &'a EdgeList,
    r0: usize,
    rows: usize,
}

/// The per-row sums a block produces: `xᵀLx` and `xᵀx`.
type Sums = [f64; BLOCK];

/// Transpose one block and run the kernel on it.
#[inline(always)]
fn process_block<T: Real>(b: &Block<'_, '_, T>, xt: &mut [f64], num: &mut Sums, den: &mut Sums) {
    transpose_block(b.x, b.r0, b.rows, xt);
    block_kernel(b.l, xt, num, den);
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

/// The error for a row whose xᵀx is not finite. xᵀx is NaN/inf iff the row holds NaN/inf (or
/// overflows f64), so the kernels check it per row instead of testing every element on the way in.
pub(crate) fn bad_row<T: Real>(x: &ArrayView2<T>, row: usize) -> CoreError {
    if x.row(row).iter().all(|v| v.is_finite()) {
        return argument("X", format!("row {row}: xᵀx overflows float64"));
    }
    CoreError::NonFinite { arg: "X", row }
}

/// Rayleigh energy of every row: `xᵀLx / xᵀx`, and 0 where `xᵀx <= 1e-9` (as the seed defines it).
///
/// Cost O(N · (F + edges)); memory one F×32 block per worker. The output is f64 for either input
/// precision (f32 rows are widened inside the block, so no cancellation happens in f32).
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
    let mut out = vec![0.0f64; n];
    out.par_chunks_mut(BLOCK)
        .enumerate()
        // One reusable block buffer per worker: allocating per block costs page faults.
        .try_for_each_init(
            || vec![0.0f64; f * BLOCK],
            |xt, (blk, chunk)| -> Result<()> {
                let r0 = blk * BLOCK;
                let block = Block {
                    x: &x,
                    l,
                    r0,
                    rows: chunk.len(),
                };
                let (mut num, mut den) = ([0.0; BLOCK], [0.0; BLOCK]);
                simd_dispatch!(path, process_block(&block, xt, &mut num, &mut den));
                for (r, o) in chunk.iter_mut().enumerate() {
                    if !den[r].is_finite() {
                        return Err(bad_row(&x, r0 + r));
                    }
                    *o = if den[r] > 1e-9 { num[r] / den[r] } else { 0.0 };
                }
                Ok(())
            },
        )?;
    Ok(out)
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
}
