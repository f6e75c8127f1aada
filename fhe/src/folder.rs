//! `fhe.json` in a compiled model folder: the FHE program `zkinfer compile` derived from the
//! same imported graph as the circuit, or why the model cannot run encrypted.

use std::path::Path;

use serde::{Deserialize, Serialize};
use zkinfer_model::Graph;

use crate::compile::{compile, Candidate, FheOptions};
use crate::error::{FheError, Result};
use crate::program::{FheProgram, ProgramStats};

/// The file's name.
pub const FHE_FILE: &str = "fhe.json";
/// Version of its format.
pub const FHE_FILE_VERSION: u32 = 1;

/// What `fhe.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FheFile {
    /// [`FHE_FILE_VERSION`].
    pub format_version: u32,
    /// sha256 of the ONNX file, as in `settings.json`.
    pub model_sha256: String,
    /// The options compile was given.
    pub options: FheOptions,
    /// Calibration samples measured.
    pub calibration_samples: usize,
    /// The program and its measurements, or why there is none.
    pub outcome: Outcome,
}

/// A program, or the refusal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Compiled.
    Compiled {
        /// The program.
        program: Box<FheProgram>,
        /// Its sizes and failure bound.
        stats: ProgramStats,
        /// The chosen quantization.
        chosen: Candidate,
        /// Every candidate measured.
        candidates: Vec<Candidate>,
    },
    /// Not compiled, and why.
    Refused {
        /// The error, as text.
        reason: String,
    },
}

/// Compiles the FHE program and writes `fhe.json` into `out`; a model the FHE path cannot take
/// is recorded as refused (the circuit does not depend on it).
pub fn compile_into(
    graph: &Graph,
    samples: &[Vec<Vec<f64>>],
    model_sha256: &str,
    out: &Path,
    options: &FheOptions,
) -> Result<FheFile> {
    let outcome = match compile(graph, samples, options) {
        Ok(c) => Outcome::Compiled {
            stats: c.program.stats(),
            program: Box::new(c.program),
            chosen: c.chosen,
            candidates: c.candidates,
        },
        Err(e @ (FheError::Unsupported { .. } | FheError::DoesNotFit(_))) => Outcome::Refused {
            reason: e.to_string(),
        },
        Err(e) => return Err(e),
    };
    let file = FheFile {
        format_version: FHE_FILE_VERSION,
        model_sha256: model_sha256.to_string(),
        options: options.clone(),
        calibration_samples: samples.len(),
        outcome,
    };
    let path = out.join(FHE_FILE);
    let json = serde_json::to_vec(&file).expect("fhe.json serializes");
    crate::envelope::write(&path, &json)?;
    Ok(file)
}

/// Imports an ONNX file and its calibration file (EZKL format) and compiles the FHE program
/// into `out`, as [`compile_into`] does; `model_sha256` is the ONNX file's, as the circuit's
/// settings record it.
pub fn compile_files(
    model: &Path,
    calibration: &Path,
    model_sha256: &str,
    out: &Path,
    options: &FheOptions,
) -> Result<FheFile> {
    let graph = zkinfer_model::load_onnx(model)?;
    let text = crate::envelope::read(calibration)?;
    let text = String::from_utf8(text).map_err(|_| FheError::File {
        path: calibration.display().to_string(),
        why: "not UTF-8 JSON".into(),
    })?;
    let samples = zkinfer_model::parse_calibration_json(&text)?;
    compile_into(&graph, &samples, model_sha256, out, options)
}

/// Reads `fhe.json` from a model folder.
pub fn read(dir: &Path) -> Result<FheFile> {
    let path = dir.join(FHE_FILE);
    if !path.exists() {
        return Err(FheError::File {
            path: path.display().to_string(),
            why: "missing: compile the model with a zkinfer that writes it (without --no-fhe)"
                .into(),
        });
    }
    crate::envelope::read_json(&path, |f: &FheFile| f.format_version, FHE_FILE_VERSION)
}

impl FheFile {
    /// Parses `fhe.json` bytes (as a service keeps them in its store); `what` names them in
    /// errors.
    pub fn from_slice(bytes: &[u8], what: &str) -> Result<Self> {
        crate::envelope::parse_json(
            bytes,
            what,
            |f: &FheFile| f.format_version,
            FHE_FILE_VERSION,
        )
    }

    /// The program, or the recorded refusal as an error.
    pub fn into_program(self, what: &str) -> Result<FheProgram> {
        match self.outcome {
            Outcome::Compiled { program, .. } => Ok(*program),
            Outcome::Refused { reason } => Err(FheError::DoesNotFit(format!(
                "{what} has no FHE program: {reason}"
            ))),
        }
    }
}

/// The program of a model folder, or the recorded refusal as an error.
pub fn program(dir: &Path) -> Result<FheProgram> {
    read(dir)?.into_program(&dir.display().to_string())
}

/// The FHE section of `zkinfer inspect`.
pub fn describe(file: &FheFile) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    match &file.outcome {
        Outcome::Refused { reason } => {
            let _ = writeln!(out, "fhe              none: {reason}");
        }
        Outcome::Compiled {
            program,
            stats,
            chosen,
            candidates,
        } => {
            let p = program.params;
            let _ = writeln!(
                out,
                "fhe params       {} (tfhe-rs 1.8, {}-bit security, {}-value accumulators)",
                p.name(),
                crate::params::SECURITY_BITS,
                p.modulus()
            );
            let _ = writeln!(
                out,
                "fhe quantization {}-bit inputs, {}-bit activations, dot products in {} group(s), the last layer's in {}; worst-case accumulator bounds",
                chosen.input_bits, chosen.act_bits, chosen.groups, chosen.output_groups
            );
            let _ = writeln!(
                out,
                "fhe cost         {} bootstraps, {} accumulators per sample; {} input and {} result ciphertexts",
                stats.bootstraps, stats.accumulators, stats.input_ciphertexts, stats.output_ciphertexts
            );
            let _ = writeln!(
                out,
                "fhe noise        weight 2-norm ≤ {:.1}: each bootstrap fails with p ≤ 2^{:.1}, a sample with p ≤ 2^{:.1}",
                stats.max_norm, stats.log2_p_fail, stats.log2_p_fail_sample
            );
            let _ = writeln!(
                out,
                "fhe error        {:.2e} max, {:.2e} RMS (relative to the float model), top-1 agreement {:.1}% over {} calibration samples",
                chosen.error,
                chosen.rms_error,
                100.0 * chosen.top1_agreement,
                file.calibration_samples
            );
            let _ = writeln!(
                out,
                "fhe candidates   bits in/act, groups hidden/last: bootstraps, RMS error, top-1"
            );
            let mut sorted = candidates.clone();
            sorted.sort_by(|a, b| {
                a.bootstraps
                    .cmp(&b.bootstraps)
                    .then(a.rms_error.total_cmp(&b.rms_error))
            });
            for c in sorted {
                let _ = writeln!(
                    out,
                    "                 {}/{}, {}/{}: {}, {:.2e}, {:.1}%",
                    c.input_bits,
                    c.act_bits,
                    c.groups,
                    c.output_groups,
                    c.bootstraps,
                    c.rms_error,
                    100.0 * c.top1_agreement
                );
            }
        }
    }
    out
}
