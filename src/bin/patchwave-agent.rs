//! `patchwave-agent`: the node-side agent. For now it has one command, `fleet`, which plays
//! the simulated agents of many Assets at once; everything happens in
//! [`patchwave::agent::fleet`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use patchwave::agent::fleet::{self, DEFAULT_MAX_CONCURRENT_WRITES, FleetConfig};
use patchwave::api::Asset;
use patchwave::engine::duration::parse_duration;
use tokio::signal::unix::{SignalKind, signal};

const LONG_ABOUT: &str = "\
The patchwave agent reports an endpoint's available updates to its Asset and executes the
operations the operator writes there, within the Asset's maintenance windows.

The agent that runs on a machine (apt, dnf, zypper, Windows Update, softwareupdate) is a later
command and does not exist yet. Today this binary has `fleet`: many simulated agents in one
process, speaking exactly the agent's protocol, for tests, demos and benchmarks.

The protocol: the operator writes status.operation of an Asset (field manager
patchwave-operator); the agent writes only status.reported of its own Asset (server-side apply,
field manager patchwave-agent): heartbeats, inventory, and the result of each operation.";

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

/// The patchwave agent (today: a simulated agent fleet).
#[derive(Debug, Parser)]
#[command(name = "patchwave-agent", version, long_about = LONG_ABOUT)]
struct Cli {
    /// What to run.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play simulated agents for every Asset of a namespace (tests, demos, benchmarks).
    #[command(long_about = FLEET_LONG_ABOUT, after_help = FLEET_AFTER_HELP)]
    Fleet(FleetArgs),
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

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // kube's client logs every failed request at ERROR; the fleet reports them itself.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_fleet(args: FleetArgs) -> Result<(), Box<dyn std::error::Error>> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &args.kubeconfig {
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
        None if args.context.is_some() => Config::from_kubeconfig(&options).await?,
        None => Config::infer().await?,
    };
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
            seed = inventory.assets;
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
