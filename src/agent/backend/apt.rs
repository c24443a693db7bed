//! Debian and Ubuntu: apt-get, apt-cache and dpkg-query.
//!
//! The inventory comes from `apt-get -s dist-upgrade`, a simulation that needs no root and
//! changes nothing (after `apt-get update`, unless [`AptConfig::refresh_lists`] is off): every `Inst pkg [old] (new Origin:release/suite [arch])` line is one
//! upgradable package with both versions. A package whose new version comes from a
//! `*-security` suite (Debian-Security, Ubuntu's `jammy-security`) is a security update.
//! Installs pin exact versions (`pkg=ver`) and are simulated first, so a version the archive
//! does not have fails before anything changes. A rollback checks `apt-cache madison` first:
//! apt can only return to a version some configured repository still offers.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::command::{Tool, tail_chars};
use super::{Backend, BackendError, ChangeOutcome, CommandRunner, Inventory};
use crate::api::asset::{AvailableUpdate, UpdateRef};
use crate::api::common::{Classification, Severity};

/// Backend name.
pub const NAME: &str = "apt";

/// Where Debian and Ubuntu note that an installed package wants a reboot.
pub const DEFAULT_REBOOT_REQUIRED_PATH: &str = "/var/run/reboot-required";

/// Environment for every apt command: untranslated output, no questions, no
/// needrestart dialogue, no changelog pager.
const APT_ENV: [(&str, &str); 4] = [
    ("LC_ALL", "C"),
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("NEEDRESTART_MODE", "a"),
    ("APT_LISTCHANGES_FRONTEND", "none"),
];

/// Packages whose new version only takes effect after a reboot (the kernel, the C library,
/// the init system and CPU microcode); Ubuntu's reboot-required hooks name the same ones.
const REBOOT_PACKAGE_PREFIXES: [&str; 8] = [
    "linux-image-",
    "linux-modules-",
    "linux-firmware",
    "libc6",
    "systemd",
    "dbus",
    "intel-microcode",
    "amd64-microcode",
];

/// Where the apt backend looks for machine state; paths are injectable for tests.
#[derive(Clone, Debug)]
pub struct AptConfig {
    /// The reboot marker file (default `/var/run/reboot-required`).
    pub reboot_required_path: String,
    /// The os-release file (default `/etc/os-release`).
    pub os_release_path: String,
    /// Run `apt-get update` before each inventory (default true), so new updates show up; the
    /// simulation itself only reads the package lists apt already has. Needs root.
    pub refresh_lists: bool,
}

impl Default for AptConfig {
    fn default() -> Self {
        Self {
            reboot_required_path: DEFAULT_REBOOT_REQUIRED_PATH.to_string(),
            os_release_path: "/etc/os-release".to_string(),
            refresh_lists: true,
        }
    }
}

/// The apt/dpkg backend.
pub struct AptBackend {
    runner: Arc<dyn CommandRunner>,
    config: AptConfig,
}

impl AptBackend {
    /// An apt backend with the default paths.
    pub fn new(runner: Arc<dyn CommandRunner>) -> Self {
        Self::with_config(runner, AptConfig::default())
    }

    /// An apt backend with explicit paths.
    pub fn with_config(runner: Arc<dyn CommandRunner>, config: AptConfig) -> Self {
        Self { runner, config }
    }

    fn tool(&self) -> Tool<'_> {
        Tool {
            backend: NAME,
            runner: self.runner.as_ref(),
        }
    }

    /// Simulates and then performs `apt-get install` of the pinned specs.
    fn apply(&self, specs: &[String], downgrade: bool) -> Result<ChangeOutcome, BackendError> {
        let tool = self.tool();
        let mut options: Vec<&str> = vec!["--no-install-recommends"];
        if downgrade {
            options.push("--allow-downgrades");
        }
        let mut simulate: Vec<&str> = vec!["-s", "install"];
        simulate.extend(options.iter().copied());
        simulate.extend(specs.iter().map(String::as_str));
        let check = tool.run_any("apt-get", &simulate, &APT_ENV)?;
        if !check.success() {
            return Err(BackendError::Unsatisfiable {
                backend: NAME,
                message: format!(
                    "apt-get cannot install {} (checked with `apt-get {}`, nothing changed): {}",
                    specs.join(" "),
                    simulate.join(" "),
                    super::command::excerpt(&check)
                ),
            });
        }
        let mut install: Vec<&str> = vec![
            "install",
            "-y",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ];
        install.extend(options.iter().copied());
        install.extend(specs.iter().map(String::as_str));
        let output = tool.run_ok("apt-get", &install, &APT_ENV)?;
        Ok(ChangeOutcome {
            installed: Vec::new(),
            reboot_required: tool.path_exists(&self.config.reboot_required_path)?,
            log_excerpt: tail_chars(output.stdout.trim(), super::command::EXCERPT_CHARS),
        })
    }

    /// Fills `outcome.installed` with what dpkg now says about `updates`.
    fn with_installed(
        &self,
        mut outcome: ChangeOutcome,
        updates: &[UpdateRef],
    ) -> Result<ChangeOutcome, BackendError> {
        outcome.installed = self.installed_now(updates)?;
        Ok(outcome)
    }
}

impl Backend for AptBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inventory(&self) -> Result<Inventory, BackendError> {
        let tool = self.tool();
        let os = tool.linux_os_facts(&self.config.os_release_path)?;
        if self.config.refresh_lists {
            // A mirror that cannot be reached must not hide what the lists already know.
            if let Err(error) = tool.run_ok("apt-get", &["-q", "update"], &APT_ENV) {
                tracing::warn!(%error, "apt: package lists not refreshed; reporting from the lists on disk");
            }
        }
        let args = ["-s", "dist-upgrade"];
        let output = tool.run_ok("apt-get", &args, &APT_ENV)?;
        let available = parse_simulation(&output.stdout)
            .map_err(|(line, message)| tool.parse_error("apt-get", &args, line, message))?;
        Ok(Inventory {
            os,
            available,
            reboot_pending: tool.path_exists(&self.config.reboot_required_path)?,
        })
    }

    fn install(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        if updates.is_empty() {
            return Ok(ChangeOutcome::default());
        }
        let specs: Vec<String> = updates.iter().map(pin).collect();
        let outcome = self.apply(&specs, false)?;
        self.with_installed(outcome, updates)
    }

    fn rollback(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        if updates.is_empty() {
            return Ok(ChangeOutcome::default());
        }
        let tool = self.tool();
        let mut args: Vec<&str> = vec!["madison"];
        args.extend(updates.iter().map(|u| u.id.as_str()));
        let madison = tool.run_ok("apt-cache", &args, &APT_ENV)?;
        let offered = parse_madison(&madison.stdout);
        let installed: BTreeMap<String, Option<String>> = self
            .installed_versions(updates)?
            .into_iter()
            .map(|(update, version)| (update.id, version))
            .collect();
        for update in updates {
            let Some(version) = &update.version else {
                return Err(BackendError::Unsatisfiable {
                    backend: NAME,
                    message: format!(
                        "cannot roll {} back: the operation names no version to return to",
                        update.id
                    ),
                });
            };
            let already = installed.get(&update.id).and_then(Option::as_ref) == Some(version);
            let versions = offered.get(&update.id).map(Vec::as_slice).unwrap_or(&[]);
            if !already && !versions.contains(version) {
                let have = if versions.is_empty() {
                    "no version at all".to_string()
                } else {
                    format!("only {}", versions.join(", "))
                };
                return Err(BackendError::Unsatisfiable {
                    backend: NAME,
                    message: format!(
                        "cannot roll {} back to {version}: the configured repositories offer {have} \
                         (apt-cache madison {}); nothing changed",
                        update.id, update.id
                    ),
                });
            }
        }
        let specs: Vec<String> = updates.iter().map(pin).collect();
        let outcome = self.apply(&specs, true)?;
        self.with_installed(outcome, updates)
    }

    fn installed_versions(
        &self,
        updates: &[UpdateRef],
    ) -> Result<Vec<(UpdateRef, Option<String>)>, BackendError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let tool = self.tool();
        let mut args: Vec<&str> = vec![
            "-W",
            "-f=${binary:Package}\\t${Package}\\t${Version}\\t${db:Status-Abbrev}\\n",
        ];
        args.extend(updates.iter().map(|u| u.id.as_str()));
        // Exit 1 only says that some name is not installed at all.
        let output = tool.run_expect("dpkg-query", &args, &APT_ENV, &[0, 1])?;
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        for (index, line) in output.stdout.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let [binary, package, version, status] = fields[..] else {
                return Err(tool.parse_error(
                    "dpkg-query",
                    &args,
                    index + 1,
                    format!("expected 4 tab-separated fields, got {line:?}"),
                ));
            };
            // "ii " is installed; "rc " (removed, config left) still prints a version.
            if !status.starts_with("ii") && !status.starts_with("hi") {
                continue;
            }
            for name in [binary, package] {
                found
                    .entry(name.to_string())
                    .or_insert_with(|| version.to_string());
            }
        }
        Ok(updates
            .iter()
            .map(|update| (update.clone(), found.get(&update.id).cloned()))
            .collect())
    }
}

/// `pkg=version`, or the bare name (the candidate) when no version is given.
fn pin(update: &UpdateRef) -> String {
    match &update.version {
        Some(version) if !version.is_empty() => format!("{}={version}", update.id),
        _ => update.id.clone(),
    }
}

/// One `Inst` line of an apt simulation.
#[derive(Debug, PartialEq)]
struct InstLine<'a> {
    package: &'a str,
    old: Option<&'a str>,
    new: &'a str,
    origins: Vec<&'a str>,
    arch: Option<&'a str>,
}

/// Parses an `Inst` line: `Inst pkg [old] (new Origin:release/suite, ... [arch]) [broken]`.
fn parse_inst_line(rest: &str) -> Result<InstLine<'_>, String> {
    let (package, rest) = rest
        .split_once(' ')
        .ok_or_else(|| "expected a package name and a version in parentheses".to_string())?;
    let rest = rest.trim_start();
    let (old, rest) = match rest.strip_prefix('[') {
        Some(bracketed) => {
            let (old, after) = bracketed
                .split_once(']')
                .ok_or_else(|| "the installed version in [...] is not closed".to_string())?;
            (Some(old), after.trim_start())
        }
        None => (None, rest),
    };
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.find(')').map(|end| &r[..end]))
        .ok_or_else(|| "expected the new version in parentheses".to_string())?;
    let (inner, arch) = match inner.rfind(" [") {
        Some(start) if inner.ends_with(']') => {
            (&inner[..start], Some(&inner[start + 2..inner.len() - 1]))
        }
        _ => (inner, None),
    };
    let (new, origins) = match inner.split_once(' ') {
        Some((new, origins)) => (new, origins.split(", ").map(str::trim).collect()),
        None => (inner, Vec::new()),
    };
    if new.is_empty() {
        return Err("the parentheses hold no version".to_string());
    }
    Ok(InstLine {
        package,
        old,
        new,
        origins,
        arch,
    })
}

/// The suite of an origin entry `Origin:release/suite` (`Debian-Security:12/oldstable-security`).
fn suite(origin: &str) -> &str {
    origin.rsplit('/').next().unwrap_or(origin)
}

/// Upgradable packages from `apt-get -s dist-upgrade` output. Only `Inst` lines with an
/// installed version are updates; packages newly pulled in come with them. The keyword lines
/// are not translated, so the same parser reads any locale. Errors carry the 1-based line.
fn parse_simulation(text: &str) -> Result<Vec<AvailableUpdate>, (usize, String)> {
    let mut updates = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("Inst ") else {
            continue;
        };
        let inst = parse_inst_line(rest).map_err(|message| (index + 1, message))?;
        let Some(old) = inst.old else {
            continue;
        };
        let security = inst
            .origins
            .iter()
            .any(|origin| suite(origin).ends_with("-security") || origin.contains("-Security:"));
        let backports = inst
            .origins
            .iter()
            .all(|origin| suite(origin).ends_with("-backports"))
            && !inst.origins.is_empty();
        let classification = if security {
            Classification::Security
        } else if backports {
            Classification::Enhancement
        } else {
            // Stable and -updates pockets take fixes only (Debian and Ubuntu policy).
            Classification::Bugfix
        };
        let suites: Vec<&str> = inst.origins.iter().map(|o| suite(o)).collect();
        let title = match inst.arch {
            Some(arch) => format!(
                "{} {} ({}, {arch})",
                inst.package,
                inst.new,
                suites.join(", ")
            ),
            None => format!("{} {} ({})", inst.package, inst.new, suites.join(", ")),
        };
        updates.push(AvailableUpdate {
            id: inst.package.to_string(),
            title: Some(title),
            package: Some(inst.package.to_string()),
            version: Some(inst.new.to_string()),
            installed_version: Some(old.to_string()),
            classification,
            severity: Severity::Unspecified,
            cves: Vec::new(),
            released_at: None,
            reboot_required: REBOOT_PACKAGE_PREFIXES
                .iter()
                .any(|prefix| inst.package.starts_with(prefix)),
        });
    }
    Ok(updates)
}

/// Versions per package offered by repositories, from `apt-cache madison` lines
/// `pkg | version | url suite/component arch Packages` (source lines are skipped).
fn parse_madison(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut offered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let [package, version, source] = fields[..] else {
            continue;
        };
        if source.ends_with("Sources") {
            continue;
        }
        let versions = offered.entry(package.to_string()).or_default();
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_string());
        }
    }
    offered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inst_lines_with_several_origins_and_broken_marker() {
        let line = "libgcrypt20-dev [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, \
                    Debian-Security:12/oldstable-security [amd64]) []";
        let inst = parse_inst_line(line).expect("parses");
        assert_eq!(inst.package, "libgcrypt20-dev");
        assert_eq!(inst.old, Some("1.10.1-3"));
        assert_eq!(inst.new, "1.10.1-3+deb12u1");
        assert_eq!(
            inst.origins,
            vec![
                "Debian:12.15/oldstable",
                "Debian-Security:12/oldstable-security"
            ]
        );
        assert_eq!(inst.arch, Some("amd64"));
    }

    #[test]
    fn ubuntu_security_pocket_is_security_and_epochs_survive() {
        let text = "Inst openssl [3.0.2-0ubuntu1.15] (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-updates, \
                    Ubuntu:22.04/jammy-security [amd64])\n\
                    Inst login [1:4.8.1-2ubuntu2.1] (1:4.8.1-2ubuntu2.2 Ubuntu:22.04/jammy-updates [amd64])\n\
                    Inst linux-image-generic [5.15.0.91.88] (5.15.0.94.91 Ubuntu:22.04/jammy-updates [amd64])\n";
        let updates = parse_simulation(text).expect("parses");
        assert_eq!(updates.len(), 3);
        assert_eq!(updates[0].classification, Classification::Security);
        assert_eq!(updates[1].classification, Classification::Bugfix);
        assert_eq!(updates[1].version.as_deref(), Some("1:4.8.1-2ubuntu2.2"));
        assert!(updates[2].reboot_required);
        assert!(!updates[0].reboot_required);
    }

    #[test]
    fn a_broken_inst_line_names_its_line() {
        let error = parse_simulation("Reading package lists...\nInst openssl [3.0.2\n")
            .expect_err("unclosed bracket");
        assert_eq!(error.0, 2);
    }

    #[test]
    fn madison_skips_source_lines() {
        let offered = parse_madison(
            "   openssl | 3.0.22-1~deb12u2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\n\
                openssl | 3.0.22-1~deb12u2 | http://deb.debian.org/debian-security bookworm-security/main Sources\n\
                openssl | 3.0.20-1~deb12u2 | http://deb.debian.org/debian bookworm/main amd64 Packages\n",
        );
        assert_eq!(
            offered.get("openssl").cloned().unwrap_or_default(),
            vec![
                "3.0.22-1~deb12u2".to_string(),
                "3.0.20-1~deb12u2".to_string()
            ]
        );
    }
}
