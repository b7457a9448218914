"""A node (api.runtime.node.Node) whose app a TestClient serves in-process: its peers (SMS node, callback
sender,
voice worker...) run on the client's event loop beside the app, as `ivrgate serve` runs them beside
uvicorn.

    with node_client(settings, NodeOptions(http=True, sms=True)) as (client, node):
        client.get("/healthz")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from api.core.settings import Settings
from api.runtime.node import Node, NodeOptions


@contextmanager
def node_client(settings: Settings, options: NodeOptions, **client: Any) -> Iterator[tuple[TestClient, Node]]:
    """A Node with `options` (its `http` built, served by the TestClient), its peers running, and the
    client; on exit the peers stop in the node's order, then the client, then the node's database."""
    node = Node(settings, options)
    try:
        assert node.app is not None, "a TestClient needs the node's app: NodeOptions(http=True, ...)"
        with TestClient(node.app, **client) as test_client, \
                test_client.portal.wrap_async_context_manager(node.running()):
            yield test_client, node
    finally:
        node.close()
