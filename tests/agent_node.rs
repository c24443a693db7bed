#![allow(clippy::unwrap_used)] // test helpers fail loudly by design
//! `patchwave-agent run --backend simulated` as a real process against a real kube-apiserver,
//! with an identity that may only read its own Asset and patch its status. The test plays the
//! operator (it writes `status.operation` by server-side apply as patchwave-operator) and
//! checks what the agent reports, what its hooks and reboot stand-in did, and the simulated
//! package database and install log it leaves in its state directory.

mod support;

use support::proxy::Proxy;
use support::scenario::{in_an_hour, issue, operation};

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use patchwave::agent::backend::simulated::{DATABASE_FILE, Database, INSTALL_LOG_FILE};
use patchwave::agent::node::REFRESH_ANNOTATION;
use patchwave::agent::protocol;
use patchwave::agent::simulated::DURATION_ANNOTATION;
use patchwave::api::asset::{
    AvailableUpdate, OperationPhase, OperationResult, ReportedState, UpdateRef,
};
use patchwave::api::policy::Hooks;
use patchwave::api::{Asset, AssetSpec, OperationAction, OsFamily};

/// How long a test waits for the agent to report something.
const DEADLINE: Duration = Duration::from_secs(40);

fn update(id: &str, version: &str, installed: &str, reboot: bool) -> AvailableUpdate {
    AvailableUpdate {
        id: id.to_owned(),
        version: Some(version.to_owned()),
        installed_version: Some(installed.to_owned()),
        reboot_required: reboot,
        ..AvailableUpdate::default()
    }
}

/// openssl and curl available; the kernel too (needing a reboot) when `kernel`.
fn inventory(kernel: bool) -> Vec<AvailableUpdate> {
    let mut updates = vec![
        update("openssl", "3.0.15", "3.0.14", false),
        update("curl", "8.11.1", "8.11.0", false),
    ];
    if kernel {
        updates.push(update("linux-image", "6.1.120", "6.1.119", true));
    }
    updates
}

/// One agent under test: its Asset, state directory and process.
struct Node {
    name: String,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    namespace: String,
    child: Option<Child>,
    runs: usize,
}

impl Node {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `patchwave-agent run` with `extra` arguments; stderr goes to a log file.
    fn start(&mut self, extra: &[&str]) {
        self.runs += 1;
        let log = std::fs::File::create(self.path(&format!("agent-{}.log", self.runs)))
            .expect("agent log file");
        let child = Command::new(env!("CARGO_BIN_EXE_patchwave-agent"))
            .args(["run", "--asset", &self.name, "--namespace", &self.namespace])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--backend", "simulated", "--state-dir"])
            .arg(self.state())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting patchwave-agent");
        self.child = Some(child);
    }

    /// SIGKILL: no cleanup, as a power cut would leave it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means it is gone already (a stand-in reboot killed it).
            let _ = child.kill();
            child.wait().expect("reaping the agent");
        }
    }

    fn logs(&self) -> String {
        (1..=self.runs)
            .map(|n| {
                let text = std::fs::read_to_string(self.path(&format!("agent-{n}.log")))
                    .unwrap_or_default();
                format!("--- agent run {n} ---\n{text}")
            })
            .collect()
    }

    fn install_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.state().join(INSTALL_LOG_FILE))
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn database(&self) -> Database {
        let text = std::fs::read_to_string(self.state().join(DATABASE_FILE))
            .expect("the simulated package database");
        serde_json::from_str(&text).expect("a readable package database")
    }

    fn installed(&self, id: &str) -> Option<String> {
        self.database().installed.get(id).cloned()
    }

    /// Writes the agent config file and returns its path.
    fn config(&self, text: &str) -> String {
        let path = self.path("agent.yaml");
        std::fs::write(&path, text).expect("writing the agent config");
        path.to_string_lossy().into_owned()
    }

    /// Writes an executable shell script and returns its path.
    fn script(&self, name: &str, body: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writing a script");
        let mut permissions = std::fs::metadata(&path).expect("script").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).expect("chmod");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates Asset `name` (with `annotations` and, unless `None`, a report carrying
/// `available`) and an identity for its agent that may only get/list/watch this Asset and
/// patch its status.
async fn node(
    env: &support::TestEnv,
    name: &str,
    annotations: &[(&str, &str)],
    available: Option<Vec<AvailableUpdate>>,
) -> Node {
    let api: Api<Asset> = env.api();
    let mut asset = Asset::new(name, AssetSpec::new(OsFamily::Linux));
    asset.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    api.create(&PostParams::default(), &asset).await.unwrap();
    if let Some(available) = available {
        // What an earlier agent (or enrolment) reported: the simulated database's seed.
        let earlier = ReportedState {
            available_updates: available,
            ..ReportedState::default()
        };
        protocol::report(&api, name, &earlier).await.unwrap();
    }
    let user = format!("agent-{name}");
    let rule = |resource: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec!["patchwave.dev".to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        resource_names: Some(vec![name.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    };
    let meta = ObjectMeta {
        name: Some(user.clone()),
        namespace: Some(env.namespace.clone()),
        ..ObjectMeta::default()
    };
    let role = Role {
        metadata: meta.clone(),
        rules: Some(vec![
            rule("assets", &["get", "list", "watch"]),
            rule("assets/status", &["patch"]),
        ]),
    };
    env.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: user.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "User".to_owned(),
            name: user.clone(),
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            ..Subject::default()
        }]),
    };
    env.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("agent.kubeconfig");
    let config = env
        .control_plane
        .certificate_kubeconfig(&user, &[])
        .expect("agent certificate");
    patchwave::devcluster::write_kubeconfig(&kubeconfig, &config).expect("writing kubeconfig");
    Node {
        name: name.to_owned(),
        dir,
        kubeconfig,
        namespace: env.namespace.clone(),
        child: None,
        runs: 0,
    }
}

fn reported(asset: &Asset) -> Option<&ReportedState> {
    asset.status.as_ref().and_then(|s| s.reported.as_ref())
}

fn last_operation(asset: &Asset) -> Option<&OperationResult> {
    reported(asset).and_then(|r| r.last_operation.as_ref())
}

fn phase_is(id: &'static str, phase: OperationPhase) -> impl Fn(&Asset) -> bool {
    move |a| last_operation(a).is_some_and(|l| l.id == id && l.phase == phase)
}

fn inventoried(asset: &Asset) -> bool {
    reported(asset).is_some_and(|r| r.backend.as_deref() == Some("simulated"))
}

fn available_ids(asset: &Asset) -> Vec<String> {
    reported(asset)
        .map(|r| r.available_updates.iter().map(|u| u.id.clone()).collect())
        .unwrap_or_default()
}

/// Polls the node's Asset until `ready` holds (at most [`DEADLINE`]) and returns it.
async fn wait_for(
    api: &Api<Asset>,
    node: &Node,
    what: &str,
    ready: impl Fn(&Asset) -> bool,
) -> Asset {
    let started = std::time::Instant::now();
    loop {
        let asset = api.get(&node.name).await.unwrap();
        if ready(&asset) {
            return asset;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "Asset/{}: still not {what} after {DEADLINE:?}; status:\n{}\n{}",
            node.name,
            serde_yaml::to_string(&asset.status).unwrap(),
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `ready` holds for the node's files (at most [`DEADLINE`]).
async fn wait_until(node: &Node, what: &str, ready: impl Fn(&Node) -> bool) {
    let started = std::time::Instant::now();
    while !ready(node) {
        assert!(
            started.elapsed() < DEADLINE,
            "{}: still not {what} after {DEADLINE:?}\n{}",
            node.name,
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn message(asset: &Asset) -> String {
    last_operation(asset)
        .and_then(|l| l.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_agent_reports_inventory_heartbeats_and_refreshes_on_demand() {
    let env = support::test_env("node-inventory").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    let mut web = node(&env, "web-1", &[], Some(inventory(false))).await;
    web.start(&["--heartbeat", "2s"]);

    let first = wait_for(&api, &web, "inventoried", inventoried).await;
    let report = reported(&first).unwrap();
    assert_eq!(available_ids(&first), ["openssl", "curl"]);
    assert_eq!(
        report.agent_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(report.os.as_ref().and_then(|o| o.name.clone()).is_some());
    let refreshed = report.inventory_refreshed_at.clone().unwrap().0;
    let beat = report.last_heartbeat.clone().unwrap().0;
    // The database was seeded from what the Asset reported.
    assert_eq!(web.database().available.len(), 2);
    assert_eq!(web.installed("openssl").as_deref(), Some("3.0.14"));

    // Heartbeats go on without an inventory write (it did not change).
    let later = wait_for(&api, &web, "heartbeating", |a| {
        reported(a)
            .and_then(|r| r.last_heartbeat.clone())
            .is_some_and(|t| t.0 > beat + SignedDuration::from_secs(2))
    })
    .await;
    assert_eq!(
        reported(&later)
            .unwrap()
            .inventory_refreshed_at
            .clone()
            .unwrap()
            .0,
        refreshed
    );

    // People ask for a fresh inventory: the agent reports it at once.
    let annotate = env
        .kubectl()
        .args(["annotate", "asset", "web-1", "--overwrite"])
        .arg(format!("{REFRESH_ANNOTATION}=1"))
        .output()
        .expect("kubectl annotate");
    assert!(annotate.status.success(), "{annotate:?}");
    wait_for(&api, &web, "refreshed after the annotation", |a| {
        reported(a)
            .and_then(|r| r.inventory_refreshed_at.clone())
            .is_some_and(|t| t.0 > refreshed)
    })
    .await;
    assert!(web.install_log().is_empty());
}

#[tokio::test]
async fn an_operation_runs_once_and_reports_the_installed_versions() {
    let env = support::test_env("node-operation").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    let mut web = node(
        &env,
        "web-2",
        &[(DURATION_ANNOTATION, "2s")],
        Some(inventory(false)),
    )
    .await;
    web.start(&["--heartbeat", "1s"]);
    wait_for(&api, &web, "inventoried", inventoried).await;

    issue(
        &api,
        "web-2",
        &operation(
            "op-1",
            OperationAction::Install,
            &[("openssl", "3.0.15")],
            in_an_hour(),
        ),
    )
    .await;
    let running = wait_for(
        &api,
        &web,
        "Running",
        phase_is("op-1", OperationPhase::Running),
    )
    .await;
    assert!(last_operation(&running).unwrap().started_at.is_some());
    let done = wait_for(
        &api,
        &web,
        "Succeeded",
        phase_is("op-1", OperationPhase::Succeeded),
    )
    .await;
    let result = last_operation(&done).unwrap();
    assert_eq!(
        result.installed,
        [UpdateRef {
            id: "openssl".to_owned(),
            version: Some("3.0.15".to_owned())
        }]
    );
    assert_eq!(available_ids(&done), ["curl"]);
    let history = &reported(&done).unwrap().installed_history;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, "openssl");
    assert_eq!(history[0].rollout.as_deref(), Some("security-2026-12"));
    assert_eq!(web.installed("openssl").as_deref(), Some("3.0.15"));
    assert_eq!(web.install_log().len(), 1, "{:?}", web.install_log());

    // Heartbeats and a restart never run it again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    web.kill();
    web.start(&["--heartbeat", "1s"]);
    let beat = reported(&done).unwrap().last_heartbeat.clone().unwrap().0;
    let after = wait_for(&api, &web, "heartbeating after the restart", |a| {
        reported(a)
            .and_then(|r| r.last_heartbeat.clone())
            .is_some_and(|t| t.0 > beat + SignedDuration::from_secs(3))
    })
    .await;
    assert_eq!(last_operation(&after), Some(result));
    assert_eq!(web.install_log().len(), 1, "{:?}", web.install_log());

    // The rollback returns openssl to the version it replaced.
    let mut rollback = operation(
        "op-2",
        OperationAction::Install,
        &[("openssl", "3.0.15")],
        in_an_hour(),
    );
    rollback.id = "security-2026-12/web-2/rollback".to_owned();
    rollback.action = OperationAction::Rollback;
    issue(&api, "web-2", &rollback).await;
    let back = wait_for(&api, &web, "rolled back", |a| {
        last_operation(a).is_some_and(|l| {
            l.id == "security-2026-12/web-2/rollback" && l.phase == OperationPhase::Succeeded
        })
    })
    .await;
    assert_eq!(
        last_operation(&back).unwrap().installed,
        [UpdateRef {
            id: "openssl".to_owned(),
            version: Some("3.0.14".to_owned())
        }]
    );
    assert_eq!(web.installed("openssl").as_deref(), Some("3.0.14"));
    let mut ids = available_ids(&back);
    ids.sort();
    assert_eq!(ids, ["curl", "openssl"]);
    let history = &reported(&back).unwrap().installed_history;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].action, OperationAction::Rollback);
    assert_eq!(web.install_log().len(), 2, "{:?}", web.install_log());
}

#[tokio::test]
async fn hooks_run_from_the_allowlist_only() {
    let env = support::test_env("node-hooks").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    let hooks = |pre: &str, health: &str| Hooks {
        pre_install: Some(pre.to_owned()),
        post_install: Some("post".to_owned()),
        health_check: Some(health.to_owned()),
    };

    // All three allowlisted; the database is seeded from the config's seed file.
    let mut good = node(&env, "good", &[(DURATION_ANNOTATION, "1s")], None).await;
    let order = good.path("order.txt");
    let record = format!(
        "echo \"$PATCHWAVE_HOOK $PATCHWAVE_OPERATION_ID $PATCHWAVE_UPDATES\" >> {}",
        order.display()
    );
    let seed = good.path("seed.yaml");
    std::fs::write(&seed, serde_yaml::to_string(&inventory(false)).unwrap()).unwrap();
    let config = good.config(&format!(
        "hooks:\n  pre: {{path: {pre}}}\n  post: {{path: {post}}}\n  health: {{path: {health}}}\nsimulated:\n  seedFile: {seed}\n",
        pre = good.script("pre.sh", &record),
        post = good.script("post.sh", &record),
        health = good.script("health.sh", &record),
        seed = seed.display(),
    ));
    good.start(&["--config", &config]);

    // The pre-install hook is not in the allowlist: nothing runs.
    let mut unknown = node(
        &env,
        "unknown",
        &[(DURATION_ANNOTATION, "1s")],
        Some(inventory(false)),
    )
    .await;
    let unknown_config = unknown.config(&format!(
        "hooks:\n  post: {{path: {}}}\n  health: {{path: {}}}\n",
        unknown.script("post.sh", "exit 0"),
        unknown.script("health.sh", "exit 0"),
    ));
    unknown.start(&["--config", &unknown_config]);

    // The health check fails.
    let mut sick = node(
        &env,
        "sick",
        &[(DURATION_ANNOTATION, "1s")],
        Some(inventory(false)),
    )
    .await;
    let sick_config = sick.config(&format!(
        "hooks:\n  pre: {{path: {}}}\n  post: {{path: {}}}\n  health: {{path: {}, timeout: 30s}}\n",
        sick.script("pre.sh", "exit 0"),
        sick.script("post.sh", "exit 0"),
        sick.script("health.sh", "echo 'app is down on port 8443' >&2; exit 3"),
    ));
    sick.start(&["--config", &sick_config]);

    for node in [&good, &unknown, &sick] {
        wait_for(&api, node, "inventoried", |a| {
            inventoried(a) && available_ids(a).len() == 2
        })
        .await;
    }
    let mut op = operation(
        "op-good",
        OperationAction::Install,
        &[("openssl", "3.0.15")],
        in_an_hour(),
    );
    op.hooks = Some(hooks("pre", "health"));
    issue(&api, "good", &op).await;
    let mut op = operation(
        "op-unknown",
        OperationAction::Install,
        &[("openssl", "3.0.15")],
        in_an_hour(),
    );
    op.hooks = Some(hooks("stop-erp", "health"));
    issue(&api, "unknown", &op).await;
    let mut op = operation(
        "op-sick",
        OperationAction::Install,
        &[("openssl", "3.0.15")],
        in_an_hour(),
    );
    op.hooks = Some(hooks("pre", "health"));
    issue(&api, "sick", &op).await;

    wait_for(
        &api,
        &good,
        "Succeeded",
        phase_is("op-good", OperationPhase::Succeeded),
    )
    .await;
    let lines: Vec<String> = std::fs::read_to_string(&order)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            "pre-install op-good openssl=3.0.15",
            "post-install op-good openssl=3.0.15",
            "health-check op-good openssl=3.0.15"
        ]
    );
    assert_eq!(good.install_log().len(), 1);

    let failed = wait_for(
        &api,
        &unknown,
        "Failed",
        phase_is("op-unknown", OperationPhase::Failed),
    )
    .await;
    let text = message(&failed);
    assert!(text.contains("\"stop-erp\""), "{text}");
    assert!(text.contains("pre-install"), "{text}");
    assert!(text.contains(&unknown_config), "{text}");
    assert!(text.contains("nothing was installed"), "{text}");
    assert!(last_operation(&failed).unwrap().installed.is_empty());
    assert!(
        unknown.install_log().is_empty(),
        "{:?}",
        unknown.install_log()
    );
    assert_eq!(unknown.installed("openssl").as_deref(), Some("3.0.14"));
    assert_eq!(available_ids(&failed), ["openssl", "curl"]);

    let failed = wait_for(
        &api,
        &sick,
        "Failed",
        phase_is("op-sick", OperationPhase::Failed),
    )
    .await;
    let text = message(&failed);
    assert!(text.contains("health-check hook \"health\""), "{text}");
    assert!(text.contains("app is down on port 8443"), "{text}");
    assert!(text.contains("exit status: 3"), "{text}");
    // The install happened; the result says which versions are on the machine.
    assert_eq!(last_operation(&failed).unwrap().installed.len(), 1);
    assert_eq!(sick.install_log().len(), 1);
    assert_eq!(sick.installed("openssl").as_deref(), Some("3.0.15"));
    let history = &reported(&failed).unwrap().installed_history;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(available_ids(&failed), ["curl"]);
}

#[tokio::test]
async fn reboots_follow_the_policy_and_the_config() {
    let env = support::test_env("node-reboot").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();

    let mut allowed = node(
        &env,
        "reboots",
        &[(DURATION_ANNOTATION, "1s")],
        Some(inventory(true)),
    )
    .await;
    let marker = allowed.path("rebooted.txt");
    let stand_in = allowed.script(
        "reboot.sh",
        &format!("echo rebooted >> {}", marker.display()),
    );
    let config = allowed.config(&format!(
        "reboot:\n  enabled: true\n  command: [{stand_in}]\n  waitForRestart: 0s\n"
    ));
    allowed.start(&["--config", &config]);

    let mut disabled = node(
        &env,
        "no-reboots",
        &[(DURATION_ANNOTATION, "1s")],
        Some(inventory(true)),
    )
    .await;
    let disabled_config = disabled.config("reboot:\n  enabled: false\n");
    disabled.start(&["--config", &disabled_config]);

    for node in [&allowed, &disabled] {
        wait_for(&api, node, "inventoried", inventoried).await;
    }
    let kernel = [("linux-image", "6.1.120"), ("curl", "8.11.1")];
    issue(
        &api,
        "reboots",
        &operation("op-r", OperationAction::Install, &kernel, in_an_hour()),
    )
    .await;
    issue(
        &api,
        "no-reboots",
        &operation("op-n", OperationAction::Install, &kernel, in_an_hour()),
    )
    .await;

    let done = wait_for(
        &api,
        &allowed,
        "Succeeded",
        phase_is("op-r", OperationPhase::Succeeded),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "rebooted\n");
    assert!(!reported(&done).unwrap().reboot_pending);
    assert!(message(&done).contains("rebooted"), "{}", message(&done));

    let done = wait_for(
        &api,
        &disabled,
        "Succeeded",
        phase_is("op-n", OperationPhase::Succeeded),
    )
    .await;
    assert!(reported(&done).unwrap().reboot_pending);
    let text = message(&done);
    assert!(text.contains("rebootPending"), "{text}");
    assert!(text.contains("reboot.enabled is false"), "{text}");
    assert!(text.contains(&disabled_config), "{text}");

    // The stand-in ran once, and no more later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "rebooted\n");
}

#[tokio::test]
async fn an_operation_past_its_not_after_fails_without_running() {
    let env = support::test_env("node-late").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    let mut late = node(
        &env,
        "late",
        &[(DURATION_ANNOTATION, "1s")],
        Some(inventory(false)),
    )
    .await;
    late.start(&[]);
    wait_for(&api, &late, "inventoried", inventoried).await;
    // Whole seconds, as the API server keeps times.
    let not_after = Timestamp::from_second(Timestamp::now().as_second() - 300).unwrap();
    issue(
        &api,
        "late",
        &operation(
            "op-late",
            OperationAction::Install,
            &[("openssl", "3.0.15")],
            not_after,
        ),
    )
    .await;
    let failed = wait_for(
        &api,
        &late,
        "Failed",
        phase_is("op-late", OperationPhase::Failed),
    )
    .await;
    let result = last_operation(&failed).unwrap();
    assert_eq!(result.started_at, None);
    let text = message(&failed);
    assert!(text.contains(&not_after.to_string()), "{text}");
    assert!(late.install_log().is_empty());
    assert_eq!(late.installed("openssl").as_deref(), Some("3.0.14"));
}

/// Kills the agent with SIGKILL in the middle of an install, before or after the simulated
/// database changes, and restarts it: the agent reports what is really installed and never
/// installs again.
#[tokio::test]
async fn a_killed_agent_reports_the_true_outcome_and_never_installs_twice() {
    let env = support::test_env("node-crash").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    // The database changes 3 s into a 6 s install.
    let slow = [(DURATION_ANNOTATION, "6s")];
    let mut early = node(&env, "killed-early", &slow, Some(inventory(false))).await;
    let mut late = node(&env, "killed-late", &slow, Some(inventory(false))).await;
    early.start(&[]);
    late.start(&[]);
    for node in [&early, &late] {
        wait_for(&api, node, "inventoried", inventoried).await;
    }
    let wanted = [("openssl", "3.0.15"), ("curl", "8.11.1")];
    issue(
        &api,
        "killed-early",
        &operation("op-early", OperationAction::Install, &wanted, in_an_hour()),
    )
    .await;
    issue(
        &api,
        "killed-late",
        &operation("op-late", OperationAction::Install, &wanted, in_an_hour()),
    )
    .await;

    // Before the midpoint: the install began, the database still has the old versions.
    wait_until(&early, "installing", |n| n.install_log().len() == 1).await;
    early.kill();
    assert_eq!(early.installed("openssl").as_deref(), Some("3.0.14"));
    // After the midpoint: the new versions are in, the install has not returned.
    wait_until(&late, "past the midpoint", |n| {
        n.installed("openssl").as_deref() == Some("3.0.15")
    })
    .await;
    late.kill();
    for (node, id) in [(&early, "op-early"), (&late, "op-late")] {
        let asset = api.get(&node.name).await.unwrap();
        assert!(
            phase_is(id, OperationPhase::Running)(&asset),
            "{}",
            node.logs()
        );
    }

    early.start(&[]);
    late.start(&[]);
    let failed = wait_for(
        &api,
        &early,
        "Failed",
        phase_is("op-early", OperationPhase::Failed),
    )
    .await;
    let text = message(&failed);
    assert!(text.contains("interrupted"), "{text}");
    assert!(text.contains("did not install again"), "{text}");
    assert!(
        text.contains("openssl (installed 3.0.14, wanted 3.0.15)"),
        "{text}"
    );
    assert!(last_operation(&failed).unwrap().started_at.is_some());

    let done = wait_for(
        &api,
        &late,
        "Succeeded",
        phase_is("op-late", OperationPhase::Succeeded),
    )
    .await;
    let result = last_operation(&done).unwrap();
    assert!(message(&done).contains("interrupted"), "{}", message(&done));
    let mut installed = result.installed.clone();
    installed.sort();
    assert_eq!(
        installed,
        [
            UpdateRef {
                id: "curl".to_owned(),
                version: Some("8.11.1".to_owned())
            },
            UpdateRef {
                id: "openssl".to_owned(),
                version: Some("3.0.15".to_owned())
            },
        ]
    );
    assert!(
        available_ids(&done).is_empty(),
        "{:?}",
        available_ids(&done)
    );
    let history = &reported(&done).unwrap().installed_history;
    assert_eq!(history.len(), 2, "{history:?}");

    // Give both a moment: no second install, ever.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(early.install_log().len(), 1, "{:?}", early.install_log());
    assert_eq!(late.install_log().len(), 1, "{:?}", late.install_log());
    assert_eq!(early.installed("openssl").as_deref(), Some("3.0.14"));
}

/// Killed after the install returned (during the post-install hook) or by the reboot it asked
/// for (the stand-in kills the agent, as a real reboot would): after the restart the agent
/// carries on with the steps after it and never installs again.
#[tokio::test]
async fn after_the_install_or_a_reboot_the_agent_carries_on_with_the_steps_after_it() {
    let env = support::test_env("node-resume").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    let fast = [(DURATION_ANNOTATION, "1s")];

    let mut hooked = node(&env, "killed-in-hook", &fast, Some(inventory(false))).await;
    let order = hooked.path("order.txt");
    let slept = hooked.path("slept");
    // The first post-install run hangs (the test kills the agent there); later runs do not.
    let post = format!(
        "echo post >> {order}\nif [ ! -e {slept} ]; then touch {slept}; sleep 20; fi",
        order = order.display(),
        slept = slept.display()
    );
    let config = hooked.config(&format!(
        "hooks:\n  post: {{path: {}}}\n  health: {{path: {}}}\n",
        hooked.script("post.sh", &post),
        hooked.script("health.sh", &format!("echo health >> {}", order.display())),
    ));
    hooked.start(&["--config", &config]);

    let mut rebooted = node(&env, "killed-by-reboot", &fast, Some(inventory(true))).await;
    let marker = rebooted.path("rebooted.txt");
    let stand_in = rebooted.script(
        "reboot.sh",
        &format!("echo rebooted >> {}\nkill -9 $PPID", marker.display()),
    );
    let after = rebooted.path("after.txt");
    let reboot_config = rebooted.config(&format!(
        "hooks:\n  post: {{path: {}}}\nreboot:\n  enabled: true\n  command: [{stand_in}]\n  waitForRestart: 0s\n",
        rebooted.script("post.sh", &format!("echo post >> {}", after.display())),
    ));
    rebooted.start(&["--config", &reboot_config]);

    for node in [&hooked, &rebooted] {
        wait_for(&api, node, "inventoried", inventoried).await;
    }
    let hooks = Hooks {
        pre_install: None,
        post_install: Some("post".to_owned()),
        health_check: Some("health".to_owned()),
    };
    let mut op = operation(
        "op-hook",
        OperationAction::Install,
        &[("openssl", "3.0.15")],
        in_an_hour(),
    );
    op.hooks = Some(hooks.clone());
    issue(&api, "killed-in-hook", &op).await;
    let mut op = operation(
        "op-boot",
        OperationAction::Install,
        &[("linux-image", "6.1.120")],
        in_an_hour(),
    );
    op.hooks = Some(Hooks {
        health_check: None,
        ..hooks
    });
    issue(&api, "killed-by-reboot", &op).await;

    wait_until(&hooked, "in the post-install hook", |_| slept.exists()).await;
    hooked.kill();
    wait_until(&rebooted, "rebooted", |_| marker.exists()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (node, id) in [(&hooked, "op-hook"), (&rebooted, "op-boot")] {
        let asset = api.get(&node.name).await.unwrap();
        assert!(
            phase_is(id, OperationPhase::Running)(&asset),
            "{}",
            node.logs()
        );
    }
    assert!(
        !after.exists(),
        "the post-install hook ran before the reboot"
    );

    hooked.start(&["--config", &config]);
    rebooted.start(&["--config", &reboot_config]);
    let done = wait_for(
        &api,
        &hooked,
        "Succeeded",
        phase_is("op-hook", OperationPhase::Succeeded),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&order).unwrap(),
        "post\npost\nhealth\n",
        "post-install again, then the health check"
    );
    assert_eq!(last_operation(&done).unwrap().installed.len(), 1);
    assert_eq!(hooked.install_log().len(), 1, "{:?}", hooked.install_log());

    let done = wait_for(
        &api,
        &rebooted,
        "Succeeded",
        phase_is("op-boot", OperationPhase::Succeeded),
    )
    .await;
    assert!(message(&done).contains("rebooted"), "{}", message(&done));
    assert!(!reported(&done).unwrap().reboot_pending);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "rebooted\n");
    assert_eq!(std::fs::read_to_string(&after).unwrap(), "post\n");
    assert_eq!(
        rebooted.install_log().len(),
        1,
        "{:?}",
        rebooted.install_log()
    );
}

/// The API server goes away while the agent installs: the install finishes, the agent keeps
/// retrying its report, and the result lands when the server is back; nothing runs twice.
#[tokio::test]
async fn the_result_lands_when_the_api_server_is_back() {
    let env = support::test_env("node-outage").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    let mut away = node(
        &env,
        "cut-off",
        &[(DURATION_ANNOTATION, "3s")],
        Some(inventory(false)),
    )
    .await;
    let proxy = Proxy::to_api_server(env.control_plane).await;
    // The agent reaches the API server through the proxy only.
    let mut kubeconfig = kube::config::Kubeconfig::read_from(&away.kubeconfig).unwrap();
    proxy.route(&mut kubeconfig);
    patchwave::devcluster::write_kubeconfig(&away.kubeconfig, &kubeconfig).unwrap();
    away.start(&["--heartbeat", "1s"]);
    wait_for(&api, &away, "inventoried", inventoried).await;

    issue(
        &api,
        "cut-off",
        &operation(
            "op-away",
            OperationAction::Install,
            &[("openssl", "3.0.15")],
            in_an_hour(),
        ),
    )
    .await;
    wait_for(
        &api,
        &away,
        "Running",
        phase_is("op-away", OperationPhase::Running),
    )
    .await;
    proxy.cut();
    // The install goes on without the API server and ends (3 s) during the outage.
    wait_until(&away, "installed", |n| {
        n.installed("openssl").as_deref() == Some("3.0.15")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = api.get("cut-off").await.unwrap();
    assert!(
        phase_is("op-away", OperationPhase::Running)(&during),
        "{}",
        away.logs()
    );

    proxy.restore();
    let done = wait_for(
        &api,
        &away,
        "Succeeded",
        phase_is("op-away", OperationPhase::Succeeded),
    )
    .await;
    assert_eq!(last_operation(&done).unwrap().installed.len(), 1);
    assert_eq!(away.install_log().len(), 1, "{:?}", away.install_log());
    assert!(
        away.logs().contains("retrying with backoff"),
        "{}",
        away.logs()
    );
}
