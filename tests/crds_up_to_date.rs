//! The CRD YAML under crds/ is generated from the Rust types, and the chart and config/ hold
//! generated copies (of the CRDs, the Grafana dashboard and the agent admission policy); this
//! fails when any of them is stale.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::Path;
use std::process::{Command, Output};

fn crdgen(root: &Path, check: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_patchwave-crdgen"));
    command.arg("--root").arg(root);
    if check {
        command.arg("--check");
    }
    command.output().expect("running patchwave-crdgen")
}

#[test]
fn every_generated_copy_in_the_repository_is_up_to_date() {
    let output = crdgen(Path::new(env!("CARGO_MANIFEST_DIR")), true);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The check is not a formality: in a copy of the inputs, a hand edit, a missing copy and a
/// stray file each fail it, naming the file.
#[test]
fn check_names_a_stale_missing_or_stray_copy() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir().expect("temp dir");
    for source in [
        "config/grafana/patchwave-dashboard.json",
        "config/agent-policy/admission-policy.yaml",
    ] {
        let target = root.path().join(source);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(repo.join(source), &target)
            .unwrap_or_else(|e| panic!("copying {source}: {e}"));
    }
    let generated = crdgen(root.path(), false);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(crdgen(root.path(), true).status.success());

    let stderr = |output: Output| String::from_utf8_lossy(&output.stderr).into_owned();
    // A hand edit of a copy.
    let policy = root
        .path()
        .join("charts/patchwave/files/agent-admission-policy.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, format!("{text}# edited by hand\n")).unwrap();
    let output = crdgen(root.path(), true);
    assert!(!output.status.success());
    assert!(stderr(output).contains("stale: charts/patchwave/files/agent-admission-policy.yaml"));
    // The source changed and the copy did not follow.
    assert!(crdgen(root.path(), false).status.success());
    let dashboard = root.path().join("config/grafana/patchwave-dashboard.json");
    std::fs::write(&dashboard, "{}\n").unwrap();
    let output = crdgen(root.path(), true);
    assert!(stderr(output).contains("stale: charts/patchwave/files/patchwave-dashboard.json"));
    assert!(crdgen(root.path(), false).status.success());
    // A missing CRD copy and a stray one.
    std::fs::remove_file(root.path().join("config/crds/ring.yaml")).unwrap();
    std::fs::write(
        root.path()
            .join("charts/patchwave/files/crds/old-kind.yaml"),
        "kind: CustomResourceDefinition\n",
    )
    .unwrap();
    let message = stderr(crdgen(root.path(), true));
    assert!(
        message.contains("missing: config/crds/ring.yaml"),
        "{message}"
    );
    assert!(
        message.contains("stray: charts/patchwave/files/crds/old-kind.yaml"),
        "{message}"
    );
}

#[test]
fn checked_in_crds_equal_what_the_types_generate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut stale = Vec::new();
    let expected = patchwave::api::crds::all();
    for (file, crd) in &expected {
        let want = patchwave::api::crds::render(crd).unwrap();
        let have = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if have != want {
            stale.push(*file);
        }
    }
    assert!(
        stale.is_empty(),
        "crds/{stale:?} differ from the Rust types: run `cargo run --bin patchwave-crdgen` and commit the result"
    );

    // No stray CRD files that the types no longer produce.
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut generated: Vec<String> = expected.iter().map(|(f, _)| f.to_string()).collect();
    generated.sort();
    assert_eq!(
        on_disk, generated,
        "crds/ holds files the types do not generate"
    );
}

#[test]
fn every_kind_is_namespaced_in_the_patchwave_category_with_status() {
    for (file, crd) in patchwave::api::crds::all() {
        assert_eq!(crd.spec.group, "patchwave.dev", "{file}");
        assert_eq!(crd.spec.scope, "Namespaced", "{file}");
        let categories = crd.spec.names.categories.clone().unwrap_or_default();
        assert!(categories.contains(&"patchwave".to_owned()), "{file}");
        assert!(
            !crd.spec
                .names
                .short_names
                .clone()
                .unwrap_or_default()
                .is_empty(),
            "{file}"
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        // A PatchIncident is an audit record that nothing reconciles: it has no status.
        if file == "patchincident.yaml" {
            assert!(
                version
                    .subresources
                    .as_ref()
                    .is_none_or(|s| s.status.is_none()),
                "{file} has no status subresource"
            );
        } else {
            let subresources = version.subresources.as_ref().expect("subresources");
            assert!(
                subresources.status.is_some(),
                "{file} has a status subresource"
            );
        }
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.len() >= 4),
            "{file} has printer columns"
        );
    }
}
