//! patchwave: Kubernetes-native patch orchestration.
//!
//! - [`agent`]: the agent protocol and a simulated agent fleet.
//! - [`api`]: the five custom resources of `patchwave.dev/v1alpha1`.
//! - [`devcluster`]: a local etcd + kube-apiserver for tests, the demo and people.

pub mod agent;
pub mod api;
pub mod cli;
pub mod devcluster;
pub mod engine;
pub mod kpi;
pub mod operator;
