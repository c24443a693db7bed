#!/usr/bin/env bash
# The local demo (the README's first command). On a fresh machine it builds the control plane
# once (Go, several minutes), starts etcd + kube-apiserver, installs the CRDs, applies the
# example company ACME AG in its demo version (config/demo: a window open now, 20 s bake
# times), starts the operator and a simulated agent fleet, and shows the rollouts ring by ring
# in a live view. One pilot laptop is set to fail, so the pilot ring halts; a scripted IT lead
# resumes it (and gives the approvals the rollout asks for) after 15 seconds, with the same
# plugin commands a person would type. Ctrl-C stops everything and leaves nothing running.
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
pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping the operator, the fleet and the control plane..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
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

echo "installing the CRDs and the demo company..."
"$kubectl" apply --server-side -f crds/ >/dev/null
"$kubectl" wait --for condition=Established crd --all --timeout=60s >/dev/null
"$kubectl" apply --server-side -k config/demo >/dev/null
# lt-it-03 fails already (examples/assets/laptops.yaml); a second pilot failure exceeds the
# pilot ring's failureThreshold of 1.
"$kubectl" annotate --overwrite -n acme asset lt-eng-01 simulate.patchwave.dev/outcome=Failed >/dev/null

echo "starting the operator and 30 simulated agents (operations run 120 times faster)..."
# Time runs 120 times faster here, so asset states are not held back the usual 5 minutes.
target/debug/patchwave-operator --namespace acme --leader-elect=false \
  --metrics-address 127.0.0.1:0 --summary-delay-seconds 3 >"$state/operator.log" 2>&1 &
pids+=($!)
target/debug/patchwave-agent fleet --namespace acme -f examples/assets --speed 120 \
  >"$state/fleet.log" 2>&1 &
pids+=($!)

# The scripted IT lead: runs each "next:" command of the status view once it has been shown
# for 15 seconds (resume after a halt, approve a manual ring or a Critical asset).
person() {
  declare -A seen=()
  while sleep 3; do
    steps=$(target/debug/kubectl-patchwave status -n acme -o json 2>/dev/null | python3 -c '
import json, sys
for rollout in json.load(sys.stdin).get("rollouts", []):
    for step in rollout.get("nextSteps", []):
        print(step)') || continue
    now=$(date +%s)
    while IFS= read -r step; do
      [ -n "$step" ] || continue
      first=${seen[$step]:-$now}
      seen[$step]=$first
      if (( now - first >= 15 )); then
        echo "$(date -u +%T) the IT lead runs: $step" >>"$state/person.log"
        # shellcheck disable=SC2086 # the step is a command line to split
        target/debug/kubectl-patchwave ${step#kubectl patchwave } >>"$state/person.log" 2>&1 || true
        unset "seen[$step]"
      fi
    done <<<"$steps"
  done
}
person &
pids+=($!)

cat <<TXT

The live view follows. The pilot ring halts on its second failure; 15 seconds later the
scripted IT lead runs the "next:" command shown (its log: $state/person.log).
In another shell:

  export KUBECONFIG=$state/kubeconfig PATH=$bin:$root/target/debug:\$PATH
  kubectl get patchwave -n acme
  kubectl events -n acme   # sorted by time (the operator writes events.k8s.io/v1 Events)
  kubectl patchwave resume ROLLOUT --ring pilot -n acme   # what the IT lead does

Logs: $state/operator.log, $state/fleet.log. Press Ctrl-C to stop everything.
TXT
sleep 6
target/debug/kubectl-patchwave status -n acme --watch
