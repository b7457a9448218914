"""Typed dependencies of the v1 routes: the gateway, the store, the authenticated caller, roles.

The app keeps its Gateway in `app.state.gateway` (api.fronts.app.create_app). A caller authenticates with
`Authorization: Bearer <api key>`; HTTP Basic with the account's username and password is accepted too,
so the first API key can be created without one (docs/api-v1.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.core import manage
from api.core.jobs import Caller
from api.core.service import Gateway
from api.core.signing import CallbackSecrets, CallbackSettings
from store.db import Database
from store.errors import WrongCredentials

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ivg_...`")
_basic = HTTPBasic(auto_error=False, description="The account's username and password (to create keys)")


def get_gateway(request: Request) -> Gateway:
    gateway = getattr(request.app.state, "gateway", None)
    if not isinstance(gateway, Gateway):
        raise RuntimeError("app.state.gateway is not set: build the app with api.fronts.app.create_app")
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def client_address(request: Request) -> str | None:
    """The client's address as the server saw it (the login throttle counts failures per address)."""
    return request.client.host if request.client is not None else None


@dataclass(frozen=True)
class Store:
    """The gateway's database and clock, for management operations (api.core.manage) in one transaction.
    The v1 routes run in the thread pool, so a write may wait here for SQLite's writer lock."""

    db: Database
    gateway: Gateway

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction (store.db: SQLite's writer lock; failures as 507/508 DATABASE ERROR)."""
        with self.db.transaction() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (store.db: failures as 504/508 DATABASE ERROR, v1's 503)."""
        with self.db.read() as session:
            yield session

    def now(self) -> dt.datetime:
        return self.gateway.now()


def get_store(gateway: GatewayDep) -> Store:
    return Store(gateway.db, gateway)


StoreDep = Annotated[Store, Depends(get_store)]


def current_caller(
    request: Request,
    gateway: GatewayDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> Caller:
    """The authenticated caller; 401 (505) without valid credentials, 403 (506) for a disabled account,
    429 (505) with Retry-After while the login throttle holds a Basic login's username or address."""
    if bearer is not None and bearer.credentials:
        return gateway.login_api_key(bearer.credentials.strip())
    if basic is not None and basic.username:
        return gateway.login(basic.username, basic.password, source=client_address(request))
    raise WrongCredentials("send Authorization: Bearer <api key>")


CallerDep = Annotated[Caller, Depends(current_caller)]


def admin_caller(caller: CallerDep) -> Caller:
    """The caller, who must be an administrator (403 otherwise)."""
    manage.require_admin(caller)
    return caller


AdminDep = Annotated[Caller, Depends(admin_caller)]


def owner_caller(caller: CallerDep) -> Caller:
    """The caller, who must be an account owner (403 otherwise)."""
    manage.require_owner(caller)
    return caller


OwnerDep = Annotated[Caller, Depends(owner_caller)]


def callback_secrets(request: Request, gateway: GatewayDep) -> CallbackSecrets:
    """The signing secrets (app.state.callback_secrets, else derived from the settings and data dir)."""
    found = getattr(request.app.state, "callback_secrets", None)
    if isinstance(found, CallbackSecrets):
        return found
    settings = getattr(gateway.settings, "callbacks", None)
    if not isinstance(settings, CallbackSettings):
        settings = CallbackSettings()
    secrets_ = CallbackSecrets.load(settings, Path(gateway.settings.data_dir))
    request.app.state.callback_secrets = secrets_
    return secrets_


SecretsDep = Annotated[CallbackSecrets, Depends(callback_secrets)]
