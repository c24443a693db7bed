//! Writes every generated file of the repository: the CRD YAML under `crds/` from the Rust
//! types, and the copies the Helm chart and the kustomize bases install.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

/// Generate the patchwave CustomResourceDefinitions and every copy of generated content.
///
/// Run it after changing anything under src/api, config/grafana/ or config/agent-policy/,
/// then commit the result:
///
///     cargo run --bin patchwave-crdgen
///
/// It writes:
///   crds/*.yaml                                  one CRD per kind, from the Rust types
///   charts/patchwave/files/crds/*.yaml           the same CRDs, which the chart templates
///   config/crds/*.yaml, kustomization.yaml       the same CRDs as a kustomize base
///   charts/patchwave/files/patchwave-dashboard.json      from config/grafana/
///   charts/patchwave/files/agent-admission-policy.yaml  from config/agent-policy/
///
/// With --check it writes nothing and exits with status 1 naming every stale, missing or
/// stray file (the test `crds_up_to_date` runs it).
#[derive(Parser)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Repository root the paths above are relative to.
    #[arg(long, default_value = ".")]
    root: PathBuf,

    /// Compare instead of writing: exit 1 if any generated file differs from what is on disk.
    #[arg(long)]
    check: bool,
}

/// The CRDs of the repository, one file per kind.
const CRD_DIR: &str = "crds";
/// Directories that hold nothing but generated CRD copies: anything else there is stray.
const CRD_COPY_DIRS: [&str; 2] = ["charts/patchwave/files/crds", "config/crds"];
/// Hand-written sources and where the chart reads their copies.
const COPIES: [(&str, &str, Option<&str>); 2] = [
    (
        "config/grafana/patchwave-dashboard.json",
        "charts/patchwave/files/patchwave-dashboard.json",
        // JSON has no comments: the chart README says where it comes from.
        None,
    ),
    (
        "config/agent-policy/admission-policy.yaml",
        "charts/patchwave/files/agent-admission-policy.yaml",
        Some(
            "# Copied from config/agent-policy/admission-policy.yaml by `cargo run --bin patchwave-crdgen`.\n\
             # Edit that file, not this copy: tests/crds_up_to_date.rs fails when the copy is stale.\n",
        ),
    ),
];

/// One file the generator owns: where it goes and what it must contain.
struct Generated {
    path: PathBuf,
    text: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (files, owned_dirs) = match generated_files(&args.root) {
        Ok(generated) => generated,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        let problems = check(&args.root, &files, &owned_dirs);
        if problems.is_empty() {
            println!("all {} generated files are up to date", files.len());
            return ExitCode::SUCCESS;
        }
        for problem in &problems {
            eprintln!("{problem}");
        }
        eprintln!("run `cargo run --bin patchwave-crdgen` and commit the result");
        return ExitCode::FAILURE;
    }
    for file in &files {
        let path = args.root.join(&file.path);
        if let Err(message) = write(&path, &file.text) {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
        println!("wrote {}", file.path.display());
    }
    for problem in strays(&args.root, &files, &owned_dirs) {
        eprintln!("warning: {problem}; delete it");
    }
    ExitCode::SUCCESS
}

/// Every generated file, and the directories whose every file must be generated.
fn generated_files(root: &Path) -> Result<(Vec<Generated>, Vec<PathBuf>), String> {
    let mut files = Vec::new();
    let mut crd_names = Vec::new();
    for (file, crd) in patchwave::api::crds::all() {
        let text = patchwave::api::crds::render(&crd)
            .map_err(|e| format!("rendering the CRD {file}: {e}"))?;
        // The chart adds its labels and the keep policy after the one top-level `metadata:`.
        if text.matches("\nmetadata:\n").count() != 1 {
            return Err(format!(
                "the CRD {file} must have exactly one top-level `metadata:` line (the chart's crds.yaml inserts its annotations there)"
            ));
        }
        files.push(Generated {
            path: Path::new(CRD_DIR).join(file),
            text: text.clone(),
        });
        for dir in CRD_COPY_DIRS {
            files.push(Generated {
                path: Path::new(dir).join(file),
                text: text.clone(),
            });
        }
        crd_names.push(file);
    }
    files.push(Generated {
        path: PathBuf::from("config/crds/kustomization.yaml"),
        text: crd_kustomization(&crd_names),
    });
    for (source, target, header) in COPIES {
        let path = root.join(source);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "reading {}: {e} (it is the source of {target})",
                path.display()
            )
        })?;
        files.push(Generated {
            path: PathBuf::from(target),
            text: format!("{}{text}", header.unwrap_or_default()),
        });
    }
    let owned_dirs = std::iter::once(CRD_DIR)
        .chain(CRD_COPY_DIRS)
        .map(PathBuf::from)
        .collect();
    Ok((files, owned_dirs))
}

/// The kustomize base of the CRDs: kustomize refuses files outside its directory, so the
/// CRDs are copied next to it rather than referenced in `crds/`.
fn crd_kustomization(files: &[&str]) -> String {
    let mut text = String::from(
        "# Generated by `cargo run --bin patchwave-crdgen`: the CRDs of crds/ as a kustomize base.\n\
         # Do not edit by hand: tests/crds_up_to_date.rs fails when this directory is stale.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n\
         resources:\n",
    );
    for file in files {
        text.push_str(&format!("  - {file}\n"));
    }
    text
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// What differs between the generated files and the disk under `root`.
fn check(root: &Path, files: &[Generated], owned_dirs: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in files {
        match std::fs::read_to_string(root.join(&file.path)) {
            Ok(text) if text == file.text => {}
            Ok(_) => problems.push(format!("stale: {}", file.path.display())),
            Err(e) => problems.push(format!("missing: {} ({e})", file.path.display())),
        }
    }
    problems.extend(strays(root, files, owned_dirs));
    problems
}

/// Files in generator-owned directories that the generator does not produce.
fn strays(root: &Path, files: &[Generated], owned_dirs: &[PathBuf]) -> Vec<String> {
    let expected: BTreeSet<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    let mut found = Vec::new();
    for dir in owned_dirs {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            if !expected.contains(path.as_path()) {
                found.push(format!("stray: {} is not generated", path.display()));
            }
        }
    }
    found
}
