# Sourced by the benchmarks: picks the binary (argument 2, else the release build, else the debug
# build), starts a daemon with its own data directory on a free loopback port, and stops it and
# removes everything on exit. Sets: binary, scratch, port (and https_port with SLIPWAY_BENCH_HTTPS=1), SLIPWAY_DATA, and SLIPWAY_SHARE to this checkout
# (its hooks and buildpacks, also for a BINARY outside its .build). Defines free_port, fixture_work_tree and
# stop_daemon. The daemon runs with --stop-apps, so that its apps stop with it; a benchmark that restarts it
# sets `daemon` to the new pid.
binary=${2:-}
if [ -z "$binary" ]; then
    binary=.build/release/slipway
    [ -x "$binary" ] || binary=.build/debug/slipway
fi
binary=$(realpath "$binary")
scratch=$(mktemp -d /tmp/slipway-bench-XXXXXX)
# Passable (not listable): a daemon run as root gives each app a user of its own, which must reach the data
# directory inside to run the app's build and instances.
chmod 711 "$scratch"
# free_port: a loopback port nothing listens on.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
export SLIPWAY_DATA=$scratch/data
export SLIPWAY_SHARE=${SLIPWAY_SHARE:-$PWD}
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@slipway.invalid GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@slipway.invalid
# SLIPWAY_BENCH_HTTPS=1 turns the HTTPS listener on, at https_port.
https=off
if [ "${SLIPWAY_BENCH_HTTPS:-}" = 1 ]; then https_port=$(free_port); https=127.0.0.1:$https_port; fi
# SLIPWAY_BENCH_CPUS pins the daemon (and so its apps) from the start, so it sizes its event loops to match.
${SLIPWAY_BENCH_CPUS:+taskset -c "$SLIPWAY_BENCH_CPUS"} "$binary" serve --http "127.0.0.1:$port" --ssh off --https "$https" \
    --drain-timeout 5 --stop-apps > "$scratch/daemon.log" 2>&1 &
daemon=$!
# stop_daemon: stops the daemon, and so its apps. A benchmark with its own exit trap calls it after stopping
# what it started itself. Each trap runs with set +e: `wait` fails for a child stopped by SIGTERM, which under
# set -e would end the trap before the rest is stopped.
stop_daemon() {
    # Destroyed first: a daemon run as root made a host user for each app, which only apps:destroy removes.
    for app in $("$binary" apps --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(a["name"] for a in json.load(sys.stdin)))' 2>/dev/null); do
        "$binary" apps:destroy "$app" --confirm "$app" > /dev/null 2>&1
    done
    kill -TERM $daemon 2>/dev/null
    wait $daemon 2>/dev/null
    while kill -0 $daemon 2>/dev/null; do sleep 0.1; done
}
trap 'set +e; stop_daemon; rm -rf "$scratch"' EXIT
for _ in $(seq 100); do "$binary" apps >/dev/null 2>&1 && break; sleep 0.1; done

# fixture_work_tree NAME: a git work tree of Tests/Fixtures/apps/NAME at $scratch/work-NAME with one commit;
# sets work to it.
fixture_work_tree() {
    work=$scratch/work-$1
    cp -r "Tests/Fixtures/apps/$1" "$work"
    git -C "$work" init --quiet --initial-branch=main
    git -C "$work" add --all
    git -C "$work" commit --quiet -m one
}
