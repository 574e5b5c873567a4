#!/usr/bin/env bash
# What the backlog budget charges against what the server holds
# (docs/RELIABILITY.md, "Memory: the worst case"): a release server, CLIENTS
# registered clients that never read (each with a 4 KiB receive buffer, so
# the kernel holds little for them), each asking COMMAND (/who, the lobby's
# members) REQUESTS times, with FILLERS more clients online to make each
# reply long. When the
# backlogs stop growing, the server's RSS growth is set beside what
# /metrics says is queued (threadchat_backlog_bytes, what
# --max-total-backlog charges). A /who reply is made for the one client who
# asked, and held as its parts (for doors that spell it their own way) and
# as its line-protocol spelling; a /users reply is made once and shared
# while nobody comes or goes, so it is charged to every queue it is in but
# held once. Linux only (/proc).
#
#   bash benches/backlog_memory.sh               # 20 clients x 3000 /who, 300 more online
#   bash benches/backlog_memory.sh 20 3000 300 /users
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-20}
requests=${2:-3000}
fillers=${3:-300}
command=${4:-/who}
cargo build --release --quiet --bin threadchat
/usr/bin/env python3 - "$clients" "$requests" "$fillers" "$command" <<'PY'
import os, re, socket, subprocess, sys, threading, time

clients, requests, fillers = (int(a) for a in sys.argv[1:4])
command = sys.argv[4]
server = subprocess.Popen(
    ["target/release/threadchat", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--irc", "off",
     "--max-per-addr", "0", "--history", "0", "--rate-limit", "off", "--announce-up-to", "0",
     "--max-backlog", "64M", "--max-total-backlog", "1024M"],
    stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "info"})
chat = web = None
while chat is None or web is None:
    line = server.stderr.readline()
    if not line:
        sys.exit("the server exited")
    if m := re.search(r"listening on (\S+)", line):
        chat = chat or m.group(1)
    if m := re.search(r"web page at http://(\S+)/", line):
        web = m.group(1)
threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()

def connect(name, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    host, port = chat.rsplit(":", 1)
    s.connect((host, int(port)))
    s.sendall(f"{name}\n".encode())
    got = b""
    while b"welcome" not in got:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"{name} was refused: {got[:200]!r}")
        got += chunk
    return s

def metric(name):
    host, port = web.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"GET /metrics HTTP/1.1\r\nHost: {web}\r\n\r\n".encode())
        text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))

def rss_bytes():
    status = open(f"/proc/{server.pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024

# The fillers receive nothing (announcements are off, nobody chats), so
# they need no reading.
held = [connect(f"filler{n}") for n in range(fillers)]
stalled = [connect(f"stalled{n}", rcvbuf=4096) for n in range(clients)]
time.sleep(2)  # the welcomes written and the allocator settled, before the baseline
before = rss_bytes()
for s in stalled:
    s.setblocking(False)
asks = f"{command}\n".encode() * requests
for s in stalled:
    sent = 0
    deadline = time.monotonic() + 60
    while sent < len(asks) and time.monotonic() < deadline:
        try:
            sent += s.send(asks[sent:])
        except BlockingIOError:
            time.sleep(0.01)  # the server's reader is behind: pacing, not synchronisation
# Wait, with a deadline, until the backlogs stop growing.
last, steady, deadline = -1.0, 0, time.monotonic() + 120
while time.monotonic() < deadline and steady < 3:
    time.sleep(1)  # the metric is published once a second
    now = metric("threadchat_backlog_bytes")
    steady = steady + 1 if now == last else 0
    last = now
charged, after = last, rss_bytes()
grown = after - before
print(f"{clients} stalled clients x {requests} {command} with {fillers + clients} online:")
print(f"  charged to the backlog budget: {charged / 2**20:.1f} MiB")
print(f"  server RSS grew by:            {grown / 2**20:.1f} MiB "
      f"({before / 2**20:.1f} -> {after / 2**20:.1f})")
print(f"  RSS growth / charged:          {grown / charged:.2f}" if charged else "  nothing charged")
for s in held + stalled:
    s.close()
server.terminate()
server.wait(timeout=30)
PY
