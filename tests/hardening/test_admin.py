"""The admin surface of both binaries, black-box: hostile bytes in every
parameter, methods and HEAD as HTTP says, oversized headers, a client that
never reads, the bearer token, and relay latency while /connections is
polled. After each, the proxy must still answer /healthz and relay."""
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

from proxy_fixtures import WSGATE, start_proxy
from wsgate_harness import Proc, frame, metric, raw_connect, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "incidents"))
import incident_harness as ih  # noqa: E402

BACKEND = os.environ.get("WSGATE_BACKEND_BIN", "build-test/bin/wsgate-backend")
JWT_SECRET = "admin-tests-secret-0123456789abcdef"
TOKEN = "admin-token-0123456789"

PROXY_ENDPOINTS = [b"/metrics", b"/healthz", b"/readyz", b"/connections", b"/incidents",
                   b"/incidents/some-correlation-id"]
BACKEND_ENDPOINTS = [b"/metrics", b"/healthz", b"/debug/traces", b"/debug/traces/some-correlation-id"]


# ------------------------------------------------------------------ helpers

def request(target, method=b"GET", headers=()):
    return (method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + b"".join(h + b"\r\n" for h in headers) + b"\r\n")


def parse_answer(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete answer: {data[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def ask(port, target=b"/healthz", method=b"GET", headers=(), raw=None, timeout=10):
    """One request on its own connection (Connection: close); the whole
    answer up to the server's close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(raw if raw is not None else request(target, method, headers))
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return parse_answer(data)


def bearer(token):
    return b"Authorization: Bearer " + token.encode()


def echo_once(sock, reader, payload):
    sock.sendall(frame(1, payload))
    while True:
        _, op, got = reader.read()
        if op == 1:
            return got


def assert_alive_and_relaying(proxy):
    assert proxy.proc.poll() is None, proxy.logs()[-3000:]
    assert ask(proxy.ports["admin"], b"/healthz")[0] == 200
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    try:
        assert status == 101
        assert echo_once(sock, reader, b"still relaying") == b"still relaying"
    finally:
        sock.close()


def start_backend(tmp_path, *extra):
    secret = tmp_path / "jwt.secret"
    secret.write_text(JWT_SECRET)
    return Proc([BACKEND, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--jwt-secret-file",
                 str(secret), *extra])


@pytest.fixture
def backends():
    started = []
    yield started
    for p in started:
        p.stop()


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "admin.token"
    path.write_text(TOKEN + "\n")
    return str(path)


# ---------------------------------------------------------- hostile bytes

BAD_TARGETS = [
    b"/incidents?code=%FF", b"/incidents?stage=%FF", b"/incidents?since=%FF",
    b"/incidents?limit=%C3%28", b"/incidents?code=1011&since=%C3%28", b"/incidents/%FF",
    b"/incidents/%C3%28", b"/incidents?%FF=1", b"/incidents?code=%00",
    b"/incidents/\xff", b"/incidents?code=\xff", b"/incidents?limit=\xc3\x28", b"/incidents/\x80abc",
    b"/connections?limit=%FF", b"/connections?offset=%C3%28", b"/connections?limit=\xff",
    b"/metrics?x=%FF", b"/healthz/%FF", b"/readyz\xff", b"/%FF",
]


def test_proxy_bad_bytes_in_every_parameter_are_400(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    admin = proxy.ports["admin"]
    for target in BAD_TARGETS:
        status, headers, body = ask(admin, target)
        assert status == 400, (target, status, body)
        assert headers["content-type"] == "application/json", target
        json.loads(body)
    assert metric(admin, "wsgate_admin_errors_total", reason="bad_target") == len(BAD_TARGETS)
    assert_alive_and_relaying(proxy)


def test_backend_bad_bytes_in_every_parameter_are_400(tmp_path, backends):
    backend = start_backend(tmp_path)
    backends.append(backend)
    admin = backend.ports["admin"]
    targets = [b"/debug/traces?limit=%FF", b"/debug/traces?limit=%C3%28", b"/debug/traces/%FF",
               b"/debug/traces/%C3%28", b"/debug/traces/\xff", b"/debug/traces?limit=\xc3\x28",
               b"/metrics?x=%FF", b"/healthz\x80"]
    for target in targets:
        status, _, body = ask(admin, target)
        assert status == 400, (target, status, body)
        json.loads(body)
    assert metric(admin, "wsgate_backend_admin_errors_total", reason="bad_target") == len(targets)
    assert backend.proc.poll() is None
    assert ask(admin, b"/healthz")[0] == 200


def test_connections_with_a_non_utf8_upgrade_target(capture, proxy_factory):
    """A session whose upgrade target holds bytes >= 0x80 is listed as valid
    JSON (the bytes replaced or redacted), never a dead proxy."""
    proxy = proxy_factory(f"ws://127.0.0.1:{capture.port}")
    s = socket.create_connection(("127.0.0.1", proxy.ports["listen"]), timeout=10)
    s.sendall(b"GET /ws/\xff\xfe?q=\xc3\x28 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\nX-Correlation-ID: non-utf8-target-1\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk

    def listed():
        status, _, body = ask(proxy.ports["admin"], b"/connections")
        assert status == 200, body
        return json.loads(body)
    if head.startswith(b"HTTP/1.1 101"):
        page = wait_for(listed, what="listed session")
        assert page[0]["correlation_id"] == "non-utf8-target-1"
    else:  # refused at the listener: no session to list
        assert head.startswith(b"HTTP/1.1 400"), head
        assert listed() == []
    s.close()
    assert proxy.proc.poll() is None
    assert ask(proxy.ports["admin"], b"/healthz")[0] == 200


# ------------------------------------------------------ methods and HEAD

ODD_METHODS = [b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"]


def check_methods(port, endpoints):
    for target in endpoints:
        for method in ODD_METHODS:
            status, headers, _ = ask(port, target, method, headers=[b"Content-Length: 0"])
            assert status == 405, (target, method, status)
            assert headers.get("allow") == "GET, HEAD", (target, method, headers)
        get_status, get_headers, get_body = ask(port, target)
        head_status, head_headers, head_body = ask(port, target, b"HEAD")
        assert head_status == get_status, target
        assert head_body == b"", target
        assert head_headers["content-type"] == get_headers["content-type"], target
        if target == b"/metrics":  # the counters move between the two requests
            assert int(head_headers["content-length"]) > 0
        else:
            assert int(head_headers["content-length"]) == len(get_body) > 0, target


def test_proxy_methods_405_with_allow_and_head_with_the_get_length(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    check_methods(proxy.ports["admin"], PROXY_ENDPOINTS)
    assert metric(proxy.ports["admin"], "wsgate_admin_errors_total", reason="method_not_allowed") == \
        len(PROXY_ENDPOINTS) * len(ODD_METHODS)
    assert_alive_and_relaying(proxy)


def test_backend_methods_405_with_allow_and_head_with_the_get_length(tmp_path, backends):
    backend = start_backend(tmp_path)
    backends.append(backend)
    check_methods(backend.ports["admin"], BACKEND_ENDPOINTS)


# ---------------------------------------------- oversized and broken requests

def test_huge_header_is_431_and_garbage_400_on_both(upstream, proxy_factory, tmp_path, backends):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    backend = start_backend(tmp_path)
    backends.append(backend)
    big = b"X-Big: " + b"a" * (20 * 1024)
    for port in (proxy.ports["admin"], backend.ports["admin"]):
        status, headers, body = ask(port, b"/healthz", headers=[big])
        assert status == 431, (port, status, body)
        assert headers.get("connection") == "close"
        status, _, _ = ask(port, raw=b"NOT AN HTTP REQUEST AT ALL\r\n\r\n")
        assert status == 400
        status, _, _ = ask(port, raw=b"GET /healthz HTTP/1.1\r\nBroken header line\r\n\r\n")
        assert status == 400
    assert metric(proxy.ports["admin"], "wsgate_admin_errors_total", reason="header_too_large") == 1
    assert metric(backend.ports["admin"], "wsgate_backend_admin_errors_total",
                  reason="header_too_large") == 1
    assert_alive_and_relaying(proxy)
    assert ask(backend.ports["admin"], b"/healthz")[0] == 200


def test_slow_reader_neither_blocks_others_nor_holds_its_connection(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--admin-write-timeout-ms", "1000")
    admin = proxy.ports["admin"]
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", admin))
    # Pipelined scrapes, megabytes of answers, never read.
    one = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    slow.sendall(one * 400)
    started = time.monotonic()
    for _ in range(20):
        t0 = time.monotonic()
        assert ask(admin, b"/healthz", timeout=5)[0] == 200
        assert time.monotonic() - t0 < 2.0
    wait_for(lambda: metric(admin, "wsgate_admin_errors_total", reason="write_timeout") >= 1,
             timeout=15, what="write timeout counted")
    assert time.monotonic() - started < 15
    # The server has let go: draining what the kernel buffered ends in EOF.
    slow.settimeout(5)
    total = 0
    try:
        while True:
            chunk = slow.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
    except ConnectionResetError:
        pass
    slow.close()
    assert total < 400 * 5000
    assert_alive_and_relaying(proxy)


# ---------------------------------------------------------------- token

def test_proxy_token_required_accepted_rejected(upstream, proxy_factory, token_file):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--admin-token-file", token_file)
    admin = proxy.ports["admin"]
    for target in (b"/incidents", b"/incidents/some-correlation-id", b"/connections"):
        status, headers, _ = ask(admin, target)
        assert status == 401, target
        assert headers["www-authenticate"].startswith("Bearer"), target
        assert ask(admin, target, headers=[bearer("wrong-token")])[0] == 401
        assert ask(admin, target, headers=[bearer(TOKEN + "x")])[0] == 401
        assert ask(admin, target, headers=[b"Authorization: Basic " + TOKEN.encode()])[0] == 401
        expected = 404 if target.startswith(b"/incidents/") else 200
        assert ask(admin, target, headers=[bearer(TOKEN)])[0] == expected, target
    for target in (b"/metrics", b"/healthz", b"/readyz"):
        assert ask(admin, target)[0] == 200, target
    assert metric(admin, "wsgate_admin_errors_total", reason="unauthorized") == 12
    assert_alive_and_relaying(proxy)


def test_proxy_token_scope_all(upstream, proxy_factory, token_file):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--admin-token-file", token_file,
                          "--admin-token-scope", "all")
    admin = proxy.ports["admin"]
    for target in (b"/metrics", b"/healthz", b"/readyz", b"/connections"):
        assert ask(admin, target)[0] == 401, target
        assert ask(admin, target, headers=[bearer(TOKEN)])[0] == 200, target


def test_backend_token_required_accepted_rejected(tmp_path, backends, token_file):
    backend = start_backend(tmp_path, "--admin-token-file", token_file)
    backends.append(backend)
    admin = backend.ports["admin"]
    for target in (b"/debug/traces", b"/debug/traces/some-correlation-id"):
        status, headers, _ = ask(admin, target)
        assert status == 401 and headers["www-authenticate"].startswith("Bearer"), target
        assert ask(admin, target, headers=[bearer("wrong-token")])[0] == 401
        expected = 404 if target.endswith(b"-id") else 200
        assert ask(admin, target, headers=[bearer(TOKEN)])[0] == expected
    for target in (b"/metrics", b"/healthz"):
        assert ask(admin, target)[0] == 200, target


@pytest.mark.parametrize("binary", ["proxy", "backend"])
def test_empty_token_file_refused_at_start(tmp_path, binary):
    empty = tmp_path / "empty.token"
    empty.write_text(" \n\t\n")
    secret = tmp_path / "jwt.secret"
    secret.write_text(JWT_SECRET)
    argv = ([WSGATE, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--upstream", "ws://127.0.0.1:9"]
            if binary == "proxy" else
            [BACKEND, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--jwt-secret-file", str(secret)])
    out = subprocess.run(argv + ["--admin-token-file", str(empty)], capture_output=True, text=True,
                         timeout=20)
    assert out.returncode == 2, out
    assert "admin-token-file" in out.stderr and "empty" in out.stderr, out.stderr


def test_trace_fetch_sends_the_backends_token(tmp_path, token_file):
    """End to end: a backend whose /debug/traces needs the token, a proxy
    given it with --trace-fetch-token-file; the 1011's incident holds the
    backend's trace, not a fetch error."""
    if not ih.backend_available():
        pytest.skip("WSGATE_BACKEND_BIN not built")
    procs = []
    try:
        secret = tmp_path / "jwt.secret"
        secret.write_text(ih.JWT_SECRET)
        backend = ih.Proc([BACKEND, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                           "--jwt-secret-file", str(secret), "--context-policy", "strict",
                           "--admin-token-file", token_file], str(tmp_path), "backend")
        procs.append(backend)
        proxy = ih.start_proxy(str(tmp_path), f"ws://127.0.0.1:{backend.listen}",
                               f"http://127.0.0.1:{backend.admin}/debug/traces/{{correlation_id}}",
                               extra=["--trace-fetch-token-file", token_file, "--admin-token-file",
                                      token_file])
        procs.append(proxy)
        jwt = ih.make_token(str(tmp_path))
        cid = "admin-token-fetch-0001"
        code, _, _ = ih.run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid,
                                    headers=[("Authorization", "Bearer " + jwt)])
        assert code == 1011

        def fetched():
            status, _, body = ih.http_get(proxy.admin_url(f"/incidents/{cid}"),
                                          headers={"Authorization": "Bearer " + TOKEN})
            return json.loads(body) if status == 200 else None
        record = wait_for(fetched, timeout=15, what="incident")
        assert "backend_trace_error" not in record, record
        assert record["backend_trace"], record
    finally:
        for p in procs:
            p.stop()


# ------------------------------------------------- admin off the data path

IDLE_SESSIONS = 300
PROBES = 200
PROBE_GAP_S = 0.015
P50_BOUND_MS = 10.0


def test_polling_connections_does_not_slow_the_relay(upstream, tmp_path):
    """~300 idle sessions, pollers asking for every one of them on
    /connections back to back; a probe session's echo p50 stays under a
    generous bound. One I/O thread, as the proxy runs by default on one CPU."""
    proxy = start_proxy(f"ws://127.0.0.1:{upstream.ws}", log_level="warn")
    idle = []
    stop = threading.Event()
    try:
        for i in range(IDLE_SESSIONS):
            sock, status, _, _ = raw_connect(proxy.ports["listen"], "/echo",
                                             extra={"X-Correlation-ID": f"idle-session-{i:05d}"})
            assert status == 101
            idle.append(sock)
        admin = proxy.ports["admin"]

        def listed():
            doc = json.loads(ask(admin, b"/connections?limit=100000")[2])
            return len(doc) if isinstance(doc, list) else doc["total"]
        wait_for(lambda: listed() >= IDLE_SESSIONS, what="sessions listed")
        polls = [0]

        def poll():
            while not stop.is_set():
                status, _, body = ask(admin, b"/connections?limit=100000", timeout=30)
                assert status == 200
                polls[0] += 1
        pollers = [threading.Thread(target=poll, daemon=True) for _ in range(3)]
        for t in pollers:
            t.start()
        sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
        assert status == 101
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        echo_once(sock, reader, b"warm-up")
        # Spread over a few seconds, so the probes meet the polls at every
        # phase of an answer.
        times = []
        deadline = time.monotonic() + 20
        for i in range(PROBES):
            if time.monotonic() > deadline:
                break
            payload = f"probe-{i}".encode()
            t0 = time.perf_counter()
            assert echo_once(sock, reader, payload) == payload
            times.append((time.perf_counter() - t0) * 1000.0)
            time.sleep(PROBE_GAP_S)
        stop.set()
        for t in pollers:
            t.join(30)
        sock.close()
        p50 = statistics.median(times)
        print(f"relay echo p50 {p50:.2f} ms, p90 {sorted(times)[int(len(times) * 0.9)]:.2f} ms "
              f"with {IDLE_SESSIONS} sessions and {polls[0]} /connections polls")
        assert polls[0] > 0
        assert p50 < P50_BOUND_MS, f"echo p50 {p50:.2f} ms while /connections is polled"
        assert_alive_and_relaying(proxy)
    finally:
        stop.set()
        for s in idle:
            s.close()
        proxy.stop()
