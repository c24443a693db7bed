//! Windows: the Windows Update Agent API (Microsoft.Update.Session) through PowerShell.
//!
//! A PowerShell script embedded in the binary (`windows_update.ps1`) searches for
//! `IsInstalled=0 and IsHidden=0`, installs updates by KB id through the same API, lists the
//! installed KBs, and prints JSON that Rust parses. The script goes to `powershell.exe` as
//! `-EncodedCommand` (base64 of UTF-16LE), so nothing in it needs quoting. Classification comes
//! from the category GUIDs (category names are translated on a German Windows; the GUIDs are
//! not); severity from `MsrcSeverity`. A rollback uninstalls by KB with
//! `wusa.exe /uninstall /kb:N /quiet /norestart`.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use super::command::{Tool, tail_chars};
use super::{Backend, BackendError, ChangeOutcome, CommandRunner, Inventory};
use crate::api::asset::{AvailableUpdate, OsFacts, UpdateRef};
use crate::api::common::{Classification, Severity, Time};

/// Backend name.
pub const NAME: &str = "windows-update";

/// The script the agent runs; see the file for the actions and the JSON they print.
pub const SCRIPT: &str = include_str!("windows_update.ps1");

/// The PowerShell executable (Windows PowerShell 5.1 is on every supported Windows).
pub const POWERSHELL: &str = "powershell.exe";

/// wusa exit codes: success, success with reboot pending, and "not installed" (nothing to do).
const WUSA_OK: i32 = 0;
const WUSA_REBOOT_REQUIRED: i32 = 3010;
const WUSA_NOT_INSTALLED: i32 = 0x0024_0007;

/// IUpdateInstaller result codes (OperationResultCode).
const RESULT_SUCCEEDED: i64 = 2;
const RESULT_SUCCEEDED_WITH_ERRORS: i64 = 3;

/// The PowerShell arguments that run `action` of the embedded script for `kb_ids`.
/// Public so tests can expect the exact command line.
pub fn powershell_args(action: &str, kb_ids: &[&str]) -> Vec<String> {
    let kb_list: Vec<String> = kb_ids.iter().map(|kb| format!("'{kb}'")).collect();
    let script = format!(
        "$Action = '{action}'\r\n$KbIds = @({})\r\n{SCRIPT}",
        kb_list.join(",")
    );
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(utf16);
    [
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once(encoded))
    .collect()
}

/// The Windows Update backend.
pub struct WindowsUpdateBackend {
    runner: Arc<dyn CommandRunner>,
}

impl WindowsUpdateBackend {
    /// A Windows Update backend.
    pub fn new(runner: Arc<dyn CommandRunner>) -> Self {
        Self { runner }
    }

    fn tool(&self) -> Tool<'_> {
        Tool {
            backend: NAME,
            runner: self.runner.as_ref(),
        }
    }

    /// Runs one action of the script and parses the JSON it printed.
    fn script<T: for<'de> Deserialize<'de>>(
        &self,
        action: &str,
        kb_ids: &[&str],
    ) -> Result<T, BackendError> {
        let args = powershell_args(action, kb_ids);
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let tool = self.tool();
        let output = tool.run_ok(POWERSHELL, &arg_refs, &[])?;
        // Name the action, not 10 kB of base64, in messages.
        let shown = format!("{POWERSHELL} -EncodedCommand <patchwave {action} script>");
        let json = output.stdout.trim_start_matches('\u{feff}').trim();
        let line = json
            .lines()
            .position(|l| l.trim_start().starts_with('{'))
            .unwrap_or(0);
        serde_json::from_str(json).map_err(|error| BackendError::Parse {
            backend: NAME,
            command: shown,
            line: if error.line() > 0 {
                error.line()
            } else {
                line + 1
            },
            message: format!(
                "expected the script's JSON: {error}; output began: {}",
                json.chars().take(120).collect::<String>()
            ),
        })
    }
}

/// Checks KB ids before they go into the script: `KB` and digits only.
fn validated_kb(update: &UpdateRef) -> Result<&str, BackendError> {
    let id = update.id.as_str();
    let digits = id.strip_prefix("KB").or_else(|| id.strip_prefix("kb"));
    match digits {
        Some(d) if !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()) => Ok(id),
        _ => Err(BackendError::Unsatisfiable {
            backend: NAME,
            message: format!("update id {id:?} is not a KB number (KB followed by digits)"),
        }),
    }
}

impl Backend for WindowsUpdateBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn inventory(&self) -> Result<Inventory, BackendError> {
        let raw: InventoryJson = self.script("inventory", &[])?;
        Ok(raw.into_inventory())
    }

    fn install(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        if updates.is_empty() {
            return Ok(ChangeOutcome::default());
        }
        let kbs: Vec<&str> = updates.iter().map(validated_kb).collect::<Result<_, _>>()?;
        let result: InstallJson = self.script("install", &kbs)?;
        let missing = result.missing.into_vec();
        if !missing.is_empty() {
            return Err(BackendError::Unsatisfiable {
                backend: NAME,
                message: format!(
                    "Windows Update does not offer {} on this machine (searched IsInstalled=0 and \
                     IsHidden=0); nothing installed",
                    missing.join(", ")
                ),
            });
        }
        let results = result.results.into_vec();
        let failed: Vec<String> = results
            .iter()
            .filter(|r| {
                r.result_code != RESULT_SUCCEEDED && r.result_code != RESULT_SUCCEEDED_WITH_ERRORS
            })
            .map(|r| {
                format!(
                    "{} ({}): result code {}, HRESULT 0x{:08X}",
                    r.kb_ids.clone().into_vec().join("/"),
                    r.title.clone().unwrap_or_default(),
                    r.result_code,
                    r.h_result as u32
                )
            })
            .collect();
        if !failed.is_empty() {
            return Err(BackendError::Failed {
                backend: NAME,
                command: format!("{POWERSHELL} -EncodedCommand <patchwave install script>"),
                status: format!("result code {}", result.result_code.unwrap_or_default()),
                excerpt: tail_chars(&failed.join("; "), super::command::EXCERPT_CHARS),
            });
        }
        let summary: Vec<String> = results
            .iter()
            .map(|r| {
                format!(
                    "{} installed (result code {})",
                    r.kb_ids.clone().into_vec().join("/"),
                    r.result_code
                )
            })
            .collect();
        Ok(ChangeOutcome {
            installed: updates
                .iter()
                .map(|u| UpdateRef {
                    id: u.id.clone(),
                    version: u.version.clone(),
                })
                .collect(),
            reboot_required: result.reboot_required,
            log_excerpt: summary.join("; "),
        })
    }

    fn rollback(&self, updates: &[UpdateRef]) -> Result<ChangeOutcome, BackendError> {
        let tool = self.tool();
        let mut reboot_required = false;
        let mut log = Vec::new();
        for update in updates {
            let kb = validated_kb(update)?;
            let number = &kb[2..];
            let kb_arg = format!("/kb:{number}");
            let args = ["/uninstall", kb_arg.as_str(), "/quiet", "/norestart"];
            let output = tool.run_any("wusa.exe", &args, &[])?;
            match output.code {
                Some(WUSA_OK) => log.push(format!("{kb} uninstalled")),
                Some(WUSA_REBOOT_REQUIRED) => {
                    reboot_required = true;
                    log.push(format!("{kb} uninstalled, reboot required"));
                }
                Some(WUSA_NOT_INSTALLED) => log.push(format!("{kb} was not installed")),
                _ => return Err(tool.failed("wusa.exe", &args, &output)),
            }
        }
        Ok(ChangeOutcome {
            installed: updates
                .iter()
                .map(|u| UpdateRef {
                    id: u.id.clone(),
                    version: None,
                })
                .collect(),
            reboot_required,
            log_excerpt: log.join("; "),
        })
    }

    /// KBs have no versions: an installed KB reports the operation's version (usually empty),
    /// one that is not installed reports None.
    fn installed_versions(
        &self,
        updates: &[UpdateRef],
    ) -> Result<Vec<(UpdateRef, Option<String>)>, BackendError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let listed: InstalledJson = self.script("installed", &[])?;
        let installed: BTreeSet<String> = listed
            .installed
            .into_vec()
            .into_iter()
            .map(|kb| kb.to_ascii_uppercase())
            .collect();
        Ok(updates
            .iter()
            .map(|update| {
                let version = installed
                    .contains(&update.id.to_ascii_uppercase())
                    .then(|| update.version.clone().unwrap_or_default());
                (update.clone(), version)
            })
            .collect())
    }
}

/// ConvertTo-Json writes a one-element array as the element itself and an empty one as null
/// (on Windows PowerShell 5.1, depending on how it was built); accept all three shapes.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(untagged)]
enum OneOrMany<T> {
    /// No value.
    #[default]
    None,
    /// A lone element.
    One(T),
    /// A proper array.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(value) => vec![value],
            OneOrMany::Many(values) => values,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct OsJson {
    caption: Option<String>,
    version: Option<String>,
    architecture: Option<String>,
    hostname: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
struct CategoryJson {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct UpdateJson {
    #[serde(default)]
    update_id: Option<String>,
    #[serde(default)]
    kb_ids: OneOrMany<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    msrc_severity: Option<String>,
    #[serde(default)]
    categories: OneOrMany<CategoryJson>,
    #[serde(default)]
    cve_ids: OneOrMany<String>,
    #[serde(default)]
    reboot_required: bool,
    #[serde(default)]
    last_deployment_change_time: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct InventoryJson {
    #[serde(default)]
    os: OsJson,
    #[serde(default)]
    reboot_required: bool,
    #[serde(default)]
    updates: OneOrMany<UpdateJson>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
struct ResultJson {
    #[serde(default)]
    kb_ids: OneOrMany<String>,
    #[serde(default)]
    title: Option<String>,
    result_code: i64,
    #[serde(default)]
    h_result: i64,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct InstallJson {
    #[serde(default)]
    missing: OneOrMany<String>,
    #[serde(default)]
    results: OneOrMany<ResultJson>,
    #[serde(default)]
    result_code: Option<i64>,
    #[serde(default)]
    reboot_required: bool,
}

#[derive(Deserialize, Debug)]
struct InstalledJson {
    #[serde(default)]
    installed: OneOrMany<String>,
}

/// Update classification category GUIDs of Windows Update (the same in every language).
const CATEGORY_GUIDS: [(&str, Classification); 10] = [
    (
        "0fa1201d-4330-4fa8-8ae9-b877473b6441",
        Classification::Security,
    ),
    (
        "e6cf1350-c01b-414d-a61f-263d14d133b4",
        Classification::CriticalFix,
    ),
    (
        "e0789628-ce08-4437-be74-2495b842f43b",
        Classification::Definition,
    ),
    (
        "ebfc1fc5-71a4-4f7b-9aca-3b9a503104a0",
        Classification::Driver,
    ),
    (
        "3689bdc8-b205-4af4-8d4a-a63924c5e9d5",
        Classification::FeatureUpgrade,
    ),
    (
        "b54e7d24-7add-428f-8b75-90a396fa584f",
        Classification::FeatureUpgrade,
    ),
    (
        "28bc880e-0592-4cbf-8f95-c79b17911d5f",
        Classification::Bugfix,
    ),
    (
        "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83",
        Classification::Bugfix,
    ),
    (
        "68c5b0a3-d1a6-4553-ae49-01d3a7827828",
        Classification::Bugfix,
    ),
    (
        "b4832bd8-e735-4761-8dab-37f882276dab",
        Classification::Enhancement,
    ),
];

/// The classification of an update: a known category GUID, else the English category name.
fn classify(categories: &[CategoryJson]) -> Classification {
    for category in categories {
        if let Some(id) = &category.id {
            let id = id.to_ascii_lowercase();
            if let Some((_, classification)) = CATEGORY_GUIDS.iter().find(|(g, _)| *g == id) {
                return *classification;
            }
        }
    }
    for category in categories {
        if category
            .kind
            .as_deref()
            .is_some_and(|k| k != "UpdateClassification")
        {
            continue;
        }
        let classification = match category.name.as_deref().unwrap_or("") {
            "Security Updates" => Classification::Security,
            "Critical Updates" => Classification::CriticalFix,
            "Definition Updates" => Classification::Definition,
            "Drivers" => Classification::Driver,
            "Upgrades" | "Feature Packs" => Classification::FeatureUpgrade,
            "Updates" | "Update Rollups" | "Service Packs" => Classification::Bugfix,
            "Tools" => Classification::Enhancement,
            _ => continue,
        };
        return classification;
    }
    Classification::Other
}

fn severity(msrc: Option<&str>) -> Severity {
    match msrc.unwrap_or("") {
        "Critical" => Severity::Critical,
        "Important" => Severity::Important,
        "Moderate" => Severity::Moderate,
        "Low" => Severity::Low,
        _ => Severity::Unspecified,
    }
}

/// `2026-11-11T18:00:00Z`, an ISO time without zone (taken as UTC), or ConvertTo-Json's
/// `/Date(1731340800000)/` when a date slipped through unformatted.
fn parse_time(text: &str) -> Option<Time> {
    let text = text.trim();
    if let Some(millis) = text
        .strip_prefix("/Date(")
        .and_then(|rest| rest.split([')', '+', '-']).next())
    {
        let millis: i64 = millis.parse().ok()?;
        return jiff::Timestamp::from_millisecond(millis).ok().map(Time);
    }
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Some(Time(timestamp));
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| Time(z.timestamp()))
}

impl InventoryJson {
    fn into_inventory(self) -> Inventory {
        let os = OsFacts {
            name: self.os.caption.map(|c| c.trim().to_string()),
            version: self.os.version,
            kernel: None,
            architecture: self
                .os
                .architecture
                .map(|a| super::command::normalise_architecture(&a)),
            hostname: self.os.hostname,
        };
        let available = self
            .updates
            .into_vec()
            .into_iter()
            .map(|update| {
                let kbs = update.kb_ids.into_vec();
                let categories = update.categories.into_vec();
                // Updates without a KB (some Defender and driver updates) keep their GUID.
                let id = kbs
                    .first()
                    .cloned()
                    .or(update.update_id.clone())
                    .unwrap_or_else(|| "unknown-update".to_string());
                let mut cves: Vec<String> = update.cve_ids.into_vec();
                cves.retain(|c| c.starts_with("CVE-"));
                AvailableUpdate {
                    id,
                    title: update.title.map(|t| tail_chars(&t, 250)),
                    package: None,
                    version: None,
                    installed_version: None,
                    classification: classify(&categories),
                    severity: severity(update.msrc_severity.as_deref()),
                    cves,
                    released_at: update
                        .last_deployment_change_time
                        .as_deref()
                        .and_then(parse_time),
                    reboot_required: update.reboot_required,
                }
            })
            .collect();
        Inventory {
            os,
            available,
            reboot_pending: self.reboot_required,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_command_is_utf16le_base64_of_the_prefixed_script() {
        let args = powershell_args("install", &["KB5044281"]);
        assert_eq!(args[4], "-EncodedCommand");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&args[5])
            .expect("base64");
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        let script = String::from_utf16(&units).expect("utf-16");
        assert!(script.starts_with("$Action = 'install'\r\n$KbIds = @('KB5044281')\r\n"));
        assert!(script.ends_with(SCRIPT));
    }

    #[test]
    fn dates_in_all_three_shapes() {
        let expected: jiff::Timestamp = "2026-11-11T00:00:00Z".parse().expect("time");
        for text in [
            "2026-11-11T00:00:00Z",
            "2026-11-11T00:00:00",
            "/Date(1794355200000)/",
        ] {
            assert_eq!(parse_time(text).map(|t| t.0), Some(expected), "{text}");
        }
    }

    #[test]
    fn kb_ids_must_be_kb_and_digits() {
        let bad = UpdateRef {
            id: "KB1'; Remove-Item C:\\".to_string(),
            version: None,
        };
        assert!(validated_kb(&bad).is_err());
    }
}
