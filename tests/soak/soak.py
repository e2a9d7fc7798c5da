#!/usr/bin/python3
"""Soak with faults: TLS load through the real wsgate while things break.

    /usr/bin/python3 tests/soak/soak.py [--seconds N] [--clients N]

Environment: WSGATE_BIN, WSGATE_BACKEND_BIN (default build-test/bin/...),
SOAK_SECONDS (default 300, `make soak`), SOAK_CLIENTS (default 12),
SOAK_RSS_SLACK_MB (default 64), SOAK_FD_SLACK (default 8).

Phase 1 (most of the time): wsgate with a TLS listener (deploy/dev-cert.sh)
in front of an echo upstream on a fixed port. Concurrent clients open
sessions of random kinds:
  - echo:   random-size messages (0..256 KiB, text or binary), every echo
            hash-checked in order; close 1000.
  - slow:   1 MiB messages sent in a burst, read back slowly with small
            client buffers (backpressure through the proxy), hash-checked.
  - vanish: raw TLS client that sends half a frame and resets the TCP
            connection.
Meanwhile the upstream is SIGKILLed and restarted on the same port every few
seconds. Asserts:
  - no byte lost, corrupted or reordered: on every session, each message
    received equals the next one sent (SHA-256); on sessions that end
    normally, all of them came back;
  - every session the proxy accepted (101) ends with a recorded close: the
    increase of sum(wsgate_closes_total) equals the number of 101s, and
    wsgate_connections_active returns to 0;
  - /proc/PID/fd count and VmRSS return near the baseline taken after a
    warm-up (slack: SOAK_FD_SLACK fds, SOAK_RSS_SLACK_MB MiB).
Phase 2 (last ~15%): wsgate-backend --context-policy strict behind a second
wsgate with --upstream-trace-url; sessions with and without a thread_id
claim, concurrently; asserts every 1011 has its incident:
wsgate_closes_total{code="1011"} == number of 1011s the clients saw ==
len(/incidents) == sum(wsgate_incidents_total).
Everything binds 127.0.0.1; time and session counts are bounded. Prints a
JSON summary (the figures docs/reliability.md records) and exits 1 on a
failed assertion.
"""
import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration", "lib"))
from wsgate_harness import Proc, fd_count, http_get, metrics, rss_kib, wait_for  # noqa: E402

import websockets  # noqa: E402  (Debian python3-websockets)

PYTHON = "/usr/bin/python3"
WSGATE = os.environ.get("WSGATE_BIN") or os.path.join(REPO, "build-test", "bin", "wsgate")
BACKEND = os.environ.get("WSGATE_BACKEND_BIN") or os.path.join(REPO, "build-test", "bin", "wsgate-backend")


# ------------------------------------------------------------ echo upstream

def echo_server(port):
    """The upstream: a plain echo on a fixed port (run as a child process)."""
    async def echo(ws, path=None):
        try:
            async for m in ws:
                await ws.send(m)
        except websockets.ConnectionClosed:
            pass

    async def main():
        async with websockets.serve(echo, "127.0.0.1", port, max_size=None, ping_interval=None,
                                    reuse_address=True):
            print("ready", flush=True)
            await asyncio.Future()
    asyncio.run(main())


class Upstream:
    def __init__(self, port):
        self.port = port
        self.proc = None
        self.restarts = 0

    def start(self):
        deadline = time.monotonic() + 10
        while True:
            self.proc = subprocess.Popen([PYTHON, os.path.abspath(__file__), "--echo-server", str(self.port)],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            if self.proc.stdout.readline().strip() == b"ready":
                return
            self.proc.wait()
            if time.monotonic() > deadline:
                raise AssertionError("echo upstream did not start")
            time.sleep(0.2)  # port still held by the dying one

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.kill()
        self.restarts += 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------ process stats

def closes_total(admin, code=None):
    total = 0.0
    for k, v in metrics(admin).items():
        if k.startswith("wsgate_closes_total{") and (code is None or f'code="{code}"' in k):
            total += v
    return total


def metric_sum(admin, name):
    return sum(v for k, v in metrics(admin).items() if k == name or k.startswith(name + "{"))


# ------------------------------------------------------------ client sessions

class Stats:
    def __init__(self):
        self.started = 0          # 101s seen by clients
        self.refused = 0          # handshake refused (upstream down: 502)
        self.connect_errors = 0
        self.ok = 0               # ended with our 1000, every echo back
        self.broken = 0           # ended early (upstream killed): prefix checked
        self.vanished = 0
        self.slow = 0
        self.messages = 0
        self.bytes = 0
        self.close_codes = {}
        self.violations = []      # lost / corrupted / reordered bytes

    def code(self, c):
        self.close_codes[str(c)] = self.close_codes.get(str(c), 0) + 1


def random_payload(rng):
    n = int(min(256 * 1024, rng.expovariate(1 / 16384)))
    if rng.random() < 0.3:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzé€😀 ") for _ in range(min(n, 4096)))
    return rng.randbytes(n)


def digest(m):
    return hashlib.sha256(m.encode() if isinstance(m, str) else m).hexdigest()


async def echo_session(url, ctx, rng, stats, slow=False):
    try:
        ws = await websockets.connect(url, ssl=ctx, max_size=None, ping_interval=None,
                                      open_timeout=10, close_timeout=5,
                                      max_queue=1 if slow else 32, read_limit=4096 if slow else 2 ** 16,
                                      write_limit=2 ** 16)
    except websockets.InvalidStatusCode:
        stats.refused += 1
        await asyncio.sleep(0.05)  # upstream down: 502; do not spin
        return
    except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
        stats.connect_errors += 1
        return
    stats.started += 1
    sent = []
    got = 0
    try:
        if slow:
            msgs = [rng.randbytes(1 << 20) for _ in range(rng.randint(2, 6))]
            for m in msgs:
                await ws.send(m)
                sent.append(digest(m))
            for _ in msgs:
                await asyncio.sleep(0.3)
                r = await asyncio.wait_for(ws.recv(), 30)
                if digest(r) != sent[got]:
                    stats.violations.append(f"slow session: message {got} differs")
                got += 1
        else:
            for _ in range(rng.randint(1, 40)):
                m = random_payload(rng)
                await ws.send(m)
                sent.append(digest(m))
                r = await asyncio.wait_for(ws.recv(), 30)
                if digest(r) != sent[got]:
                    stats.violations.append(f"echo session: message {got} differs (lost/reordered/corrupt)")
                got += 1
                stats.messages += 1
                stats.bytes += len(r)
        await ws.close(1000)
        stats.code(ws.close_code)
        if got == len(sent):
            stats.ok += 1
            if slow:
                stats.slow += 1
        else:
            stats.violations.append(f"session closed normally with {len(sent) - got} echoes missing")
    except (websockets.ConnectionClosed, asyncio.TimeoutError, OSError):
        # Broken by a fault (upstream killed: 1014/1006). What did arrive was checked above.
        stats.broken += 1
        stats.code(ws.close_code)
        try:
            await asyncio.wait_for(ws.close(), 5)
        except Exception:
            pass


async def vanish_session(port, ctx, rng, stats):
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost"), 10)
    except (OSError, asyncio.TimeoutError):
        stats.connect_errors += 1
        return
    sock = writer.get_extra_info("socket")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    writer.write((f"GET /vanish HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        stats.connect_errors += 1
        writer.transport.abort()
        return
    if b" 101 " not in head.split(b"\r\n")[0]:
        stats.refused += 1
        writer.transport.abort()
        return
    stats.started += 1
    n = rng.randint(10, 100000)
    payload = rng.randbytes(rng.randint(0, min(n - 1, 5000)))
    writer.write(struct.pack("!BBQ", 0x82, 0x80 | 127, n) + b"mask" + payload)  # half a frame
    try:
        await asyncio.wait_for(writer.drain(), 5)
    except Exception:
        pass
    await asyncio.sleep(rng.random() * 0.05)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    except (OSError, AttributeError):
        pass
    writer.transport.abort()
    stats.vanished += 1


async def load(port, ctx, seconds, clients, seed, stats, upstream=None, fault_every=None):
    url = f"wss://localhost:{port}/soak"
    deadline = time.monotonic() + seconds
    max_sessions = 100000

    async def client(i):
        rng = random.Random(seed * 1000 + i)
        while time.monotonic() < deadline and stats.started + stats.refused < max_sessions:
            kind = rng.random()
            if kind < 0.1:
                await vanish_session(port, ctx, rng, stats)
            elif kind < 0.2:
                await echo_session(url, ctx, rng, stats, slow=True)
            else:
                await echo_session(url, ctx, rng, stats)

    async def faults():
        rng = random.Random(seed)
        while time.monotonic() < deadline - 2:
            await asyncio.sleep(fault_every * (0.5 + rng.random()))
            if time.monotonic() >= deadline - 2:
                break
            await asyncio.to_thread(upstream.restart)
            await asyncio.sleep(0.3 + rng.random())
            await asyncio.to_thread(upstream.start)

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    if upstream and fault_every:
        tasks.append(asyncio.create_task(faults()))
    await asyncio.gather(*tasks)


# ------------------------------------------------------------ phase 2: 1011s

async def strict_session(url, token, cid):
    try:
        async with websockets.connect(url, extra_headers=[("Authorization", "Bearer " + token),
                                                           ("X-Correlation-ID", cid)],
                                      open_timeout=10, close_timeout=5, ping_interval=None) as ws:
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            return ws.close_code
    except websockets.ConnectionClosed as e:
        return e.code
    except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
        return f"error: {e}"


async def normal_then_close(url, token, cid):
    try:
        async with websockets.connect(url, extra_headers=[("Authorization", "Bearer " + token),
                                                           ("X-Correlation-ID", cid)],
                                      open_timeout=10, close_timeout=5, ping_interval=None) as ws:
            await asyncio.sleep(0.05)
            await ws.close(1000)
            return ws.close_code
    except websockets.ConnectionClosed as e:
        return e.code
    except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
        return f"error: {e}"


def phase_1011(tmp, ctx_files, sessions, fail):
    secret = os.path.join(tmp, "jwt.secret")
    with open(secret, "w") as f:
        f.write("soak-secret-0123456789abcdef0123456789abcdef")
    backend = Proc([BACKEND, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--jwt-secret-file", secret,
                    "--context-policy", "strict", "--log-format", "json"])
    proxy = None
    try:
        bl, ba = backend.ports["listen"], backend.ports["admin"]
        proxy = Proc([WSGATE, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--upstream",
                      f"ws://127.0.0.1:{bl}", "--upstream-trace-url",
                      f"http://127.0.0.1:{ba}/debug/traces/{{correlation_id}}",
                      "--log-format", "json", "--log-level", "warn",
                      "--incident-capacity", str(max(1000, sessions * 2))])
        pl, pa = proxy.ports["listen"], proxy.ports["admin"]

        def token(thread):
            args = [BACKEND, "token", "--sub", "staging-e2e-user-001", "--jwt-secret-file", secret]
            if thread:
                args += ["--thread-id", "thread-1"]
            return subprocess.run(args, capture_output=True, text=True, check=True, timeout=20).stdout.strip()
        bad, good = token(False), token(True)
        url = f"ws://127.0.0.1:{pl}/ws"

        async def run():
            sem = asyncio.Semaphore(16)

            async def one(i):
                async with sem:
                    cid = f"soak-1011-{i:06d}"
                    if i % 3 == 0:
                        return await normal_then_close(url, good, cid)
                    return await strict_session(url, bad, cid)
            return await asyncio.gather(*(one(i) for i in range(sessions)))
        codes = asyncio.run(run())
        seen_1011 = sum(1 for c in codes if c == 1011)
        errors = [c for c in codes if isinstance(c, str)]
        wait_for(lambda: metrics(pa).get("wsgate_connections_active", 0) == 0, 30, what="sessions to end")
        # Incidents are written after the trace fetch: give them time.
        def incident_count():
            status, body, _ = http_get(pa, f"/incidents?limit={sessions * 2}")
            return len(json.loads(body)["incidents"]) if status == 200 else -1
        try:
            wait_for(lambda: incident_count() >= closes_total(pa, 1011), 30, what="incidents")
        except AssertionError:
            pass
        m1011 = closes_total(pa, 1011)
        n_inc = incident_count()
        inc_total = metric_sum(pa, "wsgate_incidents_total")
        out = {"sessions": sessions, "client_1011": seen_1011, "closes_1011": m1011, "incidents": n_inc,
               "incidents_total": inc_total, "client_errors": len(errors)}
        if seen_1011 == 0:
            fail("phase 1011: no 1011 happened (strict policy, no thread_id)")
        if not (seen_1011 == m1011 == n_inc == inc_total):
            fail(f"phase 1011: 1011s seen {seen_1011}, closes_total{{1011}} {m1011}, /incidents {n_inc}, "
                 f"incidents_total {inc_total}")
        if errors:
            fail(f"phase 1011: {len(errors)} client errors, e.g. {errors[:3]}")
        logs = proxy.logs() + backend.logs()
        if bad.split(".")[2] in logs or good.split(".")[2] in logs:
            fail("phase 1011: a token signature appears in a log")
        return out
    finally:
        if proxy:
            proxy.stop()
        backend.stop()


# ------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    ap.add_argument("--clients", type=int, default=int(os.environ.get("SOAK_CLIENTS", 12)))
    ap.add_argument("--fault-every", type=float, default=5.0, help="mean seconds between upstream kills")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", 1)))
    ap.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo_server:
        return echo_server(args.echo_server)

    failures = []

    def fail(msg):
        print("SOAK FAIL: " + msg, file=sys.stderr, flush=True)
        failures.append(msg)

    tmp = tempfile.mkdtemp(prefix="wsgate-soak-")
    subprocess.run([os.path.join(REPO, "deploy", "dev-cert.sh"), tmp], check=True, stdout=subprocess.DEVNULL)
    ctx = ssl.create_default_context(cafile=os.path.join(tmp, "ca.crt"))
    load_seconds = max(10.0, args.seconds * 0.85)
    phase2_sessions = int(min(300, max(30, args.seconds)))

    up = Upstream(free_port())
    up.start()
    env = os.environ.copy()
    # ASan holds freed memory in a quarantine (256 MiB by default): keep it
    # small so VmRSS shows what the proxy itself keeps.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "detect_leaks=1") + \
        ":quarantine_size_mb=16:allocator_release_to_os_interval_ms=200"
    proxy = None
    summary = {}
    try:
        proxy = Proc([WSGATE, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                      "--tls-cert", os.path.join(tmp, "server.crt"), "--tls-key", os.path.join(tmp, "server.key"),
                      "--upstream", f"ws://127.0.0.1:{up.port}",
                      "--log-format", "json", "--log-level", "warn"], env=env)
        pid, port, admin = proxy.proc.pid, proxy.ports["listen"], proxy.ports["admin"]

        # Warm-up (fills pools, TLS caches), then the baseline.
        warm = Stats()
        asyncio.run(load(port, ctx, 3, 4, args.seed + 7, warm))
        wait_for(lambda: metrics(admin).get("wsgate_connections_active", 0) == 0, 30, what="warm-up end")
        time.sleep(1)
        base_fd, base_rss = fd_count(pid), rss_kib(pid)
        closes_before = closes_total(admin)

        stats = Stats()
        t0 = time.monotonic()
        asyncio.run(load(port, ctx, load_seconds, args.clients, args.seed, stats, up, args.fault_every))
        load_elapsed = time.monotonic() - t0
        peak_rss = rss_kib(pid)
        if up.proc.poll() is not None:
            up.start()
        try:
            wait_for(lambda: metrics(admin).get("wsgate_connections_active", 0) == 0, 60,
                     what="wsgate_connections_active == 0")
        except AssertionError as e:
            fail(str(e))
        closes = closes_total(admin) - closes_before
        # Let the allocator settle, then compare with the baseline.
        time.sleep(2)
        end_fd, end_rss = fd_count(pid), rss_kib(pid)
        fd_slack = int(os.environ.get("SOAK_FD_SLACK", 8))
        rss_slack = int(os.environ.get("SOAK_RSS_SLACK_MB", 64)) * 1024

        summary["load"] = {
            "seconds": round(load_elapsed, 1), "clients": args.clients, "sessions_101": stats.started,
            "refused_502": stats.refused, "connect_errors": stats.connect_errors, "ok": stats.ok,
            "broken_by_faults": stats.broken, "vanished_mid_frame": stats.vanished, "slow_readers": stats.slow,
            "echoed_messages": stats.messages, "echoed_bytes": stats.bytes, "upstream_restarts": up.restarts,
            "client_close_codes": stats.close_codes, "closes_total_delta": closes,
            "fd_baseline": base_fd, "fd_end": end_fd, "rss_kib_baseline": base_rss, "rss_kib_peak": peak_rss,
            "rss_kib_end": end_rss, "violations": stats.violations[:20],
        }
        for v in stats.violations[:20]:
            fail(v)
        if stats.started == 0 or stats.ok == 0:
            fail("no session completed")
        if closes != stats.started:
            fail(f"sum(wsgate_closes_total) rose by {closes}, but {stats.started} sessions got a 101")
        if end_fd > base_fd + fd_slack:
            fail(f"fd count {end_fd} vs baseline {base_fd}")
        if end_rss > base_rss + rss_slack:
            fail(f"VmRSS {end_rss} KiB vs baseline {base_rss} KiB")
        if proxy.proc.poll() is not None:
            fail(f"wsgate exited during the soak: {proxy.proc.returncode}")
    finally:
        up.kill()  # first: nothing below may leave the echo upstream behind
        if proxy:
            proxy.stop()
            rc = proxy.proc.returncode
            summary.setdefault("load", {})["wsgate_exit"] = rc
            with open(proxy.log_path, "rb") as f:
                logs = f.read().decode("utf-8", "replace")
            if any(s in logs for s in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer")):
                fail("sanitizer report in wsgate's stderr: " + proxy.log_path)

    if os.path.exists(BACKEND):
        summary["incidents"] = phase_1011(tmp, None, phase2_sessions, fail)
    else:
        fail(f"{BACKEND} not built: phase 1011 skipped")
    summary["failures"] = failures
    print(json.dumps(summary, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
