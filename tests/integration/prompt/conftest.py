from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.fetch.server import Server, serve


@pytest.fixture
def server() -> Iterator[Server]:
    with serve() as state:
        yield state
