//! `/verify` and `/calldata` of a segmented model: its verifier files (the wiring and each
//! segment's settings, verifying key, SRS points and keys record) fetched once into this
//! process's data dir, then every segment's proof, every link and the model's values checked
//! as `zkinfer verify` checks a proof file, or the proofs encoded as the chain registry's
//! `verifyChainInference` takes them.

use std::path::PathBuf;

use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use zkinfer_circuits::artifacts::segments::{SegmentsFile, SEGMENTS};
use zkinfer_circuits::artifacts::{files, write_json, ProofFile, SegmentProof, FORMAT_VERSION};
use zkinfer_circuits::Fr;
use zkinfer_verifier::segments::SegmentedVerifier;

use super::verifier::{refused, valid, Calldata};
use super::{ApiError, ApiResult, AppState};
use crate::segmented::segment_file;

/// What a segmented folder's verifier reads of each segment.
const SEGMENT_VERIFIER_FILES: &[&str] =
    &[files::SETTINGS, files::VK, files::KZG_VERIFIER, files::KEYS];

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::from(crate::Error::Config(format!("{what}: {e}")))
}

/// The model's segmented verifier folder in this process's data dir.
async fn folder(state: &AppState, id: &str, artifacts: &Value) -> ApiResult<PathBuf> {
    let key = artifacts[SEGMENTS].as_str().unwrap_or_default();
    let file: SegmentsFile = serde_json::from_slice(&state.store.get(key).await?)
        .map_err(|e| internal("stored segments.json", e))?;
    let mut names = vec![SEGMENTS.to_string()];
    for s in 0..file.segments.len() {
        names.extend(SEGMENT_VERIFIER_FILES.iter().map(|n| segment_file(s, n)));
    }
    // Each fetch renames a whole folder into place, so concurrent requests need no lock.
    let lock = tokio::sync::Mutex::new(());
    let cache = format!("{id}.verifier");
    let (dir, _) = crate::executor::materialize_files(
        &state.store,
        &state.data_dir,
        &lock,
        &cache,
        &names,
        artifacts,
    )
    .await?;
    Ok(dir)
}

/// A segmented proof to verify: the fields of its proof file (as its job shows them), with
/// the claims `/verify` takes of any model.
#[derive(Deserialize)]
struct SegmentedVerifyRequest {
    instances: Vec<String>,
    segments: Vec<SegmentProof>,
    outputs: Vec<Vec<f64>>,
    #[serde(default)]
    inputs: Option<Vec<Vec<f64>>>,
    #[serde(default)]
    input_data: Option<Vec<Vec<f64>>>,
}

/// `/verify` of a segmented model.
pub(super) async fn verify(
    state: &AppState,
    id: &str,
    artifacts: &Value,
    body: &[u8],
    salt: Option<Fr>,
) -> ApiResult<Json<Value>> {
    let req: SegmentedVerifyRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!(
                "a segmented model's proof is verified from its job's instances, segments, \
                 outputs and inputs: {e}"
            ),
        )
    })?;
    let dir = folder(state, id, artifacts).await?;
    let work = tempfile::tempdir_in(&state.data_dir).map_err(|e| internal("scratch", e))?;
    let result = tokio::task::spawn_blocking(move || {
        let v = SegmentedVerifier::open(&dir)?;
        let proof = ProofFile {
            format_version: FORMAT_VERSION,
            model_id: v.model_id.clone(),
            input_visibility: v.file.input_visibility,
            output_visibility: v.file.output_visibility,
            inputs: req.inputs,
            outputs: req.outputs,
            output_shapes: v.file.output_shapes.clone(),
            instances: req.instances,
            proof: "0x".into(),
            segments: req.segments,
        };
        let proof_path = work.path().join("proof.json");
        write_json(&proof_path, &proof)?;
        let input_path = work.path().join("input.json");
        if let Some(data) = &req.input_data {
            let text = serde_json::json!({ "input_data": data }).to_string();
            std::fs::write(&input_path, text)
                .map_err(|e| zkinfer_verifier::VerifyError::Input(e.to_string()))?;
        }
        let opts = zkinfer_verifier::VerifyOptions {
            input: req.input_data.is_some().then_some(input_path.as_path()),
            salt,
            ..Default::default()
        };
        let verified = zkinfer_verifier::segments::verify_segmented(&dir, &proof_path, &opts);
        Ok::<_, zkinfer_verifier::VerifyError>((v.model_id, verified))
    })
    .await
    .map_err(|e| internal("verify task", e))?;
    let (model_id, verified) = result.map_err(|e| internal("stored segmented folder", e))?;
    match verified {
        Ok(v) => Ok(Json(valid(
            &model_id,
            &v.inputs,
            &v.outputs,
            &v.commitments,
        ))),
        Err(e) => refused(&model_id, e),
    }
}

/// `/calldata` of a segmented proof: `verifyChainInference(modelId, instances, proofs)` for
/// the registry holding the model's chain of segment verifiers.
pub(super) async fn calldata(
    state: &AppState,
    id: &str,
    artifacts: &Value,
    proof: &Value,
) -> ApiResult<Json<Calldata>> {
    let dir = folder(state, id, artifacts).await?;
    let work = tempfile::tempdir_in(&state.data_dir).map_err(|e| internal("scratch", e))?;
    let proof = proof.clone();
    tokio::task::spawn_blocking(move || {
        let v = SegmentedVerifier::open(&dir).map_err(|e| internal("stored folder", e))?;
        let path = work.path().join("proof.json");
        std::fs::write(&path, proof.to_string()).map_err(|e| internal("scratch", e))?;
        let proofs = zkinfer_verifier::chain::segment_proofs_of_file(&v, &path)
            .map_err(|e| internal("stored proof", e))?;
        let data = zkinfer_verifier::chain::chain_calldata(&v.model_id, &proofs)
            .map_err(|e| internal("calldata", e))?;
        Ok(Json(Calldata {
            calldata: format!("0x{}", hex::encode(data)),
            model_id: v.model_id,
        }))
    })
    .await
    .map_err(|e| internal("calldata task", e))?
}
