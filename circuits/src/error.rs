use thiserror::Error;

/// Errors while laying out or sizing a circuit.
#[derive(Debug, Error)]
pub enum CircuitError {
    /// A witness value falls outside the range a chip proves; the honest prover stops here.
    #[error("value {value} at {place} does not fit in {bits} signed bits")]
    OutOfRange {
        /// Where (node name, element).
        place: String,
        /// The value.
        value: i128,
        /// The allowed signed width.
        bits: u32,
    },
    /// The circuit needs more rows or columns than allowed.
    #[error("circuit too large: {0}")]
    TooLarge(String),
    /// Every shape that fits the other limits needs more proving memory than allowed.
    #[error("circuit too large: {message}")]
    OverMemory {
        /// The least estimated proving memory of any shape, in bytes.
        needed: u64,
        /// The limit, in bytes.
        allowed: u64,
        /// What is over, for a person.
        message: String,
    },
    /// The witness disagrees with the integer reference evaluator (an internal bug).
    #[error(
        "internal: circuit output {index} is {circuit}, the reference evaluator says {reference}"
    )]
    Mismatch {
        /// Flat output position.
        index: usize,
        /// Value computed in the circuit.
        circuit: i128,
        /// Value from `QGraph::eval`.
        reference: i128,
    },
    /// A layout invariant broke (a bug in zkinfer, never a property of the input).
    #[error("internal: {0}")]
    Internal(String),
    /// The CPU lacks instructions this build's field arithmetic uses.
    #[error("this CPU lacks {0}, which this x86-64 build's field arithmetic needs (any Intel since Broadwell or AMD since Zen has them)")]
    Cpu(String),
    /// The reference evaluator rejected the inputs.
    #[error(transparent)]
    Model(#[from] zkinfer_model::ModelError),
}
