//! tract-onnx → [`Graph`]: load, type, declutter, then lower each node.

mod budget;
mod linear;
mod movement;
mod pool;
mod recurrent;
mod rewrite;
mod shape;
mod weights;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, MaxPool, SumPool};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::gru_cell::GruEpilogue;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::lstm_cell::LstmEpilogue;
use tract_onnx::tract_core::ops::nn::{
    GeluApproximate, LeakyRelu, Reduce, Reducer, RmsNorm, Softmax, SoftmaxKind,
};
use tract_onnx::tract_core::ops::source::TypedSource;

use crate::error::{ModelError, Result};
use crate::graph::{ExtremumKind, Graph, Node, Op, Src, UnaryFn, Weights};

/// Largest number of elements in one tensor the lowering accepts (codes are exact f32 ints).
pub(crate) const MAX_TENSOR_ELEMENTS: usize = 1 << 24;
/// Largest number of elements of all the model's constants together (weights and what the
/// file computes from constants alone), checked before tract folds them.
pub const MAX_CONSTANT_ELEMENTS: usize = 1 << 25;

/// Loads an ONNX file and lowers it, its weights constants.
pub fn load_onnx(path: &Path) -> Result<Graph> {
    load_onnx_with(path, Weights::Fixed)
}

/// Loads an ONNX file and lowers it, its weights as `weights` says.
pub fn load_onnx_with(path: &Path, weights: Weights) -> Result<Graph> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_onnx_bytes_with(&bytes, weights)
}

/// Loads ONNX bytes and lowers them (dynamic dims such as `batch_size` become 1), its weights
/// constants.
pub fn load_onnx_bytes(bytes: &[u8]) -> Result<Graph> {
    load_onnx_bytes_with(bytes, Weights::Fixed)
}

/// [`load_onnx_bytes`], the weights as `weights` says ([`Op::Param`] nodes when hashed).
pub fn load_onnx_bytes_with(bytes: &[u8], weights: Weights) -> Result<Graph> {
    let onnx = tract_onnx::onnx();
    let mut proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(malformed)?;
    if let Some(graph) = proto.graph.as_ref() {
        budget::check(
            graph,
            MAX_TENSOR_ELEMENTS as u64,
            MAX_CONSTANT_ELEMENTS as u64,
        )?;
    }
    // tract names a node as the file does, or after its first output when it has no name.
    let nodes: Vec<OnnxNode> = proto
        .graph
        .iter()
        .flat_map(|g| g.node.iter())
        .map(|n| {
            let first_output = n.output.first().filter(|o| !o.is_empty());
            let (key, shown) = if !n.name.is_empty() {
                (Some(n.name.clone()), n.name.clone())
            } else if let Some(out) = first_output {
                (Some(out.clone()), format!("unnamed, output {out}"))
            } else {
                (None, "unnamed".to_string())
            };
            OnnxNode {
                key,
                shown,
                op_type: n.op_type.clone(),
            }
        })
        .collect();
    if let Some(graph) = proto.graph.as_ref() {
        for (i, n) in graph.node.iter().enumerate() {
            if let Some(detail) = rewrite::misread_by_tract(n) {
                return Err(ModelError::UnsupportedOp {
                    node: nodes[i].shown.clone(),
                    node_id: i,
                    op: n.op_type.clone(),
                    onnx: Some(Box::new((nodes[i].shown.clone(), n.op_type.clone()))),
                    detail: format!(": {detail}"),
                });
            }
        }
    }
    if let Some(graph) = proto.graph.as_mut() {
        rewrite::rewrite(graph);
    }
    let inference = onnx.model_for_proto_model(&proto).map_err(malformed)?;
    let typed = typed_model(inference)?;
    Lowering::new(&typed, weights)
        .run()
        .map_err(|e| with_onnx_origin(e, &nodes))
}

/// An ONNX node: the name tract gives it (`None`: tract names it `N-OpType`), the name to
/// show, its op type.
struct OnnxNode {
    key: Option<String>,
    shown: String,
    op_type: String,
}

impl OnnxNode {
    /// Whether tract node `name` is this node or one tract split it into (`NAME.suffix`).
    fn matches(&self, name: &str) -> bool {
        match &self.key {
            Some(k) => {
                name == k
                    || name
                        .strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            }
            None => {
                let head = name.split('.').next().unwrap_or_default();
                head.split_once('-').is_some_and(|(n, op)| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && op == self.op_type
                })
            }
        }
    }
}

/// Names the ONNX node (as the file names it, with its op type) that an unsupported tract
/// node comes from. tract keeps an ONNX node's name for the node it becomes and names the
/// nodes it splits it into `NAME.suffix`, so the origin is the longest ONNX name that is the
/// tract name or a dotted prefix of it.
fn with_onnx_origin(e: ModelError, onnx_nodes: &[OnnxNode]) -> ModelError {
    match e {
        ModelError::UnsupportedOp {
            node,
            node_id,
            op,
            onnx: None,
            detail,
        } => {
            let origin = onnx_nodes
                .iter()
                .filter(|n| n.matches(&node))
                .max_by_key(|n| n.key.as_ref().map_or(0, String::len))
                .map(|n| Box::new((n.shown.clone(), n.op_type.clone())));
            ModelError::UnsupportedOp {
                node,
                node_id,
                op,
                onnx: origin,
                detail,
            }
        }
        other => other,
    }
}

fn malformed(e: impl std::fmt::Display) -> ModelError {
    ModelError::Malformed(format!("{e:#}"))
}

/// Types and declutters, fixing every symbolic dim to 1. Some graphs (a Tile over the batch
/// dim) only declutter while the batch is still symbolic, so that order is the fallback.
fn typed_model(inference: InferenceModel) -> Result<TypedModel> {
    let typed = inference.into_typed().map_err(malformed)?;
    let concretize = |m: &TypedModel| -> TractResult<TypedModel> {
        let subs: HashMap<Symbol, TDim> = m
            .symbols
            .all_symbols()
            .into_iter()
            .map(|s| (s, TDim::Val(1)))
            .collect();
        m.set_symbols(&subs)
    };
    let first = concretize(&typed).and_then(|m| m.into_decluttered());
    match first {
        Ok(m) => Ok(m),
        Err(e) => {
            let late = typed.into_decluttered().and_then(|m| concretize(&m));
            late.map_err(|e2| malformed(format!("{e:#} (and with symbolic dims: {e2:#})")))
        }
    }
}

/// Groups of a reduction over `axes`: the reduced shape, each element's group (flat index in
/// the reduced shape), and each group's elements in order.
fn reduction_groups(shape: &[usize], axes: &[usize]) -> (Vec<usize>, Vec<u32>, Vec<Vec<u32>>) {
    let gshape: Vec<usize> = (0..shape.len())
        .map(|d| if axes.contains(&d) { 1 } else { shape[d] })
        .collect();
    let gstrides = shape::strides(&gshape);
    let n: usize = shape.iter().product();
    let group_of: Vec<u32> = (0..n)
        .map(|i| {
            let idx = shape::unravel(i, shape);
            (0..shape.len())
                .map(|d| {
                    if axes.contains(&d) {
                        0
                    } else {
                        idx[d] * gstrides[d]
                    }
                })
                .sum::<usize>() as u32
        })
        .collect();
    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); gshape.iter().product()];
    for (i, &g) in group_of.iter().enumerate() {
        groups[g as usize].push(i as u32);
    }
    (gshape, group_of, groups)
}

/// A value during lowering: a constant tensor or a node of the graph being built.
#[derive(Clone)]
enum Val {
    Const(Arc<Tensor>),
    Node(usize),
}

/// What one lowering function sees of a tract node.
pub(crate) struct Ctx<'a> {
    pub name: &'a str,
    pub id: usize,
    pub op: String,
    pub in_shapes: Vec<Vec<usize>>,
    pub out_shape: Vec<usize>,
    /// Constant inputs (None where the input is variable).
    pub consts: Vec<Option<Arc<Tensor>>>,
}

impl Ctx<'_> {
    pub fn unsupported(&self, detail: impl Into<String>) -> ModelError {
        let d = detail.into();
        ModelError::UnsupportedOp {
            node: self.name.to_string(),
            node_id: self.id,
            op: self.op.clone(),
            onnx: None,
            detail: if d.is_empty() { d } else { format!(": {d}") },
        }
    }

    pub fn shape_err(&self, message: impl Into<String>) -> ModelError {
        ModelError::Shape {
            node: self.name.to_string(),
            message: message.into(),
        }
    }

    /// Constant input `slot` as f32 values (row-major).
    pub fn const_f32(&self, slot: usize) -> Result<Vec<f32>> {
        let t = self.consts[slot]
            .as_ref()
            .ok_or_else(|| self.unsupported("expected a constant"))?;
        tensor_f32(t).map_err(|e| self.unsupported(e))
    }

    pub fn is_const(&self, slot: usize) -> bool {
        self.consts[slot].is_some()
    }

    pub fn out_len(&self) -> usize {
        self.out_shape.iter().product()
    }
}

pub(crate) fn tensor_f32(t: &Tensor) -> std::result::Result<Vec<f32>, String> {
    let c = t.cast_to::<f32>().map_err(|e| format!("{e}"))?;
    let v = c.to_plain_array_view::<f32>().map_err(|e| format!("{e}"))?;
    Ok(v.iter().copied().collect())
}

/// The result of lowering one node: an op over some of its inputs.
pub(crate) struct Lowered {
    pub op: Op,
    /// Which of the tract node's input slots feed the op's slots, in order.
    pub slots: Vec<usize>,
}

struct Lowering<'m> {
    model: &'m TypedModel,
    graph: Graph,
    vals: HashMap<OutletId, Val>,
    weights: Weights,
    /// The Param node of each constant lifted so far (hashed weights).
    params: HashMap<OutletId, usize>,
}

impl<'m> Lowering<'m> {
    fn new(model: &'m TypedModel, weights: Weights) -> Self {
        Self {
            model,
            graph: Graph::default(),
            vals: HashMap::new(),
            weights,
            params: HashMap::new(),
        }
    }

    fn concrete_shape(&self, outlet: OutletId) -> Result<Vec<usize>> {
        let node = &self.model.nodes[outlet.node];
        let fact = self.model.outlet_fact(outlet).map_err(malformed)?;
        let shape = fact
            .shape
            .as_concrete()
            .map(|s| s.to_vec())
            .ok_or_else(|| ModelError::Shape {
                node: node.name.clone(),
                message: format!("shape {:?} is not concrete", fact.shape),
            })?;
        if shape.iter().product::<usize>() > MAX_TENSOR_ELEMENTS {
            return Err(ModelError::TooLarge(format!(
                "node \"{}\" has {} elements (limit {MAX_TENSOR_ELEMENTS})",
                node.name,
                shape.iter().product::<usize>()
            )));
        }
        Ok(shape)
    }

    fn run(mut self) -> Result<Graph> {
        let order = self.model.eval_order().map_err(malformed)?;
        let inputs = self.model.input_outlets().map_err(malformed)?.to_vec();
        for id in order {
            let node = &self.model.nodes[id];
            if node.op_as::<TypedSource>().is_some() {
                let index = inputs.iter().position(|o| o.node == id).ok_or_else(|| {
                    malformed(format!("source node {} is not a model input", node.name))
                })?;
                let shape = self.concrete_shape(OutletId::new(id, 0))?;
                let nid = self.push(
                    node.name.clone(),
                    "Input".into(),
                    Op::Input { index },
                    vec![],
                    shape,
                );
                self.graph.inputs.push(nid);
                self.vals.insert(OutletId::new(id, 0), Val::Node(nid));
                continue;
            }
            if let Some(k) = node.op_as::<Const>() {
                self.vals
                    .insert(OutletId::new(id, 0), Val::Const(k.val().clone()));
                continue;
            }
            let ins: Vec<Val> = node
                .inputs
                .iter()
                .map(|o| {
                    self.vals
                        .get(o)
                        .cloned()
                        .ok_or_else(|| malformed(format!("dangling input of {}", node.name)))
                })
                .collect::<Result<_>>()?;
            if ins.iter().all(|v| matches!(v, Val::Const(_))) {
                self.fold_constant(id, &ins)?;
                continue;
            }
            let ins = self.lift_weights(id, ins)?;
            if let Some(op) = node.op_as::<Softmax>() {
                self.lower_softmax(id, &ins, op)?;
                continue;
            }
            if let Some(op) = node.op_as::<RmsNorm>() {
                self.lower_rms_norm(id, &ins, op)?;
                continue;
            }
            if let Some(leaky) = node
                .op_as::<ElementWiseOp>()
                .and_then(|e| e.0.downcast_ref::<LeakyRelu>())
            {
                self.lower_leaky_relu(id, &ins, leaky.alpha)?;
                continue;
            }
            if let Some(op) = node.op_as::<LstmEpilogue>() {
                self.lower_lstm_epilogue(id, &ins, op.hidden)?;
                continue;
            }
            if let Some(op) = node.op_as::<GruEpilogue>() {
                self.lower_gru_epilogue(id, &ins, op.hidden)?;
                continue;
            }
            if let Some(gelu) = node
                .op_as::<ElementWiseOp>()
                .and_then(|e| e.0.downcast_ref::<GeluApproximate>())
            {
                if gelu.fast_impl {
                    return Err(self.unsupported(id, "the x² variant of the tanh GELU"));
                }
                let x = self.variable_input(id, &ins)?;
                let shape = self.concrete_shape(node.inputs[0])?;
                let op = Op::Unary {
                    func: UnaryFn::GeluTanh,
                };
                let y = self.push(node.name.clone(), "Gelu".into(), op, vec![x], shape);
                self.vals.insert(OutletId::new(id, 0), Val::Node(y));
                continue;
            }
            if node.op.name() == "Abs" {
                self.lower_max_scaled(id, &ins, -1.0, "Abs")?;
                continue;
            }
            if node.op.name() == "Rsqrt" {
                self.lower_rsqrt(id, &ins)?;
                continue;
            }
            if node.op.name() == "Ln" {
                self.lower_ln(id, &ins)?;
                continue;
            }
            self.lower_node(id, &ins)?;
        }
        // Graph inputs must come out in declaration order.
        self.graph
            .inputs
            .sort_by_key(|&n| match self.graph.nodes[n].op {
                Op::Input { index } => index,
                _ => usize::MAX,
            });
        for o in self.model.output_outlets().map_err(malformed)?.to_vec() {
            let nid = match self.vals.get(&o).cloned() {
                Some(Val::Node(n)) => n,
                Some(Val::Const(t)) => {
                    let shape = t.shape().to_vec();
                    let srcs = tensor_f32(&t)
                        .map_err(malformed)?
                        .into_iter()
                        .map(Src::Const)
                        .collect();
                    self.push(
                        format!("output{}", o.node),
                        "Const".into(),
                        Op::Remap { srcs },
                        vec![],
                        shape,
                    )
                }
                None => return Err(malformed("model output was never computed")),
            };
            self.graph.outputs.push(nid);
        }
        if self.graph.inputs.is_empty() {
            return Err(malformed("the model has no inputs"));
        }
        Ok(self.graph)
    }

    fn push(
        &mut self,
        name: String,
        source_op: String,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> usize {
        self.graph.nodes.push(Node {
            name,
            source_op,
            op,
            inputs,
            shape,
        });
        self.graph.nodes.len() - 1
    }

    fn fold_constant(&mut self, id: usize, ins: &[Val]) -> Result<()> {
        let node = &self.model.nodes[id];
        let tensors: TVec<TValue> = ins
            .iter()
            .map(|v| match v {
                Val::Const(t) => TValue::from_const(t.clone()),
                Val::Node(_) => unreachable!("only called with constant inputs"),
            })
            .collect();
        let outs = node
            .op
            .eval_out_of_plan(tensors)
            .ok()
            .flatten()
            .ok_or_else(|| self.unsupported(id, "cannot fold this op over constant inputs"))?;
        for (slot, t) in outs.into_iter().enumerate() {
            self.vals
                .insert(OutletId::new(id, slot), Val::Const(t.into_arc_tensor()));
        }
        Ok(())
    }

    /// The typed error for node `id`, naming it and its op.
    fn unsupported(&self, id: usize, detail: &str) -> ModelError {
        let node = &self.model.nodes[id];
        ModelError::UnsupportedOp {
            node: node.name.clone(),
            node_id: id,
            op: node.op.name().to_string(),
            onnx: None,
            detail: format!(": {detail}"),
        }
    }

    /// The graph node of a composite op's first input, which must be variable.
    /// Whether graph node `n` is a min with a constant `≤ 0` in every row: never positive.
    fn never_positive(&self, n: usize) -> bool {
        match &self.graph.nodes[n].op {
            Op::Extremum {
                kind: ExtremumKind::Min,
                candidates,
            } => candidates
                .iter()
                .all(|row| row.iter().any(|c| matches!(c, Src::Const(v) if *v <= 0.0))),
            _ => false,
        }
    }

    fn variable_input(&self, id: usize, ins: &[Val]) -> Result<usize> {
        match ins.first() {
            Some(Val::Node(n)) => Ok(*n),
            _ => Err(self.unsupported(id, "expected a variable first input")),
        }
    }

    /// Softmax over `axes` as five nodes: the group maximum, `x − max`, `e^(x − max)` (a
    /// lookup), the group sum, and the division (subtracting the maximum keeps every exponent
    /// at most 0, so every `e^…` is in (0, 1] and the sum is at least 1).
    fn lower_softmax(&mut self, id: usize, ins: &[Val], op: &Softmax) -> Result<()> {
        let node = &self.model.nodes[id];
        let name = node.name.clone();
        let unsupported = |detail: &str| self.unsupported(id, detail);
        if op.kind != SoftmaxKind::Softmax || op.quant_output_dt.is_some() {
            return Err(unsupported("only float Softmax is supported"));
        }
        let x = self.variable_input(id, ins)?;
        let shape = self.concrete_shape(node.inputs[0])?;
        let (gshape, group_of, groups) = reduction_groups(&shape, &op.axes);
        let n = group_of.len();
        let src = "Softmax".to_string();
        let max = Op::Extremum {
            kind: ExtremumKind::Max,
            candidates: groups
                .iter()
                .map(|g| g.iter().map(|&idx| Src::Elem { slot: 0, idx }).collect())
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
            terms: (0..n)
                .map(|i| vec![(0, i as u32, 1.0), (1, group_of[i], -1.0)])
                .collect(),
            bias: vec![0.0; n],
        };
        let d = self.push(
            format!("{name}.sub"),
            src.clone(),
            sub,
            vec![x, m],
            shape.clone(),
        );
        let exp = Op::Unary {
            func: UnaryFn::ExpNonPositive,
        };
        let e = self.push(
            format!("{name}.exp"),
            src.clone(),
            exp,
            vec![d],
            shape.clone(),
        );
        let sum = Op::Linear {
            terms: groups
                .iter()
                .map(|g| g.iter().map(|&i| (0, i, 1.0)).collect())
                .collect(),
            bias: vec![0.0; groups.len()],
        };
        let s = self.push(format!("{name}.sum"), src.clone(), sum, vec![e], gshape);
        let div = Op::Divide {
            pairs: (0..n).map(|i| (i as u32, group_of[i])).collect(),
        };
        let y = self.push(name, src, div, vec![e, s], shape);
        self.vals.insert(OutletId::new(id, 0), Val::Node(y));
        Ok(())
    }

    /// RmsNorm along `axis`: `x / sqrt(mean(x²) + eps)` as four nodes: `x²`, the mean plus
    /// `eps`, an integer square root and the division.
    fn lower_rms_norm(&mut self, id: usize, ins: &[Val], op: &RmsNorm) -> Result<()> {
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
    fn lower_ln(&mut self, id: usize, ins: &[Val]) -> Result<()> {
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
    fn lower_rsqrt(&mut self, id: usize, ins: &[Val]) -> Result<()> {
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
    fn lower_leaky_relu(&mut self, id: usize, ins: &[Val], alpha: f32) -> Result<()> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(self.unsupported(id, "alpha must be in [0, 1]"));
        }
        self.lower_max_scaled(id, ins, alpha, "LeakyRelu")
    }

    /// `max(x, α·x)`: LeakyRelu for `0 ≤ α ≤ 1`, Abs for `α = −1`.
    fn lower_max_scaled(&mut self, id: usize, ins: &[Val], alpha: f32, src: &str) -> Result<()> {
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
    fn lower_lstm_epilogue(&mut self, id: usize, ins: &[Val], h: usize) -> Result<()> {
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

    fn lower_node(&mut self, id: usize, ins: &[Val]) -> Result<()> {
        let node = &self.model.nodes[id];
        let in_shapes = node
            .inputs
            .iter()
            .map(|&o| self.concrete_shape(o))
            .collect::<Result<Vec<_>>>()?;
        let out_shape = self.concrete_shape(OutletId::new(id, 0))?;
        let ctx = Ctx {
            name: &node.name,
            id,
            op: node.op.name().to_string(),
            in_shapes,
            out_shape: out_shape.clone(),
            consts: ins
                .iter()
                .map(|v| match v {
                    Val::Const(t) => Some(t.clone()),
                    Val::Node(_) => None,
                })
                .collect(),
        };
        let lowered = if let Some(op) = node.op_as::<EinSum>() {
            linear::einsum(&ctx, op)?
        } else if let Some(op) = node.op_as::<Conv>() {
            if !ctx.is_const(1) {
                return self.lower_conv_params(&ctx, op, ins);
            }
            linear::conv(&ctx, op)?
        } else if let Some(op) = node.op_as::<SumPool>() {
            pool::sum_pool(&ctx, op)?
        } else if let Some(op) = node.op_as::<MaxPool>() {
            pool::max_pool(&ctx, op)?
        } else if let Some(op) = node.op_as::<Reduce>() {
            match op.reducer {
                Reducer::Sum => pool::reduce(&ctx, &op.axes, None)?,
                Reducer::Max => pool::reduce(&ctx, &op.axes, Some(ExtremumKind::Max))?,
                Reducer::Min => pool::reduce(&ctx, &op.axes, Some(ExtremumKind::Min))?,
                Reducer::MeanOfSquares => {
                    // Σ x² per group (one chained product), then × 1/n below.
                    let rows = pool::reduction_rows(&ctx, &op.axes)?;
                    let n = rows.first().map_or(1, Vec::len);
                    let squares = Op::Bilinear {
                        pairs: rows
                            .iter()
                            .map(|r| r.iter().map(|&i| (i, i)).collect())
                            .collect(),
                    };
                    let x = match &ins[0] {
                        Val::Node(x) => *x,
                        Val::Const(_) => return Err(ctx.unsupported("a constant input")),
                    };
                    let sum = self.push(
                        format!("{}.sum_of_squares", node.name),
                        ctx.op.clone(),
                        squares,
                        vec![x, x],
                        out_shape.clone(),
                    );
                    let len = ctx.out_len() as u32;
                    let mean = Op::Linear {
                        terms: (0..len).map(|i| vec![(0, i, 1.0 / n as f32)]).collect(),
                        bias: vec![0.0; len as usize],
                    };
                    let y = self.push(
                        node.name.clone(),
                        ctx.op.clone(),
                        mean,
                        vec![sum],
                        out_shape,
                    );
                    self.vals.insert(OutletId::new(id, 0), Val::Node(y));
                    return Ok(());
                }
                _ => return Err(ctx.unsupported("only Sum, Max and Min reductions are supported")),
            }
        } else if let Some(op) = node.op_as::<TypedBinOp>() {
            linear::binary(&ctx, op.0.name())?
        } else if ctx.op == "Square" {
            let pairs = (0..ctx.out_len() as u32).map(|i| vec![(i, i)]).collect();
            Lowered {
                op: Op::Bilinear { pairs },
                slots: vec![0, 0],
            }
        } else if ctx.op == "Neg" {
            let n = ctx.out_len();
            Lowered {
                op: Op::Linear {
                    terms: (0..n as u32).map(|i| vec![(0, i, -1.0)]).collect(),
                    bias: vec![0.0; n],
                },
                slots: vec![0],
            }
        } else if ctx.op == "Sqrt" {
            Lowered {
                op: Op::Sqrt,
                slots: vec![0],
            }
        } else if let Some(func) = UnaryFn::from_tract(&ctx.op) {
            // e^x of a value already clamped to ≤ 0 (Elu's e^min(x, 0)) is Softmax's
            // exponential: its table keeps x = 0 at any activation width.
            let func = match (&ins[0], func) {
                (Val::Node(n), UnaryFn::Exp) if self.never_positive(*n) => UnaryFn::ExpNonPositive,
                _ => func,
            };
            Lowered {
                op: Op::Unary { func },
                slots: vec![0],
            }
        } else if ctx.op == "Deconv" {
            linear::probe_affine(&ctx, node.op.as_ref())?
        } else if ctx.op == "Iff" {
            movement::select(&ctx)?
        } else if movement::is_movement(node.op.as_ref()) {
            movement::lower(&ctx, node.op.as_ref())?
        } else {
            return Err(ctx.unsupported(""));
        };
        let inputs = lowered
            .slots
            .iter()
            .map(|&s| match &ins[s] {
                Val::Node(n) => Ok(*n),
                Val::Const(_) => {
                    Err(ctx.unsupported("internal: a constant was wired as a variable input"))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let nid = self.push(
            node.name.clone(),
            ctx.op.clone(),
            lowered.op,
            inputs,
            out_shape,
        );
        self.vals.insert(OutletId::new(id, 0), Val::Node(nid));
        Ok(())
    }
}
