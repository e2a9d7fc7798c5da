"""What ops see is what clients saw: the flight recorder in incidents and in
/connections/{id}, every ping/pong pair an RTT sample, counters fresh at a
scrape while the session idles."""
import json
import struct
import time

from wsgate_harness import close_payload, frame, http_get, metric, raw_connect, wait_for


def get_json(port, path):
    status, body, _ = http_get(port, path)
    return status, (json.loads(body) if body else None)


def only_session(admin):
    status, sessions = get_json(admin, "/connections")
    assert status == 200 and len(sessions) == 1
    return sessions[0]


def test_incident_carries_the_last_frames_in_order(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    admin = proxy.ports["admin"]
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/say-then-close/1011")
    assert status == 101
    # A message in two fragments, then a binary one.
    sock.sendall(frame(1, b"par", fin=False) + frame(0, b"t") + frame(2, b"bin"))
    assert reader.read_close() == (1011, "Factory SSOT validation failed")
    sock.sendall(frame(8, close_payload(1011, b"echo")))
    assert reader.eof()
    cid = wait_for(lambda: (get_json(admin, "/incidents")[1] or {}).get("incidents"),
                   what="an incident")[0]["correlation_id"]
    status, inc = get_json(admin, f"/incidents/{cid}")
    assert status == 200
    frames = inc["frames"]
    # Time order across both directions...
    assert [f["t_ms"] for f in frames] == sorted(f["t_ms"] for f in frames)
    c2u = [f for f in frames if f["direction"] == "client_to_upstream"]
    u2c = [f for f in frames if f["direction"] == "upstream_to_client"]
    # ...and every frame of each, in the order sent.
    assert [(f["opcode"], f["fin"], f["length"], f["masked"], f["rsv"]) for f in c2u] == [
        (1, False, 3, True, 0), (0, True, 1, True, 0), (2, True, 3, True, 0), (8, True, 6, True, 0)]
    assert [f["opcode"] for f in u2c] == [1, 8]
    assert not any(f["masked"] for f in u2c)
    close = u2c[-1]
    assert close["close_code"] == 1011
    assert close["close_reason"] == "Factory SSOT validation failed"
    assert c2u[-1]["close_code"] == 1011 and c2u[-1]["close_reason"] == "echo"
    assert all("close_code" not in f for f in frames if f["opcode"] != 8)
    # Message contents are off by default.
    assert all("text" not in f and "text_cut" not in f for f in frames)
    # The per-direction counts moved to frame_counts.
    assert inc["frame_counts"]["client_to_upstream"]["frames"] == 4
    assert inc["frame_counts"]["upstream_to_client"]["messages"] == 1


# What /say-then-close sends before its close: a JWT after "Bearer ".
SAID_JWT_PARTS = ("eyJzdWIi", "c2lnbmF0")


def storm_incident_frames(upstream, proxy_factory, text_bytes):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}",
                          "--flight-recorder-text-bytes", str(text_bytes))
    admin = proxy.ports["admin"]
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/say-then-close/1011")
    assert status == 101
    sock.sendall(frame(1, b"hello <b>upstream</b>, here is my question"))
    assert reader.read_close()[0] == 1011
    sock.sendall(frame(8, close_payload(1011)))
    assert reader.eof()
    cid = wait_for(lambda: (get_json(admin, "/incidents")[1] or {}).get("incidents"),
                   what="an incident")[0]["correlation_id"]
    status, inc = get_json(admin, f"/incidents/{cid}")
    assert status == 200
    status, page, _ = http_get(admin, f"/ui/incidents/{cid}")
    assert status == 200
    text_frames = {f["direction"]: f for f in inc["frames"] if f["opcode"] == 1}
    return text_frames["client_to_upstream"], text_frames["upstream_to_client"], page


def test_text_prefixes_whole_are_redacted(upstream, proxy_factory):
    sent, said, page = storm_incident_frames(upstream, proxy_factory, 124)
    assert sent["text"] == "hello <b>upstream</b>, here is my question"
    assert sent["text_cut"] is False
    assert said["text"].startswith('{"type":"error","code":"FACTORY_INIT_FAILED","auth":"')
    assert "[REDACTED]" in said["text"] and said["text_cut"] is False
    assert not any(part in said["text"] for part in SAID_JWT_PARTS)
    # The incident page shows both, escaped.
    assert "hello &lt;b&gt;upstream&lt;/b&gt;" in page and "<b>upstream" not in page
    assert "FACTORY_INIT_FAILED" in page
    assert not any(part in page for part in SAID_JWT_PARTS)


def test_text_prefix_cut_inside_a_token_shows_none_of_it(upstream, proxy_factory):
    # 70 bytes end inside the JWT's header, before its first dot: the
    # redaction rules alone would not know it for a token.
    sent, said, page = storm_incident_frames(upstream, proxy_factory, 70)
    assert said["text"] == '{"type":"error","code":"FACTORY_INIT_FAILED","auth":"Bearer '
    assert said["text_cut"] is True
    assert sent["text"] == "hello <b>upstream</b>, here is my question"
    assert "eyJ" not in page


def test_recorder_off_leaves_frames_empty(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--flight-recorder-frames", "0")
    admin = proxy.ports["admin"]
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/say-then-close/1011")
    assert status == 101
    sock.sendall(frame(1, b"go"))
    assert reader.read_close()[0] == 1011
    sock.close()
    inc = wait_for(lambda: (get_json(admin, "/incidents")[1] or {}).get("incidents"),
                   what="an incident")[0]
    assert inc["frames"] == []
    assert inc["frame_counts"]["client_to_upstream"]["frames"] >= 1


def test_live_session_shows_its_frames(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--flight-recorder-frames", "4")
    admin = proxy.ports["admin"]
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    for i in range(6):
        sock.sendall(frame(2, bytes(10 + i)))
        assert reader.read()[2] == bytes(10 + i)
    cid = only_session(admin)["correlation_id"]
    status, live = get_json(admin, f"/connections/{cid}")
    assert status == 200
    assert live["correlation_id"] == cid
    c2u = [f for f in live["frames"] if f["direction"] == "client_to_upstream"]
    u2c = [f for f in live["frames"] if f["direction"] == "upstream_to_client"]
    # The last 4 of 6 each way.
    assert [f["length"] for f in c2u] == [12, 13, 14, 15]
    assert [f["length"] for f in u2c] == [12, 13, 14, 15]
    assert all(f["opcode"] == 2 for f in live["frames"])
    # The list stays light: no recorder in it.
    assert "frames" not in only_session(admin)

    status, err = get_json(admin, "/connections/no-such-session")
    assert status == 404 and "error" in err
    assert get_json(admin, "/connections/")[0] == 404
    sock.sendall(frame(8, close_payload(1000)))
    assert reader.read_close() == (1000, "")
    wait_for(lambda: get_json(admin, f"/connections/{cid}")[0] == 404, what="session gone")


def test_connection_detail_needs_the_token(upstream, proxy_factory, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-admin-token\n")
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--admin-token-file", str(token))
    admin = proxy.ports["admin"]
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    sock.sendall(frame(1, b"hi"))
    reader.read()
    auth = {"Authorization": "Bearer s3cret-admin-token"}
    status, body, _ = http_get(admin, "/connections", headers=auth)
    cid = json.loads(body)[0]["correlation_id"]
    assert http_get(admin, f"/connections/{cid}")[0] == 401
    status, body, _ = http_get(admin, f"/connections/{cid}", headers=auth)
    assert status == 200 and json.loads(body)["frames"]


def test_every_ping_pong_pair_is_a_sample(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    admin = proxy.ports["admin"]
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    sent = 0
    for burst in (3, 3, 3, 2):  # several outstanding at once, within the window of 4
        payloads = [b"p%d" % (sent + i) for i in range(burst)]
        sock.sendall(b"".join(frame(9, p) for p in payloads))
        pongs = [reader.read() for _ in payloads]
        assert [(op, p) for _, op, p in pongs] == [(10, p) for p in payloads]
        sent += burst
    assert sent == 11
    wait_for(lambda: metric(admin, "wsgate_ping_rtt_seconds_count") == 11, what="11 RTT samples")
    assert metric(admin, "wsgate_ping_rtt_evicted_total") == 0
    # Five at once: the oldest falls out of the window, counted.
    sock.sendall(b"".join(frame(9, b"q%d" % i) for i in range(5)))
    for _ in range(5):
        assert reader.read()[1] == 10
    wait_for(lambda: metric(admin, "wsgate_ping_rtt_seconds_count") == 15, what="4 more samples")
    assert metric(admin, "wsgate_ping_rtt_evicted_total") == 1


def test_counters_fresh_while_idle(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    admin = proxy.ports["admin"]
    sock, status, _, reader = raw_connect(proxy.ports["listen"], "/echo")
    assert status == 101
    n = 7
    for i in range(n):
        sock.sendall(frame(1, b"m%d" % i))
        reader.read()
    # Idle from here: within about a second the counters show every frame.
    start = time.monotonic()
    wait_for(lambda: only_session(admin)["client_to_upstream"]["frames"] == n, timeout=2.5,
             what="/connections frames")
    wait_for(lambda: metric(admin, "wsgate_frames_total", direction="upstream_to_client",
                            opcode="text") == n, timeout=2.5, what="/metrics frames")
    s = only_session(admin)
    assert s["upstream_to_client"]["frames"] == n
    assert s["client_to_upstream"]["bytes"] == sum(len(frame(1, b"m%d" % i)) for i in range(n))
    assert time.monotonic() - start < 5
    sock.close()
