//! Many machines, simulated: three `zkinfer worker` processes with their own data dirs share
//! one PostgreSQL queue and one `file://` artifact store. 200 proof jobs are each done exactly
//! once; a worker killed with SIGKILL in the middle of a proof loses its job to another after
//! the lease, which completes it once, and its callback is delivered once, signed. A worker
//! stopped with two SIGTERMs mid-proof releases its job to the queue, and another completes
//! it. A worker on an S3 store (moto's server, `scripts/s3.sh`) sets up and proves a model.
//! Two workers share the segments of one proof of a segmented model, and one killed while
//! holding a segment loses only that segment, to the other.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{example, p};
use serde_json::json;
use zkinfer_api::queue::{self, Enqueued, JobKind, NewJob};
use zkinfer_api::store::Store;
use zkinfer_api::worker::Upload;
use zkinfer_api::{models, tenants, Db};

const LEASE_SECS: &str = "3";

/// A fresh PostgreSQL database (scripts/test.sh starts the server).
async fn fresh_postgres() -> String {
    let scratch = std::env::var("ZKINFER_TEST_POSTGRES")
        .expect("ZKINFER_TEST_POSTGRES is not set: run scripts/test.sh");
    let name = format!("zkinfer_t_{}", hex::encode(rand::random::<[u8; 8]>()));
    // A plain connection: the scratch database is never migrated (see api/tests/common).
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&scratch).await.unwrap();
    // The name is ours: 16 hex digits after a fixed prefix.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    format!("{}/{name}", scratch.rsplit_once('/').unwrap().0)
}

/// Starts `zkinfer worker`; returns the process and its worker's name.
fn start_worker(url: &str, store: &str, data_dir: &std::path::Path) -> (Child, String) {
    start_worker_with(url, store, data_dir, &[])
}

/// Starts `zkinfer worker` with these environment variables.
fn start_worker_with(
    url: &str,
    store: &str,
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkinfer"))
        .args([
            "worker",
            "--database-url",
            url,
            "--store",
            store,
            "--data-dir",
            p(data_dir),
        ])
        .args(["--workers", "1", "--lease-secs", LEASE_SECS])
        .arg("--allow-private-callbacks")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let name = line
        .strip_prefix("worker ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    (child, name)
}

/// A proof job of `model` on `payload`, three attempts, no callback.
fn proof_job<'a>(tenant: &'a str, model: &'a str, payload: &'a serde_json::Value) -> NewJob<'a> {
    NewJob {
        tenant_id: tenant,
        model_id: model,
        kind: JobKind::Prove,
        payload,
        max_attempts: 3,
        idempotency: None,
        callback_url: None,
        memory_bytes: None,
    }
}

async fn upload(db: &Db, store: &Store, tenant: &str, name: &str) -> String {
    upload_with(db, store, tenant, name, Default::default()).await
}

/// Uploads example `name` with compile `options`; its model's id.
async fn upload_with(
    db: &Db,
    store: &Store,
    tenant: &str,
    name: &str,
    options: zkinfer_prover::options::ModelOptions,
) -> String {
    let e = example(name);
    let up = Upload {
        onnx: store
            .put(std::fs::read(e.join("network.onnx")).unwrap())
            .await
            .unwrap(),
        calibration: store
            .put(std::fs::read(e.join("input.json")).unwrap())
            .await
            .unwrap(),
        options,
        // The queue is what these tests are about: no FHE program.
        fhe: None,
        like: None,
    };
    models::create_with_setup(
        db,
        tenant,
        &serde_json::to_value(up).unwrap(),
        &models::Setup {
            max_attempts: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !done().await {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.unwrap()
}

/// Waits for job `id` to succeed; its attempts and the worker that finished it.
async fn completed(db: &Db, id: &str) -> (i64, String) {
    wait_until("the job to succeed", Duration::from_secs(120), || async {
        let s: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        s == "succeeded"
    })
    .await;
    sqlx::query_as("SELECT CAST(attempts AS BIGINT), worker FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// The worker process holding job `id` once it runs, taken out of `workers`.
async fn holder_once_running(
    db: &Db,
    id: &str,
    workers: &mut Vec<(Child, String)>,
) -> (Child, String) {
    let t = Instant::now();
    loop {
        let (status, worker): (String, Option<String>) =
            sqlx::query_as("SELECT status, worker FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if status == "running" {
            let holder = worker.unwrap();
            let i = workers
                .iter()
                .position(|(_, n)| *n == holder)
                .expect("a worker of ours");
            return workers.remove(i);
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the slow job did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Callback deliveries seen: (signature, body).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A callback receiver on 127.0.0.1: its URL and what it saw.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    let sig = headers
                        .get("x-zkinfer-signature")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    log.lock().unwrap().push((sig, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_share_one_queue_and_survive_a_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let url = fresh_postgres().await;
    let store_url = format!("file://{}", tmp.path().join("bucket").display());
    let db = Db::connect(&url).await.unwrap();
    let store = Store::open(Some(&store_url), tmp.path()).unwrap();
    let key = tenants::create_key(&db, "t").await.unwrap();
    let tenant = key.tenant_id.clone();
    let mut workers: Vec<(Child, String)> = (0..3)
        .map(|i| start_worker(&url, &store_url, &tmp.path().join(format!("machine{i}"))))
        .collect();

    let small = upload(&db, &store, &tenant, "1l_linear").await;
    let slow = upload(&db, &store, &tenant, "lstm").await;
    for m in [&small, &slow] {
        wait_until("setup", Duration::from_secs(240), || async {
            models::status(&db, &tenant, m).await.unwrap().as_deref() == Some("ready")
        })
        .await;
    }

    // 200 jobs of the small model.
    let input: serde_json::Value =
        serde_json::from_slice(&std::fs::read(example("1l_linear").join("input.json")).unwrap())
            .unwrap();
    let payload = json!({ "input_data": input["input_data"] });
    for _ in 0..200 {
        let job = proof_job(&tenant, &small, &payload);
        assert!(matches!(
            queue::enqueue(&db, &job).await.unwrap(),
            Enqueued::New(_)
        ));
    }
    wait_until("200 proofs", Duration::from_secs(300), || async {
        scalar(&db, "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE kind = 'prove' AND status IN ('queued', 'running')").await == 0
    })
    .await;
    assert_eq!(
        scalar(&db, "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE kind = 'prove' AND status = 'succeeded' AND attempts = 1").await,
        200,
        "each job done once, on its first attempt"
    );
    let finishers = scalar(
        &db,
        "SELECT CAST(COUNT(DISTINCT worker) AS BIGINT) FROM jobs WHERE kind = 'prove'",
    )
    .await;
    assert!(finishers >= 2, "the jobs were shared: {finishers} workers");

    // A slow proof; its worker is killed mid-proof.
    let (hook, seen) = receiver().await;
    let payload = json!({ "input_data": serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(example("lstm").join("input.json")).unwrap()).unwrap()["input_data"] });
    let job = NewJob {
        tenant_id: &tenant,
        model_id: &slow,
        kind: JobKind::Prove,
        payload: &payload,
        max_attempts: 3,
        idempotency: None,
        callback_url: Some(&hook),
        memory_bytes: None,
    };
    let Enqueued::New(id) = queue::enqueue(&db, &job).await.unwrap() else {
        panic!()
    };
    let (mut child, holder) = holder_once_running(&db, &id, &mut workers).await;
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let (attempts, finisher) = completed(&db, &id).await;
    assert_eq!(attempts, 2);
    assert_ne!(finisher, holder);
    // Its callback: delivered once, signed with the tenant's secret.
    wait_until("the callback", Duration::from_secs(30), || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deliveries = seen.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 1, "one delivery");
    let (sig, body) = &deliveries[0];
    assert!(zkinfer_api::callbacks::verify_signature(
        &key.callback_secret,
        sig,
        body,
        zkinfer_api::db::now_ms() / 1000
    ));
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["status"].as_str()),
        (Some(id.as_str()), Some("succeeded"))
    );

    // Two SIGTERMs mid-proof: the first drains, the second releases the job to the queue;
    // another worker proves it, and the released attempt is not counted.
    let Enqueued::New(id) = queue::enqueue(
        &db,
        &NewJob {
            callback_url: None,
            memory_bytes: None,
            ..job.clone()
        },
    )
    .await
    .unwrap() else {
        panic!()
    };
    let (mut child, holder) = holder_once_running(&db, &id, &mut workers).await;
    for _ in 0..2 {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(child.wait().unwrap().success(), "a clean stop");
    let (attempts, finisher) = completed(&db, &id).await;
    assert_eq!(attempts, 1, "the released attempt is given back");
    assert_ne!(finisher, holder);

    for (mut child, _) in workers {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(child.wait().unwrap().success(), "graceful stop");
    }
}

/// Waits until a `prove_segment` child of job `parent` runs; the worker process holding
/// it, taken out of `workers`, and the child's id.
async fn segment_holder(
    db: &Db,
    parent: &str,
    workers: &mut Vec<(Child, String)>,
) -> ((Child, String), String) {
    let t = Instant::now();
    loop {
        let running: Option<(String, String)> = sqlx::query_as(
            "SELECT id, worker FROM jobs WHERE parent_id = $1 AND status = 'running' LIMIT 1",
        )
        .bind(parent)
        .fetch_optional(&db.pool)
        .await
        .unwrap();
        if let Some((child, holder)) = running {
            let i = workers
                .iter()
                .position(|(_, n)| *n == holder)
                .expect("a worker of ours");
            return (workers.remove(i), child);
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no segment of the proof started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A segmented model through two `zkinfer worker` processes on one PostgreSQL: its setup and
/// each proof fan out one job per segment, and both workers prove segments of one proof. A
/// worker killed with SIGKILL while it holds a segment loses that segment to the other after
/// the lease; the proof still completes once, and `zkinfer verify` accepts it on the model's
/// stored files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_segments_of_one_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let url = fresh_postgres().await;
    let store_url = format!("file://{}", tmp.path().join("bucket").display());
    let db = Db::connect(&url).await.unwrap();
    let store = Store::open(Some(&store_url), tmp.path()).unwrap();
    let tenant = tenants::create_key(&db, "t").await.unwrap().tenant_id;
    let mut workers: Vec<(Child, String)> = (0..2)
        .map(|i| start_worker(&url, &store_url, &tmp.path().join(format!("machine{i}"))))
        .collect();
    let name = "4l_relu_conv_fc";
    let e = example(name);
    let options = zkinfer_prover::options::ModelOptions {
        segments: Some(4),
        ..Default::default()
    };
    let model = upload_with(&db, &store, &tenant, name, options).await;
    wait_until("setup", Duration::from_secs(300), || async {
        models::status(&db, &tenant, &model)
            .await
            .unwrap()
            .as_deref()
            == Some("ready")
    })
    .await;
    let input: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.join("input.json")).unwrap()).unwrap();
    let payload = json!({ "input_data": input["input_data"] });

    // One proof, four segment jobs, both workers.
    let Enqueued::New(first) = queue::enqueue(&db, &proof_job(&tenant, &model, &payload))
        .await
        .unwrap()
    else {
        panic!()
    };
    completed(&db, &first).await;
    let sharing: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(DISTINCT worker) AS BIGINT) FROM jobs \
         WHERE parent_id = $1 AND kind = 'prove_segment' AND status = 'succeeded'",
    )
    .bind(&first)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(sharing, 2, "both workers proved segments of one proof");

    // A second proof; the holder of one of its segments is killed.
    let Enqueued::New(second) = queue::enqueue(&db, &proof_job(&tenant, &model, &payload))
        .await
        .unwrap()
    else {
        panic!()
    };
    let ((mut child, holder), segment_job) = segment_holder(&db, &second, &mut workers).await;
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    completed(&db, &second).await;
    let (attempts, finisher): (i64, String) =
        sqlx::query_as("SELECT CAST(attempts AS BIGINT), worker FROM jobs WHERE id = $1")
            .bind(&segment_job)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        attempts, 2,
        "the killed worker's segment was taken over once"
    );
    assert_ne!(finisher, holder);
    assert_eq!(
        scalar(&db, "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE kind = 'prove' AND status = 'succeeded'").await,
        2
    );

    // The assembled proof verifies on the model's stored files.
    let row = models::get(&db, &tenant, &model).await.unwrap().unwrap();
    let folder = tmp.path().join("verifier");
    for (file, key) in row.artifacts.unwrap().as_object().unwrap() {
        let path = folder.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, store.get(key.as_str().unwrap()).await.unwrap()).unwrap();
    }
    let result: String = sqlx::query_scalar("SELECT result FROM jobs WHERE id = $1")
        .bind(&second)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let result: serde_json::Value = serde_json::from_str(&result).unwrap();
    let proof = tmp.path().join("proof.json");
    std::fs::write(&proof, result["proof_file"].to_string()).unwrap();
    let model_id = row.summary.unwrap()["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    common::expect_success(&[
        "verify",
        p(&folder),
        p(&proof),
        "--model-id",
        &model_id,
        "--input",
        p(&e.join("input.json")),
    ]);

    for (mut child, _) in workers {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(child.wait().unwrap().success(), "graceful stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_an_s3_store_sets_up_and_proves() {
    let endpoint = std::env::var("ZKINFER_TEST_S3")
        .expect("ZKINFER_TEST_S3 is not set: run scripts/test.sh (it starts scripts/s3.sh)");
    let tmp = tempfile::tempdir().unwrap();
    let url = fresh_postgres().await;
    let db = Db::connect(&url).await.unwrap();
    // A fresh prefix in the test bucket, so runs never share blobs.
    let prefix = hex::encode(rand::random::<[u8; 8]>());
    let store_url = format!("s3://zkinfer-test/{prefix}");
    let env = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let store = Store::s3(
        &store_url,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let tenant = tenants::create_key(&db, "t").await.unwrap().tenant_id;
    let (mut child, _) = start_worker_with(&url, &store_url, &tmp.path().join("m"), &env);
    let model = upload(&db, &store, &tenant, "1l_linear").await;
    wait_until("setup", Duration::from_secs(120), || async {
        models::status(&db, &tenant, &model)
            .await
            .unwrap()
            .as_deref()
            == Some("ready")
    })
    .await;
    let input: serde_json::Value =
        serde_json::from_slice(&std::fs::read(example("1l_linear").join("input.json")).unwrap())
            .unwrap();
    let payload = json!({ "input_data": input["input_data"] });
    let job = proof_job(&tenant, &model, &payload);
    let Enqueued::New(id) = queue::enqueue(&db, &job).await.unwrap() else {
        panic!()
    };
    wait_until("the proof", Duration::from_secs(60), || async {
        let j = queue::get(&db, &tenant, &id).await.unwrap().unwrap();
        j.status == "succeeded"
    })
    .await;
    // The compiled folder is in the bucket, under its content hashes, and reads back intact.
    let row = models::get(&db, &tenant, &model).await.unwrap().unwrap();
    let artifacts = row.artifacts.unwrap();
    let keys = store.keys().await.unwrap();
    for (name, key) in artifacts.as_object().unwrap() {
        let key = key.as_str().unwrap();
        assert!(
            keys.iter().any(|k| k == key),
            "{name} ({key}) in the bucket"
        );
        store.get(key).await.unwrap();
    }
    assert_eq!(
        keys.len(),
        artifacts.as_object().unwrap().len() + 2,
        "folder, ONNX, calibration"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success(), "graceful stop");
}

/// The job-runner children of worker loop `name`: their process ids (from /proc).
fn job_runners_of(name: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.iter().any(|a| *a == b"job-runner") && args.contains(&name.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// A job whose child process is killed as the kernel's OOM killer would (SIGKILL) fails
/// `out_of_memory` after one attempt; the worker process keeps running, starts a new child,
/// and the other loop's jobs (another tenant's) all succeed with one attempt each. The child
/// runs under an address-space limit of the worker's memory and its slack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_killed_in_its_child_fails_out_of_memory_and_nothing_else_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let url = fresh_postgres().await;
    let store_url = format!("file://{}", tmp.path().join("bucket").display());
    let db = Db::connect(&url).await.unwrap();
    let store = Store::open(Some(&store_url), tmp.path()).unwrap();
    let a = tenants::create_key(&db, "a").await.unwrap().tenant_id;
    let b = tenants::create_key(&db, "b").await.unwrap().tenant_id;
    let mut worker = Command::new(env!("CARGO_BIN_EXE_zkinfer"))
        .args(["worker", "--database-url", &url, "--store", &store_url])
        .args(["--data-dir", p(&tmp.path().join("w"))])
        .args([
            "--workers",
            "2",
            "--lease-secs",
            LEASE_SECS,
            "--max-prove-memory",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _reaper = Reaper(worker.id());
    let mut out = BufReader::new(worker.stdout.take().unwrap());
    let mut names = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        names.push(line.split_whitespace().nth(1).unwrap().to_string());
    }
    let slow = upload(&db, &store, &a, "lstm").await;
    let fast = upload(&db, &store, &b, "1l_mlp").await;
    wait_until("both models ready", Duration::from_secs(300), || async {
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM models WHERE status = 'ready'",
        )
        .await
            == 2
    })
    .await;
    let input = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(example(name).join("input.json")).unwrap()).unwrap()
    };
    let enqueue = |tenant: String, model: String, payload: serde_json::Value| {
        let db = db.clone();
        async move {
            let job = proof_job(&tenant, &model, &payload);
            match queue::enqueue(&db, &job).await.unwrap() {
                Enqueued::New(id) | Enqueued::Existing(id) => id,
            }
        }
    };
    let doomed = enqueue(a.clone(), slow.clone(), input("lstm")).await;
    // The doomed proof's worker loop, found once the proof runs.
    wait_until(
        "the doomed proof to run",
        Duration::from_secs(60),
        || async {
            let phase: Option<String> = sqlx::query_scalar("SELECT phase FROM jobs WHERE id = $1")
                .bind(&doomed)
                .fetch_one(&db.pool)
                .await
                .unwrap();
            phase.as_deref() == Some("proving")
        },
    )
    .await;
    let victim: String = sqlx::query_scalar("SELECT worker FROM jobs WHERE id = $1")
        .bind(&doomed)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let pids = job_runners_of(&victim);
    assert_eq!(pids.len(), 1, "one child per worker loop: {pids:?}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", pids[0])).unwrap();
    let address_space = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse::<u64>()
        .unwrap();
    // Its jobs' share (4 GiB less the two children's key caches, cut to 1 GiB each to leave
    // half for jobs) and its own cache, plus slack.
    assert_eq!(
        address_space,
        zkinfer_api::child::address_space_for((2 << 30) + (1 << 30)),
        "{limits}"
    );
    // Meanwhile tenant B's proofs.
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(enqueue(b.clone(), fast.clone(), input("1l_mlp")).await);
    }
    assert!(Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap()
        .success());
    wait_until(
        "the doomed job to fail",
        Duration::from_secs(60),
        || async {
            let s: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
                .bind(&doomed)
                .fetch_one(&db.pool)
                .await
                .unwrap();
            s == "failed"
        },
    )
    .await;
    let (code, attempts): (String, i64) =
        sqlx::query_as("SELECT error_code, CAST(attempts AS BIGINT) FROM jobs WHERE id = $1")
            .bind(&doomed)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((code.as_str(), attempts), ("out_of_memory", 1));
    for id in &others {
        assert_eq!(
            completed(&db, id).await.0,
            1,
            "no other job lost an attempt"
        );
    }
    // The worker process lives on, and its loop has a new child for the next job.
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker process kept running"
    );
    let again = enqueue(a.clone(), slow.clone(), input("lstm")).await;
    assert_eq!(completed(&db, &again).await.0, 1);
    assert!(names.contains(&victim));
    worker.kill().unwrap();
    let _ = worker.wait();
}

/// A worker process killed outright and started again on the same data dir requeues the job
/// its previous run held at once, not after the lease (60 s here), and proves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_requeues_its_previous_runs_jobs_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let url = fresh_postgres().await;
    let store_url = format!("file://{}", tmp.path().join("bucket").display());
    let db = Db::connect(&url).await.unwrap();
    let store = Store::open(Some(&store_url), tmp.path()).unwrap();
    let tenant = tenants::create_key(&db, "t").await.unwrap().tenant_id;
    let data = tmp.path().join("w");
    let start = || {
        let mut w = Command::new(env!("CARGO_BIN_EXE_zkinfer"))
            .args(["worker", "--database-url", &url, "--store", &store_url])
            .args([
                "--data-dir",
                p(&data),
                "--workers",
                "1",
                "--lease-secs",
                "60",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(w.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        w
    };
    let mut first = start();
    let model = upload(&db, &store, &tenant, "lstm").await;
    wait_until("the model ready", Duration::from_secs(300), || async {
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM models WHERE status = 'ready'",
        )
        .await
            == 1
    })
    .await;
    let payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(example("lstm").join("input.json")).unwrap())
            .unwrap();
    let job = proof_job(&tenant, &model, &payload);
    let Enqueued::New(id) = queue::enqueue(&db, &job).await.unwrap() else {
        panic!()
    };
    wait_until("the proof to run", Duration::from_secs(60), || async {
        let phase: Option<String> = sqlx::query_scalar("SELECT phase FROM jobs WHERE id = $1")
            .bind(&id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        phase.as_deref() == Some("proving")
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    let t = Instant::now();
    let mut second = start();
    let (attempts, _) = completed(&db, &id).await;
    assert_eq!(attempts, 2, "the killed run used one attempt");
    assert!(
        t.elapsed() < Duration::from_secs(50),
        "requeued at once, not after the 60 s lease ({:?})",
        t.elapsed()
    );
    second.kill().unwrap();
    let _ = second.wait();
}

/// Kills process `.0` if the test fails while it runs: a worker left behind would hold the
/// scratch database and every later run's cleanup would fail on it.
struct Reaper(u32);

impl Drop for Reaper {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}
