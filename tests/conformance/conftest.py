"""Fixtures: the three reference echo servers, and a wsgate in front of each.

Binaries: WSGATE_BIN (default build-test/bin/wsgate), WSGATE_BENCH_BIN
(default build-test/bin/wsgate-bench, then build-bench/bin/wsgate-bench).
node `ws` comes from tests/conformance/node_modules, installed with
`npm ci --prefix tests/conformance --no-audit --no-fund`; without it the
node cases fail (they are not skipped).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lib"))

from wsgate_harness import Proc, metric, wait_for  # noqa: E402
import cases  # noqa: E402

SERVERS = ["beast", "python", "node"]
PYTHON = "/usr/bin/python3"


def _binary(env, candidates):
    if os.environ.get(env):
        return os.environ[env]
    for c in candidates:
        p = os.path.join(ROOT, c)
        if os.path.exists(p):
            return p
    pytest.fail(f"{env} not set and none of {candidates} exists: build the targets first")


class LineServer:
    """A child that prints {"port": P} on its first stdout line."""

    def __init__(self, argv, name):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=HERE)
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().decode(errors="replace")
            self.stop()
            pytest.fail(f"{name} echo server did not start: {err}")
        self.port = json.loads(line)["port"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class BeastServer:
    def __init__(self):
        self.p = Proc([_binary("WSGATE_BENCH_BIN", ["build-test/bin/wsgate-bench", "build-bench/bin/wsgate-bench",
                                                    "build/bin/wsgate-bench"]), "echo", "--listen", "127.0.0.1:0"])
        self.port = int(self.p.ports)

    def stop(self):
        self.p.stop()


def start_server(name):
    if name == "beast":
        return BeastServer()
    if name == "python":
        return LineServer([PYTHON, os.path.join(HERE, "py_echo.py")], name)
    if name == "node":
        if not os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
            pytest.fail("node `ws` is not installed: run "
                        "`npm ci --prefix tests/conformance --no-audit --no-fund` first")
        node = shutil.which("node")
        if not node:
            pytest.fail("node is not on PATH")
        return LineServer([node, os.path.join(HERE, "node_echo.js")], name)
    raise ValueError(name)


class Target:
    def __init__(self, name):
        self.name = name
        self.server = start_server(name)
        try:
            self.gate = Proc([_binary("WSGATE_BIN", ["build-test/bin/wsgate", "build/bin/wsgate"]),
                              "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                              "--upstream", f"ws://127.0.0.1:{self.server.port}",
                              "--tap-mode", "enforce",
                              "--max-message-bytes", str(cases.MAX_MESSAGE),
                              "--log-level", "warn"])
        except BaseException:
            self.server.stop()
            raise
        self.direct = self.server.port
        self.through = self.gate.ports["listen"]
        self.admin = self.gate.ports["admin"]

    def proxy_closes(self, code):
        return metric(self.admin, "wsgate_closes_total", code=str(code), initiator="proxy")

    def stop(self):
        self.gate.stop()
        self.server.stop()


_targets = {}


@pytest.fixture(scope="session")
def targets():
    yield _targets
    for t in _targets.values():
        t.stop()
    _targets.clear()


@pytest.fixture
def target(request, targets):
    name = request.param
    if name not in targets:
        targets[name] = Target(name)
    t = targets[name]
    if t.gate.proc.poll() is not None:
        pytest.fail(f"wsgate in front of {name} exited with {t.gate.proc.returncode}: {t.gate.logs()[-4000:]}")
    return t


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames and "case" in metafunc.fixturenames:
        only = os.environ.get("WSGATE_CONFORMANCE_SERVERS")
        servers = [s for s in SERVERS if not only or s in only.split(",")]
        params = [(c, s) for s in servers for c in cases.CASES]
        metafunc.parametrize(("case", "target"), params, indirect=["target"],
                             ids=[f"{c.id}-{s}" for c, s in params])


RESULTS = os.environ.get("WSGATE_CONFORMANCE_RESULTS")


@pytest.fixture
def record():
    """Appends one JSON line per test to $WSGATE_CONFORMANCE_RESULTS."""
    def write(entry):
        if RESULTS:
            with open(RESULTS, "a") as f:
                f.write(json.dumps(entry) + "\n")
    return write
