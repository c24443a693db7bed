//! Vocabulary shared by all kinds: criticality, severity, classification, int-or-percent values,
//! and the time and duration formats the CRD schema accepts.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};

/// API group of every patchwave kind.
pub const GROUP: &str = "patchwave.dev";
/// API version of every patchwave kind.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get patchwave` lists every kind in this category.
pub const CATEGORY: &str = "patchwave";

/// Regular expression for a Go-style duration as accepted by `time.ParseDuration` and CEL's
/// `duration()`, restricted to non-negative values: `90s`, `30m`, `1h30m`, `1.5h`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// How much harm an asset's outage does to the business. Orders patching within a ring
/// (Critical first) and selects which assets need a per-asset approval.
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
pub enum Criticality {
    /// Business stops without it: domain controllers, ERP. Manually approved by default.
    Critical,
    /// Important for a department: file servers, line-of-business servers.
    High,
    /// Ordinary servers and shared machines.
    #[default]
    Medium,
    /// Laptops and desktops of individual users.
    Low,
}

/// Severity of an update, as the vendor rates it (MSRC and Red Hat use these four words;
/// Debian and macOS updates without a rating are `Unspecified`).
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
pub enum Severity {
    /// Exploitable without user interaction; patch within days.
    Critical,
    /// Compromises confidentiality, integrity or availability.
    Important,
    /// Mitigated by configuration or hard to exploit.
    Moderate,
    /// Minimal impact.
    Low,
    /// The vendor gave no rating.
    #[default]
    Unspecified,
}

/// What kind of change an update is. Backends map their own vocabulary onto these
/// (apt security pocket -> Security, dnf updateinfo types, Windows Update classifications).
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
pub enum Classification {
    /// Fixes a vulnerability (usually has CVE ids).
    Security,
    /// A non-security fix the vendor marks as critical (Windows "Critical Updates").
    CriticalFix,
    /// An ordinary bug fix.
    Bugfix,
    /// New functionality or an enhancement.
    Enhancement,
    /// A hardware driver or firmware.
    Driver,
    /// Anti-malware definitions and similar data updates.
    Definition,
    /// A feature or OS version upgrade (Windows feature update, macOS major version).
    FeatureUpgrade,
    /// Anything the backend could not classify.
    #[default]
    Other,
}

/// Operating system family of an asset; selects the agent backend family.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OsFamily {
    /// Windows client or server (Windows Update).
    Windows,
    /// macOS (softwareupdate).
    MacOS,
    /// A Linux distribution (apt, dnf, zypper), including Kubernetes nodes.
    Linux,
}

/// What an operation does to the listed updates.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum OperationAction {
    /// Install exactly the listed updates at the listed versions.
    #[default]
    Install,
    /// Return the listed updates to the versions installed before the rollout.
    Rollback,
}

/// When the agent reboots after installing.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RebootPolicy {
    /// Reboot only if an installed update or the OS says a reboot is required.
    #[default]
    IfRequired,
    /// Never reboot; the asset reports `rebootPending` until someone reboots it.
    Never,
    /// Always reboot after installing, even if nothing asks for it.
    Always,
}

/// A count or a percentage of a group's size, written `3` or `"25%"`.
///
/// The CRD schema marks it `x-kubernetes-int-or-string`; each field using it adds a CEL rule
/// with the range it allows. How a percentage rounds is the field's business
/// (see [`IntOrPercent::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntOrPercent {
    /// An absolute count.
    Int(i64),
    /// A percentage of the group's size (0-100).
    Percent(u8),
}

/// How a percentage of a group is turned into a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Round up (used for concurrency: "25% of 3" is 1, never 0).
    Up,
    /// Round down (used for failure thresholds: "10% of 9" tolerates 0 failures).
    Down,
}

impl IntOrPercent {
    /// The count this value stands for in a group of `size`. Negative counts resolve to 0.
    pub fn resolve(self, size: u64, rounding: Rounding) -> u64 {
        match self {
            IntOrPercent::Int(n) => u64::try_from(n).unwrap_or(0),
            IntOrPercent::Percent(p) => {
                let scaled = size * u64::from(p);
                match rounding {
                    Rounding::Up => scaled.div_ceil(100),
                    Rounding::Down => scaled / 100,
                }
            }
        }
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for IntOrPercent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrPercent::Int(n) => serializer.serialize_i64(*n),
            IntOrPercent::Percent(_) => serializer.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = IntOrPercent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a percentage such as \"25%\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(IntOrPercent::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(IntOrPercent::Int)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let parse_int = || v.trim().parse::<i64>().ok().map(IntOrPercent::Int);
                let parse_percent = || {
                    let digits = v.trim().strip_suffix('%')?;
                    let p: u8 = digits.parse().ok()?;
                    (p <= 100).then_some(IntOrPercent::Percent(p))
                };
                parse_percent().or_else(parse_int).ok_or_else(|| {
                    E::custom(format!(
                        "\"{v}\" is neither an integer nor a percentage between 0% and 100%"
                    ))
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for IntOrPercent {
    fn schema_name() -> Cow<'static, str> {
        "IntOrPercent".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // maxLength bounds the estimated cost of the CEL rules that check the percent form
        // (16 bytes leave room for a mistake such as "12.5%" to reach the rule and its message
        // instead of a bare "Too long"); without it the API server refuses the CRD.
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "maxLength": 16,
        })
    }
}

/// A reference to who did something and when, kept in a resource as its audit trail.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    /// The Kubernetes user who acted (the plugin fills in the caller's identity).
    #[schemars(length(max = 253))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
    /// Why, in a sentence (a change ticket number is a good note).
    #[schemars(length(max = 1024))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Signature {
    /// " by WHO at WHEN", leaving out what the signature does not say: for messages about it.
    pub fn by_at(&self) -> String {
        let mut text = String::new();
        if let Some(by) = &self.by {
            text.push_str(&format!(" by {by}"));
        }
        if let Some(at) = &self.at {
            text.push_str(&format!(" at {}", at.0));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_the_field_says() {
        assert_eq!(IntOrPercent::Percent(25).resolve(3, Rounding::Up), 1);
        assert_eq!(IntOrPercent::Percent(25).resolve(3, Rounding::Down), 0);
        assert_eq!(IntOrPercent::Percent(10).resolve(20, Rounding::Down), 2);
        assert_eq!(IntOrPercent::Percent(100).resolve(7, Rounding::Up), 7);
        assert_eq!(IntOrPercent::Int(4).resolve(2, Rounding::Up), 4);
        assert_eq!(IntOrPercent::Int(-1).resolve(2, Rounding::Up), 0);
    }

    #[test]
    fn int_or_percent_round_trips_through_yaml() {
        let values: Vec<IntOrPercent> = serde_yaml::from_str("[3, '25%', '0%', '7']").unwrap();
        assert_eq!(
            values,
            vec![
                IntOrPercent::Int(3),
                IntOrPercent::Percent(25),
                IntOrPercent::Percent(0),
                IntOrPercent::Int(7)
            ]
        );
        assert_eq!(
            serde_json::to_string(&values).unwrap(),
            r#"[3,"25%","0%",7]"#
        );
        let err = serde_yaml::from_str::<IntOrPercent>("'150%'").unwrap_err();
        assert!(err.to_string().contains("between 0% and 100%"), "{err}");
    }
}
