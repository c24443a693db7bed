//! PatchPolicy: what to install on which assets, in which waves, under which rules.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Classification, Condition, Criticality, IntOrPercent, LabelSelector, RebootPolicy, Severity,
    Time,
};

/// What to install on which assets, in which waves (Rings), with which deadlines.
///
/// When the set of approved, missing updates changes, the operator freezes it into a
/// PatchRollout that moves ring by ring. Two policies may govern the same asset: each update
/// belongs to the highest-priority policy whose filters match it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "patchwave.dev",
    version = "v1alpha1",
    kind = "PatchPolicy",
    doc = "A PatchPolicy says which updates to install on which assets, through which rings, with which deadlines, approvals, reboot and failure behaviour. The operator freezes its approved missing updates into PatchRollouts.",
    namespaced,
    status = "PatchPolicyStatus",
    shortname = "pp",
    category = "patchwave",
    printcolumn(name = "Priority", type_ = "integer", json_path = ".spec.priority"),
    printcolumn(name = "Rings", type_ = "string", json_path = ".spec.rings"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(
        name = "Assets",
        type_ = "integer",
        json_path = ".status.matchedAssets"
    ),
    printcolumn(
        name = "Pending",
        type_ = "integer",
        json_path = ".status.pendingUpdates",
        description = "Approved updates missing on matched assets"
    ),
    printcolumn(
        name = "Overdue",
        type_ = "integer",
        json_path = ".status.overdueUpdates",
        description = "Missing updates past their deadline"
    ),
    printcolumn(
        name = "Compliant",
        type_ = "string",
        json_path = ".status.compliance.compliantPercent",
        description = "Percent of selected assets with no update past its deadline"
    ),
    printcolumn(
        name = "Rollout",
        type_ = "string",
        json_path = ".status.activeRollout"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PatchPolicySpec {
    /// Selects the assets this policy governs by label. Empty or absent: every asset in the
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,

    /// When several policies govern an asset, each update belongs to the policy with the highest
    /// priority whose update filters match it. 0 to 1000, default 0. Two overlapping policies
    /// with equal priority are reported as an error by `validate` and the operator.
    #[schemars(range(min = 0, max = 1000))]
    #[serde(default)]
    pub priority: i32,

    /// Which updates this policy approves.
    #[serde(default)]
    pub updates: UpdateFilter,

    /// Days after an update's release by which it must be installed, per severity.
    /// Used to order work (earliest deadline first), to report compliance and to forecast.
    #[serde(default)]
    pub deadlines: Deadlines,

    /// The waves, in order: names of Ring objects in the same namespace (1 to 16, no
    /// duplicates). Ring N+1 receives exactly what passed ring N. An asset in several rings
    /// belongs to the first; an asset the policy selects but no ring does is reported as
    /// Unassigned and never patched.
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 253)))]
    pub rings: Vec<String>,

    /// Names of the Allow MaintenanceWindows this policy may use. Empty: every Allow window
    /// that selects the asset. Deny windows always apply, named here or not.
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,

    /// Limits across all rings: at most `maxUnavailable` of the assets a budget selects may have
    /// an operation in flight at once (for example at most 1 of the domain controllers).
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disruption_budgets: Vec<DisruptionBudget>,

    /// Criticalities whose assets each need a per-asset approval on the rollout
    /// (an entry `{name: ASSET}` in the rollout's `spec.approvedAssets`). Default Critical: critical servers
    /// stay manually approved. `[]` turns per-asset approval off.
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[schemars(length(max = 4))]
    #[serde(default = "default_manual_approval")]
    pub manual_approval: Vec<Criticality>,

    /// Reboot after installing: IfRequired (default), Never or Always.
    #[serde(default)]
    pub reboot: RebootPolicy,

    /// What happens when a ring's failures exceed its threshold: Halt (default) stops the
    /// rollout until a person resumes or aborts it; Rollback also rolls the halted ring's
    /// patched assets back.
    #[serde(default)]
    pub on_failure: FailureAction,

    /// Names of hook scripts the agents run around an install. Each name must be in the
    /// agent's local allowlist; a policy never ships a command line to endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,

    /// An operation without a result after this long counts as failed (NoResponse), as a
    /// duration such as "2h". Default 2h.
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) > duration('0s')").message("operationTimeout must be a positive duration such as 2h or 90m"))]
    #[schemars(length(max = 32))]
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout: String,

    /// true: no new rollout is created and no new operation starts for this policy.
    /// Operations already running finish.
    #[serde(default)]
    pub suspend: bool,

    /// What the policy is for, in a sentence.
    #[schemars(length(max = 1024))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Which updates a policy approves. An update must pass every filter that is set.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateFilter {
    /// Classifications to approve. Empty: all.
    #[schemars(length(max = 8))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classifications: Vec<Classification>,

    /// Lowest severity to approve (Critical > Important > Moderate > Low > Unspecified).
    /// Absent: all severities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_severity: Option<Severity>,

    /// Glob patterns (`*` and `?`) matched against update ids and package names; only matching
    /// updates are approved. Empty: all.
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,

    /// Glob patterns (`*` and `?`) matched against update ids and package names; matching
    /// updates are never approved. Exclude wins over include.
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,

    /// Approve only updates released at least this many days ago (0 to 365, default 0).
    /// Updates whose agent reports no release date are approved without deferral.
    #[schemars(range(min = 0, max = 365))]
    #[serde(default)]
    pub defer_days: i32,
}

/// Deadlines in days after release. An update's deadline is the one of its severity, or the
/// `security` one if it is a Security update and that is sooner.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Deadlines {
    /// Days for Critical updates (1 to 365, default 7).
    #[schemars(range(min = 1, max = 365))]
    #[serde(default = "seven")]
    pub critical: i32,
    /// Days for Important updates (1 to 365, default 30).
    #[schemars(range(min = 1, max = 365))]
    #[serde(default = "thirty")]
    pub important: i32,
    /// Days for Moderate updates (1 to 365, default 30).
    #[schemars(range(min = 1, max = 365))]
    #[serde(default = "thirty")]
    pub moderate: i32,
    /// Days for Low and Unspecified updates (1 to 365, default 30).
    #[schemars(range(min = 1, max = 365))]
    #[serde(default = "thirty")]
    pub low: i32,
    /// Days for updates classified Security, whatever their severity (1 to 365, default 7).
    #[schemars(range(min = 1, max = 365))]
    #[serde(default = "seven")]
    pub security: i32,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            critical: 7,
            important: 30,
            moderate: 30,
            low: 30,
            security: 7,
        }
    }
}

fn seven() -> i32 {
    7
}

fn thirty() -> i32 {
    30
}

/// At most `maxUnavailable` of the selected assets in flight at once, across all rings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DisruptionBudget {
    /// Selects the assets the budget protects (required).
    pub selector: LabelSelector,
    /// An integer of at least 1, or a percentage of the selected assets from 1% to 100%
    /// (rounded up, minimum 1).
    #[x_kube(validation = Rule::new("string(self).matches('^([1-9][0-9]*|(100|[1-9][0-9]?)%)$')").message("maxUnavailable must be an integer of at least 1 or a percentage from 1% to 100%"))]
    pub max_unavailable: IntOrPercent,
}

/// What the rollout does when a ring halts.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FailureAction {
    /// Stop; a person resumes or aborts.
    #[default]
    Halt,
    /// Stop and roll the halted ring's patched assets back.
    Rollback,
}

/// Names of hook scripts in the agent's local allowlist (letters, digits, `.`, `_`, `-`;
/// no paths, no arguments).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Runs before installing; a failure fails the operation without installing.
    #[schemars(length(max = 63), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_install: Option<String>,
    /// Runs after installing (and rebooting).
    #[schemars(length(max = 63), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_install: Option<String>,
    /// Runs last; a failure fails the operation and counts against the ring.
    #[schemars(length(max = 63), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
}

fn default_manual_approval() -> Vec<Criticality> {
    vec![Criticality::Critical]
}

fn default_operation_timeout() -> String {
    "2h".to_owned()
}

/// Compliance and KPIs of a policy's assets over the last 30 days.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyCompliance {
    /// Assets these figures judged: the selected assets, as they were when the figures were
    /// computed (matchedAssets may be newer). compliantAssets and compliantPercent are of
    /// these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<i32>,
    /// Of those, assets with no missing update past its deadline (under whichever policy owns
    /// the update).
    pub compliant_assets: i32,
    /// compliantAssets as a whole percentage of assets (rounded down); absent when the policy
    /// selects no asset (nothing to judge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliant_percent: Option<i32>,
    /// Selected assets no agent has reported for: what they miss is unknown, so they are not
    /// counted compliant. Absent when every selected asset has reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreported_assets: Option<i32>,
    /// Percent of the updates this policy owns on the selected assets installed within 7 days
    /// of release (or enrolment), judged at the 7-day mark; absent when no mark fell in the
    /// window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_rate_within7_days: Option<i32>,
    /// The same within 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_rate_within30_days: Option<i32>,
    /// Mean hours from release (or enrolment) to first installation, for the updates this
    /// policy owns first installed in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_time_to_patch_hours: Option<i32>,
    /// Failed or timed-out installs and rollbacks of this policy's rollouts, and the incidents
    /// recorded against them, in the window.
    pub incidents: i32,
}

/// Observed state of a PatchPolicy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PatchPolicyStatus {
    /// Assets the policy selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_assets: Option<i32>,
    /// Selected assets no ring of the policy selects (never patched; listed in events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unassigned_assets: Option<i32>,
    /// Selected assets no Allow window selects (never patched; listed in events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unscheduled_assets: Option<i32>,
    /// Missing updates this policy owns on its assets (asset-update pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_updates: Option<i32>,
    /// Of those, past this policy's deadline (asset-update pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_updates: Option<i32>,
    /// Compliance and KPIs of the selected assets over the last 30 days (refreshed at least
    /// every 15 minutes; the definitions are in the README, "KPI definitions"). Absent, like
    /// pendingUpdates and overdueUpdates, until the operator has computed them for this
    /// policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<PolicyCompliance>,
    /// The rollout currently moving through the rings, if any.
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_rollout: Option<String>,
    /// When the last rollout was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rollout_at: Option<Time>,
    /// Ready, Reconciling, Stalled (an invalid spec or unknown reference), with
    /// observedGeneration.
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl PatchPolicyStatus {
    /// The `Ready=False` condition with reason InvalidSpec that the operator writes on a
    /// policy the engine found invalid: such a policy governs nothing.
    pub fn invalid_spec(&self) -> Option<&Condition> {
        self.conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "InvalidSpec")
    }
}
