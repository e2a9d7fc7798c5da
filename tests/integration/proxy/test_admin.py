"""Admin endpoints, --help, YAML config and JSON logs, seen from outside."""
import json
import os
import subprocess

from conftest import WSGATE
from wsgate_harness import Proc, http_get, raw_connect, wait_for


def test_help_lists_the_contract_flags():
    out = subprocess.run([WSGATE, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for flag in ("--config", "--listen", "--tls-cert", "--tls-key", "--upstream",
                 "--upstream-ca", "--upstream-trace-url", "--admin", "--incident-log",
                 "--log-format", "--log-level", "--threads", "--tap-mode"):
        assert flag in out.stdout, flag


def test_connections_lists_live_sessions(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    admin = proxy.ports["admin"]
    sock, status, _, _ = raw_connect(proxy.ports["listen"], "/echo",
                                     extra={"X-Correlation-ID": "listed-session-1"})
    assert status == 101
    status, body, headers = http_get(admin, "/connections")
    assert status == 200 and headers["Content-Type"] == "application/json"
    # The tunnel registers right after the 101 is written: allow it a moment.
    page = wait_for(lambda: json.loads(http_get(admin, "/connections")[1]), what="listed session")
    assert [c["correlation_id"] for c in page] == ["listed-session-1"]
    assert page[0]["upstream"] == f"ws://127.0.0.1:{upstream.ws}/"
    assert page[0]["target"] == "/echo"
    assert http_get(admin, "/connections")[2]["X-Total-Count"] == "1"
    sock.close()
    wait_for(lambda: json.loads(http_get(admin, "/connections")[1]) == [], what="session gone")
    assert http_get(admin, "/connections")[2]["X-Total-Count"] == "0"
    status, body, headers = http_get(admin, "/metrics")
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert http_get(admin, "/healthz")[0] == 200


def test_yaml_config_and_json_logs(upstream, tmp_path):
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text(f"listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nupstream: ws://127.0.0.1:{upstream.ws}\n"
                   "log_format: json\ntap-mode: observe\n")
    p = Proc([WSGATE, "--config", str(cfg)])
    try:
        sock, status, _, _ = raw_connect(p.ports["listen"], "/echo",
                                         extra={"X-Correlation-ID": "json-logged-01"})
        assert status == 101
        sock.close()

        def closed_line():
            for line in p.logs().splitlines():
                if line.startswith("{"):
                    rec = json.loads(line)
                    if rec.get("correlation_id") == "json-logged-01" and "session closed" in rec["msg"]:
                        return rec
        rec = wait_for(closed_line, what="JSON close line")
        assert rec["level"] in ("info", "warning")
        assert "tap observe" in p.logs()
    finally:
        p.stop()


def test_bad_config_key_and_value_are_refused_by_name(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("listen: 127.0.0.1:0\nupstreem: ws://x\n")
    out = subprocess.run([WSGATE, "--config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert out.returncode != 0
    assert "upstreem" in out.stderr
    cfg.write_text("upstream: http://not-ws\n")
    out = subprocess.run([WSGATE, "--config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert out.returncode != 0
    assert "upstream" in out.stderr and "ws://" in out.stderr
    out = subprocess.run([WSGATE, "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 2
    assert "no upstream" in out.stderr
