//! Division by a positive variable, rounded half up (softmax's normalization).
//!
//! `y = floor((a·2^(s+1) + b) / 2b)`: with `num = b + a·2^(s+1)` and `b2 = b + b`, the gates
//! give `r + y·b2 = num` and `d + r + 1 = b2`, and `r`, `d` are range-checked to
//! `[0, 2^(bits+1))`, so `0 ≤ r < 2b` (which also proves `b ≥ 1`); `y` goes through the signed
//! range check. Every product stays far below the field modulus, so `y` is unique.

use halo2_base::gates::RangeInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::{Constant, Existing, Witness};
use halo2_base::{AssignedValue, Context};

use super::QuantChip;
use crate::error::CircuitError;
use crate::field::{fr, signed};

impl QuantChip {
    /// `round(a · 2^shift / b)` for `0 < b < 2^den_bits`; returns the quotient and,
    /// when its range check proved one, its negative bit (see [`Self::output_range`]).
    #[allow(clippy::too_many_arguments)]
    pub fn divide(
        &self,
        ctx: &mut Context<Fr>,
        a: AssignedValue<Fr>,
        b: AssignedValue<Fr>,
        shift: u32,
        den_bits: u32,
        act_bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<(AssignedValue<Fr>, Option<AssignedValue<Fr>>), CircuitError> {
        let (av, bv) = (
            signed(a.value()).unwrap_or(i128::MAX),
            signed(b.value()).unwrap_or(i128::MAX),
        );
        let y = zkinfer_model::divide(av, bv, shift)
            .filter(|_| bv < 1i128 << den_bits)
            .ok_or_else(|| CircuitError::OutOfRange {
                place: format!("divisor at {}", place()),
                value: bv,
                bits: den_bits,
            })?;
        let num = av * (1i128 << (shift + 1)) + bv;
        let r = num - y * 2 * bv;
        ctx.assign_region(
            [
                Existing(b),
                Existing(a),
                Constant(fr(1i128 << (shift + 1))),
                Witness(fr(num)),
            ],
            [0],
        );
        let num_cell = ctx.get(-1);
        ctx.assign_region(
            [
                Existing(b),
                Existing(b),
                Constant(fr(1)),
                Witness(fr(2 * bv)),
            ],
            [0],
        );
        let b2_cell = ctx.get(-1);
        ctx.assign_region(
            [
                Witness(fr(r)),
                Witness(fr(y)),
                Existing(b2_cell),
                Existing(num_cell),
            ],
            [0],
        );
        let (r_cell, y_cell) = (ctx.get(-4), ctx.get(-3));
        let d = 2 * bv - 1 - r;
        ctx.assign_region(
            [
                Witness(fr(d)),
                Existing(r_cell),
                Constant(fr(1)),
                Witness(fr(d + r)),
                Constant(fr(1)),
                Constant(fr(1)),
                Existing(b2_cell),
            ],
            [0, 3],
        );
        let d_cell = ctx.get(-7);
        self.range.range_check(ctx, r_cell, den_bits as usize + 1);
        self.range.range_check(ctx, d_cell, den_bits as usize + 1);
        let neg = self.output_range(ctx, y_cell, act_bits, place)?;
        Ok((y_cell, neg))
    }
}
