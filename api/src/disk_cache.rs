//! The folders a process caches from the store under `<cache dir>/models` (see
//! `executor::materialize_files`), each named for the model it holds: `<model id>` or
//! `<model id>.<part>` (a segment's keys, the segments' graphs, a verifier). Nothing else
//! removes them, so a tenant who uploads, proves and deletes models in a loop would fill a
//! worker's disk within its quotas: the folders of a deleted model are removed once no job of
//! it is queued, running or waiting (a delete lets running jobs finish). An operator who
//! restores a model within retention costs its next job one fetch from the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::db::Db;
use crate::error::Result;

/// A scratch folder (a fetch in progress) older than this was left by a process that died.
const STALE_SCRATCH: Duration = Duration::from_secs(24 * 3600);

/// Removes the cached folders under `dir` of models that are deleted (or unknown) and have
/// no live job, and scratch folders older than a day; returns how many folders went.
pub async fn drop_deleted(db: &Db, dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir.join("models")) else {
        return Ok(0); // nothing cached yet
    };
    let mut by_model: HashMap<String, Vec<PathBuf>> = HashMap::new();
    let mut gone = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            if age.is_some_and(|a| a > STALE_SCRATCH) {
                gone.push(entry.path());
            }
            continue;
        }
        let model = name.split('.').next().unwrap_or_default().to_string();
        by_model.entry(model).or_default().push(entry.path());
    }
    for (model, paths) in by_model {
        if !in_use(db, &model).await? {
            gone.extend(paths);
        }
    }
    let mut removed = 0;
    for path in gone {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!("removing the cached {}: {e}", path.display()),
        }
    }
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
