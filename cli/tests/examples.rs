//! The models the proving slice must handle: compile, setup, prove and verify each one, and
//! check the proven outputs against onnxruntime.
//!
//! Error bound: `max |zkinfer - onnxruntime| <= 16 · 2^-scale · max(1, max |onnxruntime|)`,
//! i.e. 16 units in the last place of the fixed-point output, relative for outputs above 1.

mod common;

use common::{example, expected};
use zkinfer_circuits::artifacts::write_json;
use zkinfer_prover::pipeline::{self, CompileOptions};

const MODELS: &[&str] = &[
    "1l_linear",
    "1l_mlp",
    "2l_relu_fc",
    "accuracy",
    "1l_relu",
    "1l_conv",
    "1l_batch_norm",
    "1l_reshape",
    "1l_max_pool",
    "1l_average",
    "1l_pad",
    "1l_concat",
    "1l_slice",
    "1l_mean",
    "4l_relu_conv_fc",
    "3l_relu_conv_fc",
];

#[test]
fn must_show_models_prove_verify_and_match_onnxruntime() {
    let tmp = tempfile::tempdir().unwrap();
    for name in MODELS {
        let e = example(name);
        let dir = tmp.path().join(name);
        let input = e.join("input.json");
        let settings = pipeline::compile(
            &e.join("network.onnx"),
            &input,
            &dir,
            &CompileOptions::default(),
        )
        .unwrap_or_else(|err| panic!("{name}: {err}"));
        pipeline::setup(&dir, None).unwrap_or_else(|err| panic!("{name}: {err}"));
        let proof = pipeline::prove(&dir, &input).unwrap_or_else(|err| panic!("{name}: {err}"));
        let proof_path = dir.join("proof.json");
        write_json(&proof_path, &proof).unwrap();
        let verified = zkinfer_verifier::verify_file(&dir, &proof_path)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        // The proof proves exactly what the integer reference evaluator computes.
        let run = pipeline::run(&dir, &input).unwrap();
        assert_eq!(verified.outputs, run.outputs, "{name}");
        assert_eq!(proof.outputs, run.outputs, "{name}");
        let want = expected(name);
        let max_abs = want.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        let bound = 16.0 / (1u64 << settings.scale) as f64 * max_abs.max(1.0);
        let err = run
            .outputs
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert_eq!(
            run.outputs.iter().flatten().count(),
            want.iter().flatten().count(),
            "{name}"
        );
        assert!(
            err <= bound,
            "{name}: error {err} exceeds the bound {bound}"
        );
        println!(
            "{name:>16}: k={:>2} rows={:>6} proof={} bytes max err {err:.2e} (bound {bound:.2e})",
            settings.plan.k,
            settings.plan.rows,
            proof.proof.len() / 2 - 1
        );
    }
}
