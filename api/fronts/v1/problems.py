"""v1 errors: every refusal answers JSON `{"code": <seed code>, "status": <status text>, "detail": ...}`
with an HTTP status that fits it (docs/api-v1.md, "Errors").

The v1 router's routes are `V1Route`s, which turn any coded error (coded.errors.CodedError) and request
validation errors into that body themselves, so v1 answers JSON whatever exception handlers the app
installs for the legacy routes. The HTTP status is the error class's `http_status` (e.g. 404 for
MessageNotFound, 402 for InsufficientBalance, 422 by default), never derived from its text. An exception
that is not coded (a bug) is left to the app: HTTP 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api.core.errors import InvalidParameter, InvalidPin, InvalidTxt, ParseError
from api.core.throttle import LoginThrottled
from coded.errors import CodedError
from store.errors import InvalidPassword, InvalidUsername

log = logging.getLogger(__name__)

HTTP_UNAUTHORIZED = 401
"""Answered with `WWW-Authenticate: Bearer` (RFC 6750)."""

NOT_FOUND = "ERROR: NOT FOUND"
_FIELD_CODES: dict[str, tuple[int, str]] = {
    "text": (InvalidTxt.code, InvalidTxt.status_text),
    "to": (InvalidPin.code, InvalidPin.status_text),
    "phone": (InvalidPin.code, InvalidPin.status_text),
    "number": (InvalidPin.code, InvalidPin.status_text),
    "webhook_url": InvalidParameter("webhook_url").status,
    "username": (InvalidUsername.code, InvalidUsername.status_text),
    "password": (InvalidPassword.code, InvalidPassword.status_text),
}
"""The seed status of a body field that does not validate: its error class's."""


def error_body(code: int, status_text: str, detail: Any = None) -> dict[str, Any]:
    return {"code": code, "status": status_text, "detail": detail}


def error_response(exc: BaseException) -> JSONResponse | None:
    """The v1 answer to a coded error, with its class's HTTP status (CodedError.http_status), or None
    for anything else (a bug)."""
    if not isinstance(exc, CodedError):
        return None
    headers: dict[str, str] | None = None
    if isinstance(exc, LoginThrottled):  # 505 all the same, with when to come back (HTTP 429)
        headers = {"Retry-After": str(exc.retry_after_s)}
    elif exc.http_status == HTTP_UNAUTHORIZED:
        headers = {"WWW-Authenticate": "Bearer"}
    body = error_body(exc.code, exc.status_text, exc.detail or str(exc))
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """422 for a body or parameter that does not validate; the seed's code when the field has one
    (text 511, to/phone 513, ...), 520 for a body that is not JSON. A path that names no possible
    resource (an id out of range, not a number) is 404, as an unknown id is."""
    errors = jsonable_encoder(exc.errors())
    detail = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    if errors and all(_in_path(error) for error in errors):
        return JSONResponse(error_body(500, NOT_FOUND, detail), status_code=404)
    code, text = 500, "ERROR: INVALID REQUEST"
    for error in errors:
        if error.get("type") == "json_invalid":
            code, text = ParseError.code, ParseError.status_text
            break
        names = [part for part in error.get("loc", ()) if isinstance(part, str)]
        found = next((_FIELD_CODES[name] for name in names if name in _FIELD_CODES), None)
        if found is not None:
            code, text = found
            break
    return JSONResponse(error_body(code, text, detail), status_code=422)


def _in_path(error: dict[str, Any]) -> bool:
    loc = list(error.get("loc") or ())
    return bool(loc) and loc[0] == "path"


class V1Route(APIRoute):
    """An APIRoute whose errors answer the v1 JSON body (module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return validation_response(exc)
            except Exception as exc:
                response = error_response(exc)
                if response is None:
                    raise
                log.info("%s %s: %s", request.method, request.url.path, exc)
                return response

        return guarded
