//! The queue and tenants on SQLite and on a real PostgreSQL (`scripts/postgres.sh` starts one;
//! `scripts/test.sh` passes its URL in `ZKINFER_TEST_POSTGRES`). Each test gets fresh databases.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::databases;
use serde_json::json;
use tokio::sync::Mutex;
use zkinfer_api::queue::{self, Enqueued, JobKind, NewJob, Outcome};
use zkinfer_api::{models, tenants, Backend, Db, Error};

async fn tenant_and_model(db: &Db, name: &str) -> (String, String) {
    let key = tenants::create_key(db, name).await.unwrap();
    let model = models::create(db, &key.tenant_id).await.unwrap();
    (key.tenant_id, model)
}

fn prove_job<'a>(tenant: &'a str, model: &'a str, payload: &'a serde_json::Value) -> NewJob<'a> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_job_is_claimed_and_finished_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        // Three pools stand for three machines sharing the database.
        let pools = [
            Db::connect(&url).await.unwrap(),
            Db::connect(&url).await.unwrap(),
            Db::connect(&url).await.unwrap(),
        ];
        let (tenant, model) = tenant_and_model(&pools[0], "t").await;
        for i in 0..200 {
            let payload = json!({ "n": i });
            let r = queue::enqueue(&pools[0], &prove_job(&tenant, &model, &payload))
                .await
                .unwrap();
            assert!(matches!(r, Enqueued::New(_)));
        }
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let mut tasks = Vec::new();
        for w in 0..9 {
            let db = pools[w % 3].clone();
            let seen = seen.clone();
            tasks.push(tokio::spawn(async move {
                let worker = format!("w{w}");
                while let Some(job) = queue::claim(&db, &worker, 60_000, i64::MAX).await.unwrap() {
                    *seen.lock().await.entry(job.id.clone()).or_default() += 1;
                    let out = Outcome::Succeeded(json!({ "by": worker, "n": job.payload["n"] }));
                    assert!(queue::finish(&db, &job.id, &worker, &out).await.unwrap());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let seen = seen.lock().await;
        assert_eq!(seen.len(), 200, "{url}");
        assert!(
            seen.values().all(|&n| n == 1),
            "{url}: a job was claimed twice"
        );
        let done: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE status = 'succeeded' AND CAST(attempts AS BIGINT) = 1",
        )
        .fetch_one(&pools[0].pool)
        .await
        .unwrap();
        assert_eq!(done, 200, "{url}");
    }
}

#[tokio::test]
async fn an_expired_lease_requeues_the_job_and_the_lost_worker_cannot_finish_it() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let (tenant, model) = tenant_and_model(&db, "t").await;
        let payload = json!({});
        let mut job = prove_job(&tenant, &model, &payload);
        job.max_attempts = 2;
        let Enqueued::New(id) = queue::enqueue(&db, &job).await.unwrap() else {
            panic!()
        };

        // Worker a claims with a lease that runs out (it died, or stalled).
        let a = queue::claim(&db, "a", 1, i64::MAX).await.unwrap().unwrap();
        assert_eq!((a.id.as_str(), a.attempt), (id.as_str(), 1));
        assert!(
            queue::claim(&db, "b", 60_000, i64::MAX)
                .await
                .unwrap()
                .is_none(),
            "held jobs are not claimed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(queue::expire_leases(&db).await.unwrap(), (1, 0));
        assert_eq!(
            queue::get(&db, &tenant, &id).await.unwrap().unwrap().status,
            "queued"
        );

        // Worker b takes it over; a's late writes change nothing.
        let b = queue::claim(&db, "b", 60_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((b.id.as_str(), b.attempt), (id.as_str(), 2));
        assert!(!queue::renew(&db, &id, "a", 60_000).await.unwrap());
        let late = Outcome::Succeeded(json!({ "by": "a" }));
        assert!(!queue::finish(&db, &id, "a", &late).await.unwrap());
        assert!(queue::renew(&db, &id, "b", 60_000).await.unwrap());
        assert!(
            queue::finish(&db, &id, "b", &Outcome::Succeeded(json!({ "by": "b" })))
                .await
                .unwrap()
        );
        let row = queue::get(&db, &tenant, &id).await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("succeeded", 2));
        assert_eq!(row.result.unwrap()["by"], "b");
        assert!(
            !queue::finish(&db, &id, "b", &late).await.unwrap(),
            "finished once"
        );

        // A job whose every attempt's worker dies fails with the reason.
        let Enqueued::New(id) = queue::enqueue(&db, &job).await.unwrap() else {
            panic!()
        };
        for expected in [(1, 0), (0, 1)] {
            queue::claim(&db, "c", 1, i64::MAX).await.unwrap().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert_eq!(queue::expire_leases(&db).await.unwrap(), expected);
        }
        let row = queue::get(&db, &tenant, &id).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.error_code.as_deref()),
            ("failed", Some("worker_lost"))
        );
        assert!(queue::claim(&db, "c", 60_000, i64::MAX)
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn idempotency_keys_tenants_and_cancellation() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        assert_eq!(db.backend, Backend::of(&url).unwrap());
        let (t1, m1) = tenant_and_model(&db, "one").await;
        let (t2, m2) = tenant_and_model(&db, "two").await;
        let payload = json!({ "input_data": [[1.0]] });
        let mut job = prove_job(&t1, &m1, &payload);
        job.idempotency = Some(("k1", "hash-a"));
        let Enqueued::New(first) = queue::enqueue(&db, &job).await.unwrap() else {
            panic!()
        };
        assert_eq!(
            queue::enqueue(&db, &job).await.unwrap(),
            Enqueued::Existing(first.clone())
        );
        job.idempotency = Some(("k1", "hash-b"));
        assert!(matches!(
            queue::enqueue(&db, &job).await,
            Err(Error::Conflict(_))
        ));
        // The same key is another tenant's own.
        let mut other = prove_job(&t2, &m2, &payload);
        other.idempotency = Some(("k1", "hash-b"));
        assert!(matches!(
            queue::enqueue(&db, &other).await.unwrap(),
            Enqueued::New(_)
        ));

        // A tenant sees only its own jobs and models, and cancels only its own queued jobs.
        assert!(queue::get(&db, &t2, &first).await.unwrap().is_none());
        assert!(models::status(&db, &t2, &m1).await.unwrap().is_none());
        assert_eq!(
            models::status(&db, &t1, &m1).await.unwrap().as_deref(),
            Some("queued")
        );
        assert!(!queue::cancel(&db, &t2, &first).await.unwrap());
        assert!(queue::cancel(&db, &t1, &first).await.unwrap());
        assert_eq!(
            queue::get(&db, &t1, &first).await.unwrap().unwrap().status,
            "cancelled"
        );
        assert!(
            !queue::cancel(&db, &t1, &first).await.unwrap(),
            "only queued jobs"
        );

        // Keys: each authenticates its tenant; a second key for a tenant keeps its secret.
        let k = tenants::create_key(&db, "one").await.unwrap();
        let k2 = tenants::create_key(&db, "one").await.unwrap();
        assert_eq!(k.tenant_id, t1);
        assert_eq!(k.callback_secret, k2.callback_secret);
        assert_ne!(k.key, k2.key);
        assert!(k.key.starts_with("zk_") && k.key.len() == 67);
        assert_eq!(
            tenants::authenticate(&db, &k.key).await.unwrap(),
            Ok(t1.clone())
        );
        assert_eq!(
            tenants::authenticate(&db, "zk_00").await.unwrap(),
            Err(tenants::Refused::Unknown)
        );
        let stored: i64 =
            sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM api_keys WHERE key_hash = $1")
                .bind(&k.key)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(stored, 0, "keys are stored hashed");
    }
}

#[tokio::test]
async fn a_worker_claims_only_what_fits_its_free_memory_and_a_deferred_job_keeps_its_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let (tenant, model) = tenant_and_model(&db, "t").await;
        let payload = json!({});
        let mut big = prove_job(&tenant, &model, &payload);
        big.memory_bytes = Some(1000);
        let Enqueued::New(big_id) = queue::enqueue(&db, &big).await.unwrap() else {
            panic!()
        };
        let small = prove_job(&tenant, &model, &payload);
        let Enqueued::New(small_id) = queue::enqueue(&db, &small).await.unwrap() else {
            panic!()
        };
        // The older job needs 1000 bytes: a worker with 999 free skips it for the newer one.
        let c = queue::claim(&db, "w", 60_000, 999).await.unwrap().unwrap();
        assert_eq!(c.id, small_id);
        assert!(queue::claim(&db, "w", 60_000, 999).await.unwrap().is_none());
        let c = queue::claim(&db, "w2", 60_000, 1000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.id.as_str(), c.memory_bytes),
            (big_id.as_str(), Some(1000))
        );
        // Deferred with what it turned out to need: queued, no attempt used, and only a
        // worker with that much free takes it.
        assert!(queue::defer(&db, &big_id, "w2", 5000).await.unwrap());
        assert!(
            !queue::defer(&db, &big_id, "w2", 5000).await.unwrap(),
            "once"
        );
        let row = queue::get(&db, &tenant, &big_id).await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("queued", 0));
        assert!(queue::claim(&db, "w", 60_000, 4999)
            .await
            .unwrap()
            .is_none());
        let c = queue::claim(&db, "w3", 60_000, 5000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.id.as_str(), c.attempt), (big_id.as_str(), 1));
    }
}

#[tokio::test]
async fn claims_are_fair_across_tenants() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let (a, model_a) = tenant_and_model(&db, "a").await;
        let (b, model_b) = tenant_and_model(&db, "b").await;
        let payload = json!({});
        let mut a_jobs = Vec::new();
        for _ in 0..5 {
            let Enqueued::New(id) = queue::enqueue(&db, &prove_job(&a, &model_a, &payload))
                .await
                .unwrap()
            else {
                panic!()
            };
            a_jobs.push(id);
            // Jobs of one millisecond are ordered by their (random) ids: apart, by age.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let Enqueued::New(b_job) = queue::enqueue(&db, &prove_job(&b, &model_b, &payload))
            .await
            .unwrap()
        else {
            panic!()
        };
        // A's backlog is older, but once one of A's runs, B's job is next: B waits behind
        // at most one of A's jobs per worker.
        let first = queue::claim(&db, "w1", 60_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.id, a_jobs[0]);
        let second = queue::claim(&db, "w2", 60_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.id, b_job);
        let third = queue::claim(&db, "w3", 60_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(third.id, a_jobs[1], "then A's, oldest first");
    }
}

#[tokio::test]
async fn a_setup_job_and_its_model_end_together() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let key = tenants::create_key(&db, "t").await.unwrap();
        let model = models::create_with_setup(
            &db,
            &key.tenant_id,
            &json!({}),
            &models::Setup {
                max_attempts: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let status = |db: Db, model: String, tenant: String| async move {
            models::get(&db, &tenant, &model)
                .await
                .unwrap()
                .unwrap()
                .status
        };
        let t = key.tenant_id.clone();
        // A lease that runs out requeues the job and its model; on the last attempt both fail.
        queue::claim(&db, "w", 1, i64::MAX).await.unwrap().unwrap();
        models::set_state(&db, &model, "running", None, None, None)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(queue::expire_leases(&db).await.unwrap(), (1, 0));
        assert_eq!(status(db.clone(), model.clone(), t.clone()).await, "queued");
        queue::claim(&db, "w", 1, i64::MAX).await.unwrap().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(queue::expire_leases(&db).await.unwrap(), (0, 1));
        assert_eq!(status(db.clone(), model.clone(), t.clone()).await, "failed");

        // A finished setup job writes its model in the same transaction; a worker that lost
        // the job writes neither.
        let model = models::create_with_setup(
            &db,
            &t,
            &json!({}),
            &models::Setup {
                max_attempts: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let job = queue::claim(&db, "w", 60_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        let ready = Outcome::Succeeded(json!({"summary": {"k": 7}, "artifacts": {}}));
        assert!(
            !queue::finish_with(&db, &job.id, "other", &ready, Some(5), Some(&model))
                .await
                .unwrap()
        );
        assert_eq!(status(db.clone(), model.clone(), t.clone()).await, "queued");
        assert!(
            queue::finish_with(&db, &job.id, "w", &ready, Some(5), Some(&model))
                .await
                .unwrap()
        );
        let m = models::get(&db, &t, &model).await.unwrap().unwrap();
        assert_eq!(
            (m.status.as_str(), &m.summary.unwrap()["k"]),
            ("ready", &json!(7))
        );
        let row = queue::get(&db, &t, &job.id).await.unwrap().unwrap();
        assert_eq!(row.phase, None, "a finished job has no phase");

        // A worker of a previous run: its jobs are requeued at once, not after the lease.
        let model = models::create_with_setup(
            &db,
            &t,
            &json!({}),
            &models::Setup {
                max_attempts: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let job = queue::claim(&db, "gone", 3_600_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(queue::expire_leases(&db).await.unwrap(), (0, 0));
        assert_eq!(queue::orphan(&db, "gone").await.unwrap(), 1);
        assert_eq!(queue::expire_leases(&db).await.unwrap(), (1, 0));
        let row = queue::get(&db, &t, &job.id).await.unwrap().unwrap();
        assert_eq!(row.status, "queued");
        assert_eq!(status(db.clone(), model, t.clone()).await, "queued");
    }
}

#[tokio::test]
async fn keys_are_listed_revoked_expired_and_rotated() {
    use tenants::Refused;
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let a = tenants::create_key(&db, "alice").await.unwrap();
        let a2 = tenants::create_key(&db, "alice").await.unwrap();
        let b = tenants::create_key(&db, "bob").await.unwrap();
        let ids = |keys: Vec<tenants::KeyInfo>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
        // Listed by creation time, then id: two keys of one millisecond come in id order.
        let mut want = [a.key_id.clone(), a2.key_id.clone()];
        want.sort();
        let mut listed_ids = ids(tenants::list_keys(&db, Some("alice")).await.unwrap());
        listed_ids.sort();
        assert_eq!(listed_ids, want);
        assert_eq!(tenants::list_keys(&db, None).await.unwrap().len(), 3);
        // The listing never holds a key, only ids that name none.
        let listed = format!("{:?}", tenants::list_keys(&db, None).await.unwrap());
        assert!(!listed.contains(&a.key[3..]) && !listed.contains(&b.key[3..]));

        // Revoking one key leaves the tenant's other key and other tenants' keys working.
        assert!(tenants::revoke_key(&db, &a.key_id).await.unwrap());
        assert!(!tenants::revoke_key(&db, &a.key_id).await.unwrap(), "once");
        assert!(!tenants::revoke_key(&db, "ak_missing").await.unwrap());
        assert_eq!(
            tenants::authenticate(&db, &a.key).await.unwrap(),
            Err(Refused::Revoked)
        );
        assert_eq!(
            tenants::authenticate(&db, &a2.key).await.unwrap(),
            Ok(a.tenant_id.clone())
        );
        assert_eq!(
            tenants::authenticate(&db, &b.key).await.unwrap(),
            Ok(b.tenant_id.clone())
        );

        // A key past its expiry is refused; one before it works.
        let soon =
            tenants::create_key_expiring(&db, "bob", Some(zkinfer_api::db::now_ms() + 60_000))
                .await
                .unwrap();
        let past = tenants::create_key_expiring(&db, "bob", Some(zkinfer_api::db::now_ms() - 1))
            .await
            .unwrap();
        assert_eq!(
            tenants::authenticate(&db, &soon.key).await.unwrap(),
            Ok(b.tenant_id.clone())
        );
        assert_eq!(
            tenants::authenticate(&db, &past.key).await.unwrap(),
            Err(Refused::Expired)
        );

        // Rotation: a new key at once; the old live ones expire after the grace (here none).
        let (new, old) = tenants::rotate_key(&db, "bob", 0, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old, 2, "b and soon (past had already expired)");
        assert_eq!(new.tenant_id, b.tenant_id);
        assert_eq!(
            tenants::authenticate(&db, &new.key).await.unwrap(),
            Ok(b.tenant_id.clone())
        );
        for k in [&b, &soon] {
            assert_eq!(
                tenants::authenticate(&db, &k.key).await.unwrap(),
                Err(Refused::Expired)
            );
        }
        // With a grace the old key keeps working until it ends.
        let (_, old) = tenants::rotate_key(&db, "bob", 3_600_000, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old, 1);
        assert_eq!(
            tenants::authenticate(&db, &new.key).await.unwrap(),
            Ok(b.tenant_id.clone())
        );
        let states: Vec<_> = tenants::list_keys(&db, Some("bob"))
            .await
            .unwrap()
            .iter()
            .map(|k| k.state(zkinfer_api::db::now_ms()))
            .collect();
        assert_eq!(states, ["expired", "expired", "expired", "live", "live"]);
        // Rotation never creates a tenant.
        assert!(tenants::rotate_key(&db, "nobody", 0, None)
            .await
            .unwrap()
            .is_none());
        assert!(tenants::list_keys(&db, Some("nobody"))
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn every_end_of_a_job_is_counted_once_for_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let (tenant, model) = tenant_and_model(&db, "t").await;
        let payload = json!({});
        let mut ids = Vec::new();
        for _ in 0..4 {
            let mut job = prove_job(&tenant, &model, &payload);
            job.max_attempts = 1;
            let Enqueued::New(id) = queue::enqueue(&db, &job).await.unwrap() else {
                panic!()
            };
            ids.push(id);
        }
        // One succeeds in 1.5 s; a late second finish counts nothing.
        let a = queue::claim(&db, "a", 60_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        let done = Outcome::Succeeded(json!({}));
        assert!(queue::finish_with(&db, &a.id, "a", &done, Some(1500), None)
            .await
            .unwrap());
        assert!(
            !queue::finish_with(&db, &a.id, "a", &done, Some(1500), None)
                .await
                .unwrap()
        );
        // One loses its worker on its only attempt; one is cancelled; the model's deletion
        // cancels the last.
        let b = queue::claim(&db, "b", 1, i64::MAX).await.unwrap().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(queue::expire_leases(&db).await.unwrap(), (0, 1));
        // Jobs enqueued within one millisecond are claimed in id order, not enqueue order:
        // cancel one that neither worker took.
        let waiting = ids.iter().find(|id| **id != a.id && **id != b.id).unwrap();
        assert!(queue::cancel(&db, &tenant, waiting).await.unwrap());
        assert!(!queue::cancel(&db, &tenant, waiting).await.unwrap());
        assert!(models::delete(&db, &tenant, &model).await.unwrap());

        let counters = zkinfer_api::counters::all(&db).await.unwrap();
        let get = |name: &str, label: &str| {
            counters
                .iter()
                .find(|c| c.0 == name && c.1 == label)
                .map(|c| c.2)
        };
        use zkinfer_api::counters::{JOBS_ENDED, LEASE_EXPIRIES, PROVE_RUNS};
        assert_eq!(
            get(JOBS_ENDED, r#"kind="prove",state="succeeded""#),
            Some(1)
        );
        assert_eq!(get(JOBS_ENDED, r#"kind="prove",state="failed""#), Some(1));
        assert_eq!(
            get(JOBS_ENDED, r#"kind="prove",state="cancelled""#),
            Some(2)
        );
        assert_eq!(get(LEASE_EXPIRIES, ""), Some(1));
        assert_eq!(get(PROVE_RUNS, r#"le="2.5""#), Some(1));
        assert_eq!(get(PROVE_RUNS, "sum_ms"), Some(1500));
        assert_eq!(get(PROVE_RUNS, "count"), Some(1));
        assert_eq!(counters.len(), 7, "{counters:?}");
    }
}

#[tokio::test]
async fn a_job_no_worker_can_hold_fails_only_after_the_grace() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let t = tenants::create_key(&db, "t").await.unwrap().tenant_id;
        let setup = models::Setup {
            max_attempts: 1,
            memory_bytes: Some(2 << 30),
            ..Default::default()
        };
        let big = models::create_with_setup(&db, &t, &json!({}), &setup)
            .await
            .unwrap();
        let small = models::create_with_setup(
            &db,
            &t,
            &json!({}),
            &models::Setup {
                memory_bytes: Some(1 << 20),
                ..setup
            },
        )
        .await
        .unwrap();
        let status = |m: String| {
            let db = db.clone();
            let t = t.clone();
            async move { models::status(&db, &t, &m).await.unwrap().unwrap() }
        };
        let grace = 60_000;
        // The large worker is away (restarting): the big model's setup waits out the grace.
        assert_eq!(
            queue::fail_unplaceable(&db, 1 << 30, grace).await.unwrap(),
            0
        );
        // It is back: the clock starts again the next time it is away.
        assert_eq!(
            queue::fail_unplaceable(&db, 4 << 30, grace).await.unwrap(),
            0
        );
        assert_eq!(
            queue::fail_unplaceable(&db, 1 << 30, grace).await.unwrap(),
            0
        );
        assert_eq!(status(big.clone()).await, "queued");
        // Away for good: past the grace it fails with the figures, and its model with it;
        // the model that fits is untouched.
        sqlx::query("UPDATE jobs SET unplaceable_ms = unplaceable_ms - 61000")
            .execute(&db.pool)
            .await
            .unwrap();
        assert_eq!(
            queue::fail_unplaceable(&db, 1 << 30, grace).await.unwrap(),
            1
        );
        assert_eq!(status(big.clone()).await, "failed");
        assert_eq!(status(small.clone()).await, "queued");
        let m = models::get(&db, &t, &big).await.unwrap().unwrap();
        let (code, message) = m.error.unwrap();
        assert_eq!(code, "model_too_large");
        assert!(message.contains(&(2u64 << 30).to_string()), "{message}");
        assert!(message.contains(&(1u64 << 30).to_string()), "{message}");
    }
}

#[tokio::test]
async fn a_setup_job_is_cancelled_only_by_deleting_its_model() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = Db::connect(&url).await.unwrap();
        let t = tenants::create_key(&db, "t").await.unwrap().tenant_id;
        let setup = models::Setup {
            max_attempts: 1,
            ..Default::default()
        };
        let model = models::create_with_setup(&db, &t, &json!({}), &setup)
            .await
            .unwrap();
        let filter = queue::JobFilter {
            model: Some(model.clone()),
            ..Default::default()
        };
        let job = queue::list(&db, &t, &filter, 1).await.unwrap().remove(0);
        // Cancelled alone, the model would wait for a setup that never comes.
        assert!(!queue::cancel(&db, &t, &job.id).await.unwrap());
        assert_eq!(
            models::status(&db, &t, &model).await.unwrap().unwrap(),
            "queued"
        );
        assert!(models::delete(&db, &t, &model).await.unwrap());
        let job = queue::get(&db, &t, &job.id).await.unwrap().unwrap();
        assert_eq!(job.status, "cancelled");
    }
}
