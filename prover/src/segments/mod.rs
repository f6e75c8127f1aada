//! A model compiled, set up and proven as segments (see `zkinfer_model::segment`): a folder
//! holding `segments.json`, the whole graph's `qgraph.json` and one ordinary model folder
//! `segment-<i>` per segment. Every segment is its own circuit and keys, so none needs the
//! memory of the whole model; their proofs are linked by the commitments to the tensors
//! that cross each cut.

use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;
use std::time::Instant;

use tracing::info;
use zkinfer_circuits::artifacts::segments::{
    segment_dir, segment_input_visibility, SegmentEntry, SegmentsFile, SEGMENTS,
};
use zkinfer_circuits::artifacts::{
    files, in_dir, read_bytes, read_json, write_json, Settings, FORMAT_VERSION,
};
use zkinfer_circuits::{plan_circuit, Io, Links};
use zkinfer_model::{sha256_hex, Cut, QGraph, QOp, Weights};

use crate::compile::{log_plan, prepare, write_folder, CompileOptions};
use crate::error::ProverError;
use crate::pipeline::{open_current, setup_on, srs_at, SetupReport};

mod prove;

pub use prove::{
    assemble, default_salt, prove_segment, prove_segments, segment_settings, Evaluation, Jobs,
};

/// Whether `dir` holds a segmented model.
pub fn is_segmented(dir: &Path) -> bool {
    in_dir(dir, SEGMENTS).exists()
}

/// Removes a segmented compilation from `dir` (before a one-circuit one is written there:
/// every command tells the two apart by `segments.json`).
pub(crate) fn remove_segments(dir: &Path) {
    let _ = std::fs::remove_file(in_dir(dir, SEGMENTS));
    let mut s = 0;
    while segment_dir(dir, s).is_dir() {
        let _ = std::fs::remove_dir_all(segment_dir(dir, s));
        s += 1;
    }
}

/// A segmented folder, read and checked: its segment list and the whole graph.
pub struct SegmentedFolder {
    /// `segments.json`, its wiring checked.
    pub file: SegmentsFile,
    /// The whole graph.
    pub q: QGraph,
}

/// Reads and checks a segmented folder's `segments.json` (what proving needs: each segment
/// brings its own graph).
pub fn open_segments_file(dir: &Path) -> Result<SegmentsFile, ProverError> {
    let file: SegmentsFile = read_json(&in_dir(dir, SEGMENTS))?;
    file.check()?;
    Ok(file)
}

/// Opens a segmented folder, the whole graph included.
pub fn open_segmented(dir: &Path) -> Result<SegmentedFolder, ProverError> {
    let file = open_segments_file(dir)?;
    let bytes = read_bytes(&in_dir(dir, files::QGRAPH))?;
    if sha256_hex(&bytes) != file.qgraph_sha256 {
        return Err(ProverError::Folder(format!(
            "{} does not belong to this {SEGMENTS}",
            files::QGRAPH
        )));
    }
    let q: QGraph = serde_json::from_slice(&bytes)
        .map_err(|e| ProverError::Folder(format!("{}: {e}", files::QGRAPH)))?;
    file.check_graph(&q)?;
    Ok(SegmentedFolder { file, q })
}

/// What `compile` made: one circuit, or segments.
pub enum Compiled {
    /// A model folder of one circuit.
    One(Box<Settings>),
    /// A segmented model folder.
    Segments(SegmentsFile),
}

/// `compile`, cutting the model into segments when it is given `--segments N`
/// (`opts_segments`), or when no one circuit fits the memory limit: then each segment that
/// does not fit is split in two (its neighbours keep their plans) until every one fits. A
/// single node that does not fit alone is refused, named.
pub fn compile_or_segment(
    model: &Path,
    calibration: &Path,
    out: &Path,
    opts: &CompileOptions,
    segments: Option<usize>,
) -> Result<Compiled, ProverError> {
    if segments.is_some() {
        refuse_unsegmentable(opts)?;
    }
    if let Some(count) = segments.filter(|&c| c < 2) {
        return Err(ProverError::Folder(format!(
            "--segments {count}: a segmented model has two or more"
        )));
    }
    let p = prepare(model, calibration, opts)?;
    if let Some(count) = segments {
        let cut = p.q.choose_cut(count)?;
        return Ok(Compiled::Segments(write_segments(
            out, &p, cut.starts, false,
        )?));
    }
    if p.like.is_some() || p.opts.weights == Weights::Hashed {
        return Ok(Compiled::One(Box::new(crate::compile::compile_prepared(
            model, out, &p,
        )?)));
    }
    let t = Instant::now();
    match plan_circuit(&p.q, &p.qcal, p.opts.io, p.opts.limits) {
        Ok(plan) => {
            log_plan(&plan, t);
            Ok(Compiled::One(Box::new(write_folder(
                out, &p, &p.q, &p.qcal, plan,
            )?)))
        }
        Err(zkinfer_circuits::CircuitError::OverMemory {
            needed, allowed, ..
        }) if allowed > 0 => {
            let count = needed.div_ceil(allowed).max(2) as usize;
            check_count(count, opts)?;
            info!(
                needed = %crate::pipeline::gib(needed),
                allowed = %crate::pipeline::gib(allowed),
                count,
                "one circuit does not fit: cutting into segments"
            );
            let cut = p.q.choose_cut(count.min(computed_nodes(&p.q)))?;
            Ok(Compiled::Segments(write_segments(
                out, &p, cut.starts, true,
            )?))
        }
        Err(e) => Err(e.into()),
    }
}

fn refuse_unsegmentable(opts: &CompileOptions) -> Result<(), ProverError> {
    if opts.like.is_some() || opts.weights == Weights::Hashed {
        return Err(ProverError::Folder(
            "segments are compiled with fixed weights (not --weights hashed or --like)".into(),
        ));
    }
    Ok(())
}

/// Plans every segment of the cut before each of `starts` and writes the folder; with
/// `split`, a segment over the memory limit is split in two until all fit.
fn write_segments(
    out: &Path,
    p: &crate::compile::Prepared,
    mut starts: Vec<usize>,
    split: bool,
) -> Result<SegmentsFile, ProverError> {
    let q = &p.q;
    let opts = &p.opts;
    let trace = q.eval(&p.qcal)?;
    // Plans by node range: splitting one segment leaves what its neighbours read and hand on
    // as it was, so their plans stand.
    let mut plans: HashMap<(usize, usize), zkinfer_circuits::CircuitPlan> = Default::default();
    let segments = loop {
        let segments = q.segments(&Cut {
            starts: starts.clone(),
        })?;
        let mut over = None;
        for (s, seg) in segments.iter().enumerate() {
            let key = (seg.nodes.start, seg.nodes.end);
            if plans.contains_key(&key) {
                continue;
            }
            let io = Io {
                input: segment_input_visibility(opts.io.input),
                links: Links {
                    inputs: seg.boundary_in.len(),
                    outputs: seg.boundary_out.len(),
                },
                ..opts.io
            };
            let t = Instant::now();
            match plan_circuit(&seg.graph, &seg.inputs_from(q, &trace), io, opts.limits) {
                Ok(plan) => {
                    info!(
                        segment = s,
                        nodes = ?seg.nodes,
                        boundary_in = seg.boundary_in_len(q),
                        boundary_out = seg.boundary_out_len(q),
                        "segment planned"
                    );
                    log_plan(&plan, t);
                    plans.insert(key, plan);
                }
                Err(
                    e @ zkinfer_circuits::CircuitError::OverMemory {
                        needed, allowed, ..
                    },
                ) if split => {
                    over = Some((seg.nodes.clone(), needed, allowed, e));
                    break;
                }
                Err(e @ zkinfer_circuits::CircuitError::OverMemory { .. }) => {
                    return Err(too_large(format!(
                        "segment {s} (nodes {}..{}): {e}",
                        seg.nodes.start, seg.nodes.end
                    )))
                }
                Err(e) => {
                    return Err(ProverError::Folder(format!(
                        "segment {s} (nodes {}..{}): {e}",
                        seg.nodes.start, seg.nodes.end
                    )))
                }
            }
        }
        let Some((range, needed, allowed, e)) = over else {
            break segments;
        };
        // Nothing fits yet: the segments are cut about equal, so all are likely over as this
        // one is. Cutting them all finer at once, by how far this one is over, saves a failed
        // plan per segment (each costs about what a good one does: minutes on a GPT block).
        if plans.is_empty() {
            let count = finer_count(segments.len(), needed, allowed).min(computed_nodes(q));
            if count > segments.len() {
                check_count(count, opts)?;
                info!(
                    from = segments.len(),
                    to = count,
                    "no segment fits yet: all cut finer"
                );
                starts = q.choose_cut(count)?.starts;
                continue;
            }
        }
        match q.split_point(range.clone()) {
            Some(at) => {
                check_count(starts.len() + 2, opts)?;
                info!(
                    nodes = ?range,
                    at,
                    needed = %crate::pipeline::gib(needed),
                    "segment over the memory limit: split"
                );
                starts.push(at);
                starts.sort_unstable();
            }
            None => {
                let node = &q.nodes[range.end - 1];
                return Err(too_large(format!(
                    "node \"{}\" ({}) alone does not fit: {e}",
                    node.name, node.source_op
                )));
            }
        }
    };
    let sizes = q.boundary_sizes();
    info!(
        starts = ?starts,
        boundaries = ?starts.iter().map(|&s| sizes[s]).collect::<Vec<_>>(),
        "cut into {} segments",
        segments.len()
    );
    if let Some(i) =
        (0..q.inputs.len()).find(|&i| !segments.iter().any(|s| s.model_inputs.contains(&i)))
    {
        return Err(ProverError::Folder(format!(
            "input {i} is read by no node: a segmented model proves every input it takes"
        )));
    }
    std::fs::create_dir_all(out).map_err(crate::pipeline::io_err(out))?;
    // A one-circuit compilation of this folder, or more segments, would be read as this one.
    for stale in [files::SETTINGS, files::KEYS, files::PK, files::VK] {
        let _ = std::fs::remove_file(in_dir(out, stale));
    }
    let mut stale = segments.len();
    while segment_dir(out, stale).exists() {
        let _ = std::fs::remove_dir_all(segment_dir(out, stale));
        stale += 1;
    }
    let mut entries = Vec::with_capacity(segments.len());
    for (s, seg) in segments.iter().enumerate() {
        let plan = plans
            .remove(&(seg.nodes.start, seg.nodes.end))
            .ok_or_else(|| ProverError::Folder(format!("internal: segment {s} has no plan")))?;
        write_folder(
            &segment_dir(out, s),
            p,
            &seg.graph,
            &seg.inputs_from(q, &trace),
            plan,
        )?;
        entries.push(SegmentEntry {
            nodes: [seg.nodes.start, seg.nodes.end],
            model_inputs: seg.model_inputs.clone(),
            boundary_in: seg.boundary_in.clone(),
            model_outputs: seg.model_outputs.clone(),
            boundary_out: seg.boundary_out.clone(),
        });
    }
    let qgraph_sha256 = write_json(&in_dir(out, files::QGRAPH), q)?;
    let file = SegmentsFile {
        format_version: FORMAT_VERSION,
        zkinfer_version: env!("CARGO_PKG_VERSION").to_string(),
        model_sha256: sha256_hex(&p.bytes),
        qgraph_sha256,
        scale: q.scale,
        act_bits: q.act_bits,
        expected_error: Some(p.expected_error),
        input_visibility: opts.io.input,
        output_visibility: opts.io.output,
        input_shapes: q.input_shapes(),
        output_shapes: q.output_shapes(),
        segments: entries,
    };
    file.check()?;
    write_json(&in_dir(out, SEGMENTS), &file)?;
    Ok(file)
}

/// How many segments to cut into when the first planned of `count` about equal ones needs
/// `needed` bytes to prove, over `allowed`: `count` grown by that ratio, by a quarter (one)
/// at least.
/// A segment's least proving memory grows about as its cells do (the planner trades columns
/// for k), so the ratio is what each must shrink by. Where a proof budget forced a larger k the
/// ratio overshoots (memory doubles with k), so it is not rounded up to a whole factor:
/// doubling cut nanoGPT, where 8 segments nearly fit, into 12 and then 24. Too few costs one
/// more failed plan, or a split; too many costs every proof a segment for good. It grows by a
/// quarter at least: a limit just under a segment's floor (a function table's k) keeps the
/// ratio near 1 whatever the cut, and a step of one would take a failed plan (minutes) per
/// segment up to `--max-segments` before the refusal.
fn finer_count(count: usize, needed: u64, allowed: u64) -> usize {
    let ratio = needed as f64 / allowed.max(1) as f64;
    ((count as f64 * ratio).ceil() as usize).max(count + count.div_ceil(4))
}

/// The nodes of `q` that compute (not inputs or constants): the most segments it has.
fn computed_nodes(q: &QGraph) -> usize {
    q.nodes
        .iter()
        .filter(|n| !matches!(n.op, QOp::Input { .. } | QOp::Param { .. }))
        .count()
}

/// Refuses a cut into `count` segments past `opts.max_segments`.
fn check_count(count: usize, opts: &CompileOptions) -> Result<(), ProverError> {
    match opts.max_segments {
        Some(most) if count > most => Err(too_large(format!(
            "the model needs at least {count} segments to fit the memory limit; at most {most} \
             are allowed"
        ))),
        _ => Ok(()),
    }
}

/// A segment that cannot fit the memory limit: the model is too large, whatever the cut.
fn too_large(message: String) -> ProverError {
    ProverError::Circuit(zkinfer_circuits::CircuitError::TooLarge(message))
}

/// What setup of a segmented model did.
#[derive(Clone, Debug)]
pub struct SegmentedSetup {
    /// The segmented model id (covers every segment's id and the wiring).
    pub model_id: String,
    /// Each segment's setup.
    pub segments: Vec<SetupReport>,
}

/// Sets up every segment (on one ceremony file, or on a development SRS per k). The SRS of
/// each k is read (or made) once: from a ceremony file that is two MSMs and a pairing check,
/// and for a k the file holds no Lagrange basis of, an FFT over G1 (minutes at k = 20). It is
/// held until the last segment of its k is set up, no longer (2 GiB at k = 24).
pub fn setup_segments(dir: &Path, srs_file: Option<&Path>) -> Result<SegmentedSetup, ProverError> {
    let file = open_segments_file(dir)?;
    let ks: Vec<u32> = segment_settings(dir, &file)?
        .iter()
        .map(|st| st.plan.k)
        .collect();
    let mut reports = Vec::with_capacity(file.segments.len());
    let mut srs_of_k = HashMap::new();
    for s in 0..file.segments.len() {
        let seg_dir = segment_dir(dir, s);
        let t = Instant::now();
        let folder = open_current(&seg_dir)?;
        file.check_segment(s, &folder.settings)?;
        let k = folder.settings.plan.k;
        let (params, source) = match srs_of_k.entry(k) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(srs_at(k, srs_file)?),
        };
        let report = setup_on(&seg_dir, &folder, params, source.clone())?;
        if ks.iter().rposition(|&other| other == k) <= Some(s) {
            srs_of_k.remove(&k);
        }
        info!(
            segment = s,
            k = report.k,
            "segment set up in {:.2?}",
            t.elapsed()
        );
        reports.push(report);
    }
    let ids: Vec<String> = reports.iter().map(|r| r.model_id.clone()).collect();
    Ok(SegmentedSetup {
        model_id: file.model_id(&ids)?,
        segments: reports,
    })
}

/// `inspect` of a segmented folder: the model, then `segments N` and a line per segment.
pub fn inspect_segments(dir: &Path) -> Result<String, ProverError> {
    use std::fmt::Write as _;
    let folder = open_segmented(dir)?;
    let f = &folder.file;
    let q = &folder.q;
    let mut out = String::new();
    let _ = writeln!(out, "model sha256     {}", f.model_sha256);
    let _ = writeln!(
        out,
        "scales           activations 2^{}, range {} signed bits",
        f.scale, f.act_bits
    );
    let _ = writeln!(
        out,
        "inputs           {:?} ({})",
        f.input_shapes,
        f.input_visibility.name()
    );
    let _ = writeln!(
        out,
        "outputs          {:?} ({})",
        f.output_shapes,
        f.output_visibility.name()
    );
    if let Some(e) = f.expected_error {
        let _ = writeln!(out, "expected error   {e:.2e}");
    }
    let _ = writeln!(out, "segments         {}", f.segments.len());
    for (s, entry) in f.segments.iter().enumerate() {
        let settings: Settings = read_json(&in_dir(&segment_dir(dir, s), files::SETTINGS))?;
        let p = &settings.plan;
        let len = |nodes: &[usize]| nodes.iter().map(|&n| q.nodes[n].len()).sum::<usize>();
        let _ = writeln!(
            out,
            "  segment {s}      nodes {}..{}, k={}, {} rows, {}, proving ≈ {}, verifier ≈ {} bytes, boundary in {} values ({} tensors), out {} values ({} tensors)",
            entry.nodes[0],
            entry.nodes[1],
            p.k,
            p.rows,
            p.columns(),
            crate::pipeline::gib(p.prove_memory_bytes),
            zkinfer_circuits::cost::verifier_code_bytes(
                &zkinfer_circuits::cost::constraint_system(&p.params),
                p.num_instances
            ),
            len(&entry.boundary_in),
            entry.boundary_in.len(),
            len(&entry.boundary_out),
            entry.boundary_out.len(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::finer_count;

    const GIB: u64 = 1 << 30;

    #[test]
    fn a_segment_over_the_limit_grows_the_count_by_its_ratio_not_a_whole_factor() {
        // nanoGPT's first of six at about 10 GiB against 8: eight, not twelve.
        assert_eq!(finer_count(6, 10 * GIB, 8 * GIB), 8);
        // Barely over still cuts a quarter finer (one at least), so a limit under every
        // segment's floor is refused after a few failed plans, not one per segment allowed.
        assert_eq!(finer_count(6, 8 * GIB + 1, 8 * GIB), 8);
        assert_eq!(finer_count(2, 8 * GIB + 1, 8 * GIB), 3);
        let mut count = 2;
        let mut recuts = 0;
        while count <= 32 {
            count = finer_count(count, 8 * GIB + 1, 8 * GIB);
            recuts += 1;
        }
        assert!(
            recuts <= 11,
            "{recuts} recuts to pass 32 segments (a step of one: 31)"
        );
        // Far over cuts by the whole ratio.
        assert_eq!(finer_count(2, 24 * GIB, 8 * GIB), 6);
        // A limit of zero bytes does not divide by zero.
        assert!(finer_count(3, GIB, 0) > 3);
    }
}
