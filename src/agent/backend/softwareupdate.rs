//! macOS: `softwareupdate` and `sw_vers`.
//!
//! `softwareupdate --list` prints one entry per update (macOS 10.15 and later):
//!
//! ```text
//! * Label: macOS Sonoma 14.6.1-23G93
//!     Title: macOS Sonoma 14.6.1, Version: 14.6.1, Size: 1216836KiB, Recommended: YES, Action: restart,
//! ```
//!
//! The detail line starts with a tab. The parser reads it by position as well as by key
//! (title first, version second), so translated keys do not break it. Installs are `softwareupdate --install LABEL`. Apple
//! offers no way back to an older version: a rollback is always
//! [`BackendError::Unsatisfiable`].

use std::sync::Arc;

use super::command::{Tool, tail_chars};
use super::{Backend, BackendError, ChangeOutcome, CommandRunner, Inventory};
use crate::api::asset::{AvailableUpdate, OsFacts, UpdateRef};
use crate::api::common::{Classification, Severity};

/// Backend name.
pub const NAME: &str = "softwareupdate";

const ENV: [(&str, &str); 1] = [("LC_ALL", "C")];

/// The softwareupdate backend.
pub struct SoftwareUpdateBackend {
    runner: Arc<dyn CommandRunner>,
}

/// One entry of `softwareupdate --list`.
#[derive(Debug, Clone, PartialEq, Default)]
struct Listed {
    label: String,
    title: Option<String>,
    version: Option<String>,
    recommended: bool,
    restart: bool,
}

impl SoftwareUpdateBackend {
    /// A softwareupdate backend.
    pub fn new(runner: Arc<dyn CommandRunner>) -> Self {
        Self { runner }
    }

    fn tool(&self) -> Tool<'_> {
        Tool {
            backend: NAME,
            runner: self.runner.as_ref(),
        }
    }

    fn list(&self) -> Result<Vec<Listed>, BackendError> {
        let args = ["--list"];
        let tool = self.tool();
        let output = tool.run_ok("softwareupdate", &args, &ENV)?;
        parse_list(&output.stdout)
            .map_err(|(line, message)| tool.parse_error("softwareupdate", &args, line, message))
    }

    fn os_facts(&self) -> Result<OsFacts, BackendError> {
        let tool = self.tool();
        let output = tool.run_ok("sw_vers", &[], &ENV)?;
        let mut facts = OsFacts::default();
        for line in output.stdout.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().to_string();
            match key.trim() {
                "ProductName" => facts.name = Some(value),
                "ProductVersion" => facts.version = Some(value),
                _ => {}
            }
        }
        if facts.version.is_none() {
            return Err(tool.parse_error(
                "sw_vers",
                &[],
                1,
                format!("no ProductVersion line in {:?}", output.stdout.trim()),
            ));
        }
        tool.fill_uname(&mut facts)?;
        Ok(facts)
    }
}

impl Backend for SoftwareUpdateBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inventory(&self) -> Result<Inventory, BackendError> {
        let os = self.os_facts()?;
        let major = os
            .version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .unwrap_or("")
            .to_string();
        let available = self
            .list()?
            .into_iter()
            .map(|entry| to_update(entry, &major))
            .collect();
        Ok(Inventory {
            os,
            available,
            // macOS keeps no "reboot pending" flag a tool can read.
            reboot_pending: false,
        })
    }

    fn install(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        if updates.is_empty() {
            return Ok(ChangeOutcome::default());
        }
        let listed = self.list()?;
        let mut wanted = Vec::new();
        for update in updates {
            let Some(entry) = listed.iter().find(|l| l.label == update.id) else {
                return Err(BackendError::Unsatisfiable {
                    backend: NAME,
                    message: format!(
                        "softwareupdate --list does not offer {:?} on this Mac; nothing installed",
                        update.id
                    ),
                });
            };
            if let (Some(asked), Some(offered)) = (&update.version, &entry.version) {
                if !asked.is_empty() && asked != offered {
                    return Err(BackendError::Unsatisfiable {
                        backend: NAME,
                        message: format!(
                            "{} is offered at version {offered}, not {asked}; nothing installed",
                            update.id
                        ),
                    });
                }
            }
            wanted.push(entry);
        }
        let tool = self.tool();
        let mut log = Vec::new();
        for entry in &wanted {
            let args = ["--install", entry.label.as_str()];
            let output = tool.run_ok("softwareupdate", &args, &ENV)?;
            log.push(tail_chars(output.stdout.trim(), 120));
        }
        Ok(ChangeOutcome {
            installed: updates
                .iter()
                .map(|u| UpdateRef {
                    id: u.id.clone(),
                    version: wanted
                        .iter()
                        .find(|e| e.label == u.id)
                        .and_then(|e| e.version.clone()),
                })
                .collect(),
            reboot_required: wanted.iter().any(|e| e.restart),
            log_excerpt: tail_chars(&log.join("\n"), super::command::EXCERPT_CHARS),
        })
    }

    fn rollback(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        let names: Vec<&str> = updates.iter().map(|u| u.id.as_str()).collect();
        Err(BackendError::Unsatisfiable {
            backend: NAME,
            message: format!(
                "cannot roll back {}: macOS software updates cannot be uninstalled \
                 (restore from a Time Machine backup or reinstall macOS)",
                names.join(", ")
            ),
        })
    }

    /// An update is installed once softwareupdate stops offering its label; it then reports
    /// the operation's version. A label still offered reports None.
    fn installed_versions(
        &self,
        updates: &[UpdateRef],
    ) -> Result<Vec<(UpdateRef, Option<String>)>, BackendError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let listed = self.list()?;
        Ok(updates
            .iter()
            .map(|update| {
                let offered = listed.iter().any(|l| l.label == update.id);
                let version = (!offered).then(|| update.version.clone().unwrap_or_default());
                (update.clone(), version)
            })
            .collect())
    }
}

/// Maps an entry onto an update: a macOS of another major version is a feature upgrade,
/// macOS point releases, Rapid Security Responses and Safari are security releases (Apple
/// publishes security content for each), XProtect/MRT/Gatekeeper data are definitions.
fn to_update(entry: Listed, current_major: &str) -> AvailableUpdate {
    let name = entry.title.clone().unwrap_or_else(|| entry.label.clone());
    let classification = if name.starts_with("macOS") || entry.label.starts_with("macOS") {
        let major = entry
            .version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .unwrap_or("");
        if !current_major.is_empty() && !major.is_empty() && major != current_major {
            Classification::FeatureUpgrade
        } else {
            Classification::Security
        }
    } else if name.contains("Security Response") || name.starts_with("Safari") {
        Classification::Security
    } else if ["XProtect", "MRT", "Gatekeeper", "Background Task"]
        .iter()
        .any(|word| name.contains(word) || entry.label.contains(word))
    {
        Classification::Definition
    } else {
        Classification::Other
    };
    AvailableUpdate {
        id: entry.label.clone(),
        title: Some(tail_chars(&name, 250)),
        package: None,
        version: entry.version,
        installed_version: None,
        classification,
        severity: Severity::Unspecified,
        cves: Vec::new(),
        released_at: None,
        reboot_required: entry.restart,
    }
}

/// Entries of `softwareupdate --list`: `* Label: L` followed by an indented detail line of
/// `Key: value, ...` pairs. A detail line without its label line is a parse error.
fn parse_list(text: &str) -> Result<Vec<Listed>, (usize, String)> {
    let mut entries: Vec<Listed> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("* ") {
            // "Label: X" (the key may be translated: take what follows the first ": ").
            let label = rest.split_once(": ").map(|(_, l)| l).unwrap_or(rest).trim();
            if label.is_empty() {
                return Err((index + 1, "an entry without a label".to_string()));
            }
            entries.push(Listed {
                label: label.to_string(),
                ..Default::default()
            });
            continue;
        }
        if !line.starts_with('\t') || trimmed.is_empty() {
            continue;
        }
        let Some(entry) = entries.last_mut() else {
            return Err((
                index + 1,
                "a detail line before any `* Label:` line".to_string(),
            ));
        };
        let pairs: Vec<&str> = trimmed
            .split(", ")
            .map(|p| p.trim().trim_end_matches(','))
            .filter(|p| !p.is_empty())
            .collect();
        for (position, pair) in pairs.iter().enumerate() {
            let (key, value) = match pair.split_once(": ") {
                Some((key, value)) => (key.trim(), value.trim()),
                None => ("", pair.trim()),
            };
            match (key, position) {
                ("Title", _) | (_, 0) => entry.title = Some(value.to_string()),
                ("Version", _) | (_, 1) => entry.version = Some(value.to_string()),
                _ => {}
            }
            if key == "Recommended" || value.eq_ignore_ascii_case("YES") {
                entry.recommended = value.eq_ignore_ascii_case("YES");
            }
            if value.eq_ignore_ascii_case("restart") || value.eq_ignore_ascii_case("shut down") {
                entry.restart = true;
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_line_without_label_names_its_line() {
        let error = parse_list("Software Update Tool\n\n\tTitle: X, Version: 1,\n")
            .expect_err("orphan detail");
        assert_eq!(error.0, 3);
    }

    #[test]
    fn entries_are_read_by_position_when_keys_are_translated() {
        let text = "* Etikett: Safari17.6-17.6\n\tTitel: Safari, Version: 17.6, Größe: 155148KiB, Empfohlen: YES,\n";
        let entries = parse_list(text).expect("parses");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].label, "Safari17.6-17.6");
        assert_eq!(entries[0].title.as_deref(), Some("Safari"));
        assert_eq!(entries[0].version.as_deref(), Some("17.6"));
        assert!(entries[0].recommended);
        assert!(!entries[0].restart);
    }
}
