//! Tenants and their API keys. A key is shown once, when made; the database holds only its
//! sha256 (keys are 256-bit random strings, so a plain hash suffices: there is nothing to
//! guess that a slow hash would protect).

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{new_id, now_ms, Db};
use crate::error::Result;

/// A new key for a tenant.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// The tenant's id.
    pub tenant_id: String,
    /// The tenant's secret for signing callbacks (HMAC-SHA256).
    pub callback_secret: String,
    /// The key's id (`ak_…`), which lists and revokes it: not a secret.
    pub key_id: String,
    /// The API key, `zk_` and 64 hex digits: shown once.
    pub key: String,
}

/// A key as `keys list` shows it (never the key itself: only its hash is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its id.
    pub id: String,
    /// Its tenant's name.
    pub tenant: String,
    /// When it was made, when it expires (if it does) and when it was revoked (if it was), in
    /// ms since the epoch.
    pub created_ms: i64,
    /// See `created_ms`.
    pub expires_ms: Option<i64>,
    /// See `created_ms`.
    pub revoked_ms: Option<i64>,
}

impl KeyInfo {
    /// `live`, `expired` or `revoked`, at `now` (ms).
    pub fn state(&self, now: i64) -> &'static str {
        if self.revoked_ms.is_some() {
            "revoked"
        } else if self.expires_ms.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "live"
        }
    }
}

/// Why a key does not authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such key.
    Unknown,
    /// Revoked by the operator.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl Refused {
    /// The message a caller gets (only the key's holder can learn a key's state, so saying it
    /// tells nothing to anyone else).
    pub fn message(self) -> &'static str {
        match self {
            Refused::Unknown => "unknown API key",
            Refused::Revoked => "this API key was revoked",
            Refused::Expired => "this API key has expired",
        }
    }
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Makes a key for tenant `name`, creating the tenant (and its callback secret) if it is new.
pub async fn create_key(db: &Db, name: &str) -> Result<NewKey> {
    create_key_expiring(db, name, None).await
}

/// [`create_key`], the key expiring at `expires_ms` (ms since the epoch) if given.
pub async fn create_key_expiring(db: &Db, name: &str, expires_ms: Option<i64>) -> Result<NewKey> {
    // Insert-if-absent first, then read: no read-then-write transaction, which SQLite would
    // refuse (busy) when another connection writes in between.
    sqlx::query(
        "INSERT INTO tenants (id, name, callback_secret, created_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(new_id("tn"))
    .bind(name)
    .bind(hex::encode(rand::random::<[u8; 32]>()))
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    let row = sqlx::query("SELECT id, callback_secret FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    let (tenant_id, callback_secret): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    let key = format!("zk_{}", hex::encode(rand::random::<[u8; 32]>()));
    let key_id = format!("ak_{}", hex::encode(rand::random::<[u8; 8]>()));
    sqlx::query(
        "INSERT INTO api_keys (key_hash, tenant_id, created_ms, id, expires_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key_hash(&key))
    .bind(&tenant_id)
    .bind(now_ms())
    .bind(&key_id)
    .bind(expires_ms)
    .execute(&db.pool)
    .await?;
    Ok(NewKey {
        tenant_id,
        callback_secret,
        key_id,
        key,
    })
}

/// The tenant a key belongs to, or why it does not authenticate.
pub async fn authenticate(db: &Db, key: &str) -> Result<std::result::Result<String, Refused>> {
    let row =
        sqlx::query("SELECT tenant_id, revoked_ms, expires_ms FROM api_keys WHERE key_hash = $1")
            .bind(key_hash(key))
            .fetch_optional(&db.pool)
            .await?;
    let Some(r) = row else {
        return Ok(Err(Refused::Unknown));
    };
    let (tenant, revoked, expires): (String, Option<i64>, Option<i64>) =
        (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    Ok(if revoked.is_some() {
        Err(Refused::Revoked)
    } else if expires.is_some_and(|e| e <= now_ms()) {
        Err(Refused::Expired)
    } else {
        Ok(tenant)
    })
}

/// Every key, or tenant `name`'s, oldest first.
pub async fn list_keys(db: &Db, name: Option<&str>) -> Result<Vec<KeyInfo>> {
    let rows = sqlx::query(
        "SELECT k.id, t.name, k.created_ms, k.expires_ms, k.revoked_ms \
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
         WHERE ($1 IS NULL OR t.name = $1) ORDER BY k.created_ms, k.id",
    )
    .bind(name)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(KeyInfo {
                id: r.try_get(0)?,
                tenant: r.try_get(1)?,
                created_ms: r.try_get(2)?,
                expires_ms: r.try_get(3)?,
                revoked_ms: r.try_get(4)?,
            })
        })
        .collect()
}

/// Revokes key `id` at once; false if there is no such key or it was already revoked.
pub async fn revoke_key(db: &Db, id: &str) -> Result<bool> {
    let r = sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Makes a new key for tenant `name` and has its other live keys expire `grace_ms` from now
/// (sooner if they already would), so its clients can move to the new key without a gap.
/// Fails if the tenant does not exist (rotation never creates one).
pub async fn rotate_key(
    db: &Db,
    name: &str,
    grace_ms: i64,
    expires_ms: Option<i64>,
) -> Result<Option<(NewKey, u64)>> {
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?;
    let Some(tenant_id) = exists else {
        return Ok(None);
    };
    let until = now_ms().saturating_add(grace_ms.max(0));
    let old = sqlx::query(
        "UPDATE api_keys SET expires_ms = $1 WHERE tenant_id = $2 AND revoked_ms IS NULL \
         AND (expires_ms IS NULL OR expires_ms > $1)",
    )
    .bind(until)
    .bind(&tenant_id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    let key = create_key_expiring(db, name, expires_ms).await?;
    Ok(Some((key, old)))
}

/// The secret that signs tenant `tenant_id`'s callbacks.
pub async fn callback_secret(db: &Db, tenant_id: &str) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT callback_secret FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_one(&db.pool)
            .await?,
    )
}
