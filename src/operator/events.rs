//! Kubernetes Events (`events.k8s.io/v1`) for the decisions people want to see.
//!
//! kube's `Recorder` folds every Event with the same type, reason, action, regarding and
//! related object into one series that keeps its *first* note. For an audit trail that loses
//! decisions: "ring pilot started" would stand for "ring main started" as well, and a second
//! asset's approval on the same rollout would vanish. Here an Event joins a series only when
//! its note is the same too, so each distinct decision is its own Event and a repeated one
//! (a reconcile error retried every 5 s) still counts up instead of piling up.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as KubeEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};

/// How long an Event may grow into a series (kube's recorder uses the same).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// Publishes Events as one reporting controller and instance.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    /// The Events published within [`SERIES_WINDOW`], by everything that makes them the same.
    recent: Mutex<HashMap<String, Recent>>,
}

struct Recent {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

impl Publisher {
    /// A publisher for `controller` (the operator's field manager) and `instance` (this
    /// replica).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Publisher {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Records `event` about `regarding`: a new Event, or, when the very same one was
    /// recorded within the series window, one more occurrence of it.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = series_key(event, regarding);
        let repeat = {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.retain(|_, r| now.duration_since(r.last) < SERIES_WINDOW);
            recent.get_mut(&key).map(|r| {
                r.count += 1;
                r.last = now;
                (r.namespace.clone(), r.name.clone(), r.count)
            })
        };
        if let Some((namespace, name, count)) = repeat {
            let series = serde_json::json!({"series": EventSeries {
                count,
                last_observed_time: MicroTime(now),
            }});
            let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
            return api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
                .map(drop);
        }

        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        let object = KubeEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..KubeEvent::default()
        };
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &object).await?;
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.insert(
            key,
            Recent {
                namespace,
                name,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }
}

/// What makes two Events the same occurrence: kube's key plus the note.
fn series_key(event: &Event, regarding: &ObjectReference) -> String {
    format!(
        "{:?}\u{0}{}\u{0}{}\u{0}{regarding:?}\u{0}{:?}\u{0}{}",
        event.type_,
        event.reason,
        event.action,
        event.secondary,
        event.note.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            note: Some(note.to_owned()),
            action: "Reconcile".to_owned(),
            secondary: None,
        }
    }

    #[test]
    fn events_that_say_different_things_are_never_one_series() {
        let rollout = ObjectReference {
            kind: Some("PatchRollout".to_owned()),
            name: Some("sec-1".to_owned()),
            namespace: Some("acme".to_owned()),
            ..ObjectReference::default()
        };
        let pilot = series_key(&event("RingStarted", "ring pilot started"), &rollout);
        let main = series_key(&event("RingStarted", "ring main started"), &rollout);
        assert_ne!(pilot, main);
        assert_eq!(
            pilot,
            series_key(&event("RingStarted", "ring pilot started"), &rollout)
        );
        let other = ObjectReference {
            name: Some("sec-2".to_owned()),
            ..rollout.clone()
        };
        assert_ne!(
            pilot,
            series_key(&event("RingStarted", "ring pilot started"), &other)
        );
    }
}
