//! `patchwave-operator`: the controller a management cluster runs. Everything happens in
//! [`patchwave::operator`]; this binary reads flags and environment and sets up logging.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use patchwave::operator::leader::{self, LeaseSettings};
use patchwave::operator::{Settings, run};

/// Rolls patches out ring by ring, inside maintenance windows, halting on failures.
///
/// Watches PatchPolicies, Rings, MaintenanceWindows, Assets and PatchRollouts, creates a
/// PatchRollout when a policy's approved set of missing updates changes, hands each Asset's
/// agent its operation in `status.operation`, and keeps every status current. Run several
/// replicas with --leader-elect: one acts, the others wait for its Lease.
///
/// Example (a local cluster, one namespace, no election):
///   patchwave-operator --namespace acme --leader-elect=false
#[derive(Parser, Debug)]
#[command(name = "patchwave-operator", version, verbatim_doc_comment)]
struct Args {
    /// Kubeconfig file. Default: in-cluster configuration, else ~/.kube/config.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<String>,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, short = 'n', env = "PATCHWAVE_NAMESPACE")]
    namespace: Option<String>,

    /// Address of /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "PATCHWAVE_METRICS_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    metrics_address: SocketAddr,

    /// Elect a leader with a Lease, so that any number of replicas can run.
    #[arg(long, env = "PATCHWAVE_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,

    /// Name of the leader Lease.
    #[arg(
        long,
        env = "PATCHWAVE_LEASE_NAME",
        default_value = "patchwave-operator"
    )]
    lease_name: String,

    /// Namespace of the leader Lease: the operator's own (the chart sets it from the pod).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,

    /// Lease duration in seconds: a new leader takes over at most this long after the old one
    /// stopped renewing.
    #[arg(long, env = "PATCHWAVE_LEASE_DURATION", default_value_t = 15)]
    lease_duration: u64,

    /// Seconds before expiry at which the leader renews its Lease. A leader that cannot renew
    /// stops writing a quarter of this before the Lease runs out.
    #[arg(long, env = "PATCHWAVE_LEASE_GRACE", default_value_t = 5)]
    lease_grace: u64,

    /// Identity in the Lease and in Events. Default: the pod name, else host and process id.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,

    /// Milliseconds to gather changes before a reconcile (agents report in bursts).
    #[arg(long, env = "PATCHWAVE_DEBOUNCE_MS", default_value_t = 300)]
    debounce_ms: u64,

    /// Seconds an Asset's state may lag when nobody has to act on it (an asset now waiting its
    /// turn): the change rides along with the asset's next operation write instead, which
    /// saves a write per asset in large rollouts. Failures, approvals, holds and unscheduled
    /// assets are written at once, and so is a condition turning False or back to True.
    #[arg(long, env = "PATCHWAVE_SUMMARY_DELAY_SECONDS", default_value_t = 300)]
    summary_delay_seconds: u64,

    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,

    /// Log format: text or json.
    #[arg(long, env = "PATCHWAVE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.leader_elect {
        // Checked before anything starts, like the other flags.
        if let Err(message) = leader::check_times(args.lease_duration, args.lease_grace) {
            Args::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("--lease-duration/--lease-grace: {message}"),
                )
                .exit();
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, not in a log file or `kubectl logs`.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if args.log_format == "json" {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    // One thread: reconciles run one at a time anyway, the rest is waiting on the API server,
    // and few allocator arenas keep the resident memory of a large fleet down. A reconcile's
    // walk over the whole namespace runs on the blocking pool (see operator::reconcile).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(start(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn start(args: Args) -> Result<(), String> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("reading kubeconfig {path}: {e}"))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| format!("kubeconfig {path}: {e}"))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            format!("no cluster configuration found (in-cluster or ~/.kube/config): {e}")
        })?,
    };
    let client = kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))?;
    let identity = args.identity.unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
        format!("{host}-{}", std::process::id())
    });
    let settings = Settings {
        namespace: args.namespace,
        metrics_address: args.metrics_address,
        lease: args.leader_elect.then(|| LeaseSettings {
            name: args.lease_name,
            namespace: args.lease_namespace,
            identity: identity.clone(),
            duration_seconds: args.lease_duration,
            grace_seconds: args.lease_grace,
        }),
        debounce: Duration::from_millis(args.debounce_ms),
        instance: identity,
        summary_delay: Duration::from_secs(args.summary_delay_seconds),
        figures_refresh: patchwave::operator::compliance::REFRESH,
    };
    run(client, settings, terminated())
        .await
        .map_err(|e| e.to_string())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what Kubernetes sends before it kills a pod).
async fn terminated() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
