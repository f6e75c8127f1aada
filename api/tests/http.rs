//! The HTTP API end to end, in process (`Router` driven with `oneshot`, a worker task beside
//! it), on SQLite and on PostgreSQL: upload 1l_mlp, wait for setup, request a proof, poll it,
//! fetch proof.json and verify it as `zkinfer verify` does; and the bad requests, each with its
//! status and code, leaving nothing half-written in the database or the store.

mod common;

use common::{conforms, error_code, start_worker, Client};

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tower::ServiceExt;
use zkinfer_api::http::{router, AppState, Limits};
use zkinfer_api::store::Store;
use zkinfer_api::worker::{self, Stop};
use zkinfer_api::{tenants, Db};

/// The operator's metrics token in these tests.
const OPERATOR: &str = "operator-token-0123456789";

async fn counts(db: &Db, store: &Store) -> (i64, i64, usize) {
    let models: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM models")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let jobs: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM jobs")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    (models, jobs, store.keys().await.unwrap().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_prove_poll_and_verify_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let example = zkinfer_model::corpus::example_dir("1l_mlp");
    let onnx = std::fs::read(example.join("network.onnx")).unwrap();
    let input = std::fs::read(example.join("input.json")).unwrap();
    let input_json: Value = serde_json::from_slice(&input).unwrap();
    for (n, url) in common::databases(tmp.path()).await.into_iter().enumerate() {
        let data_dir = tmp.path().join(format!("data{n}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let db = Db::connect(&url).await.unwrap();
        let store = Store::open(None, &data_dir).unwrap();
        let state = AppState {
            metrics_token: Some(OPERATOR.into()),
            ..AppState::new(
                db.clone(),
                store.clone(),
                data_dir.clone(),
                Limits {
                    max_upload_bytes: 1 << 20,
                    ..Limits::default()
                },
            )
        };
        let (stop, worker) = start_worker(&db, &store, &data_dir, 24);
        let state_copy = state.clone();
        let alice = Client {
            app: router(state.clone()),
            key: tenants::create_key(&db, "alice").await.unwrap().key,
        };
        let bob = Client {
            app: router(state),
            key: tenants::create_key(&db, "bob").await.unwrap().key,
        };

        // Authentication.
        let (s, v) = alice
            .send("GET", "/v1/models", None, Body::empty(), None, &[])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        let (s, _) = alice
            .send(
                "GET",
                "/v1/models",
                Some("zk_wrong"),
                Body::empty(),
                None,
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Bad uploads leave nothing behind.
        let before = counts(&db, &store).await;
        let (s, v) = alice
            .upload(&[("model", b"not onnx"), ("calibration", &input)])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_model"),
            "{v}"
        );
        // A model whose output is fresh randomness: refused, naming the node.
        let fixture = zkinfer_model::corpus::refused_dir("random_normal");
        let random = std::fs::read(fixture.join("network.onnx")).unwrap();
        let (s, v) = alice
            .upload(&[
                ("model", &random),
                (
                    "calibration",
                    &std::fs::read(fixture.join("input.json")).unwrap(),
                ),
            ])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_op"),
            "{v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("add_noise"),
            "{v}"
        );
        let (s, v) = alice.upload(&[("model", &onnx)]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "missing_field"),
            "{v}"
        );
        let (s, v) = alice
            .upload(&[("model", &onnx), ("calibration", b"{")])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{v}"
        );
        let (s, v) = alice
            .upload(&[
                ("model", &onnx),
                ("calibration", &input),
                ("settings", br#"{"scale": "x"}"#),
            ])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_settings"),
            "{v}"
        );
        let big = vec![7u8; 2 << 20];
        let (s, v) = alice
            .upload(&[("model", &big), ("calibration", &input)])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            "{v}"
        );
        let ctype = Some("multipart/form-data; boundary=zz".to_string());
        let (s, v) = alice
            .send(
                "POST",
                "/v1/models",
                Some(&alice.key),
                Body::from("garbage"),
                ctype,
                &[],
            )
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_multipart"),
            "{v}"
        );
        assert_eq!(counts(&db, &store).await, before);

        // Upload, set up by the worker; its setup job carries the model's webhook.
        let hook = "https://93.184.215.14/zkinfer";
        let (s, v) = alice
            .upload(&[
                ("model", &onnx),
                ("calibration", &input),
                ("callback_url", hook.as_bytes()),
            ])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let model_id = v["id"].as_str().unwrap().to_string();
        let model = alice.wait(&format!("/v1/models/{model_id}")).await;
        assert_eq!(model["status"], "ready", "{model}");
        assert_eq!(model["k"], 7);
        assert_eq!(model["public_values"], 7);
        assert!(
            model["srs"].as_str().unwrap().contains("development SRS"),
            "{model}"
        );
        let (s, v) = bob.get(&format!("/v1/models/{model_id}")).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::NOT_FOUND, "model_not_found")
        );
        let (_, list) = alice.get("/v1/models").await;
        assert_eq!(list["models"].as_array().unwrap().len(), 1);

        // Bad proof requests: none leaves a job or a blob behind.
        let before = counts(&db, &store).await;
        let uri = format!("/v1/models/{model_id}/proofs");
        let (s, v) = alice
            .post_json(&uri, &json!({ "input_data": [[1.0, 2.0]] }), &[])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{v}"
        );
        let (s, v) = alice
            .post_json(&uri, &json!({ "input_data": [["NaN", 1.0, 2.0]] }), &[])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("NaN"),
            "{v}"
        );
        let (s, v) = alice
            .send(
                "POST",
                &uri,
                Some(&alice.key),
                Body::from(r#"{"input_data": [[NaN, 1.0, 2.0]]}"#),
                Some("application/json".into()),
                &[],
            )
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_json"),
            "{v}"
        );
        let (s, v) = alice.post_json(&uri, &json!({ "input": 1 }), &[]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_json"),
            "{v}"
        );
        let (s, v) = bob.post_json(&uri, &input_json, &[]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::NOT_FOUND, "model_not_found"),
            "{v}"
        );
        for hook in [
            "http://127.0.0.1:9/hook",
            "http://localhost:9/hook",
            "file:///etc/passwd",
        ] {
            let mut req = input_json.clone();
            req["callback_url"] = json!(hook);
            let (s, v) = alice.post_json(&uri, &req, &[]).await;
            assert_eq!(
                (s, error_code(&v)),
                (StatusCode::UNPROCESSABLE_ENTITY, "callback_refused"),
                "{hook}: {v}"
            );
        }
        assert_eq!(counts(&db, &store).await, before);
        let (s, v) = alice.get("/v1/jobs/jb_missing").await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::NOT_FOUND, "job_not_found")
        );

        // A proof, idempotently requested.
        let idem = [("idempotency-key", "req-1")];
        let (s, v) = alice.post_json(&uri, &input_json, &idem).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let job_id = v["job_id"].as_str().unwrap().to_string();
        let (s, again) = alice.post_json(&uri, &input_json, &idem).await;
        assert_eq!(
            (s, again["job_id"].as_str()),
            (StatusCode::OK, Some(job_id.as_str()))
        );
        // The same request reformatted (whitespace, key order) is the same request.
        let mut reformatted = serde_json::to_string_pretty(&input_json).unwrap();
        if let Value::Object(m) = &input_json {
            let mut pairs: Vec<_> = m.iter().collect();
            pairs.reverse();
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?} : {v}")).collect();
            reformatted = format!("{{ {} }}", body.join(" ,\n "));
        }
        let (s, again) = alice
            .send(
                "POST",
                &uri,
                Some(&alice.key),
                Body::from(reformatted),
                Some("application/json".into()),
                &idem,
            )
            .await;
        assert_eq!(
            (s, again["job_id"].as_str()),
            (StatusCode::OK, Some(job_id.as_str())),
            "{again}"
        );
        let other = json!({ "input_data": [[0.5, 0.25, 0.125]] });
        let (s, v) = alice.post_json(&uri, &other, &idem).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::CONFLICT, "idempotency_key_reused"),
            "{v}"
        );
        let (models_now, jobs_now, blobs_now) = counts(&db, &store).await;
        assert_eq!(
            (models_now, jobs_now, blobs_now),
            (before.0, before.1 + 1, before.2),
            "one job for the key, none for the conflicting request"
        );
        let job = alice.wait(&format!("/v1/jobs/{job_id}")).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(
            job["phase"],
            Value::Null,
            "an ended job is in no phase: {job}"
        );
        assert_eq!(job["timings"]["keys_from"], "store", "{job}");
        // The second proof finds the proving key in the worker's memory.
        let (s, v) = alice.post_json(&uri, &other, &[]).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let second_id = v["job_id"].as_str().unwrap().to_string();
        let second = alice.wait(&format!("/v1/jobs/{second_id}")).await;
        assert_eq!(second["status"], "succeeded", "{second}");
        assert_eq!(
            (
                &second["timings"]["keys_from"],
                &second["timings"]["load_ms"]
            ),
            (&json!("memory"), &json!(0)),
            "{second}"
        );
        assert_ne!(second["outputs"], job["outputs"]);

        // Listing: newest first, by model and status, a page at a time.
        let (s, page) = alice
            .get(&format!(
                "/v1/jobs?model={model_id}&status=succeeded&limit=2"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let ids = |page: &Value| -> Vec<String> {
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(&page), [second_id.clone(), job_id.clone()]);
        let cursor = page["next_cursor"].as_str().unwrap().to_string();
        let (_, page) = alice
            .get(&format!(
                "/v1/jobs?model_id={model_id}&status=succeeded&limit=2&cursor={cursor}"
            ))
            .await;
        assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "{page}");
        assert_eq!(page["jobs"][0]["kind"], "setup");
        let setup = page["jobs"][0]["id"].as_str().unwrap();
        let (_, setup) = alice.get(&format!("/v1/jobs/{setup}")).await;
        assert_eq!(
            (&setup["callback"]["url"], &setup["callback"]["state"]),
            (&json!(hook), &json!("pending")),
            "{setup}"
        );
        assert!(page.get("next_cursor").is_none(), "{page}");
        let (_, page) = alice.get("/v1/jobs").await;
        assert_eq!(
            page["jobs"].as_array().unwrap().len(),
            3,
            "two proofs and the setup"
        );
        // One naming throughout: `model` is the handle, `model_id` the 64-hex id, in every
        // job (the setup's too, once its model is ready), and either filters.
        for j in page["jobs"].as_array().unwrap() {
            assert_eq!(
                (&j["model"], &j["model_id"]),
                (&json!(model_id), &model["model_id"]),
                "{j}"
            );
        }
        let hex = model["model_id"].as_str().unwrap();
        for filter in [format!("model_id={hex}"), format!("model_id={model_id}")] {
            let (s, page) = alice.get(&format!("/v1/jobs?{filter}")).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            assert_eq!(
                page["jobs"].as_array().unwrap().len(),
                3,
                "{filter}: {page}"
            );
        }
        let (_, page) = bob.get(&format!("/v1/jobs?model_id={hex}")).await;
        assert_eq!(
            page["jobs"],
            json!([]),
            "another tenant's model id finds nothing"
        );
        let (_, page) = alice.get("/v1/jobs?status=queued").await;
        assert_eq!(page["jobs"], json!([]));
        let (_, page) = bob.get("/v1/jobs").await;
        assert_eq!(
            page["jobs"],
            json!([]),
            "another tenant's jobs are not listed"
        );
        for bad in [
            "/v1/jobs?status=done",
            "/v1/jobs?limit=0",
            "/v1/jobs?limit=x",
            "/v1/jobs?cursor=zz",
        ] {
            let (s, v) = alice.get(bad).await;
            assert_eq!(
                (s, error_code(&v)),
                (StatusCode::BAD_REQUEST, "invalid_query"),
                "{bad}: {v}"
            );
        }

        // The OpenAPI document: every route, and the responses as documented.
        let (s, doc) = alice
            .send("GET", "/openapi.json", None, Body::empty(), None, &[])
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(doc["openapi"], "3.1.0");
        let mut routes: Vec<String> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| format!("{} {path}", m.to_uppercase()))
            })
            .collect();
        routes.sort();
        assert_eq!(
            routes,
            [
                "DELETE /v1/jobs/{id}",
                "DELETE /v1/models/{id}",
                "GET /healthz",
                "GET /metrics",
                "GET /openapi.json",
                "GET /v1/jobs",
                "GET /v1/jobs/{id}",
                "GET /v1/jobs/{id}/calldata",
                "GET /v1/jobs/{id}/proof.json",
                "GET /v1/jobs/{id}/result.bin",
                "GET /v1/models",
                "GET /v1/models/{id}",
                "GET /v1/models/{id}/bundle",
                "GET /v1/models/{id}/fhe.json",
                "GET /v1/models/{id}/fhe/keys/{key_id}",
                "GET /v1/models/{id}/verifier",
                "GET /v1/models/{id}/verifier.sol",
                "POST /v1/models",
                "POST /v1/models/{id}/fhe/keys",
                "POST /v1/models/{id}/fhe/runs",
                "POST /v1/models/{id}/proofs",
                "POST /v1/models/{id}/verify",
            ]
        );
        // Each documented route is one the router serves.
        for route in &routes {
            let (method, path) = route.split_once(' ').unwrap();
            let path = path.replace("{key_id}", "fk_none").replace(
                "{id}",
                if path.starts_with("/v1/jobs") {
                    "jb_none"
                } else {
                    "md_none"
                },
            );
            let (s, v) = alice
                .send(method, &path, Some(&alice.key), Body::empty(), None, &[])
                .await;
            assert_ne!(error_code(&v), "no_such_route", "{route}");
            assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{route}");
        }
        // What the derive cannot say: error codes as enums, headers, webhooks.
        assert_eq!(
            doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"],
            json!(zkinfer_api::http::ERROR_CODES)
        );
        assert_eq!(
            doc["components"]["schemas"]["JobError"]["properties"]["code"]["enum"],
            json!(zkinfer_api::http::JOB_ERROR_CODES)
        );
        let proofs = &doc["paths"]["/v1/models/{id}/proofs"]["post"];
        let headers: Vec<&str> = proofs["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(headers, ["X-Request-Id", "Idempotency-Key"]);
        assert!(proofs["responses"]["429"]["headers"]["Retry-After"].is_object());
        assert!(proofs["responses"]["202"]["headers"]["X-Request-Id"].is_object());
        let hook = &doc["webhooks"]["jobEnded"]["post"];
        assert_eq!(
            hook["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Job"
        );
        // An over-long Idempotency-Key is refused before anything is stored.
        let long = "k".repeat(256);
        let (s, v) = alice
            .post_json(&uri, &other, &[("idempotency-key", long.as_str())])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_header"),
            "{v}"
        );
        conforms(&doc, "Model", &model);
        conforms(&doc, "Job", &job);
        conforms(&doc, "Job", &second);
        let (_, proof_file) = alice.get(&format!("/v1/jobs/{job_id}/proof.json")).await;
        conforms(&doc, "ProofFile", &proof_file);
        conforms(&doc, "ErrorBody", &alice.get("/v1/jobs/jb_missing").await.1);

        assert_eq!(job["instances"].as_array().unwrap().len(), 7);
        let (s, v) = bob.get(&format!("/v1/jobs/{job_id}")).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::NOT_FOUND, "job_not_found")
        );
        let (s, v) = alice.delete(&format!("/v1/jobs/{job_id}")).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::CONFLICT, "not_cancellable")
        );

        // proof.json is what `zkinfer verify` reads: verified against the model's folder.
        let (s, proof) = alice.get(&format!("/v1/jobs/{job_id}/proof.json")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(proof["outputs"], job["outputs"]);
        let proof_path = tmp.path().join(format!("proof{n}.json"));
        std::fs::write(&proof_path, proof.to_string()).unwrap();
        let row = zkinfer_api::models::get(
            &db,
            &tenants::authenticate(&db, &alice.key)
                .await
                .unwrap()
                .unwrap(),
            &model_id,
        )
        .await
        .unwrap()
        .unwrap();
        let (folder, _) = worker::materialize(
            &store,
            &data_dir.join("verify"),
            &Mutex::new(()),
            &model_id,
            row.artifacts.as_ref().unwrap(),
        )
        .await
        .unwrap();
        let opts = zkinfer_verifier::VerifyOptions {
            model_id: model["model_id"].as_str(),
            input: Some(&example.join("input.json")),
            ..Default::default()
        };
        let verified = zkinfer_verifier::verify_file(&folder, &proof_path, &opts).unwrap();
        assert!(verified.pinned && verified.input_checked);
        assert_eq!(
            serde_json::to_value(&verified.outputs).unwrap(),
            job["outputs"]
        );

        // The verify route: valid, the outputs; tampered, not valid; another input, refused.
        let vuri = format!("/v1/models/{model_id}/verify");
        let body = json!({ "proof": proof["proof"], "instances": proof["instances"], "input_data": input_json["input_data"] });
        let (s, v) = alice.post_json(&vuri, &body, &[]).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["valid"].as_bool(), &v["outputs"]),
            (Some(true), &job["outputs"])
        );
        let mut forged = body.clone();
        let last = forged["instances"].as_array().unwrap().len() - 1;
        forged["instances"][last] = json!(format!("0x{:064x}", 12345));
        let (s, v) = alice.post_json(&vuri, &forged, &[]).await;
        assert_eq!(
            (s, v["valid"].as_bool()),
            (StatusCode::OK, Some(false)),
            "{v}"
        );
        let mut other_input = body.clone();
        other_input["input_data"] = json!([[0.5, 0.25, 0.125]]);
        let (s, v) = alice.post_json(&vuri, &other_input, &[]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "input_mismatch"),
            "{v}"
        );
        let (s, v) = bob.post_json(&vuri, &body, &[]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::NOT_FOUND, "model_not_found"),
            "{v}"
        );

        // The Solidity verifier of the model.
        let req = Request::get(format!("/v1/models/{model_id}/verifier.sol"))
            .header("authorization", format!("Bearer {}", alice.key))
            .body(Body::empty())
            .unwrap();
        let resp = alice.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let sol = resp.into_body().collect().await.unwrap().to_bytes();
        let sol = String::from_utf8(sol.to_vec()).unwrap();
        assert!(
            sol.contains("contract Halo2Verifier")
                && sol.contains("the calldata is exactly 7 public values and the proof"),
            "{sol:.200}"
        );

        // Verifying read only what a verifier holds: no proving key was fetched for it.
        assert!(
            !data_dir.join("models").exists(),
            "the server fetched a prover's folder"
        );
        // The verifier's bytecode and ABI, built once and stored; the job's calldata passes
        // it in the EVM.
        let (s, evm) = alice.get(&format!("/v1/models/{model_id}/verifier")).await;
        assert_eq!(s, StatusCode::OK, "{evm}");
        conforms(&doc, "EvmVerifier", &evm);
        assert_eq!(evm["model_id"], model["model_id"]);
        assert_eq!(evm["compiler"]["version"], "0.8.19");
        let (s, cd) = alice.get(&format!("/v1/jobs/{job_id}/calldata")).await;
        assert_eq!(s, StatusCode::OK, "{cd}");
        conforms(&doc, "Calldata", &cd);
        let hexed = |v: &Value| hex::decode(&v.as_str().unwrap()[2..]).unwrap();
        let verdict = zkinfer_verifier::solidity::evm_verify(
            &hexed(&evm["bytecode"]),
            &hexed(&cd["calldata"]),
        )
        .unwrap();
        assert!(verdict.accepted, "{verdict:?}");
        let stored: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM evm_verifiers")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(stored, 1);
        let (_, again) = alice.get(&format!("/v1/models/{model_id}/verifier")).await;
        assert_eq!(again, evm, "served as stored");
        let (s, v) = bob.get(&format!("/v1/jobs/{job_id}/calldata")).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::NOT_FOUND, "job_not_found")
        );

        // The bundle: exactly what `zkinfer verify` reads; verified from it alone.
        let req = Request::get(format!("/v1/models/{model_id}/bundle"))
            .header("authorization", format!("Bearer {}", alice.key))
            .body(Body::empty())
            .unwrap();
        let resp = alice.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let tarball = resp.into_body().collect().await.unwrap().to_bytes();
        let unpacked = tmp.path().join(format!("bundle{n}"));
        tar::Archive::new(tarball.as_ref())
            .unpack(&unpacked)
            .unwrap();
        let names: Vec<String> = std::fs::read_dir(unpacked.join(&model_id))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        let v =
            zkinfer_verifier::verify_file(&unpacked.join(&model_id), &proof_path, &opts).unwrap();
        assert_eq!(v.model_id, model["model_id"].as_str().unwrap());

        // Metrics: the operator's, not a tenant's (not even with a tenant key).
        for key in [None, Some(alice.key.as_str()), Some("operator-token-wrong")] {
            let (s, v) = alice
                .send("GET", "/metrics", key, Body::empty(), None, &[])
                .await;
            assert_eq!(
                (s, error_code(&v)),
                (StatusCode::UNAUTHORIZED, "unauthorized")
            );
        }
        // The two succeeded proofs and the setup, two run-time samples, from counters.
        let (s, text) = alice
            .send_raw("GET", "/metrics", Some(OPERATOR), Body::empty(), None, &[])
            .await;
        assert_eq!(s, StatusCode::OK);
        let text = String::from_utf8(text).unwrap();
        for line in [
            "zkinfer_jobs_ended_total{kind=\"prove\",state=\"succeeded\"} 2",
            "zkinfer_jobs_ended_total{kind=\"setup\",state=\"succeeded\"} 1",
            "zkinfer_queue_depth 0",
            "zkinfer_lease_expiries_total 0",
            "zkinfer_prove_seconds_count 2",
            "zkinfer_prove_seconds_bucket{le=\"+Inf\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("alice") && !text.contains("bob"), "{text}");

        // Too many open jobs: 429, with the worker stopped so they stay queued.
        stop.send(Stop::Drain).unwrap();
        worker.await.unwrap();
        let strict = Client {
            app: router(AppState {
                limits: Limits {
                    max_queued_jobs: 1,
                    ..Limits::default()
                },
                ..state_copy.clone()
            }),
            key: alice.key.clone(),
        };
        let taken = [("idempotency-key", "at-quota")];
        let (s, v) = strict.post_json(&uri, &input_json, &taken).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let queued = v["job_id"].as_str().unwrap().to_string();
        let (s, v) = strict.post_json(&uri, &input_json, &[]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_jobs"),
            "{v}"
        );
        // At its quota, a client's retry of the request that was taken learns its job.
        let (s, v) = strict.post_json(&uri, &input_json, &taken).await;
        assert_eq!(
            (s, v["job_id"].as_str()),
            (StatusCode::OK, Some(queued.as_str()))
        );

        // Deleting the model cancels its queued job and hides it.
        let (s, _) = bob.delete(&format!("/v1/models/{model_id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = alice.delete(&format!("/v1/models/{model_id}")).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("deleted")),
            "{v}"
        );
        let (s, _) = alice.get(&format!("/v1/models/{model_id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            alice.get(&format!("/v1/jobs/{queued}")).await.1["status"],
            "cancelled"
        );
        let (s, v) = alice.post_json(&uri, &input_json, &[]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::NOT_FOUND, "model_not_found"),
            "{v}"
        );
        check_folder(&folder);
    }
}

fn check_folder(dir: &Path) {
    for f in ["settings.json", "vk.bin", "kzg-verifier.bin", "pk.bin"] {
        assert!(dir.join(f).exists(), "{f}");
    }
}

/// A model whose circuit needs more rows than the service sets up (`--max-k`) fails its
/// setup job with `model_too_large`, and the model says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_beyond_the_service_limit_fails_with_model_too_large() {
    let tmp = tempfile::tempdir().unwrap();
    let example = zkinfer_model::corpus::example_dir("1l_mlp");
    let db = Db::connect(&format!("sqlite:{}", tmp.path().join("z.db").display()))
        .await
        .unwrap();
    let store = Store::open(None, tmp.path()).unwrap();
    let state = AppState::new(
        db.clone(),
        store.clone(),
        tmp.path().join("server"),
        Limits::default(),
    );
    // 1l_mlp needs k = 7 within a 3,072-byte proof. (Left to the default budget, the planner
    // would raise it to fit k = 6 with a 3,808-byte proof, since nothing smaller fits.)
    let (stop, worker) = start_worker(&db, &store, tmp.path(), 6);
    let alice = Client {
        app: router(state),
        key: tenants::create_key(&db, "alice").await.unwrap().key,
    };
    let onnx = std::fs::read(example.join("network.onnx")).unwrap();
    let input = std::fs::read(example.join("input.json")).unwrap();
    let fixed: &[u8] = br#"{"max_proof_bytes": 3072}"#;
    let (s, v) = alice
        .upload(&[
            ("model", &onnx),
            ("calibration", &input),
            ("settings", fixed),
        ])
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let model = alice
        .wait(&format!("/v1/models/{}", v["id"].as_str().unwrap()))
        .await;
    assert_eq!(model["status"], "failed", "{model}");
    assert_eq!(error_code(&model), "model_too_large", "{model}");
    // With the default budget the same upload is ready, at k = 6.
    let (s, v) = alice
        .upload(&[("model", &onnx), ("calibration", &input)])
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let model = alice
        .wait(&format!("/v1/models/{}", v["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (&model["status"], &model["k"]),
        (&json!("ready"), &json!(6)),
        "{model}"
    );
    assert!(model["proof_bytes"].as_u64().unwrap() > 3072, "{model}");
    stop.send(Stop::Drain).unwrap();
    worker.await.unwrap();
}
