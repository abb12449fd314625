#!/usr/bin/env bash
# Daemon restarts with apps running: kills the daemon (SIGKILL and SIGTERM in turn) ROUNDS times while an
# app with two web instances runs, starts it again on the same data, and prints how long after the new
# daemon process started the app answered through the proxy again, and whether its instances were adopted
# (the same pids) rather than restarted.
# Usage: Benchmarks/restart-adoption.sh [ROUNDS] [BINARY]   (default 10, .build/release/slipway or .build/debug/slipway)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
source Benchmarks/daemon.sh

"$binary" apps:create shop > /dev/null
fixture_work_tree node-hello
git -C "$work" push --quiet "$SLIPWAY_DATA/repos/shop.git" main 2> /dev/null
"$binary" ps:scale shop web=2 > /dev/null

python3 - "$binary" "$port" "$scratch" "$rounds" "$daemon" << 'PY'
import http.client, json, os, re, signal, statistics, subprocess, sys, time
binary, port, scratch, rounds, daemon = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True

def answers():
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/", headers={"Host": "shop.localhost"})
        return connection.getresponse().status == 200
    except OSError:
        return False

def pids():
    out = subprocess.run([binary, "ps", "shop", "--json"], capture_output=True, text=True).stdout
    return sorted(row["pid"] for row in json.loads(out) if row["processType"] == "web" and row["status"] == "serving")

before = pids()
times, adopted = {"SIGKILL": [], "SIGTERM": []}, 0
for round in range(rounds):
    sig = signal.SIGKILL if round % 2 == 0 else signal.SIGTERM  # the first daemon runs with --stop-apps: SIGKILL
    os.kill(daemon, sig)
    while not gone(daemon):
        time.sleep(0.005)
    started = time.monotonic()
    process = subprocess.Popen(
        [binary, "serve", "--http", f"127.0.0.1:{port}", "--ssh", "off", "--https", "off", "--drain-timeout", "5"],
        stdout=open(f"{scratch}/daemon-{round}.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    daemon = process.pid
    while not answers():
        time.sleep(0.002)
    times[sig.name].append(time.monotonic() - started)
    adopted += pids() == before
    with open(f"{scratch}/daemon.pid", "w") as f:
        f.write(str(daemon))
logged = [float(m) for r in range(rounds) for m in re.findall(r"adoption.duration=([0-9.]+) seconds",
                                                              open(f"{scratch}/daemon-{r}.log").read())]
print(f"restarts: {rounds}, instances adopted (same pids) in {adopted} of them")
for name, values in times.items():
    if values:
        print(f"after {name}: app answering through the proxy {statistics.median(values) * 1000:.0f} ms "
              f"(median) after the new daemon started, max {max(values) * 1000:.0f} ms")
print(f"adoption itself (daemon log): median {statistics.median(logged) * 1000:.1f} ms, max {max(logged) * 1000:.1f} ms")
PY
daemon=$(cat "$scratch/daemon.pid")
# This daemon leaves its apps running when it stops: the app goes first.
"$binary" apps:destroy shop --confirm shop > /dev/null
