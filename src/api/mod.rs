//! The five kinds of `patchwave.dev/v1alpha1`, shared by the operator, the agent and the CLI.
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
pub mod policy;
pub mod ring;
pub mod rollout;
pub mod window;

pub use asset::{Asset, AssetSpec, AssetStatus};
pub use common::*;
pub use policy::{PatchPolicy, PatchPolicySpec, PatchPolicyStatus};
pub use ring::{Ring, RingSpec, RingStatus};
pub use rollout::{PatchRollout, PatchRolloutSpec, PatchRolloutStatus};
pub use window::{MaintenanceWindow, MaintenanceWindowSpec, MaintenanceWindowStatus};
