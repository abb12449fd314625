#!/usr/bin/env bash
# Slow clients against the proxy: CONNECTIONS (default 2000) connections each send a 31 KB request head and never
# finish it, from 8 loopback addresses (under the per-address limit). Prints the daemon's RSS before, while they
# are held and after they are closed, and the latency of another app's requests meanwhile, against the same
# requests with no flood. The header and request deadlines are raised so the flood is held until it is closed.
# Usage: Benchmarks/slow-clients.sh [CONNECTIONS] [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-2000}
export SLIPWAY_HEADER_TIMEOUT=300 SLIPWAY_REQUEST_TIMEOUT=300
source Benchmarks/daemon.sh
ulimit -n 16384

for app in flooded other; do
    "$binary" apps:create $app > /dev/null
    fixture_work_tree static-site
    git -C "$work" push --quiet "$SLIPWAY_DATA/repos/$app.git" main 2>/dev/null
    rm -rf "$work"
done
sleep 1

python3 - "$port" "$connections" "$daemon" <<'PY'
import socket, statistics, sys, time
port, count, daemon = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def rss():
    for line in open(f"/proc/{daemon}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

def latencies(rounds=300):
    times = []
    connection = socket.create_connection(("127.0.0.1", port))
    request = b"GET / HTTP/1.1\r\nHost: other.localhost\r\n\r\n"
    for _ in range(rounds):
        start = time.perf_counter()
        connection.sendall(request)
        answer = b""
        while b"</html>" not in answer.lower() and b"\r\n\r\n" not in answer:
            answer += connection.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(body) < length:
            body += connection.recv(65536)
        times.append((time.perf_counter() - start) * 1000)
    connection.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]

quiet = latencies()
before = rss()
head = b"GET / HTTP/1.1\r\nHost: flooded.localhost\r\nX-Padding: " + b"p" * (31 * 1024 - 60)
held, refused = [], 0
start = time.time()
for index in range(count):
    s = socket.socket()
    s.bind((f"127.0.0.{2 + index % 8}", 0))
    s.connect(("127.0.0.1", port))
    s.sendall(head)
    held.append(s)
time.sleep(2)
during = rss()
flooded = latencies()
# Were they all held? A refused one has a 503 waiting.
for s in held:
    s.setblocking(False)
    try:
        if s.recv(64).startswith(b"HTTP/1.1 503"):
            refused += 1
    except BlockingIOError:
        pass
for s in held:
    s.close()
# The daemon hands freed memory back 2 s after a burst of closes.
time.sleep(4)
after = rss()
print(f"{count} partial 31 KB heads from 8 addresses ({refused} refused 503), sent in {time.time() - start - 2:.1f}s")
print(f"daemon RSS: before {before:.1f} MiB, while held {during:.1f} MiB (+{during - before:.1f}), "
      f"after closing {after:.1f} MiB (+{after - before:.1f} over before)")
print(f"another app's requests, median / p99: {quiet[0]:.2f} / {quiet[1]:.2f} ms without the flood, "
      f"{flooded[0]:.2f} / {flooded[1]:.2f} ms while it is held")
PY
