"""Logging in and out, changing the password, the start page and the static assets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from api.core.throttle import LoginThrottled
from api.fronts.web import session as sess
from api.fronts.web.core import PREFIX, Page, Posted, User, WebContext, WebRoute, check_csrf, local_path
from coded.errors import CodedError
from store import accounts
from store.errors import InvalidPassword, WrongCredentials
from store.models import Account

log = logging.getLogger(__name__)
router = APIRouter(route_class=WebRoute)

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
MIN_PASSWORD = 8


def client_of(ctx: WebContext) -> str | None:
    """The browser's address (the login throttle counts failures per address)."""
    client = ctx.request.client
    return client.host if client is not None else None


@router.get("/")
def home(ctx: User) -> Response:
    """Administrators start at the history, everyone else at the send form."""
    return ctx.redirect(f"{PREFIX}/history" if ctx.is_admin() else f"{PREFIX}/send")


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The GUI's own CSS and JavaScript (no CDN: the machines have no internet)."""
    path = STATIC / name
    if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login")
def login_form(ctx: Page, next: str = "") -> Response:
    if ctx.caller is not None:
        return ctx.redirect(local_path(next))
    return ctx.render("login.html", next=local_path(next), username="")


@router.post("/login")
async def login(
    ctx: Page,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the credentials (the form's CSRF token too: a login cannot be forced from another site).
    argon2 runs in the thread pool, never on the event loop; the login throttle may refuse first (429)."""
    await check_csrf(ctx)
    try:
        caller = await run_in_threadpool(ctx.gateway.login, username, password, source=client_of(ctx))
    except LoginThrottled as exc:
        log.info("GUI login throttled for %r: %s", username[:60], exc)
        ctx.flash("error", f"Too many failed logins: try again in {exc.retry_after_s} seconds.")
        page = ctx.render("login.html", status=429, next=local_path(next), username=username[:254])
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    except CodedError as exc:
        log.info("GUI login refused for %r: %s", username[:60], exc)
        wrong = isinstance(exc, WrongCredentials)
        ctx.flash("error", "Wrong username or password." if wrong else exc.status_text)
        return ctx.render("login.html", status=401 if wrong else 403, next=local_path(next),
                          username=username[:254])
    with ctx.read() as session:
        account = session.get(Account, caller.user_id)
        assert account is not None
        tag = sess.password_tag(ctx.secret, account.password_hash)
    ctx.session = sess.logged_in(ctx.session, caller.user_id, tag, int(ctx.now().timestamp()))
    log.info("GUI login of %s", caller.username)
    return ctx.redirect(local_path(next))


@router.post("/logout")
def logout(ctx: Posted) -> Response:
    ctx.session = sess.new_session()
    return ctx.redirect(f"{PREFIX}/login", "ok", "Logged out.")


@router.get("/password")
def password_form(ctx: User) -> Response:
    return ctx.render("password.html")


@router.post("/password")
def change_password(
    ctx: Posted, current: Annotated[str, Form()], new: Annotated[str, Form()], confirm: Annotated[str, Form()]
) -> Response:
    """A new password after the current one is checked; other sessions of this login end."""
    if new != confirm:
        return ctx.redirect(f"{PREFIX}/password", "error", "The new passwords differ.")
    if len(new) < MIN_PASSWORD:
        raise InvalidPassword(f"a new password needs at least {MIN_PASSWORD} characters")
    ctx.gateway.login(ctx.user.username, current, source=client_of(ctx))  # 505 when it is wrong
    with ctx.write() as session:
        account = session.get(Account, ctx.user.user_id)
        assert account is not None
        accounts.set_password(session, account, new)
        tag = sess.password_tag(ctx.secret, account.password_hash)
    ctx.session = sess.logged_in(ctx.session, ctx.user.user_id, tag, int(ctx.now().timestamp()))
    return ctx.redirect(f"{PREFIX}/", "ok", "Password changed.")
