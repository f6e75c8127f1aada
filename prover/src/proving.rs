//! Proof generation: SHPLONK over KZG/BN254 with the Keccak (EVM) transcript, so the same
//! bytes verify natively and in the Solidity verifier.

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_base::halo2_proofs::plonk::{create_proof, ProvingKey};
use halo2_base::halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_base::halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_base::halo2_proofs::transcript::TranscriptWriterBuffer;
use snark_verifier_sdk::snark_verifier::system::halo2::transcript::evm::EvmTranscript;
use snark_verifier_sdk::NativeLoader;
use zkinfer_circuits::{build_circuit, CircuitPlan, ModelCircuit};
use zkinfer_model::QGraph;

use crate::error::ProverError;

/// The transcript every zkinfer proof uses.
pub type ProofTranscript<W> = EvmTranscript<G1Affine, NativeLoader, W, Vec<u8>>;

/// Proves `q` on quantized `inputs` (hashed inputs committed with `salt`); returns the proof
/// and the public instances.
pub fn prove(
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    plan: &CircuitPlan,
    break_points: MultiPhaseThreadBreakPoints,
    q: &QGraph,
    inputs: &[Vec<i64>],
    salt: Fr,
) -> Result<(Vec<u8>, Vec<Fr>), ProverError> {
    let t = std::time::Instant::now();
    let (circuit, instances) = build_circuit(
        CircuitBuilderStage::Prover,
        plan,
        Some(break_points),
        q,
        inputs,
        salt,
    )?;
    tracing::info!("witness laid out in {:.2?}", t.elapsed());
    let proof = prove_circuit(params, pk, circuit, &instances)?;
    Ok((proof, instances))
}

/// Proves a laid-out circuit with these public instances. Only its witness is read: the
/// fixed columns and copy constraints are the proving key's, whatever the circuit holds (the
/// tests' forgers bring their own witness this way).
pub fn prove_circuit(
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    circuit: ModelCircuit,
    instances: &[Fr],
) -> Result<Vec<u8>, ProverError> {
    let mut transcript = ProofTranscript::<Vec<u8>>::init(Vec::new());
    create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
        params,
        pk,
        &[circuit],
        &[&[instances]],
        rand::rngs::OsRng,
        &mut transcript,
    )
    .map_err(|e| ProverError::halo2("proving failed", e))?;
    Ok(transcript.finalize())
}
