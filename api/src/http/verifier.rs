//! Verification off the heavy path: `/verify` reads only what a verifier holds (settings,
//! verifying key, the SRS points a verifier uses), from a bounded per-model cache, never the
//! proving key; the Solidity verifier is built when first asked for, stored and versioned,
//! and served as source, as bytecode and ABI, and a proof as its calldata.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use tokio::sync::Mutex;
use zkinfer_circuits::artifacts::files;
use zkinfer_circuits::identity::VerifierFolder;

use super::models::ready_artifacts;
use super::openapi::{ErrorBody, VerifyRequest as VerifyDoc, VerifyResult};
use super::{ApiError, ApiResult, AppState, Tenant};
use crate::db::now_ms;
use crate::lru::Lru;

/// The files a verifier reads.
const VERIFIER_FILES: &[&str] = &[files::SETTINGS, files::VK, files::KZG_VERIFIER, files::KEYS];

/// Opened verifier folders, most recently used last, at most a fixed number of models.
pub struct VerifierCache {
    open: Lru<VerifierFolder>,
    /// One Solidity build at a time (solcjs takes a core and a second); held by the build
    /// itself, so a client that hangs up does not free it while solc runs.
    building: Arc<Mutex<()>>,
}

impl VerifierCache {
    /// A cache of up to `capacity` models' verifier folders.
    pub fn new(capacity: usize) -> Self {
        Self {
            open: Lru::new(capacity),
            building: Arc::new(Mutex::new(())),
        }
    }

    fn get(&self, model: &str) -> Option<Arc<VerifierFolder>> {
        self.open.get(model)
    }

    fn insert(&self, model: &str, folder: Arc<VerifierFolder>) {
        self.open.insert(model, folder)
    }

    /// Models cached, least recently used first.
    pub fn models(&self) -> Vec<String> {
        self.open.names()
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/models/{id}/verify", post(verify))
        .route("/v1/models/{id}/verifier.sol", get(verifier_sol))
        .route("/v1/models/{id}/verifier", get(verifier))
        .route("/v1/jobs/{id}/calldata", get(calldata))
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::from(crate::Error::Config(format!("{what}: {e}")))
}

/// A ready model's verifier folder: from the cache, or its four verifier files fetched from
/// the store (the proving key and the prover's SRS are never read here).
pub(super) async fn verifier_folder(
    state: &AppState,
    tenant: &str,
    id: &str,
) -> ApiResult<Arc<VerifierFolder>> {
    let artifacts = ready_artifacts(state, tenant, id).await?;
    if crate::segmented::is_segmented(&artifacts) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "segmented_model",
            format!(
                "model {id} is proven in segments, each with its own verifier: verify its proof \
                 files with `zkinfer verify` on GET /v1/models/{id}/bundle, or on chain with \
                 `zkinfer evm-chain`"
            ),
        ));
    }
    if let Some(f) = state.verifiers.get(id) {
        return Ok(f);
    }
    std::fs::create_dir_all(&state.data_dir).map_err(|e| internal("cache dir", e))?;
    let tmp = tempfile::tempdir_in(&state.data_dir).map_err(|e| internal("cache dir", e))?;
    for name in VERIFIER_FILES {
        let key = artifacts[*name]
            .as_str()
            .ok_or_else(|| internal("stored folder", format!("no {name}")))?;
        std::fs::write(tmp.path().join(name), state.store.get(key).await?)
            .map_err(|e| internal("cache write", e))?;
    }
    let folder = tokio::task::spawn_blocking(move || VerifierFolder::open(tmp.path()))
        .await
        .map_err(|e| internal("open task", e))?
        .map_err(|e| internal("stored folder", e))?;
    let folder = Arc::new(folder);
    state.verifiers.insert(id, folder.clone());
    Ok(folder)
}

#[derive(Deserialize)]
struct VerifyRequest {
    proof: String,
    instances: Vec<String>,
    #[serde(default)]
    input_data: Option<Vec<Vec<f64>>>,
    /// The salt of hashed inputs, hex.
    #[serde(default)]
    salt: Option<String>,
    /// Output values to check against hashed outputs' commitments.
    #[serde(default)]
    outputs: Option<Vec<Vec<f64>>>,
}

/// Verifies a proof against the model (and, with `input_data`, its proven inputs).
#[utoipa::path(post, path = "/v1/models/{id}/verify", params(("id" = String, Path, description = "model id")), tag = "models",
    request_body = VerifyDoc,
    responses((status = 200, body = VerifyResult),
        (status = 400, description = "malformed proof or instances", body = ErrorBody),
        (status = 404, description = "no such model (or another tenant's)", body = ErrorBody), (status = 409, description = "model not ready", body = ErrorBody),
        (status = 422, description = "input_mismatch, output_mismatch, other_weights", body = ErrorBody), (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn verify(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req: VerifyRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let salt = req
        .salt
        .as_deref()
        .map(|s| {
            zkinfer_circuits::commit::parse_salt(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_salt",
                    "salt must be at most 64 hex digits, a field element below p",
                )
            })
        })
        .transpose()?;
    let artifacts = ready_artifacts(&state, &tenant, &id).await?;
    if crate::segmented::is_segmented(&artifacts) {
        return super::segmented::verify(&state, &id, &artifacts, &body, salt).await;
    }
    let folder = verifier_folder(&state, &tenant, &id).await?;
    let model_id = folder.model_id.clone();
    let result = tokio::task::spawn_blocking(move || {
        let claims = zkinfer_verifier::Claims {
            input: req.input_data.as_deref(),
            salt,
            outputs: req.outputs.as_deref(),
        };
        zkinfer_verifier::verify_values(&folder, &req.instances, &req.proof, claims)
    })
    .await
    .map_err(|e| internal("verify task", e))?;
    match result {
        Ok(v) => Ok(Json(valid(
            &model_id,
            &v.inputs,
            &v.outputs,
            &v.commitments,
        ))),
        Err(e) => refused(&model_id, e),
    }
}

/// What `/verify` answers for a valid proof.
pub(super) fn valid<O: Serialize>(
    model_id: &str,
    inputs: &Option<Vec<Vec<f64>>>,
    outputs: &O,
    commitments: &zkinfer_verifier::Commitments,
) -> Value {
    json!({
        "valid": true, "model_id": model_id, "inputs": inputs, "outputs": outputs,
        "commitments": {
            "inputs": commitments.inputs,
            "outputs": commitments.outputs,
            "weights": commitments.weights,
        },
    })
}

/// What `/verify` answers for a proof that does not verify (`valid: false`), or a request
/// it cannot check.
pub(super) fn refused(model_id: &str, e: zkinfer_verifier::VerifyError) -> ApiResult<Json<Value>> {
    use zkinfer_verifier::VerifyError as V;
    match e {
        // A segment link that does not hold is a proof that does not verify.
        V::Invalid | V::Link(_) => Ok(Json(json!({ "valid": false, "model_id": model_id }))),
        e @ (V::Malformed(_) | V::ValuesMismatch(_)) => {
            Err(ApiError::bad_request("invalid_proof_format", e.to_string()))
        }
        e @ V::SaltUnused => Err(ApiError::bad_request("invalid_salt", e.to_string())),
        e @ V::OutputMismatch(_) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "output_mismatch",
            e.to_string(),
        )),
        e @ V::OtherWeights { .. } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "other_weights",
            e.to_string(),
        )),
        e @ (V::InputMismatch(_) | V::InputsPrivate | V::Input(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "input_mismatch",
            e.to_string(),
        )),
        e => Err(internal("verify", e)),
    }
}

/// A model's Solidity verifier as built and stored: source, bytecode, ABI, and what built it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvmVerifier {
    /// The Solidity source.
    pub source: String,
    /// Creation bytecode, 0x-hex (what a deployment transaction carries).
    pub bytecode: String,
    /// Runtime bytecode, 0x-hex (what the chain stores; EIP-170 bounds it).
    pub deployed_bytecode: String,
    /// Its ABI.
    #[schema(value_type = Vec<Object>)]
    pub abi: Value,
    /// Runtime code size in bytes.
    pub code_size: usize,
    /// Public values a proof carries.
    pub num_instances: usize,
    /// The model identity it verifies (also answered by `zkinferVerifierInfo()`).
    pub model_id: String,
    /// The compiler and its settings (`name`, `version`, `optimizer`, `contract`).
    #[schema(value_type = Object)]
    pub compiler: Value,
    /// What built it: zkinfer's and the compiler's versions.
    pub version: String,
}

/// What a stored verifier must have been built by to be served.
fn build_version() -> String {
    format!(
        "zkinfer {} solcjs {} optimizer off",
        env!("CARGO_PKG_VERSION"),
        zkinfer_verifier::solc::SOLC_VERSION
    )
}

/// The model's Solidity verifier: stored, or built now and stored (once per model and
/// version; one build at a time per process).
async fn evm_verifier(state: &AppState, tenant: &str, id: &str) -> ApiResult<EvmVerifier> {
    let stored = |state: AppState, id: String| async move {
        let row = sqlx::query("SELECT version, store_key FROM evm_verifiers WHERE model_id = $1")
            .bind(&id)
            .fetch_optional(&state.db.pool)
            .await
            .map_err(crate::Error::from)?;
        let Some(row) = row else { return Ok(None) };
        let (version, key): (String, String) = (
            row.try_get(0).map_err(crate::Error::from)?,
            row.try_get(1).map_err(crate::Error::from)?,
        );
        if version != build_version() {
            return Ok(None);
        }
        let bytes = state.store.get(&key).await?;
        Ok::<_, ApiError>(serde_json::from_slice::<EvmVerifier>(&bytes).ok())
    };
    // Not found or not ready comes first, as for every route of a model.
    let folder = verifier_folder(state, tenant, id).await?;
    if let Some(v) = stored(state.clone(), id.to_string()).await? {
        return Ok(v);
    }
    let one = state.verifiers.building.clone().lock_owned().await;
    if let Some(v) = stored(state.clone(), id.to_string()).await? {
        return Ok(v);
    }
    let f = folder.clone();
    let built = tokio::task::spawn_blocking(move || {
        let _one = one;
        zkinfer_verifier::solidity::build(&f)
    })
    .await
    .map_err(|e| internal("solidity task", e))?;
    let built = match built {
        Ok(v) => v,
        Err(e @ zkinfer_verifier::solidity::EvmVerifierError::TooLarge { .. }) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "verifier_too_large",
                e.to_string(),
            ))
        }
        Err(e) => {
            tracing::warn!(model = %id, "building the Solidity verifier: {e}");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "solidity_unavailable",
                "the Solidity compiler is not available on this service (logged)",
            ));
        }
    };
    let v = EvmVerifier {
        code_size: built.compiled.deployed.len(),
        bytecode: format!("0x{}", hex::encode(&built.compiled.bytecode)),
        deployed_bytecode: format!("0x{}", hex::encode(&built.compiled.deployed)),
        abi: built.compiled.abi,
        source: built.source,
        num_instances: built.num_instances,
        model_id: folder.model_id.clone(),
        compiler: json!({
            "name": "solcjs",
            "version": zkinfer_verifier::solc::SOLC_VERSION,
            "optimizer": built.optimizer.settings(),
            "contract": "Verifier.sol",
        }),
        version: build_version(),
    };
    let bytes = serde_json::to_vec(&v).map_err(|e| internal("verifier record", e))?;
    let key = state.store.put(bytes).await?;
    sqlx::query(
        "INSERT INTO evm_verifiers (model_id, version, store_key, created_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (model_id) DO UPDATE SET version = $2, \
         store_key = $3, created_ms = $4",
    )
    .bind(id)
    .bind(&v.version)
    .bind(&key)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await
    .map_err(crate::Error::from)?;
    Ok(v)
}

/// The model's Solidity verifier source.
#[utoipa::path(get, path = "/v1/models/{id}/verifier.sol", params(("id" = String, Path, description = "model id")), tag = "models",
    responses((status = 200, description = "Solidity source", content_type = "text/plain"),
        (status = 404, description = "no such model (or another tenant's)", body = ErrorBody), (status = 409, description = "model_not_ready, or segmented_model (one verifier per segment)", body = ErrorBody),
        (status = 422, description = "verifier_too_large (EIP-170)", body = ErrorBody),
        (status = 503, description = "solidity_unavailable (no compiler on this service)", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn verifier_sol(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let v = evm_verifier(&state, &tenant, &id).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        v.source,
    )
        .into_response())
}

/// The model's Solidity verifier: bytecode to deploy, runtime bytecode, ABI, source, and the
/// compiler that built it.
#[utoipa::path(get, path = "/v1/models/{id}/verifier", params(("id" = String, Path, description = "model id")), tag = "models",
    responses((status = 200, body = EvmVerifier),
        (status = 404, description = "no such model (or another tenant's)", body = ErrorBody), (status = 409, description = "model_not_ready, or segmented_model (one verifier per segment)", body = ErrorBody),
        (status = 422, description = "verifier_too_large (EIP-170)", body = ErrorBody),
        (status = 503, description = "solidity_unavailable (no compiler on this service)", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn verifier(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<EvmVerifier>> {
    Ok(Json(evm_verifier(&state, &tenant, &id).await?))
}

/// A proof as the model's Solidity verifier takes it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Calldata {
    /// 0x-hex: each public value as a 32-byte word, then the proof bytes (a segmented
    /// model's proof: `verifyChainInference(modelId, instances, proofs)` for the registry
    /// holding its chain of segment verifiers).
    pub(super) calldata: String,
    /// The model identity the proof is for.
    pub(super) model_id: String,
}

/// A succeeded proof job's calldata for the model's Solidity verifier: each public value as
/// a 32-byte word, then the proof.
#[utoipa::path(get, path = "/v1/jobs/{id}/calldata", params(("id" = String, Path, description = "job id")), tag = "jobs",
    responses((status = 200, body = Calldata),
        (status = 404, description = "no such job (or another tenant's)", body = ErrorBody),
        (status = 409, description = "no_result (not a succeeded proof)", body = ErrorBody),
        (status = 401, description = "missing or unknown key", body = ErrorBody)))]
pub(super) async fn calldata(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Calldata>> {
    let job = crate::queue::get(&state.db, &tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", &id))?;
    let proof = job
        .result
        .as_ref()
        .map(|r| &r["proof_file"])
        .filter(|p| job.status == "succeeded" && job.kind == "prove" && !p.is_null())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_result",
                format!("job {id} is not a succeeded proof"),
            )
        })?;
    let artifacts = ready_artifacts(&state, &tenant, &job.model_id).await?;
    if crate::segmented::is_segmented(&artifacts) {
        return super::segmented::calldata(&state, &job.model_id, &artifacts, proof).await;
    }
    let folder = verifier_folder(&state, &tenant, &job.model_id).await?;
    let instances: Vec<String> = serde_json::from_value(proof["instances"].clone())
        .map_err(|e| internal("stored proof", e))?;
    let (instances, bytes) = zkinfer_verifier::parse_values(
        &folder,
        &instances,
        proof["proof"].as_str().unwrap_or_default(),
    )
    .map_err(|e| internal("stored proof", e))?;
    let data = zkinfer_verifier::solidity::calldata(&instances, &bytes);
    Ok(Json(Calldata {
        calldata: format!("0x{}", hex::encode(data)),
        model_id: folder.model_id.clone(),
    }))
}
