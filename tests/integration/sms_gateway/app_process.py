"""The gateway as a process of its own, for tests that kill it and start it again: the node that
`ivrgate serve --no-worker` builds (api.runtime.node.Node, settings from IVRGATE_... variables) without its
SMTP
gateway, with the SMS node and the outbox sender running.

    python -m tests.integration.sms_gateway.app_process
"""

from __future__ import annotations

import logging
import socket

from api.core.settings import Settings, runs_sms_node
from api.runtime.node import Node, NodeOptions


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    node = Node(settings, NodeOptions(http=True, callbacks=True, sms=runs_sms_node(settings)))
    with socket.create_server(("127.0.0.1", settings.server.port)) as sock:
        node.run(sockets=[sock])


if __name__ == "__main__":
    main()
