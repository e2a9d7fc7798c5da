"""Incidents with the real wsgate-backend behind the real proxy: the staging
failure (strict context), a handler exception, normal closes, a restart, 200
concurrent 1011s, and no token anywhere."""
import asyncio
import json

import pytest

from incident_harness import (http_get, incident, incidents, make_token, metric_value, procs_fixture,
                              requires_binaries, run_session, start_backend, start_proxy, wait_for,
                              ws_session)

pytestmark = requires_binaries()

procs = procs_fixture()


def stack(tmp_path, procs, policy, faults=(), proxy_extra=(), log_level="info"):
    backend = start_backend(str(tmp_path), policy=policy, faults=faults)
    procs.append(backend)
    proxy = start_proxy(str(tmp_path), f"ws://127.0.0.1:{backend.listen}",
                        f"http://127.0.0.1:{backend.admin}/debug/traces/{{correlation_id}}",
                        extra=proxy_extra, log_level=log_level)
    procs.append(proxy)
    return backend, proxy


def backend_trace(backend, cid):
    status, _, body = http_get(backend.admin_url(f"/debug/traces/{cid}"))
    assert status == 200, body
    return json.loads(body)


def first_error_stage(trace):
    return next(s["stage"] for s in trace["stages"] if s["outcome"] == "error")


def test_strict_context_failure_names_stage_and_thread_id(tmp_path, procs):
    backend, proxy = stack(tmp_path, procs, "strict")
    token = make_token(str(tmp_path))  # no thread_id claim: the staging failure
    cid = "be-strict-0001"
    code, reason, msgs = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid,
                                     headers=[("Authorization", "Bearer " + token)])
    assert (code, reason) == (1011, "Factory SSOT validation failed")
    inc = incident(proxy, cid)
    trace = backend_trace(backend, cid)
    assert inc["failing_stage"] == first_error_stage(trace)
    assert inc["failing_stage"] in ("context.validate", "factory.create_manager")
    assert "thread_id" in inc["missing_attributes"]
    assert inc["policy"] == "strict"
    assert inc["summary"].startswith(f"1011 at {inc['failing_stage']}: context missing ")
    assert "thread_id" in inc["summary"] and inc["summary"].endswith("(policy strict)")
    assert inc["close"] == {"code": 1011, "reason": "Factory SSOT validation failed", "initiator": "upstream"}
    assert "FACTORY_INIT_FAILED" in inc["last_upstream_message"]["text"]
    assert inc["backend_trace"]["correlation_id"] == cid
    # The span the proxy sent upstream is the one the backend traced.
    assert inc["traceparent"] and inc["backend_trace"]["traceparent"] == inc["traceparent"]
    assert metric_value(proxy, "wsgate_incidents_total",
                        {"code": "1011", "stage": inc["failing_stage"]}) == 1


def test_handler_exception_names_message_handle(tmp_path, procs):
    backend, proxy = stack(tmp_path, procs, "fallback", faults=["handler.throw=ping"])
    token = make_token(str(tmp_path), thread_id="thread-42")
    cid = "be-throw-0001"
    code, reason, _ = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid,
                                  headers=[("Authorization", "Bearer " + token)],
                                  send='{"type":"ping","id":"1"}')
    assert (code, reason) == (1011, "Internal error")
    inc = incident(proxy, cid)
    assert inc["failing_stage"] == "message.handle"
    assert inc["failing_stage"] == first_error_stage(backend_trace(backend, cid))
    assert inc["summary"] == ("1011 at message.handle: exception: injected fault handler.throw=ping "
                              "(policy fallback)")
    assert inc["close"]["reason"] == "Internal error"


def test_normal_close_opens_no_incident(tmp_path, procs):
    backend, proxy = stack(tmp_path, procs, "fallback")
    token = make_token(str(tmp_path), thread_id="thread-1")
    code, _, _ = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", "be-normal-0001",
                             headers=[("Authorization", "Bearer " + token)],
                             send='{"type":"ping","id":"1"}', close_with=(1000, "bye"))
    assert code == 1000
    # A refused handshake (no token: 401) is not an incident either.
    with pytest.raises(Exception):
        run_session(f"ws://127.0.0.1:{proxy.listen}/ws", "be-normal-0002")
    assert metric_value(proxy, "wsgate_closes_total", {"code": "1000", "initiator": "client"}) == 1
    assert incidents(proxy) == {"incidents": [], "count": 0}


def test_restart_brings_incidents_back(tmp_path, procs):
    log = str(tmp_path / "incidents.jsonl")
    backend, proxy = stack(tmp_path, procs, "strict", proxy_extra=["--incident-log", log])
    token = make_token(str(tmp_path))
    cids = [f"be-restart-{i:04d}" for i in range(3)]
    for cid in cids:
        run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid, headers=[("Authorization", "Bearer " + token)])
        incident(proxy, cid)
    before = incidents(proxy)
    procs.remove(proxy)
    assert proxy.stop() == 0
    again = start_proxy(str(tmp_path), f"ws://127.0.0.1:{backend.listen}",
                        f"http://127.0.0.1:{backend.admin}/debug/traces/{{correlation_id}}",
                        extra=["--incident-log", log], name="wsgate-again")
    procs.append(again)
    after = incidents(again)
    assert after == before
    assert [i["correlation_id"] for i in after["incidents"]] == list(reversed(cids))


def test_no_token_anywhere(tmp_path, procs):
    log = str(tmp_path / "incidents.jsonl")
    backend, proxy = stack(tmp_path, procs, "strict", log_level="debug",
                           proxy_extra=["--incident-log", log, "--incident-fsync", "always"])
    token = make_token(str(tmp_path))
    run_session(f"ws://127.0.0.1:{proxy.listen}/ws", "be-secret-0001",
                headers=[("Authorization", "Bearer " + token)])
    run_session(f"ws://127.0.0.1:{proxy.listen}/ws", "be-secret-0002",
                subprotocols=["jwt-auth", "jwt." + token])
    for cid in ("be-secret-0001", "be-secret-0002"):
        assert incident(proxy, cid)["close"]["code"] == 1011
    signature = token.rsplit(".", 1)[-1]
    everything = {
        "incidents": json.dumps(incidents(proxy)),
        "incident": json.dumps(incident(proxy, "be-secret-0002")),
        "proxy log": proxy.log_text(),
        "metrics": http_get(proxy.admin_url("/metrics"))[2],
        "connections": http_get(proxy.admin_url("/connections"))[2],
    }
    procs.remove(proxy)
    proxy.stop()
    with open(log) as f:
        everything["incident log"] = f.read()
    for where, text in everything.items():
        assert token not in text, where
        assert signature not in text, where


def test_200_concurrent_1011s_none_lost(tmp_path, procs):
    log = str(tmp_path / "incidents.jsonl")
    # All 200 fetches may be in flight at once: above the default bound (64),
    # whose overflow test_incident_limits covers; here every trace must
    # arrive, given time on a loaded sanitizer build.
    backend, proxy = stack(tmp_path, procs, "strict",
                           proxy_extra=["--incident-log", log, "--incident-capacity", "500",
                                        "--trace-fetch-concurrency", "256",
                                        "--trace-fetch-timeout-ms", "15000"])
    token = make_token(str(tmp_path))
    cids = [f"be-storm-{i:04d}" for i in range(200)]

    async def storm():
        sem = asyncio.Semaphore(200)

        async def one(cid):
            async with sem:
                return await ws_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid,
                                        headers=[("Authorization", "Bearer " + token)], timeout=30)
        return await asyncio.gather(*(one(c) for c in cids))

    results = asyncio.run(asyncio.wait_for(storm(), 90))
    assert [r[0] for r in results] == [1011] * 200
    wait_for(lambda: incidents(proxy, "?limit=500")["count"] == 200, 60, interval=0.5,
             what="200 incidents")
    got = incidents(proxy, "?limit=500")["incidents"]
    assert sorted(i["correlation_id"] for i in got) == cids
    assert all(i["failing_stage"] != "unknown" for i in got), [i["backend_trace_error"] for i in got
                                                               if i["failing_stage"] == "unknown"][:5]
    total = sum(v for v in [metric_value(proxy, "wsgate_incidents_total",
                                         {"code": "1011", "stage": got[0]["failing_stage"]})] if v)
    assert total == 200
    procs.remove(proxy)
    assert proxy.stop() == 0
    with open(log) as f:
        assert sorted(json.loads(line)["correlation_id"] for line in f) == cids
