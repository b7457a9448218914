"""run_call through a real engine pool when the far end changes or refuses the media (issue 12):
re-INVITEs (hold/resume, PCMA, a new port), and after each the same pool serves a normal call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import (
    Calls,
    Sipp,
    answered_text,
    kinds,
    normal_call_works,
    pool_settings,
    start_pool,
    stop_pool,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
REINVITES = ["uas_hold_resume.xml", "uas_reinvite_pcma.xml", "uas_reinvite_port.xml"]


@pytest.fixture(scope="module")
def calls() -> Iterator[Calls]:
    """Two engines, as conftest's, with sip.telephone_event_realign on (for uas_rfc4733_pt96.xml)."""
    running = start_pool(pool_settings(2, ring_timeout_s=3.0, telephone_event_realign=True))
    yield running
    stop_pool(running)


@pytest.mark.parametrize("scenario", REINVITES)
def test_prompt_ends_after_a_reinvite(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path],
                                      scenario: str) -> None:
    """No response asked: the call ends when the prompt has played (it never did before the fix: the
    player stayed on the old stream and the call ran to max_call_s)."""
    peer = sipp(scenario)
    report = calls.call(peer.uri, prompts["short"], response=False)
    outcome = report.outcome
    assert (outcome.code, outcome.sip_code, outcome.digit) == (200, 200, None)
    assert outcome.text == f"Voice call answered, duration {outcome.duration_s} seconds."
    assert report.flow is not None and report.flow.reason == "played"
    assert kinds(report).count("media") >= 2  # the answer and the re-INVITE(s)
    assert kinds(report).count("playback_done") == 1
    assert peer.wait(15) == 0, peer.errors()
    assert calls.pool.in_use == 0


@pytest.mark.parametrize("scenario", REINVITES)
def test_digit_after_a_reinvite(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path],
                                scenario: str) -> None:
    peer = sipp(scenario)
    report = calls.call(peer.uri, prompts["main"], response=True)
    assert answered_text(report) == (report.outcome.duration_s, "1")
    medias = [e for e in report.timeline if e.kind == "media"]
    digit = next(e for e in report.timeline if e.kind == "digit")
    assert digit.detail == "1 rfc4733" and digit.at_s > medias[-1].at_s
    assert peer.wait(15) == 0, peer.errors()


@pytest.mark.parametrize("scenario", ["uas_rfc4733_pt101.xml", "uas_rfc4733_pt96.xml"])
def test_answer_payload_type(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path],
                             scenario: str) -> None:
    """The callee answers telephone-event 101 (or 96, then we re-INVITE offering 96: this module's
    pool has telephone_event_realign) and sends on it:
    the key is the response (before issue 12 it was dropped and the call ended 'No response')."""
    peer = sipp(scenario)
    report = calls.call(peer.uri, prompts["main"], response=True)
    assert answered_text(report) == (report.outcome.duration_s, "1")
    assert next(e for e in report.timeline if e.kind == "digit").detail == "1 rfc4733"
    assert peer.wait(15) == 0, peer.errors()


def test_no_common_codec_fails_415(calls: Calls, sipp: Callable[..., Sipp], prompts: dict[str, Path]) -> None:
    """A 200 with only G.729: 'Call failed (SIP 415)' like any SDP pjsua refuses (docs/calls.md), not
    answered, so not charged (before issue 12: 'answered, duration 0 seconds. No response')."""
    peer = sipp("uas_no_common_codec.xml")
    report = calls.call(peer.uri, prompts["main"], response=True)
    outcome = report.outcome
    assert (outcome.code, outcome.text, outcome.sip_code, outcome.answered, outcome.duration_s) == (
        603, "Call failed (SIP 415)", 415, False, 0)
    assert "answered" not in kinds(report) and "play" not in kinds(report)
    assert peer.wait(15) == 0, peer.errors()
    normal_call_works(calls, sipp, prompts["short"])
