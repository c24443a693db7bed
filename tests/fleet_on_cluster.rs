#![allow(clippy::unwrap_used)] // test helpers fail loudly by design
//! The simulated agent fleet against a real kube-apiserver: the test plays the operator (it
//! writes `status.operation` by server-side apply as patchwave-operator) and checks what the
//! fleet reports in `status.reported`, and who owns which half of the status.

mod support;

use support::scenario::{in_an_hour, issue, operation};

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use patchwave::agent::fleet::{self, FleetConfig, FleetHandle};
use patchwave::agent::protocol;
use patchwave::agent::simulated::{DURATION_ANNOTATION, OUTCOME_ANNOTATION};
use patchwave::api::asset::{
    AvailableUpdate, OperationPhase, OperationResult, ReportedState, UpdateRef,
};
use patchwave::api::{
    AGENT_FIELD_MANAGER, Asset, AssetSpec, AssetStatus, OPERATOR_FIELD_MANAGER, OperationAction,
    OsFamily, Time,
};
use serde_json::{Value, json};

/// How long a test waits for the fleet to report something.
const DEADLINE: Duration = Duration::from_secs(30);

fn asset(name: &str, annotations: &[(&str, &str)]) -> Asset {
    let mut asset = Asset::new(name, AssetSpec::new(OsFamily::Linux));
    if !annotations.is_empty() {
        asset.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
    }
    asset
}

fn update(id: &str, version: &str) -> AvailableUpdate {
    AvailableUpdate {
        id: id.to_owned(),
        version: Some(version.to_owned()),
        ..AvailableUpdate::default()
    }
}

/// The seed inventory of `name`: openssl and curl available.
fn seed(name: &str) -> Asset {
    let mut seeded = asset(name, &[]);
    seeded.status = Some(AssetStatus {
        reported: Some(ReportedState {
            agent_version: Some("0.1.0".to_owned()),
            backend: Some("apt".to_owned()),
            available_updates: vec![update("openssl", "3.0.15"), update("curl", "8.11.1")],
            ..ReportedState::default()
        }),
        ..AssetStatus::default()
    });
    seeded
}

async fn create(api: &Api<Asset>, assets: &[Asset]) {
    for asset in assets {
        api.create(&PostParams::default(), asset).await.unwrap();
    }
}

fn start(env: &support::TestEnv, seed: Vec<Asset>, speed: f64) -> FleetHandle {
    let mut config = FleetConfig::new(&env.namespace);
    config.seed = seed;
    config.speed = speed;
    config.heartbeat = Duration::from_secs(1);
    fleet::spawn(env.client.clone(), config)
}

fn reported(asset: &Asset) -> Option<&ReportedState> {
    asset.status.as_ref().and_then(|s| s.reported.as_ref())
}

fn last_operation(asset: &Asset) -> Option<&OperationResult> {
    reported(asset).and_then(|r| r.last_operation.as_ref())
}

/// Polls `name` until `ready` holds (at most [`DEADLINE`]) and returns it.
async fn wait_for(
    api: &Api<Asset>,
    name: &str,
    what: &str,
    ready: impl Fn(&Asset) -> bool,
) -> Asset {
    let started = std::time::Instant::now();
    loop {
        let asset = api.get(name).await.unwrap();
        if ready(&asset) {
            return asset;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "Asset/{name}: still not {what} after {DEADLINE:?}; status:\n{}",
            serde_yaml::to_string(&asset.status).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn phase_is(id: &'static str, phase: OperationPhase) -> impl Fn(&Asset) -> bool {
    move |a| last_operation(a).is_some_and(|l| l.id == id && l.phase == phase)
}

fn heartbeat_of(asset: &Asset) -> Option<Timestamp> {
    reported(asset)
        .and_then(|r| r.last_heartbeat.as_ref())
        .map(|t| t.0)
}

fn update_ids(asset: &Asset) -> Vec<String> {
    reported(asset)
        .map(|r| r.available_updates.iter().map(|u| u.id.clone()).collect())
        .unwrap_or_default()
}

/// The `fieldsV1` of `manager`'s status entry, `Null` if it has none.
fn status_fields(asset: &Asset, manager: &str) -> Value {
    let entries = asset.metadata.managed_fields.clone().unwrap_or_default();
    let entry = entries.iter().find(|e| {
        e.manager.as_deref() == Some(manager) && e.subresource.as_deref() == Some("status")
    });
    entry
        .and_then(|e| e.fields_v1.as_ref())
        .map(|f| serde_json::to_value(f).unwrap())
        .unwrap_or(Value::Null)
}

/// Which managers own `f:status` / `field` of the asset.
fn owners_of(asset: &Asset, field: &str) -> Vec<String> {
    asset
        .metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            e.fields_v1
                .as_ref()
                .map(|f| serde_json::to_value(f).unwrap())
                .is_some_and(|v| !v["f:status"][field].is_null())
        })
        .filter_map(|e| e.manager.clone())
        .collect()
}

#[tokio::test]
async fn fleet_reports_inventory_results_and_never_runs_an_operation_twice() {
    let env = support::test_env("fleet").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    create(
        &api,
        &[
            asset("ok-1", &[]),
            asset("fail-1", &[(OUTCOME_ANNOTATION, "Failed")]),
            asset("silent-1", &[(OUTCOME_ANNOTATION, "NoResponse")]),
            asset("late-1", &[]),
            asset("kept-1", &[]),
            asset("unseeded-1", &[]),
        ],
    )
    .await;
    // kept-1 was reported before (by an earlier agent): its cluster state wins over the seed.
    let mut earlier = ReportedState {
        available_updates: vec![update("zlib", "1.3.1")],
        ..ReportedState::default()
    };
    earlier.inventory_refreshed_at = Some(Time(Timestamp::now() - SignedDuration::from_hours(2)));
    protocol::report(&api, "kept-1", &earlier).await.unwrap();

    let seeds: Vec<Asset> = ["ok-1", "fail-1", "silent-1", "late-1", "kept-1"]
        .into_iter()
        .map(seed)
        .collect();
    let fleet = start(&env, seeds.clone(), 1e6);

    // The seed inventory appears, with inventoryRefreshedAt and lastHeartbeat set.
    for name in ["ok-1", "fail-1", "silent-1", "late-1"] {
        let seeded = wait_for(&api, name, "seeded", |a| {
            reported(a).is_some_and(|r| r.inventory_refreshed_at.is_some())
        })
        .await;
        assert_eq!(update_ids(&seeded), ["openssl", "curl"], "{name}");
        let r = reported(&seeded).unwrap();
        assert_eq!(r.backend.as_deref(), Some("apt"));
        assert!(r.last_heartbeat.is_some());
    }
    // An asset without seed only heartbeats, as a simulated backend.
    let unseeded = wait_for(&api, "unseeded-1", "heartbeating", |a| {
        heartbeat_of(a).is_some()
    })
    .await;
    assert_eq!(
        reported(&unseeded).unwrap().backend.as_deref(),
        Some("simulated")
    );
    assert!(update_ids(&unseeded).is_empty());

    // The operator issues operations.
    let openssl = [("openssl", "3.0.15")];
    for name in ["ok-1", "fail-1", "silent-1"] {
        issue(
            &api,
            name,
            &operation("op-1", OperationAction::Install, &openssl, in_an_hour()),
        )
        .await;
    }
    let closed = Timestamp::now() - SignedDuration::from_mins(1);
    issue(
        &api,
        "late-1",
        &operation("op-1", OperationAction::Install, &openssl, closed),
    )
    .await;

    let ok = wait_for(
        &api,
        "ok-1",
        "Succeeded",
        phase_is("op-1", OperationPhase::Succeeded),
    )
    .await;
    let result = last_operation(&ok).unwrap();
    assert_eq!(
        result.installed,
        [UpdateRef {
            id: "openssl".to_owned(),
            version: Some("3.0.15".to_owned())
        }]
    );
    assert!(result.started_at.is_some() && result.finished_at.is_some());
    assert!(result.message.is_none());
    assert_eq!(update_ids(&ok), ["curl"]);
    let history = &reported(&ok).unwrap().installed_history;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, "openssl");
    assert_eq!(history[0].rollout.as_deref(), Some("security-2026-12"));

    let failed = wait_for(
        &api,
        "fail-1",
        "Failed",
        phase_is("op-1", OperationPhase::Failed),
    )
    .await;
    let message = last_operation(&failed).unwrap().message.clone().unwrap();
    assert!(message.contains("simulated failure"), "{message}");
    assert_eq!(update_ids(&failed), ["openssl", "curl"]);

    let late = wait_for(
        &api,
        "late-1",
        "Failed",
        phase_is("op-1", OperationPhase::Failed),
    )
    .await;
    let result = last_operation(&late).unwrap();
    assert_eq!(result.started_at, None, "an expired operation never starts");
    let message = result.message.clone().unwrap();
    // Kubernetes keeps whole seconds: compare with the notAfter as stored.
    let not_after = late
        .status
        .as_ref()
        .unwrap()
        .operation
        .as_ref()
        .unwrap()
        .not_after
        .0;
    assert!(message.contains(&not_after.to_string()), "{message}");
    assert_eq!(update_ids(&late), ["openssl", "curl"]);

    wait_for(
        &api,
        "silent-1",
        "Running",
        phase_is("op-1", OperationPhase::Running),
    )
    .await;

    // kept-1 keeps its cluster inventory, and heartbeats on it.
    let kept = wait_for(&api, "kept-1", "heartbeating", |a| {
        heartbeat_of(a).is_some()
    })
    .await;
    assert_eq!(update_ids(&kept), ["zlib"]);

    // Heartbeats keep coming (interval 1 s) and change nothing else.
    let before = api.get("ok-1").await.unwrap();
    let beat = heartbeat_of(&before).unwrap();
    let after = wait_for(&api, "ok-1", "heartbeating again", |a| {
        heartbeat_of(a).is_some_and(|t| t > beat)
    })
    .await;
    let mut same = reported(&after).unwrap().clone();
    same.last_heartbeat = reported(&before).unwrap().last_heartbeat.clone();
    assert_eq!(&same, reported(&before).unwrap());

    // Ownership: the agent owns status.reported, the operator status.operation, nobody else.
    assert_eq!(owners_of(&after, "f:reported"), [AGENT_FIELD_MANAGER]);
    assert_eq!(owners_of(&after, "f:operation"), [OPERATOR_FIELD_MANAGER]);
    let agent_fields = status_fields(&after, AGENT_FIELD_MANAGER);
    assert!(
        agent_fields["f:status"]["f:operation"].is_null(),
        "{agent_fields}"
    );
    assert!(
        !agent_fields["f:status"]["f:reported"]["f:lastOperation"].is_null(),
        "{agent_fields}"
    );

    let stats = fleet.stop().await.unwrap();
    assert!(
        stats.started >= 3 && stats.finished >= 2 && stats.expired >= 1,
        "{stats:?}"
    );

    // silent-1 still Running (NoResponse never reports a result).
    let silent = api.get("silent-1").await.unwrap();
    assert_eq!(
        last_operation(&silent).unwrap().phase,
        OperationPhase::Running
    );

    // A restarted fleet does not run op-1 again, nor re-seed: results and inventories stay.
    let snapshot: Vec<Asset> =
        futures::future::join_all(["ok-1", "fail-1", "late-1", "silent-1"].map(|n| api.get(n)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let fleet = start(&env, seeds, 1e6);
    for old in &snapshot {
        let name = old.metadata.name.clone().unwrap();
        let beat = heartbeat_of(old).unwrap();
        let now = wait_for(&api, &name, "heartbeating after the restart", |a| {
            heartbeat_of(a).is_some_and(|t| t > beat)
        })
        .await;
        assert_eq!(last_operation(&now), last_operation(old), "{name}");
        assert_eq!(update_ids(&now), update_ids(old), "{name}");
        assert_eq!(
            reported(&now).unwrap().installed_history,
            reported(old).unwrap().installed_history,
            "{name}"
        );
    }
    let stats = fleet.stop().await.unwrap();
    assert_eq!(
        (stats.started, stats.finished, stats.seeded),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn one_operation_at_a_time_resumed_after_a_restart_and_rolled_back() {
    let env = support::test_env("fleet-resume").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    // 2h at speed 1200 takes 6 s.
    create(&api, &[asset("slow-1", &[(DURATION_ANNOTATION, "2h")])]).await;
    let fleet = start(&env, vec![seed("slow-1")], 1200.0);
    wait_for(&api, "slow-1", "seeded", |a| update_ids(a).len() == 2).await;

    issue(
        &api,
        "slow-1",
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
        "slow-1",
        "Running",
        phase_is("op-1", OperationPhase::Running),
    )
    .await;
    let started_at = last_operation(&running).unwrap().started_at.clone();

    // A restart in the middle: the new fleet resumes op-1 (it does not start it again).
    fleet.stop().await.unwrap();
    let fleet = start(&env, vec![seed("slow-1")], 1200.0);
    let beat = heartbeat_of(&running).unwrap();
    wait_for(&api, "slow-1", "heartbeating after the restart", |a| {
        heartbeat_of(a).is_some_and(|t| t > beat)
    })
    .await;
    let still = api.get("slow-1").await.unwrap();
    assert_eq!(last_operation(&still).unwrap().started_at, started_at);
    assert_eq!(
        last_operation(&still).unwrap().phase,
        OperationPhase::Running
    );

    // The operator moves on to op-2 while op-1 runs: the agent finishes op-1 first.
    issue(
        &api,
        "slow-1",
        &operation(
            "op-2",
            OperationAction::Install,
            &[("curl", "8.11.1")],
            in_an_hour(),
        ),
    )
    .await;

    let done = wait_for(
        &api,
        "slow-1",
        "done with op-2",
        phase_is("op-2", OperationPhase::Succeeded),
    )
    .await;
    let reported_now = reported(&done).unwrap();
    let installed: Vec<&str> = reported_now
        .installed_history
        .iter()
        .map(|h| h.id.as_str())
        .collect();
    assert_eq!(
        installed,
        ["openssl", "curl"],
        "op-1 finished before op-2 ran"
    );
    assert!(update_ids(&done).is_empty());
    let op2_started = last_operation(&done).unwrap().started_at.clone().unwrap();
    let op1_installed = reported_now.installed_history[0].at.clone();
    assert!(
        op2_started.0 >= op1_installed.0,
        "op-2 started before op-1 ended"
    );
    assert!(started_at.unwrap().0 < op1_installed.0);

    // Rollback of the rollout: both updates back in the inventory, history says Rollback.
    issue(
        &api,
        "slow-1",
        &operation(
            "op-3",
            OperationAction::Rollback,
            &[("openssl", "3.0.15"), ("curl", "8.11.1")],
            in_an_hour(),
        ),
    )
    .await;
    let rolled = wait_for(
        &api,
        "slow-1",
        "rolled back",
        phase_is("op-3", OperationPhase::Succeeded),
    )
    .await;
    let mut ids = update_ids(&rolled);
    ids.sort();
    assert_eq!(ids, ["curl", "openssl"]);
    let history = &reported(&rolled).unwrap().installed_history;
    assert_eq!(history.len(), 4);
    assert!(
        history[2..]
            .iter()
            .all(|h| h.action == OperationAction::Rollback)
    );

    let stats = fleet.stop().await.unwrap();
    assert_eq!(stats.resumed, 1, "{stats:?}");
}

/// The field manager kubectl uses for `kubectl patch`: a person's manual edit.
const KUBECTL_PATCH: &str = "kubectl-patch";

/// Edits `status.reported.availableUpdates` of `name` by hand, as
/// `kubectl patch ast NAME --subresource=status --type=merge` does.
async fn edit_report_by_hand(api: &Api<Asset>, name: &str) {
    let params = PatchParams {
        field_manager: Some(KUBECTL_PATCH.to_owned()),
        ..PatchParams::default()
    };
    let patch = json!({"status": {"reported": {"availableUpdates": [
        {"id": "zlib", "version": "1.3.1"},
    ]}}});
    api.patch_status(name, &params, &Patch::Merge(patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_agent_takes_its_report_back_after_a_manual_edit() {
    let env = support::test_env("fleet-manual-edit").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    create(&api, &[asset("f03", &[])]).await;

    // The operator's half of the status, written first.
    let op = operation(
        "op-1",
        OperationAction::Install,
        &[("openssl", "3.0.15")],
        in_an_hour(),
    );
    let body = json!({
        "apiVersion": "patchwave.dev/v1alpha1",
        "kind": "Asset",
        "metadata": { "name": "f03" },
        "status": { "state": "InProgress", "operation": op },
    });
    let operator_wrote = api
        .patch_status(
            "f03",
            &PatchParams::apply(OPERATOR_FIELD_MANAGER),
            &Patch::Apply(body),
        )
        .await
        .unwrap();
    let operator_status = operator_wrote.status.unwrap();

    // The agent reports once.
    let now = Timestamp::now().round(jiff::Unit::Second).unwrap();
    let mut report = seed("f03").status.unwrap().reported.unwrap();
    protocol::mark_heartbeat(&mut report, now);
    protocol::report(&api, "f03", &report).await.unwrap();

    // A person edits the report by hand: kubectl-patch now owns availableUpdates.
    edit_report_by_hand(&api, "f03").await;
    let edited = api.get("f03").await.unwrap();
    assert_eq!(update_ids(&edited), ["zlib"]);
    assert_eq!(
        owners_of(&edited, "f:reported")
            .iter()
            .filter(|m| *m == KUBECTL_PATCH)
            .count(),
        1
    );

    // The agent's next report lands and is the agent's again.
    protocol::mark_heartbeat(&mut report, now + SignedDuration::from_secs(1));
    let stored = protocol::report(&api, "f03", &report)
        .await
        .expect("the agent's report after a manual edit");
    assert_eq!(reported(&stored), Some(&report));
    let after = api.get("f03").await.unwrap();
    assert_eq!(reported(&after), Some(&report));
    assert_eq!(owners_of(&after, "f:reported"), [AGENT_FIELD_MANAGER]);
    let edit_fields = status_fields(&after, KUBECTL_PATCH);
    assert!(
        edit_fields["f:status"]["f:reported"].is_null(),
        "{edit_fields}"
    );

    // The operator's fields are untouched, and still the operator's alone.
    let status = after.status.as_ref().unwrap();
    assert_eq!(status.state.as_deref(), Some("InProgress"));
    assert_eq!(status.operation, operator_status.operation);
    assert_eq!(owners_of(&after, "f:state"), [OPERATOR_FIELD_MANAGER]);
    assert_eq!(owners_of(&after, "f:operation"), [OPERATOR_FIELD_MANAGER]);
    let agent_fields = status_fields(&after, AGENT_FIELD_MANAGER);
    let agent_status = agent_fields["f:status"].as_object().unwrap();
    assert_eq!(
        agent_status
            .keys()
            .filter(|k| k.starts_with("f:"))
            .collect::<Vec<_>>(),
        ["f:reported"],
        "{agent_fields}"
    );
}

#[tokio::test]
async fn the_fleet_keeps_reporting_after_a_manual_edit_of_its_report() {
    let env = support::test_env("fleet-edit-heartbeat").await;
    support::install_project_crds();
    let api: Api<Asset> = env.api();
    create(&api, &[asset("f03", &[])]).await;
    let fleet = start(&env, vec![seed("f03")], 1.0);
    wait_for(&api, "f03", "seeded", |a| update_ids(a).len() == 2).await;

    edit_report_by_hand(&api, "f03").await;
    let edited_at = Timestamp::now();
    // Heartbeats (every second) go on, and put the fleet's inventory back.
    let after = wait_for(&api, "f03", "heartbeating after the edit", |a| {
        heartbeat_of(a).is_some_and(|t| t > edited_at)
    })
    .await;
    assert_eq!(update_ids(&after), ["openssl", "curl"]);
    assert_eq!(owners_of(&after, "f:reported"), [AGENT_FIELD_MANAGER]);

    let stats = fleet.stop().await.unwrap();
    assert!(stats.heartbeats >= 1, "{stats:?}");
}
