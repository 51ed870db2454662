#!/usr/bin/env bash
# A local fleet: N replicas of the server on 127.0.0.1 ... 127.0.0.N, one
# port (PORT, default 50051), named r1 ... rN (--replica-name). Prints the
# target that balances over them, then waits; Ctrl-C (or SIGTERM) stops them
# all, each gracefully (its own drain and grace). Server flags after N are
# passed to every replica, e.g.
#   scripts/fleet.sh 3 --drain-ms 2000 --max-connection-age-ms 30000
# `--rooms redis` starts a local redis-server (REDIS_PORT, default PORT+1,
# its files in a temporary directory, nothing saved) and points every
# replica's rooms at it, so the replicas share their feed rooms:
#   scripts/fleet.sh 3 --rooms redis
# Logs: target/fleet/rK.log (and redis.log). SERVER picks the binary (default:
# a debug build); the `client` next to it checks that each replica is up.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

usage() {
    echo "usage: scripts/fleet.sh N [--rooms redis] [server flags...]   (1 <= N <= 254; PORT=50051)" >&2
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

# `--rooms redis` (or --rooms=redis) becomes the local Redis's address.
flags=()
redis=false
while [ $# -gt 0 ]; do
    case "$1" in
        --rooms=redis) redis=true ;;
        --rooms) if [ "${2:-}" = redis ]; then redis=true; shift; else flags+=("$1"); fi ;;
        *) flags+=("$1") ;;
    esac
    shift
done

pids=()
redis_pid=""
redis_dir=""
stop() {
    trap - INT TERM EXIT
    echo "fleet: stopping ${#pids[@]} replica(s)" >&2
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    [ -z "$redis_dir" ] || rm -rf "$redis_dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if $redis; then
    REDIS_PORT="${REDIS_PORT:-$((PORT + 1))}"
    command -v redis-server >/dev/null || { echo "fleet: no redis-server (scripts/bootstrap.sh installs it)" >&2; exit 1; }
    redis_dir="$(mktemp -d)"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$redis_dir" --save "" --appendonly no \
        >"$LOGS/redis.log" 2>&1 &
    redis_pid="$!"
    up=false
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
            up=true
            break
        fi
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.1
    done
    $up || { cat "$LOGS/redis.log" >&2; echo "fleet: redis-server on port $REDIS_PORT did not start" >&2; exit 1; }
    flags+=(--rooms "redis://127.0.0.1:$REDIS_PORT")
    echo "fleet: redis-server on 127.0.0.1:$REDIS_PORT (pid $redis_pid): the replicas share their rooms" >&2
fi

addrs=()
for k in $(seq "$COUNT"); do
    addr="127.0.0.$k:$PORT"
    log="$LOGS/r$k.log"
    "$SERVER" --addr "$addr" --replica-name "r$k" ${flags[@]+"${flags[@]}"} >"$log" 2>&1 &
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
if $redis; then
    echo "  rooms: client --target $target --lb round_robin --show-replica chat --room lab" >&2
fi
# Until Ctrl-C (the traps then stop every replica). A replica that dies or is
# killed leaves the others running: clients fail over, as a fleet's should.
wait "${pids[@]}" || true
echo "fleet: every replica has exited; see their logs in $LOGS" >&2
