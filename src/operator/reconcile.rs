//! One reconcile: evaluate a namespace with the engine and write the differences.
//!
//! Every kind is watched; a change to any object of a namespace wakes that namespace's
//! policies, and the reconcile of a policy evaluates the whole namespace (the engine decides
//! across policies: update ownership, one operation per asset, disruption budgets). The
//! controller runs one reconcile at a time, so two decisions never race on the same assets.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;

use super::Context;
use super::error::Error;
use crate::api::asset::OperationPhase;
use crate::api::rollout::RolloutPhase;
use crate::api::{
    Asset, AssetStatus, MaintenanceWindow, MaintenanceWindowStatus, OPERATOR_FIELD_MANAGER,
    PatchPolicy, PatchPolicyStatus, PatchRollout, PatchRolloutStatus, Ring, RingStatus,
};
use crate::engine::Inventory;
use crate::engine::apply::apply;
use crate::engine::evaluate::{Evaluation, Event, EventType, evaluate};
use crate::engine::status::{Derived, derive, operator_asset_status};

/// At most this many evaluations per reconcile (a created or finished rollout enables more).
const MAX_ROUNDS: usize = 8;
/// Writes in flight at once: enough to keep the API server busy, few enough to be polite.
const WRITE_CONCURRENCY: usize = 32;
/// Assets whose statuses are compared between two chances for other tasks to run.
const YIELD_EVERY: usize = 256;
/// Assets named in one aggregated Event.
const NAMED_IN_EVENT: usize = 20;
/// How soon a reconcile that found a cache still listing looks again.
const UNSYNCED_RETRY: Duration = Duration::from_millis(200);
/// Waking a little after the engine's next instant, so the decision there is already due.
const WAKE_SLACK: Duration = Duration::from_millis(200);

/// Reconciles one namespace (the controller's keys are namespaces, see
/// [`namespaces`](super::namespaces)).
pub async fn reconcile(key: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.leadership.is_leader() {
        // Followers keep their caches warm and wait; becoming the leader reconciles all.
        return Ok(Action::await_change());
    }
    if !ctx.caches.is_synced() {
        // The controller waits for the policy cache only. A namespace evaluated before its
        // Assets have listed looks empty, and a rollout in progress would end as Succeeded
        // with every ring at 0 assets, never to be taken up again.
        tracing::debug!(pending = ?ctx.caches.pending(), "caches still listing; waiting");
        return Ok(Action::requeue(UNSYNCED_RETRY));
    }
    let namespace = key.name_any();
    let started = Instant::now();
    let result = reconcile_namespace(&ctx, &namespace).await;
    ctx.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(Error::category),
    );
    let next = result?;
    Ok(match next {
        Some(at) => {
            let wait = at.duration_since(Timestamp::now());
            let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
            Action::requeue(wait + WAKE_SLACK)
        }
        None => Action::await_change(),
    })
}

/// What the controller does after a failed reconcile: log, tell the readers of the
/// namespace's policies with a Warning Event whose reason is the error's category, retry soon.
/// Other namespaces go on.
pub fn error_policy(key: Arc<Namespace>, error: &Error, ctx: Arc<Context>) -> Action {
    let namespace = key.name_any();
    tracing::warn!(
        %namespace,
        category = error.category(),
        %error,
        "reconcile failed; retrying"
    );
    if ctx.leadership.is_leader() && !matches!(error, Error::NotLeader) {
        let event = KubeEvent {
            type_: KubeEventType::Warning,
            reason: error.category().to_owned(),
            note: Some(truncate(&format!(
                "reconcile failed, retrying in 5 s: {error}"
            ))),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        // On the policies, where `kubectl describe` shows it (a namespace without policies
        // has only the log line).
        let regarding: Vec<ObjectReference> = ctx
            .stores
            .policies
            .state()
            .iter()
            .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
            .map(|p| p.object_ref(&()))
            .collect();
        tokio::spawn(async move {
            for regarding in regarding {
                // The API server may be the problem; the log line above has the error anyway.
                if ctx.recorder.publish(&event, &regarding).await.is_ok() {
                    ctx.metrics.wrote("Event", "event");
                }
            }
        });
    }
    Action::requeue(Duration::from_secs(5))
}

/// Evaluates `namespace`, writes what changed, and returns the next instant to look again.
async fn reconcile_namespace(
    ctx: &Arc<Context>,
    namespace: &str,
) -> Result<Option<Timestamp>, Error> {
    let now = Timestamp::now();
    let (context, name) = (ctx.clone(), namespace.to_owned());
    // Everything here walks every object of the namespace.
    let (
        mut original,
        Decided {
            inventory,
            events,
            mut last,
            derived,
        },
        figures_due,
    ) = apart(namespace, move || {
        let inventory = context.snapshot(&name);
        let incidents = context.incidents(&name);
        let original = Stored::of(&inventory, &incidents);
        let mut decided = decide(inventory, now);
        let (figures, due) = context.compliance.of(
            &name,
            original.fingerprint,
            &decided.inventory,
            &incidents,
            now,
            &context.metrics,
        );
        for (policy, status) in decided.derived.policies.iter_mut() {
            figures.fill(policy, status);
        }
        (original, decided, due)
    })
    .await?;
    // Applied and derived: only the problems and the next instant are still needed. Freed
    // before the writes, the peak memory of a large batch drops by one copy of its operations.
    last.operations = Vec::new();
    last.outcomes = Vec::new();
    last.assets = Vec::new();
    last.rollout_statuses = BTreeMap::new();
    last.created_rollouts = Vec::new();
    // Read before the writes: what the stored statuses did not show yet.
    let decisions = people_decisions(&original.rollouts, &inventory.rollouts, &events);
    let writer = Writer {
        ctx: ctx.as_ref(),
        namespace,
    };

    writer.create_rollouts(&original, &inventory).await?;
    // Taken: the stored versions of the changed assets are freed before their writes.
    let stored_assets = std::mem::take(&mut original.assets);
    let changes = writer
        .asset_changes(stored_assets, &inventory, &derived)
        .await;
    // Finished operations are recorded before new ones go out: the slots the engine freed
    // are free on the server too, so no reader ever sees more than maxConcurrent running.
    writer
        .write_assets(changes.others, &inventory, &derived)
        .await?;
    // The rollout status next: it never shows a ring Completed (or the rollout Succeeded)
    // before the writes that finished it are on the server, and it is not held back behind
    // the thousands of operations a large ring starts with.
    writer.rollout_statuses(&original, &inventory).await?;
    writer
        .write_assets(changes.starts, &inventory, &derived)
        .await?;
    writer.summaries(&original, &derived).await?;
    writer.events(&events, &decisions, &last).await;
    ctx.observe(namespace, &inventory, &derived, &events);

    Ok([
        last.next_change,
        derived.next_change,
        changes.due,
        Some(figures_due),
    ]
    .into_iter()
    .flatten()
    .min())
}

/// Assets to write, by index into the decided inventory.
#[derive(Default)]
struct AssetChanges {
    /// Recorded outcomes and other changes: written first.
    others: Vec<usize>,
    /// New operations handed out: written after the rollout status.
    starts: Vec<usize>,
    /// When a held-back summary is due.
    due: Option<Timestamp>,
}

/// The operator-owned status an Asset should have, with its name.
fn wanted_status<'i>(
    inventory: &'i Inventory,
    derived: &Derived,
    index: usize,
) -> Option<(&'i str, AssetStatus)> {
    let asset = &inventory.assets[index];
    let name = asset.metadata.name.as_deref()?;
    let summary = derived.assets.get(name)?;
    Some((name, operator_asset_status(asset.status.as_ref(), summary)))
}

/// The engine's decisions for a namespace at one instant.
struct Decided {
    /// The namespace's objects with the decisions applied (what the writes make true).
    inventory: Inventory,
    /// Every round's events.
    events: Vec<Event>,
    /// The last round: the problems and the next instant.
    last: Evaluation,
    /// The statuses derived from the result.
    derived: Derived,
}

/// Evaluates and applies until no round enables more (a created or finished rollout does),
/// then derives the statuses: the CPU work of a reconcile, which grows with the namespace.
fn decide(mut inventory: Inventory, now: Timestamp) -> Decided {
    let mut events: Vec<Event> = Vec::new();
    let mut last = Evaluation::default();
    for _ in 0..MAX_ROUNDS {
        let evaluation = evaluate(&inventory, now);
        apply(&mut inventory, &evaluation);
        events.extend(evaluation.events.iter().cloned());
        let more = evaluation.enables_more();
        last = evaluation;
        if !more {
            break;
        }
    }
    let derived = derive(&inventory, &last, now);
    Decided {
        inventory,
        events,
        last,
        derived,
    }
}

/// Runs `work` (a namespace's snapshot, [`decide`] and figures) on a thread of the runtime's
/// blocking pool. The runtime has one thread, and a namespace of tens of thousands of assets
/// takes seconds to decide: meanwhile the runtime must still answer the liveness probe (a
/// kubelet gives up after 1 s), renew the lease and read the watches.
async fn apart<T: Send + 'static>(
    namespace: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Engine {
            namespace: namespace.to_owned(),
            message: match error.try_into_panic() {
                Ok(panic) => panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".to_owned()),
                Err(error) => error.to_string(),
            },
        })
}

/// What the API server holds now, as far as the writes compare: statuses and the policies'
/// uids. Nothing big is copied: assets are shared with the snapshot.
struct Stored {
    rollouts: BTreeMap<String, Option<PatchRolloutStatus>>,
    /// Each Asset as the evaluation started from: shared with the cache, not copied (the
    /// engine copies only the assets it changes).
    assets: BTreeMap<String, Arc<Asset>>,
    policies: BTreeMap<String, (Option<String>, Option<PatchPolicyStatus>)>,
    rings: BTreeMap<String, Option<RingStatus>>,
    windows: BTreeMap<String, Option<MaintenanceWindowStatus>>,
    /// Names and resourceVersions of assets, rollouts and policies (see `compliance`).
    fingerprint: u64,
}

impl Stored {
    fn of(inventory: &Inventory, incidents: &[crate::kpi::RecordedIncident]) -> Self {
        fn named<K: ResourceExt, T>(objects: &[K], value: impl Fn(&K) -> T) -> BTreeMap<String, T> {
            objects.iter().map(|o| (o.name_any(), value(o))).collect()
        }
        Stored {
            rollouts: named(&inventory.rollouts, |r| r.status.clone()),
            assets: inventory
                .assets
                .iter()
                .map(|a| (a.name_any(), a.clone()))
                .collect(),
            policies: named(&inventory.policies, |p| {
                (p.metadata.uid.clone(), p.status.clone())
            }),
            rings: named(&inventory.rings, |r| r.status.clone()),
            windows: named(&inventory.windows, |w| w.status.clone()),
            fingerprint: super::compliance::fingerprint(inventory, incidents),
        }
    }
}

/// Writes one namespace's differences.
struct Writer<'a> {
    ctx: &'a Context,
    namespace: &'a str,
}

/// The body of a server-side apply of `status` only.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusApply<'a, S: Serialize> {
    api_version: &'a str,
    kind: &'a str,
    metadata: NameOnly<'a>,
    status: &'a S,
}

#[derive(Serialize)]
struct NameOnly<'a> {
    name: &'a str,
}

impl Writer<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.ctx.client.clone(), self.namespace)
    }

    /// Server-side apply of `status` with the operator's field manager. Forced: the operator
    /// is the only owner of these fields, and a stale manager (a person's manual edit) must
    /// not stall a rollout.
    async fn apply_status<K, S>(&self, name: &str, status: &S) -> Result<K, Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        S: Serialize,
    {
        let kind = K::kind(&());
        let body = StatusApply {
            api_version: &K::api_version(&()),
            kind: &kind,
            metadata: NameOnly { name },
            status,
        };
        let body = serde_json::to_value(&body).map_err(|source| Error::Encode {
            kind: static_kind(&kind),
            name: name.to_owned(),
            source,
        })?;
        let params = PatchParams::apply(OPERATOR_FIELD_MANAGER).force();
        let written = self
            .api::<K>()
            .patch_status(name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::Write {
                kind: static_kind(&kind),
                namespace: self.namespace.to_owned(),
                name: name.to_owned(),
                source: Box::new(source),
            })?;
        self.ctx.metrics.wrote(static_kind(&kind), "apply_status");
        Ok(written)
    }

    /// Creates the rollouts the engine decided on.
    async fn create_rollouts(&self, original: &Stored, inventory: &Inventory) -> Result<(), Error> {
        for rollout in &inventory.rollouts {
            let Some(name) = rollout.metadata.name.as_deref() else {
                continue;
            };
            if !original.rollouts.contains_key(name) {
                self.ctx.ensure_leader()?;
                self.create_rollout(original, rollout).await?;
            }
        }
        Ok(())
    }

    /// Writes every rollout status that changed (and those of new rollouts).
    async fn rollout_statuses(
        &self,
        original: &Stored,
        inventory: &Inventory,
    ) -> Result<(), Error> {
        for rollout in &inventory.rollouts {
            let Some(name) = rollout.metadata.name.as_deref() else {
                continue;
            };
            let unchanged = original
                .rollouts
                .get(name)
                .is_some_and(|stored| *stored == rollout.status);
            if let (false, Some(status)) = (unchanged, rollout.status.as_ref()) {
                self.ctx.ensure_leader()?;
                let written: PatchRollout = self.apply_status(name, status).await?;
                self.ctx.fresh.rollouts.remember(written);
            }
        }
        Ok(())
    }

    async fn create_rollout(&self, original: &Stored, rollout: &PatchRollout) -> Result<(), Error> {
        let name = rollout.name_any();
        let mut object = PatchRollout::new(&name, rollout.spec.clone());
        object.metadata.namespace = Some(self.namespace.to_owned());
        object.metadata.labels = Some(BTreeMap::from([(
            "patchwave.dev/policy".to_owned(),
            rollout.spec.policy.clone(),
        )]));
        // Owned by its policy, so `kubectl tree` and Argo CD show where it came from. Not a
        // controller reference: the rollout stays as the audit record if the policy goes.
        let policy_uid = original
            .policies
            .get(&rollout.spec.policy)
            .and_then(|(uid, _)| uid.clone());
        if let Some(uid) = policy_uid {
            object.metadata.owner_references = Some(vec![OwnerReference {
                api_version: PatchPolicy::api_version(&()).into_owned(),
                kind: PatchPolicy::kind(&()).into_owned(),
                name: rollout.spec.policy.clone(),
                uid,
                controller: Some(false),
                block_owner_deletion: Some(false),
            }]);
        }
        let params = PostParams {
            field_manager: Some(OPERATOR_FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        match self.api::<PatchRollout>().create(&params, &object).await {
            Ok(created) => {
                self.ctx.metrics.wrote("PatchRollout", "create");
                self.ctx.fresh.rollouts.remember(created);
                Ok(())
            }
            // Created by an earlier reconcile whose answer we did not see: same name, same set.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(source) => Err(Error::Write {
                kind: "PatchRollout",
                namespace: self.namespace.to_owned(),
                name,
                source: Box::new(source),
            }),
        }
    }

    /// The Assets whose operator-owned status changed, in the two batches they are written
    /// in, and when a held-back summary is due (see [`Coalesce`]).
    async fn asset_changes(
        &self,
        before: BTreeMap<String, Arc<Asset>>,
        inventory: &Inventory,
        derived: &Derived,
    ) -> AssetChanges {
        // Indexes only: each status is built again when it is written, a few at a time, not
        // all at once.
        let mut changes = AssetChanges::default();
        for index in 0..inventory.assets.len() {
            // Comparing tens of thousands of statuses takes a while: let the probes, the
            // lease and the watches in between.
            if index % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
            let Some((name, wanted)) = wanted_status(inventory, derived, index) else {
                continue;
            };
            let stored = before
                .get(name)
                .and_then(|a| a.status.as_ref())
                .map(operator_part);
            let stored = stored.as_ref();
            if stored == Some(&wanted) {
                self.ctx.coalesce.forget(self.namespace, name);
                continue;
            }
            match self
                .ctx
                .coalesce
                .decide(self.namespace, name, stored, &wanted)
            {
                Some(at) => changes.due = Some(changes.due.map_or(at, |d| d.min(at))),
                None => {
                    let stored_operation = stored.and_then(|s| s.operation.as_ref());
                    if wanted.operation.is_some() && wanted.operation.as_ref() != stored_operation {
                        changes.starts.push(index);
                    } else {
                        changes.others.push(index);
                    }
                }
            }
        }
        changes
    }

    /// Writes the operator-owned half of the status of the Assets at `batch`.
    async fn write_assets(
        &self,
        batch: Vec<usize>,
        inventory: &Inventory,
        derived: &Derived,
    ) -> Result<(), Error> {
        self.ctx.ensure_leader()?;
        futures::stream::iter(batch)
            .map(|index| async move {
                self.ctx.ensure_leader()?;
                let Some((name, status)) = wanted_status(inventory, derived, index) else {
                    return Ok(());
                };
                let written: Asset = self.apply_status(name, &status).await?;
                self.ctx.fresh.assets.remember(written);
                self.ctx.coalesce.forget(self.namespace, name);
                Ok::<(), Error>(())
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Writes the policy, ring and window statuses that changed.
    async fn summaries(&self, original: &Stored, derived: &Derived) -> Result<(), Error> {
        for (name, (_, stored)) in &original.policies {
            if let Some(status) = derived.policies.get(name)
                && stored.as_ref() != Some(status)
            {
                self.ctx.ensure_leader()?;
                let written: PatchPolicy = self.apply_status(name, status).await?;
                self.ctx.fresh.policies.remember(written);
            }
        }
        for (name, stored) in &original.rings {
            if let Some(status) = derived.rings.get(name)
                && stored.as_ref() != Some(status)
            {
                self.ctx.ensure_leader()?;
                let written: Ring = self.apply_status(name, status).await?;
                self.ctx.fresh.rings.remember(written);
            }
        }
        for (name, stored) in &original.windows {
            if let Some(status) = derived.windows.get(name)
                && stored.as_ref() != Some(status)
            {
                self.ctx.ensure_leader()?;
                let written: MaintenanceWindow = self.apply_status(name, status).await?;
                self.ctx.fresh.windows.remember(written);
            }
        }
        Ok(())
    }

    /// Publishes the engine's events as Kubernetes Events. Starts and successes are summed up
    /// per rollout and ring (one Event naming the assets), failures get one Event each, and the
    /// level-triggered reports (unscheduled, unassigned, invalid) once per process.
    async fn events(&self, events: &[Event], decisions: &[PersonDecision], last: &Evaluation) {
        // Starts, keyed by rollout and ring.
        let mut grouped: BTreeMap<(String, Option<String>), Vec<String>> = BTreeMap::new();
        let mut single: Vec<&Event> = Vec::new();
        for event in events {
            match (event.kind, &event.rollout, &event.asset) {
                // Successes are counted in the rollout status and summed up by RingCompleted;
                // an Event per batch would cost a write per batch and tell nothing new.
                (EventType::OperationSucceeded, _, _) => {}
                (EventType::OperationStarted, Some(r), Some(a)) => {
                    grouped
                        .entry((r.clone(), event.ring.clone()))
                        .or_default()
                        .push(a.clone());
                }
                (EventType::AssetUnscheduled | EventType::AssetUnassigned, _, _) => {
                    let key = format!(
                        "{}/{:?}/{:?}/{:?}",
                        self.namespace, event.kind, event.policy, event.asset
                    );
                    if self.ctx.first_time(key) {
                        single.push(event);
                    }
                }
                _ => single.push(event),
            }
        }
        let mut published: Vec<(KubeEvent, ObjectReference)> = Vec::new();
        for ((rollout, ring), assets) in grouped {
            let (kind, verb) = (EventType::OperationStarted, "Started the operation on");
            let ring_text = ring.map(|r| format!(" of ring {r}")).unwrap_or_default();
            published.push((
                KubeEvent {
                    type_: KubeEventType::Normal,
                    reason: format!("{kind:?}"),
                    note: Some(truncate(&format!(
                        "{verb} {}{ring_text}: {}",
                        crate::engine::plural(assets.len(), "asset", "assets"),
                        name_list(&assets)
                    ))),
                    action: "Reconcile".to_owned(),
                    // Events of one kind on one object form a series that keeps its first
                    // note; relating each batch to its first asset keeps the batches apart.
                    secondary: assets.first().map(|a| self.reference::<Asset>(a)),
                },
                self.reference::<PatchRollout>(&rollout),
            ));
        }
        for event in single {
            let warning = matches!(
                event.kind,
                EventType::OperationFailed
                    | EventType::OperationTimedOut
                    | EventType::RingHalted
                    | EventType::RolloutHalted
                    | EventType::RollbackStarted
                    | EventType::AssetUnscheduled
                    | EventType::AssetUnassigned
            );
            let regarding = match (&event.rollout, &event.asset, &event.policy) {
                (Some(rollout), _, _) => self.reference::<PatchRollout>(rollout),
                (None, Some(asset), _) => self.reference::<Asset>(asset),
                (None, None, Some(policy)) => self.reference::<PatchPolicy>(policy),
                (None, None, None) => continue,
            };
            let secondary = match (&event.rollout, &event.asset, &event.ring) {
                (Some(_), Some(asset), _) => Some(self.reference::<Asset>(asset)),
                (Some(_), None, Some(ring)) => Some(self.reference::<Ring>(ring)),
                _ => None,
            };
            published.push((
                KubeEvent {
                    type_: if warning {
                        KubeEventType::Warning
                    } else {
                        KubeEventType::Normal
                    },
                    reason: format!("{:?}", event.kind),
                    note: Some(truncate(&event.message)),
                    action: "Reconcile".to_owned(),
                    secondary,
                },
                regarding,
            ));
        }
        for decision in decisions {
            published.push((
                KubeEvent {
                    type_: KubeEventType::Normal,
                    reason: decision.reason.to_owned(),
                    note: Some(truncate(&decision.note)),
                    action: "Reconcile".to_owned(),
                    secondary: decision.about.as_ref().map(|about| match about {
                        About::Asset(asset) => self.reference::<Asset>(asset),
                        About::Ring(ring) => self.reference::<Ring>(ring),
                    }),
                },
                self.reference::<PatchRollout>(&decision.rollout),
            ));
        }
        for problem in &last.problems {
            let key = format!("{}/{problem}", self.namespace);
            if !self.ctx.first_time(key) {
                continue;
            }
            let regarding = ObjectReference {
                api_version: Some(PatchPolicy::api_version(&()).into_owned()),
                kind: Some(problem.kind.to_owned()),
                name: Some(problem.name.clone()),
                namespace: Some(self.namespace.to_owned()),
                ..ObjectReference::default()
            };
            published.push((
                KubeEvent {
                    type_: KubeEventType::Warning,
                    reason: "InvalidSpec".to_owned(),
                    note: Some(truncate(&format!("{}: {}", problem.field, problem.message))),
                    action: "Validate".to_owned(),
                    secondary: None,
                },
                regarding,
            ));
        }
        for (event, regarding) in published {
            if !self.ctx.leadership.is_leader() {
                return;
            }
            // An Event that cannot be written is logged, not retried: the decision it reports
            // is already in the objects' status.
            match self.ctx.recorder.publish(&event, &regarding).await {
                Ok(()) => self.ctx.metrics.wrote("Event", "event"),
                Err(error) => {
                    tracing::warn!(%error, reason = event.reason, "could not publish an Event")
                }
            }
        }
    }

    fn reference<K>(&self, name: &str) -> ObjectReference
    where
        K: Resource<DynamicType = ()>,
    {
        ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.to_owned()),
            ..ObjectReference::default()
        }
    }
}

/// The operator-owned fields of a stored Asset status (what a server-side apply would send).
fn operator_part(status: &AssetStatus) -> AssetStatus {
    AssetStatus {
        reported: None,
        operation: status.operation.clone(),
        rollouts: status.rollouts.clone(),
        missing_updates: status.missing_updates,
        state: status.state.clone(),
        conditions: status.conditions.clone(),
        observed_generation: status.observed_generation,
    }
}

fn static_kind(kind: &str) -> &'static str {
    match kind {
        "Asset" => "Asset",
        "PatchRollout" => "PatchRollout",
        "PatchPolicy" => "PatchPolicy",
        "Ring" => "Ring",
        "MaintenanceWindow" => "MaintenanceWindow",
        _ => "Object",
    }
}

fn name_list(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(NAMED_IN_EVENT)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMED_IN_EVENT {
        text.push_str(&format!(" and {} more", names.len() - NAMED_IN_EVENT));
    }
    text
}

/// A person's decision the operator saw take effect: an Event tells who, when and why.
#[derive(Debug, PartialEq)]
struct PersonDecision {
    rollout: String,
    /// The asset or ring decided on (the Event's related object); none for the rollout as a
    /// whole.
    about: Option<About>,
    reason: &'static str,
    note: String,
}

#[derive(Debug, PartialEq)]
enum About {
    Asset(String),
    Ring(String),
}

/// The ring approvals and resumes that the rollouts' new statuses show and their stored
/// statuses do not. The stored status is the record of what was announced, so an operator
/// restarted after writing it does not announce the same decision again. And the per-asset
/// approvals of the assets whose operation this reconcile started: an operation starts once
/// per rollout and asset, so each is announced once too.
fn people_decisions(
    stored: &BTreeMap<String, Option<PatchRolloutStatus>>,
    rollouts: &[PatchRollout],
    events: &[Event],
) -> Vec<PersonDecision> {
    let mut decisions = Vec::new();
    for event in events {
        let (EventType::OperationStarted, Some(rollout), Some(asset)) =
            (event.kind, &event.rollout, &event.asset)
        else {
            continue;
        };
        let approval = rollouts
            .iter()
            .filter(|r| r.metadata.name.as_deref() == Some(rollout.as_str()))
            .flat_map(|r| r.spec.approved_assets.iter())
            .find(|a| &a.name == asset);
        if let Some(approval) = approval {
            decisions.push(PersonDecision {
                rollout: rollout.clone(),
                about: Some(About::Asset(asset.clone())),
                reason: "AssetApproved",
                note: format!(
                    "asset {asset} approved{}; its operation started",
                    signed(&approval.signature)
                ),
            });
        }
    }
    for rollout in rollouts {
        let (Some(name), Some(status)) = (rollout.metadata.name.as_deref(), &rollout.status) else {
            continue;
        };
        let before = stored.get(name).and_then(Option::as_ref);
        if status.phase == RolloutPhase::Aborted
            && before.map(|s| s.phase) != Some(RolloutPhase::Aborted)
            && let Some(signature) = &rollout.spec.abort
        {
            decisions.push(PersonDecision {
                rollout: name.to_owned(),
                about: None,
                reason: "RolloutAborted",
                note: format!(
                    "rollout aborted{}; no new operation starts, and the policy's next change creates a new rollout",
                    signed(signature)
                ),
            });
        }
        // spec.paused carries no signature; the Event at least dates the change.
        let paused = |s: &PatchRolloutStatus| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Paused" && c.status == "True")
        };
        if let Some(before) = before
            && paused(before) != paused(status)
        {
            decisions.push(PersonDecision {
                rollout: name.to_owned(),
                about: None,
                reason: if paused(status) {
                    "RolloutPaused"
                } else {
                    "RolloutUnpaused"
                },
                note: if paused(status) {
                    "rollout paused (spec.paused): no new operation starts; operations in flight finish"
                        .to_owned()
                } else {
                    "rollout unpaused: operations start again".to_owned()
                },
            });
        }
        for ring in &status.rings {
            let old = before.and_then(|s| s.rings.iter().find(|r| r.name == ring.name));
            if let Some(signature) = &ring.approved
                && old.and_then(|r| r.approved.as_ref()) != Some(signature)
            {
                decisions.push(PersonDecision {
                    rollout: name.to_owned(),
                    about: Some(About::Ring(ring.name.clone())),
                    reason: "RingApproved",
                    note: format!("ring {} approved{}", ring.name, signed(signature)),
                });
            }
            if let Some(signature) = &ring.resumed
                && old.and_then(|r| r.resumed.as_ref()) != Some(signature)
            {
                let (failures, are) = if ring.accepted_failures == 1 {
                    ("failure", "is")
                } else {
                    ("failures", "are")
                };
                decisions.push(PersonDecision {
                    rollout: name.to_owned(),
                    about: Some(About::Ring(ring.name.clone())),
                    reason: "HaltResumed",
                    note: format!(
                        "ring {} resumed after halt {}{}; its {} {failures} so far {are} accepted",
                        ring.name,
                        ring.halts,
                        signed(signature),
                        ring.accepted_failures,
                    ),
                });
            }
        }
    }
    decisions
}

/// " by WHO at WHEN: NOTE", leaving out what the signature does not say.
fn signed(signature: &crate::api::Signature) -> String {
    match &signature.note {
        Some(note) => format!("{}: {note}", signature.by_at()),
        None => signature.by_at(),
    }
}

/// Event notes are limited to 1 kB.
fn truncate(text: &str) -> String {
    if text.len() <= 1000 {
        return text.to_owned();
    }
    let mut end = 1000;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Assets with an operation in flight (a running record), for the metrics.
pub(super) fn in_flight(inventory: &Inventory) -> usize {
    inventory
        .assets
        .iter()
        .filter(|a| {
            a.status.as_ref().is_some_and(|s| {
                s.rollouts
                    .iter()
                    .any(|r| r.phase == OperationPhase::Running)
            })
        })
        .count()
}

/// Names already announced, for the once-per-process Events.
pub(super) type Announced = std::sync::Mutex<HashSet<String>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Signature;
    use crate::api::rollout::RingProgress;

    fn rollout(rings: Vec<RingProgress>) -> PatchRollout {
        let spec: crate::api::PatchRolloutSpec = serde_json::from_value(serde_json::json!({
            "policy": "security", "policyGeneration": 1, "revision": "1",
            "updates": [], "rings": ["pilot", "rest"]
        }))
        .expect("a rollout spec");
        let mut rollout = PatchRollout::new("security-1", spec);
        rollout.status = Some(PatchRolloutStatus {
            rings,
            ..PatchRolloutStatus::default()
        });
        rollout
    }

    fn ring(name: &str, approved: Option<&str>, resumed: Option<&str>) -> RingProgress {
        let signature = |by: &str| Signature {
            by: Some(by.to_owned()),
            at: None,
            note: Some("CHG-1".to_owned()),
        };
        RingProgress {
            name: name.to_owned(),
            halts: 1,
            accepted_failures: 2,
            approved: approved.map(signature),
            resumed: resumed.map(signature),
            ..RingProgress::default()
        }
    }

    #[test]
    fn a_decision_is_announced_when_the_stored_status_does_not_show_it_yet() {
        let new = vec![rollout(vec![
            ring("pilot", None, Some("ops")),
            ring("rest", Some("it-lead"), None),
        ])];
        let stored_before = BTreeMap::from([(
            "security-1".to_owned(),
            new[0].status.clone().map(|mut s| {
                s.rings[0].resumed = None;
                s.rings[1].approved = None;
                s
            }),
        )]);
        let decisions = people_decisions(&stored_before, &new, &[]);
        let notes: Vec<(&str, &str)> = decisions
            .iter()
            .map(|d| (d.reason, d.note.as_str()))
            .collect();
        assert_eq!(
            notes,
            [
                (
                    "HaltResumed",
                    "ring pilot resumed after halt 1 by ops: CHG-1; its 2 failures so far are accepted"
                ),
                ("RingApproved", "ring rest approved by it-lead: CHG-1"),
            ]
        );
        // Once written, the stored status shows them: nothing to announce again.
        let stored_after = BTreeMap::from([("security-1".to_owned(), new[0].status.clone())]);
        assert!(people_decisions(&stored_after, &new, &[]).is_empty());
        // A rollout the operator has not written yet (no stored status) announces too.
        assert_eq!(people_decisions(&BTreeMap::new(), &new, &[]).len(), 2);
    }

    #[test]
    fn a_resume_after_one_failure_speaks_of_one_failure() {
        let mut resumed = ring("pilot", None, Some("ops"));
        resumed.accepted_failures = 1;
        let decisions = people_decisions(&BTreeMap::new(), &[rollout(vec![resumed])], &[]);
        assert_eq!(
            decisions[0].note,
            "ring pilot resumed after halt 1 by ops: CHG-1; its 1 failure so far is accepted"
        );
    }

    #[test]
    fn an_abort_is_announced_once_with_who_asked() {
        let stored_before = BTreeMap::from([(
            "security-1".to_owned(),
            rollout(vec![ring("pilot", None, None)]).status,
        )]);
        let mut aborted = rollout(vec![ring("pilot", None, None)]);
        aborted.spec.abort = Some(Signature {
            by: Some("carol".to_owned()),
            at: None,
            note: Some("vendor pulled the patch".to_owned()),
        });
        if let Some(status) = aborted.status.as_mut() {
            status.phase = RolloutPhase::Aborted;
        }
        let new = [aborted];
        let decisions = people_decisions(&stored_before, &new, &[]);
        assert_eq!(
            decisions,
            [PersonDecision {
                rollout: "security-1".to_owned(),
                about: None,
                reason: "RolloutAborted",
                note: "rollout aborted by carol: vendor pulled the patch; no new operation \
                       starts, and the policy's next change creates a new rollout"
                    .to_owned(),
            }]
        );
        let stored_after = BTreeMap::from([("security-1".to_owned(), new[0].status.clone())]);
        assert!(people_decisions(&stored_after, &new, &[]).is_empty());
    }

    #[test]
    fn pausing_and_unpausing_are_announced_once() {
        let with_paused = |on: bool| {
            let mut r = rollout(vec![ring("pilot", None, None)]);
            if let Some(status) = r.status.as_mut() {
                status.conditions = vec![crate::engine::evaluate::set_condition(
                    &[],
                    "Paused",
                    on,
                    if on { "PausedBySpec" } else { "NotPaused" },
                    "",
                    None,
                    Timestamp::UNIX_EPOCH,
                )];
            }
            r
        };
        let stored =
            |r: &PatchRollout| BTreeMap::from([("security-1".to_owned(), r.status.clone())]);
        let running = with_paused(false);
        let paused = with_paused(true);
        let reasons = |before: &PatchRollout, now: &PatchRollout| -> Vec<&'static str> {
            people_decisions(&stored(before), std::slice::from_ref(now), &[])
                .iter()
                .map(|d| d.reason)
                .collect()
        };
        assert_eq!(reasons(&running, &paused), ["RolloutPaused"]);
        assert_eq!(reasons(&paused, &running), ["RolloutUnpaused"]);
        assert!(reasons(&paused, &paused).is_empty());
        // A rollout the operator writes for the first time announces no change.
        assert!(people_decisions(&BTreeMap::new(), &[paused], &[]).is_empty());
    }

    #[test]
    fn a_per_asset_approval_is_announced_when_its_operation_starts() {
        let mut approved = rollout(vec![ring("pilot", None, None)]);
        approved.spec.approved_assets = vec![crate::api::rollout::Approval {
            name: "dc-01".to_owned(),
            signature: Signature {
                by: Some("it-lead".to_owned()),
                at: None,
                note: None,
            },
        }];
        let stored = BTreeMap::from([("security-1".to_owned(), approved.status.clone())]);
        let started = |asset: &str| Event {
            time: Timestamp::UNIX_EPOCH,
            kind: EventType::OperationStarted,
            policy: Some("security".to_owned()),
            rollout: Some("security-1".to_owned()),
            ring: Some("pilot".to_owned()),
            asset: Some(asset.to_owned()),
            message: String::new(),
        };
        let rollouts = [approved];
        let decisions = people_decisions(&stored, &rollouts, &[started("a-01"), started("dc-01")]);
        assert_eq!(
            decisions,
            [PersonDecision {
                rollout: "security-1".to_owned(),
                about: Some(About::Asset("dc-01".to_owned())),
                reason: "AssetApproved",
                note: "asset dc-01 approved by it-lead; its operation started".to_owned(),
            }]
        );
        // No start, nothing to announce: the approval waits for the asset's turn.
        assert!(people_decisions(&stored, &rollouts, &[]).is_empty());
    }

    /// A namespace of `n` assets missing ten security updates each, in one ring, under an open
    /// window and one policy: enough for a decision pass that takes a while.
    fn large_namespace(n: usize) -> Inventory {
        let updates: Vec<String> = (1..=10)
            .map(|u| {
                format!(
                    "{{id: pkg-{u}, version: '1.{u}', classification: Security, severity: Important, releasedAt: '2026-11-01T00:00:00Z'}}"
                )
            })
            .collect();
        let updates = updates.join(", ");
        let mut yaml = String::from(
            "kind: Ring\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: all}\nspec: {selector: {}, maxConcurrent: 10%}\n\
             ---\nkind: MaintenanceWindow\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: open}\n\
             spec: {start: '2026-01-01T00:00:00Z', end: '2027-12-31T00:00:00Z'}\n\
             ---\nkind: PatchPolicy\napiVersion: patchwave.dev/v1alpha1\nmetadata: {name: security}\n\
             spec: {rings: [all], manualApproval: []}\n",
        );
        for i in 0..n {
            yaml.push_str(&format!(
                "---\nkind: Asset\napiVersion: patchwave.dev/v1alpha1\nmetadata: {{name: asset-{i}}}\n\
                 spec: {{osFamily: Linux, criticality: Low}}\n\
                 status: {{reported: {{availableUpdates: [{updates}]}}}}\n"
            ));
        }
        let mut loaded =
            crate::cli::load::load_str(std::path::Path::new("large.yaml"), &yaml, "large");
        loaded.namespaces.remove("large").unwrap_or_default()
    }

    // `#[tokio::test]` runs on one thread, as the operator does.
    #[tokio::test]
    async fn deciding_a_large_namespace_leaves_the_runtime_free() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let inventory = large_namespace(3000);
        assert_eq!(inventory.assets.len(), 3000);
        let now: Timestamp = "2026-11-27T10:00:00Z".parse().expect("a time");
        // Stands for the probe, the lease renewal and the watches: a task that wants the
        // runtime every 2 ms.
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        let started = Instant::now();
        let decided = apart("large", move || decide(inventory, now))
            .await
            .expect("the engine decides");
        let took = started.elapsed();
        let during = ticks.load(Ordering::Relaxed) - before;
        ticker.abort();

        assert_eq!(decided.inventory.rollouts.len(), 1, "one rollout created");
        let started_operations = decided
            .events
            .iter()
            .filter(|e| e.kind == EventType::OperationStarted)
            .count();
        assert_eq!(started_operations, 300, "maxConcurrent 10% of 3000 started");
        assert!(
            during >= 3,
            "the runtime ran other tasks only {during} times in the {took:?} the decision took"
        );
    }

    #[tokio::test]
    async fn a_decision_that_panics_is_an_error_of_its_namespace() {
        let result: Result<(), Error> = apart("team-a", || panic!("index out of bounds")).await;
        let error = result.expect_err("the panic is an error, not the operator's end");
        assert_eq!(error.category(), "EngineFailed");
        assert_eq!(
            error.to_string(),
            "deciding namespace team-a: the decision stopped: index out of bounds"
        );
    }
}
