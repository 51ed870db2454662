#!/usr/bin/env bash
# Runs every test: format and lints, what plain cargo needs on this machine,
# then every test of the workspace (the slow ones too, the codegen freshness
# check, the interop comparison with the Python reference) with cargo-nextest,
# each test in its own process, and ends with the ten slowest. Arguments go
# to `cargo nextest run` (e.g. a filter: `bash scripts/test.sh rooms::`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
bash scripts/bootstrap.sh

# `cargo run --bin server` must work in a plain shell, without these scripts'
# PATH: the tools C-core's build looks for must be on the system's (CMake 3
# there, or the venv's, which .cargo/config.toml then names).
plain_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
for tool in g++ pkg-config; do
    PATH="$plain_path" command -v "$tool" >/dev/null ||
        { echo "test: $tool is not on the system PATH: plain cargo cannot build gRPC C-core" >&2; exit 1; }
done
PATH="$plain_path" pkg-config --exists openssl ||
    { echo "test: OpenSSL headers not found by pkg-config: plain cargo cannot build gRPC C-core" >&2; exit 1; }
PATH="$plain_path" is_cmake_3 || grep -q '^CMAKE = ' .cargo/config.toml ||
    { echo "test: no CMake 3 on the system PATH nor in .cargo/config.toml: plain cargo cannot build gRPC C-core" >&2; exit 1; }

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# tests/it/wire.rs runs `wiretap`, another package's binary: every binary first.
cargo build --workspace --bins --quiet
# Profile `ci` (.config/nextest.toml) writes a JUnit report, for the slowest below.
status=0
cargo nextest run --workspace --run-ignored all --profile ci "$@" || status=$?
# Doc tests, which nextest does not run.
cargo test --workspace --doc --quiet || status=$?

echo "The ten slowest tests:"
.venv/bin/python3 - "$ROOT/target/nextest/ci/junit.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
timed = sorted(((float(c.get("time", 0)), c.get("classname"), c.get("name")) for c in cases), reverse=True)
for seconds, binary, name in timed[:10]:
    print(f"{seconds:8.1f} s  {binary} {name}")
PY
((status == 0)) || { echo "test: tests failed (exit $status): see FAIL above" >&2; exit "$status"; }
