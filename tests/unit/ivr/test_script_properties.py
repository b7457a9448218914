"""Property tests of IVR scripts: random valid scripts, mutated ones, one-step scripts against the flow.

`script_dicts` builds random valid scripts: say/play/gather steps that fall through to the next,
gathers that branch anywhere (backwards too: every loop then passes a gather), an optional end.
A simulated timeline (plays take time, timers fire, keys come at random, late reports of stopped
players and cancelled timers arrive) drives each script to its end.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import itertools
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.errors import InvalidScript
from ivr.flow import (
    DTMF_DIGITS,
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
    Play,
    PlaybackFinished,
    StartTimer,
    StopPlayback,
    TimerFired,
)
from ivr.script import ANSWER_DIGITS, parse_script
from ivr.script_run import RecordAnswer, ScriptAction, ScriptRun, StepPlay

# --- one step = today's flow ---------------------------------------------------------------------


@st.composite
def seed_jobs(draw: st.DrawFn) -> tuple[FlowConfig, dict[str, Any]]:
    """A seed job's flow settings and the one-step script that says the same."""
    repeat = draw(st.integers(0, MAX_REPEAT))
    response = draw(st.booleans())
    timeout = draw(st.floats(1.0, 60.0))
    max_call = draw(st.floats(1.0, 1200.0))
    config = FlowConfig(repeat=repeat, response=response, response_timeout_s=timeout, max_call_s=max_call)
    if response:
        step = {"id": "q", "type": "gather", "prompt": {"say": "Press 1"}, "repeat": repeat,
                "timeout_s": timeout, "record": "q1"}
    else:
        step = {"id": "m", "type": "say", "text": "Your appointment is tomorrow", "repeat": repeat}
    return config, {"steps": [step], "max_call_s": max_call}


@st.composite
def event_lists(draw: st.DrawFn) -> list[Event]:
    """Arbitrary events with small ids, so that both machines see live, stale and unknown ids alike."""
    now = 0.0
    events: list[Event] = []
    for kind in draw(st.lists(st.sampled_from("aappppddddddtttfc"), max_size=40)):
        now += draw(st.floats(0, 20))
        if kind == "a":
            events.append(Answered(now))
        elif kind == "p":
            events.append(PlaybackFinished(now, draw(st.integers(0, 12))))
        elif kind == "d":
            events.append(DigitReceived(now, draw(st.sampled_from([*DTMF_DIGITS, "9", "9", "x", ""]))))
        elif kind == "t":
            events.append(TimerFired(now, draw(st.integers(0, 8))))
        elif kind == "f":
            events.append(FarEndHungUp(now, 486))
        else:
            events.append(Cancel(now))
    return events


def as_flow_actions(actions: list[ScriptAction]) -> list[Action]:
    """The script's actions in the flow's words: a step's prompt is the main prompt; answers are extra."""
    out: list[Action] = []
    for action in actions:
        if isinstance(action, StepPlay):
            out.append(Play(action.play_id, "main"))
        elif not isinstance(action, RecordAnswer):
            out.append(action)
    return out


@settings(max_examples=300, deadline=None)
@given(job=seed_jobs(), events=event_lists())
def test_a_one_step_script_is_todays_flow(
    job: tuple[FlowConfig, dict[str, Any]], events: list[Event]
) -> None:
    config, script = job
    flow, run = CallFlow(config), ScriptRun(parse_script(script), now=0.0)
    for event in events:
        before = flow.digit
        from_flow = flow.handle(event)
        from_script = run.handle(event)
        assert as_flow_actions(from_script) == from_flow
        recorded = [a for a in from_script if isinstance(a, RecordAnswer)]
        captured = [RecordAnswer("q1", flow.digit, "q")] if before is None and flow.digit is not None else []
        assert recorded == captured
    assert run.result == flow.result
    assert run.answers == ({"q1": flow.digit} if flow.digit is not None else {})


# --- random valid scripts ------------------------------------------------------------------------


@st.composite
def script_dicts(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 8))
    ids = [f"s{i}" for i in range(count)]
    steps: list[dict[str, Any]] = []
    for i, sid in enumerate(ids):
        kind = draw(st.sampled_from(["say", "play", "gather", "gather"]))
        step: dict[str, Any] = {"id": sid, "type": kind}
        if draw(st.booleans()):
            step["repeat"] = draw(st.integers(0, 2))
        if kind == "say":
            step["text"] = draw(st.sampled_from(["Hello {name}", "Thank you", "Your visit is at {time}"]))
        elif kind == "play":
            step["audio"] = f"audio/{sid}.wav"
        else:
            step["prompt"] = {"say": f"Question {i}"} if draw(st.booleans()) else {"play": f"q{i}.wav"}
            digits = "".join(draw(st.sets(st.sampled_from(ANSWER_DIGITS), min_size=1, max_size=5)))
            step["digits"] = digits
            step["timeout_s"] = draw(st.sampled_from([1, 3.5, 8]))
            step["retries_no_input"] = draw(st.integers(0, 2))
            step["retries_invalid"] = draw(st.integers(0, 2))
            if draw(st.booleans()):
                step["record"] = f"q{i}"
            chosen = draw(st.lists(st.sampled_from(digits), unique=True, max_size=3))
            step["branch"] = {d: draw(st.sampled_from(ids)) for d in chosen}
        steps.append(step)
    if draw(st.booleans()):
        steps.append({"id": "bye", "type": "end"})
    return {"steps": steps, "max_call_s": draw(st.sampled_from([30, 120, 300]))}


class Adapter:
    """Applies a run's actions on a simulated timeline and checks what every action list must keep."""

    def __init__(self, run: ScriptRun, rng: random.Random) -> None:
        self.run, self.rng = run, rng
        self.queue: list[tuple[float, int, Event]] = []
        self.order = itertools.count()
        self.playing: StepPlay | None = None
        self.armed: set[int] = set()
        self.dead: set[int] = set()
        self.finished = 0

    def push(self, at: float, event: Event) -> None:
        heapq.heappush(self.queue, (at, next(self.order), event))

    def feed(self, event: Event) -> list[ScriptAction]:
        if isinstance(event, PlaybackFinished) and self.playing and self.playing.play_id == event.play_id:
            self.playing = None
        if isinstance(event, TimerFired):
            self.armed.discard(event.timer_id)
        step_before = self.run.step.id
        actions = self.run.handle(event)
        for index, action in enumerate(actions):
            self.apply(action, event.now, last=index == len(actions) - 1)
        if isinstance(event, DigitReceived) and event.digit == "9":
            replays = [a for a in actions if isinstance(a, StepPlay)]
            assert all(a.step_id == step_before for a in replays)  # 9 replays the current step
            assert not any(isinstance(a, RecordAnswer) for a in actions)
        return actions

    def apply(self, action: ScriptAction, now: float, *, last: bool) -> None:
        match action:
            case StepPlay(play_id, step_id):
                assert self.playing is None and self.run.step.id == step_id
                self.playing = action
                self.push(now + self.rng.uniform(0.5, 20.0), PlaybackFinished(0.0, play_id))
            case StopPlayback(play_id):
                assert self.playing is not None and self.playing.play_id == play_id
                self.playing = None
                self.dead.add(-play_id)
            case StartTimer(timer_id, _, seconds):
                assert timer_id not in self.armed and seconds > 0
                self.armed.add(timer_id)
                self.push(now + seconds, TimerFired(0.0, timer_id))
            case CancelTimer(timer_id):
                self.armed.remove(timer_id)
                self.dead.add(timer_id)
            case RecordAnswer(name, digit, step_id):
                step = self.run.script.step(step_id)
                assert step.record == name and digit in step.digits and digit != "9"
            case Finished(result):
                assert last and self.finished == 0
                self.finished += 1
                assert self.playing is None and not self.armed
                assert result.duration_s <= self.run.script.max_call_s + 1e-6


def simulate(script: dict[str, Any], seed: int) -> Adapter:
    rng = random.Random(seed)
    adapter = Adapter(ScriptRun(parse_script(script), now=0.0), rng)
    adapter.push(rng.uniform(0, 20), Answered(0.0))
    for _ in range(rng.randint(0, 30)):
        adapter.push(rng.uniform(0, 400), DigitReceived(0.0, rng.choice("0123456789*#99A")))
    if rng.random() < 0.2:
        adapter.push(rng.uniform(0, 400), FarEndHungUp(0.0))
    for _ in range(10_000):  # a bound far above any script's events: the run must end well before
        if adapter.run.finished or not adapter.queue:
            break
        at, _, event = heapq.heappop(adapter.queue)
        late = isinstance(event, TimerFired | PlaybackFinished)
        ident = event.timer_id if isinstance(event, TimerFired) else -getattr(event, "play_id", 0)
        if late and ident in adapter.dead and rng.random() < 0.67:
            continue
        adapter.feed(dataclasses.replace(event, now=at))
    return adapter


@settings(max_examples=300, deadline=None)
@given(script=script_dicts(), seed=st.integers(0, 2**32 - 1))
def test_generated_scripts_validate_and_every_call_ends(script: dict[str, Any], seed: int) -> None:
    adapter = simulate(script, seed)
    run = adapter.run
    assert run.finished and adapter.finished == 1
    assert adapter.playing is None and not adapter.armed
    for name, digit in run.answers.items():
        (step,) = [s for s in run.script.steps if s.record == name]
        assert digit in step.digits
    assert run.handle(Cancel(1e9)) == []


# --- mutated scripts -----------------------------------------------------------------------------


def _gathers(script: dict[str, Any]) -> list[int]:
    return [i for i, s in enumerate(script["steps"]) if s["type"] == "gather"]


@settings(max_examples=300, deadline=None)
@given(script=script_dicts(), data=st.data())
def test_mutated_scripts_are_refused_naming_the_step(script: dict[str, Any], data: st.DataObject) -> None:
    script = copy.deepcopy(script)
    steps = script["steps"]
    gathers = _gathers(script)
    mutations = ["type", "field", "next", "noid"]
    if len(steps) > 1:
        mutations.append("dupid")
    if gathers:
        mutations += ["nine", "branch9", "branch_unknown", "branch_foreign"]
    if any(s["type"] in ("say", "play") for s in steps):
        mutations.append("loop")
    mutation = data.draw(st.sampled_from(mutations))
    k = data.draw(st.integers(0, len(steps) - 1))
    if mutation in ("nine", "branch9", "branch_unknown", "branch_foreign"):
        k = data.draw(st.sampled_from(gathers))
    if mutation == "loop":
        k = data.draw(st.sampled_from([i for i, s in enumerate(steps) if s["type"] in ("say", "play")]))
    if mutation == "dupid":
        k = data.draw(st.integers(1, len(steps) - 1))
    step = steps[k]
    expected: str | None = step["id"]
    match mutation:
        case "type":
            step["type"] = "menu"
        case "field":
            step["colour"] = "blue"
        case "next":
            step["next"] = "nowhere"
            step.pop("branch", None)
            if step["type"] == "end":
                expected = step["id"]
        case "noid":
            del step["id"]
            expected = None
        case "dupid":
            step["id"] = expected = steps[0]["id"]
        case "nine":
            step["digits"] += "9"
        case "branch9":
            step["branch"] = {"9": steps[0]["id"]}
        case "branch_unknown":
            step["branch"] = {step["digits"][0]: "nowhere"}
        case "branch_foreign":
            foreign = next(d for d in ANSWER_DIGITS if d not in step["digits"])
            step["branch"] = {foreign: steps[0]["id"]}
        case "loop":
            step["next"] = step["id"]
    try:
        parse_script(script)
    except InvalidScript as error:
        assert error.step == expected
        assert error.path.startswith(f"/steps/{k}")
        assert (expected or "") in str(error)
    else:
        raise AssertionError(f"mutation {mutation} of step {k} was accepted")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70) | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["id", "type", "text", "audio", "prompt", "repeat", "digits", "timeout_s", "retries_no_input",
          "retries_invalid", "record", "branch", "next"]


@settings(max_examples=300, deadline=None)
@given(script=script_dicts(), data=st.data())
def test_any_field_value_is_accepted_or_refused_with_invalid_script(
    script: dict[str, Any], data: st.DataObject
) -> None:
    """Bad input never escapes as another exception (a TypeError, a KeyError...)."""
    steps = script["steps"]
    for _ in range(data.draw(st.integers(1, 3))):
        step = steps[data.draw(st.integers(0, len(steps) - 1))]
        step[data.draw(st.sampled_from(FIELDS))] = data.draw(json_values)
    if data.draw(st.booleans()):
        script[data.draw(st.sampled_from(["steps", "max_call_s"]))] = data.draw(json_values)
    try:
        parse_script(script)
    except InvalidScript as error:
        assert error.code == 500 and str(error)
