//! A segmented model's jobs in the queue, on SQLite and PostgreSQL: a parent fans out one
//! child per segment and waits (unclaimable, unexpirable); the last child to succeed (even
//! when all end at once, from separate pools) queues it once for its `assemble` step; a child
//! that fails for good, by its error, a lost lease or no worker large enough, fails the parent
//! (a setup's model with it) and cancels the children still queued; cancelling or deleting
//! reaches a waiting parent and its children; a child is not cancelled on its own, nor counted
//! apart from its parent until the parent ends (then a running one counts against the quota,
//! and a queued one is cancelled, never claimed); a deleted model's job is not fanned out;
//! deleting a model while its segments fail never deadlocks.

mod common;

use common::databases;
use serde_json::{json, Value};
use zkinfer_api::queue::{self, Child, Enqueued, JobKind, NewJob, Outcome};
use zkinfer_api::{models, tenants, Db};

async fn tenant_and_model(db: &Db) -> (String, String) {
    let key = tenants::create_key(db, "t").await.unwrap();
    let model = models::create(db, &key.tenant_id).await.unwrap();
    (key.tenant_id, model)
}

/// A proof job of `model` with one attempt, queued; its id.
async fn enqueue_proof(db: &Db, tenant: &str, model: &str) -> String {
    let payload = json!({});
    let job = NewJob {
        tenant_id: tenant,
        model_id: model,
        kind: JobKind::Prove,
        payload: &payload,
        max_attempts: 1,
        idempotency: None,
        callback_url: None,
        memory_bytes: None,
    };
    let Enqueued::New(id) = queue::enqueue(db, &job).await.unwrap() else {
        panic!()
    };
    id
}

/// A proof job, claimed by `a` and fanned out into `n` children of 100 bytes each.
async fn waiting_parent(db: &Db, tenant: &str, model: &str, n: usize) -> String {
    let id = enqueue_proof(db, tenant, model).await;
    let claimed = queue::claim(db, "a", 60_000, i64::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);
    assert!(fan_out(db, &id, "a", n).await);
    id
}

async fn fan_out(db: &Db, id: &str, worker: &str, n: usize) -> bool {
    let children: Vec<Child> = (0..n)
        .map(|s| Child {
            kind: JobKind::ProveSegment,
            payload: json!({ "segment": s }),
            memory_bytes: Some(100),
        })
        .collect();
    queue::fan_out(db, id, worker, &children.into())
        .await
        .unwrap()
}

async fn children(db: &Db, parent: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM jobs WHERE parent_id = $1 ORDER BY segment")
        .bind(parent)
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// A job's status, error code, error and step.
async fn state(db: &Db, id: &str) -> (String, Option<String>, Option<String>, Option<String>) {
    sqlx::query_as("SELECT status, error_code, error, step FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn error_of(db: &Db, id: &str) -> String {
    state(db, id).await.2.unwrap_or_default()
}

async fn claim_one(db: &Db, worker: &str, lease_ms: i64) -> queue::Claimed {
    queue::claim(db, worker, lease_ms, i64::MAX)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_waits_for_every_segment_and_is_queued_once_to_assemble() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let pools = [
            Db::connect(&url).await.unwrap(),
            Db::connect(&url).await.unwrap(),
            Db::connect(&url).await.unwrap(),
        ];
        let db = &pools[0];
        let (tenant, model) = tenant_and_model(db).await;
        let parent = enqueue_proof(db, &tenant, &model).await;
        claim_one(db, "a", 60_000).await;
        // Only the worker holding the job fans it out.
        assert!(!fan_out(db, &parent, "b", 3).await);
        assert!(children(db, &parent).await.is_empty());
        assert!(fan_out(db, &parent, "a", 3).await);
        assert!(
            !fan_out(db, &parent, "a", 3).await,
            "a waiting job is fanned out once"
        );
        assert_eq!(state(db, &parent).await.0, "waiting");
        // The tenant has one open job; its listing shows the parent alone.
        assert_eq!(queue::open_jobs(db, &tenant).await.unwrap(), 1);
        let listed = queue::list(db, &tenant, &Default::default(), 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, parent);
        // The children need 100 bytes each: a worker with 50 free gets nothing, not even the
        // waiting parent.
        assert!(queue::claim(db, "small", 60_000, 50)
            .await
            .unwrap()
            .is_none());
        let mut claimed = Vec::new();
        for (w, pool) in pools.iter().enumerate() {
            let c = claim_one(pool, &format!("w{w}"), 60_000).await;
            assert_eq!(c.kind, JobKind::ProveSegment);
            claimed.push((pool.clone(), c.id, format!("w{w}")));
        }
        assert!(queue::claim(db, "x", 60_000, i64::MAX)
            .await
            .unwrap()
            .is_none());
        // All three end at once, each from its own pool: exactly one of them queues the
        // parent again.
        let ends = claimed.into_iter().map(|(pool, id, w)| {
            tokio::spawn(async move {
                let done = Outcome::Succeeded(json!({}));
                queue::finish_with(&pool, &id, &w, &done, Some(10), None)
                    .await
                    .unwrap()
            })
        });
        for end in ends {
            assert!(end.await.unwrap());
        }
        let (status, _, _, step) = state(db, &parent).await;
        assert_eq!(
            (status.as_str(), step.as_deref()),
            ("queued", Some("assemble"))
        );
        let row = queue::get(db, &tenant, &parent).await.unwrap().unwrap();
        assert_eq!(
            row.progress,
            Some(json!({ "done": 3, "total": 3, "unit": "segments" }))
        );
        // Its assemble step has attempts of its own (its one attempt went to the fan-out).
        let again = claim_one(db, "z", 60_000).await;
        assert_eq!(
            (again.id.as_str(), again.step.as_deref(), again.attempt),
            (parent.as_str(), Some("assemble"), 1)
        );
        let done = Outcome::Succeeded(json!({ "proof_file": {} }));
        assert!(queue::finish_with(db, &parent, "z", &done, Some(5), None)
            .await
            .unwrap());
        assert_eq!(state(db, &parent).await.0, "succeeded");
        assert_eq!(queue::open_jobs(db, &tenant).await.unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_fails_for_good_fails_its_parent_and_cancels_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = &Db::connect(&url).await.unwrap();
        let (tenant, model) = tenant_and_model(db).await;

        // By its error: the parent takes the code and the segment's message; the queued
        // sibling is cancelled; the running one's later success changes nothing.
        let parent = waiting_parent(db, &tenant, &model, 3).await;
        let kids = children(db, &parent).await;
        let c0 = claim_one(db, "w0", 60_000).await;
        let c1 = claim_one(db, "w1", 60_000).await;
        assert_eq!((&c0.id, &c1.id), (&kids[0], &kids[1]));
        let oom = Outcome::Failed("out_of_memory".into(), "killed".into());
        assert!(queue::finish_with(db, &kids[0], "w0", &oom, None, None)
            .await
            .unwrap());
        let (status, code, error, _) = state(db, &parent).await;
        assert_eq!(
            (status.as_str(), code.as_deref(), error.as_deref()),
            ("failed", Some("out_of_memory"), Some("segment 0: killed"))
        );
        assert_eq!(state(db, &kids[2]).await.0, "cancelled");
        let ok = Outcome::Succeeded(json!({}));
        assert!(queue::finish_with(db, &kids[1], "w1", &ok, None, None)
            .await
            .unwrap());
        assert_eq!(state(db, &parent).await.0, "failed");
        assert!(queue::claim(db, "w2", 60_000, i64::MAX)
            .await
            .unwrap()
            .is_none());

        // By a lost lease on its last attempt: a setup parent fails with its model.
        let one_setup = models::Setup {
            max_attempts: 2,
            ..Default::default()
        };
        let setup = models::create_with_setup(db, &tenant, &json!({}), &one_setup)
            .await
            .unwrap();
        let job = claim_one(db, "a", 60_000).await;
        assert_eq!(job.kind, JobKind::Setup);
        let children_of_setup: Vec<Child> = (0..2)
            .map(|s| Child {
                kind: JobKind::SetupSegment,
                payload: json!({ "segment": s }),
                memory_bytes: Some(100),
            })
            .collect();
        assert!(queue::fan_out(db, &job.id, "a", &children_of_setup.into())
            .await
            .unwrap());
        sqlx::query("UPDATE jobs SET max_attempts = 1 WHERE parent_id = $1")
            .bind(&job.id)
            .execute(&db.pool)
            .await
            .unwrap();
        claim_one(db, "lost", 1).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(queue::expire_leases(db).await.unwrap(), (0, 1));
        let (status, code, error, _) = state(db, &job.id).await;
        assert_eq!(
            (status.as_str(), code.as_deref()),
            ("failed", Some("worker_lost"))
        );
        assert!(error.unwrap().starts_with("segment 0: "));
        let m = models::get(db, &tenant, &setup).await.unwrap().unwrap();
        assert_eq!(m.status, "failed");
        assert_eq!(m.error.unwrap().0, "worker_lost");

        // By needing more memory than any worker has: failed model_too_large.
        let parent = waiting_parent(db, &tenant, &model, 2).await;
        // (Both segments need 100 bytes: the first fails, its sibling is cancelled with the
        // parent.)
        assert_eq!(queue::fail_unplaceable(db, 50, 0).await.unwrap(), 1);
        let kids = children(db, &parent).await;
        assert_eq!(state(db, &kids[1]).await.0, "cancelled");
        let (status, code, _, _) = state(db, &parent).await;
        assert_eq!(
            (status.as_str(), code.as_deref()),
            ("failed", Some("model_too_large"))
        );
        assert!(error_of(db, &parent)
            .await
            .starts_with("segment 0: needs 100 bytes"));
    }
}

#[tokio::test]
async fn cancelling_or_deleting_reaches_a_waiting_parent_and_its_segments() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = &Db::connect(&url).await.unwrap();
        let (tenant, model) = tenant_and_model(db).await;
        let parent = waiting_parent(db, &tenant, &model, 2).await;
        let kids = children(db, &parent).await;
        let running = claim_one(db, "w0", 60_000).await;
        assert!(
            !queue::cancel(db, &tenant, &kids[1]).await.unwrap(),
            "a segment is not cancelled on its own"
        );
        assert!(!queue::cancel(db, "someone else", &parent).await.unwrap());
        assert!(queue::cancel(db, &tenant, &parent).await.unwrap());
        assert_eq!(state(db, &parent).await.0, "cancelled");
        assert_eq!(state(db, &kids[1]).await.0, "cancelled");
        // The running segment finishes; its parent stays cancelled.
        let ok = Outcome::Succeeded(json!({}));
        assert!(queue::finish_with(db, &running.id, "w0", &ok, None, None)
            .await
            .unwrap());
        assert_eq!(state(db, &parent).await.0, "cancelled");

        let parent = waiting_parent(db, &tenant, &model, 2).await;
        assert!(models::delete(db, &tenant, &model).await.unwrap());
        assert_eq!(state(db, &parent).await.0, "cancelled");
        for kid in children(db, &parent).await {
            assert_eq!(state(db, &kid).await.0, "cancelled");
        }
        let open: Vec<Value> = sqlx::query_scalar::<_, String>(
            "SELECT status FROM jobs WHERE status IN ('queued', 'running', 'waiting')",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .into_iter()
        .map(Value::String)
        .collect();
        assert!(open.is_empty(), "{open:?}");
    }
}

#[tokio::test]
async fn segments_outliving_their_job_count_and_are_never_claimed() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let db = &Db::connect(&url).await.unwrap();
        let (tenant, model) = tenant_and_model(db).await;
        let parent = waiting_parent(db, &tenant, &model, 2).await;
        let kids = children(db, &parent).await;
        sqlx::query("UPDATE jobs SET max_attempts = 2 WHERE parent_id = $1")
            .bind(&parent)
            .execute(&db.pool)
            .await
            .unwrap();
        let running = claim_one(db, "w0", 1).await;
        assert_eq!(running.id, kids[0]);
        assert_eq!(queue::open_jobs(db, &tenant).await.unwrap(), 1);
        // Cancelling the job frees nothing while its segment still runs.
        assert!(queue::cancel(db, &tenant, &parent).await.unwrap());
        assert_eq!(queue::open_jobs(db, &tenant).await.unwrap(), 1);
        // Its lease expires: put back, it is cancelled at once, never claimed again.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        queue::expire_leases(db).await.unwrap();
        assert_eq!(state(db, &kids[0]).await.0, "cancelled");
        assert!(queue::claim(db, "w1", 60_000, i64::MAX)
            .await
            .unwrap()
            .is_none());
        assert_eq!(queue::open_jobs(db, &tenant).await.unwrap(), 0);

        // A job whose model was deleted while it compiled is cancelled, not fanned out.
        let id = enqueue_proof(db, &tenant, &model).await;
        claim_one(db, "a", 60_000).await;
        assert!(models::delete(db, &tenant, &model).await.unwrap());
        assert!(!fan_out(db, &id, "a", 2).await);
        assert_eq!(state(db, &id).await.0, "cancelled");
        assert!(children(db, &id).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_model_while_its_segments_fail_never_deadlocks() {
    let tmp = tempfile::tempdir().unwrap();
    for url in databases(tmp.path()).await {
        let (a, b) = (
            Db::connect(&url).await.unwrap(),
            Db::connect(&url).await.unwrap(),
        );
        let tenant = tenants::create_key(&a, "t").await.unwrap().tenant_id;
        for round in 0..12 {
            let setup = models::Setup {
                max_attempts: 1,
                ..Default::default()
            };
            let model = models::create_with_setup(&a, &tenant, &json!({}), &setup)
                .await
                .unwrap();
            let job = claim_one(&a, "a", 60_000).await;
            let kids: Vec<Child> = (0..3)
                .map(|s| Child {
                    kind: JobKind::SetupSegment,
                    payload: json!({ "segment": s }),
                    memory_bytes: Some(100),
                })
                .collect();
            assert!(queue::fan_out(&a, &job.id, "a", &kids.into())
                .await
                .unwrap());
            let child = claim_one(&a, "w", 60_000).await;
            // A segment fails (parent, model, queued siblings) while the model is deleted
            // (model, parents, children): both complete, whichever goes first.
            let fail = {
                let db = a.clone();
                tokio::spawn(async move {
                    let oom = Outcome::Failed("out_of_memory".into(), "killed".into());
                    queue::finish_with(&db, &child.id, "w", &oom, None, None).await
                })
            };
            let delete = {
                let (db, tenant, model) = (b.clone(), tenant.clone(), model.clone());
                tokio::spawn(async move { models::delete(&db, &tenant, &model).await })
            };
            assert!(
                fail.await.unwrap().expect("the failure is recorded"),
                "round {round}"
            );
            assert!(
                delete.await.unwrap().expect("the model is deleted"),
                "round {round}"
            );
            let open: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM jobs WHERE model_id = $1 \
                 AND status IN ('queued', 'running', 'waiting')",
            )
            .bind(&model)
            .fetch_one(&a.pool)
            .await
            .unwrap();
            assert_eq!(open, 0, "round {round}");
        }
    }
}
