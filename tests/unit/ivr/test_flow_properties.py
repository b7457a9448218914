"""Property tests of the call flow: random event sequences against a model of the adapter.

`Adapter` applies every action the flow returns (players, timers) and checks the invariants
after every event. A hypothesis state machine throws arbitrary events at it (stale ids,
repeated answers, keys before the answer); a simulation drives whole calls with play lengths,
timers and key presses on one timeline, including late timer and player reports.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ivr.flow import (
    DTMF_DIGITS,
    MAX_PLAYS_LIMIT,
    MAX_REPEAT,
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
    FlowState,
    HangUp,
    Play,
    PlaybackFinished,
    StartTimer,
    StopPlayback,
    TimerFired,
    TimerName,
)


@st.composite
def configs(draw: st.DrawFn) -> FlowConfig:
    repeat = draw(st.integers(0, 1) | st.integers(0, MAX_REPEAT))
    replay = draw(st.sampled_from("9*#"))
    extra = draw(st.text(alphabet=DTMF_DIGITS, max_size=16))
    return FlowConfig(
        repeat=repeat,
        response=draw(st.booleans()),
        response_timeout_s=draw(st.floats(0.5, 30.0)),
        max_call_s=draw(st.floats(1.0, 600.0)),
        confirm=draw(st.booleans()),
        replay_digit=replay,
        valid_digits="".join(sorted(set(extra + replay))),
        max_plays=draw(st.integers(1 + repeat, min(1 + repeat + 5, MAX_PLAYS_LIMIT))),
    )


class Adapter:
    """What a dialer does with the actions, plus the invariants every action list must keep."""

    def __init__(self, config: FlowConfig) -> None:
        self.flow = CallFlow(config)
        self.now = 0.0
        self.active_plays: set[int] = set()
        self.armed: dict[int, TimerName] = {}
        self.seen_plays: set[int] = set()
        self.seen_timers: set[int] = set()
        self.main_plays = 0
        self.finished = 0
        self.hangups = 0

    def feed(self, event: Event) -> list[Action]:
        """Deliver an event (a PlaybackFinished or TimerFired takes the player or timer down first)."""
        if isinstance(event, PlaybackFinished):
            self.active_plays.discard(event.play_id)
        if isinstance(event, TimerFired):
            self.armed.pop(event.timer_id, None)
        self.now = event.now
        was_finished = self.flow.finished
        actions = self.flow.handle(event)
        if was_finished:
            assert actions == []
        for index, action in enumerate(actions):
            self.apply(action, last=index == len(actions) - 1)
        self.check()
        return actions

    def apply(self, action: Action, *, last: bool) -> None:
        match action:
            case Play(play_id, prompt):
                assert play_id not in self.seen_plays and not self.active_plays
                self.seen_plays.add(play_id)
                self.active_plays.add(play_id)
                self.main_plays += prompt == "main"
            case StopPlayback(play_id):
                self.active_plays.remove(play_id)
            case StartTimer(timer_id, name, seconds):
                assert timer_id not in self.seen_timers and seconds > 0
                self.seen_timers.add(timer_id)
                self.armed[timer_id] = name
            case CancelTimer(timer_id, name):
                assert self.armed.pop(timer_id) == name
            case HangUp():
                self.hangups += 1
                assert not self.active_plays and not self.armed  # stopped and cancelled first
            case Finished():
                assert last
                self.finished += 1
                self.check_result()

    def check_result(self) -> None:
        result = self.flow.result
        assert result is not None
        assert not self.active_plays and not self.armed
        if result.reason == "response":
            assert result.digit is not None
        assert (result.reason == "far_end_hangup") == (self.hangups == 0)
        assert result.plays == self.main_plays == self.flow.plays_started
        assert result.ended_at == self.now

    def check(self) -> None:
        flow, config = self.flow, self.flow.config
        assert self.finished <= 1 and self.hangups <= 1
        assert self.finished == int(flow.finished)
        assert self.main_plays == flow.plays_started <= config.max_plays
        assert flow.digit != config.replay_digit
        if not config.response:
            assert flow.digit is None
        self.check_progress()

    def check_progress(self) -> None:
        """Something is always pending that will move the flow on: a play, a timer or the answer."""
        state = self.flow.state
        names = sorted(self.armed.values())
        if state in (FlowState.WAITING, FlowState.FINISHED):
            assert not self.active_plays and not names
            return
        assert names.count("max_call") == 1 and names.count("response") <= 1
        if state is FlowState.LISTENING:
            assert not self.active_plays and "response" in names
        else:
            assert len(self.active_plays) == 1 and "response" not in names


rolls = st.integers(0, 5)
"""Rare events happen when the roll is 0, so that long calls are explored too."""
digits = st.sampled_from([*DTMF_DIGITS, "x", "", "99"])


class FlowMachine(RuleBasedStateMachine):
    """Arbitrary event sequences, stale and duplicate ones included."""

    def __init__(self) -> None:
        super().__init__()
        self.adapter = Adapter(FlowConfig())

    @initialize(config=configs())
    def setup(self, config: FlowConfig) -> None:
        self.adapter = Adapter(config)

    @property
    def flow(self) -> CallFlow:
        return self.adapter.flow

    def later(self, dt: float) -> float:
        return self.adapter.now + dt

    @rule(dt=st.floats(0, 5), roll=rolls)
    def answer(self, dt: float, roll: int) -> None:
        if roll and self.flow.state is not FlowState.WAITING:
            return
        self.adapter.feed(Answered(self.later(dt)))

    @precondition(lambda self: bool(self.adapter.active_plays))
    @rule(dt=st.floats(0, 30))
    def playback_ends(self, dt: float) -> None:
        play_id = next(iter(self.adapter.active_plays))
        self.adapter.feed(PlaybackFinished(self.later(dt), play_id))

    @rule(play_id=st.integers(0, 40), roll=rolls)
    def stale_playback_end(self, play_id: int, roll: int) -> None:
        if roll or play_id in self.adapter.active_plays:
            return
        before = self.flow.state
        assert self.adapter.feed(PlaybackFinished(self.adapter.now, play_id)) == []
        assert self.flow.state is before

    @rule(dt=st.floats(0, 10), digit=digits)
    def key(self, dt: float, digit: str) -> None:
        self.adapter.feed(DigitReceived(self.later(dt), digit))

    @rule(dt=st.floats(0, 10))
    def replay_key(self, dt: float) -> None:
        self.adapter.feed(DigitReceived(self.later(dt), self.flow.config.replay_digit))

    @precondition(lambda self: bool(self.adapter.armed))
    @rule(data=st.data(), roll=rolls)
    def timer_fires(self, data: st.DataObject, roll: int) -> None:
        timer_id = data.draw(st.sampled_from(sorted(self.adapter.armed)))
        if self.adapter.armed[timer_id] == "max_call" and roll:
            return
        self.adapter.feed(TimerFired(self.adapter.now, timer_id))

    @rule(timer_id=st.integers(0, 40), roll=rolls)
    def stale_timer(self, timer_id: int, roll: int) -> None:
        if roll or timer_id in self.adapter.armed:
            return
        before = self.flow.state
        assert self.adapter.feed(TimerFired(self.adapter.now, timer_id)) == []
        assert self.flow.state is before

    @rule(dt=st.floats(0, 10), code=st.none() | st.integers(200, 699), roll=rolls)
    def far_end_hangs_up(self, dt: float, code: int | None, roll: int) -> None:
        if not roll:
            self.adapter.feed(FarEndHungUp(self.later(dt), code))

    @rule(roll=rolls)
    def cancel(self, roll: int) -> None:
        if not roll:
            self.adapter.feed(Cancel(self.adapter.now))

    @invariant()
    def invariants_hold(self) -> None:
        self.adapter.check()


TestFlowMachine = FlowMachine.TestCase
TestFlowMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def run_call(config: FlowConfig, seed: int) -> Adapter:
    """Drive one call to its end on a simulated timeline: plays take time, keys come at random.

    A cancelled timer or a stopped player still reports, late, one time in three (the race a
    real adapter has), and the far end may hang up at a random moment.
    """
    rng = random.Random(seed)
    adapter = Adapter(config)
    queue: list[tuple[float, int, Event]] = []
    order = itertools.count()

    def push(at: float, event: Event) -> None:
        heapq.heappush(queue, (at, next(order), event))

    push(rng.uniform(0, 20), Answered(0.0))
    for _ in range(rng.randint(0, 8)):
        push(rng.uniform(0, 150), DigitReceived(0.0, rng.choice("0123456789*#99")))
    if rng.random() < 0.3:
        push(rng.uniform(0, 200), FarEndHungUp(0.0))
    dead: set[int] = set()
    while queue and not adapter.flow.finished:
        at, _, event = heapq.heappop(queue)
        if isinstance(event, TimerFired | PlaybackFinished) and _ident(event) in dead and rng.random() < 0.67:
            continue
        for action in adapter.feed(dataclasses.replace(event, now=at)):
            _schedule(action, at, rng, push, dead)
    return adapter


def _ident(event: TimerFired | PlaybackFinished) -> int:
    return event.timer_id if isinstance(event, TimerFired) else -event.play_id


def _schedule(
    action: Action, at: float, rng: random.Random, push: Callable[[float, Event], None], dead: set[int]
) -> None:
    match action:
        case Play(play_id, prompt):
            push(at + rng.uniform(0.5, 4.0 if prompt == "confirm" else 25.0), PlaybackFinished(0.0, play_id))
        case StartTimer(timer_id, _, seconds):
            push(at + seconds, TimerFired(0.0, timer_id))
        case CancelTimer(timer_id):
            dead.add(timer_id)
        case StopPlayback(play_id):
            dead.add(-play_id)


@settings(max_examples=400, deadline=None)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_every_simulated_call_ends_within_its_cap(config: FlowConfig, seed: int) -> None:
    adapter = run_call(config, seed)
    result = adapter.flow.result
    assert result is not None and adapter.finished == 1
    assert result.answered or result.reason == "far_end_hangup"
    assert result.duration_s <= config.max_call_s + 1e-9
    assert result.plays <= config.max_plays
    if result.digit is not None:
        assert config.response and result.digit != config.replay_digit
