//! Jobs of a segmented model: its setup and each of its proofs fan out one child job per
//! segment, claimed like any job by a worker whose free memory fits that segment. The parent
//! waits (status `waiting`: no worker, no lease, nothing to expire) while its children run;
//! the transaction that ends a child also settles the parent: the last success queues it
//! again for its `assemble` step, a child that fails for good fails it (and cancels the
//! children still queued). Two children ending at once cannot both miss being the last: the
//! parent's row serializes them.
//!
//! Lock order: every transaction that writes more than one of them locks the model's row,
//! then the parent's, then the children's ([`lock_family`] before a child's row is written;
//! deleting a model writes its parents before their children), so none waits for another
//! in a cycle.

use serde_json::{json, Value};
use sqlx::{Any, Row, Transaction};

use super::JobKind;
use crate::counters::Adds;
use crate::db::{new_id, now_ms, Db};
use crate::error::Result;

/// A child job a fan-out makes; its segment is its place in the list.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Child {
    /// What it does (`setup_segment` or `prove_segment`).
    pub kind: JobKind,
    /// Its parameters.
    pub payload: Value,
    /// Its estimated memory in bytes.
    pub memory_bytes: Option<i64>,
}

/// What a parent job waits for: its children, and what its `assemble` step will read.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FanOut {
    /// One per segment, in order.
    pub children: Vec<Child>,
    /// The parent's new payload, if it changes (a proof keeps its model's outputs from the
    /// evaluation that gave the children their inputs).
    pub payload: Option<Value>,
}

impl From<Vec<Child>> for FanOut {
    fn from(children: Vec<Child>) -> Self {
        FanOut {
            children,
            payload: None,
        }
    }
}

/// The step a parent is queued again for once every child has succeeded.
pub const ASSEMBLE: &str = "assemble";

/// Parent job `id`, held by `worker`, waits for `out.children`, which are queued in the same
/// transaction (with the parent's tenant, model and attempts; its payload replaced by
/// `out.payload`, if any). False (nothing written) if
/// the worker no longer holds it.
/// A deleted model's job (deleting lets running jobs finish) is cancelled instead of fanned
/// out, and false is returned.
pub async fn fan_out(db: &Db, id: &str, worker: &str, out: &FanOut) -> Result<bool> {
    let children = &out.children;
    if children.is_empty() {
        return Err(crate::Error::Config(format!(
            "job {id}: a fan-out without children would wait for ever"
        )));
    }
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let live = sqlx::query(
        "UPDATE models SET updated_ms = updated_ms \
         WHERE id = (SELECT model_id FROM jobs WHERE id = $1) AND status <> 'deleted' \
         RETURNING id",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if live.is_none() {
        let cancelled = sqlx::query(
            "UPDATE jobs SET status = 'cancelled', finished_ms = $3, lease_until_ms = NULL, \
             phase = NULL, \
             callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, \
             callback_next_ms = $3 \
             WHERE id = $1 AND worker = $2 AND status = 'running' RETURNING kind",
        )
        .bind(id)
        .bind(worker)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let mut counts = Adds::default();
        if let Some(row) = cancelled {
            counts.job_ended(&row.try_get::<String, _>(0)?, "cancelled");
        }
        counts.write(&mut tx).await?;
        tx.commit().await?;
        return Ok(false);
    }
    let parent = sqlx::query(
        "UPDATE jobs SET status = 'waiting', lease_until_ms = NULL, phase = NULL, \
         segments_left = $3, progress = $4, payload = COALESCE($5, payload) \
         WHERE id = $1 AND worker = $2 AND status = 'running' \
         RETURNING tenant_id, model_id, CAST(max_attempts AS BIGINT)",
    )
    .bind(id)
    .bind(worker)
    .bind(children.len() as i64)
    .bind(progress(0, children.len()).to_string())
    .bind(out.payload.as_ref().map(Value::to_string))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(parent) = parent else {
        return Ok(false);
    };
    let (tenant, model, attempts): (String, String, i64) =
        (parent.try_get(0)?, parent.try_get(1)?, parent.try_get(2)?);
    for (segment, child) in children.iter().enumerate() {
        sqlx::query(
            "INSERT INTO jobs (id, tenant_id, model_id, kind, status, payload, max_attempts, \
             created_ms, memory_bytes, parent_id, segment) \
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10)",
        )
        .bind(new_id("jb"))
        .bind(&tenant)
        .bind(&model)
        .bind(child.kind.as_str())
        .bind(child.payload.to_string())
        .bind(attempts)
        .bind(now)
        .bind(child.memory_bytes)
        .bind(id)
        .bind(segment as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

fn progress(done: usize, total: usize) -> Value {
    json!({ "done": done, "total": total, "unit": "segments" })
}

/// Locks, in the order every writer takes, the rows that ending job `id` will write besides
/// its own, if it is a child: its model's, then its parent's. Call it before the child's
/// row is written.
pub(crate) async fn lock_family(tx: &mut Transaction<'_, Any>, id: &str) -> Result<()> {
    // No-op writes take the row locks (a portable `SELECT … FOR UPDATE`); both are writes
    // from the start, so SQLite takes its write lock at once (a read first would have to
    // upgrade, which fails at once when another connection writes).
    sqlx::query(
        "UPDATE models SET updated_ms = updated_ms \
         WHERE id = (SELECT model_id FROM jobs WHERE id = $1 AND parent_id IS NOT NULL)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE jobs SET segments_left = segments_left \
         WHERE id = (SELECT parent_id FROM jobs WHERE id = $1)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Cancels queued children whose parent no longer waits for them (it failed or was
/// cancelled while they ran; a lease that expired or a worker that stopped put them back):
/// nobody would use their work. Returns how many.
pub(crate) async fn cancel_orphans(
    tx: &mut Transaction<'_, Any>,
    now: i64,
    counts: &mut Adds,
) -> Result<u64> {
    let rows = sqlx::query(
        "UPDATE jobs SET status = 'cancelled', finished_ms = $1 \
         WHERE status = 'queued' AND parent_id IS NOT NULL AND EXISTS \
         (SELECT 1 FROM jobs p WHERE p.id = jobs.parent_id AND p.status <> 'waiting') \
         RETURNING kind",
    )
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    for row in &rows {
        counts.job_ended(&row.try_get::<String, _>(0)?, "cancelled");
    }
    Ok(rows.len() as u64)
}

/// How a child ended, for its parent.
pub(crate) enum ChildEnd<'a> {
    /// It succeeded.
    Succeeded,
    /// It failed for good: its error code and message.
    Failed(&'a str, &'a str),
}

/// Settles parent `parent` of a child (segment `segment`) that ended in `tx`: counts a
/// success, queuing the parent for [`ASSEMBLE`] when it was the last; or fails the parent
/// (and a setup's model) with the child's error and cancels its queued children. A parent
/// no longer waiting (failed, cancelled, its model deleted) is left as it is.
pub(crate) async fn settle(
    tx: &mut Transaction<'_, Any>,
    parent: &str,
    segment: i64,
    end: ChildEnd<'_>,
    counts: &mut Adds,
) -> Result<()> {
    match end {
        ChildEnd::Succeeded => {
            let left = sqlx::query(
                "UPDATE jobs SET segments_left = segments_left - 1 \
                 WHERE id = $1 AND status = 'waiting' RETURNING CAST(segments_left AS BIGINT)",
            )
            .bind(parent)
            .fetch_optional(&mut **tx)
            .await?;
            let Some(left) = left else {
                return Ok(());
            };
            let left: i64 = left.try_get(0)?;
            let total: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE parent_id = $1",
            )
            .bind(parent)
            .fetch_one(&mut **tx)
            .await?;
            let done = (total - left).max(0) as usize;
            // The assemble step gets attempts of its own: its children used theirs.
            sqlx::query(
                "UPDATE jobs SET progress = $2, \
                 status = CASE WHEN segments_left <= 0 THEN 'queued' ELSE status END, \
                 step = CASE WHEN segments_left <= 0 THEN $3 ELSE step END, \
                 attempts = CASE WHEN segments_left <= 0 THEN 0 ELSE attempts END \
                 WHERE id = $1",
            )
            .bind(parent)
            .bind(progress(done, total as usize).to_string())
            .bind(ASSEMBLE)
            .execute(&mut **tx)
            .await?;
        }
        ChildEnd::Failed(code, message) => {
            let now = now_ms();
            let failed = sqlx::query(
                "UPDATE jobs SET status = 'failed', error_code = $2, error = $3, \
                 finished_ms = $4, segments_left = NULL, \
                 callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, \
                 callback_next_ms = $4 \
                 WHERE id = $1 AND status = 'waiting' RETURNING kind, model_id",
            )
            .bind(parent)
            .bind(code)
            .bind(format!("segment {segment}: {message}"))
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
            let Some(failed) = failed else {
                return Ok(());
            };
            let (kind, model): (String, String) = (failed.try_get(0)?, failed.try_get(1)?);
            counts.job_ended(&kind, "failed");
            if kind == JobKind::Setup.as_str() {
                let why = format!("segment {segment}: {message}");
                crate::models::set_state_in(tx, &model, "failed", None, None, Some((code, &why)))
                    .await?;
            }
            cancel_children(tx, parent, now, counts).await?;
        }
    }
    Ok(())
}

/// Cancels the queued children of `parent` (running ones finish; their parent is no longer
/// waiting for them).
pub(crate) async fn cancel_children(
    tx: &mut Transaction<'_, Any>,
    parent: &str,
    now: i64,
    counts: &mut Adds,
) -> Result<()> {
    let rows = sqlx::query(
        "UPDATE jobs SET status = 'cancelled', finished_ms = $2 \
         WHERE parent_id = $1 AND status = 'queued' RETURNING kind",
    )
    .bind(parent)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        counts.job_ended(&row.try_get::<String, _>(0)?, "cancelled");
    }
    Ok(())
}

/// A child job as its parent's assemble step reads it.
#[derive(Clone, Debug)]
pub struct ChildRow {
    /// Its segment.
    pub segment: i64,
    /// Its status.
    pub status: String,
    /// Its parameters.
    pub payload: Value,
    /// Its result, once it succeeded.
    pub result: Option<Value>,
}

/// The children of job `parent`, by segment.
pub async fn children(db: &Db, parent: &str) -> Result<Vec<ChildRow>> {
    let rows = sqlx::query(
        "SELECT CAST(segment AS BIGINT), status, payload, result FROM jobs \
         WHERE parent_id = $1 ORDER BY segment",
    )
    .bind(parent)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let payload: String = r.try_get(2)?;
            let result: Option<String> = r.try_get(3)?;
            Ok(ChildRow {
                segment: r.try_get(0)?,
                status: r.try_get(1)?,
                payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
                result: result.and_then(|t| serde_json::from_str(&t).ok()),
            })
        })
        .collect()
}
