//! The quantized graph and its integer reference evaluator: the one source of truth that the
//! circuit's witness, the public instances and the expected outputs all follow bit for bit.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::graph::{ExtremumKind, Src, UnaryFn};
use crate::sparse::Rows;

/// One integer op. Values are fixed-point at the graph's activation scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QOp {
    /// Graph input `index`, range-checked to the activation bits (or to `bits`).
    Input {
        /// Position among graph inputs.
        index: usize,
        /// Signed bits of its range check when not the activation bits (0): a segment's
        /// input that an earlier segment computed ([`crate::segment`]) keeps the width of
        /// the value it stands for, which may exceed the activation bits (a residual sum).
        #[serde(default, skip_serializing_if = "is_zero")]
        bits: u32,
    },
    /// A committed weight tensor at the activation scale: private witnesses range-checked to
    /// the graph's `weight_bits` and pinned by the weight commitment, not by the key.
    Param {
        /// The quantized values, row-major.
        values: Vec<i64>,
    },
    /// `floor((bias + Σ coeff · x) / 2^shift)`; range-checked when `shift > 0`.
    /// The bias already holds the rounding half `2^(shift-1)`.
    Linear {
        /// `(slot, idx, coeff)` per output element.
        terms: Rows<(u32, u32, i64)>,
        /// Bias per output element, at scale `activation + shift`.
        bias: Vec<i64>,
        /// Right shift applied after accumulation.
        shift: u32,
    },
    /// `floor((2^(shift-1) + Σ a · b) / 2^shift)`, range-checked.
    Bilinear {
        /// Index pairs into input 0 and input 1.
        pairs: Rows<(u32, u32)>,
        /// Right shift (the activation scale).
        shift: u32,
    },
    /// Max or min over candidates.
    Extremum {
        /// Max or min.
        kind: ExtremumKind,
        /// Candidates per output element.
        candidates: Rows<Src<i64>>,
    },
    /// Data movement.
    Remap {
        /// Source of each output element.
        srcs: Vec<Src<i64>>,
    },
    /// `floor(sqrt(v · 2^shift))` (the root of a value at the activation scale, at that
    /// scale); the input must not be negative. Range-checked.
    Sqrt {
        /// The activation scale.
        shift: u32,
    },
    /// `round(a · 2^shift / b)` for each pair `(a, b)` of input 0 and input 1, as
    /// `floor((a · 2^(shift+1) + b) / 2b)`; the divisor must be positive. Range-checked.
    Divide {
        /// Numerator and denominator index per output element.
        pairs: Vec<(u32, u32)>,
        /// The activation scale (the quotient keeps it).
        shift: u32,
    },
    /// A non-linear function by table and linear interpolation (see [`LookupTable`]);
    /// range-checked.
    Lookup {
        /// The function the table samples (for listings; the table is the semantics).
        func: UnaryFn,
        /// The samples.
        table: LookupTable,
    },
    /// `out[o] = tables[col](in[idx] / 2^shift)` for pick `o = (idx, col)`: a Gather at
    /// indices from the input. Each table is exact (step 1, `lo = −V`, the `2V` entries of
    /// its column for indices `−V … V−1`, and one padding sample); an index must be an exact
    /// multiple of `2^shift` (an integer at the activation scale). Not range-checked: every
    /// output is a table entry.
    Gather {
        /// One table per column.
        tables: Vec<LookupTable>,
        /// Per output element: the index element and the column.
        picks: Vec<(u32, u32)>,
        /// The activation scale of the indices.
        shift: u32,
    },
}

/// `f` sampled every `2^shift` input units: `values[i] = round(f((lo + i)·2^shift) )` at the
/// activation scale. For an input `x`: `t = floor(x / 2^shift)`, `r = x − t·2^shift`,
/// `y = v[t−lo] + floor(((v[t−lo+1] − v[t−lo])·r + 2^(shift−1)) / 2^shift)`; `t` must lie in
/// `[lo, lo + values.len() − 1)`, which doubles as the input's range check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LookupTable {
    /// log2 of the sampling step, in input units.
    pub shift: u32,
    /// The first sample's `t`.
    pub lo: i64,
    /// Samples at `t = lo, lo + 1, …`.
    pub values: Vec<i64>,
}

impl LookupTable {
    /// `f(x)` as the circuit computes it, or `None` outside the table.
    pub fn eval(&self, x: i64) -> Option<i64> {
        let t = x >> self.shift;
        let r = (x - (t << self.shift)) as i128;
        let i = usize::try_from(t.checked_sub(self.lo)?).ok()?;
        let (y0, y1) = (
            *self.values.get(i)? as i128,
            *self.values.get(i + 1)? as i128,
        );
        let half = if self.shift > 0 {
            1i128 << (self.shift - 1)
        } else {
            0
        };
        Some((y0 + floor_shift((y1 - y0) * r + half, self.shift)) as i64)
    }

    /// The largest `|f(x) − table(x)|` over the table's domain, in real units at `scale`:
    /// linear interpolation between samples bends less than `f`, most between samples.
    /// Checked at eight points per interval (exact for the sample points themselves).
    pub fn max_error(&self, func: UnaryFn, scale: u32) -> f64 {
        let unit = (1u64 << scale) as f64;
        let step = 1i64 << self.shift;
        let reachable = func
            .min_input(scale)
            .map_or(i64::MIN, |m| (m * unit) as i64);
        let mut worst = 0f64;
        for i in 0..self.values.len().saturating_sub(1) {
            let t = self.lo + i as i64;
            for j in 0..8 {
                let x = (t << self.shift) + j * step / 8;
                if x < reachable {
                    continue;
                }
                if let Some(y) = self.eval(x) {
                    let exact = func.apply(x as f64 / unit);
                    worst = worst.max((y as f64 / unit - exact).abs());
                }
            }
        }
        worst
    }

    /// The inputs it covers, `[lo·2^shift, (lo + len − 1)·2^shift)`.
    pub fn domain(&self) -> (i64, i64) {
        let last = self.lo + self.values.len() as i64 - 1;
        (self.lo << self.shift, last << self.shift)
    }

    /// The largest `|value|` in the table (every interpolated output lies within it).
    pub fn max_abs(&self) -> u128 {
        self.values
            .iter()
            .map(|v| v.unsigned_abs() as u128)
            .max()
            .unwrap_or(0)
    }
}

impl QOp {
    /// True when the op's outputs are range-checked to the activation bits in the circuit.
    pub fn is_range_checked(&self) -> bool {
        match self {
            QOp::Input { .. }
            | QOp::Bilinear { .. }
            | QOp::Lookup { .. }
            | QOp::Divide { .. }
            | QOp::Sqrt { .. } => true,
            QOp::Linear { shift, .. } => *shift > 0,
            // A Param is checked to the weight bits, not the activation bits.
            QOp::Param { .. } | QOp::Extremum { .. } | QOp::Remap { .. } | QOp::Gather { .. } => {
                false
            }
        }
    }
}

/// One node of the quantized graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QNode {
    /// Name of the source node.
    pub name: String,
    /// ONNX-level op it came from.
    pub source_op: String,
    /// The integer op.
    pub op: QOp,
    /// Input node ids.
    pub inputs: Vec<usize>,
    /// Output shape.
    pub shape: Vec<usize>,
    /// Static bound: every honest value satisfies `|v| <= bound`.
    pub bound: u128,
}

impl QNode {
    /// Number of output elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for zero-sized outputs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A quantized graph in topological order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QGraph {
    /// Nodes; inputs come first.
    pub nodes: Vec<QNode>,
    /// Node ids of the graph inputs.
    pub inputs: Vec<usize>,
    /// Node ids of the graph outputs.
    pub outputs: Vec<usize>,
    /// Activation scale: a value `v` stands for `v / 2^scale`.
    pub scale: u32,
    /// Scale of non-integer coefficients.
    pub param_scale: u32,
    /// Signed bits of every range-checked value: `-2^(bits-1) <= v < 2^(bits-1)`.
    pub act_bits: u32,
    /// Signed bits of every [`QOp::Param`] value (0: the weights are constants).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_bits: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Every node's integer values from one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Values per node, row-major.
    pub values: Vec<Vec<i64>>,
}

/// Fixed point at `scale` → float: `v / 2^scale`.
pub fn dequantize(v: i128, scale: u32) -> f64 {
    v as f64 / (1u64 << scale) as f64
}

/// `floor(acc / 2^shift)` (the bias holds the rounding half).
pub fn floor_shift(acc: i128, shift: u32) -> i128 {
    acc >> shift
}

/// `floor(sqrt(v · 2^shift))` for `v ≥ 0`; `None` for a negative `v`.
pub fn isqrt_scaled(v: i128, shift: u32) -> Option<i128> {
    if v < 0 {
        return None;
    }
    let u = v.checked_mul(1i128 << shift)?;
    // The float root is within a few units; step to the exact floor.
    let mut s = (u as f64).sqrt() as i128;
    while s * s > u {
        s -= 1;
    }
    while (s + 1) * (s + 1) <= u {
        s += 1;
    }
    Some(s)
}

/// `round(a · 2^shift / b)` (half up) for `b > 0`; `None` for a non-positive divisor.
pub fn divide(a: i128, b: i128, shift: u32) -> Option<i128> {
    if b <= 0 {
        return None;
    }
    let num = a.checked_mul(1i128 << (shift + 1))?.checked_add(b)?;
    Some(num.div_euclid(2 * b))
}

/// Float inputs → fixed point at `scale`, checked against the graph's input `shapes` (count
/// and length), for NaN/Inf, and for the signed `act_bits` range every input is checked to.
pub fn quantize_input(
    data: &[Vec<f64>],
    shapes: &[Vec<usize>],
    scale: u32,
    act_bits: u32,
) -> Result<Vec<Vec<i64>>> {
    if data.len() != shapes.len() {
        return Err(ModelError::Input(format!(
            "the model has {} input(s), the input file has {}",
            shapes.len(),
            data.len()
        )));
    }
    let limit = 1i128 << (act_bits - 1);
    data.iter()
        .zip(shapes)
        .enumerate()
        .map(|(i, (xs, shape))| {
            let want: usize = shape.iter().product();
            if xs.len() != want {
                return Err(ModelError::Input(format!(
                    "input {i} has {} values, the model expects {want} (shape {shape:?})",
                    xs.len()
                )));
            }
            xs.iter()
                .enumerate()
                .map(|(j, &x)| {
                    if !x.is_finite() {
                        return Err(ModelError::Input(format!(
                            "input {i}[{j}] is {x}: NaN and Inf are not accepted"
                        )));
                    }
                    let q = (x * (1u64 << scale) as f64).round();
                    if q.abs() >= limit as f64 {
                        return Err(ModelError::OutOfRange {
                            node: format!("input {i}[{j}]"),
                            value: q as i128,
                            bits: act_bits,
                        });
                    }
                    Ok(q as i64)
                })
                .collect()
        })
        .collect()
}

/// `bias + Σ a·b` without overflowing i128.
fn checked_dot(bias: i128, mut terms: impl Iterator<Item = (i128, i128)>) -> Option<i128> {
    terms.try_fold(bias, |acc, (a, b)| acc.checked_add(a.checked_mul(b)?))
}

fn overflow(node: &str) -> ModelError {
    ModelError::TooLarge(format!(
        "an accumulator at node \"{node}\" overflows 127 bits"
    ))
}

impl QGraph {
    /// The largest interpolation error of any of its lookup tables, in real units (0 without
    /// tables): what a function node adds to the fixed-point rounding error.
    pub fn lookup_error(&self) -> f64 {
        self.nodes
            .iter()
            .filter_map(|n| match &n.op {
                QOp::Lookup { func, table } => Some(table.max_error(*func, self.scale)),
                _ => None,
            })
            .fold(0.0, f64::max)
    }

    /// Signed bits input node `node` is range-checked to.
    pub fn input_bits(&self, node: usize) -> u32 {
        match self.nodes[node].op {
            QOp::Input { bits, .. } if bits > 0 => bits,
            _ => self.act_bits,
        }
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

    /// Float → fixed point, with the checks a user input needs (count, NaN/Inf, range).
    pub fn quantize_input(&self, data: &[Vec<f64>]) -> Result<Vec<Vec<i64>>> {
        quantize_input(data, &self.input_shapes(), self.scale, self.act_bits)
    }

    /// Fixed point → float.
    pub fn dequantize(&self, v: i64) -> f64 {
        dequantize(v as i128, self.scale)
    }

    /// Evaluates on quantized inputs, checking every range the circuit will check.
    pub fn eval(&self, inputs: &[Vec<i64>]) -> Result<Trace> {
        let limit = 1i128 << (self.act_bits - 1);
        let mut values: Vec<Vec<i64>> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let ins: Vec<&[i64]> = node.inputs.iter().map(|&i| values[i].as_slice()).collect();
            let src = |s: &Src<i64>| -> i128 {
                match *s {
                    Src::Elem { slot, idx } => ins[slot as usize][idx as usize] as i128,
                    Src::Const(c) => c as i128,
                }
            };
            let wide: Vec<i128> = match &node.op {
                QOp::Input { index, .. } => {
                    let x = inputs
                        .get(*index)
                        .ok_or_else(|| ModelError::Input(format!("missing input {index}")))?;
                    if x.len() != node.len() {
                        return Err(ModelError::Input(format!(
                            "input {index} has {} values, expected {}",
                            x.len(),
                            node.len()
                        )));
                    }
                    x.iter().map(|&v| v as i128).collect()
                }
                QOp::Param { values } => values.iter().map(|&v| v as i128).collect(),
                QOp::Linear { terms, bias, shift } => terms
                    .iter()
                    .zip(bias)
                    .map(|(row, &b)| {
                        let products = row
                            .iter()
                            .map(|&(s, i, c)| (c as i128, ins[s as usize][i as usize] as i128));
                        checked_dot(b as i128, products)
                            .map(|acc| floor_shift(acc, *shift))
                            .ok_or_else(|| overflow(&node.name))
                    })
                    .collect::<Result<_>>()?,
                QOp::Bilinear { pairs, shift } => pairs
                    .iter()
                    .map(|row| {
                        let products = row.iter().map(|&(a, b)| {
                            (ins[0][a as usize] as i128, ins[1][b as usize] as i128)
                        });
                        checked_dot(1i128 << (shift - 1), products)
                            .map(|acc| floor_shift(acc, *shift))
                            .ok_or_else(|| overflow(&node.name))
                    })
                    .collect::<Result<_>>()?,
                QOp::Extremum { kind, candidates } => candidates
                    .iter()
                    .map(|row| {
                        let it = row.iter().map(src);
                        match kind {
                            ExtremumKind::Max => it.max(),
                            ExtremumKind::Min => it.min(),
                        }
                        .unwrap_or(0)
                    })
                    .collect(),
                QOp::Remap { srcs } => srcs.iter().map(src).collect(),
                QOp::Sqrt { shift } => ins[0]
                    .iter()
                    .map(|&v| {
                        isqrt_scaled(v as i128, *shift).ok_or_else(|| ModelError::OutOfRange {
                            node: node.name.clone(),
                            value: v as i128,
                            bits: self.act_bits,
                        })
                    })
                    .collect::<Result<_>>()?,
                QOp::Divide { pairs, shift } => pairs
                    .iter()
                    .map(|&(a, b)| {
                        let (a, b) = (ins[0][a as usize] as i128, ins[1][b as usize] as i128);
                        divide(a, b, *shift).ok_or_else(|| ModelError::OutOfRange {
                            node: node.name.clone(),
                            value: b,
                            bits: self.act_bits,
                        })
                    })
                    .collect::<Result<_>>()?,
                QOp::Gather {
                    tables,
                    picks,
                    shift,
                } => picks
                    .iter()
                    .map(|&(i, c)| {
                        let x = ins[0][i as usize];
                        let table = &tables[c as usize];
                        let t = x >> shift;
                        (t << shift == x)
                            .then(|| table.eval(t))
                            .flatten()
                            .map(|y| y as i128)
                            .ok_or_else(|| ModelError::BadIndex {
                                node: node.name.clone(),
                                value: x as f64 / (1u64 << shift) as f64,
                                len: table.values.len() / 2,
                            })
                    })
                    .collect::<Result<_>>()?,
                QOp::Lookup { table, func } => ins[0]
                    .iter()
                    .map(|&x| {
                        table.eval(x).map(|y| y as i128).ok_or_else(|| {
                            let (lo, hi) = table.domain();
                            ModelError::OutsideTable {
                                node: node.name.clone(),
                                func: *func,
                                value: x,
                                lo,
                                hi,
                            }
                        })
                    })
                    .collect::<Result<_>>()?,
            };
            let checked = node.op.is_range_checked();
            let limit = match node.op {
                QOp::Input { bits, .. } if bits > 0 => 1i128 << (bits - 1),
                _ => limit,
            };
            let out = wide
                .into_iter()
                .map(|v| {
                    let within = if checked {
                        -limit <= v && v < limit
                    } else {
                        v.unsigned_abs() <= node.bound
                    };
                    if !within {
                        return Err(ModelError::OutOfRange {
                            node: node.name.clone(),
                            value: v,
                            bits: self.act_bits,
                        });
                    }
                    Ok(v as i64)
                })
                .collect::<Result<Vec<_>>>()?;
            values.push(out);
        }
        Ok(Trace { values })
    }

    /// The graph outputs of a trace.
    pub fn outputs_of(&self, trace: &Trace) -> Vec<Vec<i64>> {
        self.outputs
            .iter()
            .map(|&o| trace.values[o].clone())
            .collect()
    }

    /// The committed weight tensors ([`QOp::Param`] nodes), in node order: `(node, values)`.
    pub fn params(&self) -> Vec<(usize, &[i64])> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(id, n)| match &n.op {
                QOp::Param { values } => Some((id, values.as_slice())),
                _ => None,
            })
            .collect()
    }

    /// The graph with every committed weight set to 0: what two trainings of one
    /// architecture share.
    pub fn architecture(&self) -> QGraph {
        let mut a = self.clone();
        for n in &mut a.nodes {
            if let QOp::Param { values } = &mut n.op {
                values.iter_mut().for_each(|v| *v = 0);
            }
        }
        a
    }

    /// Whether the weights are committed witnesses rather than constants of the circuit.
    pub fn hashes_weights(&self) -> bool {
        self.nodes.iter().any(|n| matches!(n.op, QOp::Param { .. }))
    }

    /// Total number of coefficient terms (a size measure for `inspect` and limits).
    pub fn total_terms(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                QOp::Linear { terms, .. } => terms.total(),
                QOp::Bilinear { pairs, .. } => pairs.total(),
                QOp::Extremum { candidates, .. } => candidates.total(),
                _ => 0,
            })
            .sum()
    }
}
