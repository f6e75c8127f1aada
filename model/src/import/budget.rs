//! The element budget, checked on the ONNX file before tract reads it. tract folds constants
//! while it types a graph (a ConstantOfShape of a constant shape becomes a tensor of that
//! shape), so a 131-byte file can ask for gigabytes before any later check sees a shape.
//! This pass follows the shapes (and the small integer values shapes are computed from)
//! through the ops that can make a tensor larger than their inputs, and refuses a tensor
//! over the budget naming its node, without allocating it.
//!
//! Written here rather than taken from a crate: ONNX shape inference exists only in the
//! Python and C++ `onnx` packages. It is conservative the safe way round: an op it does not
//! follow leaves its output unknown, so a valid model is never refused by a guess.

use std::collections::HashMap;

use tract_onnx::pb::{self, tensor_proto::DataType, NodeProto, TensorProto};

use crate::error::{ModelError, Result};

/// Small tensors whose values are followed (shapes, axes, repeats, pads are this small).
const MAX_TRACKED_VALUES: usize = 64;
/// The most dims a tensor may have: no model has more than a handful, and a file declaring
/// a million would make this pass itself slow.
const MAX_RANK: usize = 32;

/// Ops whose output size is set by the values of one of their inputs (its index): when a
/// constant computation this pass cannot follow makes that input, the size cannot be bounded
/// before tract computes it, so the node is refused.
const SIZED_BY: &[(&str, usize)] = &[
    ("ConstantOfShape", 0),
    ("Expand", 1),
    ("Tile", 1),
    ("Range", 1),
    ("Pad", 1),
    ("OneHot", 1),
];

/// Ops that only move or relabel their input's elements: a constant through them is counted
/// once, not again.
const VIEWS: &[&str] = &[
    "Cast",
    "Identity",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Flatten",
];

/// What the pass knows about one tensor.
#[derive(Clone, Debug, Default)]
struct Known {
    /// Its shape, when known.
    shape: Option<Vec<u64>>,
    /// Its values, row-major, when small and known.
    values: Option<Vec<f64>>,
}

impl Known {
    fn shaped(shape: Vec<u64>) -> Self {
        Known {
            shape: Some(shape),
            values: None,
        }
    }

    fn with_values(shape: Vec<u64>, values: Vec<f64>) -> Self {
        let keep = values.len() <= MAX_TRACKED_VALUES;
        Known {
            shape: Some(shape),
            values: keep.then_some(values),
        }
    }

    /// The values as dims (non-negative integers), if they all are.
    fn dims(&self) -> Option<Vec<u64>> {
        self.values.as_ref()?.iter().map(|&v| as_dim(v)).collect()
    }

    /// The values as signed integers, if they all are.
    fn ints(&self) -> Option<Vec<i64>> {
        self.values
            .as_ref()?
            .iter()
            .map(|&v| (v.fract() == 0.0 && v.abs() < 9.0e18).then_some(v as i64))
            .collect()
    }
}

fn as_dim(v: f64) -> Option<u64> {
    (v.fract() == 0.0 && (0.0..1.8e19).contains(&v)).then_some(v as u64)
}

/// The number of elements of `shape`, saturating (a product past u64 is over any budget).
fn elements(shape: &[u64]) -> u64 {
    shape.iter().fold(1u64, |n, &d| n.saturating_mul(d))
}

/// Refuses the graph if a tensor it declares or computes has more than `max_elements`
/// elements, or its constants together more than `max_constant_elements`.
pub(crate) fn check(
    graph: &pb::GraphProto,
    max_elements: u64,
    max_constant_elements: u64,
) -> Result<()> {
    let over = |what: String, shape: &[u64]| -> Result<()> {
        if shape.len() > MAX_RANK {
            return Err(ModelError::TooLarge(format!(
                "{what} has {} dims, over the budget of {MAX_RANK}",
                shape.len()
            )));
        }
        let n = elements(shape);
        if n > max_elements {
            return Err(ModelError::TooLarge(format!(
                "{what} would hold {n} elements (shape {shape:?}), over the budget of \
                 {max_elements} elements per tensor"
            )));
        }
        Ok(())
    };
    let mut known: HashMap<&str, Known> = HashMap::new();
    let mut constant_elements = 0u64;
    let mut count_constant = |what: &str, n: u64| -> Result<()> {
        constant_elements = constant_elements.saturating_add(n);
        if constant_elements > max_constant_elements {
            return Err(ModelError::TooLarge(format!(
                "the model's constants reach {constant_elements} elements at {what}, over the \
                 budget of {max_constant_elements}"
            )));
        }
        Ok(())
    };
    let mut constant: std::collections::HashSet<&str> = Default::default();
    for t in &graph.initializer {
        let k = tensor(t)?;
        let shape = k.shape.clone().unwrap_or_default();
        over(format!("initializer \"{}\"", t.name), &shape)?;
        count_constant(&format!("initializer \"{}\"", t.name), elements(&shape))?;
        constant.insert(t.name.as_str());
        known.insert(t.name.as_str(), k);
    }
    for input in &graph.input {
        if known.contains_key(input.name.as_str()) {
            continue;
        }
        if let Some(shape) = declared_shape(input) {
            over(format!("input \"{}\"", input.name), &shape)?;
            known.insert(input.name.as_str(), Known::shaped(shape));
        }
    }
    for node in &graph.node {
        let shown = if node.name.is_empty() {
            format!("node (unnamed, output {:?})", node.output.first())
        } else {
            format!("node \"{}\"", node.name)
        };
        // tract types a control-flow op's bodies (and folds their constants) whatever the
        // condition: this pass does not follow them, and the quantized pipeline has no such op.
        if node
            .attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
        {
            return Err(ModelError::TooLarge(format!(
                "{shown} ({}) holds a subgraph, which the element budget cannot bound",
                node.op_type
            )));
        }
        let inputs: Vec<Option<&Known>> = node
            .input
            .iter()
            .map(|name| known.get(name.as_str()))
            .collect();
        if let Some(&(_, at)) = SIZED_BY.iter().find(|(op, _)| *op == node.op_type) {
            let sizing = node.input.get(at).filter(|i| !i.is_empty());
            let unfollowed = sizing.is_some_and(|i| {
                constant.contains(i.as_str())
                    && known.get(i.as_str()).is_none_or(|k| k.values.is_none())
            });
            if unfollowed {
                return Err(ModelError::TooLarge(format!(
                    "{shown} ({}) takes its size from constants computed by ops the element \
                     budget cannot follow; its size cannot be bounded before it is made",
                    node.op_type
                )));
            }
        }
        let out = infer(node, &inputs)?;
        // Shapes are static here (symbolic dims are fixed to 1 before tract folds): a shape
        // is a constant like any other, and so is what is computed from it.
        let all_constant = matches!(node.op_type.as_str(), "Shape" | "Size")
            || node
                .input
                .iter()
                .all(|i| i.is_empty() || constant.contains(i.as_str()));
        if let Some(shape) = out.as_ref().and_then(|k| k.shape.as_ref()) {
            over(format!("{shown} ({})", node.op_type), shape)?;
            if all_constant && !VIEWS.contains(&node.op_type.as_str()) {
                count_constant(&shown, elements(shape))?;
            }
        }
        if let (Some(name), Some(k)) = (node.output.first(), out) {
            if all_constant {
                constant.insert(name.as_str());
            }
            known.insert(name.as_str(), k);
        }
    }
    Ok(())
}

/// The shape a graph input declares (a symbolic dim counts as 1, as the import fixes it).
fn declared_shape(v: &pb::ValueInfoProto) -> Option<Vec<u64>> {
    use pb::tensor_shape_proto::dimension::Value as D;
    use pb::type_proto::Value as T;
    let T::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    let dims = &t.shape.as_ref()?.dim;
    if dims.len() > MAX_RANK {
        // Checked by the caller's rank budget: a shape of MAX_RANK + 1 ones says so cheaply.
        return Some(vec![1; MAX_RANK + 1]);
    }
    dims.iter()
        .map(|d| match &d.value {
            Some(D::DimValue(n)) => u64::try_from(*n).ok(),
            Some(D::DimParam(_)) | None => Some(1),
        })
        .collect()
}

/// What a tensor proto holds: its shape, and its values when few. Reads only what the file
/// holds (never allocates by its declared dims).
fn tensor(t: &TensorProto) -> Result<Known> {
    let shape: Vec<u64> = t
        .dims
        .iter()
        .map(|&d| u64::try_from(d).ok())
        .collect::<Option<_>>()
        .ok_or_else(|| {
            ModelError::Malformed(format!("tensor \"{}\" has a negative dim", t.name))
        })?;
    let n = elements(&shape);
    if n as usize > MAX_TRACKED_VALUES {
        return Ok(Known::shaped(shape));
    }
    let raw = &t.raw_data;
    let values: Option<Vec<f64>> = match DataType::try_from(t.data_type).ok() {
        Some(DataType::Int64) if !raw.is_empty() => Some(
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
                .collect(),
        ),
        Some(DataType::Int64) => Some(t.int64_data.iter().map(|&v| v as f64).collect()),
        Some(DataType::Int32) if !raw.is_empty() => Some(
            raw.chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect(),
        ),
        Some(DataType::Int32) => Some(t.int32_data.iter().map(|&v| v as f64).collect()),
        Some(DataType::Float) if !raw.is_empty() => Some(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect(),
        ),
        Some(DataType::Float) => Some(t.float_data.iter().map(|&v| v as f64).collect()),
        Some(DataType::Double) if !raw.is_empty() => Some(
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        Some(DataType::Double) => Some(t.double_data.clone()),
        _ => None,
    };
    Ok(match values.filter(|v| v.len() as u64 == n) {
        Some(v) => Known::with_values(shape, v),
        None => Known::shaped(shape),
    })
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

/// The broadcast of `shapes` (numpy rules); `None` if one is unknown or they do not broadcast.
fn broadcast<'a>(shapes: impl IntoIterator<Item = Option<&'a Vec<u64>>>) -> Option<Vec<u64>> {
    let mut out: Vec<u64> = Vec::new();
    for s in shapes {
        let s = s?;
        if s.len() > out.len() {
            let mut padded = vec![1; s.len() - out.len()];
            padded.extend_from_slice(&out);
            out = padded;
        }
        let off = out.len() - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    Some(out)
}

/// An axis attribute (possibly negative) as an index into `rank` dims.
fn axis(a: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}

const ELEMENTWISE_BINARY: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Mod",
    "Sum",
    "Mean",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "Where",
    "PRelu",
    "BitShift",
];

const ELEMENTWISE_UNARY: &[&str] = &[
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Abs",
    "Neg",
    "Erf",
    "Not",
    "Softmax",
    "LogSoftmax",
    "Clip",
    "Sign",
    "Floor",
    "Ceil",
    "Round",
    "Reciprocal",
    "LeakyRelu",
    "Elu",
    "Selu",
    "HardSigmoid",
    "Softplus",
    "Gelu",
    "Dropout",
    "BatchNormalization",
    "LayerNormalization",
    "InstanceNormalization",
];

/// What `node` makes of its inputs (its first output); `None`: not followed.
fn infer(node: &NodeProto, inputs: &[Option<&Known>]) -> Result<Option<Known>> {
    let input = |i: usize| inputs.get(i).copied().flatten();
    let shape = |i: usize| input(i).and_then(|k| k.shape.as_ref());
    let op = node.op_type.as_str();
    Ok(match op {
        "Constant" => constant(node)?,
        "ConstantOfShape" => input(0).and_then(Known::dims).map(|dims| {
            let fill = attr(node, "value")
                .and_then(|a| a.t.as_ref())
                .and_then(|t| {
                    tensor(t)
                        .ok()
                        .and_then(|k| k.values)
                        .and_then(|v| v.first().copied())
                });
            let n = elements(&dims);
            match fill {
                Some(x) if n as usize <= MAX_TRACKED_VALUES => {
                    Known::with_values(dims, vec![x; n as usize])
                }
                _ => Known::shaped(dims),
            }
        }),
        "Expand" => input(1)
            .and_then(Known::dims)
            .and_then(|target| match shape(0) {
                Some(s) => broadcast([Some(s), Some(&target)]),
                None => Some(target),
            })
            .map(Known::shaped),
        "Tile" => input(1).and_then(Known::dims).map(|reps| match shape(0) {
            Some(s) if s.len() == reps.len() => Known::shaped(
                s.iter()
                    .zip(&reps)
                    .map(|(a, b)| a.saturating_mul(*b))
                    .collect(),
            ),
            _ => Known::shaped(reps),
        }),
        "Range" => {
            let scalar = |i: usize| input(i)?.values.as_ref()?.first().copied();
            match (scalar(0), scalar(1), scalar(2)) {
                (Some(start), Some(limit), Some(delta)) if delta != 0.0 => {
                    let n = ((limit - start) / delta).ceil().max(0.0);
                    let n = if n.is_finite() {
                        n.min(1.8e19) as u64
                    } else {
                        u64::MAX
                    };
                    let values = (n as usize <= MAX_TRACKED_VALUES)
                        .then(|| (0..n).map(|i| start + i as f64 * delta).collect());
                    Some(Known {
                        shape: Some(vec![n]),
                        values,
                    })
                }
                _ => None,
            }
        }
        "Pad" => {
            let pads = input(1)
                .and_then(Known::ints)
                .or_else(|| attr_ints(node, "pads"));
            match (shape(0), pads) {
                (Some(s), Some(p)) if p.len() == 2 * s.len() => {
                    let r = s.len();
                    let out: Option<Vec<u64>> = (0..r)
                        .map(|d| {
                            let n = s[d] as i128 + p[d] as i128 + p[d + r] as i128;
                            u64::try_from(n.max(0)).ok()
                        })
                        .collect();
                    out.map(Known::shaped)
                }
                _ => None,
            }
        }
        "Resize" | "Upsample" => {
            let (scales_at, sizes_at) = if op == "Upsample" {
                (1, None)
            } else {
                (2, Some(3))
            };
            let sizes = sizes_at.and_then(&input).and_then(Known::dims);
            let scales = input(scales_at).and_then(|k| k.values.clone());
            match (sizes, scales, shape(0)) {
                (Some(sizes), _, _) if !sizes.is_empty() => Some(Known::shaped(sizes)),
                (_, Some(scales), Some(s)) if scales.len() == s.len() => {
                    let out = s
                        .iter()
                        .zip(&scales)
                        .map(|(&d, &f)| {
                            let x = (d as f64 * f).floor();
                            if x.is_finite() && x >= 0.0 {
                                x.min(1.8e19) as u64
                            } else {
                                u64::MAX
                            }
                        })
                        .collect();
                    Some(Known::shaped(out))
                }
                _ => None,
            }
        }
        "OneHot" => {
            let depth = input(1)
                .and_then(|k| k.values.as_ref()?.first().copied())
                .and_then(as_dim);
            match (shape(0), depth) {
                (Some(s), Some(d)) => {
                    let mut out = s.clone();
                    let ax = attr_int(node, "axis").unwrap_or(-1);
                    let at = if ax < 0 {
                        (ax + out.len() as i64 + 1).max(0) as usize
                    } else {
                        (ax as usize).min(out.len())
                    };
                    out.insert(at, d);
                    Some(Known::shaped(out))
                }
                (None, Some(d)) => Some(Known::shaped(vec![d])),
                _ => None,
            }
        }
        "Reshape" => match (input(1).and_then(Known::ints), shape(0)) {
            (Some(target), s) => reshape(&target, s).map(|out| match input(0) {
                Some(Known {
                    values: Some(v), ..
                }) => Known::with_values(out, v.clone()),
                _ => Known::shaped(out),
            }),
            _ => None,
        },
        "Shape" => shape(0).map(|s| {
            let rank = s.len() as i64;
            let clamp = |a: i64| (if a < 0 { a + rank } else { a }).clamp(0, rank) as usize;
            let start = attr_int(node, "start").map_or(0, clamp);
            let end = attr_int(node, "end").map_or(s.len(), clamp);
            let v: Vec<f64> = s[start.min(end)..end].iter().map(|&d| d as f64).collect();
            Known::with_values(vec![v.len() as u64], v)
        }),
        "Size" => shape(0).map(|s| Known::with_values(vec![], vec![elements(s) as f64])),
        "Cast" | "Identity" => input(0).cloned(),
        "Unsqueeze" | "Squeeze" => {
            let axes = input(1)
                .and_then(Known::ints)
                .or_else(|| attr_ints(node, "axes"));
            match (input(0), axes) {
                (Some(k), Some(axes)) => k.shape.as_ref().and_then(|s| {
                    let out = if op == "Unsqueeze" {
                        let rank = s.len() + axes.len();
                        let axes: Option<Vec<usize>> =
                            axes.iter().map(|&a| axis(a, rank)).collect();
                        let axes = axes?;
                        let mut rest = s.iter();
                        (0..rank)
                            .map(|d| {
                                if axes.contains(&d) {
                                    Some(1)
                                } else {
                                    rest.next().copied()
                                }
                            })
                            .collect::<Option<Vec<u64>>>()?
                    } else {
                        let axes: Option<Vec<usize>> =
                            axes.iter().map(|&a| axis(a, s.len())).collect();
                        let axes = axes?;
                        s.iter()
                            .enumerate()
                            .filter(|(d, _)| !axes.contains(d))
                            .map(|(_, &n)| n)
                            .collect()
                    };
                    Some(match &k.values {
                        Some(v) => Known::with_values(out, v.clone()),
                        None => Known::shaped(out),
                    })
                }),
                _ => None,
            }
        }
        "Concat" => {
            let all: Option<Vec<&Known>> = (0..node.input.len()).map(input).collect();
            all.and_then(|all| {
                let shapes: Option<Vec<&Vec<u64>>> = all.iter().map(|k| k.shape.as_ref()).collect();
                let shapes = shapes?;
                let first = shapes.first()?;
                let ax = axis(attr_int(node, "axis").unwrap_or(0), first.len())?;
                let mut out = (*first).clone();
                out[ax] = shapes
                    .iter()
                    .map(|s| s.get(ax).copied().unwrap_or(0))
                    .fold(0u64, u64::saturating_add);
                let values: Option<Vec<f64>> = (out.len() == 1)
                    .then(|| {
                        all.iter()
                            .map(|k| k.values.clone())
                            .collect::<Option<Vec<_>>>()
                    })
                    .flatten()
                    .map(|vs| vs.concat());
                Some(match values {
                    Some(v) => Known::with_values(out, v),
                    None => Known::shaped(out),
                })
            })
        }
        "Gather" => match (input(0), input(1)) {
            (Some(data), Some(idx)) => {
                let (Some(ds), Some(is)) = (data.shape.as_ref(), idx.shape.as_ref()) else {
                    return Ok(None);
                };
                let Some(ax) = axis(attr_int(node, "axis").unwrap_or(0), ds.len()) else {
                    return Ok(None);
                };
                let mut out = ds[..ax].to_vec();
                out.extend_from_slice(is);
                out.extend_from_slice(&ds[ax + 1..]);
                let values = match (&data.values, idx.ints()) {
                    (Some(v), Some(ix)) if ds.len() == 1 => ix
                        .iter()
                        .map(|&i| {
                            let i = if i < 0 { i + v.len() as i64 } else { i };
                            usize::try_from(i).ok().and_then(|i| v.get(i).copied())
                        })
                        .collect::<Option<Vec<f64>>>(),
                    _ => None,
                };
                Some(match values {
                    Some(v) => Known::with_values(out, v),
                    None => Known::shaped(out),
                })
            }
            _ => None,
        },
        "Transpose" => shape(0).and_then(|s| {
            let perm =
                attr_ints(node, "perm").unwrap_or_else(|| (0..s.len() as i64).rev().collect());
            let out: Option<Vec<u64>> = perm
                .iter()
                .map(|&p| usize::try_from(p).ok().and_then(|p| s.get(p).copied()))
                .collect();
            out.map(Known::shaped)
        }),
        "MatMul" => match (shape(0), shape(1)) {
            (Some(a), Some(b)) if a.len() >= 2 && b.len() >= 2 => {
                let batch_a = a[..a.len() - 2].to_vec();
                let batch_b = b[..b.len() - 2].to_vec();
                broadcast([Some(&batch_a), Some(&batch_b)]).map(|mut out| {
                    out.push(a[a.len() - 2]);
                    out.push(b[b.len() - 1]);
                    Known::shaped(out)
                })
            }
            _ => None,
        },
        "Gemm" => match (shape(0), shape(1)) {
            (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
                let m = if attr_int(node, "transA") == Some(1) {
                    a[1]
                } else {
                    a[0]
                };
                let n = if attr_int(node, "transB") == Some(1) {
                    b[0]
                } else {
                    b[1]
                };
                Some(Known::shaped(vec![m, n]))
            }
            _ => None,
        },
        _ if ELEMENTWISE_BINARY.contains(&op) => {
            let shapes = (0..node.input.len()).map(shape);
            broadcast(shapes).map(|out| {
                let values = arithmetic(op, inputs, &out);
                match values {
                    Some(v) => Known::with_values(out, v),
                    None => Known::shaped(out),
                }
            })
        }
        _ if ELEMENTWISE_UNARY.contains(&op) => shape(0).cloned().map(Known::shaped),
        _ => None,
    })
}

/// The values of a small elementwise Add/Sub/Mul/Div of known values (shape arithmetic).
fn arithmetic(op: &str, inputs: &[Option<&Known>], out: &[u64]) -> Option<Vec<f64>> {
    if inputs.len() != 2 || elements(out) as usize > MAX_TRACKED_VALUES {
        return None;
    }
    let a = inputs[0]?.values.as_ref()?;
    let b = inputs[1]?.values.as_ref()?;
    let n = elements(out) as usize;
    // Only scalars against vectors, or equal lengths: enough for shape arithmetic.
    let at = |v: &Vec<f64>, i: usize| {
        if v.len() == 1 {
            Some(v[0])
        } else {
            v.get(i).copied()
        }
    };
    (0..n)
        .map(|i| {
            let (x, y) = (at(a, i)?, at(b, i)?);
            match op {
                "Add" => Some(x + y),
                "Sub" => Some(x - y),
                "Mul" => Some(x * y),
                "Div" if y != 0.0 => Some((x / y).trunc()),
                _ => None,
            }
        })
        .collect()
}

/// Reshape's output shape: 0 copies the input's dim, -1 takes what is left.
fn reshape(target: &[i64], input: Option<&Vec<u64>>) -> Option<Vec<u64>> {
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            0 => out.push(*input?.get(i)?),
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                out.push(1);
            }
            t => out.push(u64::try_from(t).ok()?),
        }
    }
    if let Some(i) = infer_at {
        let total = elements(input?);
        let rest = elements(&out).max(1);
        out[i] = total / rest;
    }
    Some(out)
}

/// A Constant node's value.
fn constant(node: &NodeProto) -> Result<Option<Known>> {
    if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
        return tensor(t).map(Some);
    }
    if let Some(a) = attr(node, "value_int") {
        return Ok(Some(Known::with_values(vec![], vec![a.i as f64])));
    }
    if let Some(a) = attr(node, "value_ints") {
        let v: Vec<f64> = a.ints.iter().map(|&x| x as f64).collect();
        return Ok(Some(Known::with_values(vec![v.len() as u64], v)));
    }
    if let Some(a) = attr(node, "value_float") {
        return Ok(Some(Known::with_values(vec![], vec![a.f as f64])));
    }
    if let Some(a) = attr(node, "value_floats") {
        let v: Vec<f64> = a.floats.iter().map(|&x| x as f64).collect();
        return Ok(Some(Known::with_values(vec![v.len() as u64], v)));
    }
    Ok(None)
}

// Crafting ONNX files needs prost, which the `corpus` feature (on in tests) brings.
#[cfg(all(test, feature = "corpus"))]
mod tests;
