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
    /// `compile --like` of a model that is not the sibling's architecture.
    #[error("{0}")]
    NotLike(String),
    /// halo2 refused (key generation or proving).
    #[error("halo2: {0}")]
    Halo2(String),
    /// The GPU prover ran out of device memory (GPU builds only).
    #[error("GPU out of memory: {0} (a smaller circuit, a larger proof budget for fewer rows, or the CPU build)")]
    GpuOutOfMemory(String),
}

/// halo2's error type in this build: the canonical one, or the GPU prover's, which also
/// carries CUDA errors.
#[cfg(not(feature = "gpu"))]
pub type Halo2Error = halo2_base::halo2_proofs::plonk::Error;
/// halo2's error type in this build: the canonical one, or the GPU prover's, which also
/// carries CUDA errors.
#[cfg(feature = "gpu")]
pub type Halo2Error = halo2_base::halo2_proofs::plonk::GpuError;

impl ProverError {
    /// A halo2 failure while doing `what`; device memory exhaustion is told apart.
    pub fn halo2(what: &str, e: Halo2Error) -> Self {
        #[cfg(feature = "gpu")]
        {
            use halo2_base::halo2_proofs::cuda::HaloGpuError;
            use halo2_base::halo2_proofs::plonk::GpuError;
            // cudaErrorMemoryAllocation
            const CUDA_OOM: i32 = 2;
            let oom = match &e {
                GpuError::Cuda(c) => c.code == CUDA_OOM,
                GpuError::HaloGpu(HaloGpuError::InsufficientGpuMemory { .. }) => true,
                GpuError::HaloGpu(HaloGpuError::Cuda(c)) => c.code == CUDA_OOM,
                _ => false,
            };
            if oom {
                return ProverError::GpuOutOfMemory(format!("{what}: {e}"));
            }
        }
        ProverError::Halo2(format!("{what}: {e:?}"))
    }
}
