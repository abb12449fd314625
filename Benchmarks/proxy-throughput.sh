#!/usr/bin/env bash
# Proxy throughput and latency next to nginx and HAProxy: the same app instance (healthcheck-app, node) loaded
# by wrk directly, through nginx and HAProxy each configured as a competent reverse proxy (keep-alive to the
# instance) doing the header work Slipway's proxy does on every request (X-Forwarded-For, -Proto and -Host, an
# X-Request-Id kept or made, the release stamped on the answer), and through Slipway's proxy, alternating,
# ROUNDS rounds of SECONDS each. Prints req/s and p50/p99 per target, the medians, Slipway's ratio to each
# (overall and per round), the CPU time each proxy spends per request, and the daemon's resident memory idle
# and under load. HAProxy is left out, with a note, where it is not installed.
# The instance and the proxy under test share core 0 (the daemon starts pinned, so it runs one event loop,
# as nginx runs one worker and HAProxy one thread); wrk (-t2 -c64, keep-alive) runs on core 1.
# Usage: Benchmarks/proxy-throughput.sh [ROUNDS] [SECONDS] [BINARY]   (default 10 rounds of 3 s: on a noisy
# machine, many short rounds pair the targets more closely than a few long ones, for the per-round ratios)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
seconds=${2:-3}
command -v wrk > /dev/null && command -v nginx > /dev/null || { echo "needs wrk and nginx: apt-get install wrk nginx-light"; exit 1; }
command -v haproxy > /dev/null || echo "haproxy is not installed (apt-get install haproxy): measuring without it"
SLIPWAY_BENCH_CPUS=0 source Benchmarks/daemon.sh "" "${3:-}"
source Benchmarks/reference-proxies.sh

deploy_reference_app

nginx_port=$(free_port)
nginx_config "$nginx_port" "$instance_port"
nginx -p "$scratch/nginx" -c "$scratch/nginx/nginx.conf" &
nginx_master=$!
haproxy_pid=
trap 'set +e; kill -TERM $nginx_master $haproxy_pid 2>/dev/null; wait $nginx_master $haproxy_pid 2>/dev/null
    stop_daemon; rm -rf "$scratch"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$nginx_port/" > /dev/null 2>&1 && break; sleep 0.1; done

if command -v haproxy > /dev/null; then
    haproxy_port=$(free_port)
    haproxy_config "$haproxy_port" "$instance_port" http
    haproxy -db -q -f "$scratch/haproxy.cfg" &
    haproxy_pid=$!
    for _ in $(seq 50); do curl -fs "http://127.0.0.1:$haproxy_port/" > /dev/null 2>&1 && break; sleep 0.1; done
fi

for pid in $daemon $instance_pid $nginx_master $(pgrep -P $nginx_master) $haproxy_pid; do taskset -a -pc 0 "$pid" > /dev/null; done
# The comparison assumes one event loop, like nginx's one worker and HAProxy's one thread: a build that ignores
# the daemon's loop count (one per CPU it may run on) would run two here, taking turns on core 0.
loops=$(cat /proc/$daemon/task/*/comm | grep -c '^NIO-SGLTN-' || true)
[ "$loops" = 1 ] || { echo "the daemon, pinned to core 0, runs $loops event loops instead of 1: check its build flags"; exit 1; }
rss() { awk '/VmRSS/ { print $2 / 1024 }' "/proc/$daemon/status"; }
idle_rss=$(rss)


run() {  # target url host [proxy pids, whose CPU time per request is reported]
    local output before after
    before=$(ticks ${4:-})
    output=$(taskset -c 1 wrk -t2 -c64 -d"${seconds}s" --latency -H "Host: $3" "$2")
    after=$(ticks ${4:-})
    PYTHONPATH=Benchmarks python3 - "$1" "$output" "$before" "$after" "$(getconf CLK_TCK)" <<'PY' >> "$scratch/results"
import sys
from wrk_output import wrk
target, text, before, after, hz = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), int(sys.argv[5])
rps, requests, p50, p99, errors, non2xx = wrk(target, text)
user, system = ((int(a) - int(b)) * 1e6 / hz / requests for a, b in zip(after, before))
print(target, rps, p50, p99, user, system, errors, non2xx)
PY
}

: > "$scratch/results"
peak_rss=$idle_rss
for round in $(seq "$rounds"); do
    run direct "http://127.0.0.1:$instance_port/" shop.localhost
    run nginx "http://127.0.0.1:$nginx_port/" shop.localhost "$(pgrep -P $nginx_master)"
    [ -z "$haproxy_pid" ] || run haproxy "http://127.0.0.1:$haproxy_port/" shop.localhost "$haproxy_pid"
    ( while sleep 0.5; do rss; done > "$scratch/rss" ) &
    sampler=$!
    run slipway "http://127.0.0.1:$port/" shop.localhost $daemon
    kill $sampler; wait $sampler 2>/dev/null || true
    peak_rss=$(sort -n "$scratch/rss" <(echo "$peak_rss") | tail -1)
done

python3 - "$scratch/results" "$idle_rss" "$peak_rss" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"{'target':8} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'proxy CPU us/request':>21}  socket errors / non-2xx")
for target, rps, p50, p99, user, system, errors, non2xx in rows:
    cpu = f"{float(user) + float(system):5.1f} ({float(user):.1f} user)" if target != "direct" else "-"
    print(f"{target:8} {float(rps):9.0f} {float(p50):7.2f} {float(p99):7.2f} {cpu:>21}  {errors} / {non2xx}")
medians = {}
for target in ("direct", "nginx", "haproxy", "slipway"):
    mine = [r for r in rows if r[0] == target]
    if not mine:
        continue
    medians[target] = [statistics.median(float(r[i]) for r in mine) for i in (1, 2, 3, 4, 5)]
    rps, p50, p99, user, system = medians[target]
    cpu = f"  proxy CPU {user + system:.1f} us/request ({user:.1f} user, {system:.1f} system)" if target != "direct" else ""
    print(f"median {target:8} {rps:9.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms{cpu}")
proxies = [p for p in ("nginx", "haproxy") if p in medians]
print("   ".join(f"slipway / {p} throughput: {medians['slipway'][0] / medians[p][0]:.2f}" for p in proxies))
# The machine's speed drifts: a round's targets ran back to back, so their ratio within the round is the steadier one.
rps = lambda target: [float(r[1]) for r in rows if r[0] == target]
round_ratios = {p: [a / b for a, b in zip(rps("slipway"), rps(p))] for p in proxies}
print("   ".join(
    f"slipway / {p} per round: " + " ".join(f"{r:.2f}" for r in ratios)
    + f" (median {statistics.median(ratios):.2f})"
    for p, ratios in round_ratios.items()))
print("   ".join(f"{p} / direct: {medians[p][0] / medians['direct'][0]:.2f}" for p in proxies + ["slipway"]))
print(f"daemon RSS: idle {float(sys.argv[2]):.1f} MiB, peak under load {float(sys.argv[3]):.1f} MiB")
PY
