#!/usr/bin/env bash
# The local demo (the README's first command). On a fresh machine it builds the control plane
# once (Go, several minutes), starts etcd + kube-apiserver, installs the CRDs, applies the
# example company ACME AG and shows it as kubectl sees it. Ctrl-C stops everything.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state="$root/.devcluster"
mkdir -p "$state"

bin=$(bash tests/controlplane/build.sh)
export PATCHWAVE_CONTROLPLANE_BIN="$bin"
kubectl="$bin/kubectl"
echo "building patchwave..."
cargo build --quiet --bins

rm -f "$state/kubeconfig"
target/debug/patchwave-devcluster --kubeconfig-out "$state/kubeconfig" >"$state/devcluster.log" 2>&1 &
cluster=$!
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping the control plane..."
  kill -INT "$cluster" 2>/dev/null || true
  wait "$cluster" 2>/dev/null || true
}
trap stop INT TERM EXIT

for _ in $(seq 1 120); do
  [ -s "$state/kubeconfig" ] && "$kubectl" --kubeconfig "$state/kubeconfig" get --raw /readyz >/dev/null 2>&1 && break
  kill -0 "$cluster" 2>/dev/null || { cat "$state/devcluster.log"; exit 1; }
  sleep 1
done
export KUBECONFIG="$state/kubeconfig"

echo "installing the CRDs and the example company..."
"$kubectl" apply --server-side -f crds/ >/dev/null
"$kubectl" wait --for condition=Established crd --all --timeout=60s >/dev/null
"$kubectl" apply --server-side -R -f examples/ >/dev/null

show() { echo; echo "\$ kubectl $*"; "$kubectl" "$@"; }
show get rings,maintenancewindows,patchpolicies -n acme
show get assets -n acme
show explain ring.spec.failureThreshold

# What the engine would do with this company: the same rules the operator will apply.
echo
echo "\$ kubectl patchwave plan -f examples/"
target/debug/kubectl-patchwave plan -f examples/ | head -40
echo "..."
echo
echo "\$ kubectl patchwave simulate -f examples/ --from now --until +3 weeks --approve ring/rest"
from=$(date -u +%Y-%m-%dT%H:%M:%SZ)
until=$(date -u -d '+21 days' +%Y-%m-%dT%H:%M:%SZ)
target/debug/kubectl-patchwave simulate -f examples/ --from "$from" --until "$until" --approve ring/rest \
  --approve asset/dc01 --approve asset/dc02 --approve asset/erp01 --approve asset/fs01 | head -30

cat <<TXT

The control plane keeps running. In another shell:

  export KUBECONFIG=$state/kubeconfig
  export PATH=$bin:\$PATH
  kubectl get patchwave -n acme

The operator and its live rollout view arrive with the operator issue; until then this demo
shows the API and, offline, what the engine would do. Press Ctrl-C to stop everything.
TXT
wait "$cluster"
