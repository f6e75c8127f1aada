//! Callbacks on SQLite and on PostgreSQL: a job's end is POSTed to its callback URL with an
//! HMAC-SHA256 signature over a timestamp and the body; a failed delivery is retried with
//! backoff and every attempt recorded; attempts run out; loopback targets are refused at
//! delivery unless private targets are allowed; a released job is not an end (no callback);
//! a tenant's slow endpoint does not hold up another tenant's callbacks.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use zkinfer_api::callbacks::{self, CallbackPolicy};
use zkinfer_api::queue::{self, Enqueued, JobKind, NewJob, Outcome};
use zkinfer_api::{models, tenants, Db};

/// What the receiver saw: (signature header, attempt header, body) per request.
type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A receiver on 127.0.0.1 that answers `statuses` in turn (then 200); its URL and log.
async fn receiver(statuses: Vec<u16>) -> (String, Seen) {
    let seen: Seen = Default::default();
    let log = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            let statuses = statuses.clone();
            async move {
                let mut l = log.lock().unwrap();
                let h = |n: &str| {
                    headers
                        .get(n)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                };
                l.push((
                    h("x-zkinfer-signature"),
                    h("x-zkinfer-attempt"),
                    body.to_vec(),
                ));
                let code = statuses.get(l.len() - 1).copied().unwrap_or(200);
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

fn policy(allow_private: bool, max_attempts: i64) -> CallbackPolicy {
    CallbackPolicy {
        allow_private,
        max_attempts,
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        timeout: Duration::from_secs(5),
        ..CallbackPolicy::default()
    }
}

/// Enqueues a proof job with `url` as its callback, claims it as `w`, and returns its id.
async fn running_job(db: &Db, tenant: &str, model: &str, url: &str) -> String {
    let payload = json!({ "input_data": [[1.0]] });
    let job = NewJob {
        tenant_id: tenant,
        model_id: model,
        kind: JobKind::Prove,
        payload: &payload,
        max_attempts: 3,
        idempotency: None,
        callback_url: Some(url),
        memory_bytes: None,
    };
    let Enqueued::New(id) = queue::enqueue(db, &job).await.unwrap() else {
        panic!("a new job")
    };
    let claimed = queue::claim(db, "w", 60_000, i64::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);
    id
}

/// Runs deliveries until none is due for `quiet`.
async fn deliver_until_quiet(db: &Db, p: &CallbackPolicy, quiet: Duration) {
    let client = callbacks::client(p).unwrap();
    let mut idle = Duration::ZERO;
    while idle < quiet {
        if callbacks::deliver_one(db, &client, "d", p).await.unwrap() {
            idle = Duration::ZERO;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            idle += Duration::from_millis(20);
        }
    }
}

async fn callback_of(db: &Db, tenant: &str, id: &str) -> Value {
    let job = queue::get(db, tenant, id).await.unwrap().unwrap();
    let (url, state) = job.callback.clone().expect("a callback");
    callbacks::describe(db, id, &url, state.as_deref())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_signed_retried_recorded_and_refused_for_private_targets() {
    // A proxy in the environment is not used: it would resolve host names itself, past the
    // public-only resolver. (Port 9 refuses connections: through it, nothing is delivered.)
    // Set before any thread of this test binary reads the environment.
    std::env::set_var("HTTP_PROXY", "http://127.0.0.1:9");
    std::env::set_var("http_proxy", "http://127.0.0.1:9");
    let tmp = tempfile::tempdir().unwrap();
    for url in common::databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let key = tenants::create_key(&db, "alice").await.unwrap();
        let tenant = key.tenant_id.clone();
        let model = models::create(&db, &tenant).await.unwrap();

        // Nothing is due while the job runs.
        let (hook, seen) = receiver(vec![500]).await;
        let id = running_job(&db, &tenant, &model, &hook).await;
        let p = policy(true, 5);
        deliver_until_quiet(&db, &p, Duration::from_millis(300)).await;
        assert!(
            seen.lock().unwrap().is_empty(),
            "no callback before the end"
        );

        // The end: the first delivery gets a 500, the retry a 200.
        let result =
            json!({ "proof_file": { "outputs": [[0.5]], "proof": "0x00" }, "prove_ms": 7 });
        assert!(queue::finish(&db, &id, "w", &Outcome::Succeeded(result))
            .await
            .unwrap());
        deliver_until_quiet(&db, &p, Duration::from_millis(600)).await;
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 2, "one failure, one success");
        let job = queue::get(&db, &tenant, &id).await.unwrap().unwrap();
        for (n, (sig, attempt, body)) in requests.iter().enumerate() {
            assert_eq!(attempt, &(n + 1).to_string());
            let now = zkinfer_api::db::now_ms() / 1000;
            assert!(
                callbacks::verify_signature(&key.callback_secret, sig, body, now),
                "{sig}"
            );
            // Signed at the time of sending: the same delivery later is a replay.
            let later = now + callbacks::REPLAY_WINDOW_SECS + 5;
            assert!(!callbacks::verify_signature(
                &key.callback_secret,
                sig,
                body,
                later
            ));
            let v: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(
                v,
                job.to_json(),
                "the body is the job as GET /v1/jobs shows it"
            );
            assert_eq!(v["status"], "succeeded");
            assert_eq!(v["outputs"], json!([[0.5]]));
        }
        // A signature with another secret or over another body does not match.
        let (sig, _, body) = &requests[1];
        let now = zkinfer_api::db::now_ms() / 1000;
        assert!(!callbacks::verify_signature(
            "another secret",
            sig,
            body,
            now
        ));
        let mut altered = body.clone();
        altered[0] ^= 1;
        assert!(!callbacks::verify_signature(
            &key.callback_secret,
            sig,
            &altered,
            now
        ));
        let cb = callback_of(&db, &tenant, &id).await;
        assert_eq!(cb["state"], "delivered");
        assert_eq!(cb["attempts"][0]["status_code"], 500);
        assert_eq!(
            cb["attempts"][0]["error"],
            "answered 500 Internal Server Error"
        );
        assert_eq!(cb["attempts"][1]["status_code"], 200);
        assert!(cb["attempts"][1]["error"].is_null());
        assert_eq!(cb["attempts"].as_array().unwrap().len(), 2);

        // Attempts run out: always 503, three attempts, then failed and no more requests.
        let (hook, seen) = receiver(vec![503; 10]).await;
        let id = running_job(&db, &tenant, &model, &hook).await;
        let failure = Outcome::Failed("invalid_input".into(), "NaN".into());
        assert!(queue::finish(&db, &id, "w", &failure).await.unwrap());
        let p3 = policy(true, 3);
        deliver_until_quiet(&db, &p3, Duration::from_millis(900)).await;
        assert_eq!(seen.lock().unwrap().len(), 3);
        let body: Value = serde_json::from_slice(&seen.lock().unwrap()[0].2).unwrap();
        assert_eq!(body["error"]["code"], "invalid_input");
        let cb = callback_of(&db, &tenant, &id).await;
        assert_eq!(cb["state"], "failed");
        assert_eq!(cb["attempts"].as_array().unwrap().len(), 3);

        // A loopback target is never contacted without --allow-private-callbacks.
        let (hook, seen) = receiver(vec![]).await;
        let id = running_job(&db, &tenant, &model, &hook).await;
        assert!(queue::finish(&db, &id, "w", &Outcome::Succeeded(json!({})))
            .await
            .unwrap());
        deliver_until_quiet(&db, &policy(false, 2), Duration::from_millis(600)).await;
        assert!(seen.lock().unwrap().is_empty(), "loopback never contacted");
        let cb = callback_of(&db, &tenant, &id).await;
        assert_eq!(cb["state"], "failed");
        assert_eq!(
            cb["attempts"][0]["error"],
            "127.0.0.1 is not a public address"
        );
        // A name that resolves to loopback is refused at connection time.
        let by_name = hook.replace("127.0.0.1", "localhost");
        let id = running_job(&db, &tenant, &model, &by_name).await;
        assert!(queue::finish(&db, &id, "w", &Outcome::Succeeded(json!({})))
            .await
            .unwrap());
        deliver_until_quiet(&db, &policy(false, 1), Duration::from_millis(300)).await;
        assert!(seen.lock().unwrap().is_empty(), "localhost never contacted");
        let cb = callback_of(&db, &tenant, &id).await;
        let err = cb["attempts"][0]["error"].as_str().unwrap();
        assert!(err.contains("resolves to no public address"), "{err}");

        // A cancelled job ends too; a released one does not.
        let (hook, seen) = receiver(vec![]).await;
        let id = running_job(&db, &tenant, &model, &hook).await;
        assert!(queue::release(&db, &id, "w").await.unwrap());
        let job = queue::get(&db, &tenant, &id).await.unwrap().unwrap();
        assert_eq!((job.status.as_str(), job.attempts), ("queued", 0));
        deliver_until_quiet(&db, &p, Duration::from_millis(300)).await;
        assert!(
            seen.lock().unwrap().is_empty(),
            "a released job has not ended"
        );
        assert!(queue::cancel(&db, &tenant, &id).await.unwrap());
        deliver_until_quiet(&db, &p, Duration::from_millis(300)).await;
        let body: Value = serde_json::from_slice(&seen.lock().unwrap()[0].2).unwrap();
        assert_eq!(body["status"], "cancelled");
    }
}

/// A receiver that takes `delay` to answer; its URL, the events it was sent (with when each
/// arrived, from `t0`) and the most requests it held at once.
async fn slow_receiver(
    delay: Duration,
    t0: std::time::Instant,
) -> (
    String,
    Arc<Mutex<Vec<(String, Duration)>>>,
    Arc<Mutex<(usize, usize)>>,
) {
    let events: Arc<Mutex<Vec<(String, Duration)>>> = Default::default();
    let load: Arc<Mutex<(usize, usize)>> = Default::default();
    let (e, l) = (events.clone(), load.clone());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let (e, l) = (e.clone(), l.clone());
            async move {
                {
                    let mut l = l.lock().unwrap();
                    l.0 += 1;
                    l.1 = l.1.max(l.0);
                }
                tokio::time::sleep(delay).await;
                let event = headers
                    .get("x-zkinfer-event")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                e.lock().unwrap().push((event, t0.elapsed()));
                l.lock().unwrap().0 -= 1;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), events, load)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_endpoint_delays_only_its_own_tenant_and_a_model_setup_is_its_webhook() {
    let tmp = tempfile::tempdir().unwrap();
    for url in common::databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let t0 = std::time::Instant::now();
        let slow = Duration::from_secs(2);
        let (a_hook, a_events, a_load) = slow_receiver(slow, t0).await;
        let (b_hook, b_events, _) = slow_receiver(Duration::ZERO, t0).await;
        let a = tenants::create_key(&db, "a").await.unwrap().tenant_id;
        let b = tenants::create_key(&db, "b").await.unwrap().tenant_id;
        let a_model = models::create(&db, &a).await.unwrap();
        // A's six jobs end first, then B's model setup (its webhook), a proof and a failure.
        for _ in 0..6 {
            let id = running_job(&db, &a, &a_model, &a_hook).await;
            assert!(queue::finish(&db, &id, "w", &Outcome::Succeeded(json!({})))
                .await
                .unwrap());
        }
        let b_model = models::create_with_setup(
            &db,
            &b,
            &json!({}),
            &models::Setup {
                max_attempts: 1,
                callback_url: Some(&b_hook),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let setup = queue::claim(&db, "w", 60_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        let summary = json!({ "summary": { "model_id": "ab".repeat(32) }, "artifacts": {} });
        assert!(queue::finish_with(
            &db,
            &setup.id,
            "w",
            &Outcome::Succeeded(summary),
            None,
            Some(&b_model)
        )
        .await
        .unwrap());
        let id = running_job(&db, &b, &b_model, &b_hook).await;
        assert!(queue::finish(&db, &id, "w", &Outcome::Succeeded(json!({})))
            .await
            .unwrap());
        let id = running_job(&db, &b, &b_model, &b_hook).await;
        let failed = Outcome::Failed("invalid_input".into(), "NaN".into());
        assert!(queue::finish(&db, &id, "w", &failed).await.unwrap());

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let p = CallbackPolicy {
            concurrency: 4,
            per_tenant: 2,
            ..policy(true, 3)
        };
        let started = t0.elapsed();
        let dispatcher = tokio::spawn(callbacks::run(db.clone(), "d".into(), p, stopped));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while a_events.lock().unwrap().len() < 6 || b_events.lock().unwrap().len() < 3 {
            assert!(std::time::Instant::now() < deadline, "deliveries stalled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).unwrap();
        dispatcher.await.unwrap();

        let b_seen = b_events.lock().unwrap().clone();
        let mut events: Vec<&str> = b_seen.iter().map(|(e, _)| e.as_str()).collect();
        events.sort();
        assert_eq!(events, ["job.failed", "job.succeeded", "model.ready"]);
        // B's three went out beside A's first two, not after A's six (3 rounds of 2 s).
        let b_last = b_seen.iter().map(|(_, at)| *at).max().unwrap() - started;
        assert!(b_last < slow, "B's callbacks waited {b_last:?} behind A's");
        let a_last = a_events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, at)| *at)
            .max()
            .unwrap()
            - started;
        assert!(a_last >= slow * 3, "A's six at two at a time: {a_last:?}");
        assert_eq!(
            a_load.lock().unwrap().1,
            2,
            "A never had more than two in flight"
        );
        assert!(a_events
            .lock()
            .unwrap()
            .iter()
            .all(|(e, _)| e == "job.succeeded"));
    }
}
