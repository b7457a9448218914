"""ivr.sdp: the telephone-event payload type of our offers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ivr.sdp import offer_telephone_event_pt

OFFER = "\r\n".join([
    "v=0", "o=- 3915 3915 IN IP4 127.0.0.1", "s=pjmedia", "c=IN IP4 127.0.0.1", "t=0 0",
    "m=audio 4000 RTP/AVP 0 8 9 120", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:9 G722/8000", "a=rtpmap:120 telephone-event/8000", "a=fmtp:120 0-16", "a=sendrecv", "",
])


def test_moves_the_event_type_everywhere_in_the_audio_section() -> None:
    out = offer_telephone_event_pt(OFFER, 101)
    assert "m=audio 4000 RTP/AVP 0 8 9 101\r\n" in out
    assert "a=rtpmap:101 telephone-event/8000\r\n" in out and "a=fmtp:101 0-16\r\n" in out
    assert "120" not in out
    assert out.count("\r\n") == OFFER.count("\r\n")


def test_zero_or_the_same_type_changes_nothing() -> None:
    assert offer_telephone_event_pt(OFFER, 0) == OFFER
    assert offer_telephone_event_pt(OFFER, 120) == OFFER


def test_a_type_taken_by_another_format_is_left_alone() -> None:
    taken = OFFER.replace("RTP/AVP 0 8 9 120", "RTP/AVP 0 8 9 101 120").replace(
        "a=rtpmap:9 G722/8000", "a=rtpmap:9 G722/8000\r\na=rtpmap:101 speex/8000")
    assert offer_telephone_event_pt(taken, 101) == taken


def test_only_audio_sections_and_lf_line_ends() -> None:
    sdp = OFFER.replace("\r\n", "\n") + "m=video 4002 RTP/AVP 120\na=rtpmap:120 telephone-event/8000\n"
    out = offer_telephone_event_pt(sdp, 101)
    assert "m=audio 4000 RTP/AVP 0 8 9 101\n" in out
    assert out.endswith("m=video 4002 RTP/AVP 120\na=rtpmap:120 telephone-event/8000\n")


@given(st.integers(96, 127), st.integers(96, 127))
def test_any_dynamic_type(old: int, new: int) -> None:
    sdp = OFFER.replace("120", str(old))
    out = offer_telephone_event_pt(sdp, new)
    assert f"a=rtpmap:{new} telephone-event/8000" in out
    assert out.split("\r\n")[5].split(" ")[3:] == ["0", "8", "9", str(new)]
    assert offer_telephone_event_pt(out, old) == sdp
