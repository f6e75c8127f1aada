//! Proving keys a worker process keeps loaded, most recently used last.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Mutex;
use zkinfer_prover::pipeline::Prover;

/// Loaded provers (proving key and SRS) per model, most recently used last, within a budget
/// of proving-key bytes; the newest is kept even if it alone exceeds the budget. Behind it,
/// each worker's disk cache of compiled folders, and behind that the store.
pub struct KeyCache {
    budget: usize,
    entries: std::sync::Mutex<VecDeque<(String, Arc<Prover>)>>,
    /// One load at a time, so two loops missing the same model load it once.
    pub(crate) loading: Mutex<()>,
    /// FHE server keys loaded for encrypted runs.
    pub fhe: crate::fhe::ServerKeys,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let models: Vec<String> = self.lock().iter().map(|(m, _)| m.clone()).collect();
        f.debug_struct("KeyCache")
            .field("budget", &self.budget)
            .field("models", &models)
            .finish()
    }
}

impl KeyCache {
    /// A cache holding up to `budget` bytes of proving keys.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            entries: Default::default(),
            loading: Mutex::new(()),
            fhe: crate::fhe::ServerKeys::new(FHE_KEYS_LOADED),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Arc<Prover>)>> {
        // A panic while holding this lock leaves the list consistent: keep using it.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The prover of `model_id`, if loaded.
    pub fn get(&self, model_id: &str) -> Option<Arc<Prover>> {
        let mut e = self.lock();
        let i = e.iter().position(|(m, _)| m == model_id)?;
        let entry = e.remove(i)?;
        let p = entry.1.clone();
        e.push_back(entry);
        Some(p)
    }

    /// Holds `p` as `model_id`'s prover, dropping the least recently used beyond the budget.
    pub fn insert(&self, model_id: &str, p: Arc<Prover>) {
        let mut e = self.lock();
        e.retain(|(m, _)| m != model_id);
        e.push_back((model_id.to_string(), p));
        while e.len() > 1 && e.iter().map(|(_, p)| p.pk_bytes()).sum::<usize>() > self.budget {
            e.pop_front();
        }
    }

    /// Models loaded, least recently used first.
    pub fn models(&self) -> Vec<String> {
        self.lock().iter().map(|(m, _)| m.clone()).collect()
    }
}

/// FHE server keys a worker process keeps loaded (a decompressed m3c3 key is hundreds of MB).
const FHE_KEYS_LOADED: usize = 2;
