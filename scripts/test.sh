#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run calls it).
# Checks formatting and lints, then runs every test: unit tests of the pure code and the
# integration tests against a real etcd + kube-apiserver that the test harness starts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build the control plane once (cached; a warm call returns at once) so the first
# integration test does not spend minutes building Kubernetes.
PATCHWAVE_CONTROLPLANE_BIN=$(bash tests/controlplane/build.sh)
export PATCHWAVE_CONTROLPLANE_BIN

# Headless Chromium renders the HTML report in tests/cli_report.rs (Debian's package).
if ! command -v chromium >/dev/null; then
  echo "installing chromium (Debian's package) for the HTML report test..."
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
