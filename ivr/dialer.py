"""The dialer: one call attempt over the engine pool, and the scheduling rules of many.

`run_call` drives one call attempt: it places the call through `ivr.pool`, feeds the call's SIP
events (and its own timers) into `ivr.flow.CallFlow`, applies the actions the flow returns, and maps
the end to a `CallOutcome` (`ivr.outcome`).

The scheduling rules are pure (no sockets, no clocks: time is an argument) and unit-tested; the voice
worker (api/runtime/worker.py) is the one scheduler that applies them, inside its claim transaction so that
every node sharing the store respects one account's limits together (docs/DESIGN.md, decision log):
`take_token` (the calls-per-second token bucket, its state a `Bucket` the store keeps per account),
`admit` (how many attempts an account may start now: its concurrency and calls-per-second limits),
`free_slots` (how many calls one node may still hold), `retry_delay` (busy and unanswered calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from coded import statuses
from ivr.events import SipEvent
from ivr.flow import (
    Action,
    Answered,
    CallFlow,
    Cancel,
    CancelTimer,
    DigitReceived,
    Event,
    FarEndHungUp,
    Finished,
    FlowConfig,
    FlowResult,
    HangUp,
    Play,
    PlaybackFinished,
    StartTimer,
    StopPlayback,
    TimerFired,
)
from ivr.identity import check_caller_id
from ivr.outcome import CallOutcome, outcome_for
from ivr.settings import DialerSettings, SipSettings

log = logging.getLogger(__name__)

RETRYABLE_CODES = frozenset({statuses.BUSY[0], statuses.NO_ANSWER[0]})
"""Outcomes worth another attempt later: the callee may answer next time."""


@dataclass(frozen=True)
class CallJob:
    """One voice message to one recipient, as the dialer needs it."""

    job_id: str
    uri: str
    """Where to call: a SIP URI (the gateway builds it from the number and the trunk template)."""
    prompt: Path
    """The rendered telephony WAV (16-bit, 8 kHz, mono)."""
    response: bool = False
    repeat: int = 0
    caller_id: str = ""
    display_name: str = ""
    confirm_prompt: Path | None = None
    """Played after a response before hanging up; None: hang up at once."""
    headers: Mapping[str, str] = field(default_factory=dict)
    record_to: Path | None = None
    """Record what the callee sends (support, tests)."""


@dataclass(frozen=True)
class TimelineEntry:
    """One step of a call, for the message's timeline: seconds since the attempt started."""

    at_s: float
    kind: str
    detail: str = ""


@dataclass(frozen=True)
class CallReport:
    """The result of one attempt."""

    job: CallJob
    outcome: CallOutcome
    attempt: int
    timeline: tuple[TimelineEntry, ...]
    flow: FlowResult | None
    started_at: float = 0.0
    """time.monotonic() when the attempt began (the timeline counts from here): lets a caller line up
    the timelines of several calls, e.g. to check concurrency and call rates."""
    ended_at: float = 0.0
    """time.monotonic() when the attempt's outcome was settled (the call was over)."""


class CallPlacer(Protocol):
    """What the dialer needs of ivr.pool.EnginePool."""

    settings: SipSettings

    async def place_call(self, uri: str, *, caller_id: str = "", display_name: str = "",
                         headers: Mapping[str, str] | None = None) -> CallControl: ...


class CallControl(Protocol):
    ref: str

    def events(self) -> AsyncIterator[SipEvent]: ...
    async def play(self, wav: Path | str, loop: bool = False) -> None: ...
    async def stop_playback(self) -> None: ...
    async def record(self, path: Path | str) -> None: ...
    async def hangup(self, code: int | None = None) -> None: ...


# ------------------------------------------------------------------------------------------ pure parts


_TOKEN_SLACK = 1e-9
"""Float noise allowed when a waited-for token is taken (else a caller adding the wait to a large
clock reading could be told to wait a vanishing amount forever)."""


@dataclass(frozen=True)
class Bucket:
    """A token bucket's state: `tokens` left at `at` (seconds on any one clock); `at` None: full."""

    tokens: float = 0.0
    at: float | None = None


def take_token(bucket: Bucket, now: float, rate: float, burst: int) -> tuple[Bucket, float]:
    """Refill `bucket` to `now` at `rate` tokens a second (holding at most `burst`) and take one:
    (the new state, 0.0) when one was there, else (the new state, seconds until one is) having taken
    nothing. A clock reading before `at` refills nothing."""
    if bucket.at is None:
        tokens = float(burst)
    else:
        tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
    if tokens >= 1.0 - _TOKEN_SLACK:
        return Bucket(max(0.0, tokens - 1.0), now), 0.0
    return Bucket(tokens, now), (1.0 - tokens) / rate


class RateLimiter:
    """A token bucket in one process's memory (`take_token`): `rate` calls per second with bursts of
    `burst`. Pure: time is an argument."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._bucket = Bucket()

    def delay(self, now: float) -> float:
        """Take a token if one is there (returns 0.0), else return the seconds to wait and take nothing."""
        self._bucket, wait = take_token(self._bucket, now, self.rate, self.burst)
        return wait


@dataclass(frozen=True)
class CallLimits:
    """One account's limits: calls in flight together, attempts started per second (all nodes)."""

    max_concurrent: int
    calls_per_second: float

    def __post_init__(self) -> None:
        if self.max_concurrent < 1 or self.calls_per_second <= 0:
            raise ValueError("max_concurrent must be >= 1 and calls_per_second > 0")

    @property
    def burst(self) -> int:
        """The bucket holds one second of calls (at least one)."""
        return max(1, int(self.calls_per_second))


@dataclass(frozen=True)
class Admission:
    """What `admit` allows: `count` attempts to start now, the bucket after them, and `wait_s`: when
    the calls-per-second limit stopped it, the seconds until it lets the next one go (else None)."""

    count: int
    bucket: Bucket
    wait_s: float | None = None


def admit(limits: CallLimits, *, in_flight: int, wanted: int, bucket: Bucket, now: float) -> Admission:
    """How many of `wanted` attempts an account may start at `now`, with `in_flight` of its calls
    already held (by any node) and its calls-per-second `bucket`: never more than max_concurrent in
    flight, never a token the bucket does not have."""
    room = max(0, min(wanted, limits.max_concurrent - in_flight))
    count = 0
    while count < room:
        after, wait = take_token(bucket, now, limits.calls_per_second, limits.burst)
        if wait > 0:
            return Admission(count, after, wait)
        bucket, count = after, count + 1
    return Admission(count, bucket)


def free_slots(max_concurrent: int, capacity: int | None, held: int) -> int:
    """Calls one node may still take on: its `max_concurrent` setting, at most the engine pool's
    `capacity` (None: unknown), less the `held` messages it is working."""
    limit = max_concurrent if capacity is None else min(max_concurrent, capacity)
    return max(0, limit - held)


def retry_delay(outcome: CallOutcome, attempt: int, settings: DialerSettings) -> float | None:
    """Seconds until the next attempt, or None when this outcome is final (attempt counts from 1)."""
    if outcome.code not in RETRYABLE_CODES or attempt > settings.retries:
        return None
    return settings.retry_delay_s


# ------------------------------------------------------------------------------------------- one call


class _CallRun:
    """The state of one attempt while `run_call` drives it."""

    def __init__(self, job: CallJob, handle: CallControl, config: FlowConfig, started: float) -> None:
        self.job, self.handle = job, handle
        self.loop = asyncio.get_running_loop()
        self.started = started
        self.flow = CallFlow(config)
        self.inbox: asyncio.Queue[SipEvent | Event] = asyncio.Queue()
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.play_id: int | None = None
        self.play_sent_at = 0.0
        self.answered = False
        self.heard_back = False
        """Any provisional or final response came from the far end (not only our own timers)."""
        self.cancelled = False
        self.final: SipEvent | None = None
        self.finished_first = False
        """The flow had finished (result known) before the call's 'disconnected' arrived."""
        self.timeline: list[TimelineEntry] = []

    def note(self, kind: str, detail: str = "", at: float | None = None) -> None:
        moment = time.monotonic() if at is None else at
        self.timeline.append(TimelineEntry(round(moment - self.started, 3), kind, detail))

    def to_flow_event(self, event: SipEvent) -> Event | None:
        """Translate a SIP event into a flow event (None: nothing for the flow)."""
        if event.kind in ("ringing", "answered"):
            self.heard_back = True
        if event.kind == "answered":
            self.answered = True
            return Answered(event.t)
        if event.kind == "digit":
            return DigitReceived(event.t, event.digit)
        if event.kind == "playback_done":
            # an end-of-file emitted before our latest Play was sent belongs to an earlier player
            if self.play_id is None or event.t < self.play_sent_at:
                return None
            return PlaybackFinished(event.t, self.play_id)
        if event.kind == "disconnected":
            self.final = event
            self.finished_first = self.flow.result is not None
            return FarEndHungUp(event.t, event.sip_code or None)
        return None

    async def apply(self, action: Action) -> None:
        if isinstance(action, Play):
            wav = self.job.confirm_prompt if action.prompt == "confirm" else self.job.prompt
            self.play_id, self.play_sent_at = action.play_id, time.monotonic()
            self.note("play", f"{action.prompt} #{action.play_id}")
            await self.handle.play(wav or self.job.prompt)
        elif isinstance(action, StopPlayback):
            self.play_id = None
            self.note("stop", f"#{action.play_id}")
            await self.handle.stop_playback()
        elif isinstance(action, StartTimer):
            self.timers[action.timer_id] = self.loop.call_later(
                action.seconds, self.inbox.put_nowait, TimerFired(0.0, action.timer_id))
        elif isinstance(action, CancelTimer):
            timer = self.timers.pop(action.timer_id, None)
            if timer is not None:
                timer.cancel()
        elif isinstance(action, HangUp):
            self.note("hangup", action.reason)
            await self.handle.hangup()
        elif isinstance(action, Finished):
            self.note("finished", action.result.reason)

    async def feed(self, event: Event) -> None:
        for action in self.flow.handle(event):
            await self.apply(action)

    def cancel_timers(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()


def flow_config(job: CallJob, settings: DialerSettings) -> FlowConfig:
    """The flow of a job's call; raises ivr.flow.InvalidFlowConfig for a bad `repeat`."""
    return FlowConfig(repeat=job.repeat, response=job.response,
                      response_timeout_s=settings.response_timeout_s, max_call_s=settings.max_call_s,
                      confirm=job.confirm_prompt is not None)


EventSink = Callable[[SipEvent], None]
"""Sees every SIP event of a call as it arrives (a live timeline, metrics, tests); must not block."""


async def _pump(run: _CallRun, on_event: EventSink | None) -> None:
    async for event in run.handle.events():
        if on_event is not None:
            try:
                on_event(event)
            except Exception:
                log.exception("event sink failed on %s of call %s", event.kind, event.ref)
        await run.inbox.put(event)


def _describe(event: SipEvent) -> str:
    parts = [f"SIP {event.sip_code}" if event.sip_code else "", event.digit, event.source, event.reason]
    return " ".join(p for p in parts if p)


async def run_call(pool: CallPlacer, job: CallJob, settings: DialerSettings,
                   *, cancel: asyncio.Event | None = None, attempt: int = 1,
                   on_event: EventSink | None = None) -> CallReport:
    """Place one call, play the prompt as the flow says, capture the key; return the attempt's report.

    Raises ivr.flow.InvalidFlowConfig or ivr.identity.InvalidCallerId (500 ERROR: INVALID CALLERID)
    for a bad job, before anything is dialled. Never raises for what happens on the call: every ending
    (busy, far-end hang-up, engine crash, a peer that never answers) becomes an outcome. `cancel`, when
    set, ends the call as Cancelled; set before a slot was free, nothing is dialled at all. `on_event`
    sees each SIP event as it arrives.
    """
    config = flow_config(job, settings)  # a bad job fails here, before anything is dialled
    check_caller_id(job.caller_id)  # ... and so does a caller ID no From header can carry
    started = time.monotonic()
    handle = await _place(pool, job, cancel)
    if handle is None:
        return _cancelled_before_dialling(job, config, attempt, started)
    run = _CallRun(job, handle, config, started)
    run.note("dialling", job.uri)
    pump = asyncio.create_task(_pump(run, on_event), name=f"events-{handle.ref}")
    watcher = asyncio.create_task(_watch_cancel(run, cancel), name=f"cancel-{handle.ref}") if cancel else None
    deadline = pool.settings.ring_timeout_s + settings.max_call_s + settings.hangup_grace_s
    try:
        async with asyncio.timeout(deadline):
            await _drive(run)
    except TimeoutError:
        log.error("call %s (%s): no end after %.0f s; hanging up", handle.ref, job.uri, deadline)
        run.note("watchdog", "no disconnect")
        await handle.hangup()
    finally:
        run.cancel_timers()
        for task in (pump, watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return _report(run, attempt)


async def _place(pool: CallPlacer, job: CallJob, cancel: asyncio.Event | None) -> CallControl | None:
    """pool.place_call, unless `cancel` is set first (None then; nothing was dialled)."""
    placing = pool.place_call(job.uri, caller_id=job.caller_id, display_name=job.display_name,
                              headers=job.headers)
    if cancel is None:
        return await placing
    if cancel.is_set():
        placing.close()
        return None
    place = asyncio.ensure_future(placing)
    stop = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait((place, stop), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not place.done():
            place.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await place
    if place.cancelled():
        return None
    return place.result()  # placed just as the cancel came: the watcher hangs it up


def _cancelled_before_dialling(job: CallJob, config: FlowConfig, attempt: int, started: float) -> CallReport:
    outcome = outcome_for(answered=False, flow_result=None, sip_code=None, call_id=None, cancelled=True,
                          response_wanted=config.response)
    ended = time.monotonic()
    entry = TimelineEntry(round(ended - started, 3), "outcome", f"{outcome.code} {outcome.text}")
    return CallReport(job=job, outcome=outcome, attempt=attempt, timeline=(entry,), flow=None,
                      started_at=started, ended_at=ended)


async def _watch_cancel(run: _CallRun, cancel: asyncio.Event) -> None:
    await cancel.wait()
    run.cancelled = True
    await run.inbox.put(Cancel(0.0))


async def _drive(run: _CallRun) -> None:
    while run.final is None:
        item = await run.inbox.get()
        if isinstance(item, SipEvent):
            run.note(item.kind, _describe(item), at=item.t)
            if item.kind == "answered" and run.job.record_to is not None:
                await run.handle.record(run.job.record_to)
            flow_event = run.to_flow_event(item)
        else:
            flow_event = _stamp(item)
        if flow_event is not None:
            await run.feed(flow_event)


def _stamp(event: Event) -> Event:
    """Give a timer or cancel event the current time (they are created before they fire)."""
    now = time.monotonic()
    if isinstance(event, TimerFired):
        return TimerFired(now, event.timer_id)
    if isinstance(event, Cancel):
        return Cancel(now)
    return event


ENGINE_CRASHED = "engine crashed"
"""The reason ivr.pool gives the 'disconnected' of a call whose engine process died (ivr.pool.CRASHED)."""
NO_RESPONSE_CODES = frozenset({408, 487})
"""Final codes an unanswered call gets from our own timers (transaction timeout, ring-timeout CANCEL)."""
NO_RESPONSE = "no response from the far end"


def _report(run: _CallRun, attempt: int) -> CallReport:
    final = run.final
    sip_code = final.sip_code if final is not None and final.sip_code else None
    error = None
    if final is None:
        error = "no disconnect from the engine"
    elif final.kind == "disconnected" and sip_code is None and final.reason and not run.answered:
        error = final.reason
    call_id = final.call_id if final is not None and final.call_id else None
    unreachable = not run.heard_back and not run.cancelled and sip_code in NO_RESPONSE_CODES
    crashed = final is not None and final.reason == ENGINE_CRASHED and not run.finished_first
    outcome = outcome_for(answered=run.answered, flow_result=run.flow.result,
                          sip_code=None if unreachable else sip_code, call_id=call_id,
                          cancelled=run.cancelled, response_wanted=run.job.response,
                          error=NO_RESPONSE if unreachable else error, engine_failed=crashed)
    if unreachable:
        # nothing ever came back: a network failure, not a callee who let it ring; keep the code beside
        outcome = replace(outcome, sip_code=sip_code)
    ended = time.monotonic()
    run.note("outcome", f"{outcome.code} {outcome.text}", at=ended)
    return CallReport(job=run.job, outcome=outcome, attempt=attempt, timeline=tuple(run.timeline),
                      flow=run.flow.result, started_at=run.started, ended_at=ended)
