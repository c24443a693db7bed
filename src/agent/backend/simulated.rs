//! The simulated backend of a real agent process (`patchwave-agent run --backend simulated`):
//! a package database in a JSON file, with the failure and duration injection of the simulated
//! fleet, for the demo, tests and benchmarks of the agent itself.
//!
//! - The database (`simulated-packages.json` in the state directory) holds what is installed,
//!   what is available, and what each install replaced (so a rollback can return to it). The
//!   agent seeds it on first start from the config's `simulated.seedFile`, else from the
//!   Asset's `status.reported.availableUpdates` ([`SimulatedBackend::seed`]).
//! - Outcome and duration come from the Asset's annotations `simulate.patchwave.dev/outcome`
//!   and `simulate.patchwave.dev/duration`, read by [`crate::agent::simulated::behaviour`]
//!   (the agent loop passes them in with [`SimulatedBackend::set_behaviour`]). The duration
//!   is real time.
//! - An install or rollback changes the database at the midpoint of its duration, atomically:
//!   an agent killed before it leaves the old versions, after it the new ones, as a real
//!   package manager killed mid-way leaves one or the other.
//! - Every install and rollback call appends one line to `simulated-install.log` before it
//!   does anything, so tests can count calls.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Backend, BackendError, ChangeOutcome, Inventory};
use crate::agent::simulated::{Behaviour, DEFAULT_DURATION, FAILURE_MESSAGE, Outcome};
use crate::api::asset::{AvailableUpdate, OsFacts, UpdateRef};

/// The backend's name.
pub const NAME: &str = "simulated";
/// File name of the package database in the state directory.
pub const DATABASE_FILE: &str = "simulated-packages.json";
/// File name of the install log in the state directory.
pub const INSTALL_LOG_FILE: &str = "simulated-install.log";

/// The simulated machine's packages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Database {
    /// Installed packages: update id -> version.
    #[serde(default)]
    pub installed: BTreeMap<String, String>,
    /// Updates available and not installed.
    #[serde(default)]
    pub available: Vec<AvailableUpdate>,
    /// For each update installed by this backend: the version it replaced (None: it was not
    /// installed before). What a rollback returns to.
    #[serde(default)]
    pub previous: BTreeMap<String, Option<String>>,
    /// An installed update needs a reboot that has not happened yet.
    #[serde(default)]
    pub reboot_pending: bool,
}

/// The simulated backend over a state directory.
#[derive(Debug)]
pub struct SimulatedBackend {
    database: PathBuf,
    log: PathBuf,
    /// From the Asset's annotations; an error fails every install with its message.
    behaviour: Mutex<Result<Behaviour, String>>,
}

impl SimulatedBackend {
    /// The backend keeping its files in `state_dir` (nothing is read or written yet).
    pub fn new(state_dir: &Path) -> SimulatedBackend {
        SimulatedBackend {
            database: state_dir.join(DATABASE_FILE),
            log: state_dir.join(INSTALL_LOG_FILE),
            behaviour: Mutex::new(Ok(Behaviour {
                outcome: Outcome::Succeeded,
                duration: DEFAULT_DURATION,
            })),
        }
    }

    /// The package database file.
    pub fn database_path(&self) -> &Path {
        &self.database
    }

    /// The install log file.
    pub fn install_log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the database exists (else the agent seeds it).
    pub fn has_database(&self) -> bool {
        self.database.exists()
    }

    /// Writes a fresh database with `available` (each update's `installedVersion` counts as
    /// installed).
    pub fn seed(&self, available: Vec<AvailableUpdate>) -> Result<(), BackendError> {
        let mut database = Database::default();
        for update in &available {
            if let Some(version) = &update.installed_version {
                database
                    .installed
                    .insert(update.id.clone(), version.clone());
            }
        }
        database.available = available;
        self.write(&database)
    }

    /// Reads a seed file: a YAML (or JSON) list of available updates, as in
    /// `status.reported.availableUpdates`.
    pub fn read_seed_file(path: &Path) -> Result<Vec<AvailableUpdate>, BackendError> {
        let unavailable = |reason: String| BackendError::Unavailable {
            backend: NAME,
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            unavailable(format!(
                "cannot read the seed file {} (simulated.seedFile): {e}",
                path.display()
            ))
        })?;
        serde_yaml::from_str(&text).map_err(|e| {
            unavailable(format!(
                "the seed file {} (simulated.seedFile) is not a list of updates: {e}",
                path.display()
            ))
        })
    }

    /// Sets what installs do, from the Asset's annotations (see
    /// [`crate::agent::simulated::behaviour`]).
    pub fn set_behaviour(&self, behaviour: Result<Behaviour, String>) {
        *self.behaviour.lock().unwrap_or_else(|p| p.into_inner()) = behaviour;
    }

    /// The simulated machine rebooted (the agent ran its reboot command): nothing is
    /// pending any more.
    pub fn mark_rebooted(&self) -> Result<(), BackendError> {
        let mut database = self.read()?;
        database.reboot_pending = false;
        self.write(&database)
    }

    /// The current database.
    pub fn read(&self) -> Result<Database, BackendError> {
        let text =
            std::fs::read_to_string(&self.database).map_err(|e| BackendError::Unavailable {
                backend: NAME,
                reason: format!(
                    "cannot read the package database {}: {e}",
                    self.database.display()
                ),
            })?;
        serde_json::from_str(&text).map_err(|e| BackendError::Parse {
            backend: NAME,
            command: format!("read {}", self.database.display()),
            line: e.line(),
            message: e.to_string(),
        })
    }

    /// Replaces the database atomically (a temporary file renamed over it).
    fn write(&self, database: &Database) -> Result<(), BackendError> {
        let failed = |e: std::io::Error| BackendError::Unavailable {
            backend: NAME,
            reason: format!(
                "cannot write the package database {}: {e}",
                self.database.display()
            ),
        };
        let text =
            serde_json::to_string_pretty(database).map_err(|e| failed(std::io::Error::other(e)))?;
        if let Some(dir) = self.database.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        crate::agent::files::replace_file(&self.database, text.as_bytes()).map_err(failed)
    }

    /// Appends one line to the install log, on disk before the call goes on.
    fn log_call(&self, action: &str, updates: &[UpdateRef]) -> Result<(), BackendError> {
        let line = format!(
            "{} {action} {}\n",
            jiff::Timestamp::now()
                .round(jiff::Unit::Millisecond)
                .unwrap_or_default(),
            describe_all(updates, " ")
        );
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_data()))
            .map_err(|e| BackendError::Unavailable {
                backend: NAME,
                reason: format!("cannot write the install log {}: {e}", self.log.display()),
            })
    }

    /// Waits the first half of the duration, applies `change`, waits the second half; or
    /// fails (or hangs) as the behaviour says.
    fn change(
        &self,
        command: String,
        change: impl Fn(&mut Database) -> Result<ChangeOutcome, BackendError>,
    ) -> Result<ChangeOutcome, BackendError> {
        let behaviour = self
            .behaviour
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let behaviour = behaviour.map_err(|message| BackendError::Failed {
            backend: NAME,
            command: command.clone(),
            status: "status 2".to_owned(),
            excerpt: message,
        })?;
        let total = Duration::try_from(behaviour.duration).unwrap_or(Duration::ZERO);
        match behaviour.outcome {
            Outcome::Succeeded => {}
            Outcome::Failed => {
                std::thread::sleep(total);
                return Err(BackendError::Failed {
                    backend: NAME,
                    command,
                    status: "status 1".to_owned(),
                    excerpt: FAILURE_MESSAGE.to_owned(),
                });
            }
            Outcome::NoResponse => loop {
                // A hung package manager: the operator's timeout has to catch it.
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
        // Checked before waiting, as package managers resolve before they download.
        let mut database = self.read()?;
        let mut trial = database.clone();
        change(&mut trial)?;
        std::thread::sleep(total / 2);
        // Re-read: nothing else writes it, but the change must apply to what is on disk.
        database = self.read()?;
        let outcome = change(&mut database)?;
        self.write(&database)?;
        std::thread::sleep(total - total / 2);
        Ok(outcome)
    }
}

fn describe(update: &UpdateRef) -> String {
    match &update.version {
        Some(version) => format!("{}={version}", update.id),
        None => update.id.clone(),
    }
}

/// `describe` of each update, joined by `separator`.
fn describe_all(updates: &[UpdateRef], separator: &str) -> String {
    updates
        .iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join(separator)
}

fn command_line(action: &str, updates: &[UpdateRef]) -> String {
    format!("simulated {action} {}", describe_all(updates, " "))
}

impl Backend for SimulatedBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inventory(&self) -> Result<Inventory, BackendError> {
        let database = self.read()?;
        Ok(Inventory {
            os: OsFacts {
                name: Some("patchwave simulated OS".to_owned()),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                kernel: None,
                architecture: Some(std::env::consts::ARCH.to_owned()),
                hostname: std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty()),
            },
            available: database.available,
            reboot_pending: database.reboot_pending,
        })
    }

    fn install(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        self.log_call("install", updates)?;
        let command = command_line("install", updates);
        self.change(command, |database| {
            let mut outcome = ChangeOutcome::default();
            let mut missing = Vec::new();
            let mut positions = Vec::new();
            for wanted in updates {
                let found = database.available.iter().position(|u| {
                    u.id == wanted.id && (wanted.version.is_none() || u.version == wanted.version)
                });
                match found {
                    Some(position) => positions.push(position),
                    None => missing.push(describe(wanted)),
                }
            }
            if !missing.is_empty() {
                return Err(BackendError::Unsatisfiable {
                    backend: NAME,
                    message: format!(
                        "not available at the listed version: {}",
                        missing.join(", ")
                    ),
                });
            }
            positions.sort_unstable();
            for position in positions.into_iter().rev() {
                let update = database.available.remove(position);
                let version = update.version.clone().unwrap_or_default();
                let replaced = database
                    .installed
                    .insert(update.id.clone(), version.clone());
                database.previous.insert(update.id.clone(), replaced);
                outcome.reboot_required |= update.reboot_required;
                database.reboot_pending |= update.reboot_required;
                outcome.installed.push(UpdateRef {
                    id: update.id,
                    version: Some(version),
                });
            }
            outcome.installed.sort();
            outcome.log_excerpt = format!(
                "simulated: installed {}",
                describe_all(&outcome.installed, ", ")
            );
            Ok(outcome)
        })
    }

    fn rollback(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        self.log_call("rollback", updates)?;
        let command = command_line("rollback", updates);
        self.change(command, |database| {
            let mut outcome = ChangeOutcome::default();
            let missing: Vec<String> = updates
                .iter()
                .filter(|u| !database.previous.contains_key(&u.id))
                .map(describe)
                .collect();
            if !missing.is_empty() {
                return Err(BackendError::Unsatisfiable {
                    backend: NAME,
                    message: format!(
                        "no earlier version recorded to roll back to: {}",
                        missing.join(", ")
                    ),
                });
            }
            for wanted in updates {
                let Some(previous) = database.previous.remove(&wanted.id) else {
                    continue;
                };
                let current = database.installed.remove(&wanted.id);
                if let Some(version) = &previous {
                    database
                        .installed
                        .insert(wanted.id.clone(), version.clone());
                }
                // The update is available again, at the version it had installed.
                database.available.push(AvailableUpdate {
                    id: wanted.id.clone(),
                    version: current,
                    installed_version: previous.clone(),
                    ..AvailableUpdate::default()
                });
                outcome.installed.push(UpdateRef {
                    id: wanted.id.clone(),
                    version: previous,
                });
            }
            outcome.log_excerpt = format!(
                "simulated: rolled back {}",
                describe_all(&outcome.installed, ", ")
            );
            Ok(outcome)
        })
    }

    fn installed_versions(
        &self,
        updates: &[UpdateRef],
    ) -> Result<Vec<(UpdateRef, Option<String>)>, BackendError> {
        let database = self.read()?;
        Ok(updates
            .iter()
            .map(|u| (u.clone(), database.installed.get(&u.id).cloned()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn update(id: &str, version: &str, installed: Option<&str>) -> AvailableUpdate {
        AvailableUpdate {
            id: id.to_owned(),
            version: Some(version.to_owned()),
            installed_version: installed.map(str::to_owned),
            reboot_required: id == "kernel",
            ..AvailableUpdate::default()
        }
    }

    fn wanted(id: &str, version: &str) -> UpdateRef {
        UpdateRef {
            id: id.to_owned(),
            version: Some(version.to_owned()),
        }
    }

    fn backend(dir: &Path) -> SimulatedBackend {
        let backend = SimulatedBackend::new(dir);
        backend.set_behaviour(Ok(Behaviour {
            outcome: Outcome::Succeeded,
            duration: SignedDuration::ZERO,
        }));
        backend
            .seed(vec![
                update("openssl", "3.0.15", Some("3.0.14")),
                update("kernel", "6.1.2", Some("6.1.1")),
                update("curl", "8.11.1", None),
            ])
            .expect("seed");
        backend
    }

    fn log_lines(backend: &SimulatedBackend) -> usize {
        std::fs::read_to_string(backend.install_log_path())
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    #[test]
    fn install_then_rollback_round_trips_the_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = backend(dir.path());
        let asked = [wanted("openssl", "3.0.15"), wanted("kernel", "6.1.2")];
        let before = backend.installed_versions(&asked).expect("versions");
        assert_eq!(before[0].1.as_deref(), Some("3.0.14"));

        let outcome = backend.install(&asked).expect("install");
        assert!(outcome.reboot_required);
        assert!(backend.inventory().expect("inventory").reboot_pending);
        backend.mark_rebooted().expect("reboot");
        assert!(!backend.inventory().expect("inventory").reboot_pending);
        assert_eq!(
            outcome.installed,
            [wanted("kernel", "6.1.2"), wanted("openssl", "3.0.15")]
        );
        let inventory = backend.inventory().expect("inventory");
        let ids: Vec<&str> = inventory.available.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["curl"]);
        let after = backend.installed_versions(&asked).expect("versions");
        assert_eq!(after[0].1.as_deref(), Some("3.0.15"));

        let rolled = backend
            .rollback(&[wanted("openssl", "3.0.15")])
            .expect("rollback");
        assert_eq!(rolled.installed, [wanted("openssl", "3.0.14")]);
        let versions = backend.installed_versions(&asked).expect("versions");
        assert_eq!(versions[0].1.as_deref(), Some("3.0.14"));
        assert_eq!(versions[1].1.as_deref(), Some("6.1.2"));
        assert!(
            backend
                .inventory()
                .expect("inventory")
                .available
                .iter()
                .any(|u| u.id == "openssl" && u.version.as_deref() == Some("3.0.15"))
        );
        assert_eq!(log_lines(&backend), 2);
    }

    #[test]
    fn an_unavailable_version_changes_nothing_and_names_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = backend(dir.path());
        let before = backend.read().expect("db");
        let err = backend
            .install(&[wanted("openssl", "3.0.15"), wanted("openssl-x", "9")])
            .expect_err("unsatisfiable")
            .to_string();
        assert!(err.contains("openssl-x=9"), "{err}");
        assert_eq!(backend.read().expect("db"), before);
        let err = backend
            .rollback(&[wanted("curl", "8.11.1")])
            .expect_err("nothing to roll back")
            .to_string();
        assert!(err.contains("curl"), "{err}");
        assert_eq!(log_lines(&backend), 2);
    }

    #[test]
    fn injected_failure_and_bad_annotations_fail_without_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = backend(dir.path());
        let before = backend.read().expect("db");
        backend.set_behaviour(Ok(Behaviour {
            outcome: Outcome::Failed,
            duration: SignedDuration::ZERO,
        }));
        let err = backend
            .install(&[wanted("openssl", "3.0.15")])
            .expect_err("injected failure")
            .to_string();
        assert!(err.contains(FAILURE_MESSAGE), "{err}");
        backend.set_behaviour(Err("annotation broken".to_owned()));
        let err = backend
            .install(&[wanted("openssl", "3.0.15")])
            .expect_err("bad annotation")
            .to_string();
        assert!(err.contains("annotation broken"), "{err}");
        assert_eq!(backend.read().expect("db"), before);
    }

    #[test]
    fn the_database_changes_at_the_midpoint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend = std::sync::Arc::new(backend(dir.path()));
        backend.set_behaviour(Ok(Behaviour {
            outcome: Outcome::Succeeded,
            duration: SignedDuration::from_millis(1200),
        }));
        let installing = {
            let backend = backend.clone();
            std::thread::spawn(move || backend.install(&[wanted("curl", "8.11.1")]))
        };
        let curl = || {
            backend
                .installed_versions(&[wanted("curl", "8.11.1")])
                .expect("versions")[0]
                .1
                .clone()
        };
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(curl(), None, "changed before the midpoint");
        // Polled rather than read at a fixed time, so a busy machine that starts the install
        // late does not fail the test: the new version must show while the install runs.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let seen_while_installing = loop {
            let finished = installing.is_finished();
            if curl().is_some() {
                break !finished;
            }
            if finished || std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            seen_while_installing,
            "the new version did not show before the install returned"
        );
        installing.join().expect("thread").expect("install");
        assert_eq!(curl().as_deref(), Some("8.11.1"));
    }
}
