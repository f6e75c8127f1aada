//! The example model the repository ships (`examples/digits_mlp`, made by
//! `scripts/make-example-model.sh`): proven, verified, and close to onnxruntime.

use std::path::PathBuf;

use zkinfer_circuits::artifacts::write_json;
use zkinfer_prover::pipeline::{self, CompileOptions};

#[test]
fn shipped_digits_mlp_proves_and_classifies() {
    let ex = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/digits_mlp");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("digits");
    let input = ex.join("input.json");
    let settings = pipeline::compile(
        &ex.join("network.onnx"),
        &input,
        &dir,
        &CompileOptions::default(),
    )
    .unwrap();
    assert_eq!(settings.plan.k, 12);
    pipeline::setup(&dir, None).unwrap();
    let proof = pipeline::prove(&dir, &input).unwrap();
    let path = dir.join("proof.json");
    write_json(&path, &proof).unwrap();
    let verified = zkinfer_verifier::verify_file(&dir, &path).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ex.join("expected.json")).unwrap()).unwrap();
    let want: Vec<f64> = expected["output_data"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let got = &verified.outputs[0];
    let argmax = |v: &[f64]| {
        v.iter()
            .enumerate()
            .fold(0, |b, (i, x)| if *x > v[b] { i } else { b })
    };
    assert_eq!(argmax(got), expected["label"].as_u64().unwrap() as usize);
    assert_eq!(argmax(got), argmax(&want));
    let err = got
        .iter()
        .zip(&want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    let bound =
        16.0 / (1u64 << settings.scale) as f64 * want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    assert!(err <= bound, "error {err} above {bound}");
}
