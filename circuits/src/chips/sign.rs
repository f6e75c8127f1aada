//! Signed range checks: with a sign bit ([`QuantChip::sign_bit`]), or without one
//! ([`QuantChip::signed_range`]).
//!
//! For `x` and `B = bits - 1`, witness `nb ∈ {0,1}` and `low ∈ [0, 2^B)` with
//! `x = low - nb · 2^B`. This proves `-2^B <= x < 2^B`, exactly the range the integer
//! reference (`QGraph::eval`) accepts, and makes `nb` the (unique) "x is negative" bit: zero
//! has only `nb = 0`, since `low = 2^B` is out of range. One gate, one boolean check, and a
//! lookup range check of `low` (halo2-base adds one more lookup when `B` is not a whole
//! number of lookup limbs, so the bound is exact rather than rounded up).

use halo2_base::gates::{GateInstructions, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::{Constant, Existing, Witness};
use halo2_base::{AssignedValue, Context};

use super::QuantChip;
use crate::error::CircuitError;
use crate::field::{fr, signed};

impl QuantChip {
    /// Constrains `x` to exactly `bits` signed bits (`-2^(bits-1) <= x < 2^(bits-1)`) and
    /// returns its negative bit.
    pub fn sign_bit(
        &self,
        ctx: &mut Context<Fr>,
        x: AssignedValue<Fr>,
        bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<AssignedValue<Fr>, CircuitError> {
        let low_bits = bits.saturating_sub(1);
        if !(2..=120).contains(&bits) {
            return Err(CircuitError::TooLarge(format!(
                "a {bits}-bit signed range check at {}",
                place()
            )));
        }
        let half = 1i128 << low_bits;
        let v = signed(x.value()).unwrap_or(i128::MAX);
        if v < -half || v >= half {
            return Err(CircuitError::OutOfRange {
                place: place(),
                value: v,
                bits: low_bits + 1,
            });
        }
        let nb = (v < 0) as i128;
        let low = v + nb * half;
        ctx.assign_region(
            [
                Witness(fr(low)),
                Witness(fr(nb)),
                Constant(fr(-half)),
                Existing(x),
            ],
            [0],
        );
        let low = ctx.get(-4);
        let nb = ctx.get(-3);
        self.gate().assert_bit(ctx, nb);
        self.range.range_check(ctx, low, low_bits as usize);
        Ok(nb)
    }

    /// Constrains `x` to exactly `bits` signed bits without a sign bit: `x + 2^(bits-1)` is
    /// range-checked to `[0, 2^bits)`. Where nothing needs the sign (model inputs), this costs
    /// one gate instead of the sign gate and the boolean check of [`Self::sign_bit`].
    pub fn signed_range(
        &self,
        ctx: &mut Context<Fr>,
        x: AssignedValue<Fr>,
        bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<(), CircuitError> {
        if !(2..=120).contains(&bits) {
            return Err(CircuitError::TooLarge(format!(
                "a {bits}-bit signed range check at {}",
                place()
            )));
        }
        let half = 1i128 << (bits - 1);
        let v = signed(x.value()).unwrap_or(i128::MAX);
        if v < -half || v >= half {
            return Err(CircuitError::OutOfRange {
                place: place(),
                value: v,
                bits,
            });
        }
        let shifted = self.gate().add(ctx, x, Constant(fr(half)));
        self.range.range_check(ctx, shifted, bits as usize);
        Ok(())
    }
}
