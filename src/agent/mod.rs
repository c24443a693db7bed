//! The agent side of patchwave: the protocol between an Asset's agent and the operator, and
//! a simulated agent fleet for tests, the demo and benchmarks.
//!
//! - [`protocol`]: what an agent reads (`status.operation` of its Asset), what it decides
//!   ([`protocol::decide`]) and what it writes (only `status.reported`, by server-side apply
//!   with the field manager `patchwave-agent`). The fleet and the agent on a machine share it.
//! - [`node`]: the agent on one machine (`patchwave-agent run`): its loop, crash-safe journal,
//!   hooks from a local allowlist and reboots, over a [`backend`].
//! - [`backend`]: the package backends (apt, dnf, zypper, Windows Update, softwareupdate, and
//!   a simulated one with a package database in a file).
//! - [`simulated`]: the simulated backend (outcome and duration from annotations), pure, shared
//!   with the offline `kubectl patchwave simulate`.
//! - [`enrollment`]: the least-privilege identity of an enrolled agent (`kubectl patchwave
//!   enroll`).
//! - [`fleet`]: many simulated agents in one process against a real API server
//!   (`patchwave-agent fleet`).
//! - [`files`]: replacing a state file atomically and durably (journal, rollback points, the
//!   simulated package database).

pub mod backend;
pub mod enrollment;
pub mod files;
pub mod fleet;
pub mod node;
pub mod protocol;
pub mod simulated;
