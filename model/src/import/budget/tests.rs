//! Constant bombs: tiny files that ask tract for huge tensors, each refused by name before
//! anything that size exists; and the shapes followed through shape arithmetic.

use std::time::Instant;

use tract_onnx::pb::{self, tensor_proto::DataType, AttributeProto, NodeProto, TensorProto};

use crate::corpus::craft::{float_value, floats, model, node};
use crate::error::ModelError;
use crate::load_onnx_bytes;

fn ints(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: DataType::Int64 as i32,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

/// Refused as too large, naming `node`, without the allocation (well within a second).
fn refused_naming(bytes: &[u8], node: &str) {
    let t = Instant::now();
    match load_onnx_bytes(bytes) {
        Err(ModelError::TooLarge(m)) => {
            assert!(m.contains(&format!("\"{node}\"")), "{m}");
            assert!(m.contains("budget"), "{m}");
        }
        other => panic!("expected TooLarge naming {node}, got {other:?}"),
    }
    // Not a timing assertion on speed: a bomb that got through would allocate gigabytes and
    // take many seconds; the refusal must come before tract folds anything.
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
}

#[test]
fn constant_of_shape_bomb_is_refused_by_name() {
    let bytes = model(
        vec![ints("shape", &[1 << 14, 1 << 14])],
        vec![node("bomb", "ConstantOfShape", &["shape"], vec![])],
    );
    assert!(bytes.len() < 200, "{} bytes", bytes.len());
    refused_naming(&bytes, "bomb");
}

#[test]
fn a_shape_computed_from_constants_is_followed() {
    // shape = Concat(Mul(Gather(Shape(x), 1), 4096), [4096]): [16384, 4096].
    let bytes = model(
        vec![ints("one", &[1]), ints("k", &[4096]), ints("tail", &[4096])],
        vec![
            node("s", "Shape", &["x"], vec![]),
            node("g", "Gather", &["s_out", "one"], vec![]),
            node("m", "Mul", &["g_out", "k"], vec![]),
            node("c", "Concat", &["m_out", "tail"], vec![int_attr("axis", 0)]),
            node("bomb", "ConstantOfShape", &["c_out"], vec![]),
        ],
    );
    refused_naming(&bytes, "bomb");
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        ..Default::default()
    }
}

#[test]
fn expand_tile_range_pad_resize_and_broadcasts_are_followed() {
    let big = 1i64 << 13;
    let cases: Vec<(&str, Vec<TensorProto>, Vec<NodeProto>)> = vec![
        (
            "expand",
            vec![ints("to", &[big, big, 1, 1])],
            vec![node("expand", "Expand", &["x", "to"], vec![])],
        ),
        (
            "tile",
            vec![ints("reps", &[big, big])],
            vec![node("tile", "Tile", &["x", "reps"], vec![])],
        ),
        (
            "range",
            vec![
                floats("start", &[], &[0.0]),
                floats("limit", &[], &[1e12]),
                floats("delta", &[], &[1.0]),
            ],
            vec![node("range", "Range", &["start", "limit", "delta"], vec![])],
        ),
        (
            "pad",
            vec![ints("pads", &[0, 0, big, big * big])],
            vec![node("pad", "Pad", &["x", "pads"], vec![])],
        ),
        (
            "resize",
            vec![
                floats("roi", &[0], &[]),
                floats("scales", &[4], &[1.0, 1.0, 1e4, 1e4]),
            ],
            vec![
                node("r4", "Reshape", &["x", "shape4"], vec![]),
                node("resize", "Resize", &["r4_out", "roi", "scales"], vec![]),
            ],
        ),
        (
            "outer",
            vec![
                floats("col", &[big, 1], &vec![0.5; big as usize]),
                floats("row", &[1, big], &vec![0.5; big as usize]),
            ],
            vec![node("outer", "Add", &["col", "row"], vec![])],
        ),
    ];
    for (name, mut inits, nodes) in cases {
        inits.push(ints("shape4", &[1, 1, 1, 4]));
        refused_naming(&model(inits, nodes), name);
    }
}

#[test]
fn an_initializer_declaring_more_than_it_holds_is_refused() {
    let t = TensorProto {
        name: "w".into(),
        dims: vec![1 << 20, 1 << 20],
        data_type: DataType::Float as i32,
        ..Default::default()
    };
    let bytes = model(vec![t], vec![node("y", "Add", &["x", "w"], vec![])]);
    match load_onnx_bytes(&bytes) {
        Err(ModelError::TooLarge(m)) => assert!(m.contains("initializer \"w\""), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn shapes_within_the_budget_pass_to_tract() {
    // The same graphs at sizes within the budget are not refused by this pass (what tract
    // makes of them is its business).
    let bytes = model(
        vec![ints("shape", &[1, 4])],
        vec![
            node("c", "ConstantOfShape", &["shape"], vec![float_value(0.5)]),
            node("y", "Add", &["x", "c_out"], vec![]),
        ],
    );
    let g = load_onnx_bytes(&bytes).expect("a small ConstantOfShape loads");
    assert_eq!(g.input_shapes(), vec![vec![1, 4]]);
}

#[test]
fn the_corpus_bomb_is_refused_and_its_small_twin_loads() {
    refused_naming(&crate::corpus::constant_bomb(1 << 14), "bomb");
    let g = load_onnx_bytes(&crate::corpus::constant_bomb(1)).expect("a 1 × 1 constant loads");
    assert_eq!(g.input_shapes(), vec![vec![1, 4]]);
}

#[test]
fn a_size_computed_by_an_op_the_pass_does_not_follow_is_refused() {
    // Abs of a constant shape, and Max of the input's shape: tract would compute both and
    // allocate; this pass cannot bound them, so the node is refused.
    let abs = model(
        vec![ints("c", &[1 << 16, 1 << 16])],
        vec![
            node("a", "Abs", &["c"], vec![]),
            node(
                "bomb",
                "ConstantOfShape",
                &["a_out"],
                vec![float_value(0.0)],
            ),
        ],
    );
    refused_naming(&abs, "bomb");
    let from_shape = model(
        vec![ints("big", &[1 << 16, 1 << 16])],
        vec![
            node("s", "Shape", &["x"], vec![]),
            node("m", "Max", &["s_out", "big"], vec![]),
            node("m2", "Abs", &["m_out"], vec![]),
            node("bomb", "Expand", &["x", "m2_out"], vec![]),
        ],
    );
    refused_naming(&from_shape, "bomb");
    // A subgraph (If/Loop/Scan) is refused outright.
    let mut iff = node("branch", "If", &["x"], vec![]);
    iff.attribute.push(AttributeProto {
        name: "then_branch".into(),
        g: Some(pb::GraphProto::default()),
        r#type: pb::attribute_proto::AttributeType::Graph as i32,
        ..Default::default()
    });
    refused_naming(&model(vec![], vec![iff]), "branch");
}

#[test]
fn a_million_dims_are_refused_before_they_cost_anything() {
    let mut t = ints("w", &[1]);
    t.dims = vec![1; 1 << 20];
    let bytes = model(vec![t], vec![node("y", "Add", &["x", "w"], vec![])]);
    match load_onnx_bytes(&bytes) {
        Err(ModelError::TooLarge(m)) => assert!(m.contains("dims"), "{m}"),
        other => panic!("{other:?}"),
    }
}
