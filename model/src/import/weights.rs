//! `--weights hashed`: the model's weights as [`Op::Param`] nodes instead of constants.
//!
//! Every constant operand of a product or a sum (MatMul, Gemm, Conv kernel and bias, Add,
//! Sub, Mul, scalars included) becomes one Param node, however many nodes read it; the op is
//! then lowered as if the operand were a variable (a Bilinear product, a Linear sum with
//! coefficients ±1). Nothing of the graph's structure then depends on a weight's value: no
//! zero weight is dropped, no coefficient folded, and the only constants left are the
//! architecture's (rounding halves, pooling factors, Clip bounds, Div by a scalar). A constant
//! tensor of several elements read by any other op (an embedding table, a ConvTranspose
//! kernel, a Div by a tensor) is refused by name rather than left in the circuit's constants,
//! where it would tie the verifier to one training.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::einsum::EinSum;

use super::{linear, mask, tensor_f32, Ctx, Lowering, Val};
use crate::error::Result;
use crate::graph::{Op, Weights};

impl Lowering<'_> {
    /// The inputs of tract node `id` as its lowering reads them: with hashed weights, each
    /// constant operand of a product or sum is its Param node.
    pub(super) fn lift_weights(&mut self, id: usize, ins: Vec<Val>) -> Result<Vec<Val>> {
        if self.weights == Weights::Fixed {
            return Ok(ins);
        }
        let node = &self.model.nodes[id];
        let liftable = node.op_as::<EinSum>().is_some()
            || node.op_as::<Conv>().is_some()
            || node
                .op_as::<TypedBinOp>()
                .is_some_and(|b| matches!(b.0.name(), "Add" | "Sub" | "Mul"));
        // A positive scalar scaling masked scores (attention's 1/√d) is the architecture's:
        // lifted, its sign would be unknown, and −∞ · w has no value for w ≤ 0.
        let binary = node.op_as::<TypedBinOp>().map(|b| b.0.name());
        let scales_mask = self.reads_mask(&ins) && binary == Some("Mul");
        // Where a mask constant is applied (a select, or added to the scores).
        let applies_mask = matches!(binary, Some("Add" | "Sub")) || node.op.name() == "Iff";
        let mut out = Vec::with_capacity(ins.len());
        for (slot, v) in ins.into_iter().enumerate() {
            let Val::Const(t) = &v else {
                out.push(v);
                continue;
            };
            let positive_scalar =
                || t.len() == 1 && tensor_f32(t).is_ok_and(|v| v.iter().all(|&c| c > 0.0));
            if (applies_mask && mask::is_mask(t)) || (scales_mask && positive_scalar()) {
                // An attention mask is the architecture's, whatever the training.
                out.push(v);
            } else if liftable {
                out.push(Val::Node(self.param(node.inputs[slot], t)?));
            } else if t.len() > 1 && t.datum_type().is_float() {
                return Err(self.unsupported(
                    id,
                    &format!(
                        "reads a constant tensor of {} values: with hashed weights only \
                         MatMul, Gemm, Conv, Add, Sub and Mul take committed weights",
                        t.len()
                    ),
                ));
            } else {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The Param node of the constant at `outlet` (made on first use).
    fn param(&mut self, outlet: OutletId, t: &Arc<Tensor>) -> Result<usize> {
        if let Some(&n) = self.params.get(&outlet) {
            return Ok(n);
        }
        let values = tensor_f32(t).map_err(|e| self.unsupported(outlet.node, &e))?;
        let name = self.model.nodes[outlet.node].name.clone();
        let n = self.push(
            name,
            "Param".into(),
            Op::Param { values },
            vec![],
            t.shape().to_vec(),
        );
        self.params.insert(outlet, n);
        Ok(n)
    }

    /// A Conv whose kernel (and bias) are Param nodes: the product of data and kernel as a
    /// Bilinear node, then the bias added by a Linear node with coefficients 1.
    pub(super) fn lower_conv_params(&mut self, ctx: &Ctx, op: &Conv, ins: &[Val]) -> Result<()> {
        let conv = linear::conv_pairs(ctx, op)?;
        let node_of = |slot: usize| match ins.get(slot) {
            Some(Val::Node(n)) => Ok(*n),
            _ => Err(ctx.unsupported("expected variable data and a committed kernel")),
        };
        let (x, kernel) = (node_of(0)?, node_of(1)?);
        let bias = if ins.len() > 2 {
            Some(node_of(2)?)
        } else {
            None
        };
        let name = ctx.name.to_string();
        let product_name = if bias.is_some() {
            format!("{name}.product")
        } else {
            name.clone()
        };
        let product = self.push(
            product_name,
            ctx.op.clone(),
            Op::Bilinear { pairs: conv.pairs },
            vec![x, kernel],
            ctx.out_shape.clone(),
        );
        let y = match bias {
            None => product,
            Some(b) => {
                let terms = conv
                    .bias
                    .iter()
                    .enumerate()
                    .map(|(o, &bi)| vec![(0, o as u32, 1.0), (1, bi, 1.0)])
                    .collect();
                let op = Op::Linear {
                    terms,
                    bias: vec![0.0; ctx.out_len()],
                };
                self.push(
                    name,
                    ctx.op.clone(),
                    op,
                    vec![product, b],
                    ctx.out_shape.clone(),
                )
            }
        };
        self.vals.insert(OutletId::new(ctx.id, 0), Val::Node(y));
        Ok(())
    }
}
