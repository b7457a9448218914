"""The ledger: an append-only list of money movements; a balance is the sum of an owner's entries.

Entries (amounts in micro-units, signed):

- topup   +A  money paid in
- reserve -R  held at submission (one message, or the maximum call length)
- charge  -C  what the outcome costs (C <= R)
- release +R  the whole reservation handed back when the outcome is charged, so net = -C
- refund  +A  money given back after a charge

`settle()` writes the charge and the release in the caller's transaction, together with the outcome.
`reserve()` locks the owner's row first (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the transaction
already holds the writer lock from BEGIN IMMEDIATE), so two concurrent reservations cannot both pass the
balance check. A sub-user's spending is the negated sum of its reserve/charge/release/refund entries;
its spending limit is checked under the same lock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.errors import AccountNotFound, InsufficientBalance, StoreError
from store.models import Account, EntryKind, LedgerEntry, Message

log = logging.getLogger(__name__)

_SPENDING = (EntryKind.RESERVE, EntryKind.CHARGE, EntryKind.RELEASE, EntryKind.REFUND)


def balance(session: Session, account_id: int) -> int:
    """The owner's balance in micro-units: the sum of its entries (open reservations already deducted)."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == account_id)
    )
    return int(total or 0)


def spent(session: Session, user_id: int) -> int:
    """Micro-units a login has committed: charges plus open reservations, less refunds."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.user_id == user_id, LedgerEntry.kind.in_([k.value for k in _SPENDING])
        )
    )
    return -int(total or 0)


def lock_owner(session: Session, account_id: int) -> Account:
    """Lock the owner's row for the rest of the transaction: reservations of one account queue here."""
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
    total = sum(amount for _, amount in amounts)
    if any(amount < 0 for _, amount in amounts):
        raise ValueError("a reservation cannot be negative")
    owner = lock_owner(session, user.owner_id)
    available = balance(session, owner.id)
    if total > available:
        raise InsufficientBalance(f"need {total}, balance {available}")
    if user.spending_limit is not None and spent(session, user.id) + total > user.spending_limit:
        raise InsufficientBalance("spending limit reached")
    entries = [
        _entry(session, EntryKind.RESERVE, owner.id, -amount, now, user.id, message_id)
        for message_id, amount in amounts
        if amount > 0
    ]
    session.flush()
    return entries


def settle(session: Session, message: Message, cost: int, now: dt.datetime) -> int:
    """Charge `cost` for a message and release its reservation (cost 0: release only). The charge is
    capped at what was reserved. Sets message.cost; a message is settled once (StoreError otherwise).
    Returns the cost charged."""
    if message.cost is not None:
        raise StoreError(f"message {message.id} is already settled")
    if cost > message.reserved:
        log.warning(
            "message %s costs %d, more than the %d reserved: capped", message.id, cost, message.reserved
        )
        cost = message.reserved
    cost = max(0, cost)
    if cost:
        _entry(session, EntryKind.CHARGE, message.account_id, -cost, now, message.user_id, message.id)
    if message.reserved:
        _entry(
            session, EntryKind.RELEASE, message.account_id, message.reserved, now, message.user_id, message.id
        )
    message.cost = cost
    session.flush()
    return cost


def refund(session: Session, message: Message, amount: int, now: dt.datetime, note: str = "") -> LedgerEntry:
    """Give back up to the charged cost of a settled message."""
    if message.cost is None or amount <= 0 or amount > message.cost - refunded(session, message.id):
        raise StoreError(f"cannot refund {amount} for message {message.id}")
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
