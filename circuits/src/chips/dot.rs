//! Dot products with a constant bias, optionally shifted right.
//!
//! With constant weights (Linear ops) and a lincomb region, the terms go there, one advice cell
//! each, and the outputs come back as halo2-base witnesses `y` (and `r`) tied in by the
//! combination `bias + Σ w·x − 2^s·y − r = 0` (see [`crate::lincomb`]).
//!
//! Otherwise (two variable operands, or no lincomb region): one vertical halo2-base region
//! `[bias, a0, b0, acc1, a1, b1, acc2, …]` with the gate `acc_{i+1} = acc_i + a_i · b_i` every
//! three cells, and with a shift `[y, -2^s, r]` under one more gate `r = acc + y · (-2^s)`.
//!
//! Either way `r ∈ [0, 2^s)` by lookup and `y` goes through the signed range check. Together
//! they pin `y = floor(acc / 2^s)` uniquely, since `y · 2^s + r` cannot wrap the field at
//! these widths.
//!
//! When every weight is a constant, the whole equation is scaled by `2^t`, `t` the bits that
//! round `s` up to whole lookup limbs: `2^t·bias + Σ (2^t·w)·x − 2^(s+t)·y − r' = 0` with
//! `r' ∈ [0, 2^(s+t))`. Then `y = floor(2^t·acc / 2^(s+t)) = floor(acc / 2^s)` all the same
//! (and `r' = 2^t·r`), but the remainder's range check needs no partial-limb check: one gate
//! and one lookup fewer per rescaled output. The scaled values stay far below the field
//! modulus (`t` is below the limb width).

use halo2_base::gates::RangeInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::QuantumCell::{self, Constant, Witness};
use halo2_base::{AssignedValue, Context};

use super::{Elem, QuantChip};
use crate::error::CircuitError;
use crate::field::fr;
use crate::lincomb::LinCombRegion;

/// The result of a dot product: the output element and, when range-checked, its negative bit.
#[derive(Clone, Copy, Debug)]
pub struct DotOut {
    /// The output element.
    pub out: Elem,
    /// Its negative bit, when the output went through the signed range check.
    pub neg: Option<AssignedValue<Fr>>,
}

impl QuantChip {
    /// `floor((bias + Σ a·b) / 2^shift)`, with the result range-checked to `act_bits` when
    /// `shift > 0`. Products of two constants fold into the bias.
    #[allow(clippy::too_many_arguments)]
    pub fn dot(
        &self,
        ctx: &mut Context<Fr>,
        lincomb: &mut LinCombRegion,
        pairs: &[(Elem, Elem)],
        bias: i128,
        shift: u32,
        act_bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<DotOut, CircuitError> {
        let mut acc = bias;
        let mut vars: Vec<(Elem, Elem)> = Vec::with_capacity(pairs.len());
        for &(a, b) in pairs {
            match (a, b) {
                (Elem::Const(x), Elem::Const(y)) => acc += x * y,
                (Elem::Const(_), Elem::Cell(_)) => vars.push((b, a)),
                _ => vars.push((a, b)),
            }
        }
        if vars.is_empty() {
            // A constant output: nothing to prove, the verifier knows it from the key.
            return Ok(DotOut {
                out: Elem::Const(acc >> shift),
                neg: None,
            });
        }
        if shift == 0 && acc == 0 && vars.len() == 1 {
            if let (cell @ Elem::Cell(_), Elem::Const(1)) = vars[0] {
                return Ok(DotOut {
                    out: cell,
                    neg: None,
                });
            }
        }
        let all_weights_constant = vars.iter().all(|(_, b)| matches!(b, Elem::Const(_)));
        if lincomb.width() > 0 && all_weights_constant {
            return self.dot_lincomb(ctx, lincomb, &vars, acc, shift, act_bits, place);
        }
        let t = if all_weights_constant {
            self.limb_padding(shift)
        } else {
            0
        };
        let mut cells: Vec<QuantumCell<Fr>> = Vec::with_capacity(1 + 3 * vars.len() + 3);
        cells.push(Constant(fr(acc << t)));
        for (a, b) in &vars {
            acc += a.value() * b.value();
            let b = match b {
                Elem::Const(w) => Elem::Const(w << t),
                cell => *cell,
            };
            cells.extend([a.quantum(), b.quantum(), Witness(fr(acc << t))]);
        }
        let n = vars.len() as isize;
        let gates = (0..n).map(|i| 3 * i);
        if shift == 0 {
            ctx.assign_region(cells, gates);
            return Ok(DotOut {
                out: Elem::Cell(ctx.get(-1)),
                neg: None,
            });
        }
        let y = acc >> shift;
        let r = (acc - (y << shift)) << t;
        cells.extend([
            Witness(fr(y)),
            Constant(fr(-(1i128 << (shift + t)))),
            Witness(fr(r)),
        ]);
        ctx.assign_region(cells, gates.chain([3 * n]));
        let r_cell = ctx.get(-1);
        let y_cell = ctx.get(-3);
        self.range.range_check(ctx, r_cell, (shift + t) as usize);
        let neg = self.output_range(ctx, y_cell, act_bits, place)?;
        Ok(DotOut {
            out: Elem::Cell(y_cell),
            neg,
        })
    }

    /// [`Self::dot`] with constant weights, on the lincomb region.
    #[allow(clippy::too_many_arguments)]
    fn dot_lincomb(
        &self,
        ctx: &mut Context<Fr>,
        lincomb: &mut LinCombRegion,
        vars: &[(Elem, Elem)],
        bias: i128,
        shift: u32,
        act_bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<DotOut, CircuitError> {
        let t = self.limb_padding(shift);
        let mut terms: Vec<(AssignedValue<Fr>, Fr)> = Vec::with_capacity(vars.len() + 2);
        let mut acc = bias;
        for (a, w) in vars {
            let (Elem::Cell(x), Elem::Const(w)) = (a, w) else {
                return Err(CircuitError::Internal(
                    "a lincomb term is not cell × constant".into(),
                ));
            };
            acc += a.value() * w;
            terms.push((*x, fr(*w << t)));
        }
        let y = acc >> shift;
        let y_cell = ctx.load_witness(fr(y));
        terms.push((y_cell, fr(-(1i128 << (shift + t)))));
        if shift == 0 {
            lincomb.push(&terms, fr(bias))?;
            return Ok(DotOut {
                out: Elem::Cell(y_cell),
                neg: None,
            });
        }
        let r_cell = ctx.load_witness(fr((acc - (y << shift)) << t));
        terms.push((r_cell, -Fr::ONE));
        lincomb.push(&terms, fr(bias << t))?;
        self.range.range_check(ctx, r_cell, (shift + t) as usize);
        let neg = self.output_range(ctx, y_cell, act_bits, place)?;
        Ok(DotOut {
            out: Elem::Cell(y_cell),
            neg,
        })
    }
}

impl QuantChip {
    /// Bits that round a remainder of `shift` bits up to whole lookup limbs (0 for no shift).
    fn limb_padding(&self, shift: u32) -> u32 {
        let limb = self.range.lookup_bits() as u32;
        if shift == 0 {
            0
        } else {
            (limb - shift % limb) % limb
        }
    }
}
