#!/usr/bin/env bash
# Cross-language interop: the Python reference (the seed's client.py/server.py)
# against the Rust binaries, in four pairings, with the simulated delays off.
# Every client transcript (timestamps masked) must equal the Python-vs-Python one.
#   ref: python-client vs python-server   a: python-client vs rust-server
#   b:   rust-client   vs python-server   c: rust-client   vs rust-server
# MESSENGER_SERVER_BIN / MESSENGER_CLIENT_BIN, if set, name the Rust binaries
# and skip the cargo build (tests/interop.rs does so: cargo holds its lock).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

bash scripts/bootstrap.sh

if [ -n "${MESSENGER_SERVER_BIN:-}" ] && [ -n "${MESSENGER_CLIENT_BIN:-}" ]; then
    SERVER_BIN="$MESSENGER_SERVER_BIN"
    CLIENT_BIN="$MESSENGER_CLIENT_BIN"
else
    cargo build --quiet --bins
    SERVER_BIN="${MESSENGER_SERVER_BIN:-$CARGO_TARGET_DIR/debug/server}"
    CLIENT_BIN="${MESSENGER_CLIENT_BIN:-$CARGO_TARGET_DIR/debug/client}"
fi
for bin in "$SERVER_BIN" "$CLIENT_BIN"; do
    [ -x "$bin" ] || { echo "interop: missing binary $bin" >&2; exit 1; }
done

PY="$ROOT/.venv/bin/python3"
export PYTHONUNBUFFERED=1
WORK="$(mktemp -d "${TMPDIR:-/tmp}/messenger-interop.XXXXXX")"
echo "interop: transcripts and server logs in $WORK"

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT PID LOG: until 127.0.0.1:PORT accepts connections (~30 s).
wait_port() {
    local port=$1 pid=$2 log=$3 i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "interop: server (pid $pid) exited before listening on $port; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        if "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()' "$port" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "interop: server (pid $pid) not accepting connections on 127.0.0.1:$port after 30 s; its log:" >&2
    cat "$log" >&2
    exit 1
}

# start_server python|rust: starts one, sets PORT.
start_server() {
    local kind=$1 log="$WORK/$1-server.log"
    PORT=$(free_port)
    if [ "$kind" = python ]; then
        # The Python server binds [::]:PORT, which includes 127.0.0.1.
        (cd python && MESSENGER_DELAY_SCALE=0 exec "$PY" server.py --port "$PORT") >"$log" 2>&1 &
    else
        "$SERVER_BIN" --addr "127.0.0.1:$PORT" --delay-ms 0 >"$log" 2>&1 &
    fi
    PIDS+=($!)
    wait_port "$PORT" "$!" "$log"
}

# run_client python|rust PORT OUT
run_client() {
    local kind=$1 port=$2 out=$3 rc=0
    if [ "$kind" = python ]; then
        (cd python && MESSENGER_DELAY_SCALE=0 exec timeout 60 "$PY" client.py --target "127.0.0.1:$port") >"$out" 2>"$out.stderr" || rc=$?
    else
        timeout 60 "$CLIENT_BIN" --target "127.0.0.1:$port" --delay-ms 0 >"$out" 2>"$out.stderr" || rc=$?
    fi
    if [ "$rc" != 0 ]; then
        echo "interop: $kind client against 127.0.0.1:$port exited with $rc; its stderr:" >&2
        cat "$out.stderr" >&2
    fi
    return "$rc"
}

mask() { sed -E 's/\[[0-9]{2}:[0-9]{2}:[0-9]{2}\]/[--:--:--]/g' "$1"; }

start_server python; PY_PORT=$PORT
start_server rust; RUST_PORT=$PORT
echo "interop: python server on 127.0.0.1:$PY_PORT, rust server on 127.0.0.1:$RUST_PORT"

# The reference transcript must be the seed's full run, not an empty pair.
run_client python "$PY_PORT" "$WORK/ref.raw"
mask "$WORK/ref.raw" >"$WORK/ref.txt"
ref_lines=$(wc -l <"$WORK/ref.txt")
for header in "--- Unary Request ---" \
              "--- Server Streaming (Real-time updates) ---" \
              "--- Client Streaming (Uploading research notes) ---" \
              "--- Bi-directional Streaming (Collaborative Feed) ---"; do
    if ! grep -qxF -- "$header" "$WORK/ref.txt"; then
        echo "interop: reference transcript lacks '$header':" >&2
        cat "$WORK/ref.raw" >&2
        exit 1
    fi
done
if [ "$ref_lines" -lt 15 ]; then
    echo "interop: reference transcript has only $ref_lines lines:" >&2
    cat "$WORK/ref.raw" >&2
    exit 1
fi
echo "✅ python-client vs python-server: reference ($ref_lines lines)"

failed=0
pairing() {
    local client=$1 server=$2 port=$3 name="$1-client vs $2-server" file="$WORK/$1-client_vs_$2-server"
    if ! run_client "$client" "$port" "$file.raw"; then
        echo "❌ $name: client failed"
        failed=1
        return
    fi
    mask "$file.raw" >"$file.txt"
    if diff -u --label "python-client vs python-server (reference)" --label "$name" \
            "$WORK/ref.txt" "$file.txt" >"$file.diff"; then
        echo "✅ $name: identical ($(wc -l <"$file.txt") lines)"
    else
        echo "❌ $name: differs from the reference:"
        cat "$file.diff"
        failed=1
    fi
}
pairing python rust "$RUST_PORT"
pairing rust python "$PY_PORT"
pairing rust rust "$RUST_PORT"

if [ "$failed" != 0 ]; then
    echo "interop: FAILED (transcripts in $WORK)"
    exit 1
fi
echo "interop: all pairings identical (transcripts in $WORK)"
