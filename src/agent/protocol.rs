//! The agent protocol: how an agent and the operator talk through the agent's Asset.
//!
//! Shared by the simulated fleet ([`super::fleet`]) and the agent on a machine
//! ([`super::node`]), so both read and write exactly the same way.
//!
//! - The operator writes `status.operation` (field manager `patchwave-operator`): what the
//!   agent must do now, with an id, the exact updates and `notAfter`, the instant after which
//!   the agent must not start.
//! - The agent reads it and decides with [`decide`]: nothing, start, report the operation
//!   failed because its window closed before it could start, or keep going with one it has
//!   already started. An operation whose id equals `status.reported.lastOperation.id` is never
//!   executed twice: that report is the agent's journal on the API server.
//! - The agent writes nothing but `status.reported` of its own Asset, by server-side apply on
//!   the `status` subresource with the field manager `patchwave-agent` ([`report`]), forced so
//!   a manual edit of a field it sends is taken back instead of blocking the agent. Every
//!   write carries the whole `reported` object, because server-side apply removes the fields an
//!   applier stops sending. The `mark_*` helpers change a copy of the last report.
//!
//! # Writes per asset
//!
//! An agent writes its Asset (heartbeat interval 20 minutes by default,
//! [`DEFAULT_HEARTBEAT_INTERVAL`]; every write counts as a heartbeat):
//! - 3 heartbeats an hour ([`mark_heartbeat`]) when nothing else was written;
//! - 2 writes per operation: `Running` when it starts ([`mark_started`]) and the result when it
//!   ends ([`mark_finished`]); 1 for an operation whose window closed before it could start
//!   ([`mark_expired`]);
//! - 1 for the inventory when it changed (refreshed every 6 hours by default, or when the
//!   annotation `patchwave.dev/refresh-inventory` changes), and 1 when the agent starts.
//!
//! So 10,000 assets cost 30,000 writes an hour in steady state (8.3 a second, under the goal
//! of 10 a second for the whole fleet), plus 2 per operation during rollouts (a ring of 1,000
//! assets adds 2,000 writes, spread over its window).

use std::time::Duration;

use jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::api::asset::{Operation, OperationPhase, OperationResult, ReportedState, UpdateRef};
use crate::api::{AGENT_FIELD_MANAGER, Asset, GROUP, Time, VERSION};

/// Default time between two heartbeats of an agent: 3 writes per asset and hour, so 10,000
/// assets stay under 10 writes per second (8.3). Below the default `staleAfter` of 30 minutes.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(20 * 60);
/// Longest message an operation result may carry (the CRD's limit on `message`).
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// What an agent must do about its Asset's `status.operation`, at a given instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision<'a> {
    /// No operation for this agent.
    Idle,
    /// Start this operation now: it is new (its id is not `lastOperation.id`) and its window
    /// has not closed (`now <= notAfter`).
    Start(&'a Operation),
    /// Report this operation failed without running it: it is new, but `notAfter` has passed.
    Expire(&'a Operation),
    /// This operation was started (`lastOperation` is `Running` with its id): keep executing
    /// it (after a restart, resume it from the agent's journal); never start it again.
    InProgress {
        /// The operation.
        operation: &'a Operation,
        /// When the agent reported it started.
        started_at: Option<Timestamp>,
    },
    /// This operation has a result already (`lastOperation` has its id and is not `Running`):
    /// nothing to do until the operator writes another one.
    Done(&'a Operation),
}

/// What the agent of `asset` must do at `now`. Pure; see [`decide_with`].
pub fn decide(asset: &Asset, now: Timestamp) -> Decision<'_> {
    let status = asset.status.as_ref();
    decide_with(
        status.and_then(|s| s.operation.as_ref()),
        status.and_then(|s| s.reported.as_ref()),
        now,
    )
}

/// What an agent must do at `now`, given the operator's `operation` and the agent's own last
/// `reported` state (which may be newer than the Asset it last read).
pub fn decide_with<'a>(
    operation: Option<&'a Operation>,
    reported: Option<&ReportedState>,
    now: Timestamp,
) -> Decision<'a> {
    let Some(operation) = operation else {
        return Decision::Idle;
    };
    let last = reported
        .and_then(|r| r.last_operation.as_ref())
        .filter(|l| l.id == operation.id);
    match last {
        Some(last) if last.phase == OperationPhase::Running => Decision::InProgress {
            operation,
            started_at: last.started_at.as_ref().map(|t| t.0),
        },
        Some(_) => Decision::Done(operation),
        None if now > operation.not_after.0 => Decision::Expire(operation),
        None => Decision::Start(operation),
    }
}

/// Records a heartbeat: only `lastHeartbeat` changes.
pub fn mark_heartbeat(reported: &mut ReportedState, now: Timestamp) {
    reported.last_heartbeat = Some(Time(now));
}

/// Records that the agent started `operation` at `now`: `lastOperation` is
/// `{id, phase: Running, startedAt: now}` (the journal entry that prevents a second run).
pub fn mark_started(reported: &mut ReportedState, operation: &Operation, now: Timestamp) {
    reported.last_heartbeat = Some(Time(now));
    reported.last_operation = Some(OperationResult {
        id: operation.id.clone(),
        phase: OperationPhase::Running,
        started_at: Some(Time(now)),
        finished_at: None,
        installed: Vec::new(),
        message: None,
    });
}

/// Records the result of `operation` at `now`: `phase` (Succeeded or Failed), the versions
/// now installed and a message for people (cut to [`MAX_MESSAGE_CHARS`]). `startedAt` is
/// kept from the `Running` report of the same operation. The caller updates the inventory
/// (availableUpdates, installedHistory) itself.
pub fn mark_finished(
    reported: &mut ReportedState,
    operation: &Operation,
    phase: OperationPhase,
    installed: Vec<UpdateRef>,
    message: Option<String>,
    now: Timestamp,
) {
    let started_at = reported
        .last_operation
        .as_ref()
        .filter(|l| l.id == operation.id)
        .and_then(|l| l.started_at.clone());
    reported.last_heartbeat = Some(Time(now));
    reported.last_operation = Some(OperationResult {
        id: operation.id.clone(),
        phase,
        started_at,
        finished_at: Some(Time(now)),
        installed,
        message: message.map(|m| truncate(m, MAX_MESSAGE_CHARS)),
    });
}

/// Records that `operation` was not started because its window closed: phase Failed, no
/// start time, a message naming `notAfter`.
pub fn mark_expired(reported: &mut ReportedState, operation: &Operation, now: Timestamp) {
    mark_finished(
        reported,
        operation,
        OperationPhase::Failed,
        Vec::new(),
        Some(expired_message(operation, now)),
        now,
    );
}

/// The message of an operation reported failed because its window closed before it started.
pub fn expired_message(operation: &Operation, now: Timestamp) -> String {
    format!(
        "not started: the agent saw the operation at {}, after its notAfter {} \
         (the maintenance window had closed); nothing was changed",
        now.round(jiff::Unit::Second).unwrap_or(now),
        operation.not_after.0
    )
}

/// The body of the agent's server-side apply: `status.reported` of Asset `name`, whole.
pub fn apply_body(name: &str, reported: &ReportedState) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "Asset",
        "metadata": { "name": name },
        "status": { "reported": reported },
    })
}

/// Patch parameters of every agent write: server-side apply as `patchwave-agent`, forced.
/// The agent is the only owner of `status.reported`, so it takes back the fields it sends when
/// another manager changed them (a person's `kubectl patch`); unforced, one such edit would
/// make every later report fail with a conflict and silence the agent. The body holds nothing
/// but `status.reported` ([`apply_body`]), so the operator's fields are never taken.
pub fn patch_params() -> PatchParams {
    PatchParams::apply(AGENT_FIELD_MANAGER).force()
}

/// Writes `reported` as `status.reported` of Asset `name` (namespace of `api`) and returns the
/// Asset as stored.
pub async fn report(
    api: &Api<Asset>,
    name: &str,
    reported: &ReportedState,
) -> Result<Asset, kube::Error> {
    api.patch_status(
        name,
        &patch_params(),
        &Patch::Apply(apply_body(name, reported)),
    )
    .await
}

/// Cuts `text` to at most `max` characters (on a character boundary), marking the cut.
fn truncate(mut text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let keep = max.saturating_sub(1);
    if let Some((index, _)) = text.char_indices().nth(keep) {
        text.truncate(index);
    }
    text.push('…');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AssetSpec, AssetStatus, OperationAction, OsFamily, RebootPolicy};

    fn at(text: &str) -> Timestamp {
        text.parse().expect("test timestamp")
    }

    fn operation(id: &str) -> Operation {
        Operation {
            id: id.to_owned(),
            rollout: "r1".to_owned(),
            ring: Some("pilot".to_owned()),
            revision: None,
            action: OperationAction::Install,
            updates: vec![UpdateRef {
                id: "openssl".to_owned(),
                version: Some("3.0.15".to_owned()),
            }],
            reboot: RebootPolicy::default(),
            hooks: None,
            issued_at: Time(at("2026-12-01T22:00:00Z")),
            not_after: Time(at("2026-12-02T03:00:00Z")),
            timeout_at: Time(at("2026-12-02T06:00:00Z")),
        }
    }

    fn asset(operation: Option<Operation>, reported: Option<ReportedState>) -> Asset {
        let mut asset = Asset::new("web-1", AssetSpec::new(OsFamily::Linux));
        asset.status = Some(AssetStatus {
            operation,
            reported,
            ..AssetStatus::default()
        });
        asset
    }

    fn with_last(id: &str, phase: OperationPhase) -> ReportedState {
        let mut reported = ReportedState::default();
        mark_started(&mut reported, &operation(id), at("2026-12-01T22:01:00Z"));
        if let Some(last) = reported.last_operation.as_mut() {
            last.phase = phase;
        }
        reported
    }

    #[test]
    fn no_operation_means_idle() {
        let now = at("2026-12-01T22:00:00Z");
        assert_eq!(decide(&asset(None, None), now), Decision::Idle);
        let mut bare = asset(None, None);
        bare.status = None;
        assert_eq!(decide(&bare, now), Decision::Idle);
        let reported = with_last("op-1", OperationPhase::Succeeded);
        assert_eq!(decide(&asset(None, Some(reported)), now), Decision::Idle);
    }

    #[test]
    fn a_new_operation_starts_until_not_after_inclusive() {
        let op = operation("op-1");
        let subject = asset(Some(op.clone()), None);
        assert_eq!(
            decide(&subject, at("2026-12-01T22:00:05Z")),
            Decision::Start(&op)
        );
        assert_eq!(
            decide(&subject, at("2026-12-02T03:00:00Z")),
            Decision::Start(&op)
        );
        // A result of an older operation does not count as this one.
        let older = asset(
            Some(op.clone()),
            Some(with_last("op-0", OperationPhase::Failed)),
        );
        assert_eq!(
            decide(&older, at("2026-12-01T22:00:05Z")),
            Decision::Start(&op)
        );
    }

    #[test]
    fn a_new_operation_past_not_after_is_expired() {
        let op = operation("op-1");
        let subject = asset(Some(op.clone()), None);
        assert_eq!(
            decide(&subject, at("2026-12-02T03:00:00.001Z")),
            Decision::Expire(&op)
        );
        let mut reported = ReportedState::default();
        mark_expired(&mut reported, &op, at("2026-12-02T04:00:00Z"));
        let last = reported.last_operation.clone().expect("result");
        assert_eq!(last.phase, OperationPhase::Failed);
        assert_eq!(last.started_at, None);
        let message = last.message.expect("message");
        assert!(message.contains("2026-12-02T03:00:00Z"), "{message}");
        // Once reported, the expired operation is done, not expired again.
        let reported_asset = asset(Some(op.clone()), Some(reported));
        assert_eq!(
            decide(&reported_asset, at("2026-12-02T05:00:00Z")),
            Decision::Done(&op)
        );
    }

    #[test]
    fn the_same_operation_is_never_started_twice() {
        let op = operation("op-1");
        let running = asset(
            Some(op.clone()),
            Some(with_last("op-1", OperationPhase::Running)),
        );
        // Running stays in progress, even past notAfter (it started in time).
        for now in ["2026-12-01T22:30:00Z", "2026-12-02T04:00:00Z"] {
            assert_eq!(
                decide(&running, at(now)),
                Decision::InProgress {
                    operation: &op,
                    started_at: Some(at("2026-12-01T22:01:00Z")),
                }
            );
        }
        for phase in [
            OperationPhase::Succeeded,
            OperationPhase::Failed,
            OperationPhase::NoResponse,
        ] {
            let done = asset(Some(op.clone()), Some(with_last("op-1", phase)));
            assert_eq!(
                decide(&done, at("2026-12-01T22:30:00Z")),
                Decision::Done(&op)
            );
        }
    }

    #[test]
    fn helpers_change_only_their_fields() {
        let op = operation("op-1");
        let mut reported = with_last("op-0", OperationPhase::Succeeded);
        reported.agent_version = Some("0.1.0".to_owned());
        let before = reported.clone();
        mark_heartbeat(&mut reported, at("2026-12-01T23:00:00Z"));
        assert_eq!(
            reported,
            ReportedState {
                last_heartbeat: Some(Time(at("2026-12-01T23:00:00Z"))),
                ..before
            }
        );
        mark_started(&mut reported, &op, at("2026-12-01T23:01:00Z"));
        mark_finished(
            &mut reported,
            &op,
            OperationPhase::Succeeded,
            op.updates.clone(),
            Some("x".repeat(5000)),
            at("2026-12-01T23:11:00Z"),
        );
        let last = reported.last_operation.clone().expect("result");
        assert_eq!(last.started_at, Some(Time(at("2026-12-01T23:01:00Z"))));
        assert_eq!(last.finished_at, Some(Time(at("2026-12-01T23:11:00Z"))));
        assert_eq!(last.installed, op.updates);
        assert_eq!(
            last.message.map(|m| m.chars().count()),
            Some(MAX_MESSAGE_CHARS)
        );
        assert_eq!(reported.agent_version.as_deref(), Some("0.1.0"));
    }

    #[test]
    fn agent_writes_are_forced_applies_as_the_agent() {
        let params = patch_params();
        assert_eq!(params.field_manager.as_deref(), Some(AGENT_FIELD_MANAGER));
        assert!(params.force);
    }

    #[test]
    fn the_apply_body_carries_only_the_reported_status() {
        let body = apply_body("web-1", &with_last("op-1", OperationPhase::Running));
        assert_eq!(body["apiVersion"], "patchwave.dev/v1alpha1");
        assert_eq!(body["kind"], "Asset");
        assert_eq!(body["metadata"], json!({"name": "web-1"}));
        let status = body["status"].as_object().expect("status object");
        assert_eq!(status.keys().collect::<Vec<_>>(), ["reported"]);
        assert_eq!(status["reported"]["lastOperation"]["phase"], "Running");
    }
}
