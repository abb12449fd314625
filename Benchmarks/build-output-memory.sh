#!/usr/bin/env bash
# The daemon's memory while a deploy prints without end: an app whose release phase prints MEGABYTES of lines
# (default 300) and then one 50 MB line without a newline is pushed; the daemon's RSS is sampled every 100 ms
# from /proc. Prints its RSS idle (after a first deploy), at its peak during the noisy deploy, and after it, and
# checks that the deploy went live with its build log cut to its ends.
# Usage: Benchmarks/build-output-memory.sh [MEGABYTES] [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes=${1:-300}
source Benchmarks/daemon.sh

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$daemon/status"; }
"$binary" apps:create noisy > /dev/null
fixture_work_tree static-site
git -C "$work" push --quiet "$SLIPWAY_DATA/repos/noisy.git" main 2>/dev/null
sleep 2
idle=$(rss)

# 100-byte lines: MEGABYTES * 10,000 of them, then one line of 50 MB.
cat > "$work/noisy.sh" <<SCRIPT
yes 'a migration line of a noisy release phase, padded out to one hundred bytes with dots..............' | head -n $((megabytes * 10000))
head -c 50000000 /dev/zero | tr '\\0' z
echo
echo "release phase done"
SCRIPT
printf 'web: slipway serve-static --port $PORT public\nrelease: sh noisy.sh\n' > "$work/Procfile"
git -C "$work" add --all
git -C "$work" commit --quiet -m noisy

: > "$scratch/rss"
( while kill -0 $daemon 2>/dev/null; do rss >> "$scratch/rss"; sleep 0.1; done ) &
sampler=$!
start=$(date +%s.%N)
git -C "$work" push "$SLIPWAY_DATA/repos/noisy.git" main > "$scratch/push.out" 2>&1
end=$(date +%s.%N)
sleep 1
kill $sampler 2>/dev/null || true
after=$(rss)
grep -q "noisy v3 is live" "$scratch/push.out" || { echo "the noisy deploy did not go live:"; tail -5 "$scratch/push.out"; exit 1; }
"$binary" releases:info noisy v3 > "$scratch/info.out"

python3 - "$scratch" "$idle" "$after" "$start" "$end" "$megabytes" <<'PY'
import os, sys
scratch, idle, after, start, end, megabytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
samples = [int(line) for line in open(f"{scratch}/rss") if line.strip()]
peak = max(samples)
pushed = os.path.getsize(f"{scratch}/push.out")
info = os.path.getsize(f"{scratch}/info.out")
log = os.path.getsize(f"{scratch}/data/apps/noisy/release-logs/3.log")
print(f"release phase output: {megabytes} MB of lines and one 50 MB line; deploy took {end - start:.1f}s")
print(f"daemon RSS: idle {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB (+{(peak - idle) / 1024:.1f} MiB), after {after / 1024:.1f} MiB ({len(samples)} samples)")
print(f"the pusher got {pushed / 1e6:.1f} MB, the build log in the store is {info / 1e6:.2f} MB, the release log file {log / 1e6:.1f} MB")
PY
