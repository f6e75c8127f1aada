//! Running the service: `zkinfer serve` (HTTP and, unless `--workers 0`, workers in process)
//! and `zkinfer worker` (workers only, on a shared database and store).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::callbacks::{self, CallbackPolicy};
use crate::ceilings::Ceilings;
use crate::child::{ChildConfig, ChildSpec};
use crate::db::{new_id, Db};
use crate::error::{Error, Result};
use crate::http::{router, AppState, Limits};
use crate::queue;
use crate::store::Store;
use crate::worker::{self, Capacity, KeyCache, Stop, WorkerConfig};

/// Where the service keeps its state.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// `postgres://…` or `sqlite:PATH`; without one, `sqlite:DATA_DIR/zkinfer.db`.
    pub database_url: Option<String>,
    /// The data dir: the embedded database, the default store, caches.
    pub data_dir: PathBuf,
    /// The artifact store URL (`file:///path`); without one, `DATA_DIR/store`.
    pub store: Option<String>,
    /// The ceremony file every model's setup uses.
    pub srs: Option<PathBuf>,
    /// Worker loops in this process.
    pub workers: usize,
    /// Request limits.
    pub limits: Limits,
    /// How long a worker's claim holds without renewal (it renews every third of it).
    pub lease: Duration,
    /// How callbacks are delivered (and whether private targets are allowed).
    pub callbacks: CallbackPolicy,
    /// Bytes of proving keys this process keeps loaded in memory.
    pub key_cache_bytes: usize,
    /// After a shutdown signal, how long workers may finish their jobs before releasing them
    /// to the queue (a second signal releases them at once).
    pub shutdown_grace: Duration,
    /// What a model may cost at most (largest circuit, memory, proof, calibration, FHE):
    /// tenant settings may lower these, never raise them. `max_prove_memory` is also the
    /// memory this process's workers share.
    pub ceilings: Ceilings,
    /// The executable each worker loop runs its jobs in, as `EXE job-runner` (one long-lived
    /// child per loop, restarted when it dies); `None`: jobs run in this process, and one
    /// that runs out of memory takes the process down.
    pub job_runner: Option<PathBuf>,
    /// How long a job may run before it fails `timed_out`.
    pub job_timeout: Duration,
    /// How long a deleted model's rows and blobs are kept before they are purged.
    pub retention: Duration,
    /// The operator's token for `/metrics` on the public bind (none: not served there).
    pub metrics_token: Option<String>,
    /// An address (the operator's network) that serves `/metrics` alone, without a token.
    pub metrics_bind: Option<String>,
}

/// What runs in a process beside the HTTP server: worker loops and a callback dispatcher.
struct Background {
    workers: Vec<(String, JoinHandle<()>)>,
    stop: watch::Sender<Stop>,
    dispatcher: JoinHandle<()>,
    /// Purges deleted models after the retention period.
    purger: JoinHandle<()>,
    stop_dispatcher: watch::Sender<bool>,
}

impl Background {
    /// Drains: workers finish their jobs for up to `grace` (or until `second_signal`), then
    /// release what they hold; then the dispatcher stops.
    async fn shutdown(self, grace: Duration, second_signal: impl std::future::Future<Output = ()>) {
        let _ = self.stop.send(Stop::Drain);
        let handles: Vec<_> = self.workers.into_iter().map(|(_, h)| h).collect();
        let drained = join_all(handles);
        tokio::pin!(drained);
        tokio::select! {
            _ = &mut drained => {}
            _ = async {
                tokio::select! {
                    _ = tokio::time::sleep(grace) => {}
                    _ = second_signal => {}
                }
            } => {
                tracing::info!("releasing the jobs in hand");
                let _ = self.stop.send(Stop::Release);
                drained.await;
            }
        }
        let _ = self.stop_dispatcher.send(true);
        let _ = self.dispatcher.await;
        let _ = self.purger.await;
    }
}

impl ServiceConfig {
    /// A configuration with the defaults of `zkinfer serve` on `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            database_url: None,
            data_dir,
            store: None,
            srs: None,
            workers: 1,
            limits: Limits::default(),
            lease: Duration::from_secs(30),
            callbacks: CallbackPolicy::default(),
            key_cache_bytes: 2 << 30,
            shutdown_grace: Duration::from_secs(30),
            ceilings: Ceilings::default(),
            job_runner: None,
            job_timeout: worker::JOB_TIMEOUT,
            retention: Duration::from_secs(7 * 24 * 3600),
            metrics_token: None,
            metrics_bind: None,
        }
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("zkinfer.db").display()))
    }

    /// Connects the database (migrating it) and opens the store.
    pub async fn open(&self) -> Result<(Db, Store)> {
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            Error::Config(format!("cannot create {}: {e}", self.data_dir.display()))
        })?;
        let db = Db::connect(&self.database_url()).await?;
        let store = Store::open(self.store.as_deref(), &self.data_dir)?;
        Ok((db, store))
    }

    /// What this process's proving-key caches may hold, and the ceilings its workers run
    /// under: the memory ceiling less the caches (one per job process, or one shared in
    /// process), since a cached key holds memory no job's estimate counts. Caches are cut to
    /// half the ceiling at most.
    pub fn memory_shares(&self) -> (usize, Ceilings) {
        let caches = if self.job_runner.is_some() {
            self.workers.max(1) as u64
        } else {
            1
        };
        let limit = self.ceilings.max_prove_memory;
        let mut cache = self.key_cache_bytes as u64;
        if cache.saturating_mul(caches) > limit / 2 {
            cache = limit / 2 / caches;
            tracing::warn!(
                "--key-cache-mb cut to {} MiB per job process: {caches} of them may hold at \
                 most half of --max-prove-memory",
                cache >> 20
            );
        }
        let ceilings = Ceilings {
            max_prove_memory: limit - cache * caches,
            ..self.ceilings
        };
        (cache as usize, ceilings)
    }

    /// Where the HTTP handlers cache (verifier folders) and keep scratch files.
    fn server_dir(&self) -> PathBuf {
        self.data_dir.join("server")
    }

    async fn spawn_background(&self, db: &Db, store: &Store) -> Result<Background> {
        let cache = self.data_dir.join("worker");
        std::fs::create_dir_all(&cache)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", cache.display())))?;
        // The worker loops of this data dir's previous run are gone: their jobs go back to
        // the queue now, not when their leases run out.
        let names_file = cache.join("names");
        if let Ok(previous) = std::fs::read_to_string(&names_file) {
            for name in previous.lines().filter(|l| !l.is_empty()) {
                match queue::orphan(db, name).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("{n} job(s) of the previous run's {name} requeued"),
                    Err(e) => tracing::warn!("requeueing the jobs of {name}: {e}"),
                }
                let _ = crate::fleet::leave(db, name).await;
            }
            if let Err(e) = queue::expire_leases(db).await {
                tracing::warn!("expiring leases: {e}");
            }
        }
        let names: Vec<String> = (0..self.workers).map(|_| new_id("wk")).collect();
        std::fs::write(&names_file, names.join("\n"))
            .map_err(|e| Error::Config(format!("cannot write {}: {e}", names_file.display())))?;
        let (stop, stop_rx) = watch::channel(Stop::Run);
        let (key_cache_bytes, ceilings) = self.memory_shares();
        let keys = Arc::new(KeyCache::new(key_cache_bytes));
        let capacity = Arc::new(Capacity::new(ceilings.max_prove_memory));
        let workers = names
            .into_iter()
            .map(|name| {
                let cfg = WorkerConfig {
                    name: name.clone(),
                    data_dir: cache.clone(),
                    srs: self.srs.clone(),
                    lease: self.lease,
                    poll: Duration::from_millis(250),
                    keys: keys.clone(),
                    ceilings,
                    capacity: capacity.clone(),
                    job_timeout: self.job_timeout,
                    unplaceable_grace: worker::UNPLACEABLE_GRACE,
                    child: self.job_runner.as_ref().map(|exe| ChildSpec {
                        exe: exe.clone(),
                        config: ChildConfig {
                            database_url: self.database_url(),
                            store: self.store.clone(),
                            service_dir: self.data_dir.clone(),
                            cache_dir: cache.clone(),
                            srs: self.srs.clone(),
                            lease_ms: self.lease.as_millis() as u64,
                            key_cache_bytes,
                            ceilings,
                            name: name.clone(),
                        },
                    }),
                };
                let run = worker::run(db.clone(), store.clone(), cfg, stop_rx.clone());
                (name, tokio::spawn(run))
            })
            .collect();
        let (stop_dispatcher, dispatcher_rx) = watch::channel(false);
        let dispatcher = tokio::spawn(callbacks::run(
            db.clone(),
            new_id("cb"),
            self.callbacks.clone(),
            dispatcher_rx,
        ));
        let purger = tokio::spawn(crate::retention::run(
            db.clone(),
            store.clone(),
            crate::retention::Retention::new(self.retention),
            crate::disk_cache::CacheDirs {
                dirs: vec![cache.clone(), self.server_dir()],
                scratch_age: crate::disk_cache::scratch_age(self.job_timeout),
            },
            PURGE_EVERY,
            stop_dispatcher.subscribe(),
        ));
        Ok(Background {
            workers,
            stop,
            dispatcher,
            purger,
            stop_dispatcher,
        })
    }
}

/// How often a process looks for deleted models past their retention (and for its cached
/// folders of deleted models).
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Serves the API on `bind` until Ctrl-C or SIGTERM; then stops taking requests and lets the
/// workers finish or release the jobs they hold. `on_listen` is told the bound address.
pub async fn serve(
    cfg: &ServiceConfig,
    bind: &str,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let (db, store) = cfg.open().await?;
    let background = cfg.spawn_background(&db, &store).await?;
    let state = AppState {
        ceilings: cfg.ceilings,
        allow_private_callbacks: cfg.callbacks.allow_private,
        metrics_token: cfg.metrics_token.as_deref().map(Arc::from),
        ..AppState::new(db, store, cfg.server_dir(), cfg.limits)
    };
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {bind}: {e}")))?;
    let metrics = match &cfg.metrics_bind {
        Some(at) => {
            let l = tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| Error::Config(format!("cannot listen on {at}: {e}")))?;
            let addr = l.local_addr().map_err(|e| Error::Config(e.to_string()))?;
            tracing::info!("metrics on http://{addr}/metrics");
            let app = crate::http::metrics_router(state.clone());
            Some(tokio::spawn(async move {
                axum::serve(l, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
            }))
        }
        None => None,
    };
    on_listen(
        listener
            .local_addr()
            .map_err(|e| Error::Config(e.to_string()))?,
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Error::Config(format!("server: {e}")))?;
    if let Some(m) = metrics {
        m.abort();
    }
    background
        .shutdown(cfg.shutdown_grace, shutdown_signal())
        .await;
    Ok(())
}

/// Runs `cfg.workers` worker loops (and a callback dispatcher) until Ctrl-C or SIGTERM, then
/// finishes or releases the jobs in hand. `on_start` is told the workers' names (as the queue
/// records them).
pub async fn work(cfg: &ServiceConfig, on_start: impl FnOnce(&[String])) -> Result<()> {
    let (db, store) = cfg.open().await?;
    let background = cfg.spawn_background(&db, &store).await?;
    on_start(
        &background
            .workers
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>(),
    );
    shutdown_signal().await;
    background
        .shutdown(cfg.shutdown_grace, shutdown_signal())
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_caches_come_out_of_the_memory_jobs_are_given() {
        let mut cfg = ServiceConfig::new(PathBuf::from("d"));
        cfg.ceilings.max_prove_memory = 16 << 30;
        cfg.key_cache_bytes = 2 << 30;
        cfg.workers = 3;
        // In process: one cache shared by the loops.
        let (cache, c) = cfg.memory_shares();
        assert_eq!((cache, c.max_prove_memory), (2 << 30, 14 << 30));
        // One job process per loop, each with its cache.
        cfg.job_runner = Some(PathBuf::from("zkinfer"));
        let (cache, c) = cfg.memory_shares();
        assert_eq!((cache, c.max_prove_memory), (2 << 30, 10 << 30));
        // Caches that would take more than half are cut to share half.
        cfg.workers = 8;
        let (cache, c) = cfg.memory_shares();
        assert_eq!((cache, c.max_prove_memory), (1 << 30, 8 << 30));
        assert_eq!(c.max_k, cfg.ceilings.max_k, "other ceilings are kept");
    }
}
