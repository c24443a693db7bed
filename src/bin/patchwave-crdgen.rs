//! Writes the CRD YAML files under `crds/` (or the directory given) from the Rust types.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Generate the patchwave CustomResourceDefinitions from the Rust API types.
///
/// Run it after changing anything under src/api, then commit the result:
///
///     cargo run --bin patchwave-crdgen
///
/// The test `crds_up_to_date` fails while the checked-in files differ from the types.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Directory to write one YAML file per kind into.
    #[arg(long, default_value = "crds")]
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(err) = std::fs::create_dir_all(&args.out_dir) {
        eprintln!("error: cannot create {}: {err}", args.out_dir.display());
        return ExitCode::FAILURE;
    }
    for (file, crd) in patchwave::api::crds::all() {
        let path = args.out_dir.join(file);
        let written = patchwave::api::crds::render(&crd)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(&path, text).map_err(|e| e.to_string()));
        match written {
            Ok(()) => println!("wrote {}", path.display()),
            Err(err) => {
                eprintln!("error: cannot write {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
