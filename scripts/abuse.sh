#!/usr/bin/env bash
# Runs every raw HTTP/2 flood of tests/harness/floods.py at full strength against a
# release `server` it starts itself (a fresh one per flood, 127.0.0.1 only),
# while a well-behaved client (tests/harness/legit_latency.py) times GetLearningStatus
# calls, and prints a Markdown table: what was sent, how the server reacted
# and how soon it sent the attacker away (GOAWAY), its peak and final RSS,
# its CPU during the flood, and the legitimate client's p50/p99 before and
# during. Results: docs/http2-floods.md.
#
#   bash scripts/abuse.sh                 # 10 s per flood
#   FLOOD_SECONDS=3 bash scripts/abuse.sh # shorter
#   MESSENGER_SERVER_BIN=target/release/server bash scripts/abuse.sh  # no build
#   FLOODS="ping-flood slowloris" bash scripts/abuse.sh  # only these
#   FLOOD_PORT=50999 bash scripts/abuse.sh  # this port (default: any free one)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

SECONDS_EACH="${FLOOD_SECONDS:-10}"
SETTLE="${SETTLE_SECONDS:-10}"   # wait after a flood before the final RSS
PY=.venv/bin/python3
[ -x "$PY" ] || bash scripts/bootstrap.sh
if [ -z "${MESSENGER_SERVER_BIN:-}" ]; then
    cargo build --release -q -p learning-messenger --bin server --bin client
    MESSENGER_SERVER_BIN="$CARGO_TARGET_DIR/release/server"
fi
CLIENT="$(dirname "$MESSENGER_SERVER_BIN")/client"
[ -x "$CLIENT" ] || { echo "abuse: no client next to $MESSENGER_SERVER_BIN (it probes the server's health)" >&2; exit 1; }
WORK="$(mktemp -d)"
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    jobs -p | xargs -r kill 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# LABEL|SERVER FLAGS|FLOOD AND ITS FLAGS
floods=(
    "none||none --seconds $SECONDS_EACH"
    "rapid-reset||rapid-reset --seconds $SECONDS_EACH"
    "rapid-reset-no-budget|--max-aborted-streams-per-second 0|rapid-reset --seconds $SECONDS_EACH"
    "late-reset||late-reset --seconds $SECONDS_EACH"
    "stall||stall --seconds $SECONDS_EACH --streams 500"
    "ping-flood||ping-flood --seconds $SECONDS_EACH"
    "settings-flood||settings-flood --seconds $SECONDS_EACH"
    "continuation-flood||continuation-flood --seconds $SECONDS_EACH"
    "big-headers||big-headers --seconds $SECONDS_EACH"
    "slowloris||slowloris --seconds $SECONDS_EACH --connections 300"
    "no-read||no-read --seconds $SECONDS_EACH --connections 50 --streams 1000"
    "declared||declared --seconds $SECONDS_EACH --streams 200"
    "declared-within-limit|--max-request-bytes-in-flight 67108864|declared --seconds $SECONDS_EACH --streams 200 --declared 4194304 --send 4194304"
)

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# A fresh server per flood, on FLOOD_PORT or on a port free now.
start_server() {
    PORT="${FLOOD_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    # shellcheck disable=SC2086  # the row's server flags
    "$MESSENGER_SERVER_BIN" --addr "127.0.0.1:$PORT" --delay-ms 0 $1 >/dev/null 2>"$WORK/server.log" &
    SERVER_PID=$!
    wait_for_health "$CLIENT" "127.0.0.1:$PORT" "$SERVER_PID" "$WORK/server.log"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# Samples the server's RSS every 100 ms into $WORK/peak until $WORK/stop exists.
watch_peak() {
    local peak=0 now
    while [ ! -e "$WORK/stop" ]; do
        now="$(rss_kib "$SERVER_PID" 2>/dev/null || echo 0)"
        ((now > peak)) && peak=$now
        echo "$peak" >"$WORK/peak"
        sleep 0.1
    done
}

rows=()
for row in "${floods[@]}"; do
    IFS='|' read -r name server_flags flood <<<"$row"
    if [ -n "${FLOODS:-}" ] && [[ " $FLOODS " != *" $name "* ]]; then
        continue
    fi
    echo "abuse: $name ..." >&2
    start_server "$server_flags"
    sleep 1
    if ! "$PY" tests/harness/legit_latency.py --target "127.0.0.1:$PORT" --seconds 3 >"$WORK/before.json"; then
        echo "abuse: the server on port $PORT does not answer (alive: $(kill -0 "$SERVER_PID" 2>/dev/null && echo yes || echo no)); its log:" >&2
        tail -n 20 "$WORK/server.log" >&2
        exit 1
    fi
    rss_start="$(rss_kib "$SERVER_PID")"
    rm -f "$WORK/stop"
    watch_peak &
    watcher=$!
    cpu_start="$(cpu_ticks "$SERVER_PID")"
    "$PY" tests/harness/legit_latency.py --target "127.0.0.1:$PORT" --seconds "$SECONDS_EACH" >"$WORK/during.json" &
    legit=$!
    # shellcheck disable=SC2086  # the flood's arguments
    "$PY" tests/harness/floods.py --port "$PORT" $flood >"$WORK/flood.json"
    wait "$legit"
    grep -q '"failures": 0,' "$WORK/during.json" ||
        echo "abuse: $name: legitimate calls failed: $(cat "$WORK/during.json")" >&2
    cpu_end="$(cpu_ticks "$SERVER_PID")"
    touch "$WORK/stop"
    wait "$watcher"
    sleep "$SETTLE"
    rss_final="$(rss_kib "$SERVER_PID")"
    alive=yes
    kill -0 "$SERVER_PID" 2>/dev/null || alive=no
    stop_server
    rows+=("$("$PY" - "$WORK" "$rss_start" "$(cat "$WORK/peak")" "$rss_final" \
        "$cpu_start" "$cpu_end" "$alive" "$SETTLE" "$name" <<'EOF'
import json, sys
work, rss0, peak, rss1, cpu0, cpu1, alive, settle, label = sys.argv[1:]
flood = json.load(open(f"{work}/flood.json"))
before = json.load(open(f"{work}/before.json"))
during = json.load(open(f"{work}/during.json"))
sent = ", ".join(f"{v:,} {k}" for k, v in flood["sent"].items() if isinstance(v, int) and not isinstance(v, bool) and k != "last_stream_id")
s = flood["server"]
react = []
if s.get("goaway"):
    g = s["goaway"]
    react.append(f"GOAWAY {g['error']} ({g['debug']})" if g["debug"] else f"GOAWAY {g['error']}")
for code, n in (s.get("rst_stream") or {}).items():
    react.append(f"{n:,} RST_STREAM {code}")
for code, n in (s.get("grpc_status") or {}).items():
    react.append(f"{n:,} grpc-status {code}")
closed = s.get("closed_by_server")
if isinstance(closed, dict):
    if closed:
        react.append("closed: " + ", ".join(f"{n} {k}" for k, n in closed.items()))
elif isinstance(closed, int):
    react.append(f"{closed} connections closed" if closed else "none closed")
elif closed:
    react.append(f"connection closed ({closed})")
acks = s.get("frames", {}).get("SETTINGS_ACK", 0) if isinstance(s.get("frames"), dict) else 0
if flood["flood"] == "settings-flood":
    react.append(f"{acks:,} SETTINGS ACK")
if flood["flood"] == "ping-flood":
    react.append(f"{s['frames'].get('PING_ACK', 0):,} PING ACK")
if not react:
    react.append("none")
if alive != "yes":
    react.append("SERVER DIED")
mib = lambda kib: f"{int(kib) / 1024:,.0f}"
ms = lambda r: f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}" if r["p50_ms"] is not None else "-"
fails = f" ({during['failures']} failed)" if during["failures"] else ""
goaway = f"{s['goaway']['after_s']:.2f} s" if s.get("goaway") and "after_s" in s["goaway"] else "-"
print(f"| {label} | {sent} | {'; '.join(react)} | {goaway} | {mib(rss0)} -> {mib(peak)} MiB | {mib(rss1)} MiB | "
      f"{(int(cpu1) - int(cpu0)) / 100:.2f} s | {ms(before)} | {ms(during)}{fails} |")
EOF
)")
done

echo
echo "$SECONDS_EACH s per flood; final RSS $SETTLE s after it; server: $MESSENGER_SERVER_BIN --delay-ms 0;" \
    "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%d)"
echo
echo "| flood | sent | server reaction | GOAWAY after | server RSS start -> peak | RSS after | server CPU during | legit p50 / p99 before (ms) | legit p50 / p99 during (ms) |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
