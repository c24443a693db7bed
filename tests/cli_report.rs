#![allow(clippy::unwrap_used)] // test helpers fail loudly by design
//! `kubectl patchwave report` in all four formats: offline over the example company
//! (`examples/`) and over a company whose November figures were computed by hand
//! (`tests/fixtures/report/`, see its README), the HTML rendered in headless Chromium and
//! checked pixel by pixel, and on the real API server with Assets, a PatchPolicy and a
//! PatchIncident.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use kube::api::{Patch, PatchParams, PostParams};
use patchwave::api::{Asset, PatchIncident, PatchPolicy};
use serde_json::{Value, json};

const FIXTURE: &str = "tests/fixtures/report";
const EXAMPLES: &str = "examples";

/// Where Debian's package `chromium` puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

fn plugin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("KUBECONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = plugin(args);
    assert!(
        output.status.success(),
        "{args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The report of `folder` for November 2026 in `format`.
fn november(folder: &str, format: &str) -> String {
    ok(&["report", "-f", folder, "--month", "2026-11", "-o", format])
}

/// Parses RFC 4180 CSV: quoted fields with doubled quotes, commas and line breaks inside,
/// every row ended by CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "a CR without LF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            '\n' => panic!("a row ended by LF alone"),
            c => field.push(c),
        }
    }
    assert!(!quoted, "an unterminated quoted field");
    assert!(
        field.is_empty() && row.is_empty(),
        "the last row must end with CRLF"
    );
    rows
}

/// The CSV as `(section, group, figure) -> value`, after checking the header and the width.
fn csv_figures(text: &str) -> HashMap<(String, String, String), String> {
    let rows = parse_csv(text);
    assert_eq!(rows[0], ["section", "group", "figure", "value"]);
    let mut out = HashMap::new();
    for row in &rows[1..] {
        assert_eq!(row.len(), 4, "{row:?}");
        let key = (row[0].clone(), row[1].clone(), row[2].clone());
        assert!(
            out.insert(key.clone(), row[3].clone()).is_none(),
            "{key:?} twice"
        );
    }
    out
}

fn get<'a>(figures: &'a HashMap<(String, String, String), String>, key: &str) -> &'a str {
    let parts: Vec<&str> = key.split(',').collect();
    let key = (
        parts[0].to_owned(),
        parts[1].to_owned(),
        parts[2].to_owned(),
    );
    figures
        .get(&key)
        .unwrap_or_else(|| panic!("no row {key:?}"))
}

/// The headings in order must be these, in this order (others may come between).
fn assert_in_order(text: &str, parts: &[&str]) {
    let mut from = 0;
    for part in parts {
        let at = text[from..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} missing or out of order in:\n{text}"));
        from += at + part.len();
    }
}

const MD_SECTIONS: [&str; 16] = [
    "# Patch report November 2026",
    "## Summary",
    "| Key figure |",
    "### Needs a decision",
    "## Trends",
    "## Details",
    "### Patch rates",
    "### Time to patch",
    "### Open updates by severity and age",
    "### Most overdue updates",
    "### Compliance by criticality",
    "### Non-compliant assets",
    "### Rollouts",
    "### Operations",
    "### Incidents",
    "",
];

#[test]
fn markdown_over_the_hand_computed_company() {
    let md = november(FIXTURE, "md");
    assert_in_order(&md, &MD_SECTIONS);
    assert!(
        md.starts_with("# Patch report November 2026: northwind\n"),
        "{md}"
    );
    assert!(
        md.contains(
            "❌ **Not compliant: 1 update(s) on 1 asset(s) are past their deadline; 67% of assets are compliant.**"
        ),
        "{md}"
    );
    // Now vs. October, with the direction.
    for row in [
        "| Key figure | 2026-11 | 2026-10 | Change |",
        "| Compliant assets | 67% | 50% | ↑ better |",
        "| Critical and security updates within 7 days | 75% | n/a | no comparison |",
        "| Patch rate within 30 days | 100% | 0% | ↑ better |",
        "| Mean time to patch | 5.7 days | n/a | no comparison |",
        "| Overdue updates | 1 | 1 | = unchanged |",
        "| Incidents caused by patches | 3 | 1 | ↑ worse |",
        // The trend: no assets before September, so no compliance figure either (not 0%).
        "| 2026-08 | n/a | n/a | n/a | n/a | 0 |",
        "| 2026-11 | 60% | 100% | 67% | 5.7 days | 3 |",
        "| All updates | 60% (3 of 5) | 75% (3 of 4) | 100% (1 of 1) |",
        "| Critical and security updates | 75% (3 of 4) | | |",
        "| Severity Important | 0% (0 of 1) | 0% (0 of 1) | n/a |",
        "| 5 | 5.7 days | 3.0 days | 0 |",
        "| Low | 0 | 0 | 0 | 1 | 0 | 1 | 1 |",
        "| a1 | u3 | Low | all | 2026-10-31 00:00 UTC | 31 |",
        "| Critical | 0% (0 of 1) |",
        "| **All** | 67% (2 of 3) |",
        "| 2 | 1 | 2 | 0 | 1 |",
        "| 1 | 1 | 0 | 1 | 0 |",
    ] {
        assert!(md.contains(row), "{row:?} missing in:\n{md}");
    }
    // The decisions, each with its command where there is one.
    assert!(
        md.contains(
            "- **patchrollout/r2** in northwind: Rollout halted in ring pilot: 1 of 2 failed (a2). Resume or abort it.  \n  `kubectl patchwave resume r2 --ring pilot -n northwind`"
        ),
        "{md}"
    );
    assert!(
        md.contains("- **asset/a1** in northwind: a1 (Critical) waits for a per-asset approval.")
    );
    assert!(md.contains(
        "3 incident(s) caused by patches: 1 failed or timed-out install(s), 1 rollback(s), 1 recorded by people."
    ));
    // The note is escaped: it cannot end the table row or inject HTML.
    assert!(
        md.contains(
            "| 2026-11-20 09:00 UTC | a1 | r1 | High | ERP client crashes at start, see &lt;INC-4711&gt; &amp; \"KB 12\" \\| \\*urgent\\* |"
        ),
        "{md}"
    );
    // October's incident is not November's.
    assert!(!md.contains("Printing failed"));
}

#[test]
fn csv_over_the_hand_computed_company() {
    let csv = november(FIXTURE, "csv");
    let figures = csv_figures(&csv);
    for (key, value) in [
        ("report,all,namespaces", "northwind"),
        ("report,all,period_from", "2026-11-01T00:00:00Z"),
        ("report,all,period_to", "2026-12-01T00:00:00Z"),
        ("report,all,assets", "3"),
        ("summary,all,compliant", "false"),
        ("summary,all,critical_security_within7", "0.75"),
        ("summary,all,incidents", "3"),
        ("patch_rate,all,within7_due", "5"),
        ("patch_rate,all,within7_on_time", "3"),
        ("patch_rate,all,within7_rate", "0.6"),
        ("patch_rate,all,within14_rate", "0.75"),
        ("patch_rate,all,within30_rate", "1"),
        ("patch_rate,severity:Important,within30_rate", ""),
        ("patch_rate,criticality:Low,within7_rate", "1"),
        ("critical_security_within7,all,rate", "0.75"),
        ("time_to_patch,all,installed", "5"),
        ("time_to_patch,all,mean_hours", "136.8"),
        ("time_to_patch,all,median_hours", "72"),
        ("open,all,over30", "1"),
        ("open,all,total", "1"),
        ("open,severity:Low,over30", "1"),
        ("overdue,all,count", "1"),
        ("overdue,policy:all,count", "1"),
        ("most_overdue,1,asset", "a1"),
        ("most_overdue,1,days_overdue", "31"),
        ("compliance,all,assets", "3"),
        ("compliance,all,compliant", "2"),
        ("compliance,criticality:Critical,rate", "0"),
        ("non_compliant_asset,1,asset", "a1"),
        ("rollouts,all,created", "2"),
        ("rollouts,all,halted", "2"),
        ("rollouts,all,in_progress", "1"),
        ("operations,all,succeeded", "1"),
        ("operations,all,failed", "1"),
        ("operations,all,rolled_back", "1"),
        ("incidents,all,total", "3"),
        ("incidents,all,recorded", "1"),
        ("change,Compliant assets,now", "0.6666666666666666"),
        ("change,Compliant assets,before", "0.5"),
        ("change,Compliant assets,better", "true"),
        ("change,Mean time to patch,before", ""),
        ("trend,2026-08,compliance", ""),
        ("trend,2026-10,compliance", "0.5"),
        ("trend,2026-11,patch_rate7", "0.6"),
        ("decision,1,object", "patchrollout/r2"),
        (
            "decision,1,command",
            "kubectl patchwave resume r2 --ring pilot -n northwind",
        ),
        // Commas, quotes and a bar survive the quoting.
        (
            "recorded_incident,1,note",
            "ERP client crashes at start, see <INC-4711> & \"KB 12\" | *urgent*",
        ),
    ] {
        assert_eq!(get(&figures, key), value, "{key}");
    }
    assert!(
        csv.contains("\"ERP client crashes at start, see <INC-4711> & \"\"KB 12\"\" | *urgent*\"")
    );
}

#[test]
fn json_over_the_hand_computed_company() {
    let report: Value = serde_json::from_str(&november(FIXTURE, "json")).unwrap();
    assert_eq!(report["namespaces"], json!(["northwind"]));
    assert_eq!(report["period"]["from"], "2026-11-01T00:00:00Z");
    assert_eq!(report["summary"]["compliant"], false);
    assert_eq!(
        report["summary"]["verdict"],
        "Not compliant: 1 update(s) on 1 asset(s) are past their deadline; 67% of assets are compliant."
    );
    let current = &report["current"];
    assert_eq!(
        current["patchRate"]["within7"],
        json!({"due": 5, "onTime": 3, "rate": 0.6})
    );
    assert_eq!(current["timeToPatch"]["meanHours"], 136.8);
    assert_eq!(current["timeToPatch"]["medianHours"], 72.0);
    assert_eq!(current["overdue"], 1);
    assert_eq!(current["compliance"]["compliant"], 2);
    assert_eq!(current["incidents"]["total"], 3);
    assert_eq!(
        current["incidents"]["recordedList"][0]["note"],
        "ERP client crashes at start, see <INC-4711> & \"KB 12\" | *urgent*"
    );
    assert_eq!(report["previous"]["compliance"]["rate"], 0.5);
    assert_eq!(
        report["previous"]["criticalSecurityWithin7"]["rate"],
        Value::Null
    );
    assert_eq!(report["changes"].as_array().unwrap().len(), 6);
    assert_eq!(report["decisions"].as_array().unwrap().len(), 2);
    let trend = report["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 6);
    assert_eq!(trend[0]["label"], "2026-06");
    assert_eq!(trend[5]["label"], "2026-11");
    assert_eq!(trend[5]["patchRate7"], 0.6);
}

/// Checks what every HTML report must be: one file that fetches nothing, with the charts.
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    let lower = html.to_ascii_lowercase();
    for forbidden in [
        "http://", "https://", "src=", "href=", "url(", "@import", "<script", "<link", "<img",
        "<iframe", "<object", "<embed",
    ] {
        assert!(
            !lower.contains(forbidden),
            "{forbidden:?} in the HTML report"
        );
    }
    assert!(html.contains("<title>Patch report November 2026"));
    assert!(
        html.contains("default-src 'none'"),
        "a CSP that forbids fetching"
    );
    assert!(html.contains("@media print"));
    assert!(html.contains("break-after: page"));
    assert!(html.contains("size: A4"));
    for id in ["chart-trend", "chart-open", "chart-compliance"] {
        assert!(
            html.contains(&format!(
                "<figure><svg role=\"img\" aria-labelledby=\"{id}-title\""
            )),
            "{id}"
        );
        assert!(html.contains(&format!("<title id=\"{id}-title\">")), "{id}");
    }
    assert_eq!(html.matches("<figcaption>").count(), 3);
    // The summary comes first, then the trend, then the details.
    assert_in_order(
        html,
        &[
            "<section class=\"summary\">",
            "What changed since",
            "Needs a decision",
            "<section class=\"trends\">",
            "<section class=\"details\">",
            "Most overdue updates",
            "Incidents",
        ],
    );
}

#[test]
fn html_over_the_hand_computed_company_escapes_what_objects_say() {
    let html = november(FIXTURE, "html");
    assert_self_contained(&html);
    assert!(html.contains(
        "ERP client crashes at start, see &lt;INC-4711&gt; &amp; &quot;KB 12&quot; | *urgent*"
    ));
    assert!(!html.contains("<INC-4711>"));
    assert!(html.contains("<strong>Not compliant</strong>"));
    assert!(html.contains("<code>kubectl patchwave resume r2 --ring pilot -n northwind</code>"));
    assert!(html.contains("<td class=\"better\">↑ better</td>"));
}

#[test]
fn the_example_company_in_all_four_formats() {
    let md = november(EXAMPLES, "md");
    assert_in_order(&md, &MD_SECTIONS);
    assert!(md.starts_with("# Patch report November 2026: acme\n"));
    assert!(md.contains("30 managed asset(s)"), "{md}");
    assert!(md.contains("| Compliant assets |"));

    let figures = csv_figures(&november(EXAMPLES, "csv"));
    for key in [
        "summary,all,verdict",
        "summary,all,compliance_rate",
        "summary,all,critical_security_within7",
        "summary,all,incidents",
        "patch_rate,all,within7_rate",
        "patch_rate,all,within14_rate",
        "patch_rate,all,within30_rate",
        "critical_security_within7,all,rate",
        "time_to_patch,all,mean_hours",
        "time_to_patch,all,median_hours",
        "open,all,total",
        "overdue,all,count",
        "compliance,all,rate",
        "rollouts,all,created",
        "operations,all,failed",
        "incidents,all,total",
        "trend,2026-11,compliance",
    ] {
        get(&figures, key);
    }
    assert_eq!(get(&figures, "report,all,namespaces"), "acme");
    assert_eq!(get(&figures, "report,all,assets"), "30");

    let report: Value = serde_json::from_str(&november(EXAMPLES, "json")).unwrap();
    assert!(report["summary"]["verdict"].as_str().unwrap().len() > 20);
    assert_eq!(report["current"]["assets"], 30);
    // The agents reported on 27 November: what they miss is open at the end of the month.
    assert!(report["current"]["open"]["days0to7"].as_u64().unwrap() > 0);
    assert_eq!(
        report["current"]["overdue"].as_u64().unwrap(),
        figures[&("overdue".to_owned(), "all".to_owned(), "count".to_owned())]
            .parse::<u64>()
            .unwrap()
    );

    assert_self_contained(&november(EXAMPLES, "html"));

    // -n keeps one namespace of the files; the default period is last month.
    let other: Value = serde_json::from_str(&ok(&[
        "report",
        "-f",
        EXAMPLES,
        "-n",
        "elsewhere",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(other["namespaces"], json!(["elsewhere"]));
    assert_eq!(other["current"]["assets"], 0);
    // Nothing managed: no data, neither compliant nor a sentence about "n/a of" updates.
    assert_eq!(other["summary"]["compliant"], Value::Null);
    assert_eq!(other["summary"]["complianceRate"], Value::Null);
    let verdict = "No data: no asset was managed at the end of the period, so there is nothing \
                   to judge.";
    assert_eq!(other["summary"]["verdict"], verdict);
    let elsewhere = |format: &str| ok(&["report", "-f", EXAMPLES, "-n", "elsewhere", "-o", format]);
    let md = elsewhere("md");
    assert!(md.contains(&format!("➖ **{verdict}**")), "{md}");
    let figures = csv_figures(&elsewhere("csv"));
    assert_eq!(get(&figures, "summary,all,compliant"), "");
    assert_eq!(get(&figures, "summary,all,verdict"), verdict);
    let html = elsewhere("html");
    assert!(
        html.contains("<div class=\"verdict none\"><strong>No data</strong>No asset was managed"),
        "{html}"
    );
    assert!(!md.contains('✅'), "{md}");
    assert!(!html.contains("<strong>Compliant</strong>"), "{html}");
    for text in [&md, &html] {
        assert!(!text.contains("n/a of"), "{text}");
    }
}

#[test]
fn the_output_file_and_a_custom_period() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-output");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("northwind.csv");
    let file_text = file.to_str().unwrap();
    let output = plugin(&[
        "report",
        "-f",
        FIXTURE,
        "--from",
        "2026-11-15",
        "--to",
        "2026-11-22",
        "--output",
        file_text,
    ]);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty());
    // The format follows the file name.
    let figures = csv_figures(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        get(&figures, "report,all,period_from"),
        "2026-11-15T00:00:00Z"
    );
    // 7-day marks in [11-15, 11-22): a1.u2's 11-17 only (installed 11-30: late); a2.u1's
    // 11-22 is excluded. 14-day marks: a1.u1's 11-16 (installed 11-05).
    assert_eq!(get(&figures, "patch_rate,all,within7_due"), "1");
    assert_eq!(get(&figures, "patch_rate,all,within7_on_time"), "0");
    assert_eq!(get(&figures, "patch_rate,all,within14_rate"), "1");
    // The week before is compared, and labelled by its first day.
    assert!(figures.contains_key(&(
        "trend".to_owned(),
        "2026-11-08".to_owned(),
        "patch_rate7".to_owned()
    )));
    let md = ok(&[
        "report",
        "-f",
        FIXTURE,
        "--from",
        "2026-11-15",
        "--to",
        "2026-11-22",
    ]);
    assert!(
        md.starts_with("# Patch report 2026-11-15 – 2026-11-21: northwind"),
        "{md}"
    );
}

#[test]
fn usage_errors_name_what_is_wrong_and_exit_with_2() {
    let pdf = Path::new(concat!(env!("CARGO_TARGET_TMPDIR"), "/r.pdf"));
    let _ = std::fs::remove_file(pdf);
    for (args, message) in [
        (
            vec!["--month", "2026-13"],
            "--month \"2026-13\": expected YYYY-MM",
        ),
        (
            vec!["--from", "2026-11-30", "--to", "2026-11-01"],
            "--from 2026-11-30T00:00:00Z is not before --to 2026-11-01T00:00:00Z",
        ),
        (
            vec![
                "--month",
                "2026-11",
                "--from",
                "2026-11-01",
                "--to",
                "2026-12-01",
            ],
            "--month and --from/--to cannot be used together",
        ),
        (vec!["--from", "2026-11-01"], "--from needs --to"),
        // A month that has not begun would be reported as fact, its deadlines all missed.
        (
            vec!["--month", "2999-01"],
            "--month 2999-01 has not begun yet (today is ",
        ),
        (
            vec!["-A", "-n", "acme"],
            "-A (all namespaces) and -n NAMESPACE",
        ),
        (vec!["-o", "pdf"], "invalid value 'pdf'"),
        // An --output extension the report does not know is not guessed to be Markdown.
        (
            vec![
                "--month",
                "2026-11",
                "--output",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/r.pdf"),
            ],
            "r.pdf: the report cannot tell the format from the extension .pdf \
             (it knows .md, .markdown, .html, .htm, .csv, .json)",
        ),
        (
            vec!["--from", "yesterday", "--to", "2026-11-01"],
            "neither an RFC 3339 time",
        ),
    ] {
        let mut all = vec!["report", "-f", FIXTURE];
        all.extend(&args);
        let output = plugin(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert!(!pdf.exists(), "a refused --output file is not written");
    let output = plugin(&["report", "-f", "does/not/exist", "--month", "2026-11"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does/not/exist"));
}

/// Runs Chromium headless on `html` and returns the screenshot, decoded: (width, height, RGB).
fn screenshot(html: &Path, png: &Path, height: u32) -> (u32, u32, Vec<[u8; 3]>) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the HTML report is checked by rendering it in headless \
         Chromium. Install it with `apt-get install -y chromium` (Debian's package), as CI does."
    );
    let _ = std::fs::remove_file(png);
    let profile = html.with_extension("chromium-profile");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            // Nothing may be fetched: the report is self-contained.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size=1240,{height}"))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert!(
        status.success() && png.exists(),
        "chromium failed ({status}):\n{stderr}"
    );
    let file = std::io::BufReader::new(std::fs::File::open(png).unwrap());
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let channels = match frame.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    let pixels = buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (frame.width, frame.height, pixels)
}

/// Pixels within `tolerance` of the colour `#rrggbb` on every channel.
fn count_colour(pixels: &[[u8; 3]], hex: &str, tolerance: u8) -> usize {
    let channel = |i: usize| u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap();
    let want = [channel(0), channel(1), channel(2)];
    pixels
        .iter()
        .filter(|p| (0..3).all(|i| p[i].abs_diff(want[i]) <= tolerance))
        .count()
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("examples-2026-11.html");
    ok(&[
        "report",
        "-f",
        EXAMPLES,
        "--month",
        "2026-11",
        "--output",
        html.to_str().unwrap(),
    ]);

    // The first screen, as the brief's A4-shaped window shows it: the summary and the trend.
    let (width, height, pixels) = screenshot(&html, &dir.join("examples-2026-11.png"), 1754);
    assert_eq!((width, height), (1240, 1754));
    let white = count_colour(&pixels, "#ffffff", 0);
    let dark = pixels.iter().filter(|p| p.iter().all(|c| *c < 80)).count();
    assert!(
        white > pixels.len() / 2,
        "mostly white paper: {white} of {}",
        pixels.len()
    );
    assert!(dark > 5_000, "text: {dark} dark pixels");
    // The verdict's red bar, and the three lines of the trend chart.
    let red = count_colour(&pixels, "#d62728", 8);
    assert!(red > 400, "verdict bar: {red} red pixels");
    let blue = count_colour(&pixels, "#1f77b4", 12);
    let orange = count_colour(&pixels, "#ff7f0e", 12);
    let green = count_colour(&pixels, "#2ca02c", 12);
    assert!(
        blue > 150 && orange > 50 && green > 300,
        "trend chart: blue {blue}, orange {orange}, green {green}"
    );

    // The whole page: the stacked bars of open updates and the compliance bars.
    let (_, _, pixels) = screenshot(&html, &dir.join("examples-2026-11-full.png"), 7000);
    for (colour, name) in [
        ("#fdae6b", "8-14 days"),
        ("#e6550d", "15-30 days"),
        ("#a63603", "over 30 days"),
    ] {
        let n = count_colour(&pixels, colour, 6);
        assert!(n > 1_000, "open updates chart, {name}: {n} pixels");
    }
    let green = count_colour(&pixels, "#2ca02c", 6);
    assert!(green > 1_500, "compliance bars: {green} green pixels");
}

/// A period of 30 days that starts at `now` (to the second, UTC): `--from` and `--to`.
fn period_from(now: Timestamp) -> (jiff::Zoned, String, String) {
    let first = Timestamp::from_second(now.as_second())
        .unwrap()
        .to_zoned(TimeZone::UTC);
    let to = first.checked_add(30.days()).unwrap();
    (
        first.clone(),
        first.timestamp().to_string(),
        to.timestamp().to_string(),
    )
}

#[tokio::test]
async fn on_the_cluster_with_assets_a_policy_and_an_incident() {
    let env = support::test_env("report").await;
    tokio::task::spawn_blocking(support::install_project_crds)
        .await
        .unwrap();
    // Objects created now are enrolled now: report the 30 days from now, with releases and
    // installs in them, so the figures do not depend on today's date. (A later month would
    // be refused: it has not begun.)
    let (first, from, to) = period_from(Timestamp::now());
    let at = |days: i64| {
        first
            .checked_add(days.days())
            .unwrap()
            .timestamp()
            .to_string()
    };

    let policy: PatchPolicy = serde_json::from_value(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchPolicy",
        "metadata": {"name": "security"},
        "spec": {"updates": {"classifications": ["Security"]}, "rings": ["pilot"]}
    }))
    .unwrap();
    env.api::<PatchPolicy>()
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();

    let installed = json!({"id": "openssl", "version": "3.5.4", "action": "Install",
        "at": at(2), "releasedAt": at(1), "severity": "Critical", "classification": "Security"});
    for (name, criticality, available) in [
        (
            "dc01",
            "Critical",
            json!([{"id": "KB5072036", "severity": "Critical", "classification": "Security",
                    "releasedAt": at(1)}]),
        ),
        ("lt-01", "Low", json!([])),
    ] {
        let asset: Asset = serde_json::from_value(json!({
            "apiVersion": "patchwave.dev/v1alpha1", "kind": "Asset",
            "metadata": {"name": name},
            "spec": {"osFamily": "Linux", "criticality": criticality}
        }))
        .unwrap();
        let api = env.api::<Asset>();
        api.create(&PostParams::default(), &asset).await.unwrap();
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {
                "reported": {"availableUpdates": available, "installedHistory": [installed]},
                "rollouts": [{"rollout": "security-1", "action": "Install", "phase": "Succeeded",
                              "finishedAt": at(2)}]
            }})),
        )
        .await
        .unwrap();
    }
    let incident: PatchIncident = serde_json::from_value(json!({
        "apiVersion": "patchwave.dev/v1alpha1", "kind": "PatchIncident",
        "metadata": {"name": "dns-down"},
        "spec": {"asset": "dc01", "rollout": "security-1", "impact": "High",
                 "note": "DNS down for 20 minutes <after reboot>", "occurredAt": at(3)}
    }))
    .unwrap();
    env.api::<PatchIncident>()
        .create(&PostParams::default(), &incident)
        .await
        .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .env("KUBECONFIG", env.control_plane.kubeconfig_path())
        .args([
            "report",
            "-n",
            &env.namespace,
            "--from",
            &from,
            "--to",
            &to,
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["namespaces"], json!([env.namespace]));
    let current = &report["current"];
    assert_eq!(current["assets"], 2);
    // 7-day marks in the period: openssl on both (installed the day after release) and
    // dc01's KB5072036 (never installed): 2 of 3.
    assert_eq!(
        current["patchRate"]["within7"],
        json!({"due": 3, "onTime": 2, "rate": 2.0 / 3.0})
    );
    assert_eq!(current["criticalSecurityWithin7"]["due"], 3);
    assert_eq!(current["timeToPatch"]["installed"], 2);
    assert_eq!(current["timeToPatch"]["meanHours"], 24.0);
    // KB5072036 is past its 7-day deadline at the end of the period: dc01 is not compliant.
    assert_eq!(current["overdue"], 1);
    assert_eq!(current["mostOverdue"][0]["asset"], "dc01");
    assert_eq!(current["mostOverdue"][0]["policy"], "security");
    assert_eq!(
        current["compliance"],
        json!({"assets": 2, "compliant": 1, "unreported": 0, "rate": 0.5})
    );
    assert_eq!(current["nonCompliantAssets"], json!(["dc01"]));
    assert_eq!(current["unreportedAssets"], json!([]));
    assert_eq!(current["operations"]["succeeded"], 2);
    assert_eq!(current["incidents"]["recorded"], 1);
    assert_eq!(current["incidents"]["total"], 1);
    assert_eq!(
        current["incidents"]["recordedList"][0]["note"],
        "DNS down for 20 minutes <after reboot>"
    );
    assert_eq!(report["summary"]["compliant"], false);
    // An overdue Critical update is a decision.
    let decisions = report["decisions"].as_array().unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| d["what"].as_str().unwrap().contains("KB5072036 on dc01")),
        "{decisions:?}"
    );

    // A mistyped namespace is an error, not a plausible empty report for the dashboard.
    let typo = format!("{}-typo", env.namespace);
    let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .env("KUBECONFIG", env.control_plane.kubeconfig_path())
        .args(["report", "-n", &typo, "--from", &from, "--to", &to])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(output.stdout.is_empty());
    assert!(
        err.contains(&format!("namespace {typo} does not exist")),
        "{err}"
    );

    // -A sees the same namespace among the others; the Markdown names it.
    let output = Command::new(env!("CARGO_BIN_EXE_kubectl-patchwave"))
        .env("KUBECONFIG", env.control_plane.kubeconfig_path())
        .args(["report", "-A", "--from", &from, "--to", &to])
        .output()
        .unwrap();
    assert!(output.status.success());
    let md = String::from_utf8_lossy(&output.stdout);
    assert!(md.contains(&env.namespace), "{md}");
    assert!(
        md.contains("DNS down for 20 minutes &lt;after reboot&gt;"),
        "{md}"
    );
}
