"""Incoming SMS (MO): kept in history, forwarded to the virtual number's webhook, keywords honoured.

    options = InboundOptions(orgserver="sms.example.com", help_text="Alerts by Example. Reply STOP to end.")
    handler = InboundHandler(db, options, number=partial(api.core.phones.smpp_e164, region="US"),
                             wake=sender.wake)
    esme = Esme(..., on_incoming=handler.on_incoming, on_mo_part=handler.on_mo_part)
    sweeps = asyncio.create_task(handler.run_sweeps())

An MO message to one of our virtual numbers (store.lists.virtual_number) becomes, in ONE transaction:

- a message of kind `mo` in the owner's history: `phone` is the sender, `callerid` the virtual number,
  `body` the text, status 200 `Received`; its ID is the webhook's `id`;
- an outbox row (kind `webhook`) POSTing the seed's fields to the number's URL, form-encoded in the
  seed's order: `phonefrom`, `phoneto`, `id`, `orgserver`, `timestamp` (UNIX seconds), `txt`. The outbox
  sender (api.runtime.callbacks) signs it like every callback (`X-Ivrgate-Signature`, the account's secret)
  and
  retries it with backoff until the receiver answers 2xx;
- for a keyword (sms.keywords): STOP puts the sender on the account's do-not-call list (so the next
  submission to that number answers 502), START takes it off again, HELP queues the configured answer;
  STOP and START queue their configured confirmation when one is set. Replies are SMS from the virtual
  number, sent by the SMS sender like any other and not charged to the account.

MO messages to numbers that are not ours are logged and dropped (the SMSC gets its deliver_sm_resp
either way: refusing would only make it redeliver).

Addresses are read with the project's number rule (`number`, api.core.phones.smpp_e164 in the default region,
passed in by api.runtime.sms_node): `2505553000` with TON 0 or 2 is `+12505553000`, so a STOP puts the right
number on do-not-call and a virtual number written nationally is found.

Nothing inbound is lost (`on_mo_part`, the ESME's hook for each MO deliver_sm): a part of a concatenated
message is stored (store.mo_parts) before the ESME answers deliver_sm_resp, so a restart between parts
loses nothing; the part that completes a message takes the stored ones out and records the message in
the same transaction. `sweep()` (run every few seconds by `run_sweeps()`, and at start-up) forwards a
message whose first part arrived more than `mo_timeout_s` ago with the parts it has; its webhook says so
with a seventh field, `parts=1/2` (parts received / parts announced). Complete messages carry the seed's
six fields only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from coded.statuses import RECEIVED
from sms import gsm, pdu
from sms.errors import SmsError
from sms.keywords import Keyword, Replies, detect
from sms.receipts import Incoming, mo_part
from store import lists, mo_parts, outbox, queue
from store.clock import utc_now
from store.db import Database
from store.errors import StoreError
from store.models import Account, Message, MessageEvent

log = logging.getLogger(__name__)

MO_KIND = "mo"
WEBHOOK_MEDIA_TYPE = "application/x-www-form-urlencoded"
"""How the webhook body is POSTed (the outbox sender must send `webhook` rows with this type)."""
MAX_NUMBER_CHARS = 20
MAX_ADDRESS_CHARS = 21
"""An SMPP address (20 characters) with the '+' of E.164."""
SWEEP_MAX_S = 5.0
"""The longest pause between two sweeps for overdue partial messages."""

NumberRule = Callable[[str, int, int], str]
"""(address, ton, npi) -> the address as the store keeps numbers (api.core.phones.smpp_e164 in a region)."""


@dataclass(frozen=True)
class InboundOptions:
    """What incoming messages are answered with (api.core.settings' SmsSettings fills it)."""

    orgserver: str
    """Our host name, sent as the webhook's `orgserver`."""
    help_text: str = ""
    """The answer to HELP; empty: HELP is only forwarded."""
    stop_reply: str = ""
    """The confirmation sent after STOP; empty: none."""
    start_reply: str = ""
    """The confirmation sent after START; empty: none."""
    max_parts: int = 6
    mo_timeout_s: float = 300.0
    """How long the parts of a concatenated MO message are awaited before it is forwarded incomplete."""


@dataclass(frozen=True)
class Recorded:
    """What one MO message became."""

    message_id: str | None
    """The `mo` message (the webhook's `id`), None when the number is not ours."""
    keyword: Keyword | None = None
    reply_id: str | None = None
    """The queued answer SMS, if any."""
    webhook: bool = False
    parts: tuple[int, int] | None = None
    """(received, announced) of a message forwarded incomplete; None when whole."""


# ------------------------------------------------------------------------------------------ pure parts


def webhook_body(*, phonefrom: str, phoneto: str, message_id: str, orgserver: str, timestamp: int,
                 txt: str, parts: tuple[int, int] | None = None) -> str:
    """The form the seed POSTs for an incoming SMS, fields in the seed's order (UTF-8, urlencoded);
    `parts=<received>/<announced>` follows them for a message forwarded incomplete."""
    fields = [("phonefrom", phonefrom), ("phoneto", phoneto), ("id", message_id), ("orgserver", orgserver),
              ("timestamp", str(timestamp)), ("txt", txt)]
    if parts is not None:
        fields.append(("parts", f"{parts[0]}/{parts[1]}"))
    return urlencode(fields, encoding="utf-8")


def joined_text(parts: tuple[mo_parts.StoredPart, ...]) -> str:
    """The text of stored parts (in sequence order), surrogate pairs split across parts paired up."""
    return gsm.join_parts([gsm.decode(p.short_message, p.data_coding, p.esm_class)[0] for p in parts])


def stored_part(sm: pdu.ShortMessage, seq: int) -> mo_parts.StoredPart:
    """What the store keeps of one MO part: the octets as received, decoded when the message is joined."""
    return mo_parts.StoredPart(seq, sm.text_octets, sm.data_coding, sm.esm_class if sm.short_message else 0)


def reply_text(keyword: Keyword | None, options: InboundOptions) -> str:
    """The configured answer to a keyword ('' for none): keywords.Replies.to, the one rule."""
    return Replies(options.help_text, options.stop_reply, options.start_reply).to(keyword)


# ------------------------------------------------------------------------------------------ the store side


def record_incoming(session: Session, incoming: Incoming, now: dt.datetime, options: InboundOptions,
                    make_id: Callable[[], str] = queue.new_message_id, *,
                    parts: tuple[int, int] | None = None) -> Recorded:
    """Write one MO message, its webhook, its keyword's effect and reply, in the caller's transaction.
    Its addresses are already as the store keeps numbers (NumberRule); `parts` marks an incomplete one."""
    number = incoming.destination.strip()
    owner = lists.virtual_number(session, number)
    if owner is None:
        return Recorded(None)
    sender = incoming.source.strip()[:MAX_NUMBER_CHARS]
    message = _mo_message(session, owner.account_id, sender, number, incoming, now, make_id(), parts)
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
                            txt=incoming.text, parts=parts)
        outbox.enqueue(session, kind=outbox.WEBHOOK, url=owner.webhook_url, body=body, now=now,
                       secret_ref=f"account:{owner.account_id}", message_id=message.id)
    return Recorded(message.id, keyword, reply_id, bool(owner.webhook_url), parts)


def _mo_message(session: Session, account_id: int, sender: str, number: str, incoming: Incoming,
                now: dt.datetime, message_id: str, parts: tuple[int, int] | None) -> Message:
    settings: dict[str, object] = {"smsc_id": incoming.smsc_id,
                                   "received_at": incoming.received_at.isoformat()}
    if parts is not None:
        settings["parts"] = f"{parts[0]}/{parts[1]}"
    message = Message(
        id=message_id, job_id=message_id, kind=MO_KIND, account_id=account_id, user_id=account_id,
        phone=sender, callerid=number, body=incoming.text, settings=settings,
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
    """The ESME's `on_mo_part` (each MO deliver_sm) and `on_incoming` (a message already joined): records
    off the event loop, then wakes the SMS sender when an answer was queued; `run_sweeps()` forwards
    messages whose parts stopped coming."""

    def __init__(self, db: Database, options: InboundOptions, *, number: NumberRule,
                 wake: Callable[[], None] | None = None, now: Callable[[], dt.datetime] = utc_now) -> None:
        self.db, self.options = db, options
        self._number = number
        self._wake = wake
        self._now = now

    async def on_mo_part(self, sm: pdu.ShortMessage) -> None:
        """Store or record one MO deliver_sm; returns once it is committed (then the ESME answers it)."""
        recorded = await asyncio.to_thread(self.take_part, sm)
        self._woken(recorded)

    async def on_incoming(self, incoming: Incoming) -> None:
        """Record one MO message whose addresses are already the store's (see the module docstring)."""
        recorded = await asyncio.to_thread(self.record, incoming)
        self._woken(recorded)

    async def run_sweeps(self) -> None:
        """Forward overdue partial messages now and every few seconds until cancelled."""
        interval = max(0.05, min(SWEEP_MAX_S, self.options.mo_timeout_s / 4))
        while True:
            try:
                for recorded in await asyncio.to_thread(self.sweep):
                    self._woken(recorded)
            except (StoreError, SQLAlchemyError) as exc:
                log.error("sweep of partial MO messages failed: %s", exc)
            await asyncio.sleep(interval)

    def _woken(self, recorded: Recorded | None) -> None:
        if recorded is not None and recorded.reply_id is not None and self._wake is not None:
            self._wake()

    def take_part(self, sm: pdu.ShortMessage) -> Recorded | None:
        """The blocking part of on_mo_part(): one write transaction. None while the message waits for
        more parts."""
        now = self._now()
        source = self._number(sm.source, sm.source_ton, sm.source_npi)[:MAX_ADDRESS_CHARS]
        destination = self._number(sm.destination, sm.dest_ton, sm.dest_npi)[:MAX_ADDRESS_CHARS]
        text, concat = mo_part(sm)
        if concat is None or concat.total <= 1 or not 1 <= concat.seq <= concat.total:
            return self.record(Incoming(source, destination, gsm.join_parts([text]), now, None))
        key = mo_parts.GroupKey(source, destination, concat.reference, concat.total)
        with self.db.transaction() as session:
            if lists.virtual_number(session, destination) is None:
                recorded = Recorded(None)
            else:
                taken = mo_parts.add_part(session, key, stored_part(sm, concat.seq), now)
                if taken is None:
                    log.info("MO part %d/%d from %s to %s stored", concat.seq, concat.total, source,
                             destination)
                    return None
                recorded = self._record_taken(session, taken, now)
        self._log(recorded, source, destination)
        return recorded

    def sweep(self) -> list[Recorded]:
        """Forward every stored message whose first part arrived more than `mo_timeout_s` ago."""
        now = self._now()
        with self.db.read() as session:
            overdue = mo_parts.overdue(session, now - dt.timedelta(seconds=self.options.mo_timeout_s))
        done = []
        for group_id in overdue:
            try:
                recorded = self._forward_overdue(group_id, now)
            except (StoreError, SQLAlchemyError) as exc:  # the others still go; this one at the next sweep
                log.error("partial MO message %d not forwarded: %s", group_id, exc)
                continue
            if recorded is not None:
                done.append(recorded)
        return done

    def _forward_overdue(self, group_id: int, now: dt.datetime) -> Recorded | None:
        with self.db.transaction() as session:
            taken = mo_parts.take(session, group_id)
            if taken is None:
                return None  # another node forwarded it
            log.warning("MO from %s to %s: %d of %d parts after %.0f s, forwarding what arrived",
                        taken.key.source, taken.key.destination, len(taken.parts), taken.key.total,
                        self.options.mo_timeout_s)
            recorded = self._record_taken(session, taken, now)
        self._log(recorded, taken.key.source, taken.key.destination)
        return recorded

    def _record_taken(self, session: Session, taken: mo_parts.Taken, now: dt.datetime) -> Recorded:
        incoming = Incoming(taken.key.source, taken.key.destination, joined_text(taken.parts), now, None)
        whole = len(taken.parts) >= taken.key.total
        parts = None if whole else (len(taken.parts), taken.key.total)
        return record_incoming(session, incoming, now, self.options, parts=parts)

    def record(self, incoming: Incoming) -> Recorded:
        """The blocking part of on_incoming(): one write transaction."""
        with self.db.transaction() as session:
            recorded = record_incoming(session, incoming, self._now(), self.options)
        self._log(recorded, incoming.source, incoming.destination)
        return recorded

    @staticmethod
    def _log(recorded: Recorded, source: str, destination: str) -> None:
        if recorded.message_id is None:
            log.warning("MO from %s to %s: not one of our numbers, dropped", source, destination)
        else:
            log.info("MO %s from %s to %s%s%s", recorded.message_id, source, destination,
                     f" ({recorded.keyword})" if recorded.keyword else "",
                     f" incomplete {recorded.parts[0]}/{recorded.parts[1]}" if recorded.parts else "")
