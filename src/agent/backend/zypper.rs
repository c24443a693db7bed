//! SUSE (SLES, openSUSE Leap): zypper with `--xmlout`, rpm.
//!
//! SUSE ships fixes as patches with a category (security, recommended, optional, ...), a
//! severity and CVE references, so the inventory lists
//! - every needed patch from `zypper --xmlout list-patches` as an update with the id
//!   `patch:NAME` (the form `zypper install` takes), and
//! - every package update from `zypper --xmlout list-updates` (id = package name, with the new
//!   `edition` and the installed `edition-old`).
//!
//! The XML's element and attribute names are not translated, so the parser reads any locale.
//! Installs are `zypper --non-interactive install patch:NAME` or `name=version`; a rollback
//! installs the old package version with `--oldpackage` (patches cannot be taken back).

use std::sync::Arc;

use super::command::{Tool, excerpt, tail_chars};
use super::{Backend, BackendError, ChangeOutcome, CommandRunner, Inventory};
use crate::api::asset::{AvailableUpdate, UpdateRef};
use crate::api::common::{Classification, Severity, Time};

/// Backend name.
pub const NAME: &str = "zypper";

/// The id prefix zypper uses for patches (`zypper install patch:NAME`).
pub const PATCH_PREFIX: &str = "patch:";

const ZYPPER_ENV: [(&str, &str); 1] = [("LC_ALL", "C")];

/// zypper exit codes (zypper(8), EXIT CODES).
const EXIT_INF_UPDATE_NEEDED: i32 = 100;
const EXIT_INF_SEC_UPDATE_NEEDED: i32 = 101;
const EXIT_INF_REBOOT_NEEDED: i32 = 102;
const EXIT_INF_RESTART_NEEDED: i32 = 103;
const EXIT_INF_CAP_NOT_FOUND: i32 = 104;

/// Exit codes of a list command that still printed its list.
const LIST_OK: [i32; 3] = [0, EXIT_INF_UPDATE_NEEDED, EXIT_INF_SEC_UPDATE_NEEDED];

/// The zypper backend.
pub struct ZypperBackend {
    runner: Arc<dyn CommandRunner>,
    os_release_path: String,
}

impl ZypperBackend {
    /// A zypper backend reading `/etc/os-release`.
    pub fn new(runner: Arc<dyn CommandRunner>) -> Self {
        Self {
            runner,
            os_release_path: "/etc/os-release".to_string(),
        }
    }

    fn tool(&self) -> Tool<'_> {
        Tool {
            backend: NAME,
            runner: self.runner.as_ref(),
        }
    }

    /// Runs a zypper list command with `--xmlout` and parses its `<update>` elements.
    fn list(&self, args: &[&str]) -> Result<Vec<XmlUpdate>, BackendError> {
        let tool = self.tool();
        let output = tool.run_any("zypper", args, &ZYPPER_ENV)?;
        if !output.code.is_some_and(|code| LIST_OK.contains(&code)) {
            // With --xmlout the reason is in <message type="error"> elements, not on stderr.
            let failure = tool.failed("zypper", args, &output);
            return Err(match (failure, parse_updates_xml(&output.stdout)) {
                (
                    BackendError::Failed {
                        backend,
                        command,
                        status,
                        ..
                    },
                    Err((_, message)),
                ) => BackendError::Failed {
                    backend,
                    command,
                    status,
                    excerpt: tail_chars(&message, super::command::EXCERPT_CHARS),
                },
                (failure, _) => failure,
            });
        }
        parse_updates_xml(&output.stdout)
            .map_err(|(line, message)| tool.parse_error("zypper", args, line, message))
    }

    /// `zypper needs-rebooting` exits 102 when the machine waits for a reboot.
    fn reboot_pending(&self) -> Result<bool, BackendError> {
        let args = ["--non-interactive", "needs-rebooting"];
        let tool = self.tool();
        let output = tool.run_any("zypper", &args, &ZYPPER_ENV)?;
        match output.code {
            Some(0) => Ok(false),
            Some(EXIT_INF_REBOOT_NEEDED) => Ok(true),
            _ => Err(tool.failed("zypper", &args, &output)),
        }
    }

    fn apply(&self, updates: &[UpdateRef], rollback: bool) -> Result<ChangeOutcome, BackendError> {
        if updates.is_empty() {
            return Ok(ChangeOutcome::default());
        }
        let mut specs = Vec::with_capacity(updates.len());
        for update in updates {
            let is_patch = update.id.starts_with(PATCH_PREFIX);
            match (&update.version, is_patch, rollback) {
                (_, true, true) => {
                    return Err(BackendError::Unsatisfiable {
                        backend: NAME,
                        message: format!(
                            "cannot roll back {}: SUSE patches cannot be uninstalled; roll back \
                             the packages it updated instead",
                            update.id
                        ),
                    });
                }
                (_, true, false) => specs.push(update.id.clone()),
                (Some(version), false, _) if !version.is_empty() => {
                    specs.push(format!("{}={version}", update.id))
                }
                (_, false, true) => {
                    return Err(BackendError::Unsatisfiable {
                        backend: NAME,
                        message: format!(
                            "cannot roll {} back: the operation names no version to return to",
                            update.id
                        ),
                    });
                }
                (_, false, false) => specs.push(update.id.clone()),
            }
        }
        let mut args: Vec<&str> =
            vec!["--non-interactive", "install", "--auto-agree-with-licenses"];
        if rollback {
            args.push("--oldpackage");
        }
        args.extend(specs.iter().map(String::as_str));
        let tool = self.tool();
        let output = tool.run_any("zypper", &args, &ZYPPER_ENV)?;
        let reboot_from_exit = match output.code {
            Some(0) | Some(EXIT_INF_RESTART_NEEDED) => false,
            Some(EXIT_INF_REBOOT_NEEDED) => true,
            Some(EXIT_INF_CAP_NOT_FOUND) => {
                return Err(BackendError::Unsatisfiable {
                    backend: NAME,
                    message: format!(
                        "zypper found no {} in the repositories; nothing changed: {}",
                        specs.join(" "),
                        excerpt(&output)
                    ),
                });
            }
            _ => return Err(tool.failed("zypper", &args, &output)),
        };
        let installed = self.installed_now(updates)?;
        Ok(ChangeOutcome {
            installed,
            reboot_required: reboot_from_exit || self.reboot_pending()?,
            log_excerpt: tail_chars(output.stdout.trim(), super::command::EXCERPT_CHARS),
        })
    }
}

impl Backend for ZypperBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inventory(&self) -> Result<Inventory, BackendError> {
        let os = self.tool().linux_os_facts(&self.os_release_path)?;
        let patches = self.list(&["--non-interactive", "--xmlout", "list-patches"])?;
        let packages = self.list(&["--non-interactive", "--xmlout", "list-updates"])?;
        let mut available: Vec<AvailableUpdate> = patches
            .into_iter()
            .filter(|p| p.kind == "patch" && p.status.as_deref().is_none_or(|s| s == "needed"))
            .map(XmlUpdate::into_patch)
            .collect();
        available.extend(
            packages
                .into_iter()
                .filter(|p| p.kind == "package")
                .map(XmlUpdate::into_package),
        );
        Ok(Inventory {
            os,
            available,
            reboot_pending: self.reboot_pending()?,
        })
    }

    fn install(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        self.apply(updates, false)
    }

    fn rollback(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        self.apply(updates, true)
    }

    fn installed_versions(
        &self,
        updates: &[UpdateRef],
    ) -> Result<Vec<(UpdateRef, Option<String>)>, BackendError> {
        let tool = self.tool();
        let (patches, packages): (Vec<&UpdateRef>, Vec<&UpdateRef>) =
            updates.iter().partition(|u| u.id.starts_with(PATCH_PREFIX));
        let mut applied: Vec<XmlUpdate> = Vec::new();
        if !patches.is_empty() {
            applied = self.list(&["--non-interactive", "--xmlout", "list-patches", "--all"])?;
        }
        let mut rpm_found: std::collections::BTreeMap<String, String> = Default::default();
        if !packages.is_empty() {
            let mut args: Vec<&str> = vec![
                "-q",
                "--qf",
                "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n",
            ];
            args.extend(packages.iter().map(|u| u.id.as_str()));
            let output = tool.run_any("rpm", &args, &ZYPPER_ENV)?;
            if output.code.is_none() || (!output.success() && output.stdout.trim().is_empty()) {
                return Err(tool.failed("rpm", &args, &output));
            }
            for line in output.stdout.lines() {
                if let [name, version] = line.split_whitespace().collect::<Vec<_>>()[..] {
                    rpm_found.insert(name.to_string(), version.to_string());
                }
            }
        }
        Ok(updates
            .iter()
            .map(|update| {
                let version = match update.id.strip_prefix(PATCH_PREFIX) {
                    Some(name) => applied
                        .iter()
                        .find(|p| {
                            p.kind == "patch"
                                && p.name == name
                                && p.status.as_deref() == Some("applied")
                        })
                        .map(|p| p.edition.clone()),
                    None => rpm_found.get(&update.id).cloned(),
                };
                (update.clone(), version)
            })
            .collect())
    }
}

/// One `<update>` element of zypper's XML output.
#[derive(Debug, Clone, Default, PartialEq)]
struct XmlUpdate {
    kind: String,
    name: String,
    edition: String,
    edition_old: Option<String>,
    status: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    restart: bool,
    summary: Option<String>,
    issued: Option<Time>,
    cves: Vec<String>,
}

impl XmlUpdate {
    fn into_patch(self) -> AvailableUpdate {
        let classification = match self.category.as_deref().unwrap_or("") {
            "security" => Classification::Security,
            "recommended" => Classification::Bugfix,
            "optional" | "feature" | "enhancement" => Classification::Enhancement,
            _ => Classification::Other,
        };
        let severity = match self.severity.as_deref().unwrap_or("") {
            "critical" => Severity::Critical,
            "important" => Severity::Important,
            "moderate" => Severity::Moderate,
            "low" => Severity::Low,
            _ => Severity::Unspecified,
        };
        AvailableUpdate {
            id: format!("{PATCH_PREFIX}{}", self.name),
            title: self.summary.map(|s| tail_chars(&s, 250)),
            package: None,
            version: Some(self.edition),
            installed_version: None,
            classification,
            severity,
            cves: self.cves,
            released_at: self.issued,
            reboot_required: self.restart,
        }
    }

    fn into_package(self) -> AvailableUpdate {
        AvailableUpdate {
            id: self.name.clone(),
            title: self.summary.map(|s| tail_chars(&s, 250)),
            package: Some(self.name.clone()),
            version: Some(self.edition),
            installed_version: self.edition_old,
            // Package updates from SUSE's update repositories are fixes; patches carry the
            // security classification.
            classification: Classification::Bugfix,
            severity: Severity::Unspecified,
            cves: Vec::new(),
            released_at: None,
            reboot_required: self.name.starts_with("kernel-") || self.name == "glibc",
        }
    }
}

/// Every `<update>` element in zypper's `--xmlout` stream. A `<message type="error">`
/// becomes an error naming its line.
fn parse_updates_xml(text: &str) -> Result<Vec<XmlUpdate>, (usize, String)> {
    let document = roxmltree::Document::parse(text.trim_start()).map_err(|error| {
        let position = error.pos();
        (position.row as usize, format!("not XML: {error}"))
    })?;
    let line_of =
        |node: roxmltree::Node<'_, '_>| document.text_pos_at(node.range().start).row as usize;
    let mut updates = Vec::new();
    let mut errors: Vec<(usize, String)> = Vec::new();
    for node in document.descendants() {
        if node.has_tag_name("message") && node.attribute("type") == Some("error") {
            errors.push((line_of(node), node.text().unwrap_or("").trim().to_string()));
            continue;
        }
        if !node.has_tag_name("update") {
            continue;
        }
        let required = |name: &str| {
            node.attribute(name)
                .map(str::to_string)
                .ok_or_else(|| (line_of(node), format!("<update> has no {name} attribute")))
        };
        let child_text = |tag: &str| {
            node.children()
                .find(|c| c.has_tag_name(tag))
                .and_then(|c| c.text())
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        };
        let issued = node
            .children()
            .find(|c| c.has_tag_name("issue-date"))
            .and_then(|c| c.attribute("time"))
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
            .map(Time);
        let mut cves: Vec<String> = node
            .descendants()
            .filter(|c| c.has_tag_name("issue") && c.attribute("type") == Some("cve"))
            .filter_map(|c| c.attribute("id"))
            .map(|id| {
                if id.starts_with("CVE-") {
                    id.to_string()
                } else {
                    format!("CVE-{id}")
                }
            })
            .collect();
        cves.sort();
        cves.dedup();
        updates.push(XmlUpdate {
            kind: required("kind")?,
            name: required("name")?,
            edition: required("edition")?,
            edition_old: node.attribute("edition-old").map(str::to_string),
            status: node.attribute("status").map(str::to_string),
            category: node.attribute("category").map(str::to_string),
            severity: node.attribute("severity").map(str::to_string),
            restart: node.attribute("restart") == Some("true"),
            summary: child_text("summary"),
            issued,
            cves,
        });
    }
    if let Some((line, _)) = errors.first() {
        let texts: Vec<&str> = errors.iter().map(|(_, text)| text.as_str()).collect();
        return Err((*line, format!("zypper reported: {}", texts.join("; "))));
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_message_in_the_stream_names_its_line() {
        let xml = "<?xml version='1.0'?>\n<stream>\n<message type=\"error\">Repository 'x' is invalid.</message>\n</stream>\n";
        let error = parse_updates_xml(xml).expect_err("error message");
        assert_eq!(error.0, 3);
        assert!(error.1.contains("Repository 'x' is invalid."));
    }

    #[test]
    fn truncated_xml_is_a_parse_error() {
        assert!(parse_updates_xml("<stream><update-status>").is_err());
    }
}
