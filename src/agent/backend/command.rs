//! Running the platform's tools: the real runner and the seam tests use.

use std::process::Command;

/// What a finished command left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code; None when killed by a signal.
    pub code: Option<i32>,
    /// Standard output, lossily decoded as UTF-8.
    pub stdout: String,
    /// Standard error, lossily decoded as UTF-8.
    pub stderr: String,
}

impl CommandOutput {
    /// true when the command exited with 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs a program with arguments and environment overrides and waits for it.
pub trait CommandRunner: Send + Sync {
    /// Runs `program` with `args`, adding `env` to the environment.
    fn run(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<CommandOutput>;
}

/// Runs commands on this machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRunner;

// TEMPORARY (dropped at merge): the backends branch runs tools in the host's namespaces.
impl SystemRunner {
    /// Temporary stand-in for the backends branch's runner inside the host's namespaces.
    pub fn in_host_namespaces() -> SystemRunner {
        SystemRunner
    }
}

impl CommandRunner for SystemRunner {
    fn run(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<CommandOutput> {
        let output = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .output()?;
        Ok(CommandOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
