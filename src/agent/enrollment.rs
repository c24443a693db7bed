//! Agent enrolment: the least-privilege identity of one Asset's agent.
//!
//! An enrolled agent authenticates as the ServiceAccount `patchwave-agent-<asset>` in the
//! Asset's namespace. Its Role `patchwave-agent-<asset>` allows exactly what the agent protocol
//! ([`super::protocol`]) needs and nothing more:
//!
//! - `get`, `list`, `watch` on `assets` with `resourceNames: [<asset>]`: reading its Asset and
//!   watching it with the field selector `metadata.name=<asset>` (the API server authorizes a
//!   list or watch against `resourceNames` only when that field selector is present);
//! - `patch` on `assets/status` with the same `resourceNames`: the server-side apply of
//!   `status.reported` (an apply to an existing object is a `patch`; the agent never creates);
//! - `create` on `serviceaccounts/token` with `resourceNames: [patchwave-agent-<asset>]`: a
//!   new token for itself before the enrolled one expires ([`super::node::token`]); the same
//!   rights, for longer, until the identity is revoked.
//!
//! RBAC cannot say "only `status.reported`": the admission policy in `config/agent-policy/`
//! (a ValidatingAdmissionPolicy for every identity named like this, and for the node agent
//! DaemonSet's `patchwave-node-agent`) rejects any other change, and any write to an Asset that
//! is not the agent's own.
//!
//! The ServiceAccount, Role and RoleBinding carry the labels
//! `app.kubernetes.io/managed-by: kubectl-patchwave` and `patchwave.dev/asset: <asset>`, so
//! `kubectl get sa,role,rolebinding -l patchwave.dev/asset=web-1` shows an agent's identity
//! and revocation deletes only what enrolment made. The agent gets a bound token from the
//! TokenRequest API ([`token_request`]). Revocation deletes the RoleBinding first (the agent
//! may do nothing from then on) and then the ServiceAccount, which invalidates every token
//! bound to it (within 10 s: kube-apiserver caches successful token reviews that long).

use std::collections::BTreeMap;
use std::path::Path;

use jiff::SignedDuration;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::ObjectMeta;
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

use crate::api::GROUP;

/// The label naming the tool that manages an object (Kubernetes' recommended label).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on every object enrolment creates.
pub const MANAGED_BY: &str = "kubectl-patchwave";
/// The label naming the Asset an identity object belongs to.
pub const ASSET_LABEL: &str = "patchwave.dev/asset";
/// Prefix of an enrolled agent's ServiceAccount, Role and RoleBinding: `patchwave-agent-<asset>`.
pub const IDENTITY_PREFIX: &str = "patchwave-agent-";
/// The ServiceAccount of the agent DaemonSet on Kubernetes nodes; it writes the Asset named
/// like its node (the node name is in its pod-bound token).
pub const NODE_AGENT_SERVICE_ACCOUNT: &str = "patchwave-node-agent";
/// Longest Asset name that can be enrolled: the name is the value of [`ASSET_LABEL`], and a
/// label value holds at most 63 characters.
pub const MAX_ASSET_NAME_CHARS: usize = 63;
/// Shortest token lifetime the TokenRequest API accepts.
pub const MIN_TOKEN_TTL: SignedDuration = SignedDuration::from_secs(600);
/// Token lifetime when none is given: a year, so a laptop agent does not lose access while
/// its owner is on holiday; revoke with `kubectl patchwave enroll NAME --revoke`.
pub const DEFAULT_TOKEN_TTL: &str = "8760h";

/// Why an agent identity cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentError {
    /// The Asset name is not a valid Kubernetes object name.
    #[error(
        "asset name {name:?} is not a valid object name: {reason} (use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
    )]
    InvalidAssetName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Asset name is longer than a label value may be.
    #[error(
        "asset name {name:?} has {length} characters, too long to enrol: its agent identity {IDENTITY_PREFIX}{name} is labelled {ASSET_LABEL}={name}, and a label value holds at most {MAX_ASSET_NAME_CHARS} characters; choose a shorter Asset name"
    )]
    AssetNameTooLong {
        /// The name given.
        name: String,
        /// Its length in characters.
        length: usize,
    },
    /// The namespace is not a valid namespace name.
    #[error(
        "namespace {0:?} is not a valid namespace name (a DNS label: lower-case letters, digits and '-', at most 63 characters)"
    )]
    InvalidNamespace(String),
    /// The token lifetime cannot be used.
    #[error("--token-ttl {text:?}: {reason}")]
    TokenTtl {
        /// The lifetime as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The identity of one Asset's agent: names and the objects that make it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The Asset the agent manages.
    pub asset: String,
    /// The namespace of the Asset and of the identity objects.
    pub namespace: String,
    /// Name of the ServiceAccount, Role and RoleBinding: `patchwave-agent-<asset>`.
    pub name: String,
}

impl AgentIdentity {
    /// The identity of Asset `asset` in `namespace`; refuses names that cannot be enrolled.
    pub fn new(asset: &str, namespace: &str) -> Result<Self, EnrollmentError> {
        check_asset_name(asset)?;
        if !is_dns_label(namespace) {
            return Err(EnrollmentError::InvalidNamespace(namespace.to_owned()));
        }
        Ok(Self {
            asset: asset.to_owned(),
            namespace: namespace.to_owned(),
            name: identity_name(asset),
        })
    }

    /// The user name the API server gives the agent's token:
    /// `system:serviceaccount:<namespace>:patchwave-agent-<asset>`.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    /// The labels of every identity object: managed by kubectl-patchwave, for this asset.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            (ASSET_LABEL.to_owned(), self.asset.clone()),
        ])
    }

    /// Whether an object's labels say enrolment made it for this asset (revocation deletes
    /// only such objects, never one a person created under the same name).
    pub fn is_ours(&self, meta: &ObjectMeta) -> bool {
        let labels = meta.labels.as_ref();
        let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        label(MANAGED_BY_LABEL) == Some(MANAGED_BY) && label(ASSET_LABEL) == Some(&self.asset)
    }

    fn metadata(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    /// The agent's ServiceAccount. No pod runs as it, so no token is mounted anywhere; the
    /// agent's only token is the one enrolment requests.
    pub fn service_account(&self) -> ServiceAccount {
        ServiceAccount {
            metadata: self.metadata(),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        }
    }

    /// The agent's Role: read and watch its own Asset, patch its own Asset's status, renew
    /// its own token.
    pub fn role(&self) -> Role {
        let own = Some(vec![self.asset.clone()]);
        Role {
            metadata: self.metadata(),
            rules: Some(vec![
                PolicyRule {
                    api_groups: Some(vec![GROUP.to_owned()]),
                    resources: Some(vec!["assets".to_owned()]),
                    resource_names: own.clone(),
                    verbs: ["get", "list", "watch"].map(str::to_owned).to_vec(),
                    ..PolicyRule::default()
                },
                PolicyRule {
                    api_groups: Some(vec![GROUP.to_owned()]),
                    resources: Some(vec!["assets/status".to_owned()]),
                    resource_names: own,
                    verbs: vec!["patch".to_owned()],
                    ..PolicyRule::default()
                },
                PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["serviceaccounts/token".to_owned()]),
                    resource_names: Some(vec![self.name.clone()]),
                    verbs: vec!["create".to_owned()],
                    ..PolicyRule::default()
                },
            ]),
        }
    }

    /// Binds the Role to the ServiceAccount.
    pub fn role_binding(&self) -> RoleBinding {
        RoleBinding {
            metadata: self.metadata(),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".to_owned()),
                kind: "Role".to_owned(),
                name: self.name.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: self.name.clone(),
                namespace: Some(self.namespace.clone()),
                ..Subject::default()
            }]),
        }
    }

    /// A kubeconfig for the agent: the cluster entry `cluster` (server and CA, as the enrolling
    /// person's kubeconfig has them; a CA file must already be inlined), the bearer `token`,
    /// and the Asset's namespace as default.
    pub fn kubeconfig(&self, cluster_name: &str, cluster: Cluster, token: &str) -> Kubeconfig {
        let context_name = format!("{}@{cluster_name}", self.name);
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: cluster_name.to_owned(),
                cluster: Some(cluster),
                ..NamedCluster::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: self.name.clone(),
                auth_info: Some(AuthInfo {
                    token: Some(token.to_owned().into()),
                    ..AuthInfo::default()
                }),
                ..NamedAuthInfo::default()
            }],
            contexts: vec![NamedContext {
                name: context_name.clone(),
                context: Some(Context {
                    cluster: cluster_name.to_owned(),
                    user: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..Context::default()
                }),
                ..NamedContext::default()
            }],
            current_context: Some(context_name),
            kind: Some("Config".to_owned()),
            api_version: Some("v1".to_owned()),
            ..Kubeconfig::default()
        }
    }
}

/// `patchwave-agent-<asset>`, without checking the name (see [`AgentIdentity::new`]).
pub fn identity_name(asset: &str) -> String {
    format!("{IDENTITY_PREFIX}{asset}")
}

/// The Asset an enrolled agent's ServiceAccount belongs to, if `service_account` is named like
/// one (`patchwave-agent-<asset>`).
pub fn asset_of_service_account(service_account: &str) -> Option<&str> {
    service_account
        .strip_prefix(IDENTITY_PREFIX)
        .filter(|asset| !asset.is_empty())
}

/// Checks that `name` is an Asset name that can be enrolled: a DNS subdomain (what the API
/// server accepts as an object name) of at most [`MAX_ASSET_NAME_CHARS`] characters.
pub fn check_asset_name(name: &str) -> Result<(), EnrollmentError> {
    let invalid = |reason: &str| EnrollmentError::InvalidAssetName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(invalid(&format!("it contains {bad:?}")));
    }
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alphanumeric(name.chars().next()) || !alphanumeric(name.chars().last()) {
        return Err(invalid("it must start and end with a letter or digit"));
    }
    if name
        .split('.')
        .any(|part| !alphanumeric(part.chars().next()) || !alphanumeric(part.chars().last()))
    {
        return Err(invalid(
            "each part between dots must start and end with a letter or digit",
        ));
    }
    let length = name.chars().count();
    if length > MAX_ASSET_NAME_CHARS {
        return Err(EnrollmentError::AssetNameTooLong {
            name: name.to_owned(),
            length,
        });
    }
    Ok(())
}

fn is_dns_label(name: &str) -> bool {
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && alphanumeric(name.chars().next())
        && alphanumeric(name.chars().last())
}

/// Parses a token lifetime such as `8760h` and checks the TokenRequest API's minimum (10
/// minutes). Returns whole seconds.
pub fn parse_token_ttl(text: &str) -> Result<i64, EnrollmentError> {
    let error = |reason: String| EnrollmentError::TokenTtl {
        text: text.to_owned(),
        reason,
    };
    let ttl = crate::engine::duration::parse_duration(text).map_err(error)?;
    if ttl < MIN_TOKEN_TTL {
        return Err(error(
            "the API server issues tokens for at least 10 minutes (600s)".to_owned(),
        ));
    }
    Ok(ttl.as_secs())
}

/// A TokenRequest for a token valid `ttl_seconds`, for the API server's own audience.
pub fn token_request(ttl_seconds: i64) -> TokenRequest {
    TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(ttl_seconds),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    }
}

/// Writes one of an agent's secrets (its kubeconfig, its token) to `path`: readable by the
/// owner only, on disk before it returns, and replacing any older file atomically, so a reader
/// never sees half a secret.
pub fn write_secret_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(directory)?;
    // tempfile creates it 0600 on Unix already; said here so no default can change it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A kubeconfig cluster entry's `certificate-authority-data` for PEM `ca` (base64, as
/// kubeconfig files hold it).
pub fn certificate_authority_data(ca: &[u8]) -> String {
    // k8s-openapi's ByteString is base64 in JSON: the encoding kubeconfig uses too.
    match serde_json::to_value(ByteString(ca.to_vec())) {
        Ok(serde_json::Value::String(encoded)) => encoded,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> AgentIdentity {
        AgentIdentity::new("web-1", "acme").expect("valid names")
    }

    #[test]
    fn names_follow_the_convention() {
        let id = identity();
        assert_eq!(id.name, "patchwave-agent-web-1");
        assert_eq!(
            id.username(),
            "system:serviceaccount:acme:patchwave-agent-web-1"
        );
        assert_eq!(asset_of_service_account(&id.name), Some("web-1"));
        assert_eq!(asset_of_service_account("patchwave-agent-"), None);
        assert_eq!(asset_of_service_account("patchwave-operator"), None);
        for object in [
            id.service_account().metadata,
            id.role().metadata,
            id.role_binding().metadata,
        ] {
            assert_eq!(object.name.as_deref(), Some("patchwave-agent-web-1"));
            assert_eq!(object.namespace.as_deref(), Some("acme"));
            assert!(
                id.is_ours(&object),
                "{object:?} carries the enrolment labels"
            );
        }
    }

    #[test]
    fn role_grants_only_the_agent_protocol_on_its_own_asset() {
        let rules = serde_json::to_value(identity().role().rules).expect("serialises");
        assert_eq!(
            rules,
            serde_json::json!([
                {
                    "apiGroups": ["patchwave.dev"],
                    "resources": ["assets"],
                    "resourceNames": ["web-1"],
                    "verbs": ["get", "list", "watch"]
                },
                {
                    "apiGroups": ["patchwave.dev"],
                    "resources": ["assets/status"],
                    "resourceNames": ["web-1"],
                    "verbs": ["patch"]
                },
                {
                    "apiGroups": [""],
                    "resources": ["serviceaccounts/token"],
                    "resourceNames": ["patchwave-agent-web-1"],
                    "verbs": ["create"]
                }
            ])
        );
    }

    #[test]
    fn binding_ties_role_to_service_account() {
        let binding = identity().role_binding();
        assert_eq!(binding.role_ref.kind, "Role");
        assert_eq!(binding.role_ref.name, "patchwave-agent-web-1");
        let subjects = binding.subjects.expect("subjects");
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "patchwave-agent-web-1");
        assert_eq!(subjects[0].namespace.as_deref(), Some("acme"));
    }

    #[test]
    fn objects_of_people_are_not_ours() {
        let id = identity();
        let mut meta = id.role().metadata;
        meta.labels = Some(BTreeMap::from([(
            ASSET_LABEL.to_owned(),
            "web-1".to_owned(),
        )]));
        assert!(!id.is_ours(&meta));
        meta.labels = None;
        assert!(!id.is_ours(&meta));
        let other = AgentIdentity::new("web-2", "acme").expect("valid");
        assert!(!id.is_ours(&other.role().metadata));
    }

    #[test]
    fn asset_names_are_checked() {
        assert!(AgentIdentity::new("dc01.acme.local", "acme").is_ok());
        let longest = "a".repeat(MAX_ASSET_NAME_CHARS);
        assert!(AgentIdentity::new(&longest, "acme").is_ok());
        let too_long = "a".repeat(MAX_ASSET_NAME_CHARS + 1);
        let error = AgentIdentity::new(&too_long, "acme").expect_err("64 characters");
        assert!(
            error.to_string().contains("64 characters")
                && error.to_string().contains("patchwave-agent-aaaa"),
            "{error}"
        );
        for bad in ["", "Web-1", "web_1", "-web", "web-", "web..1", "a b"] {
            assert!(
                matches!(
                    AgentIdentity::new(bad, "acme"),
                    Err(EnrollmentError::InvalidAssetName { .. })
                ),
                "{bad:?} must be refused"
            );
        }
        assert_eq!(
            AgentIdentity::new("web-1", "Acme"),
            Err(EnrollmentError::InvalidNamespace("Acme".to_owned()))
        );
    }

    #[test]
    fn token_ttl_is_parsed_and_bounded() {
        assert_eq!(parse_token_ttl("8760h"), Ok(8760 * 3600));
        assert_eq!(parse_token_ttl("10m"), Ok(600));
        let short = parse_token_ttl("9m").expect_err("below the minimum");
        assert!(short.to_string().contains("at least 10 minutes"), "{short}");
        assert!(parse_token_ttl("a year").is_err());
        assert_eq!(
            token_request(600).spec.and_then(|s| s.expiration_seconds),
            Some(600)
        );
    }

    #[test]
    fn kubeconfig_holds_server_ca_token_and_namespace() {
        let cluster = Cluster {
            server: Some("https://10.0.0.1:6443".to_owned()),
            certificate_authority_data: Some(certificate_authority_data(b"PEM")),
            ..Cluster::default()
        };
        let config = identity().kubeconfig("prod", cluster, "secret-token");
        let yaml = serde_yaml::to_string(&config).expect("serialises");
        let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("YAML");
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:6443"
        );
        assert_eq!(
            parsed["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(parsed["users"][0]["user"]["token"], "secret-token");
        assert_eq!(parsed["contexts"][0]["context"]["namespace"], "acme");
        assert_eq!(parsed["contexts"][0]["context"]["cluster"], "prod");
        assert_eq!(parsed["current-context"], "patchwave-agent-web-1@prod");
    }
}
