//! tract-onnx → [`Graph`]: load, type, declutter, then lower each node.

mod budget;
mod composite;
mod linear;
mod mask;
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
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, Softmax};
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
    /// Per graph node whose entries an attention mask excluded, which ones (see `mask`).
    excluded: HashMap<usize, mask::Excluded>,
}

impl<'m> Lowering<'m> {
    fn new(model: &'m TypedModel, weights: Weights) -> Self {
        Self {
            model,
            graph: Graph::default(),
            vals: HashMap::new(),
            weights,
            params: HashMap::new(),
            excluded: HashMap::new(),
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
            // Entries a mask excluded go only where they are carried to a Softmax.
            if self.reads_mask(&ins) && !mask::carries(node) {
                return Err(self.mask_refused(id));
            }
            if self.lower_composite(id, &ins)? {
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
            if self.excluded.contains_key(&nid) {
                return Err(self.mask_refused(o.node));
            }
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

    /// The graph node of a composite op's first input, which must be variable.
    fn variable_input(&self, id: usize, ins: &[Val]) -> Result<usize> {
        match ins.first() {
            Some(Val::Node(n)) => Ok(*n),
            _ => Err(self.unsupported(id, "expected a variable first input")),
        }
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
        let mut op = lowered.op;
        let excluded = self.flow_mask(id, &mut op, &inputs)?;
        let nid = self.push(node.name.clone(), ctx.op.clone(), op, inputs, out_shape);
        if let Some(excluded) = excluded {
            self.excluded.insert(nid, excluded);
        }
        self.vals.insert(OutletId::new(id, 0), Val::Node(nid));
        Ok(())
    }
}
