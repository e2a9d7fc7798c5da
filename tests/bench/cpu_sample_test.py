#!/usr/bin/python3
"""Tests of tests/bench/cpu_sample.py and the CPU columns of report.py.

1. The sampler counts the CPU of processes running the load executable and
   of the proxy PIDs it is given: a copy of `yes` (busy) under a name of its
   own must show a clear share, a copy of `sleep` (idle) next to none.
   Bounds are loose (busy > 0.2 of a core, idle < 0.05): they tell counted
   from not counted, never how fast anything is.
2. merge() carries the shares into the result and derives the proxy CPU per
   message from the sample's figures.
3. report.py flags a cell as load-bound by the processes' share, not by
   /proc/stat's tick-sampled core busy, and falls back to the latter for
   results written before the share existed.

usage: cpu_sample_test.py   (run with /usr/bin/python3)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLER = os.path.join(HERE, "cpu_sample.py")
REPORT = os.path.join(HERE, "report.py")


def run_sampler(work):
    busy_exe = os.path.join(work, "fake-load")
    idle_exe = os.path.join(work, "fake-idle")
    shutil.copy(shutil.which("yes"), busy_exe)
    shutil.copy(shutil.which("sleep"), idle_exe)
    busy = subprocess.Popen([busy_exe], stdout=subprocess.DEVNULL)
    idle = subprocess.Popen([idle_exe, "30"])
    try:
        out = os.path.join(work, "sample.json")
        t0 = time.time()
        tck = os.sysconf("SC_CLK_TCK")
        # The busy process is the load side; the idle one stands in for a proxy.
        subprocess.run([sys.executable, SAMPLER, "sample", out, str(t0), "0.2", "1.5", str(tck),
                        "0", "0", busy_exe, str(idle.pid)], check=True, timeout=30)
        with open(out) as f:
            s = json.load(f)
        assert s["load_pids"] == [busy.pid], s["load_pids"]
        assert s["load_cpu_share"] > 0.2, f"busy load process not counted: {s}"
        assert s["proxy_cpu_share"] < 0.05, f"idle proxy counted as busy: {s}"

        # And the other way round: the idle executable as the load side.
        out2 = os.path.join(work, "sample2.json")
        t0 = time.time()
        subprocess.run([sys.executable, SAMPLER, "sample", out2, str(t0), "0.2", "1.5", str(tck),
                        "0", "0", idle_exe, str(busy.pid)], check=True, timeout=30)
        with open(out2) as f:
            s2 = json.load(f)
        assert s2["load_pids"] == [idle.pid], s2["load_pids"]
        assert s2["load_cpu_share"] < 0.05, f"idle load process counted as busy: {s2}"
        assert s2["proxy_cpu_share"] > 0.2, f"busy proxy not counted: {s2}"
        return out
    finally:
        busy.kill()
        idle.kill()
        busy.wait()
        idle.wait()


def check_merge(work, sample_path):
    with open(sample_path) as f:
        s = json.load(f)
    result = os.path.join(work, "tput-x-ws-64-1-r1.json")
    with open(result, "w") as f:
        json.dump({"messages_per_sec": 1000.0, "warmup_s": 0.2, "duration_s": 1.5, "messages": 1500}, f)
    # The tool "ended" just after the end sample, as it does in compare.sh.
    subprocess.run([sys.executable, SAMPLER, "merge", result, sample_path, str(s["end"] + 0.05)],
                   check=True, timeout=30)
    with open(result) as f:
        r = json.load(f)
    assert r["cpu_sample"].get("problem") is None, r["cpu_sample"]
    assert r["load_cpu_share"] == s["load_cpu_share"], r
    assert r["proxy_cpu_share"] == s["proxy_cpu_share"], r
    want = s["proxy_cpu_s"] / s["interval_s"] / 1000.0 * 1e6
    assert abs(r["proxy_cpu_us_per_msg"] - want) < 1e-9, (r["proxy_cpu_us_per_msg"], want)


def tput(d, target, share, core_busy):
    r = {"messages_per_sec": 50000.0, "mb_per_sec": 3.2, "messages": 400000, "errors": 0,
         "latency_us": {"p50": 500, "p99": 700, "p999": 900}, "warmup_s": 2, "duration_s": 8,
         "proxy_cpu_us_per_msg": 14.0, "load_core_busy": core_busy, "proxy_core_busy": core_busy,
         "proxy_cpu_share": 0.8, "cpu_sample": {}}
    if share is not None:
        r["load_cpu_share"] = share
    with open(os.path.join(d, f"tput-{target}-ws-64-32-r1.json"), "w") as f:
        json.dump(r, f)


def report(d):
    out = subprocess.run([sys.executable, REPORT, d], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def check_report(work):
    # Load tool at 99 % by its own CPU, /proc/stat saying 10 %: load-bound.
    d = os.path.join(work, "r1")
    os.mkdir(d)
    for t in ("wsgate", "nginx"):
        tput(d, t, 0.99, 0.10)
    text = report(d)
    assert "Load tool and echo at >= 95 % of the load core" in text, text
    assert "CPU L / P 0.99 / 0.80" in text, text

    # The opposite: /proc/stat says 99 %, the processes used half: not load-bound.
    d = os.path.join(work, "r2")
    os.mkdir(d)
    for t in ("wsgate", "nginx"):
        tput(d, t, 0.50, 0.99)
    text = report(d)
    assert "Load tool and echo at >= 95 %" not in text, text

    # Results from before the share: /proc/stat's figure is what there is.
    d = os.path.join(work, "r3")
    os.mkdir(d)
    for t in ("wsgate", "nginx"):
        tput(d, t, None, 0.98)
    text = report(d)
    assert "Load tool and echo at >= 95 % of the load core" in text, text


def main():
    work = tempfile.mkdtemp(prefix="cpu-sample-test-")
    try:
        sample_path = run_sampler(work)
        check_merge(work, sample_path)
        check_report(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
