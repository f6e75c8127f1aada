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
    /// The API key, `zk_` and 64 hex digits: shown once.
    pub key: String,
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Makes a key for tenant `name`, creating the tenant (and its callback secret) if it is new.
pub async fn create_key(db: &Db, name: &str) -> Result<NewKey> {
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
    sqlx::query("INSERT INTO api_keys (key_hash, tenant_id, created_ms) VALUES ($1, $2, $3)")
        .bind(key_hash(&key))
        .bind(&tenant_id)
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    Ok(NewKey {
        tenant_id,
        callback_secret,
        key,
    })
}

/// The tenant a key belongs to, if any.
pub async fn authenticate(db: &Db, key: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT tenant_id FROM api_keys WHERE key_hash = $1")
        .bind(key_hash(key))
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
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
