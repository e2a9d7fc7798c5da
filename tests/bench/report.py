#!/usr/bin/python3
"""Markdown report of one compare.sh run: medians over rounds, per-round
ratios of wsgate to the better of nginx and HAProxy, proxy CPU per round trip
with the load tool's and the proxy's shares of their cores, memory and handshakes;
and, when those sections ran, open-loop latency at a fixed offered rate,
two workers against one at a fixed rate, 9,000 sessions under the fd limit,
and the tap's cost.

usage: report.py RESULTS_DIR
"""
import glob
import json
import os
import re
import statistics
import sys

ORDER = ["direct", "wsgate", "wsgate-tapoff", "wsgate-1w", "nginx", "nginx-1w", "haproxy",
         "haproxy-1w"]
LABEL = {"direct": "direct", "wsgate": "wsgate", "wsgate-tapoff": "wsgate tap off",
         "wsgate-1w": "wsgate --threads 1", "nginx": "nginx", "nginx-1w": "nginx 1 worker",
         "haproxy": "HAProxy", "haproxy-1w": "HAProxy 1 thread"}
PEERS = ("nginx", "haproxy")
SHORT_OF_OFFERED = 0.97  # open loop: achieved / offered below this is an overload, not a latency


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


SATURATED = 0.95  # load core share from which throughput says little about the proxy


def median_of(per, field):
    """Median of a numeric field over the rounds that have it, else None."""
    vals = [per[r][field] for r in sorted(per) if isinstance(per[r].get(field), (int, float))]
    return statistics.median(vals) if vals else None


def load_share(run):
    """Share of the load cores the load tool and echo used in one run.

    From the processes' own CPU time (cpu_sample.py); result directories from
    before that field carry only /proc/stat's tick-sampled core busy."""
    v = run.get("load_cpu_share")
    return v if isinstance(v, (int, float)) else run.get("load_core_busy")


def shares(per):
    """(load, proxy) CPU shares, medians over the rounds; the same fallback."""
    new = median_of(per, "load_cpu_share"), median_of(per, "proxy_cpu_share")
    if None not in new:
        return new
    return median_of(per, "load_core_busy"), median_of(per, "proxy_core_busy")


def case_label(key):
    scheme, size, conns = key
    return f"{scheme} {size_label(size)} x {conns}"


def cases(cells):
    """The (scheme, size-or-sessions) keys of a section, by size, ws before wss."""
    return sorted(cells, key=lambda k: (k[1], k[0]))


def target_cells(by_target, ts, fmt):
    """One table cell per target in `ts`: fmt(result), or n/a where it did not run."""
    return [fmt(by_target[t]) if by_target.get(t) else "n/a" for t in ts]


def load_runs(d, prefix, problems):
    """(scheme, size, conns) -> target -> round -> result for PREFIX-*.json."""
    runs = {}
    for p in glob.glob(os.path.join(d, f"{prefix}-*.json")):
        m = re.match(re.escape(prefix) + r"-(.+)-(wss?)-(\d+)-(\d+)-r(\d+)\.json$", os.path.basename(p))
        if not m:
            continue
        t, scheme, size, conns, rnd = m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), int(m.group(5))
        r = load(p)
        if r.get("failed") or r.get("errors", 0) or not r.get("messages"):
            problems.append(f"{os.path.basename(p)}: errors={r.get('errors')} {r.get('error_samples', r)}")
        elif (r.get("cpu_sample") or {}).get("problem"):
            problems.append(f"{os.path.basename(p)}: CPU sample: {r['cpu_sample']['problem']}")
        if isinstance(r.get("achieved_ratio"), (int, float)) and r["achieved_ratio"] < SHORT_OF_OFFERED:
            problems.append(f"{os.path.basename(p)}: achieved {r['achieved_ratio']:.2f} of the offered "
                            f"{r.get('offered_per_sec')} msg/s (send lag p99 "
                            f"{(r.get('send_lag_us') or {}).get('p99', 0):.0f} µs): overloaded")
        runs.setdefault((scheme, size, conns), {}).setdefault(t, {})[rnd] = r
    return runs


def value(runs, key, t, rnd, field, sub=None):
    v = runs[key].get(t, {}).get(rnd, {}).get(field)
    if sub is not None:
        v = (v or {}).get(sub)
    return v if isinstance(v, (int, float)) else None


def paired(runs, key, a, bs, field, sub=None):
    """Per round: a's field over the lowest of bs's (the leaner peer); None where missing."""
    rounds = sorted({r for per in runs[key].values() for r in per})
    out = []
    for rnd in rounds:
        x = value(runs, key, a, rnd, field, sub)
        ys = [y for y in (value(runs, key, b, rnd, field, sub) for b in bs) if y]
        out.append(x / min(ys) if x is not None and ys else None)
    return out


def ratio_cell(ratios, pct=False):
    good = [r for r in ratios if r is not None]
    if not good:
        return "n/a"
    if pct:
        return (f"{(statistics.median(good) - 1) * 100:+.1f} % ("
                + " ".join(f"{(r - 1) * 100:+.1f}" for r in good) + ")")
    return f"{statistics.median(good):.2f} (" + " ".join(f"{r:.2f}" for r in good) + ")"


def cpu_cell(per, proxied=True):
    cpu = median_of(per, "proxy_cpu_us_per_msg")
    lb, pb = shares(per)
    ach = median_of(per, "achieved_ratio")
    fig = "—" if not proxied else f"{cpu:.1f} µs" if cpu is not None else "n/a"
    extra = []
    if lb is not None and pb is not None:
        extra.append(f"CPU L / P {lb:.2f} / {pb:.2f}")
    if ach is not None:
        extra.append(f"achieved {ach:.2f}")
    return fig + (f" ({', '.join(extra)})" if extra else "")


def offered(runs):
    rates = {r.get("offered_per_sec") for v in runs.values() for per in v.values() for r in per.values()}
    rates.discard(None)
    return ", ".join(f"{x:,.0f}" for x in sorted(rates)) or "?"


def report_openloop(ol):
    ts = [t for t in ORDER if any(t in v for v in ol.values())]
    peers = [t for t in PEERS if t in ts]
    rounds = sorted({r for v in ol.values() for per in v.values() for r in per})
    print(f"### Open loop at a fixed offered rate ({offered(ol)} msg/s over all sessions; latency "
          f"from the scheduled send, so a stall is charged in full; median of {len(rounds)} round(s))\n")
    print("p50 / p99 / p999 in µs, and achieved ÷ offered; a run short of its offered rate is "
          "listed under Problems.\n")
    head = ["case"] + [LABEL[t] for t in ts]
    if "wsgate" in ts and peers:
        head.append("p99 wsgate ÷ leaner peer, median (per round)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key in cases(ol):
        row = [case_label(key)]
        for t in ts:
            per = ol[key].get(t, {})
            lat = {q: statistics.median([per[r]["latency_us"][q] for r in per if "latency_us" in per[r]] or [0])
                   for q in ("p50", "p99", "p999")}
            ach = median_of(per, "achieved_ratio")
            row.append(f"{lat['p50']:.0f} / {lat['p99']:.0f} / {lat['p999']:.0f}"
                       + (f" ({ach:.2f})" if ach is not None else "") if per else "n/a")
        if "wsgate" in ts and peers:
            row.append(ratio_cell(paired(ol, key, "wsgate", peers, "latency_us", "p99")))
        print("| " + " | ".join(row) + " |")
    print()
    cpu_ts = [t for t in ts if t != "direct"]
    if cpu_ts:
        print("Proxy CPU per round trip at that rate (µs; CPU L / P as in the closed-loop "
              "table):\n")
        head = ["case"] + [LABEL[t] for t in cpu_ts]
        if "wsgate" in cpu_ts and peers:
            head.append("wsgate ÷ leaner peer, median (per round)")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for key in cases(ol):
            row = [case_label(key)] + [cpu_cell(ol[key].get(t, {})) for t in cpu_ts]
            if "wsgate" in cpu_ts and peers:
                row.append(ratio_cell(paired(ol, key, "wsgate", peers, "proxy_cpu_us_per_msg")))
            print("| " + " | ".join(row) + " |")
        print()


def report_workers2(w2, d):
    ts = [t for t in ORDER if any(t in v for v in w2.values())]
    info = load(os.path.join(d, "w2-workers.json"))
    counts = {t: info.get(t) for t in ts}
    rounds = sorted({r for v in w2.values() for per in v.values() for r in per})
    print(f"### Two workers against one, cores {info.get('cpus', '?')} shared by proxy, load tool and "
          f"echo, {offered(w2)} msg/s offered (proxy CPU µs per round trip, median of "
          f"{len(rounds)} round(s); lower is better)\n")
    print("The load generator and the echo run on the same cores as the proxy (a 2-core machine "
          "has no third), so CPU L / P are each a share of both cores; what compares is each "
          "proxy's own CPU per round trip at the same offered rate, which holds only while "
          "achieved = offered. Target: "
          "wsgate at 2 workers within 5 % of wsgate at 1 (ratio <= 1.05).\n")
    print("Workers as reported by the running proxies: "
          + ", ".join(f"{LABEL[t]} {counts[t]}" for t in ts) + ".\n")
    head = ["case"] + [LABEL[t] for t in ts]
    pairs = [(a, b) for a, b in (("wsgate", "wsgate-1w"), ("nginx", "nginx-1w"), ("haproxy", "haproxy-1w"))
             if a in ts and b in ts]
    head += [f"{LABEL[a]} 2 ÷ 1" for a, _ in pairs]
    two_peers = [t for t in PEERS if t in ts]
    if "wsgate" in ts and two_peers:
        head.append("wsgate ÷ leaner 2-worker peer")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key in cases(w2):
        row = [case_label(key)] + [cpu_cell(w2[key].get(t, {})) for t in ts]
        row += [ratio_cell(paired(w2, key, a, [b], "proxy_cpu_us_per_msg")) for a, b in pairs]
        if "wsgate" in ts and two_peers:
            row.append(ratio_cell(paired(w2, key, "wsgate", two_peers, "proxy_cpu_us_per_msg")))
        print("| " + " | ".join(row) + " |")
    print()


def per_session(r):
    return f" ({r['per_session_kib']:.1f})" if r.get("per_session_kib") is not None else ""


def fdlimit_cell(r):
    return (f"{r.get('established')}/{r['requested']}, {r['rss_kib'] / 1024:.0f} MiB{per_session(r)}, "
            f"{r.get('proxy_open_fds')} fds")


def memory_cell(r):
    cell = f"{r['rss_kib'] / 1024:.0f}{per_session(r)}"
    if r.get("established") != r.get("requested"):
        cell += f" only {r.get('established')} held"
    return cell


def report_fdlimit(d, problems):
    cells = {}
    for p in glob.glob(os.path.join(d, "fdlimit-*.json")):
        r = load(p)
        if r.get("failed") or "target" not in r:
            problems.append(f"{os.path.basename(p)}: no result")
            continue
        cells.setdefault((r["scheme"], r["requested"]), {})[r["target"]] = r
        if r.get("established") != r.get("requested") or r.get("dropped"):
            problems.append(f"{os.path.basename(p)}: {r.get('established')}/{r.get('requested')} held, "
                            f"{r.get('dropped')} dropped {r.get('error_samples')}")
    if not cells:
        return
    ts = [t for t in ORDER if any(t in v for v in cells.values())]
    limits = sorted({r.get("proxy_fd_limit") for v in cells.values() for r in v.values()}, key=str)
    hold_limits = sorted({r.get("hold_fd_limit") for v in cells.values() for r in v.values()}, key=str)
    print(f"### Warm-idle sessions under the fd limit (proxy soft limit {', '.join(map(str, limits))}, "
          f"hold tool {', '.join(map(str, hold_limits))}; one echo per session, then idle)\n")
    print("Held / asked, whole-process RSS in MiB (KiB per session over the idle process), the "
          "proxy's open descriptors.\n")
    head = ["case"] + [LABEL[t] for t in ts]
    peers = [t for t in PEERS if t in ts]
    if "wsgate" in ts and peers:
        head.append("RSS wsgate ÷ leaner peer")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key in cases(cells):
        row = [f"{key[0]} {key[1]}"] + target_cells(cells[key], ts, fdlimit_cell)
        if "wsgate" in ts and peers:
            w = cells[key].get("wsgate", {})
            rss = [cells[key][p]["rss_kib"] for p in peers
                   if p in cells[key] and cells[key][p].get("established") == key[1]]
            row.append(f"{w['rss_kib'] / min(rss):.2f}" if w.get("rss_kib") and rss else "n/a")
        print("| " + " | ".join(row) + " |")
    print()


def report_tap(sets):
    """sets: [(label, runs)]; paired per round wsgate vs wsgate-tapoff CPU per round trip."""
    rows = []
    for label, runs in sets:
        for key in cases(runs):
            if "wsgate" in runs[key] and "wsgate-tapoff" in runs[key]:
                rows.append((f"{label} {case_label(key)}",
                             paired(runs, key, "wsgate", ["wsgate-tapoff"], "proxy_cpu_us_per_msg")))
    if not rows:
        return
    print("### Tap cost: proxy CPU per round trip, `--tap-mode enforce` ÷ `--tap-mode off` - 1 "
          "(median, then each round's pair; target < 3 %)\n")
    print("| case | tap cost |")
    print("|---|---|")
    for label, ratios in rows:
        print(f"| {label} | {ratio_cell(ratios, pct=True)} |")
    print()


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
    tput = load_runs(d, "tput", problems)

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
        for key in cases(tput):
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
        for key in cases(tput):
            busy = [load_share(r) for t, per in tput[key].items() if t != "direct"
                    for r in per.values() if isinstance(load_share(r), (int, float))]
            if busy and statistics.median(busy) >= SATURATED:
                saturated.append(f"{case_label(key)} ({statistics.median(busy):.2f})")
        if saturated:
            print(f"Load tool and echo at >= {SATURATED * 100:.0f} % of the load core (median over "
                  f"the proxied runs) in "
                  f"{', '.join(saturated)} — load core saturated: throughput is bound by the load "
                  f"generator and echo, not the proxy; compare proxy CPU per message.\n")

        cpu_present = [t for t in present
                       if any(isinstance(r.get(f), (int, float)) for v in tput.values()
                              for r in v.get(t, {}).values()
                              for f in ("proxy_cpu_us_per_msg", "load_cpu_share", "load_core_busy"))]
        if cpu_present:
            print(f"### Proxy CPU per round trip (µs of proxy user+system CPU per message, median of "
                  f"{len(rounds)} round(s); lower is better)\n")
            print("(CPU L / P) = share of the load core used by the load tool and echo, and of the "
                  "proxy core used by the proxy, from the processes' own CPU time over the measured "
                  "window, median of the rounds. direct has no proxy.\n")
            has_wc = "wsgate" in cpu_present and ("nginx" in cpu_present or "haproxy" in cpu_present)
            head = ["case"] + [LABEL[t] for t in cpu_present]
            if has_wc:
                head += ["wsgate ÷ best(nginx, HAProxy) per round (lower is better)"]
            if "wsgate" in cpu_present and "wsgate-tapoff" in cpu_present:
                head += ["tap CPU cost"]
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for key in cases(tput):
                row = [case_label(key)]
                cpu = {}
                for t in cpu_present:
                    per = tput[key].get(t, {})
                    if not per:
                        row.append("n/a")
                        continue
                    cpu[t] = median_of(per, "proxy_cpu_us_per_msg")
                    row.append(cpu_cell(per, proxied=t != "direct"))
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
        for key in cases(mem):
            row = [f"{key[0]} {key[1]}"] + target_cells(mem[key], ts, memory_cell)
            print("| " + " | ".join(row) + " |")
        print()

    ol = load_runs(d, "ol", problems)
    if ol:
        report_openloop(ol)
    w2 = load_runs(d, "w2", problems)
    if w2:
        report_workers2(w2, d)
    report_fdlimit(d, problems)
    report_tap([("closed loop", tput), (f"open loop {offered(ol)} msg/s", ol)] if ol else
               [("closed loop", tput)])

    if problems:
        print("### Problems\n")
        for p in sorted(problems):
            print(f"- {p}")
        print()


if __name__ == "__main__":
    main()
