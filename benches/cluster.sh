#!/usr/bin/env bash
# Two threadchat servers as one chat through one Redis (`--redis`), all on
# this machine, loaded by one generator that spreads its clients over both;
# then the same load on one server alone, for what Redis costs per line.
# Appends one JSON line per run to target/cluster/results.jsonl and prints
# the generator's tables.
#
#   bash benches/cluster.sh                          # 2 x 5,000 clients
#   PER_SERVER=150 DURATION=3 bash benches/cluster.sh --expect-zero-loss
#                                                    # the CI smoke run
#
# Environment: PER_SERVER clients on each server [5000], SENDERS [10],
# RATE lines/s of all senders together [100], DURATION seconds [10],
# PROFILE release or debug [release]. Arguments go to the generator.
# Needs redis-server (Debian: apt-get install redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."

per_server=${PER_SERVER:-5000}
senders=${SENDERS:-10}
rate=${RATE:-100}
duration=${DURATION:-10}
profile=${PROFILE:-release}
command -v redis-server > /dev/null || {
    echo "cluster.sh: redis-server is not installed (apt-get install redis-server)" >&2
    exit 2
}
maps=$(cat /proc/sys/vm/max_map_count 2> /dev/null || echo 0)
if [ "$maps" -lt 200000 ] && [ "$per_server" -gt 3500 ]; then
    echo "vm.max_map_count is $maps: each server caps itself near 8,000 threads' worth" >&2
    echo "of clients; run 'sysctl -w vm.max_map_count=262144' as root first." >&2
fi

if [ "$profile" = release ]; then
    cargo build --release --features redis --bins --examples
else
    cargo build --features redis --bins --examples
fi
server=target/$profile/threadchat
loadgen=target/$profile/examples/loadgen
out=target/cluster
mkdir -p "$out"
results=$out/results.jsonl

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
    pids=()
}
trap stop_all EXIT

# Waits (at most 20 s) for "listening on ADDR" in a server's log; prints ADDR.
listening_addr() {
    local log=$1
    for _ in $(seq 200); do
        if grep -q "listening on " "$log" 2> /dev/null; then
            grep -m1 -o "listening on .*" "$log" | cut -d' ' -f3
            return
        fi
        sleep 0.1 # polling the log, bounded to 20 s
    done
    echo "cluster.sh: no 'listening on' in $log" >&2
    exit 1
}

# Starts a threadchat server with the given extra flags; sets $addr, $pid.
start_server() {
    local log=$1
    shift
    RUST_LOG=info "$server" --addr 127.0.0.1:0 --http off --irc off --rate-limit off \
        --max-per-addr 0 --max-clients $((per_server * 2 + 100)) "$@" 2> "$log" &
    pid=$!
    pids+=("$pid")
    addr=$(listening_addr "$log")
}

# One generator run; its JSON is kept, and its main figures printed.
load() {
    local label=$1
    shift
    echo "== $label"
    local json
    json=$("$loadgen" "$@" --clients $((per_server * 2)) --senders "$senders" \
        --rate "$rate" --duration "$duration" --json "${extra[@]}")
    echo "{\"run\":\"$label\",${json#\{}" >> "$results"
    echo "$json" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
for key in ["connected", "connect_secs", "expected", "received", "cpu_us_per_delivery",
            "latency_p50_ms", "latency_p99_ms", "cross_p50_ms", "cross_p99_ms"]:
    if key in r:
        print(f"  {key:22} {r[key]}")
for key, value in r.items():
    if key.endswith("_cpu_us_per_delivery") and float(value) > 0:
        print(f"  {key:22} {value}")
'
}

extra=("$@")

# Two servers and a Redis.
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --protected-mode no --maxclients 1000 --logfile "$out/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping > /dev/null 2>&1 && break
    sleep 0.1 # polling for Redis to answer, bounded to 10 s
done
start_server "$out/a.log" --redis "redis://127.0.0.1:$redis_port"
a_addr=$addr a_pid=$pid
start_server "$out/b.log" --redis "redis://127.0.0.1:$redis_port"
b_addr=$addr b_pid=$pid
load "2 servers + redis, $per_server clients each" \
    --addr "$a_addr" --addr "$b_addr" --pid "$a_pid" --pid "$b_pid" --pid "$redis_pid"
stop_all

# One server alone, the same clients: the baseline.
start_server "$out/alone.log"
load "1 server alone, $((per_server * 2)) clients" --addr "$addr" --pid "$pid"
stop_all
echo "results: $results"
