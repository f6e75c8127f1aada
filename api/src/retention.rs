//! Retention: a deleted model keeps its rows and blobs for the retention period (a tenant's
//! mistake can still be undone by the operator), then is purged: its upload, compiled folder,
//! keys, FHE server keys, Solidity verifier and its jobs' inputs and results go.
//!
//! Blobs are content-addressed and shared (two tenants uploading the same file store it once),
//! so a purge never deletes a model's blobs directly: it drops the rows, then a mark-and-sweep
//! deletes every blob that no row refers to any more and that is older than the retention
//! period. Every reference to a blob in the database is the text `sha256/<64 hex>`, so the
//! mark step reads the columns that hold them without knowing their layout. A blob is looked
//! at again just before it is deleted: one stored again since the listing (`Store::put` stores
//! an old blob anew, refreshing its age) is kept.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::watch;

use crate::db::{now_ms, Db};
use crate::disk_cache::CacheDirs;
use crate::error::Result;
use crate::store::Store;

/// What a purge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Deleted models purged.
    pub models: u64,
    /// Blobs deleted (no row refers to them).
    pub blobs: u64,
}

/// Every blob key in `text` (`sha256/` and 64 hex digits).
fn blob_keys(text: &str, into: &mut HashSet<String>) {
    const PREFIX: &str = "sha256/";
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let tail = &rest[at + PREFIX.len()..];
        let hex: String = tail
            .chars()
            .take(64)
            .take_while(char::is_ascii_hexdigit)
            .collect();
        if hex.len() == 64 {
            into.insert(format!("{PREFIX}{hex}"));
        }
        rest = &rest[at + PREFIX.len()..];
    }
}

/// How long deleted models and unreferenced blobs are kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// A deleted model's rows, from its deletion.
    pub models: Duration,
    /// A blob no row refers to, from when it was last stored. It must be longer than
    /// `Store::put`'s refresh age (twice it, with [`Retention::new`]): a blob put again while
    /// the sweep runs is then either refreshed (and kept) or young enough to be kept anyway.
    pub blobs: Duration,
}

impl Retention {
    /// Models kept `period` after their deletion, unreferenced blobs as long (at least two
    /// hours).
    pub fn new(period: Duration) -> Self {
        let floor = Duration::from_millis(2 * crate::store::REFRESH_AFTER_MS as u64);
        Self {
            models: period,
            blobs: period.max(floor),
        }
    }
}

fn cutoff(d: Duration) -> i64 {
    now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Drops the rows of models deleted more than `retention.models` ago (their uploads,
/// artifacts, FHE server keys, verifiers, and their jobs' payloads and results), then deletes
/// the blobs no row refers to that were last stored more than `retention.blobs` ago.
pub async fn purge(db: &Db, store: &Store, retention: Retention) -> Result<Purged> {
    let cutoff_models = cutoff(retention.models);
    let mut tx = db.pool.begin().await?;
    let models = sqlx::query(
        "UPDATE models SET upload = NULL, artifacts = NULL, purged_ms = $1 \
         WHERE status = 'deleted' AND purged_ms IS NULL AND updated_ms < $2 RETURNING id",
    )
    .bind(now_ms())
    .bind(cutoff_models)
    .fetch_all(&mut *tx)
    .await?;
    for row in &models {
        let id: String = row.try_get(0)?;
        for sql in [
            "DELETE FROM evm_verifiers WHERE model_id = $1",
            "DELETE FROM fhe_keys WHERE model_id = $1",
            // Inputs and results are the tenant's data: they go with the model. Running jobs
            // (a delete lets them finish) are left for the next purge.
            "UPDATE jobs SET payload = '{}', result = NULL \
             WHERE model_id = $1 AND status NOT IN ('queued', 'running', 'waiting')",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;

    // Mark: every blob a row refers to.
    let mut live = HashSet::new();
    for sql in [
        "SELECT upload, artifacts FROM models WHERE upload IS NOT NULL OR artifacts IS NOT NULL",
        // Proofs (and their segments' jobs) hold inputs and proofs, never a blob's key.
        "SELECT payload, result FROM jobs WHERE kind NOT IN ('prove', 'prove_segment')",
        "SELECT store_key, NULL FROM fhe_keys",
        "SELECT store_key, NULL FROM evm_verifiers",
    ] {
        for row in sqlx::query(sql).fetch_all(&db.pool).await? {
            for i in 0..2 {
                if let Some(text) = row.try_get::<Option<String>, _>(i)? {
                    blob_keys(&text, &mut live);
                }
            }
        }
    }
    // Sweep: what nothing refers to, old enough, and not stored again since the listing.
    let mut blobs = 0;
    let blob_cutoff = cutoff(retention.blobs);
    for (key, modified_ms) in store.list_aged().await? {
        if live.contains(&key) || modified_ms >= blob_cutoff {
            continue;
        }
        if store.delete_if_older(&key, blob_cutoff).await? {
            blobs += 1;
        }
    }
    Ok(Purged {
        models: models.len() as u64,
        blobs,
    })
}

/// Purges every `every` until `stop` turns true (each process may: a purge is idempotent),
/// and drops this process's cached folders (`caches`) of deleted models and its stale
/// scratch folders.
pub async fn run(
    db: Db,
    store: Store,
    retention: Retention,
    caches: CacheDirs,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match purge(&db, &store, retention).await {
            Ok(p) if p == Purged::default() => {}
            Ok(p) => tracing::info!("purged {} deleted model(s), {} blob(s)", p.models, p.blobs),
            Err(e) => tracing::warn!("purging deleted models: {e}"),
        }
        caches.sweep(&db).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_are_found_in_any_text() {
        let a = "a".repeat(64);
        let b = "0123456789abcdef".repeat(4);
        let text = format!(
            r#"{{"onnx":"sha256/{a}","x":["sha256/{b}"],"short":"sha256/abc","n":"sha256/{a}"}}"#
        );
        let mut keys = HashSet::new();
        blob_keys(&text, &mut keys);
        let mut keys: Vec<_> = keys.into_iter().collect();
        keys.sort();
        assert_eq!(keys, [format!("sha256/{b}"), format!("sha256/{a}")]);
    }
}
