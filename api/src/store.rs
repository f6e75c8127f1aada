//! The artifact store: content-addressed blobs (ONNX files, compiled folders, keys, proofs)
//! behind the `object_store` crate, so a local directory and a bucket shared by several
//! machines are the same code. A blob's key is `sha256/<hex of its bytes>`, checked on read.

use std::path::Path;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::db::now_ms;
use crate::error::{Error, Result};

/// A blob older than this is stored anew when put again (see [`Store::put`]).
pub const REFRESH_AFTER_MS: i64 = 3_600_000;

/// A content-addressed store.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// Where it is, for messages.
    pub location: String,
}

impl Store {
    /// The store at `url` (`file:///abs/path`, or `s3://bucket[/prefix]` configured by the
    /// process's `AWS_*` variables), or `DATA_DIR/store` without one.
    pub fn open(url: Option<&str>, data_dir: &Path) -> Result<Self> {
        let dir = match url {
            None => data_dir.join("store"),
            Some(u) if u.starts_with("s3://") => return Self::s3(u, std::env::vars()),
            Some(u) => match u.strip_prefix("file://") {
                Some(path) if path.starts_with('/') => path.into(),
                _ => {
                    return Err(Error::Config(format!(
                    "unsupported store URL {u:?}: use file:///absolute/path or s3://bucket/prefix"
                )))
                }
            },
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(&dir)?;
        Ok(Self {
            inner: Arc::new(fs),
            location: format!("file://{}", dir.display()),
        })
    }

    /// An S3-compatible bucket: `s3://bucket[/prefix]`, configured by the `AWS_*` entries of
    /// `env` (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for
    /// MinIO and the like, `AWS_ALLOW_HTTP`), as the AWS tools read them.
    pub fn s3(url: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let rest = url.strip_prefix("s3://").unwrap_or_default();
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Config(format!("store URL {url:?} names no bucket")));
        }
        let mut b = AmazonS3Builder::new().with_bucket_name(bucket);
        for (k, v) in env {
            if k.starts_with("AWS_") {
                if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
        }
        let s3 = b.build()?;
        let prefix = prefix.trim_matches('/');
        let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self {
            inner,
            location: url.to_string(),
        })
    }

    /// Stores `bytes` (a `Vec` or shared `Bytes`, never copied); returns their key.
    pub async fn put(&self, bytes: impl Into<axum::body::Bytes>) -> Result<String> {
        let bytes: axum::body::Bytes = bytes.into();
        let key = format!("sha256/{}", hex::encode(Sha256::digest(&bytes)));
        let path = ObjectPath::from(key.as_str());
        // Same key, same bytes: an existing blob is left as it is, unless it is old enough
        // that retention's sweep could be deleting it as unreferenced: then it is stored
        // anew, which makes it young again (see `crate::retention`).
        let fresh = match self.inner.head(&path).await {
            Ok(meta) => now_ms() - meta.last_modified.timestamp_millis() < REFRESH_AFTER_MS,
            Err(_) => false,
        };
        if !fresh {
            self.inner.put(&path, bytes.into()).await?;
        }
        Ok(key)
    }

    /// Every blob's key and when it was last stored (ms since the epoch).
    pub async fn list_aged(&self) -> Result<Vec<(String, i64)>> {
        use futures_util::TryStreamExt;
        let list: Vec<_> = self.inner.list(None).try_collect().await?;
        Ok(list
            .into_iter()
            .map(|m| (m.location.to_string(), m.last_modified.timestamp_millis()))
            .collect())
    }

    /// Deletes blob `key` if it was last stored before `cutoff_ms`; false if it is younger
    /// (stored again since it was listed) or gone.
    pub async fn delete_if_older(&self, key: &str, cutoff_ms: i64) -> Result<bool> {
        let path = ObjectPath::from(key);
        match self.inner.head(&path).await {
            Ok(meta) if meta.last_modified.timestamp_millis() < cutoff_ms => {
                self.inner.delete(&path).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The bytes stored under `key`, checked against it.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let bytes = self
            .inner
            .get(&ObjectPath::from(key))
            .await?
            .bytes()
            .await?
            .to_vec();
        if key != format!("sha256/{}", hex::encode(Sha256::digest(&bytes))) {
            return Err(Error::Corrupt(key.to_string()));
        }
        Ok(bytes)
    }

    /// Every key in the store (tests and maintenance).
    pub async fn keys(&self) -> Result<Vec<String>> {
        use futures_util::TryStreamExt;
        let list: Vec<_> = self.inner.list(None).try_collect().await?;
        Ok(list.into_iter().map(|m| m.location.to_string()).collect())
    }
}
