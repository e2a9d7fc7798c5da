#!/usr/bin/python3
"""Every alert in dashboards/prometheus/alert-rules.yml has labels.severity,
annotations summary/description/runbook_url, a runbook_url whose anchor is a
heading of docs/runbook.md, and promtool unit tests in
dashboards/prometheus/tests/ in which it is expected to fire (non-empty
exp_alerts) and expected not to fire (empty exp_alerts). Also: the alerts the
issue asks for all exist, and no rule group sets `interval:` (the e2e test
relies on the global 1s evaluation interval).

runbook_url is absolute: built from the external label wsgate_runbook_url
with an absolute fallback. The 1011 alert also carries failing_stage,
missing_attribute, replicas, incidents_url (the incident browser /ui/ filtered
by code, stage and since) and incidents_json_url (/incidents, same filters),
and a promtool test expects it to name a failing stage and a missing
attribute (not "unknown"/"none")."""
import glob
import os
import re
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
REQUIRED = {"WsgateHigh1011Ratio", "WsgateUpstreamUnavailable", "WsgateContextFallbackSurge",
            "WsgateProtocolViolationSurge", "WsgateDown", "WsgateTLSCertExpiringSoon"}
SEVERITIES = {"critical", "warning", "info"}
RUNBOOK_RE = re.compile(r"\{\{ with \$externalLabels\.wsgate_runbook_url \}\}\{\{ \. \}\}"
                        r"\{\{ else \}\}https?://[^{}\s]+/docs/runbook\.md\{\{ end \}\}#(.+)$")
CAUSE_ALERT = "WsgateHigh1011Ratio"
CAUSE_ANNOTATIONS = ("summary", "description", "failing_stage", "missing_attribute", "replicas",
                     "incidents_url", "incidents_json_url", "runbook_url")


def slug(heading):
    """GitHub's anchor for a markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def main():
    problems = []
    runbook = os.path.join(REPO, "docs", "runbook.md")
    anchors = set()
    if os.path.exists(runbook):
        for line in open(runbook, encoding="utf-8"):
            m = re.match(r"#{1,6}\s+(.*)", line)
            if m:
                anchors.add(slug(m.group(1)))
    else:
        problems.append("docs/runbook.md is missing")
    alerts = {}
    for fn in ("recording-rules.yml", "alert-rules.yml"):
        doc = yaml.safe_load(open(os.path.join(REPO, "dashboards", "prometheus", fn), encoding="utf-8"))
        for g in doc["groups"]:
            if "interval" in g:
                problems.append(f"{fn} group {g['name']} sets interval: (breaks the 1s e2e evaluation)")
            for r in g["rules"]:
                if "alert" in r:
                    alerts[r["alert"]] = r
    for name in sorted(REQUIRED - set(alerts)):
        problems.append(f"alert {name} is missing")
    fires, quiet = set(), set()
    names_cause = False
    for t in glob.glob(os.path.join(REPO, "dashboards", "prometheus", "tests", "*.yml")):
        doc = yaml.safe_load(open(t, encoding="utf-8"))
        for case in doc.get("tests", []):
            for at in case.get("alert_rule_test", []) or []:
                (fires if at.get("exp_alerts") else quiet).add(at["alertname"])
                if at["alertname"] == CAUSE_ALERT:
                    for ea in at.get("exp_alerts") or []:
                        ann = ea.get("exp_annotations") or {}
                        if (ann.get("failing_stage") not in (None, "", "unknown")
                                and ann.get("missing_attribute") not in (None, "", "none")
                                and "&stage=" in ann.get("incidents_url", "")):
                            names_cause = True
    cause = alerts.get(CAUSE_ALERT)
    if cause:
        ann = cause.get("annotations", {})
        for key in CAUSE_ANNOTATIONS:
            if not ann.get(key):
                problems.append(f"{CAUSE_ALERT}: no annotations.{key}")
        for key, path in (("incidents_url", "/ui/?code=1011"), ("incidents_json_url", "/incidents?code=1011")):
            v = ann.get(key, "")
            if path not in v or "stage=" not in v or "&since=" not in v or "wsgate_admin_url" not in v:
                problems.append(f"{CAUSE_ALERT}: {key} is not <wsgate_admin_url>{path}&stage=..&since=..")
        if not names_cause:
            problems.append(f"{CAUSE_ALERT}: no promtool test expects it to name a failing stage, "
                            "a missing attribute and a stage-filtered incidents_url")
    for name, r in sorted(alerts.items()):
        sev = r.get("labels", {}).get("severity")
        if sev not in SEVERITIES:
            problems.append(f"{name}: labels.severity {sev!r} not in {sorted(SEVERITIES)}")
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                problems.append(f"{name}: no annotations.{key}")
        url = ann.get("runbook_url", "")
        m = RUNBOOK_RE.match(url)
        if not m:
            problems.append(f"{name}: runbook_url {url!r} is not the absolute docs/runbook.md URL "
                            "built from $externalLabels.wsgate_runbook_url")
        elif m.group(1) not in anchors:
            problems.append(f"{name}: runbook anchor #{m.group(1)} is not a heading of docs/runbook.md")
        if name not in fires:
            problems.append(f"{name}: no promtool test expects it to fire")
        if name not in quiet:
            problems.append(f"{name}: no promtool test expects it not to fire")
    for p in problems:
        print("FAIL", p)
    print(f"alert contract: {len(alerts)} alerts, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
