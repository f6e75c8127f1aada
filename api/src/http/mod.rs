//! The HTTP API (axum): one router per resource, one state, bearer-key authentication.

mod envelope;
mod error;
mod fhe;
mod jobs;
mod metrics;
mod models;
mod openapi;
mod parse_gate;
mod segmented;
mod verifier;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub use error::{ApiError, ApiResult, ERROR_CODES, JOB_ERROR_CODES};
pub use metrics::operator_router as metrics_router;
pub use openapi::document as openapi_document;
pub use parse_gate::ParseGate;
pub use verifier::VerifierCache;

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
    /// Model uploads parsed at once.
    pub max_parses: usize,
    /// Model uploads of one tenant parsed at once (more: 429).
    pub max_parses_per_tenant: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_upload_bytes: 64 << 20,
            max_fhe_key_bytes: 512 << 20,
            max_queued_jobs: 1000,
            max_attempts: 3,
            max_parses: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_parses_per_tenant: 2,
        }
    }
}

/// Models whose verifier folders stay open (each holds a verifying key and a few points).
const VERIFIERS_CACHED: usize = 64;

/// Server-key uploads read at once (each tenant one).
const KEY_UPLOADS: usize = 2;

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
    /// What a model may cost at most: upload settings above these are refused.
    pub ceilings: crate::ceilings::Ceilings,
    /// Whether callbacks may target loopback and private addresses.
    pub allow_private_callbacks: bool,
    /// The pool model uploads are parsed in.
    pub parsing: Arc<ParseGate>,
    /// Opened verifier folders and Solidity builds.
    pub verifiers: Arc<VerifierCache>,
    /// FHE server-key uploads being read (they are hundreds of MB each).
    pub key_uploads: Arc<ParseGate>,
    /// The operator's token for `/metrics` on the public bind (none: not served there).
    pub metrics_token: Option<Arc<str>>,
}

impl AppState {
    /// A state on `db` and `store`, caching under `data_dir`, with these limits and the
    /// default ceilings; callbacks to private addresses refused.
    pub fn new(db: Db, store: Store, data_dir: PathBuf, limits: Limits) -> Self {
        Self {
            db,
            store,
            data_dir,
            limits,
            ceilings: Default::default(),
            allow_private_callbacks: false,
            parsing: Arc::new(ParseGate::new(
                "model uploads parsed",
                limits.max_parses,
                limits.max_parses_per_tenant,
            )),
            verifiers: Arc::new(VerifierCache::new(VERIFIERS_CACHED)),
            key_uploads: Arc::new(ParseGate::new("server-key uploads read", KEY_UPLOADS, 1)),
            metrics_token: None,
        }
    }
}

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    let limit = state.limits.max_upload_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .merge(models::router())
        .merge(verifier::router())
        .merge(jobs::router())
        .merge(fhe::router())
        .merge(metrics::router())
        .merge(openapi::router())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such route")
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(envelope::json_errors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            envelope::panic_response,
        ))
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            envelope::MakeId,
        ))
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

/// The credential of `Authorization: Bearer CREDENTIAL`, trimmed. The scheme is
/// case-insensitive (RFC 9110 §11.1).
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credential)| credential.trim())
}

/// The tenant a request's `Authorization: Bearer KEY` belongs to.
pub struct Tenant(pub String);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Err(unauthorized("missing Authorization: Bearer KEY"));
        }
        let key = bearer(&parts.headers)
            .ok_or_else(|| unauthorized("Authorization must be Bearer KEY"))?;
        match tenants::authenticate(&state.db, key).await? {
            Ok(id) => Ok(Tenant(id)),
            Err(refused) => Err(unauthorized(refused.message())),
        }
    }
}
