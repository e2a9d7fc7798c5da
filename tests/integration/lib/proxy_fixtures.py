"""pytest fixtures shared by the suites that run the real wsgate against
tests/integration/lib/upstream.py (tests/integration/proxy, tests/hardening).
A conftest imports the fixtures it wants and defines proxy_factory with its
log level: `yield from proxy_factory_at("info")`. Suites run the shipped
default worker count (one per CPU, --threads auto); threads=N pins it (the
relay suite also runs with one worker: test_relay_one_worker.py)."""
import os
import subprocess

import pytest

from wsgate_harness import Proc, Upstream

WSGATE = os.environ.get("WSGATE_BIN", "build-test/bin/wsgate")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def start_proxy(upstream_url, *extra, log_level="info", threads=None, env=None):
    workers = [] if threads is None else ["--threads", str(threads)]
    return Proc([WSGATE, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--upstream", upstream_url,
                 *workers, "--log-level", log_level, *extra], env=env)


def proxy_factory_at(log_level, threads=None):
    """Generator body of a proxy_factory fixture: make(upstream_url, *extra,
    env=None) starts a wsgate; every one started is stopped afterwards."""
    procs = []

    def make(upstream_url, *extra, env=None):
        p = start_proxy(upstream_url, *extra, log_level=log_level, threads=threads, env=env)
        procs.append(p)
        return p
    yield make
    for p in procs:
        p.stop()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.stop()


@pytest.fixture(scope="session")
def dev_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    subprocess.run([os.path.join(REPO, "deploy", "dev-cert.sh"), str(d)], check=True, stdout=subprocess.DEVNULL)
    return {"cert": str(d / "server.crt"), "key": str(d / "server.key"), "ca": str(d / "ca.crt")}
