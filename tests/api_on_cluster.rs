//! The CRDs against a real kube-apiserver: they install, the examples apply, kubectl shows the
//! printer columns and the docs, and every invalid manifest under tests/invalid is rejected
//! with a message naming the offending field.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use patchwave::api::{
    Asset, IncidentImpact, MaintenanceWindow, PatchIncident, PatchPolicy, PatchRollout, Ring,
};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn stdout_of(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `command` until it succeeds (at most 30 tries, a second apart) and returns its stdout.
fn eventually_stdout(command: impl Fn() -> Output, what: &str) -> String {
    let mut last = command();
    for _ in 0..30 {
        if last.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        last = command();
    }
    stdout_of(last, what)
}

#[tokio::test]
async fn crds_install_and_are_listed_in_the_patchwave_category() {
    let env = support::test_env("category").await;
    support::install_crds(repo("crds"));
    let ring: Ring =
        serde_yaml::from_str("metadata: {name: pilot}\nspec: {selector: {}}\n").unwrap();
    env.api::<Ring>()
        .create(&PostParams::default(), &ring)
        .await
        .unwrap();
    let window: MaintenanceWindow = serde_yaml::from_str(
        "metadata: {name: nights}\nspec: {schedule: '0 22 * * 1-5', duration: 6h, timeZone: Europe/Zurich}\n",
    )
    .unwrap();
    env.api::<MaintenanceWindow>()
        .create(&PostParams::default(), &window)
        .await
        .unwrap();

    // Discovery learns the new category a moment after the CRDs are Established.
    let out = eventually_stdout(
        || {
            env.kubectl()
                .args(["get", "patchwave", "-o", "name"])
                .output()
                .unwrap()
        },
        "kubectl get patchwave",
    );
    assert!(out.contains("ring.patchwave.dev/pilot"), "{out}");
    assert!(
        out.contains("maintenancewindow.patchwave.dev/nights"),
        "{out}"
    );

    // Defaults are applied by the API server and read back into the Rust types.
    let stored = env.api::<Ring>().get("pilot").await.unwrap();
    assert_eq!(
        stored.spec.max_concurrent(),
        patchwave::api::IntOrPercent::Int(1)
    );
    assert_eq!(
        stored.spec.failure_threshold(),
        patchwave::api::IntOrPercent::Percent(10)
    );
    assert_eq!(stored.spec.bake_time, "0s");

    // Short names work.
    let out = stdout_of(
        env.kubectl()
            .args(["get", "rg,mw", "-o", "name"])
            .output()
            .unwrap(),
        "kubectl get rg,mw",
    );
    assert!(out.contains("ring.patchwave.dev/pilot"), "{out}");
}

#[tokio::test]
async fn examples_apply_server_side_and_kubectl_tells_the_story() {
    let env = support::test_env("examples").await;
    support::install_crds(repo("crds"));
    let examples = repo("examples");
    stdout_of(
        env.control_plane
            .kubectl()
            .args([
                "apply",
                "--server-side",
                "--field-manager=patchwave-test",
                "-k",
            ])
            .arg(&examples)
            .output()
            .unwrap(),
        "kubectl apply --server-side -k examples/",
    );

    let assets: Api<Asset> = Api::namespaced(env.client.clone(), "acme");
    let count = assets.list(&Default::default()).await.unwrap().items.len();
    assert!(
        count >= 25,
        "examples hold {count} assets, expected at least 25"
    );
    let rings: Api<Ring> = Api::namespaced(env.client.clone(), "acme");
    let ring_names: Vec<String> = rings
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    for ring in ["pilot", "dept-a", "rest"] {
        assert!(
            ring_names.contains(&ring.to_owned()),
            "ring {ring} missing: {ring_names:?}"
        );
    }
    let policies: Api<PatchPolicy> = Api::namespaced(env.client.clone(), "acme");
    assert_eq!(
        policies
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let windows: Api<MaintenanceWindow> = Api::namespaced(env.client.clone(), "acme");
    let windows = windows.list(&Default::default()).await.unwrap().items;
    assert!(
        windows
            .iter()
            .filter(|w| w.spec.type_ == patchwave::api::window::WindowType::Deny)
            .count()
            >= 2
    );

    let table = stdout_of(
        env.control_plane
            .kubectl()
            .args(["get", "assets", "-n", "acme"])
            .output()
            .unwrap(),
        "kubectl get assets",
    );
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "NAME",
        "OS",
        "CRITICALITY",
        "HOLD",
        "MISSING",
        "STATE",
        "REACHABLE",
        "HEARTBEAT",
        "AGE",
    ] {
        assert!(
            header.contains(column),
            "column {column} missing in: {header}"
        );
    }
    assert!(table.contains("Critical"), "{table}");
    let table = stdout_of(
        env.control_plane
            .kubectl()
            .args(["get", "patchpolicies", "-n", "acme"])
            .output()
            .unwrap(),
        "kubectl get patchpolicies",
    );
    for column in ["PRIORITY", "RINGS", "SUSPENDED", "ROLLOUT", "READY"] {
        assert!(
            table.contains(column),
            "column {column} missing in: {table}"
        );
    }
    let table = stdout_of(
        env.control_plane
            .kubectl()
            .args(["get", "mw", "-n", "acme"])
            .output()
            .unwrap(),
        "kubectl get mw",
    );
    assert!(
        table.contains("Europe/Zurich") && table.contains("Deny"),
        "{table}"
    );
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_docs() {
    let env = support::test_env("explain").await;
    support::install_crds(repo("crds"));
    let explain = |path: &str| {
        stdout_of(
            env.control_plane
                .kubectl()
                .args(["explain", path])
                .output()
                .unwrap(),
            &format!("kubectl explain {path}"),
        )
        // kubectl wraps the text at its own width.
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
    };
    let text = explain("ring.spec.maxConcurrent");
    assert!(text.contains("rounded up, minimum 1"), "{text}");
    let text = explain("maintenancewindow.spec.timeZone");
    assert!(text.contains("IANA time zone"), "{text}");
    let text = explain("patchpolicy.spec.rings");
    assert!(text.contains("Unassigned"), "{text}");
    let text = explain("asset");
    assert!(text.contains("one managed endpoint"), "{text}");
    let text = explain("patchrollout.status.phase");
    assert!(text.contains("WaitingForWindow"), "{text}");
    let text = explain("patchincident");
    assert!(text.contains("It is an audit record"), "{text}");
}

/// One invalid manifest: the documents before the last are created (and must succeed), the
/// last must be rejected. A last document with `status` is written to the status subresource.
struct InvalidCase {
    file: String,
    setup: Vec<DynamicObject>,
    offender: DynamicObject,
    expected: Vec<String>,
}

fn load_invalid_cases() -> Vec<InvalidCase> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("tests/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let expected: Vec<String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# expect: "))
                .map(str::to_owned)
                .collect();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!expected.is_empty(), "{file} has no `# expect:` line");
            let mut docs: Vec<DynamicObject> = serde_yaml::Deserializer::from_str(&text)
                .map(|doc| serde_yaml::with::singleton_map_recursive::deserialize(doc).unwrap())
                .collect();
            let offender = docs.pop().unwrap();
            InvalidCase {
                file,
                setup: docs,
                offender,
                expected,
            }
        })
        .collect()
}

fn api_for(client: &Client, namespace: &str, object: &DynamicObject) -> Api<DynamicObject> {
    let types = object.types.as_ref().expect("apiVersion and kind");
    let (group, version) = types.api_version.split_once('/').unwrap();
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &types.kind)),
    )
}

#[tokio::test]
async fn every_invalid_manifest_is_rejected_naming_the_field() {
    let env = support::test_env("invalid").await;
    support::install_crds(repo("crds"));
    let cases = load_invalid_cases();
    assert!(cases.len() >= 20, "only {} invalid manifests", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        for object in &case.setup {
            let api = api_for(&env.client, &env.namespace, object);
            api.create(&PostParams::default(), object)
                .await
                .unwrap_or_else(|e| panic!("{}: setup object must be valid: {e}", case.file));
        }
        let api = api_for(&env.client, &env.namespace, &case.offender);
        let name = case.offender.metadata.name.clone().unwrap();
        let writes_status = case.offender.data.get("status").is_some();
        let result = if case.setup.is_empty() {
            let apply = PatchParams::apply("patchwave-test").force();
            api.patch(&name, &apply, &Patch::Apply(&case.offender))
                .await
        } else {
            // An update replaces the whole object (or its status), so that removing a field
            // is really a removal, as with `kubectl replace`.
            let current = api.get(&name).await.unwrap();
            let mut offender = case.offender.clone();
            offender.metadata.resource_version = current.metadata.resource_version;
            if writes_status {
                api.replace_status(&name, &PostParams::default(), &offender)
                    .await
            } else {
                api.replace(&name, &PostParams::default(), &offender).await
            }
        };
        match result {
            Ok(_) => failures.push(format!("{}: accepted, but must be rejected", case.file)),
            Err(kube::Error::Api(status)) => {
                let message = status.message;
                for want in &case.expected {
                    if !message.contains(want.as_str()) {
                        failures.push(format!(
                            "{}: message lacks {want:?}:\n    {message}",
                            case.file
                        ));
                    }
                }
            }
            Err(other) => failures.push(format!("{}: unexpected error {other}", case.file)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn legitimate_changes_to_a_rollout_pass_its_transition_rules() {
    let env = support::test_env("rollout-controls").await;
    support::install_crds(repo("crds"));
    let rollout: PatchRollout = serde_yaml::from_str(
        "metadata: {name: r1}\nspec: {policy: p, revision: h1, rings: [pilot, rest], updates: [{id: openssl, version: '3.0.15'}]}\n",
    )
    .unwrap();
    let api = env.api::<PatchRollout>();
    api.create(&PostParams::default(), &rollout).await.unwrap();
    let controls = serde_json::json!({"spec": {
        "approvedRings": [{"name": "rest", "by": "alice", "note": "CHG-42"}],
        "paused": true,
        "resumes": [{"ring": "pilot", "halt": 1, "by": "bob"}],
        "abort": {"by": "carol", "note": "vendor pulled the patch"}
    }});
    let patched = api
        .patch("r1", &PatchParams::default(), &Patch::Merge(&controls))
        .await
        .unwrap();
    assert!(patched.spec.paused);
    assert_eq!(patched.spec.approved_rings[0].name, "rest");
    assert_eq!(
        patched.spec.approved_rings[0].signature.by.as_deref(),
        Some("alice")
    );
    assert!(patched.spec.abort.is_some());
}

#[tokio::test]
async fn an_incident_keeps_its_spec_but_takes_labels() {
    let env = support::test_env("incident").await;
    support::install_crds(repo("crds"));
    let incident: PatchIncident = serde_yaml::from_str(
        "metadata: {name: dc01-20261130190211}\nspec: {asset: dc01, rollout: r1, note: INC-2231 DNS down}\n",
    )
    .unwrap();
    let api = env.api::<PatchIncident>();
    let created = api.create(&PostParams::default(), &incident).await.unwrap();
    assert_eq!(created.spec.impact, IncidentImpact::Medium, "the default");
    // Metadata is not part of the record: labels for selection may be added later.
    let labelled = api
        .patch(
            "dc01-20261130190211",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"metadata": {"labels": {"team": "it"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.spec, created.spec);
    // An identical spec is no change either (a re-apply of the same manifest passes).
    api.patch(
        "dc01-20261130190211",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({"spec": {"note": "INC-2231 DNS down"}})),
    )
    .await
    .unwrap();
    let out = stdout_of(
        env.kubectl()
            .args(["get", "pinc", "-o", "name"])
            .output()
            .unwrap(),
        "kubectl get pinc",
    );
    assert!(
        out.contains("patchincident.patchwave.dev/dc01-20261130190211"),
        "{out}"
    );
}
