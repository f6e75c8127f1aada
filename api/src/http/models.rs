//! `/v1/models`: upload (parsed at once, compiled and set up by a job), list, show.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use zkinfer_model::{ModelError, Weights};
use zkinfer_prover::options::ModelOptions;

use super::openapi::{Ended, ErrorBody, Model, ModelAccepted, ModelList, ModelUpload};
use super::{ApiError, ApiResult, AppState, Tenant};
use crate::models::{self, ModelRow};
use crate::worker::{Sibling, Upload};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(list).post(upload))
        .route("/v1/models/{id}", get(show).delete(delete))
        .route("/v1/models/{id}/bundle", get(bundle))
}

/// The store keys of a ready model's compiled folder: 404 if the tenant has no such model,
/// 409 `model_not_ready` until its setup has succeeded.
pub(super) async fn ready_artifacts(state: &AppState, tenant: &str, id: &str) -> ApiResult<Value> {
    Ok(ready_model(state, tenant, id).await?.1)
}

/// A ready model of the tenant and its artifacts, as [`ready_artifacts`].
pub(super) async fn ready_model(
    state: &AppState,
    tenant: &str,
    id: &str,
) -> ApiResult<(ModelRow, Value)> {
    let m = models::get(&state.db, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("model", id))?;
    match (m.status.as_str(), &m.artifacts) {
        ("ready", Some(a)) => {
            let a = a.clone();
            Ok((m, a))
        }
        (status, _) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "model_not_ready",
            format!("model {id} is {status}"),
        )),
    }
}

/// The upload setting `like`: a ready model of the same tenant whose weights are hashed
/// (404 for another tenant's, 409 until ready, 400 `invalid_settings` for fixed weights).
async fn sibling(state: &AppState, tenant: &str, id: &str) -> ApiResult<Sibling> {
    use zkinfer_circuits::artifacts::files;
    let (m, artifacts) = ready_model(state, tenant, id).await?;
    let hashed = m
        .summary
        .as_ref()
        .is_some_and(|s| s["weights"] == Weights::Hashed.name());
    if !hashed {
        return Err(ApiError::bad_request(
            "invalid_settings",
            format!(
                "like: model {id} has fixed weights (its verifying key pins them): only a model \
                 uploaded with \"weights\": \"hashed\" serves other trainings of its architecture"
            ),
        ));
    }
    let key = |name: &str| {
        artifacts[name].as_str().map(str::to_string).ok_or_else(|| {
            ApiError::from(crate::Error::Config(format!("model {id} has no {name}")))
        })
    };
    // Its plan is reused as it is: it must be of the circuit this zkinfer lays out.
    let settings: Value = serde_json::from_slice(&state.store.get(&key(files::SETTINGS)?).await?)
        .map_err(|e| {
        ApiError::from(crate::Error::Config(format!("model {id} settings: {e}")))
    })?;
    if settings["layout_version"] != json!(zkinfer_circuits::artifacts::LAYOUT_VERSION) {
        return Err(ApiError::bad_request(
            "invalid_settings",
            format!(
                "like: model {id} was set up by an older zkinfer, which laid circuits out \
                 differently: upload it again, then use the new model as like"
            ),
        ));
    }
    Ok(Sibling {
        model: id.to_string(),
        settings: key(files::SETTINGS)?,
        qgraph: key(files::QGRAPH)?,
        srs: key(files::SRS)?,
        keys: key(files::KEYS)?,
    })
}

/// The JSON of a model.
pub fn model_json(m: &ModelRow) -> Value {
    let mut v = json!({ "id": m.id, "status": m.status, "created_ms": m.created_ms });
    if let Some((code, message)) = &m.error {
        v["error"] = json!({ "code": code, "message": message });
    }
    if let Some(Value::Object(summary)) = &m.summary {
        for (k, x) in summary {
            v[k] = x.clone();
        }
    }
    v
}

pub(super) fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    rejection(e.status(), e.body_text(), "invalid_multipart")
}

/// A body axum could not read: 413 `payload_too_large` past the limit, else 400 `code`.
pub(super) fn rejection(status: StatusCode, text: String, code: &'static str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", text)
    } else {
        ApiError::bad_request(code, text)
    }
}

/// Uploads a model; compile and setup run as a job.
#[utoipa::path(post, path = "/v1/models", tag = "models",
    request_body(content = ModelUpload, content_type = "multipart/form-data"),
    responses((status = 202, body = ModelAccepted),
        (status = 400, description = "invalid_model, invalid_multipart, missing_field, invalid_settings (a setting above the service's limit, named), invalid_input (calibration that does not fit the model's inputs), model_too_large (a tensor or the constants over the element budget, naming the node)", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 429, description = "too_many_jobs (uploads count), too_many_uploads (the tenant's uploads being parsed); Retry-After says when to try again", body = ErrorBody),
        (status = 422, description = "unsupported_op (naming the node), callback_refused (a callback_url that is not http(s) or not public)", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn upload(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    mut form: Multipart,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // An upload is a setup job: it counts against the tenant's quota, checked first.
    super::jobs::admit(&state, &tenant, None).await?;
    let (mut onnx, mut calibration, mut settings, mut fhe) = (None, None, None, None);
    let mut callback_url = None;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        match name.as_str() {
            "model" => onnx = Some(bytes),
            "calibration" => calibration = Some(bytes),
            "settings" => settings = Some(bytes),
            "fhe" => fhe = Some(bytes),
            "callback_url" => {
                let url = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request("invalid_multipart", "callback_url is not UTF-8")
                })?;
                crate::callbacks::check_target(&url, state.allow_private_callbacks)
                    .await
                    .map_err(|e| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "callback_refused",
                            e.to_string(),
                        )
                    })?;
                callback_url = Some(url);
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_multipart",
                    format!("unknown field {other:?}"),
                ))
            }
        }
    }
    let onnx = onnx.ok_or_else(|| {
        ApiError::bad_request("missing_field", "the form has no \"model\" (the ONNX file)")
    })?;
    let calibration = calibration.ok_or_else(|| {
        ApiError::bad_request(
            "missing_field",
            "the form has no \"calibration\" (an input.json)",
        )
    })?;
    let options: ModelOptions = match &settings {
        Some(b) => serde_json::from_slice(b)
            .map_err(|e| ApiError::bad_request("invalid_settings", e.to_string()))?,
        None => ModelOptions::default(),
    };
    let fhe: Option<zkinfer_fhe::FheOptions> = match &fhe {
        None => Some(Default::default()),
        Some(b) => match serde_json::from_slice::<Value>(b) {
            Ok(Value::Bool(false)) => None,
            _ => Some(serde_json::from_slice(b).map_err(|e| {
                ApiError::bad_request(
                    "invalid_settings",
                    format!("fhe: {e} (an object of FHE options, or false)"),
                )
            })?),
        },
    };
    let text = std::str::from_utf8(&calibration)
        .map_err(|_| ApiError::bad_request("invalid_input", "calibration is not UTF-8 JSON"))?;
    let samples = zkinfer_model::parse_calibration_json(text)
        .map_err(|e| ApiError::bad_request("invalid_input", e.to_string()))?;
    state
        .ceilings
        .check(&options, fhe.as_ref(), samples.len())
        .map_err(|e| ApiError::bad_request("invalid_settings", e.to_string()))?;
    if options.segments.is_some()
        && (options.like.is_some() || options.weights == Some(Weights::Hashed))
    {
        return Err(ApiError::bad_request(
            "invalid_settings",
            "segments are compiled with fixed weights (not \"weights\": \"hashed\" or like)",
        ));
    }
    let like = match &options.like {
        Some(_) if options.weights == Some(Weights::Fixed) => {
            return Err(ApiError::bad_request(
                "invalid_settings",
                "like reproduces a circuit with hashed weights: \"weights\": \"fixed\" \
                 contradicts it",
            ))
        }
        Some(id) => Some(sibling(&state, &tenant, id).await?),
        None => None,
    };
    // Imported as compile will: hashed weights refuse some graphs that fixed ones take.
    let weights = match like {
        Some(_) => Weights::Hashed,
        None => options.weights.unwrap_or_default(),
    };
    // Parsed off the async threads, a few at a time (each tenant its share); the file is
    // checked against an element budget before tract folds its constants.
    let graph = {
        // The place is held by the parse itself, not by this request: a client that hangs up
        // does not free it while the parse goes on.
        let permit = state.parsing.enter(&tenant).await?;
        let onnx = onnx.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            zkinfer_model::load_onnx_bytes_with(&onnx, weights)
        })
        .await
        .map_err(|e| ApiError::from(crate::Error::Config(format!("parse task: {e}"))))?
    };
    let graph = graph.map_err(|e| match e {
        ModelError::UnsupportedOp { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_op",
            e.to_string(),
        ),
        ModelError::Malformed(_) => ApiError::bad_request("invalid_model", e.to_string()),
        ModelError::TooLarge(_) => ApiError::bad_request("model_too_large", e.to_string()),
        other => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_model",
            other.to_string(),
        ),
    })?;
    zkinfer_model::check_calibration(&graph, &samples)
        .map_err(|e| ApiError::bad_request("invalid_input", e.to_string()))?;
    drop(graph);
    let compile_memory = crate::estimates::compile_memory(onnx.len());
    let upload = Upload {
        onnx: state.store.put(onnx).await?,
        calibration: state.store.put(calibration).await?,
        options,
        fhe,
        like,
    };
    let upload = serde_json::to_value(&upload)
        .map_err(|e| ApiError::from(crate::Error::Config(format!("upload record: {e}"))))?;
    let setup = models::Setup {
        max_attempts: state.limits.max_attempts,
        callback_url: callback_url.as_deref(),
        memory_bytes: Some(compile_memory),
    };
    let id = models::create_with_setup(&state.db, &tenant, &upload, &setup).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "queued" })),
    ))
}

/// The query of `GET /v1/models`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ModelListQuery {
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The tenant's models, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/models", params(ModelListQuery), tag = "models",
    responses((status = 200, body = ModelList),
        (status = 400, description = "invalid_query", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    query: Result<axum::extract::Query<ModelListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let axum::extract::Query(q) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let (limit, before) = super::jobs::page(q.limit, q.cursor.as_deref())?;
    // One more than the page, to know whether another follows.
    let mut rows = models::list(&state.db, &tenant, before, limit + 1).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|m| format!("{}.{}", m.created_ms, m.id))
    } else {
        None
    };
    let mut v = json!({ "models": rows.iter().map(model_json).collect::<Vec<_>>() });
    if let Some(n) = next {
        v["next_cursor"] = json!(n);
    }
    Ok(Json(v))
}

/// A model's state: status, error, k, shapes, scale, model identity, SRS.
#[utoipa::path(get, path = "/v1/models/{id}", params(("id" = String, Path, description = "model id")), tag = "models",
    responses((status = 200, body = Model), (status = 404, description = "no such model (or another tenant's)", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let m = models::get(&state.db, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("model", &id))?;
    Ok(Json(model_json(&m)))
}

/// Deletes a model; its queued jobs are cancelled, and after the service's retention period its
/// rows and blobs are purged.
#[utoipa::path(delete, path = "/v1/models/{id}", params(("id" = String, Path, description = "model id")), tag = "models",
    responses((status = 200, body = Ended), (status = 404, description = "no such model (or another tenant's)", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    if models::delete(&state.db, &tenant, &id).await? {
        Ok(Json(json!({ "id": id, "status": "deleted" })))
    } else {
        Err(ApiError::not_found("model", &id))
    }
}

/// The files `zkinfer verify` reads, as a tar archive: untar it and run
/// `zkinfer verify DIR proof.json --model-id …` offline.
#[utoipa::path(get, path = "/v1/models/{id}/bundle", params(("id" = String, Path, description = "model id")), tag = "models",
    responses((status = 200, description = "tar of settings.json, vk.bin, kzg-verifier.bin, keys.json", content_type = "application/x-tar"),
        (status = 404, description = "no such model (or another tenant's)", body = ErrorBody), (status = 409, description = "model not ready", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn bundle(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    use zkinfer_circuits::artifacts::files;
    let artifacts = ready_artifacts(&state, &tenant, &id).await?;
    let mut archive = tar::Builder::new(Vec::new());
    let verifier_files = [files::SETTINGS, files::VK, files::KZG_VERIFIER, files::KEYS];
    let names: Vec<String> = if crate::segmented::is_segmented(&artifacts) {
        // The wiring and each segment's verifier files: what `zkinfer verify` reads of a
        // segmented folder.
        let count = (0..)
            .take_while(|&s| {
                artifacts
                    .get(crate::segmented::segment_file(s, files::SETTINGS))
                    .is_some()
            })
            .count();
        std::iter::once(zkinfer_circuits::artifacts::segments::SEGMENTS.to_string())
            .chain((0..count).flat_map(|s| {
                verifier_files
                    .iter()
                    .map(move |n| crate::segmented::segment_file(s, n))
            }))
            .collect()
    } else {
        verifier_files.iter().map(|n| n.to_string()).collect()
    };
    for name in &names {
        let key = artifacts[name.as_str()].as_str().unwrap_or_default();
        let bytes = state.store.get(key).await?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, format!("{id}/{name}"), bytes.as_slice())
            .map_err(|e| ApiError::from(crate::Error::Config(format!("bundle: {e}"))))?;
    }
    let bytes = archive
        .into_inner()
        .map_err(|e| ApiError::from(crate::Error::Config(format!("bundle: {e}"))))?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/x-tar".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.tar\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
