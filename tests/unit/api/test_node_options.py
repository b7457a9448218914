"""Which peers a node runs (api.runtime.node.NodeOptions), from the settings and the command's options, and
the
order they start in: a rule on the settings alone."""

from __future__ import annotations

import argparse
import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from api.cli.commands.serve import api_only, with_arguments
from api.core.settings import Settings, SmsSettings, SmtpSettings
from api.runtime.node import NodeOptions
from sms.smpp import SmppSettings

SMSC = SmppSettings(host="smsc.example.net", system_id="ivrgate", password="secret")
ORDER = ["callbacks", "voice", "sms", "smtp", "http"]


def serve_args(*flags: str) -> argparse.Namespace:
    return argparse.Namespace(host=None, port=None, certfile=None, keyfile=None, http_processes=None,
                              no_worker="--no-worker" in flags)


def test_serve_runs_every_peer_with_an_smsc() -> None:
    assert NodeOptions.for_serve(Settings(sms=SMSC)).peers() == ORDER


def test_serve_without_an_smsc_or_smtp() -> None:
    settings = Settings(smtp=SmtpSettings(enabled=False))
    assert NodeOptions.for_serve(settings).peers() == ["callbacks", "voice", "http"]


def test_serve_no_worker_keeps_sms_and_its_callbacks() -> None:
    settings = with_arguments(Settings(sms=SMSC), serve_args("--no-worker"))
    assert NodeOptions.for_serve(settings).peers() == ["callbacks", "sms", "smtp", "http"]


def test_api_only_serve_sends_no_callbacks() -> None:
    settings = with_arguments(Settings(sms=SMSC, sms_service=SmsSettings(enabled=False)),
                              serve_args("--no-worker"))
    assert NodeOptions.for_serve(settings).peers() == ["smtp", "http"]


def test_extra_http_processes_serve_only() -> None:
    assert NodeOptions.for_serve(api_only(Settings(sms=SMSC))).peers() == ["http"]


def test_worker_has_no_fronts() -> None:
    assert NodeOptions.for_worker(Settings(sms=SMSC)).peers() == ["callbacks", "voice", "sms"]
    assert NodeOptions.for_worker(Settings(), callbacks=False).peers() == ["voice"]


@given(st.lists(st.booleans(), min_size=5, max_size=5))
def test_peers_start_in_one_order(flags: list[bool]) -> None:
    options = NodeOptions(**dict(zip(ORDER, flags, strict=True)))
    peers = options.peers()
    assert peers == [name for name in ORDER if name in peers]
    assert {field.name for field in dataclasses.fields(options) if getattr(options, field.name)} == set(peers)
