//! The six kinds of `patchwave.dev/v1alpha1`, shared by the operator, the agent and the CLI.
//!
//! Field docs become `kubectl explain` text, so they are written for the people who write the
//! YAML. Everything the schema and CEL can check is checked by the API server; what they cannot
//! (cron expressions, time zone names, references between objects) is checked by the engine.

// Several `printcolumn(type_ = "string", ...)` in one `#[kube]` derive look like duplicated
// attributes to clippy; they are separate columns.
#![allow(clippy::duplicated_attributes)]

pub mod asset;
pub mod common;
pub mod crds;
pub mod incident;
pub mod policy;
pub mod ring;
pub mod rollout;
pub mod window;

pub use asset::{Asset, AssetSpec, AssetStatus};
pub use common::*;
pub use incident::{IncidentImpact, PatchIncident, PatchIncidentSpec};
pub use policy::{PatchPolicy, PatchPolicySpec, PatchPolicyStatus};
pub use ring::{Ring, RingSpec, RingStatus};
pub use rollout::{PatchRollout, PatchRolloutSpec, PatchRolloutStatus};
pub use window::{MaintenanceWindow, MaintenanceWindowSpec, MaintenanceWindowStatus};

/// Field manager of the operator's server-side applies: `status.operation`, the asset's
/// rollout records and state, and the status of every other kind.
pub const OPERATOR_FIELD_MANAGER: &str = "patchwave-operator";
/// Field manager of an agent's server-side applies: only `status.reported` of its own Asset.
pub const AGENT_FIELD_MANAGER: &str = "patchwave-agent";
/// Field manager of the kubectl plugin's changes to spec (approvals, pause, resume, hold) and
/// of the PatchIncidents it records.
pub const PLUGIN_FIELD_MANAGER: &str = "kubectl-patchwave";
