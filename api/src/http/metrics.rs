//! `GET /metrics`: Prometheus text exposition, computed from the database at each scrape, so
//! it counts the work of every worker on every machine (a process-local registry would see
//! only this process's). Written by hand: a few lines of a stable text format.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sqlx::Row;

use super::{ApiResult, AppState};

/// Upper bounds (seconds) of the run-time histogram buckets.
const BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", security(()), tag = "service",
    responses((status = 200, description = "Prometheus text: jobs by state, prove seconds, queue depth, lease expiries", content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let pool = &state.db.pool;
    let mut out = String::new();
    let rows = sqlx::query(
        "SELECT kind, status, CAST(COUNT(*) AS BIGINT) FROM jobs GROUP BY kind, status ORDER BY kind, status",
    )
    .fetch_all(pool)
    .await
    .map_err(crate::Error::from)?;
    out.push_str("# HELP zkinfer_jobs Jobs by kind and state.\n# TYPE zkinfer_jobs gauge\n");
    for r in &rows {
        let (kind, status, n): (String, String, i64) = (
            r.try_get(0).map_err(crate::Error::from)?,
            r.try_get(1).map_err(crate::Error::from)?,
            r.try_get(2).map_err(crate::Error::from)?,
        );
        let _ = writeln!(
            out,
            "zkinfer_jobs{{kind=\"{kind}\",state=\"{status}\"}} {n}"
        );
    }
    let depth: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE status = 'queued'")
            .fetch_one(pool)
            .await
            .map_err(crate::Error::from)?;
    let _ = writeln!(out, "# HELP zkinfer_queue_depth Jobs waiting for a worker.\n# TYPE zkinfer_queue_depth gauge\nzkinfer_queue_depth {depth}");
    // Each claim after the first follows a lease expiry; a job failed as worker_lost had one more.
    let expiries: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), 0) \
         + COALESCE(SUM(CASE WHEN error_code = 'worker_lost' THEN 1 ELSE 0 END), 0) AS BIGINT) FROM jobs",
    )
    .fetch_one(pool)
    .await
    .map_err(crate::Error::from)?;
    let _ = writeln!(out, "# HELP zkinfer_lease_expiries_total Claims lost because a worker stopped renewing its lease.\n# TYPE zkinfer_lease_expiries_total counter\nzkinfer_lease_expiries_total {expiries}");
    let runs: Vec<i64> = sqlx::query_scalar(
        "SELECT run_ms FROM jobs WHERE kind = 'prove' AND status = 'succeeded' AND run_ms IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .map_err(crate::Error::from)?;
    out.push_str("# HELP zkinfer_prove_seconds Run time of succeeded proof jobs.\n# TYPE zkinfer_prove_seconds histogram\n");
    for b in BUCKETS {
        let n = runs.iter().filter(|&&ms| ms as f64 / 1000.0 <= *b).count();
        let _ = writeln!(out, "zkinfer_prove_seconds_bucket{{le=\"{b}\"}} {n}");
    }
    let sum: f64 = runs.iter().map(|&ms| ms as f64 / 1000.0).sum();
    let _ = writeln!(out, "zkinfer_prove_seconds_bucket{{le=\"+Inf\"}} {}\nzkinfer_prove_seconds_sum {sum}\nzkinfer_prove_seconds_count {}", runs.len(), runs.len());
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
