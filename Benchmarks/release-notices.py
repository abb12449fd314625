"""Holds many browsers' worth of waiting clients on the Slipway proxy (event streams or long polls),
triggers one release, and reports how long after the switch each client was told, and the daemon's memory.

Usage: release-notices.py PORT HOST DAEMON_PID DATA_DIR CLIENTS MODE TRIGGER...
MODE is `events` or `long-poll`; TRIGGER is the command that makes a new release go live."""
import asyncio
import datetime
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

port, host, daemon_pid, data, clients, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
trigger = sys.argv[7:]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def live_release():
    with sqlite3.connect(f"{data}/slipway.sqlite") as db:
        return db.execute("SELECT max(number) FROM release WHERE appName = 'shop' AND status = 'live'").fetchone()[0]


def switch_time(number):
    """When the switch to release `number` began, from its deploy record (UTC, milliseconds). The proxy
    flips a moment later in that step (after the `current` link), so delays from here slightly overstate."""
    with sqlite3.connect(f"{data}/slipway.sqlite") as db:
        row = db.execute(
            "SELECT e.startedAt FROM deployEvent e JOIN release r ON r.id = e.releaseId "
            "WHERE r.appName = 'shop' AND r.number = ? AND e.step = 'switch'",
            (number,),
        ).fetchone()
    stamp = datetime.datetime.fromisoformat(row[0]).replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


class Waiter(asyncio.Protocol):
    """One client: an EventSource-like stream, or a long poll on the current ETag."""

    def __init__(self, expected, connected, told):
        self.expected = expected
        self.connected = connected
        self.told = told
        self.received = b""
        self.ready = False
        self.at = None

    def connection_made(self, transport):
        self.transport = transport
        if mode == "events":
            request = f"GET /_slipway/events HTTP/1.1\r\nHost: {host}\r\nLast-Event-ID: {self.expected - 1}\r\n\r\n"
        else:
            request = (
                f"GET /_slipway/version?wait=60 HTTP/1.1\r\nHost: {host}\r\n"
                f"If-None-Match: \"shop-v{self.expected - 1}\"\r\n\r\n"
            )
        transport.write(request.encode())
        if mode != "events":
            self.ready = True
            self.connected()

    def data_received(self, data):
        if self.at is not None:
            return
        self.received += data
        if not self.ready and b"retry: 3000" in self.received:
            self.ready = True
            self.connected()
        marker = f"id: {self.expected}\n" if mode == "events" else f"\"release\":{self.expected},"
        if marker.encode() in self.received:
            self.at = time.time()
            self.told()

    def connection_lost(self, exc):
        if self.at is None:
            failures.append(exc or "closed")


failures = []


async def main():
    loop = asyncio.get_running_loop()
    current = live_release()
    expected = current + 1
    ready = 0
    told = 0
    all_ready = loop.create_future()
    all_told = loop.create_future()

    def connected():
        nonlocal ready
        ready += 1
        if ready == clients and not all_ready.done():
            all_ready.set_result(None)

    def heard():
        nonlocal told
        told += 1
        if told == clients and not all_told.done():
            all_told.set_result(None)

    idle_rss = rss_mib(daemon_pid)
    waiters = []
    started = time.time()
    for batch in range(0, clients, 500):
        made = [
            loop.create_connection(lambda: Waiter(expected, connected, heard), "127.0.0.1", int(port))
            for _ in range(min(500, clients - batch))
        ]
        for transport, protocol in await asyncio.gather(*made):
            waiters.append(protocol)
    await asyncio.wait_for(all_ready, 120)
    await asyncio.sleep(1)
    held_rss = rss_mib(daemon_pid)
    print(f"{clients} {mode} clients waiting on release v{current} (connected in {time.time() - started:.1f}s)")

    peak = [held_rss]
    sampling = True

    def sample():
        while sampling:
            peak[0] = max(peak[0], rss_mib(daemon_pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    deploy = await asyncio.create_subprocess_exec(*trigger, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.wait_for(all_told, 120)
    await deploy.wait()
    sampling = False
    sampler.join()

    switched = switch_time(expected)
    delays = sorted((w.at - switched) * 1000 for w in waiters)
    p99 = delays[int(len(delays) * 0.99) - 1]
    print(f"told of v{expected}: {len(delays)}/{clients}, failures: {len(failures)}")
    print(f"after the switch (ms): median {statistics.median(delays):.0f}  p99 {p99:.0f}  max {delays[-1]:.0f}"
          f"  (first {delays[0]:.0f})")
    print(f"daemon RSS (MiB): idle {idle_rss:.1f}  holding {clients} clients {held_rss:.1f}"
          f"  peak while telling them {peak[0]:.1f}")
    for waiter in waiters:
        waiter.transport.close()


asyncio.run(main())
