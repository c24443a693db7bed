//! A discrete-event run of the engine over virtual time, with simulated agents.
//!
//! The simulation drives [`evaluate`] exactly as the operator does: it applies each decision
//! to the objects (in memory instead of the API server), lets simulated agents finish their
//! operations after the duration and with the outcome their annotations ask for, and jumps to
//! the next instant anything can change. `kubectl patchwave simulate` shows the run; `plan`
//! uses it to forecast, assuming success.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;

use super::Inventory;
use super::evaluate::{AssetView, Evaluation, Evaluator, Event, EventType, is_terminal};
use super::validation::Problem;
use crate::api::rollout::Approval;
use crate::api::{Signature, Time};

// The simulated agent's behaviour lives with the simulated fleet (one copy for both).
use crate::agent::simulated::{Behaviour, BehaviourError, behaviour, finish_operation};
pub use crate::agent::simulated::{
    DEFAULT_DURATION, DURATION_ANNOTATION, OUTCOME_ANNOTATION, Outcome,
};
/// Evaluations at one instant before the simulation gives up on reaching a fixed point.
const MAX_ROUNDS_PER_INSTANT: usize = 64;
/// Instants a simulation visits at most (a guard against a schedule that never settles).
const MAX_STEPS: usize = 1_000_000;

/// Something a person approves up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approve {
    /// A ring with approval Manual, in every rollout.
    Ring(String),
    /// An asset needing per-asset approval, in every rollout.
    Asset(String),
}

/// How to run a simulation.
#[derive(Clone, Debug)]
pub struct Options {
    /// Virtual start.
    pub from: Timestamp,
    /// Virtual end (inclusive).
    pub until: Timestamp,
    /// Approvals given at `from`.
    pub approvals: Vec<Approve>,
    /// Forecast mode (`plan`): every operation succeeds, takes the asset's expected duration,
    /// and every approval is given as soon as it is needed. The run also ends as soon as every
    /// rollout has finished (a forecast is about the rollouts in sight, not the next ones).
    pub assume_success: bool,
}

/// The result of a simulation.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// Every decision, in time order.
    pub events: Vec<Event>,
    /// The objects at the end (rollouts with their final status, assets with their records).
    pub inventory: Inventory,
    /// Where each asset stands at the end.
    pub assets: Vec<AssetView>,
    /// Problems found in the input (invalid objects take no part).
    pub problems: Vec<Problem>,
    /// The instant the simulation stopped at.
    pub ended_at: Timestamp,
}

/// How far a running simulation has come (for a progress display on long runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The virtual instant just settled.
    pub now: Timestamp,
    /// Instants settled so far.
    pub instants: usize,
    /// Operations handed out so far.
    pub operations: usize,
}

/// Errors that stop a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    /// `until` is before `from`.
    #[error("--until ({until}) is before --from ({from})")]
    EmptyRange {
        /// Start.
        from: Timestamp,
        /// End.
        until: Timestamp,
    },
    /// An annotation could not be read.
    #[error("Asset/{asset}: metadata.annotations[{annotation}]: {message}")]
    BadAnnotation {
        /// Asset name.
        asset: String,
        /// Annotation key.
        annotation: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The engine kept deciding at one instant without settling (a bug, reported honestly).
    #[error("the engine did not settle at {at} after {MAX_ROUNDS_PER_INSTANT} evaluations")]
    NoFixedPoint {
        /// The instant.
        at: Timestamp,
    },
}

impl From<BehaviourError> for SimulationError {
    fn from(err: BehaviourError) -> Self {
        SimulationError::BadAnnotation {
            asset: err.asset,
            annotation: err.annotation,
            message: err.message,
        }
    }
}

/// Runs the engine over virtual time from `options.from` to `options.until`.
pub fn simulate(inventory: Inventory, options: &Options) -> Result<Simulation, SimulationError> {
    simulate_observed(inventory, options, |_| {})
}

/// [`simulate`], telling `observe` after each settled instant how far it has come.
pub fn simulate_observed(
    inventory: Inventory,
    options: &Options,
    observe: impl FnMut(Progress),
) -> Result<Simulation, SimulationError> {
    simulate_kept(&mut Evaluator::default(), inventory, options, observe)
}

/// [`simulate_observed`] with an evaluator that may know the inventory already (`plan`
/// evaluates its instant before it forecasts). One evaluator serves the whole run: at each
/// instant most assets are as they were.
pub fn simulate_kept(
    evaluator: &mut Evaluator,
    inventory: Inventory,
    options: &Options,
    observe: impl FnMut(Progress),
) -> Result<Simulation, SimulationError> {
    simulate_with(
        inventory,
        options,
        |inventory, now, views| evaluator.run(inventory, now, views),
        observe,
    )
}

/// [`simulate_observed`] with the engine passed in: `evaluate(inventory, now, views)` must
/// answer as [`super::evaluate::evaluate`] does (`views`: whether `assets` is wanted). Tests
/// pass one that checks a kept [`Evaluator`] against fresh evaluations.
pub fn simulate_with(
    mut inventory: Inventory,
    options: &Options,
    mut evaluate: impl FnMut(&Inventory, Timestamp, bool) -> Evaluation,
    mut observe: impl FnMut(Progress),
) -> Result<Simulation, SimulationError> {
    if options.until < options.from {
        return Err(SimulationError::EmptyRange {
            from: options.from,
            until: options.until,
        });
    }
    let behaviours = inventory
        .assets
        .iter()
        .map(|a| behaviour(a, options.assume_success))
        .collect::<Result<Vec<_>, _>>()?;
    let index: BTreeMap<String, usize> = inventory
        .assets
        .iter()
        .enumerate()
        .filter_map(|(i, a)| Some((a.metadata.name.clone()?, i)))
        .collect();
    for rollout in &mut inventory.rollouts {
        grant(
            &mut rollout.spec.approved_rings,
            &mut rollout.spec.approved_assets,
            &options.approvals,
            options.from,
        );
    }

    let mut events: Vec<Event> = Vec::new();
    let mut reported_once: HashSet<(EventType, Option<String>, Option<String>)> = HashSet::new();
    // Agent completions: (when, asset index, operation id).
    let mut completions: BinaryHeap<Reverse<(Timestamp, usize, String)>> = BinaryHeap::new();
    let mut now = options.from;
    let mut last = Evaluation::default();
    let mut operations = 0;
    for instants in 1..=MAX_STEPS {
        while let Some(Reverse((at, asset, id))) = completions.peek().cloned() {
            if at > now {
                break;
            }
            completions.pop();
            finish_operation(
                Arc::make_mut(&mut inventory.assets[asset]),
                &id,
                behaviours[asset].outcome,
                at,
            );
        }
        let mut settled = false;
        for _ in 0..MAX_ROUNDS_PER_INSTANT {
            let mut evaluation = evaluate(&inventory, now, false);
            operations += evaluation.operations.len();
            let changed = apply(
                &mut inventory,
                &evaluation,
                &index,
                options,
                now,
                &behaviours,
                &mut completions,
            );
            // Approvals the forecast gave (and those a created rollout receives only now) can
            // enable more, besides what the engine itself says.
            let more = changed || evaluation.enables_more();
            // The run keeps the events; the evaluation is done with them.
            for event in std::mem::take(&mut evaluation.events) {
                let once = matches!(
                    event.kind,
                    EventType::AssetUnscheduled | EventType::AssetUnassigned
                );
                if once
                    && !reported_once.insert((
                        event.kind,
                        event.policy.clone(),
                        event.asset.clone(),
                    ))
                {
                    continue;
                }
                events.push(event);
            }
            last = evaluation;
            if !more {
                settled = true;
                break;
            }
        }
        if !settled {
            return Err(SimulationError::NoFixedPoint { at: now });
        }
        observe(Progress {
            now,
            instants,
            operations,
        });
        let next_completion = completions.peek().map(|Reverse((at, _, _))| *at);
        let next = match (last.next_change, next_completion) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let all_finished = !inventory.rollouts.is_empty()
            && inventory
                .rollouts
                .iter()
                .all(|r| r.status.as_ref().is_some_and(|s| is_terminal(s.phase)));
        if options.assume_success && all_finished {
            break;
        }
        match next {
            Some(next) if next <= options.until && next > now => now = next,
            _ => break,
        }
    }
    // Where each asset stands at the end: the instant settled, so this evaluation decides
    // nothing new; only its views are wanted.
    let end = evaluate(&inventory, now, true);
    Ok(Simulation {
        events,
        assets: end.assets,
        problems: last.problems,
        inventory,
        ended_at: now,
    })
}

/// Adds the up-front approvals to a rollout's spec.
fn grant(
    rings: &mut Vec<Approval>,
    assets: &mut Vec<Approval>,
    approvals: &[Approve],
    at: Timestamp,
) {
    let signature = || Signature {
        by: Some("simulate --approve".to_owned()),
        at: Some(Time(at)),
        note: None,
    };
    for approval in approvals {
        let (list, name) = match approval {
            Approve::Ring(name) => (&mut *rings, name),
            Approve::Asset(name) => (&mut *assets, name),
        };
        if !list.iter().any(|a| &a.name == name) {
            list.push(Approval {
                name: name.clone(),
                signature: signature(),
            });
        }
    }
}

/// Applies an evaluation to the objects in memory, as the operator does on the cluster, and
/// schedules the simulated agents' completions. Returns whether the forecast granted
/// approvals (which the next evaluation must see).
fn apply(
    inventory: &mut Inventory,
    evaluation: &Evaluation,
    index: &BTreeMap<String, usize>,
    options: &Options,
    now: Timestamp,
    behaviours: &[Behaviour],
    completions: &mut BinaryHeap<Reverse<(Timestamp, usize, String)>>,
) -> bool {
    let applied = super::apply::apply(inventory, evaluation);
    let mut granted = false;
    for rollout in &mut inventory.rollouts {
        let Some(name) = rollout.metadata.name.as_deref() else {
            continue;
        };
        if applied.created_rollouts.iter().any(|c| c == name) {
            grant(
                &mut rollout.spec.approved_rings,
                &mut rollout.spec.approved_assets,
                &options.approvals,
                options.from,
            );
        }
        if options.assume_success {
            // Forecast: a person approves whatever waits for approval, at once.
            let waiting: Vec<String> = rollout
                .status
                .iter()
                .flat_map(|s| s.rings.iter())
                .filter(|r| r.phase == crate::api::rollout::RingPhase::WaitingForApproval)
                .map(|r| r.name.clone())
                .collect();
            for ring in waiting {
                if !rollout.spec.approved_rings.iter().any(|a| a.name == ring) {
                    grant(
                        &mut rollout.spec.approved_rings,
                        &mut Vec::new(),
                        &[Approve::Ring(ring)],
                        now,
                    );
                    granted = true;
                }
            }
        }
    }
    if options.assume_success {
        for rollout in &mut inventory.rollouts {
            for asset in &evaluation.awaiting_approval {
                if !rollout
                    .spec
                    .approved_assets
                    .iter()
                    .any(|a| &a.name == asset)
                {
                    grant(
                        &mut Vec::new(),
                        &mut rollout.spec.approved_assets,
                        &[Approve::Asset(asset.clone())],
                        now,
                    );
                    granted = true;
                }
            }
        }
    }
    for issued in &evaluation.operations {
        let i = if inventory
            .assets
            .get(issued.index)
            .is_some_and(|a| a.metadata.name.as_deref() == Some(issued.asset.as_str()))
        {
            issued.index
        } else {
            let Some(i) = index.get(&issued.asset).copied() else {
                continue;
            };
            i
        };
        let behaviour = behaviours[i];
        if behaviour.outcome != Outcome::NoResponse {
            let at = now
                .checked_add(behaviour.duration)
                .unwrap_or(Timestamp::MAX);
            completions.push(Reverse((at, i, issued.operation.id.clone())));
        }
    }
    granted
}
