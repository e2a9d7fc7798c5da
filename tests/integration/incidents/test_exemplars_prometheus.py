"""The OpenMetrics serializer against Prometheus's own parser: a real
Prometheus with exemplar storage scrapes the proxy every second; after a 1011
the correlation ID must come back from /api/v1/query_exemplars."""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse

import pytest

from incident_harness import (WSGATE, FakeUpstream, free_port, http_get, incident, run_session,
                              start_proxy, wait_for)

PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.skipif(not WSGATE, reason="WSGATE_BIN not set"),
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (Debian: prometheus)"),
]


@pytest.fixture
def prometheus_for(tmp_path):
    started = []

    def start(admin_port):
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: wsgate\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{admin_port}']\n")
        log = open(tmp_path / "prometheus.log", "wb")
        proc = subprocess.Popen(
            [PROMETHEUS, "--enable-feature=exemplar-storage", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", f"--config.file={cfg}"],
            stdout=log, stderr=subprocess.STDOUT)
        started.append((proc, log))
        base = f"http://127.0.0.1:{port}"

        def ready():
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "prometheus.log").read_text()[-3000:])
            try:
                return http_get(base + "/-/ready", timeout=1)[0] == 200
            except OSError:
                return False
        wait_for(ready, 30, interval=0.2, what="prometheus ready")
        return base

    yield start
    for proc, log in started:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def query_exemplars(base, query):
    now = time.time()
    q = urllib.parse.urlencode({"query": query, "start": now - 600, "end": now + 60})
    status, _, body = http_get(f"{base}/api/v1/query_exemplars?{q}")
    assert status == 200, body
    doc = json.loads(body)
    assert doc["status"] == "success", doc
    return doc["data"]


def trace_ids(data):
    return {e["labels"].get("trace_id") for series in data for e in series.get("exemplars", [])}


def test_prometheus_stores_the_1011_exemplar(tmp_path, prometheus_for):
    upstream = FakeUpstream(close_code=1011, close_reason="Internal error")
    proxy = start_proxy(str(tmp_path), upstream.url)
    try:
        base = prometheus_for(proxy.admin)
        # The target must be scraped healthily in OpenMetrics before the 1011:
        # a parse error would show up here as lastError.
        def target_up():
            _, _, body = http_get(base + "/api/v1/targets")
            active = json.loads(body)["data"]["activeTargets"]
            return active and active[0]["health"] == "up" and active[0]["lastError"] == "" and active[0]
        wait_for(target_up, 30, interval=0.5, what="target up")

        cid = "prom-exemplar-0001"
        assert run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)[0] == 1011
        incident(proxy, cid)

        data = wait_for(lambda: cid in trace_ids(query_exemplars(base, 'wsgate_closes_total{code="1011"}'))
                        and query_exemplars(base, 'wsgate_closes_total{code="1011"}'),
                        30, interval=1, what="exemplar in Prometheus")
        series = [s for s in data if cid in trace_ids([s])]
        assert series[0]["seriesLabels"]["code"] == "1011"
        assert series[0]["seriesLabels"]["initiator"] == "upstream"
        ex = series[0]["exemplars"][-1]
        assert ex["labels"] == {"trace_id": cid}
        assert float(ex["value"]) == 1
        assert abs(float(ex["timestamp"]) - time.time()) < 120

        inc = wait_for(lambda: cid in trace_ids(query_exemplars(base, "wsgate_incidents_total")) or None,
                       30, interval=1, what="incident exemplar in Prometheus")
        assert inc
        # Still healthy after the exemplars appeared, and the counters read right.
        assert target_up()
        q = urllib.parse.urlencode({"query": 'wsgate_closes_total{code="1011",initiator="upstream"}'})
        _, _, body = http_get(f"{base}/api/v1/query?{q}")
        assert json.loads(body)["data"]["result"][0]["value"][1] == "1"
    finally:
        proxy.stop()
        upstream.stop()
