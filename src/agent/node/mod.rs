//! The agent on one machine (`patchwave-agent run`): one Asset, one backend, one operation at
//! a time, crash-safe.
//!
//! - **Reads** only its own Asset: one watch with `fieldSelector=metadata.name=NAME` (so the
//!   agent's identity needs get/list/watch on that one Asset and nothing else), re-established
//!   with backoff when the API server goes away.
//! - **Writes** only `status.reported` of that Asset ([`protocol::report`]); every write counts
//!   as a heartbeat. A heartbeat is written only when nothing else was written for most of
//!   the interval (default 20 minutes); the inventory only when it changed, or when people ask
//!   for it with the annotation [`REFRESH_ANNOTATION`].
//! - **Executes** what [`protocol::decide`] says: a new operation before its `notAfter`; one
//!   seen later is reported Failed without running ([`protocol::mark_expired`]). Steps: check
//!   the hooks against the local allowlist ([`config`]), report `Running`, pre-install hook,
//!   install or roll back exactly the listed updates ([`Backend`]), reboot per the
//!   operation's policy (only if the config allows reboots), post-install hook, health check,
//!   report the result with the installed versions and the inventory after it.
//! - **Survives** a crash at any point: each step is in the [`journal`] before it happens; an
//!   install that began and never returned is never started again, the backend is asked what
//!   is installed instead.
//! - **Renews** its enrolled token before it expires ([`token`]): the current one lives in
//!   the state directory, where the client reads it.
//! - **Rolls back** to what an install replaced: before each install the versions it replaces
//!   go into [`rollback`] points, because a Rollback operation names the rollout's versions.

pub mod config;
pub mod hooks;
pub mod journal;
pub mod rollback;
pub mod token;

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use self::config::AgentConfig;
use self::hooks::Stage;
use self::journal::{FinalResult, InstallOutcome, Journal, JournalError, Recovery, Step};
use self::rollback::RollbackPoints;
use super::backend::simulated::SimulatedBackend;
use super::backend::{Backend, BackendError, Inventory};
use super::protocol::{self, Decision};
use super::simulated::{self, Outcome};
use crate::api::asset::{
    InstalledUpdate, MAX_INSTALLED_HISTORY, Operation, OperationPhase, ReportedState, UpdateRef,
};
use crate::api::{Asset, OperationAction, RebootPolicy, Time};

/// Default state directory (journal, simulated database).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/patchwave-agent";
/// Default time between two inventory refreshes.
pub const DEFAULT_INVENTORY_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// Annotation whose change of value makes the agent refresh and report its inventory now.
pub const REFRESH_ANNOTATION: &str = "patchwave.dev/refresh-inventory";
/// First and longest pause between two attempts of a failed write.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Attempts of a heartbeat write (the next heartbeat replaces it).
const HEARTBEAT_ATTEMPTS: u32 = 3;
/// Longest time the reboot command may take to return.
const REBOOT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How to run the agent.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The Asset this agent is.
    pub asset: String,
    /// Its namespace.
    pub namespace: String,
    /// Where the journal (and the simulated backend's files) live.
    pub state_dir: PathBuf,
    /// Longest time between two writes (each write is a heartbeat).
    pub heartbeat: Duration,
    /// Time between two inventory refreshes.
    pub inventory_interval: Duration,
    /// The local config file: hooks, reboots, simulated seed.
    pub agent: AgentConfig,
}

/// The backend the agent drives. The simulated one also reads the Asset's annotations.
#[derive(Clone)]
pub struct NodeBackend {
    backend: Arc<dyn Backend>,
    simulated: Option<Arc<SimulatedBackend>>,
}

impl NodeBackend {
    /// A platform backend (apt, dnf, ...).
    pub fn platform(backend: Box<dyn Backend>) -> NodeBackend {
        NodeBackend {
            backend: Arc::from(backend),
            simulated: None,
        }
    }

    /// The simulated backend with its files in `state_dir`.
    pub fn simulated(state_dir: &std::path::Path) -> NodeBackend {
        let simulated = Arc::new(SimulatedBackend::new(state_dir));
        NodeBackend {
            backend: simulated.clone(),
            simulated: Some(simulated),
        }
    }

    /// The backend's name.
    pub fn name(&self) -> &'static str {
        self.backend.name()
    }
}

/// Why the agent cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The journal cannot be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// The watch on the Asset ended (only when the client is dropped).
    #[error("the watch on Asset {0} ended")]
    WatchEnded(String),
}

/// What the loop and the operation task share.
struct Agent {
    api: Api<Asset>,
    config: NodeConfig,
    backend: NodeBackend,
    journal: Mutex<Journal>,
    /// The version each install replaced, for later Rollback operations.
    rollback_points: Mutex<RollbackPoints>,
    /// The agent's own last report (None until the Asset was first read). Held across a
    /// write, so writes never overlap and each starts from the previous one.
    reported: tokio::sync::Mutex<Option<ReportedState>>,
    last_write: Mutex<Instant>,
}

impl Agent {
    fn rollback_points(&self) -> MutexGuard<'_, RollbackPoints> {
        self.rollback_points
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        // Appends either happen whole or not; a poisoned lock is still consistent.
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a journal step. A journal that cannot be written is logged loudly; the agent
    /// goes on (refusing to report would leave the operation hanging for the operator).
    fn record(&self, id: &str, step: Step) {
        let name = step.name();
        if let Err(err) = self.journal().append(id, step) {
            error!(operation = %id, step = name, error = %err, "cannot write the journal");
        }
    }

    /// Writes the report changed by `change` (which returns whether there is anything to
    /// write), retrying with backoff `attempts` times (`u32::MAX`: until it lands). Returns
    /// whether it wrote.
    async fn write(
        &self,
        attempts: u32,
        mut change: impl FnMut(&mut ReportedState, Timestamp) -> bool,
    ) -> bool {
        let mut guard = self.reported.lock().await;
        let mut pause = RETRY_FIRST;
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let now = Timestamp::now();
            let mut next = guard.clone().unwrap_or_default();
            if !change(&mut next, now) {
                return false;
            }
            match protocol::report(&self.api, &self.config.asset, &next).await {
                Ok(stored) => {
                    *guard = Some(stored.status.and_then(|s| s.reported).unwrap_or(next));
                    *self.last_write.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                    if attempt > 1 {
                        info!(attempt, "the API server took the agent's report again");
                    }
                    return true;
                }
                Err(err) => {
                    if unauthorized(&err) {
                        error!(asset = %self.config.asset, namespace = %self.config.namespace, error = %err, "{CREDENTIALS_REFUSED}");
                        return false;
                    }
                    if let kube::Error::Api(status) = &err
                        && matches!(status.code, 400 | 403 | 404 | 409 | 422)
                    {
                        error!(asset = %self.config.asset, namespace = %self.config.namespace, error = %err, "the API server refuses the agent's report of Asset status.reported");
                        return false;
                    }
                    if attempt >= attempts {
                        warn!(error = %err, "writing the agent's report failed; the next heartbeat tries again");
                        return false;
                    }
                    if attempt == 1 || attempt % 10 == 0 {
                        warn!(error = %err, attempt, "writing the agent's report failed; retrying with backoff (the journal keeps the outcome)");
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RETRY_MAX);
                }
            }
        }
    }

    async fn inventory(&self) -> Result<Inventory, BackendError> {
        let backend = self.backend.backend.clone();
        match tokio::task::spawn_blocking(move || backend.inventory()).await {
            Ok(result) => result,
            Err(err) => Err(BackendError::Unavailable {
                backend: self.backend.name(),
                reason: format!("the inventory task failed: {err}"),
            }),
        }
    }

    /// Refreshes the inventory; writes it when it changed or when `force`d.
    async fn refresh_inventory(&self, force: bool) {
        let inventory = match self.inventory().await {
            Ok(inventory) => inventory,
            Err(err) => {
                error!(backend = self.backend.name(), error = %err, "cannot read the inventory");
                return;
            }
        };
        let wrote = self
            .write(HEARTBEAT_ATTEMPTS, |reported, now| {
                let changed = apply_inventory(reported, &inventory, now);
                changed || force
            })
            .await;
        if wrote {
            info!(
                available = inventory.available.len(),
                reboot_pending = inventory.reboot_pending,
                "inventory reported"
            );
        } else if let Some(reported) = self.reported.lock().await.as_mut() {
            // Unchanged: the next write carries the refresh time, no write of its own.
            reported.inventory_refreshed_at = Some(Time(Timestamp::now()));
        }
    }
}

/// Puts `inventory` into `reported`; returns whether anything but the time changed.
fn apply_inventory(reported: &mut ReportedState, inventory: &Inventory, now: Timestamp) -> bool {
    let mut available = inventory.available.clone();
    available.truncate(crate::api::asset::MAX_AVAILABLE_UPDATES);
    let changed = reported.available_updates != available
        || reported.os.as_ref() != Some(&inventory.os)
        || reported.reboot_pending != inventory.reboot_pending;
    reported.available_updates = available;
    reported.os = Some(inventory.os.clone());
    reported.reboot_pending = inventory.reboot_pending;
    reported.inventory_refreshed_at = Some(Time(now));
    reported.last_heartbeat = Some(Time(now));
    changed
}

/// Runs the agent until `shutdown` completes. An operation in progress at shutdown is left
/// to the journal: the next start carries on with it.
pub async fn run(
    client: Client,
    config: NodeConfig,
    backend: NodeBackend,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    if config.heartbeat.is_zero() || config.inventory_interval.is_zero() {
        return Err(NodeError::Config(
            "--heartbeat and --inventory-interval must be longer than zero".to_owned(),
        ));
    }
    let journal = Journal::open(&config.state_dir)?;
    for problem in journal.problems() {
        warn!("{problem}");
    }
    let rollback_points = RollbackPoints::load(&config.state_dir).map_err(NodeError::Config)?;
    let api: Api<Asset> = Api::namespaced(client, &config.namespace);
    let agent = Arc::new(Agent {
        api: api.clone(),
        config: config.clone(),
        backend,
        journal: Mutex::new(journal),
        rollback_points: Mutex::new(rollback_points),
        reported: tokio::sync::Mutex::new(None),
        last_write: Mutex::new(Instant::now()),
    });
    info!(
        asset = %config.asset,
        namespace = %config.namespace,
        backend = agent.backend.name(),
        state_dir = %config.state_dir.display(),
        heartbeat = ?config.heartbeat,
        inventory_interval = ?config.inventory_interval,
        "agent starting"
    );
    let watch_config =
        watcher::Config::default().fields(&format!("metadata.name={}", config.asset));
    let mut assets = watcher::watcher(api, watch_config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let (done, mut finished) = mpsc::unbounded_channel::<String>();
    let mut heartbeat =
        tokio::time::interval_at(Instant::now() + config.heartbeat, config.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut inventory = tokio::time::interval_at(
        Instant::now() + config.inventory_interval,
        config.inventory_interval,
    );
    inventory.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut latest: Option<Asset> = None;
    let mut refresh_seen: Option<String> = None;
    let mut running: Option<tokio::task::JoinHandle<()>> = None;
    let mut handled: HashSet<String> = HashSet::new();
    let mut watch_failing = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = assets.next() => {
                let Some(event) = event else {
                    return Err(NodeError::WatchEnded(config.asset.clone()));
                };
                let asset = match event {
                    Ok(asset) => {
                        if watch_failing {
                            info!("the watch on the Asset works again");
                            watch_failing = false;
                        }
                        asset
                    }
                    Err(err) => {
                        if !watch_failing && watch_unauthorized(&err) {
                            error!(asset = %config.asset, error = %err, "{CREDENTIALS_REFUSED}");
                        } else if !watch_failing {
                            warn!(asset = %config.asset, error = %err, "watching the Asset failed; retrying with backoff");
                        }
                        watch_failing = true;
                        continue;
                    }
                };
                let refresh = annotation(&asset, REFRESH_ANNOTATION);
                if let Some(simulated) = &agent.backend.simulated {
                    simulated.set_behaviour(
                        simulated::behaviour(&asset, false).map_err(|e| e.to_string()),
                    );
                }
                if latest.is_none() {
                    refresh_seen = refresh.clone();
                    start_up(&agent, &asset).await;
                } else if refresh != refresh_seen {
                    refresh_seen = refresh.clone();
                    if running.is_none() {
                        info!(value = refresh.as_deref().unwrap_or(""), "inventory refresh asked for by annotation");
                        agent.refresh_inventory(true).await;
                    } else {
                        info!("inventory refresh asked for; it follows the operation in progress");
                    }
                }
                latest = Some(asset);
            }
            Some(id) = finished.recv() => {
                debug!(operation = %id, "operation task ended");
                handled.insert(id);
                running = None;
            }
            _ = heartbeat.tick() => {
                let quiet = agent.last_write.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
                // Any write is a heartbeat: skip when one landed recently.
                if quiet >= config.heartbeat / 2 && latest.is_some() {
                    let agent = agent.clone();
                    tokio::spawn(async move {
                        let Ok(busy) = agent.reported.try_lock() else {
                            return; // a write is under way; it is a heartbeat too
                        };
                        drop(busy);
                        agent.write(HEARTBEAT_ATTEMPTS, |reported, now| {
                            protocol::mark_heartbeat(reported, now);
                            true
                        }).await;
                    });
                }
            }
            _ = inventory.tick() => {
                if running.is_none() && latest.is_some() {
                    agent.refresh_inventory(false).await;
                }
            }
        }
        if running.is_none()
            && let Some(asset) = &latest
            && let Some(task) = next_task(&agent, asset, &handled).await
        {
            let (agent, done) = (agent.clone(), done.clone());
            let id = task.operation.id.clone();
            running = Some(tokio::spawn(async move {
                execute(&agent, task).await;
                let _ = done.send(id);
            }));
        }
    }
    if let Some(task) = running {
        warn!(
            "stopping with an operation in progress; the journal carries it on at the next start"
        );
        task.abort();
    }
    info!("agent stopped");
    Ok(())
}

fn annotation(asset: &Asset, key: &str) -> Option<String> {
    asset
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
}

/// First sight of the Asset: take its report as the base, seed the simulated database if it
/// has none, and report the inventory.
async fn start_up(agent: &Agent, asset: &Asset) {
    let base = asset
        .status
        .as_ref()
        .and_then(|s| s.reported.clone())
        .unwrap_or_default();
    if let Some(simulated) = &agent.backend.simulated
        && !simulated.has_database()
    {
        let seed = match &agent.config.agent.simulated_seed_file {
            Some(path) => SimulatedBackend::read_seed_file(path),
            None => Ok(base.available_updates.clone()),
        };
        match seed.and_then(|seed| {
            let count = seed.len();
            simulated.seed(seed).map(|()| count)
        }) {
            Ok(count) => info!(
                updates = count,
                database = %simulated.database_path().display(),
                "simulated package database seeded"
            ),
            Err(err) => error!(error = %err, "cannot seed the simulated package database"),
        }
    }
    {
        let mut reported = agent.reported.lock().await;
        let mut base = base;
        base.agent_version = Some(env!("CARGO_PKG_VERSION").to_owned());
        base.backend = Some(agent.backend.name().to_owned());
        *reported = Some(base);
    }
    agent.refresh_inventory(true).await;
}

/// What the operation task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A new operation in time.
    Start,
    /// A new operation past its notAfter.
    Expire,
    /// Reported Running earlier (by this agent, before a restart).
    InProgress,
    /// The server has its result; the journal may not know yet.
    Done,
}

struct Task {
    operation: Operation,
    kind: Kind,
}

/// The operation to act on now, if any (per the protocol, the agent's own report and the
/// operations this process already handled).
async fn next_task(agent: &Agent, asset: &Asset, handled: &HashSet<String>) -> Option<Task> {
    let operation = asset.status.as_ref()?.operation.as_ref()?;
    if handled.contains(&operation.id) {
        return None;
    }
    let reported = agent.reported.lock().await.clone();
    reported.as_ref()?; // not started up yet
    let kind = match protocol::decide_with(Some(operation), reported.as_ref(), Timestamp::now()) {
        Decision::Idle => return None,
        Decision::Start(_) => Kind::Start,
        Decision::Expire(_) => Kind::Expire,
        Decision::InProgress { .. } => Kind::InProgress,
        Decision::Done(_) => Kind::Done,
    };
    if kind == Kind::Done
        && matches!(
            agent.journal().recovery(&operation.id),
            Recovery::Finished(_) | Recovery::Unknown
        )
    {
        return None;
    }
    Some(Task {
        operation: operation.clone(),
        kind,
    })
}

/// Runs (or carries on with) one operation, as the journal and the protocol say.
async fn execute(agent: &Agent, task: Task) {
    let Task { operation, kind } = task;
    let recovery = agent.journal().recovery(&operation.id);
    info!(operation = %operation.id, ?kind, ?recovery, "operation");
    match (recovery, kind) {
        (Recovery::Finished(_), Kind::Done) => {}
        (_, Kind::Done) => {
            // The server has a result this journal never saw finish: close the entry with it.
            record_finished(agent, &operation).await;
        }
        (Recovery::Finished(result), _) => {
            // Finished here but the server does not show it (a report lost with the Asset):
            // report the same result again, never run again.
            finish(agent, &operation, result).await;
        }
        (Recovery::Installed(outcome), _) => after_install(agent, &operation, outcome, false).await,
        (Recovery::RebootRequested(outcome), _) => {
            info!(operation = %operation.id, "back after the reboot the operation asked for");
            if let Some(simulated) = &agent.backend.simulated
                && let Err(err) = simulated.mark_rebooted()
            {
                warn!(error = %err, "the simulated machine cannot record its reboot");
            }
            after_install(agent, &operation, outcome, true).await;
        }
        (Recovery::InstallInterrupted, _) | (Recovery::Unknown, Kind::InProgress) => {
            recover_interrupted(agent, &operation).await;
        }
        (Recovery::Unknown | Recovery::Accepted, Kind::Expire) => {
            let wrote = agent
                .write(u32::MAX, |reported, now| {
                    protocol::mark_expired(reported, &operation, now);
                    true
                })
                .await;
            if wrote {
                warn!(operation = %operation.id, not_after = %operation.not_after.0, "the operation's window closed before it could start; reported Failed");
                record_finished(agent, &operation).await;
            }
        }
        (recovery @ (Recovery::Unknown | Recovery::Accepted), Kind::Start | Kind::InProgress) => {
            start(
                agent,
                &operation,
                recovery == Recovery::Unknown,
                kind == Kind::Start,
            )
            .await;
        }
    }
}

/// Journals `finished` with the result the agent last reported for `operation`.
async fn record_finished(agent: &Agent, operation: &Operation) {
    let result = agent.reported.lock().await.as_ref().and_then(|reported| {
        let last = reported
            .last_operation
            .clone()
            .filter(|l| l.id == operation.id)?;
        Some(FinalResult {
            phase: last.phase,
            installed: last.installed,
            message: last.message,
            reboot_pending: reported.reboot_pending,
        })
    });
    if let Some(result) = result {
        agent.record(&operation.id, Step::Finished { result });
    }
}

/// A new operation from the start: accept, check hooks, report Running, pre-install hook,
/// install, then [`after_install`].
async fn start(agent: &Agent, operation: &Operation, accept: bool, report_running: bool) {
    if accept {
        agent.record(
            &operation.id,
            Step::Accepted {
                operation: Box::new(operation.clone()),
            },
        );
    }
    if let Err(message) = hooks::check_allowed(&agent.config.agent, operation) {
        warn!(operation = %operation.id, "{message}");
        fail(agent, operation, Vec::new(), message).await;
        return;
    }
    if report_running {
        let mut expired = false;
        let wrote = agent
            .write(u32::MAX, |reported, now| {
                // Checked at the write: retries may have carried us past notAfter.
                expired = now > operation.not_after.0;
                if expired {
                    protocol::mark_expired(reported, operation, now);
                } else {
                    protocol::mark_started(reported, operation, now);
                }
                true
            })
            .await;
        if !wrote {
            return;
        }
        if expired {
            record_finished(agent, operation).await;
            return;
        }
        info!(operation = %operation.id, updates = operation.updates.len(), action = ?operation.action, "operation started");
    }
    if let Err(message) = hooks::run(
        &agent.config.agent,
        Stage::PreInstall,
        operation,
        &agent.config.asset,
    )
    .await
    {
        fail(
            agent,
            operation,
            Vec::new(),
            format!("{message}; nothing was installed"),
        )
        .await;
        return;
    }
    let Some(updates) = what_to_change(agent, operation).await else {
        return;
    };
    agent.record(&operation.id, Step::InstallBegun);
    let backend = agent.backend.backend.clone();
    let action = operation.action;
    let result = tokio::task::spawn_blocking(move || match action {
        OperationAction::Install => backend.install(&updates),
        OperationAction::Rollback => backend.rollback(&updates),
    })
    .await;
    let outcome = match result {
        Ok(Ok(change)) => InstallOutcome {
            succeeded: true,
            installed: change.installed,
            reboot_required: change.reboot_required,
            message: change.log_excerpt,
        },
        Ok(Err(err)) => InstallOutcome {
            succeeded: false,
            installed: Vec::new(),
            reboot_required: false,
            message: err.to_string(),
        },
        Err(err) => InstallOutcome {
            succeeded: false,
            installed: Vec::new(),
            reboot_required: false,
            message: format!("the {} backend's task failed: {err}", agent.backend.name()),
        },
    };
    agent.record(
        &operation.id,
        Step::Installed {
            outcome: outcome.clone(),
        },
    );
    after_install(agent, operation, outcome, false).await;
}

/// The updates to hand the backend: for an install, the operation's (after writing down
/// what they replace); for a rollback, each at the version its install replaced. None when the
/// operation was reported failed instead (nothing was changed).
async fn what_to_change(agent: &Agent, operation: &Operation) -> Option<Vec<UpdateRef>> {
    match operation.action {
        OperationAction::Install => {
            let backend = agent.backend.backend.clone();
            let updates = operation.updates.clone();
            let before =
                tokio::task::spawn_blocking(move || backend.installed_versions(&updates)).await;
            let problem = match before {
                Ok(Ok(before)) => agent
                    .rollback_points()
                    .remember(&operation.updates, &before)
                    .err(),
                Ok(Err(err)) => Some(err.to_string()),
                Err(err) => Some(format!(
                    "the {} backend's task failed: {err}",
                    agent.backend.name()
                )),
            };
            if let Some(problem) = problem {
                let message = format!(
                    "cannot write down the installed versions a rollback would return to: {problem}; nothing was installed"
                );
                fail(agent, operation, Vec::new(), message).await;
                return None;
            }
            Some(operation.updates.clone())
        }
        OperationAction::Rollback => {
            let targets = agent.rollback_points().targets(&operation.updates);
            match targets {
                Ok(targets) => Some(targets),
                Err(message) => {
                    fail(
                        agent,
                        operation,
                        Vec::new(),
                        format!("{message}; nothing was changed"),
                    )
                    .await;
                    None
                }
            }
        }
    }
}

/// The install began and the agent stopped before it returned: never install again; report
/// what the backend says is installed.
async fn recover_interrupted(agent: &Agent, operation: &Operation) {
    warn!(operation = %operation.id, "the agent stopped during this operation's install; checking what is installed instead of installing again");
    let backend = agent.backend.backend.clone();
    let updates = operation.updates.clone();
    let versions = match tokio::task::spawn_blocking(move || backend.installed_versions(&updates))
        .await
    {
        Ok(Ok(versions)) => versions,
        Ok(Err(err)) => {
            let message = format!(
                "the agent was interrupted during the install and cannot tell what is installed now: {err}; it did not install again"
            );
            fail(agent, operation, Vec::new(), message).await;
            return;
        }
        Err(err) => {
            let message = format!(
                "the agent was interrupted during the install and cannot tell what is installed now: {err}; it did not install again"
            );
            fail(agent, operation, Vec::new(), message).await;
            return;
        }
    };
    let mut installed = Vec::new();
    let mut wrong = Vec::new();
    for (wanted, now) in versions {
        let done = match operation.action {
            OperationAction::Install => match &wanted.version {
                Some(version) => now.as_ref() == Some(version),
                None => now.is_some(),
            },
            // A rollback is done when the rollout's version is gone.
            OperationAction::Rollback => now != wanted.version,
        };
        if done {
            installed.push(UpdateRef {
                id: wanted.id.clone(),
                version: now.clone(),
            });
        } else {
            wrong.push(format!(
                "{} (installed {}, wanted {})",
                wanted.id,
                now.as_deref().unwrap_or("none"),
                match operation.action {
                    OperationAction::Install =>
                        wanted.version.as_deref().unwrap_or("any").to_owned(),
                    OperationAction::Rollback =>
                        format!("not {}", wanted.version.as_deref().unwrap_or("any")),
                }
            ));
        }
    }
    let outcome = if wrong.is_empty() {
        InstallOutcome {
            succeeded: true,
            installed,
            reboot_required: false,
            message: "the agent was interrupted during the install and restarted; every update is at its listed version".to_owned(),
        }
    } else {
        InstallOutcome {
            succeeded: false,
            installed,
            reboot_required: false,
            message: format!(
                "interrupted: the agent stopped during the install (killed, crashed or the machine restarted) and did not install again; not at the listed version: {}",
                wrong.join(", ")
            ),
        }
    };
    agent.record(
        &operation.id,
        Step::Installed {
            outcome: outcome.clone(),
        },
    );
    after_install(agent, operation, outcome, false).await;
}

/// After the backend: reboot if the policy and the config say so, post-install hook,
/// health check, report.
async fn after_install(
    agent: &Agent,
    operation: &Operation,
    outcome: InstallOutcome,
    rebooted: bool,
) {
    if !outcome.succeeded {
        fail(agent, operation, outcome.installed, outcome.message).await;
        return;
    }
    let reboot = &agent.config.agent.reboot;
    let wanted = match operation.reboot {
        RebootPolicy::Always => true,
        RebootPolicy::IfRequired => outcome.reboot_required,
        RebootPolicy::Never => false,
    };
    let mut notes = vec![outcome.message.clone()];
    let mut reboot_pending = false;
    if rebooted {
        notes.push("rebooted".to_owned());
    } else if wanted && reboot.enabled {
        agent.record(&operation.id, Step::RebootRequested);
        info!(operation = %operation.id, command = ?reboot.command, "rebooting");
        if let Err(message) = run_reboot(&reboot.command).await {
            let result = FinalResult {
                phase: OperationPhase::Failed,
                installed: outcome.installed,
                message: Some(format!("installed, but {message}")),
                reboot_pending: outcome.reboot_required,
            };
            finish(agent, operation, result).await;
            return;
        }
        if let Some(simulated) = &agent.backend.simulated
            && let Err(err) = simulated.mark_rebooted()
        {
            warn!(error = %err, "the simulated machine cannot record its reboot");
        }
        // A real reboot ends this process here; the journal carries on after it.
        tokio::time::sleep(reboot.wait_for_restart).await;
        notes.push("rebooted".to_owned());
    } else if wanted {
        reboot_pending = true;
        notes.push(format!(
            "a reboot is required but reboots are off in {} (reboot.enabled is false): the asset reports rebootPending until someone reboots it",
            agent.config.agent.describe_source()
        ));
    } else if outcome.reboot_required {
        reboot_pending = true;
        notes.push("a reboot is required; the policy says reboot: Never, so the asset reports rebootPending until someone reboots it".to_owned());
    }
    for stage in [Stage::PostInstall, Stage::HealthCheck] {
        if let Err(message) =
            hooks::run(&agent.config.agent, stage, operation, &agent.config.asset).await
        {
            let result = FinalResult {
                phase: OperationPhase::Failed,
                installed: outcome.installed,
                message: Some(format!("{message} (the updates were installed)")),
                reboot_pending,
            };
            finish(agent, operation, result).await;
            return;
        }
    }
    let result = FinalResult {
        phase: OperationPhase::Succeeded,
        installed: outcome.installed,
        message: Some(notes.join("; ")),
        reboot_pending,
    };
    finish(agent, operation, result).await;
}

/// Adds a history entry for each of `installed` that [`simulated::finish`] did not record
/// (it records only updates it finds in the reported inventory, which an install interrupted
/// after its change no longer lists).
fn record_missing_history(
    reported: &mut ReportedState,
    operation: &Operation,
    installed: &[UpdateRef],
    before: usize,
    now: Timestamp,
) {
    let recorded: HashSet<String> = reported
        .installed_history
        .iter()
        .skip(before.min(reported.installed_history.len()))
        .map(|h| h.id.clone())
        .collect();
    for update in installed.iter().filter(|u| !recorded.contains(&u.id)) {
        reported.installed_history.push(InstalledUpdate {
            id: update.id.clone(),
            version: update.version.clone(),
            package: None,
            action: OperationAction::Install,
            at: Time(now),
            released_at: None,
            severity: Default::default(),
            classification: Default::default(),
            rollout: Some(operation.rollout.clone()),
        });
    }
    let excess = reported
        .installed_history
        .len()
        .saturating_sub(MAX_INSTALLED_HISTORY);
    reported.installed_history.drain(..excess);
}

async fn run_reboot(command: &[String]) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("the reboot command is empty".to_owned());
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(REBOOT_COMMAND_TIMEOUT, child).await {
        Err(_) => Err(format!(
            "the reboot command {command:?} did not return within {REBOOT_COMMAND_TIMEOUT:?}"
        )),
        Ok(Err(err)) => Err(format!(
            "the reboot command {command:?} cannot be started: {err}"
        )),
        Ok(Ok(output)) if output.status.success() => Ok(()),
        Ok(Ok(output)) => Err(format!(
            "the reboot command {command:?} failed ({}): {}",
            output.status,
            hooks::tail(String::from_utf8_lossy(&output.stderr).trim(), 400)
        )),
    }
}

/// Reports `operation` Failed with `message`.
async fn fail(agent: &Agent, operation: &Operation, installed: Vec<UpdateRef>, message: String) {
    let result = FinalResult {
        phase: OperationPhase::Failed,
        installed,
        message: Some(message),
        reboot_pending: false,
    };
    finish(agent, operation, result).await;
}

/// Reports the result with the inventory after it, then journals `finished`.
async fn finish(agent: &Agent, operation: &Operation, result: FinalResult) {
    let inventory = match agent.inventory().await {
        Ok(inventory) => Some(inventory),
        Err(err) => {
            warn!(error = %err, "cannot read the inventory after the operation; reporting the result without it");
            None
        }
    };
    // One finish time for every attempt: a retry after a write the server took but whose
    // answer was lost must not report a later time.
    let finished_at = Timestamp::now();
    let wrote = agent
        .write(u32::MAX, |reported, now| {
            if result.phase == OperationPhase::Succeeded || !result.installed.is_empty() {
                // The history and the inventory move as for the simulated fleet, for what is
                // really on the machine (a failed health check leaves the updates installed).
                let mut changed = operation.clone();
                if operation.action == OperationAction::Install {
                    changed.updates = result.installed.clone();
                }
                let before = reported.installed_history.len();
                simulated::finish(reported, &changed, Outcome::Succeeded, finished_at);
                if operation.action == OperationAction::Install {
                    record_missing_history(
                        reported,
                        operation,
                        &result.installed,
                        before,
                        finished_at,
                    );
                }
            }
            protocol::mark_finished(
                reported,
                operation,
                result.phase,
                result.installed.clone(),
                result.message.clone(),
                finished_at,
            );
            if let Some(inventory) = &inventory {
                apply_inventory(reported, inventory, now);
            }
            reported.reboot_pending |= result.reboot_pending;
            true
        })
        .await;
    if wrote {
        info!(operation = %operation.id, phase = ?result.phase, message = result.message.as_deref().unwrap_or(""), "operation finished");
        agent.record(&operation.id, Step::Finished { result });
    }
}

/// Logged when the API server refuses the agent's credentials: a revoked enrolment or an
/// expired token, which retrying cannot mend.
const CREDENTIALS_REFUSED: &str = "the API server no longer accepts the agent's credentials \
    (401 Unauthorized): its enrolment was revoked or its token expired; enrol the machine \
    again (kubectl patchwave enroll NAME) and give the agent the new kubeconfig";

fn unauthorized(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 401)
}

fn watch_unauthorized(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => unauthorized(e),
        watcher::Error::WatchError(status) => status.code == 401,
        watcher::Error::NoResourceVersion => false,
    }
}
