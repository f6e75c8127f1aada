//! Segments of real models: chained through their boundaries alone they compute what the
//! whole graph computes, and every boundary tensor is one a later segment reads.

use zkinfer_model::corpus::quantized_example as quantized;
use zkinfer_model::{Cut, QGraph};

/// Evaluates the segments in order, each on the model inputs and on what earlier segments
/// output (never on the whole graph's trace), and returns the model outputs.
fn chained(q: &QGraph, cut: &Cut, qin: &[Vec<i64>]) -> Vec<Vec<i64>> {
    let segments = q.segments(cut).unwrap();
    let mut known: std::collections::HashMap<usize, Vec<i64>> = Default::default();
    let mut outputs = vec![Vec::new(); q.outputs.len()];
    for (s, seg) in segments.iter().enumerate() {
        let ins: Vec<Vec<i64>> = seg
            .model_inputs
            .iter()
            .map(|&i| qin[i].clone())
            .chain(seg.boundary_in.iter().map(|n| {
                known
                    .get(n)
                    .unwrap_or_else(|| panic!("segment {s} reads node {n} before it is computed"))
                    .clone()
            }))
            .collect();
        let trace = seg.graph.eval(&ins).unwrap();
        let outs = seg.graph.outputs_of(&trace);
        let (model, boundary) = outs.split_at(seg.model_outputs.len());
        for (&o, v) in seg.model_outputs.iter().zip(model) {
            outputs[o] = v.clone();
        }
        for (&n, v) in seg.boundary_out.iter().zip(boundary) {
            known.insert(n, v.clone());
        }
    }
    outputs
}

#[test]
fn chained_segments_compute_the_whole_graph() {
    for name in [
        "4l_relu_conv_fc",
        "self_attention",
        "multihead_attention",
        "mnist_gan",
    ] {
        let (q, qin) = quantized(name);
        let whole = q.outputs_of(&q.eval(&qin).unwrap());
        for count in 2..=4 {
            let cut = q.choose_cut(count).unwrap();
            assert_eq!(cut.starts.len(), count - 1, "{name}");
            let segments = q.segments(&cut).unwrap();
            assert_eq!(segments.len(), count);
            assert_eq!(chained(&q, &cut, &qin), whole, "{name} in {count} segments");
            let sizes = q.boundary_sizes();
            for (s, seg) in segments.iter().enumerate() {
                // Every boundary tensor handed on is read by a later segment, and what a
                // segment reads is handed on by an earlier one.
                for &n in &seg.boundary_out {
                    assert!(segments[s + 1..].iter().any(|t| t.boundary_in.contains(&n)));
                }
                for &n in &seg.boundary_in {
                    assert!(segments[..s].iter().any(|t| t.boundary_out.contains(&n)));
                }
                if s > 0 {
                    let start = cut.starts[s - 1];
                    let live: u64 = segments[..s]
                        .iter()
                        .flat_map(|t| &t.boundary_out)
                        .filter(|&&n| segments[s..].iter().any(|t| t.boundary_in.contains(&n)))
                        .map(|&n| q.nodes[n].len() as u64)
                        .sum();
                    assert_eq!(live, sizes[start], "{name}: live elements across cut {s}");
                }
            }
            println!(
                "{name} in {count}: starts {:?}, boundaries {:?}",
                cut.starts,
                cut.starts.iter().map(|&p| sizes[p]).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn a_cut_that_leaves_a_segment_empty_is_refused() {
    let (q, _) = quantized("1l_mlp");
    let n = q.nodes.len();
    for starts in [vec![0], vec![n], vec![2, 2], vec![3, 2]] {
        assert!(
            q.segments(&Cut {
                starts: starts.clone()
            })
            .is_err(),
            "{starts:?}"
        );
    }
    assert!(q.choose_cut(0).is_err());
    assert!(q.choose_cut(n + 1).is_err());
}

#[test]
fn a_segment_splits_in_two_where_both_halves_compute() {
    let (q, qin) = quantized("self_attention");
    let whole = q.outputs_of(&q.eval(&qin).unwrap());
    let cut = q.choose_cut(2).unwrap();
    let end = q.nodes.len();
    let p = q.split_point(cut.starts[0]..end).unwrap();
    assert!(cut.starts[0] < p && p < end);
    let three = Cut {
        starts: vec![cut.starts[0], p],
    };
    assert_eq!(chained(&q, &three, &qin), whole);
    // A single computed node cannot be split.
    let last = end - 1;
    assert_eq!(q.split_point(last..end), None);
}
