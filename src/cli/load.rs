//! Reads patchwave objects from YAML files and folders, for the offline commands
//! (`validate`, `plan`, `simulate`).
//!
//! - Paths may be files or folders; folders are read recursively, `.yaml`, `.yml` and `.json`
//!   files only, hidden entries skipped, in lexical order (like `kubectl apply -R`). A file named
//!   explicitly is read whatever its extension. Every file is read once.
//! - Files may hold several YAML documents. Empty documents are skipped, and so are objects of
//!   other API groups (a `Namespace`, a `ConfigMap`); `v1` `List`s are unpacked. Unknown kinds
//!   or versions of `patchwave.dev` are reported.
//! - Each object is parsed into its typed form ([`Asset`], [`Ring`], [`MaintenanceWindow`],
//!   [`PatchPolicy`], [`PatchRollout`]) with its `status`, because the offline commands read the
//!   agents' reports from the files. Parse errors name the file, the object and the field path
//!   (`spec.maxConcurrent`), with the line where the YAML parser can tell it.
//! - Checks the API server would make before the engine sees an object: unknown fields (as
//!   `kubectl apply --validate=strict` does), string lengths, list sizes and number ranges of
//!   the CRD schema, object names, and the CRD's CEL rules, evaluated client-side with
//!   kube-cel (see [`CelRules`] for what is and is not covered). Also what kubectl's YAML 1.1
//!   reader would make of an unquoted value ([`super::kubectl_yaml`]): `yes` is no text to it.
//! - Objects are grouped by namespace; objects without one go to the default namespace given
//!   by the caller. The same kind/namespace/name in two places is reported, naming both.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kube::CustomResourceExt;
use kube::core::cel::{CompiledSchema, ErrorKind, Validator, compile_schema};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::kubectl_yaml;
use crate::api::{
    Asset, GROUP, MaintenanceWindow, PatchIncident, PatchPolicy, PatchRollout, Ring, VERSION,
};
use crate::engine::Inventory;
use crate::engine::duration::parse_duration;
use crate::engine::simulation::{DURATION_ANNOTATION, OUTCOME_ANNOTATION};
use crate::engine::validation::kind;

/// `(kind, namespace, name)` of an object, `kind` as in [`crate::engine::validation::kind`].
pub type ObjectKey = (&'static str, String, String);

/// The patchwave kinds, in the order problems and summaries list them.
pub const KINDS: [&str; 6] = [
    kind::ASSET,
    kind::RING,
    kind::WINDOW,
    kind::POLICY,
    kind::ROLLOUT,
    kind::INCIDENT,
];

/// Everything read from the given paths.
#[derive(Debug, Default)]
pub struct LoadedFiles {
    /// The objects that parsed, by namespace.
    pub namespaces: BTreeMap<String, Inventory>,
    /// The PatchIncidents that parsed (the engine never reads them; the report does).
    pub incidents: Vec<PatchIncident>,
    /// Which file each patchwave object came from (objects that failed to parse included).
    pub origins: HashMap<ObjectKey, PathBuf>,
    /// The 1-based index of the YAML document each object came from, within its file.
    pub documents: HashMap<ObjectKey, usize>,
    /// Objects that exist in the files but could not be parsed, by namespace, as
    /// `(kind, name)`; see [`crate::engine::validation::validate_with`].
    pub unloadable: BTreeMap<String, BTreeSet<(&'static str, String)>>,
    /// Unloadable objects parsed again with the fields that failed taken out (a required one
    /// stood in for by an empty value of its type), by namespace, so that `validate` can still
    /// check the rest of them (references, duplicates, cron expressions); they take no part in
    /// plans. See [`Salvaged`].
    pub salvaged: BTreeMap<String, Salvaged>,
    /// Every problem found while reading, in reading order.
    pub problems: Vec<LoadProblem>,
    /// The files read, in reading order.
    pub files: Vec<PathBuf>,
    /// The text of each YAML file read, so that problems found later (the engine's) can be
    /// given the line of their field.
    pub sources: HashMap<PathBuf, String>,
    /// Number of patchwave objects found (parsed or not, duplicates included).
    pub objects: usize,
    /// Number of documents skipped because they are not patchwave objects.
    pub skipped: usize,
}

/// The unloadable objects of one namespace, parsed without the fields that failed.
#[derive(Clone, Debug, Default)]
pub struct Salvaged {
    /// The objects (policies, rings, windows, assets, rollouts) as parsed without those
    /// fields.
    pub inventory: Inventory,
    /// The fields taken out of each object or stood in for, by `(kind, name)`, as dotted
    /// paths (`spec.onFailure`): they were reported already, and anything found on them or
    /// their parents now would come from the gap, not from what was written.
    pub removed: BTreeMap<(&'static str, String), Vec<String>>,
}

/// Which check found a [`LoadProblem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemSource {
    /// The file is not YAML, or a document is not a Kubernetes object.
    Yaml,
    /// An unknown patchwave kind or version, a missing or invalid name.
    Object,
    /// The document does not parse into its kind (wrong type, unknown enum value, missing
    /// required field).
    Parse,
    /// The same object in two places.
    Duplicate,
    /// The CRD schema: unknown fields, lengths, list sizes, number ranges.
    Schema,
    /// A CEL rule of the CRD.
    Cel,
    /// The engine's semantic validation ([`crate::engine::validation`]); the loader itself
    /// never produces these, `validate` merges them in.
    Semantic,
}

/// A problem found while reading the files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadProblem {
    /// The file.
    pub file: PathBuf,
    /// The 1-based index of the YAML document in the file, when known.
    pub document: Option<usize>,
    /// The 1-based line, when the YAML parser can tell.
    pub line: Option<usize>,
    /// The object's kind, when known.
    pub kind: Option<String>,
    /// The object's namespace, when known.
    pub namespace: Option<String>,
    /// The object's name, when known.
    pub name: Option<String>,
    /// The path of the offending field, such as `spec.maxConcurrent`, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Which check found it.
    pub source: ProblemSource,
}

impl fmt::Display for LoadProblem {
    /// `file: Kind/name: field: message (line N)`, leaving out what is unknown; without an
    /// object name, `document N` stands for the object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        match (&self.kind, &self.name) {
            (Some(kind), Some(name)) => write!(f, "{kind}/{name}: ")?,
            _ => {
                if let Some(document) = self.document {
                    write!(f, "document {document}: ")?;
                }
                if let Some(kind) = &self.kind {
                    write!(f, "{kind}: ")?;
                }
            }
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// A path that cannot be read at all. The command cannot go on (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct LoadError {
    /// The path.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// How standard input (the path `-`) appears in problems.
pub const STDIN: &str = "<stdin>";

/// Reads every patchwave object under `paths`; objects without a namespace go to
/// `default_namespace`. The path `-` reads standard input (once), for
/// `kustomize build | kubectl patchwave validate -f -`.
///
/// Problems with the content are collected in [`LoadedFiles::problems`]; only a path that
/// cannot be read (missing, unreadable, a folder that cannot be listed) is an error.
pub fn load(paths: &[PathBuf], default_namespace: &str) -> Result<LoadedFiles, LoadError> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        collect_files(path, true, &mut files, &mut seen)?;
    }
    let mut loader = Loader::new(default_namespace);
    for file in files {
        let read = if file == Path::new(STDIN) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map(|_| bytes)
        } else {
            std::fs::read(&file)
        };
        let bytes = read.map_err(|source| LoadError {
            path: file.clone(),
            source,
        })?;
        match String::from_utf8(bytes) {
            Ok(text) => {
                loader.load_text(&file, &text);
                if !is_json(&file) {
                    loader.out.sources.insert(file.clone(), text);
                }
            }
            Err(_) => loader.problem(
                &file,
                Context::default(),
                ProblemSource::Yaml,
                None,
                "the file is not UTF-8 text".into(),
            ),
        }
        loader.out.files.push(file);
    }
    Ok(loader.out)
}

/// Reads objects from `text` as if it were the file `file` (for tests and standard input).
pub fn load_str(file: &Path, text: &str, default_namespace: &str) -> LoadedFiles {
    let mut loader = Loader::new(default_namespace);
    loader.load_text(file, text);
    if !is_json(file) {
        loader.out.sources.insert(file.to_owned(), text.to_owned());
    }
    loader.out.files.push(file.to_owned());
    loader.out
}

fn collect_files(
    path: &Path,
    explicit: bool,
    files: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), LoadError> {
    if path == Path::new("-") {
        if seen.insert(PathBuf::from(STDIN)) {
            files.push(PathBuf::from(STDIN));
        }
        return Ok(());
    }
    let error = |source| LoadError {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(error)?;
    // Canonical paths catch a file named twice and symbolic-link loops.
    let canonical = std::fs::canonicalize(path).map_err(error)?;
    if !seen.insert(canonical) {
        return Ok(());
    }
    if metadata.is_dir() {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(path).map_err(error)? {
            let entry = entry.map_err(error)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            entries.push(entry.path());
        }
        entries.sort();
        for entry in entries {
            let is_dir = std::fs::metadata(&entry)
                .map_err(|source| LoadError {
                    path: entry.clone(),
                    source,
                })?
                .is_dir();
            if is_dir || is_manifest(&entry) {
                collect_files(&entry, false, files, seen)?;
            }
        }
    } else if explicit || is_manifest(path) {
        files.push(path.to_owned());
    }
    Ok(())
}

/// Whether `file` is read as JSON rather than YAML.
fn is_json(file: &Path) -> bool {
    file.extension().is_some_and(|e| e == "json")
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Where in the files a document is, and what it is as far as known.
#[derive(Clone, Debug, Default)]
struct Context {
    document: Option<usize>,
    /// Path prefix for objects inside a `List`: `items[3].`.
    prefix: String,
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

struct Loader {
    default_namespace: String,
    out: LoadedFiles,
    rules: CelRules,
    /// The unquoted values of the YAML file being read that kubectl reads as something else.
    retyped: Vec<kubectl_yaml::Retyped>,
}

impl Loader {
    fn new(default_namespace: &str) -> Self {
        Loader {
            default_namespace: default_namespace.to_owned(),
            out: LoadedFiles::default(),
            rules: CelRules::default(),
            retyped: Vec::new(),
        }
    }

    fn problem(
        &mut self,
        file: &Path,
        context: Context,
        source: ProblemSource,
        field: Option<String>,
        message: String,
    ) {
        self.problem_at(file, context, source, field, message, None);
    }

    fn problem_at(
        &mut self,
        file: &Path,
        context: Context,
        source: ProblemSource,
        field: Option<String>,
        message: String,
        line: Option<usize>,
    ) {
        let field = match (field, context.prefix.is_empty()) {
            (Some(field), false) => Some(format!("{}{field}", context.prefix)),
            (None, false) => Some(context.prefix.trim_end_matches('.').to_owned()),
            (field, true) => field,
        };
        self.out.problems.push(LoadProblem {
            file: file.to_owned(),
            document: context.document,
            line,
            kind: context.kind,
            namespace: context.namespace,
            name: context.name,
            field,
            message,
            source,
        });
    }

    fn load_text(&mut self, file: &Path, text: &str) {
        if is_json(file) {
            self.retyped = Vec::new();
            self.load_json(file, text);
            return;
        }
        self.retyped = kubectl_yaml::retyped_scalars(text);
        for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let context = Context {
                document: Some(i + 1),
                ..Context::default()
            };
            let yaml = serde_yaml::Value::deserialize(document);
            // Merge keys (`<<: *anchor`) are resolved as kubectl resolves them.
            let read = match yaml {
                Ok(mut yaml) => yaml
                    .apply_merge()
                    .and_then(|()| serde_yaml::from_value::<Value>(yaml)),
                Err(error) => {
                    self.yaml_problem(file, context, &error);
                    // serde_yaml cannot go on after a document it could not read (a syntax
                    // error, an unknown anchor, a number beyond 64 bits).
                    break;
                }
            };
            match read {
                Ok(value) => self.load_value(file, text, context, value),
                Err(error) => self.yaml_problem(file, context, &error),
            }
        }
    }

    /// A document that is not valid YAML (or has no JSON form).
    fn yaml_problem(&mut self, file: &Path, context: Context, error: &serde_yaml::Error) {
        let (message, line) = yaml_message(error);
        self.problem_at(
            file,
            context,
            ProblemSource::Yaml,
            None,
            format!("invalid YAML: {message}"),
            line,
        );
    }

    /// A `.json` file: one or more JSON values, read with serde_json (many times faster than
    /// the YAML parser on large generated fleets).
    fn load_json(&mut self, file: &Path, text: &str) {
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for (i, value) in stream.enumerate() {
            let context = Context {
                document: Some(i + 1),
                ..Context::default()
            };
            match value {
                Ok(value) => self.load_value(file, text, context, value),
                Err(error) => {
                    let message = error.to_string();
                    let suffix = format!(" at line {} column {}", error.line(), error.column());
                    self.problem_at(
                        file,
                        context,
                        ProblemSource::Yaml,
                        None,
                        format!("invalid JSON: {}", message.trim_end_matches(&suffix)),
                        Some(error.line()),
                    );
                    break;
                }
            }
        }
    }

    fn load_value(&mut self, file: &Path, text: &str, context: Context, value: Value) {
        let object = match value {
            Value::Null => return,
            Value::Object(object) => object,
            other => {
                self.problem(
                    file,
                    context,
                    ProblemSource::Yaml,
                    None,
                    format!(
                        "expected a Kubernetes object (a mapping with apiVersion, kind and \
                         metadata), found {}",
                        json_type(&other)
                    ),
                );
                return;
            }
        };
        let api_version = object.get("apiVersion").and_then(Value::as_str);
        let kind_name = object.get("kind").and_then(Value::as_str);
        let (Some(api_version), Some(kind_name)) = (api_version, kind_name) else {
            self.problem(
                file,
                context,
                ProblemSource::Object,
                None,
                "not a Kubernetes object: apiVersion and kind must both be set".into(),
            );
            return;
        };
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));

        if group.is_empty() && version == "v1" && kind_name.ends_with("List") {
            if let Some(Value::Array(items)) = object.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let context = Context {
                        document: context.document,
                        prefix: format!("{}items[{i}].", context.prefix),
                        ..Context::default()
                    };
                    self.load_value(file, text, context, item.clone());
                }
            }
            return;
        }
        if group != GROUP {
            self.out.skipped += 1;
            return;
        }

        let metadata = object.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let kind = KINDS.iter().copied().find(|k| *k == kind_name);
        let context = Context {
            kind: Some(kind_name.to_owned()),
            namespace: Some(
                namespace
                    .clone()
                    .unwrap_or_else(|| self.default_namespace.clone()),
            ),
            name: name.clone(),
            ..context
        };
        self.out.objects += 1;
        let Some(kind) = kind else {
            self.problem(
                file,
                context,
                ProblemSource::Object,
                Some("kind".into()),
                format!(
                    "unknown kind {kind_name:?} in {GROUP}; the kinds are {}",
                    KINDS.join(", ")
                ),
            );
            return;
        };
        if version != VERSION {
            self.problem(
                file,
                context,
                ProblemSource::Object,
                Some("apiVersion".into()),
                format!(
                    "unsupported version {api_version:?}; this kubectl-patchwave reads \
                     {GROUP}/{VERSION}"
                ),
            );
            return;
        }
        let Some(name) = name else {
            self.problem(
                file,
                context,
                ProblemSource::Object,
                Some("metadata.name".into()),
                "required field \"name\" is missing".into(),
            );
            return;
        };
        let mut object_problems = Vec::new();
        if kind == kind::ASSET {
            check_simulation_annotations(metadata, &mut object_problems);
        }
        if let Err(why) = check_object_name(&name) {
            object_problems.push(("metadata.name".to_owned(), format!("invalid name: {why}")));
        }
        if let Some(namespace) = &namespace {
            if let Err(why) = check_namespace(namespace) {
                object_problems.push((
                    "metadata.namespace".to_owned(),
                    format!("invalid namespace: {why}"),
                ));
            }
        }
        let namespace = namespace.unwrap_or_else(|| self.default_namespace.clone());

        let key: ObjectKey = (kind, namespace.clone(), name.clone());
        if let Some(first) = self.out.origins.get(&key) {
            let first_document = self.out.documents.get(&key).copied().unwrap_or_default();
            let message = if first == file {
                format!(
                    "{kind}/{name} is defined twice in namespace {namespace}: in documents \
                     {first_document} and {} of this file",
                    context.document.unwrap_or_default()
                )
            } else {
                format!(
                    "{kind}/{name} is defined twice in namespace {namespace}: here and in {} \
                     (document {first_document})",
                    first.display()
                )
            };
            self.problem(file, context, ProblemSource::Duplicate, None, message);
            return;
        }
        self.out.origins.insert(key.clone(), file.to_owned());
        self.out
            .documents
            .insert(key, context.document.unwrap_or_default());
        for (field, message) in object_problems {
            self.problem(
                file,
                context.clone(),
                ProblemSource::Object,
                Some(field),
                message,
            );
        }

        let value = Value::Object(object);
        // The typed parse first: its errors are the most precise.
        let parsed = self.parse_into_inventory(kind, &namespace, &value);
        let parse_field = match parsed {
            Ok(()) => None,
            Err(error) => {
                let line = if context.prefix.is_empty() {
                    context
                        .document
                        .and_then(|d| locate_parse_error(kind, text, d, error.field.as_deref()))
                } else {
                    None
                };
                self.out
                    .unloadable
                    .entry(namespace.clone())
                    .or_default()
                    .insert((kind, name.clone()));
                self.salvage(
                    kind,
                    &namespace,
                    &name,
                    &value,
                    error.field.as_deref(),
                    &error.message,
                );
                let field = error.field.clone();
                self.problem_at(
                    file,
                    context.clone(),
                    ProblemSource::Parse,
                    error.field,
                    error.message,
                    line,
                );
                field
            }
        };

        // Schema and CEL checks on the document as written; a field the parse already
        // complained about is not reported again.
        let mut reported: BTreeSet<String> = parse_field.into_iter().collect();
        let mut schema_problems = self.rules.schema_problems(kind, &value);
        schema_problems.extend(metadata_text_problems(value.get("metadata")));
        let cel_problems = self.rules.cel_problems(kind, &value);
        for (source, (field, message)) in schema_problems
            .into_iter()
            .map(|p| (ProblemSource::Schema, p))
            .chain(cel_problems.into_iter().map(|p| (ProblemSource::Cel, p)))
        {
            if reported.insert(format!("{field}\u{0}{message}")) && !reported.contains(&field) {
                self.problem(file, context.clone(), source, Some(field), message);
            }
        }
        // Unquoted values that kubectl will read as booleans or numbers. Where the field
        // wants one, the parse has complained about the text already.
        let retyped: Vec<(String, String, usize)> = self
            .retyped
            .iter()
            .filter(|r| Some(r.document) == context.document)
            .filter_map(|r| {
                let field = r.path.strip_prefix(&context.prefix)?;
                Some((field.to_owned(), r.message(), r.line))
            })
            .collect();
        for (field, message, line) in retyped {
            if !reported
                .iter()
                .any(|r| r == &field || r.starts_with(&format!("{field}\u{0}")))
            {
                self.problem_at(
                    file,
                    context.clone(),
                    ProblemSource::Yaml,
                    Some(field),
                    message,
                    Some(line),
                );
            }
        }
    }

    /// Parses `value` as `kind` and adds it to its namespace's inventory.
    fn parse_into_inventory(
        &mut self,
        kind: &'static str,
        namespace: &str,
        value: &Value,
    ) -> Result<(), ParseError> {
        // Incidents are audit records the engine never reads: kept apart from the inventory.
        if kind == kind::INCIDENT {
            let incident = with_namespace(parse::<PatchIncident>(value)?, namespace);
            self.out.incidents.push(incident);
            return Ok(());
        }
        let inventory = self.out.namespaces.entry(namespace.to_owned()).or_default();
        parse_object(kind, namespace, value, inventory)
    }

    /// Parses an object that failed (at `failed`) again, taking out each field that fails
    /// until the rest parses (at most [`MAX_SALVAGED_FIELDS`] of them), and keeps it in
    /// [`LoadedFiles::salvaged`]. Gives up on a field that cannot be taken out: a missing
    /// required one, or the object itself.
    fn salvage(
        &mut self,
        kind: &'static str,
        namespace: &str,
        name: &str,
        value: &Value,
        failed: Option<&str>,
        failed_message: &str,
    ) {
        if kind == kind::INCIDENT {
            return;
        }
        let mut value = value.clone();
        let mut removed: Vec<String> = Vec::new();
        let mut stood_in: Vec<String> = Vec::new();
        let mut field = failed.map(str::to_owned);
        let mut missing = failed_message.starts_with(MISSING);
        let mut inventory = Inventory::default();
        loop {
            let Some(path) = field.as_deref().and_then(removable_key) else {
                return;
            };
            // Each field is taken out once and stood in for once; a stand-in that does not
            // parse either ends the salvage.
            let tried = if missing { &stood_in } else { &removed };
            if removed.len() >= MAX_SALVAGED_FIELDS || tried.contains(&path) {
                return;
            }
            // A required field that is missing, or was taken out, gets a stand-in of its
            // type, so that the rest of the object can still be checked.
            let mended = if missing {
                let stand_in = self
                    .rules
                    .rules(kind)
                    .and_then(|rules| stand_in(&rules.schema, &path));
                stand_in.is_some_and(|stand_in| insert_path(&mut value, &path, stand_in))
            } else {
                remove_path(&mut value, &path)
            };
            if !mended {
                return;
            }
            if missing {
                stood_in.push(path.clone());
            }
            if !removed.contains(&path) {
                removed.push(path);
            }
            match parse_object(kind, namespace, &value, &mut inventory) {
                Ok(()) => break,
                Err(error) => {
                    missing = error.message.starts_with(MISSING);
                    field = error.field;
                }
            }
        }
        let salvaged = self.out.salvaged.entry(namespace.to_owned()).or_default();
        salvaged.inventory.extend_from(&inventory);
        salvaged.removed.insert((kind, name.to_owned()), removed);
    }
}

/// Most fields taken out of one object to parse the rest.
const MAX_SALVAGED_FIELDS: usize = 16;

/// The object key to take out for a parse error at `field` (`spec.rings[1]` takes out
/// `spec.rings`): `None` for the object itself or its metadata.
fn removable_key(field: &str) -> Option<String> {
    let key = field
        .split('[')
        .next()
        .unwrap_or(field)
        .trim_end_matches('.');
    (key.contains('.') && !key.starts_with("metadata")).then(|| key.to_owned())
}

/// How [`parse`] begins the message of a required field that is missing.
const MISSING: &str = "required field ";

/// A value of the type the CRD `schema` gives the field at the dotted `path` (object keys
/// only): its first enum value, or an empty one of its type.
fn stand_in(schema: &Value, path: &str) -> Option<Value> {
    let mut schema = schema;
    for key in path.split('.') {
        schema = schema.get("properties")?.get(key)?;
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return Some(first.clone());
    }
    if schema.get("x-kubernetes-int-or-string").is_some() {
        return Some(Value::from(0));
    }
    Some(match schema.get("type").and_then(Value::as_str)? {
        "string" => Value::from(""),
        "integer" | "number" => Value::from(0),
        "boolean" => Value::from(false),
        "array" => Value::Array(Vec::new()),
        "object" => Value::Object(serde_json::Map::new()),
        _ => return None,
    })
}

/// The object holding the key at the dotted `path` (object keys only) of `value`, and the key.
fn parent_of<'v, 'p>(
    value: &'v mut Value,
    path: &'p str,
) -> Option<(&'v mut serde_json::Map<String, Value>, &'p str)> {
    let (parents, key) = path.rsplit_once('.').unwrap_or(("", path));
    let mut current = value;
    for parent in parents.split('.').filter(|p| !p.is_empty()) {
        current = current.get_mut(parent)?;
    }
    Some((current.as_object_mut()?, key))
}

/// Sets the key at the dotted `path` of `value`; false when its parent is not an object.
fn insert_path(value: &mut Value, path: &str, new: Value) -> bool {
    parent_of(value, path).is_some_and(|(object, key)| {
        object.insert(key.to_owned(), new);
        true
    })
}

/// Removes the key at the dotted `path` from `value`; false when there is none.
fn remove_path(value: &mut Value, path: &str) -> bool {
    parent_of(value, path).is_some_and(|(object, key)| object.remove(key).is_some())
}

/// Parses `value` as `kind` (not an incident) into `inventory`.
fn parse_object(
    kind: &'static str,
    namespace: &str,
    value: &Value,
    inventory: &mut Inventory,
) -> Result<(), ParseError> {
    match kind {
        kind::ASSET => inventory
            .assets
            .push(Arc::new(with_namespace(parse(value)?, namespace))),
        kind::RING => inventory
            .rings
            .push(with_namespace(parse(value)?, namespace)),
        kind::WINDOW => inventory
            .windows
            .push(with_namespace(parse(value)?, namespace)),
        kind::POLICY => inventory
            .policies
            .push(with_namespace(parse(value)?, namespace)),
        kind::ROLLOUT => inventory
            .rollouts
            .push(with_namespace(parse(value)?, namespace)),
        _ => {}
    }
    Ok(())
}

/// Sets `metadata.namespace` (objects read without one belong to the default namespace).
fn with_namespace<K: kube::Resource>(mut object: K, namespace: &str) -> K {
    object.meta_mut().namespace = Some(namespace.to_owned());
    object
}

#[derive(Debug)]
struct ParseError {
    field: Option<String>,
    message: String,
}

fn parse<T: DeserializeOwned>(value: &Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let path = (path != "." && !path.is_empty()).then_some(path);
        let message = error.inner().to_string();
        // serde names the struct, not the field, for a missing field: point at the field.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'));
        match missing {
            Some(name) => ParseError {
                field: Some(match path {
                    Some(path) => format!("{path}.{name}"),
                    None => name.to_owned(),
                }),
                message: format!("required field {name:?} is missing"),
            },
            None => ParseError {
                field: path,
                message: with_yaml_1_1_hint(message),
            },
        }
    })
}

/// A parse error about text where a boolean or number belongs, for text that kubectl's YAML
/// 1.1 reader takes for one (`hold: yes`): says what to write so that every reader agrees.
fn with_yaml_1_1_hint(message: String) -> String {
    let text = message
        .strip_prefix("invalid type: string \"")
        .and_then(|rest| rest.split_once('"'))
        .map(|(text, _)| text);
    match text.and_then(kubectl_yaml::kubectl_reading) {
        Some(reading) => {
            let canonical = reading.rsplit(' ').next().unwrap_or_default().to_owned();
            format!(
                "{message}; kubectl would read {} as {reading} (YAML 1.1), other YAML readers as \
                 text: write {canonical}",
                text.unwrap_or_default()
            )
        }
        None => message,
    }
}

/// Line of the parse error of document `document` (1-based) of `text`, by parsing it again
/// straight from the YAML text (the first pass went through a JSON value, which has no
/// positions). Only called for documents that failed.
fn locate_parse_error(
    kind: &str,
    text: &str,
    document: usize,
    field: Option<&str>,
) -> Option<usize> {
    let doc = serde_yaml::Deserializer::from_str(text).nth(document.checked_sub(1)?)?;
    let error = match kind {
        kind::ASSET => serde_path_to_error::deserialize::<_, Asset>(doc).err(),
        kind::RING => serde_path_to_error::deserialize::<_, Ring>(doc).err(),
        kind::WINDOW => serde_path_to_error::deserialize::<_, MaintenanceWindow>(doc).err(),
        kind::POLICY => serde_path_to_error::deserialize::<_, PatchPolicy>(doc).err(),
        kind::ROLLOUT => serde_path_to_error::deserialize::<_, PatchRollout>(doc).err(),
        kind::INCIDENT => serde_path_to_error::deserialize::<_, PatchIncident>(doc).err(),
        _ => None,
    }?;
    // The first pass read the fields in sorted order, this one in the order written: with
    // two wrong fields they may stop at different ones, and a line of the other is wrong.
    let path = error.path().to_string();
    let same_field = match field {
        // A missing field is named below the object the YAML error points at.
        Some(field) => {
            field == path
                || field
                    .strip_prefix(&path)
                    .is_some_and(|rest| rest.starts_with('.'))
                || (path == "." && !field.contains('.'))
        }
        None => path == "." || path.is_empty(),
    };
    same_field.then(|| error.inner().location().map(|l| l.line()))?
}

/// A serde_yaml error's message without its " at line L column C" suffix, and the line.
fn yaml_message(error: &serde_yaml::Error) -> (String, Option<usize>) {
    let text = error.to_string();
    match error.location() {
        Some(location) => {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            let message = match text.find(&suffix) {
                Some(at) => format!("{}{}", &text[..at], &text[at + suffix.len()..]),
                None => text,
            };
            (message, Some(location.line()))
        }
        None => (text, None),
    }
}

/// Entries of a list that the schema makes a set or a map keyed by some fields
/// (`x-kubernetes-list-type`) and that repeat an earlier one, which the API server refuses.
fn duplicate_entries(schema: &Value, items: &[Value]) -> Vec<(usize, String)> {
    let keys: Vec<&str> = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => Vec::new(),
        Some("map") => schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default(),
        _ => return Vec::new(),
    };
    let identity = |item: &Value| -> Value {
        if keys.is_empty() {
            item.clone()
        } else {
            Value::Array(
                keys.iter()
                    .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        }
    };
    let mut seen: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let id = identity(item);
        if let Some(first) = seen.iter().position(|s| *s == id) {
            let message = if keys.is_empty() {
                format!("{item} is listed twice (also at index {first}); the list is a set")
            } else {
                let named: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k} {}", item.get(*k).unwrap_or(&Value::Null)))
                    .collect();
                format!(
                    "{} is listed twice (also at index {first}); the list holds one entry per {}",
                    named.join(", "),
                    keys.join(" and ")
                )
            };
            out.push((i, message));
        }
        seen.push(id);
    }
    out
}

/// Labels and annotations whose values are not text: the typed parse names only the first,
/// the API server refuses every one.
fn metadata_text_problems(metadata: Option<&Value>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (map, what) in [("labels", "label"), ("annotations", "annotation")] {
        let Some(Value::Object(entries)) = metadata.and_then(|m| m.get(map)) else {
            continue;
        };
        for (key, value) in entries {
            // A null is read as empty text, as the API server reads it.
            let message = match value {
                Value::Bool(_) | Value::Number(_) => format!(
                    "{what} values are text, found {} {value}; quote it: \"{value}\"",
                    json_type(value)
                ),
                Value::Array(_) | Value::Object(_) => {
                    format!("{what} values are text, found {}", json_type(value))
                }
                Value::Null | Value::String(_) => continue,
            };
            problems.push((format!("metadata.{map}.{key}"), message));
        }
    }
    problems
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The `simulate.patchwave.dev/` annotations of an Asset, which steer the offline simulator:
/// a typo must not silently simulate a success. (The operator ignores them, so the engine's
/// validation does not look at them.)
fn check_simulation_annotations(metadata: Option<&Value>, problems: &mut Vec<(String, String)>) {
    let annotations = metadata
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object);
    let Some(annotations) = annotations else {
        return;
    };
    if let Some(outcome) = annotations.get(OUTCOME_ANNOTATION) {
        if !matches!(
            outcome.as_str(),
            Some("Succeeded" | "Failed" | "NoResponse")
        ) {
            problems.push((
                format!("metadata.annotations[{OUTCOME_ANNOTATION}]"),
                format!(
                    "unknown simulated outcome {outcome}; expected Succeeded, Failed or NoResponse"
                ),
            ));
        }
    }
    if let Some(duration) = annotations.get(DURATION_ANNOTATION) {
        let parsed = duration
            .as_str()
            .ok_or_else(|| format!("expected a duration such as 25m, found {duration}"))
            .and_then(parse_duration);
        if let Err(message) = parsed {
            problems.push((
                format!("metadata.annotations[{DURATION_ANNOTATION}]"),
                message,
            ));
        }
    }
}

/// A DNS subdomain (RFC 1123), as Kubernetes requires for custom resource names.
fn check_object_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} must be a DNS subdomain: at most 253 lowercase letters, digits, '-' and \
             '.', starting and ending with a letter or digit"
        ))
    }
}

/// A DNS label (RFC 1123), as Kubernetes requires for namespaces.
fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.len() <= 63 && !namespace.contains('.') && check_object_name(namespace).is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{namespace:?} must be a DNS label: at most 63 lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        ))
    }
}

/// The CRD schemas and CEL rules of the five kinds, compiled on first use.
///
/// CEL rules are evaluated client-side with kube-cel (`kube::core::cel`), on the object as
/// written, so `validate` reports the API server's messages. Not covered:
///
/// - Rules using `type()` (the int-or-percent rules of `maxConcurrent`, `failureThreshold`
///   and `maxUnavailable`): kube-cel cannot evaluate `type()`. The engine's semantic
///   validation checks the same ranges.
/// - Transition rules (`oldSelf`): there is no old object offline.
/// - Assets: evaluating CEL costs about 1.5 ms per Asset with a status, too slow for large
///   fleets, and the Asset rules are simple: the duration patterns of `staleAfter` and
///   `expectedDuration` are re-checked by the engine's validation, and the CVE pattern of
///   `status.reported.availableUpdates[].cves` is checked natively here.
///
/// Only failed rules are reported; a rule kube-cel cannot compile or evaluate is skipped, not
/// reported as a problem of the object.
#[derive(Default)]
pub struct CelRules {
    validator: Option<Validator>,
    kinds: HashMap<&'static str, KindRules>,
}

struct KindRules {
    schema: Value,
    cel: CompiledSchema,
}

impl fmt::Debug for CelRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CelRules")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CelRules {
    fn rules(&mut self, kind: &'static str) -> Option<&KindRules> {
        if !self.kinds.contains_key(kind) {
            let crd = match kind {
                kind::ASSET => Asset::crd(),
                kind::RING => Ring::crd(),
                kind::WINDOW => MaintenanceWindow::crd(),
                kind::POLICY => PatchPolicy::crd(),
                kind::ROLLOUT => PatchRollout::crd(),
                kind::INCIDENT => PatchIncident::crd(),
                _ => return None,
            };
            let schema = crd
                .spec
                .versions
                .first()
                .and_then(|v| v.schema.as_ref())
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .and_then(|s| serde_json::to_value(s).ok())?;
            let cel = compile_schema(&schema);
            self.kinds.insert(kind, KindRules { schema, cel });
        }
        self.kinds.get(kind)
    }

    /// Problems the CRD's structural schema finds: unknown fields, lengths, sizes, ranges.
    fn schema_problems(&mut self, kind: &'static str, value: &Value) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(rules) = self.rules(kind) {
            if let Value::Object(object) = value {
                for (key, child) in object {
                    if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    match rules.schema.get("properties").and_then(|p| p.get(key)) {
                        Some(schema) => walk_schema(schema, child, &mut key.clone(), &mut problems),
                        None => problems.push((key.clone(), unknown_field(key, &rules.schema))),
                    }
                }
            }
        }
        if kind == kind::ASSET {
            check_cves(value, &mut problems);
        }
        problems
    }

    /// Failed CEL rules, as `(field, message)`. Assets are not evaluated (see the type docs).
    fn cel_problems(&mut self, kind: &'static str, value: &Value) -> Vec<(String, String)> {
        if kind == kind::ASSET {
            return Vec::new();
        }
        let validator = self.validator.take().unwrap_or_default();
        let result = self
            .rules(kind)
            .map(|rules| validator.validate_compiled(&rules.cel, value, None));
        self.validator = Some(validator);
        let Some(Err(errors)) = result else {
            return Vec::new();
        };
        errors
            .into_iter()
            .filter(|e| e.kind == ErrorKind::ValidationFailure)
            .map(|e| {
                let field = if e.field_path.is_empty() {
                    "spec".to_owned()
                } else {
                    e.field_path
                };
                (field, e.message)
            })
            .collect()
    }
}

/// Checks `value` against the structural `schema` at `path`, as the API server would: types,
/// enums, required fields, unknown fields, string lengths, list sizes, number ranges. The
/// typed parse stops at its first error; this walk finds the others, so one run lists every
/// mistake of an object.
///
/// `path` is a buffer the walk extends and restores, so that a clean object costs no
/// allocation per field.
fn walk_schema(
    schema: &Value,
    value: &Value,
    path: &mut String,
    problems: &mut Vec<(String, String)>,
) {
    let mut push = |path: &str, message: String| problems.push((path.to_owned(), message));
    if let Some(message) = type_problem(schema, value) {
        push(path, message);
        return;
    }
    match value {
        Value::Object(object) => {
            // Missing before unknown: the API server's order, and a misspelt required field
            // shows as both, the suggestion naming the fix.
            let required = schema.get("required").and_then(Value::as_array);
            for name in required.into_iter().flatten().filter_map(Value::as_str) {
                if object.get(name).is_none_or(Value::is_null) {
                    problems.push((
                        format!("{path}.{name}"),
                        format!("required field {name:?} is missing"),
                    ));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            for (key, child) in object {
                let length = path.len();
                path.push('.');
                path.push_str(key);
                if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                    walk_schema(child_schema, child, path, problems);
                } else if let Some(additional) = additional.filter(|a| a.is_object()) {
                    walk_schema(additional, child, path, problems);
                } else if properties.is_some() && !preserve && additional.is_none() {
                    problems.push((path.clone(), unknown_field(key, schema)));
                }
                path.truncate(length);
            }
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if count > max {
                    push(
                        path,
                        format!("must have at most {max} items, found {count}"),
                    );
                }
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if count < min {
                    push(
                        path,
                        format!("must have at least {min} items, found {count}"),
                    );
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let length = path.len();
                    let _ = write!(path, "[{i}]");
                    walk_schema(item_schema, item, path, problems);
                    path.truncate(length);
                }
            }
            for (i, message) in duplicate_entries(schema, items) {
                problems.push((format!("{path}[{i}]"), message));
            }
        }
        Value::String(text) => {
            if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
                if !allowed.iter().any(|a| a.as_str() == Some(text)) {
                    push(path, unknown_variant(text, allowed));
                }
            }
            let max = schema.get("maxLength").and_then(Value::as_u64);
            let min = schema.get("minLength").and_then(Value::as_u64);
            if max.is_none() && min.is_none() {
                return;
            }
            let length = text.chars().count() as u64;
            if let Some(max) = max.filter(|max| length > *max) {
                push(
                    path,
                    format!("must be at most {max} characters, found {length}"),
                );
            }
            if let Some(min) = min.filter(|min| length < *min) {
                push(
                    path,
                    if min == 1 {
                        "must not be empty".to_owned()
                    } else {
                        format!("must be at least {min} characters, found {length}")
                    },
                );
            }
        }
        Value::Number(number) => {
            let Some(n) = number.as_f64() else {
                return;
            };
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if n > max {
                    push(path, format!("must be at most {max}, found {number}"));
                }
            }
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if n < min {
                    push(path, format!("must be at least {min}, found {number}"));
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// The type error of `value` under `schema`, worded as the typed parse words its own. Null
/// is left alone: the typed parse decides what an absent value means.
fn type_problem(schema: &Value, value: &Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (fits, expected) = if int_or_string {
        (
            value.is_string() || value.is_i64() || value.is_u64(),
            "an integer or a string",
        )
    } else {
        match schema.get("type").and_then(Value::as_str)? {
            "string" => (value.is_string(), "a string"),
            "integer" => (value.is_i64() || value.is_u64(), "an integer"),
            "number" => (value.is_number(), "a number"),
            "boolean" => (value.is_boolean(), "a boolean"),
            "array" => (value.is_array(), "a list"),
            "object" => (value.is_object(), "a mapping"),
            _ => return None,
        }
    };
    (!fits).then(|| format!("invalid type: {}, expected {expected}", json_type(value)))
}

/// serde's words for a value outside an enum: ``unknown variant `Huge`, expected one of
/// `Critical`, `High` ``.
fn unknown_variant(text: &str, allowed: &[Value]) -> String {
    let names: Vec<String> = allowed
        .iter()
        .filter_map(Value::as_str)
        .map(|a| format!("`{a}`"))
        .collect();
    let expected = match names.as_slice() {
        [] => "nothing".to_owned(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        more => format!("one of {}", more.join(", ")),
    };
    format!("unknown variant `{text}`, expected {expected}")
}

/// `unknown field "maxConcurent"; did you mean "maxConcurrent"?`
fn unknown_field(key: &str, schema: &Value) -> String {
    let known: Vec<&String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    let closest = known
        .iter()
        .map(|k| (edit_distance(&k.to_lowercase(), &key.to_lowercase()), *k))
        .filter(|(d, _)| *d <= 2)
        .min();
    match closest {
        Some((_, suggestion)) => format!("unknown field {key:?}; did you mean {suggestion:?}?"),
        None if known.is_empty() => format!("unknown field {key:?}"),
        None => format!(
            "unknown field {key:?}; the fields here are {}",
            known
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// The CRD's CEL rule on `cves`, `^CVE-[0-9]{4}-[0-9]{4,}$`, evaluated natively (see
/// [`CelRules`]).
fn check_cves(value: &Value, problems: &mut Vec<(String, String)>) {
    let updates = value
        .pointer("/status/reported/availableUpdates")
        .and_then(Value::as_array);
    for (i, update) in updates.into_iter().flatten().enumerate() {
        let Some(cves) = update.get("cves").and_then(Value::as_array) else {
            continue;
        };
        if !cves.iter().all(|c| c.as_str().is_some_and(is_cve_id)) {
            problems.push((
                format!("status.reported.availableUpdates[{i}].cves"),
                "cves entries must look like CVE-2026-12345".to_owned(),
            ));
        }
    }
}

fn is_cve_id(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && number.len() >= 4
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn load_text(text: &str) -> LoadedFiles {
        load_str(Path::new("test.yaml"), text, "default")
    }

    fn lines(loaded: &LoadedFiles) -> Vec<String> {
        loaded.problems.iter().map(|p| p.to_string()).collect()
    }

    const RING: &str = "apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata:
  name: pilot
  namespace: acme
spec:
  selector: {}
  maxConcurrent: 2
";

    #[test]
    fn unquoted_values_kubectl_reads_as_booleans_or_numbers_are_reported() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata:
  name: web01
  labels: {backup: yes, site: '0755', zip: 01234}
spec:
  osFamily: Linux
  hold: yes
---
apiVersion: v1
kind: List
items:
- apiVersion: patchwave.dev/v1alpha1
  kind: Ring
  metadata: {name: pilot, labels: {tier: off}}
  spec: {selector: {}}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: c, labels: {a: yes}}
";
        let loaded = load_text(text);
        assert_eq!(
            lines(&loaded),
            [
                // A field that wants a boolean says so already, and what to write.
                "test.yaml: Asset/web01: spec.hold: invalid type: string \"yes\", expected a \
                 boolean; kubectl would read yes as the boolean true (YAML 1.1), other YAML \
                 readers as text: write true (line 8)",
                "test.yaml: Asset/web01: metadata.labels.backup: kubectl reads the unquoted yes \
                 as the boolean true (YAML 1.1), and the API server refuses that where text \
                 belongs; quote it: \"yes\" (line 5)",
                "test.yaml: Asset/web01: metadata.labels.zip: kubectl reads the unquoted 01234 \
                 as the number 668 (YAML 1.1), and the API server refuses that where text \
                 belongs; quote it: \"01234\" (line 5)",
                "test.yaml: Ring/pilot: items[0].metadata.labels.tier: kubectl reads the \
                 unquoted off as the boolean false (YAML 1.1), and the API server refuses that \
                 where text belongs; quote it: \"off\" (line 15)",
            ]
        );
    }

    #[test]
    fn a_number_written_as_yaml_1_1_octal_says_what_to_write() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: PatchPolicy
metadata: {name: p}
spec: {priority: 010, rings: [pilot]}
";
        assert_eq!(
            lines(&load_text(text)),
            [
                "test.yaml: PatchPolicy/p: spec.priority: invalid type: string \"010\", expected \
              i32; kubectl would read 010 as the number 8 (YAML 1.1), other YAML readers as \
              text: write 8 (line 4)"
            ]
        );
    }

    #[test]
    fn entries_repeated_in_sets_and_keyed_lists_are_reported() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: PatchRollout
metadata: {name: r}
spec:
  policy: p
  policyGeneration: 1
  revision: x
  updates: [{id: openssl}]
  rings: [pilot]
  approvedRings: [{name: pilot}, {name: rest}, {name: pilot, note: again}]
";
        assert_eq!(
            lines(&load_text(text)),
            [
                "test.yaml: PatchRollout/r: spec.approvedRings[2]: name \"pilot\" is listed twice \
              (also at index 0); the list holds one entry per name"
            ]
        );
    }

    #[test]
    fn every_label_value_that_is_not_text_is_reported() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata: {name: r, labels: {a: true, b: 0, c: 0.5, d: [x], e: ~, f: ok}}
spec: {selector: {}}
";
        let fields: Vec<(String, String)> = load_text(text)
            .problems
            .iter()
            .map(|p| (p.field.clone().unwrap_or_default(), p.message.clone()))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "metadata.labels.a".to_owned(),
                    "invalid type: boolean `true`, expected a string".to_owned()
                ),
                (
                    "metadata.labels.b".to_owned(),
                    "label values are text, found a number 0; quote it: \"0\"".to_owned()
                ),
                (
                    "metadata.labels.c".to_owned(),
                    "label values are text, found a number 0.5; quote it: \"0.5\"".to_owned()
                ),
                (
                    "metadata.labels.d".to_owned(),
                    "label values are text, found a list".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn reads_multi_document_yaml_and_skips_other_kinds() {
        let text = format!(
            "---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: acme}}\n---\n{RING}---\n"
        );
        let loaded = load_text(&text);
        assert_eq!(lines(&loaded), Vec::<String>::new());
        assert_eq!(loaded.objects, 1);
        assert_eq!(loaded.skipped, 1);
        let acme = &loaded.namespaces["acme"];
        assert_eq!(acme.rings.len(), 1);
        let key = (kind::RING, "acme".to_owned(), "pilot".to_owned());
        assert_eq!(loaded.origins[&key], Path::new("test.yaml"));
        assert_eq!(loaded.documents[&key], 3);
    }

    #[test]
    fn objects_without_namespace_go_to_the_default() {
        let loaded = load_str(
            Path::new("x.yaml"),
            &RING.replace("  namespace: acme\n", ""),
            "site-a",
        );
        let ring = &loaded.namespaces["site-a"].rings[0];
        assert_eq!(ring.metadata.namespace.as_deref(), Some("site-a"));
    }

    #[test]
    fn keeps_status() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata: {name: web01}
spec: {osFamily: Linux}
status:
  reported:
    availableUpdates:
      - {id: openssl, classification: Security, cves: [CVE-2026-1234]}
";
        let loaded = load_text(text);
        assert_eq!(lines(&loaded), Vec::<String>::new());
        let asset = &loaded.namespaces["default"].assets[0];
        let reported = asset.status.as_ref().unwrap().reported.as_ref().unwrap();
        assert_eq!(reported.available_updates[0].id, "openssl");
    }

    #[test]
    fn parse_errors_name_object_field_and_line() {
        let text = RING.replace("maxConcurrent: 2", "maxConcurrent: \"150%\"");
        let loaded = load_text(&text);
        assert_eq!(
            lines(&loaded),
            vec![
                "test.yaml: Ring/pilot: spec.maxConcurrent: \"150%\" is neither an integer nor \
                 a percentage between 0% and 100% (line 8)"
            ]
        );
        assert_eq!(loaded.problems[0].source, ProblemSource::Parse);
        assert!(
            loaded
                .namespaces
                .get("acme")
                .is_none_or(|i| i.rings.is_empty())
        );
        assert!(loaded.unloadable["acme"].contains(&(kind::RING, "pilot".to_owned())));
        // Still counted and still known, so references to it are not "missing".
        assert_eq!(loaded.objects, 1);
    }

    #[test]
    fn yaml_syntax_errors_name_document_and_line() {
        let text = format!("{RING}---\nkind: Ring\n  bad: [indent\n");
        let loaded = load_text(&text);
        let lines = lines(&loaded);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].starts_with("test.yaml: document 2: invalid YAML: ")
                && lines[0].ends_with("(line 11)"),
            "{lines:#?}"
        );
        // The document before the error was read.
        assert_eq!(loaded.namespaces["acme"].rings.len(), 1);
    }

    #[test]
    fn merge_keys_are_resolved_and_a_number_beyond_64_bits_names_its_field() {
        let text = "apiVersion: patchwave.dev/v1alpha1\nkind: Ring\nmetadata: {name: merged, namespace: acme}\n\
                    spec:\n  selector: &everything {matchLabels: {site: zrh}}\n  maxConcurrent: 2\n  \
                    failureThreshold: &few 1\n---\n\
                    apiVersion: patchwave.dev/v1alpha1\nkind: Ring\nmetadata: {name: big, namespace: acme}\n\
                    spec: {selector: {}, maxConcurrent: 99999999999999999999}\n";
        let found = lines(&load_text(text));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("test.yaml: document 2: invalid YAML: spec.maxConcurrent: ")
                && found[0].ends_with("(line 12)"),
            "{found:#?}"
        );
        let text = "apiVersion: patchwave.dev/v1alpha1\nkind: Ring\nmetadata: {name: twice, namespace: acme}\n\
                    spec:\n  selector:\n    <<: {matchLabels: {site: zrh}}\n    matchExpressions: []\n";
        let loaded = load_text(text);
        assert!(lines(&loaded).is_empty(), "{:#?}", lines(&loaded));
        let selector = &loaded.namespaces["acme"].rings[0].spec.selector;
        assert_eq!(
            selector.match_labels.as_ref().and_then(|l| l.get("site")),
            Some(&"zrh".to_owned())
        );
    }

    #[test]
    fn a_parse_error_never_gets_the_line_of_another_field() {
        let policy = "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {name: p1, namespace: acme}\n\
                      spec:\n  rings: [pilot]\n";
        // Alone, the wrong field gets its line.
        let found = lines(&load_text(&format!("{policy}  onFailure: Panic\n")));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].contains("spec.onFailure: unknown variant `Panic`")
                && found[0].ends_with("(line 6)"),
            "{found:#?}"
        );
        // Behind another wrong field (read first in the written order), no line rather than
        // that field's line; the schema walk lists the other field.
        let found = lines(&load_text(&format!(
            "{policy}  reboot: Sometimes\n  onFailure: Panic\n"
        )));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].contains("spec.onFailure: unknown variant `Panic`")
                && !found[0].contains("(line"),
            "{found:#?}"
        );
        assert!(
            found[1].contains("spec.reboot: unknown variant `Sometimes`"),
            "{found:#?}"
        );
    }

    #[test]
    fn unknown_patchwave_kinds_and_versions_are_reported() {
        let text = "apiVersion: patchwave.dev/v1alpha1\nkind: Rign\nmetadata: {name: a}\n---\n\
                    apiVersion: patchwave.dev/v1\nkind: Ring\nmetadata: {name: b}\n---\n\
                    apiVersion: patchwave.dev/v1alpha1\nkind: Ring\nmetadata: {}\nspec: {selector: {}}\n---\n\
                    [1, 2]\n";
        let lines = lines(&load_text(text));
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].contains("Rign/a: kind: unknown kind \"Rign\""),
            "{lines:#?}"
        );
        assert!(
            lines[1].contains("Ring/b: apiVersion: unsupported version"),
            "{lines:#?}"
        );
        assert!(
            lines[2]
                .contains("document 3: Ring: metadata.name: required field \"name\" is missing"),
            "{lines:#?}"
        );
        assert!(
            lines[3].contains("document 4: expected a Kubernetes object"),
            "{lines:#?}"
        );
    }

    #[test]
    fn duplicates_name_both_places() {
        let loaded = load_text(&format!("{RING}---\n{RING}"));
        assert_eq!(
            lines(&loaded),
            vec![
                "test.yaml: Ring/pilot: Ring/pilot is defined twice in namespace acme: in \
                 documents 1 and 2 of this file"
            ]
        );
        assert_eq!(loaded.namespaces["acme"].rings.len(), 1);
    }

    #[test]
    fn unknown_fields_lengths_and_ranges_from_the_schema() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: PatchPolicy
metadata: {name: p}
spec:
  rings: [pilot]
  priority: 2000
  updates: {deferdays: 3}
  hooks: {preInstall: pre}
  maxConcurent: 3
  disruptionBudgets: [{selector: {matchLabels: {a: b}}, maxUnavailable: 1, extra: 1}]
";
        let lines = lines(&load_text(text));
        assert_eq!(
            lines,
            vec![
                "test.yaml: PatchPolicy/p: spec.disruptionBudgets[0].extra: unknown field \"extra\"; the fields here are maxUnavailable, selector",
                "test.yaml: PatchPolicy/p: spec.maxConcurent: unknown field \"maxConcurent\"; the fields here are deadlines, description, disruptionBudgets, hooks, manualApproval, onFailure, operationTimeout, priority, reboot, rings, selector, suspend, updates, windows",
                "test.yaml: PatchPolicy/p: spec.priority: must be at most 1000, found 2000",
                "test.yaml: PatchPolicy/p: spec.updates.deferdays: unknown field \"deferdays\"; did you mean \"deferDays\"?",
            ]
        );
    }

    #[test]
    fn every_type_enum_and_required_mistake_of_an_object_is_listed() {
        // The typed parse stops at spec.approval; the schema walk finds the rest, as the API
        // server would list them all in one rejection.
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: Ring
metadata: {name: pilot}
spec:
  selector: {matchExpressions: [{operator: In, values: [a]}]}
  approval: Sometimes
  maxConcurrent: [1]
  bakeTime: 5
---
apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata: {name: a1}
spec: {osFamily: Plan9, criticality: Huge, hold: 'yes', staleAfter: ~}
";
        let loaded = load_text(text);
        assert_eq!(
            lines(&loaded),
            vec![
                "test.yaml: Ring/pilot: spec.approval: unknown variant `Sometimes`, expected `Automatic` or `Manual` (line 6)",
                "test.yaml: Ring/pilot: spec.bakeTime: invalid type: a number, expected a string",
                "test.yaml: Ring/pilot: spec.maxConcurrent: invalid type: a list, expected an integer or a string",
                "test.yaml: Ring/pilot: spec.selector.matchExpressions[0].key: required field \"key\" is missing",
                "test.yaml: Asset/a1: spec.criticality: unknown variant `Huge`, expected one of `Critical`, `High`, `Medium`, `Low`",
                "test.yaml: Asset/a1: spec.hold: invalid type: a string, expected a boolean",
                "test.yaml: Asset/a1: spec.osFamily: unknown variant `Plan9`, expected one of `Windows`, `MacOS`, `Linux`",
            ]
        );
        // Neither object is in the inventory: the engine sees only what parsed.
        assert!(
            loaded
                .namespaces
                .values()
                .all(|i| i.rings.is_empty() && i.assets.is_empty())
        );
    }

    #[test]
    fn cel_rules_report_the_api_servers_messages() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: MaintenanceWindow
metadata: {name: w}
spec:
  schedule: '0 22 * *'
  duration: 2h
  cutoff: 3h
";
        let lines = lines(&load_text(text));
        assert!(
            lines.contains(
                &"test.yaml: MaintenanceWindow/w: spec.schedule: a recurring window (schedule) also needs duration and timeZone".to_owned()
            ),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("spec.cutoff: cutoff must be shorter than duration")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("spec.schedule: schedule must be a 5-field cron expression")),
            "{lines:#?}"
        );
    }

    #[test]
    fn asset_cves_are_checked() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata: {name: a}
spec: {osFamily: Linux}
status:
  reported:
    availableUpdates:
      - {id: x, cves: [CVE-2026-1234, cve-1]}
";
        assert_eq!(
            lines(&load_text(text)),
            vec![
                "test.yaml: Asset/a: status.reported.availableUpdates[0].cves: cves entries must look like CVE-2026-12345"
            ]
        );
    }

    #[test]
    fn simulation_annotations_are_checked() {
        let text = "apiVersion: patchwave.dev/v1alpha1
kind: Asset
metadata:
  name: a
  annotations:
    simulate.patchwave.dev/outcome: failed
    simulate.patchwave.dev/duration: 25 minutes
spec: {osFamily: Linux}
";
        let lines = lines(&load_text(text));
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].starts_with(
                "test.yaml: Asset/a: metadata.annotations[simulate.patchwave.dev/outcome]: \
                 unknown simulated outcome \"failed\""
            ),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with(
                "test.yaml: Asset/a: metadata.annotations[simulate.patchwave.dev/duration]: \
                 duration \"25 minutes\""
            ),
            "{lines:#?}"
        );
        let clean = text
            .replace("failed", "NoResponse")
            .replace("25 minutes", "25m");
        assert_eq!(self::lines(&load_text(&clean)), Vec::<String>::new());
    }

    #[test]
    fn json_files_are_read_with_json_line_numbers() {
        let ring = r#"{"apiVersion": "patchwave.dev/v1alpha1", "kind": "Ring",
            "metadata": {"name": "r", "namespace": "acme"}, "spec": {"selector": {}}}"#;
        let loaded = load_str(Path::new("x.json"), &format!("{ring}\n{ring}\n"), "default");
        assert_eq!(
            lines(&loaded),
            vec![
                "x.json: Ring/r: Ring/r is defined twice in namespace acme: in documents 1 and 2 of this file"
            ]
        );
        let loaded = load_str(
            Path::new("x.json"),
            &format!("{ring}\n{{\"kind\": ]"),
            "default",
        );
        assert_eq!(loaded.namespaces["acme"].rings.len(), 1);
        let lines = lines(&loaded);
        assert!(
            lines[0].starts_with("x.json: document 2: invalid JSON: expected value")
                && lines[0].ends_with("(line 3)"),
            "{lines:#?}"
        );
    }

    #[test]
    fn invalid_names_are_reported() {
        let lines = lines(&load_text(&RING.replace("name: pilot", "name: Pilot")));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("Ring/Pilot: metadata.name: invalid name"),
            "{lines:#?}"
        );
    }

    #[test]
    fn lists_are_unpacked() {
        let text = format!(
            "apiVersion: v1\nkind: List\nitems:\n{}",
            RING.replace("maxConcurrent: 2", "maxConcurrent: 0%")
                .lines()
                .enumerate()
                .map(|(i, l)| if i == 0 {
                    format!("- {l}\n")
                } else {
                    format!("  {l}\n")
                })
                .collect::<String>()
        );
        let loaded = load_text(&text);
        assert_eq!(loaded.namespaces["acme"].rings.len(), 1);
        assert_eq!(loaded.objects, 1);
    }

    #[test]
    fn folders_are_read_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("b");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("c.yaml"), RING).unwrap();
        std::fs::write(sub.join("a.yml"), RING.replace("pilot", "rest")).unwrap();
        std::fs::write(dir.path().join("README.md"), "# not yaml").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "{{{").unwrap();
        let loaded = load(
            &[dir.path().to_owned(), dir.path().join("c.yaml")],
            "default",
        )
        .unwrap();
        assert_eq!(lines(&loaded), Vec::<String>::new());
        assert_eq!(
            loaded.files,
            vec![sub.join("a.yml"), dir.path().join("c.yaml")]
        );
        let err = load(&[dir.path().join("missing")], "default").unwrap_err();
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn cve_ids() {
        assert!(is_cve_id("CVE-2026-1234"));
        assert!(is_cve_id("CVE-2026-123456"));
        assert!(!is_cve_id("CVE-26-1234"));
        assert!(!is_cve_id("CVE-2026-123"));
        assert!(!is_cve_id("cve-2026-1234"));
    }
}
