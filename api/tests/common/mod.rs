//! Shared helpers of the service tests.
#![allow(dead_code)]

use zkinfer_api::Db;

/// A fresh SQLite file and a fresh PostgreSQL database. Without `ZKINFER_TEST_POSTGRES` the
/// tests fail rather than skip PostgreSQL.
pub async fn databases(tmp: &std::path::Path) -> Vec<String> {
    let sqlite = format!("sqlite:{}", tmp.join("zkinfer.db").display());
    let scratch = std::env::var("ZKINFER_TEST_POSTGRES").expect(
        "ZKINFER_TEST_POSTGRES is not set: run scripts/test.sh (it starts PostgreSQL with scripts/postgres.sh)",
    );
    let name = format!("zkinfer_t_{}", hex::encode(rand::random::<[u8; 8]>()));
    let admin = Db::connect(&scratch)
        .await
        .expect("the scratch PostgreSQL database");
    // The name is ours: 16 hex digits after a fixed prefix.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin.pool)
        .await
        .unwrap();
    let base = scratch.rsplit_once('/').unwrap().0;
    vec![sqlite, format!("{base}/{name}")]
}
