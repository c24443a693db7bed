#![allow(clippy::unwrap_used)] // test helpers fail loudly by design
//! `kubectl patchwave incident` against a real kube-apiserver: it records a signed
//! PatchIncident, refuses objects that are not there without recording anything, never reuses
//! a name, and the API server keeps the record from being changed afterwards.

mod support;

use std::process::{Command, Output};

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use patchwave::api::{Asset, IncidentImpact, PatchIncident, PatchRollout};
use support::TestEnv;

/// The user of the test cluster's admin kubeconfig, as the API server knows it.
const ADMIN: &str = "patchwave-admin";

/// Runs the plugin with `args` against the test cluster and the test's namespace.
fn run(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .env("KUBECONFIG", env.control_plane.kubeconfig_path())
        .args(args)
        .args(["-n", &env.namespace])
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Runs the plugin, asserts it succeeded and returns stdout.
fn ok(env: &TestEnv, args: &[&str]) -> String {
    let output = run(env, args);
    assert!(
        output.status.success(),
        "{args:?} failed ({}):\n{}",
        output.status,
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the plugin, asserts exit status 1 and returns stdout and stderr.
fn fails(env: &TestEnv, args: &[&str]) -> String {
    let output = run(env, args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?} should fail with exit status 1:\n{}",
        text(&output)
    );
    text(&output)
}

/// A namespace with the CRDs, the PatchRollout security-fast-1a2b3c4d, the Asset dc01 it gave
/// an operation (issued 2025-11-29 22:00 UTC) and the Asset web01 it never touched.
async fn setup(prefix: &str) -> TestEnv {
    let env = support::test_env(prefix).await;
    tokio::task::spawn_blocking(support::install_project_crds)
        .await
        .unwrap();
    for name in ["dc01", "web01"] {
        let asset: Asset = serde_yaml::from_str(&format!(
            "metadata: {{name: {name}}}\nspec: {{osFamily: Windows}}\n"
        ))
        .unwrap();
        env.api::<Asset>()
            .create(&PostParams::default(), &asset)
            .await
            .unwrap();
    }
    // The operator's record of dc01's operation in the rollout.
    env.api::<Asset>()
        .patch_status(
            "dc01",
            &PatchParams::apply("patchwave-operator").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
                "status": {"rollouts": [{
                    "rollout": "security-fast-1a2b3c4d", "ring": "pilot",
                    "operationId": "security-fast-1a2b3c4d/dc01/install", "action": "Install",
                    "phase": "Succeeded", "startedAt": "2025-11-29T22:00:00Z",
                    "finishedAt": "2025-11-29T22:40:00Z"
                }]}
            })),
        )
        .await
        .unwrap();
    let rollout: PatchRollout = serde_yaml::from_str(
        "metadata: {name: security-fast-1a2b3c4d}\n\
         spec: {policy: security-fast, revision: 1a2b3c4d, rings: [pilot, rest],\n\
         updates: [{id: KB5044281}, {id: KB5046617}]}\n",
    )
    .unwrap();
    env.api::<PatchRollout>()
        .create(&PostParams::default(), &rollout)
        .await
        .unwrap();
    env
}

async fn incidents(env: &TestEnv) -> Vec<PatchIncident> {
    let mut items = env
        .api::<PatchIncident>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    items.sort_by_key(|i| i.metadata.name.clone());
    items
}

#[tokio::test]
async fn an_incident_is_recorded_signed_and_shown_by_kubectl_get() {
    let env = setup("incident-record").await;
    let before = jiff::Timestamp::now();
    let out = ok(
        &env,
        &[
            "incident",
            "dc01",
            "--rollout",
            "security-fast-1a2b3c4d",
            "--note",
            "INC-2231: DNS down 40 min after KB5044281",
            "--impact",
            "High",
            "--update",
            "KB5044281",
        ],
    );
    let after = jiff::Timestamp::now();
    let ns = &env.namespace;
    assert!(
        out.contains(&format!("recorded patchincident {ns}/dc01-")),
        "{out}"
    );
    assert!(
        out.contains(&format!("reported by {ADMIN}")) && out.contains("impact High"),
        "{out}"
    );

    let stored = incidents(&env).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let incident = &stored[0];
    let name = incident.metadata.name.clone().unwrap();
    assert!(out.contains(&name), "{out}");
    let spec = &incident.spec;
    assert_eq!(spec.asset, "dc01");
    assert_eq!(spec.rollout, "security-fast-1a2b3c4d");
    assert_eq!(spec.note, "INC-2231: DNS down 40 min after KB5044281");
    assert_eq!(spec.impact, IncidentImpact::High);
    assert_eq!(spec.updates, ["KB5044281"]);
    assert_eq!(spec.reported_by.as_deref(), Some(ADMIN));
    let at = spec.occurred_at.as_ref().unwrap().0;
    assert!(
        at.as_second() >= before.as_second() - 1 && at.as_second() <= after.as_second() + 1,
        "occurredAt {at} not between {before} and {after}"
    );
    // The name is the asset and the time of the incident, in UTC.
    assert_eq!(name, format!("dc01-{}", at.strftime("%Y%m%d%H%M%S")));
    let managers: Vec<String> = incident
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["kubectl-patchwave"]);

    let table = support::run(env.kubectl().args(["get", "patchincidents"]));
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "NAME",
        "ASSET",
        "ROLLOUT",
        "IMPACT",
        "REPORTED-BY",
        "OCCURRED",
        "AGE",
    ] {
        assert!(header.contains(column), "column {column} missing: {table}");
    }
    let row = table.lines().nth(1).unwrap_or_default();
    for cell in [
        name.as_str(),
        "dc01",
        "security-fast-1a2b3c4d",
        "High",
        ADMIN,
    ] {
        assert!(row.contains(cell), "{cell} missing: {table}");
    }
    let wide = support::run(env.kubectl().args(["get", "pinc", "-o", "wide"]));
    assert!(wide.contains("INC-2231: DNS down"), "{wide}");
}

#[tokio::test]
async fn an_unknown_asset_rollout_or_update_is_named_and_nothing_is_recorded() {
    let env = setup("incident-unknown").await;
    let ns = &env.namespace;
    let out = fails(
        &env,
        &[
            "incident",
            "dc99",
            "--rollout",
            "security-fast-1a2b3c4d",
            "--note",
            "x",
        ],
    );
    assert!(
        out.contains(&format!("asset {ns}/dc99 not found in namespace {ns}")),
        "{out}"
    );
    let out = fails(
        &env,
        &["incident", "dc01", "--rollout", "nope-0000", "--note", "x"],
    );
    assert!(
        out.contains(&format!("patchrollout {ns}/nope-0000 not found")),
        "{out}"
    );
    let out = fails(
        &env,
        &[
            "incident",
            "dc01",
            "--rollout",
            "security-fast-1a2b3c4d",
            "--note",
            "x",
            "--update",
            "KB0000001",
        ],
    );
    assert!(
        out.contains("update KB0000001 is not part of patchrollout")
            && out.contains("KB5044281, KB5046617"),
        "{out}"
    );
    assert!(incidents(&env).await.is_empty());

    // The rollout never gave web01 an operation: it cannot have caused web01's trouble.
    let out = fails(
        &env,
        &[
            "incident",
            "web01",
            "--rollout",
            "security-fast-1a2b3c4d",
            "--note",
            "x",
        ],
    );
    assert!(
        out.contains(&format!(
            "patchrollout {ns}/security-fast-1a2b3c4d never gave asset {ns}/web01 an operation"
        )),
        "{out}"
    );
    // Nor can it have caused trouble before dc01's operation was issued.
    let out = fails(
        &env,
        &[
            "incident",
            "dc01",
            "--rollout",
            "security-fast-1a2b3c4d",
            "--note",
            "x",
            "--at",
            "2025-11-29T21:00:00Z",
        ],
    );
    assert!(
        out.contains("before patchrollout") && out.contains("Check --at"),
        "{out}"
    );
    assert!(incidents(&env).await.is_empty());

    // An empty note never reaches the cluster: a usage error (exit status 2).
    let output = run(
        &env,
        &[
            "incident",
            "dc01",
            "--rollout",
            "security-fast-1a2b3c4d",
            "--note",
            " ",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--note"), "{}", text(&output));
    assert!(incidents(&env).await.is_empty());
}

#[tokio::test]
async fn two_incidents_in_the_same_second_get_different_names() {
    let env = setup("incident-names").await;
    let args = [
        "incident",
        "dc01",
        "--rollout",
        "security-fast-1a2b3c4d",
        "--at",
        "2025-11-30T07:45:00+01:00",
        "--impact",
        "low",
    ];
    let first = ok(&env, &[&args[..], &["--note", "first"]].concat());
    let second = ok(&env, &[&args[..], &["--note", "second"]].concat());
    let third = ok(&env, &[&args[..], &["--note", "third"]].concat());
    assert!(first.contains("/dc01-20251130064500:"), "{first}");
    assert!(second.contains("/dc01-20251130064500-2:"), "{second}");
    assert!(third.contains("/dc01-20251130064500-3:"), "{third}");
    let stored = incidents(&env).await;
    let notes: Vec<(&str, &str)> = stored
        .iter()
        .map(|i| {
            (
                i.metadata.name.as_deref().unwrap_or_default(),
                i.spec.note.as_str(),
            )
        })
        .collect();
    assert_eq!(
        notes,
        [
            ("dc01-20251130064500", "first"),
            ("dc01-20251130064500-2", "second"),
            ("dc01-20251130064500-3", "third"),
        ]
    );
    for incident in &stored {
        assert_eq!(incident.spec.impact, IncidentImpact::Low);
        assert_eq!(
            incident.spec.occurred_at.as_ref().unwrap().0.to_string(),
            "2025-11-30T06:45:00Z"
        );
    }
}

#[tokio::test]
async fn the_server_refuses_to_change_a_recorded_incident() {
    let env = setup("incident-immutable").await;
    let out = ok(
        &env,
        &[
            "incident",
            "dc01",
            "--rollout",
            "security-fast-1a2b3c4d",
            "--note",
            "INC-2231",
        ],
    );
    let name = incidents(&env).await[0].metadata.name.clone().unwrap();
    assert!(out.contains(&name), "{out}");
    for patch in [
        r#"{"spec":{"note":"nothing to do with the patch"}}"#,
        r#"{"spec":{"impact":"Low"}}"#,
        r#"{"spec":{"reportedBy":"mallory"}}"#,
    ] {
        let output = env
            .kubectl()
            .args([
                "patch",
                "patchincident",
                &name,
                "--type",
                "merge",
                "-p",
                patch,
            ])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{patch} was accepted");
        let message = text(&output);
        assert!(
            message.contains("an incident is an audit record and cannot be changed"),
            "{patch}: {message}"
        );
    }
    let stored = &incidents(&env).await[0];
    assert_eq!(stored.spec.note, "INC-2231");
    assert_eq!(stored.spec.reported_by.as_deref(), Some(ADMIN));
}

#[test]
fn help_teaches_with_an_example_and_points_to_kubectl_get() {
    let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .args(["incident", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    assert!(help.contains("kubectl patchwave incident "), "{help}");
    assert!(help.contains("kubectl get patchincidents"), "{help}");
    assert!(help.contains("--kubeconfig"), "{help}");
}
