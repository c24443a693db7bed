//! Read-your-writes on top of the watch caches.
//!
//! A reflector sees the operator's own writes a moment later. Deciding on the older copy could
//! hand out one operation too many (the in-flight count would miss the one just written), so
//! every object the operator writes is kept here until the cache has caught up with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::ResourceExt;

/// The objects written by this operator that the cache may not show yet.
pub struct Fresh<K> {
    objects: Mutex<HashMap<(String, String), Arc<K>>>,
}

impl<K> Default for Fresh<K> {
    fn default() -> Self {
        Fresh {
            objects: Mutex::new(HashMap::new()),
        }
    }
}

/// The resourceVersion as a number: opaque by contract, but etcd revisions in practice. An
/// unparsable one makes the cache win, which is the safe side (it is what we had without this).
fn revision<K: ResourceExt>(object: &K) -> Option<u64> {
    object.resource_version()?.parse().ok()
}

impl<K: ResourceExt + Clone> Fresh<K> {
    /// Remembers an object as the API server returned it after a write (without its
    /// managedFields, which the engine never reads).
    pub fn remember(&self, mut object: K) {
        object.meta_mut().managed_fields = None;
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        objects.insert(key, Arc::new(object));
    }

    /// The objects of `namespace`: the cache's, replaced by a newer own write where there is
    /// one, plus own creations the cache has not seen yet. Entries the cache has caught up with
    /// are dropped.
    pub fn merge(&self, namespace: &str, cached: Vec<Arc<K>>) -> Vec<Arc<K>> {
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let mut merged = Vec::with_capacity(cached.len());
        for object in cached {
            let key = (namespace.to_owned(), object.name_any());
            match objects.get(&key) {
                Some(own) if revision(own.as_ref()) > revision(object.as_ref()) => {
                    merged.push(own.clone());
                }
                Some(_) => {
                    objects.remove(&key);
                    merged.push(object);
                }
                None => merged.push(object),
            }
        }
        let seen: std::collections::HashSet<String> = merged.iter().map(|o| o.name_any()).collect();
        for ((ns, name), own) in objects.iter() {
            if ns == namespace && !seen.contains(name) {
                merged.push(own.clone());
            }
        }
        merged
    }

    /// Forgets everything (after losing the lease, another replica writes).
    pub fn clear(&self) {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
