"""Balances: what a viewer may spend (funds), the ledger, top-ups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.errors import InvalidParameter
from api.core.manage.base import (
    NotFound,
    Viewer,
    account_of,
    require_admin,
    valid_name,
)
from api.core.manage.messages import DEFAULT_PAGE, page_size
from store import ledger
from store.errors import DuplicateEntry
from store.models import (
    MAX_MICROS,
    Account,
    EntryKind,
    LedgerEntry,
    Role,
)


def spent(session: Session, account: Account) -> int:
    """Micro-units a login has committed (charges and open reservations, less refunds)."""
    return ledger.spent(session, account.id)


@dataclass(frozen=True)
class Funds:
    """What a login may spend, as it may see it (GET /v1/balance, the legacy `balance`, the GUI)."""

    balance: int
    """Micro-units this login may still commit: the owner's balance (open reservations deducted) for
    owners, administrators and sub-users without a limit; what is left of its limit for a sub-user
    with one (never below 0; the owner's balance is not shown to it)."""
    currency: str
    spending_limit: int | None = None
    """A sub-user's limit (None: none, or not a sub-user)."""
    spent: int | None = None
    """A sub-user's spending so far (None for owners and administrators)."""


def funds(session: Session, viewer: Viewer) -> Funds:
    """The viewer's Funds. A sub-user with a limit may still be refused (503) when the owner's balance
    runs out first."""
    owner = session.get(Account, viewer.owner_id)
    if owner is None:
        raise NotFound(f"account {viewer.owner_id}")
    if viewer.role != Role.SUBUSER:
        return Funds(ledger.balance(session, owner.id), owner.currency)
    user = account_of(session, viewer)
    used = ledger.spent(session, user.id)
    if user.spending_limit is None:
        return Funds(ledger.balance(session, owner.id), owner.currency, None, used)
    return Funds(max(0, user.spending_limit - used), owner.currency, user.spending_limit, used)


# --- API keys ------------------------------------------------------------------------------------------



def list_ledger(
    session: Session, viewer: Viewer, *, limit: int = DEFAULT_PAGE, before_id: int | None = None
) -> list[LedgerEntry]:
    """Ledger entries, newest first (page with `before_id`): the whole account's for its owner, a
    sub-user's own for a sub-user."""
    query = select(LedgerEntry).where(LedgerEntry.account_id == viewer.owner_id)
    if viewer.role == Role.SUBUSER:
        query = query.where(LedgerEntry.user_id == viewer.user_id)
    if before_id is not None:
        query = query.where(LedgerEntry.id < before_id)
    return list(session.scalars(query.order_by(LedgerEntry.id.desc()).limit(page_size(limit))))


def top_up(
    session: Session, viewer: Viewer, account_id: int, amount: int, reference: str, now: dt.datetime
) -> LedgerEntry:
    """An administrator credits an owner's balance. `reference` (a payment or invoice number) is kept
    as the entry's note and must be new for that account, so a retried request cannot pay twice."""
    require_admin(viewer)
    target = session.get(Account, account_id)
    if target is None or target.role != Role.OWNER:
        raise NotFound(f"no owner account {account_id}")
    if not 0 < amount <= MAX_MICROS:
        raise InvalidParameter("amount", f"a top-up is 1 to {MAX_MICROS} micro-units")
    ref = valid_name(reference, "reference")
    seen = session.scalar(
        select(LedgerEntry.id).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.kind == EntryKind.TOPUP.value,
            LedgerEntry.note == ref,
        )
    )
    if seen is not None:
        raise DuplicateEntry(f"reference {ref!r} was already credited")
    return ledger.top_up(session, account_id, amount, now, note=ref)
