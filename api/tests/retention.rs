//! Retention on SQLite and on PostgreSQL: a deleted model's rows and blobs are purged after
//! the retention period, never before; a blob another model shares is kept; a blob nothing
//! refers to goes; a blob stored again after the listing is kept.

mod common;

use std::time::Duration;

use serde_json::json;
use zkinfer_api::queue::{self, Enqueued, JobKind, NewJob, Outcome};
use zkinfer_api::retention::{purge, Purged, Retention};
use zkinfer_api::store::Store;
use zkinfer_api::{models, tenants, Db};

#[tokio::test]
async fn a_deleted_model_is_purged_after_retention_and_shared_blobs_stay() {
    let tmp = tempfile::tempdir().unwrap();
    for (n, url) in common::databases(tmp.path()).await.into_iter().enumerate() {
        let db = Db::connect(&url).await.unwrap();
        let store = Store::open(None, &tmp.path().join(format!("data{n}"))).unwrap();
        let tenant = tenants::create_key(&db, "t").await.unwrap().tenant_id;
        let shared = store.put(b"the same onnx".to_vec()).await.unwrap();
        let mut made = Vec::new();
        for name in ["gone", "kept"] {
            let own = store
                .put(format!("{name} calibration").into_bytes())
                .await
                .unwrap();
            let pk = store
                .put(format!("{name} proving key").into_bytes())
                .await
                .unwrap();
            let upload = json!({ "onnx": shared, "calibration": own });
            let setup = models::Setup {
                max_attempts: 1,
                ..Default::default()
            };
            let model = models::create_with_setup(&db, &tenant, &upload, &setup)
                .await
                .unwrap();
            let job = queue::claim(&db, "w", 60_000, i64::MAX)
                .await
                .unwrap()
                .unwrap();
            let done = json!({ "summary": { "k": 7 }, "artifacts": { "pk.bin": pk } });
            assert!(queue::finish_with(
                &db,
                &job.id,
                "w",
                &Outcome::Succeeded(done),
                None,
                Some(&model)
            )
            .await
            .unwrap());
            made.push((model, own, pk));
        }
        let orphan = store.put(b"nothing refers to me".to_vec()).await.unwrap();
        // A finished proof of the model to delete: its inputs and result go with it.
        let payload = json!({ "input_data": [[0.5]] });
        let Enqueued::New(proof) = queue::enqueue(
            &db,
            &NewJob {
                tenant_id: &tenant,
                model_id: &made[0].0,
                kind: JobKind::Prove,
                payload: &payload,
                max_attempts: 1,
                idempotency: None,
                callback_url: None,
                memory_bytes: None,
            },
        )
        .await
        .unwrap() else {
            panic!()
        };
        queue::claim(&db, "w", 60_000, i64::MAX)
            .await
            .unwrap()
            .unwrap();
        let result = json!({ "proof_file": { "outputs": [[1.0]] } });
        assert!(queue::finish(&db, &proof, "w", &Outcome::Succeeded(result))
            .await
            .unwrap());
        assert!(models::delete(&db, &tenant, &made[0].0).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;

        // Within the retention period nothing goes but what nothing refers to.
        let keep = Retention {
            models: Duration::from_secs(3600),
            blobs: Duration::ZERO,
        };
        assert_eq!(
            purge(&db, &store, keep).await.unwrap(),
            Purged {
                models: 0,
                blobs: 1
            }
        );
        let mut keys = store.keys().await.unwrap();
        keys.sort();
        let mut expected = vec![
            shared.clone(),
            made[0].1.clone(),
            made[0].2.clone(),
            made[1].1.clone(),
            made[1].2.clone(),
        ];
        expected.sort();
        assert_eq!(keys, expected, "only the orphan went");
        assert!(!keys.contains(&orphan));

        // Past it: the deleted model's own blobs go, the shared ONNX and the other model's stay.
        let past = Retention {
            models: Duration::ZERO,
            blobs: Duration::ZERO,
        };
        assert_eq!(
            purge(&db, &store, past).await.unwrap(),
            Purged {
                models: 1,
                blobs: 2
            }
        );
        let mut keys = store.keys().await.unwrap();
        keys.sort();
        let mut expected = vec![shared.clone(), made[1].1.clone(), made[1].2.clone()];
        expected.sort();
        assert_eq!(keys, expected);
        let (payload, result): (String, Option<String>) =
            sqlx::query_as("SELECT payload, result FROM jobs WHERE id = $1")
                .bind(&proof)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!((payload.as_str(), result), ("{}", None));
        // Once: a second purge finds nothing, and the kept model is whole.
        assert_eq!(purge(&db, &store, past).await.unwrap(), Purged::default());
        assert_eq!(store.get(&made[1].2).await.unwrap(), b"kept proving key");
        // A blob stored again is young: the default retention keeps it (two hours at least).
        let again = store.put(b"nothing refers to me".to_vec()).await.unwrap();
        assert_eq!(again, orphan);
        let default = Retention::new(Duration::ZERO);
        assert_eq!(
            purge(&db, &store, default).await.unwrap(),
            Purged::default()
        );
        assert!(store.keys().await.unwrap().contains(&orphan));
    }
}
