#!/usr/bin/python3
"""Black-box tests of wsgate-backend with Debian's python3-websockets (10.x API).

Run: /usr/bin/python3 test_backend.py PATH/TO/wsgate-backend [unittest args]
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import jwt  # python3-jwt (PyJWT), only to forge bad tokens
import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backend_harness  # noqa: E402
from backend_harness import SECRET, Backend  # noqa: E402

TIMEOUT = 15


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def connect(backend, token=None, cid=None, query="", headers=None, subprotocols=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if cid:
        h["X-Correlation-ID"] = cid
    return await websockets.connect(backend.url(query), extra_headers=h,
                                    subprotocols=subprotocols, open_timeout=TIMEOUT,
                                    close_timeout=TIMEOUT, max_size=None)


async def expect_close(ws):
    """Waits for the server's close; returns (code, reason)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else 1006, e.rcvd.reason if e.rcvd else ""


class BackendTest(unittest.TestCase):
    ARGS = ()

    def setUp(self):
        self.backend = Backend(*self.ARGS)

    def tearDown(self):
        code = self.backend.stop()
        self.assertEqual(code, 0, "backend exit status (sanitizers report here)")


class AuthTests(BackendTest):
    def assert_401(self, headers, reason, token=None):
        status, hdrs, body = self.backend.raw_upgrade(headers=headers)
        self.assertEqual(status, 401)
        self.assertEqual(hdrs["Content-Type"], "application/json")
        doc = json.loads(body)
        self.assertEqual(doc["error"], "unauthorized")
        self.assertEqual(doc["reason"], reason)
        if token:
            self.assertNotIn(token, body)
            self.assertNotIn(token.split(".")[1], body)
        return doc

    def test_missing_token(self):
        self.assert_401({}, "missing_token")
        self.assertEqual(self.backend.metric("wsgate_backend_auth_failures_total",
                                             reason="missing_token"), 1)

    def test_bad_signature(self):
        forged = jwt.encode({"sub": "u", "exp": int(time.time()) + 60},
                            "a-different-secret-0123456789abcdef", algorithm="HS256")
        self.assert_401({"Authorization": "Bearer " + forged}, "bad_signature", forged)

    def test_expired(self):
        token = self.backend.token("u", ttl=-3600)
        doc = self.assert_401({"Authorization": "Bearer " + token,
                               "X-Correlation-ID": "auth-expired-0001"}, "expired", token)
        self.assertEqual(doc["correlation_id"], "auth-expired-0001")
        self.assertEqual(self.backend.metric("wsgate_backend_auth_failures_total",
                                             reason="expired"), 1)
        status, trace = self.backend.trace("auth-expired-0001")
        self.assertEqual(status, 200)
        self.assertEqual(trace["stages"][0]["stage"], "auth.verify_jwt")
        self.assertEqual(trace["stages"][0]["outcome"], "error")
        self.assertTrue(trace["stages"][0]["detail"].startswith("expired"))
        self.assertNotIn(token, json.dumps(trace))
        self.assertNotIn(token.split(".")[2], self.backend.read_log())  # no token in any log line

    def test_alg_none(self):
        token = jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, None, algorithm="none")
        self.assert_401({"Authorization": "Bearer " + token}, "bad_alg", token)

    def test_malformed(self):
        self.assert_401({"Authorization": "Bearer not-a-jwt"}, "malformed")
        self.assert_401({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed")

    def test_bad_token_in_subprotocol_is_401_too(self):
        async def go():
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                await websockets.connect(self.backend.url(), subprotocols=["jwt-auth", "jwt.x.y.z"],
                                         open_timeout=TIMEOUT)
            self.assertEqual(cm.exception.status_code, 401)
        run(go())

    def test_other_paths_404_and_plain_get_426(self):
        status, _, body = self.backend.raw_upgrade(path="/other")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body)["error"], "not_found")
        conn_status, _, body = self.backend.raw_upgrade(headers={"Upgrade": "", "Connection": "close"})
        self.assertEqual(conn_status, 426)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_by_hand(header, claims, key):
    """A token signed with any bytes as the HMAC key (PyJWT refuses PEM keys
    as HMAC secrets, which is exactly the RS/HS confusion to forge)."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


class JwtMatrixTests(BackendTest):
    """The rest of the RFC 8725 matrix, refused with 401 over HTTP (the unit
    tests in tests/unit/backend/jwt_verifier_test.cpp cover each rule; this
    shows the running server answers 401 with the right reason)."""
    ARGS = ("--jwt-issuer", "wsgate-staging", "--jwt-audience", "chat")

    def claims(self, **over):
        c = {"sub": "u", "iss": "wsgate-staging", "aud": "chat", "exp": int(time.time()) + 600}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def assert_401(self, token, reason):
        status, _, body = self.backend.raw_upgrade(headers={"Authorization": "Bearer " + token})
        self.assertEqual(status, 401, body)
        self.assertEqual(json.loads(body)["reason"], reason)
        self.assertNotIn(token, body)

    def test_good_token_is_accepted(self):
        # The baseline: the refusals below are about the one thing each changes.
        status, _, _ = self.backend.raw_upgrade(
            headers={"Authorization": "Bearer " + jwt.encode(self.claims(), SECRET, algorithm="HS256")})
        self.assertEqual(status, 101)

    def test_not_yet_valid(self):
        self.assert_401(jwt.encode(self.claims(nbf=int(time.time()) + 3600), SECRET, algorithm="HS256"),
                        "not_yet_valid")

    def test_issuer_mismatch(self):
        self.assert_401(jwt.encode(self.claims(iss="someone-else"), SECRET, algorithm="HS256"), "bad_issuer")

    def test_audience_mismatch(self):
        self.assert_401(jwt.encode(self.claims(aud="billing"), SECRET, algorithm="HS256"), "bad_audience")

    def test_missing_exp(self):
        self.assert_401(jwt.encode(self.claims(exp=None), SECRET, algorithm="HS256"), "missing_exp")

    def test_kid_cannot_choose_the_key(self):
        # kid pointing at an empty file, token signed with the empty key: the
        # configured secret still decides.
        header = {"alg": "HS256", "typ": "JWT", "kid": "../../../../../../dev/null"}
        self.assert_401(hs256_by_hand(header, self.claims(), b""), "bad_signature")
        self.assert_401(hs256_by_hand({"alg": "HS256", "kid": {"inject": 1}}, self.claims(), SECRET.encode()),
                        "bad_header")


class RsHsConfusionTests(BackendTest):
    """RS256 backend; an HS256 token whose HMAC key is the server's own
    public key (RFC 8725 2.1) is refused for its alg before any check."""

    def setUp(self):
        self.keydir = tempfile.TemporaryDirectory(prefix="wsgate-rs256-")
        self.private = os.path.join(self.keydir.name, "key.pem")
        self.public = os.path.join(self.keydir.name, "pub.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", self.private], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", self.private, "-pubout", "-out", self.public],
                       check=True, capture_output=True)
        self.ARGS = ("--jwt-public-key", self.public)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        self.keydir.cleanup()

    def test_hs256_signed_with_the_public_key_is_refused(self):
        with open(self.public, "rb") as f:
            pem = f.read()
        claims = {"sub": "u", "exp": int(time.time()) + 600}
        forged = hs256_by_hand({"alg": "HS256", "typ": "JWT"}, claims, pem)
        status, _, body = self.backend.raw_upgrade(headers={"Authorization": "Bearer " + forged})
        self.assertEqual((status, json.loads(body)["reason"]), (401, "bad_alg"))
        with open(self.private, "rb") as f:
            good = jwt.encode(claims, f.read(), algorithm="RS256")
        status, _, _ = self.backend.raw_upgrade(headers={"Authorization": "Bearer " + good})
        self.assertEqual(status, 101)


class SubprotocolTests(BackendTest):
    def test_subprotocol_auth_selects_jwt_auth_and_never_echoes_token(self):
        token = self.backend.token("sp-user", thread_id="t1")

        async def go():
            ws = await websockets.connect(self.backend.url(), subprotocols=["jwt-auth", "jwt." + token],
                                          extra_headers={"X-Correlation-ID": "subproto-0001"},
                                          open_timeout=TIMEOUT)
            self.assertEqual(ws.subprotocol, "jwt-auth")
            self.assertEqual(ws.response_headers["Sec-WebSocket-Protocol"], "jwt-auth")
            self.assertEqual(ws.response_headers["X-Correlation-ID"], "subproto-0001")
            self.assertNotIn(token, str(ws.response_headers))
            hello = await recv_json(ws)
            self.assertEqual(hello["type"], "connection_established")
            self.assertEqual(hello["user_id"], "sp-user")
            await ws.close()
        run(go())


class FallbackTests(BackendTest):
    ARGS = ("--context-policy", "fallback")

    def test_incomplete_context_is_served_marked_and_counted(self):
        token = self.backend.token("staging-e2e-user-001")  # no thread_id anywhere

        async def go():
            ws = await connect(self.backend, token, cid="fallback-0001")
            hello = await recv_json(ws)
            self.assertEqual(hello["type"], "connection_established")
            self.assertEqual(hello["policy"], "fallback")
            self.assertEqual(hello["fallback_attributes"], ["thread_id"])
            self.assertTrue(hello["thread_id"].startswith("thread_"))
            await ws.send(json.dumps({"type": "ping"}))
            self.assertEqual((await recv_json(ws))["type"], "pong")
            await ws.close()
        run(go())
        self.assertEqual(self.backend.metric("wsgate_backend_context_fallbacks_total",
                                             attribute="thread_id"), 1)
        self.assertEqual(self.backend.metric("wsgate_backend_context_fallbacks_total",
                                             attribute="run_id"), 0)
        status, trace = self.backend.trace("fallback-0001")
        self.assertEqual(status, 200)
        stages = {s["stage"]: s for s in trace["stages"]}
        self.assertEqual(stages["context.validate"]["outcome"], "fallback")
        self.assertEqual(stages["context.validate"]["detail"], "missing: thread_id; filled: thread_id")
        self.assertEqual(trace["fallback_attributes"], ["thread_id"])
        self.assertEqual(trace["missing_attributes"], ["thread_id"])
        self.assertNotIn("error", [s["outcome"] for s in trace["stages"]])

    def test_thread_id_from_header_and_query(self):
        token = self.backend.token("u")

        async def go():
            ws = await connect(self.backend, token, headers={"X-Thread-ID": "from-header"})
            self.assertEqual((await recv_json(ws))["thread_id"], "from-header")
            await ws.close()
            ws = await connect(self.backend, token, query="thread_id=from%2Dquery")
            hello = await recv_json(ws)
            self.assertEqual(hello["thread_id"], "from-query")
            self.assertEqual(hello["fallback_attributes"], [])
            await ws.close()
        run(go())


class StrictTests(BackendTest):
    ARGS = ("--context-policy", "strict")

    def test_strict_reproduces_the_staging_failure(self):
        token = self.backend.token("staging-e2e-user-001")

        async def go():
            ws = await connect(self.backend, token, cid="strict-repro-0001")
            err = await recv_json(ws)
            self.assertEqual(err["type"], "error")
            self.assertEqual(err["error"]["code"], "FACTORY_INIT_FAILED")
            self.assertEqual(err["error"]["correlation_id"], "strict-repro-0001")
            self.assertEqual(await expect_close(ws), (1011, "Factory SSOT validation failed"))
        run(go())
        status, trace = self.backend.trace("strict-repro-0001")
        self.assertEqual(status, 200)
        self.assertEqual(trace["policy"], "strict")
        self.assertEqual(trace["user_id"], "staging-e2e-user-001")
        self.assertEqual(trace["missing_attributes"], ["thread_id"])
        first_error = next(s for s in trace["stages"] if s["outcome"] == "error")
        self.assertEqual(first_error["stage"], "context.validate")
        self.assertIn("missing: thread_id", first_error["detail"])
        self.assertEqual(trace["stages"][-1]["stage"], "session.close")
        self.assertIn("code=1011", trace["stages"][-1]["detail"])
        self.assertEqual(self.backend.metric("wsgate_backend_stage_failures_total",
                                             stage="context.validate"), 1)
        self.assertEqual(self.backend.metric("wsgate_backend_closes_total", code="1011"), 1)
        self.assertEqual(self.backend.metric("wsgate_backend_context_fallbacks_total",
                                             attribute="thread_id"), 0)

    def test_strict_with_complete_context_is_served(self):
        token = self.backend.token("u", thread_id="t-1")

        async def go():
            ws = await connect(self.backend, token)
            hello = await recv_json(ws)
            self.assertEqual(hello["type"], "connection_established")
            self.assertEqual(hello["fallback_attributes"], [])
            await ws.close()
        run(go())


    def test_traceparent_is_kept_in_the_trace_when_well_formed(self):
        token = self.backend.token("u", thread_id="t-1")
        good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        cases = [("tp-good-0001", good, good),
                 ("tp-bad-00001", "00-zz-not-a-trace-01", None),
                 ("tp-none-0001", None, None)]

        async def go():
            for cid, sent, _ in cases:
                ws = await connect(self.backend, token, cid=cid,
                                   headers={"traceparent": sent} if sent else None)
                await recv_json(ws)
                await ws.close()
        run(go())
        for cid, _, expected in cases:
            status, trace = self.backend.trace(cid)
            self.assertEqual(status, 200)
            self.assertEqual(trace["traceparent"], expected, cid)


class MessageTests(BackendTest):
    ARGS = ("--max-message-bytes", "1024")

    def test_agent_stream_ping_unknown_and_malformed(self):
        token = self.backend.token("u", thread_id="t")

        async def go():
            ws = await connect(self.backend, token, cid="messages-0001")
            hello = await recv_json(ws)
            await ws.send("{not json")
            err = await recv_json(ws)
            self.assertEqual(err["error"]["code"], "INVALID_MESSAGE")
            await ws.send(json.dumps({"type": "frobnicate"}))
            err = await recv_json(ws)
            self.assertEqual(err["error"]["code"], "UNKNOWN_TYPE")
            await ws.send(json.dumps({"type": "ping", "id": "p1"}))
            pong = await recv_json(ws)
            self.assertEqual((pong["type"], pong["id"]), ("pong", "p1"))
            await ws.send(json.dumps({"type": "user_message", "content": "hello"}))
            events = [await recv_json(ws) for _ in range(5)]
            self.assertEqual([e["type"] for e in events],
                             ["agent_started", "agent_thinking", "tool_executing",
                              "tool_completed", "agent_completed"])
            for e in events:
                self.assertEqual(e["run_id"], hello["run_id"])
                self.assertEqual(e["thread_id"], "t")
                self.assertEqual(e["correlation_id"], "messages-0001")
                self.assertIn("timestamp", e)
            self.assertEqual(events[-1]["response"], "Echo: hello")
            await ws.close()
        run(go())
        self.assertEqual(self.backend.metric("wsgate_backend_messages_total", type="invalid"), 1)
        self.assertEqual(self.backend.metric("wsgate_backend_messages_total", type="unknown"), 1)
        self.assertEqual(self.backend.metric("wsgate_backend_messages_total", type="ping"), 1)
        self.assertEqual(self.backend.metric("wsgate_backend_messages_total", type="user_message"), 1)
        self.assertEqual(self.backend.metric("wsgate_backend_closes_total", code="1000"), 1)

    def test_oversize_message_closes_1009(self):
        token = self.backend.token("u", thread_id="t")

        async def go():
            ws = await connect(self.backend, token)
            await recv_json(ws)
            await ws.send(json.dumps({"type": "user_message", "content": "x" * 2048}))
            code, _ = await expect_close(ws)
            self.assertEqual(code, 1009)
        run(go())
        self.assertEqual(self.backend.metric_when(1, "wsgate_backend_closes_total", code="1009"), 1)


class IsolationTests(BackendTest):
    def test_run_events_reach_only_that_users_connections_on_that_thread(self):
        async def go():
            alice_t1 = await connect(self.backend, self.backend.token("alice", thread_id="t1"))
            alice_t1b = await connect(self.backend, self.backend.token("alice", thread_id="t1"))
            alice_t2 = await connect(self.backend, self.backend.token("alice", thread_id="t2"))
            bob_t1 = await connect(self.backend, self.backend.token("bob", thread_id="t1"))
            for ws in (alice_t1, alice_t1b, alice_t2, bob_t1):
                self.assertEqual((await recv_json(ws))["type"], "connection_established")
            await alice_t1.send(json.dumps({"type": "user_message", "content": "secret plan"}))
            for ws in (alice_t1, alice_t1b):
                types = [(await recv_json(ws))["type"] for _ in range(5)]
                self.assertEqual(types[-1], "agent_completed")
            # Whatever leaked would be queued before the pong.
            for ws in (alice_t1b, alice_t2, bob_t1):
                await ws.send(json.dumps({"type": "ping"}))
                self.assertEqual((await recv_json(ws))["type"], "pong")
            for ws in (alice_t1, alice_t1b, alice_t2, bob_t1):
                await ws.close()
        run(go())


class CapTests(BackendTest):
    ARGS = ("--max-connections-per-user", "2")

    def test_third_connection_of_a_user_is_closed_1013(self):
        token = self.backend.token("capped", thread_id="t")

        async def go():
            a = await connect(self.backend, token)
            b = await connect(self.backend, token)
            await recv_json(a)
            await recv_json(b)
            c = await connect(self.backend, token)
            err = await recv_json(c)
            self.assertEqual(err["error"]["code"], "TOO_MANY_CONNECTIONS")
            self.assertEqual((await expect_close(c))[0], 1013)
            other = await connect(self.backend, self.backend.token("other", thread_id="t"))
            self.assertEqual((await recv_json(other))["type"], "connection_established")
            await a.close()
            d = await connect(self.backend, token)  # a slot was freed
            self.assertEqual((await recv_json(d))["type"], "connection_established")
            for ws in (b, d, other):
                await ws.close()
        run(go())
        self.assertEqual(self.backend.metric("wsgate_backend_closes_total", code="1013"), 1)


class FaultTests(unittest.TestCase):
    def test_handler_throw_is_internal_error_1011_with_traced_stage(self):
        backend = Backend("--fault", "handler.throw=user_message")
        try:
            async def go():
                ws = await connect(backend, backend.token("u", thread_id="t"), cid="throw-0001")
                await recv_json(ws)
                await ws.send(json.dumps({"type": "ping"}))  # other types are unaffected
                self.assertEqual((await recv_json(ws))["type"], "pong")
                await ws.send(json.dumps({"type": "user_message", "content": "boom"}))
                err = await recv_json(ws)
                self.assertEqual(err["error"]["code"], "INTERNAL_ERROR")
                self.assertEqual(err["error"]["correlation_id"], "throw-0001")
                self.assertEqual(await expect_close(ws), (1011, "Internal error"))
            run(go())
            _, trace = backend.trace("throw-0001")
            first_error = next(s for s in trace["stages"] if s["outcome"] == "error")
            self.assertEqual(first_error["stage"], "message.handle")
            self.assertEqual(first_error["detail"],
                             "exception: injected fault handler.throw=user_message")
            self.assertEqual(backend.metric("wsgate_backend_stage_failures_total",
                                            stage="message.handle"), 1)
        finally:
            self.assertEqual(backend.stop(), 0)

    def test_factory_fail_and_dropped_identity(self):
        backend = Backend("--fault", "factory.fail")
        try:
            async def go():
                ws = await connect(backend, backend.token("u", thread_id="t"), cid="factory-0001")
                self.assertEqual((await recv_json(ws))["error"]["code"], "FACTORY_INIT_FAILED")
                self.assertEqual(await expect_close(ws), (1011, "Factory initialization failed"))
            run(go())
            _, trace = backend.trace("factory-0001")
            first_error = next(s for s in trace["stages"] if s["outcome"] == "error")
            self.assertEqual(first_error["stage"], "factory.create_manager")
        finally:
            self.assertEqual(backend.stop(), 0)
        backend = Backend("--fault", "context.drop=user_id")
        try:
            async def go2():
                ws = await connect(backend, backend.token("u", thread_id="t"), cid="identity-0001")
                self.assertEqual((await expect_close(ws))[0], 1008)
            run(go2())
            _, trace = backend.trace("identity-0001")
            self.assertEqual(trace["missing_attributes"], ["user_id"])
            self.assertEqual(trace["fallback_attributes"], [])
        finally:
            self.assertEqual(backend.stop(), 0)


class ShutdownTests(unittest.TestCase):
    def test_sigterm_closes_sessions_with_1001_and_exits(self):
        backend = Backend()

        async def go():
            ws = await connect(backend, backend.token("u", thread_id="t"))
            await recv_json(ws)
            started = time.monotonic()
            backend.proc.send_signal(signal.SIGTERM)
            self.assertEqual((await expect_close(ws))[0], 1001)
            return started
        started = run(go())
        backend.proc.wait(timeout=10)
        self.assertLess(time.monotonic() - started, 6)
        self.assertEqual(backend.stop(), 0)


class CommandLineTests(unittest.TestCase):
    def run_backend(self, *args, env=None):
        return subprocess.run([backend_harness.BINARY, *args], capture_output=True, text=True,
                              timeout=30, env=env)

    def test_config_errors_name_the_key(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "c.yaml")
            with open(cfg, "w") as f:
                f.write("listen: 127.0.0.1:0\ncontext-polcy: strict\n")
            r = self.run_backend("--config", cfg)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("context-polcy", r.stderr)
            with open(cfg, "w") as f:
                f.write("context-policy: lenient\n")
            r = self.run_backend("--config", cfg)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("context-policy", r.stderr)
            with open(cfg, "w") as f:
                f.write("fault: [factory.fial]\n")
            r = self.run_backend("--config", cfg)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("fault", r.stderr)
            env = {k: v for k, v in os.environ.items() if k != "WSGATE_JWT_SECRET"}
            r = self.run_backend("--listen", "127.0.0.1:0", env=env)
            self.assertEqual(r.returncode, 2)
            self.assertIn("jwt-secret-file", r.stderr)

    def test_token_subcommand_mints_a_verifiable_hs256_token(self):
        env = dict(os.environ, WSGATE_JWT_SECRET=SECRET)
        r = self.run_backend("token", "--sub", "staging-e2e-user-001", "--thread-id", "th-1",
                             "--ttl", "120", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.assertEqual(jwt.get_unverified_header(token)["alg"], "HS256")
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        self.assertEqual(claims["sub"], "staging-e2e-user-001")
        self.assertEqual(claims["thread_id"], "th-1")
        self.assertAlmostEqual(claims["exp"] - time.time(), 120, delta=10)

    def test_help_lists_the_contract_flags(self):
        r = self.run_backend("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--config", "--listen", "--admin", "--jwt-secret-file", "--jwt-public-key",
                     "--jwt-issuer", "--jwt-audience", "--context-policy", "--fault",
                     "--max-connections-per-user", "--max-message-bytes", "--port-file", "token"):
            self.assertIn(flag, r.stdout)


if __name__ == "__main__":
    backend_harness.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
