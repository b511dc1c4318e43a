//! The tile products `A · Bᵀ`: the one place that calls the GEMM crate (a safe product of two strided
//! views), and a packed AVX-512 f32 kernel for callers that reuse one B for many tiles.

use ndarray::{s, ArrayView2};
use rayon::prelude::*;

use crate::real::Real;

/// `B` made ready for many tile products `A · B[c0..c0 + cols]ᵀ` (see [`Prepared::product`]).
///
/// With `pack` on an AVX-512 CPU and f32 data, B is packed once into panels of 32 rows stored
/// `[k][32]` (extra memory: the size of B) and every product runs [`packed`]'s kernel, about 20 %
/// faster than the `gemm` crate's and OpenBLAS's (which runs AVX2 kernels on AMD Zen 4) on the SAE
/// encode's shapes. Otherwise each product is [`gemm_nt`] on the slice of B.
pub(crate) struct Prepared<'a, T> {
    b: ArrayView2<'a, T>,
    packed: Option<Vec<f32>>,
}

impl<'a, T: Real> Prepared<'a, T> {
    pub(crate) fn new(b: ArrayView2<'a, T>, pack: bool) -> Self {
        let packed =
            (pack && b.nrows() > 0 && b.ncols() > 0 && packed::applies::<T>(&b)).then(|| {
                // SAFETY: `applies` checked that T is f32 and that B's rows are unit-stride.
                unsafe {
                    packed::pack_b(
                        b.as_ptr() as *const f32,
                        b.nrows(),
                        b.ncols(),
                        b.strides()[0] as usize,
                    )
                }
            });
        Self {
            b,
            packed: packed.flatten(),
        }
    }

    pub(crate) fn nrows(&self) -> usize {
        self.b.nrows()
    }

    /// `dst = a · B[c0..c0 + cols]ᵀ`, row-major `a.nrows() × cols` (as [`gemm_nt`]); `c0` must
    /// be a multiple of 32.
    pub(crate) fn product(&self, dst: &mut [T], a: &ArrayView2<T>, c0: usize, cols: usize) {
        let (m, d) = a.dim();
        match &self.packed {
            Some(pb) if packed::applies::<T>(a) && m > 0 && cols > 0 && d > 0 => {
                assert!(
                    c0.is_multiple_of(32) && dst.len() >= m * cols,
                    "Prepared::product: bad call"
                );
                // SAFETY: T is f32 and a's rows are unit-stride (`applies`), so `a` is m rows of
                // d floats at its row stride; `pb` holds B packed in 32-row panels (c0 is a panel
                // border, c0 + cols <= rows of B); `dst` holds m·cols floats (asserted); the CPU
                // has AVX-512F (`applies`).
                unsafe {
                    packed::product(
                        dst.as_mut_ptr() as *mut f32,
                        (a.as_ptr() as *const f32, a.strides()[0] as usize),
                        (m, d),
                        pb.as_ptr().add(c0 * d),
                        cols,
                    )
                }
            }
            _ => gemm_nt(dst, a, &self.b.slice(s![c0..c0 + cols, ..])),
        }
    }
}

/// `dst = a · bᵀ` for `a` (m×d) and `b` (n×d), written row-major into the first `m·n` elements of
/// `dst` (any previous content is overwritten). The views may have any strides (transposed,
/// sliced, reversed); the product runs single-threaded, since callers parallelise over tiles.
///
/// Panics if the inner dimensions differ or `dst` is too short: both are bugs of the caller,
/// never a consequence of user input.
pub(crate) fn gemm_nt<T: Real>(dst: &mut [T], a: &ArrayView2<T>, b: &ArrayView2<T>) {
    let (m, d) = a.dim();
    let (n, d2) = b.dim();
    assert_eq!(d, d2, "gemm_nt: inner dimensions differ");
    assert!(dst.len() >= m * n, "gemm_nt: destination too short");
    if m == 0 || n == 0 {
        return;
    }
    if d == 0 {
        dst[..m * n].fill(T::ZERO);
        return;
    }
    let (sa, sb) = (a.strides(), b.strides());
    // SAFETY: gemm reads lhs(i, p) = a[i, p] at a.as_ptr() + i·sa[0] + p·sa[1] and
    // rhs(p, j) = b[j, p] at b.as_ptr() + j·sb[0] + p·sb[1], i.e. exactly the elements of the two
    // views (through their own strides, so every address lies inside them), and writes the m×n
    // row-major prefix of `dst`, whose length was checked above.
    unsafe {
        gemm::gemm(
            m,
            n,
            d,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            sa[1],
            sa[0],
            b.as_ptr(),
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
}

/// The packed f32 kernel on AVX-512: a micro-tile of 8 rows of A × 32 rows of B, 16 accumulators in
/// registers; per k, one broadcast of each of the 8 A values and two vector loads of packed B. Each
/// dot product is a sequential FMA sum over k, so the result does not depend on blocking or threads.
mod packed {
    use super::*;

    const MR: usize = 8;
    const NR: usize = 32;

    /// Whether the packed path can take `v`: f32, unit column stride, non-negative row stride, and the
    /// process's SIMD path is AVX-512 (so `LATENTATLAS_SIMD=avx2` turns it off, like every dispatched
    /// kernel; the path is only ever AVX-512 on a CPU that has AVX-512F).
    pub(super) fn applies<T: Real>(v: &ArrayView2<T>) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
                && (v.ncols() <= 1 || v.strides()[1] == 1)
                && v.strides()[0] >= 0
                && crate::simd::simd_path() == crate::simd::SimdPath::Avx512
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = v;
            false
        }
    }

    /// B (n rows of d floats at row stride `ldb`) in panels of 32 rows, `[panel][k][32]`, zero-padded;
    /// `None` when the copy cannot be allocated (the caller then uses the unpacked tile).
    ///
    /// # Safety
    /// `b` must point to n rows of d readable floats at row stride `ldb`.
    pub(super) unsafe fn pack_b(b: *const f32, n: usize, d: usize, ldb: usize) -> Option<Vec<f32>> {
        let len = n.div_ceil(NR).checked_mul(d)?.checked_mul(NR)?;
        let mut out = Vec::new();
        out.try_reserve_exact(len).ok()?;
        out.resize(len, 0f32);
        let b = b as usize; // a plain address, so the closure is Send
        out.par_chunks_mut(d * NR)
            .enumerate()
            .for_each(|(p, panel)| {
                for j in 0..NR.min(n - p * NR) {
                    let row = (b as *const f32).add((p * NR + j) * ldb);
                    for kk in 0..d {
                        panel[kk * NR + j] = *row.add(kk);
                    }
                }
            });
        Some(out)
    }

    thread_local! {
        static PACK_A: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// `dst (m × cols, row-major) = A · Bᵀ` for A (m rows of d at row stride `lda`) and the packed
    /// panels starting at `pb` (the first of the `cols` columns).
    ///
    /// # Safety
    /// As [`Prepared::product`] checks: valid pointers and sizes, f32, AVX-512F.
    #[cfg(target_arch = "x86_64")]
    pub(super) unsafe fn product(
        dst: *mut f32,
        (a, lda): (*const f32, usize),
        (m, d): (usize, usize),
        pb: *const f32,
        cols: usize,
    ) {
        PACK_A.with(|pa| {
            let mut pa = pa.borrow_mut();
            pa.clear();
            pa.resize(m.div_ceil(MR) * d * MR, 0.0);
            for r in 0..m {
                let (q, i) = (r / MR, r % MR);
                let row = a.add(r * lda);
                for kk in 0..d {
                    pa[(q * d + kk) * MR + i] = *row.add(kk);
                }
            }
            for p in 0..cols.div_ceil(NR) {
                let width = NR.min(cols - p * NR);
                for q in 0..m.div_ceil(MR) {
                    micro(
                        pa.as_ptr().add(q * d * MR),
                        pb.add(p * d * NR),
                        d,
                        dst.add(q * MR * cols + p * NR),
                        cols,
                        (MR.min(m - q * MR), width),
                    );
                }
            }
        })
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) unsafe fn product(
        _: *mut f32,
        _: (*const f32, usize),
        _: (usize, usize),
        _: *const f32,
        _: usize,
    ) {
        unreachable!("the packed kernel is x86-64 only")
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn micro(
        pa: *const f32,
        pb: *const f32,
        d: usize,
        c: *mut f32,
        ldc: usize,
        (rows, width): (usize, usize),
    ) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for kk in 0..d {
            let b0 = _mm512_loadu_ps(pb.add(kk * NR));
            let b1 = _mm512_loadu_ps(pb.add(kk * NR + 16));
            for (i, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*pa.add(kk * MR + i));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
        let m0: __mmask16 = if width >= 16 {
            0xFFFF
        } else {
            (1u16 << width) - 1
        };
        let m1: __mmask16 = if width >= 32 {
            0xFFFF
        } else if width > 16 {
            (1u16 << (width - 16)) - 1
        } else {
            0
        };
        for (i, acc) in acc.iter().enumerate().take(rows) {
            _mm512_mask_storeu_ps(c.add(i * ldc), m0, acc[0]);
            _mm512_mask_storeu_ps(c.add(i * ldc + 16), m1, acc[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pseudo;
    use ndarray::s;

    #[test]
    fn prepared_products_match_f64_for_ragged_shapes() {
        // shapes off the 8 × 32 micro-tile, rows wider than d (a column slice), packed and not
        for (m, n, d) in [
            (1, 1, 1),
            (37, 70, 19),
            (64, 96, 384),
            (9, 33, 5),
            (300, 65, 7),
        ] {
            let a = pseudo(m, d + 3, 11).mapv(|v| v as f32);
            let b = pseudo(n, d, 12).mapv(|v| v as f32);
            let av = a.slice(s![.., 1..d + 1]);
            let want = av.mapv(f64::from).dot(&b.mapv(f64::from).t());
            for pack in [true, false] {
                let prep = Prepared::new(b.view(), pack);
                for (c0, cols) in [(0, n), (0, n.min(32)), (32, n.saturating_sub(32))] {
                    if cols == 0 || c0 + cols > n {
                        continue;
                    }
                    let mut dst = vec![f32::NAN; m * cols + 3];
                    prep.product(&mut dst, &av, c0, cols);
                    for i in 0..m {
                        for j in 0..cols {
                            let w = want[[i, c0 + j]];
                            let got = f64::from(dst[i * cols + j]);
                            assert!(
                                (got - w).abs() <= 1e-5 * (1.0 + w.abs()),
                                "{m}x{n}x{d} {pack} at {i},{j}"
                            );
                        }
                    }
                    assert!(
                        dst[m * cols..].iter().all(|v| v.is_nan()),
                        "wrote past m·cols"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_ndarray_dot_for_any_layout() {
        let a = pseudo(37, 19, 1);
        let b = pseudo(23, 19, 2);
        let want = a.dot(&b.t());
        let mut dst = vec![0.0; 37 * 23 + 5];
        gemm_nt(&mut dst, &a.view(), &b.view());
        for i in 0..37 {
            for j in 0..23 {
                assert!((dst[i * 23 + j] - want[[i, j]]).abs() < 1e-12);
            }
        }
        // transposed, reversed and strided views
        let at = a.t().to_owned();
        let av = at.t();
        let br = b.slice(s![..;-2, ..]);
        let want = a.dot(&br.t());
        gemm_nt(&mut dst, &av, &br);
        for i in 0..37 {
            for j in 0..br.nrows() {
                assert!((dst[i * br.nrows() + j] - want[[i, j]]).abs() < 1e-12);
            }
        }
        // empty inner dimension: zeros
        let e = ndarray::Array2::<f64>::zeros((2, 0));
        gemm_nt(&mut dst, &e.view(), &e.view());
        assert_eq!(&dst[..4], &[0.0; 4]);
    }
}
