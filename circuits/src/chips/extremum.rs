//! Max and min of two values through the sign of their difference.
//!
//! With `d = a - b` and `nb` its negative bit (from the signed range check, so `d` itself is
//! bounded): `max = a - nb · d` and `min = b + nb · d`, one gate each. ReLU is `max(x, 0)`,
//! where `d = x` and a sign bit already proven for `x` is reused.

use halo2_base::gates::GateInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::{Existing, Witness};
use halo2_base::{AssignedValue, Context};

use super::{Elem, QuantChip};
use crate::error::CircuitError;
use crate::field::fr;
use zkinfer_model::ExtremumKind;

impl QuantChip {
    /// `max(a, b)` or `min(a, b)`, where `|a - b| < 2^(bits-1)` for honest values.
    /// `neg_a` is a known negative bit of `a`, reused when `b` is the constant 0.
    #[allow(clippy::too_many_arguments)]
    pub fn extremum2(
        &self,
        ctx: &mut Context<Fr>,
        kind: ExtremumKind,
        a: Elem,
        b: Elem,
        neg_a: Option<AssignedValue<Fr>>,
        bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<Elem, CircuitError> {
        let pick = |x: i128, y: i128| match kind {
            ExtremumKind::Max => x.max(y),
            ExtremumKind::Min => x.min(y),
        };
        let (a, b, neg_a) = match (a, b) {
            (Elem::Const(x), Elem::Const(y)) => return Ok(Elem::Const(pick(x, y))),
            (Elem::Const(_), Elem::Cell(_)) => (b, a, None),
            _ => (a, b, neg_a),
        };
        let Elem::Cell(a_cell) = a else {
            unreachable!("a is a cell after the swap")
        };
        // d = a - b, and its negative bit.
        let (d, nb) = match (b, neg_a) {
            (Elem::Const(0), Some(nb)) => (a_cell, nb),
            (Elem::Const(0), None) => (a_cell, self.sign_bit(ctx, a_cell, bits, place)?),
            _ => {
                let d = self.gate().sub(ctx, a.quantum(), b.quantum());
                (d, self.sign_bit(ctx, d, bits, place)?)
            }
        };
        let a_val = a.value();
        let b_val = b.value();
        let out = fr(pick(a_val, b_val));
        match kind {
            // out + nb·d = a
            ExtremumKind::Max => ctx.assign_region(
                [Witness(out), Existing(nb), Existing(d), Existing(a_cell)],
                [0],
            ),
            // b + nb·d = out
            ExtremumKind::Min => {
                ctx.assign_region([b.quantum(), Existing(nb), Existing(d), Witness(out)], [0])
            }
        }
        Ok(Elem::Cell(match kind {
            ExtremumKind::Max => ctx.get(-4),
            ExtremumKind::Min => ctx.get(-1),
        }))
    }
}
