//! Every example model either compiles into an FHE program whose simulation runs on its input,
//! or is refused with a typed error naming why: never a panic.

mod common;

use common::*;
use zkinfer_fhe::{compile, FheError, FheOptions};

#[test]
fn every_example_compiles_or_is_refused_with_a_reason() {
    let root = example("");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("the example corpus at ../shared/ezkl-examples")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("network.onnx").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // One configuration per model: the build is what is under test, not the search.
    let opts = FheOptions {
        input_bits: Some(2),
        act_bits: Some(3),
        groups: Some(2),
        output_groups: Some(2),
        ..FheOptions::default()
    };
    let (mut compiled, mut refused) = (Vec::new(), Vec::new());
    for name in &names {
        let Ok(graph) = zkinfer_model::load_onnx(&root.join(name).join("network.onnx")) else {
            continue; // the importer's own refusals are tested in the model crate
        };
        let text = std::fs::read_to_string(root.join(name).join("input.json")).unwrap();
        let samples = zkinfer_model::parse_calibration_json(&text).unwrap();
        match compile(&graph, &samples, &opts) {
            Ok(c) => {
                c.program
                    .run_clear(&samples[0])
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                compiled.push(name.clone());
            }
            Err(e @ (FheError::Unsupported { .. } | FheError::DoesNotFit(_))) => {
                refused.push(format!("{name}: {e}"))
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    eprintln!("compiled: {compiled:?}");
    for r in &refused {
        eprintln!("refused {r}");
    }
    for name in [
        "1l_mlp",
        "2l_relu_fc",
        "accuracy",
        "4l_relu_conv_fc",
        "1l_sigmoid",
    ] {
        assert!(compiled.contains(&name.to_string()), "{name}: {refused:?}");
    }
    assert!(
        refused.iter().any(|r| r.starts_with("1l_max_pool: node")),
        "{refused:?}"
    );
}
