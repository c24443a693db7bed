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
    /// gets no figures (they would count assets it does not patch).
    pub fn fill(&self, policy: &str, status: &mut PatchPolicyStatus) {
        let invalid = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "InvalidSpec");
        if invalid {
            return;
        }
        let share = self.policies.get(policy).cloned().unwrap_or_default();
        status.pending_updates = Some(share.pending);
        status.overdue_updates = Some(share.overdue);
        status.compliance = Some(share.compliance);
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
        },
        period,
    );
    let mut policies = BTreeMap::new();
    for policy in &inventory.policies {
        let Some(name) = policy.metadata.name.as_deref() else {
            continue;
        };
        // The policy's share: its assets and rollouts borrowed, not copied.
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
        let names: std::collections::BTreeSet<&str> = own_assets
            .iter()
            .filter_map(|a| a.metadata.name.as_deref())
            .collect();
        let own_rollouts: Vec<&PatchRollout> = rollouts
            .iter()
            .copied()
            .filter(|r| r.spec.policy == name)
            .collect();
        let own_incidents: Vec<_> = incidents
            .iter()
            .filter(|i| names.contains(i.asset.as_str()))
            .cloned()
            .collect();
        let mine = figures(
            Inputs {
                assets: &own_assets,
                rollouts: &own_rollouts,
                policies: &inventory.policies,
                incidents: &own_incidents,
            },
            period,
        );
        let compliant_percent = percent(mine.compliance.rate).unwrap_or(100);
        policies.insert(
            name.to_owned(),
            PolicyFigures {
                pending: count(mine.open_by_policy.get(name).copied().unwrap_or(0)),
                overdue: count(mine.overdue_by_policy.get(name).copied().unwrap_or(0)),
                compliance: PolicyCompliance {
                    compliant_assets: count(mine.compliance.compliant),
                    compliant_percent,
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
