"""Messages as a work queue: create, claim with a lease, heartbeat, retry, complete.

The lease protocol (docs/store.md):

1. `claim()` takes up to `limit` messages that are unfinished, due (`next_attempt_at <= now`) and not
   leased (no lease, or an expired one), in one statement: `UPDATE messages SET lease_owner = worker,
   lease_expires_at = now + lease, attempts = attempts + 1 WHERE id IN (SELECT ... LIMIT n FOR UPDATE
   SKIP LOCKED) RETURNING *`. PostgreSQL skips rows another worker is claiming; SQLite runs it under the
   WAL writer lock (BEGIN IMMEDIATE), so two workers never get the same message.
2. The worker calls `heartbeat()` well inside the lease; it answers which messages it still holds.
3. Every later write (`progress()`, `retry_later()`, `complete_call()`) checks `lease_owner = worker`
   and raises LeaseLost otherwise, so a worker that stalled past its lease cannot overwrite the outcome
   of the worker that reclaimed the message.
4. A worker that dies (SIGKILL, power loss) simply stops heartbeating: its lease expires and the next
   `claim()` takes the message again (attempts counts every claim). Nothing is held in memory only.

`complete_call()` writes the outcome, the charge (and release of the rest of the reservation), the
timeline event and the status callback into the outbox in the caller's ONE transaction.

Size: every statement that moves a message through its states (submit, claim, progress, finish, receipts) is
here, each short, so the state rules and their indexes are read in one place.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Integer, Row, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, selectinload

from coded.statuses import CANCELLED, QUEUED, SENT_TO_SMSC
from store import ledger, outbox
from store.errors import LeaseLost, MessageNotFound
from store.models import Account, Base, Message, MessageEvent, MessageKind, Role, SmsPart
from store.rating import call_cost

_INSERT_MESSAGES = insert(Base.metadata.tables[Message.__tablename__])
_INSERT_EVENTS = insert(Base.metadata.tables[MessageEvent.__tablename__])
VOICE_KINDS = (MessageKind.TTS.value, MessageKind.VOICE.value, MessageKind.VTTS.value)


def time_ordered_id(unix_ms: int, random_bits: int) -> str:
    """A UUID version 7 (RFC 9562) as 32 lower-case hex characters: 48 bits of Unix time in milliseconds,
    then 74 random bits (`random_bits`, taken modulo 2**74) around the version and variant fields."""
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError("unix_ms out of range")
    random_bits &= (1 << 74) - 1
    value = (unix_ms << 80) | (0x7 << 76) | ((random_bits >> 62) << 64) | (0b10 << 62)
    return f"{value | (random_bits & ((1 << 62) - 1)):032x}"


def new_message_id() -> str:
    """A message or job ID: 32 lower-case hex characters, a UUID version 7. Time-ordered IDs make every
    index keyed by them (messages, events, ledger entries, jobs) grow at its right edge, so a commit
    rewrites a few pages instead of one random page per message (SQLite commit cost, docs/store.md);
    74 random bits keep them unguessable."""
    return time_ordered_id(time.time_ns() // 1_000_000, secrets.randbits(74))


@dataclass(frozen=True)
class NewMessage:
    """One recipient of a submission, as the service validated and priced it."""

    kind: str
    phone: str
    job_id: str
    callerid: str = ""
    body: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    prompt_blob: str | None = None
    prompt_sha256: str | None = None
    parts: int = 1
    rate: int = 0
    currency: str = "USD"
    reserved: int = 0
    callback_url: str = ""
    status: tuple[int, str] = QUEUED
    """Anything but QUEUED creates the message finished (e.g. 502 PIN IN DO NOT CALL DATABASE)."""


@dataclass(frozen=True)
class CallRecord:
    """The store's record of how a call ended (api.runtime.worker.store_outcome makes it from ivr.outcome's
    CallOutcome)."""

    status_code: int
    status_text: str
    answered: bool
    duration_s: float = 0.0
    response: str = ""
    sip_code: int | None = None
    sip_call_id: str | None = None


def create_message(
    session: Session,
    user: Account,
    spec: NewMessage,
    now: dt.datetime,
    make_id: Callable[[], str] = new_message_id,
) -> Message:
    """Write one message row (and its first event); reserving money is ledger.reserve_for()'s job."""
    queued = spec.status == QUEUED
    message = Message(
        id=make_id(),
        job_id=spec.job_id,
        kind=spec.kind,
        account_id=user.owner_id,
        user_id=user.id,
        phone=spec.phone,
        callerid=spec.callerid,
        body=spec.body,
        settings=dict(spec.settings),
        prompt_blob=spec.prompt_blob,
        prompt_sha256=spec.prompt_sha256,
        parts=spec.parts,
        rate=spec.rate,
        currency=spec.currency,
        reserved=spec.reserved if queued else 0,
        callback_url=spec.callback_url,
        status_code=spec.status[0],
        status_text=spec.status[1],
        response="",
        attempts=0,
        created_at=now,
        updated_at=now,
        next_attempt_at=now if queued else None,
        finished_at=None if queued else now,
        cost=None if queued else 0,
    )
    session.add(message)
    session.add(
        MessageEvent(
            message=message,
            at=now,
            kind="queued" if queued else "refused",
            detail="" if queued else spec.status[1],
        )
    )
    session.flush()
    return message


@dataclass(frozen=True)
class Created:
    """A message row built by message_rows(): what the submitter needs to answer and reserve."""

    id: str
    phone: str
    status_code: int
    status_text: str
    reserved: int
    """Micro-units to reserve (0 for a message created finished)."""

    @property
    def queued(self) -> bool:
        return self.status_code == QUEUED[0]


@dataclass
class MessageRows:
    """The rows of one submission's messages and their first events, built but not yet written."""

    created: list[Created]
    messages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    job_id: str = ""
    """The submission's job ID (that of its first message)."""


def message_rows(
    owner_id: int,
    user_id: int,
    specs: Sequence[NewMessage],
    now: dt.datetime,
    make_id: Callable[[], str] = new_message_id,
) -> MessageRows:
    """The rows of one submission's messages and first events, with their new IDs (pure: a batch of
    submissions builds them all, reserves, then writes them with insert_rows(): no ORM objects)."""
    out = MessageRows([], [], [], specs[0].job_id if specs else "")
    for spec in specs:
        queued = spec.status == QUEUED
        message_id = make_id()
        reserved = spec.reserved if queued else 0
        out.created.append(Created(message_id, spec.phone, spec.status[0], spec.status[1], reserved))
        out.messages.append(_message_row(spec, message_id, owner_id, user_id, reserved, now))
        detail = "" if queued else spec.status[1]
        kind = "queued" if queued else "refused"
        out.events.append({"message_id": message_id, "at": now, "kind": kind, "detail": detail})
    return out


def insert_rows(session: Session | Connection, batch: Sequence[MessageRows]) -> None:
    """Write the messages and events of every submission of `batch` in two statements (no ORM objects)."""
    messages = [row for rows in batch for row in rows.messages]
    if not messages:
        return
    conn = ledger.core(session)  # Core on the connection: no ORM bookkeeping per row
    conn.execute(_INSERT_MESSAGES, messages)
    conn.execute(_INSERT_EVENTS, [event for rows in batch for event in rows.events])


def _message_row(
    spec: NewMessage, message_id: str, owner_id: int, user_id: int, reserved: int, now: dt.datetime
) -> dict[str, Any]:
    queued = spec.status == QUEUED
    return {
        "id": message_id,
        "job_id": spec.job_id,
        "kind": spec.kind,
        "account_id": owner_id,
        "user_id": user_id,
        "phone": spec.phone,
        "callerid": spec.callerid,
        "body": spec.body,
        "settings": dict(spec.settings),
        "prompt_blob": spec.prompt_blob,
        "prompt_sha256": spec.prompt_sha256,
        "status_code": spec.status[0],
        "status_text": spec.status[1],
        "response": "",
        "duration_s": None,
        "sip_call_id": None,
        "sip_code": None,
        "smsc_error": None,
        "parts": spec.parts,
        "attempts": 0,
        "rate": spec.rate,
        "currency": spec.currency,
        "reserved": reserved,
        "cost": None if queued else 0,
        "callback_url": spec.callback_url,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now if queued else None,
        "finished_at": None if queued else now,
        "lease_owner": None,
        "lease_expires_at": None,
    }


def get_message(session: Session, message_id: str, viewer: Account | None = None) -> Message:
    """A message by ID, as `viewer` may see it: administrators all, owners their account's, sub-users
    their own. MessageNotFound (500) for unknown and foreign IDs alike."""
    message = session.get(Message, message_id) if len(message_id) <= 32 else None
    if message is None or (viewer is not None and not _may_see(viewer, message)):
        raise MessageNotFound(message_id)
    return message


def _may_see(viewer: Account, message: Message) -> bool:
    if viewer.role == Role.ADMINISTRATOR:
        return True
    if viewer.role == Role.SUBUSER:
        return message.user_id == viewer.id
    return message.account_id == viewer.id


def job_messages(session: Session, job_id: str) -> Sequence[Message]:
    return session.scalars(select(Message).where(Message.job_id == job_id).order_by(Message.created_at)).all()


def _claimable(now: dt.datetime, kinds: Sequence[str]) -> Any:
    return and_(
        Message.finished_at.is_(None),
        Message.next_attempt_at <= now,
        or_(Message.lease_expires_at.is_(None), Message.lease_expires_at < now),
        Message.kind.in_(kinds),
    )


def claim(
    session: Session,
    worker: str,
    now: dt.datetime,
    lease_s: float,
    limit: int = 1,
    kinds: Sequence[str] = VOICE_KINDS,
    account_id: int | None = None,
) -> list[Message]:
    """Lease up to `limit` due messages of `kinds` (of one owner, given `account_id`) to `worker`
    (oldest due first). Commit the transaction promptly: on SQLite it holds the writer lock."""
    statement = (
        update(Message)
        .where(Message.id.in_(_due(now, limit, kinds, account_id)))
        .values(**_lease_values(worker, now, lease_s))
        .returning(Message)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    claimed = list(session.scalars(statement))
    _claimed_events(session, worker, now, claimed)
    return claimed


def claim_rows(
    session: Session,
    worker: str,
    now: dt.datetime,
    lease_s: float,
    limit: int,
    kinds: Sequence[str],
    columns: Sequence[str],
) -> list[Row[Any]]:
    """claim() as plain rows of `columns` (and `id`, `attempts`) instead of ORM objects: the same
    messages leased the same way, in one Core UPDATE ... RETURNING (the SMS sender claims hundreds)."""
    names = dict.fromkeys(["id", "attempts", *columns])
    statement = (
        update(_MESSAGES)
        .where(_MESSAGES.c.id.in_(_due(now, limit, kinds)))
        .values(**_lease_values(worker, now, lease_s))
        .returning(*(_MESSAGES.c[name] for name in names))
    )
    claimed = list(ledger.core(session).execute(statement))
    _claimed_events(session, worker, now, claimed)
    return claimed


def set_settings(session: Session, settings: dict[str, dict[str, Any]]) -> None:
    """Write the settings of many messages (message ID -> the whole new settings) in one statement."""
    if settings:
        rows = [{"b_id": message_id, "settings": value} for message_id, value in settings.items()]
        ledger.core(session).execute(_SET_SETTINGS, rows)


def _due(now: dt.datetime, limit: int, kinds: Sequence[str], account_id: int | None = None) -> Any:
    """The IDs of up to `limit` claimable messages of `kinds` (of one owner, given `account_id`), oldest
    due first, locked (others skipped)."""
    owner = [Message.account_id == account_id] if account_id is not None else []
    return (
        select(Message.id)
        .where(_claimable(now, kinds), *owner)
        .order_by(Message.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


def _lease_values(worker: str, now: dt.datetime, lease_s: float) -> dict[str, Any]:
    return {"lease_owner": worker, "lease_expires_at": now + dt.timedelta(seconds=lease_s),
            "attempts": Message.attempts + 1, "updated_at": now}


def _claimed_events(session: Session, worker: str, now: dt.datetime, claimed: Sequence[Any]) -> None:
    add_events(session, [{"message_id": m.id, "at": now, "kind": "claimed",
                          "detail": f"{worker} attempt {m.attempts}"} for m in claimed])


def lock_due_accounts(
    session: Session, now: dt.datetime, kinds: Sequence[str] = VOICE_KINDS
) -> list[tuple[Account, int]]:
    """The owners with due messages of `kinds`, each with how many are due, oldest due first (the
    order a claim serves them in), their rows locked in ID order (SELECT ... FOR UPDATE on PostgreSQL,
    so claimers never deadlock; on SQLite the write transaction's writer lock): two claimers counting
    one account's calls in flight take turns (the voice worker's per-account limits). Every owner with
    due messages is locked, for the few statements of a claim."""
    counted = session.execute(
        select(Message.account_id, func.count(), func.min(Message.next_attempt_at))
        .where(_claimable(now, kinds)).group_by(Message.account_id))
    due = {account_id: (count, oldest) for account_id, count, oldest in counted}
    if not due:
        return []
    owners = session.scalars(
        select(Account).where(Account.id.in_(list(due))).order_by(Account.id).with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return [(owner, due[owner.id][0]) for owner in sorted(owners, key=lambda o: (due[o.id][1], o.id))]


def in_flight(session: Session, account_id: int, now: dt.datetime, kinds: Sequence[str] = VOICE_KINDS) -> int:
    """Messages of `kinds` of an owner leased now by any worker (claimed, not finished, not given back)."""
    return session.scalar(
        select(func.count()).select_from(Message).where(
            Message.account_id == account_id, Message.kind.in_(kinds), Message.finished_at.is_(None),
            Message.lease_owner.is_not(None), Message.lease_expires_at >= now)
    ) or 0


def heartbeat(
    session: Session, worker: str, message_ids: Iterable[str], now: dt.datetime, lease_s: float
) -> set[str]:
    """Extend `worker`'s leases; returns the IDs it still holds (a missing one was lost: stop working it)."""
    ids = list(message_ids)
    if not ids:
        return set()
    statement = (
        update(Message)
        .where(Message.id.in_(ids), Message.lease_owner == worker, Message.finished_at.is_(None))
        .values(lease_expires_at=now + dt.timedelta(seconds=lease_s))
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return set(session.scalars(statement))


def _held(session: Session, message_id: str, worker: str) -> Message:
    """The message, locked, if `worker` still holds its lease; LeaseLost otherwise."""
    message = session.scalar(
        select(Message)
        .where(Message.id == message_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if message is None:
        raise MessageNotFound(message_id)
    if message.lease_owner != worker or message.finished_at is not None:
        raise LeaseLost(f"{worker} does not hold message {message_id}")
    return message


def add_event(session: Session, message_id: str, kind: str, now: dt.datetime, detail: str = "") -> None:
    """Append a timeline event (dialling, ringing, answered, key, hung_up, sent, delivered, ...)."""
    session.add(MessageEvent(message_id=message_id, at=now, kind=kind, detail=detail))
    session.flush()


def timeline(session: Session, message_id: str) -> list[MessageEvent]:
    """A message's timeline events in the order they were written."""
    query = select(MessageEvent).where(MessageEvent.message_id == message_id).order_by(MessageEvent.id)
    return list(session.scalars(query))


def progress(
    session: Session,
    message_id: str,
    worker: str,
    now: dt.datetime,
    status: tuple[int, str] | None = None,
    event: str = "",
    detail: str = "",
    **fields: Any,
) -> Message:
    """Record progress of a held message: a status (e.g. CALLING), an event, SIP Call-ID and the like."""
    message = _held(session, message_id, worker)
    _apply(message, status, now, fields)
    if event:
        add_event(session, message_id, event, now, detail)
    session.flush()
    return message


_UPDATABLE = {"sip_call_id", "sip_code", "smsc_error", "duration_s", "response", "prompt_sha256", "parts"}


def _apply(
    message: Message, status: tuple[int, str] | None, now: dt.datetime, fields: dict[str, Any]
) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise TypeError(f"not updatable: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(message, name, value)
    if status is not None:
        message.status_code, message.status_text = status
    message.updated_at = now


def _finished_values(finish: Finish, now: dt.datetime) -> dict[str, Any]:
    """The columns a finish writes (`_apply`'s, the end of the lease) as {attribute: value}."""
    unknown = set(finish.fields) - _UPDATABLE
    if unknown:
        raise TypeError(f"not updatable: {sorted(unknown)}")
    code, text = finish.status
    return {**finish.fields, "status_code": code, "status_text": text, "updated_at": now, "finished_at": now,
            "lease_owner": None, "lease_expires_at": None, "next_attempt_at": None}


def retry_later(
    session: Session,
    message_id: str,
    worker: str,
    now: dt.datetime,
    at: dt.datetime,
    reason: str = "",
    **fields: Any,
) -> Message:
    """Give a held message back to the queue, due again at `at` (busy, no answer: the dialer's retries)."""
    message = _held(session, message_id, worker)
    _apply(message, QUEUED, now, fields)
    message.lease_owner, message.lease_expires_at, message.next_attempt_at = None, None, at
    add_event(session, message_id, "retry", now, reason)
    return message


def await_receipt(
    session: Session, message_id: str, worker: str, now: dt.datetime, smsc_ids: Sequence[str]
) -> Message:
    """An SMS the SMSC accepted: store its part IDs, status 110 'Sent to SMSC', release the lease and
    wait for the receipts (finish_message() when they arrive)."""
    if message_id not in await_receipts(session, worker, now, [Accepted(message_id, smsc_ids)]):
        _held(session, message_id, worker)  # raises MessageNotFound or LeaseLost
    message = session.get(Message, message_id, populate_existing=True)
    assert message is not None
    session.expire(message, ["sms_parts"])
    return message


@dataclass(frozen=True)
class Accepted:
    """An SMS whose parts the SMSC all accepted: their IDs in part order (await_receipts())."""

    message_id: str
    smsc_ids: Sequence[str]
    parts: int | None = None
    """SMS parts charged, when it differs from the submission's count (message_payload)."""


_MESSAGES = Base.metadata.tables[Message.__tablename__]
_SET_SETTINGS = update(_MESSAGES).where(_MESSAGES.c.id == bindparam("b_id"))
_SENT = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("b_id"))
    .values(status_code=SENT_TO_SMSC[0], status_text=SENT_TO_SMSC[1], updated_at=bindparam("b_now"),
            parts=func.coalesce(bindparam("b_parts", type_=Integer), _MESSAGES.c.parts),
            lease_owner=None, lease_expires_at=None, next_attempt_at=None)
)
_INSERT_PARTS = insert(Base.metadata.tables[SmsPart.__tablename__])


def await_receipts(session: Session, worker: str, now: dt.datetime, accepted: Sequence[Accepted]) -> set[str]:
    """await_receipt() of many SMS in a few statements (the SMS sender's batch): the IDs of those
    `worker` still held and that were stored; the others (lease lost, finished) are left unchanged."""
    if not accepted:
        return set()
    conn = ledger.core(session)
    held = set(conn.scalars(
        select(_MESSAGES.c.id)
        .where(_MESSAGES.c.id.in_([a.message_id for a in accepted]), _MESSAGES.c.lease_owner == worker,
               _MESSAGES.c.finished_at.is_(None))
        .order_by(_MESSAGES.c.id)
        .with_for_update()
    ))
    stored = [a for a in accepted if a.message_id in held]
    if not stored:
        return held
    conn.execute(_SENT, [{"b_id": a.message_id, "b_now": now, "b_parts": a.parts} for a in stored])
    conn.execute(_INSERT_PARTS, [{"message_id": a.message_id, "part": n, "smsc_id": sid, "state": ""}
                                 for a in stored for n, sid in enumerate(a.smsc_ids, start=1)])
    add_events(session, [{"message_id": a.message_id, "at": now, "kind": "sent",
                          "detail": ",".join(a.smsc_ids)} for a in stored])
    return held


_PARTS = Base.metadata.tables[SmsPart.__tablename__]
_SET_PART_STATE = (
    update(_PARTS)
    .where(_PARTS.c.message_id == bindparam("b_message"), _PARTS.c.part == bindparam("b_part"))
    .values(state=bindparam("b_state"))
)


def set_part_states(session: Session, states: dict[tuple[str, int], str]) -> None:
    """Write the receipt states of many SMS parts ((message id, part) -> state) in one statement."""
    if states:
        ledger.core(session).execute(
            _SET_PART_STATE, [{"b_message": m, "b_part": p, "b_state": s} for (m, p), s in states.items()]
        )


def add_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Append many timeline events (message_id, at, kind, detail) in one statement."""
    if rows:
        ledger.core(session).execute(_INSERT_EVENTS, list(rows))


def awaiting_receipts(session: Session) -> int:
    """SMS messages the SMSC accepted and whose final receipt has not arrived (for /healthz, /metrics)."""
    count = session.scalar(select(func.count()).select_from(Message).where(
        Message.finished_at.is_(None), Message.kind == MessageKind.SMS.value,
        Message.status_code == SENT_TO_SMSC[0]))
    return int(count or 0)


def find_by_smsc_id(session: Session, smsc_id: str) -> SmsPart | None:
    """The SMS part an SMSC message ID (from a delivery receipt) belongs to."""
    return session.scalar(select(SmsPart).where(SmsPart.smsc_id == smsc_id).limit(1))


def finish_message(
    session: Session,
    message: Message,
    now: dt.datetime,
    status: tuple[int, str],
    cost: int,
    event: str = "finished",
    detail: str = "",
    **fields: Any,
) -> Message:
    """Write a final status, settle the money (charge `cost`, release the rest of the reservation) and
    queue the status callback, in the caller's transaction."""
    finish_messages(session, [Finish(message, status, cost, event, detail, fields)], now)
    return message


@dataclass(frozen=True)
class Finish:
    """One message for finish_messages(): finish_message()'s arguments."""

    message: Message
    status: tuple[int, str]
    cost: int
    event: str = "finished"
    detail: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def finish_messages(session: Session, finishes: Sequence[Finish], now: dt.datetime) -> None:
    """finish_message() of many messages: the statuses, the settlements (ledger.settle_many: the owners
    locked and the entries written in one statement each), the events and callbacks in one insert each."""
    if not finishes:
        return
    changes = [(finish.message, _finished_values(finish, now)) for finish in finishes]
    ledger.settle_many(session, [(finish.message, finish.cost) for finish in finishes], now)
    ledger.write_message_columns(session, changes)  # Core UPDATEs: no ORM flush of hundreds of messages
    add_events(session, [{"message_id": f.message.id, "at": now, "kind": f.event,
                          "detail": f.detail or f.status[1]} for f in finishes])
    callbacks = [_callback_row(f.message, now) for f in finishes]
    outbox.enqueue_rows(session, [row for row in callbacks if row is not None])


def restatus(
    session: Session,
    message: Message,
    now: dt.datetime,
    status: tuple[int, str],
    event: str = "restatus",
    detail: str = "",
    **fields: Any,
) -> Message:
    """Change the status of a finished message (an SMS receipt that arrives after its final status and
    outranks it, sms.sender.receipt_outcome); the money stays as settled, the status callback is queued
    again with the new status."""
    if message.finished_at is None:
        raise ValueError(f"message {message.id} is not finished")
    _apply(message, status, now, fields)
    add_event(session, message.id, event, now, detail or status[1])
    _queue_callback(session, message, now)
    session.flush()
    return message


def _queue_callback(session: Session, message: Message, now: dt.datetime) -> None:
    row = _callback_row(message, now)
    if row is not None:
        outbox.enqueue_rows(session, [row])


def _callback_row(message: Message, now: dt.datetime) -> dict[str, Any] | None:
    """The outbox row of a message's status callback, None when it has no callback URL."""
    if not message.callback_url:
        return None
    return outbox.row(kind=outbox.CALLBACK, url=message.callback_url, body=callback_body(message), now=now,
                      secret_ref=f"account:{message.account_id}", message_id=message.id)


def awaiting_receipt(
    session: Session, sent_before: dt.datetime, limit: int, kinds: Sequence[str] = (MessageKind.SMS.value,)
) -> list[Message]:
    """SMS accepted by the SMSC (110 Sent to SMSC, no lease) and last updated before `sent_before`:
    those whose receipts are overdue. Locked (skipping rows another node holds); their sms_parts loaded
    in one more query (the sweep's cost counts them)."""
    query = (
        select(Message)
        .options(selectinload(Message.sms_parts))
        .where(
            Message.finished_at.is_(None),
            Message.next_attempt_at.is_(None),
            Message.lease_owner.is_(None),
            Message.kind.in_(kinds),
            Message.status_code == SENT_TO_SMSC[0],
            Message.updated_at < sent_before,
        )
        .order_by(Message.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def complete_call(
    session: Session,
    message_id: str,
    worker: str,
    outcome: CallRecord,
    now: dt.datetime,
    increment_s: int = 60,
) -> Message:
    """The end of a call: outcome, charge by billing increment (and release of the rest), timeline and
    status callback, all in the caller's one transaction. LeaseLost if `worker` no longer holds it."""
    message = _held(session, message_id, worker)
    cost = call_cost(outcome.duration_s, message.rate, increment_s, outcome.answered)
    fields: dict[str, Any] = {"duration_s": int(outcome.duration_s), "response": outcome.response}
    if outcome.sip_code is not None:
        fields["sip_code"] = outcome.sip_code
    if outcome.sip_call_id is not None:
        fields["sip_call_id"] = outcome.sip_call_id
    status = (outcome.status_code, outcome.status_text)
    return finish_message(session, message, now, status, cost, event="hung_up", **fields)


def cancel(session: Session, message_id: str, viewer: Account, now: dt.datetime) -> Message:
    """Cancel a queued message that no worker holds (604 Cancelled, reservation released).
    LeaseLost when it is in progress, MessageNotFound when finished or not the viewer's."""
    message = get_message(session, message_id, viewer)
    session.refresh(message, with_for_update=True)
    if message.finished_at is not None:
        raise MessageNotFound(f"{message_id} is already finished")
    if (
        message.lease_owner is not None
        and message.lease_expires_at is not None
        and message.lease_expires_at > now
    ):
        raise LeaseLost(f"{message_id} is in progress")
    return finish_message(session, message, now, CANCELLED, 0, event="cancelled")


def callback_body(message: Message) -> str:
    """The JSON a status callback POSTs: the matrix_status fields plus duration and cost."""
    stamp = message.finished_at or message.updated_at
    return json.dumps(
        {
            "ID": message.id,
            "PHONE": message.phone,
            "STATUSCODE": message.status_code,
            "STATUSTXT": message.status_text,
            "RESPONSE": message.response,
            "DURATION": message.duration_s,
            "COST": message.cost,
            "CURRENCY": message.currency,
            "TIMESTAMP": int(stamp.timestamp()),
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def queue_depth(session: Session, now: dt.datetime) -> int:
    """Unfinished messages due now and not leased (for /metrics)."""
    kinds = [kind.value for kind in MessageKind]
    count = session.scalar(select(func.count()).select_from(Message).where(_claimable(now, kinds)))
    return int(count or 0)
