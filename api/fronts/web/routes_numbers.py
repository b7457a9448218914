"""Virtual numbers (owners only): the numbers incoming SMS arrive on and the webhook each one POSTs to.

The rules are api.core.numbers', shared with /v1/numbers and `ivrgate number`. A refused form is shown again
with what the person typed and the reason in plain words (not a redirect that would lose the input).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from api.core import numbers
from api.core.errors import InvalidParameter, InvalidPin
from api.fronts.web.core import PREFIX, Posted, User, WebContext, WebRoute
from store.errors import DuplicateEntry

router = APIRouter(route_class=WebRoute)
Text = Annotated[str, Form()]
PAGE = f"{PREFIX}/numbers"
EXAMPLE_URL = "https://crm.example.com/sms/incoming"
REFUSALS = (DuplicateEntry, InvalidPin, InvalidParameter)
"""What the person typed wrong: the form is shown again. Anything else (not the owner, a number that is
not the account's) is WebRoute's error page or flash message."""


def plain_words(exc: DuplicateEntry | InvalidPin | InvalidParameter, number: str) -> tuple[int, str]:
    """The HTTP status of a refused form and what to tell the person."""
    shown = number.strip()[:40]
    if isinstance(exc, DuplicateEntry):
        return 409, f"{shown} is already assigned to an account. A number can belong to one account only."
    if isinstance(exc, InvalidPin):
        return 400, (f"“{shown}” is not a phone number. Write it with its country code, "
                     "for example +1 250 555 0100.")
    if isinstance(exc, InvalidParameter) and exc.field == "webhook_url":
        return 400, (f"The webhook must be a whole web address starting with https:// or http://, "
                     f"for example {EXAMPLE_URL}. ({exc.detail})")
    return 400, exc.detail


def _page(ctx: WebContext, status: int = 200, *, error: str = "", typed: dict[str, str] | None = None,
          editing: str = "") -> Response:
    """The page; after a refusal, with the error and the typed values (`editing`: the row they belong to)."""
    with ctx.read() as session:
        rows = list(numbers.list_numbers(session, ctx.user))
        session.expunge_all()
    if error:
        ctx.flash("error", error)
    return ctx.render("numbers.html", status=status, rows=rows, typed=typed or {}, editing=editing,
                      example_url=EXAMPLE_URL)


@router.get("/numbers")
def numbers_page(ctx: User) -> Response:
    return _page(ctx)


@router.post("/numbers")
def number_add(ctx: Posted, number: Text = "", webhook_url: Text = "") -> Response:
    settings = ctx.gateway.settings
    try:
        with ctx.write() as session:
            row = numbers.add_number(session, ctx.user, number, webhook_url, ctx.now(),
                                     phones=settings.phones, max_url_chars=settings.forms.max_url_chars)
            added = row.number
    except REFUSALS as exc:
        status, text = plain_words(exc, number)
        return _page(ctx, status, error=text, typed={"number": number, "webhook_url": webhook_url})
    return ctx.redirect(PAGE, "ok", f"{added} added: incoming SMS go to its webhook.")


@router.post("/numbers/change")
def number_change(ctx: Posted, number: Text, webhook_url: Text = "") -> Response:
    settings = ctx.gateway.settings
    try:
        with ctx.write() as session:
            row = numbers.change_number(session, ctx.user, number, webhook_url, phones=settings.phones,
                                        max_url_chars=settings.forms.max_url_chars)
            changed = row.number
    except REFUSALS as exc:
        status, text = plain_words(exc, number)
        return _page(ctx, status, error=text, typed={"webhook_url": webhook_url}, editing=number)
    return ctx.redirect(PAGE, "ok", f"Webhook of {changed} saved.")


@router.post("/numbers/remove")
def number_remove(ctx: Posted, number: Text) -> Response:
    with ctx.write() as session:
        removed = numbers.remove_number(session, ctx.user, number, ctx.gateway.settings.phones)
    return ctx.redirect(PAGE, "ok", f"{removed} removed: SMS to it are no longer received.")
