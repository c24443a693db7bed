//! The CRD YAML under crds/ is generated from the Rust types; this fails when it is stale.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::Path;

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
