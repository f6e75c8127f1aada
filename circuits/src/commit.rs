//! Commitments to tensors: one Poseidon hash stands for a whole tensor among the public
//! instances, so a verifier (or a contract) checks one word instead of every value, and a
//! value can stay private yet be pinned.
//!
//! The hash is snark-verifier's and halo2-base's Poseidon over BN254's scalar field: width
//! `T = 3`, rate 2, `R_F = 8` full and `R_P = 57` partial rounds, S-box `x^5`, round constants
//! and MDS matrix from the Grain LFSR of the Poseidon reference (`SECURE_MDS = 0`). The sponge
//! starts from `[2^64, 0, 0]`, takes the preimage with a `1` appended and zeros to an even
//! length, adds each pair to `state[1], state[2]` and permutes; the commitment is `state[1]`
//! after the last permutation.
//!
//! The preimage of an activation tensor (inputs and outputs now; later the tensors between
//! the segments of a model, so one circuit's output commitment can be the next one's input
//! commitment):
//!
//! ```text
//! TAG                  the ASCII bytes "zkinfer tensor v1" as a big-endian integer
//! rank, dims[rank]     the tensor's shape
//! scale                fractional bits of the fixed point (value = integer / 2^scale)
//! w                    slot width in bits: the tensor's signed range check
//! salt                 a field element the client picks (0 without one); 0 for outputs
//! limbs                ceil(n / m) elements, m = floor(253 / w) values each:
//!                      limb_i = Σ_j (v[i·m + j] + 2^(w-1)) · 2^(w·j), over j < m, i·m + j < n
//! ```
//!
//! Every `v` is range-checked to `[-2^(w-1), 2^(w-1))` in the circuit, so each slot holds
//! `v + 2^(w-1) ∈ [0, 2^w)` and a limb is below `2^253 < p`: the packing is injective, and
//! with the shape in the preimage so is the whole encoding.
//!
//! A model's committed weights (`--weights hashed`) are one commitment over every weight
//! tensor, in graph order, each at the activation scale with the model's weight width `w`:
//!
//! ```text
//! TAG                  the ASCII bytes "zkinfer weights v1" as a big-endian integer
//! n                    the number of weight tensors
//! per tensor:          rank, dims[rank], scale, w, then its limbs as above
//! ```
//!
//! Natively ([`commit`], [`hash`]) the same steps run on field elements; the tests hold them
//! to the gadget, to snark-verifier's native Poseidon (the verifier crate's tests) and to an
//! implementation in Python written from the README alone.

use std::sync::OnceLock;

use halo2_base::gates::{GateChip, GateInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::poseidon::hasher::spec::OptimizedPoseidonSpec;
use halo2_base::QuantumCell::{Constant, Existing};
use halo2_base::{AssignedValue, Context};
use serde::{Deserialize, Serialize};

use crate::error::CircuitError;
use crate::field::fr;

/// Poseidon's state width.
pub const T: usize = 3;
/// Elements absorbed per permutation.
pub const RATE: usize = 2;
/// Full rounds.
pub const R_F: usize = 8;
/// Partial rounds.
pub const R_P: usize = 57;

/// The domain tag of activation tensors (inputs, outputs, segment boundaries).
pub const TENSOR_TAG: &[u8] = b"zkinfer tensor v1";

/// The domain tag of a model's committed weights (`--weights hashed`).
pub const WEIGHTS_TAG: &[u8] = b"zkinfer weights v1";

/// Bits a limb may fill: `2^253 < p`, so a limb never wraps the field.
pub const LIMB_BITS: u32 = 253;

/// The version of the hash layout (tags, preimage, packing, sponge) the model id records.
pub const HASH_LAYOUT_VERSION: u32 = 1;

/// What a tensor commitment covers besides the values: the preimage's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorLayout {
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// Fractional bits of its fixed point.
    pub scale: u32,
    /// Signed bits of each value (its range check), the slot width.
    pub slot_bits: u32,
}

impl TensorLayout {
    /// Values per limb.
    pub fn per_limb(&self) -> usize {
        (LIMB_BITS / self.slot_bits) as usize
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Field elements of the preimage before the salt (tag, rank, dims, scale, width).
    fn header(&self) -> Vec<Fr> {
        let mut h = vec![tag(TENSOR_TAG)];
        h.extend(self.description());
        h
    }

    /// Rank, dims, scale and width: what the preimage says of the tensor besides its values.
    fn description(&self) -> Vec<Fr> {
        let mut h = vec![Fr::from(self.shape.len() as u64)];
        h.extend(self.shape.iter().map(|&d| Fr::from(d as u64)));
        h.extend([Fr::from(self.scale as u64), Fr::from(self.slot_bits as u64)]);
        h
    }

    /// Checks that values fit the slots (what the circuit's range checks enforce).
    pub fn check(&self, values: &[i64]) -> Result<(), CircuitError> {
        if !(2..=64).contains(&self.slot_bits) {
            return Err(CircuitError::Internal(format!(
                "a {}-bit commitment slot",
                self.slot_bits
            )));
        }
        if values.len() != self.len() {
            return Err(CircuitError::Internal(format!(
                "{} values for a tensor of shape {:?}",
                values.len(),
                self.shape
            )));
        }
        let half = 1i128 << (self.slot_bits - 1);
        if let Some((i, v)) = values
            .iter()
            .enumerate()
            .find(|(_, &v)| !(-half..half).contains(&(v as i128)))
        {
            return Err(CircuitError::OutOfRange {
                place: format!("value {i} of a committed tensor"),
                value: *v as i128,
                bits: self.slot_bits,
            });
        }
        Ok(())
    }
}

/// A tag's bytes as a big-endian integer (at most 31 bytes, so below `p`).
fn tag(bytes: &[u8]) -> Fr {
    debug_assert!(bytes.len() < 32);
    bytes.iter().fold(Fr::zero(), |acc, &b| {
        acc * Fr::from(256) + Fr::from(b as u64)
    })
}

/// The spec, computed once (the Grain LFSR and the sparse matrices take milliseconds).
fn spec() -> &'static OptimizedPoseidonSpec<Fr, T, RATE> {
    static SPEC: OnceLock<OptimizedPoseidonSpec<Fr, T, RATE>> = OnceLock::new();
    SPEC.get_or_init(OptimizedPoseidonSpec::new::<R_F, R_P, 0>)
}

/// Commits to `values` (cells, each already range-checked to `layout.slot_bits` signed bits)
/// with `salt`: packs them into limbs and hashes the preimage. Returns the commitment cell.
pub fn commit_cells(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    layout: &TensorLayout,
    values: &[AssignedValue<Fr>],
    salt: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let mut preimage: Vec<AssignedValue<Fr>> = layout
        .header()
        .into_iter()
        .map(|h| ctx.load_constant(h))
        .collect();
    preimage.push(salt);
    preimage.extend(pack_cells(ctx, gate, layout, values));
    sponge(ctx, gate, &preimage)
}

/// The limbs of `values` (each already range-checked to `layout.slot_bits` signed bits).
fn pack_cells(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    layout: &TensorLayout,
    values: &[AssignedValue<Fr>],
) -> Vec<AssignedValue<Fr>> {
    debug_assert_eq!(values.len(), layout.len());
    let w = layout.slot_bits;
    values
        .chunks(layout.per_limb())
        .map(|chunk| {
            let weights: Vec<Fr> = (0..chunk.len()).map(|j| pow2(w * j as u32)).collect();
            let offset: Fr = weights.iter().map(|&c| c * pow2(w - 1)).sum();
            let sum = gate.inner_product(
                ctx,
                chunk.iter().map(|&c| Existing(c)),
                weights.into_iter().map(Constant),
            );
            gate.add(ctx, sum, Constant(offset))
        })
        .collect()
}

/// Commits to a model's weight tensors (cells, each range-checked to its layout's slot):
/// the preimage of [`weights_preimage`]. Returns the commitment cell.
pub fn commit_weight_cells(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    tensors: &[(TensorLayout, Vec<AssignedValue<Fr>>)],
) -> AssignedValue<Fr> {
    let mut preimage = vec![
        ctx.load_constant(tag(WEIGHTS_TAG)),
        ctx.load_constant(Fr::from(tensors.len() as u64)),
    ];
    for (layout, cells) in tensors {
        for h in layout.description() {
            preimage.push(ctx.load_constant(h));
        }
        preimage.extend(pack_cells(ctx, gate, layout, cells));
    }
    sponge(ctx, gate, &preimage)
}

/// The sponge of the module documentation over `preimage`; returns `state[1]`.
///
/// halo2-base's `PoseidonSponge` computes the same permutation (its optimized form, mirrored
/// here round by round) but also the two words of the last round that nothing reads: cells
/// pinned by no constraint but the one computing them, which the lying prover's audit
/// rightly flags. Here the last round computes only the word squeezed.
fn sponge(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    preimage: &[AssignedValue<Fr>],
) -> AssignedValue<Fr> {
    // The capacity word starts at 2^64 (one output), as in snark-verifier's transcript.
    let mut state = [pow2(64), Fr::zero(), Fr::zero()].map(|v| ctx.load_constant(v));
    let chunks: Vec<&[AssignedValue<Fr>]> = preimage.chunks(RATE).collect();
    // A preimage of whole chunks takes one more permutation for the padding's 1.
    let n = chunks.len() + preimage.len().is_multiple_of(RATE) as usize;
    for i in 0..n {
        let chunk = chunks.get(i).copied().unwrap_or(&[]);
        permute(ctx, gate, &mut state, chunk, i + 1 == n);
    }
    state[1]
}

/// One permutation with `inputs` (fewer than `T`) absorbed first and, when short, the
/// padding's 1 after them. On the `last` one only `state[1]` is computed.
fn permute(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    s: &mut [AssignedValue<Fr>; T],
    inputs: &[AssignedValue<Fr>],
    last: bool,
) {
    let spec = spec();
    let half = spec.r_f() / 2;
    let mds = spec.mds_matrices().mds().as_ref();
    let start = spec.constants().start();
    // The first round's constants are added with the inputs.
    let pre = &start[0];
    s[0] = gate.add(ctx, s[0], Constant(pre[0]));
    for i in 1..T {
        s[i] = match inputs.get(i - 1) {
            Some(&x) => gate.sum(ctx, [Existing(s[i]), Existing(x), Constant(pre[i])]),
            None if i - 1 == inputs.len() => gate.add(ctx, s[i], Constant(pre[i] + Fr::one())),
            None => gate.add(ctx, s[i], Constant(pre[i])),
        };
    }
    for c in start.iter().skip(1).take(half - 1) {
        sbox_full(ctx, gate, s, c);
        apply_mds(ctx, gate, s, mds);
    }
    sbox_full(ctx, gate, s, start.last().expect("full rounds"));
    apply_mds(ctx, gate, s, spec.mds_matrices().pre_sparse_mds().as_ref());
    for (c, sparse) in spec
        .constants()
        .partial()
        .iter()
        .zip(spec.mds_matrices().sparse_matrices())
    {
        s[0] = pow5_plus(ctx, gate, s[0], *c);
        let row = gate.inner_product(ctx, s.iter().copied(), (*sparse.row()).map(Constant));
        for (j, &e) in sparse.col_hat().iter().enumerate() {
            s[j + 1] = gate.mul_add(ctx, s[0], Constant(e), s[j + 1]);
        }
        s[0] = row;
    }
    for c in spec.constants().end() {
        sbox_full(ctx, gate, s, c);
        apply_mds(ctx, gate, s, mds);
    }
    sbox_full(ctx, gate, s, &[Fr::zero(); T]);
    if last {
        s[1] = gate.inner_product(ctx, s.iter().copied(), mds[1].map(Constant));
    } else {
        apply_mds(ctx, gate, s, mds);
    }
}

/// `x^5 + c`.
fn pow5_plus(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    x: AssignedValue<Fr>,
    c: Fr,
) -> AssignedValue<Fr> {
    let x2 = gate.mul(ctx, x, x);
    let x4 = gate.mul(ctx, x2, x2);
    gate.mul_add(ctx, x, x4, Constant(c))
}

fn sbox_full(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    s: &mut [AssignedValue<Fr>; T],
    c: &[Fr; T],
) {
    for (x, c) in s.iter_mut().zip(c) {
        *x = pow5_plus(ctx, gate, *x, *c);
    }
}

fn apply_mds(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    s: &mut [AssignedValue<Fr>; T],
    mds: &[[Fr; T]; T],
) {
    let old = *s;
    *s = (*mds).map(|row| gate.inner_product(ctx, old, row.map(Constant)));
}

fn pow2(bits: u32) -> Fr {
    Fr::from(2).pow_vartime([bits as u64])
}

/// The preimage of `values` (checked against `layout`) with `salt`, as field elements.
pub fn preimage(layout: &TensorLayout, values: &[i64], salt: Fr) -> Result<Vec<Fr>, CircuitError> {
    let mut out = layout.header();
    out.push(salt);
    out.extend(pack(layout, values)?);
    Ok(out)
}

/// The limbs of `values`, checked against `layout`.
fn pack(layout: &TensorLayout, values: &[i64]) -> Result<Vec<Fr>, CircuitError> {
    layout.check(values)?;
    let w = layout.slot_bits;
    Ok(values
        .chunks(layout.per_limb())
        .map(|chunk| {
            chunk
                .iter()
                .enumerate()
                .map(|(j, &v)| (fr(v as i128) + pow2(w - 1)) * pow2(w * j as u32))
                .sum()
        })
        .collect())
}

/// The preimage of a model's weights: the weights tag, the number of tensors, then per
/// tensor its rank, dims, scale and slot width followed by its limbs (no salt: a model's
/// commitment is one fixed value, registered once).
pub fn weights_preimage(tensors: &[(TensorLayout, &[i64])]) -> Result<Vec<Fr>, CircuitError> {
    let mut out = vec![tag(WEIGHTS_TAG), Fr::from(tensors.len() as u64)];
    for (layout, values) in tensors {
        out.extend(layout.description());
        out.extend(pack(layout, values)?);
    }
    Ok(out)
}

/// The commitment to a model's weight tensors, computed natively.
pub fn commit_weights(tensors: &[(TensorLayout, &[i64])]) -> Result<Fr, CircuitError> {
    Ok(hash(&weights_preimage(tensors)?))
}

/// [`commit_weights`] of tensors `(shape, values)`, each at `scale` with `slot_bits`-bit slots
/// (a model's weights share both).
pub fn commit_weight_tensors<'a>(
    scale: u32,
    slot_bits: u32,
    tensors: impl IntoIterator<Item = (&'a [usize], &'a [i64])>,
) -> Result<Fr, CircuitError> {
    let layouts: Vec<(TensorLayout, &[i64])> = tensors
        .into_iter()
        .map(|(shape, values)| {
            let layout = TensorLayout {
                shape: shape.to_vec(),
                scale,
                slot_bits,
            };
            (layout, values)
        })
        .collect();
    commit_weights(&layouts)
}

/// The commitment to a tensor of integers, computed natively: the sponge of [`sponge`] on
/// field elements (no cells: a verifier hashes claimed values without laying anything out).
pub fn commit(layout: &TensorLayout, values: &[i64], salt: Fr) -> Result<Fr, CircuitError> {
    Ok(hash(&preimage(layout, values, salt)?))
}

/// The sponge of the module documentation over field elements, step by step as [`sponge`]
/// lays it out (the tests hold the two, snark-verifier's native Poseidon and the outside
/// implementation to one another).
pub fn hash(preimage: &[Fr]) -> Fr {
    let spec = spec();
    let half = spec.r_f() / 2;
    let mds = spec.mds_matrices().mds().as_ref();
    let start = spec.constants().start();
    let pow5 = |x: Fr| x.square().square() * x;
    let full = |s: &mut [Fr; T], c: &[Fr; T], m: &[[Fr; T]; T]| {
        let x = [0, 1, 2].map(|i| pow5(s[i]) + c[i]);
        *s = m.map(|row| row.iter().zip(&x).map(|(a, b)| *a * b).sum());
    };
    let mut s = [pow2(64), Fr::zero(), Fr::zero()];
    let chunks: Vec<&[Fr]> = preimage.chunks(RATE).collect();
    let n = chunks.len() + preimage.len().is_multiple_of(RATE) as usize;
    for i in 0..n {
        let inputs = chunks.get(i).copied().unwrap_or(&[]);
        let pre = &start[0];
        s[0] += pre[0];
        for k in 1..T {
            s[k] += pre[k]
                + match inputs.get(k - 1) {
                    Some(&x) => x,
                    None if k - 1 == inputs.len() => Fr::one(),
                    None => Fr::zero(),
                };
        }
        for c in start.iter().skip(1).take(half - 1) {
            full(&mut s, c, mds);
        }
        full(
            &mut s,
            start.last().expect("full rounds"),
            spec.mds_matrices().pre_sparse_mds().as_ref(),
        );
        for (c, sparse) in spec
            .constants()
            .partial()
            .iter()
            .zip(spec.mds_matrices().sparse_matrices())
        {
            s[0] = pow5(s[0]) + c;
            let row: Fr = sparse.row().iter().zip(&s).map(|(a, b)| *a * b).sum();
            for (j, e) in sparse.col_hat().iter().enumerate() {
                s[j + 1] += s[0] * e;
            }
            s[0] = row;
        }
        for c in spec.constants().end() {
            full(&mut s, c, mds);
        }
        full(&mut s, &[Fr::zero(); T], mds);
    }
    s[1]
}

/// The field element of a salt given as hex (1 to 64 digits, big-endian, optionally `0x`),
/// below `p`.
pub fn parse_salt(text: &str) -> Option<Fr> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    crate::field::from_hex(&format!("0x{t:0>64}"))
}

/// A commitment as 64 lowercase hex digits, big-endian, as among a proof file's instances.
pub fn commitment_hex(c: &Fr) -> String {
    crate::field::to_hex(c)[2..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(shape: &[usize], bits: u32) -> TensorLayout {
        TensorLayout {
            shape: shape.to_vec(),
            scale: 7,
            slot_bits: bits,
        }
    }

    #[test]
    fn tag_is_the_big_endian_ascii() {
        assert_eq!(tag(b"\x01\x02"), Fr::from(258));
        assert_eq!(layout(&[3], 16).header()[1], Fr::from(1));
    }

    #[test]
    fn every_value_shape_scale_and_salt_changes_the_commitment() {
        let l = layout(&[2, 20], 16);
        let v: Vec<i64> = (0..40).map(|i| i * 37 - 700).collect();
        let c = commit(&l, &v, Fr::zero()).unwrap();
        for i in [0, 14, 15, 39] {
            let mut w = v.clone();
            w[i] += 1;
            assert_ne!(commit(&l, &w, Fr::zero()).unwrap(), c, "value {i}");
        }
        assert_ne!(commit(&layout(&[40], 16), &v, Fr::zero()).unwrap(), c);
        assert_ne!(commit(&layout(&[2, 20], 17), &v, Fr::zero()).unwrap(), c);
        let mut s = l.clone();
        s.scale = 8;
        assert_ne!(commit(&s, &v, Fr::zero()).unwrap(), c);
        assert_ne!(commit(&l, &v, Fr::one()).unwrap(), c);
        assert_eq!(commit(&l, &v, Fr::zero()).unwrap(), c);
    }

    #[test]
    fn values_outside_their_slots_are_refused() {
        let l = layout(&[2], 8);
        assert!(commit(&l, &[127, -128], Fr::zero()).is_ok());
        assert!(commit(&l, &[128, 0], Fr::zero()).is_err());
        assert!(commit(&l, &[0, -129], Fr::zero()).is_err());
        assert!(commit(&l, &[0], Fr::zero()).is_err());
    }

    /// The gadget on MockProver: `values` range-checked as model inputs are, committed with
    /// `salt`, the commitment the one public instance. Returns the salt's and the commitment's
    /// offsets.
    fn mock(
        l: &TensorLayout,
        values: &[i64],
        salt: Fr,
    ) -> crate::testing::MockCircuit<(usize, usize)> {
        use crate::chips::QuantChip;
        crate::testing::MockCircuit::build(11, |ctx, range, _| {
            let chip = QuantChip::new(range.clone());
            let cells: Vec<_> = values
                .iter()
                .map(|&v| {
                    let c = ctx.load_witness(fr(v as i128));
                    chip.signed_range(ctx, c, l.slot_bits, &|| "value".into())
                        .unwrap();
                    c
                })
                .collect();
            let salt = ctx.load_witness(salt);
            let c = commit_cells(ctx, chip.gate(), l, &cells, salt);
            let offset = |a: AssignedValue<Fr>| a.cell.unwrap().offset;
            ((offset(salt), offset(c)), vec![c])
        })
    }

    #[test]
    fn a_wrong_preimage_is_rejected_by_the_poseidon_constraints() {
        use crate::testing::{CellRef, Rejection};
        let l = layout(&[30], 16);
        let v: Vec<i64> = (0..30).map(|i| 1000 - 77 * i).collect();
        let salt = Fr::from(99);
        let mut m = mock(&l, &v, salt);
        assert!(m.satisfied(), "the honest witness must pass");
        assert_eq!(m.instances(), [commit(&l, &v, salt).unwrap()]);
        let (salt_at, out_at) = m.result;
        // Another salt (the preimage a forger would rather open), the packed limb of other
        // values, the commitment of other values: each moved with its copies, the rest kept.
        let limb: Fr = (0..15)
            .map(|j| (fr(v[j] as i128) + pow2(15)) * pow2(16 * j as u32))
            .sum();
        let limb_at = m
            .cells
            .clone()
            .find(|&o| m.base_cell(o) == limb)
            .expect("the first limb is a cell");
        let other = commit(&l, &[0; 30], salt).unwrap();
        for (what, at, to) in [
            ("salt", salt_at, Fr::from(100)),
            ("limb", limb_at, limb + Fr::one()),
            ("commitment", out_at, other),
        ] {
            let got = m.rejections(&[(CellRef::Base(at), to)]);
            assert_eq!(got, [Rejection::BasicGate].into_iter().collect(), "{what}");
        }
        // No cell of the gadget can change unnoticed.
        let cells: Vec<CellRef> = m.cells.clone().map(CellRef::Base).collect();
        assert_eq!(m.unconstrained_among(cells), Vec::<CellRef>::new());
        // The commitment of other values is refused as the instance.
        assert!(!m.accepts_instances(vec![other]));
    }

    #[test]
    fn salts_parse_as_canonical_hex() {
        assert_eq!(parse_salt("0x05"), Some(Fr::from(5)));
        assert_eq!(parse_salt("ff"), Some(Fr::from(255)));
        assert_eq!(parse_salt(&"f".repeat(64)), None);
        assert_eq!(parse_salt("xyz"), None);
        assert_eq!(parse_salt(&"0".repeat(65)), None);
        assert_eq!(parse_salt(""), None);
        assert_eq!(parse_salt("0x"), None);
        assert_eq!(parse_salt("+1"), None);
    }
}
