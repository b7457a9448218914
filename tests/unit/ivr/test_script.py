"""IVR scripts (ivr/script.py): every validation rule, and the runner one event at a time."""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Any

import pytest

from coded.errors import CodedError
from ivr.errors import InvalidScript, IvrError
from ivr.flow import (
    Answered,
    Cancel,
    CancelTimer,
    DigitReceived,
    FarEndHungUp,
    Finished,
    FlowResult,
    HangUp,
    PlaybackFinished,
    StartTimer,
    StopPlayback,
    TimerFired,
)
from ivr.script import MAX_DEPTH, MAX_STEPS, MAX_TEXT, Prompt, parse_script
from ivr.script_run import RecordAnswer, ScriptAction, ScriptRun, StepPlay, answers_text, script_status_text

SURVEY: dict[str, Any] = {
    "steps": [
        {"id": "hello", "type": "say", "text": "Hello {name}, three questions about your visit."},
        {"id": "q1", "type": "gather", "prompt": {"say": "Were you satisfied? 1 yes, 2 no."},
         "digits": "12", "record": "q1", "retries_no_input": 1, "retries_invalid": 1},
        {"id": "q2", "type": "gather", "prompt": {"say": "Rate us from 1 to 5."}, "digits": "12345",
         "record": "q2", "timeout_s": 5},
        {"id": "q3", "type": "gather", "prompt": {"play": "audio/q3.wav"}, "digits": "12", "record": "q3",
         "branch": {"2": "sorry"}, "next": "bye"},
        {"id": "sorry", "type": "say", "text": "We are sorry to hear that."},
        {"id": "bye", "type": "end"},
    ]
}


def refused(script: Any) -> InvalidScript:
    with pytest.raises(InvalidScript) as info:
        parse_script(script)
    return info.value


def with_step(index: int, **changes: Any) -> dict[str, Any]:
    script = copy.deepcopy(SURVEY)
    script["steps"][index].update(changes)
    return script


# --- validation ----------------------------------------------------------------------------------


def test_the_survey_validates_with_fall_through_and_explicit_next() -> None:
    script = parse_script(SURVEY)
    assert [s.id for s in script.steps] == ["hello", "q1", "q2", "q3", "sorry", "bye"]
    assert script.step("hello").next == "q1"
    assert script.step("q3").target("2") == "sorry" and script.step("q3").target("1") == "bye"
    assert script.step("sorry").next == "bye" and script.step("bye").next is None
    assert script.step("hello").prompt == Prompt("say", "Hello {name}, three questions about your visit.")
    assert script.step("hello").prompt.merge_fields == ("name",)  # type: ignore[union-attr]
    assert script.records == ("q1", "q2", "q3")


def test_invalid_script_is_a_coded_ivr_error() -> None:
    error = refused({"steps": []})
    assert isinstance(error, IvrError) and isinstance(error, CodedError)
    assert error.status == (500, "ERROR: INVALID IVR SCRIPT") and error.http_status == 422
    assert error.path == "/steps"


@pytest.mark.parametrize(
    ("script", "path", "step", "words"),
    [
        (with_step(1, type="menu"), "/steps/1/type", "q1", "unknown step type 'menu'"),
        ({"steps": [{"type": "say", "text": "hi"}]}, "/steps/0/id", None, "missing step id"),
        (with_step(2, id="q1"), "/steps/2/id", "q1", "duplicate step id"),
        (with_step(3, branch={"2": "nowhere"}), "/steps/3/branch/2", "q3", "unknown step 'nowhere'"),
        (with_step(0, next="ghost"), "/steps/0/next", "hello", "does not exist"),
        (with_step(1, digits="129"), "/steps/1/digits", "q1", "9 cannot be an answer"),
        (with_step(3, digits="129", branch={}), "/steps/3/digits", "q3", "9 cannot be an answer"),
        (with_step(3, branch={"9": "sorry"}), "/steps/3/branch/9", "q3", "9 cannot be branched on"),
        (with_step(3, branch={"3": "sorry"}), "/steps/3/branch/3", "q3", "not one of the step's digits"),
        (with_step(1, digits="11"), "/steps/1/digits", "q1", "listed twice"),
        (with_step(1, digits="1A"), "/steps/1/digits", "q1", "not a dial-pad key"),
        (with_step(1, timeout_s=0), "/steps/1/timeout_s", "q1", "timeout_s must be"),
        (with_step(1, retries_no_input=6), "/steps/1/retries_no_input", "q1", "0..5"),
        (with_step(1, retries_invalid=True), "/steps/1/retries_invalid", "q1", "0..5"),
        (with_step(1, record="q 1"), "/steps/1/record", "q1", "record must be"),
        (with_step(1, prompt={"say": ""}), "/steps/1/prompt/say", "q1", "non-empty"),
        (with_step(1, prompt={"sing": "la"}), "/steps/1/prompt", "q1", "prompt must be"),
        (with_step(0, text="x" * (MAX_TEXT + 1)), "/steps/0/text", "hello", f"at most {MAX_TEXT}"),
        (with_step(0, text="Hi {0}"), "/steps/0/text", "hello", "not a plain name"),
        (with_step(0, text="Hi {name"), "/steps/0/text", "hello", "bad merge field"),
        (with_step(0, repeat=10), "/steps/0/repeat", "hello", "repeat must be 0..9"),
        (with_step(0, digits="12"), "/steps/0/digits", "hello", "not allowed in a say step"),
        (with_step(4, next="bye", branch={"1": "q1"}), "/steps/4/branch", "sorry", "not allowed"),
        (with_step(4, next="hello"), "/steps/4/next", "sorry", None),  # fine: hello -> q1 is a gather
        ({"steps": [{"id": "a", "type": "say", "text": "x"}, {"id": "b", "type": "end"},
                    {"id": "c", "type": "say", "text": "y"}]}, "/steps/2", "c", "unreachable"),
    ],
)
def test_each_fault_names_its_step_and_field(
    script: dict[str, Any], path: str, step: str | None, words: str | None
) -> None:
    if words is None:
        parse_script(script)  # a loop through a gather waits for a key every round: allowed
        return
    error = refused(script)
    assert (error.path, error.step) == (path, step)
    assert words in str(error) and path in str(error)


def test_a_loop_without_a_gather_is_refused() -> None:
    script = {"steps": [
        {"id": "a", "type": "say", "text": "one"},
        {"id": "b", "type": "play", "audio": "two.wav", "next": "a"},
    ]}
    error = refused(script)
    assert error.step in ("a", "b") and error.path.endswith("/next") and "without a gather" in str(error)
    assert refused({"steps": [{"id": "a", "type": "say", "text": "x", "next": "a"}]}).step == "a"


def test_a_digit_used_twice_in_one_branch_is_refused_from_json_text() -> None:
    text = """{"steps": [{"id": "q", "type": "gather", "prompt": {"say": "?"}, "digits": "12",
               "branch": {"1": "a", "1": "b"}}, {"id": "a", "type": "end"}, {"id": "b", "type": "end"}]}"""
    error = refused(text)
    assert (error.path, error.step) == ("/steps/0/branch/1", "q") and "digit '1' given twice" in str(error)
    assert refused('{"steps": [{"id": "a", "id": "b", "type": "end"}]}').path == "/steps/0/id"


def test_script_wide_faults() -> None:
    assert "not JSON" in str(refused("{"))
    assert refused([1]).path == ""
    assert refused({"steps": [], "speed": 2}).path == "/speed"
    one_say = [{"id": "a", "type": "say", "text": "x"}]
    assert refused({"steps": one_say, "max_call_s": 0}).path == "/max_call_s"
    assert refused({"steps": [3]}).path == "/steps/0"
    assert refused({"steps": [{"id": "1a", "type": "end"}]}).path == "/steps/0/id"
    assert refused({"steps": [{"id": "a", "type": "end"}]}).path == "/steps/0/type"


def test_limits_on_steps_and_depth() -> None:
    chain = [{"id": f"s{i}", "type": "say", "text": "x"} for i in range(MAX_STEPS + 1)]
    assert f"at most {MAX_STEPS}" in str(refused({"steps": chain}))
    deep = {"steps": chain[: MAX_DEPTH + 2]}
    error = refused(deep)
    assert error.step == f"s{MAX_DEPTH + 1}" and "deep" in str(error)
    parse_script({"steps": chain[: MAX_DEPTH + 1]})


# --- the runner ----------------------------------------------------------------------------------


class Call:
    """Applies a ScriptRun's actions like an adapter: the one playing prompt and the armed timers."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.run = ScriptRun(parse_script(script), now=0.0)
        self.now = 0.0
        self.playing: StepPlay | None = None
        self.timers: dict[int, str] = {}
        self.log: list[ScriptAction] = []

    def feed(self, event: Any) -> list[ScriptAction]:
        self.now = event.now
        actions = self.run.handle(event)
        for action in actions:
            match action:
                case StepPlay():
                    assert self.playing is None
                    self.playing = action
                case StopPlayback(play_id):
                    assert self.playing is not None and self.playing.play_id == play_id
                    self.playing = None
                case StartTimer(timer_id, name):
                    self.timers[timer_id] = name
                case CancelTimer(timer_id):
                    del self.timers[timer_id]
        self.log += actions
        return actions

    def answer(self) -> list[ScriptAction]:
        return self.feed(Answered(self.now))

    def prompt_ends(self, dt: float = 3.0) -> list[ScriptAction]:
        assert self.playing is not None
        play, self.playing = self.playing, None
        return self.feed(PlaybackFinished(self.now + dt, play.play_id))

    def key(self, digit: str, dt: float = 1.0) -> list[ScriptAction]:
        return self.feed(DigitReceived(self.now + dt, digit))

    def timer(self, name: str) -> list[ScriptAction]:
        (timer_id,) = [t for t, n in self.timers.items() if n == name]
        del self.timers[timer_id]
        return self.feed(TimerFired(self.now + 5, timer_id))

    @property
    def step(self) -> str:
        assert self.playing is not None
        return self.playing.step_id


def finished(actions: list[ScriptAction]) -> FlowResult:
    last = actions[-1]
    assert isinstance(last, Finished)
    return last.result


def test_the_survey_records_an_answer_per_question() -> None:
    call = Call(SURVEY)
    first = call.answer()
    assert first == [StepPlay(1, "hello", Prompt("say", SURVEY["steps"][0]["text"])),
                     StartTimer(1, "max_call", 300.0)]
    call.prompt_ends()
    assert call.step == "q1"
    actions = call.key("1")
    assert RecordAnswer("q1", "1", "q1") in actions and call.step == "q2"
    call.prompt_ends()
    call.key("4")
    call.prompt_ends()
    actions = call.key("1")  # q3 answered 1 -> next is bye (end)
    assert actions[-3:-1] == [RecordAnswer("q3", "1", "q3"), HangUp("response")]
    result = finished(actions)
    assert call.run.answers == {"q1": "1", "q2": "4", "q3": "1"}
    assert (result.reason, result.digit, result.plays) == ("response", "1", 4)
    assert not call.timers and call.playing is None and call.run.finished
    assert call.feed(Cancel(call.now)) == []


def test_branch_goes_to_the_apology_then_ends() -> None:
    call = Call(SURVEY)
    call.answer()
    call.prompt_ends()
    call.key("2")
    call.key("5", dt=0.5)  # barge-in during q2's prompt
    call.key("2")  # q3 -> sorry
    assert call.step == "sorry"
    result = finished(call.prompt_ends())
    assert result.reason == "response" and call.run.answers == {"q1": "2", "q2": "5", "q3": "2"}


def test_nine_replays_the_current_step_only() -> None:
    call = Call(SURVEY)
    call.answer()
    call.prompt_ends()
    first_q1 = call.playing
    actions = call.key("9")
    assert actions[0] == StopPlayback(first_q1.play_id)  # type: ignore[union-attr]
    assert isinstance(actions[1], StepPlay) and actions[1].step_id == "q1" and actions[1].play_id == 3
    call.prompt_ends()
    call.key("9")  # while listening: the response timer is cancelled, q1 plays again
    assert call.step == "q1" and list(call.timers.values()) == ["max_call"]


def test_no_input_retries_then_ends_with_timeout() -> None:
    call = Call(SURVEY)
    call.answer()
    call.prompt_ends()
    call.prompt_ends()
    assert sorted(call.timers.values()) == ["max_call", "response"]
    actions = call.timer("response")  # one retry on no input
    assert [a.step_id for a in actions if isinstance(a, StepPlay)] == ["q1"]
    call.prompt_ends()
    result = finished(call.timer("response"))
    assert result.reason == "timeout" and result.digit is None and call.run.answers == {}


def test_invalid_input_retries_then_ends() -> None:
    call = Call(SURVEY)
    call.answer()
    call.prompt_ends()
    actions = call.key("7")  # not an answer of q1: one retry on invalid input
    assert not any(isinstance(a, RecordAnswer) for a in actions) and call.step == "q1"
    result = finished(call.key("#"))
    assert result.reason == "timeout" and call.run.answers == {}


def test_retries_restart_the_step_on_the_time_left() -> None:
    call = Call(SURVEY)
    call.answer()
    call.prompt_ends(dt=100.0)
    actions = call.key("7", dt=50.0)
    started = [a for a in actions if isinstance(a, StartTimer)]
    assert started == [StartTimer(started[0].timer_id, "max_call", 150.0)]


def test_the_call_cap_ends_the_script() -> None:
    call = Call(SURVEY)
    call.answer()
    playing = call.playing
    actions = call.timer("max_call")
    assert actions == [StopPlayback(playing.play_id), HangUp("max_duration"), actions[-1]]  # type: ignore[union-attr]
    assert finished(actions).reason == "max_duration"


def test_far_end_hangup_and_cancel_before_answer() -> None:
    call = Call(SURVEY)
    result = finished(call.feed(FarEndHungUp(2.0, 486)))
    assert result.reason == "far_end_hangup" and not result.answered
    assert not any(isinstance(a, HangUp) for a in call.log)
    call = Call(SURVEY)
    assert call.feed(Cancel(1.0))[0] == HangUp("cancelled")


def test_stale_reports_of_an_earlier_step_are_ignored() -> None:
    call = Call(SURVEY)
    call.answer()
    old = call.playing
    call.prompt_ends()
    assert call.feed(PlaybackFinished(call.now, old.play_id)) == []  # type: ignore[union-attr]
    assert call.feed(TimerFired(call.now, 99)) == []
    assert call.step == "q1"


def test_status_texts() -> None:
    survey = parse_script(SURVEY)
    done = FlowResult(digit="1", reason="response", answered_at=0.0, ended_at=42.7, plays=4)
    assert answers_text({"q2": "3", "q1": "1"}, survey) == "ANSWERS: q1=1,q2=3"
    assert answers_text({}) == ""
    assert script_status_text(survey, done, {"q1": "1"}) == "Voice call answered, duration 42 seconds."
    assert script_status_text(survey, done, {}) == "Voice call answered, duration 42 seconds. No response"
    one = parse_script({"steps": [{"id": "q", "type": "gather", "prompt": {"say": "1/2"}, "record": "q1"}]})
    assert script_status_text(one, done, {"q1": "1"}) == "Voice call answered, duration 42 seconds. R = 1"


def test_the_survey_example_of_docs_campaigns_prints_what_the_doc_says() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "campaigns.md").read_text(encoding="utf-8")
    section = doc[doc.index("## IVR scripts"):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    shown = section.split("Its output:\n\n```\n", 1)[1].split("```", 1)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/campaigns.md", "exec"), {"__name__": "campaigns_doc"})
    assert out.getvalue() == shown
