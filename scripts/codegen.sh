#!/usr/bin/env bash
# Regenerates generated/ from proto/ with protobuf-codegen 3 in pure-Rust mode
# (no protoc, no build.rs). Run it after every change to proto/ and commit both.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
cargo run --quiet -p messenger-codegen -- generated
