#![allow(clippy::unwrap_used)] // test helpers fail loudly by design
//! The whole path a user takes, on the real kube-apiserver: the agent admission policy
//! installed (`kubectl apply -k config/agent-policy`), each machine enrolled with
//! `kubectl patchwave enroll`, `patchwave-agent run` started with the kubeconfig enrol printed
//! (the simulated backend, so no package on this machine changes), the operator running, and a
//! PatchPolicy rolled out ring by ring. Everything the agents do goes through their
//! least-privilege identities and the admission policy.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::Api;
use patchwave::agent::backend::simulated::{DATABASE_FILE, Database, INSTALL_LOG_FILE};
use patchwave::agent::simulated::{DURATION_ANNOTATION, OUTCOME_ANNOTATION};
use patchwave::api::Asset;
use patchwave::api::rollout::RolloutPhase;
use support::TestEnv;
use support::scenario::{
    apply, eventually, open_window_yaml, policy_yaml, ring_yaml, start_operator, the_rollout,
    wait_rollout,
};

const DEADLINE: Duration = Duration::from_secs(60);

/// Two security updates every machine starts with (the simulated package database's seed).
fn seed_yaml() -> String {
    let released = Timestamp::now() - SignedDuration::from_hours(24 * 3);
    format!(
        "- id: openssl\n  package: openssl\n  version: 3.0.15-1~deb12u1\n  installedVersion: 3.0.14-1~deb12u2\n  classification: Security\n  severity: Critical\n  releasedAt: \"{released}\"\n\
         - id: curl\n  package: curl\n  version: 7.88.1-10+deb12u8\n  installedVersion: 7.88.1-10+deb12u7\n  classification: Security\n  severity: Important\n  releasedAt: \"{released}\"\n",
        released = released.round(jiff::Unit::Second).unwrap()
    )
}

/// One enrolled machine and its agent process.
struct Machine {
    name: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Machine {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn install_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.state().join(INSTALL_LOG_FILE))
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn installed(&self, id: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.state().join(DATABASE_FILE)).unwrap();
        let database: Database = serde_json::from_str(&text).unwrap();
        database.installed.get(id).cloned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs the agent admission policy once per test binary (cluster-scoped).
fn install_agent_policy() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let plane = support::control_plane();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/agent-policy");
        support::run(plane.kubectl().arg("apply").arg("-k").arg(dir));
    });
}

/// `kubectl patchwave enroll` as an administrator would run it; starts the machine's agent
/// with the kubeconfig it printed. `annotations` choose the simulated outcome and duration.
fn enroll_and_start(
    env: &TestEnv,
    name: &str,
    ring: &str,
    annotations: &[(&str, &str)],
) -> Machine {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("agent.kubeconfig");
    let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .env("KUBECONFIG", env.control_plane.kubeconfig_path())
        .args(["enroll", name, "-n", &env.namespace, "--os-family", "Linux"])
        .args(["--labels", &format!("ring={ring}")])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "enroll {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (key, value) in annotations {
        support::run(
            env.kubectl()
                .args(["annotate", "asset", name, &format!("{key}={value}")]),
        );
    }
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, seed_yaml()).unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!("simulated:\n  seedFile: {}\n", seed.display()),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_patchwave-agent"))
        .args(["run", "--asset", name, "--namespace", &env.namespace])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--backend", "simulated", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Machine {
        name: name.to_owned(),
        dir,
        child,
    }
}

/// Waits until every machine's agent reported its two available updates.
async fn wait_inventories(env: &TestEnv, machines: &[Machine]) {
    let api: Api<Asset> = env.api();
    for machine in machines {
        eventually(
            &format!("the agent of {} reports its inventory", machine.name),
            DEADLINE,
            || async {
                let asset = api.get(&machine.name).await.map_err(|e| e.to_string())?;
                let reported = asset.status.and_then(|s| s.reported);
                match reported {
                    Some(r) if r.available_updates.len() == 2 => Ok(()),
                    other => Err(format!("{other:?}\nagent log:\n{}", machine.log())),
                }
            },
        )
        .await;
    }
}

/// A namespace of its own, with the CRDs and the agent admission policy installed.
async fn cluster_with_agent_policy(prefix: &str) -> TestEnv {
    let env = support::test_env(prefix).await;
    tokio::task::spawn_blocking(|| {
        support::install_project_crds();
        install_agent_policy();
    })
    .await
    .unwrap();
    env
}

/// Rings pilot and rest (3 at a time, no failure allowed, no bake), a window open now, and a
/// security policy over both rings with `extra` spec lines.
fn apply_policy(env: &TestEnv, extra: &str) {
    let objects = [
        ring_yaml("pilot", "3", "0", "0s", "Automatic"),
        ring_yaml("rest", "3", "0", "0s", "Automatic"),
        open_window_yaml(),
        policy_yaml("security", &["pilot", "rest"], extra),
    ];
    apply(env, &objects.join("---\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_agents_patch_ring_by_ring_under_their_own_identities() {
    let env = cluster_with_agent_policy("e2e-rollout").await;
    let quick = [(DURATION_ANNOTATION, "1s")];
    let machines = vec![
        enroll_and_start(&env, "lt-pilot-01", "pilot", &quick),
        enroll_and_start(&env, "lt-pilot-02", "pilot", &quick),
        enroll_and_start(&env, "srv-rest-01", "rest", &quick),
        enroll_and_start(&env, "srv-rest-02", "rest", &quick),
    ];
    wait_inventories(&env, &machines).await;

    apply_policy(&env, "");
    let _operator = start_operator(&env);
    let rollout = the_rollout(&env).await;
    let name = rollout.metadata.name.clone().unwrap();
    wait_rollout(&env, &name, "the rollout succeeds", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.phase == RolloutPhase::Succeeded)
    })
    .await;

    let api: Api<Asset> = env.api();
    let mut pilot_done = Vec::new();
    let mut rest_started = Vec::new();
    for machine in &machines {
        let asset = api.get(&machine.name).await.unwrap();
        let reported = asset.status.and_then(|s| s.reported).unwrap();
        let last = reported.last_operation.unwrap();
        assert_eq!(
            format!("{:?}", last.phase),
            "Succeeded",
            "{}: {:?}\n{}",
            machine.name,
            last.message,
            machine.log()
        );
        assert!(
            reported.available_updates.is_empty(),
            "{}: nothing is missing after the rollout",
            machine.name
        );
        assert_eq!(
            machine.installed("openssl").as_deref(),
            Some("3.0.15-1~deb12u1"),
            "{}: the simulated machine has the rollout's version",
            machine.name
        );
        assert_eq!(
            machine.install_log().len(),
            1,
            "{}: one install call, no second one: {:?}",
            machine.name,
            machine.install_log()
        );
        if machine.name.contains("pilot") {
            pilot_done.push(last.finished_at.unwrap().0);
        } else {
            rest_started.push(last.started_at.unwrap().0);
        }
    }
    let last_pilot = pilot_done.iter().max().unwrap();
    assert!(
        rest_started.iter().all(|started| started >= last_pilot),
        "the ring rest starts after the pilot ring finished: pilot done {pilot_done:?}, rest started {rest_started:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halted_ring_rolls_back_the_machines_it_patched() {
    let env = cluster_with_agent_policy("e2e-rollback").await;
    let quick = [(DURATION_ANNOTATION, "1s")];
    let machines = vec![
        enroll_and_start(&env, "lt-pilot-01", "pilot", &quick),
        enroll_and_start(&env, "lt-pilot-02", "pilot", &quick),
        // Fails, and only after the other two have finished.
        enroll_and_start(
            &env,
            "lt-pilot-03",
            "pilot",
            &[(DURATION_ANNOTATION, "8s"), (OUTCOME_ANNOTATION, "Failed")],
        ),
        enroll_and_start(&env, "srv-rest-01", "rest", &quick),
    ];
    wait_inventories(&env, &machines).await;

    apply_policy(&env, "  onFailure: Rollback\n");
    let _operator = start_operator(&env);
    let api: Api<Asset> = env.api();
    for machine in &machines[..2] {
        eventually(
            &format!("{} is rolled back by its agent", machine.name),
            DEADLINE,
            || async {
                let asset = api.get(&machine.name).await.map_err(|e| e.to_string())?;
                // The operator clears status.operation once the result is in: the agent's
                // report of the rollback operation is what stays.
                let last = asset
                    .status
                    .and_then(|s| s.reported)
                    .and_then(|r| r.last_operation);
                match last {
                    Some(last)
                        if last.id.ends_with("/rollback")
                            && format!("{:?}", last.phase) == "Succeeded" =>
                    {
                        Ok(())
                    }
                    last => Err(format!("last operation {last:?}\n{}", machine.log())),
                }
            },
        )
        .await;
        assert_eq!(
            machine.installed("openssl").as_deref(),
            Some("3.0.14-1~deb12u2"),
            "{}: back at the version the install replaced",
            machine.name
        );
        assert_eq!(
            machine.install_log().len(),
            2,
            "{}: one install and one rollback: {:?}",
            machine.name,
            machine.install_log()
        );
    }
    let failed = &machines[2];
    assert_eq!(
        failed.installed("openssl").as_deref(),
        Some("3.0.14-1~deb12u2"),
        "the failed machine never got the new version"
    );
    let rest = api.get(&machines[3].name).await.unwrap();
    assert!(
        rest.status.and_then(|s| s.operation).is_none(),
        "a halted rollout starts nothing in the next ring"
    );
    assert!(machines[3].install_log().is_empty());
    // Once the rollbacks are reported, the rollout stays Halted until a person acts.
    let rollout = the_rollout(&env).await;
    let name = rollout.metadata.name.clone().unwrap();
    wait_rollout(
        &env,
        &name,
        "the rollout is Halted after its rollbacks",
        |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.phase == RolloutPhase::Halted)
        },
    )
    .await;
}
