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

/// A model of `upload`, its setup job claimed and finished with `artifacts`.
async fn ready_model(
    db: &Db,
    tenant: &str,
    upload: &serde_json::Value,
    artifacts: serde_json::Value,
) -> String {
    let setup = models::Setup {
        max_attempts: 1,
        ..Default::default()
    };
    let model = models::create_with_setup(db, tenant, upload, &setup)
        .await
        .unwrap();
    let job = queue::claim(db, "w", 60_000, i64::MAX)
        .await
        .unwrap()
        .unwrap();
    let done = json!({ "summary": { "k": 7 }, "artifacts": artifacts });
    assert!(queue::finish_with(
        db,
        &job.id,
        "w",
        &Outcome::Succeeded(done),
        None,
        Some(&model)
    )
    .await
    .unwrap());
    model
}

/// A proof of `model`, claimed by worker "w" (running); returns its job id.
async fn running_proof(db: &Db, tenant: &str, model: &str) -> String {
    let payload = json!({ "input_data": [[0.5]] });
    let Enqueued::New(proof) = queue::enqueue(
        db,
        &NewJob {
            tenant_id: tenant,
            model_id: model,
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
    queue::claim(db, "w", 60_000, i64::MAX)
        .await
        .unwrap()
        .unwrap();
    proof
}

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
            let model = ready_model(&db, &tenant, &upload, json!({ "pk.bin": pk })).await;
            made.push((model, own, pk));
        }
        let orphan = store.put(b"nothing refers to me".to_vec()).await.unwrap();
        // A finished proof of the model to delete: its inputs and result go with it.
        let proof = running_proof(&db, &tenant, &made[0].0).await;
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

/// A process's cached folders of a deleted model go once no job of it is live; a live
/// model's stay, as do fresh scratch folders (fetches in progress); a stale scratch folder
/// and a model the database does not know go.
#[tokio::test]
async fn cached_folders_of_deleted_models_are_removed_once_their_jobs_end() {
    use zkinfer_api::disk_cache::{drop_deleted, scratch_age};
    let day = scratch_age(Duration::from_secs(3600));
    assert_eq!(day, Duration::from_secs(24 * 3600));
    let long = Duration::from_secs(48 * 3600);
    assert_eq!(scratch_age(long), long + Duration::from_secs(3600));
    let tmp = tempfile::tempdir().unwrap();
    for (n, url) in common::databases(tmp.path()).await.into_iter().enumerate() {
        let db = Db::connect(&url).await.unwrap();
        let tenant = tenants::create_key(&db, "t").await.unwrap().tenant_id;
        let mut made = Vec::new();
        for name in ["gone", "kept"] {
            let upload = json!({ "onnx": format!("sha256/{}", name.repeat(16)) });
            made.push(ready_model(&db, &tenant, &upload, json!({})).await);
        }
        let (gone, kept) = (&made[0], &made[1]);
        let dir = tmp.path().join(format!("cache{n}"));
        let cached = |name: &str| dir.join("models").join(name);
        let names = [
            gone.clone(),
            format!("{gone}.segment-1"),
            kept.clone(),
            format!("{kept}.verifier"),
            "md_nobodyknows".to_string(),
            ".tmpold".to_string(),
            ".tmpnew".to_string(),
        ];
        for name in &names {
            std::fs::create_dir_all(cached(name)).unwrap();
            std::fs::write(cached(name).join("pk.bin"), b"key").unwrap();
        }
        // Jobs' work folders beside `models/`: one left by a killed job two days ago.
        for name in [".tmpjobold", ".tmpjobnew"] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
        }
        std::fs::write(dir.join("names"), b"wk_1").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        for path in [cached(".tmpold"), dir.join(".tmpjobold")] {
            std::fs::File::open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        // A proof of the model to delete is running when it is deleted.
        let proof = running_proof(&db, &tenant, gone).await;
        assert!(models::delete(&db, &tenant, gone).await.unwrap());
        let present = || -> Vec<&str> {
            let mut v: Vec<&str> = names
                .iter()
                .map(String::as_str)
                .filter(|n| cached(n).exists())
                .collect();
            v.sort();
            v
        };
        // The running proof may still read its folders: only the unknown model's and the
        // stale scratch folders go.
        assert_eq!(drop_deleted(&db, &dir, day).await.unwrap(), 3);
        assert!(!dir.join(".tmpjobold").exists());
        assert!(dir.join(".tmpjobnew").exists() && dir.join("names").exists());
        let mut expected = vec![
            gone.as_str(),
            &names[1],
            kept.as_str(),
            &names[3],
            ".tmpnew",
        ];
        expected.sort();
        assert_eq!(present(), expected);
        let result = json!({ "proof_file": { "outputs": [[1.0]] } });
        queue::finish(&db, &proof, "w", &Outcome::Succeeded(result))
            .await
            .unwrap();
        assert_eq!(drop_deleted(&db, &dir, day).await.unwrap(), 2);
        let mut expected = vec![kept.as_str(), &names[3], ".tmpnew"];
        expected.sort();
        assert_eq!(present(), expected);
        assert_eq!(drop_deleted(&db, &dir, day).await.unwrap(), 0);
        // A process that has cached nothing yet.
        assert_eq!(
            drop_deleted(&db, &tmp.path().join("none"), day)
                .await
                .unwrap(),
            0
        );
    }
}
