#!/usr/bin/env bash
# How busy the manager thread is under one load: its CPU time (from
# /proc/PID/task/TID/stat) over the wall time of one load-generator run;
# and its share of all the server's CPU time, which is Amdahl's serial
# fraction (docs/LABS.md, lab 13). docs/COURSEWORK.md's table comes from:
#
#   bash benches/manager_share.sh --mode fanout --clients 100 --senders 10 --rate 100 --duration 10
#   bash benches/manager_share.sh --mode fanout --clients 1000 --senders 10 --rate 100 --duration 10
#   bash benches/manager_share.sh --mode saturate --clients 1000 --senders 10 --window 8 --duration 10
#   bash benches/manager_share.sh --mode saturate --clients 100 --senders 10 --window 8 --duration 10
#
# Every argument goes to the load generator. Linux only (/proc).
#   SERVER_CPUS   run the server on these CPUs only (taskset -c), e.g. 0
#   LOADGEN_CPUS  and the generator on these, e.g. 1
#   PROFILE       release or debug [release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release --bins --examples -q
else
    cargo build --bins --examples -q
fi
server=target/$profile/threadchat
loadgen=target/$profile/examples/loadgen
pin() { if [ -n "$1" ]; then echo "taskset -c $1"; fi; }

# shellcheck disable=SC2046 # no pinning is no words at all
$(pin "${SERVER_CPUS:-}") "$server" --addr 127.0.0.1:0 --http off --irc off --rate-limit off --room-rate off \
    --max-per-addr 0 --max-clients 11000 2> target/manager_share.log &
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
for _ in $(seq 100); do
    for task in /proc/$pid/task/*; do
        [ "$(cat "$task/comm" 2>/dev/null)" = manager ] && tid=$(basename "$task")
    done
    [ -n "$tid" ] && break
    sleep 0.1 # polling for the manager thread, with a bound of 10 s
done
[ -n "$tid" ] || { echo "no manager thread in /proc/$pid/task" >&2; exit 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/task/$tid/stat"; }

before=$(cpu_ticks)
start=$(date +%s.%N)
# shellcheck disable=SC2046
$(pin "${LOADGEN_CPUS:-}") "$loadgen" --addr "$addr" --pid "$pid" "$@" --json \
    > target/manager_share.json
end=$(date +%s.%N)
after=$(cpu_ticks)
python3 - "$before" "$after" "$start" "$end" <<'PY'
import json, sys
before, after, start, end = map(float, sys.argv[1:])
run = json.load(open("target/manager_share.json"))
cpu = (after - before) / 100  # clock ticks are 1/100 s
wall = end - start
# Per delivery, from the generator's /proc samples of each thread role
# (absent if it could not read them).
total = run.get("cpu_us_per_delivery", 0.0)
print(f"{run['mode']} {run['clients']} clients: manager {cpu:.2f} s of CPU in {wall:.1f} s "
      f"= {100 * cpu / wall:.0f} % busy; server {total:.2f} us/delivery, "
      f"{run['deliveries_per_sec']} deliveries/s")
manager = run.get("manager_cpu_us_per_delivery", 0.0)
writers = run.get("writer_cpu_us_per_delivery", 0.0)
if total > 0:
    serial = manager / total
    bound = f"{1 / serial:.1f}x" if serial > 0 else "none"
    print(f"  serial fraction (the manager's share of the server's CPU) {serial:.2f}: "
          f"Amdahl's bound on the speed-up from more cores {bound}")
    print(f"  writers {writers:.2f} us/delivery ({100 * writers / total:.0f} % of the server's CPU), "
          f"{run.get('writer_sleeps_per_delivery', 0.0):.3f} wake-ups per delivery")
PY
