#!/usr/bin/env bash
# threadchat side by side with Redis pub/sub, in one sitting, on one machine:
# the same load generator, the same workloads, one server at a time, each
# freshly started. Prints the ratios (threadchat / Redis) and appends one
# JSON line per run to target/peers/results.jsonl.
#
#   bash benches/peers.sh              # about eight minutes
#   STORM=5000 bash benches/peers.sh   # a smaller connection storm
#   PREVIOUS=path/to/old/threadchat bash benches/peers.sh
#                                      # and an earlier build, in the same sitting
#
# Needs redis-server (Debian: apt-get install redis-server). Redis is
# started on a free loopback port with persistence off (no RDB, no AOF), so
# that neither server touches the disk. With Redis, the senders only
# PUBLISH (a subscribed RESP2 connection cannot publish), so a line has
# clients - senders receivers there, and clients - 1 with threadchat; every
# figure compared is per delivery, per client or per run.
set -euo pipefail
cd "$(dirname "$0")/.."

storm=${STORM:-10000}
command -v redis-server > /dev/null || {
    echo "peers.sh: redis-server is not installed (apt-get install redis-server)" >&2
    exit 2
}
maps=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)
if [ "$maps" -lt 200000 ] && [ "$storm" -gt 7000 ]; then
    echo "vm.max_map_count is $maps: threadchat caps itself near 8,000 clients;" >&2
    echo "run 'sysctl -w vm.max_map_count=262144' as root first, or set STORM=5000." >&2
fi

cargo build --release --bins --examples
server=target/release/threadchat
loadgen=target/release/examples/loadgen
out=target/peers
mkdir -p "$out"
results=$out/results.jsonl
: > "$results"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

redis_pid=""
stop_redis() {
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2> /dev/null || true
        wait "$redis_pid" 2> /dev/null || true
        redis_pid=""
    fi
}
trap stop_redis EXIT

# One run against a fresh redis-server; the loadgen's JSON goes to $results.
run_redis() {
    local label=$1
    shift
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --protected-mode no --maxclients 20000 --logfile "$out/redis.log" &
    redis_pid=$!
    local deadline=$((SECONDS + 10))
    until redis-cli -p "$port" ping > /dev/null 2>&1; do
        if [ $SECONDS -gt $deadline ]; then
            echo "redis-server did not answer on port $port" >&2
            exit 1
        fi
        sleep 0.05
    done
    "$loadgen" --protocol redis --addr "127.0.0.1:$port" --pid "$redis_pid" --json "$@" |
        sed "s/^{/{\"label\":\"$label\",\"server\":\"redis\",/" >> "$results"
    stop_redis
}

run_threadchat() {
    local label=$1 name=$2 binary=$3
    shift 3
    "$loadgen" --spawn "$binary" --json "$@" |
        sed "s/^{/{\"label\":\"$label\",\"server\":\"$name\",/" >> "$results"
}

# label | loadgen arguments
workloads=(
    "fanout-1000x100|--clients 1000 --senders 10 --rate 100 --duration 10"
    "fanout-100x100|--clients 100 --senders 10 --rate 100 --duration 10"
    "class-200x20|--clients 200 --senders 10 --rate 20 --duration 10"
    "saturate-1000|--mode saturate --clients 1000 --senders 10 --window 8 --duration 10"
    "saturate-1000-deep|--mode saturate --clients 1000 --senders 10 --window 64 --duration 10"
    "storm-$storm|--mode capacity --clients $storm --senders 1 --in-flight 128 --duration 3"
)
for entry in "${workloads[@]}"; do
    label=${entry%%|*}
    # shellcheck disable=SC2206 # the arguments are words on purpose
    arguments=(${entry#*|})
    echo "== $label" >&2
    run_threadchat "$label" threadchat "$server" "${arguments[@]}"
    if [ -n "${PREVIOUS:-}" ]; then
        run_threadchat "$label" previous "$PREVIOUS" "${arguments[@]}"
    fi
    run_redis "$label" "${arguments[@]}"
done

python3 - "$results" <<'EOF'
import json, sys
runs = {}
for line in open(sys.argv[1]):
    run = json.loads(line)
    runs[(run["label"], run["server"])] = run
rows = [
    ("fanout-1000x100", "cpu_us_per_delivery", "CPU per delivery (µs)"),
    ("fanout-1000x100", "latency_p99_ms", "latency p99 (ms)"),
    ("fanout-100x100", "cpu_us_per_delivery", "CPU per delivery (µs)"),
    ("class-200x20", "cpu_us_per_delivery", "CPU per delivery (µs)"),
    ("class-200x20", "latency_p99_ms", "latency p99 (ms)"),
    ("saturate-1000", "deliveries_per_sec", "deliveries/s"),
    ("saturate-1000", "latency_p99_ms", "latency p99 (ms)"),
    ("saturate-1000-deep", "deliveries_per_sec", "deliveries/s"),
    ("saturate-1000-deep", "latency_p99_ms", "latency p99 (ms)"),
]
storm = [label for (label, _) in runs if label.startswith("storm-")]
for label in storm[:1]:
    rows += [(label, "rss_per_client_kib", "RSS per idle client (KiB)"),
             (label, "connect_secs", "all connected and registered (s)")]
previous = any(server == "previous" for (_, server) in runs)
def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "n/a"
head = "| workload | measure | threadchat | Redis | threadchat ÷ Redis |"
if previous:
    head += " previous | threadchat ÷ previous |"
print(head)
print("|---" * (7 if previous else 5) + "|")
for label, key, name in rows:
    ours = runs.get((label, "threadchat"), {}).get(key)
    theirs = runs.get((label, "redis"), {}).get(key)
    row = f"| {label} | {name} | {ours} | {theirs} | {ratio(ours, theirs)} |"
    if previous:
        before = runs.get((label, "previous"), {}).get(key)
        row += f" {before} | {ratio(ours, before)} |"
    print(row)
lossy = [f"{l} {s}" for (l, s), r in runs.items() if r.get("received", 0) < r.get("expected", 0) or r.get("connect_failed", 0)]
print("runs with loss or failed connections: " + (", ".join(lossy) if lossy else "none"))
EOF
