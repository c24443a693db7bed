#!/usr/bin/env bash
# Starts a local control plane (etcd + kube-apiserver v1.37.2) and keeps it running until
# Ctrl-C. Builds the binaries first if needed (once, several minutes; needs Go).
# Arguments go to patchwave-devcluster, e.g. --kubeconfig-out /tmp/kubeconfig; see --help.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PATCHWAVE_CONTROLPLANE_BIN=$("$root/tests/controlplane/build.sh")
export PATCHWAVE_CONTROLPLANE_BIN
# --manifest-path rather than cd: relative paths in the arguments stay relative to the caller.
exec cargo run --quiet --manifest-path "$root/Cargo.toml" --bin patchwave-devcluster -- "$@"
