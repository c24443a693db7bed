//! RHEL, Fedora, Alma, Rocky: dnf (or yum), rpm and needs-restarting.
//!
//! The inventory joins four read-only answers:
//! - `dnf check-update`: every upgradable package with its new `[epoch:]version-release`
//!   (exit 100 means updates exist, 0 none, anything else is an error);
//! - `dnf updateinfo list --updates`: which advisory covers which new package, with its type
//!   (security, bugfix, enhancement) and, for security advisories, the severity
//!   (`Important/Sec.`);
//! - `dnf updateinfo info --updates`: per advisory the title, date and CVE ids;
//! - `rpm -q`: the installed version (what a rollback returns to).
//!
//! dnf5 (Fedora 41 and later, where `dnf` and `yum` are dnf5) prints `updateinfo list` with
//! other columns (name, type, severity, package, issued), which the dnf 4 reader would find no
//! advisory in: every update would be a Bugfix, and no Security policy would install it. So
//! `dnf --version` picks the reader; with dnf5 the advisories come as JSON instead (both
//! since dnf5 5.2.4):
//! - `dnf advisory list --updates --json`: advisory, type, severity, package and issue time;
//! - `dnf advisory list --updates --with-cve --json`: the CVE ids of each advisory.
//!
//! dnf5 has no advisory titles in those answers; an update's title names its advisories.
//!
//! `dnf needs-restarting -r` tells whether the machine waits for a reboot (exit 1). Installs
//! pin `name-[epoch:]version-release`; a rollback is `dnf downgrade` to the old version. dnf
//! resolves the whole transaction before it changes anything, so a version no repository
//! offers fails cleanly and is reported as [`BackendError::Unsatisfiable`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::command::{Tool, excerpt, tail_chars};
use super::{Backend, BackendError, ChangeOutcome, CommandRunner, Inventory};
use crate::api::asset::{AvailableUpdate, UpdateRef};
use crate::api::common::{Classification, Severity, Time};

/// Backend name.
pub const NAME: &str = "dnf";

/// dnf translates its messages; the parsers read the English ones.
const DNF_ENV: [(&str, &str); 1] = [("LC_ALL", "C")];

/// Query format for `rpm -q`: name and `[epoch:]version-release`, as dnf prints versions.
const RPM_QUERY_FORMAT: &str = "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n";

/// Packages whose update needs a reboot to take effect.
const REBOOT_PACKAGE_PREFIXES: [&str; 6] = [
    "kernel",
    "glibc",
    "systemd",
    "linux-firmware",
    "microcode_ctl",
    "dbus",
];

/// The dnf/yum/rpm backend.
pub struct DnfBackend {
    runner: Arc<dyn CommandRunner>,
    program: &'static str,
    os_release_path: String,
}

impl DnfBackend {
    /// A backend driving `dnf`.
    pub fn new(runner: Arc<dyn CommandRunner>) -> Self {
        Self {
            runner,
            program: "dnf",
            os_release_path: "/etc/os-release".to_string(),
        }
    }

    /// A backend driving `yum` instead (RHEL 7 and CentOS 7; later yum is dnf under its old
    /// name and takes the same arguments).
    pub fn with_yum(runner: Arc<dyn CommandRunner>) -> Self {
        Self {
            program: "yum",
            ..Self::new(runner)
        }
    }

    /// The package manager command this backend runs (`dnf` or `yum`).
    pub fn program(&self) -> &'static str {
        self.program
    }

    fn tool(&self) -> Tool<'_> {
        Tool {
            backend: NAME,
            runner: self.runner.as_ref(),
        }
    }

    /// Whether the package manager is dnf5 (`--version` starts with `dnf5 version`); dnf 4
    /// and yum print their bare version number.
    fn is_dnf5(&self) -> Result<bool, BackendError> {
        let output = self
            .tool()
            .run_any(self.program, &["--version"], &DNF_ENV)?;
        Ok(output.success() && output.stdout.trim_start().starts_with("dnf5"))
    }

    /// dnf 4 (and yum): the advisory table, then each advisory's details.
    fn dnf4_advisories(
        &self,
    ) -> Result<(Vec<ListedAdvisory>, BTreeMap<String, AdvisoryDetails>), BackendError> {
        let tool = self.tool();
        let list_args = ["updateinfo", "list", "--updates"];
        let list = tool.run_ok(self.program, &list_args, &DNF_ENV)?;
        let advisories = parse_updateinfo_list(&list.stdout)
            .map_err(|(line, message)| tool.parse_error(self.program, &list_args, line, message))?;

        let info_args = ["updateinfo", "info", "--updates"];
        let info = tool.run_ok(self.program, &info_args, &DNF_ENV)?;
        Ok((advisories, parse_updateinfo_info(&info.stdout)))
    }

    /// dnf5: the advisory list as JSON, then the same list with CVE references.
    fn dnf5_advisories(
        &self,
    ) -> Result<(Vec<ListedAdvisory>, BTreeMap<String, AdvisoryDetails>), BackendError> {
        let tool = self.tool();
        let list_args = ["advisory", "list", "--updates", "--json"];
        let list = tool.run_ok(self.program, &list_args, &DNF_ENV)?;
        let listed: Vec<Dnf5Advisory> = parse_json_array(&list.stdout)
            .map_err(|(line, message)| tool.parse_error(self.program, &list_args, line, message))?;

        let cve_args = ["advisory", "list", "--updates", "--with-cve", "--json"];
        let with_cves = tool.run_ok(self.program, &cve_args, &DNF_ENV)?;
        let references: Vec<Dnf5AdvisoryReferences> = parse_json_array(&with_cves.stdout)
            .map_err(|(line, message)| tool.parse_error(self.program, &cve_args, line, message))?;
        Ok(dnf5_advisories(listed, references))
    }

    /// true when the running system wants a reboot (`needs-restarting -r` exits 1).
    fn reboot_pending(&self) -> Result<bool, BackendError> {
        let args = ["needs-restarting", "-r"];
        let output = self.tool().run_any(self.program, &args, &DNF_ENV)?;
        match output.code {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(self.tool().failed(self.program, &args, &output)),
        }
    }

    /// Runs a transaction (`install` or `downgrade`) of pinned specs.
    fn transaction(
        &self,
        verb: &str,
        updates: &[UpdateRef],
    ) -> Result<ChangeOutcome, BackendError> {
        if updates.is_empty() {
            return Ok(ChangeOutcome::default());
        }
        let mut specs = Vec::with_capacity(updates.len());
        for update in updates {
            match &update.version {
                Some(version) if !version.is_empty() => {
                    specs.push(format!("{}-{version}", update.id))
                }
                _ if verb == "downgrade" => {
                    return Err(BackendError::Unsatisfiable {
                        backend: NAME,
                        message: format!(
                            "cannot roll {} back: the operation names no version to return to",
                            update.id
                        ),
                    });
                }
                _ => specs.push(update.id.clone()),
            }
        }
        let mut args: Vec<&str> = vec!["-y", verb];
        args.extend(specs.iter().map(String::as_str));
        let tool = self.tool();
        let output = tool.run_any(self.program, &args, &DNF_ENV)?;
        if !output.success() {
            let text = format!("{}\n{}", output.stdout, output.stderr);
            // dnf stops before the transaction when a spec matches nothing, when no lower
            // version is left, or when the package is gone (dnf 4 and dnf5 wordings).
            let unmatched = [
                "No match for argument",
                "Unable to find a match",
                "No packages marked for downgrade",
                "No package ",
                "cannot downgrade it",
                "available, but not installed",
            ]
            .iter()
            .any(|needle| text.contains(needle));
            if unmatched {
                return Err(BackendError::Unsatisfiable {
                    backend: NAME,
                    message: format!(
                        "{} {verb} {}: no repository offers this version; nothing changed: {}",
                        self.program,
                        specs.join(" "),
                        excerpt(&output)
                    ),
                });
            }
            return Err(tool.failed(self.program, &args, &output));
        }
        let installed = self.installed_now(updates)?;
        Ok(ChangeOutcome {
            installed,
            reboot_required: self.reboot_pending()?,
            log_excerpt: tail_chars(output.stdout.trim(), super::command::EXCERPT_CHARS),
        })
    }
}

impl Backend for DnfBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inventory(&self) -> Result<Inventory, BackendError> {
        let tool = self.tool();
        let os = tool.linux_os_facts(&self.os_release_path)?;

        let check_args = ["check-update"];
        let check = tool.run_expect(self.program, &check_args, &DNF_ENV, &[0, 100])?;
        let packages = parse_check_update(&check.stdout);

        let (advisories_by_package, details) = if self.is_dnf5()? {
            self.dnf5_advisories()?
        } else {
            self.dnf4_advisories()?
        };

        let refs: Vec<UpdateRef> = packages
            .iter()
            .map(|p| UpdateRef {
                id: p.name.clone(),
                version: None,
            })
            .collect();
        let installed: BTreeMap<String, Option<String>> = self
            .installed_versions(&refs)?
            .into_iter()
            .map(|(update, version)| (update.id, version))
            .collect();

        let available = packages
            .into_iter()
            .map(|package| {
                let advisories: Vec<&ListedAdvisory> = advisories_by_package
                    .iter()
                    .filter(|a| a.name == package.name && a.evr == package.evr)
                    .collect();
                build_update(package, &advisories, &details, &installed)
            })
            .collect();
        Ok(Inventory {
            os,
            available,
            reboot_pending: self.reboot_pending()?,
        })
    }

    fn install(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        self.transaction("install", updates)
    }

    fn rollback(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        self.transaction("downgrade", updates)
    }

    fn installed_versions(
        &self,
        updates: &[UpdateRef],
    ) -> Result<Vec<(UpdateRef, Option<String>)>, BackendError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<&str> = vec!["-q", "--qf", RPM_QUERY_FORMAT];
        args.extend(updates.iter().map(|u| u.id.as_str()));
        let tool = self.tool();
        let output = tool.run_any("rpm", &args, &DNF_ENV)?;
        // rpm exits with the number of names that are not installed.
        if output.code.is_none() || (!output.success() && output.stdout.trim().is_empty()) {
            return Err(tool.failed("rpm", &args, &output));
        }
        let mut found: BTreeMap<&str, String> = BTreeMap::new();
        for line in output.stdout.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // "package foo is not installed" has more words; a name and a version is an answer.
            if let [name, version] = fields[..] {
                // Several installed versions (kernels): the last one listed is the newest.
                found.insert(name, version.to_string());
            }
        }
        Ok(updates
            .iter()
            .map(|update| (update.clone(), found.get(update.id.as_str()).cloned()))
            .collect())
    }
}

/// One line of `check-update`.
#[derive(Debug, Clone, PartialEq)]
struct UpgradablePackage {
    name: String,
    arch: String,
    evr: String,
    repo: String,
}

/// Upgradable packages from `dnf check-update`: `name.arch  [epoch:]version-release  repo`.
/// dnf 4 wraps long names onto a second line; the installed packages listed under "Obsoleting
/// Packages" (indented), headings and messages are skipped. One entry per package name (the
/// first arch).
fn parse_check_update(text: &str) -> Vec<UpgradablePackage> {
    let mut packages: Vec<UpgradablePackage> = Vec::new();
    let mut pending: Option<&str> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let fields: Vec<&str> = match (pending.take(), fields.len()) {
            (Some(name), 2) => vec![name, fields[0], fields[1]],
            // Indented and not the rest of a wrapped name: a package that an upgrade obsoletes,
            // installed now (dnf 4 names its repository `@System`, dnf5 the one it came from).
            (None, _) if line.starts_with(char::is_whitespace) => continue,
            (_, 1) if line.starts_with(|c: char| !c.is_whitespace()) && fields[0].contains('.') => {
                pending = Some(fields[0]);
                continue;
            }
            _ => fields,
        };
        let [name_arch, evr, repo] = fields[..] else {
            continue;
        };
        if repo.starts_with('@')
            || !evr.contains('-')
            || !evr.starts_with(|c: char| c.is_ascii_digit())
        {
            continue;
        }
        let Some((name, arch)) = name_arch.rsplit_once('.') else {
            continue;
        };
        if packages.iter().any(|p| p.name == name) {
            continue;
        }
        packages.push(UpgradablePackage {
            name: name.to_string(),
            arch: arch.to_string(),
            evr: evr.to_string(),
            repo: repo.to_string(),
        });
    }
    packages
}

/// One line of `updateinfo list`: advisory, type and the package it updates.
#[derive(Debug, Clone, PartialEq)]
struct ListedAdvisory {
    id: String,
    classification: Classification,
    severity: Severity,
    name: String,
    evr: String,
}

/// Parses a NEVRA `name-[epoch:]version-release.arch` into (name, evr).
fn split_nevra(nevra: &str) -> Option<(&str, &str)> {
    let (nevr, _arch) = nevra.rsplit_once('.')?;
    let (rest, release) = nevr.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    let evr_start = name.len() + 1;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name, &nevr[evr_start..]))
}

/// Advisory lines `RHSA-2024:1234 Important/Sec. openssl-1:3.0.7-27.el9.x86_64`.
fn parse_updateinfo_list(text: &str) -> Result<Vec<ListedAdvisory>, (usize, String)> {
    let mut advisories = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [id, kind, nevra] = fields[..] else {
            continue;
        };
        // Metadata lines ("Last metadata expiration check: ...") have other shapes.
        let Some((name, evr)) = split_nevra(nevra) else {
            return Err((
                index + 1,
                format!("expected name-version-release.arch as the third column, got {nevra:?}"),
            ));
        };
        let (classification, severity) = match kind.split_once('/') {
            Some((severity, _sec)) => (Classification::Security, parse_severity(severity)),
            None => (parse_type(kind), Severity::Unspecified),
        };
        advisories.push(ListedAdvisory {
            id: id.to_string(),
            classification,
            severity,
            name: name.to_string(),
            evr: evr.to_string(),
        });
    }
    Ok(advisories)
}

fn parse_severity(text: &str) -> Severity {
    match text.to_ascii_lowercase().as_str() {
        "critical" => Severity::Critical,
        "important" | "high" => Severity::Important,
        "moderate" | "medium" => Severity::Moderate,
        "low" => Severity::Low,
        _ => Severity::Unspecified,
    }
}

fn parse_type(text: &str) -> Classification {
    match text.to_ascii_lowercase().as_str() {
        "security" | "sec." => Classification::Security,
        "bugfix" => Classification::Bugfix,
        "enhancement" => Classification::Enhancement,
        _ => Classification::Other,
    }
}

/// Details of one advisory from `updateinfo info`.
#[derive(Debug, Clone, Default, PartialEq)]
struct AdvisoryDetails {
    title: String,
    severity: Option<Severity>,
    issued: Option<Time>,
    cves: Vec<String>,
}

/// Blocks of `updateinfo info`: a `====` rule, the title, a rule, then `Label: value` lines
/// (continuation lines have an empty label). Keyed by `Update ID`.
fn parse_updateinfo_info(text: &str) -> BTreeMap<String, AdvisoryDetails> {
    let mut advisories = BTreeMap::new();
    let mut current: Option<(String, AdvisoryDetails)> = None;
    let mut label = String::new();
    // Inside the header between the two rules, where the title is.
    let mut in_header = false;
    for line in text.lines() {
        if line.starts_with("====") {
            if !in_header {
                if let Some((id, details)) = current.take() {
                    advisories.insert(id, details);
                }
                current = Some((String::new(), AdvisoryDetails::default()));
                label.clear();
            }
            in_header = !in_header;
            continue;
        }
        let Some((id, details)) = current.as_mut() else {
            continue;
        };
        if in_header {
            if details.title.is_empty() {
                details.title = line.trim().to_string();
            }
            continue;
        }
        // "  Update ID: X" (dnf 4.x); older dnf printed "Update ID : X". Continuation lines
        // have an empty label.
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let key = key.trim();
        if !key.is_empty() {
            label = key.to_string();
        }
        let value = value.trim();
        match label.as_str() {
            "Update ID" => *id = value.to_string(),
            "Severity" => details.severity = Some(parse_severity(value)),
            "Issued" | "Updated" if details.issued.is_none() || label == "Issued" => {
                details.issued = parse_dnf_time(value);
            }
            "CVEs" => details.cves.push(value.to_string()),
            "Bugs" => details.cves.extend(
                value
                    .split_whitespace()
                    .filter(|word| is_cve(word))
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    if let Some((id, details)) = current {
        advisories.insert(id, details);
    }
    for details in advisories.values_mut() {
        details.cves.retain(|cve| is_cve(cve));
        details.cves.sort();
        details.cves.dedup();
    }
    advisories
}

/// One element of `dnf5 advisory list --json`.
#[derive(Debug, serde::Deserialize)]
struct Dnf5Advisory {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    severity: String,
    nevra: String,
    /// When the advisory was issued, UNIX time.
    #[serde(default)]
    buildtime: Option<i64>,
}

/// One element of `dnf5 advisory list --with-cve --json`.
#[derive(Debug, serde::Deserialize)]
struct Dnf5AdvisoryReferences {
    advisory_name: String,
    #[serde(default)]
    references: Vec<Dnf5Reference>,
}

#[derive(Debug, serde::Deserialize)]
struct Dnf5Reference {
    reference_id: String,
    #[serde(default)]
    reference_type: String,
}

/// A JSON array from dnf5's stdout. Anything printed before it (repository loading messages
/// of some versions) is skipped; an empty answer is an empty list. Errors carry the line.
fn parse_json_array<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, (usize, String)> {
    let Some(start) = text
        .lines()
        .position(|line| line.trim_start().starts_with('['))
    else {
        return if text.trim().is_empty() {
            Ok(Vec::new())
        } else {
            Err((
                1,
                "expected a JSON array of advisories (dnf5 prints one from version 5.2.4)"
                    .to_owned(),
            ))
        };
    };
    let json: String = text.lines().skip(start).collect::<Vec<_>>().join("\n");
    serde_json::from_str(&json).map_err(|e| (start + e.line(), e.to_string()))
}

/// The advisories per package and the details per advisory, from dnf5's two JSON answers.
fn dnf5_advisories(
    listed: Vec<Dnf5Advisory>,
    references: Vec<Dnf5AdvisoryReferences>,
) -> (Vec<ListedAdvisory>, BTreeMap<String, AdvisoryDetails>) {
    let mut details: BTreeMap<String, AdvisoryDetails> = BTreeMap::new();
    let mut advisories = Vec::new();
    for advisory in listed {
        let Some((name, evr)) = split_nevra(&advisory.nevra) else {
            continue;
        };
        let severity = parse_severity(&advisory.severity);
        advisories.push(ListedAdvisory {
            id: advisory.name.clone(),
            classification: parse_type(&advisory.kind),
            severity,
            name: name.to_string(),
            evr: evr.to_string(),
        });
        let entry = details.entry(advisory.name).or_default();
        entry.severity = Some(severity);
        entry.issued = advisory
            .buildtime
            .and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map(Time);
    }
    for listed in references {
        let Some(entry) = details.get_mut(&listed.advisory_name) else {
            continue;
        };
        for reference in listed.references {
            if reference.reference_type.eq_ignore_ascii_case("cve")
                && is_cve(&reference.reference_id)
                && !entry.cves.contains(&reference.reference_id)
            {
                entry.cves.push(reference.reference_id);
            }
        }
    }
    (advisories, details)
}

/// true for `CVE-YYYY-NNNN...`, the form the Asset CRD accepts.
fn is_cve(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.chars().all(|c| c.is_ascii_digit())
        && number.len() >= 4
        && number.chars().all(|c| c.is_ascii_digit())
}

/// `2024-04-30 00:00:00` (UTC, as dnf prints advisory times).
fn parse_dnf_time(text: &str) -> Option<Time> {
    let civil: jiff::civil::DateTime = text.trim().parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| Time(z.timestamp()))
}

/// The available update for one package, classified by the advisories that cover its new
/// version (the most severe one wins; the earliest advisory date is the release).
fn build_update(
    package: UpgradablePackage,
    advisories: &[&ListedAdvisory],
    details: &BTreeMap<String, AdvisoryDetails>,
    installed: &BTreeMap<String, Option<String>>,
) -> AvailableUpdate {
    let rank = |c: Classification| match c {
        Classification::Security => 0,
        Classification::Bugfix => 1,
        Classification::Enhancement => 2,
        _ => 3,
    };
    // Without an advisory (Fedora rebuilds, third-party repositories) an update from the
    // distribution's update repositories is a fix.
    let classification = advisories
        .iter()
        .map(|a| a.classification)
        .min_by_key(|c| rank(*c))
        .unwrap_or(Classification::Bugfix);
    let mut severity = Severity::Unspecified;
    let mut cves = Vec::new();
    let mut released_at: Option<Time> = None;
    let mut titles = Vec::new();
    for advisory in advisories {
        let detail = details.get(&advisory.id);
        let advisory_severity = detail
            .and_then(|d| d.severity)
            .filter(|s| *s != Severity::Unspecified)
            .unwrap_or(advisory.severity);
        severity = severity.min(advisory_severity);
        if let Some(detail) = detail {
            cves.extend(detail.cves.iter().cloned());
            if let Some(issued) = &detail.issued {
                if released_at.as_ref().is_none_or(|r| issued.0 < r.0) {
                    released_at = Some(issued.clone());
                }
            }
            if detail.title.is_empty() {
                titles.push(advisory.id.clone());
            } else {
                titles.push(format!("{}: {}", advisory.id, detail.title));
            }
        } else {
            titles.push(advisory.id.clone());
        }
    }
    cves.sort();
    cves.dedup();
    let title = if titles.is_empty() {
        format!("{} {} ({})", package.name, package.evr, package.repo)
    } else {
        titles.join("; ")
    };
    AvailableUpdate {
        id: package.name.clone(),
        title: Some(tail_chars(&title, 250)),
        installed_version: installed.get(&package.name).cloned().flatten(),
        version: Some(package.evr.clone()),
        classification,
        severity,
        cves,
        released_at,
        reboot_required: REBOOT_PACKAGE_PREFIXES
            .iter()
            .any(|prefix| package.name.starts_with(prefix)),
        package: Some(package.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nevras_keep_epochs_and_dashed_names() {
        assert_eq!(
            split_nevra("openssl-libs-1:3.0.7-27.el9.x86_64"),
            Some(("openssl-libs", "1:3.0.7-27.el9"))
        );
        assert_eq!(
            split_nevra("python3-perf-5.14.0-427.13.1.el9_4.x86_64"),
            Some(("python3-perf", "5.14.0-427.13.1.el9_4"))
        );
        assert_eq!(split_nevra("garbage"), None);
    }

    #[test]
    fn wrapped_check_update_lines_are_joined() {
        let text = "Last metadata expiration check: 0:01:02 ago on Tue 26 Nov 2026 09:00:00 AM UTC.\n\n\
                    NetworkManager-cloud-setup-with-a-long-name.x86_64\n\
                    \x20                              1:1.46.0-8.el9_4        baseos\n\
                    curl.x86_64                    7.76.1-29.el9_4.1       baseos\n\
                    Obsoleting Packages\n\
                    grub2-tools.x86_64             1:2.06-80.el9           baseos\n\
                    \x20   grub2-tools.x86_64         1:2.06-77.el9           @anaconda\n";
        let packages = parse_check_update(text);
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "NetworkManager-cloud-setup-with-a-long-name",
                "curl",
                "grub2-tools"
            ]
        );
        assert_eq!(packages[0].evr, "1:1.46.0-8.el9_4");
    }

    #[test]
    fn cve_ids_are_checked() {
        assert!(is_cve("CVE-2024-12345"));
        assert!(!is_cve("CVE-24-1"));
        assert!(!is_cve("2164440"));
    }
}
