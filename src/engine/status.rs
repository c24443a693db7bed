//! The status of policies, rings, windows and assets, derived from an evaluation.
//!
//! Rollout status comes out of [`evaluate`](super::evaluate::evaluate) itself; the other kinds
//! summarise it here, so the operator only has to write what this module returns. Pure: the
//! same objects and `now` give the same statuses.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};

use super::Inventory;
use super::duration::parse_duration;
use super::evaluate::{AssetState, Evaluation, is_terminal, set_condition};
use super::selector;
use super::validation::{Problem, kind};
use super::windows::compile;
use crate::api::{
    AssetStatus, Condition, MaintenanceWindowStatus, PatchPolicyStatus, RingStatus, Time,
};

/// An agent silent for longer than this (when the Asset sets no `staleAfter`) is unreachable.
pub const DEFAULT_STALE_AFTER: SignedDuration = SignedDuration::from_mins(30);
/// A heartbeat later than this after the operator's clock comes from an agent whose clock is
/// ahead: it says nothing about when the agent was last heard, and the agent's own checks of
/// `notAfter` go wrong.
pub const CLOCK_SKEW_TOLERANCE: SignedDuration = SignedDuration::from_mins(5);

/// Statuses to write, by object name, and when they could next change on their own.
#[derive(Clone, Debug, Default)]
pub struct Derived {
    /// The operator-owned part of each Asset's status, without `operation` and `rollouts`
    /// (which [`apply`](super::apply::apply) maintains): missing count, state, conditions.
    pub assets: BTreeMap<String, AssetSummary>,
    /// PatchPolicy statuses.
    pub policies: BTreeMap<String, PatchPolicyStatus>,
    /// Ring statuses.
    pub rings: BTreeMap<String, RingStatus>,
    /// MaintenanceWindow statuses.
    pub windows: BTreeMap<String, MaintenanceWindowStatus>,
    /// The next instant a derived status changes without any object changing (a window opens
    /// or closes, an agent becomes stale).
    pub next_change: Option<Timestamp>,
}

/// The derived fields of an Asset's status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssetSummary {
    /// Updates the agent reports as available; `None` before its first report.
    pub missing_updates: Option<i32>,
    /// The state that matters most across the policies governing the asset.
    pub state: AssetState,
    /// `Ready` and `Reachable`.
    pub conditions: Vec<Condition>,
    /// The generation these conditions describe.
    pub observed_generation: Option<i64>,
}

impl AssetState {
    /// Every state, for metrics that report zero as well as counts.
    pub const ALL: [AssetState; 10] = [
        AssetState::UpToDate,
        AssetState::Patched,
        AssetState::Failed,
        AssetState::Pending,
        AssetState::Held,
        AssetState::WaitingForApproval,
        AssetState::Unscheduled,
        AssetState::Unassigned,
        AssetState::Unknown,
        AssetState::Unmanaged,
    ];

    /// The name written to `status.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetState::UpToDate => "UpToDate",
            AssetState::Patched => "Patched",
            AssetState::Failed => "Failed",
            AssetState::Pending => "Pending",
            AssetState::Held => "Held",
            AssetState::WaitingForApproval => "WaitingForApproval",
            AssetState::Unscheduled => "Unscheduled",
            AssetState::Unassigned => "Unassigned",
            AssetState::Unknown => "Unknown",
            AssetState::Unmanaged => "Unmanaged",
        }
    }

    /// How much a person needs to look at it: of several policies' states, the asset shows
    /// the one ranked highest (a failure before a wait before a quiet state).
    fn attention(self) -> u8 {
        match self {
            AssetState::Failed => 7,
            AssetState::WaitingForApproval => 6,
            AssetState::Unassigned | AssetState::Unmanaged => 5,
            AssetState::Unscheduled => 4,
            AssetState::Held => 3,
            AssetState::Pending => 2,
            AssetState::Patched => 1,
            AssetState::UpToDate | AssetState::Unknown => 0,
        }
    }
}

/// Derives every status but the rollouts' from the objects and their evaluation at `now`.
pub fn derive(inventory: &Inventory, evaluation: &Evaluation, now: Timestamp) -> Derived {
    let mut derived = Derived::default();
    let problems_of = |kind_name: &str, name: &str| -> Vec<&Problem> {
        evaluation
            .problems
            .iter()
            .filter(|p| p.kind == kind_name && p.name == name)
            .collect()
    };
    let wake = |t: Timestamp, derived: &mut Derived| {
        if t > now {
            derived.next_change = Some(derived.next_change.map_or(t, |n| n.min(t)));
        }
    };

    // Assets: the most pressing state across policies, and whether the agent is heard from.
    let mut states: BTreeMap<&str, AssetState> = BTreeMap::new();
    let mut governed: BTreeSet<&str> = BTreeSet::new();
    for view in &evaluation.assets {
        let entry = states.entry(view.name.as_str()).or_insert(view.state);
        if view.state.attention() > entry.attention() {
            *entry = view.state;
        }
        if view.policy.is_some() {
            governed.insert(view.name.as_str());
        }
    }
    for asset in &inventory.assets {
        let Some(name) = asset.metadata.name.as_deref() else {
            continue;
        };
        let previous = asset
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        let generation = asset.metadata.generation;
        let reported = asset.reported();
        let stale_after = asset
            .spec
            .stale_after
            .as_deref()
            .and_then(|text| parse_duration(text).ok())
            .unwrap_or(DEFAULT_STALE_AFTER);
        let heartbeat = reported
            .and_then(|r| r.last_heartbeat.as_ref())
            .map(|t| t.0);
        let reachable = match heartbeat {
            None => set_condition(
                previous,
                "Reachable",
                false,
                "NeverReported",
                "no agent has reported for this asset yet",
                generation,
                now,
            ),
            Some(at)
                if at
                    > now
                        .checked_add(CLOCK_SKEW_TOLERANCE)
                        .unwrap_or(Timestamp::MAX) =>
            {
                set_condition(
                    previous,
                    "Reachable",
                    false,
                    "ClockSkew",
                    &format!(
                        "the agent's clock is ahead: its last heartbeat says {at}, more than \
                         {CLOCK_SKEW_TOLERANCE:#} after the operator's clock ({}); fix the \
                         machine's time (NTP)",
                        now.round(jiff::Unit::Second).unwrap_or(now)
                    ),
                    generation,
                    now,
                )
            }
            Some(at) => {
                let stale_at = at.checked_add(stale_after).unwrap_or(Timestamp::MAX);
                wake(stale_at, &mut derived);
                if now < stale_at {
                    set_condition(
                        previous,
                        "Reachable",
                        true,
                        "HeartbeatFresh",
                        "the agent reported within staleAfter",
                        generation,
                        now,
                    )
                } else {
                    set_condition(
                        previous,
                        "Reachable",
                        false,
                        "AgentStale",
                        &format!(
                            "no heartbeat since {at}, longer than staleAfter ({})",
                            asset.spec.stale_after.as_deref().unwrap_or("30m")
                        ),
                        generation,
                        now,
                    )
                }
            }
        };
        let ready = readiness(previous, &problems_of(kind::ASSET, name), generation, now);
        let mut state = states.get(name).copied().unwrap_or_default();
        let missing_updates = reported.map(|r| missing_count(&r.available_updates));
        // "Nothing missing" is only known from a report; what spec alone decides (a hold, no
        // ring, no window) still shows.
        if reported.is_none() && state == AssetState::UpToDate {
            state = AssetState::Unknown;
        }
        // Up to date under no policy is not up to date when updates are missing.
        if !governed.contains(name) && missing_updates.is_some_and(|n| n > 0) {
            state = AssetState::Unmanaged;
        }
        derived.assets.insert(
            name.to_owned(),
            AssetSummary {
                missing_updates,
                state,
                conditions: vec![ready, reachable],
                observed_generation: generation,
            },
        );
    }

    // Rings: their size is the number of assets they receive under some policy.
    let mut ring_members: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for view in &evaluation.assets {
        if let Some(ring) = view.ring.as_deref() {
            ring_members
                .entry(ring)
                .or_default()
                .insert(view.name.as_str());
        }
    }
    for ring in &inventory.rings {
        let Some(name) = ring.metadata.name.as_deref() else {
            continue;
        };
        let previous = ring
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        let generation = ring.metadata.generation;
        derived.rings.insert(
            name.to_owned(),
            RingStatus {
                size: Some(
                    ring_members
                        .get(name)
                        .map_or(0, |m| i32::try_from(m.len()).unwrap_or(i32::MAX)),
                ),
                conditions: vec![readiness(
                    previous,
                    &problems_of(kind::RING, name),
                    generation,
                    now,
                )],
                observed_generation: generation,
            },
        );
    }

    // Windows: open now, the next opening and closing, the assets they select.
    for window in &inventory.windows {
        let Some(name) = window.metadata.name.as_deref() else {
            continue;
        };
        let previous = window
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        let generation = window.metadata.generation;
        let problems = problems_of(kind::WINDOW, name);
        let mut status = MaintenanceWindowStatus {
            matched_assets: Some(
                i32::try_from(
                    inventory
                        .assets
                        .iter()
                        .filter(|a| {
                            selector::matches(
                                window.spec.selector.as_ref(),
                                a.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
                            )
                        })
                        .count(),
                )
                .unwrap_or(i32::MAX),
            ),
            conditions: vec![readiness(previous, &problems, generation, now)],
            observed_generation: generation,
            ..MaintenanceWindowStatus::default()
        };
        if problems.is_empty()
            && let Ok(schedule) = compile(&window.spec)
        {
            let current = schedule.interval_at(now);
            status.open = Some(current.is_some());
            let next = schedule.next_open_after(now);
            status.next_open = next.as_ref().map(|i| Time(i.open));
            status.next_close = current.as_ref().or(next.as_ref()).map(|i| Time(i.close));
            if let Some(t) = schedule.next_change_after(now) {
                wake(t, &mut derived);
            }
        }
        derived.windows.insert(name.to_owned(), status);
    }

    // Policies: a compact summary of their assets and their active rollout.
    for policy in &inventory.policies {
        let Some(name) = policy.metadata.name.as_deref() else {
            continue;
        };
        let previous = policy
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        let generation = policy.metadata.generation;
        let views: Vec<_> = evaluation
            .assets
            .iter()
            .filter(|v| v.policy.as_deref() == Some(name))
            .collect();
        let count = |state: AssetState| {
            i32::try_from(views.iter().filter(|v| v.state == state).count()).unwrap_or(i32::MAX)
        };
        let rollouts: Vec<_> = inventory
            .rollouts
            .iter()
            .filter(|r| r.spec.policy == name)
            .collect();
        let active = rollouts
            .iter()
            .find(|r| !r.status.as_ref().is_some_and(|s| is_terminal(s.phase)));
        derived.policies.insert(
            name.to_owned(),
            PatchPolicyStatus {
                matched_assets: Some(i32::try_from(views.len()).unwrap_or(i32::MAX)),
                unassigned_assets: Some(count(AssetState::Unassigned)),
                unscheduled_assets: Some(count(AssetState::Unscheduled)),
                // Filled in by the KPIs (crate::kpi), which own the counting of missing and
                // overdue asset-update pairs.
                pending_updates: None,
                overdue_updates: None,
                compliance: None,
                active_rollout: active.and_then(|r| r.metadata.name.clone()),
                last_rollout_at: rollouts
                    .iter()
                    .filter_map(|r| r.metadata.creation_timestamp.as_ref())
                    .map(|t| t.0)
                    .max()
                    .map(Time),
                conditions: vec![readiness(
                    previous,
                    &problems_of(kind::POLICY, name),
                    generation,
                    now,
                )],
                observed_generation: generation,
            },
        );
    }
    derived
}

/// `Ready` for an object the engine validated: False with the first problem (and how many
/// more) when it is invalid, so `kubectl wait --for=condition=Ready` fails with the reason.
fn readiness(
    previous: &[Condition],
    problems: &[&Problem],
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    match problems {
        [] => set_condition(previous, "Ready", true, "Valid", "", generation, now),
        [first, rest @ ..] => {
            let mut message = format!("{}: {}", first.field, first.message);
            if !rest.is_empty() {
                message.push_str(&format!(" (and {} more problems)", rest.len()));
            }
            set_condition(
                previous,
                "Ready",
                false,
                "InvalidSpec",
                &message,
                generation,
                now,
            )
        }
    }
}

/// The operator-owned part of an Asset's status as it should be: the engine's operation and
/// rollout records (already applied to `current`) plus the derived summary.
pub fn operator_asset_status(current: Option<&AssetStatus>, summary: &AssetSummary) -> AssetStatus {
    AssetStatus {
        reported: None,
        operation: current.and_then(|s| s.operation.clone()),
        rollouts: current.map(|s| s.rollouts.clone()).unwrap_or_default(),
        missing_updates: summary.missing_updates,
        state: Some(summary.state.as_str().to_owned()),
        conditions: summary.conditions.clone(),
        observed_generation: summary.observed_generation,
    }
}

/// Missing updates as `kubectl get assets` shows them: a repeated entry (one package for two
/// architectures) counts once, as in the KPIs.
fn missing_count(available: &[crate::api::asset::AvailableUpdate]) -> i32 {
    let distinct: BTreeSet<(&str, Option<&str>)> = available
        .iter()
        .map(|u| (u.id.as_str(), u.version.as_deref()))
        .collect();
    i32::try_from(distinct.len()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::asset::ReportedState;
    use crate::api::{Asset, AssetSpec, OsFamily};
    use std::sync::Arc;

    fn t(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn asset(name: &str, heartbeat: Option<&str>, stale_after: Option<&str>) -> Arc<Asset> {
        let mut asset = Asset::new(
            name,
            AssetSpec {
                stale_after: stale_after.map(str::to_owned),
                ..AssetSpec::new(OsFamily::Linux)
            },
        );
        asset.status = heartbeat.map(|h| AssetStatus {
            reported: Some(ReportedState {
                last_heartbeat: Some(Time(t(h))),
                ..ReportedState::default()
            }),
            ..AssetStatus::default()
        });
        Arc::new(asset)
    }

    fn reachable(derived: &Derived, name: &str) -> (String, String) {
        let condition = derived.assets[name]
            .conditions
            .iter()
            .find(|c| c.type_ == "Reachable")
            .expect("a Reachable condition");
        (condition.status.clone(), condition.reason.clone())
    }

    #[test]
    fn reachable_follows_the_heartbeat_and_distrusts_one_from_the_future() {
        let now = t("2026-11-27T10:00:00Z");
        let inventory = Inventory {
            assets: vec![
                asset("never", None, None),
                asset("fresh", Some("2026-11-27T09:45:00Z"), None),
                asset("silent", Some("2026-11-27T09:00:00Z"), None),
                asset("laptop", Some("2026-11-27T04:00:00Z"), Some("8h")),
                // Within the tolerance: a clock a little ahead is fine.
                asset("slightly-ahead", Some("2026-11-27T10:03:00Z"), None),
                asset("year-ahead", Some("2027-11-27T10:00:00Z"), None),
            ],
            ..Inventory::default()
        };
        let evaluation = crate::engine::evaluate::evaluate(&inventory, now);
        let derived = derive(&inventory, &evaluation, now);
        let expect = |name: &str, status: &str, reason: &str| {
            assert_eq!(
                reachable(&derived, name),
                (status.to_owned(), reason.to_owned()),
                "{name}"
            );
        };
        expect("never", "False", "NeverReported");
        expect("fresh", "True", "HeartbeatFresh");
        expect("silent", "False", "AgentStale");
        expect("laptop", "True", "HeartbeatFresh");
        expect("slightly-ahead", "True", "HeartbeatFresh");
        expect("year-ahead", "False", "ClockSkew");
        let message = &derived.assets["year-ahead"]
            .conditions
            .iter()
            .find(|c| c.type_ == "Reachable")
            .expect("Reachable")
            .message;
        assert_eq!(
            message,
            "the agent's clock is ahead: its last heartbeat says 2027-11-27T10:00:00Z, more than \
             5m after the operator's clock (2026-11-27T10:00:00Z); fix the machine's time (NTP)"
        );
        // The next change on its own: the fresh asset turns stale at 10:15.
        assert_eq!(derived.next_change, Some(t("2026-11-27T10:15:00Z")));
    }

    /// A Ring `pilot` selecting `ring: pilot`, and a one-off window open through 2027.
    const PILOT_RING_AND_OPEN_WINDOW: &str = "---
kind: Ring
apiVersion: patchwave.dev/v1alpha1
metadata: {name: pilot}
spec: {selector: {matchLabels: {ring: pilot}}}
---
kind: MaintenanceWindow
apiVersion: patchwave.dev/v1alpha1
metadata: {name: open}
spec: {start: '2026-01-01T00:00:00Z', end: '2027-12-31T00:00:00Z'}
";

    /// The statuses derived from the objects of `yaml` at `now`, and the evaluation's problems.
    fn derived_from(yaml: &str, now: Timestamp) -> (Derived, Vec<Problem>) {
        let mut loaded =
            crate::cli::load::load_str(std::path::Path::new("test.yaml"), yaml, "default");
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let inventory = loaded.namespaces.remove("default").expect("namespace");
        let evaluation = crate::engine::evaluate::evaluate(&inventory, now);
        (derive(&inventory, &evaluation, now), evaluation.problems)
    }

    #[test]
    fn an_asset_that_misses_updates_under_no_valid_policy_is_unmanaged() {
        let now = t("2026-11-27T10:00:00Z");
        let asset = |name: &str, team: &str, updates: &str| {
            format!(
                "---\nkind: Asset\napiVersion: patchwave.dev/v1alpha1\n\
                 metadata: {{name: {name}, labels: {{ring: pilot, team: '{team}'}}}}\n\
                 spec: {{osFamily: Linux}}\n\
                 status: {{reported: {{lastHeartbeat: '2026-11-27T09:45:00Z', \
                 availableUpdates: [{updates}]}}}}\n"
            )
        };
        let update = "{id: openssl, classification: Security, severity: Critical}";
        let yaml = [
            // Selected only by a policy whose ring does not exist.
            asset("orphan", "a", update),
            // Selected by no policy at all.
            asset("stray", "c", update),
            // Nothing missing: up to date under any policy or none.
            asset("clean", "a", ""),
            asset("covered", "b", update),
            PILOT_RING_AND_OPEN_WINDOW.to_owned(),
            "---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: broken}\n\
             spec: {selector: {matchLabels: {team: a}}, rings: [ghost]}\n"
                .to_owned(),
            "---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: fine}\n\
             spec: {selector: {matchLabels: {team: b}}, rings: [pilot]}\n"
                .to_owned(),
        ]
        .concat();
        let (derived, problems) = derived_from(&yaml, now);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let shown = |name: &str| {
            let summary = &derived.assets[name];
            (summary.state, summary.missing_updates)
        };
        assert_eq!(shown("orphan"), (AssetState::Unmanaged, Some(1)));
        assert_eq!(shown("stray"), (AssetState::Unmanaged, Some(1)));
        assert_eq!(shown("clean"), (AssetState::UpToDate, Some(0)));
        assert_eq!(shown("covered"), (AssetState::Pending, Some(1)));
    }

    #[test]
    fn an_asset_nobody_reported_for_is_unknown_unless_its_spec_decides() {
        let now = t("2026-11-27T10:00:00Z");
        let asset = |name: &str, hold: bool, status: &str| {
            format!(
                "---\nkind: Asset\napiVersion: patchwave.dev/v1alpha1\n\
                 metadata: {{name: {name}, labels: {{ring: pilot}}}}\n\
                 spec: {{osFamily: Linux, hold: {hold}}}\n{status}"
            )
        };
        let yaml = [
            asset("never", false, ""),
            asset("held-never", true, ""),
            asset("reported", false, "status: {reported: {lastHeartbeat: '2026-11-27T09:45:00Z'}}\n"),
            PILOT_RING_AND_OPEN_WINDOW.to_owned(),
            "---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: security}\n\
             spec: {rings: [pilot]}\n"
                .to_owned(),
        ]
        .concat();
        let (derived, problems) = derived_from(&yaml, now);
        assert!(problems.is_empty(), "{problems:?}");
        let shown = |name: &str| {
            let summary = &derived.assets[name];
            (summary.state, summary.missing_updates)
        };
        // Nothing reported: what it misses is not known, so neither a state nor a count.
        assert_eq!(shown("never"), (AssetState::Unknown, None));
        // A hold is in the spec: it stands whatever the agent says.
        assert_eq!(shown("held-never"), (AssetState::Held, None));
        // A report with nothing available is up to date.
        assert_eq!(shown("reported"), (AssetState::UpToDate, Some(0)));
        let status = operator_asset_status(None, &derived.assets["never"]);
        assert_eq!(status.state.as_deref(), Some("Unknown"));
        assert_eq!(status.missing_updates, None);
    }

    #[test]
    fn a_repeated_entry_is_one_missing_update() {
        let entry = |id: &str, version: &str| crate::api::asset::AvailableUpdate {
            id: id.to_owned(),
            version: Some(version.to_owned()),
            ..crate::api::asset::AvailableUpdate::default()
        };
        let available = [
            entry("glibc", "2.36"),
            entry("glibc", "2.36"),
            entry("openssl", "3.0.15"),
            entry("openssl", "3.0.16"),
        ];
        assert_eq!(missing_count(&available), 3);
        assert_eq!(missing_count(&[]), 0);
    }
}
