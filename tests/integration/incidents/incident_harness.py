"""Shared pieces of the incident integration tests: start the real binaries
on free 127.0.0.1 ports, a fake WebSocket upstream and a fake trace server we
control, WebSocket clients, admin helpers. Everything is bounded in time and
every process started here is stopped by the fixture that started it."""
import asyncio
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import websockets

WSGATE = os.environ.get("WSGATE_BIN", "")
BACKEND = os.environ.get("WSGATE_BACKEND_BIN", "")

JWT_SECRET = "incident-tests-secret-0123456789abcdef"


def backend_available():
    return bool(BACKEND) and os.access(BACKEND, os.X_OK)


def requires_binaries(backend=True):
    """A module's pytestmark: skip without WSGATE_BIN and, with `backend`,
    without an executable WSGATE_BACKEND_BIN."""
    marks = [pytest.mark.skipif(not WSGATE, reason="WSGATE_BIN not set")]
    if backend:
        marks.append(pytest.mark.skipif(not backend_available(),
                                        reason="WSGATE_BACKEND_BIN not set or not built"))
    return marks


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


class Proc:
    """A child process that writes {"listen":P,"admin":P} to a port file."""

    def __init__(self, args, workdir, name):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.port_file = os.path.join(workdir, f"{name}.ports.json")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.args = list(args) + ["--port-file", self.port_file]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            ports = wait_for(self._ports, 20, what=f"{name} port file")
        except AssertionError:
            self.stop()
            raise AssertionError(f"{name} did not start: {self.log_text()[-3000:]}")
        self.listen, self.admin = ports["listen"], ports["admin"]

    def _ports(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.log_text()[-3000:]}")
        try:
            with open(self.port_file) as f:
                doc = json.load(f)
            return doc if doc.get("listen") and doc.get("admin") else None
        except (OSError, ValueError):
            return None

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def admin_url(self, path):
        return f"http://127.0.0.1:{self.admin}{path}"


def start_proxy(workdir, upstream, trace_url=None, extra=(), name="wsgate", log_level="info", threads=None):
    args = [WSGATE, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--upstream", upstream,
            "--log-format", "json", "--log-level", log_level, "--drain-timeout", "3"]
    if threads is not None:
        args += ["--threads", str(threads)]
    if trace_url:
        args += ["--upstream-trace-url", trace_url]
    return Proc(args + list(extra), workdir, name)


def start_backend(workdir, policy="strict", faults=(), name="backend"):
    secret = os.path.join(workdir, "jwt.secret")
    with open(secret, "w") as f:
        f.write(JWT_SECRET)
    args = [BACKEND, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--jwt-secret-file", secret,
            "--context-policy", policy, "--log-format", "json"]
    for fault in faults:
        args += ["--fault", fault]
    return Proc(args, workdir, name)


def make_token(workdir, sub="staging-e2e-user-001", thread_id=None):
    secret = os.path.join(workdir, "jwt.secret")
    args = [BACKEND, "token", "--sub", sub, "--jwt-secret-file", secret]
    if thread_id:
        args += ["--thread-id", thread_id]
    out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.strip()


# ---- admin ------------------------------------------------------------------

def incident(proxy, cid, timeout=15):
    """Waits for /incidents/{cid}; returns the record."""
    def get():
        status, _, body = http_get(proxy.admin_url(f"/incidents/{cid}"))
        return json.loads(body) if status == 200 else None
    return wait_for(get, timeout, what=f"incident {cid}")


def incidents(proxy, query=""):
    status, _, body = http_get(proxy.admin_url("/incidents" + query))
    assert status == 200, body
    return json.loads(body)


def metric_value(proxy, name, labels):
    """The value of one sample in the text exposition, or None."""
    _, _, body = http_get(proxy.admin_url("/metrics"))
    for line in body.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] != name:
            continue
        got = {}
        if "{" in series:
            for pair in series[series.index("{") + 1:-1].split(","):
                if pair:
                    k, v = pair.split("=", 1)
                    got[k] = v.strip('"')
        if got == labels:
            return float(value)
    return None


# ---- WebSocket clients ------------------------------------------------------

async def ws_session(uri, cid, headers=(), subprotocols=None, send=None, close_with=None, timeout=10,
                     compression=None):
    """One client session: optional message, optional client close; returns
    (close code, close reason, received messages)."""
    received = []
    hdrs = [("X-Correlation-ID", cid)] + list(headers)
    async with websockets.connect(uri, extra_headers=hdrs, subprotocols=subprotocols,
                                  open_timeout=timeout, close_timeout=timeout,
                                  max_size=None, compression=compression) as ws:
        if send is not None:
            await ws.send(send)
        if close_with is not None:
            await asyncio.sleep(0.1)
            await ws.close(code=close_with[0], reason=close_with[1])
        else:
            try:
                async for msg in ws:
                    received.append(msg)
            except websockets.ConnectionClosed:
                pass
        await asyncio.wait_for(ws.wait_closed(), timeout)
        return ws.close_code, ws.close_reason, received


def run_session(*args, **kwargs):
    return asyncio.run(asyncio.wait_for(ws_session(*args, **kwargs), 30))


# ---- fakes ------------------------------------------------------------------

class FakeUpstream:
    """A websockets server on 127.0.0.1:0 in its own thread. Each connection
    gets `messages` sent, then a close with `close_code`/`close_reason`
    (close_code None: echo until the client closes). compression="deflate"
    accepts permessage-deflate when the client offers it."""

    def __init__(self, messages=(), close_code=1011, close_reason="Internal error", compression=None):
        self.messages = list(messages)
        self.compression = compression
        self.close_code = close_code
        self.close_reason = close_reason
        self.headers = []
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("fake upstream did not start")

    async def _handler(self, ws, path=None):
        self.headers.append(dict(ws.request_headers))
        for m in self.messages:
            await ws.send(m)
        if self.close_code is None:
            async for m in ws:
                await ws.send(m)
            return
        await ws.close(code=self.close_code, reason=self.close_reason)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server = await websockets.serve(self._handler, "127.0.0.1", 0, compression=self.compression,
                                             max_size=None)
            self.port = self.server.sockets[0].getsockname()[1]
            self._ready.set()
            await self.server.wait_closed()

        try:
            self.loop.run_until_complete(main())
        finally:
            self.loop.close()

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self._thread.join(10)


class TraceServer:
    """HTTP server for /debug/traces/{cid}: `traces` maps cid -> JSON,
    `bodies` maps cid -> bytes served verbatim (for bodies no JSON value can
    make); unknown IDs get 404; `hold` makes every request wait `hold` seconds."""

    def __init__(self):
        self.traces = {}
        self.bodies = {}
        self.requests = []
        self.hold = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                if outer.hold:
                    time.sleep(outer.hold)
                cid = self.path.rsplit("/", 1)[-1]
                if cid in outer.bodies:
                    body, status = outer.bodies[cid], 200
                elif cid in outer.traces:
                    body, status = json.dumps(outer.traces[cid]).encode(), 200
                else:
                    body, status = b'{"error":"unknown correlation_id"}', 404
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 1024  # storms of fetches
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def template(self):
        return f"http://127.0.0.1:{self.port}/debug/traces/{{correlation_id}}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)


# ---- fixtures: a test module takes one by assigning it (procs = procs_fixture()),
# which keeps a function argument from shadowing an import and leaves the
# directory without a conftest module for `from conftest import` to mistake.

def procs_fixture(last_first=True):
    """A `procs` fixture: the test appends what it starts, teardown stops it
    all, the last started first (a proxy before the backend it fronts) or,
    with last_first=False, in the order started."""
    @pytest.fixture
    def procs():
        started = []
        yield started
        for p in (reversed(started) if last_first else started):
            p.stop()
    return procs


def traces_fixture():
    """A `traces` fixture: a TraceServer, stopped at teardown."""
    @pytest.fixture
    def traces():
        t = TraceServer()
        yield t
        t.stop()
    return traces
