//! Encrypted inference over HTTP, in process, on SQLite and on PostgreSQL: upload the digits MLP
//! with an m2c2 FHE program, fetch its `fhe.json`, make a key set from it as `zkinfer fhe keygen`
//! does, upload the server key (over the general upload limit), request a run on a ciphertext,
//! watch its progress, fetch the encrypted result and decrypt it to exactly the clear
//! simulation's integers; and every bad request, with its status and code.

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{json, Value};
use zkinfer_api::http::{openapi_document, router, AppState, Limits};
use zkinfer_api::store::Store;
use zkinfer_api::worker::Stop;
use zkinfer_api::{tenants, Db};
use zkinfer_fhe::folder;
use zkinfer_fhe::{ClientSide, FheOptions, ParamSet};

use common::{conforms, error_code, start_worker, Client};

fn fixture(name: &str) -> Vec<u8> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fhe/tests/fixtures/digits_16");
    std::fs::read(dir.join(name)).unwrap()
}

/// Asserts that a request was refused with this status and error code; returns the message.
fn refused(got: (StatusCode, Value), status: StatusCode, code: &str) -> String {
    let (s, v) = got;
    assert_eq!((s, error_code(&v)), (status, code), "{v}");
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn input_data(bytes: &[u8]) -> Vec<Vec<f64>> {
    zkinfer_model::parse_input_json(std::str::from_utf8(bytes).unwrap()).unwrap()
}

impl Client {
    async fn get_bytes(&self, uri: &str) -> (StatusCode, Vec<u8>) {
        self.send_raw("GET", uri, Some(&self.key), Body::empty(), None, &[])
            .await
    }

    async fn post_bytes(&self, uri: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        self.send(
            "POST",
            uri,
            Some(&self.key),
            Body::from(bytes),
            Some("application/octet-stream".into()),
            &[],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn encrypted_runs_over_http_decrypt_to_the_simulation() {
    let tmp = tempfile::tempdir().unwrap();
    let onnx = fixture("network.onnx");
    let calibration = fixture("calibration.json");
    let input = fixture("input.json");
    let doc = serde_json::to_value(openapi_document()).unwrap();
    // Another model's FHE program (1l_mlp), compiled here, and a key set for it.
    let other = {
        let ex = zkinfer_model::corpus::example_dir("1l_mlp");
        let graph = zkinfer_model::load_onnx(&ex.join("network.onnx")).unwrap();
        let text = std::fs::read_to_string(ex.join("input.json")).unwrap();
        let samples = zkinfer_model::parse_calibration_json(&text).unwrap();
        let opts = FheOptions {
            params: ParamSet::M2C2,
            ..Default::default()
        };
        let program = zkinfer_fhe::compile(&graph, &samples, &opts)
            .unwrap()
            .program;
        ClientSide::generate(&program).unwrap()
    };
    for (n, url) in common::databases(tmp.path()).await.into_iter().enumerate() {
        let data_dir = tmp.path().join(format!("data{n}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let db = Db::connect(&url).await.unwrap();
        let store = Store::open(None, &data_dir).unwrap();
        // Uploads are held to 1 MiB, server keys to 48 MiB: the 30 MB m2c2 key passes only
        // through the key route's own limit.
        let limits = Limits {
            max_upload_bytes: 1 << 20,
            max_fhe_key_bytes: 48 << 20,
            ..Limits::default()
        };
        let state = AppState::new(db.clone(), store.clone(), data_dir.clone(), limits);
        let (stop, worker) = start_worker(&db, &store, &data_dir, 24);
        let alice = Client {
            app: router(state.clone()),
            key: tenants::create_key(&db, "alice").await.unwrap().key,
        };
        let bob = Client {
            app: router(state.clone()),
            key: tenants::create_key(&db, "bob").await.unwrap().key,
        };
        let small_keys = Client {
            app: router(AppState {
                limits: Limits {
                    max_fhe_key_bytes: 16 << 20,
                    ..limits
                },
                ..state.clone()
            }),
            key: alice.key.clone(),
        };

        // Bad FHE options are refused at upload.
        refused(
            alice
                .upload(&[
                    ("model", &onnx),
                    ("calibration", &calibration),
                    ("fhe", br#"{"params": "m9c9"}"#),
                ])
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_settings",
        );

        // The digits MLP with an m2c2 program, and 1l_mlp without one.
        let (s, v) = alice
            .upload(&[
                ("model", &onnx),
                ("calibration", &calibration),
                ("fhe", br#"{"params": "m2c2"}"#),
            ])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let digits = v["id"].as_str().unwrap().to_string();
        let ex = zkinfer_model::corpus::example_dir("1l_mlp");
        let (s, v) = alice
            .upload(&[
                ("model", &std::fs::read(ex.join("network.onnx")).unwrap()),
                (
                    "calibration",
                    &std::fs::read(ex.join("input.json")).unwrap(),
                ),
                ("fhe", b"false"),
            ])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let plain = v["id"].as_str().unwrap().to_string();

        let m = alice.wait(&format!("/v1/models/{digits}")).await;
        assert_eq!(m["status"], "ready", "{m}");
        conforms(&doc, "Model", &m);
        let summary = &m["fhe"];
        assert_eq!(summary["available"], true, "{m}");
        assert_eq!(summary["params"], "m2c2");
        assert_eq!(summary["security_bits"], 128);
        let m = alice.wait(&format!("/v1/models/{plain}")).await;
        assert_eq!(m["status"], "ready", "{m}");
        assert_eq!(m["fhe"]["available"], false, "{m}");
        let msg = refused(
            alice.get(&format!("/v1/models/{plain}/fhe.json")).await,
            StatusCode::CONFLICT,
            "fhe_unavailable",
        );
        assert!(msg.contains("without an FHE program"), "{msg}");

        // The client makes its key set from the served program.
        let (s, program_bytes) = alice
            .get_bytes(&format!("/v1/models/{digits}/fhe.json"))
            .await;
        assert_eq!(s, StatusCode::OK);
        let client_dir = tmp.path().join(format!("client{n}"));
        std::fs::create_dir_all(&client_dir).unwrap();
        std::fs::write(client_dir.join(folder::FHE_FILE), &program_bytes).unwrap();
        let program = folder::program(&client_dir).unwrap();
        assert_eq!(summary["program_sha256"], program.sha256());
        assert_eq!(summary["bootstraps"], program.stats().bootstraps);
        let pair = ClientSide::generate(&program).unwrap();
        let stranger = ClientSide::generate(&program).unwrap();
        assert!(
            pair.server_key.len() > 1 << 20,
            "the key is over the upload limit"
        );

        // Server key uploads.
        let keys_uri = format!("/v1/models/{digits}/fhe/keys");
        refused(
            alice.post_bytes(&keys_uri, b"not a key".to_vec()).await,
            StatusCode::BAD_REQUEST,
            "invalid_key",
        );
        let msg = refused(
            alice
                .post_bytes(&keys_uri, pair.server_key[..4096].to_vec())
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_key",
        );
        assert!(msg.contains("truncated"), "{msg}");
        refused(
            alice.post_bytes(&keys_uri, other.server_key.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "fhe_mismatch",
        );
        refused(
            small_keys
                .post_bytes(&keys_uri, pair.server_key.clone())
                .await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
        refused(
            alice
                .post_bytes(
                    &format!("/v1/models/{plain}/fhe/keys"),
                    pair.server_key.clone(),
                )
                .await,
            StatusCode::CONFLICT,
            "fhe_unavailable",
        );
        refused(
            bob.post_bytes(&keys_uri, pair.server_key.clone()).await,
            StatusCode::NOT_FOUND,
            "model_not_found",
        );
        let (s, key) = alice.post_bytes(&keys_uri, pair.server_key.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{key}");
        conforms(&doc, "FheKey", &key);
        assert_eq!(key["key_set_id"], pair.client.info.key_id.as_str());
        assert_eq!(key["bytes"], pair.server_key.len());
        let key_id = key["id"].as_str().unwrap().to_string();
        let (s, v) = alice.get(&format!("{keys_uri}/{key_id}")).await;
        assert_eq!((s, &v), (StatusCode::OK, &key));
        refused(
            bob.get(&format!("{keys_uri}/{key_id}")).await,
            StatusCode::NOT_FOUND,
            "fhe_key_not_found",
        );
        let (s, v) = alice
            .post_bytes(&keys_uri, stranger.server_key.clone())
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let stranger_key = v["id"].as_str().unwrap().to_string();

        // Run requests.
        let inputs = input_data(&input);
        let ct = pair.client.encrypt(&inputs).unwrap();
        let runs_uri = format!("/v1/models/{digits}/fhe/runs");
        let key_field = key_id.as_bytes();
        refused(
            alice.post_form(&runs_uri, &[("ciphertext", &ct)]).await,
            StatusCode::BAD_REQUEST,
            "missing_field",
        );
        refused(
            alice
                .post_form(&runs_uri, &[("key_id", b"fk_nope"), ("ciphertext", &ct)])
                .await,
            StatusCode::NOT_FOUND,
            "fhe_key_not_found",
        );
        refused(
            alice
                .post_form(
                    &runs_uri,
                    &[("key_id", key_field), ("ciphertext", &ct[..ct.len() - 9])],
                )
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_ciphertext",
        );
        // A result file, or a key, given as the ciphertext.
        refused(
            alice
                .post_form(
                    &runs_uri,
                    &[
                        ("key_id", key_field),
                        ("ciphertext", &pair.server_key[..64]),
                    ],
                )
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_ciphertext",
        );
        // Encrypted under another key set than the named server key's.
        let msg = refused(
            alice
                .post_form(
                    &runs_uri,
                    &[("key_id", stranger_key.as_bytes()), ("ciphertext", &ct)],
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "fhe_mismatch",
        );
        assert!(msg.contains("another key set"), "{msg}");
        // Encrypted for another model's program.
        let other_inputs: Vec<Vec<f64>> = other
            .client
            .info
            .interface
            .inputs
            .iter()
            .map(|s| vec![s.range.0; s.shape.iter().product()])
            .collect();
        let other_ct = other.client.encrypt(&other_inputs).unwrap();
        let msg = refused(
            alice
                .post_form(
                    &runs_uri,
                    &[("key_id", key_field), ("ciphertext", &other_ct)],
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "fhe_mismatch",
        );
        assert!(msg.contains("another model"), "{msg}");

        let (s, v) = alice
            .post_form(&runs_uri, &[("key_id", key_field), ("ciphertext", &ct)])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let job_id = v["job_id"].as_str().unwrap().to_string();
        let job = alice.wait(&format!("/v1/jobs/{job_id}")).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        conforms(&doc, "Job", &job);
        let bootstraps = program.stats().bootstraps;
        assert_eq!(job["kind"], "fhe_run");
        assert_eq!(job["fhe"]["key_id"], key_id.as_str());
        assert_eq!(job["fhe"]["bootstraps"], bootstraps);
        assert_eq!(
            job["progress"],
            json!({ "done": bootstraps, "total": bootstraps, "unit": "bootstraps" })
        );
        assert_eq!(job["timings"]["keys_from"], "store");
        let (s, result) = alice
            .get_bytes(&format!("/v1/jobs/{job_id}/result.bin"))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(job["fhe"]["result_bytes"], result.len());
        let decrypted = pair.client.decrypt(&result, "result.bin").unwrap();
        let simulated = program.run_clear(&inputs).unwrap();
        assert_eq!(
            decrypted, simulated,
            "the encrypted run decrypts to the simulation"
        );
        // The stranger's key set cannot read it.
        let err = stranger.client.decrypt(&result, "result.bin").unwrap_err();
        assert!(err.to_string().contains("another key set"), "{err}");
        refused(
            bob.get(&format!("/v1/jobs/{job_id}/result.bin")).await,
            StatusCode::NOT_FOUND,
            "job_not_found",
        );

        // A second run on the same worker uses the loaded key.
        let (s, v) = alice
            .post_form(&runs_uri, &[("key_id", key_field), ("ciphertext", &ct)])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let second = v["job_id"].as_str().unwrap().to_string();
        let job = alice.wait(&format!("/v1/jobs/{second}")).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["timings"]["keys_from"], "memory");

        // A proof job has no encrypted result.
        let (s, v) = alice
            .post_json(
                &format!("/v1/models/{digits}/proofs"),
                &json!({ "input_data": inputs }),
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let proof_job = v["job_id"].as_str().unwrap().to_string();
        refused(
            alice.get(&format!("/v1/jobs/{proof_job}/result.bin")).await,
            StatusCode::CONFLICT,
            "no_result",
        );
        alice.wait(&format!("/v1/jobs/{proof_job}")).await;

        stop.send(Stop::Drain).unwrap();
        worker.await.unwrap();
    }
}
