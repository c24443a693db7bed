//! What the node agent costs a machine and the API server (issue 5): idle memory, CPU per
//! inventory refresh, and writes per heartbeat.
//!
//! Run: `cargo bench --bench agent`. Needs the control plane binaries of
//! `tests/controlplane/build.sh` (or `PATCHWAVE_CONTROLPLANE_BIN`) and, for the apt rows, a
//! Debian or Ubuntu machine. Nothing on the machine changes: apt is only asked to simulate
//! (`apt-get -s dist-upgrade`), never `apt-get update`.
//!
//! On one fresh local control plane (etcd + kube-apiserver) with the CRDs, a namespace and one
//! Linux Asset per measurement:
//! 1. **Idle memory**: `patchwave-agent run` (the bench-profile binary) as a child process,
//!    once with `--backend simulated`, once with `--backend apt --no-refresh-lists`, default
//!    heartbeat (20m). Once the agent has reported its first inventory (it settled), its
//!    VmRSS is sampled from `/proc/<pid>/status` every second for 20 s; the table gives the
//!    last sample, the range, and VmHWM (the peak resident memory since the start, which
//!    includes the first inventory).
//! 2. **CPU per inventory refresh** with the apt backend, in this process: one warm-up
//!    refresh, then 5 refreshes, reading utime + stime (this process, all threads) and
//!    cutime + cstime (its waited-for children: apt-get, dpkg-query, uname, sh) from
//!    `/proc/self/stat` before and after, in ticks of `getconf CLK_TCK`; and wall time.
//! 3. **Writes**: `patchwave-agent run --backend simulated --heartbeat 5s`; after it settled,
//!    a watch on its Asset counts resourceVersion changes for 60 s (nothing else writes to
//!    that Asset). From the writes per heartbeat interval follow the writes per asset per hour
//!    at the default heartbeat of 20m and the rate for a fleet of 10,000 assets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use patchwave::agent::backend::apt::{AptBackend, AptConfig};
use patchwave::agent::backend::{Backend, CommandRunner, SystemRunner};
use patchwave::api::Asset;
use patchwave::devcluster::{LocalControlPlane, controlplane_bin_dir};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const NAMESPACE: &str = "agent-bench";
/// How long idle memory is sampled after the agent settled.
const IDLE_SAMPLING: Duration = Duration::from_secs(20);
/// Inventory refreshes measured for CPU (after one warm-up).
const REFRESHES: u32 = 5;
/// The heartbeat of the write measurement, and how long writes are counted.
const FAST_HEARTBEAT: Duration = Duration::from_secs(5);
const WRITE_WINDOW: Duration = Duration::from_secs(60);
/// The agent's default heartbeat (`run --heartbeat`), and the fleet the issue names.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20 * 60);
const FLEET: f64 = 10_000.0;
/// How long an agent may take to report its first inventory.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(180);

/// Idle memory of one agent process.
struct Memory {
    backend: &'static str,
    settled_after: Duration,
    rss_last_kib: u64,
    rss_min_kib: u64,
    rss_max_kib: u64,
    hwm_kib: u64,
    updates: usize,
}

/// CPU and wall time of the apt inventory, per refresh.
struct RefreshCost {
    updates: usize,
    own_cpu: Duration,
    children_cpu: Duration,
    wall: Duration,
}

/// Writes the agent made to its Asset with a short heartbeat.
struct Writes {
    counted: u64,
    window: Duration,
    heartbeat: Duration,
}

impl Writes {
    fn per_interval(&self) -> f64 {
        self.counted as f64 / (self.window.as_secs_f64() / self.heartbeat.as_secs_f64())
    }

    fn per_hour_default(&self) -> f64 {
        self.per_interval() * 3600.0 / DEFAULT_HEARTBEAT.as_secs_f64()
    }

    fn fleet_per_second(&self) -> f64 {
        self.per_hour_default() * FLEET / 3600.0
    }
}

fn main() {
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
    eprintln!("starting a fresh control plane");
    let plane = match LocalControlPlane::start(&bin_dir) {
        Ok(plane) => plane,
        Err(e) => {
            eprintln!("the control plane did not start: {e}");
            std::process::exit(1);
        }
    };
    let work = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("cannot create a temporary directory for the agents' state: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(measure(&plane, work.path())) {
        Ok((memory, refresh, writes)) => print_table(&memory, refresh.as_ref(), &writes),
        Err(e) => {
            eprintln!("the agent bench failed: {e} (agent logs in {})", {
                let kept = work.keep();
                kept.display().to_string()
            });
            std::process::exit(1);
        }
    }
}

async fn measure(
    plane: &LocalControlPlane,
    work: &Path,
) -> Result<(Vec<Memory>, Option<RefreshCost>, Writes), BoxError> {
    let client = plane.admin_client().await?;
    install_crds(plane)?;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
        )
        .await?;
    let assets: Api<Asset> = Api::namespaced(client.clone(), NAMESPACE);
    for name in ["idle-simulated", "idle-apt", "heartbeat"] {
        let asset: Asset = serde_json::from_value(json!({
            "apiVersion": "patchwave.dev/v1alpha1",
            "kind": "Asset",
            "metadata": {"name": name},
            "spec": {"osFamily": "Linux"},
        }))?;
        assets.create(&PostParams::default(), &asset).await?;
    }
    let apt_here = Path::new("/usr/bin/apt-get").exists();

    let mut memory = Vec::new();
    eprintln!("idle memory, --backend simulated");
    memory.push(idle_memory(plane, &assets, work, "idle-simulated", "simulated", &[]).await?);
    if apt_here {
        eprintln!("idle memory, --backend apt --no-refresh-lists");
        memory.push(
            idle_memory(
                plane,
                &assets,
                work,
                "idle-apt",
                "apt",
                &["--no-refresh-lists"],
            )
            .await?,
        );
    } else {
        eprintln!("no /usr/bin/apt-get: skipping the apt rows");
    }

    let refresh = if apt_here {
        eprintln!("CPU per apt inventory refresh ({REFRESHES} refreshes after a warm-up)");
        Some(tokio::task::spawn_blocking(refresh_cost).await??)
    } else {
        None
    };

    eprintln!(
        "writes with --heartbeat {}s for {} s",
        FAST_HEARTBEAT.as_secs(),
        WRITE_WINDOW.as_secs()
    );
    let writes = count_writes(plane, &assets, work).await?;
    Ok((memory, refresh, writes))
}

fn install_crds(plane: &LocalControlPlane) -> Result<(), BoxError> {
    Ok(plane.install_crds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"))?)
}

/// A `patchwave-agent run` child process, killed when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        // An error means it exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_agent(
    plane: &LocalControlPlane,
    work: &Path,
    asset: &str,
    backend: &str,
    extra: &[&str],
) -> Result<Agent, BoxError> {
    let state = work.join(asset);
    std::fs::create_dir_all(&state)
        .map_err(|e| format!("creating state directory {}: {e}", state.display()))?;
    let log = work.join(format!("{asset}.log"));
    let log_file = std::fs::File::create(&log)
        .map_err(|e| format!("creating agent log {}: {e}", log.display()))?;
    let child = Command::new(env!("CARGO_BIN_EXE_patchwave-agent"))
        .args(["run", "--asset", asset, "--namespace", NAMESPACE])
        .arg("--kubeconfig")
        .arg(plane.kubeconfig_path())
        .args(["--backend", backend, "--state-dir"])
        .arg(&state)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("starting patchwave-agent for Asset {asset}: {e}"))?;
    Ok(Agent { child, log })
}

/// Waits until the Asset's status.reported carries an inventory; returns how many updates.
async fn wait_settled(
    assets: &Api<Asset>,
    agent: &mut Agent,
    name: &str,
) -> Result<usize, BoxError> {
    let started = Instant::now();
    loop {
        if let Some(status) = agent.child.try_wait()? {
            return Err(format!(
                "patchwave-agent for Asset {name} exited with {status}; see {}",
                agent.log.display()
            )
            .into());
        }
        let asset = assets.get(name).await?;
        if let Some(reported) = asset.status.and_then(|s| s.reported)
            && reported.inventory_refreshed_at.is_some()
        {
            return Ok(reported.available_updates.len());
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            return Err(format!(
                "Asset {name}: no status.reported.inventoryRefreshedAt after {} s; see {}",
                SETTLE_TIMEOUT.as_secs(),
                agent.log.display()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A `kB` field (VmRSS, VmHWM) of `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> Result<u64, BoxError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{path}: no {field} line with a number of kB").into())
}

async fn idle_memory(
    plane: &LocalControlPlane,
    assets: &Api<Asset>,
    work: &Path,
    name: &str,
    backend: &'static str,
    extra: &[&str],
) -> Result<Memory, BoxError> {
    let mut agent = spawn_agent(plane, work, name, backend, extra)?;
    let started = Instant::now();
    let updates = wait_settled(assets, &mut agent, name).await?;
    let settled_after = started.elapsed();
    let pid = agent.child.id();
    let mut samples = Vec::new();
    let sampling = Instant::now();
    while sampling.elapsed() < IDLE_SAMPLING {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(status_kib(pid, "VmRSS")?);
    }
    let hwm_kib = status_kib(pid, "VmHWM")?;
    Ok(Memory {
        backend,
        settled_after,
        rss_last_kib: samples.last().copied().unwrap_or_default(),
        rss_min_kib: samples.iter().copied().min().unwrap_or_default(),
        rss_max_kib: samples.iter().copied().max().unwrap_or_default(),
        hwm_kib,
        updates,
    })
}

/// utime, stime, cutime and cstime of this process, in clock ticks.
fn own_ticks() -> Result<[u64; 4], BoxError> {
    let text = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("reading /proc/self/stat: {e}"))?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("/proc/self/stat: no closing parenthesis after the command name")?;
    // After the name: state is field 3, so utime (14) .. cstime (17) are indexes 11..=14.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let mut ticks = [0u64; 4];
    for (slot, index) in ticks.iter_mut().zip(11..=14) {
        *slot = fields
            .get(index)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/self/stat: field {} is not a number", index + 3))?;
    }
    Ok(ticks)
}

fn clock_ticks_per_second() -> Result<u64, BoxError> {
    let output = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .map_err(|e| format!("running getconf CLK_TCK: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("getconf CLK_TCK printed no number: {e}").into())
}

fn refresh_cost() -> Result<RefreshCost, BoxError> {
    let hz = clock_ticks_per_second()?;
    let runner: Arc<dyn CommandRunner> = Arc::new(SystemRunner);
    let apt = AptBackend::with_config(
        runner,
        AptConfig {
            refresh_lists: false,
            ..AptConfig::default()
        },
    );
    let updates = apt.inventory()?.available.len();
    let before = own_ticks()?;
    let started = Instant::now();
    for _ in 0..REFRESHES {
        apt.inventory()?;
    }
    let wall = started.elapsed() / REFRESHES;
    let after = own_ticks()?;
    let per_refresh =
        |ticks: u64| Duration::from_secs_f64(ticks as f64 / hz as f64 / f64::from(REFRESHES));
    Ok(RefreshCost {
        updates,
        own_cpu: per_refresh((after[0] + after[1]) - (before[0] + before[1])),
        children_cpu: per_refresh((after[2] + after[3]) - (before[2] + before[3])),
        wall,
    })
}

async fn count_writes(
    plane: &LocalControlPlane,
    assets: &Api<Asset>,
    work: &Path,
) -> Result<Writes, BoxError> {
    let name = "heartbeat";
    let heartbeat = format!("{}s", FAST_HEARTBEAT.as_secs());
    let mut agent = spawn_agent(plane, work, name, "simulated", &["--heartbeat", &heartbeat])?;
    wait_settled(assets, &mut agent, name).await?;
    let start_version = assets
        .get(name)
        .await?
        .resource_version()
        .unwrap_or_default();
    let params = WatchParams::default().fields(&format!("metadata.name={name}"));
    let mut events = assets.watch(&params, &start_version).await?.boxed();
    let mut last = start_version;
    let mut counted = 0u64;
    let deadline = tokio::time::Instant::now() + WRITE_WINDOW;
    loop {
        let event = match tokio::time::timeout_at(deadline, events.try_next()).await {
            Err(_) => break, // the window is over
            Ok(event) => event?,
        };
        match event {
            Some(WatchEvent::Modified(asset)) => {
                let version = asset.resource_version().unwrap_or_default();
                if version != last {
                    counted += 1;
                    last = version;
                }
            }
            Some(WatchEvent::Error(e)) => {
                return Err(format!("watching Asset {name}: {e}").into());
            }
            Some(_) => {}
            None => return Err(format!("the watch on Asset {name} ended early").into()),
        }
    }
    if let Some(status) = agent.child.try_wait()? {
        return Err(format!(
            "patchwave-agent for Asset {name} exited with {status} during the count; see {}",
            agent.log.display()
        )
        .into());
    }
    Ok(Writes {
        counted,
        window: WRITE_WINDOW,
        heartbeat: FAST_HEARTBEAT,
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn print_table(memory: &[Memory], refresh: Option<&RefreshCost>, writes: &Writes) {
    println!("| measurement | value | detail |");
    println!("|---|---:|---|");
    for m in memory {
        println!(
            "| idle RSS, `run --backend {}` | {} | {} to {} over {} s after it settled ({} updates reported after {:.1} s) |",
            m.backend,
            mib(m.rss_last_kib),
            mib(m.rss_min_kib),
            mib(m.rss_max_kib),
            IDLE_SAMPLING.as_secs(),
            m.updates,
            m.settled_after.as_secs_f64()
        );
        println!(
            "| peak RSS (VmHWM), `run --backend {}` | {} | since start, including the first inventory |",
            m.backend,
            mib(m.hwm_kib)
        );
    }
    if let Some(r) = refresh {
        println!(
            "| CPU per apt inventory refresh | {} | agent {} + children (apt-get, dpkg-query, ...) {}; mean of {REFRESHES}; {} updates |",
            ms(r.own_cpu + r.children_cpu),
            ms(r.own_cpu),
            ms(r.children_cpu),
            r.updates
        );
        println!(
            "| wall time per apt inventory refresh | {} | lists not refreshed (no `apt-get update`) |",
            ms(r.wall)
        );
    }
    println!(
        "| writes per heartbeat interval | {:.2} | {} writes to the Asset in {} s with `--heartbeat {}s`, idle |",
        writes.per_interval(),
        writes.counted,
        writes.window.as_secs(),
        writes.heartbeat.as_secs()
    );
    println!(
        "| writes per asset per hour, default heartbeat 20m | {:.2} | idle; an operation adds 2, a changed inventory 1 |",
        writes.per_hour_default()
    );
    println!(
        "| writes per second, 10,000 idle assets | {:.2} | target: under 10 |",
        writes.fleet_per_second()
    );
}
