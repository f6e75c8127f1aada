//! What runs a worker's jobs: compile and keygen of a setup, a proof, an FHE run. The same
//! [`Executor`] runs in the worker's own process (tests, embedded use) or in the long-lived
//! child process `zkinfer serve` and `zkinfer worker` supervise ([`crate::child`]), so that
//! a job that runs out of memory takes only that child down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use zkinfer_circuits::artifacts::{files, Settings};
use zkinfer_prover::pipeline::{self, CompileOptions, Prover};
use zkinfer_prover::ProverError;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::queue::{self, Claimed};
use crate::segmented;
use crate::store::Store;
use crate::worker::WorkerConfig;
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
    /// The hashed-weights model whose circuit this one reproduces (upload setting `like`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like: Option<Sibling>,
}

/// A sibling model as an upload's `like` found it: the store keys of the files that
/// `compile --like` and `setup_like` read (kept referenced here, so retention keeps them while
/// the job waits).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sibling {
    /// Its id in the service.
    pub model: String,
    /// Store key of its settings.json.
    pub settings: String,
    /// Store key of its qgraph.json.
    pub qgraph: String,
    /// Store key of its srs.bin: without a ceremony file, the one SRS its keys are made on.
    pub srs: String,
    /// Store key of its keys.json (where that SRS came from).
    pub keys: String,
}

fn default_fhe() -> Option<zkinfer_fhe::FheOptions> {
    Some(Default::default())
}

/// The folder files a verifier or prover needs, in the order they are stored.
pub(crate) const FOLDER_FILES: &[&str] = &[
    files::SETTINGS,
    files::QGRAPH,
    files::CALIBRATION,
    files::KEYS,
    files::PK,
    files::VK,
    files::SRS,
    files::KZG_VERIFIER,
];

/// One step of a job, as a worker loop asks for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Compile a setup job's model; answered [`Response::Compiled`].
    Compile(Claimed),
    /// Make the keys of the model [`Request::Compile`] compiled for this job.
    Keygen(Claimed),
    /// Run a proof or FHE job.
    Run(Claimed),
}

/// What a step ended with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// The model is compiled; its setup and proofs are estimated to need this many bytes.
    Compiled(u64),
    /// The job is a segmented model's: it waits for these children, one per segment.
    FanOut(queue::FanOut),
    /// The job's result, or its error code and message.
    Done(std::result::Result<Value, (String, String)>),
}

/// Runs job steps with one worker's caches (proving keys, compiled folders).
pub struct Executor {
    db: Db,
    store: Store,
    cfg: WorkerConfig,
    cache_lock: Mutex<()>,
    compiled: Mutex<Option<Compiled>>,
}

impl Executor {
    /// An executor for worker `cfg` on `db` and `store`.
    pub fn new(db: Db, store: Store, cfg: WorkerConfig) -> Self {
        Self {
            db,
            store,
            cfg,
            cache_lock: Mutex::new(()),
            compiled: Mutex::new(None),
        }
    }

    /// Runs one step.
    pub async fn execute(&self, request: Request) -> Response {
        let (db, store, cfg) = (&self.db, &self.store, &self.cfg);
        let done = |r: std::result::Result<Value, JobError>| {
            Response::Done(r.map_err(|JobError(code, message)| (code, message)))
        };
        match request {
            Request::Compile(job) => match compile(db, store, cfg, &job).await {
                Ok(CompileOutcome::One(c)) => {
                    let bytes = c.settings.plan.prove_memory_bytes;
                    *self.compiled.lock().await = Some(*c);
                    Response::Compiled(bytes)
                }
                Ok(CompileOutcome::Segments(children)) => Response::FanOut(children.into()),
                Err(e) => done(Err(e)),
            },
            Request::Keygen(job) => {
                let compiled = self.compiled.lock().await.take();
                match compiled.filter(|c| c.job_id == job.id) {
                    Some(c) => done(keygen(db, store, cfg, &job, c).await),
                    None => done(Err(JobError::internal(format!(
                        "keygen of job {} without its compiled model",
                        job.id
                    )))),
                }
            }
            Request::Run(job) => {
                use crate::queue::JobKind;
                let lock = &self.cache_lock;
                let assemble = job.step.as_deref() == Some(queue::ASSEMBLE);
                match job.kind {
                    JobKind::Prove if assemble => {
                        done(segmented::assemble_proof(db, store, cfg, lock, &job).await)
                    }
                    JobKind::Prove => match prove(db, store, cfg, lock, &job).await {
                        Ok(Proved::Done(v)) => Response::Done(Ok(v)),
                        Ok(Proved::FanOut(out)) => Response::FanOut(out),
                        Err(e) => done(Err(e)),
                    },
                    JobKind::FheRun => Response::Done(crate::fhe::run(db, store, cfg, &job).await),
                    JobKind::Setup if assemble => {
                        done(segmented::assemble_setup(db, store, &job).await)
                    }
                    JobKind::Setup => done(Err(JobError::internal(
                        "a setup job runs as compile and keygen".into(),
                    ))),
                    JobKind::SetupSegment => {
                        done(segmented::setup_segment(db, store, cfg, &job).await)
                    }
                    JobKind::ProveSegment => {
                        done(segmented::prove_segment(db, store, cfg, lock, &job).await)
                    }
                }
            }
        }
    }
}

/// A job's failure: an error code and a message for the client.
pub(crate) struct JobError(pub(crate) String, pub(crate) String);

impl JobError {
    pub(crate) fn internal(message: String) -> Self {
        JobError("internal".into(), message)
    }
}

/// A scratch folder for one job, in the worker's data dir (removed when dropped).
pub(crate) fn scratch(cfg: &WorkerConfig) -> std::result::Result<tempfile::TempDir, JobError> {
    tempfile::tempdir_in(&cfg.data_dir).map_err(|e| JobError::internal(format!("scratch dir: {e}")))
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        JobError::internal(e.to_string())
    }
}

pub(crate) fn prover_error(e: ProverError) -> JobError {
    let code = match &e {
        ProverError::Circuit(
            zkinfer_circuits::CircuitError::TooLarge(_)
            | zkinfer_circuits::CircuitError::OverMemory { .. },
        ) => "model_too_large",
        ProverError::Model(_) => "invalid_input",
        ProverError::GpuOutOfMemory(_) => "gpu_out_of_memory",
        ProverError::NotLike(_) => "not_like",
        _ => "failed",
    };
    JobError(code.into(), e.to_string())
}

/// Records the phase job `job` is in; a failure to record it does not stop the job.
pub(crate) async fn phase(db: &Db, cfg: &WorkerConfig, job: &Claimed, phase: &str) {
    if let Err(e) = queue::set_phase(db, &job.id, &cfg.name, phase).await {
        tracing::warn!(job = %job.id, "recording phase {phase}: {e}");
    }
}

/// What compiling a setup job's model made.
enum CompileOutcome {
    /// One circuit, waiting for its keys.
    One(Box<Compiled>),
    /// Segments, stored: the job waits for these children to make their keys.
    Segments(Vec<queue::Child>),
}

/// A setup job's model, compiled and waiting for its keys.
struct Compiled {
    job_id: String,
    work: tempfile::TempDir,
    upload: Upload,
    settings: Settings,
    started: Instant,
}

/// Compiles a setup job's model (planned for the largest worker seen) into a scratch folder
/// kept for [`keygen`]; or, cut into segments (asked for, or as no one circuit fits), stores
/// them and returns the children that make their keys.
async fn compile(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    job: &Claimed,
) -> std::result::Result<CompileOutcome, JobError> {
    models::set_state(db, &job.model_id, "running", None, None, None).await?;
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
    let mut opts: CompileOptions = cfg.ceilings.compile_options(&upload.options, largest);
    if let Some(sibling) = &upload.like {
        let like = work.path().join("like");
        std::fs::create_dir_all(&like)
            .map_err(|e| JobError::internal(format!("scratch folder: {e}")))?;
        write(
            &like.join(files::SETTINGS),
            &store.get(&sibling.settings).await?,
        )?;
        write(
            &like.join(files::QGRAPH),
            &store.get(&sibling.qgraph).await?,
        )?;
        opts.like = Some(like);
    }
    let started = Instant::now();
    phase(db, cfg, job, "compiling").await;
    let segments = upload.options.segments;
    let d = dir.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        zkinfer_prover::segments::compile_or_segment(&onnx, &calibration, &d, &opts, segments)
    })
    .await
    .map_err(|e| JobError::internal(format!("compile task: {e}")))?
    .map_err(prover_error)?;
    match compiled {
        zkinfer_prover::segments::Compiled::One(settings) => {
            Ok(CompileOutcome::One(Box::new(Compiled {
                job_id: job.id.clone(),
                work,
                upload,
                settings: *settings,
                started,
            })))
        }
        zkinfer_prover::segments::Compiled::Segments(file) => {
            phase(db, cfg, job, "storing").await;
            let children = segmented::store_compiled(store, cfg, &dir, &file).await?;
            Ok(CompileOutcome::Segments(children))
        }
    }
}

/// Compiles the FHE program (if asked for), makes the keys of a compiled model and stores
/// the folder; returns the model's summary and artifacts.
async fn keygen(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    job: &Claimed,
    compiled: Compiled,
) -> std::result::Result<Value, JobError> {
    let Compiled {
        work,
        upload,
        settings,
        started,
        ..
    } = compiled;
    let dir = work.path().join("model");
    let onnx = work.path().join("network.onnx");
    let calibration = work.path().join("calibration-input.json");
    let srs = cfg.srs.clone();
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
    // With a ceremony file both sibling and model are set up on it; without one, on the
    // sibling's SRS (a fresh one would give another verifying key).
    let like = match (&upload.like, &srs) {
        (Some(sibling), None) => {
            let like = work.path().join("like");
            write(&like.join(files::SRS), &store.get(&sibling.srs).await?)?;
            write(&like.join(files::KEYS), &store.get(&sibling.keys).await?)?;
            Some(like)
        }
        _ => None,
    };
    let d = dir.clone();
    let report = tokio::task::spawn_blocking(move || match like {
        Some(like) => pipeline::setup_like(&d, &like),
        None => pipeline::setup(&d, srs.as_deref()),
    })
    .await
    .map_err(|e| JobError::internal(format!("setup task: {e}")))?
    .map_err(prover_error)?;
    let setup_ms = started.elapsed().as_millis() as u64;
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
            "output_visibility": p.output_visibility,
            "weights": settings.weights,
            "weight_commitment": settings.weight_commitment,
            "architecture_id": report.architecture_id,
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
    let names: Vec<String> = FOLDER_FILES.iter().map(|n| n.to_string()).collect();
    materialize_files(store, data_dir, cache_lock, model_id, &names, artifacts).await
}

/// Files `names` of a model's artifacts (paths in its folder) in this process's disk cache,
/// as folder `cache_name`, fetched from the store if missing (then the flag is true).
pub(crate) async fn materialize_files(
    store: &Store,
    data_dir: &Path,
    cache_lock: &Mutex<()>,
    cache_name: &str,
    names: &[String],
    artifacts: &Value,
) -> Result<(PathBuf, bool)> {
    let model_id = cache_name;
    let dir = data_dir.join("models").join(cache_name);
    let _guard = cache_lock.lock().await;
    // The folder is renamed into place whole: one file of it present means all are.
    let marker = names.first().map(String::as_str).unwrap_or(files::SETTINGS);
    if dir.join(marker).exists() {
        return Ok((dir, false));
    }
    // Fetched into a scratch folder and renamed, so a half-fetched folder is never used.
    std::fs::create_dir_all(data_dir.join("models"))
        .map_err(|e| Error::Config(format!("cache dir: {e}")))?;
    let tmp = tempfile::tempdir_in(data_dir.join("models"))
        .map_err(|e| Error::Config(format!("cache dir: {e}")))?;
    for name in names {
        let key = artifacts[name.as_str()]
            .as_str()
            .ok_or_else(|| Error::NotFound(format!("artifact {name} of model {model_id}")))?;
        let path = tmp.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Config(format!("cache dir: {e}")))?;
        }
        std::fs::write(path, store.get(key).await?)
            .map_err(|e| Error::Config(format!("cache write: {e}")))?;
    }
    let fetched = tmp.keep();
    if let Err(e) = std::fs::rename(&fetched, &dir) {
        // Another process (each worker loop's job runner has its own) fetched it first.
        let _ = std::fs::remove_dir_all(&fetched);
        if !dir.join(marker).exists() {
            return Err(Error::Config(format!("cache rename: {e}")));
        }
    }
    Ok((dir, true))
}

/// What a proof job's run made.
enum Proved {
    /// The proof.
    Done(Value),
    /// A segmented model's proof: the job waits for its children, one per segment.
    FanOut(queue::FanOut),
}

async fn prove(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    cache_lock: &Mutex<()>,
    job: &Claimed,
) -> std::result::Result<Proved, JobError> {
    if let Some(out) = segmented::fan_out_proof(db, store, cfg, cache_lock, job).await? {
        return Ok(Proved::FanOut(out));
    }
    let text = json!({ "input_data": job.payload["input_data"] }).to_string();
    let data = zkinfer_model::parse_input_json(&text)
        .map_err(|e| JobError("invalid_input".into(), e.to_string()))?;
    // Checked when the job was requested.
    let salt = match job.payload["salt"].as_str() {
        Some(s) => zkinfer_circuits::commit::parse_salt(s).ok_or_else(|| {
            JobError(
                "invalid_input".into(),
                "the salt is not a field element".into(),
            )
        })?,
        None => zkinfer_circuits::Fr::zero(),
    };
    let (prover, source, load_ms) = loaded(db, store, cfg, cache_lock, job).await?;
    phase(db, cfg, job, "proving").await;
    let t = Instant::now();
    let proof = tokio::task::spawn_blocking(move || prover.prove_salted(&data, salt))
        .await
        .map_err(|e| JobError::internal(format!("prove task: {e}")))?
        .map_err(prover_error)?;
    Ok(Proved::Done(json!({
        "proof_file": proof,
        "prove_ms": t.elapsed().as_millis() as u64,
        "load_ms": load_ms,
        "keys_from": source,
    })))
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

pub(crate) fn write(path: &Path, bytes: &[u8]) -> std::result::Result<(), JobError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| JobError::internal(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(|e| JobError::internal(format!("{}: {e}", path.display())))
}
