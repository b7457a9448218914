"""Operator settings at the node SMSC: validity_period, data_coding for GSM-7, short-code and absent
senders, and a slow SMSC (late submit_sm_resp, throttling) that must not get any part twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sms import gsm
from sms.smpp import OutgoingPart
from tests.integration.sms.conftest import Recorder, settings_for, wait_until
from tests.integration.sms.peer import Smsc
from tests.integration.sms.test_resilience import assert_each_accepted_once, feed, keyed_parts

pytestmark = pytest.mark.integration


def one_part(source: str = "+12505550100", text: str = "Operator settings") -> OutgoingPart:
    encoded = gsm.encode(text, reference=1)
    return OutgoingPart("m:1", source, "+12505550199", encoded.parts[0], encoded.data_coding,
                        encoded.esm_class)


async def send(smsc: Smsc, part: OutgoingPart, **overrides: Any) -> Recorder:
    rec = Recorder()
    esme = rec.esme(settings_for(smsc, **overrides))
    await esme.start()
    await esme.submit(part)
    await wait_until(lambda: len(rec.accepted) + len(rec.refused) >= 1, what="the outcome")
    await esme.stop()
    return rec


def submitted(smsc: Smsc, part: OutgoingPart, **overrides: Any) -> dict[str, Any]:
    asyncio.run(send(smsc, part, **overrides))
    (sub,) = smsc.state()["submits"]
    return sub


@pytest.mark.parametrize(("setting", "wire"), [("48h", "000002000000000R"), ("90m", "000000013000000R"),
                                               ("000001000000000R", "000001000000000R"), ("", "")])
def test_validity_period_is_sent_relative(smsc: Smsc, setting: str, wire: str) -> None:
    assert submitted(smsc, one_part(), validity_period=setting)["validity_period"] == wire


@pytest.mark.parametrize("coding", [0x00, 0x01, 0xF0])
def test_gsm_data_coding(smsc: Smsc, coding: int) -> None:
    sub = submitted(smsc, one_part(), gsm_data_coding=coding)
    assert sub["data_coding"] == coding
    assert bytes.fromhex(sub["sm_hex"]) == one_part().short_message


def test_ucs2_keeps_its_data_coding(smsc: Smsc) -> None:
    encoded = gsm.encode("你好", reference=1)
    part = OutgoingPart("m:1", "ACME", "+12505550199", encoded.parts[0], encoded.data_coding, 0)
    assert submitted(smsc, part, gsm_data_coding=0xF0)["data_coding"] == gsm.UCS2


@pytest.mark.parametrize(("source", "address", "ton", "npi"), [
    ("72345", "72345", 3, 0),  # a short code
    ("+12505550100", "12505550100", 1, 1),
    ("ACME", "ACME", 5, 0),
    ("", "", 0, 0),  # no sender: the SMSC's default, not an empty alphanumeric address
])
def test_sender_ton_npi(smsc: Smsc, source: str, address: str, ton: int, npi: int) -> None:
    sub = submitted(smsc, one_part(source))
    assert (sub["source"], sub["source_ton"], sub["source_npi"]) == (address, ton, npi)


def test_slow_smsc_with_throttling_gets_no_part_twice(smsc: Smsc) -> None:
    """Every answer 3 s late (the response timeout is 1 s) and every third submit throttled: the ESME
    probes the link instead of resending, so each part is accepted exactly once."""
    smsc.configure(resp_delay_ms=3000, throttle_every=3)
    parts = keyed_parts(12)

    async def scenario() -> Recorder:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc, window=8, response_timeout_s=1.0, stalled_submit_s=60.0,
                                     throttle_backoff_s=0.05))
        await esme.start()
        await feed(esme, parts)
        await wait_until(lambda: len(rec.accepted) == len(parts), timeout_s=120.0, what="the whole batch")
        assert esme.stats.resubmitted == 0 and esme.stats.connects == 1
        assert esme.stats.throttled == smsc.state()["stats"]["throttled"] > 0
        await esme.stop()
        return rec

    rec = asyncio.run(scenario())
    assert_each_accepted_once(smsc, rec, 12)
    assert smsc.state()["stats"]["enquire_links"] >= 1  # the late answers were probed for, not resent


def test_submit_stalled_on_a_live_link_is_resent_after_stalled_submit_s(smsc: Smsc) -> None:
    """An SMSC that answers enquire_link but never the submit: after stalled_submit_s the session is
    rebuilt and the part resubmitted (SMPP's at-least-once), not before."""
    smsc.configure(hold=True)
    parts = keyed_parts(3)

    async def scenario() -> Recorder:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc, response_timeout_s=0.5, stalled_submit_s=5.0))
        await esme.start()
        await feed(esme, parts)
        await wait_until(lambda: smsc.state()["stats"]["held"] >= 3, what="the submits held")
        await wait_until(lambda: smsc.state()["stats"]["enquire_links"] >= 1, what="a probe")
        assert esme.stats.resubmitted == 0  # probed, not resent
        smsc.configure(hold=False)
        await wait_until(lambda: len(rec.accepted) == 3, what="the resubmission after the stall")
        assert esme.stats.resubmitted == 3 and esme.stats.connects == 2
        await esme.stop()
        return rec

    rec = asyncio.run(scenario())
    assert_each_accepted_once(smsc, rec, 3)
