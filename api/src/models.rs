//! Model rows: a model is uploaded, then compiled and set up by a job.

use sqlx::Row;

use crate::db::{new_id, now_ms, Db};
use crate::error::Result;

/// Inserts a model of `tenant_id` in state `queued`; returns its id.
pub async fn create(db: &Db, tenant_id: &str) -> Result<String> {
    let id = new_id("md");
    let now = now_ms();
    sqlx::query(
        "INSERT INTO models (id, tenant_id, status, created_ms, updated_ms) VALUES ($1, $2, 'queued', $3, $3)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(id)
}

/// The status of model `id` of `tenant_id` (another tenant's model is not found).
pub async fn status(db: &Db, tenant_id: &str, id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT status FROM models WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}
