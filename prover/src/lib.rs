//! SRS handling, key generation, proving, and the folder-level pipeline steps
//! (`compile`, `setup`, `run`, `prove`, `inspect`) that the CLI and the service call.
#![warn(missing_docs)]

mod compile;
mod error;
mod inspect;
pub mod keys;
pub mod options;
pub mod pipeline;
pub mod proving;
pub mod segments;
pub mod srs;

pub use error::{Halo2Error, ProverError};

/// Where this build proves and generates keys.
#[cfg(not(feature = "gpu"))]
pub const BACKEND: &str = "CPU";
/// Where this build proves and generates keys.
#[cfg(feature = "gpu")]
pub const BACKEND: &str = "GPU (CUDA, halo2-axiom-gpu)";
