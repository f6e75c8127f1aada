//! Key generation: synthesize the circuit once (on the calibration input), then vk and pk.

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_base::halo2_proofs::plonk::{keygen_pk, keygen_vk, ProvingKey};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::SerdeFormat;
use zkinfer_circuits::{build_circuit, CircuitPlan, ModelCircuit};
use zkinfer_model::QGraph;

use crate::error::ProverError;

/// Generates the proving key (which holds the verifying key) and the column break points.
pub fn generate(
    params: &ParamsKZG<Bn256>,
    plan: &CircuitPlan,
    q: &QGraph,
    keygen_inputs: &[Vec<i64>],
) -> Result<(ProvingKey<G1Affine>, MultiPhaseThreadBreakPoints), ProverError> {
    let (circuit, _) = build_circuit(
        CircuitBuilderStage::Keygen,
        plan,
        None,
        q,
        keygen_inputs,
        Fr::zero(),
    )?;
    let vk = keygen_vk(params, &circuit).map_err(|e| ProverError::halo2("vk generation", e))?;
    let pk = keygen_pk(params, vk, &circuit).map_err(|e| ProverError::halo2("pk generation", e))?;
    Ok((pk, circuit.base.break_points()))
}

/// Serializes a proving key.
pub fn pk_to_bytes(pk: &ProvingKey<G1Affine>) -> Vec<u8> {
    pk.to_bytes(SerdeFormat::RawBytesUnchecked)
}

/// Reads a proving key written by [`pk_to_bytes`] for the circuit shape in `plan`.
pub fn pk_from_bytes(
    bytes: &[u8],
    plan: &CircuitPlan,
) -> Result<ProvingKey<G1Affine>, ProverError> {
    ProvingKey::<G1Affine>::from_bytes::<ModelCircuit>(
        bytes,
        SerdeFormat::RawBytesUnchecked,
        plan.params.clone(),
    )
    .map_err(|e| ProverError::Folder(format!("the proving key does not fit this circuit: {e}")))
}
