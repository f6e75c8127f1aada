//! A non-linear function by table and linear interpolation (the `Lookup` op).
//!
//! For `x`, with the table's step `2^s`: `x = t·2^s + r` with `r ∈ [0, 2^s)` (lookup range
//! check), `(tag, t, y0, dy)` in the fixed table (which also bounds `t`, so `t` and `r` are
//! unique), then `y·2^s + r2 = y0·2^s + dy·r + 2^(s−1)` with `r2 ∈ [0, 2^s)` and `y` in the
//! signed activation range, which pins `y` to `QGraph::eval`'s value. With `s = 0` the table
//! is exact and `y = y0`.

use halo2_base::gates::RangeInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::{Constant, Existing, Witness};
use halo2_base::{AssignedValue, Context};
use zkinfer_model::LookupTable;

use super::QuantChip;
use crate::error::CircuitError;
use crate::field::{fr, signed};
use crate::functions::FunctionRegion;

impl QuantChip {
    /// `table(x)`, for the table registered as `tag` (see [`FunctionRegion::tag`]); returns
    /// the output cell and, when it was range-checked, its negative bit.
    #[allow(clippy::too_many_arguments)]
    pub fn lookup_fn(
        &self,
        ctx: &mut Context<Fr>,
        fns: &mut FunctionRegion,
        x: AssignedValue<Fr>,
        table: &LookupTable,
        tag: u64,
        act_bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<(AssignedValue<Fr>, Option<AssignedValue<Fr>>), CircuitError> {
        let xv = signed(x.value()).unwrap_or(i128::MAX);
        let s = table.shift;
        let out_of_range = || CircuitError::OutOfRange {
            place: place(),
            value: xv,
            bits: act_bits,
        };
        let xi = i64::try_from(xv).map_err(|_| out_of_range())?;
        let t = xi >> s;
        let r = xi - (t << s);
        let i = usize::try_from(t - table.lo).map_err(|_| out_of_range())?;
        let (y0, y1) = match (table.values.get(i), table.values.get(i + 1)) {
            (Some(&a), Some(&b)) => (a as i128, b as i128),
            _ => return Err(out_of_range()),
        };
        let scale = fr(1i128 << s);
        let (t_cell, r_cell) = if s == 0 {
            (x, None)
        } else {
            ctx.assign_region(
                [
                    Witness(fr(r as i128)),
                    Witness(fr(t as i128)),
                    Constant(scale),
                    Existing(x),
                ],
                [0],
            );
            let (r_cell, t_cell) = (ctx.get(-4), ctx.get(-3));
            self.range.range_check(ctx, r_cell, s as usize);
            (t_cell, Some(r_cell))
        };
        let y0_cell = ctx.load_witness(fr(y0));
        let dy_cell = ctx.load_witness(fr(y1 - y0));
        fns.push(tag, [t_cell, y0_cell, dy_cell]);
        let Some(r_cell) = r_cell else {
            return Ok((y0_cell, None));
        };
        let half = 1i128 << (s - 1);
        let p = half + y0 * (1i128 << s);
        let q = p + (y1 - y0) * r as i128;
        let y = q >> s;
        ctx.assign_region(
            [
                Constant(fr(half)),
                Existing(y0_cell),
                Constant(scale),
                Witness(fr(p)),
                Existing(dy_cell),
                Existing(r_cell),
                Witness(fr(q)),
            ],
            [0, 3],
        );
        let q_cell = ctx.get(-1);
        ctx.assign_region(
            [
                Witness(fr(q - (y << s))),
                Witness(fr(y)),
                Constant(scale),
                Existing(q_cell),
            ],
            [0],
        );
        let (r2_cell, y_cell) = (ctx.get(-4), ctx.get(-3));
        self.range.range_check(ctx, r2_cell, s as usize);
        let neg = self.output_range(ctx, y_cell, act_bits, place)?;
        Ok((y_cell, neg))
    }

    /// `table(x / 2^shift)` for a Gather at computed indices: the gate `x = t·2^shift` makes
    /// `x` an exact multiple of the scale (no remainder), and the lookup of `(t, y, dy)` in
    /// the exact table (step 1) pins `y` to the entry at index `t`, which the table's range
    /// bounds. Returns the output cell (a table entry: no range check needed).
    #[allow(clippy::too_many_arguments)]
    pub fn gather(
        &self,
        ctx: &mut Context<Fr>,
        fns: &mut FunctionRegion,
        x: AssignedValue<Fr>,
        table: &LookupTable,
        tag: u64,
        shift: u32,
        place: &dyn Fn() -> String,
    ) -> Result<AssignedValue<Fr>, CircuitError> {
        let xv = signed(x.value()).unwrap_or(i128::MAX);
        let bad = || CircuitError::OutOfRange {
            place: format!("index at {}", place()),
            value: xv,
            bits: shift,
        };
        let xi = i64::try_from(xv).map_err(|_| bad())?;
        let t = xi >> shift;
        let i = usize::try_from(t - table.lo).map_err(|_| bad())?;
        let (y, next) = match (table.values.get(i), table.values.get(i + 1)) {
            (Some(&a), Some(&b)) if t << shift == xi && table.shift == 0 => (a as i128, b as i128),
            _ => return Err(bad()),
        };
        ctx.assign_region(
            [
                Constant(Fr::zero()),
                Witness(fr(t as i128)),
                Constant(fr(1i128 << shift)),
                Existing(x),
            ],
            [0],
        );
        let t_cell = ctx.get(-3);
        let y_cell = ctx.load_witness(fr(y));
        let dy_cell = ctx.load_witness(fr(next - y));
        fns.push(tag, [t_cell, y_cell, dy_cell]);
        Ok(y_cell)
    }
}
