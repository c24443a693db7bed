//! `kubectl patchwave validate -f PATH... [-o text|json]`: every problem in a set of
//! manifests, offline, for the CI of a GitOps repository.
//!
//! Runs, in this order, the loader's checks ([`super::load`]: YAML, kinds and names, the typed
//! parse, unknown fields and the other structural schema constraints, the CRD's CEL rules) and
//! the engine's semantic validation ([`crate::engine::validation`]: cron expressions, time
//! zones, references between objects, overlapping policies, ...). A schema or CEL finding on a
//! field that the parse or the semantic validation already reported is left out, so that one
//! mistake gives one line.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::CliError;
use super::kubectl_yaml;
use super::load::{LoadProblem, LoadedFiles, ProblemSource};
use super::output::plural;
use crate::engine::validation;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Check patchwave manifests offline, without a cluster: the same structural and CEL checks the API
server makes, plus what only patchwave can check: cron expressions, time zones, durations,
selectors, references to Rings, MaintenanceWindows and PatchPolicies that do not exist, a ring
listed twice, Deny windows named as a policy's windows, overlapping policies of equal priority.

Every problem is printed with its file, object and field. Files and folders (read recursively,
.yaml, .yml and .json) may hold several YAML documents; objects of other API groups are skipped.";

/// Examples shown under `--help`.
pub const AFTER_HELP: &str = "\
Examples:
  kubectl patchwave validate -f examples/
  kubectl patchwave validate -f rings.yaml -f policies.yaml -o json
  kustomize build overlays/acme | kubectl patchwave validate -f -

Exit status: 0 when there are no problems, 1 when there are, 2 when a path cannot be read.";

/// Options of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or folders to read (folders recursively: .yaml, .yml and .json files); `-` reads
    /// standard input.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        required = true,
        num_args = 1..
    )]
    pub filenames: Vec<PathBuf>,

    /// Output format: text (one line per problem and a summary) or json.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Namespace for objects that do not name one.
    #[arg(short = 'n', long = "namespace", default_value = "default")]
    pub namespace: String,
}

/// Output formats of `validate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One line per problem, then a summary line (`table`, as plan and simulate call their
    /// output for people, is the same).
    #[value(alias = "table")]
    Text,
    /// `{"problems": [{file, document, kind, namespace, name, field, message, line}],
    /// "objects": N, "files": N}`.
    Json,
}

/// The result of validating a set of files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every problem, in file and document order.
    pub problems: Vec<ReportedProblem>,
    /// Number of patchwave objects read.
    pub objects: usize,
    /// Number of files read.
    pub files: usize,
}

/// One problem as `validate` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportedProblem {
    /// The file, as given on the command line (folders joined with the relative path).
    pub file: String,
    /// The 1-based YAML document in the file, when known: what tells apart objects that
    /// name no object.
    pub document: Option<usize>,
    /// Kind of the object, if known.
    pub kind: Option<String>,
    /// Namespace of the object, if known.
    pub namespace: Option<String>,
    /// Name of the object, if known.
    pub name: Option<String>,
    /// Path of the offending field, if known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The 1-based line in the file, when known.
    pub line: Option<usize>,
    /// The text line: `file: Kind/name: field: message`.
    #[serde(skip)]
    pub text: String,
}

/// Runs `validate`.
pub fn run(args: &Args) -> Result<ExitCode, CliError> {
    let loaded = super::load_manifests(&args.filenames, &args.namespace)?;
    let report = report(&loaded);
    let output = match args.output {
        Output::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
            json.push('\n');
            json
        }
        Output::Text => text(&report),
    };
    super::print(&output)?;
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every problem of the loaded files: the loader's and the semantic validation's of each
/// namespace, in file and document order, without repeats (see the module docs).
pub fn report(loaded: &LoadedFiles) -> Report {
    let mut problems: Vec<LoadProblem> = loaded.problems.clone();
    for (namespace, inventory) in &loaded.namespaces {
        let empty = Default::default();
        let unloadable = loaded.unloadable.get(namespace).unwrap_or(&empty);
        for problem in validation::validate_with(inventory, unloadable).problems {
            problems.push(semantic(loaded, namespace, problem));
        }
    }

    // Objects that did not parse are checked too, without the fields that failed: what is
    // found on the rest of them (a ring listed twice, an unknown window) is real. Only their
    // own problems are taken, and none on a field taken out or on one of its parents.
    for (namespace, salvaged) in &loaded.salvaged {
        let mut merged = loaded
            .namespaces
            .get(namespace)
            .cloned()
            .unwrap_or_default();
        merged.extend_from(&salvaged.inventory);
        let mut unloadable = loaded
            .unloadable
            .get(namespace)
            .cloned()
            .unwrap_or_default();
        unloadable.retain(|key| !salvaged.removed.contains_key(key));
        for problem in validation::validate_with(&merged, &unloadable).problems {
            let Some(removed) = salvaged.removed.get(&(problem.kind, problem.name.clone())) else {
                continue;
            };
            if removed
                .iter()
                .any(|r| related(problem.kind, &problem.field, r))
            {
                continue;
            }
            problems.push(semantic(loaded, namespace, problem));
        }
    }

    // A schema or CEL finding on a field the parse or the semantic validation reported.
    let precise: HashSet<FieldKey> = problems
        .iter()
        .filter(|p| matches!(p.source, ProblemSource::Parse | ProblemSource::Semantic))
        .map(|p| key_of(p))
        .collect();
    let keep: Vec<bool> = problems
        .iter()
        .map(|p| {
            !matches!(p.source, ProblemSource::Schema | ProblemSource::Cel)
                || !precise.contains(&key_of(p))
        })
        .collect();

    let file_order: HashMap<&std::path::Path, usize> = loaded
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_path(), i))
        .collect();
    let mut ordered: Vec<(usize, usize, usize, &LoadProblem)> = problems
        .iter()
        .zip(keep)
        .enumerate()
        .filter(|(_, (_, keep))| *keep)
        .map(|(i, (p, _))| {
            let file = file_order
                .get(p.file.as_path())
                .copied()
                .unwrap_or(usize::MAX);
            (file, p.document.unwrap_or(0), i, p)
        })
        .collect();
    ordered.sort_by_key(|(file, document, i, _)| (*file, *document, *i));
    let lines = field_lines(loaded, ordered.iter().map(|(_, _, _, p)| *p));

    Report {
        problems: ordered
            .into_iter()
            .map(|(_, _, _, p)| {
                let mut p = p.clone();
                if p.line.is_none() {
                    p.line = p
                        .document
                        .zip(p.field.clone())
                        .and_then(|key| lines.get(&(p.file.clone(), key)).copied());
                }
                ReportedProblem {
                    file: p.file.display().to_string(),
                    document: p.document,
                    kind: p.kind.clone(),
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    field: p.field.clone(),
                    message: p.message.clone(),
                    line: p.line,
                    text: p.to_string(),
                }
            })
            .collect(),
        objects: loaded.objects,
        files: loaded.files.len(),
    }
}

/// The line of the field of each problem that has none yet (the engine's findings, schema
/// findings after the first, a second wrong field), from the YAML text of its file: one walk
/// per such file.
fn field_lines<'p>(
    loaded: &LoadedFiles,
    problems: impl Iterator<Item = &'p LoadProblem>,
) -> HashMap<(PathBuf, (usize, String)), usize> {
    let mut wanted: HashMap<&std::path::Path, HashSet<(usize, String)>> = HashMap::new();
    for p in problems.filter(|p| p.line.is_none()) {
        if let (Some(document), Some(field)) = (p.document, &p.field) {
            wanted
                .entry(p.file.as_path())
                .or_default()
                .insert((document, field.clone()));
        }
    }
    let mut lines = HashMap::new();
    for (file, fields) in wanted {
        let Some(text) = loaded.sources.get(file) else {
            continue;
        };
        for (key, line) in kubectl_yaml::lines_of(text, &fields) {
            lines.insert((file.to_owned(), key), line);
        }
    }
    lines
}

/// A problem of the engine's validation as the loader's problems are told: with the file and
/// document its object came from.
fn semantic(loaded: &LoadedFiles, namespace: &str, problem: validation::Problem) -> LoadProblem {
    let key = (problem.kind, namespace.to_owned(), problem.name.clone());
    LoadProblem {
        file: loaded.origins.get(&key).cloned().unwrap_or_default(),
        document: loaded.documents.get(&key).copied(),
        line: None,
        kind: Some(problem.kind.to_owned()),
        namespace: Some(namespace.to_owned()),
        name: Some(problem.name),
        field: Some(problem.field),
        message: problem.message,
        source: ProblemSource::Semantic,
    }
}

/// Fields of a kind whose rules read each other: with one of them taken out, what is found
/// on the others describes the gap (a window "without start" is neither one-off nor
/// recurring).
const INTERDEPENDENT: &[(&str, &[&str])] = &[(
    validation::kind::WINDOW,
    &[
        "spec.schedule",
        "spec.start",
        "spec.end",
        "spec.duration",
        "spec.cutoff",
    ],
)];

/// Whether a problem on `field` of a `kind` may come from taking `removed` out: the same
/// field, one inside it, one of its parents (`spec` of `spec.type`), or one whose rules read
/// it ([`INTERDEPENDENT`]).
fn related(kind: &str, field: &str, removed: &str) -> bool {
    if INTERDEPENDENT
        .iter()
        .any(|(k, group)| *k == kind && group.contains(&field) && group.contains(&removed))
    {
        return true;
    }
    let inside = |outer: &str, inner: &str| {
        inner == outer
            || outer.is_empty()
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    inside(removed, field) || inside(field, removed)
}

/// `(kind, namespace, name, field)` of a problem.
type FieldKey<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn key_of(p: &LoadProblem) -> FieldKey<'_> {
    (
        p.kind.as_deref(),
        p.namespace.as_deref(),
        p.name.as_deref(),
        p.field.as_deref(),
    )
}

/// The text output: one line per problem, then a summary line.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for problem in &report.problems {
        let _ = writeln!(out, "{}", problem.text);
    }
    let objects = plural(report.objects, "object", "objects");
    let files = plural(report.files, "file", "files");
    if report.problems.is_empty() {
        let _ = writeln!(out, "validated {objects} in {files}: no problems");
    } else {
        // A document read as no object (bad YAML, no kind, no name) has nothing to tell it
        // from the others: each of its problems counts as one document.
        let with_problems: BTreeSet<(&str, &str, &str)> = report
            .problems
            .iter()
            .filter_map(|p| Some((p.file.as_str(), p.kind.as_deref()?, p.name.as_deref()?)))
            .collect();
        let nameless = report
            .problems
            .iter()
            .filter(|p| p.kind.is_none() || p.name.is_none())
            .count();
        let mut holders = Vec::new();
        if !with_problems.is_empty() || nameless == 0 {
            holders.push(plural(with_problems.len(), "object", "objects"));
        }
        if nameless > 0 {
            holders.push(plural(
                nameless,
                "document that names no object",
                "documents that name no object",
            ));
        }
        let _ = writeln!(
            out,
            "found {} in {} (validated {objects} in {files})",
            plural(report.problems.len(), "problem", "problems"),
            holders.join(" and "),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::path::Path;

    const FILES: &str = "apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata: {name: pilot}
spec:
  selector: {}
  bakeTime: 1d
---
apiVersion: patchwave.dev/v1alpha1
kind: PatchPolicy
metadata: {name: p}
spec:
  rings: [pilot, missing, broken]
---
apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata: {name: broken}
spec:
  selector: {}
  maxConcurrent: '150%'
";

    /// Each problem's object name and field.
    fn object_and_field(report: &Report) -> Vec<(&str, &str)> {
        report
            .problems
            .iter()
            .map(|p| {
                (
                    p.name.as_deref().unwrap_or_default(),
                    p.field.as_deref().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// A field that does not parse hides nothing else of its object: the rest is checked
    /// without it, and nothing is blamed on the gap.
    #[test]
    fn an_object_that_does_not_parse_is_still_checked_for_the_rest() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata: {name: r1}
spec: {selector: {}}
---
apiVersion: patchwave.dev/v1alpha1
kind: PatchPolicy
metadata: {name: p1}
spec:
  rings: [r1, r1, nope]
  windows: [nowin]
  onFailure: rollback
---
apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: w1}
spec:
  type: Sometimes
  start: '2026-03-02T10:00:00'
  end: '2026-03-02T11:00:00Z'
  timeZone: Mars/Olympus
";
        let loaded = crate::cli::load::load_str(Path::new("x.yaml"), text, "default");
        let report = report(&loaded);
        let fields = object_and_field(&report);
        for expected in [
            ("p1", "spec.onFailure"),
            ("p1", "spec.rings[1]"),
            ("p1", "spec.rings[2]"),
            ("p1", "spec.windows[0]"),
            ("w1", "spec.type"),
            ("w1", "spec.start"),
            ("w1", "spec.timeZone"),
        ] {
            assert!(fields.contains(&expected), "{expected:?} in {fields:#?}");
        }
        // Taking start out makes the window neither one-off nor recurring: not reported.
        assert_eq!(
            fields.iter().filter(|(name, _)| *name == "w1").count(),
            3,
            "{fields:#?}"
        );
        // The objects still take no part in plans.
        assert!(loaded.namespaces["default"].policies.is_empty());
    }

    #[test]
    fn an_object_whose_required_field_is_wrong_or_missing_is_still_checked_for_the_rest() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata: {name: sol01}
spec:
  osFamily: Solaris
  staleAfter: 0s
---
apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata: {name: nos01}
spec:
  expectedDuration: forever
---
apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata: {name: r1}
spec:
  bakeTime: 1 day
---
apiVersion: patchwave.dev/v1alpha1
kind: PatchPolicy
metadata: {name: p1}
spec:
  rings: [r1, r1]
";
        let loaded = crate::cli::load::load_str(Path::new("x.yaml"), text, "default");
        let report = report(&loaded);
        let fields = object_and_field(&report);
        assert_eq!(
            fields,
            [
                ("sol01", "spec.osFamily"),
                ("sol01", "spec.staleAfter"),
                ("nos01", "spec.osFamily"),
                ("nos01", "spec.expectedDuration"),
                ("r1", "spec.selector"),
                ("r1", "spec.bakeTime"),
                // r1 could not be read: p1 cannot take part without it.
                ("p1", "spec.rings[0]"),
                ("p1", "spec.rings[1]"),
            ],
            "{:#?}",
            report.problems
        );
        // The stand-ins of the missing and wrong fields are not blamed for anything, and the
        // objects still take no part in plans.
        assert!(loaded.namespaces["default"].assets.is_empty());
        assert!(loaded.namespaces["default"].rings.is_empty());
    }

    #[test]
    fn merges_load_and_semantic_problems_in_document_order() {
        let loaded = crate::cli::load::load_str(Path::new("x.yaml"), FILES, "default");
        let report = report(&loaded);
        let lines: Vec<&str> = report.problems.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with("x.yaml: Ring/pilot: spec.bakeTime: "),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with(
                "x.yaml: PatchPolicy/p: spec.rings[1]: Ring \"missing\" does not exist"
            ),
            "{lines:#?}"
        );
        // The engine's findings get the line of their field (a flow list: the list's line).
        assert!(lines[0].ends_with("(line 6)"), "{lines:#?}");
        assert!(lines[1].ends_with("(line 12)"), "{lines:#?}");
        // `broken` failed to parse: not missing, but the policy cannot take part without it;
        // its own problem is where it is defined.
        assert_eq!(
            lines[2],
            "x.yaml: PatchPolicy/p: spec.rings[2]: Ring \"broken\" exists but could not be read \
             (its own problem says why), so the policy cannot take part (line 12)"
        );
        assert!(
            lines[3].starts_with("x.yaml: Ring/broken: spec.maxConcurrent: \"150%\""),
            "{lines:#?}"
        );
        assert_eq!(report.objects, 3);
        let text = text(&report);
        assert!(
            text.ends_with("found 4 problems in 3 objects (validated 3 objects in 1 file)\n"),
            "{text}"
        );
    }

    #[test]
    fn semantic_problems_hide_cel_findings_on_the_same_field() {
        let loaded = crate::cli::load::load_str(
            Path::new("w.yaml"),
            "apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: w}
spec:
  schedule: '0 22 * *'
  duration: 2h
  timeZone: UTC
",
            "default",
        );
        let report = report(&loaded);
        let lines: Vec<&str> = report.problems.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("expected 5 fields"), "{lines:#?}");
    }

    #[test]
    fn clean_summary() {
        let report = Report {
            problems: vec![],
            objects: 1,
            files: 2,
        };
        assert_eq!(
            text(&report),
            "validated 1 object in 2 files: no problems\n"
        );
    }

    #[test]
    fn documents_read_as_no_object_are_counted_apart_from_objects() {
        let problem = |kind: Option<&str>, name: Option<&str>| ReportedProblem {
            file: "a.yaml".to_owned(),
            document: None,
            kind: kind.map(str::to_owned),
            namespace: None,
            name: name.map(str::to_owned),
            field: None,
            message: "bad".to_owned(),
            line: None,
            text: "a.yaml: bad".to_owned(),
        };
        let mut report = Report {
            problems: vec![problem(None, None), problem(None, None)],
            objects: 0,
            files: 1,
        };
        assert!(
            text(&report).ends_with(
                "found 2 problems in 2 documents that name no object (validated 0 objects in 1 file)\n"
            ),
            "{}",
            text(&report)
        );
        report.problems.push(problem(Some("Ring"), Some("pilot")));
        report.problems.push(problem(Some("Ring"), Some("pilot")));
        report.objects = 1;
        assert!(
            text(&report).ends_with(
                "found 4 problems in 1 object and 2 documents that name no object (validated 1 object in 1 file)\n"
            ),
            "{}",
            text(&report)
        );
    }
}
