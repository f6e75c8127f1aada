//! Hashed inputs and outputs end to end through the binary: the commitments among a proof's
//! instances are what `zkinfer hash` and an implementation outside the circuit code
//! (`circuits/tests/outside/commitment.py`) compute from the files alone; `verify` holds a
//! proof to an input through its commitment (and salt) and to the proof file's output values;
//! a proof under one commitment is refused for another, natively and by the Solidity verifier.

mod common;

use std::path::Path;

use common::{example, expect_failure, expect_success, outside as python, p};
use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

fn instance(proof: &Value, i: usize) -> String {
    proof["instances"][i].as_str().unwrap()[2..].to_string()
}

#[test]
fn hashed_inputs_and_outputs_bind_the_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let e = example("1l_mlp");
    let input = e.join("input.json");
    let dir = tmp.path().join("hashed");
    expect_success(&[
        "compile",
        p(&e.join("network.onnx")),
        "--calibration",
        p(&input),
        "--out",
        p(&dir),
        "--input-visibility",
        "hashed",
        "--output-visibility",
        "hashed",
    ]);
    let inspect = expect_success(&["inspect", p(&dir)]);
    assert!(inspect.contains("(hashed)"), "{inspect}");
    assert!(inspect.contains("commitments      Poseidon"), "{inspect}");
    expect_success(&["setup", p(&dir)]);
    let proof_path = tmp.path().join("proof.json");
    let salt = "2a";
    expect_success(&[
        "prove",
        p(&dir),
        "--input",
        p(&input),
        "--out",
        p(&proof_path),
        "--salt",
        salt,
    ]);
    let proof = read_json(&proof_path);
    assert_eq!(proof["instances"].as_array().unwrap().len(), 2);
    assert_eq!(proof["input_visibility"], "hashed");
    assert_eq!(proof["output_visibility"], "hashed");
    assert!(
        proof.get("inputs").is_none(),
        "hashed inputs are not written"
    );
    assert_eq!(proof["outputs"][0].as_array().unwrap().len(), 4);

    // The commitments from the files alone: zkinfer hash and the outside implementation.
    let hashed_in = expect_success(&["hash", "input", p(&input), p(&dir), "--salt", salt]);
    assert_eq!(lines(&hashed_in), [instance(&proof, 0)]);
    assert_eq!(
        python(&["input", p(&input), p(&dir), "--salt", salt]),
        [instance(&proof, 0)]
    );
    let hashed_out = expect_success(&["hash", "output", p(&proof_path), p(&dir)]);
    assert_eq!(lines(&hashed_out), [instance(&proof, 1)]);
    assert_eq!(
        python(&["output", p(&proof_path), p(&dir)]),
        [instance(&proof, 1)]
    );
    // Without the salt, another commitment.
    let unsalted = expect_success(&["hash", "input", p(&input), p(&dir)]);
    assert_ne!(lines(&unsalted), [instance(&proof, 0)]);

    // verify: the outputs hash to their commitment; the input, salted, to its.
    let v = expect_success(&["verify", p(&dir), p(&proof_path)]);
    assert!(v.contains("inputs   hashed, commitment"), "{v}");
    assert!(v.contains(&instance(&proof, 1)), "{v}");
    expect_success(&[
        "verify",
        p(&dir),
        p(&proof_path),
        "--input",
        p(&input),
        "--salt",
        salt,
    ]);
    expect_failure(
        &["verify", p(&dir), p(&proof_path), "--input", p(&input)],
        "(no salt given)",
    );
    let mut other: Value = read_json(&input);
    other["input_data"][0][0] = serde_json::json!(0.25);
    let other_path = tmp.path().join("other.json");
    write(&other_path, &other);
    expect_failure(
        &[
            "verify",
            p(&dir),
            p(&proof_path),
            "--input",
            p(&other_path),
            "--salt",
            salt,
        ],
        "another input",
    );

    // An output value changed in the proof file no longer hashes to the proven commitment.
    let mut bad = proof.clone();
    bad["outputs"][0][0] = serde_json::json!(0.5);
    let bad_path = tmp.path().join("bad.json");
    write(&bad_path, &bad);
    expect_failure(
        &["verify", p(&dir), p(&bad_path)],
        "the outputs given are not the proven ones: output 0 commits to",
    );

    // The proof under another input's commitment: refused natively and on chain.
    let theirs = expect_success(&["hash", "input", p(&other_path), p(&dir), "--salt", salt]);
    let mut swapped = proof.clone();
    swapped["instances"][0] = Value::String(format!("0x{}", theirs.trim()));
    write(&bad_path, &swapped);
    expect_failure(&["verify", p(&dir), p(&bad_path)], "invalid proof");
    let valid = expect_success(&["evm-verify", p(&dir), p(&proof_path)]);
    assert!(valid.starts_with("valid"), "{valid}");
    expect_failure(
        &["evm-verify", p(&dir), p(&bad_path)],
        "the Solidity verifier rejected the proof",
    );
    // A salt for a model without hashed inputs is a mistake, said so.
    let public = tmp.path().join("public");
    common::compile_and_setup("1l_mlp", &public, &[]);
    let public_proof = tmp.path().join("public.json");
    expect_success(&[
        "prove",
        p(&public),
        "--input",
        p(&input),
        "--out",
        p(&public_proof),
    ]);
    expect_failure(
        &[
            "verify",
            p(&public),
            p(&public_proof),
            "--input",
            p(&input),
            "--salt",
            salt,
        ],
        "a salt only applies to hashed inputs",
    );
}
