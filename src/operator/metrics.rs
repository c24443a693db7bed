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

/// Labels of a per-namespace figure by one dimension (criticality, horizon, severity, kind).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CriticalityLabels {
    /// Namespace.
    pub namespace: String,
    /// Asset criticality, or `all`.
    pub criticality: String,
}

/// Labels of a patch rate.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HorizonLabels {
    /// Namespace.
    pub namespace: String,
    /// `7d`, `14d` or `30d`.
    pub within: String,
}

/// Labels of open updates.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpenLabels {
    /// Namespace.
    pub namespace: String,
    /// Update severity.
    pub severity: String,
    /// `0-7d`, `8-14d`, `15-30d`, `over-30d`, `unknown`.
    pub age: String,
}

/// Labels of overdue updates.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabels {
    /// Namespace.
    pub namespace: String,
    /// Update severity.
    pub severity: String,
}

/// Labels of incidents.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IncidentLabels {
    /// Namespace.
    pub namespace: String,
    /// `failed_operation`, `rollback` or `recorded`.
    pub kind: String,
}

type Ratio = Gauge<f64, std::sync::atomic::AtomicU64>;

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
    /// Share of compliant assets (no update past its deadline), last 30 days.
    pub compliance: Family<CriticalityLabels, Ratio>,
    /// Patch rate within 7, 14 and 30 days, last 30 days.
    pub patch_rate: Family<HorizonLabels, Ratio>,
    /// Critical and Security updates installed within 7 days, last 30 days.
    pub critical_security_within7: Family<NamespaceLabels, Ratio>,
    /// Mean time to patch, last 30 days.
    pub time_to_patch_mean: Family<NamespaceLabels, Ratio>,
    /// Median time to patch, last 30 days.
    pub time_to_patch_median: Family<NamespaceLabels, Ratio>,
    /// Open (missing) updates by severity and age.
    pub open_updates: Family<OpenLabels, Gauge>,
    /// Updates past their policy's deadline by severity.
    pub overdue_updates: Family<SeverityLabels, Gauge>,
    /// Incidents caused by patches, last 30 days.
    pub incidents: Family<IncidentLabels, Gauge>,
    /// Assets whose agent is unreachable (`Reachable=False`), by namespace and reason.
    pub unreachable: Family<UnreachableLabels, Gauge>,
}

/// Labels of unreachable assets.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnreachableLabels {
    /// Namespace.
    pub namespace: String,
    /// One of [`UNREACHABLE_REASONS`].
    pub reason: &'static str,
}

/// Why an asset is unreachable (the engine's `Reachable=False` reasons): a bounded label set.
pub const UNREACHABLE_REASONS: [&str; 3] = ["AgentStale", "NeverReported", "ClockSkew"];

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
        let compliance = Family::<CriticalityLabels, Ratio>::default();
        registry.register(
            "compliance_ratio",
            "Share of assets with no update past its deadline (criticality=all for every asset)",
            compliance.clone(),
        );
        let patch_rate = Family::<HorizonLabels, Ratio>::default();
        registry.register(
            "patch_rate_ratio",
            "Share of updates installed within 7, 14 or 30 days of release or enrolment, judged at that mark, marks of the last 30 days",
            patch_rate.clone(),
        );
        let critical_security_within7 = Family::<NamespaceLabels, Ratio>::default();
        registry.register(
            "critical_security_within_7d_ratio",
            "Share of critical and security updates installed within 7 days, marks of the last 30 days",
            critical_security_within7.clone(),
        );
        let time_to_patch_mean = Family::<NamespaceLabels, Ratio>::default();
        registry.register_with_unit(
            "time_to_patch_mean",
            "Mean time from release (or enrolment) to first installation, installations of the last 30 days",
            prometheus_client::registry::Unit::Seconds,
            time_to_patch_mean.clone(),
        );
        let time_to_patch_median = Family::<NamespaceLabels, Ratio>::default();
        registry.register_with_unit(
            "time_to_patch_median",
            "Median time from release (or enrolment) to first installation, installations of the last 30 days",
            prometheus_client::registry::Unit::Seconds,
            time_to_patch_median.clone(),
        );
        let open_updates = Family::<OpenLabels, Gauge>::default();
        registry.register(
            "open_updates",
            "Missing updates (asset-update pairs) by severity and age",
            open_updates.clone(),
        );
        let overdue_updates = Family::<SeverityLabels, Gauge>::default();
        registry.register(
            "overdue_updates",
            "Missing updates past their policy's deadline by severity",
            overdue_updates.clone(),
        );
        let incidents = Family::<IncidentLabels, Gauge>::default();
        registry.register(
            "patch_incidents",
            "Incidents caused by patches in the last 30 days: failed operations, rollbacks, recorded",
            incidents.clone(),
        );
        let unreachable = Family::<UnreachableLabels, Gauge>::default();
        registry.register(
            "assets_unreachable",
            "Assets whose agent is unreachable: AgentStale (no heartbeat within staleAfter), NeverReported, or ClockSkew (a heartbeat from the future: the agent's clock is ahead)",
            unreachable.clone(),
        );
        Metrics {
            registry,
            unreachable,
            compliance,
            patch_rate,
            critical_security_within7,
            time_to_patch_mean,
            time_to_patch_median,
            open_updates,
            overdue_updates,
            incidents,
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

    /// Sets the unreachable-asset gauges of `namespace` from the `Reachable=False` reasons of
    /// its assets (zero for a reason no asset has, so alerts see the recovery).
    pub fn observe_unreachable<'a>(
        &self,
        namespace: &str,
        reasons: impl IntoIterator<Item = &'a str>,
    ) {
        let mut counts = [0_i64; UNREACHABLE_REASONS.len()];
        for reason in reasons {
            if let Some(i) = UNREACHABLE_REASONS.iter().position(|r| *r == reason) {
                counts[i] += 1;
            }
        }
        for (reason, count) in UNREACHABLE_REASONS.iter().zip(counts) {
            self.unreachable
                .get_or_create(&UnreachableLabels {
                    namespace: namespace.to_owned(),
                    reason,
                })
                .set(count);
        }
    }

    /// Sets the compliance gauges of `namespace` from its figures. A rate with nothing to
    /// judge is removed rather than reported as zero.
    pub fn observe_compliance(&self, namespace: &str, figures: &crate::kpi::Figures) {
        let ns = || namespace.to_owned();
        let set_ratio =
            |family: &Family<CriticalityLabels, Ratio>, criticality: &str, rate: Option<f64>| {
                let labels = CriticalityLabels {
                    namespace: ns(),
                    criticality: criticality.to_owned(),
                };
                match rate {
                    Some(rate) => {
                        family.get_or_create(&labels).set(rate);
                    }
                    None => {
                        family.remove(&labels);
                    }
                }
            };
        set_ratio(&self.compliance, "all", figures.compliance.rate);
        for (criticality, compliance) in &figures.compliance_by_criticality {
            set_ratio(&self.compliance, criticality, compliance.rate);
        }
        for (within, rate) in [
            ("7d", figures.patch_rate.within7.rate),
            ("14d", figures.patch_rate.within14.rate),
            ("30d", figures.patch_rate.within30.rate),
        ] {
            let labels = HorizonLabels {
                namespace: ns(),
                within: within.to_owned(),
            };
            match rate {
                Some(rate) => {
                    self.patch_rate.get_or_create(&labels).set(rate);
                }
                None => {
                    self.patch_rate.remove(&labels);
                }
            }
        }
        let namespace_labels = NamespaceLabels { namespace: ns() };
        for (family, value) in [
            (
                &self.critical_security_within7,
                figures.critical_security_within7.rate,
            ),
            (
                &self.time_to_patch_mean,
                figures.time_to_patch.mean_hours.map(|h| h * 3600.0),
            ),
            (
                &self.time_to_patch_median,
                figures.time_to_patch.median_hours.map(|h| h * 3600.0),
            ),
        ] {
            match value {
                Some(value) => {
                    family.get_or_create(&namespace_labels).set(value);
                }
                None => {
                    family.remove(&namespace_labels);
                }
            }
        }
        for severity in ["Critical", "Important", "Moderate", "Low", "Unspecified"] {
            let buckets = figures
                .open_by_severity
                .get(severity)
                .cloned()
                .unwrap_or_default();
            for (age, n) in [
                ("0-7d", buckets.days0to7),
                ("8-14d", buckets.days8to14),
                ("15-30d", buckets.days15to30),
                ("over-30d", buckets.over30),
                ("unknown", buckets.unknown),
            ] {
                self.open_updates
                    .get_or_create(&OpenLabels {
                        namespace: ns(),
                        severity: severity.to_owned(),
                        age: age.to_owned(),
                    })
                    .set(i64::from(n));
            }
            self.overdue_updates
                .get_or_create(&SeverityLabels {
                    namespace: ns(),
                    severity: severity.to_owned(),
                })
                .set(i64::from(
                    figures
                        .overdue_by_severity
                        .get(severity)
                        .copied()
                        .unwrap_or(0),
                ));
        }
        for (kind, n) in [
            ("failed_operation", figures.incidents.failed_operations),
            ("rollback", figures.incidents.rollbacks),
            ("recorded", figures.incidents.recorded),
        ] {
            self.incidents
                .get_or_create(&IncidentLabels {
                    namespace: ns(),
                    kind: kind.to_owned(),
                })
                .set(i64::from(n));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series the Grafana dashboard queries is one the operator exports.
    #[test]
    fn the_dashboard_uses_only_exported_metrics() {
        let metrics = Metrics::default();
        let figures = crate::kpi::Figures {
            compliance: crate::kpi::Compliance {
                assets: 2,
                compliant: 1,
                unreported: 0,
                rate: Some(0.5),
            },
            ..crate::kpi::Figures::default()
        };
        let mut figures = figures;
        figures.patch_rate.within7.rate = Some(0.9);
        figures.critical_security_within7.rate = Some(1.0);
        figures.time_to_patch.mean_hours = Some(2.0);
        figures.time_to_patch.median_hours = Some(1.0);
        metrics.observe_compliance("acme", &figures);
        metrics.wrote("Asset", "apply_status");
        metrics.reconciled(Duration::from_millis(5), Some("Conflict"));
        let labels = NamespaceStateLabels {
            namespace: "acme".to_owned(),
            state: "Succeeded".to_owned(),
        };
        metrics.rollouts.get_or_create(&labels).set(1);
        metrics.assets.get_or_create(&labels).set(1);
        let ns = NamespaceLabels {
            namespace: "acme".to_owned(),
        };
        metrics.in_flight.get_or_create(&ns).set(0);
        metrics.halts.get_or_create(&ns).inc();
        let exported = metrics.encode();

        let dashboard: serde_json::Value = serde_json::from_str(include_str!(
            "../../config/grafana/patchwave-dashboard.json"
        ))
        .expect("the dashboard is JSON");
        let mut used = Vec::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                let mut rest = expr;
                while let Some(start) = rest.find("patchwave_") {
                    let name: String = rest[start..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    rest = &rest[start + name.len()..];
                    used.push(name);
                }
            }
        }
        assert!(used.len() >= 14, "{used:?}");
        for name in used {
            assert!(
                exported
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "the dashboard queries {name}, which the operator does not export:\n{exported}"
            );
        }
    }

    /// Unreachable assets are counted by reason, unknown reasons are ignored, and a reason
    /// no asset has any more reads 0 (so an alert sees the recovery).
    #[test]
    fn unreachable_assets_are_counted_by_reason() {
        let metrics = Metrics::default();
        metrics.observe_unreachable(
            "acme",
            ["AgentStale", "NeverReported", "AgentStale", "Whatever"],
        );
        let exported = metrics.encode();
        assert!(
            exported.contains(
                "patchwave_assets_unreachable{namespace=\"acme\",reason=\"AgentStale\"} 2"
            ),
            "{exported}"
        );
        assert!(
            exported.contains(
                "patchwave_assets_unreachable{namespace=\"acme\",reason=\"NeverReported\"} 1"
            ),
            "{exported}"
        );
        metrics.observe_unreachable("acme", []);
        let exported = metrics.encode();
        assert!(
            exported.contains(
                "patchwave_assets_unreachable{namespace=\"acme\",reason=\"AgentStale\"} 0"
            ),
            "{exported}"
        );
    }
}
