//! The rollout engine: pure, deterministic decisions over policies, rings, windows and assets.
//!
//! Nothing in here performs I/O, reads a clock or talks to Kubernetes: the caller passes `now`
//! and the objects, so the operator, `kubectl patchwave plan` and `simulate` all get the same
//! answers from the same inputs.

pub mod apply;
pub mod duration;
pub mod errors;
pub mod evaluate;
mod fast_hash;
pub mod selector;
pub mod simulation;
pub mod status;
pub mod updates;
pub mod validation;
pub mod windows;

use std::sync::Arc;

use crate::api::{Asset, MaintenanceWindow, PatchPolicy, PatchRollout, Ring};

/// A count for a message: `1 update`, `3 updates` (the engine's messages, the operator's
/// Events and the plugin's output all say it this way).
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Every object of one namespace the engine decides over. The operator fills it from its
/// caches, the offline commands from YAML files.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// PatchPolicies of the namespace.
    pub policies: Vec<PatchPolicy>,
    /// Rings of the namespace.
    pub rings: Vec<Ring>,
    /// MaintenanceWindows of the namespace.
    pub windows: Vec<MaintenanceWindow>,
    /// Assets of the namespace, with the agents' reported status. Shared, not copied: the
    /// operator's snapshot points into its watch cache, and whoever changes an asset
    /// (`apply`, the simulation) copies only that one (`Arc::make_mut`).
    pub assets: Vec<Arc<Asset>>,
    /// PatchRollouts of the namespace, with their status.
    pub rollouts: Vec<PatchRollout>,
}

impl Inventory {
    /// Adds every object of `other` (assets are shared, not copied).
    pub fn extend_from(&mut self, other: &Inventory) {
        self.policies.extend(other.policies.iter().cloned());
        self.rings.extend(other.rings.iter().cloned());
        self.windows.extend(other.windows.iter().cloned());
        self.assets.extend(other.assets.iter().cloned());
        self.rollouts.extend(other.rollouts.iter().cloned());
    }
}
