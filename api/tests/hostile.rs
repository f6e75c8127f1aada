//! A hostile tenant against the upload route and the workers, on SQLite and on PostgreSQL:
//! settings that lift the operator's limits are refused naming the setting; a constant bomb
//! is refused naming its node before anything that size exists; calibration that does not
//! fit the model is refused at upload (it used to panic in the worker); uploads count against
//! the job quota, and 429s say when to retry. A model that needs more memory than a worker has
//! free waits for a worker it fits; one that needs more than any worker has fails
//! `model_too_large` with the figure, before key generation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{error_code, multipart, Client, BOUNDARY};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;
use zkinfer_api::ceilings::Ceilings;
use zkinfer_api::http::{router, AppState, Limits};
use zkinfer_api::store::Store;
use zkinfer_api::worker::{self, Capacity, KeyCache, Stop, WorkerConfig};
use zkinfer_api::{fleet, tenants, Db};

/// An upload (model, calibration, settings), the code it is refused with, and a word of the
/// message.
type Refusal<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a str, &'a str);

fn mlp() -> (Vec<u8>, Vec<u8>) {
    let example = zkinfer_model::corpus::example_dir("1l_mlp");
    (
        std::fs::read(example.join("network.onnx")).unwrap(),
        std::fs::read(example.join("input.json")).unwrap(),
    )
}

async fn jobs_of(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM jobs")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_lift_limits_bomb_the_parser_or_misfit_are_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (onnx, input) = mlp();
    for (n, url) in common::databases(tmp.path()).await.into_iter().enumerate() {
        let data_dir = tmp.path().join(format!("data{n}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let db = Db::connect(&url).await.unwrap();
        let store = Store::open(None, &data_dir).unwrap();
        let state = AppState {
            ceilings: Ceilings {
                max_k: 20,
                max_prove_memory: 4 << 30,
                ..Ceilings::default()
            },
            ..AppState::new(
                db.clone(),
                store.clone(),
                data_dir.clone(),
                Limits::default(),
            )
        };
        let mallory = Client {
            app: router(state.clone()),
            key: tenants::create_key(&db, "mallory").await.unwrap().key,
        };
        // Settings above the operator's ceilings: refused, naming each.
        let (bomb, tiny_input) = (
            zkinfer_model::corpus::constant_bomb(1 << 14),
            br#"{"input_data": [[1, 2, 3, 4]]}"#.as_slice(),
        );
        // A 2^14 × 2^14 ConstantOfShape in a file of a couple of hundred bytes.
        assert!(bomb.len() < 300, "{}", bomb.len());
        let cases: [Refusal; 6] = [
            (
                &onnx,
                &input,
                br#"{"logrows": 24}"#,
                "invalid_settings",
                "logrows 24",
            ),
            (
                &onnx,
                &input,
                br#"{"max_prove_memory_gib": 1e6}"#,
                "invalid_settings",
                "max_prove_memory_gib",
            ),
            (
                &onnx,
                &input,
                br#"{"max_prove_memory_gib": -1}"#,
                "invalid_settings",
                "max_prove_memory_gib",
            ),
            (
                &onnx,
                &input,
                br#"{"max_proof_bytes": 100000000}"#,
                "invalid_settings",
                "max_proof_bytes",
            ),
            (&bomb, tiny_input, b"{}", "model_too_large", "\"bomb\""),
            // Calibration of the wrong length (this made compile panic in the worker).
            (
                &onnx,
                br#"{"input_data": [[0.5, 0.25]]}"#,
                b"{}",
                "invalid_input",
                "values",
            ),
        ];
        for (model, calibration, settings, code, named) in cases {
            let (s, v) = mallory
                .upload(&[
                    ("model", model),
                    ("calibration", calibration),
                    ("settings", settings),
                ])
                .await;
            assert_eq!((s, error_code(&v)), (StatusCode::BAD_REQUEST, code), "{v}");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(message.contains(named), "{message}");
        }
        // A model's webhook is a callback like any: a private target is refused at upload.
        for hook in [
            &b"http://127.0.0.1:9/hook"[..],
            b"http://[2002:7f00:1::]/hook",
            b"ftp://x",
        ] {
            let (s, v) = mallory
                .upload(&[
                    ("model", &onnx),
                    ("calibration", &input),
                    ("callback_url", hook),
                ])
                .await;
            assert_eq!(
                (s, error_code(&v)),
                (StatusCode::UNPROCESSABLE_ENTITY, "callback_refused"),
                "{v}"
            );
        }
        assert_eq!(jobs_of(&db).await, 0, "nothing refused left a job");

        // Uploads count against the job quota; the 429 says when to retry.
        let strict = router(AppState {
            limits: Limits {
                max_queued_jobs: 1,
                ..Limits::default()
            },
            ..state.clone()
        });
        let mut last = (StatusCode::OK, None, Value::Null);
        for _ in 0..2 {
            let body = multipart(&[("model", &onnx), ("calibration", &input)]);
            let req = Request::builder()
                .method("POST")
                .uri("/v1/models")
                .header("authorization", format!("Bearer {}", mallory.key))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from(body))
                .unwrap();
            let resp = strict.clone().oneshot(req).await.unwrap();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|h| h.to_str().unwrap().to_string());
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            last = (status, retry, serde_json::from_slice(&bytes).unwrap());
        }
        assert_eq!(last.0, StatusCode::TOO_MANY_REQUESTS, "{}", last.2);
        assert_eq!(error_code(&last.2), "too_many_jobs");
        assert!(last.1.is_some_and(|r| r.parse::<u64>().unwrap() > 0));
        assert_eq!(jobs_of(&db).await, 1, "one upload taken, one refused");
    }
}

/// A worker whose loops share `memory` bytes, with the ceilings of `ceilings`.
fn worker_with(
    db: &Db,
    store: &Store,
    dir: &std::path::Path,
    name: &str,
    memory: u64,
) -> (watch::Sender<Stop>, tokio::task::JoinHandle<()>) {
    worker_timed(db, store, dir, name, memory, worker::JOB_TIMEOUT)
}

/// [`worker_with`], its jobs stopped after `timeout`.
fn worker_timed(
    db: &Db,
    store: &Store,
    dir: &std::path::Path,
    name: &str,
    memory: u64,
    timeout: Duration,
) -> (watch::Sender<Stop>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(Stop::Run);
    let cfg = WorkerConfig {
        name: name.into(),
        data_dir: dir.join(name),
        srs: None,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(50),
        keys: Arc::new(KeyCache::new(1 << 30)),
        ceilings: Ceilings {
            max_prove_memory: memory,
            ..Ceilings::default()
        },
        capacity: Arc::new(Capacity::new(memory)),
        child: None,
        job_timeout: timeout,
        // Jobs no live worker can hold fail at the next heartbeat.
        unplaceable_grace: Duration::ZERO,
    };
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    let handle = tokio::spawn(worker::run(db.clone(), store.clone(), cfg, stopped));
    (stop, handle)
}

/// Uploads a model as `client` and waits for its setup to end; the model's JSON.
async fn set_up(client: &Client, onnx: &[u8], input: &[u8]) -> Value {
    let (s, v) = client
        .upload(&[("model", onnx), ("calibration", input)])
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    client
        .wait(&format!("/v1/models/{}", v["id"].as_str().unwrap()))
        .await
}

async fn job_row(db: &Db) -> (String, i64, Option<i64>) {
    let row: (String, i64, Option<i64>) = sqlx::query_as(
        "SELECT status, CAST(attempts AS BIGINT), memory_bytes FROM jobs WHERE kind = 'setup'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_waits_for_a_worker_it_fits_and_fails_only_past_the_largest() {
    let tmp = tempfile::tempdir().unwrap();
    let (onnx, input) = mlp();
    for (n, url) in common::databases(tmp.path()).await.into_iter().enumerate() {
        let data_dir = tmp.path().join(format!("data{n}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let db = Db::connect(&url).await.unwrap();
        let store = Store::open(None, &data_dir).unwrap();
        let alice = Client {
            app: router(AppState::new(
                db.clone(),
                store.clone(),
                data_dir.clone(),
                Limits::default(),
            )),
            key: tenants::create_key(&db, "alice").await.unwrap().key,
        };
        // 1l_mlp's circuit is estimated at ~60 MiB, its compile at ~32 MiB. A worker with
        // 40 MiB, and a larger one seen in the fleet: the small one compiles it, finds its keys
        // do not fit, and gives it back for a worker they fit, without using an attempt.
        fleet::heartbeat(&db, "big-elsewhere", 1 << 30)
            .await
            .unwrap();
        let (stop_small, small) = worker_with(&db, &store, &data_dir, "small", 40 << 20);
        let (s, v) = alice
            .upload(&[("model", &onnx), ("calibration", &input)])
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let model_uri = format!("/v1/models/{}", v["id"].as_str().unwrap());
        let mut deferred = None;
        for _ in 0..600 {
            let row = job_row(&db).await;
            // Queued with its compile's estimate, then deferred with its keys'.
            if row.2.is_some_and(|m| m > 40 << 20) {
                deferred = Some(row);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, attempts, memory) = deferred.expect("the small worker defers the job");
        assert_eq!((status.as_str(), attempts), ("queued", 0));
        let memory = memory.unwrap();
        assert!(memory > 40 << 20 && memory < 1 << 30, "{memory}");
        // It stays queued while only the small worker runs.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(job_row(&db).await.0, "queued");
        let (_, v) = alice.get(&model_uri).await;
        assert_eq!(v["status"], "queued", "{v}");
        // A worker it fits takes it.
        let (stop_big, big) = worker_with(&db, &store, &data_dir, "big", 1 << 30);
        let model = alice.wait(&model_uri).await;
        assert_eq!(model["status"], "ready", "{model}");
        assert_eq!(
            model["prove_memory_bytes"].as_i64(),
            Some(memory),
            "{model}"
        );
        for (stop, h) in [(stop_small, small), (stop_big, big)] {
            stop.send(Stop::Drain).unwrap();
            h.await.unwrap();
        }

        // Past the largest worker: failed, with the figure, and never set up.
        sqlx::query("DELETE FROM workers")
            .execute(&db.pool)
            .await
            .unwrap();
        let (stop_small, small) = worker_with(&db, &store, &data_dir, "small2", 40 << 20);
        let model = set_up(&alice, &onnx, &input).await;
        assert_eq!(model["status"], "failed", "{model}");
        assert_eq!(error_code(&model), "model_too_large", "{model}");
        let message = model["error"]["message"].as_str().unwrap();
        assert!(message.contains("GiB"), "{message}");
        stop_small.send(Stop::Drain).unwrap();
        small.await.unwrap();

        // A job that runs past the service's limit is stopped and fails timed_out; the worker
        // goes on to the next.
        let (stop_slow, slow) = worker_timed(
            &db,
            &store,
            &data_dir,
            "hasty",
            1 << 30,
            Duration::from_millis(1),
        );
        let model = set_up(&alice, &onnx, &input).await;
        assert_eq!(
            (model["status"].as_str(), error_code(&model)),
            (Some("failed"), "timed_out"),
            "{model}"
        );
        stop_slow.send(Stop::Drain).unwrap();
        slow.await.unwrap();

        // A model no live worker can hold fails at once, with the figures, instead of waiting
        // for a worker that left: its compile alone needs more than the only worker allows.
        sqlx::query("DELETE FROM workers")
            .execute(&db.pool)
            .await
            .unwrap();
        let (stop_tiny, tiny) = worker_with(&db, &store, &data_dir, "tiny", 8 << 20);
        let model = set_up(&alice, &onnx, &input).await;
        assert_eq!(error_code(&model), "model_too_large", "{model}");
        let message = model["error"]["message"].as_str().unwrap();
        assert!(message.contains(&(8u64 << 20).to_string()), "{message}");
        stop_tiny.send(Stop::Drain).unwrap();
        tiny.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_key_posted_to_a_missing_model_is_refused_before_its_body_is_read() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    for (n, url) in common::databases(tmp.path()).await.into_iter().enumerate() {
        let data_dir = tmp.path().join(format!("data{n}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let db = Db::connect(&url).await.unwrap();
        let store = Store::open(None, &data_dir).unwrap();
        let app = router(AppState::new(
            db.clone(),
            store,
            data_dir,
            Limits::default(),
        ));
        let key = tenants::create_key(&db, "mallory").await.unwrap().key;
        // 400 MB, made only as it is read: 1 MiB per chunk, counted.
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let chunks = futures_util::stream::iter(0..400).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![0u8; 1 << 20]))
        });
        let req = Request::builder()
            .method("POST")
            .uri("/v1/models/md_missing/fhe/keys")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from_stream(chunks))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(error_code(&body), "model_not_found", "{body}");
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            0,
            "no byte of the body was read"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_has_a_request_id_and_every_error_is_json() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite:{}", tmp.path().join("z.db").display()))
        .await
        .unwrap();
    let store = Store::open(None, tmp.path()).unwrap();
    let app = router(AppState::new(
        db.clone(),
        store,
        tmp.path().join("server"),
        Limits {
            max_upload_bytes: 1024,
            ..Limits::default()
        },
    ));
    let key = tenants::create_key(&db, "alice").await.unwrap().key;
    let send = |method: &str, uri: &str, auth: Option<String>, body: Vec<u8>, id: Option<&str>| {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        let req = req
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let rid = resp
                .headers()
                .get("x-request-id")
                .map(|h| h.to_str().unwrap().to_string());
            let ctype = resp
                .headers()
                .get("content-type")
                .map(|h| h.to_str().unwrap().to_string());
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                rid,
                ctype,
                serde_json::from_slice::<Value>(&bytes).ok(),
            )
        }
    };
    let bearer = format!("Bearer {key}");
    // A request id: the client's, or a new one.
    let (s, rid, _, _) = send(
        "GET",
        "/v1/models",
        Some(bearer.clone()),
        vec![],
        Some("abc-1"),
    )
    .await;
    assert_eq!((s, rid.as_deref()), (StatusCode::OK, Some("abc-1")));
    let (_, rid, _, _) = send("GET", "/healthz", None, vec![], None).await;
    assert!(rid.unwrap().starts_with("rq_"));
    // The scheme is case-insensitive.
    let (s, _, _, v) = send(
        "GET",
        "/v1/models",
        Some(format!("bearer {key}")),
        vec![],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v:?}");
    // Metrics are the operator's: with no token configured the public bind has no such
    // route, for tenants as for anyone; the operator's own bind serves them.
    for auth in [None, Some(bearer.clone())] {
        let (s, _, _, v) = send("GET", "/metrics", auth, vec![], None).await;
        assert_eq!(
            (s, error_code(&v.unwrap())),
            (StatusCode::NOT_FOUND, "no_such_route")
        );
    }
    let operator = zkinfer_api::http::metrics_router(AppState::new(
        db.clone(),
        Store::open(None, tmp.path()).unwrap(),
        tmp.path().join("server"),
        Limits::default(),
    ));
    let resp = operator
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // axum's own errors, as the API's JSON.
    let cases = [
        (
            "PUT",
            "/v1/models",
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "POST",
            "/v1/models/md_x/verify",
            vec![b'x'; 4096],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "GET",
            "/v1/models?limit=abc",
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let (s, rid, ctype, v) = send(method, uri, Some(bearer.clone()), body, None).await;
        let v = v.unwrap_or_else(|| panic!("{method} {uri}: not JSON"));
        assert_eq!((s, error_code(&v)), (status, code), "{method} {uri}: {v}");
        assert!(ctype.unwrap().starts_with("application/json"));
        assert!(rid.is_some());
    }
    // Models a page at a time.
    for _ in 0..3 {
        zkinfer_api::models::create(
            &db,
            &tenants::authenticate(&db, &key).await.unwrap().unwrap(),
        )
        .await
        .unwrap();
    }
    let (_, _, _, first) = send(
        "GET",
        "/v1/models?limit=2",
        Some(bearer.clone()),
        vec![],
        None,
    )
    .await;
    let first = first.unwrap();
    assert_eq!(first["models"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, _, _, rest) = send(
        "GET",
        &format!("/v1/models?limit=2&cursor={cursor}"),
        Some(bearer.clone()),
        vec![],
        None,
    )
    .await;
    let rest = rest.unwrap();
    assert_eq!(rest["models"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
}
