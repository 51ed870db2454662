#!/usr/bin/env bash
# Installs what the build and the Python reference need, idempotently:
# system packages (C++ compiler, CMake, OpenSSL headers, Python's venv;
# redis-server for rooms shared by replicas; Node and Debian's Chromium for
# the gRPC-Web page and its browser tests); a venv
# with the pinned Python gRPC stack (and CMake 3, for a machine whose own
# cmake is not), shared by the clones and linked as .venv; the patched gRPC
# C-core source and the .cargo/config.toml that points cargo at it
# (scripts/vendor-grpcio.sh); the Python stubs; web/node_modules (npm ci);
# cargo-nextest for scripts/test.sh. After it, plain `cargo` works in any shell.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v patch >/dev/null || missing+=(patch)
command -v flock >/dev/null || missing+=(util-linux)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
command -v python3 >/dev/null || missing+=(python3)
# Debian's python3 makes venvs without pip (no ensurepip) until python3-venv is in.
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v npm >/dev/null || missing+=(nodejs npm)
# The browser tests drive Debian's Chromium (never a browser Playwright downloads).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Rooms shared by replicas: the tests start a real redis-server (--rooms redis://).
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
is_cmake_3 || missing+=(cmake)
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        quietly "apt-get update" apt-get update
        DEBIAN_FRONTEND=noninteractive quietly "apt-get install" apt-get install -y "${missing[@]}"
    elif [ "${missing[*]}" = cmake ]; then
        echo "bootstrap: no CMake 3 on PATH; C-core builds with the venv's (.cargo/config.toml names it)" >&2
    else
        echo "bootstrap: please install ${missing[*]} (needs root)" >&2
        exit 1
    fi
fi
command -v cargo >/dev/null || { echo "bootstrap: cargo not found; install Rust with rustup" >&2; exit 1; }
# scripts/test.sh runs the tests with cargo-nextest (each test its own process).
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "bootstrap: installing cargo-nextest (a few minutes, once)"
    quietly "cargo install cargo-nextest" cargo install --locked cargo-nextest
fi

# The venv lives outside the clone, one per requirements and Python, and
# .venv links to it: a new clone (CI's) finds it made. Made in place (a venv
# cannot move), one clone at a time.
# Its packages: the lab's (python/), the test harnesses' (tests/harness/), and
# CMake 3, which C-core's build needs where the machine's cmake is not.
requirements=(python/requirements.txt tests/harness/requirements.txt)
cmake_pin="cmake==3.31.6"
python="$(python3 -c 'import sys; print(sys.executable, sys.version)')"
key="$(printf '%s\n%s\n' "$python" "$cmake_pin" | cat - "${requirements[@]}" | sha256sum | cut -c1-16)"
venv="$LEARNING_MESSENGER_CACHE/venv-$key"
if [ ! -f "$venv/.complete" ]; then
    mkdir -p "$LEARNING_MESSENGER_CACHE"
    exec 9>"$venv.lock"
    flock 9
    if [ ! -f "$venv/.complete" ]; then
        echo "bootstrap: creating the venv (Python gRPC reference) in $venv"
        rm -rf "$venv"
        quietly "creating the venv" python3 -m venv "$venv"
        quietly "pip install (${requirements[*]}, $cmake_pin)" \
            "$venv/bin/pip" install --disable-pip-version-check \
            -r "${requirements[0]}" -r "${requirements[1]}" "$cmake_pin"
        touch "$venv/.complete"
    fi
    exec 9>&-
fi
[ "$(readlink .venv)" = "$venv" ] || { rm -rf .venv && ln -s "$venv" .venv; }

bash scripts/vendor-grpcio.sh
quietly "the Python stubs (python/codegen.sh)" bash python/codegen.sh

# The gRPC-Web page's tools and the Node and browser tests' packages, exactly
# as web/package-lock.json pins them (again only when it changed).
stamp=web/node_modules/.package-lock.json.installed
if [ ! -f "$stamp" ] || ! cmp -s web/package-lock.json "$stamp"; then
    echo "bootstrap: npm ci in web/ (gRPC-Web page and browser tests)"
    quietly "npm ci in web/" npm --prefix web ci --no-audit --no-fund --loglevel=error
    cp web/package-lock.json "$stamp"
fi
