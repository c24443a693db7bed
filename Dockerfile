# syntax=docker/dockerfile:1
#
# The patchwave images, one multi-stage build with a target per image:
#
#   docker build --target operator -t ghcr.io/patchwave/patchwave-operator:0.1.0 .
#   docker build --target agent    -t ghcr.io/patchwave/patchwave-agent:0.1.0 .
#
# The chart (charts/patchwave/values.yaml: operator.image, nodeAgent.image) and config/operator
# point at these names; docs/install.md says how they are built and published.

ARG RUST_VERSION=1.95
# The build and the runtime images share one Debian release (glibc): distroless cc-debian12 is bookworm.
ARG DEBIAN_RELEASE=bookworm

# --- build: both binaries in release mode, from the locked dependency set ---
FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Cargo.toml names the bench targets, so cargo wants their files even when it does not build
# them; tests/ and examples/ are not needed.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin patchwave-operator --bin patchwave-agent \
    && mkdir -p /out \
    && cp target/release/patchwave-operator target/release/patchwave-agent /out/

# --- operator: distroless (glibc, CA certificates, no shell), non-root ---
# Time zones are compiled into the binary (jiff's bundled tzdb), so the image needs none.
FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /out/patchwave-operator /usr/local/bin/patchwave-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/patchwave-operator"]

# --- agent: Debian slim with nsenter (util-linux), non-root unless the pod says otherwise ---
# The node DaemonSet runs it as root with hostPID and --in-host-namespaces: nsenter enters the
# host's PID 1 namespaces and runs the host's own apt/dnf/zypper, so the image carries no
# package manager state of its own.
FROM docker.io/library/debian:${DEBIAN_RELEASE}-slim AS agent
RUN apt-get update \
    && apt-get install -y --no-install-recommends util-linux ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/patchwave-agent /usr/local/bin/patchwave-agent
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/patchwave-agent"]
