"""Upstream endpoint sets with real backend replicas: three wsgate-backend
processes behind one proxy route (--upstream-endpoint), sessions balanced by
least active sessions, every incident naming the replica that served it; a
replica killed mid-run is ejected (its sessions get 1014, new sessions never
see a 502) and returns to rotation when it comes back."""
import asyncio
import json
import os
import signal
import socket
import threading
import time

import pytest
import websockets

from incident_harness import (BACKEND, JWT_SECRET, Proc, http_get, incidents, make_token, metric_value,
                              procs_fixture, requires_binaries, start_proxy, wait_for)

pytestmark = requires_binaries()

# handler.throw=ping: a session stays open until its client sends a ping
# message, which the backend answers with 1011 "Internal error".
FAULT = "handler.throw=ping"
PING = '{"type":"ping","id":"1"}'

procs = procs_fixture()


def start_replica(tmp_path, name, listen="127.0.0.1:0", admin="127.0.0.1:0"):
    secret = os.path.join(str(tmp_path), "jwt.secret")
    with open(secret, "w") as f:
        f.write(JWT_SECRET)
    # One test user holds every session: lift the per-user cap (16).
    return Proc([BACKEND, "--listen", listen, "--admin", admin, "--jwt-secret-file", secret,
                 "--context-policy", "fallback", "--fault", FAULT, "--max-connections-per-user", "1000",
                 "--log-format", "json"], str(tmp_path), name)


def free_port_on(hosts):
    """A port free on every one of `hosts` (loopback addresses)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        try:
            for h in hosts[1:]:
                with socket.socket() as t:
                    t.bind((h, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on " + ", ".join(hosts))


def replicas(tmp_path, procs, n=3, hosts=None, admin_port=0):
    out = []
    for i in range(n):
        host = hosts[i] if hosts else "127.0.0.1"
        b = start_replica(tmp_path, f"backend{i}", listen=f"{host}:0", admin=f"{host}:{admin_port}")
        b.host = host
        procs.append(b)
        out.append(b)
    return out


def proxy_for(tmp_path, procs, backends, extra=()):
    args = []
    for b in backends:
        args += ["--upstream-endpoint", f"{b.host}:{b.listen}"]
    # The URL's host names only Host and SNI: nothing listens on port 1.
    p = start_proxy(str(tmp_path), "ws://backend.invalid:1", extra=args + list(extra), threads=2)
    procs.append(p)
    return p


def connections(proxy):
    status, _, body = http_get(proxy.admin_url("/connections?limit=1000"))
    assert status == 200, body
    return {c["correlation_id"]: c for c in json.loads(body)}


async def open_session(uri, cid, token):
    return await websockets.connect(uri, extra_headers=[("X-Correlation-ID", cid),
                                                        ("Authorization", "Bearer " + token)],
                                    open_timeout=20, close_timeout=10)


async def open_many(uri, cids, token, batch=50):
    out = []
    for i in range(0, len(cids), batch):
        out += await asyncio.gather(*(open_session(uri, c, token) for c in cids[i:i + batch]))
    return out


async def ping_and_close(ws):
    await ws.send(PING)
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass
    await asyncio.wait_for(ws.wait_closed(), 20)
    return ws.close_code


def traced_by(backend, cid):
    status, _, _ = http_get(f"http://{backend.host}:{backend.admin}/debug/traces/{cid}")
    return status == 200


def test_three_replicas_share_300_sessions_and_every_incident_carries_its_replicas_trace(tmp_path, procs):
    # Three replicas on three loopback addresses, each serving its traces on
    # the same admin port, as pods behind a headless Service do: the trace
    # URL names the endpoint the session used.
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    admin_port = free_port_on(hosts)
    backends = replicas(tmp_path, procs, hosts=hosts, admin_port=admin_port)
    # 300 sessions close at once: room for all their trace fetches together,
    # and time for them on a loaded sanitizer build (the join is checked
    # here, fetch deadlines in test_incidents_fake).
    proxy = proxy_for(tmp_path, procs, backends, extra=[
        "--upstream-trace-url", f"http://{{upstream_host}}:{admin_port}/debug/traces/{{correlation_id}}",
        "--trace-fetch-concurrency", "300", "--trace-fetch-timeout-ms", "15000"])
    token = make_token(str(tmp_path), thread_id="thread-1")
    uri = f"ws://127.0.0.1:{proxy.listen}/ws"
    cids = [f"ep-bal-{i:04d}" for i in range(300)]

    async def run():
        sessions = await open_many(uri, cids, token)
        # All 300 are live at once: each pick saw the others' counts. (A
        # session is listed just after its 101 is written.)
        live = wait_for(lambda: (lambda c: c if len(c) == 300 else None)(connections(proxy)), 20,
                        what="300 sessions listed")
        codes = await asyncio.gather(*(ping_and_close(ws) for ws in sessions))
        return live, codes

    live, codes = asyncio.run(asyncio.wait_for(run(), 240))
    assert codes == [1011] * 300
    assert set(live) == set(cids)
    by_port = {f"{b.host}:{b.listen}": b for b in backends}
    assert {c["upstream_endpoint"] for c in live.values()} == set(by_port)

    wait_for(lambda: incidents(proxy, "?limit=1000")["count"] >= 300, 60, what="300 incidents")
    recorded = {i["correlation_id"]: i for i in incidents(proxy, "?limit=1000")["incidents"]}
    assert set(recorded) == set(cids)
    per_replica = {name: 0 for name in by_port}
    for cid, inc in recorded.items():
        endpoint = inc["upstream_endpoint"]
        assert endpoint == live[cid]["upstream_endpoint"]
        per_replica[endpoint] += 1
    print(f"sessions per replica: {per_replica}")
    # Every incident found its trace at the replica that served it.
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "ok"}) == 300
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "not_found"}) in (None, 0)
    for cid, inc in recorded.items():
        assert inc["trace_fetch"]["outcome"] == "ok", (cid, inc["trace_fetch"])
        assert inc["backend_trace"]["correlation_id"] == cid
    counts = sorted(per_replica.values())
    assert counts[0] > 0 and counts[-1] <= counts[0] * 1.2, per_replica
    # The replica each incident names is the one that traced the session,
    # and no other replica knows it (a sample, to keep the test short).
    for cid in cids[::10]:
        named = by_port[recorded[cid]["upstream_endpoint"]]
        assert traced_by(named, cid), cid
        assert not any(traced_by(b, cid) for b in backends if b is not named), cid
    for name, n in per_replica.items():
        assert metric_value(proxy, "wsgate_upstream_endpoint_sessions",
                            {"route": "/", "endpoint": name}) == 0
    assert metric_value(proxy, "wsgate_upstream_endpoints", {"route": "/", "state": "healthy"}) == 3
    # The close log line names the endpoint too.
    line = next(l for l in proxy.log_text().splitlines() if cids[0] in l and "session closed" in l)
    assert f"upstream_endpoint={recorded[cids[0]]['upstream_endpoint']}" in line


def test_killed_replica_is_ejected_and_returns(tmp_path, procs):
    backends = replicas(tmp_path, procs)
    proxy = proxy_for(tmp_path, procs, backends,
                      extra=["--upstream-eject-backoff-ms", "300",
                             "--upstream-eject-backoff-max-ms", "1000"])
    token = make_token(str(tmp_path), thread_id="thread-1")
    uri = f"ws://127.0.0.1:{proxy.listen}/ws"
    victim = backends[1]
    victim_name = f"127.0.0.1:{victim.listen}"
    live_names = {f"127.0.0.1:{b.listen}" for b in backends if b is not victim}

    async def phase_one():
        first_cids = [f"ep-kill-a{i:03d}" for i in range(30)]
        first = await open_many(uri, first_cids, token)
        wait_for(lambda: len(connections(proxy)) == 30, 20, what="30 sessions listed")
        on = {cid: c["upstream_endpoint"] for cid, c in connections(proxy).items()}
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        # The victim's sessions end with the proxy's 1014; the others stay open.
        doomed = [ws for ws, cid in zip(first, first_cids) if on[cid] == victim_name]
        assert 5 <= len(doomed) <= 15, on
        for ws in doomed:
            await asyncio.wait_for(ws.wait_closed(), 20)
        assert {ws.close_code for ws in doomed} == {1014}
        survivors = [ws for ws in first if ws not in doomed]
        assert all(ws.open for ws in survivors)
        # New sessions: every one opens (no 502), none on the victim.
        second = []
        started = time.monotonic()
        for i in range(30):
            second.append(await open_session(uri, f"ep-kill-b{i:03d}", token))
        wait_for(lambda: len(connections(proxy)) == len(survivors) + 30, 20, what="sessions listed")
        on = {cid: c["upstream_endpoint"] for cid, c in connections(proxy).items()}
        assert {on[f"ep-kill-b{i:03d}"] for i in range(30)} <= live_names
        elapsed = time.monotonic() - started
        for ws in survivors + second:
            await ws.close()
        return elapsed

    elapsed = asyncio.run(asyncio.wait_for(phase_one(), 120))
    # Each failed attempt was retried once on a live replica: at most one
    # per new session, and no client saw a 502.
    retries = metric_value(proxy, "wsgate_upstream_endpoint_retries_total", {"route": "/"}) or 0
    print(f"retries after the kill: {retries}")
    assert 1 <= retries <= 30
    # Ejected, the victim is tried again at most once per back-off (300 ms
    # at least), not by every session.
    assert retries <= 1 + elapsed / 0.3, (retries, elapsed)
    assert metric_value(proxy, "wsgate_handshakes_total", {"outcome": "upstream_connect_failed"}) in (None, 0)
    assert metric_value(proxy, "wsgate_upstream_endpoint_ejections_total", {"route": "/"}) >= 1
    assert metric_value(proxy, "wsgate_upstream_endpoints", {"route": "/", "state": "ejected"}) == 1

    # Restarted on its port, it returns to rotation once its back-off lets a probe through.
    restarted = start_replica(tmp_path, "backend1-restarted", listen=victim_name)
    restarted.host = victim.host
    procs.append(restarted)

    async def phase_two():
        held = []
        try:
            for i in range(60):
                cid = f"ep-kill-c{i:03d}"
                held.append(await open_session(uri, cid, token))
                on = wait_for(lambda: connections(proxy).get(cid), 20, what=cid)["upstream_endpoint"]
                if on == victim_name:
                    return True
                await asyncio.sleep(0.1)
            return False
        finally:
            for ws in held:
                await ws.close()

    assert asyncio.run(asyncio.wait_for(phase_two(), 60)), "the restarted replica never got a session"
    assert metric_value(proxy, "wsgate_upstream_endpoints", {"route": "/", "state": "healthy"}) == 3
    assert metric_value(proxy, "wsgate_handshakes_total", {"outcome": "upstream_connect_failed"}) in (None, 0)


class Refuser:
    """A TCP server that answers every request with `status` and closes."""

    def __init__(self, status):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.status = status
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests += 1
                conn.sendall(f"HTTP/1.1 {self.status} Nope\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n".encode())

    def close(self):
        self.sock.close()


def test_503_ejects_its_endpoint_and_401_does_not(tmp_path, procs):
    backend = replicas(tmp_path, procs, n=1)[0]
    refuser = Refuser(503)
    try:
        proxy = start_proxy(str(tmp_path), "ws://backend.invalid:1", threads=2, extra=[
            "--upstream-endpoint", f"127.0.0.1:{backend.listen}",
            "--upstream-endpoint", f"127.0.0.1:{refuser.port}",
            "--upstream-eject-backoff-ms", "60000", "--upstream-eject-backoff-max-ms", "60000"])
        procs.append(proxy)
        token = make_token(str(tmp_path), thread_id="thread-1")
        uri = f"ws://127.0.0.1:{proxy.listen}/ws"

        async def run():
            held, refused = [], []
            for i in range(10):
                try:
                    held.append(await open_session(uri, f"ep-503-{i:03d}", token))
                except websockets.InvalidStatusCode as e:
                    refused.append(e.status_code)
            # The backend's own auth refusal: passed through, never an ejection.
            for i in range(5):
                with pytest.raises(websockets.InvalidStatusCode) as e:
                    await open_session(uri, f"ep-401-{i:03d}", "not-a-token")
                assert e.value.status_code == 401
            for ws in held:
                await ws.close()
            return refused

        refused = asyncio.run(asyncio.wait_for(run(), 60))
        # The 503 endpoint had the fewest sessions by the second pick; its
        # answer reached that client as it was, and it is out of rotation.
        assert refused == [503]
        assert refuser.requests == 1
        assert metric_value(proxy, "wsgate_upstream_endpoint_ejections_total", {"route": "/"}) == 1
        assert metric_value(proxy, "wsgate_upstream_endpoints", {"route": "/", "state": "ejected"}) == 1
        assert metric_value(proxy, "wsgate_upstream_endpoints", {"route": "/", "state": "healthy"}) == 1
    finally:
        refuser.close()
