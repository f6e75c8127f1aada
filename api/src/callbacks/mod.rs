//! Callbacks: when a job with a `callback_url` ends, its JSON is POSTed there, signed with
//! the tenant's secret: `X-Zkinfer-Signature: t=UNIX_SECONDS,v1=HEX`, HEX the HMAC-SHA256 of
//! `"{t}.{body}"`. The time is signed with the body, so a receiver that refuses a `t` more
//! than [`REPLAY_WINDOW_SECS`] from its clock (and deduplicates by job id within it) cannot be
//! replayed an old delivery. A model's setup job is its model's webhook: it ends when the
//! model becomes ready, fails or is deleted first (`X-Zkinfer-Event: model.ready`,
//! `model.failed`, `model.deleted`; other jobs `job.succeeded`, `job.failed`, `job.cancelled`).
//!
//! Deliveries are durable: a job's end marks its callback due in the database; dispatchers in
//! any process (`serve` or `worker`) claim due deliveries under a lease, POST them, record
//! the attempt, and on failure schedule the next one with exponential backoff until the
//! attempts are used up. Delivery is at least once: a receiver deduplicates by job id.
//! Several deliveries run at once, and no tenant holds more than a few of them (across every
//! process), so a tenant's slow endpoint delays only its own callbacks.
//!
//! A callback URL is a request the server makes on a client's behalf, so loopback, private,
//! link-local (cloud metadata) and other non-public addresses are refused unless the service
//! runs with `--allow-private-callbacks`: at submission (a clear 422) and again when
//! connecting (a name is resolved by a resolver that drops such addresses, so a name that
//! changes its address between the two checks still cannot reach them). Redirects are not
//! followed.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::Row;
use tokio::sync::watch;

use crate::db::{now_ms, Backend, Db};
use crate::error::{Error, Result};
use crate::queue;
use crate::tenants;

mod targets;

use targets::{check_literal, PublicOnly};
pub use targets::{check_target, is_public, Refused};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-zkinfer-signature";

/// The header that names what happened.
pub const EVENT_HEADER: &str = "x-zkinfer-event";

/// How far from its own clock a receiver should accept a signature's time, in seconds. A
/// retry is signed anew, so the window bounds replays, not backoff.
pub const REPLAY_WINDOW_SECS: i64 = 300;

/// How callbacks are delivered.
#[derive(Clone, Debug)]
pub struct CallbackPolicy {
    /// Whether loopback and private addresses may be targets (tests, closed networks).
    pub allow_private: bool,
    /// Deliveries tried before giving up.
    pub max_attempts: i64,
    /// The wait after the first failed attempt; it doubles after each, up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// How long one POST may take.
    pub timeout: Duration,
    /// Deliveries one dispatcher makes at once.
    pub concurrency: usize,
    /// Deliveries of one tenant in flight at once, across every dispatcher.
    pub per_tenant: i64,
}

impl Default for CallbackPolicy {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_attempts: 8,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            concurrency: 8,
            per_tenant: 2,
        }
    }
}

impl CallbackPolicy {
    /// The wait after failed attempt `n` (from 1).
    pub fn delay(&self, n: i64) -> Duration {
        let factor = 1u32 << (n - 1).clamp(0, 20);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// `t=T,v1=HEX`: HEX the HMAC-SHA256 of `"{t}.{body}"` keyed by `secret` (the secret as
/// `keys create` prints it, its ASCII bytes), `t` in seconds since the Unix epoch.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver does with a delivery: true if `header` signs `body` with `secret` at a
/// time within [`REPLAY_WINDOW_SECS`] of `now` (seconds). Compares in constant time.
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if now.abs_diff(t) > REPLAY_WINDOW_SECS.unsigned_abs() {
        return false;
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

/// The HTTP client deliveries use.
pub fn client(policy: &CallbackPolicy) -> Result<reqwest::Client> {
    // No proxy: a proxy would resolve host names itself, past the public-only resolver.
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(policy.timeout)
        .user_agent(concat!("zkinfer/", env!("CARGO_PKG_VERSION")));
    if !policy.allow_private {
        b = b.dns_resolver(Arc::new(PublicOnly));
    }
    b.build()
        .map_err(|e| Error::Config(format!("callback client: {e}")))
}

/// A delivery a dispatcher holds.
#[derive(Clone, Debug)]
struct Due {
    job_id: String,
    tenant_id: String,
    url: String,
    /// Attempts made before this one.
    attempts: i64,
}

/// Claims the delivery due longest of a tenant with fewer than `per_tenant` in flight,
/// leased to `holder` for `lease_ms`.
async fn claim(db: &Db, holder: &str, lease_ms: i64, per_tenant: i64) -> Result<Option<Due>> {
    // Claims are made one at a time (SQLite has one writer; PostgreSQL takes a lock for the
    // transaction), so the per-tenant count a claim reads includes every earlier claim.
    let mut tx = db.pool.begin().await?;
    if db.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7007001)")
            .execute(&mut *tx)
            .await?;
    }
    let now = now_ms();
    // One statement for both backends: serialised claims need no row locks to skip. The
    // outer state check keeps a delivery recorded meanwhile (its lease had run out) unclaimed.
    let row = sqlx::query(
        "UPDATE jobs SET callback_holder = $1, callback_lease_until_ms = $2 \
         WHERE id = (SELECT id FROM jobs WHERE callback_state = 'pending' \
         AND callback_next_ms <= $3 \
         AND (callback_lease_until_ms IS NULL OR callback_lease_until_ms < $3) \
         AND (SELECT COUNT(*) FROM jobs busy WHERE busy.tenant_id = jobs.tenant_id \
              AND busy.callback_state = 'pending' AND busy.callback_lease_until_ms >= $3) < $4 \
         ORDER BY callback_next_ms, id LIMIT 1) AND callback_state = 'pending' \
         RETURNING id, tenant_id, callback_url, CAST(callback_attempts AS BIGINT)",
    )
    .bind(holder)
    .bind(now + lease_ms)
    .bind(now)
    .bind(per_tenant)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    row.map(|r| {
        Ok(Due {
            job_id: r.try_get(0)?,
            tenant_id: r.try_get(1)?,
            url: r.try_get(2)?,
            attempts: r.try_get(3)?,
        })
    })
    .transpose()
}

/// Records attempt `due.attempts + 1` and what follows: delivered, retried later, or failed.
async fn record(
    db: &Db,
    holder: &str,
    due: &Due,
    policy: &CallbackPolicy,
    status_code: Option<u16>,
    error: Option<&str>,
) -> Result<()> {
    let attempt = due.attempts + 1;
    let now = now_ms();
    let delivered = error.is_none();
    let (state, next) = if delivered {
        ("delivered", None)
    } else if attempt >= policy.max_attempts {
        ("failed", None)
    } else {
        (
            "pending",
            Some(now + policy.delay(attempt).as_millis() as i64),
        )
    };
    let updated = sqlx::query(
        "UPDATE jobs SET callback_state = $1, callback_attempts = $2, callback_next_ms = $3, \
         callback_holder = NULL, callback_lease_until_ms = NULL \
         WHERE id = $4 AND callback_holder = $5",
    )
    .bind(state)
    .bind(attempt)
    .bind(next)
    .bind(&due.job_id)
    .bind(holder)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if updated == 1 {
        sqlx::query(
            "INSERT INTO callback_attempts (job_id, attempt, at_ms, status_code, error) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&due.job_id)
        .bind(attempt)
        .bind(now)
        .bind(status_code.map(i64::from))
        .bind(error)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// The callback of job `id` as clients see it: its URL, state and every attempt.
pub async fn describe(db: &Db, id: &str, url: &str, state: Option<&str>) -> Result<Value> {
    let rows = sqlx::query(
        "SELECT CAST(attempt AS BIGINT), at_ms, CAST(status_code AS BIGINT), error \
         FROM callback_attempts WHERE job_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    let attempts = rows
        .iter()
        .map(|r| {
            Ok(json!({
                "attempt": r.try_get::<i64, _>(0)?,
                "at_ms": r.try_get::<i64, _>(1)?,
                "status_code": r.try_get::<Option<i64>, _>(2)?,
                "error": r.try_get::<Option<String>, _>(3)?,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({ "url": url, "state": state, "attempts": attempts }))
}

/// POSTs `body` to `url`; the HTTP status, or why nothing came back.
async fn post(
    client: &reqwest::Client,
    policy: &CallbackPolicy,
    due: &Due,
    body: Vec<u8>,
    signature: String,
    event: &str,
) -> (Option<u16>, Option<String>) {
    // A literal address never reaches the resolver: check it here.
    if !policy.allow_private {
        if let Err(Refused(why)) = check_literal(&due.url) {
            return (None, Some(why));
        }
    }
    let sent = client
        .post(&due.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_HEADER, event)
        .header("x-zkinfer-job", &due.job_id)
        .header("x-zkinfer-attempt", (due.attempts + 1).to_string())
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
        Ok(r) => (
            Some(r.status().as_u16()),
            Some(format!("answered {}", r.status())),
        ),
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            (None, Some(msg))
        }
    }
}

/// Makes one due delivery, if any; true if there was one.
pub async fn deliver_one(
    db: &Db,
    client: &reqwest::Client,
    holder: &str,
    policy: &CallbackPolicy,
) -> Result<bool> {
    let lease_ms = (policy.timeout.as_millis() as i64) * 3;
    let Some(due) = claim(db, holder, lease_ms, policy.per_tenant).await? else {
        return Ok(false);
    };
    let job = queue::get(db, &due.tenant_id, &due.job_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("job {}", due.job_id)))?;
    let body = serde_json::to_vec(&job.to_json()).expect("JSON values serialise");
    let secret = tenants::callback_secret(db, &due.tenant_id).await?;
    let sig = signature(&secret, now_ms() / 1000, &body);
    let (status, error) = post(client, policy, &due, body, sig, &event(&job)).await;
    match &error {
        None => tracing::info!(job = %due.job_id, "callback delivered"),
        Some(e) => tracing::warn!(job = %due.job_id, attempt = due.attempts + 1, "callback: {e}"),
    }
    record(db, holder, &due, policy, status, error.as_deref()).await?;
    Ok(true)
}

/// What a job's end means to its receiver.
fn event(job: &queue::JobRow) -> String {
    match (job.kind.as_str(), job.status.as_str()) {
        ("setup", "succeeded") => "model.ready".into(),
        ("setup", "failed") => "model.failed".into(),
        // A setup job is cancelled only by deleting its model.
        ("setup", _) => "model.deleted".into(),
        (_, status) => format!("job.{status}"),
    }
}

/// Delivers due callbacks, `policy.concurrency` at once, until `stop` turns true.
pub async fn run(db: Db, holder: String, policy: CallbackPolicy, stop: watch::Receiver<bool>) {
    let client = match client(&policy) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("callbacks disabled: {e}");
            return;
        }
    };
    let lanes = (0..policy.concurrency.max(1)).map(|i| {
        lane(
            db.clone(),
            client.clone(),
            format!("{holder}-{i}"),
            policy.clone(),
            stop.clone(),
        )
    });
    futures_util::future::join_all(lanes).await;
}

/// One delivery at a time, until `stop` turns true.
async fn lane(
    db: Db,
    client: reqwest::Client,
    holder: String,
    policy: CallbackPolicy,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        match deliver_one(&db, &client, &holder, &policy).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!("callbacks: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_time_and_body() {
        // Python's hmac.new(b"Jefe", b"1700000000.what do ya want for nothing?", sha256).
        let body = b"what do ya want for nothing?";
        let sig = signature("Jefe", 1_700_000_000, body);
        assert_eq!(
            sig,
            "t=1700000000,v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"
        );
        let now = 1_700_000_000;
        assert!(verify_signature("Jefe", &sig, body, now));
        assert!(verify_signature(
            "Jefe",
            &sig,
            body,
            now + REPLAY_WINDOW_SECS
        ));
        // Too old (a replay), another secret, another body, another time, no time, garbage.
        assert!(!verify_signature(
            "Jefe",
            &sig,
            body,
            now + REPLAY_WINDOW_SECS + 1
        ));
        assert!(!verify_signature("jefe", &sig, body, now));
        assert!(!verify_signature(
            "Jefe",
            &sig,
            b"what do ya want for nothing!",
            now
        ));
        let moved = sig.replace("t=1700000000", "t=1700000001");
        assert!(!verify_signature("Jefe", &moved, body, now));
        let untimed = sig.replace("t=1700000000,", "");
        assert!(!verify_signature("Jefe", &untimed, body, now));
        assert!(!verify_signature("Jefe", "sha256=00", body, now));
        // A time at the end of the range is out of the window, not an overflow.
        let extreme = sig.replace("t=1700000000", &format!("t={}", i64::MIN));
        assert!(!verify_signature("Jefe", &extreme, body, now));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = CallbackPolicy {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..Default::default()
        };
        let d: Vec<u128> = (1..=5).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 500, 500]);
    }
}
