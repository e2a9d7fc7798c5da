#!/usr/bin/python3
"""End to end, from a 1011 storm to the on-call notification and back.

A real wsgate-backend (strict context policy, `context.drop=run_id`) behind
two real wsgate replicas; a real Prometheus scraping all three with our rule files (the 1011
alert's `for:` compressed to a few seconds) and sending to a real
Alertmanager (group_wait/group_interval 1s) whose webhook receiver is a small
HTTP server in this process. A storm of sessions ends with 1011; the test
waits for the delivered notification and checks that its annotations name
the failing stage, the missing attribute and both replicas holding incidents
(the alert fires on their sum), carry an absolute runbook URL from the
external label wsgate_runbook_url, an incidents link to the busiest replica
and one per replica in the description; fetched from the replicas' admin
ports, those links list every incident of the storm.

  e2e_alertmanager.py --proxy build/bin/wsgate --backend build/bin/wsgate-backend

Needs prometheus, prometheus-alertmanager (Debian packages), python3-websockets
and python3-yaml. Everything binds 127.0.0.1 on free ports, lives in a temp
directory, is stopped at the end, and the whole run is bounded (--timeout).
"""
import argparse
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from e2e_check import get  # the script's directory is on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ALERT = "WsgateHigh1011Ratio"
RUNBOOK_BASE = "https://runbook.example.test/wsgate/docs/runbook.md"
# The storm: at least STORM_SESSIONS 1011s (fewer than /incidents' default
# limit of 100, so the link lists all of them) over at least STORM_SECONDS:
# Prometheus must scrape the counters rising, a burst between two scrapes
# would only create the series.
STORM_SESSIONS = 30
STORM_SECONDS = 8


class Failure(Exception):
    pass


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Webhook(http.server.BaseHTTPRequestHandler):
    payloads = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with Webhook.lock:
            Webhook.payloads.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class Run:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="wsgate-e2e-am.")
        self.procs = []
        self.deadline = time.monotonic() + args.timeout

    def left(self):
        return self.deadline - time.monotonic()

    def start(self, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, p))
        return p

    def wait_http(self, url, name, proc, secs=30):
        end = time.monotonic() + min(secs, self.left())
        while time.monotonic() < end:
            if get(url, timeout=1)[0] == 200:
                return
            if proc.poll() is not None:
                raise Failure(f"{name} exited ({proc.returncode}) before {url} answered")
            time.sleep(0.1)
        raise Failure(f"{name} did not answer {url} in time")

    def stop(self):
        for _, p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def show_logs(self):
        for name, _ in self.procs:
            path = os.path.join(self.tmp, name + ".log")
            lines = open(path, errors="replace").read().splitlines()[-20:]
            print(f"---- last lines of {name}.log", file=sys.stderr)
            print("\n".join(lines), file=sys.stderr)


def incident_list(body):
    doc = json.loads(body)
    return doc["incidents"] if isinstance(doc, dict) else doc


def compressed_rules(tmp, rules_dir):
    """The rule files as they are, but the 1011 alert holds for 5s, not 1m."""
    out = []
    for fn in ("recording-rules.yml", "alert-rules.yml"):
        doc = yaml.safe_load(open(os.path.join(rules_dir, fn), encoding="utf-8"))
        for g in doc["groups"]:
            for r in g["rules"]:
                if r.get("alert") == ALERT:
                    r["for"] = "5s"
        path = os.path.join(tmp, fn)
        yaml.safe_dump(doc, open(path, "w", encoding="utf-8"), sort_keys=False)
        out.append(path)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--rules-dir", default=os.path.join(REPO, "dashboards", "prometheus"))
    ap.add_argument("--timeout", type=float, default=110, help="seconds for the whole run")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = ap.parse_args()
    for tool in ("prometheus", "prometheus-alertmanager"):
        if not shutil.which(tool):
            print(f"FAIL {tool} not found (Debian packages prometheus, prometheus-alertmanager)")
            return 1
    run = Run(args)
    ok = False
    try:
        check(run)
        ok = True
    except Failure as e:
        print(f"FAIL {e}")
    finally:
        run.stop()
        if not ok:
            run.show_logs()
            print(f"e2e_alertmanager: FAILED (temp dir {run.tmp})", file=sys.stderr)
        elif not args.keep:
            shutil.rmtree(run.tmp, ignore_errors=True)
    if ok:
        print("e2e_alertmanager: 1 passed, 0 failed")
    return 0 if ok else 1


def check(run):
    a, tmp = run.args, run.tmp
    be_port, be_admin, prom_port, am_port = free_ports(4)
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}/alerts"

    key = os.path.join(tmp, "jwt.key")
    with open(key, "w") as f:
        f.write(os.urandom(32).hex())
    backend = run.start("backend", [a.backend, "--listen", f"127.0.0.1:{be_port}", "--admin",
                                    f"127.0.0.1:{be_admin}", "--jwt-secret-file", key,
                                    "--context-policy", "strict", "--fault", "context.drop=run_id"])
    run.wait_http(f"http://127.0.0.1:{be_admin}/healthz", "backend", backend)
    # Two proxy replicas in front of the one backend; replica a gets twice
    # the sessions of replica b. Each keeps the incidents of its sessions.
    replicas = {}
    for name, (port, admin_port) in zip(("a", "b"), (free_ports(2), free_ports(2))):
        proxy = run.start(f"proxy-{name}", [
            a.proxy, "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin_port}",
            "--upstream", f"ws://127.0.0.1:{be_port}",
            "--upstream-trace-url", f"http://127.0.0.1:{be_admin}/debug/traces/{{correlation_id}}"])
        run.wait_http(f"http://127.0.0.1:{admin_port}/readyz", f"proxy-{name}", proxy)
        replicas[name] = {"ws": f"ws://127.0.0.1:{port}/ws", "admin": f"127.0.0.1:{admin_port}"}
    # With a thread_id the backend's context lacks only run_id (the fault).
    token = subprocess.run([a.backend, "token", "--sub", "e2e-am-user", "--thread-id", "e2e-thread",
                            "--jwt-secret-file", key],
                           capture_output=True, text=True, timeout=20).stdout.strip()
    if not token:
        raise Failure("wsgate-backend token printed no token")

    am_cfg = os.path.join(tmp, "alertmanager.yml")
    yaml.safe_dump({
        "route": {"receiver": "hook", "group_by": ["alertname", "job", "namespace"],
                  "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "hook", "webhook_configs": [{"url": hook_url, "send_resolved": False}]}],
    }, open(am_cfg, "w"))
    am = run.start("alertmanager", ["prometheus-alertmanager", f"--config.file={am_cfg}",
                                    f"--storage.path={tmp}/am-data", f"--web.listen-address=127.0.0.1:{am_port}",
                                    "--cluster.listen-address=", "--log.level=warn"])
    run.wait_http(f"http://127.0.0.1:{am_port}/-/ready", "alertmanager", am)

    prom_cfg = os.path.join(tmp, "prometheus.yml")
    yaml.safe_dump({
        # wsgate_admin_url is left unset on purpose: the incidents link must
        # then name the replica (instance) that holds the incidents.
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s",
                   "external_labels": {"wsgate_runbook_url": RUNBOOK_BASE}},
        "rule_files": compressed_rules(tmp, a.rules_dir),
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            {"job_name": "wsgate", "static_configs": [{"targets": [r["admin"] for r in replicas.values()]}]},
            {"job_name": "wsgate-backend", "static_configs": [{"targets": [f"127.0.0.1:{be_admin}"]}]},
        ],
    }, open(prom_cfg, "w"))
    prom = run.start("prometheus", ["prometheus", f"--config.file={prom_cfg}", f"--storage.tsdb.path={tmp}/tsdb",
                                    f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"])
    run.wait_http(f"http://127.0.0.1:{prom_port}/-/ready", "prometheus", prom)

    print(f"== storm: at least {STORM_SESSIONS} sessions ending with 1011 through both replicas")
    storm_started = time.time()
    stop_file = os.path.join(tmp, "stop")
    storms = []
    for name, concurrency in (("a", "2"), ("b", "1")):
        r = replicas[name]
        r["ids_file"] = os.path.join(tmp, f"ids-{name}.txt")
        open(r["ids_file"], "w").close()
        storms.append(run.start(f"storm-{name}", [
            sys.executable, os.path.join(HERE, "ws_storm.py"), "--url", r["ws"], "--token", token,
            "--duration", "60", "--concurrency", concurrency, "--pause", "0.3", "--timeout", "10",
            "--stop-file", stop_file, "--ids-file", r["ids_file"]]))

    def read_ids(r):
        return {l.strip() for l in open(r["ids_file"]) if l.strip()}

    begin = time.monotonic()
    end = begin + min(40, run.left())
    while time.monotonic() < end and all(p.poll() is None for p in storms):
        if (sum(len(read_ids(r)) for r in replicas.values()) >= STORM_SESSIONS
                and time.monotonic() - begin >= STORM_SECONDS):
            break
        time.sleep(0.1)
    open(stop_file, "w").close()
    for p in storms:
        try:
            p.wait(timeout=max(1, min(20, run.left())))
        except subprocess.TimeoutExpired:
            raise Failure("a storm client did not stop")
    for name, r in replicas.items():
        r["ids"] = read_ids(r)
        if len(r["ids"]) < 3:
            raise Failure(f"only {len(r['ids'])} sessions through replica {name} ended with 1011 "
                          f"(log: {tmp}/storm-{name}.log)")
    ids = set().union(*(r["ids"] for r in replicas.values()))
    print("   " + ", ".join(f"replica {n} ({r['admin']}): {len(r['ids'])}" for n, r in replicas.items())
          + " sessions closed with 1011")

    print("== wait for Alertmanager to deliver the 1011 alert to the webhook")
    alert = None
    while alert is None and run.left() > 0:
        with Webhook.lock:
            for p in Webhook.payloads:
                for al in p.get("alerts", []):
                    if al["labels"].get("alertname") == ALERT and al.get("status") == "firing":
                        alert = al
        time.sleep(0.2)
    hook.shutdown()
    if alert is None:
        raise Failure(f"no {ALERT} notification reached the webhook; received: {Webhook.payloads}")
    ann = alert["annotations"]
    print("   delivered annotations:")
    for k in sorted(ann):
        print(f"     {k}: {ann[k]}")

    # What the incidents themselves say: the stage and the missing attribute.
    stages = set()
    for name, r in replicas.items():
        status, body = get(f"http://{r['admin']}/incidents?code=1011&limit=1000", timeout=5)
        if status != 200:
            raise Failure(f"GET /incidents?code=1011 on replica {name} answered {status}: {body[:200]}")
        stored = {i["correlation_id"]: i for i in incident_list(body)}
        missing = r["ids"] - set(stored)
        if missing:
            raise Failure(f"{len(missing)} storm sessions through replica {name} have no incident there")
        stages |= {stored[i]["failing_stage"] for i in r["ids"]}
    if len(stages) != 1 or "unknown" in stages:
        raise Failure(f"storm incidents do not agree on one known failing stage: {stages}")
    stage = stages.pop()

    problems = []
    if ann.get("failing_stage") != stage:
        problems.append(f"failing_stage {ann.get('failing_stage')!r}, the incidents say {stage!r}")
    if ann.get("missing_attribute") != "run_id":
        problems.append(f"missing_attribute {ann.get('missing_attribute')!r}, want 'run_id' (context.drop=run_id)")
    for k in ("summary", "description"):
        if stage not in ann.get(k, ""):
            problems.append(f"{k} does not name the stage {stage}: {ann.get(k)!r}")
    if "run_id" not in ann.get("summary", ""):
        problems.append(f"summary does not name the missing attribute: {ann.get('summary')!r}")
    if ann.get("runbook_url") != RUNBOOK_BASE + "#wsgatehigh1011ratio":
        problems.append(f"runbook_url {ann.get('runbook_url')!r} is not {RUNBOOK_BASE}#wsgatehigh1011ratio")
    # Which replicas hold incidents: both, the busier one first.
    held = re.findall(r"(\S+) \((\d+)\)", ann.get("replicas", ""))
    want = {r["admin"] for r in replicas.values()}
    if {h for h, _ in held} != want:
        problems.append(f"replicas {ann.get('replicas')!r} does not name both proxy replicas {sorted(want)}")
    busiest = held[0][0] if held else None
    per_replica = {}
    for inst, url in re.findall(r"(\S+): \d+ \((http://[^)\s]+)\)", ann.get("description", "")):
        per_replica[inst] = url
    if set(per_replica) != want:
        problems.append(f"description does not link the incidents of each replica {sorted(want)}: {per_replica}")
    links = {}
    for k, path in (("incidents_url", "/ui/"), ("incidents_json_url", "/incidents")):
        u = urllib.parse.urlsplit(ann.get(k, ""))
        q = urllib.parse.parse_qs(u.query)
        if (u.scheme, u.netloc, u.path) != ("http", busiest, path):
            problems.append(f"{k} {ann.get(k)!r} is not http://{busiest}{path}?... (the busiest replica)")
        elif q.get("code") != ["1011"] or q.get("stage") != [stage] or not q.get("since"):
            problems.append(f"{k} {ann.get(k)!r} does not filter code=1011, stage={stage} and since")
        elif not int(q["since"][0]) <= storm_started:
            problems.append(f"{k} since={q['since'][0]} is after the storm began ({storm_started:.0f})")
        else:
            links[k] = ann[k]
    if problems:
        raise Failure("the notification does not name the cause:\n  " + "\n  ".join(problems))

    # Follow the links as on-call would: the browser page first, then the
    # JSON of every replica.
    status, page = get(links["incidents_url"], timeout=5)
    print(f"== GET {links['incidents_url']} -> {status}")
    busiest_ids = next(r["ids"] for r in replicas.values() if r["admin"] == busiest)
    if status != 200:
        raise Failure(f"the incident browser link answered {status}: {page[:200]}")
    if stage not in page or not any(cid in page for cid in busiest_ids):
        raise Failure(f"the incident browser page does not show the storm at {stage}")
    for r in replicas.values():
        url = per_replica[r["admin"]]
        if r["admin"] == busiest:
            url = links["incidents_json_url"]
        status, body = get(url, timeout=5)
        print(f"== GET {url} -> {status}")
        if status != 200:
            raise Failure(f"the incidents link {url} answered {status}: {body[:200]}")
        listed = incident_list(body)
        listed_ids = {i["correlation_id"] for i in listed}
        if not r["ids"] <= listed_ids:
            raise Failure(f"{url} misses {len(r['ids'] - listed_ids)} of the {len(r['ids'])} storm "
                          f"incidents of replica {r['admin']}")
        wrong = [i["correlation_id"] for i in listed if i["close"]["code"] != 1011 or i["failing_stage"] != stage]
        if wrong:
            raise Failure(f"{url} lists incidents outside its filter: {wrong[:5]}")
        print(f"   lists all {len(r['ids'])} storm incidents of replica {r['admin']}")
    print(f"   the links of the notification reach all {len(ids)} incidents of the storm")

if __name__ == "__main__":
    sys.exit(main())
