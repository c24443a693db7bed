//! Package backends: how the agent on a machine learns what is missing and installs it.
//!
//! Every backend implements [`Backend`]. Backends are synchronous (they run the platform's
//! tools and wait); the agent loop calls them on a blocking thread. Each one runs its tools
//! through a [`CommandRunner`], so tests feed it outputs recorded from the real tools
//! (`tests/fixtures/backends/`) and only the apt backend is tested against this machine.
//!
//! - [`apt`]: Debian and Ubuntu (apt-get, apt-cache, dpkg-query).
//! - [`dnf`]: RHEL, Fedora, Alma, Rocky (dnf or yum, rpm, needs-restarting).
//! - [`zypper`]: SUSE (zypper patches with category and severity).
//! - [`windows_update`]: Windows Update Agent API through PowerShell (KB ids, MSRC severity).
//! - [`softwareupdate`]: macOS `softwareupdate`.
//! - [`simulated`]: a package database in a file, with failure and duration injection, for
//!   the demo, tests and benchmarks.
//!
//! [`detect`] picks one for the machine; `patchwave-agent run --backend` overrides it.

pub mod apt;
pub mod command;
pub mod dnf;
pub mod simulated;
pub mod softwareupdate;
pub mod windows_update;
pub mod zypper;

use crate::api::asset::{AvailableUpdate, OsFacts, UpdateRef};

pub use command::{CommandOutput, CommandRunner, HostNamespaceRunner, SystemRunner};

/// What a backend found on the machine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    /// Facts about the operating system.
    pub os: OsFacts,
    /// Updates available and not installed, each with the version that would be installed and
    /// the version installed now (what a rollback returns to).
    pub available: Vec<AvailableUpdate>,
    /// true when the OS waits for a reboot to finish an earlier install.
    pub reboot_pending: bool,
}

/// What an install or rollback changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeOutcome {
    /// The versions now installed for the operation's updates (what the agent reports).
    pub installed: Vec<UpdateRef>,
    /// true when the change needs a reboot to take effect.
    pub reboot_required: bool,
    /// A short excerpt of the tool's output, for the operation's message.
    pub log_excerpt: String,
}

/// Why a backend could not do what was asked. Messages name the tool, the command and an
/// excerpt of its output, so the operation's message tells a person what to fix.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The tool could not be started at all (missing binary, permission).
    #[error("{backend}: cannot run `{command}`: {source}")]
    Spawn {
        /// Backend name.
        backend: &'static str,
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The tool ran and failed.
    #[error("{backend}: `{command}` exited with {status}: {excerpt}")]
    Failed {
        /// Backend name.
        backend: &'static str,
        /// The command line.
        command: String,
        /// Exit status, as text ("status 100", "signal 9").
        status: String,
        /// The end of stderr (or stdout), cut to a few hundred characters.
        excerpt: String,
    },
    /// The tool's output could not be understood.
    #[error("{backend}: cannot parse the output of `{command}` (line {line}): {message}")]
    Parse {
        /// Backend name.
        backend: &'static str,
        /// The command line.
        command: String,
        /// 1-based line of the output.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// The operation asked for something the machine cannot do (an update not available at
    /// the listed version, a rollback whose old version the archive no longer has).
    #[error("{backend}: {message}")]
    Unsatisfiable {
        /// Backend name.
        backend: &'static str,
        /// What is missing, naming the update and version.
        message: String,
    },
    /// The backend cannot run on this machine (wrong OS, tool absent).
    #[error("backend {backend} is not available here: {reason}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// Why.
        reason: String,
    },
}

/// A package backend. Implementations must be safe to call again after a crash: the agent's
/// journal calls [`Backend::installed_versions`] to learn the true outcome of an interrupted
/// operation instead of installing twice.
pub trait Backend: Send + Sync {
    /// Short name reported in `status.reported.backend`: apt, dnf, zypper, windows-update,
    /// softwareupdate or simulated.
    fn name(&self) -> &'static str;

    /// Lists OS facts, available updates and the reboot state.
    fn inventory(&self) -> Result<Inventory, BackendError>;

    /// Installs exactly `updates` at their listed versions (a missing version means "the one
    /// the update is", as for Windows KBs). Fails without changing anything when an update is
    /// not available at its version, where the tool allows checking first.
    fn install(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError>;

    /// Returns `updates` to the versions given (the versions installed before the rollout,
    /// which the agent looks up in its rollback points, `node::rollback`).
    fn rollback(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError>;

    /// The version installed now for each of `updates` (None: not installed). Read-only.
    fn installed_versions(
        &self,
        updates: &[UpdateRef],
    ) -> Result<Vec<(UpdateRef, Option<String>)>, BackendError>;

    /// [`Backend::installed_versions`] as the `installed` list of a report: each update at
    /// the version installed now (None: not installed).
    fn installed_now(&self, updates: &[UpdateRef]) -> Result<Vec<UpdateRef>, BackendError> {
        Ok(self
            .installed_versions(updates)?
            .into_iter()
            .map(|(update, version)| UpdateRef {
                id: update.id,
                version,
            })
            .collect())
    }
}

/// The backends `--backend` accepts.
pub const BACKEND_NAMES: [&str; 7] = [
    "auto",
    "apt",
    "dnf",
    "zypper",
    "windows-update",
    "softwareupdate",
    "simulated",
];

/// Picks the backend for this machine: Windows -> windows-update, macOS -> softwareupdate,
/// Linux by the package manager the runner finds (apt-get -> apt, dnf or yum -> dnf, zypper ->
/// zypper). With a runner in the host's namespaces the host's tools decide, not the image's.
pub fn detect(runner: &dyn CommandRunner) -> Result<&'static str, BackendError> {
    detect_for(std::env::consts::OS, runner)
}

/// [`detect`] for a given `std::env::consts::OS` value (tests check every platform here).
pub fn detect_for(os: &str, runner: &dyn CommandRunner) -> Result<&'static str, BackendError> {
    match os {
        "windows" => Ok(windows_update::NAME),
        "macos" => Ok(softwareupdate::NAME),
        "linux" => {
            let found = find_tools(runner, &["apt-get", "dnf", "yum", "zypper"])?;
            if found.contains(&"apt-get") {
                Ok(apt::NAME)
            } else if found.contains(&"dnf") || found.contains(&"yum") {
                Ok(dnf::NAME)
            } else if found.contains(&"zypper") {
                Ok(zypper::NAME)
            } else {
                Err(BackendError::Unavailable {
                    backend: "auto",
                    reason: "none of apt-get, dnf, yum or zypper is on the PATH (checked with \
                             `sh -c 'command -v ...'`); pass --backend to choose one"
                        .to_string(),
                })
            }
        }
        other => Err(BackendError::Unavailable {
            backend: "auto",
            reason: format!(
                "no package backend for the operating system {other:?}; supported: Linux (apt, \
                 dnf, zypper), Windows (windows-update), macOS (softwareupdate)"
            ),
        }),
    }
}

/// Which of `tools` the runner can find, through `sh -c 'command -v a b c'` (which prints
/// the path of every one it finds and exits non-zero when any is missing).
fn find_tools<'a>(
    runner: &dyn CommandRunner,
    tools: &[&'a str],
) -> Result<Vec<&'a str>, BackendError> {
    let script = format!("command -v {}", tools.join(" "));
    let args = ["-c", script.as_str()];
    let output = runner
        .run("sh", &args, &[])
        .map_err(|source| BackendError::Spawn {
            backend: "auto",
            command: command::command_line("sh", &args),
            source,
        })?;
    let found_paths: Vec<&str> = output.stdout.lines().map(str::trim).collect();
    Ok(tools
        .iter()
        .copied()
        .filter(|tool| {
            found_paths
                .iter()
                .any(|path| path.rsplit('/').next() == Some(*tool))
        })
        .collect())
}

/// Builds the backend called `name` (every name of [`BACKEND_NAMES`] but "auto" and
/// "simulated", which the agent loop builds itself). For "dnf", a machine with yum but no dnf
/// gets the backend driving yum.
pub fn by_name(
    name: &str,
    runner: std::sync::Arc<dyn CommandRunner>,
) -> Result<Box<dyn Backend>, BackendError> {
    match name {
        apt::NAME => Ok(Box::new(apt::AptBackend::new(runner))),
        dnf::NAME => {
            let found = find_tools(runner.as_ref(), &["dnf", "yum"])?;
            if !found.contains(&"dnf") && found.contains(&"yum") {
                Ok(Box::new(dnf::DnfBackend::with_yum(runner)))
            } else {
                Ok(Box::new(dnf::DnfBackend::new(runner)))
            }
        }
        zypper::NAME => Ok(Box::new(zypper::ZypperBackend::new(runner))),
        windows_update::NAME => Ok(Box::new(windows_update::WindowsUpdateBackend::new(runner))),
        softwareupdate::NAME => Ok(Box::new(softwareupdate::SoftwareUpdateBackend::new(runner))),
        "auto" | "simulated" => Err(BackendError::Unavailable {
            backend: "auto",
            reason: format!("backend {name:?} is built by the agent loop, not by backend::by_name"),
        }),
        other => Err(BackendError::Unavailable {
            backend: "auto",
            reason: format!(
                "unknown backend {other:?}; choose one of {}",
                BACKEND_NAMES.join(", ")
            ),
        }),
    }
}
