//! Models the importer refuses (`tests/refused`, made by scripts/make-op-fixtures.sh): the
//! error names the node as the ONNX file does, with its op type, and tract's node after it.

use zkinfer_model::{corpus::refused_dir, load_onnx, ModelError};

fn refusal(name: &str) -> ModelError {
    let path = refused_dir(name).join("network.onnx");
    match load_onnx(&path) {
        Ok(_) => panic!("{name} loaded"),
        Err(e) => e,
    }
}

#[test]
fn a_random_node_is_named_as_the_file_names_it() {
    let e = refusal("random_normal");
    let ModelError::UnsupportedOp { onnx, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(
        onnx.as_deref(),
        Some(&("add_noise".to_string(), "RandomNormal".to_string())),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("unsupported op RandomNormal at ONNX node \"add_noise\" (tract: "),
        "{e}"
    );
}

#[test]
fn a_node_tract_rewrites_is_still_named_as_the_file_names_it() {
    let e = refusal("hardmax");
    let ModelError::UnsupportedOp { node, onnx, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(
        onnx.as_deref(),
        Some(&("pick".to_string(), "Hardmax".to_string())),
        "{e}"
    );
    assert_ne!(
        node, "pick",
        "tract's own node, named after the ONNX one: {e}"
    );
    assert!(
        e.to_string()
            .starts_with("unsupported op Hardmax at ONNX node \"pick\" (tract: "),
        "{e}"
    );
}

#[test]
fn a_comparison_on_the_input_is_refused_naming_an_unnamed_node_by_its_output() {
    let e = refusal("where_variable");
    let ModelError::UnsupportedOp { onnx, detail, .. } = &e else {
        panic!("{e}")
    };
    // The comparison feeding the select is refused first; it has no name in the file.
    assert_eq!(
        onnx.as_deref(),
        Some(&("unnamed, output pos".to_string(), "Greater".to_string())),
        "{e}"
    );
    assert!(!detail.is_empty(), "a reason: {e}");
}

/// `name`'s refusal names ONNX node `node` of type `op`, for a reason that says `why`.
fn refused_at(name: &str, node: &str, op: &str, why: &str) {
    let e = refusal(name);
    let ModelError::UnsupportedOp { onnx, detail, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(
        onnx.as_deref(),
        Some(&(node.to_string(), op.to_string())),
        "{e}"
    );
    assert!(detail.contains(why), "{e}");
}

/// An attention mask (here −1e4, the threshold) that feeds a Sigmoid instead of a Softmax:
/// there the −∞ would be a value, so the reader is refused by name. (A Relu, a maximum with
/// 0, skips the masked entry and is exact.)
#[test]
fn a_mask_on_a_path_that_is_not_a_softmax_is_refused_naming_the_reader() {
    refused_at(
        "mask_not_softmax",
        "squash",
        "Sigmoid",
        "only on its way into a Softmax",
    );
}

#[test]
fn a_fully_masked_softmax_row_is_refused_naming_the_softmax() {
    refused_at(
        "mask_fully_masked_row",
        "attend",
        "Softmax",
        "excludes every entry of row 0: a fully masked row",
    );
}

/// −1e4 scaled by 1e-4 is −1, a value the float softmax weighs: no longer a mask.
#[test]
fn a_mask_scaled_back_into_the_scores_range_is_refused() {
    refused_at(
        "mask_scaled_away",
        "attend",
        "Softmax",
        "its mask was scaled to -1",
    );
}

#[test]
fn calibration_of_the_wrong_size_is_refused_not_a_panic() {
    let dir = zkinfer_model::corpus::manifest_dir().join("tests/fixtures/matmul_bias");
    let g = load_onnx(&dir.join("network.onnx")).unwrap();
    let text = std::fs::read_to_string(dir.join("input.json")).unwrap();
    let good = zkinfer_model::parse_calibration_json(&text).unwrap();
    assert!(zkinfer_model::float_outputs(&g, &good).is_ok());
    let sample = good[0].clone();
    let mut short = sample.clone();
    short[0].pop();
    let two_inputs = vec![sample[0].clone(), sample[0].clone()];
    let empty = vec![Vec::new()];
    for (what, bad) in [
        ("short", short),
        ("two inputs", two_inputs),
        ("empty", empty),
    ] {
        let samples = vec![sample.clone(), bad];
        match zkinfer_model::float_outputs(&g, &samples) {
            Err(ModelError::Input(m)) => {
                assert!(m.starts_with("calibration sample 1: "), "{what}: {m}")
            }
            other => panic!("{what}: {other:?}"),
        }
        assert!(zkinfer_model::check_calibration(&g, &samples).is_err());
    }
}
