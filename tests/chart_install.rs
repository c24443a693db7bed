//! The Helm chart and the kustomize bases against the real kube-apiserver: lint, schema,
//! server-side dry run, `helm install`, the operator running with exactly the chart's
//! identity (impersonation) through a rollout, the actions that identity must not be able to
//! do, `helm uninstall`, and `kubectl apply -k config/default`.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use patchwave::devcluster::{controlplane_bin_dir, service_account_identity, write_kubeconfig};
use serde::Deserialize;
use serde_json::Value;
use support::scenario::*;
use support::{TestEnv, run, test_env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The API server's version, for `helm template` (which knows no cluster).
const KUBE_VERSION: &str = "1.37.2";
/// Release name of the install test: the chart then names everything like config/default.
const RELEASE: &str = "patchwave";

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/patchwave")
}

fn all_enabled_values() -> PathBuf {
    chart_dir().join("ci/all-enabled-values.yaml")
}

fn bin_dir() -> PathBuf {
    controlplane_bin_dir().expect("the control-plane binaries (tests/controlplane/build.sh)")
}

/// helm, with the admin kubeconfig when a cluster is given.
fn helm(env: Option<&TestEnv>) -> Command {
    let mut command = Command::new(bin_dir().join("helm"));
    if let Some(env) = env {
        command
            .arg("--kubeconfig")
            .arg(env.control_plane.kubeconfig_path());
    }
    command
}

/// `helm template` of the chart as release `release` in `namespace` with `args`.
fn template(release: &str, namespace: &str, args: &[&str]) -> Output {
    helm(None)
        .args(["template", release])
        .arg(chart_dir())
        .args(["--namespace", namespace, "--kube-version", KUBE_VERSION])
        .args(args)
        .output()
        .expect("running helm template")
}

fn rendered(release: &str, namespace: &str, args: &[&str]) -> String {
    let output = template(release, namespace, args);
    assert!(
        output.status.success(),
        "helm template {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 manifests")
}

/// The documents of a multi-document YAML stream, as JSON (empty documents dropped).
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("valid YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn key(object: &Value) -> (String, String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        text(&object["kind"]),
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

#[test]
fn chart_lints_clean_with_defaults_and_with_every_option() {
    for values in [None, Some(all_enabled_values())] {
        let mut command = helm(None);
        command.arg("lint").arg(chart_dir()).arg("--strict");
        if let Some(values) = &values {
            command.arg("--values").arg(values);
        }
        let output = run(&mut command);
        assert!(
            output.contains("0 chart(s) failed")
                && !output.contains("[WARNING]")
                && !output.contains("[ERROR]"),
            "helm lint with {values:?}:\n{output}"
        );
    }
}

/// Paths of the values documented with `# --` in values.yaml.
fn documented_values(values_yaml: &str) -> BTreeSet<String> {
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut documented = BTreeSet::new();
    let mut pending = false;
    for line in values_yaml.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with("# --") {
            pending = true;
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        path.retain(|(depth, _)| *depth < indent);
        path.push((indent, key.to_owned()));
        if pending {
            let dotted: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
            documented.insert(dotted.join("."));
            pending = false;
        }
    }
    documented
}

/// Every scalar in `value` lies under one of `documented`.
fn undocumented(prefix: &str, value: &Value, documented: &BTreeSet<String>, out: &mut Vec<String>) {
    if documented.contains(prefix) {
        return;
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                undocumented(&path, child, documented, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_value_is_documented_in_values_yaml_and_in_the_readme_table() {
    let values_yaml =
        std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml");
    let documented = documented_values(&values_yaml);
    let values: Value = serde_yaml::from_str(&values_yaml).expect("values.yaml is YAML");
    let mut missing = Vec::new();
    undocumented("", &values, &documented, &mut missing);
    assert!(
        missing.is_empty(),
        "values without a `# --` comment: {missing:?}"
    );

    let readme = std::fs::read_to_string(chart_dir().join("README.md")).expect("README.md");
    let (_, values_section) = readme
        .split_once("\n## Values\n")
        .expect("README.md has a `## Values` section");
    let in_table: BTreeSet<String> = values_section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(key, _)| key.to_owned())
        .collect();
    let table_only: Vec<_> = in_table.difference(&documented).collect();
    let readme_lacks: Vec<_> = documented.difference(&in_table).collect();
    assert!(
        table_only.is_empty() && readme_lacks.is_empty(),
        "README values table vs values.yaml: only in the README {table_only:?}, missing from the README {readme_lacks:?}"
    );
    assert!(documented.len() > 50, "{documented:?}");
}

#[test]
fn wrong_values_are_rejected_by_the_schema_with_the_field_named() {
    let cases = [
        (
            "operator.replicas=two",
            "/operator/replicas",
            "want integer",
        ),
        (
            "operator.replicas=2,operator.leaderElection.enabled=false",
            "/operator/leaderElection/enabled",
            "must be true",
        ),
        ("operator.log.format=xml", "/operator/log/format", "json"),
        (
            "operator.metricsPort=80",
            "/operator/metricsPort",
            "minimum",
        ),
        ("operator.replica=2", "/operator", "'replica' not allowed"),
        ("crds.install=maybe", "/crds/install", "want boolean"),
        (
            "operator.leaderElection.graceSeconds=15",
            "/operator/leaderElection/graceSeconds",
            "must be less than durationSeconds (15)",
        ),
        ("nodeAgent.backend=yum", "/nodeAgent/backend", "zypper"),
        (
            "metrics.prometheusRule.staleFor=soon",
            "/metrics/prometheusRule/staleFor",
            "pattern",
        ),
        (
            "operator.watchNamespace=Not_A_Namespace",
            "/operator/watchNamespace",
            "pattern",
        ),
    ];
    for (set, field, says) in cases {
        let output = template("x", "default", &["--set", set]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--set {set} was accepted");
        assert!(
            stderr.contains(field) && stderr.contains(says),
            "--set {set}: expected {field} and {says:?} in:\n{stderr}"
        );
    }
    // The same fields with right values render: the refusals above are about the values.
    let fine = template(
        "x",
        "default",
        &[
            "--set",
            "operator.replicas=2,operator.log.format=text,operator.metricsPort=9090,nodeAgent.backend=apt,operator.watchNamespace=acme",
        ],
    );
    assert!(
        fine.status.success(),
        "{}",
        String::from_utf8_lossy(&fine.stderr)
    );
}

/// Minimal stand-ins for the Prometheus Operator's CRDs (not installed in the local control
/// plane): enough for the API server to accept a ServiceMonitor and a PrometheusRule.
fn monitoring_crds() -> String {
    let crd = |plural: &str, kind: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.monitoring.coreos.com\nspec:\n  group: monitoring.coreos.com\n  scope: Namespaced\n  names: {{plural: {plural}, kind: {kind}}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
        )
    };
    [
        crd("servicemonitors", "ServiceMonitor"),
        crd("prometheusrules", "PrometheusRule"),
    ]
    .join("---\n")
}

/// Runs `command` until it succeeds (at most a minute).
fn until_ok(what: &str, mut command: impl FnMut() -> Command) {
    for _ in 0..120 {
        if command().output().is_ok_and(|o| o.status.success()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: still failing after a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_manifests_are_accepted_by_the_api_server_and_privilege_is_opt_in() {
    let env = test_env("chart-dry-run").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let crds = dir.path().join("monitoring-crds.yaml");
    std::fs::write(&crds, monitoring_crds()).expect("writing the stand-in CRDs");
    run(env.kubectl().args(["apply", "-f"]).arg(&crds));
    until_ok("the stand-in monitoring CRDs are served", || {
        let mut command = env.kubectl();
        command.args(["get", "servicemonitors,prometheusrules"]);
        command
    });

    let namespace = env.namespace.clone();
    let scoped =
        format!("operator.watchNamespace={namespace},nodeAgent.assetNamespace={namespace}");
    let values = all_enabled_values();
    let all_args = ["--values", values.to_str().unwrap(), "--set", &scoped];
    for (label, args) in [("defaults", &[][..]), ("every option", &all_args[..])] {
        let manifests = rendered("dry-run", &namespace, args);
        let objects = documents(&manifests);
        let path = dir.path().join("manifests.yaml");
        std::fs::write(&path, &manifests).expect("writing manifests");
        let output = run(env
            .kubectl()
            .args(["apply", "--dry-run=server", "-f"])
            .arg(&path));
        let accepted = output
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(
            accepted,
            objects.len(),
            "{label}: the API server accepted {accepted} of {} objects:\n{output}",
            objects.len()
        );

        let kinds: BTreeSet<String> = objects.iter().map(|o| key(o).0).collect();
        let privileged = manifests.contains("hostPID: true")
            || manifests.contains("privileged: true")
            || manifests.contains("hostPath:");
        if label == "defaults" {
            for kind in [
                "CustomResourceDefinition",
                "Deployment",
                "ClusterRole",
                "Role",
            ] {
                assert!(kinds.contains(kind), "defaults lack a {kind}: {kinds:?}");
            }
            for kind in [
                "DaemonSet",
                "ServiceMonitor",
                "PrometheusRule",
                "ConfigMap",
                "PodDisruptionBudget",
            ] {
                assert!(!kinds.contains(kind), "defaults create a {kind}");
            }
            assert!(!privileged, "the defaults ask for host access");
        } else {
            for kind in [
                "DaemonSet",
                "ServiceMonitor",
                "PrometheusRule",
                "ConfigMap",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
                "PodDisruptionBudget",
            ] {
                assert!(
                    kinds.contains(kind),
                    "every option lacks a {kind}: {kinds:?}"
                );
            }
            assert!(privileged, "the node agents need host access");
        }
        // The operator never asks for more than the restricted profile allows.
        let deployment = objects
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("the operator Deployment");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
            true
        );
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    }
}

/// Normalises an object for comparison: labels and annotations say who installed it (Helm or
/// kustomize), everything else must be the same.
/// Numbers are compared by value: `maximum: 365.0` in the generated CRD text is kustomize's
/// `365`.
fn comparable(mut object: Value) -> Value {
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("labels");
        meta.remove("annotations");
    }
    fn integral(value: &mut Value) {
        match value {
            Value::Number(n) => {
                if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15) {
                    *value = Value::from(f as i64);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(integral),
            Value::Object(map) => map.values_mut().for_each(integral),
            _ => {}
        }
    }
    integral(&mut object);
    object
}

/// The first JSON path at which `a` and `b` differ, with both values there.
fn first_difference(path: String, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(format!("{path}[{i}]"), p, q)),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

#[test]
fn kustomize_default_installs_what_the_chart_installs_by_default() {
    let kustomized = run(Command::new(bin_dir().join("kubectl"))
        .arg("kustomize")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default")));
    let chart = rendered(RELEASE, "patchwave-system", &[]);

    let mut from_kustomize: BTreeMap<_, _> = documents(&kustomized)
        .into_iter()
        .map(|o| (key(&o), comparable(o)))
        .collect();
    // kustomize creates the namespace, Helm is told to (`--create-namespace`).
    let namespace = from_kustomize
        .remove(&(
            "Namespace".to_owned(),
            String::new(),
            "patchwave-system".to_owned(),
        ))
        .expect("config/default creates namespace patchwave-system");
    assert_eq!(namespace["kind"], "Namespace");
    let from_chart: BTreeMap<_, _> = documents(&chart)
        .into_iter()
        .map(|o| (key(&o), comparable(o)))
        .collect();

    let kustomize_keys: BTreeSet<_> = from_kustomize.keys().collect();
    let chart_keys: BTreeSet<_> = from_chart.keys().collect();
    assert_eq!(
        kustomize_keys, chart_keys,
        "config/default and the chart's defaults install different objects"
    );
    assert!(chart_keys.len() >= 14, "{chart_keys:?}");
    for (key, chart_object) in &from_chart {
        let kustomize_object = &from_kustomize[key];
        assert_eq!(
            first_difference(String::new(), kustomize_object, chart_object),
            None,
            "{key:?}: config/default vs the chart"
        );
    }
}

/// The operator binary, started with the chart Deployment's arguments and a kubeconfig that
/// impersonates the chart's ServiceAccount. Killed when dropped.
struct OperatorProcess {
    child: Child,
    log: PathBuf,
}

impl OperatorProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the log, see Drop) if the process has exited.
    fn assert_running(&mut self) {
        let exited = self.child.try_wait().expect("polling the operator process");
        assert!(exited.is_none(), "the operator exited: {exited:?}");
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- operator log ---\n{}", self.log());
        }
    }
}

/// `GET /metrics` on `address` (plain HTTP/1.0, the operator's axum server answers it).
async fn scrape(address: std::net::SocketAddr) -> Result<String, String> {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: operator\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// kubectl as the operator's ServiceAccount (impersonation: the same identity the process has).
fn kubectl_as_operator(env: &TestEnv, release_namespace: &str, account: &str) -> Command {
    let (user, groups) = service_account_identity(release_namespace, account);
    let mut command = env.control_plane.kubectl();
    command.arg(format!("--as={user}"));
    for group in groups {
        command.arg(format!("--as-group={group}"));
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_runs_a_rollout_with_least_privilege_and_uninstall_keeps_only_the_crds() {
    let release_env = test_env("chart-release").await;
    let tenant = test_env("chart-tenant").await;
    let release_ns = release_env.namespace.clone();
    let work = tempfile::tempdir().expect("temp dir");

    // 1. helm install (never --wait: the local control plane runs no pods).
    run(helm(Some(&release_env))
        .args(["install", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", &release_ns]));
    run(release_env.kubectl().args([
        "wait",
        "--for=condition=Established",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=patchwave",
        "--timeout=60s",
    ]));
    until_ok("the patchwave kinds are served", || {
        let mut command = tenant.kubectl();
        command.args(["get", "assets,rings,patchrollouts"]);
        command
    });
    let deployment: Value = serde_json::from_str(&run(release_env.kubectl().args([
        "get",
        "deployment",
        "patchwave-operator",
        "-o",
        "json",
    ])))
    .expect("the Deployment as JSON");
    let pod = &deployment["spec"]["template"]["spec"];
    let account = pod["serviceAccountName"]
        .as_str()
        .expect("serviceAccountName")
        .to_owned();

    // 2. The operator as a process with the chart's arguments (only the listen address is
    // local) and the chart's ServiceAccount identity.
    let metrics = free_address();
    let args: Vec<String> = pod["containers"][0]["args"]
        .as_array()
        .expect("operator args")
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_owned())
        .map(|a| {
            // A quicker pace than production for the test; these flags are not about permissions.
            if a.starts_with("--metrics-address=") {
                format!("--metrics-address={metrics}")
            } else if a.starts_with("--debounce-ms=") {
                "--debounce-ms=100".to_owned()
            } else if a.starts_with("--summary-delay-seconds=") {
                "--summary-delay-seconds=5".to_owned()
            } else {
                a
            }
        })
        .collect();
    let (user, groups) = service_account_identity(&release_ns, &account);
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let kubeconfig = work.path().join("operator-kubeconfig");
    write_kubeconfig(
        &kubeconfig,
        &release_env
            .control_plane
            .impersonating_kubeconfig(&user, &groups),
    )
    .expect("writing the operator's kubeconfig");
    let log = work.path().join("operator.log");
    let log_file = std::fs::File::create(&log).expect("creating the operator log");
    let child = Command::new(env!("CARGO_BIN_EXE_patchwave-operator"))
        .args(&args)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("POD_NAMESPACE", &release_ns)
        .env("POD_NAME", "patchwave-operator-test-0")
        .stdout(Stdio::from(
            log_file.try_clone().expect("duplicating the log file"),
        ))
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("starting patchwave-operator");
    let mut operator = OperatorProcess { child, log };

    // 3. A two-ring rollout in another namespace, with simulated agents.
    apply(
        &tenant,
        &[
            ring_yaml("pilot", "1", "0", "1s", "Automatic"),
            ring_yaml("rest", "2", "0", "0s", "Automatic"),
            open_window_yaml(),
            policy_yaml("security", &["pilot", "rest"], "  manualApproval: []\n"),
        ]
        .join("---\n"),
    );
    let mut plans = ring_of("pilot", "pilot", 2);
    plans.extend(ring_of("rest", "rest", 3));
    let fleet = start_fleet(&tenant, &plans, 600.0).await;
    operator.assert_running();
    let rollout = the_rollout(&tenant).await;
    let rollout_name = rollout.metadata.name.clone().unwrap();
    let done = wait_rollout(&tenant, &rollout_name, "the rollout succeeds", |r| {
        phase(r) == "Succeeded"
    })
    .await;
    let succeeded: i32 = done
        .status
        .as_ref()
        .unwrap()
        .rings
        .iter()
        .map(|r| r.succeeded)
        .sum();
    assert_eq!(succeeded, 5, "{:?}", done.status);
    drop(fleet);

    // It held the Lease in its own namespace, recorded Events, and was never refused.
    let holder = run(release_env.kubectl().args([
        "get",
        "lease",
        "patchwave-operator",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]));
    assert_eq!(holder, "patchwave-operator-test-0");
    let reporters = run(tenant.kubectl().args([
        "get",
        "events.events.k8s.io",
        "-o",
        "jsonpath={.items[*].reportingController}",
    ]));
    assert!(
        reporters.contains("patchwave-operator"),
        "no Event from the operator: {reporters:?}"
    );
    // An asset whose agent never reported shows in the gauge the stale-agent alert is
    // built on (NeverReported, beside AgentStale), per namespace.
    apply(
        &tenant,
        "apiVersion: patchwave.dev/v1alpha1\nkind: Asset\nmetadata: {name: silent}\nspec: {osFamily: Linux, criticality: Low}\n",
    );
    let silent = format!(
        "patchwave_assets_unreachable{{namespace=\"{}\",reason=\"NeverReported\"}} 1",
        tenant.namespace
    );
    let exported = eventually(
        "the silent asset is counted as unreachable",
        DEADLINE,
        || async {
            let text = scrape(metrics).await?;
            if text.contains(&silent) {
                Ok(text)
            } else {
                Err(text)
            }
        },
    )
    .await;
    let operator_log = operator.log();
    assert!(
        !operator_log.to_lowercase().contains("forbidden"),
        "the operator was refused something:\n{operator_log}"
    );

    // Every metric an alert of the PrometheusRule uses is one the operator exports.
    let rule = rendered(
        RELEASE,
        &release_ns,
        &["--set", "metrics.prometheusRule.enabled=true"],
    );
    let mut alerted = BTreeSet::new();
    for object in documents(&rule) {
        if object["kind"] != "PrometheusRule" {
            continue;
        }
        for rule in object["spec"]["groups"][0]["rules"].as_array().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(start) = rest.find("patchwave_") {
                let name: String = rest[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[start + name.len()..];
                alerted.insert(name);
            }
        }
    }
    assert!(alerted.len() >= 4, "{alerted:?}");
    for name in &alerted {
        assert!(
            exported
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))),
            "an alert uses {name}, which the operator does not export:\n{exported}"
        );
    }

    // 4. What the identity must not be able to do. Impersonation works (a permitted read
    // succeeds), so each refusal below is RBAC's.
    let as_operator = || kubectl_as_operator(&release_env, &release_ns, &account);
    run(as_operator().args(["get", "assets", "-n", &tenant.namespace]));
    let other_lease = work.path().join("other-lease.yaml");
    std::fs::write(
        &other_lease,
        format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: someone-elses, namespace: {release_ns}}}\nspec: {{holderIdentity: someone}}\n"
        ),
    )
    .expect("writing a Lease");
    run(release_env
        .kubectl()
        .args(["apply", "-f"])
        .arg(&other_lease));
    let incident = work.path().join("incident.yaml");
    std::fs::write(
        &incident,
        format!(
            "apiVersion: patchwave.dev/v1alpha1\nkind: PatchIncident\nmetadata: {{name: made-up, namespace: {}}}\nspec: {{asset: pilot-000, rollout: {rollout_name}, occurredAt: \"2026-11-27T10:00:00Z\", impact: Low, note: made up}}\n",
            tenant.namespace
        ),
    )
    .expect("writing a PatchIncident");
    let foreign_lease = work.path().join("foreign-lease.yaml");
    std::fs::write(
        &foreign_lease,
        format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: patchwave-operator, namespace: {}}}\n",
            tenant.namespace
        ),
    )
    .expect("writing a Lease");
    let tenant_ns = tenant.namespace.as_str();
    let hold = r#"{"spec":{"hold":true}}"#;
    let pause = r#"{"spec":{"paused":true}}"#;
    let forbidden: Vec<(&str, Vec<String>)> = vec![
        (
            "read Secrets in a watched namespace",
            words(&["get", "secrets", "-n", tenant_ns]),
        ),
        (
            "read Secrets in its own namespace",
            words(&["get", "secrets", "-n", &release_ns]),
        ),
        ("list Secrets anywhere", words(&["get", "secrets", "-A"])),
        (
            "read Helm's release record",
            words(&[
                "get",
                "secret",
                "sh.helm.release.v1.patchwave.v1",
                "-n",
                &release_ns,
            ]),
        ),
        (
            "write an Asset's spec",
            words(&[
                "patch",
                "asset",
                "pilot-000",
                "-n",
                tenant_ns,
                "--type=merge",
                "-p",
                hold,
            ]),
        ),
        (
            "delete an Asset",
            words(&["delete", "asset", "pilot-000", "-n", tenant_ns]),
        ),
        (
            "write a PatchRollout's spec (the people's controls)",
            words(&[
                "patch",
                "patchrollout",
                &rollout_name,
                "-n",
                tenant_ns,
                "--type=merge",
                "-p",
                pause,
            ]),
        ),
        (
            "delete a PatchRollout (the audit record)",
            words(&["delete", "patchrollout", &rollout_name, "-n", tenant_ns]),
        ),
        (
            "write a PatchPolicy's spec",
            words(&[
                "patch",
                "patchpolicy",
                "security",
                "-n",
                tenant_ns,
                "--type=merge",
                "-p",
                r#"{"spec":{"suspend":true}}"#,
            ]),
        ),
        (
            "record a PatchIncident",
            words(&["create", "-f", incident.to_str().unwrap()]),
        ),
        (
            "read a Lease in another namespace",
            words(&["get", "lease", "patchwave-operator", "-n", "kube-system"]),
        ),
        (
            "create a Lease in another namespace",
            words(&["create", "-f", foreign_lease.to_str().unwrap()]),
        ),
        (
            "take over another Lease in its own namespace",
            words(&[
                "patch",
                "lease",
                "someone-elses",
                "-n",
                &release_ns,
                "--type=merge",
                "-p",
                r#"{"spec":{"holderIdentity":"patchwave"}}"#,
            ]),
        ),
        (
            "delete its own Lease",
            words(&["delete", "lease", "patchwave-operator", "-n", &release_ns]),
        ),
        ("read Pods", words(&["get", "pods", "-n", &release_ns])),
        (
            "create ConfigMaps",
            words(&["create", "configmap", "x", "-n", &release_ns]),
        ),
        (
            "grant itself more (ClusterRoleBinding)",
            words(&[
                "create",
                "clusterrolebinding",
                "escalate",
                "--clusterrole=cluster-admin",
                &format!("--user={user}"),
            ]),
        ),
        (
            "change its own ClusterRole",
            words(&["delete", "clusterrole", "patchwave-operator"]),
        ),
        ("list Namespaces", words(&["get", "namespaces"])),
    ];
    let mut allowed = Vec::new();
    for (what, arguments) in &forbidden {
        let output = as_operator()
            .args(arguments)
            .output()
            .expect("running kubectl");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || !stderr.contains("forbidden") {
            allowed.push(format!(
                "{what}: {arguments:?} -> {} {stderr}",
                output.status
            ));
        }
    }
    assert!(
        allowed.is_empty(),
        "the operator's identity may do what it must not:\n{}",
        allowed.join("\n")
    );
    drop(operator);

    // 5. helm uninstall removes everything but the CRDs (and so the data stays).
    run(helm(Some(&release_env))
        .args(["uninstall", RELEASE])
        .args(["--namespace", &release_ns]));
    let left = run(release_env.kubectl().args([
        "get",
        "deployments,services,serviceaccounts,roles,rolebindings,configmaps,secrets",
        "-l",
        "app.kubernetes.io/instance=patchwave",
        "-o",
        "name",
    ]));
    assert_eq!(left.trim(), "", "left in {release_ns} after uninstall");
    let release_secrets =
        run(release_env
            .kubectl()
            .args(["get", "secrets", "-l", "owner=helm", "-o", "name"]));
    assert_eq!(release_secrets.trim(), "", "Helm's release record stays");
    for cluster_object in [
        "clusterrole/patchwave-operator",
        "clusterrolebinding/patchwave-operator",
        "validatingadmissionpolicy/patchwave-agent-own-asset",
        "validatingadmissionpolicybinding/patchwave-agent-own-asset",
    ] {
        let output = release_env
            .control_plane
            .kubectl()
            .args(["get", cluster_object])
            .output()
            .expect("running kubectl");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("NotFound"),
            "{cluster_object} is still there after uninstall"
        );
    }
    let crds = run(release_env.kubectl().args([
        "get",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=patchwave",
        "-o",
        "name",
    ]));
    assert_eq!(crds.lines().count(), 6, "the CRDs stay: {crds}");
    let kept = run(tenant
        .kubectl()
        .args(["get", "assets,patchrollouts", "-o", "name"]));
    assert_eq!(
        kept.lines().count(),
        7,
        "the data stays (6 Assets, 1 PatchRollout): {kept}"
    );

    // 6. kubectl apply -k config/default installs the same set (compared in detail by
    // kustomize_default_installs_what_the_chart_installs_by_default).
    let config_default = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default");
    let applied = run(release_env
        .control_plane
        .kubectl()
        .args(["apply", "--server-side", "-k"])
        .arg(&config_default));
    let built = run(release_env
        .control_plane
        .kubectl()
        .arg("kustomize")
        .arg(&config_default));
    let expected = documents(&built);
    assert_eq!(
        applied
            .lines()
            .filter(|l| l.contains("serverside-applied"))
            .count(),
        expected.len(),
        "{applied}"
    );
    for object in &expected {
        let (kind, namespace, name) = key(object);
        let mut command = release_env.control_plane.kubectl();
        command.args(["get", &kind, &name]);
        if !namespace.is_empty() {
            command.args(["-n", &namespace]);
        }
        run(&mut command);
    }
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
