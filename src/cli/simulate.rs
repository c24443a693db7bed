//! `kubectl patchwave simulate`: a discrete-event run of the engine over virtual time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;
use serde::Serialize;

use super::output::{OutputFormat, ProgressLine, parse_time, progress_bar};
use super::{CliError, load};
use crate::api::PatchRollout;
use crate::api::asset::UpdateRef;
use crate::engine::evaluate::{AssetState, AssetView, Event, EventType};
use crate::engine::simulation::{self, Approve, Options, Simulation};
use crate::engine::validation;

/// Run the rollout engine offline over virtual time and show what would happen.
///
/// Reads Assets (with the agents' reported updates in `status`), Rings, MaintenanceWindows,
/// PatchPolicies and PatchRollouts from YAML, then plays the operator and the agents from
/// --from to --until. Simulated agents follow two annotations on each Asset:
/// `simulate.patchwave.dev/outcome` (Succeeded, Failed or NoResponse; default Succeeded) and
/// `simulate.patchwave.dev/duration` (a Go-style duration; default the Asset's
/// `spec.expectedDuration`, else 10m).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    kubectl patchwave simulate -f examples/ --from 2026-11-30T18:00:00+01:00 --until 2026-12-20\n  \
    kubectl patchwave simulate -f examples/ --from 2026-11-30 --until 2026-12-31 --approve ring/rest --approve asset/dc01 -o json\n\n\
    Exit status: 0 when the input has no problems, 1 when it has (they are listed first and the\n\
    run is printed all the same, without the objects in question), 2 when the command could\n\
    not run (a path that cannot be read, a wrong option).")]
pub struct Args {
    /// Files or folders of YAML (multi-document; folders are read recursively).
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Virtual start: RFC 3339 (2026-11-30T18:00:00+01:00) or a date (midnight UTC).
    #[arg(long, value_parser = parse_time)]
    pub from: Timestamp,
    /// Virtual end (inclusive), same formats as --from.
    #[arg(long, value_parser = parse_time)]
    pub until: Timestamp,
    /// Approve a Manual ring (ring/NAME) or an asset needing per-asset approval (asset/NAME)
    /// in every rollout, from --from on. Repeat for several.
    #[arg(long = "approve", value_name = "ring/NAME|asset/NAME", value_parser = parse_approval)]
    pub approvals: Vec<Approve>,
    /// Namespace for objects that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// table for people, json for programs (the format is documented in the README).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

fn parse_approval(text: &str) -> Result<Approve, String> {
    match text.split_once('/') {
        Some(("ring", name)) if !name.is_empty() => Ok(Approve::Ring(name.to_owned())),
        Some(("asset", name)) if !name.is_empty() => Ok(Approve::Asset(name.to_owned())),
        _ => Err(format!("\"{text}\" is not ring/NAME or asset/NAME")),
    }
}

/// The `-o json` document: a public contract, documented in the README.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Virtual start.
    pub from: Timestamp,
    /// Virtual end.
    pub until: Timestamp,
    /// Every decision, sorted by time.
    pub events: Vec<Event>,
    /// Every rollout that existed or was created, with its final state.
    pub rollouts: Vec<RolloutReport>,
    /// Every asset under each policy governing it, with its final state.
    pub assets: Vec<AssetReport>,
    /// Problems with the input (invalid objects take no part).
    pub problems: Vec<String>,
}

/// A rollout in the report.
#[derive(Debug, Serialize)]
pub struct RolloutReport {
    pub name: String,
    pub namespace: String,
    pub policy: String,
    pub phase: String,
    pub updates: Vec<ReportedUpdate>,
    pub rings: Vec<RingReport>,
}

/// One frozen update in the report: `version` is `null` for an update without versions
/// (the API type leaves the field out, the contract names it).
#[derive(Debug, Serialize)]
pub struct ReportedUpdate {
    pub id: String,
    pub version: Option<String>,
}

impl From<UpdateRef> for ReportedUpdate {
    fn from(update: UpdateRef) -> Self {
        ReportedUpdate {
            id: update.id,
            version: update.version,
        }
    }
}

/// A ring of a rollout in the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RingReport {
    pub name: String,
    pub phase: String,
    pub total: i32,
    pub succeeded: i32,
    pub failed: i32,
    pub skipped: i32,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
}

/// An asset in the report.
#[derive(Debug, Serialize)]
pub struct AssetReport {
    pub name: String,
    pub namespace: String,
    pub policy: Option<String>,
    pub ring: Option<String>,
    pub state: AssetState,
}

/// Runs `simulate`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let loaded = super::load_manifests(&args.paths, &args.namespace)?;
    check_approvals(&loaded, &args.approvals)?;
    let problems = super::input_problems(&loaded);
    let options = Options {
        from: args.from,
        until: args.until,
        approvals: args.approvals.clone(),
        assume_success: false,
    };
    let mut runs = Vec::new();
    for (namespace, inventory) in loaded.namespaces {
        let mut progress = ProgressLine::on_stderr(format!("simulating namespace {namespace}"));
        let simulation = simulation::simulate_observed(inventory, &options, |p| progress.update(p));
        progress.finish();
        let simulation = simulation.map_err(|e| CliError::Simulation(e.to_string()))?;
        runs.push((namespace, simulation));
    }
    let report = report(&runs, &options, problems);
    match args.output {
        OutputFormat::Json => super::print_json(&report)?,
        OutputFormat::Table => super::print(&render_table(&report))?,
    }
    Ok(super::problems_exit_code(&report.problems))
}

/// Every `--approve` must name a Ring or Asset of the files read: a misspelt name would
/// approve nothing, and the run would look as if the approval changed nothing.
fn check_approvals(loaded: &load::LoadedFiles, approvals: &[Approve]) -> Result<(), CliError> {
    for approval in approvals {
        let (kind, name) = match approval {
            Approve::Ring(name) => (validation::kind::RING, name),
            Approve::Asset(name) => (validation::kind::ASSET, name),
        };
        let parsed = loaded
            .namespaces
            .values()
            .flat_map(|inventory| match approval {
                Approve::Ring(_) => inventory
                    .rings
                    .iter()
                    .filter_map(|r| r.metadata.name.as_deref())
                    .collect::<Vec<_>>(),
                Approve::Asset(_) => inventory
                    .assets
                    .iter()
                    .filter_map(|a| a.metadata.name.as_deref())
                    .collect(),
            });
        // An object that failed to parse is reported as such; its name is still known.
        let unparsed = loaded
            .unloadable
            .values()
            .flatten()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.as_str());
        let known: BTreeSet<&str> = parsed.chain(unparsed).collect();
        if known.contains(name.as_str()) {
            continue;
        }
        let hint = match kind {
            _ if known.is_empty() => format!(" (no {kind} was read)"),
            validation::kind::RING => format!(
                " (the Rings read: {})",
                known.iter().copied().collect::<Vec<_>>().join(", ")
            ),
            _ => String::new(),
        };
        return Err(CliError::Usage(format!(
            "--approve {}/{name}: no {kind} named {name} in the files read{hint}",
            kind.to_lowercase()
        )));
    }
    Ok(())
}

/// Builds the report of one or more namespaces' simulations, with the problems of their
/// input (as `validate` lists them).
pub fn report(runs: &[(String, Simulation)], options: &Options, problems: Vec<String>) -> Report {
    let mut events: Vec<Event> = runs
        .iter()
        .flat_map(|(_, s)| s.events.iter().cloned())
        .collect();
    // Stable: decisions at the same instant keep the order they were taken in.
    events.sort_by_key(|e| e.time);
    let rollouts = runs
        .iter()
        .flat_map(|(namespace, s)| {
            s.inventory
                .rollouts
                .iter()
                .map(move |r| rollout_report(namespace, r))
        })
        .collect();
    let assets = runs
        .iter()
        .flat_map(|(namespace, s)| s.assets.iter().map(move |a| asset_report(namespace, a)))
        .collect();
    Report {
        from: options.from,
        until: options.until,
        events,
        rollouts,
        assets,
        problems,
    }
}

fn rollout_report(namespace: &str, rollout: &PatchRollout) -> RolloutReport {
    let status = rollout.status.clone().unwrap_or_default();
    RolloutReport {
        name: rollout.metadata.name.clone().unwrap_or_default(),
        namespace: namespace.to_owned(),
        policy: rollout.spec.policy.clone(),
        phase: format!("{:?}", status.phase),
        updates: rollout
            .spec
            .updates
            .iter()
            .map(|u| u.reference().into())
            .collect(),
        rings: status
            .rings
            .iter()
            .map(|r| RingReport {
                name: r.name.clone(),
                phase: format!("{:?}", r.phase),
                total: r.total,
                succeeded: r.succeeded,
                failed: r.failed,
                skipped: r.skipped,
                started_at: r.started_at.as_ref().map(|t| t.0),
                completed_at: r.completed_at.as_ref().map(|t| t.0),
            })
            .collect(),
    }
}

fn asset_report(namespace: &str, view: &AssetView) -> AssetReport {
    AssetReport {
        name: view.name.clone(),
        namespace: namespace.to_owned(),
        policy: view.policy.clone(),
        ring: view.ring.clone(),
        state: view.state,
    }
}

/// The report for people: one line per ring with a progress bar, then the notable events and
/// the assets that need attention.
pub fn render_table(report: &Report) -> String {
    let mut out = format!("simulated {} -> {}\n", report.from, report.until);
    for problem in &report.problems {
        out += &format!("problem: {problem}\n");
    }
    if report.rollouts.is_empty() {
        out += "\nno rollout: no policy has approved updates missing on a schedulable asset";
        out += super::plan::unless_problems(&report.problems);
    }
    for rollout in &report.rollouts {
        out += &format!(
            "\nrollout {} (policy {}, {}): {}\n",
            rollout.name,
            rollout.policy,
            super::output::plural(rollout.updates.len(), "update", "updates"),
            rollout.phase
        );
        let width = rollout
            .rings
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4);
        for ring in &rollout.rings {
            let done = ring.succeeded + ring.failed + ring.skipped;
            out += &format!(
                "  {:width$}  {}  {:>3}/{:<3} {:>3} ok {:>3} failed {:>3} skipped  {:<18} {}\n",
                ring.name,
                progress_bar(ring.succeeded, ring.failed, done, ring.total, 20),
                done,
                ring.total,
                ring.succeeded,
                ring.failed,
                ring.skipped,
                ring.phase,
                match (ring.started_at, ring.completed_at) {
                    (Some(s), Some(c)) => format!("{s} -> {c}"),
                    (Some(s), None) => format!("started {s}"),
                    _ => String::new(),
                },
            );
        }
    }
    let notable: Vec<&Event> = report
        .events
        .iter()
        .filter(|e| {
            !matches!(
                e.kind,
                EventType::OperationStarted | EventType::OperationSucceeded
            )
        })
        .collect();
    if !notable.is_empty() {
        out += "\nevents:\n";
        for event in notable {
            out += &format!(
                "  {}  {:<18} {}\n",
                event.time,
                format!("{:?}", event.kind),
                event.message
            );
        }
    }
    let mut attention: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for asset in &report.assets {
        if matches!(
            asset.state,
            AssetState::Failed
                | AssetState::Held
                | AssetState::WaitingForApproval
                | AssetState::Unscheduled
                | AssetState::Unassigned
        ) {
            attention
                .entry(format!("{:?}", asset.state))
                .or_default()
                .push(format!(
                    "{} ({})",
                    asset.name,
                    asset.policy.as_deref().unwrap_or("-")
                ));
        }
    }
    if !attention.is_empty() {
        out += "\nassets needing attention:\n";
        for (state, assets) in attention {
            out += &format!("  {state}: {}\n", assets.join(", "));
        }
    }
    out
}
