"""Hardening, black-box against the real wsgate: header injection, request
smuggling after a refused upgrade, header and handshake limits, hostile
frame lengths and floods, and secrets in logs."""
import os
import re
import socket
import ssl
import struct
import time
import zlib

import pytest

from conftest import rss_kib
from wsgate_harness import (FrameReader, close_payload, frame, metric, raw_connect, read_http_response, upgrade_request,
                            wait_for, ws_key)

CID_RE = re.compile(rb"^[A-Za-z0-9._-]{8,128}$")
RSS_SLACK_KIB = 32 * 1024


def send_raw(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    status, headers, rest = read_http_response(s, timeout)
    return s, status, headers, rest


def head_lines(head):
    return head.split(b"\r\n")


def assert_clean_head(head):
    """Every line ends in CRLF (no bare CR or LF), no injected header, one
    well-formed X-Correlation-ID."""
    assert b"\n" not in head.replace(b"\r\n", b""), head
    assert b"\r" not in head.replace(b"\r\n", b""), head
    assert b"\0" not in head, head
    lines = head_lines(head)
    names = [ln.split(b":", 1)[0].strip().lower() for ln in lines[1:]]
    assert b"x-injected" not in names, head
    assert not any(ln[:1] in (b" ", b"\t") for ln in lines[1:]), head  # no obs-fold sent upstream
    cids = [ln.split(b":", 1)[1].strip() for ln in lines[1:] if ln.lower().startswith(b"x-correlation-id:")]
    assert len(cids) == 1 and CID_RE.match(cids[0]), head
    assert names.count(b"host") == 1, head


def raw_request(path="/ws", extra_lines=()):
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Upgrade: websocket", b"Connection: Upgrade",
             f"Sec-WebSocket-Key: {ws_key()}".encode(), b"Sec-WebSocket-Version: 13", *extra_lines]
    return b"\r\n".join(lines) + b"\r\n\r\n"


# Each: (what, request bytes). The request may be refused (400) or forwarded;
# forwarded, it must not carry a second header or a folded line upstream.
INJECTIONS = [
    ("cid bare CR", raw_request(extra_lines=[b"X-Correlation-ID: abcdefgh\rX-Injected: 1"])),
    ("cid bare LF", raw_request(extra_lines=[b"X-Correlation-ID: abcdefgh\nX-Injected: 1"])),
    ("cid obs-fold", raw_request(extra_lines=[b"X-Correlation-ID: abcdefgh", b" X-Injected: 1"])),
    ("cid encoded", raw_request(extra_lines=[b"X-Correlation-ID: abcdefgh%0d%0aX-Injected:%201"])),
    ("cid NUL", raw_request(extra_lines=[b"X-Correlation-ID: abcdefgh\0X-Injected: 1"])),
    ("xff bare LF", raw_request(extra_lines=[b"X-Forwarded-For: 1.2.3.4\nX-Injected: 1"])),
    ("xff bare CR", raw_request(extra_lines=[b"X-Forwarded-For: 1.2.3.4\rX-Injected: 1"])),
    ("xff obs-fold", raw_request(extra_lines=[b"X-Forwarded-For: 1.2.3.4,", b"\tX-Injected: 1"])),
    ("traceparent LF", raw_request(extra_lines=[b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-"
                                                b"b7ad6b7169203331-01\nX-Injected: 1"])),
    ("path encoded", raw_request(path="/ws%0d%0aX-Injected:%201")),
    ("path bare CR", raw_request(path="/ws\rX-Injected: 1")),
    ("path bare LF", raw_request(path="/ws\nX-Injected: 1")),
    ("path space", raw_request(path="/ws X-Injected:1")),
    ("path tab", raw_request(path="/ws\tX-Injected: 1")),
]


@pytest.mark.parametrize("what,req", INJECTIONS, ids=[w for w, _ in INJECTIONS])
def test_crlf_injection_never_reaches_upstream_as_a_header(capture, proxy_factory, what, req):
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}")
    s, status, headers, _ = send_raw(proxy.ports["listen"], req)
    s.close()
    assert status in (101, 400), (what, status)
    if status == 101:
        wait_for(lambda: capture.heads, 5, what="upstream request")
    for head in capture.heads:
        assert_clean_head(head)
        if what.startswith("path"):
            target = head_lines(head)[0].split(b" ")
            assert len(target) == 3 and target[2] == b"HTTP/1.1", head
    # The proxy's own answer to the client is clean too.
    cid = headers.get("x-correlation-id")
    if cid is not None:
        assert CID_RE.match(cid.encode()), cid


def test_refused_upgrade_opens_no_tunnel_upstream_401(upstream, proxy_factory):
    """websocket-smuggle: the upstream refuses (401); bytes the client sends
    next must not reach the upstream (as a second request or as frames)."""
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    s, status, _, _ = send_raw(proxy.ports["listen"], upgrade_request("/deny"))
    assert status == 401
    try:
        s.sendall(b"GET /smuggled HTTP/1.1\r\nHost: internal\r\n\r\n")
        s.sendall(frame(1, b"smuggled frame"))
    except OSError:
        pass
    time.sleep(1.0)
    paths = [r["path"] for r in upstream.requests()]
    assert paths == ["/deny"], paths
    assert not any(e.get("message_len") for e in upstream.events())
    s.close()


def test_refused_upgrade_opens_no_tunnel_bad_accept(capture, proxy_factory, upstream):
    """The upstream's 101 is wrong (bad accept key): the client gets a 502 and
    nothing it sends afterwards is relayed."""
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.raw}")
    s, status, _, rest = send_raw(proxy.ports["listen"], upgrade_request("/bad-accept"))
    assert status == 502
    try:
        s.sendall(frame(1, b"after 502"))
        s.sendall(b"GET /smuggled HTTP/1.1\r\nHost: internal\r\n\r\n")
    except OSError:
        pass
    time.sleep(1.0)
    assert [r["path"] for r in upstream.requests()] == ["/bad-accept"]
    s.close()


def test_refused_upgrade_by_proxy_no_tunnel(capture, proxy_factory):
    """426 (bad version) from the proxy itself: no upstream connection at all,
    even if the client pipelines a valid upgrade behind it."""
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}")
    bad = upgrade_request("/ws", version="8")
    s, status, headers, _ = send_raw(proxy.ports["listen"], bad + upgrade_request("/ws"))
    assert status == 426
    assert headers.get("sec-websocket-version") == "13"
    time.sleep(0.5)
    assert capture.heads == []
    s.close()


def test_oversized_headers_get_431(capture, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}", "--max-header-bytes", "4096")
    s, status, _, _ = send_raw(proxy.ports["listen"],
                               upgrade_request("/ws", extra={"X-Big": "a" * 8192}))
    assert status == 431
    s.close()
    # Many small headers add up the same way.
    s, status, _, _ = send_raw(proxy.ports["listen"],
                               upgrade_request("/ws", extra={f"X-H{i}": "b" * 40 for i in range(200)}))
    assert status == 431
    s.close()
    assert capture.heads == []


def test_slow_handshake_cut_at_timeout(capture, proxy_factory):
    """Slowloris: a request trickled one byte every 100 ms is cut at
    --handshake-timeout-ms, not kept alive by the trickle."""
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}", "--handshake-timeout-ms", "1000")
    s = socket.create_connection(("127.0.0.1", proxy.ports["listen"]), timeout=10)
    req = upgrade_request("/ws")
    start = time.monotonic()
    closed_at = None
    for b in req[:-4]:
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed_at = time.monotonic()
            break
        s.settimeout(0.1)
        try:
            if s.recv(4096) in (b"",) or True:
                closed_at = time.monotonic()
                break
        except socket.timeout:
            pass
        except OSError:
            closed_at = time.monotonic()
            break
        if time.monotonic() - start > 8:
            break
    s.close()
    assert closed_at is not None, "slow handshake kept open past 8 s"
    assert 0.8 <= closed_at - start <= 4.0, closed_at - start
    assert capture.heads == []


def test_silent_tls_client_cut_at_tls_timeout(capture, proxy_factory, dev_cert):
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}", "--tls-cert", dev_cert["cert"], "--tls-key",
                          dev_cert["key"], "--tls-handshake-timeout-ms", "1000")
    s = socket.create_connection(("127.0.0.1", proxy.ports["listen"]), timeout=10)
    start = time.monotonic()
    s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
    try:
        data = s.recv(4096)
    except OSError:
        data = b""
    elapsed = time.monotonic() - start
    s.close()
    assert data == b"" or data[:1] == b"\x15", data  # EOF or a TLS alert
    assert 0.8 <= elapsed <= 4.0, elapsed


def echo_session(proxy, upstream):
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    return sock, reader


def test_one_tib_length_refused_1009_without_allocating(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    pid = proxy.proc.pid
    sock, reader = echo_session(proxy, upstream)
    before = rss_kib(pid)
    # Binary frame announcing 2^40 bytes, masked, with a little payload.
    sock.sendall(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 40) + b"mask" + os.urandom(1024))
    sock.settimeout(10)
    code, _ = reader.read_close()
    assert code == 1009
    assert rss_kib(pid) - before < RSS_SLACK_KIB
    sock.close()
    wait_for(lambda: metric(proxy.ports["admin"], "wsgate_closes_total", code="1009", initiator="proxy") == 1,
             10, what="the 1009 recorded")


def test_msb_set_length_is_a_protocol_error(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    sock, reader = echo_session(proxy, upstream)
    sock.sendall(struct.pack("!BBQ", 0x82, 0x80 | 127, (1 << 63) + 5) + b"mask" + b"hello")
    sock.settimeout(10)
    code, _ = reader.read_close()
    assert code in (1002, 1009)
    sock.close()


def test_tiny_fragment_flood_capped(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--max-fragments", "1000")
    pid = proxy.proc.pid
    sock, reader = echo_session(proxy, upstream)
    before = rss_kib(pid)
    flood = frame(2, b"x", fin=False) + b"".join(frame(0, b"x", fin=False) for _ in range(5000))
    try:
        sock.sendall(flood)
    except OSError:
        pass
    sock.settimeout(10)
    code, _ = reader.read_close()
    assert code == 1009
    assert rss_kib(pid) - before < RSS_SLACK_KIB
    sock.close()


def test_empty_fragment_flood_capped(upstream, proxy_factory):
    """Zero-length continuation frames count as fragments too."""
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--max-fragments", "100")
    sock, reader = echo_session(proxy, upstream)
    try:
        sock.sendall(frame(1, b"", fin=False) + b"".join(frame(0, b"", fin=False) for _ in range(1000)))
    except OSError:
        pass
    sock.settimeout(10)
    code, _ = reader.read_close()
    assert code == 1009
    sock.close()


def test_control_frame_flood_without_rss_growth(upstream, proxy_factory):
    """30 000 pings of 125 bytes (4 MiB) sent without reading the pongs: the
    proxy applies backpressure instead of buffering; afterwards the session
    still works and RSS has not grown."""
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    pid = proxy.proc.pid
    sock, reader = echo_session(proxy, upstream)
    before = rss_kib(pid)
    pings = b"".join(frame(9, os.urandom(125)) for _ in range(30000))
    sock.settimeout(30)
    import threading
    drained = {"frames": 0, "pongs": 0}

    def drain():
        try:
            while True:
                _, op, _ = reader.read()
                drained["frames"] += 1
                if op == 10:
                    drained["pongs"] += 1
                if op == 1:
                    break
        except (EOFError, OSError):
            pass
    # First push the flood without reading (backpressure), then read.
    sender = threading.Thread(target=lambda: sock.sendall(pings))
    sender.start()
    time.sleep(2)
    peak = rss_kib(pid)
    t = threading.Thread(target=drain)
    t.start()
    sender.join(30)
    sock.sendall(frame(1, b"still alive"))
    t.join(30)
    assert drained["pongs"] == 30000, drained
    assert peak - before < RSS_SLACK_KIB, (before, peak)
    sock.sendall(frame(8, struct.pack("!H", 1000)))
    sock.close()


def deflate_bomb(inflated_mib):
    """A permessage-deflate message body (RFC 7692: sync-flushed, without the
    00 00 ff ff tail) that inflates to `inflated_mib` MiB of zeros."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    body = b"".join(c.compress(zeros) for _ in range(inflated_mib)) + c.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(b"\x00\x00\xff\xff")
    return body[:-4]


def test_compression_bombs_cross_the_proxy_without_inflating(capture, proxy_factory):
    """The proxy never inflates on the data path: eight permessage-deflate
    messages that would inflate to 256 MiB each (2 GiB in all, about 2 MiB
    on the wire) reach the upstream byte for byte, and the proxy's RSS does
    not grow with them. (The one place the proxy inflates, an incident's last
    message, is bounded: see test_incidents_fake and incident_test.)"""
    capture.extensions = "permessage-deflate"
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}")
    pid = proxy.proc.pid
    sock, status, headers, _ = raw_connect(proxy.ports["listen"], "/ws",
                                           extra={"Sec-WebSocket-Extensions": "permessage-deflate"})
    assert status == 101
    assert headers.get("sec-websocket-extensions") == "permessage-deflate"
    bomb = deflate_bomb(256)
    assert len(bomb) < (1 << 20)
    wire = b"".join(frame(2, bomb, rsv=4) for _ in range(8)) + frame(8, close_payload(1000))
    before = rss_kib(pid)
    sock.sendall(wire)
    sock.shutdown(socket.SHUT_WR)
    wait_for(lambda: capture.after, 20, what="the upstream to see the end of the stream")
    assert capture.after[0] == wire
    assert rss_kib(pid) - before < RSS_SLACK_KIB
    # The tap decoded every bomb (RSV1 allowed: deflate was negotiated).
    wait_for(lambda: metric(proxy.ports["admin"], "wsgate_frames_total", direction="client_to_upstream",
                            opcode="binary") == 8, 10, what="8 binary frames counted")
    assert metric(proxy.ports["admin"], "wsgate_protocol_violations_total", direction="client_to_upstream",
                  kind="reserved_bits") == 0
    sock.close()


def test_no_token_in_logs(upstream, proxy_factory, dev_cert):
    jwt = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdGFnaW5nLWUyZS11c2VyLTAwMSJ9."
           "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
    sig = jwt.split(".")[2]
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--log-format", "json")
    port = proxy.ports["listen"]
    for path, extra in [
        ("/echo", {"Authorization": "Bearer " + jwt}),
        ("/echo?token=" + jwt, {}),
        ("/echo", {"Sec-WebSocket-Protocol": "jwt-auth, jwt." + jwt}),
        ("/deny", {"Authorization": "Bearer " + jwt}),
        ("/close/1011", {"Authorization": "Bearer " + jwt}),
        ("/say-then-close/1011", {"Authorization": "Bearer " + jwt}),
    ]:
        sock, status, _, reader = raw_connect(port, path, extra=extra)
        if status == 101:
            try:
                sock.sendall(frame(1, ("hello " + jwt).encode()))
                sock.settimeout(5)
                reader.read()
                sock.sendall(frame(8, struct.pack("!H", 1000)))
                reader.read_close()
            except (EOFError, OSError, socket.timeout):
                pass
        sock.close()
    # Bad requests are logged too.
    s, status, _, _ = send_raw(port, upgrade_request("/x?access_token=" + jwt, version="8",
                                                     extra={"Authorization": "Bearer " + jwt}))
    s.close()
    time.sleep(1)
    logs = proxy.logs()
    assert sig not in logs
    assert jwt.split(".")[1] not in logs


def test_handshake_rate_per_ip(capture, proxy_factory):
    """--handshake-rate-per-ip 5: a burst of 20 connections from one IP gets
    at most ~5 upgrades; the rest are closed before any HTTP (or TLS)."""
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}", "--handshake-rate-per-ip", "5")
    ok = closed = 0
    socks = []
    for _ in range(20):
        try:
            s, status, _, _ = send_raw(proxy.ports["listen"], upgrade_request("/ws"), timeout=5)
            socks.append(s)
            ok += status == 101
            closed += status == 0
        except OSError:
            closed += 1
    for s in socks:
        s.close()
    assert 1 <= ok <= 7, (ok, closed)
    assert closed >= 13
    assert metric(proxy.ports["admin"], "wsgate_handshakes_total", outcome="rate_limited") >= 13
