#!/usr/bin/env bash
# Regenerates every figure in docs/BENCHMARKS.md: builds the server and the
# load generator in release mode, runs the modes at 100 to 10,000 clients, each against a fresh server, appends one JSON line per run
# to docs/bench/results.jsonl, and draws docs/bench/latency.svg and
# docs/bench/throughput.svg from them.
#
#   bash benches/sweep.sh            # the whole sweep (about fifteen minutes)
#
# Every run connects and registers all its clients first, which at 10,000
# clients takes minutes (each join is announced to everyone already in the
# lobby: N^2/2 lines), so the large sizes run fanout only. Each fanout run
# also reports the server's idle memory per client and, with every client
# still connected, how long its shutdown takes.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each client takes eight memory mappings (docs/ARCHITECTURE.md); with the
# default vm.max_map_count of 65530 the server caps itself near 8,000 clients.
maps=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)
if [ "$maps" -lt 200000 ]; then
    echo "vm.max_map_count is $maps: the 10,000-client run needs 200000 or more;" >&2
    echo "run 'sysctl -w vm.max_map_count=262144' as root first, or expect refusals." >&2
fi

cargo build --release --bins --examples
server=target/release/threadchat
loadgen=target/release/examples/loadgen
out=docs/bench
results=$out/results.jsonl
mkdir -p "$out"
: > "$results"

run() {
    echo "+ loadgen $*" >&2
    "$loadgen" --spawn "$server" --json "$@" | tee -a "$results"
}

for clients in 100 1000; do
    run --mode fanout --clients "$clients" --senders 10 --rate 100 --duration 10
    run --mode saturate --clients "$clients" --senders 10 --window 8 --duration 10
    run --mode users --clients "$clients" --senders 1 --samples 200
done
# Fan-out only at the sizes between, to show where the fixed load stops
# fitting (docs/BENCHMARKS.md, "Where the design stops").
for clients in 250 500 2000 5000 10000; do
    run --mode fanout --clients "$clients" --senders 10 --rate 100 --duration 10
done
# Slow-consumer isolation: 10 clients that never read among 1,000.
run --mode fanout --clients 1000 --senders 10 --rate 100 --duration 10 --slow 10

"$loadgen" chart "$results" "$out"
