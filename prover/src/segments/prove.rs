//! Proving a segmented model: one evaluation of the whole graph gives every segment its
//! inputs; each segment is proven on its own (here, a few at once within a memory limit; in
//! the service, each by whichever worker claims it), and the proofs are assembled into one
//! proof file with the model's instances.

use std::path::Path;
use std::time::Instant;

use tracing::info;
use zkinfer_circuits::artifacts::segments::segment_dir;
use zkinfer_circuits::artifacts::{
    files, in_dir, read_json, ProofFile, SegmentProof, Settings, FORMAT_VERSION,
};
use zkinfer_circuits::field::{from_hex, to_hex};
use zkinfer_circuits::{Fr, Visibility};
use zkinfer_model::segment::inputs_of;
use zkinfer_model::{QGraph, Trace};

use super::{open_segmented, SegmentedFolder};
use crate::error::ProverError;
use crate::pipeline::{read_input, Prover};

/// One input, quantized, and the whole graph evaluated on it: what every segment's proof
/// and the assembled proof file read.
pub struct SegmentInput {
    /// The quantized input.
    pub qin: Vec<Vec<i64>>,
    /// Every node's value.
    pub trace: Trace,
}

impl SegmentInput {
    /// Quantizes `data` (shape, NaN and range checked) and evaluates the whole graph.
    pub fn new(q: &QGraph, data: &[Vec<f64>]) -> Result<Self, ProverError> {
        let qin = q.quantize_input(data)?;
        let t = Instant::now();
        let trace = q.eval(&qin)?;
        info!("whole graph evaluated in {:.2?}", t.elapsed());
        Ok(Self { qin, trace })
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
pub fn segment_settings(
    dir: &Path,
    folder: &SegmentedFolder,
) -> Result<Vec<Settings>, ProverError> {
    (0..folder.file.segments.len())
        .map(|s| {
            let st: Settings = read_json(&in_dir(&segment_dir(dir, s), files::SETTINGS))?;
            folder.file.check_segment(s, &st)?;
            Ok(st)
        })
        .collect()
}

/// Segment `s`'s proof on `input`, with `prover` loaded from that segment's folder.
pub fn prove_segment(
    folder: &SegmentedFolder,
    s: usize,
    prover: &Prover,
    input: &SegmentInput,
    salt: Fr,
) -> Result<SegmentProof, ProverError> {
    let entry = folder.file.segments.get(s).ok_or_else(|| {
        ProverError::Folder(format!(
            "segment {s}: the model has {} segments",
            folder.file.segments.len()
        ))
    })?;
    folder.file.check_segment(s, prover.settings())?;
    let t = Instant::now();
    let inputs = inputs_of(
        &folder.q,
        &input.trace,
        &entry.model_inputs,
        &entry.boundary_in,
    );
    let proof = prover.prove_quantized(&inputs, salt)?;
    info!(
        segment = s,
        of = folder.file.segments.len(),
        "segment proven in {:.2?}",
        t.elapsed()
    );
    Ok(SegmentProof {
        model_id: proof.model_id,
        instances: proof.instances,
        proof: proof.proof,
    })
}

/// The proof file of `proofs` (every segment's, in order, proven on `input`): the model id,
/// its instances from the segments', its outputs (and public inputs) from the evaluation.
/// The links are checked, so proofs of different inputs are never assembled.
pub fn assemble(
    folder: &SegmentedFolder,
    settings: &[Settings],
    input: &SegmentInput,
    proofs: Vec<SegmentProof>,
) -> Result<ProofFile, ProverError> {
    let count = folder.file.segments.len();
    if proofs.len() != count || settings.len() != count {
        return Err(ProverError::Folder(format!(
            "{} segment proofs and {} settings for a model of {count} segments",
            proofs.len(),
            settings.len()
        )));
    }
    let ids: Vec<String> = proofs.iter().map(|p| p.model_id.clone()).collect();
    let model_id = folder.file.model_id(&ids)?;
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
    folder
        .file
        .check_links(&pairs)
        .map_err(|e| ProverError::Folder(format!("the segment proofs do not chain: {e}")))?;
    let instances = folder.file.model_instances(&pairs)?;
    let q = &folder.q;
    let outputs = q
        .outputs_of(&input.trace)
        .iter()
        .map(|o| o.iter().map(|&v| q.dequantize(v)).collect())
        .collect();
    let inputs = (folder.file.input_visibility == Visibility::Public).then(|| {
        input
            .qin
            .iter()
            .map(|x| x.iter().map(|&v| q.dequantize(v)).collect())
            .collect()
    });
    Ok(ProofFile {
        format_version: FORMAT_VERSION,
        model_id,
        input_visibility: folder.file.input_visibility,
        output_visibility: folder.file.output_visibility,
        inputs,
        outputs,
        output_shapes: folder.file.output_shapes.clone(),
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

/// Proves a segmented model on one input: one evaluation of the whole graph, then each
/// segment on its part of it (`jobs` at once), every link (and hashed inputs) committed
/// with `salt` (without one, [`default_salt`]). Writes nothing; returns the proof file with
/// every segment's proof.
pub fn prove_segments(
    dir: &Path,
    input: &Path,
    salt: Option<Fr>,
    jobs: Jobs,
) -> Result<ProofFile, ProverError> {
    let folder = open_segmented(dir)?;
    let salt = salt.unwrap_or_else(|| default_salt(folder.file.input_visibility));
    let input = SegmentInput::new(&folder.q, &read_input(input)?)?;
    let count = folder.file.segments.len();
    let settings = segment_settings(dir, &folder)?;
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
                    .and_then(|p| prove_segment(&folder, s, &p, &input, salt));
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
    assemble(&folder, &settings, &input, proofs)
}
