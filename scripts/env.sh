# Sourced by the other scripts (after `set -euo pipefail`): the project root,
# cargo on PATH, where cargo builds, and one line naming the step when a
# script fails. Cargo builds where plain `cargo` does (./target) unless
# CARGO_TARGET_DIR says otherwise (.ci/run shares one outside the clone).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# What outlives a clone: the patched crates (scripts/vendor-grpcio.sh) and CI's target folder.
export LEARNING_MESSENGER_CACHE="${LEARNING_MESSENGER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/learning-messenger}"

# Every failure that ends a script says so: the script, the line and the
# command. -E carries the trap into functions; a command substitution's own
# failure is reported once, by the command that used it.
SCRIPT="$(basename "$0" .sh)"
set -E
trap 'failed_with=$?; ((BASH_SUBSHELL)) || echo "$SCRIPT: failed (exit $failed_with) at ${BASH_SOURCE[0]#"$ROOT"/}:$LINENO: $BASH_COMMAND" >&2' ERR

# quietly STEP COMMAND...: runs COMMAND with its output kept back, and shows
# that output only if it fails.
quietly() {
    local step=$1 log status=0
    shift
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || status=$?
    if ((status)); then
        cat "$log" >&2
        rm -f "$log"
        echo "$SCRIPT: $step failed (exit $status): $*" >&2
        exit "$status"
    fi
    rm -f "$log"
}

# is_cmake_3 [CMAKE]: whether CMAKE (default: the PATH's cmake) is CMake 3,
# which gRPC C-core 1.56 needs (CMake 4 rejects parts of its tree).
is_cmake_3() {
    [[ "$("${1:-cmake}" --version 2>/dev/null)" == "cmake version 3."* ]]
}

# wait_for_health CLIENT TARGET PID LOG: waits until the server (process PID,
# logging to LOG) answers SERVING to `client health` at TARGET; up means
# that, whatever RUST_LOG lets it log. Fails, with the log, if the server
# exits first or does not answer within 30 s.
wait_for_health() {
    local client=$1 target=$2 pid=$3 log=$4 deadline=$((SECONDS + 30))
    until "$client" --target "$target" --timeout-ms 500 health >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            echo "$SCRIPT: the server for $target exited before it answered a health check (its log above)" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            cat "$log" >&2
            echo "$SCRIPT: the server at $target did not answer its health check in 30 s (its log above)" >&2
            exit 1
        fi
        sleep 0.1
    done
}
