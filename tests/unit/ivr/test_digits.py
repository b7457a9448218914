"""DigitMerger: one key press counts once, however many transports carry it; INFO application/dtmf."""

from __future__ import annotations

import pytest

from ivr.digits import DigitMerger, dtmf_from_info


def test_event_and_tone_of_one_press_count_once() -> None:
    m = DigitMerger()
    assert m.feed("5", "rfc4733", 10.00) == "5"
    assert m.feed("5", "inband", 10.08) is None


def test_info_then_tone_count_once() -> None:
    m = DigitMerger()
    assert m.feed("1", "info", 3.0) == "1"
    assert m.feed("1", "inband", 3.3) is None


def test_repeats_on_one_transport_are_distinct_presses() -> None:
    m = DigitMerger()
    assert [m.feed("1", "rfc4733", t) for t in (0.0, 0.2, 0.4)] == ["1", "1", "1"]


def test_quick_double_press_on_two_transports_gives_two_digits() -> None:
    m = DigitMerger()
    fed = [("rfc4733", 0.0), ("inband", 0.05), ("rfc4733", 0.2), ("inband", 0.25)]
    assert [m.feed("7", s, t) for s, t in fed] == ["7", None, "7", None]


def test_same_digit_after_the_window_is_a_new_press() -> None:
    m = DigitMerger(window_s=0.5)
    assert m.feed("9", "rfc4733", 0.0) == "9"
    assert m.feed("9", "inband", 0.6) == "9"


def test_different_digits_never_merge() -> None:
    m = DigitMerger()
    assert m.feed("9", "rfc4733", 0.0) == "9"
    assert m.feed("1", "inband", 0.05) == "1"


def test_three_transports_one_press() -> None:
    m = DigitMerger()
    fed = enumerate(("info", "rfc4733", "inband"))
    assert [m.feed("#", s, 1.0 + i / 10) for i, s in fed] == ["#", None, None]


def test_reset_and_bad_input() -> None:
    m = DigitMerger()
    m.feed("2", "rfc4733", 0.0)
    m.reset()
    assert m.feed("2", "inband", 0.1) == "2"
    with pytest.raises(ValueError):
        m.feed("2", "carrier-pigeon", 0.0)
    with pytest.raises(ValueError):
        DigitMerger(window_s=-1)


INFO = "INFO sip:a@b SIP/2.0\r\nCSeq: 2 INFO\r\nContent-Type: {ct}\r\nContent-Length: 3\r\n\r\n{body}\r\n"


@pytest.mark.parametrize(("ct", "body", "key"), [
    ("application/dtmf", "7", "7"), ("Application/DTMF", "#", "#"), ("application/dtmf", "a", "A"),
    ("application/dtmf-relay", "Signal=7", None), ("application/dtmf", "77", None),
    ("application/dtmf", "x", None), ("text/plain", "7", None),
])
def test_dtmf_from_info(ct: str, body: str, key: str | None) -> None:
    assert dtmf_from_info(INFO.format(ct=ct, body=body)) == key


def test_dtmf_from_info_ignores_other_requests() -> None:
    message = INFO.replace("INFO sip", "MESSAGE sip").format(ct="application/dtmf", body="1")
    assert dtmf_from_info(message) is None
    assert dtmf_from_info("INFO sip:a@b SIP/2.0\r\nContent-Type: application/dtmf") is None
