//! The operator as a separate process: killed with SIGKILL in the middle of a rollout and
//! started again, two replicas competing for the leader Lease, and the API server going away
//! from it in the middle of a ring.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use support::proxy::Proxy;
use support::scenario::*;
use support::{TestEnv, install_project_crds, test_env};

/// An operator process; killed when dropped.
struct OperatorProcess {
    child: Child,
    metrics: SocketAddr,
}

impl OperatorProcess {
    fn start(env: &TestEnv, extra: &[&str]) -> Self {
        Self::start_with(env, env.control_plane.kubeconfig_path(), extra)
    }

    /// Started with `kubeconfig` instead of the control plane's own.
    fn start_with(env: &TestEnv, kubeconfig: &Path, extra: &[&str]) -> Self {
        let metrics = free_address();
        let log = std::fs::File::create(env.control_plane.work_dir().join(format!(
            "operator-{}-{}.log",
            env.namespace,
            metrics.port()
        )))
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_patchwave-operator"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", &env.namespace])
            .args(["--metrics-address", &metrics.to_string()])
            .args(["--debounce-ms", "100"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        OperatorProcess { child, metrics }
    }

    fn kill(&mut self) {
        // SIGKILL: no chance to finish a reconcile or release anything.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The value of the `patchwave_leader` gauge, or None while it does not answer.
    async fn leader(&self) -> Option<f64> {
        let text = http_get(self.metrics, "/metrics").await?;
        text.lines()
            .find_map(|l| l.strip_prefix("patchwave_leader "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Whether the process is still running.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The sum of patchwave_operator_writes_total, or None while it does not answer.
    async fn writes(&self) -> Option<f64> {
        let text = http_get(self.metrics, "/metrics").await?;
        Some(
            text.lines()
                .filter(|l| l.starts_with("patchwave_operator_writes_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn http_get(address: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

/// Flags of a replica competing for Lease `lease` in `namespace` (4 s lease, 1 s grace).
fn lease_flags<'a>(lease: &'a str, namespace: &'a str, identity: &'a str) -> [&'a str; 11] {
    [
        "--leader-elect=true",
        "--lease-name",
        lease,
        "--lease-namespace",
        namespace,
        "--lease-duration",
        "4",
        "--lease-grace",
        "1",
        "--identity",
        identity,
    ]
}

/// Waits until Lease `lease` of the test namespace names `wanted` as its holder.
async fn wait_for_holder(env: &TestEnv, lease: &str, wanted: &str) {
    let leases: Api<Lease> = env.api();
    eventually(&format!("{wanted} holds the Lease"), DEADLINE, || async {
        let lease = leases.get(lease).await.map_err(|e| e.to_string())?;
        match lease.spec.and_then(|s| s.holder_identity) {
            Some(h) if h == wanted => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// A small deterministic generator for the kill points (the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn next_ms(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        low + (self.0 >> 33) % (high - low)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_again_and_again_finishes_the_rollout_without_double_operations() {
    install_project_crds();
    let env = test_env("op-kill").await;
    apply(
        &env,
        &[
            ring_yaml("r1", "4", "10%", "0s", "Automatic"),
            ring_yaml("r2", "4", "10%", "0s", "Automatic"),
            ring_yaml("r3", "4", "10%", "0s", "Automatic"),
            open_window_yaml(),
            policy_yaml("security", &["r1", "r2", "r3"], "  manualApproval: []\n"),
        ]
        .join("---\n"),
    );
    let mut plans = ring_of("a", "r1", 10);
    plans.extend(ring_of("b", "r2", 30));
    plans.extend(ring_of("c", "r3", 60));
    let (observed, watch) = observe_assets(&env);
    // 10m operations take 1 s: 25 batches of at most 4.
    let fleet = start_fleet(&env, &plans, 600.0).await;

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut random = Lcg(seed);
    let mut operator = OperatorProcess::start(&env, &["--leader-elect=false"]);
    let rollout = the_rollout(&env).await;
    let name = rollout.metadata.name.clone().unwrap();
    let mut kills = 0;
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(random.next_ms(1500, 5000))).await;
        let rollout = wait_rollout(&env, &name, "the rollout can be read", |_| true).await;
        if phase(&rollout) == "Succeeded" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "seed {seed}: not finished after {kills} kills: {:?}",
            rollout.status
        );
        operator.kill();
        kills += 1;
        operator = OperatorProcess::start(&env, &["--leader-elect=false"]);
    }
    assert!(
        kills >= 5,
        "seed {seed}: only {kills} kills before the end; the rollout was too quick to test"
    );
    let done = wait_rollout(&env, &name, "the rollout succeeds", |r| {
        phase(r) == "Succeeded"
    })
    .await;
    let status = done.status.unwrap();
    let totals: Vec<_> = status
        .rings
        .iter()
        .map(|r| (r.total, r.succeeded, r.failed))
        .collect();
    assert_eq!(
        totals,
        vec![(10, 10, 0), (30, 30, 0), (60, 60, 0)],
        "seed {seed}"
    );
    let stats = fleet.stop().await.unwrap();
    // Every asset ran exactly one operation: nothing was handed out twice.
    assert_eq!(
        (stats.started, stats.finished),
        (100, 100),
        "seed {seed}: {stats:?}"
    );
    let observed = observed.lock().unwrap();
    observed.assert_one_operation_each(100, &format!("seed {seed}: "));
    for ring in ["r1", "r2", "r3"] {
        let max = observed.max_in_flight[ring];
        assert!(
            max <= 4,
            "seed {seed}: ring {ring} had {max} in flight, limit 4"
        );
    }
    watch.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_killing_it_hands_over() {
    install_project_crds();
    let env = test_env("op-leader").await;
    apply_one_ring(&env, "2");
    let plans = ring_of("a", "r1", 16);
    // 10m operations take 2 s: 8 batches, about 16 s in all.
    let fleet = start_fleet(&env, &plans, 300.0).await;
    let mut first = OperatorProcess::start(
        &env,
        &lease_flags("patchwave-test", &env.namespace, "first"),
    );
    wait_for_holder(&env, "patchwave-test", "first").await;
    let second = OperatorProcess::start(
        &env,
        &lease_flags("patchwave-test", &env.namespace, "second"),
    );
    let name = the_rollout(&env).await.metadata.name.unwrap();
    wait_rollout(&env, &name, "some operations finish", |r| {
        r.status.as_ref().is_some_and(|s| s.rings[0].succeeded >= 2)
    })
    .await;
    // The follower is up (it answers) and has written nothing.
    let follower_writes = eventually("the follower answers /metrics", DEADLINE, || async {
        second.writes().await.ok_or_else(|| "no answer".to_owned())
    })
    .await;
    assert_eq!(follower_writes, 0.0, "the follower wrote");
    assert!(
        first.writes().await.unwrap_or(0.0) > 0.0,
        "the leader wrote nothing"
    );

    let killed_at = Instant::now();
    first.kill();
    wait_for_holder(&env, "patchwave-test", "second").await;
    let took = killed_at.elapsed();
    // Within the lease time (4 s) plus one renewal attempt.
    assert!(took < Duration::from_secs(10), "took over after {took:?}");
    let done = wait_rollout(&env, &name, "the new leader finishes the rollout", |r| {
        phase(r) == "Succeeded"
    })
    .await;
    assert_eq!(done.status.unwrap().rings[0].succeeded, 16);
    assert!(
        second.writes().await.unwrap_or(0.0) > 0.0,
        "the new leader wrote nothing"
    );
    let stats = fleet.stop().await.unwrap();
    assert_eq!(stats.started, 16, "{stats:?}");
}

/// The API server goes away from the operator in the middle of a ring, for longer than its
/// lease, while the agents keep reporting: the operator keeps running, gives up the lease
/// (so it would not write on stale knowledge), and once the server is back it takes the lease
/// again, records the results reported meanwhile, and finishes the rollout with one operation
/// per asset and never more than maxConcurrent in flight.
#[tokio::test]
async fn an_operator_cut_off_from_the_api_server_catches_up_when_it_is_back() {
    install_project_crds();
    let env = test_env("op-outage").await;
    apply_one_ring(&env, "3");
    let plans = ring_of("a", "r1", 18);
    let (observed, watch) = observe_assets(&env);
    // 10m operations take 2 s: 6 batches of 3.
    let fleet = start_fleet(&env, &plans, 300.0).await;
    let proxy = Proxy::to_api_server(env.control_plane).await;
    let path = proxy.admin_kubeconfig(env.control_plane, &format!("{}.kubeconfig", env.namespace));
    let mut operator = OperatorProcess::start_with(
        &env,
        &path,
        &lease_flags("patchwave-outage", &env.namespace, "cut-off"),
    );
    let name = the_rollout(&env).await.metadata.name.unwrap();
    wait_rollout(&env, &name, "the first batch finishes", |r| {
        r.status.as_ref().is_some_and(|s| s.rings[0].succeeded >= 3)
    })
    .await;
    eventually("the operator leads", DEADLINE, || async {
        match operator.leader().await {
            Some(1.0) => Ok(()),
            other => Err(format!("patchwave_leader {other:?}")),
        }
    })
    .await;

    proxy.cut();
    let cut_at = Instant::now();
    eventually(
        "the cut-off operator gives up the lease",
        DEADLINE,
        || async {
            match operator.leader().await {
                Some(0.0) => Ok(()),
                other => Err(format!("patchwave_leader {other:?}")),
            }
        },
    )
    .await;
    let gave_up = cut_at.elapsed();
    assert!(
        gave_up < Duration::from_secs(10),
        "gave up the lease after {gave_up:?}"
    );
    // The agents finish what they were given (2 s) and report it; the operator cannot see it.
    let assets: Api<patchwave::api::Asset> = env.api();
    let unrecorded = eventually(
        "results the operator has not recorded",
        DEADLINE,
        || async {
            let list = assets
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let waiting = list
                .items
                .iter()
                .filter(|a| {
                    let status = a.status.clone().unwrap_or_default();
                    let reported = status
                        .reported
                        .and_then(|r| r.last_operation)
                        .filter(|l| l.phase != patchwave::api::asset::OperationPhase::Running);
                    status
                        .operation
                        .zip(reported)
                        .is_some_and(|(o, r)| o.id == r.id)
                })
                .count();
            if waiting > 0 {
                Ok(waiting)
            } else {
                Err("none yet".to_owned())
            }
        },
    )
    .await;
    assert!(unrecorded <= 3, "{unrecorded} results for 3 slots");
    let issued_during_outage = observed.lock().unwrap().operations.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(operator.running(), "the operator exited during the outage");
    assert_eq!(
        observed.lock().unwrap().operations.len(),
        issued_during_outage,
        "an operation was issued while the operator was cut off"
    );

    proxy.restore();
    eventually("the operator leads again", DEADLINE, || async {
        match operator.leader().await {
            Some(1.0) => Ok(()),
            other => Err(format!("patchwave_leader {other:?}")),
        }
    })
    .await;
    let done = wait_rollout(&env, &name, "the rollout finishes after the outage", |r| {
        phase(r) == "Succeeded"
    })
    .await;
    let ring = &done.status.unwrap().rings[0];
    assert_eq!((ring.succeeded, ring.failed), (18, 0), "{ring:?}");
    watch.abort();
    let most = {
        let observed = observed.lock().unwrap();
        observed.assert_one_operation_each(18, "");
        observed.max_in_flight.get("r1").copied().unwrap_or(0)
    };
    assert!((1..=3).contains(&most), "{most} in flight at once");
    let stats = fleet.stop().await.unwrap();
    assert_eq!(stats.started, 18, "{stats:?}");
}

/// The leader is cut off from the API server while a second replica is not: the second takes
/// the lease over within the lease time, and the first, when the server is back, writes
/// nothing: it never acts on the lease it lost, and the rollout ends with one operation per
/// asset.
#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_hands_over_and_stays_quiet_when_back() {
    install_project_crds();
    let env = test_env("op-partition").await;
    apply_one_ring(&env, "2");
    let plans = ring_of("a", "r1", 16);
    let (observed, watch) = observe_assets(&env);
    // 10m operations take 2 s: 8 batches of 2.
    let fleet = start_fleet(&env, &plans, 300.0).await;
    let proxy = Proxy::to_api_server(env.control_plane).await;
    let path = proxy.admin_kubeconfig(env.control_plane, &format!("{}.kubeconfig", env.namespace));
    let cut_off = OperatorProcess::start_with(
        &env,
        &path,
        &lease_flags("patchwave-partition", &env.namespace, "cut-off"),
    );
    wait_for_holder(&env, "patchwave-partition", "cut-off").await;
    let standby = OperatorProcess::start(
        &env,
        &lease_flags("patchwave-partition", &env.namespace, "standby"),
    );
    let name = the_rollout(&env).await.metadata.name.unwrap();
    wait_rollout(&env, &name, "some operations finish", |r| {
        r.status.as_ref().is_some_and(|s| s.rings[0].succeeded >= 2)
    })
    .await;
    eventually("the standby answers /metrics", DEADLINE, || async {
        standby.writes().await.ok_or_else(|| "no answer".to_owned())
    })
    .await;

    proxy.cut();
    let cut_at = Instant::now();
    let written_before_cut = eventually("the cut-off replica answers", DEADLINE, || async {
        cut_off.writes().await.ok_or_else(|| "no answer".to_owned())
    })
    .await;
    wait_for_holder(&env, "patchwave-partition", "standby").await;
    let took = cut_at.elapsed();
    // Within the lease time (4 s) plus one renewal attempt.
    assert!(took < Duration::from_secs(10), "took over after {took:?}");
    proxy.restore();
    // Long enough for the cut-off replica to reconnect, read the Lease and act if it would.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        cut_off.leader().await,
        Some(0.0),
        "the cut-off replica leads"
    );
    assert_eq!(
        standby.leader().await,
        Some(1.0),
        "the standby does not lead"
    );

    let done = wait_rollout(&env, &name, "the new leader finishes the rollout", |r| {
        phase(r) == "Succeeded"
    })
    .await;
    assert_eq!(done.status.unwrap().rings[0].succeeded, 16);
    assert_eq!(
        cut_off.writes().await,
        Some(written_before_cut),
        "the replica that lost the lease wrote after the cut"
    );
    assert!(
        standby.writes().await.unwrap_or(0.0) > 0.0,
        "the new leader wrote nothing"
    );
    watch.abort();
    observed.lock().unwrap().assert_one_operation_each(16, "");
    let stats = fleet.stop().await.unwrap();
    assert_eq!(stats.started, 16, "{stats:?}");
}

/// An operator restarted in the middle of a rollout decides nothing before every watch cache
/// has listed. Its answers come through a proxy at 100 kB/s, so the Asset list (300 assets
/// with their inventories) takes seconds while the PatchPolicy list (one object) does not;
/// evaluated in between, the namespace would look empty and the rollout would end as
/// Succeeded with 0 assets in every ring, never to be taken up again.
#[tokio::test]
async fn a_restarted_operator_decides_nothing_before_every_cache_has_listed() {
    install_project_crds();
    let env = test_env("op-listing").await;
    apply_one_ring(&env, "1");
    let plans = ring_of("a", "r1", 300);
    // 10m operations take 10 minutes: the first one stays in flight for the whole test.
    let fleet = start_fleet(&env, &plans, 1.0).await;
    let mut first = OperatorProcess::start(&env, &["--leader-elect=false"]);
    let name = the_rollout(&env).await.metadata.name.unwrap();
    wait_rollout(&env, &name, "one operation in flight", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.rings[0].in_flight == 1 && s.rings[0].total == 300)
    })
    .await;
    first.kill();

    let proxy = Proxy::throttled(env.control_plane, 100_000).await;
    let path = proxy.admin_kubeconfig(env.control_plane, &format!("{}.kubeconfig", env.namespace));
    let restarted = OperatorProcess::start_with(&env, &path, &["--leader-elect=false"]);
    let started = Instant::now();
    let rollouts: Api<patchwave::api::PatchRollout> = env.api();
    let mut ready_at: Option<Duration> = None;
    // Until the restarted operator is ready and for 3 s after: the rollout stays as it was.
    while ready_at.is_none_or(|at| started.elapsed() < at + Duration::from_secs(3)) {
        assert!(
            started.elapsed() < DEADLINE,
            "the restarted operator never became ready"
        );
        let rollout = rollouts.get(&name).await.unwrap();
        let status = rollout.status.clone().unwrap_or_default();
        assert_eq!(
            (
                phase(&rollout).as_str(),
                status.rings[0].total,
                status.rings[0].in_flight
            ),
            ("Progressing", 300, 1),
            "after {:?} (ready after {ready_at:?}): {status:?}",
            started.elapsed()
        );
        if ready_at.is_none()
            && http_get(restarted.metrics, "/readyz")
                .await
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            ready_at = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The Asset list took long enough for the test to mean something.
    let ready_after = ready_at.unwrap_or_default();
    assert!(
        ready_after > Duration::from_secs(1),
        "ready after {ready_after:?}: the Asset list was not slow"
    );
    let stats = fleet.stop().await.unwrap();
    assert_eq!(stats.started, 1, "{stats:?}");
}
