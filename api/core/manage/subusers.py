"""Sub-users (create, change, reset their password) and an owner's call limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from api.core.errors import InvalidParameter
from api.core.manage.base import (
    NotFound,
    Viewer,
    account_of,
    require_owner,
)
from store import accounts
from store.models import (
    MAX_MICROS,
    Account,
    Role,
)

# --- call limits ---------------------------------------------------------------------------------------

MAX_CALL_LIMIT = 10_000
"""The largest per-account concurrency or calls-per-second limit accepted."""


def set_call_limits(account: Account, *, max_concurrent_calls: int | None,
                    calls_per_second: float | None) -> None:
    """An owner's voice call limits over every worker node (api/runtime/worker.py applies them when it
    claims);
    None: the claiming node's `dialer.max_concurrent` / `dialer.calls_per_second`."""
    if account.parent_id is not None:
        raise InvalidParameter("account", "call limits belong to an owner: a sub-user's calls count as its "
                               "owner's")
    if max_concurrent_calls is not None and not 1 <= max_concurrent_calls <= MAX_CALL_LIMIT:
        raise InvalidParameter("max_concurrent_calls", f"calls at once are 1 to {MAX_CALL_LIMIT}")
    if calls_per_second is not None and not 0 < calls_per_second <= MAX_CALL_LIMIT:
        raise InvalidParameter("calls_per_second", f"calls per second are above 0, at most {MAX_CALL_LIMIT}")
    account.max_concurrent_calls = max_concurrent_calls
    account.calls_per_second = calls_per_second


# --- roles ---------------------------------------------------------------------------------------------



def list_subusers(session: Session, viewer: Viewer) -> Sequence[Account]:
    require_owner(viewer)
    return accounts.subusers(session, account_of(session, viewer))


def get_subuser(session: Session, viewer: Viewer, subuser_id: int) -> Account:
    """One of the owner's sub-users; NotFound for anyone else's."""
    require_owner(viewer)
    account = session.get(Account, subuser_id)
    if account is None or account.parent_id != viewer.user_id:
        raise NotFound(f"no sub-user {subuser_id}")
    return account


def create_subuser(
    session: Session,
    viewer: Viewer,
    *,
    username: str,
    password: str,
    now: dt.datetime,
    spending_limit: int | None = None,
    hasher: PasswordHasher = accounts.DEFAULT_HASHER,
) -> Account:
    """A new sub-user of the viewer's account (which it spends from, within `spending_limit`)."""
    require_owner(viewer)
    _check_limit(spending_limit)
    return accounts.create_account(
        session,
        username=username,
        password=password,
        now=now,
        role=Role.SUBUSER,
        parent=account_of(session, viewer),
        spending_limit=spending_limit,
        hasher=hasher,
    )


def _check_limit(spending_limit: int | None) -> None:
    if spending_limit is not None and not 0 <= spending_limit <= MAX_MICROS:
        raise InvalidParameter("spending_limit", f"a spending limit is 0 to {MAX_MICROS} micro-units")


def update_subuser(
    session: Session,
    viewer: Viewer,
    subuser_id: int,
    *,
    active: bool | None = None,
    spending_limit: int | None = None,
    clear_limit: bool = False,
) -> Account:
    """Enable or disable a sub-user, set its spending limit, or remove the limit (`clear_limit`)."""
    account = get_subuser(session, viewer, subuser_id)
    if active is not None:
        accounts.set_active(session, account, active)
    if clear_limit:
        account.spending_limit = None
    elif spending_limit is not None:
        _check_limit(spending_limit)
        account.spending_limit = spending_limit
    session.flush()
    return account


def reset_subuser_password(
    session: Session,
    viewer: Viewer,
    subuser_id: int,
    password: str,
    now: dt.datetime,
    hasher: PasswordHasher = accounts.DEFAULT_HASHER,
) -> Account:
    """Give a sub-user a new password and revoke every API key of that login: whoever knew the old
    password may have made keys with it. Its GUI sessions end and a legacy login's cached credentials
    retire with the old hash."""
    account = get_subuser(session, viewer, subuser_id)
    accounts.set_password(session, account, password, hasher)
    accounts.revoke_api_keys(session, account, now)
    return account
