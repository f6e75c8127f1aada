//! Committed weights (`--weights hashed`): their quantization at the activation scale and
//! their width, alike with or without calibration.

use super::{fuse_affine_chains, to_fixed};
use crate::error::{ModelError, Result};
use crate::graph::{Graph, Op};
use crate::qgraph::{QNode, QOp};

pub(super) fn quantize_param(values: &[f32], unit: f64, node: &str) -> Result<Vec<i64>> {
    values
        .iter()
        .map(|&v| to_fixed(v as f64 * unit, node))
        .collect()
}

/// The committed weights of a graph imported with hashed weights exactly as [`quantize`]
/// makes them, without calibration: per [`Op::Param`] node left after fusion, in graph
/// order, its shape and its values at activation scale `scale` (what `zkinfer hash weights`
/// commits to from the ONNX file alone).
pub fn quantize_params(graph: &Graph, scale: u32) -> Result<Vec<(Vec<usize>, Vec<i64>)>> {
    if scale == 0 || scale > 24 {
        return Err(ModelError::Input("scales must be in 1..=24".into()));
    }
    let unit = (1u64 << scale) as f64;
    fuse_affine_chains(graph)
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Param { values } => {
                Some(quantize_param(values, unit, &n.name).map(|v| (n.shape.clone(), v)))
            }
            _ => None,
        })
        .collect()
}

/// The signed width of the committed weights: the widest one's (at least 2 bits), or
/// `given` when every weight fits it; 0 without [`QOp::Param`] nodes.
pub(super) fn weight_bits(nodes: &[QNode], given: Option<u32>) -> Result<u32> {
    let mut widest: Option<(u128, &str)> = None;
    for n in nodes {
        if let QOp::Param { values } = &n.op {
            let m = values
                .iter()
                .map(|v| v.unsigned_abs() as u128)
                .max()
                .unwrap_or(0);
            if widest.is_none_or(|(w, _)| m > w) {
                widest = Some((m, &n.name));
            }
        }
    }
    let Some((max, name)) = widest else {
        return Ok(0);
    };
    let needed = (129 - max.leading_zeros()).max(2);
    if needed > 62 {
        return Err(ModelError::TooLarge(format!(
            "weight \"{name}\" needs {needed} signed bits (limit 62)"
        )));
    }
    match given {
        Some(g) if g < needed => Err(ModelError::Input(format!(
            "weight \"{name}\" needs {needed} signed bits; the circuit to match has {g}"
        ))),
        Some(g) if g > 62 => Err(ModelError::TooLarge(format!("{g}-bit weights (limit 62)"))),
        Some(g) => Ok(g),
        None => Ok(needed),
    }
}
