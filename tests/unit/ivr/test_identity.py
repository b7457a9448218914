"""Caller identity (issue 12, item 6): From, P-Asserted-Identity and Privacy per `callerid_mode`."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.identity import InvalidCallerId, caller_identity, check_caller_id, sip_domain
from ivr.settings import SipSettings

TRUNK = SipSettings(trunk_host="trunk.example:5060", username="alice", caller_id="15550001")
REGISTERED = SipSettings(registrar="sip:pbx.example;transport=udp", trunk_host="trunk.example",
                         username="alice")


def test_the_domain_is_the_registrars_then_the_trunks_then_ours() -> None:
    assert sip_domain(REGISTERED) == "pbx.example"
    assert sip_domain(TRUNK) == "trunk.example"  # no port: pjsip drops it from From anyway
    assert sip_domain(SipSettings(trunk_host="[2001:db8::1]:5060")) == "[2001:db8::1]"
    assert sip_domain(SipSettings(registrar="sip:10.0.0.1:5090")) == "10.0.0.1"
    assert sip_domain(SipSettings()) == "127.0.0.1"
    assert sip_domain(SipSettings(public_address="203.0.113.7")) == "203.0.113.7"


def test_from_mode_puts_the_number_in_from_at_the_trunk_domain() -> None:
    ident = caller_identity(TRUNK, "", "Clinic")
    assert ident.from_header == '"Clinic" <sip:15550001@trunk.example>'
    assert ident.headers == {}
    per_call = caller_identity(REGISTERED, "+12505550123", 'Dr "Who"')
    assert per_call.from_header == r'"Dr \"Who\"" <sip:+12505550123@pbx.example>'


def test_from_mode_with_p_asserted_identity_and_privacy() -> None:
    s = SipSettings(trunk_host="t.example", caller_id="15550001", p_asserted_identity=True,
                    callerid_privacy=True)
    ident = caller_identity(s)
    assert ident.from_header == "<sip:15550001@t.example>"
    assert ident.headers == {"P-Asserted-Identity": "<sip:15550001@t.example>", "Privacy": "id"}


def test_pai_mode_keeps_the_auth_user_in_from() -> None:
    s = SipSettings(registrar="sip:pbx.example", username="alice", callerid_mode="pai", display_name="Clinic")
    ident = caller_identity(s, "+12505550123")
    assert ident.from_header == '"Clinic" <sip:alice@pbx.example>'
    assert ident.headers == {"P-Asserted-Identity": "<sip:+12505550123@pbx.example>"}
    private = caller_identity(SipSettings(trunk_host="t.example", username="alice", callerid_mode="pai",
                                          callerid_privacy=True), "15550001")
    assert private.from_header == "<sip:alice@t.example>"
    assert private.headers == {"P-Asserted-Identity": "<sip:15550001@t.example>", "Privacy": "id"}
    assert caller_identity(SipSettings(callerid_mode="pai")).from_header == "<sip:ivrgate@127.0.0.1>"


def test_no_caller_id_keeps_the_accounts_from() -> None:
    assert caller_identity(SipSettings()).from_header == ""


@given(st.text(max_size=40))
def test_only_numbers_are_caller_ids(text: str) -> None:
    valid = re.fullmatch(r"\+?[0-9]{1,32}", text) is not None
    if valid or not text:
        assert check_caller_id(text) == text
    else:
        with pytest.raises(InvalidCallerId):
            check_caller_id(text)


def test_settings_refuse_a_bad_caller_id_or_mode() -> None:
    with pytest.raises(ValueError, match="caller ID must be a number"):
        SipSettings(caller_id="Clinic")
    with pytest.raises(ValueError, match="callerid_mode must be from or pai"):
        SipSettings(callerid_mode="both")
