"""The SMS sender: queued SMS messages in the store -> submit_sm parts -> receipts -> one message status.

    sender = SmsSender(db, SenderOptions(worker_id="node1:4242"), fallback=tts_fallback)
    esme = Esme(smpp_settings, on_accepted=sender.on_accepted, on_refused=sender.on_refused,
                on_receipt=sender.on_receipt, on_incoming=inbound.on_incoming)
    sender.attach(esme)
    await esme.start(); task = asyncio.create_task(sender.run())
    ...
    await sender.stop(); await esme.stop()

Per message (claimed with a lease, like the voice worker's calls, and heartbeated while its parts are in
flight): the text is encoded by sms.gsm (GSM-7 or UCS-2, concatenated parts with a reference of
`concat_ref_bits`, 8 or 16); every part goes to the ESME keyed `<message id>:<part>`. The reference of a
long message is allocated in the claiming transaction from a per-destination counter in the store
(store.concat_refs: the n-th long message to a number gets n modulo 2^bits, atomically, whichever sender
claims it) and kept in the message's settings, so a resubmission after a crash carries the same one.
When every part is answered:

- all accepted: the SMSC IDs are stored per part and the message waits for receipts (110 Sent to SMSC);
- any refused: 605 Undeliverable with the SMSC error in `smsc_error`; the accepted parts are charged,
  the rest of the reservation is released.

Receipts are merged per message (`merge_states`, over each part's state kept by
`sms.receipts.merge_state`): 200 Delivered only when every part is DELIVRD, 605 as soon as one part is
UNDELIV, REJECTD, DELETED or UNKNOWN, 606 when one EXPIRED; the message is charged per part sent. A later
receipt may raise a final status, never lower it (`receipt_outcome`: Sent, no receipt < Delivered <
Expired < Undeliverable), so the status after the last receipt does not depend on their order. A message
without a final receipt `receipt_timeout_s` after it was sent ends 210 Sent, no receipt (`sweep`).
A receipt may overtake the write of its message's SMSC IDs: it is parked in memory until that write, and
a receipt whose ID is unknown in the store is retried for `receipt_grace_s`.

The `tts=1` fallback (docs/DESIGN.md): when a message asked for it and the SMSC refuses it or reports it
undeliverable, `fallback` (the service's own submission, passed in, so do-not-call and pricing apply)
decides whether the number's type is ambiguous and, if so, queues a NEW TTS message; the SMS's status
text names it. The fallback is submitted before the SMS is finished: a crash between the two leaves
the SMS unfinished (it is sent again) rather than a refused SMS without its promised call.

Store writes of many messages are batched into one transaction (each in its own savepoint), and the
frequent ones are set-based (`_WriteBatcher.write_many`): the SMSC IDs of every message of a transaction
in a few statements (store.queue.await_receipts), its receipts likewise (`_record_receipts`: the messages
locked in one SELECT, part states, events, settlement and callbacks in one statement each), which is what
lets one SQLite file keep up with an SMSC (docs/sms.md, Measured).

Size: one class's state (the parts with the ESME, the write batcher, receipts waiting for their parts) is
shared by the claim, submit, receipt and finish paths, so they stay together; the pure rules are elsewhere
(sms.gsm, sms.keywords, the receipt precedence). The write batcher is the next piece to move out.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from coded.errors import CodedError
from coded.statuses import DELIVERED, EXPIRED, NO_RECEIPT, UNDELIVERABLE
from sms import gsm
from sms.errors import SmsError
from sms.receipts import FAILED_STATES, Receipt, merge_state, normalise_smsc_id
from sms.smpp import OutgoingPart
from store import concat_refs, queue
from store.clock import utc_now
from store.db import Database, retrying
from store.errors import LeaseLost, StoreError
from store.lease import LeasedLoop, heartbeat_interval
from store.models import Message, MessageKind, SmsPart

log = logging.getLogger(__name__)
T = TypeVar("T")

STATUS_PRECEDENCE = {NO_RECEIPT[0]: 1, DELIVERED[0]: 2, EXPIRED[0]: 3, UNDELIVERABLE[0]: 4}
"""How receipt outcomes rank: a later receipt may move a message up this order, never down. Any other
code (110 Sent to SMSC, 100 Queued) ranks 0."""
SMSC_ERROR_CHARS = 100
"""The width of messages.smsc_error."""
SMS_KINDS = (MessageKind.SMS.value,)
CONCAT_REF, CONCAT_REF_BITS = "concat_ref", "concat_ref_bits"
"""Where a message's settings keep its concatenation reference."""
SWEEP_BATCH = 500
"""Messages past the receipt timeout ended per transaction."""


# ------------------------------------------------------------------------------------------ pure parts


def part_key(message_id: str, part: int) -> str:
    """The ESME key of one part: `<message id>:<1-based part>`."""
    return f"{message_id}:{part}"


def parse_key(key: str) -> tuple[str, int] | None:
    """(message id, part) of a key, or None when it is not one of ours."""
    message_id, _, part = key.rpartition(":")
    return (message_id, int(part)) if message_id and part.isdigit() else None


def kept_reference(settings: dict[str, Any] | None, bits: int) -> int | None:
    """The concatenation reference a message was given at an earlier claim (with the same width)."""
    settings = settings or {}
    ref = settings.get(CONCAT_REF)
    return ref if isinstance(ref, int) and settings.get(CONCAT_REF_BITS) == bits else None


def needs_reference(parts: int | None, options: SenderOptions) -> bool:
    """Whether a message of `parts` SMS (as counted at submission: whether a text fits one SMS does not
    depend on the reference's width) goes as concatenated parts with a UDH, and so needs a reference."""
    return not options.use_payload and (parts or 1) > 1


def smpp_address(value: str) -> str:
    """An address as SMPP carries it: E.164 digits without '+', alphanumeric sender IDs unchanged."""
    return value[1:] if value.startswith("+") else value


def merge_states(states: Sequence[str]) -> tuple[int, str] | None:
    """The final status of a message from its parts' receipt states, or None while it is still pending.

    605 as soon as any part failed, else 606 when any part expired, 200 when every part was delivered;
    ENROUTE, ACCEPTD and parts without a receipt yet leave it pending."""
    if any(state in FAILED_STATES for state in states):
        return UNDELIVERABLE
    if any(state == "EXPIRED" for state in states):
        return EXPIRED
    if states and all(state == "DELIVRD" for state in states):
        return DELIVERED
    return None


def status_precedence(code: int) -> int:
    """Where a status code stands among receipt outcomes (`STATUS_PRECEDENCE`); 0 when not one."""
    return STATUS_PRECEDENCE.get(code, 0)


def receipt_outcome(current_code: int, states: Sequence[str]) -> tuple[int, str] | None:
    """The status a message moves to after a receipt, given its status code now and its parts' states
    (each already merged by `sms.receipts.merge_state`); None when it stays as it is.

    An unfinished message (110) moves to `merge_states` as soon as that is final; a finished one only
    moves up `STATUS_PRECEDENCE` (Expired -> Undeliverable when a late UNDELIV arrives; Sent, no receipt
    -> whatever a late final receipt says), never down, so Undeliverable is not turned back into
    Delivered. Part states only rise and the merged status is monotonic in them: the status after the
    last receipt is the same whatever order the receipts came in."""
    merged = merge_states(states)
    if merged is None or status_precedence(merged[0]) <= status_precedence(current_code):
        return None
    return merged


def smsc_error_text(command_status: int, text: str) -> str:
    """What `smsc_error` keeps of a refused submit_sm: the command status in hex and its description."""
    return f"0x{command_status:08X} {text}".strip()[:SMSC_ERROR_CHARS]


def receipt_error_text(receipt: Receipt) -> str:
    """What `smsc_error` keeps of a failed receipt: its state and error field."""
    return f"{receipt.state} err:{receipt.error}"[:SMSC_ERROR_CHARS]


def fallback_status(status: tuple[int, str], fallback: str | None, refused: str | None) -> tuple[int, str]:
    """The SMS's status after a `tts=1` fallback was tried: the new TTS message, or why it was refused."""
    code, text = status
    if fallback is not None:
        return code, f"{text}; sent as TTS call {fallback}"
    if refused is not None:
        return code, f"{text}; TTS fallback refused: {refused}"[:200]
    return status


# ------------------------------------------------------------------------------------------ contracts


class PartSubmitter(Protocol):
    """What the sender needs of sms.smpp.Esme."""

    async def submit(self, part: OutgoingPart) -> None: ...


@dataclass(frozen=True)
class FallbackRequest:
    """An SMS that could not be delivered and asked for `tts=1`: what a TTS call of it needs."""

    sms_id: str
    user_id: int
    phone: str
    text: str
    callerid: str
    callback_url: str


TtsFallback = Callable[[FallbackRequest], str | None]
"""Queues a TTS call for an undeliverable SMS: returns the new message ID, None when the number's type
is not ambiguous (no fallback), or raises an error with `status_text` when the submission is refused
(do-not-call, balance). Called in a worker thread."""


@dataclass(frozen=True)
class SenderOptions:
    """How the sender claims, paces and waits (api.core.settings' SmsSettings fills it)."""

    worker_id: str
    """Names this sender's leases (must differ between live senders)."""
    lease_s: float = 60.0
    heartbeat_s: float = 0.0
    """How often the leases of the messages with the ESME are renewed; 0: a third of `lease_s`."""
    batch: int = 64
    """Messages claimed at a time."""
    max_in_flight: int = 512
    """Messages held at once (their parts waiting for the ESME's window or its answer)."""
    poll_interval_s: float = 1.0
    max_parts: int = 6
    use_payload: bool = False
    """Send long texts as one submit_sm with message_payload instead of concatenated parts."""
    default_source: str = ""
    """The source address of messages submitted without a caller ID; '' leaves it to the SMSC."""
    packed_gsm: bool = False
    """GSM-7 short_message packed 7 bits a septet (sms.gsm_packed) instead of one septet per octet."""
    receipt_grace_s: float = 60.0
    """How long a receipt whose SMSC ID is not (yet) in the store is retried before it is dropped."""
    concat_ref_bits: int = 8
    """Concatenation references of 8 bits (UDH IEI 0x00) or 16 bits (IEI 0x08, one character less a part)."""
    receipt_timeout_s: float = 48 * 3600.0
    """A message still without a final receipt this long after the SMSC accepted it ends 210 Sent, no
    receipt (charged like every accepted message); a later receipt still raises it (`receipt_outcome`)."""

    def __post_init__(self) -> None:
        if not self.worker_id or self.lease_s <= 0 or self.poll_interval_s <= 0:
            raise ValueError("worker_id, lease_s > 0 and poll_interval_s > 0 are required")
        heartbeat_interval(self.lease_s, self.heartbeat_s)  # ValueError unless heartbeat_s >= 0
        if self.concat_ref_bits not in gsm.REFERENCE_BITS:
            raise ValueError(f"sms.concat_ref_bits must be 8 or 16, not {self.concat_ref_bits}")
        if self.batch < 1 or self.max_in_flight < 1 or not 1 <= self.max_parts <= 255:
            raise ValueError("batch and max_in_flight >= 1, max_parts 1..255")
        if self.receipt_timeout_s <= 0:
            raise ValueError("receipt_timeout_s must be > 0")

    @property
    def sweep_interval_s(self) -> float:
        """How often the sender looks for messages past `receipt_timeout_s`."""
        return min(60.0, max(0.05, self.receipt_timeout_s / 4))


class SmsColumns(Protocol):
    """The columns of a message the sender reads when it sends it: a claimed row (`CLAIM_COLUMNS`) or a
    loaded `Message`."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> int: ...
    @property
    def phone(self) -> str: ...
    @property
    def callerid(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def settings(self) -> dict[str, Any]: ...
    @property
    def rate(self) -> int: ...
    @property
    def callback_url(self) -> str: ...
    @property
    def parts(self) -> int: ...


CLAIM_COLUMNS = ("user_id", "phone", "callerid", "body", "settings", "rate", "callback_url", "parts")
"""What the claim returns of each message (store.queue.claim_rows): the columns of `SmsColumns`."""


@dataclass(frozen=True)
class ClaimedSms:
    """The columns of a claimed SMS the sender needs, copied out of the claiming transaction."""

    id: str
    user_id: int
    phone: str
    callerid: str
    body: str
    tts_fallback: bool
    rate: int
    callback_url: str
    reference: int = 0
    """The concatenation reference of a long message."""

    @classmethod
    def of(cls, message: SmsColumns, reference: int = 0) -> ClaimedSms:
        settings = message.settings or {}
        return cls(id=message.id, user_id=message.user_id, phone=message.phone,
                   callerid=message.callerid or "", body=message.body or "",
                   tts_fallback=bool(settings.get("tts_fallback")), rate=message.rate,
                   callback_url=message.callback_url or "", reference=reference)

    def fallback_request(self) -> FallbackRequest:
        return FallbackRequest(self.id, self.user_id, self.phone, self.body, self.callerid, self.callback_url)


@dataclass
class _Outgoing:
    """An SMS whose parts are with the ESME: their answers as they come in."""

    sms: ClaimedSms
    total: int
    """submit_sm PDUs."""
    billable: int
    """SMS parts charged (more than `total` when message_payload lets the SMSC split the text)."""
    accepted: dict[int, str] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, part: int, smsc_id: str | None, error: str | None) -> None:
        if smsc_id is not None:
            self.accepted[part] = smsc_id
        elif error is not None:
            self.refused[part] = error
        if len(self.accepted) + len(self.refused) >= self.total:
            self.answered.set()


@dataclass
class _Orphan:
    receipt: Receipt
    first_seen: dt.datetime


@dataclass(frozen=True)
class _Final:
    """A receipt that ended a message which asked for the TTS fallback (finished after the fallback)."""

    sms: ClaimedSms
    status: tuple[int, str]
    cost: int
    error: str


# ------------------------------------------------------------------------------------------ the sender


class SmsSender:
    """Claims queued SMS, submits their parts and turns the answers and receipts into statuses."""

    def __init__(self, db: Database, options: SenderOptions, *, fallback: TtsFallback | None = None,
                 now: Callable[[], dt.datetime] = utc_now) -> None:
        """Each store write is a `db.transaction()`, which on SQLite takes the database's writer lock: the
        sender takes turns with the submissions instead of meeting them in sqlite3's sleeping busy
        handler (which slowed a 100-recipient `matrix` call from 60 ms to seconds)."""
        self.db, self.options = db, options
        self._fallback = fallback
        self._now = now
        self._transport: PartSubmitter | None = None
        self._outgoing: dict[str, _Outgoing] = {}
        self._unrecorded: dict[str, str] = {}
        """SMSC ID -> message ID of parts accepted but not yet written to the store."""
        self._parked: dict[str, list[Receipt]] = {}
        self._orphans: list[_Orphan] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._falling_back: set[str] = set()
        self._batch = _WriteBatcher(db)
        self._leased: LeasedLoop[str] = LeasedLoop(
            options.worker_id, renew=self._renew, lease_s=options.lease_s, poll_s=options.poll_interval_s,
            heartbeat_s=options.heartbeat_s, what="SMS")
        """The leases of the messages whose parts are with the ESME (store.lease): renewed by its
        heartbeat; a lost one cancels that message's task."""
        self._wake = self._leased.wake_event
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._drain_s = 10.0
        self._done = asyncio.Event()
        self._next_sweep = 0.0

    # --------------------------------------------------------------------------------------- public

    def attach(self, transport: PartSubmitter) -> None:
        """The ESME the parts go to (built after the sender, since it calls the sender's handlers)."""
        self._transport = transport

    @property
    def in_flight(self) -> int:
        """Messages held now (parts with the ESME or waiting for its window)."""
        return len(self._outgoing)

    def wake(self) -> None:
        """New SMS were queued: claim now instead of at the next poll. Safe from any thread."""
        self._leased.wake()

    async def run(self) -> None:
        """Claim and send until stop(); messages still in flight at the end keep their lease, which
        expires, so another sender (or this one restarted) sends them again."""
        if self._transport is None:
            raise RuntimeError("attach() the ESME before run()")
        self._loop = asyncio.get_running_loop()
        writer = asyncio.create_task(self._batch.run(), name="sms-store-writer")
        await self._leased.start()
        log.info("SMS sender %s started", self.options.worker_id)
        try:
            while not self._stopping:
                await self._claim_round()
                await self._retry_orphans()
                await self._sweep_if_due()
                await self._idle()
            if self._tasks:  # let the messages in flight get their answers from the (still running) ESME
                await asyncio.wait(set(self._tasks), timeout=self._drain_s)
        finally:
            await self._leased.stop()  # what is still unanswered keeps its lease until it expires
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._batch.close()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self._done.set()
            log.info("SMS sender %s stopped", self.options.worker_id)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop claiming; run() waits up to `timeout_s` for the messages in flight to be answered (stop
        the ESME after this), then returns. Whatever is still unanswered keeps its lease until it expires."""
        self._drain_s = timeout_s
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            await self._done.wait()

    # ------------------------------------------------------------------------------- ESME handlers

    async def on_accepted(self, key: str, smsc_id: str) -> None:
        """submit_sm_resp with a message ID for one part."""
        self._answer(key, smsc_id, None)

    async def on_refused(self, key: str, command_status: int, text: str) -> None:
        """A part the SMSC refused for good (not throttling: the ESME retries that itself)."""
        self._answer(key, None, smsc_error_text(command_status, text))

    async def on_receipt(self, receipt: Receipt) -> None:
        """A delivery receipt: merged into its message's status (parked when it overtook the write of
        its SMSC IDs)."""
        for smsc_id in receipt.match_ids:
            if smsc_id in self._unrecorded:
                self._parked.setdefault(smsc_id, []).append(receipt)
                return
        await self._apply_receipt(receipt, self._now())

    # ---------------------------------------------------------------------------------- claiming

    async def _claim_round(self) -> None:
        free = self.options.max_in_flight - len(self._outgoing)
        if free <= 0:
            return
        limit = min(free, self.options.batch)
        claimed = await self._leased.claim(lambda: self._batch.write(self._claim, limit))
        for sms in claimed:
            self._spawn(self._send(sms), f"sms-{sms.id}")
        if len(claimed) == limit:
            self._wake.set()  # there may be more

    def _claim(self, session: Session, limit: int) -> list[ClaimedSms]:
        messages: list[Any] = queue.claim_rows(session, self.options.worker_id, self._now(),
                                               self.options.lease_s, limit, SMS_KINDS, CLAIM_COLUMNS)
        messages.sort(key=lambda m: m.id)  # time-ordered IDs: references and parts go out in order
        references = self._references(session, messages)
        return [ClaimedSms.of(m, references.get(m.id, 0)) for m in messages]

    def _references(self, session: Session, messages: Sequence[SmsColumns]) -> dict[str, int]:
        """Concatenation references of the long messages just claimed: the one kept from an earlier
        claim, else the next ones of their destination's counter (kept in their settings)."""
        bits = self.options.concat_ref_bits
        found: dict[str, int] = {}
        fresh: dict[str, list[SmsColumns]] = {}
        for message in messages:
            kept = kept_reference(message.settings, bits)
            if kept is not None:
                found[message.id] = kept
            elif needs_reference(message.parts, self.options):
                fresh.setdefault(message.phone, []).append(message)
        firsts = concat_refs.allocate(session, {phone: len(group) for phone, group in fresh.items()})
        settings: dict[str, dict[str, Any]] = {}
        for phone, group in fresh.items():
            for offset, message in enumerate(group):
                ref = concat_refs.reference(firsts[phone] + offset, bits)
                settings[message.id] = {**(message.settings or {}), CONCAT_REF: ref, CONCAT_REF_BITS: bits}
                found[message.id] = ref
        queue.set_settings(session, settings)
        return found

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SMS task %s failed", task.get_name(), exc_info=task.exception())
        self._wake.set()

    async def _sweep_if_due(self) -> None:
        """End the messages whose receipts did not come within `receipt_timeout_s` (every
        `sweep_interval_s`; at once again when a sweep found a full batch)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_sweep:
            return
        self._next_sweep = loop.time() + self.options.sweep_interval_s
        try:
            ended = await self._batch.write(self._sweep)
        except (StoreError, SQLAlchemyError) as exc:
            log.error("SMS sender %s: receipt sweep failed: %s", self.options.worker_id, exc)
            return
        if ended:
            log.info("%d SMS without a receipt after %.0f s: %s", ended, self.options.receipt_timeout_s,
                     NO_RECEIPT[1])
        if ended >= SWEEP_BATCH:
            self._next_sweep = 0.0
            self._wake.set()

    def _sweep(self, session: Session) -> int:
        now = self._now()
        cutoff = now - dt.timedelta(seconds=self.options.receipt_timeout_s)
        messages = queue.awaiting_receipt(session, cutoff, SWEEP_BATCH, kinds=SMS_KINDS)
        detail = f"no final receipt {self.options.receipt_timeout_s:g} s after sending"
        queue.finish_messages(session, [queue.Finish(m, NO_RECEIPT, sms_cost(m), "no_receipt", detail)
                                        for m in messages], now)
        return len(messages)

    async def _idle(self) -> None:
        await self._leased.idle()

    async def _renew(self, ids: list[str]) -> set[str]:
        """store.lease's renewal: the messages still held (a lost one is not among them)."""
        return await self._batch.write(queue.heartbeat, self.options.worker_id, ids, self._now(),
                                       self.options.lease_s)

    def _hold(self, sms_id: str) -> None:
        """From now until its parts are answered, renew the message's lease; if it is lost, stop."""
        task = asyncio.current_task()
        assert task is not None
        self._leased.hold(sms_id, lambda: self._lost(sms_id, task))

    def _lost(self, sms_id: str, task: asyncio.Task[Any]) -> None:
        """Another sender holds the message now: hand no further part to the ESME, wait for no answer,
        write nothing (its task is cancelled; the answers of parts already sent are logged as strays)."""
        outgoing = self._outgoing.get(sms_id)
        for sid in outgoing.accepted.values() if outgoing is not None else ():
            self._unrecorded.pop(sid, None)
            self._parked.pop(sid, None)
        task.cancel()

    # --------------------------------------------------------------------------------- one message

    async def _send(self, sms: ClaimedSms) -> None:
        try:
            encoded = gsm.encode(sms.body, reference=sms.reference, max_parts=self.options.max_parts,
                                 use_payload=self.options.use_payload, packed=self.options.packed_gsm,
                                 reference_bits=self.options.concat_ref_bits)
        except SmsError as exc:  # TooManyParts (511)
            await self._unsendable(sms, exc)
            return
        outgoing = _Outgoing(sms, len(encoded.parts), encoded.segments)
        self._outgoing[sms.id] = outgoing
        self._hold(sms.id)
        try:
            await self._submit_parts(sms, encoded)
            await outgoing.answered.wait()
        finally:
            self._outgoing.pop(sms.id, None)
            self._leased.drop(sms.id)
        if outgoing.refused:
            await self._refused(outgoing)
        else:
            await self._sent(outgoing)

    async def _submit_parts(self, sms: ClaimedSms, encoded: gsm.Encoded) -> None:
        assert self._transport is not None
        source = sms.callerid or self.options.default_source  # the ESME picks TON/NPI by its form
        for index, data in enumerate(encoded.parts, start=1):
            await self._transport.submit(OutgoingPart(
                key=part_key(sms.id, index), source=source, destination=smpp_address(sms.phone),
                short_message=data, data_coding=encoded.data_coding, esm_class=encoded.esm_class))

    def _answer(self, key: str, smsc_id: str | None, error: str | None) -> None:
        parsed = parse_key(key)
        outgoing = self._outgoing.get(parsed[0]) if parsed is not None else None
        if parsed is None or outgoing is None:
            log.warning("answer for part %r of no message in flight (smsc id %s, error %s)", key, smsc_id,
                        error)
            return
        if smsc_id is not None:
            smsc_id = normalise_smsc_id(smsc_id)
            self._unrecorded[smsc_id] = parsed[0]
        outgoing.record(parsed[1], smsc_id, error)

    async def _sent(self, outgoing: _Outgoing) -> None:
        """Every part accepted: store the SMSC IDs (110 Sent to SMSC), then apply parked receipts."""
        sms = outgoing.sms
        smsc_ids = [outgoing.accepted[n] for n in sorted(outgoing.accepted)]
        try:
            accepted = queue.Accepted(sms.id, smsc_ids, outgoing.billable)
            await self._batch.write_many(self._record_sent, accepted)
        except LeaseLost:
            log.warning("SMS %s: lease lost before its SMSC IDs were stored", sms.id)
        except (StoreError, SQLAlchemyError) as exc:
            log.error("SMS %s: SMSC IDs not stored (%s); its lease will expire", sms.id, exc)
        finally:
            parked = [r for sid in smsc_ids for r in self._parked.pop(sid, [])]
            for sid in smsc_ids:
                self._unrecorded.pop(sid, None)
        for receipt in parked:
            await self._apply_receipt(receipt, self._now())

    def _record_sent(self, session: Session, accepted: list[queue.Accepted]) -> list[object]:
        """Store the SMSC IDs of many SMS at once (queue.await_receipts); LeaseLost for those not held."""
        held = queue.await_receipts(session, self.options.worker_id, self._now(), accepted)
        return [None if a.message_id in held
                else LeaseLost(f"{self.options.worker_id} does not hold message {a.message_id}")
                for a in accepted]

    async def _refused(self, outgoing: _Outgoing) -> None:
        """A part refused: 605 with the SMSC error, the accepted parts charged, maybe the TTS fallback."""
        sms = outgoing.sms
        for sid in outgoing.accepted.values():
            self._unrecorded.pop(sid, None)
            self._parked.pop(sid, None)
        error = outgoing.refused[min(outgoing.refused)]
        status = await self._with_fallback(sms, UNDELIVERABLE)
        sent = outgoing.billable if len(outgoing.accepted) == outgoing.total else len(outgoing.accepted)
        cost = sms.rate * sent
        log.info("SMS %s refused by the SMSC: %s", sms.id, error)
        with contextlib.suppress(LeaseLost):
            await self._batch.write(lambda s: self._finish_held(s, sms, status, cost, error, "refused"))

    async def _unsendable(self, sms: ClaimedSms, exc: SmsError) -> None:
        code, text = exc.code, exc.status_text
        log.warning("SMS %s cannot be encoded: %s", sms.id, exc)
        with contextlib.suppress(LeaseLost):
            await self._batch.write(lambda s: self._finish_held(s, sms, (code, text), 0, None, "refused"))

    def _finish_held(self, session: Session, sms: ClaimedSms, status: tuple[int, str], cost: int,
                     error: str | None, event: str) -> None:
        now = self._now()
        message = queue.progress(session, sms.id, self.options.worker_id, now)
        fields: dict[str, Any] = {"smsc_error": error} if error else {}
        queue.finish_message(session, message, now, status, cost, event=event, **fields)

    async def _with_fallback(self, sms: ClaimedSms, status: tuple[int, str]) -> tuple[int, str]:
        """Try the tts=1 fallback of an undeliverable SMS; the status text it ends with."""
        if not sms.tts_fallback or self._fallback is None:
            return status
        try:
            new_id = await asyncio.to_thread(self._fallback, sms.fallback_request())
        except Exception as exc:
            if isinstance(exc, CodedError):
                reason = exc.status_text
            else:
                log.exception("SMS %s: the TTS fallback failed", sms.id)
                reason = CodedError.status_text
            log.info("SMS %s: TTS fallback refused: %s", sms.id, reason)
            return fallback_status(status, None, reason)
        if new_id is not None:
            log.info("SMS %s undeliverable: sent as TTS call %s", sms.id, new_id)
        return fallback_status(status, new_id, None)

    # ----------------------------------------------------------------------------------- receipts

    async def _apply_receipt(self, receipt: Receipt, first_seen: dt.datetime) -> None:
        try:
            result = await self._batch.write_many(self._record_receipts, receipt)
        except (StoreError, SQLAlchemyError) as exc:
            log.error("receipt for %s not recorded: %s", receipt.smsc_id, exc)
            result = None
        if result is None:
            self._orphans.append(_Orphan(receipt, first_seen))
        elif isinstance(result, _Final):
            await self._finish_with_fallback(result)

    def _record_receipts(self, session: Session, receipts: list[Receipt]) -> list[bool | _Final | None]:
        """Record many receipts, each as if alone and in order (`_record_receipt`), in a few statements:
        receipts that may concern the same message go in successive rounds."""
        results: list[bool | _Final | None] = [None] * len(receipts)
        rounds, owners = _receipt_rounds(session, receipts)
        for round_ in rounds:
            batch = [receipts[i] for i in round_]
            for index, result in zip(round_, self._receipt_round(session, batch, owners), strict=True):
                results[index] = result
        return results

    def _receipt_round(self, session: Session, receipts: list[Receipt],
                       owners: dict[str, set[str]]) -> list[bool | _Final | None]:
        """Receipts of distinct messages: the messages locked and loaded in one statement, then each
        receipt's part picked (`_pick_part`), its state merged and its outcome (`receipt_outcome`)
        written: the events, and the messages it finishes settled together (queue.finish_messages)."""
        ids = sorted({mid for r in receipts for sid in r.match_ids for mid in owners.get(sid, ())})
        messages = {m.id: m for m in session.scalars(
            select(Message).where(Message.id.in_(ids)).order_by(Message.id).with_for_update()
            .execution_options(populate_existing=True))}
        parts: dict[str, list[_PartRow]] = {}
        by_smsc_id: dict[str, list[_PartRow]] = {}
        for row in session.execute(select(SmsPart.message_id, SmsPart.part, SmsPart.smsc_id, SmsPart.state)
                                   .where(SmsPart.message_id.in_(ids)).order_by(SmsPart.part)):
            loaded = _PartRow(messages[row.message_id], row.part, row.smsc_id, row.state)
            parts.setdefault(row.message_id, []).append(loaded)
            by_smsc_id.setdefault(row.smsc_id, []).append(loaded)
        now = self._now()
        results: list[bool | _Final | None] = []
        events: list[dict[str, Any]] = []
        states: dict[tuple[str, int], str] = {}
        finishes: list[queue.Finish] = []
        for receipt in receipts:
            part = _pick_part(by_smsc_id, receipt.match_ids)
            if part is None:
                results.append(None)
                continue
            message = part.message
            part.state = merge_state(part.state, receipt.state)[:16]
            states[(message.id, part.part)] = part.state
            if not _receipts_apply(message):
                results.append(True)
                continue
            events.append({"message_id": message.id, "at": now, "kind": "receipt",
                           "detail": f"part {part.part}: {receipt.state}"})
            siblings = parts[message.id]
            status = receipt_outcome(message.status_code, [p.state for p in siblings])
            if status is None:
                results.append(True)
                continue
            error = receipt_error_text(receipt) if status != DELIVERED else ""
            sms, cost = ClaimedSms.of(message), sms_cost(message, len(siblings))
            if status == UNDELIVERABLE and sms.tts_fallback and self._fallback is not None:
                results.append(_Final(sms, status, cost, error))
                continue
            if message.finished_at is None:
                finishes.append(_finish(message, status, cost, error))
            else:
                queue.add_events(session, events)  # in order: this receipt's event before the restatus'
                events = []
                _conclude(session, message, now, status, cost, error)
            results.append(True)
        queue.set_part_states(session, states)
        queue.add_events(session, events)
        queue.finish_messages(session, finishes, now)
        return results

    async def _finish_with_fallback(self, final: _Final) -> None:
        if final.sms.id in self._falling_back:
            return  # another part's receipt already started it
        self._falling_back.add(final.sms.id)
        try:
            await self._fallback_then_finish(final)
        finally:
            self._falling_back.discard(final.sms.id)

    async def _fallback_then_finish(self, final: _Final) -> None:
        status = await self._with_fallback(final.sms, final.status)

        def finish(session: Session) -> None:
            message = session.scalar(select(Message).where(Message.id == final.sms.id).with_for_update()
                                     .execution_options(populate_existing=True))
            if message is not None and _receipts_apply(message):
                _conclude(session, message, self._now(), status, final.cost, final.error)

        await self._batch.write(finish)

    async def _retry_orphans(self) -> None:
        """Receipts whose SMSC ID was unknown: try again, drop them after the grace period."""
        if not self._orphans:
            return
        orphans, self._orphans = self._orphans, []
        now = self._now()
        for orphan in orphans:
            if (now - orphan.first_seen).total_seconds() > self.options.receipt_grace_s:
                log.warning("receipt for unknown SMSC id %s (%s) dropped", orphan.receipt.smsc_id,
                            orphan.receipt.state)
                continue
            await self._apply_receipt(orphan.receipt, orphan.first_seen)


def sms_cost(message: Message, sent_parts: int | None = None) -> int:
    """What an SMS the SMSC accepted costs, whatever its receipts say: the rate per part sent
    (`sent_parts`: its sms_parts rows, when the caller has counted them)."""
    sent = len(message.sms_parts) if sent_parts is None else sent_parts
    return message.rate * max(message.parts, sent)


def _receipts_apply(message: Message) -> bool:
    """Whether receipts may still change this message's status: unfinished, or finished by a receipt
    outcome (not cancelled, refused or unsendable)."""
    return message.finished_at is None or message.status_code in STATUS_PRECEDENCE


def _finish(message: Message, status: tuple[int, str], cost: int, error: str) -> queue.Finish:
    """How a receipt outcome finishes a message (queue.finish_messages)."""
    fields: dict[str, Any] = {"smsc_error": error} if error else {}
    return queue.Finish(message, status, cost, status[1].split(";")[0].lower(), "", fields)


def _conclude(session: Session, message: Message, now: dt.datetime, status: tuple[int, str], cost: int,
              error: str) -> None:
    """Finish a message with a receipt outcome, or raise the final status of a finished one (the money
    stays as it was settled: every receipt outcome costs the same)."""
    finish = _finish(message, status, cost, error)
    if message.finished_at is None:
        queue.finish_messages(session, [finish], now)
    elif status_precedence(status[0]) > status_precedence(message.status_code):
        queue.restatus(session, message, now, status, event=finish.event, **finish.fields)


@dataclass
class _PartRow:
    """One sms_parts row of a message a batch of receipts locked (its state as the batch changes it)."""

    message: Message
    part: int
    smsc_id: str
    state: str


def _pick_part(by_smsc_id: dict[str, list[_PartRow]], smsc_ids: Sequence[str]) -> _PartRow | None:
    """The part a receipt belongs to, among parts whose SMSC ID is one of `smsc_ids` (the forms the
    receipt's ID may take, most likely first): an unfinished message's part still without a receipt first
    (an SMSC that restarted may reuse IDs), then the likelier form, then the newest."""
    likelihood = {sid: n for n, sid in reversed(list(enumerate(smsc_ids)))}
    candidates = [part for sid in likelihood for part in by_smsc_id.get(sid, ())]
    if not candidates:
        return None
    newest_first = sorted(candidates, key=lambda p: _stamp(p.message.updated_at), reverse=True)
    return min(newest_first, key=lambda p: (p.message.finished_at is not None, p.state != "",
                                            likelihood[p.smsc_id]))


def _stamp(at: dt.datetime | None) -> float:
    if at is None:
        return 0.0
    return (at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)).timestamp()


def _receipt_rounds(
    session: Session, receipts: Sequence[Receipt]
) -> tuple[list[list[int]], dict[str, set[str]]]:
    """Indexes of `receipts` in rounds: a receipt goes in the round after the last one holding a receipt
    that may concern the same message (its SMSC IDs' parts), so receipts within a round are independent
    and a round after round applies them in their order. Also the IDs of the messages with a part of
    each SMSC ID."""
    wanted = {sid for receipt in receipts for sid in receipt.match_ids}
    owners: dict[str, set[str]] = {}
    for sid, message_id in session.execute(
            select(SmsPart.smsc_id, SmsPart.message_id).where(SmsPart.smsc_id.in_(wanted))):
        owners.setdefault(sid, set()).add(message_id)
    last: dict[str, int] = {}
    rounds: list[list[int]] = []
    for index, receipt in enumerate(receipts):
        mids = {mid for sid in receipt.match_ids for mid in owners.get(sid, ())}
        at = 1 + max((last[mid] for mid in mids if mid in last), default=-1)
        for mid in mids:
            last[mid] = at
        if at == len(rounds):
            rounds.append([])
        rounds[at].append(index)
    return rounds, owners


# ------------------------------------------------------------------------------------ batched writes


@dataclass
class _Op:
    work: Callable[[Session], Any] | None
    done: asyncio.Future[Any]
    bulk: Callable[[Session, list[Any]], Sequence[Any]] | None = None
    """Writes the items of every op of the transaction with the same `bulk` at once."""
    item: Any = None


class _WriteBatcher:
    """Runs store writes queued from many tasks together: one transaction, one savepoint each (a
    LeaseLost in one does not undo the others), off the event loop."""

    def __init__(self, db: Database, max_batch: int = 500) -> None:
        self._db = db
        self._max = max_batch
        self._queue: asyncio.Queue[_Op] = asyncio.Queue()

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Op(lambda session: work(session, *args), future))
        return await future

    async def write_many(self, bulk: Callable[[Session, list[Any]], Sequence[Any]], item: Any) -> Any:
        """Queue `item` for `bulk(session, items)`, called once per transaction with the items queued
        with it, in one savepoint; it answers one result per item (an exception instance: that item's
        error). Its result for `item`."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Op(None, future, bulk, item))
        return await future

    async def run(self) -> None:
        while True:
            ops = [await self._queue.get()]
            while not self._queue.empty() and len(ops) < self._max:
                ops.append(self._queue.get_nowait())
            await self._execute(ops)

    async def close(self) -> None:
        """Run what is still queued (the sender's last writes) before the writer is cancelled."""
        ops: list[_Op] = []
        while not self._queue.empty():
            ops.append(self._queue.get_nowait())
        if ops:
            await self._execute(ops)

    async def _execute(self, ops: list[_Op]) -> None:
        try:
            # deadlock victims run again: a receipt settles its owner's ledger, a batch of submissions
            # locks several owners (store.db.retrying)
            results = await asyncio.to_thread(retrying, lambda: self._transaction(ops))
        except Exception as exc:  # the whole transaction failed: every op shares the error
            for op in ops:
                if not op.done.done():
                    op.done.set_exception(exc)
            return
        for op, (ok, value) in zip(ops, results, strict=True):
            if op.done.done():
                continue
            if ok:
                op.done.set_result(value)
            else:
                op.done.set_exception(value)

    def _transaction(self, ops: list[_Op]) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = [(False, None)] * len(ops)
        groups: dict[Callable[[Session, list[Any]], Sequence[Any]], list[int]] = {}
        with self._db.transaction() as session:
            for index, op in enumerate(ops):
                if op.bulk is not None:
                    groups.setdefault(op.bulk, []).append(index)
                    continue
                assert op.work is not None
                try:
                    with session.begin_nested():
                        results[index] = (True, op.work(session))
                except (StoreError, SQLAlchemyError, ValueError, TypeError) as exc:
                    results[index] = (False, exc)
            for bulk, indexes in groups.items():
                try:
                    with session.begin_nested():
                        values = list(bulk(session, [ops[i].item for i in indexes]))
                except (StoreError, SQLAlchemyError, ValueError, TypeError) as exc:
                    values = [exc] * len(indexes)
                for index, value in zip(indexes, values, strict=True):
                    results[index] = (not isinstance(value, Exception), value)
        return results
