"""Start wsgate-backend on free ports and talk to it (Debian python3-websockets 10.x)."""
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

SECRET = "integration-test-secret-0123456789abcdef"
BINARY = os.environ.get("WSGATE_BACKEND_BIN", "")
START_TIMEOUT = 30.0


class Backend:
    def __init__(self, *args, env=None):
        self.dir = tempfile.TemporaryDirectory(prefix="wsgate-backend-it-")
        self.secret_file = os.path.join(self.dir.name, "secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        self.port_file = os.path.join(self.dir.name, "ports.json")
        self.log_path = os.path.join(self.dir.name, "backend.log")
        self.log = open(self.log_path, "w")
        # An RS256 backend (--jwt-public-key) takes no HS256 secret.
        key = [] if "--jwt-public-key" in args else ["--jwt-secret-file", self.secret_file]
        cmd = [BINARY, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
               "--port-file", self.port_file, *key,
               "--agent-step-delay-ms", "5", "--log-level", "debug", "--drain-timeout", "5",
               *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env=env or os.environ.copy())
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise RuntimeError("backend exited early:\n" + self.read_log())
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("backend did not start:\n" + self.read_log())
            time.sleep(0.02)
        with open(self.port_file) as f:
            ports = json.load(f)
        self.port, self.admin_port = ports["listen"], ports["admin"]

    def read_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def url(self, query=""):
        return f"ws://127.0.0.1:{self.port}/ws" + (("?" + query) if query else "")

    def token(self, sub, thread_id=None, ttl=None, extra=()):
        cmd = [BINARY, "token", "--sub", sub, "--jwt-secret-file", self.secret_file, *extra]
        if thread_id:
            cmd += ["--thread-id", thread_id]
        if ttl is not None:
            cmd += [f"--ttl={ttl}"]
        return subprocess.check_output(cmd, timeout=30).decode().strip()

    def admin(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def trace(self, cid):
        status, _, body = self.admin("/debug/traces/" + cid)
        return status, json.loads(body)

    def metric(self, name, **labels):
        """The sample's value, or None when the series does not exist."""
        _, _, body = self.admin("/metrics")
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in body.splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$', line)
            if not m or m.group(1) != name:
                continue
            got = ",".join(sorted((m.group(3) or "").split(","))) if m.group(3) else ""
            if got == want:
                return float(m.group(4))
        return None

    def metric_when(self, value, name, timeout=5.0, **labels):
        """The sample once it equals `value`, or its last reading after
        `timeout`: for counters bumped after the peer could already see
        the effect (Beast sends a 1009 close before the read handler runs)."""
        deadline = time.monotonic() + timeout
        got = self.metric(name, **labels)
        while got != value and time.monotonic() < deadline:
            time.sleep(0.02)
            got = self.metric(name, **labels)
        return got

    def raw_upgrade(self, path="/ws", headers=None):
        """A handshake by hand, to see non-101 answers with their bodies."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        h.update(headers or {})
        conn.request("GET", path, headers=h)
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
        return resp.status, resp.headers, body

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self.log.close()
        self.dir.cleanup()
        return self.proc.returncode
