"""`wsgate incidents list|show|tail` against two real wsgate replicas that
each saw a storm of upstream 1011s (a fake upstream closing every session
with 1011, a trace server answering a strict-policy trace for each): merged
newest first with the replica on each row, show from the replica that holds
an incident, tail following new ones, a stopped replica reported as
unreachable with exit code 3, a name resolving to the replicas, the admin
token."""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from incident_harness import (WSGATE, FakeUpstream, TraceServer, http_get, incidents, start_proxy,  # noqa: E402
                              wait_for, ws_session)

pytestmark = pytest.mark.skipif(not WSGATE, reason="WSGATE_BIN not set")

STORM = 12  # sessions per replica
TOKEN = "cli-admin-token-0123456789"


def strict_trace(cid):
    return {"correlation_id": cid, "user_id": "storm-user-" + cid[-3:], "policy": "strict",
            "stages": [
                {"stage": "auth.verify_jwt", "outcome": "ok", "t_us": 5, "detail": "sub ok"},
                {"stage": "factory.create_manager", "outcome": "error", "t_us": 12,
                 "detail": "missing: thread_id (policy strict: Factory SSOT validation failed)"}],
            "missing_attributes": ["thread_id"]}


def storm(proxy, cids, traces):
    """Opens every session at once; each ends in the upstream's 1011."""
    for cid in cids:
        traces.traces[cid] = strict_trace(cid)

    async def all_sessions():
        return await asyncio.gather(*(ws_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid) for cid in cids))

    results = asyncio.run(asyncio.wait_for(all_sessions(), 60))
    assert [r[0] for r in results] == [1011] * len(cids)


def wait_incidents(proxy, n):
    wait_for(lambda: incidents(proxy, "?limit=1000")["count"] >= n, 20, what=f"{n} incidents on {proxy.name}")


def cli(*args, timeout=60):
    r = subprocess.run([WSGATE, "incidents", *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def world(tmp_path):
    """Two replicas, each with its own storm already recorded."""
    upstream = FakeUpstream(close_code=1011, close_reason="Factory SSOT validation failed")
    traces = TraceServer()
    token = tmp_path / "admin.token"
    token.write_text(TOKEN + "\n")
    procs = []
    try:
        for name in ("replica-a", "replica-b"):
            procs.append(start_proxy(str(tmp_path), upstream.url, traces.template, name=name,
                                     extra=["--admin-token-file", str(token)]))
        a, b = procs
        cids = {a.name: [f"storm-a-{i:03d}" for i in range(STORM)],
                b.name: [f"storm-b-{i:03d}" for i in range(STORM)]}
        # One replica after the other, so the merge has to interleave by time
        # rather than just concatenate.
        storm(a, cids[a.name][: STORM // 2], traces)
        storm(b, cids[b.name][: STORM // 2], traces)
        storm(a, cids[a.name][STORM // 2:], traces)
        storm(b, cids[b.name][STORM // 2:], traces)
        for p in procs:
            # incidents() sends no token: ask with it.
            wait_for(lambda p=p: json.loads(http_get(p.admin_url("/incidents?limit=1000"),
                                                     {"Authorization": "Bearer " + TOKEN})[2]
                                            )["count"] >= STORM, 20, what=f"storm on {p.name}")
        yield {"a": a, "b": b, "cids": cids, "token": str(token), "traces": traces, "upstream": upstream}
    finally:
        for p in procs:
            p.stop()
        traces.stop()
        upstream.stop()


def admin(p):
    return f"127.0.0.1:{p.admin}"


def held(p):
    """What the replica itself answers on /incidents, by correlation id."""
    _, _, body = http_get(p.admin_url("/incidents?limit=1000"), {"Authorization": "Bearer " + TOKEN})
    return {i["correlation_id"]: i for i in json.loads(body)["incidents"]}


def test_list_json_merges_every_incident_of_both_replicas(world):
    a, b, token = world["a"], world["b"], world["token"]
    rc, out, err = cli("list", "--admin", admin(a), "--admin", admin(b), "--admin-token-file", token, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["partial"] is False
    assert doc["replicas"] == [{"admin": admin(a), "ok": True}, {"admin": admin(b), "ok": True}]
    got = [(i["replica"], i["correlation_id"]) for i in doc["incidents"]]
    want = {(admin(a), c) for c in world["cids"][a.name]} | {(admin(b), c) for c in world["cids"][b.name]}
    assert len(got) == len(want) == 2 * STORM
    assert set(got) == want
    times = [i["time"] for i in doc["incidents"]]
    assert times == sorted(times, reverse=True)
    # Interleaved: the second half of a's storm came after the first of b's.
    replicas_in_order = [r for r, _ in got]
    assert replicas_in_order != sorted(replicas_in_order) and replicas_in_order != sorted(replicas_in_order,
                                                                                           reverse=True)
    # Each record is the replica's own, plus "replica".
    own = {admin(a): held(a), admin(b): held(b)}
    for i in doc["incidents"]:
        rec = dict(i)
        assert own[rec.pop("replica")][rec["correlation_id"]] == rec
        assert i["failing_stage"] == "factory.create_manager"
    assert TOKEN not in out + err


def test_list_filters_and_limit_apply_across_replicas(world):
    a, b, token = world["a"], world["b"], world["token"]
    base = ["list", "--admin", admin(a), "--admin", admin(b), "--admin-token-file", token, "--json"]
    rc, out, _ = cli(*base, "--limit", "5")
    assert rc == 0
    newest5 = json.loads(out)["incidents"]
    # Each replica answers its 5 newest; the merge keeps the 5 newest of those.
    offered = []
    for p in (a, b):
        _, _, body = http_get(p.admin_url("/incidents?limit=5"), {"Authorization": "Bearer " + TOKEN})
        offered += [dict(i, replica=admin(p)) for i in json.loads(body)["incidents"]]
    assert len(offered) == 10
    assert len(newest5) == 5
    assert all(i in offered for i in newest5)
    assert [i["time"] for i in newest5] == sorted((i["time"] for i in offered), reverse=True)[:5]
    rc, out, _ = cli(*base, "--code", "1000")
    assert (rc, json.loads(out)["incidents"]) == (0, [])
    rc, out, _ = cli(*base, "--stage", "factory.create_manager", "--filter", "code=1011")
    assert len(json.loads(out)["incidents"]) == 2 * STORM
    rc, _, err = cli(*base, "--since", "yesterday")
    assert rc == 1 and "since must be RFC 3339" in err


def test_list_table_for_people(world):
    a, b, token = world["a"], world["b"], world["token"]
    rc, out, err = cli("list", "--admin", admin(a), "--admin", admin(b), "--admin-token-file", token)
    assert rc == 0, err
    lines = out.splitlines()
    header = re.split(r"\s{2,}", lines[0])
    assert header == ["TIME", "REPLICA", "CODE", "STAGE", "CORRELATION ID", "SUMMARY"]
    # Aligned: every column starts where its header does.
    starts = [lines[0].index(h) for h in header]
    rows = []
    for line in lines[1:]:
        cells = [line[s:e].strip() for s, e in zip(starts, starts[1:] + [len(line)])]
        rows.append(cells)
        for s in starts[1:]:
            assert line[s - 2:s] == "  " and line[s] != " ", line
    assert len(rows) == 2 * STORM
    owner = {c: admin(a) for c in world["cids"][a.name]} | {c: admin(b) for c in world["cids"][b.name]}
    for time_, replica, code, stage, cid, summary in rows:
        assert owner[cid] == replica
        assert (code, stage) == ("1011", "factory.create_manager")
        assert summary.startswith("1011 at factory.create_manager: context missing thread_id")
        assert len(summary) <= 72
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)


def test_show_finds_the_incident_on_the_second_replica(world):
    a, b, token = world["a"], world["b"], world["token"]
    cid = world["cids"][b.name][3]
    common = ["--admin", admin(a), "--admin", admin(b), "--admin-token-file", token]
    rc, out, err = cli("show", cid, *common, "--json")
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["replica"] == admin(b)
    assert rec["correlation_id"] == cid
    assert out.startswith("{\n  ")  # pretty
    rc, out, err = cli("show", cid, *common)
    assert rc == 0, err
    assert f"replica             {admin(b)}\n" in out
    assert "failing stage       factory.create_manager\n" in out
    assert "missing attributes  thread_id\n" in out
    assert f"user                storm-user-{cid[-3:]}\n" in out
    assert 'close               1011 "Factory SSOT validation failed" from upstream\n' in out
    assert "  +12us  factory.create_manager  error  missing: thread_id" in out
    rc, out, err = cli("show", "no-such-incident-0001", *common)
    assert rc == 4
    assert out == ""
    assert "no incident with correlation id no-such-incident-0001 on any of 2 replicas" in err


def test_tail_picks_up_new_incidents(world):
    a, b, token, traces = world["a"], world["b"], world["token"], world["traces"]
    tail = subprocess.Popen([WSGATE, "incidents", "tail", "--admin", admin(a), "--admin", admin(b),
                             "--admin-token-file", token, "--json", "--interval", "0.2", "--count", "4",
                             "--duration", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = tail.stderr.readline()
        assert "following 2 replicas (2 answered)" in line, line
        new = {a.name: ["tail-a-000", "tail-a-001"], b.name: ["tail-b-000", "tail-b-001"]}
        storm(a, new[a.name][:1], traces)
        storm(b, new[b.name], traces)
        storm(a, new[a.name][1:], traces)
        out, err = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert tail.returncode == 0, err
    rows = [json.loads(l) for l in out.splitlines()]
    assert sorted((r["replica"], r["correlation_id"]) for r in rows) == sorted(
        [(admin(a), c) for c in new[a.name]] + [(admin(b), c) for c in new[b.name]])
    times = [r["time"] for r in rows]
    assert times == sorted(times)  # oldest first, as a log reads


def test_tail_stops_after_duration_and_prints_nothing_old(world):
    a, token = world["a"], world["token"]
    t0 = time.monotonic()
    rc, out, err = cli("tail", "--admin", admin(a), "--admin-token-file", token, "--interval", "0.1",
                       "--duration", "1")
    assert rc == 0, err
    assert out == ""
    assert 1 <= time.monotonic() - t0 < 30


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_tail_stops_on_signal(world, sig):
    a, token = world["a"], world["token"]
    tail = subprocess.Popen([WSGATE, "incidents", "tail", "--admin", admin(a), "--admin-token-file", token,
                             "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "following 1 replicas (1 answered)" in tail.stderr.readline()
        tail.send_signal(sig)
        out, err = tail.communicate(timeout=15)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert tail.returncode == 0, err
    assert out == ""


def test_stopped_replica_is_unreachable_and_the_answer_partial(world):
    a, b, token = world["a"], world["b"], world["token"]
    b.stop()
    rc, out, err = cli("list", "--admin", admin(a), "--admin", admin(b), "--admin-token-file", token, "--json")
    assert rc == 3, err
    doc = json.loads(out)
    assert doc["partial"] is True
    assert doc["replicas"] == [{"admin": admin(a), "ok": True},
                               {"admin": admin(b), "ok": False, "error": "connection refused"}]
    assert sorted(i["correlation_id"] for i in doc["incidents"]) == sorted(world["cids"][a.name])
    assert {i["replica"] for i in doc["incidents"]} == {admin(a)}
    rc, out, err = cli("list", "--admin", admin(a), "--admin", admin(b), "--admin-token-file", token)
    assert rc == 3
    assert f"replica {admin(b)} failed: connection refused" in err
    assert "partial result: 1 of 2 replicas answered" in err
    assert len(out.splitlines()) == 1 + STORM
    # What b held may be there: not "not found".
    rc, _, err = cli("show", world["cids"][b.name][0], "--admin", admin(a), "--admin", admin(b),
                     "--admin-token-file", token)
    assert rc == 3
    assert "1 did not: it may be there" in err
    a.stop()
    rc, out, err = cli("list", "--admin", admin(a), "--admin", admin(b), "--json")
    assert rc == 1
    assert json.loads(out)["incidents"] == []


def test_replica_that_never_answers_times_out(world):
    a, token = world["a"], world["token"]
    # Connects (the kernel completes the handshake into the backlog) and then
    # never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        hang = f"127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        rc, out, err = cli("list", "--admin", admin(a), "--admin", hang, "--admin-token-file", token, "--json",
                           "--timeout-ms", "300")
        elapsed = time.monotonic() - t0
    assert rc == 3, err
    doc = json.loads(out)
    assert doc["replicas"][1] == {"admin": hang, "ok": False, "error": "timeout after 300 ms"}
    assert len(doc["incidents"]) == STORM
    assert elapsed < 20


def test_name_resolving_to_the_replicas(world):
    a, token = world["a"], world["token"]
    addresses = sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", a.admin, type=socket.SOCK_STREAM)})
    assert "127.0.0.1" in addresses
    rc, out, err = cli("list", "--admin", f"localhost:{a.admin}", "--admin-token-file", token, "--json")
    doc = json.loads(out)
    labels = {r["admin"]: r for r in doc["replicas"]}
    want = {(f"[{x}]:{a.admin}" if ":" in x else f"{x}:{a.admin}") for x in addresses}
    assert set(labels) == want
    assert labels[admin(a)]["ok"] is True
    # The proxy's admin listens on 127.0.0.1 only: any other address of
    # localhost (::1) is refused, which makes the answer partial.
    assert rc == (0 if len(want) == 1 else 3), err
    assert sorted(i["correlation_id"] for i in doc["incidents"]) == sorted(world["cids"][a.name])


def test_admin_token(world):
    a, b, token = world["a"], world["b"], world["token"]
    rc, out, err = cli("list", "--admin", admin(a), "--admin", admin(b), "--json")
    assert rc == 1
    doc = json.loads(out)
    for r in doc["replicas"]:
        assert r["ok"] is False
        assert r["error"].startswith("HTTP 401") and "no --admin-token-file given" in r["error"]
    wrong = os.path.join(os.path.dirname(token), "wrong.token")
    with open(wrong, "w") as f:
        f.write("not-the-token-at-all")
    rc, out, err = cli("list", "--admin", admin(a), "--admin-token-file", wrong, "--json")
    assert rc == 1
    assert "refused" in json.loads(out)["replicas"][0]["error"]
    assert "not-the-token-at-all" not in out + err


def test_help_tells_the_truth():
    rc, out, _ = cli("--help")
    assert rc == 0
    for word in ("list", "show", "tail", "--admin", "--json", "--admin-token-file", "--timeout-ms",
                 "3  partial", "4  show"):
        assert word in out
    rc, out, _ = cli("tail", "--help")
    for word in ("--interval", "--count", "--duration", "--lookback", "--filter"):
        assert word in out
    top = subprocess.run([WSGATE, "--help"], capture_output=True, text=True, timeout=30)
    assert "wsgate incidents list|show ID|tail" in top.stdout
    rc, _, err = cli("list", "--admin", "not-an-address")
    assert rc == 2
