"""Load client of deploys-under-load.sh: keeps HTTP keep-alive connections and WebSockets busy through the
proxy until SIGINT or SIGTERM, then prints what it saw and exits 0, or 1 if anything failed.

Usage: deploys-under-load.py HOST PORT [FAST] [SLOW] [WEBSOCKETS] [NEW]   (default 32 4 16 0)
  FAST connections send `GET /` back to back, SLOW ones `GET /slow?ms=1500`; each WebSocket on /ws sends a
  text message every 200 ms and checks the echo, and reconnects at once when it is closed. NEW clients send
  `GET /` with `Connection: close`, each request on a new connection (over TLS, a new handshake).
  With TLS=1 in the environment every connection is TLS, with HOST as its SNI (the certificate is not checked).
Standard library only: a minimal HTTP/1.1 client (Content-Length and chunked bodies) and WebSocket client."""
import asyncio
import base64
import collections
import hashlib
import math
import os
import re
import signal
import ssl
import statistics
import struct
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
fast_count, slow_count, websocket_count, new_count = [int(a) for a in sys.argv[3:7]] + [32, 4, 16, 0][len(sys.argv[3:7]) :]
tls = None
if os.environ.get("TLS") == "1":
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    tls.set_alpn_protocols(["http/1.1"])
TIMEOUT = 10  # seconds: one request (slow ones too), a connect + upgrade, an echo
SLOW_MS = 1500
MESSAGE_EVERY = 0.2
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

sent = collections.Counter()  # "fast" / "slow" / "new" -> requests written
answered = collections.Counter()  # "fast" / "slow" -> 2xx answers
unfinished = collections.Counter()  # "fast" / "slow" -> in flight at the stop
releases = collections.Counter()  # release named by a `GET /` answer -> answers
failures = collections.Counter()  # "connect error", "reset/closed early", "timeout", "non-2xx", ...
statuses = collections.Counter()  # non-2xx status -> answers
longest_gap = {"fast": (0.0, 0.0), "slow": (0.0, 0.0), "new": (0.0, 0.0)}  # -> (seconds between two answers, when it ended)
closes = collections.Counter()  # "1001", other codes, "abnormal" (no close frame)
abnormal_before_echo = [0]  # abnormal closes of connections that had not echoed yet: right after the 101
ws_failures = collections.Counter()  # "echo: ...", "connect: ..." -> count
echoes = collections.Counter()  # "ok", "unanswered" (in flight when the connection closed)
switch_gaps = []  # seconds between a connection's last answer from one release and its first from the next
reconnects = []  # seconds from a close to the first echo on the next connection
first_failures = []  # (when, what): the first few, to line up with the daemon's log
stall = [0.0, 0.0]  # the client's own longest event-loop stall (seconds late, when), to tell its gaps from the proxy's


def record(counter, kind, detail=""):
    counter[kind] += 1
    if len(first_failures) < 8:
        first_failures.append((time.time(), kind + (f": {detail}" if detail else "")))


def clock(at):
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"


class ConnectFailed(Exception):
    pass


class UpgradeRefused(Exception):
    pass


def kind_of(error):
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, (asyncio.IncompleteReadError, ConnectionError)):
        return "reset/closed early"
    return f"error {type(error).__name__}"


async def connect():
    try:
        async with asyncio.timeout(TIMEOUT):
            if tls:
                return await asyncio.open_connection("127.0.0.1", port, ssl=tls, server_hostname=host)
            return await asyncio.open_connection("127.0.0.1", port)
    except (OSError, TimeoutError) as error:
        raise ConnectFailed(repr(error)) from error


async def read_head(reader):
    """The status and lower-cased headers of a response."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ", 2)[1]), headers


async def read_body(reader, status, headers):
    if status in (204, 304) or status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return bytes(body)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()  # ends with the connection


async def http_client(kind, path):
    """One keep-alive connection sending `path` back to back; reopened after a failure. Kind "new": a new
    connection for each request."""
    close = "Connection: close\r\n" if kind == "new" else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{close}\r\n".encode()
    last_answer = None
    last_release = None
    writer = None
    while True:
        in_flight = False
        try:
            if writer is None:
                reader, writer = await connect()
            sent[kind] += 1
            in_flight = True
            async with asyncio.timeout(TIMEOUT):
                writer.write(request)
                await writer.drain()
                status, headers = await read_head(reader)
                body = await read_body(reader, status, headers)
            in_flight = False
            now = time.time()
            if 200 <= status < 300:
                answered[kind] += 1
                if kind in ("fast", "new"):
                    match = re.search(rb"release (\S+)", body)
                    release = match.group(1).decode() if match else "?"
                    releases[release] += 1
                    if last_release not in (None, release):
                        switch_gaps.append(now - last_answer)
                    last_release = release
                if last_answer is not None and now - last_answer > longest_gap[kind][0]:
                    longest_gap[kind] = (now - last_answer, now)
                last_answer = now
            else:
                statuses[status] += 1
                record(failures, "non-2xx", f"{path} {status} {body[:60]!r}")
            if headers.get("connection", "").lower() == "close":
                writer.close()
                writer = None
        except asyncio.CancelledError:
            unfinished[kind] += in_flight
            raise
        except ConnectFailed as error:
            record(failures, "connect error", f"{path} {error}")
            await asyncio.sleep(0.1)  # no spinning while nothing listens
        except Exception as error:
            record(failures, kind_of(error), f"{path} {error!r}")
            writer.close()
            writer = None


def frame(opcode, payload):
    """A final, masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader):
    """The opcode and payload of the next frame (the echo server never fragments)."""
    first, second = await reader.readexactly(2)
    n = second & 0x7F
    if n == 126:
        n = struct.unpack(">H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4) if second & 0x80 else None
    payload = await reader.readexactly(n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return first & 0x0F, payload


async def upgrade():
    reader, writer = await connect()
    try:
        async with asyncio.timeout(TIMEOUT):
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            await writer.drain()
            status, headers = await read_head(reader)
            if status != 101:
                raise UpgradeRefused(f"status {status} {(await read_body(reader, status, headers))[:60]!r}")
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            if headers.get("sec-websocket-accept") != accept:
                raise UpgradeRefused("wrong Sec-WebSocket-Accept")
        return reader, writer
    except BaseException:
        writer.close()
        raise


async def websocket_client(number):
    """One WebSocket: a message every 200 ms, each echo checked; reconnects at once when closed."""
    sequence = 0
    closed_at = None  # when the previous connection ended; the reconnect lasts until the first echo
    while True:
        try:
            reader, writer = await upgrade()
        except asyncio.CancelledError:
            raise
        except ConnectFailed as error:
            record(ws_failures, "connect error", str(error))
            await asyncio.sleep(0.1)
            continue
        except Exception as error:
            record(ws_failures, f"upgrade {kind_of(error) if not isinstance(error, UpgradeRefused) else 'refused'}",
                   str(error))
            await asyncio.sleep(0.1)
            continue
        pending = collections.deque()  # (message, when sent)
        echoed = False

        async def send():
            nonlocal sequence
            try:
                while True:
                    sequence += 1
                    message = f"ws {number} message {sequence}".encode()
                    pending.append((message, time.time()))
                    writer.write(frame(0x1, message))
                    await writer.drain()
                    await asyncio.sleep(MESSAGE_EVERY)
            except ConnectionError:
                pass  # the reader sees it too

        sender = asyncio.create_task(send())
        try:
            while True:
                deadline = pending[0][1] + TIMEOUT if pending else time.time() + TIMEOUT
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.time())):
                        opcode, payload = await read_frame(reader)
                except TimeoutError:
                    if not pending:
                        continue
                    record(ws_failures, "no echo within 10 s")
                    break
                if opcode == 0x1:
                    expected = pending.popleft()[0] if pending else None
                    if payload != expected:
                        record(ws_failures, "wrong echo", f"{payload[:40]!r}, expected {expected!r}")
                        continue
                    echoes["ok"] += 1
                    echoed = True
                    if closed_at is not None:
                        reconnects.append(time.time() - closed_at)
                        closed_at = None
                elif opcode == 0x9:
                    writer.write(frame(0xA, payload))
                elif opcode == 0x8:
                    code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                    if code == 1001:
                        closes["1001"] += 1
                    else:
                        record(closes, str(code), payload[2:].decode(errors="replace"))
                    sender.cancel()
                    writer.write(frame(0x8, payload[:2]))
                    break
        except asyncio.CancelledError:
            pending.clear()  # in flight at the stop, not lost
            raise
        except Exception as error:
            abnormal_before_echo[0] += not echoed
            record(closes, "abnormal", ("before the first echo: " if not echoed else "") + repr(error))
        finally:
            sender.cancel()
            echoes["unanswered"] += len(pending)
            writer.close()
        closed_at = time.time()


async def watch_stalls():
    """How late a 10 ms sleep wakes up: the client itself stalled (CPU, GC) for that long."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.01)
        late = time.monotonic() - before - 0.01
        if late > stall[0]:
            stall[:] = [late, time.time()]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]


def listed(counter):
    return ", ".join(f"{k} {n}" for k, n in sorted(counter.items()))


def report(seconds):
    def line(label, text):
        print(f"  {label:<21}{text}")

    print(f"{seconds:.0f}s of load{' over TLS' if tls else ''}: {fast_count} connections GET /, {slow_count} GET "
          f"/slow?ms={SLOW_MS}, {new_count} GET / each on a new connection, {websocket_count} WebSockets")
    print("HTTP requests")
    total = {k: sent[k] for k in ("fast", "slow", "new")}
    line("sent", f"{sum(total.values()):>7}   (GET / {total['fast']}, slow {total['slow']}, new {total['new']})")
    line("answered 2xx", f"{sum(answered.values()):>7}   (GET / {answered['fast']}, slow {answered['slow']}, "
         f"new {answered['new']})")
    by_release = sorted(releases.items(), key=lambda item: int(re.sub(r"\D", "", item[0]) or -1))
    for start in range(0, max(1, len(by_release)), 6):
        line("GET / by release" if start == 0 else "", "  ".join(f"{r:>4} {n:<6}" for r, n in by_release[start : start + 6]).rstrip() or "-")
    line("failed", f"{sum(failures.values()):>7}")
    for kind in ("connect error", "reset/closed early", "timeout"):
        line(f"  {kind}", f"{failures[kind]:>5}")
    line("  non-2xx", f"{failures['non-2xx']:>5}" + (f"   ({listed(statuses)})" if statuses else ""))
    for kind in sorted(set(failures) - {"connect error", "reset/closed early", "timeout", "non-2xx"}):
        line(f"  {kind}", f"{failures[kind]:>5}")
    line("in flight at stop", f"{sum(unfinished.values()):>7}")
    gap, at = longest_gap["fast"]
    line("longest gap, GET /", f"{gap * 1000:>7.0f} ms" + (f"   (ended {clock(at)})" if at else ""))
    if switch_gaps:
        ms = [g * 1000 for g in switch_gaps]
        line("  at a release change", f"{statistics.median(ms):>7.0f} ms median, max {max(ms):.0f}   ({len(ms)} changes seen)")
    gap, at = longest_gap["slow"]
    line("longest gap, slow", f"{gap * 1000:>7.0f} ms" + (f"   (ended {clock(at)}; a request is {SLOW_MS})" if at else ""))
    line("client's own stall", f"{stall[0] * 1000:>7.0f} ms" + (f"   (ended {clock(stall[1])}; its event loop late)" if stall[1] else ""))
    print("WebSockets")
    line("echoes", f"{echoes['ok']:>7}   ({echoes['unanswered']} unanswered when their connection closed)")
    other = collections.Counter({k: n for k, n in closes.items() if k not in ("1001", "abnormal")})
    line("closes", f"{sum(closes.values()):>7}   (1001 going away {closes['1001']}, "
         f"other codes {sum(other.values())}{' [' + listed(other) + ']' if other else ''}, abnormal {closes['abnormal']}"
         + (f" [{abnormal_before_echo[0]} right after the upgrade]" if abnormal_before_echo[0] else "") + ")")
    echo_failures = sum(n for k, n in ws_failures.items() if "echo" in k)
    line("echo failures", f"{echo_failures:>7}")
    connect_failures = collections.Counter({k: n for k, n in ws_failures.items() if "echo" not in k})
    line("failed connects", f"{sum(connect_failures.values()):>7}" + (f"   ({listed(connect_failures)})" if connect_failures else ""))
    if reconnects:
        ms = [r * 1000 for r in reconnects]
        line("reconnect (ms)", f"{len(ms):>7}   median {statistics.median(ms):.0f}, p99 {percentile(ms, 0.99):.0f}, "
             f"max {max(ms):.0f}")
    else:
        line("reconnects", "      0")
    if first_failures:
        print("first failures")
        for at, text in first_failures:
            print(f"  {clock(at)}  {text}")


def failed():
    return bool(sum(failures.values()) + sum(ws_failures.values()) + sum(n for k, n in closes.items() if k != "1001"))


async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = time.time()
    tasks = [asyncio.create_task(http_client("fast", "/")) for _ in range(fast_count)]
    tasks += [asyncio.create_task(http_client("slow", f"/slow?ms={SLOW_MS}")) for _ in range(slow_count)]
    tasks += [asyncio.create_task(http_client("new", "/")) for _ in range(new_count)]
    tasks += [asyncio.create_task(websocket_client(n)) for n in range(websocket_count)]
    tasks.append(asyncio.create_task(watch_stalls()))
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    report(time.time() - started)
    return 1 if failed() else 0


sys.exit(asyncio.run(main()))
