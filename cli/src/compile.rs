//! `zkinfer compile`'s options as flags; defaults live in `QuantizeOptions` and `PlanLimits`
//! (through [`ModelOptions`], which the service's upload settings share).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use zkinfer_circuits::Visibility;
use zkinfer_model::Weights;
use zkinfer_prover::options::{self, ModelOptions};
use zkinfer_prover::pipeline::CompileOptions;

/// Compile options; defaults live in `QuantizeOptions` and `PlanLimits`.
#[derive(Args)]
pub struct CompileArgs {
    /// Whether the model's inputs are public instances, private, or private with one public
    /// Poseidon commitment per input (hashed).
    #[arg(long, value_enum, default_value_t = InputVisibility::Public)]
    input_visibility: InputVisibility,
    /// Whether the outputs are public instances or one public Poseidon commitment per output
    /// (hashed; the proof file still carries their values, which verify hashes).
    #[arg(long, value_enum, default_value_t = OutputVisibility::Public)]
    output_visibility: OutputVisibility,
    /// fixed: the weights are constants of the circuit (its verifying key pins them). hashed:
    /// private witnesses under one public Poseidon commitment, so the weights stay secret and
    /// one verifier serves every training of the architecture (see --like).
    #[arg(long, value_enum, default_value_t = WeightsArg::Fixed)]
    weights: WeightsArg,
    /// Reproduce the circuit of a sibling folder compiled with --weights hashed (same
    /// architecture, other weights): its scales, widths, visibilities and plan, so both have
    /// byte-identical verifying keys on one SRS. Overrides the other compile options.
    #[arg(long, value_name = "DIR")]
    like: Option<PathBuf>,
    /// Activation scale: values are fixed point with this many fractional bits.
    #[arg(long)]
    scale: Option<u32>,
    /// Fractional bits of non-integer coefficients (relative to the largest one).
    #[arg(long)]
    param_scale: Option<u32>,
    /// Signed bits of range above the calibration maximum.
    #[arg(long)]
    range_headroom_bits: Option<u32>,
    /// Largest proof, in bytes: the circuit shape that proves fastest within it is chosen.
    /// More bytes allow more columns, hence fewer rows and faster proofs. Default: 3072
    /// (EZKL's usual proof), raised by 1024-byte steps up to 5120 for circuits of 2^18 rows
    /// or more where each step at least halves the estimated proving work (or where the
    /// circuit would not fit in memory otherwise).
    /// A budget given here is kept.
    #[arg(long)]
    max_proof_bytes: Option<usize>,
    /// Use exactly 2^K rows instead of choosing (the proof-size limit still applies).
    #[arg(long, value_name = "K")]
    logrows: Option<u32>,
    /// What the chosen circuit shape makes least: proving time (more columns, smaller k) or
    /// the Solidity verifier's gas (fewest columns, larger k) for proofs checked on chain.
    #[arg(long, value_enum, default_value_t = Optimize::ProveTime)]
    optimize: Optimize,
    /// Multiply every product out instead of checking products that share a factor by
    /// Freivalds' algorithm (for comparison; the planner already picks the faster shape).
    #[arg(long)]
    no_freivalds: bool,
    /// Refuse a circuit whose proving would need more than this many GiB of memory (estimated;
    /// default: this machine's memory). Raise it to compile for a larger prover machine.
    #[arg(long, value_name = "GIB")]
    max_prove_memory: Option<f64>,
    /// Keep every circuit's Solidity verifier within EIP-170's 24,576 bytes of code (one
    /// contract; estimated from the shape, `evm-verifier` measures): fewer columns where
    /// needed, and with --max-prove-memory, more segments rather than a larger verifier.
    #[arg(long)]
    fit_evm: bool,
    /// accuracy: the given scales (default 16 bits); resources: the fewest scale bits (up to
    /// --scale) whose error on the calibration samples stays within --max-error, for
    /// narrower range checks and often a smaller k. `inspect` shows the scales and error.
    #[arg(long, value_enum, default_value_t = CompileTarget::Accuracy)]
    target: CompileTarget,
    /// The largest relative error (max |fixed − float| / max |float| on the calibration
    /// samples) --target resources may reach.
    #[arg(long, value_name = "REL", default_value_t = options::DEFAULT_MAX_ERROR)]
    max_error: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompileTarget {
    Accuracy,
    Resources,
}

#[derive(Clone, Copy, ValueEnum)]
enum WeightsArg {
    Fixed,
    Hashed,
}

#[derive(Clone, Copy, ValueEnum)]
enum InputVisibility {
    Public,
    Private,
    Hashed,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputVisibility {
    Public,
    Hashed,
}

#[derive(Clone, Copy, ValueEnum)]
enum Optimize {
    ProveTime,
    EvmGas,
}

impl CompileArgs {
    pub fn options(&self) -> CompileOptions {
        let mut opts = ModelOptions {
            input_visibility: Some(match self.input_visibility {
                InputVisibility::Public => Visibility::Public,
                InputVisibility::Private => Visibility::Private,
                InputVisibility::Hashed => Visibility::Hashed,
            }),
            output_visibility: Some(match self.output_visibility {
                OutputVisibility::Public => Visibility::Public,
                OutputVisibility::Hashed => Visibility::Hashed,
            }),
            weights: Some(match self.weights {
                WeightsArg::Fixed => Weights::Fixed,
                WeightsArg::Hashed => Weights::Hashed,
            }),
            scale: self.scale,
            param_scale: self.param_scale,
            range_headroom_bits: self.range_headroom_bits,
            max_proof_bytes: self.max_proof_bytes,
            logrows: self.logrows,
            optimize: Some(match self.optimize {
                Optimize::ProveTime => options::Optimize::ProveTime,
                Optimize::EvmGas => options::Optimize::EvmGas,
            }),
            freivalds: self.no_freivalds.then_some(false),
            max_prove_memory_gib: self.max_prove_memory,
            fit_evm: self.fit_evm.then_some(true),
            target: Some(match self.target {
                CompileTarget::Accuracy => options::Target::Accuracy,
                CompileTarget::Resources => options::Target::Resources,
            }),
            max_error: Some(self.max_error),
            like: None,
            segments: None,
        }
        .compile_options();
        opts.like = self.like.clone();
        opts
    }
}
