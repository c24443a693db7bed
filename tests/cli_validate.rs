//! `kubectl patchwave validate`, run as the built binary: the examples are clean, every kind of
//! mistake in `tests/fixtures/validate/broken/` is reported with its file, object and field,
//! JSON output parses, and unreadable paths exit with status 2.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs the plugin in the repository root, so that paths in its output are relative.
fn plugin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn the_examples_are_clean() {
    let output = plugin(&["validate", "-f", "examples/"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));
    // 30 assets, 3 rings, 5 windows, 2 policies; the Namespace and the README are skipped.
    assert_eq!(out, "validated 40 objects in 9 files: no problems\n");
    // `-o table`, as plan and simulate name their output for people, is the text output.
    let table = plugin(&["validate", "-f", "examples/", "-o", "table"]);
    assert_eq!(stdout(&table), out, "{}", stderr(&table));
}

#[test]
fn the_examples_are_clean_as_json_too() {
    let output = plugin(&["validate", "-f", "examples", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["problems"], serde_json::json!([]));
    assert_eq!(json["objects"], 40);
}

/// `(file, object, field, message fragment)` of every problem the broken fixtures hold.
const EXPECTED: [(&str, &str, &str, &str); 13] = [
    (
        "windows.yaml",
        "MaintenanceWindow/bad-cron",
        "spec.schedule",
        "the hour field \"25\" is invalid",
    ),
    (
        "windows.yaml",
        "MaintenanceWindow/unknown-zone",
        "spec.timeZone",
        "unknown time zone \"Europe/Zurik\"",
    ),
    (
        "policies.yaml",
        "PatchPolicy/missing-ring",
        "spec.rings[1]",
        "Ring \"dept-b\" does not exist in this namespace; the Rings are: bad-selector, fine, \
         pilot, rest, typo",
    ),
    (
        "policies.yaml",
        "PatchPolicy/twice",
        "spec.rings[2]",
        "Ring \"pilot\" is listed twice",
    ),
    (
        "policies.yaml",
        "PatchPolicy/no-rings",
        "spec.rings",
        "a policy needs at least one ring",
    ),
    (
        "policies.yaml",
        "PatchPolicy/missing-window",
        "spec.windows[1]",
        "MaintenanceWindow \"weekends\" does not exist",
    ),
    (
        "policies.yaml",
        "PatchPolicy/deny-window",
        "spec.windows[0]",
        "MaintenanceWindow \"freeze\" is a Deny window",
    ),
    (
        "policies.yaml",
        "PatchPolicy/uses-broken-ring",
        "spec.rings[0]",
        "Ring \"too-wide\" exists but could not be read (its own problem says why), so \
         the policy cannot take part",
    ),
    (
        "policies.yaml",
        "PatchPolicy/overlap-b",
        "spec.priority",
        "overlaps PatchPolicy \"overlap-a\" with the same priority 50: both select Asset \
         \"lt-01\"",
    ),
    (
        "rings.yaml",
        "Ring/bad-selector",
        "spec.selector.matchExpressions[0].operator",
        "unknown operator \"Equals\"",
    ),
    (
        "rings.yaml",
        "Ring/too-wide",
        "spec.maxConcurrent",
        "\"150%\" is neither an integer nor a percentage between 0% and 100% (line 43)",
    ),
    (
        "rings.yaml",
        "Ring/typo",
        "spec.failureTreshold",
        "unknown field \"failureTreshold\"; did you mean \"failureThreshold\"?",
    ),
    (
        "parse-error.yaml",
        "document 2",
        "invalid YAML",
        "did not find expected ',' or ']'",
    ),
];

#[test]
fn every_mistake_is_reported_with_file_object_and_field() {
    let output = plugin(&["validate", "-f", "tests/fixtures/validate/broken"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}{}", stderr(&output));
    let lines: Vec<&str> = out.lines().collect();
    for (file, object, field, fragment) in EXPECTED {
        let prefix = format!("tests/fixtures/validate/broken/{file}: {object}: {field}: ");
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with(&prefix) && line.contains(fragment)),
            "no line starts with {prefix:?} and contains {fragment:?}:\n{out}"
        );
    }
    // Nothing else: in particular the policy that uses the unreadable ring `too-wide` is not
    // told that the ring does not exist (only that it takes no part without it), and the
    // valid objects have no problem.
    assert_eq!(lines.len(), EXPECTED.len() + 1, "{out}");
    assert!(!out.contains("\"too-wide\" does not exist"), "{out}");
    assert_eq!(
        lines.last().copied(),
        Some(
            "found 13 problems in 12 objects and 1 document that names no object (validated 20 objects in 5 files)"
        )
    );
}

#[test]
fn json_output_lists_the_problems() {
    let output = plugin(&[
        "validate",
        "--filename",
        "tests/fixtures/validate/broken/",
        "--output",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["objects"], 20);
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), EXPECTED.len());
    for problem in problems {
        for key in [
            "file",
            "document",
            "kind",
            "namespace",
            "name",
            "field",
            "message",
        ] {
            assert!(problem.get(key).is_some(), "{key} missing in {problem}");
        }
    }
    let missing_ring = problems
        .iter()
        .find(|p| p["name"] == "missing-ring")
        .unwrap();
    assert_eq!(
        missing_ring["file"],
        "tests/fixtures/validate/broken/policies.yaml"
    );
    assert_eq!(missing_ring["kind"], "PatchPolicy");
    assert_eq!(missing_ring["namespace"], "broken");
    assert_eq!(missing_ring["field"], "spec.rings[1]");
    assert!(
        missing_ring["message"]
            .as_str()
            .unwrap()
            .starts_with("Ring \"dept-b\" does not exist")
    );
    let parse_error = problems
        .iter()
        .find(|p| p["file"] == "tests/fixtures/validate/broken/parse-error.yaml")
        .unwrap();
    assert_eq!(parse_error["name"], serde_json::Value::Null);
    assert_eq!(parse_error["line"], 19);
    // Without a name, the document number tells which object it is, as the text says.
    assert_eq!(parse_error["document"], 2);
    assert_eq!(
        missing_ring["document"].as_u64().map(|d| d >= 1),
        Some(true)
    );
}

#[test]
fn single_files_can_be_named() {
    let output = plugin(&[
        "validate",
        "-f",
        "tests/fixtures/validate/broken/windows.yaml",
        "tests/fixtures/validate/broken/assets.yaml",
    ]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.ends_with("found 2 problems in 2 objects (validated 6 objects in 2 files)\n"));
}

#[test]
fn standard_input_is_read_for_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .args(["validate", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let manifest = "apiVersion: patchwave.dev/v1alpha1\nkind: Ring\nmetadata: {name: r}\n\
                    spec: {selector: {}, bakeTime: soon}\n";
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), manifest.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with("<stdin>: Ring/r: spec.bakeTime: duration \"soon\""),
        "{}",
        stdout(&output)
    );
}

#[test]
fn an_unreadable_path_is_named_and_exits_2() {
    let output = plugin(&["validate", "-f", "examples/", "-f", "no/such/dir"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(
        err.starts_with("error: cannot read no/such/dir: ") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn a_folder_without_manifests_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = plugin(&["validate", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no .yaml, .yml or .json files found"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    let output = plugin(&["validate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--filename"),
        "{}",
        stderr(&output)
    );

    let output = plugin(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    for fragment in [
        "ring by ring",
        "MaintenanceWindow",
        "validate",
        "kubectl patchwave validate -f",
        "Exit status",
    ] {
        assert!(help.contains(fragment), "{fragment:?} missing in:\n{help}");
    }
    let output = plugin(&["validate", "--help"]);
    assert!(
        stdout(&output).contains("-o, --output <OUTPUT>"),
        "{}",
        stdout(&output)
    );
    assert!(repo("examples").is_dir());
}

/// Offline `validate` catches what the API server rejects: every single-document manifest in
/// tests/invalid (which tests/api_on_cluster.rs applies to a real API server) is reported
/// against each field its `# expect:` lines name. Manifests of several documents are
/// updates of an object (immutable fields, status writes); offline they are the same object
/// twice, which `validate` reports as a duplicate.
#[test]
fn manifests_the_api_server_rejects_are_rejected_offline_too() {
    let mut checked = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("tests/invalid"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let documents = text
            .lines()
            .filter(|l| l.starts_with("apiVersion:"))
            .count();
        // The `# expect:` lines that name a field (the others quote the server's message).
        let fields: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|f| f.trim().trim_start_matches('.').to_owned())
            .filter(|f| {
                ["spec", "status", "metadata"]
                    .iter()
                    .any(|top| f.starts_with(top))
            })
            .collect();
        if fields.is_empty() {
            continue;
        }
        let output = plugin(&["validate", "-f", file.to_str().unwrap()]);
        let out = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{}: {out}", file.display());
        if documents == 1 {
            for field in &fields {
                // The API server may report a list where validate names the entry:
                // spec.rings[2].
                assert!(
                    [": ", "[", "."]
                        .iter()
                        .any(|after| out.contains(&format!(": {field}{after}"))),
                    "{}: expected a problem on {field}, got:\n{out}",
                    file.display()
                );
            }
            checked += 1;
        } else {
            assert!(
                out.contains("is defined twice"),
                "{}: {out}",
                file.display()
            );
        }
    }
    assert!(checked >= 20, "only {checked} manifests checked");
}
