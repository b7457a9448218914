"""SipSettings reach the wire: registration with digest authentication, outbound proxy, TCP, caller ID,
display name and P-Asserted-Identity, codec order, User-Agent. SIPp on 127.0.0.1 is the peer; what it
received is read back from its message trace (-trace_msg)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.settings import SipSettings
from ivr.sip import REGISTRATION_REF

from .conftest import Agent, Sipp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def traced(sipp: Callable[..., Sipp], scenario: str, tmp_path: Path, *args: str) -> tuple[Sipp, Path]:
    """Start `scenario` with every message it sends and receives written to a trace file."""
    trace = tmp_path / f"{scenario}.msg"
    return sipp(scenario, "-trace_msg", "-message_file", str(trace), *args), trace


def received(trace: Path, method: str) -> list[str]:
    """The requests of `method` SIPp received, each as its whole text (headers and body)."""
    out = []
    for block in re.split(r"^-{10,}.*$", trace.read_text(errors="replace"), flags=re.MULTILINE):
        title, _, message = block.strip().partition("\n")
        if "message received" in title and message.strip().startswith(f"{method} sip:"):
            out.append(message.strip())
    return out


def header(message: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*?)\s*$", message, re.MULTILINE | re.IGNORECASE)
    assert match, f"no {name} header in:\n{message}"
    return match.group(1)


def call_and_hang_up(agent: Agent, uri: str, **kwargs: str) -> None:
    agent.ua.call("c1", uri, **kwargs)
    agent.log.wait("c1", "answered")
    agent.ua.hangup("c1")
    assert agent.log.wait("c1", "disconnected")[0].sip_code == 200


def test_registers_with_digest_authentication(make_ua: Callable[..., Agent],
                                              sipp: Callable[..., Sipp]) -> None:
    peer = sipp("uas_register_auth.xml")
    agent = make_ua(SipSettings(registrar=f"sip:127.0.0.1:{peer.port}", username="alice", password="s3cret"))
    event = agent.log.wait(REGISTRATION_REF, "registration")[0]
    assert (event.sip_code, event.reason) == (200, "OK")
    assert agent.ua.registration == (200, "OK")
    agent.ua.stop()  # un-registers: the scenario answers that REGISTER too
    assert peer.wait() == 0, peer.errors()


def test_a_wrong_password_is_reported(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp],
                                      caplog: pytest.LogCaptureFixture) -> None:
    peer = sipp("uas_register_auth.xml")
    with caplog.at_level("ERROR", logger="ivr.sip"):
        agent = make_ua(SipSettings(registrar=f"sip:127.0.0.1:{peer.port}", username="alice",
                                    password="wrong"))
        event = agent.log.wait(REGISTRATION_REF, "registration")[0]
    assert (event.sip_code, event.reason) == (403, "Forbidden")
    assert agent.ua.registration == (403, "Forbidden")
    assert f"registration with sip:127.0.0.1:{peer.port} failed: 403 Forbidden" in caplog.text
    assert peer.wait() == 0, peer.errors()


def test_invite_carries_identity_user_agent_and_codec_order(
        make_ua: Callable[..., Agent], sipp: Callable[..., Sipp], tmp_path: Path) -> None:
    peer, trace = traced(sipp, "uas_no_key.xml", tmp_path, "-m", "2")
    settings = SipSettings(caller_id="15550001", display_name="Clinic", p_asserted_identity=True,
                           user_agent="ivrgate-test/9", codecs=("PCMA/8000", "PCMU/8000"))
    agent = make_ua(settings)
    call_and_hang_up(agent, peer.uri)
    agent.ua.call("c2", peer.uri, caller_id="15559999", display_name='Dr "Who"')
    agent.log.wait("c2", "answered")
    agent.ua.hangup("c2")
    agent.log.wait("c2", "disconnected")
    assert peer.wait() == 0, peer.errors()
    first, second = received(trace, "INVITE")
    assert header(first, "From").startswith('"Clinic" <sip:15550001@127.0.0.1>')
    assert header(first, "P-Asserted-Identity") == "<sip:15550001@127.0.0.1>"
    assert header(first, "User-Agent") == "ivrgate-test/9"
    media = re.search(r"^m=audio \d+ RTP/AVP ([\d ]+)$", first, re.MULTILINE)
    assert media is not None
    assert media.group(1).split()[:2] == ["8", "0"]  # PCMA before PCMU
    assert "G722" not in first and "speex" not in first.lower()  # codecs not listed are off
    assert header(second, "From").startswith(r'"Dr \"Who\"" <sip:15559999@127.0.0.1>')
    assert header(second, "P-Asserted-Identity") == "<sip:15559999@127.0.0.1>"


def test_calls_through_the_outbound_proxy(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp],
                                         tmp_path: Path) -> None:
    proxy, trace = traced(sipp, "uas_no_key.xml", tmp_path)
    agent = make_ua(SipSettings(outbound_proxy=f"127.0.0.1:{proxy.port}"))  # no sip:, no ;lr: added
    callee = "sip:bob@127.0.0.2:5999"  # nobody listens there: the INVITE must go to the proxy
    call_and_hang_up(agent, callee)
    assert proxy.wait() == 0, proxy.errors()
    (invite,) = received(trace, "INVITE")
    assert invite.startswith(f"INVITE {callee} SIP/2.0")
    assert header(invite, "Route") == f"<sip:127.0.0.1:{proxy.port};lr>"


def test_tcp_transport(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp], tmp_path: Path) -> None:
    peer, trace = traced(sipp, "uas_no_key.xml", tmp_path, "-t", "t1")
    agent = make_ua(SipSettings(transport="tcp"))
    call_and_hang_up(agent, peer.uri)
    assert peer.wait() == 0, peer.errors()
    (invite,) = received(trace, "INVITE")
    assert header(invite, "Via").startswith("SIP/2.0/TCP ")


@pytest.mark.parametrize("mode", ["from", "pai"])
def test_caller_id_modes_on_the_wire(make_ua: Callable[..., Agent], sipp: Callable[..., Sipp],
                                     tmp_path: Path, mode: str) -> None:
    """Issue 12, item 6: `from` keeps the trunk's domain in From (not our bind address); `pai` keeps the
    auth user in From and asserts the number in P-Asserted-Identity; Privacy: id when asked."""
    peer, trace = traced(sipp, "uas_no_key.xml", tmp_path)
    # the call goes to peer.uri; the trunk host only names our From domain (never resolved)
    settings = SipSettings(trunk_host="trunk.ivrgate.test:5060", username="alice", callerid_mode=mode,
                           callerid_privacy=True, display_name="Clinic")
    agent = make_ua(settings)
    call_and_hang_up(agent, peer.uri, caller_id="+12505550123")
    assert peer.wait() == 0, peer.errors()
    (invite,) = received(trace, "INVITE")
    domain = "trunk.ivrgate.test"  # the trunk's, not our bind address (pjsip drops a From port)
    if mode == "from":
        assert header(invite, "From").startswith(f'"Clinic" <sip:+12505550123@{domain}>')
        assert not re.search(r"^P-Asserted-Identity:", invite, re.MULTILINE | re.IGNORECASE)
    else:
        assert header(invite, "From").startswith(f'"Clinic" <sip:alice@{domain}>')
        assert header(invite, "P-Asserted-Identity") == f"<sip:+12505550123@{domain}>"
    assert header(invite, "Privacy") == "id"
