//! Hashed weights end to end through the binary: the digits MLP and its fine-tuned sibling
//! (`examples/digits_mlp_finetuned`, other weights, one architecture) compiled with
//! `--weights hashed` and `--like` get byte-identical verifying keys on one SRS, each proof
//! carries its model's weight commitment (which `zkinfer hash weights` and the outside
//! implementation compute from the files alone), and a proof of one training is refused as a
//! proof of the other.

mod common;

use std::path::{Path, PathBuf};

use common::{expect_failure, expect_success, outside, p};
use serde_json::Value;

fn repo_example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn two_trainings_share_one_verifier_under_their_own_commitments() {
    let tmp = tempfile::tempdir().unwrap();
    let (orig, tuned) = (
        repo_example("digits_mlp"),
        repo_example("digits_mlp_finetuned"),
    );
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let compile = |model: &Path, out: &Path, extra: &[&str]| {
        let (onnx, input) = (model.join("network.onnx"), model.join("input.json"));
        let mut args = vec![
            "compile",
            p(&onnx),
            "--calibration",
            p(&input),
            "--out",
            p(out),
        ];
        args.extend_from_slice(extra);
        expect_success(&args);
    };
    compile(&orig, &a, &["--weights", "hashed"]);
    compile(&tuned, &b, &["--like", p(&a)]);
    let (sa, sb) = (
        read_json(&a.join("settings.json")),
        read_json(&b.join("settings.json")),
    );
    assert_eq!(sa["weights"], "hashed");
    assert_eq!(sb["weights"], "hashed");
    assert_eq!(sa["architecture_sha256"], sb["architecture_sha256"]);
    assert_eq!(sa["plan"], sb["plan"]);
    let (ca, cb) = (
        sa["weight_commitment"].as_str().unwrap().to_string(),
        sb["weight_commitment"].as_str().unwrap().to_string(),
    );
    assert_ne!(ca, cb, "other weights, another commitment");
    let inspect = expect_success(&["inspect", p(&a)]);
    assert!(inspect.contains("weights          hashed"), "{inspect}");
    assert!(inspect.contains(&ca), "{inspect}");

    // From the files alone: the ONNX file (zkinfer hash weights) or qgraph.json (Python).
    for (model, c) in [(&orig, &ca), (&tuned, &cb)] {
        let out = expect_success(&["hash", "weights", p(&model.join("network.onnx")), p(&a)]);
        assert_eq!(out.trim(), c.as_str());
    }
    assert_eq!(outside(&["weights", p(&a)]), std::slice::from_ref(&ca));
    assert_eq!(outside(&["weights", p(&b)]), std::slice::from_ref(&cb));

    // One SRS, one verifying key.
    let k = sa["plan"]["k"].as_u64().unwrap().to_string();
    let srs = tmp.path().join("srs");
    expect_success(&["gen-srs", "--logrows", &k, "--out", p(&srs)]);
    for dir in [&a, &b] {
        expect_success(&["setup", p(dir), "--srs", p(&srs)]);
    }
    assert_eq!(
        std::fs::read(a.join("vk.bin")).unwrap(),
        std::fs::read(b.join("vk.bin")).unwrap(),
        "two trainings of one architecture share the verifying key"
    );

    // Each proof carries its model's commitment, last among the instances, and verifies.
    let prove = |dir: &Path, model: &Path, out: &Path| {
        expect_success(&[
            "prove",
            p(dir),
            "--input",
            p(&model.join("input.json")),
            "--out",
            p(out),
        ]);
        read_json(out)
    };
    let (pa, pb) = (tmp.path().join("pa.json"), tmp.path().join("pb.json"));
    let (proof_a, proof_b) = (prove(&a, &orig, &pa), prove(&b, &tuned, &pb));
    for (proof, c) in [(&proof_a, &ca), (&proof_b, &cb)] {
        let last = proof["instances"].as_array().unwrap().last().unwrap();
        assert_eq!(&last.as_str().unwrap()[2..], c.as_str());
    }
    expect_success(&["verify", p(&a), p(&pa)]);
    expect_success(&["verify", p(&b), p(&pb)]);

    // The fine-tuned model's proof presented as the original's (its model id rewritten):
    // the key accepts it, the weight commitment does not.
    let mut forged = proof_b.clone();
    forged["model_id"] = proof_a["model_id"].clone();
    let forged_path = tmp.path().join("forged.json");
    std::fs::write(&forged_path, serde_json::to_string(&forged).unwrap()).unwrap();
    expect_failure(
        &["verify", p(&a), p(&forged_path)],
        "the proof was made with other weights",
    );
}

#[test]
fn like_refuses_another_architecture_a_fixed_sibling_or_a_plan_past_the_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let digits = repo_example("digits_mlp");
    let (hashed, fixed) = (tmp.path().join("hashed"), tmp.path().join("fixed"));
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "compile",
            p(&digits.join("network.onnx")),
            "--calibration",
            p(&digits.join("input.json")),
            "--out",
            p(out),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |v: Vec<String>| expect_success(&v.iter().map(String::as_str).collect::<Vec<_>>());
    run(args(&hashed, &["--weights", "hashed"]));
    run(args(&fixed, &[]));
    let other = common::example("1l_mlp");
    expect_failure(
        &[
            "compile",
            p(&other.join("network.onnx")),
            "--calibration",
            p(&other.join("input.json")),
            "--out",
            p(&tmp.path().join("other")),
            "--like",
            p(&hashed),
        ],
        "is not the architecture",
    );
    let v = args(&tmp.path().join("again"), &["--like", p(&fixed)]);
    expect_failure(
        &v.iter().map(String::as_str).collect::<Vec<_>>(),
        "is not the architecture",
    );
    // The sibling's plan is reused as it is, but not past this compilation's limits.
    let v = args(
        &tmp.path().join("small"),
        &["--like", p(&hashed), "--max-prove-memory", "0.001"],
    );
    expect_failure(
        &v.iter().map(String::as_str).collect::<Vec<_>>(),
        "the sibling's circuit (compile --like) needs",
    );
    expect_failure(
        &[
            "hash",
            "weights",
            p(&digits.join("network.onnx")),
            p(&fixed),
        ],
        "compiled with fixed weights",
    );
}
