//! The simulated backend: what a simulated agent does with an operation. Pure, no I/O.
//!
//! This is the one copy of the simulated agent's behaviour. The offline simulation
//! ([`crate::engine::simulation`], behind `kubectl patchwave simulate` and `plan`) and the
//! simulated fleet on a cluster ([`super::fleet`]) both read the annotations with
//! [`behaviour`] and report with [`finish`] / [`finish_operation`], so an asset behaves the
//! same in both.
//!
//! Annotations on an Asset:
//! - `simulate.patchwave.dev/outcome`: `Succeeded` (default), `Failed` or `NoResponse`.
//! - `simulate.patchwave.dev/duration`: how long an operation takes, Go style (`90s`, `10m`,
//!   `1h30m`); without it, `spec.expectedDuration`, else 10 minutes.

use jiff::{SignedDuration, Timestamp};

use super::protocol::mark_finished;
use crate::api::asset::{
    AssetStatus, AvailableUpdate, InstalledUpdate, MAX_AVAILABLE_UPDATES, MAX_INSTALLED_HISTORY,
    Operation, OperationPhase, ReportedState, UpdateRef,
};
use crate::api::{Asset, OperationAction, Time};
use crate::engine::duration::parse_duration;

/// Annotation choosing a simulated agent's outcome: Succeeded (default), Failed, NoResponse.
pub const OUTCOME_ANNOTATION: &str = "simulate.patchwave.dev/outcome";
/// Annotation giving a simulated operation's duration, Go style (default 10m).
pub const DURATION_ANNOTATION: &str = "simulate.patchwave.dev/duration";
/// Duration of a simulated operation without annotation or expectedDuration.
pub const DEFAULT_DURATION: SignedDuration = SignedDuration::from_mins(10);
/// The message of a simulated failure (people grep for the annotation it names).
pub const FAILURE_MESSAGE: &str =
    "simulated failure (annotation simulate.patchwave.dev/outcome=Failed)";

/// What a simulated agent does with an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Installs and reports success.
    Succeeded,
    /// Reports a failure.
    Failed,
    /// Never reports (the operation times out).
    NoResponse,
}

/// A simulated agent's behaviour, from the asset's annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behaviour {
    /// How every operation ends.
    pub outcome: Outcome,
    /// How long every operation takes (virtual time; the fleet divides it by its speed).
    pub duration: SignedDuration,
}

/// An annotation that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Asset/{asset}: metadata.annotations[{annotation}]: {message}")]
pub struct BehaviourError {
    /// Asset name.
    pub asset: String,
    /// Annotation key.
    pub annotation: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Reads the simulated agent's behaviour from the asset's annotations.
///
/// With `assume_success` (the forecast of `plan`) the outcome annotation is ignored and the
/// duration is what the asset's owner expects (`spec.expectedDuration`), not the injected one.
pub fn behaviour(asset: &Asset, assume_success: bool) -> Result<Behaviour, BehaviourError> {
    let name = asset.metadata.name.clone().unwrap_or_default();
    let annotations = asset.metadata.annotations.as_ref();
    let annotation = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    let outcome = match annotation(OUTCOME_ANNOTATION) {
        _ if assume_success => Outcome::Succeeded,
        None | Some("Succeeded") => Outcome::Succeeded,
        Some("Failed") => Outcome::Failed,
        Some("NoResponse") => Outcome::NoResponse,
        Some(other) => {
            return Err(BehaviourError {
                asset: name,
                annotation: OUTCOME_ANNOTATION,
                message: format!("\"{other}\" is not one of Succeeded, Failed, NoResponse"),
            });
        }
    };
    // A forecast uses what the asset's owner expects, not the simulation's injected duration.
    let injected = if assume_success {
        None
    } else {
        annotation(DURATION_ANNOTATION)
    };
    let duration_text = injected.or(asset.spec.expected_duration.as_deref());
    let duration = match duration_text {
        None => DEFAULT_DURATION,
        Some(text) => parse_duration(text).map_err(|message| BehaviourError {
            asset: name,
            annotation: DURATION_ANNOTATION,
            message,
        })?,
    };
    Ok(Behaviour { outcome, duration })
}

/// A simulated agent finishes operation `id` of `asset` at `at` with `outcome`: [`finish`]
/// on the asset's `status.reported`, if `status.operation` is still that operation.
pub fn finish_operation(asset: &mut Asset, id: &str, outcome: Outcome, at: Timestamp) {
    let Some(AssetStatus {
        operation: Some(operation),
        reported,
        ..
    }) = asset.status.as_mut()
    else {
        return;
    };
    if operation.id != id {
        return;
    }
    // Borrowed, not copied: forecasts finish hundreds of thousands of operations.
    finish(
        reported.get_or_insert_with(Default::default),
        operation,
        outcome,
        at,
    );
}

/// A simulated agent finishes `operation` at `at` with `outcome`, reporting as the real agent
/// does: the result, the installed versions, the installed-update history and the updates gone
/// from (or, for a rollback, back in) its inventory. Also counts as a heartbeat.
///
/// - Install, Succeeded: every listed update found in `availableUpdates` at the listed version
///   moves to `installedHistory` (action Install, with the rollout's name) and is listed in
///   `lastOperation.installed`.
/// - Rollback, Succeeded: every listed update that this rollout installed (per the history)
///   gets a history entry with action Rollback and goes back into `availableUpdates`. The
///   version it returns to is not known to the simulation, so the entry has none.
/// - Failed (and NoResponse, which a simulated agent never reports): nothing changes but the
///   result, with a message naming the annotation.
///
/// `startedAt` is kept from a `Running` report of the same operation, else the issue time.
pub fn finish(
    reported: &mut ReportedState,
    operation: &Operation,
    outcome: Outcome,
    at: Timestamp,
) {
    reported.last_heartbeat = Some(Time(at));
    let phase = match outcome {
        Outcome::Succeeded => OperationPhase::Succeeded,
        Outcome::Failed | Outcome::NoResponse => OperationPhase::Failed,
    };
    let mut installed: Vec<UpdateRef> = Vec::new();
    if phase == OperationPhase::Succeeded {
        match operation.action {
            OperationAction::Install => install(reported, operation, at, &mut installed),
            OperationAction::Rollback => roll_back(reported, operation, at, &mut installed),
        }
    }
    // Bounded like the CRD says, so the report is never rejected for its size.
    let excess = reported
        .installed_history
        .len()
        .saturating_sub(MAX_INSTALLED_HISTORY);
    reported.installed_history.drain(..excess);
    reported.available_updates.truncate(MAX_AVAILABLE_UPDATES);
    let message = (phase == OperationPhase::Failed).then(|| FAILURE_MESSAGE.to_owned());
    mark_finished(reported, operation, phase, installed, message, at);
    // The offline simulation never reports Running: its operations start when issued.
    if let Some(last) = reported.last_operation.as_mut() {
        last.started_at
            .get_or_insert_with(|| operation.issued_at.clone());
    }
}

fn install(
    reported: &mut ReportedState,
    operation: &Operation,
    at: Timestamp,
    installed: &mut Vec<UpdateRef>,
) {
    let wanted = &operation.updates;
    let slot = |u: &AvailableUpdate| {
        wanted
            .iter()
            .position(|w| w.id == u.id && w.version == u.version)
    };
    // One pass over the inventory, not one removal per update: forecasts finish hundreds of
    // thousands of operations. A repeated entry (one package for two architectures) goes
    // with the first.
    let mut taken: Vec<Option<AvailableUpdate>> = vec![None; wanted.len()];
    let inventory = std::mem::take(&mut reported.available_updates);
    reported.available_updates.reserve(inventory.len());
    for update in inventory {
        match slot(&update) {
            Some(i) => {
                taken[i].get_or_insert(update);
            }
            None => reported.available_updates.push(update),
        }
    }
    for (wanted, update) in wanted.iter().zip(taken) {
        let Some(update) = update else {
            continue;
        };
        reported.installed_history.push(InstalledUpdate {
            id: update.id,
            version: update.version,
            package: update.package,
            action: OperationAction::Install,
            at: Time(at),
            released_at: update.released_at,
            severity: update.severity,
            classification: update.classification,
            rollout: Some(operation.rollout.clone()),
        });
        installed.push(wanted.clone());
    }
}

fn roll_back(
    reported: &mut ReportedState,
    operation: &Operation,
    at: Timestamp,
    rolled_back: &mut Vec<UpdateRef>,
) {
    for wanted in &operation.updates {
        // The newest history entry of this update that this rollout installed and that was
        // not rolled back since.
        let last = reported
            .installed_history
            .iter()
            .rev()
            .find(|h| h.id == wanted.id && h.rollout.as_deref() == Some(&operation.rollout));
        let Some(entry) = last.filter(|h| h.action == OperationAction::Install) else {
            continue;
        };
        let back = AvailableUpdate {
            id: entry.id.clone(),
            version: entry.version.clone(),
            package: entry.package.clone(),
            classification: entry.classification,
            severity: entry.severity,
            released_at: entry.released_at.clone(),
            ..AvailableUpdate::default()
        };
        let record = InstalledUpdate {
            id: entry.id.clone(),
            version: None,
            package: entry.package.clone(),
            action: OperationAction::Rollback,
            at: Time(at),
            released_at: entry.released_at.clone(),
            severity: entry.severity,
            classification: entry.classification,
            rollout: Some(operation.rollout.clone()),
        };
        if !reported
            .available_updates
            .iter()
            .any(|u| u.id == back.id && u.version == back.version)
        {
            reported.available_updates.push(back);
        }
        reported.installed_history.push(record);
        rolled_back.push(UpdateRef {
            id: wanted.id.clone(),
            version: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::asset::OperationResult;
    use crate::api::{Classification, RebootPolicy, Severity};

    fn at(text: &str) -> Timestamp {
        text.parse().expect("test timestamp")
    }

    fn operation(id: &str, action: OperationAction, updates: &[(&str, &str)]) -> Operation {
        Operation {
            id: id.to_owned(),
            rollout: "r1".to_owned(),
            ring: None,
            revision: None,
            action,
            updates: updates
                .iter()
                .map(|(id, v)| UpdateRef {
                    id: (*id).to_owned(),
                    version: Some((*v).to_owned()),
                })
                .collect(),
            reboot: RebootPolicy::default(),
            hooks: None,
            issued_at: Time(at("2026-12-01T22:00:00Z")),
            not_after: Time(at("2026-12-02T03:00:00Z")),
            timeout_at: Time(at("2026-12-02T06:00:00Z")),
        }
    }

    fn reported() -> ReportedState {
        ReportedState {
            available_updates: vec![
                AvailableUpdate {
                    id: "openssl".to_owned(),
                    version: Some("3.0.15".to_owned()),
                    package: Some("openssl-libs".to_owned()),
                    classification: Classification::Security,
                    severity: Severity::Critical,
                    ..AvailableUpdate::default()
                },
                AvailableUpdate {
                    id: "curl".to_owned(),
                    version: Some("8.1".to_owned()),
                    ..AvailableUpdate::default()
                },
            ],
            ..ReportedState::default()
        }
    }

    #[test]
    fn an_update_listed_twice_goes_with_one_install() {
        let mut state = reported();
        let repeated = state.available_updates[0].clone();
        state.available_updates.push(repeated);
        let install = operation("op-1", OperationAction::Install, &[("openssl", "3.0.15")]);
        finish(
            &mut state,
            &install,
            Outcome::Succeeded,
            at("2026-12-01T22:10:00Z"),
        );
        let left: Vec<&str> = state
            .available_updates
            .iter()
            .map(|u| u.id.as_str())
            .collect();
        assert_eq!(left, ["curl"]);
        assert_eq!(state.installed_history.len(), 1);
    }

    #[test]
    fn an_install_reports_what_it_found_in_the_operations_order() {
        let mut state = reported();
        let install = operation(
            "op-1",
            OperationAction::Install,
            &[("curl", "8.1"), ("zlib", "1.3"), ("openssl", "3.0.15")],
        );
        finish(
            &mut state,
            &install,
            Outcome::Succeeded,
            at("2026-12-01T22:10:00Z"),
        );
        assert!(state.available_updates.is_empty());
        let history: Vec<&str> = state
            .installed_history
            .iter()
            .map(|h| h.id.as_str())
            .collect();
        assert_eq!(
            history,
            ["curl", "openssl"],
            "zlib was not there to install"
        );
        let installed: Vec<&str> = state
            .last_operation
            .iter()
            .flat_map(|r| r.installed.iter().map(|u| u.id.as_str()))
            .collect();
        assert_eq!(installed, ["curl", "openssl"]);
        let openssl = &state.installed_history[1];
        assert_eq!(openssl.severity, Severity::Critical);
        assert_eq!(openssl.package.as_deref(), Some("openssl-libs"));
    }

    #[test]
    fn install_then_rollback_restores_the_inventory() {
        let mut state = reported();
        let install = operation("op-1", OperationAction::Install, &[("openssl", "3.0.15")]);
        finish(
            &mut state,
            &install,
            Outcome::Succeeded,
            at("2026-12-01T22:10:00Z"),
        );
        assert_eq!(state.available_updates.len(), 1);
        assert_eq!(state.installed_history.len(), 1);
        let result = state.last_operation.clone().expect("result");
        assert_eq!(result.phase, OperationPhase::Succeeded);
        assert_eq!(result.installed, install.updates);

        let rollback = operation("op-2", OperationAction::Rollback, &[("openssl", "3.0.15")]);
        finish(
            &mut state,
            &rollback,
            Outcome::Succeeded,
            at("2026-12-01T23:00:00Z"),
        );
        assert_eq!(state.available_updates.len(), 2);
        assert!(state.available_updates.iter().any(|u| u.id == "openssl"
            && u.severity == Severity::Critical
            && u.package.as_deref() == Some("openssl-libs")));
        let last = state.installed_history.last().expect("history");
        assert_eq!(last.action, OperationAction::Rollback);
        assert_eq!(last.package.as_deref(), Some("openssl-libs"));
        assert_eq!(last.rollout.as_deref(), Some("r1"));

        // A second rollback finds nothing left to roll back.
        let again = operation("op-3", OperationAction::Rollback, &[("openssl", "3.0.15")]);
        finish(
            &mut state,
            &again,
            Outcome::Succeeded,
            at("2026-12-01T23:30:00Z"),
        );
        assert_eq!(state.installed_history.len(), 2);
        assert_eq!(state.available_updates.len(), 2);
    }

    #[test]
    fn failure_changes_only_the_result_and_keeps_started_at() {
        let mut state = reported();
        let install = operation("op-1", OperationAction::Install, &[("openssl", "3.0.15")]);
        state.last_operation = Some(OperationResult {
            id: "op-1".to_owned(),
            phase: OperationPhase::Running,
            started_at: Some(Time(at("2026-12-01T22:01:00Z"))),
            finished_at: None,
            installed: Vec::new(),
            message: None,
        });
        finish(
            &mut state,
            &install,
            Outcome::Failed,
            at("2026-12-01T22:10:00Z"),
        );
        assert_eq!(state.available_updates.len(), 2);
        let result = state.last_operation.expect("result");
        assert_eq!(result.phase, OperationPhase::Failed);
        assert_eq!(result.started_at, Some(Time(at("2026-12-01T22:01:00Z"))));
        assert_eq!(result.message.as_deref(), Some(FAILURE_MESSAGE));
    }
}
