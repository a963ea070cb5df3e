#!/usr/bin/env bash
# Installs every build and test dependency of xlstm-serve from Debian 12 packages.
#
#   tools/bootstrap.sh          everything: build, test and deployment-test tools
#   tools/bootstrap.sh build    only what a build (cmake configure included) needs: the
#                               Dockerfile's build stage runs this
#
# Idempotent: packages already installed are skipped, and apt is only touched when
# something is missing. Used by the README quick start, .ci/run and the Dockerfile,
# so that all three build against exactly the same dependency set.
set -euo pipefail

SET=${1:-all}
if [[ $SET != all && $SET != build ]]; then
  echo "usage: tools/bootstrap.sh [all|build]" >&2
  exit 2
fi

PACKAGES=(
  # Toolchain (ccache: the Release build and the container image's build share one cache).
  build-essential cmake ninja-build pkg-config git clang-format ccache
  # RPC stack: gRPC 1.51, Protobuf 3.21, Abseil 20220623.
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libabsl-dev
  # Metrics; `prometheus` ships promtool, which checks the /metrics page in the e2e tests (the
  # package also installs a Prometheus service unit, which nothing here starts).
  prometheus-cpp-dev prometheus
  # Server logs.
  libspdlog-dev
  # Bearer tokens are kept as SHA-256 digests and compared in constant time (libcrypto); the
  # TLS tests make their certificates with the openssl command.
  libssl-dev openssl
  # Tests.
  libgtest-dev libgmock-dev
  # JSON (config.json, safetensors headers).
  nlohmann-json3-dev
  # Tokenizer: PCRE2 for the GPT-2 split pattern, utf8proc for NFC.
  libpcre2-dev libutf8proc-dev
  # The independent wire-contract test client (Debian's Python, not a virtualenv).
  python3 python3-grpcio python3-protobuf
)
if [[ $SET == all ]]; then
  PACKAGES+=(
    # Fuzzing and the sanitizer build (tools/dev.sh test and fuzz): clang and its
    # libFuzzer/sanitizer runtimes.
    clang libclang-rt-14-dev
    # The container test (tools/container-test.sh): a bookworm base image from Debian's mirror,
    # built and run with buildah (no Docker engine needed).
    buildah debootstrap
    # The deploy/ manifests test: yamllint (kubectl kustomize: see below).
    yamllint python3-yaml
    # The monitoring test drives the server and Prometheus's HTTP API with curl.
    curl
  )
  # kubectl renders the kustomize overlays. Debian's is kubernetes-client; a kubectl that is
  # already on PATH (e.g. Google Cloud's `kubectl` package, which owns the same file) is used
  # as it is.
  if ! command -v kubectl >/dev/null 2>&1; then PACKAGES+=(kubernetes-client); fi
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "bootstrap: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "bootstrap: done"
