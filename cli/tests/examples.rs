//! The models the proving slice must handle, and one fixture per op variant: compile, setup,
//! prove and verify each, and check the proven outputs against onnxruntime within
//! `corpus::error_bound`: `max |zkinfer - onnxruntime| <= 16 · 2^-scale · max(1, max |onnxruntime|)`.

use std::path::Path;

use zkinfer_circuits::artifacts::write_json;
use zkinfer_model::corpus::{
    error_bound, example_dir, expected_outputs, max_abs_error, PROVING_SLICE_MODELS,
};
use zkinfer_prover::pipeline::{self, CompileOptions};

/// The whole pipeline on `model/` (network.onnx, input.json, expected.json) in `work`.
fn prove_verify_and_compare(name: &str, model: &Path, work: &Path) {
    let dir = work.join(name);
    let input = model.join("input.json");
    let opts = CompileOptions::default();
    let settings = pipeline::compile(&model.join("network.onnx"), &input, &dir, &opts)
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    pipeline::setup(&dir, None).unwrap_or_else(|err| panic!("{name}: {err}"));
    let proof = pipeline::prove(&dir, &input).unwrap_or_else(|err| panic!("{name}: {err}"));
    // The planner's proof-size model is exact, and the default budget holds.
    assert_eq!(
        (proof.proof.len() - 2) / 2,
        settings.plan.proof_bytes,
        "{name} (0x + hex)"
    );
    assert!(settings.plan.proof_bytes <= 3072, "{name}");
    assert_eq!(
        settings.plan.proof_budget, 3072,
        "{name}: small circuits keep the default"
    );
    let proof_path = dir.join("proof.json");
    write_json(&proof_path, &proof).unwrap();
    // Held to its own input and to the model id setup recorded.
    let keys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("keys.json")).unwrap()).unwrap();
    let opts = zkinfer_verifier::VerifyOptions {
        model_id: keys["model_id"].as_str(),
        input: Some(&input),
        ..Default::default()
    };
    let verified = zkinfer_verifier::verify_file(&dir, &proof_path, &opts)
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    assert!(verified.pinned && verified.input_checked, "{name}");
    assert_eq!(proof.inputs, verified.inputs, "{name}");
    // The proof proves exactly what the integer reference evaluator computes.
    let run = pipeline::run(&dir, &input).unwrap();
    assert_eq!(verified.outputs, run.outputs, "{name}");
    assert_eq!(proof.outputs, run.outputs, "{name}");
    let want = expected_outputs(&model.join("expected.json")).unwrap();
    let (err, bound) = (
        max_abs_error(&run.outputs, &want),
        error_bound(settings.scale, &want),
    );
    assert!(
        err <= bound,
        "{name}: error {err} exceeds the bound {bound}"
    );
    println!(
        "{name:>24}: k={:>2} max err {err:.2e} (bound {bound:.2e})",
        settings.plan.k
    );
}

#[test]
fn proving_slice_models_prove_verify_and_match_onnxruntime() {
    let tmp = tempfile::tempdir().unwrap();
    for name in PROVING_SLICE_MODELS {
        prove_verify_and_compare(name, &example_dir(name), tmp.path());
    }
}

/// Models with non-linear functions (lookup tables), softmax and layer norm (division and
/// square root), Log (square roots and a table), LSTM and GRU cells; with these, all 13
/// models of EZKL's baseline prove.
const FUNCTION_MODELS: &[&str] = &[
    "1l_sqrt",
    "1l_leakyrelu",
    "1l_softmax",
    "layernorm",
    "lstm",
    "1l_sigmoid",
    "1l_tanh",
    "exp",
    "log",
    "1l_gelu_noappx",
    "2l_relu_sigmoid_conv",
    "rnn",
    "gru",
];

#[test]
fn function_models_prove_verify_and_match_onnxruntime() {
    let tmp = tempfile::tempdir().unwrap();
    for name in FUNCTION_MODELS {
        prove_verify_and_compare(name, &example_dir(name), tmp.path());
    }
}

#[test]
fn op_fixtures_prove_verify_and_match_onnxruntime() {
    let root = zkinfer_model::corpus::manifest_dir().join("../model/tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        prove_verify_and_compare(&name, &dir, tmp.path());
    }
}
