#!/usr/bin/python3
"""Smoke test of tests/bench/ab.sh: one pair of 1 s runs, A at one worker and
B with the tap off, then B as nginx and as HAProxy (peer_as_wsgate.sh).
Asserts the report's shape and that each side relayed (positive CPU per
round trip and message rate) -- never which side is faster.

usage: ab_smoke_test.py PATH/TO/ab.sh PATH/TO/wsgate PATH/TO/wsgate-bench
"""
import os
import re
import subprocess
import sys


def check_report(text, rate=None):
    for side in "AB":
        m = re.search(rf"^{side} µs/rt ([\d.]+) median ([\d.]+) \(msg/s median (\d+)\)$", text, re.M)
        assert m, f"no line for {side}"
        assert float(m.group(1)) > 0 and int(m.group(3)) > 0, m.group(0)
        if rate:  # open loop: about the offered rate, not the closed loop's
            assert 0.5 * rate <= int(m.group(3)) <= 1.5 * rate, m.group(0)
    assert re.search(r"^A/B per pair [\d.]+ median [\d.]+$", text, re.M)
    for side in "AB":
        m = re.search(rf"^{side} p99 µs ([\d ]+) median (\d+)$", text, re.M)
        assert m and int(m.group(2)) > 0, f"no p99 line for {side}"


def main():
    ab, wsgate, bench = sys.argv[1:4]
    env = dict(os.environ, WSGATE=wsgate, BENCH_TOOL=bench)
    # Cores 0 and 1 may not both exist on every runner: pin both sides to 0.
    env.update(BENCH_PROXY_CPU="0", BENCH_LOAD_CPU="0")
    args = [ab, "unused-build-dir", "1", "64", "2", "1", "--", "--threads", "1",
            "--", "--threads", "1", "--tap-mode", "off"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=100)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.returncode
    check_report(out.stdout)
    # TLS on the listener, open loop.
    out = subprocess.run(args, env=dict(env, BENCH_SCHEME="wss", BENCH_RATE="200"),
                         capture_output=True, text=True, timeout=100)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.returncode
    check_report(out.stdout, rate=200)
    # A peer in wsgate's place (peer_as_wsgate.sh as B): nginx over ws,
    # HAProxy over wss, each from the comparison's templates.
    peer = os.path.join(os.path.dirname(ab), "peer_as_wsgate.sh")
    for name, scheme in (("nginx", "ws"), ("haproxy", "wss")):
        peer_args = args[:args.index("--", args.index("--") + 1) + 1] + ["--peer", name]
        out = subprocess.run(peer_args, env=dict(env, WSGATE_B=peer, BENCH_SCHEME=scheme),
                             capture_output=True, text=True, timeout=100)
        print(out.stdout, out.stderr)
        assert out.returncode == 0, (name, out.returncode)
        check_report(out.stdout)
    # Usage errors are reported, not run.
    bad = subprocess.run([ab, "x", "1", "64", "2", "1", "--threads", "1"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "expected --" in bad.stderr, (bad.returncode, bad.stderr)


if __name__ == "__main__":
    main()
