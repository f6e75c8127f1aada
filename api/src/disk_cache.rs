//! The folders a process caches from the store under `<cache dir>/models` (see
//! `executor::materialize_files`), each named for the model it holds: `<model id>` or
//! `<model id>.<part>` (a segment's keys, the segments' graphs, a verifier). Nothing else
//! removes them, so a tenant who uploads, proves and deletes models in a loop would fill a
//! worker's disk within its quotas: the folders of a deleted model are removed once no job of
//! it is queued, running or waiting (a delete lets running jobs finish). An operator who
//! restores a model within retention costs its next job one fetch from the store.
//!
//! Scratch folders are swept too: a job whose process is killed (its timeout, the kernel's
//! OOM killer) leaves its work folder behind, and a tenant can make jobs that end so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::db::Db;
use crate::error::Result;

/// A process's cache folders and how old its scratch folders may grow.
#[derive(Clone, Debug)]
pub struct CacheDirs {
    /// The folders it caches under (each holding `models/`) and makes scratch folders in.
    pub dirs: Vec<PathBuf>,
    /// Longer than any job may run ([`scratch_age`]).
    pub scratch_age: Duration,
}

impl CacheDirs {
    /// [`drop_deleted`] in each folder, logged.
    pub async fn sweep(&self, db: &Db) {
        for dir in &self.dirs {
            match drop_deleted(db, dir, self.scratch_age).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} cached or scratch folder(s) removed"),
                Err(e) => tracing::warn!("removing cached folders of deleted models: {e}"),
            }
        }
    }
}

/// How old a scratch folder may grow before it is taken for a dead job's: a day, or an hour
/// more than the jobs' timeout where that is longer.
pub fn scratch_age(job_timeout: Duration) -> Duration {
    (job_timeout + Duration::from_secs(3600)).max(Duration::from_secs(24 * 3600))
}

/// Removes, under `dir`, the cached folders of models that are deleted (or unknown) and have
/// no live job, and scratch folders (`.tmp…`: fetches into `models/`, jobs' and requests'
/// work folders in `dir`) older than `scratch_age`: a job process that was killed (timed
/// out, out of memory) never removed its own. Returns how many folders went.
pub async fn drop_deleted(db: &Db, dir: &Path, scratch_age: Duration) -> Result<usize> {
    let mut gone = Vec::new();
    let mut by_model: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for (folder, cache) in [(dir.to_path_buf(), false), (dir.join("models"), true)] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue; // nothing made there yet
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                let age = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|a| a > scratch_age) {
                    gone.push(entry.path());
                }
            } else if cache {
                let model = name.split('.').next().unwrap_or_default().to_string();
                by_model.entry(model).or_default().push(entry.path());
            }
        }
    }
    for (model, paths) in by_model {
        if !in_use(db, &model).await? {
            gone.extend(paths);
        }
    }
    // A proving key is gigabytes: removed off the async threads.
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        for path in gone {
            let r = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match r {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!("removing the cached {}: {e}", path.display()),
            }
        }
        removed
    })
    .await
    .unwrap_or(0);
    Ok(removed)
}

/// Whether `model` is not deleted, or has a job that may still read its folders.
async fn in_use(db: &Db, model: &str) -> Result<bool> {
    let live = sqlx::query("SELECT 1 FROM models WHERE id = $1 AND status <> 'deleted'")
        .bind(model)
        .fetch_optional(&db.pool)
        .await?;
    if live.is_some() {
        return Ok(true);
    }
    let jobs = sqlx::query(
        "SELECT 1 FROM jobs WHERE model_id = $1 AND status IN ('queued', 'running', 'waiting') LIMIT 1",
    )
    .bind(model)
    .fetch_optional(&db.pool)
    .await?;
    Ok(jobs.is_some())
}
