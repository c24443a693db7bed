//! `kubectl patchwave plan`: which assets go in which ring of which rollout, when each can
//! start, and a forecast against the deadlines.
//!
//! The forecast is the simulation itself, run with every operation succeeding in the asset's
//! expected duration and every approval given when it is asked for: one engine, no second
//! copy of the rules.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::CliError;
use super::output::{OutputFormat, ProgressLine, parse_time};
use crate::api::Asset;
use crate::engine::evaluate::{
    AssetState, AssetView, Evaluator, Event, EventType, PlanExplainer, is_terminal,
};
use crate::engine::simulation::{self, Options};
use crate::engine::{Inventory, windows};

/// The note of a held asset.
const HELD: &str = "held (spec.hold)";

/// How far ahead the forecast looks.
const FORECAST_HORIZON: SignedDuration = SignedDuration::from_hours(24 * 180);

/// Show what would happen, wave by wave, with a forecast against the deadlines.
///
/// For every rollout that is active or would be created now: its rings in order, the assets of
/// each ring with the first instant each can start (its next maintenance window; for one that
/// does not start within the 180 days of the forecast, why not), and when each
/// ring and the whole rollout would complete if every operation succeeds in the asset's
/// expected duration (`spec.expectedDuration`, else 10m) and every approval is given when asked.
/// Deadlines come from the policies (`spec.deadlines`, counted from each update's release).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    kubectl patchwave plan -f examples/\n  \
    kubectl patchwave plan -f examples/ --at 2026-11-30T18:00:00+01:00 -o json\n\n\
    Exit status: 0 when the input has no problems, 1 when it has (they are listed first and the\n\
    plan is printed all the same, without the objects in question), 2 when the command could\n\
    not run (a path that cannot be read, a wrong option).")]
pub struct Args {
    /// Files or folders of YAML (multi-document; folders are read recursively).
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The instant to plan from: RFC 3339 or a date (midnight UTC). Default: now.
    #[arg(long, value_parser = parse_time)]
    pub at: Option<Timestamp>,
    /// Namespace for objects that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// table for people, json for programs.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// The plan of all namespaces.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The instant planned from.
    pub at: Timestamp,
    /// Rollouts, active or to be created, with their forecast.
    pub rollouts: Vec<RolloutPlan>,
    /// Assets that will never be patched as things stand, and why.
    pub never_patched: Vec<NeverPatched>,
    /// Problems with the input (invalid objects take no part).
    pub problems: Vec<String>,
}

/// One rollout's plan.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPlan {
    pub name: String,
    pub namespace: String,
    pub policy: String,
    /// true if the rollout does not exist yet and the operator would create it.
    pub to_be_created: bool,
    /// When it was created, or, for one to be created, when the forecast creates it: the
    /// plan's instant, or later for a rollout that waits for the policy's current one.
    pub created_at: Option<Timestamp>,
    pub updates: usize,
    /// The earliest deadline of the rollout's updates.
    pub deadline: Option<Timestamp>,
    /// Forecast completion of the whole rollout (None: not within the horizon).
    pub forecast_completion: Option<Timestamp>,
    /// Whether the forecast completion meets the deadline.
    pub on_time: Option<bool>,
    /// For a rollout that stalls in the forecast (a ring that does not exist, an operation
    /// that can never be issued), the engine's message: it keeps its policy from starting
    /// another rollout until someone acts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled: Option<String>,
    pub rings: Vec<RingPlan>,
}

/// One ring's plan.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RingPlan {
    pub name: String,
    pub forecast_start: Option<Timestamp>,
    pub forecast_completion: Option<Timestamp>,
    pub bake_until: Option<Timestamp>,
    pub assets: Vec<AssetPlan>,
}

/// One asset's plan.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetPlan {
    pub name: String,
    /// When its operation would start (its next window, after its ring's turn).
    pub forecast_start: Option<Timestamp>,
    /// When it would be patched.
    pub forecast_done: Option<Timestamp>,
    /// Held or needing approval now; for an asset that does not start within the forecast
    /// horizon (`forecast_start` None), why not.
    pub note: Option<String>,
}

/// An asset that will never be patched as things stand.
#[derive(Debug, Serialize)]
pub struct NeverPatched {
    pub namespace: String,
    pub asset: String,
    pub policy: Option<String>,
    pub state: AssetState,
    /// Why: no Allow window selects it, the windows that do never open again, no ring.
    pub reason: String,
}

/// Runs `plan`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let loaded = super::load_manifests(&args.paths, &args.namespace)?;
    let at = args.at.unwrap_or_else(Timestamp::now);
    let mut plan = Plan {
        at,
        rollouts: Vec::new(),
        never_patched: Vec::new(),
        problems: super::input_problems(&loaded),
    };
    for (namespace, inventory) in loaded.namespaces {
        plan_namespace(&mut plan, &namespace, inventory)?;
    }
    match args.output {
        OutputFormat::Json => super::print_json(&plan)?,
        OutputFormat::Table => super::print(&render_table(&plan))?,
    }
    Ok(super::problems_exit_code(&plan.problems))
}

/// Adds one namespace's rollouts to `plan` (its problems are the caller's to list: the
/// engine leaves invalid objects out either way).
pub fn plan_namespace(
    plan: &mut Plan,
    namespace: &str,
    inventory: Inventory,
) -> Result<(), CliError> {
    let at = plan.at;
    // The forecast starts from the same objects: it reuses what this evaluation computed.
    let mut evaluator = Evaluator::default();
    let now = evaluator.evaluate(&inventory, at);
    let finished_before: Vec<String> = inventory
        .rollouts
        .iter()
        .filter(|r| r.status.as_ref().is_some_and(|s| is_terminal(s.phase)))
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    let existing: Vec<String> = inventory
        .rollouts
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    let held_or_waiting: HashMap<String, String> = now
        .assets
        .iter()
        .filter_map(|v| match v.state {
            AssetState::Held => Some((v.name.clone(), HELD.to_owned())),
            AssetState::WaitingForApproval => {
                Some((v.name.clone(), "needs a per-asset approval".to_owned()))
            }
            _ => None,
        })
        .collect();
    let options = Options {
        from: at,
        until: at.checked_add(FORECAST_HORIZON).unwrap_or(Timestamp::MAX),
        approvals: Vec::new(),
        assume_success: true,
    };
    let mut progress = ProgressLine::on_stderr(format!("forecasting namespace {namespace}"));
    let forecast =
        simulation::simulate_kept(&mut evaluator, inventory, &options, |p| progress.update(p));
    progress.finish();
    let forecast = forecast.map_err(|e| CliError::Simulation(e.to_string()))?;
    let assets: HashMap<&str, &Asset> = forecast
        .inventory
        .assets
        .iter()
        .filter_map(|a| Some((a.metadata.name.as_deref()?, a.as_ref())))
        .collect();
    // Compiled only if an asset needs a reason why it does not start.
    let explainer: OnceCell<PlanExplainer> = OnceCell::new();
    // Why `asset` can never start under `policy`, as of `when`.
    let never_reason = |asset: &str, policy: &str, when: Timestamp| {
        let windows = explainer.get_or_init(|| PlanExplainer::new(&forecast.inventory));
        let of = assets.get(asset).map(|a| windows.of(a, policy));
        of.map_or_else(String::new, |w| {
            windows::never_reason(&w.allow, &w.named, when)
        })
    };
    for view in &now.assets {
        if matches!(view.state, AssetState::Unscheduled | AssetState::Unassigned) {
            let reason = match view.state {
                AssetState::Unscheduled => {
                    never_reason(&view.name, view.policy.as_deref().unwrap_or_default(), at)
                }
                _ => "none of its policy's rings selects it".to_owned(),
            };
            plan.never_patched.push(NeverPatched {
                namespace: namespace.to_owned(),
                asset: view.name.clone(),
                policy: view.policy.clone(),
                state: view.state,
                reason,
            });
        }
    }
    for rollout in &forecast.inventory.rollouts {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        if finished_before.contains(&name) {
            continue;
        }
        let first = FirstEvents::of_rollout(&forecast.events, &name);
        let status = rollout.status.clone().unwrap_or_default();
        let mut ring_assets: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut started: HashSet<&str> = HashSet::new();
        for asset in &forecast.inventory.assets {
            let record = asset
                .status
                .as_ref()
                .and_then(|s| s.rollouts.iter().find(|r| r.rollout == name));
            if let (Some(record), Some(asset_name)) = (record, asset.metadata.name.as_deref()) {
                ring_assets
                    .entry(record.ring.clone().unwrap_or_default())
                    .or_default()
                    .push(asset_name.to_owned());
                started.insert(asset_name);
            }
        }
        // The members that never start (held, outside every window, their ring's turn not
        // coming), as the engine counts members; listed with the reason. Asked of the engine
        // only when an asset of the policy still waits.
        let waiting = |v: &&AssetView| {
            v.policy.as_deref() == Some(rollout.spec.policy.as_str())
                && matches!(
                    v.state,
                    AssetState::Pending
                        | AssetState::Held
                        | AssetState::WaitingForApproval
                        | AssetState::Unscheduled
                )
                && !started.contains(v.name.as_str())
        };
        let unstarted = forecast.assets.iter().any(|v| waiting(&v));
        let members: HashMap<&str, &str> = if unstarted {
            let engine = explainer.get_or_init(|| PlanExplainer::new(&forecast.inventory));
            engine
                .members(rollout)
                .into_iter()
                .filter_map(|(index, ring)| {
                    let name = forecast
                        .inventory
                        .assets
                        .get(index)?
                        .metadata
                        .name
                        .as_deref()?;
                    Some((name, ring))
                })
                .collect()
        } else {
            HashMap::new()
        };
        let mut reasons: HashMap<&str, String> = HashMap::new();
        for view in forecast.assets.iter().filter(waiting) {
            let (Some(asset), Some(&ring)) = (
                assets.get(view.name.as_str()),
                members.get(view.name.as_str()),
            ) else {
                continue;
            };
            let reason = if view.state == AssetState::Held {
                HELD.to_owned()
            } else if view.state == AssetState::Unscheduled {
                // Unscheduled by the end of the forecast: a window that closed before its turn
                // came says when it ended.
                never_reason(&view.name, &rollout.spec.policy, options.until)
            } else {
                let from = first
                    .of_ring(EventType::OperationStarted, ring)
                    .unwrap_or(at);
                let windows = explainer.get_or_init(|| PlanExplainer::new(&forecast.inventory));
                let w = windows.of(asset, &rollout.spec.policy);
                let horizon = format!("the forecast horizon ({})", when(Some(options.until)));
                match windows::no_start_reason(&w.allow, &w.deny, &w.named, from, options.until) {
                    Some(reason) => format!("no start before {horizon}: {reason}"),
                    None if first.of_ring(EventType::OperationStarted, ring).is_none() => {
                        format!("its ring's turn does not come before {horizon}")
                    }
                    None => format!("does not start before {horizon}"),
                }
            };
            let reason = match held_or_waiting.get(&view.name) {
                Some(note) if *note != reason => format!("{note}; {reason}"),
                _ => reason,
            };
            reasons.insert(view.name.as_str(), reason);
            ring_assets
                .entry(ring.to_owned())
                .or_default()
                .push(view.name.clone());
        }
        let rings = rollout
            .spec
            .rings
            .iter()
            .map(|ring| {
                let progress = status.rings.iter().find(|r| &r.name == ring);
                let mut assets: Vec<AssetPlan> = ring_assets
                    .get(ring)
                    .into_iter()
                    .flatten()
                    .map(|asset| AssetPlan {
                        name: asset.clone(),
                        forecast_start: first.of_asset(EventType::OperationStarted, asset),
                        forecast_done: first.of_asset(EventType::OperationSucceeded, asset),
                        note: reasons
                            .get(asset.as_str())
                            .or_else(|| held_or_waiting.get(asset))
                            .cloned(),
                    })
                    .collect();
                assets.sort_by(|a, b| {
                    a.forecast_start
                        .unwrap_or(Timestamp::MAX)
                        .cmp(&b.forecast_start.unwrap_or(Timestamp::MAX))
                        .then(a.name.cmp(&b.name))
                });
                RingPlan {
                    name: ring.clone(),
                    forecast_start: first.of_ring(EventType::OperationStarted, ring),
                    forecast_completion: first.of_ring(EventType::RingCompleted, ring),
                    bake_until: progress.and_then(|p| p.bake_until.as_ref().map(|t| t.0)),
                    assets,
                }
            })
            .collect();
        let deadline = rollout
            .spec
            .updates
            .iter()
            .filter_map(|u| u.deadline.as_ref().map(|d| d.0))
            .min();
        let completion = first.any(EventType::RolloutSucceeded);
        plan.rollouts.push(RolloutPlan {
            name: name.clone(),
            namespace: namespace.to_owned(),
            policy: rollout.spec.policy.clone(),
            to_be_created: !existing.contains(&name),
            created_at: first
                .any(EventType::RolloutCreated)
                .or_else(|| rollout.metadata.creation_timestamp.as_ref().map(|t| t.0)),
            updates: rollout.spec.updates.len(),
            deadline,
            forecast_completion: completion,
            on_time: match (completion, deadline) {
                (Some(c), Some(d)) => Some(c <= d),
                (None, Some(_)) => Some(false),
                _ => None,
            },
            stalled: status
                .conditions
                .iter()
                .find(|c| c.type_ == "Stalled" && c.status == "True")
                .map(|c| c.message.clone()),
            rings,
        });
    }
    Ok(())
}

/// The first time of each kind of event of one rollout, by asset and by ring: looked up once
/// per asset, so a scan of the events per asset would make the forecast quadratic.
struct FirstEvents<'a> {
    by_asset: HashMap<(EventType, &'a str), Timestamp>,
    by_ring: HashMap<(EventType, &'a str), Timestamp>,
    by_kind: HashMap<EventType, Timestamp>,
}

impl<'a> FirstEvents<'a> {
    fn of_rollout(events: &'a [Event], rollout: &str) -> Self {
        let mut first = FirstEvents {
            by_asset: HashMap::new(),
            by_ring: HashMap::new(),
            by_kind: HashMap::new(),
        };
        // Events are in time order, so the first insert of a key is the earliest.
        for event in events
            .iter()
            .filter(|e| e.rollout.as_deref() == Some(rollout))
        {
            if let Some(asset) = event.asset.as_deref() {
                first
                    .by_asset
                    .entry((event.kind, asset))
                    .or_insert(event.time);
            }
            if let Some(ring) = event.ring.as_deref() {
                first
                    .by_ring
                    .entry((event.kind, ring))
                    .or_insert(event.time);
            }
            first.by_kind.entry(event.kind).or_insert(event.time);
        }
        first
    }

    fn of_asset(&self, kind: EventType, asset: &str) -> Option<Timestamp> {
        self.by_asset.get(&(kind, asset)).copied()
    }

    fn of_ring(&self, kind: EventType, ring: &str) -> Option<Timestamp> {
        self.by_ring.get(&(kind, ring)).copied()
    }

    fn any(&self, kind: EventType) -> Option<Timestamp> {
        self.by_kind.get(&kind).copied()
    }
}

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%MZ").to_string(),
    )
}

/// What ends a "nothing happens" line: whether the problems listed above may be why.
pub(crate) fn unless_problems(problems: &[String]) -> &'static str {
    if problems.is_empty() {
        "\n"
    } else {
        " (or none is valid: see the problems above)\n"
    }
}

/// The plan for people.
pub fn render_table(plan: &Plan) -> String {
    let mut out = format!("plan at {}\n", plan.at);
    for problem in &plan.problems {
        out += &format!("problem: {problem}\n");
    }
    if plan.rollouts.is_empty() {
        out +=
            "\nnothing to roll out: no policy has approved updates missing on a schedulable asset";
        out += unless_problems(&plan.problems);
    }
    for rollout in &plan.rollouts {
        let verdict = match rollout.on_time {
            Some(true) => "on time".to_owned(),
            Some(false) => match (rollout.forecast_completion, rollout.deadline) {
                (Some(c), Some(d)) => format!(
                    "LATE by {:.1} days",
                    c.duration_since(d).as_secs_f64() / 86_400.0
                ),
                _ => "LATE: does not complete within the forecast horizon".to_owned(),
            },
            None => "no deadline".to_owned(),
        };
        out += &format!(
            "\nrollout {}{} (policy {}, {})\n  deadline {}  forecast completion {}  {}\n",
            rollout.name,
            match rollout.created_at {
                _ if !rollout.to_be_created => String::new(),
                Some(created) if created > plan.at => {
                    format!(" [created in the forecast at {}]", when(Some(created)))
                }
                _ => " [to be created]".to_owned(),
            },
            rollout.policy,
            super::output::plural(rollout.updates, "update", "updates"),
            when(rollout.deadline),
            when(rollout.forecast_completion),
            verdict
        );
        if let Some(stalled) = &rollout.stalled {
            out += &format!("  STALLED: {stalled}\n");
        }
        for ring in &rollout.rings {
            out += &format!(
                "  ring {:<10} {}{}  start {}  complete {}  bake until {}\n",
                ring.name,
                super::output::plural(ring.assets.len(), "asset", "assets"),
                // Completion counts the members that never start as skipped: say how many.
                match ring
                    .assets
                    .iter()
                    .filter(|a| a.forecast_start.is_none())
                    .count()
                {
                    0 => String::new(),
                    1 => " (1 never starts)".to_owned(),
                    n => format!(" ({n} never start)"),
                },
                when(ring.forecast_start),
                when(ring.forecast_completion),
                when(ring.bake_until)
            );
            for asset in &ring.assets {
                out += &format!(
                    "    {:<20} start {}  done {}{}\n",
                    asset.name,
                    when(asset.forecast_start),
                    when(asset.forecast_done),
                    asset
                        .note
                        .as_ref()
                        .map(|n| format!("  ({n})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    if !plan.never_patched.is_empty() {
        out += "\nnever patched as things stand:\n";
        for item in &plan.never_patched {
            out += &format!(
                "  {:<20} {:?} under {}: {}\n",
                item.asset,
                item.state,
                item.policy.as_deref().unwrap_or("-"),
                item.reason
            );
        }
    }
    out
}
