//! Asset: one managed endpoint. People (or enrolment) own `spec`, the agent owns
//! `status.reported`, the operator owns `status.operation` and the rest of `status`.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Classification, Condition, Criticality, OperationAction, OsFamily, RebootPolicy, Severity, Time,
};

/// Upper bound on updates an agent may report as available; keeps an Asset far below etcd's
/// object size limit (an agent must not be able to write a 10 MB status).
pub const MAX_AVAILABLE_UPDATES: usize = 500;
/// Upper bound on installed-update history entries an agent keeps in its report.
pub const MAX_INSTALLED_HISTORY: usize = 1000;
/// Upper bound on per-rollout records the operator keeps on an Asset.
pub const MAX_ROLLOUT_RECORDS: usize = 32;

/// One managed endpoint: a server, laptop, desktop or Kubernetes node.
///
/// Labels on the Asset drive which Ring, MaintenanceWindow and PatchPolicy select it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "patchwave.dev",
    version = "v1alpha1",
    kind = "Asset",
    doc = "An Asset is one managed endpoint (server, laptop, desktop or Kubernetes node). People own spec; the agent on the machine owns status.reported; the operator owns status.operation and the rest of status. Labels select its rings, windows and policies.",
    namespaced,
    status = "AssetStatus",
    shortname = "ast",
    category = "patchwave",
    printcolumn(name = "OS", type_ = "string", json_path = ".spec.osFamily"),
    printcolumn(
        name = "Criticality",
        type_ = "string",
        json_path = ".spec.criticality"
    ),
    printcolumn(
        name = "Role",
        type_ = "string",
        json_path = ".spec.role",
        priority = 1
    ),
    printcolumn(name = "Hold", type_ = "boolean", json_path = ".spec.hold"),
    printcolumn(
        name = "Missing",
        type_ = "integer",
        json_path = ".status.missingUpdates",
        description = "Updates the agent reports as available and not yet installed"
    ),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Reachable",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Reachable\")].status"
    ),
    printcolumn(
        name = "Heartbeat",
        type_ = "date",
        json_path = ".status.reported.lastHeartbeat"
    ),
    printcolumn(
        name = "Owner",
        type_ = "string",
        json_path = ".spec.owner",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AssetSpec {
    /// Human-readable name shown in reports, for example "Accounting laptop of A. Meier".
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,

    /// Operating system family: Windows, MacOS or Linux.
    pub os_family: OsFamily,

    /// Business criticality: Critical, High, Medium (default) or Low. Within a ring, more
    /// critical assets are patched first when deadlines are equal, and the criticalities listed
    /// in a PatchPolicy's `manualApproval` need a per-asset approval on the rollout.
    #[serde(default)]
    pub criticality: Criticality,

    /// Free-text role, for example "domain-controller", "erp", "file-server", "kubernetes-node".
    /// Informational; use labels to select assets.
    #[schemars(length(max = 63))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,

    /// true: never patched until cleared, whatever the policies say. The asset is reported
    /// as Held, never silently skipped.
    #[serde(default)]
    pub hold: bool,

    /// Why the asset is on hold (shown in status and reports).
    #[schemars(length(max = 1024))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,

    /// Who is responsible for the asset (a person, team or e-mail address).
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,

    /// How long the agent may stay silent before the asset is marked Reachable=False,
    /// as a duration such as "30m" or "2h". Default 30m. Laptops that sleep may need hours.
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')").message("staleAfter must be a duration such as 30m, 2h or 1h30m"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after: Option<String>,

    /// Typical time an operation takes on this asset, including reboot, as a duration such as
    /// "20m". Used only for forecasts (`kubectl patchwave plan`). Default 10m.
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')").message("expectedDuration must be a duration such as 10m, 1h or 1h30m"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_duration: Option<String>,
}

impl Asset {
    /// What its agent last reported; `None` while no agent has reported for it.
    pub fn reported(&self) -> Option<&ReportedState> {
        self.status.as_ref().and_then(|s| s.reported.as_ref())
    }

    /// The updates its agent last reported as available (none before the first report).
    pub fn available_updates(&self) -> &[AvailableUpdate] {
        self.reported()
            .map(|r| r.available_updates.as_slice())
            .unwrap_or_default()
    }
}

impl AssetSpec {
    /// The spec of an asset running `os_family`, every other field at its default (as a
    /// manifest that names only `osFamily` reads).
    pub fn new(os_family: OsFamily) -> Self {
        AssetSpec {
            display_name: None,
            os_family,
            criticality: Criticality::default(),
            role: None,
            hold: false,
            hold_reason: None,
            owner: None,
            stale_after: None,
            expected_duration: None,
        }
    }
}

/// Observed state of an Asset. `reported` belongs to the agent; everything else to the operator.
/// Each half is written with server-side apply under its own field manager.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AssetStatus {
    /// What the agent last reported (written only by the asset's own agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<ReportedState>,

    /// What the agent must do now (written only by the operator). The agent executes exactly
    /// this, and only while an Allow window is open for the asset and before `notAfter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,

    /// The asset's standing in each rollout that touched it: what it was asked to do and how it
    /// ended. Kept so that no asset ever receives two operations for the same rollout, even
    /// across operator restarts. Newest last; at most 32 entries.
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<AssetRolloutRecord>,

    /// Number of updates the agent reports as available (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_updates: Option<i32>,

    /// One word for where the asset stands (the most pressing across its policies): UpToDate,
    /// Patched, Pending, Failed, Held, WaitingForApproval, Unscheduled, Unassigned, Unmanaged
    /// (it misses updates and no valid policy selects it), or Unknown while no agent has
    /// reported for it.
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,

    /// Kubernetes-style conditions: Reachable (agent heard from within staleAfter), Ready.
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The metadata.generation the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The agent's report: inventory, history and the result of its last operation.
/// Sizes are bounded so that a misbehaving agent cannot bloat the object.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReportedState {
    /// Version of the agent binary.
    #[schemars(length(max = 64))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,

    /// Last time the agent checked in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Time>,

    /// Last time the agent refreshed its inventory of available updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_refreshed_at: Option<Time>,

    /// Package backend the agent uses: apt, dnf, zypper, windows-update, softwareupdate or
    /// simulated.
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,

    /// Facts about the operating system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsFacts>,

    /// Updates that are available and not installed. At most 500 entries.
    #[schemars(length(max = 500))]
    #[serde(default)]
    pub available_updates: Vec<AvailableUpdate>,

    /// Updates installed (or rolled back) on this asset, newest last, for compliance KPIs.
    /// At most 1000 entries; the agent drops the oldest.
    #[schemars(length(max = 1000))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub installed_history: Vec<InstalledUpdate>,

    /// true when the OS waits for a reboot to finish installing.
    #[serde(default)]
    pub reboot_pending: bool,

    /// Outcome of the last operation the agent executed (or is executing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_operation: Option<OperationResult>,
}

/// Operating system facts reported by the agent.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OsFacts {
    /// Distribution or product name, for example "Debian GNU/Linux", "Windows Server 2022".
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Version or build, for example "12.7", "10.0.20348", "14.6.1".
    #[schemars(length(max = 64))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kernel release (Linux, macOS).
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// CPU architecture, for example amd64 or arm64.
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Host name as the machine knows itself.
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// An update the agent found available.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AvailableUpdate {
    /// Identifier unique on this asset: a KB number ("KB5044281"), an advisory
    /// ("RHSA-2026:1234"), a package name ("openssl") or a macOS label.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// Human-readable title.
    #[schemars(length(max = 256))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Package name, when the update is a package (include/exclude globs also match it).
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Version that would be installed.
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Version installed now (what a rollback returns to).
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    /// Kind of change.
    #[serde(default)]
    pub classification: Classification,
    /// Vendor severity.
    #[serde(default)]
    pub severity: Severity,
    /// CVE identifiers fixed by the update. At most 64.
    #[x_kube(validation = Rule::new("self.all(c, c.matches('^CVE-[0-9]{4}-[0-9]{4,}$'))").message("cves entries must look like CVE-2026-12345"))]
    #[schemars(length(max = 64), inner(length(max = 32)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    /// When the vendor released the update; deadlines and deferDays count from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Time>,
    /// true if installing requires a reboot.
    #[serde(default)]
    pub reboot_required: bool,
}

impl AvailableUpdate {
    /// The update at its available version, as operations and frozen sets name it.
    pub fn reference(&self) -> UpdateRef {
        UpdateRef {
            id: self.id.clone(),
            version: self.version.clone(),
        }
    }
}

/// An entry of the installed-update history.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstalledUpdate {
    /// Update identifier, as in availableUpdates.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// Version that is now installed.
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Package name, copied from the available update: policies' include and exclude globs
    /// match it, so the KPIs can tell which policy owned an update no longer reported.
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Install for a new version, Rollback for a return to an older one.
    #[serde(default)]
    pub action: OperationAction,
    /// When the change finished.
    pub at: Time,
    /// When the vendor released the update, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Time>,
    /// Vendor severity, copied from the available update.
    #[serde(default)]
    pub severity: Severity,
    /// Kind of change, copied from the available update.
    #[serde(default)]
    pub classification: Classification,
    /// Rollout that installed it; empty when installed outside patchwave.
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
}

/// What the operator asks the agent to do.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Unique id of this operation; the agent journals it so a restart never runs it twice.
    #[schemars(length(min = 1, max = 512))]
    pub id: String,
    /// PatchRollout this operation belongs to.
    #[schemars(length(min = 1, max = 253))]
    pub rollout: String,
    /// Ring of the rollout the asset belongs to.
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<String>,
    /// Content hash of the rollout's frozen update set.
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Install or Rollback.
    pub action: OperationAction,
    /// The exact updates, with versions.
    #[schemars(length(max = 500))]
    pub updates: Vec<UpdateRef>,
    /// Reboot behaviour after installing.
    #[serde(default)]
    pub reboot: RebootPolicy,
    /// Names of local hook scripts; the agent runs only names in its own allowlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<super::policy::Hooks>,
    /// When the operator issued the operation.
    pub issued_at: Time,
    /// The agent must not start after this instant (the window end minus its cutoff).
    pub not_after: Time,
    /// Without a result by this instant the operation counts as failed (NoResponse).
    pub timeout_at: Time,
}

/// An update at an exact version.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRef {
    /// Update identifier.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// Exact version; empty for updates without versions (Windows KBs).
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// How an operation went.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationPhase {
    /// The agent is executing it.
    Running,
    /// Every listed update ended at its listed version (and the health check passed).
    Succeeded,
    /// At least one update failed, a hook failed or the health check failed.
    Failed,
    /// No result within the operation timeout (set by the operator, not the agent).
    NoResponse,
}

/// The result of an operation, as reported by the agent.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperationResult {
    /// Id of the operation this result is for.
    #[schemars(length(min = 1, max = 512))]
    pub id: String,
    /// Running, Succeeded or Failed.
    pub phase: OperationPhase,
    /// When the agent started executing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the agent finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Versions now installed for the operation's updates.
    #[schemars(length(max = 500))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub installed: Vec<UpdateRef>,
    /// What went wrong, in words a person can act on (tool output excerpt included).
    #[schemars(length(max = 4096))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The asset's standing in one rollout (operator-owned).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AssetRolloutRecord {
    /// PatchRollout name.
    #[schemars(length(min = 1, max = 253))]
    pub rollout: String,
    /// Ring the asset belonged to in that rollout.
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<String>,
    /// Id of the last operation issued for that rollout.
    #[schemars(length(max = 512))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Install or Rollback.
    #[serde(default)]
    pub action: OperationAction,
    /// Running, Succeeded, Failed or NoResponse.
    pub phase: OperationPhase,
    /// When the operation was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When its result arrived (or it timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The agent's message for a failure.
    #[schemars(length(max = 4096))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
