//! A proving worker: claims jobs from the shared queue that fit its free memory, has them
//! run (compile and keygen of a setup, or a proof) by its executor, in a supervised child
//! process or in process, renews its lease while they run, and records the result. It keeps
//! nothing but caches: compiled folders under its data dir, fetched from the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use crate::capacity::Capacity;
use crate::capacity::Reservation;
use crate::ceilings::Ceilings;
use crate::child::{ChildRunner, ChildSpec, Died, Runner};
use crate::db::Db;
pub use crate::executor::{materialize, Sibling, Upload};
use crate::executor::{Executor, Request, Response};
pub use crate::key_cache::KeyCache;
use crate::queue::{self, Claimed, JobKind, Outcome};
use crate::store::Store;
use crate::{fleet, models};

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
    /// The child process jobs run in (`None`: in this process).
    pub child: Option<ChildSpec>,
    /// How long a job may run before it fails `timed_out` (its process is stopped), so a hung
    /// job cannot hold a worker for ever.
    pub job_timeout: Duration,
    /// How long a queued job may need more memory than any live worker allows before it
    /// fails `model_too_large` (a large worker restarting is not gone).
    pub unplaceable_grace: Duration,
}

/// The default of [`WorkerConfig::unplaceable_grace`].
pub const UNPLACEABLE_GRACE: Duration = Duration::from_secs(15 * 60);

/// The default of [`WorkerConfig::job_timeout`]: longer than the largest setup measured.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

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
    let lease_ms = cfg.lease.as_millis() as i64;
    let mut runner = match &cfg.child {
        Some(spec) => Runner::Child(Box::new(ChildRunner::new(spec.clone()))),
        None => Runner::Local(Arc::new(Executor::new(
            db.clone(),
            store.clone(),
            cfg.clone(),
        ))),
    };
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
            sweep(&db, &cfg).await;
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
        let (lost_tx, mut lost) = watch::channel(false);
        let renewer = tokio::spawn(renew(
            db.clone(),
            job.id.clone(),
            cfg.name.clone(),
            cfg.lease,
            cfg.ceilings.max_prove_memory,
            lost_tx,
        ));
        let t = Instant::now();
        let released = {
            let mut stop = stop.clone();
            async move {
                // An error means the service is gone: nothing to wait for.
                let _ = stop.wait_for(|s| *s == Stop::Release).await;
            }
        };
        let ended = tokio::select! {
            end = steps(&mut runner, &job, &held) => Some(end),
            _ = released => None,
            _ = tokio::time::sleep(cfg.job_timeout) => {
                runner.abandon().await;
                let limit = humantime::format_duration(cfg.job_timeout);
                Some(Ended::Done(Err((
                    "timed_out".into(),
                    format!("the job ran longer than the service allows ({limit}) and was stopped"),
                ))))
            }
            _ = async { lost.wait_for(|l| *l).await.map(|_| ()) } => {
                // Another worker may have the job: stop working on it and record nothing.
                renewer.abort();
                runner.abandon().await;
                tracing::warn!(job = %job.id, "lease lost: the job was stopped, nothing recorded");
                continue;
            }
        };
        renewer.abort();
        let Some(end) = ended else {
            runner.abandon().await;
            release(&db, &cfg, &job).await;
            let _ = fleet::leave(&db, &cfg.name).await;
            return;
        };
        let outcome = match end {
            Ended::Done(Ok(v)) => Outcome::Succeeded(v),
            Ended::Done(Err((code, message))) => {
                Outcome::Failed(code.clone(), told(&cfg, &job, &code, message))
            }
            Ended::Died(died) => {
                tracing::warn!(job = %job.id, "{}", died.message);
                let code = if died.out_of_memory {
                    "out_of_memory"
                } else {
                    "worker_crashed"
                };
                Outcome::Failed(code.into(), died.message)
            }
            Ended::NeedsMemory(bytes) => {
                defer(&db, &cfg, &job, bytes).await;
                continue;
            }
            Ended::FanOut(out) => {
                drop(held);
                match queue::fan_out(&db, &job.id, &cfg.name, &out).await {
                    Ok(true) => tracing::info!(
                        job = %job.id,
                        segments = out.children.len(),
                        "waiting for its segments"
                    ),
                    Ok(false) => {
                        tracing::warn!(job = %job.id, "lease lost, or its model deleted, before its segments were queued")
                    }
                    Err(e) => {
                        tracing::warn!(job = %job.id, "queuing its segments: {e} (its lease will expire)")
                    }
                }
                continue;
            }
        };
        drop(held);
        record(&db, &cfg, &job, &outcome, t).await;
    }
}

/// What a tenant is told of a job's failure: an internal error's text (a panic's, an I/O
/// error's) is logged and replaced; any other message loses this worker's paths (its data
/// dir, the SRS file), which are the operator's business.
fn told(cfg: &WorkerConfig, job: &Claimed, code: &str, message: String) -> String {
    debug_assert!(
        crate::http::JOB_ERROR_CODES.contains(&code),
        "job error code {code:?} is not in JOB_ERROR_CODES (nor in the OpenAPI document)"
    );
    if code == "internal" {
        tracing::error!(job = %job.id, "internal error: {message}");
        return "internal error (logged)".into();
    }
    let mut m = message;
    let paths = [
        (Some(cfg.data_dir.as_path()), "<worker data dir>"),
        (cfg.srs.as_deref(), "<the service's SRS>"),
    ];
    for (path, shown) in paths {
        if let Some(p) = path
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
        {
            m = m.replace(&p, shown);
        }
    }
    m
}

/// How a job's steps ended.
enum Ended {
    /// With a result, or an error code and message.
    Done(std::result::Result<serde_json::Value, (String, String)>),
    /// The setup needs this many bytes, more than this worker has free.
    NeedsMemory(u64),
    /// The process running it died.
    Died(Died),
    /// It waits for these children (one per segment of its model).
    FanOut(queue::FanOut),
}

/// Runs a job's steps: a setup is compiled, then (if its estimate fits what this worker has
/// free) its keys are made; other jobs run in one step.
async fn steps(runner: &mut Runner, job: &Claimed, held: &Reservation) -> Ended {
    let first = match job.kind {
        JobKind::Setup if job.step.is_none() => Request::Compile(job.clone()),
        _ => Request::Run(job.clone()),
    };
    match runner.call(first).await {
        Ok(Response::Done(r)) => Ended::Done(r),
        Ok(Response::FanOut(out)) => Ended::FanOut(out),
        Ok(Response::Compiled(bytes)) => {
            if !held.grow_to(bytes) {
                return Ended::NeedsMemory(bytes);
            }
            match runner.call(Request::Keygen(job.clone())).await {
                Ok(Response::Done(r)) => Ended::Done(r),
                Ok(Response::Compiled(_) | Response::FanOut(_)) => Ended::Done(Err((
                    "internal".into(),
                    "keygen answered as a compile".into(),
                ))),
                Err(died) => Ended::Died(died),
            }
        }
        Err(died) => Ended::Died(died),
    }
}

/// Renews `worker`'s lease on job `id` (and its place in the fleet, with `memory`) every
/// third of the lease. A database error is retried with backoff until the lease would have
/// run out; then, or when another worker holds the job, `lost` is set.
async fn renew(
    db: Db,
    id: String,
    worker: String,
    lease: Duration,
    memory: u64,
    lost: watch::Sender<bool>,
) {
    let lease_ms = lease.as_millis() as i64;
    let mut held_until = Instant::now() + lease;
    loop {
        tokio::time::sleep((lease / 3).max(Duration::from_millis(1))).await;
        let mut backoff = Duration::from_millis(100);
        loop {
            match queue::renew(&db, &id, &worker, lease_ms).await {
                Ok(true) => {
                    held_until = Instant::now() + lease;
                    if let Err(e) = fleet::heartbeat(&db, &worker, memory).await {
                        tracing::warn!("heartbeat: {e}");
                    }
                    break;
                }
                Ok(false) => {
                    let _ = lost.send(true);
                    return;
                }
                Err(e) => {
                    if Instant::now() + backoff >= held_until {
                        tracing::warn!(job = %id, "renewing the lease: {e}; giving the job up");
                        let _ = lost.send(true);
                        return;
                    }
                    tracing::warn!(job = %id, "renewing the lease: {e}; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(lease / 6);
                }
            }
        }
    }
}

/// Fails the queued jobs no live worker could hold (their model has needed more memory than
/// the largest worker allows for the grace period): without this a model planned for a worker
/// that has since left would wait for it for ever.
async fn sweep(db: &Db, cfg: &WorkerConfig) {
    let fleet_ms = 3 * cfg.lease.as_millis() as i64;
    match fleet::largest_memory(db, fleet_ms).await {
        Ok(Some(largest)) => {
            match queue::fail_unplaceable(db, largest, cfg.unplaceable_grace.as_millis() as i64)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::warn!("{n} job(s) need more memory than any worker has: failed"),
                Err(e) => tracing::warn!("failing jobs no worker can hold: {e}"),
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("reading the fleet: {e}"),
    }
}

/// Gives the job in hand back to the queue (the service is stopping).
async fn release(db: &Db, cfg: &WorkerConfig, job: &Claimed) {
    match queue::release(db, &job.id, &cfg.name).await {
        Ok(true) => {
            tracing::info!(job = %job.id, "released to the queue");
            if job.kind == JobKind::Setup {
                let r = models::set_state(db, &job.model_id, "queued", None, None, None);
                if let Err(e) = r.await {
                    tracing::warn!(job = %job.id, "recording the model's state: {e}");
                }
            }
        }
        Ok(false) => tracing::warn!(job = %job.id, "lease already lost"),
        Err(e) => tracing::warn!(job = %job.id, "releasing: {e} (its lease will expire)"),
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

/// Records a job's outcome (and, for a setup job, its model's state, in the same transaction).
async fn record(db: &Db, cfg: &WorkerConfig, job: &Claimed, outcome: &Outcome, t: Instant) {
    let ms = t.elapsed().as_millis() as i64;
    let setup_of = (job.kind == JobKind::Setup).then_some(job.model_id.as_str());
    match queue::finish_with(db, &job.id, &cfg.name, outcome, Some(ms), setup_of).await {
        Ok(true) => tracing::info!(job = %job.id, "done in {:.2?}", t.elapsed()),
        Ok(false) => tracing::warn!(job = %job.id, "lease lost: another worker has the job"),
        Err(e) => tracing::warn!(job = %job.id, "recording the result: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_told_no_panic_text_and_no_paths() {
        let cfg = WorkerConfig {
            name: "w".into(),
            data_dir: PathBuf::from("/srv/zkinfer/worker"),
            srs: Some(PathBuf::from("/srv/ceremony/ppot_20.ptau")),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(50),
            keys: Arc::new(KeyCache::new(1)),
            ceilings: Ceilings::default(),
            capacity: Arc::new(Capacity::new(1)),
            child: None,
            job_timeout: JOB_TIMEOUT,
            unplaceable_grace: UNPLACEABLE_GRACE,
        };
        let job = Claimed {
            id: "jb_1".into(),
            tenant_id: "t".into(),
            model_id: "md_1".into(),
            kind: JobKind::Setup,
            payload: serde_json::Value::Null,
            attempt: 1,
            memory_bytes: None,
            step: None,
        };
        let panic = "compile task: task 7 panicked with message \"index out of bounds\"";
        assert_eq!(
            told(&cfg, &job, "internal", panic.into()),
            "internal error (logged)"
        );
        let failed = told(
            &cfg,
            &job,
            "failed",
            "cannot read /srv/zkinfer/worker/tmpA1/model/settings.json and /srv/ceremony/ppot_20.ptau"
                .into(),
        );
        assert_eq!(
            failed,
            "cannot read <worker data dir>/tmpA1/model/settings.json and <the service's SRS>"
        );
    }
}
