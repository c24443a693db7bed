//! A local Kubernetes control plane for tests, demos and development, like controller-runtime's
//! envtest: a real etcd and a real kube-apiserver (built from source by
//! `tests/controlplane/build.sh`) on loopback ports, with client-certificate authentication and
//! RBAC authorization.
//!
//! There is no scheduler, kubelet or controller-manager: Deployments never get pods, garbage
//! collection does not run, namespaces stay Terminating, and the `ServiceAccount` admission
//! plugin is disabled (as in envtest) because nothing creates the `default` service accounts.
//! Run the operator and agents as local processes against it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), patchwave::devcluster::DevClusterError> {
//! use patchwave::devcluster::{LocalControlPlane, controlplane_bin_dir};
//!
//! let plane = LocalControlPlane::start(controlplane_bin_dir()?)?;
//! let client = plane.admin_client().await?;
//! println!("{}", client.apiserver_version().await?.git_version);
//! # Ok(()) }
//! ```
//!
//! The servers never outlive the process that started them (see [`LocalControlPlane::start`]).

mod error;
mod pki;
mod process;

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

pub use error::DevClusterError;
use pki::{CertAndKey, ClusterCa, base64};
use process::{Supervised, free_ports, log_tail};

/// Environment variable naming a directory that holds `etcd`, `kube-apiserver` and `kubectl`;
/// when set, [`controlplane_bin_dir`] uses it instead of running the build script.
pub const BIN_DIR_ENV: &str = "PATCHWAVE_CONTROLPLANE_BIN";

/// Environment variable: seconds [`LocalControlPlane::start`] waits for etcd and the
/// apiserver to become ready (default 120).
pub const START_TIMEOUT_ENV: &str = "PATCHWAVE_CONTROLPLANE_START_TIMEOUT";

/// The Kubernetes version `tests/controlplane/build.sh` builds.
pub const KUBERNETES_VERSION: &str = "v1.37.2";

/// The user name of the admin client certificate (group `system:masters`).
pub const ADMIN_USER: &str = "patchwave-admin";

/// Name of the cluster, user and context in the generated kubeconfigs.
pub const CONTEXT_NAME: &str = "patchwave-devcluster";

const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);
const PORT_ATTEMPTS: u32 = 5;
const POLL_INTERVAL: Duration = Duration::from_millis(200);
const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";
const SERVING_NAMES: [&str; 7] = [
    "127.0.0.1",
    "localhost",
    "10.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The directory holding `etcd`, `kube-apiserver`, `kubectl` and `helm`.
///
/// `$PATCHWAVE_CONTROLPLANE_BIN` if set and not empty; otherwise runs
/// `tests/controlplane/build.sh`, which builds them from the Go module proxy once (several
/// minutes, progress on stderr) and then answers from its cache in well under a second.
pub fn controlplane_bin_dir() -> Result<PathBuf, DevClusterError> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/controlplane/build.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| DevClusterError::BuildScript {
            script: script.clone(),
            source,
        })?;
    // Forward the progress lines as they come (straight to stderr, so test output capture does
    // not hide a build of several minutes) and keep the last ones for the error message.
    let stderr = child.stderr.take();
    let forwarder = std::thread::spawn(move || {
        let mut tail = VecDeque::new();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(std::io::stderr(), "{line}");
                tail.push_back(line);
                if tail.len() > 30 {
                    tail.pop_front();
                }
            }
        }
        tail
    });
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)
            .map_err(|e| DevClusterError::io("reading the output of build.sh", e))?;
    }
    let status = child
        .wait()
        .map_err(|e| DevClusterError::io("waiting for build.sh", e))?;
    let tail: Vec<String> = forwarder.join().unwrap_or_default().into();
    let log_tail = tail.join("\n");
    if !status.success() {
        let hint = if log_tail.contains("Go is required") {
            "install Go (https://go.dev/dl/) and retry, or set PATCHWAVE_CONTROLPLANE_BIN to a \
             directory holding prebuilt etcd, kube-apiserver and kubectl"
        } else {
            "check that the Go module proxy is reachable (GOPROXY) and read the output below; \
             rerun tests/controlplane/build.sh by hand to retry"
        };
        return Err(DevClusterError::BuildFailed {
            status: status.to_string(),
            hint,
            log_tail,
        });
    }
    match stdout.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Err(DevClusterError::BuildFailed {
            status: status.to_string(),
            hint: "build.sh printed no directory on stdout",
            log_tail,
        }),
    }
}

/// Writes a kubeconfig as YAML (mode 0600), creating parent directories.
pub fn write_kubeconfig(path: &Path, kubeconfig: &Kubeconfig) -> Result<(), DevClusterError> {
    use std::os::unix::fs::OpenOptionsExt;
    let yaml = serde_yaml::to_string(kubeconfig)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|e| DevClusterError::io(format!("creating {}", parent.display()), e))?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| DevClusterError::io(format!("writing {}", path.display()), e))?;
    file.write_all(yaml.as_bytes())
        .map_err(|e| DevClusterError::io(format!("writing {}", path.display()), e))
}

/// A running etcd + kube-apiserver pair on loopback ports, with its own CA.
///
/// Everything lives in a temporary directory (`patchwave-devcluster-*`): certificates, etcd
/// data, the admin kubeconfig and the logs `etcd.log` and `kube-apiserver.log`.
pub struct LocalControlPlane {
    dir: Option<tempfile::TempDir>,
    work_dir: PathBuf,
    bin_dir: PathBuf,
    ca: ClusterCa,
    admin: CertAndKey,
    etcd: Option<Supervised>,
    apiserver: Option<Supervised>,
    server_url: String,
    kubeconfig_path: PathBuf,
    kubeconfig: Kubeconfig,
}

impl std::fmt::Debug for LocalControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalControlPlane")
            .field("server_url", &self.server_url)
            .field("work_dir", &self.work_dir)
            .field("bin_dir", &self.bin_dir)
            .finish_non_exhaustive()
    }
}

impl LocalControlPlane {
    /// Starts etcd and kube-apiserver from `bin_dir` (see [`controlplane_bin_dir`]) and waits
    /// until `/readyz` answers `ok`.
    ///
    /// Synchronous and independent of any async runtime. Ports are picked free on 127.0.0.1 and
    /// picked again if a server loses the race for one. The servers die with the owning
    /// process whatever way it ends (normal exit, panic, SIGKILL, a `static` never dropped):
    /// each runs under a shell that holds a pipe from this process and kills the server when
    /// the pipe closes. [`stop`](Self::stop) or dropping the value stops them at once.
    ///
    /// On failure the error carries the tail of the failing server's log, and the directory
    /// with all logs is kept.
    pub fn start(bin_dir: impl Into<PathBuf>) -> Result<Self, DevClusterError> {
        let bin_dir = bin_dir.into();
        for name in ["etcd", "kube-apiserver", "kubectl"] {
            let path = bin_dir.join(name);
            if !path.is_file() {
                return Err(DevClusterError::MissingBinary { name, path });
            }
        }
        let timeout = start_timeout()?;
        let dir = tempfile::Builder::new()
            .prefix("patchwave-devcluster-")
            .tempdir()
            .map_err(|e| DevClusterError::io("creating a temporary directory", e))?;
        let work_dir = dir.path().to_path_buf();

        let ca = ClusterCa::generate()?;
        let serving = ca.serving_cert(&SERVING_NAMES)?;
        let admin = ca.client_cert(ADMIN_USER, &["system:masters"])?;
        let (sa_private, sa_public) = pki::service_account_key()?;
        let pki_dir = work_dir.join("pki");
        fs::create_dir(&pki_dir)
            .map_err(|e| DevClusterError::io(format!("creating {}", pki_dir.display()), e))?;
        for (name, contents) in [
            ("ca.crt", ca.cert_pem()),
            ("apiserver.crt", serving.cert_pem),
            ("apiserver.key", serving.key_pem),
            ("sa.key", sa_private),
            ("sa.pub", sa_public),
        ] {
            let path = pki_dir.join(name);
            fs::write(&path, contents)
                .map_err(|e| DevClusterError::io(format!("writing {}", path.display()), e))?;
        }

        let mut plane = Self {
            dir: Some(dir),
            kubeconfig_path: work_dir.join("kubeconfig"),
            work_dir,
            bin_dir,
            ca,
            admin,
            etcd: None,
            apiserver: None,
            server_url: String::new(),
            kubeconfig: Kubeconfig::default(),
        };
        let started = Instant::now();
        match plane.boot(started + timeout, timeout) {
            Ok(()) => {
                tracing::info!(
                    server = %plane.server_url,
                    elapsed = ?started.elapsed(),
                    "local control plane ready"
                );
                Ok(plane)
            }
            Err(err) => {
                plane.keep_directory();
                plane.stop();
                Err(err)
            }
        }
    }

    fn boot(&mut self, deadline: Instant, timeout: Duration) -> Result<(), DevClusterError> {
        let etcd_url = self.start_etcd(deadline, timeout)?;
        self.start_apiserver(&etcd_url, deadline, timeout)
    }

    fn start_etcd(
        &mut self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<String, DevClusterError> {
        let program = self.bin_dir.join("etcd");
        let log = self.work_dir.join("etcd.log");
        let data_dir = self.work_dir.join("etcd-data");
        for attempt in 1..=PORT_ATTEMPTS {
            let ports = free_ports(2)?;
            let (client, peer) = (ports[0], ports[1]);
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            if data_dir.exists() {
                fs::remove_dir_all(&data_dir).map_err(|e| {
                    DevClusterError::io(format!("removing {}", data_dir.display()), e)
                })?;
            }
            let args = vec![
                "--name=default".to_owned(),
                format!("--data-dir={}", data_dir.display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--initial-cluster-state=new".to_owned(),
                // Throw-away data: skipping fsync makes writes much faster.
                "--unsafe-no-fsync=true".to_owned(),
                "--log-level=warn".to_owned(),
            ];
            // Only the etcd wrapper removes the directory: it holds the bulk (the WAL).
            let mut server =
                Supervised::spawn("etcd", &program, &args, &log, Some(&self.work_dir))?;
            let probe = || etcd_health(client);
            let ready = wait_until_ready(&mut server, deadline, timeout, probe)
                .inspect_err(|_| server.keep_directory())?;
            if ready {
                self.etcd = Some(server);
                return Ok(client_url);
            }
            tracing::debug!(attempt, "etcd lost the race for its ports, picking others");
            if attempt == PORT_ATTEMPTS {
                return Err(DevClusterError::PortsInUse {
                    name: "etcd",
                    attempts: PORT_ATTEMPTS,
                    log_tail: log_tail(&log),
                    log,
                });
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    fn start_apiserver(
        &mut self,
        etcd_url: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), DevClusterError> {
        let program = self.bin_dir.join("kube-apiserver");
        let log = self.work_dir.join("kube-apiserver.log");
        let pki = self.work_dir.join("pki");
        let pki_file = |name: &str| pki.join(name).display().to_string();
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_ports(1)?[0];
            self.server_url = format!("https://127.0.0.1:{port}");
            self.kubeconfig = self.kubeconfig_with(admin_auth(&self.admin));
            write_kubeconfig(&self.kubeconfig_path, &self.kubeconfig)?;
            let args = vec![
                format!("--etcd-servers={etcd_url}"),
                format!("--secure-port={port}"),
                "--bind-address=127.0.0.1".to_owned(),
                "--advertise-address=127.0.0.1".to_owned(),
                // 1.37 refuses a loopback advertise address with the default (lease) endpoint
                // reconciler; nothing in-cluster needs the `kubernetes` Service endpoints.
                "--endpoint-reconciler-type=none".to_owned(),
                format!("--cert-dir={}", pki.display()),
                format!("--tls-cert-file={}", pki_file("apiserver.crt")),
                format!("--tls-private-key-file={}", pki_file("apiserver.key")),
                format!("--client-ca-file={}", pki_file("ca.crt")),
                format!("--service-account-issuer={}", self.server_url),
                format!("--service-account-key-file={}", pki_file("sa.pub")),
                format!("--service-account-signing-key-file={}", pki_file("sa.key")),
                format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
                "--authorization-mode=RBAC".to_owned(),
                "--allow-privileged=true".to_owned(),
                // As in envtest: no controller-manager creates the `default` service accounts.
                "--disable-admission-plugins=ServiceAccount".to_owned(),
                "--profiling=false".to_owned(),
            ];
            let mut server = Supervised::spawn("kube-apiserver", &program, &args, &log, None)?;
            let probe = || self.readyz(port);
            let ready = wait_until_ready(&mut server, deadline, timeout, probe)
                .inspect_err(|_| server.keep_directory())?;
            if ready {
                self.apiserver = Some(server);
                return Ok(());
            }
            tracing::debug!(
                attempt,
                "kube-apiserver lost the race for its port, picking another"
            );
            if attempt == PORT_ATTEMPTS {
                return Err(DevClusterError::PortsInUse {
                    name: "kube-apiserver",
                    attempts: PORT_ATTEMPTS,
                    log_tail: log_tail(&log),
                    log,
                });
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Probes `/readyz` with the built kubectl; `Err` says why it is not ready.
    fn readyz(&self, port: u16) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let output = self
            .kubectl()
            .args(["get", "--raw", "/readyz", "--request-timeout=5s"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running kubectl: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status.success() && stdout.trim() == "ok" {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let mut message = format!("{} {}", stdout.trim(), stderr.trim());
            message.truncate(2000);
            Err(format!("kubectl get --raw /readyz: {}", message.trim()))
        }
    }

    /// Stops the apiserver, then etcd, and removes the temporary directory. Idempotent; also
    /// done on drop.
    pub fn stop(&mut self) {
        if let Some(mut apiserver) = self.apiserver.take() {
            apiserver.stop();
        }
        if let Some(mut etcd) = self.etcd.take() {
            etcd.stop();
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.keep();
            match fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(dir = %path.display(), error = %e, "could not remove"),
            }
        }
    }

    fn keep_directory(&mut self) {
        for server in [self.etcd.as_mut(), self.apiserver.as_mut()]
            .into_iter()
            .flatten()
        {
            server.keep_directory();
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.keep();
            tracing::warn!(dir = %path.display(), "kept the control plane directory for its logs");
        }
    }

    /// `Ok` while both servers run; otherwise which one exited, with the tail of its log.
    pub fn check_running(&mut self) -> Result<(), DevClusterError> {
        for server in [self.etcd.as_mut(), self.apiserver.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(status) = server.try_exit()? {
                return Err(server.exited_error(status));
            }
        }
        Ok(())
    }

    /// Path of the admin kubeconfig file (in the temporary directory, credentials embedded).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The admin kubeconfig (user `patchwave-admin` in `system:masters`, credentials embedded).
    pub fn kubeconfig(&self) -> Kubeconfig {
        self.kubeconfig.clone()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The directory holding etcd, kube-apiserver, kubectl (and helm).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The temporary directory: `pki/`, `etcd-data/`, `kubeconfig`, `etcd.log`,
    /// `kube-apiserver.log`.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The log file of the apiserver (stdout and stderr).
    pub fn apiserver_log(&self) -> PathBuf {
        self.work_dir.join("kube-apiserver.log")
    }

    /// The cluster CA certificate (PEM), e.g. for webhook configurations.
    pub fn ca_cert_pem(&self) -> String {
        self.ca.cert_pem()
    }

    /// The built kubectl, preset with `--kubeconfig` (admin).
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(self.bin_dir.join("kubectl"));
        command.arg("--kubeconfig").arg(&self.kubeconfig_path);
        command
    }

    /// Applies the CRDs in `dir` (server-side, so their size is no problem) and waits until
    /// every CRD is Established.
    pub fn install_crds(&self, dir: &Path) -> Result<(), DevClusterError> {
        let run = |mut command: Command| -> Result<(), DevClusterError> {
            let output = command.output().map_err(|source| DevClusterError::Io {
                context: format!("running {command:?}"),
                source,
            })?;
            if output.status.success() {
                Ok(())
            } else {
                Err(DevClusterError::Kubectl {
                    command: format!("{command:?}"),
                    status: output.status.to_string(),
                    stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                })
            }
        };
        let mut apply = self.kubectl();
        apply
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(dir);
        run(apply)?;
        let mut wait = self.kubectl();
        wait.args([
            "wait",
            "--for",
            "condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ]);
        run(wait)
    }

    /// A kubeconfig that authenticates as admin and impersonates `user` in `groups`.
    pub fn impersonating_kubeconfig(&self, user: &str, groups: &[&str]) -> Kubeconfig {
        let mut auth = admin_auth(&self.admin);
        auth.impersonate = Some(user.to_owned());
        if !groups.is_empty() {
            auth.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
        }
        self.kubeconfig_with(auth)
    }

    /// A kubeconfig with a fresh client certificate for `user` in `groups` (at most two
    /// groups), signed by the cluster CA: real credentials, no impersonation. Write it with
    /// [`write_kubeconfig`] to run a process (the operator, an agent) as that user.
    pub fn certificate_kubeconfig(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<Kubeconfig, DevClusterError> {
        let cert = self.ca.client_cert(user, groups)?;
        Ok(self.kubeconfig_with(cert_auth(&cert)))
    }

    /// A client for the admin (`system:masters`). Async only because a `kube::Client` must be
    /// created inside the tokio runtime that will drive it.
    pub async fn admin_client(&self) -> Result<kube::Client, DevClusterError> {
        client_for(self.kubeconfig())
    }

    /// A client that impersonates `user` in `groups` (authenticated as admin).
    pub async fn client_as(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<kube::Client, DevClusterError> {
        client_for(self.impersonating_kubeconfig(user, groups))
    }

    /// A client that impersonates the service account `namespace/name`, with the groups the
    /// apiserver gives service-account tokens.
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::Client, DevClusterError> {
        let (user, groups) = service_account_identity(namespace, name);
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        client_for(self.impersonating_kubeconfig(&user, &groups))
    }

    /// A client with a real client certificate for `user` in `groups` (at most two groups),
    /// signed by the cluster CA; no impersonation.
    pub async fn certificate_client(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<kube::Client, DevClusterError> {
        client_for(self.certificate_kubeconfig(user, groups)?)
    }

    fn kubeconfig_with(&self, auth: AuthInfo) -> Kubeconfig {
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: CONTEXT_NAME.to_owned(),
                cluster: Some(Cluster {
                    server: Some(self.server_url.clone()),
                    certificate_authority_data: Some(base64(self.ca.cert_pem().as_bytes())),
                    ..Cluster::default()
                }),
                ..NamedCluster::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: CONTEXT_NAME.to_owned(),
                auth_info: Some(auth),
                ..NamedAuthInfo::default()
            }],
            contexts: vec![NamedContext {
                name: CONTEXT_NAME.to_owned(),
                context: Some(Context {
                    cluster: CONTEXT_NAME.to_owned(),
                    user: Some(CONTEXT_NAME.to_owned()),
                    namespace: None,
                    ..Context::default()
                }),
                ..NamedContext::default()
            }],
            current_context: Some(CONTEXT_NAME.to_owned()),
            kind: Some("Config".to_owned()),
            api_version: Some("v1".to_owned()),
            ..Kubeconfig::default()
        }
    }
}

impl Drop for LocalControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The user name and groups the apiserver gives a service account's token.
pub fn service_account_identity(namespace: &str, name: &str) -> (String, Vec<String>) {
    (
        format!("system:serviceaccount:{namespace}:{name}"),
        vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_owned(),
        ],
    )
}

fn admin_auth(admin: &CertAndKey) -> AuthInfo {
    cert_auth(admin)
}

fn cert_auth(cert: &CertAndKey) -> AuthInfo {
    AuthInfo {
        client_certificate_data: Some(base64(cert.cert_pem.as_bytes())),
        client_key_data: Some(base64(cert.key_pem.as_bytes()).into()),
        ..AuthInfo::default()
    }
}

fn client_for(kubeconfig: Kubeconfig) -> Result<kube::Client, DevClusterError> {
    let config = kube::Config::try_from(kubeconfig)?;
    Ok(kube::Client::try_from(config)?)
}

fn start_timeout() -> Result<Duration, DevClusterError> {
    match std::env::var(START_TIMEOUT_ENV) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| {
                DevClusterError::Invalid(format!(
                    "{START_TIMEOUT_ENV}={value:?} is not a number of seconds"
                ))
            }),
        _ => Ok(DEFAULT_START_TIMEOUT),
    }
}

/// Waits until `probe` succeeds. `Ok(false)` means the server exited because it could not
/// bind its port (pick another and retry).
fn wait_until_ready(
    server: &mut Supervised,
    deadline: Instant,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<(), String>,
) -> Result<bool, DevClusterError> {
    loop {
        if let Some(status) = server.try_exit()? {
            if server.failed_to_bind() {
                return Ok(false);
            }
            return Err(server.exited_error(status));
        }
        let last_check = match probe() {
            Ok(()) => return Ok(true),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(DevClusterError::NotReady {
                name: server.name(),
                waited: timeout,
                last_check,
                log: server.log().to_path_buf(),
                log_tail: log_tail(server.log()),
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// etcd's `/health` over plain HTTP/1.0.
fn etcd_health(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
        .map_err(|e| format!("asking {addr}/health: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("reading {addr}/health: {e}"))?;
    if response.contains(r#""health":"true""#) {
        Ok(())
    } else {
        let body = response.lines().last().unwrap_or_default();
        Err(format!("etcd /health: {body}"))
    }
}
