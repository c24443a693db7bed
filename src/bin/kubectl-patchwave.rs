//! `kubectl patchwave`: the kubectl plugin. Installed on the PATH as `kubectl-patchwave`, it runs
//! as `kubectl patchwave COMMAND`. Everything happens in [`patchwave::cli`].

use std::process::ExitCode;

use clap::Parser;

// plan and simulate allocate and free millions of small strings over a large fleet.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    patchwave::cli::run(patchwave::cli::Cli::parse())
}
