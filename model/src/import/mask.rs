//! Attention masks as decoders export them: `masked_fill(mask, -inf)` (a Where with a constant
//! condition), the dtype's minimum or a large negative constant (≤ [`MASK_BELOW`]), or an
//! additive mask of such constants. An entry so masked is *excluded*: its value is replaced by
//! 0 (no fixed-point −∞, no range spent on it) and the node records which entries are
//! excluded. Reshapes, transposes, slices, positive scalings and further masks carry the
//! record; a Softmax reading it leaves the excluded entries out of its maximum, exponentials
//! and sum, and outputs exact zeros for them. Any other op reading an excluded entry, or a
//! graph output holding one, is refused naming the node: there the −∞ would matter.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;

use super::{movement, tensor_f32, Lowering, Val};
use crate::error::{ModelError, Result};
use crate::graph::{Op, Src};

/// Constants at or below this are masks, not values: `e^(x − 10⁴)` is 0 in any fixed point
/// zkinfer uses, and activations are many orders of magnitude smaller.
pub(crate) const MASK_BELOW: f32 = -1e4;

/// Whether `c` masks an entry (−∞, the dtype's minimum, or ≤ [`MASK_BELOW`]).
pub(crate) fn is_mask_value(c: f32) -> bool {
    c <= MASK_BELOW
}

/// Whether a constant tensor holds a mask value: it is then the architecture's attention mask,
/// never a weight.
pub(crate) fn is_mask(t: &Tensor) -> bool {
    t.datum_type().is_float() && tensor_f32(t).is_ok_and(|v| v.iter().any(|&c| is_mask_value(c)))
}

/// Whether tract node `node` may read excluded entries: what `lower_node` lowers to a Remap
/// (movement, Where) or a Linear (sums and scalings), where [`Lowering::flow_mask`] decides.
pub(crate) fn carries(node: &TypedNode) -> bool {
    node.op_as::<TypedBinOp>()
        .is_some_and(|b| matches!(b.0.name(), "Add" | "Sub" | "Mul" | "Div"))
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
    pub(super) fn excluded(&self, n: usize) -> Option<&[bool]> {
        self.excluded.get(&n).map(Vec::as_slice)
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
    /// would turn an excluded entry into a value (a negative scaling, a sum of two).
    pub(super) fn flow_mask(
        &self,
        id: usize,
        op: &mut Op,
        inputs: &[usize],
    ) -> Result<Option<Vec<bool>>> {
        let ins: Vec<Option<&[bool]>> = inputs.iter().map(|&n| self.excluded(n)).collect();
        let masked = |slot: u32, idx: u32| ins[slot as usize].is_some_and(|m| m[idx as usize]);
        let mut excluded = Vec::new();
        match op {
            Op::Remap { srcs } => {
                for s in srcs.iter_mut() {
                    excluded.push(match *s {
                        Src::Const(c) if is_mask_value(c) => {
                            *s = Src::Const(0.0);
                            true
                        }
                        Src::Elem { slot, idx } => masked(slot, idx),
                        Src::Const(_) => false,
                    });
                }
            }
            Op::Linear { terms, bias } => {
                for (row, b) in terms.iter().zip(bias.iter_mut()) {
                    let mut from_masked = 0;
                    for &(slot, idx, coeff) in row {
                        if masked(slot, idx) {
                            // −∞ · c stays −∞ only for c > 0; −∞ − ∞ has no value.
                            if coeff <= 0.0 {
                                return Err(self.mask_refused(id));
                            }
                            from_masked += 1;
                        }
                    }
                    let masks = is_mask_value(*b);
                    if masks {
                        *b = 0.0;
                    }
                    excluded.push(masks || from_masked > 0);
                }
            }
            _ if ins.iter().any(Option::is_some) => return Err(self.mask_refused(id)),
            _ => return Ok(None),
        }
        Ok(excluded.contains(&true).then_some(excluded))
    }
}
