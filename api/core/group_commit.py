"""Group commit: requests handed in while a write is running are written together by the next one.

    batcher = GroupCommit(gateway.write_jobs, max_items=64, name="submissions")
    submitted = await batcher(job)        # on the event loop; the write runs in the batcher's thread

One thread writes (or `writers` threads, each with its own batch, where the database lets transactions
overlap); the event loop never blocks on the database. The first item starts a write at once
(no waiting for company: an idle server answers as fast as before); items arriving while that write runs
queue and leave together in the next one, so under load one transaction and one commit serve many
requests (docs/api-legacy.md, "Throughput"). `write` returns one outcome per item, in order: a result, or
the exception that item's caller gets (one job's refusal never touches the others). If `write` itself
raises, every item of that batch gets the exception.

An item whose caller went away (a cancelled request) is still written when its batch has begun: what a
write accepted is in the store whether or not anyone reads the answer, as with any committed request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Hands items to `write` in batches of at most `max_items`, at most `writers` batches at a time,
    each in a thread of its own."""

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Sequence[Result | BaseException]],
        *,
        max_items: int = 64,
        writers: int = 1,
        name: str = "group-commit",
        weigh: Callable[[Item], int] | None = None,
        max_weight: int = 0,
    ) -> None:
        if max_items < 1 or writers < 1:
            raise ValueError("max_items and writers must be at least 1")
        self._write = write
        self.max_items = max_items
        self._weigh = weigh
        self.max_weight = max_weight
        """With `weigh`: a batch takes items while their weights add up to at most this (and always its
        first item), so a few large jobs do not make one huge transaction."""
        self._lock = threading.Lock()
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writers = writers
        self._running = 0
        """Writer threads draining now."""
        self._closed = False
        self._executor = ThreadPoolExecutor(writers, thread_name_prefix=name)
        self.batches = 0
        """Writes so far (with `items`: the mean batch size, for /metrics and benchmarks)."""
        self.items = 0

    async def __call__(self, item: Item) -> Result:
        """Write `item` with whatever else is waiting; its outcome (raised when it is an exception)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the group commit is closed")
            self._pending.append((item, future))
            start = self._running < self._writers
            self._running += start
        if start:
            try:
                self._executor.submit(self._drain)
            except BaseException:  # no writer will come for it: take it back
                with self._lock:
                    self._running -= 1
                    self._pending = [(i, f) for i, f in self._pending if f is not future]
                raise
        return await future

    def close(self) -> None:
        """Refuse new items and wait for the batches under way."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)

    def _batch_size(self) -> int:
        """How many of the pending items the next batch takes (called under the lock)."""
        if self._weigh is None or self.max_weight <= 0:
            return self.max_items
        total = 0
        for count, (item, _) in enumerate(self._pending[: self.max_items]):
            total += self._weigh(item)
            if count and total > self.max_weight:
                return count
        return self.max_items

    def _drain(self) -> None:
        """The writer thread: write batches until nothing waits."""
        while True:
            with self._lock:
                batch = self._pending[: self._batch_size()]
                del self._pending[: len(batch)]
                if not batch:
                    self._running -= 1
                    return
            outcomes: Sequence[Result | BaseException]
            try:
                outcomes = self._write([item for item, _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} items")
            except BaseException as exc:  # every item of the batch hears of it; the thread goes on
                outcomes = [exc] * len(batch)
            with self._lock:
                self.batches += 1
                self.items += len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                try:
                    future.get_loop().call_soon_threadsafe(_settle, future, outcome)
                except RuntimeError:  # that caller's event loop is closed: nobody is waiting
                    log.debug("an outcome of %s found its event loop closed", type(outcome).__name__)


def _settle(future: asyncio.Future[Result], outcome: Result | BaseException) -> None:
    if future.done():  # the caller was cancelled; the write stands
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
