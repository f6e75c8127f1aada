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
use zkinfer_prover::pipeline::{self, CompileOptions, Prover};
use zkinfer_prover::ProverError;

pub use crate::capacity::Capacity;
use crate::capacity::Reservation;
use crate::ceilings::Ceilings;
use crate::db::Db;
use crate::error::{Error, Result};
pub use crate::key_cache::KeyCache;
use crate::queue::{self, Claimed, JobKind, Outcome};
use crate::store::Store;
use crate::{fleet, models};

/// What a model upload recorded: its files in the store and how to compile it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Upload {
    /// Store key of the ONNX file.
    pub onnx: String,
    /// Store key of the calibration input (EZKL format).
    pub calibration: String,
    /// Compile options.
    pub options: zkinfer_prover::options::ModelOptions,
    /// FHE compile options; `None`: no FHE program.
    #[serde(default = "default_fhe")]
    pub fhe: Option<zkinfer_fhe::FheOptions>,
}

fn default_fhe() -> Option<zkinfer_fhe::FheOptions> {
    Some(Default::default())
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
    /// Proving keys held in memory, shared by the worker loops of one process.
    pub keys: Arc<KeyCache>,
    /// What this worker allows a model to cost (its largest circuit, memory, proof, …): a
    /// model that needs more than any worker allows fails its setup with `model_too_large`.
    pub ceilings: Ceilings,
    /// The memory the worker loops of one process share.
    pub capacity: Arc<Capacity>,
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

/// How a worker should go on: the service's shutdown moves it from `Run` to `Drain` (take
/// no new job, finish the one in hand) and, after a grace period or a second signal, to
/// `Release` (give the job in hand back to the queue and stop).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// Claim and run jobs.
    Run,
    /// Finish the job in hand, claim no more.
    Drain,
    /// Release the job in hand at once.
    Release,
}

/// Runs jobs until `stop` leaves [`Stop::Run`]; see [`Stop`] for what happens to the job in
/// hand then.
pub async fn run(db: Db, store: Store, cfg: WorkerConfig, mut stop: watch::Receiver<Stop>) {
    let cache_lock = Arc::new(Mutex::new(()));
    let lease_ms = cfg.lease.as_millis() as i64;
    let mut last_heartbeat: Option<Instant> = None;
    loop {
        if *stop.borrow() != Stop::Run {
            if let Err(e) = fleet::leave(&db, &cfg.name).await {
                tracing::warn!("leaving the fleet: {e}");
            }
            return;
        }
        if last_heartbeat.is_none_or(|t| t.elapsed() >= cfg.lease / 3) {
            match fleet::heartbeat(&db, &cfg.name, cfg.ceilings.max_prove_memory).await {
                Ok(()) => last_heartbeat = Some(Instant::now()),
                Err(e) => tracing::warn!("heartbeat: {e}"),
            }
        }
        if let Err(e) = queue::expire_leases(&db).await {
            tracing::warn!("expiring leases: {e}");
        }
        let claimed = {
            let _one_claim = cfg.capacity.claiming.lock().await;
            let free = i64::try_from(cfg.capacity.free()).unwrap_or(i64::MAX);
            queue::claim(&db, &cfg.name, lease_ms, free)
                .await
                .map(|job| {
                    job.map(|job| {
                        let bytes = job.memory_bytes.and_then(|m| u64::try_from(m).ok());
                        let held = cfg.capacity.reserve(bytes.unwrap_or(0));
                        (job, held)
                    })
                })
        };
        let (job, held) = match claimed {
            Ok(Some(claimed)) => claimed,
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(cfg.poll) => {}
                    _ = stop.changed() => {}
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
        let released = {
            let mut stop = stop.clone();
            async move {
                // An error means the service is gone: nothing to wait for.
                let _ = stop.wait_for(|s| *s == Stop::Release).await;
            }
        };
        let outcome = tokio::select! {
            r = run_job(&db, &store, &cfg, &cache_lock, &job, &held) => match r {
                Ok(v) => Outcome::Succeeded(v),
                Err(JobEnd::Failed(code, message)) => Outcome::Failed(code, message),
                Err(JobEnd::NeedsMemory(bytes)) => {
                    renewer.abort();
                    defer(&db, &cfg, &job, bytes).await;
                    continue;
                }
            },
            _ = released => {
                renewer.abort();
                // The proving thread, if any, is abandoned: the process is stopping.
                match queue::release(&db, &job.id, &cfg.name).await {
                    Ok(true) => {
                        tracing::info!(job = %job.id, "released to the queue");
                        if job.kind == JobKind::Setup {
                            let r = models::set_state(&db, &job.model_id, "queued", None, None, None);
                            if let Err(e) = r.await {
                                tracing::warn!(job = %job.id, "recording the model's state: {e}");
                            }
                        }
                    }
                    Ok(false) => tracing::warn!(job = %job.id, "lease already lost"),
                    Err(e) => tracing::warn!(job = %job.id, "releasing: {e} (its lease will expire)"),
                }
                let _ = fleet::leave(&db, &cfg.name).await;
                return;
            }
        };
        renewer.abort();
        drop(held);
        record(&db, &cfg, &job, &outcome, t).await;
    }
}

/// Gives a setup job back to the queue for a worker with `bytes` free (its model queued again).
async fn defer(db: &Db, cfg: &WorkerConfig, job: &Claimed, bytes: u64) {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    match queue::defer(
        db,
        &job.id,
        &cfg.name,
        i64::try_from(bytes).unwrap_or(i64::MAX),
    )
    .await
    {
        Ok(true) => {
            tracing::info!(job = %job.id, "needs {gib:.1} GiB, more than this worker has free: deferred");
            if let Err(e) = models::set_state(db, &job.model_id, "queued", None, None, None).await {
                tracing::warn!(job = %job.id, "recording the model's state: {e}");
            }
        }
        Ok(false) => tracing::warn!(job = %job.id, "lease already lost"),
        Err(e) => tracing::warn!(job = %job.id, "deferring: {e} (its lease will expire)"),
    }
}

/// Records a job's outcome (and, for a setup job, its model's state).
async fn record(db: &Db, cfg: &WorkerConfig, job: &Claimed, outcome: &Outcome, t: Instant) {
    match queue::finish(db, &job.id, &cfg.name, outcome).await {
        Ok(true) => {
            let ms = t.elapsed().as_millis() as i64;
            if let Err(e) = queue::record_run_ms(db, &job.id, &cfg.name, ms).await {
                tracing::warn!(job = %job.id, "recording the run time: {e}");
            }
            if job.kind == JobKind::Setup {
                let r = match outcome {
                    Outcome::Succeeded(v) => {
                        models::set_state(
                            db,
                            &job.model_id,
                            "ready",
                            Some(&v["summary"]),
                            Some(&v["artifacts"]),
                            None,
                        )
                        .await
                    }
                    Outcome::Failed(c, m) => {
                        models::set_state(db, &job.model_id, "failed", None, None, Some((c, m)))
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

/// A job's failure: an error code and a message for the client.
struct JobError(String, String);

impl JobError {
    fn internal(message: String) -> Self {
        JobError("internal".into(), message)
    }
}

/// How a job ends short of success.
enum JobEnd {
    /// It failed: an error code and a message for the client.
    Failed(String, String),
    /// It needs this many bytes, more than this worker has free: another should take it.
    NeedsMemory(u64),
}

impl From<Error> for JobEnd {
    fn from(e: Error) -> Self {
        JobError::from(e).into()
    }
}

impl From<JobError> for JobEnd {
    fn from(JobError(code, message): JobError) -> Self {
        JobEnd::Failed(code, message)
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
        ProverError::GpuOutOfMemory(_) => "gpu_out_of_memory",
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
    held: &Reservation,
) -> std::result::Result<Value, JobEnd> {
    match job.kind {
        JobKind::Setup => {
            models::set_state(db, &job.model_id, "running", None, None, None)
                .await
                .map_err(JobError::from)?;
            setup(db, store, cfg, job, held).await
        }
        JobKind::Prove => Ok(prove(db, store, cfg, cache_lock, job).await?),
        JobKind::FheRun => crate::fhe::run(db, store, cfg, job)
            .await
            .map_err(|(code, message)| JobEnd::Failed(code, message)),
    }
}

/// Records the phase job `job` is in; a failure to record it does not stop the job.
pub(crate) async fn phase(db: &Db, cfg: &WorkerConfig, job: &Claimed, phase: &str) {
    if let Err(e) = queue::set_phase(db, &job.id, &cfg.name, phase).await {
        tracing::warn!(job = %job.id, "recording phase {phase}: {e}");
    }
}

async fn setup(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    job: &Claimed,
    held: &Reservation,
) -> std::result::Result<Value, JobEnd> {
    let upload: Upload = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::internal(format!("setup job payload: {e}")))?;
    let work = scratch(cfg)?;
    let onnx = work.path().join("network.onnx");
    let calibration = work.path().join("calibration-input.json");
    write(&onnx, &store.get(&upload.onnx).await?)?;
    write(&calibration, &store.get(&upload.calibration).await?)?;
    let dir = work.path().join("model");
    // Planned for the largest worker seen: a model this worker cannot hold goes to it.
    let fleet_ms = 3 * cfg.lease.as_millis() as i64;
    let largest = match fleet::largest_memory(db, fleet_ms).await {
        Ok(m) => m.unwrap_or(0).max(cfg.ceilings.max_prove_memory),
        Err(e) => {
            tracing::warn!(job = %job.id, "reading the fleet: {e}");
            cfg.ceilings.max_prove_memory
        }
    };
    let opts: CompileOptions = cfg.ceilings.compile_options(&upload.options, largest);
    let srs = cfg.srs.clone();
    let t = Instant::now();
    phase(db, cfg, job, "compiling").await;
    let (d, o, c) = (dir.clone(), onnx.clone(), calibration.clone());
    let settings = tokio::task::spawn_blocking(move || pipeline::compile(&o, &c, &d, &opts))
        .await
        .map_err(|e| JobError::internal(format!("compile task: {e}")))?
        .map_err(prover_error)?;
    if !held.grow_to(settings.plan.prove_memory_bytes) {
        return Err(JobEnd::NeedsMemory(settings.plan.prove_memory_bytes));
    }
    // The FHE program comes from the same imported graph; a model it cannot take is recorded
    // as refused, and the circuit is set up all the same.
    let fhe_file = match upload.fhe {
        None => None,
        Some(fhe_opts) => {
            let fhe_opts = cfg.ceilings.fhe_options(&fhe_opts);
            phase(db, cfg, job, "fhe_compiling").await;
            let (d, sha) = (dir.clone(), settings.model_sha256.clone());
            let file = tokio::task::spawn_blocking(move || {
                zkinfer_fhe::folder::compile_files(&onnx, &calibration, &sha, &d, &fhe_opts)
            })
            .await
            .map_err(|e| JobError::internal(format!("fhe compile task: {e}")))?
            .map_err(|e| JobError("fhe_failed".into(), e.to_string()))?;
            Some(file)
        }
    };
    phase(db, cfg, job, "keygen").await;
    let d = dir.clone();
    let report = tokio::task::spawn_blocking(move || pipeline::setup(&d, srs.as_deref()))
        .await
        .map_err(|e| JobError::internal(format!("setup task: {e}")))?
        .map_err(prover_error)?;
    let setup_ms = t.elapsed().as_millis() as u64;
    phase(db, cfg, job, "storing").await;
    let mut artifacts = BTreeMap::new();
    for name in FOLDER_FILES {
        let bytes = std::fs::read(dir.join(name))
            .map_err(|e| JobError::internal(format!("reading {name}: {e}")))?;
        artifacts.insert(name.to_string(), store.put(bytes).await?);
    }
    if fhe_file.is_some() {
        let name = zkinfer_fhe::folder::FHE_FILE;
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
            "prove_memory_bytes": p.prove_memory_bytes,
            "setup_ms": setup_ms,
            "fhe": crate::fhe::summary(fhe_file.as_ref()),
        },
        "artifacts": artifacts,
    }))
}

/// The model's compiled folder in this process's disk cache, fetched from the store if
/// missing (then the flag is true).
pub async fn materialize(
    store: &Store,
    data_dir: &Path,
    cache_lock: &Mutex<()>,
    model_id: &str,
    artifacts: &Value,
) -> Result<(PathBuf, bool)> {
    let dir = data_dir.join("models").join(model_id);
    let _guard = cache_lock.lock().await;
    if dir.join(files::SETTINGS).exists() {
        return Ok((dir, false));
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
    Ok((dir, true))
}

async fn prove(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
) -> std::result::Result<Value, JobError> {
    let text = json!({ "input_data": job.payload["input_data"] }).to_string();
    let data = zkinfer_model::parse_input_json(&text)
        .map_err(|e| JobError("invalid_input".into(), e.to_string()))?;
    let (prover, source, load_ms) = loaded(db, store, cfg, cache_lock, job).await?;
    phase(db, cfg, job, "proving").await;
    let t = Instant::now();
    let proof = tokio::task::spawn_blocking(move || prover.prove(&data))
        .await
        .map_err(|e| JobError::internal(format!("prove task: {e}")))?
        .map_err(prover_error)?;
    Ok(json!({
        "proof_file": proof,
        "prove_ms": t.elapsed().as_millis() as u64,
        "load_ms": load_ms,
        "keys_from": source,
    }))
}

/// The job's model loaded for proving, and where its keys came from: `memory`, this worker's
/// `disk` cache, or the `store`; with the milliseconds loading took.
async fn loaded(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
) -> std::result::Result<(Arc<Prover>, &'static str, u64), JobError> {
    if let Some(p) = cfg.keys.get(&job.model_id) {
        return Ok((p, "memory", 0));
    }
    let _loading = cfg.keys.loading.lock().await;
    if let Some(p) = cfg.keys.get(&job.model_id) {
        return Ok((p, "memory", 0));
    }
    let model = models::get(db, &job.tenant_id, &job.model_id)
        .await?
        .ok_or_else(|| JobError("model_not_found".into(), "the model was deleted".into()))?;
    let artifacts = model
        .artifacts
        .ok_or_else(|| JobError("model_not_ready".into(), "the model is not set up".into()))?;
    phase(db, cfg, job, "loading_keys").await;
    let t = Instant::now();
    let (dir, fetched) =
        materialize(store, &cfg.data_dir, cache_lock, &job.model_id, &artifacts).await?;
    let prover = tokio::task::spawn_blocking(move || Prover::load(&dir))
        .await
        .map_err(|e| JobError::internal(format!("load task: {e}")))?
        .map_err(prover_error)?;
    let prover = Arc::new(prover);
    cfg.keys.insert(&job.model_id, prover.clone());
    let source = if fetched { "store" } else { "disk" };
    Ok((prover, source, t.elapsed().as_millis() as u64))
}

fn write(path: &Path, bytes: &[u8]) -> std::result::Result<(), JobError> {
    std::fs::write(path, bytes).map_err(|e| JobError::internal(format!("{}: {e}", path.display())))
}
