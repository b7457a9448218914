"""The gateway of conftest's `gw` with SMPP and SMS-service settings of a test's choosing (`make_gw`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.core.settings import Settings, SmsSettings
from api.core.signing import CallbackSettings
from tests.integration.nodes import node_client
from tests.integration.sms.conftest import settings_for
from tests.integration.sms.peer import Smsc
from tests.integration.sms_gateway.conftest import SMS_NODE, Gw, Receiver, seed

MakeGw = Callable[..., Gw]


@pytest.fixture
def make_gw(tmp_path: Path, smsc: Smsc, receiver: Receiver) -> Iterator[MakeGw]:
    """The gateway of conftest's `gw`, with SMPP and SMS-service settings of the test's choosing."""
    running = contextlib.ExitStack()

    def make(smpp: dict[str, Any] | None = None, service: dict[str, Any] | None = None) -> Gw:
        seed(tmp_path, receiver.url)
        settings = Settings(
            data_dir=tmp_path, sms=settings_for(smsc, **(smpp or {})),
            sms_service=SmsSettings(poll_interval_s=0.1, orgserver="gw.test", **(service or {})),
            callbacks=CallbackSettings(allow_private=True, secret="s" * 40))
        client, node = running.enter_context(
            node_client(settings, SMS_NODE, raise_server_exceptions=False))
        smsc.wait_receiver()
        return Gw(client, node.gateway, smsc, receiver, settings)

    with running:
        yield make
