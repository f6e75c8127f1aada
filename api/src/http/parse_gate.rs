//! Model uploads are parsed a few at a time, and each tenant only a couple at once: parsing
//! is CPU and memory on the request path, and one tenant's flood must not hold the others'
//! uploads behind it. Past its share a tenant gets 429 with `Retry-After`; past the pool,
//! uploads wait their turn (tokio's semaphore is first come, first served).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;

/// What a tenant over its share is told to wait.
const RETRY_SECS: u64 = 2;

/// The parsing pool.
#[derive(Debug)]
pub struct ParseGate {
    what: &'static str,
    pool: Arc<Semaphore>,
    per_tenant: usize,
    busy: std::sync::Mutex<HashMap<String, usize>>,
}

/// A place in the pool, held while one upload is parsed.
#[derive(Debug)]
pub struct ParsePermit {
    _share: Share,
    _slot: OwnedSemaphorePermit,
}

/// One of a tenant's places, counted from before it waits for the pool (so a tenant cannot
/// queue more than its share either) until dropped, even if the request is dropped while
/// it waits.
#[derive(Debug)]
struct Share {
    gate: Arc<ParseGate>,
    tenant: String,
}

impl ParseGate {
    /// A pool of `total` requests (`what`, plural, for the 429) at once, at most
    /// `per_tenant` of them one tenant's.
    pub fn new(what: &'static str, total: usize, per_tenant: usize) -> Self {
        Self {
            what,
            pool: Arc::new(Semaphore::new(total.max(1))),
            per_tenant: per_tenant.max(1),
            busy: Default::default(),
        }
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // Counts only: a panic elsewhere cannot leave the map inconsistent.
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a place for `tenant`; 429 if the tenant already has its share.
    pub async fn enter(self: &Arc<Self>, tenant: &str) -> Result<ParsePermit, ApiError> {
        {
            let mut busy = self.busy();
            let n = busy.entry(tenant.to_string()).or_default();
            if *n >= self.per_tenant {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_uploads",
                    format!(
                        "at most {} {} per tenant at once",
                        self.per_tenant, self.what
                    ),
                )
                .retry_after(RETRY_SECS));
            }
            *n += 1;
        }
        let share = Share {
            gate: self.clone(),
            tenant: tenant.to_string(),
        };
        let slot = self.pool.clone().acquire_owned().await.map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the service is stopping",
            )
        })?;
        Ok(ParsePermit {
            _share: share,
            _slot: slot,
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut busy = self.gate.busy();
        if let Some(n) = busy.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_past_its_share_is_told_to_retry_and_others_still_get_in() {
        let gate = Arc::new(ParseGate::new("model uploads parsed", 3, 2));
        let a1 = gate.enter("a").await.unwrap();
        let _a2 = gate.enter("a").await.unwrap();
        let refused = gate.enter("a").await.unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, "too_many_uploads");
        assert_eq!(refused.retry_after, Some(RETRY_SECS));
        let _b = gate.enter("b").await.unwrap();
        // The pool is full: a fourth waits until a place frees.
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter("c").await.map(|_| ()) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(a1);
        waiting.await.unwrap().unwrap();
        // A request dropped while waiting gives its share back.
        let _a3 = gate.enter("a").await.unwrap();
        assert!(gate.enter("a").await.is_err());
        let pending = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter("d").await.map(|_| ()) })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        pending.abort();
        let _ = pending.await;
        assert!(!gate.busy().contains_key("d"));
    }
}
