//! Encrypted inference in the service: server keys clients upload for a model's FHE program
//! (rows here, bytes in the store), the loaded keys a worker keeps, and the `fhe_run` job that
//! evaluates the program on an uploaded ciphertext and stores the encrypted result.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Row;
use tokio::sync::Mutex;
use zkinfer_fhe::folder::{FheFile, Outcome, FHE_FILE};
use zkinfer_fhe::{FheError, FheProgram, Header, ServerSide};

use crate::db::{new_id, now_ms, Db};
use crate::error::Result;
use crate::executor::phase;
use crate::lru::Lru;
use crate::models;
use crate::queue::{self, Claimed};
use crate::store::Store;
use crate::worker::WorkerConfig;

/// An uploaded server key.
#[derive(Clone, Debug)]
pub struct FheKeyRow {
    /// Its id (`fk_…`).
    pub id: String,
    /// The model it was made for.
    pub model_id: String,
    /// The key set's id (shared with the client key and every ciphertext of the set).
    pub key_set_id: String,
    /// sha256 of the FHE program it was made for.
    pub program_sha256: String,
    /// Where its bytes are.
    pub store_key: String,
    /// Its size.
    pub bytes: i64,
    /// When it was uploaded (ms since the epoch).
    pub created_ms: i64,
}

impl FheKeyRow {
    /// The key as clients see it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "model_id": self.model_id,
            "key_set_id": self.key_set_id,
            "program_sha256": self.program_sha256,
            "bytes": self.bytes,
            "created_ms": self.created_ms,
        })
    }
}

/// Records a server key of `tenant_id` for `model_id` whose bytes are at `store_key`.
pub async fn insert_key(
    db: &Db,
    tenant_id: &str,
    model_id: &str,
    header: &Header,
    store_key: &str,
    bytes: usize,
) -> Result<FheKeyRow> {
    let row = FheKeyRow {
        id: new_id("fk"),
        model_id: model_id.to_string(),
        key_set_id: header.key_id.clone(),
        program_sha256: header.program_sha256.clone(),
        store_key: store_key.to_string(),
        bytes: bytes as i64,
        created_ms: now_ms(),
    };
    sqlx::query(
        "INSERT INTO fhe_keys (id, tenant_id, model_id, key_set_id, program_sha256, store_key, \
         bytes, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(tenant_id)
    .bind(&row.model_id)
    .bind(&row.key_set_id)
    .bind(&row.program_sha256)
    .bind(&row.store_key)
    .bind(row.bytes)
    .bind(row.created_ms)
    .execute(&db.pool)
    .await?;
    Ok(row)
}

/// Server key `id` of `tenant_id` for `model_id` (another tenant's or model's is not found).
pub async fn get_key(
    db: &Db,
    tenant_id: &str,
    model_id: &str,
    id: &str,
) -> Result<Option<FheKeyRow>> {
    let row = sqlx::query(
        "SELECT id, model_id, key_set_id, program_sha256, store_key, bytes, created_ms \
         FROM fhe_keys WHERE id = $1 AND tenant_id = $2 AND model_id = $3",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(model_id)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(FheKeyRow {
            id: r.try_get(0)?,
            model_id: r.try_get(1)?,
            key_set_id: r.try_get(2)?,
            program_sha256: r.try_get(3)?,
            store_key: r.try_get(4)?,
            bytes: r.try_get(5)?,
            created_ms: r.try_get(6)?,
        })
    })
    .transpose()
}

/// What a model's summary says of its FHE program (`fhe` of `GET /v1/models/{id}`).
pub fn summary(file: Option<&FheFile>) -> Value {
    match file.map(|f| &f.outcome) {
        None => json!({ "available": false, "reason": "not requested at upload (\"fhe\": false)" }),
        Some(Outcome::Refused { reason }) => json!({ "available": false, "reason": reason }),
        Some(Outcome::Compiled {
            program,
            stats,
            chosen,
            ..
        }) => json!({
            "available": true,
            "params": program.params.name(),
            "security_bits": zkinfer_fhe::SECURITY_BITS,
            "program_sha256": program.sha256(),
            "bootstraps": stats.bootstraps,
            "input_ciphertexts": stats.input_ciphertexts,
            "output_ciphertexts": stats.output_ciphertexts,
            "log2_p_fail_sample": stats.log2_p_fail_sample,
            "rms_error": chosen.rms_error,
            "top1_agreement": chosen.top1_agreement,
        }),
    }
}

/// A model's stored `fhe.json` bytes and its program; [`FheError::DoesNotFit`] (with the
/// reason) when the model has none.
pub async fn stored_program(
    store: &Store,
    artifacts: &Value,
    model_id: &str,
) -> Result<(Vec<u8>, FheProgram), FheError> {
    let what = format!("model {model_id}");
    let key = artifacts[FHE_FILE].as_str().ok_or_else(|| {
        FheError::DoesNotFit(format!(
            "{what} was uploaded without an FHE program (\"fhe\": false)"
        ))
    })?;
    let bytes = store.get(key).await.map_err(|e| FheError::File {
        path: format!("{what}: {FHE_FILE}"),
        why: e.to_string(),
    })?;
    let program = FheFile::from_slice(&bytes, &what)?.into_program(&what)?;
    Ok((bytes, program))
}

/// Server keys loaded (decompressed, tables prepared), most recently used last: loading an m3c3
/// key takes seconds and its decompressed form is large, so a worker keeps a few.
pub struct ServerKeys {
    loaded: Lru<ServerSide>,
    /// One load at a time, so two loops missing the same key load it once.
    loading: Mutex<()>,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("capacity", &self.loaded.capacity())
            .field("keys", &self.keys())
            .finish()
    }
}

impl ServerKeys {
    /// Room for `capacity` loaded keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            loaded: Lru::new(capacity),
            loading: Mutex::new(()),
        }
    }

    fn get(&self, key_id: &str) -> Option<Arc<ServerSide>> {
        self.loaded.get(key_id)
    }

    fn insert(&self, key_id: &str, s: Arc<ServerSide>) {
        self.loaded.insert(key_id, s)
    }

    /// Ids of the keys loaded, least recently used first.
    pub fn keys(&self) -> Vec<String> {
        self.loaded.names()
    }
}

/// Why an FHE run failed: a code for the client and a message.
pub(crate) fn run_error(e: FheError) -> (String, String) {
    let code = match &e {
        FheError::Mismatch(_) => "fhe_mismatch",
        FheError::File { .. } => "invalid_ciphertext",
        FheError::DoesNotFit(_) => "fhe_unavailable",
        _ => "failed",
    };
    (code.to_string(), e.to_string())
}

/// Runs an `fhe_run` job: loads the server key it names (from this process's memory or the
/// store), evaluates the model's program on the stored ciphertext with progress recorded as
/// bootstraps done, and stores the encrypted result.
pub(crate) async fn run(
    db: &Db,
    store: &Store,
    cfg: &WorkerConfig,
    job: &Claimed,
) -> std::result::Result<Value, (String, String)> {
    let (keys, worker) = (&cfg.keys.fhe, cfg.name.as_str());
    let internal = |m: String| ("internal".to_string(), m);
    let key_id = job.payload["key_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ct_key = job.payload["ciphertext"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let model = models::get(db, &job.tenant_id, &job.model_id)
        .await
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| ("model_not_found".into(), "the model was deleted".into()))?;
    let artifacts = model.artifacts.ok_or_else(|| {
        (
            "model_not_ready".to_string(),
            "the model is not set up".to_string(),
        )
    })?;
    let t = Instant::now();
    let (server, keys_from) = match keys.get(&key_id) {
        Some(s) => (s, "memory"),
        None => {
            let _loading = keys.loading.lock().await;
            match keys.get(&key_id) {
                Some(s) => (s, "memory"),
                None => {
                    phase(db, cfg, job, "loading_keys").await;
                    let row = get_key(db, &job.tenant_id, &job.model_id, &key_id)
                        .await
                        .map_err(|e| internal(e.to_string()))?
                        .ok_or_else(|| {
                            (
                                "fhe_key_not_found".to_string(),
                                format!("no server key {key_id}"),
                            )
                        })?;
                    let (_, program) = stored_program(store, &artifacts, &job.model_id)
                        .await
                        .map_err(run_error)?;
                    let bytes = store
                        .get(&row.store_key)
                        .await
                        .map_err(|e| internal(e.to_string()))?;
                    let what = format!("server key {key_id}");
                    let server = tokio::task::spawn_blocking(move || {
                        ServerSide::load(program, &bytes, &what)
                    })
                    .await
                    .map_err(|e| internal(format!("load task: {e}")))?
                    .map_err(run_error)?;
                    let server = Arc::new(server);
                    keys.insert(&key_id, server.clone());
                    (server, "store")
                }
            }
        }
    };
    let load_ms = t.elapsed().as_millis() as u64;
    let ct = store
        .get(&ct_key)
        .await
        .map_err(|e| internal(e.to_string()))?;
    phase(db, cfg, job, "evaluating").await;
    let done = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    // The bootstraps run on rayon's threads; their count reaches the database once a second.
    let reporter = {
        let (db, id, worker) = (db.clone(), job.id.clone(), worker.to_string());
        let (done, total) = (done.clone(), total.clone());
        tokio::spawn(async move {
            let mut last = usize::MAX;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let d = done.load(Ordering::Relaxed);
                if d != last {
                    last = d;
                    let p = progress_json(d, total.load(Ordering::Relaxed));
                    if let Err(e) = queue::set_progress(&db, &id, &worker, &p).await {
                        tracing::warn!(job = %id, "recording progress: {e}");
                    }
                }
            }
        })
    };
    let t = Instant::now();
    let what = format!("ciphertext of job {}", job.id);
    let evaluated = {
        let (done, total) = (done.clone(), total.clone());
        tokio::task::spawn_blocking(move || {
            server.run(&ct, &what, &move |d, n| {
                done.store(d, Ordering::Relaxed);
                total.store(n, Ordering::Relaxed);
            })
        })
        .await
    };
    reporter.abort();
    let (result, report) = evaluated
        .map_err(|e| internal(format!("evaluate task: {e}")))?
        .map_err(run_error)?;
    let evaluate_ms = t.elapsed().as_millis() as u64;
    let _ = queue::set_progress(
        db,
        &job.id,
        worker,
        &progress_json(report.bootstraps, report.bootstraps),
    )
    .await;
    let result_bytes = result.len();
    let result_key = store
        .put(result)
        .await
        .map_err(|e| internal(e.to_string()))?;
    Ok(json!({
        "fhe": {
            "key_id": key_id,
            "bootstraps": report.bootstraps,
            "result_bytes": result_bytes,
        },
        "fhe_result": result_key,
        "evaluate_ms": evaluate_ms,
        "load_ms": load_ms,
        "keys_from": keys_from,
    }))
}

fn progress_json(done: usize, total: usize) -> Value {
    json!({ "done": done, "total": total, "unit": "bootstraps" })
}
