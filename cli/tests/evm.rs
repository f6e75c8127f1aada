//! Solidity verifiers: generated from a folder, compiled by solcjs, deployed in revm. Each must
//! accept the real proof and reject a flipped proof byte, an output moved by one, the
//! non-canonical twin `x + r` of an output and a truncated proof; one that would not fit
//! EIP-170 is refused. The test script installs solcjs (scripts/install-solc.sh).

mod common;

use std::path::{Path, PathBuf};

use common::{compile_and_setup, example, expect_failure, expect_success, p, zkinfer};
use zkinfer_circuits::artifacts::write_json;
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_circuits::{Objective, PlanLimits, Visibility};
use zkinfer_prover::pipeline::{self, CompileOptions};
use zkinfer_verifier::evm::MAX_CODE_SIZE;
use zkinfer_verifier::evm::{account, Evm};
use zkinfer_verifier::solidity::{self, calldata, evm_verify, tampered_calldata};
use zkinfer_verifier::{load_proof, verify_calldata, LoadedProof};

/// `name` compiled with `visibility`, set up and proven on its own input in `tmp/<name>`.
fn proven(tmp: &Path, name: &str, visibility: Visibility) -> (PathBuf, PathBuf) {
    proven_with(tmp, name, visibility, Objective::ProveTime)
}

fn proven_with(
    tmp: &Path,
    name: &str,
    visibility: Visibility,
    objective: Objective,
) -> (PathBuf, PathBuf) {
    let budget = PlanLimits::default().max_proof_bytes;
    proven_from(tmp, &example(name), name, visibility, objective, budget)
}

fn proven_from(
    tmp: &Path,
    e: &Path,
    name: &str,
    visibility: Visibility,
    objective: Objective,
    max_proof_bytes: usize,
) -> (PathBuf, PathBuf) {
    let input = e.join("input.json");
    let dir = tmp.join(format!("{name}-{objective:?}"));
    let mut opts = CompileOptions {
        io: zkinfer_circuits::Io::inputs(visibility),
        ..Default::default()
    };
    opts.limits.objective = objective;
    opts.limits.max_proof_bytes = max_proof_bytes;
    pipeline::compile(&e.join("network.onnx"), &input, &dir, &opts).unwrap();
    pipeline::setup(&dir, None).unwrap();
    let proof = pipeline::prove(&dir, &input).unwrap();
    let path = dir.join("proof.json");
    write_json(&path, &proof).unwrap();
    (dir, path)
}

#[test]
fn verifiers_accept_real_proofs_and_reject_tampered_calldata() {
    let tmp = tempfile::tempdir().unwrap();
    // Public and private inputs; the gate alone, a function lookup, the dot-product columns.
    for (name, visibility, public_values) in [
        ("1l_mlp", Visibility::Public, 7),
        ("1l_sigmoid", Visibility::Private, 3),
        ("4l_relu_conv_fc", Visibility::Private, 10),
    ] {
        let (dir, proof) = proven(tmp.path(), name, visibility);
        accepted_and_tamper_rejected_on_the_evm(name, &dir, &proof, public_values);
    }
}

fn accepted_and_tamper_rejected_on_the_evm(
    name: &str,
    dir: &Path,
    proof: &Path,
    public_values: usize,
) {
    let folder = VerifierFolder::open(dir).unwrap();
    let verifier = solidity::build(&folder).unwrap();
    assert_eq!(verifier.num_instances, public_values, "{name}");
    assert!(verifier.compiled.deployed.len() <= MAX_CODE_SIZE, "{name}");
    let LoadedProof {
        instances, bytes, ..
    } = load_proof(&folder, proof).unwrap();
    let honest = evm_verify(&verifier.compiled.bytecode, &calldata(&instances, &bytes)).unwrap();
    assert!(honest.accepted, "{name}: the real proof is rejected");
    assert_eq!(honest.code_size, verifier.compiled.deployed.len(), "{name}");
    assert!(verify_calldata(&folder, &calldata(&instances, &bytes)).is_ok());
    let cases = tampered_calldata(&instances, &bytes);
    assert_eq!(cases.len(), 7);
    for (what, data) in cases {
        let verdict = evm_verify(&verifier.compiled.bytecode, &data).unwrap();
        assert!(!verdict.accepted, "{name}: {what} accepted");
        // The native verifier agrees on every malformed proof.
        assert!(
            verify_calldata(&folder, &data).is_err(),
            "{name}: {what} accepted natively"
        );
    }
    // The verifier says what it verifies to a 4-byte call, as revert data (only a valid
    // proof makes a call succeed), and nothing to another selector.
    let mut chain = Evm::new();
    let at = chain
        .deploy(account(1), &verifier.compiled.bytecode)
        .unwrap()
        .address;
    let info = chain
        .call(account(1), at, &solidity::info_selector(), 100_000)
        .unwrap();
    assert!(!info.success(), "{name}");
    let mut want = hex::decode(&folder.model_id).unwrap();
    let hashed = folder.architecture_id.is_some() as usize;
    for v in [public_values, folder.settings.num_input_instances(), hashed] {
        want.extend([0u8; 24]);
        want.extend((v as u64).to_be_bytes());
    }
    assert_eq!(info.output, want, "{name}");
    let other = chain.call(account(1), at, &[1, 2, 3, 4], 100_000).unwrap();
    assert!(!other.success(), "{name}");
}

/// A circuit with Freivalds checks has a second phase (a challenge drawn after the first
/// commitments); its Solidity verifier squeezes that challenge too, accepts the real proof
/// and rejects tampered ones.
#[test]
fn a_two_phase_circuit_verifies_on_the_evm() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture =
        zkinfer_model::corpus::manifest_dir().join("../model/tests/fixtures/attention_products");
    // At 4 KB of proof the fastest shape checks its products by Freivalds (at the default
    // 3 KB, the fixture is small enough to multiply them out at k = 17).
    let (dir, proof) = proven_from(
        tmp.path(),
        &fixture,
        "attention_products",
        Visibility::Private,
        Objective::ProveTime,
        4096,
    );
    let settings = std::fs::read_to_string(dir.join("settings.json")).unwrap();
    assert!(
        settings.contains("\"freivalds\": true"),
        "the fixture must compile to Freivalds checks"
    );
    accepted_and_tamper_rejected_on_the_evm("attention_products", &dir, &proof, 4);
}

/// `--optimize evm-gas` takes one gate column and no dot-product columns (at a larger k): the
/// verifier has fewer commitments to multiply, and costs less gas than the default shape.
#[test]
fn optimizing_for_gas_takes_fewer_columns_and_less_gas() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["1l_mlp", "1l_average"] {
        let mut gas = Vec::new();
        for objective in [Objective::ProveTime, Objective::EvmGas] {
            let (dir, proof) = proven_with(tmp.path(), name, Visibility::Private, objective);
            let folder = VerifierFolder::open(&dir).unwrap();
            let plan = &folder.settings.plan;
            let narrow =
                plan.params.base.num_advice_per_phase[0] == 1 && plan.params.lincomb_width == 0;
            assert_eq!(
                narrow,
                objective == Objective::EvmGas,
                "{name} {objective:?}"
            );
            let verifier = solidity::build(&folder).unwrap();
            let p = load_proof(&folder, &proof).unwrap();
            let verdict = evm_verify(
                &verifier.compiled.bytecode,
                &calldata(&p.instances, &p.bytes),
            )
            .unwrap();
            assert!(verdict.accepted, "{name} {objective:?}");
            gas.push(verdict.gas_used);
        }
        assert!(gas[1] < gas[0], "{name}: {gas:?}");
    }
}

/// The generator alone reduces every scalar mod r and reads no further than the proof: without
/// zkinfer's hardening, `x + r` passes as `x` for a public value and for a scalar of the proof,
/// and bytes appended to the proof are ignored. The hardened verifier refuses all three; the
/// native verifier refused the scalar already, and now refuses the appended bytes too.
#[test]
fn the_hardening_is_what_rejects_non_canonical_scalars_and_trailing_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, proof) = proven(tmp.path(), "1l_relu", Visibility::Public);
    let folder = VerifierFolder::open(&dir).unwrap();
    let LoadedProof {
        instances, bytes, ..
    } = load_proof(&folder, &proof).unwrap();
    let guarded = solidity::build(&folder).unwrap();
    let raw_source = snark_verifier_sdk::evm::gen_evm_verifier_sol_code::<
        zkinfer_circuits::halo2_base::gates::circuit::builder::BaseCircuitBuilder<
            zkinfer_circuits::halo2_base::halo2_proofs::halo2curves::bn256::Fr,
        >,
        snark_verifier_sdk::SHPLONK,
    >(&folder.kzg.params(), &folder.vk, vec![instances.len()]);
    let raw = zkinfer_verifier::solc::compile_one(
        "Raw.sol",
        &raw_source,
        solidity::CONTRACT,
        zkinfer_verifier::solc::Optimizer::Off,
    )
    .unwrap();
    let honest = calldata(&instances, &bytes);
    for code in [&raw.bytecode, &guarded.compiled.bytecode] {
        assert!(evm_verify(code, &honest).unwrap().accepted);
    }
    let cases = tampered_calldata(&instances, &bytes);
    for what in [
        "output instance + r (non-canonical)",
        "proof scalar + r (non-canonical)",
        "32 bytes appended",
    ] {
        let (_, data) = cases.iter().find(|(w, _)| *w == what).unwrap();
        assert!(
            evm_verify(&raw.bytecode, data).unwrap().accepted,
            "snark-verifier's own verifier accepts {what}"
        );
        assert!(
            !evm_verify(&guarded.compiled.bytecode, data)
                .unwrap()
                .accepted,
            "{what}"
        );
        assert!(verify_calldata(&folder, data).is_err(), "{what} natively");
    }
    // A verifier within EIP-170 is compiled unoptimized (the least gas); one over it is
    // compiled again for size, smaller, and as strict: every tampering still refused.
    let compile = |optimizer| {
        zkinfer_verifier::solc::compile_one(
            "Verifier.sol",
            &guarded.source,
            solidity::CONTRACT,
            optimizer,
        )
        .unwrap()
    };
    let off = compile(zkinfer_verifier::solc::Optimizer::Off);
    assert!(
        off.deployed == guarded.compiled.deployed,
        "compiled unoptimized"
    );
    let small = compile(zkinfer_verifier::solc::Optimizer::Size);
    assert!(small.deployed.len() < off.deployed.len());
    assert!(evm_verify(&small.bytecode, &honest).unwrap().accepted);
    for (what, data) in &cases {
        assert!(
            !evm_verify(&small.bytecode, data).unwrap().accepted,
            "{what}"
        );
    }
}

/// Bytecode that deploys no code would answer every call with success: `evm-verify` refuses
/// it rather than print `valid`.
#[test]
fn evm_verify_refuses_bytecode_without_code() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, proof) = proven(tmp.path(), "1l_linear", Visibility::Public);
    // Creation code that returns zero bytes of runtime code: PUSH1 0 PUSH1 0 RETURN.
    let empty = tmp.path().join("empty.bin");
    std::fs::write(&empty, "60006000f3").unwrap();
    expect_failure(
        &["evm-verify", p(&dir), p(&proof), "--bytecode", p(&empty)],
        "deploys a contract without code",
    );
}

#[test]
fn cli_writes_the_verifier_and_verifies_on_the_evm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    compile_and_setup("1l_mlp", &dir, &[]);
    let input = example("1l_mlp").join("input.json");
    let proof = tmp.path().join("proof.json");
    expect_success(&["prove", p(&dir), "--input", p(&input), "--out", p(&proof)]);
    let id = VerifierFolder::open(&dir).unwrap().model_id;

    let sol = tmp.path().join("out/Verifier.sol");
    std::fs::create_dir_all(sol.parent().unwrap()).unwrap();
    let out = expect_success(&["evm-verifier", p(&dir), "--out", p(&sol)]);
    assert!(
        out.contains("7 public values (3 inputs, 4 outputs)"),
        "{out}"
    );
    assert!(out.contains(&format!("model id {id}")), "{out}");
    assert!(out.contains("SRS      development SRS"), "{out}");
    let bin = tmp.path().join("out/Verifier.bin");
    let creation = hex::decode(std::fs::read_to_string(&bin).unwrap().trim()).unwrap();
    let abi: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/Verifier.abi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(abi[0]["type"], "fallback");
    // The file is the folder's verifier, byte for byte.
    let folder = VerifierFolder::open(&dir).unwrap();
    assert_eq!(
        creation,
        solidity::build(&folder).unwrap().compiled.bytecode
    );
    assert!(std::fs::read_to_string(&sol)
        .unwrap()
        .contains("every public value must be canonical"));

    // Calldata: the instances as 32-byte words, then the proof.
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    let mut want = String::from("0x");
    for i in file["instances"].as_array().unwrap() {
        want.push_str(i.as_str().unwrap().strip_prefix("0x").unwrap());
    }
    want.push_str(file["proof"].as_str().unwrap().strip_prefix("0x").unwrap());
    assert_eq!(
        expect_success(&["evm-calldata", p(&dir), p(&proof)]).trim(),
        want
    );

    for extra in [vec![], vec!["--bytecode", p(&bin)]] {
        let mut args = vec!["evm-verify", p(&dir), p(&proof)];
        args.extend_from_slice(&extra);
        let out = expect_success(&args);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "valid", "{out}");
        let gas: u64 = lines[1]
            .strip_prefix("gas ")
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        // A transaction's gas: at least the intrinsic 21,000, the pairing precompile (113,000
        // for two pairs) and the calldata; well below the cap.
        assert!((150_000..1_000_000).contains(&gas), "{out}");
        let code: usize = lines[2]
            .strip_prefix("code ")
            .and_then(|l| l.strip_suffix(" bytes"))
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        assert_eq!(
            code,
            solidity::build(&folder).unwrap().compiled.deployed.len()
        );
    }

    // A proof with one byte flipped: invalid, exit 1.
    let mut bad = file.clone();
    let hex = bad["proof"].as_str().unwrap().to_string();
    let flip = if &hex[100..101] == "0" { "1" } else { "0" };
    bad["proof"] = format!("{}{flip}{}", &hex[..100], &hex[101..]).into();
    let bad_path = tmp.path().join("bad.json");
    std::fs::write(&bad_path, serde_json::to_string(&bad).unwrap()).unwrap();
    let out = zkinfer(&["evm-verify", p(&dir), p(&bad_path)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("invalid\n"));
    expect_failure(
        &["evm-verify", p(&dir), p(&bad_path)],
        "the Solidity verifier rejected the proof",
    );
    // Another folder's proof is refused before the EVM: its model id differs.
    let other = tmp.path().join("other");
    compile_and_setup("1l_mlp", &other, &[]);
    expect_failure(
        &["evm-verify", p(&other), p(&proof)],
        "the proof is for model id",
    );
}

#[test]
fn a_verifier_over_eip170_is_refused_with_the_ways_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    compile_and_setup("4l_relu_conv_fc", &dir, &[]);
    expect_failure(
        &["evm-verifier", p(&dir)],
        "over EIP-170's 24576: the circuit has 794 public values (784 inputs, 10 outputs)",
    );
    expect_failure(
        &["evm-verifier", p(&dir)],
        "--input-visibility hashed --output-visibility hashed",
    );
    assert!(!dir.join("Verifier.sol").exists());
    // Asked to fit, compile refuses it: 794 public values alone are over the limit.
    let fit = tmp.path().join("fit");
    let e = example("4l_relu_conv_fc");
    expect_failure(
        &[
            "compile",
            p(&e.join("network.onnx")),
            "--calibration",
            p(&e.join("input.json")),
            "--out",
            p(&fit),
            "--fit-evm",
        ],
        "794 public values",
    );
}

/// A wide proof budget buys columns, and the verifier grows with them past EIP-170;
/// `--fit-evm` takes fewer, and the verifier solc makes is within the estimate `inspect`
/// prints, which is within EIP-170.
#[test]
fn fit_evm_keeps_the_verifier_within_eip170() {
    let tmp = tempfile::tempdir().unwrap();
    let flags = [
        "--input-visibility",
        "hashed",
        "--output-visibility",
        "hashed",
        "--max-proof-bytes",
        "8192",
    ];
    let compile = |dir: &Path, fit: bool| {
        let mut args = flags.to_vec();
        if fit {
            args.push("--fit-evm");
        }
        compile_and_setup("1l_mlp", dir, &args);
        let inspect = expect_success(&["inspect", p(dir)]);
        let line = inspect
            .lines()
            .find(|l| l.starts_with("verifier code"))
            .unwrap_or_else(|| panic!("{inspect}"));
        line.split_whitespace()
            .nth(3)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    let wide = compile(&tmp.path().join("wide"), false);
    assert!(wide > MAX_CODE_SIZE, "{wide}");
    let dir = tmp.path().join("fit");
    let estimate = compile(&dir, true);
    assert!(estimate <= MAX_CODE_SIZE, "{estimate}");
    let verifier = solidity::build(&VerifierFolder::open(&dir).unwrap()).unwrap();
    let code = verifier.compiled.deployed.len();
    assert!(code <= estimate, "{code} > {estimate}");
    assert_eq!(verifier.optimizer, zkinfer_verifier::solc::Optimizer::Off);
}

#[test]
fn a_missing_solc_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    compile_and_setup("1l_linear", &dir, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zkinfer"))
        .args(["evm-verifier", p(&dir)])
        .env("ZKINFER_SOLC_DIR", tmp.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("solcjs not found under"), "{err}");
    assert!(err.contains("run scripts/install-solc.sh"), "{err}");
}

#[test]
fn evm_contracts_writes_bytecode_abi_and_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let out = expect_success(&["evm-contracts", "--out", p(tmp.path())]);
    for name in ["ModelRegistry", "ERC7007Adapter", "OracleConsumer"] {
        assert!(out.contains(&format!("{name}: ")), "{out}");
        let bin = std::fs::read_to_string(tmp.path().join(format!("{name}.bin"))).unwrap();
        assert!(!hex::decode(bin.trim()).unwrap().is_empty());
        assert!(tmp.path().join(format!("{name}.sol")).exists());
    }
    let abi = std::fs::read_to_string(tmp.path().join("ModelRegistry.abi.json")).unwrap();
    assert!(abi.contains("\"verifyInference\"") && abi.contains("\"InferenceVerified\""));
    let abi = std::fs::read_to_string(tmp.path().join("ERC7007Adapter.abi.json")).unwrap();
    assert!(abi.contains("\"verify\""));
}
