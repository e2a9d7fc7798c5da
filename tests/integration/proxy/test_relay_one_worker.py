"""The relay suite again with one worker (--threads 1): the default runs one
per CPU, and a single-CPU pod runs this."""
import pytest

from proxy_fixtures import proxy_factory_at
from wsgate_harness import metric
from test_relay import *  # noqa: F401,F403  (the same tests, this module's fixture)


@pytest.fixture
def proxy_factory():
    yield from proxy_factory_at("info", threads=1)


def test_one_worker_is_what_runs(upstream, proxy_factory):
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    assert metric(proxy.ports["admin"], "wsgate_workers") == 1
    assert "1 worker (--threads" in proxy.logs()
