#!/usr/bin/env bash
# A local fleet: N replicas of the server on 127.0.0.1 ... 127.0.0.N, one
# port (PORT, default 50051), named r1 ... rN (--replica-name). Prints the
# target that balances over them, then waits; Ctrl-C (or SIGTERM) stops them
# all, each gracefully (its own drain and grace). Server flags after N are
# passed to every replica, e.g.
#   scripts/fleet.sh 3 --drain-ms 2000 --max-connection-age-ms 30000
# Logs: target/fleet/rK.log. SERVER picks the binary (default: a debug build);
# the `client` next to it checks that each replica is up.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

usage() {
    echo "usage: scripts/fleet.sh N [server flags...]   (1 <= N <= 254; PORT=50051)" >&2
    exit 2
}
[ $# -ge 1 ] || usage
COUNT="$1"
shift
[[ "$COUNT" =~ ^[0-9]+$ ]] && [ "$COUNT" -ge 1 ] && [ "$COUNT" -le 254 ] || usage
PORT="${PORT:-50051}"

if [ -z "${SERVER:-}" ]; then
    cargo build --quiet --bin server --bin client
    SERVER="$CARGO_TARGET_DIR/debug/server"
fi
CLIENT="$(dirname "$SERVER")/client"
[ -x "$CLIENT" ] || { echo "fleet: no client next to $SERVER (it probes each replica's health)" >&2; exit 1; }
LOGS="$CARGO_TARGET_DIR/fleet"
mkdir -p "$LOGS"

pids=()
stop() {
    trap - INT TERM EXIT
    echo "fleet: stopping ${#pids[@]} replica(s)" >&2
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

addrs=()
for k in $(seq "$COUNT"); do
    addr="127.0.0.$k:$PORT"
    log="$LOGS/r$k.log"
    "$SERVER" --addr "$addr" --replica-name "r$k" "$@" >"$log" 2>&1 &
    pids+=("$!")
    addrs+=("$addr")
done
for k in $(seq "$COUNT"); do
    wait_for_health "$CLIENT" "${addrs[$((k - 1))]}" "${pids[$((k - 1))]}" "$LOGS/r$k.log"
done

target="ipv4:$(IFS=,; echo "${addrs[*]}")"
echo "fleet: $COUNT replica(s) up (logs in $LOGS); Ctrl-C stops them all" >&2
for k in $(seq "$COUNT"); do
    echo "  r$k ${addrs[$((k - 1))]} pid ${pids[$((k - 1))]}" >&2
done
echo "target: $target"
echo "  e.g. client --target $target --lb round_robin --max-attempts 3 --show-replica status" >&2
# Until Ctrl-C (the traps then stop every replica). A replica that dies or is
# killed leaves the others running: clients fail over, as a fleet's should.
wait "${pids[@]}" || true
echo "fleet: every replica has exited; see their logs in $LOGS" >&2
