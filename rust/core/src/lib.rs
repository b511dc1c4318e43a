//! latentatlas-core: the numeric kernels behind `latentatlas._core`.
//!
//! Pure Rust (no Python types). Every kernel is generic over `f32`/`f64`, parallel with rayon over
//! fixed-size blocks (so results do not depend on the thread count) and keeps memory bounded by a
//! block, never by the number of rows.
//!
//! Floors (each module uses only those below it):
//! 1. `error`, `real`, `check`, `threads`, `simd`, `tile` (the one GEMM call), `topk`;
//! 2. `gemm_topk`: THE primitive, blocked GEMM + fused per-row top-k;
//! 3. `knn`, `sae` (encode), `lambda_topk` (λ-aware search) on the primitive; `taumode` on `energy`; `gram`, `energy`, `sparse`, `search`, `adam`, `tomato` (graph persistence) beside it.

// Index loops over fixed-size blocks read more clearly than zipped iterators in the kernels.
#![allow(clippy::needless_range_loop)]

mod check;
mod error;
mod real;
#[cfg(test)]
mod testutil;
mod threads;
mod tile;
mod topk;

pub mod adam;
pub mod energy;
pub mod gemm_topk;
pub mod gram;
pub mod knn;
pub mod lambda_topk;
pub mod sae;
pub mod search;
pub mod simd;
pub mod sparse;
pub mod taumode;
pub mod tomato;

pub use adam::{adam_step, AdamOptions};
pub use energy::{rayleigh_energy, EdgeList};
pub use error::{CoreError, Result};
pub use gemm_topk::{gemm_topk, ArgNames, GemmTopkOptions};
pub use gram::{feature_topk, gram, GRAM_CHUNK_ROWS};
pub use knn::knn_sqdist;
pub use lambda_topk::{lambda_topk, LambdaTopkOptions};
pub use real::Real;
pub use sae::{sae_encode, sae_encode_threshold, Csr};
pub use search::latent_search;
pub use simd::{simd_path, simd_warning, SimdPath};
pub use sparse::{sparse_decode, sparse_gather_dot, sparse_scatter_rows, Accum};
pub use taumode::taumode_raw;
pub use threads::{global_threads, max_threads, with_threads, MAX_THREADS_PER_CORE};
pub use tomato::{tomato_forest, TomatoForest};
pub use topk::TopK;
