#!/usr/bin/env bash
# Installs what Manta's tests and demo use: Debian packages (Redis, etcd,
# protoc, Python with numpy/sklearn/joblib/protobuf/xgboost/onnx) and, into the project-local .bin,
# the MinIO server and protoc-gen-go. Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.bin"
mkdir -p "$BIN"

# python3-xgboost: the XGBoost oracle tests and benchmark (modelhost/trees),
# the native ETA example and the demo's XGBoost models.
# python3-onnx: the ONNX oracle tests (modelhost/onnx build their graphs with it).
PKGS=(redis-server etcd-server protobuf-compiler python3-numpy python3-sklearn python3-joblib python3-protobuf python3-xgboost python3-onnx)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# protoc-gen-go pinned to the google.golang.org/protobuf version in go.mod.
PGG_VERSION=v1.36.12
if [ ! -x "$BIN/protoc-gen-go" ] || ! "$BIN/protoc-gen-go" --version 2>/dev/null | grep -q "${PGG_VERSION#v}"; then
  echo "setup: protoc-gen-go $PGG_VERSION"
  GOBIN="$BIN" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PGG_VERSION"
fi

# MinIO server (only @latest is served by the module proxy; ~2.5 min build).
if [ ! -x "$BIN/minio" ]; then
  echo "setup: building the MinIO server into .bin (takes a few minutes)"
  GOBIN="$BIN" go install github.com/minio/minio@latest
fi

# Operations tests (ops, deploy): Debian's prometheus (the server and
# promtool) and chromium with a font (headless, for the status page).
# Optional for building and serving Manta, so a failed install only warns
# here; their tests fail under CI=true when the binaries are missing.
OPS_PKGS=()
for p in prometheus chromium fonts-liberation; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || OPS_PKGS+=("$p")
done
if [ ${#OPS_PKGS[@]} -gt 0 ]; then
  echo "setup: installing ${OPS_PKGS[*]}"
  OPS_SUDO=""
  if [ "$(id -u)" != 0 ]; then OPS_SUDO=sudo; fi
  if ! { $OPS_SUDO apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive $OPS_SUDO apt-get install -y -qq --no-install-recommends "${OPS_PKGS[@]}" >/dev/null; }; then
    echo "setup: warning: could not install ${OPS_PKGS[*]}; the ops and deploy tests need them" >&2
  fi
  # Debian's prometheus package enables a service on :9090; tests start
  # their own server, so stop one that the install may have started.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $OPS_SUDO systemctl stop prometheus >/dev/null 2>&1 || true
  fi
fi
