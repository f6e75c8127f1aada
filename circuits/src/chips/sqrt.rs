//! Integer square root (RmsNorm / LayerNorm's standard deviation).
//!
//! `s = floor(sqrt(u))` for `u = v·2^shift`: witness `s`, then `c1 = u − s²` and
//! `c2 = s² + 2s − u` (that is `(s+1)² − 1 − u`) are range-checked to be non-negative. Among
//! integers only `floor(sqrt(u))` satisfies both (a negative `s` fails one of them), and `s`
//! also goes through the signed range check, so nothing wraps the field.

use halo2_base::gates::RangeInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::{Constant, Existing, Witness};
use halo2_base::{AssignedValue, Context};

use super::QuantChip;
use crate::error::CircuitError;
use crate::field::{fr, signed};

impl QuantChip {
    /// `floor(sqrt(v · 2^shift))` for `0 ≤ v < 2^in_bits`; returns the root and,
    /// when its range check proved one, its negative bit.
    pub fn sqrt(
        &self,
        ctx: &mut Context<Fr>,
        v: AssignedValue<Fr>,
        shift: u32,
        in_bits: u32,
        act_bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<(AssignedValue<Fr>, Option<AssignedValue<Fr>>), CircuitError> {
        let vv = signed(v.value()).unwrap_or(i128::MAX);
        let s = zkinfer_model::isqrt_scaled(vv, shift)
            .filter(|_| vv < 1i128 << in_bits)
            .ok_or_else(|| CircuitError::OutOfRange {
                place: format!("square root at {}", place()),
                value: vv,
                bits: in_bits,
            })?;
        let u = vv << shift;
        // Both slacks are at most 2s < 2^(in_bits + shift)/2 + 2.
        let slack_bits = (in_bits + shift).div_ceil(2) + 2;
        let (c1, c2) = (u - s * s, s * s + 2 * s - u);
        // u = 0 + v·2^shift, then c1 + s·s = u.
        ctx.assign_region(
            [
                Constant(fr(0)),
                Existing(v),
                Constant(fr(1i128 << shift)),
                Witness(fr(u)),
            ],
            [0],
        );
        let u_cell = ctx.get(-1);
        ctx.assign_region(
            [
                Witness(fr(c1)),
                Witness(fr(s)),
                Witness(fr(s)),
                Existing(u_cell),
            ],
            [0],
        );
        let (c1_cell, s_cell, s_again) = (ctx.get(-4), ctx.get(-3), ctx.get(-2));
        ctx.constrain_equal(&s_cell, &s_again);
        // c2 + u = s·s + 2s: t = 2s + s·s, then c2 + u·1 = t.
        ctx.assign_region(
            [
                Constant(fr(0)),
                Existing(s_cell),
                Constant(fr(2)),
                Witness(fr(2 * s)),
                Existing(s_cell),
                Existing(s_cell),
                Witness(fr(2 * s + s * s)),
            ],
            [0, 3],
        );
        let t_cell = ctx.get(-1);
        ctx.assign_region(
            [
                Witness(fr(c2)),
                Existing(u_cell),
                Constant(fr(1)),
                Existing(t_cell),
            ],
            [0],
        );
        let c2_cell = ctx.get(-4);
        self.range.range_check(ctx, c1_cell, slack_bits as usize);
        self.range.range_check(ctx, c2_cell, slack_bits as usize);
        let neg = self.output_range(ctx, s_cell, act_bits, place)?;
        Ok((s_cell, neg))
    }
}
