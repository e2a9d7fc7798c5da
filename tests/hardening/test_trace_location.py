"""The trace join per replica, black-box: two real wsgate-backend replicas
behind a real HAProxy (roundrobin), each announcing its own trace URL in its
101 (Wsgate-Trace-Location); the proxy's upstream is HAProxy. Every 1011 has
its trace joined, the header never reaches the client, and an announcement
from an upstream outside --trace-location-allow is ignored and counted.
Also: the {upstream_host}/{upstream_port} placeholders, and start-up errors."""
import asyncio
import os
import shutil
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "integration", "incidents"))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "lib"))
from incident_harness import (BACKEND, JWT_SECRET, WSGATE, FakeUpstream, Proc,  # noqa: E402
                              TraceServer, free_port, http_get, incident, incidents, make_token,
                              metric_value, procs_fixture, requires_binaries, run_session, start_proxy, wait_for,
                              ws_session)
from wsgate_harness import raw_connect  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SESSIONS = 40

pytestmark = requires_binaries()

procs = procs_fixture()


class HAProxy:
    """The Debian haproxy in the foreground, roundrobin over `servers`."""

    def __init__(self, workdir, servers):
        self.port = free_port()
        cfg = os.path.join(workdir, "haproxy.cfg")
        lines = ["global", "  nbthread 1", "  maxconn 2000", "", "defaults", "  mode http",
                 "  timeout connect 5s", "  timeout client 60s", "  timeout server 60s",
                 "  timeout tunnel 60s", "  timeout http-request 10s", "",
                 "frontend ws", f"  bind 127.0.0.1:{self.port}", "  default_backend replicas", "",
                 "backend replicas", "  balance roundrobin"]
        lines += [f"  server r{i} 127.0.0.1:{port}" for i, port in enumerate(servers)]
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(workdir, "haproxy.log"), "ab")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_for(self._listening, 15, what="haproxy listening")

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"haproxy exited with {self.proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


def start_replica(workdir, name, announce=True):
    secret = os.path.join(workdir, "jwt.secret")
    with open(secret, "w") as f:
        f.write(JWT_SECRET)
    args = [BACKEND, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--jwt-secret-file", secret,
            "--context-policy", "strict", "--log-format", "json"]
    if announce:
        # {port}: this replica's own admin port, as bound.
        args += ["--advertise-trace-url", "http://{host}:{port}/debug/traces/{correlation_id}"]
    return Proc(args, workdir, name)


@pytest.fixture
def replicas(tmp_path, procs):
    """Two announcing backend replicas behind HAProxy."""
    if not os.access(HAPROXY, os.X_OK):
        pytest.fail(f"haproxy not found at {HAPROXY} (deploy/bootstrap.sh installs it)")
    backends = [start_replica(str(tmp_path), f"backend{i}") for i in range(2)]
    procs.extend(backends)
    lb = HAProxy(str(tmp_path), [b.listen for b in backends])
    procs.append(lb)
    return backends, lb


def storm(proxy_port, token, cids):
    async def run():
        return await asyncio.gather(*(
            ws_session(f"ws://127.0.0.1:{proxy_port}/ws", cid,
                       headers=[("Authorization", "Bearer " + token)], timeout=20) for cid in cids))
    return asyncio.run(asyncio.wait_for(run(), 90))


def traces_held(backend, cids):
    """The IDs of `cids` whose trace this replica holds."""
    return {c for c in cids if http_get(backend.admin_url(f"/debug/traces/{c}"))[0] == 200}


def all_incidents(proxy, n):
    wait_for(lambda: incidents(proxy, f"?limit={n + 10}")["count"] >= n, 60, interval=0.2,
             what=f"{n} incidents")
    return incidents(proxy, f"?limit={n + 10}")["incidents"]


def test_every_1011_joins_its_replicas_trace_behind_haproxy(tmp_path, procs, replicas):
    backends, lb = replicas
    # The route's own template names replica 0 only: without the
    # announcements, replica 1's sessions would find no trace there.
    template = f"http://127.0.0.1:{backends[0].admin}/debug/traces/{{correlation_id}}"
    proxy = start_proxy(str(tmp_path), f"ws://127.0.0.1:{lb.port}", template,
                        extra=["--trace-location-allow", "127.0.0.1/32",
                               "--trace-location-allow", "::1/128",
                               "--trace-fetch-concurrency", "256"], threads=1)
    procs.append(proxy)
    token = make_token(str(tmp_path))  # no thread_id: strict context -> 1011
    cids = [f"lb-join-{i:04d}" for i in range(SESSIONS)]
    results = storm(proxy.listen, token, cids)
    assert [r[0] for r in results] == [1011] * SESSIONS

    # Both replicas took sessions (roundrobin), so the join is not by luck.
    held = [traces_held(b, cids) for b in backends]
    assert held[0] and held[1], [len(h) for h in held]
    assert held[0] | held[1] == set(cids) and not held[0] & held[1]

    got = all_incidents(proxy, SESSIONS)
    assert sorted(i["correlation_id"] for i in got) == cids
    for inc in got:
        assert "backend_trace_error" not in inc, inc["backend_trace_error"]
        assert inc["backend_trace"]["correlation_id"] == inc["correlation_id"]
        assert inc["backend_trace"]["stages"], inc["correlation_id"]
        assert inc["failing_stage"] != "unknown"
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "ok"}) == SESSIONS
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "not_found"}) in (None, 0)
    assert metric_value(proxy, "wsgate_trace_location_accepted_total", {}) == SESSIONS
    assert metric_value(proxy, "wsgate_trace_location_rejected_total", {"reason": "not_allowed"}) == 0


def test_header_never_reaches_the_client(tmp_path, procs, replicas):
    backends, lb = replicas
    token = make_token(str(tmp_path))
    # Straight through HAProxy the header is there: the backend announces.
    sock, status, headers, _ = raw_connect(lb.port, "/ws", extra={
        "Authorization": "Bearer " + token, "X-Correlation-ID": "lb-direct-0001"})
    sock.close()
    assert status == 101
    assert headers.get("wsgate-trace-location", "").endswith("/debug/traces/lb-direct-0001")

    proxy = start_proxy(str(tmp_path), f"ws://127.0.0.1:{lb.port}",
                        extra=["--trace-location-allow", "127.0.0.0/8"], threads=1)
    procs.append(proxy)
    for i in range(4):  # both replicas answer (roundrobin)
        cid = f"lb-raw-{i:04d}"
        sock, status, headers, reader = raw_connect(proxy.listen, "/ws", extra={
            "Authorization": "Bearer " + token, "X-Correlation-ID": cid})
        try:
            assert status == 101
            assert headers.get("x-correlation-id") == cid
            assert "wsgate-trace-location" not in headers, headers
            assert reader.read_close()[0] == 1011
        finally:
            sock.close()
        # Honoured although the route has no trace URL of its own.
        assert incident(proxy, cid)["backend_trace"]["correlation_id"] == cid


@pytest.mark.parametrize("allow", [None, "10.0.0.0/8"])
def test_announcement_from_a_host_not_allowed_is_ignored_and_counted(tmp_path, procs, replicas, allow):
    backends, lb = replicas
    extra = ["--trace-location-allow", allow] if allow else []
    # Without announcements, the route's template (replica 0) is the only URL.
    template = f"http://127.0.0.1:{backends[0].admin}/debug/traces/{{correlation_id}}"
    proxy = start_proxy(str(tmp_path), f"ws://127.0.0.1:{lb.port}", template, extra=extra, threads=1,
                        log_level="warn")
    procs.append(proxy)
    token = make_token(str(tmp_path))
    n = 8
    cids = [f"lb-deny-{i:04d}" for i in range(n)]
    for cid in cids:  # one by one: roundrobin alternates the replicas exactly
        code, _, _ = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid,
                                 headers=[("Authorization", "Bearer " + token)])
        assert code == 1011
    got = {i["correlation_id"]: i for i in all_incidents(proxy, n)}
    assert metric_value(proxy, "wsgate_trace_location_rejected_total", {"reason": "not_allowed"}) == n
    assert metric_value(proxy, "wsgate_trace_location_accepted_total", {}) == 0
    # The fetches went to the template's replica only: replica 1's traces
    # are not found there, which the announcements would have prevented.
    on_replica1 = traces_held(backends[1], cids)
    assert on_replica1
    for cid in on_replica1:
        assert "backend_trace" not in got[cid]
        assert "404" in got[cid]["backend_trace_error"], got[cid]["backend_trace_error"]
    # Warned, rate-limited: one line for the burst, not one per session.
    warnings = [line for line in proxy.log_text().splitlines() if "Wsgate-Trace-Location" in line]
    assert 1 <= len(warnings) < n, warnings


def test_invalid_announced_url_is_ignored_and_counted(tmp_path, procs):
    sys.path.insert(0, HERE)
    from conftest import CaptureUpstream
    bad = [b"https://127.0.0.1:1/debug/traces/x", b"http://user:pw@127.0.0.1:1/x",
           b"http://127.0.0.1:1/" + b"a" * 3000, b"ftp://127.0.0.1/x"]
    served = iter(bad)

    def head(accept):
        return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\nWsgate-Trace-Location: " + next(served) +
                b"\r\n\r\n")
    # The upstream then closes with 1011 (a close frame after the 101).
    upstream = CaptureUpstream(head=head, trailer=b"\x88\x02\x03\xf3")
    try:
        proxy = start_proxy(str(tmp_path), f"ws://127.0.0.1:{upstream.port}",
                            extra=["--trace-location-allow", "127.0.0.1"], threads=1)
        procs.append(proxy)
        for i in range(len(bad)):
            sock, status, headers, reader = raw_connect(proxy.listen, "/", extra={
                "X-Correlation-ID": f"bad-url-{i:04d}"})
            try:
                assert status == 101 and "wsgate-trace-location" not in headers
                assert reader.read_close()[0] == 1011
            finally:
                sock.close()
        wait_for(lambda: metric_value(proxy, "wsgate_trace_location_rejected_total",
                                      {"reason": "invalid_url"}) == len(bad), 10,
                 what="invalid_url count")
        assert metric_value(proxy, "wsgate_trace_location_accepted_total", {}) == 0
        for i in range(len(bad)):
            inc = incident(proxy, f"bad-url-{i:04d}")
            assert inc["backend_trace_error"].startswith("no trace URL"), inc["backend_trace_error"]
    finally:
        upstream.stopped = True
        upstream.sock.close()


def test_template_names_the_upstream_endpoint_used(tmp_path, procs):
    upstream = FakeUpstream(close_code=1011, close_reason="Internal error")
    traces = TraceServer()
    try:
        cid = "ep-place-0001"
        traces.traces[cid] = {"correlation_id": cid, "stages": [
            {"stage": "message.handle", "outcome": "error", "t_us": 1, "detail": "x"}]}
        template = (f"http://{{upstream_host}}:{traces.port}/debug/traces/"
                    f"{{upstream_port}}/{{correlation_id}}")
        proxy = start_proxy(str(tmp_path), upstream.url, template, threads=1)
        procs.append(proxy)
        assert run_session(f"ws://127.0.0.1:{proxy.listen}/", cid)[0] == 1011
        inc = incident(proxy, cid)
        assert traces.requests and traces.requests[0] == f"/debug/traces/{upstream.port}/{cid}"
        assert inc["backend_trace"]["correlation_id"] == cid
    finally:
        upstream.stop()
        traces.stop()


@pytest.mark.parametrize("args, message", [
    (["--trace-location-allow", "10.1.0.0/8"], "host bits set (the network is 10.0.0.0/8)"),
    (["--trace-location-allow", "backend.local"], "is not an IPv4 or IPv6 network"),
    (["--trace-location-allow", "fd00::/129"], "prefix length must be 0-128"),
    (["--upstream-trace-url", "http://{upstream_hots}:1/{correlation_id}"], "unknown placeholder"),
])
def test_proxy_refuses_bad_settings_at_start(args, message):
    out = subprocess.run([WSGATE, "--upstream", "ws://127.0.0.1:1", "--listen", "127.0.0.1:0",
                          "--admin", "127.0.0.1:0"] + args, capture_output=True, text=True, timeout=20)
    assert out.returncode == 2, out
    assert message in out.stderr and args[0] in out.stderr, out.stderr


@pytest.mark.parametrize("template, message", [
    ("https://127.0.0.1:1/debug/traces/{correlation_id}", "is not http://HOST[:PORT]/PATH"),
    ("http://127.0.0.1:1/debug/traces/", "does not hold {correlation_id}"),
    ("http://{host}:{port}/debug/traces/{correlation_id}", "wildcard admin address"),
])
def test_backend_refuses_bad_advertise_template(tmp_path, template, message):
    secret = tmp_path / "jwt.secret"
    secret.write_text(JWT_SECRET)
    out = subprocess.run([BACKEND, "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0",
                          "--jwt-secret-file", str(secret), "--advertise-trace-url", template],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 2, out
    assert "advertise-trace-url" in out.stderr and message in out.stderr, out.stderr
