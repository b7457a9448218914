"""The account: sub-users (owners only), balance and ledger, top-ups through a payment provider, rates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core import manage
from api.core.errors import InvalidParameter
from api.fronts.v1.schemas import BigRowId, RowId
from api.fronts.web import payments
from api.fronts.web.core import PREFIX, Posted, User, WebRoute
from store import rating
from store.models import Account, Role

router = APIRouter(route_class=WebRoute)
Text = Annotated[str, Form()]
LEDGER_PAGE = 50


def parse_amount(text: str, field: str = "amount") -> int:
    """A decimal amount in currency units ('25.50') as micro-units."""
    try:
        return rating.parse_price(text)
    except ValueError:
        raise InvalidParameter(field, f"{field} must be an amount such as 25.50") from None


def _limit(text: str) -> int | None:
    return parse_amount(text, "spending_limit") if text.strip() else None


# --- sub-users -----------------------------------------------------------------------------------------


@router.get("/subusers")
def subusers(ctx: User) -> Response:
    with ctx.read() as session:
        rows = [(a, manage.spent(session, a)) for a in manage.list_subusers(session, ctx.user)]
        session.expunge_all()
    return ctx.render("subusers.html", rows=rows)


@router.post("/subusers")
def add_subuser(ctx: Posted, username: Text, password: Text, spending_limit: Text = "") -> Response:
    with ctx.write() as session:
        account = manage.create_subuser(session, ctx.user, username=username, password=password,
                                        now=ctx.now(), spending_limit=_limit(spending_limit))
        name = account.username
    return ctx.redirect(f"{PREFIX}/subusers", "ok", f"Sub-user {name} added.")


@router.get("/subusers/{subuser_id}")
def subuser(ctx: User, subuser_id: RowId) -> Response:
    with ctx.read() as session:
        account = manage.get_subuser(session, ctx.user, subuser_id)
        used = manage.spent(session, account)
        session.expunge(account)
    return ctx.render("subuser.html", sub=account, spent=used)


@router.post("/subusers/{subuser_id}/active")
def set_active(ctx: Posted, subuser_id: RowId, active: Text) -> Response:
    with ctx.write() as session:
        account = manage.update_subuser(session, ctx.user, subuser_id, active=active == "true")
        text = f"{account.username} {'enabled' if account.active else 'disabled'}."
    return ctx.redirect(f"{PREFIX}/subusers/{subuser_id}", "ok", text)


@router.post("/subusers/{subuser_id}/limit")
def set_limit(ctx: Posted, subuser_id: RowId, spending_limit: Text = "") -> Response:
    limit = _limit(spending_limit)
    with ctx.write() as session:
        manage.update_subuser(session, ctx.user, subuser_id, spending_limit=limit, clear_limit=limit is None)
    return ctx.redirect(f"{PREFIX}/subusers/{subuser_id}", "ok", "Spending limit saved.")


@router.post("/subusers/{subuser_id}/password")
def reset_password(ctx: Posted, subuser_id: RowId, password: Text) -> Response:
    with ctx.write() as session:
        account = manage.reset_subuser_password(session, ctx.user, subuser_id, password, ctx.now())
        name = account.username
    text = f"New password set for {name}; its API keys are revoked."
    return ctx.redirect(f"{PREFIX}/subusers/{subuser_id}", "ok", text)


# --- balance, ledger, top-ups, rates -------------------------------------------------------------------


@router.get("/balance")
def balance(ctx: User, before: BigRowId | None = None) -> Response:
    caller = ctx.user
    with ctx.read() as session:
        funds = manage.funds(session, caller)
        entries = manage.list_ledger(session, caller, limit=LEDGER_PAGE, before_id=before)
        owners = _owners(session) if caller.role == Role.ADMINISTRATOR else []
        session.expunge_all()
    amount = funds.balance if caller.role != Role.ADMINISTRATOR else None
    older = entries[-1].id if len(entries) == LEDGER_PAGE else None
    return ctx.render("balance.html", balance=amount, currency=funds.currency, funds=funds, entries=entries,
                      older=older, providers=payments.available(caller), owners=owners)


def _owners(session: Session) -> list[str]:
    """Every owner's username, for the administrator's top-up form."""
    query = select(Account.username).where(Account.role == Role.OWNER.value).order_by(Account.username)
    return list(session.scalars(query))


@router.post("/balance/topup")
def top_up(ctx: Posted, provider: Text, account: Text, amount: Text, reference: Text) -> Response:
    """Start a top-up with the chosen provider; the manual provider credits at once."""
    chosen = payments.provider(provider)
    if not chosen.allowed(ctx.user):
        raise manage.Forbidden(f"{chosen.title} is not available to this login")
    request = payments.TopUpRequest(account.strip(), parse_amount(amount), reference.strip())
    with ctx.write() as session:
        result = chosen.top_up(session, ctx.user, request, ctx.now())
    if result.redirect:
        return ctx.redirect(result.redirect)
    return ctx.redirect(f"{PREFIX}/balance", "ok", result.message or "Top-up recorded.")


@router.get("/rates")
def rates(ctx: User) -> Response:
    with ctx.read() as session:
        rows = list(rating.list_rates(session))
        session.expunge_all()
    return ctx.render("rates.html", rates=rows, price=rating.format_price)
