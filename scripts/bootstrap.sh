#!/usr/bin/env bash
# Installs what the build and the Python reference need, idempotently:
# system packages (C++ compiler, OpenSSL headers), a project-local venv with
# CMake 3 and the pinned Python gRPC stack, and the Python stubs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v pkg-config >/dev/null || missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "bootstrap: please install ${missing[*]} (needs root)" >&2
        exit 1
    fi
fi
command -v cargo >/dev/null || { echo "bootstrap: cargo not found; install Rust with rustup" >&2; exit 1; }

stamp=.venv/.requirements
if [ ! -f "$stamp" ] || ! cmp -s python/requirements.txt "$stamp"; then
    echo "bootstrap: creating .venv (CMake 3, Python gRPC reference)"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r python/requirements.txt
    cp python/requirements.txt "$stamp"
fi
bash python/codegen.sh >/dev/null
