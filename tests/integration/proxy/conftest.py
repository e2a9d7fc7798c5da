import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from wsgate_harness import Proc, Upstream  # noqa: E402

WSGATE = os.environ.get("WSGATE_BIN", "build-test/bin/wsgate")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.stop()


def start_proxy(upstream_url, *extra):
    return Proc([WSGATE, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--upstream",
                 upstream_url, "--threads", "2", "--log-level", "info", *extra])


@pytest.fixture
def proxy_factory():
    procs = []

    def make(upstream_url, *extra):
        p = start_proxy(upstream_url, *extra)
        procs.append(p)
        return p
    yield make
    for p in procs:
        p.stop()


@pytest.fixture(scope="session")
def dev_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    subprocess.run([os.path.join(REPO, "deploy", "dev-cert.sh"), str(d)], check=True,
                   stdout=subprocess.DEVNULL)
    return {"cert": str(d / "server.crt"), "key": str(d / "server.key"), "ca": str(d / "ca.crt")}
