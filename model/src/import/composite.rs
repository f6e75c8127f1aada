//! Ops lowered to several nodes: Softmax, RmsNorm, Ln, Rsqrt, LeakyRelu and Abs, and tract's
//! fused LSTM and GRU cell epilogues.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::gru_cell::GruEpilogue;
use tract_onnx::tract_core::ops::lstm_cell::LstmEpilogue;
use tract_onnx::tract_core::ops::nn::{GeluApproximate, LeakyRelu, RmsNorm, Softmax, SoftmaxKind};

use super::mask::MASK_BELOW;
use super::{malformed, reduction_groups, tensor_f32, Lowering, Val};
use crate::error::Result;
use crate::graph::{ExtremumKind, Op, Src, UnaryFn};

impl Lowering<'_> {
    /// Lowers tract node `id` if it is one of the ops lowered to several nodes here (or a
    /// fused op tract made); `false` for any other op.
    pub(super) fn lower_composite(&mut self, id: usize, ins: &[Val]) -> Result<bool> {
        let node = &self.model.nodes[id];
        if let Some(op) = node.op_as::<RmsNorm>() {
            self.lower_rms_norm(id, ins, op)?;
            return Ok(true);
        }
        if let Some(leaky) = node
            .op_as::<ElementWiseOp>()
            .and_then(|e| e.0.downcast_ref::<LeakyRelu>())
        {
            self.lower_leaky_relu(id, ins, leaky.alpha)?;
            return Ok(true);
        }
        if let Some(op) = node.op_as::<LstmEpilogue>() {
            self.lower_lstm_epilogue(id, ins, op.hidden)?;
            return Ok(true);
        }
        if let Some(op) = node.op_as::<GruEpilogue>() {
            self.lower_gru_epilogue(id, ins, op.hidden)?;
            return Ok(true);
        }
        if let Some(gelu) = node
            .op_as::<ElementWiseOp>()
            .and_then(|e| e.0.downcast_ref::<GeluApproximate>())
        {
            if gelu.fast_impl {
                return Err(self.unsupported(id, "the x² variant of the tanh GELU"));
            }
            let x = self.variable_input(id, ins)?;
            let shape = self.concrete_shape(node.inputs[0])?;
            let op = Op::Unary {
                func: UnaryFn::GeluTanh,
            };
            let y = self.push(node.name.clone(), "Gelu".into(), op, vec![x], shape);
            self.vals.insert(OutletId::new(id, 0), Val::Node(y));
            return Ok(true);
        }
        if node.op.name() == "Abs" {
            self.lower_max_scaled(id, ins, -1.0, "Abs")?;
            return Ok(true);
        }
        if node.op.name() == "Rsqrt" {
            self.lower_rsqrt(id, ins)?;
            return Ok(true);
        }
        if node.op.name() == "Ln" {
            self.lower_ln(id, ins)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Softmax over `axes` as five nodes: the group maximum, `x − max`, `e^(x − max)` (a
    /// lookup), the group sum, and the division (subtracting the maximum keeps every exponent
    /// at most 0, so every `e^…` is in (0, 1] and the sum is at least 1). Entries a mask
    /// excluded (see `mask`) take no part: the four nodes after the maximum hold the kept
    /// entries only, and a sixth puts them back in place with exact zeros between them.
    pub(super) fn lower_softmax(&mut self, id: usize, ins: &[Val], op: &Softmax) -> Result<()> {
        let node = &self.model.nodes[id];
        let name = node.name.clone();
        let unsupported = |detail: &str| self.unsupported(id, detail);
        if op.kind != SoftmaxKind::Softmax || op.quant_output_dt.is_some() {
            return Err(unsupported("only float Softmax is supported"));
        }
        let x = self.variable_input(id, ins)?;
        let shape = self.concrete_shape(node.inputs[0])?;
        let (gshape, group_of, groups) = reduction_groups(&shape, &op.axes);
        let excluded = self.excluded(x).cloned();
        if let Some(m) = &excluded {
            if m.level > MASK_BELOW {
                return Err(unsupported(&format!(
                    "its mask was scaled to {}, no longer far below the scores (≤ {MASK_BELOW})",
                    m.level
                )));
            }
        }
        let kept: Vec<u32> = (0..group_of.len() as u32)
            .filter(|&i| !excluded.as_ref().is_some_and(|m| m.entries[i as usize]))
            .collect();
        // Where each entry went among the kept ones.
        let mut at = vec![None; group_of.len()];
        for (c, &i) in kept.iter().enumerate() {
            at[i as usize] = Some(c as u32);
        }
        let kept_groups: Vec<Vec<u32>> = groups
            .iter()
            .map(|g| g.iter().filter_map(|&i| at[i as usize]).collect())
            .collect();
        if let Some(row) = kept_groups.iter().position(Vec::is_empty) {
            return Err(unsupported(&match excluded {
                Some(_) => format!(
                    "its mask excludes every entry of row {row}: a fully masked row has no \
                     softmax"
                ),
                None => "a softmax over an empty axis".to_string(),
            }));
        }
        if let Some(level) = excluded.as_ref().map(|m| m.level).filter(|l| l.is_finite()) {
            let l = self.graph.mask_level.get_or_insert(level);
            *l = l.max(level);
        }
        let n = kept.len();
        let kept_shape = match excluded {
            Some(_) => vec![n],
            None => shape.clone(),
        };
        let src = "Softmax".to_string();
        let max = Op::Extremum {
            kind: ExtremumKind::Max,
            candidates: groups
                .iter()
                .map(|g| {
                    g.iter()
                        .filter(|&&i| at[i as usize].is_some())
                        .map(|&idx| Src::Elem { slot: 0, idx })
                        .collect()
                })
                .collect(),
        };
        let m = self.push(
            format!("{name}.max"),
            src.clone(),
            max,
            vec![x],
            gshape.clone(),
        );
        let sub = Op::Linear {
            terms: kept
                .iter()
                .map(|&i| vec![(0, i, 1.0), (1, group_of[i as usize], -1.0)])
                .collect(),
            bias: vec![0.0; n],
        };
        let d = self.push(
            format!("{name}.sub"),
            src.clone(),
            sub,
            vec![x, m],
            kept_shape.clone(),
        );
        let exp = Op::Unary {
            func: UnaryFn::ExpNonPositive,
        };
        let e = self.push(
            format!("{name}.exp"),
            src.clone(),
            exp,
            vec![d],
            kept_shape.clone(),
        );
        let sum = Op::Linear {
            terms: kept_groups
                .iter()
                .map(|g| g.iter().map(|&c| (0, c, 1.0)).collect())
                .collect(),
            bias: vec![0.0; groups.len()],
        };
        let s = self.push(format!("{name}.sum"), src.clone(), sum, vec![e], gshape);
        let div = Op::Divide {
            pairs: kept
                .iter()
                .enumerate()
                .map(|(c, &i)| (c as u32, group_of[i as usize]))
                .collect(),
        };
        let y = match excluded {
            None => self.push(name, src, div, vec![e, s], shape),
            Some(_) => {
                let p = self.push(
                    format!("{name}.kept"),
                    src.clone(),
                    div,
                    vec![e, s],
                    kept_shape,
                );
                let srcs = at
                    .iter()
                    .map(|c| match *c {
                        Some(idx) => Src::Elem { slot: 0, idx },
                        None => Src::Const(0.0),
                    })
                    .collect();
                self.push(name, src, Op::Remap { srcs }, vec![p], shape)
            }
        };
        self.vals.insert(OutletId::new(id, 0), Val::Node(y));
        Ok(())
    }

    /// RmsNorm along `axis`: `x / sqrt(mean(x²) + eps)` as four nodes: `x²`, the mean plus
    /// `eps`, an integer square root and the division.
    pub(super) fn lower_rms_norm(&mut self, id: usize, ins: &[Val], op: &RmsNorm) -> Result<()> {
        let node = &self.model.nodes[id];
        let name = node.name.clone();
        let unsupported = |detail: &str| self.unsupported(id, detail);
        let x = self.variable_input(id, ins)?;
        let eps = tensor_f32(&op.eps)
            .ok()
            .and_then(|v| v.first().copied())
            .filter(|e| e.is_finite() && *e >= 0.0)
            .ok_or_else(|| unsupported("eps must be a finite non-negative scalar"))?;
        let shape = self.concrete_shape(node.inputs[0])?;
        let (gshape, group_of, groups) = reduction_groups(&shape, &[op.axis]);
        let n = group_of.len();
        let src = "RmsNorm".to_string();
        let square = Op::Bilinear {
            pairs: (0..n as u32).map(|i| vec![(i, i)]).collect(),
        };
        let sq = self.push(
            format!("{name}.square"),
            src.clone(),
            square,
            vec![x, x],
            shape.clone(),
        );
        let mean = Op::Linear {
            terms: groups
                .iter()
                .map(|g| g.iter().map(|&i| (0, i, 1.0 / g.len() as f32)).collect())
                .collect(),
            bias: vec![eps; groups.len()],
        };
        let ms = self.push(
            format!("{name}.mean"),
            src.clone(),
            mean,
            vec![sq],
            gshape.clone(),
        );
        let rms = self.push(
            format!("{name}.sqrt"),
            src.clone(),
            Op::Sqrt,
            vec![ms],
            gshape,
        );
        let div = Op::Divide {
            pairs: (0..n).map(|i| (i as u32, group_of[i])).collect(),
        };
        let y = self.push(name, src, div, vec![x, rms], shape);
        self.vals.insert(OutletId::new(id, 0), Val::Node(y));
        Ok(())
    }

    /// Ln as `8·ln(x^(1/8))`: three square roots, then a table of `8·ln y`. A table of `ln x`
    /// sampled evenly over the activation range interpolates badly near 0, where `ln` bends
    /// hardest; the roots bring every positive input into `[2^(−s/8), 2^((b−s)/8)]` (about
    /// 0.3 to 2), where a finely sampled table is accurate. The roots are exact integer square
    /// roots with their own constraints; `x ≤ 0` has no logarithm and is refused as out of
    /// range (the table starts above 0).
    pub(super) fn lower_ln(&mut self, id: usize, ins: &[Val]) -> Result<()> {
        let node = &self.model.nodes[id];
        let name = node.name.clone();
        let x = self.variable_input(id, ins)?;
        let shape = self.concrete_shape(node.inputs[0])?;
        let src = "Log".to_string();
        let mut y = x;
        for i in 1..=3 {
            y = self.push(
                format!("{name}.root{i}"),
                src.clone(),
                Op::Sqrt,
                vec![y],
                shape.clone(),
            );
        }
        let ln = Op::Unary { func: UnaryFn::Ln8 };
        let out = self.push(name, src, ln, vec![y], shape);
        self.vals.insert(OutletId::new(id, 0), Val::Node(out));
        Ok(())
    }

    /// Rsqrt (LayerNormalization's `1/√(var + ε)`) as a square root, then `1 / s` by the
    /// division chip against a constant 1: the same steps as the division by `√(var + ε)`
    /// that LayerNorm lowers to elsewhere. `x ≤ 0` is refused (the division needs `s ≥ 1`
    /// unit).
    pub(super) fn lower_rsqrt(&mut self, id: usize, ins: &[Val]) -> Result<()> {
        let node = &self.model.nodes[id];
        let name = node.name.clone();
        let x = self.variable_input(id, ins)?;
        let shape = self.concrete_shape(node.inputs[0])?;
        let n: usize = shape.iter().product();
        let src = "Rsqrt".to_string();
        let root = self.push(
            format!("{name}.sqrt"),
            src.clone(),
            Op::Sqrt,
            vec![x],
            shape.clone(),
        );
        let one = self.push(
            format!("{name}.one"),
            src.clone(),
            Op::Linear {
                terms: vec![Vec::new()].into_iter().collect(),
                bias: vec![1.0],
            },
            vec![root],
            vec![1],
        );
        let div = Op::Divide {
            pairs: (0..n as u32).map(|i| (0, i)).collect(),
        };
        let y = self.push(name, src, div, vec![one, root], shape);
        self.vals.insert(OutletId::new(id, 0), Val::Node(y));
        Ok(())
    }

    /// LeakyRelu as `max(x, α·x)` (for `0 ≤ α ≤ 1`): a scaling node, then an element-wise max.
    pub(super) fn lower_leaky_relu(&mut self, id: usize, ins: &[Val], alpha: f32) -> Result<()> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(self.unsupported(id, "alpha must be in [0, 1]"));
        }
        self.lower_max_scaled(id, ins, alpha, "LeakyRelu")
    }

    /// `max(x, α·x)`: LeakyRelu for `0 ≤ α ≤ 1`, Abs for `α = −1`.
    pub(super) fn lower_max_scaled(
        &mut self,
        id: usize,
        ins: &[Val],
        alpha: f32,
        src: &str,
    ) -> Result<()> {
        let node = &self.model.nodes[id];
        let name = node.name.clone();
        let x = self.variable_input(id, ins)?;
        let shape = self.concrete_shape(node.inputs[0])?;
        let n: usize = shape.iter().product();
        let src = src.to_string();
        let scaled = Op::Linear {
            terms: (0..n as u32).map(|i| vec![(0, i, alpha)]).collect(),
            bias: vec![0.0; n],
        };
        let ax = self.push(
            format!("{name}.scaled"),
            src.clone(),
            scaled,
            vec![x],
            shape.clone(),
        );
        let max = Op::Extremum {
            kind: ExtremumKind::Max,
            candidates: (0..n as u32)
                .map(|idx| vec![Src::Elem { slot: 0, idx }, Src::Elem { slot: 1, idx }])
                .collect(),
        };
        let y = self.push(name, src, max, vec![x, ax], shape);
        self.vals.insert(OutletId::new(id, 0), Val::Node(y));
        Ok(())
    }

    /// tract's fused LSTM cell epilogue. From the gate pre-activations `[rows, 4h]` (ONNX
    /// order i, o, f, c) and the previous cell state `[rows, h]`:
    /// `C = σ(f)·c_prev + σ(i)·tanh(c)` and `H = σ(o)·tanh(C)`, as sigmoid and tanh lookups,
    /// two products of two variables, and data movement.
    pub(super) fn lower_lstm_epilogue(&mut self, id: usize, ins: &[Val], h: usize) -> Result<()> {
        let node = &self.model.nodes[id];
        let name = node.name.clone();
        let unsupported = |detail: &str| self.unsupported(id, detail);
        let pre = self.variable_input(id, ins)?;
        let c_shape = self.concrete_shape(node.inputs[1])?;
        let pre_len: usize = self.concrete_shape(node.inputs[0])?.iter().product();
        let c_len: usize = c_shape.iter().product();
        if h == 0 || !c_len.is_multiple_of(h) || pre_len != 4 * c_len {
            return Err(unsupported("pre-activations must be [rows, 4·hidden]"));
        }
        let rows = c_len / h;
        let src = "LstmEpilogue".to_string();
        let elem = |slot: u32, idx: usize| Src::Elem {
            slot,
            idx: idx as u32,
        };
        // σ over the i, o, f blocks and tanh over the c block of each row.
        let ifo = Op::Remap {
            srcs: (0..rows)
                .flat_map(|r| (0..3 * h).map(move |j| elem(0, r * 4 * h + j)))
                .collect(),
        };
        let ifo = self.push(
            format!("{name}.ifo"),
            src.clone(),
            ifo,
            vec![pre],
            vec![rows, 3 * h],
        );
        let sig = Op::Unary {
            func: UnaryFn::Sigmoid,
        };
        let sig = self.push(
            format!("{name}.sigmoid"),
            src.clone(),
            sig,
            vec![ifo],
            vec![rows, 3 * h],
        );
        let c = Op::Remap {
            srcs: (0..rows)
                .flat_map(|r| (0..h).map(move |j| elem(0, r * 4 * h + 3 * h + j)))
                .collect(),
        };
        let c = self.push(
            format!("{name}.c"),
            src.clone(),
            c,
            vec![pre],
            vec![rows, h],
        );
        let tanh = Op::Unary {
            func: UnaryFn::Tanh,
        };
        let cc = self.push(
            format!("{name}.tanh"),
            src.clone(),
            tanh.clone(),
            vec![c],
            vec![rows, h],
        );
        // [c_prev, tanh(c)] per row: the right-hand factors of the cell update.
        let (prev_inputs, prev): (Vec<usize>, Vec<Src<f32>>) = match &ins[1] {
            Val::Node(n) => (vec![*n, cc], (0..c_len).map(|i| elem(0, i)).collect()),
            Val::Const(t) => {
                let v = tensor_f32(t).map_err(malformed)?;
                (vec![cc], v.into_iter().map(Src::Const).collect())
            }
        };
        let cc_slot = prev_inputs.len() as u32 - 1;
        let right = Op::Remap {
            srcs: (0..rows)
                .flat_map(|r| {
                    let before: Vec<Src<f32>> = prev[r * h..(r + 1) * h].to_vec();
                    before
                        .into_iter()
                        .chain((0..h).map(move |j| elem(cc_slot, r * h + j)))
                })
                .collect(),
        };
        let right = self.push(
            format!("{name}.right"),
            src.clone(),
            right,
            prev_inputs,
            vec![rows, 2 * h],
        );
        // C = f·c_prev + i·tanh(c)   (i = block 0, o = block 1, f = block 2 of `sig`)
        let cell = Op::Bilinear {
            pairs: (0..rows)
                .flat_map(|r| {
                    (0..h).map(move |j| {
                        vec![
                            ((r * 3 * h + 2 * h + j) as u32, (r * 2 * h + j) as u32),
                            ((r * 3 * h + j) as u32, (r * 2 * h + h + j) as u32),
                        ]
                    })
                })
                .collect(),
        };
        let ct = self.push(
            format!("{name}.cell"),
            src.clone(),
            cell,
            vec![sig, right],
            c_shape.clone(),
        );
        let tc = self.push(
            format!("{name}.tanh_cell"),
            src.clone(),
            tanh,
            vec![ct],
            c_shape.clone(),
        );
        // H = o·tanh(C)
        let hidden = Op::Bilinear {
            pairs: (0..rows)
                .flat_map(|r| {
                    (0..h).map(move |j| vec![((r * 3 * h + h + j) as u32, (r * h + j) as u32)])
                })
                .collect(),
        };
        let ht = self.push(name, src, hidden, vec![sig, tc], c_shape);
        self.vals.insert(OutletId::new(id, 0), Val::Node(ht));
        self.vals.insert(OutletId::new(id, 1), Val::Node(ct));
        Ok(())
    }
}
