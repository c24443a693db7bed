//! The report as Markdown (GitHub-flavoured tables): the summary first, then the trend, then
//! the details. Text from objects (asset names, notes) is escaped so it cannot break a table or
//! inject markup.

use std::fmt::Write as _;

use super::{
    AGE_BUCKETS, CRITICALITIES, SEVERITIES, bucket_counts, change_trend, change_value, hours,
    now_and_before_labels, ordered, percent, period_title, time,
};
use crate::kpi::report::Report;
use crate::kpi::{Compliance, PatchRates, Rate};

/// Escapes text for Markdown: characters with a meaning are backslash-escaped, HTML's
/// `<`, `>` and `&` become entities, line breaks become spaces (tables are one line a row).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' | '\n' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A command as inline code, with a fence long enough for any backticks inside.
fn code(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    let fence = if text.contains('`') { "``" } else { "`" };
    format!("{fence}{text}{fence}")
}

fn rate_cell(rate: &Rate) -> String {
    match rate.rate {
        Some(_) => format!("{} ({} of {})", percent(rate.rate), rate.on_time, rate.due),
        None => "n/a".to_owned(),
    }
}

fn compliance_cell(c: &Compliance) -> String {
    match c.rate {
        Some(_) if c.unreported > 0 => format!(
            "{} ({} of {}; {} never reported)",
            percent(c.rate),
            c.compliant,
            c.assets,
            c.unreported
        ),
        Some(_) => format!("{} ({} of {})", percent(c.rate), c.compliant, c.assets),
        None => "n/a".to_owned(),
    }
}

fn rates_row(out: &mut String, group: &str, rates: &PatchRates) {
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} |",
        escape(group),
        rate_cell(&rates.within7),
        rate_cell(&rates.within14),
        rate_cell(&rates.within30)
    );
}

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let f = &report.current;
    let (now_label, before_label) = now_and_before_labels(report);
    let namespaces = if report.namespaces.is_empty() {
        "none".to_owned()
    } else {
        report
            .namespaces
            .iter()
            .map(|n| escape(n))
            .collect::<Vec<_>>()
            .join(", ")
    };

    // Page one: the summary.
    let _ = writeln!(
        out,
        "# Patch report {}: {}\n",
        period_title(&report.period),
        namespaces
    );
    let _ = writeln!(
        out,
        "Period {} to {} (excluded) · {} managed asset(s) · generated {}\n",
        time(report.period.from),
        time(report.period.to),
        f.assets,
        time(report.generated_at)
    );
    out.push_str("## Summary\n\n");
    let _ = writeln!(
        out,
        "{} **{}**\n",
        match report.summary.compliant {
            Some(true) => "✅",
            Some(false) => "❌",
            None => "➖",
        },
        escape(&report.summary.verdict)
    );
    let _ = writeln!(
        out,
        "| Key figure | {} | {} | Change |\n|---|---:|---:|---|",
        escape(&now_label),
        escape(&before_label)
    );
    for change in &report.changes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            escape(&change.figure),
            change_value(change, change.now),
            change_value(change, change.before),
            change_trend(change)
        );
    }
    out.push_str("\n### Needs a decision\n\n");
    if report.decisions.is_empty() {
        out.push_str("Nothing waits for a decision.\n");
    }
    for decision in &report.decisions {
        let namespace = if decision.namespace.is_empty() {
            String::new()
        } else {
            format!(" in {}", escape(&decision.namespace))
        };
        let _ = write!(
            out,
            "- **{}**{namespace}: {}",
            escape(&decision.object),
            escape(&decision.what)
        );
        if let Some(command) = &decision.command {
            let _ = write!(out, "  \n  {}", code(command));
        }
        out.push('\n');
    }

    // Trends.
    out.push_str("\n## Trends\n\n");
    out.push_str(
        "| Period | Patch rate within 7 days | Patch rate within 30 days | Compliant assets | Mean time to patch | Incidents |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for point in &report.trend {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            escape(&point.label),
            percent(point.patch_rate7),
            percent(point.patch_rate30),
            percent(point.compliance),
            hours(point.mean_time_to_patch_hours),
            point.incidents
        );
    }

    // Details.
    out.push_str("\n## Details\n\n### Patch rates\n\n");
    out.push_str(
        "An update counts when its 7-, 14- or 30-day mark (from its release, or the asset's \
         enrolment if later) falls in the period; it is on time when it was installed by then.\n\n",
    );
    out.push_str(
        "| Group | Within 7 days | Within 14 days | Within 30 days |\n|---|---:|---:|---:|\n",
    );
    rates_row(&mut out, "All updates", &f.patch_rate);
    let _ = writeln!(
        out,
        "| Critical and security updates | {} | | |",
        rate_cell(&f.critical_security_within7)
    );
    for (severity, rates) in ordered(&f.patch_rate_by_severity, &SEVERITIES) {
        rates_row(&mut out, &format!("Severity {severity}"), rates);
    }
    for (criticality, rates) in ordered(&f.patch_rate_by_criticality, &CRITICALITIES) {
        rates_row(&mut out, &format!("Asset criticality {criticality}"), rates);
    }

    let ttp = &f.time_to_patch;
    out.push_str("\n### Time to patch\n\n");
    let _ = writeln!(
        out,
        "| Updates first installed in the period | Mean | Median | Installed without a release date |\n\
         |---:|---:|---:|---:|\n| {} | {} | {} | {} |",
        ttp.installed,
        hours(ttp.mean_hours),
        hours(ttp.median_hours),
        ttp.without_release_date
    );

    out.push_str("\n### Open updates by severity and age\n\n");
    let _ = write!(
        out,
        "At the end of the period: {} open.\n\n| Severity |",
        f.open.total()
    );
    for (label, _) in AGE_BUCKETS {
        let _ = write!(out, " {label} |");
    }
    out.push_str(" Total | Overdue |\n|---|");
    out.push_str(&"---:|".repeat(AGE_BUCKETS.len() + 2));
    out.push('\n');
    for (severity, buckets) in ordered(&f.open_by_severity, &SEVERITIES) {
        let _ = write!(out, "| {} |", escape(severity));
        for count in bucket_counts(buckets) {
            let _ = write!(out, " {count} |");
        }
        let overdue = f.overdue_by_severity.get(severity).copied().unwrap_or(0);
        let _ = writeln!(out, " {} | {overdue} |", buckets.total());
    }
    let _ = write!(out, "| **All** |");
    for count in bucket_counts(&f.open) {
        let _ = write!(out, " {count} |");
    }
    let _ = writeln!(out, " {} | {} |", f.open.total(), f.overdue);
    if !f.overdue_by_policy.is_empty() {
        out.push_str("\nOverdue by policy: ");
        let parts: Vec<String> = f
            .overdue_by_policy
            .iter()
            .map(|(policy, n)| format!("{} {n}", escape(policy)))
            .collect();
        out.push_str(&parts.join(", "));
        out.push('\n');
    }

    out.push_str("\n### Most overdue updates\n\n");
    if f.most_overdue.is_empty() {
        out.push_str("No update is past its deadline.\n");
    } else {
        out.push_str(
            "| Asset | Update | Severity | Policy | Due | Days overdue |\n|---|---|---|---|---|---:|\n",
        );
        for o in &f.most_overdue {
            let _ = writeln!(
                out,
                "| {} | {} | {:?} | {} | {} | {} |",
                escape(&o.asset),
                escape(&o.update),
                o.severity,
                escape(&o.policy),
                time(o.due_at),
                o.days_overdue
            );
        }
        if f.overdue as usize > f.most_overdue.len() {
            let _ = writeln!(
                out,
                "\n… and {} more.",
                f.overdue as usize - f.most_overdue.len()
            );
        }
    }

    out.push_str("\n### Compliance by criticality\n\n");
    out.push_str(
        "An asset is compliant when its agent has reported and none of its updates is past its \
         policy's deadline at the end of the period.\n\n| Asset criticality | Compliant |\n|---|---:|\n",
    );
    for (criticality, c) in ordered(&f.compliance_by_criticality, &CRITICALITIES) {
        let _ = writeln!(out, "| {} | {} |", escape(criticality), compliance_cell(c));
    }
    let _ = writeln!(out, "| **All** | {} |", compliance_cell(&f.compliance));

    out.push_str("\n### Non-compliant assets\n\n");
    if f.non_compliant_assets.is_empty() {
        out.push_str("None.\n");
    } else {
        let names: Vec<String> = f.non_compliant_assets.iter().map(|n| escape(n)).collect();
        let _ = writeln!(out, "{}", names.join(", "));
        let listed = f.non_compliant_assets.len() as u32;
        let all = f.compliance.assets - f.compliance.compliant;
        if all > listed {
            let _ = writeln!(out, "\n… and {} more.", all - listed);
        }
    }
    if !f.unreported_assets.is_empty() {
        let names: Vec<String> = f.unreported_assets.iter().map(|n| escape(n)).collect();
        let _ = writeln!(
            out,
            "\nNever reported by an agent (what they miss is unknown): {}{}",
            names.join(", "),
            super::more(f.compliance.unreported, f.unreported_assets.len())
        );
    }

    let r = &f.rollouts;
    out.push_str("\n### Rollouts\n\n");
    let _ = writeln!(
        out,
        "| Created in the period | Succeeded | Halted at least once | Aborted | Still on their way |\n\
         |---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} |",
        r.created, r.succeeded, r.halted, r.aborted, r.in_progress
    );

    let o = &f.operations;
    out.push_str("\n### Operations\n\n");
    let _ = writeln!(
        out,
        "| Installs succeeded | Installs failed | Installs timed out | Rolled back | Rollbacks failed |\n\
         |---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} |",
        o.succeeded, o.failed, o.timed_out, o.rolled_back, o.rollback_failed
    );

    let i = &f.incidents;
    out.push_str("\n### Incidents\n\n");
    let _ = writeln!(
        out,
        "{} incident(s) caused by patches: {} failed or timed-out install(s), {} rollback(s), \
         {} recorded by people.\n",
        i.total, i.failed_operations, i.rollbacks, i.recorded
    );
    if !i.recorded_list.is_empty() {
        out.push_str("| When | Asset | Rollout | Impact | Note |\n|---|---|---|---|---|\n");
        for incident in &i.recorded_list {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                time(incident.occurred_at),
                escape(&incident.asset),
                escape(&incident.rollout),
                escape(&incident.impact),
                escape(&incident.note)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_objects_cannot_break_a_table() {
        assert_eq!(escape("a|b <script>\n*x*"), "a\\|b &lt;script&gt; \\*x\\*");
        assert_eq!(code("kubectl x"), "`kubectl x`");
        assert_eq!(code("a`b"), "``a`b``");
    }
}
