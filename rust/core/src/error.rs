use thiserror::Error;

/// Errors a kernel reports instead of panicking. `arg` names the offending argument so the Python
/// layer can raise an exception that says which input was wrong.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// Wrong shape or an inconsistent size between arguments (ValueError in Python).
    #[error("{arg}: {msg}")]
    Shape { arg: &'static str, msg: String },
    /// An argument outside its allowed range (ValueError in Python).
    #[error("{arg}: {msg}")]
    Argument { arg: &'static str, msg: String },
    /// NaN or infinity found while streaming over the input (ValueError in Python).
    #[error("{arg} contains NaN or infinity (first at row {row})")]
    NonFinite { arg: &'static str, row: usize },
    /// The thread pool could not be built (RuntimeError in Python).
    #[error("thread pool: {0}")]
    Threads(String),
}

pub type Result<T> = std::result::Result<T, CoreError>;

pub(crate) fn shape(arg: &'static str, msg: impl Into<String>) -> CoreError {
    CoreError::Shape {
        arg,
        msg: msg.into(),
    }
}

pub(crate) fn argument(arg: &'static str, msg: impl Into<String>) -> CoreError {
    CoreError::Argument {
        arg,
        msg: msg.into(),
    }
}

/// A vector of `dims.iter().product()` copies of `fill`, or an error naming `arg` when the size
/// overflows `usize` or the memory cannot be reserved.
///
/// Every output whose size comes from the caller (a count such as `n_latents`, or a product of
/// sizes such as `rows × k`) is allocated here, so an absurd size is a clear error instead of an
/// allocation abort (which would kill the interpreter) or a `capacity overflow` panic.
pub(crate) fn buffer<T: Clone>(dims: &[usize], fill: T, arg: &'static str) -> Result<Vec<T>> {
    let too_big = || {
        argument(
            arg,
            format!(
                "an output of shape {dims:?} ({} bytes per element) cannot be allocated",
                std::mem::size_of::<T>()
            ),
        )
    };
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&len| {
            len.checked_mul(std::mem::size_of::<T>())
                .is_some_and(|b| b <= isize::MAX as usize && b as u64 <= memory_limit())
        })
        .ok_or_else(too_big)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_big())?;
    v.resize(len, fill);
    Ok(v)
}

/// The most bytes one output may take: the machine's RAM plus swap (read once), as glibc's
/// overcommit heuristic would refuse. An allocator that maps with `MAP_NORESERVE` (the extension
/// links mimalloc) grants any reservation, so without this an absurd size would be granted and
/// then filled until the OOM killer ends the process. `u64::MAX` where it cannot be read.
fn memory_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let kib = |text: &str, key: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.starts_with(key))?;
            line[key.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| Some((kib(&t, "MemTotal:")? + kib(&t, "SwapTotal:").unwrap_or(0)) * 1024))
            .unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_buffers_are_errors_not_aborts() {
        assert_eq!(buffer(&[2, 3], 0u8, "x").unwrap(), vec![0u8; 6]);
        for dims in [
            &[usize::MAX, 2][..],
            &[1 << 62, 8],
            &[1_000_000_000_000, 1_000_000],
        ] {
            let e = buffer(dims, 0.0f64, "n_latents").unwrap_err();
            assert!(
                matches!(
                    e,
                    CoreError::Argument {
                        arg: "n_latents",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }
}
