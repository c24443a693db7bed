//! `simulate` and `plan` over the example company, with results checked by hand against
//! examples/ (windows in Europe/Zurich, CET = UTC+1 in winter):
//!
//! - Monday 2026-11-30 19:00 local (18:00Z) the weeknight window opens; the pilot starts.
//!   lt-it-03 is annotated Failed with a 25m duration: it fails at 18:25Z; the pilot tolerates
//!   one failure (failureThreshold 1), so nothing halts.
//! - The pilot's last assets are web01 and k8s-node01, which only the web-tier window (Tue/Thu
//!   22:00 local) lets start: Tuesday 21:00Z, done 21:20Z (k8s-node01 takes 20m). Bake 24h:
//!   dept-a starts Wednesday 2026-12-02 21:20Z, inside the weeknight window.
//! - rest needs a manual approval; without --approve ring/rest it waits.
//! - With the approvals, lt-mgmt-01 (NoResponse) starts Thursday 18:00Z and times out after
//!   security-fast's 2h operationTimeout, at 20:00Z; rest tolerates 2 failures.
//! - dc01 and dc02 share a disruption budget of 1: never both in flight.
//! - The year-end freeze (Deny, 2026-12-19 00:00 local to 2027-01-05) stops every start.
//!   Starting inside it, the first operation starts the instant it ends.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn patchwave(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn simulate_json(extra: &[&str]) -> Value {
    let mut args = vec![
        "simulate",
        "-f",
        "examples/",
        "--from",
        "2026-11-30T18:00:00+01:00",
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = patchwave(&args);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

const APPROVALS: [&str; 10] = [
    "--approve",
    "ring/rest",
    "--approve",
    "asset/dc01",
    "--approve",
    "asset/dc02",
    "--approve",
    "asset/erp01",
    "--approve",
    "asset/fs01",
];

fn events<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

fn rollout<'a>(report: &'a Value, policy: &str) -> &'a Value {
    report["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == policy)
        .unwrap()
}

#[test]
fn the_pilot_tolerates_one_failure_and_dept_a_starts_after_the_bake() {
    let report = simulate_json(&["--until", "2026-12-18"]);
    let security = rollout(&report, "security-fast");
    let name = security["name"].as_str().unwrap();
    let rings = security["rings"].as_array().unwrap();
    assert_eq!(rings[0]["name"], "pilot");
    assert_eq!(rings[0]["phase"], "Completed");
    assert_eq!(
        rings[0]["total"], 11,
        "12 pilot machines, lt-eng-02 is up to date"
    );
    assert_eq!(rings[0]["failed"], 1);
    assert_eq!(rings[0]["succeeded"], 10);
    assert_eq!(rings[0]["startedAt"], "2026-11-30T18:00:00Z");
    assert_eq!(rings[0]["completedAt"], "2026-12-01T21:20:00Z");
    assert_eq!(rings[1]["startedAt"], "2026-12-02T21:20:00Z");
    assert_eq!(rings[2]["phase"], "WaitingForApproval");
    assert_eq!(security["phase"], "WaitingForApproval");

    let failed = events(&report, "OperationFailed");
    let lt_it_03 = failed
        .iter()
        .find(|e| e["asset"] == "lt-it-03" && e["rollout"] == name)
        .unwrap();
    assert_eq!(lt_it_03["time"], "2026-11-30T18:25:00Z");
    assert_eq!(lt_it_03["ring"], "pilot");
    assert!(events(&report, "RingHalted").is_empty());
    let started_in_rest = events(&report, "OperationStarted")
        .into_iter()
        .filter(|e| e["ring"] == "rest")
        .count();
    assert_eq!(started_in_rest, 0, "rest waits for its approval");

    let state = |asset: &str, policy: &str| {
        report["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == asset && a["policy"] == policy)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state("lt-it-03", "security-fast"), "Failed");
    assert_eq!(state("dt-eng-01", "security-fast"), "Held");
    assert_eq!(state("dc01", "security-fast"), "WaitingForApproval");
    assert_eq!(state("lt-eng-02", "security-fast"), "UpToDate");
    assert_eq!(state("web01", "security-fast"), "Patched");
}

#[test]
fn with_approvals_the_rollout_completes_and_no_response_times_out() {
    let mut args = vec!["--until", "2026-12-18"];
    args.extend_from_slice(&APPROVALS);
    let report = simulate_json(&args);
    let security = rollout(&report, "security-fast");
    assert_eq!(security["phase"], "Succeeded");
    // The contract names `version` even for an update without one (a Windows KB).
    let kb = security["updates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "KB5072036")
        .expect("the KB is frozen");
    assert_eq!(kb.get("version"), Some(&Value::Null), "{kb}");
    let timed_out: Vec<_> = events(&report, "OperationTimedOut")
        .into_iter()
        .filter(|e| e["asset"] == "lt-mgmt-01")
        .collect();
    assert_eq!(timed_out[0]["time"], "2026-12-03T20:00:00Z");
    assert_eq!(timed_out[0]["rollout"], security["name"]);

    // dc01 and dc02 (disruption budget 1) are never in flight together.
    let mut in_flight = 0;
    for event in report["events"].as_array().unwrap() {
        if event["asset"] != "dc01" && event["asset"] != "dc02" {
            continue;
        }
        match event["type"].as_str().unwrap() {
            "OperationStarted" => in_flight += 1,
            "OperationSucceeded" | "OperationFailed" | "OperationTimedOut" => in_flight -= 1,
            _ => {}
        }
        assert!(
            in_flight <= 1,
            "both domain controllers in flight at {}",
            event["time"]
        );
    }
    // Events are sorted by time.
    let times: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn nothing_starts_during_the_year_end_freeze() {
    // Saturday 2026-12-19 01:00 local: the freeze (Deny) is open, so is the weeknight window.
    // The freeze ends 2027-01-05 00:00 local (2027-01-04 23:00Z), inside Monday's weeknight
    // window (19:00-06:00): the pilot's laptops start exactly then.
    let (code, stdout, stderr) = patchwave(&[
        "simulate",
        "-f",
        "examples/",
        "--from",
        "2026-12-19T01:00:00+01:00",
        "--until",
        "2027-01-06",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let starts = events(&report, "OperationStarted");
    assert!(!starts.is_empty());
    assert_eq!(starts[0]["time"], "2027-01-04T23:00:00Z");
    assert_eq!(starts[0]["ring"], "pilot");
}

#[test]
fn table_output_shows_a_progress_line_per_ring() {
    let (code, stdout, stderr) = patchwave(&[
        "simulate",
        "-f",
        "examples/",
        "--from",
        "2026-11-30T18:00:00+01:00",
        "--until",
        "2026-12-18",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("pilot   [##################xx]   11/11"),
        "{stdout}"
    );
    assert!(
        stdout.contains("WaitingForApproval: dc01 (security-fast)"),
        "{stdout}"
    );
}

#[test]
fn plan_forecasts_rings_and_deadlines() {
    let (code, stdout, stderr) = patchwave(&[
        "plan",
        "-f",
        "examples/",
        "--at",
        "2026-11-30T18:00:00+01:00",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let security = plan["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "security-fast")
        .unwrap();
    assert_eq!(security["toBeCreated"], true);
    assert_eq!(security["createdAt"], "2026-11-30T17:00:00Z");
    let rings = security["rings"].as_array().unwrap();
    assert_eq!(
        rings
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["pilot", "dept-a", "rest"]
    );
    assert_eq!(rings[0]["forecastStart"], "2026-11-30T18:00:00Z");
    // In the forecast every operation succeeds, so the pilot finishes when k8s-node01 does.
    assert_eq!(rings[0]["forecastCompletion"], "2026-12-01T21:20:00Z");
    let dt_eng_01 = rings[2]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "dt-eng-01")
        .unwrap();
    assert_eq!(dt_eng_01["forecastStart"], Value::Null);
    assert_eq!(dt_eng_01["note"], "held (spec.hold)");
    // The November cumulative update was due before the plan even starts.
    assert_eq!(security["onTime"], false);
    assert!(security["forecastCompletion"].is_string());

    // A held or waiting asset is listed only in the rollouts whose updates it misses: the
    // monthly policy's one-update rollout concerns three assets, none of them in ring rest.
    let one_update = plan["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "monthly-maintenance" && r["updates"] == 1)
        .expect("the monthly policy's second rollout");
    // It waits for the policy's first rollout: the forecast creates it once that one is done.
    let first_monthly = plan["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == "monthly-maintenance" && r["updates"] != 1)
        .expect("the monthly policy's first rollout");
    assert_eq!(one_update["createdAt"], first_monthly["forecastCompletion"]);
    let listed: Vec<&str> = one_update["rings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["assets"].as_array().unwrap())
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["dt-it-01", "lt-it-01", "lt-sales-02"]);
    assert!(plan["neverPatched"].is_array(), "{plan}");
}

/// `plan` (at 2026-11-30) and `simulate` (2026-11-30 to 2026-12-01) over `folder`, each with
/// `extra` arguments: `(command, (exit code, stdout, stderr))`.
fn plan_and_simulate(folder: &Path, extra: &[&str]) -> [(&'static str, (i32, String, String)); 2] {
    let folder = folder.to_str().unwrap();
    let plan = ["plan", "-f", folder, "--at", "2026-11-30"];
    let simulate = [
        "simulate",
        "-f",
        folder,
        "--from",
        "2026-11-30",
        "--until",
        "2026-12-01",
    ];
    [("plan", &plan[..]), ("simulate", &simulate[..])]
        .map(|(command, args)| (command, patchwave(&[args, extra].concat())))
}

/// A ring that cannot be read is a problem in the output, named with its file; the policy
/// that uses it is not told that the ring does not exist.
#[test]
fn an_unreadable_object_is_a_problem_of_plan_and_simulate() {
    let folder = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir("examples").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = if path.ends_with("rings.yaml") {
                text.replacen("approval: Manual", "approval: Sometimes", 1)
            } else {
                text
            };
            std::fs::write(folder.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    for (command, (code, stdout, stderr)) in plan_and_simulate(folder.path(), &["-o", "json"]) {
        // A problem was found: exit status 1, with the output all the same.
        assert_eq!(code, 1, "{command}: {stderr}");
        let output: Value = serde_json::from_str(&stdout).unwrap();
        let problems: Vec<&str> = output["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert!(
            problems.iter().any(|p| p.contains("rings.yaml: Ring/")
                && p.contains("spec.approval")
                && p.ends_with("(this object takes no part)")),
            "{command}: {problems:#?}"
        );
        assert!(
            !problems.iter().any(|p| p.contains("does not exist")),
            "{command}: {problems:#?}"
        );
    }
}

#[test]
fn bad_arguments_are_explained() {
    let (code, _, stderr) = patchwave(&[
        "simulate",
        "-f",
        "examples/",
        "--from",
        "next monday",
        "--until",
        "2026-12-01",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("RFC 3339"), "{stderr}");
    let (code, _, stderr) = patchwave(&[
        "simulate",
        "-f",
        "examples/",
        "--from",
        "2026-12-01",
        "--until",
        "2026-11-01",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("before --from"), "{stderr}");
    let (code, _, stderr) = simulate_a_day_approving("rings/rest");
    assert_eq!(code, 2);
    assert!(stderr.contains("ring/NAME or asset/NAME"), "{stderr}");
}

/// `simulate` over the examples for one day with one `--approve`.
fn simulate_a_day_approving(approval: &str) -> (i32, String, String) {
    patchwave(&[
        "simulate",
        "-f",
        "examples/",
        "--from",
        "2026-12-01",
        "--until",
        "2026-12-02",
        "--approve",
        approval,
    ])
}

#[test]
fn an_approval_of_an_unknown_ring_or_asset_is_refused() {
    let run = simulate_a_day_approving;
    let (code, stdout, stderr) = run("ring/pliot");
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("--approve ring/pliot: no Ring named pliot in the files read")
            && stderr.contains("dept-a, pilot, rest"),
        "{stderr}"
    );
    let (code, _, stderr) = run("asset/dc99");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--approve asset/dc99: no Asset named dc99"),
        "{stderr}"
    );
    let (code, _, stderr) = run("asset/dc01");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn plan_and_simulate_refuse_paths_without_manifests() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "not a manifest").unwrap();
    for (command, (code, _, stderr)) in plan_and_simulate(empty.path(), &[]) {
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(
            stderr.contains("no .yaml, .yml or .json files found in"),
            "{command}: {stderr}"
        );
    }
}

/// One ring of everything, a policy of security updates and `assets` (YAML documents), in a
/// folder with `windows` (YAML documents): namespace t.
fn fleet(assets: &str, windows: &str) -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    let base = "\
apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata: {name: r1, namespace: t}
spec: {selector: {}, maxConcurrent: 10, failureThreshold: 0, bakeTime: 0s}
---
apiVersion: patchwave.dev/v1alpha1
kind: PatchPolicy
metadata: {name: p, namespace: t}
spec:
  updates: {classifications: [Security]}
  rings: [r1]
";
    std::fs::write(folder.path().join("base.yaml"), base).unwrap();
    std::fs::write(folder.path().join("assets.yaml"), assets).unwrap();
    std::fs::write(folder.path().join("windows.yaml"), windows).unwrap();
    folder
}

/// An Asset of namespace t missing openssl, with `labels` (a YAML flow mapping).
fn asset(name: &str, labels: &str) -> String {
    format!(
        "---
apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata: {{name: {name}, namespace: t, labels: {labels}}}
spec: {{osFamily: Linux, criticality: Low}}
status:
  reported:
    availableUpdates:
      - {{id: openssl, version: '3.0.1', classification: Security, severity: Critical, releasedAt: '2026-01-01T00:00:00Z'}}
"
    )
}

const EVERY_NIGHT: &str = "\
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: nightly, namespace: t}
spec: {schedule: '0 0 * * *', duration: 2h, timeZone: UTC}
";

/// One update to one asset: the events say "1 update" and "1 asset".
#[test]
fn events_count_one_thing_in_the_singular() {
    let folder = fleet(&asset("a1", "{}"), EVERY_NIGHT);
    let (code, stdout, stderr) = patchwave(&[
        "simulate",
        "-f",
        folder.path().to_str().unwrap(),
        "--from",
        "2026-03-02",
        "--until",
        "2026-03-03",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("created with 1 update through rings r1"),
        "{stdout}"
    );
    assert!(stdout.contains("ring r1 started: 1 asset\n"), "{stdout}");
}

/// Problems found in the input make `plan` and `simulate` exit with status 1, as the plugin's
/// help promises, and they still print what they found and forecast without the objects in
/// question: a document that is no Kubernetes object, a window reference to nothing.
#[test]
fn plan_and_simulate_exit_1_on_problems_and_print_all_the_same() {
    let not_an_object = format!("{EVERY_NIGHT}---\nname: not an object\n");
    let unknown_window = "\
apiVersion: patchwave.dev/v1alpha1
kind: PatchPolicy
metadata: {name: q, namespace: t}
spec:
  priority: 5
  selector: {matchLabels: {nothing: selected}}
  updates: {classifications: [Security]}
  rings: [r1]
  windows: [no-such-window]
";
    let clean = fleet(&asset("a1", "{}"), EVERY_NIGHT);
    let broken = fleet(&asset("a1", "{}"), &not_an_object);
    let dangling = fleet(
        &format!("{}---\n{unknown_window}", asset("a1", "{}")),
        EVERY_NIGHT,
    );
    for (command, (code, stdout, stderr)) in plan_and_simulate(clean.path(), &[]) {
        assert_eq!(code, 0, "{command}: {stdout}{stderr}");
        assert!(!stdout.contains("problem:"), "{command}: {stdout}");
    }
    for (folder, problem) in [
        (&broken, "not a Kubernetes object"),
        (&dangling, "no-such-window"),
    ] {
        for (command, (code, stdout, stderr)) in plan_and_simulate(folder.path(), &[]) {
            assert_eq!(code, 1, "{command}: {stdout}{stderr}");
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with("problem:") && l.contains(problem)),
                "{command}: {stdout}"
            );
            assert!(stdout.contains("rollout p-"), "{command}: {stdout}");
        }
    }
    // The engine's findings are listed as validate lists them: with the file, once each.
    for (command, (_, stdout, _)) in plan_and_simulate(dangling.path(), &[]) {
        let problems: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("problem:"))
            .collect();
        let file = dangling.path().join("assets.yaml");
        assert_eq!(
            problems,
            [format!(
                "problem: {}: PatchPolicy/q: spec.windows[0]: MaintenanceWindow \
                 \"no-such-window\" does not exist in this namespace; the MaintenanceWindows \
                 are: nightly (line 19) (this object takes no part)",
                file.display()
            )],
            "{command}"
        );
    }
}

/// Windows for [`members_that_never_start`]: `ok` every night for {w: ok}, a Deny window all
/// day every day for {d: "yes"}, a one-off window in 2025 for {w: past}, Saturday mornings
/// inside a weekend freeze for {w: sat}, a one-off window in June 2027 for {w: later}.
const WINDOWS_THAT_HOLD_BACK: &str = "\
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: ok, namespace: t}
spec: {schedule: '0 0 * * *', duration: 2h, timeZone: UTC, selector: {matchLabels: {w: ok}}}
---
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: denyall, namespace: t}
spec: {type: Deny, schedule: '0 0 * * *', duration: 24h, timeZone: UTC, selector: {matchLabels: {d: 'yes'}}}
---
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: past, namespace: t}
spec: {start: '2025-01-01T00:00:00Z', end: '2025-01-02T00:00:00Z', selector: {matchLabels: {w: past}}}
---
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: saturday, namespace: t}
spec: {schedule: '0 6 * * 6', duration: 4h, timeZone: Europe/Zurich, selector: {matchLabels: {w: sat}}}
---
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: weekend-freeze, namespace: t}
spec: {type: Deny, schedule: '0 0 * * 6', duration: 48h, timeZone: Europe/Zurich, selector: {matchLabels: {w: sat}}}
---
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: next-year, namespace: t}
spec: {start: '2027-06-01T00:00:00Z', end: '2027-06-02T00:00:00Z', selector: {matchLabels: {w: later}}}
";

/// `plan` lists every member of a ring, those that never start too, with no start and why
/// not: it used to leave them out (a ring of six showed one asset, a ring whose assets all
/// wait for a window "0 assets").
#[test]
fn members_that_never_start_are_listed_with_the_reason() {
    let assets = [
        ("good", "{w: ok}"),
        ("denied", "{w: ok, d: 'yes'}"),
        ("past", "{w: past}"),
        ("nowin", "{}"),
        ("saturday", "{w: sat}"),
        ("later", "{w: later}"),
    ]
    .map(|(name, labels)| asset(name, labels))
    .concat();
    let folder = fleet(&assets, WINDOWS_THAT_HOLD_BACK);
    let path = folder.path().to_str().unwrap();
    let (code, stdout, stderr) =
        patchwave(&["plan", "-f", path, "--at", "2026-03-02", "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let ring = &plan["rollouts"][0]["rings"][0];
    let notes: BTreeMap<&str, (&Value, &str)> = ring["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let note = a["note"].as_str().unwrap_or_default();
            (a["name"].as_str().unwrap(), (&a["forecastStart"], note))
        })
        .collect();
    let horizon = "no start before the forecast horizon (2026-08-29 00:00Z): ";
    let expected = [
        ("denied", format!("{horizon}a Deny maintenance window (denyall) is open whenever an Allow window would let it start")),
        ("good", String::new()),
        ("later", format!("{horizon}no maintenance window lets it start before 2027-06-01T00:00:00Z")),
        ("nowin", "no Allow maintenance window selects it".to_owned()),
        ("past", "its only Allow maintenance window, past, ended at 2025-01-02T00:00:00Z and never opens again".to_owned()),
        ("saturday", format!("{horizon}a Deny maintenance window (weekend-freeze) is open whenever an Allow window would let it start")),
    ];
    assert_eq!(
        notes
            .iter()
            .map(|(name, (_, note))| (*name, note.to_string()))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(name, note)| (*name, note.clone()))
            .collect::<Vec<_>>(),
        "{ring:#}"
    );
    assert_eq!(notes["good"].0, "2026-03-02T00:00:00Z");
    for name in ["denied", "later", "nowin", "past", "saturday"] {
        assert_eq!(notes[name].0, &Value::Null, "{name}");
    }
    let never: Vec<(&str, &str)> = plan["neverPatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["asset"].as_str().unwrap(), n["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        never,
        [
            ("past", expected[4].1.as_str()),
            ("nowin", expected[3].1.as_str())
        ]
    );

    // The table: the ring's count and a line per member, "-" for no start.
    let (_, table, _) = patchwave(&["plan", "-f", path, "--at", "2026-03-02"]);
    assert!(table.contains("ring r1         6 assets"), "{table}");
    assert!(
        table.contains(
            "    saturday             start -  done -  (no start before the forecast horizon"
        ),
        "{table}"
    );

    // The engine's ring counts the same six members.
    let (code, stdout, stderr) = patchwave(&[
        "simulate",
        "-f",
        path,
        "--from",
        "2026-03-02",
        "--until",
        "2026-03-03",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["rollouts"][0]["rings"][0]["total"], 6);
}

/// An asset only a window of the past selects is never patched because that window ended,
/// not because no window selects it.
#[test]
fn an_asset_whose_window_ended_is_told_so() {
    let assets = format!("{}{}", asset("past", "{w: past}"), asset("nowin", "{}"));
    let folder = fleet(&assets, WINDOWS_THAT_HOLD_BACK);
    let report = {
        let (code, stdout, stderr) = patchwave(&[
            "simulate",
            "-f",
            folder.path().to_str().unwrap(),
            "--from",
            "2026-03-02",
            "--until",
            "2026-03-03",
            "-o",
            "json",
        ]);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<Value>(&stdout).unwrap()
    };
    let messages: Vec<&str> = events(&report, "AssetUnscheduled")
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "past is never patched by p: its only Allow maintenance window, past, ended at 2025-01-02T00:00:00Z and never opens again",
            "nowin is never patched by p: no Allow maintenance window selects it",
        ]
    );
}

/// A member whose only window closes before its turn comes: plan says that the window ended,
/// and the ring line counts it among the members that never start.
#[test]
fn a_member_whose_window_closes_before_its_turn_is_told_so() {
    let assets: String = (1..=11).map(|i| asset(&format!("a{i:02}"), "{}")).collect();
    // Five minutes: the first ten (maxConcurrent 10) start, the eleventh would start when one
    // of them finishes, ten minutes later.
    let short = "\
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: short, namespace: t}
spec: {start: '2026-03-02T01:00:00Z', end: '2026-03-02T01:05:00Z'}
";
    let folder = fleet(&assets, short);
    let (code, stdout, stderr) = patchwave(&[
        "plan",
        "-f",
        folder.path().to_str().unwrap(),
        "--at",
        "2026-03-02T00:00:00Z",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("11 assets (1 never starts)"), "{stdout}");
    assert!(
        stdout.contains(
            "(its only Allow maintenance window, short, ended at 2026-03-02T01:05:00Z and never opens again)"
        ),
        "{stdout}"
    );
}

/// A rollout that cannot go on (its ring was taken out of the policy and deleted) blocks its
/// policy: plan says so instead of leaving the policy's missing updates unexplained.
#[test]
fn plan_shows_a_stalled_rollout_and_what_it_blocks() {
    let folder = fleet(&asset("a1", "{}"), EVERY_NIGHT);
    let rollout = "\
apiVersion: patchwave.dev/v1alpha1
kind: PatchRollout
metadata: {name: p-old, namespace: t}
spec:
  policy: p
  policyGeneration: 1
  revision: old
  updates: [{id: openssl, version: '3.0.1'}]
  rings: [r1, gone]
";
    std::fs::write(folder.path().join("rollout.yaml"), rollout).unwrap();
    let path = folder.path().to_str().unwrap();
    let (code, table, stderr) = patchwave(&["plan", "-f", path, "--at", "2026-03-02"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        table.contains(
            "rollout p-old (policy p, 1 update)\n  deadline -  forecast completion -  no \
             deadline\n  STALLED: ring gone does not exist or is invalid: the rollout cannot go \
             on, and its policy starts no other rollout, until the Ring is back (valid) or the \
             rollout is aborted\n"
        ),
        "{table}"
    );
    let (_, json, _) = patchwave(&["plan", "-f", path, "--at", "2026-03-02", "-o", "json"]);
    let plan: Value = serde_json::from_str(&json).unwrap();
    let rollouts = plan["rollouts"].as_array().unwrap();
    assert_eq!(rollouts.len(), 1, "{json}");
    assert!(
        rollouts[0]["stalled"]
            .as_str()
            .unwrap()
            .starts_with("ring gone does not exist")
    );
}
