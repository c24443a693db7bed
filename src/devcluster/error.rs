//! Errors of the local control plane. Every message says what failed and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

/// Why the local control plane could not be built, started, stopped or reached.
#[derive(Debug, thiserror::Error)]
pub enum DevClusterError {
    /// `tests/controlplane/build.sh` could not be run at all.
    #[error(
        "could not run {script}: {source}. It needs bash; or build the binaries elsewhere and \
         set PATCHWAVE_CONTROLPLANE_BIN to the directory holding etcd, kube-apiserver and kubectl"
    )]
    BuildScript {
        /// The script that was run.
        script: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// `tests/controlplane/build.sh` ran and failed (Go missing, no module proxy, compile error).
    #[error(
        "building the control plane failed ({status}); {hint}. Last lines of its output:\n{log_tail}"
    )]
    BuildFailed {
        /// Exit status of the script.
        status: String,
        /// What to try.
        hint: &'static str,
        /// The last lines the script printed on stderr.
        log_tail: String,
    },

    /// A binary the control plane needs is not in the bin directory.
    #[error(
        "{name} not found at {path}. Run tests/controlplane/build.sh (it prints the directory), \
         or point PATCHWAVE_CONTROLPLANE_BIN at a directory holding etcd, kube-apiserver and kubectl"
    )]
    MissingBinary {
        /// Binary name.
        name: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Generating a key or certificate failed.
    #[error("generating {what} failed: {source}")]
    Certificate {
        /// Which key or certificate.
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },

    /// A server kept failing to bind its ports (another process took them between our pick and
    /// its bind).
    #[error(
        "{name} could not bind a free loopback port after {attempts} attempts; is something \
         grabbing ports on 127.0.0.1? Last lines of its log ({log}):\n{log_tail}"
    )]
    PortsInUse {
        /// Server name.
        name: &'static str,
        /// How many times ports were picked.
        attempts: u32,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        log_tail: String,
    },

    /// A server exited while starting or running.
    #[error("{name} exited ({status}). Last lines of its log ({log}):\n{log_tail}")]
    ProcessExited {
        /// Server name.
        name: &'static str,
        /// Exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        log_tail: String,
    },

    /// A server did not become ready in time.
    #[error(
        "{name} was not ready after {waited:?} (last check: {last_check}). The machine may be \
         overloaded; raise PATCHWAVE_CONTROLPLANE_START_TIMEOUT (seconds). Last lines of its \
         log ({log}):\n{log_tail}"
    )]
    NotReady {
        /// Server name.
        name: &'static str,
        /// How long we waited.
        waited: Duration,
        /// What the last readiness probe said.
        last_check: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        log_tail: String,
    },

    /// A kubectl command against the local control plane failed.
    #[error("{command} failed ({status}): {stderr}")]
    Kubectl {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// A kubeconfig could not be turned into a client configuration or written.
    #[error("kubeconfig for the local control plane is unusable: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),

    /// A kubeconfig could not be serialized.
    #[error("could not serialize the kubeconfig: {0}")]
    KubeconfigYaml(#[from] serde_yaml::Error),

    /// Building a Kubernetes client failed.
    #[error("could not build a Kubernetes client for the local control plane: {0}")]
    Client(#[from] kube::Error),

    /// A setting (environment variable or argument) is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl DevClusterError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn cert(what: impl Into<String>, source: rcgen::Error) -> Self {
        Self::Certificate {
            what: what.into(),
            source,
        }
    }
}
