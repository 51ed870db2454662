#!/usr/bin/env bash
# Runs every test: the codegen freshness check, unit and integration tests,
# and the interop comparison against the Python reference (inside cargo test).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
bash scripts/bootstrap.sh
cargo test --workspace --all-targets "$@"
