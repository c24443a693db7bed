//! The operator's Prometheus metrics. Labels stay bounded: namespaces, phases, states and
//! error categories, never asset or update names.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a reconcile result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`.
    pub result: &'static str,
}

/// Labels of an error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// [`Error::category`](super::error::Error::category).
    pub category: &'static str,
}

/// Labels of a write to the API server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// Kind written (or `Event`).
    pub kind: &'static str,
    /// `create`, `apply_status` or `event`.
    pub verb: &'static str,
}

/// Labels of a per-namespace gauge with a phase or state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceStateLabels {
    /// Namespace (a company or site).
    pub namespace: String,
    /// Rollout phase or asset state.
    pub state: String,
}

/// Labels of a per-namespace gauge or counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    /// Namespace (a company or site).
    pub namespace: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// Reconciles by result.
    pub reconciles: Family<ResultLabels, Counter>,
    /// Reconcile errors by category.
    pub errors: Family<ErrorLabels, Counter>,
    /// Reconcile duration.
    pub duration: Histogram,
    /// Writes to the API server by kind and verb (the benchmark compares them with the minimum).
    pub writes: Family<WriteLabels, Counter>,
    /// Rollouts by namespace and phase.
    pub rollouts: Family<NamespaceStateLabels, Gauge>,
    /// Assets by namespace and state.
    pub assets: Family<NamespaceStateLabels, Gauge>,
    /// Operations handed to agents and not finished, by namespace.
    pub in_flight: Family<NamespaceLabels, Gauge>,
    /// Ring halts observed, by namespace.
    pub halts: Family<NamespaceLabels, Counter>,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("patchwave");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Namespace reconciles by result",
            reconciles.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconcile errors by category",
            errors.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "reconcile_duration",
            "Time to evaluate a namespace and write the differences",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "operator_writes",
            "Write requests the operator sent to the API server",
            writes.clone(),
        );
        let rollouts = Family::<NamespaceStateLabels, Gauge>::default();
        registry.register("rollouts", "PatchRollouts by phase", rollouts.clone());
        let assets = Family::<NamespaceStateLabels, Gauge>::default();
        registry.register("assets", "Assets by state", assets.clone());
        let in_flight = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "operations_in_flight",
            "Operations handed to agents and not finished",
            in_flight.clone(),
        );
        let halts = Family::<NamespaceLabels, Counter>::default();
        registry.register("ring_halts", "Rings halted by failures", halts.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            duration,
            writes,
            rollouts,
            assets,
            in_flight,
            halts,
            leader,
        }
    }
}

impl Metrics {
    /// Counts one write.
    pub fn wrote(&self, kind: &'static str, verb: &'static str) {
        self.writes.get_or_create(&WriteLabels { kind, verb }).inc();
    }

    /// Records a finished reconcile.
    pub fn reconciled(&self, took: Duration, error: Option<&'static str>) {
        self.duration.observe(took.as_secs_f64());
        let result = if error.is_some() { "error" } else { "success" };
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        if let Some(category) = error {
            self.errors.get_or_create(&ErrorLabels { category }).inc();
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
