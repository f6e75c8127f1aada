//! Compile options as users give them (CLI flags, the service's `settings` JSON): each one
//! optional, the defaults applied in one place, [`ModelOptions::compile_options`].

use serde::{Deserialize, Serialize};
use zkinfer_circuits::{Io, Objective, PlanLimits, Visibility};
use zkinfer_model::{QuantizeOptions, Weights};

use crate::pipeline::CompileOptions;

/// What the circuit shape makes least.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimize {
    /// Proving time (more columns at a smaller k).
    #[default]
    ProveTime,
    /// The Solidity verifier's gas (fewest columns).
    EvmGas,
}

/// What quantization favours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The given scales (default 16 fractional bits): the smallest error.
    #[default]
    Accuracy,
    /// The fewest scale bits whose measured error stays within `max_error`: narrower range
    /// checks, smaller tables, often a smaller k.
    Resources,
}

/// `--target resources`'s default bound on the measured relative error.
pub const DEFAULT_MAX_ERROR: f64 = 1e-3;

/// Compile options, each optional.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOptions {
    /// `public` (default), `private` or `hashed` inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_visibility: Option<Visibility>,
    /// `public` (default) or `hashed` outputs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "output_visibility"
    )]
    pub output_visibility: Option<Visibility>,
    /// `fixed` (default: constants of the circuit) or `hashed` (private witnesses under one
    /// public commitment: one verifier per architecture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// Fractional bits of activations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// Fractional bits of non-integer coefficients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_scale: Option<u32>,
    /// Signed bits of range above the calibration maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_headroom_bits: Option<u32>,
    /// Largest proof, in bytes; unset: 3072, raised by steps of 1 KB up to 5120 for circuits
    /// of 2^18 rows or more where each step at least halves the estimated proving work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_proof_bytes: Option<usize>,
    /// Exactly this k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logrows: Option<u32>,
    /// What the shape makes least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize: Option<Optimize>,
    /// Whether products sharing a factor may be checked by Freivalds' algorithm (default
    /// true; the planner uses it where the proof budget allows and it proves faster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freivalds: Option<bool>,
    /// `accuracy` (default) or `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The relative error `target: resources` may reach (default 1e-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error: Option<f64>,
    /// Largest estimated proving memory, in GiB (default: this machine's memory): a circuit
    /// that needs more is refused by `compile`, saying what it would need.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prove_memory_gib: Option<f64>,
    /// Whether every circuit's Solidity verifier must fit one contract (EIP-170's 24,576
    /// bytes of code, estimated from the shape): the planner takes fewer columns, and a model
    /// cut for memory more segments, where needed (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_evm: Option<bool>,
    /// The service's `compile --like`: the id of a ready model of the same tenant, compiled
    /// with hashed weights, whose circuit this model reproduces (same architecture, other
    /// weights: one verifying key). Its scales, widths, visibilities and plan replace the
    /// settings above; the limits still hold. The CLI takes a folder instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like: Option<String>,
    /// The service's `compile --segments N`: cut the model into this many segments (two or
    /// more), each its own circuit and keys, proven by any workers at once. Unset: only a
    /// model that does not fit in one circuit is cut (into as few as fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<usize>,
}

/// Outputs are public or hashed: a proof of outputs nobody sees proves nothing.
fn output_visibility<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Visibility>, D::Error> {
    match Option::<Visibility>::deserialize(d)? {
        Some(Visibility::Private) => Err(serde::de::Error::custom(
            "output_visibility is public or hashed: a proof of outputs nobody sees proves nothing",
        )),
        v => Ok(v),
    }
}

impl ModelOptions {
    /// The options with every default applied.
    pub fn compile_options(&self) -> CompileOptions {
        let d = QuantizeOptions::default();
        let l = PlanLimits::default();
        CompileOptions {
            quantize: QuantizeOptions {
                scale: self.scale.unwrap_or(d.scale),
                param_scale: self.param_scale.unwrap_or(d.param_scale),
                range_headroom_bits: self.range_headroom_bits.unwrap_or(d.range_headroom_bits),
                act_bits: None,
                weight_bits: None,
            },
            io: Io::new(
                self.input_visibility.unwrap_or(Visibility::Public),
                self.output_visibility.unwrap_or(Visibility::Public),
            ),
            limits: PlanLimits {
                max_proof_bytes: self.max_proof_bytes.unwrap_or(l.max_proof_bytes),
                // A budget given is a budget kept.
                raise_proof_bytes_to: match self.max_proof_bytes {
                    Some(_) => None,
                    None => l.raise_proof_bytes_to,
                },
                k: self.logrows,
                freivalds: self.freivalds.unwrap_or(l.freivalds),
                max_prove_memory: self
                    .max_prove_memory_gib
                    .map(|g| (g.max(0.0) * (1u64 << 30) as f64) as u64)
                    .or_else(machine_memory),
                max_verifier_bytes: (self.fit_evm == Some(true))
                    .then_some(zkinfer_circuits::cost::EIP_170_CODE_BYTES),
                objective: match self.optimize.unwrap_or_default() {
                    Optimize::ProveTime => Objective::ProveTime,
                    Optimize::EvmGas => Objective::EvmGas,
                },
                ..l
            },
            resources: (self.target == Some(Target::Resources))
                .then(|| self.max_error.unwrap_or(DEFAULT_MAX_ERROR)),
            weights: self.weights.unwrap_or_default(),
            like: None,
            max_segments: None,
        }
    }
}

/// This machine's physical memory in bytes (Linux's `MemTotal`), or `None` where unknown.
/// Read from `/proc/meminfo` directly: one line, not worth a system-information crate.
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service's settings JSON and the CLI flag both come here: `fit_evm` bounds every
    /// circuit's verifier by EIP-170, and only when asked.
    #[test]
    fn fit_evm_sets_the_verifier_limit() {
        let asked: ModelOptions = serde_json::from_str(r#"{"fit_evm": true}"#).unwrap();
        assert_eq!(
            asked.compile_options().limits.max_verifier_bytes,
            Some(zkinfer_circuits::cost::EIP_170_CODE_BYTES)
        );
        for json in [r#"{}"#, r#"{"fit_evm": false}"#] {
            let o: ModelOptions = serde_json::from_str(json).unwrap();
            assert_eq!(
                o.compile_options().limits.max_verifier_bytes,
                None,
                "{json}"
            );
        }
    }
}
