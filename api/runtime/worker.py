"""The voice worker: queued voice messages in the store -> SIP calls -> outcomes and charges in the store.

    worker = VoiceWorker(settings, db, pool, renderer, worker_id="node1:4242")
    task = asyncio.create_task(worker.run())
    gateway = Gateway(settings, db, wake=worker.wake)      # a submission wakes the worker at once
    ...
    await worker.stop()                                    # finish (or cancel) calls, release the rest

Nothing lives only in this process's memory: a message is claimed with a lease (store.queue.claim),
the lease is extended by heartbeats while the call runs, and every step is written to the store under
that lease. A worker killed mid-call stops heartbeating, its lease expires, and the next claim (by any
worker on any node sharing the database) takes the message again; `attempts` counts every claim.

Per message: the prompt is rebuilt from the message's `settings` JSON and its blobs (api.core.prompts) and
rendered through the renderer's content-addressed cache, the SIP URI comes from the trunk template, the call
runs under ivr.dialer.run_call, and the end is written by store.queue.complete_call (outcome, charge by
billing increment and the status callback in one transaction), or, for busy and unanswered calls with
retries left (ivr.dialer.retry_delay), by store.queue.retry_later.

This worker is the one scheduler of calls, and its limits live in the store, not in its memory: a claim
takes at most the node's free slots (ivr.dialer.free_slots: `dialer.max_concurrent`, the engine pool's
capacity), and, per owner account, locks the account row (store.queue.lock_due_accounts), counts the
account's voice messages leased by any worker (store.queue.in_flight) and lets ivr.dialer.admit decide how
many may start under the account's concurrency and calls-per-second limits (`call_limits`), keeping the
account's token bucket in its row, all in the claim's one transaction: any number of worker nodes on one
database respect one account's limits together (docs/operations.md, 'Per-account call limits').

Size: over 500 lines because the worker's pure parts (stored outcome, resumption after a crash, the account
limits it claims by) sit beside the one loop that uses them; they are small and tested on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.core.phones import sip_uri
from api.core.prompts import ClaimedMessage, call_options, prompt_spec
from api.core.settings import Settings
from api.fronts.ops import Metrics
from coded import statuses
from coded.errors import CodedError
from coded.statuses import answered_text
from ivr.dialer import (
    Bucket,
    CallJob,
    CallLimits,
    CallPlacer,
    CallReport,
    admit,
    free_slots,
    retry_delay,
    run_call,
)
from ivr.events import SipEvent
from ivr.fetch import UrlFetcher
from ivr.flow import DEFAULT_REPLAY_DIGIT
from ivr.identity import check_caller_id
from ivr.pool import EnginePool, EnginePoolUnavailable
from ivr.prompt import (
    PromptRenderer,
    PromptSpec,
    RenderedPrompt,
)
from ivr.settings import DialerSettings
from store import blobs, queue
from store.clock import utc_now
from store.db import Database
from store.errors import LeaseLost, StoreError
from store.lease import LeasedLoop
from store.models import Account, Message

log = logging.getLogger(__name__)
T = TypeVar("T")

TIMELINE_KINDS: Mapping[str, str] = {"ringing": "ringing", "answered": "answered", "digit": "key"}
"""SIP events written to a message's timeline as they happen (hung_up comes with the outcome)."""
SHUTDOWN = "shutdown"
LEASE_LOST = "lease lost"


def default_worker_id() -> str:
    """`<host>:<pid>`: unique among live workers sharing a database."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PromptSource(Protocol):
    """What the worker needs of ivr.prompt.PromptRenderer."""

    def render(self, spec: PromptSpec) -> RenderedPrompt: ...


# ------------------------------------------------------------------------------------------ pure parts


def store_outcome(report: CallReport) -> queue.CallRecord:
    """The store's record of an attempt: the client's code and text, and the exact answered duration
    (the text shows whole seconds; billing rounds the exact duration up by increment). A call that is
    not charged (`CallOutcome.charged`: failed on our side) is stored as not answered with duration 0:
    the store charges every answered call at least one increment."""
    outcome = report.outcome
    exact = report.flow.duration_s if outcome.charged and report.flow is not None else 0.0
    return queue.CallRecord(
        status_code=outcome.code, status_text=outcome.text, answered=outcome.charged,
        duration_s=max(exact, float(outcome.duration_s)), response=outcome.digit or "",
        sip_code=outcome.sip_code, sip_call_id=outcome.call_id)


REPLAY_KEY = DEFAULT_REPLAY_DIGIT
"""The key that replays the prompt (ivr.flow); it is never a response."""


def resumed_outcome(events: list[tuple[str, dt.datetime, str]], *,
                    response_wanted: bool) -> queue.CallRecord | None:
    """The outcome of a reclaimed message whose last attempt was answered, from its timeline
    ((kind, at, detail) in order), or None when the last attempt was not answered (dial it again).

    Rule (docs/calls.md, 'Engine or worker crash'): a call the callee answered is never dialled a
    second time. The timeline keeps what was known when the worker or its engine died: a response key
    (any key but 9) after the answer is the result (duration from answer to key, charged); otherwise
    the result is unknown and the message ends `Call failed (engine)`, not charged."""
    last_dial = max((i for i, (kind, _, _) in enumerate(events) if kind == "dialling"), default=-1)
    since = events[last_dial + 1:]
    answered_at = next((at for kind, at, _ in since if kind == "answered"), None)
    if last_dial < 0 or answered_at is None:
        return None
    if response_wanted:
        for kind, at, detail in since:
            if kind == "key" and at >= answered_at and detail and detail != REPLAY_KEY:
                seconds = max(0.0, (at - answered_at).total_seconds())
                text = answered_text(int(seconds), response_wanted=True, digit=detail)
                return queue.CallRecord(status_code=statuses.ANSWERED, status_text=text, answered=True,
                                        duration_s=seconds, response=detail)
    code, text = statuses.CALL_FAILED_ENGINE
    return queue.CallRecord(status_code=code, status_text=text, answered=False)


def call_limits(account: Account, dialer: DialerSettings) -> CallLimits:
    """An owner's call limits: its own columns, each defaulting to this node's dialer setting."""
    return CallLimits(
        max_concurrent=account.max_concurrent_calls or dialer.max_concurrent,
        calls_per_second=account.calls_per_second or dialer.calls_per_second)


def stored_bucket(account: Account) -> Bucket:
    """The owner's calls-per-second bucket as ivr.dialer keeps it (seconds since the epoch)."""
    at = account.dial_tokens_at
    return Bucket(account.dial_tokens or 0.0, None if at is None else at.timestamp())


def store_bucket(account: Account, bucket: Bucket) -> None:
    account.dial_tokens = bucket.tokens
    account.dial_tokens_at = None if bucket.at is None else dt.datetime.fromtimestamp(bucket.at, dt.UTC)


def claim_due(session: Session, worker_id: str, now: dt.datetime, lease_s: float, free: int,
              dialer: DialerSettings) -> tuple[list[Message], float | None]:
    """Lease up to `free` due voice messages to `worker_id` within their owners' call limits, in the
    caller's one write transaction; also the seconds until a calls-per-second limit that stopped this
    claim lets the next call go (None: none did).

    Per owner with due messages (rows locked in ID order: claimers of one account take turns on every
    node): its messages leased by any worker are counted, ivr.dialer.admit decides how many may start,
    and the account's token bucket is written back to its row."""
    claimed: list[Message] = []
    wait: float | None = None
    for account, due in queue.lock_due_accounts(session, now):
        if free == 0:
            break
        limits = call_limits(account, dialer)
        admission = admit(limits, in_flight=queue.in_flight(session, account.id, now), wanted=min(due, free),
                          bucket=stored_bucket(account), now=now.timestamp())
        if admission.wait_s is not None:
            wait = admission.wait_s if wait is None else min(wait, admission.wait_s)
        if admission.count == 0:
            continue
        got = queue.claim(session, worker_id, now, lease_s, admission.count, account_id=account.id)
        # a message another claimer holds locked (skip_locked) gives its token back
        bucket = admission.bucket
        store_bucket(account, Bucket(min(float(limits.burst), bucket.tokens + admission.count - len(got)),
                                     bucket.at))
        claimed.extend(got)
        free -= len(got)
    return claimed, wait


def failure_outcome(exc: CodedError) -> queue.CallRecord:
    """A message that could not be dialled at all: its error's code and text, nothing charged."""
    return queue.CallRecord(status_code=exc.code, status_text=exc.status_text, answered=False)


@dataclass
class _Active:
    """A message this worker holds: its task, and the event that cancels its call."""

    message: ClaimedMessage
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    dialled: bool = False
    answered: bool = False
    task: asyncio.Task[None] | None = None

    def stop(self, reason: str) -> None:
        if not self.cancel.is_set():
            self.reason = reason
            self.cancel.set()


# ------------------------------------------------------------------------------------------ the worker


class VoiceWorker:
    """Claims due voice messages and runs their calls; see the module docstring."""

    def __init__(self, settings: Settings, db: Database, pool: CallPlacer, renderer: PromptSource, *,
                 worker_id: str, now: Callable[[], dt.datetime] = utc_now,
                 metrics: Metrics | None = None) -> None:
        self.settings, self.db, self.pool, self.renderer = settings, db, pool, renderer
        self.worker_id = worker_id
        self.metrics = metrics
        self._now = now
        self._lease_s = settings.store.lease_s
        self._leased: LeasedLoop[str] = LeasedLoop(
            worker_id, renew=self._renew, lease_s=self._lease_s, poll_s=settings.worker.poll_interval_s,
            heartbeat_s=settings.worker.heartbeat_s, what="message")
        """Heartbeat, wake-up and poll wait (store.lease); a lost lease stops that message's call."""
        self._heartbeat_s = self._leased.heartbeat_s
        self._next_claim_s: float | None = None
        """When the calls-per-second limit of an account stopped the last claim: the seconds until it
        lets the next call go (claim again then rather than at the next poll)."""
        self._active: dict[str, _Active] = {}
        self._wake = self._leased.wake_event
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._cancel_on_stop = settings.worker.cancel_in_flight
        self._done = asyncio.Event()

    # --------------------------------------------------------------------------------------- public

    @property
    def in_flight(self) -> int:
        """Messages this worker holds now (being rendered, waiting for a slot, or on a call)."""
        return len(self._active)

    def wake(self) -> None:
        """New work was queued: claim now instead of at the next poll. Safe from any thread."""
        self._leased.wake()

    async def run(self) -> None:
        """Claim and work messages until stop(); then finish or cancel the calls in progress, give
        back every message not being called, and return."""
        self._loop = asyncio.get_running_loop()
        await self._leased.start()
        log.info("voice worker %s started (lease %.0f s, heartbeat %.1f s)", self.worker_id,
                 self._lease_s, self._heartbeat_s)
        try:
            while not self._stopping:
                await self._claim_round()
                await self._idle()
            await self._drain()
        finally:
            await self._leased.stop()
            self._done.set()
            log.info("voice worker %s stopped", self.worker_id)

    async def stop(self, *, cancel_in_flight: bool | None = None) -> None:
        """Stop claiming; calls in progress are finished (or cancelled: per the argument, else the
        `worker.cancel_in_flight` setting); waits until run() has returned when it is running."""
        if cancel_in_flight is not None:
            self._cancel_on_stop = cancel_in_flight
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            await self._done.wait()

    # ---------------------------------------------------------------------------------- claim loop

    def _free_slots(self) -> int:
        capacity = getattr(self.pool, "capacity", None)
        known = capacity if isinstance(capacity, int) else None
        return free_slots(self.settings.dialer.max_concurrent, known, len(self._active))

    async def _claim_round(self) -> None:
        self._next_claim_s = None
        free = self._free_slots()
        if free == 0:
            return
        for message in await self._leased.claim(lambda: self._write(self._claim, free)):
            self._start(message)

    def _claim(self, session: Session, free: int) -> list[ClaimedMessage]:
        """claim_due in the write transaction; notes when a calls-per-second limit lets the next call go."""
        claimed, self._next_claim_s = claim_due(session, self.worker_id, self._now(), self._lease_s, free,
                                                self.settings.dialer)
        return [ClaimedMessage.of(m) for m in claimed]

    def _start(self, message: ClaimedMessage) -> None:
        active = _Active(message)
        self._active[message.id] = active
        self._leased.hold(message.id, lambda: active.stop(LEASE_LOST))
        active.task = asyncio.create_task(self._work(active), name=f"message-{message.id}")
        active.task.add_done_callback(lambda _task: self._finished(message.id))
        log.info("worker %s claimed %s (%s to %s, attempt %d)", self.worker_id, message.id, message.kind,
                 message.phone, message.attempts)

    def _finished(self, message_id: str) -> None:
        self._active.pop(message_id, None)
        self._leased.drop(message_id)
        self._wake.set()  # a slot is free: claim again

    async def _idle(self) -> None:
        """Wait for a wake-up (a submission, a free slot, stop), the poll interval, or the moment a
        calls-per-second limit lets the next call go."""
        await self._leased.idle(within_s=self._next_claim_s)

    async def _drain(self) -> None:
        """Shutdown: cancel what is not yet dialled (or everything, by choice), wait for the rest."""
        for active in self._active.values():
            if self._cancel_on_stop or not active.dialled:
                active.stop(SHUTDOWN)
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if not tasks:
            return
        _done, late = await asyncio.wait(tasks, timeout=self.settings.worker.shutdown_timeout_s)
        if late:
            log.warning("worker %s: %d calls still running at shutdown; cancelling", self.worker_id,
                        len(late))
            for active in list(self._active.values()):
                active.stop(SHUTDOWN)
            grace = self.settings.dialer.hangup_grace_s + 5.0
            _done, hung = await asyncio.wait(late, timeout=grace)
            for task in hung:  # their leases expire and another worker reclaims them
                task.cancel()
            await asyncio.gather(*hung, return_exceptions=True)

    # -------------------------------------------------------------------------------- heartbeats

    async def _renew(self, ids: list[str]) -> set[str]:
        """store.lease's renewal: the messages still held (a lost one's call is stopped by its hold)."""
        return await self._write(queue.heartbeat, self.worker_id, ids, self._now(), self._lease_s)

    # ------------------------------------------------------------------------------- one message

    async def _work(self, active: _Active) -> None:
        message = active.message
        if message.attempts > 1:
            try:
                resumed = await asyncio.to_thread(self._resumed, message)
            except Exception as exc:
                await self._not_dialled(active, exc)
                return
            if resumed is not None:
                log.warning("message %s: its last attempt was answered and never finished (worker or "
                            "engine died); not dialled again: %s", message.id, resumed.status_text)
                await self._complete(active, resumed)
                return
        try:
            job = await asyncio.to_thread(self._prepare, message)
        except Exception as exc:
            await self._not_dialled(active, exc)
            return
        if active.cancel.is_set():
            await self._give_back(active, "not dialled: " + active.reason)
            return
        try:
            report = await self._call(active, job)
        except Exception as exc:
            await self._not_dialled(active, exc)
            return
        await self._settle(active, report)

    def _resumed(self, message: ClaimedMessage) -> queue.CallRecord | None:
        with self.db.read() as session:
            events = [(e.kind, e.at, e.detail) for e in queue.timeline(session, message.id)]
        return resumed_outcome(events, response_wanted=call_options(message)[0])

    def _prepare(self, message: ClaimedMessage) -> CallJob:
        """Rebuild and render the prompt, build the SIP URI: everything a call needs."""
        with self.db.read() as session:
            spec = prompt_spec(message, lambda digest: blobs.get_blob(session, digest))
        response, repeat = call_options(message)
        rendered = self.renderer.render(spec)
        sip = self.settings.sip
        uri = sip_uri(message.phone, sip.uri_template, sip.trunk_host)
        # a stored caller ID no From header can carry ends the message 500 ERROR: INVALID CALLERID
        return CallJob(job_id=message.id, uri=uri, prompt=rendered.path, response=response, repeat=repeat,
                       caller_id=check_caller_id(message.callerid))

    async def _call(self, active: _Active, job: CallJob) -> CallReport:
        message = active.message
        await self._write(lambda s: queue.progress(s, message.id, self.worker_id, self._now(),
                                                   status=statuses.CALLING, event="dialling", detail=job.uri))
        active.dialled = True
        self._count_attempt(message)
        timeline: asyncio.Queue[SipEvent | None] = asyncio.Queue()
        writer = asyncio.create_task(self._timeline(active, timeline), name=f"timeline-{message.id}")
        try:
            return await run_call(self.pool, job, self.settings.dialer, cancel=active.cancel,
                                  attempt=message.attempts, on_event=timeline.put_nowait)
        finally:
            timeline.put_nowait(None)
            await writer

    async def _timeline(self, active: _Active, events: asyncio.Queue[SipEvent | None]) -> None:
        """Write ringing / answered / key events to the message's timeline as they happen."""
        while (event := await events.get()) is not None:
            kind = TIMELINE_KINDS.get(event.kind)
            if kind is None or active.reason == LEASE_LOST:
                continue
            active.answered = active.answered or event.kind == "answered"
            at = self._now() - dt.timedelta(seconds=max(0.0, time.monotonic() - event.t))
            detail = event.digit or (f"SIP {event.sip_code}" if event.sip_code else "")
            try:
                await self._write(lambda s, k=kind, a=at, d=detail: queue.progress(
                    s, active.message.id, self.worker_id, a, event=k, detail=d))
            except LeaseLost:
                active.stop(LEASE_LOST)
            except (StoreError, SQLAlchemyError) as exc:
                log.error("message %s: timeline write failed: %s", active.message.id, exc)

    async def _settle(self, active: _Active, report: CallReport) -> None:
        """Write the attempt's end: retry later, give back (shutdown), or the final outcome and charge."""
        message, outcome = active.message, report.outcome
        if active.reason == LEASE_LOST:
            log.warning("message %s: lease lost during the call; its outcome (%s) is not ours to write",
                        message.id, outcome.text)
            return
        if active.reason == SHUTDOWN and outcome.code == statuses.CANCELLED[0] and not outcome.answered:
            await self._give_back(active, "shutdown during the call")
            return
        delay = retry_delay(outcome, message.attempts, self.settings.dialer)
        if delay is not None:
            await self._retry(active, report, delay)
            return
        await self._complete(active, store_outcome(report))

    async def _complete(self, active: _Active, outcome: queue.CallRecord) -> None:
        message = active.message
        increment = self.settings.store.billing_increment_s
        try:
            await self._write(lambda s: queue.complete_call(
                s, message.id, self.worker_id, outcome, self._now(), increment_s=increment))
        except LeaseLost:
            log.warning("message %s: lease lost before its outcome (%s) was written", message.id,
                        outcome.status_text)
            return
        log.info("message %s: %d %s", message.id, outcome.status_code, outcome.status_text)
        if self.metrics is not None:
            self.metrics.outcome(outcome.status_code)
            if outcome.answered:
                self.metrics.call_duration.observe(outcome.duration_s)

    async def _retry(self, active: _Active, report: CallReport, delay: float) -> None:
        message, outcome = active.message, report.outcome
        at = self._now() + dt.timedelta(seconds=delay)
        fields: dict[str, Any] = {"sip_code": outcome.sip_code} if outcome.sip_code is not None else {}
        with contextlib.suppress(LeaseLost):
            await self._write(lambda s: queue.retry_later(s, message.id, self.worker_id, self._now(), at,
                                                          reason=outcome.text, **fields))
            log.info("message %s: %s, retry at %s", message.id, outcome.text, at.isoformat())
            if self.metrics is not None:
                self.metrics.retries.inc()

    async def _give_back(self, active: _Active, reason: str, after_s: float = 0.0) -> None:
        """Return a held message to the queue, due in `after_s` (another worker, or this one restarted,
        dials it)."""
        if active.reason == LEASE_LOST:
            return
        message = active.message
        due = self._now() + dt.timedelta(seconds=after_s)
        try:
            await self._write(lambda s: queue.retry_later(s, message.id, self.worker_id, self._now(), due,
                                                          reason=reason))
        except (StoreError, SQLAlchemyError) as exc:  # the lease will expire instead
            log.warning("message %s: could not give it back (%s); its lease will expire", message.id, exc)

    async def _not_dialled(self, active: _Active, exc: Exception) -> None:
        """An attempt that failed before dialling: the message's own fault ends it with the error's code;
        anything else (the engine pool is gone, a database error) gives it back for later."""
        message = active.message
        if isinstance(exc, LeaseLost):
            return
        if isinstance(exc, EnginePoolUnavailable | StoreError | SQLAlchemyError):
            log.error("message %s: not dialled (%s); giving it back", message.id, exc)
            await self._give_back(active, f"not dialled: {type(exc).__name__}")
            return
        if not isinstance(exc, CodedError):  # a bug: keep the message, but do not spin on it
            log.exception("message %s: not dialled", message.id, exc_info=exc)
            later = self.settings.dialer.retry_delay_s
            await self._give_back(active, f"not dialled: {type(exc).__name__}", later)
            return
        log.warning("message %s: cannot be called: %s", message.id, exc.detail)
        await self._complete(active, failure_outcome(exc))

    def _count_attempt(self, message: ClaimedMessage) -> None:
        if self.metrics is None:
            return
        self.metrics.attempts.inc()
        if message.attempts == 1:
            waited = (self._now() - message.created_at).total_seconds()
            self.metrics.submission_latency.observe(max(0.0, waited))

    async def _write(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(session, *args)` in one write transaction, off the event loop."""
        def run() -> T:
            with self.db.transaction() as session:
                return work(session, *args)

        return await asyncio.to_thread(run)


# ------------------------------------------------------------------------------------ a worker node


def renderer_for(settings: Settings) -> PromptRenderer:
    """The prompt renderer of a worker: the data directory's cache, the configured audio and TTS."""
    return PromptRenderer(settings.cache_dir, fetcher=UrlFetcher(settings.fetch),
                          decode_limits=settings.decode, telephony=settings.telephony,
                          assemble_settings=settings.assemble, tts=settings.tts, prompt=settings.prompt)


@dataclass
class WorkerNode:
    """A running engine pool and the voice worker using it (see `running_worker`)."""

    pool: EnginePool
    worker: VoiceWorker
    task: asyncio.Task[None]


@asynccontextmanager
async def running_worker(settings: Settings, db: Database, *, worker_id: str = "",
                         metrics: Metrics | None = None) -> AsyncIterator[WorkerNode]:
    """Start the engine pool and a voice worker on this loop; on exit stop the worker (finishing or
    cancelling its calls per settings.worker) and then the pool."""
    pool = EnginePool(settings.sip)
    await pool.start()
    worker = VoiceWorker(settings, db, pool, renderer_for(settings), metrics=metrics,
                         worker_id=worker_id or settings.worker.worker_id or default_worker_id())
    task = asyncio.create_task(worker.run(), name="voice-worker")
    try:
        yield WorkerNode(pool, worker, task)
    finally:
        try:
            await worker.stop()
            await task
        finally:
            await pool.stop()
