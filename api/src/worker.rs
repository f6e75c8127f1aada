//! A proving worker: claims jobs from the shared queue, runs them (compile and setup, or
//! prove) off the async runtime, renews its lease while it works, and records the result.
//! It keeps nothing but caches: compiled folders under its data dir, fetched from the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex};
use zkinfer_circuits::artifacts::files;
use zkinfer_prover::pipeline::{self, CompileOptions};
use zkinfer_prover::ProverError;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::models;
use crate::queue::{self, Claimed, JobKind, Outcome};
use crate::store::Store;

/// What a model upload recorded: its files in the store and how to compile it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Upload {
    /// Store key of the ONNX file.
    pub onnx: String,
    /// Store key of the calibration input (EZKL format).
    pub calibration: String,
    /// Compile options.
    pub options: zkinfer_prover::options::ModelOptions,
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Its name in the queue (unique per process and loop).
    pub name: String,
    /// Where it caches compiled folders.
    pub data_dir: PathBuf,
    /// The ceremony file every setup uses (a development SRS without one).
    pub srs: Option<PathBuf>,
    /// How long a claim holds before another worker may take the job over.
    pub lease: Duration,
    /// How long to wait when the queue is empty.
    pub poll: Duration,
}

/// The folder files a verifier or prover needs, in the order they are stored.
const FOLDER_FILES: &[&str] = &[
    files::SETTINGS,
    files::QGRAPH,
    files::CALIBRATION,
    files::KEYS,
    files::PK,
    files::VK,
    files::SRS,
    files::KZG_VERIFIER,
];

/// Runs jobs until `shutdown` turns true; a job in hand is finished first.
pub async fn run(db: Db, store: Store, cfg: WorkerConfig, mut shutdown: watch::Receiver<bool>) {
    let cache_lock = Arc::new(Mutex::new(()));
    let lease_ms = cfg.lease.as_millis() as i64;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = queue::expire_leases(&db).await {
            tracing::warn!("expiring leases: {e}");
        }
        let job = match queue::claim(&db, &cfg.name, lease_ms).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(cfg.poll) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            Err(e) => {
                tracing::warn!("claiming a job: {e}");
                tokio::time::sleep(cfg.poll).await;
                continue;
            }
        };
        tracing::info!(job = %job.id, kind = ?job.kind, attempt = job.attempt, "claimed");
        let renewer = {
            let (db, id, name) = (db.clone(), job.id.clone(), cfg.name.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(1) as u64)).await;
                    match queue::renew(&db, &id, &name, lease_ms).await {
                        Ok(true) => {}
                        _ => return,
                    }
                }
            })
        };
        let t = Instant::now();
        let outcome = match run_job(&db, &store, &cfg, &cache_lock, &job).await {
            Ok(v) => Outcome::Succeeded(v),
            Err(JobError(code, message)) => Outcome::Failed(code, message),
        };
        renewer.abort();
        match queue::finish(&db, &job.id, &cfg.name, &outcome).await {
            Ok(true) => {
                let ms = t.elapsed().as_millis() as i64;
                if let Err(e) = queue::record_run_ms(&db, &job.id, &cfg.name, ms).await {
                    tracing::warn!(job = %job.id, "recording the run time: {e}");
                }
                if job.kind == JobKind::Setup {
                    let r = match &outcome {
                        Outcome::Succeeded(v) => {
                            models::set_state(
                                &db,
                                &job.model_id,
                                "ready",
                                Some(&v["summary"]),
                                Some(&v["artifacts"]),
                                None,
                            )
                            .await
                        }
                        Outcome::Failed(c, m) => {
                            models::set_state(
                                &db,
                                &job.model_id,
                                "failed",
                                None,
                                None,
                                Some((c, m)),
                            )
                            .await
                        }
                    };
                    if let Err(e) = r {
                        tracing::warn!(job = %job.id, "recording the model's state: {e}");
                    }
                }
                tracing::info!(job = %job.id, "done in {:.2?}", t.elapsed());
            }
            Ok(false) => tracing::warn!(job = %job.id, "lease lost: another worker has the job"),
            Err(e) => tracing::warn!(job = %job.id, "recording the result: {e}"),
        }
    }
}

/// A job's failure: an error code and a message for the client.
struct JobError(String, String);

impl JobError {
    fn internal(message: String) -> Self {
        JobError("internal".into(), message)
    }
}

/// A scratch folder for one job, in the worker's data dir (removed when dropped).
fn scratch(cfg: &WorkerConfig) -> std::result::Result<tempfile::TempDir, JobError> {
    tempfile::tempdir_in(&cfg.data_dir).map_err(|e| JobError::internal(format!("scratch dir: {e}")))
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        JobError::internal(e.to_string())
    }
}

fn prover_error(e: ProverError) -> JobError {
    let code = match &e {
        ProverError::Circuit(zkinfer_circuits::CircuitError::TooLarge(_)) => "model_too_large",
        ProverError::Model(_) => "invalid_input",
        _ => "failed",
    };
    JobError(code.into(), e.to_string())
}

async fn run_job(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
) -> std::result::Result<Value, JobError> {
    match job.kind {
        JobKind::Setup => {
            models::set_state(db, &job.model_id, "running", None, None, None).await?;
            setup(store, cfg, job).await
        }
        JobKind::Prove => prove(db, store, cfg, cache_lock, job).await,
    }
}

async fn setup(
    store: &Store,
    cfg: &WorkerConfig,
    job: &Claimed,
) -> std::result::Result<Value, JobError> {
    let upload: Upload = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::internal(format!("setup job payload: {e}")))?;
    let work = scratch(cfg)?;
    let onnx = work.path().join("network.onnx");
    let calibration = work.path().join("calibration-input.json");
    write(&onnx, &store.get(&upload.onnx).await?)?;
    write(&calibration, &store.get(&upload.calibration).await?)?;
    let dir = work.path().join("model");
    let opts: CompileOptions = upload.options.compile_options();
    let srs = cfg.srs.clone();
    let dir2 = dir.clone();
    let t = Instant::now();
    let (settings, report) = tokio::task::spawn_blocking(move || {
        let settings = pipeline::compile(&onnx, &calibration, &dir2, &opts)?;
        let report = pipeline::setup(&dir2, srs.as_deref())?;
        Ok::<_, ProverError>((settings, report))
    })
    .await
    .map_err(|e| JobError::internal(format!("setup task: {e}")))?
    .map_err(prover_error)?;
    let setup_ms = t.elapsed().as_millis() as u64;
    let mut artifacts = BTreeMap::new();
    for name in FOLDER_FILES {
        let bytes = std::fs::read(dir.join(name))
            .map_err(|e| JobError::internal(format!("reading {name}: {e}")))?;
        artifacts.insert(name.to_string(), store.put(bytes).await?);
    }
    let p = &settings.plan;
    Ok(json!({
        "summary": {
            "k": p.k,
            "model_id": report.model_id,
            "srs": report.srs.to_string(),
            "input_visibility": p.visibility,
            "input_shapes": settings.input_shapes,
            "output_shapes": settings.output_shapes,
            "scale": settings.scale,
            "public_values": p.num_instances,
            "proof_bytes": p.proof_bytes,
            "setup_ms": setup_ms,
        },
        "artifacts": artifacts,
    }))
}

/// The model's compiled folder in this worker's cache, fetched from the store if missing.
pub async fn materialize(
    store: &Store,
    data_dir: &Path,
    cache_lock: &Mutex<()>,
    model_id: &str,
    artifacts: &Value,
) -> Result<PathBuf> {
    let dir = data_dir.join("models").join(model_id);
    let _guard = cache_lock.lock().await;
    if dir.join(files::SETTINGS).exists() {
        return Ok(dir);
    }
    // Fetched into a scratch folder and renamed, so a half-fetched folder is never used.
    std::fs::create_dir_all(data_dir.join("models"))
        .map_err(|e| Error::Config(format!("cache dir: {e}")))?;
    let tmp = tempfile::tempdir_in(data_dir.join("models"))
        .map_err(|e| Error::Config(format!("cache dir: {e}")))?;
    for name in FOLDER_FILES {
        let key = artifacts[*name]
            .as_str()
            .ok_or_else(|| Error::NotFound(format!("artifact {name} of model {model_id}")))?;
        std::fs::write(tmp.path().join(name), store.get(key).await?)
            .map_err(|e| Error::Config(format!("cache write: {e}")))?;
    }
    std::fs::rename(tmp.keep(), &dir).map_err(|e| Error::Config(format!("cache rename: {e}")))?;
    Ok(dir)
}

async fn prove(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
) -> std::result::Result<Value, JobError> {
    let model = models::get(db, &job.tenant_id, &job.model_id)
        .await?
        .ok_or_else(|| JobError("model_not_found".into(), "the model was deleted".into()))?;
    let artifacts = model
        .artifacts
        .ok_or_else(|| JobError("model_not_ready".into(), "the model is not set up".into()))?;
    let dir = materialize(store, &cfg.data_dir, cache_lock, &job.model_id, &artifacts).await?;
    let work = scratch(cfg)?;
    let input = work.path().join("input.json");
    write(
        &input,
        json!({ "input_data": job.payload["input_data"] })
            .to_string()
            .as_bytes(),
    )?;
    let t = Instant::now();
    let proof = tokio::task::spawn_blocking(move || pipeline::prove(&dir, &input))
        .await
        .map_err(|e| JobError::internal(format!("prove task: {e}")))?
        .map_err(prover_error)?;
    Ok(json!({ "proof_file": proof, "prove_ms": t.elapsed().as_millis() as u64 }))
}

fn write(path: &Path, bytes: &[u8]) -> std::result::Result<(), JobError> {
    std::fs::write(path, bytes).map_err(|e| JobError::internal(format!("{}: {e}", path.display())))
}
