"""The voice worker's scheduling against a real engine pool and SIPp (moved here from the tests of the
former in-memory Dialer, issue 14): retries, the node's and the account's concurrency limits and the
account's calls-per-second limit (read back from the store: the claim and dialling times, the end),
and shutdown with calls in flight."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from api.core.manage import set_call_limits
from api.runtime.worker import running_worker
from store.models import Account, Message, MessageEvent
from tests.integration.worker.conftest import (
    TTS_PER_MINUTE,
    Sipp,
    Store,
    child_pids,
    process_gone,
    worker_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]
SAY = {"text": "Adam, web server is down", "language": "us", "gender": "male", "repeat": 0}
KEY = {**SAY, "response": 1}


def limit_account(store: Store, *, max_calls: int | None = None, per_second: float | None = None) -> None:
    with store.db.transaction() as session:
        set_call_limits(session.get_one(Account, store.owner_id), max_concurrent_calls=max_calls,
                        calls_per_second=per_second)


def event_times(store: Store, message_id: str, kind: str) -> list[dt.datetime]:
    with store.db.read() as session:
        return list(session.scalars(select(MessageEvent.at).where(
            MessageEvent.message_id == message_id, MessageEvent.kind == kind).order_by(MessageEvent.id)))


def spans(store: Store, ids: list[str]) -> list[tuple[dt.datetime, dt.datetime]]:
    """(dialled, finished) of each message (one attempt each)."""
    with store.db.read() as session:
        ended = {m.id: m.finished_at for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
    return [(event_times(store, i, "dialling")[0], ended[i]) for i in ids]  # type: ignore[misc]


def peak_overlap(intervals: list[tuple[dt.datetime, dt.datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    level = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        level += step
        peak = max(peak, level)
    return peak


def run_worker(store: Store, peer: Sipp, ids: list[str], worker_id: str, **dialer: Any) -> list[Message]:
    """Run one worker (one engine process: 4 calls) until every message is finished."""
    settings = worker_settings(store.data_dir, peer.port)
    settings = settings.model_copy(update={"dialer": replace(settings.dialer, **dialer)})

    async def scenario() -> list[Message]:
        async with running_worker(settings, store.db, worker_id=worker_id):
            return [await store.await_finished(i, timeout=120) for i in ids]

    return asyncio.run(scenario())


def test_busy_is_retried_per_the_settings(store: Store, sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_busy.xml", calls=3)
    (message_id,) = ids = [store.queue_message("tts", settings=KEY)]
    (done,) = run_worker(store, peer, ids, "w-retry", retries=2, retry_delay_s=0.3)
    assert (done.status_code, done.status_text, done.sip_code, done.attempts) == (600, "Busy", 486, 3)
    dialled, retried = event_times(store, message_id, "dialling"), event_times(store, message_id, "retry")
    assert len(dialled) == 3 and len(retried) == 2  # three real INVITEs, two waits
    for retry, again in zip(retried, dialled[1:], strict=True):
        assert (again - retry).total_seconds() >= 0.3  # due no earlier than the retry delay
    assert peer.wait(15) == 0, peer.errors()  # SIPp saw exactly its 3 calls


def test_no_retry_when_the_callee_answers(store: Store, sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_rfc4733.xml")
    ids = [store.queue_message("tts", settings=KEY)]
    (done,) = run_worker(store, peer, ids, "w-once", retries=3, retry_delay_s=0.1)
    assert done.status_code == 200 and done.response == "1" and done.attempts == 1
    assert peer.wait(15) == 0, peer.errors()


def test_the_nodes_max_concurrent_is_respected(store: Store, sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_no_key.xml", calls=9)
    ids = [store.queue_message("tts", settings=SAY) for _ in range(9)]
    done = run_worker(store, peer, ids, "w-three", max_concurrent=3, calls_per_second=100.0)
    assert all(m.status_code == 200 for m in done), [m.status_text for m in done]
    assert peak_overlap(spans(store, ids)) == 3  # 9 calls of a prompt's length, queued at once
    assert peer.wait(15) == 0, peer.errors()


def test_the_accounts_max_concurrent_is_respected(store: Store, sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_no_key.xml", calls=6)
    limit_account(store, max_calls=2)
    ids = [store.queue_message("tts", settings=SAY) for _ in range(6)]
    done = run_worker(store, peer, ids, "w-two", max_concurrent=16, calls_per_second=100.0)
    assert all(m.status_code == 200 for m in done), [m.status_text for m in done]
    assert peak_overlap(spans(store, ids)) == 2  # the node had 4 engine slots
    assert peer.wait(15) == 0, peer.errors()


def test_the_accounts_calls_per_second_is_respected(store: Store, sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_busy.xml", calls=10)
    rate = 4.0
    limit_account(store, per_second=rate)
    ids = [store.queue_message("tts", settings=SAY) for _ in range(10)]
    done = run_worker(store, peer, ids, "w-rate", max_concurrent=16, calls_per_second=1000.0)
    assert all(m.status_code == 600 for m in done)
    claimed = sorted(event_times(store, i, "claimed")[0] for i in ids)
    burst = int(rate)  # the account's bucket holds one second of calls
    for first, last in itertools.combinations(range(len(claimed)), 2):
        # claims first..last were let go within `within`, by the clock the bucket was read with
        within = (claimed[last] - claimed[first]).total_seconds()
        assert last - first + 1 <= burst + rate * within + 1e-6, (first, last, claimed)
    for i in ids:  # and each was dialled after its claim
        assert event_times(store, i, "dialling")[0] >= event_times(store, i, "claimed")[0]
    assert peer.wait(15) == 0, peer.errors()


def test_shutdown_cancels_calls_in_flight_and_leaks_nothing(store: Store, sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_no_key.xml", calls=4)
    settings = worker_settings(store.data_dir, peer.port)
    settings = settings.model_copy(update={"dialer": replace(settings.dialer, max_concurrent=6,
                                                             response_timeout_s=30.0)})
    ids = [store.queue_message("tts", settings=KEY) for _ in range(8)]
    engine_pids: list[int] = []

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w-stop") as node:
            engine_pids.extend(pid for pid in node.pool.pids if pid is not None)

            def four_answered() -> None:
                while sum(1 for i in ids if event_times(store, i, "answered")) < 4:
                    time.sleep(0.05)

            await asyncio.to_thread(four_answered)
            await node.worker.stop(cancel_in_flight=True)
            assert node.pool.in_use == 0 and node.worker.in_flight == 0

    asyncio.run(scenario())
    answered = [i for i in ids if event_times(store, i, "answered")]
    assert len(answered) == 4  # one engine process: 4 calls up; the other 4 were never claimed
    for message_id in ids:
        m = store.message(message_id)
        if message_id in answered:  # hung up by the shutdown: final, charged as answered (one increment)
            assert (m.status_code, m.status_text, m.cost) == (604, "Cancelled", TTS_PER_MINUTE), m.status_text
        else:  # still queued, never claimed, no lease
            assert (m.status_code, m.finished_at, m.lease_owner, m.attempts) == (100, None, None, 0)
    assert peer.wait(15) == 0, peer.errors()  # SIPp saw 4 BYEs
    assert all(process_gone(pid) for pid in engine_pids)
    assert not set(engine_pids) & child_pids()
