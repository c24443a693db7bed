//! The monthly report's content: figures for the period and the one before, a six-period
//! trend, what changed, and what needs a decision now. Rendering (Markdown, HTML, CSV, JSON)
//! lives with the kubectl plugin; this is the one place the content is decided.

use jiff::{Timestamp, ToSpan, Zoned, tz::TimeZone};
use serde::Serialize;

use super::{Figures, Inputs, Period, figures};
use crate::api::rollout::{RingPhase, RolloutPhase};

/// How many periods the trend covers, the reported one included.
pub const TREND_PERIODS: usize = 6;

/// The whole report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Namespaces covered (a company, a site, or all).
    pub namespaces: Vec<String>,
    /// The reported period.
    pub period: Period,
    /// When the report was made.
    pub generated_at: Timestamp,
    /// The one-page answer.
    pub summary: Summary,
    /// Figures of the period.
    pub current: Figures,
    /// Figures of the period before (same length).
    pub previous: Figures,
    /// The key figures, now and before.
    pub changes: Vec<Change>,
    /// Things a person has to decide, now.
    pub decisions: Vec<Decision>,
    /// The key figures of the last [`TREND_PERIODS`] periods, oldest first.
    pub trend: Vec<TrendPoint>,
}

/// Are we compliant, in one sentence and three numbers.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Every asset has reported, and none has an update past its policy's deadline at the end
    /// of the period. `None` (no data) when no asset was managed at the end of the period:
    /// nothing was judged, so it is neither compliant nor not.
    pub compliant: Option<bool>,
    /// One sentence for people who read nothing else.
    pub verdict: String,
    /// Share of compliant assets.
    pub compliance_rate: Option<f64>,
    /// Critical and Security updates installed within 7 days (the guide's target: all).
    pub critical_security_within7: Option<f64>,
    /// Incidents caused by patches.
    pub incidents: u32,
}

/// One key figure now and in the period before.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// What is measured.
    pub figure: String,
    /// This period.
    pub now: Option<f64>,
    /// The period before.
    pub before: Option<f64>,
    /// Whether the change is for the better (`None`: no change or nothing to compare).
    pub better: Option<bool>,
    /// `percent`, `hours` or `count`, for formatting.
    pub unit: &'static str,
}

/// Something a person has to decide.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Namespace.
    pub namespace: String,
    /// What waits.
    pub what: String,
    /// The object concerned (`kind/name`).
    pub object: String,
    /// The command that decides it, where there is one.
    pub command: Option<String>,
}

/// The key figures of one period of the trend.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrendPoint {
    /// The period.
    pub period: Period,
    /// A short label (the month, `2026-11`, or the start date).
    pub label: String,
    /// Patch rate within 7 days.
    pub patch_rate7: Option<f64>,
    /// Patch rate within 30 days.
    pub patch_rate30: Option<f64>,
    /// Compliance at the end of the period.
    pub compliance: Option<f64>,
    /// Mean time to patch, hours.
    pub mean_time_to_patch_hours: Option<f64>,
    /// Incidents caused by patches.
    pub incidents: u32,
}

/// The calendar month `2026-11` in UTC, as a period.
pub fn month(text: &str) -> Result<Period, String> {
    let date: jiff::civil::Date = format!("{text}-01")
        .parse()
        .map_err(|e| format!("--month {text:?}: expected YYYY-MM ({e})"))?;
    let start = date
        .to_zoned(TimeZone::UTC)
        .map_err(|e| format!("--month {text:?}: {e}"))?;
    let end = start
        .checked_add(1.month())
        .map_err(|e| format!("--month {text:?}: {e}"))?;
    Ok(Period {
        from: start.timestamp(),
        to: end.timestamp(),
    })
}

/// The last full calendar month before `now` (UTC): what "the monthly report" means.
pub fn last_month(now: Timestamp) -> Period {
    let zoned = Zoned::new(now, TimeZone::UTC);
    let first = zoned
        .date()
        .first_of_month()
        .to_zoned(TimeZone::UTC)
        .unwrap_or_else(|_| zoned.clone());
    let start = first
        .checked_sub(1.month())
        .unwrap_or_else(|_| first.clone());
    Period {
        from: start.timestamp(),
        to: first.timestamp(),
    }
}

fn label(period: &Period) -> String {
    let from = Zoned::new(period.from, TimeZone::UTC);
    let is_month = from.day() == 1
        && from.hour() == 0
        && from
            .checked_add(1.month())
            .is_ok_and(|end| end.timestamp() == period.to);
    if is_month {
        from.strftime("%Y-%m").to_string()
    } else {
        from.strftime("%Y-%m-%d").to_string()
    }
}

fn previous_month_aware(period: &Period) -> Period {
    // Calendar months have different lengths: step back by a month when the period is one.
    let from = Zoned::new(period.from, TimeZone::UTC);
    if label(period).len() == 7
        && let Ok(start) = from.checked_sub(1.month())
    {
        return Period {
            from: start.timestamp(),
            to: period.from,
        };
    }
    period.previous()
}

fn change(
    figure: &str,
    now: Option<f64>,
    before: Option<f64>,
    higher_is_better: bool,
    unit: &'static str,
) -> Change {
    let better = match (now, before) {
        (Some(n), Some(b)) if (n - b).abs() > f64::EPSILON => Some((n > b) == higher_is_better),
        _ => None,
    };
    Change {
        figure: figure.to_owned(),
        now,
        before,
        better,
        unit,
    }
}

/// Builds the report for `period` over `inputs` (of `namespaces`), as of `now`.
pub fn build(
    inputs: Inputs<'_>,
    namespaces: Vec<String>,
    period: Period,
    now: Timestamp,
) -> Report {
    let current = figures(inputs, period);
    let before = previous_month_aware(&period);
    let previous = figures(inputs, before);

    let mut trend = Vec::with_capacity(TREND_PERIODS);
    let mut cursor = period;
    for _ in 0..TREND_PERIODS {
        let f = if cursor == period {
            current.clone()
        } else if cursor == before {
            previous.clone()
        } else {
            figures(inputs, cursor)
        };
        trend.push(TrendPoint {
            label: label(&cursor),
            period: cursor,
            patch_rate7: f.patch_rate.within7.rate,
            patch_rate30: f.patch_rate.within30.rate,
            compliance: f.compliance.rate,
            mean_time_to_patch_hours: f.time_to_patch.mean_hours,
            incidents: f.incidents.total,
        });
        cursor = previous_month_aware(&cursor);
    }
    trend.reverse();

    // Counts of a period in which no asset was managed are no figures to compare with (0
    // incidents there is no improvement to be worse than).
    let before_count = |n: u32| (previous.assets > 0).then(|| f64::from(n));
    let changes = vec![
        change(
            "Compliant assets",
            current.compliance.rate,
            previous.compliance.rate,
            true,
            "percent",
        ),
        change(
            "Critical and security updates within 7 days",
            current.critical_security_within7.rate,
            previous.critical_security_within7.rate,
            true,
            "percent",
        ),
        change(
            "Patch rate within 30 days",
            current.patch_rate.within30.rate,
            previous.patch_rate.within30.rate,
            true,
            "percent",
        ),
        change(
            "Mean time to patch",
            current.time_to_patch.mean_hours,
            previous.time_to_patch.mean_hours,
            false,
            "hours",
        ),
        change(
            "Overdue updates",
            Some(f64::from(current.overdue)),
            before_count(previous.overdue),
            false,
            "count",
        ),
        change(
            "Incidents caused by patches",
            Some(f64::from(current.incidents.total)),
            before_count(previous.incidents.total),
            false,
            "count",
        ),
    ];

    let percent = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{:.0}%", r * 100.0));
    // Assets without a report cannot be shown compliant; the verdict says so rather than
    // letting an empty inventory pass for a patched one.
    let unreported = match current.compliance.unreported {
        0 => None,
        n => Some(format!(
            "{n} asset(s) have never reported, so what they miss is unknown"
        )),
    };
    // Nothing managed: no data, rather than a compliance nobody could have checked.
    let compliant =
        (current.compliance.assets > 0).then(|| current.overdue == 0 && unreported.is_none());
    let verdict = match (compliant, current.overdue, unreported) {
        (None, _, _) => "No data: no asset was managed at the end of the period, so there is \
             nothing to judge."
            .to_owned(),
        (_, 0, None) => format!(
            "Compliant: no asset has an update past its deadline; {}.",
            match current.critical_security_within7.rate {
                Some(rate) => format!(
                    "{} of critical and security updates were installed within 7 days",
                    percent(Some(rate))
                ),
                None =>
                    "no critical or security update reached its 7-day mark in the period".to_owned(),
            }
        ),
        (_, 0, Some(unreported)) => format!(
            "Not compliant: {unreported}; no reporting asset has an update past its deadline; {} of assets are compliant.",
            percent(current.compliance.rate)
        ),
        (_, overdue, unreported) => format!(
            "Not compliant: {overdue} update(s) on {} asset(s) are past their deadline{}; {} of assets are compliant.",
            current.compliance.overdue(),
            unreported.map(|u| format!("; {u}")).unwrap_or_default(),
            percent(current.compliance.rate)
        ),
    };
    let summary = Summary {
        compliant,
        verdict,
        compliance_rate: current.compliance.rate,
        critical_security_within7: current.critical_security_within7.rate,
        incidents: current.incidents.total,
    };

    Report {
        decisions: decisions(inputs, &current),
        namespaces,
        period,
        generated_at: now,
        summary,
        current,
        previous,
        changes,
        trend,
    }
}

/// What waits for a person now: halted rollouts, manual approvals, overdue critical updates,
/// silent agents and assets that are never patched.
fn decisions(inputs: Inputs<'_>, current: &Figures) -> Vec<Decision> {
    let mut out = Vec::new();
    for &rollout in inputs.rollouts {
        let (Some(name), Some(status)) = (rollout.metadata.name.as_deref(), &rollout.status) else {
            continue;
        };
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        if status.phase == RolloutPhase::Halted {
            for ring in status.rings.iter().filter(|r| r.phase == RingPhase::Halted) {
                out.push(Decision {
                    namespace: namespace.clone(),
                    what: format!(
                        "Rollout halted in ring {}: {} of {} failed ({}). Resume or abort it.",
                        ring.name,
                        ring.failed,
                        ring.total,
                        ring.failed_assets.join(", ")
                    ),
                    object: format!("patchrollout/{name}"),
                    command: Some(format!(
                        "kubectl patchwave resume {name} --ring {} -n {namespace}",
                        ring.name
                    )),
                });
            }
        }
        for ring in status
            .rings
            .iter()
            // With members listed, the ring waits for their own approvals (their decisions
            // follow), not for its own.
            .filter(|r| r.phase == RingPhase::WaitingForApproval && r.awaiting_approval.is_empty())
        {
            out.push(Decision {
                namespace: namespace.clone(),
                what: format!("Ring {} waits for its manual approval.", ring.name),
                object: format!("patchrollout/{name}"),
                command: Some(format!(
                    "kubectl patchwave approve {name} --ring {} -n {namespace}",
                    ring.name
                )),
            });
        }
    }
    for &asset in inputs.assets {
        let Some(name) = asset.metadata.name.as_deref() else {
            continue;
        };
        let namespace = asset.metadata.namespace.clone().unwrap_or_default();
        let (Some(status), Some(_)) = (asset.status.as_ref(), asset.reported()) else {
            out.push(Decision {
                namespace: namespace.clone(),
                what: format!(
                    "{name} has never reported: no agent runs for it, so what it misses is \
                     unknown and it counts as not compliant. Enrol its agent, or delete the \
                     Asset if the machine is gone."
                ),
                object: format!("asset/{name}"),
                command: Some(format!(
                    "kubectl patchwave enroll {name} -n {namespace} --kubeconfig-out {name}.kubeconfig"
                )),
            });
            continue;
        };
        let what = match status.state.as_deref() {
            Some("WaitingForApproval") => Some(format!(
                "{name} ({:?}) waits for a per-asset approval.",
                asset.spec.criticality
            )),
            Some("Unscheduled") => Some(format!(
                "{name} is never patched: no Allow maintenance window lets it start (none \
                 selects it, or none of those that do opens again)."
            )),
            Some("Unassigned") => Some(format!(
                "{name} is never patched: none of its policy's rings selects it."
            )),
            Some("Unmanaged") => Some(format!(
                "{name} misses updates and no valid policy selects it: nothing patches it. \
                 Fix the policy meant for it (see its Ready condition) or the asset's labels."
            )),
            _ => None,
        };
        if let Some(what) = what {
            out.push(Decision {
                namespace: namespace.clone(),
                what,
                object: format!("asset/{name}"),
                command: None,
            });
        }
        if status
            .conditions
            .iter()
            .any(|c| c.type_ == "Reachable" && c.status == "False")
        {
            out.push(Decision {
                namespace,
                what: format!("{name}'s agent is silent: it cannot be patched until it reports."),
                object: format!("asset/{name}"),
                command: None,
            });
        }
    }
    for overdue in current
        .most_overdue
        .iter()
        .filter(|o| o.severity == crate::api::Severity::Critical)
    {
        out.push(Decision {
            namespace: overdue.namespace.clone(),
            what: format!(
                "Critical update {} on {} is {} day(s) past the deadline of {}: approve, \
                 unhold or schedule it, or record why not.",
                overdue.update, overdue.asset, overdue.days_overdue, overdue.policy
            ),
            object: format!("asset/{}", overdue.asset),
            command: Some(format!(
                "kubectl patchwave status -n {}",
                if overdue.namespace.is_empty() {
                    "NAMESPACE"
                } else {
                    &overdue.namespace
                }
            )),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_labels() {
        let november = month("2026-11").expect("a month");
        assert_eq!(november.from.to_string(), "2026-11-01T00:00:00Z");
        assert_eq!(november.to.to_string(), "2026-12-01T00:00:00Z");
        assert_eq!(label(&november), "2026-11");
        let october = previous_month_aware(&november);
        assert_eq!(october.from.to_string(), "2026-10-01T00:00:00Z");
        assert_eq!(label(&october), "2026-10");
        let now: Timestamp = "2026-11-27T08:00:00Z".parse().expect("a time");
        assert_eq!(last_month(now).from.to_string(), "2026-10-01T00:00:00Z");
        assert!(month("2026-13").is_err());
        assert!(month("November").is_err());
    }

    /// The report of November 2026 for namespace acme with only these assets.
    /// An asset created at `created` whose agent reports nothing missing and no history, with
    /// the operator's `state` if given.
    fn quiet_asset(name: &str, created: &str, state: Option<&str>) -> crate::api::Asset {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
            "metadata": {"name": name, "namespace": "acme", "creationTimestamp": created},
            "spec": {"osFamily": "Linux"},
            "status": {"state": state,
                       "reported": {"availableUpdates": [], "installedHistory": []}}
        }))
        .unwrap()
    }

    fn november_of(assets: &[&crate::api::Asset]) -> Report {
        build(
            Inputs {
                assets,
                rollouts: &[],
                policies: &[],
                incidents: &[],
                policy: None,
            },
            vec!["acme".to_owned()],
            month("2026-11").expect("a month"),
            Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn an_empty_company_has_no_data_and_no_decisions() {
        let report = november_of(&[]);
        assert_eq!(report.summary.compliant, None);
        assert_eq!(
            report.summary.verdict,
            "No data: no asset was managed at the end of the period, so there is nothing to judge."
        );
        assert!(report.decisions.is_empty());
        assert_eq!(report.trend.len(), TREND_PERIODS);
        assert_eq!(report.trend[0].label, "2026-06");
        assert_eq!(report.trend[5].label, "2026-11");
    }

    /// A month before which nothing was managed gives no counts to compare with.
    #[test]
    fn counts_are_not_compared_with_a_month_without_assets() {
        let asset = quiet_asset("a1", "2026-11-10T00:00:00Z", None);
        let report = november_of(&[&asset]);
        for figure in ["Overdue updates", "Incidents caused by patches"] {
            let change = report.changes.iter().find(|c| c.figure == figure).unwrap();
            assert_eq!(change.now, Some(0.0), "{figure}");
            assert_eq!(change.before, None, "{figure}");
            assert_eq!(change.better, None, "{figure}");
        }
    }

    /// The decision an asset's state asks for. An unscheduled asset's holds for both causes: no
    /// window selects it, or the windows that do never open again (a one-off window that has
    /// ended). An asset nothing patches (its policy is invalid, or none selects it) showed as
    /// up to date before it had a state of its own.
    #[test]
    fn assets_that_are_never_patched_are_decisions() {
        for (state, decision) in [
            (
                "Unscheduled",
                "kiosk is never patched: no Allow maintenance window lets it start (none selects \
                 it, or none of those that do opens again).",
            ),
            (
                "Unmanaged",
                "kiosk misses updates and no valid policy selects it: nothing patches it. Fix \
                 the policy meant for it (see its Ready condition) or the asset's labels.",
            ),
        ] {
            let asset = quiet_asset("kiosk", "2026-10-01T00:00:00Z", Some(state));
            let report = november_of(&[&asset]);
            let whats: Vec<&str> = report.decisions.iter().map(|d| d.what.as_str()).collect();
            assert_eq!(whats, [decision], "{state}");
        }
    }

    #[test]
    fn a_compliant_company_without_critical_updates_says_so_in_words() {
        let asset = quiet_asset("a1", "2026-10-01T00:00:00Z", None);
        let report = november_of(&[&asset]);
        assert_eq!(report.summary.compliant, Some(true));
        assert_eq!(
            report.summary.verdict,
            "Compliant: no asset has an update past its deadline; no critical or security update \
             reached its 7-day mark in the period."
        );
    }
}
