//! `segments.json`: a model proven as segments (see `zkinfer_model::segment`). Each segment
//! is an ordinary model folder `segment-<i>` beside it, whose last inputs and outputs are
//! links; this file says which tensor of the whole graph each link is, which model inputs
//! each segment reads and which model outputs it computes. The verifier reads it, so it is
//! checked as any untrusted file is, and the model id covers the wiring, the graph and the
//! scales (not `expected_error`, a measurement, nor `zkinfer_version`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use super::{ArtifactError, Settings, Versioned};
use crate::Visibility;

/// The file name of the segment list.
pub const SEGMENTS: &str = "segments.json";

/// The domain separator of a segmented model's id.
pub const SEGMENTED_DOMAIN: &[u8] = b"zkinfer segmented model id v2";

/// `segments.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentsFile {
    /// [`super::FORMAT_VERSION`].
    pub format_version: u32,
    /// zkinfer version that compiled it.
    pub zkinfer_version: String,
    /// sha256 of the ONNX file.
    pub model_sha256: String,
    /// sha256 of the whole graph's `qgraph.json` (beside this file; the prover evaluates it
    /// once and hands each segment its part).
    pub qgraph_sha256: String,
    /// Activation scale exponent.
    pub scale: u32,
    /// Signed bits of range-checked values.
    pub act_bits: u32,
    /// The measured error on the calibration samples (as in `settings.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_error: Option<f64>,
    /// What the instances hold of the model's inputs.
    pub input_visibility: Visibility,
    /// What the instances hold of the model's outputs.
    pub output_visibility: Visibility,
    /// The model's input shapes.
    pub input_shapes: Vec<Vec<usize>>,
    /// The model's output shapes.
    pub output_shapes: Vec<Vec<usize>>,
    /// The segments, in proving order.
    pub segments: Vec<SegmentEntry>,
}

impl Versioned for SegmentsFile {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

/// One segment of [`SegmentsFile`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// The whole graph's nodes it computes, `[start, end)`.
    pub nodes: [usize; 2],
    /// The model inputs it reads (positions), its first inputs in this order.
    pub model_inputs: Vec<usize>,
    /// The tensors (whole-graph node ids) earlier segments computed that it reads: its
    /// linked inputs, in this order.
    pub boundary_in: Vec<usize>,
    /// The model outputs it computes (positions), its first outputs in this order.
    pub model_outputs: Vec<usize>,
    /// The tensors it computes that later segments read: its linked outputs, in this order.
    pub boundary_out: Vec<usize>,
}

/// How a segment's circuit shows the model inputs it reads, for a model whose inputs are
/// `model`: private inputs are committed (salted) in each segment, so that two segments
/// reading one input are held to the same one; the model's instances still show nothing of
/// them.
pub fn segment_input_visibility(model: Visibility) -> Visibility {
    match model {
        Visibility::Private => Visibility::Hashed,
        v => v,
    }
}

/// The folder of segment `i` inside a segmented model folder.
pub fn segment_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("segment-{i}"))
}

fn invalid(message: String) -> ArtifactError {
    ArtifactError::Invalid {
        path: SEGMENTS.into(),
        message,
    }
}

impl SegmentsFile {
    /// Checks the wiring: every model input read and every model output computed by exactly
    /// one segment (inputs: at least one), every link read by a later segment and computed by
    /// exactly one earlier one, node ranges increasing. A file that fails would let a
    /// verifier check links that do not connect.
    pub fn check(&self) -> Result<(), ArtifactError> {
        if self.segments.len() < 2 {
            return Err(invalid(format!(
                "{} segment(s): a segmented model has two or more",
                self.segments.len()
            )));
        }
        if self.output_visibility == Visibility::Private {
            return Err(invalid(
                "a segmented model's outputs are public or hashed, not private".into(),
            ));
        }
        let mut producer: BTreeMap<usize, usize> = BTreeMap::new();
        let mut outputs = BTreeSet::new();
        let mut inputs = BTreeSet::new();
        let mut last_end = 0;
        for (s, seg) in self.segments.iter().enumerate() {
            let [start, end] = seg.nodes;
            if start >= end || start < last_end {
                return Err(invalid(format!(
                    "segment {s}: nodes {start}..{end} out of order"
                )));
            }
            last_end = end;
            for &i in &seg.model_inputs {
                if i >= self.input_shapes.len() {
                    return Err(invalid(format!(
                        "segment {s} reads input {i}: no such input"
                    )));
                }
                inputs.insert(i);
            }
            for &o in &seg.model_outputs {
                if o >= self.output_shapes.len() || !outputs.insert(o) {
                    return Err(invalid(format!(
                        "segment {s} computes output {o}: none or already computed"
                    )));
                }
            }
            for &n in &seg.boundary_in {
                match producer.get(&n) {
                    Some(&p) if p < s => {}
                    _ => {
                        return Err(invalid(format!(
                            "segment {s} reads node {n}, which no earlier segment hands on"
                        )))
                    }
                }
            }
            for &n in &seg.boundary_out {
                if !(start..end).contains(&n) || producer.insert(n, s).is_some() {
                    return Err(invalid(format!(
                        "segment {s} hands on node {n}: not its own, or handed on twice"
                    )));
                }
            }
            for (what, list) in [
                ("model_inputs", &seg.model_inputs),
                ("boundary_in", &seg.boundary_in),
                ("boundary_out", &seg.boundary_out),
            ] {
                if list.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(invalid(format!("segment {s}: {what} not increasing")));
                }
            }
        }
        if inputs.len() != self.input_shapes.len() || outputs.len() != self.output_shapes.len() {
            return Err(invalid(
                "every model input must be read and every output computed by a segment".into(),
            ));
        }
        for (n, p) in &producer {
            if !self.segments[p + 1..]
                .iter()
                .any(|t| t.boundary_in.contains(n))
            {
                return Err(invalid(format!("node {n} is handed on and never read")));
            }
        }
        Ok(())
    }

    /// Checks the file against the whole graph it was cut from (node ids, input and output
    /// counts and shapes), so a hostile or stale file is refused, not indexed past an end.
    pub fn check_graph(&self, q: &zkinfer_model::QGraph) -> Result<(), ArtifactError> {
        let n = q.nodes.len();
        let ok = q.input_shapes() == self.input_shapes
            && q.output_shapes() == self.output_shapes
            && q.scale == self.scale
            && q.act_bits == self.act_bits
            && self.segments.iter().all(|seg| {
                seg.nodes[1] <= n
                    && seg
                        .boundary_in
                        .iter()
                        .chain(&seg.boundary_out)
                        .all(|&id| id < n)
            });
        if ok {
            Ok(())
        } else {
            Err(invalid(
                "it does not describe the whole graph beside it (qgraph.json)".into(),
            ))
        }
    }

    /// Checks segment `s`'s settings against its entry: its inputs and outputs are the model
    /// tensors and links the entry lists, with the model's visibilities and scale.
    pub fn check_segment(&self, s: usize, settings: &Settings) -> Result<(), ArtifactError> {
        let seg = &self.segments[s];
        let links = settings.plan.links;
        let want_inputs: Vec<&Vec<usize>> = seg
            .model_inputs
            .iter()
            .map(|&i| &self.input_shapes[i])
            .collect();
        let want_outputs: Vec<&Vec<usize>> = seg
            .model_outputs
            .iter()
            .map(|&o| &self.output_shapes[o])
            .collect();
        let model_in = settings.input_shapes.len().checked_sub(links.inputs);
        let model_out = settings.output_shapes.len().checked_sub(links.outputs);
        let fits = links.inputs == seg.boundary_in.len()
            && links.outputs == seg.boundary_out.len()
            && model_in.is_some_and(|m| {
                settings.input_shapes[..m].iter().collect::<Vec<_>>() == want_inputs
            })
            && model_out.is_some_and(|m| {
                settings.output_shapes[..m].iter().collect::<Vec<_>>() == want_outputs
            })
            && settings.plan.visibility == segment_input_visibility(self.input_visibility)
            && settings.plan.output_visibility == self.output_visibility
            && settings.scale == self.scale
            && settings.act_bits == self.act_bits
            && settings.model_sha256 == self.model_sha256;
        if fits {
            Ok(())
        } else {
            Err(invalid(format!(
                "segment {s}'s settings.json is not the segment this file describes"
            )))
        }
    }

    /// The segmented model id, from each segment's model id in order:
    /// `sha256("zkinfer segmented model id v2" ‖ bytes32 sha256 of the ONNX file ‖ bytes32
    /// sha256 of the whole graph's qgraph.json ‖ uint32 scale ‖ uint32 act_bits ‖ uint8 input
    /// visibility (0 public, 1 private, 2 hashed) ‖ uint8 output visibility ‖ two lists (the
    /// element counts of the model's inputs, then of its outputs) ‖ uint32 count ‖ per
    /// segment: bytes32 model id ‖ uint32 first node ‖ uint32 end node ‖ four lists (model
    /// inputs, links in, model outputs, links out)`, each list a uint32 length then uint32
    /// entries, all big-endian. The element counts fix how many public values stand for each
    /// tensor, so a contract can recompute the id and lay the segments' values out from it
    /// alone (`contracts/SegmentChain.sol`).
    pub fn model_id(&self, segment_ids: &[String]) -> Result<String, ArtifactError> {
        if segment_ids.len() != self.segments.len() {
            return Err(invalid(format!(
                "{} segment ids for {} segments",
                segment_ids.len(),
                self.segments.len()
            )));
        }
        let mut out = SEGMENTED_DOMAIN.to_vec();
        let put = |out: &mut Vec<u8>, v: usize| -> Result<(), ArtifactError> {
            let v = u32::try_from(v).map_err(|_| invalid(format!("{v} exceeds 32 bits")))?;
            out.extend(v.to_be_bytes());
            Ok(())
        };
        let hex32 = |out: &mut Vec<u8>, what: &str, h: &str| -> Result<(), ArtifactError> {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(h, &mut bytes)
                .map_err(|_| invalid(format!("{what} {h} is not 64 hex digits")))?;
            out.extend(bytes);
            Ok(())
        };
        hex32(&mut out, "model_sha256", &self.model_sha256)?;
        hex32(&mut out, "qgraph_sha256", &self.qgraph_sha256)?;
        put(&mut out, self.scale as usize)?;
        put(&mut out, self.act_bits as usize)?;
        out.push(self.input_visibility.code());
        out.push(self.output_visibility.code());
        for shapes in [&self.input_shapes, &self.output_shapes] {
            put(&mut out, shapes.len())?;
            for shape in shapes {
                put(&mut out, shape.iter().product())?;
            }
        }
        put(&mut out, self.segments.len())?;
        for (seg, id) in self.segments.iter().zip(segment_ids) {
            hex32(&mut out, "segment id", id)?;
            put(&mut out, seg.nodes[0])?;
            put(&mut out, seg.nodes[1])?;
            for list in [
                &seg.model_inputs,
                &seg.boundary_in,
                &seg.model_outputs,
                &seg.boundary_out,
            ] {
                put(&mut out, list.len())?;
                for &v in list {
                    put(&mut out, v)?;
                }
            }
        }
        Ok(hex::encode(Sha256::digest(out)))
    }

    /// The model's public instances, from the segments' (`segments[s]`: segment `s`'s
    /// settings and instances): per model input the instances of the segments that read it,
    /// which must all agree (private inputs: their salted commitments agree, and are not
    /// among the model's instances), then per model output those of the segment that
    /// computes it.
    pub fn model_instances(
        &self,
        segments: &[(&Settings, &[Fr])],
    ) -> Result<Vec<Fr>, ArtifactError> {
        let mut out = Vec::new();
        for i in 0..self.input_shapes.len() {
            let mut seen: Option<&[Fr]> = None;
            for (s, seg) in self.segments.iter().enumerate() {
                let Some(k) = seg.model_inputs.iter().position(|&m| m == i) else {
                    continue;
                };
                let (settings, instances) = segments[s];
                let part = settings
                    .model_input_instances(instances, k)
                    .ok_or_else(|| invalid(format!("segment {s} has too few instances")))?;
                match seen {
                    Some(first) if first != part => {
                        return Err(invalid(format!(
                            "segment {s} was proven on another input {i} than an earlier segment"
                        )))
                    }
                    _ => seen = Some(part),
                }
            }
            if self.input_visibility != Visibility::Private {
                out.extend_from_slice(seen.unwrap_or(&[]));
            }
        }
        for o in 0..self.output_shapes.len() {
            let (s, k) = self
                .segments
                .iter()
                .enumerate()
                .find_map(|(s, seg)| {
                    seg.model_outputs
                        .iter()
                        .position(|&m| m == o)
                        .map(|k| (s, k))
                })
                .ok_or_else(|| invalid(format!("no segment computes output {o}")))?;
            let (settings, instances) = segments[s];
            out.extend_from_slice(
                settings
                    .model_output_instances(instances, k)
                    .ok_or_else(|| invalid(format!("segment {s} has too few instances")))?,
            );
        }
        Ok(out)
    }

    /// Checks every link: each segment's commitment to a tensor it reads is the commitment
    /// of the segment that computed it. Names the first that differs.
    pub fn check_links(&self, segments: &[(&Settings, &[Fr])]) -> Result<(), String> {
        let mut produced: BTreeMap<usize, (usize, Fr)> = BTreeMap::new();
        for (s, seg) in self.segments.iter().enumerate() {
            let (settings, instances) = segments[s];
            let (ins, outs) = settings
                .link_commitments(instances)
                .ok_or_else(|| format!("segment {s} has too few instances"))?;
            for (j, n) in seg.boundary_in.iter().enumerate() {
                match (produced.get(n), ins.get(j)) {
                    (Some((_, want)), Some(got)) if want == got => {}
                    (Some((p, _)), _) => {
                        return Err(format!(
                            "segment {s} read node {n} with another commitment than segment {p} \
                             computed"
                        ))
                    }
                    (None, _) => return Err(format!("node {n} is read before it is computed")),
                }
            }
            for (j, &n) in seg.boundary_out.iter().enumerate() {
                let c = *outs
                    .get(j)
                    .ok_or_else(|| format!("segment {s}: missing link {j}"))?;
                produced.insert(n, (s, c));
            }
        }
        Ok(())
    }
}
