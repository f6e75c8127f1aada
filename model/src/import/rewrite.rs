//! ONNX-level rewrites, applied to the file's graph before tract reads it, for ops whose
//! expansion by tract does not suit a circuit.
//!
//! Elu: tract expands it as `x > 0 ? x : α·(eˣ − 1)`, which needs a comparison and a select of
//! two computed values, and evaluates `eˣ` for every `x` (an `eˣ` table would then refuse large
//! positive inputs). The same function is `Relu(x) + α·(e^min(x, 0) − 1)`, which is made of
//! ops the circuit already proves, with `eˣ` only ever seeing `x ≤ 0`.

use tract_onnx::pb::{attribute_proto, GraphProto, NodeProto, TensorProto};

/// Rewrites every Elu node of `graph` in place (names derived from the node's, so errors
/// still point at it).
pub(crate) fn rewrite(graph: &mut GraphProto) {
    let nodes = std::mem::take(&mut graph.node);
    for node in nodes {
        if node.op_type == "Elu" && (node.domain.is_empty() || node.domain == "ai.onnx") {
            elu(graph, node);
        } else {
            graph.node.push(node);
        }
    }
}

/// Why tract would read `node` differently from ONNX, if it would: attributes newer than
/// tract's op set that it ignores. Such a node is refused rather than proved wrong.
pub(crate) fn misread_by_tract(node: &NodeProto) -> Option<String> {
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
    match node.op_type.as_str() {
        // Opset 28 gave SpaceToDepth DepthToSpace's `mode`; tract always uses DCR.
        "SpaceToDepth" => {
            let mode = attr("mode").map(|a| String::from_utf8_lossy(&a.s).into_owned());
            mode.filter(|m| m != "DCR")
                .map(|m| format!("mode {m} (tract reads every SpaceToDepth as DCR)"))
        }
        _ => None,
    }
}

fn scalar(graph: &mut GraphProto, name: String, v: f32) -> String {
    graph.initializer.push(TensorProto {
        name: name.clone(),
        data_type: 1, // FLOAT
        float_data: vec![v],
        ..Default::default()
    });
    name
}

fn node(op: &str, name: String, inputs: Vec<String>, output: String) -> NodeProto {
    NodeProto {
        op_type: op.to_string(),
        name,
        input: inputs,
        output: vec![output],
        ..Default::default()
    }
}

fn elu(graph: &mut GraphProto, elu: NodeProto) {
    let alpha = elu
        .attribute
        .iter()
        .find(|a| a.name == "alpha")
        .filter(|a| a.r#type == attribute_proto::AttributeType::Float as i32)
        .map_or(1.0, |a| a.f);
    let (Some(x), Some(y)) = (elu.input.first(), elu.output.first()) else {
        // Malformed: leave it for tract to report.
        graph.node.push(elu);
        return;
    };
    let base = if elu.name.is_empty() {
        y.clone()
    } else {
        elu.name.clone()
    };
    let part = |s: &str| format!("{base}.{s}");
    let zero = scalar(graph, part("zero"), 0.0);
    let one = scalar(graph, part("one"), 1.0);
    let alpha = scalar(graph, part("alpha"), alpha);
    let steps = [
        node("Min", part("neg"), vec![x.clone(), zero], part("neg")),
        node("Exp", part("exp"), vec![part("neg")], part("exp")),
        node(
            "Sub",
            part("minus_one"),
            vec![part("exp"), one],
            part("minus_one"),
        ),
        node(
            "Mul",
            part("scaled"),
            vec![part("minus_one"), alpha],
            part("scaled"),
        ),
        node("Relu", part("relu"), vec![x.clone()], part("relu")),
        node(
            "Add",
            base.clone(),
            vec![part("relu"), part("scaled")],
            y.clone(),
        ),
    ];
    graph.node.extend(steps);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::AttributeProto;

    fn space_to_depth(mode: Option<&str>) -> NodeProto {
        let mut n = node("SpaceToDepth", "s".into(), vec!["x".into()], "y".into());
        if let Some(m) = mode {
            n.attribute.push(AttributeProto {
                name: "mode".into(),
                r#type: attribute_proto::AttributeType::String as i32,
                s: m.as_bytes().to_vec(),
                ..Default::default()
            });
        }
        n
    }

    #[test]
    fn space_to_depth_in_crd_mode_is_flagged() {
        assert_eq!(misread_by_tract(&space_to_depth(None)), None);
        assert_eq!(misread_by_tract(&space_to_depth(Some("DCR"))), None);
        assert_eq!(
            misread_by_tract(&space_to_depth(Some("CRD"))).as_deref(),
            Some("mode CRD (tract reads every SpaceToDepth as DCR)")
        );
    }
}
