"""python-hello: Slipway's Python fixture. GET / answers a hello line naming the release and commit."""
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "5000"))
RELEASE = os.environ.get("SLIPWAY_RELEASE", "unknown")
COMMIT = os.environ.get("SLIPWAY_COMMIT", "unknown")[:7]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            self.answer(200, f"hello from {os.environ.get('SLIPWAY_APP', 'python-hello')} release {RELEASE} commit {COMMIT}\n")
        else:
            self.answer(404, "not found\n")

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)


def on_sigterm(signum, frame):
    print("received SIGTERM, shutting down", flush=True)
    # shutdown() waits for serve_forever() to return, so it must run on another thread.
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, on_sigterm)
print(f"listening on 127.0.0.1:{PORT}", flush=True)
server.serve_forever(poll_interval=0.1)
server.server_close()
