//! `zkinfer fhe`: the client/server walk-through on the digits MLP, decrypting to exactly what
//! `fhe simulate` prints, and the refusals (a model without an FHE program, wrong keys).

mod common;

use common::{expect_failure, expect_success, p};
use serde_json::Value;
use std::path::Path;

fn digits() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fhe/tests/fixtures/digits_16")
}

#[test]
fn encrypted_inference_walk_through() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("digits");
    let out = expect_success(&[
        "compile",
        p(&digits().join("network.onnx")),
        "--calibration",
        p(&digits().join("calibration.json")),
        "--out",
        p(&dir),
        "--fhe-groups",
        "1",
    ]);
    assert!(out.contains("fhe program (m3c3"), "{out}");
    let inspect = expect_success(&["inspect", p(&dir)]);
    assert!(
        inspect.contains(
            "fhe params       m3c3 (tfhe-rs 1.8, 128-bit security, 64-value accumulators)"
        ),
        "{inspect}"
    );
    assert!(inspect.contains("fhe quantization"), "{inspect}");

    let keys = tmp.path().join("keys");
    let out = expect_success(&["fhe", "keygen", p(&dir), "--out", p(&keys)]);
    assert!(out.contains("128-bit security"), "{out}");
    let input = digits().join("input.json");
    let ct = tmp.path().join("ct.bin");
    expect_success(&[
        "fhe",
        "encrypt",
        p(&keys),
        "--input",
        p(&input),
        "--out",
        p(&ct),
    ]);
    let result = tmp.path().join("result.bin");
    let out = expect_success(&[
        "fhe",
        "run",
        p(&dir),
        "--server-key",
        p(&keys.join("server.key")),
        p(&ct),
        "--out",
        p(&result),
    ]);
    assert!(out.contains("bootstraps in"), "{out}");
    let decrypted: Value =
        serde_json::from_str(&expect_success(&["fhe", "decrypt", p(&keys), p(&result)])).unwrap();
    let simulated: Value = serde_json::from_str(&expect_success(&[
        "fhe",
        "simulate",
        p(&dir),
        "--input",
        p(&input),
    ]))
    .unwrap();
    assert_eq!(decrypted, simulated);
    assert_eq!(decrypted["outputs"][0].as_array().unwrap().len(), 10);

    // Results decrypted under another key set, and a ciphertext given as a key: refused.
    let other = tmp.path().join("other");
    expect_success(&["fhe", "keygen", p(&dir), "--out", p(&other)]);
    expect_failure(
        &["fhe", "decrypt", p(&other), p(&result)],
        "was encrypted under another key set",
    );
    expect_failure(
        &[
            "fhe",
            "run",
            p(&dir),
            "--server-key",
            p(&ct),
            p(&ct),
            "--out",
            p(&result),
        ],
        "holds encrypted inputs, expected a server key",
    );
}

#[test]
fn a_model_the_fhe_path_cannot_take_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pool");
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/ezkl-examples/1l_max_pool");
    let out = expect_success(&[
        "compile",
        p(&ex.join("network.onnx")),
        "--calibration",
        p(&ex.join("input.json")),
        "--out",
        p(&dir),
    ]);
    assert!(out.contains("fhe program: none (node"), "{out}");
    expect_failure(
        &["fhe", "keygen", p(&dir), "--out", p(&tmp.path().join("k"))],
        "has no FHE program: node",
    );
}
