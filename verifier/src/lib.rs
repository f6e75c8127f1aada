//! Native verification of zkinfer proofs. It reads only a model folder's verifying key,
//! settings and the verifier's SRS points — never the model, the proving key or the prover.
#![warn(missing_docs)]

use std::path::Path;

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_base::halo2_proofs::plonk::{verify_proof, VerifyingKey};
use halo2_base::halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_base::halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_base::halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_base::halo2_proofs::transcript::TranscriptReadBuffer;
use snark_verifier_sdk::snark_verifier::system::halo2::transcript::evm::EvmTranscript;
use snark_verifier_sdk::NativeLoader;
use thiserror::Error;
use zkinfer_circuits::artifacts::{
    files, in_dir, read_bytes, read_json, read_kzg_verifier, vk_from_bytes, ArtifactError,
    ProofFile, Settings,
};
use zkinfer_circuits::field::from_hex;

/// Why a proof was not accepted.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// A file could not be read or is malformed.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The proof file is not well-formed.
    #[error("malformed proof file: {0}")]
    Malformed(String),
    /// The proof was made for another model or key than the folder holds.
    #[error("{0}")]
    WrongModel(String),
    /// The `outputs` in the proof file are not what the proven instances say.
    #[error("the outputs in the proof file do not match its proven public instances")]
    OutputsMismatch,
    /// The cryptographic check failed.
    #[error("invalid proof: the verifier rejected it for these public instances")]
    Invalid,
}

/// Verifies raw proof bytes against a verifying key and public instances.
pub fn verify_proof_bytes(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[Fr],
    proof: &[u8],
) -> Result<(), VerifyError> {
    let mut transcript = EvmTranscript::<G1Affine, NativeLoader, &[u8], Vec<u8>>::init(proof);
    let strategy = SingleStrategy::new(params);
    let ok = verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
        params,
        vk,
        strategy,
        &[&[instances]],
        &mut transcript,
    )
    .is_ok();
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Invalid)
    }
}

/// What a successful verification established.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The proven outputs (dequantized).
    pub outputs: Vec<Vec<f64>>,
}

/// Verifies `PROOF.json` against the model folder `dir`.
pub fn verify_file(dir: &Path, proof_path: &Path) -> Result<Verified, VerifyError> {
    let settings: Settings = read_json(&in_dir(dir, files::SETTINGS))?;
    let proof: ProofFile = read_json(proof_path)?;
    if proof.model_sha256 != settings.model_sha256 {
        return Err(VerifyError::WrongModel(format!(
            "the proof is for model {}, the folder holds model {}",
            short(&proof.model_sha256),
            short(&settings.model_sha256)
        )));
    }
    let vk_path = in_dir(dir, files::VK);
    let vk_bytes = read_bytes(&vk_path)?;
    if zkinfer_model::sha256_hex(&vk_bytes) != proof.vk_sha256 {
        return Err(VerifyError::WrongModel(format!(
            "the proof was made with verifying key {}, the folder holds {}",
            short(&proof.vk_sha256),
            short(&zkinfer_model::sha256_hex(&vk_bytes))
        )));
    }
    let vk = vk_from_bytes(&vk_bytes, &settings.plan, &vk_path)?;
    let params = read_kzg_verifier(&in_dir(dir, files::KZG_VERIFIER))?;
    let instances: Vec<Fr> = proof
        .instances
        .iter()
        .enumerate()
        .map(|(i, h)| {
            from_hex(h).ok_or_else(|| {
                VerifyError::Malformed(format!(
                    "instance {i} is not a canonical 32-byte field element"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    if instances.len() != settings.plan.num_instances {
        return Err(VerifyError::Malformed(format!(
            "{} instances, the circuit has {}",
            instances.len(),
            settings.plan.num_instances
        )));
    }
    let bytes = proof
        .proof
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| VerifyError::Malformed("\"proof\" is not 0x-hex".into()))?;
    let outputs = settings
        .outputs_from_instances(&instances)
        .ok_or(VerifyError::OutputsMismatch)?;
    if outputs != proof.outputs {
        return Err(VerifyError::OutputsMismatch);
    }
    verify_proof_bytes(&params, &vk, &instances, &bytes)?;
    Ok(Verified { outputs })
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}
