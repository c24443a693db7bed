#![allow(clippy::unwrap_used)] // test helpers fail loudly by design
//! The plugin's cluster commands against a real kube-apiserver: `status` (table, JSON and the
//! live view) and the controls `approve`, `pause`, `unpause`, `resume`, `abort`, `hold`,
//! `unhold`. No operator runs here: the tests write the rollout's status themselves to stage a
//! halted ring or a ring waiting for approval, then run the built binary with the admin
//! kubeconfig and read back what it wrote.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use patchwave::api::{Asset, PatchPolicy, PatchRollout, Ring};
use serde_json::{Value, json};
use support::TestEnv;

/// The user of the test cluster's admin kubeconfig, as the API server knows it.
const ADMIN: &str = "patchwave-admin";

/// The plugin with `args`, pointed at the test cluster (via KUBECONFIG) and the test's
/// namespace (`-n` after the command, as kubectl passes it to a plugin).
fn plugin(env: &TestEnv, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"));
    command
        .env("KUBECONFIG", env.control_plane.kubeconfig_path())
        .args(args)
        .args(["-n", &env.namespace]);
    command
}

/// Runs the plugin with `args` (blocking; fine for these short commands).
fn run(env: &TestEnv, args: &[&str]) -> Output {
    plugin(env, args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the plugin and asserts it succeeded; returns stdout.
fn ok(env: &TestEnv, args: &[&str]) -> String {
    let output = run(env, args);
    assert!(
        output.status.success(),
        "{args:?} failed ({}):\n{}{}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Runs the plugin and asserts it exited with status 1; returns stdout and stderr.
fn fails(env: &TestEnv, args: &[&str]) -> String {
    let output = run(env, args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?} should fail with exit status 1:\n{}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output) + &stderr(&output)
}

/// Creates the rollout `name` of `policy` with rings pilot, dept-a, rest.
async fn create_rollout(env: &TestEnv, name: &str, policy: &str) {
    let rollout: PatchRollout = serde_yaml::from_str(&format!(
        "metadata: {{name: {name}}}\n\
         spec: {{policy: {policy}, revision: 1a2b3c4d, rings: [pilot, dept-a, rest],\n\
         updates: [{{id: openssl, version: '3.5.4-1'}}, {{id: KB5044281}}]}}\n"
    ))
    .unwrap();
    env.api::<PatchRollout>()
        .create(&PostParams::default(), &rollout)
        .await
        .unwrap();
}

/// Writes `status` on the rollout, as the operator would.
async fn set_rollout_status(env: &TestEnv, name: &str, status: Value) {
    env.api::<PatchRollout>()
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .unwrap();
}

/// The status of a rollout whose pilot ring halted once (2 of 4 failed).
fn halted_status() -> Value {
    json!({
        "phase": "Halted",
        "currentRing": "pilot",
        "haltReason": "ring pilot: 2 of 4 assets failed (lt-it-03, lt-it-04); to go on, add {ring: pilot, halt: 1} to spec.resumes",
        "rings": [
            {"name": "pilot", "phase": "Halted", "total": 4, "succeeded": 2, "failed": 2,
             "halts": 1, "failedAssets": ["lt-it-03", "lt-it-04"]},
            {"name": "dept-a", "phase": "Pending", "total": 5, "pending": 5},
            {"name": "rest", "phase": "Pending", "total": 20, "pending": 20}
        ]
    })
}

/// The status of a rollout whose ring dept-a waits for its approval.
fn waiting_status() -> Value {
    json!({
        "phase": "WaitingForApproval",
        "currentRing": "dept-a",
        "rings": [
            {"name": "pilot", "phase": "Completed", "total": 3, "succeeded": 3,
             "completedAt": "2026-11-26T20:00:00Z", "bakeUntil": "2026-11-27T20:00:00Z"},
            {"name": "dept-a", "phase": "WaitingForApproval", "total": 5, "pending": 5},
            {"name": "rest", "phase": "Pending", "total": 20, "pending": 20}
        ]
    })
}

/// Creates a Linux Asset with `state` in its status.
async fn create_asset(env: &TestEnv, name: &str, state: &str) {
    let asset: Asset = serde_yaml::from_str(&format!(
        "metadata: {{name: {name}}}\nspec: {{osFamily: Linux}}\n"
    ))
    .unwrap();
    let api = env.api::<Asset>();
    api.create(&PostParams::default(), &asset).await.unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"state": state}})),
    )
    .await
    .unwrap();
}

async fn rollout_json(env: &TestEnv, name: &str) -> Value {
    serde_json::to_value(env.api::<PatchRollout>().get(name).await.unwrap()).unwrap()
}

async fn setup(prefix: &str) -> TestEnv {
    let env = support::test_env(prefix).await;
    tokio::task::spawn_blocking(support::install_project_crds)
        .await
        .unwrap();
    env
}

#[tokio::test]
async fn status_shows_rings_counts_and_the_commands_that_go_on() {
    let env = setup("status").await;
    let ns = env.namespace.clone();
    create_rollout(&env, "security-fast-1a2b3c4d", "security-fast").await;
    set_rollout_status(&env, "security-fast-1a2b3c4d", halted_status()).await;
    // A second policy's rollout, created later: listed first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    create_rollout(&env, "monthly-9f8e7d6c", "monthly").await;
    set_rollout_status(&env, "monthly-9f8e7d6c", waiting_status()).await;
    create_asset(&env, "lt-it-03", "Failed").await;
    create_asset(&env, "lt-it-04", "Failed").await;
    create_asset(&env, "srv-01", "UpToDate").await;

    let table = ok(&env, &["status"]);
    assert!(table.contains(&format!("namespace {ns}")), "{table}");
    let halted_at = table.find("security-fast-1a2b3c4d  policy security-fast  Halted  2 updates");
    let waiting_at = table.find("monthly-9f8e7d6c  policy monthly  WaitingForApproval");
    assert!(
        halted_at.is_some() && waiting_at.is_some() && waiting_at < halted_at,
        "newest first:\n{table}"
    );
    let pilot = table
        .lines()
        .find(|l| l.trim_start().starts_with("pilot") && l.contains("Halted"))
        .unwrap_or_else(|| panic!("no pilot line:\n{table}"));
    assert!(pilot.contains("[##########xxxxxxxxxx]"), "{pilot}");
    assert!(
        pilot.contains("halt 1; failed: lt-it-03, lt-it-04"),
        "{pilot}"
    );
    // Succeeded, failed, skipped, in flight, pending, total.
    let counts: Vec<&str> = pilot.split_whitespace().skip(2).take(6).collect();
    assert_eq!(counts, ["2", "2", "0", "0", "0", "4"], "{pilot}");
    assert!(
        table.contains("halted: ring pilot: 2 of 4 assets failed (lt-it-03, lt-it-04)"),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "next: kubectl patchwave resume security-fast-1a2b3c4d --ring pilot -n {ns}"
        )),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "next: kubectl patchwave approve monthly-9f8e7d6c --ring dept-a -n {ns}"
        )),
        "{table}"
    );
    assert!(table.contains("waits for the ring's approval"), "{table}");
    assert!(
        table.contains("bake until 2026-11-27 20:00Z")
            || table.contains("completed 2026-11-26 20:00Z"),
        "{table}"
    );
    assert!(
        table.contains("assets: 3 total: 2 Failed, 1 UpToDate"),
        "{table}"
    );

    // Only the named rollout.
    let one = ok(&env, &["status", "monthly-9f8e7d6c"]);
    assert!(one.contains("monthly-9f8e7d6c"), "{one}");
    assert!(!one.contains("security-fast-1a2b3c4d"), "{one}");

    let json: Value = serde_json::from_str(&ok(&env, &["status", "-o", "json"])).unwrap();
    assert_eq!(json["namespace"], ns.as_str());
    assert_eq!(json["hiddenRollouts"], 0);
    assert_eq!(json["assets"]["total"], 3);
    assert_eq!(json["assets"]["byState"]["Failed"], 2);
    let rollouts = json["rollouts"].as_array().unwrap();
    assert_eq!(rollouts[0]["name"], "monthly-9f8e7d6c");
    let halted = &rollouts[1];
    assert_eq!(halted["phase"], "Halted");
    assert_eq!(halted["policy"], "security-fast");
    assert_eq!(halted["updates"], 2);
    assert_eq!(halted["rings"][0]["name"], "pilot");
    assert_eq!(halted["rings"][0]["failed"], 2);
    assert_eq!(halted["rings"][0]["succeeded"], 2);
    assert_eq!(halted["rings"][0]["halts"], 1);
    assert_eq!(
        halted["rings"][0]["failedAssets"],
        json!(["lt-it-03", "lt-it-04"])
    );
    assert_eq!(halted["rings"][2]["pending"], 20);
    assert_eq!(
        halted["nextSteps"],
        json!([format!(
            "kubectl patchwave resume security-fast-1a2b3c4d --ring pilot -n {ns}"
        )])
    );
    assert_eq!(rollouts[0]["rings"][1]["phase"], "WaitingForApproval");
}

#[tokio::test]
async fn approve_signs_once_and_names_what_is_not_there() {
    let env = setup("approve").await;
    create_rollout(&env, "r1", "p").await;
    set_rollout_status(&env, "r1", waiting_status()).await;
    create_asset(&env, "dc01", "WaitingForApproval").await;

    let out = ok(
        &env,
        &["approve", "r1", "--ring", "dept-a", "--note", "CHG-1042"],
    );
    assert!(out.contains("approved ring dept-a"), "{out}");
    let stored = rollout_json(&env, "r1").await;
    let approvals = stored["spec"]["approvedRings"].as_array().unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0]["name"], "dept-a");
    assert_eq!(approvals[0]["by"], ADMIN);
    assert_eq!(approvals[0]["note"], "CHG-1042");
    assert!(
        approvals[0]["at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20"))
    );
    let version = stored["metadata"]["resourceVersion"].clone();

    // Idempotent: says so and writes nothing.
    let again = ok(&env, &["approve", "r1", "--ring", "dept-a"]);
    assert!(
        again.contains(&format!("ring dept-a already approved by {ADMIN}")),
        "{again}"
    );
    let stored = rollout_json(&env, "r1").await;
    assert_eq!(stored["metadata"]["resourceVersion"], version);

    // The manual-approval path: an asset, then the ring and the asset together.
    ok(&env, &["approve", "r1", "--asset", "dc01"]);
    let stored = rollout_json(&env, "r1").await;
    assert_eq!(stored["spec"]["approvedAssets"][0]["name"], "dc01");
    assert_eq!(stored["spec"]["approvedAssets"][0]["by"], ADMIN);
    assert_eq!(stored["spec"]["approvedRings"].as_array().unwrap().len(), 1);

    let out = fails(&env, &["approve", "r1", "--ring", "dept-b"]);
    assert!(
        out.contains("ring \"dept-b\" is not part of patchrollout"),
        "{out}"
    );
    assert!(out.contains(&format!("{}/r1", env.namespace)), "{out}");
    let out = fails(&env, &["approve", "r1", "--asset", "ghost"]);
    assert!(
        out.contains(&format!(
            "asset {ns}/ghost not found in namespace {ns}",
            ns = env.namespace
        )),
        "{out}"
    );
    // Nothing changed by the refused commands.
    let stored = rollout_json(&env, "r1").await;
    assert_eq!(stored["spec"]["approvedRings"].as_array().unwrap().len(), 1);
    assert_eq!(
        stored["spec"]["approvedAssets"].as_array().unwrap().len(),
        1
    );
}

/// An approval the rollout does not wait for is recorded, with a note saying so.
#[tokio::test]
async fn approve_notes_an_approval_that_nothing_waits_for() {
    let env = setup("approve-needless").await;
    create_rollout(&env, "r1", "p").await;
    for (name, approval) in [("pilot", "Automatic"), ("dept-a", "Manual")] {
        let ring: Ring = serde_yaml::from_str(&format!(
            "metadata: {{name: {name}}}\nspec: {{selector: {{}}, approval: {approval}}}\n"
        ))
        .unwrap();
        env.api::<Ring>()
            .create(&PostParams::default(), &ring)
            .await
            .unwrap();
    }
    let policy: PatchPolicy =
        serde_yaml::from_str("metadata: {name: p}\nspec: {rings: [pilot, dept-a, rest]}\n")
            .unwrap();
    env.api::<PatchPolicy>()
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    create_asset(&env, "web01", "Pending").await;
    let dc: Asset = serde_yaml::from_str(
        "metadata: {name: dc01}\nspec: {osFamily: Windows, criticality: Critical}\n",
    )
    .unwrap();
    env.api::<Asset>()
        .create(&PostParams::default(), &dc)
        .await
        .unwrap();

    let out = ok(
        &env,
        &["approve", "r1", "--ring", "pilot", "--ring", "dept-a"],
    );
    assert!(out.contains("approved ring pilot, ring dept-a"), "{out}");
    assert!(
        out.contains("note: ring pilot has approval Automatic: it starts without an approval"),
        "{out}"
    );
    assert!(!out.contains("ring dept-a has"), "{out}");

    let out = ok(
        &env,
        &["approve", "r1", "--asset", "web01", "--asset", "dc01"],
    );
    assert!(
        out.contains(
            "note: asset web01 is Medium, and policy p asks a per-asset approval only for \
             [Critical]: it needs none (recorded anyway)"
        ),
        "{out}"
    );
    assert!(!out.contains("asset dc01 is"), "{out}");
    let stored = rollout_json(&env, "r1").await;
    assert_eq!(
        stored["spec"]["approvedAssets"].as_array().unwrap().len(),
        2
    );

    // A name given twice is one approval, with one note; a policy that asks no per-asset
    // approval says so.
    let none: PatchPolicy =
        serde_yaml::from_str("metadata: {name: p2}\nspec: {rings: [pilot], manualApproval: []}\n")
            .unwrap();
    env.api::<PatchPolicy>()
        .create(&PostParams::default(), &none)
        .await
        .unwrap();
    create_rollout(&env, "r2", "p2").await;
    let out = ok(
        &env,
        &["approve", "r2", "--asset", "dc01", "--asset", "dc01"],
    );
    assert_eq!(out.matches("approved asset dc01").count(), 1, "{out}");
    assert!(!out.contains("already approved"), "{out}");
    assert_eq!(
        out.matches("note: policy p2 asks no per-asset approval: asset dc01 needs none")
            .count(),
        1,
        "{out}"
    );
}

#[tokio::test]
async fn pause_and_unpause_set_spec_paused() {
    let env = setup("pause").await;
    create_rollout(&env, "r1", "p").await;
    let out = ok(&env, &["pause", "r1"]);
    assert!(out.contains("paused patchrollout"), "{out}");
    assert_eq!(rollout_json(&env, "r1").await["spec"]["paused"], true);
    let out = ok(&env, &["pause", "r1"]);
    assert!(out.contains("already paused"), "{out}");
    let status = ok(&env, &["status", "r1"]);
    assert!(status.contains("[paused]"), "{status}");
    assert!(
        status.contains("next: kubectl patchwave unpause r1"),
        "{status}"
    );
    ok(&env, &["unpause", "r1"]);
    assert_eq!(rollout_json(&env, "r1").await["spec"]["paused"], false);

    // A finished rollout is a record: pausing or aborting it would change nothing but its
    // spec, so each is refused with the reason, and the spec stays as it was.
    set_rollout_status(&env, "r1", json!({"phase": "Succeeded"})).await;
    for command in [
        vec!["pause", "r1"],
        vec!["unpause", "r1"],
        vec!["abort", "r1"],
        vec!["abort", "r1", "--yes"],
    ] {
        let out = fails(&env, &command);
        assert!(
            out.contains("patchrollout") && out.contains("already succeeded; nothing to"),
            "{command:?}: {out}"
        );
    }
    let spec = &rollout_json(&env, "r1").await["spec"];
    assert_eq!(spec["paused"], false);
    assert!(spec.get("abort").is_none(), "{spec}");
}

#[tokio::test]
async fn resume_answers_the_current_halt_and_refuses_a_ring_that_is_not_halted() {
    let env = setup("resume").await;
    create_rollout(&env, "r1", "p").await;
    let out = fails(&env, &["resume", "r1", "--ring", "pilot"]);
    assert!(out.contains("ring \"pilot\" of patchrollout"), "{out}");
    assert!(out.contains("is not halted"), "{out}");

    // The second halt of the pilot ring.
    let mut status = halted_status();
    status["rings"][0]["halts"] = json!(2);
    set_rollout_status(&env, "r1", status).await;
    let out = fails(&env, &["resume", "r1", "--ring", "dept-a"]);
    assert!(out.contains("ring \"dept-a\""), "{out}");
    assert!(
        out.contains("is not halted (status.rings[dept-a].phase is Pending)"),
        "{out}"
    );
    let out = fails(&env, &["resume", "r1", "--ring", "nope"]);
    assert!(
        out.contains("ring \"nope\" is not part of patchrollout"),
        "{out}"
    );

    let out = ok(
        &env,
        &["resume", "r1", "--ring", "pilot", "--note", "reimaged"],
    );
    assert!(out.contains("after halt 2"), "{out}");
    let stored = rollout_json(&env, "r1").await;
    let resumes = stored["spec"]["resumes"].as_array().unwrap();
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0]["ring"], "pilot");
    assert_eq!(resumes[0]["halt"], 2);
    assert_eq!(resumes[0]["by"], ADMIN);
    assert_eq!(resumes[0]["note"], "reimaged");

    // Twice: no second entry; status no longer offers the command.
    let out = ok(&env, &["resume", "r1", "--ring", "pilot"]);
    assert!(out.contains("already resumed"), "{out}");
    let stored = rollout_json(&env, "r1").await;
    assert_eq!(stored["spec"]["resumes"].as_array().unwrap().len(), 1);
    let status = ok(&env, &["status", "r1"]);
    assert!(
        !status.contains("next: kubectl patchwave resume"),
        "{status}"
    );
    assert!(status.contains("resume written"), "{status}");
}

#[tokio::test]
async fn abort_needs_yes_and_then_sticks() {
    let env = setup("abort").await;
    create_rollout(&env, "r1", "p").await;
    let out = fails(&env, &["abort", "r1", "--note", "vendor pulled it"]);
    assert!(out.contains("would abort patchrollout"), "{out}");
    assert!(out.contains("--yes"), "{out}");
    assert!(
        rollout_json(&env, "r1").await["spec"]
            .get("abort")
            .is_none()
    );

    let out = ok(
        &env,
        &["abort", "r1", "--note", "vendor pulled it", "--yes"],
    );
    assert!(out.contains("aborted patchrollout"), "{out}");
    let stored = rollout_json(&env, "r1").await;
    assert_eq!(stored["spec"]["abort"]["by"], ADMIN);
    assert_eq!(stored["spec"]["abort"]["note"], "vendor pulled it");
    let out = ok(&env, &["abort", "r1", "--yes"]);
    assert!(out.contains("already aborted"), "{out}");
    let out = fails(&env, &["approve", "r1", "--ring", "rest"]);
    assert!(out.contains("was aborted"), "{out}");
}

#[tokio::test]
async fn hold_and_unhold_an_asset() {
    let env = setup("hold").await;
    create_asset(&env, "erp01", "UpToDate").await;
    let out = ok(&env, &["hold", "erp01", "--reason", "year-end closing"]);
    assert!(out.contains("is on hold (year-end closing)"), "{out}");
    let asset = env.api::<Asset>().get("erp01").await.unwrap();
    assert!(asset.spec.hold);
    assert_eq!(asset.spec.hold_reason.as_deref(), Some("year-end closing"));
    let out = ok(&env, &["hold", "erp01"]);
    assert!(out.contains("already on hold"), "{out}");

    ok(&env, &["unhold", "erp01"]);
    let asset = env.api::<Asset>().get("erp01").await.unwrap();
    assert!(!asset.spec.hold);
    assert_eq!(asset.spec.hold_reason, None);
    let out = ok(&env, &["unhold", "erp01"]);
    assert!(out.contains("is not on hold"), "{out}");

    let out = fails(&env, &["hold", "nas-99"]);
    let ns = &env.namespace;
    assert!(
        out.contains(&format!("asset {ns}/nas-99 not found in namespace {ns}")),
        "{out}"
    );
}

#[tokio::test]
async fn an_unknown_rollout_is_named_in_the_error() {
    let env = setup("unknown").await;
    let ns = &env.namespace;
    let wanted = format!("patchrollout {ns}/security-fast-1a2b3c4d not found in namespace {ns}");
    for args in [
        &["status", "security-fast-1a2b3c4d"][..],
        &["approve", "security-fast-1a2b3c4d", "--ring", "pilot"],
        &["pause", "security-fast-1a2b3c4d"],
        &["resume", "security-fast-1a2b3c4d", "--ring", "pilot"],
        &["abort", "security-fast-1a2b3c4d"],
    ] {
        let out = fails(&env, args);
        assert!(out.contains(&wanted), "{args:?}: {out}");
    }
    let empty = ok(&env, &["status"]);
    assert!(
        empty.contains(&format!("no PatchRollout in namespace {ns}")),
        "{empty}"
    );
}

#[tokio::test]
async fn status_watch_prints_a_new_frame_when_the_rollout_changes() {
    let env = setup("watch").await;
    create_rollout(&env, "r1", "p").await;
    set_rollout_status(&env, "r1", waiting_status()).await;
    let mut child = plugin(&env, &["status", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let header = format!("namespace {} at", env.namespace);
    // Reads lines until `wanted` is true of one; returns everything read.
    let read_until = |wanted: &dyn Fn(&str) -> bool, seen: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = wanted(&line);
                    seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("no such line within 30 s; got:\n{}", seen.join("\n")),
            }
        }
    };
    let mut seen = Vec::new();
    read_until(
        &|l| l.contains("WaitingForApproval") && l.starts_with("r1"),
        &mut seen,
    );
    assert!(seen.iter().any(|l| l.starts_with(&header)), "{seen:?}");

    set_rollout_status(&env, "r1", halted_status()).await;
    read_until(&|l| l.starts_with("r1") && l.contains("Halted"), &mut seen);
    read_until(
        &|l| l.contains("next: kubectl patchwave resume r1 --ring pilot"),
        &mut seen,
    );
    // A change that shows nowhere (an annotation, like an agent's heartbeat on an Asset)
    // prints no new frame.
    env.api::<PatchRollout>()
        .patch(
            "r1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"note": "touched"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<String> = lines.try_iter().collect();
    assert!(
        !after.iter().any(|l| l.starts_with(&header)),
        "a frame although nothing shown changed:\n{}",
        after.join("\n")
    );
    seen.extend(after);
    child.kill().unwrap();
    child.wait().unwrap();

    let frames = seen.iter().filter(|l| l.starts_with(&header)).count();
    assert!(frames >= 2, "{}", seen.join("\n"));
    // Frames are separated by a blank line and carry no terminal control codes.
    let second = seen.iter().rposition(|l| l.starts_with(&header)).unwrap();
    assert_eq!(seen[second - 1], "", "{}", seen.join("\n"));
    assert!(seen.iter().all(|l| !l.contains('\x1b')), "{seen:?}");
}

#[test]
fn every_cluster_command_teaches_with_an_example() {
    for command in [
        "status", "approve", "pause", "unpause", "resume", "abort", "hold", "unhold",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = stdout(&output);
        assert!(output.status.success(), "{command}: {help}");
        assert!(help.contains("Example"), "{command}: {help}");
        assert!(
            help.contains(&format!("kubectl patchwave {command} ")),
            "{command}: {help}"
        );
        assert!(help.contains("--kubeconfig"), "{command}: {help}");
    }
}

/// A kubeconfig that cannot be read or parsed is a usage problem (exit status 2, the file and
/// the reason named), as `--help` says; a cluster that cannot be reached is a failed cluster
/// command (exit status 1).
#[test]
fn an_unreadable_kubeconfig_exits_with_2_and_an_unreachable_cluster_with_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.kubeconfig");
    let garbage = dir.path().join("garbage.kubeconfig");
    std::fs::write(&garbage, "clusters: [this is: not, a kubeconfig\n").unwrap();
    let unreachable = dir.path().join("unreachable.kubeconfig");
    // Port 1 on the loopback: nothing listens, the connection is refused at once.
    std::fs::write(
        &unreachable,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
         clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\n\
         contexts: [{name: c, context: {cluster: k, user: u, namespace: acme}}]\n",
    )
    .unwrap();
    let run = |kubeconfig: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
            .env_remove("KUBECONFIG")
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .output()
            .unwrap()
    };
    for args in [
        &["status"][..],
        &["approve", "r1", "--ring", "pilot"],
        &["hold", "erp01"],
        &["report", "-n", "acme"],
        &["enroll", "web-1", "--os-family", "Linux"],
    ] {
        for (file, reason) in [
            (&missing, "No such file or directory"),
            (&garbage, "failed to parse kubeconfig"),
        ] {
            let output = run(file, args);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?} {file:?}: {err}");
            assert!(
                err.contains(&format!("cannot read the kubeconfig {}: ", file.display()))
                    && err.contains(reason),
                "{args:?}: {err}"
            );
        }
    }
    let output = run(&unreachable, &["status"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

/// approve without --ring and --asset names both; the usage lines of the commands that take a
/// name do not show the optional -n and --kubeconfig the caller gave as if they were required.
#[test]
fn approve_without_what_names_both_flags_and_usage_lines_show_what_is_required() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        stderr(&output)
    };
    let err = run(&["approve", "r1", "-n", "acme"]);
    assert!(
        err.contains("give --ring NAME and/or --asset NAME"),
        "{err}"
    );
    for args in [
        &["approve", "-n", "acme", "--kubeconfig", "k", "--note", "x"][..],
        &["incident", "dc01", "-n", "acme", "--kubeconfig", "k"],
        &["resume", "r1", "-n", "acme", "--kubeconfig", "k"],
        &["pause", "-n", "acme", "--kubeconfig", "k"],
        &["unpause", "-n", "acme", "--kubeconfig", "k"],
        &["abort", "-n", "acme", "--kubeconfig", "k"],
        &["hold", "-n", "acme", "--kubeconfig", "k"],
        &["unhold", "-n", "acme", "--kubeconfig", "k"],
        &["enroll", "-n", "acme", "--kubeconfig", "k"],
    ] {
        let err = run(args);
        let usage = err
            .lines()
            .find(|line| line.starts_with("Usage:"))
            .unwrap_or_else(|| panic!("{args:?}: no usage line in {err}"));
        assert!(
            !usage.contains("--namespace <") && !usage.contains("--kubeconfig <"),
            "{args:?}: {usage}"
        );
        assert!(usage.contains("[OPTIONS]"), "{args:?}: {usage}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .args(["approve", "--help"])
        .output()
        .unwrap();
    assert!(
        stdout(&help).contains("--ring <NAME>... and/or --asset <NAME>..."),
        "{}",
        stdout(&help)
    );
}

/// A write computed from a stale read is refused by the API server (409) and computed again
/// from a fresh read, so a concurrent change is never lost.
#[tokio::test]
async fn a_concurrent_change_is_read_again_not_overwritten() {
    use patchwave::cli::cluster::{Change, ObjectRef, change_spec};

    let env = setup("conflict").await;
    create_rollout(&env, "r1", "p").await;
    let object = ObjectRef {
        kind: "patchrollout",
        namespace: env.namespace.clone(),
        name: "r1".to_owned(),
    };
    let mut calls = 0;
    let message = change_spec(&env.api::<PatchRollout>(), &object, |rollout| {
        calls += 1;
        if calls == 1 {
            // Someone else approves a ring between our read and our write.
            support::run(env.kubectl().args([
                "patch",
                "patchrollout",
                "r1",
                "--type=merge",
                "-p",
                r#"{"spec":{"approvedRings":[{"name":"rest","by":"alice"}]}}"#,
            ]));
        }
        let mut rings = rollout.spec.approved_rings.clone();
        rings.push(patchwave::api::rollout::Approval {
            name: "dept-a".to_owned(),
            ..Default::default()
        });
        Ok(Change::Spec(
            json!({"approvedRings": rings}),
            format!("call {calls}"),
        ))
    })
    .await
    .unwrap();
    assert_eq!(calls, 2);
    assert_eq!(message, "call 2");
    let stored = env.api::<PatchRollout>().get("r1").await.unwrap();
    let names: Vec<&str> = stored
        .spec
        .approved_rings
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["rest", "dept-a"]);
    // The plugin's writes carry its field manager.
    let managers: Vec<String> = stored
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers
            .iter()
            .any(|m| m == patchwave::api::PLUGIN_FIELD_MANAGER),
        "{managers:?}"
    );
}
