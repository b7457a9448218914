"""The voice worker when the lease of a message it is calling is lost: another worker takes the message
over (the failure is injected by rewriting the lease in the real store, as that worker's claim would)
while the call rings at the built-in test phone. The worker stops the call, frees its slot and writes
nothing over the new holder's message (no event, no outcome, no charge)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import update

from api.core.settings import WorkerSettings
from api.runtime.worker import running_worker
from store.models import Message
from tests.integration.worker.conftest import BALANCE, PhoneProcess, Store, worker_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # starts an engine pool (~5 s)
TTS = {"text": "Adam, web server is down", "language": "us", "gender": "male", "repeat": 0, "response": 1}
HANG_GUARD_S = 60.0
"""Fails a test that would otherwise hang; no timing is asserted."""


def take_over(store: Store, message_id: str) -> None:
    with store.db.transaction() as session:
        session.execute(update(Message).where(Message.id == message_id).values(
            lease_owner="w-other", lease_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))


def test_a_lost_lease_stops_the_call_and_writes_nothing(
    store: Store, phone: Callable[..., PhoneProcess], caplog: pytest.LogCaptureFixture
) -> None:
    far = phone("--ring", "30", "--press", "1")
    settings = worker_settings(store.data_dir, far.port,
                               worker=WorkerSettings(poll_interval_s=0.5, heartbeat_s=0.2,
                                                     shutdown_timeout_s=20.0))
    settings = settings.model_copy(update={"sip": replace(settings.sip, ring_timeout_s=40.0)})
    message_id = store.queue_message("tts", settings=TTS)

    async def scenario() -> tuple[list[tuple[str, str]], tuple[int, str]]:
        async with running_worker(settings, store.db, worker_id="w-first") as node:
            await asyncio.to_thread(store.wait_event, message_id, "ringing", 30)
            assert node.worker.in_flight == 1
            await asyncio.to_thread(take_over, store, message_id)
            before = await asyncio.to_thread(store.events, message_id)
            taken = await asyncio.to_thread(store.message, message_id)
            async with asyncio.timeout(HANG_GUARD_S):
                while node.worker.in_flight:  # the call is stopped and its task ends
                    await asyncio.sleep(0.05)
            return before, (taken.status_code, taken.status_text)

    with caplog.at_level(logging.INFO):
        before, status = asyncio.run(scenario())
    assert "w-first lost the lease of message " + message_id in caplog.text
    assert "lease lost during the call; its outcome" in caplog.text
    message = store.message(message_id)
    assert (message.lease_owner, message.finished_at) == ("w-other", None)
    assert (message.status_code, message.status_text) == status == (110, "Calling")  # as taken over
    assert message.cost is None and store.events(message_id) == before  # nothing written after the loss
    assert store.balance() == BALANCE - message.reserved  # reserved still, for the new holder's call
