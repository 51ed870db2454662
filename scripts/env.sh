# Sourced by the other scripts: the project root, and the project's tools on
# PATH. Cargo builds where plain `cargo` does (./target) unless
# CARGO_TARGET_DIR says otherwise (.ci/run keeps one outside the clone).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# The venv's CMake is only the fallback for machines without Debian's cmake.
export PATH="$HOME/.cargo/bin:$PATH:$ROOT/.venv/bin"
