"""A minimal HTTP/2 client that shows the frames it receives, for tests that need to see what the server sends on
the wire (a GOAWAY, say), which curl does not print. Standard library only.

Usage: h2_frames.py PORT HOST PATH
Connects to 127.0.0.1:PORT over TLS (SNI HOST, ALPN h2, certificate not checked), sends GET PATH on stream 1, and
prints one line per frame received ("SETTINGS ack", "GOAWAY last=1 error=0", "DATA stream=1 end: <text>", ...)
until stream 1 ends and the server closes, or 20 s pass."""
import socket
import ssl
import struct
import sys
import time

port, host, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
context.set_alpn_protocols(["h2"])
connection = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20), server_hostname=host)
assert connection.selected_alpn_protocol() == "h2", connection.selected_alpn_protocol()


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """An HPACK literal field without indexing, new name, no Huffman coding (RFC 7541 §6.2.2)."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


headers = b"".join(
    literal(n, v) for n, v in [(":method", "GET"), (":scheme", "https"), (":path", path), (":authority", host)]
)
connection.sendall(
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(1, 0x5, 1, headers)  # END_STREAM | END_HEADERS
)
names = {0: "DATA", 1: "HEADERS", 3: "RST_STREAM", 4: "SETTINGS", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE"}
received = b""
deadline = time.time() + 20
while time.time() < deadline:
    try:
        chunk = connection.recv(65536)
    except (ConnectionError, ssl.SSLError, socket.timeout):
        break
    if not chunk:
        break
    received += chunk
    while len(received) >= 9:
        length = int.from_bytes(received[:3], "big")
        if len(received) < 9 + length:
            break
        kind, flags = received[3], received[4]
        stream = int.from_bytes(received[5:9], "big") & 0x7FFFFFFF
        payload, received = received[9 : 9 + length], received[9 + length :]
        name = names.get(kind, f"type{kind}")
        if kind == 4:
            print("SETTINGS ack" if flags & 1 else "SETTINGS", flush=True)
            if not flags & 1:
                connection.sendall(frame(4, 1, 0))
        elif kind == 6:
            print("PING ack" if flags & 1 else "PING", flush=True)
            if not flags & 1:
                connection.sendall(frame(6, 1, 0, payload))
        elif kind == 7:
            last, error = struct.unpack(">II", payload[:8])
            print(f"GOAWAY last={last & 0x7FFFFFFF} error={error}", flush=True)
        elif kind == 0:
            end = " end" if flags & 1 else ""
            print(f"DATA stream={stream}{end}: {payload.decode(errors='replace').strip()}", flush=True)
        else:
            print(f"{name} stream={stream}{' end' if flags & 1 and kind == 1 else ''}", flush=True)
