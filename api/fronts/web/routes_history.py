"""History: the message list with filters, search, pagination, live rows and CSV export; one message.

The list's rows are also served alone (`/history/rows`, the same filters), so the page's script can
replace them every few seconds while any shown message is still pending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api.core import manage
from api.core.errors import InvalidParameter
from api.core.manage import MessageFilter
from api.core.phones import parse_phone
from api.fronts.v1.schemas import row_id
from api.fronts.web import queries
from api.fronts.web.core import PREFIX, Posted, User, WebContext, WebRoute, render_fragment
from store.models import Account, Message, Role

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 25
STATUSES = {"pending": "Pending", "success": "Succeeded", "failure": "Failed"}
TYPES = {"sms": "SMS", "tts": "TTS", "voice": "Voice", "vtts": "Voice + TTS"}


@dataclass(frozen=True)
class HistoryQuery:
    """The list's query string: every field is optional and kept as typed, for the form and the links."""

    type: str = ""
    status: str = ""
    since: str = ""
    until: str = ""
    phone: str = ""
    user: str = ""
    q: str = ""
    cursor: str = ""

    def link(self, **changes: str) -> str:
        values = {**self.__dict__, **changes}
        return urlencode({k: v for k, v in values.items() if v})


def _date(value: str, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(name, f"{name} must be a date (YYYY-MM-DD)") from None


def message_filter(ctx: WebContext, query: HistoryQuery) -> MessageFilter:
    """The store filter of the form's values (dates are whole UTC days, `until` inclusive)."""
    if query.type and query.type not in TYPES:
        raise InvalidParameter("type", f"type must be one of {', '.join(TYPES)}")
    if query.status and query.status not in STATUSES:
        raise InvalidParameter("status", f"status must be one of {', '.join(STATUSES)}")
    since, until = _date(query.since, "since"), _date(query.until, "until")
    phone = parse_phone(query.phone, ctx.gateway.settings.phones) if query.phone else None
    user_id = row_id(query.user, "user")
    return MessageFilter(
        kind=query.type or None, outcome=query.status or None, phone=phone, user_id=user_id,
        since=dt.datetime.combine(since, dt.time(), dt.UTC) if since else None,
        until=dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC) if until else None)


QueryDep = Annotated[HistoryQuery, Depends()]


def _logins(ctx: WebContext) -> dict[int, str]:
    """user_id -> username of the logins whose messages this viewer may filter by."""
    if ctx.caller is None or ctx.caller.role != Role.OWNER:
        return {}
    with ctx.read() as session:
        subs = manage.list_subusers(session, ctx.caller)
        return {ctx.caller.user_id: ctx.caller.username, **{a.id: a.username for a in subs}}


def _page(ctx: WebContext, query: HistoryQuery) -> tuple[list[Message], str | None]:
    f = message_filter(ctx, query)
    with ctx.read() as session:
        page = queries.search_messages(session, ctx.user, f, query.q, limit=PAGE_SIZE,
                                       cursor=query.cursor or None)
        for message in page.items:
            session.expunge(message)
    return page.items, page.next_cursor


@router.get("/history")
def history(ctx: User, query: QueryDep) -> Response:
    messages, next_cursor = _page(ctx, query)
    return ctx.render("history.html", messages=messages, next_cursor=next_cursor, query=query,
                      logins=_logins(ctx), statuses=STATUSES, types=TYPES)


@router.get("/history/rows")
def history_rows(ctx: User, query: QueryDep) -> Response:
    """The list's rows alone, for the page's polling script."""
    messages, _ = _page(ctx, query)
    html = render_fragment("history_rows.html", messages=messages, logins=_logins(ctx), types=TYPES)
    return ctx.finish(HTMLResponse(html))


@router.get("/history.csv")
def history_csv(ctx: User, query: QueryDep) -> Response:
    """Every message the filters select (not only one page), as CSV."""
    f = message_filter(ctx, query)
    caller = ctx.user

    def chunks() -> Iterator[str]:
        with ctx.read() as session:
            yield from queries.export_csv(session, caller, f, query.q)

    stamp = ctx.now().strftime("%Y%m%d-%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="ivrgate-messages-{stamp}.csv"'}
    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/messages/{message_id}")
def message_page(ctx: User, message_id: str) -> Response:
    message, sender = _detail(ctx, message_id)
    return ctx.render("message.html", m=message, sender=sender, types=TYPES)


@router.get("/messages/{message_id}/live")
def message_live(ctx: User, message_id: str) -> Response:
    """The detail's status and timeline alone, for the page's polling script."""
    message, sender = _detail(ctx, message_id)
    return ctx.finish(HTMLResponse(render_fragment("message_live.html", m=message, sender=sender)))


def _detail(ctx: WebContext, message_id: str) -> tuple[Message, str]:
    with ctx.read() as session:
        message = manage.message_detail(session, ctx.user, message_id.strip().lower())
        sender = session.get(Account, message.user_id)
        name = sender.username if sender is not None else str(message.user_id)
        session.expunge_all()
    return message, name


@router.post("/messages/{message_id}/cancel")
def cancel(ctx: Posted, message_id: str) -> Response:
    ctx.gateway.cancel(ctx.user, message_id)
    return ctx.redirect(f"{PREFIX}/messages/{message_id}", "ok", "Message cancelled.")
