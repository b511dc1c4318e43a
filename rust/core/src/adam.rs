//! A fused, bias-corrected Adam step (Kingma & Ba) over one parameter array.

use rayon::prelude::*;

use crate::check::check_finite_slice;
use crate::error::{argument, shape, Result};
use crate::real::Real;

/// Elements per parallel task (fixed, so results never depend on the thread count).
const CHUNK: usize = 1 << 14;

/// Hyper-parameters of one Adam step (bias-corrected, as in Kingma & Ba).
#[derive(Debug, Clone, Copy)]
pub struct AdamOptions {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// 1-based step number (for the bias correction).
    pub step: u64,
}

/// In-place Adam update of `param` from `grad`, with moment buffers `m` and `v`, all one length.
pub fn adam_step<T: Real>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    o: AdamOptions,
) -> Result<()> {
    let n = param.len();
    if grad.len() != n || m.len() != n || v.len() != n {
        return Err(shape(
            "grad",
            format!(
                "param, grad, m and v must have one length, got {n}, {}, {}, {}",
                grad.len(),
                m.len(),
                v.len()
            ),
        ));
    }
    if o.step == 0 {
        return Err(argument("step", "expected a 1-based step number"));
    }
    check_finite_slice(grad, "grad")?;
    let c1 = 1.0 - o.beta1.powf(o.step as f64);
    let c2 = 1.0 - o.beta2.powf(o.step as f64);
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            for i in 0..p.len() {
                let gi = g[i].to_f64();
                let mi = o.beta1 * m[i].to_f64() + (1.0 - o.beta1) * gi;
                let vi = o.beta2 * v[i].to_f64() + (1.0 - o.beta2) * gi * gi;
                m[i] = T::from_f64(mi);
                v[i] = T::from_f64(vi);
                let upd = o.lr * (mi / c1) / ((vi / c2).sqrt() + o.eps);
                p[i] = T::from_f64(p[i].to_f64() - upd);
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;

    #[test]
    fn first_step_moves_by_lr_sign_and_errors() {
        let mut p = vec![1.0f64, -2.0];
        let g = vec![0.5, -0.25];
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        let o = AdamOptions {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 1,
        };
        adam_step(&mut p, &g, &mut m, &mut v, o).unwrap();
        // first bias-corrected step moves each parameter by lr·sign(g)
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6);
        assert!(adam_step(&mut p, &g[..1], &mut m, &mut v, o).is_err());
        let zero = AdamOptions { step: 0, ..o };
        assert!(matches!(
            adam_step(&mut p, &g, &mut m, &mut v, zero),
            Err(CoreError::Argument { arg: "step", .. })
        ));
        assert_eq!(
            adam_step(&mut p, &[0.0, f64::NAN], &mut m, &mut v, o),
            Err(CoreError::NonFinite {
                arg: "grad",
                row: 1
            })
        );
    }
}
