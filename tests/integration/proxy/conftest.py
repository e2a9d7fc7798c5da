import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from proxy_fixtures import WSGATE, dev_cert, proxy_factory_at, upstream  # noqa: E402,F401


@pytest.fixture
def proxy_factory():
    # The shipped default: one worker per CPU (--threads auto).
    yield from proxy_factory_at("info")
