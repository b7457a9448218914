"""The voice worker against real peers: the built-in test phone (its own process) and SIPp as the trunk,
a real engine pool, a SQLite store in a temp data directory."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from api.core.settings import WorkerSettings
from api.fronts.ops import Metrics, OpsContext
from api.runtime.worker import running_worker
from ivr.settings import DialerSettings
from store.rating import call_cost
from tests.integration.worker.conftest import (
    BALANCE,
    TTS_PER_MINUTE,
    PhoneProcess,
    Sipp,
    Store,
    worker_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # each starts an engine pool (~5 s)
ANSWERED = re.compile(r"^Voice call answered, duration (\d+) seconds\. R = 1$")
TTS = {"text": "Adam, web server is down", "language": "us", "gender": "male", "repeat": 0, "response": 1}


def test_answered_call_is_recorded_and_charged(store: Store, phone: Callable[..., PhoneProcess]) -> None:
    far = phone("--press", "1", "--wait", "0.5")
    settings = worker_settings(store.data_dir, far.port)
    message_id = store.queue_message("tts", settings=TTS)
    metrics = Metrics()

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w1", metrics=metrics) as node:
            ops = OpsContext(store.db, metrics=metrics, pool=node.pool, worker=node.worker)
            done = await store.await_finished(message_id)
            assert done.status_code == 200
            outcome = 'ivrgate_call_outcomes_total{code="200"} 1.0'
            for _ in range(200):  # counted once the outcome's write returns, just after the store shows it
                if outcome in (text := metrics.render().decode()):
                    break
                await asyncio.sleep(0.05)
            assert outcome in text
            assert "ivrgate_engine_processes_up 1.0" in text
            assert "ivrgate_submission_latency_seconds_count 1.0" in text
            assert ops.worker is node.worker

    asyncio.run(scenario())
    message = store.message(message_id)
    assert ANSWERED.match(message.status_text), message.status_text
    assert message.response == "1" and message.attempts == 1
    assert message.lease_owner is None and message.sip_call_id
    kinds = [kind for kind, _ in store.events(message_id)]
    assert kinds[:3] == ["queued", "claimed", "dialling"]
    assert kinds[-1] == "hung_up"
    assert {"ringing", "answered", "key"} <= set(kinds)
    assert kinds.index("answered") < kinds.index("key") < kinds.index("hung_up")
    assert ("key", "1") in store.events(message_id)
    # the text shows whole seconds; billing charges per started minute of the exact duration
    exact = float(message.duration_s or 0) + 0.5
    assert message.cost == call_cost(exact, TTS_PER_MINUTE, 60) == TTS_PER_MINUTE
    assert store.balance() == BALANCE - TTS_PER_MINUTE
    calls = far.results(timeout=20)
    assert len(calls) == 1 and calls[0]["pressed"] == "1"


def test_an_answered_zero_second_call_is_charged_one_increment(
    store: Store, sipp: Callable[..., Sipp]
) -> None:
    """The production charge (worker -> store_outcome -> queue.complete_call -> store.rating, the one
    billing rule): the callee answers and hangs up at once, 0 whole seconds; docs/store.md bills an
    answered call at least one increment, so one TTS minute is charged (ivr.outcome's deleted copy of
    the rule said 0 s)."""
    peer = sipp("uas_hangup_at_once.xml")
    settings = worker_settings(store.data_dir, peer.port)
    message_id = store.queue_message("tts", settings=TTS)

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w-zero"):
            await store.await_finished(message_id)

    asyncio.run(scenario())
    message = store.message(message_id)
    assert (message.status_code, message.status_text) == (
        200, "Voice call answered, duration 0 seconds. No response")
    assert message.duration_s == 0 and message.attempts == 1
    assert message.cost == TTS_PER_MINUTE == call_cost(0.0, TTS_PER_MINUTE, 60)
    assert store.balance() == BALANCE - TTS_PER_MINUTE
    assert peer.wait(15) == 0, peer.errors()


def test_busy_is_retried_then_final_and_costs_nothing(store: Store, sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_busy.xml", calls=2)
    settings = worker_settings(store.data_dir, peer.port,
                               dialer=DialerSettings(retries=1, retry_delay_s=0.5, max_call_s=30.0))
    message_id = store.queue_message("tts", settings=TTS)

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w-busy"):
            await store.await_finished(message_id)

    asyncio.run(scenario())
    message = store.message(message_id)
    assert (message.status_code, message.status_text) == (600, "Busy")
    assert message.attempts == 2 and message.sip_code == 486 and message.cost == 0
    kinds = [kind for kind, _ in store.events(message_id)]
    assert kinds.count("dialling") == 2 and kinds.count("retry") == 1
    assert store.balance() == BALANCE
    assert peer.wait(15) == 0, peer.errors()


def test_wake_claims_without_waiting_for_the_poll(store: Store, phone: Callable[..., PhoneProcess]) -> None:
    far = phone("--press", "1", "--wait", "0.3")
    settings = worker_settings(store.data_dir, far.port,
                               worker=WorkerSettings(poll_interval_s=600.0, heartbeat_s=1.0))

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w-wake") as node:
            await asyncio.sleep(0.3)  # the worker's first (empty) claim is behind it: it now sleeps 600 s
            message_id = await asyncio.to_thread(store.queue_message, "tts", settings=TTS)
            waker = threading.Thread(target=node.worker.wake)  # the service calls it from its own thread
            waker.start()
            waker.join()
            done = await store.await_finished(message_id, timeout=60)
            assert ANSWERED.match(done.status_text), done.status_text

    asyncio.run(scenario())


def test_voice_blob_and_missing_blob(store: Store, phone: Callable[..., PhoneProcess]) -> None:
    far = phone("--press", "1", "--wait", "0.3")
    settings = worker_settings(store.data_dir, far.port)
    wav = (Path(__file__).resolve().parents[3] / "samples" / "prompts" / "short.wav").read_bytes()
    digest = store.put_blob(wav)
    good = store.queue_message("voice", settings={"blob": digest, "response": 1}, prompt_blob=digest)
    gone = store.queue_message("voice", settings={"blob": "0" * 64, "response": 1})

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w-blob"):
            await store.await_finished(good)
            await store.await_finished(gone)

    asyncio.run(scenario())
    assert ANSWERED.match(store.message(good).status_text)
    missing = store.message(gone)
    assert (missing.status_code, missing.status_text) == (500, "ERROR: PROMPT UNAVAILABLE")
    assert missing.cost == 0
    assert store.balance() == BALANCE - 13_000  # one voice minute for the good one, nothing for the other


def test_shutdown_cancels_a_ringing_call_and_gives_it_back(
    store: Store, phone: Callable[..., PhoneProcess]
) -> None:
    far = phone("--ring", "20", "--press", "1")
    settings = worker_settings(store.data_dir, far.port)
    settings = settings.model_copy(update={"sip": replace(settings.sip, ring_timeout_s=40.0)})
    message_id = store.queue_message("tts", settings=TTS)

    async def scenario() -> None:
        async with running_worker(settings, store.db, worker_id="w-stop") as node:
            await asyncio.to_thread(store.wait_event, message_id, "ringing", 30)
            await node.worker.stop(cancel_in_flight=True)

    asyncio.run(scenario())
    message = store.message(message_id)
    assert (message.status_code, message.status_text) == (100, "Queued")
    assert message.finished_at is None and message.lease_owner is None and message.cost is None
    assert store.events(message_id)[-1] == ("retry", "shutdown during the call")
    assert store.balance() == BALANCE - message.reserved  # still reserved: it will be dialled again
