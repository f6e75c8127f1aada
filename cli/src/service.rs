//! `zkinfer serve`, `zkinfer worker` and `zkinfer keys`: the service's commands.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use zkinfer_api::service::ServiceConfig;

/// Where `keys` finds the service's database.
#[derive(Args)]
pub struct KeysDb {
    /// The service's data dir (its embedded database), when no --database-url is given.
    #[arg(long, default_value = "zkinfer-data")]
    data_dir: PathBuf,
    /// The service's database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make an API key for a tenant (created if new): prints the key's id, its tenant's
    /// callback-signing secret, then the key as the last word.
    Create {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The key stops working this long from now (`90d`, `12h`); default: never.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        db: KeysDb,
    },
    /// List keys (ids, tenants, when made, expiry, state); never the keys themselves.
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        db: KeysDb,
    },
    /// Revoke a key at once, by the id `create` and `list` print.
    Revoke {
        /// The key's id (`ak_…`).
        id: String,
        #[command(flatten)]
        db: KeysDb,
    },
    /// Make a new key for a tenant; its other keys stop working after the grace period.
    Rotate {
        /// The tenant's name (it must exist).
        #[arg(long)]
        tenant: String,
        /// How long the old keys keep working (`0s`: at once).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: Duration,
        /// The new key stops working this long from now; default: never.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        db: KeysDb,
    },
}

/// Where the operator reads `/metrics` (tenants never can).
#[derive(Args)]
pub struct MetricsArgs {
    /// Serve `/metrics` on the public bind to `Authorization: Bearer TOKEN` only.
    #[arg(long, env = "ZKINFER_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Serve `/metrics` alone, without a token, on this address (the operator's network).
    #[arg(long)]
    metrics_bind: Option<String>,
}

/// Where the service keeps its state.
#[derive(Args)]
pub struct ServiceArgs {
    /// `postgres://…` or `sqlite:PATH`; default: an embedded SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The data dir: the embedded database, the default artifact store, caches.
    #[arg(long, default_value = "zkinfer-data")]
    data_dir: PathBuf,
    /// The artifact store: `file:///absolute/path`, or `s3://BUCKET[/PREFIX]` (credentials,
    /// region and endpoint from the standard AWS_* variables); default: DATA_DIR/store.
    #[arg(long)]
    store: Option<String>,
    /// The ceremony file every model's setup uses (a development SRS without one), or a
    /// folder of them, one per k: each setup takes the one of its k.
    #[arg(long)]
    srs: Option<PathBuf>,
    /// Seconds a worker's claim on a job holds without renewal: after a worker dies, its job
    /// waits this long before another takes it.
    #[arg(long, default_value_t = 30)]
    lease_secs: u64,
    /// Allow callbacks to loopback and private addresses (refused by default).
    #[arg(long)]
    allow_private_callbacks: bool,
    /// Deliveries of a callback tried before giving up (backoff from 1 s, doubling).
    #[arg(long, default_value_t = 8)]
    callback_attempts: u32,
    /// MiB of proving keys kept loaded in memory (per process), beyond the disk cache.
    #[arg(long, default_value_t = 2048)]
    key_cache_mb: usize,
    /// After Ctrl-C or SIGTERM, seconds workers may finish their jobs before releasing them
    /// to the queue (a second signal releases them at once).
    #[arg(long, default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// The largest circuit a model may need, 2^K rows: beyond it, its setup job fails with
    /// model_too_large. Tenant settings may lower it (logrows), never raise it.
    #[arg(long, default_value_t = 24)]
    max_k: u32,
    /// GiB of memory this process's workers share, and the most one model's setup or proof
    /// may be estimated to need (default: this machine's memory). A worker claims only jobs
    /// that fit what its running jobs leave free; a model needing more than any worker has
    /// fails model_too_large. Tenant settings may lower it, never raise it.
    #[arg(long)]
    max_prove_memory: Option<f64>,
    /// The largest proof a tenant may ask for, in bytes (max_proof_bytes).
    #[arg(long, default_value_t = 8192)]
    max_proof_bytes: usize,
    /// The most calibration samples one upload may carry.
    #[arg(long, default_value_t = 4096)]
    max_calibration_samples: usize,
    /// The most groups per dot product of a model's FHE program.
    #[arg(long, default_value_t = 64)]
    max_fhe_groups: usize,
    /// The most bootstraps per sample of a model's FHE program (default: no ceiling).
    #[arg(long)]
    max_fhe_bootstraps: Option<usize>,
    /// The most segments a model may be cut into (its `segments` setting, or the cut a
    /// model too large for one circuit gets): each segment is a job of its own. 1: no model
    /// is cut (one too large fails model_too_large).
    #[arg(long, default_value_t = 32)]
    max_segments: usize,
    /// Model uploads one tenant may have parsed at once (more: 429 with Retry-After).
    #[arg(long, default_value_t = 2)]
    max_parses_per_tenant: usize,
    /// Run jobs in this process instead of one supervised child process per worker loop
    /// (then a job that runs out of memory takes the whole process down).
    #[arg(long)]
    in_process_jobs: bool,
    /// How long a job may run before it fails `timed_out` and its process is stopped
    /// (`12h`, `90m`).
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    job_timeout: Duration,
    /// How long a deleted model's rows and blobs are kept before they are purged (`7d`).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    retention: Duration,
    /// MiB an uploaded FHE server key may have (a compressed m3c3 key is 270 MiB).
    #[arg(long, default_value_t = 512)]
    max_fhe_key_mb: usize,
}

impl ServiceArgs {
    fn config(self, workers: usize) -> Result<ServiceConfig> {
        let mut cfg = ServiceConfig::new(self.data_dir);
        cfg.database_url = self.database_url;
        cfg.store = self.store;
        cfg.srs = self.srs;
        cfg.workers = workers;
        cfg.lease = Duration::from_secs(self.lease_secs.max(1));
        cfg.callbacks.allow_private = self.allow_private_callbacks;
        cfg.callbacks.max_attempts = i64::from(self.callback_attempts.max(1));
        cfg.key_cache_bytes = self.key_cache_mb << 20;
        cfg.shutdown_grace = Duration::from_secs(self.shutdown_grace_secs);
        cfg.job_timeout = self.job_timeout.max(Duration::from_secs(1));
        cfg.retention = self.retention;
        cfg.limits.max_fhe_key_bytes = self.max_fhe_key_mb << 20;
        cfg.limits.max_parses_per_tenant = self.max_parses_per_tenant.max(1);
        let c = &mut cfg.ceilings;
        c.max_k = self.max_k;
        if let Some(gib) = self.max_prove_memory {
            anyhow::ensure!(
                gib.is_finite() && gib > 0.0,
                "--max-prove-memory must be a positive number of GiB"
            );
            c.max_prove_memory = (gib * (1u64 << 30) as f64) as u64;
        }
        c.max_proof_bytes = self.max_proof_bytes;
        c.max_calibration_samples = self.max_calibration_samples;
        c.max_fhe_groups = self.max_fhe_groups;
        c.max_fhe_bootstraps = self.max_fhe_bootstraps;
        c.max_segments = self.max_segments.max(1);
        if !self.in_process_jobs {
            cfg.job_runner = Some(std::env::current_exe()?);
        }
        Ok(cfg)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `zkinfer serve`.
pub fn serve(service: ServiceArgs, bind: &str, workers: usize, metrics: MetricsArgs) -> Result<()> {
    let mut cfg = service.config(workers)?;
    anyhow::ensure!(
        metrics
            .metrics_token
            .as_deref()
            .is_none_or(|t| t.len() >= 16),
        "--metrics-token must have at least 16 characters"
    );
    cfg.metrics_token = metrics.metrics_token;
    cfg.metrics_bind = metrics.metrics_bind;
    if cfg.srs.is_none() {
        eprintln!("note: no --srs given: models are set up on a development SRS, and say so");
    }
    let db = cfg.database_url();
    let rt = runtime()?;
    let served = rt.block_on(zkinfer_api::service::serve(&cfg, bind, |addr| {
        println!("listening on http://{addr} (database {db}, {workers} workers)");
    }));
    // A released job's proving thread may still run: do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(served?)
}

/// `zkinfer worker`.
pub fn work(service: ServiceArgs, workers: usize) -> Result<()> {
    let cfg = service.config(workers)?;
    let db = cfg.database_url();
    let rt = runtime()?;
    let worked = rt.block_on(zkinfer_api::service::work(&cfg, |names| {
        for name in names {
            println!("worker {name} on {db}");
        }
    }));
    // A released job's proving thread may still run: do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(worked?)
}

/// `zkinfer keys`.
pub fn keys(command: KeysCommand) -> Result<()> {
    let open = |db: KeysDb| {
        let mut cfg = ServiceConfig::new(db.data_dir);
        cfg.database_url = db.database_url;
        cfg.workers = 0;
        cfg
    };
    let rt = runtime()?;
    let later = |d: Option<Duration>| {
        d.map(|d| {
            zkinfer_api::db::now_ms().saturating_add(d.as_millis().min(i64::MAX as u128) as i64)
        })
    };
    match command {
        KeysCommand::Create {
            tenant,
            expires_in,
            db,
        } => {
            let cfg = open(db);
            let key = rt.block_on(async {
                let (db, _) = cfg.open().await?;
                zkinfer_api::tenants::create_key_expiring(&db, &tenant, later(expires_in)).await
            })?;
            print_new_key(&tenant, &key, later(expires_in));
        }
        KeysCommand::List { tenant, db } => {
            let cfg = open(db);
            let keys = rt.block_on(async {
                let (db, _) = cfg.open().await?;
                zkinfer_api::tenants::list_keys(&db, tenant.as_deref()).await
            })?;
            let now = zkinfer_api::db::now_ms();
            println!(
                "{:<20} {:<8} {:<20} {:<20} TENANT",
                "ID", "STATE", "CREATED", "EXPIRES"
            );
            for k in keys {
                println!(
                    "{:<20} {:<8} {:<20} {:<20} {}",
                    k.id,
                    k.state(now),
                    time(Some(k.created_ms)),
                    time(k.revoked_ms.or(k.expires_ms)),
                    k.tenant
                );
            }
        }
        KeysCommand::Revoke { id, db } => {
            let cfg = open(db);
            let done = rt.block_on(async {
                let (db, _) = cfg.open().await?;
                zkinfer_api::tenants::revoke_key(&db, &id).await
            })?;
            anyhow::ensure!(
                done,
                "no key {id}, or it was already revoked (see `zkinfer keys list`)"
            );
            println!("revoked {id}");
        }
        KeysCommand::Rotate {
            tenant,
            grace,
            expires_in,
            db,
        } => {
            let cfg = open(db);
            let grace_ms = grace.as_millis().min(i64::MAX as u128) as i64;
            let rotated = rt.block_on(async {
                let (db, _) = cfg.open().await?;
                zkinfer_api::tenants::rotate_key(&db, &tenant, grace_ms, later(expires_in)).await
            })?;
            let Some((key, old)) = rotated else {
                anyhow::bail!("no tenant {tenant:?} (`zkinfer keys create` makes one)");
            };
            println!(
                "{old} older key(s) of {tenant} stop working at {}",
                time(Some(zkinfer_api::db::now_ms().saturating_add(grace_ms)))
            );
            print_new_key(&tenant, &key, later(expires_in));
        }
    }
    Ok(())
}

/// The key goes last, alone, so scripts take the last word.
fn print_new_key(tenant: &str, key: &zkinfer_api::tenants::NewKey, expires_ms: Option<i64>) {
    println!("tenant {tenant} ({})", key.tenant_id);
    println!("callback secret {}", key.callback_secret);
    println!("key id {} (expires {})", key.key_id, time(expires_ms));
    println!("key {}", key.key);
}

/// An RFC 3339 time (UTC, seconds), or `never`.
fn time(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64),
        )
        .to_string(),
        None => "never".into(),
    }
}

/// `zkinfer job-runner`: the child process a worker loop runs its jobs in (not for people:
/// it speaks JSON lines on stdin and stdout).
pub fn job_runner(worker: Option<&str>) -> Result<()> {
    Ok(runtime()?.block_on(zkinfer_api::child::child_main(worker))?)
}
