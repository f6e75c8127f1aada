//! `GET /metrics`: Prometheus text exposition for the operator. It reads the counters jobs add
//! to as they end (`crate::counters`) and counts the jobs now queued or running, so a scrape
//! costs the same however many jobs have run, and counts the work of every process. No label
//! names a tenant.
//!
//! Tenants never see it: on the public bind it answers only `Authorization: Bearer TOKEN`
//! with the operator's `--metrics-token` (404 without one configured), and `--metrics-bind`
//! serves it alone on an address of the operator's network.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{ApiError, ApiResult, AppState};
use crate::counters::{self, BUCKETS};

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The router of `--metrics-bind`: `/metrics` with no token (the address is the operator's).
pub fn operator_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(exposition))
        .with_state(state)
}

/// Whether `headers` carry the operator's metrics token. Compared as sha256 digests, so the
/// time taken says nothing about how much of the token matched.
fn authorised(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = state.metrics_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_route",
            "no such route (metrics are served with --metrics-token or on --metrics-bind)",
        ));
    };
    let given = super::bearer(headers).unwrap_or("");
    if Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "metrics take Authorization: Bearer with the operator's metrics token",
        ))
    }
}

/// Prometheus metrics (operator only).
#[utoipa::path(get, path = "/metrics", security(("operator" = [])), tag = "service",
    responses((status = 200, description = "Prometheus text: jobs queued and running, jobs ended, prove seconds, queue depth, lease expiries", content_type = "text/plain"),
        (status = 401, description = "unauthorized: not the operator's metrics token", body = super::openapi::ErrorBody),
        (status = 404, description = "no_such_route: no metrics token configured", body = super::openapi::ErrorBody)))]
pub(super) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorised(&state, &headers)?;
    exposition(State(state)).await
}

async fn exposition(State(state): State<AppState>) -> ApiResult<Response> {
    let pool = &state.db.pool;
    let mut out = String::new();
    // Only open jobs are counted here: the index on (status, …) bounds it by the queue.
    let rows = sqlx::query(
        "SELECT kind, status, CAST(COUNT(*) AS BIGINT) FROM jobs \
         WHERE status IN ('queued', 'running', 'waiting') GROUP BY kind, status \
         ORDER BY kind, status",
    )
    .fetch_all(pool)
    .await
    .map_err(crate::Error::from)?;
    out.push_str(
        "# HELP zkinfer_jobs Jobs queued, running or waiting for their segments, by kind.\n# TYPE zkinfer_jobs gauge\n",
    );
    let mut depth = 0;
    for r in &rows {
        let (kind, status, n): (String, String, i64) = (
            r.try_get(0).map_err(crate::Error::from)?,
            r.try_get(1).map_err(crate::Error::from)?,
            r.try_get(2).map_err(crate::Error::from)?,
        );
        if status == "queued" {
            depth += n;
        }
        let _ = writeln!(
            out,
            "zkinfer_jobs{{kind=\"{kind}\",state=\"{status}\"}} {n}"
        );
    }
    let _ = writeln!(out, "# HELP zkinfer_queue_depth Jobs waiting for a worker.\n# TYPE zkinfer_queue_depth gauge\nzkinfer_queue_depth {depth}");

    let all = counters::all(&state.db).await?;
    let get = |name: &str, label: &str| {
        all.iter()
            .find(|(n, l, _)| n == name && l == label)
            .map_or(0, |c| c.2)
    };
    out.push_str("# HELP zkinfer_jobs_ended_total Jobs that ended, by kind and state.\n# TYPE zkinfer_jobs_ended_total counter\n");
    for (_, label, n) in all.iter().filter(|c| c.0 == counters::JOBS_ENDED) {
        let _ = writeln!(out, "zkinfer_jobs_ended_total{{{label}}} {n}");
    }
    let _ = writeln!(out, "# HELP zkinfer_lease_expiries_total Claims lost because a worker stopped renewing its lease.\n# TYPE zkinfer_lease_expiries_total counter\nzkinfer_lease_expiries_total {}", get(counters::LEASE_EXPIRIES, ""));
    out.push_str("# HELP zkinfer_prove_seconds Run time of succeeded proof jobs.\n# TYPE zkinfer_prove_seconds histogram\n");
    let mut cumulative = 0;
    for b in BUCKETS {
        cumulative += get(counters::PROVE_RUNS, &format!("le=\"{b}\""));
        let _ = writeln!(
            out,
            "zkinfer_prove_seconds_bucket{{le=\"{b}\"}} {cumulative}"
        );
    }
    let count = get(counters::PROVE_RUNS, "count");
    let sum = get(counters::PROVE_RUNS, "sum_ms") as f64 / 1000.0;
    let _ = writeln!(out, "zkinfer_prove_seconds_bucket{{le=\"+Inf\"}} {count}\nzkinfer_prove_seconds_sum {sum}\nzkinfer_prove_seconds_count {count}");
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
