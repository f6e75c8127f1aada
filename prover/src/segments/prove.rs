//! Proving a segmented model: one evaluation, segment by segment, gives every segment its
//! inputs; each segment is proven on its own (here, a few at once within a memory limit; in
//! the service, each by whichever worker claims it), and the proofs are assembled into one
//! proof file with the model's instances.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use tracing::info;
use zkinfer_circuits::artifacts::segments::segment_dir;
use zkinfer_circuits::artifacts::segments::SegmentsFile;
use zkinfer_circuits::artifacts::{
    files, in_dir, read_json, ProofFile, SegmentProof, Settings, FORMAT_VERSION,
};
use zkinfer_circuits::field::{from_hex, to_hex};
use zkinfer_circuits::{Fr, Visibility};
use zkinfer_model::{dequantize, quantize_input};

use super::open_segments_file;
use crate::error::ProverError;
use crate::pipeline::{read_input, Prover};

/// One input, quantized, and what every segment reads and the model's outputs: each
/// segment's graph evaluated in order on the model inputs it reads and the tensors earlier
/// segments handed on. The whole graph is never loaded (on a GPT it is over a gigabyte of
/// tables and weights): one segment's graph at a time.
pub struct Evaluation {
    /// The quantized input.
    pub qin: Vec<Vec<i64>>,
    /// Each segment's inputs: the model inputs it reads, then its links in.
    pub segment_inputs: Vec<Vec<Vec<i64>>>,
    /// The model's outputs, quantized.
    pub outputs: Vec<Vec<i64>>,
}

impl Evaluation {
    /// Quantizes `data` (shape, NaN and range checked) and evaluates the segments of the
    /// folder `dir`, whose `segments.json` is `file` (checked), each graph checked against
    /// its settings and the wiring.
    pub fn new(dir: &Path, file: &SegmentsFile, data: &[Vec<f64>]) -> Result<Self, ProverError> {
        let qin = quantize_input(data, &file.input_shapes, file.scale, file.act_bits)?;
        let t = Instant::now();
        let missing = |what: String| ProverError::Folder(format!("segments.json: {what}"));
        let mut links: HashMap<usize, Vec<i64>> = HashMap::new();
        let mut outputs: Vec<Option<Vec<i64>>> = vec![None; file.output_shapes.len()];
        let mut segment_inputs = Vec::with_capacity(file.segments.len());
        for (s, entry) in file.segments.iter().enumerate() {
            let folder = crate::pipeline::open(&segment_dir(dir, s))?;
            file.check_segment(s, &folder.settings)?;
            let inputs = entry
                .model_inputs
                .iter()
                .map(|&i| qin.get(i).cloned().ok_or(i))
                .map(|r| r.map_err(|i| missing(format!("segment {s} reads input {i}"))))
                .chain(entry.boundary_in.iter().map(|n| {
                    links.get(n).cloned().ok_or_else(|| {
                        missing(format!(
                            "segment {s} reads node {n}, which no earlier one computes"
                        ))
                    })
                }))
                .collect::<Result<Vec<_>, _>>()?;
            let q = &folder.q;
            let computed = q.outputs_of(&q.eval(&inputs)?);
            if computed.len() != entry.model_outputs.len() + entry.boundary_out.len() {
                return Err(missing(format!(
                    "segment {s} computes {} tensors, its wiring names {}",
                    computed.len(),
                    entry.model_outputs.len() + entry.boundary_out.len()
                )));
            }
            let (model, handed) = computed.split_at(entry.model_outputs.len());
            for (&o, v) in entry.model_outputs.iter().zip(model) {
                *outputs
                    .get_mut(o)
                    .ok_or_else(|| missing(format!("segment {s} computes output {o}")))? =
                    Some(v.clone());
            }
            links.extend(
                entry
                    .boundary_out
                    .iter()
                    .copied()
                    .zip(handed.iter().cloned()),
            );
            segment_inputs.push(inputs);
        }
        let outputs = outputs
            .into_iter()
            .enumerate()
            .map(|(o, v)| v.ok_or_else(|| missing(format!("no segment computes output {o}"))))
            .collect::<Result<Vec<_>, _>>()?;
        info!(
            segments = file.segments.len(),
            "segments evaluated in {:.2?}",
            t.elapsed()
        );
        Ok(Self {
            qin,
            segment_inputs,
            outputs,
        })
    }
}

/// The salt of a proof given none: random for private inputs (a link's commitment must not
/// let anyone test guesses of the input), else 0 (public inputs hide nothing; hashed ones
/// keep their usual commitment). Every segment of one proof takes the same salt.
pub fn default_salt(input: Visibility) -> Fr {
    match input {
        Visibility::Private => {
            use halo2_base::halo2_proofs::arithmetic::Field;
            Fr::random(rand::rngs::OsRng)
        }
        _ => Fr::zero(),
    }
}

/// Every segment's settings, each checked against the wiring.
pub fn segment_settings(dir: &Path, file: &SegmentsFile) -> Result<Vec<Settings>, ProverError> {
    (0..file.segments.len())
        .map(|s| {
            let st: Settings = read_json(&in_dir(&segment_dir(dir, s), files::SETTINGS))?;
            file.check_segment(s, &st)?;
            Ok(st)
        })
        .collect()
}

/// Segment `s`'s proof on `inputs` (its part of an [`Evaluation`]), with `prover` loaded
/// from that segment's folder.
pub fn prove_segment(
    file: &SegmentsFile,
    s: usize,
    prover: &Prover,
    inputs: &[Vec<i64>],
    salt: Fr,
) -> Result<SegmentProof, ProverError> {
    if s >= file.segments.len() {
        return Err(ProverError::Folder(format!(
            "segment {s}: the model has {} segments",
            file.segments.len()
        )));
    }
    file.check_segment(s, prover.settings())?;
    let t = Instant::now();
    let proof = prover.prove_quantized(inputs, salt)?;
    info!(
        segment = s,
        of = file.segments.len(),
        "segment proven in {:.2?}",
        t.elapsed()
    );
    Ok(SegmentProof {
        model_id: proof.model_id,
        instances: proof.instances,
        proof: proof.proof,
    })
}

/// The proof file of `proofs` (every segment's, in order, proven on the input `qin`, whose
/// evaluation gave `outputs`): the model id, its instances from the segments', its outputs
/// (and public inputs). The links are checked, so proofs of different inputs are never
/// assembled.
pub fn assemble(
    file: &SegmentsFile,
    settings: &[Settings],
    qin: &[Vec<i64>],
    outputs: &[Vec<i64>],
    proofs: Vec<SegmentProof>,
) -> Result<ProofFile, ProverError> {
    let count = file.segments.len();
    if proofs.len() != count || settings.len() != count {
        return Err(ProverError::Folder(format!(
            "{} segment proofs and {} settings for a model of {count} segments",
            proofs.len(),
            settings.len()
        )));
    }
    let ids: Vec<String> = proofs.iter().map(|p| p.model_id.clone()).collect();
    let model_id = file.model_id(&ids)?;
    let parsed: Vec<Vec<Fr>> = proofs
        .iter()
        .map(|p| {
            p.instances
                .iter()
                .map(|h| from_hex(h))
                .collect::<Option<_>>()
        })
        .collect::<Option<_>>()
        .ok_or_else(|| ProverError::Folder("a segment's instance is out of range".into()))?;
    let pairs: Vec<(&Settings, &[Fr])> = settings
        .iter()
        .zip(&parsed)
        .map(|(s, i)| (s, i.as_slice()))
        .collect();
    file.check_links(&pairs)
        .map_err(|e| ProverError::Folder(format!("the segment proofs do not chain: {e}")))?;
    let instances = file.model_instances(&pairs)?;
    let shaped = outputs.len() == file.output_shapes.len()
        && outputs
            .iter()
            .zip(&file.output_shapes)
            .all(|(o, shape)| o.len() == shape.iter().product::<usize>());
    if !shaped {
        return Err(ProverError::Folder(
            "the outputs to assemble do not have the model's output shapes".into(),
        ));
    }
    let floats = |xs: &[Vec<i64>]| -> Vec<Vec<f64>> {
        xs.iter()
            .map(|x| {
                x.iter()
                    .map(|&v| dequantize(v as i128, file.scale))
                    .collect()
            })
            .collect()
    };
    let inputs = (file.input_visibility == Visibility::Public).then(|| floats(qin));
    Ok(ProofFile {
        format_version: FORMAT_VERSION,
        model_id,
        input_visibility: file.input_visibility,
        output_visibility: file.output_visibility,
        inputs,
        outputs: floats(outputs),
        output_shapes: file.output_shapes.clone(),
        instances: instances.iter().map(to_hex).collect(),
        proof: "0x".into(),
        segments: proofs,
    })
}

/// How `prove` runs a segmented model's segments.
#[derive(Clone, Copy, Debug)]
pub struct Jobs {
    /// How many segments are proven at once (each its own witness and keys in memory).
    pub at_once: usize,
    /// The memory they may hold together, by their estimates (`None`: no limit); a segment
    /// starts when the ones running leave room for it, or alone.
    pub memory: Option<u64>,
}

impl Default for Jobs {
    /// One segment at a time.
    fn default() -> Self {
        Jobs {
            at_once: 1,
            memory: None,
        }
    }
}

fn in_use_lock(m: &std::sync::Mutex<u64>) -> std::sync::MutexGuard<'_, u64> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Proves a segmented model on one input: one [`Evaluation`], then each segment on its
/// part of it (`jobs` at once), every link (and hashed inputs) committed
/// with `salt` (without one, [`default_salt`]). Writes nothing; returns the proof file with
/// every segment's proof.
pub fn prove_segments(
    dir: &Path,
    input: &Path,
    salt: Option<Fr>,
    jobs: Jobs,
) -> Result<ProofFile, ProverError> {
    let file = open_segments_file(dir)?;
    let salt = salt.unwrap_or_else(|| default_salt(file.input_visibility));
    let eval = Evaluation::new(dir, &file, &read_input(input)?)?;
    let count = file.segments.len();
    let settings = segment_settings(dir, &file)?;
    let limit = jobs.memory.unwrap_or(u64::MAX);
    let at_once = jobs.at_once.clamp(1, count);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let in_use = std::sync::Mutex::new(0u64);
    let freed = std::sync::Condvar::new();
    let results: Vec<std::sync::Mutex<Option<Result<SegmentProof, ProverError>>>> =
        (0..count).map(|_| Default::default()).collect();
    std::thread::scope(|scope| {
        for _ in 0..at_once {
            scope.spawn(|| loop {
                use std::sync::atomic::Ordering::SeqCst;
                let s = next.fetch_add(1, SeqCst);
                if s >= count || failed.load(SeqCst) {
                    break;
                }
                // Start only within the memory left (alone, whatever it needs: compile
                // checked each segment against the limit it was given).
                let need = settings[s].plan.prove_memory_bytes;
                let mut used = in_use_lock(&in_use);
                while *used > 0 && used.saturating_add(need) > limit {
                    used = freed.wait(used).unwrap_or_else(|e| e.into_inner());
                }
                *used += need;
                drop(used);
                let r = Prover::load(&segment_dir(dir, s))
                    .and_then(|p| prove_segment(&file, s, &p, &eval.segment_inputs[s], salt));
                if r.is_err() {
                    failed.store(true, SeqCst);
                }
                *results[s].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                *in_use_lock(&in_use) -= need;
                freed.notify_all();
            });
        }
    });
    let mut proofs = Vec::with_capacity(count);
    for (s, r) in results.into_iter().enumerate() {
        match r.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(p)) => proofs.push(p),
            Some(Err(e)) => return Err(e),
            None if failed.load(std::sync::atomic::Ordering::SeqCst) => continue,
            None => {
                return Err(ProverError::Folder(format!(
                    "internal: segment {s} not proven"
                )))
            }
        }
    }
    if proofs.len() != count {
        return Err(ProverError::Folder("internal: a segment failed".into()));
    }
    assemble(&file, &settings, &eval.qin, &eval.outputs, proofs)
}
