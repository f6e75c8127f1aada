//! What a circuit shape costs: its proof's size in bytes, a proving-work estimate and an EVM
//! verification-gas estimate, used to choose between shapes.
//!
//! Both read a configured [`ConstraintSystem`], so they follow the columns, queries, lookups
//! and permutation exactly as halo2 will build them.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::{Circuit, ConstraintSystem};

use crate::circuit::{CircuitParams, ModelCircuit};

const G1_BYTES: usize = 64;
const FR_BYTES: usize = 32;

/// The constraint system of a model circuit of shape `params`.
pub fn constraint_system(params: &CircuitParams) -> ConstraintSystem<Fr> {
    let mut cs = ConstraintSystem::default();
    ModelCircuit::configure_with_params(&mut cs, params.clone());
    cs
}

/// Counts of what a SHPLONK proof over `cs` carries.
struct ProofParts {
    /// G1 commitments.
    points: usize,
    /// Field-element evaluations.
    scalars: usize,
}

fn proof_parts(cs: &ConstraintSystem<Fr>) -> ProofParts {
    let degree = cs.degree();
    let perm_columns = cs.permutation().get_columns().len();
    let perm_products = perm_columns.div_ceil(degree - 2);
    let lookups = cs.lookups().len();
    let points = cs.num_advice_columns()
        + 2 * lookups // permuted input and table
        + perm_products
        + lookups // lookup products
        + 1 // the vanishing argument's random polynomial
        + (degree - 1) // quotient pieces
        + 2; // SHPLONK's two opening points
             // Before keygen compresses them, each selector stands for one fixed column query.
    let fixed_evals = cs.fixed_queries().len() + cs.num_selectors();
    let scalars = cs.advice_queries().len()
        + fixed_evals
        + 1 // random polynomial
        + perm_columns // sigma polynomials
        + 3 * perm_products - 1 // z(x), z(ωx), and z(ω^last x) but for the last product
        + 5 * lookups;
    ProofParts { points, scalars }
}

/// Bytes of a SHPLONK proof with the EVM transcript for `cs` (64-byte points, 32-byte
/// scalars). Exact for a key's (selector-compressed) system, an upper bound before keygen.
pub fn proof_bytes(cs: &ConstraintSystem<Fr>) -> usize {
    let p = proof_parts(cs);
    p.points * G1_BYTES + p.scalars * FR_BYTES
}

/// Relative proving work of `cs` at `2^k` rows: the polynomials the prover commits to, each an
/// MSM and FFTs over the domain, plus a share for the quotient over the extended domain.
pub fn prove_cost(cs: &ConstraintSystem<Fr>, k: u32) -> u64 {
    let p = proof_parts(cs);
    let committed = p.points - 2;
    (committed as u64) << k
}

/// Gas of a transaction before it runs anything.
const TX_BASE_GAS: u64 = 21_000;
/// The pairing check (EIP-1108: 45,000 + 34,000 per pair, two pairs).
const PAIRING_GAS: u64 = 113_000;
/// One scalar multiplication and addition in the verifier's MSM (EIP-1108: 6,000 + 150).
const EC_MUL_ADD_GAS: u64 = 6_150;
/// Calldata, per byte (EIP-2028, non-zero bytes; proofs are nearly all non-zero).
const CALLDATA_GAS_PER_BYTE: u64 = 16;
/// Field arithmetic per evaluation in the proof (the linearisation and SHPLONK's sums).
const EVALUATION_GAS: u64 = 600;
/// The Lagrange evaluation of each public value.
const INSTANCE_GAS: u64 = 450;

/// Estimated gas of verifying a proof over `cs` with `num_instances` public values in the
/// Solidity verifier: the pairing, one MSM term per commitment (the proof's and the verifying
/// key's: fixed columns, selectors, permutation), calldata and field arithmetic. It ranks
/// shapes; `zkinfer evm-verify` measures.
pub fn verify_gas(cs: &ConstraintSystem<Fr>, num_instances: usize) -> u64 {
    let p = proof_parts(cs);
    let vk_points =
        cs.num_fixed_columns() + cs.num_selectors() + cs.permutation().get_columns().len();
    let calldata = (p.points * G1_BYTES + (p.scalars + num_instances) * FR_BYTES) as u64;
    TX_BASE_GAS
        + PAIRING_GAS
        + EC_MUL_ADD_GAS * (p.points + vk_points) as u64
        + CALLDATA_GAS_PER_BYTE * calldata
        + EVALUATION_GAS * p.scalars as u64
        + INSTANCE_GAS * num_instances as u64
}

/// Bytes per field element in the prover's polynomials.
const FR_MEM: u64 = 32;
/// Bytes of the SRS per row: `g` and `g_lagrange`, one affine point each.
const SRS_MEM_PER_ROW: u64 = 2 * 64;
/// Bytes per gate-advice cell in halo2-base's virtual builder before it is assigned.
const BUILDER_MEM_PER_CELL: u64 = 96;
/// Measured peak RSS over the structural count below (allocator slack, FFT scratch, rayon
/// buffers), fitted on the `benches/compare` and `benches/freivalds` runs: the estimate is
/// within −5 % … +10 % of the measured peak for k = 15…21.
const MEM_SLACK: f64 = 1.1;
/// The process before any circuit: binary, model, tables.
const MEM_BASE: u64 = 60 << 20;

/// Estimated peak memory of `zkinfer prove` for `cs` at `2^k` rows with `advice_cells`
/// gate cells, in bytes. halo2-axiom's prover holds, per row: the proving key's fixed and
/// permutation polynomials in both bases, every advice, instance, lookup and permutation-product
/// polynomial in both bases, one extended-domain part of each of them while the quotient is
/// evaluated, the quotient over the whole extended domain, and the SRS. Used to refuse, at
/// compile time, a circuit this machine cannot prove.
pub fn prove_memory_bytes(cs: &ConstraintSystem<Fr>, k: u32, advice_cells: usize) -> u64 {
    let fixed = (cs.num_fixed_columns() + cs.num_selectors()) as u64;
    let sigma = cs.permutation().get_columns().len() as u64;
    let perm_products = sigma.div_ceil(cs.degree() as u64 - 2);
    let advice = cs.num_advice_columns() as u64;
    let instance = cs.num_instance_columns() as u64;
    let lookups = cs.lookups().len() as u64;
    let extended_parts = (cs.degree() as u64 - 1).next_power_of_two();
    let key = 2 * fixed + 3 + 2 * sigma;
    let witness = 2 * (advice + instance + 3 * lookups + perm_products);
    let quotient_part = fixed + 3 + sigma + advice + instance + 3 * lookups + perm_products;
    let per_row = FR_MEM * (key + witness + quotient_part + extended_parts) + SRS_MEM_PER_ROW;
    let structural = (per_row << k) + BUILDER_MEM_PER_CELL * advice_cells as u64;
    (structural as f64 * MEM_SLACK) as u64 + MEM_BASE
}

/// EIP-170: the largest runtime code a contract may have.
pub const EIP_170_CODE_BYTES: usize = 24_576;

/// Code each public value adds to a verifier (its calldata read, range check and Lagrange
/// term), as [`verifier_code_bytes`] counts it.
pub const VERIFIER_BYTES_PER_INSTANCE: usize = 161;

/// [`verifier_code_bytes`]'s constant: every verifier has at least this much code and
/// [`VERIFIER_BYTES_PER_INSTANCE`] per public value, whatever its columns.
pub const VERIFIER_BASE_BYTES: usize = 5_700;

/// What a Solidity verifier's code grows with (snark-verifier emits straight-line code: no
/// loops over commitments or evaluations, so each costs bytes of code, not only gas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifierShape {
    /// G1 points the proof carries (each read, checked on the curve, and multiplied in).
    pub points: usize,
    /// Evaluations the proof carries.
    pub scalars: usize,
    /// Points of the verifying key (fixed columns, selectors before compression,
    /// permutation columns): constants of the code, each multiplied in.
    pub vk_points: usize,
    /// Lookup inputs past the first of each lookup (a function table's tag, argument, value
    /// and slope: a compressed tuple to evaluate).
    pub extra_lookup_inputs: usize,
    /// Challenges (a Freivalds check's second phase: another transcript squeeze).
    pub challenges: usize,
    /// Public values.
    pub instances: usize,
}

/// The [`VerifierShape`] of `cs` with `num_instances` public values.
pub fn verifier_shape(cs: &ConstraintSystem<Fr>, num_instances: usize) -> VerifierShape {
    let p = proof_parts(cs);
    VerifierShape {
        points: p.points,
        scalars: p.scalars,
        vk_points: cs.num_fixed_columns()
            + cs.num_selectors()
            + cs.permutation().get_columns().len(),
        extra_lookup_inputs: cs
            .lookups()
            .iter()
            .map(|l| l.input_expressions().len().saturating_sub(1))
            .sum(),
        challenges: cs.num_challenges(),
        instances: num_instances,
    }
}

/// Estimated runtime code of the Solidity verifier of `cs` with `num_instances` public values,
/// compiled unoptimized, in bytes. A least-squares fit on the 241 shapes of
/// `benches/VERIFIER-SIZE.md` (solcjs 0.8.19, verifiers up to 36 kB; residuals within
/// −650…+210 bytes) with 784 bytes added to its constant: above every measured verifier up to
/// 36 kB, by 600 to 1,400 bytes near EIP-170, so a planner keeping within EIP-170 by it does
/// not take a verifier over the limit. `zkinfer evm-verifier` measures.
pub fn verifier_code_bytes(cs: &ConstraintSystem<Fr>, num_instances: usize) -> usize {
    let s = verifier_shape(cs, num_instances);
    VERIFIER_BASE_BYTES
        + 310 * s.points
        + 47 * s.scalars
        + 237 * s.vk_points
        + 219 * s.extra_lookup_inputs
        + 340 * s.challenges
        + VERIFIER_BYTES_PER_INSTANCE * s.instances
}
