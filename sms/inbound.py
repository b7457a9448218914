"""Incoming SMS (MO): kept in history, forwarded to the virtual number's webhook, keywords honoured.

    options = InboundOptions(orgserver="sms.example.com", help_text="Alerts by Example. Reply STOP to end.")
    handler = InboundHandler(db, options, wake=sender.wake)
    esme = Esme(..., on_incoming=handler.on_incoming)

An MO message to one of our virtual numbers (store.lists.virtual_number) becomes, in ONE transaction:

- a message of kind `mo` in the owner's history: `phone` is the sender, `callerid` the virtual number,
  `body` the text, status 200 `Received`; its ID is the webhook's `id`;
- an outbox row (kind `webhook`) POSTing the seed's fields to the number's URL, form-encoded in the
  seed's order: `phonefrom`, `phoneto`, `id`, `orgserver`, `timestamp` (UNIX seconds), `txt`. The outbox
  sender (api.callbacks) signs it like every callback (`X-Ivrgate-Signature`, the account's secret) and
  retries it with backoff until the receiver answers 2xx;
- for a keyword (sms.keywords): STOP puts the sender on the account's do-not-call list (so the next
  submission to that number answers 502), START takes it off again, HELP queues the configured answer;
  STOP and START queue their configured confirmation when one is set. Replies are SMS from the virtual
  number, sent by the SMS sender like any other and not charged to the account.

MO messages to numbers that are not ours are logged and dropped (the SMSC gets its deliver_sm_resp
either way: refusing would only make it redeliver).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from sms import gsm
from sms.errors import SmsError
from sms.keywords import Keyword, detect
from sms.receipts import Incoming
from store import lists, outbox, queue
from store.db import Database
from store.models import Account, Message, MessageEvent

log = logging.getLogger(__name__)

MO_KIND = "mo"
RECEIVED = (200, "Received")
WEBHOOK_MEDIA_TYPE = "application/x-www-form-urlencoded"
"""How the webhook body is POSTed (the outbox sender must send `webhook` rows with this type)."""
MAX_NUMBER_CHARS = 20


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class InboundOptions:
    """What incoming messages are answered with (api.settings' SmsSettings fills it)."""

    orgserver: str
    """Our host name, sent as the webhook's `orgserver`."""
    help_text: str = ""
    """The answer to HELP; empty: HELP is only forwarded."""
    stop_reply: str = ""
    """The confirmation sent after STOP; empty: none."""
    start_reply: str = ""
    """The confirmation sent after START; empty: none."""
    max_parts: int = 6


@dataclass(frozen=True)
class Recorded:
    """What one MO message became."""

    message_id: str | None
    """The `mo` message (the webhook's `id`), None when the number is not ours."""
    keyword: Keyword | None = None
    reply_id: str | None = None
    """The queued answer SMS, if any."""
    webhook: bool = False


# ------------------------------------------------------------------------------------------ pure parts


def e164(address: str) -> str:
    """An SMPP address as the store keeps numbers: '+' and digits for numeric addresses (SMSCs send
    international numbers without '+'), alphanumeric sender IDs unchanged."""
    text = address.strip()
    digits = text.removeprefix("+")
    return f"+{digits}" if digits.isdigit() else text


def webhook_body(*, phonefrom: str, phoneto: str, message_id: str, orgserver: str, timestamp: int,
                 txt: str) -> str:
    """The form the seed POSTs for an incoming SMS, fields in the seed's order (UTF-8, urlencoded)."""
    fields = [("phonefrom", phonefrom), ("phoneto", phoneto), ("id", message_id), ("orgserver", orgserver),
              ("timestamp", str(timestamp)), ("txt", txt)]
    return urlencode(fields, encoding="utf-8")


def reply_text(keyword: Keyword | None, options: InboundOptions) -> str:
    """The configured answer to a keyword ('' for none)."""
    replies = {Keyword.HELP: options.help_text, Keyword.STOP: options.stop_reply,
               Keyword.START: options.start_reply}
    return replies.get(keyword, "") if keyword is not None else ""


# ------------------------------------------------------------------------------------------ the store side


def record_incoming(session: Session, incoming: Incoming, now: dt.datetime, options: InboundOptions,
                    make_id: Callable[[], str] = queue.new_message_id) -> Recorded:
    """Write one MO message, its webhook, its keyword's effect and reply, in the caller's transaction."""
    number = e164(incoming.destination)
    owner = lists.virtual_number(session, number)
    if owner is None:
        return Recorded(None)
    sender = e164(incoming.source)[:MAX_NUMBER_CHARS]
    message = _mo_message(session, owner.account_id, sender, number, incoming, now, make_id())
    keyword = detect(incoming.text)
    if keyword is Keyword.STOP:
        note = f"STOP by SMS to {number}"
        lists.add_do_not_call(session, sender, now, account_id=owner.account_id, note=note)
    elif keyword is Keyword.START:
        lists.remove_do_not_call(session, sender, account_id=owner.account_id)
    reply = reply_text(keyword, options)
    reply_id = None
    if reply:
        reply_id = _queue_reply(session, owner.account_id, number, sender, reply, now, options, make_id)
    if owner.webhook_url:
        body = webhook_body(phonefrom=sender, phoneto=number, message_id=message.id,
                            orgserver=options.orgserver, timestamp=int(incoming.received_at.timestamp()),
                            txt=incoming.text)
        outbox.enqueue(session, kind=outbox.WEBHOOK, url=owner.webhook_url, body=body, now=now,
                       secret_ref=f"account:{owner.account_id}", message_id=message.id)
    return Recorded(message.id, keyword, reply_id, bool(owner.webhook_url))


def _mo_message(session: Session, account_id: int, sender: str, number: str, incoming: Incoming,
                now: dt.datetime, message_id: str) -> Message:
    message = Message(
        id=message_id, job_id=message_id, kind=MO_KIND, account_id=account_id, user_id=account_id,
        phone=sender, callerid=number, body=incoming.text,
        settings={"smsc_id": incoming.smsc_id, "received_at": incoming.received_at.isoformat()},
        status_code=RECEIVED[0], status_text=RECEIVED[1], response="", parts=1, attempts=0, rate=0,
        reserved=0, cost=0, callback_url="", created_at=now, updated_at=now, next_attempt_at=None,
        finished_at=now,
    )
    session.add(message)
    session.add(MessageEvent(message=message, at=now, kind="received", detail=f"from {sender} to {number}"))
    session.flush()
    return message


def _queue_reply(session: Session, account_id: int, number: str, to: str, text: str, now: dt.datetime,
                 options: InboundOptions, make_id: Callable[[], str]) -> str | None:
    """A free SMS from the virtual number back to the sender, queued for the SMS sender."""
    try:
        parts = gsm.count_parts(text, options.max_parts)
    except SmsError:
        log.error("the configured reply %r does not fit %d parts: not sent", text[:40], options.max_parts)
        return None
    owner = session.get(Account, account_id)
    if owner is None:
        return None
    spec = queue.NewMessage(kind="sms", phone=to, job_id=make_id(), callerid=number, body=text, parts=parts,
                            settings={"reply": True})
    return queue.create_message(session, owner, spec, now, make_id).id


# ------------------------------------------------------------------------------------------ the handler


class InboundHandler:
    """The ESME's `on_incoming`: records each MO message off the event loop, then wakes the SMS sender
    when an answer was queued."""

    def __init__(self, db: Database, options: InboundOptions, *, wake: Callable[[], None] | None = None,
                 now: Callable[[], dt.datetime] = utc_now) -> None:
        self.db, self.options = db, options
        self._wake = wake
        self._now = now

    async def on_incoming(self, incoming: Incoming) -> None:
        """Record one MO message (see the module docstring)."""
        recorded = await asyncio.to_thread(self.record, incoming)
        if recorded.reply_id is not None and self._wake is not None:
            self._wake()

    def record(self, incoming: Incoming) -> Recorded:
        """The blocking part of on_incoming(): one write transaction."""
        with self.db.transaction() as session:
            recorded = record_incoming(session, incoming, self._now(), self.options)
        if recorded.message_id is None:
            log.warning("MO from %s to %s: not one of our numbers, dropped", incoming.source,
                        incoming.destination)
        else:
            log.info("MO %s from %s to %s%s", recorded.message_id, incoming.source, incoming.destination,
                     f" ({recorded.keyword})" if recorded.keyword else "")
        return recorded
