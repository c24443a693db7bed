//! `patchwave-agent`: the node-side agent. `run` is the agent of one machine
//! ([`patchwave::agent::node`]); `inventory` prints what `run` would report, without a
//! cluster; `fleet` plays the simulated agents of many Assets at once
//! ([`patchwave::agent::fleet`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use patchwave::agent::backend::apt::{AptBackend, AptConfig};
use patchwave::agent::backend::{self, Backend, CommandRunner, SystemRunner};
use patchwave::agent::fleet::{self, DEFAULT_MAX_CONCURRENT_WRITES, FleetConfig};
use patchwave::agent::node::config::AgentConfig;
use patchwave::agent::node::{self, NodeBackend, NodeConfig};
use patchwave::api::Asset;
use patchwave::api::asset::{MAX_AVAILABLE_UPDATES, ReportedState};
use patchwave::engine::duration::parse_duration;
use tokio::signal::unix::{SignalKind, signal};

const LONG_ABOUT: &str = "\
The patchwave agent reports an endpoint's available updates to its Asset and executes the
operations the operator writes there, within the Asset's maintenance windows.

`run` is the agent of one machine (apt, dnf, zypper, Windows Update, softwareupdate, or a
simulated package database). `fleet` plays many simulated agents in one process, speaking
exactly the same protocol, for tests, demos and benchmarks.

The protocol: the operator writes status.operation of an Asset (field manager
patchwave-operator); the agent writes only status.reported of its own Asset (server-side apply,
field manager patchwave-agent): heartbeats, inventory, and the result of each operation.";

const RUN_LONG_ABOUT: &str = "\
The agent of one machine. It is the Asset --asset in --namespace: it reads only that Asset
(a watch with fieldSelector metadata.name=NAME) and writes only its status.reported.

What it does:
  - reports the machine's inventory (available updates with versions, OS facts, whether a
    reboot is pending) at start, every --inventory-interval when it changed, and at once when
    the annotation patchwave.dev/refresh-inventory changes value;
  - heartbeats: any write counts; with nothing else to say it writes every --heartbeat;
  - with apt, runs `apt-get update` before each inventory (--no-refresh-lists: it reads the
    package lists on disk instead; `patchwave-agent inventory` shows what it would report);
  - runs the operation the operator writes in status.operation, only before its notAfter (an
    operation seen later is reported Failed without running): reports Running, runs the
    pre-install hook, installs (or rolls back) exactly the listed updates at the listed
    versions, reboots as the operation's reboot policy says (IfRequired, Never, Always) if the
    config allows reboots, runs the post-install hook and the health check, and reports the
    result with the installed versions;
  - keeps a journal in --state-dir (journal.jsonl, fsynced before each step). Killed or
    rebooted mid-operation, it never installs the same operation twice: after an interrupted
    install it asks the package manager what is installed and reports that. Before each
    install it writes down the versions it replaces (rollback-points.json): a Rollback
    operation returns there.

Writes to the API server: 3 heartbeats an hour per machine (20m) plus 2 per operation and 1
per inventory change. 10,000 machines cost about 8.3 writes a second.

The config file (--config) is the machine's own; the cluster never sends a command line:
  hooks:                        # the allowlist: names a PatchPolicy's hooks may use
    stop-app:
      path: /usr/local/lib/patchwave/stop-app.sh   # absolute path; run without arguments
      timeout: 5m                                   # default 10m
    app-health:
      path: /usr/local/lib/patchwave/app-health.sh
  reboot:
    enabled: true               # default false: then the agent reports rebootPending
    command: [/sbin/shutdown, -r, +1]   # default per OS
    waitForRestart: 10m         # how long to wait for the machine to go down
  simulated:
    seedFile: /etc/patchwave/updates.yaml   # first database of --backend simulated
Hooks get PATCHWAVE_HOOK, PATCHWAVE_ASSET, PATCHWAVE_OPERATION_ID, PATCHWAVE_ROLLOUT,
PATCHWAVE_ACTION and PATCHWAVE_UPDATES (id=version ...) in their environment. A hook the
policy names but the allowlist lacks fails the operation before anything is installed.

--backend simulated keeps a package database in --state-dir (seeded from simulated.seedFile,
else from the Asset's reported availableUpdates) and obeys the annotations
simulate.patchwave.dev/outcome and simulate.patchwave.dev/duration like `fleet`.

Every flag can also be given as an environment variable (shown with each flag).
RUST_LOG sets the log filter (default info).";

const RUN_AFTER_HELP: &str = "\
Examples:
  # A Debian server enrolled with `kubectl patchwave enroll web-1 -n acme > agent.kubeconfig`
  patchwave-agent run --asset web-1 -n acme --kubeconfig /etc/patchwave/agent.kubeconfig \\
      --config /etc/patchwave/agent.yaml

  # A simulated machine for a demo: heartbeat every 30 s, state in /tmp
  patchwave-agent run --asset lt-it-01 -n acme --backend simulated --state-dir /tmp/lt-it-01 \\
      --heartbeat 30s

  # The same from the environment (a systemd unit or a DaemonSet)
  PATCHWAVE_ASSET=web-1 PATCHWAVE_NAMESPACE=acme patchwave-agent run

  # Ask a running agent for a fresh inventory
  kubectl -n acme annotate asset web-1 patchwave.dev/refresh-inventory=$(date +%s) --overwrite

Stop with Ctrl-C or SIGTERM. An operation in progress stays Running; the journal carries it
on at the next start.";

const INVENTORY_LONG_ABOUT: &str = "\
Prints what `run` would report to the Asset (status.reported): the backend, OS facts, the
available updates with their versions and classification, and whether a reboot is pending.
It needs no cluster and no kubeconfig, and changes nothing on the machine: it only asks the
package manager. Use it when installing an agent, to see what it will see.

With apt it reads the package lists already on disk (`apt-get -s dist-upgrade`, no root
needed); --refresh-lists runs `apt-get update` first, as `run` does before each inventory
(that needs root and network). The other backends always ask their tool for fresh data.

The output is the status.reported the agent would write (at most 500 updates, as the Asset
allows; a warning on stderr says when there were more).";

const INVENTORY_AFTER_HELP: &str = "\
Examples:
  # What would the agent report on this machine?
  patchwave-agent inventory

  # The apt view as JSON, counted with jq
  patchwave-agent inventory --backend apt -o json | jq '.availableUpdates | length'

  # From a privileged pod with hostPID: the host's packages, not the image's
  patchwave-agent inventory --in-host-namespaces";

const FLEET_LONG_ABOUT: &str = "\
Plays the agents of the Assets of one namespace: one process, one watch, any number of assets.

Each Asset behaves like an independent agent with the simulated backend:
  - it heartbeats every --heartbeat (spread over the interval, so 5,000 assets do not write at
    once);
  - when the operator writes status.operation, it reports Running, waits the operation's
    duration divided by --speed, then reports the outcome with the installed versions (the
    updates leave availableUpdates);
  - an operation it sees after its notAfter is reported Failed without running;
  - an operation whose id is already status.reported.lastOperation.id never runs again.

Annotations on an Asset choose what its simulated agent does (the same as for
`kubectl patchwave simulate`):
  simulate.patchwave.dev/outcome    Succeeded (default), Failed, or NoResponse (reports Running,
                                    then nothing: the operator's timeout has to catch it)
  simulate.patchwave.dev/duration   how long an operation takes, e.g. 90s, 10m, 1h30m (default:
                                    spec.expectedDuration, else 10m)

-f gives the starting inventory: the status.reported of each Asset in the files (the examples
carry one) is reported for every Asset of the namespace that has none yet. Assets that were
reported already keep what the cluster has, so restarting the fleet mid-rollout undoes nothing.

The fleet does not create Assets; apply them first (kubectl apply -f examples/).

Environment:
  KUBECONFIG   kubeconfig to use (else ~/.kube/config, else in-cluster)
  RUST_LOG     log filter, e.g. info,patchwave=debug (default info,kube_client=off)";

const FLEET_AFTER_HELP: &str = "\
Examples:
  # The example company, with its inventory, operations 60 times faster than real time
  kubectl apply -f examples/
  patchwave-agent fleet -n acme -f examples/assets/ --speed 60

  # Only the pilot ring's machines, operations instant, a heartbeat every 30 s
  patchwave-agent fleet -n acme -l acme.example/pilot=true --speed 1e6 --heartbeat 30s

  # Make one machine fail its operations
  kubectl -n acme annotate asset lt-sales-03 simulate.patchwave.dev/outcome=Failed

Stop with Ctrl-C (or SIGTERM). Operations in progress stay Running on the cluster; the next
fleet resumes them.";

/// The patchwave agent: one machine's agent (`run`) or a simulated fleet (`fleet`).
#[derive(Debug, Parser)]
#[command(name = "patchwave-agent", version, long_about = LONG_ABOUT)]
struct Cli {
    /// What to run.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Be the agent of one Asset on this machine: report its inventory, run its operations.
    #[command(long_about = RUN_LONG_ABOUT, after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Print what the agent would report on this machine (no cluster needed, read-only).
    #[command(long_about = INVENTORY_LONG_ABOUT, after_help = INVENTORY_AFTER_HELP)]
    Inventory(InventoryArgs),
    /// Play simulated agents for every Asset of a namespace (tests, demos, benchmarks).
    #[command(long_about = FLEET_LONG_ABOUT, after_help = FLEET_AFTER_HELP)]
    Fleet(FleetArgs),
}

/// The backends `run --backend` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendName {
    /// Pick the one for this machine (Windows, macOS, or apt/dnf/zypper on Linux).
    Auto,
    /// Debian, Ubuntu.
    Apt,
    /// RHEL, Fedora, Alma, Rocky.
    Dnf,
    /// SUSE.
    Zypper,
    /// Windows Update.
    WindowsUpdate,
    /// macOS softwareupdate.
    Softwareupdate,
    /// A package database in the state directory (demos, tests).
    Simulated,
}

/// The backends `inventory --backend` accepts: every real one (the simulated backend has no
/// machine to look at).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PlatformName {
    /// Pick the one for this machine (Windows, macOS, or apt/dnf/zypper on Linux).
    Auto,
    /// Debian, Ubuntu.
    Apt,
    /// RHEL, Fedora, Alma, Rocky.
    Dnf,
    /// SUSE.
    Zypper,
    /// Windows Update.
    WindowsUpdate,
    /// macOS softwareupdate.
    Softwareupdate,
}

/// How `-o` prints the inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// YAML, as `kubectl get -o yaml` shows status.reported.
    Yaml,
    /// JSON, for jq and scripts.
    Json,
}

#[derive(Debug, Args)]
struct InventoryArgs {
    /// Package backend
    #[arg(long, env = "PATCHWAVE_BACKEND", value_enum, default_value = "auto")]
    backend: PlatformName,

    /// Run the package tools in the host's namespaces (`nsenter --target 1`): from a
    /// privileged pod with hostPID
    #[arg(long, env = "PATCHWAVE_IN_HOST_NAMESPACES")]
    in_host_namespaces: bool,

    /// apt: run `apt-get update` first (needs root and network); without it the package
    /// lists on disk are read and nothing changes
    #[arg(long)]
    refresh_lists: bool,

    /// Output format
    #[arg(short, long, value_enum, default_value = "yaml")]
    output: OutputFormat,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Name of this machine's Asset
    #[arg(long, env = "PATCHWAVE_ASSET", value_name = "NAME")]
    asset: String,

    /// Namespace of the Asset
    #[arg(short, long, env = "PATCHWAVE_NAMESPACE", value_name = "NAMESPACE")]
    namespace: String,

    /// Kubeconfig file (from `kubectl patchwave enroll`) [default: in-cluster, else
    /// $KUBECONFIG, else ~/.kube/config]
    #[arg(long, env = "PATCHWAVE_KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,

    /// Package backend
    #[arg(long, env = "PATCHWAVE_BACKEND", value_enum, default_value = "auto")]
    backend: BackendName,

    /// Where the journal (and the simulated package database) live
    #[arg(long, env = "PATCHWAVE_STATE_DIR", value_name = "DIR",
          default_value = node::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,

    /// Local config file: hook allowlist, reboots, simulated seed (see above)
    #[arg(long, env = "PATCHWAVE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Longest time between two writes to the Asset (each write is a heartbeat)
    #[arg(long, env = "PATCHWAVE_HEARTBEAT", default_value = "20m", value_name = "DURATION",
          value_parser = parse_interval)]
    heartbeat: Duration,

    /// Time between two inventory refreshes (written only when the inventory changed)
    #[arg(long, env = "PATCHWAVE_INVENTORY_INTERVAL", default_value = "6h",
          value_name = "DURATION", value_parser = parse_interval)]
    inventory_interval: Duration,

    /// Run the package tools in the host's namespaces (`nsenter --target 1`): for the agent
    /// in a privileged DaemonSet pod with hostPID
    #[arg(long, env = "PATCHWAVE_IN_HOST_NAMESPACES")]
    in_host_namespaces: bool,

    /// apt: do not run `apt-get update` before each inventory; report from the package
    /// lists on disk (kept fresh by something else, e.g. unattended-upgrades' timer)
    #[arg(long, env = "PATCHWAVE_NO_REFRESH_LISTS")]
    no_refresh_lists: bool,

    /// Renew the enrolled token this long before it expires [default: a third of its
    /// lifetime]. The current token lives in the state directory (`token`)
    #[arg(long, env = "PATCHWAVE_TOKEN_RENEW_BEFORE", value_name = "DURATION",
          value_parser = parse_signed_duration)]
    token_renew_before: Option<jiff::SignedDuration>,
}

#[derive(Debug, Args)]
struct FleetArgs {
    /// Namespace of the Assets [default: the kubeconfig context's namespace]
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,

    /// Only Assets matching this label selector, e.g. `site=zurich,tier!=db`
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,

    /// Files or folders of Asset YAML whose status.reported is the starting inventory (may be
    /// repeated; folders are read recursively)
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    filenames: Vec<PathBuf>,

    /// Operations run this many times faster than their simulated duration: 60 turns 10m into
    /// 10 s, 1e6 makes them instant. Heartbeats stay in real time.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR", value_parser = parse_speed)]
    speed: f64,

    /// Time between two heartbeats of one Asset, e.g. 30s, 5m
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_interval)]
    heartbeat: Duration,

    /// Writes to the API server in flight at once, across all Assets
    #[arg(long, default_value_t = DEFAULT_MAX_CONCURRENT_WRITES, value_name = "N",
          value_parser = clap::value_parser!(usize))]
    max_concurrent_writes: usize,

    /// Kubeconfig file [default: ~/.kube/config, else in-cluster]
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// Kubeconfig context [default: the current context]
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
}

fn parse_speed(text: &str) -> Result<f64, String> {
    let speed: f64 = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number"))?;
    if speed.is_finite() && speed > 0.0 {
        Ok(speed)
    } else {
        Err(format!("{text} is not a positive number"))
    }
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    match Duration::try_from(duration) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{text} is not longer than zero")),
    }
}

fn parse_signed_duration(text: &str) -> Result<jiff::SignedDuration, String> {
    let duration = parse_duration(text)?;
    if duration.is_negative() {
        return Err(format!("{text} is negative"));
    }
    Ok(duration)
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // kube's client logs every failed request at ERROR; the fleet reports them itself.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a log file or journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Fleet(args) => runtime.block_on(run_fleet(args)),
        Command::Run(args) => runtime.block_on(run_agent(args)),
        Command::Inventory(args) => print_inventory(&args),
    };
    // An install blocked in a backend thread must not keep the process alive: the journal
    // carries it on at the next start.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_agent(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let agent_config = match &args.config {
        Some(path) => AgentConfig::load(path)?,
        None => AgentConfig::default(),
    };
    let platform = match args.backend {
        BackendName::Simulated => None,
        BackendName::Auto => Some(PlatformName::Auto),
        BackendName::Apt => Some(PlatformName::Apt),
        BackendName::Dnf => Some(PlatformName::Dnf),
        BackendName::Zypper => Some(PlatformName::Zypper),
        BackendName::WindowsUpdate => Some(PlatformName::WindowsUpdate),
        BackendName::Softwareupdate => Some(PlatformName::Softwareupdate),
    };
    let backend = match platform {
        None => NodeBackend::simulated(&args.state_dir),
        Some(name) => NodeBackend::platform(platform_backend(
            name,
            args.in_host_namespaces,
            !args.no_refresh_lists,
        )?),
    };
    let (kube_config, renewal) = match &args.kubeconfig {
        Some(path) => agent_client_config(path, &args.state_dir).await?,
        None => (Config::infer().await?, None),
    };
    let client = Client::try_from(kube_config)?;
    if let Some((file, token)) = renewal {
        tokio::spawn(node::token::keep_renewed(
            client.clone(),
            file,
            token,
            args.token_renew_before,
        ));
    }
    let config = NodeConfig {
        asset: args.asset,
        namespace: args.namespace,
        state_dir: args.state_dir,
        heartbeat: args.heartbeat,
        inventory_interval: args.inventory_interval,
        agent: agent_config,
    };
    node::run(client, config, backend, stop_signal()).await?;
    Ok(())
}

/// Builds the real backend `name` (detecting it for `Auto`), running its tools on this
/// machine or in the host's namespaces. `refresh_lists` is apt's `apt-get update` before
/// each inventory.
fn platform_backend(
    name: PlatformName,
    in_host_namespaces: bool,
    refresh_lists: bool,
) -> Result<Box<dyn Backend>, Box<dyn std::error::Error>> {
    let runner: Arc<dyn CommandRunner> = if in_host_namespaces {
        Arc::new(SystemRunner::in_host_namespaces())
    } else {
        // `default()`, not the unit value: the runner may grow settings.
        #[allow(clippy::default_constructed_unit_structs)]
        Arc::new(SystemRunner::default())
    };
    let name = match name {
        PlatformName::Auto => backend::detect(runner.as_ref())?,
        PlatformName::Apt => backend::apt::NAME,
        PlatformName::Dnf => backend::dnf::NAME,
        PlatformName::Zypper => backend::zypper::NAME,
        PlatformName::WindowsUpdate => backend::windows_update::NAME,
        PlatformName::Softwareupdate => backend::softwareupdate::NAME,
    };
    if name == backend::apt::NAME {
        let config = AptConfig {
            refresh_lists,
            ..AptConfig::default()
        };
        return Ok(Box::new(AptBackend::with_config(runner, config)));
    }
    Ok(backend::by_name(name, runner)?)
}

/// `inventory`: asks the backend once and prints the status.reported `run` would write.
fn print_inventory(args: &InventoryArgs) -> Result<(), Box<dyn std::error::Error>> {
    let backend = platform_backend(args.backend, args.in_host_namespaces, args.refresh_lists)?;
    let inventory = backend.inventory()?;
    let mut available = inventory.available;
    if available.len() > MAX_AVAILABLE_UPDATES {
        eprintln!(
            "warning: {} updates available; the Asset holds at most {MAX_AVAILABLE_UPDATES}, so \
             the agent reports (and this prints) the first {MAX_AVAILABLE_UPDATES}",
            available.len()
        );
        available.truncate(MAX_AVAILABLE_UPDATES);
    }
    let reported = ReportedState {
        agent_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        inventory_refreshed_at: Some(patchwave::api::Time(jiff::Timestamp::now())),
        backend: Some(backend.name().to_owned()),
        os: Some(inventory.os),
        available_updates: available,
        reboot_pending: inventory.reboot_pending,
        ..ReportedState::default()
    };
    let text = match args.output {
        OutputFormat::Yaml => serde_yaml::to_string(&reported)?,
        OutputFormat::Json => serde_json::to_string_pretty(&reported)? + "\n",
    };
    print!("{text}");
    Ok(())
}

/// The agent's client configuration from its kubeconfig file, with the token (if inline)
/// moved to the state directory where it is renewed ([`node::token`]).
async fn agent_client_config(
    path: &std::path::Path,
    state_dir: &std::path::Path,
) -> Result<(Config, Option<(PathBuf, node::token::BoundToken)>), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
    match node::token::with_token_file(&text, state_dir) {
        Ok(Some((rewritten, file, token))) => {
            let kubeconfig = Kubeconfig::from_yaml(&rewritten)
                .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            let config =
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
            Ok((config, Some((file, token))))
        }
        Ok(None) => Ok((client_config(Some(path.as_os_str()), None).await?, None)),
        Err(node::token::TokenError::NotServiceAccountToken(reason)) => {
            tracing::warn!(%reason, "the token is used as it is and not renewed");
            Ok((client_config(Some(path.as_os_str()), None).await?, None))
        }
        Err(error) => Err(error.into()),
    }
}

/// The client configuration from `kubeconfig` (KUBECONFIG-style: several files separated
/// like PATH, merged as kubectl does) and `context`; without a file, the usual inference.
async fn client_config(
    kubeconfig: Option<&std::ffi::OsStr>,
    context: Option<String>,
) -> Result<Config, Box<dyn std::error::Error>> {
    let options = KubeConfigOptions {
        context: context.clone(),
        ..KubeConfigOptions::default()
    };
    Ok(match kubeconfig {
        // KUBECONFIG may list several files, like kubectl reads it.
        Some(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for path in std::env::split_paths(paths).filter(|p| !p.as_os_str().is_empty()) {
                let file = Kubeconfig::read_from(&path)
                    .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
                merged = Some(match merged {
                    Some(merged) => merged.merge(file)?,
                    None => file,
                });
            }
            let kubeconfig = merged.ok_or("--kubeconfig names no file")?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None if context.is_some() => Config::from_kubeconfig(&options).await?,
        None => Config::infer().await?,
    })
}

async fn run_fleet(args: FleetArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = client_config(
        args.kubeconfig.as_deref().map(|p| p.as_os_str()),
        args.context.clone(),
    )
    .await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let seed = read_seed(&args.filenames, &namespace)?;
    let client = Client::try_from(config)?;
    let fleet_config = FleetConfig {
        namespace,
        selector: args.selector,
        speed: args.speed,
        heartbeat: args.heartbeat,
        seed,
        max_concurrent_writes: args.max_concurrent_writes,
    };
    let stats = fleet::run(client, fleet_config, stop_signal()).await?;
    eprintln!(
        "stopped: {} assets, {} writes ({} failed attempts), {} operations started, {} finished, \
         {} expired, {} resumed",
        stats.assets,
        stats.writes,
        stats.failed_writes,
        stats.started,
        stats.finished,
        stats.expired,
        stats.resumed
    );
    Ok(())
}

/// Reads the seed inventory: the Assets of `namespace` in the files (problems are warnings).
fn read_seed(paths: &[PathBuf], namespace: &str) -> Result<Vec<Asset>, Box<dyn std::error::Error>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let loaded = patchwave::cli::load::load(paths, namespace)?;
    for problem in &loaded.problems {
        tracing::warn!("{problem}");
    }
    let mut seed = Vec::new();
    for (ns, inventory) in loaded.namespaces {
        if ns == namespace {
            seed = inventory
                .assets
                .into_iter()
                .map(std::sync::Arc::unwrap_or_clone)
                .collect();
        } else if !inventory.assets.is_empty() {
            tracing::warn!(
                "ignoring {} Assets of namespace {ns} in the files (the fleet plays {namespace})",
                inventory.assets.len()
            );
        }
    }
    tracing::info!(assets = seed.len(), "seed inventory read");
    Ok(seed)
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("stopping");
}
