//! One test per rule of the engine, over small hand-written namespaces.

use jiff::Timestamp;

use super::*;
use crate::engine::simulation::{self, Approve, Options};

/// Builds an inventory from multi-document YAML with the same loader the offline commands
/// use (`status` kept). Objects with semantic problems stay in, as they do for the engine.
fn inventory(yaml: &str) -> Inventory {
    let mut loaded = crate::cli::load::load_str(std::path::Path::new("test.yaml"), yaml, "default");
    loaded.namespaces.remove("default").unwrap_or_default()
}

fn t(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// `n` Linux assets `prefix-1..n` with labels `ring: <ring>` and one critical security update.
fn assets(prefix: &str, n: usize, ring: &str, extra: &str) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "---\nkind: Asset\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: {prefix}-{i}, labels: {{ring: {ring}{extra}}}}}\n\
                 spec: {{osFamily: Linux, criticality: Low}}\n\
                 status: {{reported: {{availableUpdates: [{{id: openssl, version: '3.0.15', classification: Security, severity: Critical, releasedAt: '2026-11-20T00:00:00Z'}}]}}}}\n"
            )
        })
        .collect()
}

const ALWAYS_OPEN: &str = "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: always}\n\
    spec: {start: '2026-01-01T00:00:00Z', end: '2027-12-31T00:00:00Z'}\n";

/// A one-off Deny window `freeze` from `start` to `end` over every asset.
fn freeze(start: &str, end: &str) -> String {
    format!(
        "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: freeze}}\n\
         spec: {{type: Deny, start: '{start}', end: '{end}'}}\n"
    )
}

fn ring(name: &str, extra: &str) -> String {
    format!(
        "---\nkind: Ring\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: {name}}}\n\
         spec: {{selector: {{matchLabels: {{ring: {name}}}}}{extra}}}\n"
    )
}

fn policy(rings: &str, extra: &str) -> String {
    format!(
        "---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: security}}\n\
         spec: {{rings: [{rings}], manualApproval: []{extra}}}\n"
    )
}

/// The namespace of most single-ring tests: assets `a-1..n` in ring `pilot` (with
/// `ring_extra` in its spec), an always-open window and the policy.
fn one_ring(n: usize, ring_extra: &str) -> String {
    format!(
        "{}{}{}{}",
        assets("a", n, "pilot", ""),
        ring("pilot", ring_extra),
        ALWAYS_OPEN,
        policy("pilot", "")
    )
}

/// The start of an asset's metadata that makes its simulated agent answer with `outcome`:
/// `text.replacen("name: a-1,", &outcome("a-1", "Failed"), 1)`.
fn outcome(asset: &str, outcome: &str) -> String {
    format!("name: {asset}, annotations: {{simulate.patchwave.dev/outcome: {outcome}}},")
}

const NOW: &str = "2026-11-27T10:00:00Z";

fn started(evaluation: &Evaluation) -> Vec<String> {
    let mut names: Vec<String> = evaluation
        .operations
        .iter()
        .map(|o| o.asset.clone())
        .collect();
    names.sort();
    names
}

/// Runs one evaluation and applies its decisions the way the simulation does, returning the
/// evaluation. (Uses the simulation for application so there is one way to apply.)
fn simulate(
    inventory: Inventory,
    from: &str,
    until: &str,
    approvals: Vec<Approve>,
) -> simulation::Simulation {
    simulation::simulate(
        inventory,
        &Options {
            from: t(from),
            until: t(until),
            approvals,
            assume_success: false,
        },
    )
    .unwrap()
}

/// The rollout's condition of type `kind`.
fn condition<'s>(status: &'s PatchRolloutStatus, kind: &str) -> &'s Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {:?}", status.conditions))
}

fn events_of(sim: &simulation::Simulation, kind: EventType) -> Vec<&Event> {
    sim.events.iter().filter(|e| e.kind == kind).collect()
}

#[test]
fn a_policy_with_missing_updates_gets_a_frozen_rollout() {
    let inv = inventory(&one_ring(3, ""));
    let evaluation = evaluate(&inv, t(NOW));
    assert!(evaluation.problems.is_empty(), "{:?}", evaluation.problems);
    assert_eq!(evaluation.created_rollouts.len(), 1);
    let rollout = &evaluation.created_rollouts[0];
    assert_eq!(rollout.spec.policy, "security");
    assert_eq!(rollout.spec.updates.len(), 1);
    assert_eq!(rollout.spec.updates[0].id, "openssl");
    assert_eq!(
        rollout.spec.updates[0].deadline.as_ref().map(|d| d.0),
        Some(t("2026-11-27T00:00:00Z"))
    );
    assert_eq!(rollout.spec.rings, vec!["pilot".to_owned()]);
    assert_eq!(evaluation.events[0].kind, EventType::RolloutCreated);
}

#[test]
fn max_concurrent_limits_operations_in_flight_per_ring() {
    let inv = inventory(&one_ring(5, ", maxConcurrent: 2"));
    let evaluation = evaluate(&inv, t(NOW));
    assert_eq!(started(&evaluation), vec!["a-1", "a-2"]);
    let status = evaluation.rollout_statuses.values().next().unwrap();
    assert_eq!(status.rings[0].in_flight, 2);
    assert_eq!(status.rings[0].pending, 3);
    assert_eq!(status.phase, RolloutPhase::Progressing);
}

#[test]
fn percent_max_concurrent_rounds_up() {
    let inv = inventory(&one_ring(5, ", maxConcurrent: '30%'"));
    // 30% of 5 = 1.5 -> 2
    assert_eq!(evaluate(&inv, t(NOW)).operations.len(), 2);
}

#[test]
fn a_failure_over_the_threshold_halts_and_names_the_assets() {
    let mut text = assets("a", 4, "pilot", "");
    text = text.replacen("name: a-1,", &outcome("a-1", "Failed"), 1);
    let inv = inventory(&format!(
        "{text}{}{}{}",
        ring("pilot", ", maxConcurrent: 1, failureThreshold: 0"),
        ALWAYS_OPEN,
        policy("pilot", "")
    ));
    let sim = simulate(inv, NOW, "2026-11-28T10:00:00Z", vec![]);
    let halted = events_of(&sim, EventType::RingHalted);
    assert_eq!(halted.len(), 1);
    assert_eq!(
        halted[0].message,
        "ring pilot halted: 1 of 4 assets failed, more than the threshold of 0; failed: a-1"
    );
    assert_eq!(events_of(&sim, EventType::RolloutHalted).len(), 1);
    // Nothing started after the halt.
    let halt_time = halted[0].time;
    assert!(
        sim.events
            .iter()
            .filter(|e| e.kind == EventType::OperationStarted)
            .all(|e| e.time < halt_time)
    );
    let rollout = &sim.inventory.rollouts[0];
    let status = rollout.status.as_ref().unwrap();
    assert_eq!(status.phase, RolloutPhase::Halted);
    assert!(status.halt_reason.as_deref().unwrap().contains("a-1"));
    assert_eq!(status.rings[0].halts, 1);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Halted" && c.status == "True")
    );
}

#[test]
fn percent_threshold_rounds_down_and_halts_only_when_exceeded() {
    // 10% of 19 = 1.9 -> 1: the first failure is tolerated, the second halts.
    let mut text = assets("a", 19, "pilot", "");
    for name in ["a-1", "a-2"] {
        text = text.replacen(&format!("name: {name},"), &outcome(name, "Failed"), 1);
    }
    let inv = inventory(&format!(
        "{text}{}{}{}",
        ring("pilot", ", maxConcurrent: 1, failureThreshold: '10%'"),
        ALWAYS_OPEN,
        policy("pilot", "")
    ));
    let sim = simulate(inv, NOW, "2026-11-29T10:00:00Z", vec![]);
    let failures = events_of(&sim, EventType::OperationFailed);
    assert_eq!(failures.len(), 2);
    let halted = events_of(&sim, EventType::RingHalted);
    assert_eq!(halted.len(), 1);
    assert_eq!(
        halted[0].time, failures[1].time,
        "halts as soon as the second failure arrives"
    );
    // A percentage threshold says how it became a count.
    assert!(
        halted[0]
            .message
            .contains("2 of 19 assets failed, more than the threshold of 1 (10% of 19)"),
        "{}",
        halted[0].message
    );
}

#[test]
fn resume_after_a_halt_continues_and_accepts_the_failures_so_far() {
    let mut text = assets("a", 3, "pilot", "");
    text = text.replacen("name: a-1,", &outcome("a-1", "Failed"), 1);
    let inv = inventory(&format!(
        "{text}{}{}{}",
        ring("pilot", ", failureThreshold: 0"),
        ALWAYS_OPEN,
        policy("pilot", "")
    ));
    let mut sim = simulate(inv, NOW, "2026-11-28T10:00:00Z", vec![]);
    assert_eq!(
        sim.inventory.rollouts[0].status.as_ref().unwrap().phase,
        RolloutPhase::Halted
    );
    sim.inventory.rollouts[0]
        .spec
        .resumes
        .push(crate::api::rollout::Resume {
            ring: "pilot".into(),
            halt: 1,
            signature: crate::api::Signature {
                by: Some("ops".into()),
                ..Default::default()
            },
        });
    let sim = simulate(
        sim.inventory,
        "2026-11-28T10:00:00Z",
        "2026-11-29T10:00:00Z",
        vec![],
    );
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    assert_eq!(status.phase, RolloutPhase::Succeeded, "{status:?}");
    assert_eq!(status.rings[0].succeeded, 2);
    assert_eq!(status.rings[0].failed, 1);
    assert_eq!(status.rings[0].accepted_failures, 1);
    // Who resumed stays in the ring's status.
    let resumed = status.rings[0].resumed.as_ref().map(|s| s.by.as_deref());
    assert_eq!(resumed, Some(Some("ops")));
}

/// Adds the assets of `yaml` to a simulation's objects at `from` (they report for the first
/// time) and simulates on until `until`. Nothing may be in flight at `from`: the agents'
/// completions do not carry over from one simulation to the next.
fn join_and_simulate(
    mut inventory: Inventory,
    yaml: &str,
    from: &str,
    until: &str,
) -> simulation::Simulation {
    inventory.assets.extend(self::inventory(yaml).assets);
    simulate(inventory, from, until, vec![])
}

#[test]
fn an_asset_that_joins_a_completed_ring_is_patched_without_holding_the_next_ring_back() {
    let text = format!(
        "{}{}{}{}{}{}",
        assets("p", 2, "pilot", ""),
        assets("r", 2, "rest", ""),
        ring("pilot", ", maxConcurrent: 2, bakeTime: 1h"),
        ring("rest", ", maxConcurrent: 1"),
        ALWAYS_OPEN,
        policy("pilot, rest", "")
    );
    // 10:00 the pilot starts, 10:10 it is done and bakes until 11:10.
    let first = simulate(inventory(&text), NOW, "2026-11-27T10:30:00Z", vec![]);
    let status = first.inventory.rollouts[0].status.clone().unwrap();
    assert_eq!(status.rings[0].phase, RingPhase::Baking, "{status:?}");
    // 10:30 a pilot laptop reports the update for the first time (enrolled late).
    let second = join_and_simulate(
        first.inventory,
        &assets("late", 1, "pilot", ""),
        "2026-11-27T10:30:00Z",
        "2026-11-27T13:00:00Z",
    );
    let starts: Vec<(&str, Timestamp)> = events_of(&second, EventType::OperationStarted)
        .iter()
        .map(|e| (e.asset.as_deref().unwrap_or_default(), e.time))
        .collect();
    assert_eq!(
        starts,
        [
            ("late-1", t("2026-11-27T10:30:00Z")),
            // The bake the pilot started at 10:10 decides, not the late laptop.
            ("r-1", t("2026-11-27T11:10:00Z")),
            ("r-2", t("2026-11-27T11:20:00Z")),
        ]
    );
    assert!(
        events_of(&second, EventType::RingCompleted)
            .iter()
            .all(|e| e.ring.as_deref() != Some("pilot")),
        "the pilot completed once, before the laptop came"
    );
    let status = second.inventory.rollouts[0].status.clone().unwrap();
    assert_eq!(status.phase, RolloutPhase::Succeeded);
    let pilot = &status.rings[0];
    assert_eq!((pilot.total, pilot.succeeded), (3, 3));
    assert_eq!(pilot.completed_at, Some(Time(t("2026-11-27T10:10:00Z"))));
}

#[test]
fn a_rollout_is_not_done_while_a_late_member_of_a_completed_ring_waits() {
    let laptops = ALWAYS_OPEN.replace(
        "spec: {",
        "spec: {selector: {matchLabels: {kind: laptop}}, ",
    );
    let text = format!(
        "{}{}{}{}{}{}{}",
        assets("p", 1, "pilot", ", kind: laptop"),
        assets("r", 2, "rest", ", kind: laptop"),
        ring("pilot", ", bakeTime: 1h"),
        ring("rest", ""),
        laptops,
        // The kiosk's only window opens next week.
        "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: next-week}\n\
         spec: {selector: {matchLabels: {kind: kiosk}}, start: '2026-12-04T00:00:00Z', end: '2026-12-05T00:00:00Z'}\n",
        policy("pilot, rest", "")
    );
    // The pilot is done at 10:10 and bakes until 11:10; at 10:30 a pilot kiosk reports.
    let first = simulate(inventory(&text), NOW, "2026-11-27T10:30:00Z", vec![]);
    let second = join_and_simulate(
        first.inventory,
        &assets("kiosk", 1, "pilot", ", kind: kiosk"),
        "2026-11-27T10:30:00Z",
        "2026-11-28T00:00:00Z",
    );
    // Both rings are done; the rollout is not.
    let status = second.inventory.rollouts[0].status.clone().unwrap();
    let phases: Vec<(RingPhase, i32)> = status.rings.iter().map(|r| (r.phase, r.pending)).collect();
    assert_eq!(
        phases,
        [(RingPhase::Completed, 1), (RingPhase::Completed, 0)]
    );
    assert_eq!(status.phase, RolloutPhase::Progressing, "{status:?}");
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("ring pilot") && m.contains("1 pending")),
        "{status:?}"
    );
    assert!(events_of(&second, EventType::RolloutSucceeded).is_empty());
    // Next week the kiosk is patched, and then the rollout has succeeded.
    let third = simulate(
        second.inventory,
        "2026-11-28T00:00:00Z",
        "2026-12-06T00:00:00Z",
        vec![],
    );
    let started = events_of(&third, EventType::OperationStarted);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].time, t("2026-12-04T00:00:00Z"));
    assert_eq!(events_of(&third, EventType::RolloutSucceeded).len(), 1);
}

/// The rollouts of a simulation by name, each with its phase and the assets it served.
fn rollouts_served(sim: &simulation::Simulation) -> Vec<(String, RolloutPhase, Vec<String>)> {
    sim.inventory
        .rollouts
        .iter()
        .map(|r| {
            let name = r.metadata.name.clone().unwrap_or_default();
            let mut served: Vec<String> = sim
                .inventory
                .assets
                .iter()
                .filter(|a| stored_record(a, &name).is_some())
                .map(|a| a.metadata.name.clone().unwrap_or_default())
                .collect();
            served.sort();
            let phase = r.status.as_ref().map(|s| s.phase).unwrap_or_default();
            (name, phase, served)
        })
        .collect()
}

#[test]
fn an_asset_that_reports_after_the_rollout_succeeded_gets_a_rollout_of_the_same_set() {
    let text = one_ring(3, ", maxConcurrent: 3, failureThreshold: 1").replacen(
        "name: a-1,",
        &outcome("a-1", "Failed"),
        1,
    );
    // 10:00 all three start, 10:10 the rollout has succeeded with a-1 failed (within the
    // threshold).
    let first = simulate(inventory(&text), NOW, "2026-11-27T11:00:00Z", vec![]);
    let [(name, phase, _)] = &rollouts_served(&first)[..] else {
        panic!("one rollout: {:?}", rollouts_served(&first));
    };
    assert_eq!(*phase, RolloutPhase::Succeeded);
    let name = name.clone();
    // 11:00 a laptop enrolled late reports the same missing update.
    let second = join_and_simulate(
        first.inventory,
        &assets("late", 1, "pilot", ""),
        "2026-11-27T11:00:00Z",
        "2026-11-28T11:00:00Z",
    );
    assert_eq!(
        rollouts_served(&second),
        [
            (
                name.clone(),
                RolloutPhase::Succeeded,
                vec!["a-1".to_owned(), "a-2".to_owned(), "a-3".to_owned()]
            ),
            // Only the late laptop: the first rollout served a-1 (it failed there), and
            // failing it again here could halt the rollout before the laptop's turn.
            (
                format!("{name}-2"),
                RolloutPhase::Succeeded,
                vec!["late-1".to_owned()]
            ),
        ]
    );
    let created = events_of(&second, EventType::RolloutCreated);
    assert_eq!(created.len(), 1, "one more rollout, not one per evaluation");
    assert_eq!(created[0].time, t("2026-11-27T11:00:00Z"));
    let why = format!("the same updates as {name}, for 1 asset it did not serve: late-1");
    assert!(created[0].message.ends_with(&why), "{}", created[0].message);
    let state = |name: &str| second.assets.iter().find(|a| a.name == name).unwrap().state;
    assert_eq!(state("late-1"), AssetState::Patched);
    assert_eq!(state("a-1"), AssetState::Failed);
    // Its rollout holds the same frozen set as the first.
    let [first_rollout, second_rollout] = &second.inventory.rollouts[..] else {
        unreachable!("two rollouts, asserted above");
    };
    assert_eq!(first_rollout.spec.revision, second_rollout.spec.revision);
    assert_eq!(first_rollout.spec.updates, second_rollout.spec.updates);
}

#[test]
fn an_asset_released_from_hold_after_the_rollout_gets_a_rollout_then() {
    let text = one_ring(2, ", maxConcurrent: 2").replacen(
        "spec: {osFamily: Linux, criticality: Low}",
        "spec: {osFamily: Linux, criticality: Low, hold: true}",
        1,
    );
    let mut first = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    // Held while the rollout ran, and still held after it: nothing more happens.
    assert_eq!(rollouts_served(&first).len(), 1);
    let held = first.assets.iter().find(|a| a.name == "a-1").unwrap();
    assert_eq!(held.state, AssetState::Held);
    for asset in &mut first.inventory.assets {
        Arc::make_mut(asset).spec.hold = false;
    }
    let second = simulate(
        first.inventory,
        "2026-11-28T00:00:00Z",
        "2026-11-29T00:00:00Z",
        vec![],
    );
    let served: Vec<Vec<String>> = rollouts_served(&second)
        .into_iter()
        .map(|(_, _, served)| served)
        .collect();
    assert_eq!(served, [vec!["a-2".to_owned()], vec!["a-1".to_owned()]]);
    let released = second.assets.iter().find(|a| a.name == "a-1").unwrap();
    assert_eq!(released.state, AssetState::Patched);
}

#[test]
fn an_asset_the_rollout_served_does_not_start_it_again() {
    let text = one_ring(3, ", maxConcurrent: 3, failureThreshold: 1").replacen(
        "name: a-1,",
        &outcome("a-1", "Failed"),
        1,
    );
    // The rollout succeeds with a-1 failed (1 failure is within the threshold). a-1 still
    // misses the update, but another rollout of the same set would fail it again, and again.
    let sim = simulate(inventory(&text), NOW, "2026-12-27T00:00:00Z", vec![]);
    let rollouts = rollouts_served(&sim);
    assert_eq!(rollouts.len(), 1, "{rollouts:?}");
    assert_eq!(rollouts[0].1, RolloutPhase::Succeeded);
    assert_eq!(events_of(&sim, EventType::RolloutCreated).len(), 1);
    let failed = sim.assets.iter().find(|a| a.name == "a-1").unwrap();
    assert_eq!(failed.state, AssetState::Failed);
}

#[test]
fn an_operation_without_result_times_out_and_counts_as_failed() {
    let mut text = assets("a", 2, "pilot", "");
    text = text.replacen("name: a-1,", &outcome("a-1", "NoResponse"), 1);
    let inv = inventory(&format!(
        "{text}{}{}{}",
        ring("pilot", ", maxConcurrent: 2, failureThreshold: 0"),
        ALWAYS_OPEN,
        policy("pilot", ", operationTimeout: 1h")
    ));
    let sim = simulate(inv, NOW, "2026-11-28T10:00:00Z", vec![]);
    let timed_out = events_of(&sim, EventType::OperationTimedOut);
    assert_eq!(timed_out.len(), 1);
    assert_eq!(timed_out[0].time, t("2026-11-27T11:00:00Z"));
    assert_eq!(
        events_of(&sim, EventType::RingHalted)[0].time,
        t("2026-11-27T11:00:00Z")
    );
}

#[test]
fn the_next_ring_waits_for_completion_plus_bake_time() {
    let text = format!(
        "{}{}{}{}{}{}",
        assets("p", 2, "pilot", ""),
        assets("r", 2, "rest", ""),
        ring("pilot", ", maxConcurrent: 2, bakeTime: 24h"),
        ring("rest", ", maxConcurrent: 2"),
        ALWAYS_OPEN,
        policy("pilot, rest", "")
    );
    let sim = simulate(inventory(&text), NOW, "2026-11-30T00:00:00Z", vec![]);
    let completed = events_of(&sim, EventType::RingCompleted);
    assert_eq!(completed[0].ring.as_deref(), Some("pilot"));
    assert_eq!(completed[0].time, t("2026-11-27T10:10:00Z"));
    let rest_start = sim
        .events
        .iter()
        .find(|e| e.kind == EventType::RingStarted && e.ring.as_deref() == Some("rest"))
        .unwrap();
    assert_eq!(
        rest_start.time,
        t("2026-11-28T10:10:00Z"),
        "pilot finished 10:10 + 24h bake"
    );
    assert_eq!(events_of(&sim, EventType::RolloutSucceeded).len(), 1);
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    assert_eq!(status.phase, RolloutPhase::Succeeded);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    let ready = sim
        .assets
        .iter()
        .filter(|a| a.state == AssetState::Patched)
        .count();
    assert_eq!(ready, 4);
}

#[test]
fn a_manual_ring_waits_for_its_approval() {
    let text = format!(
        "{}{}{}{}{}",
        assets("r", 2, "rest", ""),
        ring("rest", ", approval: Manual"),
        ALWAYS_OPEN,
        policy("rest", ""),
        ""
    );
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    assert!(events_of(&sim, EventType::OperationStarted).is_empty());
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    assert_eq!(status.phase, RolloutPhase::WaitingForApproval);
    // The ring itself waits: no member is listed as waiting for its own approval.
    assert!(status.rings[0].awaiting_approval.is_empty());
    let sim = simulate(
        inventory(&text),
        NOW,
        "2026-11-28T00:00:00Z",
        vec![Approve::Ring("rest".into())],
    );
    assert_eq!(events_of(&sim, EventType::OperationStarted).len(), 2);
    // Who approved stays in the ring's status.
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    let approved = status.rings[0]
        .approved
        .as_ref()
        .and_then(|s| s.by.as_deref());
    assert_eq!(approved, Some("simulate --approve"));
}

#[test]
fn an_empty_manual_ring_does_not_hold_the_rollout_back() {
    // The Manual ring audit selects none of the assets that miss the updates.
    let text = format!(
        "{}{}{}{ALWAYS_OPEN}{}",
        assets("p", 2, "pilot", ""),
        ring("audit", ", approval: Manual"),
        ring("pilot", ", maxConcurrent: 2"),
        policy("audit, pilot", "")
    );
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    assert_eq!(events_of(&sim, EventType::OperationStarted).len(), 2);
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    assert_eq!(status.rings[0].total, 0);
    assert_eq!(status.rings[0].phase, RingPhase::Completed);
    assert_eq!(status.phase, RolloutPhase::Succeeded);

    // The same with a member that is held: nothing of the ring starts, nothing to approve.
    let held =
        assets("h", 1, "audit", "").replace("criticality: Low}", "criticality: Low, hold: true}");
    let text = format!("{held}{text}");
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    assert_eq!(status.rings[0].skipped, 1, "{status:?}");
    assert_eq!(status.rings[0].phase, RingPhase::Completed);
    assert_eq!(status.phase, RolloutPhase::Succeeded);
}

#[test]
fn critical_assets_need_a_per_asset_approval() {
    let text = format!(
        "{}{}{}{}",
        assets("dc", 2, "pilot", ""),
        ring("pilot", ", maxConcurrent: 2"),
        ALWAYS_OPEN,
        policy("pilot", "")
    )
    .replace("criticality: Low", "criticality: Critical")
    .replace("manualApproval: []", "manualApproval: [Critical]");
    let sim = simulate(
        inventory(&text),
        NOW,
        "2026-11-28T00:00:00Z",
        vec![Approve::Asset("dc-2".into())],
    );
    let started: Vec<_> = events_of(&sim, EventType::OperationStarted)
        .iter()
        .map(|e| e.asset.clone().unwrap())
        .collect();
    assert_eq!(started, vec!["dc-2"]);
    let waiting = sim.assets.iter().find(|a| a.name == "dc-1").unwrap();
    assert_eq!(waiting.state, AssetState::WaitingForApproval);
    // The (Automatic) ring waits for dc-1's own approval, and says so.
    let ring = &sim.inventory.rollouts[0].status.as_ref().unwrap().rings[0];
    assert_eq!(ring.phase, RingPhase::WaitingForApproval);
    assert_eq!(ring.awaiting_approval, ["dc-1"]);
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.message == "ring pilot waits for per-asset approvals: dc-1"),
        "{:?}",
        status.conditions
    );
}

#[test]
fn a_held_asset_is_never_touched() {
    let text = one_ring(2, ", maxConcurrent: 2").replacen(
        "spec: {osFamily: Linux, criticality: Low}",
        "spec: {osFamily: Linux, criticality: Low, hold: true}",
        1,
    );
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    let started: Vec<_> = events_of(&sim, EventType::OperationStarted)
        .iter()
        .map(|e| e.asset.clone().unwrap())
        .collect();
    assert_eq!(started, vec!["a-2"]);
    assert_eq!(
        sim.assets.iter().find(|a| a.name == "a-1").unwrap().state,
        AssetState::Held
    );
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    assert_eq!(status.rings[0].skipped, 1);
    assert_eq!(status.phase, RolloutPhase::Succeeded);
}

#[test]
fn a_deny_window_holds_everything_back_until_it_closes() {
    let deny = freeze("2026-11-27T00:00:00Z", "2026-11-27T18:00:00Z");
    let text = format!(
        "{}{}{ALWAYS_OPEN}{deny}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        policy("pilot", "")
    );
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert!(evaluation.operations.is_empty());
    let status = evaluation.rollout_statuses.values().next().unwrap();
    assert_eq!(status.phase, RolloutPhase::WaitingForWindow);
    // The status says when the wait ends, not only that there is one.
    assert_eq!(
        status.rings[0].window_opens_at,
        Some(Time(t("2026-11-27T18:00:00Z")))
    );
    let ready = condition(status, "Ready");
    assert!(
        ready
            .message
            .contains("none of its assets may start before 2026-11-27T18:00:00Z"),
        "{}",
        ready.message
    );
    assert_eq!(evaluation.next_change, Some(t("2026-11-27T18:00:00Z")));
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    assert_eq!(
        events_of(&sim, EventType::OperationStarted)[0].time,
        t("2026-11-27T18:00:00Z")
    );
}

#[test]
fn an_invalid_deny_window_holds_back_what_it_selects_instead_of_failing_open() {
    let freeze = |time_zone: &str, selector: &str| {
        format!(
            "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: freeze}}\n\
             spec: {{type: Deny, schedule: '0 0 * * *', duration: 2h, timeZone: {time_zone}{selector}}}\n"
        )
    };
    let namespace = |deny: &str| {
        format!(
            "{}{}{}{ALWAYS_OPEN}{deny}{}",
            assets("a", 1, "pilot", ""),
            assets("b", 1, "pilot", ", team: b"),
            ring("pilot", ", maxConcurrent: 2"),
            policy("pilot", "")
        )
    };
    // A typo in the time zone: the freeze is invalid, and nothing it selects starts.
    let text = namespace(&freeze("Europe/Berln", ""));
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert!(
        evaluation
            .problems
            .iter()
            .any(|p| p.name == "freeze" && p.field == "spec.timeZone"),
        "{:?}",
        evaluation.problems
    );
    assert!(
        evaluation.operations.is_empty(),
        "{:?}",
        started(&evaluation)
    );
    assert_eq!(
        evaluation.rollout_statuses.values().next().unwrap().phase,
        RolloutPhase::WaitingForWindow
    );
    // Its selector still counts: an asset it does not select goes on.
    let text = namespace(&freeze(
        "Europe/Berln",
        ", selector: {matchLabels: {team: b}}",
    ));
    assert_eq!(started(&evaluate(&inventory(&text), t(NOW))), ["a-1"]);
    // A broken selector selects everything it might have meant.
    let text = namespace(&freeze(
        "Europe/Berlin",
        ", selector: {matchExpressions: [{key: team, operator: Sometimes}]}",
    ));
    assert!(evaluate(&inventory(&text), t(NOW)).operations.is_empty());
    // Fixed, it is closed at NOW (it holds 00:00-02:00 in Berlin), and both start.
    let text = namespace(&freeze("Europe/Berlin", ""));
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert!(evaluation.problems.is_empty(), "{:?}", evaluation.problems);
    assert_eq!(started(&evaluation), ["a-1", "b-1"]);
}

#[test]
fn no_operation_starts_after_the_cutoff() {
    let window = "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: nightly}\n\
        spec: {schedule: '0 22 * * *', duration: 4h, timeZone: UTC, cutoff: 1h}\n";
    let text = format!(
        "{}{}{window}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        policy("pilot", "")
    );
    // 01:30 is inside the window (22:00-02:00) but past its cutoff (01:00).
    let evaluation = evaluate(&inventory(&text), t("2026-11-28T01:30:00Z"));
    assert!(evaluation.operations.is_empty());
    assert_eq!(evaluation.next_change, Some(t("2026-11-28T22:00:00Z")));
    let evaluation = evaluate(&inventory(&text), t("2026-11-28T00:30:00Z"));
    assert_eq!(evaluation.operations.len(), 1);
    assert_eq!(
        evaluation.operations[0].operation.not_after.0,
        t("2026-11-28T01:00:00Z")
    );
}

#[test]
fn an_asset_no_allow_window_selects_is_reported_unscheduled() {
    let window = "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: servers}\n\
        spec: {selector: {matchLabels: {kind: server}}, start: '2026-01-01T00:00:00Z', end: '2027-01-01T00:00:00Z'}\n";
    let text = format!(
        "{}{}{window}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        policy("pilot", "")
    );
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert!(evaluation.operations.is_empty());
    assert!(
        evaluation.created_rollouts.is_empty(),
        "nothing to roll out to an unschedulable fleet"
    );
    let view = &evaluation.assets[0];
    assert_eq!(view.state, AssetState::Unscheduled);
    assert!(
        evaluation
            .events
            .iter()
            .any(|e| e.kind == EventType::AssetUnscheduled && e.asset.as_deref() == Some("a-1"))
    );
}

#[test]
fn an_asset_no_ring_selects_is_reported_unassigned() {
    let text = format!(
        "{}{}{ALWAYS_OPEN}{}",
        assets("a", 1, "elsewhere", ""),
        ring("pilot", ""),
        policy("pilot", "")
    );
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert_eq!(evaluation.assets[0].state, AssetState::Unassigned);
    assert!(
        evaluation
            .events
            .iter()
            .any(|e| e.kind == EventType::AssetUnassigned)
    );
    assert!(evaluation.operations.is_empty());
}

#[test]
fn an_asset_in_several_rings_belongs_to_the_first_listed() {
    let text = format!(
        "{}{}{}{ALWAYS_OPEN}{}",
        assets("a", 1, "pilot", ", dept: fin"),
        ring("pilot", ""),
        "---\nkind: Ring\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: everyone}\nspec: {selector: {}}\n",
        policy("everyone, pilot", "")
    );
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert_eq!(evaluation.assets[0].ring.as_deref(), Some("everyone"));
}

#[test]
fn a_disruption_budget_limits_in_flight_assets_across_rings() {
    let text = format!(
        "{}{}{}{}{ALWAYS_OPEN}{}",
        assets("dc", 2, "pilot", ", role: dc"),
        assets("x", 2, "rest", ", role: dc"),
        ring("pilot", ", maxConcurrent: 2"),
        ring("rest", ", maxConcurrent: 2"),
        policy(
            "pilot, rest",
            ", disruptionBudgets: [{selector: {matchLabels: {role: dc}}, maxUnavailable: 1}]"
        )
    );
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    let mut in_flight = 0;
    for event in &sim.events {
        match event.kind {
            EventType::OperationStarted => in_flight += 1,
            EventType::OperationSucceeded
            | EventType::OperationFailed
            | EventType::OperationTimedOut => in_flight -= 1,
            _ => {}
        }
        assert!(in_flight <= 1, "budget exceeded at {}", event.time);
    }
    assert_eq!(events_of(&sim, EventType::OperationSucceeded).len(), 4);
}

#[test]
fn earliest_deadline_first_then_criticality() {
    let text = format!(
        "{}{}{ALWAYS_OPEN}{}",
        assets("a", 3, "pilot", ""),
        ring("pilot", ", maxConcurrent: 1"),
        policy("pilot", "")
    )
    // a-3 is Critical; a-2 has an older release (earlier deadline).
    .replacen("metadata: {name: a-3, labels: {ring: pilot}}\nspec: {osFamily: Linux, criticality: Low}", "metadata: {name: a-3, labels: {ring: pilot}}\nspec: {osFamily: Linux, criticality: Critical}", 1);
    let mut inv = inventory(&text);
    let reported = std::sync::Arc::make_mut(&mut inv.assets[1])
        .status
        .as_mut()
        .unwrap()
        .reported
        .as_mut()
        .unwrap();
    reported.available_updates[0].id = "curl".into();
    reported.available_updates[0].released_at = Some(Time(t("2026-11-01T00:00:00Z")));
    let sim = simulate(inv, NOW, "2026-11-28T00:00:00Z", vec![]);
    let order: Vec<_> = events_of(&sim, EventType::OperationStarted)
        .iter()
        .map(|e| e.asset.clone().unwrap())
        .collect();
    assert_eq!(order, vec!["a-2", "a-3", "a-1"]);
}

#[test]
fn each_update_belongs_to_the_highest_priority_policy_that_matches() {
    let text = format!(
        "{}{}{ALWAYS_OPEN}{}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        "---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: monthly}\nspec: {rings: [pilot], priority: 10, manualApproval: []}\n",
        policy(
            "pilot",
            ", priority: 100, updates: {classifications: [Security]}"
        )
    );
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert_eq!(evaluation.created_rollouts.len(), 1);
    assert_eq!(evaluation.created_rollouts[0].spec.policy, "security");
    let monthly = evaluation
        .assets
        .iter()
        .find(|a| a.policy.as_deref() == Some("monthly"))
        .unwrap();
    assert_eq!(
        monthly.state,
        AssetState::UpToDate,
        "the update is security's, not monthly's"
    );
}

#[test]
fn deferred_updates_wait_until_their_deferral_passed() {
    let text = format!(
        "{}{}{ALWAYS_OPEN}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        policy("pilot", ", updates: {deferDays: 14}")
    );
    // released 2026-11-20 + 14 days = 2026-12-04
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert!(evaluation.created_rollouts.is_empty());
    assert_eq!(evaluation.next_change, Some(t("2026-12-04T00:00:00Z")));
    let evaluation = evaluate(&inventory(&text), t("2026-12-04T00:00:00Z"));
    assert_eq!(evaluation.created_rollouts.len(), 1);
}

#[test]
fn rollback_on_failure_rolls_the_halted_rings_patched_assets_back() {
    let mut text = format!(
        "{}{}{ALWAYS_OPEN}{}",
        assets("a", 3, "pilot", ""),
        ring("pilot", ", maxConcurrent: 1, failureThreshold: 0"),
        policy("pilot", ", onFailure: Rollback")
    );
    text = text.replacen("name: a-3,", &outcome("a-3", "Failed"), 1);
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    let rollbacks: Vec<_> = events_of(&sim, EventType::RollbackStarted)
        .iter()
        .map(|e| e.asset.clone().unwrap())
        .collect();
    assert_eq!(rollbacks, vec!["a-1", "a-2"]);
    let status = sim.inventory.rollouts[0].status.as_ref().unwrap();
    assert_eq!(status.phase, RolloutPhase::Halted);
    let op = sim.inventory.assets[0].status.as_ref().unwrap().rollouts[0].clone();
    assert_eq!(op.action, OperationAction::Rollback);
    assert_eq!(op.phase, OperationPhase::Succeeded);
}

/// A rollout whose ring is gone (taken out of the policy, then deleted) stalls and says why
/// and what it blocks: its policy starts no other rollout, not even for a new update, until
/// the rollout is aborted.
#[test]
fn a_rollout_whose_ring_is_gone_stalls_and_says_what_it_blocks() {
    let text = format!(
        "{}{}{}{ALWAYS_OPEN}{}",
        assets("a", 2, "pilot", ""),
        ring("pilot", ""),
        ring("rest", ""),
        policy("pilot, rest", "")
    );
    let first = evaluate(&inventory(&text), t(NOW));
    let rollout = first.created_rollouts[0].clone();
    let name = rollout.metadata.name.clone().unwrap();
    // The ring is taken out of the policy and deleted, and a new update appears.
    let text = format!(
        "{}{}{ALWAYS_OPEN}{}",
        assets("a", 2, "pilot", ""),
        ring("pilot", ""),
        policy("pilot", "")
    )
    .replace(
        "availableUpdates: [",
        "availableUpdates: [{id: curl, version: '8.1', classification: Security, \
         severity: Critical, releasedAt: '2026-11-21T00:00:00Z'}, ",
    );
    let mut inv = inventory(&text);
    inv.rollouts.push(rollout);
    let stuck = evaluate(&inv, t(NOW));
    let stalled = condition(&stuck.rollout_statuses[&name], "Stalled");
    assert_eq!(stalled.status, "True");
    assert_eq!(
        stalled.message,
        "ring rest does not exist or is invalid: the rollout cannot go on, and its policy starts \
         no other rollout, until the Ring is back (valid) or the rollout is aborted"
    );
    assert!(stuck.created_rollouts.is_empty());
    // Aborted, it blocks no more: the new update gets a rollout.
    inv.rollouts[0].spec.abort = Some(Default::default());
    inv.rollouts[0].status = stuck.rollout_statuses.get(&name).cloned();
    let aborted = evaluate(&inv, t(NOW));
    assert_eq!(aborted.rollout_statuses[&name].phase, RolloutPhase::Aborted);
    inv.rollouts[0].status = aborted.rollout_statuses.get(&name).cloned();
    let after = evaluate(&inv, t(NOW));
    assert_eq!(after.created_rollouts.len(), 1, "{:?}", after.events);
}

#[test]
fn abort_and_pause_stop_new_operations() {
    let text = format!(
        "{}{}{ALWAYS_OPEN}{}",
        assets("a", 3, "pilot", ""),
        ring("pilot", ", maxConcurrent: 1"),
        policy("pilot", "")
    );
    let first = evaluate(&inventory(&text), t(NOW));
    let mut inv = inventory(&text);
    let mut rollout = first.created_rollouts[0].clone();
    rollout.spec.paused = true;
    inv.rollouts.push(rollout.clone());
    let paused = evaluate(&inv, t(NOW));
    assert!(paused.operations.is_empty());
    let status = &paused.rollout_statuses[rollout.metadata.name.as_deref().unwrap()];
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Paused" && c.status == "True")
    );
    // Each condition says what it is about, not the rollout's message again.
    let message = |status: &PatchRolloutStatus, kind: &str| condition(status, kind).message.clone();
    assert_eq!(
        message(status, "Halted"),
        "no ring's failures exceed its threshold"
    );
    inv.rollouts[0].spec.paused = false;
    let running = evaluate(&inv, t(NOW));
    let status = running.rollout_statuses.values().next().unwrap();
    assert_eq!(
        message(status, "Paused"),
        "not paused (spec.paused is not true)"
    );
    assert_eq!(
        message(status, "Stalled"),
        "not stalled: no missing ring or policy, no halt"
    );

    inv.rollouts[0].spec.abort = Some(Default::default());
    let aborted = evaluate(&inv, t(NOW));
    assert!(aborted.operations.is_empty());
    assert_eq!(
        aborted.rollout_statuses.values().next().unwrap().phase,
        RolloutPhase::Aborted
    );
}

#[test]
fn an_abort_keeps_the_completion_of_rings_that_had_completed() {
    let text = format!(
        "{}{}{}{}{ALWAYS_OPEN}{}",
        assets("a", 1, "pilot", ""),
        assets("b", 1, "rest", ""),
        ring("pilot", ""),
        ring("rest", ", approval: Manual"),
        policy("pilot, rest", "")
    );
    // The pilot completes; ring rest waits for its approval.
    let mut sim = simulate(inventory(&text), NOW, "2026-11-27T12:00:00Z", vec![]);
    let ring_of = |status: &crate::api::rollout::PatchRolloutStatus, name: &str| {
        status
            .rings
            .iter()
            .find(|r| r.name == name)
            .cloned()
            .unwrap()
    };
    let before = ring_of(sim.inventory.rollouts[0].status.as_ref().unwrap(), "pilot");
    assert_eq!(before.phase, RingPhase::Completed);
    assert!(before.completed_at.is_some());

    sim.inventory.rollouts[0].spec.abort = Some(Default::default());
    let aborted = evaluate(&sim.inventory, t("2026-11-27T12:00:00Z"));
    let status = aborted.rollout_statuses.values().next().unwrap();
    assert_eq!(status.phase, RolloutPhase::Aborted);
    let pilot = ring_of(status, "pilot");
    assert_eq!(pilot.phase, RingPhase::Completed);
    assert_eq!(pilot.completed_at, before.completed_at);
    assert_eq!(pilot.bake_until, before.bake_until);
    assert_eq!(ring_of(status, "rest").phase, RingPhase::Aborted);
}

#[test]
fn a_finished_rollout_acknowledges_a_later_change_of_its_spec() {
    let text = format!(
        "{}{}{ALWAYS_OPEN}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        policy("pilot", "")
    );
    let mut sim = simulate(inventory(&text), NOW, "2026-11-27T12:00:00Z", vec![]);
    let rollout = &mut sim.inventory.rollouts[0];
    let name = rollout.metadata.name.clone().unwrap();
    let stored = rollout.status.clone().unwrap();
    assert_eq!(stored.phase, RolloutPhase::Succeeded);
    // Written at generation 1 and unchanged since: nothing to write.
    rollout.metadata.generation = Some(1);
    if let Some(status) = rollout.status.as_mut() {
        status.observed_generation = Some(1);
        for condition in &mut status.conditions {
            condition.observed_generation = Some(1);
        }
    }
    let stored = rollout.status.clone().unwrap();
    let later = t("2026-11-27T13:00:00Z");
    assert!(
        !evaluate(&sim.inventory, later)
            .rollout_statuses
            .contains_key(&name)
    );
    // Someone pauses it afterwards (generation 2): the status says it saw that, and nothing
    // else about it changes.
    sim.inventory.rollouts[0].spec.paused = true;
    sim.inventory.rollouts[0].metadata.generation = Some(2);
    let evaluation = evaluate(&sim.inventory, later);
    let status = &evaluation.rollout_statuses[&name];
    assert_eq!(status.observed_generation, Some(2));
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(2))
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    assert_eq!(status.phase, RolloutPhase::Succeeded);
    assert_eq!(status.rings, stored.rings);
    assert!(evaluation.operations.is_empty());
}

#[test]
fn an_agent_still_running_an_operation_gets_no_other() {
    // a-1's agent still runs an install the operator gave up on (it timed out): a new rollout
    // must wait for it rather than time out behind it.
    let busy = |phase: &str| {
        format!(
            "---\nkind: Asset\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: a-1, labels: {{ring: pilot}}}}\n\
             spec: {{osFamily: Linux, criticality: Low}}\n\
             status: {{reported: {{lastOperation: {{id: old-1/a-1/install, phase: {phase}}}, \
             availableUpdates: [{{id: openssl, version: '3.0.15', classification: Security, severity: Critical, releasedAt: '2026-11-20T00:00:00Z'}}]}}}}\n"
        )
    };
    let namespace = |phase: &str| {
        format!(
            "{}{}{}{ALWAYS_OPEN}{}",
            busy(phase),
            assets("b", 1, "pilot", ""),
            ring("pilot", ", maxConcurrent: 2"),
            policy("pilot", "")
        )
    };
    let evaluation = evaluate(&inventory(&namespace("Running")), t(NOW));
    assert_eq!(started(&evaluation), ["b-1"]);
    // Once its agent reports the old one ended, it gets the new one.
    let evaluation = evaluate(&inventory(&namespace("Failed")), t(NOW));
    assert_eq!(started(&evaluation), ["a-1", "b-1"]);
}

#[test]
fn a_repeated_evaluation_never_issues_a_second_operation() {
    let text = format!(
        "{}{}{ALWAYS_OPEN}{}",
        assets("a", 2, "pilot", ""),
        ring("pilot", ", maxConcurrent: 2"),
        policy("pilot", "")
    );
    let sim = simulate(inventory(&text), NOW, NOW, vec![]);
    assert_eq!(events_of(&sim, EventType::OperationStarted).len(), 2);
    // An operator restarted right now sees the records and issues nothing new.
    let again = evaluate(&sim.inventory, t(NOW));
    assert!(again.operations.is_empty());
    assert!(again.created_rollouts.is_empty());
    let ids: Vec<_> = sim
        .inventory
        .assets
        .iter()
        .map(|a| {
            a.status
                .as_ref()
                .unwrap()
                .operation
                .as_ref()
                .unwrap()
                .id
                .clone()
        })
        .collect();
    assert_eq!(
        ids[0],
        format!(
            "{}/a-1/install",
            sim.inventory.rollouts[0].metadata.name.as_deref().unwrap()
        )
    );
}

#[test]
fn the_same_input_gives_the_same_output() {
    let mut text = format!(
        "{}{}{}{}{ALWAYS_OPEN}{}",
        assets("p", 4, "pilot", ""),
        assets("r", 6, "rest", ""),
        ring("pilot", ", maxConcurrent: 2, bakeTime: 1h"),
        ring("rest", ", maxConcurrent: '50%'"),
        policy("pilot, rest", "")
    );
    text = text.replacen("name: r-2,", "name: r-2, annotations: {simulate.patchwave.dev/outcome: Failed, simulate.patchwave.dev/duration: 25m},", 1);
    let a = simulate(inventory(&text), NOW, "2026-12-01T00:00:00Z", vec![]);
    let b = simulate(inventory(&text), NOW, "2026-12-01T00:00:00Z", vec![]);
    assert_eq!(a.events, b.events);
    assert_eq!(a.assets, b.assets);
}

#[test]
fn invalid_objects_are_reported_and_do_not_stall_the_others() {
    let bad_window = "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: broken}\n\
        spec: {schedule: '61 25 * * *', duration: 1h, timeZone: Mars/Olympus}\n";
    let text = format!(
        "{}{}{ALWAYS_OPEN}{bad_window}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        policy("pilot", "")
    );
    let evaluation = evaluate(&inventory(&text), t(NOW));
    assert!(
        evaluation
            .problems
            .iter()
            .any(|p| p.kind == "MaintenanceWindow" && p.name == "broken")
    );
    assert_eq!(
        evaluation.operations.len(),
        1,
        "the valid window still lets the asset start"
    );
}

#[test]
fn a_completed_ring_keeps_its_completion_time_when_a_result_is_reported_again_later() {
    let text = format!(
        "{}{}{}{}{}{}",
        assets("p", 2, "pilot", ""),
        assets("r", 1, "rest", ""),
        ring("pilot", ", maxConcurrent: 2, bakeTime: 24h"),
        ALWAYS_OPEN,
        ring("rest", ""),
        policy("pilot, rest", "")
    );
    let mut sim = simulate(inventory(&text), NOW, "2026-11-27T12:00:00Z", vec![]);
    let pilot_done = t("2026-11-27T10:10:00Z");
    let completed = |status: &PatchRolloutStatus| {
        status
            .rings
            .iter()
            .find(|r| r.name == "pilot")
            .and_then(|r| r.completed_at.clone())
            .map(|t| t.0)
    };
    let name = sim.inventory.rollouts[0].metadata.name.clone().unwrap();
    assert_eq!(
        completed(sim.inventory.rollouts[0].status.as_ref().unwrap()),
        Some(pilot_done)
    );
    // p-1's result is not yet recorded on the Asset (a delayed write) and its agent reported it
    // again an hour later (a retried write): the ring still completed at 10:10.
    let asset = sim
        .inventory
        .assets
        .iter_mut()
        .find(|a| a.metadata.name.as_deref() == Some("p-1"))
        .unwrap();
    let status = std::sync::Arc::make_mut(asset).status.as_mut().unwrap();
    let record = status.rollouts.last_mut().unwrap();
    record.phase = OperationPhase::Running;
    record.finished_at = None;
    let last = status
        .reported
        .as_mut()
        .unwrap()
        .last_operation
        .as_mut()
        .unwrap();
    last.finished_at = Some(Time(t("2026-11-27T11:10:00Z")));
    let again = evaluate(&sim.inventory, t("2026-11-27T12:00:00Z"));
    assert_eq!(completed(&again.rollout_statuses[&name]), Some(pilot_done));
    let bake_until = again.rollout_statuses[&name]
        .rings
        .iter()
        .find(|r| r.name == "pilot")
        .and_then(|r| r.bake_until.clone())
        .map(|t| t.0);
    assert_eq!(bake_until, Some(t("2026-11-28T10:10:00Z")));
}

#[test]
fn a_simulation_reports_its_progress_after_every_instant() {
    let inv = inventory(&one_ring(4, ", maxConcurrent: 2"));
    let options = Options {
        from: t(NOW),
        until: t("2026-11-28T00:00:00Z"),
        approvals: Vec::new(),
        assume_success: false,
    };
    let mut seen = Vec::new();
    let sim = simulation::simulate_observed(inv, &options, |p| seen.push(p)).unwrap();

    // Two batches of 10m operations: 10:00 (start), 10:10 (results, second batch), 10:20.
    let times: Vec<Timestamp> = seen.iter().map(|p| p.now).collect();
    assert_eq!(
        times,
        [
            t("2026-11-27T10:00:00Z"),
            t("2026-11-27T10:10:00Z"),
            t("2026-11-27T10:20:00Z")
        ]
    );
    assert_eq!(
        seen.iter().map(|p| p.instants).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        seen.iter().map(|p| p.operations).collect::<Vec<_>>(),
        [2, 4, 4]
    );
    let last = seen.last().copied().unwrap();
    assert_eq!(last.now, sim.ended_at);
    assert_eq!(
        last.operations,
        events_of(&sim, EventType::OperationStarted).len()
    );
}

/// A kept [`Evaluator`] follows every kind of change between evaluations (assets relabelled
/// into another ring, new updates reported, assets gone and added, a policy changed) and
/// decides exactly what a fresh evaluation decides.
#[test]
fn a_kept_evaluator_follows_changed_objects() {
    /// Evaluates with the kept evaluator (once without views, once with) and fresh.
    fn same(kept: &mut Evaluator, inventory: &Inventory, now: Timestamp, step: &str) -> Evaluation {
        let fresh = evaluate(inventory, now);
        let mut without_views = fresh.clone();
        without_views.assets.clear();
        let decided = kept.decide(inventory, now);
        assert_eq!(
            format!("{decided:?}"),
            format!("{without_views:?}"),
            "{step}"
        );
        let decided = kept.evaluate(inventory, now);
        assert_eq!(format!("{decided:?}"), format!("{fresh:?}"), "{step}");
        decided
    }
    let yaml = format!(
        "{ALWAYS_OPEN}{}{}{}{}{}",
        ring("pilot", ", maxConcurrent: 2"),
        ring("rest", ", maxConcurrent: 3"),
        policy("pilot, rest", ""),
        assets("p", 4, "pilot", ""),
        assets("r", 6, "rest", "")
    );
    let mut inventory = inventory(&yaml);
    let mut kept = Evaluator::default();
    let mut now = t(NOW);
    let first = same(&mut kept, &inventory, now, "first");
    crate::engine::apply::apply(&mut inventory, &first);
    assert_eq!(started(&first), ["p-1", "p-2"]);

    // p-1 reports success; r-6 moves to the pilot ring and reports an earlier-released update
    // (an earlier deadline puts it first in line).
    now = now.checked_add(SignedDuration::from_mins(5)).unwrap();
    for asset in &mut inventory.assets {
        let asset = Arc::make_mut(asset);
        let name = asset.metadata.name.clone().unwrap_or_default();
        if name == "p-1" {
            let operation = asset.status.as_ref().and_then(|s| s.operation.clone());
            let reported = asset
                .status
                .get_or_insert_with(Default::default)
                .reported
                .get_or_insert_with(Default::default);
            if let Some(operation) = operation {
                crate::agent::simulated::finish(
                    reported,
                    &operation,
                    crate::agent::simulated::Outcome::Succeeded,
                    now,
                );
            }
        }
        if name == "r-6" {
            asset
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("ring".into(), "pilot".into());
        }
        if name == "r-4" {
            // No ring selects it any more: reported Unassigned.
            asset
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("ring".into(), "nowhere".into());
        }
        if name == "r-5" {
            let reported = asset
                .status
                .get_or_insert_with(Default::default)
                .reported
                .get_or_insert_with(Default::default);
            reported.available_updates[0].released_at = Some(Time(t("2026-11-01T00:00:00Z")));
        }
    }
    let second = same(
        &mut kept,
        &inventory,
        now,
        "after success, relabel, new release date",
    );
    assert!(
        second
            .events
            .iter()
            .any(|e| e.kind == EventType::AssetUnassigned && e.asset.as_deref() == Some("r-4")),
        "{:?}",
        second.events
    );
    crate::engine::apply::apply(&mut inventory, &second);

    // An asset goes, another comes, and the policy now lists the rings the other way round.
    inventory
        .assets
        .retain(|a| a.metadata.name.as_deref() != Some("r-2"));
    let extra = self::inventory(&assets("n", 1, "rest", ""));
    inventory.assets.extend(extra.assets);
    // r-3 becomes invalid: the kept problems of the others must not hide it.
    let stale_after = |inventory: &mut Inventory, value: Option<&str>| {
        for asset in &mut inventory.assets {
            if asset.metadata.name.as_deref() == Some("r-3") {
                Arc::make_mut(asset).spec.stale_after = value.map(str::to_owned);
            }
        }
    };
    stale_after(&mut inventory, Some("0s"));
    now = now.checked_add(SignedDuration::from_mins(5)).unwrap();
    let third = same(&mut kept, &inventory, now, "an asset removed and one added");
    let invalid = |evaluation: &Evaluation| -> Vec<String> {
        evaluation
            .problems
            .iter()
            .map(|p| format!("{}/{} {}", p.kind, p.name, p.field))
            .collect()
    };
    assert_eq!(invalid(&third), ["Asset/r-3 spec.staleAfter"]);
    crate::engine::apply::apply(&mut inventory, &third);
    inventory.policies[0].spec.rings.reverse();
    now = now.checked_add(SignedDuration::from_mins(5)).unwrap();
    let fourth = same(&mut kept, &inventory, now, "policy changed");
    assert_eq!(invalid(&fourth), ["Asset/r-3 spec.staleAfter"]);
    crate::engine::apply::apply(&mut inventory, &fourth);
    stale_after(&mut inventory, None);
    now = now.checked_add(SignedDuration::from_hours(3)).unwrap();
    let fifth = same(
        &mut kept,
        &inventory,
        now,
        "operations timed out, r-3 mended",
    );
    assert!(invalid(&fifth).is_empty(), "{:?}", invalid(&fifth));
}

#[test]
fn an_update_reported_twice_is_installed_once_and_one_with_two_versions_not_at_all() {
    let asset = |name: &str, openssl: &[&str]| {
        let entries: String = openssl
            .iter()
            .map(|v| {
                format!(
                    "{{id: openssl, version: '{v}', classification: Security, severity: Critical, releasedAt: '2026-11-20T00:00:00Z'}}, "
                )
            })
            .collect();
        format!(
            "---\nkind: Asset\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: {name}, labels: {{ring: pilot}}}}\n\
             spec: {{osFamily: Linux, criticality: Low}}\n\
             status: {{reported: {{availableUpdates: [{entries}{{id: curl, version: '8.11.1', classification: Security, severity: Critical, releasedAt: '2026-11-20T00:00:00Z'}}]}}}}\n"
        )
    };
    let inv = inventory(&format!(
        "{}{}{}{}{}",
        // One package for two architectures: the same entry twice.
        asset("twice", &["3.0.15", "3.0.15"]),
        // Two candidate versions: which one to install is unclear.
        asset("ambiguous", &["3.0.15", "3.0.16"]),
        ring("pilot", ", maxConcurrent: 5"),
        ALWAYS_OPEN,
        policy("pilot", "")
    ));
    let evaluation = evaluate(&inv, t(NOW));
    let problems: Vec<(&str, &str)> = evaluation
        .problems
        .iter()
        .map(|p| (p.name.as_str(), p.field.as_str()))
        .collect();
    assert_eq!(
        problems,
        vec![("ambiguous", "status.reported.availableUpdates[1].version")]
    );
    assert!(
        evaluation.problems[0].message.contains("openssl"),
        "{}",
        evaluation.problems[0].message
    );
    let updates = |asset: &str| -> Vec<(String, Option<String>)> {
        evaluation
            .operations
            .iter()
            .find(|o| o.asset == asset)
            .map(|o| {
                o.operation
                    .updates
                    .iter()
                    .map(|u| (u.id.clone(), u.version.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let version = |v: &str| Some(v.to_owned());
    assert_eq!(
        updates("twice"),
        vec![
            ("openssl".to_owned(), version("3.0.15")),
            ("curl".to_owned(), version("8.11.1"))
        ]
    );
    assert_eq!(
        updates("ambiguous"),
        vec![("curl".to_owned(), version("8.11.1"))]
    );
}

#[test]
fn an_agent_clock_off_neither_skips_nor_stretches_the_bake() {
    let text = format!(
        "{}{}{}{}{}{}",
        assets("p", 1, "pilot", ""),
        assets("r", 1, "rest", ""),
        ring("pilot", ", bakeTime: 24h"),
        ring("rest", ""),
        ALWAYS_OPEN,
        policy("pilot, rest", "")
    );
    let issued = t(NOW);
    let reported = t("2026-11-27T10:10:00Z");
    // The agent reports its result at 10:10 by the operator's clock; its own clock is a year
    // behind, then a year ahead.
    for (agent_clock, label) in [
        (t("2025-11-27T10:10:00Z"), "behind"),
        (t("2027-11-27T10:10:00Z"), "ahead"),
    ] {
        let mut inv = inventory(&text);
        let first = evaluate(&inv, issued);
        assert_eq!(started(&first), vec!["p-1"], "{label}");
        crate::engine::apply::apply(&mut inv, &first);
        let index = inv
            .assets
            .iter()
            .position(|a| a.metadata.name.as_deref() == Some("p-1"))
            .unwrap();
        let asset = Arc::make_mut(&mut inv.assets[index]);
        let status = asset.status.as_mut().unwrap();
        let id = status.operation.as_ref().unwrap().id.clone();
        status.reported.as_mut().unwrap().last_operation =
            Some(crate::api::asset::OperationResult {
                id,
                phase: OperationPhase::Succeeded,
                started_at: Some(Time(agent_clock)),
                finished_at: Some(Time(agent_clock)),
                installed: Vec::new(),
                message: None,
            });
        let second = evaluate(&inv, reported);
        assert!(started(&second).is_empty(), "{label}: rest started at once");
        let status = second.rollout_statuses.values().next().unwrap();
        let pilot = &status.rings[0];
        let expected_end = if agent_clock < issued {
            issued
        } else {
            reported
        };
        assert_eq!(
            pilot.completed_at.as_ref().map(|t| t.0),
            Some(expected_end),
            "{label}"
        );
        assert_eq!(
            pilot.bake_until.as_ref().map(|t| t.0),
            expected_end
                .checked_add(SignedDuration::from_hours(24))
                .ok(),
            "{label}"
        );
    }
}

#[test]
fn max_concurrent_bounds_a_ring_across_the_rollouts_of_several_policies() {
    // Two policies share the ring pilot (maxConcurrent 1): security owns a-1's update, monthly
    // owns b-1's. One operation at a time in the ring, whichever rollout issued it.
    let bugfix = |name: &str| {
        format!(
            "---\nkind: Asset\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: {name}, labels: {{ring: pilot}}, \
             annotations: {{simulate.patchwave.dev/duration: 30m}}}}\n\
             spec: {{osFamily: Linux, criticality: Low}}\n\
             status: {{reported: {{availableUpdates: [{{id: vim, version: '9.1', classification: Bugfix, severity: Low, releasedAt: '2026-11-20T00:00:00Z'}}]}}}}\n"
        )
    };
    let monthly = "---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: monthly}\n\
         spec: {priority: 5, rings: [pilot], manualApproval: [], updates: {classifications: [Bugfix]}}\n";
    let text = format!(
        "{}{}{}{ALWAYS_OPEN}{}{monthly}",
        assets("a", 1, "pilot", "").replace(
            "name: a-1,",
            "name: a-1, annotations: {simulate.patchwave.dev/duration: 30m},"
        ),
        bugfix("b-1"),
        ring("pilot", ", maxConcurrent: 1"),
        policy(
            "pilot",
            ", priority: 10, updates: {classifications: [Security]}"
        ),
    );
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    let starts = events_of(&sim, EventType::OperationStarted);
    let ends: Vec<&Event> = sim
        .events
        .iter()
        .filter(|e| e.kind == EventType::OperationSucceeded)
        .collect();
    assert_eq!(starts.len(), 2, "{:?}", sim.events);
    assert_eq!(ends.len(), 2, "{:?}", sim.events);
    // Both rollouts ran, one after the other: the second start waits for the first end.
    let rollouts: BTreeSet<_> = starts.iter().map(|e| e.rollout.clone()).collect();
    assert_eq!(rollouts.len(), 2, "{starts:?}");
    assert!(
        starts[1].time >= ends[0].time,
        "two operations in flight in a ring with maxConcurrent 1: {starts:?} {ends:?}"
    );
    // The rollout that waits says why.
    let mut inv = inventory(&text);
    inv.rollouts = evaluate(&inv, t(NOW)).created_rollouts;
    let both = evaluate(&inv, t(NOW));
    assert_eq!(both.operations.len(), 1);
    let started_by = &both.operations[0].record.rollout;
    let (_, waiting) = both
        .rollout_statuses
        .iter()
        .find(|(name, _)| *name != started_by)
        .unwrap();
    let ready = condition(waiting, "Ready");
    assert!(
        ready
            .message
            .ends_with("; its maxConcurrent is taken by other rollouts' operations in the ring"),
        "{}",
        ready.message
    );
}

#[test]
fn messages_count_one_thing_in_the_singular() {
    let text = one_ring(1, ", failureThreshold: 0");
    let text = text.replacen("name: a-1,", &outcome("a-1", "Failed"), 1);
    let sim = simulate(inventory(&text), NOW, "2026-11-28T00:00:00Z", vec![]);
    let started = events_of(&sim, EventType::OperationStarted);
    assert!(
        started[0]
            .message
            .starts_with("installing 1 update on a-1 "),
        "{}",
        started[0].message
    );
    let halted = events_of(&sim, EventType::RingHalted);
    assert!(
        halted[0]
            .message
            .starts_with("ring pilot halted: 1 of 1 asset failed"),
        "{}",
        halted[0].message
    );
}

#[test]
fn a_rollout_serves_the_assets_whose_frozen_updates_its_policy_owns() {
    // "all" froze openssl before "security" (higher priority) claimed it: on a-1 the update
    // is security's now, so all's rollout does not serve a-1; security's would.
    let rollout = |name: &str, policy: &str| {
        format!(
            "---\nkind: PatchRollout\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: {name}}}\n\
             spec: {{policy: {policy}, revision: abc, rings: [pilot], updates: [{{id: openssl, version: '3.0.15'}}]}}\n"
        )
    };
    let security = policy(
        "pilot",
        ", priority: 100, updates: {classifications: [Security]}",
    );
    let all = "---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: all}\n\
         spec: {priority: 10, rings: [pilot], manualApproval: []}\n";
    let text = format!(
        "{}{}{ALWAYS_OPEN}{security}{all}{}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        rollout("all-1", "all"),
        rollout("security-1", "security"),
    );
    let inv = inventory(&text);
    let engine = PlanExplainer::new(&inv);
    let members = |name: &str| {
        let rollout = inv
            .rollouts
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap();
        engine
            .members(rollout)
            .into_iter()
            .map(|(asset, ring)| {
                (
                    inv.assets[asset].metadata.name.clone().unwrap(),
                    ring.to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(members("all-1"), []);
    assert_eq!(
        members("security-1"),
        [("a-1".to_owned(), "pilot".to_owned())]
    );
}

#[test]
fn a_member_joining_a_completed_manual_ring_waits_without_holding_the_later_rings() {
    // audit (Manual) is empty and completes; rest starts with a-1, then a freeze holds a-2
    // and a-3 back. Meanwhile a-2 moves into audit: it waits for audit's approval, and rest
    // goes on with a-3 when the freeze ends.
    let text = format!(
        "{}{}{}{ALWAYS_OPEN}{}{}",
        assets("a", 3, "rest", ""),
        ring("audit", ", approval: Manual"),
        ring("rest", ", maxConcurrent: 1"),
        freeze("2026-11-27T10:05:00Z", "2026-11-27T12:00:00Z"),
        policy("audit, rest", "")
    );
    let started = |sim: &simulation::Simulation| -> Vec<String> {
        events_of(sim, EventType::OperationStarted)
            .iter()
            .map(|e| e.asset.clone().unwrap())
            .collect()
    };
    let mut first = simulate(inventory(&text), NOW, "2026-11-27T11:00:00Z", vec![]);
    let status = first.inventory.rollouts[0].status.clone().unwrap();
    assert_eq!(status.rings[0].phase, RingPhase::Completed);
    assert_eq!(started(&first), ["a-1"]);
    let moved = first
        .inventory
        .assets
        .iter_mut()
        .find(|a| a.metadata.name.as_deref() == Some("a-2"))
        .unwrap();
    std::sync::Arc::make_mut(moved)
        .metadata
        .labels
        .get_or_insert_default()
        .insert("ring".into(), "audit".into());

    let later = simulate(
        first.inventory,
        "2026-11-27T11:00:00Z",
        "2026-11-28T00:00:00Z",
        vec![],
    );
    assert_eq!(started(&later), ["a-3"], "{:?}", later.events);
    let status = later.inventory.rollouts[0].status.clone().unwrap();
    assert_eq!(status.rings[0].phase, RingPhase::WaitingForApproval);
    assert!(status.rings[0].completed_at.is_some());
    assert_eq!(status.rings[0].pending, 1);
    assert_eq!(status.rings[1].phase, RingPhase::Completed);
    assert_eq!(status.phase, RolloutPhase::WaitingForApproval);

    let approved = simulate(
        later.inventory,
        "2026-11-28T00:00:00Z",
        "2026-11-29T00:00:00Z",
        vec![Approve::Ring("audit".into())],
    );
    assert_eq!(started(&approved), ["a-2"]);
    let status = approved.inventory.rollouts[0].status.clone().unwrap();
    assert_eq!(status.phase, RolloutPhase::Succeeded);
}

#[test]
fn a_deny_window_that_never_lets_go_gives_no_invented_opening() {
    // Deny windows of 48 hours every day: always open, so nothing ever starts.
    let deny = "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: always-deny}\n\
        spec: {type: Deny, schedule: '0 0 * * *', duration: 48h, timeZone: UTC}\n";
    let nightly = "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: nightly}\n\
        spec: {schedule: '0 22 * * *', duration: 4h, timeZone: UTC}\n";
    let text = format!(
        "{}{}{nightly}{}",
        assets("a", 1, "pilot", ""),
        ring("pilot", ""),
        policy("pilot", "")
    );
    // The rollout exists already (the freeze came later).
    let created = evaluate(&inventory(&text), t(NOW)).created_rollouts;
    let mut inv = inventory(&format!("{text}{deny}"));
    inv.rollouts = created;
    let evaluation = evaluate(&inv, t(NOW));
    assert!(evaluation.operations.is_empty());
    let status = evaluation.rollout_statuses.values().next().unwrap();
    assert_eq!(status.phase, RolloutPhase::WaitingForWindow);
    // The search stopped at its horizon: that is no instant at which a window opens.
    assert_eq!(status.rings[0].window_opens_at, None);
    let ready = condition(status, "Ready");
    assert_eq!(ready.message, "ring pilot waits for a maintenance window");
}
