//! What the operator allows a model to cost. A tenant's settings may lower each of these,
//! never raise them: the upload route refuses a setting above its ceiling, naming it, and
//! the worker applies its own ceilings again to what it runs (it may be a smaller machine
//! than the one that took the upload).

use zkinfer_fhe::FheOptions;
use zkinfer_prover::options::ModelOptions;
use zkinfer_prover::pipeline::CompileOptions;

/// Bytes per GiB.
const GIB: f64 = (1u64 << 30) as f64;

/// The operator's ceilings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ceilings {
    /// The largest circuit, 2^max_k rows.
    pub max_k: u32,
    /// The largest estimated memory of a setup or proof, in bytes.
    pub max_prove_memory: u64,
    /// The largest proof, in bytes.
    pub max_proof_bytes: usize,
    /// The most calibration samples one upload may carry.
    pub max_calibration_samples: usize,
    /// The most groups per dot product (and result groups) of an FHE program.
    pub max_fhe_groups: usize,
    /// The most bootstraps per sample an FHE program may use (`None`: no ceiling).
    pub max_fhe_bootstraps: Option<usize>,
    /// The most segments a model may be cut into (each is a setup job and, per proof, a
    /// proving job of its own).
    pub max_segments: usize,
}

impl Default for Ceilings {
    fn default() -> Self {
        Self {
            max_k: 24,
            max_prove_memory: zkinfer_prover::options::machine_memory().unwrap_or(8 << 30),
            max_proof_bytes: 8192,
            max_calibration_samples: 4096,
            max_fhe_groups: 64,
            max_fhe_bootstraps: None,
            max_segments: 32,
        }
    }
}

/// A setting above its ceiling: what to tell the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AboveCeiling(pub String);

impl std::fmt::Display for AboveCeiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ceilings {
    /// Refuses settings that ask for more than these ceilings allow.
    pub fn check(
        &self,
        options: &ModelOptions,
        fhe: Option<&FheOptions>,
        calibration_samples: usize,
    ) -> Result<(), AboveCeiling> {
        let above = |what: &str, asked: String, ceiling: String| {
            Err(AboveCeiling(format!(
                "{what} {asked} is above this service's limit of {ceiling}"
            )))
        };
        if let Some(k) = options.logrows.filter(|&k| k > self.max_k) {
            return above("logrows", k.to_string(), self.max_k.to_string());
        }
        if let Some(g) = options.max_prove_memory_gib {
            if !g.is_finite() || g <= 0.0 {
                return Err(AboveCeiling(format!(
                    "max_prove_memory_gib must be a positive number of GiB, not {g}"
                )));
            }
            if g * GIB > self.max_prove_memory as f64 {
                return above(
                    "max_prove_memory_gib",
                    g.to_string(),
                    format!("{:.1} GiB", self.max_prove_memory as f64 / GIB),
                );
            }
        }
        if let Some(b) = options
            .max_proof_bytes
            .filter(|&b| b > self.max_proof_bytes)
        {
            return above(
                "max_proof_bytes",
                b.to_string(),
                self.max_proof_bytes.to_string(),
            );
        }
        if let Some(n) = options.segments {
            if n < 2 {
                return Err(AboveCeiling(format!(
                    "segments {n}: a segmented model has two or more"
                )));
            }
            if n > self.max_segments {
                return above("segments", n.to_string(), self.max_segments.to_string());
            }
        }
        if calibration_samples > self.max_calibration_samples {
            return above(
                "the number of calibration samples",
                calibration_samples.to_string(),
                self.max_calibration_samples.to_string(),
            );
        }
        if let Some(f) = fhe {
            for (what, g) in [
                ("fhe groups", f.groups),
                ("fhe output_groups", f.output_groups),
            ] {
                if let Some(g) = g.filter(|&g| g > self.max_fhe_groups) {
                    return above(what, g.to_string(), self.max_fhe_groups.to_string());
                }
            }
            if let Some(ceiling) = self.max_fhe_bootstraps {
                if let Some(b) = f.max_bootstraps.filter(|&b| b > ceiling) {
                    return above("fhe max_bootstraps", b.to_string(), ceiling.to_string());
                }
            }
        }
        Ok(())
    }

    /// The compile options of `options` within these ceilings (each the lower of the
    /// tenant's setting and the ceiling), with `memory` the memory allowed for planning.
    pub fn compile_options(&self, options: &ModelOptions, memory: u64) -> CompileOptions {
        let mut opts = options.compile_options();
        let l = &mut opts.limits;
        l.max_k = l.max_k.min(self.max_k);
        l.k = l.k.map(|k| k.min(self.max_k));
        l.max_prove_memory = Some(l.max_prove_memory.map_or(memory, |m| m.min(memory)));
        l.max_proof_bytes = l.max_proof_bytes.min(self.max_proof_bytes);
        l.raise_proof_bytes_to = l.raise_proof_bytes_to.map(|r| r.min(self.max_proof_bytes));
        opts.max_segments = Some(self.max_segments);
        opts
    }

    /// `fhe` within these ceilings.
    pub fn fhe_options(&self, fhe: &FheOptions) -> FheOptions {
        let mut f = fhe.clone();
        f.groups = f.groups.map(|g| g.min(self.max_fhe_groups));
        f.output_groups = f.output_groups.map(|g| g.min(self.max_fhe_groups));
        if let Some(c) = self.max_fhe_bootstraps {
            f.max_bootstraps = Some(f.max_bootstraps.map_or(c, |b| b.min(c)));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ceilings() -> Ceilings {
        Ceilings {
            max_k: 20,
            max_prove_memory: 8 << 30,
            max_proof_bytes: 6144,
            max_calibration_samples: 4,
            max_fhe_groups: 8,
            max_fhe_bootstraps: Some(100),
            max_segments: 4,
        }
    }

    #[test]
    fn settings_may_lower_the_ceilings_never_raise_them() {
        let c = ceilings();
        let lower = ModelOptions {
            logrows: Some(18),
            max_prove_memory_gib: Some(2.0),
            max_proof_bytes: Some(4096),
            ..Default::default()
        };
        assert_eq!(c.check(&lower, None, 4), Ok(()));
        let o = c.compile_options(&lower, 8 << 30);
        assert_eq!(o.limits.k, Some(18));
        assert_eq!(o.limits.max_prove_memory, Some(2 << 30));
        assert_eq!(o.limits.max_proof_bytes, 4096);
        for (raise, what) in [
            (
                ModelOptions {
                    logrows: Some(24),
                    ..Default::default()
                },
                "logrows 24",
            ),
            (
                ModelOptions {
                    max_prove_memory_gib: Some(1e6),
                    ..Default::default()
                },
                "max_prove_memory_gib 1000000",
            ),
            (
                ModelOptions {
                    max_prove_memory_gib: Some(f64::NAN),
                    ..Default::default()
                },
                "positive",
            ),
            (
                ModelOptions {
                    max_proof_bytes: Some(1 << 20),
                    ..Default::default()
                },
                "max_proof_bytes 1048576",
            ),
        ] {
            let e = c.check(&raise, None, 1).unwrap_err();
            assert!(e.0.contains(what), "{e}");
        }
        assert!(c.check(&ModelOptions::default(), None, 5).is_err());
        let fhe = FheOptions {
            groups: Some(1000),
            ..Default::default()
        };
        assert!(c.check(&ModelOptions::default(), Some(&fhe), 1).is_err());
        let fhe = FheOptions {
            max_bootstraps: Some(1000),
            ..Default::default()
        };
        assert!(c.check(&ModelOptions::default(), Some(&fhe), 1).is_err());
        assert_eq!(
            c.fhe_options(&FheOptions::default()).max_bootstraps,
            Some(100)
        );
    }

    #[test]
    fn the_worker_applies_its_own_ceilings_to_what_it_runs() {
        // An upload checked by a larger front end still runs within this worker's limits.
        let c = ceilings();
        let asked = ModelOptions {
            logrows: Some(24),
            max_prove_memory_gib: Some(1e6),
            max_proof_bytes: Some(1 << 20),
            ..Default::default()
        };
        let o = c.compile_options(&asked, 4 << 30);
        assert_eq!(o.limits.max_k, 20);
        assert_eq!(o.limits.k, Some(20));
        assert_eq!(o.limits.max_prove_memory, Some(4 << 30));
        assert_eq!(o.limits.max_proof_bytes, 6144);
        // A tenant's own tighter bound is kept through the ceilings.
        let fit = ModelOptions {
            fit_evm: Some(true),
            ..asked
        };
        assert_eq!(
            c.compile_options(&fit, 4 << 30).limits.max_verifier_bytes,
            Some(zkinfer_circuits::cost::EIP_170_CODE_BYTES)
        );
        let o = c.compile_options(&ModelOptions::default(), 4 << 30);
        assert_eq!(o.limits.max_prove_memory, Some(4 << 30));
        assert!(o.limits.raise_proof_bytes_to.unwrap() <= 6144);
    }
}
