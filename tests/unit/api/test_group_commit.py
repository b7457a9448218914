"""GroupCommit: items handed in while a write runs leave together in the next batch, written by one
thread; each caller gets its own outcome on its own event loop, and one item's failure, a failing write
or a cancelled caller touches nobody else.

Every test holds the first write on a threading.Event so that the items after it are known to be
waiting when it is released; every wait is bounded, so a broken batcher fails instead of hanging."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import pytest

from api.core.group_commit import GroupCommit

WAIT_S = 5.0
"""The bound of every wait: far above what any step needs, so only a broken batcher reaches it."""

_T = TypeVar("_T")


class Writer:
    """A recording write: keeps every batch and the thread it ran in; the first `held` writes wait for
    `gate` (set by the test once the items meant to queue behind them were handed in)."""

    def __init__(self, outcome: Callable[[int], int | BaseException] = lambda item: item * 10) -> None:
        self.outcome = outcome
        self.held = 1
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.started = threading.Event()
        """Set when the first write began."""
        self.gate = threading.Event()
        self.fail_batches: set[int] = set()
        """Indexes of the writes that raise instead of returning outcomes."""
        self.short_batches: set[int] = set()
        """Indexes of the writes that return one outcome too few."""
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        """The most writes that ran at once."""

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        with self._lock:
            index = len(self.batches)
            self.batches.append(list(items))
            self.threads.add(threading.get_ident())
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.set()
        try:
            if index < self.held:
                assert self.gate.wait(WAIT_S), "the test never released the held writes"
            if index in self.fail_batches:
                raise OSError(f"write {index} failed")
            outcomes = [self.outcome(item) for item in items]
            return outcomes[:-1] if index in self.short_batches else outcomes
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def writer() -> Writer:
    return Writer()


@pytest.fixture
def batcher(writer: Writer) -> Iterator[GroupCommit[int, int]]:
    commit: GroupCommit[int, int] = GroupCommit(writer, max_items=64, name="test-group-commit")
    yield commit
    writer.gate.set()  # a failed test must not leave the writer thread waiting
    commit.close()


def run(main: Callable[[], Awaitable[_T]]) -> _T:
    """Run `main()` on a fresh event loop in debug mode (a future settled from a foreign thread raises
    there) in a thread of its own, bounded by WAIT_S: a batcher that never wakes its caller fails the
    test instead of hanging it. An error the loop reports (a callback that raised) fails it too."""
    done: dict[str, Any] = {}

    async def bounded() -> _T:
        reported: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        async with asyncio.timeout(WAIT_S):
            value = await main()
        await asyncio.sleep(0)  # the callbacks of outcomes nobody awaited (cancelled callers)
        assert not reported, f"the event loop reported {reported}"
        return value

    def target() -> None:
        try:
            done["value"] = asyncio.run(bounded(), debug=True)
        except BaseException as exc:
            done["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(2 * WAIT_S)
    assert not thread.is_alive(), "the event loop hung: a caller was never woken"
    if "error" in done:
        raise done["error"]
    return cast(_T, done["value"])


async def held_first(batcher: GroupCommit[int, int], writer: Writer) -> asyncio.Task[int]:
    """Hand in item 0 and wait until its write has begun (and is held on writer.gate)."""
    first = asyncio.create_task(batcher(0))
    assert await asyncio.to_thread(writer.started.wait, WAIT_S)
    return first


async def queued(batcher: GroupCommit[int, int], items: Sequence[int]) -> list[asyncio.Task[int]]:
    """Hand in `items` (each its own caller) and let every caller reach its await."""
    tasks = [asyncio.create_task(batcher(item)) for item in items]
    for _ in range(3):
        await asyncio.sleep(0)
    return tasks


async def outcomes(tasks: Sequence[asyncio.Task[int]]) -> list[Any]:
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def test_items_handed_in_during_a_write_leave_together_in_the_next(
    batcher: GroupCommit[int, int], writer: Writer
) -> None:
    async def main() -> list[Any]:
        first = await held_first(batcher, writer)
        later = await queued(batcher, [1, 2, 3, 4, 5])
        assert writer.batches == [[0]]  # nobody waited for company
        writer.gate.set()
        return await outcomes([first, *later])

    assert run(main) == [0, 10, 20, 30, 40, 50]
    assert writer.batches == [[0], [1, 2, 3, 4, 5]]
    assert (batcher.batches, batcher.items) == (2, 6)


def test_an_idle_batcher_writes_each_item_at_once(batcher: GroupCommit[int, int], writer: Writer) -> None:
    writer.gate.set()

    async def main() -> list[int]:
        return [await batcher(item) for item in (7, 8, 9)]

    assert run(main) == [70, 80, 90]
    assert writer.batches == [[7], [8], [9]]
    assert (batcher.batches, batcher.items) == (3, 3)


def test_max_items_bounds_every_batch(writer: Writer) -> None:
    batcher: GroupCommit[int, int] = GroupCommit(writer, max_items=2)

    async def main() -> list[Any]:
        first = await held_first(batcher, writer)
        later = await queued(batcher, [1, 2, 3, 4, 5])
        writer.gate.set()
        return await outcomes([first, *later])

    try:
        assert run(main) == [0, 10, 20, 30, 40, 50]
    finally:
        writer.gate.set()
        batcher.close()
    assert writer.batches == [[0], [1, 2], [3, 4], [5]]
    assert (batcher.batches, batcher.items) == (4, 6)


def test_max_weight_bounds_every_batch_but_a_heavy_item_goes_alone(writer: Writer) -> None:
    batcher: GroupCommit[int, int] = GroupCommit(writer, max_items=64, weigh=lambda item: item, max_weight=5)

    async def main() -> list[Any]:
        first = await held_first(batcher, writer)
        later = await queued(batcher, [1, 2, 2, 9, 3, 1, 1])
        writer.gate.set()
        return await outcomes([first, *later])

    try:
        assert run(main) == [0, 10, 20, 20, 90, 30, 10, 10]
    finally:
        writer.gate.set()
        batcher.close()
    assert writer.batches == [[0], [1, 2, 2], [9], [3, 1, 1]]


def test_max_items_or_writers_below_one_are_refused(writer: Writer) -> None:
    with pytest.raises(ValueError):
        GroupCommit(writer, max_items=0)
    with pytest.raises(ValueError):
        GroupCommit(writer, writers=0)


def test_an_items_exception_reaches_only_its_caller(writer: Writer) -> None:
    refusal = LookupError("item 2 refused")
    writer.outcome = lambda item: refusal if item == 2 else item * 10
    batcher: GroupCommit[int, int] = GroupCommit(writer)

    async def main() -> list[Any]:
        first = await held_first(batcher, writer)
        later = await queued(batcher, [1, 2, 3])
        writer.gate.set()
        return await outcomes([first, *later])

    try:
        got = run(main)
    finally:
        writer.gate.set()
        batcher.close()
    assert writer.batches == [[0], [1, 2, 3]]  # the refused item shared its batch with the others
    assert got == [0, 10, refusal, 30]


def test_a_write_that_raises_fails_its_whole_batch_and_the_next_batch_works(
    batcher: GroupCommit[int, int], writer: Writer
) -> None:
    writer.fail_batches = {1}

    async def main() -> tuple[list[Any], int]:
        first = await held_first(batcher, writer)
        later = await queued(batcher, [1, 2, 3])
        writer.gate.set()
        got = await outcomes([first, *later])
        return got, await batcher(4)

    got, after = run(main)
    assert got[0] == 0
    assert all(isinstance(outcome, OSError) for outcome in got[1:]) and str(got[1]) == "write 1 failed"
    assert after == 40
    assert writer.batches == [[0], [1, 2, 3], [4]]
    assert (batcher.batches, batcher.items) == (3, 5)


def test_the_wrong_number_of_outcomes_fails_that_batch(
    batcher: GroupCommit[int, int], writer: Writer
) -> None:
    writer.short_batches = {1}

    async def main() -> tuple[list[Any], int]:
        first = await held_first(batcher, writer)
        later = await queued(batcher, [1, 2])
        writer.gate.set()
        got = await outcomes([first, *later])
        return got, await batcher(3)

    got, after = run(main)
    assert got[0] == 0
    # one outcome short must not hand item 1 its own answer and leave item 2 hanging: both fail
    assert [type(outcome) for outcome in got[1:]] == [RuntimeError, RuntimeError]
    assert "1 outcomes for 2 items" in str(got[1])
    assert after == 30


def test_a_cancelled_caller_does_not_break_the_others_and_is_still_written(
    batcher: GroupCommit[int, int], writer: Writer
) -> None:
    async def main() -> tuple[bool, bool, list[Any]]:
        first = await held_first(batcher, writer)
        gone, kept = await queued(batcher, [1, 2])
        first.cancel()  # its batch has begun
        gone.cancel()  # its batch has not
        await asyncio.sleep(0)
        writer.gate.set()
        got = await outcomes([kept])
        return first.cancelled(), gone.cancelled(), [*got, await batcher(3)]

    first_cancelled, gone_cancelled, got = run(main)
    assert first_cancelled and gone_cancelled
    assert got == [20, 30]
    assert writer.batches == [[0], [1, 2], [3]]  # what was handed in is written, caller or not


def test_close_waits_for_the_batches_under_way_and_refuses_new_items(
    batcher: GroupCommit[int, int], writer: Writer
) -> None:
    async def main() -> tuple[list[Any], bool]:
        first = await held_first(batcher, writer)
        (second,) = await queued(batcher, [1])
        closing = asyncio.create_task(asyncio.to_thread(batcher.close))
        done, _ = await asyncio.wait({closing}, timeout=0.2)
        returned_early = bool(done)
        writer.gate.set()
        await closing
        with pytest.raises(RuntimeError):
            await batcher(2)
        return await outcomes([first, second]), returned_early

    got, returned_early = run(main)
    assert not returned_early  # close() returned while a write was held
    assert got == [0, 10]  # both the running and the queued batch were written
    assert writer.batches == [[0], [1]]


def test_one_writer_thread_settles_each_outcome_on_its_callers_loop(
    batcher: GroupCommit[int, int], writer: Writer
) -> None:
    """Two event loops in two threads share one batch; debug mode makes a future settled from the
    writer thread directly (not through its loop) raise instead of answering."""
    results: dict[int, Any] = {}
    loop_threads: dict[int, int] = {}
    ready = threading.Barrier(2, timeout=WAIT_S)

    def caller(item: int) -> None:
        async def main() -> int:
            loop_threads[item] = threading.get_ident()
            if item == 0:
                first = await held_first(batcher, writer)
                await asyncio.to_thread(ready.wait)
                await asyncio.to_thread(ready.wait)  # the other loop's item is queued
                writer.gate.set()
                return await first
            await asyncio.to_thread(ready.wait)  # the first write is held
            (task,) = await queued(batcher, [item])
            await asyncio.to_thread(ready.wait)
            answer = await task
            assert threading.get_ident() == loop_threads[item]
            return answer

        try:
            results[item] = run(main)
        except BaseException as exc:  # reported by the main thread's assertion
            results[item] = exc

    threads = [threading.Thread(target=caller, args=(item,)) for item in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * WAIT_S)
    assert results == {0: 0, 1: 10}
    assert writer.batches == [[0], [1]]
    assert len(writer.threads) == 1 and not writer.threads & set(loop_threads.values())


def test_several_writers_write_batches_side_by_side_and_no_more(writer: Writer) -> None:
    """writers=2 (PostgreSQL): a second item starts a second write while the first is held; a third
    waits for one of them, and whatever queued meanwhile still leaves in one batch."""
    writer.held = 2
    batcher: GroupCommit[int, int] = GroupCommit(writer, writers=2)

    async def main() -> list[Any]:
        first = await held_first(batcher, writer)
        (second,) = await queued(batcher, [1])
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while len(writer.batches) < 2:  # the second writer picked item 1 up
            assert asyncio.get_running_loop().time() < deadline, writer.batches
            await asyncio.sleep(0.005)
        later = await queued(batcher, [2, 3, 4])
        assert writer.batches == [[0], [1]]  # no third write while two are held
        writer.gate.set()
        return await outcomes([first, second, *later])

    try:
        assert run(main) == [0, 10, 20, 30, 40]
    finally:
        writer.gate.set()
        batcher.close()
    assert writer.batches == [[0], [1], [2, 3, 4]]
    assert writer.peak == 2 and len(writer.threads) == 2
    assert (batcher.batches, batcher.items) == (3, 5)
