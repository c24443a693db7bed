//! Semantic validation: what the CRD schema cannot check, and the schema and CEL rules that
//! matter to the engine, re-checked because `kubectl patchwave validate` runs without an API
//! server.
//!
//! [`validate`] looks at one namespace ([`Inventory`]) and returns every [`Problem`], each
//! naming the object and the field:
//!
//! - MaintenanceWindow: the cron expression, the time zone, durations and the recurring/one-off
//!   forms ([`windows::compile`]); the selector.
//! - Ring: selector, `maxConcurrent` (>= 1 or 1%-100%), `failureThreshold` (>= 0 or 0%-100%),
//!   `bakeTime`.
//! - PatchPolicy: selector, priority, update filter (globs non-empty, `deferDays`), deadlines,
//!   rings (at least one, none twice, each an existing Ring), windows (each an existing Allow
//!   MaintenanceWindow, none twice), disruption budgets, `manualApproval` without repeats, hook
//!   names, `operationTimeout`, and overlaps: two policies of equal priority whose selectors
//!   both select an existing asset and whose update filters can both approve the same update.
//!   The overlap is reported on the policy whose name sorts later, so the earlier one keeps
//!   working.
//! - PatchRollout: its policy exists, rings and updates non-empty, no ring twice.
//! - Asset: `staleAfter` (> 0) and `expectedDuration`. (The `simulate.patchwave.dev/`
//!   annotations concern only the offline commands; their loader checks them.)
//!
//! A problem makes its object invalid ([`validity`]); references *to* an invalid object are not
//! reported again on the referring object (the invalid object carries the problem). Problems
//! come out in a fixed order: by kind (MaintenanceWindow, Ring, PatchPolicy, PatchRollout,
//! Asset), then by object name, then in field order.
//!
//! Cost: linear in the number of assets. The overlap check matches each asset against the
//! selectors of the policies only (policies are few), and only when two policies of equal
//! priority have update filters that can overlap at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Weak};

use jiff::SignedDuration;

use super::Inventory;
use super::duration::parse_duration;
use super::selector::{self, CompiledSelector};
use super::updates::{ReportedEntries, repeats_an_id};
use super::windows::{self, WindowSchedule};
use crate::api::policy::{PatchPolicySpec, UpdateFilter};
use crate::api::window::WindowType;
use crate::api::{Asset, IntOrPercent, LabelSelector, PatchPolicy};

/// The kind names [`Problem::kind`] uses.
pub mod kind {
    /// `Asset`.
    pub const ASSET: &str = "Asset";
    /// `Ring`.
    pub const RING: &str = "Ring";
    /// `MaintenanceWindow`.
    pub const WINDOW: &str = "MaintenanceWindow";
    /// `PatchPolicy`.
    pub const POLICY: &str = "PatchPolicy";
    /// `PatchRollout`.
    pub const ROLLOUT: &str = "PatchRollout";
    /// `PatchIncident` (checked by `validate`, never read by the engine).
    pub const INCIDENT: &str = "PatchIncident";
}

/// Most rings a policy (or rollout) may list, as in the CRD.
const MAX_RINGS: usize = 16;
/// Most windows a policy may list, as in the CRD.
const MAX_WINDOWS: usize = 32;
/// Most disruption budgets a policy may have, as in the CRD.
const MAX_BUDGETS: usize = 16;
/// Longest hook name, as in the CRD.
const MAX_HOOK_NAME: usize = 63;

/// One problem with one field of one object, such as
/// `PatchPolicy/security-fast: spec.rings[1]: Ring "dept-b" does not exist; ...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Problem {
    /// Kind of the object (one of the constants in [`kind`]).
    pub kind: &'static str,
    /// Name of the object.
    pub name: String,
    /// Path of the offending field from the object root, such as `spec.rings[1]`.
    pub field: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl Problem {
    fn new(
        kind: &'static str,
        name: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            kind,
            name: name.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}: {}: {}",
            self.kind, self.name, self.field, self.message
        )
    }
}

impl std::error::Error for Problem {}

/// Which objects of an inventory have problems, by kind. An invalid object must not be acted
/// on; its problems go into its `Ready=False` condition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validity {
    /// PatchPolicies with at least one problem.
    pub invalid_policies: BTreeSet<String>,
    /// Rings with at least one problem.
    pub invalid_rings: BTreeSet<String>,
    /// MaintenanceWindows with at least one problem.
    pub invalid_windows: BTreeSet<String>,
    /// Assets with at least one problem.
    pub invalid_assets: BTreeSet<String>,
    /// PatchRollouts with at least one problem.
    pub invalid_rollouts: BTreeSet<String>,
}

impl Validity {
    /// Whether the object `kind`/`name` has no problem. Unknown kinds are valid.
    pub fn is_valid(&self, kind: &str, name: &str) -> bool {
        self.set(kind).is_none_or(|set| !set.contains(name))
    }

    /// Whether no object has a problem.
    pub fn all_valid(&self) -> bool {
        [
            &self.invalid_policies,
            &self.invalid_rings,
            &self.invalid_windows,
            &self.invalid_assets,
            &self.invalid_rollouts,
        ]
        .iter()
        .all(|set| set.is_empty())
    }

    fn set(&self, kind: &str) -> Option<&BTreeSet<String>> {
        match kind {
            kind::POLICY => Some(&self.invalid_policies),
            kind::RING => Some(&self.invalid_rings),
            kind::WINDOW => Some(&self.invalid_windows),
            kind::ASSET => Some(&self.invalid_assets),
            kind::ROLLOUT => Some(&self.invalid_rollouts),
            _ => None,
        }
    }
}

/// Which objects `problems` make invalid.
pub fn validity(problems: &[Problem]) -> Validity {
    let mut validity = Validity::default();
    for problem in problems {
        let set = match problem.kind {
            kind::POLICY => &mut validity.invalid_policies,
            kind::RING => &mut validity.invalid_rings,
            kind::WINDOW => &mut validity.invalid_windows,
            kind::ASSET => &mut validity.invalid_assets,
            kind::ROLLOUT => &mut validity.invalid_rollouts,
            _ => continue,
        };
        set.insert(problem.name.clone());
    }
    validity
}

/// Everything one validation pass produces: the problems, which objects they make invalid,
/// and the compiled schedules of the windows, so that callers need not compile them again.
#[derive(Clone, Debug, Default)]
pub struct Validation {
    /// Every problem, in the order [`validate`] documents.
    pub problems: Vec<Problem>,
    /// Which objects have problems.
    pub validity: Validity,
    /// Compiled schedules of the MaintenanceWindows whose schedule is valid, by name. A window
    /// may be here and still be invalid for another reason (its selector): consult
    /// [`Validity::invalid_windows`].
    pub windows: BTreeMap<String, WindowSchedule>,
}

/// Every problem of `inventory`, in a fixed order (see the module docs).
pub fn validate(inventory: &Inventory) -> Vec<Problem> {
    validate_all(inventory).problems
}

/// Validates `inventory` once and returns the problems, the validity and the compiled window
/// schedules.
pub fn validate_all(inventory: &Inventory) -> Validation {
    validate_with(inventory, &BTreeSet::new())
}

/// Like [`validate_all`], for an inventory that is known to lack some objects: `unloadable`
/// holds `(kind, name)` of objects that exist but could not be read (the offline loader reports
/// their parse errors). References to them are not reported as references to missing objects.
pub fn validate_with(
    inventory: &Inventory,
    unloadable: &BTreeSet<(&'static str, String)>,
) -> Validation {
    validate_inner(inventory, unloadable, None)
}

/// Like [`validate_all`], reusing the problems of the assets that `kept` has already checked.
pub fn validate_kept(inventory: &Inventory, kept: &mut KeptAssetChecks) -> Validation {
    validate_inner(inventory, &BTreeSet::new(), Some(kept))
}

fn validate_inner(
    inventory: &Inventory,
    unloadable: &BTreeSet<(&'static str, String)>,
    mut kept: Option<&mut KeptAssetChecks>,
) -> Validation {
    let (windows, mut window_problems) = compile_windows(inventory);
    for window in &inventory.windows {
        let name = object_name(&window.metadata);
        push_selector(
            &mut window_problems,
            kind::WINDOW,
            name,
            window.spec.selector.as_ref(),
            "spec.selector",
        );
    }
    sort_by_name(&mut window_problems);

    let mut ring_problems = Vec::new();
    for ring in &inventory.rings {
        check_ring(&mut ring_problems, object_name(&ring.metadata), &ring.spec);
    }
    sort_by_name(&mut ring_problems);

    let names = Names::new(inventory, unloadable);
    let mut policy_problems = Vec::new();
    for policy in &inventory.policies {
        check_policy(
            &mut policy_problems,
            object_name(&policy.metadata),
            &policy.spec,
            &names,
        );
    }
    policy_problems.extend(overlaps(inventory));
    sort_by_name(&mut policy_problems);

    let mut rollout_problems = Vec::new();
    for rollout in &inventory.rollouts {
        let name = object_name(&rollout.metadata);
        let spec = &rollout.spec;
        let mut push = |field: String, message: String| {
            rollout_problems.push(Problem::new(kind::ROLLOUT, name, field, message));
        };
        if spec.policy.is_empty() {
            push("spec.policy".into(), "policy must not be empty".into());
        } else if !names.policies.contains(spec.policy.as_str())
            && !unloadable.contains(&(kind::POLICY, spec.policy.clone()))
        {
            push(
                "spec.policy".into(),
                missing_message(kind::POLICY, &spec.policy, &names.policies),
            );
        }
        if spec.rings.is_empty() {
            push(
                "spec.rings".into(),
                "a rollout needs at least one ring".into(),
            );
        }
        for (i, message) in list_problems(&spec.rings, "Ring", MAX_RINGS) {
            push(format!("spec.rings[{i}]"), message);
        }
        if spec.updates.is_empty() {
            push(
                "spec.updates".into(),
                "a rollout needs at least one update in its frozen set".into(),
            );
        }
        for (i, resume) in spec.resumes.iter().enumerate() {
            if resume.halt < 1 {
                push(
                    format!("spec.resumes[{i}].halt"),
                    format!("halt counts the ring's halts from 1, found {}", resume.halt),
                );
            }
        }
    }
    sort_by_name(&mut rollout_problems);

    let mut asset_problems = Vec::new();
    for (index, asset) in inventory.assets.iter().enumerate() {
        match kept.as_deref_mut() {
            Some(kept) => asset_problems.extend_from_slice(kept.problems_of(index, asset)),
            None => asset_problems.extend(check_asset(asset)),
        }
    }
    if let Some(kept) = kept {
        // Assets that went: their entries would only hold on to their memory.
        kept.checked.truncate(inventory.assets.len());
    }
    sort_by_name(&mut asset_problems);

    let mut problems = window_problems;
    problems.extend(ring_problems);
    problems.extend(policy_problems);
    problems.extend(rollout_problems);
    problems.extend(asset_problems);
    let validity = validity(&problems);
    Validation {
        problems,
        validity,
        windows,
    }
}

/// The problems of one Asset (see the module docs).
fn check_asset(asset: &Asset) -> Vec<Problem> {
    let mut problems = Vec::new();
    let name = object_name(&asset.metadata);
    let spec = &asset.spec;
    if let Some(text) = &spec.stale_after {
        match parse_duration(text) {
            Err(message) => {
                problems.push(Problem::new(kind::ASSET, name, "spec.staleAfter", message))
            }
            Ok(d) if d <= SignedDuration::ZERO => problems.push(Problem::new(
                kind::ASSET,
                name,
                "spec.staleAfter",
                "staleAfter must be longer than 0s: the asset would be unreachable as soon \
                 as its agent reported",
            )),
            Ok(_) => {}
        }
    }
    if let Some(text) = &spec.expected_duration {
        if let Err(message) = parse_duration(text) {
            problems.push(Problem::new(
                kind::ASSET,
                name,
                "spec.expectedDuration",
                message,
            ));
        }
    }
    problems.extend(ambiguous_candidates(asset, name));
    problems
}

/// The problems of each Asset, kept from one validation of a namespace to the next for every
/// asset that is still the same object. `plan` and `simulate` validate at every instant of
/// virtual time, and almost every asset is then as it was.
#[derive(Default)]
pub struct KeptAssetChecks {
    /// Per asset (by index in the inventory): the object checked, and its problems. A weak
    /// reference keeps the address from being reused by another asset.
    checked: Vec<(Weak<Asset>, Vec<Problem>)>,
}

impl KeptAssetChecks {
    fn problems_of(&mut self, index: usize, asset: &Arc<Asset>) -> &[Problem] {
        if self.checked.len() <= index {
            self.checked
                .resize_with(index + 1, || (Weak::new(), Vec::new()));
        }
        let (checked, problems) = &mut self.checked[index];
        if !std::ptr::eq(checked.as_ptr(), Arc::as_ptr(asset)) {
            *checked = Arc::downgrade(asset);
            *problems = check_asset(asset);
        }
        problems
    }
}

/// Updates the agent reports with two versions (see [`ReportedEntries`]): no rollout installs
/// them on the asset until the agent reports one.
fn ambiguous_candidates(asset: &crate::api::Asset, name: &str) -> Vec<Problem> {
    let available = asset.available_updates();
    // Checked for every asset on every evaluation: the usual report needs no more than this.
    if !repeats_an_id(available) {
        return Vec::new();
    }
    let version = |i: usize| {
        available[i]
            .version
            .clone()
            .unwrap_or_else(|| "no version".to_owned())
    };
    ReportedEntries::of(available)
        .ambiguous
        .into_iter()
        .map(|(first, other)| {
            let id = &available[first].id;
            Problem::new(
                kind::ASSET,
                name,
                format!("status.reported.availableUpdates[{other}].version"),
                format!(
                    "update {id} is reported with two versions ({} at [{first}], {} here): the \
                     agent must report one candidate version per update; until it does, no \
                     rollout installs {id} on this asset",
                    version(first),
                    version(other),
                ),
            )
        })
        .collect()
}

/// Compiles the schedule of every MaintenanceWindow ([`windows::compile`]): the schedules that
/// compile, by name, and the problems of those that do not. Selectors are not looked at here.
pub fn compile_windows(inventory: &Inventory) -> (BTreeMap<String, WindowSchedule>, Vec<Problem>) {
    let mut schedules = BTreeMap::new();
    let mut problems = Vec::new();
    for window in &inventory.windows {
        let name = object_name(&window.metadata);
        match windows::compile(&window.spec) {
            Ok(schedule) => {
                schedules.insert(name.to_owned(), schedule);
            }
            Err(errors) => problems.extend(
                errors
                    .into_iter()
                    .map(|e| Problem::new(kind::WINDOW, name, e.field, e.message)),
            ),
        }
    }
    sort_by_name(&mut problems);
    (schedules, problems)
}

fn object_name(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.name.as_deref().unwrap_or("")
}

/// Stable sort by object name: keeps the field order within each object.
fn sort_by_name(problems: &mut [Problem]) {
    problems.sort_by(|a, b| a.name.cmp(&b.name));
}

/// A reference to an object of the files that exists but could not be read: not missing,
/// but the referring object cannot take part without it.
fn unreadable_message(kind_name: &str, name: &str) -> String {
    format!(
        "{kind_name} {name:?} exists but could not be read (its own problem says why), so \
         the policy cannot take part"
    )
}

/// Names of the objects a policy or rollout may refer to.
struct Names<'a> {
    rings: BTreeSet<&'a str>,
    policies: BTreeSet<&'a str>,
    /// Window name -> its type.
    windows: BTreeMap<&'a str, WindowType>,
    unloadable: &'a BTreeSet<(&'static str, String)>,
}

impl<'a> Names<'a> {
    fn new(inventory: &'a Inventory, unloadable: &'a BTreeSet<(&'static str, String)>) -> Self {
        Names {
            rings: inventory
                .rings
                .iter()
                .map(|r| object_name(&r.metadata))
                .collect(),
            policies: inventory
                .policies
                .iter()
                .map(|p| object_name(&p.metadata))
                .collect(),
            windows: inventory
                .windows
                .iter()
                .map(|w| (object_name(&w.metadata), w.spec.type_))
                .collect(),
            unloadable,
        }
    }

    fn unloadable(&self, kind: &'static str, name: &str) -> bool {
        self.unloadable.contains(&(kind, name.to_owned()))
    }
}

/// "Ring \"dept-b\" does not exist in this namespace; the Rings are: pilot, rest".
fn missing_message<'a>(
    kind: &str,
    name: &str,
    existing: impl IntoIterator<Item = &'a &'a str>,
) -> String {
    let existing: Vec<&str> = existing.into_iter().copied().collect();
    let plural = if kind == kind::POLICY {
        "PatchPolicies".to_owned()
    } else {
        format!("{kind}s")
    };
    if existing.is_empty() {
        format!("{kind} {name:?} does not exist in this namespace, which has no {plural}")
    } else {
        format!(
            "{kind} {name:?} does not exist in this namespace; the {plural} are: {}",
            existing.join(", ")
        )
    }
}

/// Problems of a list of names, by index: empty entries and repeats. A list longer than `max`
/// gets one more problem at index `max` (merged into that entry's message if it has one).
fn list_problems(names: &[String], what: &str, max: usize) -> BTreeMap<usize, String> {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut out = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            out.insert(i, format!("{what} name must not be empty"));
        } else if let Some(first) = first_seen.get(name.as_str()) {
            out.insert(
                i,
                format!("{what} {name:?} is listed twice (also at index {first})"),
            );
        } else {
            first_seen.insert(name, i);
        }
    }
    if names.len() > max {
        let too_many = format!("at most {max} {what}s may be listed, found {}", names.len());
        out.entry(max)
            .and_modify(|message| *message = format!("{message}; {too_many}"))
            .or_insert(too_many);
    }
    out
}

fn push_selector(
    problems: &mut Vec<Problem>,
    kind: &'static str,
    name: &str,
    selector: Option<&LabelSelector>,
    path: &str,
) {
    if let Err(text) = selector::validate(selector, path) {
        problems.extend(
            split_selector_errors(&text, path)
                .into_iter()
                .map(|(field, message)| Problem::new(kind, name, field, message)),
        );
    }
}

/// [`selector::validate`] joins its problems with `"; "`, each starting with the selector's
/// path and `": "`; splits them back into `(field, message)`.
fn split_selector_errors(text: &str, path: &str) -> Vec<(String, String)> {
    let separator = format!("; {path}");
    let mut parts = Vec::new();
    for (i, part) in text.split(separator.as_str()).enumerate() {
        let part = if i == 0 {
            part.to_owned()
        } else {
            format!("{path}{part}")
        };
        match part.split_once(": ") {
            Some((field, message)) => parts.push((field.to_owned(), message.to_owned())),
            None => parts.push((path.to_owned(), part)),
        }
    }
    parts
}

fn check_ring(problems: &mut Vec<Problem>, name: &str, spec: &crate::api::RingSpec) {
    push_selector(
        problems,
        kind::RING,
        name,
        Some(&spec.selector),
        "spec.selector",
    );
    let mut push = |field: &str, message: String| {
        problems.push(Problem::new(kind::RING, name, field, message));
    };
    if let Some(value) = spec.max_concurrent {
        if !at_least_one(value) {
            push(
                "spec.maxConcurrent",
                format!(
                    "maxConcurrent must be an integer of at least 1 or a percentage from 1% to \
                     100%, found {value}"
                ),
            );
        }
    }
    if let Some(value) = spec.failure_threshold {
        let ok = match value {
            IntOrPercent::Int(n) => n >= 0,
            IntOrPercent::Percent(p) => p <= 100,
        };
        if !ok {
            push(
                "spec.failureThreshold",
                format!(
                    "failureThreshold must be an integer of at least 0 or a percentage from 0% \
                     to 100%, found {value}"
                ),
            );
        }
    }
    if let Err(message) = parse_duration(&spec.bake_time) {
        push("spec.bakeTime", message);
    }
}

/// `>= 1` or `1%..=100%`.
fn at_least_one(value: IntOrPercent) -> bool {
    match value {
        IntOrPercent::Int(n) => n >= 1,
        IntOrPercent::Percent(p) => (1..=100).contains(&p),
    }
}

fn check_policy(problems: &mut Vec<Problem>, name: &str, spec: &PatchPolicySpec, names: &Names) {
    push_selector(
        problems,
        kind::POLICY,
        name,
        spec.selector.as_ref(),
        "spec.selector",
    );
    let mut push = |field: String, message: String| {
        problems.push(Problem::new(kind::POLICY, name, field, message));
    };

    if !(0..=1000).contains(&spec.priority) {
        push(
            "spec.priority".into(),
            format!(
                "priority must be between 0 and 1000, found {}",
                spec.priority
            ),
        );
    }

    let updates = &spec.updates;
    for (list, field) in [(&updates.include, "include"), (&updates.exclude, "exclude")] {
        for (i, pattern) in list.iter().enumerate() {
            if pattern.is_empty() {
                push(
                    format!("spec.updates.{field}[{i}]"),
                    "glob patterns must not be empty; use \"*\" to match every update".into(),
                );
            }
        }
    }
    if !(0..=365).contains(&updates.defer_days) {
        push(
            "spec.updates.deferDays".into(),
            format!(
                "deferDays must be between 0 and 365, found {}",
                updates.defer_days
            ),
        );
    }

    let deadlines = &spec.deadlines;
    for (field, days) in [
        ("critical", deadlines.critical),
        ("important", deadlines.important),
        ("moderate", deadlines.moderate),
        ("low", deadlines.low),
        ("security", deadlines.security),
    ] {
        if !(1..=365).contains(&days) {
            push(
                format!("spec.deadlines.{field}"),
                format!("deadlines are 1 to 365 days after release, found {days}"),
            );
        }
    }

    if spec.rings.is_empty() {
        push(
            "spec.rings".into(),
            "a policy needs at least one ring: list the Ring names of its waves in order, for \
             example [pilot, rest]"
                .into(),
        );
    }
    let ring_problems = list_problems(&spec.rings, "Ring", MAX_RINGS);
    for (i, ring) in spec.rings.iter().enumerate() {
        let field = format!("spec.rings[{i}]");
        if let Some(message) = ring_problems.get(&i) {
            push(field, message.clone());
        } else if names.unloadable(kind::RING, ring) {
            push(field, unreadable_message(kind::RING, ring));
        } else if !names.rings.contains(ring.as_str()) {
            push(field, missing_message(kind::RING, ring, &names.rings));
        }
    }

    let window_problems = list_problems(&spec.windows, "MaintenanceWindow", MAX_WINDOWS);
    for (i, window) in spec.windows.iter().enumerate() {
        let field = format!("spec.windows[{i}]");
        if let Some(message) = window_problems.get(&i) {
            push(field, message.clone());
            continue;
        }
        match names.windows.get(window.as_str()) {
            Some(WindowType::Allow) => {}
            Some(WindowType::Deny) => push(
                field,
                format!(
                    "MaintenanceWindow {window:?} is a Deny window; windows lists the Allow \
                     windows the policy may use (Deny windows always apply, named or not)"
                ),
            ),
            None if names.unloadable(kind::WINDOW, window) => {
                push(field, unreadable_message(kind::WINDOW, window));
            }
            None => {
                let existing: Vec<&str> = names.windows.keys().copied().collect();
                push(field, missing_message(kind::WINDOW, window, &existing));
            }
        }
    }

    if spec.disruption_budgets.len() > MAX_BUDGETS {
        push(
            "spec.disruptionBudgets".into(),
            format!(
                "at most {MAX_BUDGETS} disruption budgets, found {}",
                spec.disruption_budgets.len()
            ),
        );
    }
    for (i, budget) in spec.disruption_budgets.iter().enumerate() {
        let path = format!("spec.disruptionBudgets[{i}]");
        if let Err(text) = selector::validate(Some(&budget.selector), &format!("{path}.selector")) {
            for (field, message) in split_selector_errors(&text, &format!("{path}.selector")) {
                push(field, message);
            }
        }
        if !at_least_one(budget.max_unavailable) {
            push(
                format!("{path}.maxUnavailable"),
                format!(
                    "maxUnavailable must be an integer of at least 1 or a percentage from 1% \
                     to 100%, found {}",
                    budget.max_unavailable
                ),
            );
        }
    }

    let mut seen = BTreeSet::new();
    for (i, criticality) in spec.manual_approval.iter().enumerate() {
        if !seen.insert(criticality) {
            push(
                format!("spec.manualApproval[{i}]"),
                format!("{criticality:?} is listed twice"),
            );
        }
    }

    if let Some(hooks) = &spec.hooks {
        for (field, hook) in [
            ("preInstall", &hooks.pre_install),
            ("postInstall", &hooks.post_install),
            ("healthCheck", &hooks.health_check),
        ] {
            if let Some(hook) = hook {
                if let Err(why) = check_hook_name(hook) {
                    push(format!("spec.hooks.{field}"), why);
                }
            }
        }
    }

    match parse_duration(&spec.operation_timeout) {
        Err(message) => push("spec.operationTimeout".into(), message),
        Ok(d) if d <= SignedDuration::ZERO => push(
            "spec.operationTimeout".into(),
            "operationTimeout must be longer than 0s: every operation would time out at once"
                .into(),
        ),
        Ok(_) => {}
    }
}

/// `^[A-Za-z0-9][A-Za-z0-9._-]*$`, at most 63 characters.
fn check_hook_name(hook: &str) -> Result<(), String> {
    let bytes = hook.as_bytes();
    let ok = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(format!(
            "hook {hook:?} is not a hook name: a hook is the name of a script in the agent's \
             local allowlist (letters, digits, '.', '_', '-', starting with a letter or digit), \
             never a path or a command line"
        ));
    }
    if hook.len() > MAX_HOOK_NAME {
        return Err(format!(
            "hook names are at most {MAX_HOOK_NAME} characters, found {}",
            hook.len()
        ));
    }
    Ok(())
}

/// Overlapping policies of equal priority: for each pair whose update filters can approve the
/// same update and whose selectors both select an existing asset, one problem on the policy
/// whose name sorts later, naming the other and the shared asset that sorts first.
fn overlaps(inventory: &Inventory) -> Vec<Problem> {
    // Policies with a valid selector, in name order (a policy with an invalid selector matches
    // nothing and has its own problem).
    let mut policies: Vec<(&str, &PatchPolicy, CompiledSelector)> = inventory
        .policies
        .iter()
        .filter_map(|p| {
            let selector = CompiledSelector::compile(p.spec.selector.as_ref(), "spec.selector");
            Some((object_name(&p.metadata), p, selector.ok()?))
        })
        .collect();
    policies.sort_by(|a, b| a.0.cmp(b.0));
    policies.dedup_by(|a, b| a.0 == b.0);

    let n = policies.len();
    let mut candidate = vec![false; n * n];
    let mut any = false;
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&policies[i].1.spec, &policies[j].1.spec);
            if a.priority == b.priority && filters_overlap(&a.updates, &b.updates) {
                candidate[i * n + j] = true;
                any = true;
            }
        }
    }
    if !any {
        return Vec::new();
    }

    // Per pair, the shared asset whose name sorts first.
    let mut shared: Vec<Option<&str>> = vec![None; n * n];
    let mut matched: Vec<usize> = Vec::with_capacity(n);
    for asset in &inventory.assets {
        let labels = asset.metadata.labels.as_ref();
        let empty = BTreeMap::new();
        let labels = labels.unwrap_or(&empty);
        matched.clear();
        matched.extend((0..n).filter(|&i| policies[i].2.matches(labels)));
        if matched.len() < 2 {
            continue;
        }
        let name = object_name(&asset.metadata);
        for (x, &i) in matched.iter().enumerate() {
            for &j in &matched[x + 1..] {
                let k = i * n + j;
                if candidate[k] && shared[k].is_none_or(|current| name < current) {
                    shared[k] = Some(name);
                }
            }
        }
    }

    let mut problems = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let Some(asset) = shared[i * n + j] else {
                continue;
            };
            let (first, later) = (policies[i].0, policies[j].0);
            problems.push(Problem::new(
                kind::POLICY,
                later,
                "spec.priority",
                format!(
                    "overlaps PatchPolicy {first:?} with the same priority {}: both select \
                     Asset {asset:?} and their update filters can approve the same updates, so \
                     neither owns them; give one of them a higher priority, or make their \
                     selectors or update filters disjoint",
                    policies[j].1.spec.priority
                ),
            ));
        }
    }
    problems
}

/// Whether some update could pass both filters: their classifications intersect and some pair
/// of include patterns (`*` for an empty list) can match the same name without that name being
/// excluded by either policy.
///
/// Conservative: globs are matched against a single name (in reality against the id and the
/// package name), and an intersection counts as excluded only when an exclude pattern is `*`,
/// equals an include pattern, or matches an include pattern that is a plain name. Severity and
/// deferral never make filters disjoint (every minimum admits Critical; old updates pass any
/// deferral).
pub fn filters_overlap(a: &UpdateFilter, b: &UpdateFilter) -> bool {
    let classes_overlap = a.classifications.is_empty()
        || b.classifications.is_empty()
        || a.classifications
            .iter()
            .any(|c| b.classifications.contains(c));
    if !classes_overlap {
        return false;
    }
    let star = ["*".to_owned()];
    let include_a: &[String] = if a.include.is_empty() {
        &star
    } else {
        &a.include
    };
    let include_b: &[String] = if b.include.is_empty() {
        &star
    } else {
        &b.include
    };
    let excludes: Vec<&String> = a.exclude.iter().chain(&b.exclude).collect();
    let covered = |pattern: &str| {
        excludes.iter().any(|e| {
            e.as_str() == "*"
                || e.as_str() == pattern
                || (!has_wildcard(pattern) && globs_intersect(e, pattern))
        })
    };
    include_a.iter().any(|p| {
        include_b
            .iter()
            .any(|q| globs_intersect(p, q) && !covered(p) && !covered(q))
    })
}

fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether two glob patterns (`*` any run, `?` any one character) match a common string.
pub fn globs_intersect(p: &str, q: &str) -> bool {
    let p: Vec<char> = p.chars().collect();
    let q: Vec<char> = q.chars().collect();
    let (m, n) = (p.len(), q.len());
    // reach[i][j]: p[i..] and q[j..] have a common match; filled from the end.
    let mut reach = vec![false; (m + 1) * (n + 1)];
    let at = |i: usize, j: usize| i * (n + 1) + j;
    for i in (0..=m).rev() {
        for j in (0..=n).rev() {
            let value = if i == m && j == n {
                true
            } else if i < m && p[i] == '*' {
                // The star matches nothing, or swallows q's next symbol.
                reach[at(i + 1, j)] || (j < n && reach[at(i, j + 1)])
            } else if j < n && q[j] == '*' {
                reach[at(i, j + 1)] || (i < m && reach[at(i + 1, j)])
            } else if i < m && j < n {
                (p[i] == '?' || q[j] == '?' || p[i] == q[j]) && reach[at(i + 1, j + 1)]
            } else {
                false
            };
            reach[at(i, j)] = value;
        }
    }
    reach[at(0, 0)]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::{Asset, MaintenanceWindow, PatchPolicy, PatchRollout, Ring};

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_yaml::from_str(text).unwrap()
    }

    fn ring(name: &str, spec: &str) -> Ring {
        yaml(&format!(
            "apiVersion: patchwave.dev/v1alpha1\nkind: Ring\nmetadata: {{name: {name}}}\nspec:\n{}",
            indent(spec)
        ))
    }

    fn window(name: &str, spec: &str) -> MaintenanceWindow {
        yaml(&format!(
            "apiVersion: patchwave.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {{name: {name}}}\nspec:\n{}",
            indent(spec)
        ))
    }

    fn policy(name: &str, spec: &str) -> PatchPolicy {
        yaml(&format!(
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {{name: {name}}}\nspec:\n{}",
            indent(spec)
        ))
    }

    fn rollout(name: &str, spec: &str) -> PatchRollout {
        yaml(&format!(
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchRollout\nmetadata: {{name: {name}}}\nspec:\n{}",
            indent(spec)
        ))
    }

    fn asset(name: &str, labels: &str, spec: &str) -> Asset {
        yaml(&format!(
            "apiVersion: patchwave.dev/v1alpha1\nkind: Asset\nmetadata: {{name: {name}, labels: {labels}}}\nspec:\n  osFamily: Linux\n{}",
            indent(spec)
        ))
    }

    fn indent(text: &str) -> String {
        text.lines().map(|l| format!("  {l}\n")).collect()
    }

    /// A clean namespace: two rings, an Allow and a Deny window, one policy, one asset.
    fn base() -> Inventory {
        Inventory {
            rings: vec![
                ring(
                    "pilot",
                    "selector: {matchLabels: {pilot: 'true'}}\nmaxConcurrent: 25%",
                ),
                ring(
                    "rest",
                    "selector: {}\nmaxConcurrent: 4\nfailureThreshold: 0",
                ),
            ],
            windows: vec![
                window(
                    "nights",
                    "schedule: '0 22 * * *'\nduration: 4h\ntimeZone: Europe/Zurich",
                ),
                window(
                    "freeze",
                    "type: Deny\nstart: '2026-12-19T00:00:00+01:00'\nend: '2027-01-05T00:00:00+01:00'",
                ),
            ],
            policies: vec![policy(
                "security",
                "priority: 100\nrings: [pilot, rest]\nwindows: [nights]",
            )],
            assets: vec![asset("web01", "{pilot: 'true'}", "staleAfter: 30m").into()],
            rollouts: vec![rollout(
                "security-1",
                "policy: security\nrevision: abc\nupdates: [{id: KB1}]\nrings: [pilot, rest]",
            )],
        }
    }

    /// The problems of `inventory`, as `Kind/name: field: message` lines.
    fn lines(inventory: &Inventory) -> Vec<String> {
        validate(inventory).iter().map(|p| p.to_string()).collect()
    }

    fn assert_one(inventory: &Inventory, prefix: &str, fragment: &str) {
        let lines = lines(inventory);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].starts_with(prefix) && lines[0].contains(fragment),
            "expected {prefix} ... {fragment}, got {lines:#?}"
        );
    }

    #[test]
    fn base_is_clean() {
        assert_eq!(lines(&base()), Vec::<String>::new());
        assert!(validate_all(&base()).validity.all_valid());
    }

    #[test]
    fn problem_display_names_kind_object_and_field() {
        let p = Problem::new(kind::POLICY, "p", "spec.rings[1]", "bad");
        assert_eq!(p.to_string(), "PatchPolicy/p: spec.rings[1]: bad");
    }

    #[test]
    fn window_cron_and_time_zone_errors() {
        let mut inv = base();
        inv.windows[0] = window(
            "nights",
            "schedule: '61 22 * * *'\nduration: 4h\ntimeZone: Europe/Zurichh",
        );
        let lines = lines(&inv);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines.iter().any(
            |l| l.starts_with("MaintenanceWindow/nights: spec.schedule: ")
                && l.contains("minute field")
        ));
        assert!(lines.iter().any(
            |l| l.starts_with("MaintenanceWindow/nights: spec.timeZone: ")
                && l.contains("unknown time zone")
        ));
        let validation = validate_all(&inv);
        assert!(validation.validity.invalid_windows.contains("nights"));
        assert!(!validation.windows.contains_key("nights"));
        assert!(validation.windows.contains_key("freeze"));
    }

    #[test]
    fn window_forms_and_durations() {
        let mut inv = base();
        inv.windows[0] = window("nights", "schedule: '0 22 * * *'\ntimeZone: UTC");
        assert_one(
            &inv,
            "MaintenanceWindow/nights: spec.schedule: ",
            "needs duration",
        );
        inv.windows[0] = window(
            "nights",
            "schedule: '0 22 * * *'\nduration: 4x\ntimeZone: UTC",
        );
        assert_one(&inv, "MaintenanceWindow/nights: spec.duration: ", "unit");
    }

    #[test]
    fn window_selector_is_checked() {
        let mut inv = base();
        inv.windows[0].spec.selector = Some(yaml(
            "matchExpressions: [{key: kind, operator: Equals, values: [laptop]}]",
        ));
        assert_one(
            &inv,
            "MaintenanceWindow/nights: spec.selector.matchExpressions[0].operator: ",
            "unknown operator \"Equals\"; expected In",
        );
    }

    #[test]
    fn ring_ranges_selector_and_bake_time() {
        let mut inv = base();
        inv.rings[0] = ring("pilot", "selector: {}\nmaxConcurrent: 0");
        assert_one(&inv, "Ring/pilot: spec.maxConcurrent: ", "at least 1");
        inv.rings[0] = ring("pilot", "selector: {}\nmaxConcurrent: 0%");
        assert_one(&inv, "Ring/pilot: spec.maxConcurrent: ", "found 0%");
        inv.rings[0] = ring("pilot", "selector: {}\nfailureThreshold: -1");
        assert_one(&inv, "Ring/pilot: spec.failureThreshold: ", "at least 0");
        inv.rings[0] = ring("pilot", "selector: {}\nfailureThreshold: 0%");
        assert_eq!(lines(&inv), Vec::<String>::new());
        inv.rings[0] = ring("pilot", "selector: {}\nbakeTime: 1d");
        assert_one(&inv, "Ring/pilot: spec.bakeTime: ", "unknown unit");
        inv.rings[0] = ring(
            "pilot",
            "selector: {matchExpressions: [{key: a, operator: In}]}",
        );
        assert_one(
            &inv,
            "Ring/pilot: spec.selector.matchExpressions[0].values: ",
            "at least one value",
        );
    }

    #[test]
    fn policy_without_rings() {
        let mut inv = base();
        inv.policies[0].spec.rings.clear();
        assert_one(
            &inv,
            "PatchPolicy/security: spec.rings: ",
            "at least one ring",
        );
    }

    #[test]
    fn policy_ring_listed_twice() {
        let mut inv = base();
        inv.policies[0].spec.rings = vec!["pilot".into(), "rest".into(), "pilot".into()];
        assert_one(
            &inv,
            "PatchPolicy/security: spec.rings[2]: ",
            "\"pilot\" is listed twice (also at index 0)",
        );
    }

    #[test]
    fn policy_with_too_many_rings() {
        let mut inv = base();
        let names: Vec<String> = (0..17).map(|i| format!("r{i:02}")).collect();
        inv.rings = names
            .iter()
            .map(|name| ring(name, "selector: {}"))
            .collect();
        inv.policies[0].spec.rings = names;
        inv.rollouts.clear();
        assert_one(
            &inv,
            "PatchPolicy/security: spec.rings[16]: ",
            "at most 16 Rings may be listed, found 17",
        );
    }

    #[test]
    fn policy_missing_ring_names_the_existing_ones() {
        let mut inv = base();
        inv.policies[0].spec.rings = vec!["pilot".into(), "dept-b".into()];
        assert_one(
            &inv,
            "PatchPolicy/security: spec.rings[1]: ",
            "Ring \"dept-b\" does not exist in this namespace; the Rings are: pilot, rest",
        );
        inv.rings.clear();
        let lines = lines(&inv);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].contains("which has no Rings"), "{lines:#?}");
        // A ring that exists but could not be read is not reported as missing; the policy
        // says that it cannot take part without it.
        let unloadable = BTreeSet::from([
            (kind::RING, "pilot".to_owned()),
            (kind::RING, "dept-b".to_owned()),
        ]);
        let messages: Vec<String> = validate_with(&inv, &unloadable)
            .problems
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "PatchPolicy/security: spec.rings[0]: Ring \"pilot\" exists but could not be \
                 read (its own problem says why), so the policy cannot take part",
                "PatchPolicy/security: spec.rings[1]: Ring \"dept-b\" exists but could not be \
                 read (its own problem says why), so the policy cannot take part",
            ]
        );
    }

    #[test]
    fn policy_windows_must_be_existing_allow_windows() {
        let mut inv = base();
        inv.policies[0].spec.windows = vec!["freeze".into()];
        assert_one(
            &inv,
            "PatchPolicy/security: spec.windows[0]: ",
            "\"freeze\" is a Deny window",
        );
        inv.policies[0].spec.windows = vec!["nights".into(), "weekends".into()];
        assert_one(
            &inv,
            "PatchPolicy/security: spec.windows[1]: ",
            "MaintenanceWindow \"weekends\" does not exist in this namespace; the \
             MaintenanceWindows are: freeze, nights",
        );
        inv.policies[0].spec.windows = vec!["nights".into(), "nights".into()];
        assert_one(
            &inv,
            "PatchPolicy/security: spec.windows[1]: ",
            "listed twice",
        );
    }

    #[test]
    fn policy_ranges_globs_hooks_and_timeout() {
        let cases = [
            ("priority: 1001", "spec.priority", "between 0 and 1000"),
            (
                "updates: {deferDays: -1}",
                "spec.updates.deferDays",
                "between 0 and 365",
            ),
            (
                "updates: {include: ['']}",
                "spec.updates.include[0]",
                "must not be empty",
            ),
            (
                "updates: {exclude: [a, '']}",
                "spec.updates.exclude[1]",
                "must not be empty",
            ),
            (
                "deadlines: {critical: 0}",
                "spec.deadlines.critical",
                "1 to 365",
            ),
            ("deadlines: {low: 366}", "spec.deadlines.low", "1 to 365"),
            (
                "hooks: {preInstall: /usr/bin/drain}",
                "spec.hooks.preInstall",
                "never a path or a command line",
            ),
            (
                "hooks: {healthCheck: 'check --all'}",
                "spec.hooks.healthCheck",
                "not a hook name",
            ),
            (
                "operationTimeout: 2 hours",
                "spec.operationTimeout",
                "duration",
            ),
            (
                "operationTimeout: 0s",
                "spec.operationTimeout",
                "longer than 0s",
            ),
            (
                "disruptionBudgets: [{selector: {}, maxUnavailable: 0}]",
                "spec.disruptionBudgets[0].maxUnavailable",
                "at least 1",
            ),
            (
                "disruptionBudgets: [{selector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}, maxUnavailable: 1}]",
                "spec.disruptionBudgets[0].selector.matchExpressions[0].values",
                "takes no values",
            ),
            (
                "manualApproval: [Critical, High, Critical]",
                "spec.manualApproval[2]",
                "Critical is listed twice",
            ),
            (
                "selector: {matchLabels: {'bad key': x}}",
                "spec.selector.matchLabels[bad key]",
                "invalid label key",
            ),
        ];
        for (extra, field, fragment) in cases {
            let mut inv = base();
            inv.policies[0] = policy("security", &format!("rings: [pilot, rest]\n{extra}"));
            assert_one(&inv, &format!("PatchPolicy/security: {field}: "), fragment);
            assert!(
                validate_all(&inv)
                    .validity
                    .invalid_policies
                    .contains("security")
            );
        }
    }

    #[test]
    fn overlapping_policies_of_equal_priority() {
        let mut inv = base();
        inv.assets.push(asset("aaa", "{}", "").into());
        inv.policies
            .push(policy("everything", "priority: 100\nrings: [rest]"));
        // Reported on the later name ("security"), naming the other and the first shared asset.
        assert_one(
            &inv,
            "PatchPolicy/security: spec.priority: ",
            "overlaps PatchPolicy \"everything\" with the same priority 100: both select Asset \
             \"aaa\"",
        );
        let validity = validate_all(&inv).validity;
        assert!(validity.invalid_policies.contains("security"));
        assert!(validity.is_valid(kind::POLICY, "everything"));

        // Different priorities: fine.
        inv.policies[1].spec.priority = 10;
        assert_eq!(lines(&inv), Vec::<String>::new());
        inv.policies[1].spec.priority = 100;

        // Disjoint selectors over the existing assets: fine.
        inv.policies[1].spec.selector = Some(yaml("matchLabels: {kind: laptop}"));
        assert_eq!(lines(&inv), Vec::<String>::new());
        inv.policies[1].spec.selector = None;

        // Disjoint classifications: fine.
        inv.policies[0].spec.updates.classifications = vec![crate::api::Classification::Security];
        inv.policies[1].spec.updates.classifications = vec![crate::api::Classification::Bugfix];
        assert_eq!(lines(&inv), Vec::<String>::new());

        // No assets: nothing can be shared.
        inv.policies[1].spec.updates.classifications.clear();
        inv.assets.clear();
        assert_eq!(lines(&inv), Vec::<String>::new());
    }

    #[test]
    fn update_filter_overlap_with_globs() {
        let filter = |include: &[&str], exclude: &[&str]| UpdateFilter {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..UpdateFilter::default()
        };
        assert!(filters_overlap(&filter(&[], &[]), &filter(&[], &[])));
        assert!(filters_overlap(
            &filter(&["KB*"], &[]),
            &filter(&["*5044*"], &[])
        ));
        assert!(!filters_overlap(
            &filter(&["KB*"], &[]),
            &filter(&["openssl*"], &[])
        ));
        assert!(!filters_overlap(
            &filter(&["openssl"], &[]),
            &filter(&[], &["openssl*"])
        ));
        assert!(!filters_overlap(
            &filter(&["openssl*"], &[]),
            &filter(&[], &["openssl*"])
        ));
        assert!(!filters_overlap(&filter(&[], &["*"]), &filter(&[], &[])));
        // Not provably disjoint: reported.
        assert!(filters_overlap(
            &filter(&["open*"], &[]),
            &filter(&[], &["openssl*"])
        ));
    }

    #[test]
    fn glob_intersection() {
        for (p, q, expected) in [
            ("*", "anything", true),
            ("a*", "*b", true),
            ("a*", "b*", false),
            ("a?c", "abc", true),
            ("a?c", "ab", false),
            ("*x*", "*y*", true),
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("", "", true),
            ("", "*", true),
            ("", "?", false),
            ("??", "a*b", true),
            ("?", "ab*", false),
        ] {
            assert_eq!(globs_intersect(p, q), expected, "{p:?} ∩ {q:?}");
            assert_eq!(globs_intersect(q, p), expected, "{q:?} ∩ {p:?}");
        }
    }

    #[test]
    fn rollout_must_name_an_existing_policy_and_rings() {
        let mut inv = base();
        inv.rollouts[0].spec.policy = "gone".into();
        assert_one(
            &inv,
            "PatchRollout/security-1: spec.policy: ",
            "PatchPolicy \"gone\" does not exist in this namespace; the PatchPolicies are: \
             security",
        );
        let mut inv = base();
        inv.rollouts[0].spec.rings.clear();
        assert_one(
            &inv,
            "PatchRollout/security-1: spec.rings: ",
            "at least one ring",
        );
        let mut inv = base();
        inv.rollouts[0].spec.updates.clear();
        assert_one(
            &inv,
            "PatchRollout/security-1: spec.updates: ",
            "at least one update",
        );
    }

    #[test]
    fn asset_durations() {
        let mut inv = base();
        std::sync::Arc::make_mut(&mut inv.assets[0])
            .spec
            .stale_after = Some("30 minutes".into());
        assert_one(&inv, "Asset/web01: spec.staleAfter: ", "duration");
        std::sync::Arc::make_mut(&mut inv.assets[0])
            .spec
            .stale_after = Some("0s".into());
        assert_one(&inv, "Asset/web01: spec.staleAfter: ", "longer than 0s");
        let mut inv = base();
        std::sync::Arc::make_mut(&mut inv.assets[0])
            .spec
            .expected_duration = Some("1d".into());
        assert_one(&inv, "Asset/web01: spec.expectedDuration: ", "unit");
    }

    #[test]
    fn order_is_by_kind_then_name() {
        let mut inv = base();
        std::sync::Arc::make_mut(&mut inv.assets[0])
            .spec
            .stale_after = Some("x".into());
        inv.rings[1].spec.bake_time = "x".into();
        inv.rings[0].spec.bake_time = "x".into();
        inv.policies[0].spec.rings.clear();
        inv.windows[1].spec.end = None;
        let kinds_and_names: Vec<(&str, String)> = validate(&inv)
            .into_iter()
            .map(|p| (p.kind, p.name))
            .collect();
        assert_eq!(
            kinds_and_names,
            vec![
                (kind::WINDOW, "freeze".to_owned()),
                (kind::RING, "pilot".to_owned()),
                (kind::RING, "rest".to_owned()),
                (kind::POLICY, "security".to_owned()),
                (kind::ASSET, "web01".to_owned()),
            ]
        );
    }

    #[test]
    fn many_assets_validate_in_linear_time() {
        let mut inv = base();
        inv.policies.push(policy(
            "monthly",
            "priority: 100\nrings: [rest]\nupdates: {classifications: [Bugfix]}",
        ));
        let template = asset(
            "x",
            "{pilot: 'true', site: zurich}",
            "staleAfter: 2h\nexpectedDuration: 20m",
        );
        inv.assets = (0..100_000)
            .map(|i| {
                let mut a = template.clone();
                a.metadata.name = Some(format!("asset-{i:06}"));
                std::sync::Arc::new(a)
            })
            .collect();
        let started = std::time::Instant::now();
        let problems = validate(&inv);
        let elapsed = started.elapsed();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].message.contains("asset-000000"),
            "{problems:#?}"
        );
        // Generous for debug builds; release takes a few milliseconds.
        assert!(elapsed.as_secs() < 5, "{elapsed:?}");
    }
}
