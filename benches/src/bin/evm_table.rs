//! The Solidity verifier of each example model, with private and with public inputs (or with
//! hashed inputs and outputs, `--hashed`):
//! compile, setup, prove, generate and compile the verifier, deploy it in revm, verify the
//! real proof, and check that tampered calldata is rejected. Prints one markdown row per case.
//!
//!   cargo run -p zkinfer-benches --bin evm_table [--optimize evm-gas] [--private-only | --hashed]
//!       [--max-prove-memory GIB] [MODEL...]
//!
//! Needs solcjs (scripts/install-solc.sh). Default models: those the test suite proves.
//! `--optimize evm-gas` compiles as `zkinfer compile --optimize evm-gas` does.

use std::path::Path;
use std::time::Instant;

use zkinfer_circuits::artifacts::{write_json, Settings};
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_circuits::{Io, Objective, Visibility};
use zkinfer_model::corpus::{example_dir, PROVING_SLICE_MODELS};
use zkinfer_prover::pipeline::{self, CompileOptions};
use zkinfer_verifier::load_proof;
use zkinfer_verifier::solidity::{self, calldata, evm_verify, tampered_calldata, EvmVerifierError};

/// Proven by the test suite beyond the proving slice (function tables, norms, RNNs, larger).
const MORE_MODELS: &[&str] = &[
    "1l_sqrt",
    "1l_leakyrelu",
    "1l_softmax",
    "1l_sigmoid",
    "1l_tanh",
    "exp",
    "1l_gelu_noappx",
    "layernorm",
    "lstm",
    "rnn",
    "ltsf",
    "2l_relu_sigmoid_conv",
    "variable_cnn",
    "large_mlp",
];

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut objective = Objective::ProveTime;
    let mut visibilities = vec![Io::inputs(Visibility::Private), Io::PUBLIC];
    if let Some(i) = args.iter().position(|a| a == "--optimize") {
        objective = match args.get(i + 1).map(String::as_str) {
            Some("evm-gas") => Objective::EvmGas,
            Some("prove-time") => Objective::ProveTime,
            other => panic!("--optimize prove-time|evm-gas, not {other:?}"),
        };
        args.drain(i..i + 2);
    }
    // As `zkinfer compile` plans: within this machine's memory unless told less (the
    // least-gas shape of the largest models would not fit otherwise).
    let mut max_prove_memory = zkinfer_prover::options::machine_memory();
    if let Some(i) = args.iter().position(|a| a == "--max-prove-memory") {
        let gib: f64 = match args.get(i + 1).map(|g| g.parse()) {
            Some(Ok(g)) => g,
            _ => panic!("--max-prove-memory GIB"),
        };
        max_prove_memory = Some((gib * (1u64 << 30) as f64) as u64);
        args.drain(i..i + 2);
    }
    // A larger proof budget than the objective's default (more columns at a smaller k: what
    // brings the least-gas shape of the largest models within memory).
    let mut max_proof_bytes = None;
    if let Some(i) = args.iter().position(|a| a == "--max-proof-bytes") {
        max_proof_bytes = match args.get(i + 1).map(|b| b.parse::<usize>()) {
            Some(Ok(b)) => Some(b),
            _ => panic!("--max-proof-bytes BYTES"),
        };
        args.drain(i..i + 2);
    }
    if let Some(i) = args.iter().position(|a| a == "--private-only") {
        visibilities = vec![Io::inputs(Visibility::Private)];
        args.remove(i);
    }
    if let Some(i) = args.iter().position(|a| a == "--hashed") {
        visibilities = vec![Io::new(Visibility::Hashed, Visibility::Hashed)];
        args.remove(i);
    }
    let models: Vec<&str> = if args.is_empty() {
        PROVING_SLICE_MODELS
            .iter()
            .chain(MORE_MODELS)
            .copied()
            .collect()
    } else {
        args.iter().map(String::as_str).collect()
    };
    let work = tempfile_dir();
    println!("| model | inputs | public values | advice columns (gate + dot + lookup) | k | code bytes | verify gas | real proof | tampered (7 cases: a flipped byte, output + 1, output + r, a proof scalar + r, a commitment at infinity, 32 bytes appended, truncated) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for name in models {
        for &io in &visibilities {
            let t = Instant::now();
            let dir = work.join(format!("{name}-{}", io.input.name()));
            let row = case(
                name,
                io,
                objective,
                (max_prove_memory, max_proof_bytes),
                &dir,
            );
            println!("{row}");
            let _ = std::fs::remove_dir_all(&dir);
            eprintln!("{name} {io:?}: {:.1}s", t.elapsed().as_secs_f64());
        }
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zkinfer-evm-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn case(
    name: &str,
    io: Io,
    objective: Objective,
    (max_prove_memory, max_proof_bytes): (Option<u64>, Option<usize>),
    dir: &Path,
) -> String {
    let vis = match io.output {
        Visibility::Hashed => format!("{}, outputs hashed", io.input.name()),
        _ => io.input.name().to_string(),
    };
    let e = example_dir(name);
    let input = e.join("input.json");
    let mut opts = CompileOptions {
        io,
        ..Default::default()
    };
    opts.limits.objective = objective;
    opts.limits.max_prove_memory = max_prove_memory;
    if let Some(b) = max_proof_bytes {
        opts.limits.max_proof_bytes = b;
    }
    let settings: Settings = match pipeline::compile(&e.join("network.onnx"), &input, dir, &opts) {
        Ok(s) => s,
        Err(err) => {
            return format!("| {name} | {vis} | — | — | — | — | — | not compiled: {err} | |")
        }
    };
    let p = &settings.plan;
    let columns = format!(
        "{} + {} + {}",
        p.params.base.num_advice_per_phase[0],
        p.params.lincomb_width + (p.params.lincomb_width > 0) as usize,
        p.params
            .base
            .num_lookup_advice_per_phase
            .first()
            .copied()
            .unwrap_or(0)
    );
    let head = format!(
        "| {name} | {vis} | {} | {columns} | {} |",
        p.num_instances, p.k
    );
    if let Err(err) = pipeline::setup(dir, None) {
        return format!("{head} — | — | setup failed: {err} | |");
    }
    let folder = VerifierFolder::open(dir).expect("the folder setup wrote");
    let verifier = match solidity::build(&folder) {
        Ok(v) => v,
        Err(EvmVerifierError::TooLarge { code_size, .. }) => {
            return format!("{head} {code_size} | — | refused: over EIP-170 | |")
        }
        Err(err) => return format!("{head} — | — | {err} | |"),
    };
    let proof = pipeline::prove(dir, &input).expect("proves");
    let path = dir.join("proof.json");
    write_json(&path, &proof).expect("writes");
    let loaded = load_proof(&folder, &path).expect("reads");
    let honest = evm_verify(
        &verifier.compiled.bytecode,
        &calldata(&loaded.instances, &loaded.bytes),
    )
    .expect("deploys");
    let cases = tampered_calldata(&loaded.instances, &loaded.bytes);
    let rejected = cases
        .iter()
        .filter(|(_, data)| {
            !evm_verify(&verifier.compiled.bytecode, data)
                .expect("deploys")
                .accepted
        })
        .count();
    format!(
        "{head} {} | {} | {} | {rejected}/{} rejected |",
        verifier.compiled.deployed.len(),
        honest.gas_used,
        if honest.accepted {
            "accepted"
        } else {
            "REJECTED"
        },
        cases.len()
    )
}
