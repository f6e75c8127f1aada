//! Encrypted inference over HTTP: fetch a model's FHE program (the client makes its key set
//! from it), upload a server key, request a run on a ciphertext, fetch the encrypted result.
//! The client key never reaches the service.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use zkinfer_fhe::{check_file, FheError, FheProgram, Kind};

use super::openapi::{ErrorBody, FheKey, FheRunForm, JobAccepted};
use super::{ApiError, ApiResult, AppState, Tenant};
use crate::fhe::{self, FheKeyRow};
use crate::queue::{self, JobKind, NewJob};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/models/{id}/fhe.json", get(program_file))
        // Server keys are far larger than other uploads (a compressed m3c3 key is 283 MB):
        // the route reads its body itself, under its own limit, once the model is found.
        .route(
            "/v1/models/{id}/fhe/keys",
            post(upload_key).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/models/{id}/fhe/keys/{key_id}", get(show_key))
        .route("/v1/models/{id}/fhe/runs", post(request_run))
        .route("/v1/jobs/{id}/result.bin", get(result_file))
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// A ready model's `fhe.json` bytes and its program: 409 `fhe_unavailable` (with the reason)
/// when it has none.
async fn model_program(
    state: &AppState,
    tenant: &str,
    id: &str,
) -> ApiResult<(Vec<u8>, FheProgram)> {
    let artifacts = super::models::ready_artifacts(state, tenant, id).await?;
    match fhe::stored_program(&state.store, &artifacts, id).await {
        Ok(p) => Ok(p),
        Err(e @ FheError::DoesNotFit(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "fhe_unavailable",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::from(crate::Error::Config(format!(
            "stored {}: {e}",
            zkinfer_fhe::folder::FHE_FILE
        )))),
    }
}

/// The model's FHE program (`fhe.json`): put it in a folder and run `zkinfer fhe keygen` on
/// that folder to make a key set.
#[utoipa::path(get, path = "/v1/models/{id}/fhe.json", params(("id" = String, Path, description = "model id")), tag = "fhe",
    responses((status = 200, description = "fhe.json, as `zkinfer compile` writes it", content_type = "application/json"),
        (status = 404, description = "no such model (or another tenant's)", body = ErrorBody),
        (status = 409, description = "model_not_ready, fhe_unavailable (with the reason)", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn program_file(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (bytes, _) = model_program(&state, &tenant, &id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Uploads the server key (`KEYS/server.key`) of a key set made for the model's FHE program;
/// the body is the file as it is.
#[utoipa::path(post, path = "/v1/models/{id}/fhe/keys", params(("id" = String, Path, description = "model id")), tag = "fhe",
    request_body(content = Vec<u8>, description = "KEYS/server.key", content_type = "application/octet-stream"),
    responses((status = 201, body = FheKey),
        (status = 400, description = "invalid_key (not a whole server key file)", body = ErrorBody),
        (status = 404, description = "no such model (or another tenant's)", body = ErrorBody),
        (status = 409, description = "model_not_ready, fhe_unavailable", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 422, description = "fhe_mismatch (made for another model's program)", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn upload_key(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // Authorised, the model found with a program, and a place among the uploads in progress
    // held, before one byte of the body is read: a post to a missing model costs nothing.
    let (_, program) = model_program(&state, &tenant, &id).await?;
    let _place = state.key_uploads.enter(&tenant).await?;
    let limit = state.limits.max_fhe_key_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a server key upload is at most {limit} bytes"),
        )
    })?;
    let (header, _) = check_file(&body, Kind::ServerKey, "the uploaded server key")
        .map_err(|e| ApiError::bad_request("invalid_key", e.to_string()))?;
    if header.program_sha256 != program.sha256() {
        return Err(unprocessable(
            "fhe_mismatch",
            format!("the server key was made for another FHE program than model {id}'s: make a key set from GET /v1/models/{id}/fhe.json"),
        ));
    }
    let bytes = body.len();
    let store_key = state.store.put(body).await?;
    let row = fhe::insert_key(&state.db, &tenant, &id, &header, &store_key, bytes).await?;
    Ok((StatusCode::CREATED, Json(row.to_json())))
}

async fn load_key(state: &AppState, tenant: &str, model: &str, key: &str) -> ApiResult<FheKeyRow> {
    fhe::get_key(&state.db, tenant, model, key)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "fhe_key_not_found",
                format!("model {model} has no server key {key}"),
            )
        })
}

/// An uploaded server key.
#[utoipa::path(get, path = "/v1/models/{id}/fhe/keys/{key_id}", params(("id" = String, Path, description = "model id"), ("key_id" = String, Path, description = "server key id")), tag = "fhe",
    responses((status = 200, body = FheKey),
        (status = 404, description = "fhe_key_not_found", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn show_key(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, key_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        load_key(&state, &tenant, &id, &key_id).await?.to_json(),
    ))
}

/// Requests an encrypted run: the form carries `key_id` (an uploaded server key of this model),
/// `ciphertext` (the file `zkinfer fhe encrypt` wrote, under that key set) and optionally
/// `callback_url`. The job's result is `GET /v1/jobs/{id}/result.bin`, which only the client
/// key decrypts (`zkinfer fhe decrypt`).
#[utoipa::path(post, path = "/v1/models/{id}/fhe/runs", params(("id" = String, Path, description = "model id")), tag = "fhe",
    request_body(content = FheRunForm, content_type = "multipart/form-data"),
    responses((status = 202, body = JobAccepted),
        (status = 200, description = "the job an earlier request with this Idempotency-Key made", body = JobAccepted),
        (status = 400, description = "invalid_multipart, missing_field, invalid_ciphertext", body = ErrorBody),
        (status = 404, description = "model_not_found, fhe_key_not_found", body = ErrorBody),
        (status = 409, description = "model_not_ready, fhe_unavailable, idempotency_key_reused", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 422, description = "fhe_mismatch (another model's program, another key set, another input shape), callback_refused", body = ErrorBody),
        (status = 429, description = "too_many_jobs", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn request_run(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (mut key_id, mut ciphertext, mut callback_url) = (None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(super::models::multipart_error)?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(super::models::multipart_error)?
            .to_vec();
        let text = |b: Vec<u8>| {
            String::from_utf8(b).map_err(|_| {
                ApiError::bad_request("invalid_multipart", format!("{name} is not text"))
            })
        };
        match name.as_str() {
            "key_id" => key_id = Some(text(bytes)?.trim().to_string()),
            "ciphertext" => ciphertext = Some(bytes),
            "callback_url" => callback_url = Some(text(bytes)?.trim().to_string()),
            other => {
                return Err(ApiError::bad_request(
                    "invalid_multipart",
                    format!("unknown field {other:?}"),
                ))
            }
        }
    }
    let key_id = key_id.ok_or_else(|| {
        ApiError::bad_request(
            "missing_field",
            "the form has no \"key_id\" (a server key id)",
        )
    })?;
    let ciphertext = ciphertext.ok_or_else(|| {
        ApiError::bad_request(
            "missing_field",
            "the form has no \"ciphertext\" (the file zkinfer fhe encrypt wrote)",
        )
    })?;
    let (_, program) = model_program(&state, &tenant, &id).await?;
    let key = load_key(&state, &tenant, &id, &key_id).await?;
    let (header, count) = check_file(&ciphertext, Kind::Inputs, "the uploaded ciphertext")
        .map_err(|e| ApiError::bad_request("invalid_ciphertext", e.to_string()))?;
    if header.program_sha256 != key.program_sha256 {
        return Err(unprocessable(
            "fhe_mismatch",
            "the ciphertext was encrypted for another model's FHE program",
        ));
    }
    if header.key_id != key.key_set_id {
        return Err(unprocessable(
            "fhe_mismatch",
            format!(
                "the ciphertext was encrypted under another key set than server key {key_id}'s"
            ),
        ));
    }
    let want = program.stats().input_ciphertexts;
    if count != want {
        return Err(unprocessable(
            "fhe_mismatch",
            format!("the ciphertext holds {count} encrypted values, the model takes {want}"),
        ));
    }
    let idempotency = super::jobs::idempotency_key(&headers)?;
    // The same key with another model, server key or ciphertext is a conflict; a repeat is
    // answered before the quota is checked.
    let hash = super::jobs::request_hash(&[id.as_bytes(), key_id.as_bytes(), &ciphertext]);
    if let Some(k) = idempotency.as_deref() {
        if let Some(found) = super::jobs::repeat(&state, &tenant, k, &hash).await? {
            return Ok(found);
        }
    }
    super::jobs::admit(&state, &tenant, callback_url.as_deref()).await?;
    let memory =
        crate::estimates::fhe_run_memory(u64::try_from(key.bytes).unwrap_or(0), ciphertext.len());
    let ct_key = state.store.put(ciphertext).await?;
    let payload = json!({ "key_id": key_id, "ciphertext": ct_key });
    let job = NewJob {
        tenant_id: &tenant,
        model_id: &id,
        kind: JobKind::FheRun,
        payload: &payload,
        max_attempts: state.limits.max_attempts,
        idempotency: idempotency.as_deref().map(|k| (k, hash.as_str())),
        callback_url: callback_url.as_deref(),
        memory_bytes: i64::try_from(memory).ok(),
    };
    super::jobs::enqueue(&state, &job).await
}

/// The encrypted result of a succeeded FHE run: decrypt it with `zkinfer fhe decrypt KEYS/`.
#[utoipa::path(get, path = "/v1/jobs/{id}/result.bin", params(("id" = String, Path, description = "job id")), tag = "fhe",
    responses((status = 200, description = "the encrypted result", content_type = "application/octet-stream"),
        (status = 404, description = "no such job (or another tenant's)", body = ErrorBody),
        (status = 409, description = "no_result (not a succeeded FHE run)", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn result_file(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let job = queue::get(&state.db, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", &id))?;
    let key = job
        .result
        .as_ref()
        .and_then(|r| r["fhe_result"].as_str().map(str::to_string))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_result",
                format!(
                    "job {id} is a {} job, {}: no encrypted result",
                    job.kind, job.status
                ),
            )
        })?;
    let bytes = state.store.get(&key).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.bin\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
