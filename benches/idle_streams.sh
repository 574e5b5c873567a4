#!/usr/bin/env bash
# What idle curl-door streams cost (docs/ARCHITECTURE.md, "The curl door"):
# a release server, N event streams opened with GET /events and left idle,
# and the server's CPU time over SECONDS, from /proc. A stream's reader
# waits on its inbox and reads its socket once a second (PEER_CHECK in
# src/doors/events.rs) to see whether the peer has gone; an nc client's
# reader sleeps in read and costs nothing. Linux only (/proc).
#
#   bash benches/idle_streams.sh            # 500 streams, 20 s
#   bash benches/idle_streams.sh 0 20       # the server alone, for comparison
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-500}
seconds=${2:-20}
cargo build --release --quiet --bin threadchat
/usr/bin/env python3 - "$streams" "$seconds" <<'PY'
import os, re, socket, subprocess, sys, threading, time

streams, seconds = int(sys.argv[1]), float(sys.argv[2])
server = subprocess.Popen(
    ["target/release/threadchat", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--irc", "off",
     "--max-per-addr", "0", "--history", "0"],
    stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "info"})
web = None
while web is None:
    line = server.stderr.readline()
    if not line:
        sys.exit("the server exited")
    if m := re.search(r"web page at http://(\S+)/", line):
        web = m.group(1)
# Its log is read to the end, so that it never blocks on a full pipe.
threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
host, port = web.rsplit(":", 1)
held = []
for n in range(streams):
    s = socket.create_connection((host, int(port)))
    s.sendall(f"GET /events?name=s{n} HTTP/1.1\r\nHost: {web}\r\n\r\n".encode())
    got = b""
    while f"welcome s{n}!".encode() not in got:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(f"stream {n} was refused: {got[:200]!r}")
        got += chunk
    held.append(s)

def cpu_seconds():
    fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

time.sleep(2)  # the streams' welcomes written, before measuring
start, cpu = time.monotonic(), cpu_seconds()
time.sleep(seconds)  # the measurement's length, not synchronisation
used, took = cpu_seconds() - cpu, time.monotonic() - start
threads = re.search(r"Threads:\s+(\d+)", open(f"/proc/{server.pid}/status").read()).group(1)
print(f"{streams} idle streams: the server used {100 * used / took:.2f}% of one core "
      f"over {took:.0f} s, with {threads} threads")
for s in held:
    s.close()
server.terminate()
server.wait(timeout=30)
PY
