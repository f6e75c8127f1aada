//! `zkinfer`: compile an ONNX model into a halo2 circuit, set up keys, prove and verify.
//!
//! Each subcommand is one library call; this file only parses arguments, shows progress and
//! maps errors to exit codes (0 success, 1 failure with a one-line reason, 2 usage).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use zkinfer_circuits::artifacts::write_json;
use zkinfer_prover::pipeline;
use zkinfer_prover::segments::Compiled;
use zkinfer_prover::srs;
use zkinfer_verifier::VerifyOptions;

mod compile;
mod evm;
mod fhe;
#[cfg(feature = "gpu")]
mod gpu;
mod hash;
mod segments;
mod service;

#[derive(Parser)]
#[command(
    name = "zkinfer",
    version,
    about = "Zero-knowledge proofs of ONNX model inference (halo2, KZG on BN254)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import, quantize and lay out the circuit; writes DIR/.
    Compile {
        /// The ONNX model.
        model: PathBuf,
        /// EZKL-format input used to calibrate ranges.
        #[arg(long)]
        calibration: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        opts: compile::CompileArgs,
        #[command(flatten)]
        fhe_opts: fhe::FheCompileArgs,
        /// Cut the model into N segments, each its own circuit and keys, whose proofs are
        /// linked by commitments to the tensors that cross each cut (for models too large to
        /// prove in one circuit).
        #[arg(long, value_name = "N")]
        segments: Option<usize>,
    },
    /// Generate keys; without --srs, makes a local development SRS and says so.
    Setup {
        /// A compiled model folder.
        dir: PathBuf,
        /// A ceremony file (perpetual powers of tau in halo2's raw format, or a .ptau), for k
        /// at least the circuit's; every point is checked. Or a folder of them: the raw file
        /// of exactly the circuit's k (its Lagrange basis is read), else the least k above.
        #[arg(long)]
        srs: Option<PathBuf>,
    },
    /// Integer reference evaluation only: prints the outputs as JSON, no proof.
    Run {
        /// A compiled model folder.
        dir: PathBuf,
        /// EZKL-format input.
        #[arg(long)]
        input: PathBuf,
    },
    /// Prove one inference; writes PROOF.json.
    Prove {
        /// A compiled model folder with keys.
        dir: PathBuf,
        /// EZKL-format input.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the proof.
        #[arg(long)]
        out: PathBuf,
        /// Commit hashed inputs with this salt (hex, up to 64 digits; keep it: verifying the
        /// input later needs it). Default 0.
        #[arg(long, value_name = "HEX")]
        salt: Option<String>,
        /// A model in segments: prove up to N segments at once, as this machine's memory
        /// allows by their estimates (default 1: in order).
        #[arg(long, value_name = "N", default_value_t = 1)]
        jobs: usize,
    },
    /// Verify a proof: exit 0 if valid, exit 1 with a one-line reason otherwise.
    Verify {
        /// The model folder (only its settings, verifying key and SRS points are read).
        dir: PathBuf,
        /// The proof file.
        proof: PathBuf,
        /// Require the folder to be this model (the 64-hex model id that setup printed).
        #[arg(long, value_name = "HEX")]
        model_id: Option<String>,
        /// Require the folder's SRS points to be those of this ceremony file (.ptau or halo2
        /// raw format, any k), or of the one a folder of them lends for the circuit's k.
        #[arg(long, value_name = "FILE")]
        srs: Option<PathBuf>,
        /// Require the proof to be of this input (EZKL format; public inputs, or hashed ones
        /// through their commitments).
        #[arg(long, value_name = "INPUT.json")]
        input: Option<PathBuf>,
        /// The salt hashed inputs were committed with (with --input).
        #[arg(long, value_name = "HEX", requires = "input")]
        salt: Option<String>,
    },
    /// Write the folder's Solidity verifier (OUT.sol), its creation bytecode (OUT.bin, hex)
    /// and ABI (OUT.abi.json); refuses one over EIP-170's code limit.
    EvmVerifier {
        /// A model folder with keys.
        dir: PathBuf,
        /// The Solidity file to write (default DIR/Verifier.sol); .bin and .abi.json go beside it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the calldata the Solidity verifier takes for a proof (0x-hex).
    EvmCalldata {
        /// The model folder.
        dir: PathBuf,
        /// The proof file.
        proof: PathBuf,
    },
    /// Deploy the folder's Solidity verifier in an in-process EVM and call it with a proof:
    /// prints valid (exit 0) or invalid (exit 1), the transaction gas and the code size.
    EvmVerify {
        /// The model folder.
        dir: PathBuf,
        /// The proof file.
        proof: PathBuf,
        /// Deploy this creation bytecode (hex, as evm-verifier wrote it) instead of generating
        /// the folder's verifier anew.
        #[arg(long, value_name = "FILE.bin")]
        bytecode: Option<PathBuf>,
    },
    /// Print the ModelRegistry's registerChain calldata (0x-hex) for a segmented model whose
    /// segment verifiers (each segment-<i>'s evm-verifier) are deployed at the given addresses.
    EvmChain {
        /// The segmented model folder.
        dir: PathBuf,
        /// The segment verifiers' addresses, in segment order, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        verifiers: Vec<String>,
        /// The metadata URI to record with the model.
        #[arg(long, default_value = "")]
        metadata_uri: String,
    },
    /// Write the bytecode (NAME.bin, hex) and ABI (NAME.abi.json) of the contracts in
    /// contracts/: ModelRegistry, ERC7007Adapter, OracleConsumer.
    EvmContracts {
        /// The folder to write them to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the HTTP proving service (and, unless --workers 0, proving workers in process).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        #[command(flatten)]
        service: service::ServiceArgs,
        /// Worker loops in this process (0: none; run `zkinfer worker` elsewhere).
        #[arg(long, default_value_t = 1)]
        workers: usize,
        #[command(flatten)]
        metrics: service::MetricsArgs,
    },
    /// The process a worker loop runs its jobs in (started by serve and worker).
    #[command(hide = true)]
    JobRunner {
        /// The worker loop it runs jobs for.
        #[arg(long)]
        worker: Option<String>,
    },
    /// Run proving workers on a shared database and store (no HTTP).
    Worker {
        #[command(flatten)]
        service: service::ServiceArgs,
        /// Worker loops in this process.
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    /// API keys of the service.
    Keys {
        #[command(subcommand)]
        command: service::KeysCommand,
    },
    /// Encrypted inference (TFHE): keys, encryption, the encrypted run, decryption, and the
    /// clear simulation.
    Fhe {
        #[command(subcommand)]
        command: fhe::FheCommand,
    },
    /// The commitments of hashed inputs or outputs, from the files alone: 64 hex digits per
    /// tensor, as among a proof's instances.
    Hash {
        #[command(subcommand)]
        command: hash::HashCommand,
    },
    /// Show ops, shapes, scales, k, rows, columns and lookups of a compiled folder.
    Inspect {
        /// A compiled model folder.
        dir: PathBuf,
    },
    /// Generate a local SRS file for circuits up to 2^K rows.
    GenSrs {
        /// log2 of the number of rows.
        #[arg(long)]
        logrows: u32,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `f` under a spinner on stderr (hidden when stderr is not a terminal).
fn step<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("static template"),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let t = Instant::now();
    let r = f();
    bar.finish_and_clear();
    if r.is_ok() {
        eprintln!("{what}: done in {:.2}s", t.elapsed().as_secs_f64());
    }
    r
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .compact()
        .init();
    // Library code returns typed errors; a panic is a bug, reported on one line all the same.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error (please report): {msg}");
    }));
    if let Err(e) = zkinfer_circuits::cpu::check() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let result = std::panic::catch_unwind(|| dispatch(cli.command));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}

/// The outputs when short, else how many there are.
fn brief(outputs: &[Vec<f64>]) -> String {
    let n: usize = outputs.iter().map(Vec::len).sum();
    if n <= 16 {
        format!("{outputs:?}")
    } else {
        format!("({n} values)")
    }
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Compile {
            model,
            calibration,
            out,
            opts,
            fhe_opts,
            segments: count,
        } => {
            let compiled = step("compile", || {
                Ok(zkinfer_prover::segments::compile_or_segment(
                    &model,
                    &calibration,
                    &out,
                    &opts.options(),
                    count,
                )?)
            })?;
            let sha = match compiled {
                Compiled::One(s) => {
                    let p = &s.plan;
                    println!(
                        "compiled {} → {}: k={}, {}, range table 2^{}, {} public instances, {}-byte proofs (budget {}), proving needs ≈ {}",
                        model.display(),
                        out.display(),
                        p.k,
                        p.columns(),
                        p.lookup_bits,
                        p.num_instances,
                        p.proof_bytes,
                        p.proof_budget,
                        pipeline::gib(p.prove_memory_bytes)
                    );
                    s.model_sha256
                }
                Compiled::Segments(file) => segments::describe(&model, &out, &file)?,
            };
            if let Some(o) = fhe_opts.options() {
                fhe::compile(&model, &calibration, &out, &sha, &o)?;
            }
        }
        Command::Fhe { command } => fhe::dispatch(command)?,
        Command::Setup { dir, srs } => {
            if srs.is_none() {
                eprintln!("note: no --srs given: generating a local development SRS (fine for testing; use a ceremony SRS in production)");
            }
            if zkinfer_prover::segments::is_segmented(&dir) {
                return segments::setup(&dir, srs.as_deref());
            }
            let r = step("setup", || Ok(pipeline::setup(&dir, srs.as_deref())?))?;
            println!(
                "keys written to {}: k={}, proving key {} bytes, verifying key {} bytes",
                dir.display(),
                r.k,
                r.pk_bytes,
                r.vk_bytes
            );
            println!("model id {}", r.model_id);
            if let Some(a) = &r.architecture_id {
                println!("architecture id {a} (shared by every training compiled --like this one)");
            }
            println!("SRS      {}", r.srs);
        }
        Command::Run { dir, input } => {
            let out = pipeline::run(&dir, &input)?;
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Prove {
            dir,
            input,
            out,
            salt,
            jobs,
        } => {
            let salt = hash::salt(salt.as_deref())?;
            if zkinfer_prover::segments::is_segmented(&dir) {
                return segments::prove(&dir, &input, &out, salt, jobs);
            }
            if jobs != 1 {
                anyhow::bail!(
                    "--jobs applies to a model in segments; {} is one circuit",
                    dir.display()
                );
            }
            let salt = salt.unwrap_or(zkinfer_circuits::Fr::zero());
            let proof = step("prove", || Ok(pipeline::prove_salted(&dir, &input, salt)?))?;
            write_json(&out, &proof).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "proof written to {} ({} proof bytes, outputs {}; proven on the {})",
                out.display(),
                (proof.proof.len() - 2) / 2,
                brief(&proof.outputs),
                zkinfer_prover::BACKEND
            );
        }
        Command::Verify {
            dir,
            proof,
            model_id,
            srs,
            input,
            salt,
        } => {
            let opts = VerifyOptions {
                model_id: model_id.as_deref(),
                srs: srs.as_deref(),
                input: input.as_deref(),
                salt: hash::salt(salt.as_deref())?,
            };
            let v = zkinfer_verifier::verify_file(&dir, &proof, &opts)?;
            println!("valid proof");
            println!(
                "model id {} ({})",
                v.model_id,
                if v.pinned {
                    "pinned"
                } else {
                    "not pinned: pass --model-id to require it"
                }
            );
            println!("SRS      {}", v.srs);
            let hashed = |c: &[String]| format!("hashed, commitment {}", c.join(", "));
            match (&v.inputs, &input) {
                (Some(i), Some(path)) => {
                    println!("inputs   {} (those of {})", brief(i), path.display())
                }
                (Some(i), None) => println!("inputs   {}", brief(i)),
                (None, Some(path)) if !v.commitments.inputs.is_empty() => println!(
                    "inputs   {} (those of {})",
                    hashed(&v.commitments.inputs),
                    path.display()
                ),
                (None, _) if !v.commitments.inputs.is_empty() => {
                    println!("inputs   {}", hashed(&v.commitments.inputs))
                }
                (None, _) => println!("inputs   private"),
            }
            if v.commitments.outputs.is_empty() {
                println!("outputs  {}", brief(&v.outputs));
            } else {
                println!(
                    "outputs  {} ({})",
                    brief(&v.outputs),
                    hashed(&v.commitments.outputs)
                );
            }
        }
        Command::EvmVerifier { dir, out } => evm::verifier(dir, out)?,
        Command::EvmCalldata { dir, proof } => evm::calldata(dir, proof)?,
        Command::EvmVerify {
            dir,
            proof,
            bytecode,
        } => evm::verify(dir, proof, bytecode)?,
        Command::EvmChain {
            dir,
            verifiers,
            metadata_uri,
        } => evm::register_chain(dir, verifiers, metadata_uri)?,
        Command::EvmContracts { out } => evm::contracts(out)?,
        Command::Serve {
            bind,
            service,
            workers,
            metrics,
        } => service::serve(service, &bind, workers, metrics)?,
        Command::Worker { service, workers } => service::work(service, workers)?,
        Command::JobRunner { worker } => service::job_runner(worker.as_deref())?,
        Command::Keys { command } => service::keys(command)?,
        Command::Hash { command } => hash::dispatch(command)?,
        Command::Inspect { dir } => {
            if zkinfer_prover::segments::is_segmented(&dir) {
                print!("{}", zkinfer_prover::segments::inspect_segments(&dir)?);
            } else {
                print!("{}", pipeline::inspect(&dir)?);
            }
            if let Ok(file) = zkinfer_fhe::folder::read(&dir) {
                print!("{}", zkinfer_fhe::folder::describe(&file));
            }
        }
        Command::GenSrs { logrows, out } => {
            let params = step(&format!("generate SRS k={logrows}"), || {
                Ok(srs::generate(logrows)?)
            })?;
            save_srs(&out, &params)?;
            println!(
                "SRS for k={logrows} written to {} (local randomness: for development)",
                out.display()
            );
        }
    }
    Ok(())
}

fn save_srs(
    out: &Path,
    params: &zkinfer_circuits::halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG<
        zkinfer_circuits::Bn256,
    >,
) -> Result<()> {
    Ok(srs::save(out, params)?)
}
