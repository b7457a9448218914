"""Incoming SMS: history, the seed's webhook form, STOP/START on the do-not-call list, HELP answered."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from urllib.parse import parse_qsl

from api.core.phones import smpp_e164
from sms.inbound import (
    MO_KIND,
    InboundHandler,
    InboundOptions,
    record_incoming,
    webhook_body,
)
from sms.keywords import Keyword
from sms.receipts import Incoming
from store import lists, outbox, queue
from store.models import Message
from tests.unit.sms.conftest import T0, Store

NUMBER = "+12505550100"
HOOK = "https://client.example/hook"
US_NUMBERS = functools.partial(smpp_e164, region="US")
OPTIONS = InboundOptions(orgserver="sms.example.com", help_text="Example alerts. Reply STOP to end.",
                         stop_reply="You will get no more messages.")


def mo(text: str, source: str = "+16045550123", destination: str = NUMBER) -> Incoming:
    return Incoming(source=source, destination=destination, text=text, received_at=T0, smsc_id="77")


def with_number(store: Store, webhook: str = HOOK) -> None:
    with store.db.transaction() as session:
        lists.set_virtual_number(session, NUMBER, store.owner_id, webhook, T0)


def test_webhook_body_has_the_seed_fields_in_order() -> None:
    body = webhook_body(phonefrom="+16045550123", phoneto=NUMBER, message_id="abc", orgserver="gw",
                        timestamp=1409596234, txt="Olá & adeus = 100%")
    assert [k for k, _ in parse_qsl(body)] == ["phonefrom", "phoneto", "id", "orgserver", "timestamp", "txt"]
    assert dict(parse_qsl(body))["txt"] == "Olá & adeus = 100%"
    assert dict(parse_qsl(body))["phonefrom"] == "+16045550123"


def test_mo_is_kept_and_forwarded(store: Store) -> None:
    with_number(store)
    with store.db.transaction() as session:
        recorded = record_incoming(session, mo("Running late, 10 min"), T0, OPTIONS)
    assert recorded.message_id is not None and recorded.keyword is None and recorded.reply_id is None
    with store.db.read() as session:
        message = session.get(Message, recorded.message_id)
        assert message is not None
        assert (message.kind, message.phone, message.callerid) == (MO_KIND, "+16045550123", NUMBER)
        assert (message.status_code, message.body, message.account_id) == (200, "Running late, 10 min",
                                                                            store.owner_id)
        (item,) = outbox.for_message(session, recorded.message_id)
        assert (item.kind, item.url, item.secret_ref) == (outbox.WEBHOOK, HOOK, f"account:{store.owner_id}")
        body = item.body
    assert dict(parse_qsl(body)) == {
        "phonefrom": "+16045550123", "phoneto": NUMBER, "id": recorded.message_id,
        "orgserver": "sms.example.com", "timestamp": str(int(T0.timestamp())), "txt": "Running late, 10 min"}


def test_mo_to_a_number_that_is_not_ours_is_dropped(store: Store) -> None:
    with store.db.transaction() as session:
        recorded = record_incoming(session, mo("hello"), T0, OPTIONS)
    assert recorded.message_id is None
    with store.db.read() as session:
        assert outbox.pending(session) == 0


def test_number_without_webhook_keeps_history_only(store: Store) -> None:
    with_number(store, webhook="")
    with store.db.transaction() as session:
        recorded = record_incoming(session, mo("hello"), T0, OPTIONS)
    assert recorded.message_id is not None and not recorded.webhook
    with store.db.read() as session:
        assert outbox.pending(session) == 0


def test_stop_blocks_the_sender_and_start_unblocks(store: Store) -> None:
    with_number(store)
    with store.db.transaction() as session:
        stopped = record_incoming(session, mo("Stop."), T0, OPTIONS)
    assert stopped.keyword is Keyword.STOP and stopped.reply_id is not None
    with store.db.read() as session:
        assert lists.blocked(session, store.owner_id, ["+16045550123"]) == {"+16045550123"}
        reply = queue.get_message(session, stopped.reply_id)
        assert (reply.kind, reply.phone, reply.callerid, reply.body) == (
            "sms", "+16045550123", NUMBER, "You will get no more messages.")
        assert outbox.pending(session) == 1  # the STOP is forwarded too
    with store.db.transaction() as session:
        started = record_incoming(session, mo("START"), T0 + dt.timedelta(minutes=1), OPTIONS)
    assert started.keyword is Keyword.START and started.reply_id is None  # no start_reply configured
    with store.db.read() as session:
        assert lists.blocked(session, store.owner_id, ["+16045550123"]) == set()


def test_help_queues_the_configured_answer_free_of_charge(store: Store) -> None:
    with_number(store)
    with store.db.transaction() as session:
        recorded = record_incoming(session, mo("help"), T0, OPTIONS)
    assert recorded.keyword is Keyword.HELP and recorded.reply_id is not None
    with store.db.read() as session:
        reply = queue.get_message(session, recorded.reply_id)
        assert (reply.status_code, reply.body, reply.reserved, reply.parts) == (
            100, OPTIONS.help_text, 0, 1)


def test_help_without_configured_answer_is_only_forwarded(store: Store) -> None:
    with_number(store)
    with store.db.transaction() as session:
        recorded = record_incoming(session, mo("HELP"), T0, InboundOptions(orgserver="gw"))
    assert recorded.keyword is Keyword.HELP and recorded.reply_id is None and recorded.webhook


def test_handler_wakes_the_sender_only_for_replies(store: Store) -> None:
    with_number(store)
    woken: list[int] = []
    handler = InboundHandler(store.db, OPTIONS, number=US_NUMBERS, wake=lambda: woken.append(1),
                             now=lambda: T0)
    asyncio.run(handler.on_incoming(mo("see you at 5")))
    assert woken == []
    asyncio.run(handler.on_incoming(mo("HELP")))
    assert woken == [1]
    with store.db.read() as session:
        kinds = sorted(m.kind for m in session.query(Message).all())
    assert kinds == ["mo", "mo", "sms"]
