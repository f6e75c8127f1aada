//! The example model the repository ships (`examples/digits_mlp`, made by
//! `scripts/make-example-model.sh`): proven, verified, and close to onnxruntime.

use zkinfer_circuits::artifacts::write_json;
use zkinfer_model::corpus::{error_bound, expected_outputs, max_abs_error};
use zkinfer_prover::pipeline::{self, CompileOptions};

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

#[test]
fn shipped_digits_mlp_proves_and_classifies() {
    let ex = zkinfer_model::corpus::manifest_dir().join("../examples/digits_mlp");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("digits");
    let input = ex.join("input.json");
    let opts = CompileOptions::default();
    let settings = pipeline::compile(&ex.join("network.onnx"), &input, &dir, &opts).unwrap();
    assert_eq!(
        settings.plan.k, 11,
        "64→32→10 MLP: 2^11 rows with the dot-product gate"
    );
    pipeline::setup(&dir, None).unwrap();
    let proof = pipeline::prove(&dir, &input).unwrap();
    let path = dir.join("proof.json");
    write_json(&path, &proof).unwrap();
    let verified = zkinfer_verifier::verify_file(&dir, &path, &Default::default()).unwrap();
    let want = expected_outputs(&ex.join("expected.json")).unwrap();
    let label: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ex.join("expected.json")).unwrap()).unwrap();
    assert_eq!(
        argmax(&verified.outputs[0]),
        label["label"].as_u64().unwrap() as usize
    );
    assert_eq!(argmax(&verified.outputs[0]), argmax(&want[0]));
    let err = max_abs_error(&verified.outputs, &want);
    assert!(err <= error_bound(settings.scale, &want), "error {err}");
}
