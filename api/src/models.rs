//! Model rows: a model is uploaded (its files go to the store), then compiled and set up by a
//! job; once ready it carries a summary (k, shapes, model id, SRS) and the store keys of its
//! compiled folder.

use serde_json::Value;
use sqlx::Row;

use crate::db::{new_id, now_ms, Db};
use crate::error::Result;

/// A model as stored.
#[derive(Clone, Debug)]
pub struct ModelRow {
    /// Its id.
    pub id: String,
    /// `queued`, `running`, `ready` or `failed`.
    pub status: String,
    /// Why it failed: a code and a message.
    pub error: Option<(String, String)>,
    /// What setup found (k, shapes, model id, SRS), once ready.
    pub summary: Option<Value>,
    /// File name → store key of the compiled folder, once ready.
    pub artifacts: Option<Value>,
    /// When it was uploaded (ms since the epoch).
    pub created_ms: i64,
}

/// Inserts a model of `tenant_id` in state `queued` (tests and the upload route); returns its id.
pub async fn create(db: &Db, tenant_id: &str) -> Result<String> {
    create_with_setup(db, tenant_id, &Value::Null, &Setup::default()).await
}

/// How a model's setup job is made.
#[derive(Clone, Debug, Default)]
pub struct Setup<'a> {
    /// Attempts before it fails for good (0: no setup job).
    pub max_attempts: i64,
    /// Where its end (the model ready or failed) is POSTed.
    pub callback_url: Option<&'a str>,
    /// What its compile is expected to need (see `crate::estimates`).
    pub memory_bytes: Option<u64>,
}

/// Inserts a model with its upload record and, in the same transaction, the job that compiles
/// and sets it up (`setup.max_attempts` > 0), so neither exists without the other. The setup
/// job's end, POSTed to its callback URL, tells when the model is ready or failed.
pub async fn create_with_setup(
    db: &Db,
    tenant_id: &str,
    upload: &Value,
    setup: &Setup<'_>,
) -> Result<String> {
    let id = new_id("md");
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO models (id, tenant_id, status, upload, created_ms, updated_ms) \
         VALUES ($1, $2, 'queued', $3, $4, $4)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(upload.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if setup.max_attempts > 0 {
        sqlx::query(
            "INSERT INTO jobs (id, tenant_id, model_id, kind, status, payload, max_attempts, \
             created_ms, callback_url, memory_bytes) \
             VALUES ($1, $2, $3, 'setup', 'queued', $4, $5, $6, $7, $8)",
        )
        .bind(new_id("jb"))
        .bind(tenant_id)
        .bind(&id)
        .bind(upload.to_string())
        .bind(setup.max_attempts)
        .bind(now)
        .bind(setup.callback_url)
        .bind(
            setup
                .memory_bytes
                .map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(id)
}

fn row_to_model(row: &sqlx::any::AnyRow) -> Result<ModelRow> {
    let code: Option<String> = row.try_get(2)?;
    let message: Option<String> = row.try_get(3)?;
    let json = |i: usize| -> Result<Option<Value>> {
        let text: Option<String> = row.try_get(i)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(ModelRow {
        id: row.try_get(0)?,
        status: row.try_get(1)?,
        error: code.map(|c| (c, message.unwrap_or_default())),
        summary: json(4)?,
        artifacts: json(5)?,
        created_ms: row.try_get(6)?,
    })
}

/// Model `id` of `tenant_id` (another tenant's model is not found).
pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Option<ModelRow>> {
    let row = sqlx::query(
        "SELECT id, status, error_code, error, summary, artifacts, created_ms FROM models \
         WHERE id = $1 AND tenant_id = $2 AND status <> 'deleted'",
    )
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(row_to_model).transpose()
}

/// The status of model `id` of `tenant_id`.
pub async fn status(db: &Db, tenant_id: &str, id: &str) -> Result<Option<String>> {
    Ok(get(db, tenant_id, id).await?.map(|m| m.status))
}

/// The models of `tenant_id`, newest first, at most `limit`, older than `before` (the
/// created ms and id of the previous page's last).
pub async fn list(
    db: &Db,
    tenant_id: &str,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<ModelRow>> {
    let (before_ms, before_id) = before.unzip();
    let rows = sqlx::query(
        "SELECT id, status, error_code, error, summary, artifacts, created_ms FROM models \
         WHERE tenant_id = $1 AND status <> 'deleted' \
         AND ($2 IS NULL OR created_ms < $2 OR (created_ms = $2 AND id < $3)) \
         ORDER BY created_ms DESC, id DESC LIMIT $4",
    )
    .bind(tenant_id)
    .bind(before_ms)
    .bind(before_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(row_to_model).collect()
}

/// Marks a model running, ready (with its summary and artifacts) or failed.
pub async fn set_state(
    db: &Db,
    id: &str,
    status: &str,
    summary: Option<&Value>,
    artifacts: Option<&Value>,
    error: Option<(&str, &str)>,
) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    set_state_in(&mut tx, id, status, summary, artifacts, error).await?;
    tx.commit().await?;
    Ok(())
}

/// [`set_state`] within a transaction.
pub async fn set_state_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    status: &str,
    summary: Option<&Value>,
    artifacts: Option<&Value>,
    error: Option<(&str, &str)>,
) -> Result<()> {
    let (code, message) = error.unzip();
    sqlx::query(
        "UPDATE models SET status = $1, summary = $2, artifacts = $3, error_code = $4, error = $5, \
         updated_ms = $6, model_id = $8 WHERE id = $7 AND status <> 'deleted'",
    )
    .bind(status)
    .bind(summary.map(Value::to_string))
    .bind(artifacts.map(Value::to_string))
    .bind(code)
    .bind(message)
    .bind(now_ms())
    .bind(id)
    .bind(summary.and_then(|s| s["model_id"].as_str()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes model `id` of `tenant_id`: it is no longer shown or proven, and its queued jobs
/// are cancelled; jobs already running finish. False if there is no such model.
pub async fn delete(db: &Db, tenant_id: &str, id: &str) -> Result<bool> {
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "UPDATE models SET status = 'deleted', updated_ms = $1 \
         WHERE id = $2 AND tenant_id = $3 AND status <> 'deleted'",
    )
    .bind(now)
    .bind(id)
    .bind(tenant_id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 1 {
        // Jobs, then their segments' jobs: the lock order of `queue::fan_out`.
        let mut counts = crate::counters::Adds::default();
        for children in [0i64, 1] {
            let cancelled = sqlx::query(
                "UPDATE jobs SET status = 'cancelled', finished_ms = $1, \
                 callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, \
                 callback_next_ms = $1 \
                 WHERE model_id = $2 AND status IN ('queued', 'waiting') \
                 AND (CASE WHEN parent_id IS NULL THEN 0 ELSE 1 END) = $3 RETURNING kind",
            )
            .bind(now)
            .bind(id)
            .bind(children)
            .fetch_all(&mut *tx)
            .await?;
            for job in cancelled {
                counts.job_ended(&job.try_get::<String, _>(0)?, "cancelled");
            }
        }
        counts.write(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}
