"""The built-in test phone (`ivrgate phone`, a child process: one pjsua2 Endpoint per process) answers
calls from a SipUserAgent, presses keys in each mode and records the prompt it hears."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.phone import PhoneScript, TestPhone
from ivr.settings import SipSettings
from ivr.sip import SipError
from tests.procfs import free_block

from .conftest import (
    Agent,
    PhoneProcess,
    Sipp,
    best_envelope_correlation,
    free_udp_port,
    read_wav,
    write_prompt,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(40)]
HAS_DTMF = importlib.util.find_spec("audio.dtmf") is not None
MODES = ["rfc4733", "info", pytest.param("inband", marks=pytest.mark.skipif(
    not HAS_DTMF, reason="audio.dtmf is not available"))]


@pytest.mark.parametrize("mode", MODES)
def test_phone_presses_keys(make_ua: Callable[..., Agent], phone: Callable[..., PhoneProcess],
                            mode: str) -> None:
    far = phone("--ring", "0.2", "--wait", "0.3", "--press", "91", "--gap", "0.7", "--mode", mode)
    agent = make_ua(inband_dtmf="always" if mode == "inband" else "auto")
    agent.ua.call("c1", far.uri, caller_id="15550001", display_name="Dentist")
    assert agent.log.wait("c1", "ringing")[0].sip_code == 180
    digits = agent.log.wait("c1", "digit", count=2)
    assert [(d.digit, d.source) for d in digits] == [("9", mode), ("1", mode)]
    assert digits[1].t - digits[0].t > 0.35  # two presses 0.7 s apart (a loaded machine may delay one)
    agent.ua.hangup("c1")
    agent.log.wait("c1", "disconnected")
    (call,) = far.results()
    assert call["pressed"] == "91" and call["hung_up_by"] == "caller"
    assert "15550001" in str(call["from"]) and "Dentist" in str(call["from"])
    assert call["call_id"] == digits[0].call_id
    assert len(agent.log.of("c1", "digit")) == 2


PJSUA_IDLE_CLOSE_S = 1.0
"""pjsua's default sndAutoCloseTime: it closed the idle null sound device (the media clock) this long
after a call; the next call that connected no port then sent no RTP, and no RFC 4733 digits."""


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_phone_presses_keys_on_every_call(make_ua: Callable[..., Agent],
                                          phone: Callable[..., PhoneProcess], mode: str) -> None:
    far = phone("--ring", "0.1", "--wait", "0.2", "--press", "1", "--mode", mode, calls=3)
    agent = make_ua(inband_dtmf="always" if mode == "inband" else "auto")
    for i in range(3):
        ref = f"c{i}"
        agent.ua.call(ref, far.uri)
        (digit,) = agent.log.wait(ref, "digit")
        assert (digit.digit, digit.source) == ("1", mode), f"call {i + 1}"
        agent.ua.hangup(ref)
        agent.log.wait(ref, "disconnected")
        time.sleep(PJSUA_IDLE_CLOSE_S + 0.5)  # long enough for an idle media clock to be closed
    calls = far.results()
    assert [c["pressed"] for c in calls] == ["1", "1", "1"]
    assert len({c["call_id"] for c in calls}) == 3


@pytest.mark.parametrize("code", [486, 603])
def test_phone_rejects(make_ua: Callable[..., Agent], phone: Callable[..., PhoneProcess], code: int) -> None:
    far = phone("--ring", "0.1", "--reject", str(code))
    agent = make_ua()
    agent.ua.call("c1", far.uri)
    assert agent.log.wait("c1", "disconnected")[0].sip_code == code
    (call,) = far.results()
    assert call["answered"] is False and call["hung_up_by"] == "phone"


def test_phone_records_the_prompt(make_ua: Callable[..., Agent], phone: Callable[..., PhoneProcess],
                                  tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.wav"
    played = write_prompt(prompt, seconds=3.0)
    far = phone("--ring", "0.1", "--record", str(tmp_path / "rec"), "--hangup-after", "6")
    agent = make_ua()
    agent.ua.call("c1", far.uri)
    agent.log.wait("c1", "answered")
    agent.ua.play("c1", prompt)
    agent.log.wait("c1", "playback_done", timeout=6)
    assert agent.log.wait("c1", "disconnected", timeout=6)[0].sip_code == 200
    (call,) = far.results()
    assert call["hung_up_by"] == "phone"
    heard = read_wav(Path(str(call["recording"])))
    assert best_envelope_correlation(played, heard, 8000) > 0.9
    assert best_envelope_correlation(played[::-1].copy(), heard, 8000) < 0.6


def test_a_user_agent_places_four_calls_and_refuses_a_fifth(make_ua: Callable[..., Agent],
                                                            phone: Callable[..., PhoneProcess]) -> None:
    """The caller's own limit (PJSUA_MAX_CALLS = 4 a process). The phone runs 2 processes, so it never
    refuses: before, one phone process took 4 calls and the 5th (placed as the 4 ended, before pjsua
    had freed a slot of the phone) was sometimes refused by the phone with 486: the flaky part."""
    far = phone("--ring", "0.1", calls=5, processes=2, rtp_port=free_block(80))
    agent = make_ua()
    assert agent.ua.capacity == 4
    for i in range(4):
        agent.ua.call(f"c{i}", far.uri)
    for i in range(4):
        agent.log.wait(f"c{i}", "answered")
    assert agent.ua.active == 4
    agent.ua.call("c4", far.uri)
    assert agent.log.wait("c4", "error")[0].reason == "no free call slot"
    for i in range(4):
        agent.ua.hangup(f"c{i}")
    for i in range(4):
        agent.log.wait(f"c{i}", "disconnected")
    agent.ua.call("c5", far.uri)  # the caller's slots are free again
    agent.log.wait("c5", "answered")
    agent.ua.hangup("c5")
    calls = far.results(timeout=20)
    assert len(calls) == 5 and all(c["answered"] for c in calls)


def test_the_phone_carries_the_calls_of_several_processes(sipp: Callable[..., Sipp],
                                                          phone: Callable[..., PhoneProcess]) -> None:
    """12 calls at once to one address: a front and 3 phone processes of 4 calls each (issue 12 item 7)."""
    far = phone("--ring", "0.2", "--wait", "0.5", "--press", "1", calls=12, processes=3,
                rtp_port=free_block(120))
    peer = sipp("uac_call_phone.xml", f"127.0.0.1:{far.port}", "-s", "1000", "-l", "12", "-r", "50",
                calls=12)
    assert peer.wait(60) == 0, peer.errors()
    calls = far.results(timeout=20)
    assert len(calls) == 12 and len({c["call_id"] for c in calls}) == 12
    assert all(c["answered"] and c["pressed"] == "1" and c["hung_up_by"] == "caller" for c in calls)


def test_a_full_phone_refuses_with_486_and_logs_it(sipp: Callable[..., Sipp],
                                                   phone: Callable[..., PhoneProcess]) -> None:
    """9 calls at once to a phone of 2 processes (8 calls): 8 are answered, the front refuses one with
    486 and says so in its log (before, refusals were silent)."""
    far = phone("--ring", "0.2", calls=8, processes=2, rtp_port=free_block(80))
    peer = sipp("uac_call_phone.xml", f"127.0.0.1:{far.port}", "-l", "9", "-r", "100", calls=9)
    peer.wait(60)
    calls = far.results(timeout=20)
    assert len(calls) == 8 and all(c["answered"] for c in calls)
    assert far.stderr is not None
    log = far.stderr.read_text()
    assert log.count("with 486") == 1 and "all 2 processes carry 4 calls" in log, log


def test_sipp_uac_calls_the_phone(sipp: Callable[..., Sipp], phone: Callable[..., PhoneProcess]) -> None:
    far = phone("--ring", "0.2", "--wait", "0.5", "--press", "1")
    peer = sipp("uac_call_phone.xml", f"127.0.0.1:{far.port}", "-s", "1000")
    assert peer.wait(15) == 0, peer.errors()
    (call,) = far.results()
    assert call["pressed"] == "1" and call["hung_up_by"] == "caller"
    assert call["telephone_event"] is True


def test_one_user_agent_per_process(make_ua: Callable[..., Agent]) -> None:
    make_ua()
    second = TestPhone(SipSettings(), PhoneScript(), port=0, rtp_port=free_udp_port(pair=True))
    with pytest.raises(SipError, match="one pjsua2 Endpoint per process"):
        second.start()
