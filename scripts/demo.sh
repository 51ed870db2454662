#!/usr/bin/env bash
# The demo: builds, starts the Rust server, runs the Rust client and then the
# Python reference client against it (the lab's transcript, twice), then the
# four patterns at once under the wire view (every HTTP/2 frame), and stops
# the server. PORT (default 50051) picks the port.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
PORT="${PORT:-50051}"

bash scripts/bootstrap.sh
echo "Building (the first build compiles gRPC C-core: about 15 minutes on 2 quiet cores)..."
cargo build --quiet --bins
bin="$CARGO_TARGET_DIR/debug"

log="$(mktemp)"
# debug for the handlers: every note and feed update logged, as the lab's server prints them.
RUST_LOG="${RUST_LOG:-info,learning_messenger::service=debug}" "$bin/server" --addr "127.0.0.1:$PORT" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
wait_for_health "$bin/client" "127.0.0.1:$PORT" "$server" "$log"

echo
echo "=== Rust client -> Rust server (127.0.0.1:$PORT) ==="
"$bin/client" --target "127.0.0.1:$PORT"
echo
echo "=== Python reference client -> Rust server ==="
(cd python && ../.venv/bin/python3 -u client.py --target "127.0.0.1:$PORT")

echo
echo "=== The same calls on the wire: client --show-wire all --concurrent (frames on stderr) ==="
"$bin/client" --target "127.0.0.1:$PORT" --show-wire all --concurrent

kill -TERM "$server"
wait "$server" || true
echo
echo "=== Rust server log ==="
cat "$log"
