//! Running a kernel on a chosen number of threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{argument, CoreError, Result};

/// How many distinct pool sizes are kept alive; further sizes get a pool built for the call.
const MAX_CACHED_POOLS: usize = 8;

fn pools() -> &'static Mutex<HashMap<usize, Arc<ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn build(n: usize) -> Result<ThreadPool> {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(move |i| format!("latentatlas-{n}-{i}"))
        .build()
        .map_err(|e| CoreError::Threads(e.to_string()))
}

/// The pool of `n` workers: built on first use and cached per size (building a pool spawns
/// threads, far too slow to repeat on every call of a training loop).
fn pool(n: usize) -> Result<Arc<ThreadPool>> {
    // A poisoned lock only means another thread panicked while holding it; the map is still valid.
    let mut map = pools().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(&n) {
        return Ok(Arc::clone(p));
    }
    let p = Arc::new(build(n)?);
    if map.len() < MAX_CACHED_POOLS {
        map.insert(n, Arc::clone(&p));
    }
    Ok(p)
}

/// Worker threads of rayon's global pool (what `threads = None` runs on).
pub fn global_threads() -> usize {
    rayon::current_num_threads()
}

/// Run `f` on a pool of `threads` workers, or on rayon's global pool when `None`.
///
/// `threads = None` is the default and the fast path: rayon's global pool (one worker per core,
/// or `RAYON_NUM_THREADS`). `Some(n)` runs on a dedicated pool of `n` workers that is built once
/// per size and then reused. Kernels split work into blocks whose size never depends on the pool,
/// so the thread count changes only the speed, never the bits of the result.
pub fn with_threads<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<R> + Send,
) -> Result<R> {
    match threads {
        None => f(),
        Some(0) => Err(argument(
            "threads",
            "expected a positive number of threads or None",
        )),
        Some(n) => pool(n)?.install(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_cached_and_sized() {
        let n = with_threads(Some(3), || Ok(rayon::current_num_threads())).unwrap();
        assert_eq!(n, 3);
        let a = pool(3).unwrap();
        let b = pool(3).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(matches!(
            with_threads(Some(0), || Ok(())),
            Err(CoreError::Argument { arg: "threads", .. })
        ));
        let e: Result<()> = with_threads(Some(2), || Err(argument("x", "inner")));
        assert_eq!(e.unwrap_err().to_string(), "x: inner");
        assert_eq!(with_threads(None, || Ok(5)).unwrap(), 5);
    }
}
