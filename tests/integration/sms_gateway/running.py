"""The app in-process with chosen SMPP settings (the other SMS gateway tests use conftest's defaults)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api.core.settings import Settings, SmsSettings
from api.core.signing import CallbackSettings
from api.runtime.node import NodeOptions
from tests.integration.nodes import node_client
from tests.integration.sms.conftest import settings_for
from tests.integration.sms.peer import Smsc
from tests.integration.sms_gateway.conftest import Gw, Receiver, seed


@contextmanager
def running_gateway(data_dir: Path, peer: Smsc, receiver: Receiver, **smpp: Any) -> Iterator[Gw]:
    """A seeded store, the app with its SMS node bound to `peer` (`smpp` overrides its settings) and its
    outbox sender POSTing webhooks to `receiver`."""
    seed(data_dir, receiver.url)
    settings = Settings(
        data_dir=data_dir, sms=settings_for(peer, **smpp),
        sms_service=SmsSettings(poll_interval_s=0.1, orgserver="gw.test", stop_reply="Unsubscribed."),
        callbacks=CallbackSettings(allow_private=True, secret="s" * 40, poll_interval_s=0.1),
    )
    options = NodeOptions(http=True, sms=True, callbacks=True)
    with node_client(settings, options, raise_server_exceptions=False) as (client, node):
        peer.wait_receiver()
        yield Gw(client, node.gateway, peer, receiver, settings)
