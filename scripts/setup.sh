#!/usr/bin/env bash
# Installs what Manta's tests and demo use: Debian packages (Redis, etcd,
# protoc, Python with numpy/sklearn/joblib) and, into the project-local .bin,
# the MinIO server and protoc-gen-go. Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.bin"
mkdir -p "$BIN"

PKGS=(redis-server etcd-server protobuf-compiler python3-numpy python3-sklearn python3-joblib)
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
# Optional: xgboost models when Debian has it.
if ! dpkg-query -W -f='${Status}' python3-xgboost 2>/dev/null | grep -q "install ok installed"; then
  if apt-cache show python3-xgboost >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq python3-xgboost >/dev/null 2>&1 || true
  fi
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
