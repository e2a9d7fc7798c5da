#!/usr/bin/python3
"""Lint wsgate's Grafana dashboards.

Usage:
  lint_dashboard.py [--exposition FILE]... [--rules FILE]... DASHBOARD.json...
  lint_dashboard.py --self-test

Static checks (always):
  * schemaVersion >= 39, a uid, a `datasource` variable of type datasource
    (query prometheus), `job` and `instance` variables;
  * every panel except rows has fieldConfig.defaults.unit;
  * every panel, target and annotation query uses the ${datasource} variable;
  * every range selector is [$__rate_interval] (or [$__range] for totals over
    the dashboard's time range);
  * counters (names ending _total, _bucket, _count, _sum, or typed counter /
    histogram / summary in the exposition) appear only inside
    rate()/irate()/increase();
  * recording-rule names (with a colon) are defined in the rule files;
  * links: an `admin_url` variable holding an absolute http(s) URL; every
    link to the incident browser (/ui/) or /incidents starts with
    ${admin_url} or with a replica's own address (http://${__data.fields.
    instance}), never a hard-coded host, and filters only by code, stage,
    route, upstream, since;
  * a panel of failing stages: it queries wsgate_incidents_total by stage
    and links to /ui/ filtered by that stage;
  * close codes are what clients received: a query of wsgate_closes_total
    grouped by code also groups by initiator.

With --datasource (the Grafana datasource provisioning file): the exemplar
link (trace_id, the correlation ID) opens the incident browser's page
${WSGATE_INCIDENTS_BASE_URL}/ui/incidents/${__value.raw}.

With --exposition (Prometheus text from /metrics, repeatable; the proxy's and
the backend's): every metric a panel or variable names must exist there, as a
sample or at least as a `# TYPE` line.

Exit status 0 when clean, 1 when any problem is found (each printed as FAIL).
Only Python's standard library and python3-yaml (Debian) are used.
"""
import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_RULES = [os.path.join(REPO, "dashboards", "prometheus", "recording-rules.yml")]

RANGE_FUNCS = {"rate", "irate", "increase"}
# Metrics Prometheus makes itself; they are never in a target's exposition.
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds",
             "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "and", "or", "unless", "offset", "inf", "nan", "atan2"}
AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
               "count_values", "bottomk", "topk", "quantile"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
DS_REFS = {"${datasource}", "$datasource"}
ALLOWED_RANGES = {"$__rate_interval", "$__range"}
COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
# Where incident links may start: the dashboard's admin URL variable, or the
# admin address of the replica a row or series comes from.
LINK_BASES = ("${admin_url}", "http://${__data.fields.instance}", "http://${__field.labels.instance}")
UI_FILTERS = {"code", "stage", "route", "upstream", "since"}


class Exposition:
    def __init__(self):
        self.types = {}      # family name -> type
        self.samples = set()  # sample names

    def load(self, path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                if line.startswith("#"):
                    parts = line.split()
                    if len(parts) >= 4 and parts[1] == "TYPE":
                        self.types[parts[2]] = parts[3]
                    continue
                m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
                if m:
                    self.samples.add(m.group(1))

    def empty(self):
        return not self.types and not self.samples

    def family_of(self, name):
        """The family (and its type) a sample name belongs to, or (None, None)."""
        if name in self.types:
            return name, self.types[name]
        for suffix in ("_bucket", "_count", "_sum", "_created", "_total"):
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                if base in self.types:
                    return base, self.types[base]
        return None, None

    def has(self, name):
        if name in self.samples:
            return True
        fam, typ = self.family_of(name)
        if fam is None:
            return False
        if fam == name:
            return True
        suffix = name[len(fam):]
        if typ in ("histogram", "gaugehistogram"):
            return suffix in ("_bucket", "_count", "_sum", "_created")
        if typ == "summary":
            return suffix in ("_count", "_sum", "_created")
        if typ == "counter":
            return suffix in ("_total", "_created")
        return False

    def is_counter(self, name):
        fam, typ = self.family_of(name)
        if typ is None:
            return None
        if typ == "counter":
            return True
        if typ in ("histogram", "summary", "gaugehistogram"):
            return name != fam  # _bucket/_sum/_count are counters
        return False


def strip_strings(expr):
    out, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < len(expr) and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            out.append('""')
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def analyse(expr):
    """Return (metrics, ranges, problems) for one PromQL expression.

    metrics: list of (name, inside_range_function)."""
    problems = []
    e = strip_strings(expr)
    ranges = re.findall(r"\[([^\]]*)\]", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    tokens = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-z]*|\(|\)|,|\S", e)
    stack = []
    metrics = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if t == "(":
            stack.append("")
        elif t == ")":
            if stack:
                stack.pop()
            else:
                problems.append("unbalanced parentheses")
        elif re.match(r"[A-Za-z_:]", t):
            if t in GROUPING:
                if nxt == "(":
                    # skip the label list
                    depth, j = 0, i + 1
                    while j < len(tokens):
                        if tokens[j] == "(":
                            depth += 1
                        elif tokens[j] == ")":
                            depth -= 1
                            if depth == 0:
                                break
                        j += 1
                    i = j
            elif t in KEYWORDS or (t in AGGREGATORS and nxt in GROUPING):
                pass
            elif nxt == "(":
                stack.append(t)
                i += 1
            else:
                inside = any(s in RANGE_FUNCS for s in stack)
                metrics.append((t, inside))
        i += 1
    if stack:
        problems.append("unbalanced parentheses")
    return metrics, ranges, problems


def label_values_metric(query):
    """The metric a Grafana label_values(...) / query_result(...) names."""
    m = re.match(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", query)
    if m and not re.match(r"\s*label_values\(\s*[A-Za-z_:][A-Za-z0-9_:]*\s*\)", query):
        return m.group(1)
    m = re.match(r"\s*query_result\((.*)\)\s*$", query, re.S)
    if m:
        return m.group(1)
    return None


def load_recording_rules(paths):
    import yaml  # python3-yaml
    names = set()
    for p in paths:
        with open(p, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                if "record" in r:
                    names.add(r["record"])
    return names


def iter_panels(panels):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def panel_links(p):
    yield from p.get("links") or []
    fc = p.get("fieldConfig") or {}
    yield from (fc.get("defaults") or {}).get("links") or []
    for o in fc.get("overrides") or []:
        for prop in o.get("properties") or []:
            if prop.get("id") == "links":
                yield from prop.get("value") or []


def grouping_labels(expr):
    """Label lists of every by (...) clause."""
    return [set(x.strip() for x in m.split(",") if x.strip())
            for m in re.findall(r"\bby\s*\(([^)]*)\)", strip_strings(expr))]


def ds_uid(ds):
    if isinstance(ds, dict):
        return ds.get("uid")
    return ds


class Linter:
    def __init__(self, exposition, recorded):
        self.expo = exposition
        self.recorded = recorded
        self.problems = []
        self.queries = 0
        self.panels = 0

    def fail(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    def check_expr(self, where, expr):
        self.queries += 1
        metrics, ranges, problems = analyse(expr)
        for p in problems:
            self.fail(where, p)
        if not metrics:
            self.fail(where, f"query names no metric: {expr!r}")
        for r in ranges:
            r = r.strip()
            if r not in ALLOWED_RANGES:
                self.fail(where, f"range [{r}] should be [$__rate_interval] (or [$__range])")
        for name, inside in metrics:
            if ":" in name:
                if name not in self.recorded:
                    self.fail(where, f"recording rule {name} is not defined in the rule files")
                continue
            if name in SYNTHETIC:
                continue
            counter = self.expo.is_counter(name) if self.expo else None
            if counter is None:
                counter = name.endswith(COUNTER_SUFFIXES)
            if counter and not inside:
                self.fail(where, f"counter {name} used outside rate()/irate()/increase()")
            if self.expo is not None and not self.expo.has(name):
                self.fail(where, f"metric {name} is not in the live exposition")

    def check_dashboard(self, path):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        top = os.path.basename(path)
        if int(d.get("schemaVersion", 0)) < 39:
            self.fail(top, f"schemaVersion {d.get('schemaVersion')} < 39")
        if not d.get("uid"):
            self.fail(top, "dashboard has no uid")
        variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
        dsv = variables.get("datasource")
        if not dsv or dsv.get("type") != "datasource" or dsv.get("query") != "prometheus":
            self.fail(top, "needs a `datasource` variable of type datasource with query prometheus")
        for name in ("job", "instance"):
            if name not in variables:
                self.fail(top, f"needs a `{name}` variable")
        for name, v in variables.items():
            if v.get("type") != "query":
                continue
            where = f"{top} variable ${name}"
            if ds_uid(v.get("datasource")) not in DS_REFS:
                self.fail(where, "does not use ${datasource}")
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            metric_expr = label_values_metric(q or "")
            if metric_expr:
                self.check_expr(where, metric_expr)
        for a in d.get("annotations", {}).get("list", []):
            if a.get("builtIn"):
                continue
            where = f"{top} annotation {a.get('name')!r}"
            if ds_uid(a.get("datasource")) not in DS_REFS:
                self.fail(where, "does not use ${datasource}")
            if a.get("expr"):
                self.check_expr(where, a["expr"])
        self.check_links(top, d, variables)
        for p in iter_panels(d.get("panels")):
            if p.get("type") == "row":
                continue
            self.panels += 1
            where = f"{top} panel {p.get('title')!r} (id {p.get('id')})"
            unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
            if not unit:
                self.fail(where, "has no unit (fieldConfig.defaults.unit)")
            if ds_uid(p.get("datasource")) not in DS_REFS:
                self.fail(where, "panel datasource is not ${datasource}")
            targets = p.get("targets") or []
            if not targets:
                self.fail(where, "has no queries")
            for t in targets:
                tw = f"{where} target {t.get('refId')}"
                if ds_uid(t.get("datasource")) not in DS_REFS:
                    self.fail(tw, "target datasource is not ${datasource}")
                if not t.get("expr"):
                    self.fail(tw, "has no expr")
                    continue
                self.check_expr(tw, t["expr"])


    def check_link(self, where, link):
        url = link.get("url", "")
        if not re.search(r"/ui/|/incidents", url):
            return None
        if not url.startswith(LINK_BASES):
            self.fail(where, f"incident link {url!r} does not start with one of {LINK_BASES}")
        path, _, query = url.partition("?")
        if "/ui/" in path and query:
            for kv in query.split("&"):
                if kv.split("=", 1)[0] not in UI_FILTERS:
                    self.fail(where, f"incident browser link {url!r} filters by {kv!r}, not one of {sorted(UI_FILTERS)}")
        return url

    def check_links(self, top, d, variables):
        v = variables.get("admin_url")
        if not v:
            self.fail(top, "needs an `admin_url` variable (proxy admin base URL for incident links)")
        else:
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if v.get("type") not in ("textbox", "constant", "custom") or not re.match(r"https?://\S+$", q or ""):
                self.fail(top, f"variable $admin_url must be a textbox/constant/custom holding an absolute URL, got {q!r}")
        for link in d.get("links") or []:
            self.check_link(f"{top} dashboard link {link.get('title')!r}", link)
        stage_panel = False
        for p in iter_panels(d.get("panels")):
            where = f"{top} panel {p.get('title')!r} (id {p.get('id')})"
            urls = [u for u in (self.check_link(where, l) for l in panel_links(p)) if u]
            exprs = [t.get("expr") or "" for t in p.get("targets") or []]
            for e in exprs:
                if "wsgate_closes_total" in e:
                    for labels in grouping_labels(e):
                        if "code" in labels and "initiator" not in labels:
                            self.fail(where, "close codes grouped by code without initiator: show what "
                                      "clients received and who closed (by (code, initiator))")
            by_stage = any("wsgate_incidents_total" in e and any("stage" in g for g in grouping_labels(e))
                           for e in exprs)
            if by_stage and any("/ui/" in u and "stage=${" in u for u in urls):
                stage_panel = True
        if not stage_panel:
            self.fail(top, "no panel of failing stages (wsgate_incidents_total by stage) links to the "
                      "incident browser filtered by its stage")

    def check_datasource(self, path):
        import yaml  # python3-yaml
        doc = yaml.safe_load(open(path, encoding="utf-8")) or {}
        where = os.path.basename(path)
        want = "${WSGATE_INCIDENTS_BASE_URL}/ui/incidents/$${__value.raw}"
        found = False
        for ds in doc.get("datasources") or []:
            for dest in (ds.get("jsonData") or {}).get("exemplarTraceIdDestinations") or []:
                if dest.get("name") == "trace_id" and dest.get("url") == want:
                    found = True
        if not found:
            self.fail(where, f"no exemplar destination trace_id -> {want}")


def self_test():
    """The linter must catch what it promises to catch."""
    expo = Exposition()
    expo.types.update({"foo_total": "counter", "lat_seconds": "histogram", "g": "gauge"})
    expo.samples.update({"foo_total", "lat_seconds_bucket", "g"})
    cases = [
        ('sum(rate(foo_total{job=~"$job"}[$__rate_interval]))', 0),
        ('sum by (job) (foo_total)', 1),                      # bare counter
        ('sum(rate(foo_total[5m]))', 1),                      # fixed range
        ('histogram_quantile(0.9, sum by (le) (rate(lat_seconds_bucket[$__rate_interval])))', 0),
        ('histogram_quantile(0.9, sum by (le) (lat_seconds_bucket))', 1),
        ('max(g{code="x(y"})', 0),                            # parens in strings
        ('sum(rate(missing_total[$__rate_interval]))', 1),    # not exposed
        ('sum(increase(foo_total[$__range])) by (job)', 0),
        ('job:nope:rate5m', 1),                               # unknown recording rule
        ('up == 0', 0),
    ]
    bad = 0
    for expr, want in cases:
        lint = Linter(expo, {"job:wsgate_closes:rate5m"})
        lint.check_expr("self-test", expr)
        got = len(lint.problems)
        if (got > 0) != (want > 0):
            print(f"FAIL self-test {expr!r}: expected {'a problem' if want else 'no problem'}, got {lint.problems}")
            bad += 1
    # A panel without unit or with a hard-coded datasource is caught.
    import tempfile
    d = {"uid": "x", "schemaVersion": 39,
         "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"},
                                  {"name": "job", "type": "custom"}, {"name": "instance", "type": "custom"}]},
         "panels": [{"type": "timeseries", "title": "t", "id": 1, "datasource": {"uid": "prom1"},
                     "fieldConfig": {"defaults": {"links": [
                         {"title": "x", "url": "http://10.0.0.1:9090/ui/?code=1011&foo=1"}]}},
                     "targets": [{"refId": "A", "datasource": {"uid": "prom1"}, "expr": "g"},
                                 {"refId": "B", "datasource": {"uid": "prom1"},
                                  "expr": "sum by (code) (rate(foo_total[$__rate_interval]))"
                                          " + 0 * sum(rate(wsgate_closes_total[$__rate_interval]))"},
                                 {"refId": "C", "datasource": {"uid": "prom1"},
                                  "expr": "sum by (code) (rate(wsgate_closes_total[$__rate_interval]))"}]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(d, f)
    lint = Linter(None, set())
    lint.check_dashboard(f.name)
    os.unlink(f.name)
    msgs = " | ".join(lint.problems)
    for needle in ("no unit", "panel datasource", "target datasource", "`admin_url` variable",
                   "does not start with", "filters by 'foo=1'", "without initiator", "no panel of failing stages"):
        if needle not in msgs:
            print(f"FAIL self-test dashboard: no problem mentioning {needle!r} in {msgs!r}")
            bad += 1
    # A datasource whose exemplar link is the raw JSON only is caught.
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("datasources:\n  - jsonData:\n      exemplarTraceIdDestinations:\n"
                "        - name: trace_id\n          url: ${WSGATE_INCIDENTS_BASE_URL}/incidents/$${__value.raw}\n")
    lint = Linter(None, set())
    lint.check_datasource(f.name)
    os.unlink(f.name)
    if not lint.problems:
        print("FAIL self-test datasource: an exemplar link to the raw JSON only passed")
        bad += 1
    print("lint_dashboard self-test:", "ok" if not bad else f"{bad} failed")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dashboards", nargs="*")
    ap.add_argument("--exposition", action="append", default=[],
                    help="Prometheus text exposition to check metric names against (repeatable)")
    ap.add_argument("--rules", action="append", default=None,
                    help="recording rule files defining name:with:colons (default: dashboards/prometheus/recording-rules.yml)")
    ap.add_argument("--datasource", action="append", default=[],
                    help="Grafana datasource provisioning file whose exemplar link to check (repeatable)")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.dashboards:
        ap.error("no dashboard given")
    expo = None
    if args.exposition:
        expo = Exposition()
        for p in args.exposition:
            expo.load(p)
        if expo.empty():
            print(f"FAIL exposition {args.exposition} holds no metric at all")
            return 1
    lint = Linter(expo, load_recording_rules(args.rules or DEFAULT_RULES))
    for p in args.dashboards:
        lint.check_dashboard(p)
    for p in args.datasource:
        lint.check_datasource(p)
    for msg in lint.problems:
        print("FAIL", msg)
    mode = f"against {len(args.exposition)} exposition file(s)" if expo else "static"
    print(f"lint_dashboard ({mode}): {lint.panels} panels, {lint.queries} queries, "
          f"{len(lint.problems)} problem(s)")
    return 1 if lint.problems else 0


if __name__ == "__main__":
    sys.exit(main())
