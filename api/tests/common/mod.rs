//! Shared helpers of the service tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;
use zkinfer_api::ceilings::Ceilings;
use zkinfer_api::store::Store;
use zkinfer_api::worker::{self, Capacity, KeyCache, Stop, WorkerConfig};
use zkinfer_api::Db;

/// A fresh SQLite file and a fresh PostgreSQL database. Without `ZKINFER_TEST_POSTGRES` the
/// tests fail rather than skip PostgreSQL.
pub async fn databases(tmp: &std::path::Path) -> Vec<String> {
    let sqlite = format!("sqlite:{}", tmp.join("zkinfer.db").display());
    let scratch = std::env::var("ZKINFER_TEST_POSTGRES").expect(
        "ZKINFER_TEST_POSTGRES is not set: run scripts/test.sh (it starts PostgreSQL with scripts/postgres.sh)",
    );
    let name = format!("zkinfer_t_{}", hex::encode(rand::random::<[u8; 8]>()));
    // A plain connection, not `Db::connect`: the scratch database only makes databases, and
    // is never migrated (a migration edited since would not match its record there).
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&scratch)
        .await
        .expect("the scratch PostgreSQL database");
    // The name is ours: 16 hex digits after a fixed prefix.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let base = scratch.rsplit_once('/').unwrap().0;
    vec![sqlite, format!("{base}/{name}")]
}

pub const BOUNDARY: &str = "zkinfer-test-boundary";

pub fn multipart(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub struct Client {
    pub app: Router,
    pub key: String,
}

impl Client {
    /// A request; the response's status and JSON body (null if it is not JSON).
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Body,
        ctype: Option<String>,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let (status, bytes) = self.send_raw(method, uri, key, body, ctype, extra).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A request; the response's status and body bytes.
    pub async fn send_raw(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Body,
        ctype: Option<String>,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        for (h, v) in extra {
            req = req.header(*h, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    pub async fn delete(&self, uri: &str) -> (StatusCode, Value) {
        self.send("DELETE", uri, Some(&self.key), Body::empty(), None, &[])
            .await
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send("GET", uri, Some(&self.key), Body::empty(), None, &[])
            .await
    }

    pub async fn post_json(
        &self,
        uri: &str,
        v: &Value,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        self.send(
            "POST",
            uri,
            Some(&self.key),
            Body::from(v.to_string()),
            Some("application/json".into()),
            extra,
        )
        .await
    }

    pub async fn upload(&self, fields: &[(&str, &[u8])]) -> (StatusCode, Value) {
        self.post_form("/v1/models", fields).await
    }

    /// POSTs a multipart form.
    pub async fn post_form(&self, uri: &str, fields: &[(&str, &[u8])]) -> (StatusCode, Value) {
        let ctype = format!("multipart/form-data; boundary={BOUNDARY}");
        self.send(
            "POST",
            uri,
            Some(&self.key),
            Body::from(multipart(fields)),
            Some(ctype),
            &[],
        )
        .await
    }

    /// Polls `uri` until its status is no longer queued or running.
    pub async fn wait(&self, uri: &str) -> Value {
        for _ in 0..600 {
            let (s, v) = self.get(uri).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            if !matches!(v["status"].as_str(), Some("queued" | "running" | "waiting")) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{uri} did not finish");
    }

    /// Uploads a model and waits for its setup, which must succeed; the model's JSON.
    #[allow(dead_code)] // not every test binary uploads
    pub async fn ready(&self, fields: &[(&str, &[u8])]) -> Value {
        let (s, v) = self.upload(fields).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let model = self
            .wait(&format!("/v1/models/{}", v["id"].as_str().unwrap()))
            .await;
        assert_eq!(model["status"], "ready", "{model}");
        model
    }
}

/// A worker task on `db` and `store` (caches under `data_dir/worker`), setting up circuits of
/// at most 2^max_k rows; the sender stops it.
pub fn start_worker(
    db: &Db,
    store: &Store,
    data_dir: &Path,
    max_k: u32,
) -> (watch::Sender<Stop>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(Stop::Run);
    let cfg = WorkerConfig {
        name: "w0".into(),
        data_dir: data_dir.join("worker"),
        srs: None,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(50),
        keys: Arc::new(KeyCache::new(1 << 30)),
        ceilings: Ceilings {
            max_k,
            ..Ceilings::default()
        },
        capacity: Arc::new(Capacity::new(Ceilings::default().max_prove_memory)),
        child: None,
        job_timeout: worker::JOB_TIMEOUT,
        unplaceable_grace: worker::UNPLACEABLE_GRACE,
    };
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    let worker = tokio::spawn(worker::run(db.clone(), store.clone(), cfg, stopped));
    (stop, worker)
}

/// `v` has every field schema `name` of the OpenAPI document requires, and no other field
/// than those it documents.
pub fn conforms(doc: &Value, name: &str, v: &Value) {
    let schema = &doc["components"]["schemas"][name];
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} in the document"));
    for field in v.as_object().unwrap().keys() {
        assert!(props.contains_key(field), "{name} documents {field:?}: {v}");
    }
    for field in schema["required"].as_array().into_iter().flatten() {
        let field = field.as_str().unwrap();
        assert!(v.get(field).is_some(), "{name} requires {field:?}: {v}");
    }
}

pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}
