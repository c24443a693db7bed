//! Running the hooks an operation names, from the local allowlist only.
//!
//! A policy names hooks (`preInstall`, `postInstall`, `healthCheck`); the agent looks each name
//! up in its config file and runs the executable found there, without arguments and without a
//! shell. What it learns about the operation comes in the environment:
//! `PATCHWAVE_HOOK` (pre-install, post-install or health-check), `PATCHWAVE_ASSET`,
//! `PATCHWAVE_OPERATION_ID`, `PATCHWAVE_ROLLOUT`, `PATCHWAVE_ACTION` (Install or Rollback) and
//! `PATCHWAVE_UPDATES` (`id=version` separated by spaces).

use std::process::Stdio;

use tokio::process::Command;

use super::config::{AgentConfig, HookConfig};
use crate::api::OperationAction;
use crate::api::asset::Operation;

/// When a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before installing; a failure fails the operation without installing.
    PreInstall,
    /// After installing (and rebooting).
    PostInstall,
    /// Last; a failure fails the operation.
    HealthCheck,
}

impl Stage {
    /// The stage's name in messages and in `PATCHWAVE_HOOK`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::PreInstall => "pre-install",
            Stage::PostInstall => "post-install",
            Stage::HealthCheck => "health-check",
        }
    }

    /// The hook the operation names for this stage.
    pub fn hook_of(self, operation: &Operation) -> Option<&str> {
        let hooks = operation.hooks.as_ref()?;
        match self {
            Stage::PreInstall => hooks.pre_install.as_deref(),
            Stage::PostInstall => hooks.post_install.as_deref(),
            Stage::HealthCheck => hooks.health_check.as_deref(),
        }
    }
}

/// Every stage, in the order they run.
pub const STAGES: [Stage; 3] = [Stage::PreInstall, Stage::PostInstall, Stage::HealthCheck];

/// Checks that every hook `operation` names is in the allowlist; the error is the operation's
/// message (naming the hook, its stage and the config file).
pub fn check_allowed(config: &AgentConfig, operation: &Operation) -> Result<(), String> {
    for stage in STAGES {
        if let Some(name) = stage.hook_of(operation)
            && !config.hooks.contains_key(name)
        {
            return Err(format!(
                "not started: the {} hook \"{name}\" is not in the hook allowlist of {}; \
                 add it under `hooks:` with the path of its executable, or remove it from the \
                 policy; nothing was installed",
                stage.name(),
                config.describe_source()
            ));
        }
    }
    Ok(())
}

/// Runs the hook `operation` names for `stage`, if any. `Ok` when there is none or it exited
/// with 0; otherwise the message for the operation's result.
pub async fn run(
    config: &AgentConfig,
    stage: Stage,
    operation: &Operation,
    asset: &str,
) -> Result<(), String> {
    let Some(name) = stage.hook_of(operation) else {
        return Ok(());
    };
    let Some(hook) = config.hooks.get(name) else {
        // Checked before the operation started; the config cannot change while it runs.
        return Err(format!(
            "the {} hook \"{name}\" is not in the hook allowlist of {}",
            stage.name(),
            config.describe_source()
        ));
    };
    run_hook(name, hook, stage, operation, asset).await
}

async fn run_hook(
    name: &str,
    hook: &HookConfig,
    stage: Stage,
    operation: &Operation,
    asset: &str,
) -> Result<(), String> {
    let updates: Vec<String> = operation
        .updates
        .iter()
        .map(|u| format!("{}={}", u.id, u.version.as_deref().unwrap_or("")))
        .collect();
    let action = match operation.action {
        OperationAction::Install => "Install",
        OperationAction::Rollback => "Rollback",
    };
    let what = format!(
        "the {} hook \"{name}\" ({})",
        stage.name(),
        hook.path.display()
    );
    let child = Command::new(&hook.path)
        .env("PATCHWAVE_HOOK", stage.name())
        .env("PATCHWAVE_ASSET", asset)
        .env("PATCHWAVE_OPERATION_ID", &operation.id)
        .env("PATCHWAVE_ROLLOUT", &operation.rollout)
        .env("PATCHWAVE_ACTION", action)
        .env("PATCHWAVE_UPDATES", updates.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{what} cannot be started: {e}"))?;
    let output = match tokio::time::timeout(hook.timeout, child.wait_with_output()).await {
        Err(_) => {
            return Err(format!(
                "{what} did not finish within its timeout of {:?} and was killed",
                hook.timeout
            ));
        }
        Ok(Err(e)) => return Err(format!("{what} could not be waited for: {e}")),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    Err(format!(
        "{what} failed ({}): {}",
        output.status,
        tail(text.trim(), 600)
    ))
}

/// The last `max` characters of `text` (where errors usually are).
pub fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().skip(count - max).collect();
    format!("…{kept}")
}
