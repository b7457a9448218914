"""The HTTP application: the seed's legacy routes at the root, the JSON API under /v1, /healthz, /metrics.

    app = create_app(load_settings())          # builds the Database and the Gateway; nothing at import
    uvicorn.run(app, host="127.0.0.1", port=8080)

The app only serves: the voice worker, the SMS node, the SMTP gateway and the callback sender run beside
it as peers of a node (api.runtime.node.Node: `ivrgate serve`, `ivrgate worker`), never in its lifespan.

One exception handler turns every coded error (coded.errors.CodedError, the root of every layer's tree)
into the legacy body (text, or JSON on a `.json` route) with HTTP 200, or into v1 JSON under /v1. Anything
else is a bug: HTTP 500 with the generic legacy body, the traceback only in the log.

Request bodies are bounded before they are read (BodyLimit): a 50 MB upload is refused from its
Content-Length, or after the limit when it is chunked, never buffered whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from api.core.errors import GatewayError, VoiceFileTooLarge, http_status_of, status_of
from api.core.service import Gateway
from api.core.settings import Settings, sms_configured
from api.core.throttle import LoginThrottled
from api.fronts import legacy, legacy_format, ops, v1, web
from api.fronts.headers import SecurityHeaders
from api.fronts.v1 import problems as v1_problems
from coded.errors import CodedError
from store.db import Database, resolve_url

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for the other fields and the multipart framing around an upload."""
DEFAULT_BODY_BYTES = 1024 * 1024
"""Bodies of routes without uploads (1000 recipients and a 2000-character text fit many times)."""
CSV_IMPORT_BYTES = 5 * 1024 * 1024
"""v1 CSV imports (group members, do-not-call entries)."""
BASE64_ESCAPE_MARGIN = 1.02
"""JSON encoders that escape '/' (PHP's json_encode) lengthen base64 by 1/64: room for that."""
V1_PREFIX = "/v1"


class RequestTooLarge(GatewayError):
    """A request body over the limit of a route without uploads."""

    status_text = "ERROR: REQUEST TOO LARGE"


def body_limit_for(path: str, max_voice_bytes: int) -> tuple[int, type[GatewayError]]:
    """The body limit of `path` and the error that refuses more: uploads (legacy matrix_voice, v1
    multipart voice, v1 JSON with base64 audio, the GUI's voice and Listen forms) get room for the
    largest voice file, CSV imports (v1 and GUI) 5 MiB, everything else 1 MiB."""
    name = path.strip("/").removesuffix(legacy.JSON_SUFFIX)
    if name in legacy.UPLOAD_ROUTES or name in ("v1/messages/voice", "ui/send/voice", "ui/send/listen"):
        return max_voice_bytes + FORM_OVERHEAD_BYTES, VoiceFileTooLarge
    if name == "v1/messages":
        base64_bytes = -(-max_voice_bytes // 3) * 4
        return int(base64_bytes * BASE64_ESCAPE_MARGIN) + FORM_OVERHEAD_BYTES, VoiceFileTooLarge
    parts = name.split("/")
    if name in ("v1/dnc/import", "ui/dnc/import", "ui/groups") or (
            len(parts) == 5 and parts[:2] == ["v1", "groups"] and parts[3:] == ["members", "import"]) or (
            len(parts) == 4 and parts[:2] == ["ui", "groups"] and parts[3] == "import"):
        return CSV_IMPORT_BYTES, RequestTooLarge
    return DEFAULT_BODY_BYTES, RequestTooLarge


class BodyLimit:
    """ASGI middleware refusing request bodies over a path's limit without reading them.

    A declared Content-Length over the limit is answered at once; a chunked body is counted as the app
    reads it and the read fails with the route's error when it passes the limit."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], tuple[int, type[GatewayError]]]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, error = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            exc = error(f"Content-Length {declared} is over the limit of {limit} bytes")
            response = error_response(exc, scope["path"], _timestamp(scope))
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise error(f"the body passed the limit of {limit} bytes")
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _timestamp(scope: Scope) -> int:
    app = scope.get("app")
    gateway = getattr(getattr(app, "state", None), "gateway", None)
    if isinstance(gateway, Gateway):
        return int(gateway.now().timestamp())
    return int(time.time())


def error_response(exc: BaseException, path: str, timestamp: int) -> Response:
    """The answer to `exc` on `path`: legacy text or JSON (HTTP 200 when it carries a status), or, under
    /v1, the JSON API's error body (api.fronts.v1.problems)."""
    if path.startswith(V1_PREFIX + "/") or path == V1_PREFIX:
        return v1_error_response(exc)
    status = status_of(exc) or (500, "ERROR")
    as_json = legacy.wants_json(path)
    text = legacy_format.render_error(status[0], status[1], timestamp, as_json=as_json)
    media = legacy_format.JSON_MEDIA_TYPE if as_json else legacy_format.TEXT_MEDIA_TYPE
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, LoginThrottled) else None
    return Response(text, status_code=http_status_of(exc), media_type=media, headers=headers)


def v1_error_response(exc: BaseException) -> Response:
    """v1's `{"code", "status", "detail"}` with its HTTP status; a bug is HTTP 500 without detail."""
    answer = v1_problems.error_response(exc)
    return answer or JSONResponse({"code": 500, "status": "ERROR", "detail": None}, status_code=500)


def _logged_error(method: str, path: str, exc: Exception, scope: Scope) -> Response:
    """error_response() for `exc`, logged: a coded refusal at INFO, anything else (a bug) with its
    traceback at ERROR."""
    if isinstance(exc, CodedError):
        log.info("%s %s refused: %s %s", method, path, exc.status, exc)
    else:
        log.error("%s %s failed", method, path, exc_info=exc)
    return error_response(exc, path, _timestamp(scope))


async def _error(request: Request, exc: Exception) -> Response:
    """The app's exception handler, for the layers' coded errors and for bugs alike."""
    return _logged_error(request.method, request.url.path, exc, request.scope)


class App(FastAPI):
    """The FastAPI app with a short path for the seed's legacy routes: GET and POST to `/<route>` and
    `/<route>.json` go straight to api.fronts.legacy (through BodyLimit) instead of through Starlette's
    middleware, routing and per-request wrappers, which cost as much CPU as the submission itself
    (docs/api-legacy.md, "Throughput"). Answers, errors and limits are the same as through the routes
    (which stay mounted: other methods get their 405 there)."""

    legacy_front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.legacy_front
        if (
            front is not None
            and scope["type"] == "http"
            and scope["method"] in ("GET", "POST")
            and scope["path"] in legacy.PATHS
        ):
            scope["app"] = self
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _legacy_front(gateway: Gateway) -> ASGIApp:
    """The legacy routes as a bare ASGI app (App's short path): legacy.answer(), errors rendered as the
    app's exception handlers render them."""

    async def front(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await legacy.answer(request, gateway)
        except HTTPException as exc:  # e.g. too many form fields: Starlette's own answer
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        except Exception as exc:
            response = _logged_error(scope["method"], scope["path"], exc, scope)
        await response(scope, receive, send)

    return front


def open_database(settings: Settings) -> Database:
    """The store named by the settings (IVRGATE_DATABASE_URL, else SQLite in the data directory)."""
    url = resolve_url(settings.store.database_url, settings.data_dir)
    return Database.open(url, settings.store.sqlite_busy_timeout_s)


class Wake:
    """A gateway's wake function: calls its targets (a node's voice worker and SMS sender, api.runtime.node)
    when
    work is queued; `event` is set too (an app built without a node has no targets)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.targets: list[Callable[[], None]] = []

    def __call__(self) -> None:
        self.event.set()
        for target in list(self.targets):
            target()


def create_app(settings: Settings, gateway: Gateway | None = None) -> App:
    """The ASGI app: legacy routes, /healthz and /metrics, the v1 router, the GUI, the error handler and
    the body limit. The app only serves: the services behind it (voice worker, SMS, SMTP, callback
    sender) are its peers in a node (api.runtime.node.Node), which builds the app on the node's gateway.

    Without `gateway` one is built on the settings' database (disposed at shutdown, the app's whole
    lifespan); the schema is not migrated here (`ivrgate db upgrade`)."""
    wake = Wake()
    owned = gateway is None
    gw = gateway if gateway is not None else Gateway(settings, open_database(settings), wake=wake)
    context = ops.OpsContext(gw.db, now=gw.now, submissions=gw.group_commit,
                             sms_configured=sms_configured(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                gw.close()  # the group commit's last batch before the database goes
                gw.db.dispose()

    app = App(title="ivrgate", version="0.1.0", lifespan=lifespan)
    app.state.settings, app.state.gateway, app.state.wake = settings, gw, wake.event
    app.add_exception_handler(CodedError, _error)
    app.add_exception_handler(Exception, _error)
    app.include_router(legacy.router)
    ops.attach(app, context)  # mounts ops.router (/healthz, /metrics) once
    app.include_router(v1.router)  # the JSON API under /v1 (api/v1)
    app.include_router(web.router)  # the GUI under /ui (api/web)
    max_voice = settings.forms.max_voice_bytes
    app.add_middleware(BodyLimit, limit_for=lambda path: body_limit_for(path, max_voice))
    app.add_middleware(SecurityHeaders)  # outermost: BodyLimit's own refusals get the headers too
    limited = BodyLimit(_legacy_front(gw), lambda path: body_limit_for(path, max_voice))
    app.legacy_front = SecurityHeaders(limited)
    return app


def app_from_env() -> FastAPI:
    """An app on the environment's settings (IVRGATE_...): `uvicorn --factory api.fronts.app:app_from_env`."""
    from api.core.settings import load_settings

    return create_app(load_settings())
