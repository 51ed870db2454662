#!/usr/bin/env bash
# Runs every test: format and lints, what plain cargo needs on this machine,
# the codegen freshness check, unit and integration tests (the slow ones
# too), and the interop comparison with the Python reference.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
bash scripts/bootstrap.sh

# `cargo run --bin server` must work in a plain shell, without these scripts'
# PATH: the tools C-core's build looks for must be on the system's.
plain_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
for tool in cmake g++ pkg-config; do
    PATH="$plain_path" command -v "$tool" >/dev/null ||
        { echo "test: $tool is not on the system PATH: plain cargo cannot build gRPC C-core" >&2; exit 1; }
done
PATH="$plain_path" pkg-config --exists openssl ||
    { echo "test: OpenSSL headers not found by pkg-config: plain cargo cannot build gRPC C-core" >&2; exit 1; }
[ -f vendor/grpcio-sys/Cargo.toml ] || { echo "test: vendor/grpcio-sys missing (scripts/bootstrap.sh)" >&2; exit 1; }

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --all-targets "$@" -- --include-ignored
