//! The EZKL example corpus beside the checkout (`../shared/ezkl-examples`) and the error bound
//! zkinfer holds itself to against onnxruntime; shared by tests and benches.

use std::path::{Path, PathBuf};

/// The sixteen models the proving slice must compile, prove and verify.
pub const PROVING_SLICE_MODELS: &[&str] = &[
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

/// The running package's folder: cargo sets `CARGO_MANIFEST_DIR` when it runs tests and
/// benches. Read at run time, not baked in at build time, because a build cache shared
/// between checkouts (CI's clone and a working copy) would otherwise point into the wrong one.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// A model the importer must refuse, `model/tests/refused/NAME` (from any workspace member).
pub fn refused_dir(name: &str) -> PathBuf {
    manifest_dir().join("../model/tests/refused").join(name)
}

/// `../shared/ezkl-examples/NAME`, relative to the repository root (every workspace member
/// sits one level below it).
pub fn example_dir(name: &str) -> PathBuf {
    manifest_dir().join("../../shared/ezkl-examples").join(name)
}

/// Example `name` quantized with the default options on its own input, and that input
/// quantized: what the circuit and segment tests lay out.
pub fn quantized_example(name: &str) -> (crate::QGraph, Vec<Vec<i64>>) {
    let dir = example_dir(name);
    let graph = crate::load_onnx(&dir.join("network.onnx")).expect("the example loads");
    let text = std::fs::read_to_string(dir.join("input.json")).expect("input.json");
    let input = crate::parse_input_json(&text).expect("the input parses");
    let q = crate::quantize(&graph, &input, &crate::QuantizeOptions::default()).expect("quantizes");
    let qi = q.quantize_input(&input).expect("the input quantizes");
    (q, qi)
}

/// `output_data` of an `expected.json` (onnxruntime's float outputs).
pub fn expected_outputs(path: &Path) -> Result<Vec<Vec<f64>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let lists = v["output_data"].as_array().ok_or("no output_data")?;
    lists
        .iter()
        .map(|l| {
            let xs = l.as_array().ok_or("output_data holds a non-list")?;
            xs.iter()
                .map(|x| x.as_f64().ok_or_else(|| "non-number output".to_string()))
                .collect()
        })
        .collect()
}

/// Largest absolute difference between two sets of outputs (which must have equal sizes).
pub fn max_abs_error(got: &[Vec<f64>], want: &[Vec<f64>]) -> f64 {
    assert_eq!(
        got.iter().map(Vec::len).sum::<usize>(),
        want.iter().map(Vec::len).sum::<usize>()
    );
    got.iter()
        .flatten()
        .zip(want.iter().flatten())
        .fold(0.0, |m, (a, b)| m.max((a - b).abs()))
}

/// The accuracy bound: 16 units in the last place of the fixed-point output scale, relative
/// to the largest output when that is above 1.
pub fn error_bound(scale: u32, want: &[Vec<f64>]) -> f64 {
    let max_abs = want.iter().flatten().fold(1.0f64, |m, v| m.max(v.abs()));
    16.0 / (1u64 << scale) as f64 * max_abs
}

/// ONNX files made in code with tract's own protobuf types, for tests of every crate.
pub mod craft {
    use tract_onnx::pb::tensor_shape_proto::{dimension::Value as D, Dimension};
    use tract_onnx::pb::{self, tensor_proto::DataType};

    /// A float tensor input of these dims.
    pub fn float_input(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
        pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| Dimension {
                                value: Some(D::DimValue(d)),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Node `name` of op `op` on `inputs`, with one output, `NAME_out`.
    pub fn node(
        name: &str,
        op: &str,
        inputs: &[&str],
        attrs: Vec<pb::AttributeProto>,
    ) -> pb::NodeProto {
        pb::NodeProto {
            name: name.into(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![format!("{name}_out")],
            attribute: attrs,
            ..Default::default()
        }
    }

    /// A float tensor of these dims and values.
    pub fn floats(name: &str, dims: &[i64], v: &[f32]) -> pb::TensorProto {
        pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            float_data: v.to_vec(),
            ..Default::default()
        }
    }

    /// ConstantOfShape's `value` attribute: one float.
    pub fn float_value(v: f32) -> pb::AttributeProto {
        pb::AttributeProto {
            name: "value".into(),
            t: Some(floats("value", &[1], &[v])),
            r#type: pb::attribute_proto::AttributeType::Tensor as i32,
            ..Default::default()
        }
    }

    /// The file of a model with input `x` [1, 4], these initializers and nodes (opset 13),
    /// and the last node's output as its output.
    pub fn model(inits: Vec<pb::TensorProto>, nodes: Vec<pb::NodeProto>) -> Vec<u8> {
        use prost::Message;
        let last = nodes
            .last()
            .map(|n| n.output[0].clone())
            .unwrap_or_default();
        let graph = pb::GraphProto {
            name: "crafted".into(),
            node: nodes,
            initializer: inits,
            input: vec![float_input("x", &[1, 4])],
            output: vec![pb::ValueInfoProto {
                name: last,
                ..Default::default()
            }],
            ..Default::default()
        };
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

/// A constant bomb: an ONNX file of a couple of hundred bytes whose node `bomb`
/// (ConstantOfShape) asks for a `side × side` tensor of zeros, added to the input `x` [1, 4].
pub fn constant_bomb(side: i64) -> Vec<u8> {
    use craft::{float_value, model, node};
    use tract_onnx::pb::{tensor_proto::DataType, TensorProto};
    let shape = TensorProto {
        name: "shape".into(),
        dims: vec![2],
        data_type: DataType::Int64 as i32,
        int64_data: vec![side, side],
        ..Default::default()
    };
    model(
        vec![shape],
        vec![
            node(
                "bomb",
                "ConstantOfShape",
                &["shape"],
                vec![float_value(0.0)],
            ),
            node("y", "Add", &["x", "bomb_out"], vec![]),
        ],
    )
}
