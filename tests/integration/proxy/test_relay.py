"""Bytes flow both ways unchanged; frames, closes and bytes are counted exactly."""
import asyncio
import hashlib
import os
import random
import socket
import ssl
import time

import websockets

from upstream import flood_payload
from wsgate_harness import (FrameReader, close_payload, frame, metric, metrics, raw_connect, read_http_response,
                            upgrade_request, wait_for)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_random_messages_round_trip_by_hash(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    rng = random.Random(6455)
    sizes = [0, 1, 125, 126, 127, 65535, 65536, 65537] + [rng.randint(0, 4 << 20) for _ in range(6)]

    async def go():
        url = f"ws://127.0.0.1:{proxy.ports['listen']}/echo"
        async with websockets.connect(url, max_size=None, compression=None) as ws:
            for size in sizes:
                data = os.urandom(size)
                await ws.send(data)
                back = await ws.recv()
                assert hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest(), size
            text = "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(5000))
            await ws.send(text)
            assert await ws.recv() == text
    run(go())
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1000", initiator="client") == 1,
             what="close counted")
    n = len(sizes)
    assert metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="binary") == n
    assert metric(admin, "wsgate_frames_total", direction="upstream_to_client", opcode="binary") == n
    assert metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="text") == 1
    assert metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="close") == 1
    assert metric(admin, "wsgate_frames_total", direction="upstream_to_client", opcode="close") == 1
    assert metric(admin, "wsgate_handshakes_total", outcome="ok") == 1
    assert metric(admin, "wsgate_connections_active") == 0
    # Client frames carry a 4-byte mask; both directions carry the same payloads.
    c2u = metric(admin, "wsgate_bytes_total", direction="client_to_upstream")
    u2c = metric(admin, "wsgate_bytes_total", direction="upstream_to_client")
    assert c2u - u2c == 4 * (n + 2)
    # The start-up line says how many workers run and why.
    workers = int(metric(admin, "wsgate_workers"))
    assert workers >= 1
    assert f"{workers} worker" in proxy.logs()


def test_reader_that_stalls_still_gets_every_byte_in_order(upstream, proxy_factory):
    # The proxy sends each chunk at once when the socket takes it and hands
    # the rest to an asynchronous write when it does not: a client that stops
    # reading fills its socket, so most chunks take the second way.
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    count, size = 64, 256 * 1024
    sock = socket.create_connection(("127.0.0.1", proxy.ports["listen"]), timeout=20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(upgrade_request(f"/flood/{count}/{size}"))
    status, _, rest = read_http_response(sock)
    assert status == 101
    sock.sendall(frame(0x2, b"go"))
    time.sleep(1.5)  # the proxy's writes to us fill the socket and wait
    reader = FrameReader(sock, rest)
    for i in range(count):
        fin, op, payload = reader.read()
        assert (fin, op, len(payload)) == (True, 0x2, size), i
        assert payload == flood_payload(i, size), f"message {i} corrupted"
    sock.sendall(frame(0x8, close_payload(1000)))
    assert reader.read_close()[0] == 1000
    sock.close()
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_connections_active") == 0, what="session end")
    assert metric(admin, "wsgate_frames_total", direction="upstream_to_client", opcode="binary") == count


def test_fragmented_message_with_pings_in_between(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    parts = [os.urandom(1000), os.urandom(70000), os.urandom(3)]
    sock.sendall(frame(2, parts[0], fin=False))
    sock.sendall(frame(9, b"p1"))
    sock.sendall(frame(0, parts[1], fin=False))
    sock.sendall(frame(9, b"p2"))
    sock.sendall(frame(0, parts[2], fin=True))
    got, pongs = [], []
    while not got:
        fin, op, payload = reader.read()
        if op == 0xA:
            pongs.append(payload)
        elif op == 2:
            got.append(payload)
    assert got[0] == b"".join(parts)
    while len(pongs) < 2:
        _, op, payload = reader.read()
        if op == 0xA:
            pongs.append(payload)
    assert sorted(pongs) == [b"p1", b"p2"]
    sock.sendall(frame(8, close_payload(1000)))
    assert reader.read_close() == (1000, "")
    sock.close()
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1000", initiator="client") == 1)
    assert metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="continuation") == 2
    assert metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="ping") == 2
    # The client pinged, the upstream answered: two passive RTT samples.
    assert metric(admin, "wsgate_ping_rtt_seconds_count") == 2


def test_close_codes_and_reasons_both_ways(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    listen = proxy.ports["listen"]

    async def client_closes():
        async with websockets.connect(f"ws://127.0.0.1:{listen}/echo",
                                      extra_headers={"X-Correlation-ID": "client-close-4001"}) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(code=4001, reason="client says bye")

    async def upstream_closes():
        async with websockets.connect(f"ws://127.0.0.1:{listen}/close/1011") as ws:
            await ws.send("go")
            try:
                await ws.recv()
            except websockets.ConnectionClosed as e:
                return e.code, e.reason
        return ws.close_code, ws.close_reason

    run(client_closes())
    assert run(upstream_closes()) == (1011, "Internal error")
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1011", initiator="upstream") == 1)
    assert metric(admin, "wsgate_closes_total", code="4001", initiator="client") == 1
    events = wait_for(lambda: [e for e in upstream.events() if e.get("close_code") == 4001])
    assert events[0]["close_reason"] == "client says bye"
    assert events[0]["cid"] == "client-close-4001"


def test_ping_from_upstream_measures_rtt(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{proxy.ports['listen']}/ping") as ws:
            await ws.send("start")
            assert await ws.recv() == "pinged"
    run(go())
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_ping_rtt_seconds_count") == 1, what="rtt sample")
    # Frame counts are published when the session ends, which may come just
    # after the client saw the close: wait for that, as for the close count.
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1000", initiator="client") == 1,
             what="the session's close recorded")
    assert metric(admin, "wsgate_frames_total", direction="upstream_to_client", opcode="ping") == 1
    assert metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="pong") == 1


def test_only_the_matching_pong_is_an_rtt_sample(upstream, proxy_factory):
    """The upstream pings b"rtt-probe"; the client first answers with pongs
    that do not match (same length, one byte off; another length), then with
    the right one 1.2 s later: exactly one RTT sample, and it is the late
    one (a wrong pong taken as the answer would give a sample of ~1 ms and
    leave the right one unmatched)."""
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/ping")
    assert status == 101
    sock.sendall(frame(1, b"start"))
    _, op, payload = reader.read()
    assert (op, payload) == (9, b"rtt-probe")
    admin = proxy.ports["admin"]
    sock.sendall(frame(10, b"rtt-probX") + frame(10, b"rtt"))
    time.sleep(1.2)
    sock.sendall(frame(10, b"rtt-probe"))
    _, op, payload = reader.read()
    assert (op, payload) == (1, b"pinged")
    sock.sendall(frame(8, close_payload(1000)))
    assert reader.read_close()[0] == 1000
    sock.close()
    # Frame counts are published when the session ends.
    wait_for(lambda: metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="pong") == 3,
             what="three pongs counted")
    assert metric(admin, "wsgate_ping_rtt_seconds_count") == 1
    assert metric(admin, "wsgate_ping_rtt_seconds_sum") >= 1.2


def test_tls_small_records_relayed_unchanged_and_counted_once(upstream, proxy_factory, dev_cert):
    # The listener drains every TLS record OpenSSL has read ahead into one
    # relay buffer before writing upstream. Send what makes that batch
    # large: 300 messages of one record each in one burst, a 256 KiB
    # message cut into 4 KiB records (as Beast clients write). (The close
    # goes after the echoes: the upstream drops echoes once it has a close.)
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--tls-cert", dev_cert["cert"],
                          "--tls-key", dev_cert["key"])
    ctx = ssl.create_default_context(cafile=dev_cert["ca"])
    raw = socket.create_connection(("127.0.0.1", proxy.ports["listen"]), timeout=20)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    sock.sendall(upgrade_request("/echo", host="localhost"))
    status, _, rest = read_http_response(sock)
    assert status == 101
    rng = random.Random(1011)
    small = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))) for _ in range(300)]
    big = os.urandom(256 * 1024)
    for payload in small:
        sock.sendall(frame(2, payload))  # one TLS record per call
    wire = frame(2, big)
    for off in range(0, len(wire), 4096):
        sock.sendall(wire[off:off + 4096])
    reader = FrameReader(sock, rest)
    for i, payload in enumerate(small):
        fin, op, back = reader.read()
        assert (fin, op) == (True, 2), i
        assert back == payload, i
    fin, op, back = reader.read()
    assert (fin, op) == (True, 2)
    assert hashlib.sha256(back).digest() == hashlib.sha256(big).digest()
    sock.sendall(frame(8, close_payload(1000, b"done")))
    assert reader.read_close() == (1000, "done")
    sock.close()
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1000", initiator="client") == 1,
             what="close counted")
    n = len(small) + 1
    assert metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="binary") == n
    assert metric(admin, "wsgate_frames_total", direction="upstream_to_client", opcode="binary") == n
    assert metric(admin, "wsgate_frames_total", direction="client_to_upstream", opcode="close") == 1
    violations = sum(v for k, v in metrics(admin).items() if k.startswith("wsgate_protocol_violations_total{"))
    assert violations == 0


def test_tls_close_notify_behind_the_last_message_ends_the_session_at_once(upstream, proxy_factory,
                                                                          dev_cert):
    # The client's last message and its close_notify arrive in one segment and
    # its TCP stays open. The listener reads both records in one batch; the
    # close_notify must still end the client side now, not when the client
    # finally closes TCP.
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--tls-cert", dev_cert["cert"],
                          "--tls-key", dev_cert["key"])
    ctx = ssl.create_default_context(cafile=dev_cert["ca"])
    raw = socket.create_connection(("127.0.0.1", proxy.ports["listen"]), timeout=10)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")

    def flush():
        data = outgoing.read()
        if data:
            raw.sendall(data)

    def pull():
        chunk = raw.recv(65536)
        assert chunk, "proxy closed the connection"
        incoming.write(chunk)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            pull()
    flush()
    tls.write(upgrade_request("/echo", host="localhost"))
    flush()
    head = b""
    while b"\r\n\r\n" not in head:
        try:
            head += tls.read(65536)
        except ssl.SSLWantReadError:
            pull()
    assert head.split(b"\r\n")[0].split()[1] == b"101"
    tls.write(frame(2, b"last words"))
    try:
        tls.unwrap()  # queues our close_notify; the proxy's is not awaited
    except ssl.SSLWantReadError:
        pass
    raw.sendall(outgoing.read())  # the data record and the close_notify, together
    admin = proxy.ports["admin"]
    wait_for(lambda: metric(admin, "wsgate_closes_total", code="1006", initiator="client") == 1,
             timeout=3, what="client end recorded while its TCP is still open")
    raw.close()
