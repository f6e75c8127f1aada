//! Proof jobs: request (`POST /v1/models/{id}/proofs`), poll, fetch the proof file, cancel.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zkinfer_circuits::artifacts::Settings;

use super::openapi::{
    Ended, ErrorBody, Job, JobAccepted, JobList, ProofFile, ProofRequest as ProofRequestDoc,
};
use super::{ApiError, ApiResult, AppState, Tenant};
use crate::queue::{self, Enqueued, JobFilter, JobKind, JobRow, NewJob};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/models/{id}/proofs", post(request_proof))
        .route("/v1/jobs", get(list))
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
    /// The salt hashed inputs are committed with (hex).
    #[serde(default)]
    salt: Option<String>,
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// Requests a proof of the model on an input; the job runs on a worker.
#[utoipa::path(post, path = "/v1/models/{id}/proofs", params(("id" = String, Path, description = "model id")), tag = "jobs",
    request_body = ProofRequestDoc,
    responses((status = 202, body = JobAccepted),
        (status = 200, description = "the job an earlier request with this Idempotency-Key made", body = JobAccepted),
        (status = 400, description = "invalid_json, invalid_salt", body = ErrorBody), (status = 404, description = "no such model (or another tenant's)", body = ErrorBody),
        (status = 409, description = "model_not_ready, idempotency_key_reused", body = ErrorBody),
        (status = 422, description = "invalid_input, callback_refused", body = ErrorBody),
        (status = 429, description = "too_many_jobs", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn request_proof(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    // The same key with another model or body is a conflict, not the same job; the body is
    // compared as canonical JSON (keys sorted, no whitespace), so a reformatted repeat is
    // the same request.
    let key = idempotency_key(&headers)?;
    let hash = request_hash(&[model_id.as_bytes(), canonical_json(&value).as_bytes()]);
    // A repeat is answered before anything else is checked: at its quota, a client's retry
    // of a request that was taken still learns its job.
    if let Some(k) = key.as_deref() {
        if let Some(found) = repeat(&state, &tenant, k, &hash).await? {
            return Ok(found);
        }
    }
    let req: ProofRequest = serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    let (row, artifacts) = super::models::ready_model(&state, &tenant, &model_id).await?;
    // The input is checked now (shape, NaN, range), so a bad one never becomes a job.
    let model = ModelInputs::read(&state, &artifacts, row.summary.as_ref()).await?;
    let text = json!({ "input_data": req.input_data }).to_string();
    let data = zkinfer_model::parse_input_json(&text)
        .map_err(|e| unprocessable("invalid_input", e.to_string()))?;
    zkinfer_model::quantize_input(&data, &model.shapes, model.scale, model.act_bits)
        .map_err(|e| unprocessable("invalid_input", e.to_string()))?;
    if let Some(salt) = &req.salt {
        if model.visibility != zkinfer_circuits::Visibility::Hashed {
            return Err(ApiError::bad_request(
                "invalid_salt",
                "a salt only applies to a model with hashed inputs",
            ));
        }
        if zkinfer_circuits::commit::parse_salt(salt).is_none() {
            return Err(ApiError::bad_request(
                "invalid_salt",
                "salt must be at most 64 hex digits, a field element below p",
            ));
        }
    }
    admit(&state, &tenant, req.callback_url.as_deref()).await?;
    let mut payload = json!({ "input_data": req.input_data });
    if let Some(salt) = &req.salt {
        payload["salt"] = json!(salt);
    }
    let job = NewJob {
        tenant_id: &tenant,
        model_id: &model_id,
        kind: JobKind::Prove,
        payload: &payload,
        max_attempts: state.limits.max_attempts,
        idempotency: key.as_deref().map(|k| (k, hash.as_str())),
        callback_url: req.callback_url.as_deref(),
        memory_bytes: model.memory.and_then(|m| i64::try_from(m).ok()),
    };
    enqueue(&state, &job).await
}

/// What a proof request's input is checked against: a model's settings, or a segmented
/// model's `segments.json`.
struct ModelInputs {
    shapes: Vec<Vec<usize>>,
    scale: u32,
    act_bits: u32,
    visibility: zkinfer_circuits::Visibility,
    /// The proof job's estimated memory. A segmented model's job evaluates one segment's
    /// graph at a time, then fans out and assembles (each segment's job carries its own
    /// estimate): the largest segment's proving estimate bounds that evaluation from above
    /// and places the job on a worker that can hold every segment's graph.
    memory: Option<u64>,
}

impl ModelInputs {
    async fn read(state: &AppState, artifacts: &Value, summary: Option<&Value>) -> ApiResult<Self> {
        use zkinfer_circuits::artifacts::{files, segments::SegmentsFile, segments::SEGMENTS};
        let stored = |what: &str, e: serde_json::Error| {
            ApiError::from(crate::Error::Config(format!("stored {what}: {e}")))
        };
        if crate::segmented::is_segmented(artifacts) {
            let key = artifacts[SEGMENTS].as_str().unwrap_or_default();
            let file: SegmentsFile = serde_json::from_slice(&state.store.get(key).await?)
                .map_err(|e| stored(SEGMENTS, e))?;
            return Ok(Self {
                shapes: file.input_shapes,
                scale: file.scale,
                act_bits: file.act_bits,
                visibility: file.input_visibility,
                memory: summary.and_then(|s| s["prove_memory_bytes"].as_u64()),
            });
        }
        let key = artifacts[files::SETTINGS].as_str().unwrap_or_default();
        let settings: Settings = serde_json::from_slice(&state.store.get(key).await?)
            .map_err(|e| stored(files::SETTINGS, e))?;
        Ok(Self {
            shapes: settings.input_shapes,
            scale: settings.scale,
            act_bits: settings.act_bits,
            visibility: settings.plan.visibility,
            memory: Some(settings.plan.prove_memory_bytes),
        })
    }
}

/// What a client at its job quota is told to wait before trying again.
const QUOTA_RETRY_SECS: u64 = 5;

/// Refuses a new job when the tenant has too many open ones (429) or its callback target is
/// refused (422); checked before anything of the request is stored.
pub(super) async fn admit(
    state: &AppState,
    tenant: &str,
    callback_url: Option<&str>,
) -> ApiResult<()> {
    if queue::open_jobs(&state.db, tenant).await? >= state.limits.max_queued_jobs {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_jobs",
            format!(
                "at most {} queued or running jobs per tenant (model uploads count: each is a \
                 setup job)",
                state.limits.max_queued_jobs
            ),
        )
        .retry_after(QUOTA_RETRY_SECS));
    }
    if let Some(url) = callback_url {
        crate::callbacks::check_target(url, state.allow_private_callbacks)
            .await
            .map_err(|e| unprocessable("callback_refused", e.to_string()))?;
    }
    Ok(())
}

/// Enqueues `job`: 202 with a new job's id, 200 with the job an earlier request with the same
/// idempotency key made.
pub(super) async fn enqueue(
    state: &AppState,
    job: &NewJob<'_>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (status, id) = match queue::enqueue(&state.db, job).await? {
        Enqueued::New(id) => (StatusCode::ACCEPTED, id),
        Enqueued::Existing(id) => (StatusCode::OK, id),
    };
    Ok((status, Json(json!({ "job_id": id }))))
}

/// JSON with every object's keys sorted and no whitespace: one text per value.
pub(super) fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// The sha256 (hex) of a request's parts, each hashed on its own so no two splits collide.
pub(super) fn request_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(Sha256::digest(part));
    }
    hex::encode(hasher.finalize())
}

/// The answer to a repeated `Idempotency-Key`: 200 with the job the first request made if
/// this request is the same, 409 if it is not; `None` for a new key.
pub(super) async fn repeat(
    state: &AppState,
    tenant: &str,
    key: &str,
    hash: &str,
) -> ApiResult<Option<(StatusCode, Json<Value>)>> {
    match queue::find_idempotent(&state.db, tenant, key).await? {
        None => Ok(None),
        Some((id, h)) if h.as_deref() == Some(hash) => {
            Ok(Some((StatusCode::OK, Json(json!({ "job_id": id })))))
        }
        Some(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            format!("idempotency key {key:?} (with another request) already exists"),
        )),
    }
}

/// The longest `Idempotency-Key` (it is stored with the job).
pub(super) const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The request's `Idempotency-Key`, if any.
pub(super) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let bad = |m: &str| ApiError::bad_request("invalid_header", m);
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| bad("Idempotency-Key is not text"))?;
    if key.as_ref().is_some_and(|k| k.len() > MAX_IDEMPOTENCY_KEY) {
        return Err(bad("Idempotency-Key has more than 255 characters"));
    }
    Ok(key)
}

/// A page's size (1 to 200, default 50) and where it starts: after the (created ms, id) of
/// the previous page's last row, as its `next_cursor` says.
pub(super) fn page(
    limit: Option<i64>,
    cursor: Option<&str>,
) -> ApiResult<(i64, Option<(i64, String)>)> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", m);
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(bad(format!("limit {limit}: use 1 to 200")));
    }
    let before = match cursor {
        None => None,
        Some(c) => Some(
            c.split_once('.')
                .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| bad(format!("cursor {c:?} is not one this API gave")))?,
        ),
    };
    Ok((limit, before))
}

/// The query of `GET /v1/jobs`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only the jobs of this model (its handle, `md_…`, as `/v1/models/{id}` takes).
    model: Option<String>,
    /// Only the jobs of models with this 64-hex model id. (An `md_…` handle here is taken as
    /// `model`, as before the two were told apart.)
    model_id: Option<String>,
    /// Only jobs in this state.
    status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

const STATUSES: &[&str] = &[
    "queued",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "cancelled",
];

/// The tenant's jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/jobs", params(ListQuery), tag = "jobs",
    responses((status = 200, body = JobList),
        (status = 400, description = "invalid_query", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", m);
    let axum::extract::Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let (limit, before) = page(q.limit, q.cursor.as_deref())?;
    if let Some(s) = q.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(bad(format!("status {s:?}: one of {}", STATUSES.join(", "))));
    }
    let (model, model_id) = match (q.model, q.model_id) {
        (Some(m), Some(id)) if id.starts_with("md_") && m != id => {
            return Err(bad(format!(
                "model {m:?} and model_id {id:?} name two models"
            )))
        }
        (m, Some(id)) if id.starts_with("md_") => (m.or(Some(id)), None),
        (m, id) => (m, id),
    };
    let filter = JobFilter {
        model,
        model_id,
        status: q.status,
        before,
    };
    // One more than the page, to know whether another follows.
    let mut rows = queue::list(&state.db, &tenant, &filter, limit + 1).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|j| format!("{}.{}", j.times.0, j.id))
    } else {
        None
    };
    let mut v = json!({ "jobs": rows.iter().map(JobRow::to_json).collect::<Vec<_>>() });
    if let Some(n) = next {
        v["next_cursor"] = json!(n);
    }
    Ok(Json(v))
}

async fn load(state: &AppState, tenant: &str, id: &str) -> ApiResult<JobRow> {
    queue::get(&state.db, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))
}

/// A job: status, phase, outputs, proof, timings, callback deliveries.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path, description = "job id")), tag = "jobs",
    responses((status = 200, body = Job), (status = 404, description = "no such job (or another tenant's)", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job = load(&state, &tenant, &id).await?;
    let mut v = job.to_json();
    if let Some((url, cb_state)) = &job.callback {
        v["callback"] =
            crate::callbacks::describe(&state.db, &id, url, cb_state.as_deref()).await?;
    }
    Ok(Json(v))
}

/// The proof file `zkinfer verify` reads.
#[utoipa::path(get, path = "/v1/jobs/{id}/proof.json", params(("id" = String, Path, description = "job id")), tag = "jobs",
    responses((status = 200, body = ProofFile), (status = 404, description = "no such job (or another tenant's)", body = ErrorBody),
        (status = 409, description = "no_proof (the job has not succeeded)", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn proof_file(
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

/// Cancels a queued job.
#[utoipa::path(delete, path = "/v1/jobs/{id}", params(("id" = String, Path, description = "job id")), tag = "jobs",
    responses((status = 200, body = Ended), (status = 404, description = "no such job (or another tenant's)", body = ErrorBody),
        (status = 409, description = "not_cancellable (not queued, or a model's setup job)", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job = load(&state, &tenant, &id).await?;
    if queue::cancel(&state.db, &tenant, &id).await? {
        Ok(Json(json!({ "id": id, "status": "cancelled" })))
    } else {
        let why = if job.kind == "setup" {
            format!(
                "job {id} sets up model {}: delete the model instead",
                job.model_id
            )
        } else {
            format!(
                "job {id} is {}: only queued jobs (and jobs waiting for their segments) can \
                 be cancelled, not one segment of a job",
                job.status
            )
        };
        Err(ApiError::new(StatusCode::CONFLICT, "not_cancellable", why))
    }
}
