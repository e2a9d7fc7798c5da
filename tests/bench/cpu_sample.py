#!/usr/bin/python3
"""Proxy CPU per round trip and the CPU shares of the load and proxy cores for one
compare.sh throughput cell.

  cpu_sample.py sample OUT T0 WARMUP DURATION CLK_TCK LOAD_CPUS PROXY_CPUS LOAD_EXE PID...
  cpu_sample.py merge RESULT_JSON SAMPLE_JSON BENCH_END

The load tool counts round trips only inside its window [warm-up end,
warm-up end + duration], and that window starts after its connection phase,
whose length we cannot see from here. So the sampler does not try to hit the
window exactly: it samples /proc at T0 + warm-up and T0 + warm-up + duration
- guard (T0 = just before the tool is launched), an interval that lies
inside the load phase (the tool's own window ends at T0 + setup + warm-up +
duration, later still), and compares rates:
  proxy_cpu_us_per_msg = (proxy CPU s / interval s) / (messages_per_sec) * 1e6
This is accurate as long as the load is steady over the load phase, which
closed-loop load after warm-up is. The merge checks that the setup (exec +
connect) took less than the warm-up, so the interval did not start before
the load, and that the tool was still running at the end sample; otherwise
the figures are null and cpu_sample.problem says why. LOAD_CPUS and
PROXY_CPUS are taskset lists ("1", "0,1", "0-1").

How busy each side was comes from the processes' own CPU time, not from
/proc/stat. A process's utime + stime is scaled to the scheduler's exact
runtime, but /proc/stat's per-core counters are tick samples: on this
machine's kernel they read 0-50 % for a core whose processes used 30 % of it
under light, bursty load (they agree near saturation). So
  load_cpu_share  = CPU of every running LOAD_EXE process (the load tool and
                    the echoes) / interval / number of LOAD_CPUS
  proxy_cpu_share = CPU of the proxy PIDs / interval / number of PROXY_CPUS
The /proc/stat figures stay in the sample (*_core_busy) for comparison.
"""
import json, os, sys, time


def proc_ticks(pid):  # utime + stime (fields 14 and 15), clock ticks; all threads
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    v = s[s.rindex(")") + 2:].split()  # v[0] is field 3 (state)
    return int(v[14 - 3]) + int(v[15 - 3])


def cores():  # cpuN -> (total, idle + iowait, steal), ticks; guest is inside user
    r = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                fields = line.split()
                v = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
                r[int(fields[0][3:])] = (sum(v), v[3] + v[4], v[7])
    return r


def processes_of(exe):  # PIDs whose executable is exe
    want = os.path.realpath(exe)
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/exe") == want:
                    found.append(int(name))
            except OSError:
                pass
    return sorted(found)


def cpu_seconds(p0, p1, pids, tck):  # None when a process went away in between
    if not pids or any(p0.get(x) is None or p1.get(x) is None for x in pids):
        return None
    return sum(p1[x] - p0[x] for x in pids) / tck


def snapshot(pids):
    c = cores()
    p = {}
    for pid in pids:
        try:
            p[pid] = proc_ticks(pid)
        except (OSError, ValueError, IndexError):
            p[pid] = None
    return time.monotonic(), time.time(), c, p


def sample(out, t0, warmup, duration, tck, load_cpu, proxy_cpu, load_exe, pids):
    guard = min(0.2, duration / 10)
    time.sleep(max(0.0, t0 + warmup - time.time()))
    load_pids = processes_of(load_exe)
    m0, r0, c0, p0 = snapshot(pids + load_pids)
    time.sleep(max(0.0, t0 + warmup + duration - guard - time.time()))
    m1, r1, c1, p1 = snapshot(pids + load_pids)
    span = m1 - m0

    def busy(ns):
        if any(n not in c0 or n not in c1 for n in ns):
            return None, None
        total = sum(c1[n][0] - c0[n][0] for n in ns)
        if total <= 0:
            return None, None
        idle = sum(c1[n][1] - c0[n][1] for n in ns)
        steal = sum(c1[n][2] - c0[n][2] for n in ns)
        return (total - idle) / total, steal / total

    lb, ls = busy(load_cpu)
    pb, ps = busy(proxy_cpu)
    proxy_s = cpu_seconds(p0, p1, pids, tck)
    # A load-side process that exits inside the interval (an echo stopped
    # between cells) is left out, not fatal: the load tool itself outlives it.
    load_s = cpu_seconds(p0, p1, [x for x in load_pids if p1.get(x) is not None], tck)

    def share(seconds, ncores):
        return seconds / span / ncores if seconds is not None and span > 0 and ncores else None

    json.dump({"t0": t0, "start": r0, "end": r1, "interval_s": span, "pids": pids, "clk_tck": tck,
               "proxy_cpu_s": proxy_s,
               "proxy_processes_gone": bool(pids) and proxy_s is None,
               "load_exe": load_exe, "load_pids": load_pids, "load_cpu_s": load_s,
               "load_cpu_share": share(load_s, len(load_cpu)),
               "proxy_cpu_share": share(proxy_s, len(proxy_cpu)),
               "load_core": load_cpu, "load_core_busy": lb, "load_core_steal": ls,
               "proxy_core": proxy_cpu, "proxy_core_busy": pb, "proxy_core_steal": ps},
              open(out, "w"))


def merge(result_path, sample_path, bench_end):
    with open(result_path) as f:
        r = json.loads(f.read() or "{}")
    try:
        with open(sample_path) as f:
            s = json.load(f)
    except (OSError, ValueError):
        s = {"problem": "no CPU sample"}
    r["proxy_cpu_us_per_msg"] = r["load_core_busy"] = r["proxy_core_busy"] = None
    r["load_cpu_share"] = r["proxy_cpu_share"] = None
    if "problem" not in s:
        setup = bench_end - s["t0"] - r.get("warmup_s", 0) - r.get("duration_s", 0)
        if s["end"] >= bench_end:
            s["problem"] = "end sample after the load tool exited"
        elif setup >= r.get("warmup_s", 0):
            s["problem"] = f"setup took {setup:.2f} s >= warm-up: sample may start before the load"
        elif s["proxy_processes_gone"]:
            s["problem"] = "a proxy process exited during the sample"
        s["setup_s_max"] = round(setup, 3)
    if "problem" not in s:
        r["load_core_busy"] = s["load_core_busy"]
        r["proxy_core_busy"] = s["proxy_core_busy"]
        r["load_cpu_share"] = s.get("load_cpu_share")
        r["proxy_cpu_share"] = s.get("proxy_cpu_share")
        rate = r.get("messages_per_sec") or 0
        if s["proxy_cpu_s"] is not None and rate > 0 and s["interval_s"] > 0:
            r["proxy_cpu_us_per_msg"] = s["proxy_cpu_s"] / s["interval_s"] / rate * 1e6
    r["cpu_sample"] = s
    with open(result_path, "w") as f:
        json.dump(r, f)
        f.write("\n")


def cpu_list(text):  # taskset -c syntax: "1", "0,1", "0-3"
    r = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        r.extend(range(int(lo), int(hi or lo) + 1))
    return r


if sys.argv[1] == "sample":
    a = sys.argv[2:]
    sample(a[0], float(a[1]), float(a[2]), float(a[3]), int(a[4]), cpu_list(a[5]), cpu_list(a[6]),
           a[7], [int(x) for x in a[8:]])
else:
    merge(sys.argv[2], sys.argv[3], float(sys.argv[4]))
