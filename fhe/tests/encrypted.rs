//! Encrypted runs decrypt to exactly what the clear simulation computes, on the digits MLP and
//! on the EZKL examples' MLPs; keys and ciphertexts that do not belong together are refused.

mod common;

use common::*;
use zkinfer_fhe::{compile, FheError, FheOptions};

/// Encrypts, runs on the server and decrypts `samples`; asserts each equals the simulation.
fn assert_encrypted_matches_simulation(
    program: &zkinfer_fhe::FheProgram,
    samples: &[Vec<Vec<f64>>],
) {
    let (pair, server) = keys(program);
    for (k, s) in samples.iter().enumerate() {
        let (want_ints, want_real) = program.run_clear(s).expect("simulation");
        let ct = pair.client.encrypt(s).expect("encrypt");
        let (result, report) = server
            .run(&ct, "ct.bin", &|_, _| {})
            .expect("encrypted run");
        assert_eq!(report.bootstraps, program.stats().bootstraps);
        let (ints, real) = pair.client.decrypt(&result, "result.bin").expect("decrypt");
        assert_eq!(
            ints, want_ints,
            "sample {k}: decrypted integers differ from the simulation"
        );
        assert_eq!(real, want_real, "sample {k}");
    }
}

#[test]
fn digits_mlp_encrypted_runs_match_the_simulation_bit_for_bit() {
    let c = digits();
    let test = digits_test();
    let n: usize = std::env::var("ZKINFER_FHE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let samples: Vec<Vec<Vec<f64>>> = test
        .samples
        .iter()
        .take(n)
        .map(|s| vec![s.clone()])
        .collect();
    assert_encrypted_matches_simulation(&c.program, &samples);
}

#[test]
fn the_examples_mlps_run_encrypted() {
    for name in ["1l_mlp", "2l_relu_fc", "accuracy"] {
        let (g, s) = load(&example(name), "input.json");
        let c = compile(&g, &s, &FheOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_encrypted_matches_simulation(&c.program, &s);
    }
}

#[test]
fn keys_and_ciphertexts_that_do_not_belong_together_are_refused() {
    let c = digits();
    let (pair, server) = keys(&c.program);
    let test = digits_test();
    let x = vec![test.samples[0].clone()];
    let ct = pair.client.encrypt(&x).unwrap();

    // Another key set for the same program: its server refuses these ciphertexts, and its
    // client refuses to decrypt this one's results.
    let other = zkinfer_fhe::ClientSide::generate(&c.program).unwrap();
    let other_server =
        zkinfer_fhe::ServerSide::load(c.program.clone(), &other.server_key, "other.key").unwrap();
    let err = other_server.run(&ct, "ct.bin", &|_, _| {}).unwrap_err();
    assert!(matches!(err, FheError::Mismatch(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "mismatch: ct.bin was encrypted under another key set than the server key's"
    );
    let (result, _) = server.run(&ct, "ct.bin", &|_, _| {}).unwrap();
    let err = other.client.decrypt(&result, "result.bin").unwrap_err();
    assert_eq!(
        err.to_string(),
        "mismatch: result.bin was encrypted under another key set"
    );

    // A truncated ciphertext file.
    let err = server
        .run(&ct[..ct.len() - 7], "ct.bin", &|_, _| {})
        .unwrap_err();
    assert!(matches!(err, FheError::File { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("ct.bin: truncated in item 63 of 64"),
        "{err}"
    );

    // Results given where inputs are expected.
    let err = server.run(&result, "result.bin", &|_, _| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "result.bin: holds encrypted results, expected encrypted inputs"
    );

    // Ciphertexts for another model: the 1l_mlp program's server refuses the digits inputs.
    let (g, s) = load(&example("1l_mlp"), "input.json");
    let mlp = compile(&g, &s, &FheOptions::default()).unwrap();
    let (_, mlp_server) = keys(&mlp.program);
    let err = mlp_server.run(&ct, "ct.bin", &|_, _| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mismatch: ct.bin was encrypted for another model's FHE program"
    );
    // And a server key of one program does not load for another.
    let err = zkinfer_fhe::ServerSide::load(mlp.program.clone(), &pair.server_key, "server.key")
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "mismatch: server.key was made for another model's FHE program"
    );

    // Wrong input shape, NaN, out of range: refused before encrypting.
    let err = pair.client.encrypt(&[vec![0.5; 63]]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input: input 0 has 63 values, the model takes 64 (shape [1, 64])"
    );
    let mut bad = test.samples[0].clone();
    bad[5] = f64::NAN;
    assert_eq!(
        pair.client.encrypt(&[bad]).unwrap_err().to_string(),
        "input: input 0 element 5 is NaN"
    );
    let mut big = test.samples[0].clone();
    big[3] = 7.0;
    let err = pair.client.encrypt(&[big]).unwrap_err().to_string();
    assert!(
        err.starts_with("input: input 0 element 3 = 7 is outside [0, 1"),
        "{err}"
    );
}
