//! The float graph every ONNX model is lowered to before quantization.
//!
//! A few op shapes cover everything the circuit proves: an affine map with constant
//! coefficients ([`Op::Linear`]: Gemm, MatMul, Conv, pooling sums, reductions, Add, Sub, Mul by
//! a constant, BatchNorm), products of two variable tensors ([`Op::Bilinear`]), max/min over
//! candidates ([`Op::Extremum`]: Relu, Clip, MaxPool, ReduceMax), pure data movement
//! ([`Op::Remap`]: Reshape, Transpose, Slice, Concat, Pad, Gather at constant indices,
//! Flatten), table lookups (non-linear functions, and [`Op::Gather`] at indices the input
//! gives), square roots, divisions, and inputs.

use serde::{Deserialize, Serialize};

use crate::sparse::Rows;

/// Where one element comes from: element `idx` of the node's input `slot`, or a constant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Src<C> {
    /// Element `idx` (row-major) of input `slot`.
    Elem {
        /// Which of the node's inputs.
        slot: u32,
        /// Flat index in that input.
        idx: u32,
    },
    /// A constant value.
    Const(C),
}

/// How a model's weights enter the circuit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// Constants of the circuit: the verifying key pins them (one verifier per training).
    #[default]
    Fixed,
    /// Private witnesses pinned by one public commitment ([`Op::Param`] nodes): one verifier
    /// per architecture, the weights secret.
    Hashed,
}

impl Weights {
    /// The lowercase name, as options and files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Weights::Fixed => "fixed",
            Weights::Hashed => "hashed",
        }
    }
}

/// Max or min.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtremumKind {
    /// Largest candidate.
    Max,
    /// Smallest candidate.
    Min,
}

/// One lowered float op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Graph input number `index`.
    Input {
        /// Position among the graph inputs.
        index: usize,
    },
    /// A committed weight tensor (`--weights hashed`): the model's values, a private witness
    /// of the circuit pinned by the weight commitment instead of constants of the circuit.
    Param {
        /// The values, row-major.
        values: Vec<f32>,
    },
    /// `out[o] = bias[o] + Σ coeff · in[slot][idx]` over row `o`'s terms.
    Linear {
        /// Terms `(slot, idx, coeff)` per output element.
        terms: Rows<(u32, u32, f32)>,
        /// One bias per output element.
        bias: Vec<f32>,
    },
    /// `out[o] = Σ in0[a] · in1[b]` over row `o`'s pairs `(a, b)`.
    Bilinear {
        /// Index pairs per output element.
        pairs: Rows<(u32, u32)>,
    },
    /// `out[o] = max (or min)` of row `o`'s candidates.
    Extremum {
        /// Max or min.
        kind: ExtremumKind,
        /// Candidates per output element (never empty).
        candidates: Rows<Src<f32>>,
    },
    /// `out[o] = srcs[o]`: data movement, free in the circuit.
    Remap {
        /// Source of each output element.
        srcs: Vec<Src<f32>>,
    },
    /// `out[o] = f(in[o])` for a non-linear function of one value.
    Unary {
        /// The function.
        func: UnaryFn,
    },
    /// `out[o] = sqrt(in[o])`; the input must not be negative.
    Sqrt,
    /// `out[o] = in0[a] / in1[b]` for row `o`'s pair `(a, b)`; the divisor must be positive.
    Divide {
        /// Numerator and denominator index per output element.
        pairs: Vec<(u32, u32)>,
    },
    /// `out[o] = tables[col][in[idx]]` for pick `o = (idx, col)`: ONNX Gather of a constant
    /// tensor at indices the input gives (token embeddings). An index is an integer in
    /// `[-V, V)`; a negative one counts from the end, as in ONNX.
    Gather {
        /// Per column: the values at indices `0 … V−1`.
        tables: Vec<Vec<f32>>,
        /// Per output element: the index element and the column.
        picks: Vec<(u32, u32)>,
    },
}

/// `tables[col][index]` with ONNX's negative indices, or `None` for a non-integer or
/// out-of-range index.
pub fn gather_index(index: f64, len: usize) -> Option<usize> {
    if index.fract() != 0.0 || !index.is_finite() {
        return None;
    }
    let n = len as f64;
    if index < -n || index >= n {
        return None;
    }
    Some((if index < 0.0 { index + n } else { index }) as usize)
}

/// Element-wise non-linear functions, proven through lookup tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnaryFn {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
    /// `e^x`.
    Exp,
    /// The error function.
    Erf,
    /// `x · Φ(x)`, the exact GELU.
    Gelu,
    /// `½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`: GELU's tanh approximation (ONNX Gelu with
    /// `approximate="tanh"`, GPT-2's "new GELU").
    GeluTanh,
    /// `e^min(x, 0)`: Softmax's exponential, whose inputs `x − max` are never positive (the
    /// max is constrained to be at least every element). Bounded by 1, so its table spans the
    /// whole activation range and always holds `x = 0`, which a table of `e^x` loses when the
    /// range is wide enough that its first positive sample would overflow.
    ExpNonPositive,
    /// `8·ln x`, on `x > 0` only: the last step of `ln x = 8·ln x^(1/8)` (Log is lowered as
    /// three square roots and this).
    Ln8,
}

impl UnaryFn {
    /// The tract op name this function comes from, if any.
    pub fn from_tract(name: &str) -> Option<Self> {
        Some(match name {
            "Sigmoid" => UnaryFn::Sigmoid,
            "Tanh" => UnaryFn::Tanh,
            "Exp" => UnaryFn::Exp,
            "Erf" => UnaryFn::Erf,
            "GeluExact" => UnaryFn::Gelu,
            _ => return None,
        })
    }

    /// The smallest input the function can receive at `scale`, where less than the activation
    /// range: `Ln8` sees eighth roots of activations of at least one unit, `2^(−scale/8)`.
    pub fn min_input(self, scale: u32) -> Option<f64> {
        match self {
            UnaryFn::Ln8 => Some((-(scale as f64) / 8.0).exp2()),
            _ => None,
        }
    }

    /// `f(x)` in f64 (libm's erf: the standard library has none).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            UnaryFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryFn::Tanh => x.tanh(),
            UnaryFn::Exp => x.exp(),
            UnaryFn::Erf => libm::erf(x),
            UnaryFn::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            UnaryFn::Ln8 => 8.0 * x.ln(),
            UnaryFn::GeluTanh => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x.powi(3))).tanh())
            }
            UnaryFn::ExpNonPositive => x.min(0.0).exp(),
        }
    }
}

impl Op {
    /// A short name for listings.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input { .. } => "Input",
            Op::Param { .. } => "Param",
            Op::Linear { .. } => "Linear",
            Op::Bilinear { .. } => "Bilinear",
            Op::Extremum {
                kind: ExtremumKind::Max,
                ..
            } => "Max",
            Op::Extremum {
                kind: ExtremumKind::Min,
                ..
            } => "Min",
            Op::Remap { .. } => "Remap",
            Op::Unary { .. } => "Lookup",
            Op::Divide { .. } => "Divide",
            Op::Sqrt => "Sqrt",
            Op::Gather { .. } => "Gather",
        }
    }
}

/// One node of the float graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Name of the ONNX/tract node it comes from.
    pub name: String,
    /// The ONNX-level op(s) it was lowered from, for `inspect`.
    pub source_op: String,
    /// The lowered op.
    pub op: Op,
    /// Node ids of its inputs (slots in order).
    pub inputs: Vec<usize>,
    /// Output shape.
    pub shape: Vec<usize>,
}

impl Node {
    /// Number of output elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a zero-sized output.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A float graph in topological order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Nodes; a node's inputs always come before it.
    pub nodes: Vec<Node>,
    /// Node id of each graph input.
    pub inputs: Vec<usize>,
    /// Node id of each graph output.
    pub outputs: Vec<usize>,
    /// The largest finite value an attention mask leaves an excluded entry at (activations
    /// aside), over the Softmaxes that exclude entries: quantization checks that the
    /// calibrated activations keep such entries negligible. `None` without finite masks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_level: Option<f32>,
}

impl Graph {
    /// Evaluates in f64, returning every node's values (used for calibration and checks).
    pub fn eval(&self, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let mut values: Vec<Vec<f64>> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let ins: Vec<&[f64]> = node.inputs.iter().map(|&i| values[i].as_slice()).collect();
            let src = |s: &Src<f32>| match *s {
                Src::Elem { slot, idx } => ins[slot as usize][idx as usize],
                Src::Const(c) => c as f64,
            };
            let out = match &node.op {
                Op::Input { index } => inputs[*index].clone(),
                Op::Param { values } => values.iter().map(|&v| v as f64).collect(),
                Op::Linear { terms, bias } => terms
                    .iter()
                    .zip(bias)
                    .map(|(row, b)| {
                        row.iter().fold(*b as f64, |acc, &(s, i, c)| {
                            acc + c as f64 * ins[s as usize][i as usize]
                        })
                    })
                    .collect(),
                Op::Bilinear { pairs } => pairs
                    .iter()
                    .map(|row| {
                        row.iter()
                            .map(|&(a, b)| ins[0][a as usize] * ins[1][b as usize])
                            .sum()
                    })
                    .collect(),
                Op::Extremum { kind, candidates } => candidates
                    .iter()
                    .map(|row| {
                        let it = row.iter().map(src);
                        match kind {
                            ExtremumKind::Max => it.fold(f64::NEG_INFINITY, f64::max),
                            ExtremumKind::Min => it.fold(f64::INFINITY, f64::min),
                        }
                    })
                    .collect(),
                Op::Remap { srcs } => srcs.iter().map(src).collect(),
                Op::Unary { func } => ins[0].iter().map(|&x| func.apply(x)).collect(),
                Op::Sqrt => ins[0].iter().map(|&x| x.sqrt()).collect(),
                Op::Divide { pairs } => pairs
                    .iter()
                    .map(|&(a, b)| ins[0][a as usize] / ins[1][b as usize])
                    .collect(),
                // An invalid index has no value; the quantized graph refuses it by name.
                Op::Gather { tables, picks } => picks
                    .iter()
                    .map(|&(i, c)| {
                        let col = &tables[c as usize];
                        gather_index(ins[0][i as usize], col.len())
                            .map_or(f64::NAN, |j| col[j] as f64)
                    })
                    .collect(),
            };
            values.push(out);
        }
        values
    }

    /// Shapes of the graph inputs.
    pub fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.inputs
            .iter()
            .map(|&i| self.nodes[i].shape.clone())
            .collect()
    }

    /// Shapes of the graph outputs.
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.outputs
            .iter()
            .map(|&i| self.nodes[i].shape.clone())
            .collect()
    }
}
