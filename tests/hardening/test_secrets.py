"""Secrets never leave: every token form a client can put in a target, an
Authorization header, a subprotocol or a close reason stays out of
/connections (while the sessions are open), /incidents and every log line
(text and JSON, debug level); and a close reason cannot forge a log line."""
import base64
import json
import re
import struct
import time

import pytest

from wsgate_harness import close_payload, frame, http_get, raw_connect, wait_for


def jwt(sub, sig):
    """A JWT-shaped token: header.payload.sig, the payload naming `sub`."""
    payload = base64.urlsafe_b64encode(json.dumps({"sub": sub}).encode()).rstrip(b"=").decode()
    return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + payload + "." + sig


# Distinct per form, so a leak names the form. The opaque ones are fixed: the
# shape rule needs letters and digits mixed, which a random draw can miss.
JWT_QUERY = jwt("user-query", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
JWT_PCT_DOTS = jwt("user-pctdots", "q9LmN3vB7xZ2cK5tR8wY1hJ4gF6dS0aPeU")
JWT_PCT_ALL = jwt("user-pctall", "Tz4Wn8Yq2Lk6Hm0Rj3Vx5Bc7Nf9Gd1Sa")
JWT_HEADER = jwt("user-header", "Hb2Jd4Lf6Nh8Pk0Rm3Tq5Vs7Xu9Zw1Ay")
JWT_SUBPROTO = jwt("user-subproto", "Ka1Mc3Oe5Qg7Si9Uk2Wm4Yo6Aq8Cs0Eu")
HEX_ACCESS = "8f3a9c2e4b1d7f6a0c5e8b2d4f1a3c7e9b5d2f80"  # hex only: caught by its key
OPAQUE_APIKEY = "blsAGedBe6Swql_E1tY95UfO0hkcgdT1OL5Ka5qJusQ"
OPAQUE_BEARER20 = "f2lTPzLGIgfkMYTWJ8CG9DTZXQHgJ6s0iaxZpk1WBEs"
OPAQUE_BEARERPLUS = "5Djj5R2aB4fxcqOhHnPnJ6NstQgTggXQSc8Nw0DC4zg"
OPAQUE_BARE = "dpw1RrLUri4L38trHKBIfqKWiNFnzRvomGsejSV5Zuw"
OPAQUE_REASON = "ew8b1o9l78klg53r4tj7bs48d1euohipy3hzt3dq"
SHORT_PCT_KEY = "pw-Short-1"
UPSTREAM_JWT_TAIL = "eyJzdWIiOiJ4In0.c2lnbmF0dXJl"  # what upstream.py's /say-then-close sends

FORGED = "2026-11-29T04:00:00.000 info wsgate: FORGED-LINE"
CLOSE_REASON = ("bye\r\n" + FORGED + " " + OPAQUE_REASON).encode()
assert len(CLOSE_REASON) <= 123


def pct_all(s):
    """Percent-encodes the first character and every dot."""
    return "%{:02X}".format(ord(s[0])) + s[1:].replace(".", "%2E")


# (path and query, extra headers); every path makes upstream.py close 1011
# after the first message, so each session also becomes an incident.
SESSIONS = [
    ("/close/1011/q?token=" + JWT_QUERY + "&room=lobby", {}),
    ("/close/1011/q?access_token=" + HEX_ACCESS + "&room=lobby", {}),
    ("/close/1011/q?room=lobby&api_key=" + OPAQUE_APIKEY, {}),
    ("/close/1011/q?x=" + JWT_PCT_DOTS.replace(".", "%2E"), {}),
    ("/close/1011/q?x=" + pct_all(JWT_PCT_ALL), {}),
    ("/close/1011/q?h=Bearer%20" + OPAQUE_BEARER20, {}),
    ("/close/1011/q?h=Bearer+" + OPAQUE_BEARERPLUS, {}),
    ("/close/1011/q?state=" + OPAQUE_BARE + "&room=lobby", {}),
    ("/close/1011/q?Access%5FToken=" + SHORT_PCT_KEY, {}),
    ("/close/1011/h?room=lobby", {"Authorization": "Bearer " + JWT_HEADER}),
    ("/close/1011/p?room=lobby", {"Sec-WebSocket-Protocol": "jwt-auth, jwt." + JWT_SUBPROTO}),
    ("/say-then-close/1011/m?room=lobby", {}),
]
CLIENT_CLOSE = ("/echo/crlf?room=lobby", {})


def needles():
    """Substrings any one of which is a leak."""
    out = {}
    for name, token in [("jwt query", JWT_QUERY), ("jwt %2E", JWT_PCT_DOTS), ("jwt %65", JWT_PCT_ALL),
                        ("jwt header", JWT_HEADER), ("jwt subprotocol", JWT_SUBPROTO)]:
        _, payload, sig = token.split(".")
        out[name + " payload"] = payload
        out[name + " sig"] = sig
    for name, token in [("hex access_token", HEX_ACCESS), ("api_key", OPAQUE_APIKEY),
                        ("Bearer%20", OPAQUE_BEARER20), ("Bearer+", OPAQUE_BEARERPLUS),
                        ("bare opaque", OPAQUE_BARE), ("close reason", OPAQUE_REASON)]:
        out[name + " head"] = token[:16]
        out[name + " tail"] = token[-16:]
    out["%-encoded key"] = SHORT_PCT_KEY
    out["upstream message"] = UPSTREAM_JWT_TAIL
    return out


def assert_no_secret(where, text):
    leaks = [name for name, n in needles().items() if n in text]
    assert not leaks, f"{where} leaks {leaks}:\n{text[:4000]}"


def open_session(port, path, extra):
    sock, status, _, reader = raw_connect(port, path, extra=extra)
    assert status == 101, (path, status)
    return sock, reader


def finish(sock, reader, close_frame=None):
    """Sends one message (the upstream closes 1011 after it) or a close frame;
    then answers the close and waits for the end."""
    sock.settimeout(10)
    sock.sendall(close_frame or frame(1, b"hello"))
    try:
        code, _ = reader.read_close()
        if close_frame is None:
            sock.sendall(frame(8, struct.pack("!H", code)))
        reader.eof()
    except (EOFError, OSError):
        pass
    sock.close()


def exercise(upstream, proxy_factory, log_format):
    """Runs every session through a proxy logging at debug in `log_format`;
    returns what each output held: /connections while all were open,
    /incidents once each had ended, and the whole log."""
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}", "--log-format", log_format)
    port, admin = proxy.ports["listen"], proxy.ports["admin"]
    everything = SESSIONS + [CLIENT_CLOSE]

    opened = [open_session(port, path, extra) for path, extra in everything]

    def all_listed():  # a session is listed once its relay starts, just after the 101
        st, b, _ = http_get(admin, "/connections")
        assert st == 200
        return b if len(json.loads(b)) == len(opened) else None
    connections = wait_for(all_listed, 10, what="every session in /connections")

    for (sock, reader), (path, _) in zip(opened, everything):
        finish(sock, reader, frame(8, close_payload(1011, CLOSE_REASON)) if path == CLIENT_CLOSE[0] else None)

    def all_incidents():
        st, b, _ = http_get(admin, "/incidents")
        assert st == 200
        return b if json.loads(b)["count"] >= len(opened) else None
    incidents = wait_for(all_incidents, 20, what="an incident per session")
    wait_for(lambda: proxy.logs().count("session closed") >= len(opened), 10, what="every close logged")
    time.sleep(0.2)
    return {"connections": connections, "incidents": incidents, "logs": proxy.logs(), "sessions": len(opened)}


def test_connections_show_targets_redacted(upstream, proxy_factory):
    out = exercise(upstream, proxy_factory, "text")
    conns = json.loads(out["connections"])
    assert len(conns) == out["sessions"], out["connections"]
    assert_no_secret("/connections", out["connections"])
    # Redacted, not dropped: paths and ordinary parameters survive.
    targets = [c["target"] for c in conns]
    assert sum("room=lobby" in t for t in targets) == 8, targets
    assert sum(t.startswith("/close/1011/q?") for t in targets) == 9, targets
    assert "/close/1011/q?token=[REDACTED]&room=lobby" in targets, targets


def test_incidents_hold_no_secret(upstream, proxy_factory):
    out = exercise(upstream, proxy_factory, "json")
    assert_no_secret("/incidents", out["incidents"])
    records = json.loads(out["incidents"])["incidents"]
    reasons = [i["close"]["reason"] for i in records]
    # The client's reason is recorded (scrubbed, its CR LF intact in JSON).
    assert "bye\r\n" + FORGED + " [REDACTED]" in reasons, reasons
    assert any(i["last_upstream_message"]["text"] for i in records), records


def one_record_a_line(logs, log_format):
    lines = re.split(r"\r\n|\r|\n", logs.rstrip("\n"))
    for ln in lines:
        if log_format == "json":
            assert isinstance(json.loads(ln), dict), ln
        else:
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} \S+ wsgate: ", ln), ln
    return lines


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_logs_hold_no_secret(upstream, proxy_factory, log_format):
    logs = exercise(upstream, proxy_factory, log_format)["logs"]
    assert_no_secret(f"{log_format} log", logs)
    assert "access_token=[REDACTED]&room=lobby" in logs  # the session-open line names the target
    one_record_a_line(logs, log_format)


def test_close_reason_cannot_forge_a_log_line(upstream, proxy_factory):
    logs = exercise(upstream, proxy_factory, "text")["logs"]
    assert "FORGED-LINE" in logs  # the reason is logged ...
    # ... inside its own record, never as a line of its own.
    assert not [ln for ln in one_record_a_line(logs, "text") if ln.startswith(FORGED)], logs
    assert "reason=\"bye\\r\\n" + FORGED + " [REDACTED]\"" in logs
