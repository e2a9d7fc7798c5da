"""Fixtures of the hardening tests: the real wsgate (WSGATE_BIN, default
build-test/bin/wsgate) in front of tests/integration/lib/upstream.py or of a
raw capturing upstream that records the exact bytes of the upgrade request."""
import base64
import hashlib
import os
import socket
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "lib"))
from proxy_fixtures import dev_cert, proxy_factory_at, upstream  # noqa: E402,F401
from wsgate_harness import rss_kib  # noqa: E402,F401  (test_hardening imports it from here)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.fixture
def proxy_factory():
    # debug: the no-token-in-logs test reads every line the proxy can write.
    yield from proxy_factory_at("debug")


class CaptureUpstream:
    """Accepts connections, records the raw bytes of each request head and
    answers a correct 101 (agreeing to `extensions` when set), or
    `head(accept)` when given, followed by `trailer`; then reads and records
    what follows."""

    def __init__(self, head=None, trailer=b""):
        self.head = head
        self.trailer = trailer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.after = []
        self.extensions = None
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            self.heads.append(head)
            key = b""
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"sec-websocket-key:"):
                    key = line.split(b":", 1)[1].strip()
            accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
            ext = f"Sec-WebSocket-Extensions: {self.extensions}\r\n".encode() if self.extensions else b""
            answer = self.head(accept) if self.head else (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n" + ext + b"\r\n")
            c.sendall(answer + self.trailer)
            got = rest
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
            self.after.append(got)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


@pytest.fixture
def capture():
    c = CaptureUpstream()
    yield c
    c.stop()
