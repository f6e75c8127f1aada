//! Running the service: `zkinfer serve` (HTTP and, unless `--workers 0`, workers in process)
//! and `zkinfer worker` (workers only, on a shared database and store).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex};

use crate::db::{new_id, Db};
use crate::error::{Error, Result};
use crate::http::{router, AppState, Limits};
use crate::store::Store;
use crate::worker::{self, WorkerConfig};

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
}

impl ServiceConfig {
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

    fn spawn_workers(
        &self,
        db: &Db,
        store: &Store,
        stop: &watch::Receiver<bool>,
    ) -> Result<Vec<(String, tokio::task::JoinHandle<()>)>> {
        let cache = self.data_dir.join("worker");
        std::fs::create_dir_all(&cache)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", cache.display())))?;
        Ok((0..self.workers)
            .map(|_| {
                let name = new_id("wk");
                let cfg = WorkerConfig {
                    name: name.clone(),
                    data_dir: cache.clone(),
                    srs: self.srs.clone(),
                    lease: self.lease,
                    poll: Duration::from_millis(250),
                };
                (
                    name,
                    tokio::spawn(worker::run(db.clone(), store.clone(), cfg, stop.clone())),
                )
            })
            .collect())
    }
}

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
/// workers finish the jobs they hold. `on_listen` is told the bound address.
pub async fn serve(
    cfg: &ServiceConfig,
    bind: &str,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let (db, store) = cfg.open().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = cfg.spawn_workers(&db, &store, &stop_rx)?;
    let state = AppState {
        db,
        store,
        data_dir: cfg.data_dir.join("server"),
        limits: cfg.limits,
        cache_lock: Arc::new(Mutex::new(())),
    };
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {bind}: {e}")))?;
    on_listen(
        listener
            .local_addr()
            .map_err(|e| Error::Config(e.to_string()))?,
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Error::Config(format!("server: {e}")))?;
    let _ = stop_tx.send(true);
    for (_, w) in workers {
        let _ = w.await;
    }
    Ok(())
}

/// Runs `cfg.workers` worker loops until Ctrl-C or SIGTERM, then finishes the jobs in hand.
/// `on_start` is told the workers' names (as the queue records them).
pub async fn work(cfg: &ServiceConfig, on_start: impl FnOnce(&[String])) -> Result<()> {
    let (db, store) = cfg.open().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = cfg.spawn_workers(&db, &store, &stop_rx)?;
    on_start(&workers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    for (_, w) in workers {
        let _ = w.await;
    }
    Ok(())
}
