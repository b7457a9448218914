"""The ledger: an append-only list of money movements; a balance is the sum of an owner's entries.

Entries (amounts in micro-units, signed):

- topup   +A  money paid in
- reserve -R  held at submission (one message, or the maximum call length)
- charge  -C  what the outcome costs (C <= R)
- release +R  the whole reservation handed back when the outcome is charged, so net = -C
- refund  +A  money given back after a charge

`settle()` writes the charge and the release in the caller's transaction, together with the outcome.
Every write locks the owner's row first (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the transaction
already holds the writer lock from BEGIN IMMEDIATE), so two concurrent reservations cannot both pass the
balance check, and one owner's entries commit in id order. A sub-user's spending is the negated sum of
its reserve/charge/release/refund entries; its spending limit is checked under the same lock.

The balance stays the sum of the ledger, but is not summed from the first entry each time: every
CHECKPOINT_EVERY entries `reserve()` appends a checkpoint (ledger_checkpoints: the sum up to an entry
id), and the balance is the latest checkpoint plus the entries after it, read through a covering index.
A checkpoint is only ever written under the owner lock, which is what makes "no entry below its id can
still appear" true on PostgreSQL too (docs/store.md).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Select,
    and_,
    bindparam,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from store.errors import AccountNotFound, InsufficientBalance, StoreError
from store.models import Account, Base, EntryKind, LedgerCheckpoint, LedgerEntry, Message

log = logging.getLogger(__name__)

_SPENDING = (EntryKind.RESERVE, EntryKind.CHARGE, EntryKind.RELEASE, EntryKind.REFUND)
CHECKPOINT_EVERY = 32
"""Entries after the latest checkpoint that make reserve() append a new one (bounds a balance read)."""


@dataclass(frozen=True)
class Tally:
    """An owner's balance and how it was read: the latest checkpoint plus the entries after it."""

    balance: int
    """Micro-units: the sum of every entry of the owner."""
    entries_after: int
    """Entries after the checkpoint (all of them when there is none)."""
    last_id: int
    """The owner's newest entry id (0 when the ledger is empty)."""
    entries: int
    """All of the owner's entries."""


_TABLES = Base.metadata.tables
_LEDGER = _TABLES[LedgerEntry.__tablename__]
_CHECKPOINTS = _TABLES[LedgerCheckpoint.__tablename__]
_ACCOUNTS = _TABLES[Account.__tablename__]
# The submission path's statements, built once: building and coercing a statement per call cost more
# than running it (py-spy, docs/store.md).
_LATEST_CHECKPOINTS = (
    select(_CHECKPOINTS.c.account_id, func.max(_CHECKPOINTS.c.ledger_id).label("ledger_id"))
    .where(_CHECKPOINTS.c.account_id.in_(bindparam("owners", expanding=True)))
    .group_by(_CHECKPOINTS.c.account_id)
    .subquery("latest")
)
_CHECKPOINTS_OF = select(
    _CHECKPOINTS.c.account_id, _CHECKPOINTS.c.ledger_id, _CHECKPOINTS.c.balance, _CHECKPOINTS.c.entries
).join(
    _LATEST_CHECKPOINTS,
    and_(
        _LATEST_CHECKPOINTS.c.account_id == _CHECKPOINTS.c.account_id,
        _LATEST_CHECKPOINTS.c.ledger_id == _CHECKPOINTS.c.ledger_id,
    ),
)
_AFTER_CHECKPOINT = select(
    _LEDGER.c.account_id, func.coalesce(func.sum(_LEDGER.c.amount), 0), func.count(), func.max(_LEDGER.c.id)
).group_by(_LEDGER.c.account_id)


@functools.lru_cache(maxsize=128)
def _after_checkpoints(owners: int) -> CompoundSelect[Any] | Select[Any]:
    """The sums after the checkpoints of `owners` owners: one SELECT per owner (account_id = owner<i>
    AND id > since<i>: a seek into the covering index; an OR of the ranges makes SQLite visit the table
    rows), joined by UNION ALL; built once per count (building it per call cost more than running it)."""
    parts = [
        _AFTER_CHECKPOINT.where(
            _LEDGER.c.account_id == bindparam(f"owner{i}"), _LEDGER.c.id > bindparam(f"since{i}")
        )
        for i in range(owners)
    ]
    return parts[0] if owners == 1 else union_all(*parts)
_LOCK_OWNERS = (
    select(_ACCOUNTS.c.id, _ACCOUNTS.c.spending_limit)
    .where(_ACCOUNTS.c.id.in_(bindparam("owners", expanding=True)))
    .order_by(_ACCOUNTS.c.id)
    .with_for_update()
)
_INSERT_ENTRIES = insert(_LEDGER).returning(_LEDGER.c.id, sort_by_parameter_order=True)
_INSERT_ENTRIES_ONLY = insert(_LEDGER)
_INSERT_CHECKPOINT = insert(_CHECKPOINTS)


def core(session: Session | Connection) -> Connection:
    """The Core connection of `session`, its pending ORM changes written first (so sums see them); a
    Connection is its own. The submission path passes one Connection to every call of a transaction."""
    if isinstance(session, Connection):
        return session
    session.flush()
    return session.connection()


_MESSAGES = Base.metadata.tables[Message.__tablename__]
_UPDATE_MESSAGE = update(_MESSAGES).where(_MESSAGES.c.id == bindparam("b_id"))


def write_message_columns(
    session: Session | Connection, changes: Sequence[tuple[Message, dict[str, Any]]]
) -> None:
    """Write new column values of loaded messages (attribute names as keys) with Core UPDATEs, one
    executemany per set of columns, and make them the objects' committed state: what an ORM flush of those
    attributes would do, without its bookkeeping per object (a batch of receipts ends hundreds)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for message, values in changes:
        for name, value in values.items():
            set_committed_value(message, name, value)
        groups.setdefault(tuple(sorted(values)), []).append({"b_id": message.id, **values})
    conn = core(session)
    for rows in groups.values():
        conn.execute(_UPDATE_MESSAGE, rows)


def tally(session: Session | Connection, account_id: int) -> Tally:
    """The owner's balance read as the latest checkpoint plus the sum of the entries after it."""
    return tallies(session, [account_id])[account_id]


def tallies(session: Session | Connection, account_ids: Sequence[int]) -> dict[int, Tally]:
    """tally() of several owners in two statements (a batch of submissions reads all its owners at once)."""
    conn = core(session)
    owners = sorted(set(account_ids))
    if not owners:
        return {}
    points = {row[0]: row[1:] for row in conn.execute(_CHECKPOINTS_OF, {"owners": owners})}
    ranges: dict[str, int] = {}
    for i, owner in enumerate(owners):
        ranges[f"owner{i}"], ranges[f"since{i}"] = owner, int(points.get(owner, (0,))[0])
    sums = {row[0]: row[1:] for row in conn.execute(_after_checkpoints(len(owners)), ranges)}
    out = {}
    for owner in owners:
        since, base, counted = points.get(owner, (0, 0, 0))
        total, count, last = sums.get(owner, (0, 0, None))
        out[owner] = Tally(int(base) + int(total), int(count), int(last or since), int(counted) + int(count))
    return out


def balance(session: Session, account_id: int) -> int:
    """The owner's balance in micro-units: the sum of its entries (open reservations already deducted)."""
    return tally(session, account_id).balance


def full_sum(session: Session, account_id: int) -> int:
    """The sum of every entry of the owner, from the first: what `balance()` must always equal (audits)."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == account_id)
    )
    return int(total or 0)


def spent(session: Session | Connection, user_id: int) -> int:
    """Micro-units a login has committed: charges plus open reservations, less refunds."""
    total = core(session).scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.user_id == user_id, LedgerEntry.kind.in_([k.value for k in _SPENDING])
        )
    )
    return -int(total or 0)


def lock_owner_id(session: Session | Connection, account_id: int) -> int | None:
    """Lock the owner's row for the rest of the transaction without loading it (the submission path);
    returns the row's spending limit. AccountNotFound when there is no such account."""
    found = lock_owner_ids(session, [account_id])
    if account_id not in found:
        raise AccountNotFound(f"account {account_id}")
    return found[account_id]


def lock_owner_ids(session: Session | Connection, account_ids: Sequence[int]) -> dict[int, int | None]:
    """Lock several owners' rows in one statement, in id order (two writers never wait on each other in
    a cycle); {id: spending limit} of those that exist."""
    rows = core(session).execute(_LOCK_OWNERS, {"owners": sorted(set(account_ids))})
    return {int(row.id): None if row.spending_limit is None else int(row.spending_limit) for row in rows}


def lock_owner(session: Session, account_id: int) -> Account:
    """Lock the owner's row for the rest of the transaction: every ledger write of one owner queues
    here (reservations cannot overdraw; entries commit in id order, which checkpoints rely on)."""
    account = session.scalar(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if account is None:
        raise AccountNotFound(f"account {account_id}")
    return account


def _entry(
    session: Session,
    kind: EntryKind,
    account_id: int,
    amount: int,
    now: dt.datetime,
    user_id: int | None = None,
    message_id: str | None = None,
    note: str = "",
) -> LedgerEntry:
    entry = LedgerEntry(
        account_id=account_id,
        user_id=user_id,
        kind=kind.value,
        amount=amount,
        message_id=message_id,
        note=note,
        created_at=now,
    )
    session.add(entry)
    return entry


def top_up(session: Session, account_id: int, amount: int, now: dt.datetime, note: str = "") -> LedgerEntry:
    """Add money to an owner's balance."""
    if amount <= 0:
        raise ValueError("a top-up must be positive")
    lock_owner(session, account_id)
    entry = _entry(session, EntryKind.TOPUP, account_id, amount, now, note=note)
    session.flush()
    return entry


def reserve(
    session: Session, user: Account, amounts: Sequence[tuple[str | None, int]], now: dt.datetime
) -> list[LedgerEntry]:
    """Hold money for messages of `user` (an owner or sub-user): one (message_id, amount) per message.
    All or nothing: InsufficientBalance (503) when the owner's balance or the sub-user's spending limit
    does not cover the total, and then nothing is written."""
    lock_owner(session, user.owner_id)
    ids = reserve_locked(session, user.owner_id, user.id, user.spending_limit, amounts, now)
    if not ids:
        return []
    found = session.scalars(select(LedgerEntry).where(LedgerEntry.id.in_(ids)).order_by(LedgerEntry.id))
    return list(found)


def reserve_locked(
    session: Session | Connection,
    owner_id: int,
    user_id: int,
    spending_limit: int | None,
    amounts: Sequence[tuple[str | None, int]],
    now: dt.datetime,
) -> list[int]:
    """reserve() for a caller that already holds the owner lock (lock_owner_id) and knows the user's
    spending limit: checks, appends a checkpoint when due, and writes the entries in one statement.
    Returns the new entries' ids; InsufficientBalance (503) and nothing written when short."""
    purse = Purse(core(session), owner_id)
    purse.take(user_id, spending_limit, amounts)
    return purse.write(now)


class Purse:
    """One owner's money inside a write transaction that holds the owner lock (lock_owner_id): the
    balance is read once, then `take()` checks and holds reservations in memory, job after job, and
    `write()` appends the checkpoint when due and every entry in one statement. A batch of submissions
    (api.core.service's group commit) reserves for many jobs of one owner with one read and one insert;
    a job `take()` refuses leaves nothing behind."""

    def __init__(self, conn: Connection, owner_id: int, read: Tally | None = None) -> None:
        self._conn = conn
        self.owner_id = owner_id
        self._read = read if read is not None else tally(conn, owner_id)
        """The owner's tally under the lock (tallies() reads a batch's owners at once)."""
        self.available = self._read.balance
        """The balance less what this purse holds."""
        self._spent: dict[int, int] = {}
        self._rows: list[dict[str, object]] = []

    def take(
        self, user_id: int, spending_limit: int | None, amounts: Sequence[tuple[str | None, int]]
    ) -> None:
        """Hold (message_id, amount) for `user_id`, all or nothing: InsufficientBalance (503) when the
        balance or the user's spending limit does not cover the total (nothing held then)."""
        if any(amount < 0 for _, amount in amounts):
            raise ValueError("a reservation cannot be negative")
        total = sum(amount for _, amount in amounts)
        if total > self.available:
            raise InsufficientBalance(f"need {total}, balance {self.available}")
        if spending_limit is not None:
            if user_id not in self._spent:
                self._spent[user_id] = spent(self._conn, user_id)
            if self._spent[user_id] + total > spending_limit:
                raise InsufficientBalance("spending limit reached")
            self._spent[user_id] += total
        self.available -= total
        self._rows.extend(
            {
                "account_id": self.owner_id,
                "user_id": user_id,
                "kind": EntryKind.RESERVE.value,
                "amount": -amount,
                "message_id": message_id,
                "note": "",
            }
            for message_id, amount in amounts
            if amount > 0
        )

    def checkpoint(self, now: dt.datetime) -> dict[str, object] | None:
        """The checkpoint row due at the owner's newest entry (CHECKPOINT_EVERY entries after the last
        one), or None. The purse's transaction holds the owner lock, so no entry of the owner below the
        tally's last id is uncommitted."""
        read = self._read
        if read.entries_after < CHECKPOINT_EVERY:
            return None
        return {"account_id": self.owner_id, "ledger_id": read.last_id, "balance": read.balance,
                "entries": read.entries, "created_at": now}

    def drain(self, now: dt.datetime) -> list[dict[str, object]]:
        """The entry rows held so far, stamped `now` (the purse holds none after)."""
        rows, self._rows = self._rows, []
        for row in rows:
            row["created_at"] = now
        return rows

    def write(self, now: dt.datetime) -> list[int]:
        """Append the checkpoint when due and the held entries; their ids, in the order taken."""
        return write_purses(self._conn, [self], now, ids=True)


def write_purses(
    conn: Connection, purses: Sequence[Purse], now: dt.datetime, *, ids: bool = False
) -> list[int]:
    """Write what `purses` hold: the checkpoints due, then every entry, in one statement each. With
    `ids`, the new entries' ids in the order taken (purse after purse); without, none (a plain
    executemany: on SQLite an ordered RETURNING costs one statement per row)."""
    checkpoints = [row for purse in purses if (row := purse.checkpoint(now)) is not None]
    if checkpoints:
        conn.execute(_INSERT_CHECKPOINT, checkpoints)
    rows = [row for purse in purses for row in purse.drain(now)]
    if not rows:
        return []
    if not ids:
        conn.execute(_INSERT_ENTRIES_ONLY, rows)
        return []
    return [int(row_id) for row_id in conn.execute(_INSERT_ENTRIES, rows).scalars()]


def settle(session: Session, message: Message, cost: int, now: dt.datetime) -> int:
    """Charge `cost` for a message and release its reservation (cost 0: release only). The charge is
    capped at what was reserved. Sets message.cost; a message is settled once (StoreError otherwise).
    Returns the cost charged."""
    return settle_many(session, [(message, cost)], now)[0]


def settle_many(session: Session, settlements: Sequence[tuple[Message, int]], now: dt.datetime) -> list[int]:
    """settle() of many messages at once (the SMS sender's receipts): every owner locked in one
    statement (in id order), every charge and release written in one. The costs charged, in order;
    StoreError and nothing changed when one of them is already settled."""
    settled = [message.id for message, _ in settlements if message.cost is not None]
    if settled:
        raise StoreError(f"message {settled[0]} is already settled")
    if not settlements:
        return []
    lock_owner_ids(session, [message.account_id for message, _ in settlements])  # flushes pending changes
    rows: list[dict[str, object]] = []
    charged: list[int] = []
    for message, cost in settlements:
        if cost > message.reserved:
            log.warning(
                "message %s costs %d, more than the %d reserved: capped", message.id, cost, message.reserved
            )
            cost = message.reserved
        cost = max(0, cost)
        entry = {"account_id": message.account_id, "user_id": message.user_id, "message_id": message.id,
                 "note": "", "created_at": now}
        if cost:
            rows.append({**entry, "kind": EntryKind.CHARGE.value, "amount": -cost})
        if message.reserved:
            rows.append({**entry, "kind": EntryKind.RELEASE.value, "amount": message.reserved})
        charged.append(cost)
    if rows:
        core(session).execute(_INSERT_ENTRIES_ONLY, rows)
    costs = zip((message for message, _ in settlements), charged, strict=True)
    write_message_columns(session, [(message, {"cost": cost}) for message, cost in costs])
    return charged


def refund(session: Session, message: Message, amount: int, now: dt.datetime, note: str = "") -> LedgerEntry:
    """Give back up to the charged cost of a settled message."""
    if message.cost is None or amount <= 0 or amount > message.cost - refunded(session, message.id):
        raise StoreError(f"cannot refund {amount} for message {message.id}")
    lock_owner_id(session, message.account_id)
    entry = _entry(
        session, EntryKind.REFUND, message.account_id, amount, now, message.user_id, message.id, note
    )
    session.flush()
    return entry


def refunded(session: Session, message_id: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.message_id == message_id, LedgerEntry.kind == EntryKind.REFUND.value
        )
    )
    return int(total or 0)


def entries(
    session: Session, account_id: int, limit: int = 100, before_id: int | None = None
) -> Sequence[LedgerEntry]:
    """An owner's entries, newest first; page with `before_id` (the last id of the previous page)."""
    query = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
    if before_id is not None:
        query = query.where(LedgerEntry.id < before_id)
    return session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit)).all()


def reserve_for(session: Session, user: Account, messages: Sequence[Message], now: dt.datetime) -> None:
    """Reserve each message's `reserved` amount (see reserve(); all or nothing)."""
    reserve(session, user, [(message.id, message.reserved) for message in messages], now)
