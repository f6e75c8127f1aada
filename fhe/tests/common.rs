//! Shared helpers of the FHE tests: fixtures, compiled programs and one cached key set per
//! program (key generation takes seconds).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use zkinfer_fhe::{compile, ClientSide, Compiled, FheOptions, FheProgram, KeyPair, ServerSide};
use zkinfer_model::{load_onnx, parse_calibration_json, Graph};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/ezkl-examples")
        .join(name)
}

pub fn load(dir: &Path, calibration: &str) -> (Graph, Vec<Vec<Vec<f64>>>) {
    let graph = load_onnx(&dir.join("network.onnx")).expect("the model imports");
    let text = std::fs::read_to_string(dir.join(calibration)).expect("calibration file");
    (
        graph,
        parse_calibration_json(&text).expect("calibration parses"),
    )
}

/// The digits test set: samples, labels, float predictions.
pub struct Digits {
    pub samples: Vec<Vec<f64>>,
    pub labels: Vec<usize>,
    pub float_predictions: Vec<usize>,
}

pub fn digits_test() -> Digits {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("digits_16/test.json")).unwrap())
            .unwrap();
    let list = |k: &str| v[k].as_array().unwrap().clone();
    Digits {
        samples: list("samples")
            .iter()
            .map(|s| {
                s.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect(),
        labels: list("labels")
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect(),
        float_predictions: list("float_predictions")
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect(),
    }
}

/// The digits MLP compiled with default options.
pub fn digits() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| {
        let (g, s) = load(&fixture("digits_16"), "calibration.json");
        compile(&g, &s, &FheOptions::default()).expect("the digits MLP compiles")
    })
}

/// A key pair and a loaded server for a program, generated once per test binary and program.
type Keys = &'static (KeyPair, ServerSide);

pub fn keys(program: &FheProgram) -> Keys {
    static CACHE: OnceLock<std::sync::Mutex<Vec<(String, Keys)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let sha = program.sha256();
    let mut c = cache.lock().unwrap();
    if let Some((_, k)) = c.iter().find(|(s, _)| *s == sha) {
        return k;
    }
    let pair = ClientSide::generate(program).expect("keygen");
    let server = ServerSide::load(program.clone(), &pair.server_key, "server.key")
        .expect("server key loads");
    let leaked: &'static (KeyPair, ServerSide) = Box::leak(Box::new((pair, server)));
    c.push((sha, leaked));
    leaked
}
