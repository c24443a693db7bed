//! MaintenanceWindow: when assets may (Allow) or must not (Deny) be patched.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, LabelSelector, Time};

/// A recurring or one-off period in which the selected assets may be patched (Allow) or must
/// not be (Deny: blackout, change freeze, protected server window). Deny always wins.
///
/// An asset may start an operation only while at least one Allow window selecting it is open
/// and no Deny window selecting it is open. An asset no Allow window selects is never patched
/// and is reported as Unscheduled.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "patchwave.dev",
    version = "v1alpha1",
    kind = "MaintenanceWindow",
    doc = "A MaintenanceWindow is a recurring (cron schedule, duration, time zone) or one-off (start, end) period in which the selected assets may be patched (Allow) or must not be (Deny; Deny always wins).",
    namespaced,
    status = "MaintenanceWindowStatus",
    shortname = "mw",
    category = "patchwave",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Duration", type_ = "string", json_path = ".spec.duration"),
    printcolumn(name = "Time-Zone", type_ = "string", json_path = ".spec.timeZone"),
    printcolumn(name = "Open", type_ = "boolean", json_path = ".status.open"),
    // Strings, not dates: kubectl renders a future date as "<invalid>".
    printcolumn(name = "Next-Open", type_ = "string", json_path = ".status.nextOpen"),
    printcolumn(
        name = "Next-Close",
        type_ = "string",
        json_path = ".status.nextClose",
        priority = 1
    ),
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
#[x_kube(
    validation = Rule::new("has(self.schedule) != has(self.start)").message("set either schedule (a recurring window) or start and end (a one-off window), exactly one of the two").field_path(".schedule"),
    validation = Rule::new("!has(self.schedule) || (has(self.duration) && has(self.timeZone))").message("a recurring window (schedule) also needs duration and timeZone").field_path(".schedule"),
    validation = Rule::new("has(self.start) == has(self.end)").message("a one-off window needs both start and end").field_path(".end"),
    validation = Rule::new("!has(self.start) || !has(self.end) || timestamp(self.start) < timestamp(self.end)").message("end must be later than start").field_path(".end"),
    validation = Rule::new("!has(self.duration) || has(self.schedule)").message("duration applies only to recurring windows; a one-off window ends at end").field_path(".duration"),
    validation = Rule::new("!has(self.duration) || duration(self.duration) > duration('0s')").message("duration must be longer than 0s").field_path(".duration"),
    validation = Rule::new("!has(self.cutoff) || !has(self.duration) || duration(self.cutoff) < duration(self.duration)").message("cutoff must be shorter than duration: no operation could ever start").field_path(".cutoff"),
    validation = Rule::new("!has(self.cutoff) || !has(self.start) || !has(self.end) || duration(self.cutoff) < timestamp(self.end) - timestamp(self.start)").message("cutoff must be shorter than the window (end - start): no operation could ever start").field_path(".cutoff"),
)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowSpec {
    /// Allow (default): patching may start while the window is open. Deny: nothing starts while
    /// it is open, whatever Allow windows say.
    #[serde(rename = "type", default)]
    pub type_: WindowType,

    /// Selects the assets the window applies to by label. Empty or absent: every asset in the
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,

    /// Recurring windows: when the window opens, as a 5-field cron expression
    /// (minute hour day-of-month month day-of-week), for example "0 22 * * 1-5" for weeknights
    /// at 22:00. Interpreted in `timeZone`. The API server checks only that it has 5 fields;
    /// `kubectl patchwave validate` and the operator check the expression itself.
    #[x_kube(validation = Rule::new("self.matches('^\\\\s*\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s*$')").message("schedule must be a 5-field cron expression: minute hour day-of-month month day-of-week, for example '0 22 * * 1-5'"))]
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,

    /// Recurring windows: how long the window stays open after each start, as elapsed time
    /// (a duration such as "6h" or "90m"). A window opening before a daylight-saving change
    /// still lasts exactly this long.
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')").message("duration must be a duration such as 6h, 90m or 1h30m"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,

    /// Recurring windows: IANA time zone the schedule is read in, for example "Europe/Zurich".
    /// The API server checks only the shape; `validate` and the operator check that the zone
    /// exists. On a spring-forward day a start inside the skipped hour opens at the first
    /// instant after the gap; on a fall-back day a start in the repeated hour opens once,
    /// at its first occurrence, for an Allow window, and at both for a Deny window (a freeze
    /// holds back through the repeated hour rather than letting operations through).
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$')").message("timeZone must be an IANA time zone name such as Europe/Zurich or UTC"))]
    #[schemars(length(max = 64))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,

    /// One-off windows: when the window opens (RFC 3339, for example
    /// "2026-12-22T00:00:00+01:00").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Time>,

    /// One-off windows: when the window closes; must be later than start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Time>,

    /// No new operation starts later than this before the window closes, so that installs and
    /// reboots finish inside the window. A duration shorter than the window, such as "1h".
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')").message("cutoff must be a duration such as 1h or 30m"))]
    #[schemars(length(max = 32))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<String>,

    /// What the window is for, in a sentence (shown in plans and reports).
    #[schemars(length(max = 1024))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Whether a window permits or forbids patching.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WindowType {
    /// Patching may start while open.
    #[default]
    Allow,
    /// Nothing may start while open; wins over every Allow window.
    Deny,
}

/// Observed state of a MaintenanceWindow.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindowStatus {
    /// Whether the window is open now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<bool>,
    /// When the current occurrence opened (while the window is open) or the next one opens;
    /// absent for a one-off window that has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_open: Option<Time>,
    /// When the current (or next) occurrence closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_close: Option<Time>,
    /// Number of assets the selector matches now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_assets: Option<i32>,
    /// Ready (schedule and time zone are valid), with observedGeneration.
    #[schemars(length(max = 16))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
