//! The FHE program: what the server evaluates on ciphertexts, and its clear twin.
//!
//! A program is a list of ciphertext vectors ("values"), each an encrypted input, a leveled dot
//! product of earlier values with small integer weights (no bootstrap), or one programmable
//! bootstrap per element applying a table. [`FheProgram::simulate`] evaluates it on clear
//! integers with exactly the arithmetic the ciphertexts undergo, so an encrypted run decrypts to
//! what it returns, bit for bit.

use serde::{Deserialize, Serialize};

use crate::error::{FheError, Result};
use crate::params::ParamSet;

/// Version of the program format (`fhe.json`).
pub const PROGRAM_VERSION: u32 = 1;

/// Element `idx` of value `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ref {
    /// Index into [`FheProgram::values`].
    pub value: u32,
    /// Element of that value.
    pub idx: u32,
}

/// One accumulator: `offset + Σ weight · element`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DotRow {
    /// The terms; every referenced value is an input or a bootstrap output (fresh noise).
    pub terms: Vec<(Ref, i32)>,
    /// The constant that keeps the accumulator in `[0, M)` for every admissible input.
    pub offset: i64,
}

impl DotRow {
    /// The 2-norm of the weights, which sets the noise (see [`ParamSet::log2_p_fail`]).
    pub fn norm(&self) -> f64 {
        (self
            .terms
            .iter()
            .map(|&(_, w)| (w as f64).powi(2))
            .sum::<f64>())
        .sqrt()
    }
}

/// How a vector of ciphertexts is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ValueDef {
    /// Graph input `index`, one fresh encryption per element.
    Input {
        /// Which graph input.
        index: usize,
    },
    /// Leveled dot products: one accumulator per row.
    Dot {
        /// The rows.
        rows: Vec<DotRow>,
        /// Accumulators only ever decrypted, never bootstrapped: they may use the padding bit
        /// too, so they hold `[0, 2M)` (a bootstrap's input must stay in `[0, M)`).
        #[serde(default)]
        wide: bool,
    },
    /// One programmable bootstrap per element: `out[i] = tables[table][in]`.
    Lut {
        /// `(input element, table index)` per output element.
        elems: Vec<(Ref, u32)>,
    },
}

/// How a graph input is encoded: `q = clamp(round(x / scale) + zero)` in `[0, 2^bits)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Tensor shape.
    pub shape: Vec<usize>,
    /// Real value of one step.
    pub scale: f64,
    /// The integer that encodes 0.
    pub zero: i64,
    /// Bits per element.
    pub bits: u32,
    /// The real range the encoding covers (calibrated); inputs outside are refused.
    pub range: (f64, f64),
}

impl InputSpec {
    /// Encodes one tensor, refusing values outside the covered range (by more than half a step).
    pub fn encode(&self, index: usize, x: &[f64]) -> Result<Vec<u64>> {
        let n: usize = self.shape.iter().product();
        if x.len() != n {
            return Err(FheError::Input(format!(
                "input {index} has {} values, the model takes {n} (shape {:?})",
                x.len(),
                self.shape
            )));
        }
        let top = (1u64 << self.bits) - 1;
        x.iter()
            .enumerate()
            .map(|(i, &v)| {
                if !v.is_finite() {
                    return Err(FheError::Input(format!("input {index} element {i} is {v}")));
                }
                let q = (v / self.scale).round() + self.zero as f64;
                if q < -0.5 || q > top as f64 + 0.5 {
                    return Err(FheError::Input(format!(
                        "input {index} element {i} = {v} is outside [{}, {}], the range the FHE \
                         quantization covers",
                        short(self.range.0),
                        short(self.range.1)
                    )));
                }
                Ok(q.clamp(0.0, top as f64) as u64)
            })
            .collect()
    }
}

/// A bound for messages: six decimals, no negative zero.
fn short(x: f64) -> f64 {
    (x * 1e6).round() / 1e6 + 0.0
}

/// One output element: `bias + Σ scale · element` of decrypted integers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutElem {
    /// Constant part.
    pub bias: f64,
    /// `(element, scale)` terms.
    pub parts: Vec<(Ref, f64)>,
}

/// One graph output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Tensor shape.
    pub shape: Vec<usize>,
    /// Per element.
    pub elems: Vec<OutElem>,
}

/// A compiled FHE program.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FheProgram {
    /// [`PROGRAM_VERSION`].
    pub format_version: u32,
    /// The parameter set.
    pub params: ParamSet,
    /// Input encodings.
    pub inputs: Vec<InputSpec>,
    /// Ciphertext vectors in evaluation order.
    pub values: Vec<ValueDef>,
    /// Bootstrap tables, `M` entries each, every entry `< M`.
    pub tables: Vec<Vec<u16>>,
    /// Output decodings.
    pub outputs: Vec<OutputSpec>,
}

/// What the client needs of a program: how to encode inputs and decode results. It holds the
/// last layer's output scales, never a weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    /// The parameter set.
    pub params: ParamSet,
    /// Input encodings.
    pub inputs: Vec<InputSpec>,
    /// Output decodings.
    pub outputs: Vec<OutputSpec>,
}

impl Interface {
    /// The elements the outputs read, in the order result files hold them.
    pub fn output_refs(&self) -> Vec<Ref> {
        let mut seen = std::collections::HashSet::new();
        let mut refs = Vec::new();
        for o in &self.outputs {
            for e in &o.elems {
                for &(r, _) in &e.parts {
                    if seen.insert(r) {
                        refs.push(r);
                    }
                }
            }
        }
        refs
    }

    /// Real outputs from the decrypted output integers ([`Self::output_refs`] order).
    pub fn decode(&self, ints: &[u64]) -> Result<Vec<Vec<f64>>> {
        let refs = self.output_refs();
        if ints.len() != refs.len() {
            return Err(FheError::Mismatch(format!(
                "{} result values, the model's outputs read {}",
                ints.len(),
                refs.len()
            )));
        }
        let pos: std::collections::HashMap<Ref, u64> =
            refs.into_iter().zip(ints.iter().copied()).collect();
        Ok(self
            .outputs
            .iter()
            .map(|o| {
                o.elems
                    .iter()
                    .map(|e| {
                        e.parts
                            .iter()
                            .fold(e.bias, |a, (r, s)| a + s * pos[r] as f64)
                    })
                    .collect()
            })
            .collect())
    }

    /// Encodes every graph input.
    pub fn encode_inputs(&self, inputs: &[Vec<f64>]) -> Result<Vec<Vec<u64>>> {
        if inputs.len() != self.inputs.len() {
            return Err(FheError::Input(format!(
                "{} inputs given, the model takes {}",
                inputs.len(),
                self.inputs.len()
            )));
        }
        self.inputs
            .iter()
            .zip(inputs)
            .enumerate()
            .map(|(i, (spec, x))| spec.encode(i, x))
            .collect()
    }
}

/// Counts that size an encrypted run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramStats {
    /// Programmable bootstraps per sample.
    pub bootstraps: usize,
    /// Leveled accumulators per sample.
    pub accumulators: usize,
    /// Input ciphertexts per sample.
    pub input_ciphertexts: usize,
    /// Result ciphertexts per sample.
    pub output_ciphertexts: usize,
    /// Largest weight 2-norm of any accumulator.
    pub max_norm: f64,
    /// Bound on log2 of one bootstrap's (or output decryption's) failure probability.
    pub log2_p_fail: f64,
    /// Bound on log2 of the probability that any of a sample's bootstraps or decryptions fails.
    pub log2_p_fail_sample: f64,
}

impl FheProgram {
    /// Number of elements of each value.
    pub fn value_len(&self, v: usize) -> usize {
        match &self.values[v] {
            ValueDef::Input { index } => self.inputs[*index].shape.iter().product(),
            ValueDef::Dot { rows, .. } => rows.len(),
            ValueDef::Lut { elems } => elems.len(),
        }
    }

    /// The client's view.
    pub fn interface(&self) -> Interface {
        Interface {
            params: self.params,
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
        }
    }

    /// The elements the outputs read, in the order result files hold them.
    pub fn output_refs(&self) -> Vec<Ref> {
        self.interface().output_refs()
    }

    /// Sizes and the failure bound.
    pub fn stats(&self) -> ProgramStats {
        let mut s = ProgramStats {
            bootstraps: 0,
            accumulators: 0,
            input_ciphertexts: 0,
            output_ciphertexts: self.output_refs().len(),
            max_norm: 0.0,
            log2_p_fail: f64::NEG_INFINITY,
            log2_p_fail_sample: f64::NEG_INFINITY,
        };
        // Every bootstrap reads an accumulator or an input; every output element is decrypted.
        let mut p_total = 0f64;
        let mut events = |log2: f64, count: usize, s: &mut ProgramStats| {
            s.log2_p_fail = s.log2_p_fail.max(log2);
            p_total += count as f64 * log2.exp2();
        };
        for v in 0..self.values.len() {
            match &self.values[v] {
                ValueDef::Input { .. } => s.input_ciphertexts += self.value_len(v),
                ValueDef::Dot { rows, .. } => {
                    s.accumulators += rows.len();
                    for r in rows {
                        let n = r.norm();
                        s.max_norm = s.max_norm.max(n);
                        events(self.params.log2_p_fail(n), 1, &mut s);
                    }
                }
                ValueDef::Lut { elems } => s.bootstraps += elems.len(),
            }
        }
        // Bootstraps of inputs and of other bootstraps' outputs see nominal noise.
        let fresh = self.params.nominal_log2_p_fail();
        events(fresh, s.bootstraps, &mut s);
        s.log2_p_fail_sample = p_total.log2();
        s
    }

    /// Checks, from the program alone, that no accumulator can leave its message space for any
    /// input in range and that every bootstrap reads a value its table covers: the guarantee
    /// that an encrypted run never wraps, independent of how the compiler chose the weights.
    pub fn check_bounds(&self) -> Result<()> {
        let m = self.params.modulus() as i64;
        // Largest value each element can take; `None` for wide accumulators (never read).
        let mut max: Vec<Vec<Option<i64>>> = Vec::with_capacity(self.values.len());
        let bad = |v: usize, idx: usize, why: String| {
            FheError::Mismatch(format!("value {v}[{idx}]: {why}"))
        };
        for (v, def) in self.values.iter().enumerate() {
            let out = match def {
                ValueDef::Input { index } => {
                    let spec = self
                        .inputs
                        .get(*index)
                        .ok_or_else(|| bad(v, 0, "no such input".into()))?;
                    if spec.bits == 0 || (1u64 << spec.bits) > self.params.message_modulus() {
                        return Err(bad(
                            v,
                            0,
                            format!("{}-bit inputs do not fit the message", spec.bits),
                        ));
                    }
                    vec![Some((1i64 << spec.bits) - 1); self.value_len(v)]
                }
                ValueDef::Dot { rows, wide } => {
                    let cap = if *wide { 2 * m } else { m };
                    let mut out = Vec::with_capacity(rows.len());
                    for (idx, row) in rows.iter().enumerate() {
                        let (mut lo, mut hi) = (row.offset, row.offset);
                        for (r, w) in &row.terms {
                            let top = max
                                .get(r.value as usize)
                                .and_then(|e| e.get(r.idx as usize))
                                .copied()
                                .flatten()
                                .filter(|_| {
                                    matches!(
                                        self.values[r.value as usize],
                                        ValueDef::Input { .. } | ValueDef::Lut { .. }
                                    )
                                })
                                .ok_or_else(|| {
                                    bad(v, idx, "reads an accumulator or a later value".into())
                                })?;
                            let w = *w as i64;
                            if w > 0 {
                                hi += w * top;
                            } else {
                                lo += w * top;
                            }
                        }
                        if lo < 0 || hi >= cap {
                            return Err(bad(
                                v,
                                idx,
                                format!("the accumulator spans [{lo}, {hi}], outside [0, {cap})"),
                            ));
                        }
                        out.push(if *wide { None } else { Some(hi) });
                    }
                    out
                }
                ValueDef::Lut { elems } => {
                    let mut out = Vec::with_capacity(elems.len());
                    for (idx, (r, t)) in elems.iter().enumerate() {
                        let table = self
                            .tables
                            .get(*t as usize)
                            .filter(|t| t.len() as i64 == m && t.iter().all(|&x| (x as i64) < m));
                        let table = table.ok_or_else(|| {
                            bad(v, idx, format!("table {t} is not {m} values below {m}"))
                        })?;
                        let top = max
                            .get(r.value as usize)
                            .and_then(|e| e.get(r.idx as usize))
                            .copied()
                            .flatten()
                            .ok_or_else(|| {
                                bad(
                                    v,
                                    idx,
                                    "bootstraps a wide accumulator or a later value".into(),
                                )
                            })?;
                        out.push(Some(
                            table[..=top as usize]
                                .iter()
                                .map(|&x| x as i64)
                                .max()
                                .unwrap_or(0),
                        ));
                    }
                    out
                }
            };
            max.push(out);
        }
        Ok(())
    }

    /// Evaluates on clear integers (every value of every element), as the ciphertexts would.
    pub fn simulate(&self, inputs: &[Vec<u64>]) -> Result<Vec<Vec<u64>>> {
        let m = self.params.modulus();
        let mut vals: Vec<Vec<u64>> = Vec::with_capacity(self.values.len());
        for (v, def) in self.values.iter().enumerate() {
            let get = |r: &Ref| vals[r.value as usize][r.idx as usize];
            let out = match def {
                ValueDef::Input { index } => {
                    let x = inputs.get(*index).ok_or_else(|| {
                        FheError::Input(format!("the model takes input {index}, none was given"))
                    })?;
                    if x.len() != self.value_len(v) || x.iter().any(|&q| q >= m) {
                        return Err(FheError::Input(format!(
                            "input {index}: {} values, expected {} below {m}",
                            x.len(),
                            self.value_len(v)
                        )));
                    }
                    x.clone()
                }
                ValueDef::Dot { rows, wide } => rows
                    .iter()
                    .enumerate()
                    .map(|(idx, row)| {
                        let m = if *wide { 2 * m } else { m };
                        let acc = row
                            .terms
                            .iter()
                            .fold(row.offset, |a, (r, w)| a + *w as i64 * get(r) as i64);
                        if acc < 0 || acc as u64 >= m {
                            return Err(FheError::Overflow {
                                value: v,
                                idx,
                                acc,
                                modulus: m,
                            });
                        }
                        Ok(acc as u64)
                    })
                    .collect::<Result<_>>()?,
                ValueDef::Lut { elems } => elems
                    .iter()
                    .map(|(r, t)| self.tables[*t as usize][get(r) as usize] as u64)
                    .collect(),
            };
            vals.push(out);
        }
        Ok(vals)
    }

    /// The integers of the output elements ([`Self::output_refs`] order) from a simulation.
    pub fn output_ints(&self, vals: &[Vec<u64>]) -> Vec<u64> {
        self.output_refs()
            .iter()
            .map(|r| vals[r.value as usize][r.idx as usize])
            .collect()
    }

    /// Encodes real inputs, simulates and decodes: the clear twin of an encrypted run.
    pub fn run_clear(&self, inputs: &[Vec<f64>]) -> Result<(Vec<u64>, Vec<Vec<f64>>)> {
        let io = self.interface();
        let q = io.encode_inputs(inputs)?;
        let vals = self.simulate(&q)?;
        let ints = self.output_ints(&vals);
        let real = io.decode(&ints)?;
        Ok((ints, real))
    }

    /// Content hash: binds keys and ciphertexts to this exact program.
    pub fn sha256(&self) -> String {
        zkinfer_model::sha256_hex(&serde_json::to_vec(self).expect("a program serializes"))
    }
}
