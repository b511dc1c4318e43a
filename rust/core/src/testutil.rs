//! Helpers shared by the unit tests.

use ndarray::Array2;

/// A deterministic n×f matrix of values in [-0.5, 0.5) (an LCG; no rand dependency needed).
pub(crate) fn pseudo(n: usize, f: usize, seed: u64) -> Array2<f64> {
    let mut s = seed;
    Array2::from_shape_fn((n, f), |_| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    })
}

/// Sparse codes (values, indices), rows × k, scattered into a dense rows × n matrix (repeats add up).
pub(crate) fn dense_codes(vals: &Array2<f64>, idx: &Array2<i64>, n: usize) -> Array2<f64> {
    let mut h = Array2::zeros((vals.nrows(), n));
    for i in 0..vals.nrows() {
        for t in 0..vals.ncols() {
            h[[i, idx[[i, t]] as usize]] += vals[[i, t]];
        }
    }
    h
}
