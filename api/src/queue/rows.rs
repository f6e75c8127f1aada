//! Jobs as their tenants see them: the stored row, its JSON (`GET /v1/jobs/{id}` and the body
//! of its callback), and the tenant's listing.

use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::db::Db;
use crate::error::{Error, Result};

/// A job's state as stored.
#[derive(Clone, Debug)]
pub struct JobRow {
    /// Its id.
    pub id: String,
    /// Its model's handle in the service (`md_…`).
    pub model_id: String,
    /// Its model's 64-hex model id (what proofs, verifiers and registries name), once the
    /// model is set up.
    pub circuit_id: Option<String>,
    /// What it does.
    pub kind: String,
    /// `queued`, `running`, `waiting` (for its segments), `succeeded`, `failed` or
    /// `cancelled`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The result, when it succeeded.
    pub result: Option<Value>,
    /// The error code, when it failed.
    pub error_code: Option<String>,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// When it was queued, started (first attempt) and ended, in ms since the epoch.
    pub times: (i64, Option<i64>, Option<i64>),
    /// Where its end is POSTed, with the delivery's state (`pending`, `delivered`, `failed`).
    pub callback: Option<(String, Option<String>)>,
    /// What it is doing (or last did): `compiling`, `fhe_compiling`, `keygen`, `storing`,
    /// `loading_keys`, `proving`, `evaluating`.
    pub phase: Option<String>,
    /// How far it is (`{"done", "total", "unit"}`), for jobs that count their steps.
    pub progress: Option<Value>,
}

impl JobRow {
    /// The job as clients see it (`GET /v1/jobs/{id}`, and the body of its callback).
    pub fn to_json(&self) -> Value {
        // `model` is the handle `/v1/models/{id}` takes; `model_id` is only ever the 64-hex id
        // (as in a model's JSON, proof files and contracts), so neither changes meaning when
        // the job ends.
        let mut v = json!({
            "id": self.id,
            "model": self.model_id,
            "kind": self.kind,
            "status": self.status,
            "phase": self.phase,
            "attempts": self.attempts,
            "timings": {
                "queued_ms": self.times.0,
                "started_ms": self.times.1,
                "finished_ms": self.times.2,
            },
        });
        if let Some(id) = &self.circuit_id {
            v["model_id"] = json!(id);
        }
        if let Some(code) = &self.error_code {
            v["error"] = json!({ "code": code, "message": self.error.clone().unwrap_or_default() });
        }
        if let Some(p) = &self.progress {
            v["progress"] = p.clone();
        }
        if let Some(r) = &self.result {
            if !r["fhe"].is_null() {
                v["fhe"] = r["fhe"].clone();
            }
            let p = &r["proof_file"];
            for field in [
                "outputs",
                "inputs",
                "instances",
                "proof",
                "model_id",
                "segments",
            ] {
                if !p[field].is_null() {
                    v[field] = p[field].clone();
                }
            }
            for timing in ["prove_ms", "evaluate_ms", "load_ms", "keys_from"] {
                if !r[timing].is_null() {
                    v["timings"][timing] = r[timing].clone();
                }
            }
        }
        v
    }
}

/// The columns [`job_row`] reads.
macro_rules! job_columns {
    () => {
        "id, model_id, kind, status, CAST(attempts AS BIGINT), result, error_code, error, \
         created_ms, started_ms, finished_ms, callback_url, callback_state, phase, progress, \
         (SELECT m.model_id FROM models m WHERE m.id = jobs.model_id)"
    };
}

fn job_row(row: &AnyRow) -> Result<JobRow> {
    let result: Option<String> = row.try_get(5)?;
    Ok(JobRow {
        id: row.try_get(0)?,
        model_id: row.try_get(1)?,
        kind: row.try_get(2)?,
        status: row.try_get(3)?,
        attempts: row.try_get(4)?,
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        error_code: row.try_get(6)?,
        error: row.try_get(7)?,
        times: (row.try_get(8)?, row.try_get(9)?, row.try_get(10)?),
        callback: row
            .try_get::<Option<String>, _>(11)?
            .map(|url| Ok::<_, Error>((url, row.try_get(12)?)))
            .transpose()?,
        phase: row.try_get(13)?,
        progress: row
            .try_get::<Option<String>, _>(14)?
            .and_then(|p| serde_json::from_str(&p).ok()),
        circuit_id: row.try_get(15)?,
    })
}

/// Job `id` of `tenant_id` (another tenant's job is not found).
pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Option<JobRow>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(job_row).transpose()
}

/// Which jobs [`list`] returns.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Only this model's (its handle, `md_…`).
    pub model: Option<String>,
    /// Only those of models with this 64-hex model id.
    pub model_id: Option<String>,
    /// Only in this state.
    pub status: Option<String>,
    /// Only those older than this (created ms, id): the last of the previous page.
    pub before: Option<(i64, String)>,
}

/// Jobs of `tenant_id`, newest first, at most `limit`.
pub async fn list(db: &Db, tenant_id: &str, f: &JobFilter, limit: i64) -> Result<Vec<JobRow>> {
    let (before_ms, before_id) = f.before.clone().unzip();
    let rows = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE tenant_id = $1 AND parent_id IS NULL \
         AND ($2 IS NULL OR model_id = $2) \
         AND ($3 IS NULL OR status = $3) \
         AND ($4 IS NULL OR created_ms < $4 OR (created_ms = $4 AND id < $5)) \
         AND ($7 IS NULL OR model_id IN \
              (SELECT m.id FROM models m WHERE m.tenant_id = $1 AND m.model_id = $7)) \
         ORDER BY created_ms DESC, id DESC LIMIT $6"
    ))
    .bind(tenant_id)
    .bind(f.model.as_deref())
    .bind(f.status.as_deref())
    .bind(before_ms)
    .bind(before_id)
    .bind(limit)
    .bind(f.model_id.as_deref())
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(job_row).collect()
}
