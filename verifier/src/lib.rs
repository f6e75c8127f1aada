//! Native verification of zkinfer proofs. It reads only a model folder's settings, verifying
//! key and the verifier's SRS points — never the model, the proving key or the prover — and
//! trusts none of them: their model id is recomputed and can be pinned, the SRS points can be
//! checked against a ceremony file, and the proven input against an input file.
#![warn(missing_docs)]

pub mod chain;
pub mod contracts;
pub mod evm;
mod inputs;
pub mod segments;
pub mod solc;
pub mod solidity;
mod srs;

use std::path::Path;

use inputs::{check_input, check_input_data};
pub use srs::{srs_check, SrsCheck};

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_base::halo2_proofs::plonk::{verify_proof, VerifyingKey};
use halo2_base::halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_base::halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_base::halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_base::halo2_proofs::transcript::{Transcript, TranscriptRead, TranscriptReadBuffer};
use snark_verifier_sdk::snark_verifier::system::halo2::transcript::evm::{
    ChallengeEvm, EvmTranscript,
};
use snark_verifier_sdk::NativeLoader;
use thiserror::Error;
use zkinfer_circuits::artifacts::{read_json, ArtifactError, ProofFile};
use zkinfer_circuits::commit::commitment_hex;
use zkinfer_circuits::field::from_hex;
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_circuits::Visibility;

/// Why a proof was not accepted.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// A file could not be read or is malformed.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The proof file is not well-formed.
    #[error("malformed proof file: {0}")]
    Malformed(String),
    /// The proof was made for another model id than the folder's.
    #[error("the proof is for model id {proof}, the folder is model id {folder}")]
    WrongModel {
        /// The id the proof file names.
        proof: String,
        /// The id recomputed from the folder.
        folder: String,
    },
    /// The folder is not the model the verifier pinned.
    #[error("the folder is model id {folder}, not the pinned model id {pinned}")]
    NotPinned {
        /// The id given with `--model-id`.
        pinned: String,
        /// The id recomputed from the folder.
        folder: String,
    },
    /// The folder's SRS points are not the ceremony file's, or the file cannot be used.
    #[error("SRS: {0}")]
    Srs(String),
    /// The input file cannot be read or quantized.
    #[error("input: {0}")]
    Input(String),
    /// The proof was made on another input than the one given.
    #[error("the proof was made on another input: {0}")]
    InputMismatch(String),
    /// The inputs are private, so a proof cannot show them.
    #[error(
        "the model's inputs are private (compiled with --input-visibility private): a proof does not show them"
    )]
    InputsPrivate,
    /// A salt was given for a model whose inputs are not hashed, or without an input.
    #[error(
        "a salt only applies to hashed inputs (--input-visibility hashed), with the input it salts"
    )]
    SaltUnused,
    /// Output values claimed for hashed outputs are not those proven.
    #[error("the outputs given are not the proven ones: {0}")]
    OutputMismatch(String),
    /// The `inputs` or `outputs` in the proof file are not what the proven instances say.
    #[error("the {0} in the proof file do not match its proven public instances")]
    ValuesMismatch(&'static str),
    /// The proof was made with other weights than the model's (same architecture).
    #[error(
        "the proof was made with other weights: it commits to {proven}, this model's weights to {model}"
    )]
    OtherWeights {
        /// The weight commitment among the proof's instances.
        proven: String,
        /// The model's (`settings.json`'s `weight_commitment`).
        model: String,
    },
    /// A segmented model's proofs do not link: a segment read a tensor another segment did
    /// not compute, or was proven on another input.
    #[error("the segments' proofs do not link: {0}")]
    Link(String),
    /// The cryptographic check failed.
    #[error("invalid proof: the verifier rejected it for these public instances")]
    Invalid,
}

/// Verifies raw proof bytes against a verifying key and public instances. The proof must be
/// read to its last byte: bytes after it would make one proof many (the Solidity verifier
/// refuses them too), and every scalar in it must be canonical (the transcript refuses
/// `x + r`).
pub fn verify_proof_bytes(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[Fr],
    proof: &[u8],
) -> Result<(), VerifyError> {
    let mut rest = proof;
    let mut transcript =
        AsOnChain(EvmTranscript::<G1Affine, NativeLoader, &mut &[u8], Vec<u8>>::init(&mut rest));
    let strategy = SingleStrategy::new(params);
    let ok = verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
        params,
        vk,
        strategy,
        &[&[instances]],
        &mut transcript,
    )
    .is_ok();
    drop(transcript);
    if ok && rest.is_empty() {
        Ok(())
    } else {
        Err(VerifyError::Invalid)
    }
}

/// The proof transcript read as the Solidity verifier reads it: a commitment at infinity
/// (`(0, 0)`) passes halo2curves' decoding but not the EVM's curve check (`y² = x³ + 3`), so
/// it is refused here too, and native and on-chain verdicts agree on every proof.
struct AsOnChain<T>(T);

type Challenge = ChallengeEvm<G1Affine>;

impl<T: Transcript<G1Affine, Challenge>> Transcript<G1Affine, Challenge> for AsOnChain<T> {
    fn squeeze_challenge(&mut self) -> Challenge {
        self.0.squeeze_challenge()
    }

    fn common_point(&mut self, point: G1Affine) -> std::io::Result<()> {
        self.0.common_point(point)
    }

    fn common_scalar(&mut self, scalar: Fr) -> std::io::Result<()> {
        self.0.common_scalar(scalar)
    }
}

impl<T: TranscriptRead<G1Affine, Challenge>> TranscriptRead<G1Affine, Challenge> for AsOnChain<T> {
    fn read_point(&mut self) -> std::io::Result<G1Affine> {
        let p = self.0.read_point()?;
        if bool::from(p.is_identity()) {
            return Err(std::io::Error::other("a commitment at infinity"));
        }
        Ok(p)
    }

    fn read_scalar(&mut self) -> std::io::Result<Fr> {
        self.0.read_scalar()
    }
}

/// The native verdict on a Solidity verifier's calldata (the public values as 32-byte
/// big-endian words, then the proof): what the EVM must agree with on any bytes. Like the
/// Solidity verifier, it accepts any weight commitment (one verifier serves every training of
/// an architecture): the registry holds which commitment a model id stands for.
pub fn verify_calldata(folder: &VerifierFolder, data: &[u8]) -> Result<(), VerifyError> {
    let n = folder.settings.plan.num_instances;
    if data.len() < 32 * n {
        return Err(VerifyError::Malformed(
            "calldata shorter than the public values".into(),
        ));
    }
    let (words, proof) = data.split_at(32 * n);
    let instances: Vec<Fr> = words
        .chunks(32)
        .enumerate()
        .map(|(i, w)| {
            from_hex(&format!("0x{}", hex::encode(w))).ok_or_else(|| {
                VerifyError::Malformed(format!("public value {i} is not a canonical field element"))
            })
        })
        .collect::<Result<_, _>>()?;
    verify_proof_bytes(&folder.kzg.params(), &folder.vk, &instances, proof)
}

/// What the verifier is asked to hold the proof to, beyond the proof itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions<'a> {
    /// The model id the folder must have (64 hex digits).
    pub model_id: Option<&'a str>,
    /// The verifier's own copy of a ceremony file: the folder's SRS points must be its.
    pub srs: Option<&'a Path>,
    /// An EZKL-format input file: the proof's public inputs (or, hashed, their commitments)
    /// must be it, quantized.
    pub input: Option<&'a Path>,
    /// The salt of hashed inputs (zero when not given).
    pub salt: Option<Fr>,
}

/// What a successful verification established.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The model id recomputed from the folder.
    pub model_id: String,
    /// Whether it was required to equal `--model-id`.
    pub pinned: bool,
    /// What is known of the SRS.
    pub srs: SrsCheck,
    /// The proven inputs (dequantized), when public.
    pub inputs: Option<Vec<Vec<f64>>>,
    /// Whether they were required to equal an input file.
    pub input_checked: bool,
    /// The proven outputs (dequantized): public values, or the values of the proof file that
    /// hash to the proven commitments.
    pub outputs: Vec<Vec<f64>>,
    /// The proven commitments (64 hex digits each): per hashed input, then per hashed output.
    pub commitments: Commitments,
}

/// The commitments among a proof's instances, 64 lowercase hex digits each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commitments {
    /// One per input, when inputs are hashed.
    pub inputs: Vec<String>,
    /// One per output, when outputs are hashed.
    pub outputs: Vec<String>,
    /// The weights', when they are hashed (checked against the model's before a proof is
    /// accepted).
    pub weights: Option<String>,
}

impl Commitments {
    /// The commitments among `instances` of `settings`' circuit.
    pub fn of(settings: &zkinfer_circuits::artifacts::Settings, instances: &[Fr]) -> Self {
        let hex = |c: Option<&[Fr]>| c.unwrap_or(&[]).iter().map(commitment_hex).collect();
        Self {
            inputs: hex(settings.input_commitments(instances)),
            outputs: hex(settings.output_commitments(instances)),
            weights: settings
                .proven_weight_commitment(instances)
                .map(|c| commitment_hex(&c)),
        }
    }
}

/// With hashed weights, the proof's weight commitment must be the model's: the verifying key
/// is the architecture's, shared by every training of it, so only this instance says which
/// weights were used.
pub fn check_weights(
    settings: &zkinfer_circuits::artifacts::Settings,
    instances: &[Fr],
) -> Result<(), VerifyError> {
    let Some(proven) = settings.proven_weight_commitment(instances) else {
        return Ok(());
    };
    let proven = commitment_hex(&proven);
    match settings.weight_commitment.as_deref() {
        Some(model) if model.eq_ignore_ascii_case(&proven) => Ok(()),
        model => Err(VerifyError::OtherWeights {
            proven,
            model: model.unwrap_or("none").to_string(),
        }),
    }
}

/// The proven outputs: the instances' values, or (hashed) `claimed` once it hashes to the
/// proven commitments.
fn proven_outputs(
    folder: &VerifierFolder,
    instances: &[Fr],
    claimed: &[Vec<f64>],
) -> Result<Vec<Vec<f64>>, VerifyError> {
    let settings = &folder.settings;
    match settings.output_commitments(instances) {
        Some(proven) => {
            let computed = settings
                .commit_outputs(claimed)
                .map_err(|e| VerifyError::OutputMismatch(e.to_string()))?;
            if let Some(i) = (0..computed.len()).find(|&i| computed[i] != proven[i]) {
                return Err(VerifyError::OutputMismatch(format!(
                    "output {i} commits to {}, the proof to {}",
                    commitment_hex(&computed[i]),
                    commitment_hex(&proven[i])
                )));
            }
            Ok(claimed.to_vec())
        }
        None => {
            let outputs = settings
                .outputs_from_instances(instances)
                .ok_or(VerifyError::ValuesMismatch("outputs"))?;
            if outputs != claimed {
                return Err(VerifyError::ValuesMismatch("outputs"));
            }
            Ok(outputs)
        }
    }
}

/// Verifies `PROOF.json` against the model folder `dir`.
pub fn verify_file(
    dir: &Path,
    proof_path: &Path,
    opts: &VerifyOptions<'_>,
) -> Result<Verified, VerifyError> {
    if segments::is_segmented(dir) {
        return segments::verify_segmented(dir, proof_path, opts);
    }
    let folder = VerifierFolder::open(dir)?;
    check_pinned(opts.model_id, &folder.model_id)?;
    let LoadedProof {
        file: proof,
        instances,
        bytes,
    } = load_proof(&folder, proof_path)?;
    let srs = srs_check(dir, &folder, opts.srs)?;
    let settings = &folder.settings;
    if proof.input_visibility != settings.plan.visibility
        || proof.output_visibility != settings.plan.output_visibility
    {
        return Err(VerifyError::Malformed(format!(
            "the proof file says {} inputs and {} outputs, the model has {} and {}",
            proof.input_visibility.name(),
            proof.output_visibility.name(),
            settings.plan.visibility.name(),
            settings.plan.output_visibility.name()
        )));
    }
    let outputs = proven_outputs(&folder, &instances, &proof.outputs)?;
    let inputs = settings.inputs_from_instances(&instances);
    if inputs != proof.inputs {
        return Err(VerifyError::ValuesMismatch("inputs"));
    }
    if opts.salt.is_some()
        && (settings.plan.visibility != Visibility::Hashed || opts.input.is_none())
    {
        return Err(VerifyError::SaltUnused);
    }
    if let Some(path) = opts.input {
        check_input(path, &folder, &instances, opts.salt)?;
    }
    check_weights(settings, &instances)?;
    verify_proof_bytes(&folder.kzg.params(), &folder.vk, &instances, &bytes)?;
    Ok(Verified {
        commitments: Commitments::of(settings, &instances),
        model_id: folder.model_id,
        pinned: opts.model_id.is_some(),
        srs,
        inputs,
        input_checked: opts.input.is_some(),
        outputs,
    })
}

/// The folder's model id must be `pinned` (64 hex digits) when one is given.
pub(crate) fn check_pinned(pinned: Option<&str>, model_id: &str) -> Result<(), VerifyError> {
    let Some(pinned) = pinned else {
        return Ok(());
    };
    let pinned = pinned.trim().to_ascii_lowercase();
    if pinned.len() != 64 || !pinned.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(VerifyError::Malformed(
            "--model-id must be 64 hex digits".into(),
        ));
    }
    if pinned != model_id {
        return Err(VerifyError::NotPinned {
            pinned,
            folder: model_id.to_string(),
        });
    }
    Ok(())
}

/// A proof file read against a folder: its model id checked, its instances parsed and counted.
pub struct LoadedProof {
    /// The file as read.
    pub file: ProofFile,
    /// The public instances, canonical field elements.
    pub instances: Vec<Fr>,
    /// The proof bytes.
    pub bytes: Vec<u8>,
}

/// Reads `PROOF.json` for the folder: same model id, canonical instances of the circuit's count.
pub fn load_proof(folder: &VerifierFolder, proof_path: &Path) -> Result<LoadedProof, VerifyError> {
    let file: ProofFile = read_json(proof_path)?;
    if file.model_id != folder.model_id {
        return Err(VerifyError::WrongModel {
            proof: file.model_id,
            folder: folder.model_id.clone(),
        });
    }
    let (instances, bytes) = parse_values(folder, &file.instances, &file.proof)?;
    Ok(LoadedProof {
        file,
        instances,
        bytes,
    })
}

/// Parses public instances (0x-hex, canonical) and a proof (0x-hex) for the folder's circuit.
pub fn parse_values(
    folder: &VerifierFolder,
    instances: &[String],
    proof: &str,
) -> Result<(Vec<Fr>, Vec<u8>), VerifyError> {
    let parsed = parse_instances(instances)?;
    if parsed.len() != folder.settings.plan.num_instances {
        return Err(VerifyError::Malformed(format!(
            "{} instances, the circuit has {}",
            parsed.len(),
            folder.settings.plan.num_instances
        )));
    }
    let bytes = proof
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| VerifyError::Malformed("\"proof\" is not 0x-hex".into()))?;
    Ok((parsed, bytes))
}

/// Parses public instances (0x-hex, each a canonical field element).
pub(crate) fn parse_instances(instances: &[String]) -> Result<Vec<Fr>, VerifyError> {
    instances
        .iter()
        .enumerate()
        .map(|(i, h)| {
            from_hex(h).ok_or_else(|| {
                VerifyError::Malformed(format!(
                    "instance {i} is not a canonical 32-byte field element"
                ))
            })
        })
        .collect()
}

/// What a proof shows, once verified: the inputs (when public), the outputs (public values;
/// hashed: none, unless claimed values were checked against their commitments), and the
/// commitments.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvenValues {
    /// The inputs, dequantized, when public.
    pub inputs: Option<Vec<Vec<f64>>>,
    /// The outputs, dequantized, when public or checked against their commitments.
    pub outputs: Option<Vec<Vec<f64>>>,
    /// The commitments among the instances.
    pub commitments: Commitments,
}

/// What a caller of [`verify_values`] holds the proof to besides the proof itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Claims<'a> {
    /// An input (EZKL format, parsed): the proven inputs, or their commitments, must be it.
    pub input: Option<&'a [Vec<f64>]>,
    /// The salt of hashed inputs.
    pub salt: Option<Fr>,
    /// Output values: with hashed outputs they must hash to the proven commitments (with
    /// public outputs, equal the proven values).
    pub outputs: Option<&'a [Vec<f64>]>,
}

/// Verifies instances and a proof (as in `proof.json`) against an opened folder, holding it
/// to `claims`.
pub fn verify_values(
    folder: &VerifierFolder,
    instances: &[String],
    proof: &str,
    claims: Claims<'_>,
) -> Result<ProvenValues, VerifyError> {
    let (instances, bytes) = parse_values(folder, instances, proof)?;
    if claims.salt.is_some()
        && (folder.settings.plan.visibility != Visibility::Hashed || claims.input.is_none())
    {
        return Err(VerifyError::SaltUnused);
    }
    if let Some(data) = claims.input {
        check_input_data("the given input", data, folder, &instances, claims.salt)?;
    }
    let outputs = match claims.outputs {
        Some(claimed) => Some(proven_outputs(folder, &instances, claimed)?),
        None => folder.settings.outputs_from_instances(&instances),
    };
    check_weights(&folder.settings, &instances)?;
    verify_proof_bytes(&folder.kzg.params(), &folder.vk, &instances, &bytes)?;
    if outputs.is_none() && folder.settings.plan.output_visibility != Visibility::Hashed {
        return Err(VerifyError::ValuesMismatch("outputs"));
    }
    Ok(ProvenValues {
        inputs: folder.settings.inputs_from_instances(&instances),
        outputs,
        commitments: Commitments::of(&folder.settings, &instances),
    })
}
