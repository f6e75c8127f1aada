//! `zkinfer fhe …`: encrypted inference with TFHE on a compiled model's FHE program.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use zkinfer_fhe::folder::{self, Outcome};
use zkinfer_fhe::{files, ClientSide, FheOptions, ParamSet, ServerSide};

/// FHE flags of `zkinfer compile`.
#[derive(Args)]
pub struct FheCompileArgs {
    /// Skip the FHE program (fhe.json).
    #[arg(long)]
    no_fhe: bool,
    /// TFHE parameter set: m2c2 (4-bit accumulators, fast bootstraps) or m3c3 (6-bit).
    #[arg(long, default_value = "m3c3", value_parser = parse_params)]
    fhe_params: ParamSet,
    /// Bits per encrypted input element (default: searched).
    #[arg(long, value_name = "BITS")]
    fhe_input_bits: Option<u32>,
    /// Bits per activation between layers (default: searched).
    #[arg(long, value_name = "BITS")]
    fhe_act_bits: Option<u32>,
    /// Groups each dot product is split into, each one more bootstrap per neuron for finer
    /// weights (default: searched among 1, 2, 3, 4).
    #[arg(long, value_name = "N")]
    fhe_groups: Option<usize>,
    /// Groups of the last layer's dot products, decrypted and added up by the client (default:
    /// searched among 1, 2, 4, 8).
    #[arg(long, value_name = "N")]
    fhe_output_groups: Option<usize>,
    /// Most bootstraps per sample the searched quantization may use.
    #[arg(long, value_name = "N")]
    fhe_max_bootstraps: Option<usize>,
    /// Bound on log2 of one bootstrap's failure probability.
    #[arg(long, value_name = "LOG2", default_value_t = zkinfer_fhe::DEFAULT_LOG2_P_FAIL, allow_negative_numbers = true)]
    fhe_log2_p_fail: f64,
}

fn parse_params(s: &str) -> Result<ParamSet, String> {
    ParamSet::parse(s).ok_or_else(|| format!("unknown parameter set {s:?} (m2c2 or m3c3)"))
}

impl FheCompileArgs {
    /// The options, or `None` with `--no-fhe`.
    pub fn options(&self) -> Option<FheOptions> {
        (!self.no_fhe).then_some(FheOptions {
            params: self.fhe_params,
            input_bits: self.fhe_input_bits,
            act_bits: self.fhe_act_bits,
            groups: self.fhe_groups,
            output_groups: self.fhe_output_groups,
            log2_p_fail: self.fhe_log2_p_fail,
            max_bootstraps: self.fhe_max_bootstraps,
        })
    }
}

/// Compiles the FHE program of a model into its folder (after the circuit's compile) and prints
/// one line about it.
pub fn compile(
    model: &Path,
    calibration: &Path,
    out: &Path,
    model_sha256: &str,
    opts: &FheOptions,
) -> Result<()> {
    let t = Instant::now();
    let file = folder::compile_files(model, calibration, model_sha256, out, opts)?;
    match &file.outcome {
        Outcome::Compiled { stats, chosen, .. } => println!(
            "fhe program ({}, {:.1}s): {}-bit inputs, {}-bit activations, {}/{} groups: {} bootstraps per sample, RMS error {:.2e}, top-1 agreement {:.1}% on {} samples",
            opts.params.name(),
            t.elapsed().as_secs_f64(),
            chosen.input_bits,
            chosen.act_bits,
            chosen.groups,
            chosen.output_groups,
            stats.bootstraps,
            chosen.rms_error,
            100.0 * chosen.top1_agreement,
            file.calibration_samples
        ),
        Outcome::Refused { reason } => println!("fhe program: none ({reason})"),
    }
    Ok(())
}

/// `zkinfer fhe …`.
#[derive(Subcommand)]
pub enum FheCommand {
    /// Make a key set for a model's FHE program: KEYS/client.key (secret, stays with the
    /// client), KEYS/server.key (to upload), KEYS/keyset.json.
    Keygen {
        /// A compiled model folder.
        dir: PathBuf,
        /// The key set folder to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Encrypt an input (EZKL format) under a key set.
    Encrypt {
        /// The key set folder.
        keys: PathBuf,
        /// EZKL-format input.
        #[arg(long)]
        input: PathBuf,
        /// The ciphertext file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Evaluate the model on encrypted inputs (the server's side).
    Run {
        /// A compiled model folder.
        dir: PathBuf,
        /// The key set's server key.
        #[arg(long)]
        server_key: PathBuf,
        /// The encrypted inputs.
        ciphertext: PathBuf,
        /// The encrypted result to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Decrypt a result: prints the outputs as JSON.
    Decrypt {
        /// The key set folder.
        keys: PathBuf,
        /// The encrypted result.
        result: PathBuf,
    },
    /// The same computation in the clear: prints exactly what the encrypted run decrypts to.
    Simulate {
        /// A compiled model folder.
        dir: PathBuf,
        /// EZKL-format input.
        #[arg(long)]
        input: PathBuf,
    },
}

/// What decrypt and simulate print.
#[derive(Serialize)]
struct Outputs {
    outputs: Vec<Vec<f64>>,
    integers: Vec<u64>,
}

fn read_input(path: &Path) -> Result<Vec<Vec<f64>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(zkinfer_model::parse_input_json(&text)?)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs one `zkinfer fhe` command.
pub fn dispatch(command: FheCommand) -> Result<()> {
    match command {
        FheCommand::Keygen { dir, out } => {
            let program = folder::program(&dir)?;
            let t = Instant::now();
            let pair = crate::step("fhe keygen", || Ok(ClientSide::generate(&program)?))?;
            ClientSide::save(&pair, &out)?;
            let info = &pair.client.info;
            println!(
                "key set {} written to {}: {} ({}-bit security), client key {} bytes, server key {} bytes, {:.1}s",
                info.key_id,
                out.display(),
                info.params.name(),
                info.security_bits,
                pair.client_key_bytes,
                pair.server_key.len(),
                t.elapsed().as_secs_f64()
            );
            println!(
                "keep {} secret; upload {}",
                out.join(files::CLIENT_KEY).display(),
                out.join(files::SERVER_KEY).display()
            );
        }
        FheCommand::Encrypt { keys, input, out } => {
            let client = ClientSide::open(&keys)?;
            let bytes = client.encrypt(&read_input(&input)?)?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "encrypted input written to {} ({} bytes)",
                out.display(),
                bytes.len()
            );
        }
        FheCommand::Run {
            dir,
            server_key,
            ciphertext,
            out,
        } => {
            let program = folder::program(&dir)?;
            let total = program.stats().bootstraps;
            let key = read(&server_key)?;
            let server = crate::step("load server key", || {
                Ok(ServerSide::load(
                    program,
                    &key,
                    &server_key.display().to_string(),
                )?)
            })?;
            let ct = read(&ciphertext)?;
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} bootstraps {elapsed} (eta {eta})",
                )
                .expect("static template"),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            let (result, report) =
                server.run(&ct, &ciphertext.display().to_string(), &|d, _| {
                    bar.set_position(d as u64)
                })?;
            bar.finish_and_clear();
            std::fs::write(&out, &result).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "encrypted result written to {} ({} bytes): {} bootstraps in {:.2}s ({:.3}s each)",
                out.display(),
                result.len(),
                report.bootstraps,
                report.seconds,
                report.seconds / report.bootstraps.max(1) as f64
            );
        }
        FheCommand::Decrypt { keys, result } => {
            let client = ClientSide::open(&keys)?;
            let (integers, outputs) =
                client.decrypt(&read(&result)?, &result.display().to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&Outputs { outputs, integers })?
            );
        }
        FheCommand::Simulate { dir, input } => {
            let program = folder::program(&dir)?;
            let (integers, outputs) = program.run_clear(&read_input(&input)?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&Outputs { outputs, integers })?
            );
        }
    }
    Ok(())
}
