"""The ESME on every event loop the product runs on: asyncio's and uvloop's (`ivrgate serve` picks
uvloop when it is installed, and uvloop's transports are no `asyncio.Transport`). Each scenario binds
to the node SMSC, submits, reads receipts, takes an MO message and survives a dropped connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from sms import gsm
from sms.smpp import OutgoingPart
from tests.integration.sms.conftest import Recorder, settings_for, wait_until
from tests.integration.sms.peer import Smsc

pytestmark = pytest.mark.integration

Runner = Callable[[Coroutine[Any, Any, Any]], Any]
LOOPS: dict[str, Runner] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


def keyed(count: int) -> list[OutgoingPart]:
    return [OutgoingPart(f"m{i:02d}:1", "ACME", "+12505550199", f"loop test {i:02d}".encode(), gsm.GSM7, 0)
            for i in range(count)]


@pytest.mark.parametrize("loop", LOOPS)
def test_submit_receipts_and_mo(smsc: Smsc, loop: str) -> None:
    parts = keyed(10)

    async def scenario() -> tuple[Recorder, str]:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc))
        await esme.start()
        for part in parts:
            await esme.submit(part)
        await wait_until(lambda: len(rec.receipts) == len(parts), what="a receipt per part")
        smsc.wait_receiver()
        smsc.send_mo("+12505550123", "+12505550100", "STOP")
        await wait_until(lambda: len(rec.incoming) == 1, what="the MO message")
        await esme.stop()
        return rec, type(asyncio.get_running_loop()).__module__

    rec, module = LOOPS[loop](scenario())
    assert module.split(".")[0] == loop
    assert sorted(rec.accepted) == [p.key for p in parts] and rec.refused == []
    accepted_ids = {ids[0] for ids in rec.accepted.values()}
    assert {r.smsc_id for r in rec.receipts} == accepted_ids
    assert {r.state for r in rec.receipts} == {"DELIVRD"}
    (incoming,) = rec.incoming
    assert (incoming.source, incoming.text) == ("+12505550123", "STOP")
    assert sorted(s["text"] for s in smsc.state()["submits"]) == [f"loop test {i:02d}" for i in range(10)]


@pytest.mark.parametrize("loop", LOOPS)
def test_dropped_connection_resubmits(smsc: Smsc, loop: str) -> None:
    smsc.configure(drop_after=6, dlr=False)
    parts = keyed(20)

    async def scenario() -> Recorder:
        rec = Recorder()
        esme = rec.esme(settings_for(smsc, window=4))
        await esme.start()
        for part in parts:
            await esme.submit(part)
        await wait_until(lambda: len(rec.accepted) == len(parts), what="the whole batch")
        assert esme.stats.connects == 2
        await esme.stop()
        return rec

    rec = LOOPS[loop](scenario())
    assert smsc.state()["stats"]["dropped"] == 1
    texts = sorted(entry["text"] for entry in smsc.recorded())
    assert texts == [f"loop test {i:02d}" for i in range(20)]
    assert all(len(ids) == 1 for ids in rec.accepted.values())
