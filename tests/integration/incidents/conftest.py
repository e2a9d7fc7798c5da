"""Fixtures of the incident tests, from incident_harness (which also holds
the helpers the tests import)."""
from incident_harness import procs, traces  # noqa: F401
