"""The JSON API v1 under /v1 (docs/api-v1.md): messages, accounts and API keys, balance and ledger, rates,
groups, do-not-call, carrier lookup, virtual numbers.

    app.include_router(api.fronts.v1.router)   # api.fronts.app.create_app does this (app.state.gateway)

Every route is a `V1Route`, so errors answer `{"code", "status", "detail"}` JSON with a fitting HTTP
status (api.fronts.v1.problems) whatever handlers the app installs for the legacy routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.fronts.v1 import accounts, balance, carrier, dnc, groups, messages, numbers, rates
from api.fronts.v1.problems import V1Route, error_response
from api.fronts.v1.schemas import ErrorBody

__all__ = ["error_response", "router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or bad API key (505)"},
    403: {"model": ErrorBody, "description": "Disabled account (506) or a role that may not do this"},
    404: {"model": ErrorBody, "description": "Not found (500 ERROR: MESSAGE NOT FOUND, ...)"},
    422: {"model": ErrorBody, "description": "Invalid input (the seed's code: 511, 513, 520, ...)"},
}

router = APIRouter(prefix="/v1", route_class=V1Route, responses=_ERRORS)
for _module in (messages, accounts, balance, rates, groups, dnc, carrier, numbers):
    router.include_router(_module.router)
