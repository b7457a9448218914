"""The browser GUI under /ui: server-rendered Jinja2 pages with a little JavaScript of our own.

    app.include_router(api.fronts.web.router)       # in api.fronts.app.create_app; nothing else is needed

Sessions are signed cookies (api.fronts.web.session), every POST carries a CSRF token, and every page calls
the
same functions as the APIs (api.core.service for submissions, api.core.manage for everything else), so the GUI
adds no business rule. Assets are served from api/fronts/web/static: no CDN, the machines have no internet.
docs/gui.md describes the pages, the payment-provider interface and the tests.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.fronts.web import (
    routes_account,
    routes_auth,
    routes_history,
    routes_lists,
    routes_numbers,
    routes_reports,
    routes_send,
)
from api.fronts.web.core import PREFIX

router = APIRouter(prefix=PREFIX, include_in_schema=False)
for _module in (routes_auth, routes_send, routes_history, routes_reports, routes_account, routes_lists,
                routes_numbers):
    router.include_router(_module.router)

__all__ = ["router"]
