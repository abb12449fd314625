"""no-web: a worker with no web process; prints a line every second until SIGTERM."""
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

tick = 0
while True:
    tick += 1
    print(f"worker tick {tick}", flush=True)
    time.sleep(1)
