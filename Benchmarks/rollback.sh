#!/usr/bin/env bash
# Rollback overhead: the wall time of `slipway rollback` minus the app's own boot and health-check
# time (from the release record), over ROUNDS rollbacks of a trivial node app on loopback.
# Usage: Benchmarks/rollback.sh [ROUNDS] [BINARY]   (default 9, .build/release/slipway or .build/debug/slipway)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-9}
source Benchmarks/daemon.sh

"$binary" apps:create shop > /dev/null
fixture_work_tree healthcheck-app
git -C "$work" push --quiet "$SLIPWAY_DATA/repos/shop.git" main 2>/dev/null
git -C "$work" commit --quiet --allow-empty -m two
git -C "$work" push --quiet "$SLIPWAY_DATA/repos/shop.git" main 2>/dev/null

: > "$scratch/times"
for _ in $(seq "$rounds"); do
    start=$(date +%s.%N)
    "$binary" rollback shop > "$scratch/out"
    end=$(date +%s.%N)
    version=$(grep -o 'shop v[0-9]* is live' "$scratch/out" | grep -o 'v[0-9][0-9]*' || true)
    [ -n "$version" ] || { echo "rollback failed:"; cat "$scratch/out"; exit 1; }
    echo "$version $start $end" >> "$scratch/times"
done
"$binary" releases shop --json -n 1000 > "$scratch/releases.json"

python3 - "$scratch" <<'PY'
import json, statistics, sys
scratch = sys.argv[1]
def seconds(text):
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])
releases = {r["version"]: r for r in json.load(open(f"{scratch}/releases.json"))}
walls, overheads, health = [], [], []
for line in open(f"{scratch}/times"):
    version, start, end = line.split()
    wall = float(end) - float(start)
    d = releases[version]["durations"]
    app_time = seconds(d.get("boot", "0ms")) + seconds(d.get("health", "0ms"))
    walls.append(wall); health.append(app_time); overheads.append(wall - app_time)
print(f"rollbacks: {len(walls)}")
print(f"wall time of `slipway rollback`:  median {statistics.median(walls):.3f}s  max {max(walls):.3f}s")
print(f"app's boot + health check:        median {statistics.median(health):.3f}s")
print(f"Slipway's own overhead:           median {statistics.median(overheads):.3f}s  max {max(overheads):.3f}s")
PY
