//! Plans and simulates generated fleets of 1,000, 10,000 and 100,000 assets (3 rings,
//! 2 policies, 20 updates each) and prints a table of time and peak memory per size.
//!
//! Run: `cargo bench --bench engine` (add `-- 1000 10000` to pick sizes). Each size runs in a
//! child process so that its peak resident memory (VmHWM) is its own.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use patchwave::api::asset::{AvailableUpdate, ReportedState};
use patchwave::api::policy::UpdateFilter;
use patchwave::api::{
    Asset, AssetSpec, AssetStatus, Classification, Criticality, IntOrPercent, LabelSelector,
    MaintenanceWindow, MaintenanceWindowSpec, OsFamily, PatchPolicy, PatchPolicySpec, Ring,
    RingSpec, Severity, Time,
};
use patchwave::cli::plan::{Plan, plan_namespace};
use patchwave::engine::Inventory;
use patchwave::engine::evaluate::evaluate;

// The allocator of `kubectl patchwave`, whose plan and simulate this measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use patchwave::engine::simulation::{Options, simulate};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(pairs)),
        match_expressions: None,
    }
}

fn fleet(size: usize) -> Inventory {
    let released: Timestamp = "2026-11-10T00:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let mut inventory = Inventory::default();
    for i in 0..size {
        let ring = match i % 50 {
            0 => "pilot",
            1..=10 => "dept-a",
            _ => "rest",
        };
        let kind = if i % 10 == 0 { "server" } else { "laptop" };
        let updates = (0..20)
            .map(|u| AvailableUpdate {
                id: format!("pkg-{u}"),
                package: Some(format!("pkg-{u}")),
                version: Some(format!("1.{u}.{}", i % 3)),
                classification: if u < 10 {
                    Classification::Security
                } else {
                    Classification::Bugfix
                },
                severity: [
                    Severity::Critical,
                    Severity::Important,
                    Severity::Moderate,
                    Severity::Low,
                ][u % 4],
                released_at: Some(Time(released)),
                ..AvailableUpdate::default()
            })
            .collect();
        let mut asset = Asset::new(
            &format!("asset-{i:06}"),
            AssetSpec {
                criticality: if i % 100 == 0 {
                    Criticality::High
                } else {
                    Criticality::Low
                },
                hold: i % 997 == 0,
                ..AssetSpec::new(OsFamily::Linux)
            },
        );
        asset.metadata.labels = Some(labels(&[("ring", ring), ("kind", kind)]));
        let mut annotations = BTreeMap::new();
        if i % 211 == 0 {
            annotations.insert(
                "simulate.patchwave.dev/outcome".to_owned(),
                "Failed".to_owned(),
            );
        }
        asset.metadata.annotations = Some(annotations);
        asset.status = Some(AssetStatus {
            reported: Some(ReportedState {
                available_updates: updates,
                ..ReportedState::default()
            }),
            ..AssetStatus::default()
        });
        inventory.assets.push(asset.into());
    }
    for (name, max, threshold) in [
        ("pilot", "10%", "10%"),
        ("dept-a", "10%", "5%"),
        ("rest", "5%", "5%"),
    ] {
        let percent =
            |t: &str| IntOrPercent::Percent(t.trim_end_matches('%').parse().unwrap_or(10));
        inventory.rings.push(Ring::new(
            name,
            RingSpec {
                selector: selector(&[("ring", name)]),
                max_concurrent: Some(percent(max)),
                failure_threshold: Some(percent(threshold)),
                bake_time: "12h".to_owned(),
                approval: Default::default(),
                description: None,
            },
        ));
    }
    let window = |name: &str, kind: &str, schedule: &str, duration: &str| {
        MaintenanceWindow::new(
            name,
            MaintenanceWindowSpec {
                type_: Default::default(),
                selector: Some(selector(&[("kind", kind)])),
                schedule: Some(schedule.to_owned()),
                duration: Some(duration.to_owned()),
                time_zone: Some("Europe/Zurich".to_owned()),
                start: None,
                end: None,
                cutoff: Some("1h".to_owned()),
                description: None,
            },
        )
    };
    inventory
        .windows
        .push(window("weeknights", "laptop", "0 19 * * 1-5", "11h"));
    inventory
        .windows
        .push(window("saturday", "server", "0 6 * * 6", "4h"));
    let policy =
        |name: &str, priority: i32, classifications: Vec<Classification>, defer_days: i32| {
            PatchPolicy::new(
                name,
                PatchPolicySpec {
                    selector: None,
                    priority,
                    updates: UpdateFilter {
                        classifications,
                        defer_days,
                        ..UpdateFilter::default()
                    },
                    deadlines: Default::default(),
                    rings: vec!["pilot".into(), "dept-a".into(), "rest".into()],
                    windows: Vec::new(),
                    disruption_budgets: Vec::new(),
                    manual_approval: Vec::new(),
                    reboot: Default::default(),
                    on_failure: Default::default(),
                    hooks: None,
                    operation_timeout: "2h".into(),
                    suspend: false,
                    description: None,
                },
            )
        };
    inventory
        .policies
        .push(policy("security", 100, vec![Classification::Security], 0));
    inventory.policies.push(policy("monthly", 10, vec![], 7));
    inventory
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Runs one size and prints one machine-readable line.
fn child(size: usize) {
    let now: Timestamp = "2026-11-27T19:30:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let inventory = fleet(size);

    let started = Instant::now();
    let evaluation = evaluate(&inventory, now);
    let evaluate_time = started.elapsed();
    if std::env::var_os("PATCHWAVE_BENCH_EVALUATE_ONLY").is_some() {
        // For profiling the decision pass alone: `perf record` this child.
        let started = Instant::now();
        for _ in 0..5 {
            std::hint::black_box(evaluate(&inventory, now));
        }
        println!(
            "evaluate {size}: first {evaluate_time:?}, then {:?} each",
            started.elapsed() / 5
        );
        let started = Instant::now();
        std::hint::black_box(patchwave::engine::validation::validate(&inventory));
        println!("  of which validation: {:?}", started.elapsed());
        // What a kept evaluator pays when nothing changed (its decisions applied, as a
        // forecast step applies them): the floor of every step of plan and simulate.
        let mut kept = patchwave::engine::evaluate::Evaluator::default();
        let mut applied = inventory.clone();
        let first = kept.evaluate(&applied, now);
        patchwave::engine::apply::apply(&mut applied, &first);
        std::hint::black_box(kept.decide(&applied, now));
        let started = Instant::now();
        for _ in 0..5 {
            std::hint::black_box(kept.decide(&applied, now));
        }
        println!(
            "  kept evaluator, nothing changed: {:?} each",
            started.elapsed() / 5
        );
        // The forecast must own its assets, as plan's does: shared, each change would copy one.
        drop(applied);
        // plan's forecast: how many evaluations, and what each costs on average.
        let mut kept = patchwave::engine::evaluate::Evaluator::default();
        let (mut evaluations, mut evaluating) = (0_u32, Duration::ZERO);
        let options = Options {
            from: now,
            until: now
                .checked_add(jiff::SignedDuration::from_hours(24 * 180))
                .unwrap_or(now),
            approvals: Vec::new(),
            assume_success: true,
        };
        let started = Instant::now();
        let forecast = patchwave::engine::simulation::simulate_with(
            inventory,
            &options,
            |inventory, at, views| {
                let started = Instant::now();
                let evaluation = if views {
                    kept.evaluate(inventory, at)
                } else {
                    kept.decide(inventory, at)
                };
                evaluations += 1;
                evaluating += started.elapsed();
                evaluation
            },
            |_| {},
        );
        let total = started.elapsed();
        let operations = forecast.map(|f| f.events.len()).unwrap_or(0);
        println!(
            "  forecast: {total:?}, {evaluations} evaluations taking {evaluating:?} ({:?} each), {operations} events",
            evaluating / evaluations.max(1)
        );
        return;
    }
    assert!(evaluation.problems.is_empty(), "{:?}", evaluation.problems);

    let started = Instant::now();
    let mut plan = Plan {
        at: now,
        rollouts: Vec::new(),
        never_patched: Vec::new(),
        problems: Vec::new(),
    };
    // plan owns its objects, as `kubectl patchwave plan` does (a shared copy would make the
    // forecast copy every asset it changes).
    plan_namespace(&mut plan, "bench", inventory).unwrap_or_else(|e| panic!("{e}"));
    let plan_time = started.elapsed();
    drop(plan);
    let inventory = fleet(size);

    let started = Instant::now();
    let options = Options {
        from: now,
        until: "2026-12-11T00:00:00Z".parse().unwrap_or(now),
        approvals: Vec::new(),
        assume_success: false,
    };
    let simulation = simulate(inventory, &options).unwrap_or_else(|e| panic!("{e}"));
    let simulate_time = started.elapsed();
    let operations = simulation
        .events
        .iter()
        .filter(|e| format!("{:?}", e.kind) == "OperationStarted")
        .count();
    println!(
        "RESULT {size} {} {} {} {} {} {}",
        evaluate_time.as_secs_f64(),
        plan_time.as_secs_f64(),
        simulate_time.as_secs_f64(),
        evaluation.operations.len(),
        operations,
        peak_rss_kib()
    );
}

fn seconds(text: &str) -> String {
    let secs: f64 = text.parse().unwrap_or(f64::NAN);
    let d = Duration::from_secs_f64(secs.max(0.0));
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [flag, size] = args.as_slice()
        && flag == "--child"
    {
        child(size.parse().unwrap_or(1000));
        return;
    }
    let sizes: Vec<usize> = if args.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        args.iter().filter_map(|a| a.parse().ok()).collect()
    };
    let exe = std::env::current_exe().unwrap_or_default();
    println!(
        "| assets | evaluate (1 decision pass) | plan (evaluate + 180-day forecast) | simulate 14 days | operations started in 14 days | peak RSS |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for size in sizes {
        let output = Command::new(&exe)
            .args(["--child", &size.to_string()])
            .output();
        let Ok(output) = output else { continue };
        let text = String::from_utf8_lossy(&output.stdout);
        let Some(line) = text.lines().find(|l| l.starts_with("RESULT ")) else {
            eprintln!(
                "size {size} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            continue;
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        let rss: f64 = f[7].parse().unwrap_or(0.0);
        println!(
            "| {} | {} | {} | {} | {} | {:.0} MiB |",
            f[1],
            seconds(f[2]),
            seconds(f[3]),
            seconds(f[4]),
            f[6],
            rss / 1024.0
        );
    }
}
