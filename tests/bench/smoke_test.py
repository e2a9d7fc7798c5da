#!/usr/bin/python3
"""Smoke test of wsgate-bench (ctest label bench-smoke): an echo upstream on
port 0, ~2 s of closed-loop load with 4 connections, then short open-loop
runs (one checks the achieved rate against the offered one), a connect run
and small idle holds (cold, and warm: one echo per session first). Asserts
correctness only (no errors, messages echoed, sessions held, the open-loop
rate within generous bounds) -- never speed.

usage: smoke_test.py PATH/TO/wsgate-bench
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time


def start_echo(bench, tmp, extra=()):
    port_file = os.path.join(tmp, "echo.port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    proc = subprocess.Popen([bench, "echo", "--listen", "127.0.0.1:0", "--port-file", port_file, *extra],
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                return proc, int(f.read().strip())
        if proc.poll() is not None:
            raise SystemExit(f"echo exited early with {proc.returncode}")
        time.sleep(0.02)
    proc.kill()
    raise SystemExit("echo did not write its port file")


def run_json(cmd, timeout=60):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    if not lines:
        raise SystemExit(f"no JSON from {cmd}: rc={out.returncode} stderr={out.stderr}")
    return out.returncode, json.loads(lines[0])


def expect(cond, what, result):
    if not cond:
        raise SystemExit(f"FAILED: {what}: {json.dumps(result)}")
    print(f"ok: {what}")


def main():
    bench = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        echo, port = start_echo(bench, tmp)
        url = f"ws://127.0.0.1:{port}/smoke"
        try:
            rc, r = run_json([bench, "load", "--url", url, "--connections", "4", "--size", "1024",
                              "--inflight", "2", "--duration", "2", "--warmup", "0.2"])
            expect(rc == 0 and r["errors"] == 0 and r["messages"] > 0 and r["connected"] == 4,
                   "closed-loop load echoes without errors", r)
            expect(r["latency_us"]["p50"] > 0 and r["latency_us"]["max"] >= r["latency_us"]["p99"],
                   "latency percentiles are ordered", r)

            rc, r = run_json([bench, "load", "--url", url, "--connections", "2", "--size", "70000",
                              "--rate", "200", "--duration", "1", "--warmup", "0"])
            expect(rc == 0 and r["errors"] == 0 and r["messages"] > 0 and r["loop"] == "open",
                   "open-loop load with 64-bit-length frames", r)

            # Open loop below what the echo sustains: the achieved rate follows the
            # offered one (generous bounds: a shared machine), percentiles are ordered.
            rate = 2000
            rc, r = run_json([bench, "load", "--url", url, "--connections", "4", "--size", "64",
                              "--rate", str(rate), "--duration", "1.5", "--warmup", "0.3"])
            lat = r.get("latency_us", {})
            expect(rc == 0 and r["errors"] == 0 and r.get("offered_per_sec") == rate
                   and 0.5 <= r.get("achieved_ratio", 0) <= 1.2
                   and 0.5 * rate <= r.get("sent_per_sec", 0) <= 1.2 * rate,
                   "open loop achieves its offered rate", r)
            expect(0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]
                   and r["send_lag_us"]["samples"] > 0 and r["outstanding_at_end"] >= 0,
                   "open loop reports ordered p50/p99/p999 and the send lag", r)

            rc, r = run_json([bench, "connect", "--url", url, "--duration", "1", "--concurrency", "4"])
            expect(rc == 0 and r["errors"] == 0 and r["handshakes"] > 0, "connect loop", r)

            hold = subprocess.Popen([bench, "hold", "--url", url, "--connections", "50", "--hold", "30"],
                                    stdout=subprocess.PIPE, text=True)
            first = json.loads(hold.stdout.readline())
            expect(first["established"] == 50 and first["errors"] == 0, "hold opens 50 sessions", first)
            hold.send_signal(signal.SIGTERM)
            last = json.loads(hold.stdout.readline())
            expect(hold.wait(timeout=10) == 0 and last["dropped"] == 0, "hold releases on SIGTERM", last)

            hold = subprocess.Popen([bench, "hold", "--url", url, "--connections", "20", "--hold", "30",
                                     "--warm", "64"], stdout=subprocess.PIPE, text=True)
            first = json.loads(hold.stdout.readline())
            expect(first["established"] == 20 and first["errors"] == 0 and first["warm_bytes"] == 64,
                   "hold --warm echoes once on each of 20 sessions", first)
            hold.send_signal(signal.SIGTERM)
            last = json.loads(hold.stdout.readline())
            expect(hold.wait(timeout=10) == 0 and last["dropped"] == 0, "warm hold releases", last)

            rc, r = run_json([bench, "load", "--url", "ws://127.0.0.1:1/", "--duration", "0.2",
                              "--warmup", "0", "--timeout", "2"])
            expect(rc == 1 and r["errors"] == 1 and r["connected"] == 0,
                   "refused connection is an error with exit code 1", r)
        finally:
            echo.send_signal(signal.SIGTERM)
            echo.wait(timeout=10)
        expect(echo.returncode == 0, "echo exits 0 on SIGTERM", {"rc": echo.returncode})

        bad = subprocess.run([bench, "load"], capture_output=True)
        expect(bad.returncode == 2, "missing --url is a usage error (2)", {"rc": bad.returncode})
    print("bench smoke: passed")


if __name__ == "__main__":
    main()
