//! Runs a local Kubernetes control plane (etcd + kube-apiserver) until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use patchwave::devcluster::{
    ADMIN_USER, DevClusterError, KUBERNETES_VERSION, LocalControlPlane, controlplane_bin_dir,
    write_kubeconfig,
};
use tokio::signal::unix::{SignalKind, signal};

const LONG_ABOUT: &str = "\
Starts a local Kubernetes control plane: a real etcd and a real kube-apiserver (v1.37.2) on \
free ports of 127.0.0.1, with their own CA, client-certificate authentication and RBAC, like \
controller-runtime's envtest. No Docker, no kind.

It writes an admin kubeconfig (user patchwave-admin in system:masters) to --kubeconfig-out, \
prints how to point kubectl at it, and runs until Ctrl-C (or SIGTERM), then stops both servers \
and deletes their data. The servers also die if this process is killed.

There is no scheduler, kubelet or controller-manager: Deployments never get pods, garbage \
collection does not run, namespaces stay Terminating, and service accounts are not created \
automatically. Run the operator and the agents as local processes against it.

The binaries come from tests/controlplane/build.sh, which builds them from the Go module proxy \
once (several minutes, needs Go) and caches them; scripts/dev-cluster.sh runs it for you.

Environment:
  PATCHWAVE_CONTROLPLANE_BIN            directory with etcd, kube-apiserver, kubectl (skips the build)
  PATCHWAVE_CONTROLPLANE_CACHE          cache directory of build.sh (default ~/.cache/patchwave/controlplane)
  PATCHWAVE_CONTROLPLANE_START_TIMEOUT  seconds to wait for readiness (default 120)
  RUST_LOG                              log filter (default warn)";

const AFTER_LONG_HELP: &str = "\
Example:
  scripts/dev-cluster.sh                          # build if needed, start, wait for Ctrl-C
  # in another shell (the exact lines are printed at start):
  export KUBECONFIG=$PWD/.devcluster/kubeconfig
  export PATH=~/.cache/patchwave/controlplane/v1.37.2-<hash>/bin:$PATH
  kubectl get namespaces
  kubectl --as=alice --as-group=team-a auth can-i list secrets";

/// Run a local Kubernetes control plane (etcd + kube-apiserver) until Ctrl-C.
#[derive(Debug, Parser)]
#[command(
    name = "patchwave-devcluster",
    version,
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP
)]
struct Args {
    /// Where to write the admin kubeconfig (parent directories are created).
    #[arg(long, value_name = "PATH", default_value = "./.devcluster/kubeconfig")]
    kubeconfig_out: PathBuf,

    /// Directory holding etcd, kube-apiserver and kubectl [default: output of
    /// tests/controlplane/build.sh]
    #[arg(long, value_name = "DIR", env = "PATCHWAVE_CONTROLPLANE_BIN")]
    bin_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => controlplane_bin_dir()?,
    };
    eprintln!(
        "starting etcd and kube-apiserver {KUBERNETES_VERSION} from {}",
        bin_dir.display()
    );
    let started = Instant::now();
    let mut plane = LocalControlPlane::start(&bin_dir)?;
    let kubeconfig = std::path::absolute(&args.kubeconfig_out)?;
    write_kubeconfig(&kubeconfig, &plane.kubeconfig())?;

    println!(
        "Local control plane is up (Kubernetes {KUBERNETES_VERSION}) after {:.1?}.\n\
         \n  API server:  {}\n  kubeconfig:  {} (user {ADMIN_USER}, group system:masters)\n  \
         logs:        {}/{{etcd,kube-apiserver}}.log\n\
         \nIn another shell:\n\n  export KUBECONFIG={}\n  export PATH={}:\"$PATH\"   \
         # kubectl and helm built for {KUBERNETES_VERSION}\n  kubectl get namespaces\n\
         \nAct as someone else: kubectl --as=alice --as-group=team-a ...\n\
         Press Ctrl-C to stop both servers and delete their data.",
        started.elapsed(),
        plane.server_url(),
        kubeconfig.display(),
        plane.work_dir().display(),
        shell_quote(&kubeconfig.display().to_string()),
        shell_quote(&plane.bin_dir().display().to_string()),
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(wait_for_signal(&mut plane));
    eprintln!("stopping kube-apiserver and etcd");
    plane.stop();
    Ok(outcome?)
}

/// Waits for Ctrl-C, SIGTERM or SIGHUP; fails if a server exits on its own.
async fn wait_for_signal(plane: &mut LocalControlPlane) -> Result<(), DevClusterError> {
    let io = |e: std::io::Error| DevClusterError::Io {
        context: "installing a signal handler".to_owned(),
        source: e,
    };
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(io)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(io)?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            _ = hangup.recv() => return Ok(()),
            _ = tick.tick() => plane.check_running()?,
        }
    }
}

/// Quotes a path for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
