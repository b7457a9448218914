"""Incoming SMS as the ESME hands them over, one deliver_sm at a time (InboundHandler.on_mo_part):
national numbers read in the default region, concatenated parts stored until the message is whole (in a
store that outlives the handler), overdue messages forwarded with `parts=k/n`."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qsl

import pytest
from sqlalchemy.orm import Session

from api.core.phones import smpp_e164
from sms import gsm, pdu
from sms.inbound import InboundHandler, InboundOptions, Recorded
from store import lists, mo_parts, outbox
from store.db import Database
from store.errors import StoreError
from store.models import Message
from tests.unit.sms.conftest import T0, Store

NUMBER = "+12505550100"
HOOK = "https://client.example/hook"
TIMEOUT_S = 300.0
OPTIONS = InboundOptions(orgserver="gw", mo_timeout_s=TIMEOUT_S)
INTERNATIONAL, NATIONAL, UNKNOWN = 1, 2, 0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def numbered(store: Store) -> Store:
    with store.db.transaction() as session:
        lists.set_virtual_number(session, NUMBER, store.owner_id, HOOK, T0)
    return store


def handler(db: Database, clock: Clock, region: str = "US") -> InboundHandler:
    return InboundHandler(db, OPTIONS, number=functools.partial(smpp_e164, region=region), now=clock)


def parts(text: str, reference: int, *, source: str = "12505553000", source_ton: int = NATIONAL,
          destination: str = "12505550100", dest_ton: int = INTERNATIONAL) -> list[pdu.ShortMessage]:
    encoded = gsm.encode(text, reference=reference)
    return [pdu.ShortMessage(source, destination, p, encoded.data_coding, encoded.esm_class,
                             source_ton=source_ton, source_npi=1, dest_ton=dest_ton, dest_npi=1)
            for p in encoded.parts]


def take(h: InboundHandler, sm: pdu.ShortMessage) -> Recorded | None:
    return asyncio.run(_take(h, sm))


async def _take(h: InboundHandler, sm: pdu.ShortMessage) -> Recorded | None:
    return await asyncio.to_thread(h.take_part, sm)


def webhooks(store: Store) -> list[dict[str, str]]:
    with store.db.read() as session:
        mos = session.query(Message).filter(Message.kind == "mo").order_by(Message.created_at).all()
        return [dict(parse_qsl(item.body)) for m in mos for item in outbox.for_message(session, m.id)]


def pending(store: Store) -> int:
    with store.db.read() as session:
        return mo_parts.pending(session)


@pytest.mark.parametrize("ton", [UNKNOWN, NATIONAL])
def test_national_stop_puts_the_e164_number_on_do_not_call(numbered: Store, ton: int) -> None:
    (stop,) = parts("STOP", 0, source="2505553000", source_ton=ton)
    recorded = take(handler(numbered.db, Clock()), stop)
    assert recorded is not None and recorded.message_id is not None
    with numbered.db.read() as session:
        assert lists.blocked(session, numbered.owner_id, ["+12505553000", "+2505553000"]) == {"+12505553000"}
    (hook,) = webhooks(numbered)
    assert (hook["phonefrom"], hook["phoneto"], hook["txt"]) == ("+12505553000", NUMBER, "STOP")


@pytest.mark.parametrize("ton", [UNKNOWN, NATIONAL])
def test_virtual_number_written_nationally_is_found(numbered: Store, ton: int) -> None:
    (hello,) = parts("hello", 0, destination="2505550100", dest_ton=ton)
    recorded = take(handler(numbered.db, Clock()), hello)
    assert recorded is not None and recorded.message_id is not None
    assert webhooks(numbered)[0]["phoneto"] == NUMBER


def test_parts_are_joined_in_any_order_interleaved_once_each(numbered: Store) -> None:
    h = handler(numbered.db, Clock())
    a = parts("A" * 300, 7)
    b = parts("你好" * 50 + "😀" * 20, 8)  # UCS-2, 3 parts
    assert len(b) == 3
    assert take(h, a[1]) is None and take(h, b[2]) is None and take(h, b[0]) is None
    assert take(h, a[1]) is None  # the SMSC redelivered a part: stored once
    assert pending(numbered) == 2
    whole_a = take(h, a[0])
    assert whole_a is not None and whole_a.parts is None
    whole_b = take(h, b[1])
    assert whole_b is not None and whole_b.parts is None
    assert pending(numbered) == 0
    texts = [hook["txt"] for hook in webhooks(numbered)]
    assert texts == ["A" * 300, "你好" * 50 + "😀" * 20]
    assert all("parts" not in hook for hook in webhooks(numbered))  # whole: the seed's six fields


def test_sar_parts_are_joined(numbered: Store) -> None:
    h = handler(numbered.db, Clock())
    sar = [pdu.ShortMessage("12505553000", "12505550100", t.encode(), source_ton=1, dest_ton=1,
                            tlvs=pdu.sar_tlvs(300, 2, i + 1)) for i, t in enumerate(["ab", "cd"])]
    assert take(h, sar[1]) is None
    assert take(h, sar[0]) is not None
    assert webhooks(numbered)[0]["txt"] == "abcd"


def test_a_part_survives_a_restart(numbered: Store, tmp_path: Path) -> None:
    first, second = parts("B" * 200, 9)
    assert take(handler(numbered.db, Clock()), first) is None
    url = numbered.db.url.render_as_string(hide_password=False)
    numbered.db.dispose()
    after = Database.open(url)  # a new process on the same store
    try:
        recorded = take(handler(after, Clock()), second)
        assert recorded is not None and recorded.parts is None
    finally:
        after.dispose()
    (hook,) = webhooks(numbered)
    assert hook["txt"] == "B" * 200 and hook["phonefrom"] == "+12505553000"


def test_overdue_message_is_forwarded_with_parts_received_of_announced(numbered: Store) -> None:
    clock = Clock()
    h = handler(numbered.db, clock)
    first, _, third = parts("C" * 400, 10)
    assert take(h, first) is None
    clock.now = T0 + dt.timedelta(seconds=100)
    assert take(h, third) is None
    clock.now = T0 + dt.timedelta(seconds=TIMEOUT_S)
    assert h.sweep() == []  # the timeout counts from the first part, and it has not passed yet
    clock.now = T0 + dt.timedelta(seconds=TIMEOUT_S + 1)
    (late,) = h.sweep()
    assert late.parts == (2, 3) and late.message_id is not None
    (hook,) = webhooks(numbered)
    assert hook["txt"] == "C" * 153 + "C" * (400 - 2 * 153) and hook["parts"] == "2/3"
    assert list(hook) == ["phonefrom", "phoneto", "id", "orgserver", "timestamp", "txt", "parts"]
    with numbered.db.read() as session:
        message = session.get(Message, late.message_id)
        assert message is not None and message.settings["parts"] == "2/3"
    assert h.sweep() == [] and pending(numbered) == 0


def test_the_timeout_counts_across_restarts(numbered: Store, tmp_path: Path) -> None:
    clock = Clock()
    first, _ = parts("D" * 200, 11)
    assert take(handler(numbered.db, clock), first) is None
    url = numbered.db.url.render_as_string(hide_password=False)
    numbered.db.dispose()
    after = Database.open(url)
    try:
        clock.now = T0 + dt.timedelta(seconds=TIMEOUT_S + 1)
        (late,) = handler(after, clock).sweep()  # what a restarted node does first
        assert late.parts == (1, 2)
    finally:
        after.dispose()
    assert webhooks(numbered)[0]["parts"] == "1/2"


def test_parts_to_a_number_that_is_not_ours_are_not_kept(store: Store) -> None:
    first, _ = parts("E" * 200, 12)
    recorded = take(handler(store.db, Clock()), first)
    assert recorded is not None and recorded.message_id is None
    assert pending(store) == 0


def test_a_part_with_an_impossible_position_is_forwarded_alone(numbered: Store) -> None:
    bad = pdu.ShortMessage("12505553000", "12505550100", gsm.udh_concat(5, 2, 3) + b"xyz", 0, gsm.UDHI,
                           source_ton=1, dest_ton=1)
    recorded = take(handler(numbered.db, Clock()), bad)
    assert recorded is not None and recorded.message_id is not None
    assert webhooks(numbered)[0]["txt"] == "xyz" and pending(numbered) == 0


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_any_order_with_redeliveries_gives_the_text_once(numbered: Store, order: tuple[int, ...]) -> None:
    h = handler(numbered.db, Clock())
    text = "Ça va? " + "über Straße, Äpfel " * 17  # GSM-7 with accented letters: 3 parts
    pieces = parts(text, 13)
    assert len(pieces) == 3
    arrivals = [pieces[order[0]], pieces[order[0]], pieces[order[1]], pieces[order[1]], pieces[order[2]]]
    results = [take(h, sm) for sm in arrivals]
    assert [r is not None for r in results] == [False, False, False, False, True]
    assert [hook["txt"] for hook in webhooks(numbered)] == [text]
    assert pending(numbered) == 0


def test_a_message_the_store_cannot_forward_does_not_hold_up_the_others(numbered: Store) -> None:
    clock = Clock()
    h = handler(numbered.db, clock)
    assert take(h, parts("F" * 200, 20)[0]) is None
    clock.now = T0 + dt.timedelta(seconds=1)
    assert take(h, parts("G" * 200, 21)[0]) is None
    clock.now = T0 + dt.timedelta(seconds=TIMEOUT_S + 2)
    real_take = mo_parts.take
    calls: list[int] = []

    def failing_first(session: Session, group_id: int) -> mo_parts.Taken | None:  # failure injection
        calls.append(group_id)
        if len(calls) == 1:
            raise StoreError("database error: OperationalError")
        return real_take(session, group_id)

    with mock.patch.object(mo_parts, "take", side_effect=failing_first):
        (forwarded,) = h.sweep()
    assert forwarded.parts == (1, 2) and [hook["txt"] for hook in webhooks(numbered)] == ["G" * 153]
    (again,) = h.sweep()  # the next sweep forwards the one that failed
    assert again.parts == (1, 2) and pending(numbered) == 0
