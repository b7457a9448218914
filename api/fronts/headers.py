"""Security headers on every answer (docs/operations.md, "Security"), as ASGI middleware.

The GUI (/ui) gets a Content-Security-Policy that allows only its own files: its JavaScript and CSS are
/ui/static files (no inline script or style; the charts are inline SVG coloured by CSS classes), the
Listen button plays a blob: URL, pages fetch their own fragments. Framing is refused (frame-ancestors
'none' and X-Frame-Options DENY), the referrer stays on the site (the GUI sends a form back to its
page by the Referer header) and MIME sniffing is off. The APIs (v1, the legacy routes, /healthz,
/metrics) answer JSON or text that no browser should render or frame: a CSP of `default-src 'none'`,
no referrer, no sniffing. /docs and /redoc keep only the last two (their pages load their own assets).
Headers a route set itself are kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

GUI_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "media-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
           "base-uri 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
COMMON = ((b"x-content-type-options", b"nosniff"),)
GUI = (*COMMON, (b"content-security-policy", GUI_CSP.encode()), (b"x-frame-options", b"DENY"),
       (b"referrer-policy", b"same-origin"), (b"cross-origin-opener-policy", b"same-origin"),
       (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"))
API = (*COMMON, (b"content-security-policy", API_CSP.encode()), (b"x-frame-options", b"DENY"),
       (b"referrer-policy", b"no-referrer"))
DOCS = (*COMMON, (b"referrer-policy", b"no-referrer"))
HSTS = (b"strict-transport-security", b"max-age=31536000")
"""Sent over HTTPS only (a browser ignores it over HTTP anyway)."""


def headers_for(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The security headers of an answer on `path`."""
    if path == "/ui" or path.startswith("/ui/"):
        return GUI
    if path in ("/docs", "/redoc", "/openapi.json") or path.startswith("/docs/"):
        return DOCS
    return API


class SecurityHeaders:
    """ASGI middleware adding headers_for(path) (and HSTS over HTTPS) to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"])
        if scope.get("scheme") == "https":
            extra = (*extra, HSTS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
