//! The ONNX examples from `../shared/ezkl-examples`: import matches onnxruntime, and the
//! quantized evaluation stays within the fixed-point error bound.

use std::path::PathBuf;

use zkinfer_model::{load_onnx, parse_input_json, quantize, QuantizeOptions};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ezkl-examples")
}

fn expected(name: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(examples_dir().join(name).join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["output_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

const MODELS: &[&str] = &[
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
    "variable_cnn",
    "large_mlp",
    "1l_div",
    "clip",
    "max",
    "ltsf",
    "lenet_5",
];

#[test]
fn float_import_matches_onnxruntime_and_quantized_stays_close() {
    for name in MODELS {
        let dir = examples_dir().join(name);
        let graph = load_onnx(&dir.join("network.onnx")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let input =
            parse_input_json(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
        let want = expected(name);
        let vals = graph.eval(&input);
        let q = quantize(&graph, &input, &QuantizeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let qi = q.quantize_input(&input).unwrap();
        let trace = q.eval(&qi).unwrap_or_else(|e| panic!("{name}: {e}"));
        let qout = q.outputs_of(&trace);
        let mut fmax = 0.0f64;
        let mut qmax = 0.0f64;
        let mut scale = 0.0f64;
        for (o, &nid) in graph.outputs.iter().enumerate() {
            assert_eq!(vals[nid].len(), want[o].len(), "{name} output {o} length");
            for (i, w) in want[o].iter().enumerate() {
                fmax = fmax.max((vals[nid][i] - w).abs());
                qmax = qmax.max((q.dequantize(qout[o][i]) - w).abs());
                scale = scale.max(w.abs());
            }
        }
        println!("{name:>18}: float err {fmax:.2e}  quant err {qmax:.2e} (rel {:.2e})  act_bits {}  nodes {}", qmax / scale.max(1e-9), q.act_bits, q.nodes.len());
        assert!(
            fmax < 1e-4,
            "{name}: float import differs from onnxruntime by {fmax}"
        );
        // 16 units in the last place of the output scale, relative above 1 (see cli/tests).
        let bound = 16.0 / (1u64 << q.scale) as f64 * scale.max(1.0);
        assert!(
            qmax <= bound,
            "{name}: quantized error {qmax} above {bound}"
        );
    }
}
