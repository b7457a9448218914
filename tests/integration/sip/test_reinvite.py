"""Re-INVITEs from the far end that change the media (issue 12): hold and resume, a switch to PCMA, a
new media port. pjsua rebuilds the call's stream in a new conference slot; the prompt must go on to
its end and the digits sent after the re-INVITE (RFC 4733 and in-band) must be heard."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Agent, Sipp, write_prompt

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]
HAS_DETECTOR = importlib.util.find_spec("audio.dtmf") is not None
REINVITES = ["uas_hold_resume.xml", "uas_reinvite_pcma.xml", "uas_reinvite_port.xml"]


@pytest.mark.skipif(not HAS_DETECTOR, reason="audio.dtmf (the detector) is not available")
@pytest.mark.parametrize("scenario", REINVITES)
def test_prompt_and_digits_survive_a_reinvite(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp],
                                              tmp_path: Path, scenario: str) -> None:
    prompt = tmp_path / "prompt.wav"
    write_prompt(prompt, seconds=1.0)
    agent, peer = make_ua(inband_dtmf="always"), sipp(scenario)
    agent.ua.call("c1", peer.uri)
    agent.ua.play("c1", prompt)  # starts with the first media; the re-INVITE comes 0.3 s later
    medias = agent.log.wait("c1", "media", count=2)
    if scenario == "uas_hold_resume.xml":
        medias = agent.log.wait("c1", "media", count=3)
        assert [m.reason for m in medias] == ["", "hold (receive only)", ""]
    digits = agent.log.wait("c1", "digit", count=2)
    assert [(d.digit, d.source) for d in digits] == [("1", "rfc4733"), ("5", "inband")]
    assert all(d.t > medias[-1].t for d in digits)  # both after the last re-INVITE
    agent.log.wait("c1", "playback_done")
    agent.ua.hangup("c1")
    assert agent.log.wait("c1", "disconnected")[0].sip_code == 200
    assert peer.wait() == 0, peer.errors()


def test_hold_pauses_the_prompt(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp],
                                tmp_path: Path) -> None:
    """While the far end holds the call the player is not read: the prompt resumes where it stopped,
    so it ends at least the hold's length (1 s) after it would have."""
    prompt = tmp_path / "prompt.wav"
    write_prompt(prompt, seconds=1.0)
    agent, peer = make_ua(), sipp("uas_hold_resume.xml")
    agent.ua.call("c1", peer.uri)
    agent.ua.play("c1", prompt)
    first = agent.log.wait("c1", "media")[0]
    held, resumed = agent.log.wait("c1", "media", count=3)[1:]
    done = agent.log.wait("c1", "playback_done")[0]
    assert done.t - first.t >= 1.0 + (resumed.t - held.t) - 0.1  # 0.1 s: a clock tick either side
    agent.ua.hangup("c1")
    agent.log.wait("c1", "disconnected")
    assert peer.wait() == 0, peer.errors()


def test_inactive_hold_longer_than_the_rtp_timeout(make_ua: Callable[..., Agent],
                                                   sipp: Callable[..., Sipp], tmp_path: Path) -> None:
    """a=inactive for 4 s with a 2 s RTP timeout: the timeout is suspended while the media brings no
    RTP (before issue 12 the call was hung up as 'no RTP'), and the digit after the resume counts."""
    agent, peer = make_ua(rtp_timeout_s=2.0), sipp("uas_hold_inactive.xml")
    agent.ua.call("c1", peer.uri)
    medias = agent.log.wait("c1", "media", count=3, timeout=15)
    assert [m.reason for m in medias] == ["", "inactive", ""]
    digit = agent.log.wait("c1", "digit")[0]
    assert (digit.digit, digit.source) == ("1", "rfc4733")
    assert not agent.log.of("c1", "disconnected")
    agent.ua.hangup("c1")
    gone = agent.log.wait("c1", "disconnected")[0]
    assert (gone.sip_code, gone.reason) == (200, "OK")
    assert peer.wait() == 0, peer.errors()


def test_rtp_timeout_still_ends_a_silent_resumed_call(make_ua: Callable[..., Agent],
                                                      sipp: Callable[..., Sipp]) -> None:
    """After the resume the timeout runs again: the far end sends its digit and then nothing, so the
    call ends as 'no RTP' one timeout after the last packet."""
    agent, peer = make_ua(rtp_timeout_s=2.0), sipp("uas_hold_inactive.xml")
    agent.ua.call("c1", peer.uri)
    agent.log.wait("c1", "digit", timeout=15)
    gone = agent.log.wait("c1", "disconnected", timeout=15)[0]
    assert gone.reason == "no RTP"
    assert peer.wait() == 0, peer.errors()
