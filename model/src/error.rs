use thiserror::Error;

/// Everything that can go wrong between ONNX bytes and integer outputs.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// tract could not parse or type the model.
    #[error("malformed ONNX model: {0}")]
    Malformed(String),
    /// A node uses an op the quantized pipeline does not support.
    #[error("{}", unsupported_message(.node, *.node_id, .op, .onnx.as_deref(), .detail))]
    UnsupportedOp {
        /// Node name in the (decluttered) graph.
        node: String,
        /// Node index in the decluttered graph.
        node_id: usize,
        /// The op, as tract names it after decluttering.
        op: String,
        /// The ONNX node it comes from, as the file names it: (name, op type).
        onnx: Option<Box<(String, String)>>,
        /// Extra detail (starting with ": "), or empty.
        detail: String,
    },
    /// A shape the model needs is not concrete or not consistent.
    #[error("shape error at node \"{node}\": {message}")]
    Shape {
        /// Node name.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// The input JSON is not in EZKL's format or does not match the model.
    #[error("bad input: {0}")]
    Input(String),
    /// A value does not fit the fixed-point range the circuit was compiled for.
    #[error(
        "value out of range at node \"{node}\": {value} needs more than {bits} signed bits; \
         recompile with more --range-headroom-bits or a calibration input closer to this one"
    )]
    OutOfRange {
        /// Node name.
        node: String,
        /// The offending integer value.
        value: i128,
        /// The signed bit width allowed there.
        bits: u32,
    },
    /// A function's input lies outside the table it is looked up in.
    #[error(
        "value out of range at node \"{node}\": {func:?} is tabulated for fixed-point inputs in \
         [{lo}, {hi}), not {value}; recompile with a calibration input closer to this one"
    )]
    OutsideTable {
        /// Node name.
        node: String,
        /// The function.
        func: crate::graph::UnaryFn,
        /// The offending input.
        value: i64,
        /// The first input the table covers.
        lo: i64,
        /// One past the last input the table covers.
        hi: i64,
    },
    /// A Gather index is not an integer in `[-len, len)`.
    #[error("bad index at node \"{node}\": {value} is not an integer index into {len} entries")]
    BadIndex {
        /// Node name.
        node: String,
        /// The offending index (at the activation scale, in real units).
        value: f64,
        /// Entries along the gathered axis.
        len: usize,
    },
    /// The model is larger than the configured limit.
    #[error("model too large: {0}")]
    TooLarge(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// "unsupported op Hardmax at ONNX node \"y\" (tract: Reduce<ArgMax(false)> at #3
/// \"y.argmax\")": the user's names first, tract's after them.
fn unsupported_message(
    node: &str,
    node_id: usize,
    op: &str,
    onnx: Option<&(String, String)>,
    detail: &str,
) -> String {
    match onnx {
        Some((name, op_type)) => format!(
            "unsupported op {op_type} at ONNX node \"{name}\" (tract: {op} at #{node_id} \"{node}\"){detail}"
        ),
        None => format!("unsupported op {op} at node #{node_id} \"{node}\"{detail}"),
    }
}
