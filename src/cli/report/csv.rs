//! The report as one long-format CSV table, `section,group,figure,value`, one row per figure,
//! for spreadsheets and BI tools (RFC 4180: CRLF line ends, fields with a comma, a quote or a
//! line break quoted, quotes doubled).
//!
//! - `section`: what is measured (`patch_rate`, `open`, `compliance`, ...); `group`: `all`, or
//!   `severity:Critical`, `criticality:High`, `policy:NAME`, a period label for `trend`, a
//!   number for listed items; `figure`: the field; `value`: a number (shares between 0 and 1,
//!   hours, counts), a time (RFC 3339), or text. A share without data is an empty value.
//! - Free text that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`)
//!   is prefixed with `'`.

use std::fmt::Write as _;

use super::{AGE_BUCKETS, bucket_counts};
use crate::kpi::report::Report;
use crate::kpi::{AgeBuckets, Compliance, PatchRates, Rate};

/// The header row.
pub const HEADER: &str = "section,group,figure,value";

/// Quotes a field as RFC 4180 wants it.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Free text: defused for spreadsheets, then quoted.
fn text_value(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        field(&format!("'{text}"))
    } else {
        field(text)
    }
}

struct Rows(String);

impl Rows {
    fn raw(&mut self, section: &str, group: &str, figure: &str, value: String) {
        let _ = write!(
            self.0,
            "{},{},{},{}\r\n",
            field(section),
            field(group),
            field(figure),
            value
        );
    }

    fn num(&mut self, section: &str, group: &str, figure: &str, value: impl ToString) {
        self.raw(section, group, figure, value.to_string());
    }

    fn opt(&mut self, section: &str, group: &str, figure: &str, value: Option<f64>) {
        self.raw(
            section,
            group,
            figure,
            value.map(|v| v.to_string()).unwrap_or_default(),
        );
    }

    fn text(&mut self, section: &str, group: &str, figure: &str, value: &str) {
        self.raw(section, group, figure, text_value(value));
    }

    fn rate(&mut self, section: &str, group: &str, prefix: &str, rate: &Rate) {
        self.num(section, group, &format!("{prefix}due"), rate.due);
        self.num(section, group, &format!("{prefix}on_time"), rate.on_time);
        self.opt(section, group, &format!("{prefix}rate"), rate.rate);
    }

    fn rates(&mut self, group: &str, rates: &PatchRates) {
        self.rate("patch_rate", group, "within7_", &rates.within7);
        self.rate("patch_rate", group, "within14_", &rates.within14);
        self.rate("patch_rate", group, "within30_", &rates.within30);
    }

    fn buckets(&mut self, group: &str, buckets: &AgeBuckets) {
        for ((_, name), count) in AGE_BUCKETS.iter().zip(bucket_counts(buckets)) {
            self.num("open", group, name, count);
        }
        self.num("open", group, "total", buckets.total());
    }

    fn compliance(&mut self, group: &str, c: &Compliance) {
        self.num("compliance", group, "assets", c.assets);
        self.num("compliance", group, "compliant", c.compliant);
        self.num("compliance", group, "unreported", c.unreported);
        self.opt("compliance", group, "rate", c.rate);
    }
}

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut rows = Rows(format!("{HEADER}\r\n"));
    let f = &report.current;

    rows.text("report", "all", "namespaces", &report.namespaces.join(" "));
    rows.num("report", "all", "period_from", report.period.from);
    rows.num("report", "all", "period_to", report.period.to);
    rows.num("report", "all", "generated_at", report.generated_at);
    rows.num("report", "all", "assets", f.assets);

    // No data (nothing managed): an empty value, as for every figure without data.
    rows.raw(
        "summary",
        "all",
        "compliant",
        report
            .summary
            .compliant
            .map(|c| c.to_string())
            .unwrap_or_default(),
    );
    rows.text("summary", "all", "verdict", &report.summary.verdict);
    rows.opt(
        "summary",
        "all",
        "compliance_rate",
        report.summary.compliance_rate,
    );
    rows.opt(
        "summary",
        "all",
        "critical_security_within7",
        report.summary.critical_security_within7,
    );
    rows.num("summary", "all", "incidents", report.summary.incidents);

    for change in &report.changes {
        let group = change.figure.as_str();
        rows.opt("change", group, "now", change.now);
        rows.opt("change", group, "before", change.before);
        rows.raw(
            "change",
            group,
            "better",
            change.better.map(|b| b.to_string()).unwrap_or_default(),
        );
        rows.text("change", group, "unit", change.unit);
    }

    for (i, decision) in report.decisions.iter().enumerate() {
        let group = (i + 1).to_string();
        rows.text("decision", &group, "namespace", &decision.namespace);
        rows.text("decision", &group, "object", &decision.object);
        rows.text("decision", &group, "what", &decision.what);
        rows.text(
            "decision",
            &group,
            "command",
            decision.command.as_deref().unwrap_or_default(),
        );
    }

    for point in &report.trend {
        let group = point.label.as_str();
        rows.num("trend", group, "period_from", point.period.from);
        rows.num("trend", group, "period_to", point.period.to);
        rows.opt("trend", group, "patch_rate7", point.patch_rate7);
        rows.opt("trend", group, "patch_rate30", point.patch_rate30);
        rows.opt("trend", group, "compliance", point.compliance);
        rows.opt(
            "trend",
            group,
            "mean_time_to_patch_hours",
            point.mean_time_to_patch_hours,
        );
        rows.num("trend", group, "incidents", point.incidents);
    }

    rows.rates("all", &f.patch_rate);
    for (severity, rates) in &f.patch_rate_by_severity {
        rows.rates(&format!("severity:{severity}"), rates);
    }
    for (criticality, rates) in &f.patch_rate_by_criticality {
        rows.rates(&format!("criticality:{criticality}"), rates);
    }
    rows.rate(
        "critical_security_within7",
        "all",
        "",
        &f.critical_security_within7,
    );

    let ttp = &f.time_to_patch;
    rows.num("time_to_patch", "all", "installed", ttp.installed);
    rows.opt("time_to_patch", "all", "mean_hours", ttp.mean_hours);
    rows.opt("time_to_patch", "all", "median_hours", ttp.median_hours);
    rows.num(
        "time_to_patch",
        "all",
        "without_release_date",
        ttp.without_release_date,
    );

    rows.buckets("all", &f.open);
    for (severity, buckets) in &f.open_by_severity {
        rows.buckets(&format!("severity:{severity}"), buckets);
    }

    rows.num("overdue", "all", "count", f.overdue);
    for (severity, n) in &f.overdue_by_severity {
        rows.num("overdue", &format!("severity:{severity}"), "count", n);
    }
    for (policy, n) in &f.overdue_by_policy {
        rows.num("overdue", &format!("policy:{policy}"), "count", n);
    }
    for (i, o) in f.most_overdue.iter().enumerate() {
        let group = (i + 1).to_string();
        rows.text("most_overdue", &group, "asset", &o.asset);
        rows.text("most_overdue", &group, "update", &o.update);
        rows.text(
            "most_overdue",
            &group,
            "severity",
            &format!("{:?}", o.severity),
        );
        rows.text("most_overdue", &group, "policy", &o.policy);
        rows.num("most_overdue", &group, "due_at", o.due_at);
        rows.num("most_overdue", &group, "days_overdue", o.days_overdue);
    }

    rows.compliance("all", &f.compliance);
    for (criticality, c) in &f.compliance_by_criticality {
        rows.compliance(&format!("criticality:{criticality}"), c);
    }
    for (i, name) in f.unreported_assets.iter().enumerate() {
        rows.text("unreported_asset", &(i + 1).to_string(), "asset", name);
    }
    for (i, name) in f.non_compliant_assets.iter().enumerate() {
        rows.text("non_compliant_asset", &(i + 1).to_string(), "asset", name);
    }

    let r = &f.rollouts;
    rows.num("rollouts", "all", "created", r.created);
    rows.num("rollouts", "all", "succeeded", r.succeeded);
    rows.num("rollouts", "all", "halted", r.halted);
    rows.num("rollouts", "all", "aborted", r.aborted);
    rows.num("rollouts", "all", "in_progress", r.in_progress);

    let o = &f.operations;
    rows.num("operations", "all", "succeeded", o.succeeded);
    rows.num("operations", "all", "failed", o.failed);
    rows.num("operations", "all", "timed_out", o.timed_out);
    rows.num("operations", "all", "rolled_back", o.rolled_back);
    rows.num("operations", "all", "rollback_failed", o.rollback_failed);

    let i = &f.incidents;
    rows.num("incidents", "all", "failed_operations", i.failed_operations);
    rows.num("incidents", "all", "rollbacks", i.rollbacks);
    rows.num("incidents", "all", "recorded", i.recorded);
    rows.num("incidents", "all", "total", i.total);
    for (n, incident) in i.recorded_list.iter().enumerate() {
        let group = (n + 1).to_string();
        rows.num(
            "recorded_incident",
            &group,
            "occurred_at",
            incident.occurred_at,
        );
        rows.text("recorded_incident", &group, "asset", &incident.asset);
        rows.text("recorded_incident", &group, "rollout", &incident.rollout);
        rows.text("recorded_incident", &group, "impact", &incident.impact);
        rows.text("recorded_incident", &group, "note", &incident.note);
    }
    rows.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(text_value("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(text_value("-1,2"), "\"'-1,2\"");
    }
}
