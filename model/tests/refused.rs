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
