"""Running a validated IVR script (ivr.script) on a call: `ScriptRun` feeds ivr.flow's events to one
CallFlow per step, so every call rule (9 replays, repeats, the response timer, the call cap, far-end
hang-up) is flow's; the runner only maps play and timer ids, moves between steps, retries a step on no
or invalid input and records answers. The status helpers give the multi-step answers (`ANSWERS: q1=1,
q2=3`) and keep the seed's `R = 1` for a one-step script."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from coded.statuses import ANSWERED_PLAIN, answered_text
from ivr.flow import (
    DEFAULT_MAX_PLAYS,
    DEFAULT_REPLAY_DIGIT,
    DEFAULT_VALID_DIGITS,
    Action,
    Answered,
    CallFlow,
    CancelTimer,
    EndReason,
    Event,
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
from ivr.script import Prompt, Script, Step

# --- the runner ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepPlay:
    """Play a step's prompt (in place of flow's `Play`); report its end as PlaybackFinished(play_id)."""

    play_id: int
    step_id: str
    prompt: Prompt


@dataclass(frozen=True)
class RecordAnswer:
    """Store `digit` as the answer named `name` (the step's `record`)."""

    name: str
    digit: str
    step_id: str


ScriptAction: TypeAlias = Action | StepPlay | RecordAnswer


class ScriptRun:
    """One call through one script: `handle(event)` returns the actions to apply, in order.

    The contract is CallFlow's: exactly one Finished, last; playback stopped and timers cancelled
    before it; nothing after it. `answers` maps each step's `record` name to the digit pressed.
    """

    def __init__(self, script: Script, now: float = 0.0) -> None:
        self._script = script
        self.created_at = now
        self._answered_at: float | None = None
        self._answers: dict[str, str] = {}
        self._last_digit: str | None = None
        self._plays = 0
        self._last_play_id = 0
        self._last_timer_id = 0
        self._result: FlowResult | None = None
        self._step = script.start
        self._no_input_left = self._step.retries_no_input
        self._invalid_left = self._step.retries_invalid
        self._flow = CallFlow(self._config(script.max_call_s))
        self._plays_map: dict[int, int] = {}
        """Global play id -> the current step flow's play id (and timers likewise)."""
        self._timers_map: dict[int, int] = {}
        self._local_plays: dict[int, int] = {}
        self._local_timers: dict[int, int] = {}

    @property
    def script(self) -> Script:
        return self._script

    @property
    def step(self) -> Step:
        """The step being played (the last one, once finished)."""
        return self._step

    @property
    def answers(self) -> dict[str, str]:
        return dict(self._answers)

    @property
    def result(self) -> FlowResult | None:
        return self._result

    @property
    def finished(self) -> bool:
        return self._result is not None

    def handle(self, event: Event) -> list[ScriptAction]:
        if self._result is not None:
            return []
        local: Event = event
        if isinstance(event, PlaybackFinished):
            if event.play_id not in self._plays_map:
                return []
            local = PlaybackFinished(event.now, self._plays_map[event.play_id])
        elif isinstance(event, TimerFired):
            if event.timer_id not in self._timers_map:
                return []
            local = TimerFired(event.now, self._timers_map[event.timer_id])
        elif isinstance(event, Answered) and self._answered_at is None:
            self._answered_at = event.now
        return self._translate(self._flow.handle(local), event.now)

    def _config(self, max_call_s: float) -> FlowConfig:
        step = self._step
        return FlowConfig(
            repeat=step.repeat, response=step.type == "gather", response_timeout_s=step.timeout_s,
            max_call_s=max_call_s, replay_digit=DEFAULT_REPLAY_DIGIT, valid_digits=DEFAULT_VALID_DIGITS,
            max_plays=DEFAULT_MAX_PLAYS,
        )

    def _translate(self, actions: list[Action], now: float) -> list[ScriptAction]:
        out: list[ScriptAction] = []
        for action in actions:
            match action:
                case Play(play_id):
                    assert self._step.prompt is not None
                    self._last_play_id += 1
                    self._plays_map[self._last_play_id] = play_id
                    self._local_plays[play_id] = self._last_play_id
                    self._plays += 1
                    out.append(StepPlay(self._last_play_id, self._step.id, self._step.prompt))
                case StopPlayback(play_id):
                    gid = self._local_plays.pop(play_id)
                    del self._plays_map[gid]
                    out.append(StopPlayback(gid))
                case StartTimer(timer_id, name, seconds):
                    self._last_timer_id += 1
                    self._timers_map[self._last_timer_id] = timer_id
                    self._local_timers[timer_id] = self._last_timer_id
                    out.append(StartTimer(self._last_timer_id, name, seconds))
                case CancelTimer(timer_id, name):
                    gid = self._local_timers.pop(timer_id)
                    del self._timers_map[gid]
                    out.append(CancelTimer(gid, name))
                case HangUp():
                    pass  # the step's end is decided below, from its result
                case Finished(result):
                    out.extend(self._step_over(result, now))
        return out

    def _step_over(self, result: FlowResult, now: float) -> list[ScriptAction]:
        step = self._step
        match result.reason:
            case "far_end_hangup" | "cancelled" | "max_duration":
                return self._finish(now, result.reason)
            case "played":
                return self._go(step.next, now)
            case "timeout":
                if self._no_input_left > 0:
                    self._no_input_left -= 1
                    return self._enter(now)
                return self._finish(now, "timeout")
        digit = result.digit
        assert digit is not None
        if digit not in step.digits:
            if self._invalid_left > 0:
                self._invalid_left -= 1
                return self._enter(now)
            return self._finish(now, "timeout")
        self._last_digit = digit
        out: list[ScriptAction] = []
        if step.record:
            self._answers[step.record] = digit
            out.append(RecordAnswer(step.record, digit, step.id))
        return out + self._go(step.target(digit), now)

    def _go(self, target: str | None, now: float) -> list[ScriptAction]:
        if target is None or self._script.step(target).type == "end":
            if target is not None:
                self._step = self._script.step(target)
            return self._finish(now, "response" if self._last_digit is not None else "played")
        self._step = self._script.step(target)
        self._no_input_left = self._step.retries_no_input
        self._invalid_left = self._step.retries_invalid
        return self._enter(now)

    def _enter(self, now: float) -> list[ScriptAction]:
        """Start the current step (again) with a fresh flow, on what is left of the call's time."""
        assert self._answered_at is not None
        left = self._script.max_call_s - (now - self._answered_at)
        if left <= 0:
            return self._finish(now, "max_duration")
        for ids in (self._plays_map, self._local_plays, self._timers_map, self._local_timers):
            ids.clear()  # the finished step flow stopped its player and timers; late reports are stale
        self._flow = CallFlow(self._config(left))
        return self._translate(self._flow.handle(Answered(now)), now)

    def _finish(self, now: float, reason: EndReason) -> list[ScriptAction]:
        out: list[ScriptAction] = []
        if reason != "far_end_hangup":
            out.append(HangUp(reason))
        self._result = FlowResult(
            digit=self._last_digit, reason=reason, answered_at=self._answered_at, ended_at=now,
            plays=self._plays,
        )
        out.append(Finished(self._result))
        return out


# --- status --------------------------------------------------------------------------------------


def answers_text(answers: Mapping[str, str], script: Script | None = None) -> str:
    """The multi-step answers field, e.g. `ANSWERS: q1=1,q2=3` (in script order when given); '' if none."""
    order = list(script.records) if script else sorted(answers)
    shown = [f"{name}={answers[name]}" for name in order if name in answers]
    return "ANSWERS: " + ",".join(shown) if shown else ""


def is_one_step(script: Script) -> bool:
    """A script whose single gather step is the seed's one question (status keeps `R = D`)."""
    return sum(s.type == "gather" for s in script.steps) == 1


def script_status_text(script: Script, result: FlowResult, answers: Mapping[str, str]) -> str:
    """The 200 text of an answered scripted call: the seed's `R = 1` for one question, else plain.

    Multi-step answers go to their own field (`answers_text`)."""
    seconds = int(result.duration_s)
    if is_one_step(script):
        return answered_text(seconds, response_wanted=True, digit=result.digit)
    if not answers and any(s.type == "gather" for s in script.steps):
        return answered_text(seconds, response_wanted=True, digit=None)
    return ANSWERED_PLAIN.format(N=seconds)
