"""Incidents against a fake upstream and a trace server we control: the
trace cases the real backend cannot produce on demand (no trace endpoint,
endpoint down, trace late, endpoint hanging), normal closes, restart,
OpenMetrics exemplars, secrets."""
import json
import os
import time

import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from wsgate_harness import rss_kib  # noqa: E402

from incident_harness import (FakeUpstream, free_port, http_get, incident, incidents,  # noqa: E402
                              metric_value, procs_fixture, requires_binaries, run_session, start_proxy,
                              traces_fixture, wait_for)

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
       "eyJzdWIiOiJzdGFnaW5nLWUyZS11c2VyLTAwMSJ9.N2Y0Zm9vYmFyYmF6cXV4c2lnbmF0dXJl")

pytestmark = requires_binaries(backend=False)


@pytest.fixture
def upstream():
    u = FakeUpstream(messages=['{"type":"error","code":"INTERNAL","token":"' + JWT + '"}'])
    yield u
    u.stop()


traces = traces_fixture()
procs = procs_fixture(last_first=False)


def strict_trace(cid):
    return {"correlation_id": cid, "user_id": "staging-e2e-user-001", "policy": "strict",
            "stages": [
                {"stage": "auth.verify_jwt", "outcome": "ok", "t_us": 5, "detail": "sub ok"},
                {"stage": "context.create", "outcome": "ok", "t_us": 9, "detail": "user_id from jwt"},
                {"stage": "factory.create_manager", "outcome": "error", "t_us": 12,
                 "detail": "missing: thread_id (policy strict: Factory SSOT validation failed)"}],
            "missing_attributes": ["thread_id"]}


def test_upstream_without_trace_endpoint(tmp_path, upstream, procs):
    proxy = start_proxy(str(tmp_path), upstream.url)
    procs.append(proxy)
    cid = "fake-notrace-0001"
    code, reason, msgs = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid,
                                     headers=[("Authorization", "Bearer " + JWT)])
    assert (code, reason) == (1011, "Internal error")
    inc = incident(proxy, cid)
    assert inc["failing_stage"] == "unknown"
    assert inc["close"] == {"code": 1011, "reason": "Internal error", "initiator": "upstream"}
    assert inc["backend_trace_error"] == "no trace URL configured for route /"
    assert "backend_trace" not in inc
    assert inc["missing_attributes"] == []
    assert inc["summary"] == ('1011 from upstream "Internal error": failing stage unknown '
                              '(backend trace: no trace URL configured for route /)')
    assert inc["last_upstream_message"] == {
        "text": '{"type":"error","code":"INTERNAL","token":"[REDACTED]"}',
        "truncated": False, "compressed": False}
    assert inc["frame_counts"]["upstream_to_client"]["messages"] == 1
    assert metric_value(proxy, "wsgate_incidents_total", {"code": "1011", "stage": "unknown"}) == 1
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "no_url"}) == 1
    # The token passed through the proxy twice; it is nowhere in what we keep.
    assert JWT not in json.dumps(incidents(proxy))
    assert JWT not in proxy.log_text()


def test_trace_fetched_and_analysed(tmp_path, upstream, traces, procs):
    cid = "fake-trace-0001"
    traces.traces[cid] = strict_trace(cid)
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template)
    procs.append(proxy)
    assert run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)[0] == 1011
    inc = incident(proxy, cid)
    assert inc["failing_stage"] == "factory.create_manager"
    assert inc["missing_attributes"] == ["thread_id"]
    assert inc["policy"] == "strict"
    assert inc["summary"] == "1011 at factory.create_manager: context missing thread_id (policy strict)"
    assert inc["backend_trace"]["stages"] == strict_trace(cid)["stages"]
    assert traces.requests == [f"/debug/traces/{cid}"]
    assert metric_value(proxy, "wsgate_incidents_total",
                        {"code": "1011", "stage": "factory.create_manager"}) == 1
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "ok"}) == 1


def test_trace_that_arrives_late_is_retried(tmp_path, upstream, traces, procs):
    cid = "fake-late-0001"
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template)
    procs.append(proxy)
    assert run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)[0] == 1011
    wait_for(lambda: len(traces.requests) >= 1, 5, what="first trace request")
    traces.traces[cid] = strict_trace(cid)  # appears after the first 404
    inc = incident(proxy, cid)
    assert inc["failing_stage"] == "factory.create_manager"
    assert inc["trace_fetch"]["outcome"] == "ok"
    assert inc["trace_fetch"]["attempts"] in (2, 3)


def test_trace_unknown_to_backend(tmp_path, upstream, traces, procs):
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template)
    procs.append(proxy)
    cid = "fake-404-0001"
    run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)
    inc = incident(proxy, cid)
    assert inc["backend_trace_error"] == "HTTP 404 after 3 tries"
    assert inc["failing_stage"] == "unknown"
    assert inc["close"]["reason"] == "Internal error"
    assert traces.requests == [f"/debug/traces/{cid}"] * 3
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "not_found"}) == 1


def test_trace_endpoint_down(tmp_path, upstream, procs):
    dead = free_port()
    proxy = start_proxy(str(tmp_path), upstream.url,
                        f"http://127.0.0.1:{dead}/debug/traces/{{correlation_id}}")
    procs.append(proxy)
    cid = "fake-down-0001"
    code, reason, _ = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)
    assert (code, reason) == (1011, "Internal error")
    inc = incident(proxy, cid)
    assert inc["backend_trace_error"] == "connection refused after 3 tries"
    assert inc["failing_stage"] == "unknown"
    assert inc["close"] == {"code": 1011, "reason": "Internal error", "initiator": "upstream"}
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "refused"}) == 1


def test_trace_endpoint_hangs(tmp_path, upstream, traces, procs):
    traces.hold = 3
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template,
                        extra=["--trace-fetch-timeout-ms", "300"])
    procs.append(proxy)
    cid = "fake-hang-0001"
    t0 = time.monotonic()
    # The relay is not held up by the fetch: the session ends at once.
    assert run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)[0] == 1011
    assert time.monotonic() - t0 < 2
    inc = incident(proxy, cid)
    assert inc["backend_trace_error"] == "timeout after 300 ms"
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "timeout"}) == 1


def test_normal_closes_open_no_incident(tmp_path, procs):
    normal = FakeUpstream(close_code=1000, close_reason="bye")
    echo = FakeUpstream(close_code=None)
    try:
        proxy = start_proxy(str(tmp_path), normal.url)
        procs.append(proxy)
        assert run_session(f"ws://127.0.0.1:{proxy.listen}/ws", "fake-normal-0001")[:2] == (1000, "bye")
        proxy2 = start_proxy(str(tmp_path), echo.url, name="wsgate2")
        procs.append(proxy2)
        assert run_session(f"ws://127.0.0.1:{proxy2.listen}/ws", "fake-normal-0002",
                           send="hi", close_with=(1000, "done"))[0] == 1000
        time.sleep(0.5)
        for p in (proxy, proxy2):
            assert incidents(p) == {"incidents": [], "count": 0}
            body = http_get(p.admin_url("/metrics"))[2]
            assert [l for l in body.splitlines() if l.startswith("wsgate_incidents_total")] == []
        assert metric_value(proxy, "wsgate_closes_total", {"code": "1000", "initiator": "upstream"}) == 1
    finally:
        normal.stop()
        echo.stop()


def test_client_sent_1011_opens_an_incident(tmp_path, procs):
    echo = FakeUpstream(close_code=None)
    try:
        proxy = start_proxy(str(tmp_path), echo.url)
        procs.append(proxy)
        cid = "fake-client1011-0001"
        run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid, send="x", close_with=(1011, "client broke"))
        inc = incident(proxy, cid)
        assert inc["close"] == {"code": 1011, "reason": "client broke", "initiator": "client"}
    finally:
        echo.stop()


def test_incident_codes_flag(tmp_path, procs):
    u = FakeUpstream(close_code=4001, close_reason="custom")
    try:
        proxy = start_proxy(str(tmp_path), u.url, extra=["--incident-codes", "1011", "4001"])
        procs.append(proxy)
        run_session(f"ws://127.0.0.1:{proxy.listen}/ws", "fake-4001-0001")
        assert incident(proxy, "fake-4001-0001")["close"]["code"] == 4001
        assert incidents(proxy, "?code=1011")["count"] == 0
        assert incidents(proxy, "?code=4001")["count"] == 1
    finally:
        u.stop()


def test_admin_filters_and_errors(tmp_path, upstream, traces, procs):
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template,
                        extra=["--trace-fetch-timeout-ms", "500"])
    procs.append(proxy)
    traces.traces["fake-filter-0001"] = strict_trace("fake-filter-0001")
    before = time.time()
    for cid in ("fake-filter-0001", "fake-filter-0002", "fake-filter-0003"):
        run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)
        incident(proxy, cid)
    doc = incidents(proxy)
    assert [i["correlation_id"] for i in doc["incidents"]] == [
        "fake-filter-0003", "fake-filter-0002", "fake-filter-0001"]
    assert doc["count"] == 3
    assert incidents(proxy, "?limit=1")["incidents"][0]["correlation_id"] == "fake-filter-0003"
    assert [i["correlation_id"] for i in incidents(proxy, "?stage=factory.create_manager")["incidents"]] == [
        "fake-filter-0001"]
    assert incidents(proxy, "?stage=unknown&code=1011")["count"] == 2
    assert incidents(proxy, f"?since={int(before) + 3600}")["count"] == 0
    assert incidents(proxy, f"?since={int(before) - 1}")["count"] == 3
    assert incidents(proxy, "?since=2000-01-01T00:00:00Z")["count"] == 3
    status, headers, body = http_get(proxy.admin_url("/incidents/no-such-incident"))
    assert status == 404 and json.loads(body)["error"]
    assert headers["Content-Type"] == "application/json"
    assert http_get(proxy.admin_url("/incidents?limit=zero"))[0] == 400
    assert http_get(proxy.admin_url("/incidents?since=yesterday"))[0] == 400


def test_restart_loads_incidents_back(tmp_path, upstream, procs):
    log = str(tmp_path / "incidents.jsonl")
    proxy = start_proxy(str(tmp_path), upstream.url, extra=["--incident-log", log, "--incident-fsync", "always"])
    cids = [f"fake-restart-{i:04d}" for i in range(3)]
    for cid in cids:
        run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)
        incident(proxy, cid)
    assert proxy.stop() == 0
    with open(log) as f:
        assert [json.loads(line)["correlation_id"] for line in f] == cids
    again = start_proxy(str(tmp_path), upstream.url, extra=["--incident-log", log], name="wsgate-again")
    procs.append(again)
    doc = incidents(again)
    assert [i["correlation_id"] for i in doc["incidents"]] == list(reversed(cids))
    assert again.log_text().count("loaded 3 incidents") == 1
    # New incidents go on top of the old ones, in memory and in the log.
    run_session(f"ws://127.0.0.1:{again.listen}/ws", "fake-restart-0003")
    incident(again, "fake-restart-0003")
    assert incidents(again)["count"] == 4


def test_metrics_openmetrics_only_when_asked(tmp_path, upstream, procs):
    proxy = start_proxy(str(tmp_path), upstream.url)
    procs.append(proxy)
    cid = "fake-exemplar-0001"
    run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)
    incident(proxy, cid)
    status, headers, text = http_get(proxy.admin_url("/metrics"))
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# EOF" not in text and "trace_id" not in text
    status, headers, om = http_get(proxy.admin_url("/metrics"), headers={
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    assert headers["Content-Type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert om.endswith("# EOF\n")
    assert "# TYPE wsgate_closes counter" in om
    close_line = [l for l in om.splitlines()
                  if l.startswith('wsgate_closes_total{code="1011",initiator="upstream"} 1 # ')]
    assert len(close_line) == 1, om
    assert f'# {{trace_id="{cid}"}} 1 ' in close_line[0]
    inc_line = [l for l in om.splitlines()
                if l.startswith('wsgate_incidents_total{code="1011",stage="unknown"} 1 # ')]
    assert len(inc_line) == 1 and f'trace_id="{cid}"' in inc_line[0]


def test_shutdown_during_fetch_keeps_the_incident(tmp_path, upstream, traces):
    traces.hold = 5
    log = str(tmp_path / "incidents.jsonl")
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template,
                        extra=["--trace-fetch-timeout-ms", "4000", "--incident-log", log])
    try:
        cid = "fake-shutdown-0001"
        run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)
        wait_for(lambda: traces.requests, 5, what="trace request")
    finally:
        assert proxy.stop() == 0
    with open(log) as f:
        records = [json.loads(line) for line in f]
    assert [r["correlation_id"] for r in records] == [cid]
    assert records[0]["backend_trace_error"] == "proxy stopped before the trace fetch finished"


def test_compression_bomb_relayed_unchanged_and_inflated_only_to_the_cap(tmp_path, procs):
    """The upstream sends 64 MiB of one word repeated as one permessage-deflate
    message (about 64 KiB on the wire), then 1011. The proxy relays the
    compressed bytes without inflating them (the client inflates the whole
    bomb), keeps 4 KiB of the compressed message, and the incident inflates
    that only up to the 4 KiB capture cap. (Words, so the cap falls between
    two: a word reaching a cut is dropped, as it may be part of a secret.)"""
    bomb = "AAA " * (16 << 20)
    up = FakeUpstream(messages=[bomb], compression="deflate")
    try:
        proxy = start_proxy(str(tmp_path), up.url)
        procs.append(proxy)
        before = rss_kib(proxy.proc.pid)
        cid = "fake-bomb-0001"
        code, _, msgs = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid, compression="deflate")
        assert code == 1011
        assert len(msgs) == 1 and msgs[0] == bomb
        inc = incident(proxy, cid)
        last = inc["last_upstream_message"]
        assert (last["compressed"], last["inflated"], last["truncated"]) == (True, True, True), last
        assert last["text"] == "AAA " * 1024
        wire = inc["frame_counts"]["upstream_to_client"]["bytes"]
        assert wire < (1 << 20), wire  # it crossed the proxy compressed
        # Relaying it never needed memory on the scale of the inflated bomb.
        assert rss_kib(proxy.proc.pid) - before < 16 * 1024
    finally:
        up.stop()
