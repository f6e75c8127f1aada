//! Fixtures for the criterion benches: compiled example models from the corpus.
#![warn(missing_docs)]

use std::path::Path;

use zkinfer_circuits::artifacts::Settings;
use zkinfer_model::corpus::example_dir;
use zkinfer_prover::pipeline::{self, CompileOptions, Folder};

/// Compiles corpus model `name` into `dir` (at `k` rows when given, with no proof-size limit
/// then) and opens it, with the quantized input of its `input.json`.
pub fn compiled(name: &str, dir: &Path, k: Option<u32>) -> (Folder, Vec<Vec<i64>>) {
    let ex = example_dir(name);
    let mut opts = CompileOptions::default();
    if k.is_some() {
        opts.limits.k = k;
        opts.limits.max_proof_bytes = usize::MAX;
    }
    let input = ex.join("input.json");
    let _: Settings =
        pipeline::compile(&ex.join("network.onnx"), &input, dir, &opts).expect("compiles");
    let folder = pipeline::open(dir).expect("opens");
    let text = std::fs::read_to_string(&input).expect("input");
    let floats = zkinfer_model::parse_input_json(&text).expect("parses");
    let q = folder.q.quantize_input(&floats).expect("quantizes");
    (folder, q)
}
