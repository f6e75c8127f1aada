//! Chips for the quantized ops, on top of halo2-base's `GateChip` and `RangeChip`.
//!
//! - [`sign`]: signed range checks, with the sign bit (outputs a Max/Min reads, ReLU) or without.
//! - [`dot`]: dot products with a constant bias, optionally shifted right with round-half-up
//!   folded into the bias (Linear and Bilinear ops).
//! - [`divide`]: division by a positive variable (softmax).
//! - [`sqrt`]: integer square root (RmsNorm).
//! - [`extremum`]: max/min of two values via the sign of their difference (ReLU, Clip, MaxPool).
//! - [`function`]: non-linear functions by lookup table and interpolation (sigmoid, tanh, …).

pub mod divide;
pub mod dot;
pub mod extremum;
pub mod function;
pub mod sign;
pub mod sqrt;

use halo2_base::gates::{GateChip, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context, QuantumCell};

use crate::error::CircuitError;
use crate::field::{fr, signed};

/// One tensor element inside the circuit: an assigned cell or a compile-time constant.
#[derive(Clone, Copy, Debug)]
pub enum Elem {
    /// An assigned advice cell.
    Cell(AssignedValue<Fr>),
    /// A constant (weights, padding values).
    Const(i128),
}

impl Elem {
    /// The signed value (constants exactly; cells from their witness).
    pub fn value(&self) -> i128 {
        match self {
            Elem::Cell(c) => signed(c.value()).unwrap_or(i128::MAX),
            Elem::Const(k) => *k,
        }
    }

    /// As a halo2-base cell reference (an `Existing` copy or a `Constant`).
    pub fn quantum(&self) -> QuantumCell<Fr> {
        match self {
            Elem::Cell(c) => QuantumCell::Existing(*c),
            Elem::Const(k) => QuantumCell::Constant(fr(*k)),
        }
    }
}

/// The chip every quantized op uses: halo2-base's range chip plus our gadgets.
#[derive(Clone, Debug)]
pub struct QuantChip {
    /// The lookup-based range chip (its table is `[0, 2^lookup_bits)`).
    pub range: RangeChip<Fr>,
    /// Whether op outputs always get a sign bit (see [`Self::output_range`]).
    signs: bool,
}

impl QuantChip {
    /// Wraps a range chip; op outputs get their sign bit.
    pub fn new(range: RangeChip<Fr>) -> Self {
        Self { range, signs: true }
    }

    /// The same chip for outputs nothing reads the sign of (no Max/Min consumes them): each
    /// output gets the cheaper of the two exact signed range checks.
    pub fn without_signs(&self) -> Self {
        Self {
            range: self.range.clone(),
            signs: false,
        }
    }

    /// Constrains an op's output `y` to exactly `bits` signed bits. With signs, or where it costs
    /// no more cells, by [`Self::sign_bit`] (returning the sign bit); else by
    /// [`Self::signed_range`]. Both accept exactly `[-2^(bits-1), 2^(bits-1))`.
    pub fn output_range(
        &self,
        ctx: &mut Context<Fr>,
        y: AssignedValue<Fr>,
        bits: u32,
        place: &dyn Fn() -> String,
    ) -> Result<Option<AssignedValue<Fr>>, CircuitError> {
        let limb = self.range.lookup_bits() as u32;
        if self.signs || sign_bit_cells(bits, limb) <= signed_range_cells(bits, limb) {
            return self.sign_bit(ctx, y, bits, place).map(Some);
        }
        self.signed_range(ctx, y, bits, place)?;
        Ok(None)
    }

    /// The plain gate.
    pub fn gate(&self) -> &GateChip<Fr> {
        self.range.gate()
    }
}

/// Gate cells of halo2-base's `range_check` of `bits` with `limb`-bit lookups: the limbs'
/// inner product when there are several, and a partial last limb's shifted copy or bit check.
fn range_check_cells(bits: u32, limb: u32) -> usize {
    let limbs = bits.div_ceil(limb) as usize;
    let product = if limbs > 1 { 1 + 3 * (limbs - 1) } else { 0 };
    product + if bits.is_multiple_of(limb) { 0 } else { 4 }
}

/// Gate cells of [`QuantChip::sign_bit`]: its gate, the bit check, the low part's range check.
fn sign_bit_cells(bits: u32, limb: u32) -> usize {
    8 + range_check_cells(bits.saturating_sub(1), limb)
}

/// Gate cells of [`QuantChip::signed_range`]: the shift by `2^(bits-1)`, its range check.
fn signed_range_cells(bits: u32, limb: u32) -> usize {
    4 + range_check_cells(bits, limb)
}

/// Bits needed for the signed range `[-bound, bound]` in the sign gadget.
pub fn signed_bits_for(bound: u128) -> u32 {
    (128 - bound.leading_zeros()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_check_cell_counts_follow_halo2_base() {
        // One whole limb: the lookup alone; a partial one: its shifted copy; two limbs: the
        // inner product [l0, l1, 2^L, acc].
        assert_eq!(range_check_cells(18, 18), 0);
        assert_eq!(range_check_cells(17, 18), 4);
        assert_eq!(range_check_cells(36, 18), 4);
        assert_eq!(range_check_cells(22, 18), 8);
        // 22 signed bits with an 18-bit table: 16 cells with a sign bit, 12 without.
        assert_eq!(
            (sign_bit_cells(22, 18), signed_range_cells(22, 18)),
            (16, 12)
        );
        // 19 bits: the sign bit leaves 18, one whole limb, and is the cheaper check.
        assert_eq!(
            (sign_bit_cells(19, 18), signed_range_cells(19, 18)),
            (8, 12)
        );
    }
}
