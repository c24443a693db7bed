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

impl SystemRunner {
    /// A runner for an agent in a privileged DaemonSet pod with `hostPID: true`: every tool runs
    /// inside the host's mount, UTS, IPC, network and PID namespaces (through `nsenter` on PID
    /// 1), so apt or dnf see and change the host's packages, not the container image's.
    pub fn in_host_namespaces() -> HostNamespaceRunner {
        HostNamespaceRunner::default()
    }
}

/// The arguments `nsenter` needs before the program to enter every namespace of PID 1.
pub const NSENTER_PREFIX: [&str; 7] = [
    "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid",
];

/// Runs each command as `nsenter --target 1 --mount --uts --ipc --net --pid -- program args`
/// through an inner runner (the real one by default). Environment overrides pass through:
/// nsenter hands its environment to the program it executes.
#[derive(Clone, Debug, Default)]
pub struct HostNamespaceRunner<R = SystemRunner> {
    inner: R,
}

impl<R: CommandRunner> HostNamespaceRunner<R> {
    /// Wraps `inner` (tests pass a recording runner to see the exact nsenter command line).
    pub fn wrapping(inner: R) -> Self {
        Self { inner }
    }
}

impl<R: CommandRunner> CommandRunner for HostNamespaceRunner<R> {
    fn run(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<CommandOutput> {
        let mut full: Vec<&str> = NSENTER_PREFIX.to_vec();
        full.push("--");
        full.push(program);
        full.extend_from_slice(args);
        self.inner.run("nsenter", &full, env)
    }
}

/// The command line as a person would type it, for error messages.
pub fn command_line(program: &str, args: &[&str]) -> String {
    let mut line = program.to_string();
    for arg in args {
        line.push(' ');
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            line.push('\'');
            line.push_str(arg);
            line.push('\'');
        } else {
            line.push_str(arg);
        }
    }
    line
}

/// How many characters of a tool's output go into an error message.
pub const EXCERPT_CHARS: usize = 400;

/// The end of stderr, or of stdout when stderr is empty, cut to [`EXCERPT_CHARS`] on a
/// character boundary: the end is where tools say what went wrong.
pub fn excerpt(output: &CommandOutput) -> String {
    let text = if output.stderr.trim().is_empty() {
        output.stdout.trim()
    } else {
        output.stderr.trim()
    };
    tail_chars(text, EXCERPT_CHARS)
}

/// The last `limit` characters of `text`, prefixed with "..." when cut.
pub fn tail_chars(text: &str, limit: usize) -> String {
    let count = text.chars().count();
    if count <= limit {
        return text.to_string();
    }
    let tail: String = text.chars().skip(count - limit).collect();
    format!("...{tail}")
}

/// The exit status as text for [`super::BackendError::Failed`].
pub fn status_text(output: &CommandOutput) -> String {
    match output.code {
        Some(code) => format!("status {code}"),
        None => "a signal".to_string(),
    }
}

/// Runs tools for one backend and turns spawn failures and unexpected exit codes into
/// [`super::BackendError`]s that name the backend, the command line and the output.
#[derive(Clone)]
pub struct Tool<'a> {
    /// Backend name for messages.
    pub backend: &'static str,
    /// Where commands run.
    pub runner: &'a dyn CommandRunner,
}

impl Tool<'_> {
    /// Runs the command; a failure to start it is an error, any exit code is returned.
    pub fn run_any(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<CommandOutput, super::BackendError> {
        self.runner
            .run(program, args, env)
            .map_err(|source| super::BackendError::Spawn {
                backend: self.backend,
                command: command_line(program, args),
                source,
            })
    }

    /// Runs the command and accepts only the exit codes in `ok_codes`.
    pub fn run_expect(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        ok_codes: &[i32],
    ) -> Result<CommandOutput, super::BackendError> {
        let output = self.run_any(program, args, env)?;
        match output.code {
            Some(code) if ok_codes.contains(&code) => Ok(output),
            _ => Err(self.failed(program, args, &output)),
        }
    }

    /// Runs the command and requires exit code 0.
    pub fn run_ok(
        &self,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<CommandOutput, super::BackendError> {
        self.run_expect(program, args, env, &[0])
    }

    /// The error for a command that ran and failed.
    pub fn failed(
        &self,
        program: &str,
        args: &[&str],
        output: &CommandOutput,
    ) -> super::BackendError {
        super::BackendError::Failed {
            backend: self.backend,
            command: command_line(program, args),
            status: status_text(output),
            excerpt: excerpt(output),
        }
    }

    /// A parse error naming the command and the 1-based line.
    pub fn parse_error(
        &self,
        program: &str,
        args: &[&str],
        line: usize,
        message: impl Into<String>,
    ) -> super::BackendError {
        super::BackendError::Parse {
            backend: self.backend,
            command: command_line(program, args),
            line,
            message: message.into(),
        }
    }

    /// true when `path` exists on the machine the runner reaches (`test -e`), so a runner in
    /// the host's namespaces checks the host's file, not the container's.
    pub fn path_exists(&self, path: &str) -> Result<bool, super::BackendError> {
        let output = self.run_any("test", &["-e", path], &[])?;
        match output.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(self.failed("test", &["-e", path], &output)),
        }
    }

    /// OS facts of a Linux machine: `/etc/os-release` (NAME, VERSION_ID) and `uname -n -r -m`,
    /// both read through the runner.
    pub fn linux_os_facts(
        &self,
        os_release_path: &str,
    ) -> Result<crate::api::asset::OsFacts, super::BackendError> {
        let release = self.run_ok("cat", &[os_release_path], &[])?;
        let fields = parse_os_release(&release.stdout);
        let mut facts = crate::api::asset::OsFacts {
            name: fields
                .get("NAME")
                .or_else(|| fields.get("PRETTY_NAME"))
                .cloned(),
            version: fields
                .get("VERSION_ID")
                .or_else(|| fields.get("VERSION"))
                .cloned(),
            ..Default::default()
        };
        self.fill_uname(&mut facts)?;
        Ok(facts)
    }

    /// Adds host name, kernel release and architecture from `uname -n -r -m`.
    pub fn fill_uname(
        &self,
        facts: &mut crate::api::asset::OsFacts,
    ) -> Result<(), super::BackendError> {
        let args = ["-n", "-r", "-m"];
        let uname = self.run_ok("uname", &args, &[])?;
        let fields: Vec<&str> = uname.stdout.split_whitespace().collect();
        let [hostname, kernel, machine] = fields[..] else {
            return Err(self.parse_error(
                "uname",
                &args,
                1,
                format!(
                    "expected host name, kernel release and machine, got {:?}",
                    uname.stdout.trim()
                ),
            ));
        };
        facts.hostname = Some(hostname.to_string());
        facts.kernel = Some(kernel.to_string());
        facts.architecture = Some(normalise_architecture(machine));
        Ok(())
    }
}

/// Maps kernel machine names onto the names Debian, Go and Kubernetes use (amd64, arm64), so
/// every platform reports the same words.
pub fn normalise_architecture(machine: &str) -> String {
    match machine {
        "x86_64" | "AMD64" | "amd64" => "amd64",
        "aarch64" | "arm64" | "ARM64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        other => other,
    }
    .to_string()
}

/// KEY=value pairs of an os-release file, quotes removed; comments and blank lines skipped.
pub fn parse_os_release(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            (key.trim().to_string(), unquoted.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_lose_their_quotes() {
        let fields =
            parse_os_release("# c\nNAME=\"Debian GNU/Linux\"\nVERSION_ID='12'\nID=debian\n");
        assert_eq!(
            fields.get("NAME").map(String::as_str),
            Some("Debian GNU/Linux")
        );
        assert_eq!(fields.get("VERSION_ID").map(String::as_str), Some("12"));
        assert_eq!(fields.get("ID").map(String::as_str), Some("debian"));
    }

    #[test]
    fn excerpts_keep_the_end_of_long_output() {
        let output = CommandOutput {
            code: Some(1),
            stdout: String::new(),
            stderr: format!("{}E: the real reason", "x".repeat(1000)),
        };
        let text = excerpt(&output);
        assert!(text.starts_with("..."));
        assert!(text.ends_with("E: the real reason"));
        assert_eq!(text.chars().count(), EXCERPT_CHARS + 3);
    }

    #[test]
    fn command_lines_quote_arguments_with_spaces() {
        assert_eq!(
            command_line(
                "softwareupdate",
                &["--install", "macOS Sonoma 14.6.1-23G93"]
            ),
            "softwareupdate --install 'macOS Sonoma 14.6.1-23G93'"
        );
    }
}
