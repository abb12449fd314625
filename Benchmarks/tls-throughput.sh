#!/usr/bin/env bash
# The HTTPS edge next to nginx and HAProxy: the same app instance (healthcheck-app, node) behind each, all three
# terminating TLS with the same certificate and forwarding to the instance over keep-alive HTTP/1.1 with the same
# header work, pinned as proxy-throughput.sh pins them (proxies and instance on core 0, one worker/thread/event
# loop each; the load on core 1). For each key type (ECDSA P-256, RSA 2048), ROUNDS rounds of SECONDS each,
# alternating targets:
#   keep-alive  wrk -t2 -c64 over TLS 1.3, HTTP/1.1 keep-alive: req/s, p50, p99
#   resumed     wrk -t2 -c16 with Connection: close: every request a new connection, whose TLS handshake resumes
#               the session of the one before (wrk keeps it; each proxy sends session tickets, as by default)
#   full        h2load --h1 -c1000 -n1000: a thousand new connections at once, each a full handshake (h2load
#               keeps no session), one request each: handshakes per second and the mean time to the answer
#   h2          h2load -c16 -m16 (HTTP/2, 16 streams per connection): req/s, mean latency
# then the memory of 1000 idle TLS connections (handshake done, nothing sent) per proxy, per connection.
# Prints each round, the medians, and Slipway's ratio to each. wrk and h2load send SNI shop.localhost while
# connecting to 127.0.0.1 (a wrk script's resolve, h2load's --connect-to): no name needs to resolve.
# Usage: Benchmarks/tls-throughput.sh [ROUNDS] [SECONDS] [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
seconds=${2:-3}
for tool in wrk nginx h2load openssl; do
    command -v $tool > /dev/null || { echo "needs $tool: apt-get install wrk nginx-light nghttp2-client openssl"; exit 1; }
done
command -v haproxy > /dev/null || echo "haproxy is not installed (apt-get install haproxy): measuring without it"
# 1000 idle connections, and HAProxy's maxconn, need more descriptors than the usual 1024.
ulimit -n "$(ulimit -Hn)"
export SLIPWAY_MAX_CONNECTIONS_PER_ADDRESS=4096
SLIPWAY_BENCH_HTTPS=1 SLIPWAY_BENCH_CPUS=0 source Benchmarks/daemon.sh "" "${3:-}"
source Benchmarks/reference-proxies.sh

deploy_reference_app

# One self-signed certificate per key type for shop.localhost, readable by the daemon's user.
mkdir -p "$scratch/certs" && chmod 755 "$scratch/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=shop.localhost \
    -addext subjectAltName=DNS:shop.localhost -keyout "$scratch/certs/ecdsa.key" -out "$scratch/certs/ecdsa.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=shop.localhost \
    -addext subjectAltName=DNS:shop.localhost -keyout "$scratch/certs/rsa.key" -out "$scratch/certs/rsa.pem" 2>/dev/null
chmod 644 "$scratch/certs"/*
for kind in ecdsa rsa; do cat "$scratch/certs/$kind.pem" "$scratch/certs/$kind.key" > "$scratch/certs/$kind.both"; done

cat > "$scratch/sni.lua" <<'LUA'
-- Connect to 127.0.0.1 while the URL's host (shop.localhost) goes out as SNI and Host.
wrk.resolve = function(host, service) wrk.addrs = wrk.lookup("127.0.0.1", service) end
LUA

nginx_port=$(free_port)
haproxy_port=$(free_port)
nginx_master=
haproxy_pid=
trap 'set +e; [ -z "$nginx_master" ] || { kill -TERM $nginx_master $haproxy_pid; wait $nginx_master $haproxy_pid; }
    stop_daemon; rm -rf "$scratch"' EXIT

# start_proxies KIND: (re)starts nginx and HAProxy with the KIND certificate and gives it to Slipway.
start_proxies() {
    local kind=$1
    # `wait` with no pid would wait for the daemon too.
    if [ -n "$nginx_master" ]; then
        kill -TERM $nginx_master $haproxy_pid 2>/dev/null || true
        wait $nginx_master $haproxy_pid 2>/dev/null || true
    fi
    "$binary" certs:add shop --cert "$scratch/certs/$kind.pem" --key "$scratch/certs/$kind.key" > /dev/null
    nginx_config "$nginx_port" "$instance_port" " ssl http2" "        keepalive_requests 1000000;
        ssl_certificate $scratch/certs/$kind.pem;
        ssl_certificate_key $scratch/certs/$kind.key;
        ssl_protocols TLSv1.2 TLSv1.3;"
    nginx -p "$scratch/nginx" -c "$scratch/nginx/nginx.conf" &
    nginx_master=$!
    if command -v haproxy > /dev/null; then
        haproxy_config "$haproxy_port" "$instance_port" https " ssl crt $scratch/certs/$kind.both alpn h2,http/1.1"
        haproxy -db -f "$scratch/haproxy.cfg" > "$scratch/haproxy.log" 2>&1 &
        haproxy_pid=$!
    fi
    for target_port in $nginx_port ${haproxy_pid:+$haproxy_port} $https_port; do
        for _ in $(seq 50); do
            curl -kfs --resolve "shop.localhost:$target_port:127.0.0.1" "https://shop.localhost:$target_port/" > /dev/null 2>&1 && break
            sleep 0.1
        done
    done
    for pid in $daemon $instance_pid $nginx_master $(pgrep -P $nginx_master) $haproxy_pid; do
        kill -0 "$pid" 2>/dev/null || { echo "a proxy did not start:"; cat "$scratch"/haproxy.log "$scratch"/nginx/logs/error.log; exit 1; }
        taskset -a -pc 0 "$pid" > /dev/null
    done
}


# measure KIND MODE TARGET PORT PIDS: one round of MODE against TARGET, appended to the results.
measure() {
    local kind=$1 mode=$2 target=$3 target_port=$4 pids=$5 output before after url
    url="https://shop.localhost:$target_port/"
    before=$(ticks $pids)
    case $mode in
        keep-alive) output=$(taskset -c 1 wrk -t2 -c64 -d"${seconds}s" --latency -s "$scratch/sni.lua" "$url") ;;
        resumed) output=$(taskset -c 1 wrk -t2 -c16 -d"${seconds}s" --latency -s "$scratch/sni.lua" -H "Connection: close" "$url") ;;
        full) output=$(taskset -c 1 h2load --h1 -c1000 -n1000 -t1 --connect-to="127.0.0.1:$target_port" "$url") ;;
        h2) output=$(taskset -c 1 h2load -c16 -m16 -t1 -D "$seconds" --connect-to="127.0.0.1:$target_port" "$url") ;;
    esac
    after=$(ticks $pids)
    PYTHONPATH=Benchmarks python3 - "$kind" "$mode" "$target" "$output" "$before" "$after" "$(getconf CLK_TCK)" \
        <<'PY' >> "$scratch/results"
import re, sys
from wrk_output import ms, wrk
kind, mode, target, text, before, after, hz = sys.argv[1:8]
if mode in ("h2", "full"):
    if "req/s" not in text:
        sys.exit(f"h2load against {target} printed no result:\n{text}")
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
    requests = int(re.search(r"requests: (\d+) total", text).group(1))
    failed = re.search(r"(\d+) failed, (\d+) errored", text)
    errors = f"{failed.group(1)}_failed_{failed.group(2)}_errored"
    # A full handshake's cost shows in the time from connecting to the answer's first byte.
    timing = "time to 1st byte" if mode == "full" else "time for request"
    mean = ms(re.search(timing + r":\s+\S+\s+\S+\s+(\S+)", text).group(1))
    p50, p99 = mean, float("nan")
else:
    rps, requests, p50, p99, socket, non2xx = wrk(target, text)
    errors = f"{socket}/{non2xx}"
cpu = sum((int(a) - int(b)) for a, b in zip(after.split(), before.split())) * 1e6 / int(hz) / max(requests, 1)
print(kind, mode, target, rps, p50, p99, cpu, errors)
PY
}

# idle_memory KIND TARGET PORT PIDS: the resident memory the proxy's processes grow by with 1000 idle TLS
# connections (handshake done, nothing sent), per connection, in KiB.
idle_memory() {
    local kind=$1 target=$2 target_port=$3 pids=$4
    python3 - "$target_port" "$pids" <<'PY' | sed "s/^/$kind $target /" >> "$scratch/memory"
import socket, ssl, sys, time
port, pids = int(sys.argv[1]), sys.argv[2].split()
def rss():
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS"):
                total += int(line.split()[1])
    return total
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
context.set_alpn_protocols(["http/1.1"])
time.sleep(0.5)
before = rss()
held = []
for _ in range(1000):
    raw = socket.create_connection(("127.0.0.1", port))
    held.append(context.wrap_socket(raw, server_hostname="shop.localhost"))
time.sleep(1)
after = rss()
print(f"{(after - before) / 1000:.1f}")
for connection in held:
    connection.close()
PY
}

: > "$scratch/results"
: > "$scratch/memory"
for kind in ecdsa rsa; do
    start_proxies $kind
    nginx_workers=$(pgrep -P $nginx_master | tr '\n' ' ')
    # Before any load: a process that served load before keeps the memory it grew, and would seem to need none.
    idle_memory $kind nginx $nginx_port "$nginx_workers"
    [ -z "$haproxy_pid" ] || idle_memory $kind haproxy $haproxy_port "$haproxy_pid"
    idle_memory $kind slipway $https_port "$daemon"
    for round in $(seq "$rounds"); do
        for mode in keep-alive resumed full h2; do
            measure $kind $mode nginx $nginx_port "$nginx_workers"
            [ -z "$haproxy_pid" ] || measure $kind $mode haproxy $haproxy_port "$haproxy_pid"
            measure $kind $mode slipway $https_port "$daemon"
        done
    done
done

python3 - "$scratch/results" "$scratch/memory" <<'PY'
import math, statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"{'key':5} {'mode':10} {'target':8} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/req':>10}  errors")
for kind, mode, target, rps, p50, p99, cpu, errors in rows:
    print(f"{kind:5} {mode:10} {target:8} {float(rps):9.0f} {float(p50):7.2f} {float(p99):7.2f} {float(cpu):10.1f}  {errors}")
print()
for kind in ("ecdsa", "rsa"):
    for mode in ("keep-alive", "resumed", "full", "h2"):
        medians = {}
        for target in ("nginx", "haproxy", "slipway"):
            mine = [r for r in rows if r[:3] == [kind, mode, target]]
            if mine:
                medians[target] = [statistics.median(float(r[i]) for r in mine) for i in (3, 4, 5, 6)]
        latency = "mean" if mode in ("h2", "full") else "p50"
        for target, (rps, p50, p99, cpu) in medians.items():
            tail = "" if math.isnan(p99) else f"  p99 {p99:.2f} ms"
            print(f"median {kind:5} {mode:10} {target:8} {rps:9.0f} req/s  {latency} {p50:.2f} ms{tail}  CPU {cpu:.1f} us/req")
        # Within a round the targets ran back to back: their ratio there is the steadier one.
        for other in ("nginx", "haproxy"):
            if other not in medians:
                continue
            mine = [float(r[3]) for r in rows if r[:3] == [kind, mode, "slipway"]]
            theirs = [float(r[3]) for r in rows if r[:3] == [kind, mode, other]]
            ratios = [a / b for a, b in zip(mine, theirs)]
            print(f"  slipway / {other}: {medians['slipway'][0] / medians[other][0]:.2f} "
                  f"(per round {' '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f})")
print()
for line in open(sys.argv[2]):
    kind, target, kib = line.split()
    print(f"idle TLS connection, {kind}: {target} {float(kib):.1f} KiB each")
PY
