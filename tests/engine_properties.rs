//! Property tests: the engine's invariants hold over generated fleets and schedules.
//!
//! Each case builds a namespace from a seed (assets with random rings, roles, criticality,
//! outcomes and durations; rings with random limits and bake times; daily Allow windows with
//! cutoffs and a Deny window), simulates ten days, and checks what must always be true.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use patchwave::api::rollout::RolloutPhase;
use patchwave::api::{Asset, PatchRollout, Rounding, window::WindowType};
use patchwave::engine::Inventory;
use patchwave::engine::evaluate::{Evaluator, Event, EventType, evaluate};
use patchwave::engine::selector::CompiledSelector;
use patchwave::engine::simulation::{Options, simulate, simulate_with};
use patchwave::engine::windows::{self, StartPermission};
use proptest::prelude::*;

/// A small deterministic generator, so a failing seed reproduces exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fleet(seed: u64) -> String {
    let mut rng = Rng(seed | 1);
    let mut yaml = String::new();
    let rings = 1 + rng.below(3);
    let ring_names: Vec<String> = (0..rings).map(|i| format!("ring-{i}")).collect();
    for name in &ring_names {
        let max = if rng.below(3) == 0 {
            format!("'{}%'", 10 + rng.below(90))
        } else {
            (1 + rng.below(4)).to_string()
        };
        let threshold = if rng.below(3) == 0 {
            format!("'{}%'", rng.below(60))
        } else {
            rng.below(3).to_string()
        };
        let bake = format!("{}m", rng.below(6) * 60);
        yaml += &format!(
            "---\nkind: Ring\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: {name}}}\n\
             spec: {{selector: {{matchLabels: {{ring: {name}}}}}, maxConcurrent: {max}, failureThreshold: {threshold}, bakeTime: {bake}}}\n"
        );
    }
    for w in 0..1 + rng.below(3) {
        let hour = rng.below(24);
        let hours = 1 + rng.below(8);
        let cutoff = rng.below(hours);
        let selector = match rng.below(3) {
            0 => "{}".to_owned(),
            _ => format!("{{matchLabels: {{ring: ring-{}}}}}", rng.below(rings)),
        };
        yaml += &format!(
            "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: allow-{w}}}\n\
             spec: {{selector: {selector}, schedule: '0 {hour} * * *', duration: {hours}h, timeZone: Europe/Zurich, cutoff: {cutoff}h}}\n"
        );
    }
    if rng.below(2) == 0 {
        let day = 27 + rng.below(4);
        yaml += &format!(
            "---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: freeze}}\n\
             spec: {{type: Deny, start: '2026-11-{day}T06:00:00Z', end: '2026-11-{day}T20:00:00Z'}}\n"
        );
    }
    // Half the fleets have a second policy through the same rings (monthly, Bugfix updates):
    // a ring's maxConcurrent and the disruption budget then bound two rollouts at once.
    let monthly = rng.below(2) == 0;
    let assets = 1 + rng.below(30);
    for i in 0..assets {
        let ring = rng.below(rings);
        let role = if rng.below(4) == 0 { "dc" } else { "client" };
        let criticality =
            ["Critical", "High", "Medium", "Low"][usize::try_from(rng.below(4)).unwrap()];
        let outcome = match rng.below(10) {
            0 => "Failed",
            1 => "NoResponse",
            _ => "Succeeded",
        };
        let minutes = 5 + rng.below(90);
        let hold = rng.below(15) == 0;
        let bugfix = if monthly && rng.below(2) == 0 {
            ", {id: vim, version: '9.1', classification: Bugfix, severity: Low, releasedAt: '2026-11-01T00:00:00Z'}"
        } else {
            ""
        };
        yaml += &format!(
            "---\nkind: Asset\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: asset-{i}, labels: {{ring: ring-{ring}, role: {role}}}, \
             annotations: {{simulate.patchwave.dev/outcome: {outcome}, simulate.patchwave.dev/duration: {minutes}m}}}}\n\
             spec: {{osFamily: Linux, criticality: {criticality}, hold: {hold}}}\n\
             status: {{reported: {{availableUpdates: [{{id: openssl, version: '3.0.15', classification: Security, severity: Critical, releasedAt: '2026-11-2{}T00:00:00Z'}}{bugfix}]}}}}\n",
            rng.below(6)
        );
    }
    let budget = 1 + rng.below(2);
    let order: Vec<&str> = ring_names.iter().map(String::as_str).collect();
    let timeout = 1 + rng.below(3);
    let policy = |name: &str, priority: u32, classification: &str| {
        format!(
            "---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: {name}}}\n\
             spec: {{priority: {priority}, updates: {{classifications: [{classification}]}}, rings: [{}], manualApproval: [], operationTimeout: {timeout}h, disruptionBudgets: [{{selector: {{matchLabels: {{role: dc}}}}, maxUnavailable: {budget}}}]}}\n",
            order.join(", "),
        )
    };
    yaml += &policy("security", 10, "Security");
    if monthly {
        yaml += &policy("monthly", 5, "Bugfix");
    }
    yaml
}

fn inventory(yaml: &str) -> Inventory {
    let mut loaded =
        patchwave::cli::load::load_str(std::path::Path::new("generated.yaml"), yaml, "default");
    assert!(
        loaded.problems.is_empty(),
        "{:?}",
        loaded
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    loaded.namespaces.remove("default").unwrap()
}

fn is_end(kind: EventType) -> bool {
    matches!(
        kind,
        EventType::OperationSucceeded | EventType::OperationFailed | EventType::OperationTimedOut
    )
}

fn check_invariants(yaml: &str) {
    let inv = inventory(yaml);
    let from: Timestamp = "2026-11-27T00:00:00Z".parse().unwrap();
    let until: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
    let options = Options {
        from,
        until,
        approvals: vec![],
        assume_success: false,
    };
    let sim = simulate(inv.clone(), &options).unwrap();
    let again = simulate(inv.clone(), &options).unwrap();
    assert_eq!(sim.events, again.events, "same input, same output");

    let labels: HashMap<String, BTreeMap<String, String>> = inv
        .assets
        .iter()
        .map(|a| {
            (
                a.metadata.name.clone().unwrap(),
                a.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    let ring_specs: HashMap<String, patchwave::api::RingSpec> = inv
        .rings
        .iter()
        .map(|r| (r.metadata.name.clone().unwrap(), r.spec.clone()))
        .collect();
    let policy = &inv.policies[0].spec;
    let budget = &policy.disruption_budgets[0];
    let budget_selector = CompiledSelector::compile(Some(&budget.selector), "").unwrap();
    let budget_size = labels
        .values()
        .filter(|l| budget_selector.matches(l))
        .count();
    let budget_cap = budget
        .max_unavailable
        .resolve(budget_size as u64, Rounding::Up)
        .max(1);
    let compiled_windows: Vec<(WindowType, CompiledSelector, windows::WindowSchedule)> = inv
        .windows
        .iter()
        .map(|w| {
            (
                w.spec.type_,
                CompiledSelector::compile(w.spec.selector.as_ref(), "").unwrap(),
                windows::compile(&w.spec).unwrap(),
            )
        })
        .collect();

    for rollout in &sim.inventory.rollouts {
        let name = rollout.metadata.name.clone().unwrap();
        let status = rollout.status.clone().unwrap();
        let events: Vec<&Event> = sim
            .events
            .iter()
            .filter(|e| e.rollout.as_deref() == Some(name.as_str()))
            .collect();
        let mut in_flight: HashMap<String, i64> = HashMap::new();
        let mut budget_in_flight = 0_u64;
        let mut halted_at: Option<Timestamp> = None;
        let mut completed: HashMap<String, Timestamp> = HashMap::new();
        let mut first_start: HashMap<String, Timestamp> = HashMap::new();
        for event in &events {
            let ring = event.ring.clone().unwrap_or_default();
            let asset = event.asset.clone().unwrap_or_default();
            match event.kind {
                EventType::OperationStarted => {
                    assert!(
                        halted_at.is_none(),
                        "{name}: {asset} started at {} after the halt at {halted_at:?}",
                        event.time
                    );
                    first_start.entry(ring.clone()).or_insert(event.time);
                    let count = in_flight.entry(ring.clone()).or_default();
                    *count += 1;
                    let total = status.rings.iter().find(|r| r.name == ring).unwrap().total;
                    let max = ring_specs[&ring]
                        .max_concurrent()
                        .resolve(total as u64, Rounding::Up)
                        .max(1);
                    assert!(
                        *count as u64 <= max,
                        "{name}/{ring}: {count} in flight > maxConcurrent {max} at {}",
                        event.time
                    );
                    if budget_selector.matches(&labels[&asset]) {
                        budget_in_flight += 1;
                        assert!(
                            budget_in_flight <= budget_cap,
                            "budget exceeded at {}",
                            event.time
                        );
                    }
                    let allow: Vec<&windows::WindowSchedule> = compiled_windows
                        .iter()
                        .filter(|(t, s, _)| *t == WindowType::Allow && s.matches(&labels[&asset]))
                        .map(|(_, _, w)| w)
                        .collect();
                    let deny: Vec<&windows::WindowSchedule> = compiled_windows
                        .iter()
                        .filter(|(t, s, _)| *t == WindowType::Deny && s.matches(&labels[&asset]))
                        .map(|(_, _, w)| w)
                        .collect();
                    assert!(
                        matches!(
                            windows::start_permission(&allow, &deny, event.time),
                            StartPermission::Allowed { .. }
                        ),
                        "{asset} started at {} outside an open Allow window, inside a Deny window or after the cutoff",
                        event.time
                    );
                }
                kind if is_end(kind) => {
                    *in_flight.entry(ring.clone()).or_default() -= 1;
                    if budget_selector.matches(&labels[&asset]) {
                        budget_in_flight -= 1;
                    }
                }
                EventType::RolloutHalted => halted_at = Some(event.time),
                EventType::RingCompleted => {
                    completed.insert(ring, event.time);
                }
                _ => {}
            }
        }
        // Ring N+1 never starts before ring N completed plus its bake time.
        for pair in rollout.spec.rings.windows(2) {
            if let Some(next_start) = first_start.get(&pair[1]) {
                let done = completed
                    .get(&pair[0])
                    .unwrap_or_else(|| panic!("{} started before {} completed", pair[1], pair[0]));
                let bake: SignedDuration =
                    patchwave::engine::duration::parse_duration(&ring_specs[&pair[0]].bake_time)
                        .unwrap();
                let ring0 = status.rings.iter().find(|r| r.name == pair[0]).unwrap();
                let completed_at = ring0.completed_at.as_ref().unwrap().0;
                assert!(*done >= completed_at);
                // Bake time follows the ring's last operation; a ring where nothing ran
                // (every member held or unscheduled) has nothing to bake.
                let ran = ring0.succeeded + ring0.failed + ring0.skipped > 0
                    && first_start.contains_key(&pair[0]);
                let earliest = if ran {
                    completed_at + bake
                } else {
                    completed_at
                };
                assert_eq!(ring0.bake_until.as_ref().unwrap().0, earliest);
                assert!(
                    *next_start >= earliest,
                    "{} started {next_start} before {completed_at} + bake",
                    pair[1]
                );
            }
        }
        if status.phase == RolloutPhase::Halted {
            assert!(halted_at.is_some(), "a halted rollout announced its halt");
        }
    }

    // Across rollouts (two policies through the same rings): a ring never has more in flight
    // than the maxConcurrent of the rollout that starts one, and the disruption budget (which
    // both policies declare) holds for all of them together.
    let totals: HashMap<(String, String), i32> = sim
        .inventory
        .rollouts
        .iter()
        .flat_map(|r| {
            let name = r.metadata.name.clone().unwrap();
            r.status
                .iter()
                .flat_map(|s| s.rings.iter())
                .map(move |ring| ((name.clone(), ring.name.clone()), ring.total))
        })
        .collect();
    let mut ring_in_flight: HashMap<String, u64> = HashMap::new();
    let mut budget_in_flight = 0_u64;
    for event in &sim.events {
        let (Some(ring), Some(asset), Some(rollout)) = (&event.ring, &event.asset, &event.rollout)
        else {
            continue;
        };
        let in_budget = budget_selector.matches(&labels[asset]);
        if event.kind == EventType::OperationStarted {
            let count = ring_in_flight.entry(ring.clone()).or_default();
            *count += 1;
            let total = totals[&(rollout.clone(), ring.clone())];
            let max = ring_specs[ring]
                .max_concurrent()
                .resolve(total as u64, Rounding::Up)
                .max(1);
            assert!(
                *count <= max,
                "{ring}: {count} in flight across rollouts > maxConcurrent {max} of {rollout} at {}",
                event.time
            );
            budget_in_flight += u64::from(in_budget);
            assert!(
                budget_in_flight <= budget_cap,
                "budget exceeded across rollouts at {}",
                event.time
            );
        } else if is_end(event.kind) {
            *ring_in_flight.entry(ring.clone()).or_default() -= 1;
            budget_in_flight -= u64::from(in_budget);
        }
    }

    assert_no_idle_repeats(&sim.inventory);
    // The held assets are released, and ten more days pass: a rollout of the same updates
    // may come for them, once.
    let mut released = sim.inventory.clone();
    let held = released.assets.iter().filter(|a| a.spec.hold).count();
    for asset in &mut released.assets {
        std::sync::Arc::make_mut(asset).spec.hold = false;
    }
    let before = released.rollouts.len();
    let policies = released.policies.len();
    let later = Options {
        from: until,
        until: until + SignedDuration::from_hours(240),
        approvals: vec![],
        assume_success: false,
    };
    let after = simulate(released, &later).unwrap();
    let new_rollouts = after.inventory.rollouts.len() - before;
    assert!(
        new_rollouts <= usize::from(held > 0) * policies,
        "{new_rollouts} rollouts after {held} held assets were released"
    );
    assert_no_idle_repeats(&after.inventory);
}

/// A rollout that repeats the set of the one before it serves an asset that one did not: the
/// same updates never go out again for nothing, so rollouts cannot follow each other forever.
fn assert_no_idle_repeats(inventory: &Inventory) {
    let served = |rollout: &PatchRollout| -> BTreeSet<String> {
        let name = rollout.metadata.name.as_deref();
        inventory
            .assets
            .iter()
            .filter(|a| {
                a.status
                    .as_ref()
                    .is_some_and(|s| s.rollouts.iter().any(|r| Some(r.rollout.as_str()) == name))
            })
            .filter_map(|a| a.metadata.name.clone())
            .collect()
    };
    for pair in inventory.rollouts.windows(2) {
        if pair[0].spec.revision == pair[1].spec.revision {
            let (before, after) = (served(&pair[0]), served(&pair[1]));
            assert!(
                !after.is_subset(&before),
                "{:?} repeats {:?} for {after:?}, which it served already",
                pair[1].metadata.name,
                pair[0].metadata.name
            );
        }
    }
}

/// An [`Evaluator`] kept across a whole simulation (as `plan` and `simulate` keep one) decides
/// at every step exactly what a fresh evaluation of the same objects decides, with and without
/// the asset views; forecast mode (approvals granted as asked) included.
fn check_kept_evaluator_matches_fresh(yaml: &str) {
    // `recopied`: some assets come back as new objects with the same content (as a caller
    // that rebuilds its objects, a watch cache for one, hands them); the kept evaluator must
    // decide the same whether it saw an object before or only its content.
    for (assume_success, recopied) in [(false, false), (true, false), (false, true)] {
        let options = Options {
            from: "2026-11-27T00:00:00Z".parse().unwrap(),
            until: "2026-12-07T00:00:00Z".parse().unwrap(),
            approvals: vec![],
            assume_success,
        };
        let mut kept = Evaluator::default();
        let mut steps = 0;
        let checked = simulate_with(
            inventory(yaml),
            &options,
            |inventory, now, views| {
                steps += 1;
                let fresh = evaluate(inventory, now);
                let seen = if recopied {
                    let mut copy = inventory.clone();
                    for (i, asset) in copy.assets.iter_mut().enumerate() {
                        if (i + steps) % 3 == 0 {
                            *asset = std::sync::Arc::new(Asset::clone(asset));
                        }
                    }
                    copy
                } else {
                    inventory.clone()
                };
                let decided = if views {
                    kept.evaluate(&seen, now)
                } else {
                    let decided = kept.decide(&seen, now);
                    let mut without_views = fresh.clone();
                    without_views.assets.clear();
                    assert_eq!(
                        format!("{decided:?}"),
                        format!("{without_views:?}"),
                        "decide at {now}, step {steps}"
                    );
                    decided
                };
                if views {
                    assert_eq!(
                        format!("{decided:?}"),
                        format!("{fresh:?}"),
                        "evaluate at {now}, step {steps}"
                    );
                }
                decided
            },
            |_| {},
        )
        .unwrap();
        let plain = simulate(inventory(yaml), &options).unwrap();
        assert_eq!(
            format!("{:?}", checked.events),
            format!("{:?}", plain.events)
        );
        assert_eq!(
            format!("{:?}", checked.assets),
            format!("{:?}", plain.assets)
        );
        assert!(steps > 1, "the simulation evaluated more than once");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_generated_fleets(seed in any::<u64>()) {
        check_invariants(&fleet(seed));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_kept_evaluator_decides_as_a_fresh_one(seed in any::<u64>()) {
        check_kept_evaluator_matches_fresh(&fleet(seed));
    }
}

#[test]
fn the_generator_produces_valid_namespaces_that_do_work() {
    // Guards the property test against generating nothing interesting.
    let mut started = 0;
    let mut halted = 0;
    for seed in 1..40 {
        let inv = inventory(&fleet(seed));
        let options = Options {
            from: "2026-11-27T00:00:00Z".parse().unwrap(),
            until: "2026-12-07T00:00:00Z".parse().unwrap(),
            approvals: vec![],
            assume_success: false,
        };
        let sim = simulate(inv, &options).unwrap();
        assert!(sim.problems.is_empty(), "seed {seed}: {:?}", sim.problems);
        started += sim
            .events
            .iter()
            .filter(|e| e.kind == EventType::OperationStarted)
            .count();
        halted += sim
            .events
            .iter()
            .filter(|e| e.kind == EventType::RolloutHalted)
            .count();
    }
    assert!(started > 100, "only {started} operations started");
    assert!(halted > 0, "no generated fleet ever halted");
}
