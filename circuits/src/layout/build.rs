//! A circuit built from a plan, and the check that its regions are the plan's sizes.

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_model::QGraph;

use super::{lay_out_lying, Lied, OutputLie};
use crate::circuit::ModelCircuit;
use crate::error::CircuitError;
use crate::plan::CircuitPlan;

/// A circuit for `stage`, shaped by `plan`, with `q` laid out on `inputs` (hashed inputs
/// committed with `salt`; pass zero without one).
pub fn build_circuit(
    stage: CircuitBuilderStage,
    plan: &CircuitPlan,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    q: &QGraph,
    inputs: &[Vec<i64>],
    salt: Fr,
) -> Result<(ModelCircuit, Vec<Fr>), CircuitError> {
    build_circuit_lying(stage, plan, break_points, q, inputs, salt, None).map(|(c, i, _)| (c, i))
}

/// The circuit of [`build_circuit`] with `lie` told (see [`lay_out_lying`]).
pub(crate) fn build_circuit_lying(
    stage: CircuitBuilderStage,
    plan: &CircuitPlan,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    q: &QGraph,
    inputs: &[Vec<i64>],
    salt: Fr,
    lie: Option<&OutputLie>,
) -> Result<(ModelCircuit, Vec<Fr>, Lied), CircuitError> {
    let mut circuit = ModelCircuit::new(stage, plan.params.clone(), break_points);
    let (instances, lied) = lay_out_planned(&mut circuit, plan, q, inputs, salt, lie)?;
    Ok((circuit, instances, lied))
}

/// Lays `q` out in `circuit` (new, shaped by `plan`) with `lie` told, and checks that the
/// regions are the sizes the plan has.
pub(crate) fn lay_out_planned(
    circuit: &mut ModelCircuit,
    plan: &CircuitPlan,
    q: &QGraph,
    inputs: &[Vec<i64>],
    salt: Fr,
    lie: Option<&OutputLie>,
) -> Result<(Vec<Fr>, Lied), CircuitError> {
    let (instances, lied) = lay_out_lying(circuit, q, inputs, plan.io(), salt, lie)?;
    if instances.len() != plan.num_instances {
        return Err(CircuitError::Internal(format!(
            "{} instances laid out, the plan has {}",
            instances.len(),
            plan.num_instances
        )));
    }
    if circuit.functions.rows() != plan.function_rows
        || circuit.functions.table_rows() != plan.table_rows
        || plan.params.functions != (plan.function_rows > 0)
    {
        return Err(CircuitError::Internal(format!(
            "{} function lookups into {} table rows laid out, the plan has {} into {}",
            circuit.functions.rows(),
            circuit.functions.table_rows(),
            plan.function_rows,
            plan.table_rows
        )));
    }
    if circuit.freivalds.rows() != plan.freivalds_rows {
        return Err(CircuitError::Internal(format!(
            "{} Freivalds rows laid out, the plan has {}",
            circuit.freivalds.rows(),
            plan.freivalds_rows
        )));
    }
    if circuit.lincomb.rows() != plan.lincomb_rows {
        return Err(CircuitError::Internal(format!(
            "{} lincomb rows laid out, the plan has {}",
            circuit.lincomb.rows(),
            plan.lincomb_rows
        )));
    }
    Ok((instances, lied))
}
