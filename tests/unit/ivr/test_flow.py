"""Every rule of the call flow (docs/flow.md), one event at a time."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.errors import IvrError
from ivr.flow import (
    DEFAULT_MAX_CALL_S,
    DEFAULT_RESPONSE_TIMEOUT_S,
    MAX_PLAYS_LIMIT,
    MAX_REPEAT,
    Action,
    Answered,
    CallFlow,
    Cancel,
    CancelTimer,
    DigitReceived,
    FarEndHungUp,
    Finished,
    FlowConfig,
    FlowResult,
    FlowState,
    HangUp,
    InvalidFlowConfig,
    Play,
    PlaybackFinished,
    StartTimer,
    StopPlayback,
    TimerFired,
)

MAX_CALL = StartTimer(1, "max_call", DEFAULT_MAX_CALL_S)


def answered(**config: Any) -> CallFlow:
    """A flow for `config` whose call was answered at t=0 (its first actions checked)."""
    flow = CallFlow(FlowConfig(**config))
    actions = flow.handle(Answered(0.0))
    assert actions == [Play(1, "main"), StartTimer(1, "max_call", flow.config.max_call_s)]
    return flow


def result_of(actions: list[Action]) -> FlowResult:
    assert isinstance(actions[-1], Finished)
    assert sum(isinstance(a, Finished) for a in actions) == 1
    return actions[-1].result


# --- configuration -------------------------------------------------------------------------------


def test_config_defaults_match_the_design() -> None:
    config = FlowConfig()
    assert (config.repeat, config.response, config.confirm) == (0, False, False)
    assert config.response_timeout_s == DEFAULT_RESPONSE_TIMEOUT_S == 8.0
    assert config.max_call_s == DEFAULT_MAX_CALL_S == 300.0
    assert config.replay_digit == "9"
    assert config.valid_digits == "0123456789*#"
    assert config.max_plays == 10


@pytest.mark.parametrize("repeat", [-1, MAX_REPEAT + 1, True, 1.0, "1"])
def test_config_rejects_a_bad_repeat(repeat: Any) -> None:
    with pytest.raises(InvalidFlowConfig, match="repeat"):
        FlowConfig(repeat=repeat)


@pytest.mark.parametrize("repeat", [0, 1, MAX_REPEAT])
def test_config_accepts_every_repeat_in_range(repeat: int) -> None:
    assert FlowConfig(repeat=repeat).repeat == repeat


@pytest.mark.parametrize(("repeat", "max_plays"), [(0, 0), (2, 2), (0, MAX_PLAYS_LIMIT + 1), (0, 2.0)])
def test_config_rejects_a_play_cap_below_one_round_or_above_the_limit(repeat: int, max_plays: Any) -> None:
    with pytest.raises(InvalidFlowConfig, match="max_plays"):
        FlowConfig(repeat=repeat, max_plays=max_plays)


@pytest.mark.parametrize("field", ["response_timeout_s", "max_call_s"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_config_rejects_non_positive_or_non_finite_times(field: str, value: float) -> None:
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(InvalidFlowConfig, match=field):
        FlowConfig(**kwargs)


@pytest.mark.parametrize(
    ("valid", "replay"), [("", "9"), ("12x9", "9"), ("123", "9"), ("129", "99"), ("129", "")]
)
def test_config_rejects_bad_digit_sets(valid: str, replay: str) -> None:
    with pytest.raises(InvalidFlowConfig):
        FlowConfig(valid_digits=valid, replay_digit=replay)


def test_config_error_is_an_ivr_error_and_a_value_error() -> None:
    with pytest.raises(ValueError) as caught:
        FlowConfig(repeat=-1)
    assert isinstance(caught.value, IvrError)
    assert caught.value.code == 500
    assert caught.value.status_text == "ERROR: INVALID CALL FLOW SETTINGS"


# --- before the answer ---------------------------------------------------------------------------


def test_new_flow_waits_for_the_answer() -> None:
    flow = CallFlow(FlowConfig())
    assert flow.state is FlowState.WAITING
    assert (flow.digit, flow.reason, flow.plays_started, flow.result, flow.finished) == (
        None,
        None,
        0,
        None,
        False,
    )


@pytest.mark.parametrize(
    "event", [DigitReceived(1.0, "1"), DigitReceived(1.0, "9"), PlaybackFinished(1.0, 1), TimerFired(1.0, 1)]
)
def test_events_before_the_answer_are_ignored(event: Any) -> None:
    flow = CallFlow(FlowConfig(response=True))
    assert flow.handle(event) == []
    assert flow.state is FlowState.WAITING
    assert flow.digit is None


def test_a_digit_before_the_answer_is_not_a_response() -> None:
    flow = CallFlow(FlowConfig(response=True))
    flow.handle(DigitReceived(0.5, "1"))
    flow.handle(Answered(1.0))
    flow.handle(PlaybackFinished(5.0, 1))
    assert result_of(flow.handle(TimerFired(13.0, 2))).digit is None


def test_far_end_failure_before_answer_finishes_without_hang_up() -> None:
    flow = CallFlow(FlowConfig())
    actions = flow.handle(FarEndHungUp(3.0, sip_code=486))
    assert actions == [Finished(FlowResult(None, "far_end_hangup", None, 3.0, 0))]
    assert flow.result is not None and not flow.result.answered


def test_cancel_before_answer_hangs_up() -> None:
    flow = CallFlow(FlowConfig())
    actions = flow.handle(Cancel(2.0))
    assert actions == [HangUp("cancelled"), Finished(FlowResult(None, "cancelled", None, 2.0, 0))]


# --- plays and repeats ---------------------------------------------------------------------------


def test_answer_plays_the_prompt_and_arms_the_call_cap() -> None:
    flow = answered(max_call_s=60.0)
    assert flow.state is FlowState.PLAYING
    assert flow.plays_started == 1


def test_answer_twice_is_ignored() -> None:
    flow = answered()
    assert flow.handle(Answered(1.0)) == []
    assert flow.plays_started == 1


def test_no_response_call_hangs_up_after_the_single_play() -> None:
    flow = answered()
    actions = flow.handle(PlaybackFinished(7.0, 1))
    assert actions == [
        CancelTimer(1, "max_call"),
        HangUp("played"),
        Finished(FlowResult(None, "played", 0.0, 7.0, 1)),
    ]
    assert flow.state is FlowState.FINISHED
    assert flow.reason == "played"


def test_repeat_adds_extra_plays_then_hangs_up() -> None:
    flow = answered(repeat=2)
    assert flow.handle(PlaybackFinished(5.0, 1)) == [Play(2, "main")]
    assert flow.handle(PlaybackFinished(10.0, 2)) == [Play(3, "main")]
    result = result_of(flow.handle(PlaybackFinished(15.0, 3)))
    assert (result.reason, result.plays) == ("played", 3)


def test_response_call_listens_after_the_last_play() -> None:
    flow = answered(repeat=1, response=True, response_timeout_s=5.0)
    assert flow.handle(PlaybackFinished(5.0, 1)) == [Play(2, "main")]
    assert flow.handle(PlaybackFinished(10.0, 2)) == [StartTimer(2, "response", 5.0)]
    assert flow.state is FlowState.LISTENING


def test_response_timeout_hangs_up_without_a_digit() -> None:
    flow = answered(response=True)
    flow.handle(PlaybackFinished(5.0, 1))
    actions = flow.handle(TimerFired(13.0, 2))
    assert actions == [
        CancelTimer(1, "max_call"),
        HangUp("timeout"),
        Finished(FlowResult(None, "timeout", 0.0, 13.0, 1)),
    ]


# --- responses -----------------------------------------------------------------------------------


def test_digit_during_the_prompt_is_the_response() -> None:
    flow = answered(response=True, repeat=2)
    actions = flow.handle(DigitReceived(3.0, "1"))
    assert actions == [
        StopPlayback(1),
        CancelTimer(1, "max_call"),
        HangUp("response"),
        Finished(FlowResult("1", "response", 0.0, 3.0, 1)),
    ]
    assert flow.digit == "1"


def test_digit_while_listening_is_the_response() -> None:
    flow = answered(response=True)
    flow.handle(PlaybackFinished(5.0, 1))
    actions = flow.handle(DigitReceived(6.5, "#"))
    assert actions == [
        CancelTimer(2, "response"),
        CancelTimer(1, "max_call"),
        HangUp("response"),
        Finished(FlowResult("#", "response", 0.0, 6.5, 1)),
    ]


@pytest.mark.parametrize("digit", list("012345678*#"))
def test_every_pad_key_but_nine_is_a_response(digit: str) -> None:
    flow = answered(response=True)
    assert result_of(flow.handle(DigitReceived(1.0, digit))).digit == digit


def test_digit_is_ignored_when_no_response_is_asked() -> None:
    flow = answered()
    assert flow.handle(DigitReceived(2.0, "1")) == []
    assert flow.digit is None
    assert result_of(flow.handle(PlaybackFinished(5.0, 1))).digit is None


@pytest.mark.parametrize("digit", ["A", "D", "x", "", "12"])
def test_digits_outside_the_valid_set_are_ignored(digit: str) -> None:
    flow = answered(response=True)
    assert flow.handle(DigitReceived(1.0, digit)) == []
    assert flow.state is FlowState.PLAYING


def test_a_narrow_valid_set_ignores_other_keys() -> None:
    flow = answered(response=True, valid_digits="129")
    assert flow.handle(DigitReceived(1.0, "3")) == []
    assert result_of(flow.handle(DigitReceived(2.0, "2"))).digit == "2"


def test_another_replay_digit_makes_nine_a_response() -> None:
    flow = answered(response=True, replay_digit="*")
    assert flow.handle(DigitReceived(1.0, "*")) == [StopPlayback(1), Play(2, "main")]
    assert result_of(flow.handle(DigitReceived(2.0, "9"))).digit == "9"


def test_confirmation_prompt_plays_before_hanging_up() -> None:
    flow = answered(response=True, confirm=True)
    assert flow.handle(DigitReceived(2.0, "2")) == [StopPlayback(1), Play(2, "confirm")]
    assert flow.state is FlowState.CONFIRMING
    assert flow.plays_started == 1
    actions = flow.handle(PlaybackFinished(4.0, 2))
    assert actions == [
        CancelTimer(1, "max_call"),
        HangUp("response"),
        Finished(FlowResult("2", "response", 0.0, 4.0, 1)),
    ]


def test_keys_during_confirmation_are_ignored() -> None:
    flow = answered(response=True, confirm=True)
    flow.handle(PlaybackFinished(5.0, 1))
    assert flow.handle(DigitReceived(6.0, "1")) == [CancelTimer(2, "response"), Play(2, "confirm")]
    assert flow.handle(DigitReceived(6.5, "9")) == []
    assert flow.handle(DigitReceived(6.6, "2")) == []
    assert flow.digit == "1"


def test_hang_up_during_confirmation_keeps_the_response() -> None:
    flow = answered(response=True, confirm=True)
    flow.handle(DigitReceived(2.0, "1"))
    actions = flow.handle(FarEndHungUp(3.0, 200))
    assert actions == [
        StopPlayback(2),
        CancelTimer(1, "max_call"),
        Finished(FlowResult("1", "far_end_hangup", 0.0, 3.0, 1)),
    ]


def test_call_cap_during_confirmation_keeps_the_response() -> None:
    flow = answered(response=True, confirm=True, max_call_s=10.0)
    flow.handle(DigitReceived(9.0, "1"))
    actions = flow.handle(TimerFired(10.0, 1))
    assert actions == [
        StopPlayback(2),
        HangUp("max_duration"),
        Finished(FlowResult("1", "max_duration", 0.0, 10.0, 1)),
    ]


def test_same_digit_twice_keeps_the_first_and_ignores_the_rest() -> None:
    flow = answered(response=True)
    assert result_of(flow.handle(DigitReceived(1.0, "1"))).digit == "1"
    assert flow.handle(DigitReceived(1.05, "1")) == []


# --- the replay key ------------------------------------------------------------------------------


def test_nine_during_the_prompt_restarts_it() -> None:
    flow = answered(response=True)
    assert flow.handle(DigitReceived(2.0, "9")) == [StopPlayback(1), Play(2, "main")]
    assert flow.state is FlowState.PLAYING
    assert flow.plays_started == 2
    assert flow.digit is None


def test_nine_restarts_even_without_a_response() -> None:
    flow = answered()
    assert flow.handle(DigitReceived(2.0, "9")) == [StopPlayback(1), Play(2, "main")]
    assert result_of(flow.handle(PlaybackFinished(9.0, 2))).reason == "played"


def test_stopped_play_reporting_its_end_is_ignored() -> None:
    flow = answered()
    flow.handle(DigitReceived(2.0, "9"))
    assert flow.handle(PlaybackFinished(2.01, 1)) == []
    assert flow.state is FlowState.PLAYING


def test_unknown_play_id_is_ignored() -> None:
    flow = answered()
    assert flow.handle(PlaybackFinished(1.0, 42)) == []


def test_nine_while_listening_restarts_and_disarms_the_response_timer() -> None:
    flow = answered(response=True)
    flow.handle(PlaybackFinished(5.0, 1))
    assert flow.handle(DigitReceived(6.0, "9")) == [CancelTimer(2, "response"), Play(2, "main")]
    assert flow.state is FlowState.PLAYING
    assert flow.handle(TimerFired(13.0, 2)) == []  # the cancelled timer fired anyway
    assert flow.handle(PlaybackFinished(11.0, 2)) == [StartTimer(3, "response", 8.0)]


def test_nine_restarts_the_whole_round_of_repeats() -> None:
    flow = answered(response=True, repeat=2)
    flow.handle(PlaybackFinished(5.0, 1))  # play 2 starts
    assert flow.handle(DigitReceived(6.0, "9")) == [StopPlayback(2), Play(3, "main")]
    assert flow.handle(PlaybackFinished(11.0, 3)) == [Play(4, "main")]
    assert flow.handle(PlaybackFinished(16.0, 4)) == [Play(5, "main")]
    assert flow.handle(PlaybackFinished(21.0, 5)) == [StartTimer(2, "response", 8.0)]
    assert flow.plays_started == 5


def test_nine_is_refused_once_the_play_cap_is_reached() -> None:
    flow = answered(response=True, max_plays=3)
    for i in range(2):
        assert flow.handle(DigitReceived(1.0 + i, "9")) == [StopPlayback(1 + i), Play(2 + i, "main")]
    assert flow.handle(DigitReceived(3.0, "9")) == []
    assert flow.plays_started == 3
    assert flow.handle(PlaybackFinished(8.0, 3)) == [StartTimer(2, "response", 8.0)]
    assert flow.handle(DigitReceived(9.0, "9")) == []
    assert result_of(flow.handle(TimerFired(16.0, 2))).plays == 3


def test_the_play_cap_cuts_a_round_short() -> None:
    flow = answered(repeat=2, max_plays=3)
    flow.handle(PlaybackFinished(5.0, 1))  # play 2
    flow.handle(DigitReceived(6.0, "9"))  # play 3: the cap
    result = result_of(flow.handle(PlaybackFinished(11.0, 3)))
    assert (result.reason, result.plays) == ("played", 3)


def test_nine_pressed_twice_quickly_restarts_twice() -> None:
    flow = answered()
    flow.handle(DigitReceived(2.0, "9"))
    assert flow.handle(DigitReceived(2.05, "9")) == [StopPlayback(2), Play(3, "main")]


# --- the call cap, hang-ups and cancellation -----------------------------------------------------


def test_call_cap_while_playing() -> None:
    flow = answered(repeat=MAX_REPEAT, max_call_s=30.0)
    flow.handle(PlaybackFinished(20.0, 1))
    actions = flow.handle(TimerFired(30.0, 1))
    assert actions == [
        StopPlayback(2),
        HangUp("max_duration"),
        Finished(FlowResult(None, "max_duration", 0.0, 30.0, 2)),
    ]


def test_call_cap_while_listening() -> None:
    flow = answered(response=True, response_timeout_s=60.0, max_call_s=30.0)
    flow.handle(PlaybackFinished(20.0, 1))
    actions = flow.handle(TimerFired(30.0, 1))
    assert actions == [
        CancelTimer(2, "response"),
        HangUp("max_duration"),
        Finished(FlowResult(None, "max_duration", 0.0, 30.0, 1)),
    ]


def test_far_end_hang_up_while_playing() -> None:
    flow = answered(response=True)
    actions = flow.handle(FarEndHungUp(4.0))
    assert actions == [
        StopPlayback(1),
        CancelTimer(1, "max_call"),
        Finished(FlowResult(None, "far_end_hangup", 0.0, 4.0, 1)),
    ]


def test_far_end_hang_up_while_listening() -> None:
    flow = answered(response=True)
    flow.handle(PlaybackFinished(5.0, 1))
    actions = flow.handle(FarEndHungUp(7.0))
    assert actions == [
        CancelTimer(1, "max_call"),
        CancelTimer(2, "response"),
        Finished(FlowResult(None, "far_end_hangup", 0.0, 7.0, 1)),
    ]


def test_cancel_while_playing() -> None:
    flow = answered()
    actions = flow.handle(Cancel(3.0))
    assert actions == [
        StopPlayback(1),
        CancelTimer(1, "max_call"),
        HangUp("cancelled"),
        Finished(FlowResult(None, "cancelled", 0.0, 3.0, 1)),
    ]


def test_unknown_timer_is_ignored() -> None:
    flow = answered(response=True)
    assert flow.handle(TimerFired(1.0, 99)) == []
    assert flow.state is FlowState.PLAYING


@pytest.mark.parametrize(
    "event",
    [
        Answered(9.0),
        PlaybackFinished(9.0, 1),
        DigitReceived(9.0, "1"),
        DigitReceived(9.0, "9"),
        TimerFired(9.0, 1),
        TimerFired(9.0, 2),
        FarEndHungUp(9.0),
        Cancel(9.0),
    ],
)
def test_everything_after_finished_is_ignored(event: Any) -> None:
    flow = answered(response=True)
    done = flow.handle(DigitReceived(1.0, "3"))
    assert flow.handle(event) == []
    assert flow.result == result_of(done)
    assert (flow.state, flow.digit, flow.reason) == (FlowState.FINISHED, "3", "response")


# --- the result ----------------------------------------------------------------------------------


def test_result_duration_runs_from_answer_to_end() -> None:
    flow = CallFlow(FlowConfig())
    flow.handle(Answered(100.25))
    result = result_of(flow.handle(FarEndHungUp(118.75)))
    assert (result.answered, result.answered_at, result.duration_s) == (True, 100.25, 18.5)


def test_result_of_an_unanswered_call_has_no_duration() -> None:
    result = FlowResult(None, "cancelled", None, 50.0, 0)
    assert (result.answered, result.duration_s) == (False, 0.0)


def test_result_duration_is_never_negative() -> None:
    assert FlowResult(None, "played", 10.0, 9.0, 1).duration_s == 0.0
