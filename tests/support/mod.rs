//! Shared harness of the integration tests: one real control plane per test binary.
//!
//! Include it with `mod support;`. The first test that needs the cluster starts etcd and
//! kube-apiserver (a few seconds; the very first run on a machine also builds them, which takes
//! minutes); the others reuse it. Every test gets its own namespace, so tests run in parallel.
//! The servers die with the test process (see `patchwave::devcluster`).

#![allow(dead_code)] // every test binary uses a different part of the harness

pub mod proxy;
pub mod scenario;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use patchwave::devcluster::{LocalControlPlane, controlplane_bin_dir};

static CONTROL_PLANE: OnceLock<Result<LocalControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first use. Blocks while it starts; from
/// async code prefer [`test_env`] (or call this in `spawn_blocking`).
///
/// Panics with the start error (the same message in every test if the start failed).
pub fn control_plane() -> &'static LocalControlPlane {
    let started = CONTROL_PLANE.get_or_init(|| {
        let started = std::time::Instant::now();
        let plane = controlplane_bin_dir()
            .and_then(LocalControlPlane::start)
            .map_err(|e| format!("{e}"))?;
        eprintln!(
            "control plane up at {} after {:.1?} (logs in {})",
            plane.server_url(),
            started.elapsed(),
            plane.work_dir().display()
        );
        Ok(plane)
    });
    match started {
        Ok(plane) => plane,
        Err(err) => panic!("the local control plane did not start:\n{err}"),
    }
}

/// What a test gets: an admin client bound to the test's own runtime and a fresh namespace.
pub struct TestEnv {
    /// Admin (`system:masters`) client created inside the calling test's runtime.
    pub client: Client,
    /// A namespace created for this test only.
    pub namespace: String,
    /// The shared control plane (kubeconfig, kubectl, other identities).
    pub control_plane: &'static LocalControlPlane,
}

impl TestEnv {
    /// An `Api` for namespaced resources in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// kubectl as admin, preset with `--namespace` of this test.
    pub fn kubectl(&self) -> Command {
        let mut command = self.control_plane.kubectl();
        command.arg("--namespace").arg(&self.namespace);
        command
    }
}

/// Starts the shared control plane if needed, builds an admin client in the calling runtime
/// and creates a namespace `<prefix>-<n>-<random>` unique to this call.
pub async fn test_env(prefix: &str) -> TestEnv {
    let control_plane = match tokio::task::spawn_blocking(control_plane).await {
        Ok(plane) => plane,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("starting the control plane: {e}"),
    };
    let client = control_plane
        .admin_client()
        .await
        .expect("building the admin client");
    let namespace = unique_name(prefix);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.clone()),
            labels: Some([("patchwave.dev/test".to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {namespace}: {e}"));
    TestEnv {
        client,
        namespace,
        control_plane,
    }
}

/// A DNS label `<prefix>-<counter>-<random>`, unique within and across test processes.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let salt = (u64::from(std::process::id()) << 32 | u64::from(nanos)) % 1_679_616; // 36^4
    let mut clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    clean.truncate(40);
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "test" } else { clean };
    format!("{clean}-{n}-{}", base36(salt))
}

fn base36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

/// Applies the CRDs in `dir` (server-side) once per test process and waits until they are
/// Established. Later calls with the same directory return at once.
pub fn install_crds(dir: impl AsRef<Path>) {
    static INSTALLED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let dir = dir.as_ref().to_path_buf();
    let mut installed = INSTALLED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if installed.contains(&dir) {
        return;
    }
    let plane = control_plane();
    plane
        .install_crds(&dir)
        .unwrap_or_else(|e| panic!("installing the CRDs of {}: {e}", dir.display()));
    // Established is not the end: discovery and the published OpenAPI (what `kubectl get
    // <category>` and `kubectl explain` read) follow a moment later.
    let names = run(plane
        .kubectl()
        .args(["get", "-f"])
        .arg(&dir)
        .args(["-o", "name"]));
    for crd in names.lines() {
        let plural = crd.trim_start_matches("customresourcedefinition.apiextensions.k8s.io/");
        wait_until_succeeds(|| plane.kubectl().args(["explain", plural]).output());
    }
    installed.insert(dir);
}

/// Runs `command` until it exits successfully, at most 60 times a second apart.
fn wait_until_succeeds(command: impl Fn() -> std::io::Result<std::process::Output>) {
    for _ in 0..60 {
        if command().is_ok_and(|output| output.status.success()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    panic!("still failing after 60 s");
}

/// [`install_crds`] with the repository's `crds/` directory.
pub fn install_project_crds() {
    install_crds(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"));
}

/// Runs a command to completion and panics with its output if it fails.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
