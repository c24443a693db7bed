//! patchwave: Kubernetes-native patch orchestration.
//!
//! - [`api`]: the five custom resources of `patchwave.dev/v1alpha1`.
//! - [`devcluster`]: a local etcd + kube-apiserver for tests, the demo and people.

pub mod api;
pub mod cli;
pub mod devcluster;
pub mod engine;
