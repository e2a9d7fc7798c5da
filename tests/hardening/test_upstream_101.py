"""Strict upstream 101s, black-box: an upstream answering the upgrade with
HTTP/1.0, two Sec-WebSocket-Accept fields, Content-Length or
Transfer-Encoding gets its client a 502; nothing the upstream sent after
its head reaches the client; the reason is logged and counted."""
import socket
import struct

import pytest

from conftest import CaptureUpstream
from wsgate_harness import metric, raw_connect, wait_for

# An unmasked server text frame: what a relayed byte stream would show.
LEAK = struct.pack("!BB", 0x81, 9) + b"leak-mark"


def Scripted101Upstream(head):
    """Answers every upgrade request with `head(accept)` followed by LEAK,
    then holds the connection until the peer closes it."""
    return CaptureUpstream(head=head, trailer=LEAK)


def head(version=b"HTTP/1.1", extra=b"", accepts=1):
    def build(accept):
        return (version + b" 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + b"Sec-WebSocket-Accept: " + accept + b"\r\n" + (b"Sec-WebSocket-Accept: " + accept + b"\r\n")
                * (accepts - 1) + extra + b"\r\n")
    return build


BAD = {
    "http-1.0": (head(version=b"HTTP/1.0"), "not HTTP/1.1"),
    "two-accepts": (head(accepts=2), "2 Sec-WebSocket-Accept"),
    "content-length": (head(extra=b"Content-Length: 11\r\n"), "Content-Length"),
    "content-length-0": (head(extra=b"Content-Length: 0\r\n"), "Content-Length"),
    "transfer-encoding": (head(extra=b"Transfer-Encoding: chunked\r\n"), "Transfer-Encoding"),
}


def read_all(sock, timeout=5):
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk
    except socket.timeout:
        raise AssertionError(f"proxy kept the connection open after: {out!r}")


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_upstream_101_is_a_502_and_nothing_is_relayed(case, proxy_factory):
    build, reason = BAD[case]
    up = Scripted101Upstream(build)
    try:
        proxy = proxy_factory(f"ws://127.0.0.1:{up.port}")
        admin = proxy.ports["admin"]
        sock, status, _, reader = raw_connect(proxy.ports["listen"], "/ws")
        try:
            assert status == 502, status
            rest = reader.buf + read_all(sock)  # the 502's body and then EOF
            assert b"leak-mark" not in rest, rest
        finally:
            sock.close()
        assert len(up.heads) == 1
        assert wait_for(lambda: metric(admin, "wsgate_handshakes_total", outcome="upstream_bad_response") == 1,
                        what="upstream_bad_response counted")
        assert metric(admin, "wsgate_handshakes_total", outcome="ok") == 0
        wait_for(lambda: any("bad upstream 101" in ln and reason in ln for ln in proxy.logs().splitlines()),
                 what="reason logged")
    finally:
        up.stop()


def test_good_upstream_101_is_relayed_with_what_follows(proxy_factory):
    """The control: the same fake upstream with a correct 101 gets through,
    and its first frame reaches the client (so the test above would see a
    relayed frame)."""
    up = Scripted101Upstream(head())
    try:
        proxy = proxy_factory(f"ws://127.0.0.1:{up.port}")
        sock, status, _, reader = raw_connect(proxy.ports["listen"], "/ws")
        try:
            assert status == 101
            fin, opcode, payload = reader.read()
            assert (fin, opcode, payload) == (True, 1, b"leak-mark")
        finally:
            sock.close()
        assert metric(proxy.ports["admin"], "wsgate_handshakes_total", outcome="ok") == 1
    finally:
        up.stop()
