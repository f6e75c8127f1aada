//! Proof jobs: request (`POST /v1/models/{id}/proofs`), poll, fetch the proof file, cancel.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zkinfer_circuits::artifacts::Settings;

use super::{ApiError, ApiResult, AppState, Tenant};
use crate::models;
use crate::queue::{self, Enqueued, JobKind, JobRow, NewJob};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/models/{id}/proofs", post(request_proof))
        .route("/v1/jobs/{id}", get(show).delete(cancel))
        .route("/v1/jobs/{id}/proof.json", get(proof_file))
}

/// The body: an EZKL-format input (other fields of an input.json are ignored) and an
/// optional callback.
#[derive(Deserialize)]
struct ProofRequest {
    input_data: Value,
    #[serde(default)]
    callback_url: Option<String>,
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

async fn request_proof(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: ProofRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    let model = models::get(&state.db, &tenant, &model_id)
        .await?
        .ok_or_else(|| ApiError::not_found("model", &model_id))?;
    let artifacts = match (model.status.as_str(), &model.artifacts) {
        ("ready", Some(a)) => a.clone(),
        (status, _) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "model_not_ready",
                format!("model {model_id} is {status}"),
            ))
        }
    };
    // The input is checked now (shape, NaN, range), so a bad one never becomes a job.
    let settings_key = artifacts[zkinfer_circuits::artifacts::files::SETTINGS]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let settings: Settings = serde_json::from_slice(&state.store.get(&settings_key).await?)
        .map_err(|e| ApiError::from(crate::Error::Config(format!("stored settings: {e}"))))?;
    let text = json!({ "input_data": req.input_data }).to_string();
    let data = zkinfer_model::parse_input_json(&text)
        .map_err(|e| unprocessable("invalid_input", e.to_string()))?;
    settings
        .quantize_input(&data)
        .map_err(|e| unprocessable("invalid_input", e.to_string()))?;
    if queue::open_jobs(&state.db, &tenant).await? >= state.limits.max_queued_jobs {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_jobs",
            format!(
                "at most {} queued or running jobs per tenant",
                state.limits.max_queued_jobs
            ),
        ));
    }
    let payload = json!({ "input_data": req.input_data });
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                "Idempotency-Key is not text",
            )
        })?;
    // The same key with another model or body is a conflict, not the same job.
    let mut hasher = Sha256::new();
    hasher.update(model_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(&body);
    let hash = hex::encode(hasher.finalize());
    let job = NewJob {
        tenant_id: &tenant,
        model_id: &model_id,
        kind: JobKind::Prove,
        payload: &payload,
        max_attempts: state.limits.max_attempts,
        idempotency: key.as_deref().map(|k| (k, hash.as_str())),
        callback_url: req.callback_url.as_deref(),
    };
    let (status, id) = match queue::enqueue(&state.db, &job).await? {
        Enqueued::New(id) => (StatusCode::ACCEPTED, id),
        Enqueued::Existing(id) => (StatusCode::OK, id),
    };
    Ok((status, Json(json!({ "job_id": id }))))
}

/// The JSON of a job.
pub fn job_json(j: &JobRow) -> Value {
    let mut v = json!({
        "id": j.id,
        "model_id": j.model_id,
        "kind": j.kind,
        "status": j.status,
        "attempts": j.attempts,
        "timings": { "queued_ms": j.times.0, "started_ms": j.times.1, "finished_ms": j.times.2 },
    });
    if let Some(code) = &j.error_code {
        v["error"] = json!({ "code": code, "message": j.error.clone().unwrap_or_default() });
    }
    if let Some(r) = &j.result {
        let p = &r["proof_file"];
        for field in ["outputs", "inputs", "instances", "proof", "model_id"] {
            if !p[field].is_null() {
                v[field] = p[field].clone();
            }
        }
        v["timings"]["prove_ms"] = r["prove_ms"].clone();
    }
    v
}

async fn load(state: &AppState, tenant: &str, id: &str) -> ApiResult<JobRow> {
    queue::get(&state.db, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))
}

async fn show(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(job_json(&load(&state, &tenant, &id).await?)))
}

async fn proof_file(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job = load(&state, &tenant, &id).await?;
    match job.result.as_ref().map(|r| &r["proof_file"]) {
        Some(p) if !p.is_null() => Ok(Json(p.clone())),
        _ => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_proof",
            format!("job {id} is {}: no proof", job.status),
        )),
    }
}

async fn cancel(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job = load(&state, &tenant, &id).await?;
    if queue::cancel(&state.db, &tenant, &id).await? {
        Ok(Json(json!({ "id": id, "status": "cancelled" })))
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            format!(
                "job {id} is {}: only queued jobs can be cancelled",
                job.status
            ),
        ))
    }
}
