#!/usr/bin/env bash
# How busy the manager thread is under one load: its CPU time (from
# /proc/PID/task/TID/stat) over the wall time of one load-generator run.
# docs/COURSEWORK.md's table comes from:
#
#   bash benches/manager_share.sh --mode fanout --clients 100 --senders 10 --rate 100 --duration 10
#   bash benches/manager_share.sh --mode fanout --clients 1000 --senders 10 --rate 100 --duration 10
#   bash benches/manager_share.sh --mode saturate --clients 1000 --senders 10 --window 8 --duration 10
#   bash benches/manager_share.sh --mode saturate --clients 100 --senders 10 --window 8 --duration 10
#
# Every argument goes to the load generator. Linux only (/proc).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --examples -q
server=target/release/threadchat
loadgen=target/release/examples/loadgen

"$server" --addr 127.0.0.1:0 --http off --irc off --rate-limit off --max-per-addr 0 \
    --max-clients 11000 2> target/manager_share.log &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 100); do
    addr=$(sed -n 's/.*listening on //p' target/manager_share.log | head -1)
    [ -n "$addr" ] && break
    sleep 0.1 # polling for the log line, with a bound of 10 s
done
[ -n "$addr" ] || { echo "the server did not start" >&2; exit 1; }
tid=""
for task in /proc/$pid/task/*; do
    [ "$(cat "$task/comm")" = manager ] && tid=$(basename "$task")
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/task/$tid/stat"; }

before=$(cpu_ticks)
start=$(date +%s.%N)
"$loadgen" --addr "$addr" --pid "$pid" "$@" --json > target/manager_share.json
end=$(date +%s.%N)
after=$(cpu_ticks)
python3 - "$before" "$after" "$start" "$end" <<'PY'
import json, sys
before, after, start, end = map(float, sys.argv[1:])
run = json.load(open("target/manager_share.json"))
cpu = (after - before) / 100  # clock ticks are 1/100 s
wall = end - start
print(f"{run['mode']} {run['clients']} clients: manager {cpu:.2f} s of CPU in {wall:.1f} s "
      f"= {100 * cpu / wall:.0f} % busy; server {run['cpu_us_per_delivery']:.2f} us/delivery, "
      f"{run['deliveries_per_sec']} deliveries/s")
PY
