//! One small ONNX model per op variant (`tests/fixtures`, made by scripts/make-op-fixtures.sh):
//! the float import matches onnxruntime and the fixed-point evaluation stays within bound.

use zkinfer_model::corpus::{error_bound, expected_outputs, max_abs_error};
use zkinfer_model::{load_onnx, parse_input_json, quantize, QuantizeOptions};

#[test]
fn op_fixtures_match_onnxruntime() {
    let root = zkinfer_model::corpus::manifest_dir().join("tests/fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 16);
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
