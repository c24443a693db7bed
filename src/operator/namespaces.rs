//! The controller's keys: one per namespace that holds a patchwave object.
//!
//! The operator reconciles a namespace as a whole (one evaluation decides across all its
//! policies), so the controller's primary objects are namespaces, learnt from the objects the
//! caches see and kept in a store of their own. A namespace whose Assets have no PatchPolicy
//! yet still gets its Assets' conditions and its windows' status, and a namespace with three
//! policies is reconciled once per change, not once per policy.
//!
//! The keys are `Namespace` objects made here, not read from the API server: the operator
//! needs no permission on namespaces, and a namespace-scoped operator can run in one.

use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;

/// The namespaces seen so far, as controller keys.
pub struct NamespaceKeys {
    writer: Mutex<reflector::store::Writer<Namespace>>,
    /// What the controller reads; also tells which namespaces are known already.
    store: Store<Namespace>,
}

impl NamespaceKeys {
    /// An empty set of keys and the store the controller reads them from. The store counts as
    /// listed from the start: the reconciler itself waits for the caches (see `reconcile`).
    pub fn new() -> (Store<Namespace>, Arc<Self>) {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let keys = NamespaceKeys {
            writer: Mutex::new(writer),
            store: store.clone(),
        };
        (store, Arc::new(keys))
    }

    /// The key of `namespace`, added to the store the first time it is seen; `None` for an
    /// object without a namespace (none of the watched kinds has one).
    pub fn key(&self, namespace: Option<String>) -> Option<ObjectRef<Namespace>> {
        let namespace = namespace?;
        Some(self.remember(&namespace))
    }

    /// The key object of `namespace`, added to the store if new: what the controller's
    /// primary stream carries.
    pub fn object_for(&self, namespace: Option<String>) -> Option<Namespace> {
        let namespace = namespace?;
        self.remember(&namespace);
        Some(Self::object(&namespace))
    }

    /// Adds `namespace` to the store unless it is there (every watch event asks: the common
    /// case builds nothing).
    fn remember(&self, namespace: &str) -> ObjectRef<Namespace> {
        let reference = ObjectRef::new(namespace);
        if self.store.get(&reference).is_none() {
            self.writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply_watcher_event(&watcher::Event::Apply(Self::object(namespace)));
        }
        reference
    }

    fn object(namespace: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_namespace_is_one_key_in_the_store() {
        let (store, keys) = NamespaceKeys::new();
        let first = keys.key(Some("acme".to_owned())).expect("a key");
        let again = keys.key(Some("acme".to_owned())).expect("a key");
        assert_eq!(first, again);
        assert!(keys.key(None).is_none());
        keys.object_for(Some("beta".to_owned())).expect("an object");
        let mut names: Vec<String> = store
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        names.sort();
        assert_eq!(names, ["acme", "beta"]);
        assert!(store.get(&first).is_some());
    }
}
