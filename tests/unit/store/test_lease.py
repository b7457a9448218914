"""store.lease: the one leased-worker loop's bookkeeping (pure) and its asyncio loop (heartbeat, lost
leases, wake-up, poll wait, stop), driven by renewals that answer from a plain set of held keys."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Collection

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.errors import StoreError
from store.lease import LeasedLoop, Leases, heartbeat_interval


def test_heartbeat_interval_is_a_third_of_the_lease_unless_set() -> None:
    assert heartbeat_interval(60.0) == 20.0
    assert heartbeat_interval(60.0, 5.0) == 5.0
    with pytest.raises(ValueError):
        heartbeat_interval(0.0)
    with pytest.raises(ValueError):
        heartbeat_interval(60.0, -1.0)


@given(held=st.sets(st.integers(0, 20)), kept=st.sets(st.integers(0, 20)),
       dropped=st.sets(st.integers(0, 20)))
def test_renewed_reports_exactly_the_held_keys_missing_from_the_answer(
    held: set[int], kept: set[int], dropped: set[int]
) -> None:
    leases: Leases[int] = Leases("w1", "message")
    stopped: list[int] = []
    for key in sorted(held):
        leases.hold(key, lambda k=key: stopped.append(k))
    asked = leases.keys()
    for key in dropped:  # work that ended while the renewal was under way: not lost
        leases.drop(key)
    lost = leases.renewed(asked, kept)
    assert set(lost) == held - kept - dropped
    assert sorted(stopped) == sorted(lost)
    assert set(leases.keys()) == (held - dropped) & kept
    assert leases.lost_count == len(lost)


def test_a_failing_on_lost_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    leases: Leases[str] = Leases("w1", "message")
    stopped: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    leases.hold("a", broken)
    leases.hold("b", lambda: stopped.append("b"))
    with caplog.at_level(logging.WARNING, logger="store.lease"):
        assert leases.renewed(["a", "b"], []) == ["a", "b"]
    assert stopped == ["b"]
    assert "w1 lost the lease of message a" in caplog.text
    assert "stopping the work of message a failed" in caplog.text


def test_beat_in_a_thread_renews_and_outlives_a_store_error() -> None:
    leases: Leases[int] = Leases("w1")
    stopped: list[int] = []
    for key in (1, 2, 3):
        leases.hold(key, lambda k=key: stopped.append(k))
    asked: list[list[int]] = []

    def renew(keys: list[int]) -> Collection[int]:
        asked.append(keys)
        return {1, 3}

    assert leases.beat(renew) == [2] and stopped == [2] and asked == [[1, 2, 3]]

    def failing(keys: list[int]) -> Collection[int]:
        raise StoreError("database is locked")

    assert leases.beat(failing) == [] and leases.keys() == [1, 3]  # a failed renewal loses nothing
    assert Leases[int]("w1").beat(renew) == [] and len(asked) == 1  # nothing held: no renewal


class Renewals:
    """A renewal answering from `owner` (key -> holder), counting its calls; `beats` is set after each."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.owner: dict[str, str] = {}
        self.calls = 0
        self.beats = asyncio.Event()
        self.fail = False

    async def __call__(self, keys: list[str]) -> Collection[str]:
        self.calls += 1
        self.beats.set()
        if self.fail:
            raise StoreError("database is locked")
        return {key for key in keys if self.owner.get(key) == self.holder}


def test_the_heartbeat_cancels_the_work_of_a_lost_lease() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        renew = Renewals("w1")
        loop = LeasedLoop("w1", renew=renew, lease_s=3.0, heartbeat_s=0.01, poll_s=0.05, what="message")
        async with loop:
            renew.owner = {"m1": "w1", "m2": "w1"}
            works = {key: asyncio.create_task(asyncio.Event().wait()) for key in renew.owner}
            for key, task in works.items():
                loop.hold(key, task.cancel)
            renew.owner["m1"] = "w2"  # another worker took m1 over
            await asyncio.wait([works["m1"]])
            renew.beats.clear()
            await renew.beats.wait()  # one more heartbeat: m2 is still held
            kept = not works["m2"].done()
            works["m2"].cancel()
        return works["m1"].cancelled(), kept, loop.leases.lost_count

    assert asyncio.run(scenario()) == (True, True, 1)


def test_a_failed_heartbeat_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> int:
        renew = Renewals("w1")
        renew.fail = True
        renew.owner = {"m1": "w1"}
        loop = LeasedLoop("w1", renew=renew, lease_s=3.0, heartbeat_s=0.01, poll_s=0.05)
        async with loop:
            loop.hold("m1", lambda: None)
            while renew.calls < 3:
                renew.beats.clear()
                await renew.beats.wait()
        return len(loop)

    with caplog.at_level(logging.ERROR, logger="store.lease"):
        assert asyncio.run(scenario()) == 0  # stop forgets what was held
    assert "w1: heartbeat failed: database is locked" in caplog.text


def test_claim_logs_a_store_error_and_claims_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def claim_fails() -> list[str]:
        raise StoreError("no database")

    async def claim_two() -> list[str]:
        return ["a", "b"]

    async def scenario() -> tuple[list[str], list[str]]:
        loop: LeasedLoop[str] = LeasedLoop("w1", renew=Renewals("w1"), lease_s=3.0, poll_s=0.05)
        return await loop.claim(claim_fails), await loop.claim(claim_two)

    with caplog.at_level(logging.ERROR, logger="store.lease"):
        assert asyncio.run(scenario()) == ([], ["a", "b"])
    assert "w1: claim failed: no database" in caplog.text


def test_wake_from_another_thread_ends_the_idle_wait() -> None:
    async def scenario() -> bool:
        loop: LeasedLoop[str] = LeasedLoop("w1", renew=Renewals("w1"), lease_s=3.0, poll_s=3600.0)
        loop.wake()  # before start: nothing to wake, no error
        async with loop:
            waiting = asyncio.create_task(loop.idle())
            await asyncio.sleep(0)  # let idle() start waiting
            threading.Thread(target=loop.wake).start()
            await waiting  # an hour's poll, ended by the wake-up
            return waiting.done()

    assert asyncio.run(scenario())


def test_idle_returns_after_the_poll_interval_without_a_wake_up() -> None:
    async def scenario() -> None:
        loop: LeasedLoop[str] = LeasedLoop("w1", renew=Renewals("w1"), lease_s=3.0, poll_s=0.01)
        async with loop:
            await loop.idle()

    asyncio.run(scenario())


def test_idle_returns_within_a_shorter_wait_than_the_poll() -> None:
    """The voice worker's claim was stopped by an account's calls-per-second limit: it looks again when
    the limit lets the next call go, not an hour's poll later."""
    async def scenario() -> None:
        loop: LeasedLoop[str] = LeasedLoop("w1", renew=Renewals("w1"), lease_s=3.0, poll_s=3600.0)
        async with loop:
            await loop.idle(within_s=0.01)

    asyncio.run(scenario())


def test_cancelling_the_idle_wait_is_not_swallowed() -> None:
    async def scenario() -> bool:
        loop: LeasedLoop[str] = LeasedLoop("w1", renew=Renewals("w1"), lease_s=3.0, poll_s=3600.0)
        async with loop:
            waiting = asyncio.create_task(loop.idle())
            await asyncio.sleep(0)
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            return waiting.cancelled()

    assert asyncio.run(scenario())


def test_stop_releases_what_is_still_held_or_leaves_it_to_expire(caplog: pytest.LogCaptureFixture) -> None:
    released: list[list[str]] = []

    async def release(keys: list[str]) -> None:
        released.append(keys)

    async def scenario() -> None:
        with_release = LeasedLoop("w1", renew=Renewals("w1"), lease_s=3.0, poll_s=1.0, release=release)
        async with with_release:
            with_release.hold("a", lambda: None)
            with_release.hold("b", lambda: None)
            with_release.drop("a")
        without: LeasedLoop[str] = LeasedLoop("w2", renew=Renewals("w2"), lease_s=3.0, poll_s=1.0)
        async with without:
            without.hold("c", lambda: None)
        await with_release.start()
        with pytest.raises(RuntimeError):
            await with_release.start()
        await with_release.stop()

    with caplog.at_level(logging.INFO, logger="store.lease"):
        asyncio.run(scenario())
    assert released == [["b"]]
    assert "w2: 1 leases left to expire" in caplog.text
