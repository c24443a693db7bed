//! The agent's local configuration file (`--config`): the hook allowlist, reboots and the
//! simulated backend's seed. It lives on the machine, owned by its administrator; nothing in
//! it comes from the cluster, so a policy can name a hook but never say what it runs.
//!
//! ```yaml
//! hooks:
//!   stop-app:                    # the name a PatchPolicy's hooks refer to
//!     path: /usr/local/lib/patchwave/stop-app.sh   # absolute path of an executable
//!     timeout: 5m                # default 10m
//!   app-health:
//!     path: /usr/local/lib/patchwave/app-health.sh
//! reboot:
//!   enabled: true                # default false: the agent reports rebootPending instead
//!   command: [/usr/bin/systemctl, reboot]   # default per OS
//!   waitForRestart: 10m          # how long to wait for the machine to go down (default 10m)
//! simulated:
//!   seedFile: /etc/patchwave/updates.yaml   # the simulated backend's first package database
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::engine::duration::parse_duration;

/// Default time a hook may run.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default time the agent waits for the machine to go down after the reboot command.
pub const DEFAULT_WAIT_FOR_RESTART: Duration = Duration::from_secs(10 * 60);

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    hooks: BTreeMap<String, RawHook>,
    #[serde(default)]
    reboot: RawReboot,
    #[serde(default)]
    simulated: RawSimulated,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawHook {
    path: PathBuf,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawReboot {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    wait_for_restart: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSimulated {
    #[serde(default)]
    seed_file: Option<PathBuf>,
}

/// One allowlisted hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookConfig {
    /// Absolute path of the executable.
    pub path: PathBuf,
    /// How long it may run before it is killed and counts as failed.
    pub timeout: Duration,
}

/// How the agent reboots the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebootConfig {
    /// Whether the agent may reboot at all. Off: it reports `rebootPending` instead.
    pub enabled: bool,
    /// The command, program first.
    pub command: Vec<String>,
    /// How long to wait after the command for the machine to go down before going on.
    pub wait_for_restart: Duration,
}

impl Default for RebootConfig {
    fn default() -> Self {
        RebootConfig {
            enabled: false,
            command: default_reboot_command(),
            wait_for_restart: DEFAULT_WAIT_FOR_RESTART,
        }
    }
}

/// The reboot command of this OS.
pub fn default_reboot_command() -> Vec<String> {
    let words: &[&str] = if cfg!(target_os = "windows") {
        &[
            "shutdown.exe",
            "/r",
            "/t",
            "60",
            "/c",
            "patchwave: reboot after updates",
        ]
    } else {
        // Linux and macOS: a minute's notice for logged-in users.
        &[
            "/sbin/shutdown",
            "-r",
            "+1",
            "patchwave: reboot after updates",
        ]
    };
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The agent's local configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentConfig {
    /// The file it was read from (named in messages), if any.
    pub source: Option<PathBuf>,
    /// The hook allowlist: name -> executable.
    pub hooks: BTreeMap<String, HookConfig>,
    /// Reboots.
    pub reboot: RebootConfig,
    /// The simulated backend's seed database (YAML or JSON list of available updates).
    pub simulated_seed_file: Option<PathBuf>,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("agent config {path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the field.
    pub message: String,
}

impl AgentConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        AgentConfig::parse(&text, path)
    }

    /// Parses and checks `text`, the contents of `path`.
    pub fn parse(text: &str, path: &Path) -> Result<AgentConfig, ConfigError> {
        let error = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| error(e.to_string()))?
        };
        let mut hooks = BTreeMap::new();
        for (name, hook) in raw.hooks {
            if !hook.path.is_absolute() {
                return Err(error(format!(
                    "hooks.{name}.path: {} is not an absolute path",
                    hook.path.display()
                )));
            }
            let timeout = match &hook.timeout {
                None => DEFAULT_HOOK_TIMEOUT,
                Some(text) => {
                    positive(text).map_err(|m| error(format!("hooks.{name}.timeout: {m}")))?
                }
            };
            hooks.insert(
                name,
                HookConfig {
                    path: hook.path,
                    timeout,
                },
            );
        }
        let command = match raw.reboot.command {
            None => default_reboot_command(),
            Some(command) if command.first().is_none_or(|p| p.trim().is_empty()) => {
                return Err(error(
                    "reboot.command: must name a program (a list: program, then arguments)"
                        .to_owned(),
                ));
            }
            Some(command) => command,
        };
        let wait_for_restart = match &raw.reboot.wait_for_restart {
            None => DEFAULT_WAIT_FOR_RESTART,
            Some(text) => parse_duration(text)
                .ok()
                .and_then(|d| Duration::try_from(d).ok())
                .ok_or_else(|| {
                    error(format!(
                        "reboot.waitForRestart: \"{text}\" is not a duration such as 0s or 10m"
                    ))
                })?,
        };
        Ok(AgentConfig {
            source: Some(path.to_path_buf()),
            hooks,
            reboot: RebootConfig {
                enabled: raw.reboot.enabled,
                command,
                wait_for_restart,
            },
            simulated_seed_file: raw.simulated.seed_file,
        })
    }

    /// The config file's name for messages ("no --config file" without one).
    pub fn describe_source(&self) -> String {
        match &self.source {
            Some(path) => format!("the agent config {}", path.display()),
            None => "the agent config (none given: start the agent with --config FILE)".to_owned(),
        }
    }
}

fn positive(text: &str) -> Result<Duration, String> {
    match parse_duration(text).map(Duration::try_from) {
        Ok(Ok(d)) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "\"{text}\" is not a positive duration such as 30s or 5m"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_reads_with_defaults_filled_in() {
        let text = "
hooks:
  stop-app: {path: /opt/stop.sh, timeout: 30s}
  health: {path: /opt/health.sh}
reboot:
  enabled: true
  command: [/bin/touch, /tmp/rebooted]
  waitForRestart: 0s
simulated:
  seedFile: /etc/seed.yaml
";
        let config = AgentConfig::parse(text, Path::new("/etc/agent.yaml")).expect("valid");
        assert_eq!(
            config.hooks["stop-app"],
            HookConfig {
                path: "/opt/stop.sh".into(),
                timeout: Duration::from_secs(30)
            }
        );
        assert_eq!(config.hooks["health"].timeout, DEFAULT_HOOK_TIMEOUT);
        assert!(config.reboot.enabled);
        assert_eq!(config.reboot.command, ["/bin/touch", "/tmp/rebooted"]);
        assert_eq!(config.reboot.wait_for_restart, Duration::ZERO);
        assert_eq!(config.simulated_seed_file, Some("/etc/seed.yaml".into()));

        let empty = AgentConfig::parse("", Path::new("/etc/agent.yaml")).expect("empty is valid");
        assert!(!empty.reboot.enabled);
        assert_eq!(empty.reboot.command, default_reboot_command());
    }

    #[test]
    fn mistakes_name_the_file_and_field() {
        let cases = [
            ("hooks:\n  x: {path: relative.sh}\n", "hooks.x.path"),
            (
                "hooks:\n  x: {path: /a, timeout: soon}\n",
                "hooks.x.timeout",
            ),
            ("reboot:\n  command: []\n", "reboot.command"),
            (
                "reboot:\n  waitForRestart: later\n",
                "reboot.waitForRestart",
            ),
            ("reboot:\n  enable: true\n", "enable"),
        ];
        for (text, field) in cases {
            let err = AgentConfig::parse(text, Path::new("/etc/agent.yaml"))
                .expect_err(text)
                .to_string();
            assert!(err.contains("/etc/agent.yaml"), "{err}");
            assert!(err.contains(field), "{text}: {err}");
        }
    }
}
