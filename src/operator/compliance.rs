//! Live compliance figures: the KPIs of [`crate::kpi`] over the last 30 days, per namespace
//! (for the metrics) and per policy (for its status). Recomputed at most once a minute per
//! namespace; the reconcile comes back when they are due again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use super::metrics::Metrics;
use crate::api::policy::PolicyCompliance;
use crate::api::{Asset, PatchPolicyStatus, PatchRollout};
use crate::engine::Inventory;
use crate::engine::selector;
use crate::kpi::{Figures, Inputs, Period, RecordedIncident, figures};

/// The rolling window of the live figures.
pub const WINDOW: SignedDuration = SignedDuration::from_hours(24 * 30);
/// How long computed figures are reused while objects change (a rollout in progress), unless
/// the operator is configured otherwise.
pub const REFRESH: Duration = Duration::from_secs(60);
/// How long they are reused while nothing changes: figures still move with time (a 7-day mark
/// passes, a deadline expires), so they are refreshed at least this often.
pub const IDLE_REFRESH: Duration = Duration::from_secs(15 * 60);

/// A policy's share of the figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyFigures {
    /// Missing asset-update pairs the policy owns.
    pub pending: i32,
    /// Of those, past the policy's deadline.
    pub overdue: i32,
    /// The compact summary for its status.
    pub compliance: PolicyCompliance,
}

/// The figures of one namespace.
pub struct NamespaceFigures {
    computed: Instant,
    /// The objects' names and resourceVersions the figures were computed from.
    fingerprint: u64,
    /// All assets of the namespace.
    pub figures: Figures,
    /// By policy name.
    pub policies: BTreeMap<String, PolicyFigures>,
}

impl NamespaceFigures {
    /// When these figures should be recomputed, given the objects' current fingerprint.
    fn due_at(&self, fingerprint: u64, refresh: Duration, now: Timestamp) -> Timestamp {
        let refresh = if fingerprint == self.fingerprint {
            IDLE_REFRESH.max(refresh)
        } else {
            refresh
        };
        let left = refresh.saturating_sub(self.computed.elapsed());
        now.checked_add(left).unwrap_or(now)
    }

    /// Writes the policy's share into its status. An invalid policy governs nothing, so it
    /// gets no figures (they would count assets it does not patch). A policy created since the
    /// figures were computed gets none either until they are recomputed: absent, not zeros
    /// that would read as "0% compliant".
    pub fn fill(&self, policy: &str, status: &mut PatchPolicyStatus) {
        if status.invalid_spec().is_some() {
            return;
        }
        let Some(share) = self.policies.get(policy) else {
            return;
        };
        status.pending_updates = Some(share.pending);
        status.overdue_updates = Some(share.overdue);
        status.compliance = Some(share.compliance.clone());
    }
}

/// The cache of figures per namespace.
pub struct Compliance {
    refresh: Duration,
    namespaces: Mutex<HashMap<String, Arc<NamespaceFigures>>>,
}

fn percent(rate: Option<f64>) -> Option<i32> {
    // Rounded down: 99.6% is not 100%.
    rate.map(|r| (r * 100.0).floor() as i32)
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Compliance {
    /// Figures reused for `refresh` while objects change.
    pub fn new(refresh: Duration) -> Self {
        Compliance {
            refresh,
            namespaces: Mutex::default(),
        }
    }

    /// The namespace's figures, recomputed when due. Updates the metrics
    /// when it recomputes.
    pub fn of(
        &self,
        namespace: &str,
        fingerprint: u64,
        inventory: &Inventory,
        incidents: &[RecordedIncident],
        now: Timestamp,
        metrics: &Metrics,
    ) -> (Arc<NamespaceFigures>, Timestamp) {
        let mut cache = self
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.get(namespace) {
            let due = cached.due_at(fingerprint, self.refresh, now);
            if due > now {
                return (cached.clone(), due);
            }
        }
        let mut computed = compute(inventory, incidents, now);
        computed.fingerprint = fingerprint;
        let computed = Arc::new(computed);
        metrics.observe_compliance(namespace, &computed.figures);
        cache.insert(namespace.to_owned(), computed.clone());
        let due = computed.due_at(fingerprint, self.refresh, now);
        (computed, due)
    }
}

/// A hash of every object's name and resourceVersion (and the recorded incidents): equal
/// while nothing changed.
pub fn fingerprint(inventory: &Inventory, incidents: &[RecordedIncident]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let metas = inventory
        .assets
        .iter()
        .map(|a| &a.metadata)
        .chain(inventory.rollouts.iter().map(|r| &r.metadata))
        .chain(inventory.policies.iter().map(|p| &p.metadata));
    for meta in metas {
        meta.name.hash(&mut hasher);
        meta.resource_version.hash(&mut hasher);
    }
    for incident in incidents {
        incident.asset.hash(&mut hasher);
        incident.rollout.hash(&mut hasher);
        incident.occurred_at.hash(&mut hasher);
        incident.note.hash(&mut hasher);
    }
    hasher.finish()
}

/// Computes the figures of a namespace over the window ending at `now`.
pub fn compute(
    inventory: &Inventory,
    incidents: &[RecordedIncident],
    now: Timestamp,
) -> NamespaceFigures {
    let period = Period {
        from: now.checked_sub(WINDOW).unwrap_or(Timestamp::MIN),
        to: now,
    };
    let assets: Vec<&Asset> = inventory.assets.iter().map(|a| a.as_ref()).collect();
    let rollouts: Vec<&PatchRollout> = inventory.rollouts.iter().collect();
    let all = figures(
        Inputs {
            assets: &assets,
            rollouts: &rollouts,
            policies: &inventory.policies,
            incidents,
            policy: None,
        },
        period,
    );
    let mut policies = BTreeMap::new();
    for policy in &inventory.policies {
        let Some(name) = policy.metadata.name.as_deref() else {
            continue;
        };
        // The policy's share: its assets borrowed, not copied; the KPIs keep to the updates it
        // owns and to its rollouts' operations and incidents.
        let own_assets: Vec<&Asset> = assets
            .iter()
            .copied()
            .filter(|a| {
                selector::matches(
                    policy.spec.selector.as_ref(),
                    a.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                )
            })
            .collect();
        let mine = figures(
            Inputs {
                assets: &own_assets,
                rollouts: &rollouts,
                policies: &inventory.policies,
                incidents,
                policy: Some(name),
            },
            period,
        );
        policies.insert(
            name.to_owned(),
            PolicyFigures {
                pending: count(mine.open_by_policy.get(name).copied().unwrap_or(0)),
                overdue: count(mine.overdue_by_policy.get(name).copied().unwrap_or(0)),
                compliance: PolicyCompliance {
                    assets: Some(count(mine.compliance.assets)),
                    compliant_assets: count(mine.compliance.compliant),
                    // No asset to judge: n/a, neither 0% nor 100%.
                    compliant_percent: percent(mine.compliance.rate),
                    unreported_assets: (mine.compliance.unreported > 0)
                        .then(|| count(mine.compliance.unreported)),
                    patch_rate_within7_days: percent(mine.patch_rate.within7.rate),
                    patch_rate_within30_days: percent(mine.patch_rate.within30.rate),
                    mean_time_to_patch_hours: mine
                        .time_to_patch
                        .mean_hours
                        .map(|h| h.round() as i32),
                    incidents: count(mine.incidents.total),
                },
            },
        );
    }
    NamespaceFigures {
        computed: Instant::now(),
        fingerprint: 0,
        figures: all,
        policies,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Two assets under two overlapping policies, and a third policy selecting nothing:
    /// - "all" (Security and Bugfix) made rollout r1: a1's u1 (Security, released 11-10)
    ///   installed 11-12, 48 h; the install on a2 failed; an incident on a1 blames r1.
    /// - "drivers" (Driver) made no rollout: a2's d1 (released 11-01) was installed 11-02 by
    ///   hand, 24 h.
    /// - "empty" selects no asset.
    fn inventory() -> (Inventory, Vec<RecordedIncident>) {
        let asset = |name: &str, history: serde_json::Value, phase: &str| -> Arc<Asset> {
            Arc::new(
                serde_json::from_value(json!({
                    "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
                    "metadata": {"name": name, "creationTimestamp": "2026-09-01T00:00:00Z"},
                    "spec": {"osFamily": "Linux"},
                    "status": {
                        "reported": {"availableUpdates": [], "installedHistory": [history]},
                        "rollouts": [{"rollout": "r1", "action": "Install", "phase": phase,
                                      "finishedAt": "2026-11-12T00:00:00Z"}]
                    }
                }))
                .unwrap(),
            )
        };
        let policy = |name: &str, selector: serde_json::Value, classes: serde_json::Value| {
            serde_json::from_value(json!({
                "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchPolicy",
                "metadata": {"name": name},
                "spec": {"selector": selector, "updates": {"classifications": classes},
                         "rings": ["pilot"]}
            }))
            .unwrap()
        };
        let inventory = Inventory {
            policies: vec![
                policy("all", json!({}), json!(["Security", "Bugfix"])),
                policy("drivers", json!({}), json!(["Driver"])),
                policy(
                    "empty",
                    json!({"matchLabels": {"role": "none"}}),
                    json!(["Security"]),
                ),
            ],
            assets: vec![
                asset(
                    "a1",
                    json!({"id": "u1", "version": "1", "action": "Install",
                           "at": "2026-11-12T00:00:00Z", "releasedAt": "2026-11-10T00:00:00Z",
                           "severity": "Critical", "classification": "Security",
                           "rollout": "r1"}),
                    "Succeeded",
                ),
                asset(
                    "a2",
                    json!({"id": "d1", "version": "1", "action": "Install",
                           "at": "2026-11-02T00:00:00Z", "releasedAt": "2026-11-01T00:00:00Z",
                           "severity": "Moderate", "classification": "Driver"}),
                    "Failed",
                ),
            ],
            rollouts: vec![
                serde_json::from_value(json!({
                    "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchRollout",
                    "metadata": {"name": "r1", "creationTimestamp": "2026-11-11T00:00:00Z"},
                    "spec": {"policy": "all", "policyGeneration": 1, "revision": "h",
                             "updates": [], "rings": ["pilot"]}
                }))
                .unwrap(),
            ],
            ..Inventory::default()
        };
        let incidents = vec![RecordedIncident {
            asset: "a1".to_owned(),
            rollout: "r1".to_owned(),
            impact: "High".to_owned(),
            occurred_at: t("2026-11-15T00:00:00Z"),
            note: "ERP client crashes at start".to_owned(),
        }];
        (inventory, incidents)
    }

    fn computed() -> NamespaceFigures {
        let (inventory, incidents) = inventory();
        compute(&inventory, &incidents, t("2026-11-30T00:00:00Z"))
    }

    #[test]
    fn a_policy_created_since_the_figures_were_computed_gets_none_not_zeros() {
        let figures = computed();
        let mut status = PatchPolicyStatus::default();
        figures.fill("new", &mut status);
        assert_eq!(status.compliance, None);
        assert_eq!(status.pending_updates, None);
        assert_eq!(status.overdue_updates, None);
        // A computed policy gets its figures.
        figures.fill("all", &mut status);
        assert_eq!(status.pending_updates, Some(0));
        assert_eq!(
            status.compliance.map(|c| c.compliant_percent),
            Some(Some(100))
        );
    }

    #[test]
    fn a_policy_that_selects_no_asset_has_no_compliant_percent() {
        let figures = computed();
        let empty = &figures.policies["empty"].compliance;
        assert_eq!(empty.assets, Some(0));
        assert_eq!(empty.compliant_assets, 0);
        assert_eq!(empty.compliant_percent, None);
    }

    #[test]
    fn the_figures_carry_the_number_of_assets_they_judged() {
        let figures = computed();
        let all = &figures.policies["all"].compliance;
        assert_eq!(all.assets, Some(2));
        assert_eq!(all.compliant_assets, 2);
        assert_eq!(all.compliant_percent, Some(100));
    }

    #[test]
    fn a_policy_is_judged_by_the_updates_it_owns_and_the_incidents_of_its_rollouts() {
        let figures = computed();
        // "drivers" never made a rollout: no incident is its, and it took 24 h for d1.
        let drivers = &figures.policies["drivers"].compliance;
        assert_eq!(drivers.incidents, 0);
        assert_eq!(drivers.mean_time_to_patch_hours, Some(24));
        assert_eq!(drivers.patch_rate_within7_days, Some(100));
        // "all": r1's failed install on a2 and the incident recorded against r1; 48 h for u1.
        let all = &figures.policies["all"].compliance;
        assert_eq!(all.incidents, 2);
        assert_eq!(all.mean_time_to_patch_hours, Some(48));
        // The namespace counts everything once.
        assert_eq!(figures.figures.incidents.total, 2);
        assert_eq!(figures.figures.time_to_patch.installed, 2);
    }
}
