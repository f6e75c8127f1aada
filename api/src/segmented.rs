//! A segmented model's jobs (see [`crate::queue::fan_out`]): its setup compiles and stores
//! the segments, then fans out one `setup_segment` job per segment (its keys); each proof
//! evaluates the segments once, in order, and fans out one `prove_segment` job per segment
//! with that segment's inputs (so a segment's worker fetches and loads its own segment only,
//! never the whole graph). Each parent's `assemble` step makes the model (its id
//! from the segments' ids and the wiring) or the proof file (the segments' proofs, their
//! links checked) from its children's results.
//!
//! Artifacts are stored under their paths in the segmented folder (`segments.json`,
//! `qgraph.json`, `segment-<i>/settings.json`, …), so a worker fetches only the segment it
//! proves.

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Map, Value};
use tokio::sync::Mutex;
use zkinfer_circuits::artifacts::segments::{segment_dir, SegmentsFile, SEGMENTS};
use zkinfer_circuits::artifacts::{files, in_dir, read_json, SegmentProof, Settings};
use zkinfer_circuits::Visibility;
use zkinfer_prover::pipeline::{self, Prover};
use zkinfer_prover::segments as seg;

use crate::db::Db;
use crate::executor::{
    materialize_files, phase, prover_error, scratch, write, JobError, FOLDER_FILES,
};
use crate::models;
use crate::queue::{self, Child, Claimed, FanOut, JobKind};
use crate::store::Store;
use crate::worker::WorkerConfig;

type JobResult<T> = std::result::Result<T, JobError>;

/// A segment folder's files once compiled; the rest of [`FOLDER_FILES`] comes with its keys.
const COMPILED_FILES: &[&str] = &[files::SETTINGS, files::QGRAPH, files::CALIBRATION];

/// Whether a model's artifacts are a segmented model's.
pub fn is_segmented(artifacts: &Value) -> bool {
    artifacts.get(SEGMENTS).is_some()
}

/// The artifact name of file `name` of segment `s`: its path in the segmented folder.
pub fn segment_file(s: usize, name: &str) -> String {
    format!("segment-{s}/{name}")
}

fn internal(what: &str, e: impl std::fmt::Display) -> JobError {
    JobError::internal(format!("{what}: {e}"))
}

fn segment_of(job: &Claimed) -> JobResult<usize> {
    job.payload["segment"]
        .as_u64()
        .map(|s| s as usize)
        .ok_or_else(|| internal("segment job payload", "no segment"))
}

async fn put_file(
    store: &Store,
    dir: &Path,
    name: &str,
    into: &mut Map<String, Value>,
) -> JobResult<()> {
    let bytes = std::fs::read(dir.join(name)).map_err(|e| internal(name, e))?;
    into.insert(name.to_string(), json!(store.put(bytes).await?));
    Ok(())
}

/// Stores a segmented compilation in `dir` (its wiring, whole graph and each segment's
/// compiled files) and returns the children that make each segment's keys, each needing
/// its segment's estimated memory.
pub(crate) async fn store_compiled(
    store: &Store,
    cfg: &WorkerConfig,
    dir: &Path,
    file: &SegmentsFile,
) -> JobResult<Vec<Child>> {
    let n = file.segments.len();
    let most = cfg.ceilings.max_segments;
    if n > most {
        return Err(JobError(
            "model_too_large".into(),
            format!("the model needs {n} segments; this service allows at most {most}"),
        ));
    }
    let mut compiled = Map::new();
    for name in [SEGMENTS, files::QGRAPH] {
        put_file(store, dir, name, &mut compiled).await?;
    }
    let mut memory = Vec::with_capacity(n);
    for s in 0..n {
        for name in COMPILED_FILES {
            put_file(store, dir, &segment_file(s, name), &mut compiled).await?;
        }
        let settings: Settings = read_json(&in_dir(&segment_dir(dir, s), files::SETTINGS))
            .map_err(|e| internal("segment settings", e))?;
        memory.push(i64::try_from(settings.plan.prove_memory_bytes).unwrap_or(i64::MAX));
    }
    Ok((0..n)
        .map(|s| Child {
            kind: JobKind::SetupSegment,
            payload: json!({ "segment": s, "compiled": compiled }),
            memory_bytes: Some(memory[s]),
        })
        .collect())
}

/// A `setup_segment` job: the keys of one segment, stored.
pub(crate) async fn setup_segment(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    job: &Claimed,
) -> JobResult<Value> {
    let s = segment_of(job)?;
    let compiled = &job.payload["compiled"];
    let work = scratch(cfg)?;
    let dir = work.path().join("model");
    let mut names = vec![SEGMENTS.to_string()];
    names.extend(COMPILED_FILES.iter().map(|n| segment_file(s, n)));
    for name in &names {
        let key = compiled[name.as_str()]
            .as_str()
            .ok_or_else(|| internal("segment job payload", format!("no {name}")))?;
        write(&dir.join(name), &store.get(key).await?)?;
    }
    phase(db, cfg, job, "keygen").await;
    let t = Instant::now();
    let (d, srs) = (dir.clone(), cfg.srs.clone());
    let (report, settings) = tokio::task::spawn_blocking(move || {
        let file: SegmentsFile = read_json(&in_dir(&d, SEGMENTS))?;
        file.check()?;
        let seg_dir = segment_dir(&d, s);
        let settings: Settings = read_json(&in_dir(&seg_dir, files::SETTINGS))?;
        file.check_segment(s, &settings)?;
        let report = pipeline::setup(&seg_dir, srs.as_deref())?;
        Ok::<_, zkinfer_prover::ProverError>((report, settings))
    })
    .await
    .map_err(|e| internal("setup task", e))?
    .map_err(prover_error)?;
    let setup_ms = t.elapsed().as_millis() as u64;
    phase(db, cfg, job, "storing").await;
    let mut artifacts = Map::new();
    for name in FOLDER_FILES
        .iter()
        .filter(|name| !COMPILED_FILES.contains(name))
    {
        put_file(store, &dir, &segment_file(s, name), &mut artifacts).await?;
    }
    let p = &settings.plan;
    Ok(json!({
        "segment": s,
        "k": report.k,
        "model_id": report.model_id,
        "srs": report.srs.to_string(),
        "public_values": p.num_instances,
        "proof_bytes": p.proof_bytes,
        "prove_memory_bytes": p.prove_memory_bytes,
        "setup_ms": setup_ms,
        "artifacts": artifacts,
    }))
}

/// The results of a parent's children, which must all have succeeded.
async fn child_results(db: &Db, job: &Claimed) -> JobResult<Vec<(Value, Value)>> {
    let kids = queue::children(db, &job.id).await?;
    if kids.is_empty() {
        return Err(internal(
            "assemble",
            format!("job {} has no segments", job.id),
        ));
    }
    kids.into_iter()
        .enumerate()
        .map(|(s, k)| match k.result {
            Some(r) if k.status == "succeeded" && k.segment == s as i64 => Ok((k.payload, r)),
            _ => Err(internal(
                "assemble",
                format!("segment {s} of job {} is {}", job.id, k.status),
            )),
        })
        .collect()
}

/// A segmented setup's `assemble` step: the model id (the segments' ids and the wiring),
/// summary and artifacts.
pub(crate) async fn assemble_setup(db: &Db, store: &Store, job: &Claimed) -> JobResult<Value> {
    // (A worker that stopped during this step gave the model back as queued.)
    models::set_state(db, &job.model_id, "running", None, None, None).await?;
    let kids = child_results(db, job).await?;
    let compiled = kids[0].0["compiled"]
        .as_object()
        .cloned()
        .ok_or_else(|| internal("assemble", "no compiled files"))?;
    let segments_key = compiled
        .get(SEGMENTS)
        .and_then(Value::as_str)
        .ok_or_else(|| internal("assemble", "no segments.json"))?
        .to_string();
    let file: SegmentsFile = serde_json::from_slice(&store.get(&segments_key).await?)
        .map_err(|e| internal("stored segments.json", e))?;
    file.check()
        .map_err(|e| internal("stored segments.json", e))?;
    let mut artifacts = compiled;
    let mut ids = Vec::with_capacity(kids.len());
    let mut segments = Vec::with_capacity(kids.len());
    for (_, r) in &kids {
        if let Some(a) = r["artifacts"].as_object() {
            artifacts.extend(a.clone());
        }
        ids.push(r["model_id"].as_str().unwrap_or_default().to_string());
        let mut summary = r.clone();
        summary.as_object_mut().map(|o| o.remove("artifacts"));
        segments.push(summary);
    }
    let model_id = file.model_id(&ids).map_err(|e| internal("model id", e))?;
    let most = |field: &str| segments.iter().filter_map(|s| s[field].as_u64()).max();
    let sum = |field: &str| {
        segments
            .iter()
            .filter_map(|s| s[field].as_u64())
            .sum::<u64>()
    };
    Ok(json!({
        "summary": {
            "k": most("k"),
            "model_id": model_id,
            "srs": segments[0]["srs"],
            "input_visibility": file.input_visibility,
            "output_visibility": file.output_visibility,
            "weights": zkinfer_model::Weights::Fixed.name(),
            "input_shapes": file.input_shapes,
            "output_shapes": file.output_shapes,
            "scale": file.scale,
            "proof_bytes": sum("proof_bytes"),
            "prove_memory_bytes": most("prove_memory_bytes"),
            "setup_ms": sum("setup_ms"),
            "segments": segments,
            "fhe": {
                "available": false,
                "reason": "the model is proven in segments: its FHE program is not compiled",
            },
        },
        "artifacts": artifacts,
    }))
}

fn parse_salt(text: Option<&str>) -> JobResult<Option<zkinfer_circuits::Fr>> {
    text.map(|t| {
        zkinfer_circuits::commit::parse_salt(t).ok_or_else(|| {
            JobError(
                "invalid_input".into(),
                "the salt is not a field element".into(),
            )
        })
    })
    .transpose()
}

/// A proof job of a segmented model: the segments evaluated in order on the job's input
/// ([`seg::Evaluation`], one segment's graph loaded at a time), then one `prove_segment`
/// child per segment with its inputs, all with the same salt (the request's, or
/// [`seg::default_salt`]: every link of one proof must be committed alike). The model's
/// outputs join the parent's payload for its `assemble` step. `None` for a one-circuit
/// model.
pub(crate) async fn fan_out_proof(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
) -> JobResult<Option<FanOut>> {
    let model = models::get(db, &job.tenant_id, &job.model_id)
        .await?
        .ok_or_else(|| JobError("model_not_found".into(), "the model was deleted".into()))?;
    let (Some(artifacts), Some(summary)) = (model.artifacts, model.summary) else {
        return Err(JobError(
            "model_not_ready".into(),
            "the model is not set up".into(),
        ));
    };
    if !is_segmented(&artifacts) {
        return Ok(None);
    }
    let visibility: Visibility = serde_json::from_value(summary["input_visibility"].clone())
        .map_err(|e| internal("stored summary", e))?;
    let salt =
        parse_salt(job.payload["salt"].as_str())?.unwrap_or_else(|| seg::default_salt(visibility));
    let salt = zkinfer_circuits::field::to_hex(&salt);
    let segments = summary["segments"]
        .as_array()
        .ok_or_else(|| internal("stored summary", "no segments"))?;
    let eval = evaluate(db, store, cfg, cache_lock, job, &artifacts).await?;
    if eval.segment_inputs.len() != segments.len() {
        return Err(internal("stored summary", "segment count"));
    }
    let children = segments
        .iter()
        .zip(eval.segment_inputs)
        .enumerate()
        .map(|(s, (summary, inputs))| Child {
            kind: JobKind::ProveSegment,
            payload: json!({ "segment": s, "inputs": inputs, "salt": salt }),
            memory_bytes: summary["prove_memory_bytes"]
                .as_u64()
                .and_then(|m| i64::try_from(m).ok()),
        })
        .collect();
    let mut payload = job.payload.clone();
    payload["outputs"] = json!(eval.outputs);
    Ok(Some(FanOut {
        children,
        payload: Some(payload),
    }))
}

/// The segments evaluated on the job's `input_data` ([`seg::Evaluation`]), from
/// `segments.json` and every segment's settings and graph (cached as `<model>.graphs`).
async fn evaluate(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
    artifacts: &Value,
) -> JobResult<seg::Evaluation> {
    let data = input_data(job)?;
    let mut names = vec![SEGMENTS.to_string()];
    for s in 0..segment_count(artifacts) {
        names.push(segment_file(s, files::SETTINGS));
        names.push(segment_file(s, files::QGRAPH));
    }
    let cache = format!("{}.graphs", job.model_id);
    let (dir, _) =
        materialize_files(store, &cfg.data_dir, cache_lock, &cache, &names, artifacts).await?;
    phase(db, cfg, job, "evaluating").await;
    tokio::task::spawn_blocking(move || {
        let file = seg::open_segments_file(&dir)?;
        seg::Evaluation::new(&dir, &file, &data)
    })
    .await
    .map_err(|e| internal("evaluate task", e))?
    .map_err(prover_error)
}

/// How many segments a segmented model's artifacts hold.
fn segment_count(artifacts: &Value) -> usize {
    (0..)
        .take_while(|&s| artifacts.get(segment_file(s, files::SETTINGS)).is_some())
        .count()
}

/// Quantized tensors from a job's payload (a segment's inputs, a proof's outputs).
fn tensors(job: &Claimed, field: &str) -> JobResult<Vec<Vec<i64>>> {
    serde_json::from_value(job.payload[field].clone())
        .map_err(|e| internal(&format!("job payload {field}"), e))
}

fn input_data(job: &Claimed) -> JobResult<Vec<Vec<f64>>> {
    let text = json!({ "input_data": job.payload["input_data"] }).to_string();
    zkinfer_model::parse_input_json(&text)
        .map_err(|e| JobError("invalid_input".into(), e.to_string()))
}

async fn ready_artifacts(db: &Db, job: &Claimed) -> JobResult<Value> {
    models::get(db, &job.tenant_id, &job.model_id)
        .await?
        .ok_or_else(|| JobError("model_not_found".into(), "the model was deleted".into()))?
        .artifacts
        .ok_or_else(|| JobError("model_not_ready".into(), "the model is not set up".into()))
}

/// A `prove_segment` job: segment `s`'s proof on its inputs (from its parent's evaluation),
/// with the files and keys of that segment only (fetched and cached as
/// `<model>.segment-<s>`).
pub(crate) async fn prove_segment(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
) -> JobResult<Value> {
    let s = segment_of(job)?;
    let salt = parse_salt(job.payload["salt"].as_str())?
        .ok_or_else(|| internal("segment job payload", "no salt"))?;
    let artifacts = ready_artifacts(db, job).await?;
    let inputs = if job.payload.get("inputs").is_some() {
        tensors(job, "inputs")?
    } else {
        // Queued by a worker from before segment jobs carried their inputs: evaluate here.
        let mut eval = evaluate(db, store, cfg, cache_lock, job, &artifacts).await?;
        if s >= eval.segment_inputs.len() {
            return Err(internal("segment job payload", "no such segment"));
        }
        eval.segment_inputs.swap_remove(s)
    };
    let cache = format!("{}.segment-{s}", job.model_id);
    let mut names = vec![SEGMENTS.to_string()];
    names.extend(FOLDER_FILES.iter().map(|n| segment_file(s, n)));
    phase(db, cfg, job, "loading_keys").await;
    let t = Instant::now();
    let (dir, fetched) =
        materialize_files(store, &cfg.data_dir, cache_lock, &cache, &names, &artifacts).await?;
    let (prover, source) = match cfg.keys.get(&cache) {
        Some(p) => (p, "memory"),
        None => {
            let _loading = cfg.keys.loading.lock().await;
            let d = segment_dir(&dir, s);
            let p = tokio::task::spawn_blocking(move || Prover::load(&d))
                .await
                .map_err(|e| internal("load task", e))?
                .map_err(prover_error)?;
            let p = std::sync::Arc::new(p);
            cfg.keys.insert(&cache, p.clone());
            (p, if fetched { "store" } else { "disk" })
        }
    };
    let load_ms = t.elapsed().as_millis() as u64;
    phase(db, cfg, job, "proving").await;
    let t = Instant::now();
    let proof = tokio::task::spawn_blocking(move || {
        let file = seg::open_segments_file(&dir)?;
        seg::prove_segment(&file, s, &prover, &inputs, salt)
    })
    .await
    .map_err(|e| internal("prove task", e))?
    .map_err(prover_error)?;
    Ok(json!({
        "segment": s,
        "segment_proof": proof,
        "prove_ms": t.elapsed().as_millis() as u64,
        "load_ms": load_ms,
        "keys_from": source,
    }))
}

/// A segmented proof's `assemble` step: the proof file of its segments' proofs (links
/// checked), with the model's instances and outputs.
pub(crate) async fn assemble_proof(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
) -> JobResult<Value> {
    let kids = child_results(db, job).await?;
    let data = input_data(job)?;
    let artifacts = ready_artifacts(db, job).await?;
    let outputs = if job.payload.get("outputs").is_some() {
        tensors(job, "outputs")?
    } else {
        // Fanned out by a worker from before the outputs were kept: evaluate here.
        evaluate(db, store, cfg, cache_lock, job, &artifacts)
            .await?
            .outputs
    };
    let mut proofs: Vec<SegmentProof> = Vec::with_capacity(kids.len());
    let mut segments = Vec::with_capacity(kids.len());
    for (_, r) in &kids {
        proofs.push(
            serde_json::from_value(r["segment_proof"].clone())
                .map_err(|e| internal("segment proof", e))?,
        );
        segments.push(json!({
            "prove_ms": r["prove_ms"],
            "load_ms": r["load_ms"],
            "keys_from": r["keys_from"],
        }));
    }
    let mut names = vec![SEGMENTS.to_string()];
    names.extend((0..kids.len()).map(|s| segment_file(s, files::SETTINGS)));
    let cache = format!("{}.settings", job.model_id);
    let (dir, _) =
        materialize_files(store, &cfg.data_dir, cache_lock, &cache, &names, &artifacts).await?;
    phase(db, cfg, job, "assembling").await;
    let proof = tokio::task::spawn_blocking(move || {
        let file = seg::open_segments_file(&dir)?;
        let settings = seg::segment_settings(&dir, &file)?;
        let qin =
            zkinfer_model::quantize_input(&data, &file.input_shapes, file.scale, file.act_bits)?;
        seg::assemble(&file, &settings, &qin, &outputs, proofs)
    })
    .await
    .map_err(|e| internal("assemble task", e))?
    .map_err(prover_error)?;
    let prove_ms: u64 = segments.iter().filter_map(|s| s["prove_ms"].as_u64()).sum();
    Ok(json!({
        "proof_file": proof,
        "prove_ms": prove_ms,
        "segments": segments,
    }))
}
