"""run_call through a real engine pool against SIPp UAS scenarios: the exact outcome of every ending,
and after each fault the same pool serves a normal call."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.dialer import CallJob, run_call
from tests.integration.sip.conftest import free_udp_port

from .conftest import DIALER, Calls, EventLog, Sipp, answered_text, kinds, normal_call_works

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.mark.parametrize(("scenario", "digit", "source"), [
    ("uas_rfc4733.xml", "1", "rfc4733"),
    ("uas_info.xml", "4", "info"),      # the scenario sends 4, then 7: the first key is the response
    ("uas_inband.xml", "5", "inband"),  # PCMU only, no telephone-event: in-band detection
])
def test_answer_and_digit(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path],
                          scenario: str, digit: str, source: str) -> None:
    peer = sipp(scenario)
    report = calls.call(peer.uri, prompts["main"], response=True)
    outcome = report.outcome
    assert (outcome.code, outcome.digit, outcome.sip_code, outcome.answered) == (200, digit, 200, True)
    assert answered_text(report) == (outcome.duration_s, digit)
    assert outcome.text == f"Voice call answered, duration {outcome.duration_s} seconds. R = {digit}"
    assert outcome.call_id
    digits = [e.detail for e in report.timeline if e.kind == "digit"]
    assert digits[0] == f"{digit} {source}"
    assert kinds(report)[-4:] == ["hangup", "finished", "disconnected", "outcome"]
    assert report.flow is not None and report.flow.reason == "response" and report.flow.plays == 1
    if scenario != "uas_info.xml":  # uas_info still wants to send its 7 and counts our BYE as unexpected
        assert peer.wait(15) == 0, peer.errors()
    assert calls.pool.in_use == 0


@pytest.mark.parametrize(("scenario", "code", "text", "sip_code"), [
    ("uas_busy.xml", 600, "Busy", 486),
    ("uas_reject.xml", 602, "Rejected", 603),
    ("uas_error500.xml", 603, "Call failed (SIP 500)", 500),
])
def test_refused(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path],
                 scenario: str, code: int, text: str, sip_code: int) -> None:
    peer = sipp(scenario)
    report = calls.call(peer.uri, prompts["main"], response=True)
    outcome = report.outcome
    assert (outcome.code, outcome.text, outcome.sip_code, outcome.answered) == (code, text, sip_code, False)
    assert outcome.call_id and outcome.duration_s == 0 and outcome.digit is None
    assert "play" not in kinds(report)
    assert peer.wait(15) == 0, peer.errors()
    normal_call_works(calls, sipp, prompts["short"])


def test_no_answer_after_the_ring_timeout(calls: Calls, sipp: Callable[..., Sipp],
                                          prompts: dict[str, Path]) -> None:
    peer = sipp("uas_noanswer.xml")
    report = calls.call(peer.uri, prompts["main"], response=True)
    outcome = report.outcome
    assert (outcome.code, outcome.text, outcome.sip_code) == (601, "No answer", 487)
    final = next(e for e in report.timeline if e.kind == "disconnected")
    assert "ring timeout" in final.detail
    calling = next(e for e in report.timeline if e.kind == "calling")
    assert final.at_s - calling.at_s >= calls.pool.settings.ring_timeout_s - 0.5  # it rang that long
    assert "ringing" in kinds(report)
    assert peer.wait(15) == 0, peer.errors()  # it got our CANCEL, answered 487 and saw the ACK
    normal_call_works(calls, sipp, prompts["short"])


def test_far_end_hangs_up_mid_prompt(calls: Calls, sipp: Callable[..., Sipp],
                                     prompts: dict[str, Path]) -> None:
    peer = sipp("uas_far_hangup.xml")  # BYE 1.5 s after the answer; the prompt lasts 4 s
    report = calls.call(peer.uri, prompts["main"], response=True)
    outcome = report.outcome
    assert (outcome.code, outcome.sip_code, outcome.digit) == (200, 200, None)
    assert answered_text(report) == (outcome.duration_s, None)
    assert outcome.text == f"Voice call answered, duration {outcome.duration_s} seconds. No response"
    assert outcome.duration_s >= 1
    assert report.flow is not None and report.flow.reason == "far_end_hangup"
    assert "playback_done" not in kinds(report) and "hangup" not in kinds(report)
    assert peer.wait(15) == 0, peer.errors()
    normal_call_works(calls, sipp, prompts["short"])


def test_nine_replays_then_one_answers(calls: Calls, sipp: Callable[..., Sipp],
                                       prompts: dict[str, Path]) -> None:
    peer = sipp("uas_9_then_1.xml")  # 9 one second after the answer, 1 another 2.5 s later
    report = calls.call(peer.uri, prompts["main"], response=True)
    assert report.outcome.code == 200 and answered_text(report)[1] == "1"
    plays = [e for e in report.timeline if e.kind == "play"]
    assert [p.detail for p in plays] == ["main #1", "main #2"]
    digits = [e for e in report.timeline if e.kind == "digit"]
    assert [d.detail.split()[0] for d in digits] == ["9", "1"]
    assert digits[0].at_s <= plays[1].at_s <= digits[1].at_s  # the replay started on the 9
    assert report.flow is not None and report.flow.plays == 2
    assert peer.wait(15) == 0, peer.errors()


def test_no_key_ends_after_the_response_timeout(calls: Calls, sipp: Callable[..., Sipp],
                                                prompts: dict[str, Path]) -> None:
    peer = sipp("uas_no_key.xml")
    report = calls.call(peer.uri, prompts["short"], response=True)  # 1 s prompt, 3 s response timeout
    outcome = report.outcome
    assert answered_text(report) == (outcome.duration_s, None)
    assert outcome.text == f"Voice call answered, duration {outcome.duration_s} seconds. No response"
    assert outcome.duration_s >= 4  # the prompt, then the whole response timeout
    assert report.flow is not None and report.flow.reason == "timeout"
    assert kinds(report).count("playback_done") == 1
    done = next(e for e in report.timeline if e.kind == "playback_done")
    hangup = next(e for e in report.timeline if e.kind == "hangup")
    assert hangup.detail == "timeout" and hangup.at_s - done.at_s >= DIALER.response_timeout_s - 0.05
    assert peer.wait(15) == 0, peer.errors()


def test_no_response_wanted_hangs_up_after_the_prompt(calls: Calls, sipp: Callable[..., Sipp],
                                                      prompts: dict[str, Path]) -> None:
    peer = sipp("uas_no_key.xml")
    report = calls.call(peer.uri, prompts["short"], response=False, repeat=1)
    outcome = report.outcome
    assert outcome.text == f"Voice call answered, duration {outcome.duration_s} seconds."
    assert outcome.duration_s >= 2 and outcome.digit is None
    assert [e.detail for e in report.timeline if e.kind == "play"] == ["main #1", "main #2"]
    assert report.flow is not None and report.flow.reason == "played"
    assert peer.wait(15) == 0, peer.errors()


def test_malformed_sdp(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path]) -> None:
    peer = sipp("uas_bad_sdp.xml")
    report = calls.call(peer.uri, prompts["main"], response=True)
    outcome = report.outcome
    # pjsua refuses the answer's SDP (415, 'SDP negotiation failed'), ACKs and BYEs the dialog
    assert (outcome.code, outcome.text, outcome.sip_code, outcome.answered) == (
        603, "Call failed (SIP 415)", 415, False)
    assert "play" not in kinds(report)
    assert peer.wait(15) == 0, peer.errors()
    normal_call_works(calls, sipp, prompts["short"])


def test_unreachable_host(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path]) -> None:
    port = free_udp_port()  # nothing listens there: the INVITE is never answered at all
    report = calls.call(f"sip:1000@127.0.0.1:{port}", prompts["main"], response=True)
    outcome = report.outcome
    assert (outcome.code, outcome.text, outcome.answered) == (603, "Call failed (network error)", False)
    assert outcome.sip_code in (408, 487)  # our own timeout, kept beside the status
    assert "ringing" not in kinds(report)
    normal_call_works(calls, sipp, prompts["short"])


def test_sipp_killed_mid_call(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path]) -> None:
    peer = sipp("uas_no_key.xml")
    watched = EventLog()
    job = CallJob(job_id="killed", uri=peer.uri, prompt=prompts["main"], response=True)
    future = calls.runner.submit(run_call(calls.pool, job, DIALER, on_event=watched.note))
    watched.wait_for("answered")
    peer.proc.kill()  # by PID, mid-prompt (4 s long): no BYE will ever come
    peer.proc.wait(5)
    killed_at = time.monotonic()
    report = future.result(60)
    outcome = report.outcome
    playing = next(e for e in report.timeline if e.kind == "play")
    assert report.started_at + playing.at_s < killed_at < report.ended_at  # killed while the call was up
    # the far end vanished silently: the flow plays on and hangs up at the response timeout (or the
    # engine's RTP timeout ends the call first): answered, no key
    assert (outcome.code, outcome.digit, outcome.answered) == (200, None, True)
    assert outcome.text == f"Voice call answered, duration {outcome.duration_s} seconds. No response"
    assert report.flow is not None and report.flow.reason in ("timeout", "far_end_hangup")
    assert calls.pool.in_use == 0
    normal_call_works(calls, sipp, prompts["short"])
