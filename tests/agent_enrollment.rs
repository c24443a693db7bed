#![allow(clippy::unwrap_used)] // test helpers fail loudly by design
//! Agent enrolment and the agent admission policy against a real kube-apiserver (RBAC on,
//! TokenRequest API, the policy from `config/agent-policy` applied with `kubectl apply -k`).
//!
//! Every agent here authenticates with the token `kubectl patchwave enroll` printed (or, for
//! the identities with deliberately broader RBAC, impersonation of the same user name), so
//! what is allowed and refused is what a real agent meets.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use patchwave::agent::enrollment::{AgentIdentity, NODE_AGENT_SERVICE_ACCOUNT, token_request};
use patchwave::agent::node::token::BoundToken;
use patchwave::agent::protocol;
use patchwave::api::asset::{AvailableUpdate, OperationPhase, OperationResult, ReportedState};
use patchwave::api::{
    Asset, AssetSpec, Criticality, OPERATOR_FIELD_MANAGER, OsFamily, Severity, Time,
};
use serde_json::{Value, json};
use support::TestEnv;

/// The message every denial of the admission policy starts with.
const POLICY_DENIED: &str = "ValidatingAdmissionPolicy 'patchwave-agent-own-asset'";

// ---------------------------------------------------------------------------------------
// Harness

/// Installs the CRDs and the agent policy (once per process) and waits until the policy is
/// enforced (the API server picks new policies up within a second or two).
async fn setup(prefix: &str) -> TestEnv {
    let env = support::test_env(prefix).await;
    tokio::task::spawn_blocking(|| {
        support::install_project_crds();
        install_policy();
    })
    .await
    .unwrap();
    env
}

fn install_policy() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let plane = support::control_plane();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/agent-policy");
        support::run(plane.kubectl().args(["apply", "-k"]).arg(&dir));
        // Probe: an agent identity allowed by RBAC to create Assets; the policy must refuse.
        let namespace = support::unique_name("policy-probe");
        support::run(plane.kubectl().args(["create", "namespace", &namespace]));
        support::run(plane.kubectl().args([
            "create",
            "role",
            "probe",
            "--verb=create",
            "--resource=assets.patchwave.dev",
            "-n",
            &namespace,
        ]));
        let user = format!("system:serviceaccount:{namespace}:patchwave-agent-probe");
        support::run(plane.kubectl().args([
            "create",
            "rolebinding",
            "probe",
            "--role=probe",
            &format!("--user={user}"),
            "-n",
            &namespace,
        ]));
        let manifest = "{\"apiVersion\":\"patchwave.dev/v1alpha1\",\"kind\":\"Asset\",\
             \"metadata\":{\"name\":\"probe\"},\"spec\":{\"osFamily\":\"Linux\"}}";
        for _ in 0..60 {
            let mut command = plane.kubectl();
            command
                .args(["create", "--dry-run=server", "-f", "-", "-n", &namespace])
                .arg(format!("--as={user}"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = command.spawn().unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(manifest.as_bytes())
                .unwrap();
            let output = child.wait_with_output().unwrap();
            if String::from_utf8_lossy(&output.stderr).contains(POLICY_DENIED) {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("the agent policy is not enforced 30 s after kubectl apply -k config/agent-policy");
    });
}

/// The plugin with `args` as admin, in the test's namespace.
fn plugin(env: &TestEnv, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"));
    command
        .env("KUBECONFIG", env.control_plane.kubeconfig_path())
        .args(args)
        .args(["-n", &env.namespace]);
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the plugin, asserts success, returns stdout and stderr.
fn ok(env: &TestEnv, args: &[&str]) -> (String, String) {
    let output = plugin(env, args).output().unwrap();
    let (out, err) = text(&output);
    assert!(
        output.status.success(),
        "{args:?} failed ({}):\n{out}\n{err}",
        output.status
    );
    (out, err)
}

/// Runs the plugin, asserts exit status `code`, returns stderr.
fn fails(env: &TestEnv, args: &[&str], code: i32) -> String {
    let output = plugin(env, args).output().unwrap();
    let (out, err) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?} should exit with {code}:\n{out}\n{err}"
    );
    err
}

/// Enrols `asset` with `extra` flags, writing the kubeconfig to a file in `dir`; returns its
/// path and the note printed on stderr.
fn enroll(env: &TestEnv, dir: &Path, asset: &str, extra: &[&str]) -> (PathBuf, String) {
    let path = dir.join(format!("{asset}.kubeconfig"));
    let path_text = path.display().to_string();
    let mut args = vec!["enroll", asset, "--kubeconfig-out", &path_text];
    args.extend_from_slice(extra);
    let (out, err) = ok(env, &args);
    assert_eq!(out, "", "with --kubeconfig-out nothing goes to stdout");
    (path, err)
}

/// A client built from a kubeconfig file exactly as an agent would build it.
async fn client_from(path: &Path) -> (Client, String) {
    let kubeconfig = Kubeconfig::read_from(path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let namespace = config.default_namespace.clone();
    (Client::try_from(config).unwrap(), namespace)
}

fn linux_asset(name: &str) -> Asset {
    Asset::new(
        name,
        AssetSpec {
            criticality: Criticality::Medium,
            ..AssetSpec::new(OsFamily::Linux)
        },
    )
}

async fn create_asset(env: &TestEnv, name: &str) {
    env.api::<Asset>()
        .create(&PostParams::default(), &linux_asset(name))
        .await
        .unwrap();
}

fn now() -> Timestamp {
    Timestamp::now().round(jiff::Unit::Second).unwrap()
}

fn good_report() -> ReportedState {
    ReportedState {
        agent_version: Some("0.1.0".to_owned()),
        last_heartbeat: Some(Time(now())),
        backend: Some("apt".to_owned()),
        available_updates: vec![
            AvailableUpdate {
                id: "openssl".to_owned(),
                version: Some("3.0.15-1".to_owned()),
                severity: Severity::Critical,
                cves: vec!["CVE-2026-12345".to_owned()],
                ..AvailableUpdate::default()
            },
            AvailableUpdate {
                id: "curl".to_owned(),
                version: Some("8.5.0-2".to_owned()),
                ..AvailableUpdate::default()
            },
        ],
        ..ReportedState::default()
    }
}

/// The status code and message of an API error; panics on success or another error.
fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message.clone()),
        other => panic!("{what}: expected an API error, got {other:?}"),
    }
}

fn assert_denied<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
    what: &str,
    code: u16,
    needles: &[&str],
) {
    let (got, message) = api_error(result, what);
    assert_eq!(got, code, "{what}: {message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{what}: message should contain {needle:?}: {message}"
        );
    }
}

/// Server-side apply of raw `status` on Asset `name` as the agent (field manager
/// patchwave-agent).
async fn apply_status(api: &Api<Asset>, name: &str, status: Value) -> Result<Asset, kube::Error> {
    let body = json!({
        "apiVersion": "patchwave.dev/v1alpha1",
        "kind": "Asset",
        "metadata": { "name": name },
        "status": status,
    });
    api.patch_status(name, &protocol::patch_params(), &Patch::Apply(body))
        .await
}

/// The operator's write: `status.operation` and `status.state` by server-side apply as
/// patchwave-operator, with the admin client.
async fn operator_writes(env: &TestEnv, name: &str, operation_id: &str) -> Asset {
    let body = json!({
        "apiVersion": "patchwave.dev/v1alpha1",
        "kind": "Asset",
        "metadata": { "name": name },
        "status": {
            "state": "InProgress",
            "operation": {
                "id": operation_id,
                "rollout": "r1",
                "action": "Install",
                "updates": [{"id": "openssl", "version": "3.0.15-1"}],
                "issuedAt": now().to_string(),
                "notAfter": (now() + jiff::SignedDuration::from_hours(2)).to_string(),
                "timeoutAt": (now() + jiff::SignedDuration::from_hours(4)).to_string(),
            },
        },
    });
    env.api::<Asset>()
        .patch_status(
            name,
            &PatchParams::apply(OPERATOR_FIELD_MANAGER),
            &Patch::Apply(body),
        )
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn enroll_creates_the_asset_and_a_kubeconfig_the_agent_works_with() {
    let env = setup("enroll-works").await;
    let dir = tempfile::tempdir().unwrap();
    let (path, note) = enroll(
        &env,
        dir.path(),
        "web-1",
        &[
            "--labels",
            "ring=pilot,site=zurich",
            "--os-family",
            "Linux",
            "--criticality",
            "High",
            "--token-ttl",
            "24h",
        ],
    );

    // The note says how to start the agent, with this very file.
    let expected = format!(
        "patchwave-agent run --asset web-1 --namespace {} --kubeconfig {}",
        env.namespace,
        path.display()
    );
    assert!(note.contains(&expected), "{note}");
    // The token lives --token-ttl (24h), give or take the time the test took.
    let expires: Timestamp = note
        .split("The token expires at ")
        .nth(1)
        .and_then(|rest| rest.split_once("Z."))
        .map(|(at, _)| format!("{at}Z"))
        .unwrap_or_else(|| panic!("no expiry in the note: {note}"))
        .parse()
        .unwrap();
    let lifetime = expires.duration_since(Timestamp::now());
    assert!(
        lifetime > jiff::SignedDuration::from_hours(23)
            && lifetime <= jiff::SignedDuration::from_hours(24),
        "token lifetime {lifetime:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the kubeconfig holds a token");
    }

    // The Asset, with labels and spec from the flags.
    let asset = env.api::<Asset>().get("web-1").await.unwrap();
    assert_eq!(
        asset.labels().get("ring").map(String::as_str),
        Some("pilot")
    );
    assert_eq!(
        asset.labels().get("site").map(String::as_str),
        Some("zurich")
    );
    assert_eq!(asset.spec.os_family, OsFamily::Linux);
    assert_eq!(asset.spec.criticality, Criticality::High);

    // The identity objects, labelled.
    let identity = AgentIdentity::new("web-1", &env.namespace).unwrap();
    let account = env
        .api::<ServiceAccount>()
        .get("patchwave-agent-web-1")
        .await
        .unwrap();
    let role = env
        .api::<Role>()
        .get("patchwave-agent-web-1")
        .await
        .unwrap();
    let binding = env
        .api::<RoleBinding>()
        .get("patchwave-agent-web-1")
        .await
        .unwrap();
    for meta in [&account.metadata, &role.metadata, &binding.metadata] {
        assert!(identity.is_ours(meta), "{meta:?}");
    }
    assert_eq!(role.rules, identity.role().rules);

    // The kubeconfig: the caller's server, the namespace of the Asset, a token.
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    assert_eq!(
        kubeconfig.clusters[0]
            .cluster
            .as_ref()
            .and_then(|c| c.server.as_deref()),
        Some(env.control_plane.server_url())
    );
    let (client, namespace) = client_from(&path).await;
    assert_eq!(namespace, env.namespace);
    let agent: Api<Asset> = Api::default_namespaced(client.clone());

    // It reports inventory...
    let stored = protocol::report(&agent, "web-1", &good_report())
        .await
        .unwrap();
    assert_eq!(
        stored.status.and_then(|s| s.reported),
        Some(good_report_with(&stored_heartbeat(&env, "web-1").await))
    );
    // ...reads its Asset...
    assert_eq!(agent.get("web-1").await.unwrap().name_any(), "web-1");
    // ...lists and watches it with the field selector the RBAC rule needs...
    let own = ListParams::default().fields("metadata.name=web-1");
    let listed = agent.list(&own).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let watch = WatchParams::default()
        .fields("metadata.name=web-1")
        .timeout(20);
    let mut events = agent
        .watch(&watch, &listed.metadata.resource_version.unwrap())
        .await
        .unwrap()
        .boxed();
    // ...and sees the operator's operation arrive on the watch.
    operator_writes(&env, "web-1", "r1/web-1/install").await;
    let seen = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.try_next().await.unwrap() {
            if let WatchEvent::Modified(asset) = event
                && let Some(operation) = asset.status.and_then(|s| s.operation)
            {
                return operation.id;
            }
        }
        panic!("the watch ended without the operation");
    })
    .await
    .expect("the operation arrives on the agent's watch within 15 s");
    assert_eq!(seen, "r1/web-1/install");

    // The agent reports the result; the operator's half stays the operator's.
    let mut report = good_report();
    report.last_operation = Some(OperationResult {
        id: "r1/web-1/install".to_owned(),
        phase: OperationPhase::Running,
        started_at: Some(Time(now())),
        finished_at: None,
        installed: Vec::new(),
        message: None,
    });
    let stored = protocol::report(&agent, "web-1", &report).await.unwrap();
    let status = stored.status.unwrap();
    assert_eq!(status.state.as_deref(), Some("InProgress"));
    assert_eq!(
        status
            .reported
            .and_then(|r| r.last_operation)
            .map(|o| o.phase),
        Some(OperationPhase::Running)
    );
}

/// The heartbeat the API server stored for `name` (what the agent sent, to the second).
async fn stored_heartbeat(env: &TestEnv, name: &str) -> Time {
    env.api::<Asset>()
        .get(name)
        .await
        .unwrap()
        .status
        .and_then(|s| s.reported)
        .and_then(|r| r.last_heartbeat)
        .expect("a heartbeat was stored")
}

/// Polls `api.get(name)` until the API server answers 401; panics after `within`.
async fn assert_unauthorized_within(api: &Api<Asset>, name: &str, within: Duration) {
    let start = std::time::Instant::now();
    loop {
        match api.get(name).await {
            Err(kube::Error::Api(status)) if status.code == 401 => return,
            other if start.elapsed() > within => {
                panic!("the revoked token still authenticates after {within:?}: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

fn good_report_with(heartbeat: &Time) -> ReportedState {
    ReportedState {
        last_heartbeat: Some(heartbeat.clone()),
        ..good_report()
    }
}

#[tokio::test]
async fn an_enrolled_agent_can_do_nothing_else() {
    let env = setup("enroll-forbidden").await;
    create_asset(&env, "web-2").await;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = enroll(&env, dir.path(), "web-1", &["--os-family", "Linux"]);
    let (client, _) = client_from(&path).await;
    let agent: Api<Asset> = Api::default_namespaced(client.clone());
    protocol::report(&agent, "web-1", &good_report())
        .await
        .unwrap();
    let user = format!(
        "system:serviceaccount:{}:patchwave-agent-web-1",
        env.namespace
    );

    // Another Asset: neither read, nor listed, nor written (RBAC).
    assert_denied(
        agent.get("web-2").await,
        "read another Asset",
        403,
        &[&user, "assets", "web-2"],
    );
    assert_denied(
        agent.list(&ListParams::default()).await,
        "list all Assets",
        403,
        &[&user, "list"],
    );
    assert_denied(
        protocol::report(&agent, "web-2", &good_report()).await,
        "write another Asset's status",
        403,
        &[&user, "patch", "assets/status"],
    );

    // Its own Asset: the operator's fields are refused by the admission policy.
    assert_denied(
        apply_status(
            &agent,
            "web-1",
            json!({"operation": {
                "id": "forged", "rollout": "r1", "action": "Install", "updates": [],
                "issuedAt": now().to_string(), "notAfter": now().to_string(),
                "timeoutAt": now().to_string()}}),
        )
        .await,
        "write status.operation of its own Asset",
        403,
        &[
            POLICY_DENIED,
            &format!("{user} may change only status.reported"),
            "not status.operation",
        ],
    );
    assert_denied(
        apply_status(&agent, "web-1", json!({"state": "UpToDate"})).await,
        "write status.state of its own Asset",
        403,
        &[POLICY_DENIED, "not status.state"],
    );
    // Its own spec and labels: RBAC grants no patch on the Asset itself.
    let merge = PatchParams::default();
    assert_denied(
        agent
            .patch(
                "web-1",
                &merge,
                &Patch::Merge(json!({"spec": {"hold": true}})),
            )
            .await,
        "change its own spec",
        403,
        &[&user, "patch", "assets"],
    );
    assert_denied(
        agent
            .patch(
                "web-1",
                &merge,
                &Patch::Merge(json!({"metadata": {"labels": {"ring": "none"}}})),
            )
            .await,
        "change its own labels",
        403,
        &[&user, "patch"],
    );
    // Labels sent to the status subresource: the API server keeps only the status.
    agent
        .patch_status(
            "web-1",
            &merge,
            &Patch::Merge(json!({"metadata": {"labels": {"ring": "none"}}})),
        )
        .await
        .unwrap();
    // Nothing else in the namespace.
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    assert_denied(
        secrets.list(&ListParams::default()).await,
        "list Secrets",
        403,
        &[&user, "secrets"],
    );
    assert_denied(
        agent
            .create(&PostParams::default(), &linux_asset("web-3"))
            .await,
        "create an Asset",
        403,
        &[&user, "create"],
    );
    assert_denied(
        agent.delete("web-1", &DeleteParams::default()).await,
        "delete its own Asset",
        403,
        &[&user, "delete"],
    );

    // Everything refused left the Asset as it was.
    let asset = env.api::<Asset>().get("web-1").await.unwrap();
    assert!(!asset.spec.hold);
    assert_eq!(asset.labels().get("ring"), None);
    let status = asset.status.unwrap();
    assert_eq!(status.operation, None);
    assert_eq!(status.state, None);
    assert_eq!(env.api::<Asset>().get("web-2").await.unwrap().status, None);
}

#[tokio::test]
async fn bad_reports_are_rejected_with_the_field_named_and_the_good_one_stays() {
    let env = setup("enroll-bad-report").await;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = enroll(&env, dir.path(), "web-1", &["--os-family", "Linux"]);
    let (client, _) = client_from(&path).await;
    let agent: Api<Asset> = Api::default_namespaced(client);
    protocol::report(&agent, "web-1", &good_report())
        .await
        .unwrap();
    let good = env
        .api::<Asset>()
        .get("web-1")
        .await
        .unwrap()
        .status
        .and_then(|s| s.reported)
        .unwrap();

    // Wrong types, as a merge patch: 422 naming the field.
    let merge = PatchParams::default();
    assert_denied(
        agent
            .patch_status(
                "web-1",
                &merge,
                &Patch::Merge(json!({"status": {"reported": {"availableUpdates": "lots"}}})),
            )
            .await,
        "availableUpdates as a string (merge patch)",
        422,
        &["status.reported.availableUpdates", "must be of type array"],
    );
    assert_denied(
        agent
            .patch_status(
                "web-1",
                &merge,
                &Patch::Merge(json!({"status": {"reported": {"rebootPending": "yes"}}})),
            )
            .await,
        "rebootPending as a string (merge patch)",
        422,
        &["status.reported.rebootPending", "must be of type boolean"],
    );
    // The same by server-side apply (the agent's way): refused with the field named, but as
    // 500 (kube-apiserver answers a type mismatch in an apply patch with an internal error;
    // kubernetes/kubernetes#139253).
    for (body, field) in [
        (
            json!({"reported": {"availableUpdates": "lots"}}),
            ".status.reported.availableUpdates",
        ),
        (
            json!({"reported": {"rebootPending": "yes"}}),
            ".status.reported.rebootPending",
        ),
    ] {
        assert_denied(
            apply_status(&agent, "web-1", body).await,
            "wrong type (server-side apply)",
            500,
            &["failed to create typed patch object", field],
        );
    }
    // Too many updates.
    let mut many = good_report();
    many.available_updates = (0..501)
        .map(|i| AvailableUpdate {
            id: format!("pkg-{i}"),
            ..AvailableUpdate::default()
        })
        .collect();
    assert_denied(
        protocol::report(&agent, "web-1", &many).await,
        "501 available updates",
        422,
        &[
            "status.reported.availableUpdates",
            "must have at most 500 items",
        ],
    );
    // A message over the CRD's 4096 characters...
    let mut long = good_report();
    long.last_operation = Some(OperationResult {
        id: "r1/web-1/install".to_owned(),
        phase: OperationPhase::Failed,
        started_at: None,
        finished_at: None,
        installed: Vec::new(),
        message: Some("x".repeat(100_000)),
    });
    assert_denied(
        protocol::report(&agent, "web-1", &long).await,
        "a 100 kB message",
        422,
        &[
            "status.reported.lastOperation.message",
            "may not be more than 4096",
        ],
    );
    // ...and a 4 MB one, which the API server refuses before reading it whole.
    if let Some(last) = long.last_operation.as_mut() {
        last.message = Some("x".repeat(4 * 1024 * 1024));
    }
    assert_denied(
        protocol::report(&agent, "web-1", &long).await,
        "a 4 MB message",
        413,
        &["too large"],
    );

    let kept = env
        .api::<Asset>()
        .get("web-1")
        .await
        .unwrap()
        .status
        .and_then(|s| s.reported)
        .unwrap();
    assert_eq!(kept, good, "the last good report stays");
}

#[tokio::test]
async fn the_policy_holds_agents_with_broader_rbac_to_their_own_asset() {
    let env = setup("enroll-policy").await;
    create_asset(&env, "web-2").await;
    create_asset(&env, "rogue").await;
    // An agent identity whose RBAC allows everything on all Assets of the namespace: only the
    // policy stands between it and the other Assets.
    support::run(env.kubectl().args([
        "create",
        "role",
        "all-assets",
        "--verb=*",
        "--resource=assets.patchwave.dev,assets.patchwave.dev/status",
    ]));
    let rogue_user = format!(
        "system:serviceaccount:{}:patchwave-agent-rogue",
        env.namespace
    );
    let ci_user = format!("system:serviceaccount:{}:ci-bot", env.namespace);
    for (binding, user) in [("rogue", &rogue_user), ("ci-bot", &ci_user)] {
        support::run(env.kubectl().args([
            "create",
            "rolebinding",
            binding,
            "--role=all-assets",
            &format!("--user={user}"),
        ]));
    }
    let rogue: Api<Asset> = Api::namespaced(
        env.control_plane
            .service_account_client(&env.namespace, "patchwave-agent-rogue")
            .await
            .unwrap(),
        &env.namespace,
    );

    assert_denied(
        protocol::report(&rogue, "web-2", &good_report()).await,
        "write another Asset's status with broad RBAC",
        403,
        &[
            POLICY_DENIED,
            &format!(
                "may write only its own asset {ns}/rogue, not asset {ns}/web-2",
                ns = env.namespace
            ),
        ],
    );
    assert_denied(
        rogue
            .patch(
                "web-2",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"hold": true}})),
            )
            .await,
        "change another Asset's spec with broad RBAC",
        403,
        &[POLICY_DENIED, "not asset"],
    );
    assert_denied(
        rogue
            .patch(
                "rogue",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"spec": {"hold": true}, "metadata": {"annotations": {"a": "b"}}}),
                ),
            )
            .await,
        "change its own spec and annotations with broad RBAC",
        403,
        &[POLICY_DENIED, "not spec, metadata.annotations"],
    );
    // An ownerReference to an owner that does not exist would let the garbage collector
    // delete the Asset the agent may not delete; a finalizer would block its deletion.
    assert_denied(
        rogue
            .patch(
                "rogue",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {
                    "finalizers": ["example.com/keep"],
                    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                        "name": "gone", "uid": "00000000-0000-0000-0000-000000000001"}],
                }})),
            )
            .await,
        "set finalizers and ownerReferences on its own Asset with broad RBAC",
        403,
        &[
            POLICY_DENIED,
            "not metadata.finalizers, metadata.ownerReferences",
        ],
    );
    assert_denied(
        rogue
            .create(&PostParams::default(), &linux_asset("web-3"))
            .await,
        "create an Asset with broad RBAC",
        403,
        &[POLICY_DENIED, "may not create Assets"],
    );
    assert_denied(
        rogue.delete("rogue", &DeleteParams::default()).await,
        "delete its own Asset with broad RBAC",
        403,
        &[POLICY_DENIED, "may not delete Assets"],
    );
    // Its own status.reported is fine.
    protocol::report(&rogue, "rogue", &good_report())
        .await
        .unwrap();

    // The same RBAC for an identity that is not an agent: the policy does not apply.
    let ci: Api<Asset> = Api::namespaced(
        env.control_plane
            .service_account_client(&env.namespace, "ci-bot")
            .await
            .unwrap(),
        &env.namespace,
    );
    ci.patch(
        "web-2",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"role": "web"}})),
    )
    .await
    .unwrap();

    // An agent identity named after web-2 but in another namespace is not web-2's agent.
    let elsewhere = support::test_env("enroll-elsewhere").await;
    let stranger = format!(
        "system:serviceaccount:{}:patchwave-agent-web-2",
        elsewhere.namespace
    );
    support::run(env.kubectl().args([
        "create",
        "rolebinding",
        "stranger",
        "--role=all-assets",
        &format!("--user={stranger}"),
    ]));
    let stranger: Api<Asset> = Api::namespaced(
        env.control_plane
            .service_account_client(&elsewhere.namespace, "patchwave-agent-web-2")
            .await
            .unwrap(),
        &env.namespace,
    );
    assert_denied(
        protocol::report(&stranger, "web-2", &good_report()).await,
        "write web-2 from another namespace",
        403,
        &[
            POLICY_DENIED,
            &format!("may write only its own asset {}/web-2", elsewhere.namespace),
        ],
    );

    // The operator (admin, field manager patchwave-operator) is not affected.
    let asset = operator_writes(&env, "rogue", "r1/rogue/install").await;
    let status = asset.status.unwrap();
    assert_eq!(status.state.as_deref(), Some("InProgress"));
    assert!(status.reported.is_some(), "the agent's half stays");
    env.api::<Asset>()
        .patch(
            "web-2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hold": true}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_node_agent_writes_the_asset_of_its_node_only() {
    let env = setup("enroll-node-agent").await;
    create_asset(&env, "node-a").await;
    create_asset(&env, "node-b").await;
    support::run(env.kubectl().args([
        "create",
        "role",
        "node-agent",
        "--verb=get,list,watch,patch",
        "--resource=assets.patchwave.dev,assets.patchwave.dev/status",
    ]));
    support::run(env.kubectl().args([
        "create",
        "rolebinding",
        "node-agent",
        "--role=node-agent",
        &format!(
            "--serviceaccount={}:{NODE_AGENT_SERVICE_ACCOUNT}",
            env.namespace
        ),
    ]));
    support::run(
        env.kubectl()
            .args(["create", "serviceaccount", NODE_AGENT_SERVICE_ACCOUNT]),
    );

    // A pod of the DaemonSet on node-a: its bound token carries the node name. (No kubelet
    // runs it; the token is requested as the kubelet would.)
    let node_name = support::unique_name("node-a");
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": node_name}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    // The Asset of that node (node names are unique per cluster, hence the suffix).
    create_asset(&env, &node_name).await;
    let pod = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("node-agent-x1".to_owned()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node_name.clone()),
            service_account_name: Some(NODE_AGENT_SERVICE_ACCOUNT.to_owned()),
            containers: vec![
                serde_json::from_value(json!({"name": "agent", "image": "patchwave-agent"}))
                    .unwrap(),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = env
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let issued: TokenRequest = env
        .api::<ServiceAccount>()
        .create_subresource(
            "token",
            NODE_AGENT_SERVICE_ACCOUNT,
            &PostParams::default(),
            &request,
        )
        .await
        .unwrap();
    let token = issued.status.and_then(|s| s.token).unwrap();
    let mut kubeconfig = env.control_plane.kubeconfig();
    if let Some(auth) = kubeconfig.auth_infos[0].auth_info.as_mut() {
        *auth = kube::config::AuthInfo {
            token: Some(token.into()),
            ..Default::default()
        };
    }
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let agent: Api<Asset> = Api::namespaced(Client::try_from(config).unwrap(), &env.namespace);

    protocol::report(&agent, &node_name, &good_report())
        .await
        .unwrap();
    assert_denied(
        protocol::report(&agent, "node-b", &good_report()).await,
        "the node agent writes another node's Asset",
        403,
        &[
            POLICY_DENIED,
            &format!(
                "may write only the asset named like its node ({node_name}), not asset {ns}/node-b",
                ns = env.namespace
            ),
        ],
    );
    assert_denied(
        apply_status(&agent, &node_name, json!({"state": "UpToDate"})).await,
        "the node agent writes status.state",
        403,
        &[POLICY_DENIED, "not status.state"],
    );

    // The same service account without a node (impersonated, no node in the token).
    let unbound: Api<Asset> = Api::namespaced(
        env.control_plane
            .service_account_client(&env.namespace, NODE_AGENT_SERVICE_ACCOUNT)
            .await
            .unwrap(),
        &env.namespace,
    );
    assert_denied(
        protocol::report(&unbound, "node-a", &good_report()).await,
        "the node agent without a node",
        403,
        &[POLICY_DENIED, "has no Asset of its own"],
    );
    // An agent identity with nothing after the prefix has no Asset either. (No real
    // ServiceAccount can be named so; a user name can, through impersonation.)
    support::run(env.kubectl().args([
        "create",
        "rolebinding",
        "empty-suffix",
        "--role=node-agent",
        &format!(
            "--user=system:serviceaccount:{}:patchwave-agent-",
            env.namespace
        ),
    ]));
    let nameless: Api<Asset> = Api::namespaced(
        env.control_plane
            .service_account_client(&env.namespace, "patchwave-agent-")
            .await
            .unwrap(),
        &env.namespace,
    );
    assert_denied(
        protocol::report(&nameless, "node-b", &good_report()).await,
        "an agent identity without an asset name",
        403,
        &[POLICY_DENIED, "nothing follows patchwave-agent-"],
    );
    nodes
        .delete(&node_name, &DeleteParams::default())
        .await
        .unwrap();
}

/// The Helm chart copies the policy file as it is: two documents, cluster-scoped, nothing
/// namespace-specific.
#[test]
fn the_policy_file_is_two_plain_cluster_scoped_documents() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/agent-policy/admission-policy.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let documents: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .collect();
    let kinds: Vec<(&str, &str, &str)> = documents
        .iter()
        .map(|d| {
            (
                d["apiVersion"].as_str().unwrap(),
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingAdmissionPolicy",
                "patchwave-agent-own-asset"
            ),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingAdmissionPolicyBinding",
                "patchwave-agent-own-asset"
            ),
        ]
    );
    for document in &documents {
        assert!(document["metadata"].get("namespace").is_none());
    }
    assert_eq!(
        documents[1]["spec"]["policyName"],
        "patchwave-agent-own-asset"
    );
    assert!(documents[1]["spec"].get("paramRef").is_none());
    assert!(
        !text.contains("{{"),
        "no templating: the chart copies the file as it is"
    );
}

#[tokio::test]
async fn revoke_locks_the_agent_out_and_enrolling_again_works() {
    let env = setup("enroll-revoke").await;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = enroll(&env, dir.path(), "lt-meier", &["--os-family", "MacOS"]);
    let (client, _) = client_from(&path).await;
    let agent: Api<Asset> = Api::default_namespaced(client);
    protocol::report(&agent, "lt-meier", &good_report())
        .await
        .unwrap();
    let ns = &env.namespace;

    // A mistyped name revokes nothing and says so, instead of claiming a lockout; the real
    // agent keeps its access.
    for args in [
        &["enroll", "lt-meir", "--revoke"][..],
        &["enroll", "lt-meir", "--revoke", "--delete-asset"],
    ] {
        let output = plugin(&env, args).output().unwrap();
        let (out, err) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}:\n{out}\n{err}");
        assert_eq!(out, "", "{args:?}: nothing on stdout");
        for needle in [
            format!("error: nothing to revoke: asset {ns}/lt-meir has no enrolment"),
            "no ServiceAccount patchwave-agent-lt-meir".to_owned(),
            format!("check the name with `kubectl get assets -n {ns}`"),
        ] {
            assert!(err.contains(&needle), "{args:?}: lacks {needle:?}:\n{err}");
        }
    }
    assert_eq!(agent.get("lt-meier").await.unwrap().name_any(), "lt-meier");

    let (out, _) = ok(&env, &["enroll", "lt-meier", "--revoke"]);
    for line in [
        format!("Deleted rolebinding {ns}/patchwave-agent-lt-meier."),
        format!("Deleted role {ns}/patchwave-agent-lt-meier."),
        format!("Deleted serviceaccount {ns}/patchwave-agent-lt-meier."),
    ] {
        assert!(out.contains(&line), "{out}");
    }
    // At once: the permissions are gone (the RoleBinding went first)...
    let (code, message) = api_error(agent.get("lt-meier").await, "the revoked agent reads");
    assert!(code == 403 || code == 401, "{code}: {message}");
    // ...and within the API server's token cache (10 s) the token no longer authenticates.
    assert_unauthorized_within(&agent, "lt-meier", Duration::from_secs(20)).await;
    // Idempotent, and the Asset with its history stays.
    let (out, _) = ok(&env, &["enroll", "lt-meier", "--revoke"]);
    assert!(
        out.contains(&format!(
            "serviceaccount {ns}/patchwave-agent-lt-meier was already gone."
        )),
        "{out}"
    );
    let asset = env.api::<Asset>().get("lt-meier").await.unwrap();
    assert!(asset.status.and_then(|s| s.reported).is_some());

    // Enrolled again: the new kubeconfig works, the old token stays dead.
    let second = dir.path().join("again");
    std::fs::create_dir(&second).unwrap();
    let (path, _) = enroll(&env, &second, "lt-meier", &[]);
    let (client, _) = client_from(&path).await;
    let agent_again: Api<Asset> = Api::default_namespaced(client);
    protocol::report(&agent_again, "lt-meier", &good_report())
        .await
        .unwrap();
    assert_denied(
        agent.get("lt-meier").await,
        "the old token after enrolling again",
        401,
        &["Unauthorized"],
    );
    assert_eq!(
        agent_again.get("lt-meier").await.unwrap().name_any(),
        "lt-meier"
    );

    // Retired: the Asset goes too.
    let (out, _) = ok(&env, &["enroll", "lt-meier", "--revoke", "--delete-asset"]);
    assert!(
        out.contains(&format!("Deleted asset {ns}/lt-meier.")),
        "{out}"
    );
    assert!(
        env.api::<Asset>()
            .get_opt("lt-meier")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.api::<ServiceAccount>()
            .get_opt("patchwave-agent-lt-meier")
            .await
            .unwrap()
            .is_none()
    );
    // Once identity and Asset are gone, the name has nothing left to revoke.
    let err = fails(&env, &["enroll", "lt-meier", "--revoke"], 1);
    assert!(
        err.contains(&format!("nothing to revoke: asset {ns}/lt-meier")),
        "{err}"
    );
}

#[tokio::test]
async fn the_agent_renews_its_own_token_and_only_its_own() {
    let env = setup("enroll-renew").await;
    let ns = env.namespace.clone();
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = enroll(
        &env,
        dir.path(),
        "web-1",
        &["--os-family", "Linux", "--token-ttl", "10m"],
    );
    enroll(&env, dir.path(), "web-2", &["--os-family", "Linux"]);
    let enrolled = BoundToken::parse(&kubeconfig_token(&path)).unwrap();
    assert_eq!(enrolled.service_account, "patchwave-agent-web-1");
    assert_eq!(enrolled.lifetime(), jiff::SignedDuration::from_mins(10));

    // Its Role allows a token for its own ServiceAccount, not for another agent's.
    let (client, _) = client_from(&path).await;
    let accounts: Api<ServiceAccount> = Api::default_namespaced(client);
    let user = format!("system:serviceaccount:{ns}:patchwave-agent-web-1");
    assert_denied(
        accounts
            .create_subresource::<TokenRequest, TokenRequest>(
                "token",
                "patchwave-agent-web-2",
                &PostParams::default(),
                &token_request(600),
            )
            .await,
        "mint a token for another agent",
        403,
        &[&user, "serviceaccounts/token", "patchwave-agent-web-2"],
    );

    // Renewing 10m before expiry with a 10m token: at once, on start.
    let given = std::fs::read_to_string(&path).unwrap();
    let state = dir.path().join("state");
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let agent = Command::new(env!("CARGO_BIN_EXE_patchwave-agent"))
        .args([
            "run",
            "--asset",
            "web-1",
            "--namespace",
            &ns,
            "--backend",
            "simulated",
        ])
        .arg("--kubeconfig")
        .arg(&path)
        .arg("--state-dir")
        .arg(&state)
        .args(["--token-renew-before", "10m", "--heartbeat", "2s"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // Killed when the test ends, also when an assertion fails first.
    let _agent = KillOnDrop(agent);
    let file = state.join("token");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let renewed = loop {
        let current = std::fs::read_to_string(&file).ok();
        if let Some(token) = current.filter(|t| *t != kubeconfig_token(&path)) {
            break token;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no renewed token in {} after 60 s; agent log:\n{}",
            file.display(),
            std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let claims = BoundToken::parse(&renewed).unwrap();
    assert_eq!(claims.service_account, "patchwave-agent-web-1");
    assert_eq!(claims.namespace, ns);
    assert_eq!(claims.lifetime(), enrolled.lifetime());
    assert!(
        claims.issued_at >= enrolled.issued_at,
        "{claims:?} vs {enrolled:?}"
    );
    // The kubeconfig given to the agent is not touched; the state directory holds the secret.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), given);

    // The renewed token is the same narrow identity.
    let renewed_client = client_with_token(&path, &renewed).await;
    let own: Api<Asset> = Api::default_namespaced(renewed_client);
    protocol::report(&own, "web-1", &good_report())
        .await
        .unwrap();
    assert_denied(
        own.get("web-2").await,
        "read another Asset with the renewed token",
        403,
        &[&user, "web-2"],
    );
    // The agent keeps reporting.
    let before = stored_heartbeat(&env, "web-1").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stored_heartbeat(&env, "web-1").await == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no heartbeat after the renewal"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Revoking the identity kills the renewed token too: renewal is no way around it.
    ok(&env, &["enroll", "web-1", "--revoke"]);
    assert_unauthorized_within(&own, "web-1", Duration::from_secs(20)).await;
    // The running agent says what happened and what mends it, not only the API's 401.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();
        if log.contains("its enrolment was revoked or its token expired; enrol the machine again") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent did not explain the refused credentials within 20 s:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The inline token of the kubeconfig `enroll` wrote.
fn kubeconfig_token(path: &Path) -> String {
    let kubeconfig: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    kubeconfig["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A client for the kubeconfig's cluster that authenticates with `token`.
async fn client_with_token(path: &Path, token: &str) -> Client {
    let text = std::fs::read_to_string(path).unwrap();
    let swapped = text.replace(&kubeconfig_token(path), token.trim());
    let kubeconfig = Kubeconfig::from_yaml(&swapped).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn enroll_merges_into_an_existing_asset_and_refuses_what_it_cannot_do() {
    let env = setup("enroll-errors").await;
    let ns = &env.namespace;
    let dir = tempfile::tempdir().unwrap();

    // An existing Asset keeps its labels and gets the new ones; stdout is the kubeconfig.
    let mut existing = linux_asset("erp01");
    existing.metadata.labels = Some([("ring".to_owned(), "rest".to_owned())].into());
    env.api::<Asset>()
        .create(&PostParams::default(), &existing)
        .await
        .unwrap();
    let (out, err) = ok(
        &env,
        &[
            "enroll",
            "erp01",
            "--labels",
            "site=bern",
            "--criticality",
            "Critical",
        ],
    );
    assert!(err.contains(&format!("Updated asset {ns}/erp01")), "{err}");
    let printed: Kubeconfig = serde_yaml::from_str(&out).unwrap();
    assert_eq!(
        printed.contexts[0]
            .context
            .as_ref()
            .and_then(|c| c.namespace.as_deref()),
        Some(ns.as_str())
    );
    let asset = env.api::<Asset>().get("erp01").await.unwrap();
    assert_eq!(asset.labels().get("ring").map(String::as_str), Some("rest"));
    assert_eq!(asset.labels().get("site").map(String::as_str), Some("bern"));
    assert_eq!(asset.spec.criticality, Criticality::Critical);
    assert_eq!(asset.spec.os_family, OsFamily::Linux);

    // Another OS family is refused, not set in passing: erp01 stays Linux, nothing is issued.
    let err = fails(&env, &["enroll", "erp01", "--os-family", "Windows"], 1);
    assert!(
        err.contains(&format!("asset {ns}/erp01 exists with osFamily Linux"))
            && err.contains(&format!("kubectl edit asset erp01 -n {ns}")),
        "{err}"
    );
    let asset = env.api::<Asset>().get("erp01").await.unwrap();
    assert_eq!(asset.spec.os_family, OsFamily::Linux);
    // The same family is enrolling again.
    ok(&env, &["enroll", "erp01", "--os-family", "Linux"]);

    // A namespace that does not exist is named as such, not as a missing Asset.
    let missing = support::unique_name("no-such-namespace");
    let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .env("KUBECONFIG", env.control_plane.kubeconfig_path())
        .args(["enroll", "ws-2", "-n", &missing, "--os-family", "Linux"])
        .output()
        .unwrap();
    let (_, err) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("namespace {missing} does not exist")) && !err.contains("not found"),
        "{err}"
    );

    // A new Asset needs its OS family.
    let err = fails(&env, &["enroll", "new-box"], 2);
    assert!(
        err.contains(&format!("asset {ns}/new-box does not exist yet"))
            && err.contains("--os-family"),
        "{err}"
    );
    assert!(
        env.api::<Asset>()
            .get_opt("new-box")
            .await
            .unwrap()
            .is_none()
    );

    // A name too long for the identity's label.
    let long = "a".repeat(64);
    let err = fails(&env, &["enroll", &long, "--os-family", "Linux"], 2);
    assert!(err.contains("64 characters, too long to enrol"), "{err}");

    // A ServiceAccount of that name that enrolment did not make is not taken over...
    support::run(
        env.kubectl()
            .args(["create", "serviceaccount", "patchwave-agent-db01"]),
    );
    let err = fails(&env, &["enroll", "db01", "--os-family", "Linux"], 1);
    assert!(
        err.contains(&format!(
            "serviceaccount {ns}/patchwave-agent-db01 exists but was not made by enrolment"
        )),
        "{err}"
    );
    // The same for a Role of that name.
    support::run(env.kubectl().args([
        "create",
        "role",
        "patchwave-agent-db02",
        "--verb=get",
        "--resource=secrets",
    ]));
    let err = fails(&env, &["enroll", "db02", "--os-family", "Linux"], 1);
    assert!(
        err.contains(&format!(
            "role {ns}/patchwave-agent-db02 exists but was not made by enrolment"
        )),
        "{err}"
    );
    assert!(
        env.api::<ServiceAccount>()
            .get_opt("patchwave-agent-db02")
            .await
            .unwrap()
            .is_none(),
        "nothing of the identity was made"
    );
    assert!(env.api::<Asset>().get_opt("db02").await.unwrap().is_none());
    // ...nor deleted by --revoke.
    let err = fails(&env, &["enroll", "db01", "--revoke"], 1);
    assert!(err.contains("was not made by enrolment"), "{err}");
    assert!(
        env.api::<ServiceAccount>()
            .get_opt("patchwave-agent-db01")
            .await
            .unwrap()
            .is_some()
    );

    // --help teaches, with examples.
    let help = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .args(["enroll", "--help"])
        .output()
        .unwrap();
    let (help, _) = text(&help);
    for needle in [
        "Examples:",
        "--revoke",
        "patchwave-agent run --asset web-1 --namespace acme",
        "patchwave.dev/asset=web-1",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    drop(dir);
}
