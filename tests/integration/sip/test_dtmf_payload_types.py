"""RFC 4733 payload types and the in-band fallback (issue 12): a callee that answers telephone-event
101 (and sends 101) to an offer of another type, and a trunk that negotiates telephone-event but sends
key presses only as tones."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest

from ivr.settings import SipSettings

from .conftest import Agent, Sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]
HAS_DETECTOR = importlib.util.find_spec("audio.dtmf") is not None


def hang_up(agent: Agent, peer: Sipp) -> None:
    agent.ua.hangup("c1")
    assert agent.log.wait("c1", "disconnected")[0].sip_code == 200
    assert peer.wait() == 0, peer.errors()


def test_events_on_payload_type_101_are_heard(make_ua: Callable[..., Agent],
                                              sipp: Callable[..., Sipp]) -> None:
    """We offer 101 (sip.telephone_event_pt) and receive on it: the carrier's digit counts."""
    agent, peer = make_ua(), sipp("uas_rfc4733_pt101.xml")
    agent.ua.call("c1", peer.uri)
    assert agent.log.wait("c1", "media")[0].telephone_event is True
    digit = agent.log.wait("c1", "digit")[0]
    assert (digit.digit, digit.source) == ("1", "rfc4733")
    hang_up(agent, peer)


def test_the_offered_type_is_a_setting(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp]) -> None:
    """Any type in 96-127: the echoing scenario answers with it and sends the pcap written for it
    (the session's pcaps carry the default, 101, so another type is heard only if it is offered as
    set: here pjsua's own 120 would leave the 101 events unheard; 101 set explicitly hears them)."""
    agent, peer = make_ua(SipSettings(telephone_event_pt=101)), sipp("uas_rfc4733.xml")
    agent.ua.call("c1", peer.uri)
    assert agent.log.wait("c1", "digit")[0].digit == "1"
    hang_up(agent, peer)


@pytest.mark.parametrize("offered", [101, 0])
def test_an_answer_with_its_own_type_is_realigned(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp],
                                                  offered: int) -> None:
    """The callee answers telephone-event 96 to our 101 (or pjsua's 120) and sends 96: pjmedia would
    receive events only on the offered type, so (telephone_event_realign) we re-INVITE offering 96;
    the digit then counts."""
    settings = SipSettings(telephone_event_pt=offered, telephone_event_realign=True)
    agent = make_ua(settings, inband_dtmf="never")
    peer = sipp("uas_rfc4733_pt96.xml")
    agent.ua.call("c1", peer.uri)
    first, second = agent.log.wait("c1", "media", count=2)
    assert first.telephone_event and second.telephone_event
    digit = agent.log.wait("c1", "digit")[0]
    assert (digit.digit, digit.source) == ("1", "rfc4733")
    hang_up(agent, peer)


@pytest.mark.skipif(not HAS_DETECTOR, reason="audio.dtmf (the detector) is not available")
def test_inband_fallback_hears_tones_when_events_never_come(make_ua: Callable[..., Agent],
                                                            sipp: Callable[..., Sipp]) -> None:
    agent, peer = make_ua(SipSettings(inband_fallback=True)), sipp("uas_te_inband.xml")
    agent.ua.call("c1", peer.uri)
    assert agent.log.wait("c1", "media")[0].telephone_event is True
    digit = agent.log.wait("c1", "digit")[0]
    assert (digit.digit, digit.source) == ("5", "inband")
    hang_up(agent, peer)
    assert len(agent.log.of("c1", "digit")) == 1


@pytest.mark.skipif(not HAS_DETECTOR, reason="audio.dtmf (the detector) is not available")
def test_inband_fallback_ends_with_the_first_rfc4733_digit(make_ua: Callable[..., Agent],
                                                           sipp: Callable[..., Sipp]) -> None:
    """uas_hold_resume sends RFC 4733 1, then an in-band 5: once the trunk has shown it sends events,
    the fallback detector is stopped and the tone is not counted."""
    agent, peer = make_ua(SipSettings(inband_fallback=True)), sipp("uas_hold_resume.xml")
    agent.ua.call("c1", peer.uri)
    assert agent.log.wait("c1", "digit")[0].source == "rfc4733"
    with pytest.raises(AssertionError, match="no 'digit'"):  # the tone comes 1 s after the event
        agent.log.wait("c1", "digit", count=2, timeout=3.0)
    hang_up(agent, peer)


def test_no_realign_by_default(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp]) -> None:
    """Without telephone_event_realign no re-INVITE is sent (a compliant peer sends on our type): the
    PT-96 callee, which waits for one, never sends its digit."""
    agent = make_ua(inband_dtmf="never")
    peer = sipp("uas_rfc4733_pt96.xml")
    agent.ua.call("c1", peer.uri)
    agent.log.wait("c1", "answered")
    with pytest.raises(AssertionError, match="no 'media'"):
        agent.log.wait("c1", "media", count=2, timeout=2.0)
    agent.ua.hangup("c1")
    assert agent.log.wait("c1", "disconnected")[0].sip_code == 200
