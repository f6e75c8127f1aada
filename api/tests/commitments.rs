//! A hashed-input, hashed-output model through the service, on SQLite and PostgreSQL: upload
//! settings take the visibilities, a proof job takes the client's salt, the model shows its
//! visibilities, and `/verify` holds the proof to an input (with its salt) and to output values
//! through their commitments, returning the commitments; with hashed weights the model shows
//! its weight commitment and `/verify` holds a proof to it.

mod common;

use common::{error_code, start_worker, Client};

use axum::http::StatusCode;
use serde_json::{json, Value};
use zkinfer_api::http::{router, AppState, Limits};
use zkinfer_api::store::Store;
use zkinfer_api::worker::Stop;
use zkinfer_api::{tenants, Db};

/// A service on database `url` with one worker and tenants alice and bob: their clients, and
/// the worker's stop signal and task.
async fn service(
    data_dir: std::path::PathBuf,
    url: &str,
) -> (
    Client,
    Client,
    tokio::sync::watch::Sender<Stop>,
    tokio::task::JoinHandle<()>,
) {
    std::fs::create_dir_all(&data_dir).unwrap();
    let db = Db::connect(url).await.unwrap();
    let store = Store::open(None, &data_dir).unwrap();
    let state = AppState::new(
        db.clone(),
        store.clone(),
        data_dir.clone(),
        Limits::default(),
    );
    let (stop, worker) = start_worker(&db, &store, &data_dir, 20);
    let app = router(state);
    let alice = Client {
        app: app.clone(),
        key: tenants::create_key(&db, "alice").await.unwrap().key,
    };
    let bob = Client {
        app,
        key: tenants::create_key(&db, "bob").await.unwrap().key,
    };
    (alice, bob, stop, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hashed_models_prove_and_verify_by_commitment() {
    let tmp = tempfile::tempdir().unwrap();
    let example = zkinfer_model::corpus::example_dir("1l_mlp");
    let onnx = std::fs::read(example.join("network.onnx")).unwrap();
    let input = std::fs::read(example.join("input.json")).unwrap();
    let input_json: Value = serde_json::from_slice(&input).unwrap();
    for (n, url) in common::databases(tmp.path()).await.into_iter().enumerate() {
        let (alice, _, stop, worker) = service(tmp.path().join(format!("data{n}")), &url).await;

        // Outputs nobody sees are refused at upload.
        let (s, v) = alice
            .upload(&[
                ("model", &onnx),
                ("calibration", &input),
                ("settings", br#"{"output_visibility": "private"}"#),
            ])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_settings"),
            "{v}"
        );
        let (s, v) = alice
            .upload(&[
                ("model", &onnx),
                ("calibration", &input),
                (
                    "settings",
                    br#"{"input_visibility": "hashed", "output_visibility": "hashed"}"#,
                ),
            ])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let model_id = v["id"].as_str().unwrap().to_string();
        let model = alice.wait(&format!("/v1/models/{model_id}")).await;
        assert_eq!(model["status"], "ready", "{model}");
        assert_eq!(
            (&model["input_visibility"], &model["output_visibility"]),
            (&json!("hashed"), &json!("hashed"))
        );
        assert_eq!(model["public_values"], 2);

        let uri = format!("/v1/models/{model_id}/proofs");
        let data = input_json["input_data"].clone();
        let (s, v) = alice
            .post_json(&uri, &json!({ "input_data": data, "salt": "zz" }), &[])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_salt")
        );
        let (s, v) = alice
            .post_json(&uri, &json!({ "input_data": data, "salt": "2a" }), &[])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let job = alice
            .wait(&format!("/v1/jobs/{}", v["job_id"].as_str().unwrap()))
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let (s, proof) = alice
            .get(&format!(
                "/v1/jobs/{}/proof.json",
                v["job_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{proof}");
        assert_eq!(proof["input_visibility"], "hashed");
        assert_eq!(proof["instances"].as_array().unwrap().len(), 2);

        let vuri = format!("/v1/models/{model_id}/verify");
        let body = |input: Option<&Value>, salt: Option<&str>, outputs: Option<&Value>| {
            let mut b = json!({ "proof": proof["proof"], "instances": proof["instances"] });
            if let Some(i) = input {
                b["input_data"] = i.clone();
            }
            if let Some(s) = salt {
                b["salt"] = json!(s);
            }
            if let Some(o) = outputs {
                b["outputs"] = o.clone();
            }
            b
        };
        let (s, v) = alice
            .post_json(
                &vuri,
                &body(Some(&data), Some("2a"), Some(&proof["outputs"])),
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["outputs"], proof["outputs"]);
        let hex = |i: usize| proof["instances"][i].as_str().unwrap()[2..].to_string();
        assert_eq!(v["commitments"]["inputs"], json!([hex(0)]));
        assert_eq!(v["commitments"]["outputs"], json!([hex(1)]));
        // Without the salt the input is another commitment; other output values too.
        let (s, v) = alice
            .post_json(&vuri, &body(Some(&data), None, None), &[])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "input_mismatch"),
            "{v}"
        );
        let mut other = proof["outputs"].clone();
        other[0][0] = json!(0.5);
        let (s, v) = alice
            .post_json(&vuri, &body(None, None, Some(&other)), &[])
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "output_mismatch"),
            "{v}"
        );

        stop.send(Stop::Drain).unwrap();
        worker.await.unwrap();
    }
}

/// Hashed weights through the service: the upload setting, the model's weight commitment, a
/// proof carrying it last among its public values, and `/verify` refusing a proof under
/// another weight commitment (422 `other_weights`) before any cryptography; an upload with
/// `like` reproducing the model's circuit (its architecture id), and its refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hashed_weights_are_shown_and_held_to_their_commitment() {
    let tmp = tempfile::tempdir().unwrap();
    let example = zkinfer_model::corpus::example_dir("1l_mlp");
    let onnx = std::fs::read(example.join("network.onnx")).unwrap();
    let input = std::fs::read(example.join("input.json")).unwrap();
    let input_json: Value = serde_json::from_slice(&input).unwrap();
    let url = common::databases(tmp.path()).await.remove(0);
    let (alice, bob, stop, worker) = service(tmp.path().join("data"), &url).await;
    let (s, v) = alice
        .upload(&[
            ("model", &onnx),
            ("calibration", &input),
            ("settings", br#"{"weights": "hashed"}"#),
        ])
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let model_id = v["id"].as_str().unwrap().to_string();
    let model = alice.wait(&format!("/v1/models/{model_id}")).await;
    assert_eq!(model["status"], "ready", "{model}");
    assert_eq!(model["weights"], "hashed", "{model}");
    let commitment = model["weight_commitment"].as_str().unwrap().to_string();
    assert_eq!(commitment.len(), 64);

    let data = input_json["input_data"].clone();
    let (s, v) = alice
        .post_json(
            &format!("/v1/models/{model_id}/proofs"),
            &json!({ "input_data": data }),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let job_id = v["job_id"].as_str().unwrap().to_string();
    let job = alice.wait(&format!("/v1/jobs/{job_id}")).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, proof) = alice.get(&format!("/v1/jobs/{job_id}/proof.json")).await;
    let instances = proof["instances"].as_array().unwrap().clone();
    let last = instances.last().unwrap().as_str().unwrap();
    assert_eq!(
        &last[2..],
        commitment,
        "the weight commitment is the last public value"
    );

    let vuri = format!("/v1/models/{model_id}/verify");
    let (s, v) = alice
        .post_json(
            &vuri,
            &json!({ "proof": proof["proof"], "instances": instances }),
            &[],
        )
        .await;
    assert_eq!((s, &v["valid"]), (StatusCode::OK, &json!(true)), "{v}");
    assert_eq!(v["commitments"]["weights"], json!(commitment));
    let mut other = instances.clone();
    *other.last_mut().unwrap() = json!(format!("0x{}", "0".repeat(63) + "1"));
    let (s, v) = alice
        .post_json(
            &vuri,
            &json!({ "proof": proof["proof"], "instances": other }),
            &[],
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "other_weights"),
        "{v}"
    );

    // `like`: calibrated on inputs eight times smaller, the upload alone lays out another
    // circuit (narrower activations); with `like` it reproduces the sibling's exactly.
    let architecture = model["architecture_id"].as_str().unwrap().to_string();
    assert_eq!(architecture.len(), 64, "{model}");
    let mut small = input_json.clone();
    for row in small["input_data"].as_array_mut().unwrap() {
        for x in row.as_array_mut().unwrap() {
            *x = json!(x.as_f64().unwrap() / 8.0);
        }
    }
    let small = serde_json::to_vec(&small).unwrap();
    let like = json!({ "like": model_id }).to_string();
    let alone = alice
        .ready(&[
            ("model", &onnx),
            ("calibration", &small),
            ("settings", br#"{"weights": "hashed"}"#),
        ])
        .await;
    let bundle = |id: Value| {
        let alice = &alice;
        async move { bundle_files(alice, id.as_str().unwrap()).await }
    };
    let (sibling_settings, sibling_vk) = bundle(model["id"].clone()).await;
    let (alone_settings, _) = bundle(alone["id"].clone()).await;
    assert_ne!(
        alone_settings["act_bits"], sibling_settings["act_bits"],
        "the smaller calibration alone narrows the activations"
    );
    let liked = alice
        .ready(&[
            ("model", &onnx),
            ("calibration", &small),
            ("settings", like.as_bytes()),
        ])
        .await;
    assert_eq!(liked["weights"], "hashed", "{liked}");
    assert_eq!(liked["architecture_id"], json!(architecture), "{liked}");
    assert_eq!(liked["weight_commitment"], json!(commitment), "{liked}");
    assert_eq!(
        liked["model_id"], model["model_id"],
        "same weights, same model"
    );
    let (liked_settings, liked_vk) = bundle(liked["id"].clone()).await;
    assert_eq!(liked_settings["act_bits"], sibling_settings["act_bits"]);
    assert!(liked_vk == sibling_vk, "one verifying key, byte for byte");

    // Refused: another architecture (the job fails, naming it), a fixed-weights sibling,
    // `like` with fixed weights, another tenant's model.
    let other =
        std::fs::read(zkinfer_model::corpus::example_dir("2l_relu_fc").join("network.onnx"))
            .unwrap();
    let other_input =
        std::fs::read(zkinfer_model::corpus::example_dir("2l_relu_fc").join("input.json")).unwrap();
    let (s, v) = alice
        .upload(&[
            ("model", &other),
            ("calibration", &other_input),
            ("settings", like.as_bytes()),
        ])
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let failed = alice
        .wait(&format!("/v1/models/{}", v["id"].as_str().unwrap()))
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "not_like", "{failed}");
    let fixed = alice
        .ready(&[("model", &onnx), ("calibration", &input)])
        .await;
    let fixed_like = json!({ "like": fixed["id"] }).to_string();
    let contradicting = json!({ "like": model_id, "weights": "fixed" }).to_string();
    for settings in [&fixed_like, &contradicting] {
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
            "{settings}: {v}"
        );
    }
    let (s, v) = bob
        .upload(&[
            ("model", &onnx),
            ("calibration", &input),
            ("settings", like.as_bytes()),
        ])
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::NOT_FOUND, "model_not_found"),
        "{v}"
    );
    stop.send(Stop::Drain).unwrap();
    worker.await.unwrap();
}

/// A ready model's `settings.json` and `vk.bin`, from its bundle.
async fn bundle_files(client: &Client, id: &str) -> (Value, Vec<u8>) {
    let (s, tarball) = client
        .send_raw(
            "GET",
            &format!("/v1/models/{id}/bundle"),
            Some(&client.key),
            axum::body::Body::empty(),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (mut settings, mut vk) = (Value::Null, Vec::new());
    for entry in tar::Archive::new(tarball.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().file_name().unwrap().to_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        match name.to_str().unwrap() {
            "settings.json" => settings = serde_json::from_slice(&bytes).unwrap(),
            "vk.bin" => vk = bytes,
            _ => {}
        }
    }
    (settings, vk)
}
