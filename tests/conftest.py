"""Suite-wide fixtures."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# CI shares its machine: a property test must not fail because the CPU was busy. Time limits belong to
# tests/bench, so no example has a deadline and Hypothesis's "too slow" health check is off (its other
# checks, which find broken strategies, stay on).
settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Put the root logger's handlers and level back after each test. `ivrgate`'s `main()` run in
    process calls `logging.basicConfig`, whose handler writes to the stderr pytest captured for that
    test; left in place, every later record fails with 'I/O operation on closed file'."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
