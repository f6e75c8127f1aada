//! The HTTP API (axum): one router per resource, one state, bearer-key authentication.

mod error;
mod fhe;
mod jobs;
mod metrics;
mod models;
mod openapi;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Mutex;

pub use error::{ApiError, ApiResult};
pub use openapi::document as openapi_document;

use crate::db::Db;
use crate::store::Store;
use crate::tenants;

/// Limits the service enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body (uploads), in bytes.
    pub max_upload_bytes: usize,
    /// Largest FHE server key upload, in bytes (a compressed m3c3 key is 283 MB).
    pub max_fhe_key_bytes: usize,
    /// Queued and running jobs one tenant may have.
    pub max_queued_jobs: i64,
    /// Attempts of a job before it fails for good.
    pub max_attempts: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_upload_bytes: 64 << 20,
            max_fhe_key_bytes: 512 << 20,
            max_queued_jobs: 1000,
            max_attempts: 3,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The artifact store.
    pub store: Store,
    /// Where the server caches compiled folders (for verification).
    pub data_dir: PathBuf,
    /// Limits.
    pub limits: Limits,
    /// Serialises fetching folders into the cache.
    pub cache_lock: Arc<Mutex<()>>,
    /// Whether callbacks may target loopback and private addresses.
    pub allow_private_callbacks: bool,
}

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    let limit = state.limits.max_upload_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .merge(models::router())
        .merge(jobs::router())
        .merge(fhe::router(state.limits.max_fhe_key_bytes))
        .merge(metrics::router())
        .merge(openapi::router())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such route")
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", security(()), tag = "service",
    responses((status = 200, body = openapi::Health), (status = 500, body = openapi::ErrorBody)))]
async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<Json<serde_json::Value>> {
    sqlx::query("SELECT 1")
        .execute(&state.db.pool)
        .await
        .map_err(crate::Error::from)?;
    Ok(Json(json!({ "status": "ok" })))
}

/// The tenant a request's `Authorization: Bearer KEY` belongs to.
pub struct Tenant(pub String);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer KEY"))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("Authorization must be Bearer KEY"))?;
        match tenants::authenticate(&state.db, key.trim()).await? {
            Some(id) => Ok(Tenant(id)),
            None => Err(unauthorized("unknown API key")),
        }
    }
}
