//! Run-time choice of the vector instruction set for the hand-dispatched kernels (Rayleigh
//! energies and the sparse decode).
//!
//! Those kernels are plain Rust loops compiled several times: for the baseline target ("scalar":
//! no extra CPU features, which on x86-64 still means SSE2) and with AVX2 or AVX-512F enabled.
//! Rust never contracts `a*b + c` into an FMA and the loops vectorise across independent
//! elements, so every path computes the same bits; only the speed differs.
//!
//! The path is chosen once per process: the widest this CPU supports, unless the environment
//! variable `LATENTATLAS_SIMD` (`auto`, `scalar`, `avx2` or `avx512`) asks for another. An
//! unknown value, or a path this CPU lacks, falls back to `auto` and leaves a message in
//! [`simd_warning`]; an instruction the CPU lacks is never executed.

use std::sync::OnceLock;

/// The environment variable that overrides the choice.
pub const SIMD_ENV: &str = "LATENTATLAS_SIMD";
/// The values [`SIMD_ENV`] accepts.
pub const SIMD_CHOICES: &str = "auto, scalar, avx2, avx512";

/// A compiled variant of the dispatched kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimdPath {
    /// The baseline target, no extra CPU features. Always available.
    Scalar,
    /// x86-64 with AVX2.
    Avx2,
    /// x86-64 with AVX-512F.
    Avx512,
}

impl SimdPath {
    /// Every path, narrowest first.
    pub const ALL: [SimdPath; 3] = [SimdPath::Scalar, SimdPath::Avx2, SimdPath::Avx512];

    /// The name [`SIMD_ENV`] uses for this path.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Scalar => "scalar",
            SimdPath::Avx2 => "avx2",
            SimdPath::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        match self {
            SimdPath::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The widest path this CPU supports.
    pub fn best() -> SimdPath {
        *Self::ALL
            .iter()
            .rev()
            .find(|p| p.supported())
            .unwrap_or(&SimdPath::Scalar)
    }
}

/// The path in use and, when the request could not be honoured, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimdChoice {
    pub path: SimdPath,
    pub warning: Option<String>,
}

/// Resolve a value of [`SIMD_ENV`] (`None` when unset) against this CPU.
pub fn resolve(value: Option<&str>) -> SimdChoice {
    let best = SimdPath::best();
    let auto = |warning: Option<String>| SimdChoice {
        path: best,
        warning,
    };
    let raw = match value {
        None => return auto(None),
        Some(v) => v,
    };
    let wanted = match raw.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => return auto(None),
        "scalar" => SimdPath::Scalar,
        "avx2" => SimdPath::Avx2,
        "avx512" => SimdPath::Avx512,
        _ => {
            return auto(Some(format!(
                "{SIMD_ENV}={raw:?} is not one of {SIMD_CHOICES}; using auto ({})",
                best.name()
            )))
        }
    };
    if wanted.supported() {
        SimdChoice {
            path: wanted,
            warning: None,
        }
    } else {
        auto(Some(format!(
            "{SIMD_ENV}={raw:?} asks for {} but this CPU does not support it; using auto ({})",
            wanted.name(),
            best.name()
        )))
    }
}

fn choice() -> &'static SimdChoice {
    static CHOICE: OnceLock<SimdChoice> = OnceLock::new();
    CHOICE.get_or_init(|| resolve(std::env::var(SIMD_ENV).ok().as_deref()))
}

/// The path the dispatched kernels use in this process (read from [`SIMD_ENV`] once).
pub fn simd_path() -> SimdPath {
    choice().path
}

/// Why [`SIMD_ENV`] was not honoured, if it was not (an unknown value or an unsupported path).
pub fn simd_warning() -> Option<&'static str> {
    choice().warning.as_deref()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Run `f` compiled for `path` (or for the baseline when this CPU lacks `path`).
///
/// `f` must be an `#[inline(always)]` closure whose callees are `#[inline(always)]` too, so its
/// whole body is inlined into the feature-enabled wrapper and compiled with those features; use
/// [`simd_dispatch!`], which adds the attribute. Apply it per block of work,
/// never per element: the call is not free.
#[inline(always)]
pub(crate) fn dispatch<R>(path: SimdPath, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match path {
            // SAFETY: the CPU supports AVX-512F (checked in the guard).
            SimdPath::Avx512 if path.supported() => return unsafe { run_avx512(f) },
            // SAFETY: the CPU supports AVX2 (checked in the guard).
            SimdPath::Avx2 if path.supported() => return unsafe { run_avx2(f) },
            _ => {}
        }
    }
    let _ = path;
    f()
}

/// `simd_dispatch!(path, expr)`: evaluate `expr` with the vector instructions of `path`
/// (see [`dispatch`]). The expression should call `#[inline(always)]` functions only.
macro_rules! simd_dispatch {
    ($path:expr, $body:expr) => {
        $crate::simd::dispatch(
            $path,
            #[inline(always)]
            || $body,
        )
    };
}
pub(crate) use simd_dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_honours_supported_paths_and_warns_otherwise() {
        let best = SimdPath::best();
        assert_eq!(
            resolve(None),
            SimdChoice {
                path: best,
                warning: None
            }
        );
        assert_eq!(resolve(Some(" AUTO ")).path, best);
        assert_eq!(resolve(Some("")).warning, None);
        assert_eq!(
            resolve(Some("scalar")),
            SimdChoice {
                path: SimdPath::Scalar,
                warning: None
            }
        );
        let bad = resolve(Some("sse9"));
        assert_eq!(bad.path, best);
        let w = bad.warning.unwrap();
        assert!(
            w.contains(SIMD_ENV) && w.contains(SIMD_CHOICES) && w.contains("sse9"),
            "{w}"
        );
        for p in [SimdPath::Avx2, SimdPath::Avx512] {
            let c = resolve(Some(p.name()));
            if p.supported() {
                assert_eq!(
                    c,
                    SimdChoice {
                        path: p,
                        warning: None
                    }
                );
            } else {
                assert_eq!(c.path, best);
                assert!(c.warning.unwrap().contains("does not support"));
            }
        }
    }

    #[test]
    fn dispatch_never_runs_an_unsupported_path() {
        for p in SimdPath::ALL {
            let v: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5).collect();
            let s = simd_dispatch!(p, v.iter().map(|x| x * 2.0).sum::<f32>());
            assert_eq!(s, 499_500.0);
        }
    }
}
