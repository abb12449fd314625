#!/usr/bin/env bash
# Thousands of open tabs waiting for a new release: holds CLIENTS clients on the version endpoint's
# event stream (or long polls) through the real proxy, makes one release go live, and prints how long
# after the switch they were all told (median, p99, max) and the daemon's resident memory.
# Usage: Benchmarks/release-notices.sh [CLIENTS] [events|long-poll] [BINARY]   (default 10000 events)
# The daemon runs on core 0 and the load client on core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-10000}
mode=${2:-events}
# Each waiting client holds one descriptor in the daemon and one in the load client.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((clients + 200)) ] || { echo "open-file limit $(ulimit -n) is too low for $clients clients"; exit 1; }
source Benchmarks/daemon.sh "" "${3:-}"
taskset -pc 0 "$daemon" > /dev/null

"$binary" apps:create shop > /dev/null
fixture_work_tree version-prompt
git -C "$work" push --quiet "$SLIPWAY_DATA/repos/shop.git" main 2>/dev/null

taskset -c 1 python3 Benchmarks/release-notices.py "$port" shop.localhost "$daemon" "$SLIPWAY_DATA" \
    "$clients" "$mode" "$binary" config:set shop BENCHMARK_RUN="$(date +%s)"
