#!/usr/bin/env python3
"""Writes the committed seed corpora of the handshake, JWT, config and
incident fuzzers (tests/fuzz/corpus/<target>/). Re-run after changing it;
deterministic except the RS256 signatures' inputs (fixed) and the key
(tests/fuzz/keys/fuzz_rs256.key, a fuzz-only key).

    /usr/bin/python3 tests/fuzz/gen_corpus_handshake.py
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = 1700000000
SECRET = b"fuzz-secret-0123456789abcdef0123456789"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def req(lines):
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


BASE = ["GET /ws?x=1 HTTP/1.1", "Host: proxy.example", "Upgrade: websocket",
        "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13"]

# --- fuzz_upgrade_request
T = "fuzz_upgrade_request"
write(T, "minimal", req(BASE))
write(T, "full", req(BASE + ["X-Correlation-ID: client-supplied-0001",
                             "X-Forwarded-For: 10.0.0.1, 10.0.0.2", "traceparent: "
                             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                             "Sec-WebSocket-Protocol: jwt-auth, jwt.eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
                             "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                             "Authorization: Bearer abc.def.ghi", "Origin: https://app.example"]))
write(T, "hop_by_hop", req(BASE[:3] + ["Connection: Upgrade, X-Secret, Keep-Alive", "X-Secret: 1",
                                      "Keep-Alive: timeout=5", "Proxy-Authorization: Basic Zm9v",
                                      "TE: trailers", "Trailer: X"] + BASE[4:]))
write(T, "obs_fold", req(BASE + ["X-Forwarded-For: 10.0.0.1,", " 10.0.0.9", "X-Long: a", "\tb"]))
write(T, "crlf_in_cid", req(BASE + ["X-Correlation-ID: abcdefgh%0d%0aX-Injected: 1"]))
write(T, "bad_version", req(BASE[:5] + ["Sec-WebSocket-Version: 8"]))
write(T, "post", req(["POST /ws HTTP/1.1"] + BASE[1:] + ["Content-Length: 0"]))
write(T, "chunked", req(BASE + ["Transfer-Encoding: chunked"]) + b"0\r\n\r\n")
write(T, "http10", req(["GET / HTTP/1.0"] + BASE[1:]))
write(T, "two_hosts", req(BASE + ["Host: evil.example"]))
write(T, "absolute_target", req(["GET http://evil/ HTTP/1.1"] + BASE[1:]))
write(T, "pipelined", req(BASE) + req(BASE))

# --- fuzz_upstream_response: selector byte, then the response
T = "fuzz_upstream_response"
R = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
     "Sec-WebSocket-Accept: @ACCEPT@"]
write(T, "ok", b"\x00" + req(R))
write(T, "subprotocol", b"\x01" + req(R + ["Sec-WebSocket-Protocol: jwt-auth"]))
write(T, "deflate", b"\x02" + req(R + ["Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"]))
write(T, "unoffered_ext", b"\x00" + req(R + ["Sec-WebSocket-Extensions: x-unknown"]))
write(T, "hop", b"\x03" + req(R[:2] + ["Connection: Upgrade, X-Hop", "X-Hop: 1", "Keep-Alive: 1",
                                      "Transfer-Encoding: chunked"] + R[3:] + ["Set-Cookie: a=b"]))
write(T, "bad_accept", b"\x00" + req(R[:3] + ["Sec-WebSocket-Accept: AAAA"]))
write(T, "denied_401", b"\x00" + req(["HTTP/1.1 401 Unauthorized", "Content-Type: application/json",
                                     "Content-Length: 24"]) + b'{"error":"unauthorized"}')
write(T, "redirect", b"\x00" + req(["HTTP/1.1 302 Found", "Location: http://evil/", "Content-Length: 0"]))
write(T, "http10_101", b"\x00" + req(["HTTP/1.0 101 Switching Protocols"] + R[1:]))
write(T, "frames_after", b"\x00" + req(R) + b"\x81\x05hello")

# --- fuzz_jwt: selector (0 HS256, 1 HS256+iss/aud, 2 RS256), then the token


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(header, claims, sign):
    si = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64u(json.dumps(claims, separators=(",", ":")).encode())
    return si + "." + b64u(sign(si.encode()))


def hs(si):
    return hmac.new(SECRET, si, hashlib.sha256).digest()


def rs(si):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(HERE, "keys", "fuzz_rs256.key")],
                          input=si, stdout=subprocess.PIPE, check=True).stdout


T = "fuzz_jwt"
good = {"sub": "staging-e2e-user-001", "thread_id": "t-1", "exp": NOW + 3600, "iat": NOW}
write(T, "hs256_ok", b"\x00" + token({"alg": "HS256", "typ": "JWT"}, good, hs).encode())
write(T, "hs256_iss_ok", b"\x01" + token({"alg": "HS256", "typ": "JWT"},
                                         dict(good, iss="wsgate-issuer", aud="wsgate-backend"), hs).encode())
write(T, "hs256_aud_list", b"\x01" + token({"alg": "HS256"},
                                           dict(good, iss="wsgate-issuer", aud=["x", "wsgate-backend"]), hs).encode())
write(T, "rs256_ok", b"\x02" + token({"alg": "RS256", "typ": "JWT"}, good, rs).encode())
write(T, "expired", b"\x00" + token({"alg": "HS256"}, dict(good, exp=NOW - 3600), hs).encode())
write(T, "nbf_future", b"\x00" + token({"alg": "HS256"}, dict(good, nbf=NOW + 3600), hs).encode())
write(T, "alg_none", b"\x00" + (b64u(b'{"alg":"none"}') + "." + b64u(json.dumps(good).encode()) + ".").encode())
write(T, "rs_hs_confusion", b"\x02" + token({"alg": "HS256"}, good, hs).encode())
write(T, "kid_tricks", b"\x00" + token({"alg": "HS256", "kid": "../../dev/null", "jku": "http://x"}, good, hs).encode())
write(T, "crit", b"\x00" + token({"alg": "HS256", "crit": ["exp"]}, good, hs).encode())
write(T, "no_sub", b"\x00" + token({"alg": "HS256"}, {"exp": NOW + 60}, hs).encode())
write(T, "sub_number", b"\x00" + token({"alg": "HS256"}, dict(good, sub=12, thread_id=5), hs).encode())
write(T, "exp_string", b"\x00" + token({"alg": "HS256"}, dict(good, exp="never"), hs).encode())
write(T, "garbage", b"\x00not.a.token")
write(T, "four_segments", b"\x00a.b.c.d")

# --- fuzz_config: YAML files
T = "fuzz_config"
write(T, "proxy", "listen: 127.0.0.1:8443\nupstream: ws://127.0.0.1:9000\nthreads: 4\n"
      "log-level: info\nmax_message_bytes: 1048576\n")
write(T, "list", "fault: [context.drop=thread_id, handler.throw=chat@0.5]\n")
write(T, "block_list", "fault:\n  - factory.fail\n  - context.drop=run_id\n")
write(T, "bool", "trust-client-correlation-id: true\n")
write(T, "nested", "listen:\n  host: 127.0.0.1\n  port: 1\n")
write(T, "unknown_key", "no-such-flag: 1\n")
write(T, "not_a_map", "- a\n- b\n")
write(T, "anchors", "a: &x [1, 2]\nfault: *x\n")
write(T, "bad_number", "threads: -1e999\n")
write(T, "empty", "")
write(T, "tabs", "listen:\t127.0.0.1\n")
write(T, "doc_markers", "---\nlisten: a\n...\n---\nlisten: b\n")

# --- fuzz_incident_json: flags byte, then the trace body
T = "fuzz_incident_json"
trace = {"correlation_id": "c0ffee00c0ffee00", "user_id": "staging-e2e-user-001", "policy": "strict",
         "stages": [{"stage": "auth.verify_jwt", "outcome": "ok", "t_us": 10, "detail": "sub=staging-e2e-user-001"},
                    {"stage": "context.create", "outcome": "ok", "t_us": 20, "detail": ""},
                    {"stage": "context.validate", "outcome": "error", "t_us": 30,
                     "detail": "missing: thread_id, run_id (policy strict: no fallback)"},
                    {"stage": "factory.create_manager", "outcome": "error", "t_us": 40,
                     "detail": "Factory SSOT validation failed"}]}
write(T, "strict_trace", b"\x00" + json.dumps(trace).encode())
jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
t2 = json.loads(json.dumps(trace))
t2["stages"][0]["detail"] = "Authorization: Bearer " + jwt
t2["stages"][1]["detail"] = "token=" + jwt + " subprotocol jwt." + jwt
write(T, "secrets_in_trace", b"\x01" + json.dumps(t2).encode())
write(T, "../../crashes/fuzz_incident_json/jwt_shaped_trace_key", b"\x00" + json.dumps({"stages": [], jwt: "x"}).encode())
write(T, "message_with_jwt", b"\x01" + ('{"type":"error","code":"FACTORY_INIT_FAILED","auth":"Bearer ' + jwt + '"}').encode())
write(T, "not_json", b"\x04<html>502 Bad Gateway " + jwt.encode())
write(T, "deflated", b"\x03" + bytes.fromhex("f248cdc9c957c840060000"))
write(T, "stages_wrong_types", b"\x00" + json.dumps({"stages": [1, "x", None, {"stage": 5, "outcome": []}],
                                                     "policy": {"a": 1}}).encode())
write(T, "deep", b"\x00" + b'{"stages":' + b"[" * 200 + b"]" * 200 + b"}")
write(T, "unicode", b"\x01" + json.dumps({"stages": [{"stage": "x\u2028y", "outcome": "error",
                                                       "detail": "missing: \ud83d\ude00"}]}).encode())
write(T, "invalid_utf8", b"\x01" + b'{"stages":[{"stage":"\xff\xfe","outcome":"error","detail":"\xc3"}]}')
print("ok")
