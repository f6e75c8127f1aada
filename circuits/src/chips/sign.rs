//! Signed range check with sign bit.
//!
//! For `x` and width `bits`, witness `nb ∈ {0,1}` and `low ∈ [0, 2^(bits-1))` with
//! `x = low - nb · 2^(bits-1)`. This proves `-2^(bits-1) <= x < 2^(bits-1)` and makes `nb`
//! the (unique) "x is negative" bit: zero has only `nb = 0`, since `low = 2^(bits-1)` is out
//! of range. One gate, one boolean check, and a lookup range check of `low`.

use halo2_base::gates::{GateInstructions, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::{Constant, Existing, Witness};
use halo2_base::{AssignedValue, Context};

use super::QuantChip;
use crate::error::CircuitError;
use crate::field::{fr, signed};

impl QuantChip {
    /// Constrains `x` to `bits` signed bits and returns its negative bit.
    pub fn sign_bit(
        &self,
        ctx: &mut Context<Fr>,
        x: AssignedValue<Fr>,
        bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<AssignedValue<Fr>, CircuitError> {
        assert!(
            (2..=120).contains(&bits),
            "sign_bit width {bits} out of the supported range"
        );
        let half = 1i128 << (bits - 1);
        let v = signed(x.value()).unwrap_or(i128::MAX);
        if v < -half || v >= half {
            return Err(CircuitError::OutOfRange {
                place: place(),
                value: v,
                bits,
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
        self.range.range_check(ctx, low, (bits - 1) as usize);
        Ok(nb)
    }
}
