//! The CustomResourceDefinitions generated from the types, and their checked-in YAML form.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{Asset, MaintenanceWindow, PatchIncident, PatchPolicy, PatchRollout, Ring};

/// Every CRD of the API, each with the file name it has under `crds/`.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("asset.yaml", reflow_descriptions(Asset::crd())),
        ("ring.yaml", reflow_descriptions(Ring::crd())),
        (
            "maintenancewindow.yaml",
            reflow_descriptions(MaintenanceWindow::crd()),
        ),
        ("patchpolicy.yaml", reflow_descriptions(PatchPolicy::crd())),
        (
            "patchrollout.yaml",
            reflow_descriptions(PatchRollout::crd()),
        ),
        (
            "patchincident.yaml",
            reflow_descriptions(PatchIncident::crd()),
        ),
    ]
}

/// Doc comments are wrapped at 100 columns in the source; `kubectl explain` wraps text itself,
/// so the line breaks inside a paragraph are joined (blank lines between paragraphs stay).
fn reflow_descriptions(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    match child {
                        serde_json::Value::String(text) if key == "description" => {
                            *text = reflow(text);
                        }
                        _ => walk(child),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let Some(schema) = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
    else {
        return crd;
    };
    let Ok(mut value) = serde_json::to_value(schema) else {
        return crd;
    };
    walk(&mut value);
    let mut crd = crd;
    if let (Ok(reflowed), Some(version)) =
        (serde_json::from_value(value), crd.spec.versions.first_mut())
        && let Some(validation) = version.schema.as_mut()
    {
        validation.open_api_v3_schema = Some(reflowed);
    }
    crd
}

fn reflow(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
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
