//! The job queue. A worker claims a queued job atomically (PostgreSQL: `FOR UPDATE SKIP
//! LOCKED`, so concurrent workers never wait on each other; SQLite: one `UPDATE … RETURNING`
//! under its single writer lock) and holds it under a lease it renews while it works. Claims
//! are fair across tenants: the next job is the oldest of a tenant with the fewest jobs
//! running, so one tenant's backlog never holds another's job behind more than one of its
//! own per worker.
//! Every later write names the worker, so a worker whose lease expired (and whose job another
//! took over) cannot finish it: each job completes exactly once.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::db::{new_id, now_ms, Backend, Db};
use crate::error::{Error, Result};

mod fan_out;
mod rows;

use fan_out::{cancel_orphans, lock_family, settle, ChildEnd};
pub use fan_out::{children, fan_out, Child, ChildRow, FanOut, ASSEMBLE};
pub use rows::{get, list, JobFilter, JobRow};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Compile and set up a model.
    Setup,
    /// Prove one inference.
    Prove,
    /// Evaluate the model's FHE program on encrypted inputs.
    FheRun,
    /// Make the keys of one segment of a segmented model (a setup job's child).
    SetupSegment,
    /// Prove one segment of a segmented model on one input (a proof job's child).
    ProveSegment,
}

impl JobKind {
    /// Its name in the database and in job JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Setup => "setup",
            JobKind::Prove => "prove",
            JobKind::FheRun => "fhe_run",
            JobKind::SetupSegment => "setup_segment",
            JobKind::ProveSegment => "prove_segment",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "setup" => Some(JobKind::Setup),
            "prove" => Some(JobKind::Prove),
            "fhe_run" => Some(JobKind::FheRun),
            "setup_segment" => Some(JobKind::SetupSegment),
            "prove_segment" => Some(JobKind::ProveSegment),
            _ => None,
        }
    }
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    /// The tenant.
    pub tenant_id: &'a str,
    /// The model.
    pub model_id: &'a str,
    /// What it does.
    pub kind: JobKind,
    /// Its parameters (the input, for a proof).
    pub payload: &'a Value,
    /// Attempts before it fails for good (a worker that dies uses one).
    pub max_attempts: i64,
    /// The client's `Idempotency-Key`, with the sha256 of the request it came with.
    pub idempotency: Option<(&'a str, &'a str)>,
    /// Where to POST the job when it ends.
    pub callback_url: Option<&'a str>,
    /// Its estimated memory, in bytes, when known.
    pub memory_bytes: Option<i64>,
}

/// The result of enqueueing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job.
    New(String),
    /// The job an earlier request with the same idempotency key and body made.
    Existing(String),
}

/// Enqueues `job`. A repeated idempotency key returns the first job if the request is the
/// same, and is a conflict if it is not.
pub async fn enqueue(db: &Db, job: &NewJob<'_>) -> Result<Enqueued> {
    let id = new_id("jb");
    let (key, hash) = job.idempotency.unzip();
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, tenant_id, model_id, kind, status, payload, max_attempts, \
         idempotency_key, request_hash, callback_url, created_ms, memory_bytes) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(job.tenant_id)
    .bind(job.model_id)
    .bind(job.kind.as_str())
    .bind(job.payload.to_string())
    .bind(job.max_attempts)
    .bind(key)
    .bind(hash)
    .bind(job.callback_url)
    .bind(now_ms())
    .bind(job.memory_bytes)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => Ok(Enqueued::New(id)),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() && key.is_some() => {
            let row = sqlx::query(
                "SELECT id, request_hash FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2",
            )
            .bind(job.tenant_id)
            .bind(key)
            .fetch_one(&db.pool)
            .await?;
            let (existing, existing_hash): (String, Option<String>) =
                (row.try_get(0)?, row.try_get(1)?);
            if existing_hash.as_deref() == hash {
                Ok(Enqueued::Existing(existing))
            } else {
                Err(Error::Conflict(format!(
                    "idempotency key {:?} (with another request)",
                    key.unwrap_or_default()
                )))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The job `tenant_id` made with idempotency key `key`, and the hash of its request.
pub async fn find_idempotent(
    db: &Db,
    tenant_id: &str,
    key: &str,
) -> Result<Option<(String, Option<String>)>> {
    let row = sqlx::query(
        "SELECT id, request_hash FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2",
    )
    .bind(tenant_id)
    .bind(key)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// A job a worker holds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Claimed {
    /// Its id.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Its model.
    pub model_id: String,
    /// What it does.
    pub kind: JobKind,
    /// Its parameters.
    pub payload: Value,
    /// This attempt's number, from 1.
    pub attempt: i64,
    /// Its estimated memory in bytes, when known.
    pub memory_bytes: Option<i64>,
    /// The step a parent job is queued again for once its children are done (`assemble`).
    pub step: Option<String>,
}

fn claimed(row: &AnyRow) -> Result<Claimed> {
    let kind: String = row.try_get(3)?;
    let payload: String = row.try_get(4)?;
    Ok(Claimed {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        model_id: row.try_get(2)?,
        kind: JobKind::parse(&kind).ok_or_else(|| Error::NotFound(format!("job kind {kind}")))?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        attempt: row.try_get(5)?,
        memory_bytes: row.try_get(6)?,
        step: row.try_get(7)?,
    })
}

/// Claims a queued job for `worker` among those whose estimated memory is at most
/// `free_memory` bytes (or not yet known), leased for `lease_ms`: the oldest of the tenants
/// with the fewest jobs running (a fan-out's segments, queued together, in segment order).
pub async fn claim(
    db: &Db,
    worker: &str,
    lease_ms: i64,
    free_memory: i64,
) -> Result<Option<Claimed>> {
    // Two literal statements (sqlx refuses SQL built at run time): they differ only in how
    // the oldest queued row is locked.
    let sql = match db.backend {
        Backend::Postgres => {
            "UPDATE jobs SET status = 'running', worker = $1, lease_until_ms = $2, \
             attempts = attempts + 1, started_ms = COALESCE(started_ms, $3) \
             WHERE id = (SELECT j.id FROM jobs j LEFT JOIN (SELECT tenant_id, COUNT(*) AS n \
             FROM jobs WHERE status = 'running' GROUP BY tenant_id) r \
             ON r.tenant_id = j.tenant_id WHERE j.status = 'queued' \
             AND (j.memory_bytes IS NULL OR j.memory_bytes <= $4) \
             AND (j.parent_id IS NULL OR EXISTS (SELECT 1 FROM jobs p \
                  WHERE p.id = j.parent_id AND p.status = 'waiting')) \
             ORDER BY COALESCE(r.n, 0), j.created_ms, j.segment, j.id \
             FOR UPDATE OF j SKIP LOCKED LIMIT 1) AND status = 'queued' \
             RETURNING id, tenant_id, model_id, kind, payload, CAST(attempts AS BIGINT), \
             memory_bytes, step"
        }
        Backend::Sqlite => {
            "UPDATE jobs SET status = 'running', worker = $1, lease_until_ms = $2, \
             attempts = attempts + 1, started_ms = COALESCE(started_ms, $3) \
             WHERE id = (SELECT j.id FROM jobs j LEFT JOIN (SELECT tenant_id, COUNT(*) AS n \
             FROM jobs WHERE status = 'running' GROUP BY tenant_id) r \
             ON r.tenant_id = j.tenant_id WHERE j.status = 'queued' \
             AND (j.memory_bytes IS NULL OR j.memory_bytes <= $4) \
             AND (j.parent_id IS NULL OR EXISTS (SELECT 1 FROM jobs p \
                  WHERE p.id = j.parent_id AND p.status = 'waiting')) \
             ORDER BY COALESCE(r.n, 0), j.created_ms, j.segment, j.id \
             LIMIT 1) AND status = 'queued' \
             RETURNING id, tenant_id, model_id, kind, payload, CAST(attempts AS BIGINT), \
             memory_bytes, step"
        }
    };
    let now = now_ms();
    let row = sqlx::query(sql)
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .bind(free_memory)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(claimed).transpose()
}

/// Extends `worker`'s lease on job `id`; false if it no longer holds it.
pub async fn renew(db: &Db, id: &str, worker: &str, lease_ms: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET lease_until_ms = $1 WHERE id = $2 AND worker = $3 AND status = 'running'",
    )
    .bind(now_ms() + lease_ms)
    .bind(id)
    .bind(worker)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives job `id` back to the queue unfinished (its worker is shutting down); the attempt
/// is not counted against the job. False if `worker` no longer holds it.
pub async fn release(db: &Db, id: &str, worker: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET status = 'queued', worker = NULL, lease_until_ms = NULL, phase = NULL, \
         attempts = attempts - 1 WHERE id = $1 AND worker = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives job `id` back to the queue because it needs `memory_bytes`, more than `worker`
/// has free: only a worker with that much free claims it next. The attempt is not counted.
/// False if `worker` no longer holds it.
pub async fn defer(db: &Db, id: &str, worker: &str, memory_bytes: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET status = 'queued', worker = NULL, lease_until_ms = NULL, \
         attempts = attempts - 1, memory_bytes = $1, phase = NULL \
         WHERE id = $2 AND worker = $3 AND status = 'running'",
    )
    .bind(memory_bytes)
    .bind(id)
    .bind(worker)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// How a job ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// It succeeded with this result.
    Succeeded(Value),
    /// It failed: an error code and a message.
    Failed(String, String),
}

/// Records the end of job `id` by `worker` (which stays recorded as the one that finished
/// it); false (nothing written) if the worker no longer holds it.
pub async fn finish(db: &Db, id: &str, worker: &str, outcome: &Outcome) -> Result<bool> {
    finish_with(db, id, worker, outcome, None, None).await
}

/// [`finish`], also recording how long the attempt ran (for `/metrics`) and, for a setup
/// job, its model's state (`ready` with the result's summary and artifacts, or `failed`
/// with the error), all in one transaction: a job never ends without its model.
pub async fn finish_with(
    db: &Db,
    id: &str,
    worker: &str,
    outcome: &Outcome,
    run_ms: Option<i64>,
    setup_of: Option<&str>,
) -> Result<bool> {
    let (status, result, code, message) = match outcome {
        Outcome::Succeeded(v) => ("succeeded", Some(v.to_string()), None, None),
        Outcome::Failed(c, m) => ("failed", None, Some(c.as_str()), Some(m.as_str())),
    };
    let mut tx = db.pool.begin().await?;
    lock_family(&mut tx, id).await?;
    let r = sqlx::query(
        "UPDATE jobs SET status = $1, result = $2, error_code = $3, error = $4, finished_ms = $5, \
         lease_until_ms = NULL, phase = NULL, run_ms = COALESCE($8, run_ms), \
         callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, \
         callback_next_ms = $5 \
         WHERE id = $6 AND worker = $7 AND status = 'running' \
         RETURNING kind, parent_id, CAST(segment AS BIGINT)",
    )
    .bind(status)
    .bind(result)
    .bind(code)
    .bind(message)
    .bind(now_ms())
    .bind(id)
    .bind(worker)
    .bind(run_ms)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(r) = r else {
        return Ok(false);
    };
    let kind: String = r.try_get(0)?;
    let mut counts = crate::counters::Adds::default();
    counts.job_ended(&kind, status);
    if let (Some(ms), "succeeded", true) = (run_ms, status, kind == JobKind::Prove.as_str()) {
        counts.prove_ran(ms);
    }
    if let (Some(parent), Some(segment)) = (
        r.try_get::<Option<String>, _>(1)?,
        r.try_get::<Option<i64>, _>(2)?,
    ) {
        let end = match outcome {
            Outcome::Succeeded(_) => ChildEnd::Succeeded,
            Outcome::Failed(c, m) => ChildEnd::Failed(c, m),
        };
        settle(&mut tx, &parent, segment, end, &mut counts).await?;
    }
    counts.write(&mut tx).await?;
    if let Some(model) = setup_of {
        match outcome {
            Outcome::Succeeded(v) => {
                crate::models::set_state_in(
                    &mut tx,
                    model,
                    "ready",
                    Some(&v["summary"]),
                    Some(&v["artifacts"]),
                    None,
                )
                .await?
            }
            Outcome::Failed(c, m) => {
                crate::models::set_state_in(&mut tx, model, "failed", None, None, Some((c, m)))
                    .await?
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Jobs whose lease expired go back to the queue, or fail once they have used their attempts;
/// a setup job's model follows it (queued again, or failed) in the same transaction.
/// Returns (requeued, failed).
pub async fn expire_leases(db: &Db) -> Result<(u64, u64)> {
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let failed = sqlx::query(
        "UPDATE jobs SET status = 'failed', error_code = 'worker_lost', \
         error = 'the worker holding the job stopped renewing its lease, on every attempt', \
         finished_ms = $1, worker = NULL, lease_until_ms = NULL, phase = NULL, \
         callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, \
         callback_next_ms = $1 \
         WHERE status = 'running' AND lease_until_ms < $1 AND attempts >= max_attempts \
         AND parent_id IS NULL RETURNING model_id, kind",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    // A segment that used its attempts fails its parent: each is written after its model's
    // and parent's rows are locked (see `fan_out`).
    let lost: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE status = 'running' AND lease_until_ms < $1 \
         AND attempts >= max_attempts AND parent_id IS NOT NULL",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut counts = crate::counters::Adds::default();
    let mut lost_children = 0;
    for id in &lost {
        lock_family(&mut tx, id).await?;
        let row = sqlx::query(
            "UPDATE jobs SET status = 'failed', error_code = 'worker_lost', \
             error = 'the worker holding the job stopped renewing its lease, on every attempt', \
             finished_ms = $1, worker = NULL, lease_until_ms = NULL, phase = NULL \
             WHERE id = $2 AND status = 'running' AND lease_until_ms < $1 \
             AND attempts >= max_attempts RETURNING kind, parent_id, CAST(segment AS BIGINT)",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { continue };
        lost_children += 1;
        counts.job_ended(&row.try_get::<String, _>(0)?, "failed");
        let (parent, segment): (String, i64) = (row.try_get(1)?, row.try_get(2)?);
        let why = "the worker holding it stopped renewing its lease, on every attempt";
        settle(
            &mut tx,
            &parent,
            segment,
            ChildEnd::Failed("worker_lost", why),
            &mut counts,
        )
        .await?;
    }
    let requeued = sqlx::query(
        "UPDATE jobs SET status = 'queued', worker = NULL, lease_until_ms = NULL, phase = NULL \
         WHERE status = 'running' AND lease_until_ms < $1 RETURNING model_id, kind",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    cancel_orphans(&mut tx, now, &mut counts).await?;
    counts.add(
        crate::counters::LEASE_EXPIRIES,
        "",
        (failed.len() + lost_children + requeued.len()) as i64,
    );
    for (rows, state) in [(&failed, "failed"), (&requeued, "queued")] {
        for row in rows {
            let (model, kind): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if state == "failed" {
                counts.job_ended(&kind, state);
            }
            if kind == JobKind::Setup.as_str() {
                let error = (state == "failed").then_some((
                    "worker_lost",
                    "the worker setting the model up stopped renewing its lease, on every attempt",
                ));
                crate::models::set_state_in(&mut tx, &model, state, None, None, error).await?;
            }
        }
    }
    counts.write(&mut tx).await?;
    tx.commit().await?;
    Ok((requeued.len() as u64, (failed.len() + lost_children) as u64))
}

/// Queued jobs that have needed more memory than the most any live worker allows
/// (`largest`) for longer than `grace_ms` fail `model_too_large` with the figures (a setup
/// job's model with them, in the same transaction): no worker could claim them, and waiting
/// would hide that. The grace lets a large worker restart without its jobs failing. Returns
/// how many failed.
pub async fn fail_unplaceable(db: &Db, largest: u64, grace_ms: i64) -> Result<u64> {
    let largest = i64::try_from(largest).unwrap_or(i64::MAX);
    let now = now_ms();
    // Marking is a transaction of its own: it writes many job rows, and the failures below
    // lock each one's model first (see `fan_out`'s lock order).
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "UPDATE jobs SET unplaceable_ms = NULL \
         WHERE status = 'queued' AND unplaceable_ms IS NOT NULL AND memory_bytes <= $1",
    )
    .bind(largest)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE jobs SET unplaceable_ms = $2 \
         WHERE status = 'queued' AND unplaceable_ms IS NULL AND memory_bytes > $1",
    )
    .bind(largest)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let cutoff = now.saturating_sub(grace_ms);
    let due: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, model_id FROM jobs \
         WHERE status = 'queued' AND memory_bytes > $1 AND unplaceable_ms <= $2",
    )
    .bind(largest)
    .bind(cutoff)
    .fetch_all(&db.pool)
    .await?;
    let mut tx = db.pool.begin().await?;
    let mut ended = crate::counters::Adds::default();
    let mut failed = 0;
    for (id, model) in &due {
        sqlx::query("UPDATE models SET updated_ms = updated_ms WHERE id = $1")
            .bind(model)
            .execute(&mut *tx)
            .await?;
        lock_family(&mut tx, id).await?;
        let row = sqlx::query(
            "UPDATE jobs SET status = 'failed', error_code = 'model_too_large', \
             error = 'needs ' || CAST(memory_bytes AS TEXT) || ' bytes of memory; the largest \
             worker allows ' || CAST($1 AS TEXT) || ' bytes', finished_ms = $2, \
             callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, \
             callback_next_ms = $2 \
             WHERE id = $4 AND status = 'queued' AND memory_bytes > $1 AND unplaceable_ms <= $3 \
             RETURNING kind, error, parent_id, CAST(segment AS BIGINT)",
        )
        .bind(largest)
        .bind(now)
        .bind(cutoff)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { continue };
        failed += 1;
        let (kind, error): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        ended.job_ended(&kind, "failed");
        if let (Some(parent), Some(segment)) = (
            row.try_get::<Option<String>, _>(2)?,
            row.try_get::<Option<i64>, _>(3)?,
        ) {
            let end = ChildEnd::Failed("model_too_large", &error);
            settle(&mut tx, &parent, segment, end, &mut ended).await?;
        }
        if kind == JobKind::Setup.as_str() {
            let why = Some(("model_too_large", error.as_str()));
            crate::models::set_state_in(&mut tx, model, "failed", None, None, why).await?;
        }
    }
    ended.write(&mut tx).await?;
    tx.commit().await?;
    Ok(failed)
}

/// Jobs held by `worker`, which is known to be gone (a previous run of this process), are
/// treated as if their lease had run out: the next [`expire_leases`] requeues them at once
/// instead of after the lease. Returns how many.
pub async fn orphan(db: &Db, worker: &str) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE jobs SET lease_until_ms = 0 WHERE worker = $1 AND status = 'running'")
            .bind(worker)
            .execute(&db.pool)
            .await?
            .rows_affected(),
    )
}

/// Cancels a queued job of `tenant_id` (or one waiting for its segments, whose queued
/// segments go with it); false if it is not queued (or not theirs), is one segment of a job
/// (cancel that job), or is a model's setup job (deleting the model cancels that: the model
/// would otherwise wait for a setup that never comes).
pub async fn cancel(db: &Db, tenant_id: &str, id: &str) -> Result<bool> {
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "UPDATE jobs SET status = 'cancelled', finished_ms = $1, \
         callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, \
         callback_next_ms = $1 \
         WHERE id = $2 AND tenant_id = $3 AND status IN ('queued', 'waiting') \
         AND kind <> 'setup' AND parent_id IS NULL RETURNING kind",
    )
    .bind(now_ms())
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(r) = r else {
        return Ok(false);
    };
    let mut counts = crate::counters::Adds::default();
    counts.job_ended(&r.try_get::<String, _>(0)?, "cancelled");
    fan_out::cancel_children(&mut tx, id, now_ms(), &mut counts).await?;
    counts.write(&mut tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// Records what job `id` is doing (shown while it runs); a no-op if `worker` lost it.
pub async fn set_phase(db: &Db, id: &str, worker: &str, phase: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET phase = $1 WHERE id = $2 AND worker = $3 AND status = 'running'")
        .bind(phase)
        .bind(id)
        .bind(worker)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Records how far job `id` is; a no-op if `worker` lost it.
pub async fn set_progress(db: &Db, id: &str, worker: &str, progress: &Value) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET progress = $1 WHERE id = $2 AND worker = $3 AND status = 'running'",
    )
    .bind(progress.to_string())
    .bind(id)
    .bind(worker)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Jobs of `tenant_id` not yet ended (queued, running, or waiting for their segments, which
/// are not counted apart while it waits; a segment still running after its job was
/// cancelled or failed counts on its own, so cancelling cannot free the quota early).
pub async fn open_jobs(db: &Db, tenant_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs j WHERE j.tenant_id = $1 \
         AND j.status IN ('queued', 'running', 'waiting') AND (j.parent_id IS NULL \
         OR NOT EXISTS (SELECT 1 FROM jobs p WHERE p.id = j.parent_id \
                        AND p.status IN ('queued', 'running', 'waiting')))",
    )
    .bind(tenant_id)
    .fetch_one(&db.pool)
    .await?)
}
