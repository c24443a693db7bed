//! `kubectl patchwave`: the kubectl plugin. Installed on the PATH as `kubectl-patchwave`, it runs
//! as `kubectl patchwave COMMAND`. Everything happens in [`patchwave::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    patchwave::cli::run(patchwave::cli::Cli::parse())
}
