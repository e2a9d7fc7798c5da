#!/usr/bin/python3
"""Assertions of the Prometheus end-to-end test (tests/ops/e2e_prometheus.sh),
through Prometheus's HTTP API and the proxy's admin API.

  e2e_check.py wait-targets --prom URL --jobs wsgate,wsgate-backend [--timeout S]
  e2e_check.py wait-alert   --prom URL --alert NAME [--states pending,firing] [--timeout S]
  e2e_check.py dashboard    --prom URL --dashboard FILE [--jobs ...]
  e2e_check.py incidents    --admin URL --ids-file FILE
  e2e_check.py tls-gauge    --prom URL --cert PEM
  e2e_check.py diagnose     --prom URL

Each prints what it saw and exits 1 with a FAIL line saying why.
Standard library only.
"""
import argparse
import calendar
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def api(prom, path, **params):
    url = f"{prom}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    status, body = get(url)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {"status": "error", "error": f"HTTP {status}: {body[:300]}"}
    return doc


def query(prom, expr):
    return api(prom, "query", query=expr)


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def cmd_wait_targets(a):
    jobs = set(a.jobs.split(","))
    deadline = time.monotonic() + a.timeout
    last = None
    while time.monotonic() < deadline:
        doc = api(a.prom, "targets")
        if doc.get("status") == "success":
            last = {t["labels"].get("job"): (t["health"], t.get("lastError", ""))
                    for t in doc["data"]["activeTargets"]}
            if all(last.get(j, ("",))[0] == "up" for j in jobs):
                print(f"targets up: {sorted(jobs)}")
                return 0
        time.sleep(0.5)
    fail(f"Prometheus targets not all up within {a.timeout}s: {last}")


def cmd_wait_alert(a):
    states = set(a.states.split(","))
    deadline = time.monotonic() + a.timeout
    seen = None
    while time.monotonic() < deadline:
        doc = api(a.prom, "alerts")
        if doc.get("status") == "success":
            for al in doc["data"]["alerts"]:
                if al["labels"].get("alertname") == a.alert:
                    seen = al["state"]
                    if al["state"] in states:
                        print(f"alert {a.alert} is {al['state']} (labels {al['labels']}, value {al.get('value')})")
                        return 0
        time.sleep(1)
    print(f"FAIL alert {a.alert} did not become {'/'.join(sorted(states))} within {a.timeout}s "
          f"(last state: {seen or 'absent'})")
    diagnose(a.prom)
    return 1


def substitute(expr, jobs):
    # As Grafana does for a multi-value variable (job names need no escaping).
    job_re = "|".join(jobs.split(","))
    for k, v in (("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "1h"),
                 ("${job}", job_re), ("$job", job_re), ("${instance}", ".+"), ("$instance", ".+")):
        expr = expr.replace(k, v)
    return expr


def iter_panels(panels):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def cmd_dashboard(a):
    d = json.load(open(a.dashboard, encoding="utf-8"))
    problems = []
    n = 0
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
        m = re.match(r"label_values\((.*),\s*([A-Za-z_]\w*)\)\s*$", q.strip())
        if not m:
            problems.append(f"variable ${v['name']}: cannot evaluate {q!r}")
            continue
        doc = api(a.prom, f"label/{m.group(2)}/values", **{"match[]": substitute(m.group(1), a.jobs)})
        vals = doc.get("data") or []
        print(f"  variable ${v['name']}: {doc.get('status')} {vals}")
        if doc.get("status") != "success" or not vals:
            problems.append(f"variable ${v['name']} ({q}) returned no values: {doc.get('error', vals)}")
    close_panels = 0
    for p in iter_panels(d.get("panels")):
        for t in p.get("targets") or []:
            expr = substitute(t["expr"], a.jobs)
            doc = query(a.prom, expr)
            n += 1
            res = doc.get("data", {}).get("result", [])
            status = doc.get("status")
            print(f"  [{status}] {len(res):3d} series  {p['title']} / {t.get('refId')}")
            if status != "success":
                problems.append(f"panel {p['title']!r} {t.get('refId')}: {doc.get('errorType')}: {doc.get('error')}\n      {expr}")
                continue
            if "wsgate_closes_total" in t["expr"]:
                close_panels += 1
                if not res:
                    problems.append(f"close-code panel {p['title']!r} {t.get('refId')} returned no series\n      {expr}")
                elif re.search(r"sum by \(code\b", t["expr"]) and not any(r["metric"].get("code") == "1011" for r in res):
                    problems.append(f"panel {p['title']!r} has no code=\"1011\" series: {[r['metric'] for r in res]}")
    if close_panels == 0:
        problems.append("no panel queries wsgate_closes_total")
    for msg in problems:
        print("FAIL", msg)
    print(f"dashboard: {n} queries evaluated, {close_panels} close-code queries, {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_incidents(a):
    status, body = get(f"{a.admin}/incidents?code=1011&limit=20")
    if status != 200:
        fail(f"GET /incidents?code=1011 answered {status}: {body[:300]}")
    try:
        doc = json.loads(body)
    except ValueError:
        fail(f"/incidents is not JSON: {body[:300]}")
    items = doc if isinstance(doc, list) else doc.get("incidents", doc.get("items", []))
    if not items:
        fail(f"/incidents?code=1011 lists no incident after a 1011 storm: {body[:300]}")
    inc = items[0]
    print(f"  newest incident: {json.dumps({k: inc.get(k) for k in ('correlation_id', 'close', 'failing_stage', 'missing_attributes', 'summary')})}")
    code = (inc.get("close") or {}).get("code")
    if str(code) != "1011":
        fail(f"/incidents?code=1011 returned an incident with close code {code!r}")
    if inc.get("failing_stage") in (None, "", "unknown"):
        fail(f"incident {inc.get('correlation_id')} does not name the failing backend stage "
             f"(failing_stage={inc.get('failing_stage')!r}, backend_trace_error={inc.get('backend_trace_error')!r})")
    ids = [l.strip() for l in open(a.ids_file) if l.strip()] if a.ids_file else []
    if ids:
        cid = ids[0]
        status, body = get(f"{a.admin}/incidents/{urllib.parse.quote(cid)}")
        if status != 200:
            fail(f"GET /incidents/{cid} (a 1011 session of the storm) answered {status}: {body[:300]}")
        one = json.loads(body)
        if one.get("correlation_id") != cid:
            fail(f"/incidents/{cid} returned correlation_id {one.get('correlation_id')!r}")
        print(f"  /incidents/{cid}: failing_stage={one.get('failing_stage')} summary={one.get('summary')!r}")
    print("incidents: ok")
    return 0


def cmd_tls_gauge(a):
    out = subprocess.run(["openssl", "x509", "-in", a.cert, "-noout", "-enddate"],
                         capture_output=True, text=True, check=True).stdout
    not_after = calendar.timegm(time.strptime(out.strip().split("=", 1)[1].replace(" GMT", ""),
                                              "%b %d %H:%M:%S %Y"))
    doc = query(a.prom, 'wsgate_tls_cert_expiry_timestamp_seconds{job="wsgate"}')
    res = doc.get("data", {}).get("result", [])
    if not res:
        fail(f"wsgate_tls_cert_expiry_timestamp_seconds not scraped from the TLS proxy: {doc}")
    v = float(res[0]["value"][1])
    if abs(v - not_after) > 86400:
        fail(f"wsgate_tls_cert_expiry_timestamp_seconds={v:.0f}, certificate notAfter={not_after:.0f}")
    print(f"tls gauge: {v:.0f} (certificate notAfter {not_after:.0f})")
    return 0


def diagnose(prom):
    print("---- diagnosis: what Prometheus sees")
    for expr in ("up", "wsgate_closes_total", "job:wsgate_closes:rate5m",
                 "job:wsgate_closes_1011:ratio_rate5m", "job:wsgate_closes_1011:ratio_rate1h",
                 'ALERTS{alertname=~"Wsgate.*"}'):
        doc = query(prom, expr)
        res = doc.get("data", {}).get("result", [])
        print(f"  {expr}: {doc.get('status')} {doc.get('error', '')}")
        for r in res[:8]:
            print(f"      {r['metric']} = {r['value'][1]}")
    doc = api(prom, "rules")
    for g in doc.get("data", {}).get("groups", []):
        for r in g["rules"]:
            if r.get("health") != "ok":
                print(f"  rule {r.get('name')} health={r.get('health')} error={r.get('lastError')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("wait-targets"); p.add_argument("--prom", required=True)
    p.add_argument("--jobs", default="wsgate,wsgate-backend"); p.add_argument("--timeout", type=float, default=20)
    p = sub.add_parser("wait-alert"); p.add_argument("--prom", required=True); p.add_argument("--alert", required=True)
    p.add_argument("--states", default="pending,firing"); p.add_argument("--timeout", type=float, default=90)
    p = sub.add_parser("dashboard"); p.add_argument("--prom", required=True); p.add_argument("--dashboard", required=True)
    p.add_argument("--jobs", default="wsgate,wsgate-backend")
    p = sub.add_parser("incidents"); p.add_argument("--admin", required=True); p.add_argument("--ids-file")
    p = sub.add_parser("tls-gauge"); p.add_argument("--prom", required=True); p.add_argument("--cert", required=True)
    p = sub.add_parser("diagnose"); p.add_argument("--prom", required=True)
    a = ap.parse_args()
    if a.cmd == "diagnose":
        diagnose(a.prom)
        return 0
    return {"wait-targets": cmd_wait_targets, "wait-alert": cmd_wait_alert, "dashboard": cmd_dashboard,
            "incidents": cmd_incidents, "tls-gauge": cmd_tls_gauge}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
