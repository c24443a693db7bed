//! Holding back Asset summaries that nobody has to act on.
//!
//! An Asset's operator-owned status has two kinds of fields: the operation and its rollout
//! records, which agents and the engine depend on and which are written at once, and a
//! summary for people (state, missing count, conditions). A summary change that needs no one's
//! attention (an asset now waiting its turn, a missing count that moved) waits up to a delay,
//! and rides along for free if the asset's operation is written meanwhile: in a large rollout
//! most waiting assets get their operation before the delay ends, which saves one write per
//! asset. Changes that need attention (failed, waiting for approval, held, unscheduled,
//! unassigned, unmanaged, a condition turning False) are written at once, and so is the end of a problem
//! (a condition True again after False: an agent heard from again).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::api::AssetStatus;

/// States a person acts on: never held back.
const ATTENTION_STATES: [&str; 6] = [
    "Failed",
    "WaitingForApproval",
    "Held",
    "Unscheduled",
    "Unassigned",
    "Unmanaged",
];

/// First sighting of each held-back summary, by namespace and asset.
pub struct Coalesce {
    delay: Duration,
    first_seen: Mutex<HashMap<(String, String), Instant>>,
}

impl Coalesce {
    /// Holds summaries back for at most `delay` (zero writes every change at once).
    pub fn new(delay: Duration) -> Self {
        Coalesce {
            delay,
            first_seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the change from `stored` to `wanted` may wait: `None` writes it now, `Some(t)`
    /// holds it back until `t` (when the caller should look again).
    pub fn decide(
        &self,
        namespace: &str,
        name: &str,
        stored: Option<&AssetStatus>,
        wanted: &AssetStatus,
    ) -> Option<Timestamp> {
        if self.delay.is_zero() || needs_writing_now(stored, wanted) {
            return None;
        }
        let mut first_seen = self
            .first_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let seen = *first_seen
            .entry((namespace.to_owned(), name.to_owned()))
            .or_insert_with(Instant::now);
        let waited = seen.elapsed();
        if waited >= self.delay {
            return None;
        }
        let remaining = self.delay - waited;
        Timestamp::now().checked_add(remaining).ok()
    }

    /// The asset's summary was written (or needs nothing): start over.
    pub fn forget(&self, namespace: &str, name: &str) {
        let mut first_seen = self
            .first_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !first_seen.is_empty() {
            first_seen.remove(&(namespace.to_owned(), name.to_owned()));
        }
    }
}

/// True for changes of the operation or the rollout records, attention states, and conditions
/// turning False or back to True.
fn needs_writing_now(stored: Option<&AssetStatus>, wanted: &AssetStatus) -> bool {
    let Some(stored) = stored else {
        return wanted.operation.is_some()
            || !wanted.rollouts.is_empty()
            || attention(wanted)
            || wanted.conditions.iter().any(|c| c.status == "False");
    };
    if stored.operation != wanted.operation || stored.rollouts != wanted.rollouts {
        return true;
    }
    if stored.state != wanted.state && attention(wanted) {
        return true;
    }
    // A condition turning False, or True again after it was False: someone was told of the
    // problem (an alert, `kubectl get`) and watches for its end.
    wanted.conditions.iter().any(|c| {
        let before = stored
            .conditions
            .iter()
            .find(|s| s.type_ == c.type_)
            .map(|s| s.status.as_str());
        match c.status.as_str() {
            "False" => before != Some("False"),
            "True" => before == Some("False"),
            _ => false,
        }
    })
}

fn attention(status: &AssetStatus) -> bool {
    status
        .state
        .as_deref()
        .is_some_and(|s| ATTENTION_STATES.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Condition;
    use crate::api::Time;

    fn status(state: &str, ready: &str) -> AssetStatus {
        AssetStatus {
            state: Some(state.to_owned()),
            conditions: vec![Condition {
                type_: "Ready".to_owned(),
                status: ready.to_owned(),
                reason: "R".to_owned(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
            }],
            ..AssetStatus::default()
        }
    }

    #[test]
    fn quiet_changes_wait_and_attention_goes_out_at_once() {
        let coalesce = Coalesce::new(Duration::from_secs(60));
        let pending = status("Pending", "True");
        assert!(coalesce.decide("ns", "a", None, &pending).is_some());
        assert!(
            coalesce
                .decide("ns", "a", Some(&status("UpToDate", "True")), &pending)
                .is_some()
        );
        for state in ATTENTION_STATES {
            assert!(
                coalesce
                    .decide("ns", "b", Some(&pending), &status(state, "True"))
                    .is_none(),
                "{state}"
            );
        }
        assert!(
            coalesce
                .decide("ns", "c", Some(&pending), &status("Pending", "False"))
                .is_none()
        );
        // Back to True after False: at once; True where nothing was written yet: may wait.
        assert!(
            coalesce
                .decide("ns", "e", Some(&status("Pending", "False")), &pending)
                .is_none()
        );
        let unknown = AssetStatus {
            state: Some("Pending".to_owned()),
            ..AssetStatus::default()
        };
        assert!(
            coalesce
                .decide("ns", "f", Some(&unknown), &pending)
                .is_some()
        );
        let mut with_operation = pending.clone();
        with_operation
            .rollouts
            .push(crate::api::asset::AssetRolloutRecord {
                rollout: "r".to_owned(),
                ring: None,
                operation_id: None,
                action: crate::api::OperationAction::Install,
                phase: crate::api::asset::OperationPhase::Running,
                started_at: None,
                finished_at: None,
                message: None,
            });
        assert!(
            coalesce
                .decide("ns", "d", Some(&pending), &with_operation)
                .is_none()
        );
    }

    #[test]
    fn a_held_back_summary_goes_out_when_the_delay_is_over() {
        let coalesce = Coalesce::new(Duration::from_millis(30));
        let pending = status("Pending", "True");
        let first = coalesce.decide("ns", "a", None, &pending);
        assert!(first.is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(coalesce.decide("ns", "a", None, &pending).is_none());
        coalesce.forget("ns", "a");
        assert!(coalesce.decide("ns", "a", None, &pending).is_some());
        assert!(
            Coalesce::new(Duration::ZERO)
                .decide("ns", "a", None, &pending)
                .is_none()
        );
    }
}
