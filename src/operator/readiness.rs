//! Readiness: the operator is ready once every watch cache has completed its first list
//! (linkerd's rule: never act on, nor report ready with, a partial view).
//!
//! Each cache marks itself from its own watch stream (the `InitDone` event) instead of
//! awaiting `Store::wait_until_ready`: that future keeps a single waker per store, and the
//! controller already awaits the policy store, so a second waiter on it could sleep forever
//! and leave `/readyz` failing on a working operator.

use std::sync::{Arc, Mutex, PoisonError};

/// Which caches have listed their objects at least once.
#[derive(Debug, Default)]
pub struct CacheSync {
    caches: Mutex<Vec<Cache>>,
}

#[derive(Debug)]
struct Cache {
    kind: &'static str,
    synced: bool,
}

/// The handle one cache marks itself synced with.
#[derive(Debug, Clone)]
pub struct CacheSynced {
    sync: Arc<CacheSync>,
    index: usize,
}

impl CacheSync {
    /// Adds a cache for `kind` that must list before the operator is ready.
    pub fn register(self: &Arc<Self>, kind: &'static str) -> CacheSynced {
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        caches.push(Cache {
            kind,
            synced: false,
        });
        CacheSynced {
            sync: self.clone(),
            index: caches.len() - 1,
        }
    }

    /// The kinds whose caches have not listed yet, in registration order.
    pub fn pending(&self) -> Vec<&'static str> {
        self.caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|cache| !cache.synced)
            .map(|cache| cache.kind)
            .collect()
    }

    /// Whether every registered cache has listed (false while none is registered).
    pub fn is_synced(&self) -> bool {
        let caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        !caches.is_empty() && caches.iter().all(|cache| cache.synced)
    }
}

impl CacheSynced {
    /// Records that the cache has completed a list. Later re-lists change nothing.
    pub fn mark(&self) {
        let all_synced = {
            let mut caches = self
                .sync
                .caches
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(cache) = caches.get_mut(self.index) else {
                return;
            };
            if cache.synced {
                return;
            }
            cache.synced = true;
            tracing::debug!(kind = cache.kind, "cache synced");
            caches.iter().all(|cache| cache.synced)
        };
        if all_synced {
            tracing::info!("caches synced; ready");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_cache_has_listed() {
        let sync = Arc::new(CacheSync::default());
        assert!(!sync.is_synced(), "nothing registered is not ready");
        let policies = sync.register("PatchPolicy");
        let assets = sync.register("Asset");
        assert_eq!(sync.pending(), ["PatchPolicy", "Asset"]);

        assets.mark();
        assert!(!sync.is_synced());
        assert_eq!(sync.pending(), ["PatchPolicy"]);

        policies.mark();
        assets.mark();
        assert!(sync.is_synced());
        assert!(sync.pending().is_empty());
    }
}
