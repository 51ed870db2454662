#!/usr/bin/env bash
# Installs what the build and the Python reference need, idempotently:
# system packages (C++ compiler, CMake, OpenSSL headers, redis-server; Node and
# Debian's Chromium for the gRPC-Web page and its browser tests), the patched gRPC
# C-core source (vendor/grpcio-sys), a project-local venv with the pinned
# Python gRPC stack, the Python stubs, and web/node_modules (npm ci). After
# it, plain `cargo` works in any shell.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v patch >/dev/null || missing+=(patch)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
command -v npm >/dev/null || missing+=(nodejs npm)
# The browser tests drive Debian's Chromium (never a browser Playwright downloads).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Rooms shared by replicas: the tests start a real redis-server (--rooms redis://).
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
# gRPC C-core's build needs CMake 3 (CMake 4 rejects parts of its tree).
case "$(cmake --version 2>/dev/null | head -n1)" in
    "cmake version 3."*) ;;
    *) missing+=(cmake) ;;
esac
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif [ "${missing[*]}" = cmake ]; then
        echo "bootstrap: no system CMake 3; the scripts use the venv's (plain cargo will not find it)" >&2
    else
        echo "bootstrap: please install ${missing[*]} (needs root)" >&2
        exit 1
    fi
fi
command -v cargo >/dev/null || { echo "bootstrap: cargo not found; install Rust with rustup" >&2; exit 1; }

bash scripts/vendor-grpcio.sh

stamp=.venv/.requirements
if [ ! -f "$stamp" ] || ! cmp -s python/requirements.txt "$stamp"; then
    echo "bootstrap: creating .venv (Python gRPC reference)"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r python/requirements.txt
    cp python/requirements.txt "$stamp"
fi
bash python/codegen.sh >/dev/null

# The gRPC-Web page's tools and the Node and browser tests' packages, exactly
# as web/package-lock.json pins them (again only when it changed).
stamp=web/node_modules/.package-lock.json.installed
if [ ! -f "$stamp" ] || ! cmp -s web/package-lock.json "$stamp"; then
    echo "bootstrap: npm ci in web/ (gRPC-Web page and browser tests)"
    (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
        { echo "bootstrap: npm ci in web/ failed" >&2; exit 1; }
    cp web/package-lock.json "$stamp"
fi
