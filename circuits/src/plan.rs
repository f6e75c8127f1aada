//! Sizing: the smallest `k` whose columns fit, with lookup tables sized to the circuit.
//!
//! The range table is `[0, 2^(k-1))`: as large as the rows allow (fewer limbs per range check)
//! and never larger, so a tiny model gets a tiny circuit instead of a fixed 2^15 floor.

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::{BaseCircuitParams, CircuitBuilderStage};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use serde::{Deserialize, Serialize};
use zkinfer_model::QGraph;

use crate::error::CircuitError;
use crate::layout::{lay_out, Visibility};

/// Rows at the bottom of every column kept for blinding factors.
pub const MIN_UNUSABLE_ROWS: usize = 20;

/// The shape of a compiled circuit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CircuitPlan {
    /// log2 of the number of rows.
    pub k: u32,
    /// The range-check table is `[0, 2^lookup_bits)`.
    pub lookup_bits: u32,
    /// halo2-base column configuration.
    pub params: BaseCircuitParams,
    /// Input visibility.
    pub visibility: Visibility,
    /// Number of public instances (inputs if public, then outputs).
    pub num_instances: usize,
    /// Advice cells used by gates.
    pub advice_cells: usize,
    /// Cells copied into lookup columns for range checks.
    pub lookup_cells: usize,
    /// Distinct constants in fixed columns.
    pub fixed_cells: usize,
    /// Rows used per advice column.
    pub rows: usize,
}

/// Bounds on the circuit shape.
#[derive(Clone, Copy, Debug)]
pub struct PlanLimits {
    /// Largest k accepted.
    pub max_k: u32,
    /// Most gate advice columns (each one adds verifier cost, and on-chain bytecode).
    pub max_advice_columns: usize,
    /// Most advice + lookup advice + fixed columns: each adds commitments or evaluations to
    /// the proof (7 keeps proofs under 3 KB).
    pub max_columns: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            max_k: 24,
            max_advice_columns: 5,
            max_columns: 7,
        }
    }
}

const MIN_K: u32 = 6;

/// Chooses `k` for `q`: lays the circuit out at growing `k` until its columns fit.
pub fn plan_circuit(
    q: &QGraph,
    inputs: &[Vec<i64>],
    visibility: Visibility,
    limits: PlanLimits,
) -> Result<CircuitPlan, CircuitError> {
    let try_k = |k: u32| -> Result<CircuitPlan, CircuitError> {
        let lookup_bits = k - 1;
        let mut builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Mock)
            .use_k(k as usize)
            .use_lookup_bits(lookup_bits as usize)
            .use_instance_columns(1);
        let instances = lay_out(&mut builder, q, inputs, visibility)?;
        let stats = builder.statistics();
        let params = builder.calculate_params(Some(MIN_UNUSABLE_ROWS));
        // Sizing only: drop the cells so the builder does not warn about an unassigned circuit.
        builder.clear();
        let advice_cells = stats.gate.total_advice_per_phase[0];
        let cols = params.num_advice_per_phase[0].max(1);
        Ok(CircuitPlan {
            k,
            lookup_bits,
            visibility,
            num_instances: instances.len(),
            advice_cells,
            lookup_cells: stats.total_lookup_advice_per_phase[0],
            fixed_cells: stats.gate.total_fixed,
            rows: advice_cells.div_ceil(cols),
            params,
        })
    };
    // A first layout with a wide table gives a lower bound on the cells, hence on k.
    let probe = try_k(18)?;
    let usable = |k: u32| (1usize << k) - MIN_UNUSABLE_ROWS - 1;
    let mut k = MIN_K;
    while k < limits.max_k && usable(k) * limits.max_advice_columns < probe.advice_cells {
        k += 1;
    }
    loop {
        let plan = try_k(k)?;
        let p = &plan.params;
        let columns = p.num_advice_per_phase[0] + p.num_lookup_advice_per_phase[0] + p.num_fixed;
        if p.num_advice_per_phase[0] <= limits.max_advice_columns && columns <= limits.max_columns {
            return Ok(plan);
        }
        if k >= limits.max_k {
            return Err(CircuitError::TooLarge(format!(
                "{} advice cells need more than {} advice ({} in all) columns at k={} (the limit)",
                plan.advice_cells, limits.max_advice_columns, limits.max_columns, limits.max_k
            )));
        }
        k += 1;
    }
}
