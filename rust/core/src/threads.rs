//! Running a kernel on a chosen number of threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{argument, CoreError, Result};

/// How many distinct pool sizes are kept alive; further sizes get a pool built for the call.
const MAX_CACHED_POOLS: usize = 8;
/// `threads` may ask for at most this many workers per core (more only adds switching; a huge
/// count would spend seconds spawning threads or exhaust the process table).
pub const MAX_THREADS_PER_CORE: usize = 8;

/// The cached pools and the process they belong to. Worker threads do not survive `fork`: a forked
/// child that used a parent's pool would wait forever for workers that do not exist. So the cache
/// remembers its process id and a child starts from an empty cache.
struct Pools {
    pid: u32,
    map: HashMap<usize, Arc<ThreadPool>>,
}

fn pools() -> &'static Mutex<Pools> {
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    POOLS.get_or_init(|| {
        Mutex::new(Pools {
            pid: std::process::id(),
            map: HashMap::new(),
        })
    })
}

/// The process that first ran a kernel: only there is rayon's global pool alive. (The global pool
/// is created on first use and cannot be rebuilt, so a forked child never touches it.)
fn origin_pid() -> u32 {
    static ORIGIN: OnceLock<u32> = OnceLock::new();
    *ORIGIN.get_or_init(std::process::id)
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
    let mut pools = pools().lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if pools.pid != pid {
        // A forked child: the pools' workers live only in the parent. Dropping a pool would signal
        // threads that are not there, so the old handles are leaked instead (a few bytes each).
        std::mem::forget(std::mem::take(&mut pools.map));
        pools.pid = pid;
    }
    if let Some(p) = pools.map.get(&n) {
        return Ok(Arc::clone(p));
    }
    let p = Arc::new(build(n)?);
    if pools.map.len() < MAX_CACHED_POOLS {
        pools.map.insert(n, Arc::clone(&p));
    }
    Ok(p)
}

/// Cores of this machine (at least 1).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The largest `threads` a kernel accepts: [`MAX_THREADS_PER_CORE`] × the cores.
pub fn max_threads() -> usize {
    MAX_THREADS_PER_CORE * cores()
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
///
/// After `fork` (multiprocessing's fork start method) the child gets fresh pools of the same
/// sizes: `None` then runs on a private pool of [`global_threads`] workers.
pub fn with_threads<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<R> + Send,
) -> Result<R> {
    let forked = origin_pid() != std::process::id();
    match threads {
        None if !forked => f(),
        None => pool(global_threads())?.install(f),
        Some(0) => Err(argument(
            "threads",
            "expected a positive number of threads or None",
        )),
        Some(n) if n > max_threads() => Err(argument(
            "threads",
            format!(
                "expected at most {} ({MAX_THREADS_PER_CORE} per core on {} cores), got {n}",
                max_threads(),
                cores()
            ),
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
        let many = with_threads(Some(max_threads() + 1), || Ok(()));
        assert!(matches!(
            many,
            Err(CoreError::Argument { arg: "threads", .. })
        ));
    }
}
