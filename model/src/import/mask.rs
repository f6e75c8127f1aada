//! Attention masks as decoders export them: `masked_fill(mask, -inf)` (a Where with a constant
//! condition), the dtype's minimum or a large negative constant (≤ [`MASK_BELOW`]), or an
//! additive mask of such constants. An entry so masked is *excluded*: its value is replaced by
//! 0 (no fixed-point −∞, no range spent on it) and the node records which entries are
//! excluded. Reshapes, transposes, slices, positive scalings and further masks carry the
//! record; a Softmax reading it leaves the excluded entries out of its maximum, exponentials
//! and sum, and outputs exact zeros for them; a maximum (masked max-pooling) skips them. Any
//! other op reading an excluded entry, or a graph output holding one, is refused naming the
//! node: there the −∞ would matter.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::MaxPool;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};

use super::{movement, tensor_f32, Lowering, Val};
use crate::error::{ModelError, Result};
use crate::graph::{ExtremumKind, Op, Src};

/// Constants at or below this are masks, not values: `e^(x − 10⁴)` is 0 in any fixed point
/// zkinfer uses, and activations are many orders of magnitude smaller.
pub(crate) const MASK_BELOW: f32 = -1e4;

/// Whether `c` masks an entry (−∞, the dtype's minimum, or ≤ [`MASK_BELOW`]).
pub(crate) fn is_mask_value(c: f32) -> bool {
    c <= MASK_BELOW
}

/// Whether constants `v` are a mask: mask values and zeros only, at least one mask value (a
/// trained tensor, such as a bias, is never that).
pub(crate) fn is_mask_pattern(v: &[f32]) -> bool {
    v.iter().any(|&c| is_mask_value(c)) && v.iter().all(|&c| c == 0.0 || is_mask_value(c))
}

/// Whether a constant tensor is a mask ([`is_mask_pattern`]): then the architecture's
/// attention mask, never a weight.
pub(crate) fn is_mask(t: &Tensor) -> bool {
    t.datum_type().is_float() && tensor_f32(t).is_ok_and(|v| is_mask_pattern(&v))
}

/// The entries of a node a mask excluded, and how far below the scores they are.
#[derive(Clone, Debug)]
pub(crate) struct Excluded {
    /// Per entry, whether it is excluded.
    pub entries: Vec<bool>,
    /// The largest value an excluded entry would hold in the float model, activations aside:
    /// its mask constants, scaled as the entry was (−∞ for a −∞ mask). A Softmax takes the
    /// exclusion only at or below [`MASK_BELOW`]; the quantizer checks it against the
    /// calibrated activations ([`crate::Graph::mask_level`]).
    pub level: f32,
}

/// Whether tract node `node` may read excluded entries: what `lower_node` lowers to a Remap
/// (movement, Where), a Linear (sums and scalings) or a maximum (Max, MaxPool, ReduceMax),
/// where [`Lowering::flow_mask`] decides.
pub(crate) fn carries(node: &TypedNode) -> bool {
    node.op_as::<TypedBinOp>()
        .is_some_and(|b| matches!(b.0.name(), "Add" | "Sub" | "Mul" | "Div" | "Max"))
        || node.op_as::<MaxPool>().is_some()
        || node
            .op_as::<Reduce>()
            .is_some_and(|r| matches!(r.reducer, Reducer::Max))
        || node.op.name() == "Iff"
        || movement::is_movement(node.op.as_ref())
}

impl Lowering<'_> {
    /// Whether any of `ins` is a node with excluded entries.
    pub(super) fn reads_mask(&self, ins: &[Val]) -> bool {
        ins.iter()
            .any(|v| matches!(v, Val::Node(n) if self.excluded.contains_key(n)))
    }

    /// The excluded entries of graph node `n`, if a mask excluded any.
    pub(super) fn excluded(&self, n: usize) -> Option<&Excluded> {
        self.excluded.get(&n)
    }

    /// The refusal of tract node `id`, which would read (or output) masked entries.
    pub(super) fn mask_refused(&self, id: usize) -> ModelError {
        self.unsupported(
            id,
            "reads entries an attention mask set to −∞ (or below −1e4): a mask is supported \
             only on its way into a Softmax, through reshapes, transposes, slices and scalings \
             by a positive constant",
        )
    }

    /// Which entries of the node that `op` (reading graph nodes `inputs`) computes are
    /// excluded, its mask constants replaced by 0; `None` where none is. Refuses an op that
    /// would give an excluded entry a value (a scaling by c ≤ 0, a difference of two).
    pub(super) fn flow_mask(
        &self,
        id: usize,
        op: &mut Op,
        inputs: &[usize],
    ) -> Result<Option<Excluded>> {
        let ins: Vec<Option<&Excluded>> = inputs.iter().map(|&n| self.excluded(n)).collect();
        let masked = |slot: u32, idx: u32| {
            ins[slot as usize]
                .filter(|m| m.entries[idx as usize])
                .map(|m| m.level)
        };
        let mut entries = Vec::new();
        let mut level = f32::NEG_INFINITY;
        match op {
            Op::Remap { srcs } => {
                for s in srcs.iter_mut() {
                    let l = match *s {
                        Src::Const(c) if is_mask_value(c) => {
                            *s = Src::Const(0.0);
                            Some(c)
                        }
                        Src::Elem { slot, idx } => masked(slot, idx),
                        Src::Const(_) => None,
                    };
                    entries.push(l.is_some());
                    level = level.max(l.unwrap_or(f32::NEG_INFINITY));
                }
            }
            Op::Linear { terms, bias } => {
                // A mask bias is zeros and mask values; the same mask value on every row is a
                // shift, and large biases among others are trained values: left as they are.
                let uniform = bias.iter().all(|b| b == &bias[0]);
                let mask_bias = is_mask_pattern(bias) && !uniform;
                if !mask_bias && ins.iter().all(Option::is_none) {
                    return Ok(None);
                }
                for (row, b) in terms.iter().zip(bias.iter_mut()) {
                    // The row's value, activations aside: its mask bias plus its masked terms.
                    let mut row_level = None::<f32>;
                    for &(slot, idx, coeff) in row {
                        if let Some(l) = masked(slot, idx) {
                            // −∞ · c stays −∞ only for c > 0.
                            if coeff <= 0.0 {
                                return Err(self.mask_refused(id));
                            }
                            row_level = Some(row_level.unwrap_or(0.0) + coeff * l);
                        }
                    }
                    if mask_bias && is_mask_value(*b) {
                        row_level = Some(row_level.unwrap_or(0.0) + *b);
                        *b = 0.0;
                    }
                    entries.push(row_level.is_some());
                    level = level.max(row_level.unwrap_or(f32::NEG_INFINITY));
                }
            }
            // A maximum skips −∞ candidates; one with nothing else to take is refused.
            Op::Extremum {
                kind: ExtremumKind::Max,
                candidates,
            } if ins.iter().any(Option::is_some) => {
                let kept: Option<Vec<Vec<Src<f32>>>> = candidates
                    .iter()
                    .map(|row| {
                        let row: Vec<_> = row
                            .iter()
                            .copied()
                            .filter(|c| !matches!(*c, Src::Elem { slot, idx } if masked(slot, idx).is_some()))
                            .collect();
                        (!row.is_empty()).then_some(row)
                    })
                    .collect();
                *candidates = kept
                    .ok_or_else(|| self.mask_refused(id))?
                    .into_iter()
                    .collect();
                return Ok(None);
            }
            _ if ins.iter().any(Option::is_some) => return Err(self.mask_refused(id)),
            _ => return Ok(None),
        }
        Ok(entries
            .contains(&true)
            .then_some(Excluded { entries, level }))
    }
}
