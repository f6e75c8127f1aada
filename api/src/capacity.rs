//! The memory a process's worker loops share: a loop claims only a job whose estimated
//! memory fits what the jobs in hand leave free.

use std::sync::Arc;

use tokio::sync::Mutex;

/// The memory the worker loops of one process may give their jobs, and what the jobs in
/// hand hold of it: a loop claims only a job whose estimate fits what is free.
#[derive(Debug)]
pub struct Capacity {
    limit: u64,
    used: std::sync::Mutex<u64>,
    /// One claim at a time, so two loops never both count the same free memory.
    pub(crate) claiming: Mutex<()>,
}

impl Capacity {
    /// `limit` bytes to share.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: std::sync::Mutex::new(0),
            claiming: Mutex::new(()),
        }
    }

    /// The bytes to share.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn used(&self) -> std::sync::MutexGuard<'_, u64> {
        // A plain counter: a panic elsewhere cannot leave it inconsistent.
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes not held by a job in hand.
    pub fn free(&self) -> u64 {
        self.limit.saturating_sub(*self.used())
    }

    pub(crate) fn reserve(self: &Arc<Self>, bytes: u64) -> Reservation {
        *self.used() += bytes;
        Reservation {
            capacity: self.clone(),
            bytes: std::sync::Mutex::new(bytes),
        }
    }
}

/// Memory a job in hand holds, given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    capacity: Arc<Capacity>,
    bytes: std::sync::Mutex<u64>,
}

impl Reservation {
    /// Holds `bytes` in all if the process has that much beside its other jobs; false
    /// (holding what it held) if not.
    pub(crate) fn grow_to(&self, bytes: u64) -> bool {
        let mut held = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let mut used = self.capacity.used();
        let others = used.saturating_sub(*held);
        if others.saturating_add(bytes) > self.capacity.limit {
            return false;
        }
        *used = others + bytes;
        *held = bytes;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let held = *self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let mut used = self.capacity.used();
        *used = used.saturating_sub(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_limit_and_give_back_when_dropped() {
        let c = Arc::new(Capacity::new(100));
        let a = c.reserve(60);
        assert_eq!(c.free(), 40);
        let b = c.reserve(0);
        assert!(!b.grow_to(41), "more than is free beside a");
        assert_eq!(c.free(), 40);
        assert!(b.grow_to(40));
        assert_eq!(c.free(), 0);
        assert!(a.grow_to(30), "shrinking always fits");
        assert_eq!(c.free(), 30);
        drop(a);
        assert_eq!(c.free(), 60);
        drop(b);
        assert_eq!(c.free(), 100);
    }
}
