//! Sizing: the cheapest shape to prove whose proof fits the byte budget.
//!
//! For each `k` the model is laid out twice (with and without the lincomb region), each
//! lincomb width is tried, halo2-base fills as many columns as its cells need, and the
//! configured constraint system gives the proof size and a work estimate. The range table is
//! `[0, 2^(k-1))`: as large as the rows allow (fewer limbs per range check) and never larger,
//! so a tiny model gets a tiny circuit instead of a fixed 2^15 floor.

use std::collections::HashMap;

use halo2_base::gates::circuit::{BaseCircuitParams, CircuitBuilderStage};
use serde::{Deserialize, Serialize};
use zkinfer_model::QGraph;

use crate::circuit::{CircuitParams, ModelCircuit};
use crate::cost::{
    constraint_system, proof_bytes, prove_cost, prove_memory_bytes, verifier_code_bytes,
    verify_gas, VERIFIER_BASE_BYTES, VERIFIER_BYTES_PER_INSTANCE,
};
use crate::error::CircuitError;
use crate::layout::{lay_out, Io, Links, Visibility};
use crate::lincomb::LinCombRegion;

/// Rows at the bottom of every column kept for blinding factors.
pub const MIN_UNUSABLE_ROWS: usize = 20;

/// The shape of a compiled circuit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CircuitPlan {
    /// log2 of the number of rows.
    pub k: u32,
    /// The range-check table is `[0, 2^lookup_bits)`.
    pub lookup_bits: u32,
    /// Column configuration.
    pub params: CircuitParams,
    /// Input visibility: public, private or hashed.
    pub visibility: Visibility,
    /// Output visibility: public or hashed (folders from before it existed: public).
    #[serde(default)]
    pub output_visibility: Visibility,
    /// A segment's links (absent: none, a model in one piece).
    #[serde(default, skip_serializing_if = "Links::is_empty")]
    pub links: Links,
    /// Number of public instances (per input its values or commitment when public or
    /// hashed, then per output its values or commitment).
    pub num_instances: usize,
    /// Advice cells used by halo2-base gates.
    pub advice_cells: usize,
    /// Cells copied into lookup columns for range checks.
    pub lookup_cells: usize,
    /// Distinct constants in fixed columns.
    pub fixed_cells: usize,
    /// Rows used per halo2-base advice column.
    pub rows: usize,
    /// Terms in the lincomb region.
    pub lincomb_terms: usize,
    /// Rows used by the lincomb region.
    pub lincomb_rows: usize,
    /// Lookups of non-linear functions.
    #[serde(default)]
    pub function_rows: usize,
    /// Rows of the function tables.
    #[serde(default)]
    pub table_rows: usize,
    /// Rows of the Freivalds checks of products.
    #[serde(default)]
    pub freivalds_rows: usize,
    /// Size of a proof, in bytes.
    pub proof_bytes: usize,
    /// Estimated peak memory of proving, in bytes ([`crate::cost::prove_memory_bytes`]).
    #[serde(default)]
    pub prove_memory_bytes: u64,
    /// The proof budget the shape was chosen within (see [`PlanLimits::raise_proof_bytes_to`]).
    #[serde(default)]
    pub proof_budget: usize,
}

impl CircuitPlan {
    /// What the public instances hold of inputs and outputs.
    pub fn io(&self) -> Io {
        Io {
            input: self.visibility,
            output: self.output_visibility,
            links: self.links,
        }
    }

    /// The columns in words: "2 gate + 3 dot-product columns", and the Freivalds region if any.
    pub fn columns(&self) -> String {
        let lincomb = self.params.lincomb_width;
        format!(
            "{} gate + {} dot-product columns{}",
            self.params.base.num_advice_per_phase[0],
            lincomb + (lincomb > 0) as usize,
            if self.params.freivalds {
                " + Freivalds checks"
            } else {
                ""
            }
        )
    }
}

/// Bounds on the circuit shape.
#[derive(Clone, Copy, Debug)]
pub struct PlanLimits {
    /// Largest k accepted.
    pub max_k: u32,
    /// Largest proof accepted, in bytes. Each column adds to the proof, and verifier gas
    /// grows with it; the default is EZKL's proof size.
    pub max_proof_bytes: usize,
    /// With [`Objective::ProveTime`], the budget may grow by steps of
    /// [`PROOF_BUDGET_STEP`] bytes up to this: each step only where the shape chosen below it
    /// needs 2^`raise_from_k` rows or more and the step at least halves its estimated
    /// proving work, or where nothing below fits. `None`: `max_proof_bytes` is a fixed budget.
    pub raise_proof_bytes_to: Option<usize>,
    /// See `raise_proof_bytes_to` (default 18): below, proofs take seconds, and a smaller
    /// proof, cheaper to verify on chain, is worth more than the time saved.
    pub raise_from_k: u32,
    /// Use exactly this k (benchmarks, or to match another circuit's SRS).
    pub k: Option<u32>,
    /// What the chosen shape makes least.
    pub objective: Objective,
    /// Whether shapes with Freivalds checks of products are tried.
    pub freivalds: bool,
    /// Largest estimated proving memory accepted, in bytes: a circuit that needs more is
    /// refused at compile time instead of failing (or swapping) at prove time.
    pub max_prove_memory: Option<u64>,
    /// Largest estimated Solidity verifier, in bytes of runtime code
    /// ([`crate::cost::verifier_code_bytes`], above the measured size near EIP-170): with
    /// [`crate::cost::EIP_170_CODE_BYTES`], every circuit's verifier fits one contract.
    pub max_verifier_bytes: Option<usize>,
}

/// What the planner minimises among the shapes that fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Objective {
    /// Proving work: more columns at a smaller k.
    #[default]
    ProveTime,
    /// Verification gas of the Solidity verifier: fewest committed columns (each costs an
    /// elliptic-curve multiplication on chain), at whatever k they need; then proving work.
    EvmGas,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            max_k: 24,
            max_proof_bytes: 3072,
            raise_proof_bytes_to: Some(5120),
            raise_from_k: 18,
            k: None,
            objective: Objective::ProveTime,
            freivalds: true,
            max_prove_memory: None,
            max_verifier_bytes: None,
        }
    }
}

/// The step by which a proof budget is raised (see [`PlanLimits::raise_proof_bytes_to`]).
pub const PROOF_BUDGET_STEP: usize = 1024;

const MIN_K: u32 = 6;
/// Lincomb widths tried: wider rows hold more terms per row but each adds two columns.
const LINCOMB_WIDTHS: std::ops::RangeInclusive<usize> = 1..=6;

/// One layout at one `k`, before a lincomb width is chosen.
struct Layout {
    base: BaseCircuitParams,
    num_instances: usize,
    advice_cells: usize,
    lookup_cells: usize,
    fixed_cells: usize,
    lincomb_sizes: Vec<usize>,
    function_rows: usize,
    function_column_rows: usize,
    table_rows: usize,
    freivalds_rows: usize,
}

fn usable(k: u32) -> usize {
    (1usize << k) - MIN_UNUSABLE_ROWS - 1
}

/// halo2-base sizes the constants columns as `⌈constants / 2^k⌉`, but fills only the usable
/// rows (the last ones are blinding rows): with the constants just under a multiple of 2^k,
/// key generation would run out of rows. Every entry of a constant Freivalds factor is such a
/// constant, so counts near the limit are not rare.
pub(crate) fn constants_fit(mut base: BaseCircuitParams, constants: usize) -> BaseCircuitParams {
    base.num_fixed = base
        .num_fixed
        .max(constants.div_ceil(usable(base.k as u32)));
    base
}

fn lay_out_at(
    q: &QGraph,
    inputs: &[Vec<i64>],
    io: Io,
    k: u32,
    lincomb: bool,
    freivalds: bool,
) -> Result<Layout, CircuitError> {
    let base = BaseCircuitParams {
        k: k as usize,
        lookup_bits: Some(k as usize - 1),
        num_instance_columns: 1,
        ..Default::default()
    };
    let params = CircuitParams {
        base,
        lincomb_width: lincomb as usize,
        functions: false,
        freivalds,
    };
    let mut circuit = ModelCircuit::new(CircuitBuilderStage::Mock, params, None);
    let instances = lay_out(&mut circuit, q, inputs, io)?;
    let stats = circuit.base.statistics();
    let base = constants_fit(
        circuit.base.calculate_params(Some(MIN_UNUSABLE_ROWS)),
        stats.gate.total_fixed,
    );
    // Sizing only: drop the cells so the builder does not warn about an unassigned circuit.
    circuit.base.clear();
    Ok(Layout {
        base,
        num_instances: instances.len(),
        advice_cells: stats.gate.total_advice_per_phase[0],
        lookup_cells: stats.total_lookup_advice_per_phase[0],
        fixed_cells: stats.gate.total_fixed,
        lincomb_sizes: circuit.lincomb.sizes().to_vec(),
        function_rows: circuit.functions.rows(),
        function_column_rows: circuit.functions.column_rows(),
        table_rows: circuit.functions.table_rows(),
        freivalds_rows: circuit.freivalds.rows(),
    })
}

/// The shapes `layout` allows at its `k`, as plans with their work estimates.
fn shapes(layout: &Layout, k: u32, io: Io, objective: Objective) -> Vec<((u64, u64), CircuitPlan)> {
    let widths: Vec<usize> = if layout.lincomb_sizes.is_empty() {
        vec![0]
    } else {
        LINCOMB_WIDTHS.collect()
    };
    let mut out = Vec::new();
    for width in widths {
        let lincomb_rows = LinCombRegion::rows_at(&layout.lincomb_sizes, width);
        // The public instances take one row each in the instance column.
        let rows = lincomb_rows
            .max(layout.function_column_rows)
            .max(layout.table_rows)
            .max(layout.freivalds_rows)
            .max(layout.num_instances);
        if rows > usable(k) {
            continue;
        }
        let params = CircuitParams {
            base: layout.base.clone(),
            lincomb_width: width,
            functions: layout.function_rows > 0,
            freivalds: layout.freivalds_rows > 0,
        };
        let cs = constraint_system(&params);
        let cols = params.base.num_advice_per_phase[0].max(1);
        let plan = CircuitPlan {
            k,
            lookup_bits: k - 1,
            visibility: io.input,
            output_visibility: io.output,
            links: io.links,
            num_instances: layout.num_instances,
            advice_cells: layout.advice_cells,
            lookup_cells: layout.lookup_cells,
            fixed_cells: layout.fixed_cells,
            rows: layout.advice_cells.div_ceil(cols),
            lincomb_terms: layout.lincomb_sizes.iter().sum(),
            lincomb_rows,
            function_rows: layout.function_rows,
            table_rows: layout.table_rows,
            freivalds_rows: layout.freivalds_rows,
            proof_bytes: proof_bytes(&cs),
            prove_memory_bytes: prove_memory_bytes(&cs, k, layout.advice_cells),
            proof_budget: 0,
            params,
        };
        let work = prove_cost(&cs, k);
        let key = match objective {
            Objective::ProveTime => (work, 0),
            Objective::EvmGas => (verify_gas(&cs, layout.num_instances), work),
        };
        out.push((key, plan));
    }
    out
}

/// The plan of `q` at exactly `k`, lincomb width and Freivalds choice, whatever the planner
/// would prefer: the lying prover runs under every layout family.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn plan_forced(
    q: &QGraph,
    inputs: &[Vec<i64>],
    io: Io,
    k: u32,
    lincomb_width: usize,
    freivalds: bool,
) -> Result<CircuitPlan, CircuitError> {
    let layout = lay_out_at(q, inputs, io, k, lincomb_width > 0, freivalds)?;
    shapes(&layout, k, io, Objective::ProveTime)
        .into_iter()
        .map(|(_, p)| p)
        .find(|p| p.params.lincomb_width == lincomb_width || layout.lincomb_sizes.is_empty())
        .ok_or_else(|| {
            CircuitError::Internal(format!(
                "no shape at k={k} with lincomb width {lincomb_width}"
            ))
        })
}

/// Chooses the shape for `q`: over `k` and lincomb widths, the least proving work (or, for
/// [`Objective::EvmGas`], the least estimated verifier gas) whose proof fits
/// `limits.max_proof_bytes`, raised as [`PlanLimits::raise_proof_bytes_to`] allows.
pub fn plan_circuit(
    q: &QGraph,
    inputs: &[Vec<i64>],
    io: Io,
    limits: PlanLimits,
) -> Result<CircuitPlan, CircuitError> {
    let mut layouts = Layouts {
        q,
        inputs,
        io,
        made: HashMap::new(),
    };
    let mut chosen = plan_within(limits, &mut layouts);
    let top = match limits.objective {
        Objective::ProveTime => limits.raise_proof_bytes_to.unwrap_or(0),
        Objective::EvmGas => 0,
    };
    let mut budget = limits.max_proof_bytes;
    while let Some(b) = budget.checked_add(PROOF_BUDGET_STEP).filter(|&b| b <= top) {
        budget = b;
        let raised = PlanLimits {
            max_proof_bytes: budget,
            ..limits
        };
        let next = plan_within(raised, &mut layouts);
        let better = worth_raising(&chosen, &next, limits.raise_from_k);
        // Without a shape below, the error of the largest budget tried says the most.
        if better || chosen.is_err() {
            chosen = next;
        }
    }
    chosen
}

/// Whether `next`, the shape within a raised budget, replaces `chosen`: where nothing fit
/// before, or where `chosen` has 2^`raise_from_k` rows or more and `next` at least halves its
/// estimated proving work.
fn worth_raising(
    chosen: &Result<CircuitPlan, CircuitError>,
    next: &Result<CircuitPlan, CircuitError>,
    raise_from_k: u32,
) -> bool {
    match (chosen, next) {
        (_, Err(_)) => false,
        (Err(_), Ok(_)) => true,
        (Ok(a), Ok(b)) => a.k >= raise_from_k && 2 * work(b) <= work(a),
    }
}

/// The proving-work estimate of a plan's shape.
fn work(plan: &CircuitPlan) -> u64 {
    prove_cost(&constraint_system(&plan.params), plan.k)
}

/// The model and the layouts already made of it, by `(k, lincomb, freivalds)`: budgets
/// share them.
struct Layouts<'a> {
    q: &'a QGraph,
    inputs: &'a [Vec<i64>],
    io: Io,
    made: HashMap<(u32, bool, bool), Layout>,
}

impl Layouts<'_> {
    /// [`lay_out_at`], made once.
    fn at(&mut self, k: u32, lincomb: bool, freivalds: bool) -> Result<&Layout, CircuitError> {
        let (q, inputs, io) = (self.q, self.inputs, self.io);
        Ok(match self.made.entry((k, lincomb, freivalds)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(lay_out_at(q, inputs, io, k, lincomb, freivalds)?)
            }
        })
    }
}

/// [`plan_circuit`] within the fixed budget `limits.max_proof_bytes`.
fn plan_within(limits: PlanLimits, layouts: &mut Layouts) -> Result<CircuitPlan, CircuitError> {
    let io = layouts.io;
    let ks: Vec<u32> = match limits.k {
        Some(k) => vec![k.clamp(MIN_K, limits.max_k)],
        None => {
            // A first layout with a wide table bounds the cells from below, hence k.
            let probe = layouts.at(18, true, limits.freivalds)?;
            let cells = probe.advice_cells
                + LinCombRegion::rows_at(&probe.lincomb_sizes, 1)
                + probe.freivalds_rows;
            let mut k = MIN_K;
            while k < limits.max_k && usable(k) * MAX_COLUMNS < cells {
                k += 1;
            }
            (k..=limits.max_k).collect()
        }
    };
    let mut best: Option<((u64, u64), CircuitPlan)> = None;
    // The shape with the smallest proof, for the error when none fits the budget.
    let mut smallest: Option<CircuitPlan> = None;
    // The least-memory shape within the proof budget, when the memory limit refused it.
    let mut least_memory: Option<CircuitPlan> = None;
    // The smallest estimated verifier within the proof budget, when the verifier limit
    // refused every one: (bytes, plan).
    let mut least_verifier: Option<(usize, CircuitPlan)> = None;
    if let Some(max) = limits.max_verifier_bytes {
        // Public values alone past the limit: no k or column count brings the verifier
        // within it, and scanning every k for one would cost a layout per k.
        let n = layouts.at(ks[0], true, false)?.num_instances;
        let floor = VERIFIER_BASE_BYTES + VERIFIER_BYTES_PER_INSTANCE * n;
        if floor > max {
            return Err(CircuitError::TooLarge(format!(
                "its {n} public values alone make a Solidity verifier of about {floor} \
                 bytes, over the {max} allowed (--fit-evm: EIP-170); hash inputs and \
                 outputs (--input-visibility hashed --output-visibility hashed: one \
                 public value per tensor) or keep inputs private"
            )));
        }
    }
    let mut last_k = ks[0];
    for &k in &ks {
        last_k = k;
        if let Some((_, plan)) = &best {
            let done = match limits.objective {
                // Every later k costs at least twice as much per column.
                Objective::ProveTime => k > plan.k + 1,
                // One gate column, no dot-product columns: a larger k has no fewer commitments.
                Objective::EvmGas => {
                    plan.params.base.num_advice_per_phase[0] <= 1 && plan.params.lincomb_width == 0
                }
            };
            if done {
                break;
            }
        }
        let mut narrowest = true;
        let mut any_shape = false;
        let mut any_within_budget = false;
        let mut same_without_lincomb = [false; 2];
        // Each region costs columns (proof bytes) and saves rows: try them all.
        for (lincomb, freivalds) in [(true, true), (true, false), (false, true), (false, false)] {
            if (!lincomb && same_without_lincomb[freivalds as usize])
                || (freivalds && !limits.freivalds)
            {
                continue;
            }
            let layout = layouts.at(k, lincomb, freivalds)?;
            if freivalds && layout.freivalds_rows == 0 {
                continue; // no product worth checking: the next layout is this one
            }
            // Under a verifier limit, constants columns count too: a larger k holds them in
            // fewer, and each is a point of the verifier's code.
            narrowest &= layout.base.num_advice_per_phase[0] <= 1
                && layout.base.num_lookup_advice_per_phase[0] <= 1
                && (limits.max_verifier_bytes.is_none() || layout.base.num_fixed <= 1);
            for (cost, plan) in shapes(layout, k, io, limits.objective) {
                any_shape = true;
                if smallest
                    .as_ref()
                    .is_none_or(|s| plan.proof_bytes < s.proof_bytes)
                {
                    smallest = Some(plan.clone());
                }
                if plan.proof_bytes > limits.max_proof_bytes {
                    continue;
                }
                if let Some(max) = limits.max_verifier_bytes {
                    let bytes =
                        verifier_code_bytes(&constraint_system(&plan.params), plan.num_instances);
                    if bytes > max {
                        if least_verifier.as_ref().is_none_or(|(b, _)| bytes < *b) {
                            least_verifier = Some((bytes, plan));
                        }
                        continue;
                    }
                }
                any_within_budget = true;
                if limits
                    .max_prove_memory
                    .is_some_and(|m| plan.prove_memory_bytes > m)
                {
                    if least_memory
                        .as_ref()
                        .is_none_or(|l| plan.prove_memory_bytes < l.prove_memory_bytes)
                    {
                        least_memory = Some(plan);
                    }
                    continue;
                }
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    let plan = CircuitPlan {
                        proof_budget: limits.max_proof_bytes,
                        ..plan
                    };
                    best = Some((cost, plan));
                }
            }
            if lincomb && layout.lincomb_sizes.is_empty() {
                // Without linear ops the layout without the region would be the same.
                same_without_lincomb[freivalds as usize] = true;
            }
        }
        if best.is_none() && narrowest && any_shape {
            // One column of each kind already: a larger k cannot shrink the proof.
            break;
        }
        if best.is_none() && any_within_budget {
            // Every shape within the budget needs more memory than allowed; at a larger k the
            // per-row polynomials (key, SRS, lookups) only double.
            break;
        }
    }
    best.map(|(_, plan)| plan).ok_or_else(|| {
        if let Some(l) = least_memory {
            let allowed = limits.max_prove_memory.unwrap_or(0);
            return CircuitError::OverMemory {
                needed: l.prove_memory_bytes,
                allowed,
                message: format!(
                    "proving needs about {:.1} GiB (the least of any shape within the proof \
                     budget{}: k={}, {}, {}-byte proofs), over the {:.1} GiB allowed \
                     (--max-prove-memory, by default this machine's memory)",
                    l.prove_memory_bytes as f64 / GIB,
                    if limits.max_verifier_bytes.is_some() {
                        " whose verifier fits --fit-evm's limit"
                    } else {
                        ""
                    },
                    l.k,
                    l.columns(),
                    l.proof_bytes,
                    allowed as f64 / GIB,
                ),
            };
        }
        if let Some((bytes, v)) = least_verifier {
            return CircuitError::TooLarge(format!(
                "no circuit up to k={last_k} within {}-byte proofs has a Solidity verifier within \
                 {} bytes of code (--fit-evm: EIP-170; the smallest: about {bytes} bytes, at \
                 k={} with {}, {} fixed columns and {} public values, each about {} bytes of \
                 it): allow more rows (fewer columns: --logrows, the operator's --max-k) or \
                 fewer public values (--input-visibility hashed --output-visibility hashed)",
                limits.max_proof_bytes,
                limits.max_verifier_bytes.unwrap_or(0),
                v.k,
                v.columns(),
                v.params.base.num_fixed,
                v.num_instances,
                VERIFIER_BYTES_PER_INSTANCE,
            ));
        }
        CircuitError::TooLarge(if let Some(s) = smallest {
            format!(
                "no circuit up to k={last_k} has a proof of at most {} bytes (the smallest: {} \
                 bytes, at k={} with {}, and proving it would need about {:.1} GiB; raise \
                 --max-proof-bytes)",
                limits.max_proof_bytes,
                s.proof_bytes,
                s.k,
                s.columns(),
                s.prove_memory_bytes as f64 / GIB,
            )
        } else {
            format!("the circuit does not fit in 2^{last_k} rows")
        })
    })
}

const GIB: f64 = (1u64 << 30) as f64;

/// More columns than this never fit a proof budget worth having; it bounds the smallest k.
const MAX_COLUMNS: usize = 24;

#[cfg(test)]
mod tests;
