"""The one leased-worker loop: what a worker that holds store rows under a lease does besides its work.

Three workers hold rows this way: the voice worker (api.runtime.worker: messages, store.queue), the SMS sender
(sms.sender: messages, store.queue) and the callback sender (api.runtime.callbacks: outbox rows,
store.outbox).
Each claims rows with a lease, renews the leases of the rows it still works on, and must stop working a
row whose lease it lost (it expired while the worker stalled and another worker claimed the row): the
other worker's result is the one that counts. This module owns those parts, so the three cannot drift:

- `Leases`: the rows held, each with what to do when its lease is lost (pure bookkeeping: no clock, no
  database). `renewed()` takes a renewal's answer (the rows still held) and reacts to every row that
  is missing: logs it, forgets it, and calls its `on_lost` (cancel the task, stop the call, fence the
  write). `beat()` is one renewal from a worker thread (the callback sender).
- `LeasedLoop`: the same for a worker on an event loop (voice worker, SMS sender): `claim()` with the
  one error rule, the heartbeat task renewing every `heartbeat_s`, the wake-up (`wake()`, safe from any
  thread) and the poll wait (`idle()`), and on stop the end of the heartbeat; the rows still held are
  released through `release` when one is given, otherwise their leases are left to expire.

    loop = LeasedLoop("node1:42", renew=renew, lease_s=60, poll_s=1.0, what="message")
    async with loop:                                    # starts the heartbeat; stops it on exit
        while not stopping:
            for row in await loop.claim(claim_some):
                task = asyncio.create_task(work(row))
                loop.hold(row.id, task.cancel)          # a lost lease cancels the task
                task.add_done_callback(lambda _t, k=row.id: loop.drop(k))
            await loop.idle()

`renew(keys)` returns the keys still held (store.queue.heartbeat, store.outbox.renew); a key it leaves
out is lost. A key dropped while its renewal was under way is not reported lost: its work had ended.
Waits use `asyncio.timeout`, never `asyncio.wait_for` (sms/link.py: 3.11's can swallow a cancellation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Hashable, Sequence
from types import TracebackType
from typing import Generic, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from store.errors import StoreError

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
OnLost = Callable[[], object]
"""What a worker does when the lease of one of its rows is lost (stop that row's work)."""
DB_ERRORS = (StoreError, SQLAlchemyError)
"""Errors of a claim or a renewal that the loop logs and outlives (the next round tries again)."""


def heartbeat_interval(lease_s: float, heartbeat_s: float = 0.0) -> float:
    """How often leases of `lease_s` are renewed: `heartbeat_s` when set, else a third of the lease
    (two renewals may fail before a lease runs out)."""
    if lease_s <= 0 or heartbeat_s < 0:
        raise ValueError("lease_s must be > 0 and heartbeat_s >= 0")
    return heartbeat_s or lease_s / 3


class Leases(Generic[K]):
    """The rows `holder` holds under a lease, each with its `on_lost` (see the module docstring)."""

    def __init__(self, holder: str, what: str = "row") -> None:
        self.holder = holder
        self.what = what
        self._held: dict[K, OnLost] = {}
        self.lost_count = 0
        """Leases lost so far (for logs and tests)."""

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, key: object) -> bool:
        return key in self._held

    def keys(self) -> list[K]:
        """The rows to renew, in the order they were taken."""
        return list(self._held)

    def hold(self, key: K, on_lost: OnLost) -> None:
        """`key` was claimed: renew its lease from now on; call `on_lost` if it is lost."""
        self._held[key] = on_lost

    def drop(self, key: K) -> None:
        """The work on `key` ended (its result written, or given back): renew it no more."""
        self._held.pop(key, None)

    def clear(self) -> list[K]:
        """Forget every row (stop); returns those that were still held."""
        keys = list(self._held)
        self._held.clear()
        return keys

    def renewed(self, asked: Collection[K], still_held: Collection[K]) -> list[K]:
        """A renewal of `asked` answered `still_held`: every asked row still held here but missing from
        the answer is lost; each is logged, forgotten and its `on_lost` called. Returns the lost rows."""
        kept = set(still_held)
        lost: list[K] = []
        for key in asked:
            on_lost = None if key in kept else self._held.pop(key, None)  # pop: drop() may run in a thread
            if on_lost is None:
                continue
            lost.append(key)
            self.lost_count += 1
            log.warning("%s lost the lease of %s %s (another worker holds it now); stopping its work",
                        self.holder, self.what, key)
            try:
                on_lost()
            except Exception:
                log.exception("%s: stopping the work of %s %s failed", self.holder, self.what, key)
        return lost

    def beat(self, renew: Callable[[list[K]], Collection[K]]) -> list[K]:
        """One renewal of every held row, in this thread (a worker without an event loop); the rows
        lost. A failed renewal is logged: the leases run on, the next beat tries again."""
        asked = self.keys()
        if not asked:
            return []
        try:
            still_held = renew(asked)
        except DB_ERRORS as exc:
            log.error("%s: renewing %d leases failed: %s", self.holder, len(asked), exc)
            return []
        return self.renewed(asked, still_held)


class LeasedLoop(Generic[K]):
    """Claims, heartbeat, wake-up and poll wait of a leased worker on an event loop (module docstring).
    Use it as an async context manager around the worker's claim loop."""

    def __init__(
        self,
        holder: str,
        *,
        renew: Callable[[list[K]], Awaitable[Collection[K]]],
        lease_s: float,
        poll_s: float,
        heartbeat_s: float = 0.0,
        release: Callable[[list[K]], Awaitable[object]] | None = None,
        what: str = "row",
    ) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be > 0")
        self.holder = holder
        self.leases: Leases[K] = Leases(holder, what)
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_interval(lease_s, heartbeat_s)
        self.poll_s = poll_s
        self._renew = renew
        self._release = release
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heart: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------------------------- holding

    def hold(self, key: K, on_lost: OnLost) -> None:
        self.leases.hold(key, on_lost)

    def drop(self, key: K) -> None:
        self.leases.drop(key)

    def __len__(self) -> int:
        return len(self.leases)

    async def claim(self, claim: Callable[[], Awaitable[Sequence[T]]]) -> list[T]:
        """Run one claim (a store transaction that takes rows under this holder's lease); a database
        error is logged and claims nothing (the next round tries again). The voice worker and the SMS
        sender claim through it."""
        try:
            return list(await claim())
        except DB_ERRORS as exc:
            log.error("%s: claim failed: %s", self.holder, exc)
            return []

    # ----------------------------------------------------------------------------------- heartbeat

    async def beat(self) -> list[K]:
        """One renewal of every held row; the rows lost (their `on_lost` called)."""
        asked = self.leases.keys()
        if not asked:
            return []
        try:
            still_held = await self._renew(asked)
        except DB_ERRORS as exc:
            log.error("%s: heartbeat failed: %s", self.holder, exc)
            return []
        return self.leases.renewed(asked, still_held)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.beat()

    # ----------------------------------------------------------------------------------- waiting

    def wake(self) -> None:
        """Claim now instead of at the next poll (new work, a free slot, stop). Safe from any thread;
        before the loop has started it does nothing (the first round claims anyway)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake.set)

    @property
    def wake_event(self) -> asyncio.Event:
        """The wake-up event itself, for code on the loop's own thread (wake() from anywhere else)."""
        return self._wake

    async def idle(self, within_s: float | None = None) -> None:
        """Wait for a wake-up or the poll interval (or `within_s`, when sooner), whichever comes first."""
        wait = self.poll_s if within_s is None else min(self.poll_s, within_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._wake.wait()
        self._wake.clear()

    # ----------------------------------------------------------------------------------- start, stop

    async def start(self) -> None:
        """Bind to the running loop (wake() works from now on) and start the heartbeat."""
        if self._heart is not None:
            raise RuntimeError(f"{self.holder}: the leased loop was already started")
        self._loop = asyncio.get_running_loop()
        self._heart = asyncio.create_task(self._heartbeats(), name=f"heartbeat-{self.holder}")

    async def stop(self) -> None:
        """Stop the heartbeat; release the rows still held (when a `release` was given; otherwise their
        leases expire and another worker takes them)."""
        heart, self._heart = self._heart, None
        if heart is not None:
            heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heart
        left = self.leases.clear()
        if not left:
            return
        if self._release is None:
            log.info("%s: %d leases left to expire", self.holder, len(left))
            return
        try:
            await self._release(left)
        except DB_ERRORS as exc:
            log.warning("%s: releasing %d leases failed (%s); they expire instead", self.holder, len(left),
                        exc)

    async def __aenter__(self) -> LeasedLoop[K]:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
