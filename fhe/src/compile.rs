//! Compiles the imported float graph into an [`FheProgram`]: TFHE's own low-bit quantization.
//!
//! Every linear layer becomes leveled dot products with small integer weights, one scale per
//! output element, sized so that no accumulator can leave the message space for any input in
//! range (a worst-case bound, not a calibrated one: the server cannot see values, so a wrapped
//! accumulator would be a silent wrong answer) and so that the weights' 2-norm keeps the noise
//! under the failure bound. A wide layer's dot product is split into groups whose partial sums
//! are each requantized by a bootstrap and summed again, buying weight precision with
//! bootstraps. Each activation is one bootstrap per element that applies the function, the
//! rescale and the next layer's encoding at once. The last linear layer is decrypted as
//! accumulators and combined in the clear by the client.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use zkinfer_model::{ExtremumKind, Graph, Op, Src, UnaryFn};

use crate::error::{FheError, Result};
use crate::params::{ParamSet, DEFAULT_LOG2_P_FAIL};
use crate::program::{
    DotRow, FheProgram, InputSpec, OutElem, OutputSpec, Ref, ValueDef, PROGRAM_VERSION,
};

/// Choices of the FHE quantization; `None` fields are searched. In JSON every field is optional
/// (the defaults of [`FheOptions::default`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FheOptions {
    /// The parameter set.
    pub params: ParamSet,
    /// Bits per encrypted input element (at most the set's message bits).
    pub input_bits: Option<u32>,
    /// Bits per activation between layers.
    pub act_bits: Option<u32>,
    /// Groups each dot product is split into (1: one accumulator per neuron).
    pub groups: Option<usize>,
    /// Groups of the last layer's dot products, which the client decrypts and adds up (more
    /// groups: finer weights and more result ciphertexts, no bootstrap).
    pub output_groups: Option<usize>,
    /// Bound on log2 of one bootstrap's failure probability.
    pub log2_p_fail: f64,
    /// Most bootstraps per sample a searched candidate may use.
    pub max_bootstraps: Option<usize>,
}

impl Default for FheOptions {
    fn default() -> Self {
        FheOptions {
            params: ParamSet::M3C3,
            input_bits: None,
            act_bits: None,
            groups: None,
            output_groups: None,
            log2_p_fail: DEFAULT_LOG2_P_FAIL,
            max_bootstraps: None,
        }
    }
}

/// One quantization tried, and how well it did on the calibration samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Bits per input element.
    pub input_bits: u32,
    /// Bits per activation.
    pub act_bits: u32,
    /// Groups per dot product.
    pub groups: usize,
    /// Groups per dot product of the last layer (decrypted as they are).
    pub output_groups: usize,
    /// Bootstraps per sample.
    pub bootstraps: usize,
    /// max |fhe − float| / max |float| over the calibration samples.
    pub error: f64,
    /// RMS(fhe − float) / RMS(float) over the calibration samples: what the search minimizes
    /// (the maximum is ruled by a few outliers).
    pub rms_error: f64,
    /// Share of samples whose first output has its largest element where the float model's is.
    pub top1_agreement: f64,
}

/// The program chosen and the candidates measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Compiled {
    /// The program.
    pub program: FheProgram,
    /// The chosen candidate.
    pub chosen: Candidate,
    /// Every candidate tried (for `inspect`: the accuracy/bootstrap trade-off).
    pub candidates: Vec<Candidate>,
}

/// Compiles with the options, searching the unset ones for the smallest error on the samples.
pub fn compile(graph: &Graph, samples: &[Vec<Vec<f64>>], opts: &FheOptions) -> Result<Compiled> {
    if samples.is_empty() {
        return Err(FheError::Input("no calibration sample".into()));
    }
    check_ops(graph)?;
    let floats: Vec<Vec<Vec<f64>>> = samples.iter().map(|s| graph.eval(s)).collect();
    let ranges = node_ranges(graph, &floats);
    let msg_bits = opts.params.message_modulus().trailing_zeros();
    let m_bits = opts.params.modulus().trailing_zeros();
    let ins: Vec<u32> = opts
        .input_bits
        .map_or((1..=msg_bits).collect(), |b| vec![b]);
    let acts: Vec<u32> = opts.act_bits.map_or((2..m_bits).collect(), |b| vec![b]);
    let groups: Vec<usize> = opts.groups.map_or(vec![1, 2, 3, 4], |g| vec![g]);
    let out_groups: Vec<usize> = opts.output_groups.map_or(vec![1, 2, 4, 8], |g| vec![g]);
    if groups.iter().chain(&out_groups).any(|&g| g == 0) {
        return Err(FheError::DoesNotFit("groups must be at least 1".into()));
    }
    if let Some(&b) = ins.iter().find(|&&b| b == 0 || b > msg_bits) {
        return Err(FheError::DoesNotFit(format!(
            "{b} input bits: {} encrypts 1 to {msg_bits} bits per input",
            opts.params.name()
        )));
    }
    if let Some(&b) = acts.iter().find(|&&b| b == 0 || b >= m_bits) {
        return Err(FheError::DoesNotFit(format!(
            "{b} activation bits: {} holds 1 to {} bits between layers",
            opts.params.name(),
            m_bits - 1
        )));
    }
    let want: Vec<Vec<Vec<f64>>> = floats
        .iter()
        .map(|vals| graph.outputs.iter().map(|&o| vals[o].clone()).collect())
        .collect();
    let mut best: Option<(Candidate, FheProgram)> = None;
    let mut candidates = Vec::new();
    for &input_bits in &ins {
        for &act_bits in &acts {
            for (&g, &og) in groups
                .iter()
                .flat_map(|g| out_groups.iter().map(move |o| (g, o)))
            {
                let cfg = Config {
                    params: opts.params,
                    input_bits,
                    act_bits,
                    groups: g,
                    output_groups: og,
                    max_norm: opts.params.max_norm(opts.log2_p_fail),
                };
                let program = build(graph, &ranges, &cfg, samples)?;
                program.check_bounds()?;
                let bootstraps = program.stats().bootstraps;
                let (error, rms_error, top1_agreement) = measure(&program, samples, &want)?;
                let c = Candidate {
                    input_bits,
                    act_bits,
                    groups: g,
                    output_groups: og,
                    bootstraps,
                    error,
                    rms_error,
                    top1_agreement,
                };
                candidates.push(c.clone());
                if opts.max_bootstraps.is_some_and(|m| bootstraps > m) {
                    continue;
                }
                let better = best
                    .as_ref()
                    .is_none_or(|(b, _)| (c.rms_error, c.bootstraps) < (b.rms_error, b.bootstraps));
                if better {
                    best = Some((c, program));
                }
            }
        }
    }
    let (chosen, program) = best.ok_or_else(|| {
        FheError::DoesNotFit(format!(
            "every quantization tried needs more than {} bootstraps per sample",
            opts.max_bootstraps.unwrap_or(0)
        ))
    })?;
    Ok(Compiled {
        program,
        chosen,
        candidates,
    })
}

/// Max and RMS relative error and top-1 agreement of a program against float outputs.
fn measure(
    program: &FheProgram,
    samples: &[Vec<Vec<f64>>],
    want: &[Vec<Vec<f64>>],
) -> Result<(f64, f64, f64)> {
    let (mut err, mut scale, mut agree) = (0f64, 0f64, 0usize);
    let (mut sq_err, mut sq) = (0f64, 0f64);
    for (s, w) in samples.iter().zip(want) {
        let (_, got) = program.run_clear(s)?;
        for (g, w) in got.iter().zip(w) {
            for (a, b) in g.iter().zip(w) {
                err = err.max((a - b).abs());
                scale = scale.max(b.abs());
                sq_err += (a - b).powi(2);
                sq += b * b;
            }
        }
        if argmax(&got[0]) == argmax(&w[0]) {
            agree += 1;
        }
    }
    Ok((
        if scale > 0.0 { err / scale } else { err },
        if sq > 0.0 {
            (sq_err / sq).sqrt()
        } else {
            sq_err.sqrt()
        },
        agree as f64 / samples.len() as f64,
    ))
}

/// Index of the largest element (the first of equals).
pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// Most bootstraps per sample the FHE path takes on (at 0.1–0.4 s each on two cores, hours).
pub const MAX_BOOTSTRAPS: usize = 20_000;
/// Most dot-product terms the compiler searches quantizations for.
pub const MAX_TERMS: usize = 2_000_000;

/// Refuses, naming the node, any op the FHE path has no evaluation for, and models too large
/// to run encrypted (each activation element is at least one bootstrap).
fn check_ops(graph: &Graph) -> Result<()> {
    let activations: usize = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Unary { .. } | Op::Extremum { .. }))
        .map(|n| n.len())
        .sum();
    if activations > MAX_BOOTSTRAPS {
        return Err(FheError::DoesNotFit(format!(
            "{activations} activation elements need at least as many bootstraps per sample; the \
             FHE path takes at most {MAX_BOOTSTRAPS}"
        )));
    }
    let terms: usize = graph
        .nodes
        .iter()
        .map(|n| match &n.op {
            Op::Linear { terms, .. } => terms.total(),
            _ => 0,
        })
        .sum();
    if terms > MAX_TERMS {
        return Err(FheError::DoesNotFit(format!(
            "{terms} weights; the FHE path takes models of at most {MAX_TERMS}"
        )));
    }
    for node in &graph.nodes {
        let why = match &node.op {
            Op::Input { .. } | Op::Linear { .. } | Op::Remap { .. } | Op::Unary { .. } => continue,
            Op::Extremum { .. } if elementwise_extremum(&node.op).is_some() => continue,
            Op::Extremum { .. } => "a max or min of two encrypted values needs a bivariate bootstrap per pair, which this path does not do yet",
            Op::Bilinear { .. } => "a product of two encrypted values is not supported",
            Op::Sqrt | Op::Divide { .. } => "square roots and divisions of encrypted values are not supported",
            Op::Gather { .. } => "indexing by an encrypted value is not supported",
            Op::Param { .. } => "committed weights are for proofs: the FHE path reads a model's weights as constants",
        };
        return Err(FheError::Unsupported {
            node: node.name.clone(),
            op: node.source_op.clone(),
            why: why.into(),
        });
    }
    Ok(())
}

/// One row of an element-wise max/min: the input element and the constants it is compared with.
type ElemRow = (u32, Vec<f64>);

/// A max/min whose every row compares one element of its input with constants: `(element,
/// constants)` per row.
fn elementwise_extremum(op: &Op) -> Option<(ExtremumKind, Vec<ElemRow>)> {
    let Op::Extremum { kind, candidates } = op else {
        return None;
    };
    let rows = candidates
        .iter()
        .map(|row| {
            let mut elem = None;
            let mut consts = Vec::new();
            for s in row {
                match *s {
                    Src::Elem { slot: 0, idx } if elem.is_none() => elem = Some(idx),
                    Src::Elem { .. } => return None,
                    Src::Const(c) => consts.push(c as f64),
                }
            }
            Some((elem?, consts))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((*kind, rows))
}

/// Min and max of every node's float values over the samples.
fn node_ranges(graph: &Graph, floats: &[Vec<Vec<f64>>]) -> Vec<(f64, f64)> {
    (0..graph.nodes.len())
        .map(|n| {
            floats
                .iter()
                .flat_map(|vals| vals[n].iter().copied())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                    (lo.min(x), hi.max(x))
                })
        })
        .collect()
}

/// Most accumulator parts a composed linear map may carry per element (each part of an element
/// that is bootstrapped later costs one bootstrap).
const MAX_CARRIED_PARTS: usize = 4;

/// One quantization's settings.
struct Config {
    params: ParamSet,
    input_bits: u32,
    act_bits: u32,
    groups: usize,
    output_groups: usize,
    max_norm: f64,
}

/// An element of a tensor during compilation.
#[derive(Clone, Debug)]
enum El {
    /// A constant, known to the server.
    Const(f64),
    /// An encrypted integer `q ∈ [0, top]` worth `scale · (q − zero)`.
    Act {
        r: Ref,
        scale: f64,
        zero: i64,
        top: u64,
    },
    /// `bias + Σ t · a` over accumulators `a ∈ [0, span]`.
    Acc { bias: f64, parts: Vec<Part> },
}

#[derive(Clone, Copy, Debug)]
struct Part {
    r: Ref,
    t: f64,
    span: u64,
}

/// The affine encoding of an activation: `q = clamp(round(y / scale) + zero, 0, top)`.
#[derive(Clone, Copy, Debug)]
struct Encoding {
    scale: f64,
    zero: i64,
    top: u64,
}

impl Encoding {
    /// The encoding of `bits` bits covering `[lo, hi]` (widened to hold 0, so zero is exact).
    fn covering(lo: f64, hi: f64, bits: u32) -> Self {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let top = (1u64 << bits) - 1;
        let scale = if hi > lo { (hi - lo) / top as f64 } else { 1.0 };
        let zero = ((-lo / scale).round() as i64).clamp(0, top as i64);
        Encoding { scale, zero, top }
    }

    fn quantize(&self, y: f64) -> u16 {
        let q = (y / self.scale).round() + self.zero as f64;
        q.clamp(0.0, self.top as f64) as u16
    }
}

/// An element-wise function applied by a bootstrap.
#[derive(Clone, Debug)]
enum ElemFn {
    Identity,
    Unary(UnaryFn),
    Extremum(ExtremumKind, Vec<f64>),
}

impl ElemFn {
    fn apply(&self, x: f64) -> f64 {
        match self {
            ElemFn::Identity => x,
            ElemFn::Unary(f) => f.apply(x),
            ElemFn::Extremum(ExtremumKind::Max, cs) => cs.iter().fold(x, |a, &c| a.max(c)),
            ElemFn::Extremum(ExtremumKind::Min, cs) => cs.iter().fold(x, |a, &c| a.min(c)),
        }
    }
}

/// Builds the program for one configuration.
fn build(
    graph: &Graph,
    ranges: &[(f64, f64)],
    cfg: &Config,
    samples: &[Vec<Vec<f64>>],
) -> Result<FheProgram> {
    let mut b = Builder {
        codes: HashMap::new(),
        cfg,
        values: Vec::new(),
        tables: Vec::new(),
        table_ids: HashMap::new(),
    };
    let mut inputs = Vec::new();
    let mut els: Vec<Vec<El>> = Vec::with_capacity(graph.nodes.len());
    // Bootstrapped (activation) form of nodes whose elements are accumulators, made once.
    let mut as_act: HashMap<usize, Vec<El>> = HashMap::new();
    // Nodes whose values reach only the outputs through linear maps and data movement: their
    // accumulators are decrypted by the client, never bootstrapped.
    let mut terminal = vec![false; graph.nodes.len()];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        for &i in &node.inputs {
            consumers[i].push(n);
        }
    }
    for n in (0..graph.nodes.len()).rev() {
        // A consumer keeps n's accumulators as they are if it moves them (Remap) or scales
        // each one into its own output element (a linear row with at most one term of n, as
        // Gemm's bias add); a linear row summing several would hand the client the layer.
        terminal[n] = (graph.outputs.contains(&n) || !consumers[n].is_empty())
            && consumers[n].iter().all(|&c| {
                let node = &graph.nodes[c];
                terminal[c]
                    && match &node.op {
                        Op::Remap { .. } => true,
                        Op::Linear { terms, .. } => terms.iter().all(|row| {
                            row.iter()
                                .filter(|&&(slot, _, _)| node.inputs[slot as usize] == n)
                                .count()
                                <= 1
                        }),
                        _ => false,
                    }
            });
    }
    for (n, node) in graph.nodes.iter().enumerate() {
        let (lo, hi) = ranges[n];
        let out = match &node.op {
            Op::Input { index } => {
                let enc = Encoding::covering(lo, hi, cfg.input_bits);
                let v = b.push(ValueDef::Input { index: *index });
                inputs.push((
                    *index,
                    InputSpec {
                        shape: node.shape.clone(),
                        scale: enc.scale,
                        zero: enc.zero,
                        bits: cfg.input_bits,
                        range: (
                            -(enc.zero as f64) * enc.scale,
                            (enc.top as i64 - enc.zero) as f64 * enc.scale,
                        ),
                    },
                ));
                if samples.len() >= MIN_FIT_SAMPLES {
                    for idx in 0..node.len() {
                        let q = samples
                            .iter()
                            .map(|s| enc.quantize(s[*index][idx]) as i64)
                            .collect();
                        b.codes.insert(
                            Ref {
                                value: v,
                                idx: idx as u32,
                            },
                            q,
                        );
                    }
                }
                (0..node.len() as u32)
                    .map(|idx| El::Act {
                        r: Ref { value: v, idx },
                        scale: enc.scale,
                        zero: enc.zero,
                        top: enc.top,
                    })
                    .collect()
            }
            Op::Remap { srcs } => srcs
                .iter()
                .map(|s| match *s {
                    Src::Elem { slot, idx } => {
                        els[node.inputs[slot as usize]][idx as usize].clone()
                    }
                    Src::Const(c) => El::Const(c as f64),
                })
                .collect(),
            Op::Linear { terms, bias } => {
                // A linear map of accumulators is still leveled: compose it (scaling their
                // parts) unless rows would carry many parts, each a bootstrap later; then
                // bootstrap those inputs into activations first.
                let carried =
                    |slot: u32, idx: u32| match &els[node.inputs[slot as usize]][idx as usize] {
                        El::Acc { parts, .. } => parts.len(),
                        _ => 0,
                    };
                // A terminal node's parts are decrypted, never bootstrapped: always composed.
                let compose = terminal[n]
                    || terms.iter().all(|row| {
                        row.iter().map(|&(s, i, _)| carried(s, i)).sum::<usize>()
                            <= MAX_CARRIED_PARTS
                    });
                if !compose {
                    for &i in &node.inputs {
                        if !as_act.contains_key(&i)
                            && els[i].iter().any(|e| matches!(e, El::Acc { .. }))
                        {
                            let enc = Encoding::covering(ranges[i].0, ranges[i].1, cfg.act_bits);
                            let fs = vec![ElemFn::Identity; els[i].len()];
                            let acts = b.bootstrap(&els[i], &fs, enc);
                            as_act.insert(i, acts);
                        }
                    }
                }
                let input = |slot: u32, idx: u32| -> &El {
                    let i = node.inputs[slot as usize];
                    let e = if compose {
                        &els[i]
                    } else {
                        as_act.get(&i).unwrap_or(&els[i])
                    };
                    e.get(idx as usize).expect("index in range")
                };
                let groups = if terminal[n] {
                    cfg.output_groups
                } else {
                    cfg.groups
                };
                b.linear(
                    groups,
                    terminal[n],
                    terms.iter().zip(bias).map(|(row, &bias)| {
                        (
                            bias as f64,
                            row.iter()
                                .map(|&(s, i, c)| (input(s, i).clone(), c as f64))
                                .collect::<Vec<_>>(),
                        )
                    }),
                )
            }
            Op::Unary { func } => {
                let enc = Encoding::covering(lo, hi, cfg.act_bits);
                let fs = vec![ElemFn::Unary(*func); node.len()];
                b.bootstrap(&els[node.inputs[0]], &fs, enc)
            }
            op @ Op::Extremum { .. } => {
                let (kind, rows) = elementwise_extremum(op).expect("checked by check_ops");
                let input = &els[node.inputs[0]];
                let ins: Vec<El> = rows
                    .iter()
                    .map(|(i, _)| input[*i as usize].clone())
                    .collect();
                let fs: Vec<ElemFn> = rows
                    .into_iter()
                    .map(|(_, c)| ElemFn::Extremum(kind, c))
                    .collect();
                let enc = Encoding::covering(lo, hi, cfg.act_bits);
                b.bootstrap(&ins, &fs, enc)
            }
            _ => unreachable!("refused by check_ops"),
        };
        els.push(out);
    }
    inputs.sort_by_key(|(i, _)| *i);
    let outputs = graph
        .outputs
        .iter()
        .map(|&o| OutputSpec {
            shape: graph.nodes[o].shape.clone(),
            elems: els[o].iter().map(out_elem).collect(),
        })
        .collect();
    Ok(FheProgram {
        format_version: PROGRAM_VERSION,
        params: cfg.params,
        inputs: inputs.into_iter().map(|(_, s)| s).collect(),
        values: b.values,
        tables: b.tables,
        outputs,
    })
}

fn out_elem(e: &El) -> OutElem {
    match e {
        El::Const(c) => OutElem {
            bias: *c,
            parts: vec![],
        },
        El::Act { r, scale, zero, .. } => OutElem {
            bias: -scale * *zero as f64,
            parts: vec![(*r, *scale)],
        },
        El::Acc { bias, parts } => OutElem {
            bias: *bias,
            parts: parts.iter().map(|p| (p.r, p.t)).collect(),
        },
    }
}

struct Builder<'a> {
    cfg: &'a Config,
    values: Vec<ValueDef>,
    tables: Vec<Vec<u16>>,
    table_ids: HashMap<Vec<u16>, u32>,
    /// The integer each encrypted input element holds on each calibration sample, when there
    /// are enough samples to fit weights to: the first layer's weights are rounded where the
    /// data says it matters. (Carrying this through later layers, by running the clear
    /// simulation as the program is built, measured no better on the held-out digits.)
    codes: HashMap<Ref, Vec<i64>>,
}

impl Builder<'_> {
    fn push(&mut self, v: ValueDef) -> u32 {
        self.values.push(v);
        (self.values.len() - 1) as u32
    }

    fn table(&mut self, f: impl Fn(u64) -> u16) -> u32 {
        let t: Vec<u16> = (0..self.cfg.params.modulus()).map(f).collect();
        let next = self.tables.len() as u32;
        *self.table_ids.entry(t.clone()).or_insert_with(|| {
            self.tables.push(t);
            next
        })
    }

    /// Linear rows `(bias, [(input, coefficient)])` → accumulators (one Dot value).
    /// `wide`: the accumulators are only decrypted, so they may span `[0, 2M)`.
    fn linear(
        &mut self,
        groups: usize,
        wide: bool,
        rows: impl Iterator<Item = (f64, Vec<(El, f64)>)>,
    ) -> Vec<El> {
        let m = self.cfg.params.modulus() * if wide { 2 } else { 1 };
        let mut dot_rows = Vec::new();
        let value = self.values.len() as u32; // the Dot value pushed below
        let mut out = Vec::new();
        for (mut bias, terms) in rows {
            let mut act = Vec::new();
            let mut carried: Vec<Part> = Vec::new();
            for (e, c) in terms {
                match e {
                    El::Const(v) => bias += c * v,
                    El::Act {
                        r,
                        scale,
                        zero,
                        top,
                    } => act.push((r, c * scale, zero, top)),
                    El::Acc { bias: b, parts } if c != 0.0 => {
                        bias += c * b;
                        for p in parts {
                            match carried.iter_mut().find(|q| q.r == p.r) {
                                Some(q) => q.t += c * p.t,
                                None => carried.push(Part { t: c * p.t, ..p }),
                            }
                        }
                    }
                    El::Acc { .. } => {}
                }
            }
            carried.retain(|p| p.t != 0.0);
            act.retain(|t| t.1 != 0.0);
            if act.is_empty() {
                out.push(if carried.is_empty() {
                    El::Const(bias)
                } else {
                    El::Acc {
                        bias,
                        parts: carried,
                    }
                });
                continue;
            }
            let g = groups.min(act.len());
            let per = act.len().div_ceil(g);
            let mut parts = Vec::new();
            for chunk in act.chunks(per) {
                let k: Vec<f64> = chunk.iter().map(|t| t.1).collect();
                let tops: Vec<u64> = chunk.iter().map(|t| t.3).collect();
                let Some((mut w, t)) = fit_weights(&k, &tops, m, self.cfg.max_norm) else {
                    continue;
                };
                // Over encrypted inputs, the calibration samples say which rounding errors
                // matter: refine the weights on them (same span and norm limits), and move the
                // mean of what remains into the bias.
                let codes: Option<Vec<Vec<i64>>> = chunk
                    .iter()
                    .map(|c| {
                        let q = self.codes.get(&c.0)?;
                        Some(q.iter().map(|q| q - c.2).collect())
                    })
                    .collect();
                if let Some(codes) = codes {
                    let codes: Vec<&Vec<i64>> = codes.iter().collect();
                    let mean = refine_weights(&mut w, t, &k, &tops, &codes, m, self.cfg.max_norm);
                    bias -= mean;
                }
                let offset: i64 = w
                    .iter()
                    .zip(&tops)
                    .filter(|(w, _)| **w < 0)
                    .map(|(w, tp)| -(*w as i64) * *tp as i64)
                    .sum();
                let span: i64 = w
                    .iter()
                    .zip(&tops)
                    .map(|(w, tp)| w.abs() as i64 * *tp as i64)
                    .sum();
                let zsum: i64 = w.iter().zip(chunk).map(|(w, t)| *w as i64 * t.2).sum();
                // real = Σ k (q − z) ≈ t·(Σ w q − Σ w z) = t·(a − offset − Σ w z)
                bias -= t * (offset + zsum) as f64;
                parts.push(Part {
                    r: Ref {
                        value,
                        idx: dot_rows.len() as u32,
                    },
                    t,
                    span: span as u64,
                });
                dot_rows.push(DotRow {
                    terms: chunk.iter().map(|c| c.0).zip(w).collect(),
                    offset,
                });
            }
            parts.extend(carried);
            out.push(if parts.is_empty() {
                El::Const(bias)
            } else {
                El::Acc { bias, parts }
            });
        }
        if !dot_rows.is_empty() {
            self.push(ValueDef::Dot {
                rows: dot_rows,
                wide,
            });
        }
        out
    }

    /// `f` of each element, as activations encoded by `enc`: one bootstrap per element, and for
    /// an accumulator split in groups, one per group to requantize the partial sums first.
    fn bootstrap(&mut self, ins: &[El], fs: &[ElemFn], enc: Encoding) -> Vec<El> {
        let m = self.cfg.params.modulus();
        // Groups: requantize each partial sum to a common step, then sum them (one Dot row).
        let mut requant = Vec::new();
        let mut sums = Vec::new();
        let mut combined: HashMap<usize, (f64, f64, u64)> = HashMap::new(); // elem → (bias, step, span)
        let requant_value = self.values.len() as u32;
        let sum_value = requant_value + 1;
        for (i, e) in ins.iter().enumerate() {
            let El::Acc { bias, parts } = e else { continue };
            if parts.len() < 2 {
                continue;
            }
            // Part k is worth t·a ∈ [lo, lo + |t|·span] with lo = min(0, t·span); its
            // requantized level is round((t·a − lo) / u).
            let total: f64 = parts.iter().map(|p| p.t.abs() * p.span as f64).sum();
            let mut u = total / (m - 1) as f64;
            let levels = |u: f64| -> u64 {
                parts
                    .iter()
                    .map(|p| (p.t.abs() * p.span as f64 / u).round() as u64)
                    .sum()
            };
            while levels(u) > m - 1 {
                u *= 1.001;
            }
            let lo_sum: f64 = parts.iter().map(|p| (p.t * p.span as f64).min(0.0)).sum();
            let mut terms = Vec::new();
            for p in parts {
                let (t, span) = (p.t, p.span);
                let lo = (t * span as f64).min(0.0);
                let table = self.table(|a| {
                    if a <= span {
                        ((t * a as f64 - lo) / u).round() as u16
                    } else {
                        0
                    }
                });
                terms.push((
                    Ref {
                        value: requant_value,
                        idx: requant.len() as u32,
                    },
                    1,
                ));
                requant.push((p.r, table));
            }
            combined.insert(i, (*bias + lo_sum, u, levels(u)));
            sums.push(DotRow { terms, offset: 0 });
        }
        if !requant.is_empty() {
            self.push(ValueDef::Lut { elems: requant });
            self.push(ValueDef::Dot {
                rows: sums,
                wide: false,
            });
        }
        let out_value = self.values.len() as u32;
        let mut elems = Vec::new();
        let mut out = Vec::new();
        let mut sum_idx = 0u32;
        for (i, (e, f)) in ins.iter().zip(fs).enumerate() {
            let (r, table) = match e {
                El::Const(c) => {
                    out.push(El::Const(f.apply(*c)));
                    continue;
                }
                El::Act {
                    r,
                    scale,
                    zero,
                    top,
                } => {
                    let (s, z, tp) = (*scale, *zero, *top);
                    (
                        *r,
                        self.table(|q| {
                            if q <= tp {
                                enc.quantize(f.apply(s * (q as i64 - z) as f64))
                            } else {
                                0
                            }
                        }),
                    )
                }
                El::Acc { bias, parts } if parts.len() == 1 => {
                    let (b, p) = (*bias, parts[0]);
                    (
                        p.r,
                        self.table(|a| {
                            if a <= p.span {
                                enc.quantize(f.apply(b + p.t * a as f64))
                            } else {
                                0
                            }
                        }),
                    )
                }
                El::Acc { .. } => {
                    let (b, u, span) = combined[&i];
                    let r = Ref {
                        value: sum_value,
                        idx: sum_idx,
                    };
                    sum_idx += 1;
                    (
                        r,
                        self.table(|a| {
                            if a <= span {
                                enc.quantize(f.apply(b + u * a as f64))
                            } else {
                                0
                            }
                        }),
                    )
                }
            };
            out.push(El::Act {
                r: Ref {
                    value: out_value,
                    idx: elems.len() as u32,
                },
                scale: enc.scale,
                zero: enc.zero,
                top: enc.top,
            });
            elems.push((r, table));
        }
        if !elems.is_empty() {
            self.push(ValueDef::Lut { elems });
        }
        out
    }
}

/// Integer weights `w ≈ λ·k` and the step `t = 1/λ` for one accumulator, with the largest `λ`
/// (finest weights) whose worst-case span `Σ |w|·top` fits `[0, m)` and whose 2-norm is at most
/// `max_norm`; among the candidates near it, the one with the least rounding error. `None` when
/// every weight rounds to zero.
fn fit_weights(k: &[f64], tops: &[u64], m: u64, max_norm: f64) -> Option<(Vec<i32>, f64)> {
    let l1: f64 = k.iter().zip(tops).map(|(k, t)| k.abs() * *t as f64).sum();
    let l2: f64 = k.iter().map(|k| k * k).sum::<f64>().sqrt();
    let mut lambda = ((m - 1) as f64 / l1).min(max_norm / l2) * 1.5;
    let feasible = |lambda: f64| -> Option<Vec<i32>> {
        let w: Vec<i32> = k.iter().map(|k| (k * lambda).round() as i32).collect();
        let span: i64 = w
            .iter()
            .zip(tops)
            .map(|(w, t)| w.abs() as i64 * *t as i64)
            .sum();
        let norm = w.iter().map(|&w| (w as f64).powi(2)).sum::<f64>().sqrt();
        (span < m as i64 && norm <= max_norm + 1e-9).then_some(w)
    };
    let mut first = None;
    while lambda > 1e-12 {
        if feasible(lambda).is_some() {
            first = Some(lambda);
            break;
        }
        lambda *= 0.995;
    }
    let first = first?;
    let err = |w: &[i32], lambda: f64| -> f64 {
        w.iter()
            .zip(k)
            .zip(tops)
            .map(|((&w, &k), &t)| ((w as f64 / lambda - k) * t as f64).powi(2))
            .sum()
    };
    let mut best: Option<(Vec<i32>, f64, f64)> = None;
    let mut l = first;
    while l > first * 0.7 {
        if let Some(w) = feasible(l) {
            if w.iter().any(|&w| w != 0) {
                let e = err(&w, l);
                if best.as_ref().is_none_or(|b| e < b.2) {
                    best = Some((w, l, e));
                }
            }
        }
        l *= 0.995;
    }
    best.map(|(w, l, _)| (w, 1.0 / l))
}

/// Calibration samples needed before weights are fitted to them rather than to the worst case
/// alone (fewer would fit the samples, not the model).
const MIN_FIT_SAMPLES: usize = 32;

/// Improves integer weights `w` (step `t`, approximating coefficients `k`) on calibration data:
/// `codes[i][s]` is input `i`'s `q − zero` on sample `s`. Greedy ±1 moves that lower the
/// variance over the samples of the error `Σ (t·w − k)·d`, keeping the worst-case span
/// `Σ |w|·top < m` and the 2-norm bound, so every guarantee of [`fit_weights`] still holds.
/// Returns the error's mean (the part a bias corrects).
fn refine_weights(
    w: &mut [i32],
    t: f64,
    k: &[f64],
    tops: &[u64],
    codes: &[&Vec<i64>],
    m: u64,
    max_norm: f64,
) -> f64 {
    let n = codes.first().map_or(0, |c| c.len());
    if n == 0 {
        return 0.0;
    }
    let nf = n as f64;
    let mut err: Vec<f64> = (0..n)
        .map(|s| {
            w.iter()
                .zip(k)
                .zip(codes)
                .map(|((&w, &k), d)| (t * w as f64 - k) * d[s] as f64)
                .sum()
        })
        .collect();
    // Per input: Σ d, Σ d², so a move's effect on Σ e and Σ e² is O(samples).
    let sums: Vec<(f64, f64)> = codes
        .iter()
        .map(|d| {
            d.iter()
                .fold((0.0, 0.0), |(a, b), &x| (a + x as f64, b + (x * x) as f64))
        })
        .collect();
    let mut span: i64 = w
        .iter()
        .zip(tops)
        .map(|(w, t)| w.abs() as i64 * *t as i64)
        .sum();
    let mut sq: i64 = w.iter().map(|&w| (w as i64).pow(2)).sum();
    let (mut sum_e, mut sum_e2): (f64, f64) =
        err.iter().fold((0.0, 0.0), |(a, b), &e| (a + e, b + e * e));
    for _ in 0..4 * w.len() {
        let var = sum_e2 / nf - (sum_e / nf).powi(2);
        let mut best: Option<(usize, i32, f64, f64, f64)> = None;
        for i in 0..w.len() {
            for step in [-1i32, 1] {
                let nw = w[i] + step;
                let nspan = span + (nw.abs() - w[i].abs()) as i64 * tops[i] as i64;
                let nsq = sq + (nw as i64).pow(2) - (w[i] as i64).pow(2);
                if nspan >= m as i64 || (nsq as f64).sqrt() > max_norm + 1e-9 {
                    continue;
                }
                let delta = t * step as f64;
                // e' = e + δ·d: Σe' = Σe + δΣd; Σe'² = Σe² + 2δΣ(e·d) + δ²Σd².
                let ed: f64 = err
                    .iter()
                    .zip(codes[i].iter())
                    .map(|(e, &d)| e * d as f64)
                    .sum();
                let s1 = sum_e + delta * sums[i].0;
                let s2 = sum_e2 + 2.0 * delta * ed + delta * delta * sums[i].1;
                let v = s2 / nf - (s1 / nf).powi(2);
                if v < var * (1.0 - 1e-9) && best.as_ref().is_none_or(|b| v < b.2) {
                    best = Some((i, step, v, s1, s2));
                }
            }
        }
        let Some((i, step, _, s1, s2)) = best else {
            break;
        };
        let delta = t * step as f64;
        for (e, &d) in err.iter_mut().zip(codes[i].iter()) {
            *e += delta * d as f64;
        }
        span += ((w[i] + step).abs() - w[i].abs()) as i64 * tops[i] as i64;
        sq += ((w[i] + step) as i64).pow(2) - (w[i] as i64).pow(2);
        w[i] += step;
        (sum_e, sum_e2) = (s1, s2);
    }
    sum_e / nf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_fit_the_worst_case_span_and_the_norm() {
        let k = [0.5, -0.25, 1.0, 0.1];
        let tops = [7, 7, 7, 7];
        let (w, t) = fit_weights(&k, &tops, 64, 9.0).unwrap();
        let span: i64 = w.iter().map(|w| w.abs() as i64 * 7).sum();
        assert!(span < 64, "{w:?}");
        assert!(w.iter().map(|&w| (w as f64).powi(2)).sum::<f64>().sqrt() <= 9.0);
        // The largest weight carries the most bits it can: |w| for k = 1.0 is span-limited.
        assert!(w[2] >= 4, "{w:?}");
        for (w, k) in w.iter().zip(k) {
            assert!(
                (*w as f64 * t - k).abs() <= t / 2.0 + 1e-9 || k.abs() < t,
                "{w} {t} {k}"
            );
        }
    }

    #[test]
    fn weights_refined_on_data_keep_the_bounds_and_lower_the_error() {
        // Two inputs the worst case treats alike; on the data the first varies far more, so
        // its rounding error matters most.
        let k = [0.37, 0.37, -0.2];
        let tops = [7, 7, 7];
        let codes: Vec<Vec<i64>> = vec![
            (0..64).map(|s| (s % 8) as i64 - 3).collect(),
            (0..64).map(|s| (s % 2) as i64).collect(),
            (0..64).map(|s| ((s / 8) % 8) as i64 - 3).collect(),
        ];
        let refs: Vec<&Vec<i64>> = codes.iter().collect();
        let var = |w: &[i32], t: f64| {
            let e: Vec<f64> = (0..64)
                .map(|s| {
                    (0..3)
                        .map(|i| (t * w[i] as f64 - k[i]) * codes[i][s] as f64)
                        .sum()
                })
                .collect();
            let mean = e.iter().sum::<f64>() / 64.0;
            (
                e.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 64.0,
                mean,
            )
        };
        // A start that spent the span on the input that hardly varies.
        let (w0, t) = (vec![0, 2, 0], 0.37);
        let mut w = w0.clone();
        let mean = refine_weights(&mut w, t, &k, &tops, &refs, 24, 9.0);
        let span: i64 = w
            .iter()
            .zip(&tops)
            .map(|(w, t)| w.abs() as i64 * *t as i64)
            .sum();
        assert!(span < 24, "{w:?}");
        assert!(w.iter().map(|&w| (w as f64).powi(2)).sum::<f64>().sqrt() <= 9.0);
        let (before, _) = var(&w0, t);
        let (after, after_mean) = var(&w, t);
        assert!(after < before / 4.0, "{w0:?} → {w:?}: {before} → {after}");
        assert_ne!(w[0], 0, "{w:?}");
        assert!((mean - after_mean).abs() < 1e-9);
    }

    #[test]
    fn the_norm_bound_limits_wide_rows() {
        let k = vec![1.0; 40];
        let tops = vec![1; 40];
        // Forty weights of 1 have norm √40 ≈ 6.3: allowed under 7, and under 5 nothing but
        // zero weights fits, which is reported as no accumulator.
        let (w, t) = fit_weights(&k, &tops, 64, 7.0).unwrap();
        assert_eq!(w, vec![1; 40]);
        assert!((t - 1.0).abs() < 0.25, "{t}");
        assert_eq!(fit_weights(&k, &tops, 64, 5.0), None);
    }
}
