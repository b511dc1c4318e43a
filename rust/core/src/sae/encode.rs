//! TopK SAE encode: the GEMM + top-k primitive with the encoder's bias and a ReLU epilogue.

use ndarray::{Array2, ArrayView2};

use super::threshold::folded_bias;
use crate::error::{shape, Result};
use crate::gemm_topk::{gemm_topk, ArgNames, GemmTopkOptions};
use crate::real::Real;

/// The primitive's arguments under the names the encode's caller knows them by.
const NAMES: ArgNames = ArgNames {
    a: "X",
    b: "W_enc",
    bias: "b_enc",
    candidates: "n_latents",
};

/// TopK encode `h = TopK(W_enc (x - b_dec) + b_enc)` with ReLU on the kept values.
///
/// Runs [`gemm_topk`] with `bias = b_enc - W_enc b_dec` (so the `rows × n_latents`
/// pre-activations are never stored) and clamps the k kept values at zero.
/// Returns `(values, indices)`, each `rows × k`, values descending.
pub fn sae_encode<T: Real>(
    x: ArrayView2<T>,
    w_enc: ArrayView2<T>,
    b_enc: &[T],
    b_dec: Option<&[T]>,
    k: usize,
) -> Result<(Array2<T>, Array2<i64>)> {
    let d = w_enc.ncols();
    if x.ncols() != d {
        return Err(shape(
            "X",
            format!(
                "expected {d} columns (d_in of the model), got {}",
                x.ncols()
            ),
        ));
    }
    let bias = folded_bias(&w_enc, b_enc, b_dec)?;
    let opts = GemmTopkOptions {
        k,
        bias: Some(&bias),
        exclude_self: false,
        names: NAMES,
    };
    let (mut vals, idx) = gemm_topk(x, w_enc, opts)?;
    vals.mapv_inplace(|v| if v > T::ZERO { v } else { T::ZERO });
    Ok((vals, idx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::testutil::pseudo;

    #[test]
    fn matches_dense_pre_activations() {
        let x = pseudo(90, 12, 1);
        let w = pseudo(300, 12, 2);
        let be: Vec<f64> = (0..300).map(|j| (j % 7) as f64 * 0.01 - 0.03).collect();
        let bd: Vec<f64> = (0..12).map(|j| j as f64 * 0.02).collect();
        let (v, ix) = sae_encode(x.view(), w.view(), &be, Some(&bd), 5).unwrap();
        for i in 0..90 {
            let mut pre: Vec<(f64, usize)> = (0..300)
                .map(|j| {
                    let s: f64 = (0..12).map(|c| w[[j, c]] * (x[[i, c]] - bd[c])).sum();
                    (s + be[j], j)
                })
                .collect();
            pre.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            for t in 0..5 {
                assert_eq!(ix[[i, t]] as usize, pre[t].1);
                assert!((v[[i, t]] - pre[t].0.max(0.0)).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn errors_name_the_encoders_arguments() {
        let x = pseudo(4, 3, 1);
        let mut w = pseudo(5, 3, 2);
        let be = vec![0.0; 5];
        let e = sae_encode(x.view(), w.view(), &be, None, 6).unwrap_err();
        assert_eq!(
            e.to_string(),
            "k: expected 1 <= k <= 5 (n_latents), got k = 6"
        );
        w[[2, 0]] = f64::NAN;
        assert_eq!(
            sae_encode(x.view(), w.view(), &be, Some(&[0.0; 3]), 2).unwrap_err(),
            CoreError::NonFinite {
                arg: "W_enc",
                row: 2
            }
        );
        assert!(matches!(
            sae_encode(x.view(), w.view(), &be[..4], None, 2),
            Err(CoreError::Shape { arg: "b_enc", .. })
        ));
    }
}
