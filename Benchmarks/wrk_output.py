# What wrk printed (run with --latency), read the same way by proxy-throughput.sh and tls-throughput.sh, which
# put this folder on PYTHONPATH.
import re
import sys


def ms(value):
    """A wrk or h2load duration (`812.50us`, `3.2ms`, `1.1s`) in milliseconds."""
    number, unit = re.match(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(target, text):
    """Requests per second, requests, p50 and p99 in ms, socket errors (`none` or wrk's words) and non-2xx count."""
    if "Requests/sec" not in text:
        sys.exit(f"wrk against {target} printed no result:\n{text}")
    socket = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return (
        float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        int(re.search(r"(\d+) requests in", text).group(1)),
        ms(re.search(r"^\s+50%\s+(\S+)", text, re.MULTILINE).group(1)),
        ms(re.search(r"^\s+99%\s+(\S+)", text, re.MULTILINE).group(1)),
        socket.group(1).replace(" ", "_") if socket else "none",
        int(non2xx.group(1)) if non2xx else 0,
    )
