//! The `zkinfer` binary: the walk-through of the README, tampered proofs, wrong keys, and bad
//! input — each a clear one-line error with exit 1, never a panic.

mod common;

use common::{compile_and_setup, example, expect_failure, expect_success, p};
use serde_json::Value;

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(path: &std::path::Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn walk_through_and_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mlp");
    compile_and_setup("1l_mlp", &dir, &[]);
    let input = example("1l_mlp").join("input.json");
    let inspect = expect_success(&["inspect", p(&dir)]);
    assert!(
        inspect.contains("k                7 (128 rows)"),
        "{inspect}"
    );
    assert!(inspect.contains("EinSum+Add"), "{inspect}");
    let run: Value =
        serde_json::from_str(&expect_success(&["run", p(&dir), "--input", p(&input)])).unwrap();
    let proof_path = tmp.path().join("proof.json");
    expect_success(&[
        "prove",
        p(&dir),
        "--input",
        p(&input),
        "--out",
        p(&proof_path),
    ]);
    expect_success(&["verify", p(&dir), p(&proof_path)]);
    let proof = read_json(&proof_path);
    assert_eq!(proof["outputs"], run["outputs"]);
    assert_eq!(
        proof["instances"].as_array().unwrap().len(),
        3 + 4,
        "public input then output"
    );

    // One flipped byte in the proof.
    let mut bad = proof.clone();
    let hex = bad["proof"].as_str().unwrap().to_string();
    let flipped = if &hex[100..101] == "0" { "1" } else { "0" };
    bad["proof"] = Value::String(format!("{}{flipped}{}", &hex[..100], &hex[101..]));
    let bad_path = tmp.path().join("bad.json");
    write(&bad_path, &bad);
    expect_failure(&["verify", p(&dir), p(&bad_path)], "invalid proof");

    // A tampered public output, with the float outputs changed to match: the proof refuses it.
    let mut bad = proof.clone();
    let n = bad["instances"].as_array().unwrap().len();
    let scale = read_json(&dir.join("settings.json"))["scale"]
        .as_u64()
        .unwrap();
    bad["instances"][n - 1] = Value::String(format!("0x{:064x}", 1u64 << scale));
    bad["outputs"][0][3] = serde_json::json!(1.0);
    write(&bad_path, &bad);
    expect_failure(&["verify", p(&dir), p(&bad_path)], "invalid proof");

    // A tampered float output alone.
    let mut bad = proof.clone();
    bad["outputs"][0][0] = serde_json::json!(0.5);
    write(&bad_path, &bad);
    expect_failure(&["verify", p(&dir), p(&bad_path)], "do not match");

    // A public input changed: alone, it no longer matches the proof file's inputs; with
    // those edited to match, the proof refuses it.
    let mut bad = proof.clone();
    bad["instances"][0] = Value::String(format!("0x{}1", "0".repeat(63)));
    write(&bad_path, &bad);
    expect_failure(
        &["verify", p(&dir), p(&bad_path)],
        "inputs in the proof file",
    );
    bad["inputs"][0][0] = serde_json::json!(1.0 / (1u64 << scale) as f64);
    write(&bad_path, &bad);
    expect_failure(&["verify", p(&dir), p(&bad_path)], "invalid proof");

    // The wrong verifying key: the same model set up again (another SRS, another key), so
    // another model id; with the proof file's id edited to match, the proof itself fails.
    let dir2 = tmp.path().join("mlp2");
    compile_and_setup("1l_mlp", &dir2, &[]);
    expect_failure(
        &["verify", p(&dir2), p(&proof_path)],
        "the proof is for model id",
    );
    let id2 = read_json(&dir2.join("keys.json"))["model_id"].clone();
    let mut bad = proof.clone();
    bad["model_id"] = id2;
    write(&bad_path, &bad);
    expect_failure(&["verify", p(&dir2), p(&bad_path)], "invalid proof");

    // A folder of another model.
    let other = tmp.path().join("relu");
    compile_and_setup("1l_relu", &other, &[]);
    expect_failure(
        &["verify", p(&other), p(&proof_path)],
        "the proof is for model id",
    );

    // Keys from another model copied into a folder: prove refuses to use them.
    let mixed = tmp.path().join("mixed");
    compile_and_setup("1l_mlp", &mixed, &[]);
    for f in [
        "keys.json",
        "pk.bin",
        "vk.bin",
        "srs.bin",
        "kzg-verifier.bin",
    ] {
        std::fs::copy(other.join(f), mixed.join(f)).unwrap();
    }
    expect_failure(
        &[
            "prove",
            p(&mixed),
            "--input",
            p(&input),
            "--out",
            p(&bad_path),
        ],
        "rerun `zkinfer setup`",
    );

    // Keys made by a zkinfer that laid circuits out differently (older keys.json have no
    // layout_version): prove refuses them rather than make a proof no verifier accepts.
    let old_keys = tmp.path().join("old-keys");
    compile_and_setup("1l_mlp", &old_keys, &[]);
    let mut keys = read_json(&old_keys.join("keys.json"));
    keys.as_object_mut().unwrap().remove("layout_version");
    write(&old_keys.join("keys.json"), &keys);
    expect_failure(
        &[
            "prove",
            p(&old_keys),
            "--input",
            p(&input),
            "--out",
            p(&bad_path),
        ],
        "lays circuits out differently (layout 0, this one 2): rerun `zkinfer setup` (a new model id)",
    );

    // Malformed proof files.
    std::fs::write(&bad_path, "{").unwrap();
    expect_failure(&["verify", p(&dir), p(&bad_path)], "not a valid file");
    let mut bad = proof.clone();
    bad["instances"][0] =
        Value::String("0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001".into());
    write(&bad_path, &bad);
    expect_failure(&["verify", p(&dir), p(&bad_path)], "canonical");
}

#[test]
fn private_input_and_external_srs() {
    let tmp = tempfile::tempdir().unwrap();
    let e = example("1l_mlp");
    let dir = tmp.path().join("private");
    expect_success(&[
        "compile",
        p(&e.join("network.onnx")),
        "--calibration",
        p(&e.join("input.json")),
        "--out",
        p(&dir),
        "--input-visibility",
        "private",
    ]);
    let srs = tmp.path().join("srs-k9.bin");
    expect_success(&["gen-srs", "--logrows", "9", "--out", p(&srs)]);
    expect_success(&["setup", p(&dir), "--srs", p(&srs)]);
    let proof_path = tmp.path().join("proof.json");
    expect_success(&[
        "prove",
        p(&dir),
        "--input",
        p(&e.join("input.json")),
        "--out",
        p(&proof_path),
    ]);
    expect_success(&["verify", p(&dir), p(&proof_path)]);
    let proof = read_json(&proof_path);
    assert_eq!(
        proof["instances"].as_array().unwrap().len(),
        4,
        "only the outputs are public"
    );
    assert_eq!(proof["input_visibility"], "private");

    // The inputs are private: a verifier cannot hold the proof to an input file.
    expect_failure(
        &[
            "verify",
            p(&dir),
            p(&proof_path),
            "--input",
            p(&e.join("input.json")),
        ],
        "inputs are private",
    );
    let verified = expect_success(&["verify", p(&dir), p(&proof_path)]);
    assert!(verified.contains("inputs   private"), "{verified}");

    let small = tmp.path().join("srs-k5.bin");
    expect_success(&["gen-srs", "--logrows", "5", "--out", p(&small)]);
    expect_failure(
        &["setup", p(&dir), "--srs", p(&small)],
        "the file serves circuits up to k=5, this one needs k=7",
    );
    std::fs::write(&small, b"not an srs").unwrap();
    expect_failure(&["setup", p(&dir), "--srs", p(&small)], "srs-k5.bin");
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let e = example("1l_mlp");
    let input = e.join("input.json");
    let out = tmp.path().join("out");
    let missing = tmp.path().join("missing.onnx");
    expect_failure(
        &[
            "compile",
            p(&missing),
            "--calibration",
            p(&input),
            "--out",
            p(&out),
        ],
        "cannot read",
    );
    let garbage = tmp.path().join("garbage.onnx");
    std::fs::write(&garbage, b"\x08\x07definitely not onnx").unwrap();
    expect_failure(
        &[
            "compile",
            p(&garbage),
            "--calibration",
            p(&input),
            "--out",
            p(&out),
        ],
        "malformed ONNX",
    );
    let random = zkinfer_model::corpus::refused_dir("random_normal");
    expect_failure(
        &[
            "compile",
            p(&random.join("network.onnx")),
            "--calibration",
            p(&random.join("input.json")),
            "--out",
            p(&out),
        ],
        "unsupported op RandomNormal at ONNX node \"add_noise\"",
    );
    // A proof budget no circuit shape can meet, and a k too small for a 4,097-row table.
    expect_failure(
        &[
            "compile",
            p(&e.join("network.onnx")),
            "--calibration",
            p(&input),
            "--out",
            p(&out),
            "--max-proof-bytes",
            "1000",
        ],
        "raise --max-proof-bytes",
    );
    // … saying where the smallest proof lies and what proving it would take.
    expect_failure(
        &[
            "compile",
            p(&e.join("network.onnx")),
            "--calibration",
            p(&input),
            "--out",
            p(&out),
            "--max-proof-bytes",
            "1000",
        ],
        "with 1 gate + 0 dot-product columns, and proving it would need about 0.1 GiB",
    );
    expect_failure(
        &[
            "compile",
            p(&example("1l_sigmoid").join("network.onnx")),
            "--calibration",
            p(&example("1l_sigmoid").join("input.json")),
            "--out",
            p(&out),
            "--logrows",
            "8",
            "--max-proof-bytes",
            "100000000",
        ],
        "does not fit in 2^8 rows",
    );
    // A prover machine too small for the circuit: refused at compile time, saying what it needs.
    expect_failure(
        &[
            "compile",
            p(&e.join("network.onnx")),
            "--calibration",
            p(&input),
            "--out",
            p(&out),
            "--max-prove-memory",
            "0.01",
        ],
        "over the 0.0 GiB allowed (--max-prove-memory",
    );

    let dir = tmp.path().join("mlp");
    compile_and_setup("1l_mlp", &dir, &[]);
    let write_input = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let short = write_input("short.json", r#"{"input_data": [[1.0, 2.0]]}"#);
    let nan = write_input("nan.json", r#"{"input_data": [[1.0, "NaN", 2.0]]}"#);
    let bare_nan = write_input("bare_nan.json", r#"{"input_data": [[1.0, NaN, 2.0]]}"#);
    let inf = write_input("inf.json", r#"{"input_data": [[1.0, 1e999, 2.0]]}"#);
    let huge = write_input("huge.json", r#"{"input_data": [[1.0, 1e12, 2.0]]}"#);
    let no_data = write_input("nodata.json", r#"{"inputs": []}"#);
    let proof = tmp.path().join("proof.json");
    for cmd in ["run", "prove"] {
        let args = |i: &std::path::Path| -> Vec<String> {
            let mut a = vec![
                cmd.to_string(),
                p(&dir).to_string(),
                "--input".into(),
                p(i).to_string(),
            ];
            if cmd == "prove" {
                a.extend(["--out".to_string(), p(&proof).to_string()]);
            }
            a
        };
        let check = |i: &std::path::Path, needle: &str| {
            let a = args(i);
            expect_failure(&a.iter().map(String::as_str).collect::<Vec<_>>(), needle);
        };
        check(&short, "has 2 values, the model expects 3");
        check(&nan, "NaN and Inf are not accepted");
        check(&bare_nan, "not valid JSON");
        check(&inf, "input");
        check(&huge, "out of range");
        check(&no_data, "missing \"input_data\"");
        check(&tmp.path().join("absent.json"), "cannot read");
    }
    expect_failure(
        &[
            "prove",
            p(tmp.path()),
            "--input",
            p(&input),
            "--out",
            p(&proof),
        ],
        "not a compiled model folder",
    );
    expect_failure(
        &["verify", p(&dir), p(&tmp.path().join("absent.json"))],
        "absent.json",
    );
    expect_failure(
        &["gen-srs", "--logrows", "40", "--out", p(&proof)],
        "k must be in",
    );
}

/// A calibration file with many samples sizes the ranges for all of them: an input like the
/// largest sample proves, where a one-sample calibration refuses it before proving, naming
/// the node and the range.
#[test]
fn calibration_samples_widen_the_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let e = example("1l_mlp");
    let input = read_json(&e.join("input.json"));
    let large: Vec<f64> = input["input_data"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() * 40.0 + 3.0)
        .collect();
    let large_input = tmp.path().join("large.json");
    write(&large_input, &serde_json::json!({ "input_data": [large] }));
    let samples = tmp.path().join("samples.json");
    write(
        &samples,
        &serde_json::json!({ "input_data": input["input_data"], "calibration_samples": [[large]] }),
    );
    let (one, many) = (tmp.path().join("one"), tmp.path().join("many"));
    let model = e.join("network.onnx");
    for (dir, cal) in [(&one, e.join("input.json")), (&many, samples)] {
        expect_success(&[
            "compile",
            p(&model),
            "--calibration",
            p(&cal),
            "--out",
            p(dir),
        ]);
        expect_success(&["setup", p(dir)]);
    }
    let proof = tmp.path().join("proof.json");
    expect_failure(
        &[
            "prove",
            p(&one),
            "--input",
            p(&large_input),
            "--out",
            p(&proof),
        ],
        "out of range",
    );
    assert!(!proof.exists(), "no proof written");
    expect_success(&[
        "prove",
        p(&many),
        "--input",
        p(&large_input),
        "--out",
        p(&proof),
    ]);
    expect_success(&["verify", p(&many), p(&proof)]);
}

#[test]
fn target_resources_trades_scale_bits_for_a_smaller_circuit() {
    let tmp = tempfile::tempdir().unwrap();
    let input = example("1l_mlp").join("input.json");
    let settings = |dir: &std::path::Path| read_json(&dir.join("settings.json"));
    let (acc, res) = (tmp.path().join("acc"), tmp.path().join("res"));
    compile_and_setup("1l_mlp", &acc, &[]);
    compile_and_setup("1l_mlp", &res, &["--target", "resources"]);
    let (a, r) = (settings(&acc), settings(&res));
    // The fewest bits within the default bound (1e-3): 6 bits is off by more, 8 is within.
    assert_eq!(a["scale"], 16);
    assert_eq!(r["scale"], 8);
    let (ea, er) = (
        a["expected_error"].as_f64().unwrap(),
        r["expected_error"].as_f64().unwrap(),
    );
    assert!(ea < er && er <= 1e-3, "accuracy {ea}, resources {er}");
    assert!(
        r["act_bits"].as_u64() < a["act_bits"].as_u64()
            && r["plan"]["advice_cells"].as_u64() < a["plan"]["advice_cells"].as_u64(),
        "narrower range checks, fewer cells"
    );
    let shown = expect_success(&["inspect", p(&res)]);
    assert!(
        shown.contains("activations 2^8, coefficients 2^8")
            && shown.contains(&format!("expected error   {er:.2e} (max |fixed − float|")),
        "{shown}"
    );
    // The resources circuit proves, and its outputs are within the error it reported.
    let proof = tmp.path().join("proof.json");
    expect_success(&["prove", p(&res), "--input", p(&input), "--out", p(&proof)]);
    expect_success(&["verify", p(&res), p(&proof)]);
    // A bound no scale meets keeps the most accurate one.
    let strict = tmp.path().join("strict");
    compile_and_setup(
        "1l_mlp",
        &strict,
        &["--target", "resources", "--max-error", "1e-12"],
    );
    assert_eq!(settings(&strict)["scale"], 16);
}
