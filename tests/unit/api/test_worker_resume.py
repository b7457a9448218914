"""A reclaimed voice message whose last attempt was answered is not dialled again (issue 12, item 8):
api.runtime.worker.resumed_outcome reads its outcome from the timeline the dead worker left."""

from __future__ import annotations

import datetime as dt

import pytest

from api.runtime.worker import resumed_outcome

T0 = dt.datetime(2026, 12, 7, 12, 0, 0)


def timeline(*steps: tuple[str, float, str]) -> list[tuple[str, dt.datetime, str]]:
    return [(kind, T0 + dt.timedelta(seconds=s), detail) for kind, s, detail in steps]


FIRST = (("queued", 0, ""), ("claimed", 0, "w1 attempt 1"), ("dialling", 0.1, "sip:1@h"),
         ("ringing", 0.2, "SIP 180"), ("answered", 1.0, "SIP 200"))
AGAIN = (("claimed", 30, "w2 attempt 2"),)


def test_a_key_after_the_answer_is_the_result_and_is_charged() -> None:
    outcome = resumed_outcome(timeline(*FIRST, ("key", 8.6, "1"), *AGAIN), response_wanted=True)
    assert outcome is not None
    assert (outcome.status_code, outcome.status_text) == (200,
                                                          "Voice call answered, duration 7 seconds. R = 1")
    assert outcome.response == "1" and outcome.answered and outcome.duration_s == pytest.approx(7.6)


def test_nine_replays_and_is_not_a_response() -> None:
    outcome = resumed_outcome(timeline(*FIRST, ("key", 5, "9"), ("key", 9, "2"), *AGAIN),
                              response_wanted=True)
    assert outcome is not None and outcome.response == "2"
    only_nine = resumed_outcome(timeline(*FIRST, ("key", 5, "9"), *AGAIN), response_wanted=True)
    assert only_nine is not None and only_nine.status_text == "Call failed (engine)"


@pytest.mark.parametrize("wanted", [True, False])
def test_answered_without_a_known_result_fails_uncharged(wanted: bool) -> None:
    outcome = resumed_outcome(timeline(*FIRST, *AGAIN), response_wanted=wanted)
    assert outcome is not None
    assert (outcome.status_code, outcome.status_text) == (603, "Call failed (engine)")
    assert outcome.duration_s == 0.0 and not outcome.answered  # the store charges answered calls


def test_an_attempt_that_was_not_answered_is_dialled_again() -> None:
    assert resumed_outcome(timeline(*FIRST[:4], *AGAIN), response_wanted=True) is None
    assert resumed_outcome(timeline(("queued", 0, ""), ("claimed", 0, "w1")), response_wanted=True) is None
    # an earlier attempt's answer does not count for a later one (e.g. busy, retried, then crashed)
    later = timeline(*FIRST, ("key", 3, "1"), ("dialling", 20, "sip:1@h"), ("ringing", 21, "SIP 180"), *AGAIN)
    assert resumed_outcome(later, response_wanted=True) is None
