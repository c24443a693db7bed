//! `kubectl patchwave status`: where the rollouts of a namespace stand, ring by ring, and what
//! a person can do next; with `--watch`, a live view that redraws whenever a rollout or an
//! asset changes.
//!
//! The view is built from the objects alone (no engine run): the operator's status of each
//! PatchRollout and the `status.state` of each Asset.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use futures::{StreamExt, stream};
use jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde::Serialize;

use super::cluster::{self, Cluster, ClusterArgs, ObjectRef};
use super::output::{OutputFormat, plural, progress_bar};
use super::{CliError, print};
use crate::api::rollout::{RingPhase, RolloutPhase};
use crate::api::{Asset, PatchPolicy, PatchRollout};
use crate::engine::evaluate::is_terminal;

/// The live view redraws at most this often.
const REDRAW_EVERY: Duration = Duration::from_millis(500);
/// Width of the progress bars.
const BAR_WIDTH: usize = 20;
/// Failed assets named on a ring line before "and N more".
const LISTED_FAILURES: usize = 5;

/// Show where the rollouts of a namespace stand, ring by ring, and what you can do next.
///
/// For each PatchRollout, newest first: its phase and, per ring, a progress bar with the
/// succeeded, failed, in-flight and pending assets, the ring's phase and what it waits for.
/// A halted rollout shows which assets failed and the exact `resume` command; one waiting for
/// approval shows the exact `approve` command. A last line counts the namespace's Assets by
/// state. Finished rollouts older than their policy's newest are hidden unless --all.
///
/// With --watch the view redraws in place whenever a rollout or an asset changes (at most
/// twice a second) until Ctrl-C; when the output is not a terminal each change prints a new
/// frame after a blank line (with -o json: one JSON document per line).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    kubectl patchwave status -n acme\n  \
    kubectl patchwave status security-fast-1a2b3c4d -n acme --watch\n  \
    kubectl patchwave status -n acme -o json | jq '.rollouts[] | {name, phase}'")]
pub struct Args {
    /// Show only this PatchRollout.
    pub rollout: Option<String>,
    /// Redraw whenever a rollout or an asset changes, until Ctrl-C.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Also show finished rollouts older than their policy's newest.
    #[arg(long)]
    pub all: bool,
    /// table for people, json for programs.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `status -o json`: the namespace's rollouts and a count of its assets by state.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The namespace shown.
    pub namespace: String,
    /// When the view was made.
    pub at: Timestamp,
    /// The rollouts shown, newest first.
    pub rollouts: Vec<RolloutView>,
    /// Finished rollouts left out because their policy has a newer one (see `--all`).
    pub hidden_rollouts: usize,
    /// The Assets of the namespace by `status.state`.
    pub assets: AssetSummary,
    /// Each policy's compliance over the last 30 days, as the operator last computed it.
    pub compliance: Vec<PolicyComplianceView>,
}

/// A policy's live compliance (from its status; the operator computes it with the KPIs).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyComplianceView {
    /// The policy.
    pub policy: String,
    /// Assets it selects.
    pub assets: Option<i32>,
    /// Missing asset-update pairs it owns.
    pub pending_updates: Option<i32>,
    /// Of those, past its deadline.
    pub overdue_updates: Option<i32>,
    /// Its compliance summary; `None` until the operator has computed one, and for an
    /// invalid policy.
    pub compliance: Option<crate::api::policy::PolicyCompliance>,
    /// Why the policy is invalid (its `Ready=False` message): it governs nothing.
    pub invalid: Option<String>,
}

fn compliance_views<'a>(
    policies: impl Iterator<Item = &'a PatchPolicy>,
) -> Vec<PolicyComplianceView> {
    let mut views: Vec<PolicyComplianceView> = policies
        .map(|p| {
            let status = p.status.clone().unwrap_or_default();
            PolicyComplianceView {
                policy: p.metadata.name.clone().unwrap_or_default(),
                assets: status.matched_assets,
                pending_updates: status.pending_updates,
                overdue_updates: status.overdue_updates,
                invalid: status.invalid_spec().map(|c| c.message.clone()),
                compliance: status.compliance,
            }
        })
        .collect();
    views.sort_by(|a, b| a.policy.cmp(&b.policy));
    views
}

/// One rollout in the status.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    /// PatchRollout name.
    pub name: String,
    /// The policy that produced it.
    pub policy: String,
    /// Its phase (Pending when the operator has not written a status yet).
    pub phase: RolloutPhase,
    /// The ring being worked on.
    pub current_ring: Option<String>,
    /// Updates in the frozen set.
    pub updates: usize,
    /// When the rollout was created.
    pub created_at: Option<Timestamp>,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.abort` is set.
    pub aborted: bool,
    /// The operator's one-line account.
    pub message: Option<String>,
    /// Why it halted, naming the failed assets.
    pub halt_reason: Option<String>,
    /// The rings in order.
    pub rings: Vec<RingView>,
    /// Commands that move the rollout on (resume, approve, unpause), ready to paste.
    pub next_steps: Vec<String>,
}

/// One ring of a rollout in the status.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RingView {
    /// Ring name.
    pub name: String,
    /// The ring's phase.
    pub phase: RingPhase,
    /// Assets of the ring that need an update of the set.
    pub total: i32,
    /// Not started yet.
    pub pending: i32,
    /// Operation in flight.
    pub in_flight: i32,
    /// Patched.
    pub succeeded: i32,
    /// Failed or timed out.
    pub failed: i32,
    /// Skipped (held, unscheduled, aborted before their turn).
    pub skipped: i32,
    /// How many times the ring halted.
    pub halts: i32,
    /// The failed assets.
    pub failed_assets: Vec<String>,
    /// Whether the ring is approved on the rollout (`spec.approvedRings`).
    pub approved: bool,
    /// When its first operation started.
    pub started_at: Option<Timestamp>,
    /// When its last operation finished.
    pub completed_at: Option<Timestamp>,
    /// When the next ring may start.
    pub bake_until: Option<Timestamp>,
    /// What the ring waits for or did, in words.
    pub detail: String,
}

/// Assets by state.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AssetSummary {
    /// Number of Assets in the namespace.
    pub total: usize,
    /// Count per `status.state` (`Unknown` when the operator has not set one).
    pub by_state: BTreeMap<String, usize>,
    /// Assets whose state is WaitingForApproval (they need `approve --asset`).
    pub waiting_for_approval: Vec<String>,
}

/// Runs `status`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    cluster::block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        if args.watch {
            return watch(args, &cluster).await;
        }
        let list = |kind: &str, e: kube::Error| {
            CliError::Cluster(format!(
                "cannot list {kind} in namespace {}: {e} (are the patchwave CRDs installed?)",
                cluster.namespace
            ))
        };
        let rollouts = cluster
            .api::<PatchRollout>()
            .list(&ListParams::default())
            .await
            .map_err(|e| list("patchrollouts", e))?
            .items;
        let assets = cluster
            .api::<Asset>()
            .list(&ListParams::default())
            .await
            .map_err(|e| list("assets", e))?
            .items;
        let policies = cluster
            .api::<PatchPolicy>()
            .list(&ListParams::default())
            .await
            .map_err(|e| list("patchpolicies", e))?
            .items;
        if let Some(name) = &args.rollout
            && !rollouts
                .iter()
                .any(|r| r.metadata.name.as_deref() == Some(name))
        {
            return Err(CliError::Cluster(format!(
                "{} not found in namespace {}",
                ObjectRef::new("patchrollout", &cluster, name),
                cluster.namespace
            )));
        }
        let mut report = build_report(
            &cluster.namespace,
            rollouts.iter(),
            &assets,
            args.rollout.as_deref(),
            args.all,
            Timestamp::now(),
        );
        report.compliance = compliance_views(policies.iter());
        match args.output {
            OutputFormat::Json => super::print_json(&report)?,
            OutputFormat::Table => print(&render_table(&report, args.rollout.as_deref()))?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// What moved in the watched streams.
enum Moved {
    /// A list of one kind is complete (the store holds all of them).
    Listed,
    /// An object was added, changed or deleted.
    Changed,
    /// Nothing a view shows (the start of a relist).
    Nothing,
}

fn moved<K>(event: &watcher::Event<K>) -> Moved {
    match event {
        watcher::Event::InitDone => Moved::Listed,
        watcher::Event::Apply(_) | watcher::Event::Delete(_) => Moved::Changed,
        watcher::Event::Init | watcher::Event::InitApply(_) => Moved::Nothing,
    }
}

/// The live view: reflectors over the namespace's PatchRollouts, Assets and PatchPolicies; a
/// frame after all are listed and after every change, at most every [`REDRAW_EVERY`].
async fn watch(args: &Args, cluster: &Cluster) -> Result<ExitCode, CliError> {
    let (rollout_store, rollout_writer) = reflector::store::<PatchRollout>();
    let (asset_store, asset_writer) = reflector::store::<Asset>();
    let (policy_store, policy_writer) = reflector::store::<PatchPolicy>();
    let policies = reflector::reflector(
        policy_writer,
        watcher::watcher(cluster.api::<PatchPolicy>(), watcher::Config::default()),
    )
    .default_backoff()
    .map(|event| event.map(|e| moved(&e)))
    .boxed();
    let rollouts = reflector::reflector(
        rollout_writer,
        watcher::watcher(cluster.api::<PatchRollout>(), watcher::Config::default()),
    )
    .default_backoff()
    .map(|event| event.map(|e| moved(&e)))
    .boxed();
    let assets = reflector::reflector(
        asset_writer,
        watcher::watcher(cluster.api::<Asset>(), watcher::Config::default()),
    )
    .default_backoff()
    .map(|event| event.map(|e| moved(&e)))
    .boxed();
    let mut events = stream::select(stream::select(rollouts, assets), policies);
    let terminal = std::io::stdout().is_terminal();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let (mut listed, mut dirty, mut frames) = (0, false, 0usize);
    // What the last frame showed, but for its time: agents' heartbeats change Assets all the
    // time without changing anything shown, and such a frame is not printed again.
    let mut last_shown = String::new();
    let mut next_draw = tokio::time::Instant::now();
    loop {
        let ready = listed >= 3 && dirty;
        tokio::select! {
            _ = &mut ctrl_c => break,
            event = events.next() => match event {
                None => break,
                Some(Ok(Moved::Listed)) => { listed += 1; dirty = true; }
                Some(Ok(Moved::Changed)) => dirty = true,
                Some(Ok(Moved::Nothing)) => {}
                Some(Err(e)) => {
                    eprintln!("warning: watching namespace {}: {e} (retrying)", cluster.namespace);
                }
            },
            () = tokio::time::sleep_until(next_draw), if ready => {
                let rollouts = rollout_store.state();
                let assets: Vec<Asset> = asset_store.state().iter().map(|a| (**a).clone()).collect();
                let mut report = build_report(
                    &cluster.namespace,
                    rollouts.iter().map(|r| &**r),
                    &assets,
                    args.rollout.as_deref(),
                    args.all,
                    Timestamp::now(),
                );
                report.compliance = compliance_views(policy_store.state().iter().map(|p| &**p));
                dirty = false;
                let at = std::mem::replace(&mut report.at, Timestamp::UNIX_EPOCH);
                let shown = serde_json::to_string(&report).unwrap_or_default();
                report.at = at;
                if shown == last_shown {
                    continue;
                }
                last_shown = shown;
                let frame = match args.output {
                    OutputFormat::Json => serde_json::to_string(&report)
                        .map_err(|e| CliError::Output(std::io::Error::other(e)))? + "\n",
                    OutputFormat::Table => {
                        let body = render_table(&report, args.rollout.as_deref());
                        if terminal {
                            format!("\x1b[H\x1b[2J{body}(watching; Ctrl-C to stop)\n")
                        } else if frames > 0 {
                            format!("\n{body}")
                        } else {
                            body
                        }
                    }
                };
                print(&frame)?;
                frames += 1;
                dirty = false;
                next_draw = tokio::time::Instant::now() + REDRAW_EVERY;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the status of `namespace` from its rollouts and assets: newest rollout first; only
/// `only` when given; finished rollouts older than their policy's newest left out unless
/// `all`.
pub fn build_report<'a>(
    namespace: &str,
    rollouts: impl Iterator<Item = &'a PatchRollout>,
    assets: &[Asset],
    only: Option<&str>,
    all: bool,
    now: Timestamp,
) -> StatusReport {
    let mut rollouts: Vec<&PatchRollout> = rollouts
        .filter(|r| only.is_none() || r.metadata.name.as_deref() == only)
        .collect();
    rollouts.sort_by(|a, b| {
        created(b)
            .cmp(&created(a))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let assets_summary = summarize_assets(assets);
    let mut seen_policies: Vec<&str> = Vec::new();
    let mut hidden = 0;
    let mut views = Vec::new();
    for rollout in rollouts {
        let policy = rollout.spec.policy.as_str();
        let newest_of_policy = !seen_policies.contains(&policy);
        seen_policies.push(policy);
        let phase = rollout.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if !all && only.is_none() && !newest_of_policy && is_terminal(phase) {
            hidden += 1;
            continue;
        }
        views.push(view_rollout(namespace, rollout));
    }
    StatusReport {
        namespace: namespace.to_owned(),
        at: now,
        rollouts: views,
        hidden_rollouts: hidden,
        assets: assets_summary,
        compliance: Vec::new(),
    }
}

fn created(rollout: &PatchRollout) -> Option<Timestamp> {
    rollout.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn summarize_assets(assets: &[Asset]) -> AssetSummary {
    let mut summary = AssetSummary {
        total: assets.len(),
        ..AssetSummary::default()
    };
    for asset in assets {
        let state = asset
            .status
            .as_ref()
            .and_then(|s| s.state.clone())
            .unwrap_or_else(|| "Unknown".to_owned());
        if state == "WaitingForApproval"
            && let Some(name) = &asset.metadata.name
        {
            summary.waiting_for_approval.push(name.clone());
        }
        *summary.by_state.entry(state).or_default() += 1;
    }
    summary.waiting_for_approval.sort();
    summary
}

fn view_rollout(namespace: &str, rollout: &PatchRollout) -> RolloutView {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let status = rollout.status.clone().unwrap_or_default();
    let spec = &rollout.spec;
    let approved = |ring: &str| spec.approved_rings.iter().any(|a| a.name == ring);
    let mut next_steps = Vec::new();
    let rings: Vec<RingView> = spec
        .rings
        .iter()
        .enumerate()
        .map(|(index, ring)| {
            let progress = status
                .rings
                .iter()
                .find(|r| &r.name == ring)
                .cloned()
                .unwrap_or_default();
            let halted = matches!(progress.phase, RingPhase::Halted | RingPhase::RollingBack);
            let resumed = spec
                .resumes
                .iter()
                .any(|r| &r.ring == ring && r.halt == progress.halts);
            let ring_approved = approved(ring);
            let t = |time: &Option<crate::api::Time>| time.as_ref().map(|t| t.0);
            let detail = match progress.phase {
                RingPhase::Baking => format!("bake until {}", when(t(&progress.bake_until))),
                RingPhase::Completed => format!("completed {}", when(t(&progress.completed_at))),
                // The operator lists the members that wait for their own approval; none
                // listed means the ring itself waits (a Manual ring).
                RingPhase::WaitingForApproval if progress.awaiting_approval.is_empty() => {
                    "waits for the ring's approval".to_owned()
                }
                RingPhase::WaitingForApproval => format!(
                    "waits for per-asset approvals: {}",
                    list_names(
                        &progress.awaiting_approval,
                        i32::try_from(progress.awaiting_approval.len()).unwrap_or(i32::MAX)
                    )
                ),
                RingPhase::WaitingForWindow => match t(&progress.window_opens_at) {
                    Some(at) => format!("waits for a maintenance window until {}", when(Some(at))),
                    None => "waits for a maintenance window".to_owned(),
                },
                RingPhase::Halted | RingPhase::RollingBack => format!(
                    "{}halt {}{}; failed: {}",
                    if progress.phase == RingPhase::RollingBack {
                        "rolling back after "
                    } else {
                        ""
                    },
                    progress.halts,
                    if resumed {
                        " (resume written, waiting for the operator)"
                    } else {
                        ""
                    },
                    list_names(&progress.failed_assets, progress.failed)
                ),
                RingPhase::Progressing => {
                    format!("started {}", when(t(&progress.started_at)))
                }
                RingPhase::Pending if index > 0 => "waits for the previous ring".to_owned(),
                RingPhase::Pending | RingPhase::Aborted => String::new(),
            };
            if halted && !resumed && spec.abort.is_none() && progress.halts > 0 {
                next_steps.push(format!(
                    "kubectl patchwave resume {name} --ring {ring} -n {namespace}"
                ));
            }
            if spec.abort.is_none() {
                if progress.phase == RingPhase::WaitingForApproval
                    && progress.awaiting_approval.is_empty()
                    && !ring_approved
                {
                    next_steps.push(format!(
                        "kubectl patchwave approve {name} --ring {ring} -n {namespace}"
                    ));
                }
                // This rollout's own waiting members (not every asset of the namespace that
                // waits, which may belong to another policy's rollout).
                let waiting: Vec<String> = progress
                    .awaiting_approval
                    .iter()
                    .filter(|a| !spec.approved_assets.iter().any(|x| &x.name == *a))
                    .map(|a| format!("--asset {a}"))
                    .collect();
                if !waiting.is_empty() {
                    next_steps.push(format!(
                        "kubectl patchwave approve {name} {} -n {namespace}",
                        waiting.join(" ")
                    ));
                }
            }
            RingView {
                name: ring.clone(),
                phase: progress.phase,
                total: progress.total,
                pending: progress.pending,
                in_flight: progress.in_flight,
                succeeded: progress.succeeded,
                failed: progress.failed,
                skipped: progress.skipped,
                halts: progress.halts,
                failed_assets: progress.failed_assets.clone(),
                approved: ring_approved,
                started_at: t(&progress.started_at),
                completed_at: t(&progress.completed_at),
                bake_until: t(&progress.bake_until),
                detail,
            }
        })
        .collect();
    if spec.paused && spec.abort.is_none() && !is_terminal(status.phase) {
        next_steps.push(format!("kubectl patchwave unpause {name} -n {namespace}"));
    }
    RolloutView {
        name,
        policy: spec.policy.clone(),
        phase: status.phase,
        current_ring: status.current_ring.clone(),
        updates: spec.updates.len(),
        created_at: created(rollout),
        paused: spec.paused,
        aborted: spec.abort.is_some(),
        message: status.message.clone(),
        halt_reason: status.halt_reason.clone(),
        rings,
        next_steps,
    }
}

/// "a, b, c and 4 more".
fn list_names(names: &[String], count: i32) -> String {
    let count = usize::try_from(count).unwrap_or(0).max(names.len());
    let shown: Vec<&str> = names
        .iter()
        .take(LISTED_FAILURES)
        .map(String::as_str)
        .collect();
    let rest = count.saturating_sub(shown.len());
    match (shown.is_empty(), rest) {
        (true, 0) => "-".to_owned(),
        (true, n) => super::output::plural(n, "asset", "assets"),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{} and {n} more", shown.join(", ")),
    }
}

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%MZ").to_string(),
    )
}

/// The status for people.
pub fn render_table(report: &StatusReport, only: Option<&str>) -> String {
    let mut out = format!(
        "namespace {} at {}\n",
        report.namespace,
        report.at.strftime("%Y-%m-%d %H:%M:%SZ")
    );
    if report.rollouts.is_empty() {
        out += &match only {
            Some(name) => format!(
                "\npatchrollout {}/{name} not found in namespace {}\n",
                report.namespace, report.namespace
            ),
            None => format!("\nno PatchRollout in namespace {}\n", report.namespace),
        };
    }
    for rollout in &report.rollouts {
        let mut flags = String::new();
        if rollout.paused {
            flags += "  [paused]";
        }
        if rollout.aborted && rollout.phase != RolloutPhase::Aborted {
            flags += "  [abort requested]";
        }
        out += &format!(
            "\n{}  policy {}  {:?}  {} update{}  created {}{flags}\n",
            rollout.name,
            rollout.policy,
            rollout.phase,
            rollout.updates,
            if rollout.updates == 1 { "" } else { "s" },
            when(rollout.created_at),
        );
        let width = rollout
            .rings
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(4);
        out += &format!(
            "  {:<width$}  {:<bar$}  {:>9}  {:>6}  {:>7}  {:>9}  {:>7}  {:>5}  {:<18}  {}\n",
            "RING",
            "PROGRESS",
            "SUCCEEDED",
            "FAILED",
            "SKIPPED",
            "IN-FLIGHT",
            "PENDING",
            "TOTAL",
            "PHASE",
            "DETAIL",
            bar = BAR_WIDTH + 2
        );
        for ring in &rollout.rings {
            let done = ring.succeeded + ring.failed + ring.skipped;
            let line = format!(
                "  {:<width$}  {}  {:>9}  {:>6}  {:>7}  {:>9}  {:>7}  {:>5}  {:<18}  {}",
                ring.name,
                progress_bar(ring.succeeded, ring.failed, done, ring.total, BAR_WIDTH),
                ring.succeeded,
                ring.failed,
                ring.skipped,
                ring.in_flight,
                ring.pending,
                ring.total,
                format!("{:?}", ring.phase),
                ring.detail
            );
            out += line.trim_end();
            out += "\n";
        }
        if let Some(reason) = &rollout.halt_reason {
            out += &format!("  halted: {reason}\n");
        } else if let Some(message) = rollout.message.as_ref().filter(|m| !m.is_empty()) {
            out += &format!("  {message}\n");
        }
        for step in &rollout.next_steps {
            out += &format!("  next: {step}\n");
        }
    }
    if report.hidden_rollouts > 0 {
        out += &format!(
            "\n({} finished rollout{} older than their policy's newest hidden; --all shows them)\n",
            report.hidden_rollouts,
            if report.hidden_rollouts == 1 { "" } else { "s" }
        );
    }
    let states: Vec<String> = report
        .assets
        .by_state
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    out += &format!(
        "\nassets: {} total{}{}\n",
        report.assets.total,
        if states.is_empty() { "" } else { ": " },
        states.join(", ")
    );
    if !report.compliance.is_empty() {
        out += "compliance, last 30 days:\n";
    }
    for view in &report.compliance {
        let percent = |p: Option<i32>| p.map_or("n/a".to_owned(), |p| format!("{p}%"));
        out += &match (&view.invalid, &view.compliance) {
            (Some(why), _) => format!("  {}: invalid, governs nothing: {why}\n", view.policy),
            (None, None) => format!("  {}: not computed yet\n", view.policy),
            // Counts and share from the figures alone (matchedAssets may be newer than they).
            (None, Some(c)) => format!(
                "  {}: {} compliant ({}){}, {} missing, {} overdue; within 7 days {}, within 30 days {}, mean time to patch {}, {}\n",
                view.policy,
                match c.assets {
                    Some(n) => format!(
                        "{} of {}",
                        c.compliant_assets,
                        plural(usize::try_from(n).unwrap_or(0), "asset", "assets")
                    ),
                    None => plural(
                        usize::try_from(c.compliant_assets).unwrap_or(0),
                        "asset",
                        "assets"
                    ),
                },
                percent(c.compliant_percent),
                c.unreported_assets
                    .map_or(String::new(), |n| format!(", {n} never reported")),
                view.pending_updates.unwrap_or(0),
                view.overdue_updates.unwrap_or(0),
                percent(c.patch_rate_within7_days),
                percent(c.patch_rate_within30_days),
                c.mean_time_to_patch_hours
                    .map_or("n/a".to_owned(), |h| format!("{h} h")),
                plural(
                    usize::try_from(c.incidents).unwrap_or(0),
                    "incident",
                    "incidents"
                )
            ),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(yaml: &str) -> PatchRollout {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    const HALTED: &str = "
apiVersion: patchwave.dev/v1alpha1
kind: PatchRollout
metadata: {name: sec-1, namespace: acme, creationTimestamp: '2026-11-27T07:00:00Z'}
spec:
  policy: sec
  revision: abc
  updates: [{id: openssl, version: '3.5.4'}]
  rings: [pilot, rest]
status:
  phase: Halted
  haltReason: 'ring pilot: 2 of 4 assets failed (a, b)'
  rings:
  - {name: pilot, phase: Halted, total: 4, succeeded: 2, failed: 2, halts: 1, failedAssets: [a, b]}
  - {name: rest, phase: Pending, total: 10, pending: 10}
";

    #[test]
    fn a_halted_rollout_names_the_failed_assets_and_the_resume_command() {
        let r = rollout(HALTED);
        let report = build_report(
            "acme",
            [&r].into_iter(),
            &[],
            None,
            false,
            Timestamp::UNIX_EPOCH,
        );
        let view = &report.rollouts[0];
        assert_eq!(
            view.next_steps,
            ["kubectl patchwave resume sec-1 --ring pilot -n acme"]
        );
        assert_eq!(view.rings[0].detail, "halt 1; failed: a, b");
        let table = render_table(&report, None);
        assert!(table.contains("[##########xxxxxxxxxx]"), "{table}");
        assert!(table.contains("halted: ring pilot: 2 of 4"), "{table}");
        assert!(table.contains("waits for the previous ring"), "{table}");
    }

    #[test]
    fn a_ring_waiting_for_its_members_approvals_names_them_not_the_ring() {
        // An Automatic ring whose next members are Critical: the operator lists them.
        let r = rollout(&HALTED.replace(
            "  - {name: rest, phase: Pending, total: 10, pending: 10}",
            "  - {name: rest, phase: WaitingForApproval, total: 10, pending: 2, succeeded: 8, \
             awaitingApproval: [dc01, dc02]}",
        ));
        // Another policy's asset waiting for approval is not this rollout's business.
        let mut other = Asset::new(
            "erp01",
            crate::api::AssetSpec::new(crate::api::OsFamily::Linux),
        );
        other.status = Some(crate::api::AssetStatus {
            state: Some("WaitingForApproval".into()),
            ..Default::default()
        });
        let report = build_report(
            "acme",
            [&r].into_iter(),
            &[other],
            None,
            false,
            Timestamp::UNIX_EPOCH,
        );
        let view = &report.rollouts[0];
        assert_eq!(
            view.next_steps,
            [
                "kubectl patchwave resume sec-1 --ring pilot -n acme",
                "kubectl patchwave approve sec-1 --asset dc01 --asset dc02 -n acme"
            ]
        );
        assert_eq!(
            view.rings[1].detail,
            "waits for per-asset approvals: dc01, dc02"
        );
        // Listed nobody: the ring itself waits.
        let manual = rollout(&HALTED.replace(
            "  - {name: rest, phase: Pending, total: 10, pending: 10}",
            "  - {name: rest, phase: WaitingForApproval, total: 10, pending: 10}",
        ));
        let report = build_report(
            "acme",
            [&manual].into_iter(),
            &[],
            None,
            false,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            report.rollouts[0].next_steps[1],
            "kubectl patchwave approve sec-1 --ring rest -n acme"
        );
    }

    #[test]
    fn a_ring_waiting_for_a_window_says_until_when() {
        let waiting = rollout(&HALTED.replace(
            "  - {name: rest, phase: Pending, total: 10, pending: 10}",
            "  - {name: rest, phase: WaitingForWindow, total: 10, pending: 10, \
             windowOpensAt: '2026-11-28T22:00:00Z'}",
        ));
        let report = build_report(
            "acme",
            [&waiting].into_iter(),
            &[],
            None,
            false,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            report.rollouts[0].rings[1].detail,
            "waits for a maintenance window until 2026-11-28 22:00Z"
        );
    }

    #[test]
    fn older_finished_rollouts_of_a_policy_are_hidden_unless_all() {
        let newer = rollout(HALTED);
        let mut older = rollout(HALTED);
        older.metadata.name = Some("sec-0".into());
        older.metadata.creation_timestamp = Some(crate::api::Time(Timestamp::UNIX_EPOCH));
        if let Some(status) = older.status.as_mut() {
            status.phase = RolloutPhase::Succeeded;
        }
        let both = [&older, &newer];
        let report = build_report(
            "acme",
            both.into_iter(),
            &[],
            None,
            false,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(report.rollouts.len(), 1);
        assert_eq!(report.hidden_rollouts, 1);
        let report = build_report(
            "acme",
            both.into_iter(),
            &[],
            None,
            true,
            Timestamp::UNIX_EPOCH,
        );
        let names: Vec<&str> = report.rollouts.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["sec-1", "sec-0"]);
    }

    #[test]
    fn failure_lists_are_shortened() {
        let names: Vec<String> = (1..=7).map(|i| format!("a{i}")).collect();
        assert_eq!(list_names(&names, 9), "a1, a2, a3, a4, a5 and 4 more");
        assert_eq!(list_names(&[], 0), "-");
        assert_eq!(list_names(&[], 1), "1 asset");
        assert_eq!(list_names(&[], 3), "3 assets");
    }

    #[test]
    fn compliance_is_shown_next_to_the_rollouts() {
        let policy: PatchPolicy = serde_yaml::from_str(
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {name: security-fast}\nspec: {rings: [pilot]}\nstatus:\n  matchedAssets: 30\n  pendingUpdates: 4\n  overdueUpdates: 1\n  compliance: {assets: 30, compliantAssets: 29, compliantPercent: 96, patchRateWithin7Days: 88, meanTimeToPatchHours: 31, incidents: 2}\n",
        )
        .unwrap();
        // A fifth asset selected since the figures were computed: the line keeps to the
        // figures' four, so count and share agree.
        let grown: PatchPolicy = serde_yaml::from_str(
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {name: drivers}\nspec: {rings: [pilot]}\nstatus:\n  matchedAssets: 5\n  pendingUpdates: 0\n  overdueUpdates: 0\n  compliance: {assets: 4, compliantAssets: 4, compliantPercent: 100, incidents: 0}\n",
        )
        .unwrap();
        // Selects nothing: no share to show.
        let empty: PatchPolicy = serde_yaml::from_str(
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {name: nothing}\nspec: {rings: [pilot]}\nstatus:\n  matchedAssets: 0\n  pendingUpdates: 0\n  overdueUpdates: 0\n  compliance: {assets: 0, compliantAssets: 0, incidents: 0}\n",
        )
        .unwrap();
        let fresh: PatchPolicy = serde_yaml::from_str(
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {name: monthly}\nspec: {rings: [pilot]}\n",
        )
        .unwrap();
        let mut report = build_report(
            "acme",
            std::iter::empty(),
            &[],
            None,
            false,
            Timestamp::UNIX_EPOCH,
        );
        // An invalid policy (as an operator before this one may have left it, with figures).
        let invalid: PatchPolicy = serde_yaml::from_str(
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {name: broken}\nspec: {rings: [gone]}\nstatus:\n  matchedAssets: 0\n  compliance: {compliantAssets: 30, compliantPercent: 100, incidents: 0}\n  conditions:\n  - {type: Ready, status: 'False', reason: InvalidSpec, message: 'spec.rings[0]: Ring \"gone\" does not exist', lastTransitionTime: '2026-11-27T07:00:00Z'}\n",
        )
        .unwrap();
        report.compliance =
            compliance_views([&policy, &fresh, &invalid, &grown, &empty].into_iter());
        let table = render_table(&report, None);
        assert!(
            table.contains(
                "broken: invalid, governs nothing: spec.rings[0]: Ring \"gone\" does not exist"
            ),
            "{table}"
        );
        assert!(!table.contains("30 of 0"), "{table}");
        assert!(table.contains("compliance, last 30 days:"), "{table}");
        assert!(
            table.contains("security-fast: 29 of 30 assets compliant (96%), 4 missing, 1 overdue; within 7 days 88%, within 30 days n/a, mean time to patch 31 h, 2 incidents"),
            "{table}"
        );
        assert!(table.contains("monthly: not computed yet"), "{table}");
        assert!(
            table.contains("drivers: 4 of 4 assets compliant (100%), 0 missing"),
            "{table}"
        );
        assert!(
            table.contains("nothing: 0 of 0 assets compliant (n/a), 0 missing"),
            "{table}"
        );
    }
}
