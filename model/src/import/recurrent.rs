//! tract's fused GRU cell (`GruEpilogue`) as lookups, sums and products of the float graph.

use tract_onnx::prelude::*;

use super::{malformed, tensor_f32, Lowering, Val};
use crate::error::Result;
use crate::graph::{Op, Src, UnaryFn};

/// One operand of a sum: a graph node, or a constant tensor (folded into the bias).
enum Operand {
    Node(usize),
    Const(Vec<f32>),
}

impl Operand {
    fn of(v: &Val) -> Result<Self> {
        Ok(match v {
            Val::Node(n) => Operand::Node(*n),
            Val::Const(t) => Operand::Const(tensor_f32(t).map_err(malformed)?),
        })
    }
}

impl Lowering<'_> {
    /// `out[o] = Σ coeff · operand[idx]` over row `o`'s terms; constant operands become bias.
    fn push_sum(
        &mut self,
        name: String,
        src: &str,
        rows: Vec<Vec<(&Operand, usize, f32)>>,
        shape: Vec<usize>,
    ) -> usize {
        let mut inputs: Vec<usize> = Vec::new();
        let mut slot_of = |n: usize| -> u32 {
            match inputs.iter().position(|&m| m == n) {
                Some(i) => i as u32,
                None => {
                    inputs.push(n);
                    inputs.len() as u32 - 1
                }
            }
        };
        let mut terms = Vec::with_capacity(rows.len());
        let mut bias = Vec::with_capacity(rows.len());
        for row in rows {
            let mut t = Vec::new();
            let mut b = 0f32;
            for (operand, idx, coeff) in row {
                match operand {
                    Operand::Node(n) => t.push((slot_of(*n), idx as u32, coeff)),
                    Operand::Const(v) => b += coeff * v[idx],
                }
            }
            terms.push(t);
            bias.push(b);
        }
        let op = Op::Linear {
            terms: terms.into_iter().collect(),
            bias,
        };
        self.push(name, src.to_string(), op, inputs, shape)
    }

    /// `out[o] = a[o] · b[o]`: a product of two nodes, or a node scaled by a constant.
    fn push_product(
        &mut self,
        name: String,
        src: &str,
        a: usize,
        b: &Operand,
        b_index: impl Fn(usize) -> usize,
        shape: Vec<usize>,
    ) -> usize {
        let n: usize = shape.iter().product();
        match b {
            Operand::Node(bn) => {
                let op = Op::Bilinear {
                    pairs: (0..n)
                        .map(|o| vec![(o as u32, b_index(o) as u32)])
                        .collect(),
                };
                self.push(name, src.to_string(), op, vec![a, *bn], shape)
            }
            Operand::Const(v) => {
                let op = Op::Linear {
                    terms: (0..n).map(|o| vec![(0, o as u32, v[b_index(o)])]).collect(),
                    bias: vec![0.0; n],
                };
                self.push(name, src.to_string(), op, vec![a], shape)
            }
        }
    }

    /// Block `block` (`h` wide) of each of the `rows` rows of node `of` (`[rows, 2h]`): the
    /// z or r gate of `σ(z, r)`.
    fn push_block(
        &mut self,
        name: String,
        src: &str,
        of: usize,
        rows: usize,
        h: usize,
        block: usize,
    ) -> usize {
        let srcs = (0..rows)
            .flat_map(|r| {
                (0..h).map(move |j| Src::Elem {
                    slot: 0,
                    idx: (r * 2 * h + block * h + j) as u32,
                })
            })
            .collect();
        self.push(
            name,
            src.to_string(),
            Op::Remap { srcs },
            vec![of],
            vec![rows, h],
        )
    }

    /// The GRU cell (ONNX gate order z, r, h; `linear_before_reset`), from `xh = Xt·Wᵀ + Wb`
    /// and `rh = Ht−1·Rᵀ + Rb` (both `[rows, 3h]`) and `Ht−1` (`[rows, h]`):
    /// `z, r = σ(xh + rh)` over the first two blocks, `n = tanh(xh₃ + r·rh₃)`,
    /// `Ht = n + z·(Ht−1 − n)`. Any of the three may be constant (the first step's state).
    pub(super) fn lower_gru_epilogue(&mut self, id: usize, ins: &[Val], h: usize) -> Result<()> {
        let node = &self.model.nodes[id];
        let name = node.name.clone();
        let h_shape = self.concrete_shape(node.inputs[2])?;
        let h_len: usize = h_shape.iter().product();
        let xh_len: usize = self.concrete_shape(node.inputs[0])?.iter().product();
        let rh_len: usize = self.concrete_shape(node.inputs[1])?.iter().product();
        if h == 0 || !h_len.is_multiple_of(h) || xh_len != 3 * h_len || rh_len != 3 * h_len {
            return Err(self.unsupported(
                id,
                "gates must be [rows, 3·hidden], the state [rows, hidden]",
            ));
        }
        let rows = h_len / h;
        let (xh, rh, prev) = (
            Operand::of(&ins[0])?,
            Operand::of(&ins[1])?,
            Operand::of(&ins[2])?,
        );
        let src = "GRU";
        let gate = |r: usize, block: usize, j: usize| r * 3 * h + block * h + j;
        // z and r: σ(xh + rh) over blocks 0 and 1 of each row.
        let zr_pre = (0..rows)
            .flat_map(|r| (0..2 * h).map(move |j| (r, j)))
            .map(|(r, j)| vec![(&xh, gate(r, 0, j), 1.0), (&rh, gate(r, 0, j), 1.0)])
            .collect();
        let zr_pre = self.push_sum(format!("{name}.zr_pre"), src, zr_pre, vec![rows, 2 * h]);
        let zr = self.push(
            format!("{name}.zr"),
            src.to_string(),
            Op::Unary {
                func: UnaryFn::Sigmoid,
            },
            vec![zr_pre],
            vec![rows, 2 * h],
        );
        // r · rh₃: r is block 1 of `zr`.
        let r_gate = self.push_block(format!("{name}.r"), src, zr, rows, h, 1);
        let reset = self.push_product(
            format!("{name}.reset"),
            src,
            r_gate,
            &rh,
            |o| gate(o / h, 2, o % h),
            vec![rows, h],
        );
        let reset = Operand::Node(reset);
        let n_pre = (0..rows * h)
            .map(|o| vec![(&xh, gate(o / h, 2, o % h), 1.0), (&reset, o, 1.0)])
            .collect();
        let n_pre = self.push_sum(format!("{name}.n_pre"), src, n_pre, vec![rows, h]);
        let n = self.push(
            format!("{name}.n"),
            src.to_string(),
            Op::Unary {
                func: UnaryFn::Tanh,
            },
            vec![n_pre],
            vec![rows, h],
        );
        // Ht = n + z·(Ht−1 − n)
        let n_op = Operand::Node(n);
        let diff = (0..rows * h)
            .map(|o| vec![(&prev, o, 1.0), (&n_op, o, -1.0)])
            .collect();
        let diff = self.push_sum(format!("{name}.diff"), src, diff, vec![rows, h]);
        let z_gate = self.push_block(format!("{name}.z"), src, zr, rows, h, 0);
        let update = self.push_product(
            format!("{name}.update"),
            src,
            z_gate,
            &Operand::Node(diff),
            |o| o,
            vec![rows, h],
        );
        let update = Operand::Node(update);
        let out = (0..rows * h)
            .map(|o| vec![(&n_op, o, 1.0), (&update, o, 1.0)])
            .collect();
        let out = self.push_sum(name, src, out, h_shape);
        self.vals.insert(OutletId::new(id, 0), Val::Node(out));
        Ok(())
    }
}
