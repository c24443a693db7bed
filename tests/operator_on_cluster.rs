//! The operator against a real kube-apiserver, with simulated agents in the test process.
//!
//! Each test gets its own namespace, operator (scoped to it) and fleet, so they run in parallel.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use patchwave::api::asset::OperationPhase;
use patchwave::api::{Criticality, OperationAction, PatchPolicy, PatchRollout};
use serde_json::json;
use support::scenario::*;
use support::{install_project_crds, test_env};

fn ring_phases(rollout: &PatchRollout) -> Vec<(String, String)> {
    rollout
        .status
        .as_ref()
        .map(|s| {
            s.rings
                .iter()
                .map(|r| (r.name.clone(), format!("{:?}", r.phase)))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rings_complete_in_order_with_bake_time_and_never_exceed_max_concurrent() {
    install_project_crds();
    let env = test_env("op-rings").await;
    let mut yaml = vec![
        ring_yaml("r1", "50%", "10%", "3s", "Automatic"),
        ring_yaml("r2", "50%", "10%", "3s", "Automatic"),
        ring_yaml("r3", "50%", "10%", "0s", "Automatic"),
        open_window_yaml(),
        policy_yaml("security", &["r1", "r2", "r3"], "  manualApproval: []\n"),
    ];
    yaml.retain(|y| !y.is_empty());
    apply(&env, &yaml.join("---\n"));
    let mut plans = ring_of("a", "r1", 10);
    plans.extend(ring_of("b", "r2", 20));
    plans.extend(ring_of("c", "r3", 40));
    let (observed, watch) = observe_assets(&env);
    // 10m operations take 1 s.
    let fleet = start_fleet(&env, &plans, 600.0).await;
    let operator = start_operator(&env);
    // Ready once its caches have listed, which takes well under the deadline.
    eventually("the operator reports ready", DEADLINE, || async {
        // Refused until the operator's task has bound its port.
        match tokio::net::TcpStream::connect(operator.metrics).await {
            Err(error) => Err(error.to_string()),
            Ok(_) => match reqwest_like_get(operator.metrics, "/readyz").await {
                body if body == "ok" => Ok(()),
                body => Err(body),
            },
        }
    })
    .await;

    let rollout = the_rollout(&env).await;
    let name = rollout.metadata.name.clone().unwrap();
    let done = wait_rollout(&env, &name, "the rollout succeeds", |r| {
        phase(r) == "Succeeded"
    })
    .await;

    let status = done.status.clone().unwrap();
    let rings: Vec<_> = status
        .rings
        .iter()
        .map(|r| (r.name.as_str(), r.total, r.succeeded, r.failed))
        .collect();
    assert_eq!(
        rings,
        vec![("r1", 10, 10, 0), ("r2", 20, 20, 0), ("r3", 40, 40, 0)]
    );
    assert!(
        ring_phases(&done).iter().all(|(_, p)| p == "Completed"),
        "{:?}",
        ring_phases(&done)
    );
    assert_eq!(condition(&done, "Ready").unwrap().0, "True");
    assert_eq!(condition(&done, "Reconciling").unwrap().0, "False");
    assert_eq!(condition(&done, "Stalled").unwrap().0, "False");
    // In order, and each next ring only after the previous one's bake time.
    for pair in status.rings.windows(2) {
        let completed = pair[0].completed_at.clone().unwrap().0;
        let started = pair[1].started_at.clone().unwrap().0;
        let bake = if pair[0].name == "r3" { 0 } else { 3 };
        assert!(
            started >= completed + SignedDuration::from_secs(bake),
            "{} started at {started}, {} completed at {completed}, bake {bake}s",
            pair[1].name,
            pair[0].name
        );
    }
    let states = states(&env).await;
    assert!(
        states.values().all(|s| s == "Patched"),
        "asset states: {states:?}"
    );
    {
        let observed = observed.lock().unwrap();
        // 50% of 10, 20, 40 rounds up to 5, 10, 20.
        for (ring, limit) in [("r1", 5), ("r2", 10), ("r3", 20)] {
            let max = observed.max_in_flight.get(ring).copied().unwrap_or(0);
            assert!(
                max >= 1 && max <= limit,
                "ring {ring}: {max} in flight, limit {limit}"
            );
        }
        observed.assert_one_operation_each(70, "");
    }
    // The policy's summary and conditions for `kubectl wait`.
    let policy = Api::<PatchPolicy>::namespaced(env.client.clone(), &env.namespace)
        .get("security")
        .await
        .unwrap();
    let policy_status = policy.status.unwrap();
    assert_eq!(policy_status.matched_assets, Some(70));
    // Live compliance: everything installed within days of release, nothing missing.
    let policies: Api<PatchPolicy> = env.api();
    let compliance = eventually("the policy's compliance is current", DEADLINE, || async {
        let status = policies
            .get("security")
            .await
            .map_err(|e| e.to_string())?
            .status
            .unwrap_or_default();
        match (&status.compliance, status.pending_updates) {
            (Some(c), Some(0)) if c.compliant_assets == 70 => Ok(c.clone()),
            _ => Err(format!(
                "{:?} pending {:?}",
                status.compliance, status.pending_updates
            )),
        }
    })
    .await;
    assert_eq!(compliance.assets, Some(70));
    assert_eq!(compliance.compliant_percent, Some(100));
    assert_eq!(compliance.incidents, 0);
    assert!(
        policy_status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    support::run(env.kubectl().args([
        "wait",
        "--for=condition=Ready",
        &format!("patchrollout/{name}"),
        "--timeout=10s",
    ]));
    // Events a person reads with kubectl describe.
    for reason in [
        "RolloutCreated",
        "RingStarted",
        "RingCompleted",
        "RolloutSucceeded",
    ] {
        wait_events(&env, reason, "").await;
    }
    // Each ring's start and completion is its own Event, not folded into the first ring's.
    for ring in ["r1", "r2", "r3"] {
        wait_events(&env, "RingStarted", &format!("ring {ring} started")).await;
        wait_events(&env, "RingCompleted", &format!("ring {ring} completed")).await;
    }
    // The metrics endpoint reports the run.
    let metrics = reqwest_like_get(operator.metrics, "/metrics").await;
    assert!(
        metrics.contains("patchwave_rollouts{namespace=\""),
        "{metrics}"
    );
    assert!(metrics.contains("state=\"Succeeded\"} 1"), "{metrics}");
    assert!(
        metrics.contains("patchwave_operator_writes_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "patchwave_compliance_ratio{{namespace=\"{}\",criticality=\"all\"}} 1.0",
            env.namespace
        )),
        "{metrics}"
    );
    assert!(metrics.contains("patchwave_open_updates{"), "{metrics}");
    assert_eq!(reqwest_like_get(operator.metrics, "/readyz").await, "ok");
    operator.stop().await;
    fleet.stop().await.unwrap();
    watch.abort();
}

/// A tiny HTTP GET over a TCP socket (no HTTP client dependency for two requests).
async fn reqwest_like_get(address: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    // Chunked transfer: keep only the payload lines of a small body.
    if response
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.push_str(&tail[..size.min(tail.len())]);
            rest = tail.get(size + 2..).unwrap_or_default();
        }
        return out;
    }
    body.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_over_its_failure_threshold_halts_everything_until_resumed() {
    install_project_crds();
    let env = test_env("op-halt").await;
    apply(
        &env,
        &[
            ring_yaml("r1", "1", "1", "0s", "Automatic"),
            ring_yaml("r2", "2", "1", "0s", "Automatic"),
            open_window_yaml(),
            policy_yaml("security", &["r1", "r2"], "  manualApproval: []\n"),
        ]
        .join("---\n"),
    );
    let mut plans = ring_of("a", "r1", 6);
    plans[1] = plans[1].clone().outcome("Failed");
    plans[3] = plans[3].clone().outcome("Failed");
    plans.extend(ring_of("b", "r2", 4));
    let fleet = start_fleet(&env, &plans, 600.0).await;
    let _operator = start_operator(&env);
    let name = the_rollout(&env).await.metadata.name.unwrap();

    let halted = wait_rollout(&env, &name, "the rollout halts", |r| phase(r) == "Halted").await;
    let status = halted.status.clone().unwrap();
    let r1 = &status.rings[0];
    assert_eq!(r1.failed, 2);
    let mut failed = r1.failed_assets.clone();
    failed.sort();
    assert_eq!(failed, vec!["a-001", "a-003"]);
    assert!(
        status
            .halt_reason
            .as_deref()
            .unwrap_or_default()
            .contains("a-001"),
        "{:?}",
        status.halt_reason
    );
    assert_eq!(condition(&halted, "Halted").unwrap().0, "True");
    assert_eq!(condition(&halted, "Stalled").unwrap().0, "True");
    assert_eq!(condition(&halted, "Ready").unwrap().0, "False");
    wait_events(&env, "RingHalted", "a-003").await;

    // Nothing new starts anywhere while halted.
    let records_before = operation_count(&env).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(operation_count(&env).await, records_before);
    assert_eq!(
        status.rings[1].phase,
        patchwave::api::rollout::RingPhase::Pending
    );

    // A person resumes the ring: the rollout goes on to the end, the failures stay counted.
    patch_rollout_spec(
        &env,
        &name,
        // The signature's fields sit beside ring and halt, as the plugin writes them.
        json!({"resumes": [{"ring": "r1", "halt": 1, "by": "it-lead", "note": "known issue, fixed by hand"}]}),
    )
    .await;
    let done = wait_rollout(&env, &name, "the resumed rollout succeeds", |r| {
        phase(r) == "Succeeded"
    })
    .await;
    let status = done.status.unwrap();
    assert_eq!((status.rings[0].succeeded, status.rings[0].failed), (4, 2));
    assert_eq!((status.rings[1].succeeded, status.rings[1].failed), (4, 0));
    // Who resumed stays in the status, and an Event tells it once.
    let resumed = status.rings[0]
        .resumed
        .clone()
        .expect("status names the resume");
    assert_eq!(resumed.by.as_deref(), Some("it-lead"));
    let announced = wait_event_once(
        &env,
        "HaltResumed",
        "by it-lead: known issue, fixed by hand",
    )
    .await;
    assert!(
        announced
            .note
            .as_deref()
            .is_some_and(|n| n.contains("ring r1 resumed after halt 1")),
        "{announced:?}"
    );

    // The two failures are incidents caused by patches; a person records a third.
    let policies: Api<PatchPolicy> = env.api();
    let incidents_now = || async {
        let status = policies
            .get("security")
            .await
            .map_err(|e| e.to_string())?
            .status
            .unwrap_or_default();
        Ok::<_, String>(status.compliance.map(|c| c.incidents))
    };
    eventually(
        "the policy counts the failed operations",
        DEADLINE,
        || async {
            match incidents_now().await? {
                Some(2) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let incident: patchwave::api::PatchIncident = serde_json::from_value(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchIncident",
        "metadata": {"name": "a-000-outlook"},
        "spec": {"asset": "a-000", "rollout": name, "note": "Outlook crashes at start"}
    }))
    .unwrap();
    Api::<patchwave::api::PatchIncident>::namespaced(env.client.clone(), &env.namespace)
        .create(&Default::default(), &incident)
        .await
        .unwrap();
    eventually("the recorded incident is counted", DEADLINE, || async {
        match incidents_now().await? {
            Some(3) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    fleet.stop().await.unwrap();
}

async fn operation_count(env: &support::TestEnv) -> usize {
    assets(env)
        .await
        .iter()
        .map(|a| a.status.as_ref().map_or(0, |s| s.rollouts.len()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_rollback_rolls_the_halted_rings_patched_assets_back() {
    install_project_crds();
    let env = test_env("op-rollback").await;
    apply(
        &env,
        &[
            ring_yaml("r1", "1", "0", "0s", "Automatic"),
            open_window_yaml(),
            policy_yaml(
                "security",
                &["r1"],
                "  manualApproval: []\n  onFailure: Rollback\n",
            ),
        ]
        .join("---\n"),
    );
    let mut plans = ring_of("a", "r1", 3);
    // The last one in the ring's order fails; the two before it were patched.
    plans[2] = plans[2].clone().outcome("Failed");
    let fleet = start_fleet(&env, &plans, 600.0).await;
    let _operator = start_operator(&env);
    let name = the_rollout(&env).await.metadata.name.unwrap();

    let api: Api<patchwave::api::Asset> = env.api();
    for asset in ["a-000", "a-001"] {
        let rolled_back = eventually(
            &format!("{asset} receives and finishes a Rollback operation"),
            DEADLINE,
            || async {
                let a = api.get(asset).await.map_err(|e| e.to_string())?;
                let record = a
                    .status
                    .as_ref()
                    .and_then(|s| s.rollouts.iter().find(|r| r.rollout == name).cloned());
                match record {
                    Some(r)
                        if r.action == OperationAction::Rollback
                            && r.phase == OperationPhase::Succeeded =>
                    {
                        Ok(a)
                    }
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        let last = rolled_back
            .status
            .unwrap()
            .reported
            .unwrap()
            .last_operation
            .unwrap();
        assert!(last.id.ends_with("/rollback"), "{}", last.id);
    }
    wait_events(&env, "RollbackStarted", "").await;
    fleet.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_enrolled_after_the_rollout_succeeded_gets_a_rollout_of_the_same_set() {
    install_project_crds();
    let env = test_env("op-late").await;
    apply(
        &env,
        &[
            ring_yaml("r1", "2", "0", "0s", "Automatic"),
            open_window_yaml(),
            policy_yaml("security", &["r1"], "  manualApproval: []\n"),
        ]
        .join("---\n"),
    );
    let late = AssetPlan::new("late-000", "r1");
    let fleet = start_fleet_expecting(
        &env,
        &ring_of("a", "r1", 2),
        std::slice::from_ref(&late),
        600.0,
    )
    .await;
    let _operator = start_operator(&env);
    let first = the_rollout(&env).await.metadata.name.unwrap();
    wait_rollout(&env, &first, "the first rollout succeeds", |r| {
        phase(r) == "Succeeded"
    })
    .await;

    enroll(&env, &late).await;
    let second = format!("{first}-2");
    let done = wait_rollout(
        &env,
        &second,
        "a second rollout serves the late asset",
        |r| phase(r) == "Succeeded",
    )
    .await;
    let ring = &done.status.as_ref().unwrap().rings[0];
    assert_eq!((ring.total, ring.succeeded), (1, 1), "{ring:?}");
    // Its Event says why the same updates go out again.
    wait_events(&env, "RolloutCreated", "it did not serve: late-000").await;
    let api: Api<PatchRollout> = env.api();
    let first_rollout = api.get(&first).await.unwrap();
    assert_eq!(first_rollout.spec.updates, done.spec.updates);
    assert_eq!(
        states(&env).await.get("late-000").map(String::as_str),
        Some("Patched")
    );
    // The late asset does not make a third rollout, and the first stays as it was.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let names: Vec<String> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let ring = &first_rollout.status.as_ref().unwrap().rings[0];
    assert_eq!((ring.total, ring.succeeded), (2, 2), "{ring:?}");
    fleet.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_holds_deny_windows_and_unscheduled_assets() {
    install_project_crds();
    let env = test_env("op-approve").await;
    let now = Timestamp::now();
    // Whole seconds: the window's end and the rollout's times are written with second
    // resolution.
    let deny_until = (now + SignedDuration::from_secs(12))
        .round(jiff::Unit::Second)
        .unwrap();
    apply(
        &env,
        &[
            ring_yaml("r1", "100%", "1", "0s", "Automatic"),
            ring_yaml("r2", "100%", "1", "0s", "Manual"),
            // Everything but the asset labelled nowindow=true may be patched...
            window_yaml(
                "open",
                "Allow",
                now - SignedDuration::from_hours(1),
                now + SignedDuration::from_hours(24),
                "{matchExpressions: [{key: nowindow, operator: DoesNotExist}]}",
            ),
            // ...but not before a freeze ends in a few seconds.
            window_yaml(
                "freeze",
                "Deny",
                now - SignedDuration::from_hours(1),
                deny_until,
                "{}",
            ),
            policy_yaml("security", &["r1", "r2"], "  manualApproval: [Critical]\n"),
        ]
        .join("---\n"),
    );
    let mut plans = ring_of("a", "r1", 3);
    plans.push(AssetPlan::new("dc-01", "r1").criticality(Criticality::Critical));
    plans.push(AssetPlan::new("held-01", "r1").held());
    plans.push(AssetPlan::new("nowin-01", "r1").label("nowindow", "true"));
    plans.extend(ring_of("b", "r2", 2));
    let fleet = start_fleet(&env, &plans, 600.0).await;
    let _operator = start_operator(&env);
    let name = the_rollout(&env).await.metadata.name.unwrap();

    // The freeze holds everything back: the unscheduled and the waiting show at once.
    let states_now = eventually("states are written", DEADLINE, || async {
        let states = states(&env).await;
        if states.get("nowin-01").map(String::as_str) == Some("Unscheduled")
            && states.get("held-01").map(String::as_str) == Some("Held")
            && states.get("dc-01").map(String::as_str) == Some("WaitingForApproval")
        {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    assert!(
        Timestamp::now() < deny_until,
        "the test was too slow: {states_now:?}"
    );
    assert_eq!(
        operation_count(&env).await,
        0,
        "an operation started in a Deny window"
    );

    // After the freeze, ring r1 runs but for the Critical asset, which waits for approval.
    let waiting = wait_rollout(&env, &name, "r1 completes but for dc-01", |r| {
        r.status.as_ref().is_some_and(|s| s.rings[0].succeeded == 3)
    })
    .await;
    let first_start = waiting.status.as_ref().unwrap().rings[0]
        .started_at
        .clone()
        .unwrap()
        .0;
    assert!(
        first_start >= deny_until,
        "r1 started at {first_start}, freeze until {deny_until}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(states(&env).await["dc-01"], "WaitingForApproval");

    patch_rollout_spec(
        &env,
        &name,
        json!({"approvedAssets": [{"name": "dc-01", "by": "it-lead"}]}),
    )
    .await;
    let at_r2 = wait_rollout(&env, &name, "r2 waits for its manual approval", |r| {
        r.status.as_ref().is_some_and(|s| {
            s.rings.len() == 2 && format!("{:?}", s.rings[1].phase) == "WaitingForApproval"
        })
    })
    .await;
    assert_eq!(phase(&at_r2), "WaitingForApproval");
    patch_rollout_spec(
        &env,
        &name,
        json!({"approvedAssets": [{"name": "dc-01", "by": "it-lead"}],
               "approvedRings": [{"name": "r2", "by": "it-lead", "note": "CHG-1234"}]}),
    )
    .await;
    let done = wait_rollout(&env, &name, "the rollout succeeds", |r| {
        phase(r) == "Succeeded"
    })
    .await;
    let status = done.status.unwrap();
    assert_eq!(status.rings[1].succeeded, 2);
    // Who approved the Manual ring is in its status, and an Event tells it once.
    let approved = status.rings[1]
        .approved
        .clone()
        .expect("status names the approval");
    assert_eq!(approved.note.as_deref(), Some("CHG-1234"));
    assert!(status.rings[0].approved.is_none(), "r1 needs no approval");
    wait_event_once(&env, "AssetApproved", "asset dc-01 approved by it-lead").await;
    wait_event_once(
        &env,
        "RingApproved",
        "ring r2 approved by it-lead: CHG-1234",
    )
    .await;
    let states = states(&env).await;
    assert_eq!(states["dc-01"], "Patched");
    assert_eq!(states["held-01"], "Held");
    assert_eq!(states["nowin-01"], "Unscheduled");
    let api: Api<patchwave::api::Asset> = env.api();
    for untouched in ["held-01", "nowin-01"] {
        let asset = api.get(untouched).await.unwrap();
        let status = asset.status.unwrap();
        assert!(
            status.operation.is_none() && status.rollouts.is_empty(),
            "{untouched} was touched"
        );
    }
    wait_events(&env, "AssetUnscheduled", "").await;
    fleet.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_policy_is_not_ready_and_a_valid_one_beside_it_rolls_out() {
    install_project_crds();
    let env = test_env("op-invalid").await;
    apply(
        &env,
        &[
            ring_yaml("r1", "100%", "1", "0s", "Automatic"),
            open_window_yaml(),
            "apiVersion: patchwave.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {name: broken}\nspec:\n  type: Allow\n  selector: {matchLabels: {nothing: here}}\n  schedule: \"0 25 * * *\"\n  duration: 1h\n  timeZone: Europe/Zurich\n".to_owned(),
            policy_yaml("security", &["r1"], "  manualApproval: []\n  priority: 10\n"),
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {name: typo}\nspec:\n  selector: {matchLabels: {nothing: here}}\n  updates: {classifications: [Bugfix]}\n  rings: [r1, no-such-ring]\n".to_owned(),
        ]
        .join("---\n"),
    );
    let plans = ring_of("a", "r1", 3);
    let fleet = start_fleet(&env, &plans, 600.0).await;
    let _operator = start_operator(&env);

    let policies: Api<PatchPolicy> = env.api();
    let typo = eventually("the invalid policy gets Ready=False", DEADLINE, || async {
        let p = policies.get("typo").await.map_err(|e| e.to_string())?;
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned());
        match ready {
            Some(c) if c.status == "False" => Ok(c),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(typo.reason, "InvalidSpec");
    assert!(typo.message.contains("no-such-ring"), "{}", typo.message);
    let windows: Api<patchwave::api::MaintenanceWindow> = env.api();
    let broken = eventually("the bad cron gets Ready=False", DEADLINE, || async {
        let w = windows.get("broken").await.map_err(|e| e.to_string())?;
        let ready = w
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned());
        match ready {
            Some(c) if c.status == "False" => Ok(c),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(broken.message.contains("schedule"), "{}", broken.message);
    let rollout = the_rollout(&env).await;
    assert_eq!(rollout.spec.policy, "security");
    let name = rollout.metadata.name.unwrap();
    wait_rollout(&env, &name, "the valid policy's rollout succeeds", |r| {
        phase(r) == "Succeeded"
    })
    .await;
    wait_events(&env, "InvalidSpec", "").await;
    fleet.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_is_reported_by_category_and_retried() {
    install_project_crds();
    let env = test_env("op-forbidden").await;
    apply(
        &env,
        &[
            ring_yaml("r1", "100%", "1", "0s", "Automatic"),
            open_window_yaml(),
            policy_yaml("security", &["r1"], "  manualApproval: []\n"),
            // An identity that may do everything the operator does but write Asset status.
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: no-asset-status}\nrules:\n- apiGroups: [patchwave.dev]\n  resources: ['*']\n  verbs: [get, list, watch, create]\n- apiGroups: [patchwave.dev]\n  resources: [patchrollouts/status, patchpolicies/status, rings/status, maintenancewindows/status]\n  verbs: [patch]\n- apiGroups: [events.k8s.io]\n  resources: [events]\n  verbs: [create, patch]\n".to_owned(),
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: no-asset-status}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: no-asset-status}\nsubjects: [{kind: User, name: half-operator, apiGroup: rbac.authorization.k8s.io}]\n".to_owned(),
        ]
        .join("---\n"),
    );
    let plans = ring_of("a", "r1", 2);
    let fleet = start_fleet(&env, &plans, 600.0).await;
    let client = env
        .control_plane
        .client_as("half-operator", &[])
        .await
        .unwrap();
    let operator = start_operator_as(&env, client, None);

    let events = eventually("a Forbidden Warning on the policy", DEADLINE, || async {
        let events = events_with_reason(&env, "Forbidden").await;
        if events.is_empty() {
            Err("no Forbidden Event yet".to_owned())
        } else {
            Ok(events)
        }
    })
    .await;
    let event = &events[0];
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("security")
    );
    assert!(
        event.note.as_deref().unwrap_or_default().contains("Asset"),
        "{event:?}"
    );
    let metrics = reqwest_like_get(operator.metrics, "/metrics").await;
    assert!(
        metrics.contains("patchwave_reconcile_errors_total{category=\"Forbidden\"}"),
        "{metrics}"
    );
    // The rollout itself was created: only the Asset writes are refused.
    the_rollout(&env).await;
    operator.stop().await;
    fleet.stop().await.unwrap();
}

/// The Asset's Reachable condition: (status, reason, message).
fn reachable(asset: &patchwave::api::Asset) -> Option<(String, String, String)> {
    asset
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Reachable")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// An Asset whose agent never reported is `Reachable=False` (NeverReported); its first
/// heartbeat makes it `Reachable=True` at once; an agent silent for longer than the Asset's
/// `staleAfter` makes it `Reachable=False` (AgentStale) although nothing else changes; its
/// next heartbeat makes it `Reachable=True` again at once (not after the summary delay).
#[tokio::test]
async fn a_silent_agent_makes_its_asset_unreachable_after_stale_after() {
    use patchwave::agent::protocol;
    use patchwave::api::asset::ReportedState;

    install_project_crds();
    let env = test_env("op-stale").await;
    apply_one_ring(&env, "1");
    let api: Api<patchwave::api::Asset> = env.api();
    let plan = AssetPlan::new("quiet", "r1").stale_after("6s");
    api.create(&Default::default(), &plan.asset())
        .await
        .unwrap();
    let operator = start_operator(&env);

    let condition = |wanted: &'static str, deadline: Duration| {
        let api = api.clone();
        async move {
            eventually(&format!("Reachable={wanted}"), deadline, || async {
                let asset = api.get("quiet").await.map_err(|e| e.to_string())?;
                match reachable(&asset) {
                    Some(c) if c.0 == wanted => Ok(c),
                    other => Err(format!("{other:?}")),
                }
            })
            .await
        }
    };
    let (_, reason, _) = condition("False", DEADLINE).await;
    assert_eq!(reason, "NeverReported");
    // Nothing reported: what it misses is unknown, not "up to date".
    let shown = || async {
        let status = api.get("quiet").await.unwrap().status.unwrap_or_default();
        (status.state, status.missing_updates)
    };
    assert_eq!(shown().await, (Some("Unknown".to_owned()), None));

    // The operator holds quiet summaries back for 60 s in these tests: "at once" is well
    // within that.
    let prompt = Duration::from_secs(20);
    let mut reported = ReportedState::default();
    let heard = std::time::Instant::now();
    protocol::mark_heartbeat(&mut reported, Timestamp::now());
    protocol::report(&api, "quiet", &reported).await.unwrap();
    let (_, reason, _) = condition("True", prompt).await;
    assert_eq!(reason, "HeartbeatFresh");
    // Its report lists nothing available: now that is known.
    assert_eq!(shown().await, (Some("UpToDate".to_owned()), Some(0)));

    let (_, reason, message) = condition("False", DEADLINE).await;
    let silent = heard.elapsed();
    assert_eq!(reason, "AgentStale");
    assert!(message.contains("6s"), "{message}");
    // Heartbeats are stored to the second, so the 6 s count from up to 1 s before it was sent.
    assert!(silent >= Duration::from_secs(5), "stale after {silent:?}");
    assert!(silent < prompt, "stale only after {silent:?}");

    protocol::mark_heartbeat(&mut reported, Timestamp::now());
    protocol::report(&api, "quiet", &reported).await.unwrap();
    let (_, reason, _) = condition("True", prompt).await;
    assert_eq!(reason, "HeartbeatFresh");
    operator.stop().await;
}

/// Agents are often enrolled before anyone writes a PatchPolicy: the operator reconciles every
/// namespace that holds patchwave objects, so such Assets get their conditions and a
/// window its status, with no policy anywhere.
#[tokio::test]
async fn a_namespace_without_policies_still_gets_asset_conditions_and_window_status() {
    install_project_crds();
    let env = test_env("op-nopolicy").await;
    apply(&env, &open_window_yaml());
    let api: Api<patchwave::api::Asset> = env.api();
    api.create(&Default::default(), &AssetPlan::new("early", "r1").asset())
        .await
        .unwrap();
    let operator = start_operator(&env);
    let (status, reason, _) = eventually("Reachable on the Asset", DEADLINE, || async {
        let asset = api.get("early").await.map_err(|e| e.to_string())?;
        reachable(&asset).ok_or_else(|| format!("{:?}", asset.status))
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "NeverReported")
    );
    let windows: Api<patchwave::api::MaintenanceWindow> = env.api();
    eventually("the window's status", DEADLINE, || async {
        let list = windows
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?;
        match list.items.first().and_then(|w| w.status.as_ref()) {
            Some(status) if status.open == Some(true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    operator.stop().await;
}
