use thiserror::Error;
use zkinfer_circuits::artifacts::ArtifactError;
use zkinfer_circuits::CircuitError;
use zkinfer_model::ModelError;

/// Errors of the proving side.
#[derive(Debug, Error)]
pub enum ProverError {
    /// Model import, quantization or evaluation.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Circuit layout or sizing.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// Reading or writing artifacts.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// An SRS that cannot be used.
    #[error("SRS: {0}")]
    Srs(String),
    /// A model folder that is incomplete, stale, or from another model.
    #[error("{0}")]
    Folder(String),
    /// halo2 refused (key generation or proving).
    #[error("halo2: {0}")]
    Halo2(String),
}
