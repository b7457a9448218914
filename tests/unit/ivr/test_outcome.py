"""Outcome mapping: every row of DESIGN.md's voice status table and durations (billing: store.rating,
tests/unit/store/test_billing.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coded.statuses import CALLING, QUEUED
from ivr.flow import (
    Answered,
    CallFlow,
    CancelTimer,
    DigitReceived,
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
from ivr.outcome import (
    CallOutcome,
    outcome_for,
    whole_seconds,
)


def ended(digit: str | None, reason: str = "response", seconds: float = 18.4) -> FlowResult:
    return FlowResult(digit, reason, 1000.0, 1000.0 + seconds, 1)  # type: ignore[arg-type]


def answered(result: FlowResult | None, *, wanted: bool = True, cancelled: bool = False) -> CallOutcome:
    return outcome_for(
        answered=True,
        flow_result=result,
        sip_code=200,
        call_id="abc@host",
        cancelled=cancelled,
        response_wanted=wanted,
    )


def unanswered(sip_code: int | None, *, cancelled: bool = False, error: str | None = None) -> CallOutcome:
    result = FlowResult(None, "far_end_hangup", None, 5.0, 0)
    return outcome_for(
        answered=False,
        flow_result=result,
        sip_code=sip_code,
        call_id="c1",
        cancelled=cancelled,
        response_wanted=True,
        error=error,
    )


def test_progress_codes_are_exported_for_the_dialer() -> None:
    assert (*QUEUED, *CALLING) == (100, "Queued", 110, "Calling")


# --- answered rows -------------------------------------------------------------------------------


def test_answered_with_a_key_reads_like_the_seed() -> None:
    outcome = answered(ended("1"))
    assert outcome == CallOutcome(
        code=200,
        text="Voice call answered, duration 18 seconds. R = 1",
        digit="1",
        duration_s=18,
        sip_code=200,
        call_id="abc@host",
        answered=True,
    )
    assert outcome.success


def test_answered_without_a_key_when_one_was_asked() -> None:
    outcome = answered(ended(None, "timeout", 26.0))
    assert (outcome.code, outcome.text, outcome.digit) == (
        200,
        "Voice call answered, duration 26 seconds. No response",
        None,
    )


def test_answered_when_no_response_was_asked() -> None:
    outcome = answered(ended(None, "played", 9.9), wanted=False)
    assert (outcome.code, outcome.text) == (200, "Voice call answered, duration 9 seconds.")


def test_a_digit_is_not_reported_when_no_response_was_asked() -> None:
    outcome = answered(ended("1"), wanted=False)
    assert (outcome.text, outcome.digit) == ("Voice call answered, duration 18 seconds.", None)


@pytest.mark.parametrize("reason", ["far_end_hangup", "max_duration", "cancelled"])
def test_a_captured_key_survives_whatever_ended_the_call(reason: str) -> None:
    outcome = answered(ended("2", reason), cancelled=reason == "cancelled")
    assert (outcome.code, outcome.text) == (200, "Voice call answered, duration 18 seconds. R = 2")


@pytest.mark.parametrize("reason", ["far_end_hangup", "max_duration"])
def test_answered_calls_ending_early_without_a_key(reason: str) -> None:
    assert answered(ended(None, reason, 3.0)).text == "Voice call answered, duration 3 seconds. No response"


def test_answered_call_without_a_flow_result_records_zero_seconds() -> None:
    outcome = answered(None)
    assert (outcome.code, outcome.text, outcome.duration_s) == (
        200,
        "Voice call answered, duration 0 seconds. No response",
        0,
    )


def test_answered_then_cancelled_without_a_key_is_cancelled_but_keeps_its_duration() -> None:
    for outcome in (
        answered(ended(None, "cancelled", 7.5)),
        answered(ended(None, "played", 7.5), cancelled=True),
    ):
        assert (outcome.code, outcome.text, outcome.duration_s, outcome.answered) == (
            604,
            "Cancelled",
            7,
            True,
        )
        assert not outcome.success


# --- unanswered rows -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sip_code", "code", "text"),
    [
        (486, 600, "Busy"),
        (600, 600, "Busy"),
        (408, 601, "No answer"),
        (480, 601, "No answer"),
        (487, 601, "No answer"),
        (None, 601, "No answer"),
        (603, 602, "Rejected"),
        (404, 603, "Call failed (SIP 404)"),
        (500, 603, "Call failed (SIP 500)"),
        (503, 603, "Call failed (SIP 503)"),
        (488, 603, "Call failed (SIP 488)"),
        (484, 603, "Call failed (SIP 484)"),
        (200, 603, "Call failed (SIP 200)"),
    ],
)
def test_unanswered_calls_map_their_sip_code(sip_code: int | None, code: int, text: str) -> None:
    outcome = unanswered(sip_code)
    assert (outcome.code, outcome.text, outcome.sip_code, outcome.call_id) == (code, text, sip_code, "c1")
    assert (outcome.digit, outcome.duration_s, outcome.answered, outcome.success) == (None, 0, False, False)


def test_network_error_without_a_sip_code() -> None:
    outcome = unanswered(None, error="no route to host")
    assert (outcome.code, outcome.text, outcome.sip_code) == (603, "Call failed (network error)", None)


def test_an_error_with_a_sip_code_keeps_the_code_form() -> None:
    assert unanswered(503, error="transport failure").text == "Call failed (SIP 503)"
    assert unanswered(486, error="whatever").text == "Busy"


@pytest.mark.parametrize("sip_code", [None, 487, 486, 503])
def test_cancelled_before_answer(sip_code: int | None) -> None:
    outcome = unanswered(sip_code, cancelled=True)
    assert (outcome.code, outcome.text, outcome.sip_code) == (604, "Cancelled", sip_code)


def test_flow_cancel_before_answer_counts_as_cancelled() -> None:
    outcome = outcome_for(
        answered=False,
        flow_result=FlowResult(None, "cancelled", None, 1.0, 0),
        sip_code=487,
        call_id=None,
        response_wanted=False,
    )
    assert (outcome.code, outcome.text) == (604, "Cancelled")


def test_sip_code_never_leaks_into_the_status_code() -> None:
    for sip_code in range(300, 700):
        assert unanswered(sip_code).code in {600, 601, 602, 603}


# --- durations and billing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "whole"),
    [
        (0.0, 0),
        (0.4, 0),
        (0.999, 0),
        (1.0, 1),
        (17.9999999, 18),
        (18.0, 18),
        (18.99, 18),
        (-3.0, 0),
        (float("nan"), 0),
    ],
)
def test_whole_seconds_truncates(seconds: float, whole: int) -> None:
    assert whole_seconds(seconds) == whole


@given(st.floats(0, 1e6))
def test_whole_seconds_is_a_stopwatch_reading(seconds: float) -> None:
    whole = whole_seconds(seconds)
    assert seconds - 1 < whole <= seconds + 1e-6


# --- the worked example of docs/flow.md ----------------------------------------------------------


def test_dentist_reminder_press_nine_then_one() -> None:
    flow = CallFlow(FlowConfig(repeat=0, response=True))
    assert flow.handle(Answered(100.0))[0] == Play(1, "main")
    assert flow.handle(DigitReceived(105.3, "9")) == [StopPlayback(1), Play(2, "main")]
    actions = flow.handle(DigitReceived(118.6, "1"))
    assert actions[:1] == [StopPlayback(2)] and actions[-2] == HangUp("response")
    finished = actions[-1]
    assert isinstance(finished, Finished)
    outcome = outcome_for(
        answered=True, flow_result=finished.result, sip_code=200, call_id="x", response_wanted=True
    )
    assert outcome.text == "Voice call answered, duration 18 seconds. R = 1"
    assert (outcome.code, outcome.digit, finished.result.plays) == (200, "1", 2)
    assert finished.result.duration_s == pytest.approx(18.6)  # billed in tests/unit/store/test_billing.py


def test_worked_example_nobody_presses_a_key() -> None:
    flow = CallFlow(FlowConfig(repeat=1, response=True))
    flow.handle(Answered(0.0))
    assert flow.handle(PlaybackFinished(12.0, 1)) == [Play(2, "main")]
    assert flow.handle(PlaybackFinished(24.0, 2)) == [StartTimer(2, "response", 8.0)]
    actions = flow.handle(TimerFired(32.0, 2))
    assert actions[:2] == [CancelTimer(1, "max_call"), HangUp("timeout")]
    assert isinstance(actions[-1], Finished)
    outcome = outcome_for(
        answered=True, flow_result=actions[-1].result, sip_code=200, call_id="x", response_wanted=True
    )
    assert outcome.text == "Voice call answered, duration 32 seconds. No response"


def test_worked_example_a_notice_without_a_response() -> None:
    flow = CallFlow(FlowConfig())
    flow.handle(Answered(0.0))
    assert flow.handle(DigitReceived(4.0, "3")) == []
    assert flow.handle(DigitReceived(6.0, "9")) == [StopPlayback(1), Play(2, "main")]
    actions = flow.handle(PlaybackFinished(18.0, 2))
    assert actions[-2] == HangUp("played") and isinstance(actions[-1], Finished)
    outcome = outcome_for(
        answered=True, flow_result=actions[-1].result, sip_code=200, call_id="x", response_wanted=False
    )
    assert (outcome.code, outcome.text) == (200, "Voice call answered, duration 18 seconds.")


def test_worked_example_busy() -> None:
    outcome = outcome_for(answered=False, flow_result=None, sip_code=486, call_id="y", response_wanted=True)
    assert (outcome.code, outcome.text, outcome.sip_code, outcome.duration_s) == (600, "Busy", 486, 0)


# ---- engine crash (issue 12, item 8)


def crashed(result: FlowResult | None, *, answered_: bool = True, wanted: bool = True) -> CallOutcome:
    return outcome_for(answered=answered_, flow_result=result, sip_code=None, call_id="c1",
                       response_wanted=wanted, error="engine crashed" if not answered_ else None,
                       engine_failed=True)


def test_an_engine_crash_before_a_key_is_a_failure_not_no_response() -> None:
    outcome = crashed(ended(None, "far_end_hangup", 61.0))
    assert (outcome.code, outcome.text, outcome.digit, outcome.duration_s) == (603, "Call failed (engine)",
                                                                              None, 0)
    assert outcome.answered and not outcome.charged


def test_an_engine_crash_keeps_a_key_already_captured() -> None:
    outcome = crashed(ended("1", "far_end_hangup", 7.2))
    assert (outcome.code, outcome.text) == (200, "Voice call answered, duration 7 seconds. R = 1")
    assert outcome.charged


@pytest.mark.parametrize("wanted", [True, False])
def test_an_engine_crash_before_the_answer_or_without_a_response_asked(wanted: bool) -> None:
    assert crashed(ended(None, "far_end_hangup"), wanted=wanted).text == "Call failed (engine)"
    unanswered_crash = crashed(FlowResult(None, "far_end_hangup", None, 5.0, 0), answered_=False)
    assert (unanswered_crash.code, unanswered_crash.text, unanswered_crash.answered) == (
        603, "Call failed (engine)", False)


@given(st.sampled_from([200, 600, 601, 602, 603, 604]), st.booleans())
def test_only_answered_successes_and_cancellations_are_charged(code: int, was_answered: bool) -> None:
    outcome = CallOutcome(code=code, text="x", digit=None, duration_s=3, sip_code=None, call_id=None,
                          answered=was_answered)
    assert outcome.charged == (was_answered and code != 603)


@pytest.mark.parametrize("error", ["not registered: 403 Forbidden",
                                   "not registered: no registration with sip:r in 15.0 s"])
def test_a_call_refused_for_a_failed_registration(error: str) -> None:
    outcome = unanswered(None, error=error)
    assert (outcome.code, outcome.text, outcome.answered) == (603, "Call failed (registration)", False)
