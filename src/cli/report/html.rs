//! The report as ONE self-contained HTML file: inline CSS, inline SVG charts ([`super::svg`]),
//! no script, no font, no image and no URL of any kind, and a Content-Security-Policy that
//! forbids fetching anything should a future edit try. It reads on screen and prints on A4:
//! the one-page summary, then a page break, then trends and details.
//!
//! Every text that comes from objects (asset names, notes, policy names) goes through
//! [`escape`].

use std::fmt::Write as _;

use super::svg::{self, AGE_COLOURS, BLUE, GREEN, ORANGE, Series};
use super::{
    AGE_BUCKETS, CRITICALITIES, SEVERITIES, bucket_counts, change_trend, change_value, hours,
    now_and_before_labels, ordered, percent, period_title, time,
};
use crate::cli::output::plural;
use crate::kpi::report::Report;
use crate::kpi::{Compliance, PatchRates, Rate};

/// How many decisions page one lists; the rest follow in the details.
const DECISIONS_ON_PAGE_ONE: usize = 6;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: #1a1a1a; line-height: 1.45; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 190mm; margin: 0 auto; padding: 28px 28px 48px; }
h1 { font-size: 27px; margin: 0 0 2px; }
h2 { font-size: 20px; border-bottom: 2px solid #333; padding-bottom: 3px; margin: 30px 0 10px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
p { margin: 6px 0 10px; }
.meta { color: #555; font-size: 13px; margin: 0 0 16px; }
.verdict { border-left: 10px solid #888; padding: 10px 16px; margin: 14px 0 16px; }
.verdict.ok { border-color: #2ca02c; background: #eef8ee; }
.verdict.bad { border-color: #d62728; background: #fdeeee; }
.verdict strong { display: block; font-size: 22px; }
.tiles { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; margin: 0 0 14px; }
.tile { border: 1px solid #ccc; border-radius: 6px; padding: 8px 12px; }
.tile .value { font-size: 30px; font-weight: 700; }
.tile .label { font-size: 12.5px; color: #444; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 14px; font-size: 13.5px; }
th, td { border-bottom: 1px solid #ddd; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; }
.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n, td.t, td:first-child { white-space: nowrap; }
.better { color: #1a7f1a; font-weight: 600; }
.worse { color: #c62828; font-weight: 600; }
.same { color: #555; }
ul.decisions { padding-left: 20px; margin: 6px 0; }
ul.decisions li { margin: 0 0 7px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 12.5px; background: #f3f3f3; padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
figure { margin: 10px 0 18px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: 13px; color: #444; margin-top: 4px; }
svg { display: block; max-width: 100%; height: auto;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.muted { color: #555; }
@page { size: A4; margin: 14mm 14mm 16mm; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  section.summary { break-after: page; page-break-after: always; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  tr, figure, .tiles, .verdict { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  .verdict.ok, .verdict.bad, th, code { background: none; }
}
"#;

fn rate_cell(rate: &Rate) -> String {
    match rate.rate {
        Some(_) => format!(
            "{} <span class=\"muted\">({} of {})</span>",
            percent(rate.rate),
            rate.on_time,
            rate.due
        ),
        None => "n/a".to_owned(),
    }
}

fn compliance_note(c: &Compliance) -> String {
    if c.assets == 0 {
        "no assets".to_owned()
    } else {
        format!("{} of {} assets", c.compliant, c.assets)
            + &match c.unreported {
                0 => String::new(),
                n => format!("; {n} never reported"),
            }
    }
}

fn rates_row(out: &mut String, group: &str, rates: &PatchRates) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        escape(group),
        rate_cell(&rates.within7),
        rate_cell(&rates.within14),
        rate_cell(&rates.within30)
    );
}

/// A table of one row of counts under headers.
fn count_table(out: &mut String, headers: &[&str], values: &[String]) {
    out.push_str("<table><tr>");
    for header in headers {
        let _ = write!(out, "<th class=\"n\">{}</th>", escape(header));
    }
    out.push_str("</tr><tr>");
    for value in values {
        let _ = write!(out, "<td class=\"n\">{}</td>", escape(value));
    }
    out.push_str("</tr></table>");
}

fn decision_item(out: &mut String, decision: &crate::kpi::report::Decision) {
    let namespace = if decision.namespace.is_empty() {
        String::new()
    } else {
        format!(
            " <span class=\"muted\">in {}</span>",
            escape(&decision.namespace)
        )
    };
    let _ = write!(
        out,
        "<li><strong>{}</strong>{namespace}: {}",
        escape(&decision.object),
        escape(&decision.what)
    );
    if let Some(command) = &decision.command {
        let _ = write!(out, "<br><code>{}</code>", escape(command));
    }
    out.push_str("</li>");
}

/// `text` with its first letter in upper case.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let f = &report.current;
    let (now_label, before_label) = now_and_before_labels(report);
    let title = period_title(&report.period);
    let namespaces = if report.namespaces.is_empty() {
        "no namespace".to_owned()
    } else {
        report.namespaces.join(", ")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Patch report {} – {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>",
        escape(&title),
        escape(&namespaces)
    );

    // Page one: the summary.
    out.push_str("<section class=\"summary\">\n");
    let _ = writeln!(
        out,
        "<h1>Patch report {}</h1>\n<p class=\"meta\">{} · period {} to {} (excluded) · {} managed asset(s) · generated {}</p>",
        escape(&title),
        escape(&namespaces),
        time(report.period.from),
        time(report.period.to),
        f.assets,
        time(report.generated_at)
    );
    let (class, word) = match report.summary.compliant {
        Some(true) => ("ok", "Compliant"),
        Some(false) => ("bad", "Not compliant"),
        // Grey: nothing was judged.
        None => ("none", "No data"),
    };
    // The verdict starts with the word the heading already says.
    let verdict = &report.summary.verdict;
    let sentence = verdict
        .strip_prefix(word)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(verdict);
    let _ = writeln!(
        out,
        "<div class=\"verdict {class}\"><strong>{word}</strong>{}</div>",
        escape(&capitalised(sentence))
    );
    let _ = writeln!(
        out,
        "<div class=\"tiles\">\
         <div class=\"tile\"><div class=\"value\">{}</div><div class=\"label\">assets compliant ({})</div></div>\
         <div class=\"tile\"><div class=\"value\">{}</div><div class=\"label\">critical and security updates installed within 7 days (target: 100%)</div></div>\
         <div class=\"tile\"><div class=\"value\">{}</div><div class=\"label\">incidents caused by patches</div></div>\
         </div>",
        percent(report.summary.compliance_rate),
        compliance_note(&f.compliance),
        percent(report.summary.critical_security_within7),
        report.summary.incidents
    );
    let _ = write!(
        out,
        "<h2>What changed since {}</h2>\n<table><tr><th>Key figure</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th>Change</th></tr>",
        escape(&before_label),
        escape(&now_label),
        escape(&before_label)
    );
    for change in &report.changes {
        let class = match change.better {
            Some(true) => "better",
            Some(false) => "worse",
            None => "same",
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"{class}\">{}</td></tr>",
            escape(&change.figure),
            escape(&change_value(change, change.now)),
            escape(&change_value(change, change.before)),
            escape(&change_trend(change))
        );
    }
    out.push_str("</table>\n<h2>Needs a decision</h2>\n");
    if report.decisions.is_empty() {
        out.push_str("<p>Nothing waits for a decision.</p>\n");
    } else {
        out.push_str("<ul class=\"decisions\">");
        for decision in report.decisions.iter().take(DECISIONS_ON_PAGE_ONE) {
            decision_item(&mut out, decision);
        }
        out.push_str("</ul>\n");
        if report.decisions.len() > DECISIONS_ON_PAGE_ONE {
            let _ = writeln!(
                out,
                "<p class=\"muted\">… and {} more, listed under “All decisions” at the end.</p>",
                report.decisions.len() - DECISIONS_ON_PAGE_ONE
            );
        }
    }
    out.push_str("</section>\n");

    // Trends.
    out.push_str("<section class=\"trends\">\n<h2>Trends</h2>\n");
    let labels: Vec<String> = report.trend.iter().map(|p| p.label.clone()).collect();
    let chart = svg::line_chart(
        "chart-trend",
        "Patch rate within 7 and 30 days and compliant assets, per period",
        &labels,
        &[
            Series {
                name: "Patch rate within 7 days",
                colour: BLUE,
                dash: "",
                values: report.trend.iter().map(|p| p.patch_rate7).collect(),
            },
            Series {
                name: "Patch rate within 30 days",
                colour: ORANGE,
                dash: "8 4",
                values: report.trend.iter().map(|p| p.patch_rate30).collect(),
            },
            Series {
                name: "Compliant assets",
                colour: GREEN,
                dash: "2 3",
                values: report.trend.iter().map(|p| p.compliance).collect(),
            },
        ],
    );
    let _ = writeln!(
        out,
        "<figure>{chart}<figcaption>Figure 1. Patch rates within 7 and 30 days and the share of \
         compliant assets over the last {} periods. A gap means no update was due in that period.</figcaption></figure>",
        report.trend.len()
    );
    out.push_str(
        "<table><tr><th>Period</th><th class=\"n\">Patch rate 7 days</th><th class=\"n\">Patch rate 30 days</th>\
         <th class=\"n\">Compliant assets</th><th class=\"n\">Mean time to patch</th><th class=\"n\">Incidents</th></tr>",
    );
    for point in &report.trend {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&point.label),
            percent(point.patch_rate7),
            percent(point.patch_rate30),
            percent(point.compliance),
            hours(point.mean_time_to_patch_hours),
            point.incidents
        );
    }
    out.push_str("</table>\n</section>\n");

    // Details.
    out.push_str("<section class=\"details\">\n<h2>Details</h2>\n<h3>Patch rates</h3>\n");
    out.push_str(
        "<p>An update counts when its 7-, 14- or 30-day mark (from its release, or the asset's \
         enrolment if later) falls in the period; it is on time when it was installed by then.</p>\n",
    );
    out.push_str(
        "<table><tr><th>Group</th><th class=\"n\">Within 7 days</th><th class=\"n\">Within 14 days</th><th class=\"n\">Within 30 days</th></tr>",
    );
    rates_row(&mut out, "All updates", &f.patch_rate);
    let _ = write!(
        out,
        "<tr><td>Critical and security updates</td><td class=\"n\">{}</td><td></td><td></td></tr>",
        rate_cell(&f.critical_security_within7)
    );
    for (severity, rates) in ordered(&f.patch_rate_by_severity, &SEVERITIES) {
        rates_row(&mut out, &format!("Severity {severity}"), rates);
    }
    for (criticality, rates) in ordered(&f.patch_rate_by_criticality, &CRITICALITIES) {
        rates_row(&mut out, &format!("Asset criticality {criticality}"), rates);
    }
    out.push_str("</table>\n<h3>Time to patch</h3>\n");
    let ttp = &f.time_to_patch;
    count_table(
        &mut out,
        &[
            "Updates first installed in the period",
            "Mean",
            "Median",
            "Installed without a release date",
        ],
        &[
            ttp.installed.to_string(),
            hours(ttp.mean_hours),
            hours(ttp.median_hours),
            ttp.without_release_date.to_string(),
        ],
    );

    out.push_str("\n<h3>Open updates by severity and age</h3>\n");
    let severities = ordered(&f.open_by_severity, &SEVERITIES);
    let categories: Vec<(String, Vec<u32>)> = severities
        .iter()
        .map(|(s, b)| ((*s).to_owned(), bucket_counts(b).to_vec()))
        .collect();
    let parts: Vec<(&str, &str)> = AGE_BUCKETS
        .iter()
        .zip(AGE_COLOURS)
        .map(|((label, _), colour)| (*label, colour))
        .collect();
    let chart = svg::stacked_bars(
        "chart-open",
        "Open updates at the end of the period by severity, stacked by age",
        &categories,
        &parts,
        "No open updates",
    );
    let _ = writeln!(
        out,
        "<figure>{chart}<figcaption>Figure 2. The {} still missing at the end of the period, by severity; \
         the colours show how long each has been out (since its release, or the asset's enrolment).</figcaption></figure>",
        plural(
            usize::try_from(f.open.total()).unwrap_or(0),
            "update",
            "updates"
        )
    );
    out.push_str("<table><tr><th>Severity</th>");
    for (label, _) in AGE_BUCKETS {
        let _ = write!(out, "<th class=\"n\">{label}</th>");
    }
    out.push_str("<th class=\"n\">Total</th><th class=\"n\">Overdue</th></tr>");
    for (severity, buckets) in &severities {
        let _ = write!(out, "<tr><td>{}</td>", escape(severity));
        for count in bucket_counts(buckets) {
            let _ = write!(out, "<td class=\"n\">{count}</td>");
        }
        let overdue = f.overdue_by_severity.get(*severity).copied().unwrap_or(0);
        let _ = write!(
            out,
            "<td class=\"n\">{}</td><td class=\"n\">{overdue}</td></tr>",
            buckets.total()
        );
    }
    out.push_str("<tr><th>All</th>");
    for count in bucket_counts(&f.open) {
        let _ = write!(out, "<th class=\"n\">{count}</th>");
    }
    let _ = writeln!(
        out,
        "<th class=\"n\">{}</th><th class=\"n\">{}</th></tr></table>",
        f.open.total(),
        f.overdue
    );
    if !f.overdue_by_policy.is_empty() {
        let parts: Vec<String> = f
            .overdue_by_policy
            .iter()
            .map(|(policy, n)| format!("{} {n}", escape(policy)))
            .collect();
        let _ = writeln!(out, "<p>Overdue by policy: {}</p>", parts.join(", "));
    }

    out.push_str("<h3>Most overdue updates</h3>\n");
    if f.most_overdue.is_empty() {
        out.push_str("<p>No update is past its deadline.</p>\n");
    } else {
        out.push_str(
            "<table><thead><tr><th>Asset</th><th>Update</th><th>Severity</th><th>Policy</th><th>Due</th><th class=\"n\">Days overdue</th></tr></thead><tbody>",
        );
        for o in &f.most_overdue {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td class=\"t\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&o.asset),
                escape(&o.update),
                o.severity,
                escape(&o.policy),
                time(o.due_at),
                o.days_overdue
            );
        }
        out.push_str("</tbody></table>\n");
        if f.overdue as usize > f.most_overdue.len() {
            let _ = writeln!(
                out,
                "<p class=\"muted\">… and {} more.</p>",
                f.overdue as usize - f.most_overdue.len()
            );
        }
    }

    out.push_str("<h3>Compliance by criticality</h3>\n");
    let rows: Vec<(String, Option<f64>, String)> =
        ordered(&f.compliance_by_criticality, &CRITICALITIES)
            .into_iter()
            .map(|(c, v)| (c.to_owned(), v.rate, compliance_note(v)))
            .chain(std::iter::once((
                "All".to_owned(),
                f.compliance.rate,
                compliance_note(&f.compliance),
            )))
            .collect();
    let chart = svg::percent_bars(
        "chart-compliance",
        "Compliant assets by criticality",
        &rows,
        GREEN,
    );
    let _ = writeln!(
        out,
        "<figure>{chart}<figcaption>Figure 3. Share of compliant assets (reported by their agent, and no update \
         past its policy's deadline at the end of the period) by asset criticality.</figcaption></figure>"
    );

    out.push_str("<h3>Non-compliant assets</h3>\n");
    if f.non_compliant_assets.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        let names: Vec<String> = f.non_compliant_assets.iter().map(|n| escape(n)).collect();
        let _ = writeln!(out, "<p>{}</p>", names.join(", "));
        let listed = f.non_compliant_assets.len() as u32;
        let all = f.compliance.assets - f.compliance.compliant;
        if all > listed {
            let _ = writeln!(out, "<p class=\"muted\">… and {} more.</p>", all - listed);
        }
    }
    if !f.unreported_assets.is_empty() {
        let names: Vec<String> = f.unreported_assets.iter().map(|n| escape(n)).collect();
        let _ = writeln!(
            out,
            "<p>Never reported by an agent (what they miss is unknown): {}{}</p>",
            names.join(", "),
            super::more(f.compliance.unreported, f.unreported_assets.len())
        );
    }

    out.push_str("<h3>Rollouts</h3>\n");
    let r = &f.rollouts;
    count_table(
        &mut out,
        &[
            "Created in the period",
            "Succeeded",
            "Halted at least once",
            "Aborted",
            "Still on their way",
        ],
        &[r.created, r.succeeded, r.halted, r.aborted, r.in_progress].map(|n| n.to_string()),
    );
    out.push_str("\n<h3>Operations</h3>\n");
    let o = &f.operations;
    count_table(
        &mut out,
        &[
            "Installs succeeded",
            "Installs failed",
            "Installs timed out",
            "Rolled back",
            "Rollbacks failed",
        ],
        &[
            o.succeeded,
            o.failed,
            o.timed_out,
            o.rolled_back,
            o.rollback_failed,
        ]
        .map(|n| n.to_string()),
    );
    out.push_str("\n<h3>Incidents</h3>\n");
    let i = &f.incidents;
    let _ = writeln!(
        out,
        "<p>{} incident(s) caused by patches: {} failed or timed-out install(s), {} rollback(s), {} recorded by people.</p>",
        i.total, i.failed_operations, i.rollbacks, i.recorded
    );
    if !i.recorded_list.is_empty() {
        out.push_str(
            "<table><tr><th>When</th><th>Asset</th><th>Rollout</th><th>Impact</th><th>Note</th></tr>",
        );
        for incident in &i.recorded_list {
            let _ = write!(
                out,
                "<tr><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(incident.occurred_at),
                escape(&incident.asset),
                escape(&incident.rollout),
                escape(&incident.impact),
                escape(&incident.note)
            );
        }
        out.push_str("</table>\n");
    }
    if report.decisions.len() > DECISIONS_ON_PAGE_ONE {
        out.push_str("<h3>All decisions</h3>\n<ul class=\"decisions\">");
        for decision in &report.decisions {
            decision_item(&mut out, decision);
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape("<b a='1' c=\"2\">&</b>"),
            "&lt;b a=&#39;1&#39; c=&quot;2&quot;&gt;&amp;&lt;/b&gt;"
        );
    }
}
