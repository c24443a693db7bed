//! The CustomResourceDefinitions generated from the types, and their checked-in YAML form.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{Asset, MaintenanceWindow, PatchPolicy, PatchRollout, Ring};

/// Every CRD of the API, each with the file name it has under `crds/`.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("asset.yaml", Asset::crd()),
        ("ring.yaml", Ring::crd()),
        ("maintenancewindow.yaml", MaintenanceWindow::crd()),
        ("patchpolicy.yaml", PatchPolicy::crd()),
        ("patchrollout.yaml", PatchRollout::crd()),
    ]
}

/// The YAML text of one CRD file: a header saying it is generated, then the CRD.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    let body = serde_yaml::to_string(crd)?;
    Ok(format!(
        "# Generated from the Rust types in src/api by `cargo run --bin patchwave-crdgen`.\n\
         # Do not edit by hand: tests/crds_up_to_date.rs fails when this file is stale.\n\
         {body}"
    ))
}
