//! What can go wrong in encrypted inference, as typed errors.

use thiserror::Error;

/// An error of the FHE path.
#[derive(Debug, Error)]
pub enum FheError {
    /// The model has an op the FHE path cannot evaluate.
    #[error("node {node:?} ({op}) cannot run on encrypted inputs: {why}")]
    Unsupported {
        /// The node's name (from the ONNX file).
        node: String,
        /// Its ONNX op.
        op: String,
        /// Why.
        why: String,
    },
    /// No quantization within the parameter set's limits reaches the accuracy asked for.
    #[error("the model does not fit the FHE message space: {0}")]
    DoesNotFit(String),
    /// An input is malformed or outside the range the quantization covers.
    #[error("input: {0}")]
    Input(String),
    /// A file is missing, unreadable, truncated, or of the wrong kind.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// Keys, ciphertexts or programs that do not belong together.
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// An accumulator left its message space in the clear evaluation: a bug in the compiler's
    /// bounds, reported rather than let through as a wrong answer.
    #[error(
        "accumulator {value}[{idx}] = {acc} is outside [0, {modulus}) (compiler bound violated)"
    )]
    Overflow {
        /// Which value.
        value: usize,
        /// Which element.
        idx: usize,
        /// The value reached.
        acc: i64,
        /// The message space.
        modulus: u64,
    },
    /// A model-crate error (import, input parsing).
    #[error(transparent)]
    Model(#[from] zkinfer_model::ModelError),
}

/// Result with [`FheError`].
pub type Result<T, E = FheError> = std::result::Result<T, E>;
