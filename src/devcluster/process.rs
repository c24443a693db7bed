//! Server processes that can never outlive their owner.
//!
//! Each server runs under a small `sh` wrapper whose stdin is a pipe from this process. The
//! wrapper starts the server in the background and a watcher that blocks reading that pipe. When
//! the pipe reaches end-of-file, because [`Supervised::stop`] closed it, because the owning
//! process exited normally, panicked, or was killed with SIGKILL (the kernel closes its file
//! descriptors in every case), the watcher sends SIGTERM to the server, SIGKILL after a grace
//! period, and the wrapper then removes the directory it was given (if any). Rust's
//! `std::process` opens its pipes close-on-exec, so no other child holds the pipe open by
//! accident.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::DevClusterError;

/// `$1`: log file, `$2`: directory to remove once the server is gone (may be empty),
/// `$3...`: the server command line.
const WRAPPER: &str = r#"
log=$1; cleanup=$2; shift 2
exec 3<&0 </dev/null
"$@" >"$log" 2>&1 3<&- &
server=$!
(
  # Blocks until the owner closes our stdin (stop, exit, panic or SIGKILL of the owner).
  # A line "keep" asks to keep the directory (logs of a failed start).
  while read -r line <&3; do
    if [ "$line" = keep ]; then echo >"$log.keep"; fi
  done
  # echo, not ":": a failed redirection must not end this shell before the kill.
  echo >"$log.stopping"
  kill -TERM "$server" 2>/dev/null
  i=0
  while kill -0 "$server" 2>/dev/null; do
    i=$((i+1))
    if [ "$i" -ge 30 ]; then kill -KILL "$server" 2>/dev/null; break; fi
    sleep 0.1
  done
) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
if [ -e "$log.stopping" ]; then
  # Stopped by the owner: let the watcher finish, then clean up unless asked to keep.
  wait "$watcher"
  if [ -n "$cleanup" ] && [ ! -e "$log.keep" ]; then rm -rf "$cleanup"; fi
else
  # The server exited on its own: the owner is alive and reads the exit status.
  kill "$watcher" 2>/dev/null
fi
exit "$status"
"#;

/// How long [`Supervised::stop`] waits for the wrapper before killing it. The watcher itself
/// escalates to SIGKILL after 3 seconds (the data is throw-away; when the owner dies, etcd and
/// the apiserver get SIGTERM together and wait for each other until then).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A server process started under the lifeline wrapper.
#[derive(Debug)]
pub(crate) struct Supervised {
    name: &'static str,
    wrapper: Child,
    lifeline: Option<ChildStdin>,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Supervised {
    /// Starts `program args...` with stdout and stderr appended to `log`. When the server goes
    /// away because its owner did, `cleanup` (if any) is removed.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: &Path,
        cleanup: Option<&Path>,
    ) -> Result<Self, DevClusterError> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WRAPPER)
            .arg(format!("patchwave-devcluster-{name}"))
            .arg(log)
            .arg(cleanup.map(Path::as_os_str).unwrap_or_default())
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Own process group: a Ctrl-C in the terminal reaches only the owner, which then
            // stops the servers in order.
            .process_group(0);
        let mut wrapper = command
            .spawn()
            .map_err(|e| DevClusterError::io(format!("starting {name} through sh"), e))?;
        let lifeline = wrapper.stdin.take();
        Ok(Self {
            name,
            wrapper,
            lifeline,
            log: log.to_path_buf(),
            exit: None,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The exit status if the server has exited, `None` while it runs.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>, DevClusterError> {
        if self.exit.is_none() {
            self.exit = self
                .wrapper
                .try_wait()
                .map_err(|e| DevClusterError::io(format!("checking on {}", self.name), e))?;
        }
        Ok(self.exit)
    }

    /// The error to report when the server has exited with `status`.
    pub fn exited_error(&self, status: ExitStatus) -> DevClusterError {
        DevClusterError::ProcessExited {
            name: self.name,
            status: status.to_string(),
            log: self.log.clone(),
            log_tail: log_tail(&self.log),
        }
    }

    /// Whether the log says the server could not bind its port.
    pub fn failed_to_bind(&self) -> bool {
        fs::read_to_string(&self.log)
            .map(|text| text.contains("address already in use"))
            .unwrap_or(false)
    }

    /// Asks the wrapper to keep the control plane's directory when the server goes away.
    pub fn keep_directory(&mut self) {
        if let Some(lifeline) = self.lifeline.as_mut() {
            // A failed write means the wrapper is gone already; nothing to keep then.
            let _ = lifeline
                .write_all(b"keep\n")
                .and_then(|()| lifeline.flush());
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 3 s) and waits for it. Idempotent.
    pub fn stop(&mut self) {
        drop(self.lifeline.take());
        if self.exit.is_some() {
            return;
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.wrapper.try_wait() {
                Ok(Some(status)) => {
                    self.exit = Some(status);
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break,
            }
        }
        // The wrapper hangs; its watcher still kills the server on its own.
        tracing::warn!(
            server = self.name,
            "wrapper did not exit in time, killing it"
        );
        let _ = self.wrapper.kill();
        self.exit = self.wrapper.wait().ok();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `count` distinct free loopback ports. They are free now; a server may still lose a race
/// for one, which callers handle by picking again.
pub(crate) fn free_ports(count: usize) -> Result<Vec<u16>, DevClusterError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DevClusterError::io("binding a free port on 127.0.0.1", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DevClusterError::io("reading a bound port", e))
}

/// The last lines of a log file (at most 40 lines and 16 KiB), for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const MAX_BYTES: u64 = 16 * 1024;
    const MAX_LINES: usize = 40;
    let mut text = String::new();
    let read = fs::File::open(path).and_then(|mut file| {
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if let Err(e) = read {
        return format!("  (could not read {}: {e})", path.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(MAX_LINES);
    let tail: Vec<String> = lines[start..]
        .iter()
        .map(|line| format!("  {line}"))
        .collect();
    if tail.is_empty() {
        "  (log is empty)".to_owned()
    } else {
        tail.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_kills_the_server_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        let log = work.join("sleep.log");
        let mut server = Supervised::spawn(
            "sleep",
            Path::new("sleep"),
            &["300".to_owned()],
            &log,
            Some(&work),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(server.try_exit().unwrap().is_none(), "server died early");
        let started = Instant::now();
        server.stop();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(server.try_exit().unwrap().is_some());
        assert!(!work.exists(), "the wrapper removes the directory");
    }

    #[test]
    fn exit_of_the_server_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("false.log");
        let mut server = Supervised::spawn(
            "sh",
            Path::new("sh"),
            &[
                "-c".to_owned(),
                "echo bind: address already in use; exit 3".to_owned(),
            ],
            &log,
            None,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = server.try_exit().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "wrapper did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(3));
        assert!(server.failed_to_bind());
        assert!(log_tail(&log).contains("address already in use"));
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    }
}
