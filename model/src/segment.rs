//! Segments: a quantized graph cut into consecutive pieces, each proven by a circuit of its
//! own. A segment reads the model inputs it needs and the *boundary* tensors earlier segments
//! computed (the values live across a cut, residual streams included); it outputs the model
//! outputs it computes and the boundary tensors later segments read. Proofs of two segments
//! are linked by equal commitments to each boundary tensor, so a segment's graph is an
//! ordinary [`QGraph`] whose trailing inputs and outputs are those links.
//!
//! The cut is chosen from a per-node estimate of circuit cells, not by laying out every
//! candidate: a GPT-sized graph has thousands of cut points, and one layout of it takes
//! minutes.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::graph::Src;
use crate::qgraph::{QGraph, QNode, QOp, Trace};

/// One piece of a cut graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Its graph: inputs are the model inputs it reads, then its boundary inputs; outputs are
    /// the model outputs it computes, then its boundary outputs.
    pub graph: QGraph,
    /// The whole graph's nodes it computes (inputs and weights are copied where read).
    pub nodes: Range<usize>,
    /// Positions among the model's inputs of the inputs it reads.
    pub model_inputs: Vec<usize>,
    /// Nodes of the whole graph, computed by earlier segments, that it reads.
    pub boundary_in: Vec<usize>,
    /// Positions among the model's outputs of the outputs it computes.
    pub model_outputs: Vec<usize>,
    /// Nodes it computes that later segments read.
    pub boundary_out: Vec<usize>,
}

/// The cut of a graph: where each segment after the first starts, and the boundaries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// The first node of each segment after the first, increasing.
    pub starts: Vec<usize>,
}

impl Segment {
    /// Its inputs from one evaluation of the whole graph: the model inputs it reads, then
    /// its boundary tensors.
    pub fn inputs_from(&self, whole: &QGraph, trace: &Trace) -> Vec<Vec<i64>> {
        inputs_of(whole, trace, &self.model_inputs, &self.boundary_in)
    }

    /// Number of boundary elements it reads.
    pub fn boundary_in_len(&self, whole: &QGraph) -> usize {
        self.boundary_in.iter().map(|&n| whole.nodes[n].len()).sum()
    }

    /// Number of boundary elements it hands on.
    pub fn boundary_out_len(&self, whole: &QGraph) -> usize {
        self.boundary_out
            .iter()
            .map(|&n| whole.nodes[n].len())
            .sum()
    }
}

/// A segment's inputs from one evaluation of the whole graph: the model inputs it reads
/// (positions), then the tensors it reads from earlier segments (node ids).
pub fn inputs_of(
    whole: &QGraph,
    trace: &Trace,
    model_inputs: &[usize],
    boundary_in: &[usize],
) -> Vec<Vec<i64>> {
    model_inputs
        .iter()
        .map(|&i| whole.inputs[i])
        .chain(boundary_in.iter().copied())
        .map(|n| trace.values[n].clone())
        .collect()
}

/// Signed bits that hold `[-bound, bound]`: a boundary tensor's range check and commitment
/// slot when it is wider than the activation bits (the same rule the circuit's commitment
/// slot follows).
pub fn boundary_bits(q: &QGraph, node: usize) -> u32 {
    let bound = q.nodes[node].bound;
    q.act_bits.max((128 - bound.leading_zeros()) + 1)
}

fn is_leaf(op: &QOp) -> bool {
    matches!(op, QOp::Input { .. } | QOp::Param { .. })
}

impl QGraph {
    /// The segment that computes node `id` under `cut` (inputs and weights belong to none).
    fn owner(cut: &Cut, id: usize) -> usize {
        cut.starts.partition_point(|&s| s <= id)
    }

    /// Cuts the graph before each of `cut.starts`. Every segment must compute something; a
    /// model output that is an input or a weight itself cannot be placed in a segment.
    pub fn segments(&self, cut: &Cut) -> Result<Vec<Segment>> {
        let n = self.nodes.len();
        let first = self
            .nodes
            .iter()
            .position(|node| !is_leaf(&node.op))
            .ok_or_else(|| ModelError::Input("the graph computes nothing to cut".into()))?;
        let mut bounds = vec![first];
        for &s in &cut.starts {
            if s <= *bounds.last().unwrap_or(&0) || s >= n {
                return Err(ModelError::Input(format!(
                    "segment starts {:?}: each must be above the previous and below {n}",
                    cut.starts
                )));
            }
            bounds.push(s);
        }
        bounds.push(n);
        for &o in &self.outputs {
            if is_leaf(&self.nodes[o].op) {
                return Err(ModelError::Input(format!(
                    "output \"{}\" is an input or a weight: a model that passes one through \
                     cannot be cut",
                    self.nodes[o].name
                )));
            }
        }
        // What each segment reads from outside its own range.
        let count = bounds.len() - 1;
        let mut reads: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); count];
        for (id, node) in self.nodes.iter().enumerate().skip(first) {
            if is_leaf(&node.op) {
                continue;
            }
            let s = Self::owner(cut, id);
            for &i in &node.inputs {
                if is_leaf(&self.nodes[i].op) || Self::owner(cut, i) < s {
                    reads[s].insert(i);
                }
            }
        }
        (0..count)
            .map(|s| {
                let range = bounds[s]..bounds[s + 1];
                let computed: Vec<usize> = range
                    .clone()
                    .filter(|&id| !is_leaf(&self.nodes[id].op))
                    .collect();
                if computed.is_empty() {
                    return Err(ModelError::Input(format!(
                        "segment {s} (nodes {range:?}) computes nothing"
                    )));
                }
                let boundary_out: Vec<usize> = computed
                    .iter()
                    .copied()
                    .filter(|id| reads[s + 1..].iter().any(|r| r.contains(id)))
                    .collect();
                self.segment(&range, &computed, &reads[s], boundary_out)
            })
            .collect()
    }

    fn segment(
        &self,
        range: &Range<usize>,
        computed: &[usize],
        reads: &BTreeSet<usize>,
        boundary_out: Vec<usize>,
    ) -> Result<Segment> {
        let mut new_id = vec![usize::MAX; self.nodes.len()];
        let mut nodes: Vec<QNode> = Vec::new();
        let model_inputs: Vec<usize> = (0..self.inputs.len())
            .filter(|&i| reads.contains(&self.inputs[i]))
            .collect();
        for (pos, &i) in model_inputs.iter().enumerate() {
            let id = self.inputs[i];
            new_id[id] = nodes.len();
            nodes.push(QNode {
                op: QOp::Input {
                    index: pos,
                    bits: match self.nodes[id].op {
                        QOp::Input { bits, .. } => bits,
                        _ => 0,
                    },
                },
                ..self.nodes[id].clone()
            });
        }
        let boundary_in: Vec<usize> = reads
            .iter()
            .copied()
            .filter(|&id| !is_leaf(&self.nodes[id].op))
            .collect();
        for (pos, &id) in boundary_in.iter().enumerate() {
            let bits = boundary_bits(self, id);
            new_id[id] = nodes.len();
            nodes.push(QNode {
                name: format!("{} (boundary)", self.nodes[id].name),
                op: QOp::Input {
                    index: model_inputs.len() + pos,
                    bits: if bits == self.act_bits { 0 } else { bits },
                },
                inputs: Vec::new(),
                ..self.nodes[id].clone()
            });
        }
        for &id in reads {
            if matches!(self.nodes[id].op, QOp::Param { .. }) {
                new_id[id] = nodes.len();
                nodes.push(self.nodes[id].clone());
            }
        }
        for &id in computed {
            let node = &self.nodes[id];
            let inputs = node
                .inputs
                .iter()
                .map(|&i| {
                    let j = new_id[i];
                    (j != usize::MAX).then_some(j).ok_or_else(|| {
                        ModelError::Input(format!(
                            "node \"{}\" reads node {i}, which segment {range:?} lacks",
                            node.name
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            new_id[id] = nodes.len();
            nodes.push(QNode {
                inputs,
                ..node.clone()
            });
        }
        let model_outputs: Vec<usize> = (0..self.outputs.len())
            .filter(|&o| range.contains(&self.outputs[o]))
            .collect();
        let outputs = model_outputs
            .iter()
            .map(|&o| new_id[self.outputs[o]])
            .chain(boundary_out.iter().map(|&id| new_id[id]))
            .collect();
        let graph = QGraph {
            nodes,
            inputs: (0..model_inputs.len() + boundary_in.len()).collect(),
            outputs,
            ..self.clone_header()
        };
        Ok(Segment {
            graph,
            nodes: range.clone(),
            model_inputs,
            boundary_in,
            model_outputs,
            boundary_out,
        })
    }

    /// The graph's scalars with no nodes.
    fn clone_header(&self) -> QGraph {
        QGraph {
            nodes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            scale: self.scale,
            param_scale: self.param_scale,
            act_bits: self.act_bits,
            weight_bits: self.weight_bits,
        }
    }

    /// A rough count of the circuit cells node `id` takes: products and candidates one or a
    /// few each, range-checked and table outputs a few each. Only its proportions matter:
    /// it places cuts, and each segment is then sized by laying it out.
    pub fn cell_estimate(&self, id: usize) -> u64 {
        let node = &self.nodes[id];
        let len = node.len() as u64;
        let checked = if node.op.is_range_checked() { 3 } else { 0 };
        let work = match &node.op {
            QOp::Input { .. } | QOp::Param { .. } => 0,
            QOp::Linear { terms, .. } => terms.total() as u64,
            QOp::Bilinear { pairs, .. } => pairs.total() as u64,
            QOp::Extremum { candidates, .. } => 4 * candidates.total() as u64,
            QOp::Remap { srcs } => {
                srcs.iter().filter(|s| matches!(s, Src::Const(_))).count() as u64
            }
            QOp::Lookup { .. } => 3 * len,
            QOp::Divide { .. } | QOp::Sqrt { .. } => 8 * len,
            QOp::Gather { .. } => 2 * len,
        };
        work + checked * len
    }

    /// [`Self::cell_estimate`] of every node.
    pub fn total_cell_estimate(&self) -> u64 {
        (0..self.nodes.len()).map(|id| self.cell_estimate(id)).sum()
    }

    /// For each possible start `p` of a segment (index `p`), the elements live across a cut
    /// before node `p`: computed before it and read at or after it.
    pub fn boundary_sizes(&self) -> Vec<u64> {
        let n = self.nodes.len();
        let mut last_read = vec![None; n];
        for (id, node) in self.nodes.iter().enumerate() {
            for &i in &node.inputs {
                last_read[i] = Some(id);
            }
        }
        // Outputs stay live to the end (they are computed, not read): no boundary.
        let mut delta = vec![0i64; n + 1];
        for (id, node) in self.nodes.iter().enumerate() {
            if is_leaf(&node.op) {
                continue;
            }
            if let Some(last) = last_read[id] {
                // Live across cuts before id+1 ..= last.
                delta[id + 1] += node.len() as i64;
                delta[last + 1] -= node.len() as i64;
            }
        }
        let mut live = 0i64;
        delta
            .iter()
            .take(n)
            .map(|d| {
                live += d;
                live as u64
            })
            .collect()
    }

    /// Where to cut the graph into `count` segments of about equal estimated cells, each cut
    /// at the smallest boundary within a window around its ideal place (cuts cost a
    /// commitment to every boundary element on both sides, so a narrow place is worth some
    /// imbalance).
    pub fn choose_cut(&self, count: usize) -> Result<Cut> {
        let n = self.nodes.len();
        let computed = self.nodes.iter().filter(|node| !is_leaf(&node.op)).count();
        if count == 0 || count > computed.max(1) {
            return Err(ModelError::Input(format!(
                "{count} segments of a graph that computes {computed} node(s)"
            )));
        }
        let first = self
            .nodes
            .iter()
            .position(|node| !is_leaf(&node.op))
            .unwrap_or(n);
        let costs = Costs::of(self);
        let total = costs.prefix[n];
        let window = total / (4 * count as u64).max(1);
        let mut starts = Vec::with_capacity(count - 1);
        let mut lo = first;
        for j in 1..count {
            let ideal = total * j as u64 / count as u64;
            // Leave room for the segments still to place: one computed node each at least.
            let hi = n - (count - j) + 1;
            let best = costs
                .best_start(self, lo..hi, ideal, window)
                .ok_or_else(|| {
                    ModelError::Input(format!("no place for cut {j} of {}", count - 1))
                })?;
            starts.push(best);
            lo = best;
        }
        Ok(Cut { starts })
    }

    /// Where to cut the segment of nodes `range` in two (about equal estimated cells, the
    /// smallest boundary near the middle); `None` when it computes a single node.
    pub fn split_point(&self, range: Range<usize>) -> Option<usize> {
        let costs = Costs::of(self);
        let (a, b) = (costs.prefix[range.start], costs.prefix[range.end]);
        let ideal = a + (b - a) / 2;
        costs.best_start(self, range, ideal, (b - a) / 4)
    }
}

/// Estimated cells before each node, and the boundary at each cut place.
struct Costs {
    /// `prefix[p]`: estimated cells of nodes before `p`.
    prefix: Vec<u64>,
    /// `sizes[p]`: elements live across a cut before `p`.
    sizes: Vec<u64>,
}

impl Costs {
    fn of(q: &QGraph) -> Self {
        let mut prefix = vec![0u64; q.nodes.len() + 1];
        for id in 0..q.nodes.len() {
            prefix[id + 1] = prefix[id] + q.cell_estimate(id);
        }
        Costs {
            prefix,
            sizes: q.boundary_sizes(),
        }
    }

    /// The start `p` of a new segment strictly inside `range` (the segment before it, from
    /// `range.start`, and the one from `p` to `range.end` each compute a node), with the
    /// smallest boundary among places within `window` cells of `ideal`, else the closest.
    fn best_start(
        &self,
        q: &QGraph,
        range: Range<usize>,
        ideal: u64,
        window: u64,
    ) -> Option<usize> {
        let computes = |r: Range<usize>| q.nodes[r].iter().any(|node| !is_leaf(&node.op));
        let places: Vec<usize> = (range.start + 1..range.end)
            .filter(|&p| !is_leaf(&q.nodes[p].op) && computes(range.start..p))
            .collect();
        let near = places
            .iter()
            .copied()
            .filter(|&p| self.prefix[p].abs_diff(ideal) <= window)
            .min_by_key(|&p| (self.sizes[p], self.prefix[p].abs_diff(ideal)));
        near.or_else(|| {
            places
                .iter()
                .copied()
                .min_by_key(|&p| self.prefix[p].abs_diff(ideal))
        })
    }
}
