"""What every GUI route shares: the request's context (session, login, store), rendering, CSRF, errors.

A route declares `ctx: Page` (anyone, e.g. the login form), `ctx: User` (a login is required: otherwise
a redirect to /ui/login) or `ctx: Posted` (a login AND a valid CSRF token, for every state-changing POST).
`WebRoute` turns the layers' coded errors into something a person can act on: after a POST, a redirect
back to the form with the status text as a flash message; on a GET, an error page with a real HTTP status
(503 when the database failed or cannot be reached: store.db maps those to 504/507/508 DATABASE ERROR).
Every read and write goes through `ctx.read()` / `ctx.write()`: the gateway's `Database`, whose
transactions take SQLite's writer lock and map database failures for every front alike (docs/store.md).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from api.core.jobs import Caller
from api.core.service import Gateway
from api.fronts.web import session as sess
from coded.errors import CodedError
from coded.statuses import QUEUED, is_success
from store.errors import DatabaseUnavailable, DatabaseWriteError, StoreError
from store.models import MICROS, Account, Role

log = logging.getLogger(__name__)

PREFIX = "/ui"
TEMPLATES = Path(__file__).parent / "templates"
SEE_OTHER = 303
HTTP_BAD_REQUEST = 400
_PAGE_STATUSES = frozenset({403, 404})
"""The coded errors' v1 HTTP statuses an error page keeps; any other refusal is a 400 page."""
SERVICE_UNAVAILABLE = 503
R = TypeVar("R", bound=Response)


class LoginRequired(Exception):
    """No valid session: the route answers a redirect to the login form."""


class CsrfRefused(Exception):
    """A POST without the session's CSRF token."""


def money(micros: int | None, currency: str = "", places: int = 2) -> str:
    """Micro-units as a decimal amount ('10.00 USD'); an empty string for None."""
    if micros is None:
        return ""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS)
    digits = f"{frac:06d}"[:places].ljust(places, "0")
    text = f"{sign}{whole}.{digits}" if places else f"{sign}{whole}"
    return f"{text} {currency}".strip()


def when(value: dt.datetime | None) -> str:
    """A UTC timestamp as the GUI shows it: '2026-11-24 12:00:03 UTC'."""
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=money, when=when)
    env.tests.update(success=is_success, queued=lambda code: code == QUEUED[0])  # coded.statuses
    return env


ENV = _environment()


def render_fragment(name: str, **values: Any) -> str:
    """A template rendered to text (pages and the HTML fragments the list polls)."""
    return ENV.get_template(name).render(**values)


@dataclass
class WebContext:
    """One request as the GUI sees it: the gateway, the session, the logged-in caller (or None)."""

    request: Request
    gateway: Gateway
    session: sess.SessionData
    secret: bytes
    caller: Caller | None = None
    account: Account | None = None
    """The caller's row, detached (username, role, spending limit)."""

    @property
    def user(self) -> Caller:
        """The logged-in caller (routes declared with `User` always have one)."""
        if self.caller is None:
            raise LoginRequired()
        return self.caller

    def now(self) -> dt.datetime:
        return self.gateway.now()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (store.db: failures as 504/508)."""
        with self.gateway.db.read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction (store.db: SQLite's writer lock, failures as 507/508); it may wait for the
        lock, so it runs in the thread pool, never on the event loop."""
        with self.gateway.db.transaction() as session:
            yield session

    def flash(self, level: str, text: str) -> None:
        self.session = sess.with_flash(self.session, level, text)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """A full page: the template with the login, the CSRF token, the flash message and `values`."""
        shown = self.session.flash
        if shown is not None:
            self.session = sess.with_flash(self.session, "", None)
        html = render_fragment(template, ctx=self, user=self.caller, account=self.account,
                               csrf=self.session.csrf, flash=shown, path=self.request.url.path, **values)
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, url: str, level: str = "", text: str = "") -> RedirectResponse:
        """303 to `url` (a path of ours) with an optional flash message."""
        if text:
            self.flash(level or "ok", text)
        return self.finish(RedirectResponse(url, status_code=SEE_OTHER))

    def finish(self, response: R) -> R:
        """Send the session cookie again when it changed during the request."""
        if self.session.dirty:
            response.set_cookie(
                sess.COOKIE_NAME, sess.encode(self.session, self.secret), max_age=sess.MAX_AGE_S,
                path=PREFIX, httponly=True, samesite="lax", secure=self.request.url.scheme == "https")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def is_admin(self) -> bool:
        return self.caller is not None and self.caller.role == Role.ADMINISTRATOR


def session_secret(request: Request, gateway: Gateway) -> bytes:
    """The cookie-signing secret: app.state.web_secret when set, else the data directory's key file."""
    found = getattr(request.app.state, "web_secret", None)
    if isinstance(found, bytes):
        return found
    secret = sess.load_secret(Path(gateway.settings.data_dir))
    request.app.state.web_secret = secret
    return secret


def _gateway(request: Request) -> Gateway:
    gateway = getattr(request.app.state, "gateway", None)
    if not isinstance(gateway, Gateway):
        raise RuntimeError("app.state.gateway is not set: build the app with api.fronts.app.create_app")
    return gateway


def page_context(request: Request) -> WebContext:
    """The context of any GUI request; the session is checked against the login's current row."""
    gateway = _gateway(request)
    secret = session_secret(request, gateway)
    now = int(gateway.now().timestamp())
    cookie = request.cookies.get(sess.COOKIE_NAME, "")
    data = (sess.decode(cookie, secret, now) if cookie else None) or sess.new_session()
    ctx = WebContext(request, gateway, data, secret)
    request.state.web = ctx
    if data.user_id is not None:
        _attach_login(ctx, data.user_id)
    return ctx


def _attach_login(ctx: WebContext, user_id: int) -> None:
    with ctx.read() as session:
        account = session.get(Account, user_id)
        if account is None or not _usable(account, ctx):
            ctx.session = sess.new_session()
            return
        ctx.caller = Caller(account.id, account.owner_id, account.username, account.role)
        session.expunge(account)
        ctx.account = account


def _usable(account: Account, ctx: WebContext) -> bool:
    parent = account.parent
    if not account.active or (parent is not None and not parent.active):
        return False
    if account.role == Role.SUBUSER and parent is None:
        return False
    return sess.password_tag(ctx.secret, account.password_hash) == ctx.session.password_tag


def user_context(ctx: Annotated[WebContext, Depends(page_context)]) -> WebContext:
    """The context of a page that needs a login."""
    if ctx.caller is None:
        raise LoginRequired()
    return ctx


async def posted_context(ctx: Annotated[WebContext, Depends(user_context)]) -> WebContext:
    """The context of a state-changing POST: logged in and carrying the session's CSRF token."""
    await check_csrf(ctx)
    return ctx


async def check_csrf(ctx: WebContext) -> None:
    """Refuse a POST whose form (or X-CSRF-Token header) does not carry the session's token."""
    submitted = ctx.request.headers.get("x-csrf-token", "")
    if not submitted:
        form = await ctx.request.form()
        value = form.get("csrf")
        submitted = value if isinstance(value, str) else ""
    if not sess.csrf_matches(ctx.session, submitted):
        raise CsrfRefused()


Page = Annotated[WebContext, Depends(page_context)]
User = Annotated[WebContext, Depends(user_context)]
Posted = Annotated[WebContext, Depends(posted_context)]


def local_path(target: str | None, default: str = PREFIX + "/") -> str:
    """`target` when it is a path of the GUI (never another site: open redirects are refused)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX) or "\\" in target:
        return default
    return target


class WebRoute(APIRoute):
    """An APIRoute answering the GUI's way: a login redirect, a 403 page for a bad CSRF token, coded
    errors as a flash message after a POST or an error page after a GET."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = quote(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=SEE_OTHER)
            except CsrfRefused:
                return _error_page(request, 403, "ERROR: FORM EXPIRED", "Reload the page and try again.")
            except RequestValidationError as exc:
                return _invalid(request, exc)
            except CodedError as exc:
                return _coded(request, exc)

        return guarded


def _invalid(request: Request, exc: RequestValidationError) -> Response:
    """A path that names nothing (an id out of range) is a 404 page; any other field a 400 page."""
    errors = exc.errors()
    if errors and all(tuple(error.get("loc", ()))[:1] == ("path",) for error in errors):
        return _error_page(request, 404, "ERROR: NOT FOUND", "No such page.")
    names = ", ".join(str(error.get("loc", ("", "?"))[-1]) for error in errors)
    return _error_page(request, 400, "ERROR: INVALID REQUEST", f"Check {names}.")


def _coded(request: Request, exc: CodedError) -> Response:
    """A coded refusal: back to the form with the status text on a POST, else an error page whose HTTP
    status is the error class's when that is 403 or 404 (coded.errors), else 400."""
    status, detail = exc.status, exc.detail
    text = status[1] if not detail or detail == status[1] else f"{status[1]}: {detail}"
    log.info("%s %s refused: %s", request.method, request.url.path, text)
    ctx = getattr(request.state, "web", None)
    if request.method == "POST" and isinstance(ctx, WebContext) and ctx.caller is not None:
        back = local_path(request.headers.get("referer", "").partition(str(request.base_url).rstrip("/"))[2])
        return ctx.redirect(back, "error", text)
    if store_failed(exc):
        return _error_page(request, SERVICE_UNAVAILABLE, status[1], "The database is unavailable: try again.")
    code = exc.http_status if exc.http_status in _PAGE_STATUSES else HTTP_BAD_REQUEST
    return _error_page(request, code, status[1], detail)


def store_failed(exc: BaseException) -> bool:
    """Whether `exc` is a database failure (store.db.store_failure: 504, 507 or 508 DATABASE ERROR), not
    one of the store's refusals (its subclasses with their own status)."""
    return type(exc) is StoreError or isinstance(exc, DatabaseWriteError | DatabaseUnavailable)


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    ctx = getattr(request.state, "web", None)
    if isinstance(ctx, WebContext):
        ctx.session = replace(ctx.session, flash=None) if ctx.session.flash else ctx.session
        return ctx.render("error.html", status=status, title=title, detail=detail)
    html = render_fragment("error.html", ctx=None, user=None, account=None, csrf="", flash=None,
                           path=request.url.path, title=title, detail=detail)
    return HTMLResponse(html, status_code=status)
