//! `kubectl patchwave enroll`: give one machine's agent an identity that may read its own
//! Asset, write its own Asset's `status.reported` and renew its own token, and nothing else;
//! `--revoke` takes it away again.
//!
//! The naming convention and the objects are in [`crate::agent::enrollment`]; this module
//! talks to the cluster: it creates or updates the Asset, applies the ServiceAccount, Role and
//! RoleBinding (server-side apply as `kubectl-patchwave`), requests a bound token and writes
//! the agent's kubeconfig.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::config::{Cluster as KubeconfigCluster, Kubeconfig};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::cluster::{self, Cluster, ClusterArgs, ObjectRef};
use super::{CliError, print};
use crate::agent::enrollment::{
    AgentIdentity, DEFAULT_TOKEN_TTL, MANAGED_BY, certificate_authority_data, parse_token_ttl,
    token_request, write_secret_file,
};
use crate::api::{Asset, AssetSpec, Criticality, OsFamily, PLUGIN_FIELD_MANAGER};

/// Enrol a machine's agent: an Asset and a least-privilege identity, as a kubeconfig.
///
/// Creates the Asset NAME if it is not there yet (a new Asset needs --os-family), merges
/// --labels into its labels and sets the spec fields given; an existing Asset's OS family is
/// never changed (another --os-family is refused: change it with `kubectl edit`). Then makes
/// the identity of its agent: the ServiceAccount, Role and RoleBinding
/// `patchwave-agent-NAME`, labelled `app.kubernetes.io/managed-by=kubectl-patchwave` and
/// `patchwave.dev/asset=NAME`. The Role
/// allows `get`, `list` and `watch` on this one Asset, `patch` on its status and a new token
/// for its own ServiceAccount (the agent renews it before it expires), nothing else; the
/// admission policy `patchwave-agent-own-asset` (config/agent-policy) further limits the
/// agent to `status.reported`.
///
/// Prints a kubeconfig for the agent (the server and CA of your kubeconfig, a token bound to
/// the ServiceAccount, valid --token-ttl, and the Asset's namespace) to standard output or to
/// --kubeconfig-out (mode 0600). It holds a secret: copy it to the machine only.
///
/// Enrolling again is safe: the identity is updated and a new token issued (older tokens stay
/// valid until they expire or the enrolment is revoked).
///
/// --revoke deletes the RoleBinding, Role and ServiceAccount: the agent may do nothing from
/// then on, and its tokens stop authenticating within 10 seconds (the API server's token
/// cache). The Asset stays (with its history) unless --delete-asset is given.
/// Revoking again is not an error; a NAME with neither an identity nor an Asset is (exit
/// status 1, nothing to revoke), as it is most likely mistyped.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Enrol a Linux web server, put it in the pilot ring, write the agent's kubeconfig
  kubectl patchwave enroll web-1 -n acme --os-family Linux --labels ring=pilot,site=zurich \\
      --kubeconfig-out web-1.kubeconfig
  # ...copy web-1.kubeconfig to the machine, then run there:
  patchwave-agent run --asset web-1 --namespace acme --kubeconfig web-1.kubeconfig

  # A domain controller, critical, with a token valid 90 days
  kubectl patchwave enroll dc01 -n acme --os-family Windows --criticality Critical \\
      --token-ttl 2160h > dc01.kubeconfig

  # Issue a new token for an enrolled asset (for example after the old one expired)
  kubectl patchwave enroll web-1 -n acme --kubeconfig-out web-1.kubeconfig

  # The machine was stolen: lock its agent out at once, keep the Asset's history
  kubectl patchwave enroll lt-meier -n acme --revoke

  # The machine is retired: remove the identity and the Asset
  kubectl patchwave enroll lt-meier -n acme --revoke --delete-asset

  # What enrolment made for an asset
  kubectl get serviceaccount,role,rolebinding -n acme -l patchwave.dev/asset=web-1")]
pub struct Args {
    /// The Asset (its name is also the agent's identity: patchwave-agent-NAME; at most 63
    /// characters).
    #[arg(value_name = "NAME")]
    pub asset: String,
    /// Labels to merge into the Asset's labels, as key=value (comma-separated or repeated).
    /// Rings, windows and policies select assets by label.
    #[arg(
        long,
        value_name = "KEY=VALUE,...",
        value_delimiter = ',',
        conflicts_with = "revoke"
    )]
    pub labels: Vec<String>,
    /// The machine's operating system family (required when the Asset is new).
    #[arg(long, value_name = "FAMILY", value_parser = ["Linux", "Windows", "MacOS"], conflicts_with = "revoke")]
    pub os_family: Option<String>,
    /// Business criticality of the machine (default for a new Asset: Medium).
    #[arg(long, value_name = "LEVEL", value_parser = ["Critical", "High", "Medium", "Low"], conflicts_with = "revoke")]
    pub criticality: Option<String>,
    /// Free-text role, for example domain-controller or erp.
    #[arg(long, value_name = "TEXT", conflicts_with = "revoke")]
    pub role: Option<String>,
    /// Who is responsible for the machine (a person, team or e-mail address).
    #[arg(long, value_name = "TEXT", conflicts_with = "revoke")]
    pub owner: Option<String>,
    /// Human-readable name shown in reports.
    #[arg(long, value_name = "TEXT", conflicts_with = "revoke")]
    pub display_name: Option<String>,
    /// How long the agent's token is valid, as a duration (h, m, s; at least 10m). The API
    /// server may cap it (--service-account-max-token-expiration); the expiry is printed.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_TOKEN_TTL, conflicts_with = "revoke")]
    pub token_ttl: String,
    /// Write the agent's kubeconfig to this file (mode 0600, replaced if it exists) instead of
    /// standard output.
    #[arg(long, value_name = "FILE", conflicts_with = "revoke")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Delete the agent's identity (RoleBinding, Role, ServiceAccount): its permissions end at
    /// once, its tokens stop authenticating within 10 seconds.
    #[arg(long)]
    pub revoke: bool,
    /// With --revoke: delete the Asset too.
    #[arg(long, requires = "revoke")]
    pub delete_asset: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Runs `kubectl patchwave enroll`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    if args.revoke {
        return cluster::block_on(revoke(args));
    }
    let request = EnrolRequest::from_args(args)?;
    cluster::block_on(enroll(args, request))
}

/// What `enroll` was asked to set, checked before anything touches the cluster.
struct EnrolRequest {
    labels: BTreeMap<String, String>,
    spec: Map<String, Value>,
    os_family: Option<OsFamily>,
    criticality: Option<Criticality>,
    token_ttl_seconds: i64,
}

impl EnrolRequest {
    fn from_args(args: &Args) -> Result<Self, CliError> {
        let mut labels = BTreeMap::new();
        for item in args.labels.iter().filter(|item| !item.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                CliError::Usage(format!(
                    "--labels {item:?}: expected key=value, for example ring=pilot"
                ))
            })?;
            if key.is_empty() {
                return Err(CliError::Usage(format!(
                    "--labels {item:?}: the label key is empty"
                )));
            }
            labels.insert(key.to_owned(), value.to_owned());
        }
        let os_family = args
            .os_family
            .as_deref()
            .map(|text| from_word::<OsFamily>(text, "--os-family"))
            .transpose()?;
        let criticality = args
            .criticality
            .as_deref()
            .map(|text| from_word::<Criticality>(text, "--criticality"))
            .transpose()?;
        let mut spec = Map::new();
        let mut set = |field: &str, value: Option<&str>| {
            if let Some(value) = value {
                spec.insert(field.to_owned(), Value::String(value.to_owned()));
            }
        };
        set("osFamily", args.os_family.as_deref());
        set("criticality", args.criticality.as_deref());
        set("role", args.role.as_deref());
        set("owner", args.owner.as_deref());
        set("displayName", args.display_name.as_deref());
        let token_ttl_seconds =
            parse_token_ttl(&args.token_ttl).map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(Self {
            labels,
            spec,
            os_family,
            criticality,
            token_ttl_seconds,
        })
    }
}

/// Reads a word of an API enum (`Linux`, `Critical`) the way the CRD spells it.
fn from_word<T: DeserializeOwned>(text: &str, flag: &str) -> Result<T, CliError> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|e| CliError::Usage(format!("{flag} {text:?}: {e}")))
}

fn identity(args: &Args, cluster: &Cluster) -> Result<AgentIdentity, CliError> {
    AgentIdentity::new(&args.asset, &cluster.namespace).map_err(|e| CliError::Usage(e.to_string()))
}

async fn enroll(args: &Args, request: EnrolRequest) -> Result<ExitCode, CliError> {
    let (cluster_name, cluster_entry) = caller_cluster(&args.cluster)?;
    let cluster = Cluster::connect(&args.cluster).await?;
    let identity = identity(args, &cluster)?;

    // Checked before anything is written, so a refusal leaves nothing half made.
    refuse_foreign::<ServiceAccount>(&cluster, "serviceaccount", &identity).await?;
    refuse_foreign::<Role>(&cluster, "role", &identity).await?;
    refuse_foreign::<RoleBinding>(&cluster, "rolebinding", &identity).await?;
    let asset_message = ensure_asset(&cluster, &identity, &request).await?;
    apply(
        &cluster,
        "serviceaccount",
        &identity,
        &identity.service_account(),
    )
    .await?;
    apply(&cluster, "role", &identity, &identity.role()).await?;
    apply(&cluster, "rolebinding", &identity, &identity.role_binding()).await?;

    let service_account = ObjectRef::new("serviceaccount", &cluster, &identity.name);
    let issued: TokenRequest = cluster
        .api::<ServiceAccount>()
        .create_subresource(
            "token",
            &identity.name,
            &PostParams::default(),
            &token_request(request.token_ttl_seconds),
        )
        .await
        .map_err(|e| service_account.error("request a token for", e))?;
    let status = issued.status.unwrap_or_default();
    let token = status.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        CliError::Cluster(format!(
            "the API server returned no token for {service_account} (TokenRequest status.token is empty)"
        ))
    })?;
    let expires = status.expiration_timestamp.map(|t| t.0);

    let kubeconfig = identity.kubeconfig(&cluster_name, cluster_entry, &token);
    let yaml = serde_yaml::to_string(&kubeconfig)
        .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
    let file = match &args.kubeconfig_out {
        Some(path) => {
            write_private(path, &yaml)?;
            path.display().to_string()
        }
        None => {
            print(&yaml)?;
            "FILE".to_owned()
        }
    };

    let requested = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(request.token_ttl_seconds))
        .ok();
    let capped = match (expires, requested) {
        // A minute of slack for the time between the request and now.
        (Some(expires), Some(requested)) => {
            requested.duration_since(expires) > jiff::SignedDuration::from_mins(1)
        }
        _ => false,
    };
    let mut note = format!(
        "{asset_message}\n\
         Identity {name} in namespace {ns}: ServiceAccount, Role and RoleBinding (read and watch \
         asset {ns}/{asset}, write its status.reported, renew its own token; nothing else).\n",
        name = identity.name,
        ns = identity.namespace,
        asset = identity.asset,
    );
    match expires {
        Some(at) => note += &format!("The token expires at {at}."),
        None => note += "The API server did not say when the token expires.",
    }
    if capped {
        note += &format!(
            " That is sooner than --token-ttl {}: the API server caps token lifetimes \
             (--service-account-max-token-expiration).",
            args.token_ttl
        );
    }
    note += &format!(
        "\n{where_} holds a secret: copy it only to the machine, then start the agent there:\n  \
         patchwave-agent run --asset {asset} --namespace {ns} --kubeconfig {file}\n\
         Lock the agent out at any time with:\n  \
         kubectl patchwave enroll {asset} -n {ns} --revoke\n",
        where_ = if args.kubeconfig_out.is_some() {
            format!("The kubeconfig {file}")
        } else {
            "The kubeconfig above".to_owned()
        },
        asset = identity.asset,
        ns = identity.namespace,
    );
    // Nothing sensible is left to do if standard error is gone.
    let _ = std::io::stderr().write_all(note.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// The caller's cluster entry (server, CA, TLS settings) of the chosen context, with a CA
/// file read into `certificate-authority-data` so the agent's kubeconfig stands alone.
fn caller_cluster(args: &ClusterArgs) -> Result<(String, KubeconfigCluster), CliError> {
    let kubeconfig: Kubeconfig = cluster::read_kubeconfig(args.kubeconfig.as_deref())?;
    let source = args.kubeconfig.as_deref().unwrap_or("~/.kube/config");
    let context_name = args
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or_else(|| {
            CliError::Cluster(format!(
                "the kubeconfig {source} has no current-context; choose one with --context"
            ))
        })?;
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| {
            CliError::Cluster(format!(
                "context \"{context_name}\" is not in the kubeconfig {source}"
            ))
        })?;
    let mut entry = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| {
            CliError::Cluster(format!(
                "cluster \"{cluster_name}\" of context \"{context_name}\" is not in the kubeconfig {source}"
            ))
        })?;
    if entry.server.as_deref().is_none_or(str::is_empty) {
        return Err(CliError::Cluster(format!(
            "cluster \"{cluster_name}\" in the kubeconfig {source} has no server"
        )));
    }
    if entry.certificate_authority_data.is_none()
        && let Some(file) = entry.certificate_authority.take()
    {
        let pem = std::fs::read(&file).map_err(|e| {
            CliError::Cluster(format!(
                "cannot read certificate-authority {file} of cluster \"{cluster_name}\" in the kubeconfig {source}: {e}"
            ))
        })?;
        entry.certificate_authority_data = Some(certificate_authority_data(&pem));
    }
    Ok((cluster_name, entry))
}

/// Creates the Asset, or merges the labels and spec fields given into the existing one.
/// Returns what was done, for the note.
async fn ensure_asset(
    cluster: &Cluster,
    identity: &AgentIdentity,
    request: &EnrolRequest,
) -> Result<String, CliError> {
    let api = cluster.api::<Asset>();
    let object = ObjectRef::new("asset", cluster, &identity.asset);
    let existing = api
        .get_opt(&identity.asset)
        .await
        .map_err(|e| object.error("read", e))?;
    if let Some(existing) = &existing {
        refuse_os_family_change(existing, request, &object)?;
    } else {
        // In a namespace that does not exist every object is "not found"; say which is missing.
        if let Some(missing) = cluster.missing_namespace().await {
            return Err(missing);
        }
        let os_family = request.os_family.ok_or_else(|| {
            CliError::Usage(format!(
                "{object} does not exist yet: say which operating system the machine runs with --os-family Linux|Windows|MacOS"
            ))
        })?;
        let mut spec: AssetSpec = serde_json::from_value(json!({ "osFamily": os_family }))
            .map_err(|e| CliError::Cluster(format!("cannot build the spec of {object}: {e}")))?;
        spec.criticality = request.criticality.unwrap_or_default();
        spec.role = request.spec.get("role").and_then(string);
        spec.owner = request.spec.get("owner").and_then(string);
        spec.display_name = request.spec.get("displayName").and_then(string);
        let mut asset = Asset::new(&identity.asset, spec);
        if !request.labels.is_empty() {
            asset.metadata.labels = Some(request.labels.clone());
        }
        let params = PostParams {
            field_manager: Some(PLUGIN_FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        match api.create(&params, &asset).await {
            Ok(_) => return Ok(format!("Created {object}.")),
            // Someone created it in the meantime: merge into theirs, as below, unless it
            // is another machine's.
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                let theirs = api
                    .get(&identity.asset)
                    .await
                    .map_err(|e| object.error("read", e))?;
                refuse_os_family_change(&theirs, request, &object)?;
            }
            Err(e) => return Err(object.error("create", e)),
        }
    }
    if request.labels.is_empty() && request.spec.is_empty() {
        return Ok(format!("{object} exists; left as it is."));
    }
    let mut patch = Map::new();
    if !request.labels.is_empty() {
        patch.insert("metadata".to_owned(), json!({ "labels": request.labels }));
    }
    if !request.spec.is_empty() {
        patch.insert("spec".to_owned(), Value::Object(request.spec.clone()));
    }
    let params = PatchParams {
        field_manager: Some(PLUGIN_FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(
        &identity.asset,
        &params,
        &Patch::Merge(Value::Object(patch)),
    )
    .await
    .map_err(|e| object.error("update", e))?;
    let mut changed: Vec<String> = request
        .labels
        .keys()
        .map(|k| format!("label {k}"))
        .collect();
    changed.extend(request.spec.keys().map(|k| format!("spec.{k}")));
    Ok(format!("Updated {object}: set {}.", changed.join(", ")))
}

/// Refuses to change the operating system family of an existing Asset. Enrolling again
/// updates labels and descriptive fields, but another family means another machine that
/// took the name by mistake, or a reinstalled one whose reported state no longer holds:
/// either way not something to change in passing.
fn refuse_os_family_change(
    existing: &Asset,
    request: &EnrolRequest,
    object: &ObjectRef,
) -> Result<(), CliError> {
    match request.os_family {
        Some(wanted) if wanted != existing.spec.os_family => Err(CliError::Cluster(format!(
            "{object} exists with osFamily {have:?}; enroll does not change the operating \
             system family of an existing Asset (--os-family {wanted:?}). If this is another \
             machine, enrol it under another name; if the machine really runs {wanted:?} now, \
             change the Asset deliberately (`kubectl edit asset {name} -n {ns}`) and enrol \
             again",
            have = existing.spec.os_family,
            name = object.name,
            ns = object.namespace,
        ))),
        _ => Ok(()),
    }
}

fn string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Refuses to take over an object of that name that enrolment did not make: someone may use
/// it for something else (a ServiceAccount for a workload, a Role with other rules).
async fn refuse_foreign<K>(
    cluster: &Cluster,
    kind: &'static str,
    identity: &AgentIdentity,
) -> Result<(), CliError>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as Resource>::DynamicType: Default,
{
    let object = ObjectRef::new(kind, cluster, &identity.name);
    let existing = cluster
        .api::<K>()
        .get_opt(&identity.name)
        .await
        .map_err(|e| object.error("read", e))?;
    match existing {
        Some(found) if !identity.is_ours(found.meta()) => Err(CliError::Cluster(format!(
            "{object} exists but was not made by enrolment (it lacks the labels \
             app.kubernetes.io/managed-by={MANAGED_BY} and patchwave.dev/asset={}); \
             refusing to take it over",
            identity.asset
        ))),
        _ => Ok(()),
    }
}

/// Server-side applies `value` as `kubectl-patchwave`, taking over fields another manager set
/// (enrolment is the owner of these objects).
async fn apply<K>(
    cluster: &Cluster,
    kind: &'static str,
    identity: &AgentIdentity,
    value: &K,
) -> Result<(), CliError>
where
    K: Resource<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
    <K as Resource>::DynamicType: Default,
{
    let object = ObjectRef::new(kind, cluster, &identity.name);
    let params = PatchParams::apply(PLUGIN_FIELD_MANAGER).force();
    cluster
        .api::<K>()
        .patch(&identity.name, &params, &Patch::Apply(value))
        .await
        .map(|_| ())
        .map_err(|e| object.error("apply", e))
}

/// Writes `text` to `path` readable by the owner only. The file is written beside its target
/// and renamed over it, so an existing file with wider permissions never holds the token.
/// The agent's kubeconfig, private and replaced atomically.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    write_secret_file(path, text).map_err(|e| {
        CliError::Output(std::io::Error::new(
            e.kind(),
            format!("cannot write the kubeconfig {}: {e}", path.display()),
        ))
    })
}

async fn revoke(args: &Args) -> Result<ExitCode, CliError> {
    let cluster = Cluster::connect(&args.cluster).await?;
    let identity = identity(args, &cluster)?;
    let mut removals = vec![
        delete_ours::<RoleBinding>(&cluster, "rolebinding", &identity).await?,
        delete_ours::<Role>(&cluster, "role", &identity).await?,
        delete_ours::<ServiceAccount>(&cluster, "serviceaccount", &identity).await?,
    ];
    let asset = ObjectRef::new("asset", &cluster, &identity.asset);
    if args.delete_asset {
        let removal = match cluster
            .api::<Asset>()
            .delete(&identity.asset, &DeleteParams::default())
            .await
        {
            Ok(_) => Removal::deleted(&asset),
            Err(kube::Error::Api(status)) if status.is_not_found() => Removal::gone(&asset),
            Err(e) => return Err(asset.error("delete", e)),
        };
        removals.push(removal);
    }
    // A name with neither an identity nor an Asset is most likely mistyped: reporting a
    // lockout would leave the real agent its access and the admin believing otherwise.
    // Revoking an existing Asset's agent again still succeeds.
    if !removals.iter().any(|r| r.existed) {
        let asset_exists = !args.delete_asset
            && cluster
                .api::<Asset>()
                .get_opt(&identity.asset)
                .await
                .map_err(|e| asset.error("read", e))?
                .is_some();
        if !asset_exists {
            return Err(CliError::Cluster(format!(
                "nothing to revoke: asset {ns}/{name} has no enrolment (no ServiceAccount \
                 {identity_name}, nor its Role or RoleBinding) and no Asset {name} exists in \
                 namespace {ns}; check the name with `kubectl get assets -n {ns}`",
                ns = identity.namespace,
                name = identity.asset,
                identity_name = identity.name,
            )));
        }
    }
    let mut lines: Vec<String> = removals.into_iter().map(|r| r.line).collect();
    lines.push(format!(
        "The agent of asset {}/{} is locked out: it may do nothing from now on, and its tokens \
         stop authenticating within 10 seconds (the API server caches token reviews that long).{}",
        identity.namespace,
        identity.asset,
        if args.delete_asset {
            ""
        } else {
            " The Asset and its history stay (delete it with --delete-asset)."
        }
    ));
    print(&(lines.join("\n") + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// What `--revoke` did with one object: whether it was there, and the line that says so.
struct Removal {
    existed: bool,
    line: String,
}

impl Removal {
    fn deleted(object: &ObjectRef) -> Self {
        Self {
            existed: true,
            line: format!("Deleted {object}."),
        }
    }

    fn gone(object: &ObjectRef) -> Self {
        Self {
            existed: false,
            line: format!("{object} was already gone."),
        }
    }
}

/// Deletes the identity object `kind` if enrolment made it (its labels say so), guarded by its
/// uid so an object re-created in between is not deleted by mistake.
async fn delete_ours<K>(
    cluster: &Cluster,
    kind: &'static str,
    identity: &AgentIdentity,
) -> Result<Removal, CliError>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as Resource>::DynamicType: Default,
{
    let object = ObjectRef::new(kind, cluster, &identity.name);
    let api = cluster.api::<K>();
    let Some(existing) = api
        .get_opt(&identity.name)
        .await
        .map_err(|e| object.error("read", e))?
    else {
        return Ok(Removal::gone(&object));
    };
    if !identity.is_ours(existing.meta()) {
        return Err(CliError::Cluster(format!(
            "{object} was not made by enrolment (it lacks the labels \
             app.kubernetes.io/managed-by={MANAGED_BY} and patchwave.dev/asset={}); \
             not deleting it",
            identity.asset
        )));
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: existing.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&identity.name, &params).await {
        Ok(_) => Ok(Removal::deleted(&object)),
        // Deleted by someone else in between: it was there, and the agent is locked out.
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(Removal {
            existed: true,
            line: format!("{object} was already gone."),
        }),
        Err(e) => Err(object.error("delete", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Harness::try_parse_from(std::iter::once("enroll").chain(argv.iter().copied()))
            .map(|h| h.args)
    }

    #[test]
    fn flags_become_labels_and_spec_fields() {
        let args = parse(&[
            "web-1",
            "--labels",
            "ring=pilot,site=zurich",
            "--labels",
            "team=ops",
            "--os-family",
            "Windows",
            "--criticality",
            "Critical",
            "--owner",
            "it@acme.example",
        ])
        .expect("valid flags");
        let request = EnrolRequest::from_args(&args).expect("valid request");
        assert_eq!(
            request.labels,
            BTreeMap::from([
                ("ring".to_owned(), "pilot".to_owned()),
                ("site".to_owned(), "zurich".to_owned()),
                ("team".to_owned(), "ops".to_owned()),
            ])
        );
        assert_eq!(request.os_family, Some(OsFamily::Windows));
        assert_eq!(request.criticality, Some(Criticality::Critical));
        assert_eq!(
            Value::Object(request.spec),
            json!({"osFamily": "Windows", "criticality": "Critical", "owner": "it@acme.example"})
        );
        assert_eq!(request.token_ttl_seconds, 8760 * 3600);
    }

    #[test]
    fn bad_flags_are_refused_with_the_flag_named() {
        let args = parse(&["web-1", "--labels", "ring"]).expect("parses");
        let error = EnrolRequest::from_args(&args).err().expect("no value");
        assert!(error.to_string().contains("--labels \"ring\""), "{error}");
        let args = parse(&["web-1", "--token-ttl", "5m"]).expect("parses");
        let error = EnrolRequest::from_args(&args).err().expect("too short");
        assert!(error.to_string().contains("--token-ttl \"5m\""), "{error}");
        assert!(parse(&["web-1", "--os-family", "Solaris"]).is_err());
        assert!(
            parse(&["web-1", "--delete-asset"]).is_err(),
            "needs --revoke"
        );
        assert!(parse(&["web-1", "--revoke", "--labels", "a=b"]).is_err());
    }

    #[test]
    fn the_os_family_of_an_existing_asset_is_not_changed_in_passing() {
        let linux: AssetSpec =
            serde_json::from_value(json!({"osFamily": "Linux"})).expect("a spec");
        let existing = Asset::new("ws-2", linux);
        let object = ObjectRef {
            kind: "asset",
            namespace: "acme".to_owned(),
            name: "ws-2".to_owned(),
        };
        let request = |argv: &[&str]| {
            EnrolRequest::from_args(&parse(argv).expect("valid flags")).expect("valid request")
        };
        let error = refuse_os_family_change(
            &existing,
            &request(&["ws-2", "--os-family", "Windows"]),
            &object,
        )
        .expect_err("another family");
        assert!(matches!(error, CliError::Cluster(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("asset acme/ws-2 exists with osFamily Linux")
                && message.contains("--os-family Windows")
                && message.contains("kubectl edit asset ws-2 -n acme"),
            "{message}"
        );
        // The same family, or none, is enrolling again.
        for argv in [
            &["ws-2", "--os-family", "Linux"][..],
            &["ws-2", "--labels", "a=b"],
        ] {
            assert!(refuse_os_family_change(&existing, &request(argv), &object).is_ok());
        }
    }

    #[test]
    fn kubeconfig_file_is_private_and_replaced() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("agent.kubeconfig");
        std::fs::write(&path, "old").expect("an older file");
        write_private(&path, "new").expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("readable"), "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
