//! Sparse-autoencoder kernels that are specific to the model (the sparse code kernels they feed,
//! decode and backward, live in [`crate::sparse`]; the optimiser in [`crate::adam`]).

mod encode;
mod threshold;

pub use encode::sae_encode;
pub use threshold::{sae_encode_threshold, Csr};
