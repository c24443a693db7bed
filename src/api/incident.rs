//! PatchIncident: an incident a person attributes to a patch, kept as an auditable record.
//!
//! Recorded with `kubectl patchwave incident ASSET --rollout NAME --note TEXT`; counted by the
//! KPI "incidents caused by patches". The whole spec is immutable: a correction is a new
//! incident whose note references the old one.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Time;

/// An incident that a person attributes to a patch rollout on one asset.
///
/// It is an audit record: the API server refuses any change to its spec after it was created.
/// To correct one, record a new incident and reference the old one in its note. It has no
/// status; nothing reconciles it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "patchwave.dev",
    version = "v1alpha1",
    kind = "PatchIncident",
    doc = "A PatchIncident is an incident a person attributes to a patch rollout on one asset (recorded with `kubectl patchwave incident`). It is an audit record: its spec cannot be changed once created; to correct it, record a new incident that references it in its note.",
    namespaced,
    shortname = "pinc",
    category = "patchwave",
    printcolumn(name = "Asset", type_ = "string", json_path = ".spec.asset"),
    printcolumn(name = "Rollout", type_ = "string", json_path = ".spec.rollout"),
    printcolumn(name = "Impact", type_ = "string", json_path = ".spec.impact"),
    printcolumn(name = "Reported-By", type_ = "string", json_path = ".spec.reportedBy"),
    printcolumn(name = "Occurred", type_ = "date", json_path = ".spec.occurredAt"),
    printcolumn(
        name = "Note",
        type_ = "string",
        json_path = ".spec.note",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
// `cel`: the same rules can be evaluated without a cluster (`PatchIncidentSpec::validate_cel`).
#[x_kube(
    cel,
    validation = Rule::new("self == oldSelf").message("an incident is an audit record and cannot be changed; to correct it, record a new incident that references this one in its note"),
)]
#[serde(rename_all = "camelCase")]
pub struct PatchIncidentSpec {
    /// Name of the Asset (in this namespace) on which the incident happened.
    #[schemars(length(min = 1, max = 253))]
    pub asset: String,

    /// Name of the PatchRollout (in this namespace) the incident is attributed to.
    #[schemars(length(min = 1, max = 253))]
    pub rollout: String,

    /// What happened, in a few sentences (1 to 2048 characters): the symptom, the ticket number,
    /// what was done about it. A correction of an earlier incident names that incident here.
    #[schemars(length(min = 1, max = 2048))]
    pub note: String,

    /// How badly the incident hurt the business: Low, Medium (default), High or Critical.
    #[serde(default)]
    pub impact: IncidentImpact,

    /// When the incident happened (RFC 3339). The plugin sets it to the time of recording
    /// unless told otherwise (`--at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Time>,

    /// Who recorded the incident: the Kubernetes user name (the plugin fills in the caller's
    /// identity as the API server knows it).
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<String>,

    /// Ids of the updates of the rollout that the person suspects (KB number, advisory,
    /// package name), at most 100. Empty: the rollout as a whole.
    #[schemars(length(max = 100), inner(length(min = 1, max = 128)))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<String>,
}

/// How badly an incident hurt the business.
#[derive(
    Serialize,
    Deserialize,
    JsonSchema,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
)]
pub enum IncidentImpact {
    /// A nuisance: a workaround exists, nobody was stopped.
    Low,
    /// Some people or one service were disrupted for a while.
    #[default]
    Medium,
    /// A department or an important service was down.
    High,
    /// The business stopped: a critical system (domain controller, ERP) was down.
    Critical,
}

impl IncidentImpact {
    /// Every impact, from the least to the most severe.
    pub const ALL: [IncidentImpact; 4] = [
        IncidentImpact::Low,
        IncidentImpact::Medium,
        IncidentImpact::High,
        IncidentImpact::Critical,
    ];

    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentImpact::Low => "Low",
            IncidentImpact::Medium => "Medium",
            IncidentImpact::High => "High",
            IncidentImpact::Critical => "Critical",
        }
    }
}

impl std::fmt::Display for IncidentImpact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> serde_json::Value {
        serde_json::json!({"asset": "dc01", "rollout": "security-fast-1a2b", "note": "DNS down"})
    }

    #[test]
    fn impact_defaults_to_medium() {
        let spec: PatchIncidentSpec = serde_json::from_value(spec()).unwrap();
        assert_eq!(spec.impact, IncidentImpact::Medium);
        assert!(spec.updates.is_empty());
    }

    #[test]
    fn the_spec_cannot_change_once_created() {
        let old = spec();
        assert!(PatchIncidentSpec::validate_cel(&old, Some(&old)).is_ok());
        let mut new = old.clone();
        new["note"] = "DNS down for 2 hours".into();
        let err = PatchIncidentSpec::validate_cel(&new, Some(&old)).unwrap_err();
        assert!(
            format!("{err:?}").contains("audit record"),
            "unexpected error: {err:?}"
        );
    }
}
