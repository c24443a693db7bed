//! PatchRollout: one frozen patch set on its way through the rings. Created by the operator;
//! people steer it through the controls in `spec`; it stays as the audit record.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Classification, Condition, Severity, Signature, Time};

/// One frozen patch set on its way through the rings of its policy.
///
/// The operator creates it when the policy's approved set of missing updates changes; the set
/// and ring order never change afterwards, so ring N+1 receives exactly what passed ring N.
/// People steer it with approvals, pause, resume after a halt and abort; the object stays as
/// the audit record of who approved what.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "patchwave.dev",
    version = "v1alpha1",
    kind = "PatchRollout",
    doc = "A PatchRollout is one frozen patch set on its way through the rings of its policy, created by the operator. People steer it with approvals, pause, resume and abort; it stays as the audit record.",
    namespaced,
    status = "PatchRolloutStatus",
    shortname = "pro",
    category = "patchwave",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ring", type_ = "string", json_path = ".status.currentRing"),
    printcolumn(name = "Total", type_ = "integer", json_path = ".status.summary.total"),
    printcolumn(
        name = "Succeeded",
        type_ = "integer",
        json_path = ".status.summary.succeeded"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.summary.failed"
    ),
    printcolumn(
        name = "In-Flight",
        type_ = "integer",
        json_path = ".status.summary.inFlight",
        priority = 1
    ),
    printcolumn(
        name = "Updates",
        type_ = "integer",
        json_path = ".status.summary.updates",
        priority = 1
    ),
    printcolumn(
        name = "Paused",
        type_ = "boolean",
        json_path = ".spec.paused",
        priority = 1
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("!has(oldSelf.abort) || has(self.abort)").message("abort cannot be withdrawn: an aborted rollout stays aborted; the policy creates a new rollout").field_path(".abort"),
)]
#[serde(rename_all = "camelCase")]
pub struct PatchRolloutSpec {
    /// The PatchPolicy that produced this rollout (immutable).
    #[x_kube(validation = Rule::new("self == oldSelf").message("policy is immutable"))]
    #[schemars(length(min = 1, max = 253))]
    pub policy: String,

    /// metadata.generation of the policy when the rollout was created (immutable).
    #[x_kube(validation = Rule::new("self == oldSelf").message("policyGeneration is immutable"))]
    #[serde(default)]
    pub policy_generation: i64,

    /// Content hash of `updates`; operations carry it so agents and auditors can tell sets
    /// apart (immutable).
    #[x_kube(validation = Rule::new("self == oldSelf").message("revision is immutable"))]
    #[schemars(length(min = 1, max = 128))]
    pub revision: String,

    /// The frozen set: exact update ids and versions (immutable, 1 to 2000 entries).
    #[x_kube(validation = Rule::new("self == oldSelf").message("updates are frozen: a rollout never changes its patch set; the policy creates a new rollout instead"))]
    #[schemars(length(min = 1, max = 2000))]
    pub updates: Vec<FrozenUpdate>,

    /// Ring names in order, copied from the policy when the rollout was created (immutable).
    #[x_kube(validation = Rule::new("self == oldSelf").message("rings are frozen for the life of the rollout"), merge_strategy = ListMerge::Set)]
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 253)))]
    pub rings: Vec<String>,

    /// Rings a person approved to start (needed for rings with approval Manual).
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_rings: Vec<Approval>,

    /// Assets a person approved individually (needed for the criticalities listed in the
    /// policy's manualApproval, Critical by default).
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(max = 1000))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_assets: Vec<Approval>,

    /// true: no new operation starts; operations in flight finish. Set back to false to go on.
    #[serde(default)]
    pub paused: bool,

    /// Resumes after halts. A halted ring goes on when a resume names it and the number of the
    /// halt it answers (`status.rings[].halts`), so an old resume never skips a new halt.
    #[schemars(length(max = 64))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumes: Vec<Resume>,

    /// Set to abort: nothing new starts, the rollout ends Aborted, and the policy's next change
    /// creates a new rollout. Cannot be withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Signature>,
}

/// An update of the frozen set.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FrozenUpdate {
    /// Update identifier (KB number, advisory, package name).
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// Exact version to install; absent for updates without versions.
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Human-readable title.
    #[schemars(length(max = 256))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Vendor severity.
    #[serde(default)]
    pub severity: Severity,
    /// Kind of change.
    #[serde(default)]
    pub classification: Classification,
    /// When the vendor released it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Time>,
    /// When it must be installed everywhere, from the policy's deadlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Time>,
}

impl FrozenUpdate {
    /// The update at its frozen version, as operations name it.
    pub fn reference(&self) -> crate::api::asset::UpdateRef {
        crate::api::asset::UpdateRef {
            id: self.id.clone(),
            version: self.version.clone(),
        }
    }
}

/// A person's approval of a ring or an asset.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Name of the approved Ring or Asset.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Who approved, when, and why.
    #[serde(default, flatten)]
    pub signature: Signature,
}

/// A person's decision to continue a halted ring.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    /// The halted ring.
    #[schemars(length(min = 1, max = 253))]
    pub ring: String,
    /// Which halt of that ring this answers (1 for the first); from `status.rings[].halts`.
    #[schemars(range(min = 1))]
    pub halt: i32,
    /// Who resumed, when, and why.
    #[serde(default, flatten)]
    pub signature: Signature,
}

/// Where a rollout stands.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RolloutPhase {
    /// Created; no ring has started.
    #[default]
    Pending,
    /// Operations are running or starting in the current ring.
    Progressing,
    /// The next ring or an asset waits for a person's approval.
    WaitingForApproval,
    /// Nothing can start until a maintenance window opens.
    WaitingForWindow,
    /// The current ring finished; the next starts when the bake time has passed.
    Baking,
    /// A ring's failures exceeded its threshold; nothing new starts until a person resumes
    /// the ring (`spec.resumes`) or aborts the rollout. (A paused rollout keeps its phase and
    /// shows the Paused condition.)
    Halted,
    /// The halted ring's patched assets are being rolled back.
    RollingBack,
    /// Every ring completed.
    Succeeded,
    /// A person aborted it.
    Aborted,
}

impl RolloutPhase {
    /// Every phase, for metrics that report zero as well as counts.
    pub const ALL: [RolloutPhase; 9] = [
        RolloutPhase::Pending,
        RolloutPhase::Progressing,
        RolloutPhase::WaitingForApproval,
        RolloutPhase::WaitingForWindow,
        RolloutPhase::Baking,
        RolloutPhase::Halted,
        RolloutPhase::RollingBack,
        RolloutPhase::Succeeded,
        RolloutPhase::Aborted,
    ];
}

/// Where one ring of a rollout stands.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RingPhase {
    /// Waiting for the previous ring.
    #[default]
    Pending,
    /// Waiting for a person to approve the ring.
    WaitingForApproval,
    /// Started, waiting for a window.
    WaitingForWindow,
    /// Operations running.
    Progressing,
    /// All operations finished; bake time running.
    Baking,
    /// Finished and baked.
    Completed,
    /// Failures exceeded the threshold.
    Halted,
    /// Patched assets are being rolled back.
    RollingBack,
    /// The rollout was aborted before or during this ring.
    Aborted,
}

/// Observed state of a PatchRollout.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PatchRolloutStatus {
    /// Pending, Progressing, WaitingForApproval, WaitingForWindow, Baking, Halted,
    /// RollingBack, Succeeded or Aborted.
    #[serde(default)]
    pub phase: RolloutPhase,
    /// The ring being worked on now.
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_ring: Option<String>,
    /// Counts over all rings (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<RolloutSummary>,
    /// Progress per ring, in ring order.
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rings: Vec<RingProgress>,
    /// Why the rollout halted, naming the failed assets.
    #[schemars(length(max = 4096))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt_reason: Option<String>,
    /// A one-line account of what the rollout waits for or does now.
    #[schemars(length(max = 1024))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the first ring started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the rollout ended (Succeeded or Aborted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// Ready (True once Succeeded), Reconciling, Stalled, Halted, with observedGeneration.
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Asset counts over a whole rollout.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSummary {
    /// Updates in the frozen set.
    pub updates: i32,
    /// Assets that need at least one update of the set.
    pub total: i32,
    /// Assets not started yet.
    pub pending: i32,
    /// Assets with an operation in flight.
    pub in_flight: i32,
    /// Assets patched successfully.
    pub succeeded: i32,
    /// Assets whose operation failed or timed out.
    pub failed: i32,
    /// Assets skipped (held, unscheduled, aborted before their turn).
    pub skipped: i32,
}

/// Progress of one ring of a rollout.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RingProgress {
    /// Ring name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Where the ring stands.
    #[serde(default)]
    pub phase: RingPhase,
    /// Assets of this ring that need at least one update of the set.
    #[serde(default)]
    pub total: i32,
    /// Not started yet.
    #[serde(default)]
    pub pending: i32,
    /// Operation in flight.
    #[serde(default)]
    pub in_flight: i32,
    /// Patched successfully.
    #[serde(default)]
    pub succeeded: i32,
    /// Failed or timed out.
    #[serde(default)]
    pub failed: i32,
    /// Skipped (held, unscheduled, aborted before their turn).
    #[serde(default)]
    pub skipped: i32,
    /// How many times this ring halted; a resume answers the latest.
    #[serde(default)]
    pub halts: i32,
    /// Failures a person accepted by resuming after a halt: the threshold applies to the
    /// failures beyond these.
    #[serde(default)]
    pub accepted_failures: i32,
    /// Names of the failed assets (at most 100 listed).
    #[schemars(length(max = 100))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_assets: Vec<String>,
    /// Members that wait for a per-asset approval (`spec.approvedAssets`, `kubectl patchwave
    /// approve --asset`), at most 100 listed. Empty while the ring itself waits for its
    /// approval (phase WaitingForApproval with this list empty).
    #[schemars(length(max = 100))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting_approval: Vec<String>,
    /// When the ring's first operation started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the ring's last operation finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// The next ring may start at this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_until: Option<Time>,
    /// While the ring waits for a maintenance window (phase WaitingForWindow): the earliest
    /// instant at which a window lets one of its waiting assets start (an Allow window
    /// opens, a Deny window or a cutoff ends). Absent when no window lets one start within
    /// the 400 days the engine looks ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_opens_at: Option<Time>,
    /// Who approved this ring, when and why, as signed in `spec.approvedRings` (rings with
    /// approval Manual only). The operator records an Event when it first appears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Signature>,
    /// The resume in `spec.resumes` that answered this ring's latest halt: who, when, why.
    /// The operator records an Event when it first appears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Signature>,
}
