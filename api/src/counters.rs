//! Counters `/metrics` reads instead of scanning jobs: each is added to in the transaction
//! that ends a job, so a scrape costs a handful of rows however many jobs have run, and every
//! process's work counts (a process-local registry would see only its own).
//!
//! A counter is a name and a Prometheus label set (kinds, states and bucket bounds are the
//! service's own words, never a tenant's).

use sqlx::{Any, Row, Transaction};

use crate::db::Db;
use crate::error::Result;

/// Jobs that ended, labelled `kind="…",state="…"`.
pub const JOBS_ENDED: &str = "jobs_ended";
/// Claims lost because a worker stopped renewing its lease (no labels).
pub const LEASE_EXPIRIES: &str = "lease_expiries";
/// Succeeded proof jobs by run time: one count per bucket `le="…"` (not cumulative; the
/// exposition adds them up), plus `sum_ms` and `count`.
pub const PROVE_RUNS: &str = "prove_runs";

/// Upper bounds (seconds) of the run-time histogram buckets.
pub const BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// Additions to counters, written together in one order (by name, then label) by every
/// transaction, so two transactions never wait for each other's counter rows in a cycle.
#[derive(Debug, Default)]
pub(crate) struct Adds(std::collections::BTreeMap<(&'static str, String), i64>);

impl Adds {
    /// Adds `by` to counter `name{label}`.
    pub(crate) fn add(&mut self, name: &'static str, label: &str, by: i64) {
        *self.0.entry((name, label.to_string())).or_default() += by;
    }

    /// Counts a job of `kind` ending in `state`.
    pub(crate) fn job_ended(&mut self, kind: &str, state: &str) {
        self.add(JOBS_ENDED, &format!("kind=\"{kind}\",state=\"{state}\""), 1);
    }

    /// Counts a succeeded proof job that ran `run_ms`.
    pub(crate) fn prove_ran(&mut self, run_ms: i64) {
        let secs = run_ms as f64 / 1000.0;
        let bucket = BUCKETS
            .iter()
            .find(|&&b| secs <= b)
            .map_or("+Inf".to_string(), |b| b.to_string());
        self.add(PROVE_RUNS, &format!("le=\"{bucket}\""), 1);
        self.add(PROVE_RUNS, "sum_ms", run_ms);
        self.add(PROVE_RUNS, "count", 1);
    }

    /// Writes them in `tx`.
    pub(crate) async fn write(self, tx: &mut Transaction<'_, Any>) -> Result<()> {
        for ((name, label), by) in self.0 {
            if by == 0 {
                continue;
            }
            sqlx::query(
                "INSERT INTO counters (name, label, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (name, label) DO UPDATE SET value = counters.value + excluded.value",
            )
            .bind(name)
            .bind(label)
            .bind(by)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// Every counter: (name, label, value).
pub async fn all(db: &Db) -> Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query("SELECT name, label, value FROM counters ORDER BY name, label")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}
