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
# `--rooms redis-cluster` starts a local Redis Cluster instead: three masters
# (REDIS_PORT, +1, +2; cluster-enabled, joined with redis-cli --cluster
# create), and the replicas use it by its startup nodes (redis+cluster://...),
# each room on the shard that owns its slot (sharded pub/sub, Redis 7).
# Logs: target/fleet/rK.log (and redis-PORT.log). SERVER picks the binary (default:
# a debug build); the `client` next to it checks that each replica is up.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

usage() {
    echo "usage: scripts/fleet.sh N [--rooms redis|redis-cluster] [server flags...]   (1 <= N <= 254; PORT=50051)" >&2
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

# `--rooms redis` (or --rooms=redis) becomes the local Redis's address,
# `--rooms redis-cluster` the local cluster's startup nodes.
flags=()
redis=false
cluster=false
while [ $# -gt 0 ]; do
    case "$1" in
        --rooms=redis) redis=true ;;
        --rooms=redis-cluster) redis=true; cluster=true ;;
        --rooms)
            case "${2:-}" in
                redis) redis=true; shift ;;
                redis-cluster) redis=true; cluster=true; shift ;;
                *) flags+=("$1") ;;
            esac ;;
        *) flags+=("$1") ;;
    esac
    shift
done

pids=()
redis_pids=()
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
    for pid in ${redis_pids[@]+"${redis_pids[@]}"}; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -z "$redis_dir" ] || rm -rf "$redis_dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a redis-server on port $1 (its files in $redis_dir/$1) with the
# flags after it; waits until it accepts connections.
start_redis() {
    local port="$1"
    shift
    mkdir -p "$redis_dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$redis_dir/$port" --save "" --appendonly no \
        "$@" >"$LOGS/redis-$port.log" 2>&1 &
    redis_pids+=("$!")
    local pid="$!"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$LOGS/redis-$port.log" >&2
    echo "fleet: redis-server on port $port did not start" >&2
    exit 1
}

if $redis; then
    REDIS_PORT="${REDIS_PORT:-$((PORT + 1))}"
    command -v redis-server >/dev/null || { echo "fleet: no redis-server (scripts/bootstrap.sh installs it)" >&2; exit 1; }
    redis_dir="$(mktemp -d)"
    if $cluster; then
        nodes=()
        for port in "$REDIS_PORT" "$((REDIS_PORT + 1))" "$((REDIS_PORT + 2))"; do
            start_redis "$port" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000
            nodes+=("127.0.0.1:$port")
        done
        redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
            >"$LOGS/redis-cluster.log" 2>&1 \
            || { cat "$LOGS/redis-cluster.log" >&2; echo "fleet: redis-cli --cluster create failed" >&2; exit 1; }
        for _ in $(seq 100); do
            redis-cli -p "$REDIS_PORT" cluster info 2>/dev/null | grep -q cluster_state:ok && break
            sleep 0.1
        done
        flags+=(--rooms "redis+cluster://$(IFS=,; echo "${nodes[*]}")")
        echo "fleet: a Redis Cluster of three masters on ${nodes[*]}: the replicas share their rooms" >&2
    else
        start_redis "$REDIS_PORT"
        flags+=(--rooms "redis://127.0.0.1:$REDIS_PORT")
        echo "fleet: redis-server on 127.0.0.1:$REDIS_PORT: the replicas share their rooms" >&2
    fi
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
