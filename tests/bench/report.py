#!/usr/bin/python3
"""Markdown report of one compare.sh run: medians over rounds, per-round
ratios of wsgate to the better of nginx and HAProxy, proxy CPU per round trip
with the busy fractions of the load and proxy cores, memory and handshakes.

usage: report.py RESULTS_DIR
"""
import glob
import json
import os
import re
import statistics
import sys

ORDER = ["direct", "wsgate", "wsgate-tapoff", "nginx", "haproxy"]
LABEL = {"direct": "direct", "wsgate": "wsgate", "wsgate-tapoff": "wsgate tap off",
         "nginx": "nginx", "haproxy": "HAProxy"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"failed": True}


def human(v):
    return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"


def size_label(n):
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


SATURATED = 0.95  # load core busy fraction from which throughput says little about the proxy


def median_of(per, field):
    """Median of a numeric field over the rounds that have it, else None."""
    vals = [per[r][field] for r in sorted(per) if isinstance(per[r].get(field), (int, float))]
    return statistics.median(vals) if vals else None


def case_label(key):
    scheme, size, conns = key
    return f"{scheme} {size_label(size)} x {conns}"


def main():
    d = sys.argv[1]
    problems = []
    m0, m1 = load(os.path.join(d, "meta-start.json")), load(os.path.join(d, "meta-end.json"))
    if not m0.get("failed"):
        print(f"Run {os.path.basename(os.path.abspath(d))}: {m0.get('nproc')} CPUs, "
              f"{m0.get('rounds')} round(s) x {m0.get('duration_s')} s (+{m0.get('warmup_s')} s warm-up); "
              f"load average {' '.join(m0.get('loadavg', []))} before, "
              f"{' '.join(m1.get('loadavg', []))} after; {m0.get('nginx')}; "
              f"{(m0.get('haproxy') or '').split(' - ')[0]}; {m0.get('openssl')}; git {m0.get('git')}\n")
    tput = {}  # (scheme, size, conns) -> target -> round -> result
    for p in glob.glob(os.path.join(d, "tput-*.json")):
        m = re.match(r"tput-(.+)-(wss?)-(\d+)-(\d+)-r(\d+)\.json$", os.path.basename(p))
        if not m:
            continue
        t, scheme, size, conns, rnd = m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), int(m.group(5))
        r = load(p)
        if r.get("failed") or r.get("errors", 0) or not r.get("messages"):
            problems.append(f"{os.path.basename(p)}: errors={r.get('errors')} {r.get('error_samples', r)}")
        elif (r.get("cpu_sample") or {}).get("problem"):
            problems.append(f"{os.path.basename(p)}: CPU sample: {r['cpu_sample']['problem']}")
        tput.setdefault((scheme, size, conns), {}).setdefault(t, {})[rnd] = r

    present = [t for t in ORDER if any(t in v for v in tput.values())]
    if tput:
        rounds = sorted({r for v in tput.values() for per in v.values() for r in per})
        print(f"### Throughput (round trips/s, median of {len(rounds)} round(s)) and p99 latency\n")
        head = ["case"] + [LABEL[t] for t in present]
        has_w = "wsgate" in present and ("nginx" in present or "haproxy" in present)
        if has_w:
            head += ["wsgate ÷ best(nginx, HAProxy) per round", "p99 wsgate / best"]
        if "wsgate" in present and "wsgate-tapoff" in present:
            head += ["tap cost"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for key in sorted(tput, key=lambda k: (k[1], k[0])):
            scheme, size, conns = key
            row = [f"{scheme} {size_label(size)} x {conns}"]
            med = {}
            p99 = {}
            for t in present:
                per = tput[key].get(t, {})
                vals = [per[r].get("messages_per_sec", 0) for r in sorted(per)]
                lats = [per[r].get("latency_us", {}).get("p99", 0) for r in sorted(per)]
                if not vals:
                    row.append("n/a")
                    continue
                med[t] = statistics.median(vals)
                p99[t] = statistics.median(lats)
                mb = statistics.median([per[r].get("mb_per_sec", 0) for r in sorted(per)])
                row.append(f"{human(med[t])} ({mb:.0f} MB/s) p99 {p99[t]:.0f} µs")
            if has_w:
                ratios = []
                for r in rounds:
                    w = tput[key].get("wsgate", {}).get(r, {}).get("messages_per_sec")
                    best = max(tput[key].get(x, {}).get(r, {}).get("messages_per_sec", 0)
                               for x in ("nginx", "haproxy"))
                    ratios.append(f"{w / best:.2f}" if w is not None and best else "n/a")
                row.append(" ".join(ratios))
                rivals = [p99[x] for x in ("nginx", "haproxy") if x in p99 and x in med]
                best_t = max((x for x in ("nginx", "haproxy") if x in med), key=lambda x: med[x], default=None)
                row.append(f"{p99['wsgate'] / p99[best_t]:.2f}" if best_t and p99.get(best_t) and "wsgate" in p99 else "n/a")
            if "wsgate" in present and "wsgate-tapoff" in present:
                if med.get("wsgate-tapoff") and "wsgate" in med:
                    row.append(f"{(1 - med['wsgate'] / med['wsgate-tapoff']) * 100:+.1f} %")
                else:
                    row.append("n/a")
            print("| " + " | ".join(row) + " |")
        if "wsgate" not in present:
            print("\nwsgate: not measured (binary missing or did not start).")
        print()

        # Cells where the load core was saturated while a proxy was measured:
        # median over every (proxy target, round) run of the cell.
        saturated = []
        for key in sorted(tput, key=lambda k: (k[1], k[0])):
            busy = [r["load_core_busy"] for t, per in tput[key].items() if t != "direct"
                    for r in per.values() if isinstance(r.get("load_core_busy"), (int, float))]
            if busy and statistics.median(busy) >= SATURATED:
                saturated.append(f"{case_label(key)} ({statistics.median(busy):.2f})")
        if saturated:
            print(f"Load core >= {SATURATED * 100:.0f} % busy (median over the proxied runs) in "
                  f"{', '.join(saturated)} — load core saturated: throughput is bound by the load "
                  f"generator and echo, not the proxy; compare proxy CPU per message.\n")

        cpu_present = [t for t in present
                       if any(isinstance(r.get(f), (int, float)) for v in tput.values()
                              for r in v.get(t, {}).values()
                              for f in ("proxy_cpu_us_per_msg", "load_core_busy"))]
        if cpu_present:
            print(f"### Proxy CPU per round trip (µs of proxy user+system CPU per message, median of "
                  f"{len(rounds)} round(s); lower is better)\n")
            print("(cores L / P) = busy fraction of the load core (generator + echo) and of the proxy "
                  "core over the measured window, median of the rounds. direct has no proxy.\n")
            has_wc = "wsgate" in cpu_present and ("nginx" in cpu_present or "haproxy" in cpu_present)
            head = ["case"] + [LABEL[t] for t in cpu_present]
            if has_wc:
                head += ["wsgate ÷ best(nginx, HAProxy) per round (lower is better)"]
            if "wsgate" in cpu_present and "wsgate-tapoff" in cpu_present:
                head += ["tap CPU cost"]
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for key in sorted(tput, key=lambda k: (k[1], k[0])):
                row = [case_label(key)]
                cpu = {}
                for t in cpu_present:
                    per = tput[key].get(t, {})
                    if not per:
                        row.append("n/a")
                        continue
                    cpu[t] = median_of(per, "proxy_cpu_us_per_msg")
                    lb, pb = median_of(per, "load_core_busy"), median_of(per, "proxy_core_busy")
                    fig = "—" if t == "direct" else (f"{cpu[t]:.1f} µs" if cpu[t] is not None else "n/a")
                    cores = (f" (cores {lb:.2f} / {pb:.2f})" if lb is not None and pb is not None
                             else "")
                    row.append(fig + cores)
                if has_wc:
                    ratios = []
                    for r in rounds:
                        w = tput[key].get("wsgate", {}).get(r, {}).get("proxy_cpu_us_per_msg")
                        peers = [tput[key].get(x, {}).get(r, {}).get("proxy_cpu_us_per_msg")
                                 for x in ("nginx", "haproxy")]
                        peers = [v for v in peers if isinstance(v, (int, float)) and v > 0]
                        ratios.append(f"{w / min(peers):.2f}" if isinstance(w, (int, float)) and peers
                                      else "n/a")
                    row.append(" ".join(ratios))
                if "wsgate" in cpu_present and "wsgate-tapoff" in cpu_present:
                    if cpu.get("wsgate") is not None and cpu.get("wsgate-tapoff"):
                        row.append(f"{(cpu['wsgate'] / cpu['wsgate-tapoff'] - 1) * 100:+.1f} %")
                    else:
                        row.append("n/a")
                print("| " + " | ".join(row) + " |")
            print()

    conn = {}
    for p in glob.glob(os.path.join(d, "connect-*.json")):
        m = re.match(r"connect-(.+)-(wss?)\.json$", os.path.basename(p))
        if m:
            r = load(p)
            conn[m.group(1)] = r
            if r.get("failed") or r.get("errors", 0):
                problems.append(f"{os.path.basename(p)}: errors={r.get('errors')} {r.get('error_samples', r)}")
    if conn:
        print("### TLS + WebSocket handshakes per second (wss, full handshakes)\n")
        ts = [t for t in ORDER if t in conn]
        print("| | " + " | ".join(LABEL[t] for t in ts) + " |")
        print("|---|" + "---|" * len(ts))
        print("| handshakes/s | " + " | ".join(f"{conn[t].get('handshakes_per_sec', 0):.0f}" for t in ts) + " |")
        print("| p99 handshake | " + " | ".join(
            f"{conn[t].get('handshake_latency_us', {}).get('p99', 0) / 1000:.1f} ms" for t in ts) + " |")
        print()

    mem = {}
    for p in glob.glob(os.path.join(d, "memory-*.json")):
        r = load(p)
        if r.get("failed"):
            continue
        mem.setdefault((r["scheme"], r["requested"]), {})[r["target"]] = r
        if r.get("established") != r.get("requested"):
            problems.append(f"{os.path.basename(p)}: {r.get('established')}/{r.get('requested')} sessions "
                            f"{r.get('error_samples')}")
    if mem:
        ts = [t for t in ORDER if any(t in v for v in mem.values())]
        print("### Memory: whole-process RSS holding idle sessions (MiB; KiB per session)\n")
        print("direct = the wsgate-bench echo upstream itself (Beast + Asio, no proxy in between).\n")
        print("| case | " + " | ".join(LABEL[t] for t in ts) + " |")
        print("|---|" + "---|" * len(ts))
        for key in sorted(mem, key=lambda k: (k[1], k[0])):
            row = [f"{key[0]} {key[1]}"]
            for t in ts:
                r = mem[key].get(t)
                if not r:
                    row.append("n/a")
                    continue
                cell = f"{r['rss_kib'] / 1024:.0f} ({r['per_session_kib']:.1f})" if r.get("per_session_kib") is not None else f"{r['rss_kib'] / 1024:.0f}"
                if r.get("established") != r.get("requested"):
                    cell += f" only {r.get('established')} held"
                row.append(cell)
            print("| " + " | ".join(row) + " |")
        print()

    if problems:
        print("### Problems\n")
        for p in sorted(problems):
            print(f"- {p}")
        print()


if __name__ == "__main__":
    main()
