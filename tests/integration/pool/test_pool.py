"""The engine pool with real engine processes (ivr.engine) calling a real SIPp UAS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import replace

import pytest

from ivr.pool import CRASHED, EnginePool, EnginePoolUnavailable, EngineStartError, RestartPolicy

from .conftest import Tracker, Uas, child_pids, process_gone, sip_settings

pytestmark = pytest.mark.integration


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def assert_normal_end(tracker: Tracker) -> None:
    assert "answered" in tracker.kinds, tracker.kinds
    final = tracker.events[-1]
    assert (final.kind, final.sip_code) == ("disconnected", 200), final


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_eight_concurrent_calls_then_a_ninth_waits_for_a_slot(uas: Callable[[int], Uas]) -> None:
    peer = uas(2000)

    async def scenario() -> None:
        pool = EnginePool(sip_settings(), processes=2)
        await pool.start()
        try:
            assert pool.capacity == 8 and pool.in_use == 0
            calls = [Tracker(await pool.place_call(peer.uri, caller_id="12505550100")) for _ in range(8)]
            assert pool.in_use == 8
            assert sorted(t.handle.engine_index for t in calls) == [0] * 4 + [1] * 4
            assert len({t.handle.ref for t in calls}) == 8
            ninth = asyncio.create_task(pool.place_call(peer.uri))
            await asyncio.sleep(0.3)
            assert not ninth.done(), "the ninth call must wait while all 8 slots are busy"
            handle = await ninth
            assert any(t.handle.closed for t in calls), "a slot was freed before the ninth call started"
            for tracker in calls:
                await tracker.finished()
                assert_normal_end(tracker)
                assert tracker.kinds[0] == "calling" and tracker.events[0].call_id
            last = Tracker(handle)
            async with asyncio.timeout(10):
                await last.answered.wait()
            await handle.hangup()
            await last.finished()
            assert_normal_end(last)
            assert pool.in_use == 0
        finally:
            await pool.stop()

    asyncio.run(scenario())


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_killed_engine_fails_only_its_calls_and_is_replaced(uas: Callable[[int], Uas]) -> None:
    peer = uas(3000)

    async def scenario() -> None:
        pool = EnginePool(sip_settings(), processes=2)
        await pool.start()
        try:
            calls = [Tracker(await pool.place_call(peer.uri)) for _ in range(8)]
            async with asyncio.timeout(10):
                await asyncio.gather(*(t.answered.wait() for t in calls))
            victim = pool.pids[0]
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            for tracker in calls:
                final = await tracker.finished()
                if tracker.handle.engine_index == 0:
                    assert (final.reason, final.sip_code) == (CRASHED, None), final
                else:
                    assert_normal_end(tracker)
            await wait_for(lambda: pool.pids[0] not in (None, victim))
            assert process_gone(victim)
            assert pool.capacity == 8 and pool.in_use == 0
            replacement = Tracker(await pool.place_call(peer.uri))
            assert replacement.handle.engine_pid == pool.pids[0]
            await replacement.finished()
            assert_normal_end(replacement)
        finally:
            await pool.stop()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_stop_hangs_up_calls_in_flight_and_leaves_no_process(uas: Callable[[int], Uas]) -> None:
    peer = uas(30000)
    before = child_pids()

    async def scenario() -> None:
        pool = EnginePool(sip_settings(), processes=2)
        await pool.start()
        pids = [p for p in pool.pids if p is not None]
        assert len(pids) == 2 and set(pids) <= child_pids()
        calls = [Tracker(await pool.place_call(peer.uri)) for _ in range(6)]
        async with asyncio.timeout(10):
            await asyncio.gather(*(t.answered.wait() for t in calls))
        await pool.stop(timeout_s=10)
        for tracker in calls:
            async with asyncio.timeout(1):
                final = await tracker.finished()
            assert final.sip_code is not None and final.reason != CRASHED, final  # a real BYE, not a kill
        assert pool.pids == [None, None] and pool.in_use == 0
        assert all(process_gone(pid) for pid in pids)
        with pytest.raises(EnginePoolUnavailable):
            await pool.place_call(peer.uri)

    asyncio.run(scenario())
    assert child_pids() == before  # SIPp only


@pytest.mark.timeout(60)
def test_an_engine_that_cannot_start_is_reported() -> None:
    settings = sip_settings()
    before = child_pids()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", settings.port + 1))
        pool = EnginePool(settings, processes=2, policy=RestartPolicy(ready_timeout_s=20))
        with pytest.raises(EngineStartError) as info:
            asyncio.run(pool.start())
    assert f"engine 1 (port {settings.port + 1})" in info.value.detail
    assert child_pids() == before


@pytest.mark.timeout(60)
def test_an_engine_that_keeps_dying_is_given_up() -> None:
    async def scenario() -> None:
        policy = RestartPolicy(max_restarts=1, window_s=60.0, backoff_s=0.05)
        pool = EnginePool(replace(sip_settings(1), processes=1), policy=policy)
        await pool.start()
        try:
            first = pool.pids[0]
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await wait_for(lambda: pool.pids[0] not in (None, first))
            second = pool.pids[0]
            assert second is not None
            os.kill(second, signal.SIGKILL)
            await wait_for(lambda: pool.pids[0] is None)
            with pytest.raises(EnginePoolUnavailable, match="given up"):
                async with asyncio.timeout(5):
                    await pool.place_call("sip:1000@127.0.0.1:9")
            assert pool.capacity == 0 and pool.pids == [None]
        finally:
            await pool.stop()

    asyncio.run(scenario())
