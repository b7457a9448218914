"""/v1/balance, /v1/ledger and /v1/accounts/{id}/top-ups (administrators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.core import manage
from api.fronts.v1.deps import AdminDep, CallerDep, GatewayDep, StoreDep
from api.fronts.v1.problems import V1Route
from api.fronts.v1.schemas import (
    BalancePublic,
    BigRowId,
    LedgerEntryPublic,
    LedgerPage,
    RowId,
    TopUpCreate,
    entry_public,
    money,
)

router = APIRouter(tags=["balance"], route_class=V1Route)


@router.get("/balance", response_model=BalancePublic)
def balance(gateway: GatewayDep, caller: CallerDep) -> BalancePublic:
    """What the caller may spend: the account's balance, open reservations already deducted; for a
    sub-user with a spending limit, what is left of its limit (and the limit and its spending)."""
    funds = gateway.funds(caller)
    return BalancePublic(balance_micros=funds.balance, balance=money(funds.balance), currency=funds.currency,
                         spending_limit_micros=funds.spending_limit, spent_micros=funds.spent)


@router.get("/ledger", response_model=LedgerPage)
def ledger(
    store: StoreDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=manage.MAX_PAGE)] = manage.DEFAULT_PAGE,
    before: Annotated[BigRowId | None, Query(description="The next_before of the previous page")] = None,
) -> LedgerPage:
    """Money movements, newest first: top-ups, reservations, charges, releases, refunds."""
    with store.read() as session:
        entries = manage.list_ledger(session, caller, limit=limit, before_id=before)
        next_before = entries[-1].id if len(entries) == limit else None
        return LedgerPage(items=[entry_public(e) for e in entries], next_before=next_before)


@router.post(
    "/accounts/{account_id}/top-ups", status_code=status.HTTP_201_CREATED, response_model=LedgerEntryPublic
)
def top_up(account_id: RowId, body: TopUpCreate, store: StoreDep, caller: AdminDep) -> LedgerEntryPublic:
    """Credit an owner's balance (administrators only). A reference already credited answers 409."""
    with store.write() as session:
        entry = manage.top_up(session, caller, account_id, body.amount_micros, body.reference, store.now())
        return entry_public(entry)
