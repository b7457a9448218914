"""v1 errors: every refusal answers JSON `{"code": <seed code>, "status": <status text>, "detail": ...}`
with an HTTP status that fits it (docs/api-v1.md, "Errors").

The v1 router's routes are `V1Route`s, which turn any ivrgate exception (anything carrying `code` and
`status_text`, api.errors.status_of) and request validation errors into that body themselves, so v1
answers JSON whatever exception handlers the app installs for the legacy routes. An exception without a
status (a bug) is left to the app: HTTP 500.
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

from api.errors import status_of

log = logging.getLogger(__name__)

UNAUTHORIZED = (505, 506)
"""Seed codes answered 401 (505) and 403 (506)."""

NOT_FOUND = "ERROR: NOT FOUND"
_BY_TEXT: dict[str, int] = {
    "ERROR: MESSAGE NOT FOUND": 404,
    "ERROR: GROUP NOT FOUND": 404,
    NOT_FOUND: 404,
    "ERROR: FORBIDDEN": 403,
    "ERROR: ALREADY EXISTS": 409,
    "ERROR: MESSAGE IN PROGRESS": 409,
    "ERROR: IDEMPOTENCY KEY REUSED": 409,
    "ERROR: VOICE FILE TOO LARGE": 413,
    "ERROR: TTS ENGINE UNAVAILABLE": 503,
    "ERROR: SMS NOT CONFIGURED": 503,
}
_BY_CODE: dict[int, int] = {
    404: 404,
    502: 409,
    503: 402,
    504: 503,
    505: 401,
    506: 403,
    507: 503,
    508: 503,
}
_FIELD_CODES: dict[str, tuple[int, str]] = {
    "text": (511, "INVALID TXT"),
    "to": (513, "INVALID PIN"),
    "phone": (513, "INVALID PIN"),
    "number": (513, "INVALID PIN"),
    "webhook_url": (500, "ERROR: INVALID WEBHOOK_URL"),
    "username": (510, "INVALID USERNAME"),
    "password": (512, "INVALID PASSWORD"),
}


def http_status(code: int, status_text: str) -> int:
    """The HTTP status of a v1 error: by its status text first, then its seed code; any other refusal of
    the request's content is 422."""
    return _BY_TEXT.get(status_text) or _BY_CODE.get(code) or 422


def error_body(code: int, status_text: str, detail: Any = None) -> dict[str, Any]:
    return {"code": code, "status": status_text, "detail": detail}


def error_response(exc: BaseException) -> JSONResponse | None:
    """The v1 answer to an ivrgate exception, or None when it carries no status (a bug)."""
    status = status_of(exc)
    if status is None:
        return None
    code, text = status
    detail = getattr(exc, "detail", None) or str(exc)
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, int):  # the login throttle: 505 all the same, and when to come back
        return JSONResponse(error_body(code, text, detail), status_code=429,
                            headers={"Retry-After": str(retry_after)})
    headers = {"WWW-Authenticate": "Bearer"} if code == 505 else None
    return JSONResponse(error_body(code, text, detail), status_code=http_status(code, text), headers=headers)


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
            code, text = 520, "ERROR PARSING XML"
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
