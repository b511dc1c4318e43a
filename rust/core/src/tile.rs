//! The one place that calls the GEMM crate: a safe product of two strided views into a tile.

use ndarray::ArrayView2;

use crate::real::Real;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pseudo;
    use ndarray::s;

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
