"""How sessions end: relayed closes, dead peers, drain, idle, violations, TLS."""
import asyncio
import signal
import socket
import ssl
import struct
import time

import websockets

from wsgate_harness import (Proc, Upstream, close_payload, frame, http_get, metric, raw_connect,
                            wait_for)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_upstream_dies_client_gets_1014(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/die")
    assert status == 101
    sock.sendall(frame(1, b"trigger"))
    assert reader.read_close() == (1014, "upstream went away")
    assert reader.eof()
    admin = proxy.ports["admin"]
    # Counted as the client received it; the upstream's end has its own counter.
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1014", initiator="proxy") == 1,
             what="1014 from the proxy counted")
    assert metric(admin, "wsgate_upstream_lost_total") == 1
    assert metric(admin, "wsgate_closes_total", code="1006", initiator="upstream") == 0


def test_upstream_dies_mid_frame_bare_tcp_close(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/die-midframe")
    assert status == 101
    sock.sendall(frame(1, b"trigger"))
    sock.settimeout(5)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    # The partial frame header arrived, and nothing after it: no close frame
    # was spliced into the middle of a frame.
    assert reader.buf + data == b"\x82\x7e\x10\x00partial"
    admin = proxy.ports["admin"]
    # No close could reach the client: it saw a bare TCP end, 1006.
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1006", initiator="upstream") == 1)
    assert metric(admin, "wsgate_upstream_lost_total") == 1
    assert metric(admin, "wsgate_closes_total", code="1014", initiator="proxy") == 0


# A close frame that arrives together with its sender's FIN gives one
# readiness edge for both: the proxy must still read on to the end and pass
# it on, long before the close timeout (10 s here) would end the session.
def test_upstream_close_and_fin_in_one_segment(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--close-timeout-ms", "10000")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/close-with-fin")
    assert status == 101
    sock.sendall(frame(1, b"trigger"))
    start = time.monotonic()
    assert reader.read_close() == (1000, "bye")
    assert reader.eof(timeout=8)
    assert time.monotonic() - start < 3
    sock.close()
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_connections_active") == 0, timeout=3)


def test_client_close_and_fin_in_one_segment(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--close-timeout-ms", "10000")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    sock.sendall(frame(1, b"hello"))
    assert reader.read() == (True, 1, b"hello")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    sock.send(frame(8, struct.pack("!H", 1000) + b"done"))
    sock.shutdown(socket.SHUT_WR)
    start = time.monotonic()
    assert reader.read_close() == (1000, "done")
    assert reader.eof(timeout=8)
    admin = proxy.ports["admin"]
    # The session ends when the proxy has read both ends, not at the timeout.
    wait_for(lambda: metric(admin, "wsgate_connections_active") == 0, timeout=3)
    assert time.monotonic() - start < 3


def test_client_vanishes_upstream_gets_1001(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo",
                                          extra={"X-Correlation-ID": "vanishing-client"})
    assert status == 101
    sock.sendall(frame(1, b"hello"))
    assert reader.read() == (True, 1, b"hello")
    sock.close()
    events = wait_for(lambda: [e for e in upstream.events()
                               if e.get("cid") == "vanishing-client" and "close_code" in e])
    assert events[0]["close_code"] == 1001
    assert events[0]["close_reason"] == "client went away"
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1006", initiator="client") == 1)


def test_sigterm_drains_with_1001_both_ways(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--drain-timeout", "5")
    admin = proxy.ports["admin"]
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo",
                                          extra={"X-Correlation-ID": "draining-session"})
    assert status == 101
    assert http_get(admin, "/readyz")[0] == 200
    proxy.signal(signal.SIGTERM)
    assert reader.read_close() == (1001, "going away")
    # /readyz answers 503 while the session drains.
    assert http_get(admin, "/readyz")[0] == 503
    sock.sendall(frame(8, close_payload(1001)))
    assert proxy.wait(10) == 0
    events = wait_for(lambda: [e for e in upstream.events()
                               if e.get("cid") == "draining-session" and "close_code" in e])
    assert events[0]["close_code"] == 1001


def test_idle_timeout_closes_with_1001(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--idle-timeout", "1")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    t0 = time.monotonic()
    assert reader.read_close() == (1001, "idle timeout")
    assert time.monotonic() - t0 >= 0.9
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_timeouts_total", kind="idle") == 1)
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1001", initiator="proxy") == 1)


def test_unmasked_client_frame_gets_1002_and_upstream_1001(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo",
                                          extra={"X-Correlation-ID": "violating-client"})
    assert status == 101
    sock.sendall(frame(1, b"fine"))
    assert reader.read() == (True, 1, b"fine")
    sock.sendall(frame(1, b"unmasked", mask=False))
    assert reader.read_close() == (1002, "mask_missing")
    events = wait_for(lambda: [e for e in upstream.events()
                               if e.get("cid") == "violating-client" and "close_code" in e])
    assert events[0]["close_code"] == 1001
    # The upstream never saw the bad frame: only "fine" arrived.
    msgs = [e for e in upstream.events() if e.get("cid") == "violating-client" and "message_len" in e]
    assert [m["message_len"] for m in msgs] == [4]
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1002", initiator="proxy") == 1)
    assert metric(admin, "wsgate_protocol_violations_total", direction="client_to_upstream",
                  kind="mask_missing") == 1


def test_oversized_message_gets_1009_observe_mode_only_counts(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--max-message-bytes", "1000")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    sock.sendall(frame(2, b"x" * 1001))
    assert reader.read_close() == (1009, "message_too_big")

    observer = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--max-message-bytes", "1000",
                             "--tap-mode", "observe")
    sock, status, _, reader = raw_connect(observer.ports["listen"], "/echo")
    sock.sendall(frame(2, b"y" * 1001))
    assert reader.read() == (True, 2, b"y" * 1001)
    sock.sendall(frame(8, close_payload(1000)))
    assert reader.read_close() == (1000, "")
    admin = observer.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1000", initiator="client") == 1)
    assert metric(admin, "wsgate_protocol_violations_total", direction="client_to_upstream",
                  kind="message_too_big") == 1


def test_masked_server_frame_gets_1002_to_upstream(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.raw}")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/masked-server-frame")
    assert status == 101
    # The client is told 1001: its peer broke the protocol.
    assert reader.read_close() == (1001, "peer violated the protocol")
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_protocol_violations_total", direction="upstream_to_client",
                            kind="mask_unexpected") == 1)


def test_tls_listener_and_wss_upstream(dev_cert, proxy_factory):
    tls_upstream = Upstream(dev_cert["cert"], dev_cert["key"])
    try:
        proxy = proxy_factory(f"wss://localhost:{tls_upstream.ws}", "--upstream-ca", dev_cert["ca"],
                              "--tls-cert", dev_cert["cert"], "--tls-key", dev_cert["key"])
        ctx = ssl.create_default_context(cafile=dev_cert["ca"])

        async def go():
            async with websockets.connect(f"wss://localhost:{proxy.ports['listen']}/echo",
                                          ssl=ctx) as ws:
                await ws.send("over tls both ways")
                return await ws.recv(), ws.response_headers["X-Correlation-ID"]
        text, cid = run(go())
        assert text == "over tls both ways"
        assert len(cid) == 32
        h = {k.lower(): v for k, v in tls_upstream.requests()[-1]["headers"].items()}
        assert h["x-forwarded-proto"] == "https"
        admin = proxy.ports["admin"]
        assert metric(admin, "wsgate_tls_cert_expiry_timestamp_seconds") > time.time()
        # TLS 1.1 is refused.
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.minimum_version = ssl.TLSVersion.TLSv1
        try:
            with socket.create_connection(("127.0.0.1", proxy.ports["listen"])) as raw:
                with old.wrap_socket(raw, server_hostname="localhost"):
                    raise AssertionError("TLS 1.1 handshake succeeded")
        except ssl.SSLError:
            pass
        wait_for(lambda: metric(admin, "wsgate_handshakes_total", outcome="tls_failed") >= 1)
    finally:
        tls_upstream.stop()


def test_wss_upstream_with_wrong_ca_is_502(dev_cert, proxy_factory, tmp_path):
    tls_upstream = Upstream(dev_cert["cert"], dev_cert["key"])
    try:
        # Verify against the system CAs only: the dev CA is unknown there.
        proxy = proxy_factory(f"wss://localhost:{tls_upstream.ws}")
        sock, status, _, _ = raw_connect(proxy.ports["listen"], "/echo")
        assert status == 502
    finally:
        tls_upstream.stop()


def test_sighup_reloads_certificate_without_dropping_sessions(dev_cert, upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--tls-cert", dev_cert["cert"],
                          "--tls-key", dev_cert["key"])
    ctx = ssl.create_default_context(cafile=dev_cert["ca"])

    async def go():
        url = f"wss://localhost:{proxy.ports['listen']}/echo"
        async with websockets.connect(url, ssl=ctx) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            proxy.signal(signal.SIGHUP)
            await asyncio.sleep(0.3)
            await ws.send("after reload")
            assert await ws.recv() == "after reload"
            async with websockets.connect(url, ssl=ctx) as ws2:
                await ws2.send("new session")
                assert await ws2.recv() == "new session"
    run(go())
