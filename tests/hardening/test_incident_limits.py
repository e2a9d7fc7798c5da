"""Hardening of the incident path, black-box against the real wsgate: a
deeply nested backend trace, a huge trace, a storm of 1011 sessions against
a slow trace endpoint (fds bounded, every incident recorded), an incident log
whose directory is replaced, and a non-regular --incident-log."""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "incidents"))
from incident_harness import (WSGATE, FakeUpstream, http_get, incident, metric_value,  # noqa: E402
                              procs_fixture, requires_binaries, run_session, start_proxy, traces_fixture,
                              wait_for, ws_session)

pytestmark = requires_binaries(backend=False)

FETCH_BOUND = 16
FD_SLACK = 40  # listener, admin, epoll, eventfds, log files, ASan, in-flight teardown


@pytest.fixture
def upstream():
    u = FakeUpstream(close_code=1011, close_reason="Internal error")
    yield u
    u.stop()


traces = traces_fixture()
procs = procs_fixture(last_first=False)


def session_1011(proxy, cid):
    code, _, _ = run_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)
    assert code == 1011


def alive(proxy):
    assert proxy.proc.poll() is None, proxy.log_text()[-3000:]
    status, _, _ = http_get(proxy.admin_url("/healthz"))
    assert status == 200


def test_deeply_nested_trace_is_refused_and_the_proxy_lives(tmp_path, upstream, traces, procs):
    cid = "deep-trace-0001"
    # ~100 KB, under the 1 MiB fetch cap; an object, so it passes the shape check.
    traces.bodies[cid] = b'{"stages":' + b"[" * 50000 + b"]" * 50000 + b"}"
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template)
    procs.append(proxy)
    session_1011(proxy, cid)
    rec = incident(proxy, cid)
    assert rec["backend_trace_error"] == "trace nested deeper than 64 levels"
    assert rec["trace_fetch"]["outcome"] == "too_deep"
    assert "backend_trace" not in rec
    alive(proxy)
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "too_deep"}) == 1


def test_huge_trace_is_stored_capped_with_the_failing_stage(tmp_path, upstream, traces, procs):
    cid = "huge-trace-0001"
    stages = [{"stage": f"stage.{i}", "outcome": "error" if i == 600 else "ok", "detail": "d" * 800}
              for i in range(1000)]
    traces.bodies[cid] = json.dumps({"policy": "strict", "stages": stages}).encode()  # ~870 KB
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template,
                        extra=["--incident-trace-max-bytes", "32768"])
    procs.append(proxy)
    session_1011(proxy, cid)
    rec = incident(proxy, cid)
    kept = rec["backend_trace"]["stages"]
    assert len(json.dumps(rec["backend_trace"], separators=(",", ":"))) <= 32768
    assert "stage.600" in [s["stage"] for s in kept]
    assert rec["failing_stage"] == "stage.600"
    cut = rec["backend_trace_truncated"]
    assert cut["stages_dropped_before"] + cut["stages_dropped_after"] + len(kept) == 1000
    assert metric_value(proxy, "wsgate_incident_trace_truncated_total", {}) == 1


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_incident_storm_against_a_slow_trace_endpoint_holds_bounded_fds(tmp_path, upstream, traces, procs):
    n = 300
    cids = [f"storm-{i:06d}" for i in range(n)]
    for cid in cids:
        traces.bodies[cid] = json.dumps({"stages": [{"stage": "x.y", "outcome": "error"}]}).encode()
    traces.hold = 10.0
    proxy = start_proxy(str(tmp_path), upstream.url, traces.template,
                        extra=["--trace-fetch-concurrency", str(FETCH_BOUND), "--trace-fetch-timeout-ms", "30000"])
    procs.append(proxy)
    time.sleep(0.3)
    baseline = fd_count(proxy.proc.pid)

    async def storm():
        sem = asyncio.Semaphore(50)

        async def one(cid):
            async with sem:
                return await ws_session(f"ws://127.0.0.1:{proxy.listen}/ws", cid)

        return await asyncio.wait_for(asyncio.gather(*(one(c) for c in cids)), 60)

    started = time.monotonic()
    results = asyncio.run(storm())
    assert all(code == 1011 for code, _, _ in results)
    # Every session is over; the held fetches are still running.
    assert time.monotonic() - started < traces.hold, "storm slower than the trace hold: raise hold"
    wait_for(lambda: len(traces.requests) >= FETCH_BOUND, 10, what="held trace fetches")
    time.sleep(0.5)
    held = fd_count(proxy.proc.pid)
    print(f"storm: {n} incidents, proxy fds {baseline} before, {held} with fetches held")
    assert held <= baseline + FETCH_BOUND + FD_SLACK, (baseline, held)
    assert metric_value(proxy, "wsgate_incident_trace_fetches_in_flight", {}) <= FETCH_BOUND
    # Every incident is recorded: fetched ones once the hold ends.
    # Every incident is recorded: the skipped ones at once, the fetched ones
    # when the hold ends. Looked up one by one (the list may be paginated).
    recs = [incident(proxy, cid, timeout=30) for cid in cids]
    skipped = [r for r in recs if r["trace_fetch"]["outcome"] == "overloaded"]
    fetched = [r for r in recs if r["trace_fetch"]["outcome"] == "ok"]
    assert len(skipped) + len(fetched) == n
    assert len(skipped) >= n - 2 * FETCH_BOUND
    assert "fetches in flight" in skipped[0]["backend_trace_error"]
    assert len(traces.requests) <= n - len(skipped)
    assert metric_value(proxy, "wsgate_incident_trace_fetch_total", {"outcome": "overloaded"}) == len(skipped)
    alive(proxy)


def test_incident_log_reopened_after_its_directory_is_replaced(tmp_path, upstream, procs):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    log = logdir / "incidents.jsonl"
    proxy = start_proxy(str(tmp_path), upstream.url, extra=["--incident-log", str(log), "--incident-fsync", "always"])
    procs.append(proxy)
    session_1011(proxy, "logdir-00000001")
    incident(proxy, "logdir-00000001")
    wait_for(lambda: log.exists() and log.read_text().count("\n") == 1, 10, what="first record")
    shutil.rmtree(logdir)
    logdir.mkdir()
    session_1011(proxy, "logdir-00000002")
    incident(proxy, "logdir-00000002")
    wait_for(lambda: log.exists() and "logdir-00000002" in log.read_text(), 10, what="record in the new directory")
    assert metric_value(proxy, "wsgate_incident_log_reopens_total", {}) == 1
    # Rotated away by logrotate, then SIGHUP: a fresh file at the path.
    os.rename(log, str(log) + ".1")
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: log.exists(), 10, what="log reopened on SIGHUP")
    session_1011(proxy, "logdir-00000003")
    incident(proxy, "logdir-00000003")
    wait_for(lambda: "logdir-00000003" in log.read_text(), 10, what="record after SIGHUP")
    lines = log.read_text().splitlines()
    assert [json.loads(x)["correlation_id"] for x in lines] == ["logdir-00000003"]
    alive(proxy)


@pytest.mark.parametrize("kind", ["/dev/full", "fifo", "directory"])
def test_non_regular_incident_log_refused_at_start(tmp_path, upstream, kind):
    if kind == "fifo":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    elif kind == "directory":
        path = str(tmp_path)
    else:
        path = kind
    args = [WSGATE, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--upstream", upstream.url,
            "--incident-log", path]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"--incident-log {path}: start-up hung")
    assert out.returncode != 0
    assert f"--incident-log {path}" in out.stderr + out.stdout
    assert "not a regular file" in out.stderr + out.stdout


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs; the test is skipped only when mounting is refused."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"mount refused: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], timeout=10)


def fill(path):
    """Writes `path` until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


def test_incident_log_on_a_full_disk_keeps_whole_lines(tiny_fs, tmp_path, upstream, procs):
    log = tiny_fs / "incidents.jsonl"
    proxy = start_proxy(str(tmp_path), upstream.url, extra=["--incident-log", str(log), "--incident-fsync", "always"])
    procs.append(proxy)
    session_1011(proxy, "fulldisk-0000")
    wait_for(lambda: log.exists() and log.stat().st_size > 0, 10, what="first record")
    fill(tiny_fs / "filler")
    # The log's last page still takes a few records; one of them crosses it.
    for i in range(1, 13):
        session_1011(proxy, f"fulldisk-{i:04d}")
        incident(proxy, f"fulldisk-{i:04d}")
    wait_for(lambda: (metric_value(proxy, "wsgate_incident_log_write_errors_total", {"reason": "write"}) or 0) >= 1,
             10, what="write errors counted")
    os.unlink(tiny_fs / "filler")  # disk freed
    for i in range(13, 16):
        session_1011(proxy, f"fulldisk-{i:04d}")
    wait_for(lambda: "fulldisk-0015" in log.read_text(), 10, what="records after the disk was freed")
    written = [json.loads(line)["correlation_id"] for line in log.read_text().splitlines()]  # every line whole
    assert written[0] == "fulldisk-0000"
    assert written[-3:] == ["fulldisk-0013", "fulldisk-0014", "fulldisk-0015"]
    assert len(written) < 16  # some were refused by the full disk, and counted
    alive(proxy)
