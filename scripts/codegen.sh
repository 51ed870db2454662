#!/usr/bin/env bash
# Regenerates generated/ from proto/ with protobuf-codegen 3 in pure-Rust mode
# (no protoc, no build.rs), the Python stubs (python/codegen.sh) and the
# page's code and bundle (web/page/codegen.sh). Run it after every change to
# proto/ and commit proto/, generated/ and web/page/ together.
# On a fresh clone it first runs the bootstrap, so `cargo run` works after it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
bash scripts/bootstrap.sh
cargo run --quiet -p messenger-codegen -- generated
bash python/codegen.sh
bash web/page/codegen.sh
