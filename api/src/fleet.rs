//! The workers seen lately, each with the memory it may give jobs: a model is refused as too
//! large only when it exceeds the largest of them, and one that fits a larger worker than
//! the one that compiled it waits for that worker.

use sqlx::Row;

use crate::db::{now_ms, Db};
use crate::error::Result;

/// Records that `worker` is alive and may give jobs up to `max_memory` bytes.
pub async fn heartbeat(db: &Db, worker: &str, max_memory: u64) -> Result<()> {
    let max = i64::try_from(max_memory).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO workers (name, max_memory_bytes, seen_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET max_memory_bytes = $2, seen_ms = $3",
    )
    .bind(worker)
    .bind(max)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Forgets `worker` (it stopped).
pub async fn leave(db: &Db, worker: &str) -> Result<()> {
    sqlx::query("DELETE FROM workers WHERE name = $1")
        .bind(worker)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The largest memory of any worker seen within the last `within_ms`, in bytes.
pub async fn largest_memory(db: &Db, within_ms: i64) -> Result<Option<u64>> {
    let row = sqlx::query(
        "SELECT CAST(MAX(max_memory_bytes) AS BIGINT) FROM workers WHERE seen_ms >= $1",
    )
    .bind(now_ms() - within_ms)
    .fetch_one(&db.pool)
    .await?;
    let max: Option<i64> = row.try_get(0)?;
    Ok(max.and_then(|m| u64::try_from(m).ok()))
}
