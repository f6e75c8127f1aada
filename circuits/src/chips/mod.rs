//! Chips for the quantized ops, on top of halo2-base's `GateChip` and `RangeChip`.
//!
//! - [`sign`]: the signed range check that also yields the sign bit (inputs, rescale outputs, ReLU).
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
use halo2_base::{AssignedValue, QuantumCell};

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
}

impl QuantChip {
    /// Wraps a range chip.
    pub fn new(range: RangeChip<Fr>) -> Self {
        Self { range }
    }

    /// The plain gate.
    pub fn gate(&self) -> &GateChip<Fr> {
        self.range.gate()
    }
}

/// Bits needed for the signed range `[-bound, bound]` in the sign gadget.
pub fn signed_bits_for(bound: u128) -> u32 {
    (128 - bound.leading_zeros()) + 1
}
