//! Ring: one wave of a rollout (pilot, a department, the rest).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, IntOrPercent, LabelSelector};

/// One wave of a rollout: which assets, how many at once, how many failures are tolerated,
/// how long to wait before the next wave, and whether a person must approve the start.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "patchwave.dev",
    version = "v1alpha1",
    kind = "Ring",
    doc = "A Ring is one wave of a rollout (pilot, a department, the rest): the assets it selects, how many are patched at once, how many failures halt the rollout, the bake time before the next wave, and whether a person approves its start.",
    namespaced,
    status = "RingStatus",
    shortname = "rg",
    category = "patchwave",
    printcolumn(
        name = "Size",
        type_ = "integer",
        json_path = ".status.size",
        description = "Assets selected by this ring"
    ),
    printcolumn(
        name = "Max-Concurrent",
        type_ = "string",
        json_path = ".spec.maxConcurrent"
    ),
    printcolumn(
        name = "Failure-Threshold",
        type_ = "string",
        json_path = ".spec.failureThreshold"
    ),
    printcolumn(name = "Bake", type_ = "string", json_path = ".spec.bakeTime"),
    printcolumn(name = "Approval", type_ = "string", json_path = ".spec.approval"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
// `cel`: the same rules can be evaluated without a cluster (`RingSpec::validate_cel`).
#[x_kube(cel)]
#[serde(rename_all = "camelCase")]
pub struct RingSpec {
    /// Selects the assets of this ring by label (required; `{}` selects every asset in the
    /// namespace). An asset selected by several rings of a policy belongs to the first of them
    /// in the policy's `rings` list.
    pub selector: LabelSelector,

    /// Most assets of this ring with an operation in flight at once, counting the operations
    /// of every policy's rollout through the ring: an integer of at least 1, or a percentage
    /// from 1% to 100% of the ring's members in the rollout that starts one (the assets of
    /// the ring that miss one of its updates; rounded up, minimum 1). Default 1.
    #[x_kube(validation = Rule::new("string(self).matches('^([1-9][0-9]*|(100|[1-9][0-9]?)%)$')").message("maxConcurrent must be an integer of at least 1 or a percentage from 1% to 100%"))]
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: Option<IntOrPercent>,

    /// The rollout halts as soon as this ring's failed count is greater than this: an integer
    /// of at least 0 (0 halts at the first failure, 2 at the third), or a percentage from 0%
    /// to 100% of the ring's members in the rollout (the assets of the ring that miss one of
    /// its updates; rounded down). An operation with no result within the
    /// policy's operation timeout counts as failed. Default 10%.
    #[x_kube(validation = Rule::new("string(self).matches('^([0-9]+|(100|[1-9]?[0-9])%)$')").message("failureThreshold must be an integer of at least 0 or a percentage from 0% to 100%"))]
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: Option<IntOrPercent>,

    /// After this ring's last operation finished, the next ring waits this long (soak time),
    /// as a duration such as "30m", "24h" or "1h30m". A failure or health regression reported
    /// during the bake still counts against this ring. Default 0s.
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')").message("bakeTime must be a duration such as 30m, 24h or 1h30m"))]
    #[schemars(length(max = 32))]
    #[serde(default = "default_bake_time")]
    pub bake_time: String,

    /// Automatic: the ring starts as soon as the previous ring completed and baked.
    /// Manual: it also waits until the ring is approved on the PatchRollout
    /// (an entry `{name: RING}` in the rollout's `spec.approvedRings`); a ring with nothing
    /// to start in the rollout (no member, or only held ones) has nothing to approve and does
    /// not wait.
    #[serde(default)]
    pub approval: RingApproval,

    /// What this wave is for, in a sentence.
    #[schemars(length(max = 1024))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Whether a ring starts by itself.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RingApproval {
    /// Start as soon as the previous ring completed and baked.
    #[default]
    Automatic,
    /// Start only after a person approved the ring on the rollout.
    Manual,
}

/// Used when `maxConcurrent` is absent or null.
pub const DEFAULT_MAX_CONCURRENT: IntOrPercent = IntOrPercent::Int(1);
/// Used when `failureThreshold` is absent or null.
pub const DEFAULT_FAILURE_THRESHOLD: IntOrPercent = IntOrPercent::Percent(10);

// Option because the CRD marks int-or-string fields nullable: an explicit null must read as
// "default", not fail to deserialize and stall the controller.
fn default_max_concurrent() -> Option<IntOrPercent> {
    Some(DEFAULT_MAX_CONCURRENT)
}

fn default_failure_threshold() -> Option<IntOrPercent> {
    Some(DEFAULT_FAILURE_THRESHOLD)
}

impl RingSpec {
    /// The effective `maxConcurrent`.
    pub fn max_concurrent(&self) -> IntOrPercent {
        self.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT)
    }

    /// The effective `failureThreshold`.
    pub fn failure_threshold(&self) -> IntOrPercent {
        self.failure_threshold.unwrap_or(DEFAULT_FAILURE_THRESHOLD)
    }
}

fn default_bake_time() -> String {
    "0s".to_owned()
}

/// Observed state of a Ring.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RingStatus {
    /// Number of assets that belong to this ring under some policy now (selected by the ring
    /// and by a policy that lists it, and by no earlier ring of that policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i32>,
    /// Ready (the spec is valid and the selector resolved), with observedGeneration.
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(field: &str, value: serde_json::Value) -> bool {
        let spec = serde_json::json!({"selector": {}, field: value});
        RingSpec::validate_cel(&spec, None).is_ok()
    }

    #[test]
    fn int_or_percent_rules_hold_without_a_cluster() {
        for ok in [
            serde_json::json!(1),
            serde_json::json!(250),
            serde_json::json!("1%"),
            serde_json::json!("100%"),
        ] {
            assert!(check("maxConcurrent", ok.clone()), "{ok}");
        }
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-3),
            serde_json::json!("0%"),
            serde_json::json!("150%"),
            serde_json::json!("half"),
        ] {
            assert!(!check("maxConcurrent", bad.clone()), "{bad}");
        }
        for ok in [
            serde_json::json!(0),
            serde_json::json!(2),
            serde_json::json!("0%"),
            serde_json::json!("10%"),
        ] {
            assert!(check("failureThreshold", ok.clone()), "{ok}");
        }
        for bad in [
            serde_json::json!(-1),
            serde_json::json!("101%"),
            serde_json::json!("a few"),
        ] {
            assert!(!check("failureThreshold", bad.clone()), "{bad}");
        }
    }
}
