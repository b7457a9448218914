"""SMS integration fixtures: the node SMSC on free 127.0.0.1 ports and an ESME whose callbacks record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sms.smpp import Esme, Incoming, Receipt, SmppSettings
from tests.integration.sms.peer import Smsc


@pytest.fixture
def smsc(tmp_path: Path) -> Iterator[Smsc]:
    peer = Smsc(tmp_path / "accepted.jsonl")
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def settings_for(peer: Smsc, **overrides: object) -> SmppSettings:
    """Settings that reach `peer` and react fast enough for tests."""
    base: dict[str, object] = {"port": peer.port, "system_id": "test", "password": "test", "window": 16,
                               "rate_per_s": 0.0, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
                               "throttle_backoff_s": 0.05, "response_timeout_s": 10.0}
    base.update(overrides)
    return SmppSettings(**base)  # type: ignore[arg-type]


@dataclass
class Recorder:
    """The four callbacks of an Esme, keeping everything they were given."""

    accepted: dict[str, list[str]] = field(default_factory=dict)
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    incoming: list[Incoming] = field(default_factory=list)

    async def on_accepted(self, key: str, smsc_id: str) -> None:
        self.accepted.setdefault(key, []).append(smsc_id)

    async def on_refused(self, key: str, status: int, text: str) -> None:
        self.refused.append((key, status, text))

    async def on_receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)

    async def on_incoming(self, incoming: Incoming) -> None:
        self.incoming.append(incoming)

    def esme(self, settings: SmppSettings) -> Esme:
        return Esme(settings, on_accepted=self.on_accepted, on_refused=self.on_refused,
                    on_receipt=self.on_receipt, on_incoming=self.on_incoming)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 15.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail the test after `timeout_s` (a hang guard, not a timing check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)
