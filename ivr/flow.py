"""The IVR call flow: a pure state machine that turns call events into actions.

The dialer feeds every SIP event of one call into `CallFlow.handle` and applies the
actions it returns, in order. The flow never touches pjsua2, a clock, a thread or a
socket: time arrives as `now` on each event and timers are requested as actions, so
every rule (9 replays, repeat plays, the response timeout, the maximum call length,
the far end hanging up) is tested in microseconds. The rules are tabulated in
docs/flow.md.

Typical use by an adapter::

    flow = CallFlow(FlowConfig(repeat=1, response=True))
    for action in flow.handle(Answered(now=loop.time())):
        apply(action)   # Play -> start a player, StartTimer -> call_later, ...
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeAlias, assert_never

from ivr.errors import IvrError

logger = logging.getLogger(__name__)

DTMF_DIGITS = "0123456789*#ABCD"
"""Every symbol a DTMF key press can carry."""
DEFAULT_VALID_DIGITS = "0123456789*#"
"""The keys of a phone's dial pad; other symbols (A-D) are ignored unless configured."""
DEFAULT_REPLAY_DIGIT = "9"
"""The seed reserves 9 for 'repeat this message'."""
DEFAULT_RESPONSE_TIMEOUT_S = 8.0
DEFAULT_MAX_CALL_S = 300.0
DEFAULT_MAX_PLAYS = 10
MAX_REPEAT = 9
"""The largest `repeat` accepted: one full round (1 + repeat plays) fits the default play cap."""
MAX_PLAYS_LIMIT = 50

PromptName: TypeAlias = Literal["main", "confirm"]
TimerName: TypeAlias = Literal["response", "max_call"]
HangUpReason: TypeAlias = Literal["response", "timeout", "played", "max_duration", "cancelled"]
EndReason: TypeAlias = Literal["response", "timeout", "played", "far_end_hangup", "max_duration", "cancelled"]


class InvalidFlowConfig(IvrError, ValueError):
    """Call-flow parameters out of range (a job's `repeat`, a timeout, the set of digits)."""

    status_text = "ERROR: INVALID CALL FLOW SETTINGS"


class FlowState(StrEnum):
    """Where a call is in its flow."""

    WAITING = "waiting"
    """Not answered yet: only Answered, FarEndHungUp and Cancel matter."""
    PLAYING = "playing"
    """The main prompt is playing; keys are heard."""
    LISTENING = "listening"
    """All plays of the round are done; waiting for a key until the response timer fires."""
    CONFIRMING = "confirming"
    """A response was captured; the confirmation prompt is playing; keys are ignored."""
    FINISHED = "finished"
    """Finished was emitted; every later event is ignored."""


@dataclass(frozen=True)
class FlowConfig:
    """What one call's flow does, from the job (`repeat`, `response`) and the IVR settings.

    Raises InvalidFlowConfig when a value is out of range, so a bad job fails before dialling.
    """

    repeat: int = 0
    """Extra plays of the main prompt after the first (0..MAX_REPEAT), the seed's `repeat`."""
    response: bool = False
    """Listen for a key during and after the prompt (the seed's `response=1`)."""
    response_timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S
    """How long to wait for a key after the last play of a round."""
    max_call_s: float = DEFAULT_MAX_CALL_S
    """Hard cap on the answered call, timed from the answer."""
    confirm: bool = False
    """Play the 'confirm' prompt after a response, then hang up."""
    replay_digit: str = DEFAULT_REPLAY_DIGIT
    """The key that restarts the main prompt from the beginning."""
    valid_digits: str = DEFAULT_VALID_DIGITS
    """Keys the flow reacts to; any other symbol is ignored."""
    max_plays: int = DEFAULT_MAX_PLAYS
    """Cap on main-prompt plays started in one call, replays included (at least 1 + repeat)."""

    def __post_init__(self) -> None:
        self._check_counts()
        self._check_times()
        self._check_digits()

    def _check_counts(self) -> None:
        if not _is_int(self.repeat) or not 0 <= self.repeat <= MAX_REPEAT:
            raise InvalidFlowConfig(f"repeat must be 0..{MAX_REPEAT}, got {self.repeat!r}")
        if not _is_int(self.max_plays) or not 1 + self.repeat <= self.max_plays <= MAX_PLAYS_LIMIT:
            raise InvalidFlowConfig(
                f"max_plays must be {1 + self.repeat}..{MAX_PLAYS_LIMIT}, got {self.max_plays!r}"
            )

    def _check_times(self) -> None:
        for name in ("response_timeout_s", "max_call_s"):
            value = getattr(self, name)
            if not value > 0 or value == float("inf"):
                raise InvalidFlowConfig(f"{name} must be a positive finite number, got {value!r}")

    def _check_digits(self) -> None:
        if not self.valid_digits or any(d not in DTMF_DIGITS for d in self.valid_digits):
            raise InvalidFlowConfig(f"valid_digits must be DTMF symbols, got {self.valid_digits!r}")
        if len(self.replay_digit) != 1 or self.replay_digit not in self.valid_digits:
            raise InvalidFlowConfig(f"replay_digit must be one of valid_digits, got {self.replay_digit!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Events: what happened on the call. `now` is seconds on any monotonic clock, the same for one call.


@dataclass(frozen=True)
class Answered:
    """The callee answered (200 OK, media up)."""

    now: float


@dataclass(frozen=True)
class PlaybackFinished:
    """The player started by Play(play_id) reached its end."""

    now: float
    play_id: int


@dataclass(frozen=True)
class DigitReceived:
    """One key press (already merged across RFC 4733, SIP INFO and in-band detection)."""

    now: float
    digit: str


@dataclass(frozen=True)
class TimerFired:
    """The timer started by StartTimer(timer_id, ...) expired."""

    now: float
    timer_id: int


@dataclass(frozen=True)
class FarEndHungUp:
    """The call ended from the other side (BYE, or a final failure response before answer)."""

    now: float
    sip_code: int | None = None
    """The SIP code the adapter saw, for the log only: the outcome takes it separately."""


@dataclass(frozen=True)
class Cancel:
    """Stop this call now: an operator cancelled the job or the process is shutting down."""

    now: float


Event: TypeAlias = Answered | PlaybackFinished | DigitReceived | TimerFired | FarEndHungUp | Cancel


# Actions: what the adapter must do, in the order given.


@dataclass(frozen=True)
class Play:
    """Start playing a prompt to the callee; report its end as PlaybackFinished(play_id)."""

    play_id: int
    prompt: PromptName


@dataclass(frozen=True)
class StopPlayback:
    """Stop the player of Play(play_id); no PlaybackFinished is expected for it (one is ignored)."""

    play_id: int


@dataclass(frozen=True)
class StartTimer:
    """Arm a one-shot timer; report its expiry as TimerFired(timer_id). Ids are never reused."""

    timer_id: int
    name: TimerName
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    """Disarm a timer; a TimerFired for it that was already queued is ignored."""

    timer_id: int
    name: TimerName


@dataclass(frozen=True)
class HangUp:
    """End the call from our side (BYE, or CANCEL when not answered)."""

    reason: HangUpReason


@dataclass(frozen=True)
class FlowResult:
    """How the flow ended: the key pressed, why it ended, and when (on the events' clock)."""

    digit: str | None
    """The response captured, or None; kept whatever ended the call afterwards."""
    reason: EndReason
    """Why the call ended."""
    answered_at: float | None
    """`now` of Answered; None when the call was never answered."""
    ended_at: float
    """`now` of the event that ended the flow."""
    plays: int
    """Main-prompt plays started (replays included, the confirmation prompt not)."""

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def duration_s(self) -> float:
        """Seconds from answer to the end of the flow (0.0 when never answered)."""
        if self.answered_at is None:
            return 0.0
        return max(0.0, self.ended_at - self.answered_at)


@dataclass(frozen=True)
class Finished:
    """The flow is over: record the result. Always the last action; nothing follows it."""

    result: FlowResult


Action: TypeAlias = Play | StopPlayback | StartTimer | CancelTimer | HangUp | Finished


class CallFlow:
    """The state machine of one call: `handle(event)` returns the actions to apply, in order.

    Exactly one Finished is ever returned, last in its list; after it every event returns [].
    Before Finished the flow stops its playback and cancels its timers, so an adapter that
    applies every action leaves nothing running.
    """

    def __init__(self, config: FlowConfig) -> None:
        self._config = config
        self._state = FlowState.WAITING
        self._last_play_id = 0
        self._active_play: int | None = None
        self._last_timer_id = 0
        self._timers: dict[int, TimerName] = {}
        self._plays_started = 0
        self._repeats_due = 0
        self._digit: str | None = None
        self._answered_at: float | None = None
        self._result: FlowResult | None = None

    @property
    def config(self) -> FlowConfig:
        return self._config

    @property
    def state(self) -> FlowState:
        return self._state

    @property
    def digit(self) -> str | None:
        """The response captured so far, or None."""
        return self._digit

    @property
    def reason(self) -> EndReason | None:
        """Why the call ended, once finished; None before."""
        return self._result.reason if self._result else None

    @property
    def plays_started(self) -> int:
        """Main-prompt plays started so far."""
        return self._plays_started

    @property
    def result(self) -> FlowResult | None:
        """The result carried by Finished, once finished."""
        return self._result

    @property
    def finished(self) -> bool:
        return self._state is FlowState.FINISHED

    def handle(self, event: Event) -> list[Action]:
        """Apply one event; return the actions it causes (often none)."""
        if self._state is FlowState.FINISHED:
            return []
        match event:
            case Answered():
                return self._on_answered(event)
            case PlaybackFinished():
                return self._on_playback_finished(event)
            case DigitReceived():
                return self._on_digit(event)
            case TimerFired():
                return self._on_timer(event)
            case FarEndHungUp():
                logger.debug("far end hung up (SIP %s) in state %s", event.sip_code, self._state)
                return self._finish(event.now, "far_end_hangup")
            case Cancel():
                return self._finish(event.now, "cancelled")
            case _:
                assert_never(event)

    def _on_answered(self, event: Answered) -> list[Action]:
        if self._state is not FlowState.WAITING:
            return []
        self._answered_at = event.now
        self._state = FlowState.PLAYING
        self._repeats_due = self._config.repeat
        return [self._play("main"), self._start_timer("max_call", self._config.max_call_s)]

    def _on_playback_finished(self, event: PlaybackFinished) -> list[Action]:
        if event.play_id != self._active_play:
            return []
        self._active_play = None
        if self._state is FlowState.CONFIRMING:
            return self._finish(event.now, "response")
        if self._repeats_due > 0 and self._plays_started < self._config.max_plays:
            self._repeats_due -= 1
            return [self._play("main")]
        return self._end_of_round(event.now)

    def _end_of_round(self, now: float) -> list[Action]:
        if not self._config.response:
            return self._finish(now, "played")
        self._state = FlowState.LISTENING
        return [self._start_timer("response", self._config.response_timeout_s)]

    def _on_digit(self, event: DigitReceived) -> list[Action]:
        if self._state not in (FlowState.PLAYING, FlowState.LISTENING):
            return []
        if len(event.digit) != 1 or event.digit not in self._config.valid_digits:
            return []
        if event.digit == self._config.replay_digit:
            return self._replay()
        if not self._config.response:
            return []
        return self._capture(event)

    def _replay(self) -> list[Action]:
        if self._plays_started >= self._config.max_plays:
            logger.info("replay refused: %d plays already started", self._plays_started)
            return []
        actions = self._stop_playback() + self._cancel_timers("response")
        self._state = FlowState.PLAYING
        self._repeats_due = self._config.repeat
        actions.append(self._play("main"))
        return actions

    def _capture(self, event: DigitReceived) -> list[Action]:
        self._digit = event.digit
        actions = self._stop_playback() + self._cancel_timers("response")
        if not self._config.confirm:
            return actions + self._finish(event.now, "response")
        self._state = FlowState.CONFIRMING
        actions.append(self._play("confirm"))
        return actions

    def _on_timer(self, event: TimerFired) -> list[Action]:
        name = self._timers.pop(event.timer_id, None)
        if name is None:
            return []
        return self._finish(event.now, "max_duration" if name == "max_call" else "timeout")

    def _finish(self, now: float, reason: EndReason) -> list[Action]:
        actions = self._stop_playback() + self._cancel_timers(None)
        if reason != "far_end_hangup":
            actions.append(HangUp(reason))
        self._state = FlowState.FINISHED
        self._result = FlowResult(
            digit=self._digit, reason=reason, answered_at=self._answered_at, ended_at=now,
            plays=self._plays_started,
        )
        actions.append(Finished(self._result))
        return actions

    def _play(self, prompt: PromptName) -> Play:
        self._last_play_id += 1
        self._active_play = self._last_play_id
        if prompt == "main":
            self._plays_started += 1
        return Play(self._last_play_id, prompt)

    def _stop_playback(self) -> list[Action]:
        if self._active_play is None:
            return []
        play_id, self._active_play = self._active_play, None
        return [StopPlayback(play_id)]

    def _start_timer(self, name: TimerName, seconds: float) -> StartTimer:
        self._last_timer_id += 1
        self._timers[self._last_timer_id] = name
        return StartTimer(self._last_timer_id, name, seconds)

    def _cancel_timers(self, name: TimerName | None) -> list[Action]:
        """Cancel the armed timers called `name` (all of them when None)."""
        doomed = [(tid, n) for tid, n in self._timers.items() if name is None or n == name]
        for tid, _ in doomed:
            del self._timers[tid]
        return [CancelTimer(tid, n) for tid, n in doomed]
