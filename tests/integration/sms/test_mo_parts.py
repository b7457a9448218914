"""MO parts through the real ESME into a real store (sms.inbound.InboundHandler.on_mo_part): a part is
answered only once it is stored; a store failure answers ESME_RX_T_APPN so the SMSC delivers it again."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from pathlib import Path
from unittest import mock

import pytest

from api.core.phones import smpp_e164
from sms.inbound import InboundHandler, InboundOptions
from sms.smpp import Esme
from store import accounts, lists, mo_parts
from store.db import Database
from store.errors import StoreError
from store.models import Message
from tests.integration.sms.conftest import Recorder, settings_for, wait_until
from tests.integration.sms.peer import Smsc

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
NUMBER = "+12505550100"
TEXT = "Part one of a long reply that the SMSC splits into two deliver_sm for us to join again. " * 2


def store(path: Path) -> Database:
    db = Database.open(f"sqlite:///{path}")
    db.upgrade()
    with db.transaction() as session:
        owner = accounts.create_account(session, username="owner@example.com", password="pw-owner", now=T0)
        lists.set_virtual_number(session, NUMBER, owner.id, "", T0)
    return db


def test_a_part_is_answered_once_stored_and_refused_when_it_cannot_be(smsc: Smsc, tmp_path: Path) -> None:
    db = store(tmp_path / "store.db")
    handler = InboundHandler(db, InboundOptions(orgserver="gw"),
                             number=functools.partial(smpp_e164, region="US"))
    rec = Recorder()

    def answers() -> list[int]:
        return [d["status"] for d in smsc.state()["delivers"] if d["what"] == "mo"]

    async def scenario() -> None:
        esme = Esme(settings_for(smsc), on_accepted=rec.on_accepted, on_refused=rec.on_refused,
                    on_receipt=rec.on_receipt, on_incoming=rec.on_incoming, on_mo_part=handler.on_mo_part)
        await esme.start()
        await wait_until(lambda: esme.connected, what="bind")
        with mock.patch.object(mo_parts, "add_part", side_effect=StoreError("database down")):
            smsc.send_mo("2505553000", NUMBER, TEXT, parts=2, only=[1], source_ton=2)
            await wait_until(lambda: answers() == [0x64], what="the error answer")
        smsc.send_mo("2505553000", NUMBER, TEXT, parts=2, only=[1], source_ton=2)  # the SMSC's redelivery
        await wait_until(lambda: answers() == [0x64, 0], what="part 1 stored")
        with db.read() as session:
            assert mo_parts.pending(session) == 1
        smsc.send_mo("2505553000", NUMBER, TEXT, parts=2, only=[2], source_ton=2)
        await wait_until(lambda: answers() == [0x64, 0, 0], what="part 2 answered")
        await esme.stop()

    try:
        asyncio.run(scenario())
        with db.read() as session:
            (message,) = session.query(Message).filter(Message.kind == "mo").all()
            assert (message.phone, message.callerid, message.body) == ("+12505553000", NUMBER, TEXT)
            assert mo_parts.pending(session) == 0
        assert rec.incoming == []  # nothing went the in-memory way
    finally:
        db.dispose()
