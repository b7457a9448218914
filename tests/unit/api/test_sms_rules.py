"""Whether SMS are accepted (sms_configured) and whether a process binds (runs_sms_node): rules on the
settings alone, so every process of a deployment answers the same."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.cli.commands.serve import api_only, with_arguments
from api.core.errors import InvalidTxt
from api.core.service import sms_parts
from api.core.settings import Settings, SmsSettings, runs_sms_node, sms_configured
from sms import gsm
from sms.errors import TooManyParts
from sms.smpp import SmppSettings

SMSC = SmppSettings(host="smsc.example.net", system_id="ivrgate", password="secret")


def serve_args(*flags: str) -> argparse.Namespace:
    return argparse.Namespace(host=None, port=None, certfile=None, keyfile=None, http_processes=None,
                              no_worker="--no-worker" in flags)


@pytest.mark.parametrize(("settings", "configured", "binds"), [
    (Settings(), False, False),
    (Settings(sms_service=SmsSettings(enabled=True)), False, False),
    (Settings(sms=SMSC), True, True),
    (Settings(sms=SMSC, sms_service=SmsSettings(enabled=False)), True, False),
])
def test_rules(settings: Settings, configured: bool, binds: bool) -> None:
    assert sms_configured(settings) is configured
    assert runs_sms_node(settings) is binds


def test_extra_http_processes_accept_sms_without_binding() -> None:
    first = Settings(sms=SMSC)
    extra = api_only(first)  # the settings of serve --http-processes' other processes
    assert sms_configured(extra) and not runs_sms_node(extra)
    assert not sms_configured(api_only(Settings()))


def test_no_worker_keeps_the_sms_node() -> None:
    """An SMS-only gateway is `serve --no-worker` with an SMSC: it needs no SIP trunk and still sends."""
    settings = with_arguments(Settings(sms=SMSC), serve_args("--no-worker"))
    assert not settings.worker.enabled and runs_sms_node(settings)


ALPHABET = "a€你😀 {" + "é"
"""GSM-7, a GSM-7 escape, UCS-2 and a surrogate pair: texts of every layout."""


@given(text=st.text(alphabet=ALPHABET, min_size=1, max_size=1200), cap=st.integers(1, 8))
@settings(max_examples=300, deadline=None)
def test_submission_refuses_exactly_what_the_sender_could_not_encode(text: str, cap: int) -> None:
    """One rule: api.core.service.sms_parts refuses (511) exactly the texts sms.gsm.encode refuses at send
    time, and prices the others by the parts they are sent as."""
    try:
        encoded = gsm.encode(text, reference=1, max_parts=cap)
    except TooManyParts:
        with pytest.raises(InvalidTxt):
            sms_parts(text, cap)
    else:
        assert sms_parts(text, cap) == len(encoded.parts)
