//! What the cluster commands share: a client from the kubeconfig flags, the caller's
//! identity for signatures, errors that name the object, and guarded writes to `spec`.
//!
//! Every write is a JSON merge patch on `spec` that carries the `metadata.resourceVersion` of
//! the object it was computed from, so the API server refuses it (409 Conflict) when someone
//! else changed the object in between; the write is then computed again from a fresh read, at
//! most [`WRITE_ATTEMPTS`] times. Lists (approvals, resumes) are written whole, which is safe
//! only because of that precondition.

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Api, Client, Config, Resource};
use serde::de::DeserializeOwned;

use super::CliError;
use crate::api::PLUGIN_FIELD_MANAGER;

/// How many times a write is computed and sent before a conflict is reported.
pub const WRITE_ATTEMPTS: usize = 3;

/// Where to find the cluster: the flags every cluster command takes, as kubectl spells them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Path of the kubeconfig file (several, separated by ':', are merged as kubectl does).
    /// Default: $KUBECONFIG, else ~/.kube/config.
    #[arg(long, env = "KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context to use. Default: its current context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the rollouts and assets. Default: the context's namespace, else "default".
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// A connected cluster: the client, the namespace to work in and who the caller is.
#[derive(Clone)]
pub struct Cluster {
    /// Client for the chosen context.
    pub client: Client,
    /// The namespace the command works in.
    pub namespace: String,
    /// The name of the kubeconfig's user entry of the chosen context (a fallback identity).
    pub kubeconfig_user: Option<String>,
}

impl Cluster {
    /// `namespace NS does not exist` when the API server says so; `None` when it exists or
    /// cannot be read (forbidden), and the caller's own message stands.
    pub async fn missing_namespace(&self) -> Option<CliError> {
        match Api::<Namespace>::all(self.client.clone())
            .get_opt(&self.namespace)
            .await
        {
            Ok(None) => Some(CliError::Cluster(format!(
                "namespace {ns} does not exist; check the name with `kubectl get namespaces`, \
                 or create it with `kubectl create namespace {ns}`",
                ns = self.namespace
            ))),
            _ => None,
        }
    }

    /// Reads the kubeconfig the flags name and builds a client for the chosen context.
    pub async fn connect(args: &ClusterArgs) -> Result<Self, CliError> {
        let kubeconfig = read_kubeconfig(args.kubeconfig.as_deref())?;
        let context_name = args
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone());
        let context = context_name.as_ref().and_then(|wanted| {
            kubeconfig
                .contexts
                .iter()
                .find(|c| &c.name == wanted)
                .and_then(|c| c.context.clone())
        });
        if let Some(wanted) = &args.context
            && context.is_none()
        {
            return Err(CliError::Cluster(format!(
                "context \"{wanted}\" is not in the kubeconfig{}",
                args.kubeconfig
                    .as_deref()
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default()
            )));
        }
        let kubeconfig_user = context.as_ref().and_then(|c| c.user.clone());
        let options = KubeConfigOptions {
            context: context_name,
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| CliError::Cluster(format!("cannot use the kubeconfig: {e}")))?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)
            .map_err(|e| CliError::Cluster(format!("cannot build a Kubernetes client: {e}")))?;
        Ok(Self {
            client,
            namespace,
            kubeconfig_user,
        })
    }

    /// An `Api` for a namespaced kind in the command's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Who signs an approval, resume or abort: the user name the API server knows the caller
    /// by (a SelfSubjectReview), else the kubeconfig's user entry, else `$USER`.
    pub async fn identity(&self) -> String {
        let review = Api::<SelfSubjectReview>::all(self.client.clone())
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await;
        review
            .ok()
            .and_then(|r| r.status?.user_info?.username)
            .filter(|name| !name.is_empty())
            .or_else(|| self.kubeconfig_user.clone())
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

/// Reads the kubeconfig: the given path list (':'-separated, merged), else $KUBECONFIG or
/// ~/.kube/config as kube does.
///
/// A kubeconfig that cannot be read or parsed is a usage error (exit status 2, as for any
/// path that cannot be read): the command never got to the cluster.
pub(crate) fn read_kubeconfig(paths: Option<&str>) -> Result<Kubeconfig, CliError> {
    let paths: Vec<PathBuf> = paths
        .map(|p| {
            std::env::split_paths(p)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if paths.is_empty() {
        return Kubeconfig::read().map_err(|e| {
            CliError::Usage(format!(
                "cannot read the kubeconfig (~/.kube/config; set --kubeconfig or KUBECONFIG): {}",
                kubeconfig_problem(&e)
            ))
        });
    }
    paths
        .iter()
        .try_fold(Kubeconfig::default(), |merged, path| {
            Kubeconfig::read_from(path)
                .and_then(|next| merged.merge(next))
                .map_err(|e| {
                    CliError::Usage(format!(
                        "cannot read the kubeconfig {}: {}",
                        path.display(),
                        kubeconfig_problem(&e)
                    ))
                })
        })
}

/// Why a kubeconfig could not be read, without kube's repetition of the path.
fn kubeconfig_problem(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::ReadConfig(io, _) => io.to_string(),
        other => other.to_string(),
    }
}

/// Runs `future` on a runtime of its own: the commands are synchronous functions.
pub fn block_on<T>(future: impl Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Cluster(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
}

/// An object of a kind in a namespace, for messages: `patchrollout acme/security-fast-1a2b`.
#[derive(Debug, Clone)]
pub struct ObjectRef {
    /// Lower-case kind, as kubectl names it (`patchrollout`, `asset`).
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// The object `name` of `kind` in the cluster's namespace.
    pub fn new(kind: &'static str, cluster: &Cluster, name: &str) -> Self {
        Self {
            kind,
            namespace: cluster.namespace.clone(),
            name: name.to_owned(),
        }
    }

    /// Turns a client error about this object into a message naming it.
    pub fn error(&self, action: &str, error: kube::Error) -> CliError {
        let Self {
            kind,
            namespace,
            name,
        } = self;
        let message = match &error {
            kube::Error::Api(status) if status.is_not_found() => {
                format!("{kind} {namespace}/{name} not found in namespace {namespace}")
            }
            kube::Error::Api(status) if status.is_forbidden() => format!(
                "not allowed to {action} {kind} {namespace}/{name}: {}",
                status.message
            ),
            kube::Error::Api(status) if status.is_invalid() => format!(
                "the API server refused the change to {kind} {namespace}/{name}: {}",
                status.message
            ),
            kube::Error::Api(status) => format!(
                "cannot {action} {kind} {namespace}/{name}: {} ({})",
                status.message, status.code
            ),
            other => format!("cannot {action} {kind} {namespace}/{name}: {other}"),
        };
        CliError::Cluster(message)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What a command decided after reading the object.
#[derive(Debug)]
pub enum Change {
    /// Nothing to write; the message says why (already approved, already paused, ...).
    Nothing(String),
    /// Merge this into `spec`; the message says what was done.
    Spec(serde_json::Value, String),
}

/// Reads `object`, lets `decide` compute the change to its spec, and writes it as a JSON merge
/// patch guarded by the resourceVersion that was read. On a conflict the object is read again
/// and `decide` runs again, at most [`WRITE_ATTEMPTS`] times. Returns the message of the
/// change (or of why nothing was written).
pub async fn change_spec<K>(
    api: &Api<K>,
    object: &ObjectRef,
    mut decide: impl FnMut(&K) -> Result<Change, CliError>,
) -> Result<String, CliError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let params = PatchParams {
        field_manager: Some(PLUGIN_FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    for attempt in 1..=WRITE_ATTEMPTS {
        let current = api
            .get(&object.name)
            .await
            .map_err(|e| object.error("read", e))?;
        let (spec, message) = match decide(&current)? {
            Change::Nothing(message) => return Ok(message),
            Change::Spec(spec, message) => (spec, message),
        };
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": current.meta().resource_version },
            "spec": spec,
        });
        match api
            .patch(&object.name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(message),
            Err(kube::Error::Api(status)) if status.is_conflict() && attempt < WRITE_ATTEMPTS => {
                tracing::debug!(%object, attempt, "conflict, reading again");
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                return Err(CliError::Cluster(format!(
                    "{object} kept changing while it was being written ({WRITE_ATTEMPTS} attempts); try again: {}",
                    status.message
                )));
            }
            Err(e) => return Err(object.error("change", e)),
        }
    }
    Err(CliError::Cluster(format!(
        "{object} could not be written after {WRITE_ATTEMPTS} attempts"
    )))
}
