//! A small least-recently-used map of shared values by name, bounded by count: the server
//! keys a worker keeps loaded, the verifier folders the HTTP side keeps open. A handful of
//! entries, so a list scanned in order is simpler and as fast as a linked hash map.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Up to `capacity` values, most recently used last.
pub struct Lru<T> {
    capacity: usize,
    entries: Mutex<VecDeque<(String, Arc<T>)>>,
}

impl<T> Lru<T> {
    /// Room for `capacity` values (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(String, Arc<T>)>> {
        // A panic while holding this lock leaves the list consistent: keep using it.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value named `name`, now the most recently used.
    pub fn get(&self, name: &str) -> Option<Arc<T>> {
        let mut e = self.lock();
        let i = e.iter().position(|(n, _)| n == name)?;
        let entry = e.remove(i)?;
        let v = entry.1.clone();
        e.push_back(entry);
        Some(v)
    }

    /// Holds `value` as `name`, dropping the least recently used beyond the capacity.
    pub fn insert(&self, name: &str, value: Arc<T>) {
        let mut e = self.lock();
        e.retain(|(n, _)| n != name);
        e.push_back((name.to_string(), value));
        while e.len() > self.capacity {
            e.pop_front();
        }
    }

    /// The names held, least recently used first.
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|(n, _)| n.clone()).collect()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_goes_first() {
        let l = Lru::new(2);
        l.insert("a", Arc::new(1));
        l.insert("b", Arc::new(2));
        assert_eq!(l.get("a").as_deref(), Some(&1));
        l.insert("c", Arc::new(3));
        assert_eq!(l.names(), ["a", "c"]);
        assert!(l.get("b").is_none());
        l.insert("a", Arc::new(4));
        assert_eq!(l.names(), ["c", "a"]);
        assert_eq!(l.get("a").as_deref(), Some(&4));
    }
}
