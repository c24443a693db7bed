//! One evaluation of a namespace: what happens next, and when the answer could next change.
//!
//! [`evaluate`] reads the objects and `now` and returns decisions; it never changes anything.
//! The operator writes the decisions to the API server, `simulate` applies them to objects in
//! memory and advances virtual time, `plan` forecasts with the same loop. Everything the
//! engine needs to continue lives in the objects themselves (per-asset rollout records and
//! the rollout status), so an evaluation after a restart picks up exactly where the last one
//! stopped, and the deterministic operation ids make a repeated decision harmless.
//!
//! An [`Evaluator`] is the same decision with a memory: evaluating the same namespace again
//! (every instant of a simulation), it reuses what it computed for the assets that did not
//! change. It answers exactly as [`evaluate`] does; tests hold it to that.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::duration::parse_duration;
use super::selector::CompiledSelector;
use super::updates::{CompiledFilter, claim_order, content_hash, deadline, owners};
use super::validation::{self, Problem};
use super::windows::{self, StartPermission, WindowSchedule};
use super::{Inventory, plural};
use crate::api::asset::{
    AssetRolloutRecord, AvailableUpdate, Operation, OperationPhase, UpdateRef,
};
use crate::api::policy::FailureAction;
use crate::api::ring::RingApproval;
use crate::api::rollout::{FrozenUpdate, RingPhase, RingProgress, RolloutPhase, RolloutSummary};
use crate::api::window::{MaintenanceWindowSpec, WindowType};
use crate::api::{
    Asset, Condition, Criticality, IntOrPercent, OperationAction, PatchPolicy, PatchRollout,
    PatchRolloutSpec, PatchRolloutStatus, RingSpec, Rounding, Time,
};

use super::fast_hash::{FastMap, FastSet};

/// Operation timeout used when a rollout's policy is gone or its timeout does not parse.
const DEFAULT_OPERATION_TIMEOUT: SignedDuration = SignedDuration::from_hours(2);
/// At most this many asset names in each list of a ring's status (failed, awaiting approval).
const MAX_LISTED_FAILURES: usize = 100;
/// Assets named in one Event message before the rest is elided.
const MAX_NAMED_IN_MESSAGE: usize = 10;

/// What the engine decided.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Problems with objects; invalid objects take no part in decisions.
    pub problems: Vec<Problem>,
    /// Rollouts to create (name, spec; the caller sets namespace and creation time).
    pub created_rollouts: Vec<PatchRollout>,
    /// The status every non-terminal rollout (and every created one) should have now, and
    /// that of a finished one whose spec changed since (its `observedGeneration` moved on).
    pub rollout_statuses: BTreeMap<String, PatchRolloutStatus>,
    /// Operations to hand to agents, with the record to add to the asset.
    pub operations: Vec<IssuedOperation>,
    /// Results to record on assets (the agent reported one, or the operation timed out).
    pub outcomes: Vec<RecordedOutcome>,
    /// Decisions a person would want to see, in the order they were taken.
    pub events: Vec<Event>,
    /// Where each asset stands under each policy that governs it (empty from
    /// [`Evaluator::decide`]).
    pub assets: Vec<AssetView>,
    /// Assets that wait for a per-asset approval on a rollout, by name (also from `decide`).
    pub awaiting_approval: Vec<String>,
    /// The next instant at which the decision could differ without any object changing
    /// (a window opens or reaches its cutoff, a bake ends, an operation times out, a deferral
    /// ends). `None`: nothing changes until an object does.
    pub next_change: Option<Timestamp>,
}

/// An operation the engine issues to an asset's agent.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuedOperation {
    /// Asset name.
    pub asset: String,
    /// Where the asset is in the evaluated inventory's `assets` (a hint: [`super::apply`]
    /// checks the name before it trusts it).
    pub index: usize,
    /// What the agent must do (goes to `status.operation`).
    pub operation: Operation,
    /// The record to add to (or replace in) the asset's `status.rollouts`.
    pub record: AssetRolloutRecord,
}

/// The end of an operation, to be written into the asset's rollout record.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedOutcome {
    /// Asset name.
    pub asset: String,
    /// Where the asset is in the evaluated inventory's `assets` (a hint, as for operations).
    pub index: usize,
    /// The rollout record to update.
    pub rollout: String,
    /// The operation that ended.
    pub operation_id: String,
    /// Succeeded, Failed or NoResponse.
    pub phase: OperationPhase,
    /// When it ended (the agent's finish time, or the timeout).
    pub finished_at: Timestamp,
    /// The agent's message, or why it counts as failed.
    pub message: Option<String>,
}

/// Kinds of engine events; the names are part of `simulate -o json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    RolloutCreated,
    RingStarted,
    OperationStarted,
    OperationSucceeded,
    OperationFailed,
    OperationTimedOut,
    RingCompleted,
    RingHalted,
    RolloutHalted,
    RollbackStarted,
    RolloutSucceeded,
    AssetUnscheduled,
    AssetUnassigned,
}

/// A decision a person would want to see.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// When it happened.
    pub time: Timestamp,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Policy concerned.
    pub policy: Option<String>,
    /// Rollout concerned.
    pub rollout: Option<String>,
    /// Ring concerned.
    pub ring: Option<String>,
    /// Asset concerned.
    pub asset: Option<String>,
    /// One sentence for people.
    pub message: String,
}

/// Where an asset stands under one policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum AssetState {
    /// No update of the policy is missing.
    #[default]
    UpToDate,
    /// The policy's rollout patched it.
    Patched,
    /// Its operation failed or timed out.
    Failed,
    /// Waiting for its turn, its window or an operation in flight.
    Pending,
    /// `spec.hold` is set.
    Held,
    /// Needs a per-asset approval on the rollout.
    WaitingForApproval,
    /// No Allow window selects it (or none ever opens again): never patched.
    Unscheduled,
    /// The policy selects it but none of its rings does: never patched.
    Unassigned,
    /// No agent has ever reported for it, so nobody knows what it misses. Only an Asset's
    /// status says this ([`status::derive`](super::status::derive)); the evaluation plans
    /// from reports, and an asset without one has nothing to plan.
    Unknown,
    /// It misses updates, and no valid policy selects it: nothing patches it (a policy that
    /// selects it may be invalid). Only an Asset's status says this; an evaluation shows such
    /// an asset under no policy.
    Unmanaged,
}

/// One asset under one governing policy (or under none).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssetView {
    /// Asset name.
    pub name: String,
    /// Governing policy; `None` when no policy selects the asset.
    pub policy: Option<String>,
    /// The ring it belongs to under that policy.
    pub ring: Option<String>,
    /// Where it stands.
    pub state: AssetState,
    /// The rollout that decides its state, if any.
    #[serde(skip)]
    pub rollout: Option<String>,
}

/// Decides what happens next in one namespace at `now`.
pub fn evaluate(inventory: &Inventory, now: Timestamp) -> Evaluation {
    Evaluator::default().evaluate(inventory, now)
}

impl Evaluation {
    /// Whether evaluating again at the same instant, after applying this evaluation, could
    /// decide more. One evaluation decides everything it can at its instant (outcomes first,
    /// then starts, rings in order); only a created rollout (it exists for the next one) or a
    /// finished one (its policy may now create the next) can enable more.
    pub fn enables_more(&self) -> bool {
        !self.created_rollouts.is_empty()
            || self
                .events
                .iter()
                .any(|e| e.kind == EventType::RolloutSucceeded)
    }
}

/// Whether a rollout phase is final.
pub fn is_terminal(phase: RolloutPhase) -> bool {
    matches!(phase, RolloutPhase::Succeeded | RolloutPhase::Aborted)
}

/// The deterministic name of a policy's rollout for a content hash.
pub fn rollout_name(policy: &str, revision: &str) -> String {
    let short = &revision[..revision.len().min(8)];
    let mut base = policy.to_owned();
    // Object names are at most 253 characters.
    base.truncate(253 - short.len() - 1);
    format!("{base}-{short}")
}

/// The id of an install or rollback operation: deterministic, so an operator restarted in the
/// middle of a decision issues the same id and the agent's journal recognises it.
pub fn operation_id(rollout: &str, asset: &str, action: OperationAction) -> String {
    let verb = match action {
        OperationAction::Install => "install",
        OperationAction::Rollback => "rollback",
    };
    format!("{rollout}/{asset}/{verb}")
}

struct CompiledWindow<'a> {
    name: &'a str,
    spec: &'a MaintenanceWindowSpec,
    deny: bool,
    selector: CompiledSelector,
    schedule: WindowSchedule,
}

struct CompiledRing<'a> {
    spec: &'a RingSpec,
    selector: CompiledSelector,
    bake: SignedDuration,
}

struct CompiledPolicy<'a> {
    object: &'a PatchPolicy,
    name: &'a str,
    selector: CompiledSelector,
    filter: CompiledFilter,
    /// `spec.windows` as a set; empty = every Allow window.
    windows: BTreeSet<&'a str>,
    budgets: Vec<(CompiledSelector, IntOrPercent)>,
    timeout: SignedDuration,
}

impl CompiledPolicy<'_> {
    /// Of the Allow windows selecting an asset, those that let the policy start operations:
    /// the ones it names, or all if it names none.
    fn allow_windows<'w>(
        &self,
        allow: impl IntoIterator<Item = &'w CompiledWindow<'w>>,
    ) -> Vec<windows::NamedWindow<'w>> {
        allow
            .into_iter()
            .filter(|w| self.windows.is_empty() || self.windows.contains(w.name))
            .map(|w| windows::NamedWindow {
                name: w.name,
                schedule: &w.schedule,
            })
            .collect()
    }
}

/// The engine's view of a namespace for explaining a plan: the windows that decide when an
/// asset may start an operation of a policy, and which assets a rollout serves, as the
/// engine decides them. `plan` says with it why a member does not start.
pub struct PlanExplainer<'a> {
    run: Run<'a>,
}

/// The windows of one asset under one policy (see [`PlanExplainer::of`]).
pub struct AssetWindows<'w> {
    /// The valid Allow windows selecting the asset that the policy may use.
    pub allow: Vec<windows::NamedWindow<'w>>,
    /// The Deny windows selecting the asset (an invalid one is open at every instant).
    pub deny: Vec<windows::NamedWindow<'w>>,
    /// The windows the policy names (`spec.windows`; empty: all).
    pub named: Vec<&'w str>,
}

impl<'a> PlanExplainer<'a> {
    /// Compiles the windows and policies of `inventory` and reads its assets as an
    /// evaluation does.
    pub fn new(inventory: &'a Inventory) -> Self {
        let validation::Validation {
            validity,
            mut windows,
            ..
        } = validation::validate_all(inventory);
        let mut run = Run::new(
            inventory,
            &validity,
            &mut windows,
            Timestamp::UNIX_EPOCH,
            Memo::default(),
        );
        run.refresh_facts();
        PlanExplainer { run }
    }

    /// The members of `rollout` as the engine serves them: the assets with a record of it,
    /// and those its policy governs that miss a frozen update the policy owns on them, unless
    /// a rollout of the same set served them before. Each as (index into the inventory's
    /// assets, name of its ring).
    pub fn members<'r>(&self, rollout: &'r PatchRollout) -> Vec<(usize, &'r str)> {
        let policy = self.run.rollout_policy(rollout);
        let repeats = self.run.same_set_before(rollout);
        let frozen = frozen_deadlines(rollout);
        (0..self.run.inventory.assets.len())
            .filter_map(|asset| {
                let key = self
                    .run
                    .member_key(asset, rollout, policy, &frozen, &repeats)?;
                Some((asset, rollout.spec.rings.get(key.ring)?.as_str()))
            })
            .collect()
    }

    /// The windows of `asset` under the policy named `policy` (every Allow window if no valid
    /// policy has that name).
    pub fn of(&self, asset: &Asset, policy: &str) -> AssetWindows<'_> {
        static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
        let labels = asset.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
        let selecting = self
            .run
            .windows
            .iter()
            .filter(|w| w.selector.matches(labels));
        let deny = selecting
            .clone()
            .filter(|w| w.deny)
            .map(|w| windows::NamedWindow {
                name: w.name,
                schedule: &w.schedule,
            })
            .collect();
        let allow = selecting.filter(|w| !w.deny);
        let (allow, named) = match self.run.policies.iter().find(|p| p.name == policy) {
            Some(policy) => (
                policy.allow_windows(allow),
                policy.windows.iter().copied().collect(),
            ),
            None => (
                allow
                    .map(|w| windows::NamedWindow {
                        name: w.name,
                        schedule: &w.schedule,
                    })
                    .collect(),
                Vec::new(),
            ),
        };
        AssetWindows { allow, deny, named }
    }
}

/// Facts about one asset that follow from the asset itself and the valid policies, rings and
/// windows alone. An [`Evaluator`] keeps them from one evaluation to the next for every asset
/// that is still the same object (same address) while those stay the same.
#[derive(Clone)]
struct AssetFacts {
    /// The asset these facts are about. A weak reference keeps its address from being reused,
    /// and does not make whoever changes the asset (`Arc::make_mut`) copy it.
    asset: Weak<Asset>,
    /// Valid policies selecting the asset, highest priority first (indices into `policies`).
    policies: Vec<usize>,
    /// Per entry of `policies`: the first of that policy's rings selecting the asset (an index
    /// into its `spec.rings`).
    rings: Vec<Option<usize>>,
    /// Index of the asset's (allow, deny) window set in `Memo::groups`.
    window_group: usize,
    /// Owning policy of each available update (index into `policies`).
    owner: Vec<Option<usize>>,
    /// Whether any of its rollout records is Running (only those can end).
    running: bool,
    /// Whether its agent reports an operation still Running: it runs one at a time, so it
    /// gets no other until that one ends, even one the operator already gave up on.
    agent_busy: bool,
    /// Where it stands under each of `policies` (see `Memo::states_context`).
    states: Vec<AssetState>,
}

/// What an [`Evaluator`] carries from one evaluation to the next.
#[derive(Default)]
struct Memo {
    /// The valid policies, rings and windows the facts were computed under (serialized).
    config: String,
    /// Per asset (by index in the inventory), the facts of the last evaluation.
    facts: Vec<AssetFacts>,
    /// Interned (allow windows, deny windows) sets: assets with the same windows share a group.
    window_groups: FastMap<(Vec<usize>, Vec<usize>), usize>,
    /// The window sets of each group, by group index.
    groups: Vec<(Vec<usize>, Vec<usize>)>,
    /// Per rollout, its members in the order they are served.
    members: HashMap<String, RolloutMembers>,
    /// Counts evaluations, so that a rollout's members are mended only from the previous one.
    epoch: u64,
    /// What the kept asset states were computed under (rollouts per policy, approvals, window
    /// permissions); when it differs, every state is computed again.
    states_context: String,
    /// Assets whose states read the last evaluation's own record changes.
    overlaid: Vec<usize>,
    /// The problems of each asset, as validation found them.
    asset_checks: validation::KeptAssetChecks,
}

/// The members of one rollout, kept in order across evaluations and updated for the assets
/// that changed.
struct RolloutMembers {
    /// What the membership was computed for: policy, rings and frozen updates (serialized).
    key: String,
    /// The evaluation that last brought it up to date (it must be the previous one).
    epoch: u64,
    /// Per asset: its ring (index into the rollout's rings) and order key, if a member.
    info: Vec<Option<MemberKey>>,
    /// Per asset: its stored record of the rollout, as the ring bookkeeping reads it.
    records: Vec<Option<RecordSummary>>,
    /// Member assets, earliest deadline first, then criticality, then name.
    order: Vec<usize>,
}

/// Where a member goes and when its turn comes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct MemberKey {
    /// Index of the first ring of the rollout with the member's ring name.
    ring: usize,
    /// The earliest deadline of the frozen updates it misses (`Timestamp::MAX` if none).
    deadline: Timestamp,
}

/// Decides what happens next in one namespace, again and again, reusing what it learnt about
/// the assets that did not change since the last evaluation. `plan` and `simulate` evaluate
/// the same namespace at every instant of virtual time; most of each fleet stays as it was.
/// (The operator evaluates afresh: kept between its reconciles, an evaluator cost memory and
/// saved no measurable CPU; see BENCHMARKS.md.)
/// Its answers are those of [`evaluate`] (tested against it).
#[derive(Default)]
pub struct Evaluator {
    memo: Memo,
}

impl Evaluator {
    /// Decides what happens next at `now`, with every asset's view.
    pub fn evaluate(&mut self, inventory: &Inventory, now: Timestamp) -> Evaluation {
        self.run(inventory, now, true)
    }

    /// Like [`Evaluator::evaluate`] but without `assets` (the views of every asset), which a
    /// caller that only carries out the decisions does not read.
    pub fn decide(&mut self, inventory: &Inventory, now: Timestamp) -> Evaluation {
        self.run(inventory, now, false)
    }

    /// [`Evaluator::evaluate`] if `views`, else [`Evaluator::decide`].
    pub(crate) fn run(&mut self, inventory: &Inventory, now: Timestamp, views: bool) -> Evaluation {
        // One validation pass: its verdicts exclude invalid objects, and its compiled window
        // schedules are reused rather than compiled again.
        let validation::Validation {
            problems,
            validity,
            mut windows,
        } = validation::validate_kept(inventory, &mut self.memo.asset_checks);
        let mut memo = std::mem::take(&mut self.memo);
        memo.epoch += 1;
        let mut run = Run::new(inventory, &validity, &mut windows, now, memo);
        run.process_outcomes();
        run.count_budgets();
        run.create_rollouts();
        run.advance_rollouts();
        let (mut evaluation, memo) = run.finish(views);
        self.memo = memo;
        evaluation.problems = problems;
        evaluation
    }
}

struct Run<'a> {
    inventory: &'a Inventory,
    now: Timestamp,
    windows: Vec<CompiledWindow<'a>>,
    rings: FastMap<&'a str, CompiledRing<'a>>,
    policies: Vec<CompiledPolicy<'a>>,
    /// Facts and orders kept across evaluations (an [`Evaluator`]'s, or empty).
    memo: Memo,
    /// Assets whose facts were computed afresh in this evaluation.
    changed: Vec<usize>,
    /// Rollout records this evaluation changed (outcomes, new operations), by asset; every
    /// other record is as the asset's status has it.
    changed_records: FastMap<usize, Vec<AssetRolloutRecord>>,
    /// Assets with an operation in flight (after outcomes and new starts).
    in_flight: FastSet<usize>,
    /// Operations in flight by ring name, of every rollout: a Ring's maxConcurrent bounds its
    /// assets' operations whichever policy's rollout issued them.
    ring_busy: FastMap<String, i32>,
    /// Per policy and disruption budget: assets selected, and those in flight.
    budget_size: Vec<Vec<u64>>,
    budget_busy: Vec<Vec<u64>>,
    /// Start permission at `now` by window group and policy (`group * policies + policy`).
    permissions: Vec<StartPermission>,
    rollouts: Vec<PatchRollout>,
    out: Evaluation,
}

#[derive(Clone, Copy)]
struct Placement<'a> {
    ring: Option<&'a str>,
    unscheduled: bool,
}

impl<'a> Run<'a> {
    fn new(
        inventory: &'a Inventory,
        validity: &validation::Validity,
        schedules: &mut BTreeMap<String, WindowSchedule>,
        now: Timestamp,
        mut memo: Memo,
    ) -> Self {
        let valid = |kind: &str, name: &str| validity.is_valid(kind, name);
        let windows: Vec<CompiledWindow> = inventory
            .windows
            .iter()
            .filter_map(|w| {
                let name = w.metadata.name.as_deref()?;
                if !valid(validation::kind::WINDOW, name) {
                    // Deny always wins, even broken: an invalid freeze holds back what its
                    // selector selects (everything, if the selector is what is wrong) at
                    // every instant until it is fixed, rather than failing open.
                    let deny = w.spec.type_ == WindowType::Deny;
                    return deny.then(|| CompiledWindow {
                        name,
                        spec: &w.spec,
                        deny,
                        selector: CompiledSelector::compile(
                            w.spec.selector.as_ref(),
                            "spec.selector",
                        )
                        .unwrap_or_else(|_| CompiledSelector::everything()),
                        schedule: WindowSchedule::always_open(),
                    });
                }
                Some(CompiledWindow {
                    name,
                    spec: &w.spec,
                    deny: w.spec.type_ == WindowType::Deny,
                    selector: CompiledSelector::compile(w.spec.selector.as_ref(), "spec.selector")
                        .ok()?,
                    schedule: schedules.remove(name)?,
                })
            })
            .collect();
        let rings = inventory
            .rings
            .iter()
            .filter_map(|r| {
                let name = r.metadata.name.as_deref()?;
                if !valid(validation::kind::RING, name) {
                    return None;
                }
                let compiled = CompiledRing {
                    spec: &r.spec,
                    selector: CompiledSelector::compile(Some(&r.spec.selector), "spec.selector")
                        .ok()?,
                    bake: parse_duration(&r.spec.bake_time).ok()?,
                };
                Some((name, compiled))
            })
            .collect();
        let mut policies: Vec<CompiledPolicy> = inventory
            .policies
            .iter()
            .filter_map(|p| {
                let name = p.metadata.name.as_deref()?;
                if !valid(validation::kind::POLICY, name) {
                    return None;
                }
                let budgets = p
                    .spec
                    .disruption_budgets
                    .iter()
                    .filter_map(|b| {
                        let selector =
                            CompiledSelector::compile(Some(&b.selector), "selector").ok()?;
                        Some((selector, b.max_unavailable))
                    })
                    .collect();
                Some(CompiledPolicy {
                    object: p,
                    name,
                    selector: CompiledSelector::compile(p.spec.selector.as_ref(), "spec.selector")
                        .ok()?,
                    filter: CompiledFilter::new(&p.spec.updates),
                    windows: p.spec.windows.iter().map(String::as_str).collect(),
                    budgets,
                    timeout: parse_duration(&p.spec.operation_timeout)
                        .unwrap_or(DEFAULT_OPERATION_TIMEOUT),
                })
            })
            .collect();
        policies.sort_by(|a, b| {
            claim_order(
                (a.object.spec.priority, a.name),
                (b.object.spec.priority, b.name),
            )
        });
        // The facts of an asset depend on the valid policies, rings and windows (and their
        // order): kept only while those are exactly the same.
        let config = config_key(&windows, &rings, &policies);
        if memo.config != config {
            // An asset's own problems do not depend on the configuration.
            memo = Memo {
                config,
                asset_checks: std::mem::take(&mut memo.asset_checks),
                ..Memo::default()
            };
        }
        let mut rollouts = inventory.rollouts.clone();
        rollouts.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .then(a.metadata.name.cmp(&b.metadata.name))
        });
        Run {
            inventory,
            now,
            windows,
            rings,
            policies,
            memo,
            changed: Vec::new(),
            changed_records: FastMap::default(),
            in_flight: FastSet::default(),
            ring_busy: FastMap::default(),
            budget_size: Vec::new(),
            budget_busy: Vec::new(),
            permissions: Vec::new(),
            rollouts,
            out: Evaluation::default(),
        }
    }

    fn wake_at(&mut self, at: Timestamp) {
        if at > self.now {
            self.out.next_change = Some(self.out.next_change.map_or(at, |t| t.min(at)));
        }
    }

    fn event(
        &mut self,
        kind: EventType,
        policy: Option<&str>,
        rollout: Option<&str>,
        ring: Option<&str>,
        asset: Option<&str>,
        message: String,
    ) {
        self.out.events.push(Event {
            time: self.now,
            kind,
            policy: policy.map(str::to_owned),
            rollout: rollout.map(str::to_owned),
            ring: ring.map(str::to_owned),
            asset: asset.map(str::to_owned),
            message,
        });
    }

    fn rollout_policy(&self, rollout: &PatchRollout) -> Option<usize> {
        self.policies
            .iter()
            .position(|p| p.name == rollout.spec.policy)
    }

    /// Computes per-asset facts and records the ends of operations: a result the agent
    /// reported, or no result by the timeout (NoResponse, which counts as failed).
    fn process_outcomes(&mut self) {
        let timeouts: HashMap<String, SignedDuration> = self
            .rollouts
            .iter()
            .filter_map(|r| {
                let timeout = self
                    .rollout_policy(r)
                    .map_or(DEFAULT_OPERATION_TIMEOUT, |p| self.policies[p].timeout);
                Some((r.metadata.name.clone()?, timeout))
            })
            .collect();
        self.refresh_facts();
        self.compute_permissions();
        let mut outcomes = Vec::new();
        let mut wake = Vec::new();
        for index in 0..self.inventory.assets.len() {
            let facts = &self.memo.facts[index];
            // An operation the agent still runs after its record ended (timed out): the asset
            // is busy, and a new operation would only time out behind it.
            if facts.agent_busy {
                self.in_flight.insert(index);
            }
            if !facts.running {
                continue;
            }
            let inventory: &'a Inventory = self.inventory;
            let asset = &inventory.assets[index];
            let status = asset.status.as_ref();
            // Of two records of one rollout the last counts (as everywhere), and records end in
            // the order of their rollouts' names.
            let mut running: Vec<&AssetRolloutRecord> = Vec::new();
            for record in status.iter().flat_map(|s| s.rollouts.iter()).rev() {
                if !running.iter().any(|r| r.rollout == record.rollout) {
                    running.push(record);
                }
            }
            running.retain(|r| r.phase == OperationPhase::Running);
            running.sort_by(|a, b| a.rollout.cmp(&b.rollout));
            let name = asset.metadata.name.clone().unwrap_or_default();
            let last = asset.reported().and_then(|r| r.last_operation.as_ref());
            for record in running {
                let Some(op_id) = record.operation_id.clone() else {
                    continue;
                };
                let reported = last.filter(|l| l.id == op_id && l.phase != OperationPhase::Running);
                let timeout_at = status
                    .and_then(|s| s.operation.as_ref())
                    .filter(|o| o.id == op_id)
                    .map(|o| o.timeout_at.0)
                    .or_else(|| {
                        let started = record.started_at.as_ref()?.0;
                        let timeout = timeouts
                            .get(record.rollout.as_str())
                            .copied()
                            .unwrap_or(DEFAULT_OPERATION_TIMEOUT);
                        started.checked_add(timeout).ok()
                    });
                let outcome = if let Some(result) = reported {
                    // The agent's clock may be wrong. Its finish time counts only between the
                    // issue and now, so a clock behind cannot skip a bake and one ahead cannot
                    // hold the next ring back.
                    let finished = result.finished_at.as_ref().map_or(self.now, |t| t.0);
                    let issued = record
                        .started_at
                        .as_ref()
                        .map_or(finished, |t| t.0)
                        .min(self.now);
                    Some((
                        result.phase,
                        finished.clamp(issued, self.now),
                        result.message.clone(),
                    ))
                } else if let Some(at) = timeout_at.filter(|at| *at <= self.now) {
                    Some((
                        OperationPhase::NoResponse,
                        at,
                        Some("no result from the agent within the operation timeout".to_owned()),
                    ))
                } else {
                    if let Some(at) = timeout_at {
                        wake.push(at);
                    }
                    None
                };
                match outcome {
                    Some((phase, finished_at, message)) => {
                        let mut ended = record.clone();
                        ended.phase = phase;
                        ended.finished_at = Some(Time(finished_at));
                        ended.message.clone_from(&message);
                        outcomes.push(RecordedOutcome {
                            asset: name.clone(),
                            index,
                            rollout: record.rollout.clone(),
                            operation_id: op_id,
                            phase,
                            finished_at,
                            message,
                        });
                        self.set_record(index, ended);
                    }
                    None => {
                        self.in_flight.insert(index);
                        if let Some(ring) = &record.ring {
                            *self.ring_busy.entry(ring.clone()).or_default() += 1;
                        }
                    }
                }
            }
        }
        for at in wake {
            self.wake_at(at);
        }
        for outcome in &outcomes {
            let policy = self
                .rollouts
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(outcome.rollout.as_str()))
                .map(|r| r.spec.policy.clone());
            let record = self.record(outcome.index, &outcome.rollout);
            let ring = record.and_then(|r| r.ring.clone());
            let verb = if record.is_some_and(|r| r.action == OperationAction::Rollback) {
                "rollback"
            } else {
                "operation"
            };
            let asset = &outcome.asset;
            let (kind, message) = match outcome.phase {
                OperationPhase::Succeeded => (
                    EventType::OperationSucceeded,
                    format!("{verb} on {asset} succeeded"),
                ),
                OperationPhase::NoResponse => (
                    EventType::OperationTimedOut,
                    format!("{verb} on {asset} timed out without a result (counts as failed)"),
                ),
                _ => (
                    EventType::OperationFailed,
                    format!(
                        "{verb} on {asset} failed: {}",
                        outcome
                            .message
                            .as_deref()
                            .unwrap_or("no message from the agent")
                    ),
                ),
            };
            self.event(
                kind,
                policy.as_deref(),
                Some(&outcome.rollout),
                ring.as_deref(),
                Some(asset),
                message,
            );
        }
        self.out.outcomes = outcomes;
    }

    /// Brings every asset's facts up to date: kept for the assets that are the same objects as
    /// in the last evaluation, computed for the others (which are noted in `changed`).
    fn refresh_facts(&mut self) {
        let assets = &self.inventory.assets;
        if self.memo.facts.len() != assets.len() {
            // Assets came or went: indices no longer match, start over.
            self.memo.facts.clear();
            self.memo.members.clear();
            self.memo.overlaid.clear();
        }
        for (index, asset) in assets.iter().enumerate() {
            if self
                .memo
                .facts
                .get(index)
                .is_some_and(|f| std::ptr::eq(f.asset.as_ptr(), Arc::as_ptr(asset)))
            {
                continue;
            }
            let facts = self.compute_facts(asset);
            if index < self.memo.facts.len() {
                self.memo.facts[index] = facts;
            } else {
                self.memo.facts.push(facts);
            }
            self.changed.push(index);
        }
    }

    fn compute_facts(&mut self, asset: &Arc<Asset>) -> AssetFacts {
        static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
        let labels = asset.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
        let policies: Vec<usize> = (0..self.policies.len())
            .filter(|p| self.policies[*p].selector.matches(labels))
            .collect();
        let rings = policies
            .iter()
            .map(|p| self.first_ring(&self.policies[*p].object.spec.rings, labels))
            .collect();
        let (mut allow, mut deny) = (Vec::new(), Vec::new());
        for (w, window) in self.windows.iter().enumerate() {
            if window.selector.matches(labels) {
                if window.deny {
                    deny.push(w)
                } else {
                    allow.push(w)
                }
            }
        }
        let claimants: Vec<(usize, &CompiledFilter)> = policies
            .iter()
            .map(|p| (*p, &self.policies[*p].filter))
            .collect();
        let owner = owners(&claimants, asset.available_updates());
        let running = asset.status.as_ref().is_some_and(|s| {
            s.rollouts
                .iter()
                .any(|r| r.phase == OperationPhase::Running)
        });
        let agent_busy = asset
            .reported()
            .and_then(|r| r.last_operation.as_ref())
            .is_some_and(|l| l.phase == OperationPhase::Running);
        let key = (allow, deny);
        let window_group = match self.memo.window_groups.get(&key) {
            Some(group) => *group,
            None => {
                self.memo.groups.push(key.clone());
                self.memo
                    .window_groups
                    .insert(key, self.memo.groups.len() - 1);
                self.memo.groups.len() - 1
            }
        };
        AssetFacts {
            asset: Arc::downgrade(asset),
            policies,
            rings,
            window_group,
            owner,
            running,
            agent_busy,
            states: Vec::new(),
        }
    }

    /// The asset's record for `rollout` as this evaluation leaves it.
    fn record(&self, asset: usize, rollout: &str) -> Option<&AssetRolloutRecord> {
        if let Some(record) = self
            .changed_records
            .get(&asset)
            .and_then(|records| records.iter().find(|r| r.rollout == rollout))
        {
            return Some(record);
        }
        stored_record(&self.inventory.assets[asset], rollout)
    }

    /// Replaces (or adds) the asset's record of `record.rollout` for the rest of this run.
    fn set_record(&mut self, asset: usize, record: AssetRolloutRecord) {
        let records = self.changed_records.entry(asset).or_default();
        records.retain(|r| r.rollout != record.rollout);
        records.push(record);
    }

    /// The asset's ring under `policy` (a name from the policy's rings) and whether no window
    /// ever lets it start; `None` if the policy does not govern it.
    fn placement(&self, asset: usize, policy: usize) -> Option<Placement<'a>> {
        let facts = &self.memo.facts[asset];
        let slot = facts.policies.iter().position(|p| *p == policy)?;
        let object: &'a PatchPolicy = self.policies[policy].object;
        let ring: Option<&'a str> = facts.rings[slot].map(|r| object.spec.rings[r].as_str());
        let unscheduled =
            ring.is_some() && matches!(self.permission(asset, policy), StartPermission::Never);
        Some(Placement { ring, unscheduled })
    }

    /// Whether each window group may start operations of each policy at `now` (few groups,
    /// few policies: computed once per evaluation, looked up per asset).
    fn compute_permissions(&mut self) {
        let mut permissions = Vec::with_capacity(self.memo.groups.len() * self.policies.len());
        for (allow, deny) in &self.memo.groups {
            for policy in &self.policies {
                let named = &policy.windows;
                let allow: Vec<&WindowSchedule> = allow
                    .iter()
                    .filter(|w| named.is_empty() || named.contains(self.windows[**w].name))
                    .map(|w| &self.windows[*w].schedule)
                    .collect();
                let deny: Vec<&WindowSchedule> =
                    deny.iter().map(|w| &self.windows[*w].schedule).collect();
                permissions.push(windows::start_permission(&allow, &deny, self.now));
            }
        }
        self.permissions = permissions;
    }

    fn permission(&self, asset: usize, policy: usize) -> StartPermission {
        let group = self.memo.facts[asset].window_group;
        self.permissions[group * self.policies.len() + policy]
    }

    /// The first of `ring_names` (a position in it) that is a valid ring selecting `labels`:
    /// an asset in several rings belongs to the first listed.
    fn first_ring(
        &self,
        ring_names: &[String],
        labels: &BTreeMap<String, String>,
    ) -> Option<usize> {
        ring_names.iter().position(|name| {
            self.rings
                .get(name.as_str())
                .is_some_and(|ring| ring.selector.matches(labels))
        })
    }

    /// The (update index, owning policy) pairs of `asset` that `policy` owns.
    fn owned_updates(&self, asset: usize, policy: usize) -> impl Iterator<Item = usize> + '_ {
        self.memo.facts[asset]
            .owner
            .iter()
            .enumerate()
            .filter(move |(_, owner)| **owner == Some(policy))
            .map(|(u, _)| u)
    }

    fn available(&self, asset: usize) -> &'a [crate::api::asset::AvailableUpdate] {
        self.inventory.assets[asset].available_updates()
    }

    /// Freezes each policy's approved missing updates into a rollout when the set changed and
    /// no rollout of the policy is active.
    fn create_rollouts(&mut self) {
        for policy in 0..self.policies.len() {
            let compiled = &self.policies[policy];
            if compiled.object.spec.suspend {
                continue;
            }
            // One active rollout per policy: while it runs, later updates wait, and its end
            // triggers the next evaluation anyway.
            let busy = self.rollouts.iter().any(|r| {
                r.spec.policy == compiled.name
                    && !is_terminal(r.status.as_ref().map(|s| s.phase).unwrap_or_default())
            });
            if busy {
                continue;
            }
            // Borrowed keys while scanning; owned copies only for the distinct updates.
            let mut frozen: FastMap<(&str, Option<&str>), &crate::api::asset::AvailableUpdate> =
                FastMap::default();
            let mut wake: Vec<Timestamp> = Vec::new();
            // Assets that miss at least one of the updates frozen below.
            let mut missing_on: Vec<usize> = Vec::new();
            for asset in 0..self.memo.facts.len() {
                let Some(placement) = self.placement(asset, policy) else {
                    continue;
                };
                if placement.ring.is_none()
                    || placement.unscheduled
                    || self.inventory.assets[asset].spec.hold
                {
                    continue;
                }
                let available = self.available(asset);
                for u in self.owned_updates(asset, policy) {
                    let update = &available[u];
                    match compiled.filter.approved_from(update) {
                        Some(from) if from > self.now => {
                            wake.push(from);
                            continue;
                        }
                        _ => {}
                    }
                    frozen
                        .entry((update.id.as_str(), update.version.as_deref()))
                        .or_insert(update);
                    if missing_on.last() != Some(&asset) {
                        missing_on.push(asset);
                    }
                }
            }
            for at in wake {
                self.wake_at(at);
            }
            if frozen.is_empty() {
                continue;
            }
            let mut frozen: Vec<((&str, Option<&str>), &crate::api::asset::AvailableUpdate)> =
                frozen.into_iter().collect();
            frozen.sort_unstable_by_key(|(key, _)| *key);
            let revision = content_hash(frozen.iter().map(|(key, _)| *key));
            let deadlines = &self.policies[policy].object.spec.deadlines;
            let frozen: Vec<FrozenUpdate> = frozen
                .into_iter()
                .map(|(_, update)| FrozenUpdate {
                    id: update.id.clone(),
                    version: update.version.clone(),
                    title: update.title.clone(),
                    severity: update.severity,
                    classification: update.classification,
                    released_at: update.released_at.clone(),
                    deadline: deadline(deadlines, update).map(Time),
                })
                .collect();
            let name = self.policies[policy].name;
            let of_policy: Vec<&PatchRollout> = self
                .rollouts
                .iter()
                .filter(|r| r.spec.policy == name)
                .collect();
            let active = of_policy
                .iter()
                .any(|r| !is_terminal(r.status.as_ref().map(|s| s.phase).unwrap_or_default()));
            // The same set as the latest rollout runs again only for assets it left behind.
            let repeated = of_policy
                .last()
                .filter(|latest| latest.spec.revision == revision);
            let left_behind = repeated
                .map(|latest| self.left_behind(latest, &missing_on))
                .unwrap_or_default();
            if active || (repeated.is_some() && left_behind.is_empty()) {
                continue;
            }
            let repeats = repeated.map(|latest| {
                let names = named_in_message(left_behind.iter().map(|&a| self.asset_name(a)));
                let assets = if left_behind.len() == 1 {
                    "asset"
                } else {
                    "assets"
                };
                format!(
                    "; the same updates as {}, for {} {assets} it did not serve: {}",
                    object_name(latest),
                    left_behind.len(),
                    names
                )
            });
            let base_name = rollout_name(name, &revision);
            let mut rollout_name = base_name.clone();
            // The same set again needs a name of its own: -2, -3, ...
            let mut suffix = of_policy
                .iter()
                .filter(|r| r.spec.revision == revision)
                .count()
                + 1;
            while self
                .rollouts
                .iter()
                .any(|r| r.metadata.name.as_deref() == Some(rollout_name.as_str()))
            {
                rollout_name = format!("{base_name}-{suffix}");
                suffix += 1;
            }
            let spec = PatchRolloutSpec {
                policy: name.to_owned(),
                policy_generation: self.policies[policy]
                    .object
                    .metadata
                    .generation
                    .unwrap_or_default(),
                revision,
                updates: frozen,
                rings: self.policies[policy].object.spec.rings.clone(),
                approved_rings: Vec::new(),
                approved_assets: Vec::new(),
                paused: false,
                resumes: Vec::new(),
                abort: None,
            };
            let mut rollout = PatchRollout::new(&rollout_name, spec);
            rollout.metadata.creation_timestamp = Some(Time(self.now));
            let message = format!(
                "rollout {rollout_name} created with {} through rings {}{}",
                plural(rollout.spec.updates.len(), "update", "updates"),
                rollout.spec.rings.join(" -> "),
                repeats.unwrap_or_default()
            );
            self.event(
                EventType::RolloutCreated,
                Some(name),
                Some(&rollout_name),
                None,
                None,
                message,
            );
            self.out.created_rollouts.push(rollout.clone());
            self.rollouts.push(rollout);
        }
    }

    /// The assets of `missing_on` (they miss the updates of `latest` now) that `latest` never
    /// served although it succeeded: they reported the updates only after it had
    /// finished, or were held or outside every window while it ran. Those deserve a rollout
    /// of the same set. Assets it did serve (failed, or an install that did not stick) do not
    /// start one, or a failing asset would start a rollout after every rollout forever; an
    /// aborted rollout is a person's decision and is not run again by itself.
    fn left_behind(&self, latest: &PatchRollout, missing_on: &[usize]) -> Vec<usize> {
        let phase = latest.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if phase != RolloutPhase::Succeeded {
            return Vec::new();
        }
        // `latest` may itself repeat the set: what its predecessors served counts as served.
        let mut set = self.same_set_before(latest);
        set.push(object_name(latest).to_owned());
        missing_on
            .iter()
            .copied()
            .filter(|&asset| !served_by(&self.inventory.assets[asset], &set))
            .collect()
    }

    /// The rollouts that `rollout` repeats: those of its policy with the same set, created
    /// right before it (none between them with another set).
    fn same_set_before(&self, rollout: &PatchRollout) -> Vec<String> {
        let name = object_name(rollout);
        let of_policy: Vec<&PatchRollout> = self
            .rollouts
            .iter()
            .filter(|r| r.spec.policy == rollout.spec.policy)
            .collect();
        let Some(at) = of_policy.iter().position(|r| object_name(r) == name) else {
            return Vec::new();
        };
        of_policy[..at]
            .iter()
            .rev()
            .take_while(|r| r.spec.revision == rollout.spec.revision)
            .map(|r| object_name(r).to_owned())
            .collect()
    }

    fn advance_rollouts(&mut self) {
        // Higher-priority policies pick busy assets first; within a policy, older rollouts first.
        let mut order: Vec<usize> = (0..self.rollouts.len()).collect();
        order.sort_by_key(|r| {
            let policy = self.rollout_policy(&self.rollouts[*r]);
            (policy.unwrap_or(usize::MAX), *r)
        });
        for r in order {
            let phase = self.rollouts[r]
                .status
                .as_ref()
                .map(|s| s.phase)
                .unwrap_or_default();
            if is_terminal(phase) {
                // A finished rollout is a record, but its spec may still change (a late pause
                // or abort): its status says it saw that, so `kubectl wait` and Argo CD keep
                // reading it as current.
                if let (Some(name), Some(status)) = (
                    self.rollouts[r].metadata.name.clone(),
                    acknowledged(&self.rollouts[r]),
                ) {
                    self.out.rollout_statuses.insert(name, status);
                }
                continue;
            }
            let rollout = self.rollouts[r].clone();
            let status = self.advance(&rollout);
            if let Some(name) = rollout.metadata.name.clone() {
                self.out.rollout_statuses.insert(name, status);
            }
        }
    }

    /// Members of a rollout in the order they are served: assets with a record for it, and
    /// assets its policy governs that miss an update of its frozen set that the policy owns on
    /// them (a rollout that repeats a set leaves out the assets the set's rollouts before it
    /// served). The order is kept from the last evaluation and mended for the changed assets.
    fn members(&mut self, rollout: &PatchRollout, policy: Option<usize>) -> Vec<Member> {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        // What membership depends on besides the assets: serializing our own types cannot
        // fail, and an empty key only means no reuse.
        let repeats = self.same_set_before(rollout);
        let key =
            serde_json::to_string(&(policy, &rollout.spec.rings, &rollout.spec.updates, &repeats))
                .unwrap_or_default();
        let frozen = frozen_deadlines(rollout);
        let epoch = self.memo.epoch;
        let kept = self
            .memo
            .members
            .remove(&name)
            .filter(|m| !key.is_empty() && m.key == key && m.epoch + 1 == epoch);
        let mut members = match kept {
            Some(mut kept) => {
                let mut moved = Vec::new();
                for &asset in &self.changed {
                    kept.records[asset] =
                        stored_record(&self.inventory.assets[asset], &name).map(RecordSummary::of);
                    let info = self.member_key(asset, rollout, policy, &frozen, &repeats);
                    if info != kept.info[asset] {
                        kept.info[asset] = info;
                        moved.push(asset);
                    }
                }
                if !moved.is_empty() {
                    let mut is_moved = vec![false; kept.info.len()];
                    for asset in &moved {
                        is_moved[*asset] = true;
                    }
                    kept.order.retain(|a| !is_moved[*a]);
                    let info = &kept.info;
                    let mut added: Vec<usize> =
                        moved.into_iter().filter(|a| info[*a].is_some()).collect();
                    added.sort_by(|a, b| self.member_order(info, *a, *b));
                    // Each moved member goes where a binary search puts it: a few comparisons
                    // each instead of comparing the whole order again.
                    let mut merged = Vec::with_capacity(kept.order.len() + added.len());
                    let mut rest = kept.order.as_slice();
                    for asset in added {
                        let at = rest.partition_point(|other| {
                            self.member_order(info, *other, asset) == std::cmp::Ordering::Less
                        });
                        merged.extend_from_slice(&rest[..at]);
                        merged.push(asset);
                        rest = &rest[at..];
                    }
                    merged.extend_from_slice(rest);
                    kept.order = merged;
                }
                kept
            }
            None => {
                let info: Vec<Option<MemberKey>> = (0..self.memo.facts.len())
                    .map(|asset| self.member_key(asset, rollout, policy, &frozen, &repeats))
                    .collect();
                let mut order: Vec<usize> =
                    (0..info.len()).filter(|a| info[*a].is_some()).collect();
                order.sort_by(|a, b| self.member_order(&info, *a, *b));
                let records = self
                    .inventory
                    .assets
                    .iter()
                    .map(|asset| stored_record(asset, &name).map(RecordSummary::of))
                    .collect();
                RolloutMembers {
                    key,
                    epoch,
                    info,
                    records,
                    order,
                }
            }
        };
        members.epoch = epoch;
        let list = members
            .order
            .iter()
            .filter_map(|&asset| {
                let key = members.info[asset]?;
                // Records this evaluation changed are read afresh; the others as kept.
                let record = if self.changed_records.contains_key(&asset) {
                    self.record(asset, &name).map(RecordSummary::of)
                } else {
                    members.records[asset]
                };
                Some(Member {
                    asset,
                    ring: key.ring,
                    record,
                })
            })
            .collect();
        self.memo.members.insert(name, members);
        list
    }

    /// Whether `asset` is a member of `rollout`, in which ring and with which deadline. A
    /// rollout that repeats the set of `repeats` serves only the assets they did not serve.
    fn member_key(
        &self,
        asset: usize,
        rollout: &PatchRollout,
        policy: Option<usize>,
        frozen: &FastMap<(&str, Option<&str>), Option<Timestamp>>,
        repeats: &[String],
    ) -> Option<MemberKey> {
        let name = rollout.metadata.name.as_deref().unwrap_or_default();
        let record = stored_record(&self.inventory.assets[asset], name);
        if record.is_none() && served_by(&self.inventory.assets[asset], repeats) {
            return None;
        }
        let available = self.available(asset);
        let mut misses = false;
        let mut earliest_deadline: Option<Timestamp> = None;
        if let Some(p) = policy {
            for u in self.owned_updates(asset, p) {
                if let Some(deadline) =
                    frozen.get(&(available[u].id.as_str(), available[u].version.as_deref()))
                {
                    misses = true;
                    if let Some(d) = deadline {
                        earliest_deadline = Some(earliest_deadline.map_or(*d, |e| e.min(*d)));
                    }
                }
            }
        }
        if record.is_none() && !misses {
            return None;
        }
        let rings = &rollout.spec.rings;
        let ring = match record {
            Some(r) => {
                let name = r.ring.as_deref()?;
                rings.iter().position(|r| r == name)?
            }
            None => self.first_ring(rings, self.labels(asset))?,
        };
        Some(MemberKey {
            ring,
            deadline: earliest_deadline.unwrap_or(Timestamp::MAX),
        })
    }

    /// Earliest deadline first, then criticality, then name.
    fn member_order(&self, info: &[Option<MemberKey>], a: usize, b: usize) -> std::cmp::Ordering {
        let deadline = |asset: usize| info[asset].map_or(Timestamp::MAX, |k| k.deadline);
        deadline(a)
            .cmp(&deadline(b))
            .then_with(|| self.criticality(a).cmp(&self.criticality(b)))
            .then_with(|| self.asset_name(a).cmp(self.asset_name(b)))
            .then(a.cmp(&b))
    }

    /// Advances one rollout: halts, resumes, ring completion and bake, new operations.
    fn advance(&mut self, rollout: &PatchRollout) -> PatchRolloutStatus {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let policy = self.rollout_policy(rollout);
        let policy_name = rollout.spec.policy.clone();
        let previous = rollout.status.clone().unwrap_or_default();
        let members = self.members(rollout, policy);
        let aborted = rollout.spec.abort.is_some();
        let paused = rollout.spec.paused;
        let suspended = policy.is_none_or(|p| self.policies[p].object.spec.suspend);
        let rollback_on_failure = policy
            .is_some_and(|p| self.policies[p].object.spec.on_failure == FailureAction::Rollback);
        let approved_rings: HashSet<&str> = rollout
            .spec
            .approved_rings
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        let approved_assets: HashSet<&str> = rollout
            .spec
            .approved_assets
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        let manual: Vec<Criticality> = policy
            .map(|p| self.policies[p].object.spec.manual_approval.clone())
            .unwrap_or_default();

        let mut rings_out: Vec<RingProgress> = Vec::new();
        let mut gate: Option<Timestamp> = rollout
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(Some(self.now));
        let mut halted_ring: Option<String> = None;
        let mut rolling_back = false;
        let mut blocked_by_window = false;
        // Rings whose maxConcurrent other rollouts' operations fill now.
        let mut rings_taken: Vec<String> = Vec::new();
        let mut stalled: Option<String> = None;
        let mut started_at: Option<Timestamp> = None;

        for (position, ring_name) in rollout.spec.rings.iter().enumerate() {
            // Members name the first position of their ring (a ring listed twice is invalid).
            let ring_index = rollout
                .spec
                .rings
                .iter()
                .position(|r| r == ring_name)
                .unwrap_or(position);
            let prev = previous
                .rings
                .iter()
                .find(|r| &r.name == ring_name)
                .cloned()
                .unwrap_or_default();
            let mut progress = RingProgress {
                name: ring_name.clone(),
                halts: prev.halts,
                accepted_failures: prev.accepted_failures,
                resumed: prev.resumed.clone(),
                ..RingProgress::default()
            };
            let Some(ring) = self.rings.get(ring_name.as_str()) else {
                stalled.get_or_insert_with(|| {
                    format!(
                        "ring {ring_name} does not exist or is invalid: the rollout cannot go \
                         on, and its policy starts no other rollout, until the Ring is back \
                         (valid) or the rollout is aborted"
                    )
                });
                progress.phase = RingPhase::Pending;
                rings_out.push(progress);
                gate = None;
                continue;
            };
            let (spec, bake) = (ring.spec, ring.bake);
            let ring_members: Vec<&Member> =
                members.iter().filter(|m| m.ring == ring_index).collect();
            let total = count(ring_members.len());
            let mut failed_assets = Vec::new();
            let mut rollback_candidates = Vec::new();
            let mut pending = Vec::new();
            let mut finished: Option<Timestamp> = None;
            let mut any_record = false;
            for member in &ring_members {
                let asset_name = self.asset_name(member.asset);
                match &member.record {
                    Some(record) => {
                        any_record = true;
                        if let Some(t) = record.started_at {
                            progress.started_at =
                                Some(Time(progress.started_at.as_ref().map_or(t, |s| s.0.min(t))));
                        }
                        if let Some(t) = record.finished_at {
                            finished = Some(finished.map_or(t, |f| f.max(t)));
                        }
                        match (record.action, record.phase) {
                            (_, OperationPhase::Running) => progress.in_flight += 1,
                            (OperationAction::Install, OperationPhase::Succeeded) => {
                                progress.succeeded += 1;
                                rollback_candidates.push(*member);
                            }
                            (OperationAction::Install, _) => {
                                progress.failed += 1;
                                failed_assets.push(asset_name.to_owned());
                            }
                            // Rolled back (or a failed rollback): no longer counted as patched.
                            (OperationAction::Rollback, OperationPhase::Succeeded) => {
                                progress.skipped += 1
                            }
                            (OperationAction::Rollback, _) => {
                                progress.failed += 1;
                                failed_assets.push(asset_name.to_owned());
                            }
                        }
                    }
                    None => {
                        let asset = &self.inventory.assets[member.asset];
                        let unscheduled = policy
                            .and_then(|p| self.placement(member.asset, p))
                            .is_none_or(|pl| pl.unscheduled);
                        if asset.spec.hold || unscheduled || aborted {
                            progress.skipped += 1;
                        } else {
                            progress.pending += 1;
                            let needs_approval = manual.contains(&asset.spec.criticality)
                                && !approved_assets.contains(asset_name);
                            pending.push((*member, needs_approval));
                        }
                    }
                }
            }
            progress.total = total;
            if let Some(first) = progress.started_at.as_ref() {
                started_at = Some(started_at.map_or(first.0, |s| s.min(first.0)));
            }
            failed_assets.truncate(MAX_LISTED_FAILURES);
            progress.failed_assets = failed_assets.clone();

            // Halt: failures beyond those accepted by a resume exceed the threshold.
            let threshold = i64::try_from(
                spec.failure_threshold()
                    .resolve(u64::try_from(total).unwrap_or(0), Rounding::Down),
            )
            .unwrap_or(i64::MAX);
            let over = i64::from(progress.failed - progress.accepted_failures) > threshold;
            let was_halted = matches!(prev.phase, RingPhase::Halted | RingPhase::RollingBack);
            let mut halted = false;
            if over {
                let resumed =
                    was_halted
                        && rollout.spec.resumes.iter().any(|r| {
                            &r.ring == ring_name && r.halt == prev.halts && prev.halts > 0
                        });
                if resumed {
                    progress.accepted_failures = progress.failed;
                    progress.resumed = rollout
                        .spec
                        .resumes
                        .iter()
                        .find(|r| &r.ring == ring_name && r.halt == prev.halts)
                        .map(|r| r.signature.clone());
                } else {
                    halted = true;
                    if !was_halted {
                        progress.halts += 1;
                        // Until a person answers this halt, no resume answers the latest.
                        progress.resumed = None;
                        let listed = failed_assets.join(", ");
                        // A percentage says how the count came about; a count needs no echo.
                        let of_spec = match spec.failure_threshold() {
                            IntOrPercent::Percent(p) => format!(" ({p}% of {total})"),
                            IntOrPercent::Int(_) => String::new(),
                        };
                        let message = format!(
                            "ring {ring_name} halted: {} of {} failed, more than the threshold of {threshold}{of_spec}; failed: {listed}",
                            progress.failed - progress.accepted_failures,
                            plural(usize::try_from(total).unwrap_or(0), "asset", "assets"),
                        );
                        self.event(
                            EventType::RingHalted,
                            Some(&policy_name),
                            Some(&name),
                            Some(ring_name),
                            None,
                            message.clone(),
                        );
                        self.event(
                            EventType::RolloutHalted,
                            Some(&policy_name),
                            Some(&name),
                            Some(ring_name),
                            None,
                            format!("rollout {name} halted: {message}"),
                        );
                    }
                }
            }

            if spec.approval == RingApproval::Manual {
                progress.approved = rollout
                    .spec
                    .approved_rings
                    .iter()
                    .find(|a| &a.name == ring_name)
                    .map(|a| a.signature.clone());
            }
            let gate_open = gate.filter(|g| *g <= self.now);
            let done = progress.pending == 0 && progress.in_flight == 0;
            // A Manual ring with nothing to start in this rollout (no member, or only held
            // ones) has nothing to approve: waiting for a person would hold the later rings
            // back for nothing. A member that joins later still waits for the approval.
            let approved = spec.approval == RingApproval::Automatic
                || approved_rings.contains(ring_name.as_str())
                || any_record
                || done;
            // A ring completes once. Members that join it since (an asset enrolled late, one
            // reporting the updates only now, one moved into an empty Manual ring) still get
            // their operation, or wait for the ring's approval, but the later rings go on:
            // one late laptop must not hold the whole rollout back.
            let completed_before = prev.completed_at.clone().filter(|_| {
                matches!(
                    prev.phase,
                    RingPhase::Baking | RingPhase::Completed | RingPhase::WaitingForApproval
                )
            });

            if halted {
                progress.phase = RingPhase::Halted;
                halted_ring.get_or_insert_with(|| ring_name.clone());
                if rollback_on_failure && !aborted {
                    let unfinished_rollbacks = ring_members.iter().any(|m| {
                        m.record.as_ref().is_some_and(|r| {
                            r.action == OperationAction::Rollback
                                && r.phase == OperationPhase::Running
                        })
                    });
                    if !rollback_candidates.is_empty() || unfinished_rollbacks {
                        progress.phase = RingPhase::RollingBack;
                        rolling_back = true;
                        if !paused {
                            let started = self.start_operations(
                                rollout,
                                policy,
                                ring_name,
                                spec,
                                total,
                                progress.in_flight,
                                &rollback_candidates
                                    .iter()
                                    .map(|m| (*m, false))
                                    .collect::<Vec<_>>(),
                                OperationAction::Rollback,
                            );
                            progress.in_flight += started.started;
                            blocked_by_window |= started.blocked_by_window;
                        }
                    }
                }
                rings_out.push(progress);
                gate = None;
                continue;
            }
            if aborted {
                progress.phase = if done && any_record {
                    RingPhase::Completed
                } else {
                    RingPhase::Aborted
                };
                // A ring that had completed keeps the record of when.
                if matches!(prev.phase, RingPhase::Baking | RingPhase::Completed) {
                    progress.completed_at = prev.completed_at.clone();
                    progress.bake_until = prev.bake_until.clone();
                }
                rings_out.push(progress);
                gate = None;
                continue;
            }
            let Some(opened) = gate_open else {
                progress.phase = RingPhase::Pending;
                rings_out.push(progress);
                gate = None;
                continue;
            };
            if !approved {
                progress.phase = RingPhase::WaitingForApproval;
                gate = completed_before.map(|completed_at| {
                    self.keep_completion(&mut progress, completed_at, prev.bake_until.as_ref())
                });
                rings_out.push(progress);
                continue;
            }
            if !done {
                let blocked_before = blocked_by_window;
                let mut ring_in_flight = progress.in_flight;
                let mut window_opens_at = None;
                if !paused && !suspended && stalled.is_none() {
                    let startable: Vec<(&Member, bool)> = pending
                        .iter()
                        .filter(|(_, needs)| !needs)
                        .copied()
                        .collect();
                    let first_start = !any_record && progress.in_flight == 0;
                    let started = self.start_operations(
                        rollout,
                        policy,
                        ring_name,
                        spec,
                        total,
                        ring_in_flight,
                        &startable,
                        OperationAction::Install,
                    );
                    if first_start && started.started > 0 {
                        let message = format!(
                            "ring {ring_name} started: {}",
                            plural(usize::try_from(total).unwrap_or(0), "asset", "assets")
                        );
                        let at = self
                            .out
                            .events
                            .len()
                            .saturating_sub(usize::try_from(started.started).unwrap_or(0));
                        self.out.events.insert(
                            at,
                            Event {
                                time: self.now,
                                kind: EventType::RingStarted,
                                policy: Some(policy_name.clone()),
                                rollout: Some(name.clone()),
                                ring: Some(ring_name.clone()),
                                asset: None,
                                message,
                            },
                        );
                    }
                    ring_in_flight += started.started;
                    window_opens_at = started.window_opens_at;
                    if started.ring_taken {
                        rings_taken.push(ring_name.clone());
                    }
                    progress.in_flight = ring_in_flight;
                    progress.pending -= started.started;
                    if progress.started_at.is_none() && started.started > 0 {
                        progress.started_at = Some(Time(self.now));
                        started_at.get_or_insert(self.now);
                    }
                    blocked_by_window |= ring_in_flight == 0 && started.blocked_by_window;
                }
                progress.awaiting_approval = pending
                    .iter()
                    .filter(|(_, needs)| *needs)
                    .take(MAX_LISTED_FAILURES)
                    .map(|(member, _)| self.asset_name(member.asset).to_owned())
                    .collect();
                if !progress.awaiting_approval.is_empty()
                    && ring_in_flight == 0
                    && !blocked_by_window
                {
                    progress.phase = RingPhase::WaitingForApproval;
                } else if ring_in_flight == 0 && blocked_by_window {
                    progress.phase = RingPhase::WaitingForWindow;
                    progress.window_opens_at = window_opens_at.map(Time);
                } else {
                    progress.phase = RingPhase::Progressing;
                }
                if let Some(completed_at) = completed_before {
                    blocked_by_window = blocked_before;
                    let bake_until =
                        self.keep_completion(&mut progress, completed_at, prev.bake_until.as_ref());
                    progress.phase = if bake_until > self.now {
                        RingPhase::Baking
                    } else {
                        RingPhase::Completed
                    };
                    gate = Some(bake_until);
                    rings_out.push(progress);
                    continue;
                }
                rings_out.push(progress);
                gate = None;
                continue;
            }
            // Every member finished (or was skipped): complete, then bake.
            // Once recorded, a ring's completion stays put: a result re-reported later (an
            // agent retrying a write the server had taken) must not move it after the next
            // ring started.
            let completed_at = match (&prev.phase, &prev.completed_at) {
                (RingPhase::Baking | RingPhase::Completed, Some(t)) => t.0,
                _ => finished.map_or(opened, |f| f.max(opened)),
            };
            let bake_until = if any_record {
                completed_at.checked_add(bake).unwrap_or(completed_at)
            } else {
                completed_at
            };
            progress.completed_at = Some(Time(completed_at));
            progress.bake_until = Some(Time(bake_until));
            progress.phase = if bake_until > self.now {
                RingPhase::Baking
            } else {
                RingPhase::Completed
            };
            if !matches!(prev.phase, RingPhase::Baking | RingPhase::Completed) {
                let message = format!(
                    "ring {ring_name} completed: {} succeeded, {} failed, {} skipped of {total}{}",
                    progress.succeeded,
                    progress.failed,
                    progress.skipped,
                    if bake_until > self.now {
                        format!("; baking until {bake_until}")
                    } else {
                        String::new()
                    }
                );
                self.event(
                    EventType::RingCompleted,
                    Some(&policy_name),
                    Some(&name),
                    Some(ring_name),
                    None,
                    message,
                );
            }
            self.wake_at(bake_until);
            gate = Some(bake_until);
            rings_out.push(progress);
        }

        // Late members of a completed ring (see above) keep the rollout going until they are
        // done too.
        let unfinished = |r: &RingProgress| r.pending > 0 || r.in_flight > 0;
        let all_completed = !rings_out.is_empty()
            && rings_out
                .iter()
                .all(|r| r.phase == RingPhase::Completed && !unfinished(r));
        // The ring the rollout is at: the first not completed, past one that completed and
        // then gained a member waiting for its approval while later rings run.
        let active = rings_out
            .iter()
            .find(|r| r.phase != RingPhase::Completed && !late_approval(r))
            .or_else(|| rings_out.iter().find(|r| r.phase != RingPhase::Completed));
        let phase = if aborted {
            RolloutPhase::Aborted
        } else if rolling_back {
            RolloutPhase::RollingBack
        } else if halted_ring.is_some() {
            RolloutPhase::Halted
        } else if all_completed {
            RolloutPhase::Succeeded
        } else if let Some(active) = active {
            match active.phase {
                RingPhase::Baking => RolloutPhase::Baking,
                RingPhase::WaitingForApproval => RolloutPhase::WaitingForApproval,
                RingPhase::WaitingForWindow => RolloutPhase::WaitingForWindow,
                RingPhase::Pending if started_at.is_none() => RolloutPhase::Pending,
                _ => RolloutPhase::Progressing,
            }
        } else {
            RolloutPhase::Progressing
        };
        if phase == RolloutPhase::Succeeded && previous.phase != RolloutPhase::Succeeded {
            let message = format!(
                "rollout {name} succeeded through rings {}",
                rollout.spec.rings.join(" -> ")
            );
            self.event(
                EventType::RolloutSucceeded,
                Some(&policy_name),
                Some(&name),
                None,
                None,
                message,
            );
        }
        let current_ring = active.map(|r| r.name.clone());
        let summary = RolloutSummary {
            updates: count(rollout.spec.updates.len()),
            total: rings_out.iter().map(|r| r.total).sum(),
            pending: rings_out.iter().map(|r| r.pending).sum(),
            in_flight: rings_out.iter().map(|r| r.in_flight).sum(),
            succeeded: rings_out.iter().map(|r| r.succeeded).sum(),
            failed: rings_out.iter().map(|r| r.failed).sum(),
            skipped: rings_out.iter().map(|r| r.skipped).sum(),
        };
        let halt_reason = halted_ring.as_ref().and_then(|ring| {
            let progress = rings_out.iter().find(|r| &r.name == ring)?;
            Some(format!(
                "ring {ring}: {} of {} failed ({}); to go on, add {{ring: {ring}, halt: {}}} to spec.resumes of {name}; or set spec.abort",
                progress.failed,
                plural(usize::try_from(progress.total).unwrap_or(0), "asset", "assets"),
                progress.failed_assets.join(", "),
                progress.halts
            ))
        });
        let message = match phase {
            RolloutPhase::Aborted => "aborted; no new operation starts".to_owned(),
            RolloutPhase::Succeeded => "every ring completed".to_owned(),
            RolloutPhase::Halted | RolloutPhase::RollingBack => {
                halt_reason.clone().unwrap_or_default()
            }
            _ if paused => "paused: no new operation starts until spec.paused is false".to_owned(),
            _ => match rings_out
                .iter()
                .find(|r| r.phase != RingPhase::Completed || unfinished(r))
            {
                Some(ring) => describe_ring(ring, stalled.as_deref(), &rings_taken),
                None => String::new(),
            },
        };
        let terminal_at = if is_terminal(phase) {
            previous.completed_at.clone().or_else(|| {
                if phase == RolloutPhase::Succeeded {
                    rings_out.last().and_then(|r| r.bake_until.clone())
                } else {
                    Some(Time(self.now))
                }
            })
        } else {
            None
        };
        let generation = rollout.metadata.generation;
        let conditions = rollout_conditions(
            &previous.conditions,
            phase,
            paused,
            stalled.as_deref(),
            &message,
            generation,
            self.now,
        );
        PatchRolloutStatus {
            phase,
            current_ring,
            summary: Some(summary),
            rings: rings_out,
            halt_reason,
            message: Some(message),
            started_at: previous.started_at.clone().or(started_at.map(Time)),
            completed_at: terminal_at,
            conditions,
            observed_generation: generation,
        }
    }

    /// Keeps a ring's completion (`completed_at`, its bake) for a ring that completed before
    /// and gained members since; returns when its bake ends, the gate of the next ring.
    fn keep_completion(
        &mut self,
        progress: &mut RingProgress,
        completed_at: Time,
        bake_until: Option<&Time>,
    ) -> Timestamp {
        let bake_until = bake_until.map_or(completed_at.0, |t| t.0);
        progress.completed_at = Some(completed_at);
        progress.bake_until = Some(Time(bake_until));
        self.wake_at(bake_until);
        bake_until
    }

    /// Starts operations for `candidates` (in order) within the ring's maxConcurrent, the
    /// policy's disruption budgets, busy assets and windows.
    #[allow(clippy::too_many_arguments)]
    fn start_operations(
        &mut self,
        rollout: &PatchRollout,
        policy: Option<usize>,
        ring_name: &str,
        spec: &RingSpec,
        total: i32,
        mut in_flight: i32,
        candidates: &[(&Member, bool)],
        action: OperationAction,
    ) -> Started {
        let mut result = Started::default();
        let Some(policy) = policy else { return result };
        let rollout_name = rollout.metadata.name.clone().unwrap_or_default();
        let frozen = frozen_deadlines(rollout);
        let max = i32::try_from(
            spec.max_concurrent()
                .resolve(u64::try_from(total).unwrap_or(0), Rounding::Up)
                .max(1),
        )
        .unwrap_or(i32::MAX);
        for (member, _) in candidates {
            // Other policies' rollouts through the same ring count too.
            let ring_busy = self.ring_busy.get(ring_name).copied().unwrap_or(0);
            if in_flight.max(ring_busy) >= max {
                result.ring_taken = in_flight < max;
                break;
            }
            let asset = member.asset;
            if self.in_flight.contains(&asset) {
                continue;
            }
            if action == OperationAction::Rollback
                && member
                    .record
                    .as_ref()
                    .is_some_and(|r| r.action == OperationAction::Rollback)
            {
                continue;
            }
            if !self.budget_allows(policy, asset) {
                continue;
            }
            let deadline = match self.permission(asset, policy) {
                StartPermission::Allowed { deadline } => deadline,
                StartPermission::Blocked { until, opens, .. } => {
                    result.blocked_by_window = true;
                    // Where a search that found no opening stopped is no opening.
                    if opens {
                        result.window_opens_at =
                            Some(result.window_opens_at.map_or(until, |t| t.min(until)));
                    }
                    self.wake_at(until);
                    continue;
                }
                StartPermission::Never => continue,
            };
            let compiled = &self.policies[policy];
            let asset_name = self.asset_name(asset).to_owned();
            let id = operation_id(&rollout_name, &asset_name, action);
            let updates: Vec<UpdateRef> = match action {
                // The frozen updates the policy owns on the asset that it misses.
                OperationAction::Install => {
                    let available = self.available(asset);
                    self.owned_updates(asset, policy)
                        .map(|u| &available[u])
                        .filter(|u| frozen.contains_key(&(u.id.as_str(), u.version.as_deref())))
                        .map(AvailableUpdate::reference)
                        .collect()
                }
                // Roll back exactly what the install of this rollout put there.
                OperationAction::Rollback => rollout
                    .spec
                    .updates
                    .iter()
                    .map(FrozenUpdate::reference)
                    .collect(),
            };
            let timeout_at = self
                .now
                .checked_add(compiled.timeout)
                .unwrap_or(Timestamp::MAX);
            let operation = Operation {
                id: id.clone(),
                rollout: rollout_name.clone(),
                ring: Some(ring_name.to_owned()),
                revision: Some(rollout.spec.revision.clone()),
                action,
                updates,
                reboot: compiled.object.spec.reboot,
                hooks: compiled.object.spec.hooks.clone(),
                issued_at: Time(self.now),
                not_after: Time(deadline),
                timeout_at: Time(timeout_at),
            };
            let record = AssetRolloutRecord {
                rollout: rollout_name.clone(),
                ring: Some(ring_name.to_owned()),
                operation_id: Some(id),
                action,
                phase: OperationPhase::Running,
                started_at: Some(Time(self.now)),
                finished_at: None,
                message: None,
            };
            let (kind, message) = match action {
                OperationAction::Install => (
                    EventType::OperationStarted,
                    format!(
                        "installing {} on {asset_name} (start before {deadline})",
                        plural(operation.updates.len(), "update", "updates")
                    ),
                ),
                OperationAction::Rollback => (
                    EventType::RollbackStarted,
                    format!("rolling back {asset_name} after ring {ring_name} halted"),
                ),
            };
            let policy_name = compiled.name.to_owned();
            self.event(
                kind,
                Some(&policy_name),
                Some(&rollout_name),
                Some(ring_name),
                Some(&asset_name),
                message,
            );
            self.wake_at(timeout_at);
            self.in_flight.insert(asset);
            self.count_start(asset);
            self.set_record(asset, record.clone());
            self.out.operations.push(IssuedOperation {
                asset: asset_name,
                index: asset,
                operation,
                record,
            });
            in_flight += 1;
            *self.ring_busy.entry(ring_name.to_owned()).or_default() += 1;
            result.started += 1;
        }
        result
    }

    fn labels(&self, asset: usize) -> &'a BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.inventory.assets[asset]
            .metadata
            .labels
            .as_ref()
            .unwrap_or(&EMPTY)
    }

    /// Counts, per disruption budget, the assets it selects and those in flight (once per
    /// evaluation, so that checking a start is cheap).
    fn count_budgets(&mut self) {
        let mut size = Vec::with_capacity(self.policies.len());
        let mut busy = Vec::with_capacity(self.policies.len());
        for policy in &self.policies {
            let mut sizes = vec![0_u64; policy.budgets.len()];
            let mut busies = vec![0_u64; policy.budgets.len()];
            for asset in 0..self.inventory.assets.len() {
                let labels = self.labels(asset);
                for (b, (selector, _)) in policy.budgets.iter().enumerate() {
                    if selector.matches(labels) {
                        sizes[b] += 1;
                        if self.in_flight.contains(&asset) {
                            busies[b] += 1;
                        }
                    }
                }
            }
            size.push(sizes);
            busy.push(busies);
        }
        self.budget_size = size;
        self.budget_busy = busy;
    }

    fn budget_allows(&self, policy: usize, asset: usize) -> bool {
        let labels = self.labels(asset);
        self.policies[policy]
            .budgets
            .iter()
            .enumerate()
            .all(|(b, (selector, max))| {
                !selector.matches(labels)
                    || self.budget_busy[policy][b]
                        < max
                            .resolve(self.budget_size[policy][b], Rounding::Up)
                            .max(1)
            })
    }

    /// Records a start against every budget (of every policy) that selects the asset.
    fn count_start(&mut self, asset: usize) {
        let labels = self.labels(asset);
        for (p, policy) in self.policies.iter().enumerate() {
            for (b, (selector, _)) in policy.budgets.iter().enumerate() {
                if selector.matches(labels) {
                    self.budget_busy[p][b] += 1;
                }
            }
        }
    }

    fn criticality(&self, asset: usize) -> Criticality {
        self.inventory.assets[asset].spec.criticality
    }

    /// Why no window ever lets `asset` start an operation of `policy` (it is Unscheduled).
    fn never_reason(&self, asset: usize, policy: usize) -> String {
        let (allow, _) = &self.memo.groups[self.memo.facts[asset].window_group];
        let allow: Vec<&CompiledWindow> = allow.iter().map(|w| &self.windows[*w]).collect();
        let policy = &self.policies[policy];
        windows::never_reason(
            &policy.allow_windows(allow),
            &policy.windows.iter().copied().collect::<Vec<_>>(),
            self.now,
        )
    }

    fn asset_name(&self, asset: usize) -> &'a str {
        self.inventory.assets[asset]
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
    }

    /// The latest rollout of `policy` with a record for `asset`: the one that decides its state.
    fn latest_rollout<'r>(
        &self,
        asset: usize,
        policy: usize,
        rollouts_by_policy: &FastMap<&str, Vec<&'r PatchRollout>>,
    ) -> Option<&'r PatchRollout> {
        rollouts_by_policy
            .get(self.policies[policy].name)
            .and_then(|rs| {
                rs.iter()
                    .rev()
                    .find(|r| self.record(asset, object_name(r)).is_some())
                    .copied()
            })
    }

    /// Where `asset` stands under the policy in `slot` of its policies.
    fn asset_state(
        &self,
        asset: usize,
        slot: usize,
        rollouts_by_policy: &FastMap<&str, Vec<&PatchRollout>>,
    ) -> AssetState {
        let policy = self.memo.facts[asset].policies[slot];
        let policy_name = self.policies[policy].name;
        let spec = &self.inventory.assets[asset].spec;
        let name = self.asset_name(asset);
        let placement = self.placement(asset, policy).unwrap_or(Placement {
            ring: None,
            unscheduled: false,
        });
        let owns_missing = self.owned_updates(asset, policy).next().is_some();
        let record = self
            .latest_rollout(asset, policy, rollouts_by_policy)
            .and_then(|r| self.record(asset, object_name(r)));
        if placement.ring.is_none() {
            AssetState::Unassigned
        } else if spec.hold {
            AssetState::Held
        } else if let Some(record) = record.filter(|r| {
            r.action == OperationAction::Install
                && (r.phase != OperationPhase::Running || !owns_missing)
        }) {
            match record.phase {
                OperationPhase::Succeeded if !owns_missing => AssetState::Patched,
                OperationPhase::Succeeded | OperationPhase::Running => AssetState::Pending,
                _ => AssetState::Failed,
            }
        } else if !owns_missing {
            AssetState::UpToDate
        } else if placement.unscheduled {
            AssetState::Unscheduled
        } else if self.policies[policy]
            .object
            .spec
            .manual_approval
            .contains(&spec.criticality)
            && !rollouts_by_policy
                .get(policy_name)
                .and_then(|rs| rs.last())
                .is_some_and(|r| r.spec.approved_assets.iter().any(|a| a.name == name))
            && record.is_none()
        {
            AssetState::WaitingForApproval
        } else {
            AssetState::Pending
        }
    }

    /// Asset views (one per asset and governing policy, if `views`), the assets waiting for a
    /// per-asset approval and the level-triggered reports; gives back the memo.
    fn finish(mut self, views: bool) -> (Evaluation, Memo) {
        let rollouts_by_policy: FastMap<&str, Vec<&PatchRollout>> =
            self.rollouts.iter().fold(FastMap::default(), |mut map, r| {
                map.entry(r.spec.policy.as_str()).or_default().push(r);
                map
            });
        // Besides the asset and the records this evaluation changed, a state depends on the
        // rollouts of each policy, the last one's per-asset approvals and the windows at `now`.
        let context = format!(
            "{:?}{:?}",
            self.policies
                .iter()
                .map(|p| {
                    let rollouts = rollouts_by_policy.get(p.name);
                    let names: Vec<&str> = rollouts
                        .into_iter()
                        .flatten()
                        .map(|r| object_name(r))
                        .collect();
                    let approved: Vec<&str> = rollouts
                        .and_then(|rs| rs.last())
                        .into_iter()
                        .flat_map(|r| r.spec.approved_assets.iter().map(|a| a.name.as_str()))
                        .collect();
                    (names, approved)
                })
                .collect::<Vec<_>>(),
            self.permissions
        );
        let stale: Vec<usize> = if self.memo.states_context == context {
            let mut stale: Vec<usize> = self
                .changed
                .iter()
                .chain(self.changed_records.keys())
                .chain(&self.memo.overlaid)
                .copied()
                .collect();
            stale.sort_unstable();
            stale.dedup();
            stale
        } else {
            (0..self.memo.facts.len()).collect()
        };
        for asset in stale {
            let states = (0..self.memo.facts[asset].policies.len())
                .map(|slot| self.asset_state(asset, slot, &rollouts_by_policy))
                .collect();
            self.memo.facts[asset].states = states;
        }
        self.memo.states_context = context;
        // Their states read this evaluation's changes: computed again next time.
        self.memo.overlaid = self.changed_records.keys().copied().collect();

        let mut out_views = Vec::new();
        let mut awaiting = Vec::new();
        let mut reports = Vec::new();
        for asset in 0..self.memo.facts.len() {
            let name = self.asset_name(asset);
            let facts = &self.memo.facts[asset];
            for (slot, state) in facts.states.iter().enumerate() {
                let policy_name = self.policies[facts.policies[slot]].name;
                match state {
                    AssetState::Unscheduled => {
                        let reason = self.never_reason(asset, facts.policies[slot]);
                        reports.push((*state, policy_name.to_owned(), name.to_owned(), reason));
                    }
                    AssetState::Unassigned => {
                        let reason = "none of its rings selects it".to_owned();
                        reports.push((*state, policy_name.to_owned(), name.to_owned(), reason));
                    }
                    AssetState::WaitingForApproval => awaiting.push(name.to_owned()),
                    _ => {}
                }
            }
            if !views {
                continue;
            }
            if facts.policies.is_empty() {
                out_views.push(AssetView {
                    name: name.to_owned(),
                    policy: None,
                    ring: None,
                    state: AssetState::UpToDate,
                    rollout: None,
                });
            }
            // The states are up to date for every asset now; only the deciding rollout is
            // looked up.
            for (policy, state) in facts.policies.iter().zip(&facts.states) {
                let latest = self.latest_rollout(asset, *policy, &rollouts_by_policy);
                let placement = self.placement(asset, *policy);
                out_views.push(AssetView {
                    name: name.to_owned(),
                    policy: Some(self.policies[*policy].name.to_owned()),
                    ring: placement.and_then(|p| p.ring).map(str::to_owned),
                    state: *state,
                    rollout: latest.and_then(|r| r.metadata.name.clone()),
                });
            }
        }
        for (state, policy, asset, reason) in reports {
            let kind = match state {
                AssetState::Unscheduled => EventType::AssetUnscheduled,
                _ => EventType::AssetUnassigned,
            };
            let message = format!("{asset} is never patched by {policy}: {reason}");
            self.event(kind, Some(&policy), None, None, Some(&asset), message);
        }
        awaiting.dedup();
        self.out.assets = out_views;
        self.out.awaiting_approval = awaiting;
        // Orders of rollouts this evaluation did not advance would miss its changes.
        let epoch = self.memo.epoch;
        self.memo.members.retain(|_, m| m.epoch == epoch);
        (self.out, self.memo)
    }
}

#[derive(Default)]
struct Started {
    started: i32,
    blocked_by_window: bool,
    /// Candidates waited because other rollouts' operations filled the ring's maxConcurrent.
    ring_taken: bool,
    /// The earliest instant a window lets one of the blocked candidates start.
    window_opens_at: Option<Timestamp>,
}

#[derive(Clone, Copy)]
struct Member {
    asset: usize,
    /// Index of the first of the rollout's rings with the member's ring name.
    ring: usize,
    record: Option<RecordSummary>,
}

/// What the ring bookkeeping reads of an asset's rollout record.
#[derive(Clone, Copy)]
struct RecordSummary {
    action: OperationAction,
    phase: OperationPhase,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
}

impl RecordSummary {
    fn of(record: &AssetRolloutRecord) -> Self {
        RecordSummary {
            action: record.action,
            phase: record.phase,
            started_at: record.started_at.as_ref().map(|t| t.0),
            finished_at: record.finished_at.as_ref().map(|t| t.0),
        }
    }
}

/// A rollout's frozen updates with their deadlines, by (id, version).
fn frozen_deadlines(rollout: &PatchRollout) -> FastMap<(&str, Option<&str>), Option<Timestamp>> {
    rollout
        .spec
        .updates
        .iter()
        .map(|u| {
            (
                (u.id.as_str(), u.version.as_deref()),
                u.deadline.as_ref().map(|t| t.0),
            )
        })
        .collect()
}

/// The asset's stored record for `rollout` (of two, the last).
fn stored_record<'r>(asset: &'r Asset, rollout: &str) -> Option<&'r AssetRolloutRecord> {
    asset
        .status
        .as_ref()?
        .rollouts
        .iter()
        .rev()
        .find(|r| r.rollout == rollout)
}

/// Whether one of `rollouts` served `asset` (it has a record of it). Only finished rollouts
/// are asked (the ones a repeat repeats), so the stored records are the whole truth: no
/// outcome of this run changes them.
fn served_by(asset: &Asset, rollouts: &[String]) -> bool {
    rollouts.iter().any(|r| stored_record(asset, r).is_some())
}

/// The valid policies, rings and windows, in the order the run indexes them: what every kept
/// [`AssetFacts`] was computed under.
fn config_key(
    windows: &[CompiledWindow],
    rings: &FastMap<&str, CompiledRing>,
    policies: &[CompiledPolicy],
) -> String {
    let windows: Vec<(&str, &MaintenanceWindowSpec)> =
        windows.iter().map(|w| (w.name, w.spec)).collect();
    let rings: BTreeMap<&str, &RingSpec> = rings.iter().map(|(n, r)| (*n, r.spec)).collect();
    let policies: Vec<(&str, &crate::api::policy::PatchPolicySpec)> =
        policies.iter().map(|p| (p.name, &p.object.spec)).collect();
    // Serializing specs of our own types cannot fail; an empty key only means no reuse.
    serde_json::to_string(&(windows, rings, policies)).unwrap_or_default()
}

fn object_name(rollout: &PatchRollout) -> &str {
    rollout.metadata.name.as_deref().unwrap_or_default()
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn describe_ring(ring: &RingProgress, stalled: Option<&str>, taken: &[String]) -> String {
    if let Some(reason) = stalled {
        return format!("stalled: {reason}");
    }
    let name = &ring.name;
    match ring.phase {
        RingPhase::WaitingForApproval if ring.awaiting_approval.is_empty() => {
            format!("ring {name} waits for its approval")
        }
        RingPhase::WaitingForApproval => format!(
            "ring {name} waits for per-asset approvals: {}",
            named_in_message(ring.awaiting_approval.iter().map(String::as_str))
        ),
        RingPhase::WaitingForWindow => match &ring.window_opens_at {
            Some(at) => format!(
                "ring {name} waits for a maintenance window: none of its assets may start before {}",
                at.0
            ),
            None => format!("ring {name} waits for a maintenance window"),
        },
        RingPhase::Baking => format!(
            "ring {name} baking until {}",
            ring.bake_until
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default()
        ),
        _ => format!(
            "ring {name}: {} succeeded, {} in flight, {} pending, {} failed of {}{}",
            ring.succeeded,
            ring.in_flight,
            ring.pending,
            ring.failed,
            ring.total,
            if taken.contains(name) {
                "; its maxConcurrent is taken by other rollouts' operations in the ring"
            } else {
                ""
            }
        ),
    }
}

/// A ring that completed and then gained a member that waits for the ring's approval: the
/// later rings went on, so the rollout's phase follows them while they run.
fn late_approval(ring: &RingProgress) -> bool {
    ring.phase == RingPhase::WaitingForApproval && ring.completed_at.is_some()
}

/// The first [`MAX_NAMED_IN_MESSAGE`] names, comma-separated, then `...` if there are more.
fn named_in_message<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut names = names.peekable();
    let mut shown: Vec<&str> = names.by_ref().take(MAX_NAMED_IN_MESSAGE).collect();
    if names.peek().is_some() {
        shown.push("...");
    }
    shown.join(", ")
}

/// A finished rollout's stored status with `observedGeneration` (its own and its
/// conditions') moved to the current generation; `None` when it already is there.
fn acknowledged(rollout: &PatchRollout) -> Option<PatchRolloutStatus> {
    let generation = rollout.metadata.generation?;
    let stored = rollout.status.as_ref()?;
    let current = stored.observed_generation == Some(generation)
        && stored
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(generation));
    if current {
        return None;
    }
    let mut status = stored.clone();
    status.observed_generation = Some(generation);
    for condition in &mut status.conditions {
        condition.observed_generation = Some(generation);
    }
    Some(status)
}

/// kstatus conditions: Ready (True once Succeeded), Reconciling (work in progress), Stalled
/// (cannot progress without a person: a missing ring or policy), Halted, Paused.
fn rollout_conditions(
    previous: &[Condition],
    phase: RolloutPhase,
    paused: bool,
    stalled: Option<&str>,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let halted = matches!(phase, RolloutPhase::Halted | RolloutPhase::RollingBack);
    let reconciling = !is_terminal(phase) && !halted && stalled.is_none();
    let phase_word = format!("{phase:?}");
    let wanted = [
        (
            "Ready",
            phase == RolloutPhase::Succeeded,
            phase_word.as_str(),
            message,
        ),
        ("Reconciling", reconciling, phase_word.as_str(), message),
        (
            "Stalled",
            stalled.is_some() || halted,
            if halted {
                "Halted"
            } else if stalled.is_some() {
                "InvalidReference"
            } else {
                "NotStalled"
            },
            match stalled {
                Some(reason) => reason,
                None if halted => message,
                None => "not stalled: no missing ring or policy, no halt",
            },
        ),
        (
            "Halted",
            halted,
            if halted {
                "FailureThresholdExceeded"
            } else {
                "NotHalted"
            },
            if halted {
                message
            } else {
                "no ring's failures exceed its threshold"
            },
        ),
        (
            "Paused",
            paused,
            if paused { "PausedBySpec" } else { "NotPaused" },
            if paused {
                "spec.paused is true: no new operation starts; operations in flight finish"
            } else {
                "not paused (spec.paused is not true)"
            },
        ),
    ];
    wanted
        .into_iter()
        .map(|(kind, on, reason, text)| {
            set_condition(previous, kind, on, reason, text, generation, now)
        })
        .collect()
}

/// A condition with `lastTransitionTime` kept from `previous` when its status did not change.
pub fn set_condition(
    previous: &[Condition],
    kind: &str,
    on: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if on { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests;
