#![allow(clippy::unwrap_used)] // test support: a poisoned lock is a failed test anyway

//! Building blocks of the operator tests: a namespace with rings, windows, a policy and
//! assets whose simulated agents run in the test process, and the operator beside them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use patchwave::agent::fleet::{self, FleetConfig, FleetHandle};
use patchwave::api::asset::{AvailableUpdate, Operation, OperationPhase, ReportedState, UpdateRef};
use patchwave::api::{
    Asset, AssetSpec, AssetStatus, Classification, Criticality, OPERATOR_FIELD_MANAGER,
    OperationAction, OsFamily, PatchRollout, RebootPolicy, Severity, Time,
};
use patchwave::operator::leader::LeaseSettings;
use patchwave::operator::{self, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::TestEnv;

/// Generous bound for anything that should happen within seconds.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// An asset to create: name, ring label, criticality, annotations.
#[derive(Clone, Debug)]
pub struct AssetPlan {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub criticality: Criticality,
    pub hold: bool,
    pub annotations: BTreeMap<String, String>,
    pub stale_after: Option<String>,
}

impl AssetPlan {
    /// An asset labelled `ring=<ring>`.
    pub fn new(name: impl Into<String>, ring: &str) -> Self {
        AssetPlan {
            name: name.into(),
            labels: BTreeMap::from([("ring".to_owned(), ring.to_owned())]),
            criticality: Criticality::Low,
            hold: false,
            annotations: BTreeMap::new(),
            stale_after: None,
        }
    }

    /// The simulated agent's outcome (`Failed`, `NoResponse`).
    pub fn outcome(mut self, outcome: &str) -> Self {
        self.annotations.insert(
            "simulate.patchwave.dev/outcome".to_owned(),
            outcome.to_owned(),
        );
        self
    }

    /// Another label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Criticality.
    pub fn criticality(mut self, criticality: Criticality) -> Self {
        self.criticality = criticality;
        self
    }

    /// `spec.hold`.
    pub fn held(mut self) -> Self {
        self.hold = true;
        self
    }

    /// `spec.staleAfter`.
    pub fn stale_after(mut self, duration: &str) -> Self {
        self.stale_after = Some(duration.to_owned());
        self
    }

    /// The Asset as created, before any agent reports.
    pub fn asset(&self) -> Asset {
        let mut asset = Asset::new(
            &self.name,
            AssetSpec {
                criticality: self.criticality,
                hold: self.hold,
                expected_duration: Some("10m".to_owned()),
                stale_after: self.stale_after.clone(),
                ..AssetSpec::new(OsFamily::Linux)
            },
        );
        asset.metadata.labels = Some(self.labels.clone());
        asset.metadata.annotations = Some(self.annotations.clone());
        asset
    }

    /// The asset with the inventory its agent reports first: two security updates.
    fn seed(&self) -> Asset {
        let released = Time(Timestamp::now() - SignedDuration::from_hours(24 * 3));
        let update = |id: &str, version: &str| AvailableUpdate {
            id: id.to_owned(),
            version: Some(version.to_owned()),
            classification: Classification::Security,
            severity: Severity::Critical,
            released_at: Some(released.clone()),
            ..AvailableUpdate::default()
        };
        let mut asset = self.asset();
        asset.status = Some(AssetStatus {
            reported: Some(ReportedState {
                available_updates: vec![update("openssl", "3.0.15"), update("curl", "8.11.1")],
                ..ReportedState::default()
            }),
            ..AssetStatus::default()
        });
        asset
    }
}

/// `count` assets `<prefix>-000`.. in ring `ring`.
pub fn ring_of(prefix: &str, ring: &str, count: usize) -> Vec<AssetPlan> {
    (0..count)
        .map(|i| AssetPlan::new(format!("{prefix}-{i:03}"), ring))
        .collect()
}

/// A Ring selecting `ring=<name>`.
pub fn ring_yaml(
    name: &str,
    max_concurrent: &str,
    threshold: &str,
    bake: &str,
    approval: &str,
) -> String {
    format!(
        "apiVersion: patchwave.dev/v1alpha1\nkind: Ring\nmetadata: {{name: {name}}}\nspec:\n  selector: {{matchLabels: {{ring: {name}}}}}\n  maxConcurrent: {max_concurrent:?}\n  failureThreshold: {threshold:?}\n  bakeTime: {bake}\n  approval: {approval}\n"
    )
}

/// A one-off Allow (or Deny) window from `start` to `end` selecting `selector` (YAML).
pub fn window_yaml(
    name: &str,
    kind: &str,
    start: Timestamp,
    end: Timestamp,
    selector: &str,
) -> String {
    format!(
        "apiVersion: patchwave.dev/v1alpha1\nkind: MaintenanceWindow\nmetadata: {{name: {name}}}\nspec:\n  type: {kind}\n  selector: {selector}\n  start: \"{}\"\n  end: \"{}\"\n",
        start.round(jiff::Unit::Second).unwrap_or(start),
        end.round(jiff::Unit::Second).unwrap_or(end)
    )
}

/// A window open from an hour ago for a year.
pub fn open_window_yaml() -> String {
    let now = Timestamp::now();
    window_yaml(
        "open",
        "Allow",
        now - SignedDuration::from_hours(1),
        now + SignedDuration::from_hours(24 * 365),
        "{}",
    )
}

/// The smallest namespace that rolls out: Ring `r1` (`ring=r1`, `maxConcurrent`, threshold
/// 10%, no bake, Automatic), an open window, and PatchPolicy `security` over `r1` without
/// per-asset approvals.
pub fn apply_one_ring(env: &TestEnv, max_concurrent: &str) {
    apply(
        env,
        &[
            ring_yaml("r1", max_concurrent, "10%", "0s", "Automatic"),
            open_window_yaml(),
            policy_yaml("security", &["r1"], "  manualApproval: []\n"),
        ]
        .join("---\n"),
    );
}

/// A PatchPolicy over all assets with the given rings and extra spec lines (YAML, indented by
/// two spaces).
pub fn policy_yaml(name: &str, rings: &[&str], extra: &str) -> String {
    format!(
        "apiVersion: patchwave.dev/v1alpha1\nkind: PatchPolicy\nmetadata: {{name: {name}}}\nspec:\n  selector: {{}}\n  updates: {{classifications: [Security]}}\n  rings: [{}]\n{extra}",
        rings.join(", ")
    )
}

/// Applies YAML documents with kubectl in the test namespace.
pub fn apply(env: &TestEnv, yaml: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("objects.yaml");
    std::fs::write(&path, yaml).expect("writing YAML");
    super::run(env.kubectl().args(["apply", "-f"]).arg(&path));
}

/// Creates the assets and starts their simulated agents (10m operations take `10m / speed`).
pub async fn start_fleet(env: &TestEnv, plans: &[AssetPlan], speed: f64) -> FleetHandle {
    start_fleet_expecting(env, plans, &[], speed).await
}

/// [`start_fleet`], with agents also ready for the assets of `later`: each reports its
/// inventory once the test creates its Asset with [`enroll`] (a machine enrolled late).
pub async fn start_fleet_expecting(
    env: &TestEnv,
    plans: &[AssetPlan],
    later: &[AssetPlan],
    speed: f64,
) -> FleetHandle {
    let api: Api<Asset> = env.api();
    for plan in plans {
        enroll(env, plan).await;
    }
    let mut config = FleetConfig::new(&env.namespace);
    config.seed = plans.iter().chain(later).map(AssetPlan::seed).collect();
    config.speed = speed;
    config.heartbeat = Duration::from_secs(3600);
    let handle = fleet::spawn(env.client.clone(), config);
    // Every agent has reported its first inventory before the test goes on. An asset whose
    // inventory came late would join its ring after the ring had completed (rightly: it needs
    // the updates), and a test of the ring order would see the ring complete twice.
    let names: HashSet<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    eventually("every agent reported its inventory", DEADLINE, || async {
        let assets = api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let silent: Vec<String> = assets
            .items
            .iter()
            .filter(|a| names.contains(a.metadata.name.as_deref().unwrap_or_default()))
            .filter(|a| a.available_updates().is_empty())
            .filter_map(|a| a.metadata.name.clone())
            .collect();
        if silent.is_empty() {
            Ok(())
        } else {
            Err(format!("no inventory yet from {silent:?}"))
        }
    })
    .await;
    handle
}

/// Creates the Asset of `plan`, as enrolling its machine does.
pub async fn enroll(env: &TestEnv, plan: &AssetPlan) {
    let api: Api<Asset> = env.api();
    api.create(&PostParams::default(), &plan.asset())
        .await
        .unwrap_or_else(|e| panic!("creating Asset {}: {e}", plan.name));
}

/// An operator running inside the test process, scoped to the test namespace.
pub struct InProcessOperator {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), operator::RunError>>,
    /// Where its /metrics listens.
    pub metrics: SocketAddr,
}

impl InProcessOperator {
    /// Stops it and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
    }
}

impl Drop for InProcessOperator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A free TCP port on loopback.
pub fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address")
}

/// Starts the operator for the test namespace, without leader election.
pub fn start_operator(env: &TestEnv) -> InProcessOperator {
    start_operator_with(env, None)
}

/// Starts the operator for the test namespace with the given lease settings.
pub fn start_operator_with(env: &TestEnv, lease: Option<LeaseSettings>) -> InProcessOperator {
    start_operator_as(env, env.client.clone(), lease)
}

/// Starts the operator for the test namespace with another identity's client.
pub fn start_operator_as(
    env: &TestEnv,
    client: kube::Client,
    lease: Option<LeaseSettings>,
) -> InProcessOperator {
    let metrics = free_address();
    let settings = Settings {
        namespace: Some(env.namespace.clone()),
        metrics_address: metrics,
        lease,
        debounce: Duration::from_millis(100),
        instance: format!("test-{}", env.namespace),
        summary_delay: Duration::from_secs(60),
        figures_refresh: Duration::from_secs(2),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(operator::run(client, settings, async move {
        let _ = stopped.await;
    }));
    InProcessOperator {
        stop: Some(stop),
        task,
        metrics,
    }
}

/// Polls `probe` until it returns `Some` (at most `deadline`), panicking with `what` and the
/// last observation otherwise.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if started.elapsed() > deadline => {
                panic!("{what}: not after {deadline:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The only rollout of the namespace (waits for it).
pub async fn the_rollout(env: &TestEnv) -> PatchRollout {
    let api: Api<PatchRollout> = env.api();
    eventually("a PatchRollout is created", DEADLINE, || async {
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        match list.items.as_slice() {
            [one] => Ok(one.clone()),
            other => Err(format!("{} rollouts", other.len())),
        }
    })
    .await
}

/// Waits until the rollout `name` satisfies `ready`, returning it.
pub async fn wait_rollout(
    env: &TestEnv,
    name: &str,
    what: &str,
    ready: impl Fn(&PatchRollout) -> bool,
) -> PatchRollout {
    let api: Api<PatchRollout> = env.api();
    eventually(what, DEADLINE, || async {
        let rollout = api.get(name).await.map_err(|e| e.to_string())?;
        if ready(&rollout) {
            Ok(rollout)
        } else {
            Err(serde_yaml::to_string(&rollout.status).unwrap_or_default())
        }
    })
    .await
}

/// The phase of a rollout as text.
pub fn phase(rollout: &PatchRollout) -> String {
    rollout
        .status
        .as_ref()
        .map(|s| format!("{:?}", s.phase))
        .unwrap_or_default()
}

/// The condition `kind` of a rollout: (status, reason).
pub fn condition(rollout: &PatchRollout, kind: &str) -> Option<(String, String)> {
    rollout
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Events of the namespace (events.k8s.io) with `reason`.
pub async fn events_with_reason(env: &TestEnv, reason: &str) -> Vec<KubeEvent> {
    let api: Api<KubeEvent> = env.api();
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// Waits for an Event with `reason` whose note contains `naming` ("" for any) and returns the
/// Events with that reason. Events are recorded after the status they explain, so a test that
/// just saw the status must wait for them.
pub async fn wait_events(env: &TestEnv, reason: &str, naming: &str) -> Vec<KubeEvent> {
    eventually(
        &format!("an Event {reason} naming {naming:?}"),
        DEADLINE,
        || async {
            let events = events_with_reason(env, reason).await;
            if events
                .iter()
                .any(|e| e.note.as_deref().unwrap_or_default().contains(naming))
            {
                Ok(events)
            } else {
                Err(format!("{events:?}"))
            }
        },
    )
    .await
}

/// Waits for the Event with `reason` whose note contains `naming`, and asserts that it is the
/// only one with that reason and was never repeated (no `series`): a decision announced once.
pub async fn wait_event_once(env: &TestEnv, reason: &str, naming: &str) -> KubeEvent {
    let mut events = wait_events(env, reason, naming).await;
    assert!(
        events.len() == 1 && events[0].series.is_none(),
        "{reason} announced more than once: {events:?}"
    );
    events.remove(0)
}

/// Writes a rollout's spec fields as a person would (a JSON merge patch).
pub async fn patch_rollout_spec(env: &TestEnv, name: &str, spec: serde_json::Value) {
    let api: Api<PatchRollout> = env.api();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "spec": spec })),
    )
    .await
    .unwrap_or_else(|e| panic!("patching PatchRollout {name}: {e}"));
}

/// What an observer of every Asset change saw: the most operations in flight at once per
/// ring label, and every operation id handed to each asset.
#[derive(Default, Debug)]
pub struct Observed {
    /// Per ring label: the largest number of assets with a running rollout record at once.
    pub max_in_flight: HashMap<String, usize>,
    /// Per asset: the distinct operation ids it was given.
    pub operations: HashMap<String, HashSet<String>>,
}

impl Observed {
    /// Panics unless exactly `assets` assets were handed an operation, each exactly one
    /// (`context` starts the messages, e.g. the seed of a randomized test).
    pub fn assert_one_operation_each(&self, assets: usize, context: &str) {
        for (asset, ids) in &self.operations {
            assert_eq!(ids.len(), 1, "{context}{asset} got {ids:?}");
        }
        assert_eq!(
            self.operations.len(),
            assets,
            "{context}{:?}",
            self.operations
        );
    }
}

/// Watches the namespace's Assets until dropped, recording [`Observed`].
pub fn observe_assets(env: &TestEnv) -> (Arc<Mutex<Observed>>, JoinHandle<()>) {
    let observed = Arc::new(Mutex::new(Observed::default()));
    let api: Api<Asset> = env.api();
    let shared = observed.clone();
    let task = tokio::spawn(async move {
        let mut running: HashMap<String, (String, bool)> = HashMap::new();
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(event) = stream.next().await {
            // A watch error (the CRD just installed and not served yet, a busy server) is
            // retried after the backoff; ending here would observe nothing from then on.
            let Ok(asset) = event else { continue };
            let name = asset.metadata.name.clone().unwrap_or_default();
            let ring = asset
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("ring").cloned())
                .unwrap_or_default();
            let status = asset.status.clone().unwrap_or_default();
            let is_running = status
                .rollouts
                .iter()
                .any(|r| r.phase == OperationPhase::Running);
            running.insert(name.clone(), (ring.clone(), is_running));
            let in_ring = running.values().filter(|(r, on)| *r == ring && *on).count();
            let mut observed = shared.lock().unwrap();
            let max = observed.max_in_flight.entry(ring).or_default();
            *max = (*max).max(in_ring);
            if let Some(operation) = status.operation {
                observed
                    .operations
                    .entry(name)
                    .or_default()
                    .insert(operation.id);
            }
        }
    });
    (observed, task)
}

/// All assets of the namespace.
pub async fn assets(env: &TestEnv) -> Vec<Asset> {
    let api: Api<Asset> = env.api();
    api.list(&ListParams::default())
        .await
        .expect("listing Assets")
        .items
}

/// The `status.state` of each asset.
pub async fn states(env: &TestEnv) -> BTreeMap<String, String> {
    assets(env)
        .await
        .into_iter()
        .map(|a| {
            (
                a.metadata.name.clone().unwrap_or_default(),
                a.status.and_then(|s| s.state).unwrap_or_default(),
            )
        })
        .collect()
}

/// An operation as the operator would write it, on rollout `security-2026-12`, ring `pilot`,
/// for `updates` as `(id, version)` pairs; issued now, timing out in 3 hours.
pub fn operation(
    id: &str,
    action: OperationAction,
    updates: &[(&str, &str)],
    not_after: Timestamp,
) -> Operation {
    let now = Timestamp::now();
    Operation {
        id: id.to_owned(),
        rollout: "security-2026-12".to_owned(),
        ring: Some("pilot".to_owned()),
        revision: Some("abc123".to_owned()),
        action,
        updates: updates
            .iter()
            .map(|(id, version)| UpdateRef {
                id: (*id).to_owned(),
                version: Some((*version).to_owned()),
            })
            .collect(),
        reboot: RebootPolicy::default(),
        hooks: None,
        issued_at: Time(now),
        not_after: Time(not_after),
        timeout_at: Time(now + SignedDuration::from_hours(3)),
    }
}

/// An hour from now (a `notAfter` that has not passed).
pub fn in_an_hour() -> Timestamp {
    Timestamp::now() + SignedDuration::from_hours(1)
}

/// Plays the operator: `status.operation` by server-side apply as patchwave-operator.
pub async fn issue(api: &Api<Asset>, name: &str, operation: &Operation) {
    let body = serde_json::json!({
        "apiVersion": "patchwave.dev/v1alpha1",
        "kind": "Asset",
        "metadata": { "name": name },
        "status": { "operation": operation },
    });
    api.patch_status(
        name,
        &PatchParams::apply(OPERATOR_FIELD_MANAGER),
        &Patch::Apply(body),
    )
    .await
    .expect("writing status.operation as the operator");
}
