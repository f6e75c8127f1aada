//! Float graph → fixed-point [`QGraph`].
//!
//! Every tensor lives at one activation scale `2^scale`. Coefficients that are integers (Add,
//! Sub, pooling sums) or short binary fractions stay exact; others are rounded at
//! `2^param_scale` and the accumulation is shifted back with round-half-up, range-checked.
//! Calibration sets the signed bit width of range-checked values (plus headroom).

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::graph::{Graph, Op, Src, UnaryFn};
use crate::qgraph::{LookupTable, QGraph, QNode, QOp};
use crate::sparse::Rows;

#[cfg(test)]
mod tests;
mod weights;

pub use weights::quantize_params;
use weights::{quantize_param, weight_bits};

/// Knobs of quantization (all have defaults a user rarely needs to change).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizeOptions {
    /// Activation scale exponent.
    pub scale: u32,
    /// Scale exponent of non-integer coefficients.
    pub param_scale: u32,
    /// Extra signed bits above the calibration maximum for range-checked values.
    pub range_headroom_bits: u32,
    /// The activation width to use instead of calibration's (`compile --like`: a sibling's
    /// circuit, so two trainings of one architecture get one verifying key); calibration
    /// must fit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_bits: Option<u32>,
    /// The width of committed weights to use instead of the widest weight's (`--like`);
    /// every weight must fit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_bits: Option<u32>,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        Self {
            scale: 16,
            param_scale: 16,
            range_headroom_bits: 3,
            act_bits: None,
            weight_bits: None,
        }
    }
}

/// Every value, range-checked or not, stays below this bound (so it fits an i64 and any
/// product of two fits an i128).
const MAX_BOUND: u128 = 1 << 62;

/// Largest activation bit width: keeps every accumulator far from the field modulus.
const MAX_ACT_BITS: u32 = 48;

/// Quantizes `graph`, calibrating ranges on `calibration` (float inputs).
pub fn quantize(graph: &Graph, calibration: &[Vec<f64>], opts: &QuantizeOptions) -> Result<QGraph> {
    quantize_samples(graph, &[calibration.to_vec()], opts)
}

/// Quantizes `graph`, calibrating ranges on every sample (each one float input set): the
/// activation width covers the largest value any sample drives any range-checked node to.
pub fn quantize_samples(
    graph: &Graph,
    samples: &[Vec<Vec<f64>>],
    opts: &QuantizeOptions,
) -> Result<QGraph> {
    if opts.scale == 0 || opts.scale > 24 || opts.param_scale > 24 {
        return Err(ModelError::Input("scales must be in 1..=24".into()));
    }
    if samples.is_empty() {
        return Err(ModelError::Input("no calibration sample".into()));
    }
    let graph = fuse_affine_chains(graph);
    // Each node's largest |value| over the samples (one evaluation at a time in memory).
    let mut node_max = vec![0f64; graph.nodes.len()];
    for sample in samples {
        check_sample(&graph, sample)?;
        for (m, vals) in node_max.iter_mut().zip(graph.eval(sample)) {
            *m = vals.iter().fold(*m, |m, v| m.max(v.abs()));
        }
    }
    let s = opts.scale;
    let unit = (1u64 << s) as f64;
    // Widest range-checked value over the calibration samples.
    let mut max_abs = 1.0f64;
    let mut nodes: Vec<QNode> = Vec::with_capacity(graph.nodes.len());
    for (id, node) in graph.nodes.iter().enumerate() {
        let qsrc = |x: &Src<f32>| -> Result<Src<i64>> {
            Ok(match *x {
                Src::Elem { slot, idx } => Src::Elem { slot, idx },
                Src::Const(c) => Src::Const(to_fixed(c as f64 * unit, &node.name)?),
            })
        };
        let op = match &node.op {
            Op::Input { index } => QOp::Input {
                index: *index,
                bits: 0,
            },
            // Committed weights keep the activation scale, so products with them rescale as
            // any product of two activations does, and nothing depends on their values.
            Op::Param { values } => QOp::Param {
                values: quantize_param(values, unit, &node.name)?,
            },
            Op::Linear { terms, bias } => {
                let coeff_scale =
                    coeff_scale(terms.entries().iter().map(|t| t.2), opts.param_scale);
                let cu = (1u64 << coeff_scale) as f64;
                let half = if coeff_scale > 0 {
                    1i64 << (coeff_scale - 1)
                } else {
                    0
                };
                let terms = terms.try_map_rows(|row| {
                    row.iter()
                        .map(|&(sl, i, c)| Ok((sl, i, to_fixed(c as f64 * cu, &node.name)?)))
                        .collect()
                })?;
                let terms: Rows<_> = terms
                    .iter()
                    .map(|r| r.iter().copied().filter(|t| t.2 != 0).collect())
                    .collect();
                let bias = bias
                    .iter()
                    .map(|&b| Ok(to_fixed(b as f64 * unit * cu, &node.name)? + half))
                    .collect::<Result<_>>()?;
                QOp::Linear {
                    terms,
                    bias,
                    shift: coeff_scale,
                }
            }
            Op::Bilinear { pairs } => QOp::Bilinear {
                pairs: pairs.clone(),
                shift: s,
            },
            Op::Extremum { kind, candidates } => QOp::Extremum {
                kind: *kind,
                candidates: candidates.try_map_rows(|row| row.iter().map(qsrc).collect())?,
            },
            Op::Remap { srcs } => QOp::Remap {
                srcs: srcs.iter().map(qsrc).collect::<Result<_>>()?,
            },
            Op::Sqrt => QOp::Sqrt { shift: s },
            Op::Divide { pairs } => QOp::Divide {
                pairs: pairs.clone(),
                shift: s,
            },
            Op::Gather { tables, picks } => QOp::Gather {
                tables: tables
                    .iter()
                    .map(|col| gather_table(col, unit, &node.name))
                    .collect::<Result<_>>()?,
                picks: picks.clone(),
                shift: s,
            },
            // The table needs the activation width, known once every node is calibrated.
            Op::Unary { func } => QOp::Lookup {
                func: *func,
                table: LookupTable::default(),
            },
        };
        if op.is_range_checked() {
            max_abs = max_abs.max(node_max[id] * unit);
        }
        nodes.push(QNode {
            name: node.name.clone(),
            source_op: node.source_op.clone(),
            op,
            inputs: node.inputs.clone(),
            shape: node.shape.clone(),
            bound: 0,
        });
    }
    let needed = 64 - (max_abs.ceil() as u64).leading_zeros() + 1;
    let calibrated = (needed + opts.range_headroom_bits).max(s + 2);
    let act_bits = match opts.act_bits {
        Some(given) if given < calibrated => {
            return Err(ModelError::Input(format!(
                "calibration needs {calibrated}-bit activations; the circuit to match has {given}"
            )))
        }
        Some(given) => given,
        None => calibrated,
    };
    if act_bits > MAX_ACT_BITS {
        return Err(ModelError::TooLarge(format!(
            "calibrated activations need {act_bits} bits (limit {MAX_ACT_BITS}); lower --scale"
        )));
    }
    check_mask_level(&graph, act_bits, s)?;
    let weight_bits = weight_bits(&nodes, opts.weight_bits)?;
    let mut q = QGraph {
        nodes,
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.clone(),
        scale: s,
        param_scale: opts.param_scale,
        act_bits,
        weight_bits,
    };
    for node in &mut q.nodes {
        if let QOp::Lookup { func, table } = &mut node.op {
            *table = lookup_table(*func, s, act_bits, &node.name)?;
            check_table_error(*func, table, s, &node.name)?;
        }
    }
    compute_bounds(&mut q)?;
    Ok(q)
}

/// The exact table of one Gather column: indices `−V … V−1` (ONNX's negative indices count
/// from the end) at step 1, plus a padding sample so the last index has a successor.
fn gather_table(col: &[f32], unit: f64, node: &str) -> Result<LookupTable> {
    let q: Vec<i64> = col
        .iter()
        .map(|&v| to_fixed(v as f64 * unit, node))
        .collect::<Result<_>>()?;
    let mut values = Vec::with_capacity(2 * q.len() + 1);
    values.extend_from_slice(&q);
    values.extend_from_slice(&q);
    values.push(0);
    Ok(LookupTable {
        shift: 0,
        lo: -(q.len() as i64),
        values,
    })
}

/// The float graph's outputs on each sample (one list per graph output): what
/// [`measured_error`] compares with, computed once however many quantizations are tried.
pub fn float_outputs(graph: &Graph, samples: &[Vec<Vec<f64>>]) -> Result<Vec<Vec<Vec<f64>>>> {
    check_calibration(graph, samples)?;
    Ok(samples
        .iter()
        .map(|sample| {
            let vals = graph.eval(sample);
            graph.outputs.iter().map(|&o| vals[o].clone()).collect()
        })
        .collect())
}

/// Whether every calibration sample fits the graph's inputs (their number and sizes, finite
/// values); the service checks this at upload, before any job runs.
pub fn check_calibration(graph: &Graph, samples: &[Vec<Vec<f64>>]) -> Result<()> {
    if samples.is_empty() {
        return Err(ModelError::Input("no calibration sample".into()));
    }
    for (k, sample) in samples.iter().enumerate() {
        check_sample(graph, sample).map_err(|e| match e {
            ModelError::Input(m) if samples.len() > 1 => {
                ModelError::Input(format!("calibration sample {k}: {m}"))
            }
            other => other,
        })?;
    }
    Ok(())
}

/// The fixed-point graph's error on `samples` against the float graph's outputs on them
/// ([`float_outputs`]): the largest `max |fixed − float| / max |float|` over the samples
/// (outputs of every graph output together; the float maximum floored at `2^-scale` so an
/// all-zero output does not divide by zero). This is the "expected error" `inspect` reports
/// and `--target resources` bounds.
pub fn measured_error(
    q: &QGraph,
    samples: &[Vec<Vec<f64>>],
    float: &[Vec<Vec<f64>>],
) -> Result<f64> {
    let mut worst = 0f64;
    for (k, (sample, want)) in samples.iter().zip(float).enumerate() {
        // Every sample must evaluate within the ranges it calibrated (headroom included).
        let trace = q
            .quantize_input(sample)
            .and_then(|x| q.eval(&x))
            .map_err(|e| ModelError::Input(format!("calibration sample {k} does not fit: {e}")))?;
        let floor = 1.0 / (1u64 << q.scale) as f64;
        let mut max_float = floor;
        let mut max_diff = 0f64;
        for (want, fixed) in want.iter().zip(q.outputs_of(&trace)) {
            for (f, &x) in want.iter().zip(&fixed) {
                max_float = max_float.max(f.abs());
                max_diff = max_diff.max((q.dequantize(x) - f).abs());
            }
        }
        worst = worst.max(max_diff / max_float);
    }
    Ok(worst)
}

/// log2 of the samples in a lookup table at least: the step is the activation range over
/// this. A table this size fits the smallest circuits' rows.
pub const LOOKUP_TABLE_BITS: u32 = 12;

/// log2 of the samples in a lookup table at most: finer tables cost no cells (the step only
/// changes the width of the remainder's range check), only fixed rows, which a circuit whose
/// activations need that many samples has anyway (2^16 rows is k = 17).
pub const MAX_LOOKUP_TABLE_BITS: u32 = 16;

/// The interpolation error a table is refined towards, relative to its largest value (at
/// least 1): about 1e-3, so that a table is not what bounds a deep model's error (a 4-block
/// GPT-style decoder's GELU and softmax tables at 2^12 samples over a 26-bit range are off by
/// 6e-3 each, and its outputs by 1.8e-2; at 2^14 samples, 4e-4 and 1.3e-3).
pub const TABLE_ERROR_TARGET: f64 = 1.0 / 1024.0;

/// An excluded entry holds 0 where the float model holds its mask plus activations: the
/// Softmax reading it may leave it out only while `e^(mask + 2·A)` is below the output's
/// resolution, `A` the largest activation the width allows (an entry at most `mask + A`,
/// its row's maximum at least `−A`).
fn check_mask_level(graph: &Graph, act_bits: u32, scale: u32) -> Result<()> {
    let Some(level) = graph.mask_level else {
        return Ok(());
    };
    let a = (1u64 << (act_bits - 1)) as f64 / (1u64 << scale) as f64;
    let resolution = -((scale + 1) as f64) * std::f64::consts::LN_2;
    if level as f64 + 2.0 * a > resolution {
        return Err(ModelError::Input(format!(
            "an attention mask of {level} is not far enough below activations of up to {a}: \
             the entries it masks would not vanish from the softmax"
        )));
    }
    Ok(())
}

/// Samples `func` over the activation range `[-2^(act_bits-1), 2^(act_bits-1))` in
/// `2^LOOKUP_TABLE_BITS` to `2^MAX_LOOKUP_TABLE_BITS` steps, the fewest whose interpolation
/// error is within [`TABLE_ERROR_TARGET`], keeping the contiguous run around zero whose values
/// fit the activation range (so `e^x` stops where it would overflow: larger inputs are out of
/// range).
fn lookup_table(func: UnaryFn, scale: u32, act_bits: u32, node: &str) -> Result<LookupTable> {
    if func == UnaryFn::Ln8 {
        return root_log_table(scale, act_bits, node);
    }
    let mut bits = LOOKUP_TABLE_BITS;
    loop {
        let table = sampled_table(func, scale, act_bits, bits, node)?;
        if bits >= MAX_LOOKUP_TABLE_BITS
            || table.shift == 0
            || table.max_error(func, scale) <= table_error_target(func, &table, scale)
        {
            return Ok(table);
        }
        bits += 1;
    }
}

/// [`TABLE_ERROR_TARGET`] in real units: absolute, but relative to the largest value for `e^x`,
/// whose values, and their rounding, grow without bound (GELU's grow too, but it is straight
/// where they do: its error is where it bends, near 0).
fn table_error_target(func: UnaryFn, table: &LookupTable, scale: u32) -> f64 {
    match func {
        UnaryFn::Exp => {
            TABLE_ERROR_TARGET * (table.max_abs() as f64 / (1u64 << scale) as f64).max(1.0)
        }
        _ => TABLE_ERROR_TARGET,
    }
}

/// `func` sampled at `2^bits` points over the activation range (see [`lookup_table`]).
fn sampled_table(
    func: UnaryFn,
    scale: u32,
    act_bits: u32,
    bits: u32,
    node: &str,
) -> Result<LookupTable> {
    let shift = act_bits.saturating_sub(bits);
    let half_steps = 1i64 << (act_bits - 1 - shift);
    let limit = 1i128 << (act_bits - 1);
    let unit = (1u64 << scale) as f64;
    let sample = |t: i64| -> Option<i64> {
        let y = (func.apply((t << shift) as f64 / unit) * unit).round();
        (y.is_finite() && (y as i128).abs() < limit).then_some(y as i64)
    };
    if sample(0).is_none() {
        return Err(ModelError::TooLarge(format!(
            "{func:?} at node \"{node}\" does not fit the activation range at 0"
        )));
    }
    let mut lo = 0;
    while lo > -half_steps && sample(lo - 1).is_some() {
        lo -= 1;
    }
    let mut hi = 0;
    // Softmax's exponential never sees a positive input: one sample past 0 closes the
    // interval that holds x = 0, and the rest of the positive side would only add rows.
    let top = if func == UnaryFn::ExpNonPositive {
        1
    } else {
        half_steps
    };
    while hi < top && sample(hi + 1).is_some() {
        hi += 1;
    }
    let values = (lo..=hi)
        .map(|t| sample(t).expect("checked above"))
        .collect();
    Ok(LookupTable { shift, lo, values })
}

/// Largest interpolation error a table may have, relative to its largest value (at least 1):
/// a guard against tables too coarse to mean anything, not the accuracy target (typical
/// tables are orders of magnitude finer; `inspect` prints the actual figure).
pub const MAX_TABLE_ERROR: f64 = 1.0 / 32.0;

/// Refuses a table too coarse for its function: a wide activation range spreads the 4,096
/// samples so far apart that linear interpolation misses a curved function by more than
/// [`MAX_TABLE_ERROR`]. Refusing here is what keeps such a model from proving wrong values.
fn check_table_error(func: UnaryFn, table: &LookupTable, scale: u32, node: &str) -> Result<()> {
    let unit = (1u64 << scale) as f64;
    let err = table.max_error(func, scale);
    let allowed = MAX_TABLE_ERROR * (table.max_abs() as f64 / unit).max(1.0);
    if err > allowed {
        return Err(ModelError::TooLarge(format!(
            "the {func:?} table at node \"{node}\" would be off by up to {err:.3e} (allowed \
             {allowed:.3e}): its samples are 2^{} units apart because the activation range is \
             wide; calibrate on inputs closer to the real ones, or lower --range-headroom-bits",
            table.shift
        )));
    }
    Ok(())
}

/// `8·ln y` for `y` the eighth root of an activation (see the Log lowering): `y` is at most
/// `(2^(act_bits−1) / 2^scale)^(1/8)`, so `2^LOOKUP_TABLE_BITS` samples spread over `(0, that]`
/// rather than over the whole activation range. The table starts at the first sample that
/// fits the activation range (`8·ln y` falls without bound as `y → 0`); smaller inputs, and
/// `y = 0` (`ln 0`), are out of range.
fn root_log_table(scale: u32, act_bits: u32, node: &str) -> Result<LookupTable> {
    let func = UnaryFn::Ln8;
    let unit = (1u64 << scale) as f64;
    let limit = 1i128 << (act_bits - 1);
    let max_in = ((limit as f64 / unit).powf(0.125) * unit).ceil() as i64 + 1;
    let shift = (64 - (max_in as u64).leading_zeros()).saturating_sub(LOOKUP_TABLE_BITS);
    let hi = (max_in >> shift) + 1;
    let sample = |t: i64| -> Option<i64> {
        let y = (func.apply((t << shift) as f64 / unit) * unit).round();
        (y.is_finite() && (y as i128).abs() < limit).then_some(y as i64)
    };
    let lo = (1..=hi).find(|&t| sample(t).is_some()).ok_or_else(|| {
        ModelError::TooLarge(format!(
            "Log at node \"{node}\" does not fit the activation range: raise --scale"
        ))
    })?;
    let values = (lo..=hi)
        .map(|t| {
            sample(t).ok_or_else(|| {
                ModelError::TooLarge(format!(
                    "Log at node \"{node}\" does not fit the activation range"
                ))
            })
        })
        .collect::<Result<_>>()?;
    Ok(LookupTable { shift, lo, values })
}

/// Rounds a scaled constant to an integer, refusing NaN and values past the bound.
fn to_fixed(x: f64, node: &str) -> Result<i64> {
    let r = x.round();
    if !r.is_finite() || r.abs() >= MAX_BOUND as f64 {
        return Err(ModelError::TooLarge(format!(
            "a constant at node \"{node}\" is {x:e} in fixed point (NaN, infinite, or beyond 2^62)"
        )));
    }
    Ok(r as i64)
}

fn check_sample(graph: &Graph, calibration: &[Vec<f64>]) -> Result<()> {
    let shapes = graph.input_shapes();
    if calibration.len() != shapes.len() {
        return Err(ModelError::Input(format!(
            "the model has {} input(s), calibration has {}",
            shapes.len(),
            calibration.len()
        )));
    }
    for (i, (x, shape)) in calibration.iter().zip(&shapes).enumerate() {
        let want: usize = shape.iter().product();
        if x.len() != want {
            return Err(ModelError::Input(format!(
                "calibration input {i} has {} values, the model expects {want} (shape {shape:?})",
                x.len()
            )));
        }
        if let Some(v) = x.iter().find(|v| !v.is_finite()) {
            return Err(ModelError::Input(format!(
                "calibration input {i} holds {v}: NaN and Inf are not accepted"
            )));
        }
    }
    Ok(())
}

/// The scale for a Linear's coefficients: 0 when they are all integers, the smallest exact
/// power of two when they are short binary fractions, else `param_scale` bits of precision
/// relative to the largest coefficient (so 1/300 keeps as many significant bits as 0.7).
fn coeff_scale(coeffs: impl Iterator<Item = f32> + Clone, param_scale: u32) -> u32 {
    let max_abs = coeffs.clone().fold(0.0f64, |m, c| m.max((c as f64).abs()));
    let relative = if max_abs > 0.0 && max_abs < 1.0 {
        (-max_abs.log2()).floor() as u32
    } else {
        0
    };
    let max = (param_scale + relative).min(MAX_COEFF_SCALE);
    let mut e = 0;
    for c in coeffs {
        while e < max && (c as f64 * (1u64 << e) as f64).fract() != 0.0 {
            e += 1;
        }
        if e == max {
            break;
        }
    }
    e
}

/// Cap on coefficient scales, so `coefficient · activation` stays far inside i128 and the field.
const MAX_COEFF_SCALE: u32 = 40;

/// Static bounds `|v| <= bound` per node, from the range checks outward.
fn compute_bounds(q: &mut QGraph) -> Result<()> {
    let checked = 1u128 << (q.act_bits - 1);
    for id in 0..q.nodes.len() {
        let bound = {
            let node = &q.nodes[id];
            let b_in = |slot: u32| q.nodes[node.inputs[slot as usize]].bound;
            let src = |x: &Src<i64>| match *x {
                Src::Elem { slot, .. } => b_in(slot),
                Src::Const(c) => c.unsigned_abs() as u128,
            };
            match &node.op {
                // What the range check admits: a forger's weight may be −2^(bits−1).
                QOp::Param { .. } => 1u128 << (q.weight_bits - 1),
                op if op.is_range_checked() => checked,
                QOp::Linear { terms, bias, .. } => terms
                    .iter()
                    .zip(bias)
                    .map(|(r, b)| {
                        r.iter().fold(b.unsigned_abs() as u128, |a, &(sl, _, c)| {
                            a.saturating_add((c.unsigned_abs() as u128).saturating_mul(b_in(sl)))
                        })
                    })
                    .max()
                    .unwrap_or(0),
                QOp::Extremum { candidates, .. } => {
                    candidates.iter().flatten().map(src).max().unwrap_or(0)
                }
                QOp::Remap { srcs } => srcs.iter().map(src).max().unwrap_or(0),
                QOp::Gather { tables, .. } => tables.iter().map(|t| t.max_abs()).max().unwrap_or(0),
                _ => checked,
            }
        };
        if bound >= 1u128 << 100 {
            return Err(ModelError::TooLarge(format!(
                "values at node \"{}\" could exceed 2^100",
                q.nodes[id].name
            )));
        }
        q.nodes[id].bound = bound;
    }
    Ok(())
}

/// Folds chains into one Linear so a chain pays one rounding and one range check: a Linear
/// reading a single-consumer Remap reads the Remap's source instead, and a Linear whose rows
/// have at most one term (bias add, scaling, BatchNorm) folds into the single-consumer Linear
/// feeding it.
fn fuse_affine_chains(graph: &Graph) -> Graph {
    let mut g = graph.clone();
    let mut consumers = vec![0usize; g.nodes.len()];
    for n in &g.nodes {
        for &i in &n.inputs {
            consumers[i] += 1;
        }
    }
    for &o in &g.outputs {
        consumers[o] += 1;
    }
    for b in 0..g.nodes.len() {
        while let Some((a, fused, inputs)) = fuse_step(&g, &consumers, b) {
            let a_source = g.nodes[a].source_op.clone();
            let nb = &mut g.nodes[b];
            nb.op = fused;
            nb.inputs = inputs;
            nb.source_op = format!("{a_source}+{}", nb.source_op);
            consumers[a] = 0;
        }
    }
    prune_dead(g, &consumers)
}

/// One fusion of node `b` with its single input, if one applies.
fn fuse_step(g: &Graph, consumers: &[usize], b: usize) -> Option<(usize, Op, Vec<usize>)> {
    let nb = &g.nodes[b];
    let Op::Linear {
        terms: tb,
        bias: bb,
    } = &nb.op
    else {
        return None;
    };
    if nb.inputs.len() != 1 || consumers[nb.inputs[0]] != 1 {
        return None;
    }
    let a = nb.inputs[0];
    let na = &g.nodes[a];
    let mut terms = Rows::default();
    let mut bias = Vec::with_capacity(bb.len());
    match &na.op {
        Op::Remap { srcs } if na.inputs.len() == 1 => {
            for (row, &b0) in tb.iter().zip(bb) {
                let mut acc = b0;
                let mut out = Vec::with_capacity(row.len());
                for &(_, idx, c) in row {
                    match srcs[idx as usize] {
                        Src::Elem { slot, idx } => out.push((slot, idx, c)),
                        Src::Const(k) => acc += c * k,
                    }
                }
                terms.push_row(out);
                bias.push(acc);
            }
        }
        Op::Linear {
            terms: ta,
            bias: ba,
        } if tb.iter().all(|r| r.len() <= 1) => {
            for (row, &b0) in tb.iter().zip(bb) {
                match row.first() {
                    None => {
                        terms.push_row(Vec::new());
                        bias.push(b0);
                    }
                    Some(&(_, idx, c)) => {
                        terms.push_row(
                            ta.row(idx as usize)
                                .iter()
                                .map(|&(sl, i, ca)| (sl, i, ca * c)),
                        );
                        bias.push(b0 + c * ba[idx as usize]);
                    }
                }
            }
        }
        _ => return None,
    }
    Some((a, Op::Linear { terms, bias }, na.inputs.clone()))
}

/// Drops nodes no one reads (except inputs) and renumbers.
fn prune_dead(g: Graph, consumers: &[usize]) -> Graph {
    let keep: Vec<bool> = (0..g.nodes.len())
        .map(|i| consumers[i] > 0 || g.inputs.contains(&i))
        .collect();
    let mut new_id = vec![usize::MAX; g.nodes.len()];
    let mut nodes = Vec::new();
    for (i, mut n) in g.nodes.into_iter().enumerate() {
        if keep[i] {
            n.inputs = n.inputs.iter().map(|&x| new_id[x]).collect();
            new_id[i] = nodes.len();
            nodes.push(n);
        }
    }
    Graph {
        nodes,
        inputs: g.inputs.iter().map(|&i| new_id[i]).collect(),
        outputs: g.outputs.iter().map(|&i| new_id[i]).collect(),
        mask_level: g.mask_level,
    }
}
