"""Faults end every call with a 'disconnected' carrying a SIP code or a reason, and the user agent goes
on serving: the far end killed mid-call, an unreachable host, a peer that never answers, malformed
SDP, a 500 (the last three: test_sipp_uas.py). The unreachable host waits for pjsip's 32 s transaction
timeout: it is marked slow."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Agent, Sipp, free_udp_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def next_call_works(agent: Agent, sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_no_key.xml")
    agent.ua.call("next", peer.uri)
    agent.log.wait("next", "answered")
    agent.ua.hangup("next")
    assert agent.log.wait("next", "disconnected")[0].sip_code == 200
    assert peer.wait() == 0, peer.errors()
    assert agent.ua.active == 0 and agent.ua.alive


def test_far_end_killed_mid_call(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp]) -> None:
    agent = make_ua(rtp_timeout_s=1.0)
    peer = sipp("uas_audio.xml")
    agent.ua.call("c1", peer.uri)
    answered = agent.log.wait("c1", "answered")[0]
    agent.log.wait("c1", "media")
    agent.ua.hangup("nobody")  # a command round trip: the RTP check has seen the first packets
    peer.proc.kill()  # SIGKILL by PID: no BYE, no more RTP, and nobody answers our BYE
    peer.proc.wait(5)
    gone = agent.log.wait("c1", "disconnected", timeout=10)[0]
    assert gone.reason == "no RTP"
    assert gone.sip_code == 200  # pjsua ends the call as it sends the BYE (the last code was the 200)
    assert gone.t - answered.t >= 1.0
    next_call_works(agent, sipp)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_unreachable_host_times_out(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp]) -> None:
    agent = make_ua()
    closed = free_udp_port()  # nobody listens: the INVITE gets no response at all
    agent.ua.call("c1", f"sip:1000@127.0.0.1:{closed}")
    calling = agent.log.wait("c1", "calling")[0]
    gone = agent.log.wait("c1", "disconnected", timeout=45)[0]
    assert (gone.sip_code, gone.reason) == (408, "Request Timeout")
    assert gone.t - calling.t >= 31.0  # pjsip's Timer B: pjsua2 cannot shorten it
    assert not agent.log.of("c1", "ringing")
    next_call_works(agent, sipp)
