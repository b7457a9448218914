"""An engine process killed mid-call (by its PID, from the pool) never leaves a wrong answer in the
store (issue 12, item 8): a key already captured is kept, an unknown result is `Call failed (engine)`,
not charged and not dialled again."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import pytest

from api.runtime.worker import running_worker
from tests.integration.worker.conftest import (
    BALANCE,
    TTS_PER_MINUTE,
    PhoneProcess,
    Store,
    process_gone,
    worker_settings,
)
from tests.integration.worker.test_worker import ANSWERED, TTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # each starts an engine pool


async def kill_engine_after(store: Store, message_id: str, event: str, pids: list[int | None]) -> int:
    """SIGKILL the pool's only engine once `event` is in the message's timeline; its PID."""
    await asyncio.to_thread(store.wait_event, message_id, event)
    (pid,) = pids
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return pid


def test_engine_killed_after_the_answer_before_a_key(store: Store,
                                                     phone: Callable[..., PhoneProcess]) -> None:
    far = phone("--press", "1", "--wait", "20", "--ring", "0.2")  # answers; would press 1 only after 20 s
    settings = worker_settings(store.data_dir, far.port)
    message_id = store.queue_message("tts", settings=TTS)

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w-crash") as node:
            killed = await kill_engine_after(store, message_id, "answered", node.pool.pids)
            await store.await_finished(message_id)
            assert await asyncio.to_thread(process_gone, killed)

    asyncio.run(scenario())
    message = store.message(message_id)
    assert (message.status_code, message.status_text) == (603, "Call failed (engine)")
    assert message.attempts == 1 and message.response == "" and message.cost == 0
    assert store.balance() == BALANCE
    kinds = [kind for kind, _ in store.events(message_id)]
    assert kinds.count("dialling") == 1 and "retry" not in kinds


def test_engine_killed_after_the_key_keeps_the_key(store: Store, phone: Callable[..., PhoneProcess]) -> None:
    far = phone("--press", "1", "--wait", "0.5", "--ring", "0.2")
    settings = worker_settings(store.data_dir, far.port)
    message_id = store.queue_message("tts", settings=TTS)

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w-crash-key") as node:
            await kill_engine_after(store, message_id, "key", node.pool.pids)
            await store.await_finished(message_id)

    asyncio.run(scenario())
    message = store.message(message_id)
    assert ANSWERED.match(message.status_text), (message.status_text, store.events(message_id))
    assert message.response == "1" and message.attempts == 1
    assert store.balance() == BALANCE - TTS_PER_MINUTE
