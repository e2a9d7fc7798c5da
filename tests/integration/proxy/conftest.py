import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from proxy_fixtures import WSGATE, dev_cert, proxy_factory_at, upstream  # noqa: E402,F401


@pytest.fixture
def proxy_factory():
    # One I/O thread (sessions without strands, reactor without locks); the
    # hardening and incident suites run two.
    yield from proxy_factory_at("info", threads=1)
