"""Faults at the node SMSC: a restart mid-batch, a dropped connection, throttling; and MO messages.

"No message lost or sent twice" is read from the SMSC's own record file: every submit it accepted,
appended before its response was sent (so a kill -9 keeps it). Each part carries its key in its text.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from sms import gsm
from sms.smpp import Esme, OutgoingPart
from tests.integration.sms.conftest import Recorder, settings_for, wait_until
from tests.integration.sms.peer import Smsc

pytestmark = pytest.mark.integration


def keyed_parts(count: int) -> list[OutgoingPart]:
    return [OutgoingPart(f"k{i:03d}:0", "+12505550100", "+12505550199", f"key k{i:03d}".encode(), gsm.GSM7, 0)
            for i in range(count)]


def assert_each_accepted_once(smsc: Smsc, rec: Recorder, count: int) -> None:
    texts = Counter(entry["text"] for entry in smsc.recorded())
    assert texts == Counter({f"key k{i:03d}": 1 for i in range(count)})
    assert sorted(rec.accepted) == [f"k{i:03d}:0" for i in range(count)]
    assert all(len(ids) == 1 for ids in rec.accepted.values())
    assert rec.refused == []


async def feed(esme: Esme, parts: list[OutgoingPart]) -> None:
    for part in parts:
        await esme.submit(part)


def test_smsc_restarted_mid_batch(smsc: Smsc) -> None:
    parts = keyed_parts(60)

    async def scenario() -> Recorder:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc, window=8, rate_per_s=400.0))
        await esme.start()
        feeder = asyncio.create_task(feed(esme, parts))
        await wait_until(lambda: len(rec.accepted) >= 20, what="20 accepted")
        smsc.configure(hold=True)  # the SMSC now keeps submits unanswered, as a dying one would
        await wait_until(lambda: smsc.state()["stats"]["held"] >= 3, what="submits held")
        accepted_there = smsc.state()["stats"]["accepted"]
        await wait_until(lambda: len(rec.accepted) == accepted_there, what="every accepted answer read")
        assert esme.in_flight >= 3
        smsc.kill()
        smsc.start()
        await feeder
        await wait_until(lambda: len(rec.accepted) == len(parts), what="the whole batch")
        assert esme.stats.resubmitted >= 3 and esme.stats.connects >= 2
        await esme.stop()
        return rec

    rec = asyncio.run(scenario())
    assert_each_accepted_once(smsc, rec, 60)


def test_connection_dropped_without_answer(smsc: Smsc) -> None:
    smsc.configure(drop_after=15)
    parts = keyed_parts(40)

    async def scenario() -> Recorder:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc, window=8))
        await esme.start()
        await feed(esme, parts)
        await wait_until(lambda: len(rec.accepted) == len(parts), what="the whole batch")
        assert esme.stats.connects == 2
        await esme.stop()
        return rec

    rec = asyncio.run(scenario())
    assert smsc.state()["stats"]["dropped"] == 1
    assert_each_accepted_once(smsc, rec, 40)


@pytest.mark.parametrize("switch", [{"throttle_every": 4}, {"throttle_next": 12}])
def test_throttling_backs_off_then_delivers_everything(smsc: Smsc, switch: dict[str, int]) -> None:
    smsc.configure(**switch)
    parts = keyed_parts(40)

    async def scenario() -> Recorder:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc, window=8, throttle_backoff_s=0.02))
        await esme.start()
        await feed(esme, parts)
        await wait_until(lambda: len(rec.accepted) == len(parts), what="the whole batch")
        assert esme.stats.throttled == smsc.state()["stats"]["throttled"] > 0
        await esme.stop()
        return rec

    rec = asyncio.run(scenario())
    assert_each_accepted_once(smsc, rec, 40)


@pytest.mark.parametrize(("coding", "parts", "concat", "text"), [
    ("gsm", 1, "udh", "STOP"),
    ("ucs2", 1, "udh", "¿Qué tal? 你好"),
    ("gsm", 3, "udh", "Extended {chars} and € across parts: " + "abcdefghij" * 20),
    ("ucs2", 2, "udh", "多部分短信 " * 20),
    ("gsm", 2, "sar", "joined by SAR TLVs " * 12),
])
def test_mo_single_and_concatenated(smsc: Smsc, coding: str, parts: int, concat: str, text: str) -> None:
    async def scenario() -> Recorder:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc))
        await esme.start()
        await wait_until(lambda: esme.connected, what="bind")
        smsc.send_mo("+12505550123", "+12505550100", text, coding=coding, parts=parts, concat=concat)
        await wait_until(lambda: len(rec.incoming) == 1, what="the MO message")
        await esme.stop()
        return rec

    rec = asyncio.run(scenario())
    (incoming,) = rec.incoming
    assert (incoming.source, incoming.destination, incoming.text) == ("+12505550123", "+12505550100", text)
    assert smsc.state()["stats"]["deliver_ok"] == parts


def test_failing_mo_handler_asks_for_redelivery(smsc: Smsc) -> None:
    async def scenario() -> None:
        rec = Recorder()

        async def broken(_: object) -> None:
            raise RuntimeError("database down")

        esme = Esme(settings_for(smsc), on_accepted=rec.on_accepted, on_refused=rec.on_refused,
                    on_receipt=rec.on_receipt, on_incoming=broken)
        await esme.start()
        await wait_until(lambda: esme.connected, what="bind")
        smsc.send_mo("+12505550123", "+12505550100", "lost?")
        await wait_until(lambda: smsc.state()["stats"]["deliver_error"] == 1, what="the error answer")
        await esme.stop()

    asyncio.run(scenario())
    assert smsc.state()["delivers"] == [{"what": "mo", "status": 0x64}]
