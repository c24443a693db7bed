//! The kubectl plugin `kubectl-patchwave`: argument parsing and the commands.
//!
//! The binary only parses arguments and calls [`run`]. Each command lives in its own module
//! exposing `Args` (a [`clap::Args`]) and `run(&Args) -> Result<ExitCode, CliError>`; adding a
//! command means adding a variant to [`Command`] and a line to [`run`].

pub mod cluster;
pub mod control;
pub mod enroll;
pub mod incident;
pub mod kubectl_yaml;
pub mod load;
pub mod output;
pub mod plan;
pub mod report;
pub mod simulate;
pub mod status;
pub mod validate;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const ABOUT: &str = "Patch your fleet ring by ring, inside maintenance windows, the Kubernetes way";

const LONG_ABOUT: &str = "\
patchwave rolls out operating-system and application patches to servers, laptops, desktops and
Kubernetes nodes, wave by wave, the Kubernetes way. You describe the desired patch state as
custom resources (group patchwave.dev, kept in Git); the patchwave operator rolls approved
updates out ring by ring and halts by itself when a ring fails too often.

  Asset              one managed endpoint; its agent reports the available updates
  Ring               one wave (pilot, a department, the rest): how many at once, how many
                     failures halt the rollout, how long to bake before the next wave
  MaintenanceWindow  when patching may happen (Allow) and when never (Deny, always wins)
  PatchPolicy        which updates, on which assets, through which rings, with which deadlines
  PatchRollout       one frozen set of updates on its way through the rings (made by the
                     operator, steered by people)
  PatchIncident      an incident a person attributes to a rollout on an asset; an audit
                     record that cannot be changed

validate, plan and simulate work on YAML files without a cluster, for example in the CI of a
GitOps repository. status and the controls (approve, pause, unpause, resume, abort, hold,
unhold), incident and enroll work on the cluster your kubeconfig points at, like kubectl.";

const AFTER_HELP: &str = "\
Examples:
  # Check every manifest of a GitOps repository before it is merged
  kubectl patchwave validate -f clusters/acme/

  # The same, as JSON for a CI annotation step
  kubectl patchwave validate -f policies.yaml -f rings.yaml -o json

  # Which assets go in which wave, when each can start, and whether the deadlines hold
  kubectl patchwave plan -f examples/ --at 2026-11-30T18:00:00+01:00

  # Play three weeks of rollouts with simulated agents (failures from annotations)
  kubectl patchwave simulate -f examples/ --from 2026-11-30 --until 2026-12-21 --approve ring/rest

  # On the cluster: where the rollouts stand, live, and what to do next
  kubectl patchwave status -n acme --watch
  kubectl patchwave approve security-fast-1a2b3c4d --ring rest -n acme --note CHG-1042
  kubectl patchwave resume security-fast-1a2b3c4d --ring pilot -n acme

  # Record an incident caused by a patch (listed by `kubectl get patchincidents`)
  kubectl patchwave incident dc01 --rollout security-fast-1a2b3c4d -n acme --note 'INC-2231: DNS down'

  # The monthly report for decision makers: one HTML file that prints on A4
  kubectl patchwave report -n acme --month 2026-11 --output acme-2026-11.html

  # Enrol a machine: its Asset and a kubeconfig its agent may use for nothing else
  kubectl patchwave enroll web-1 -n acme --os-family Linux --kubeconfig-out web-1.kubeconfig

Exit status: 0 when all is well, 1 when problems were found or a cluster command failed
(an object not found, a refused change, a cluster that cannot be reached), 2 when the command
could not run (a path or a kubeconfig that cannot be read, a wrong option).

Run `kubectl patchwave COMMAND --help` for the options of a command.";

/// `kubectl patchwave`: the command line.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-patchwave",
    bin_name = "kubectl patchwave",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of the plugin.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests offline: schema, CEL rules, cron expressions, time zones, references
    /// between objects, overlapping policies.
    #[command(
        long_about = validate::LONG_ABOUT,
        after_help = validate::AFTER_HELP
    )]
    Validate(validate::Args),
    /// Show which assets go in which ring of which rollout, when each can start, and a
    /// forecast of completion against the deadlines.
    Plan(plan::Args),
    /// Run the rollout engine over virtual time with simulated agents and show what happens.
    Simulate(simulate::Args),
    // Help text: the doc comment of the Args struct.
    Status(status::Args),
    // Help text: the doc comment of the Args struct.
    Approve(control::ApproveArgs),
    // The usage lines of the commands below are spelled out: clap's own lists the optional
    // flags the caller gave (-n, --kubeconfig) as if they were required.
    /// Pause a rollout: no new operation starts; operations in flight finish.
    #[command(override_usage = "kubectl patchwave pause <ROLLOUT> [OPTIONS]")]
    Pause(control::PauseArgs),
    /// Unpause a paused rollout.
    #[command(override_usage = "kubectl patchwave unpause <ROLLOUT> [OPTIONS]")]
    Unpause(control::PauseArgs),
    // Help text: the doc comment of the Args struct.
    #[command(override_usage = "kubectl patchwave resume <ROLLOUT> --ring <NAME> [OPTIONS]")]
    Resume(control::ResumeArgs),
    // Help text: the doc comment of the Args struct.
    #[command(override_usage = "kubectl patchwave abort <ROLLOUT> [OPTIONS]")]
    Abort(control::AbortArgs),
    // Help text: the doc comment of the Args struct.
    #[command(override_usage = "kubectl patchwave hold <ASSET> [OPTIONS]")]
    Hold(control::HoldArgs),
    // Help text: the doc comment of the Args struct.
    #[command(override_usage = "kubectl patchwave unhold <ASSET> [OPTIONS]")]
    Unhold(control::UnholdArgs),
    // Help text: the doc comment of the Args struct.
    #[command(
        override_usage = "kubectl patchwave incident <ASSET> --rollout <NAME> --note <TEXT> [OPTIONS]"
    )]
    Incident(incident::IncidentArgs),
    // Help text: the doc comment of the Args struct.
    Report(report::Args),
    // Help text: the doc comment of the Args struct.
    #[command(override_usage = "kubectl patchwave enroll <NAME> [OPTIONS]")]
    Enroll(enroll::Args),
}

/// Why a command could not run. Problems found in manifests are not errors: they are the
/// command's output (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A path could not be read.
    #[error(transparent)]
    Load(#[from] load::LoadError),
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// Writing the output failed (other than a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    /// The simulation could not run.
    #[error("{0}")]
    Simulation(String),
    /// A command on the cluster failed: the connection, an object that is not there, a change
    /// that does not apply or was refused. The message names the object. (A kubeconfig that
    /// cannot be read or parsed is a [`CliError::Usage`].)
    #[error("{0}")]
    Cluster(String),
}

impl CliError {
    /// The exit status for this error: 1 for a failed cluster command, else 2, as for usage
    /// errors.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Cluster(_) => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }
}

/// Runs the command `cli` names and returns the process's exit status. Errors are printed
/// to standard error.
pub fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Status(args) => status::run(args),
        Command::Approve(args) => control::approve(args),
        Command::Pause(args) => control::pause(args, true),
        Command::Unpause(args) => control::pause(args, false),
        Command::Resume(args) => control::resume(args),
        Command::Abort(args) => control::abort(args),
        Command::Hold(args) => control::hold(args),
        Command::Unhold(args) => control::unhold(args),
        Command::Incident(args) => incident::run(args),
        Command::Report(args) => report::run(args),
        Command::Enroll(args) => enroll::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Nothing sensible is left to do if standard error is gone.
            let _ = writeln!(std::io::stderr(), "error: {error}");
            error.exit_code()
        }
    }
}

/// Reads the manifests of `validate`, `plan` and `simulate`; paths that hold none are a
/// mistake on the command line, not a clean result.
pub(crate) fn load_manifests(
    paths: &[std::path::PathBuf],
    namespace: &str,
) -> Result<load::LoadedFiles, CliError> {
    let loaded = load::load(paths, namespace)?;
    if loaded.files.is_empty() {
        return Err(CliError::Usage(format!(
            "no .yaml, .yml or .json files found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(loaded)
}

/// The problems of the input, as `validate` lists them (file, object, field; in file order),
/// for the `problems` of `plan` and `simulate`: both go on without the objects in question, as
/// the operator does.
pub(crate) fn input_problems(loaded: &load::LoadedFiles) -> Vec<String> {
    validate::report(loaded)
        .problems
        .iter()
        .map(|problem| format!("{} (this object takes no part)", problem.text))
        .collect()
}

/// The exit status of `plan` and `simulate`, which print their result in any case: 1 when
/// the input had problems (objects that could not be read, references to nothing, ...), as
/// the plugin's help promises for problems found, else 0.
pub(crate) fn problems_exit_code(problems: &[String]) -> ExitCode {
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Serialises `value` as pretty JSON and prints it.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
    print(&(text + "\n"))
}

/// Writes `text` to standard output. A closed pipe (`| head`) is not an error.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
