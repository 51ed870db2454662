# Sourced by the other scripts: puts the project's tools on PATH and keeps
# cargo's target dir outside the clone so later runs on this machine are warm.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/learning-messenger/target}"
export PATH="$ROOT/.venv/bin:$HOME/.cargo/bin:$PATH"
