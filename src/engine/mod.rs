//! The rollout engine: pure, deterministic decisions over policies, rings, windows and assets.
//!
//! Nothing in here performs I/O, reads a clock or talks to Kubernetes: the caller passes `now`
//! and the objects, so the operator, `kubectl patchwave plan` and `simulate` all get the same
//! answers from the same inputs.

pub mod duration;
pub mod errors;
pub mod selector;
pub mod windows;
