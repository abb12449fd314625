#!/usr/bin/env bash
# Deploys under load: DEPLOYS consecutive `git push` deploys (empty commits) of node-hello, whose health
# check on /health fails for the first 3 s of each instance (WARMUP_SECONDS), while a load client keeps
# 32 keep-alive connections sending GET / back to back, 4 sending GET /slow?ms=1500 and 16 WebSockets
# echoing a message every 200 ms through the proxy. Prints the deploys' push and switch times and the client's report:
# answers by release, failed requests by kind, the longest gap between two answers on a connection,
# WebSocket closes by kind and reconnect times. Exits 1 if a deploy or any request or WebSocket failed.
# With taskset, the daemon starts pinned to core 0 (so do the builds and the app's instances it starts) and
# the load client runs on core 1; without it nothing is pinned.
# KEEP_LOGS=DIR keeps the daemon's log and database and each push's output and times there.
# HTTPS=1 loads the HTTPS listener instead (a self-signed certificate given with certs:add): every connection is
# TLS, and 4 more clients send each request on a new connection, so new handshakes go on through the deploys.
# Usage: Benchmarks/deploys-under-load.sh [DEPLOYS] [BINARY]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
deploys=${1:-20}
daemon_cpus= client_pin=()
if command -v taskset > /dev/null; then daemon_cpus=0 client_pin=(taskset -c 1); fi
SLIPWAY_BENCH_HTTPS=${HTTPS:-} SLIPWAY_BENCH_CPUS=$daemon_cpus source Benchmarks/daemon.sh "" "${2:-}"
client=
# daemon.sh's trap, with the load client stopped first.
trap 'set +e; [ -z "$client" ] || { kill -TERM $client 2>/dev/null; wait $client 2>/dev/null; }
    stop_daemon
    [ -z "${KEEP_LOGS:-}" ] || { mkdir -p "$KEEP_LOGS"; cp -r "$scratch"/{daemon.log,pushes,data/slipway.sqlite} "$KEEP_LOGS"; }
    rm -rf "$scratch"' EXIT

"$binary" apps:create shop > /dev/null
"$binary" config:set shop WARMUP_SECONDS=3 > /dev/null
fixture_work_tree node-hello
cat > "$work/app.json" <<'JSON'
{
  "healthchecks": {
    "web": [
      { "type": "startup", "path": "/health", "content": "ok", "attempts": 30, "wait": 1, "initialDelay": 0, "timeout": 3 }
    ]
  }
}
JSON
git -C "$work" add app.json
git -C "$work" commit --quiet -m "health check on /health"
mkdir "$scratch/pushes"

# One push; fails loudly unless its output says the new release is live. Appends "vN start end" to times.
push() {
    local out=$scratch/pushes/$1 start end
    start=$(date +%s.%N)
    git -C "$work" push "$SLIPWAY_DATA/repos/shop.git" main > "$out" 2>&1 || true
    end=$(date +%s.%N)
    local version
    version=$(grep -o 'shop v[0-9]* is live' "$out" | grep -o 'v[0-9][0-9]*' || true)
    [ -n "$version" ] || { echo; echo "push $1 did not make a release live:"; cat "$out"; exit 1; }
    echo "$version $start $end" >> "$scratch/pushes/times"
}
push 0
rm "$scratch/pushes/times"

client_port=$port new_connections=0
if [ "${HTTPS:-}" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=shop.localhost \
        -addext subjectAltName=DNS:shop.localhost -keyout "$scratch/key.pem" -out "$scratch/cert.pem" 2>/dev/null
    chmod 644 "$scratch"/{key,cert}.pem
    "$binary" certs:add shop --cert "$scratch/cert.pem" --key "$scratch/key.pem" > /dev/null
    client_port=$https_port new_connections=4
fi
TLS=${HTTPS:-} "${client_pin[@]}" python3 Benchmarks/deploys-under-load.py shop.localhost "$client_port" 32 4 16 \
    "$new_connections" &
client=$!
sleep 2
printf 'deploying:'
for n in $(seq "$deploys"); do
    git -C "$work" commit --quiet --allow-empty -m "deploy $n"
    push "$n"
    printf ' %s' "$(tail -n 1 "$scratch/pushes/times" | cut -d' ' -f1)"
done
echo
python3 - "$scratch/pushes" "$deploys" <<'PY'
import re, statistics, sys
pushes, count = sys.argv[1], int(sys.argv[2])
walls = [float(end) - float(start) for _, start, end in (line.split() for line in open(f"{pushes}/times"))]
print(f"{len(walls)} deploys, each live; git push took median {statistics.median(walls):.1f}s, max {max(walls):.1f}s")
# The verdict line's "switch 0.4ms": from the new set being healthy to the proxy sending it every request.
unit = {"ms": 1, "µs": 0.001, "s": 1000}
switches = []
for n in range(1, count + 1):
    value, scale = re.search(r"switch ([0-9.]+)(ms|µs|s)\)", open(f"{pushes}/{n}").read()).groups()
    switches.append(float(value) * unit[scale])
print(f"switch (healthy -> proxy switched): median {statistics.median(switches):.2f} ms, max {max(switches):.2f} ms")
PY
# The last switch's old WebSockets are closed over the next 10 s.
sleep 12
kill -TERM "$client"
status=0
wait "$client" || status=$?
client=
exit "$status"
