//! A simulated agent fleet: one process playing the agents of many Assets on a real API
//! server, speaking exactly the agent protocol ([`super::protocol`]) with the simulated backend
//! ([`super::simulated`]). For tests, the demo and benchmarks (`patchwave-agent fleet`).
//!
//! Each Asset behaves like an independent agent: it reads its `status.operation`, runs at most
//! one operation at a time, reports `Running`, waits the operation's duration (from the
//! `simulate.patchwave.dev/duration` annotation, `spec.expectedDuration` or 10 minutes,
//! divided by [`FleetConfig::speed`]) and reports the outcome the
//! `simulate.patchwave.dev/outcome` annotation asks for. `NoResponse` reports `Running` and
//! then nothing. An operation seen after its `notAfter` is reported Failed without running.
//! Every Asset heartbeats once per interval, jittered across it by its name.
//!
//! How it scales (5,000 assets in one process): one watcher on the namespace's Assets, one
//! timer queue for all heartbeats, a task only per write and per running operation, and at
//! most [`FleetConfig::max_concurrent_writes`] writes at a time. Per asset it keeps its last
//! report and current operation, nothing else.
//!
//! What it survives: the watcher re-lists with backoff when the API server goes away; a failed
//! operation write is retried with backoff until it lands (heartbeats a few times only, the
//! next one replaces them). It never trusts the Asset it watched over the report it wrote
//! itself, so a late watch event cannot undo a result. After a restart it resumes operations
//! it reported `Running` (finishing them at `startedAt` plus the duration), and never starts an
//! operation whose id is already `lastOperation.id`.

use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use kube::api::ListParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::protocol::{self, Decision};
use super::simulated::{self, Behaviour, BehaviourError, Outcome};
use crate::api::asset::{Operation, OperationPhase, ReportedState};
use crate::api::{Asset, Time};

/// Default number of writes the fleet has in flight at once.
pub const DEFAULT_MAX_CONCURRENT_WRITES: usize = 32;
/// What the fleet reports as `status.reported.backend` for an asset it reports from scratch.
pub const BACKEND: &str = "simulated";
/// Attempts of a heartbeat write before it gives way to the next heartbeat.
const HEARTBEAT_ATTEMPTS: u32 = 3;
/// First and longest pause between two attempts of a failed write.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Longest simulated operation, whatever the annotation says (guards `Duration` overflow).
const MAX_SLEEP: Duration = Duration::from_secs(365 * 24 * 3600);
/// How often the fleet logs a one-line summary.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// How to run a fleet.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// Namespace whose Assets the fleet plays.
    pub namespace: String,
    /// Label selector (`site=zurich,tier!=db`): only these Assets; all when `None`.
    pub selector: Option<String>,
    /// Time compression of operations: a duration from the annotations is divided by it.
    /// 1 is real time, 60 turns a 10m operation into 10 s, 1e6 makes operations instant.
    /// Heartbeats are not compressed (staleness is judged in real time).
    pub speed: f64,
    /// Time between two heartbeats of one Asset.
    pub heartbeat: Duration,
    /// Initial inventory: for each of these Assets that exists in the namespace and has no
    /// `status.reported.inventoryRefreshedAt` yet, the fleet reports its `status.reported` (with
    /// `inventoryRefreshedAt` and `lastHeartbeat` set to now). Assets that were reported
    /// already keep their cluster state, so a restart never undoes installs.
    pub seed: Vec<Asset>,
    /// Writes in flight at once, across all Assets.
    pub max_concurrent_writes: usize,
}

impl FleetConfig {
    /// A fleet over every Asset of `namespace`, in real time, heartbeat every
    /// [`protocol::DEFAULT_HEARTBEAT_INTERVAL`], no seed inventory.
    pub fn new(namespace: impl Into<String>) -> Self {
        FleetConfig {
            namespace: namespace.into(),
            selector: None,
            speed: 1.0,
            heartbeat: protocol::DEFAULT_HEARTBEAT_INTERVAL,
            seed: Vec::new(),
            max_concurrent_writes: DEFAULT_MAX_CONCURRENT_WRITES,
        }
    }
}

/// Why a fleet could not run.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// `speed` is not a positive finite number.
    #[error("speed must be a positive number, got {0}")]
    Speed(f64),
    /// `heartbeat` is zero.
    #[error("the heartbeat interval must be longer than zero")]
    Heartbeat,
    /// `max_concurrent_writes` is zero.
    #[error("max_concurrent_writes must be at least 1")]
    Writes,
    /// The API server rejected the label selector.
    #[error("the API server rejects the label selector {selector:?}: {message}")]
    Selector {
        /// The selector.
        selector: String,
        /// The server's message.
        message: String,
    },
    /// The watch on Assets ended (it never does unless the client is dropped).
    #[error("the watch on Assets ended")]
    WatchEnded,
    /// The fleet's task panicked (a bug).
    #[error("the fleet's task failed: {0}")]
    Task(String),
}

/// What a fleet did, counted since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// Assets the fleet was playing when it stopped.
    pub assets: u64,
    /// Successful writes of `status.reported`.
    pub writes: u64,
    /// Write attempts that failed (each retry counts).
    pub failed_writes: u64,
    /// Seed inventories reported.
    pub seeded: u64,
    /// Heartbeats reported.
    pub heartbeats: u64,
    /// Operations reported Running.
    pub started: u64,
    /// Operations reported Succeeded or Failed after running.
    pub finished: u64,
    /// Operations reported Failed because their window closed before they started.
    pub expired: u64,
    /// Operations resumed after a restart (reported Running by an earlier run).
    pub resumed: u64,
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    failed_writes: AtomicU64,
    seeded: AtomicU64,
    heartbeats: AtomicU64,
    started: AtomicU64,
    finished: AtomicU64,
    expired: AtomicU64,
    resumed: AtomicU64,
}

impl Counters {
    fn snapshot(&self, assets: usize) -> FleetStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FleetStats {
            assets: assets as u64,
            writes: get(&self.writes),
            failed_writes: get(&self.failed_writes),
            seeded: get(&self.seeded),
            heartbeats: get(&self.heartbeats),
            started: get(&self.started),
            finished: get(&self.finished),
            expired: get(&self.expired),
            resumed: get(&self.resumed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A running fleet started with [`spawn`].
#[derive(Debug)]
pub struct FleetHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<FleetStats, FleetError>>,
}

impl FleetHandle {
    /// Stops the fleet (operations in progress stay `Running` on the cluster; a new fleet
    /// resumes them) and returns what it did.
    pub async fn stop(mut self) -> Result<FleetStats, FleetError> {
        if let Some(stop) = self.stop.take() {
            // An error means the fleet ended already; its result is in the task.
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| FleetError::Task(e.to_string()))?
    }

    /// Whether the fleet has ended (only on an error, or after [`FleetHandle::stop`]).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts [`run`] on the current Tokio runtime; stop it with [`FleetHandle::stop`].
pub fn spawn(client: Client, config: FleetConfig) -> FleetHandle {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(client, config, async move {
        // A dropped handle stops the fleet too.
        let _ = stopped.await;
    }));
    FleetHandle {
        stop: Some(stop),
        task,
    }
}

/// Plays the agents of the Assets of `config.namespace` until `shutdown` completes, then
/// returns what the fleet did. Operations in progress are abandoned at shutdown (they stay
/// `Running` on the cluster and a later fleet resumes them).
///
/// Errors only for a configuration that cannot work; an API server that goes away is waited
/// for, with backoff.
pub async fn run(
    client: Client,
    config: FleetConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<FleetStats, FleetError> {
    if !(config.speed.is_finite() && config.speed > 0.0) {
        return Err(FleetError::Speed(config.speed));
    }
    if config.heartbeat.is_zero() {
        return Err(FleetError::Heartbeat);
    }
    if config.max_concurrent_writes == 0 {
        return Err(FleetError::Writes);
    }
    let api: Api<Asset> = Api::namespaced(client, &config.namespace);
    if let Some(selector) = &config.selector {
        check_selector(&api, selector).await?;
    }
    let seeds: HashMap<String, ReportedState> = config
        .seed
        .iter()
        .filter(|a| {
            a.metadata
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == config.namespace)
        })
        .filter_map(|a| {
            let name = a.metadata.name.clone()?;
            let reported = a
                .status
                .as_ref()
                .and_then(|s| s.reported.clone())
                .unwrap_or_default();
            Some((name, reported))
        })
        .collect();
    let (reevaluate, reevaluations) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        api: api.clone(),
        writes: Semaphore::new(config.max_concurrent_writes),
        seeds,
        speed: config.speed,
        counters: Counters::default(),
        reevaluate,
    });
    info!(
        namespace = %config.namespace,
        selector = config.selector.as_deref().unwrap_or(""),
        speed = config.speed,
        heartbeat = ?config.heartbeat,
        seeds = shared.seeds.len(),
        "simulated agent fleet starting"
    );
    let mut fleet = Fleet {
        shared,
        heartbeat: config.heartbeat,
        agents: HashMap::new(),
        heartbeats: BinaryHeap::new(),
        listing: None,
        tasks: JoinSet::new(),
    };
    let result = fleet
        .run(config.selector.as_deref(), reevaluations, shutdown)
        .await;
    // Abort what is in flight: writes may or may not land, both are consistent states.
    fleet.tasks.shutdown().await;
    let stats = fleet.shared.counters.snapshot(fleet.agents.len());
    info!(?stats, "simulated agent fleet stopped");
    result.map(|()| stats)
}

/// Asks the API server whether it accepts `selector` (a bad selector would otherwise make the
/// watcher retry forever). Only a rejection is an error: an unreachable server is waited for.
async fn check_selector(api: &Api<Asset>, selector: &str) -> Result<(), FleetError> {
    match api
        .list_metadata(&ListParams::default().labels(selector).limit(1))
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 400 => Err(FleetError::Selector {
            selector: selector.to_owned(),
            message: status.message.clone(),
        }),
        Err(err) => {
            warn!(error = %err, "cannot check the label selector yet; going on");
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

/// What every task of the fleet shares.
struct Shared {
    api: Api<Asset>,
    writes: Semaphore,
    seeds: HashMap<String, ReportedState>,
    speed: f64,
    counters: Counters,
    /// Names of assets whose operation task ended, for the main loop to look at again.
    reevaluate: mpsc::UnboundedSender<String>,
}

/// One simulated agent (one Asset).
struct Agent {
    name: String,
    uid: Option<String>,
    /// Serialises the agent's writes: each one starts from the report the previous one wrote.
    write_lock: tokio::sync::Mutex<()>,
    /// Held only briefly, never across an await.
    state: Mutex<AgentState>,
}

struct AgentState {
    /// The Asset was deleted (or replaced by one with another uid): stop writing.
    deleted: bool,
    /// The operator's `status.operation`, as last watched.
    operation: Option<Operation>,
    /// The simulated behaviour, from the annotations as last watched.
    behaviour: Result<Behaviour, BehaviourError>,
    /// The agent's report: from the cluster until the fleet writes one, then the fleet's own
    /// (a watch event may be older than the fleet's last write).
    reported: Option<ReportedState>,
    written: bool,
    /// Id of the operation a task is executing right now (one at a time).
    task: Option<String>,
    /// Id of the last operation a task handled: never handled twice by this process, even if
    /// its report could not be written.
    handled: Option<String>,
}

impl Agent {
    fn state(&self) -> MutexGuard<'_, AgentState> {
        // A panic while holding this lock cannot leave the state half-changed (plain
        // assignments), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What an operation task does.
enum Job {
    Start(Operation),
    Expire(Operation),
    Resume(Operation, Option<Timestamp>),
}

/// Why a write did not land.
enum WriteFailure {
    /// The Asset is gone.
    Gone,
    /// The server refuses it for good (invalid, forbidden, conflicting manager).
    Rejected,
    /// Still failing after the allowed attempts.
    GaveUp,
}

/// The main loop's state.
struct Fleet {
    shared: Arc<Shared>,
    heartbeat: Duration,
    agents: HashMap<String, Arc<Agent>>,
    /// When each asset heartbeats next; one timer for the whole fleet.
    heartbeats: BinaryHeap<Reverse<(Instant, String)>>,
    /// Names seen since the watcher (re)started listing, to drop the ones deleted meanwhile.
    listing: Option<HashSet<String>>,
    tasks: JoinSet<()>,
}

impl Fleet {
    async fn run(
        &mut self,
        selector: Option<&str>,
        mut reevaluations: mpsc::UnboundedReceiver<String>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), FleetError> {
        let mut config = watcher::Config::default();
        if let Some(selector) = selector {
            config = config.labels(selector);
        }
        let events = watcher::watcher(self.shared.api.clone(), config).default_backoff();
        let mut events = std::pin::pin!(events);
        let mut shutdown = std::pin::pin!(shutdown);
        let mut summary = tokio::time::interval_at(Instant::now() + SUMMARY_EVERY, SUMMARY_EVERY);
        let mut failed_before = 0;
        loop {
            let next_heartbeat = self.heartbeats.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                event = events.next() => match event {
                    Some(Ok(event)) => self.on_event(event),
                    // The watcher retries by itself (with backoff); say why it has to.
                    Some(Err(err)) => warn!(error = %err, "watching Assets failed; retrying"),
                    None => return Err(FleetError::WatchEnded),
                },
                Some(name) = reevaluations.recv() => {
                    if let Some(agent) = self.agents.get(&name).cloned() {
                        self.evaluate(&agent);
                    }
                }
                () = sleep_until(next_heartbeat), if next_heartbeat.is_some() => {
                    self.heartbeat_due();
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Err(err) = joined {
                        if err.is_panic() {
                            error!(error = %err, "a fleet task panicked");
                        }
                    }
                }
                _ = summary.tick() => {
                    let stats = self.shared.counters.snapshot(self.agents.len());
                    if stats.failed_writes > failed_before {
                        warn!(failed = stats.failed_writes - failed_before, "writes failed in the last minute");
                    }
                    failed_before = stats.failed_writes;
                    info!(?stats, tasks = self.tasks.len(), "fleet summary");
                }
            }
        }
    }

    fn on_event(&mut self, event: Event<Asset>) {
        match event {
            Event::Init => self.listing = Some(HashSet::new()),
            Event::InitApply(asset) | Event::Apply(asset) => self.upsert(asset),
            Event::InitDone => {
                // Assets deleted while the watch was down never sent a Delete.
                if let Some(seen) = self.listing.take() {
                    let gone: Vec<String> = self
                        .agents
                        .keys()
                        .filter(|name| !seen.contains(*name))
                        .cloned()
                        .collect();
                    for name in gone {
                        self.remove(&name);
                    }
                }
                info!(assets = self.agents.len(), "fleet has listed its Assets");
            }
            Event::Delete(asset) => {
                if let Some(name) = asset.metadata.name.as_deref() {
                    self.remove(name);
                }
            }
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some(agent) = self.agents.remove(name) {
            agent.state().deleted = true;
            debug!(asset = name, "asset gone");
        }
    }

    fn upsert(&mut self, asset: Asset) {
        let Some(name) = asset.metadata.name.clone() else {
            return;
        };
        if let Some(seen) = self.listing.as_mut() {
            seen.insert(name.clone());
        }
        let uid = asset.metadata.uid.clone();
        let behaviour = simulated::behaviour(&asset, false);
        let status = asset.status.unwrap_or_default();
        let known = self.agents.get(&name).filter(|a| a.uid == uid).cloned();
        let agent = match known {
            Some(agent) => {
                let mut state = agent.state();
                state.operation = status.operation;
                state.behaviour = behaviour;
                if !state.written {
                    state.reported = status.reported;
                }
                drop(state);
                agent
            }
            None => {
                // New, or deleted and created again under the same name (a new agent).
                self.remove(&name);
                let needs_seed = self.shared.seeds.contains_key(&name)
                    && status
                        .reported
                        .as_ref()
                        .is_none_or(|r| r.inventory_refreshed_at.is_none());
                let agent = Arc::new(Agent {
                    name: name.clone(),
                    uid,
                    write_lock: tokio::sync::Mutex::new(()),
                    state: Mutex::new(AgentState {
                        deleted: false,
                        operation: status.operation,
                        behaviour,
                        reported: status.reported,
                        written: false,
                        task: None,
                        handled: None,
                    }),
                });
                self.agents.insert(name.clone(), agent.clone());
                let first = Instant::now() + jitter(&name, self.heartbeat);
                self.heartbeats.push(Reverse((first, name)));
                if needs_seed {
                    // Any write seeds (see `write`); this one only makes it happen now.
                    let (shared, seeded) = (self.shared.clone(), agent.clone());
                    self.tasks.spawn(async move {
                        let _ = write(&shared, &seeded, u32::MAX, |_, _| false).await;
                    });
                }
                agent
            }
        };
        self.evaluate(&agent);
    }

    /// Starts a task for the asset's operation if the protocol says so and none is running.
    fn evaluate(&mut self, agent: &Arc<Agent>) {
        let job = {
            let mut state = agent.state();
            if state.task.is_some() || state.deleted {
                return;
            }
            let now = Timestamp::now();
            let decision =
                protocol::decide_with(state.operation.as_ref(), state.reported.as_ref(), now);
            let job = match decision {
                Decision::Idle | Decision::Done(_) => None,
                Decision::Start(op) => Some(Job::Start(op.clone())),
                Decision::Expire(op) => Some(Job::Expire(op.clone())),
                Decision::InProgress {
                    operation,
                    started_at,
                } => Some(Job::Resume(operation.clone(), started_at)),
            };
            let Some(job) = job else {
                return;
            };
            let id = match &job {
                Job::Start(op) | Job::Expire(op) | Job::Resume(op, _) => op.id.clone(),
            };
            if state.handled.as_deref() == Some(id.as_str()) {
                return;
            }
            state.task = Some(id);
            job
        };
        let (shared, agent) = (self.shared.clone(), agent.clone());
        self.tasks.spawn(async move {
            let id = execute(&shared, &agent, job).await;
            {
                let mut state = agent.state();
                state.task = None;
                state.handled = Some(id);
            }
            // The operator may have written the next operation meanwhile.
            let _ = shared.reevaluate.send(agent.name.clone());
        });
    }

    fn heartbeat_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _))) = self.heartbeats.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, name))) = self.heartbeats.pop() else {
                break;
            };
            let Some(agent) = self.agents.get(&name).cloned() else {
                continue; // deleted: its heartbeats end here
            };
            // After a stall, do not fire a burst of missed heartbeats.
            let next = (at + self.heartbeat).max(now);
            self.heartbeats.push(Reverse((next, name)));
            let Ok(busy) = agent.write_lock.try_lock() else {
                continue; // a write is under way, and every write is a heartbeat too
            };
            drop(busy);
            let shared = self.shared.clone();
            self.tasks.spawn(async move {
                let wrote = write(&shared, &agent, HEARTBEAT_ATTEMPTS, |reported, now| {
                    protocol::mark_heartbeat(reported, now);
                    true
                })
                .await;
                if wrote.is_ok_and(|w| w) {
                    bump(&shared.counters.heartbeats);
                }
            });
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Where in the interval an asset heartbeats: fixed per name, spread evenly over the fleet.
fn jitter(name: &str, interval: Duration) -> Duration {
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    let nanos = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_nanos(hasher.finish() % nanos)
}

/// A simulated duration at the fleet's speed, as a real duration.
fn scaled(duration: SignedDuration, speed: f64) -> Duration {
    let seconds = duration.as_secs_f64() / speed;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(MAX_SLEEP)
        .min(MAX_SLEEP)
}

/// Runs one operation job to its end; returns the operation id.
async fn execute(shared: &Shared, agent: &Agent, job: Job) -> String {
    let behaviour = agent.state().behaviour.clone();
    match job {
        Job::Expire(operation) => {
            let wrote = write(shared, agent, u32::MAX, |reported, now| {
                if !is_new(&operation, reported) {
                    return false;
                }
                protocol::mark_expired(reported, &operation, now);
                true
            })
            .await;
            if wrote.is_ok_and(|w| w) {
                bump(&shared.counters.expired);
                info!(asset = %agent.name, operation = %operation.id, "window closed before the operation could start; reported Failed");
            }
            operation.id
        }
        Job::Start(operation) => {
            let mut expired = false;
            let wrote = write(shared, agent, u32::MAX, |reported, now| {
                if !is_new(&operation, reported) {
                    return false;
                }
                // Checked again at the write: the semaphore may have kept us past notAfter.
                expired = now > operation.not_after.0;
                match (&behaviour, expired) {
                    (_, true) => protocol::mark_expired(reported, &operation, now),
                    // Annotations it cannot read: the agent fails the operation, visibly.
                    (Err(err), false) => protocol::mark_finished(
                        reported,
                        &operation,
                        OperationPhase::Failed,
                        Vec::new(),
                        Some(format!("the simulated agent cannot run: {err}")),
                        now,
                    ),
                    (Ok(_), false) => protocol::mark_started(reported, &operation, now),
                }
                true
            })
            .await;
            if !wrote.is_ok_and(|w| w) {
                return operation.id;
            }
            if expired {
                bump(&shared.counters.expired);
                return operation.id;
            }
            let Ok(behaviour) = behaviour else {
                return operation.id;
            };
            bump(&shared.counters.started);
            info!(asset = %agent.name, operation = %operation.id, outcome = ?behaviour.outcome, "operation started");
            finish_after(
                shared,
                agent,
                operation,
                behaviour,
                scaled(behaviour.duration, shared.speed),
            )
            .await
        }
        Job::Resume(operation, started_at) => {
            let Ok(behaviour) = behaviour else {
                return operation.id;
            };
            bump(&shared.counters.resumed);
            let total = scaled(behaviour.duration, shared.speed);
            let elapsed = started_at
                .and_then(|at| Timestamp::now().duration_since(at).try_into().ok())
                .unwrap_or(Duration::ZERO);
            info!(asset = %agent.name, operation = %operation.id, "resuming an operation reported Running earlier");
            finish_after(
                shared,
                agent,
                operation,
                behaviour,
                total.saturating_sub(elapsed),
            )
            .await
        }
    }
}

/// Waits `after`, then reports the operation's outcome (unless the asset never answers).
async fn finish_after(
    shared: &Shared,
    agent: &Agent,
    operation: Operation,
    behaviour: Behaviour,
    after: Duration,
) -> String {
    if behaviour.outcome == Outcome::NoResponse {
        // Stays Running for ever: the operator's timeout turns it into NoResponse.
        return operation.id;
    }
    tokio::time::sleep(after).await;
    // One finish time for every attempt: a retry after a write the server took but whose
    // answer was lost must not report a later time.
    let finished_at = Timestamp::now();
    let wrote = write(shared, agent, u32::MAX, |reported, _now| {
        let running = reported
            .last_operation
            .as_ref()
            .is_some_and(|l| l.id == operation.id && l.phase == OperationPhase::Running);
        if running {
            simulated::finish(reported, &operation, behaviour.outcome, finished_at);
        }
        running
    })
    .await;
    if wrote.is_ok_and(|w| w) {
        bump(&shared.counters.finished);
        info!(asset = %agent.name, operation = %operation.id, outcome = ?behaviour.outcome, "operation finished");
    }
    operation.id
}

/// Whether `operation` has not been reported on yet (the journal check of the protocol).
fn is_new(operation: &Operation, reported: &ReportedState) -> bool {
    reported
        .last_operation
        .as_ref()
        .is_none_or(|l| l.id != operation.id)
}

/// Writes the agent's report, changed by `change`, which returns whether there is anything to
/// write. Writes of one agent never overlap, and each starts from the report the previous one
/// wrote. An asset not reported yet gets its seed inventory with the first write.
/// Retries transient failures with backoff, `attempts` times in all (`u32::MAX`: until it
/// lands or the task is aborted). Returns whether it wrote.
async fn write(
    shared: &Shared,
    agent: &Agent,
    attempts: u32,
    mut change: impl FnMut(&mut ReportedState, Timestamp) -> bool,
) -> Result<bool, WriteFailure> {
    let _serial = agent.write_lock.lock().await;
    let mut pause = RETRY_FIRST;
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        let base = {
            let state = agent.state();
            if state.deleted {
                return Err(WriteFailure::Gone);
            }
            state.reported.clone()
        };
        let now = Timestamp::now();
        let (mut reported, seeded) = with_seed(shared, &agent.name, base, now);
        if !change(&mut reported, now) && !seeded {
            return Ok(false);
        }
        let result = {
            let Ok(_permit) = shared.writes.acquire().await else {
                return Err(WriteFailure::GaveUp); // closed: never happens, the fleet owns it
            };
            protocol::report(&shared.api, &agent.name, &reported).await
        };
        match result {
            Ok(stored) => {
                let mut state = agent.state();
                state.reported = stored.status.and_then(|s| s.reported).or(Some(reported));
                state.written = true;
                drop(state);
                bump(&shared.counters.writes);
                if seeded {
                    bump(&shared.counters.seeded);
                    debug!(asset = %agent.name, "seed inventory reported");
                }
                return Ok(true);
            }
            Err(err) => {
                bump(&shared.counters.failed_writes);
                if let kube::Error::Api(status) = &err {
                    if status.is_not_found() {
                        agent.state().deleted = true;
                        return Err(WriteFailure::Gone);
                    }
                    if matches!(status.code, 400 | 403 | 409 | 422) {
                        error!(asset = %agent.name, error = %err, "the API server refuses the agent's report");
                        return Err(WriteFailure::Rejected);
                    }
                }
                if attempt >= attempts {
                    // Only heartbeats give up, and the next one replaces them: the fleet
                    // summary counts these failures instead of one line per asset.
                    debug!(asset = %agent.name, error = %err, attempt, "writing the agent's report failed; giving up");
                    return Err(WriteFailure::GaveUp);
                }
                if attempt == 1 || attempt % 10 == 0 {
                    warn!(asset = %agent.name, error = %err, attempt, "writing the agent's report failed; retrying");
                } else {
                    debug!(asset = %agent.name, error = %err, attempt, "writing the agent's report failed; retrying");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
    }
}

/// The base of a write: the agent's last report, or its seed inventory if it has never
/// reported one (`inventoryRefreshedAt` unset). Returns whether the seed was used.
fn with_seed(
    shared: &Shared,
    name: &str,
    base: Option<ReportedState>,
    now: Timestamp,
) -> (ReportedState, bool) {
    let inventoried = base
        .as_ref()
        .is_some_and(|r| r.inventory_refreshed_at.is_some());
    let seed = (!inventoried).then(|| shared.seeds.get(name)).flatten();
    let Some(seed) = seed else {
        let reported = base.unwrap_or_else(|| ReportedState {
            agent_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            backend: Some(BACKEND.to_owned()),
            ..ReportedState::default()
        });
        return (reported, false);
    };
    let mut reported = seed.clone();
    // What the agent reported before its inventory (an operation result) is kept.
    if let Some(last) = base.and_then(|b| b.last_operation) {
        reported.last_operation = Some(last);
    }
    reported.inventory_refreshed_at = Some(Time(now));
    reported.last_heartbeat = Some(Time(now));
    reported.backend.get_or_insert_with(|| BACKEND.to_owned());
    (reported, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_scales_durations_and_survives_extremes() {
        let ten_minutes = SignedDuration::from_mins(10);
        assert_eq!(scaled(ten_minutes, 60.0), Duration::from_secs(10));
        assert!(scaled(ten_minutes, 1e6) < Duration::from_millis(1));
        assert_eq!(scaled(ten_minutes, 1e-30), MAX_SLEEP);
        assert_eq!(scaled(SignedDuration::from_secs(-5), 1.0), Duration::ZERO);
    }

    #[test]
    fn heartbeats_spread_over_the_interval() {
        let interval = Duration::from_secs(300);
        let offsets: HashSet<u64> = (0..100)
            .map(|i| jitter(&format!("asset-{i}"), interval))
            .inspect(|d| assert!(*d < interval))
            .map(|d| d.as_secs() / 30)
            .collect();
        // 100 names land in most of the ten 30-second slices.
        assert!(offsets.len() >= 8, "{offsets:?}");
        assert_eq!(jitter("a", interval), jitter("a", interval));
    }
}
