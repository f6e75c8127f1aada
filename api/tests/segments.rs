//! A segmented model through the service, on SQLite and PostgreSQL: the upload setting
//! `segments` (bounded by the operator's ceiling), setup and proof jobs fanned out one child
//! job per segment and assembled by their parent, the model and job JSON showing the
//! segments, a bundle `zkinfer verify` accepts the proof file against (and refuses tampered),
//! `/verify` checking the job's proofs and input as `zkinfer verify` does, its calldata the
//! chain registry's call, and the routes that serve one verifier refusing a segmented model
//! by name.

mod common;

use common::{error_code, start_worker, Client};

use axum::http::StatusCode;
use serde_json::{json, Value};
use zkinfer_api::http::{router, AppState, Limits};
use zkinfer_api::store::Store;
use zkinfer_api::{tenants, Db};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segmented_model_is_set_up_and_proven_by_one_job_per_segment() {
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
        let state = AppState::new(
            db.clone(),
            store.clone(),
            data_dir.clone(),
            Limits::default(),
        );
        let (stop, worker) = start_worker(&db, &store, &data_dir, 20);
        let alice = Client {
            app: router(state),
            key: tenants::create_key(&db, "alice").await.unwrap().key,
        };

        // One segment is no cut; more than the operator allows is refused, naming the limit.
        for (asked, says) in [(1, "two or more"), (33, "limit of 32")] {
            let settings = json!({ "segments": asked }).to_string();
            let (s, v) = alice
                .upload(&[
                    ("model", &onnx),
                    ("calibration", &input),
                    ("settings", settings.as_bytes()),
                ])
                .await;
            assert_eq!(
                (s, error_code(&v)),
                (StatusCode::BAD_REQUEST, "invalid_settings"),
                "{v}"
            );
            assert!(
                v["error"]["message"].as_str().unwrap().contains(says),
                "{v}"
            );
        }

        let model = alice
            .ready(&[
                ("model", &onnx),
                ("calibration", &input),
                ("settings", br#"{"segments": 2}"#),
                ("fhe", b"false"),
            ])
            .await;
        let id = model["id"].as_str().unwrap().to_string();
        let segments = model["segments"].as_array().expect("segments").clone();
        assert_eq!(segments.len(), 2, "{model}");
        for (s, seg) in segments.iter().enumerate() {
            assert_eq!(seg["segment"], s, "{seg}");
            assert_eq!(seg["model_id"].as_str().unwrap().len(), 64, "{seg}");
            assert!(seg["prove_memory_bytes"].as_u64().unwrap() > 0, "{seg}");
        }
        let model_id = model["model_id"].as_str().unwrap().to_string();
        assert_eq!(model_id.len(), 64);
        assert_ne!(model_id, segments[0]["model_id"].as_str().unwrap());
        assert_eq!(model["fhe"]["available"], false, "{model}");

        // A bad input is refused before it becomes a job, as for one circuit.
        let uri = format!("/v1/models/{id}/proofs");
        let (s, v) = alice
            .post_json(&uri, &json!({ "input_data": [[1.0]] }), &[])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            "{v}"
        );
        let data = input_json["input_data"].clone();
        let (s, v) = alice
            .post_json(&uri, &json!({ "input_data": data }), &[])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let job_id = v["job_id"].as_str().unwrap().to_string();
        let job = alice.wait(&format!("/v1/jobs/{job_id}")).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(
            job["progress"],
            json!({ "done": 2, "total": 2, "unit": "segments" })
        );
        assert_eq!(job["model_id"], json!(model_id));
        assert_eq!(job["segments"].as_array().unwrap().len(), 2, "{job}");
        assert_eq!(job["proof"], "0x");
        let (s, openapi) = alice.get("/openapi.json").await;
        assert_eq!(s, StatusCode::OK);
        common::conforms(&openapi, "Job", &job);
        common::conforms(&openapi, "Model", &model);
        for seg in &segments {
            common::conforms(&openapi, "SegmentSummary", seg);
        }

        // The segments' jobs are the parent's business: the listing shows the tenant's two.
        let (s, list) = alice.get("/v1/jobs").await;
        assert_eq!(s, StatusCode::OK);
        let kinds: Vec<&str> = list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["prove", "setup"], "{list}");
        let children: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE parent_id = $1 \
             AND kind = 'prove_segment' AND status = 'succeeded'",
        )
        .bind(&job_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(children, 2);
        // Each segment's job carries its own inputs (from the parent's one evaluation), not
        // the request's, and its worker fetched its own segment, never the whole graph.
        let payloads: Vec<String> =
            sqlx::query_scalar("SELECT payload FROM jobs WHERE parent_id = $1 ORDER BY segment")
                .bind(&job_id)
                .fetch_all(&db.pool)
                .await
                .unwrap();
        for p in &payloads {
            let p: serde_json::Value = serde_json::from_str(p).unwrap();
            assert!(
                p["inputs"].is_array() && p.get("input_data").is_none(),
                "{p}"
            );
        }
        let models = data_dir.join("worker").join("models");
        let mut segment_caches = 0;
        for entry in std::fs::read_dir(&models).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.contains(".segment-") {
                assert!(
                    !path.join("qgraph.json").exists(),
                    "{name} holds the whole graph"
                );
                assert!(path.join("segments.json").exists(), "{name}");
                segment_caches += 1;
            }
        }
        assert_eq!(segment_caches, 2);

        // The bundle is a segmented folder `zkinfer verify` reads: the proof file holds.
        let (s, proof) = alice.get(&format!("/v1/jobs/{job_id}/proof.json")).await;
        assert_eq!(s, StatusCode::OK, "{proof}");
        let (s, tar) = alice
            .send_raw(
                "GET",
                &format!("/v1/models/{id}/bundle"),
                Some(&alice.key),
                axum::body::Body::empty(),
                None,
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let unpacked = tmp.path().join(format!("bundle{n}"));
        tar::Archive::new(tar.as_slice()).unpack(&unpacked).unwrap();
        let folder = unpacked.join(&id);
        let verify = |proof: &Value| {
            let path = tmp.path().join(format!("proof{n}.json"));
            std::fs::write(&path, proof.to_string()).unwrap();
            let opts = zkinfer_verifier::VerifyOptions {
                model_id: Some(&model_id),
                ..Default::default()
            };
            zkinfer_verifier::segments::verify_segmented(&folder, &path, &opts)
        };
        verify(&proof).expect("the service's proof verifies against its bundle");
        let mut tampered = proof.clone();
        tampered["segments"][1]["instances"][0] = json!(format!("0x{}", "0".repeat(63) + "1"));
        assert!(verify(&tampered).is_err(), "a changed segment instance");
        let mut swapped = proof.clone();
        swapped["segments"] = json!([proof["segments"][1], proof["segments"][0]]);
        assert!(verify(&swapped).is_err(), "segments reordered");

        // `/verify` checks it as `zkinfer verify` checks the proof file: the job's fields
        // verify, with the input given; a changed segment proof, a swapped order or another
        // input do not.
        let uri = format!("/v1/models/{id}/verify");
        let fields = |job: &Value| {
            json!({
                "proof": job["proof"],
                "instances": job["instances"],
                "segments": job["segments"],
                "outputs": job["outputs"],
                "inputs": job["inputs"],
            })
        };
        let mut body = fields(&job);
        body["input_data"] = data.clone();
        let (s, v) = alice.post_json(&uri, &body, &[]).await;
        assert_eq!((s, &v["valid"]), (StatusCode::OK, &json!(true)), "{v}");
        assert_eq!(v["model_id"], json!(model_id));
        let mut forged = fields(&job);
        let p = forged["segments"][0]["proof"].as_str().unwrap().to_string();
        let flipped = if p.ends_with('0') { "1" } else { "0" };
        forged["segments"][0]["proof"] = json!(format!("{}{flipped}", &p[..p.len() - 1]));
        let (s, v) = alice.post_json(&uri, &forged, &[]).await;
        assert_eq!((s, &v["valid"]), (StatusCode::OK, &json!(false)), "{v}");
        let mut swapped = fields(&job);
        swapped["segments"] = json!([job["segments"][1], job["segments"][0]]);
        let (s, v) = alice.post_json(&uri, &swapped, &[]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_proof_format"),
            "{v}"
        );
        let mut other = fields(&job);
        let mut moved = data.clone();
        moved[0][0] = json!(moved[0][0].as_f64().unwrap() + 0.5);
        other["input_data"] = moved;
        let (s, v) = alice.post_json(&uri, &other, &[]).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "input_mismatch"),
            "{v}"
        );

        // Its calldata is the chain registry's call, as `zkinfer evm-calldata` makes it.
        let (s, v) = alice.get(&format!("/v1/jobs/{job_id}/calldata")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let v_folder = zkinfer_verifier::segments::SegmentedVerifier::open(&folder).unwrap();
        let path = tmp.path().join(format!("proof{n}.json"));
        std::fs::write(&path, proof.to_string()).unwrap();
        let proofs = zkinfer_verifier::chain::segment_proofs_of_file(&v_folder, &path).unwrap();
        let want = zkinfer_verifier::chain::chain_calldata(&model_id, &proofs).unwrap();
        assert_eq!(v["calldata"], json!(format!("0x{}", hex::encode(want))));

        // A proof fanned out by a worker from before segment jobs carried their inputs (its
        // children hold the request's input, its payload no outputs) still completes, alike.
        let legacy = format!("{job_id}-legacy");
        sqlx::query(
            "INSERT INTO jobs (id, tenant_id, model_id, kind, status, payload, max_attempts, \
             created_ms, segments_left, progress) \
             SELECT $1, tenant_id, model_id, 'prove', 'waiting', $2, max_attempts, created_ms, \
             2, progress FROM jobs WHERE id = $3",
        )
        .bind(&legacy)
        .bind(json!({ "input_data": data }).to_string())
        .bind(&job_id)
        .execute(&db.pool)
        .await
        .unwrap();
        let first: Value = serde_json::from_str(&payloads[0]).unwrap();
        for segment in 0..2i64 {
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, model_id, kind, status, payload, max_attempts, \
                 created_ms, parent_id, segment) \
                 SELECT $1, tenant_id, model_id, 'prove_segment', 'queued', $2, max_attempts, \
                 created_ms, $3, $4 FROM jobs WHERE id = $3",
            )
            .bind(format!("{legacy}-{segment}"))
            .bind(
                json!({ "segment": segment, "input_data": data, "salt": first["salt"] })
                    .to_string(),
            )
            .bind(&legacy)
            .bind(segment)
            .execute(&db.pool)
            .await
            .unwrap();
        }
        let old = alice.wait(&format!("/v1/jobs/{legacy}")).await;
        assert_eq!(old["status"], "succeeded", "{old}");
        assert_eq!(old["outputs"], job["outputs"]);
        let (s, old_proof) = alice.get(&format!("/v1/jobs/{legacy}/proof.json")).await;
        assert_eq!(s, StatusCode::OK, "{old_proof}");
        verify(&old_proof).expect("the legacy job's proof verifies");

        // One verifier per segment: the routes serving one refuse by name.
        for route in ["verifier.sol", "verifier"] {
            let (s, v) = alice.get(&format!("/v1/models/{id}/{route}")).await;
            assert_eq!(
                (s, error_code(&v)),
                (StatusCode::CONFLICT, "segmented_model"),
                "{route}: {v}"
            );
        }

        stop.send(zkinfer_api::worker::Stop::Drain).unwrap();
        worker.await.unwrap();
    }
}
