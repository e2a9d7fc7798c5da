"""Process and protocol helpers shared by the integration tests.

Everything binds 127.0.0.1 and port 0; binaries report their ports through
--port-file. Processes are always reaped, even when a test fails.
"""
import base64
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"  # Debian's, which has python3-websockets


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Proc:
    """A child process with a port file and captured stderr."""

    def __init__(self, argv, port_file=True, env=None):
        self.tmp = tempfile.mkdtemp(prefix="wsgate-it-")
        self.port_file = os.path.join(self.tmp, "ports.json")
        self.log_path = os.path.join(self.tmp, "stderr.log")
        if port_file:
            argv = list(argv) + ["--port-file", self.port_file]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log,
                                     env=env or os.environ.copy())
        self.ports = {}
        if port_file:
            def ready():
                if self.proc.poll() is not None:
                    raise AssertionError(f"{argv[0]} exited with {self.proc.returncode}: {self.logs()}")
                try:
                    with open(self.port_file) as f:
                        return json.load(f)
                except (OSError, ValueError):
                    return None
            self.ports = wait_for(ready, 20, what=f"{argv[0]} port file")

    def logs(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=15):
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Upstream:
    """tests/integration/lib/upstream.py: a scriptable WebSocket upstream."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, "upstream.py"), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("upstream failed: " + self.proc.stderr.read().decode())
        self.ports = json.loads(line)
        self.ws = self.ports["ws"]
        self.raw = self.ports["raw"]
        self.http = self.ports["http"]

    def requests(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/requests", timeout=5) as r:
            return json.load(r)

    def events(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/events", timeout=5) as r:
            return json.load(r)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def rss_kib(pid):
    """Resident set of a process, KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def http_get(port, path, headers=None, timeout=5):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def metrics(admin_port):
    """/metrics as {'name{labels}': value}."""
    status, body, _ = http_get(admin_port, "/metrics")
    assert status == 200
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def metric(admin_port, name, **labels):
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    values = metrics(admin_port)
    if want in values:
        return values[want]
    # prometheus-cpp orders labels alphabetically; match regardless of order.
    for key, value in values.items():
        if key.split("{")[0] != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', key))
        if got == {k: str(v) for k, v in labels.items()}:
            return value
    return 0.0


# ----------------------------------------------------------- raw WebSocket

def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path="/", host="127.0.0.1", key=None, extra=None, version="13"):
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key or ws_key()}",
             f"Sec-WebSocket-Version: {version}"]
    for k, v in (extra or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_http_response(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length_override=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length_override is None else length_override
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class FrameReader:
    """Reads server-to-client frames off a raw socket."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = leftover

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def read(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        masked = bool(b1 & 0x80)
        if masked:
            self._need(off + 4)
            key = self.buf[off:off + 4]
            off += 4
        self._need(off + n)
        payload = self.buf[off:off + n]
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.buf = self.buf[off + n:]
        return (b0 & 0x80) != 0, b0 & 0x0F, payload

    def read_close(self):
        """Skips data frames until a close frame; returns (code, reason)."""
        while True:
            _, op, payload = self.read()
            if op == 8:
                if len(payload) >= 2:
                    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()
                return 1005, ""

    def eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def raw_connect(port, path="/", extra=None, timeout=10):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(upgrade_request(path, extra=extra))
    status, headers, rest = read_http_response(sock, timeout)
    return sock, status, headers, FrameReader(sock, rest)
