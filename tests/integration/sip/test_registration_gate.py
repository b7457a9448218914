"""With a registrar configured, calls wait for the first successful REGISTER and fail when it fails
or does not come in time (issue 12, item 10). SIPp plays the registrar (samples/sipp/
uas_register_auth.xml: 401 challenge, then 200 for the right password, 403 for a wrong one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.dialer import CallJob, run_call
from ivr.events import NOT_REGISTERED
from ivr.pool import EnginePool
from ivr.settings import DialerSettings, SipSettings
from ivr.sip import REGISTRATION_REF
from tests.procfs import free_block

from .conftest import Agent, PhoneProcess, Sipp, free_udp_port, write_prompt

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def registrar(peer: Sipp, password: str, **more: object) -> SipSettings:
    return SipSettings(registrar=f"sip:127.0.0.1:{peer.port}", username="alice", password=password,
                       **more)  # type: ignore[arg-type]


def test_a_call_waits_for_the_registration(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp],
                                           phone: Callable[..., PhoneProcess]) -> None:
    peer = sipp("uas_register_auth.xml")
    far = phone("--ring", "0.1")
    agent = make_ua(registrar(peer, "s3cret"))
    agent.ua.call("c1", far.uri)  # at once: the REGISTER (401, then 200) is still under way
    registered = agent.log.wait(REGISTRATION_REF, "registration")[0]
    calling = agent.log.wait("c1", "calling")[0]
    assert registered.sip_code == 200
    assert registered.t <= calling.t  # the INVITE left after the 200, not before
    agent.log.wait("c1", "answered")
    agent.ua.hangup("c1")
    agent.log.wait("c1", "disconnected")
    assert len(far.results()) == 1


def test_a_failed_registration_fails_the_call_without_dialling(make_ua: Callable[..., Agent],
                                                               sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_register_auth.xml")
    agent = make_ua(registrar(peer, "wrong"))
    nowhere = f"sip:1000@127.0.0.1:{free_udp_port()}"
    agent.ua.call("held", nowhere)  # waits, then fails with the 403
    assert agent.log.wait(REGISTRATION_REF, "registration")[0].sip_code == 403
    (error,) = agent.log.wait("held", "error")
    assert error.reason == f"{NOT_REGISTERED}: 403 Forbidden"
    agent.ua.call("after", nowhere)  # while the registration stands failed: at once
    assert agent.log.wait("after", "error")[0].reason == f"{NOT_REGISTERED}: 403 Forbidden"
    assert agent.log.of("held", "calling") == [] and agent.log.of("after", "calling") == []
    assert peer.wait() == 0, peer.errors()


def test_a_silent_registrar_fails_the_call_after_the_wait(make_ua: Callable[..., Agent]) -> None:
    silent = free_udp_port()  # nothing answers the REGISTER
    agent = make_ua(SipSettings(registrar=f"sip:127.0.0.1:{silent}", username="alice", password="x",
                                register_wait_s=1.0))
    agent.ua.call("c1", f"sip:1000@127.0.0.1:{free_udp_port()}")
    (error,) = agent.log.wait("c1", "error", timeout=10)
    assert error.reason.startswith(f"{NOT_REGISTERED}: no registration with sip:127.0.0.1:{silent} in 1.0 s")
    assert agent.log.of("c1", "calling") == []


def test_the_dialer_records_call_failed_registration(sipp: Callable[..., Sipp], tmp_path: Path) -> None:
    peer = sipp("uas_register_auth.xml")
    sip = registrar(peer, "wrong", port=free_block(1), rtp_port=free_block(16), rtp_ports_per_process=16,
                    processes=1)
    prompt = tmp_path / "p.wav"
    write_prompt(prompt, 1.0)

    async def scenario() -> None:
        pool = EnginePool(sip)
        await pool.start()
        try:
            nowhere = f"sip:1000@127.0.0.1:{free_udp_port()}"
            job = CallJob(job_id="r", uri=nowhere, prompt=prompt, response=True)
            report = await run_call(pool, job, DialerSettings())
        finally:
            await pool.stop()
        outcome = report.outcome
        assert (outcome.code, outcome.text, outcome.answered) == (603, "Call failed (registration)", False)

    asyncio.run(scenario())
