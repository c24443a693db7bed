//! The operator on the local control plane: a full three-ring rollout over N simulated assets
//! (zero operation durations, no bake time, maxConcurrent 100%), measured from the operator's
//! start until the PatchRollout reports `Succeeded`.
//!
//! Run: `cargo bench --bench operator` (sizes default to `1000 5000`; pick others with
//! `-- 1000 5000`). Needs the control plane binaries of `tests/controlplane/build.sh` (or
//! `PATCHWAVE_CONTROLPLANE_BIN`). `PATCHWAVE_BENCH_TIMEOUT` (seconds, default 900) bounds one
//! size. `PATCHWAVE_BENCH_OPERATOR_PREFIX="heaptrack -o /tmp/operator"` runs the operator under
//! a profiler (where its memory goes); the figures of such a run are not the operator's.
//! `PATCHWAVE_BENCH_IDLE_SECONDS=60` adds a quiet phase after the rollout (see `idle_phase`):
//! agent heartbeats at the rate of a 20-minute heartbeat, and the operator's CPU meanwhile.
//! `PATCHWAVE_BENCH_BASELINE_ROUNDS=0` leaves the plain-client baseline out (large sizes).
//!
//! For each size, on a fresh local control plane (etcd + kube-apiserver):
//! 1. the CRDs, a namespace, 3 Rings selecting 10% / 30% / 60% of the assets (maxConcurrent
//!    100%, failureThreshold 10%, bakeTime 0s, Automatic), one one-off Allow window open from an
//!    hour ago for five years, one PatchPolicy over all assets (rings pilot, dept, rest;
//!    `manualApproval: []`) and N Assets with `simulate.patchwave.dev/duration: 0s`, each with 3
//!    available security updates released 30 days ago, reported by server-side apply as
//!    `patchwave-agent` (what an agent's first inventory does);
//! 2. the simulated fleet (`patchwave::agent::fleet`, in this process, heartbeat every 12 h so
//!    heartbeats stay out of the run);
//! 3. `patchwave-operator` as a child process (`--namespace`, `--leader-elect=false`, default
//!    debounce); the clock starts when it is spawned and stops when a poll (every 200 ms) sees
//!    the rollout `Succeeded`;
//! 4. its `/metrics` (`patchwave_operator_writes_total` by kind and verb, read once the counter
//!    has stopped moving) and its peak resident memory (VmHWM), then it is killed;
//! 5. the baseline: a plain kube client sends the minimum number of writes (below) as
//!    server-side applies of Asset status, 32 at a time (the operator's write concurrency), to
//!    the same API server, bodies shaped like the operator's own Asset status; three runs,
//!    the median is reported.
//!
//! Minimum writes the operator cannot avoid = N (one operation per asset) + 1 (creating the
//! rollout) + 2 per ring (ring started, ring completed) + 1 (rollout Succeeded) = N + 8.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use patchwave::agent::fleet::{self, FleetConfig, FleetStats};
use patchwave::agent::protocol;
use patchwave::api::asset::ReportedState;
use patchwave::api::rollout::RolloutPhase;
use patchwave::api::{
    Asset, MaintenanceWindow, OPERATOR_FIELD_MANAGER, PatchPolicy, PatchRollout, Ring,
};
use patchwave::devcluster::{LocalControlPlane, controlplane_bin_dir};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Writes in flight at once for seeding and for the plain-client baseline (the operator's
/// `WRITE_CONCURRENCY`).
const CONCURRENCY: usize = 32;
/// Runs of the plain-client baseline; the table shows the median.
/// `PATCHWAVE_BENCH_BASELINE_ROUNDS` overrides it (0 leaves the baseline out).
const BASELINE_ROUNDS: usize = 3;
/// Rings and the share of the assets each selects (by `i % 10`).
const RINGS: [&str; 3] = ["pilot", "dept", "rest"];
/// How often the rollout is polled.
const POLL: Duration = Duration::from_millis(200);
/// Writes besides one operation per asset: rollout created, 2 per ring, rollout succeeded.
const TRANSITION_WRITES: usize = 1 + 2 * RINGS.len() + 1;

fn ring_of(i: usize) -> &'static str {
    match i % 10 {
        0 => "pilot",
        1..=3 => "dept",
        _ => "rest",
    }
}

fn typed<K: DeserializeOwned>(value: Value) -> Result<K, BoxError> {
    Ok(serde_json::from_value(value)?)
}

/// What one size measured.
#[derive(Default)]
struct Outcome {
    size: usize,
    finished: bool,
    wall: Duration,
    ready_after: Option<Duration>,
    rollout_seen_after: Option<Duration>,
    writes: BTreeMap<(String, String), u64>,
    writes_at_success: u64,
    peak_rss_kib: u64,
    operator_cpu: Duration,
    bench_cpu: Duration,
    settled_after: Duration,
    baseline_writes: usize,
    baseline: Duration,
    baseline_runs: Vec<Duration>,
    fleet: FleetStats,
    rings: Vec<String>,
    seed_time: Duration,
    log: PathBuf,
    note: String,
    /// The quiet phase, if asked for: heartbeats written, how long, operator CPU meanwhile.
    idle: Option<(usize, Duration, Duration)>,
    /// Each `/healthz` probe during the rollout: when it was sent (from the operator's start)
    /// and how long it took to answer.
    health: Vec<(Duration, Duration)>,
}

impl Outcome {
    fn total_writes(&self) -> u64 {
        self.writes.values().sum()
    }

    fn minimum(&self) -> usize {
        self.size + TRANSITION_WRITES
    }

    fn by_kind(&self) -> String {
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for ((kind, verb), n) in &self.writes {
            let key = match (kind.as_str(), verb.as_str()) {
                ("PatchRollout", "create") => "PatchRollout create",
                ("PatchRollout", _) => "PatchRollout status",
                (kind, _) => kind,
            };
            *kinds.entry(key).or_default() += n;
        }
        let mut parts: Vec<(&str, u64)> = kinds.into_iter().collect();
        parts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        parts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let sizes: Vec<usize> = if args.is_empty() {
        vec![1_000, 5_000]
    } else {
        args.iter().filter_map(|a| a.parse().ok()).collect()
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start a Tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let bin_dir = match controlplane_bin_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut outcomes = Vec::new();
    for size in sizes {
        eprintln!("== {size} assets: starting a fresh control plane");
        let plane = match LocalControlPlane::start(&bin_dir) {
            Ok(plane) => plane,
            Err(e) => {
                eprintln!("the control plane did not start: {e}");
                continue;
            }
        };
        match runtime.block_on(run_size(&plane, size)) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => eprintln!("size {size} failed: {e}"),
        }
        drop(plane);
    }
    print_table(&outcomes);
}

fn print_table(outcomes: &[Outcome]) {
    println!(
        "| assets | wall time to Succeeded | operator writes | minimum writes | writes / minimum | plain client, minimum writes | wall / plain client | operator peak RSS |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for o in outcomes {
        let wall = if o.finished {
            secs(o.wall)
        } else {
            format!("not finished after {}", secs(o.wall))
        };
        let (baseline, ratio) = if o.baseline.is_zero() {
            ("not run".to_owned(), "–".to_owned())
        } else {
            (
                secs(o.baseline),
                format!("{:.1}", o.wall.as_secs_f64() / o.baseline.as_secs_f64()),
            )
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {baseline} | {ratio} | {:.0} MiB |",
            o.size,
            wall,
            o.total_writes(),
            o.minimum(),
            o.total_writes() as f64 / o.minimum() as f64,
            o.peak_rss_kib as f64 / 1024.0
        );
    }
    println!();
    for o in outcomes {
        println!("{} assets:", o.size);
        println!("- operator writes by kind: {}", o.by_kind());
        println!(
            "- operator writes when Succeeded was first seen: {}; after the counter settled: {} (last write seen at {})",
            o.writes_at_success,
            o.total_writes(),
            secs(o.settled_after)
        );
        println!(
            "- CPU time: operator {}, bench process (simulated fleet, polling) {}",
            secs(o.operator_cpu),
            secs(o.bench_cpu)
        );
        if let Some(line) = health_line(&o.health) {
            println!("- {line}");
        }
        if let Some(ready) = o.ready_after {
            println!("- operator ready (caches synced) after {}", secs(ready));
        }
        if let Some(seen) = o.rollout_seen_after {
            println!("- rollout first seen after {}", secs(seen));
        }
        for ring in &o.rings {
            println!("- {ring}");
        }
        println!(
            "- baseline: {} server-side applies of Asset status in {} ({:.0}/s), median of {}",
            o.baseline_writes,
            secs(o.baseline),
            o.baseline_writes as f64 / o.baseline.as_secs_f64().max(1e-9),
            o.baseline_runs
                .iter()
                .map(|d| secs(*d))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "- seeding N inventories by the same client: {} ({:.0}/s)",
            secs(o.seed_time),
            o.size as f64 / o.seed_time.as_secs_f64().max(1e-9)
        );
        println!(
            "- fleet: {} writes ({} started, {} finished, {} heartbeats, {} failed attempts)",
            o.fleet.writes,
            o.fleet.started,
            o.fleet.finished,
            o.fleet.heartbeats,
            o.fleet.failed_writes
        );
        if let Some((heartbeats, took, cpu)) = o.idle {
            println!(
                "- quiet phase after the rollout: {heartbeats} agent heartbeats in {} ({:.1}/s, a 20-minute heartbeat), operator CPU {} ({:.1}% of one core)",
                secs(took),
                heartbeats as f64 / took.as_secs_f64().max(1e-9),
                secs(cpu),
                100.0 * cpu.as_secs_f64() / took.as_secs_f64().max(1e-9)
            );
        }
        if !o.note.is_empty() {
            println!("- {}", o.note);
        }
        println!("- operator log: {}", o.log.display());
    }
}

/// Where the operator logs go: `target/operator-bench/` next to the bench executable.
fn log_dir(size: usize) -> PathBuf {
    let base = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(std::env::temp_dir)
        .join("operator-bench");
    let stamp = Timestamp::now().as_second();
    base.join(format!("{size}-{stamp}"))
}

async fn run_size(plane: &LocalControlPlane, size: usize) -> Result<Outcome, BoxError> {
    let client = plane.admin_client().await?;
    install_crds(plane)?;
    let namespace = format!("bench-{size}");
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": namespace}}))?,
        )
        .await?;
    let (assets, seed_time) = create_fleet(&client, &namespace, size).await?;

    let mut config = FleetConfig::new(namespace.clone());
    config.heartbeat = Duration::from_secs(12 * 3600);
    let fleet = fleet::spawn(client.clone(), config);
    // Let the fleet list the Assets before the operator starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let dir = log_dir(size);
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("operator.log");
    let port = free_port()?;
    let address = format!("127.0.0.1:{port}");
    let mut operator = spawn_operator(plane.kubeconfig_path(), &namespace, &address, &log)?;
    let started = Instant::now();
    let started_at = Timestamp::now();
    let bench_cpu_before = cpu_time("self");
    eprintln!(
        "   operator started (pid {}), log {}",
        operator.id(),
        log.display()
    );

    let prober = HealthProber::start(address.clone());
    let result = watch_rollout(&client, &namespace, &mut operator, &address, started).await;
    let health = prober.stop();
    let mut outcome = Outcome {
        size,
        log,
        seed_time,
        health,
        ..Outcome::default()
    };
    let finished = match result {
        Ok(watched) => {
            outcome.ready_after = watched.ready_after;
            outcome.rollout_seen_after = watched.rollout_seen_after;
            outcome.wall = watched.wall;
            outcome.finished = watched.succeeded.is_some();
            outcome.writes_at_success = watched.writes_at_end;
            outcome.note = watched.note;
            watched.succeeded
        }
        Err(e) => {
            outcome.wall = started.elapsed();
            outcome.note = format!("watching the rollout failed: {e}");
            None
        }
    };
    let (writes, last_change) = settled_writes(&address, started).await;
    outcome.writes = writes;
    outcome.settled_after = last_change;
    outcome.peak_rss_kib = peak_rss_kib(operator.id());
    outcome.operator_cpu = cpu_time(&operator.id().to_string());
    if let Some(seconds) = std::env::var("PATCHWAVE_BENCH_IDLE_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        let pid = operator.id().to_string();
        outcome.idle = Some(
            idle_phase(
                &client,
                &namespace,
                &assets,
                &pid,
                Duration::from_secs(seconds),
            )
            .await?,
        );
    }
    outcome.bench_cpu = cpu_time("self").saturating_sub(bench_cpu_before);
    let _ = operator.kill();
    let _ = operator.wait();
    outcome.fleet = fleet.stop().await.unwrap_or_default();
    if let Some(rollout) = &finished {
        outcome.rings = ring_lines(rollout, started_at);
    }

    // The baseline: the minimum number of writes, by a plain client, on the same server.
    let baseline_writes = outcome.minimum();
    outcome.baseline_writes = baseline_writes;
    let mut runs = Vec::new();
    let rounds = std::env::var("PATCHWAVE_BENCH_BASELINE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(BASELINE_ROUNDS);
    for round in 0..rounds {
        runs.push(plain_client(&client, &namespace, &assets, baseline_writes, round).await?);
    }
    runs.sort();
    outcome.baseline = runs.get(runs.len() / 2).copied().unwrap_or_default();
    outcome.baseline_runs = runs;
    eprintln!(
        "   done: wall {}, writes {}, baseline {}",
        secs(outcome.wall),
        outcome.total_writes(),
        secs(outcome.baseline)
    );
    Ok(outcome)
}

/// Between rollouts: every asset's agent writes a heartbeat every 20 minutes (the agent's
/// default), so the namespace changes N / 1200 times a second and the operator reconciles it
/// each time. Writes `status.reported.lastHeartbeat` of one asset after another at that rate
/// for `length` (under a field manager of its own, so the agent's other fields stay), and
/// returns the heartbeats written, the time taken and the operator's CPU meanwhile.
async fn idle_phase(
    client: &Client,
    namespace: &str,
    assets: &[String],
    operator_pid: &str,
    length: Duration,
) -> Result<(usize, Duration, Duration), BoxError> {
    let api: Api<Asset> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply("bench-heartbeat").force();
    let interval = Duration::from_secs(1200).div_f64(assets.len().max(1) as f64);
    let cpu_before = cpu_time(operator_pid);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    let mut written = 0;
    while started.elapsed() < length {
        ticker.tick().await;
        let name = &assets[written % assets.len()];
        let body = json!({
            "apiVersion": "patchwave.dev/v1alpha1",
            "kind": "Asset",
            "metadata": {"name": name},
            "status": {"reported": {"lastHeartbeat": Timestamp::now().to_string()}},
        });
        api.patch_status(name, &params, &Patch::Apply(&body))
            .await?;
        written += 1;
    }
    let took = started.elapsed();
    Ok((
        written,
        took,
        cpu_time(operator_pid).saturating_sub(cpu_before),
    ))
}

fn install_crds(plane: &LocalControlPlane) -> Result<(), BoxError> {
    Ok(plane.install_crds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"))?)
}

/// Creates a namespaced object, retrying while the API server does not serve the kind yet.
async fn create<K>(api: &Api<K>, object: &K) -> Result<K, BoxError>
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let mut attempts = 0;
    loop {
        match api.create(&PostParams::default(), object).await {
            Ok(created) => return Ok(created),
            Err(kube::Error::Api(status)) if status.code == 404 && attempts < 60 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Rings, window, policy, N Assets and their reported inventories. Returns the names of the
/// assets and how long seeding the inventories took.
async fn create_fleet(
    client: &Client,
    namespace: &str,
    size: usize,
) -> Result<(Vec<String>, Duration), BoxError> {
    let now = Timestamp::now();
    let rings: Api<Ring> = Api::namespaced(client.clone(), namespace);
    for name in RINGS {
        let ring: Ring = typed(json!({
            "apiVersion": "patchwave.dev/v1alpha1",
            "kind": "Ring",
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"ring": name}},
                "maxConcurrent": "100%",
                "failureThreshold": "10%",
                "bakeTime": "0s",
                "approval": "Automatic",
            },
        }))?;
        create(&rings, &ring).await?;
    }
    let window: MaintenanceWindow = typed(json!({
        "apiVersion": "patchwave.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": "always"},
        "spec": {
            "type": "Allow",
            "start": (now - SignedDuration::from_hours(1)).to_string(),
            "end": (now + SignedDuration::from_hours(5 * 365 * 24)).to_string(),
        },
    }))?;
    create(&Api::namespaced(client.clone(), namespace), &window).await?;
    let policy: PatchPolicy = typed(json!({
        "apiVersion": "patchwave.dev/v1alpha1",
        "kind": "PatchPolicy",
        "metadata": {"name": "security"},
        "spec": {
            "priority": 100,
            "updates": {"classifications": ["Security"], "deferDays": 0},
            "rings": RINGS,
            "manualApproval": [],
            "onFailure": "Halt",
            "operationTimeout": "2h",
        },
    }))?;
    create(&Api::namespaced(client.clone(), namespace), &policy).await?;

    let api: Api<Asset> = Api::namespaced(client.clone(), namespace);
    let names: Vec<String> = (0..size).map(|i| format!("asset-{i:05}")).collect();
    let started = Instant::now();
    futures::stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let api = api.clone();
            async move {
                let asset: Asset = typed(json!({
                    "apiVersion": "patchwave.dev/v1alpha1",
                    "kind": "Asset",
                    "metadata": {
                        "name": name,
                        "labels": {"ring": ring_of(i)},
                        "annotations": {"simulate.patchwave.dev/duration": "0s"},
                    },
                    "spec": {
                        "osFamily": "Linux",
                        "criticality": if i % 100 == 0 { "Critical" } else { "Low" },
                        "staleAfter": "24h",
                    },
                }))?;
                create(&api, &asset).await?;
                Ok::<(), BoxError>(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!("   {size} assets created in {}", secs(started.elapsed()));

    let released = (now - SignedDuration::from_hours(30 * 24)).to_string();
    let started = Instant::now();
    futures::stream::iter(names.iter())
        .map(|name| {
            let api = api.clone();
            let released = released.clone();
            async move {
                let reported: ReportedState = typed(json!({
                    "agentVersion": "0.1.0",
                    "backend": "simulated",
                    "lastHeartbeat": Timestamp::now().to_string(),
                    "inventoryRefreshedAt": Timestamp::now().to_string(),
                    "availableUpdates": [
                        {"id": "openssl", "package": "openssl", "version": "3.0.15-1",
                         "classification": "Security", "severity": "Critical",
                         "cves": ["CVE-2026-0001"], "releasedAt": released},
                        {"id": "curl", "package": "curl", "version": "8.11.1-1",
                         "classification": "Security", "severity": "Important",
                         "releasedAt": released},
                        {"id": "linux-image", "package": "linux-image", "version": "6.12.9-1",
                         "classification": "Security", "severity": "Important",
                         "releasedAt": released, "rebootRequired": true},
                    ],
                }))?;
                protocol::report(&api, name, &reported).await?;
                Ok::<(), BoxError>(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let seed_time = started.elapsed();
    eprintln!("   {size} inventories reported in {}", secs(seed_time));
    Ok((names, seed_time))
}

fn free_port() -> Result<u16, BoxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn spawn_operator(
    kubeconfig: &Path,
    namespace: &str,
    address: &str,
    log: &Path,
) -> Result<Child, BoxError> {
    let file = std::fs::File::create(log)?;
    let operator = env!("CARGO_BIN_EXE_patchwave-operator");
    // A profiler to run the operator under, e.g. `heaptrack -o /tmp/operator`: its figures
    // are then the profiler's, not the operator's.
    let prefix = std::env::var("PATCHWAVE_BENCH_OPERATOR_PREFIX").unwrap_or_default();
    let mut words = prefix.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(operator);
            command
        }
        None => Command::new(operator),
    };
    let child = command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--namespace", namespace, "--leader-elect=false"])
        .args(["--metrics-address", address, "--log", "info"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    Ok(child)
}

struct Watched {
    succeeded: Option<PatchRollout>,
    wall: Duration,
    ready_after: Option<Duration>,
    rollout_seen_after: Option<Duration>,
    writes_at_end: u64,
    note: String,
}

/// Polls the rollout every 200 ms until it is Succeeded, the operator exits or the timeout.
async fn watch_rollout(
    client: &Client,
    namespace: &str,
    operator: &mut Child,
    address: &str,
    started: Instant,
) -> Result<Watched, BoxError> {
    let timeout = std::env::var("PATCHWAVE_BENCH_TIMEOUT")
        .ok()
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(900));
    let api: Api<PatchRollout> = Api::namespaced(client.clone(), namespace);
    let mut watched = Watched {
        succeeded: None,
        wall: Duration::ZERO,
        ready_after: None,
        rollout_seen_after: None,
        writes_at_end: 0,
        note: String::new(),
    };
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(POLL).await;
        if watched.ready_after.is_none() && http_get(address, "/readyz").await.is_ok_and(|r| r) {
            watched.ready_after = Some(started.elapsed());
        }
        if let Some(status) = operator.try_wait()? {
            watched.wall = started.elapsed();
            watched.note = format!("the operator exited ({status}) before the rollout finished");
            return Ok(watched);
        }
        let rollouts = api.list(&ListParams::default()).await?;
        if watched.rollout_seen_after.is_none() && !rollouts.items.is_empty() {
            watched.rollout_seen_after = Some(started.elapsed());
        }
        let done = rollouts.items.iter().find(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.phase == RolloutPhase::Succeeded)
        });
        if let Some(done) = done {
            watched.wall = started.elapsed();
            watched.writes_at_end = scrape_writes(address)
                .await
                .map(|w| w.values().sum())
                .unwrap_or(0);
            watched.succeeded = Some(done.clone());
            if rollouts.items.len() > 1 {
                watched.note = format!("{} rollouts were created", rollouts.items.len());
            }
            return Ok(watched);
        }
        if last_report.elapsed() >= Duration::from_secs(10) || started.elapsed() >= timeout {
            last_report = Instant::now();
            let writes: u64 = scrape_writes(address)
                .await
                .map(|w| w.values().sum())
                .unwrap_or(0);
            let progress = rollouts
                .items
                .iter()
                .map(progress_line)
                .collect::<Vec<_>>()
                .join("; ");
            eprintln!(
                "   {:>6.1} s: writes {writes}; {}",
                started.elapsed().as_secs_f64(),
                if progress.is_empty() {
                    "no rollout yet".to_owned()
                } else {
                    progress.clone()
                }
            );
            if started.elapsed() >= timeout {
                watched.wall = started.elapsed();
                watched.note = format!("timed out; last state: {progress}");
                return Ok(watched);
            }
        }
    }
}

fn progress_line(rollout: &PatchRollout) -> String {
    let Some(status) = &rollout.status else {
        return format!("{}: no status", rollout.name_any());
    };
    let rings = status
        .rings
        .iter()
        .map(|r| {
            format!(
                "{} {:?} {}/{} ok, {} in flight, {} failed",
                r.name, r.phase, r.succeeded, r.total, r.in_flight, r.failed
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("{} {:?} [{rings}]", rollout.name_any(), status.phase)
}

fn ring_lines(rollout: &PatchRollout, started_at: Timestamp) -> Vec<String> {
    let Some(status) = &rollout.status else {
        return Vec::new();
    };
    let offset = |t: &Option<patchwave::api::Time>| {
        t.as_ref()
            .map(|t| format!("{:.1} s", t.0.duration_since(started_at).as_secs_f64()))
            .unwrap_or_else(|| "-".to_owned())
    };
    status
        .rings
        .iter()
        .map(|r| {
            format!(
                "ring {}: {} assets, {} succeeded, {} failed; started at {}, completed at {} (status timestamps, second resolution, from operator start)",
                r.name,
                r.total,
                r.succeeded,
                r.failed,
                offset(&r.started_at),
                offset(&r.completed_at)
            )
        })
        .collect()
}

/// Asks the operator's `/healthz` every 100 ms, as a kubelet's liveness probe does, but waits
/// for the answer to measure it (a kubelet gives up after 1 s). Runs on a thread of its own so
/// that the bench's busy runtime (the fleet) does not delay the probes: a probe that waits is
/// the operator's runtime being busy.
struct HealthProber {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(Duration, Duration)>>,
}

impl HealthProber {
    fn start(address: String) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut took = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let started = Instant::now();
                // Refused while the operator starts listening: not a latency.
                if probe_healthz(&address).is_ok() {
                    took.push((started - start, started.elapsed()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            took
        });
        HealthProber { stop, thread }
    }

    fn stop(self) -> Vec<(Duration, Duration)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// One blocking GET of `/healthz`, waiting up to 30 s for the answer.
fn probe_healthz(address: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(())
}

/// The probes' answer times: how many, the median, the 99th percentile, the longest (and
/// when it was sent), and how many took over the kubelet's default probe timeout of 1 s.
fn health_line(probes: &[(Duration, Duration)]) -> Option<String> {
    let (sent, longest) = probes.iter().copied().max_by_key(|(_, took)| *took)?;
    let mut sorted: Vec<Duration> = probes.iter().map(|(_, took)| *took).collect();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    let over = sorted
        .iter()
        .filter(|d| **d > Duration::from_secs(1))
        .count();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    Some(format!(
        "/healthz during the rollout: {} probes, median {}, p99 {}, longest {} (sent at {}), {over} over 1 s",
        sorted.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(longest),
        secs(sent)
    ))
}

/// A plain HTTP GET on the operator's metrics address; whether it answered 200.
async fn http_get(address: &str, path: &str) -> Result<bool, BoxError> {
    let body = http_body(address, path).await?;
    Ok(body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200"))
}

async fn http_body(address: &str, path: &str) -> Result<String, BoxError> {
    let mut stream = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(address),
    )
    .await??;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text)).await??;
    Ok(text)
}

/// `patchwave_operator_writes_total` by (kind, verb).
async fn scrape_writes(address: &str) -> Result<BTreeMap<(String, String), u64>, BoxError> {
    let text = http_body(address, "/metrics").await?;
    let mut writes = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("patchwave_operator_writes_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |key: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        writes.insert((label("kind"), label("verb")), value as u64);
    }
    Ok(writes)
}

/// The writes counter once it has not moved for 2 s (at most 20 s after Succeeded), and when
/// it last moved (500 ms resolution, from `started`).
async fn settled_writes(
    address: &str,
    started: Instant,
) -> (BTreeMap<(String, String), u64>, Duration) {
    let mut last = scrape_writes(address).await.unwrap_or_default();
    let mut changed = started.elapsed();
    let mut still = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = scrape_writes(address).await.unwrap_or_default();
        if now == last {
            still += 1;
            if still >= 4 {
                break;
            }
        } else {
            still = 0;
            last = now;
            changed = started.elapsed();
        }
    }
    (last, changed)
}

/// User plus system CPU time of a process (Linux `/proc/<pid>/stat`, 100 ticks a second).
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at `state`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// `count` server-side applies of Asset status by a plain client, `CONCURRENCY` at a time:
/// each asset's operator-owned status as stored, with `missingUpdates` changed so that every
/// apply is a real write (`round` keeps the values of repeated runs apart). Returns the time
/// they took.
async fn plain_client(
    client: &Client,
    namespace: &str,
    names: &[String],
    count: usize,
    round: usize,
) -> Result<Duration, BoxError> {
    let api: Api<Asset> = Api::namespaced(client.clone(), namespace);
    let stored = api.list(&ListParams::default()).await?;
    let mut statuses: BTreeMap<String, Value> = BTreeMap::new();
    for asset in stored.items {
        let name = asset.name_any();
        let mut status = serde_json::to_value(asset.status.unwrap_or_default())?;
        if let Some(map) = status.as_object_mut() {
            map.remove("reported");
        }
        statuses.insert(name, status);
    }
    let bodies: Vec<(String, Value)> = (0..count)
        .map(|k| {
            let name = &names[k % names.len()];
            let mut status = statuses.get(name).cloned().unwrap_or_else(|| json!({}));
            status["missingUpdates"] = json!(1000 + round * count + k);
            let body = json!({
                "apiVersion": "patchwave.dev/v1alpha1",
                "kind": "Asset",
                "metadata": {"name": name},
                "status": status,
            });
            (name.clone(), body)
        })
        .collect();
    let params = PatchParams::apply(OPERATOR_FIELD_MANAGER).force();
    let started = Instant::now();
    futures::stream::iter(bodies)
        .map(|(name, body)| {
            let api = api.clone();
            let params = params.clone();
            async move {
                api.patch_status(&name, &params, &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(started.elapsed())
}
