//! ONNX import, fixed-point quantization and the integer reference evaluator.
//!
//! The pipeline is `load` (tract-onnx → [`Graph`], every op lowered to five shapes of
//! computation) → `quantize` ([`Graph`] → [`QGraph`]) → [`QGraph::eval`], the integer
//! semantics that the circuit, the expected outputs and the public instances all follow.
#![warn(missing_docs)]

#[cfg(feature = "corpus")]
pub mod corpus;
mod error;
mod graph;
mod import;
mod input;
mod qgraph;
mod quantize;
pub mod segment;
mod sparse;

pub use error::ModelError;
pub use graph::{ExtremumKind, Graph, Node, Op, Src, UnaryFn, Weights};
pub use import::{
    load_onnx, load_onnx_bytes, load_onnx_bytes_with, load_onnx_with, MAX_CONSTANT_ELEMENTS,
};
pub use input::{parse_calibration_json, parse_input_json, InputData};
pub use qgraph::{
    dequantize, divide, isqrt_scaled, quantize_input, LookupTable, QGraph, QNode, QOp, Trace,
};
pub use quantize::{
    check_calibration, float_outputs, measured_error, quantize, quantize_params, quantize_samples,
    QuantizeOptions,
};
pub use segment::{Cut, Segment};
pub use sparse::Rows;

/// Hex sha256 of some bytes: the content address of models and artifacts.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
