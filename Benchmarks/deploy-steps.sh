#!/usr/bin/env bash
# Deploy overhead per step: pushes each fixture app ROUNDS times to a fresh daemon on loopback and
# prints the median duration of every deploy step (from `slipway releases --json`).
# Usage: Benchmarks/deploy-steps.sh [ROUNDS] [BINARY]   (default 5, .build/release/slipway or .build/debug/slipway)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
source Benchmarks/daemon.sh

for fixture in node-hello python-hello static-site healthcheck-app; do
    "$binary" apps:create "$fixture" > /dev/null
    fixture_work_tree "$fixture"
    for round in $(seq "$rounds"); do
        [ "$round" -gt 1 ] && git -C "$work" commit --quiet --allow-empty -m "round $round"
        git -C "$work" push --quiet "$SLIPWAY_DATA/repos/$fixture.git" main 2>&1 | grep -E -- '-----> .* (is live|failed)' | sed 's/^remote: //'
    done
    "$binary" releases "$fixture" --json > "$scratch/$fixture.json"
done

python3 - "$scratch" "$rounds" <<'PY'
import json, statistics, sys
scratch, rounds = sys.argv[1], int(sys.argv[2])
steps = ["checkout", "build", "boot", "health", "switch", "drain"]
def seconds(text):
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])
print(f"\nmedian of {rounds} deploys per fixture (seconds)")
print("fixture".ljust(16) + "".join(s.rjust(10) for s in steps))
for fixture in ["node-hello", "python-hello", "static-site", "healthcheck-app"]:
    releases = [r for r in json.load(open(f"{scratch}/{fixture}.json")) if r["status"] in ("live", "retired")]
    row = fixture.ljust(16)
    for step in steps:
        values = [seconds(r["durations"][step]) for r in releases if step in r["durations"]]
        row += (f"{statistics.median(values):.3f}" if values else "-").rjust(10)
    print(row)
PY
