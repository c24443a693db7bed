#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kubectl, helm) from the Go module
# proxy into a cache directory, once. Prints the directory holding the binaries.
#
# Cache: $PATCHWAVE_CONTROLPLANE_CACHE (default ~/.cache/patchwave/controlplane). A build is
# keyed by the hash of the Go modules in this folder, so editing them triggers a rebuild and
# an unchanged tree reuses the binaries (a warm call takes well under a second).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
k8s_version=v1.37.2
helm_version=v3.22.0
cache_root=${PATCHWAVE_CONTROLPLANE_CACHE:-$HOME/.cache/patchwave/controlplane}
key=$(cat "$here"/kubernetes/go.mod "$here"/kubernetes/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum "$0" \
  | sha256sum | cut -c1-16)
bin="$cache_root/$k8s_version-$key/bin"

if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ] && [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "error: Go is required to build the control plane" >&2; exit 1; }
mkdir -p "$bin.partial"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# Without these the server reports v0.0.0 and Helm's kubeVersion checks fail.
minor=${k8s_version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
done

log() { echo "control plane: $*" >&2; }
log "building kube-apiserver and kubectl $k8s_version (first time only, several minutes)"
(cd "$here/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$bin.partial/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
log "building etcd"
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin.partial/etcd" go.etcd.io/etcd/server/v3)
log "building helm $helm_version"
GOBIN="$bin.partial" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$helm_version"

rm -rf "$bin" && mv "$bin.partial" "$bin"
log "cached in $bin"
echo "$bin"
