//! The operator: watches the five kinds, drives the engine, writes its decisions.
//!
//! - [`reconcile`]: one namespace evaluated and its differences written by server-side apply.
//! - [`namespaces`]: the controller's keys, one per namespace that holds patchwave objects.
//! - [`fresh`]: read-your-writes on top of the watch caches.
//! - [`coalesce`]: Asset summaries nobody has to act on wait for the next operation write.
//! - [`leader`]: the Lease; only its holder writes.
//! - [`compliance`]: live KPIs for policy status and metrics.
//! - [`events`]: Kubernetes Events, one per distinct decision.
//! - [`metrics`] and [`http`]: `/metrics`, `/healthz`, `/readyz` ([`readiness`]).
//!
//! All state lives in the API server: the rollout records on each Asset and the rollout
//! status. An operator killed at any moment and started again evaluates the same objects and
//! reaches the same decisions; operation ids are deterministic, so nothing is handed out twice.

pub mod coalesce;
pub mod compliance;
pub mod error;
pub mod events;
pub mod fresh;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod namespaces;
pub mod readiness;
pub mod reconcile;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, future};
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::{Asset, MaintenanceWindow, PatchIncident, PatchPolicy, PatchRollout, Ring};
use crate::engine::Inventory;
use crate::engine::evaluate::{Event, EventType};
use crate::engine::status::Derived;
use error::Error;
use fresh::Fresh;
use leader::{Leadership, LeaseSettings};
use metrics::{Metrics, NamespaceLabels, NamespaceStateLabels};

/// How the operator runs (the binary fills it from flags and environment).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Only this namespace; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` listen.
    pub metrics_address: SocketAddr,
    /// Leader election; `None` acts at once (a single replica).
    pub lease: Option<LeaseSettings>,
    /// How long the controller gathers changes before a reconcile (agents report in bursts).
    pub debounce: Duration,
    /// Name of this replica in Events.
    pub instance: String,
    /// How long an Asset summary change that needs no one's attention may wait for the
    /// asset's next operation write before it is written alone (see [`coalesce`]).
    pub summary_delay: Duration,
    /// How long compliance figures are reused while objects change (see [`compliance`]).
    pub figures_refresh: Duration,
}

/// Caches of the five kinds.
#[derive(Clone)]
pub struct Stores {
    /// PatchPolicies.
    pub policies: Store<PatchPolicy>,
    /// Rings.
    pub rings: Store<Ring>,
    /// MaintenanceWindows.
    pub windows: Store<MaintenanceWindow>,
    /// Assets.
    pub assets: Store<Asset>,
    /// PatchRollouts.
    pub rollouts: Store<PatchRollout>,
    /// PatchIncidents (for the live incident figures).
    pub incidents: Store<PatchIncident>,
}

/// Own writes not yet in the caches, per kind.
#[derive(Default)]
pub struct FreshWrites {
    policies: Fresh<PatchPolicy>,
    rings: Fresh<Ring>,
    windows: Fresh<MaintenanceWindow>,
    assets: Fresh<Asset>,
    rollouts: Fresh<PatchRollout>,
}

/// What every reconcile shares.
pub struct Context {
    /// Client with the operator's identity.
    pub client: Client,
    /// The watch caches.
    pub stores: Stores,
    fresh: FreshWrites,
    recorder: events::Publisher,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Whether this replica may write.
    pub leadership: Leadership,
    /// Which watch caches have listed: no decision before all have.
    pub caches: Arc<readiness::CacheSync>,
    announced: reconcile::Announced,
    halted: Mutex<HashSet<String>>,
    coalesce: coalesce::Coalesce,
    compliance: compliance::Compliance,
}

impl Context {
    /// The namespace's objects as the engine sees them: caches plus own fresher writes.
    fn snapshot(&self, namespace: &str) -> Inventory {
        fn of<K: Resource<DynamicType = ()> + Clone>(
            store: &Store<K>,
            namespace: &str,
        ) -> Vec<std::sync::Arc<K>> {
            store.state_filter(|o| o.meta().namespace.as_deref() == Some(namespace))
        }
        let mut inventory = Inventory {
            policies: self
                .fresh
                .policies
                .merge(namespace, of(&self.stores.policies, namespace))
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect(),
            rings: self
                .fresh
                .rings
                .merge(namespace, of(&self.stores.rings, namespace))
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect(),
            windows: self
                .fresh
                .windows
                .merge(namespace, of(&self.stores.windows, namespace))
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect(),
            assets: self
                .fresh
                .assets
                .merge(namespace, of(&self.stores.assets, namespace)),
            rollouts: self
                .fresh
                .rollouts
                .merge(namespace, of(&self.stores.rollouts, namespace))
                .into_iter()
                .map(Arc::unwrap_or_clone)
                .collect(),
        };
        // Deterministic order: the engine breaks ties by position, caches have none.
        inventory.policies.sort_by_key(ResourceExt::name_any);
        inventory.rings.sort_by_key(ResourceExt::name_any);
        inventory.windows.sort_by_key(ResourceExt::name_any);
        // Borrowed names: `name_any` would copy two names per comparison.
        inventory
            .assets
            .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        inventory.rollouts.sort_by_key(|r| {
            (
                r.metadata.creation_timestamp.clone().map(|t| t.0),
                r.name_any(),
            )
        });
        inventory
    }

    /// The incidents people recorded in `namespace`, as the KPIs count them.
    fn incidents(&self, namespace: &str) -> Vec<crate::kpi::RecordedIncident> {
        self.stores
            .incidents
            .state_filter(|i| i.metadata.namespace.as_deref() == Some(namespace))
            .iter()
            .filter_map(|i| crate::kpi::RecordedIncident::of(i))
            .collect()
    }

    /// Fails the reconcile when this replica lost the lease in the middle of it.
    fn ensure_leader(&self) -> Result<(), Error> {
        if self.leadership.is_leader() {
            Ok(())
        } else {
            Err(Error::NotLeader)
        }
    }

    /// True the first time `key` is seen by this process.
    fn first_time(&self, key: String) -> bool {
        self.announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key)
    }

    /// Updates the gauges of a namespace after a reconcile.
    fn observe(&self, namespace: &str, inventory: &Inventory, derived: &Derived, events: &[Event]) {
        let labels = |state: &str| NamespaceStateLabels {
            namespace: namespace.to_owned(),
            state: state.to_owned(),
        };
        let mut phases: BTreeMap<String, i64> = BTreeMap::new();
        for rollout in &inventory.rollouts {
            if let Some(status) = &rollout.status {
                *phases.entry(format!("{:?}", status.phase)).or_default() += 1;
            }
        }
        for phase in crate::api::rollout::RolloutPhase::ALL {
            let name = format!("{phase:?}");
            self.metrics
                .rollouts
                .get_or_create(&labels(&name))
                .set(phases.get(&name).copied().unwrap_or(0));
        }
        let mut states: BTreeMap<&str, i64> = BTreeMap::new();
        for summary in derived.assets.values() {
            *states.entry(summary.state.as_str()).or_default() += 1;
        }
        for state in crate::engine::evaluate::AssetState::ALL {
            self.metrics
                .assets
                .get_or_create(&labels(state.as_str()))
                .set(states.get(state.as_str()).copied().unwrap_or(0));
        }
        self.metrics.observe_unreachable(
            namespace,
            derived
                .assets
                .values()
                .flat_map(|summary| &summary.conditions)
                .filter(|c| c.type_ == "Reachable" && c.status == "False")
                .map(|c| c.reason.as_str()),
        );
        let namespace_labels = NamespaceLabels {
            namespace: namespace.to_owned(),
        };
        let in_flight = i64::try_from(reconcile::in_flight(inventory)).unwrap_or(i64::MAX);
        self.metrics
            .in_flight
            .get_or_create(&namespace_labels)
            .set(in_flight);
        let mut halted = self.halted.lock().unwrap_or_else(PoisonError::into_inner);
        for event in events.iter().filter(|e| e.kind == EventType::RingHalted) {
            let key = format!(
                "{namespace}/{:?}/{:?}/{}",
                event.rollout, event.ring, event.time
            );
            if halted.insert(key) {
                self.metrics.halts.get_or_create(&namespace_labels).inc();
            }
        }
    }
}

/// Why the operator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The lease times cannot make a working lease (see [`leader::check_times`]).
    #[error("leader election with Lease {namespace}/{name}: {message}")]
    LeaseTimes {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// What is wrong with them.
        message: String,
    },
    /// The leader Lease could not be set up.
    #[error("leader election with Lease {namespace}/{name}: {source}")]
    Lease {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// The lease manager's error.
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    /// The metrics and health endpoints could not listen.
    #[error("serving /metrics on {address}: {source}")]
    Http {
        /// The address.
        address: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

/// A reflector over one kind, with managedFields and kubectl's last-applied copy dropped (they
/// are not read and would double the cache's memory).
fn reflect<K>(
    client: &Client,
    namespace: Option<&str>,
    synced: readiness::CacheSynced,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|object: &mut K| {
            let meta = object.meta_mut();
            meta.managed_fields = None;
            // A client-side `kubectl apply` keeps a whole copy of the object here.
            if let Some(annotations) = meta.annotations.as_mut() {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        })
        .reflect(writer)
        .inspect(move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                synced.mark();
            }
        })
        .touched_objects();
    (store, stream)
}

/// Runs the operator until `shutdown` completes (the binary passes SIGINT or SIGTERM; tests
/// pass a channel). A reconcile in progress finishes first.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), RunError> {
    // The lease manager panics on such times; a caller gets an error instead, before anything
    // starts.
    if let Some(lease) = &settings.lease {
        leader::check_times(lease.duration_seconds, lease.grace_seconds).map_err(|message| {
            RunError::LeaseTimes {
                namespace: lease.namespace.clone(),
                name: lease.name.clone(),
                message,
            }
        })?;
    }
    let metrics = Arc::new(Metrics::default());
    let caches = Arc::new(readiness::CacheSync::default());
    let probes = http::Probes {
        metrics: metrics.clone(),
        caches: caches.clone(),
    };
    let address = settings.metrics_address;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| RunError::Http { address, source })?;
    tokio::spawn(async move {
        if let Err(error) = http::serve(listener, probes).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });

    let (leadership, leadership_changes) = match &settings.lease {
        Some(lease) => {
            let (leadership, changes) =
                leader::elect(client.clone(), lease)
                    .await
                    .map_err(|source| RunError::Lease {
                        namespace: lease.namespace.clone(),
                        name: lease.name.clone(),
                        source,
                    })?;
            (leadership, changes.boxed())
        }
        None => (Leadership::always(), futures::stream::empty().boxed()),
    };

    let namespace = settings.namespace.as_deref();
    let (policies, policy_stream) =
        reflect::<PatchPolicy>(&client, namespace, caches.register("PatchPolicy"));
    let (rings, ring_stream) = reflect::<Ring>(&client, namespace, caches.register("Ring"));
    let (windows, window_stream) =
        reflect::<MaintenanceWindow>(&client, namespace, caches.register("MaintenanceWindow"));
    let (assets, asset_stream) = reflect::<Asset>(&client, namespace, caches.register("Asset"));
    let (rollouts, rollout_stream) =
        reflect::<PatchRollout>(&client, namespace, caches.register("PatchRollout"));
    let (incidents, incident_stream) =
        reflect::<PatchIncident>(&client, namespace, caches.register("PatchIncident"));
    let stores = Stores {
        policies,
        rings,
        windows,
        assets,
        rollouts,
        incidents,
    };

    let leader_gauge = metrics.clone();
    let context = Arc::new(Context {
        client: client.clone(),
        stores,
        fresh: FreshWrites::default(),
        recorder: events::Publisher::new(
            client,
            crate::api::OPERATOR_FIELD_MANAGER,
            &settings.instance,
        ),
        metrics,
        leadership: leadership.clone(),
        caches: caches.clone(),
        announced: Mutex::default(),
        halted: Mutex::default(),
        coalesce: coalesce::Coalesce::new(settings.summary_delay),
        compliance: compliance::Compliance::new(settings.figures_refresh),
    });
    leader_gauge.leader.set(i64::from(leadership.is_leader()));

    // Any change in a namespace wakes that namespace.
    let (namespace_store, keys) = namespaces::NamespaceKeys::new();
    let primary_keys = keys.clone();
    let namespace_stream = policy_stream.try_filter_map(move |p: PatchPolicy| {
        future::ready(Ok(primary_keys.object_for(p.namespace())))
    });
    let wake = move |namespace: Option<String>| keys.key(namespace);
    let wake_ring = wake.clone();
    let wake_window = wake.clone();
    let wake_asset = wake.clone();
    let wake_rollout = wake.clone();
    let wake_incident = wake;
    // Leadership changes are followed by a task of their own, not inside the controller's
    // trigger: a replica cut off from the API server showed `patchwave_leader 1` for 90 s and more
    // after it had given up the lease, because the controller did not poll its trigger
    // meanwhile. The gauge and the memory of own writes must follow a lost lease at once.
    let fresh_context = context.clone();
    let (gained, became_leader) = futures::channel::mpsc::unbounded::<()>();
    tokio::spawn(leadership_changes.for_each(move |leader| {
        leader_gauge.leader.set(i64::from(leader));
        if leader {
            let _ = gained.unbounded_send(());
        } else {
            // Another replica writes now; our memory of own writes would only mislead.
            fresh_context.fresh.clear();
        }
        future::ready(())
    }));

    Controller::for_stream(namespace_stream, namespace_store)
        .with_config(
            ControllerConfig::default()
                .concurrency(1)
                .debounce(settings.debounce),
        )
        .watches_stream(ring_stream, move |r: Ring| wake_ring(r.namespace()))
        .watches_stream(window_stream, move |w: MaintenanceWindow| {
            wake_window(w.namespace())
        })
        .watches_stream(asset_stream, move |a: Asset| wake_asset(a.namespace()))
        .watches_stream(rollout_stream, move |r: PatchRollout| {
            wake_rollout(r.namespace())
        })
        .watches_stream(incident_stream, move |i: PatchIncident| {
            wake_incident(i.namespace())
        })
        .reconcile_all_on(became_leader)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, context)
        .for_each(|result| {
            if let Err(error) = result {
                tracing::debug!(%error, "controller");
            }
            future::ready(())
        })
        .await;
    tracing::info!("shut down");
    Ok(())
}

impl FreshWrites {
    fn clear(&self) {
        self.policies.clear();
        self.rings.clear();
        self.windows.clear();
        self.assets.clear();
        self.rollouts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lease times the lease manager would panic on are refused by `run` itself, for callers
    /// of the library that bypass the binary's flag check; nothing is contacted.
    #[tokio::test]
    async fn run_refuses_lease_times_that_cannot_work() {
        let unreachable = kube::Config::new("http://127.0.0.1:9".parse().expect("a URI"));
        let client = Client::try_from(unreachable).expect("a client");
        let settings = Settings {
            namespace: None,
            metrics_address: "127.0.0.1:0".parse().expect("an address"),
            lease: Some(LeaseSettings {
                name: "patchwave-operator".to_owned(),
                namespace: "patchwave-system".to_owned(),
                identity: "test".to_owned(),
                duration_seconds: 15,
                grace_seconds: 15,
            }),
            debounce: Duration::from_millis(300),
            instance: "test".to_owned(),
            summary_delay: Duration::from_secs(300),
            figures_refresh: Duration::from_secs(60),
        };
        let error = run(client, settings, std::future::pending())
            .await
            .expect_err("refused");
        assert!(matches!(error, RunError::LeaseTimes { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "leader election with Lease patchwave-system/patchwave-operator: lease grace 15 s \
             must be at least 1 s and less than the lease duration (15 s): the leader renews \
             that long before its lease runs out"
        );
    }
}
