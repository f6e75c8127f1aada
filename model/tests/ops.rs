//! One small ONNX model per op variant (`tests/fixtures`, made by scripts/make-op-fixtures.sh):
//! the float import matches onnxruntime and the fixed-point evaluation stays within bound.

use zkinfer_model::corpus::{error_bound, expected_outputs, max_abs_error};
use zkinfer_model::{
    load_onnx, load_onnx_with, parse_input_json, quantize, QuantizeOptions, Weights,
};

#[test]
fn op_fixtures_match_onnxruntime() {
    let root = zkinfer_model::corpus::manifest_dir().join("tests/fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 19);
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let graph = load_onnx(&dir.join("network.onnx")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let input =
            parse_input_json(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
        let want = expected_outputs(&dir.join("expected.json")).unwrap();
        let vals = graph.eval(&input);
        let float: Vec<Vec<f64>> = graph.outputs.iter().map(|&o| vals[o].clone()).collect();
        let ferr = max_abs_error(&float, &want);
        assert!(
            ferr < 1e-5,
            "{name}: float import differs from onnxruntime by {ferr}"
        );
        let q = quantize(&graph, &input, &QuantizeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let trace = q.eval(&q.quantize_input(&input).unwrap()).unwrap();
        let fixed: Vec<Vec<f64>> = q
            .outputs_of(&trace)
            .iter()
            .map(|o| o.iter().map(|&v| q.dequantize(v)).collect())
            .collect();
        let (qerr, bound) = (max_abs_error(&fixed, &want), error_bound(q.scale, &want));
        assert!(
            qerr <= bound,
            "{name}: fixed-point error {qerr} above {bound}"
        );
    }
}

#[test]
fn token_ids_must_be_integers_within_the_vocabulary() {
    let dir = zkinfer_model::corpus::manifest_dir().join("tests/fixtures/token_embedding");
    let graph = load_onnx(&dir.join("network.onnx")).unwrap();
    let input =
        parse_input_json(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
    let q = quantize(&graph, &input, &QuantizeOptions::default()).unwrap();
    // ONNX's range for 10 entries is [-10, 10): both ends are accepted.
    let ok = vec![vec![-10.0, 9.0, 0.0, 1.0, 2.0, 3.0]];
    assert!(q.eval(&q.quantize_input(&ok).unwrap()).is_ok());
    for (bad, shown) in [(10.0, "10"), (-11.0, "-11"), (2.5, "2.5")] {
        let ids = vec![vec![1.0, 2.0, bad, 3.0, 4.0, 5.0]];
        let err = q.eval(&q.quantize_input(&ids).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("bad index at node \"tok\": {shown} is not an integer index into 10 entries"),
        );
    }
}

/// Causal self-attention as exported (`masked_fill(…, -inf)`, and an additive mask of the
/// dtype's minimum before a scaling and a reshape): the masked entries never reach the
/// softmax's exponentials (t(t+1)/2 of t² are computed), and in fixed point a future token's
/// value cannot change an earlier output, while it does change its own. With hashed weights
/// the mask stays the architecture's constant.
#[test]
fn causal_masks_exclude_the_future() {
    let t = 8;
    for name in ["causal_where_inf", "causal_add_min"] {
        let dir = zkinfer_model::corpus::manifest_dir()
            .join("tests/fixtures")
            .join(name);
        let graph = load_onnx(&dir.join("network.onnx")).unwrap();
        let exps: Vec<usize> = graph
            .nodes
            .iter()
            .filter(|n| n.name.ends_with(".exp"))
            .map(|n| n.len())
            .collect();
        assert_eq!(exps, [t * (t + 1) / 2], "{name}");
        let input =
            parse_input_json(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
        let q = quantize(&graph, &input, &QuantizeOptions::default()).unwrap();
        let run = |x: &[Vec<f64>]| {
            let trace = q.eval(&q.quantize_input(x).unwrap()).unwrap();
            q.outputs_of(&trace).remove(0)
        };
        let before = run(&input);
        let mut changed = input.clone();
        let d = changed[0].len() / t;
        for v in &mut changed[0][(t - 1) * d..] {
            *v = -*v * 0.5 + 0.25;
        }
        let after = run(&changed);
        let per_token = before.len() / t;
        let split = (t - 1) * per_token;
        assert_eq!(before[..split], after[..split], "{name}: the past moved");
        assert_ne!(
            before[split..],
            after[split..],
            "{name}: the last token is live"
        );
        load_onnx_with(&dir.join("network.onnx"), Weights::Hashed)
            .unwrap_or_else(|e| panic!("{name} with hashed weights: {e}"));
    }
}
