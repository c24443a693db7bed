//! Compliance and KPIs: one computation, from the Assets' installed-update history, their
//! reported missing updates, the PatchRollouts, the policies' deadlines and recorded
//! incidents. The monthly report, the policy status summary and the metrics all read it.
//!
//! Pure: objects and a period in, figures out. The definitions are written down in the README
//! ("KPI definitions") so an auditor can check them; the tests recompute small histories by hand.
//!
//! - An *update instance* is one update (id and version) on one asset: reported as available
//!   (missing) or present in the installed history.
//! - Its *clock* starts at the later of the update's release and the asset's enrolment (its
//!   creation): an asset cannot be blamed for the time before it was managed. Instances without
//!   a release date have no clock; they are counted apart and left out of rates and times.
//! - It is *installed at t* when its last history entry at or before t is an Install (a later
//!   Rollback makes it missing again; a reinstall makes it installed again). One installed at
//!   the asset's enrolment was there before patchwave: no patch rate or time to patch counts it.

pub mod report;
#[cfg(test)]
mod tests;

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::api::asset::AvailableUpdate;
use crate::api::asset::{AssetRolloutRecord, OperationPhase};
use crate::api::rollout::{RingPhase, RolloutPhase};
use crate::api::{
    Asset, Classification, Criticality, OperationAction, PatchPolicy, PatchRollout, Severity,
};
use crate::engine::selector;
use crate::engine::updates::{CompiledFilter, claim_order, deadline_days, owners};

/// The patch-rate horizons, in days (the customer's guide: 7, 14 and 30).
pub const HORIZONS: [i64; 3] = [7, 14, 30];
/// At most this many names in the lists of a report (the counts are always complete).
pub const MAX_LISTED: usize = 50;

/// A half-open reporting period `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    /// First instant included.
    pub from: Timestamp,
    /// First instant after the period.
    pub to: Timestamp,
}

impl Period {
    /// The period of the same length right before this one (for "since last month").
    pub fn previous(&self) -> Period {
        let length = self.to.duration_since(self.from);
        Period {
            from: self.from.checked_sub(length).unwrap_or(Timestamp::MIN),
            to: self.from,
        }
    }

    fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
}

/// An incident a person recorded (a PatchIncident), as the KPIs need it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedIncident {
    /// The asset concerned.
    pub asset: String,
    /// The rollout the person blames.
    pub rollout: String,
    /// Low, Medium, High or Critical.
    pub impact: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// What happened.
    pub note: String,
}

impl RecordedIncident {
    /// A PatchIncident as the KPIs count it: when it happened is `spec.occurredAt`, else when
    /// it was recorded; `None` when it has neither.
    pub fn of(incident: &crate::api::PatchIncident) -> Option<RecordedIncident> {
        let occurred_at = incident
            .spec
            .occurred_at
            .as_ref()
            .or(incident.metadata.creation_timestamp.as_ref())
            .map(|t| t.0)?;
        Some(RecordedIncident {
            asset: incident.spec.asset.clone(),
            rollout: incident.spec.rollout.clone(),
            impact: incident.spec.impact.as_str().to_owned(),
            occurred_at,
            note: incident.spec.note.clone(),
        })
    }
}

/// Everything the KPIs are computed from (one namespace, or several merged). Assets and
/// rollouts are borrowed one by one, so a subset (a policy's assets) costs no copy.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// Assets with their reported status.
    pub assets: &'a [&'a Asset],
    /// PatchRollouts with their status.
    pub rollouts: &'a [&'a PatchRollout],
    /// PatchPolicies (for deadlines and ownership).
    pub policies: &'a [PatchPolicy],
    /// Recorded incidents.
    pub incidents: &'a [RecordedIncident],
    /// `Some(policy)`: the figures of that policy alone. Patch rates, time to patch, open and
    /// overdue updates count only the update instances it owns (the engine's ownership, as for
    /// overdue updates); rollouts, operations and recorded incidents only its rollouts' (an
    /// operation and an incident name their rollout, a rollout its policy). Compliance still
    /// judges each of `assets` by all its updates, whichever policy owns them.
    pub policy: Option<&'a str>,
}

/// A share: how many were due and how many of them made it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    /// Instances judged.
    pub due: u32,
    /// Of those, installed in time.
    pub on_time: u32,
    /// `on_time / due`; `None` when nothing was due.
    pub rate: Option<f64>,
}

impl Rate {
    fn count(&mut self, on_time: bool) {
        self.due += 1;
        if on_time {
            self.on_time += 1;
        }
        self.rate = Some(f64::from(self.on_time) / f64::from(self.due));
    }
}

/// Patch rates within 7, 14 and 30 days.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchRates {
    /// Within 7 days of the clock start.
    pub within7: Rate,
    /// Within 14 days.
    pub within14: Rate,
    /// Within 30 days.
    pub within30: Rate,
}

impl PatchRates {
    fn horizon_mut(&mut self, days: i64) -> &mut Rate {
        match days {
            7 => &mut self.within7,
            14 => &mut self.within14,
            _ => &mut self.within30,
        }
    }
}

/// Time from clock start to first installation, for instances first installed in the period.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeToPatch {
    /// Instances first installed in the period (with a release date).
    pub installed: u32,
    /// Mean, in hours.
    pub mean_hours: Option<f64>,
    /// Median, in hours.
    pub median_hours: Option<f64>,
    /// Installed in the period but without a release date (no clock).
    pub without_release_date: u32,
}

/// Open (missing) instances at the end of the period by age since their clock start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgeBuckets {
    /// 0 to 7 days.
    pub days0to7: u32,
    /// 8 to 14 days.
    pub days8to14: u32,
    /// 15 to 30 days.
    pub days15to30: u32,
    /// More than 30 days.
    pub over30: u32,
    /// Without a release date.
    pub unknown: u32,
}

impl AgeBuckets {
    fn count(&mut self, age: Option<SignedDuration>) {
        let Some(age) = age else {
            self.unknown += 1;
            return;
        };
        let days = age.as_hours() / 24;
        match days {
            ..=7 => self.days0to7 += 1,
            8..=14 => self.days8to14 += 1,
            15..=30 => self.days15to30 += 1,
            _ => self.over30 += 1,
        }
    }

    /// All open instances.
    pub fn total(&self) -> u32 {
        self.days0to7 + self.days8to14 + self.days15to30 + self.over30 + self.unknown
    }
}

/// One overdue instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverdueUpdate {
    /// The asset's namespace.
    pub namespace: String,
    /// Asset.
    pub asset: String,
    /// Update id.
    pub update: String,
    /// Its severity.
    pub severity: Severity,
    /// The policy whose deadline it missed.
    pub policy: String,
    /// When it was due.
    pub due_at: Timestamp,
    /// Whole days past the deadline at the end of the period.
    pub days_overdue: i64,
}

/// Compliance of a group of assets: compliant = reported, and no overdue update at the end of
/// the period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Compliance {
    /// Assets in the group.
    pub assets: u32,
    /// Of those, compliant.
    pub compliant: u32,
    /// Of those, never reported by an agent: not compliant, since nothing shows what they miss.
    pub unreported: u32,
    /// `compliant / assets`; `None` for an empty group.
    pub rate: Option<f64>,
}

/// How one asset stands at the end of a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    Compliant,
    Overdue,
    Unreported,
}

impl Compliance {
    fn count(&mut self, standing: Standing) {
        self.assets += 1;
        match standing {
            Standing::Compliant => self.compliant += 1,
            Standing::Unreported => self.unreported += 1,
            Standing::Overdue => {}
        }
        self.rate = Some(f64::from(self.compliant) / f64::from(self.assets));
    }

    /// Assets with an update past its deadline.
    pub fn overdue(&self) -> u32 {
        self.assets - self.compliant - self.unreported
    }
}

/// Rollouts created in the period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutFigures {
    /// Created in the period.
    pub created: u32,
    /// Of those, Succeeded now.
    pub succeeded: u32,
    /// Of those, halted at least once.
    pub halted: u32,
    /// Of those, Aborted.
    pub aborted: u32,
    /// Of those, still on their way.
    pub in_progress: u32,
}

/// Operations that ended in the period (from the assets' rollout records).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationFigures {
    /// Installs that succeeded.
    pub succeeded: u32,
    /// Installs the agent reported as failed.
    pub failed: u32,
    /// Installs without a result within the operation timeout.
    pub timed_out: u32,
    /// Rollbacks that succeeded.
    pub rolled_back: u32,
    /// Rollbacks that failed or timed out.
    pub rollback_failed: u32,
}

/// Incidents caused by patches in the period.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Incidents {
    /// Failed and timed-out installs.
    pub failed_operations: u32,
    /// Successful rollbacks (each means a patch had to be taken back).
    pub rollbacks: u32,
    /// Incidents people recorded (PatchIncident).
    pub recorded: u32,
    /// The sum of the three.
    pub total: u32,
    /// The recorded ones, oldest first (at most [`MAX_LISTED`]).
    pub recorded_list: Vec<RecordedIncident>,
}

/// Every figure for one period.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Managed assets at the end of the period (enrolled before it ended).
    pub assets: u32,
    /// Patch rates, all instances.
    pub patch_rate: PatchRates,
    /// Patch rates by update severity.
    pub patch_rate_by_severity: BTreeMap<String, PatchRates>,
    /// Patch rates by asset criticality.
    pub patch_rate_by_criticality: BTreeMap<String, PatchRates>,
    /// Critical and Security updates within 7 days (the guide's first target).
    pub critical_security_within7: Rate,
    /// Time to patch.
    pub time_to_patch: TimeToPatch,
    /// Open instances at the end of the period by severity and age.
    pub open_by_severity: BTreeMap<String, AgeBuckets>,
    /// All open instances by age.
    pub open: AgeBuckets,
    /// Open instances past their policy's deadline at the end of the period.
    pub overdue: u32,
    /// Overdue instances by severity.
    pub overdue_by_severity: BTreeMap<String, u32>,
    /// Overdue instances by policy.
    pub overdue_by_policy: BTreeMap<String, u32>,
    /// Open instances by the policy that owns them.
    pub open_by_policy: BTreeMap<String, u32>,
    /// The most overdue instances (at most [`MAX_LISTED`], most overdue first).
    pub most_overdue: Vec<OverdueUpdate>,
    /// Compliance of all assets.
    pub compliance: Compliance,
    /// Compliance by asset criticality.
    pub compliance_by_criticality: BTreeMap<String, Compliance>,
    /// Assets that are not compliant, unreported ones included (at most [`MAX_LISTED`]).
    pub non_compliant_assets: Vec<String>,
    /// Assets no agent has reported for (at most [`MAX_LISTED`]).
    pub unreported_assets: Vec<String>,
    /// Every asset that is not compliant (for per-policy summaries; not serialised).
    #[serde(skip)]
    pub overdue_assets: BTreeSet<String>,
    /// Rollouts created in the period.
    pub rollouts: RolloutFigures,
    /// Operations that ended in the period.
    pub operations: OperationFigures,
    /// Incidents caused by patches.
    pub incidents: Incidents,
}

/// One update instance, as the KPIs see it.
struct Instance<'a> {
    asset: &'a Asset,
    id: &'a str,
    version: Option<&'a str>,
    /// Package name (include and exclude globs match it).
    package: Option<&'a str>,
    severity: Severity,
    classification: Classification,
    /// Clock start; `None` without a release date.
    clock: Option<Timestamp>,
    /// History entries of this instance, oldest first: (when, action).
    history: Vec<(Timestamp, OperationAction)>,
    /// Reported as available now.
    available: bool,
}

impl Instance<'_> {
    fn installed_at(&self, t: Timestamp) -> bool {
        self.history
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .is_some_and(|(_, action)| *action == OperationAction::Install)
    }

    /// Missing at `t`: its clock had started (an update released later was not missing yet)
    /// and it was not installed: reported as available now, or in the history.
    fn open_at(&self, t: Timestamp) -> bool {
        if self.clock.is_some_and(|clock| clock > t) {
            return false;
        }
        !self.installed_at(t) && (self.available || !self.history.is_empty())
    }

    fn first_install(&self) -> Option<Timestamp> {
        self.history
            .iter()
            .find(|(_, action)| *action == OperationAction::Install)
            .map(|(at, _)| *at)
    }
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

fn enrolled_at(asset: &Asset) -> Option<Timestamp> {
    asset.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Every update instance of every asset.
fn instances<'a>(assets: &[&'a Asset]) -> Vec<Instance<'a>> {
    let mut out = Vec::new();
    for &asset in assets {
        let Some(reported) = asset.reported() else {
            continue;
        };
        let enrolled = enrolled_at(asset);
        let clock = |released: Option<Timestamp>| -> Option<Timestamp> {
            let released = released?;
            Some(enrolled.map_or(released, |e| e.max(released)))
        };
        // Group the history by (id, version), keeping the first entry's metadata.
        let mut by_key: BTreeMap<(&str, Option<&str>), Instance<'_>> = BTreeMap::new();
        for entry in &reported.installed_history {
            let key = (entry.id.as_str(), entry.version.as_deref());
            let instance = by_key.entry(key).or_insert_with(|| Instance {
                asset,
                id: entry.id.as_str(),
                version: entry.version.as_deref(),
                package: entry.package.as_deref(),
                severity: entry.severity,
                classification: entry.classification,
                clock: clock(entry.released_at.as_ref().map(|t| t.0)),
                history: Vec::new(),
                available: false,
            });
            instance.history.push((entry.at.0, entry.action));
        }
        for update in &reported.available_updates {
            let key = (update.id.as_str(), update.version.as_deref());
            let instance = by_key.entry(key).or_insert_with(|| Instance {
                asset,
                id: update.id.as_str(),
                version: update.version.as_deref(),
                package: update.package.as_deref(),
                severity: update.severity,
                classification: update.classification,
                clock: clock(update.released_at.as_ref().map(|t| t.0)),
                history: Vec::new(),
                available: false,
            });
            instance.available = true;
            if instance.clock.is_none() {
                instance.clock = clock(update.released_at.as_ref().map(|t| t.0));
            }
        }
        for mut instance in by_key.into_values() {
            instance.history.sort_by_key(|(at, _)| *at);
            out.push(instance);
        }
    }
    out
}

/// The policies that claim updates, in the engine's claim order, compiled once.
struct Claims<'a> {
    policies: Vec<(&'a PatchPolicy, CompiledFilter)>,
    /// Per asset (by address), computed on its first instance: the policies selecting it
    /// (indices into `policies`) and the owner of each of its reported updates.
    by_asset: RefCell<HashMap<*const Asset, AssetClaims>>,
}

/// What [`Claims`] keeps of one asset.
struct AssetClaims {
    claimants: Vec<usize>,
    reported: Vec<Option<usize>>,
}

impl<'a> Claims<'a> {
    /// Every policy but those the operator found invalid (Ready=False, InvalidSpec), which
    /// govern nothing. Suspended ones keep their updates, as in the engine: suspending the
    /// security policy does not hand its updates to the monthly one.
    fn new(policies: &'a [PatchPolicy]) -> Self {
        let mut policies: Vec<_> = policies
            .iter()
            .filter(|p| !marked_invalid(p))
            .map(|p| (p, CompiledFilter::new(&p.spec.updates)))
            .collect();
        policies.sort_by(|(a, _), (b, _)| {
            claim_order(
                (
                    a.spec.priority,
                    a.metadata.name.as_deref().unwrap_or_default(),
                ),
                (
                    b.spec.priority,
                    b.metadata.name.as_deref().unwrap_or_default(),
                ),
            )
        });
        Claims {
            policies,
            by_asset: RefCell::default(),
        }
    }

    /// The policy that owns `instance` on its asset, by the engine's rule
    /// ([`owners`]): judged among the asset's reported updates while it is reported (so an
    /// id reported with two versions has no owner, and include globs see its package name),
    /// else as the installed entry it was.
    fn owner(&self, instance: &Instance<'_>) -> Option<&'a PatchPolicy> {
        static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
        let available = instance.asset.available_updates();
        let filters = |claimants: &[usize]| -> Vec<(usize, &CompiledFilter)> {
            claimants
                .iter()
                .map(|p| (*p, &self.policies[*p].1))
                .collect()
        };
        let mut by_asset = self.by_asset.borrow_mut();
        let claims = by_asset
            .entry(std::ptr::from_ref(instance.asset))
            .or_insert_with(|| {
                let labels = instance
                    .asset
                    .metadata
                    .labels
                    .as_ref()
                    .unwrap_or(&NO_LABELS);
                let claimants: Vec<usize> = (0..self.policies.len())
                    .filter(|p| {
                        selector::matches(self.policies[*p].0.spec.selector.as_ref(), labels)
                    })
                    .collect();
                let reported = owners(&filters(&claimants), available);
                AssetClaims {
                    claimants,
                    reported,
                }
            });
        let owner = match available
            .iter()
            .position(|u| u.id == instance.id && u.version.as_deref() == instance.version)
        {
            Some(index) => claims.reported.get(index).copied().flatten(),
            None => {
                let installed = AvailableUpdate {
                    id: instance.id.to_owned(),
                    version: instance.version.map(str::to_owned),
                    package: instance.package.map(str::to_owned),
                    severity: instance.severity,
                    classification: instance.classification,
                    ..Default::default()
                };
                owners(
                    &filters(&claims.claimants),
                    std::slice::from_ref(&installed),
                )
                .first()
                .copied()
                .flatten()
            }
        };
        owner.map(|p| self.policies[p].0)
    }
}

/// Whether the operator found `policy` invalid: it governs nothing, so it owns no update.
fn marked_invalid(policy: &PatchPolicy) -> bool {
    policy
        .status
        .as_ref()
        .is_some_and(|s| s.invalid_spec().is_some())
}

fn severity_name(severity: Severity) -> String {
    format!("{severity:?}")
}

fn criticality_name(criticality: Criticality) -> String {
    format!("{criticality:?}")
}

fn hours(duration: SignedDuration) -> f64 {
    duration.as_secs_f64() / 3600.0
}

/// Computes every figure for `period`.
pub fn figures(inputs: Inputs<'_>, period: Period) -> Figures {
    let mut figures = Figures::default();
    let claims = Claims::new(inputs.policies);
    let scope = inputs.policy;
    // The rollouts in scope, and their names (what operations and incidents are attributed by).
    let rollouts: Vec<&PatchRollout> = inputs
        .rollouts
        .iter()
        .copied()
        .filter(|r| scope.is_none_or(|p| r.spec.policy == p))
        .collect();
    let rollout_names: BTreeSet<&str> = rollouts
        .iter()
        .filter_map(|r| r.metadata.name.as_deref())
        .collect();
    let in_scope = |rollout: &str| scope.is_none() || rollout_names.contains(rollout);
    let end = period.to;
    let managed: Vec<&Asset> = inputs
        .assets
        .iter()
        .copied()
        .filter(|a| enrolled_at(a).is_none_or(|e| e < end))
        .collect();
    figures.assets = u32::try_from(managed.len()).unwrap_or(u32::MAX);

    let all = instances(inputs.assets);
    let mut ttp: Vec<f64> = Vec::new();
    let mut overdue_assets: BTreeSet<&str> = BTreeSet::new();
    let mut overdue: Vec<OverdueUpdate> = Vec::new();
    for instance in &all {
        let asset_name = instance.asset.metadata.name.as_deref().unwrap_or_default();
        let severity = severity_name(instance.severity);
        let criticality = criticality_name(instance.asset.spec.criticality);
        // Computed once, and only when needed: the first policy in claim order that takes it.
        let owner_cell = OnceCell::new();
        let owner = || *owner_cell.get_or_init(|| claims.owner(instance));
        let mine =
            scope.is_none_or(|p| owner().and_then(|o| o.metadata.name.as_deref()) == Some(p));
        // Already installed when the asset was enrolled: patchwave neither patched it nor let
        // it wait, so it is left out of patch rates and time to patch.
        let preinstalled = enrolled_at(instance.asset).is_some_and(|e| instance.installed_at(e));
        // Patch rates: judged at the horizon's mark, for marks inside the period.
        if let Some(clock) = instance.clock.filter(|_| mine && !preinstalled) {
            for horizon in HORIZONS {
                let mark = clock + days(horizon);
                if !period.contains(mark) {
                    continue;
                }
                let on_time = instance.installed_at(mark);
                figures.patch_rate.horizon_mut(horizon).count(on_time);
                figures
                    .patch_rate_by_severity
                    .entry(severity.clone())
                    .or_default()
                    .horizon_mut(horizon)
                    .count(on_time);
                figures
                    .patch_rate_by_criticality
                    .entry(criticality.clone())
                    .or_default()
                    .horizon_mut(horizon)
                    .count(on_time);
                if horizon == 7
                    && (instance.severity == Severity::Critical
                        || instance.classification == Classification::Security)
                {
                    figures.critical_security_within7.count(on_time);
                }
            }
        }
        // Time to patch: first installations inside the period.
        if let Some(first) = instance
            .first_install()
            .filter(|t| mine && !preinstalled && period.contains(*t))
        {
            match instance.clock {
                Some(clock) => {
                    // Installed before its clock started (the release date became known
                    // later): zero, not negative.
                    let took = first.duration_since(clock).max(SignedDuration::ZERO);
                    ttp.push(hours(took));
                }
                None => figures.time_to_patch.without_release_date += 1,
            }
        }
        // Open and overdue at the end of the period.
        if enrolled_at(instance.asset).is_some_and(|e| e >= end) || !instance.open_at(end) {
            continue;
        }
        let age = instance.clock.map(|c| end.duration_since(c));
        let owner = owner();
        if mine {
            figures.open.count(age);
            figures
                .open_by_severity
                .entry(severity.clone())
                .or_default()
                .count(age);
        }
        if let Some(policy) = owner.filter(|_| mine) {
            *figures
                .open_by_policy
                .entry(policy.metadata.name.clone().unwrap_or_default())
                .or_default() += 1;
        }
        let (Some(policy), Some(clock)) = (owner, instance.clock) else {
            continue;
        };
        let due_days = deadline_days(
            &policy.spec.deadlines,
            instance.severity,
            instance.classification,
        );
        let due_at = clock + days(i64::from(due_days));
        if due_at < end {
            // The asset is not compliant, whichever policy owns the update.
            overdue_assets.insert(asset_name);
            if !mine {
                continue;
            }
            let policy_name = policy.metadata.name.clone().unwrap_or_default();
            figures.overdue += 1;
            *figures.overdue_by_severity.entry(severity).or_default() += 1;
            *figures
                .overdue_by_policy
                .entry(policy_name.clone())
                .or_default() += 1;
            overdue.push(OverdueUpdate {
                namespace: instance
                    .asset
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_default(),
                asset: asset_name.to_owned(),
                update: instance.id.to_owned(),
                severity: instance.severity,
                policy: policy_name,
                due_at,
                days_overdue: end.duration_since(due_at).as_hours() / 24,
            });
        }
    }
    overdue.sort_by(|a, b| {
        a.due_at
            .cmp(&b.due_at)
            .then(a.asset.cmp(&b.asset))
            .then(a.update.cmp(&b.update))
    });
    overdue.truncate(MAX_LISTED);
    figures.most_overdue = overdue;

    figures.time_to_patch.installed = u32::try_from(ttp.len()).unwrap_or(u32::MAX);
    if !ttp.is_empty() {
        ttp.sort_by(f64::total_cmp);
        let n = ttp.len();
        figures.time_to_patch.mean_hours = Some(ttp.iter().sum::<f64>() / n as f64);
        figures.time_to_patch.median_hours = Some(if n % 2 == 1 {
            ttp[n / 2]
        } else {
            (ttp[n / 2 - 1] + ttp[n / 2]) / 2.0
        });
    }

    figures.overdue_assets = overdue_assets.iter().map(|a| (*a).to_owned()).collect();
    for asset in &managed {
        let name = asset.metadata.name.as_deref().unwrap_or_default();
        let standing = if asset.reported().is_none() {
            Standing::Unreported
        } else if overdue_assets.contains(name) {
            Standing::Overdue
        } else {
            Standing::Compliant
        };
        figures.compliance.count(standing);
        figures
            .compliance_by_criticality
            .entry(criticality_name(asset.spec.criticality))
            .or_default()
            .count(standing);
        if standing != Standing::Compliant && figures.non_compliant_assets.len() < MAX_LISTED {
            figures.non_compliant_assets.push(name.to_owned());
        }
        if standing == Standing::Unreported && figures.unreported_assets.len() < MAX_LISTED {
            figures.unreported_assets.push(name.to_owned());
        }
    }

    for &rollout in &rollouts {
        let created = rollout.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if !created.is_some_and(|c| period.contains(c)) {
            continue;
        }
        figures.rollouts.created += 1;
        let status = rollout.status.as_ref();
        match status.map(|s| s.phase) {
            Some(RolloutPhase::Succeeded) => figures.rollouts.succeeded += 1,
            Some(RolloutPhase::Aborted) => figures.rollouts.aborted += 1,
            _ => figures.rollouts.in_progress += 1,
        }
        if status.is_some_and(|s| {
            s.rings
                .iter()
                .any(|r| r.halts > 0 || r.phase == RingPhase::Halted)
        }) {
            figures.rollouts.halted += 1;
        }
    }

    for &asset in inputs.assets {
        let records: &[AssetRolloutRecord] = asset
            .status
            .as_ref()
            .map(|s| s.rollouts.as_slice())
            .unwrap_or_default();
        for record in records.iter().filter(|r| in_scope(&r.rollout)) {
            let Some(finished) = record.finished_at.as_ref().map(|t| t.0) else {
                continue;
            };
            if !period.contains(finished) {
                continue;
            }
            let ops = &mut figures.operations;
            match (record.action, record.phase) {
                (OperationAction::Install, OperationPhase::Succeeded) => ops.succeeded += 1,
                (OperationAction::Install, OperationPhase::Failed) => ops.failed += 1,
                (OperationAction::Install, OperationPhase::NoResponse) => ops.timed_out += 1,
                (OperationAction::Rollback, OperationPhase::Succeeded) => ops.rolled_back += 1,
                (
                    OperationAction::Rollback,
                    OperationPhase::Failed | OperationPhase::NoResponse,
                ) => ops.rollback_failed += 1,
                (_, OperationPhase::Running) => {}
            }
        }
    }

    let incidents = &mut figures.incidents;
    incidents.failed_operations = figures.operations.failed + figures.operations.timed_out;
    incidents.rollbacks = figures.operations.rolled_back;
    let mut recorded: Vec<&RecordedIncident> = inputs
        .incidents
        .iter()
        .filter(|i| period.contains(i.occurred_at) && in_scope(&i.rollout))
        .collect();
    recorded.sort_by_key(|i| i.occurred_at);
    incidents.recorded = u32::try_from(recorded.len()).unwrap_or(u32::MAX);
    incidents.total = incidents.failed_operations + incidents.rollbacks + incidents.recorded;
    incidents.recorded_list = recorded.into_iter().take(MAX_LISTED).cloned().collect();
    figures
}
