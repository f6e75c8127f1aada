//! `zkinfer hash`: the commitments a proof of a hashed model holds, computed from the files a
//! client has (an input or the outputs, and the folder's settings.json; the ONNX file for the
//! weights), as 64 lowercase hex digits, one line per tensor, in the order of the proof's
//! instances.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use zkinfer_circuits::artifacts::{files, read_json, Settings};
use zkinfer_circuits::commit::{commit_weight_tensors, commitment_hex, parse_salt};
use zkinfer_circuits::Fr;
use zkinfer_model::Weights;

#[derive(Subcommand)]
pub enum HashCommand {
    /// The commitment of each input of an EZKL-format input file.
    Input {
        /// EZKL-format input.
        file: PathBuf,
        /// The compiled model folder (its settings.json gives shapes, scale and slot width).
        dir: PathBuf,
        /// The salt the prover commits with (hex, up to 64 digits; default 0).
        #[arg(long, value_name = "HEX")]
        salt: Option<String>,
    },
    /// The commitment of each output: FILE is JSON with `outputs` (a proof file, or what
    /// `zkinfer run` prints).
    Output {
        /// The outputs.
        file: PathBuf,
        /// The compiled model folder.
        dir: PathBuf,
    },
    /// The weight commitment of an ONNX model (its weights quantized as `compile --weights
    /// hashed` quantizes them) for the circuit of DIR, a folder compiled with --weights
    /// hashed: DIR's own model, or a sibling of its architecture.
    Weights {
        /// The ONNX model.
        model: PathBuf,
        /// A folder compiled with --weights hashed (scale and weight width).
        dir: PathBuf,
    },
}

/// Parses a `--salt`.
pub fn salt(text: Option<&str>) -> Result<Option<Fr>> {
    text.map(|s| {
        parse_salt(s).with_context(|| {
            format!("--salt {s}: not a field element (at most 64 hex digits, below p)")
        })
    })
    .transpose()
}

fn settings(dir: &Path) -> Result<Settings> {
    Ok(read_json(&dir.join(files::SETTINGS))?)
}

/// The weight commitment of `model` for the circuit of folder `dir`.
fn weights(model: &Path, dir: &Path) -> Result<Fr> {
    let s = settings(dir)?;
    if s.weights != Weights::Hashed {
        anyhow::bail!(
            "{} was compiled with fixed weights: its circuit commits to none",
            dir.display()
        );
    }
    let graph = zkinfer_model::load_onnx_with(model, Weights::Hashed)
        .with_context(|| model.display().to_string())?;
    let tensors = zkinfer_model::quantize_params(&graph, s.scale)?;
    let tensors = tensors
        .iter()
        .map(|(shape, v)| (shape.as_slice(), v.as_slice()));
    commit_weight_tensors(s.scale, s.weight_bits, tensors).with_context(|| {
        format!(
            "{}: its weights do not fit {}'s {}-bit weight slots",
            model.display(),
            dir.display(),
            s.weight_bits
        )
    })
}

pub fn dispatch(command: HashCommand) -> Result<()> {
    let commitments = match command {
        HashCommand::Input { file, dir, salt: s } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let data = zkinfer_model::parse_input_json(&text)
                .with_context(|| file.display().to_string())?;
            let salt = salt(s.as_deref())?.unwrap_or(Fr::zero());
            settings(&dir)?.commit_inputs(&data, salt)?
        }
        HashCommand::Output { file, dir } => {
            #[derive(serde::Deserialize)]
            struct Outputs {
                outputs: Vec<Vec<f64>>,
            }
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let o: Outputs = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not JSON with \"outputs\" (lists of numbers)",
                    file.display()
                )
            })?;
            settings(&dir)?.commit_outputs(&o.outputs)?
        }
        HashCommand::Weights { model, dir } => vec![weights(&model, &dir)?],
    };
    for c in &commitments {
        println!("{}", commitment_hex(c));
    }
    Ok(())
}
