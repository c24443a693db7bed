//! The agent's local journal: what it did with each operation, on disk before it happens, so a
//! crash (power loss, SIGKILL, a reboot the agent asked for) never installs twice and never
//! loses an outcome.
//!
//! One file, `journal.jsonl` in the state directory: append-only JSON lines, each written and
//! `fsync`ed before the agent takes the step it records. The steps of one operation, in order:
//!
//! 1. `accepted`: the agent took the operation (written before it reports `Running`);
//! 2. `install-begun`: written before the backend is called;
//! 3. `installed`: the backend returned (with the outcome);
//! 4. `reboot-requested`: written before the reboot command runs;
//! 5. `finished`: the final result landed on the API server.
//!
//! After a restart, [`Journal::recovery`] says where an operation stands ([`Recovery`]); the
//! agent loop decides what that means (see `super::execute`). A line that cannot be read is
//! reported (file and line number) and skipped; it never stops the agent.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::Time;
use crate::api::asset::{Operation, OperationPhase, UpdateRef};

/// File name of the journal inside the state directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// Past this many lines the journal is rewritten at open with only what recovery needs.
const COMPACT_AFTER_LINES: usize = 10_000;

/// What the backend's install or rollback came to, as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallOutcome {
    /// Whether every update ended at its listed version.
    pub succeeded: bool,
    /// The versions now installed for the operation's updates.
    #[serde(default)]
    pub installed: Vec<UpdateRef>,
    /// Whether the change needs a reboot.
    #[serde(default)]
    pub reboot_required: bool,
    /// The error, or an excerpt of the tool's output.
    #[serde(default)]
    pub message: String,
}

/// The final result of an operation, as reported (kept so a lost report can be repeated).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalResult {
    /// Succeeded or Failed.
    pub phase: OperationPhase,
    /// Versions installed.
    #[serde(default)]
    pub installed: Vec<UpdateRef>,
    /// The message reported.
    #[serde(default)]
    pub message: Option<String>,
    /// Whether the asset waits for a reboot.
    #[serde(default)]
    pub reboot_pending: bool,
}

/// One step of an operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// The agent took the operation (before reporting `Running`).
    Accepted {
        /// The operation as the operator wrote it.
        operation: Box<Operation>,
    },
    /// The backend is about to be called.
    InstallBegun,
    /// The backend returned.
    Installed {
        /// What it did.
        outcome: InstallOutcome,
    },
    /// The reboot command is about to run.
    RebootRequested,
    /// The result was reported to the API server.
    Finished {
        /// The result.
        result: FinalResult,
    },
}

impl Step {
    /// The step's name as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Accepted { .. } => "accepted",
            Step::InstallBegun => "install-begun",
            Step::Installed { .. } => "installed",
            Step::RebootRequested => "reboot-requested",
            Step::Finished { .. } => "finished",
        }
    }
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The operation id (`status.operation.id`).
    pub id: String,
    /// When the step was recorded.
    pub at: Time,
    /// The step.
    #[serde(flatten)]
    pub step: Step,
}

/// Where an operation stands according to the journal.
#[derive(Clone, Debug, PartialEq)]
pub enum Recovery {
    /// The journal has never seen it.
    Unknown,
    /// Accepted; the backend was not called: carry on normally.
    Accepted,
    /// The backend was called and did not return before the agent stopped: never install
    /// again; ask the backend what is installed.
    InstallInterrupted,
    /// The backend returned: continue after it (reboot, post-install hook, health check).
    Installed(InstallOutcome),
    /// The reboot was asked for: continue after it (post-install hook, health check).
    RebootRequested(InstallOutcome),
    /// Finished and reported.
    Finished(FinalResult),
}

impl Recovery {
    /// Whether the backend may have changed the machine for this operation (so the
    /// operation must never be installed again).
    pub fn install_begun(&self) -> bool {
        matches!(
            self,
            Recovery::InstallInterrupted
                | Recovery::Installed(_)
                | Recovery::RebootRequested(_)
                | Recovery::Finished(_)
        )
    }
}

/// Why the journal could not be written or opened.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("journal {path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the agent was doing.
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The journal: an append-only file and what its records say, per operation.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Per operation id: its records in order.
    operations: HashMap<String, Vec<Step>>,
    /// Lines that could not be read at open, as messages naming the file and line.
    problems: Vec<String>,
}

impl Journal {
    /// Opens (creating it and `dir` if needed) the journal in `dir` and replays it. Lines that
    /// cannot be read are listed in [`Journal::problems`] and skipped.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
            path: dir.to_path_buf(),
            action: "creating the state directory",
            source,
        })?;
        let path = dir.join(JOURNAL_FILE);
        let (records, problems, lines) = read_records(&path)?;
        let mut operations: HashMap<String, Vec<Step>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for record in records {
            if !operations.contains_key(&record.id) {
                order.push(record.id.clone());
            }
            operations.entry(record.id).or_default().push(record.step);
        }
        if lines > COMPACT_AFTER_LINES {
            compact(&path, &mut operations, &order)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| JournalError::Io {
                path: path.clone(),
                action: "opening for append",
                source,
            })?;
        Ok(Journal {
            path,
            file,
            operations,
            problems,
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines skipped at open because they could not be read, each naming file and line.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Appends `step` of operation `id` and waits until it is on disk.
    pub fn append(&mut self, id: &str, step: Step) -> Result<(), JournalError> {
        let record = Record {
            id: id.to_owned(),
            at: Time(Timestamp::now()),
            step,
        };
        let mut line = serde_json::to_string(&record).map_err(|e| JournalError::Io {
            path: self.path.clone(),
            action: "encoding a record",
            source: std::io::Error::other(e),
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                action: "appending a record",
                source,
            })?;
        self.operations
            .entry(record.id)
            .or_default()
            .push(record.step);
        Ok(())
    }

    /// Where operation `id` stands.
    pub fn recovery(&self, id: &str) -> Recovery {
        let Some(steps) = self.operations.get(id) else {
            return Recovery::Unknown;
        };
        let mut recovery = Recovery::Unknown;
        let mut outcome: Option<InstallOutcome> = None;
        for step in steps {
            recovery = match step {
                Step::Accepted { .. } => match recovery {
                    // A second acceptance never undoes an install that began.
                    Recovery::Unknown => Recovery::Accepted,
                    other => other,
                },
                Step::InstallBegun => Recovery::InstallInterrupted,
                Step::Installed { outcome: done } => {
                    outcome = Some(done.clone());
                    Recovery::Installed(done.clone())
                }
                Step::RebootRequested => match &outcome {
                    Some(done) => Recovery::RebootRequested(done.clone()),
                    // A reboot without an install record: the install's outcome is unknown.
                    None => Recovery::InstallInterrupted,
                },
                Step::Finished { result } => Recovery::Finished(result.clone()),
            };
        }
        recovery
    }

    /// The operation as accepted, if the journal has it.
    pub fn accepted_operation(&self, id: &str) -> Option<&Operation> {
        self.operations.get(id)?.iter().find_map(|s| match s {
            Step::Accepted { operation } => Some(operation.as_ref()),
            _ => None,
        })
    }

    /// Ids of operations the journal has not seen finish, in no particular order.
    pub fn unfinished(&self) -> Vec<&str> {
        self.operations
            .iter()
            .filter(|(_, steps)| !steps.iter().any(|s| matches!(s, Step::Finished { .. })))
            .map(|(id, _)| id.as_str())
            .collect()
    }
}

/// Reads every record of `path` (none if it does not exist); returns the records, the
/// problems and the number of lines.
fn read_records(path: &Path) -> Result<(Vec<Record>, Vec<String>, usize), JournalError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Vec::new(), 0));
        }
        Err(source) => {
            return Err(JournalError::Io {
                path: path.to_path_buf(),
                action: "opening for reading",
                source,
            });
        }
    };
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let mut lines = 0;
    for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
        lines += 1;
        let line = line.map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            action: "reading",
            source,
        })?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) => records.push(record),
            Err(err) => problems.push(format!(
                "journal {} line {}: skipped, cannot be read ({err}): {}",
                path.display(),
                index + 1,
                excerpt(&line)
            )),
        }
    }
    Ok((records, problems, lines))
}

/// The start of a bad line, for the message.
fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut cut: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        cut.push('…');
    }
    cut
}

/// Rewrites the journal with the records of unfinished operations and the last finished one,
/// through a temporary file renamed over it (a crash leaves the old or the new file).
fn compact(
    path: &Path,
    operations: &mut HashMap<String, Vec<Step>>,
    order: &[String],
) -> Result<(), JournalError> {
    let finished = |steps: &Vec<Step>| steps.iter().any(|s| matches!(s, Step::Finished { .. }));
    let last_finished = order
        .iter()
        .rev()
        .find(|id| operations.get(*id).is_some_and(finished))
        .cloned();
    operations.retain(|id, steps| !finished(steps) || Some(id) == last_finished.as_ref());
    let io = |action: &'static str| {
        move |source| JournalError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let now = Time(Timestamp::now());
    let mut compacted = Vec::new();
    for id in order {
        for step in operations.get(id).into_iter().flatten() {
            let record = Record {
                id: id.clone(),
                at: now.clone(),
                step: step.clone(),
            };
            serde_json::to_writer(&mut compacted, &record)
                .map_err(|e| io("encoding a record")(std::io::Error::other(e)))?;
            compacted.push(b'\n');
        }
    }
    crate::agent::files::replace_file(path, &compacted).map_err(io("replacing the journal"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{OperationAction, RebootPolicy};

    fn operation(id: &str) -> Operation {
        let now = Timestamp::now();
        Operation {
            id: id.to_owned(),
            rollout: "r1".to_owned(),
            ring: None,
            revision: None,
            action: OperationAction::Install,
            updates: vec![UpdateRef {
                id: "openssl".to_owned(),
                version: Some("3.0.15".to_owned()),
            }],
            reboot: RebootPolicy::default(),
            hooks: None,
            issued_at: Time(now),
            not_after: Time(now),
            timeout_at: Time(now),
        }
    }

    fn outcome() -> InstallOutcome {
        InstallOutcome {
            succeeded: true,
            installed: operation("x").updates,
            reboot_required: true,
            message: "ok".to_owned(),
        }
    }

    fn accepted(id: &str) -> Step {
        Step::Accepted {
            operation: Box::new(operation(id)),
        }
    }

    #[test]
    fn replay_gives_each_operation_its_last_step() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let mut journal = Journal::open(dir.path()).expect("open");
            assert_eq!(journal.recovery("a"), Recovery::Unknown);
            journal.append("a", accepted("a")).expect("append");
            journal.append("b", accepted("b")).expect("append");
            journal.append("b", Step::InstallBegun).expect("append");
            journal.append("c", accepted("c")).expect("append");
            journal.append("c", Step::InstallBegun).expect("append");
            journal
                .append("c", Step::Installed { outcome: outcome() })
                .expect("append");
            journal.append("d", accepted("d")).expect("append");
            journal.append("d", Step::InstallBegun).expect("append");
            journal
                .append("d", Step::Installed { outcome: outcome() })
                .expect("append");
            journal.append("d", Step::RebootRequested).expect("append");
        }
        let journal = Journal::open(dir.path()).expect("reopen");
        assert!(journal.problems().is_empty(), "{:?}", journal.problems());
        assert_eq!(journal.recovery("a"), Recovery::Accepted);
        assert_eq!(journal.recovery("b"), Recovery::InstallInterrupted);
        assert_eq!(journal.recovery("c"), Recovery::Installed(outcome()));
        assert_eq!(journal.recovery("d"), Recovery::RebootRequested(outcome()));
        assert_eq!(journal.recovery("e"), Recovery::Unknown);
        assert_eq!(
            journal.accepted_operation("b").map(|o| o.id.as_str()),
            Some("b")
        );
        let mut unfinished = journal.unfinished();
        unfinished.sort_unstable();
        assert_eq!(unfinished, ["a", "b", "c", "d"]);
        for id in ["b", "c", "d"] {
            assert!(journal.recovery(id).install_begun(), "{id}");
        }
        assert!(!journal.recovery("a").install_begun());
    }

    #[test]
    fn finished_operations_keep_their_result_and_a_late_acceptance_undoes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let result = FinalResult {
            phase: OperationPhase::Succeeded,
            installed: operation("x").updates,
            message: None,
            reboot_pending: false,
        };
        {
            let mut journal = Journal::open(dir.path()).expect("open");
            journal.append("a", accepted("a")).expect("append");
            journal.append("a", Step::InstallBegun).expect("append");
            // Accepted again (say, after a restart that lost the server's Running report).
            journal.append("a", accepted("a")).expect("append");
            assert_eq!(journal.recovery("a"), Recovery::InstallInterrupted);
            journal
                .append(
                    "a",
                    Step::Finished {
                        result: result.clone(),
                    },
                )
                .expect("append");
        }
        let journal = Journal::open(dir.path()).expect("reopen");
        assert_eq!(journal.recovery("a"), Recovery::Finished(result));
        assert!(journal.unfinished().is_empty());
    }

    #[test]
    fn a_corrupt_line_is_reported_and_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let mut journal = Journal::open(dir.path()).expect("open");
            journal.append("a", accepted("a")).expect("append");
        }
        let path = dir.path().join(JOURNAL_FILE);
        // A torn write (power lost mid-line) and a line of garbage, then a good record.
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open journal");
        file.write_all(b"{\"id\":\"a\",\"at\":\"2026-12-01T22:00:00Z\",\"step\":\"inst\n")
            .expect("write");
        file.write_all(b"not json at all\n\n").expect("write");
        drop(file);
        {
            let mut journal = Journal::open(dir.path()).expect("reopen");
            journal.append("a", Step::InstallBegun).expect("append");
        }
        let journal = Journal::open(dir.path()).expect("reopen again");
        let problems = journal.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("line 2"), "{}", problems[0]);
        assert!(problems[0].contains(JOURNAL_FILE), "{}", problems[0]);
        assert!(problems[1].contains("line 3"), "{}", problems[1]);
        assert!(problems[1].contains("not json at all"), "{}", problems[1]);
        assert_eq!(journal.recovery("a"), Recovery::InstallInterrupted);
    }

    #[test]
    fn a_reboot_without_an_install_record_counts_as_interrupted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut journal = Journal::open(dir.path()).expect("open");
        journal.append("a", accepted("a")).expect("append");
        journal.append("a", Step::RebootRequested).expect("append");
        assert_eq!(journal.recovery("a"), Recovery::InstallInterrupted);
    }

    #[test]
    fn a_long_journal_is_compacted_to_what_recovery_needs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let result = FinalResult {
            phase: OperationPhase::Failed,
            installed: Vec::new(),
            message: Some("x".to_owned()),
            reboot_pending: false,
        };
        {
            let mut journal = Journal::open(dir.path()).expect("open");
            // Built in memory then written at once: 10,000 fsyncs would be slow.
            let mut text = String::new();
            for n in 0..COMPACT_AFTER_LINES {
                let record = Record {
                    id: format!("old-{n}"),
                    at: Time(Timestamp::now()),
                    step: Step::Finished {
                        result: result.clone(),
                    },
                };
                text.push_str(&serde_json::to_string(&record).expect("encode"));
                text.push('\n');
            }
            journal.file.write_all(text.as_bytes()).expect("write");
            journal.append("open", accepted("open")).expect("append");
            journal.append("open", Step::InstallBegun).expect("append");
        }
        let journal = Journal::open(dir.path()).expect("reopen");
        assert_eq!(journal.recovery("open"), Recovery::InstallInterrupted);
        let last = format!("old-{}", COMPACT_AFTER_LINES - 1);
        assert_eq!(journal.recovery(&last), Recovery::Finished(result));
        assert_eq!(journal.recovery("old-0"), Recovery::Unknown);
        let text = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).expect("read");
        assert_eq!(text.lines().count(), 3);
    }
}
