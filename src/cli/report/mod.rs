//! `kubectl patchwave report`: the monthly patch report for people who do not open a terminal.
//!
//! The content is decided in [`crate::kpi::report`]; this module only gathers the objects (from
//! the cluster, or offline from YAML files), picks the period and renders the report as
//! Markdown ([`markdown`]), one self-contained HTML file with inline SVG charts ([`html`],
//! [`svg`]), a long-format CSV table ([`csv`]) or JSON (the [`Report`] as it is serialised).
//!
//! Every renderer starts with the one-page summary (the verdict, the key figures now and in the
//! period before, what needs a decision), then the trend, then the details. Shares without data
//! are shown as "n/a", never as 0%.

pub mod csv;
pub mod html;
pub mod markdown;
pub mod svg;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use jiff::{Timestamp, Zoned, tz::TimeZone};
use kube::api::ListParams;
use kube::{Api, Resource};

use super::cluster::{self, Cluster, ClusterArgs};
use super::output::parse_time;
use super::{CliError, load};
use crate::api::{Asset, PatchIncident, PatchPolicy, PatchRollout};
use crate::kpi::report::{self, Change, Report};
use crate::kpi::{Inputs, Period, RecordedIncident};

/// The monthly patch report: are we compliant, what changed since last month, what needs a
/// decision; then trends and details.
///
/// Reads Assets (their reported installed history and available updates), PatchRollouts,
/// PatchPolicies (deadlines) and PatchIncidents from the cluster your kubeconfig points at, or
/// offline from YAML files with -f. The default period is the last full calendar month (UTC).
/// Markdown goes to standard output; HTML is one self-contained file (inline CSS and SVG charts,
/// nothing fetched, prints on A4) meant for --output.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    kubectl patchwave report -n acme                                # last month, Markdown\n  \
    kubectl patchwave report -n acme --month 2026-11 -o html --output acme-2026-11.html\n  \
    kubectl patchwave report -A --from 2026-11-01 --to 2026-11-15 -o csv > kpis.csv\n  \
    kubectl patchwave report -f examples/ --month 2026-11 -o json   # offline, from YAML")]
pub struct Args {
    /// The calendar month to report (UTC), as YYYY-MM, at the latest the current one.
    /// Default: the last full month.
    #[arg(long, value_name = "YYYY-MM")]
    pub month: Option<String>,
    /// Start of a custom period (RFC 3339, or a date: midnight UTC), not in the future; needs
    /// --to.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<Timestamp>,
    /// End of a custom period, excluded (RFC 3339, or a date: midnight UTC); needs --from.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<Timestamp>,
    /// Report over all namespaces (on the cluster: every namespace the objects are in).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Read the objects from these YAML files or folders instead of the cluster (folders
    /// recursively; `-` reads standard input). Without -n, every namespace in the files.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// md (Markdown), html (one self-contained file), csv (section,group,figure,value) or
    /// json. Default: from the --output file's extension (.md, .markdown, .html, .htm, .csv,
    /// .json; any other extension needs -o), else md.
    #[arg(short = 'o', long = "format", value_enum, value_name = "FORMAT")]
    pub format: Option<ReportFormat>,
    /// Write the report to this file instead of standard output.
    #[arg(long = "output", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Where the cluster is.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The formats of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for a wiki, a ticket or an e-mail.
    #[value(alias = "markdown")]
    Md,
    /// One self-contained HTML file with inline SVG charts; prints on A4.
    Html,
    /// A long-format table `section,group,figure,value` (RFC 4180) for spreadsheets and BI.
    Csv,
    /// The report as JSON.
    Json,
}

/// The file extensions the report knows, as `--output` names them.
const KNOWN_EXTENSIONS: &str = ".md, .markdown, .html, .htm, .csv, .json";

impl ReportFormat {
    /// The format a file name suggests (`.md`, `.html`, `.htm`, `.csv`, `.json`).
    fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "md" | "markdown" => Some(Self::Md),
            "html" | "htm" => Some(Self::Html),
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The format to write: `-o` if given, else the one the `--output` file's extension names,
    /// else Markdown (standard output, or a file without an extension). An extension the
    /// report does not know is refused rather than guessed: `r.pdf` holding Markdown would
    /// only be found out when someone opens it.
    pub fn choose(format: Option<Self>, output: Option<&Path>) -> Result<Self, CliError> {
        if let Some(format) = format {
            return Ok(format);
        }
        let Some(path) = output else {
            return Ok(Self::Md);
        };
        let Some(extension) = path.extension() else {
            return Ok(Self::Md);
        };
        Self::from_path(path).ok_or_else(|| {
            CliError::Usage(format!(
                "--output {}: the report cannot tell the format from the extension .{} \
                 (it knows {KNOWN_EXTENSIONS}); name the format with -o md|html|csv|json, \
                 or use one of those extensions",
                path.display(),
                extension.to_string_lossy()
            ))
        })
    }
}

/// The objects a report is computed from.
#[derive(Debug, Default)]
pub struct Sources {
    /// Namespaces covered.
    pub namespaces: Vec<String>,
    /// Assets.
    pub assets: Vec<Asset>,
    /// PatchRollouts.
    pub rollouts: Vec<PatchRollout>,
    /// PatchPolicies.
    pub policies: Vec<PatchPolicy>,
    /// PatchIncidents, as the KPIs read them.
    pub incidents: Vec<RecordedIncident>,
}

/// Runs `report`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let now = Timestamp::now();
    let period = period(args, now)?;
    if args.all_namespaces && args.cluster.namespace.is_some() {
        return Err(CliError::Usage(
            "-A (all namespaces) and -n NAMESPACE cannot be used together".to_owned(),
        ));
    }
    let format = ReportFormat::choose(args.format, args.output_file.as_deref())?;
    let sources = if args.paths.is_empty() {
        cluster::block_on(from_cluster(&args.cluster, args.all_namespaces))?
    } else {
        from_files(&args.paths, args.cluster.namespace.as_deref())?
    };
    let assets: Vec<&Asset> = sources.assets.iter().collect();
    let rollouts: Vec<&PatchRollout> = sources.rollouts.iter().collect();
    let report = report::build(
        Inputs {
            assets: &assets,
            rollouts: &rollouts,
            policies: &sources.policies,
            incidents: &sources.incidents,
            policy: None,
        },
        sources.namespaces,
        period,
        now,
    );
    let text = render(&report, format)?;
    match &args.output_file {
        Some(path) => {
            std::fs::write(path, text.as_bytes()).map_err(|e| {
                CliError::Output(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ))
            })?;
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("report written to {}\n", path.display()).as_bytes(),
            );
        }
        None => super::print(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: ReportFormat) -> Result<String, CliError> {
    Ok(match format {
        ReportFormat::Md => markdown::render(report),
        ReportFormat::Html => html::render(report),
        ReportFormat::Csv => csv::render(report),
        ReportFormat::Json => {
            serde_json::to_string_pretty(report)
                .map_err(|e| CliError::Output(std::io::Error::other(e)))?
                + "\n"
        }
    })
}

/// The period the flags ask for: `--month`, `--from`/`--to`, else the last full month.
/// A period that starts after `now` is refused: the KPIs would count deadlines that have not
/// passed as missed. One that has begun (the current month) is allowed.
pub fn period(args: &Args, now: Timestamp) -> Result<Period, CliError> {
    let today = Zoned::new(now, TimeZone::UTC)
        .strftime("%Y-%m-%d")
        .to_string();
    match (&args.month, args.from, args.to) {
        (Some(month), None, None) => match report::month(month).map_err(CliError::Usage)? {
            period if period.from > now => Err(CliError::Usage(format!(
                "--month {month} has not begun yet (today is {today} UTC): a report covers \
                 what has happened; choose the current month or an earlier one"
            ))),
            period => Ok(period),
        },
        (Some(_), _, _) => Err(CliError::Usage(
            "--month and --from/--to cannot be used together: give a month, or a period".to_owned(),
        )),
        (None, Some(from), Some(to)) if from >= to => Err(CliError::Usage(format!(
            "--from {from} is not before --to {to}: the period would be empty"
        ))),
        (None, Some(from), Some(_)) if from > now => Err(CliError::Usage(format!(
            "--from {from} lies in the future (today is {today} UTC): a report covers what has \
             happened; choose a period that has begun"
        ))),
        (None, Some(from), Some(to)) => Ok(Period { from, to }),
        (None, Some(_), None) => Err(CliError::Usage(
            "--from needs --to (the end of the period, excluded)".to_owned(),
        )),
        (None, None, Some(_)) => Err(CliError::Usage(
            "--to needs --from (the start of the period)".to_owned(),
        )),
        (None, None, None) => Ok(report::last_month(now)),
    }
}

/// Lists the objects on the cluster: in the namespace of the flags, or in all (`-A`).
async fn from_cluster(args: &ClusterArgs, all_namespaces: bool) -> Result<Sources, CliError> {
    let cluster = Cluster::connect(args).await?;
    // A mistyped namespace would give a plausible "No data" report for the dashboard.
    if !all_namespaces && let Some(missing) = cluster.missing_namespace().await {
        return Err(missing);
    }
    let scope = if all_namespaces {
        "all namespaces".to_owned()
    } else {
        format!("namespace {}", cluster.namespace)
    };
    let assets: Vec<Asset> = list(&cluster, all_namespaces, "assets", &scope).await?;
    let rollouts: Vec<PatchRollout> =
        list(&cluster, all_namespaces, "patchrollouts", &scope).await?;
    let policies: Vec<PatchPolicy> =
        list(&cluster, all_namespaces, "patchpolicies", &scope).await?;
    // A cluster whose CRDs predate PatchIncident still gets a report, without recorded
    // incidents, and is told so.
    let incidents: Vec<PatchIncident> =
        match list(&cluster, all_namespaces, "patchincidents", &scope).await {
            Ok(incidents) => incidents,
            Err(error) => {
                warn(&format!(
                    "{error}; recorded incidents are left out of the report"
                ));
                Vec::new()
            }
        };
    let namespaces = if all_namespaces {
        let mut seen = BTreeSet::new();
        seen.extend(assets.iter().filter_map(|o| o.meta().namespace.clone()));
        seen.extend(rollouts.iter().filter_map(|o| o.meta().namespace.clone()));
        seen.extend(policies.iter().filter_map(|o| o.meta().namespace.clone()));
        seen.extend(incidents.iter().filter_map(|o| o.meta().namespace.clone()));
        seen.into_iter().collect()
    } else {
        vec![cluster.namespace.clone()]
    };
    Ok(Sources {
        namespaces,
        assets,
        rollouts,
        policies,
        incidents: incidents.iter().filter_map(recorded_incident).collect(),
    })
}

/// Lists one kind in the namespace, or in all namespaces.
async fn list<K>(
    cluster: &Cluster,
    all_namespaces: bool,
    plural: &str,
    scope: &str,
) -> Result<Vec<K>, CliError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    <K as Resource>::DynamicType: Default,
{
    let api: Api<K> = if all_namespaces {
        Api::all(cluster.client.clone())
    } else {
        cluster.api()
    };
    api.list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|e| {
            CliError::Cluster(format!(
                "cannot list {plural} in {scope}: {e} (are the patchwave CRDs installed?)"
            ))
        })
}

/// A PatchIncident as the KPIs count it; `None` (with a warning) when it says neither when it
/// happened nor when it was recorded.
fn recorded_incident(incident: &PatchIncident) -> Option<RecordedIncident> {
    let recorded = RecordedIncident::of(incident);
    if recorded.is_none() {
        warn(&format!(
            "patchincident {} has neither spec.occurredAt nor a creation time; it is left out",
            incident.metadata.name.as_deref().unwrap_or("?")
        ));
    }
    recorded
}

/// Reads the objects from files and folders with the loader of `plan` and `simulate`, which
/// also keeps the PatchIncidents (apart: the engine does not need them).
/// `namespace`: only this namespace (and the one for objects that name none).
fn from_files(paths: &[PathBuf], namespace: Option<&str>) -> Result<Sources, CliError> {
    let default_namespace = namespace.unwrap_or("default");
    // Standard input can be read once: read it here, for the loader.
    let stdin = if paths.iter().any(|p| p == Path::new("-")) {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| load::LoadError {
                path: PathBuf::from(load::STDIN),
                source,
            })?;
        Some(text)
    } else {
        None
    };
    let files: Vec<PathBuf> = paths
        .iter()
        .filter(|p| *p != Path::new("-"))
        .cloned()
        .collect();
    let mut loaded = load::load(&files, default_namespace)?;
    if let Some(text) = stdin {
        let from_stdin = load::load_str(Path::new(load::STDIN), &text, default_namespace);
        for (ns, inventory) in from_stdin.namespaces {
            let into = loaded.namespaces.entry(ns).or_default();
            into.assets.extend(inventory.assets);
            into.rollouts.extend(inventory.rollouts);
            into.policies.extend(inventory.policies);
            into.rings.extend(inventory.rings);
            into.windows.extend(inventory.windows);
        }
        loaded.incidents.extend(from_stdin.incidents);
        loaded.problems.extend(from_stdin.problems);
    }
    for problem in &loaded.problems {
        warn(&format!("{problem} (this object takes no part)"));
    }
    let incidents = loaded.incidents;

    let mut sources = Sources::default();
    let mut namespaces = BTreeSet::new();
    for (ns, inventory) in loaded.namespaces {
        if namespace.is_some_and(|wanted| wanted != ns) {
            continue;
        }
        sources
            .assets
            .extend(inventory.assets.into_iter().map(Arc::unwrap_or_clone));
        sources.rollouts.extend(inventory.rollouts);
        sources.policies.extend(inventory.policies);
        namespaces.insert(ns);
    }
    for incident in incidents {
        let ns = incident.metadata.namespace.clone().unwrap_or_default();
        if namespace.is_some_and(|wanted| wanted != ns) {
            continue;
        }
        if let Some(recorded) = recorded_incident(&incident) {
            sources.incidents.push(recorded);
            namespaces.insert(ns);
        }
    }
    if let Some(wanted) = namespace {
        namespaces.insert(wanted.to_owned());
    }
    sources.namespaces = namespaces.into_iter().collect();
    Ok(sources)
}

fn warn(message: &str) {
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("warning: {message}\n").as_bytes(),
    );
}

// Formatting shared by the renderers.

/// " … and N more" after a list cut at [`crate::kpi::MAX_LISTED`] names; empty when nothing
/// was cut.
pub fn more(all: u32, listed: usize) -> String {
    match all.saturating_sub(u32::try_from(listed).unwrap_or(u32::MAX)) {
        0 => String::new(),
        n => format!(" … and {n} more"),
    }
}

/// A share as a whole percentage, `n/a` without data.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

/// A duration in hours for people: `36.0 h`, or days from two days on (`5.7 days`); `n/a`.
pub fn hours(value: Option<f64>) -> String {
    match value {
        None => "n/a".to_owned(),
        Some(h) if h >= 48.0 => format!("{:.1} days", h / 24.0),
        Some(h) => format!("{h:.1} h"),
    }
}

/// A key figure's value in its unit.
pub fn change_value(change: &Change, value: Option<f64>) -> String {
    match change.unit {
        "percent" => percent(value),
        "hours" => hours(value),
        _ => value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}")),
    }
}

/// How a key figure moved: an arrow in the direction of the value and better or worse.
pub fn change_trend(change: &Change) -> String {
    let arrow = match (change.now, change.before) {
        (Some(now), Some(before)) if now > before => "↑",
        (Some(now), Some(before)) if now < before => "↓",
        (Some(_), Some(_)) => "=",
        _ => return "no comparison".to_owned(),
    };
    match change.better {
        Some(true) => format!("{arrow} better"),
        Some(false) => format!("{arrow} worse"),
        None => format!("{arrow} unchanged"),
    }
}

/// A period for a title: `November 2026` for a calendar month, else `2026-11-03 – 2026-11-17`
/// (the last day included).
pub fn period_title(period: &Period) -> String {
    let from = Zoned::new(period.from, TimeZone::UTC);
    let last = Zoned::new(
        period
            .to
            .checked_sub(jiff::SignedDuration::from_nanos(1))
            .unwrap_or(period.to),
        TimeZone::UTC,
    );
    let is_month = from.day() == 1
        && from.hour() == 0
        && from.minute() == 0
        && from.second() == 0
        && from.subsec_nanosecond() == 0
        && from
            .checked_add(jiff::ToSpan::month(1))
            .is_ok_and(|end| end.timestamp() == period.to);
    if is_month {
        from.strftime("%B %Y").to_string()
    } else {
        format!(
            "{} – {}",
            from.strftime("%Y-%m-%d"),
            last.strftime("%Y-%m-%d")
        )
    }
}

/// The labels of the reported period and the one before (the last two of the trend).
pub fn now_and_before_labels(report: &Report) -> (String, String) {
    let n = report.trend.len();
    let label = |i: Option<usize>, fallback: &str| {
        i.and_then(|i| report.trend.get(i))
            .map_or_else(|| fallback.to_owned(), |p| p.label.clone())
    };
    (
        label(n.checked_sub(1), "this period"),
        label(n.checked_sub(2), "before"),
    )
}

/// An instant for people: `2026-11-30 17:00 UTC`.
pub fn time(t: Timestamp) -> String {
    Zoned::new(t, TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// The names of a map of groups in a sensible order: the known ones first, in `order`, then
/// the others alphabetically.
pub fn ordered<'a, V>(
    map: &'a std::collections::BTreeMap<String, V>,
    order: &[&str],
) -> Vec<(&'a str, &'a V)> {
    let mut out: Vec<(&str, &V)> = order
        .iter()
        .filter_map(|k| map.get_key_value(*k).map(|(k, v)| (k.as_str(), v)))
        .collect();
    out.extend(
        map.iter()
            .filter(|(k, _)| !order.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v)),
    );
    out
}

/// Update severities, most severe first.
pub const SEVERITIES: [&str; 5] = ["Critical", "Important", "Moderate", "Low", "Unspecified"];
/// Asset criticalities, most critical first.
pub const CRITICALITIES: [&str; 4] = ["Critical", "High", "Medium", "Low"];
/// The age buckets of open updates: label and the field's name in JSON and CSV.
pub const AGE_BUCKETS: [(&str, &str); 5] = [
    ("0–7 days", "days0to7"),
    ("8–14 days", "days8to14"),
    ("15–30 days", "days15to30"),
    ("over 30 days", "over30"),
    ("no release date", "unknown"),
];

/// The counts of `buckets` in the order of [`AGE_BUCKETS`].
pub fn bucket_counts(buckets: &crate::kpi::AgeBuckets) -> [u32; 5] {
    [
        buckets.days0to7,
        buckets.days8to14,
        buckets.days15to30,
        buckets.over30,
        buckets.unknown,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        text.parse().expect("a time")
    }

    #[test]
    fn periods_are_titled_for_people() {
        let november = report::month("2026-11").expect("a month");
        assert_eq!(period_title(&november), "November 2026");
        let custom = Period {
            from: t("2026-11-03T00:00:00Z"),
            to: t("2026-11-18T00:00:00Z"),
        };
        assert_eq!(period_title(&custom), "2026-11-03 – 2026-11-17");
    }

    fn period_of(argv: &[&str], now: &str) -> Result<Period, CliError> {
        #[derive(Debug, clap::Parser)]
        struct Harness {
            #[command(flatten)]
            args: Args,
        }
        let harness = <Harness as clap::Parser>::try_parse_from(
            std::iter::once("report").chain(argv.iter().copied()),
        )
        .expect("valid flags");
        period(&harness.args, t(now))
    }

    #[test]
    fn a_period_that_has_not_begun_is_refused() {
        let now = "2026-11-27T08:00:00Z";
        let error = period_of(&["--month", "2030-01"], now).expect_err("in the future");
        assert!(matches!(error, CliError::Usage(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("--month 2030-01 has not begun yet (today is 2026-11-27 UTC)"),
            "{message}"
        );
        let message = period_of(&["--from", "2026-12-01", "--to", "2026-12-15"], now)
            .expect_err("in the future")
            .to_string();
        assert!(
            message.contains(
                "--from 2026-12-01T00:00:00Z lies in the future (today is 2026-11-27 UTC)"
            ),
            "{message}"
        );
        // The current month and a period that has begun are partly in the future: allowed.
        let current = period_of(&["--month", "2026-11"], now).expect("the current month");
        assert_eq!(current.from, t("2026-11-01T00:00:00Z"));
        assert!(period_of(&["--from", "2026-11-20", "--to", "2026-12-20"], now).is_ok());
        assert!(period_of(&[], now).is_ok(), "the default, last month");
    }

    #[test]
    fn figures_without_data_are_not_zero() {
        assert_eq!(percent(None), "n/a");
        assert_eq!(percent(Some(2.0 / 3.0)), "67%");
        assert_eq!(hours(Some(72.0)), "3.0 days");
        assert_eq!(hours(Some(12.25)), "12.2 h");
        assert_eq!(hours(None), "n/a");
    }

    #[test]
    fn the_format_follows_the_file_name() {
        assert_eq!(
            ReportFormat::from_path(Path::new("a/acme.HTML")),
            Some(ReportFormat::Html)
        );
        assert_eq!(
            ReportFormat::from_path(Path::new("kpis.csv")),
            Some(ReportFormat::Csv)
        );
        assert_eq!(ReportFormat::from_path(Path::new("report")), None);
    }

    #[test]
    fn an_unknown_extension_is_refused_not_guessed() {
        let choose = |format, file: &str| ReportFormat::choose(format, Some(Path::new(file)));
        let error = choose(None, "r.pdf").expect_err("a PDF is not a format of the report");
        assert!(matches!(error, CliError::Usage(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("--output r.pdf") && message.contains(".pdf"),
            "{message}"
        );
        assert!(message.contains(KNOWN_EXTENSIONS), "{message}");
        // -o decides for any file name; known extensions and none keep their defaults.
        assert_eq!(
            choose(Some(ReportFormat::Html), "r.pdf").ok(),
            Some(ReportFormat::Html)
        );
        assert_eq!(choose(None, "r.HTM").ok(), Some(ReportFormat::Html));
        assert_eq!(choose(None, "report").ok(), Some(ReportFormat::Md));
        assert_eq!(
            ReportFormat::choose(None, None).ok(),
            Some(ReportFormat::Md)
        );
    }

    #[test]
    fn incidents_are_read_from_yaml_documents_and_lists() {
        let text = "\
apiVersion: patchwave.dev/v1alpha1
kind: PatchIncident
metadata: {name: i1}
spec: {asset: a1, rollout: r1, note: 'DNS down', occurredAt: '2026-11-20T09:00:00Z'}
---
apiVersion: v1
kind: List
items:
- apiVersion: patchwave.dev/v1alpha1
  kind: PatchIncident
  metadata: {name: i2, namespace: other}
  spec: {asset: a2, rollout: r1, note: 'slow', impact: High}
---
apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata: {name: a1}
";
        let incidents = load::load_str(Path::new("x.yaml"), text, "acme").incidents;
        assert_eq!(incidents.len(), 2);
        assert_eq!(incidents[0].metadata.namespace.as_deref(), Some("acme"));
        assert_eq!(incidents[1].metadata.namespace.as_deref(), Some("other"));
        let recorded = recorded_incident(&incidents[0]).expect("has a time");
        assert_eq!(recorded.occurred_at, t("2026-11-20T09:00:00Z"));
        assert_eq!(recorded.impact, "Medium");
        // Without occurredAt and a creation time there is nothing to count it in.
        assert!(recorded_incident(&incidents[1]).is_none());
    }
}
